"""Task `segment`: unsupervised video object segmentation by a two-layer decomposition.

Composition (docs/method.md §2.1): `X_t = M_t * L1_t + (1 - M_t) * L2_t`, with the mask `M` solved
over space and time and the layers `L1` (foreground) and `L2` (background) from the RGB-net.

Why the literal formulation fails, and what this file does instead:
- Reconstruction and layer terms are satisfied by `L1 = L2 = X` with any mask, the paper's
  flow-similarity term rewards an empty layer, and `1/mean|M - 0.5|` is minimal for an all-0 or
  all-1 mask: the mask collapses (measured: J 0 within ~70 steps). Here each frame's mask starts
  from a *prior*: a per-pixel foreground probability from cues the formula itself lacks, motion
  that departs from the camera's (a RANSAC homography per flow field, forward/backward minimum,
  temporal pooling) and, when its model is installed, a salient-object network.
- What one frame's cues cannot know, the other frames can: the fit solves a space-time energy in
  which each frame's mask is pulled towards its prior and towards its neighbours' masks carried
  along the chained flow (`SegmentProblem.solve`). Gradient terms on the mask (an alpha-net
  correcting the prior, with warp, binarisation and composition terms) all cost accuracy against
  the prior alone (docs/method.md §2.1), so the mask is the energy's minimiser, computed directly;
  the composition trains the RGB-net's layers.
- Which layer is the foreground is decided by the read-out: the layer that covers less of the
  frame border (recorded in metrics.json).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from vdp import losses
from vdp.errors import ConfigError
from vdp.cues.motion import camera_motion_residual, motion_saliency
from vdp.nets import UNet
from vdp.problem import Motion, VideoProblem
from vdp.propagate import gather_neighbours
from vdp.task import Context, TaskResult
from vdp.upsample import upsample_alpha

logger = logging.getLogger(__name__)

OVERLAY_COLOUR = np.array([255, 40, 40], np.float32)


@dataclass(frozen=True)
class SegmentConfig:
    """Options of the `segment` task."""

    objectness: Literal["auto", "on", "off"] = "auto"
    """Salient-object cue: 'auto' (use it when its model is installed), 'on' (require it) or 'off'."""
    objectness_model: str | None = None
    """Path to a U2-Net-p .onnx file (default: the one in the `vdp[objectness]` extra)."""
    objectness_weight: float = 2.0
    """Weight of the objectness cue against the motion cue (weight 1) in the prior."""
    temporal_range: int = 8
    """Frames on each side whose masks are carried along the chained flow into a frame's mask."""
    temporal_sweeps: int = 2
    """Passes of the space-time mask solve over the video during the fit (spread over its steps)."""
    rgb_widths: tuple[int, ...] = (8, 16)
    """Channels per level of the RGB-net (it predicts both layers)."""
    weight_reconstruction: float = 1.0
    """L1 between the composition and the input (paper: 1)."""
    weight_perceptual: float = 1.0
    """L1 on VGG16 relu3_3 features of composition vs input (paper: 1), when VGG weights are available."""
    weight_layer: float = 1.0
    """Each layer matches the input where it is visible (paper: 1)."""
    threshold: float = 0.5
    """Alpha above which a pixel is foreground in the binary masks."""
    lift_radius: int = 2
    """Guided-filter radius (working-resolution pixels) when lifting alpha to full resolution."""

    def __post_init__(self) -> None:
        for flag, value in (("--temporal-range", self.temporal_range), ("--temporal-sweeps", self.temporal_sweeps)):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 or more (0 turns the space-time solve off), got {value}")


class SegmentProblem(VideoProblem):
    """The space-time mask, the RGB-net of the layers, and the fit that solves both.

    The mask is solved, not predicted: each frame's mask is the minimiser of a quadratic energy
    whose data term is the frame's own prior (weight 1) and whose coupling terms pull it towards
    the current masks of up to `temporal_range` frames on each side, carried along the chained
    flow wherever every link is reliable (weight 1 each). A Gauss-Seidel update sets one frame to
    that minimiser with its neighbours fixed; the fit runs `temporal_sweeps` passes of such updates
    (alternately forward and backward in time), a slice of frames per step, so evidence travels
    `temporal_range` frames per pass: through an occlusion, across frames where the object stops
    moving, past a frame where the salient-object cue fires on something else. The RGB-net learns
    the two layers by gradient from the composition with the current mask.
    """

    def __init__(self, context: Context, prior: np.ndarray, config: SegmentConfig, cue_info: dict) -> None:
        super().__init__(context)
        self.config = config
        self.cue_info = cue_info  # which cues made the prior, and its time (for metrics.json)
        self.rgb_net = UNet(in_channels=3, out_channels=6, widths=config.rgb_widths)
        self.register_buffer("prior", torch.from_numpy(prior.astype(np.float32))[:, None], persistent=False)
        # The solved mask of every frame (the prior until the solve reaches the frame); half precision
        # is ample for values in [0, 1] and halves the memory of long clips.
        self.register_buffer("mask", self.prior.to(torch.float16), persistent=False)
        self.backward_motion = Motion(context.backward_flow, context.forward_flow)
        frames = list(range(self.num_frames))
        self.solve_order = [t for sweep in range(config.temporal_sweeps) for t in (frames if sweep % 2 == 0 else frames[::-1])]
        self.solved_updates = 0
        self.to(context.device)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        """The mask (B,1,h,w) and the two layers (B,3,h,w) for the given frames."""
        frames, _ = self.frame_batch(frame_indices)
        layers = torch.sigmoid(self.rgb_net(frames))
        return {
            "frames": frames,
            "alpha": self.mask[frame_indices].float(),
            "foreground": layers[:, :3].float(),
            "background": layers[:, 3:].float(),
        }

    @torch.no_grad()
    def solve(self, frames: Tensor) -> None:
        """Gauss-Seidel update of the given frames' masks (neighbours fixed at their current masks)."""
        if self.config.temporal_range == 0:
            return
        # Full precision even inside the loop's bfloat16 autocast (CUDA): composed flows are pixel
        # positions, which bfloat16 would round by a pixel or more at this size.
        with torch.autocast(device_type=self.frames.device.type, enabled=False):
            carried, weight = gather_neighbours(self.mask, frames, forward=self.motion, backward=self.backward_motion,
                                                max_offset=self.config.temporal_range)
        self.mask[frames] = ((self.prior[frames] + carried) / (1.0 + weight)).to(self.mask.dtype)

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        # This step's share of the solve: the updates due by the end of the step, one frame at a time
        # (each sees the frames updated before it, which is what carries evidence along in one pass).
        due = round(len(self.solve_order) * (step + 1) / max(num_steps, 1))
        for frame in self.solve_order[self.solved_updates:due]:
            self.solve(torch.tensor([frame], device=self.frames.device))
        self.solved_updates = max(self.solved_updates, due)
        config = self.config
        out = self(frame_indices.to(self.frames.device))
        frames, alpha = out["frames"], out["alpha"]
        composed = alpha * out["foreground"] + (1 - alpha) * out["background"]
        terms = {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(composed, frames),
            "layer": config.weight_layer
            * (losses.masked_l1(alpha * out["foreground"], alpha * frames)
               + losses.masked_l1((1 - alpha) * out["background"], (1 - alpha) * frames)),
        }
        return terms | self.perceptual_term(composed, frames, config.weight_perceptual)


def border_coverage(alpha: np.ndarray) -> float:
    """Mean opacity on the one-pixel frame border, over all frames.

    Args:
        alpha: (T, h, w) in [0, 1].

    A background layer covers most of the border; an object rarely does. (An earlier rule compared
    border opacity *relative to the layer's area* and called a 1.4%-area object "background" on
    DAVIS kite-surf, because a small layer touching the border once has a large ratio.)
    """
    border = np.concatenate([alpha[:, 0], alpha[:, -1], alpha[:, :, 0], alpha[:, :, -1]], axis=1)
    return float(border.mean())


def lift_layer(layer_low: np.ndarray, frame_low: np.ndarray, frame_high: np.ndarray) -> np.ndarray:
    """Lift a working-resolution layer through the input: full frame + upsampled (layer - frame).

    Args:
        layer_low, frame_low: (h, w, 3) uint8; frame_high: (H, W, 3) uint8.

    Returns:
        (H, W, 3) uint8: the full-resolution detail of the input where the layer equals it.
    """
    height, width = frame_high.shape[:2]
    difference = layer_low.astype(np.float32) - frame_low.astype(np.float32)
    difference = cv2.resize(difference, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(frame_high.astype(np.float32) + difference, 0, 255).astype(np.uint8)


class SegmentTask:
    """Unsupervised video object segmentation: soft alpha, masks, foreground/background layers."""

    name = "segment"
    summary = "unsupervised video object segmentation (alpha, DAVIS masks, RGBA layers)"
    config_class = SegmentConfig
    #: Working resolution: boundaries and thin parts need more pixels than the restoration tasks
    #: (measured, docs/benchmarks.md), and the mask solve leaves time for them.
    max_side = 384

    def build(self, context: Context, config: SegmentConfig) -> SegmentProblem:
        started = time.perf_counter()
        prior, cue_info = self.prior(context, config)
        cue_info["seconds_prior"] = round(time.perf_counter() - started, 3)
        return SegmentProblem(context, prior, config, cue_info)

    def prior(self, context: Context, config: SegmentConfig) -> tuple[np.ndarray, dict]:
        """Per-pixel foreground probability (T, h, w) from motion and, if available, objectness."""
        from vdp.cues import objectness

        residual = camera_motion_residual(context.forward_flow, context.backward_flow)
        motion = motion_saliency(residual)
        info: dict = {"motion_cue": "camera-homography residual"}
        if config.objectness == "off":
            info["objectness"] = "off (--objectness off)"
            return motion, info
        model = objectness.locate_model(config.objectness_model)
        info["objectness"] = model.reason
        if model.path is None:
            if config.objectness == "on":
                raise ConfigError(f"--objectness on, but {model.reason}")
            logger.info("%s; segmenting with the motion cue only", model.reason)
            return motion, info
        logger.info(model.reason)
        salient = objectness.salient_object_maps(context.frames, model.path)
        weight = config.objectness_weight
        return ((weight * salient + motion) / (weight + 1.0)).astype(np.float32), info

    @torch.no_grad()
    def read_out(self, problem: SegmentProblem, context: Context, config: SegmentConfig) -> TaskResult:
        out = problem.evaluate(("alpha", "foreground", "background"), uint8=("foreground", "background"))
        alpha = out["alpha"]
        layer_one, layer_two = out["foreground"], out["background"]
        # The formula is symmetric in its layers: the foreground is the one covering less of the border.
        swapped = border_coverage(alpha) > 0.5
        if swapped:
            alpha, layer_one, layer_two = 1.0 - alpha, layer_two, layer_one
        frames_low = context.frames

        def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
            soft = upsample_alpha(alpha[t], frame, radius=config.lift_radius)
            mask = soft > config.threshold
            # The matte of the layers: the working-resolution decision lifted edge-aware, so it is
            # opaque inside the object and soft only along its edges (the soft alpha itself rarely
            # reaches 1 where the prior was unsure, which would make the object look translucent).
            matte = upsample_alpha((alpha[t] > config.threshold).astype(np.float32), frame, radius=config.lift_radius)
            alpha_u8 = (matte * 255 + 0.5).astype(np.uint8)
            foreground = lift_layer(layer_one[t], frames_low[t], frame)
            background = lift_layer(layer_two[t], frames_low[t], frame)
            overlay = frame.astype(np.float32)
            overlay[mask] = 0.45 * overlay[mask] + 0.55 * OVERLAY_COLOUR
            edges = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            overlay[edges] = 255
            return {
                "alpha": alpha_u8,
                "masks": mask.astype(np.uint8),
                "layers/foreground": np.dstack([foreground, alpha_u8]),
                "layers/background": np.dstack([background, 255 - alpha_u8]),
                "overlay": overlay.astype(np.uint8),
            }

        return TaskResult(
            task=self.name,
            layers={"foreground": layer_one, "background": layer_two},
            alphas={"foreground": alpha},
            outputs={
                "alpha": "gray",
                "masks": "indexed",
                "layers/foreground": "rgba",
                "layers/background": "rgba",
                "overlay": "rgb",
            },
            videos={"preview.mp4": "overlay"},
            full_resolution=full_resolution,
            info={**problem.cue_info, "layers_swapped_by_border_rule": bool(swapped),
                  "foreground_area": float((alpha > config.threshold).mean())},
            highlights=("objectness",),
        )
