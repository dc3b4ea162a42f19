"""Videos of any length: the fit runs over overlapping windows of frames, fitted as they are needed.

A video longer than `RunOptions.window` frames is cut into windows of that many frames, spread
evenly so that neighbours share at least `window_overlap` frames. Each window is an ordinary run
(its own working frames, flow, priors, nets and read-out), so memory and time per window do not
depend on the video's length. The windows are fitted lazily, in order, as the writer asks for their
frames, and at most `KEEP_WINDOWS` (two) fitted windows are held; a frame shared by two windows is the
cross-fade of both windows' outputs (weights ramping linearly over the overlap), so masks,
transmission and layers stay continuous across window borders. See docs/method.md ("Long videos").
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np

from vdp.errors import ConfigError
from vdp.task import TaskResult
from vdp.video.frame_store import FrameRange
from vdp.video.read import Video

logger = logging.getLogger(__name__)

#: Fitted windows held at once: the one being written and its neighbour across the overlap (the
#: writer has a few frames in flight, fewer than any sensible overlap, so an older window is not
#: needed again; if it is, it is fitted again, identically).
KEEP_WINDOWS = 2

#: Shortest window allowed (the fit needs motion between several frames).
MIN_WINDOW = 4


def check_window(window: int, overlap: int) -> None:
    """Refuse window settings that cannot work, before anything is decoded."""
    if window < 0:
        raise ConfigError(f"--window must be 0 (the whole video at once) or a number of frames, got {window}")
    if window and window < MIN_WINDOW:
        raise ConfigError(f"--window must be at least {MIN_WINDOW} frames (or 0 for the whole video), got {window}")
    if overlap < 0:
        raise ConfigError(f"--window-overlap must be 0 or more frames, got {overlap}")
    if window and 2 * overlap > window:
        raise ConfigError(f"--window-overlap ({overlap}) must be at most half of --window ({window})")


def plan_windows(num_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """(start, stop) of each window: one window when the video fits in one (or `window` is 0),
    else the fewest windows of `window` frames sharing at least `overlap` frames, spread evenly."""
    if not window or num_frames <= window:
        return [(0, num_frames)]
    count = math.ceil((num_frames - overlap) / (window - overlap))
    starts = [round(index * (num_frames - window) / (count - 1)) for index in range(count)]
    return [(start, start + window) for start in starts]


def blend_weights(spans: list[tuple[int, int]], t: int) -> list[tuple[int, float]]:
    """(window index, weight) of the windows holding frame `t`, weights summing to 1: each window's
    weight rises linearly from its first frame and falls to its last, except at the video's ends."""
    last = spans[-1][1]
    raw = []
    for index, (start, stop) in enumerate(spans):
        if start <= t < stop:
            from_start = math.inf if start == 0 else t - start + 1
            to_stop = math.inf if stop == last else stop - t
            raw.append((index, min(from_start, to_stop)))
    total = sum(min(weight, 1e9) for _, weight in raw)
    return [(index, min(weight, 1e9) / total) for index, weight in raw]


def blend_outputs(parts: list[tuple[dict[str, np.ndarray], float]], kinds: dict[str, str]) -> dict[str, np.ndarray]:
    """The weighted mean of several windows' outputs for one frame; an indexed output (labels) is
    taken from the window with the largest weight."""
    if len(parts) == 1:
        return parts[0][0]
    heaviest = max(parts, key=lambda part: part[1])[0]
    blended = {}
    for name, value in heaviest.items():
        if kinds.get(name) == "indexed" or not np.issubdtype(value.dtype, np.number):
            blended[name] = value
            continue
        total = sum(outputs[name].astype(np.float32) * weight for outputs, weight in parts)
        if np.issubdtype(value.dtype, np.integer):
            info = np.iinfo(value.dtype)
            total = np.clip(np.rint(total), info.min, info.max)
        blended[name] = total.astype(value.dtype)
    return blended


class _Windows:
    """Fits windows on demand, in any order (in practice in order), holding `KEEP_WINDOWS` of them."""

    def __init__(self, fit_window: Callable[[int], TaskResult]) -> None:
        self._fit_window = fit_window
        self._held: collections.OrderedDict[int, TaskResult] = collections.OrderedDict()
        self._lock = threading.Lock()  # the writer lifts frames from several threads
        self.fitted: list[int] = []  # every fit, in order (a window fitted twice appears twice)

    def __getitem__(self, index: int) -> TaskResult:
        with self._lock:
            if index in self._held:
                self._held.move_to_end(index)
                return self._held[index]
            if len(self._held) >= KEEP_WINDOWS:
                while len(self._held) >= KEEP_WINDOWS:
                    self._held.popitem(last=False)  # the least recently used (the earliest, in order)
                gc.collect()  # a fitted problem holds reference cycles: free its tensors now, not later
            result = self._fit_window(index)
            self.fitted.append(index)
            self._held[index] = result
            return result


def run_windowed(task: Any, video: Video, spans: list[tuple[int, int]], *, config: Any, options: Any, device: Any,
                 fit: Callable[..., TaskResult]) -> TaskResult:
    """The result of fitting `task` window by window (see the module's doc); `fit` fits one video
    (`vdp.api.fit`)."""
    logger.info("%s: %d frames in %d windows of %d frames (overlap >= %d)", video.name, video.num_frames,
                len(spans), options.window, options.window_overlap)
    timings: dict[str, float] = {}
    losses: dict[str, float] = {}
    window_info: list[dict[str, Any]] = []
    info: dict[str, Any] = {"windows": {"window": options.window, "overlap": options.window_overlap,
                                        "count": len(spans), "fits": 0, "per_window": window_info}}

    def fit_window(index: int) -> TaskResult:
        start, stop = spans[index]
        started = time.perf_counter()
        part = Video(frames=FrameRange(video.frames, start, stop), fps=video.fps, name=video.name,
                     source=video.source, has_audio=video.has_audio)
        result = fit(task, part, config=config, options=options, device=device)
        info["windows"]["fits"] += 1
        logger.info("window %d/%d (frames %d-%d) fitted in %.1fs", index + 1, len(spans), start, stop - 1,
                    time.perf_counter() - started)
        if len(window_info) <= index:  # the first fit of this window (a refit changes nothing here)
            for key, value in result.timings.items():
                timings[key] = round(timings.get(key, 0.0) + value, 3)
            for key, value in result.losses.items():  # the mean over windows
                losses[key] = (losses.get(key, 0.0) * index + value) / (index + 1)
            window_info.append({"frames": [start, stop], "steps": result.info.get("steps"),
                                "final_loss": result.losses.get("total")})
        return result

    windows = _Windows(fit_window)
    first = windows[0]  # fitted now: a bad setting or a diverging fit fails here, as in a plain run
    kinds = dict(first.outputs)

    def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
        parts = [(windows[index].full_resolution(t - spans[index][0], frame), weight)
                 for index, weight in blend_weights(spans, t)]
        return blend_outputs(parts, kinds)

    info.update({key: value for key, value in first.info.items() if key not in ("steps",)})
    info["num_frames"] = video.num_frames
    return TaskResult(
        task=first.task, layers={}, alphas={}, outputs=kinds, videos=dict(first.videos),
        full_resolution=full_resolution, info=info, highlights=first.highlights, losses=losses,
        timings=timings, config={**first.config, "options": dataclasses.asdict(options)},
    )
