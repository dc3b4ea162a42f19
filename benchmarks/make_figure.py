"""Make the README picture: input frame, mask overlay, foreground layer, background layer.

Usage: ``python benchmarks/make_figure.py [frames_folder] [frame_index] [out.jpg]``
(default: DAVIS blackswan from ../shared/evaldata, frame 25, docs/images/blackswan.jpg).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

import vdp.api as vdp

PANEL_WIDTH = 320


def checkerboard(height: int, width: int, cell: int = 12) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    board = ((ys // cell + xs // cell) % 2).astype(np.float32)
    return (150 + 60 * board)[..., None].repeat(3, axis=2)


def over_checkerboard(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:].astype(np.float32) / 255
    board = checkerboard(*rgba.shape[:2])
    return (alpha * rgba[..., :3] + (1 - alpha) * board).astype(np.uint8)


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    folder = Path(argv[0]) if argv else root.parent / "shared/evaldata/davis2016/JPEGImages/480p/blackswan"
    index = int(argv[1]) if len(argv) > 1 else 25
    out = Path(argv[2]) if len(argv) > 2 else root / "docs/images/blackswan.jpg"
    if not folder.is_dir():
        print(f"{folder} not found; pass a frames folder")
        return 2
    video = vdp.load_video(folder)
    result = vdp.run("segment", video)
    outputs = result.full_resolution(index, video.frames[index])
    panels = [video.frames[index], outputs["overlay"], over_checkerboard(outputs["layers/foreground"]),
              over_checkerboard(outputs["layers/background"])]
    height = round(video.height * PANEL_WIDTH / video.width)
    row = np.concatenate([cv2.resize(p, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA) for p in panels], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(row, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
