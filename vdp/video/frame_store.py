"""Decoded frames kept out of memory: a temporary file that behaves like a ``(T, H, W, 3)`` array.

A long or large video does not fit in memory as uint8 frames (a 10-minute 1080p clip is about
110 GB), so once frames would exceed a budget (``VDP_FRAMES_RAM_MB``) they go to an anonymous
temporary file and are read back one at a time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import numpy as np
from numpy.typing import DTypeLike

from vdp.errors import ConfigError, VdpError

DEFAULT_FRAMES_RAM_MB = 2048
"""Decoded frames beyond this many MiB go to a temporary file (``VDP_FRAMES_RAM_MB`` overrides)."""


def frames_ram_limit() -> int:
    """Bytes of decoded frames kept in memory before they spill to a temporary file."""
    value = os.environ.get("VDP_FRAMES_RAM_MB", "")
    try:
        megabytes = float(value) if value.strip() else DEFAULT_FRAMES_RAM_MB
    except ValueError as error:
        raise ConfigError(
            f"VDP_FRAMES_RAM_MB must be a number of MiB such as 2048; got {value!r}."
        ) from error
    return max(0, int(megabytes * (1 << 20)))


def _gather(frames: FrameStore | FrameRange, index: slice) -> np.ndarray:
    """A slice of frames read one at a time into a new ``(N, H, W, 3)`` array."""
    chosen = range(*index.indices(len(frames)))
    out = np.empty((len(chosen), *frames.shape[1:]), np.uint8)
    for row, source in enumerate(chosen):
        out[row] = frames[source]
    return out


class FrameStore:
    """``(T, H, W, 3)`` uint8 frames held in an anonymous temporary file, read back one at a time.

    Behaves like the read-only array it stands for where vdp uses frames: ``len``, ``shape``,
    ``dtype``, ``store[t]`` (a fresh ``(H, W, 3)`` array), iteration and ``np.asarray``. The file
    lives in the system's temporary folder (``TMPDIR``); it has no name, so the operating system
    removes it when vdp exits, however it exits. Reading frames back does not grow vdp's memory:
    the file's pages are the kernel's cache, reclaimed under pressure.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)
        self.frame_bytes = self.height * self.width * 3
        self._file = tempfile.TemporaryFile(prefix="vdp-frames-", buffering=0)
        self._count = 0

    def append(self, frame: np.ndarray) -> None:
        """Add one ``(H, W, 3)`` uint8 frame at the end."""
        view = memoryview(np.ascontiguousarray(frame, dtype=np.uint8)).cast("B")
        if len(view) != self.frame_bytes:
            raise ValueError(f"Expected a {self.height}x{self.width}x3 frame; got {frame.shape}.")
        try:
            written = 0
            while written < len(view):
                written += os.pwrite(self._file.fileno(), view[written:],
                                     self._count * self.frame_bytes + written)
        except OSError as error:
            needed = self.frame_bytes * (self._count + 1) / 1e9
            raise VdpError(
                f"Could not keep decoded frames in a temporary file in {tempfile.gettempdir()} "
                f"({error.strerror}; {needed:.1f} GB so far). Point TMPDIR at a disk with room, "
                "raise VDP_FRAMES_RAM_MB to keep more frames in memory, or use fewer frames "
                "(--max-frames, --stride)."
            ) from error
        self._count += 1

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 3)``."""
        return (self._count, self.height, self.width, 3)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int | slice) -> np.ndarray:
        """Frame ``index`` as a fresh ``(H, W, 3)`` array, or a slice of frames as ``(N, H, W, 3)``."""
        if isinstance(index, slice):
            return _gather(self, index)
        index = int(index)
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} is out of range for {self._count} frames")
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        view = memoryview(frame).cast("B")
        done = 0
        while done < self.frame_bytes:
            got = os.preadv(self._file.fileno(), [view[done:]], index * self.frame_bytes + done)
            if got <= 0:
                raise VdpError(f"The temporary frame file ended early at frame {index}.")
            done += got
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self._count):
            yield self[index]

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)

    def close(self) -> None:
        """Release the temporary file now (it is released at exit anyway)."""
        self._file.close()


class FrameSink:
    """Collects ``(H, W, 3)`` uint8 frames into one preallocated array, moving them all to a
    :class:`FrameStore` once they would take more than ``ram_limit`` bytes."""

    def __init__(self, height: int, width: int, *, capacity: int, ram_limit: int) -> None:
        self.height, self.width = height, width
        self.max_in_ram = ram_limit // (height * width * 3)
        self.frames = np.empty((min(max(capacity, 1), max(self.max_in_ram, 1)), height, width, 3), np.uint8)
        self.count = 0
        self.store: FrameStore | None = None

    def append(self, frame: np.ndarray) -> None:
        """Add one ``(H, W, 3)`` uint8 frame at the end."""
        if self.store is not None:
            self.store.append(frame)
            return
        if self.count == self.frames.shape[0]:
            if self.count >= self.max_in_ram:
                self.store = FrameStore(self.height, self.width)
                for held in self.frames[: self.count]:
                    self.store.append(held)
                self.frames = None
                self.store.append(frame)
                return
            grown = np.empty((min(self.count + max(self.count // 2, 16), self.max_in_ram),
                              self.height, self.width, 3), np.uint8)
            grown[: self.count] = self.frames[: self.count]
            self.frames = grown
        self.frames[self.count] = frame
        self.count += 1

    def finish(self) -> np.ndarray | FrameStore:
        """The frames collected: a C-contiguous ``(T, H, W, 3)`` array, or the :class:`FrameStore`."""
        if self.store is not None:
            return self.store
        frames = self.frames
        if self.count < frames.shape[0]:
            # A slice of the leading axis is still C-contiguous; copy only when much memory is spare.
            frames = frames[: self.count].copy() if self.count < 0.9 * frames.shape[0] else frames[: self.count]
        return frames


class FrameRange:
    """Frames ``start`` to ``stop`` of a ``(T, H, W, 3)`` uint8 array or :class:`FrameStore`, read
    from it on demand (never copied as a whole): the frames of one optimisation window of a long
    video. Behaves like the read-only array it stands for, as a :class:`FrameStore` does."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, frames: np.ndarray | FrameStore | FrameRange, start: int, stop: int) -> None:
        if not 0 <= start < stop <= len(frames):
            raise ValueError(f"frames {start}..{stop} are not within the video's {len(frames)} frames")
        self._frames, self.start, self.stop = frames, int(start), int(stop)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.stop - self.start, *tuple(self._frames.shape[1:]))

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int | slice) -> np.ndarray:
        if isinstance(index, slice):
            return _gather(self, index)
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is out of range for {len(self)} frames")
        return np.asarray(self._frames[self.start + index])

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)
