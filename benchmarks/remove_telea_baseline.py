"""Baseline for `vdp bench remove`: OpenCV inpainting (Telea) frame by frame with the true masks.

    python benchmarks/remove_telea_baseline.py bench-out/composite -o bench-out/remove-telea [--dilate 6]

Same items, scores and report layout as `vdp bench remove` (true masks only: Telea has no masks of its own).
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from vdp.bench.remove import run_remove_benchmark
from vdp.complete import dilate_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("-o", "--output", default="bench-out/remove-telea")
    parser.add_argument("--dilate", type=int, default=6)
    parser.add_argument("--radius", type=int, default=5)
    args = parser.parse_args()

    def telea(frames, masks, name):
        holes = dilate_masks(masks, args.dilate)
        return np.stack([cv2.inpaint(f, h.astype(np.uint8), args.radius, cv2.INPAINT_TELEA)
                         for f, h in zip(frames, holes)]), {"dilate": args.dilate}

    summary = run_remove_benchmark(args.root, args.output, remover=telea, method_name="opencv telea",
                                   modes=("true",), log=print)
    print(json.dumps(summary["overall"], indent=2))


if __name__ == "__main__":
    main()
