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
_MAX_PREALLOCATED_BYTES = 8 << 30


@dataclass
class Video:
    """Decoded frames of one video or frame folder, with what is needed to write a result back."""

    frames: np.ndarray
    """``(T, H, W, 3)`` uint8 RGB, C-contiguous."""
    fps: Fraction
    """Exact frame rate, e.g. ``Fraction(30000, 1001)`` for 29.97 fps."""
    name: str
    """Stem of the video file, or the folder's name."""
    source: Path | None = None
    """Where the frames came from (``None`` for frames made in memory)."""
    has_audio: bool = False
    """Whether ``source`` carries an audio stream that a written result can copy."""

    def __post_init__(self) -> None:
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


_STREAM_LINE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): (\w+)", re.MULTILINE)
_FILTER_FRAME_RATE = re.compile(r"config in time_base: \d+/\d+, frame_rate: (\d+)/(\d+)")


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
    return _ProbeResult(
        has_video=any(kind == "Video" for kind, _ in streams),
        has_audio=bool(audio_codecs),
        audio_codec=audio_codecs[0] if audio_codecs else None,
        fps=fps,
        message=_ffmpeg_complaint(log, max_lines=1),
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
) -> Video:
    """Read a video file or a folder of frames into memory as uint8 RGB.

    Args:
        path: a video file (``.mp4 .mov .avi .mkv .webm .m4v``, any case) or a folder of
            ``.jpg .jpeg .png .bmp .tif .tiff`` frames, read in natural order (``2.png`` before
            ``10.png``).
        start: index of the first frame to keep.
        max_frames: keep at most this many frames (``None``: all).
        stride: keep every ``stride``-th frame from ``start`` on. The returned ``fps`` stays the
            source's rate; divide it by ``stride`` for playback at the original speed.
        default_fps: frame rate given to a folder of frames (24 unless told otherwise).

    Returns:
        A :class:`Video` whose ``frames`` are ``(T, H, W, 3)`` uint8 RGB, C-contiguous.
        Grayscale frames are replicated to three channels, alpha is dropped, 16-bit frames are
        scaled to 8 bits (``round(v / 257)``).

    Raises:
        VideoInputError: the path is missing, of an unsupported type, not decodable, holds no
            frames, or holds frames of different sizes.
        ConfigError: ``start``, ``max_frames`` or ``stride`` is out of range.
    """
    path = Path(path).expanduser()
    if start < 0:
        raise ConfigError(f"start must be 0 or more; got {start}.")
    if stride < 1:
        raise ConfigError(f"stride must be 1 or more; got {stride}.")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be 1 or more (or None for all); got {max_frames}.")
    _require_exists(path)
    if path.is_dir():
        return _read_folder(
            path, start=start, max_frames=max_frames, stride=stride,
            fps=_as_fraction(default_fps, what="default_fps"),
        )  # fmt: skip
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        kind = "an image" if path.suffix.lower() in IMAGE_EXTENSIONS else "a file"
        raise VideoInputError(
            f"Expected a video file ({' '.join(VIDEO_EXTENSIONS)}) or a folder of frames; got "
            f"{kind} with extension '{path.suffix}': {path}. Convert it to mp4 (for example "
            f"`ffmpeg -i '{path}' -c:v libx264 -crf 18 out.mp4`), or put single images in a "
            "folder and pass the folder."
        )
    return _read_video_file(path, start=start, max_frames=max_frames, stride=stride)


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
    folder: Path, *, start: int, max_frames: int | None, stride: int, fps: Fraction
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
    frames = np.empty((len(files), *first.shape), dtype=np.uint8)
    frames[0] = first
    for index, file in enumerate(files[1:], start=1):
        image = _read_image_rgb(file)
        if image.shape != first.shape:
            raise VideoInputError(
                "Expected every frame in a folder to have the same size; "
                f"{file.name} is {image.shape[1]}x{image.shape[0]} (WxH) but {files[0].name} is "
                f"{first.shape[1]}x{first.shape[0]}, in {folder}. Resize or remove the odd "
                "frames so that all match."
            )
        frames[index] = image
    height, width = first.shape[:2]
    logger.info("read %d frames of %dx%d from %s", len(files), width, height, folder)
    return Video(frames=frames, fps=fps, name=folder.name, source=folder, has_audio=False)


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


def _read_video_file(path: Path, *, start: int, max_frames: int | None, stride: int) -> Video:
    probe = _probe(path)
    fix = (
        f"Check that it plays in a video player, or re-encode it with "
        f"`ffmpeg -i '{path}' -c:v libx264 -crf 18 -pix_fmt yuv420p fixed.mp4`."
    )
    if not probe.has_video:
        said = f" (ffmpeg says: {probe.message.rstrip('.')})" if probe.message else ""
        raise VideoInputError(
            f"Expected a decodable video; {path} is not one: ffmpeg found no video stream in "
            f"it{said}. {fix}"
        )
    output_params = ["-map", "0:v:0", "-fps_mode", "passthrough"]
    if start > 0 or stride > 1:
        output_params += ["-vf", f"select='gte(n,{start})*not(mod(n-{start},{stride}))'"]
    if max_frames is not None:
        output_params += ["-frames:v", str(max_frames)]

    reader = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
    try:
        try:
            meta = next(reader)
        except (OSError, RuntimeError, ValueError, IndexError, AttributeError) as error:
            raise VideoInputError(
                f"Expected a decodable video; ffmpeg could not read {path} "
                f"({_ffmpeg_complaint(str(error)) or error}). {fix}"
            ) from error
        fps = probe.fps if probe.fps is not None else _fps_from_float(float(meta.get("fps") or 0))
        if fps <= 0:
            logger.warning("no frame rate found in %s; assuming %s", path, DEFAULT_FOLDER_FPS)
            fps = DEFAULT_FOLDER_FPS
        width, height = meta["size"]
        frames = _collect_frames(
            reader, height=height, width=width,
            capacity=_estimate_frame_count(meta, fps, start, stride, max_frames),
            max_frames=max_frames, path=path, fix=fix,
        )  # fmt: skip
    finally:
        reader.close()
    if frames.shape[0] == 0:
        if start > 0:
            raise VideoInputError(
                f"Expected at least one frame from frame {start} on; {path} is shorter than "
                "that. Use a smaller start."
            )
        raise VideoInputError(
            f"Expected at least one frame; ffmpeg decoded none from {path}. {fix}"
        )
    logger.info(
        "read %d frames of %dx%d at %s fps from %s", frames.shape[0], width, height, fps, path
    )
    return Video(frames=frames, fps=fps, name=path.stem, source=path, has_audio=probe.has_audio)


def _estimate_frame_count(
    meta: dict, fps: Fraction, start: int, stride: int, max_frames: int | None
) -> int:
    """Frames to preallocate: from the container's duration, which may be missing or wrong, so
    capped at about 8 GiB (the buffer grows when needed)."""
    duration = float(meta.get("duration") or 0.0)
    estimate = math.ceil(duration * fps) + 1 if duration > 0 else 64
    estimate = max(1, math.ceil(max(estimate - start, 1) / stride))
    width, height = meta["size"]
    estimate = min(estimate, max(16, _MAX_PREALLOCATED_BYTES // (width * height * 3)))
    return min(estimate, max_frames) if max_frames is not None else estimate


def _collect_frames(
    reader: Iterable[bytes],
    *,
    height: int,
    width: int,
    capacity: int,
    max_frames: int | None,
    path: Path,
    fix: str,
) -> np.ndarray:
    """Copy raw rgb24 frames into one preallocated ``(T, H, W, 3)`` uint8 array, growing it
    by half when the duration-based estimate was short."""
    frames = np.empty((capacity, height, width, 3), dtype=np.uint8)
    count = 0
    try:
        for raw in reader:
            if count == frames.shape[0]:
                grown = np.empty((count + max(count // 2, 16), height, width, 3), dtype=np.uint8)
                grown[:count] = frames
                frames = grown
            frames[count] = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    except RuntimeError as error:
        raise VideoInputError(
            f"Expected a decodable video; ffmpeg stopped while decoding frame {count} of {path} "
            f"({_ffmpeg_complaint(str(error)) or error}). {fix}"
        ) from error
    if count < frames.shape[0]:
        # A slice of the leading axis is still C-contiguous; copy only when much memory is spare.
        frames = frames[:count].copy() if count < 0.9 * frames.shape[0] else frames[:count]
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
