"""A clear layer solved over space and time, for the restoration tasks (dehaze, relight).

Each frame has its own estimate of the clear frame, `E_t` (the task's formula inverted on that
frame alone, the prior), and a confidence `c_t` in it (dehaze: `t^2`, since inverting
`I = t J + (1 - t) A` divides the frame's noise by `t`; relight: 1). The same surface is seen in the
neighbouring frames, each with its own noise (sensor noise is drawn afresh every frame) and its own
confidence (the haze in front of a surface changes as the camera moves). The clear layer `C`
minimises

    sum_t  c_t |C_t - E_t|^2  +  coupling * sum_t sum_{0 < |k| <= K}  w_tk |C_t - C_{t+k} o chain_tk|^2

where `chain_tk` is the flow t -> t+k composed link by link and `w_tk` is 1 where every link
passed its forward-backward check, the chain stays inside the frame, and the carried value agrees
with the frame's own (`vdp.propagate.agreement`: a wrong flow or a changed surface is not
averaged in). A Gauss-Seidel update sets one frame to the minimiser with its neighbours fixed:
`C_t = (c_t E_t + coupling sum w C_{t+k}) / (c_t + coupling sum w)`; the fit runs a few passes,
alternating forward and backward, a share per optimisation step, as segment's mask solve does
(docs/method.md §2.6). Noise averages out, flicker with it, and where a frame's own estimate is
weak (dense haze) the frames that saw the surface more clearly carry it.

`SpaceTimeLayer.fused_full_resolution` applies the same weights at full resolution for the read-out:
the neighbours' full-resolution inversions are warped along the lifted chains and averaged with
their confidences. `--steps 0` (no fit) solves nothing: each frame is its own estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from vdp.problem import Motion
from vdp.propagate import agreement, chained_links, lift_links
from vdp.warp import backward_warp


class SpaceTimeLayer(nn.Module):
    """The solved clear layer `C` (T, C, h, w) with each frame's own estimate and confidence.

    Buffers (float16, working resolution, not saved): `estimate`, `confidence` (T, 1, h, w) and
    `value` (the current solution; the estimate until the solve reaches the frame).

    Args:
        estimate: (T, C, h, w) float, each frame's own estimate.
        confidence: (T, 1, h, w) float >= 0, or None for 1 everywhere.
        forward, backward: the video's `Motion` and its reverse (see `vdp.propagate.chained_links`).
        temporal_range: K, the farthest neighbour on each side (0: no solve).
        sweeps: passes over the video during the fit.
        tolerance: `vdp.propagate.agreement`'s tolerance (<= 0: trust every reliable chain).
        coupling: weight of the temporal terms against a frame's own estimate.
    """

    def __init__(self, estimate: Tensor, confidence: Tensor | None, *, forward: Motion, backward: Motion,
                 temporal_range: int, sweeps: int, tolerance: float, coupling: float) -> None:
        super().__init__()
        self.forward_motion, self.backward_motion = forward, backward
        self.temporal_range, self.tolerance, self.coupling = temporal_range, tolerance, coupling
        num_frames = estimate.shape[0]
        self.register_buffer("estimate", estimate.half(), persistent=False)
        self.register_buffer("value", estimate.half().clone(), persistent=False)
        if confidence is None:
            confidence = torch.ones_like(estimate[:, :1])
        self.register_buffer("confidence", confidence.half(), persistent=False)
        frames = list(range(num_frames))
        self.order = [t for sweep in range(sweeps if temporal_range > 0 else 0)
                      for t in (frames if sweep % 2 == 0 else frames[::-1])]
        self.updates = 0

    @torch.no_grad()
    def set_estimate(self, estimate: Tensor, confidence: Tensor | None = None) -> None:
        """Replace the frames' own estimates (the task's parameters moved); the solution is kept."""
        self.estimate.copy_(estimate.half())
        if confidence is not None:
            self.confidence.copy_(confidence.half())

    def links(self, frame: int) -> list[tuple[int, Tensor, Tensor]]:
        """(neighbour, chain flow frame -> neighbour (1, 2, h, w), weight (1, 1, h, w)) for one frame:
        reliable chains times the agreement of the carried solution with the frame's own."""
        device = self.value.device
        own = self.value[frame : frame + 1].float()
        found = []
        for _, target, chain, weight in chained_links(torch.tensor([frame], device=device), forward=self.forward_motion,
                                                   backward=self.backward_motion, max_offset=self.temporal_range):
            carried = backward_warp(self.value[target].float(), chain)
            found.append((int(target[0]), chain, weight * agreement(carried, own, self.tolerance)))
        return found

    @torch.no_grad()
    def update(self, frame: int) -> None:
        """One Gauss-Seidel update: frame `frame` set to the minimiser with its neighbours fixed."""
        own_weight = self.confidence[frame : frame + 1].float()
        total = own_weight * self.estimate[frame : frame + 1].float()
        weight_sum = own_weight.clone()
        for target, chain, weight in self.links(frame):
            weight = self.coupling * weight
            total = total + weight * backward_warp(self.value[target : target + 1].float(), chain)
            weight_sum = weight_sum + weight
        self.value[frame : frame + 1] = (total / weight_sum.clamp_min(1e-6)).half()

    @torch.no_grad()
    def advance(self, step: int, num_steps: int, *, refresh: Callable[[int], None] | None = None) -> None:
        """Run the updates due by the end of optimisation step `step` of `num_steps`; `refresh(frame)`
        (if given) first renews that frame's own estimate from the task's current parameters."""
        due = round(len(self.order) * (step + 1) / max(num_steps, 1))
        for frame in self.order[self.updates : due]:
            if refresh is not None:
                refresh(frame)
            self.update(frame)
        self.updates = max(self.updates, due)

    @property
    def solved(self) -> bool:
        """Whether the solve ran at all (False for `--steps 0` or a temporal range of 0)."""
        return self.updates > 0

    @torch.no_grad()
    def fused_full_resolution(self, frame: int, inversion: Callable[[int], tuple[Tensor, Tensor]]) -> Tensor:
        """The frame's full-resolution inversion averaged with its neighbours' along the solve's links.

        Args:
            frame: the frame t.
            inversion: index -> ((1, C, H, W) full-resolution estimate, (1, 1, H, W) its confidence),
                on the CPU.

        Returns:
            (1, C, H, W): the confidence-weighted mean of the frame's own inversion and the
            neighbours' warped onto it (the frame's own alone when the solve did not run).
        """
        own, own_confidence = inversion(frame)
        total, weight_sum = own_confidence * own, own_confidence.clone()
        if not self.solved:
            return own
        for target, chain, weight in lift_links([(t, c.cpu(), w.cpu()) for t, c, w in self.links(frame)], own.shape[-2:]):
            image, confidence = inversion(target)
            weight = self.coupling * weight * backward_warp(confidence, chain)
            total = total + weight * backward_warp(image, chain)
            weight_sum = weight_sum + weight
        return total / weight_sum.clamp_min(1e-6)
