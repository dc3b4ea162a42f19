"""Segment the example video through the Python API (what `vdp segment` does, without the CLI).

Usage: ``python examples/segment_with_api.py [video] [out_folder]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import vdp.api as vdp


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    source = Path(argv[0]) if argv else here / "moving_object.mp4"
    out_dir = Path(argv[1]) if len(argv) > 1 else Path("vdp-out-api")

    video = vdp.load_video(source)
    options = vdp.RunOptions(device="auto", flow="auto")  # max_side: the task's own (384 for segment)
    result = vdp.run("segment", video, config={"objectness": "auto"}, options=options)

    alpha = result.alphas["foreground"]  # (T, h, w) float32 in [0, 1], working resolution
    print(f"{video.name}: {video.num_frames} frames, working size {alpha.shape[1:]}, "
          f"foreground covers {100 * (alpha > 0.5).mean():.1f}% of the frames")
    print(f"device {result.info['device']}, flow {result.info['flow_reason']}")
    print(f"final losses: { {k: round(v, 4) for k, v in result.losses.items()} }")

    # Full-resolution outputs for one frame, in memory:
    first = result.full_resolution(0, video.frames[0])
    print(f"frame 0: mask {first['masks'].shape}, foreground layer {first['layers/foreground'].shape} (RGBA)")

    folder = vdp.save(result, video, out_dir, overwrite=True)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
