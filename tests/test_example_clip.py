"""Tests for vdp.example_clip: determinism, object size, and motion that differs from the pan."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdp.example_clip import make_example_video, make_moving_object_video
from vdp.video import read_video


@pytest.fixture(scope="module")
def video() -> tuple[np.ndarray, np.ndarray]:
    return make_moving_object_video(num_frames=12, height=64, width=80, seed=3)


def test_shapes_and_types(video: tuple[np.ndarray, np.ndarray]) -> None:
    frames, masks = video
    assert frames.shape == (12, 64, 80, 3) and frames.dtype == np.uint8
    assert masks.shape == (12, 64, 80) and masks.dtype == bool


def test_same_seed_same_video_other_seed_other_video(video: tuple[np.ndarray, np.ndarray]) -> None:
    frames, masks = video
    again_frames, again_masks = make_moving_object_video(num_frames=12, height=64, width=80, seed=3)
    other_frames, _ = make_moving_object_video(num_frames=12, height=64, width=80, seed=4)
    np.testing.assert_array_equal(frames, again_frames)
    np.testing.assert_array_equal(masks, again_masks)
    assert np.abs(frames.astype(np.int16) - other_frames).mean() > 10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_object_covers_a_sensible_part_and_stays_inside(seed: int) -> None:
    _, masks = make_moving_object_video(num_frames=24, height=96, width=128, seed=seed)
    fractions = masks.mean(axis=(1, 2))
    assert np.all((fractions > 0.08) & (fractions < 0.25))
    # Never touching the border means the whole object is always visible.
    assert not masks[:, 0, :].any() and not masks[:, -1, :].any()
    assert not masks[:, :, 0].any() and not masks[:, :, -1].any()


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array((cols.mean(), rows.mean()))


def _background_shift(frames: np.ndarray, masks: np.ndarray, index: int) -> np.ndarray:
    """(dx, dy) that best maps frame ``index`` onto the next one away from the object, found by
    trying shifts on a 0.25 px grid."""
    first, second = (frame.astype(np.float32) for frame in frames[index : index + 2])
    near_object = cv2.dilate(masks[index : index + 2].any(axis=0).astype(np.uint8), np.ones((9, 9)))
    keep = near_object == 0
    keep[:3], keep[-3:], keep[:, :3], keep[:, -3:] = False, False, False, False
    height, width = masks.shape[1:]
    best, best_error = np.zeros(2), np.inf
    for dx in np.arange(-2.0, 2.01, 0.25):
        for dy in np.arange(-2.0, 2.01, 0.25):
            moved = cv2.warpAffine(first, np.array([[1, 0, dx], [0, 1, dy]]), (width, height))
            error = float(np.abs(moved - second)[keep].mean())
            if error < best_error:
                best, best_error = np.array((dx, dy)), error
    return best


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_object_moves_differently_from_the_background(seed: int) -> None:
    frames, masks = make_moving_object_video(num_frames=12, height=96, width=128, seed=seed)
    object_motion = (_centroid(masks[-1]) - _centroid(masks[0])) / 11
    background_motion = _background_shift(frames, masks, 5)

    assert 0.75 < np.linalg.norm(background_motion) < 1.25
    assert np.linalg.norm(object_motion) > 1.5
    cosine = object_motion @ background_motion / (
        np.linalg.norm(object_motion) * np.linalg.norm(background_motion)
    )
    assert cosine < 0.0  # more than 90 degrees apart


def test_example_video_is_small_and_readable(tmp_path: Path) -> None:
    path = make_example_video(
        tmp_path / "example.mp4", num_frames=6, height=48, width=64, fps=Fraction(24)
    )
    video = read_video(path)
    assert (video.num_frames, video.height, video.width, video.fps) == (6, 48, 64, 24)
    assert path.stat().st_size < 2_000_000
