"""Task `dehaze`: `I_t = t_t * J_t + (1 - t_t) * A` (docs/method.md §2.2).

- `t` (transmission) from the alpha-net, a correction of a prior transmission (He et al.'s
  dark-channel estimate, its upper envelope smoothed in space and over the video); `A` (airlight)
  estimated once per video from the haziest pixels (or `--airlight r,g,b`) and refined by the fit.
- `J` (the clear layer) is solved, not predicted (`vdp.fusion.SpaceTimeLayer`, docs/method.md
  §2.6): each frame's own inversion, trusted as t^2, fused with the frames that saw the same
  surface through other haze. t and A are fitted so that t * J + (1 - t) * A rebuilds the input.
- Full resolution: t is lifted with the guided filter (edge-aware); each frame is inverted on the
  full-resolution frame with a floor on t and averaged with its neighbours' inversions along the
  solve's links, weighted by t^2, so the result keeps the input's detail without its flicker.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from vdp import losses
from vdp.cues.haze import dark_channel_transmission, estimate_airlight, patch_size_for
from vdp.errors import ConfigError
from vdp.fusion import SpaceTimeLayer
from vdp.nets import UNet
from vdp.problem import Motion, VideoProblem
from vdp.task import Context, TaskResult
from vdp.upsample import upsample_alpha

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class DehazeConfig:
    """Options of the `dehaze` task."""

    airlight: tuple[float, float, float] | None = None
    """Airlight (r, g, b) in [0, 1]; None estimates it once for the video (then refined by the fit)."""
    refine_airlight: bool = field(default=True, metadata={"flags": ("--refine-airlight/--fixed-airlight",)})
    """Let the fit refine the airlight (an estimated one; a given --airlight is kept as given)."""
    alpha_input: Literal["frame", "flow", "both"] = "both"
    """What the transmission net sees: 'frame', 'flow' (FlowRGB, as in the paper) or 'both'."""
    transmission_floor: float = 0.1
    """Lower bound on t when the formula is inverted (avoids amplifying noise where haze is dense)."""
    alpha_widths: tuple[int, ...] = (8, 16, 32)
    """Channels per level of the transmission net."""
    weight_reconstruction: float = 1.0
    """L1 between t * J + (1 - t) * A, with J the solved clear layer, and the input."""
    weight_prior: float = 0.5
    """L1 pull of t towards the smoothed dark-channel transmission."""
    weight_smoothness: float = 0.05
    """Edge-aware total variation of t (depth, hence t, changes at image edges only)."""
    temporal_range: int = 3
    """Frames on each side whose flow-aligned inversions the space-time solve of J fuses with each
    frame, weighted by how clearly each saw the surface (t^2); 0: each frame alone."""
    temporal_sweeps: int = 2
    """Passes of the space-time solve over the video during the fit."""
    temporal_coupling: float = 0.5
    """Weight of each neighbour in the solve against a frame's own estimate (whose weight is t^2)."""
    fusion_tolerance: float = 0.05
    """A neighbour carried onto a frame counts less as its local mean departs from the frame's own
    by more than this (exp(-(d/tolerance)^2); 0: trust every reliable flow chain)."""
    prior_omega: float = 0.95
    """He et al.'s omega: the fraction of haze the prior removes."""
    prior_envelope: int = 4
    """Width of the upper-envelope window of the prior, in dark-channel patches."""
    lift_radius: int = 4
    """Guided-filter radius (working-resolution pixels) when lifting t to full resolution."""

    def __post_init__(self) -> None:
        for flag, value in (("--temporal-range", self.temporal_range), ("--temporal-sweeps", self.temporal_sweeps)):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 or more (0 turns the space-time solve off), got {value}")


def smoothed_prior_transmission(frames: np.ndarray, airlight: np.ndarray, omega: float, envelope: int = 4) -> np.ndarray:
    """Dark-channel transmission per frame: upper envelope, smoothed in space and over three frames.

    Args:
        frames: (T, h, w, 3) uint8.

    Returns:
        (T, h, w) float32 in [0.05, 1].
    """
    height, width = frames.shape[1:3]
    patch = patch_size_for(height, width)
    maps = np.empty(frames.shape[:3], np.float32)
    for index, frame in enumerate(frames):
        image = frame.astype(np.float32) / 255.0
        raw = dark_channel_transmission(image, airlight, omega=omega, patch=patch)
        # The dark channel of a clear image is >= 0, so He et al.'s t is a lower bound of the true
        # t; it dips under every bright object (which then gets over-dehazed). Transmission follows
        # depth and is smooth, so take the upper envelope over a wide window, then smooth it.
        window = envelope * patch | 1
        envelope_map = cv2.dilate(raw, cv2.getStructuringElement(cv2.MORPH_RECT, (window, window)))
        maps[index] = cv2.GaussianBlur(envelope_map, (0, 0), sigmaX=window / 2)
    if maps.shape[0] > 2:
        maps[1:-1] = (maps[:-2] + maps[1:-1] + maps[2:]) / 3.0
    return np.clip(maps, 0.05, 1.0)


class DehazeProblem(VideoProblem):
    """The transmission net, the prior transmission, the video's airlight and the solved clear layer.

    J is solved, not predicted (`vdp.fusion.SpaceTimeLayer`): each frame's own estimate is the
    formula inverted with the current t and A, trusted as t^2 (the inversion divides noise by t),
    and the solve fuses it with the frames that saw the same surface, through thinner or thicker
    haze. t (the net's correction of the prior) and A are then fitted so that t * J + (1 - t) * A
    reconstructs the input: where the neighbours saw a surface more clearly than this frame did,
    t moves to agree with them.
    """

    def __init__(self, context: Context, airlight: np.ndarray, airlight_source: str, prior: np.ndarray,
                 config: DehazeConfig) -> None:
        super().__init__(context)
        self.config = config
        self.airlight_source = airlight_source  # 'given' or how it was estimated (for metrics.json)
        channels = {"frame": 3, "flow": 3, "both": 6}[config.alpha_input]
        self.alpha_net = UNet(in_channels=channels + 1, out_channels=1, widths=config.alpha_widths)
        nn.init.zeros_(self.alpha_net.head.weight)
        nn.init.zeros_(self.alpha_net.head.bias)
        self.register_buffer("prior", torch.from_numpy(prior)[:, None].contiguous(), persistent=False)
        refine = config.refine_airlight and config.airlight is None
        self.airlight_start = airlight
        # A itself (not a logit): Adam moves it by about the learning rate per step, in airlight units.
        self.airlight_value = nn.Parameter(torch.from_numpy(airlight).view(1, 3, 1, 1).clone(), requires_grad=refine)
        frames = self.frames.float() / 255.0
        start_t = self.prior.float()
        estimate, confidence = invert_haze(frames, start_t, torch.from_numpy(airlight).view(1, 3, 1, 1), config.transmission_floor)
        self.layer = SpaceTimeLayer(estimate, confidence, forward=self.motion,
                                    backward=Motion(context.backward_flow, context.forward_flow),
                                    temporal_range=config.temporal_range, sweeps=config.temporal_sweeps,
                                    tolerance=config.fusion_tolerance, coupling=config.temporal_coupling)
        self.to(context.device)

    @property
    def airlight(self) -> Tensor:
        return self.airlight_value.clamp(0.05, 1.0)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        frames, flow_rgb = self.frame_batch(frame_indices)
        prior = self.prior[frame_indices].float()
        inputs = {"frame": [frames], "flow": [flow_rgb]}
        inputs["both"] = inputs["frame"] + inputs["flow"]
        correction = self.alpha_net(torch.cat(inputs[self.config.alpha_input] + [prior], dim=1))
        transmission = torch.sigmoid(torch.logit(prior.clamp(0.02, 0.98)) + correction.float())
        return {"frames": frames, "prior": prior, "transmission": transmission,
                "clear": self.layer.value[frame_indices].float()}

    @torch.no_grad()
    def refresh(self, frame: int) -> None:
        """The frame's own estimate and confidence with the current t and A, before the solve updates it."""
        out = self(torch.tensor([frame], device=self.frames.device))
        estimate, confidence = invert_haze(out["frames"], out["transmission"], self.airlight, self.config.transmission_floor)
        self.layer.estimate[frame : frame + 1] = estimate.half()
        self.layer.confidence[frame : frame + 1] = confidence.half()

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        self.layer.advance(step, num_steps, refresh=self.refresh)
        out = self(frame_indices.to(self.frames.device))
        frames, t, clear = out["frames"], out["transmission"], out["clear"]
        hazy = t * clear + (1 - t) * self.airlight
        return {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(hazy, frames),
            "prior": config.weight_prior * losses.masked_l1(t, out["prior"]),
            "smoothness": config.weight_smoothness * losses.total_variation(t, frames),
        }


def invert_haze(frames: Tensor, transmission: Tensor, airlight: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    """J = (I - A) / max(t, floor) + A, clipped to [0, 1], and its confidence t^2 (the inversion
    divides the frame's noise by t, so its variance grows as 1/t^2)."""
    t = transmission.clamp_min(max(floor, 1e-3))
    return ((frames - airlight) / t + airlight).clamp(0, 1), t**2


class DehazeTask:
    """Haze removal: clear video, transmission maps and the video's airlight."""

    name = "dehaze"
    summary = "haze removal, I = t*J + (1-t)*A (clear video, transmission, airlight)"
    config_class = DehazeConfig

    def build(self, context: Context, config: DehazeConfig) -> DehazeProblem:
        if config.airlight is not None:
            airlight = np.asarray(config.airlight, np.float32)
            if airlight.shape != (3,) or not np.all((airlight > 0) & (airlight <= 1)):
                raise ConfigError(f"--airlight needs three values in (0, 1] as r,g,b, got {config.airlight!r}")
            source = "given"
        else:
            airlight = estimate_airlight(context.frames)
            source = "estimated (dark-channel top 0.1%, pooled over the video)"
        logger.info("airlight %s: %s", source, np.round(airlight, 3).tolist())
        prior = smoothed_prior_transmission(context.frames, airlight, config.prior_omega, config.prior_envelope)
        return DehazeProblem(context, airlight, source, prior, config)

    @torch.no_grad()
    def read_out(self, problem: DehazeProblem, context: Context, config: DehazeConfig) -> TaskResult:
        out = problem.evaluate(("transmission",))
        transmission = out["transmission"]
        clear = problem.layer.value.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        clear = (clear * 255 + 0.5).astype(np.uint8)
        airlight = problem.airlight.view(3).cpu().numpy()
        floor = max(config.transmission_floor, 1e-3)

        cache_size = 2 * config.temporal_range + 8  # a frame's neighbours and the writer's frames in flight

        @functools.lru_cache(maxsize=cache_size)
        def lifted_transmission(index: int) -> np.ndarray:
            return upsample_alpha(transmission[index], np.asarray(context.full_frames[index]), radius=config.lift_radius, eps=1e-3)

        @functools.lru_cache(maxsize=cache_size)
        def inversion(index: int) -> tuple[Tensor, Tensor]:
            """Frame `index` inverted at full resolution with its lifted transmission, and t^2."""
            image = torch.from_numpy(np.asarray(context.full_frames[index])).permute(2, 0, 1)[None].float() / 255.0
            t = torch.from_numpy(lifted_transmission(index))[None, None]
            return invert_haze(image, t, torch.from_numpy(airlight).view(1, 3, 1, 1), floor)

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            # The frame inverted at full resolution (all of the input's detail), averaged with its
            # neighbours' inversions along the solve's links, each weighted by t^2: noise and flicker
            # average out, and where this frame's haze is dense the frames that saw the surface more
            # clearly count more. (Lifting the working-resolution solve instead, guided by this,
            # measured lower SSIM on the development set: 0.929 against 0.934.)
            if context.full_frames is not None:
                lifted = lifted_transmission(t)
                result = problem.layer.fused_full_resolution(t, inversion)
            else:  # no video to take neighbours from: the frame alone
                lifted = upsample_alpha(transmission[t], frame, radius=config.lift_radius, eps=1e-3)
                image = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
                result, _ = invert_haze(image, torch.from_numpy(lifted)[None, None],
                                        torch.from_numpy(airlight).view(1, 3, 1, 1), floor)
            result = (result[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
            return {"frames": result, "transmission": (lifted * 255 + 0.5).astype(np.uint8),
                    "preview": np.concatenate([frame, result], axis=1)}

        return TaskResult(
            task=self.name,
            layers={"clear": clear},
            alphas={"transmission": transmission},
            outputs={"frames": "rgb", "transmission": "gray", "preview": "rgb"},
            videos={"result.mp4": "frames", "preview.mp4": "preview"},
            full_resolution=full_resolution,
            info={"airlight": [round(float(v), 4) for v in airlight], "airlight_source": problem.airlight_source,
                  "airlight_start": [round(float(v), 4) for v in problem.airlight_start],
                  "alpha_input": config.alpha_input, "space_time_solve": problem.layer.solved,
                  "mean_transmission": round(float(transmission.mean()), 4)},
            highlights=("airlight",),
        )
