"""The Python API (the CLI is a thin layer over it).

    import vdp.api as vdp
    video = vdp.load_video("clip.mp4")
    result = vdp.run("segment", video, options=vdp.RunOptions(max_side=320))
    result.alphas["foreground"]        # (T, h, w) float32, working resolution
    vdp.save(result, video, "out/")    # full-resolution outputs, streamed frame by frame

Nothing here prints; progress goes through callbacks and the `logging` module.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vdp.errors import ConfigError
from vdp.flow import FlowMethod
from vdp.optimize import OptimConfig, ProgressCallback
from vdp.perceptual import PerceptualMode
from vdp.task import Context, TaskResult, load_task, make_config
from vdp.video import Video, read_video

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")

#: Frames per optimisation window, and frames shared by neighbouring windows (`vdp.windows`).
DEFAULT_WINDOW = 150
DEFAULT_WINDOW_OVERLAP = 16


@dataclass(frozen=True)
class RunOptions:
    """Settings common to every task."""

    device: str = "auto"
    """'auto' (cuda > mps > cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    flow: FlowMethod = "auto"
    """Optical flow: 'auto' (RAFT on a GPU when its weights load, DIS otherwise), 'raft', 'dis', 'farneback'."""
    raft_weights: str | None = None
    """Path to RAFT-large weights (default: torchvision's cache, downloaded when online)."""
    perceptual: PerceptualMode = "auto"
    """VGG16 perceptual term: 'auto' (when its weights are cached or given), 'on' or 'off'."""
    vgg_weights: str | None = None
    """Path to torchvision VGG16 weights (default: torchvision's cache; never downloaded by vdp)."""
    max_side: int | None = None
    """Working resolution: the longer side the nets are fitted at (results are lifted to full size);
    default: the task's own (segment 384, dehaze and relight 256)."""
    cache_dir: str | None = None
    """Where flow is cached per video (default: $VDP_CACHE_DIR or ~/.cache/vdp); '' disables it."""
    window: int = DEFAULT_WINDOW
    """Frames fitted at once: a longer video is fitted in overlapping windows of this many frames
    (memory and time per window stay bounded, whatever the video's length); 0 fits the whole video
    at once."""
    window_overlap: int = DEFAULT_WINDOW_OVERLAP
    """Frames shared by consecutive windows; results are cross-faded over them."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """The optimisation loop's settings (steps, learning rate, seed, time budget, ...)."""


def load_video(path: str | Path, **kwargs: Any) -> Video:
    """Read a video file or a folder of frames (see `vdp.video.read_video` for options)."""
    return read_video(Path(path), **kwargs)


def resolve_device(name: str):
    """Turn a device name into a `torch.device`, checking that it exists."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} was asked for, but this PyTorch sees no CUDA GPU; use --device cpu or auto")
        return torch.device(name)
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError("--device mps was asked for, but MPS is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise ConfigError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)} (or cuda:N)")


def check_options(options: RunOptions) -> None:
    """Refuse bad common settings at once, before a video is decoded (a typo should not cost a
    decode): the device must exist here, the flow method and perceptual mode must be known."""
    from vdp.flow import check_method
    from vdp.perceptual import check_mode

    resolve_device(options.device)
    check_method(options.flow)
    check_mode(options.perceptual)
    if options.max_side is not None:
        working_size(16, 16, options.max_side)
    from vdp.windows import check_window

    check_window(options.window, options.window_overlap)
    if options.optim.num_steps < 0:
        raise ConfigError(f"--steps must be 0 or more, got {options.optim.num_steps}")
    if not options.optim.learning_rate > 0:
        raise ConfigError(f"--learning-rate must be positive, got {options.optim.learning_rate}")


def default_cache_dir() -> Path:
    return Path(os.environ.get("VDP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vdp")


#: Working resolution (longer side) of a task that does not name its own.
DEFAULT_MAX_SIDE = 256


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) with the longer side at most `max_side`, aspect kept, each side at least 16."""
    if max_side < 16:
        raise ConfigError(f"--max-side must be at least 16, got {max_side}")
    scale = min(1.0, max_side / max(height, width))
    return max(16, round(height * scale)), max(16, round(width * scale))


def resize_frames(frames, size: tuple[int, int]) -> np.ndarray:
    """(T, H, W, 3) uint8 (an array or a `FrameStore`) -> (T, h, w, 3) uint8 array, with area
    averaging (bicubic when enlarging); frames are read one at a time."""
    height, width = size
    if tuple(frames.shape[1:3]) == (height, width):
        return np.asarray(frames)
    shrinking = height <= frames.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = np.empty((frames.shape[0], height, width, 3), np.uint8)
    for index, frame in enumerate(frames):
        out[index] = cv2.resize(frame, (width, height), interpolation=interpolation)
    return out


def prepare(
    video: Video,
    *,
    options: RunOptions,
    device=None,
    flow_progress: Callable[[int, int], None] | None = None,
) -> Context:
    """Working-resolution frames, flow (cached) and FlowRGB: what every task starts from."""
    from vdp.flow import compute_flow, flow_to_rgb, video_flow_scale

    device = resolve_device(options.device) if device is None else device
    if video.num_frames < 2:
        from vdp.errors import VideoInputError

        raise VideoInputError(
            f"Expected at least 2 frames (vdp fits the layers to the motion between frames); {video.name} gives "
            f"{video.num_frames}. Pass a longer clip, or check --start, --max-frames and --stride; for a still "
            "image use an image tool."
        )
    size = working_size(video.height, video.width, options.max_side or DEFAULT_MAX_SIDE)
    frames = resize_frames(video.frames, size)
    cache_dir = None if options.cache_dir == "" else Path(options.cache_dir or default_cache_dir()) / "flow"
    flow = compute_flow(
        frames,
        method=options.flow,
        device=str(device),
        raft_weights=options.raft_weights,
        cache_dir=cache_dir,
        progress=flow_progress,
    )
    logger.info("flow: %s", flow.reason)
    scale = video_flow_scale(np.concatenate([flow.forward, flow.backward]))
    per_frame = np.concatenate([flow.forward, -flow.backward[-1:]])
    flow_rgb = flow_to_rgb(per_frame, max_magnitude=scale)
    from vdp.perceptual import load_perceptual

    perceptual = load_perceptual(options.perceptual, options.vgg_weights, device=device)
    logger.info(perceptual.reason)
    return Context(
        perceptual=perceptual.features,
        perceptual_reason=perceptual.reason,
        frames=frames,
        forward_flow=flow.forward,
        backward_flow=flow.backward,
        flow_rgb=flow_rgb,
        full_size=(video.height, video.width),
        fps=video.fps,
        device=device,
        flow_method=flow.method,
        flow_reason=flow.reason,
        cache_dir=cache_dir,
        full_frames=video.frames,
        audio_source=video.source if video.has_audio else None,
    )


def run(
    task_name: str,
    video: Video,
    *,
    config: Any | dict | None = None,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    flow_progress: Callable[[int, int], None] | None = None,
) -> TaskResult:
    """Run a task on a video in memory and return its typed result (nothing is written to disk).

    Args:
        task_name: a registered task (`vdp tasks` lists them).
        video: from `load_video`.
        config: the task's config dataclass, or a dict of overrides of its defaults (its choices
            are checked either way).
        options: common settings (device, flow, working resolution, optimisation).
        progress: called after each optimisation step with (step, num_steps, loss terms).
        flow_progress: called while flow is computed with (pairs done, pairs in all).

    A video longer than `options.window` frames is fitted in overlapping windows (`vdp.windows`):
    the first window is fitted here and the others as `full_resolution` reaches their frames, so
    read the frames in order (as `save` does); such a result keeps no working-resolution `layers`
    or `alphas` for the whole video (they would grow with its length), and its `info`, `losses`
    and `timings` are complete once every frame has been read.
    """
    options = options or RunOptions()
    task = load_task(task_name)
    config = make_config(task, config)
    if options.max_side is None:  # the task's own working resolution
        options = dataclasses.replace(options, max_side=getattr(task, "max_side", DEFAULT_MAX_SIDE))
    device = resolve_device(options.device)
    from vdp.windows import plan_windows, run_windowed

    spans = plan_windows(video.num_frames, options.window, options.window_overlap)
    if len(spans) > 1:
        return run_windowed(task, video, spans, config=config, options=options, device=device,
                            fit=functools.partial(fit, progress=progress, flow_progress=flow_progress))
    return fit(task, video, config=config, options=options, device=device, progress=progress,
               flow_progress=flow_progress)


def fit(
    task: Any,
    video: Video,
    *,
    config: Any,
    options: RunOptions,
    device: Any,
    progress: ProgressCallback | None = None,
    flow_progress: Callable[[int, int], None] | None = None,
) -> TaskResult:
    """Fit a task to all of `video`'s frames at once and read out its result (the work of `run`
    for one window; `options.max_side` is already resolved)."""
    import torch

    timings: dict[str, float] = {}
    started = time.perf_counter()
    torch.manual_seed(options.optim.seed)
    np.random.seed(options.optim.seed)
    context = prepare(video, options=options, device=device, flow_progress=flow_progress)
    timings["flow"] = time.perf_counter() - started

    from vdp.optimize import optimise

    mark = time.perf_counter()
    problem = task.build(context, config)
    timings["build"] = time.perf_counter() - mark
    report = optimise(problem, config=options.optim, device=device, progress=progress)
    timings["optimise"] = report.seconds
    mark = time.perf_counter()
    result = task.read_out(problem, context, config)
    _require_finite(result, task.name)
    timings["read_out"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    result.losses = report.final_losses
    result.timings = {key: round(value, 3) for key, value in timings.items()}
    result.config = {
        "task": task.name,
        "task_config": dataclasses.asdict(config),
        "options": dataclasses.asdict(options),
    }
    result.info.update(
        {
            "device": str(device),
            "flow_method": context.flow_method,
            "flow_reason": context.flow_reason,
            "perceptual": context.perceptual_reason,
            "working_size": list(context.working_size),
            "full_size": list(context.full_size),
            "num_frames": context.num_frames,
            "steps": report.steps,
            "divergence_recoveries": report.recoveries,
            "stopped_by_time_budget": report.stopped_by_budget,
        }
    )
    return result


def _require_finite(result: TaskResult, task_name: str) -> None:
    """Refuse a result holding NaN or infinite values: nothing is written from it."""
    from vdp.optimize import DivergenceError

    arrays = [("alpha", name, value) for name, value in result.alphas.items()]
    arrays += [("layer", name, value) for name, value in result.layers.items()]
    for what, name, value in arrays:
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():  # uint8 cannot be NaN
            raise DivergenceError(
                f"the {task_name} result's {what} {name!r} holds NaN or infinite values, so nothing was "
                f"written; try a smaller --learning-rate, another --seed, or --device cpu"
            )


def save(result: TaskResult, video: Video, out_dir: str | Path, *, overwrite: bool = False, **kwargs: Any) -> Path:
    """Write a result's full-resolution outputs to `out_dir/<video name>/` (see `vdp.outputs`)."""
    from vdp.outputs import write_result

    return write_result(result, video, Path(out_dir), overwrite=overwrite, **kwargs)
