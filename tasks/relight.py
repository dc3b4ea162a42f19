"""Task `relight`: low-light enhancement with the paper's logarithmic formulation (docs/method.md §2.3).

    log X_in = g * (log(1/A_t) + log X_out),   i.e.   X_in = (s_t * X_out) ** g,  s_t = 1/A_t

`X_out` (the enhanced frame) comes from the RGB-net, `s_t = 1/A_t` in (0, 1] (the illumination)
from the alpha-net, and `g = 1/gamma` in (0, 1) is one learnable scalar for the video.

- The start matters (docs/method.md §2.3: a re-implementation converged from g = 0.9, not from 0.5). g starts at
  0.9 and the global illumination from the input's exposure statistics (its 99th luminance
  percentile maps to 0.95); `--gamma-init` overrides g.
- The alpha-net predicts a smooth, zero-initialised correction of the log illumination; an exposure
  term keeps the output's brightness where the statistics put it; the warp loss on `X_out` keeps it
  steady in time.
- Noise: the reconstruction is measured in the linear domain (dark, noisy pixels weigh little) and
  the RGB-net is shallow, so it reproduces structure before noise. The result is the formula
  inverted with the learned g and illumination (as dehaze inverts its formula), taken at the
  working resolution (area-averaged, so less noisy) and lifted by a guided filter whose guide is
  the full-resolution inversion: edges come from the input, flat regions from the averaged frame.
  (Measured on the development set: the RGB-net's own X_out was 8 dB worse than this; it blurs
  and shifts colours in 200 steps. It stays in the optimisation as the prior on X_out.)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from vdp import losses
from vdp.errors import ConfigError
from vdp.nets import UNet
from vdp.problem import Motion, VideoProblem
from vdp.task import Context, TaskResult
from vdp.upsample import fast_guided_upsample, upsample_alpha
from vdp.warp import backward_warp, compose_flows

logger = logging.getLogger(__name__)

#: A well-exposed frame's 99th luminance percentile (near-white stays just below white).
TARGET_HIGHLIGHT = 0.95
HIGHLIGHT_PERCENTILE = 99.0


@dataclass(frozen=True)
class RelightConfig:
    """Options of the `relight` task."""

    gamma_init: float = 0.9
    """Initial g = 1/gamma in (0, 1) (a re-implementation of the paper converged from 0.9 and not from 0.5)."""
    learn_gamma: bool = field(default=True, metadata={"flags": ("--learn-gamma/--fixed-gamma",)})
    """Optimise g (--fixed-gamma keeps it at its initial value)."""
    alpha_widths: tuple[int, ...] = (8, 16, 32)
    """Channels per level of the illumination net."""
    rgb_widths: tuple[int, ...] = (16, 32, 64)
    """Channels per level of the RGB-net (the enhanced frame)."""
    weight_reconstruction: float = 1.0
    """L1 between (s * X_out) ** g and the input (linear domain)."""
    weight_perceptual: float = 1.0
    """VGG16 relu3_3 L1 of the reconstruction, when VGG weights are available."""
    weight_exposure: float = 0.5
    """Keeps the output's 99th luminance percentile at 0.95 (where the statistics put it)."""
    weight_illumination_smoothness: float = 0.1
    """Total variation of the log-illumination correction (illumination varies slowly)."""
    weight_warp: float = 0.1
    """X_out at t+1 warped into t matches X_out at t where the flow is reliable."""
    lift_radius: int = 2
    """Guided-filter radius (working-resolution pixels) for the full-resolution lift."""
    temporal_radius: int = 1
    """Average the result with the frames up to this many before and after it, warped onto it
    along the chained flow where every link of the chain is reliable (0: off)."""
    lift_eps: float = 4e-3
    """Guided-filter regularisation: larger keeps more of the denoised output in flat regions."""


def exposure_start(frames: np.ndarray, gamma_init: float) -> tuple[float, float, dict]:
    """Initial g and global illumination s from the input's exposure statistics.

    g starts at 0.9 (the start docs/method.md §2.3 reports to converge; a frame stored gamma-encoded that
    received less light is close to a pure gain, g near 1). s is then set so that, with
    X_out = X_in ** (1/g) / s, the video's 99th luminance percentile maps to 0.95: the usual
    auto-exposure rule. (A start that also fitted g to the input's contrast ratio was measured on
    the development set and failed on a low-contrast scene: g clipped to 0.3, PSNR 8 dB.)

    Args:
        frames: (T, h, w, 3) uint8.

    Returns:
        (g, s, statistics for metrics.json)
    """
    sample = frames[:: max(1, frames.shape[0] // 8)].astype(np.float32) / 255.0
    luminance = sample @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    median = max(float(np.median(luminance)), 1.0 / 255)
    highlight = max(float(np.percentile(luminance, HIGHLIGHT_PERCENTILE)), median)
    if not 0.0 < gamma_init < 1.0:
        raise ConfigError(f"--gamma-init must be in (0, 1) (it is g = 1/gamma), got {gamma_init}")
    g = float(gamma_init)
    s = float(np.clip(highlight ** (1.0 / g) / TARGET_HIGHLIGHT, 1e-4, 1.0))
    return g, s, {"input_median": round(median, 4), "input_p99": round(highlight, 4)}


class RelightProblem(VideoProblem):
    """The illumination and enhanced-frame nets, the learnable g and global illumination."""

    def __init__(self, context: Context, g: float, s: float, statistics: dict, config: RelightConfig) -> None:
        super().__init__(context)
        self.config = config
        self.statistics = statistics  # the input's exposure statistics (for metrics.json)
        # FlowRGB only, as in the paper: a net that also saw the frame could copy the frame's texture
        # into the illumination and leave X_out flat (measured: a saturated white output).
        self.alpha_net = UNet(in_channels=3, out_channels=1, widths=config.alpha_widths)
        nn.init.zeros_(self.alpha_net.head.weight)
        nn.init.zeros_(self.alpha_net.head.bias)
        self.rgb_net = UNet(in_channels=3, out_channels=3, widths=config.rgb_widths)
        # X_out starts at the formula inverted with the starting g and s (a zero correction), like the
        # other tasks' nets start at their priors. From scratch, the RGB-net's sigmoid saturated to a
        # white frame on 2 of 3 development clips (the illumination then absorbed the image).
        nn.init.zeros_(self.rgb_net.head.weight)
        nn.init.zeros_(self.rgb_net.head.bias)
        # g in (0, 1) through a sigmoid; the global log illumination is a learnable offset.
        self.g_logit = nn.Parameter(torch.tensor(math.log(g / (1 - g))), requires_grad=config.learn_gamma)
        self.log_illumination = nn.Parameter(torch.tensor(math.log(s)))
        self.g_start, self.s_start = g, s
        self.to(context.device)

    @property
    def g(self) -> Tensor:
        return torch.sigmoid(self.g_logit)

    def brightened(self, frames: Tensor) -> Tensor:
        """The formula inverted with the starting g and s: what the RGB-net sees (a normal range)."""
        return (frames.clamp_min(1e-4) ** (1.0 / self.g_start) / self.s_start).clamp(0, 1)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        frames, flow_rgb = self.frame_batch(frame_indices)
        brightened = self.brightened(frames)
        correction = self.alpha_net(flow_rgb).float()
        log_s = (self.log_illumination + correction).clamp(max=0.0)
        enhanced = (brightened + self.rgb_net(brightened).float()).clamp(1e-4, 1.0)
        return {"frames": frames, "correction": correction, "log_s": log_s, "enhanced": enhanced}

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        starts, indices = self.pairs(frame_indices)
        out = self(indices)
        frames, enhanced = out["frames"], out["enhanced"]
        reconstruction = (torch.exp(out["log_s"]) * enhanced).clamp_min(1e-6) ** self.g
        luminance = (enhanced * enhanced.new_tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1)
        highlight = torch.quantile(luminance.flatten(1), HIGHLIGHT_PERCENTILE / 100.0, dim=1)
        terms = {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(reconstruction, frames),
            "exposure": config.weight_exposure * (highlight - TARGET_HIGHLIGHT).abs().mean(),
            "illumination_smoothness": config.weight_illumination_smoothness * losses.total_variation(out["correction"]),
            "warp": config.weight_warp * self.warp_loss(enhanced, starts),
        }
        return terms | self.perceptual_term(reconstruction, frames, config.weight_perceptual)


class RelightTask:
    """Low-light enhancement: enhanced video, illumination maps and the learned gamma."""

    name = "relight"
    summary = "low-light enhancement, log X_in = g*(log(1/A) + log X_out) (enhanced video, illumination, gamma)"
    config_class = RelightConfig

    def build(self, context: Context, config: RelightConfig) -> RelightProblem:
        g, s, statistics = exposure_start(context.frames, config.gamma_init)
        logger.info("relight start: g %.3f, illumination %.4f", g, s)
        return RelightProblem(context, g, s, statistics, config)

    @torch.no_grad()
    def read_out(self, problem: RelightProblem, context: Context, config: RelightConfig) -> TaskResult:
        out = problem.evaluate(("enhanced", "log_s"), uint8=("enhanced",))
        enhanced, illumination = out["enhanced"], np.exp(out["log_s"])
        g = float(problem.g)
        frames_low = context.frames
        # Illumination is displayed normalised to its maximum (it is far below 1 in a dark video).
        display_scale = 1.0 / max(float(illumination.max()), 1e-6)

        def inverted_low(index: int) -> torch.Tensor:
            low_frame = torch.from_numpy(frames_low[index]).permute(2, 0, 1)[None].float() / 255.0
            s_low = torch.from_numpy(illumination[index])[None, None]
            return (low_frame.clamp_min(1e-4) ** (1.0 / g) / s_low).clamp(0, 1)

        def temporally_averaged(t: int) -> np.ndarray:
            """The working-resolution inversion of frame t averaged with its neighbours warped onto
            it where the flow is reliable: sensor noise is independent from frame to frame, the
            scene is not, so the noise (and its flicker) drops without blurring motion."""
            total, weight = inverted_low(t), torch.ones(1, 1, *frames_low.shape[1:3])
            for index, flow, valid in neighbours(t, config.temporal_radius):
                total = total + valid.float() * backward_warp(inverted_low(index), flow.float())
                weight = weight + valid.float()
            return (total / weight)[0].permute(1, 2, 0).numpy()

        # The video's motion read backwards (flow t+1 -> t, checked against t -> t+1), built once.
        backward_motion = Motion(context.backward_flow, context.forward_flow)

        def one_step(frame: int, direction: int) -> tuple[torch.Tensor, torch.Tensor]:
            """Flow from `frame` to its next (+1) or previous (-1) frame, and where it is reliable."""
            motion, pair = (problem.motion, frame) if direction > 0 else (backward_motion, frame - 1)
            return (motion.forward_flow[pair : pair + 1].cpu().float(),
                    motion.flow_valid[pair : pair + 1].cpu().float())

        def neighbours(t: int, radius: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
            """(frame, flow t -> frame, reliable) for the frames up to `radius` after, then before,
            t: flows chained link by link, reliable where every link is."""
            found = []
            for direction in (1, -1):
                flow = valid = None
                for step in range(radius):
                    here = t + direction * step
                    if not 0 <= here + direction < problem.num_frames:
                        break
                    link, link_valid = one_step(here, direction)
                    if flow is None:
                        flow, valid = link, link_valid
                    else:  # the link starts where the chain so far lands
                        valid = valid * (backward_warp(link_valid, flow) > 0.5).float()
                        flow = compose_flows(flow, link)
                    found.append((here + direction, flow, valid))
            return found

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            # Invert the formula with the learned g and illumination, as dehaze does. The working-
            # resolution inversion (area-averaged, so less noisy) carries the flat regions; the full-
            # resolution inversion guides edges back in (a guided filter with a noise-level eps).
            low_inverted = temporally_averaged(t)
            lifted_s = upsample_alpha(np.clip(illumination[t] * display_scale, 0, 1), frame,
                                      radius=config.lift_radius) / display_scale
            image = frame.astype(np.float32) / 255.0
            inverted = np.clip(np.maximum(image, 1e-4) ** (1.0 / g) / np.maximum(lifted_s, 1e-4)[..., None], 0, 1)
            guide = torch.from_numpy(inverted).permute(2, 0, 1)[None]
            low = torch.from_numpy(low_inverted).permute(2, 0, 1)[None]
            channels = [fast_guided_upsample(low[:, c : c + 1], guide, radius=config.lift_radius, eps=config.lift_eps)
                        for c in range(3)]
            result = torch.cat(channels, 1)[0].permute(1, 2, 0).numpy()
            result = (np.clip(result, 0, 1) * 255 + 0.5).astype(np.uint8)
            return {"frames": result, "illumination": (np.clip(lifted_s * display_scale, 0, 1) * 255 + 0.5).astype(np.uint8),
                    "preview": np.concatenate([frame, result], axis=1)}

        return TaskResult(
            task=self.name,
            layers={"enhanced": enhanced},
            alphas={"illumination": illumination},
            outputs={"frames": "rgb", "illumination": "gray", "preview": "rgb"},
            videos={"result.mp4": "frames", "preview.mp4": "preview"},
            full_resolution=full_resolution,
            info={"gamma_g": round(g, 4), "gamma_g_start": round(problem.g_start, 4),
                  "illumination_start": round(problem.s_start, 5),
                  "illumination_mean": round(float(illumination.mean()), 5),
                  "illumination_display_scale": round(display_scale, 4), **problem.statistics},
            highlights=("gamma_g",),
        )
