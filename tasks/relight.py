"""Task `relight`: low-light enhancement with the paper's logarithmic formulation (docs/method.md §2.3).

    log X_in = g * (log(1/A_t) + log X_out),   i.e.   X_in = (s_t * X_out) ** g,  s_t = 1/A_t

`s_t` in (0, 1] (the illumination) is a global learnable offset plus the alpha-net's correction
over FlowRGB; `g` > 0 is one learnable exponent for the video, parametrised by its logarithm, so
curves above and below 1 are both representable (a synthetic `gain * J ** gamma` is g = gamma).

- X_out is solved, not predicted (`vdp.fusion.SpaceTimeLayer`, docs/method.md §2.6): each frame's
  own estimate is the formula inverted with the current g and illumination, fused with its
  flow-aligned neighbours (sensor noise is drawn afresh every frame; the scene is not).
- g cannot be told from the video (any g reconstructs it exactly with a matching X_out); it starts
  where an exposure prior puts it (`estimate_gamma`) and the losses keep it there; the global
  illumination starts at the auto-exposure rule (99th luminance percentile to 0.95).
- The result: each frame inverted at full resolution and averaged with its neighbours' along the
  solve's links guides the working-resolution solve back to full size (a guided filter with a
  noise-level eps): edges from the frames, flat regions from the solve.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from vdp import losses
from vdp.errors import ConfigError
from vdp.fusion import SpaceTimeLayer
from vdp.nets import UNet
from vdp.problem import Motion, VideoProblem
from vdp.task import Context, TaskResult
from vdp.upsample import fast_guided_upsample, upsample_alpha

logger = logging.getLogger(__name__)

#: A well-exposed frame's 99th luminance percentile (near-white stays just below white).
TARGET_HIGHLIGHT = 0.95
HIGHLIGHT_PERCENTILE = 99.0


@dataclass(frozen=True)
class RelightConfig:
    """Options of the `relight` task."""

    gamma_init: float | None = None
    """Initial g, the exponent of the formula (any value > 0: the darkening curve's gamma); by
    default it is estimated from the input's exposure statistics (an exposure prior)."""
    learn_gamma: bool = field(default=True, metadata={"flags": ("--learn-gamma/--fixed-gamma",)})
    """Optimise g (--fixed-gamma keeps it at its initial value)."""
    alpha_widths: tuple[int, ...] = (8, 16, 32)
    """Channels per level of the illumination net."""
    weight_reconstruction: float = 1.0
    """L1 between (s * X_out) ** g and the input (linear domain)."""
    weight_exposure: float = 0.5
    """Keeps the output's 99th luminance percentile at 0.95 (where the statistics put it)."""
    weight_illumination_smoothness: float = 0.1
    """Total variation of the log-illumination correction (illumination varies slowly)."""
    temporal_range: int = 3
    """Frames on each side whose flow-aligned inversions the space-time solve of X_out fuses with
    each frame (0: each frame alone)."""
    temporal_sweeps: int = 2
    """Passes of the space-time solve over the video during the fit."""
    fusion_tolerance: float = 0.05
    """A neighbour carried onto a frame counts less as its local mean departs from the frame's own
    by more than this (exp(-(d/tolerance)^2); 0: trust every reliable flow chain)."""
    lift_radius: int = 2
    """Guided-filter radius (working-resolution pixels) for the full-resolution lift."""
    lift_eps: float = 4e-3
    """Guided-filter regularisation: larger keeps more of the working-resolution solve in flat
    regions (less noise, less detail)."""

    def __post_init__(self) -> None:
        if self.gamma_init is not None and not self.gamma_init > 0:
            raise ConfigError(f"--gamma-init must be > 0 (the exponent g of X_in = (s * X_out) ** g), got {self.gamma_init}")
        for flag, value in (("--temporal-range", self.temporal_range), ("--temporal-sweeps", self.temporal_sweeps)):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 or more (0 turns the space-time solve off), got {value}")


#: Middle grey of a well-exposed frame: 18% reflectance in display values (0.18 ** (1/2.2)).
TARGET_MEDIAN = 0.46
#: How far the estimated exponent is trusted, in log terms, against a pure gain (g = 1).
GAMMA_TRUST = 0.75


def estimate_gamma(luminance: np.ndarray) -> float:
    """The darkening curve's exponent g as an exposure prior sees it.

    Which g darkened a video cannot be read from the video: for any g' the pair
    X' = X ** (g / g'), s' = s ** (g / g') reconstructs the input exactly and is as steady in time.
    Only a prior on what a well-exposed frame looks like can choose. This one asks that the median
    and the 99th percentile of the output's luminance land at middle grey (0.46) and 0.95, which
    gives g = log(p99 / p50) / log(0.95 / 0.46) on the input's luminance (the percentiles of a
    power curve are the curve of the percentiles), and trusts it as g ** 0.75 (shrunk towards a pure
    gain in log terms): a low-contrast scene reads as a low g, a high-contrast one as a high g
    (docs/method.md §2.3; chosen on development sets, docs/benchmarks.md).

    Args:
        luminance: input luminance values in [0, 1] (any shape).
    """
    median = max(float(np.median(luminance)), 1.0 / 255)
    highlight = max(float(np.percentile(luminance, HIGHLIGHT_PERCENTILE)), median * 1.01)
    raw = math.log(highlight / median) / math.log(TARGET_HIGHLIGHT / TARGET_MEDIAN)
    return float(np.clip(raw**GAMMA_TRUST, 0.3, 5.0))


def exposure_start(frames: np.ndarray, gamma_init: float | None) -> tuple[float, float, dict]:
    """Initial g and global illumination s from the input's exposure statistics.

    g is `gamma_init`, or `estimate_gamma` when None. s is then set so that, with
    X_out = X_in ** (1/g) / s, the video's 99th luminance percentile maps to 0.95: the usual
    auto-exposure rule.

    Args:
        frames: (T, h, w, 3) uint8.

    Returns:
        (g, s, statistics for metrics.json)
    """
    sample = frames[:: max(1, frames.shape[0] // 8)].astype(np.float32) / 255.0
    luminance = sample @ LUMINANCE
    median = max(float(np.median(luminance)), 1.0 / 255)
    highlight = max(float(np.percentile(luminance, HIGHLIGHT_PERCENTILE)), median)
    g = estimate_gamma(luminance) if gamma_init is None else float(gamma_init)
    s = float(np.clip(highlight ** (1.0 / g) / TARGET_HIGHLIGHT, 1e-4, 1.0))
    return g, s, {"input_median": round(median, 4), "input_p99": round(highlight, 4),
                  "gamma_source": "estimated (exposure prior)" if gamma_init is None else "given"}


LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)


def invert(frames: Tensor, g: Tensor | float, log_s: Tensor) -> Tensor:
    """The formula inverted: X_out = X_in ** (1/g) / s, clipped to [0, 1]."""
    return (frames.clamp_min(1e-4) ** (1.0 / g) * torch.exp(-log_s)).clamp(0, 1)


class RelightProblem(VideoProblem):
    """The illumination net, the learnable g and global illumination, and the solved enhanced layer.

    X_out is solved, not predicted (`vdp.fusion.SpaceTimeLayer`): each frame's own estimate is the
    formula inverted with the current g and illumination, and the solve fuses it with its
    flow-aligned neighbours. g, the global illumination and the illumination net are fitted so that
    (s * X_out) ** g reconstructs the input, with the exposure term fixing the brightness.
    """

    def __init__(self, context: Context, g: float, s: float, statistics: dict, config: RelightConfig) -> None:
        super().__init__(context)
        self.config = config
        self.statistics = statistics  # the input's exposure statistics (for metrics.json)
        # FlowRGB only, as in the paper: a net that also saw the frame could copy the frame's texture
        # into the illumination and leave X_out flat (measured: a saturated white output).
        self.alpha_net = UNet(in_channels=3, out_channels=1, widths=config.alpha_widths)
        nn.init.zeros_(self.alpha_net.head.weight)
        nn.init.zeros_(self.alpha_net.head.bias)
        # g > 0 through its logarithm (any curve, gamma above or below 1); the global log
        # illumination is a learnable offset.
        self.log_g = nn.Parameter(torch.tensor(math.log(g)), requires_grad=config.learn_gamma)
        self.log_illumination = nn.Parameter(torch.tensor(math.log(s)))
        self.g_start, self.s_start = g, s
        frames = self.frames.float() / 255.0
        start = invert(frames, g, torch.tensor(math.log(s)))
        self.layer = SpaceTimeLayer(start, None, forward=self.motion,
                                    backward=Motion(context.backward_flow, context.forward_flow),
                                    temporal_range=config.temporal_range, sweeps=config.temporal_sweeps,
                                    tolerance=config.fusion_tolerance, coupling=1.0)
        self.to(context.device)

    @property
    def g(self) -> Tensor:
        return torch.exp(self.log_g)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        frames, flow_rgb = self.frame_batch(frame_indices)
        correction = self.alpha_net(flow_rgb).float()
        log_s = (self.log_illumination + correction).clamp(max=0.0)
        return {"frames": frames, "correction": correction, "log_s": log_s,
                "estimate": invert(frames, self.g, log_s), "enhanced": self.layer.value[frame_indices].float()}

    @torch.no_grad()
    def refresh(self, frame: int) -> None:
        """The frame's own estimate with the current g and illumination, before the solve updates it."""
        out = self(torch.tensor([frame], device=self.frames.device))
        self.layer.estimate[frame : frame + 1] = out["estimate"].half()

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        self.layer.advance(step, num_steps, refresh=self.refresh)
        out = self(frame_indices.to(self.frames.device))
        frames, enhanced = out["frames"], out["enhanced"]
        reconstruction = (torch.exp(out["log_s"]) * enhanced).clamp_min(1e-6) ** self.g
        luminance = (out["estimate"] * enhanced.new_tensor(LUMINANCE).view(1, 3, 1, 1)).sum(1)
        highlight = torch.quantile(luminance.flatten(1), HIGHLIGHT_PERCENTILE / 100.0, dim=1)
        return {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(reconstruction, frames),
            "exposure": config.weight_exposure * (highlight - TARGET_HIGHLIGHT).abs().mean(),
            "illumination_smoothness": config.weight_illumination_smoothness * losses.total_variation(out["correction"]),
        }


class RelightTask:
    """Low-light enhancement: enhanced video, illumination maps and the learned gamma."""

    name = "relight"
    summary = "low-light enhancement, X_in = (s*X_out)**g (enhanced video, illumination, gamma)"
    config_class = RelightConfig

    def build(self, context: Context, config: RelightConfig) -> RelightProblem:
        g, s, statistics = exposure_start(context.frames, config.gamma_init)
        logger.info("relight start: g %.3f, illumination %.4f", g, s)
        return RelightProblem(context, g, s, statistics, config)

    @torch.no_grad()
    def read_out(self, problem: RelightProblem, context: Context, config: RelightConfig) -> TaskResult:
        out = problem.evaluate(("log_s",))
        illumination = np.exp(out["log_s"])
        enhanced = problem.layer.value.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        enhanced = (enhanced * 255 + 0.5).astype(np.uint8)
        g = float(problem.g)
        # Illumination is displayed normalised to its maximum (it is far below 1 in a dark video).
        display_scale = 1.0 / max(float(illumination.max()), 1e-6)

        cache_size = 2 * config.temporal_range + 8  # a frame's neighbours and the writer's frames in flight

        def lift(index: int, frame: np.ndarray) -> np.ndarray:
            return upsample_alpha(np.clip(illumination[index] * display_scale, 0, 1), frame,
                                  radius=config.lift_radius) / display_scale

        @functools.lru_cache(maxsize=cache_size)
        def lifted_illumination(index: int) -> np.ndarray:
            return lift(index, np.asarray(context.full_frames[index]))

        def inverted(frame: np.ndarray, lifted: np.ndarray) -> Tensor:
            """A frame inverted at full resolution with the learned g and its lifted illumination."""
            image = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
            return invert(image, g, torch.from_numpy(np.log(np.maximum(lifted, 1e-4)))[None, None])

        @functools.lru_cache(maxsize=cache_size)
        def inversion(index: int) -> tuple[Tensor, Tensor]:
            frame = np.asarray(context.full_frames[index])
            return inverted(frame, lifted_illumination(index)), torch.ones(1, 1, *frame.shape[:2])

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            # The full-resolution inversion, fused with the neighbours' along the solve's links,
            # guides the working-resolution solve back to full size: edges from the frames, flat
            # regions from the solve (a guided filter with a noise-level eps).
            if context.full_frames is not None:
                lifted = lifted_illumination(t)
                guide = problem.layer.fused_full_resolution(t, inversion)
            else:  # no video to take neighbours from: the frame alone
                lifted = lift(t, frame)
                guide = inverted(frame, lifted)
            low = problem.layer.value[t : t + 1].float().cpu()
            channels = [fast_guided_upsample(low[:, c : c + 1], guide, radius=config.lift_radius, eps=config.lift_eps)
                        for c in range(3)]
            result = torch.cat(channels, 1)[0].permute(1, 2, 0).numpy()
            result = (np.clip(result, 0, 1) * 255 + 0.5).astype(np.uint8)
            shown = np.clip(lifted * display_scale, 0, 1)
            return {"frames": result, "illumination": (shown * 255 + 0.5).astype(np.uint8),
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
                  "illumination_display_scale": round(display_scale, 4),
                  "space_time_solve": problem.layer.solved, **problem.statistics},
            highlights=("gamma_g",),
        )
