"""What a task plugin is, what it returns, and how tasks are found.

Tasks live in their own files (the `tasks/` folder of this project, or any installed package) and
are registered under the `vdp.tasks` entry-point group, so the core never imports a task by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import metadata
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from vdp.errors import ConfigError

ENTRY_POINT_GROUP = "vdp.tasks"


@dataclass
class Context:
    """Everything the core prepares for a task before it builds its problem.

    Frames are uint8 on the CPU; tensors are made per batch by the task on `device`.
    """

    frames: np.ndarray
    """(T, h, w, 3) uint8 RGB frames at the working resolution."""
    forward_flow: np.ndarray
    """(T-1, h, w, 2) float32 flow t -> t+1 at the working resolution, in working pixels."""
    backward_flow: np.ndarray
    """(T-1, h, w, 2) float32 flow t+1 -> t."""
    flow_rgb: np.ndarray
    """(T, h, w, 3) uint8 FlowRGB per frame (flow t -> t+1; the last frame uses -(flow T-1 -> T-2)),
    normalised once for the whole video."""
    full_size: tuple[int, int]
    """(H, W) of the source video."""
    fps: Fraction
    device: Any
    """torch.device chosen at the entry point."""
    flow_method: str
    flow_reason: str
    cache_dir: Any = None
    """Folder for per-video caches (flow, priors), or None."""
    perceptual: Any = None
    """Frozen VGG16 relu3_3 features (`vdp.perceptual`) when their weights are available, else None."""
    perceptual_reason: str = "perceptual: off"
    full_frames: Any = None
    """The video's own frames at full resolution, (T, H, W, 3) uint8 (the array, or a frame store:
    `full_frames[t]` gives one frame; never a copy), for a read-out that combines a frame with its
    neighbours; None when the caller has none (then each frame is lifted alone)."""
    audio_source: Any = None
    """A file holding the video's soundtrack (the source video) when it has one, else None (for
    tasks that use the sound as a cue, e.g. `separate --audio-cue`)."""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def working_size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])


#: Output kinds a task may produce per frame: how the writer stores them.
OUTPUT_KINDS = ("rgb", "rgba", "gray", "gray16", "indexed")


@dataclass
class TaskResult:
    """A task's result, in memory: nothing here touches the disk.

    Working-resolution arrays are kept; full-resolution outputs are produced one frame at a time by
    `full_resolution(t, frame)` so a long video never has to exist as full-resolution floats.
    """

    task: str
    layers: dict[str, np.ndarray]
    """Named RGB(A) layers at the working resolution, (T, h, w, 3|4) uint8."""
    outputs: dict[str, str]
    """Per-frame outputs `full_resolution` returns: name -> kind (one of OUTPUT_KINDS)."""
    videos: dict[str, str]
    """Videos to encode: file name (e.g. 'preview.mp4') -> name of an 'rgb' output."""
    full_resolution: Callable[[int, np.ndarray], dict[str, np.ndarray]]
    """(t, full-resolution uint8 frame (H, W, 3)) -> {output name: array} for that frame."""
    alphas: dict[str, np.ndarray] = field(default_factory=dict)
    """Named float maps at the working resolution, (T, h, w) float32 (opacity, transmission,
    illumination, ...); empty for a task whose result has none (e.g. additive layers)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Task-specific facts for metrics.json (e.g. which layer is the foreground)."""
    highlights: tuple[str, ...] = ()
    """Keys of `info` the command line shows the user after a run (e.g. the estimated airlight)."""
    losses: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """The fixed surface of a task plugin.

    A task is stateless: everything one run needs (its priors, estimates such as the airlight,
    facts for metrics.json) lives on the problem `build` returns, so one task object can serve
    several videos and `read_out` depends only on its arguments.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    config_class: ClassVar[type]
    """A frozen dataclass with a default and a docstring per field: the task's options, on the
    command line too (`vdp.cli_options`)."""
    # Optional: `max_side: ClassVar[int]`, the task's working resolution (longer side) when
    # `--max-side` is not given (default `vdp.api.DEFAULT_MAX_SIDE`).

    def build(self, context: Context, config: Any) -> Any:
        """Return the problem: a `vdp.problem.VideoProblem` (an `nn.Module` with `num_frames` and
        `losses(frame_indices, *, step, num_steps)`, see `vdp.optimize.Problem`)."""
        ...

    def read_out(self, problem: Any, context: Context, config: Any) -> TaskResult:
        """Turn the optimised problem into a result (without `losses`/`timings`, the core adds them)."""
        ...


def available_tasks() -> dict[str, metadata.EntryPoint]:
    """Registered tasks by name (from the `vdp.tasks` entry-point group)."""
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_task(name: str) -> Task:
    """Instantiate the task registered as `name`."""
    tasks = available_tasks()
    if name not in tasks:
        known = ", ".join(sorted(tasks)) or "none (is vdp installed with `pip install -e .`?)"
        raise ConfigError(f"unknown task {name!r}; registered tasks: {known}")
    task_class = tasks[name].load()
    return task_class()


def make_config(task: Task, overrides: Any = None) -> Any:
    """A task's config: its dataclass from defaults and a dict of `overrides` (unknown keys are
    errors), or an instance given as is; either way its choices (`Literal` fields) are checked."""
    from vdp.config import check_choices

    if isinstance(overrides, task.config_class):
        config = overrides
    else:
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(task.config_class)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"task {task.name!r} has no option(s) {', '.join(unknown)}; its options are: {', '.join(sorted(known))}"
            )
        config = task.config_class(**overrides)
    check_choices(config)
    return config
