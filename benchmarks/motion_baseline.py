"""A simple classical motion-segmentation baseline, scored on DAVIS like `vdp bench davis`.

Not part of the CLI: a reference point for the tool's own `segment` task (docs/method.md §6).

Per video:
  1. frames resized to a working resolution (longer side `--max-side`, 256 by default);
  2. DIS optical flow, forward and backward (`vdp.flow.compute_flow(method='dis')`, no cache);
  3. camera motion = RANSAC homography per flow field; residual = the flow the homography does not
     explain, the minimum of the forward and the backward residual (`vdp.cues.motion.camera_motion_residual`);
  4. temporal pooling: each frame's residual averaged with its neighbours (t-1, t, t+1);
  5. one Otsu threshold per video, computed on all frames' pixels together (residual scaled to
     uint8 against the video's 99.9th percentile, so a few outlier pixels do not squash the scale);
  6. morphology per frame: opening then closing with a small elliptic kernel, then connected
     components smaller than a small fraction of the frame dropped;
  7. each mask lifted to full resolution (bilinear on the 0/1 mask, then thresholded at 0.5).

No parameter is tuned per sequence; the defaults are generic choices, not fitted to the ground truth.

Usage:
    python benchmarks/motion_baseline.py ROOT -o OUT [--sequences a,b] [--max-side 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vdp.api import resize_frames, working_size
from vdp.bench.davis import run_davis_benchmark
from vdp.flow import compute_flow
from vdp.cues.motion import camera_motion_residual
from vdp.video import read_video

METHOD_NAME = "motion baseline (DIS + homography residual + Otsu)"

#: Elliptic structuring element for opening/closing, in pixels of the working resolution.
KERNEL_SIZE = 5
#: Connected components smaller than this fraction of the frame are dropped.
MIN_AREA_FRACTION = 0.001
#: Percentile of the pooled residual mapped to 255 before Otsu.
SCALE_PERCENTILE = 99.9


def temporal_pool(residual: np.ndarray, radius: int = 1) -> np.ndarray:
    """Average each frame with its `radius` neighbours on each side (edge frames: fewer neighbours)."""
    num_frames = residual.shape[0]
    cumulative = np.concatenate([np.zeros_like(residual[:1]), np.cumsum(residual, axis=0, dtype=np.float64)])
    out = np.empty_like(residual, dtype=np.float32)
    for t in range(num_frames):
        lo, hi = max(0, t - radius), min(num_frames, t + radius + 1)
        out[t] = (cumulative[hi] - cumulative[lo]) / (hi - lo)
    return out


def otsu_threshold(pooled: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One Otsu threshold for the whole video.

    Returns:
        (T, h, w) bool foreground, the threshold in residual pixels, and the scale used.
    """
    scale = max(float(np.percentile(pooled, SCALE_PERCENTILE)), 1e-6)
    scaled = np.clip(pooled / scale * 255.0, 0, 255).astype(np.uint8)
    stacked = scaled.reshape(-1, scaled.shape[-1])  # all frames' pixels in one 2-D image
    level, _ = cv2.threshold(stacked, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return scaled > level, float(level) / 255.0 * scale, scale


def clean_mask(mask: np.ndarray, kernel: np.ndarray, min_area: int) -> np.ndarray:
    """Open, close, and drop small connected components of one (h, w) bool mask."""
    image = mask.astype(np.uint8)
    image = cv2.morphologyEx(image, cv2.MORPH_OPEN, kernel)
    image = cv2.morphologyEx(image, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(image, connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def segment_video(frames: np.ndarray, *, max_side: int = 256) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks (full resolution, bool) for a (T, H, W, 3) uint8 video, and a few diagnostics."""
    timings: dict[str, float] = {}
    height, width = frames.shape[1:3]
    size = working_size(height, width, max_side)
    small = resize_frames(frames, size)

    started = time.perf_counter()
    field = compute_flow(small, method="dis", cache_dir=None)
    timings["flow"] = time.perf_counter() - started

    started = time.perf_counter()
    residual = camera_motion_residual(field.forward, field.backward)
    pooled = temporal_pool(residual, radius=1)
    foreground, threshold_px, scale = otsu_threshold(pooled)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (KERNEL_SIZE, KERNEL_SIZE))
    min_area = max(1, round(MIN_AREA_FRACTION * size[0] * size[1]))
    masks = []
    for frame_mask in foreground:
        cleaned = clean_mask(frame_mask, kernel, min_area).astype(np.float32)
        lifted = cv2.resize(cleaned, (width, height), interpolation=cv2.INTER_LINEAR)
        masks.append(lifted >= 0.5)
    timings["residual_and_masks"] = time.perf_counter() - started

    info = {
        "working_size": list(size),
        "otsu_threshold_px": round(threshold_px, 4),
        "residual_scale_px": round(scale, 4),
        "mean_foreground_fraction": round(float(np.mean([m.mean() for m in masks])), 4),
    }
    return masks, {"timings": {k: round(v, 2) for k, v in timings.items()}, "info": info}


def make_segmenter(max_side: int):
    def segment(frames_folder: Path, sequence: str) -> tuple[list[np.ndarray], dict[str, Any]]:
        video = read_video(frames_folder)
        return segment_video(video.frames, max_side=max_side)

    return segment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    parser.add_argument("--max-side", type=int, default=256, help="working resolution, longer side (default 256)")
    args = parser.parse_args(argv)
    sequences = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences else None
    summary = run_davis_benchmark(
        args.root, args.out, sequences=sequences, segmenter=make_segmenter(args.max_side),
        method_name=METHOD_NAME, log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps(summary, indent=2))
    return 1 if summary.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
