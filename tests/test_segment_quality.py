"""`segment` finds a moving object over a differently moving background (a real quality bar)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vdp import api
from vdp.metrics import jaccard
from vdp.optimize import OptimConfig
from vdp.example_clip import make_moving_object_video
from vdp.video import Video

MIN_MEAN_IOU = 0.85


@pytest.mark.parametrize("seed", [0, 1])
def test_segment_reaches_the_iou_bar_on_a_synthetic_video(seed: int) -> None:
    frames, truth = make_moving_object_video(num_frames=16, height=96, width=128, seed=seed)
    video = Video(frames=frames, fps=Fraction(24), name=f"synthetic-{seed}")
    # Objectness off: the bar must hold with the motion cue alone, without the optional model.
    options = api.RunOptions(device="cpu", cache_dir="", optim=OptimConfig(num_steps=40, seed=0))
    result = api.run("segment", video, config={"objectness": "off"}, options=options)
    masks = [result.full_resolution(t, frames[t])["masks"] > 0 for t in range(video.num_frames)]
    ious = [jaccard(mask, gt) for mask, gt in zip(masks, truth)]
    mean_iou = float(np.mean(ious))
    assert mean_iou >= MIN_MEAN_IOU, f"mean IoU {mean_iou:.3f} < {MIN_MEAN_IOU}; per frame {np.round(ious, 3)}"


def _mean_iou(frames: np.ndarray, truth: np.ndarray, steps: int) -> tuple[float, list[float]]:
    video = Video(frames=frames, fps=Fraction(24), name="pausing-object")
    options = api.RunOptions(device="cpu", cache_dir="", perceptual="off", optim=OptimConfig(num_steps=steps, seed=0))
    result = api.run("segment", video, config={"objectness": "off"}, options=options)
    masks = [result.full_resolution(t, frames[t])["masks"] > 0 for t in range(video.num_frames)]
    ious = [jaccard(mask, gt) for mask, gt in zip(masks, truth)]
    return float(np.mean(ious)), ious


@pytest.mark.parametrize("seed", [0, 1])
def test_the_fit_beats_its_prior_where_the_object_stops_moving(seed: int) -> None:
    """The object rests for 6 of 24 frames: then it moves exactly like the background, so the
    per-frame prior (the motion cue, objectness off) finds nothing in those frames. The fit must
    carry the mask into them from the frames around, along the flow."""
    frames, truth = make_moving_object_video(num_frames=24, height=96, width=128, seed=seed, pause=(8, 14))
    prior_iou, prior_ious = _mean_iou(frames, truth, steps=0)
    fitted_iou, fitted_ious = _mean_iou(frames, truth, steps=40)
    paused_prior, paused_fitted = np.mean(prior_ious[8:14]), np.mean(fitted_ious[8:14])
    assert paused_prior < 0.1, f"the clip no longer fools the prior (paused-frame IoU {paused_prior:.2f})"
    assert fitted_iou >= prior_iou + 0.08, (
        f"the fit ({fitted_iou:.3f}) does not beat its prior ({prior_iou:.3f}) by 0.08; "
        f"per frame {np.round(fitted_ious, 2)} vs {np.round(prior_ious, 2)}"
    )
    assert paused_fitted >= 0.3, f"paused frames: IoU {paused_fitted:.2f} after the fit"
