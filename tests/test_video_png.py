"""Tests for vdp.video.png: PNG sequences (8 and 16 bit) and DAVIS-style palette masks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vdp.video import read_video, write_indexed_png, write_png_sequence


# ---------------------------------------------------------------------------------------------
# PNG sequences


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
    palette = np.array(image.getpalette()).reshape(-1, 3)
    assert palette[:3].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]  # the DAVIS (Pascal VOC) colours
    assert palette[3].tolist() == [128, 128, 0] and palette[8].tolist() == [64, 0, 0]
