"""Write the example video used in the README and tests of the CLI.

Usage: ``python examples/make_example.py [out_path]`` (default ``examples/moving_object.mp4``),
with vdp installed (``pip install -e .``).

A textured ellipse moves over a slowly panning textured background: 48 frames, 320x240, 24 fps.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vdp.example_clip import make_example_video


def main(argv: list[str]) -> int:
    """Write the example video to ``argv[0]`` or the default path; returns the exit status."""
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    default = Path(__file__).resolve().parent / "moving_object.mp4"
    path = make_example_video(Path(argv[0]) if argv else default)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
