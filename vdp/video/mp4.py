"""Writing H.264 mp4 files frame by frame, at an exact frame rate, with the source's audio.

Encoding goes through the ffmpeg binary shipped with imageio-ffmpeg, in one run per file: frames
are piped in as rgb24 and the source's audio, when it has any, is muxed in the same run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Generator

import imageio_ffmpeg
import numpy as np

from vdp.atomic_write import PendingFile
from vdp.errors import ConfigError, VdpError, VideoInputError
from vdp.video.probe import as_fraction, probe_file

logger = logging.getLogger(__name__)

# Audio codecs the mp4 container holds as they are; anything else is re-encoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})

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
          cannot hold its codec) and cut to the video's length, by the same ffmpeg run that
          encodes the frames. Give ``expected_frames`` when the frame count is known: a source
          whose audio is shorter than its video then still gets every frame (without it, the
          audio's end is the file's end, which can drop the last frames).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Fraction | int | float | str,
        audio_source: str | os.PathLike[str] | None = None,
        crf: int = 18,
        lossless: bool = False,
        expected_frames: int | None = None,
    ) -> None:
        """
        Args:
            path: destination ``.mp4``; its folder is created if missing.
            fps: exact frame rate, e.g. ``Fraction(30000, 1001)`` (29.97 as a float maps to it).
            audio_source: a video whose audio to copy; ignored when it has none.
            crf: x264 constant rate factor, 0 (best) to 51; 18 is visually lossless.
            lossless: store RGB exactly (overrides ``crf``).
            expected_frames: how many frames will be written, when known (see the class notes).
        """
        if not 0 <= crf <= 51:
            raise ConfigError(f"crf must be between 0 (best) and 51 (worst); got {crf}.")
        self.path = Path(path)
        self.fps = as_fraction(fps)
        self.audio_source = Path(audio_source) if audio_source is not None else None
        self.crf = crf
        self.lossless = lossless
        self.expected_frames = expected_frames
        self.num_frames = 0
        self._shape: tuple[int, ...] | None = None
        self._encoder: Generator[Any, Any, None] | None = None
        self._pending: PendingFile | None = None
        self._muxing_audio = False
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

    def _audio_codec(self) -> list[str] | None:
        """ffmpeg's audio codec options for copying ``audio_source``'s first audio stream into mp4
        (``["copy"]`` or ``["aac", "-b:a", "192k"]``), or ``None`` when there is no audio to copy.

        Checked before encoding starts because ffmpeg fails on ``-map 1:a:0`` when the source has
        no audio.
        """
        source = self.audio_source
        if source is None:
            return None
        if not source.exists():
            raise VideoInputError(
                f"Expected audio_source to be an existing video; nothing exists at {source}."
            )
        probe = probe_file(source) if source.is_file() else None
        if probe is None or not probe.has_audio:
            logger.info("%s has no audio; %s is written without audio", source, self.path)
            return None
        if probe.audio_codec in _MP4_AUDIO_CODECS:
            return ["copy"]
        return ["aac", "-b:a", "192k"]

    def _start(self, height: int, width: int) -> None:
        audio_codec = self._audio_codec()
        # A hidden, unique name beside the destination, so the final rename is atomic.
        self._pending = PendingFile(self.path)
        if self.lossless:
            codec, pix_fmt_out = "libx264rgb", "rgb24"
            output_params = ["-qp", "0", "-color_primaries", "bt709", "-color_trc", "bt709"]
        else:
            codec = "libx264"
            pix_fmt_out = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
            output_params = ["-crf", str(self.crf), "-vf", _BT709_FILTER]
        output_params += ["-movflags", "+faststart", "-f", "mp4"]
        audio: dict[str, str] = {}
        if audio_codec is not None:
            # imageio-ffmpeg adds "-i <audio_path>", "-acodec <codec>" and maps video 0:v:0 and
            # audio 1:a:0. The audio is cut at the video's end: by the known duration (half a
            # frame of margin, so the last frame is never cut), else by -shortest, which also
            # ends the video where a shorter audio ends.
            codec_name, *codec_options = audio_codec
            if self.expected_frames is not None:
                duration = (self.expected_frames + 0.5) / self.fps
                output_params += [*codec_options, "-t", f"{float(duration):.6f}"]
            else:
                output_params += [*codec_options, "-shortest"]
            audio = {"audio_path": str(self.audio_source), "audio_codec": codec_name}
            self._muxing_audio = True
        self._encoder = imageio_ffmpeg.write_frames(
            str(self._pending.temporary),
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
            **audio,
        )
        self._encoder.send(None)
        logger.debug(
            "encoding %dx%d %s at %s fps into %s%s", width, height, pix_fmt_out, self.fps, self.path,
            f" with the audio of {self.audio_source}" if self._muxing_audio else "",
        )  # fmt: skip

    def _audio_hint(self) -> str:
        """What to try when ffmpeg fails while muxing audio (empty when it was not)."""
        if not self._muxing_audio:
            return ""
        return (
            f" If they are about the audio of {self.audio_source}, pass audio_source=None to write "
            "the video without audio."
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
                f"messages are printed above).{self._audio_hint()}"
            ) from error
        self.num_frames += 1

    def close(self) -> None:
        """Finish encoding (audio included) and move the file to its final name."""
        if self._closed:
            return
        if self._encoder is None:
            self._closed = True
            raise ValueError(f"No frames were written to {self.path}; nothing to save.")
        self._encoder.close()
        self._closed = True
        temporary = self._pending.temporary
        try:
            # imageio-ffmpeg does not report ffmpeg's exit status: check what it wrote.
            probe = probe_file(temporary) if temporary.is_file() and temporary.stat().st_size else None
            if probe is None or not probe.has_video:
                raise VdpError(
                    f"ffmpeg did not produce a playable video for {self.path} (its messages are "
                    f"printed above).{self._audio_hint()}"
                )
            if self._muxing_audio and not probe.has_audio:
                raise VdpError(
                    f"Could not copy the audio of {self.audio_source} into {self.path} (ffmpeg's "
                    "messages are printed above). Pass audio_source=None to write the video "
                    "without audio."
                )
            self._pending.commit()
        finally:
            self._pending.discard()
        logger.info("wrote %d frames at %s fps to %s", self.num_frames, self.fps, self.path)

    def abort(self) -> None:
        """Stop encoding and delete the temporary file; the destination is left untouched."""
        if self._encoder is not None and not self._closed:
            try:
                self._encoder.close()
            except Exception as error:  # noqa: BLE001 - cleaning up after another error
                logger.debug("closing ffmpeg after an error raised %r", error)
        self._closed = True
        if self._pending is not None:
            self._pending.discard()


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
    expected = len(frames) if hasattr(frames, "__len__") else None
    with Mp4Writer(path, fps=fps, audio_source=audio_source, crf=crf, lossless=lossless,
                   expected_frames=expected) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.num_frames
