"""Checks of vdp.upsample against brute-force references and analytic cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vdp.upsample import box_filter, fast_guided_upsample, upsample_alpha


def _reference_guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. Eq. (14)-(16) window by window: guide (H, W, C), src (H, W)."""
    height, width, channels = guide.shape
    a = np.zeros((height, width, channels))
    b = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            rows = slice(max(y - radius, 0), y + radius + 1)
            cols = slice(max(x - radius, 0), x + radius + 1)
            window_i = guide[rows, cols].reshape(-1, channels)
            window_p = src[rows, cols].reshape(-1)
            mean_i = window_i.mean(axis=0)
            sigma = (window_i - mean_i).T @ (window_i - mean_i) / len(window_p)
            cov = (window_i - mean_i).T @ (window_p - window_p.mean()) / len(window_p)
            a[y, x] = np.linalg.solve(sigma + eps * np.eye(channels), cov)
            b[y, x] = window_p.mean() - a[y, x] @ mean_i
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            rows = slice(max(y - radius, 0), y + radius + 1)
            cols = slice(max(x - radius, 0), x + radius + 1)
            mean_a = a[rows, cols].reshape(-1, channels).mean(axis=0)
            out[y, x] = mean_a @ guide[y, x] + b[rows, cols].mean()
    return out


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) array -> (1, C, H, W) float64 tensor."""
    if image.ndim == 2:
        image = image[..., None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].double()


def test_box_filter_averages_valid_pixels_only() -> None:
    x = torch.arange(20, dtype=torch.float64).reshape(1, 1, 4, 5)
    out = box_filter(x, 1)
    # Corner: mean of the 2x2 block {0, 1, 5, 6}; interior (1, 1): mean of rows 0..2, cols 0..2.
    assert out[0, 0, 0, 0].item() == pytest.approx(3.0)
    assert out[0, 0, 1, 1].item() == pytest.approx(6.0)
    assert out.shape == x.shape


@pytest.mark.parametrize("channels", [1, 3])
def test_guided_filter_keeps_constant_source(channels: int) -> None:
    # At equal sizes fast_guided_upsample is the guided filter itself.
    guide = torch.rand(2, channels, 12, 10, generator=torch.Generator().manual_seed(0))
    src = torch.full((2, 1, 12, 10), 0.7)
    out = fast_guided_upsample(src, guide, radius=2, eps=1e-3)
    torch.testing.assert_close(out, src, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_guided_filter_matches_window_by_window_reference(channels: int) -> None:
    rng = np.random.default_rng(0)
    guide = rng.random((7, 9, channels))
    src = rng.random((7, 9))
    expected = _reference_guided_filter(guide, src, radius=1, eps=1e-2)
    out = fast_guided_upsample(_to_tensor(src), _to_tensor(guide), radius=1, eps=1e-2)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-10)


def test_colour_guide_with_equal_channels_is_grayscale_with_eps_over_three() -> None:
    # With I = (g, g, g): Sigma = v 11^T, a = (v 11^T + eps U)^-1 c 1 = c / (3v + eps) 1, so
    # a . I = c / (v + eps / 3) g: the grayscale filter with eps / 3.
    gray = torch.rand(1, 1, 10, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    src = torch.rand(1, 1, 10, 11, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    colour = fast_guided_upsample(src, gray.expand(1, 3, 10, 11), radius=2, eps=3e-2)
    grayscale = fast_guided_upsample(src, gray, radius=2, eps=1e-2)
    torch.testing.assert_close(colour, grayscale)


def test_self_guided_filter_preserves_edges() -> None:
    step = torch.zeros(1, 1, 16, 16)
    step[..., 8:] = 1.0
    out = fast_guided_upsample(step, step, radius=3, eps=1e-6)
    assert (out - step).abs().max().item() < 1e-3
    # Plain box blurring of the same radius smears the edge.
    assert (box_filter(step, 3) - step).abs().max().item() > 0.3


def test_fast_guided_upsample_shape_and_frames_independent() -> None:
    guide = torch.rand(2, 3, 32, 24, generator=torch.Generator().manual_seed(5))
    src = torch.rand(2, 1, 8, 6, generator=torch.Generator().manual_seed(6))
    out = fast_guided_upsample(src, guide, radius=1)
    assert out.shape == (2, 1, 32, 24)
    torch.testing.assert_close(out[1:], fast_guided_upsample(src[1:], guide[1:], radius=1))


def test_guided_filter_gradients() -> None:
    guide = torch.rand(1, 3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    src = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    guide.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda g, p: fast_guided_upsample(p, g, radius=1, eps=1e-2), (guide, src)
    )


def _two_colour_frame(true_alpha: np.ndarray) -> np.ndarray:
    foreground = np.array([220, 180, 30], dtype=np.uint8)
    background = np.array([40, 60, 200], dtype=np.uint8)
    return np.where(true_alpha[..., None] > 0, foreground, background).astype(np.uint8)


@pytest.mark.parametrize("edge", ["vertical", "slanted"])
def test_upsample_alpha_follows_full_resolution_edge_better_than_bilinear(edge: str) -> None:
    rows, cols = np.mgrid[:64, :64]
    boundary = cols >= 26 if edge == "vertical" else cols + 0.6 * rows >= 40
    true_alpha = boundary.astype(np.float32)
    frame = _two_colour_frame(true_alpha)
    alpha_low = cv2.resize(true_alpha, (16, 16), interpolation=cv2.INTER_AREA)

    bilinear = cv2.resize(alpha_low, (64, 64), interpolation=cv2.INTER_LINEAR)
    guided = upsample_alpha(alpha_low, frame)

    assert guided.shape == (64, 64) and guided.dtype == np.float32
    assert guided.min() >= 0.0 and guided.max() <= 1.0
    bilinear_error = np.abs(bilinear - true_alpha).mean()
    guided_error = np.abs(guided - true_alpha).mean()
    assert guided_error < 0.25 * bilinear_error


def test_upsample_alpha_rejects_float_frame() -> None:
    with pytest.raises(ValueError, match="uint8"):
        upsample_alpha(np.zeros((4, 4), np.float32), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        upsample_alpha(np.zeros((4, 4), np.float32), np.zeros((8, 8), np.uint8))
