"""Carrying per-frame values along the chained flow (`vdp.propagate`)."""

from __future__ import annotations

import numpy as np
import torch

from vdp.problem import Motion
from vdp.propagate import gather_neighbours


def _motions(forward: np.ndarray) -> tuple[Motion, Motion]:
    backward = -forward  # exact for a uniform translation
    return Motion(forward, backward), Motion(backward, forward)


def test_a_uniform_translation_carries_each_neighbour_back_onto_the_frame() -> None:
    frames, height, width = 5, 12, 16
    forward = np.zeros((frames - 1, height, width, 2), np.float32)
    forward[..., 0] = 1.0  # everything moves one pixel right per frame
    values = torch.zeros(frames, 1, height, width)
    for t in range(frames):
        values[t, 0, :, 4 + t] = 1.0  # a vertical line moving with the flow
    ahead, behind = _motions(forward)
    total, weight = gather_neighbours(values, torch.tensor([2]), forward=ahead, backward=behind, max_offset=2)
    # Frame 2 has two neighbours on each side; where all four chains stay inside the frame, the
    # carried lines land on frame 2's line.
    inside = slice(3, width - 3)
    assert torch.equal(weight[0, 0, :, inside], torch.full((height, width - 6), 4.0))
    carried = total[0, 0] / weight[0, 0].clamp_min(1)
    assert torch.allclose(carried[:, 6], torch.ones(height))
    assert float(carried[:, inside].sum()) == float(height)
    # Chains that leave the frame carry nothing: the last column's forward chains end outside.
    assert float(weight[0, 0, 0, -1]) == 2.0


def test_an_unreliable_link_cuts_every_chain_through_it() -> None:
    frames, height, width = 4, 8, 8
    forward = np.zeros((frames - 1, height, width, 2), np.float32)
    backward = forward.copy()
    backward[1] = 3.0  # frame 2 -> 1 disagrees with 1 -> 2: the pair (1, 2) fails the check
    ahead, behind = Motion(forward, backward), Motion(backward, forward)
    values = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).expand(frames, 1, height, width)
    total, weight = gather_neighbours(values, torch.tensor([0]), forward=ahead, backward=behind, max_offset=3)
    # From frame 0 only frame 1 is reachable: the link 1 -> 2 is unreliable, so 2 and 3 are cut off.
    assert torch.equal(weight, torch.ones_like(weight))
    assert torch.equal(total, torch.ones_like(total))


def test_a_negative_range_or_sweep_count_is_refused_before_any_work() -> None:
    import pytest

    from vdp.errors import ConfigError
    from vdp.task import load_task, make_config

    task = load_task("segment")
    for option in ("temporal_range", "temporal_sweeps"):
        with pytest.raises(ConfigError, match="must be 0 or more"):
            make_config(task, {option: -1})
