"""Reading a video file or a folder of frames into uint8 RGB frames, decoding each frame once.

Frames live on the CPU as ``(T, H, W, 3)`` uint8 RGB arrays; nothing here makes float copies.
Video files are decoded by the ffmpeg binary shipped with imageio-ffmpeg, piped out as rgb24:
it honours rotation metadata (phone videos keep their orientation), and the frame rate comes out
as an exact rational (29.97 fps is ``Fraction(30000, 1001)``). Frames beyond a memory budget go to
a temporary file (:class:`~vdp.video.frame_store.FrameStore`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

from vdp.errors import ConfigError, VideoInputError
from vdp.video.frame_store import FrameRange, FrameSink, FrameStore, frames_ram_limit
from vdp.video.probe import as_fraction, ffmpeg_complaint, probe_file, require_exists

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
"""File extensions read as videos (compared case-insensitively)."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
"""File extensions read as frames when the input is a folder (compared case-insensitively)."""

DEFAULT_FOLDER_FPS = Fraction(24)
"""Frame rate given to a folder of frames, which carries none itself (DAVIS is shot at 24 fps)."""


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
        if isinstance(self.frames, (FrameStore, FrameRange)):
            self.fps = as_fraction(self.fps)
            return
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                "Video.frames must be a (T, H, W, 3) uint8 RGB array; got shape "
                f"{self.frames.shape} and dtype {self.frames.dtype}."
            )
        self.fps = as_fraction(self.fps)

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
            fps=as_fraction(default_fps, what="default_fps"), ram_limit=ram_limit,
        )  # fmt: skip
    return _read_video_file(path, start=start, max_frames=max_frames, stride=stride, ram_limit=ram_limit)


def check_input(path: str | os.PathLike[str]) -> None:
    """Refuse, without decoding anything, a path that cannot be an input: missing, or a file whose
    extension is not a video's.

    Raises:
        VideoInputError: saying what was expected, what is there and what to do.
    """
    path = Path(path).expanduser()
    require_exists(path)
    if not path.is_dir() and path.suffix.lower() not in VIDEO_EXTENSIONS:
        kind = "an image" if path.suffix.lower() in IMAGE_EXTENSIONS else "a file"
        raise VideoInputError(
            f"Expected a video file ({' '.join(VIDEO_EXTENSIONS)}) or a folder of frames; got "
            f"{kind} with extension '{path.suffix}': {path}. Convert it to mp4 (for example "
            f"`ffmpeg -i '{path}' -c:v libx264 -crf 18 out.mp4`), or put single images in a "
            "folder and pass the folder."
        )


def natural_sort_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts)


def describe_contents(folder: Path, *, limit: int = 5) -> str:
    """The end of an error message about a folder: ' It holds: a, b.' (the first `limit` names)
    or ' It is empty.'"""
    names = sorted(entry.name for entry in folder.iterdir())[:limit]
    return f" It holds: {', '.join(names)}." if names else " It is empty."


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
    return sorted(files, key=lambda entry: (natural_sort_key(entry.name), entry.name))


def _read_folder(
    folder: Path, *, start: int, max_frames: int | None, stride: int, fps: Fraction, ram_limit: int
) -> Video:
    all_files = list_frame_files(folder)
    if not all_files:
        raise VideoInputError(
            f"Expected a folder of frames ({' '.join(IMAGE_EXTENSIONS)}, any case); found no "
            f"such files in {folder}.{describe_contents(folder)} Put the frames directly in this folder (not in "
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
    sink = FrameSink(*first.shape[:2], capacity=len(files), ram_limit=ram_limit)
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
    probe = probe_file(path)
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
    complaint = ffmpeg_complaint(errors)
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
    sink = FrameSink(height, width, capacity=capacity, ram_limit=ram_limit)
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
