"""Writing frames as numbered PNG files, and label masks as DAVIS-style palette PNGs."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vdp.errors import VdpError

logger = logging.getLogger(__name__)


def _as_image_for_png(frame: np.ndarray, index: int) -> np.ndarray:
    """Frame in OpenCV's channel order, for ``cv2.imwrite``."""
    frame = np.asarray(frame)
    if frame.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"Expected uint8 or uint16 frames; frame {index} has dtype {frame.dtype}. Scale "
            "floats in [0, 1] with (x * 255).round().astype(np.uint8)."
        )
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_RGBA2BGRA)
    raise ValueError(
        f"Expected a (H, W), (H, W, 3) RGB or (H, W, 4) RGBA frame; frame {index} has shape "
        f"{frame.shape}."
    )


def write_png_sequence(
    frames: Iterable[np.ndarray], folder: str | os.PathLike[str], *, start_index: int = 0
) -> int:
    """Write frames as ``00000.png``, ``00001.png``, ... into ``folder`` (created if missing).

    Args:
        frames: each ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA or ``(H, W)`` gray, in uint8 or
            uint16 (16-bit PNG). An iterable, so a generator never holds the whole video.
        folder: destination folder.
        start_index: number of the first file.

    Returns:
        The number of files written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, start=1):
        index = start_index + count - 1
        file = folder / f"{index:05d}.png"
        if not cv2.imwrite(str(file), _as_image_for_png(frame, index)):
            raise VdpError(
                f"Could not write {file}; check that the disk has space and is writable."
            )
    logger.debug("wrote %d PNG frames to %s", count, folder)
    return count


def _pascal_voc_palette(num_colors: int = 256) -> np.ndarray:
    """The PASCAL VOC / DAVIS colour map: label bits spread over the high bits of R, G, B."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for label in range(num_colors):
        bits, red, green, blue = label, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= (bits & 1) << shift
            green |= ((bits >> 1) & 1) << shift
            blue |= ((bits >> 2) & 1) << shift
            bits >>= 3
        palette[label] = (red, green, blue)
    return palette


_DAVIS_PALETTE = _pascal_voc_palette()
_DAVIS_PALETTE.flags.writeable = False


def write_indexed_png(mask: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a label mask as a DAVIS-style palette PNG (mode ``"P"``).

    The DAVIS evaluation toolkit reads the palette indices, so foreground must be index 1,
    not 255.

    Args:
        mask: ``(H, W)`` label indices, uint8 (or bool: ``True`` becomes index 1).
        path: destination ``.png`` file; its folder is created if missing.
    """
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(
            f"Expected a (H, W) uint8 (or bool) label mask; got shape {mask.shape} and dtype "
            f"{mask.dtype}."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(mask))  # mode "L"
    image.putpalette(_DAVIS_PALETTE.tobytes())  # turns it into mode "P"
    image.save(path, format="PNG")
