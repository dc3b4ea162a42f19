"""Haze model helpers shared by the dehaze task and the benchmarks: dark channel and airlight.

`I = t * J + (1 - t) * A` (Koschmieder): I hazy, J clear, t transmission, A airlight.
"""

from __future__ import annotations

import cv2
import numpy as np


def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over colour channels and a square patch (He et al. 2009).

    Args:
        image: (H, W, 3) float32 in [0, 1].
        patch: odd patch size in pixels.

    Returns:
        (H, W) float32.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2), kernel)


def patch_size_for(height: int, width: int) -> int:
    """He et al.'s 15-pixel patch at 600x400, scaled with the frame (odd, at least 3)."""
    size = int(round(15 * np.sqrt(height * width) / np.sqrt(600 * 400)))
    return max(3, size | 1)


def estimate_airlight(frames: np.ndarray, *, top_fraction: float = 0.001, max_frames: int = 16) -> np.ndarray:
    """One airlight for a whole video, robust to a single bright object.

    For each of up to `max_frames` evenly spaced frames, the pixels in the top `top_fraction` of the
    dark channel (the haziest) are collected; A is their per-channel median. Pooling over the video keeps A fixed in time (a per-frame A flickers).

    Args:
        frames: (T, H, W, 3) uint8 RGB.

    Returns:
        (3,) float32 in [0, 1].
    """
    indices = np.linspace(0, frames.shape[0] - 1, min(max_frames, frames.shape[0])).round().astype(int)
    candidates = []
    for index in np.unique(indices):
        image = frames[index].astype(np.float32) / 255.0
        dark = dark_channel(image, patch_size_for(*image.shape[:2]))
        count = max(1, int(dark.size * top_fraction))
        flat = np.argpartition(dark.ravel(), -count)[-count:]
        candidates.append(image.reshape(-1, 3)[flat])
    # The median, not the brightest: the haziest pixels still carry some of the scene (t > 0), and
    # bright objects among them would bias A upwards.
    return np.median(np.concatenate(candidates), axis=0).astype(np.float32)


def dark_channel_transmission(image: np.ndarray, airlight: np.ndarray, *, omega: float = 0.95, patch: int | None = None) -> np.ndarray:
    """He et al.'s transmission estimate `1 - omega * dark(I / A)`.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        airlight: (3,) in (0, 1].

    Returns:
        (H, W) float32 in [0, 1].
    """
    patch = patch or patch_size_for(*image.shape[:2])
    normalised = image / np.maximum(airlight, 1e-3)[None, None]
    return np.clip(1.0 - omega * dark_channel(normalised.astype(np.float32), patch), 0.0, 1.0)


def remove_haze(image: np.ndarray, transmission: np.ndarray, airlight: np.ndarray, *, floor: float = 0.1) -> np.ndarray:
    """Invert the haze model: `J = (I - A) / max(t, floor) + A`.

    Args:
        image: (H, W, 3) float32 in [0, 1]; transmission: (H, W); airlight: (3,).

    Returns:
        (H, W, 3) float32 clipped to [0, 1].
    """
    t = np.maximum(transmission, floor)[..., None]
    return np.clip((image - airlight[None, None]) / t + airlight[None, None], 0.0, 1.0)
