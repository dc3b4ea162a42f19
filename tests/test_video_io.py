"""Tests for vdp.video_io: round trips, exact frame rates, audio, frame folders, errors, masks."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vdp.errors import VideoInputError
from vdp.video_io import (
    Mp4Writer,
    Video,
    davis_palette,
    has_audio,
    read_video,
    write_indexed_png,
    write_mp4,
    write_png_sequence,
)

NTSC = Fraction(30000, 1001)


def _write_rgb_png(path: Path, image: np.ndarray) -> None:
    """Write ``(H, W, 3|4)`` RGB(A) or ``(H, W)`` gray, uint8 or uint16, with OpenCV."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)


def _make_source_video(ffmpeg_exe: str, path: Path, *, with_audio: bool) -> Path:
    """A 1 s, 64x48, 25 fps test video, with a 440 Hz tone when ``with_audio``."""
    command = [ffmpeg_exe, "-v", "error", "-y"]
    command += ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1"]
    if with_audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
        command += ["-c:a", "aac", "-shortest"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return path


# ---------------------------------------------------------------------------------------------
# mp4 round trips


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


def test_read_video_start_stride_and_max_frames(tmp_path: Path) -> None:
    # Each frame is one flat grey level, so decoded frames identify themselves.
    levels = np.arange(10) * 20 + 20
    frames = np.repeat(levels.astype(np.uint8), 8 * 8 * 3).reshape(10, 8, 8, 3)
    write_mp4(frames, tmp_path / "levels.mp4", fps=25, lossless=True)

    video = read_video(tmp_path / "levels.mp4", start=1, stride=3, max_frames=2)

    assert video.frames[:, 0, 0, 0].tolist() == [levels[1], levels[4]]


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


# ---------------------------------------------------------------------------------------------
# audio


def test_audio_is_copied_from_the_source(
    tmp_path: Path, smooth_frames: np.ndarray, ffmpeg_exe: str
) -> None:
    source = _make_source_video(ffmpeg_exe, tmp_path / "with_audio.mp4", with_audio=True)
    assert has_audio(source)
    assert read_video(source).has_audio

    write_mp4(smooth_frames, tmp_path / "out.mp4", fps=25, audio_source=source)

    assert has_audio(tmp_path / "out.mp4")
    assert read_video(tmp_path / "out.mp4").num_frames == 10


def test_source_without_audio_gives_output_without_audio(
    tmp_path: Path, smooth_frames: np.ndarray, ffmpeg_exe: str
) -> None:
    source = _make_source_video(ffmpeg_exe, tmp_path / "silent.mp4", with_audio=False)
    assert not has_audio(source)

    write_mp4(smooth_frames, tmp_path / "out.mp4", fps=25, audio_source=source)

    assert not has_audio(tmp_path / "out.mp4")
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["out.mp4", "silent.mp4"]


# ---------------------------------------------------------------------------------------------
# frame folders and PNG sequences


def test_png_sequence_round_trip_is_exact(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    assert write_png_sequence(iter(smooth_frames), tmp_path / "frames") == 10
    assert (tmp_path / "frames" / "00009.png").is_file()

    video = read_video(tmp_path / "frames")

    np.testing.assert_array_equal(video.frames, smooth_frames)
    assert video.fps == Fraction(24) and video.name == "frames" and not video.has_audio


def test_png_sequence_start_index_and_16_bit(tmp_path: Path) -> None:
    alpha = np.array([[0, 65535], [257, 1000]], dtype=np.uint16)
    assert write_png_sequence([alpha], tmp_path, start_index=7) == 1

    back = cv2.imread(str(tmp_path / "00007.png"), cv2.IMREAD_UNCHANGED)

    np.testing.assert_array_equal(back, alpha)


def test_folder_is_read_in_natural_order(tmp_path: Path) -> None:
    for number in (10, 2, 1):
        _write_rgb_png(tmp_path / f"{number}.png", np.full((4, 5, 3), number, dtype=np.uint8))

    video = read_video(tmp_path)

    assert video.frames[:, 0, 0, 0].tolist() == [1, 2, 10]


def test_folder_frames_are_converted_to_rgb_uint8(tmp_path: Path) -> None:
    gray = np.array([[0, 100, 255]], dtype=np.uint8)
    rgba = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 255]]], dtype=np.uint8)
    # round(v / 257): 100 * 257 + 128 rounds down, + 129 rounds up; 65535 is 255.
    deep = np.array(
        [[[0, 65535, 100 * 257], [100 * 257 + 128, 100 * 257 + 129, 1000], [128, 129, 300]]],
        dtype=np.uint16,
    )
    _write_rgb_png(tmp_path / "a_gray.png", gray)
    _write_rgb_png(tmp_path / "b_rgba.png", rgba)
    _write_rgb_png(tmp_path / "c_deep.png", deep)
    (tmp_path / "notes.txt").write_text("not a frame")

    frames = read_video(tmp_path).frames

    np.testing.assert_array_equal(frames[0], np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(frames[1], rgba[:, :, :3])
    np.testing.assert_array_equal(
        frames[2], [[[0, 255, 100], [100, 101, 4], [0, 1, 1]]]
    )


def test_video_rejects_frames_that_are_not_uint8_rgb() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Video(frames=np.zeros((2, 4, 4, 3), np.float32), fps=Fraction(24), name="x")


# ---------------------------------------------------------------------------------------------
# helpful errors


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="nothing exists"):
        read_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoInputError, match="nothing exists"):
        has_audio(tmp_path / "nope.mp4")


def test_folder_without_frames_lists_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(VideoInputError, match=r"\.png") as caught:
        read_video(tmp_path)
    assert "readme.txt" in str(caught.value)


def test_text_file_named_mp4_is_not_decodable(tmp_path: Path) -> None:
    fake = tmp_path / "fake.MP4"
    fake.write_text("this is not a video\n")
    with pytest.raises(VideoInputError, match="decodable") as caught:
        read_video(fake)
    assert "ffmpeg -i" in str(caught.value)


def test_truncated_mp4_is_not_decodable(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    write_mp4(smooth_frames, tmp_path / "whole.mp4", fps=25)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: data.find(b"mdat") + 4])  # header, no frames
    with pytest.raises(VideoInputError, match="decodable"):
        read_video(tmp_path / "cut.mp4")


def test_no_frames_decoded_after_start(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    write_mp4(smooth_frames, tmp_path / "short.mp4", fps=25)
    with pytest.raises(VideoInputError, match="smaller start"):
        read_video(tmp_path / "short.mp4", start=50)


def test_folder_with_mixed_sizes_names_the_file_and_sizes(tmp_path: Path) -> None:
    _write_rgb_png(tmp_path / "1.png", np.zeros((4, 6, 3), np.uint8))
    _write_rgb_png(tmp_path / "2.png", np.zeros((4, 6, 3), np.uint8))
    _write_rgb_png(tmp_path / "3.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(VideoInputError, match="same size") as caught:
        read_video(tmp_path)
    message = str(caught.value)
    assert "3.png" in message and "6x5" in message and "6x4" in message


def test_unsupported_extension(tmp_path: Path) -> None:
    gif = tmp_path / "clip.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(VideoInputError, match="extension '.gif'") as caught:
        read_video(gif)
    assert ".mp4" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# DAVIS-style masks


def test_indexed_png_uses_the_davis_palette(tmp_path: Path) -> None:
    mask = np.zeros((5, 7), dtype=np.uint8)
    mask[1:3, 2:6] = 1
    write_indexed_png(mask, tmp_path / "masks" / "00000.png")

    image = Image.open(tmp_path / "masks" / "00000.png")

    assert image.mode == "P"
    values = np.array(image)
    assert set(np.unique(values).tolist()) == {0, 1}
    np.testing.assert_array_equal(values, mask)
    palette = np.array(image.getpalette()[:9]).reshape(3, 3)
    assert palette.tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]


def test_davis_palette_matches_pascal_voc() -> None:
    palette = davis_palette()
    assert palette.shape == (256, 3)
    assert palette[3].tolist() == [128, 128, 0]
    assert palette[4].tolist() == [0, 0, 128]
    assert palette[8].tolist() == [64, 0, 0]
    assert palette[255].tolist() == [224, 224, 192]
