"""Edge-aware lifting of a low-resolution map (alpha, mask) to full resolution.

The guided filter (He et al., "Guided Image Filtering", TPAMI 2013) fits, in every window, a
linear model q = a * I + b from the guide image I to the source p; the output follows the edges
of I. The fast variant (He & Sun, "Fast Guided Filter", 2015; Wu et al., "Fast End-to-End
Trainable Guided Filter", CVPR 2018) fits a and b at low resolution and only applies them at
full resolution, so the full-resolution cost is one bilinear upsampling and a multiply-add.

All functions are differentiable tensor functions; wrap calls in ``torch.no_grad()`` for
inference.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["box_filter", "fast_guided_upsample", "upsample_alpha"]


def box_filter(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2r+1) x (2r+1) window around each pixel, clipped to the image.

    Near the border only pixels inside the image are averaged (the normalisation of He et al.'s
    reference code). Computed separably, O(r) per pixel, without the precision loss of
    float32 cumulative sums on large frames.

    Args:
        x: (N, C, H, W) tensor.
        radius: window radius r >= 0.

    Returns:
        (N, C, H, W) tensor.
    """
    if radius == 0:
        return x
    size = 2 * radius + 1
    # A clipped rectangle is a product of clipped intervals, so two 1-D means with
    # count_include_pad=False give exactly the 2-D mean over valid pixels.
    x = F.avg_pool2d(x, (size, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, size), stride=1, padding=(0, radius), count_include_pad=False)


def _check_guide_and_source(guide: Tensor, src: Tensor, name_guide: str, name_src: str) -> None:
    if guide.ndim != 4 or src.ndim != 4:
        raise ValueError(
            f"expected 4-D tensors, got {name_guide} {tuple(guide.shape)} and "
            f"{name_src} {tuple(src.shape)}; shapes are (N, C, H, W)"
        )
    if guide.shape[1] not in (1, 3):
        raise ValueError(
            f"{name_guide} must have 1 (grayscale) or 3 (colour) channels, got {guide.shape[1]}"
        )
    if guide.shape[0] != src.shape[0]:
        raise ValueError(
            f"{name_guide} has batch size {guide.shape[0]} but {name_src} has {src.shape[0]}"
        )


def _check_radius_eps(radius: int, eps: float) -> None:
    if radius < 0 or int(radius) != radius:
        raise ValueError(f"radius must be a non-negative integer, got {radius}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (it regularises flat windows), got {eps}")


def _linear_coefficients(guide: Tensor, src: Tensor, radius: int, eps: float) -> tuple[Tensor, Tensor]:
    """Per-window least-squares fit src ~ a . guide + b, then averaged over windows.

    Args:
        guide: (N, C, H, W) with C in {1, 3}.
        src: (N, K, H, W); each of the K channels is fitted separately.

    Returns:
        (mean_a, mean_b): mean_a is (N, C*K, H, W) laid out channel-major in the guide
        (a for guide channel c, source channel k at index c*K + k); mean_b is (N, K, H, W).
    """
    mean_p = box_filter(src, radius)
    mean_i = box_filter(guide, radius)

    if guide.shape[1] == 1:
        # Grayscale guide, He et al. Eq. (7)-(8).
        var_i = box_filter(guide * guide, radius) - mean_i * mean_i
        cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return box_filter(a, radius), box_filter(b, radius)

    # Colour guide, He et al. Eq. (14): a = (Sigma + eps U)^-1 cov(I, p), Sigma the 3x3
    # covariance of the guide in the window.
    channels = [guide[:, c : c + 1] for c in range(3)]
    means = [mean_i[:, c : c + 1] for c in range(3)]
    cov_ip = [box_filter(channels[c] * src, radius) - means[c] * mean_p for c in range(3)]

    def covariance(c: int, d: int) -> Tensor:
        return box_filter(channels[c] * channels[d], radius) - means[c] * means[d]

    s_rr = covariance(0, 0) + eps
    s_rg = covariance(0, 1)
    s_rb = covariance(0, 2)
    s_gg = covariance(1, 1) + eps
    s_gb = covariance(1, 2)
    s_bb = covariance(2, 2) + eps
    # Closed-form inverse of the symmetric 3x3 matrix via cofactors (per pixel, no batching
    # of millions of tiny linalg calls).
    inv_rr = s_gg * s_bb - s_gb * s_gb
    inv_rg = s_gb * s_rb - s_rg * s_bb
    inv_rb = s_rg * s_gb - s_gg * s_rb
    inv_gg = s_rr * s_bb - s_rb * s_rb
    inv_gb = s_rb * s_rg - s_rr * s_gb
    inv_bb = s_rr * s_gg - s_rg * s_rg
    det = s_rr * inv_rr + s_rg * inv_rg + s_rb * inv_rb

    a_r = (inv_rr * cov_ip[0] + inv_rg * cov_ip[1] + inv_rb * cov_ip[2]) / det
    a_g = (inv_rg * cov_ip[0] + inv_gg * cov_ip[1] + inv_gb * cov_ip[2]) / det
    a_b = (inv_rb * cov_ip[0] + inv_gb * cov_ip[1] + inv_bb * cov_ip[2]) / det
    b = mean_p - a_r * means[0] - a_g * means[1] - a_b * means[2]
    mean_a = torch.cat([box_filter(a, radius) for a in (a_r, a_g, a_b)], dim=1)
    return mean_a, box_filter(b, radius)


def _apply_coefficients(mean_a: Tensor, mean_b: Tensor, guide: Tensor) -> Tensor:
    """q = mean_a . guide + mean_b, with mean_a laid out as in :func:`_linear_coefficients`."""
    num_src = mean_b.shape[1]
    out = mean_b
    for c in range(guide.shape[1]):
        out = out + mean_a[:, c * num_src : (c + 1) * num_src] * guide[:, c : c + 1]
    return out


def fast_guided_upsample(
    low_src: Tensor, high_guide: Tensor, *, radius: int, eps: float = 1e-4
) -> Tensor:
    """Lift a low-resolution map to the guide's resolution with the fast guided filter.

    The guide is area-downsampled to the source's size, the coefficients (a, b) are fitted there,
    bilinearly upsampled, and applied to the full-resolution guide (Wu et al. 2018, Sec. 3). At
    equal sizes this is the guided filter itself (He et al. 2013).
    Frames are processed one at a time, so peak memory is a few full-resolution planes of one
    frame (about 10 x H x W floats) regardless of N.

    Args:
        low_src: (N, K, h, w) float, usually K = 1 (alpha or mask).
        high_guide: (N, C, H, W) float in [0, 1], H >= h, W >= w; C = 3 (colour guided filter
            with the per-pixel 3x3 covariance inverse, Eq. 14) or 1 (grayscale).
        radius: window radius in low-resolution pixels.
        eps: regularisation; larger means smoother. Edges with guide variance well above ``eps``
            are kept.

    Returns:
        (N, K, H, W) tensor in ``low_src``'s dtype, not clipped.
    """
    _check_guide_and_source(high_guide, low_src, "high_guide", "low_src")
    _check_radius_eps(radius, eps)
    low_size = tuple(low_src.shape[-2:])
    high_size = tuple(high_guide.shape[-2:])
    dtype = low_src.dtype if low_src.is_floating_point() else torch.float32
    outputs = []
    for index in range(low_src.shape[0]):
        guide = high_guide[index : index + 1].to(dtype)
        src = low_src[index : index + 1].to(dtype)
        low_guide = guide if low_size == high_size else F.interpolate(guide, size=low_size, mode="area")
        mean_a, mean_b = _linear_coefficients(low_guide, src, radius, eps)
        if low_size != high_size:
            mean_a = F.interpolate(mean_a, size=high_size, mode="bilinear", align_corners=False)
            mean_b = F.interpolate(mean_b, size=high_size, mode="bilinear", align_corners=False)
        outputs.append(_apply_coefficients(mean_a, mean_b, guide))
    return torch.cat(outputs, dim=0)


def upsample_alpha(
    alpha_low: np.ndarray,
    frame_high: np.ndarray,
    *,
    radius: int = 2,
    eps: float = 1e-3,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Lift a low-resolution alpha matte to a frame's resolution, following the frame's edges.

    Args:
        alpha_low: (h, w) float alpha in [0, 1].
        frame_high: (H, W, 3) uint8 frame (RGB or BGR; the colour guided filter does not care
            about channel order).
        radius: window radius in low-resolution pixels.
        eps: regularisation on the guide scaled to [0, 1].
        device: where to compute.

    Returns:
        (H, W) float32 alpha clipped to [0, 1].
    """
    alpha_low = np.asarray(alpha_low)
    frame_high = np.asarray(frame_high)
    if alpha_low.ndim != 2:
        raise ValueError(f"alpha_low must be (h, w), got shape {alpha_low.shape}")
    if frame_high.ndim != 3 or frame_high.shape[2] != 3:
        raise ValueError(f"frame_high must be (H, W, 3), got shape {frame_high.shape}")
    if frame_high.dtype != np.uint8:
        raise ValueError(
            f"frame_high must be uint8 (0..255), got {frame_high.dtype}; convert with "
            "(frame * 255).round().astype(np.uint8) if it holds floats in [0, 1]"
        )
    with torch.no_grad():
        guide = torch.from_numpy(np.ascontiguousarray(frame_high)).to(device)
        guide = guide.permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
        src = torch.from_numpy(alpha_low.astype(np.float32, copy=False)).to(device)[None, None]
        alpha = fast_guided_upsample(src, guide, radius=radius, eps=eps)
        return alpha[0, 0].clamp_(0.0, 1.0).cpu().numpy()
