"""Tests for vdp.video.read: frame folders, start/stride/max_frames, conversion to uint8 RGB, errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdp.errors import VideoInputError
from vdp.video import Video, read_video, write_mp4


def _write_rgb_png(path: Path, image: np.ndarray) -> None:
    """Write ``(H, W, 3|4)`` RGB(A) or ``(H, W)`` gray, uint8 or uint16, with OpenCV."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)


# ---------------------------------------------------------------------------------------------
# what is read


def test_read_video_start_stride_and_max_frames(tmp_path: Path) -> None:
    # Each frame is one flat grey level, so decoded frames identify themselves.
    levels = np.arange(10) * 20 + 20
    frames = np.repeat(levels.astype(np.uint8), 8 * 8 * 3).reshape(10, 8, 8, 3)
    write_mp4(frames, tmp_path / "levels.mp4", fps=25, lossless=True)

    video = read_video(tmp_path / "levels.mp4", start=1, stride=3, max_frames=2)

    assert video.frames[:, 0, 0, 0].tolist() == [levels[1], levels[4]]


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
