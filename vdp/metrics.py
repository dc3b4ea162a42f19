"""Evaluation metrics: DAVIS region similarity J and boundary accuracy F, PSNR, SSIM, layer losses.

Pure numpy + OpenCV functions on single frames, plus a per-sequence summary for segmentation.
Conventions follow the reference tools so numbers can be compared with published tables:

- J and F as in the DAVIS toolkits (Perazzi et al., CVPR 2016; davis2017-evaluation).
- SSIM as Wang et al. 2004 with the settings of scikit-image
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
- Layer separation scored with the Visual Centrifuge's permutation-invariant loss (Alayrac et
  al., CVPR 2019): :func:`layer_loss` and :func:`permutation_invariant_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "boundary_f",
    "boundary_precision_recall",
    "jaccard",
    "layer_loss",
    "layer_loss_per_frame",
    "permutation_invariant_loss",
    "psnr",
    "score_sequence",
    "seg2bmap",
    "ssim",
]


def _as_mask_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise ValueError(
            f"expected two (H, W) masks, got pred {pred.shape} and gt {gt.shape}; "
            "pass one binary mask per frame (squeeze any channel axis)"
        )
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred {pred.shape} and gt {gt.shape} differ in size; resize the prediction to the "
            "annotation's size (nearest neighbour) before scoring"
        )
    return pred.astype(bool), gt.astype(bool)


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region similarity J: intersection over union of two masks.

    Args:
        pred: (H, W) mask; any non-zero value counts as foreground.
        gt: (H, W) annotation mask.

    Returns:
        |pred & gt| / |pred | gt|, or 1.0 when both masks are empty (DAVIS convention).
    """
    pred, gt = _as_mask_pair(pred, gt)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask, as the DAVIS toolkit's ``seg2bmap``.

    A pixel is boundary when it differs from its right, bottom or bottom-right neighbour, with
    pixels outside the image counting as background. On the last row only the right neighbour
    is compared, on the last column only the bottom one, and the bottom-right pixel is never
    boundary: these edge rules reproduce the toolkit exactly.

    Args:
        mask: (H, W) mask.

    Returns:
        (H, W) bool boundary map.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    right = np.zeros_like(mask)
    below = np.zeros_like(mask)
    below_right = np.zeros_like(mask)
    right[:, :-1] = mask[:, 1:]
    below[:-1, :] = mask[1:, :]
    below_right[:-1, :-1] = mask[1:, 1:]
    boundary = (mask ^ right) | (mask ^ below) | (mask ^ below_right)
    boundary[-1, :] = mask[-1, :] ^ right[-1, :]
    boundary[:, -1] = mask[:, -1] ^ below[:, -1]
    boundary[-1, -1] = False
    return boundary


def _disk(radius: float) -> np.ndarray:
    """Structuring element {(y, x): y^2 + x^2 <= radius^2} on the grid -radius..radius.

    Same as ``skimage.morphology.disk``, which the DAVIS toolkit uses (OpenCV's ellipse kernel
    differs at some radii, e.g. 4 and 6).
    """
    offsets = np.arange(-radius, radius + 1)
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    return (y**2 + x**2 <= radius**2).astype(np.uint8)


def _tolerance_pixels(shape: tuple[int, int], bound_th: float) -> float:
    if bound_th <= 0:
        raise ValueError(f"bound_th must be > 0, got {bound_th}")
    if bound_th >= 1:
        return float(bound_th)
    # DAVIS: a fraction of the image diagonal, rounded up to whole pixels.
    return float(math.ceil(bound_th * math.hypot(*shape)))


def boundary_precision_recall(
    pred: np.ndarray, gt: np.ndarray, *, bound_th: float = 0.008
) -> tuple[float, float]:
    """Boundary precision and recall with a distance tolerance, as the DAVIS toolkit.

    Args:
        pred: (H, W) predicted mask.
        gt: (H, W) annotation mask.
        bound_th: tolerance; a fraction of the image diagonal when < 1 (rounded up to whole
            pixels), else a number of pixels.

    Returns:
        (precision, recall): the fraction of predicted boundary pixels lying within the
        tolerance of an annotated boundary pixel, and vice versa. Special cases as the toolkit:
        both boundaries empty -> (1, 1); only the prediction's empty -> (1, 0); only the
        annotation's empty -> (0, 1).
    """
    pred, gt = _as_mask_pair(pred, gt)
    radius = _tolerance_pixels(pred.shape, bound_th)
    kernel = _disk(radius)

    pred_boundary = seg2bmap(pred)
    gt_boundary = seg2bmap(gt)
    num_pred = np.count_nonzero(pred_boundary)
    num_gt = np.count_nonzero(gt_boundary)
    if num_pred == 0 and num_gt == 0:
        return 1.0, 1.0
    if num_pred == 0:
        return 1.0, 0.0
    if num_gt == 0:
        return 0.0, 1.0

    pred_near = cv2.dilate(pred_boundary.astype(np.uint8), kernel).astype(bool)
    gt_near = cv2.dilate(gt_boundary.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(pred_boundary & gt_near) / num_pred
    recall = np.count_nonzero(gt_boundary & pred_near) / num_gt
    return float(precision), float(recall)


def boundary_f(pred: np.ndarray, gt: np.ndarray, *, bound_th: float = 0.008) -> float:
    """Boundary accuracy F: harmonic mean of boundary precision and recall (DAVIS ``f_measure``).

    Args:
        pred: (H, W) predicted mask.
        gt: (H, W) annotation mask.
        bound_th: tolerance, see :func:`boundary_precision_recall`.

    Returns:
        2PR / (P + R); 1.0 when both masks have no boundary, 0.0 when only one has none or when
        P + R == 0.
    """
    precision, recall = boundary_precision_recall(pred, gt, bound_th=bound_th)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _as_image_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {pred.shape} and target {target.shape} differ in shape; both must be "
            "(H, W, C) (or (H, W)) float images of the same size"
        )
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {pred.shape}")
    return pred, target


def psnr(pred: np.ndarray, target: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB.

    Args:
        pred: (H, W, 3) float image in [0, data_range].
        target: (H, W, 3) float image in [0, data_range].
        data_range: the signal's peak-to-peak range.

    Returns:
        10 log10(data_range^2 / MSE), +inf when the images are equal.
    """
    pred, target = _as_image_pair(pred, target)
    mse = float(np.mean((pred - target) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


# Wang et al. 2004, Sec. III-C: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # scikit-image's default
_SSIM_RADIUS = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)  # 5, an 11x11 window as skimage
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    # scikit-image averages only pixels whose whole window lies inside the image.
    inner = _ssim_map(x, y, data_range)[_SSIM_RADIUS:-_SSIM_RADIUS, _SSIM_RADIUS:-_SSIM_RADIUS]
    return float(inner.mean())


def _ssim_map(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    size = 2 * _SSIM_RADIUS + 1

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(
            image, (size, size), _SSIM_SIGMA, sigmaY=_SSIM_SIGMA, borderType=cv2.BORDER_REFLECT
        )

    mean_x, mean_y = blur(x), blur(y)
    # Population (not sample) covariance, as use_sample_covariance=False.
    var_x = blur(x * x) - mean_x * mean_x
    var_y = blur(y * y) - mean_y * mean_y
    cov_xy = blur(x * y) - mean_x * mean_y
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    return ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )


def region_ssim(pred: np.ndarray, target: np.ndarray, region: np.ndarray, *, data_range: float = 1.0) -> float:
    """SSIM (as `ssim`: same window and constants) averaged over the pixels of ``region`` only.

    Args:
        pred, target: (H, W, C) or (H, W) float images in [0, data_range].
        region: (H, W) bool; the windows of its pixels see their surroundings too.

    Returns:
        The mean SSIM over the region, NaN when it is empty.
    """
    pred, target = _as_image_pair(pred, target)
    region = np.asarray(region, dtype=bool)
    if region.shape != pred.shape[:2]:
        raise ValueError(f"region is {region.shape} but the images are {pred.shape[:2]}")
    if not region.any():
        return math.nan
    if pred.ndim == 2:
        pred, target = pred[..., None], target[..., None]
    maps = [_ssim_map(np.ascontiguousarray(pred[..., c]), np.ascontiguousarray(target[..., c]), data_range)
            for c in range(pred.shape[-1])]
    return float(np.mean([m[region].mean() for m in maps]))


def ssim(pred: np.ndarray, target: np.ndarray, *, data_range: float = 1.0) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    Matches ``skimage.metrics.structural_similarity(pred, target, channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range)``:
    Gaussian window of radius 5, and the 5-pixel border, whose windows leave the image, is left
    out of the mean.

    Args:
        pred: (H, W, C) or (H, W) float image in [0, data_range], H and W >= 11.
        target: same shape as ``pred``.
        data_range: the signal's peak-to-peak range.

    Returns:
        SSIM in [-1, 1]; 1.0 for equal images.
    """
    pred, target = _as_image_pair(pred, target)
    size = 2 * _SSIM_RADIUS + 1
    if min(pred.shape[:2]) < size:
        raise ValueError(
            f"SSIM needs images of at least {size}x{size} pixels, "
            f"got {pred.shape[0]}x{pred.shape[1]}"
        )
    if pred.ndim == 2:
        return _ssim_channel(pred, target, data_range)
    channels = [
        _ssim_channel(
            np.ascontiguousarray(pred[..., c]), np.ascontiguousarray(target[..., c]), data_range
        )
        for c in range(pred.shape[-1])
    ]
    return float(np.mean(channels))


def score_sequence(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], *, bound_th: float = 0.008
) -> dict:
    """Score a predicted mask sequence against its annotations with J and F.

    Two protocols average the same per-frame values over different frames: every annotated frame
    (``j_mean``, ``f_mean``; the davis2017-evaluation "unsupervised" convention), and the official
    DAVIS-2016 toolkits' protocol, which leaves out the first and the last frame of each sequence
    for every method (``j_mean_davis2016``, ``f_mean_davis2016``; published DAVIS-2016 tables use
    it; equal to the all-frames means when there are fewer than 3 frames).

    Args:
        preds: T masks of shape (H, W), one per annotated frame.
        gts: T annotation masks of shape (H, W), in the same order.
        bound_th: boundary tolerance for F, see :func:`boundary_precision_recall`.

    Returns:
        ``j_per_frame`` and ``f_per_frame`` (lists in frame order), ``j_mean``, ``f_mean``,
        ``jf_mean`` = (j_mean + f_mean) / 2 (the headline J&F number), ``j_mean_davis2016``,
        ``f_mean_davis2016`` and ``num_frames``.
    """
    if len(preds) != len(gts):
        raise ValueError(
            f"got {len(preds)} predicted masks but {len(gts)} annotations; pass one prediction "
            "per annotated frame, in the same order"
        )
    if len(preds) == 0:
        raise ValueError("no frames to score: preds and gts are empty")
    j_per_frame = [jaccard(pred, gt) for pred, gt in zip(preds, gts)]
    f_per_frame = [boundary_f(pred, gt, bound_th=bound_th) for pred, gt in zip(preds, gts)]
    j_mean = float(np.mean(j_per_frame))
    f_mean = float(np.mean(f_per_frame))
    inner = slice(1, -1) if len(j_per_frame) >= 3 else slice(None)
    return {
        "j_per_frame": j_per_frame,
        "f_per_frame": f_per_frame,
        "j_mean": j_mean,
        "f_mean": f_mean,
        "jf_mean": (j_mean + f_mean) / 2,
        "j_mean_davis2016": float(np.mean(j_per_frame[inner])),
        "f_mean_davis2016": float(np.mean(f_per_frame[inner])),
        "num_frames": len(j_per_frame),
    }


# --------------------------------------------------------------------------------------------
# Layer separation


def _frame_as_float(frame: np.ndarray, what: str) -> np.ndarray:
    """One (H, W, C) frame as float64 in [0, 1]: uint8 is divided by 255, floats are kept."""
    frame = np.asarray(frame)
    if frame.ndim != 3:
        raise ValueError(f"{what}: expected (H, W, C) frames, got a frame of shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame.astype(np.float64) / 255.0
    if np.issubdtype(frame.dtype, np.floating):
        return frame.astype(np.float64)
    raise ValueError(f"{what}: expected uint8 frames or float frames in [0, 1], got {frame.dtype}")


def _frame_layer_loss(u: np.ndarray, v: np.ndarray) -> float:
    difference = u - v  # the gradients' difference is the difference's gradient
    pixels = float(np.abs(difference).mean())
    along_x = float(np.abs(difference[:, 1:] - difference[:, :-1]).mean())
    along_y = float(np.abs(difference[1:] - difference[:-1]).mean())
    return (pixels + (along_x + along_y) / 2.0) / 2.0


def layer_loss_per_frame(u: Sequence[np.ndarray] | np.ndarray, v: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per frame, the distance :func:`layer_loss` averages over frames.

    Args:
        u: (T, H, W, C) video, uint8 (scaled to [0, 1]) or float in [0, 1]; any sequence of
            frames works (read one at a time).
        v: the same shape.

    Returns:
        (T,) float64.
    """
    if len(u) != len(v):
        raise ValueError(f"the two videos have {len(u)} and {len(v)} frames; they must have as many")
    if len(u) == 0:
        raise ValueError("no frames to compare: both videos are empty")
    losses = np.empty(len(u), dtype=np.float64)
    for t in range(len(u)):
        a, b = _frame_as_float(u[t], "first video"), _frame_as_float(v[t], "second video")
        if a.shape != b.shape:
            raise ValueError(f"frame {t}: shapes {a.shape} and {b.shape} differ; the videos must match")
        if a.shape[0] < 2 or a.shape[1] < 2:
            raise ValueError(f"frame {t}: gradients need frames of at least 2x2 pixels, got {a.shape[:2]}")
        losses[t] = _frame_layer_loss(a, b)
    return losses


def layer_loss(u: Sequence[np.ndarray] | np.ndarray, v: Sequence[np.ndarray] | np.ndarray) -> float:
    """The Visual Centrifuge's distance between two layers (videos): pixels and gradients, L1.

    With frames as float in [0, 1] (uint8 divided by 255), for each frame ``t``::

        pixels_t = mean |U_t - V_t|                        over all H*W*C values
        dx_t     = mean |Dx U_t - Dx V_t|,  Dx X[y, x] = X[y, x+1] - X[y, x]   (H*(W-1)*C values)
        dy_t     = mean |Dy U_t - Dy V_t|,  Dy X[y, x] = X[y+1, x] - X[y, x]   ((H-1)*W*C values)
        loss_t   = (pixels_t + (dx_t + dy_t) / 2) / 2

    i.e. the gradient term is the mean of the two directions' means (forward differences, no
    padding, every channel), and the result is the mean of ``loss_t`` over frames. It lies in
    [0, 1]; 0 for equal videos. Computed one frame at a time (float copies of one frame only).

    Args:
        u: (T, H, W, C) video, uint8 or float in [0, 1] (or a sequence of such frames).
        v: the same shape; H, W >= 2.

    Returns:
        The mean over frames.
    """
    return float(np.mean(layer_loss_per_frame(u, v)))


def permutation_invariant_loss(
    outputs: Sequence[np.ndarray], truths: Sequence[np.ndarray]
) -> dict:
    """Layer-separation loss that does not care which output is which layer (Visual Centrifuge).

    ``loss = min over ordered pairs i != j of layer_loss(truths[0], outputs[i]) +
    layer_loss(truths[1], outputs[j])``: one assignment for the whole video (not per frame), the
    sum over the two layers (so it lies in [0, 2]). With more than two outputs the best two are
    chosen and the others ignored. Each (truth, output) distance is computed once, frame by frame.

    Args:
        outputs: n >= 2 videos, each (T, H, W, 3) uint8 (or float in [0, 1]).
        truths: the two true layers ``(layer1, layer2)``, each the outputs' shape.

    Returns:
        ``loss`` (float), ``assignment`` ``[i, j]`` (the outputs matched to layer 1 and layer 2;
        ties go to the first pair in order i, then j), ``per_layer`` ``[loss of layer 1, loss of
        layer 2]``, ``per_frame`` (T floats: layer 1's plus layer 2's distance in each frame, for
        the chosen assignment; their mean is ``loss``), ``per_frame_layers`` (T pairs) and
        ``matrix`` (2 x n: ``matrix[k][i]`` = layer_loss(truths[k], outputs[i])).
    """
    if len(truths) != 2:
        raise ValueError(f"expected the two true layers, got {len(truths)}")
    if len(outputs) < 2:
        raise ValueError(f"expected at least two output layers, got {len(outputs)}")
    per_frame = np.stack([np.stack([layer_loss_per_frame(truth, output) for output in outputs])
                          for truth in truths])  # (2, n, T)
    matrix = per_frame.mean(axis=2)
    pairs = [(i, j) for i in range(len(outputs)) for j in range(len(outputs)) if i != j]
    best = min(pairs, key=lambda pair: matrix[0, pair[0]] + matrix[1, pair[1]])
    first, second = per_frame[0, best[0]], per_frame[1, best[1]]
    return {
        "loss": float(matrix[0, best[0]] + matrix[1, best[1]]),
        "assignment": [int(best[0]), int(best[1])],
        "per_layer": [float(matrix[0, best[0]]), float(matrix[1, best[1]])],
        "per_frame": (first + second).tolist(),
        "per_frame_layers": [[float(a), float(b)] for a, b in zip(first, second)],
        "matrix": matrix.tolist(),
    }
