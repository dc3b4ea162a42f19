"""What ffmpeg says about a video file: its streams, exact frame rate, duration and first frame size.

Also the exact-rational handling of frame rates used by readers and writers alike: ffmpeg prints
rates with two decimals ("29.97 fps"), and 29.97 is really ``Fraction(30000, 1001)``.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg

from vdp.errors import ConfigError, VideoInputError

logger = logging.getLogger(__name__)

# ffmpeg prints frame rates with two decimals ("29.97 fps"); these NTSC rates are n*1000/1001.
_NTSC_NUMERATORS = (24000, 30000, 48000, 60000, 120000, 240000)

_PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ProbeResult:
    """What one ffmpeg run found in a file's header and first decoded frame."""

    has_video: bool
    has_audio: bool
    audio_codec: str | None
    """Codec name of the first audio stream (``"aac"``, ``"opus"``...), ``None`` without audio."""
    fps: Fraction | None
    """Exact rate of the first video stream, ``None`` when no frame could be decoded."""
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


def probe_file(path: Path) -> ProbeResult:
    """Ask ffmpeg which streams ``path`` holds and its exact video frame rate.

    ffmpeg's header prints the rate rounded ("29.97 fps"); decoding one frame through the
    ``showinfo`` filter logs the exact rational rate the decoder uses ("frame_rate: 30000/1001").

    Raises:
        VideoInputError: ffmpeg did not finish within 60 s (a stalled network drive).
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
    return ProbeResult(
        has_video=any(kind == "Video" for kind, _ in streams),
        has_audio=bool(audio_codecs),
        audio_codec=audio_codecs[0] if audio_codecs else None,
        fps=fps,
        message=ffmpeg_complaint(log, max_lines=1),
        duration=duration,
        size=size,
        opened=re.search(r"^Input #0", header, re.MULTILINE) is not None,
    )


_COMPLAINT_WORDS = ("rror", "Invalid", "invalid", "not found", "No such", "partial", "Could not")
_LOG_NOISE = ("configuration:", "Task finished", "Terminating thread", "Could not open encoder")
_LOG_PREFIX = re.compile(r"^(\[[^\]]*@ 0x[0-9a-f]+\] ?)+")


def ffmpeg_complaint(log: str, *, max_lines: int = 3) -> str:
    """The last lines of an ffmpeg log that say what went wrong (not its banner), joined by " / "."""
    lines = []
    for line in log.splitlines():
        line = _LOG_PREFIX.sub("", line.strip())
        if any(word in line for word in _COMPLAINT_WORDS) and not line.startswith(_LOG_NOISE):
            lines.append(line)
    return " / ".join(dict.fromkeys(lines[-max_lines:]))


def require_exists(path: Path) -> None:
    """Refuse a path where nothing exists, naming the current directory (the usual mistake).

    Raises:
        VideoInputError: nothing exists at ``path``.
    """
    if not path.exists():
        raise VideoInputError(
            f"Expected an existing video file or folder of frames; nothing exists at {path}. "
            "Check the spelling and the current directory "
            f"({Path.cwd()})."
        )

def fps_from_float(fps: float) -> Fraction:
    """Exact rational for a frame rate printed with two decimals (29.97 -> 30000/1001)."""
    for numerator in _NTSC_NUMERATORS:
        ntsc = Fraction(numerator, 1001)
        if abs(float(ntsc) - fps) < 0.006:
            return ntsc
    return Fraction(fps).limit_denominator(1001)


def as_fraction(fps: Fraction | int | float | str, *, what: str = "fps") -> Fraction:
    """``fps`` as an exact positive Fraction; floats like 29.97 map onto NTSC rates.

    Raises:
        ConfigError: ``fps`` is not a number, or not positive (``what`` names it in the message).
    """
    try:
        value = fps_from_float(fps) if isinstance(fps, float) else Fraction(fps)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as error:
        raise ConfigError(
            f"{what} must be a positive number such as 24, 29.97 or '30000/1001'; got {fps!r}."
        ) from error
    if value <= 0:
        raise ConfigError(f"{what} must be positive; got {fps!r}.")
    return value
