"""The surface a task plugs into: stateless tasks, a step-aware loop, one motion per layer."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vdp import api
from vdp.example_clip import make_moving_object_video
from vdp.optimize import OptimConfig, optimise
from vdp.problem import Motion, VideoProblem
from vdp.task import available_tasks, load_task, make_config
from vdp.video import Video


@pytest.fixture(scope="module")
def context():
    frames, _ = make_moving_object_video(num_frames=5, height=32, width=48, seed=4)
    video = Video(frames=frames, fps=Fraction(24), name="surface")
    return api.prepare(video, options=api.RunOptions(device="cpu", max_side=32, cache_dir="", perceptual="off"))


@pytest.mark.parametrize("task_name", sorted(available_tasks()))
def test_a_task_keeps_no_state_of_its_own(task_name: str, context) -> None:
    # Everything a run needs lives on the problem, so one task object can serve several videos.
    task = load_task(task_name)
    fields = {field.name for field in dataclasses.fields(task.config_class)}
    config = make_config(task, {"objectness": "off"} if "objectness" in fields else {})
    first = task.build(context, config)
    assert vars(task) == {}, f"{task_name} stored {sorted(vars(task))} on the task object"
    task.build(context, config)
    result = task.read_out(first, context, config)
    assert set(result.outputs) and not vars(task)


class StagedProblem(nn.Module):
    """Fits `value` to 1 during the first half of the steps and to -1 during the second."""

    def __init__(self) -> None:
        super().__init__()
        self.num_frames = 3
        self.value = nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, int]] = []

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        self.seen.append((step, num_steps))
        target = 1.0 if step < num_steps // 2 else -1.0
        return {"stage": (self.value - target) ** 2}


def test_the_loop_tells_the_problem_its_step_so_a_fit_can_be_staged() -> None:
    problem = StagedProblem()
    report = optimise(problem, config=OptimConfig(num_steps=40, learning_rate=0.1), device=torch.device("cpu"))
    assert list(dict.fromkeys(problem.seen)) == [(step, 40) for step in range(40)]
    # The stage change raises the loss tenfold; the divergence guard takes it for what it is.
    assert report.recoveries == 0 and report.steps == 40
    assert float(problem.value) < 0  # it followed the second stage's target


def test_a_layer_can_have_a_motion_of_its_own(context) -> None:
    problem = VideoProblem(context)
    steps = problem.num_frames - 1
    height, width = context.working_size
    # A texture moving 2 px right per frame: zero warp loss along its own motion, not along none.
    texture = torch.rand(1, 1, height, width + 2 * problem.num_frames, generator=torch.Generator().manual_seed(0))
    layer = torch.cat([texture[..., 2 * (problem.num_frames - t): 2 * (problem.num_frames - t) + width]
                       for t in range(problem.num_frames)])
    right = np.zeros((steps, height, width, 2), np.float32)
    right[..., 0] = 2.0
    own = Motion(right, -right)
    still = Motion(np.zeros_like(right), np.zeros_like(right))
    starts = torch.arange(steps)
    indices = torch.cat([starts, starts + 1])
    along_own = float(problem.warp_loss(layer[indices], starts, own))
    along_still = float(problem.warp_loss(layer[indices], starts, still))
    assert along_own < 0.1 * along_still
    own.update(np.zeros_like(right), np.zeros_like(right))  # re-estimated during a fit, e.g. on the layer
    assert float(problem.warp_loss(layer[indices], starts, own)) == pytest.approx(along_still)
