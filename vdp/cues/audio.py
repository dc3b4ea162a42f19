"""Which separated layer the soundtrack belongs to: motion that keeps time with the sound's onsets.

The cue behind ``vdp separate --audio-cue`` (the audio-controlled variant of the Visual Centrifuge
papers, done per video and without training). Its assumption is simple: the layer that makes the
sound also *changes* when the sound starts - a drum is hit, a door slams, a mouth opens - so that
layer's motion energy over time rises and falls with the soundtrack's onsets, while a layer that
makes no sound moves on its own schedule. Each layer gets one number: how well its per-frame
motion energy correlates with the per-frame onset strength of the audio. It is a correlation, not
a learned model: it needs the sound to have onsets (a steady hum or music without attacks says
nothing), the sounding layer to visibly move when they happen, and at least a few such moments in
the clip. A small margin between the best and second-best layer means the cue did not decide.

Steps: :func:`read_audio` decodes the soundtrack with ffmpeg, :func:`onset_envelope` turns it into
one onset strength per video frame, :func:`motion_energy` measures how much each layer changes from
frame to frame, :func:`audio_scores` correlates the two and :func:`rank_layers_by_audio` does it
all for a video file and says which layer wins.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import imageio_ffmpeg
import numpy as np

from vdp.errors import VideoInputError
from vdp.video.probe import as_fraction, ffmpeg_complaint, probe_file, require_exists

logger = logging.getLogger(__name__)

#: Sample rate the soundtrack is decoded at: onsets need no more than 8 kHz of bandwidth.
SAMPLE_RATE = 16000
#: Target spacing of the onset analysis, in seconds; the exact hop divides a video frame evenly.
HOP_SECONDS = 0.01
#: Length of each analysis window, in seconds.
WINDOW_SECONDS = 0.02
#: Spectral magnitudes this far below the loudest possible one (from the peak sample) count as
#: silence: the log compression flattens below it, so codec noise and AAC pre-echo around a sharp
#: click do not register as onsets of their own.
FLOOR_DB = 50.0
#: A soundtrack whose loudest sample is below this is treated as silent.
SILENCE_PEAK = 1e-4
#: Lags, in frames, over which a layer's motion may trail or lead the sound (see audio_scores).
MAX_LAG = 2

_DECODE_TIMEOUT_S = 600.0
# Windows processed at once by onset_envelope, to bound memory on long videos.
_CHUNK_WINDOWS = 4096


def read_audio(
    source: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE, *, duration: float | None = None
) -> np.ndarray | None:
    """Decode the first audio stream of a video file to mono float32 PCM.

    Sample 0 is at the file's time zero (where its first frame is shown, for the usual file whose
    streams both start at 0): ffmpeg pads with silence when the audio starts late, so onsets stay
    in step with the frames.

    Args:
        source: a video (or audio) file.
        sample_rate: samples per second of the result.
        duration: decode at most this many seconds (the video's length); ``None`` decodes it all.

    Returns:
        ``(N,)`` float32 samples, about in [-1, 1] (channels averaged); ``None`` when the file has
        no audio stream.

    Raises:
        VideoInputError: nothing exists at ``source``, ffmpeg cannot open it, or decoding fails.
    """
    path = Path(source)
    require_exists(path)
    if not path.is_file():
        return None  # a folder of frames has no soundtrack
    probe = probe_file(path)
    if not probe.opened:
        raise VideoInputError(
            f"Expected a video file with a soundtrack; ffmpeg cannot open {path}"
            + (f" ({probe.message})." if probe.message else ".")
        )
    if not probe.has_audio:
        return None
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
               "-i", str(path), "-map", "0:a:0", "-vn",
               # Fill a late start with silence so that sample 0 is the file's time zero.
               "-af", f"aresample={int(sample_rate)}:async=1:first_pts=0", "-ac", "1"]  # fmt: skip
    if duration is not None:
        command += ["-t", f"{max(float(duration), 0.0):.6f}"]
    command += ["-f", "f32le", "-"]
    logger.debug("decoding the audio of %s: %s", path, " ".join(command))
    try:
        completed = subprocess.run(command, capture_output=True, timeout=_DECODE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise VideoInputError(
            f"ffmpeg did not finish decoding the audio of {path} within {_DECODE_TIMEOUT_S:.0f} s. "
            "Expected a local, readable video file."
        ) from error
    if completed.returncode != 0:
        complaint = ffmpeg_complaint(completed.stderr.decode("utf-8", errors="replace"))
        raise VideoInputError(
            f"Could not decode the audio of {path}: {complaint or 'ffmpeg failed'}. Expected a "
            "readable audio stream; run without the audio cue to ignore the soundtrack."
        )
    return np.frombuffer(completed.stdout, dtype="<f4").astype(np.float32)


def onset_envelope(
    samples: np.ndarray,
    sample_rate: int,
    fps: Fraction | float | str,
    num_frames: int,
    start_time: float = 0.0,
) -> np.ndarray:
    """Onset strength of a soundtrack, one value per video frame.

    Spectral flux: the sound is cut into short windows (about 20 ms, every 10 ms), each window's
    spectrum is log-compressed, and the strength of a hop is the sum of the increases of each
    frequency over the previous window (decreases are ignored: a sound ending is not an onset).
    Hops are laid out so that each video frame gets the same whole number of them, and frame
    ``t`` sums those whose new samples lie in ``[start_time + t/fps, start_time + (t+1)/fps)``
    - a sound starting exactly at a frame's time lands in that frame (one starting in a frame's
    last few milliseconds, where the window's taper hides it, mostly shows in the next).

    Args:
        samples: ``(N,)`` mono samples in about [-1, 1].
        sample_rate: samples per second.
        fps: the video's frame rate.
        num_frames: how many frames ``T`` the envelope covers.
        start_time: time of frame 0 in the sound, in seconds.

    Returns:
        ``(T,)`` float32 with zero mean and unit standard deviation; all zeros when the sound is
        silent or does not change over the frames.
    """
    rate = float(as_fraction(fps))
    envelope = np.zeros(max(int(num_frames), 0), dtype=np.float32)
    samples = np.asarray(samples, dtype=np.float32).ravel()
    if num_frames < 1 or samples.size == 0:
        return envelope
    peak = float(np.max(np.abs(samples)))
    if not math.isfinite(peak) or peak < SILENCE_PEAK:
        return envelope
    hops_per_frame = max(1, round(1.0 / (rate * HOP_SECONDS)))
    window_length = max(4, round(WINDOW_SECONDS * sample_rate))
    window = np.hanning(window_length + 2)[1:-1].astype(np.float32)
    # Log compression log(1 + |X| / floor): logarithmic above the floor, flat below it.
    floor = peak * float(window.sum()) * 10.0 ** (-FLOOR_DB / 20.0)
    # Window j ends where hop j starts: flux[j], the rise from window j to window j + 1, sees the
    # samples of hop j for the first time. ends[0] is frame 0's time.
    num_hops = num_frames * hops_per_frame
    hop_edges = start_time + np.arange(num_hops + 1) / (rate * hops_per_frame)
    ends = np.round(hop_edges * sample_rate).astype(np.int64)
    # Pad so every window can be cut out, whatever start_time and the sound's length.
    pad_before = max(0, window_length - int(ends[0]))
    pad_after = max(0, int(ends[-1]) - samples.size)
    padded = np.pad(samples, (pad_before, pad_after))
    offsets = np.arange(-window_length, 0)
    flux = np.empty(num_hops, dtype=np.float32)
    previous: np.ndarray | None = None
    for first in range(0, num_hops + 1, _CHUNK_WINDOWS):
        chunk_ends = ends[first : min(first + _CHUNK_WINDOWS, num_hops + 1)]
        frames = padded[chunk_ends[:, None] + offsets[None, :] + pad_before] * window
        compressed = np.log1p(np.abs(np.fft.rfft(frames, axis=1)) / floor).astype(np.float32)
        if previous is not None:
            compressed = np.concatenate([previous[None], compressed])
        rises = np.maximum(np.diff(compressed, axis=0), 0.0).sum(axis=1)
        start = first - 1 if previous is not None else 0
        flux[start : start + rises.size] = rises
        previous = compressed[-1]
    envelope = flux.reshape(num_frames, hops_per_frame).sum(axis=1)
    spread = float(envelope.std())
    if spread <= 1e-6 * max(float(np.abs(envelope).max()), 1e-12):
        return np.zeros(num_frames, dtype=np.float32)
    return ((envelope - envelope.mean()) / spread).astype(np.float32)


def motion_energy(layer: np.ndarray) -> np.ndarray:
    """How much a layer changes from each frame to the next.

    Args:
        layer: ``(T, H, W, 3)`` RGB video, uint8 (or float in [0, 1]).

    Returns:
        ``(T,)`` float32: for frame ``t``, the mean absolute difference of the grayscale frames
        ``t - 1`` and ``t``, in [0, 1]. Frame 0 has no predecessor and gets frame 1's value (0 for
        a one-frame video).
    """
    layer = np.asarray(layer)
    if layer.ndim != 4 or layer.shape[-1] != 3:
        raise ValueError(f"Expected a (T, H, W, 3) RGB layer; got shape {layer.shape}.")
    num_frames = layer.shape[0]
    energy = np.zeros(num_frames, dtype=np.float32)
    scale = 1.0 / 255.0 if layer.dtype == np.uint8 else 1.0
    previous: np.ndarray | None = None
    for index in range(num_frames):
        frame = np.ascontiguousarray(layer[index], dtype=np.float32) * scale
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if previous is not None:
            energy[index] = float(np.mean(np.abs(gray - previous)))
        previous = gray
    if num_frames > 1:
        energy[0] = energy[1]
    return energy


def _standardised(values: np.ndarray) -> np.ndarray | None:
    """``values`` with zero mean and unit std, ``None`` when they are (nearly) constant."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    if values.size < 2 or spread <= 1e-9 * max(float(np.abs(values).max()), 1e-12):
        return None
    return (values - values.mean()) / spread


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long series; 0 when either is constant."""
    a, b = _standardised(a), _standardised(b)
    if a is None or b is None:
        return 0.0
    return float(np.mean(a * b))


def lagged_correlation(
    energy: np.ndarray, envelope: np.ndarray, *, max_lag: int = MAX_LAG
) -> tuple[float, int]:
    """Best Pearson correlation of motion energy and onset envelope over small lags.

    Lag ``k`` compares ``energy[t]`` with ``envelope[t - k]``: positive lags let the motion
    trail the sound by ``k`` frames, negative ones lead it. Each lag correlates only the frames
    both series cover.

    Returns:
        ``(correlation, lag)`` for the best lag (the smallest ``|lag|`` among ties).
    """
    num_frames = len(energy)
    if len(envelope) != num_frames:
        raise ValueError(
            f"Expected the envelope to have one value per frame ({num_frames}); got {len(envelope)}."
        )
    best, best_lag = -math.inf, 0
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):
        if num_frames - abs(lag) < 3:
            continue
        if lag >= 0:
            value = _pearson(energy[lag:], envelope[: num_frames - lag])
        else:
            value = _pearson(energy[: num_frames + lag], envelope[-lag:])
        if value > best:
            best, best_lag = value, lag
    return (0.0, 0) if best == -math.inf else (best, best_lag)


def audio_scores(
    layers: Sequence[np.ndarray], envelope: np.ndarray, *, max_lag: int = MAX_LAG
) -> list[float]:
    """How well each layer's motion follows the soundtrack's onsets.

    Per layer: the largest Pearson correlation, over lags of ``-max_lag .. +max_lag`` frames,
    between its :func:`motion_energy` and ``envelope`` (both standardised, so a layer's contrast
    or amount of steady motion does not matter, only its timing). Lags are searched because sound
    and picture are rarely in step to the frame: files carry an audio/video offset of a frame or
    two (encoder delay, an edit), the visible change can come a frame before its sound (a stick
    swinging down) or after it (a string vibrating), and an onset near a frame boundary may land
    in either frame. A couple of frames is far less than the spacing of distinct onsets, so the
    search absorbs the offset without letting unrelated motion line up.

    Args:
        layers: ``(T, H, W, 3)`` uint8 videos, all ``T`` frames long.
        envelope: ``(T,)`` onset envelope (:func:`onset_envelope`).
        max_lag: largest lag searched, in frames.

    Returns:
        One correlation in [-1, 1] per layer; 0 for a layer that does not move or change at all.
    """
    return [lagged_correlation(motion_energy(layer), envelope, max_lag=max_lag)[0] for layer in layers]


def rank_layers_by_audio(
    layers: Sequence[np.ndarray],
    source: str | os.PathLike[str],
    fps: Fraction | float | str,
    *,
    sample_rate: int = SAMPLE_RATE,
    max_lag: int = MAX_LAG,
) -> dict[str, Any]:
    """Rank separated layers by how well their motion follows the soundtrack of ``source``.

    Args:
        layers: the separated layers, ``(T, H, W, 3)`` uint8, frame ``t`` of each at time
            ``t / fps`` of ``source``.
        source: the input video, whose first audio stream is used.
        fps: the video's frame rate.
        sample_rate: rate the audio is decoded at.
        max_lag: largest audio/video lag searched, in frames (see :func:`audio_scores`).

    Returns:
        A JSON-ready dict for metrics.json: ``"scores"`` (one correlation per layer, or ``None``),
        ``"winner"`` (index of the best layer, or ``None`` when the cue cannot decide: then
        ``"reason"`` says why - no audio stream, a silent soundtrack...), ``"margin"`` (best minus
        second-best score; ``None`` with fewer than two layers or no winner), ``"lags"`` (each
        layer's best lag in frames: positive when the motion trails the sound) and
        ``"envelope_frames"`` (``T``).

    Raises:
        ValueError: no layers, or layers of different lengths.
        VideoInputError: ``source`` does not exist or its audio cannot be decoded.
    """
    if not layers:
        raise ValueError("Expected at least one layer to rank; got none.")
    num_frames = len(layers[0])
    if any(len(layer) != num_frames for layer in layers):
        raise ValueError(
            "Expected every layer to have the same number of frames; got "
            f"{[len(layer) for layer in layers]}."
        )
    rate = as_fraction(fps)
    result: dict[str, Any] = {
        "scores": None, "winner": None, "margin": None, "lags": None, "envelope_frames": num_frames,
    }  # fmt: skip
    samples = read_audio(source, sample_rate, duration=float((num_frames + 1) / rate))
    if samples is None:
        result["reason"] = f"{Path(source).name} has no audio stream"
        return result
    envelope = onset_envelope(samples, sample_rate, rate, num_frames)
    if not envelope.any():
        result["reason"] = (
            f"the soundtrack of {Path(source).name} is silent or has no onsets over the "
            f"{num_frames} frames"
        )
        return result
    best = [lagged_correlation(motion_energy(layer), envelope, max_lag=max_lag) for layer in layers]
    scores = [round(score, 6) for score, _ in best]
    result["scores"] = scores
    result["lags"] = [lag for _, lag in best]
    if num_frames < 2 * max_lag + 3:
        result["reason"] = f"{num_frames} frames are too few to compare motion with the sound"
        return result
    if not any(scores):
        result["reason"] = "no layer changes from frame to frame, so none can follow the sound"
        return result
    order = sorted(range(len(scores)), key=lambda index: -scores[index])
    result["winner"] = order[0]
    if len(order) > 1:
        result["margin"] = round(scores[order[0]] - scores[order[1]], 6)
    logger.info(
        "audio cue: layer %d follows the soundtrack best (scores %s)", order[0] + 1,
        ", ".join(f"{score:.3f}" for score in scores),
    )  # fmt: skip
    return result
