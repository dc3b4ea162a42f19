"""Camera motion and the residual motion that departs from it.

The classical "moves unlike the camera" cue: a homography fitted with RANSAC to each flow field
models the camera (exact for rotation or a planar scene), and what the homography does not explain
is independent motion, parallax or flow error. Taking the minimum of the forward and the backward
residual suppresses disoccluded borders, which are wrong in only one direction.
"""

from __future__ import annotations

import cv2
import numpy as np

#: RANSAC inlier threshold, as a fraction of the frame diagonal (1 px at 200x112).
RANSAC_THRESHOLD = 0.0043
#: Grid step for the points the homography is fitted on, in pixels of the working resolution.
SAMPLE_STEP = 4


def fit_camera_homography(flow: np.ndarray) -> np.ndarray:
    """Fit the dominant (camera) motion of one flow field.

    Args:
        flow: (H, W, 2) float32 flow in pixels (x, y) from frame a to frame b.

    Returns:
        (3, 3) float64 homography mapping pixel coordinates of a to b (identity when the fit fails).
    """
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[SAMPLE_STEP // 2 : height : SAMPLE_STEP, SAMPLE_STEP // 2 : width : SAMPLE_STEP]
    source = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    target = source + flow[ys.ravel(), xs.ravel()]
    threshold = RANSAC_THRESHOLD * float(np.hypot(height, width))
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, threshold, maxIters=500, confidence=0.99)
    if homography is None or not np.all(np.isfinite(homography)):
        return np.eye(3)
    return homography


def residual_flow_magnitude(flow: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Magnitude of the flow the homography does not explain.

    Args:
        flow: (H, W, 2) float32 flow in pixels.
        homography: (3, 3) camera motion.

    Returns:
        (H, W) float32 residual in pixels.
    """
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    points = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
    camera = cv2.perspectiveTransform(points, homography).reshape(height, width, 2)
    camera_flow = camera - np.stack([xs, ys], axis=-1)
    return np.linalg.norm(flow - camera_flow, axis=-1).astype(np.float32)


def camera_motion_residual(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Per-frame independent-motion magnitude.

    Args:
        forward: (T-1, H, W, 2) flow t -> t+1.
        backward: (T-1, H, W, 2) flow t+1 -> t.

    Returns:
        (T, H, W) float32 residual in pixels: for each frame, the minimum of the residual of its
        forward flow and of its backward flow (the one available at the first and last frame).
    """
    num_pairs, height, width = forward.shape[:3]
    forward_residual = np.stack([residual_flow_magnitude(f, fit_camera_homography(f)) for f in forward])
    backward_residual = np.stack([residual_flow_magnitude(b, fit_camera_homography(b)) for b in backward])
    residual = np.empty((num_pairs + 1, height, width), np.float32)
    residual[0] = forward_residual[0]
    residual[-1] = backward_residual[-1]
    if num_pairs > 1:
        residual[1:-1] = np.minimum(forward_residual[1:], backward_residual[:-1])
    return residual


def motion_saliency(residual: np.ndarray, *, temporal_radius: int = 1) -> np.ndarray:
    """Turn residual magnitudes into a soft "moves unlike the camera" map in [0, 1].

    The scale adapts to the video: a residual well above the video's typical residual counts as
    independent motion. Neighbouring frames are averaged to suppress one-frame flow errors.

    Args:
        residual: (T, H, W) residual magnitudes in pixels.
        temporal_radius: frames averaged on each side.

    Returns:
        (T, H, W) float32 in [0, 1].
    """
    pooled = residual.copy()
    if temporal_radius > 0 and residual.shape[0] > 1:
        kernel = np.ones(2 * temporal_radius + 1, np.float32)
        padded = np.pad(residual, ((temporal_radius, temporal_radius), (0, 0), (0, 0)), mode="edge")
        pooled = sum(kernel[i] * padded[i : i + residual.shape[0]] for i in range(kernel.size)) / kernel.sum()
    # Scale: the video's median residual is noise; independent motion stands well above it.
    noise = float(np.median(pooled)) + 1e-3
    spread = float(np.percentile(pooled, 98)) - noise
    scale = max(spread, 3.0 * noise, 0.25)
    return np.clip((pooled - noise) / scale, 0.0, 1.0).astype(np.float32)
