"""Tests for vdp.video.mp4: round trips at exact frame rates, odd sizes, interrupted writes, audio."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vdp.errors import VideoInputError
from vdp.video import Mp4Writer, read_video, write_mp4
from vdp.video.probe import probe_file

NTSC = Fraction(30000, 1001)


def _make_source_video(
    ffmpeg_exe: str, path: Path, *, with_audio: bool, audio_codec: str = "aac", seconds: float = 1
) -> Path:
    """A 64x48, 25 fps test video of ``seconds``, with a 440 Hz tone in ``audio_codec`` when
    ``with_audio``."""
    command = [ffmpeg_exe, "-v", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={seconds}"]
    if with_audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        command += ["-c:a", audio_codec, "-shortest"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path


def _stream_lines(ffmpeg_exe: str, path: Path) -> list[str]:
    """ffmpeg's description of each stream of ``path`` ("Stream #0:0...: Video: h264 ...")."""
    log = subprocess.run([ffmpeg_exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return re.findall(r"^\s*Stream #0:\d.*$", log, re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# round trips


def test_mp4_round_trip_keeps_odd_size_frame_count_and_ntsc_rate(
    tmp_path: Path, smooth_frames: np.ndarray
) -> None:
    path = tmp_path / "clip.mp4"
    assert write_mp4(smooth_frames, path, fps=NTSC) == 10

    video = read_video(path)

    assert (video.num_frames, video.height, video.width) == (10, 33, 47)
    assert video.fps == NTSC
    assert video.name == "clip" and video.source == path and not video.has_audio
    assert video.frames.dtype == np.uint8 and video.frames.flags["C_CONTIGUOUS"]
    assert np.abs(video.frames.astype(np.int16) - smooth_frames).mean() < 6


def test_mp4_even_size_and_float_ntsc_rate(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    path = tmp_path / "even.mp4"
    write_mp4(smooth_frames[:4, :32, :46], path, fps=29.97)

    video = read_video(path)

    assert (video.num_frames, video.height, video.width) == (4, 32, 46)
    assert video.fps == NTSC
    assert np.abs(video.frames.astype(np.int16) - smooth_frames[:4, :32, :46]).mean() < 6


def test_lossless_mp4_is_bit_exact(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    write_mp4(frames, tmp_path / "exact.mp4", fps=Fraction(24000, 1001), lossless=True)

    video = read_video(tmp_path / "exact.mp4")

    np.testing.assert_array_equal(video.frames, frames)
    assert video.fps == Fraction(24000, 1001)


# ---------------------------------------------------------------------------------------------
# the writer


def test_mp4_writer_leaves_no_file_when_interrupted(
    tmp_path: Path, smooth_frames: np.ndarray
) -> None:
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="stop"):
        with Mp4Writer(path, fps=24) as writer:
            writer.write(smooth_frames[0])
            raise RuntimeError("stop")

    assert list(tmp_path.iterdir()) == []


def test_mp4_writer_rejects_a_frame_of_another_size(
    tmp_path: Path, smooth_frames: np.ndarray
) -> None:
    with pytest.raises(ValueError, match="like the first"):
        with Mp4Writer(tmp_path / "sizes.mp4", fps=24) as writer:
            writer.write(smooth_frames[0])
            writer.write(smooth_frames[0, :32])
    assert not (tmp_path / "sizes.mp4").exists()


def test_mp4_writer_replaces_an_existing_file(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    path = tmp_path / "again.mp4"
    write_mp4(smooth_frames, path, fps=24)
    write_mp4(smooth_frames[:3], path, fps=24)

    assert read_video(path).num_frames == 3
    assert [entry.name for entry in tmp_path.iterdir()] == ["again.mp4"]


# ---------------------------------------------------------------------------------------------
# audio


def test_audio_is_copied_from_the_source(
    tmp_path: Path, smooth_frames: np.ndarray, ffmpeg_exe: str
) -> None:
    source = _make_source_video(ffmpeg_exe, tmp_path / "with_audio.mp4", with_audio=True)
    assert read_video(source).has_audio

    write_mp4(smooth_frames, tmp_path / "out.mp4", fps=NTSC, audio_source=source)

    video = read_video(tmp_path / "out.mp4")
    assert video.has_audio and video.num_frames == 10 and video.fps == NTSC
    video_line, audio_line = _stream_lines(ffmpeg_exe, tmp_path / "out.mp4")
    assert "Video: h264" in video_line and "bt709" in video_line
    assert "Audio: aac" in audio_line
    # The audio (1 s in the source) is cut at the video's end (10 frames, 0.33 s); a copied stream
    # is cut in whole packets (AAC: 1024 samples, about 23 ms), so up to one packet more.
    assert 10 / NTSC - 0.01 <= probe_file(tmp_path / "out.mp4").duration <= 10 / NTSC + 0.06
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["out.mp4", "with_audio.mp4"]


def test_audio_that_mp4_cannot_hold_is_reencoded_to_aac(
    tmp_path: Path, smooth_frames: np.ndarray, ffmpeg_exe: str
) -> None:
    source = _make_source_video(ffmpeg_exe, tmp_path / "pcm.mkv", with_audio=True, audio_codec="pcm_s16le")
    assert probe_file(source).audio_codec == "pcm_s16le"

    write_mp4(smooth_frames, tmp_path / "out.mp4", fps=25, audio_source=source)

    assert probe_file(tmp_path / "out.mp4").audio_codec == "aac"
    assert read_video(tmp_path / "out.mp4").num_frames == 10


def test_source_without_audio_gives_output_without_audio(
    tmp_path: Path, smooth_frames: np.ndarray, ffmpeg_exe: str
) -> None:
    source = _make_source_video(ffmpeg_exe, tmp_path / "silent.mp4", with_audio=False)
    assert not read_video(source).has_audio

    write_mp4(smooth_frames, tmp_path / "out.mp4", fps=25, audio_source=source)

    assert not read_video(tmp_path / "out.mp4").has_audio
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["out.mp4", "silent.mp4"]


def test_missing_audio_source_is_refused_and_nothing_is_written(
    tmp_path: Path, smooth_frames: np.ndarray
) -> None:
    with pytest.raises(VideoInputError, match="audio_source"):
        write_mp4(smooth_frames, tmp_path / "out.mp4", fps=25, audio_source=tmp_path / "gone.mp4")
    assert list(tmp_path.iterdir()) == []


def test_audio_shorter_than_the_video_keeps_every_frame(tmp_path: Path, ffmpeg_exe: str) -> None:
    # 25 frames at 25 fps with 0.6 s of audio: the audio ends first, the video must not.
    source = tmp_path / "short_audio.mp4"
    command = [ffmpeg_exe, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1",
               "-f", "lavfi", "-i", "sine=frequency=440:duration=0.6", "-c:a", "aac", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(source)]
    subprocess.run(command, check=True, capture_output=True)
    frames = read_video(source).frames
    assert len(frames) == 25
    write_mp4(np.asarray(frames), tmp_path / "out.mp4", fps=25, audio_source=source)
    written = read_video(tmp_path / "out.mp4")
    assert written.num_frames == 25 and written.has_audio
