"""What every task's problem shares: the video's tensors, frame pairs, the warp loss, the read-out.

A task subclasses `VideoProblem`, adds its nets and priors, and writes `forward(frame_indices)` and
`losses(frame_indices, *, step, num_steps)`; the optimisation loop (`vdp.optimize`) only needs
`num_frames`, `parameters()` and `losses`. Whatever the task's read-out needs from the run (priors,
estimates, facts for metrics.json) is kept on the problem, not on the task object.

Motion is a `Motion` (flow t -> t+1 and where it is reliable). `VideoProblem.motion` holds the
video's own flow; a task whose layers move differently builds one `Motion` per layer (and may
re-estimate it during the fit) and passes it to `warp_loss`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from vdp import losses
from vdp.perceptual import perceptual_l1
from vdp.task import Context
from vdp.warp import backward_warp, forward_backward_occlusion


class Motion(nn.Module):
    """One motion field over the video: flow t -> t+1 and where a forward-backward check trusts it.

    Buffers (not parameters, not saved): `forward_flow` (T-1, 2, h, w) float32 in working pixels,
    `flow_valid` (T-1, 1, h, w) uint8, 1 where the flow is reliable.

    Args:
        forward_flow, backward_flow: (T-1, h, w, 2) float32 arrays (or (T-1, 2, h, w) tensors), flow
            t -> t+1 and t+1 -> t.
    """

    def __init__(self, forward_flow: np.ndarray | Tensor, backward_flow: np.ndarray | Tensor) -> None:
        super().__init__()
        self.register_buffer("forward_flow", torch.empty(0), persistent=False)
        self.register_buffer("flow_valid", torch.empty(0, dtype=torch.uint8), persistent=False)
        self.update(forward_flow, backward_flow)

    @torch.no_grad()
    def update(self, forward_flow: np.ndarray | Tensor, backward_flow: np.ndarray | Tensor) -> None:
        """Replace the flow (e.g. re-estimated on a layer during the fit), on the current device."""
        forward, backward = _as_flow_tensor(forward_flow), _as_flow_tensor(backward_flow)
        occluded = torch.cat([forward_backward_occlusion(f[None], b[None]) for f, b in zip(forward, backward)])
        device = self.forward_flow.device
        self.forward_flow = forward.to(device)
        self.flow_valid = (occluded < 0.5).to(torch.uint8).to(device)

    def warp_loss(self, layer: Tensor, starts: Tensor) -> Tensor:
        """L1 between a layer at t and the layer at t+1 warped back into t, where the flow is reliable.

        Args:
            layer: (2B, C, h, w) for the indices `VideoProblem.pairs` returned (frames t first, then t+1).
            starts: (B,) the frames t.
        """
        batch = starts.shape[0]
        warped = backward_warp(layer[batch:], self.forward_flow[starts])
        return losses.temporal_warp_l1(layer[:batch], warped, self.flow_valid[starts].float())


def _as_flow_tensor(flow: np.ndarray | Tensor) -> Tensor:
    """(N, h, w, 2) array -> (N, 2, h, w) float32 tensor; tensors are taken as (N, 2, h, w) already."""
    if isinstance(flow, np.ndarray):
        return torch.from_numpy(flow).permute(0, 3, 1, 2).float()
    return flow.float()


class VideoProblem(nn.Module):
    """Base of a task's problem: frames, FlowRGB and the video's motion as compact buffers.

    Buffers (not parameters, not saved): `frames` and `flow_rgb` (T, 3, h, w) uint8; `motion` is
    the video's own flow (a `Motion`). Call `self.to(context.device)` at the end of a subclass's
    `__init__`, once its own modules exist.
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self.num_frames = context.num_frames
        self.perceptual = context.perceptual
        self.register_buffer("frames", torch.from_numpy(context.frames).permute(0, 3, 1, 2).contiguous(), persistent=False)
        self.register_buffer("flow_rgb", torch.from_numpy(context.flow_rgb).permute(0, 3, 1, 2).contiguous(), persistent=False)
        self.motion = Motion(context.forward_flow, context.backward_flow)

    def frame_batch(self, frame_indices: Tensor) -> tuple[Tensor, Tensor]:
        """(frames, FlowRGB) as (B, 3, h, w) float in [0, 1]."""
        return self.frames[frame_indices].float() / 255.0, self.flow_rgb[frame_indices].float() / 255.0

    def pairs(self, frame_indices: Tensor) -> tuple[Tensor, Tensor]:
        """Each sampled frame t with its successor, so the warp loss has a pair to compare.

        Returns:
            (starts (B,), indices (2B,) = starts then starts + 1), on the problem's device.
        """
        starts = frame_indices.clamp(max=self.num_frames - 2).to(self.frames.device)
        return starts, torch.cat([starts, starts + 1])

    def warp_loss(self, layer: Tensor, starts: Tensor, motion: Motion | None = None) -> Tensor:
        """L1 between a layer at t and the layer at t+1 warped back into t along `motion` (default:
        the video's flow), where that flow is reliable. See `Motion.warp_loss` for the shapes."""
        return (motion or self.motion).warp_loss(layer, starts)

    def perceptual_term(self, prediction: Tensor, target: Tensor, weight: float) -> dict[str, Tensor]:
        """{'perceptual': weighted VGG L1} when VGG weights were available, else {} (the term is off)."""
        if self.perceptual is None or weight <= 0:
            return {}
        return {"perceptual": weight * perceptual_l1(self.perceptual, prediction, target)}

    @torch.no_grad()
    def evaluate(self, names: tuple[str, ...], *, uint8: tuple[str, ...] = (), chunk: int = 8) -> dict[str, np.ndarray]:
        """Run `forward` over every frame and gather outputs as float32 arrays (uint8 for the
        outputs named in `uint8`, values in [0, 1] scaled to 0-255).

        Single-channel outputs come back as (T, h, w), others as (T, h, w, C). Each output is
        filled in place, chunk by chunk: a long video costs one array per output, no more.
        """
        self.eval()
        gathered: dict[str, np.ndarray] = {}
        for start in range(0, self.num_frames, chunk):
            stop = min(start + chunk, self.num_frames)
            out = self(torch.arange(start, stop, device=self.frames.device))
            for name in names:
                value = out[name].float()
                value = (value[:, 0] if value.shape[1] == 1 else value.permute(0, 2, 3, 1)).cpu().numpy()
                if name in uint8:
                    value = to_uint8(value)
                if name not in gathered:
                    gathered[name] = np.empty((self.num_frames, *value.shape[1:]), value.dtype)
                gathered[name][start:stop] = value
        return gathered


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] -> uint8 (rounded, clipped), scaling `values` in place to save a copy."""
    np.multiply(values, 255.0, out=values)
    values += 0.5
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)
