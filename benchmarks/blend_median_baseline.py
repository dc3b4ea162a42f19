"""A classical layer-separation baseline: temporal median along the dominant motion, scored on blends.

Not part of the CLI: a reference point for `vdp separate`, scored by
`vdp.bench.blend.run_blend_benchmark` (the runner and report layout of `vdp bench blend`).

Per video (the blend only, at its own resolution; no parameter is tuned on the scores):
  1. DIS optical flow between consecutive frames (`vdp.flow.compute_flow(method='dis')`);
  2. the dominant motion of each pair: a RANSAC homography fitted to the forward flow
     (`vdp.cues.motion.fit_camera_homography`, as `motion_baseline.py`), chained from frame to
     frame;
  3. for each frame t, the frames t-8 .. t+8 (those that exist) warped onto frame t with the
     chained homographies (bilinear); pixels that come from outside a frame are left out;
  4. layer 1 = the per-pixel temporal median of the aligned frames: what moves with the dominant
     motion stays in place and survives the median, the other layer moves across and blurs out;
  5. layer 2 = (blend - a * layer 1) / (1 - a) with a = 0.5 (assumed, not estimated), clipped
     to [0, 255].

The median holds the aligned layer *and* the blurred remainder of the other one (about
a * layer1 + (1 - a) * blur(layer2)), so neither output is a clean layer; the figure says how
much that crude model gains over not separating at all (the identity, reported beside it).

Usage:
    python benchmarks/blend_median_baseline.py ROOT -o OUT [--window 8] [--limit-frames N] [--pairs a+b,c+d]
        [--save-layers]
"""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np

from vdp.bench.blend import benchmark_argument_parser, run_benchmark_command
from vdp.cues.motion import fit_camera_homography
from vdp.flow import compute_flow

METHOD_NAME = "temporal median along the dominant motion (DIS + homography)"

#: Frames on each side of frame t aligned onto it.
WINDOW = 8
#: The mixing coefficient assumed for layer 2 (the benchmark's default blend is 50/50).
ASSUMED_COEFFICIENT = 0.5


def chained_homographies(frames: np.ndarray) -> np.ndarray:
    """Per frame, the homography from frame 0's pixel coordinates to its own (frame 0: identity).

    Args:
        frames: (T, H, W, 3) uint8 RGB.

    Returns:
        (T, 3, 3) float64.
    """
    chain = np.empty((len(frames), 3, 3), np.float64)
    chain[0] = np.eye(3)
    if len(frames) < 2:
        return chain
    field = compute_flow(frames, method="dis", cache_dir=None)
    for t, flow in enumerate(field.forward):
        chain[t + 1] = fit_camera_homography(flow) @ chain[t]
        chain[t + 1] /= chain[t + 1][2, 2]
    return chain


def aligned_median(frames: np.ndarray, chain: np.ndarray, t: int, *, window: int = WINDOW) -> np.ndarray:
    """Per-pixel median of frames t-window .. t+window warped onto frame t.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        chain: (T, 3, 3) from :func:`chained_homographies`.
        t: the frame aligned onto.
        window: frames on each side.

    Returns:
        (H, W, 3) float32, in [0, 255].
    """
    height, width = frames.shape[1:3]
    to_t = np.linalg.inv(chain[t])
    stack = []
    for s in range(max(0, t - window), min(len(frames), t + window + 1)):
        if s == t:
            stack.append(frames[t].astype(np.float32))
            continue
        # Maps frame t's pixels to frame s's: sample frame s there (inverse map).
        t_to_s = chain[s] @ to_t
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        warped = cv2.warpPerspective(frames[s].astype(np.float32), t_to_s, (width, height), flags=flags,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        inside = cv2.warpPerspective(np.ones((height, width), np.float32), t_to_s, (width, height), flags=flags,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        warped[inside < 0.999] = np.nan
        stack.append(warped)
    return np.nanmedian(np.stack(stack), axis=0).astype(np.float32)


def separate_frames(frames: np.ndarray, *, window: int = WINDOW,
                    coefficient: float = ASSUMED_COEFFICIENT) -> tuple[np.ndarray, np.ndarray]:
    """The two layers of a (T, H, W, 3) uint8 blend: (aligned median, the rest), both uint8."""
    chain = chained_homographies(frames)
    first = np.empty_like(frames)
    second = np.empty_like(frames)
    for t in range(len(frames)):
        median = aligned_median(frames, chain, t, window=window)
        rest = (frames[t].astype(np.float32) - coefficient * median) / (1.0 - coefficient)
        first[t] = np.clip(np.rint(median), 0, 255).astype(np.uint8)
        second[t] = np.clip(np.rint(rest), 0, 255).astype(np.uint8)
    return first, second


def make_separator(window: int):
    def separate(frames: np.ndarray, name: str) -> tuple[list[np.ndarray], dict[str, Any]]:
        first, second = separate_frames(frames, window=window)
        return [first, second], {"window": window, "assumed_coefficient": ASSUMED_COEFFICIENT, "flow": "dis"}

    return separate


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_argument_parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=WINDOW,
                        help=f"frames on each side aligned onto each frame (default {WINDOW})")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window must be 1 or more; got {args.window}")
    return run_benchmark_command(args, separator=make_separator(args.window), method_name=METHOD_NAME)


if __name__ == "__main__":
    sys.exit(main())
