"""A third-party task, installed as its own distribution, is a `vdp` command with generated options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from vdp.example_clip import make_moving_object_video
from vdp.task import ENTRY_POINT_GROUP
from vdp.video import write_mp4

PLUGIN = '''
"""A throw-away vdp task: one grey level per frame, fitted to the frame's brightness."""

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from vdp.task import TaskResult


@dataclass(frozen=True)
class GreyConfig:
    """Options of the grey task."""

    brightness_weight: float = 1.0
    """Weight of the brightness term."""
    mode: Literal["mean", "max"] = "mean"
    """Which brightness statistic the grey level follows."""
    levels: tuple[int, ...] = (4, 8)
    """Unused widths, to exercise a tuple option."""


class GreyProblem(nn.Module):
    def __init__(self, context, config):
        super().__init__()
        self.num_frames = context.num_frames
        self.config = config
        self.logits = nn.Parameter(torch.zeros(context.num_frames))
        flat = context.frames.reshape(context.num_frames, -1) / 255.0
        target = flat.max(1) if config.mode == "max" else flat.mean(1)
        self.register_buffer("target", torch.from_numpy(target).float())
        self.steps_seen = []

    def losses(self, frame_indices, *, step, num_steps):
        self.steps_seen.append((step, num_steps))
        grey = torch.sigmoid(self.logits[frame_indices])
        return {"brightness": self.config.brightness_weight * (grey - self.target[frame_indices]).abs().mean()}


class GreyTask:
    """Grey frames at each frame's brightness (a plugin made by the tests)."""

    name = "grey"
    summary = "grey frames at each frame's brightness"
    config_class = GreyConfig

    def build(self, context, config):
        return GreyProblem(context, config)

    @torch.no_grad()
    def read_out(self, problem, context, config):
        level = torch.sigmoid(problem.logits).numpy()

        def full_resolution(t, frame):
            return {"grey": np.full(frame.shape[:2], round(float(level[t]) * 255), np.uint8)}

        return TaskResult(task=self.name, layers={}, outputs={"grey": "gray"}, videos={},
                          full_resolution=full_resolution, info={"steps_seen": problem.steps_seen[-1:],
                          "levels": list(config.levels)}, highlights=("levels",))
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a plugin module and its dist-info (entry point in `vdp.tasks`), as pip leaves it."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "grey_vdp_plugin.py").write_text(PLUGIN)
    dist_info = folder / "grey_vdp_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: grey-vdp-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ngrey = grey_vdp_plugin:GreyTask\n")
    return folder


def vdp_with_plugin(plugin_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "vdp.cli", *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": path})


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames, _ = make_moving_object_video(num_frames=4, height=24, width=32, seed=2)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_mp4(frames, path, fps=Fraction(24))
    return path


def test_the_plugin_is_listed_and_its_options_come_from_its_dataclass(plugin_path: Path) -> None:
    listing = vdp_with_plugin(plugin_path, "--help")
    assert listing.returncode == 0, listing.stderr
    assert "grey frames at each frame's brightness" in listing.stdout
    helped = vdp_with_plugin(plugin_path, "grey", "--help")
    assert helped.returncode == 0, helped.stderr
    text = " ".join(helped.stdout.split())
    assert "--brightness-weight FLOAT Weight of the brightness term. [default: 1.0]" in text
    assert "--mode [mean|max]" in text and "--levels N,N,..." in text and "[default: 4,8]" in text
    assert "--steps INTEGER" in text and "--device" in text  # the shared run options


def test_the_plugin_runs_with_an_option_from_its_dataclass(plugin_path: Path, clip: Path, tmp_path: Path) -> None:
    completed = vdp_with_plugin(plugin_path, "grey", str(clip), "-o", str(tmp_path / "out"), "--brightness-weight",
                                "3", "--mode", "max", "--levels", "2,3,5", "--steps", "3", "--max-side", "16",
                                "--cache-dir", "", "--device", "cpu")
    assert completed.returncode == 0, completed.stderr
    result = tmp_path / "out" / "clip"
    assert completed.stdout.strip() == str(result)
    assert len(list((result / "grey").glob("*.png"))) == 4
    config = json.loads((result / "config.json").read_text())
    assert config["task"] == "grey"
    assert config["task_config"] == {"brightness_weight": 3.0, "mode": "max", "levels": [2, 3, 5]}
    assert config["options"]["optim"]["num_steps"] == 3
    info = json.loads((result / "metrics.json").read_text())["info"]
    assert info["steps_seen"] == [[2, 3]]  # the loop told the task its step and the number of steps
    assert "levels: [2, 3, 5]" in completed.stderr  # the task's highlight, shown by the CLI


@pytest.mark.parametrize("args, expected", [
    (["--mode", "median"], "--mode must be one of mean, max; got 'median'"),
    (["--levels", "2,x"], "--levels expects int values separated by commas"),
])
def test_a_wrong_plugin_option_is_one_line_before_decoding(plugin_path: Path, clip: Path, tmp_path: Path,
                                                          args: list[str], expected: str) -> None:
    completed = vdp_with_plugin(plugin_path, "grey", str(clip), "-o", str(tmp_path / "out"), *args)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith(f"error: {expected}"), completed.stderr
    assert not (tmp_path / "out").exists()  # refused before any work: no output folder made
