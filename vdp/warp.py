"""Warping by optical flow and the forward-backward occlusion check.

Pure tensor functions; flows are in pixels with channel 0 = x (right) and channel 1 = y (down).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["backward_warp", "forward_backward_occlusion"]


def _check_flow_shape(flow: Tensor, name: str, *, batch: int, height: int, width: int) -> None:
    expected = (batch, 2, height, width)
    if flow.dim() != 4 or tuple(flow.shape) != expected:
        raise ValueError(f"{name} must have shape (N, 2, H, W) = {expected}; got {tuple(flow.shape)}")


def backward_warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` at ``p + flow(p)`` for every pixel ``p`` (bilinear, border padding).

    With ``flow`` the flow from frame t to frame t+1 and ``image`` frame t+1, the result is frame
    t+1 brought back onto frame t's pixel grid.

    Args:
        image: ``(N, C, H, W)`` any float dtype.
        flow: ``(N, 2, H, W)`` in pixels, channel 0 = x, channel 1 = y; cast to ``image``'s dtype.

    Returns:
        ``(N, C, H, W)``, differentiable with respect to both ``image`` and ``flow``.
    """
    if image.dim() != 4:
        raise ValueError(f"image must have shape (N, C, H, W); got {tuple(image.shape)}")
    batch, _, height, width = image.shape
    _check_flow_shape(flow, "flow", batch=batch, height=height, width=width)
    flow = flow.to(dtype=image.dtype)

    rows = torch.arange(height, device=image.device, dtype=image.dtype)
    cols = torch.arange(width, device=image.device, dtype=image.dtype)
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    sample_x = grid_x + flow[:, 0]
    sample_y = grid_y + flow[:, 1]
    # align_corners=True maps -1 and +1 to the centres of the first and last pixels, so pixel
    # index i normalises to 2 i / (size - 1) - 1; a size of 1 has only the centre (0).
    normalised_x = 2.0 * sample_x / max(width - 1, 1) - 1.0
    normalised_y = 2.0 * sample_y / max(height - 1, 1) - 1.0
    grid = torch.stack((normalised_x, normalised_y), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def compose_flows(first: Tensor, second: Tensor) -> Tensor:
    """The flow a -> c from the flows a -> b (``first``) and b -> c (``second``).

    Each pixel p of frame a moves to ``q = p + first(p)`` in frame b, then on by ``second(q)``
    (sampled bilinearly, border padding).

    Args:
        first, second: ``(N, 2, H, W)`` in pixels.

    Returns:
        ``(N, 2, H, W)``: ``first + second(p + first(p))``.
    """
    return first + backward_warp(second, first)


def forward_backward_occlusion(
    forward: Tensor,
    backward: Tensor,
    *,
    alpha1: float = 0.01,
    alpha2: float = 0.5,
) -> Tensor:
    """Mark pixels of frame t whose forward flow is not undone by the backward flow.

    A pixel is occluded (or its flow unreliable) when
    ``|f + b̂|² > alpha1 (|f|² + |b̂|²) + alpha2`` with ``b̂ = backward_warp(backward, forward)``
    (Sundaram, Brox and Keutzer, ECCV 2010; the constants are UnFlow's, Meister et al.,
    AAAI 2018): the tolerance grows with the motion because flow errors do.

    Args:
        forward: ``(N, 2, H, W)`` flow t -> t+1 in pixels.
        backward: ``(N, 2, H, W)`` flow t+1 -> t in pixels.
        alpha1: tolerance relative to the squared flow magnitudes.
        alpha2: constant tolerance in squared pixels.

    Returns:
        ``(N, 1, H, W)`` in ``forward``'s (float) dtype: 1 = occluded/unreliable, 0 = consistent.
    """
    if forward.dim() != 4:
        raise ValueError(f"forward must have shape (N, 2, H, W); got {tuple(forward.shape)}")
    batch, _, height, width = forward.shape
    _check_flow_shape(forward, "forward", batch=batch, height=height, width=width)
    _check_flow_shape(backward, "backward", batch=batch, height=height, width=width)
    backward_at_target = backward_warp(backward.to(forward.dtype), forward)
    round_trip = (forward + backward_at_target).square().sum(dim=1, keepdim=True)
    magnitudes = forward.square().sum(dim=1, keepdim=True) + backward_at_target.square().sum(dim=1, keepdim=True)
    return (round_trip > alpha1 * magnitudes + alpha2).to(forward.dtype)
