"""Loss terms shared by the tasks: pure functions, tensors in, scalar tensor out.

Images are (N, C, H, W) float in [0, 1] unless a docstring says otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_l1(prediction: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean absolute error, optionally weighted per pixel.

    Args:
        prediction, target: (N, C, H, W).
        weight: (N, 1, H, W) non-negative, or None for a plain mean.
    """
    error = (prediction - target).abs()
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1e-6)


def total_variation(image: Tensor, guide: Tensor | None = None, *, edge_scale: float = 10.0) -> Tensor:
    """Mean absolute finite difference; with a guide, smaller across the guide's edges.

    Args:
        image: (N, C, H, W).
        guide: (N, G, H, W) or None; differences are weighted by exp(-edge_scale * |grad guide|).
    """
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()
    if guide is not None:
        gx = (guide[..., :, 1:] - guide[..., :, :-1]).abs().mean(1, keepdim=True)
        gy = (guide[..., 1:, :] - guide[..., :-1, :]).abs().mean(1, keepdim=True)
        dx = dx * torch.exp(-edge_scale * gx)
        dy = dy * torch.exp(-edge_scale * gy)
    return dx.mean() + dy.mean()


def temporal_warp_l1(current: Tensor, next_warped: Tensor, valid: Tensor) -> Tensor:
    """Warp loss: a layer at t+1 warped back into t should match the layer at t where visible.

    Args:
        current: (N, C, H, W) layer at t.
        next_warped: (N, C, H, W) layer at t+1 backward-warped by the flow t -> t+1.
        valid: (N, 1, H, W) 1 where the flow is reliable (not occluded).
    """
    return masked_l1(current, next_warped, valid)
