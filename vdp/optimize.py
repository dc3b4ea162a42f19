"""The one optimisation loop every task runs.

A task hands over a `Problem`: an `nn.Module` whose parameters are optimised and whose
`losses(frame_indices, step=, num_steps=)` returns named, already weighted loss terms for a batch
of frames (the step lets a task stage its fit, e.g. layers first, then masks). The
loop owns everything else (device placement, mixed precision, Adam and its schedule, batching,
the divergence guard, the time budget, progress), and never asks which task it runs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from vdp.errors import VdpError

logger = logging.getLogger(__name__)


class Problem(Protocol):
    """What a task gives the loop: parameters and a loss over a batch of frame indices."""

    num_frames: int

    def parameters(self): ...  # noqa: D102 - nn.Module's

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        """Named, weighted scalar loss terms for the frames `frame_indices` ((B,) int64) at
        optimisation step `step` (0-based) of `num_steps`. A term may appear at some steps only."""
        ...


@dataclass(frozen=True)
class OptimConfig:
    """Settings of the shared optimisation loop."""

    num_steps: int = field(default=200, metadata={"flags": ("--steps",)})
    """Optimisation steps, each on one random batch of frames (0: the prior alone, no fit)."""
    learning_rate: float = 2e-3
    """Peak Adam learning rate; a short warm-up then cosine decay to 5% of it."""
    batch_size: int = 2
    """Frames sampled per step (a task may add neighbours, e.g. the next frame for its warp loss)."""
    seed: int = 0
    """Seed for the nets' initialisation and the batch order."""
    time_budget: float | None = None
    """Stop after this many seconds of optimisation, whatever `num_steps` says."""
    mixed_precision: bool = True
    """bfloat16 autocast on CUDA (ignored on CPU and MPS)."""
    max_recoveries: int = 5
    """Divergence guard: how many times a NaN/exploding step may be undone (halving the rate)."""


@dataclass
class OptimReport:
    """What the loop did: final loss terms, history and timing."""

    steps: int = 0
    seconds: float = 0.0
    final_losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    recoveries: int = 0
    stopped_by_budget: bool = False


class DivergenceError(VdpError, RuntimeError):
    """The loss kept diverging after every recovery (shown to the user as one clear line)."""


ProgressCallback = Callable[[int, int, dict[str, float]], None]


#: A loss counts as diverging when it exceeds ten times the recent median, that median taken as at least
#: this: a fit whose loss is near zero (a layer solved to reconstruct its input) moves by more than
#: ten times when a solve step changes it, and that is not a divergence.
SPIKE_FLOOR = 1e-2


def learning_rate_at(step: int, config: OptimConfig) -> float:
    """Warm-up over the first 5% of steps, then cosine decay to 5% of the peak rate."""
    warmup = max(1, config.num_steps // 20)
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.num_steps - warmup)
    return config.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def optimise(
    problem: nn.Module,
    *,
    config: OptimConfig,
    device: torch.device,
    progress: ProgressCallback | None = None,
) -> OptimReport:
    """Fit `problem`'s parameters by minimising the sum of its loss terms.

    Args:
        problem: an `nn.Module` implementing `Problem`, already on `device`.
        config: loop settings.
        device: where the problem lives (decides mixed precision).
        progress: called after every step with (step, num_steps, loss terms as floats).
    """
    generator = torch.Generator().manual_seed(config.seed)
    parameters = [p for p in problem.parameters() if p.requires_grad]
    # A problem whose every parameter is fixed (e.g. a solved layer with fixed coefficients) still
    # runs its schedule through `losses`; there is just nothing to step (no optimiser).
    def new_optimiser(rate: float) -> torch.optim.Adam | None:
        return torch.optim.Adam(parameters, lr=rate) if parameters else None

    optimiser = new_optimiser(config.learning_rate)
    use_autocast = config.mixed_precision and device.type == "cuda"
    report = OptimReport()
    num_frames = int(problem.num_frames)
    batch_size = min(config.batch_size, num_frames)
    good_state = _snapshot(parameters)
    lr_scale = 1.0
    recent: list[float] = []
    just_restored = False
    start = time.perf_counter()

    step = 0
    while step < config.num_steps:
        for group in optimiser.param_groups if optimiser is not None else ():
            group["lr"] = learning_rate_at(step, config) * lr_scale
        frame_indices = torch.randperm(num_frames, generator=generator)[:batch_size]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_autocast):
            terms = problem.losses(frame_indices, step=step, num_steps=config.num_steps)
        total = sum(value.float() for value in terms.values())
        value = float(total.detach())
        spike = len(recent) >= 20 and value > 10.0 * max(sorted(recent)[len(recent) // 2], SPIKE_FLOOR)
        if spike and just_restored and math.isfinite(value):
            # The last good weights give this loss too: the objective changed (a task staging its
            # fit), the weights did not diverge. Take back the halving and measure spikes from here.
            report.recoveries -= 1
            lr_scale *= 2.0
            recent, spike = [], False
            logger.info("loss rose at step %d (%r) with the last good weights: a new stage, not a divergence", step, value)
        diverged = not math.isfinite(value) or spike
        if diverged:
            report.recoveries += 1
            if report.recoveries > config.max_recoveries:
                raise DivergenceError(
                    f"the loss diverged {report.recoveries} times (last value {value!r}) even after halving the "
                    f"learning rate; try a smaller --learning-rate or a different --seed"
                )
            lr_scale *= 0.5
            _restore(parameters, good_state)
            optimiser = new_optimiser(config.learning_rate * lr_scale)
            logger.warning("loss diverged at step %d (%r): undone, learning rate halved", step, value)
            just_restored = True
            continue
        just_restored = False
        if optimiser is not None:
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 10.0)
            optimiser.step()
        recent = (recent + [value])[-50:]
        if step % 25 == 0 and _all_finite(parameters):
            good_state = _snapshot(parameters)
        logged = {name: float(term.detach()) for name, term in terms.items()}
        logged["total"] = value
        report.history.append(logged)
        step += 1
        if progress is not None:
            progress(step, config.num_steps, logged)
        if config.time_budget is not None and time.perf_counter() - start > config.time_budget:
            report.stopped_by_budget = True
            logger.info("time budget of %.0f s reached after %d steps", config.time_budget, step)
            break

    if not _all_finite(parameters):
        # The last steps left non-finite weights behind a finite loss: go back to the last good ones.
        report.recoveries += 1
        logger.warning("non-finite weights after the last step: the last good weights are restored")
        _restore(parameters, good_state)
    report.steps = step
    report.seconds = time.perf_counter() - start
    if report.history:
        last = report.history[-min(10, len(report.history)) :]
        keys = dict.fromkeys(key for entry in last for key in entry)  # a term may come and go
        report.final_losses = {key: sum(h[key] for h in last if key in h) / sum(key in h for h in last) for key in keys}
    return report


def _snapshot(parameters: list[Tensor]) -> list[Tensor]:
    return [p.detach().clone() for p in parameters]


def _all_finite(parameters: list[Tensor]) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in parameters)


@torch.no_grad()
def _restore(parameters: list[Tensor], saved: list[Tensor]) -> None:
    for parameter, value in zip(parameters, saved):
        parameter.copy_(value)
