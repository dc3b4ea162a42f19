"""Task `dehaze`: `I_t = t_t * J_t + (1 - t_t) * A` (docs/method.md §2.2).

- `J` (the clear frame) from the RGB-net over the frame; `t` (transmission) from the alpha-net;
  `A` (airlight) estimated once per video from the haziest pixels (or `--airlight r,g,b`).
- The decomposition alone is ambiguous (`t = 1, J = I` reconstructs perfectly). It is anchored
  the way the segment task is: the alpha-net predicts a correction to the logit of a prior
  transmission, here He et al.'s dark-channel estimate smoothed in space and over the video, and
  a dark-channel term on `J` keeps pulling haze out. The nets' limited capacity and the warp loss on
  `J` keep the result smooth and steady in time.
- Full resolution: `t` is lifted with the guided filter (edge-aware) and the formula is inverted on
  the full-resolution frame with a floor on `t`, so the result keeps all the input's detail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vdp import losses
from vdp.errors import ConfigError
from vdp.cues.haze import dark_channel_transmission, estimate_airlight, patch_size_for, remove_haze
from vdp.nets import UNet
from vdp.problem import VideoProblem
from vdp.task import Context, TaskResult
from vdp.upsample import upsample_alpha

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class DehazeConfig:
    """Options of the `dehaze` task."""

    airlight: tuple[float, float, float] | None = None
    """Airlight (r, g, b) in [0, 1]; None estimates it once for the video."""
    alpha_input: Literal["frame", "flow", "both"] = "both"
    """What the transmission net sees: 'frame', 'flow' (FlowRGB, as in the paper) or 'both'."""
    transmission_floor: float = 0.1
    """Lower bound on t when the formula is inverted (avoids amplifying noise where haze is dense)."""
    alpha_widths: tuple[int, ...] = (8, 16, 32)
    """Channels per level of the transmission net."""
    rgb_widths: tuple[int, ...] = (16, 32, 64)
    """Channels per level of the RGB-net (the clear frame J)."""
    weight_reconstruction: float = 1.0
    """L1 between the re-hazed J and the input."""
    weight_perceptual: float = 1.0
    """VGG16 relu3_3 L1 of the reconstruction, when VGG weights are available."""
    weight_prior: float = 0.5
    """L1 pull of t towards the smoothed dark-channel transmission."""
    weight_dark_channel: float = 0.0
    """Mean dark channel of J. Off by default: it pulls t back down to the dark channel's lower
    bound (bright objects over-dehazed), which the envelope prior avoids."""
    weight_smoothness: float = 0.05
    """Edge-aware total variation of t (depth, hence t, changes at image edges only)."""
    weight_warp: float = 0.1
    """J at t+1 warped into t matches J at t where the flow is reliable."""
    prior_omega: float = 0.95
    """He et al.'s omega: the fraction of haze the prior removes."""
    prior_envelope: int = 4
    """Width of the upper-envelope window of the prior, in dark-channel patches."""
    lift_radius: int = 4
    """Guided-filter radius (working-resolution pixels) when lifting t to full resolution."""


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
    """The transmission and clear-frame nets, the prior transmission and the video's airlight."""

    def __init__(self, context: Context, airlight: np.ndarray, airlight_source: str, prior: np.ndarray,
                 config: DehazeConfig) -> None:
        super().__init__(context)
        self.config = config
        self.airlight_source = airlight_source  # 'given' or how it was estimated (for metrics.json)
        channels = {"frame": 3, "flow": 3, "both": 6}[config.alpha_input]
        self.alpha_net = UNet(in_channels=channels + 1, out_channels=1, widths=config.alpha_widths)
        nn.init.zeros_(self.alpha_net.head.weight)
        nn.init.zeros_(self.alpha_net.head.bias)
        self.rgb_net = UNet(in_channels=3, out_channels=3, widths=config.rgb_widths)
        self.register_buffer("prior", torch.from_numpy(prior)[:, None].contiguous(), persistent=False)
        self.register_buffer("airlight", torch.from_numpy(airlight).view(1, 3, 1, 1), persistent=False)
        self.dark_patch = patch_size_for(*context.working_size)
        self.to(context.device)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        frames, flow_rgb = self.frame_batch(frame_indices)
        prior = self.prior[frame_indices].float()
        inputs = {"frame": [frames], "flow": [flow_rgb]}
        inputs["both"] = inputs["frame"] + inputs["flow"]
        correction = self.alpha_net(torch.cat(inputs[self.config.alpha_input] + [prior], dim=1))
        transmission = torch.sigmoid(torch.logit(prior.clamp(0.02, 0.98)) + correction.float())
        clear = torch.sigmoid(self.rgb_net(frames).float())
        return {"frames": frames, "prior": prior, "transmission": transmission, "clear": clear}

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        starts, indices = self.pairs(frame_indices)
        out = self(indices)
        frames, t, clear = out["frames"], out["transmission"], out["clear"]
        hazy = t * clear + (1 - t) * self.airlight
        dark = -F.max_pool2d(-clear.min(dim=1, keepdim=True).values, self.dark_patch, stride=1, padding=self.dark_patch // 2)
        terms = {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(hazy, frames),
            "prior": config.weight_prior * losses.masked_l1(t, out["prior"]),
            "dark_channel": config.weight_dark_channel * dark.mean(),
            "smoothness": config.weight_smoothness * losses.total_variation(t, frames),
            "warp": config.weight_warp * self.warp_loss(clear, starts),
        }
        return terms | self.perceptual_term(hazy, frames, config.weight_perceptual)


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
        out = problem.evaluate(("transmission", "clear"), uint8=("clear",))
        transmission = out["transmission"]
        clear = out["clear"]
        airlight = problem.airlight.view(3).cpu().numpy()

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            lifted = upsample_alpha(transmission[t], frame, radius=config.lift_radius, eps=1e-3)
            image = frame.astype(np.float32) / 255.0
            result = remove_haze(image, lifted, airlight, floor=max(config.transmission_floor, 1e-3))
            result = (result * 255 + 0.5).astype(np.uint8)
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
                  "alpha_input": config.alpha_input,
                  "mean_transmission": round(float(transmission.mean()), 4)},
            highlights=("airlight",),
        )
