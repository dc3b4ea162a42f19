"""Hand-computed checks of vdp.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdp.metrics import (
    boundary_f,
    boundary_precision_recall,
    jaccard,
    psnr,
    score_sequence,
    seg2bmap,
    ssim,
)


def square(size: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + height, left : left + width] = True
    return mask


# --- J ---------------------------------------------------------------------------------------


def test_jaccard_hand_cases() -> None:
    a = square(8, 0, 0, 2, 4)
    assert jaccard(a, a) == 1.0
    assert jaccard(a, square(8, 4, 4, 2, 4)) == 0.0
    # Two 2x4 rectangles sharing half their area: 4 / (8 + 8 - 4).
    assert jaccard(a, square(8, 0, 2, 2, 4)) == pytest.approx(1 / 3)
    empty = np.zeros((8, 8), dtype=bool)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(empty, a) == 0.0


def test_jaccard_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        jaccard(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        jaccard(np.zeros((4, 4, 1), bool), np.zeros((4, 4, 1), bool))


# --- F ---------------------------------------------------------------------------------------


def test_seg2bmap_marks_right_bottom_and_diagonal_transitions() -> None:
    expected = np.array(
        [
            [1, 1, 1, 1, 0, 0],
            [1, 0, 0, 1, 0, 0],
            [1, 0, 0, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(seg2bmap(square(6, 1, 1, 3, 3)), expected)


def test_seg2bmap_edge_rules() -> None:
    # The toolkit compares the last row only horizontally and the last column only vertically,
    # so a mask filling the image has no boundary along the image edge.
    assert not seg2bmap(np.ones((4, 5), bool)).any()


def test_boundary_f_identical_and_empty() -> None:
    a = square(32, 8, 8, 10, 12)
    empty = np.zeros_like(a)
    assert boundary_f(a, a) == 1.0
    assert boundary_f(empty, empty) == 1.0
    assert boundary_f(empty, a) == 0.0
    assert boundary_f(a, empty) == 0.0
    assert boundary_precision_recall(empty, a) == (1.0, 0.0)
    assert boundary_precision_recall(a, empty) == (0.0, 1.0)


def test_boundary_f_one_pixel_shift_is_within_default_tolerance() -> None:
    # 64x64: ceil(0.008 * 90.5) = 1 pixel tolerance.
    gt = square(64, 20, 20, 16, 16)
    assert boundary_f(square(64, 20, 21, 16, 16), gt) == 1.0
    assert boundary_f(square(64, 21, 20, 16, 16), gt) == 1.0


def test_boundary_f_far_shift_is_zero() -> None:
    gt = square(64, 4, 4, 10, 10)
    assert boundary_f(square(64, 40, 40, 10, 10), gt) == 0.0


def test_boundary_precision_recall_hand_case() -> None:
    # gt: 3x3 square at rows/cols 1..3 of an 8x8 image; its 12 boundary pixels are the outer
    # top row/left column (row 0 cols 0..3, col 0 rows 1..3) and the inner right column/bottom
    # row (col 3 rows 1..2, row 3 cols 1..3). The prediction is shifted right by 2 columns.
    # With a 1-pixel tolerance (a plus-shaped disk) 8 of each 12 lie within reach of the other
    # boundary; by symmetry P = R = 8/12.
    gt = square(8, 1, 1, 3, 3)
    pred = square(8, 1, 3, 3, 3)
    precision, recall = boundary_precision_recall(pred, gt, bound_th=1)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 3)
    assert boundary_f(pred, gt, bound_th=1) == pytest.approx(2 / 3)
    # 8x8 diagonal is 11.3; ceil(0.1 * 11.3) = 2 pixels of tolerance absorbs the shift.
    assert boundary_f(pred, gt, bound_th=0.1) == 1.0


def test_boundary_precision_recall_asymmetric_hand_case() -> None:
    # An extra isolated pixel at (6, 6) adds 4 predicted boundary pixels ((5,5), (5,6), (6,5),
    # (6,6)), none near the gt boundary: P = 12/16, R = 12/12, F = 2 * 0.75 / 1.75 = 6/7.
    gt = square(8, 1, 1, 3, 3)
    pred = gt.copy()
    pred[6, 6] = True
    precision, recall = boundary_precision_recall(pred, gt, bound_th=1)
    assert precision == pytest.approx(0.75)
    assert recall == 1.0
    assert boundary_f(pred, gt, bound_th=1) == pytest.approx(6 / 7)


# --- PSNR / SSIM -----------------------------------------------------------------------------


def test_psnr_known_mse() -> None:
    target = np.zeros((8, 8, 3))
    # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB.
    assert psnr(np.full_like(target, 0.1), target) == pytest.approx(20.0)
    assert psnr(np.full_like(target, 25.5), target, data_range=255.0) == pytest.approx(20.0)
    assert psnr(target, target) == math.inf


def test_ssim_identical_is_one() -> None:
    image = np.random.default_rng(0).random((24, 20, 3))
    assert ssim(image, image) == pytest.approx(1.0)


def test_ssim_constant_images_closed_form() -> None:
    # Constant images have zero variance, so SSIM reduces to the luminance term
    # (2 a b + C1) / (a^2 + b^2 + C1).
    a, b = 0.3, 0.5
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    value = ssim(np.full((16, 16, 3), a), np.full((16, 16, 3), b))
    assert value == pytest.approx(expected, abs=1e-9)


def _gaussian_window(sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return np.outer(kernel, kernel)


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Direct Wang et al. formula over every window lying fully inside the image."""
    weights = _gaussian_window()
    c1, c2 = 0.01**2, 0.03**2
    scores = []
    for c in range(x.shape[-1]):
        wx = np.lib.stride_tricks.sliding_window_view(x[..., c], weights.shape)
        wy = np.lib.stride_tricks.sliding_window_view(y[..., c], weights.shape)
        mx = (wx * weights).sum(axis=(-2, -1))
        my = (wy * weights).sum(axis=(-2, -1))
        vx = (wx**2 * weights).sum(axis=(-2, -1)) - mx**2
        vy = (wy**2 * weights).sum(axis=(-2, -1)) - my**2
        cxy = (wx * wy * weights).sum(axis=(-2, -1)) - mx * my
        ssim_map = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        scores.append(ssim_map.mean())
    return float(np.mean(scores))


def test_ssim_matches_direct_formula() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((20, 23, 3))
    y = np.clip(x + 0.15 * rng.standard_normal(x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(_reference_ssim(x, y), abs=1e-10)


def test_ssim_matches_skimage_when_installed() -> None:
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    x = rng.random((32, 30, 3))
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
    expected = skimage_metrics.structural_similarity(
        x,
        y,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert ssim(x, y) == pytest.approx(expected, abs=1e-7)


def test_ssim_rejects_tiny_images() -> None:
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


# --- sequences -------------------------------------------------------------------------------


def test_score_sequence_averages_all_frames() -> None:
    gt = square(8, 0, 0, 2, 4)
    empty = np.zeros_like(gt)
    preds = [gt, square(8, 0, 2, 2, 4), square(8, 6, 4, 2, 4)]
    scores = score_sequence(preds, [gt, gt, gt])
    assert scores["num_frames"] == 3
    assert scores["j_per_frame"] == pytest.approx([1.0, 1 / 3, 0.0])
    assert scores["j_mean"] == pytest.approx(4 / 9)
    assert scores["f_per_frame"][0] == 1.0
    assert scores["f_per_frame"] == [boundary_f(pred, gt) for pred in preds]
    assert scores["f_mean"] == pytest.approx(np.mean(scores["f_per_frame"]))
    assert scores["jf_mean"] == pytest.approx((scores["j_mean"] + scores["f_mean"]) / 2)
    # The DAVIS-2016 toolkits' protocol leaves out the first and the last frame: only frame 1 counts.
    assert scores["j_mean_davis2016"] == pytest.approx(1 / 3)
    assert scores["f_mean_davis2016"] == scores["f_per_frame"][1]

    both_empty = score_sequence([empty], [empty])
    assert both_empty["j_mean"] == 1.0 and both_empty["f_mean"] == 1.0


def test_score_sequence_rejects_length_mismatch() -> None:
    gt = square(8, 0, 0, 2, 4)
    with pytest.raises(ValueError, match="2 predicted masks but 1 annotations"):
        score_sequence([gt, gt], [gt])
    with pytest.raises(ValueError, match="no frames"):
        score_sequence([], [])
