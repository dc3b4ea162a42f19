"""Before/after pictures of `dehaze` and `relight` on the real clips in ../shared/evaldata.

Usage: ``python benchmarks/make_restoration_figures.py`` (writes docs/images/*.jpg and prints the
metrics of each run). The clips have no ground truth: these pictures are for judging by eye.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

import vdp.api as vdp

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = ROOT.parent / "shared" / "evaldata"
PANEL_WIDTH = 480

CLIPS = [
    ("dehaze", EVALDATA / "hazy" / "dvd_input_video_frame", "hazy_dvd.jpg", 30),
    ("relight", EVALDATA / "lowlight" / "nveu_FMSVD" / "VIS", "lowlight_fmsvd.jpg", 1),
    ("relight", EVALDATA / "lowlight" / "nveu_thirdparty" / "VIS", "lowlight_thirdparty.jpg", 1),
]


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    height = round(before.shape[0] * PANEL_WIDTH / before.shape[1])
    panels = [cv2.resize(image, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA) for image in (before, after)]
    return np.concatenate(panels, axis=1)


def main() -> int:
    out_dir = ROOT / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    for task, folder, name, index in CLIPS:
        if not folder.is_dir():
            print(f"skipped {folder}: not found")
            continue
        video = vdp.load_video(folder)
        result = vdp.run(task, video)
        index = min(index, video.num_frames - 1)
        after = result.full_resolution(index, video.frames[index])["frames"]
        picture = side_by_side(video.frames[index], after)
        cv2.imwrite(str(out_dir / name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        facts = {key: result.info[key] for key in ("airlight", "gamma_g", "illumination_mean") if key in result.info}
        print(json.dumps({"clip": str(folder.relative_to(EVALDATA)), "task": task, "frames": video.num_frames,
                          "size": [video.width, video.height], "seconds": result.timings, **facts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
