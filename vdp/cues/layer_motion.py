"""The motions of superimposed layers, read from their blend by phase correlation.

When a frame is the sum of layers that each shift by their own amount, the phase correlation of
two consecutive frames (the inverse transform of their normalised cross-power spectrum) has one
peak per layer, at that layer's shift: a sum of shifted signals correlates with itself at each
shift. Dense optical flow computed on the blend cannot do this (it follows whichever layer has
the stronger texture locally, and averages the two where they compete). The peaks give each
layer's dominant translation between consecutive frames; `separate` starts its layers' motions
from them and re-estimates dense flow on its layer estimates as they emerge (docs/method.md §2.7).

Which peak belongs to which layer is decided by continuity: a layer's motion changes little from
one frame pair to the next, so each pair's peaks are assigned to the layers in the order that
moves the least from the previous pair's.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

__all__ = ["correlation_peaks", "layer_translations", "translation_flow"]

#: Peaks closer than this (pixels) to a stronger one are the same peak.
PEAK_SUPPRESSION = 3
#: The correlation surface is smoothed by a Gaussian of this sigma (pixels) before peaks are sought
#: (a sub-pixel shift spreads its peak over neighbouring pixels).
PEAK_SMOOTHING = 0.8
#: Frames between the correlated frames (see `layer_translations`).
GAP = 1


def correlation_peaks(first: np.ndarray, second: np.ndarray, count: int) -> list[tuple[float, float, float]]:
    """The `count` strongest local maxima of the phase correlation of two grayscale images.

    Args:
        first, second: (h, w) float32 images (frame t and frame t+1).
        count: how many peaks (one per layer).

    Returns:
        [(dx, dy, height), ...] strongest first: content at p in `first` is at p + (dx, dy) in
        `second`, sub-pixel (the centroid of the peak's 3x3 neighbourhood).
    """
    height, width = first.shape
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    spectrum_a = np.fft.fft2((first - first.mean()) * window)
    spectrum_b = np.fft.fft2((second - second.mean()) * window)
    cross = np.conj(spectrum_a) * spectrum_b
    magnitude = np.abs(cross)
    cross /= magnitude + 1e-3 * magnitude.max() + 1e-12  # regularised whitening: noise-only bins stay small
    surface = np.fft.fftshift(np.real(np.fft.ifft2(cross))).astype(np.float32)
    surface = cv2.GaussianBlur(surface, (0, 0), PEAK_SMOOTHING)
    search = surface.copy()
    peaks = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(search)), search.shape)
        rows = slice(max(0, y - 1), y + 2)
        cols = slice(max(0, x - 1), x + 2)
        weights = np.clip(surface[rows, cols], 0, None) + 1e-12
        ys, xs = np.mgrid[rows, cols]
        centre_y = float((weights * ys).sum() / weights.sum())
        centre_x = float((weights * xs).sum() / weights.sum())
        peaks.append((centre_x - width // 2, centre_y - height // 2, float(surface[y, x])))
        search[max(0, y - PEAK_SUPPRESSION) : y + PEAK_SUPPRESSION + 1,
               max(0, x - PEAK_SUPPRESSION) : x + PEAK_SUPPRESSION + 1] = -np.inf  # fmt: skip
    return peaks


def layer_translations(frames: np.ndarray, count: int, gap: int = GAP) -> np.ndarray:
    """Each layer's translation between consecutive frames of a blend.

    Frame t is correlated with frame t + gap (as near as the video allows) and the shifts divided
    by the gap: a layer that moves a pixel per frame has a peak `gap` pixels out, clear of the
    other layer's, where consecutive frames would give two sub-pixel peaks that merge.

    Args:
        frames: (T, h, w, 3) uint8 RGB, T >= 2.
        count: the number of layers n.
        gap: frames between the two correlated frames.

    Returns:
        (T-1, n, 2) float32: layer k moves by [t, k] = (dx, dy) pixels from frame t to t+1; layer
        k is the same layer in every pair (assigned by continuity, see the module docstring).
    """
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) for frame in frames]
    result = np.zeros((len(frames) - 1, count, 2), np.float32)
    previous = None
    last = len(frames) - 1
    for t in range(last):
        first = max(0, min(t, last - gap))
        second = min(last, first + gap)
        peaks = correlation_peaks(gray[first], gray[second], count)
        shifts = np.array([peak[:2] for peak in peaks], np.float32) / (second - first)
        if previous is not None:
            order = min(itertools.permutations(range(count)),
                        key=lambda p: float(np.linalg.norm(shifts[list(p)] - previous, axis=1).sum()))
            shifts = shifts[list(order)]
        result[t] = shifts
        previous = shifts
    return result


def translation_flow(shifts: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T-1, 2) shifts as constant flow fields (T-1, h, w, 2) float32."""
    return np.ascontiguousarray(np.broadcast_to(shifts[:, None, None, :], (len(shifts), height, width, 2)),
                                dtype=np.float32)
