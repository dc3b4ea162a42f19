"""Reading and writing videos, frame folders, PNG sequences and DAVIS-style masks.

Frames live on the CPU as ``(T, H, W, 3)`` uint8 RGB arrays; nothing here makes float copies.
Videos are decoded and encoded through the ffmpeg binary shipped with imageio-ffmpeg, which
honours rotation metadata (phone videos keep their orientation) and keeps the frame rate as an
exact rational (29.97 fps is ``Fraction(30000, 1001)``).

This module imports neither torch nor anything heavy beyond numpy, OpenCV and Pillow.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import imageio_ffmpeg
import numpy as np
from PIL import Image

from vdp.errors import ConfigError, VdpError, VideoInputError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
"""File extensions read as videos (compared case-insensitively)."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
"""File extensions read as frames when the input is a folder (compared case-insensitively)."""

DEFAULT_FOLDER_FPS = Fraction(24)
"""Frame rate given to a folder of frames, which carries none itself (DAVIS is shot at 24 fps)."""

# Audio codecs the mp4 container holds as they are; anything else is re-encoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})

# ffmpeg prints frame rates with two decimals ("29.97 fps"); these NTSC rates are n*1000/1001.
_NTSC_NUMERATORS = (24000, 30000, 48000, 60000, 120000, 240000)

_PROBE_TIMEOUT_S = 60.0


@dataclass
class Video:
    """Decoded frames of one video or frame folder, with what is needed to write a result back."""

    frames: np.ndarray | FrameStore
    """``(T, H, W, 3)`` uint8 RGB: a C-contiguous array, or a :class:`FrameStore` (frames kept in
    a temporary file) for a video larger than ``VDP_FRAMES_RAM_MB``. Both give ``frames[t]``,
    ``len``, ``shape`` and iteration."""
    fps: Fraction
    """Exact frame rate, e.g. ``Fraction(30000, 1001)`` for 29.97 fps."""
    name: str
    """Stem of the video file, or the folder's name."""
    source: Path | None = None
    """Where the frames came from (``None`` for frames made in memory)."""
    has_audio: bool = False
    """Whether ``source`` carries an audio stream that a written result can copy."""

    def __post_init__(self) -> None:
        if isinstance(self.frames, FrameStore):
            self.fps = _as_fraction(self.fps)
            return
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                "Video.frames must be a (T, H, W, 3) uint8 RGB array; got shape "
                f"{self.frames.shape} and dtype {self.frames.dtype}."
            )
        self.fps = _as_fraction(self.fps)

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Frame height ``H`` in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Frame width ``W`` in pixels."""
        return int(self.frames.shape[2])


# --------------------------------------------------------------------------------------------
# Probing


@dataclass(frozen=True)
class _ProbeResult:
    has_video: bool
    has_audio: bool
    audio_codec: str | None
    fps: Fraction | None
    message: str
    """The last line of ffmpeg's log that looks like an error, for error messages."""
    duration: float | None = None
    """The container's duration in seconds, when it states one."""
    opened: bool = False
    """Whether ffmpeg could open the file as a container at all."""
    size: tuple[int, int] | None = None
    """(width, height) of the first decoded frame, rotation applied."""

    def expected_frames(self) -> int | None:
        """How many frames the container announces (duration x rate), when it says both."""
        if self.duration is None or self.fps is None or self.duration <= 0:
            return None
        return max(1, round(self.duration * self.fps))


_STREAM_LINE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (\w+)", re.MULTILINE)
_FILTER_FRAME_RATE = re.compile(r"config in time_base: \d+/\d+, frame_rate: (\d+)/(\d+)")
_FILTER_SIZE = re.compile(r"\bn:\s*0 .*?\bs:(\d+)x(\d+)")
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)


def _probe(path: Path) -> _ProbeResult:
    """Ask ffmpeg which streams ``path`` holds and its exact video frame rate.

    ffmpeg's header prints the rate rounded ("29.97 fps"); decoding one frame through the
    ``showinfo`` filter logs the exact rational rate the decoder uses ("frame_rate: 30000/1001").
    """
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
        "-map", "0:v:0?", "-frames:v", "1", "-vf", "showinfo", "-f", "null", "-",
    ]  # fmt: skip
    logger.debug("probing %s: %s", path, " ".join(command))
    try:
        completed = subprocess.run(
            command, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise VideoInputError(
            f"ffmpeg did not finish reading the header of {path} within {_PROBE_TIMEOUT_S:.0f} s. "
            "Expected a local, readable video file; check that the file is not on a stalled "
            "network drive."
        ) from error
    log = completed.stderr.decode("utf-8", errors="replace")
    # Only the input's streams: the header ends where ffmpeg starts describing its output.
    header = re.split(r"^(?:Stream mapping:|Output #)", log, maxsplit=1, flags=re.MULTILINE)[0]
    streams = _STREAM_LINE.findall(header)
    audio_codecs = [codec for kind, codec in streams if kind == "Audio"]
    fps: Fraction | None = None
    match = _FILTER_FRAME_RATE.search(log)
    if match and int(match.group(1)) > 0 and int(match.group(2)) > 0:
        fps = Fraction(int(match.group(1)), int(match.group(2)))
    duration = None
    if found := _DURATION.search(header):
        hours, minutes, seconds = found.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    size = None
    if found := _FILTER_SIZE.search(log):
        size = (int(found.group(1)), int(found.group(2)))
    return _ProbeResult(
        has_video=any(kind == "Video" for kind, _ in streams),
        has_audio=bool(audio_codecs),
        audio_codec=audio_codecs[0] if audio_codecs else None,
        fps=fps,
        message=_ffmpeg_complaint(log, max_lines=1),
        duration=duration,
        size=size,
        opened=re.search(r"^Input #0", header, re.MULTILINE) is not None,
    )


_COMPLAINT_WORDS = ("rror", "Invalid", "invalid", "not found", "No such", "partial", "Could not")
_LOG_NOISE = ("configuration:", "Task finished", "Terminating thread", "Could not open encoder")
_LOG_PREFIX = re.compile(r"^(\[[^\]]*@ 0x[0-9a-f]+\] ?)+")


def _ffmpeg_complaint(log: str, *, max_lines: int = 3) -> str:
    """The last lines of an ffmpeg log that say what went wrong (not its banner)."""
    lines = []
    for line in log.splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        if any(word in line for word in _COMPLAINT_WORDS) and not line.startswith(_LOG_NOISE):
            lines.append(line)
    return " / ".join(dict.fromkeys(lines[-max_lines:]))


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the video file at ``path`` has an audio stream (a frame folder never has one).

    Raises:
        VideoInputError: ``path`` does not exist.
    """
    path = Path(path).expanduser()
    _require_exists(path)
    if path.is_dir():
        return False
    return _probe(path).has_audio


def _fps_from_float(fps: float) -> Fraction:
    """Exact rational for a frame rate printed with two decimals (29.97 -> 30000/1001)."""
    for numerator in _NTSC_NUMERATORS:
        ntsc = Fraction(numerator, 1001)
        if abs(float(ntsc) - fps) < 0.006:
            return ntsc
    return Fraction(fps).limit_denominator(1001)


def _as_fraction(fps: Fraction | int | float | str, *, what: str = "fps") -> Fraction:
    """``fps`` as an exact positive Fraction; floats like 29.97 map onto NTSC rates."""
    try:
        value = _fps_from_float(fps) if isinstance(fps, float) else Fraction(fps)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as error:
        raise ConfigError(
            f"{what} must be a positive number such as 24, 29.97 or '30000/1001'; got {fps!r}."
        ) from error
    if value <= 0:
        raise ConfigError(f"{what} must be positive; got {fps!r}.")
    return value


# --------------------------------------------------------------------------------------------
# Reading


def read_video(
    path: str | os.PathLike[str],
    *,
    start: int = 0,
    max_frames: int | None = None,
    stride: int = 1,
    default_fps: Fraction | int | str = DEFAULT_FOLDER_FPS,
    ram_limit: int | None = None,
) -> Video:
    """Read a video file or a folder of frames as uint8 RGB, decoding each frame once.

    Args:
        path: a video file (``.mp4 .mov .avi .mkv .webm .m4v``, any case) or a folder of
            ``.jpg .jpeg .png .bmp .tif .tiff`` frames, read in natural order (``2.png`` before
            ``10.png``).
        start: index of the first frame to keep.
        max_frames: keep at most this many frames (``None``: all).
        stride: keep every ``stride``-th frame from ``start`` on. The returned ``fps`` stays the
            source's rate; divide it by ``stride`` for playback at the original speed.
        default_fps: frame rate given to a folder of frames (24 unless told otherwise).
        ram_limit: bytes of frames kept in memory; beyond it they go to a temporary file
            (:class:`FrameStore`). Default: ``VDP_FRAMES_RAM_MB`` MiB, else 2048 MiB.

    Returns:
        A :class:`Video` whose ``frames`` are ``(T, H, W, 3)`` uint8 RGB: an array, or a
        :class:`FrameStore` when they exceed ``ram_limit``.
        Grayscale frames are replicated to three channels, alpha is dropped, 16-bit frames are
        scaled to 8 bits (``round(v / 257)``).

    Raises:
        VideoInputError: the path is missing, of an unsupported type, not decodable, holds no
            frames, holds frames of different sizes, or is truncated or damaged (ffmpeg reports
            errors and decodes fewer frames than the container announces).
        ConfigError: ``start``, ``max_frames`` or ``stride`` is out of range.
    """
    path = Path(path).expanduser()
    if start < 0:
        raise ConfigError(f"start must be 0 or more; got {start}.")
    if stride < 1:
        raise ConfigError(f"stride must be 1 or more; got {stride}.")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be 1 or more (or None for all); got {max_frames}.")
    check_input(path)
    ram_limit = frames_ram_limit() if ram_limit is None else ram_limit
    if path.is_dir():
        return _read_folder(
            path, start=start, max_frames=max_frames, stride=stride,
            fps=_as_fraction(default_fps, what="default_fps"), ram_limit=ram_limit,
        )  # fmt: skip
    return _read_video_file(path, start=start, max_frames=max_frames, stride=stride, ram_limit=ram_limit)


def check_input(path: str | os.PathLike[str]) -> None:
    """Refuse, without decoding anything, a path that cannot be an input: missing, or a file whose
    extension is not a video's.

    Raises:
        VideoInputError: saying what was expected, what is there and what to do.
    """
    path = Path(path).expanduser()
    _require_exists(path)
    if not path.is_dir() and path.suffix.lower() not in VIDEO_EXTENSIONS:
        kind = "an image" if path.suffix.lower() in IMAGE_EXTENSIONS else "a file"
        raise VideoInputError(
            f"Expected a video file ({' '.join(VIDEO_EXTENSIONS)}) or a folder of frames; got "
            f"{kind} with extension '{path.suffix}': {path}. Convert it to mp4 (for example "
            f"`ffmpeg -i '{path}' -c:v libx264 -crf 18 out.mp4`), or put single images in a "
            "folder and pass the folder."
        )


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise VideoInputError(
            f"Expected an existing video file or folder of frames; nothing exists at {path}. "
            "Check the spelling and the current directory "
            f"({Path.cwd()})."
        )


def _natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts)


def list_frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural sort order (``2.png`` before ``10.png``).

    Hidden files (names starting with ``.``) are skipped.
    """
    files = [
        entry
        for entry in folder.iterdir()
        if entry.is_file()
        and not entry.name.startswith(".")
        and entry.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=lambda entry: (_natural_key(entry.name), entry.name))


def _read_folder(
    folder: Path, *, start: int, max_frames: int | None, stride: int, fps: Fraction, ram_limit: int
) -> Video:
    all_files = list_frame_files(folder)
    if not all_files:
        others = sorted(entry.name for entry in folder.iterdir())[:5]
        seen = f" It holds: {', '.join(others)}." if others else " It is empty."
        raise VideoInputError(
            f"Expected a folder of frames ({' '.join(IMAGE_EXTENSIONS)}, any case); found no "
            f"such files in {folder}.{seen} Put the frames directly in this folder (not in "
            "sub-folders), or pass a video file instead."
        )
    files = all_files[start::stride]
    if max_frames is not None:
        files = files[:max_frames]
    if not files:
        raise VideoInputError(
            f"No frames left to read in {folder}: it holds {len(all_files)} frames but "
            f"start={start} skips them all. Use a start below {len(all_files)}."
        )
    first = _read_image_rgb(files[0])
    sink = _FrameSink(*first.shape[:2], capacity=len(files), ram_limit=ram_limit)
    sink.append(first)
    for file in files[1:]:
        image = _read_image_rgb(file)
        if image.shape != first.shape:
            raise VideoInputError(
                "Expected every frame in a folder to have the same size; "
                f"{file.name} is {image.shape[1]}x{image.shape[0]} (WxH) but {files[0].name} is "
                f"{first.shape[1]}x{first.shape[0]}, in {folder}. Resize or remove the odd "
                "frames so that all match."
            )
        sink.append(image)
    height, width = first.shape[:2]
    logger.info("read %d frames of %dx%d from %s", len(files), width, height, folder)
    return Video(frames=sink.finish(), fps=fps, name=folder.name, source=folder, has_audio=False)


def _read_image_rgb(file: Path) -> np.ndarray:
    """One image file as ``(H, W, 3)`` uint8 RGB."""
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise VideoInputError(
            f"Expected a readable image; OpenCV could not decode {file}. The file may be "
            "truncated or not really an image; re-export it or remove it from the folder."
        )
    return to_rgb_uint8(image, channel_order="bgr", source=file.name)


def to_rgb_uint8(
    image: np.ndarray, *, channel_order: str = "rgb", source: str = "image"
) -> np.ndarray:
    """Convert one image to ``(H, W, 3)`` uint8 RGB.

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` in uint8 or uint16.
            Gray is replicated, alpha dropped (not composited), uint16 scaled by
            ``round(v / 257)`` so that 65535 maps to 255.
        channel_order: ``"rgb"`` or ``"bgr"`` (OpenCV's order; also ``"bgra"`` layout).
        source: name used in error messages.

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous (a new array unless ``image`` already is one).
    """
    if image.dtype == np.uint16:
        # round(v / 257) in integers: 257 is odd, so there are no ties.
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise VideoInputError(
            f"Expected 8- or 16-bit integer pixels; {source} has dtype {image.dtype}. Convert "
            "it to 8- or 16-bit PNG."
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise VideoInputError(
            f"Expected a gray, RGB or RGBA image; {source} has shape {image.shape}."
        )
    rgb = image[:, :, :3]
    if channel_order == "bgr":
        rgb = rgb[:, :, ::-1]
    return np.ascontiguousarray(rgb)


def _read_video_file(
    path: Path, *, start: int, max_frames: int | None, stride: int, ram_limit: int
) -> Video:
    probe = _probe(path)
    fix = (
        f"Check that it plays in a video player, or re-encode it with "
        f"`ffmpeg -i '{path}' -c:v libx264 -crf 18 -pix_fmt yuv420p fixed.mp4`."
    )
    said = f" (ffmpeg says: {probe.message.rstrip('.')})" if probe.message else ""
    if not probe.has_video and probe.opened:
        holds = "only audio" if probe.has_audio else "no streams at all"
        raise VideoInputError(
            f"Expected a video stream; {path} opens as a media file but holds {holds}, so there "
            "are 0 frames to read. Pass the video itself (re-export it from the editor or camera "
            "if this file should have had frames)."
        )
    if not probe.has_video:
        raise VideoInputError(
            f"Expected a decodable video; {path} is not one: ffmpeg found no video stream in "
            f"it{said}. {fix}"
        )
    if probe.size is None:
        raise VideoInputError(
            f"Expected at least one frame; ffmpeg decoded none from {path}{said}. It holds a "
            f"video stream with no decodable frames (0 frames, or damaged from the start). {fix}"
        )
    fps = probe.fps
    if fps is None:
        logger.warning("no frame rate found in %s; assuming %s", path, DEFAULT_FOLDER_FPS)
        fps = DEFAULT_FOLDER_FPS
    width, height = probe.size
    announced = probe.expected_frames()
    expected = None
    if announced is not None:
        expected = max(0, math.ceil((announced - start) / stride))
        if max_frames is not None:
            expected = min(expected, max_frames)
    frames, errors = _decode(
        path, width=width, height=height, start=start, stride=stride, max_frames=max_frames,
        capacity=expected if expected else 64, ram_limit=ram_limit,
    )  # fmt: skip
    count = len(frames)
    complaint = _ffmpeg_complaint(errors)
    if count == 0:
        if start > 0:
            raise VideoInputError(
                f"Expected at least one frame from frame {start} on; {path} is shorter than "
                f"that{f' (about {announced} frames)' if announced else ''}. Use a smaller start "
                "(--start)."
            )
        raise VideoInputError(
            f"Expected at least one frame; ffmpeg decoded none from {path}"
            f"{f' ({complaint})' if complaint else ''}. {fix}"
        )
    if expected is not None and count < expected and complaint:
        raise VideoInputError(
            f"Expected the {expected} frames {path} announces; ffmpeg decoded {count} and then "
            f"reported errors ({complaint}). The file is truncated or damaged. {fix} The re-encoded "
            "file keeps the frames that decode."
        )
    if complaint:
        logger.warning("ffmpeg reported errors while decoding %s (%s); all %d frames were read",
                       path, complaint, count)
    elif expected is not None and count < 0.9 * expected - 1:
        logger.warning(
            "%s announces about %d frames (its duration times %s fps) but holds %d; the video "
            "stream ends early (the audio may be longer)", path, expected, fps, count,
        )  # fmt: skip
    logger.info("read %d frames of %dx%d at %s fps from %s%s", count, width, height, fps, path,
                " (kept in a temporary file, not in memory)" if isinstance(frames, FrameStore) else "")
    return Video(frames=frames, fps=fps, name=path.stem, source=path, has_audio=probe.has_audio)


def _decode(
    path: Path, *, width: int, height: int, start: int, stride: int, max_frames: int | None,
    capacity: int, ram_limit: int,
) -> tuple[np.ndarray | FrameStore, str]:
    """Decode the first video stream to rgb24 frames; returns them and ffmpeg's error log."""
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
        "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
    ]  # fmt: skip
    if start > 0 or stride > 1:
        command += ["-vf", f"select='gte(n,{start})*not(mod(n-{start},{stride}))'"]
    if max_frames is not None:
        command += ["-frames:v", str(max_frames)]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    logger.debug("decoding %s: %s", path, " ".join(command))
    sink = _FrameSink(height, width, capacity=capacity, ram_limit=ram_limit)
    frame = np.empty((height, width, 3), dtype=np.uint8)
    buffer = memoryview(frame).cast("B")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        try:
            while True:
                filled = 0
                while filled < len(buffer):
                    got = process.stdout.readinto(buffer[filled:])
                    if not got:
                        break
                    filled += got
                if filled < len(buffer):
                    break  # end of stream (a partial last frame is dropped by ffmpeg itself)
                sink.append(frame)
            process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        log.seek(0)
        errors = log.read().decode("utf-8", errors="replace")
    if process.returncode != 0 and not errors:
        errors = f"ffmpeg exited with status {process.returncode}"
    return sink.finish(), errors


# --------------------------------------------------------------------------------------------
# Frames kept out of memory


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

    def __init__(self, height: int, width: int):
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
        return (self._count, self.height, self.width, 3)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            chosen = range(*index.indices(self._count))
            frames = np.empty((len(chosen), *self.shape[1:]), np.uint8)
            for row, source in enumerate(chosen):
                frames[row] = self[source]
            return frames
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

    def __iter__(self):
        for index in range(self._count):
            yield self[index]

    def __array__(self, dtype=None, copy=None):
        frames = self[:]
        return frames if dtype is None else frames.astype(dtype)

    def close(self) -> None:
        """Release the temporary file now (it is released at exit anyway)."""
        self._file.close()


class _FrameSink:
    """Collects frames into one preallocated uint8 array, moving to a :class:`FrameStore` once
    they would take more than ``ram_limit`` bytes."""

    def __init__(self, height: int, width: int, *, capacity: int, ram_limit: int) -> None:
        self.height, self.width = height, width
        self.max_in_ram = ram_limit // (height * width * 3)
        self.frames = np.empty((min(max(capacity, 1), max(self.max_in_ram, 1)), height, width, 3), np.uint8)
        self.count = 0
        self.store: FrameStore | None = None

    def append(self, frame: np.ndarray) -> None:
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
        if self.store is not None:
            return self.store
        frames = self.frames
        if self.count < frames.shape[0]:
            # A slice of the leading axis is still C-contiguous; copy only when much memory is spare.
            frames = frames[: self.count].copy() if self.count < 0.9 * frames.shape[0] else frames[: self.count]
        return frames


# --------------------------------------------------------------------------------------------
# Writing frames and masks


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


def davis_palette() -> np.ndarray:
    """The DAVIS palette as ``(256, 3)`` uint8 RGB: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), ..."""
    return _DAVIS_PALETTE.copy()


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


# --------------------------------------------------------------------------------------------
# Writing mp4


_BT709_FILTER = (
    "scale=out_color_matrix=bt709:out_range=tv,"
    "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
)


class Mp4Writer:
    """Stream frames into an H.264 mp4, one frame at a time, keeping size and frame rate exactly.

    Use as a context manager::

        with Mp4Writer(path, fps=video.fps, audio_source=video.source) as writer:
            for frame in frames:
                writer.write(frame)

    The file appears under its final name only once complete: frames go to a temporary file
    beside it, renamed at the end. If the ``with`` block raises, the temporary file is removed.

    Encoding:
        - sizes are never changed. Even sizes use ``yuv420p`` (plays everywhere); odd sizes use
          ``yuv444p``, because 4:2:0 H.264 cannot represent an odd width or height exactly
          (High 4:4:4 plays in ffmpeg/VLC/Chrome, not in every hardware player).
        - RGB is converted with the BT.709 matrix (limited range) and tagged BT.709.
        - ``lossless=True`` stores RGB exactly (``libx264rgb -qp 0``): bit-exact but large and
          only playable by ffmpeg-based players.
        - audio of ``audio_source``, when it has any, is copied (re-encoded to AAC when mp4
          cannot hold its codec) and cut to the video's length.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Fraction | int | float | str,
        audio_source: str | os.PathLike[str] | None = None,
        crf: int = 18,
        lossless: bool = False,
    ) -> None:
        """
        Args:
            path: destination ``.mp4``; its folder is created if missing.
            fps: exact frame rate, e.g. ``Fraction(30000, 1001)`` (29.97 as a float maps to it).
            audio_source: a video whose audio to copy; ignored when it has none.
            crf: x264 constant rate factor, 0 (best) to 51; 18 is visually lossless.
            lossless: store RGB exactly (overrides ``crf``).
        """
        if not 0 <= crf <= 51:
            raise ConfigError(f"crf must be between 0 (best) and 51 (worst); got {crf}.")
        self.path = Path(path)
        self.fps = _as_fraction(fps)
        self.audio_source = Path(audio_source) if audio_source is not None else None
        self.crf = crf
        self.lossless = lossless
        self.num_frames = 0
        self._shape: tuple[int, ...] | None = None
        self._encoder = None
        self._temp_video: Path | None = None
        self._closed = False

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _start(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A hidden, unique name beside the destination, so the final rename is atomic.
        temp_name = f".{self.path.stem}.{secrets.token_hex(6)}.partial.mp4"
        self._temp_video = self.path.parent / temp_name
        if self.lossless:
            codec, pix_fmt_out = "libx264rgb", "rgb24"
            output_params = ["-qp", "0", "-color_primaries", "bt709", "-color_trc", "bt709"]
        else:
            codec = "libx264"
            pix_fmt_out = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
            output_params = ["-crf", str(self.crf), "-vf", _BT709_FILTER]
        output_params += ["-movflags", "+faststart", "-f", "mp4"]
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._temp_video),
            (width, height),
            pix_fmt_in="rgb24",
            pix_fmt_out=pix_fmt_out,
            fps=self.fps,
            quality=None,  # rate control comes from output_params
            codec=codec,
            macro_block_size=1,  # never resize
            ffmpeg_log_level="error",
            # Older imageio-ffmpeg rounds fps to 2 decimals; a later -r for the same input wins.
            input_params=["-r", str(self.fps)],
            output_params=output_params,
        )
        self._encoder.send(None)
        logger.debug(
            "encoding %dx%d %s at %s fps into %s", width, height, pix_fmt_out, self.fps, self.path
        )

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` uint8 gray).

        Every frame must have the size of the first.
        """
        if self._closed:
            raise ValueError(f"Mp4Writer for {self.path} is already closed.")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or not (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)
        ):
            raise ValueError(
                "Expected a (H, W, 3) uint8 RGB or (H, W) uint8 frame; got shape "
                f"{frame.shape} and dtype {frame.dtype}."
            )
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if self._shape is None:
            self._shape = frame.shape
            self._start(frame.shape[0], frame.shape[1])
        elif frame.shape != self._shape:
            raise ValueError(
                f"Expected every frame to be {self._shape}, like the first; frame "
                f"{self.num_frames} is {frame.shape}."
            )
        try:
            self._encoder.send(np.ascontiguousarray(frame))
        except OSError as error:
            self.abort()
            raise VdpError(
                f"ffmpeg stopped while encoding frame {self.num_frames} of {self.path} (its "
                "messages are printed above)."
            ) from error
        self.num_frames += 1

    def close(self) -> None:
        """Finish encoding, add audio, and move the file to its final name."""
        if self._closed:
            return
        if self._encoder is None:
            self._closed = True
            raise ValueError(f"No frames were written to {self.path}; nothing to save.")
        self._encoder.close()
        self._closed = True
        temp_video = self._temp_video
        try:
            if not temp_video.exists() or temp_video.stat().st_size == 0 or not _probe(
                temp_video
            ).has_video:
                raise VdpError(
                    f"ffmpeg did not produce a playable video for {self.path} (its messages are "
                    "printed above)."
                )
            result = temp_video
            if self.audio_source is not None:
                result = self._mux_audio(temp_video)
            os.replace(result, self.path)
        finally:
            for leftover in (temp_video, temp_video.with_suffix(".audio.mp4")):
                leftover.unlink(missing_ok=True)
        logger.info("wrote %d frames at %s fps to %s", self.num_frames, self.fps, self.path)

    def abort(self) -> None:
        """Stop encoding and delete the temporary file; the destination is left untouched."""
        if self._encoder is not None and not self._closed:
            try:
                self._encoder.close()
            except Exception as error:  # noqa: BLE001 - cleaning up after another error
                logger.debug("closing ffmpeg after an error raised %r", error)
        self._closed = True
        if self._temp_video is not None:
            self._temp_video.unlink(missing_ok=True)

    def _mux_audio(self, video: Path) -> Path:
        """Add the first audio stream of ``audio_source`` to ``video``; returns the muxed file
        (``video`` itself when the source has no audio)."""
        source = self.audio_source
        if not source.exists():
            raise VideoInputError(
                f"Expected audio_source to be an existing video; nothing exists at {source}."
            )
        probe = _probe(source) if source.is_file() else None
        if probe is None or not probe.has_audio:
            logger.info("%s has no audio; %s is written without audio", source, self.path)
            return video
        if probe.audio_codec in _MP4_AUDIO_CODECS:
            audio_codec = ["copy"]
        else:
            audio_codec = ["aac", "-b:a", "192k"]
        muxed = video.with_suffix(".audio.mp4")
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
            "-i", str(video), "-i", str(source),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", *audio_codec,
            "-shortest", "-movflags", "+faststart", "-f", "mp4", str(muxed),
        ]  # fmt: skip
        logger.debug("muxing audio: %s", " ".join(command))
        completed = subprocess.run(command, capture_output=True, check=False)
        if completed.returncode != 0:
            message = completed.stderr.decode("utf-8", errors="replace").strip()
            raise VdpError(
                f"Could not copy the audio of {source} into {self.path}: ffmpeg says {message!r}. "
                "Pass audio_source=None to write the video without audio."
            )
        return muxed


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike[str],
    *,
    fps: Fraction | int | float | str,
    audio_source: str | os.PathLike[str] | None = None,
    crf: int = 18,
    lossless: bool = False,
) -> int:
    """Encode frames to an H.264 mp4 at an exact frame rate; see :class:`Mp4Writer`.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames, all the same size (a generator is fine; frames
            are streamed, never gathered).
        path: destination ``.mp4``.
        fps: exact frame rate, e.g. ``Fraction(30000, 1001)``.
        audio_source: video whose audio to copy, if it has any.
        crf: x264 constant rate factor (0 best, 51 worst).
        lossless: store RGB bit-exactly.

    Returns:
        The number of frames written.
    """
    with Mp4Writer(path, fps=fps, audio_source=audio_source, crf=crf, lossless=lossless) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.num_frames
