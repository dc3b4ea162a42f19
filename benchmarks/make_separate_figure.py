"""A picture of one blend pair: the blend, the true layers, and the layers a method returned.

Usage::

    python benchmarks/make_separate_figure.py PAIR_FOLDER BENCH_ITEM_FOLDER OUT.jpg [--frame 16]

PAIR_FOLDER is one pair of a `vdp synth blend` set (blend/, layer1/, layer2/); BENCH_ITEM_FOLDER
is that pair's folder in a `vdp bench blend ... --save-layers` report (layers/1/, layers/2/). The
output layers are put in the order that matches the true layers (the bench's assignment, from its
score.json). Top row: blend, true layer 1, true layer 2; bottom row: blank, output layers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

SCALE = 2  # the benchmark's 224x128 frames are shown twice as large


def _frame(folder: Path, index: int) -> np.ndarray:
    files = sorted(folder.glob("*.png"))
    image = cv2.imread(str(files[index]))
    return cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    image = image.copy()
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pair", type=Path)
    parser.add_argument("item", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--frame", type=int, default=16)
    args = parser.parse_args()
    score = json.loads((args.item / "score.json").read_text())
    assignment = score.get("assignment", [0, 1])
    blend = _label(_frame(args.pair / "blend", args.frame), "blend (input)")
    truths = [_label(_frame(args.pair / f"layer{k}", args.frame), f"true layer {k}") for k in (1, 2)]
    outputs = [_label(_frame(args.item / "layers" / str(index + 1), args.frame), f"vdp layer {index + 1}")
               for index in assignment]
    top = np.concatenate([blend, *truths], axis=1)
    blank = np.full_like(blend, 255)
    loss = score.get("loss")
    if loss is not None:
        cv2.putText(blank, f"loss {loss:.3f}", (10, blank.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cv2.putText(blank, f"identity {score.get('identity_loss', float('nan')):.3f}", (10, blank.shape[0] // 2 + 24),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    bottom = np.concatenate([blank, *outputs], axis=1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), np.concatenate([top, bottom], axis=0), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
