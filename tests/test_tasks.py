"""Every registered task runs end to end on a tiny video; tasks are found through entry points."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from fractions import Fraction
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vdp import api
from vdp.errors import ConfigError
from vdp.optimize import OptimConfig
from vdp.example_clip import make_moving_object_video
from vdp.task import ENTRY_POINT_GROUP, OUTPUT_KINDS, Context, TaskResult, available_tasks, load_task, make_config
from vdp.video import Video

NUM_FRAMES, HEIGHT, WIDTH = 6, 40, 56

#: What `full_resolution` must return per output kind: (dtypes, number of channels or None for 2-D).
KIND_LAYOUT: dict[str, tuple[tuple[type, ...], int | None]] = {
    "rgb": ((np.uint8,), 3),
    "rgba": ((np.uint8,), 4),
    "gray": ((np.uint8,), None),
    "gray16": ((np.uint16,), None),
    "indexed": ((np.uint8, np.bool_), None),
}


@pytest.fixture(scope="module")
def tiny_video() -> Video:
    frames, _ = make_moving_object_video(num_frames=NUM_FRAMES, height=HEIGHT, width=WIDTH, seed=3)
    return Video(frames=frames, fps=Fraction(24), name="tiny")


def tiny_options(num_steps: int = 2) -> api.RunOptions:
    # max_side 32 < 56: the working resolution differs from the full one, so lifting is exercised.
    return api.RunOptions(device="cpu", max_side=32, cache_dir="", optim=OptimConfig(num_steps=num_steps))


def offline_config(task_name: str) -> dict:
    """Overrides that keep a task away from optional models, so the test passes without them."""
    fields = {field.name for field in dataclasses.fields(load_task(task_name).config_class)}
    return {"objectness": "off"} if "objectness" in fields else {}


def check_result(result: TaskResult, video: Video, task_name: str) -> None:
    working = api.working_size(video.height, video.width, 32)
    assert result.task == task_name
    for name, layer in result.layers.items():
        assert layer.dtype == np.uint8, name
        assert layer.shape[:3] == (video.num_frames, *working) and layer.shape[3] in (3, 4), name
    # Maps are optional (an additive task such as separate has none), layers too (the toy task).
    assert result.layers or result.alphas, "a task returns at least one layer or map"
    for name, alpha in result.alphas.items():
        assert alpha.dtype == np.float32, name
        assert alpha.shape == (video.num_frames, *working), name
        assert np.isfinite(alpha).all(), name
        assert alpha.min() >= 0.0 and alpha.max() <= 1.0, name
    assert set(result.outputs.values()) <= set(OUTPUT_KINDS)
    for file_name, output in result.videos.items():
        assert result.outputs.get(output) == "rgb", f"{file_name} must name an 'rgb' output, got {output!r}"
    for t in (0, video.num_frames - 1):
        produced = result.full_resolution(t, video.frames[t])
        assert set(produced) == set(result.outputs)
        for name, kind in result.outputs.items():
            dtypes, channels = KIND_LAYOUT[kind]
            array = produced[name]
            expected_shape = (video.height, video.width) if channels is None else (video.height, video.width, channels)
            if name == "preview":  # previews may put panels side by side: full height, whole panels
                assert array.shape[0] == video.height and array.shape[1] % video.width == 0, (name, array.shape)
                assert array.shape[2:] == expected_shape[2:], (name, array.shape)
                continue
            assert array.shape == expected_shape, (name, kind, array.shape)
            assert array.dtype in dtypes, (name, kind, array.dtype)
    assert result.losses and all(np.isfinite(value) for value in result.losses.values())
    assert result.info["steps"] == 2
    assert result.config["task"] == task_name


@pytest.mark.parametrize("task_name", sorted(available_tasks()))
def test_every_registered_task_runs_on_a_tiny_video(task_name: str, tiny_video: Video) -> None:
    result = api.run(task_name, tiny_video, config=offline_config(task_name), options=tiny_options())
    check_result(result, tiny_video, task_name)


def test_segment_is_registered() -> None:
    assert "segment" in available_tasks()


def test_unknown_task_is_a_config_error_listing_the_tasks(tiny_video: Video) -> None:
    with pytest.raises(ConfigError, match="segment") as error:
        load_task("no-such-task")
    assert "no-such-task" in str(error.value)
    with pytest.raises(ConfigError, match="registered tasks"):
        api.run("no-such-task", tiny_video, options=tiny_options())


def test_make_config_rejects_unknown_keys() -> None:
    task = load_task("segment")
    with pytest.raises(ConfigError, match="bogus") as error:
        make_config(task, {"bogus": 1, "objectness": "off"})
    assert "objectness" in str(error.value)  # the message lists the valid options


def test_make_config_applies_overrides() -> None:
    task = load_task("segment")
    config = make_config(task, {"objectness": "off"})
    assert isinstance(config, task.config_class) and config.objectness == "off"
    assert make_config(task) == task.config_class()


# A third-party task, as small as the surface allows: one opacity value per frame.


@dataclass(frozen=True)
class ToyConfig:
    """Options of the toy task."""

    brightness_weight: float = 1.0
    """Weight of the only loss term."""


class ToyProblem(nn.Module):
    def __init__(self, context: Context, config: ToyConfig) -> None:
        super().__init__()
        self.num_frames = context.num_frames
        self.config = config
        self.logits = nn.Parameter(torch.zeros(context.num_frames))
        brightness = torch.from_numpy(context.frames.reshape(context.num_frames, -1).mean(1) / 255.0).float()
        self.register_buffer("brightness", brightness)

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        alpha = torch.sigmoid(self.logits[frame_indices])
        return {"brightness": self.config.brightness_weight * (alpha - self.brightness[frame_indices]).abs().mean()}


class ToyTask:
    name = "toy"
    summary = "a toy task registered by the tests"
    config_class = ToyConfig

    def build(self, context: Context, config: ToyConfig) -> ToyProblem:
        return ToyProblem(context, config)

    @torch.no_grad()
    def read_out(self, problem: ToyProblem, context: Context, config: ToyConfig) -> TaskResult:
        level = torch.sigmoid(problem.logits).numpy().astype(np.float32)
        alpha = np.broadcast_to(level[:, None, None], (context.num_frames, *context.working_size)).copy()

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            return {"alpha": np.full(frame.shape[:2], round(float(level[t]) * 255), np.uint8)}

        return TaskResult(task=self.name, layers={}, alphas={"toy": alpha}, outputs={"alpha": "gray"}, videos={},
                          full_resolution=full_resolution)


@pytest.fixture
def toy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add `toy` to the `vdp.tasks` entry-point group, as an installed plugin package would."""
    real_entry_points = metadata.entry_points
    toy = metadata.EntryPoint(name="toy", value=f"{__name__}:ToyTask", group=ENTRY_POINT_GROUP)

    def entry_points(**selection):
        if selection.get("group") != ENTRY_POINT_GROUP:  # other groups (torch's, triton's) untouched
            return real_entry_points(**selection)
        return [*real_entry_points(**selection), toy]

    monkeypatch.setattr("vdp.task.metadata.entry_points", entry_points)


def test_a_third_party_task_registers_and_runs(toy_registered: None, tiny_video: Video) -> None:
    assert {"toy", "segment"} <= set(available_tasks())
    assert isinstance(load_task("toy"), ToyTask)
    result = api.run("toy", tiny_video, config={"brightness_weight": 2.0}, options=tiny_options())
    check_result(result, tiny_video, "toy")
    assert result.config["task_config"] == {"brightness_weight": 2.0}


def test_vdp_tasks_lists_an_installed_plugin(tmp_path: Path) -> None:
    # A real plugin distribution: a module and a dist-info folder with its entry point, on the path.
    (tmp_path / "toy_vdp_plugin.py").write_text(textwrap.dedent('''
        class ToyTask:
            name = "toy"
            summary = "a toy plugin installed by the tests"
    '''))
    dist_info = tmp_path / "toy_vdp_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-vdp-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy = toy_vdp_plugin:ToyTask\n")
    completed = subprocess.run(
        [sys.executable, "-m", "vdp.cli", "tasks"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.split()[0] == "toy" and "toy plugin installed by the tests" in line for line in lines), lines
    assert any(line.split()[0] == "segment" for line in lines), lines


def test_segment_with_the_objectness_model(tiny_video: Video) -> None:
    from vdp.cues.objectness import locate_model

    model = locate_model()
    if model.path is None:
        pytest.skip(model.reason)
    result = api.run("segment", tiny_video, config={"objectness": "on"}, options=tiny_options())
    check_result(result, tiny_video, "segment")
    assert "U2-Net-p" in result.info["objectness"]


def test_segment_objectness_on_with_a_missing_model_is_a_config_error(tiny_video: Video, tmp_path: Path) -> None:
    config = {"objectness": "on", "objectness_model": str(tmp_path / "missing.onnx")}
    with pytest.raises(ConfigError, match="missing.onnx"):
        api.run("segment", tiny_video, config=config, options=tiny_options())
