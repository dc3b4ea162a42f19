"""Long videos are fitted in overlapping windows: the plan, the cross-fade, and the seams."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vdp import api
from vdp.errors import ConfigError
from vdp.example_clip import make_moving_object_video
from vdp.metrics import jaccard
from vdp.optimize import OptimConfig
from vdp.video import Video
from vdp.windows import KEEP_WINDOWS, blend_outputs, blend_weights, check_window, plan_windows


@pytest.mark.parametrize("frames, window, overlap", [(10, 20, 4), (150, 150, 16), (151, 150, 16), (1000, 150, 16),
                                                     (10_000, 150, 16), (61, 20, 8), (23, 10, 5), (40, 4, 0)])
def test_the_windows_cover_every_frame_with_the_overlap_asked_for(frames: int, window: int, overlap: int) -> None:
    spans = plan_windows(frames, window, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    if frames <= window:
        assert spans == [(0, frames)]
        return
    assert all(stop - start == window for start, stop in spans)
    assert all(next_start - start > 0 for (start, _), (next_start, _) in zip(spans, spans[1:]))
    assert all(stop - next_start >= overlap for (_, stop), (next_start, _) in zip(spans, spans[1:]))
    # as few windows as that overlap allows
    assert len(spans) == int(np.ceil((frames - overlap) / (window - overlap)))


def test_the_cross_fade_weights_sum_to_one_and_ramp_over_the_overlap() -> None:
    spans = plan_windows(61, 20, 8)
    for t in range(61):
        weights = blend_weights(spans, t)
        assert abs(sum(weight for _, weight in weights) - 1) < 1e-9
        assert all(spans[index][0] <= t < spans[index][1] for index, _ in weights)
    (_, stop), (start, _) = spans[0], spans[1]
    second = [dict(blend_weights(spans, t)).get(1, 0.0) for t in range(start, stop)]
    assert second == sorted(second) and second[0] < 0.5 < second[-1]  # the next window takes over gradually
    assert blend_weights(spans, 0) == [(0, 1.0)] and blend_weights(spans, 60) == [(len(spans) - 1, 1.0)]


def test_outputs_are_cross_faded_but_labels_come_from_the_heavier_window() -> None:
    a = {"alpha": np.full((2, 2), 200, np.uint8), "masks": np.ones((2, 2), np.uint8)}
    b = {"alpha": np.full((2, 2), 100, np.uint8), "masks": np.zeros((2, 2), np.uint8)}
    blended = blend_outputs([(a, 0.25), (b, 0.75)], {"alpha": "gray", "masks": "indexed"})
    assert (blended["alpha"] == 125).all() and blended["alpha"].dtype == np.uint8
    assert (blended["masks"] == 0).all()


@pytest.mark.parametrize("window, overlap, message", [(-1, 0, "--window must be 0"), (3, 0, "at least"),
                                                      (20, -1, "--window-overlap must be 0"), (20, 11, "at most half")])
def test_impossible_window_settings_are_refused(window: int, overlap: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_window(window, overlap)
    with pytest.raises(ConfigError, match=message):
        api.check_options(api.RunOptions(device="cpu", window=window, window_overlap=overlap))


def _segment(frames: np.ndarray, window: int, overlap: int):
    video = Video(frames=frames, fps=Fraction(24), name="long")
    options = api.RunOptions(device="cpu", cache_dir="", perceptual="off", window=window, window_overlap=overlap,
                             optim=OptimConfig(num_steps=20, seed=0))
    result = api.run("segment", video, config={"objectness": "off"}, options=options)
    outputs = [result.full_resolution(t, frames[t]) for t in range(len(frames))]
    return result, np.stack([o["alpha"] for o in outputs]).astype(np.float32), np.stack([o["masks"] > 0 for o in outputs])


def test_a_windowed_run_matches_the_whole_clip_and_has_no_seam() -> None:
    frames, truth = make_moving_object_video(num_frames=30, height=72, width=96, seed=3)
    whole, _, whole_masks = _segment(frames, 0, 0)
    windowed, alpha, masks = _segment(frames, 12, 4)
    windows = windowed.info["windows"]
    spans = [tuple(w["frames"]) for w in windows["per_window"]]
    assert windows["count"] == len(spans) == 4 and spans[-1][1] == 30
    assert windows["fits"] == windows["count"], "read in order, every window is fitted exactly once"
    assert KEEP_WINDOWS < windows["count"]  # so the run really dropped windows on the way
    assert windowed.timings["optimise"] > 0 and windowed.losses
    whole_iou = np.mean([jaccard(m, gt) for m, gt in zip(whole_masks, truth)])
    windowed_iou = np.mean([jaccard(m, gt) for m, gt in zip(masks, truth)])
    assert windowed_iou >= whole_iou - 0.05, (windowed_iou, whole_iou)
    # The seam: alpha changes no more between consecutive frames where windows hand over than
    # elsewhere (the object moves steadily, so the change elsewhere is the motion itself).
    shared = {t for (_, stop), (start, _) in zip(spans, spans[1:]) for t in range(start, stop)}
    change = np.abs(np.diff(alpha, axis=0)).mean(axis=(1, 2))
    seam = [change[t] for t in range(len(change)) if t in shared or t + 1 in shared]
    within = [change[t] for t in range(len(change)) if not (t in shared or t + 1 in shared)]
    assert np.mean(seam) <= 1.5 * np.mean(within) + 1.0, (np.mean(seam), np.mean(within))


def test_a_frame_asked_for_again_after_its_window_was_dropped_is_still_right() -> None:
    frames, _ = make_moving_object_video(num_frames=20, height=48, width=64, seed=1)
    video = Video(frames=frames, fps=Fraction(24), name="again")
    options = api.RunOptions(device="cpu", cache_dir="", perceptual="off", window=6, window_overlap=2,
                             optim=OptimConfig(num_steps=3, seed=0))
    result = api.run("segment", video, config={"objectness": "off"}, options=options)
    first = result.full_resolution(0, frames[0])
    for t in range(1, 20):
        result.full_resolution(t, frames[t])
    again = result.full_resolution(0, frames[0])  # window 0 was dropped: it is fitted again, identically
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert result.info["windows"]["fits"] == result.info["windows"]["count"] + 1
