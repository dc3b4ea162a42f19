"""Task `segment`: unsupervised video object segmentation by a two-layer decomposition.

Composition (docs/method.md §2.1): `X_t = M_t * L1_t + (1 - M_t) * L2_t`, with the mask `M` from the
alpha-net and the layers `L1` (foreground) and `L2` (background) from the RGB-net.

Why the literal formulation fails, and what this file does instead:
- Reconstruction and layer terms are satisfied by `L1 = L2 = X` with any mask, the paper's
  flow-similarity term rewards an empty layer, and `1/mean|M - 0.5|` is minimal for an all-0 or
  all-1 mask: the mask collapses (measured: J 0 within ~70 steps). Here the mask is anchored by a
  *prior*: a per-pixel foreground probability from cues the formula itself lacks, motion that
  departs from the camera's (a RANSAC homography per flow field, forward/backward minimum,
  temporal pooling) and, when its model is installed, a salient-object network. Each pixel's pull
  towards the prior is weighted by the prior's confidence, so the shared nets decide where the
  cues are unsure.
- The alpha-net sees the frame and FlowRGB (a flow-only net cannot place boundaries where motion
  is uniform); the warp loss carries the mask along the flow; the binarisation term is
  `mean(M (1 - M))`, which does not prefer an empty or a full mask.
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
from torch import Tensor, nn

from vdp import losses
from vdp.errors import ConfigError
from vdp.cues.motion import camera_motion_residual, motion_saliency
from vdp.nets import UNet
from vdp.problem import VideoProblem
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
    alpha_widths: tuple[int, ...] = (8, 16, 32)
    """Channels per level of the alpha-net."""
    rgb_widths: tuple[int, ...] = (8, 16)
    """Channels per level of the RGB-net (it predicts both layers)."""
    weight_reconstruction: float = 1.0
    """L1 between the composition and the input (paper: 1)."""
    weight_perceptual: float = 1.0
    """L1 on VGG16 relu3_3 features of composition vs input (paper: 1), when VGG weights are available."""
    weight_layer: float = 1.0
    """Each layer matches the input where it is visible (paper: 1)."""
    residual_on_prior: bool = True
    """The alpha-net predicts a correction to the prior's logit (it starts at the prior and the
    warp, binarisation and composition terms move it) instead of a mask from scratch."""
    weight_prior: float = 0.5
    """Confidence-weighted cross-entropy of the mask against the motion/objectness prior."""
    weight_warp: float = 0.2
    """Mask at t+1 warped into t matches the mask at t where the flow is reliable."""
    weight_binarisation: float = 0.1
    """mean(M (1 - M)): pushes the mask to 0/1 without preferring either."""
    weight_motion_similarity: float = 0.01
    """Cosine similarity of the mean motion inside and outside the mask."""
    threshold: float = 0.5
    """Alpha above which a pixel is foreground in the binary masks."""
    lift_radius: int = 2
    """Guided-filter radius (working-resolution pixels) when lifting alpha to full resolution."""


class SegmentProblem(VideoProblem):
    """The nets, the fixed per-video tensors and the loss of the segmentation decomposition."""

    def __init__(self, context: Context, prior: np.ndarray, config: SegmentConfig, cue_info: dict) -> None:
        super().__init__(context)
        self.config = config
        self.cue_info = cue_info  # which cues made the prior, and its time (for metrics.json)
        self.alpha_net = UNet(in_channels=7, out_channels=1, widths=config.alpha_widths)
        if config.residual_on_prior:
            # Start exactly at the prior: the correction is zero until the losses ask for one.
            nn.init.zeros_(self.alpha_net.head.weight)
            nn.init.zeros_(self.alpha_net.head.bias)
        self.rgb_net = UNet(in_channels=3, out_channels=6, widths=config.rgb_widths)
        self.register_buffer("prior", torch.from_numpy(prior.astype(np.float32))[:, None], persistent=False)
        self.to(context.device)

    def forward(self, frame_indices: Tensor) -> dict[str, Tensor]:
        """Alpha logits (B,1,h,w), alpha, and the two layers (B,3,h,w) for the given frames."""
        frames, flow_rgb = self.frame_batch(frame_indices)
        prior = self.prior[frame_indices].float()
        logits = self.alpha_net(torch.cat([frames, flow_rgb, prior], dim=1))
        if self.config.residual_on_prior:
            logits = logits + torch.logit(prior.clamp(0.02, 0.98))
        layers = torch.sigmoid(self.rgb_net(frames))
        return {
            "frames": frames,
            "flow_rgb": flow_rgb,
            "logits": logits,
            "alpha": torch.sigmoid(logits.float()),
            "foreground": layers[:, :3].float(),
            "background": layers[:, 3:].float(),
        }

    def losses(self, frame_indices: Tensor, *, step: int, num_steps: int) -> dict[str, Tensor]:
        config = self.config
        starts, indices = self.pairs(frame_indices)
        out = self(indices)
        frames, alpha = out["frames"], out["alpha"]
        composed = alpha * out["foreground"] + (1 - alpha) * out["background"]
        prior = self.prior[indices].float()
        confidence = (2 * prior - 1).abs()
        flow_centred = out["flow_rgb"] - out["flow_rgb"].mean((-2, -1), keepdim=True)
        terms = {
            "reconstruction": config.weight_reconstruction * losses.masked_l1(composed, frames),
            "layer": config.weight_layer
            * (losses.masked_l1(alpha * out["foreground"], alpha * frames)
               + losses.masked_l1((1 - alpha) * out["background"], (1 - alpha) * frames)),
            "prior": config.weight_prior * losses.weighted_binary_cross_entropy(out["logits"].float(), prior, confidence),
            "warp": config.weight_warp * self.warp_loss(alpha, starts),
            "binarisation": config.weight_binarisation * losses.binarisation(alpha),
            "motion_similarity": config.weight_motion_similarity * losses.motion_similarity(alpha, flow_centred).clamp_min(0),
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
