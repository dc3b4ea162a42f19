"""The shared optimisation loop on toy problems: it fits, follows its schedule, survives NaNs."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import Tensor, nn

from vdp.optimize import DivergenceError, OptimConfig, learning_rate_at, optimise

CPU = torch.device("cpu")


class FitTargets(nn.Module):
    """Per-frame vectors fitted to fixed random targets: the simplest `Problem`."""

    def __init__(self, num_frames: int = 6, size: int = 4) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.values = nn.Parameter(torch.zeros(num_frames, size))
        self.register_buffer("targets", torch.rand(num_frames, size, generator=torch.Generator().manual_seed(0)))
        self.calls = 0

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        self.calls += 1
        error = self.values[frame_indices] - self.targets[frame_indices]
        return {"fit": error.square().mean(), "small": 1e-3 * self.values[frame_indices].abs().mean()}


class NanAt(FitTargets):
    """Returns a NaN loss on the calls listed in `bad_calls` (1-based), a normal loss otherwise."""

    def __init__(self, bad_calls: set[int] | None = None, always: bool = False) -> None:
        super().__init__()
        self.bad_calls, self.always = bad_calls or set(), always

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        terms = super().losses(frame_indices, step=step, num_steps=num_steps)
        if self.always or self.calls in self.bad_calls:
            terms["fit"] = terms["fit"] * float("nan")
        return terms


class Linear(nn.Module):
    """Loss = p: a constant gradient of 1, so each Adam step moves p by exactly the learning rate."""

    num_frames = 1

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        return {"linear": self.p * 1.0}


def test_fits_a_toy_problem_and_the_loss_decreases() -> None:
    problem = FitTargets()
    report = optimise(problem, config=OptimConfig(num_steps=150, learning_rate=0.05), device=CPU)
    assert report.steps == 150 and len(report.history) == 150
    first, last = report.history[0]["total"], report.final_losses["total"]
    assert last < 0.05 * first
    assert set(report.final_losses) == {"fit", "small", "total"}
    torch.testing.assert_close(problem.values.detach(), problem.targets, atol=0.05, rtol=0)
    assert report.recoveries == 0 and not report.stopped_by_budget


def test_progress_is_called_after_every_step() -> None:
    calls: list[tuple[int, int]] = []
    optimise(FitTargets(), config=OptimConfig(num_steps=7), device=CPU,
             progress=lambda step, total, terms: calls.append((step, total)))
    assert calls == [(step, 7) for step in range(1, 8)]


def test_learning_rate_schedule_warms_up_then_decays_to_five_percent() -> None:
    config = OptimConfig(num_steps=100, learning_rate=1.0)
    warmup = 5  # 5% of the steps
    assert [learning_rate_at(step, config) for step in range(warmup)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert learning_rate_at(warmup, config) == pytest.approx(1.0)
    after = [learning_rate_at(step, config) for step in range(warmup, 101)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert learning_rate_at(100, config) == pytest.approx(0.05)
    assert learning_rate_at(99, config) == pytest.approx(0.05, abs=1e-3)
    # Half-way through the decay the cosine is at its midpoint: 0.05 + 0.95 / 2.
    assert learning_rate_at(warmup + 95 // 2, config) == pytest.approx(0.525, abs=0.02)


def test_learning_rate_of_a_single_step_run() -> None:
    assert learning_rate_at(0, OptimConfig(num_steps=1, learning_rate=0.1)) == pytest.approx(0.1)


def test_the_loop_applies_the_schedule() -> None:
    # With a constant gradient Adam moves each step by the step's learning rate.
    config = OptimConfig(num_steps=40, learning_rate=0.01)
    problem = Linear()
    values: list[float] = []
    optimise(problem, config=config, device=CPU, progress=lambda *_: values.append(problem.p.item()))
    moves = [before - after for before, after in zip([0.0] + values, values)]
    assert moves == pytest.approx([learning_rate_at(step, config) for step in range(40)], rel=1e-4)


def test_divergence_guard_recovers_from_one_nan() -> None:
    problem = NanAt(bad_calls={30})
    report = optimise(problem, config=OptimConfig(num_steps=60, learning_rate=0.05), device=CPU)
    assert report.recoveries == 1
    assert report.steps == 60 and problem.calls == 61  # the bad step is undone and retried
    assert all(math.isfinite(entry["total"]) for entry in report.history)
    assert torch.isfinite(problem.values).all()
    assert report.final_losses["total"] < report.history[0]["total"]


def test_divergence_guard_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vdp.optimize"):
        optimise(NanAt(bad_calls={3}), config=OptimConfig(num_steps=5), device=CPU)
    assert any("diverged" in record.getMessage() for record in caplog.records)


def test_divergence_guard_gives_up_on_a_problem_that_always_diverges() -> None:
    problem = NanAt(always=True)
    with pytest.raises(DivergenceError, match="learning-rate"):
        optimise(problem, config=OptimConfig(num_steps=20, max_recoveries=3), device=CPU)
    assert problem.calls == 4  # three recoveries, then the fourth NaN is fatal


class NanGradientAtTheEnd(FitTargets):
    """A finite loss whose gradient is NaN on the last step, so only the weights go bad."""

    def __init__(self, last_call: int) -> None:
        super().__init__()
        self.last_call = last_call

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        terms = super().losses(frame_indices, step=step, num_steps=num_steps)
        if self.calls == self.last_call:  # sqrt'(0) is infinite: value 0, gradient NaN
            terms["kink"] = torch.sqrt((self.values - self.values.detach()).abs().sum())
        return terms


def test_non_finite_weights_after_the_last_step_are_replaced_by_the_last_good_ones() -> None:
    problem = NanGradientAtTheEnd(last_call=30)
    report = optimise(problem, config=OptimConfig(num_steps=30, learning_rate=0.05), device=CPU)
    assert report.recoveries == 1
    assert torch.isfinite(problem.values).all()
    assert problem.values.abs().sum() > 0  # the snapshot of step 25, not the zeros it started from


def test_time_budget_stops_early() -> None:
    report = optimise(FitTargets(), config=OptimConfig(num_steps=10_000, time_budget=0.0), device=CPU)
    assert report.stopped_by_budget
    assert report.steps == 1
    assert report.final_losses  # the partial run still reports its losses


def test_same_seed_gives_identical_parameters() -> None:
    def fitted(seed: int) -> Tensor:
        torch.manual_seed(123)  # same initial parameters; the loop's seed decides the batches
        problem = FitTargets(num_frames=8)
        problem.values.data.normal_()
        optimise(problem, config=OptimConfig(num_steps=30, learning_rate=0.05, batch_size=3, seed=seed), device=CPU)
        return problem.values.detach().clone()

    first, second = fitted(seed=7), fitted(seed=7)
    assert torch.equal(first, second)
    assert not torch.equal(first, fitted(seed=8))
