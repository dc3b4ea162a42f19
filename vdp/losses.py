"""Loss terms shared by the tasks: pure functions, tensors in, scalar tensor out.

Images are (N, C, H, W) float in [0, 1] unless a docstring says otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


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


def weighted_binary_cross_entropy(probability_logits: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Binary cross-entropy against soft targets, weighted per pixel (confidence).

    Args:
        probability_logits: (N, 1, H, W) logits.
        target: (N, 1, H, W) in [0, 1].
        weight: (N, 1, H, W) non-negative.
    """
    loss = F.binary_cross_entropy_with_logits(probability_logits, target, reduction="none")
    return (loss * weight).sum() / weight.sum().clamp_min(1e-6)


def binarisation(alpha: Tensor) -> Tensor:
    """Pushes an opacity map towards 0 or 1 without preferring either.

    Double-DIP's `1 / mean|M - 0.5|` is minimal for an all-0 or all-1 mask, which rewards the
    collapse docs/method.md §6 describes; `mean(M * (1 - M))` is zero for any binary mask, whatever its
    area, and its gradient pushes each pixel to the side it is already on.

    Args:
        alpha: (N, 1, H, W) in [0, 1].
    """
    return (alpha * (1.0 - alpha)).mean()


def motion_similarity(alpha: Tensor, flow_features: Tensor) -> Tensor:
    """Cosine similarity of the mean motion inside and outside a soft mask.

    A weight-free form of the paper's flow-similarity term: low when the two layers move
    differently. Each side's mean is normalised by its own area, so an empty side gives no reward.

    Args:
        alpha: (N, 1, H, W) in [0, 1].
        flow_features: (N, C, H, W), e.g. FlowRGB centred on zero motion or the flow itself.
    """
    inside = (alpha * flow_features).sum((-2, -1)) / alpha.sum((-2, -1)).clamp_min(1.0)
    outside = ((1 - alpha) * flow_features).sum((-2, -1)) / (1 - alpha).sum((-2, -1)).clamp_min(1.0)
    return F.cosine_similarity(inside, outside, dim=1, eps=1e-6).mean()


def temporal_warp_l1(current: Tensor, next_warped: Tensor, valid: Tensor) -> Tensor:
    """Warp loss: a layer at t+1 warped back into t should match the layer at t where visible.

    Args:
        current: (N, C, H, W) layer at t.
        next_warped: (N, C, H, W) layer at t+1 backward-warped by the flow t -> t+1.
        valid: (N, 1, H, W) 1 where the flow is reliable (not occluded).
    """
    return masked_l1(current, next_warped, valid)
