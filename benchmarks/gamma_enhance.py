"""Two global low-light baselines, scored on SDSD: a gamma curve or an exposure gain per video.

Not part of the CLI: the simplest possible reference points for low-light enhancement, scored by
`vdp.bench.restoration.run_restoration_benchmark` like any other method.

One curve per video, computed from the input frames only (never the ground truth), applied to
every frame and channel alike:
  - `gamma`: x -> x ** gamma with gamma = log(0.45) / log(mean), so that the video's mean
    brightness (mean of R, G and B over all pixels and frames) maps to 0.45;
  - `exposure`: x -> min(1, gain * x) with gain = 0.95 / p99, so that the 99th percentile of all
    channel values of the video maps to 0.95 (the brightest 1% clip).

Both are exact 256-entry look-up tables on uint8 frames, and the statistics come from a histogram,
so 1080p videos need no float copy.

Usage:
    python benchmarks/gamma_enhance.py ROOT -o OUT --mode gamma|exposure [--limit-frames 30]
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from vdp.bench.restoration import Restorer, benchmark_argument_parser, run_benchmark_command

MODES = ("gamma", "exposure")
METHOD_NAMES = {"gamma": "global gamma (mean brightness -> 0.45)",
                "exposure": "global exposure gain (99th percentile -> 0.95)"}

TARGET_MEAN = 0.45
TARGET_PERCENTILE_VALUE = 0.95
PERCENTILE = 99.0
#: Statistics are kept inside [1/255, 254/255] so that a black or saturated video gives a finite curve.
_LOWEST, _HIGHEST = 1.0 / 255.0, 254.0 / 255.0


def _histogram(frames: np.ndarray) -> np.ndarray:
    """Counts of each uint8 value over all frames, pixels and channels (frame by frame, since
    `np.bincount` widens its input to int64: a whole 1080p video at once would need gigabytes)."""
    histogram = np.zeros(256, dtype=np.float64)
    for frame in frames:
        histogram += np.bincount(frame.reshape(-1), minlength=256)
    return histogram


def _percentile(histogram: np.ndarray, percentile: float) -> float:
    """Smallest value v in [0, 1] with at least ``percentile`` % of the samples <= v."""
    cumulative = np.cumsum(histogram)
    index = int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
    return index / 255.0


def estimate_curve(frames: np.ndarray, mode: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The tone curve of one video, from its own (input) frames.

    Args:
        frames: (T, H, W, 3) uint8 RGB, the low-light input.
        mode: ``'gamma'`` or ``'exposure'``.

    Returns:
        (256,) uint8 look-up table, and the parameters that made it.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB; got {frames.dtype}")
    histogram = _histogram(frames)
    values = np.arange(256, dtype=np.float64) / 255.0
    if mode == "gamma":
        mean = float((histogram * values).sum() / histogram.sum())
        gamma = math.log(TARGET_MEAN) / math.log(min(max(mean, _LOWEST), _HIGHEST))
        curve, info = values**gamma, {"mode": mode, "mean_brightness": round(mean, 5), "gamma": round(gamma, 5)}
    else:
        high = _percentile(histogram, PERCENTILE)
        gain = TARGET_PERCENTILE_VALUE / max(high, _LOWEST)
        curve, info = np.minimum(values * gain, 1.0), {"mode": mode, "percentile_99": round(high, 5),
                                                       "gain": round(gain, 5)}
    return np.rint(curve * 255.0).astype(np.uint8), info


def enhance_frames(frames: np.ndarray, mode: str) -> np.ndarray:
    """Brighten a video with one global curve estimated from the video itself.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        mode: ``'gamma'`` or ``'exposure'``.

    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    table, _ = estimate_curve(frames, mode)
    return table[frames]


def make_restorer(mode: str) -> Restorer:
    """The restorer run by the benchmark for ``mode``; it sees only the input frames."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")

    def restore(frames: np.ndarray, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        table, info = estimate_curve(frames, mode)
        return table[frames], info

    return restore


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_argument_parser(
        description=__doc__.split("\n\n")[0],
        root_help="SDSD folder (input/, GT/), or one holding indoor_np/ and outdoor_np/")
    parser.add_argument("--mode", choices=MODES, default="gamma", help="tone curve (default: gamma)")
    args = parser.parse_args(argv)
    return run_benchmark_command(args, layout="sdsd", restorer=make_restorer(args.mode),
                                 method_name=METHOD_NAMES[args.mode])


if __name__ == "__main__":
    sys.exit(main())
