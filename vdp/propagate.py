"""Carry per-frame estimates to other frames along the chained flow, where every link is reliable.

A mask (or any per-pixel estimate) at frame t+k says something about frame t wherever the flow
t -> t+1 -> ... -> t+k is trusted at every link: the pixel p of frame t lands at
`p + chain(p)` in frame t+k, and the estimate there is read back onto p. `gather_neighbours`
sums those readings over k = 1..K on both sides, each weighted by the chain's reliability, so a
frame whose own cues are wrong (an occluder, a frame where the object stops moving) is outvoted by
its neighbours. Flows are composed on the fly for the frames asked for (no per-offset flow is
stored), so memory stays at one flow field per frame pair.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from vdp.problem import Motion
from vdp.warp import backward_warp, compose_flows


def _inside(flow: Tensor) -> Tensor:
    """(N, 1, H, W) 1 where p + flow(p) falls inside the frame."""
    height, width = flow.shape[-2:]
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).unsqueeze(1).to(flow.dtype)


def chained_links(
    starts: Tensor,
    *,
    forward: Motion,
    backward: Motion,
    max_offset: int,
) -> Iterator[tuple[int, Tensor, Tensor, Tensor]]:
    """For k = 1..K after, then before, each frame in `starts`: the neighbour, the chained flow onto
    it and where the whole chain is trusted.

    Args:
        starts: (B,) frame indices t.
        forward: the video's `Motion` (flow t -> t+1 and its reliability).
        backward: the reverse `Motion`, built as `Motion(backward_flow, forward_flow)` (its pair i
            is the flow i+1 -> i).
        max_offset: K, the farthest neighbour on each side.

    Yields:
        (offset +k or -k, targets (B,) clamped into the video, chain (B, 2, h, w) flow t -> target in working pixels,
        weight (B, 1, h, w) float: 1 where every link passed its forward-backward check, the chain
        lands inside the frame and the target exists, 0 elsewhere).
    """
    num_frames = forward.forward_flow.shape[0] + 1
    for direction, motion in ((1, forward), (-1, backward)):
        chain = valid = None
        for k in range(1, max_offset + 1):
            source = starts + direction * (k - 1)  # the chain's last frame so far
            target = starts + direction * k
            inside = (target >= 0) & (target < num_frames)
            if not bool(inside.any()):
                break
            link = (source if direction == 1 else source - 1).clamp(0, num_frames - 2)
            step_flow, step_valid = motion.forward_flow[link].float(), motion.flow_valid[link].float()
            if chain is None:
                chain, valid = step_flow, step_valid
            else:
                valid = valid * backward_warp(step_valid, chain)
                chain = compose_flows(chain, step_flow)
            weight = (valid > 0.5).float() * _inside(chain) * inside.view(-1, 1, 1, 1).float()
            yield direction * k, target.clamp(0, num_frames - 1), chain, weight


def gather_neighbours(
    values: Tensor,
    starts: Tensor,
    *,
    forward: Motion,
    backward: Motion,
    max_offset: int,
) -> tuple[Tensor, Tensor]:
    """Sum of the neighbours' values carried onto each frame in `starts`, and the sum of weights.

    Args:
        values: (T, C, h, w) per-frame estimates (any float dtype; read in float32).
        starts, forward, backward, max_offset: as for `chained_links`.

    Returns:
        ((B, C, h, w) weighted sum, (B, 1, h, w) sum of weights); divide for the mean, or add a
        frame's own value with weight 1 first.
    """
    total = values.new_zeros((starts.shape[0], *values.shape[1:]), dtype=torch.float32)
    weight_sum = total.new_zeros((starts.shape[0], 1, *values.shape[2:]))
    for _, target, chain, weight in chained_links(starts, forward=forward, backward=backward, max_offset=max_offset):
        total = total + weight * backward_warp(values[target].float(), chain)
        weight_sum = weight_sum + weight
    return total, weight_sum


def agreement(carried: Tensor, own: Tensor, tolerance: float) -> Tensor:
    """How far a neighbour carried onto a frame can be trusted to show the same surface: 1 where it
    agrees with the frame's own estimate, falling as exp(-(d / tolerance)^2) with their difference d
    (mean over channels of a 3x3 local mean, so that independent noise does not count as a
    difference). Catches what the forward-backward check misses: a slightly wrong flow at an edge,
    a surface that changes. tolerance <= 0 trusts every carried value.

    Args:
        carried, own: (B, C, h, w).

    Returns:
        (B, 1, h, w) in (0, 1].
    """
    if tolerance <= 0:
        return torch.ones_like(own[:, :1])
    difference = F.avg_pool2d(carried - own, 3, stride=1, padding=1, count_include_pad=False).abs().mean(1, keepdim=True)
    return torch.exp(-((difference / tolerance) ** 2))


def lift_links(
    links: list[tuple[Tensor, Tensor, Tensor]], size: tuple[int, int]
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Links from `chained_links` (one frame) brought to another resolution: chains resized and
    rescaled to that size's pixels, weights resized bilinearly."""
    lifted = []
    for target, chain, weight in links:
        height, width = chain.shape[-2:]
        scale = chain.new_tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
        lifted.append((target, F.interpolate(chain, size=size, mode="bilinear", align_corners=False) * scale,
                       F.interpolate(weight, size=size, mode="bilinear", align_corners=False)))
    return lifted
