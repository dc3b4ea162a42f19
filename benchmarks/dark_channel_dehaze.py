"""Dark channel prior dehazing (He, Sun and Tang, CVPR 2009 / TPAMI 2011), scored on REVIDE.

Not part of the CLI: a classical reference point for dehazing, scored by
`vdp.bench.restoration.run_restoration_benchmark` like any other method.

Per frame, as the classic single-image method (no temporal smoothing, one airlight per frame):
  1. dark channel: minimum over colour channels, then over a square patch (15 pixels at 480p,
     scaled with the frame's shorter side; TPAMI section 3);
  2. airlight A: among the brightest 0.1% pixels of the dark channel, the input pixel with the
     highest intensity (section 4.4);
  3. transmission t = 1 - omega * dark_channel(I / A), omega = 0.95 keeping a little haze for
     depth perception (section 4.1);
  4. t refined by a guided filter with the grayscale frame as guide (radius 4 x patch, eps 1e-4:
     "Guided Image Filtering", TPAMI 2013, section 4, replacing soft matting);
  5. scene radiance J = (I - A) / max(t, t0) + A, t0 = 0.1 (section 4.4), clipped to [0, 1].

Usage:
    python benchmarks/dark_channel_dehaze.py ROOT -o OUT [--limit-frames N] [--pairs a,b] [--save-frames]
"""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np

from vdp.bench.restoration import benchmark_argument_parser, run_benchmark_command

METHOD_NAME = "dark channel prior (He et al.)"

#: Patch size at 480 lines (TPAMI section 5 uses 15 x 15 for 600 x 400 images).
PATCH_AT_480P = 15
OMEGA = 0.95
T0 = 0.1
#: Fraction of the brightest dark-channel pixels searched for the airlight.
AIRLIGHT_FRACTION = 0.001
#: Guided-filter radius as a multiple of the patch size (r = 60 for a 15-pixel patch).
GUIDED_RADIUS_PER_PATCH = 4
GUIDED_EPS = 1e-4


def patch_size(height: int, width: int) -> int:
    """Odd patch side, 15 at 480 lines, proportional to the shorter side, at least 3."""
    side = round(PATCH_AT_480P * min(height, width) / 480)
    return max(3, side + (side % 2 == 0))


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over channels then over a ``patch`` x ``patch`` square.

    Args:
        image: (H, W, 3) float32.
        patch: odd window side.

    Returns:
        (H, W) float32.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    # Erosion pads with +inf at the border by default, so border windows see only real pixels.
    return cv2.erode(image.min(axis=2), kernel)


def estimate_airlight(image: np.ndarray, dark: np.ndarray, *, fraction: float = AIRLIGHT_FRACTION) -> np.ndarray:
    """He et al.'s airlight: the brightest input pixel among the haziest ``fraction`` of pixels.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        dark: (H, W) its dark channel.

    Returns:
        (3,) float32 airlight, each channel at least 1e-3 (it is divided by).
    """
    count = max(1, int(round(dark.size * fraction)))
    haziest = np.argpartition(dark.ravel(), dark.size - count)[dark.size - count:]
    pixels = image.reshape(-1, 3)[haziest]
    return np.maximum(pixels[np.argmax(pixels.sum(axis=1))], 1e-3).astype(np.float32)


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window, clipped to the image (He et al.'s normalisation)."""
    size = (2 * radius + 1, 2 * radius + 1)
    total = cv2.boxFilter(image, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter(np.ones_like(image), -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return total / count


def guided_filter_gray(guide: np.ndarray, source: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """Grayscale guided filter (He et al., TPAMI 2013, Algorithm 1) on (H, W) float32 arrays.

    `vdp.upsample.fast_guided_upsample` (at equal sizes) computes the same thing in torch, but its box filter costs
    O(radius) per pixel; at REVIDE's resolution the radius is over 200 pixels, where OpenCV's
    running-sum box filter (O(1) per pixel) is about two orders of magnitude faster.
    """
    mean_guide = box_mean(guide, radius)
    mean_source = box_mean(source, radius)
    covariance = box_mean(guide * source, radius) - mean_guide * mean_source
    variance = box_mean(guide * guide, radius) - mean_guide * mean_guide
    a = covariance / (variance + eps)
    b = mean_source - a * mean_guide
    return box_mean(a, radius) * guide + box_mean(b, radius)


def dehaze_image(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dehaze one frame.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].

    Returns:
        (dehazed (H, W, 3) float32 in [0, 1], airlight (3,), refined transmission (H, W)).
    """
    height, width = image.shape[:2]
    patch = patch_size(height, width)
    airlight = estimate_airlight(image, dark_channel(image, patch))
    transmission = 1.0 - OMEGA * dark_channel(image / airlight, patch)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    radius = GUIDED_RADIUS_PER_PATCH * patch
    transmission = guided_filter_gray(gray, transmission.astype(np.float32), radius=radius, eps=GUIDED_EPS)
    transmission = np.clip(transmission, T0, 1.0)
    dehazed = (image - airlight) / transmission[..., None] + airlight
    return np.clip(dehazed, 0.0, 1.0), airlight, transmission


def dehaze_frames(frames: np.ndarray) -> np.ndarray:
    """Dark channel prior on every frame independently (one airlight per frame).

    Args:
        frames: (T, H, W, 3) uint8 RGB.

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    return np.stack([_dehaze_uint8(frame)[0] for frame in frames])


def _dehaze_uint8(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dehazed, airlight, _ = dehaze_image(frame.astype(np.float32) / 255.0)
    return np.rint(dehazed * 255.0).astype(np.uint8), airlight


def restore(frames: np.ndarray, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The restorer run by the benchmark: dehazed frames and the airlight of each frame."""
    results = [_dehaze_uint8(frame) for frame in frames]
    airlights = np.stack([airlight for _, airlight in results])
    info = {"patch": patch_size(*frames.shape[1:3]), "omega": OMEGA, "t0": T0,
            "airlight_mean": [round(float(v), 4) for v in airlights.mean(axis=0)],
            "airlight_std": [round(float(v), 4) for v in airlights.std(axis=0)]}
    return np.stack([dehazed for dehazed, _ in results]), info


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_argument_parser(description=__doc__.split("\n\n")[0],
                                       root_help="REVIDE folder (hazy/, gt/) or a folder holding one split")
    args = parser.parse_args(argv)
    return run_benchmark_command(args, layout="revide", restorer=restore, method_name=METHOD_NAME)


if __name__ == "__main__":
    sys.exit(main())
