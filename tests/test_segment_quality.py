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
