"""Shared fixtures: tiny synthetic frames, made in memory, so tests need no files of their own."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def smooth_frames() -> np.ndarray:
    """``(10, 33, 47, 3)`` uint8 RGB: smooth gradients that drift a little each frame.

    Odd sizes on purpose: they catch code that silently pads or resizes.
    """
    num_frames, height, width = 10, 33, 47
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[index, ..., 0] = 40 + 150 * x / (width - 1) + 2 * index
        frames[index, ..., 1] = 60 + 120 * y / (height - 1)
        frames[index, ..., 2] = 128 + 60 * np.sin((x + y + 3 * index) / 9.0)
    return frames


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
