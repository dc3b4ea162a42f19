"""Awkward input files made on the spot: ffmpeg's test pattern in any format, damaged copies.

Used by the robustness tests and by the benchmark scripts that exercise bad input
(`error_messages.py`, `memory_long_video.py`); not part of the installed package. Tests import it
as `benchmarks.clips` (pytest puts the repository root on the path, see pyproject.toml); the
scripts, run as `python benchmarks/NAME.py`, import it as their sibling `clips`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg


def write_test_pattern(
    path: str | os.PathLike[str], *output_args: str, size: tuple[int, int] = (64, 48), rate: int = 24
) -> Path:
    """Write ffmpeg's moving ``testsrc2`` pattern to ``path``.

    Args:
        path: destination; its extension picks the container.
        output_args: ffmpeg output options, e.g. ``"-frames:v", "3", "-pix_fmt", "gray"``.
        size: (width, height) of the pattern; rate: its frame rate.

    Returns:
        The path written.
    """
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={rate}", *output_args, str(path)],
        check=True,
    )  # fmt: skip
    return Path(path)


def damage_video(source: str | os.PathLike[str], destination: str | os.PathLike[str], how: str) -> Path:
    """Write a damaged copy of a video file: ``'truncated'`` keeps its first half, ``'scrambled'``
    overwrites 2000 bytes a third of the way in with garbage (deterministic)."""
    data = bytearray(Path(source).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "scrambled":
        middle = len(data) // 3
        data[middle : middle + 2000] = bytes((7 * b + 13) % 256 for b in data[middle : middle + 2000])
    else:
        raise ValueError(f"how must be 'truncated' or 'scrambled'; got {how!r}")
    Path(destination).write_bytes(bytes(data))
    return Path(destination)
