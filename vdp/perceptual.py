"""Optional VGG16 perceptual term (features up to relu3_3), used only when its weights are at hand.

The paper's reconstruction loss adds L1 on VGG features to L1 on pixels (docs/method.md §1). ImageNet
VGG16 weights come from the internet on first use, so vdp never needs them: with `perceptual='auto'`
it uses them when they are already in torchvision's cache (or given with `--vgg-weights PATH`) and
says so; otherwise the term is off and the reason is logged. It never downloads by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from vdp.errors import ConfigError

logger = logging.getLogger(__name__)

#: torchvision's VGG16_Weights.IMAGENET1K_V1 file name in the torch hub cache.
VGG16_FILE = "vgg16-397923af.pth"
#: features[:16] ends at relu3_3.
RELU3_3_END = 16
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Perceptual:
    """A frozen feature extractor (or None) and why."""

    features: nn.Module | None
    reason: str


def default_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


PerceptualMode = Literal["auto", "on", "off"]
"""When the VGG16 perceptual term is used (``RunOptions.perceptual``)."""


def check_mode(mode: str) -> None:
    """Refuse a perceptual mode other than 'auto', 'on' or 'off'."""
    if mode not in get_args(PerceptualMode):
        raise ConfigError(f"perceptual must be 'auto', 'on' or 'off', got {mode!r}")


def load_perceptual(mode: str = "auto", weights: str | Path | None = None, *, device=None) -> Perceptual:
    """Build VGG16 relu3_3 features when weights are available.

    Args:
        mode: 'auto' (use when found), 'on' (require) or 'off'.
        weights: a torchvision VGG16 state dict file (default: the torch hub cache).
        device: where to put the network.
    """
    check_mode(mode)
    if mode == "off":
        return Perceptual(None, "perceptual: off (--perceptual off)")
    path = Path(weights).expanduser() if weights else default_weights_path()
    if not path.is_file():
        reason = (f"perceptual: off (VGG16 weights not found at {path}; pass --vgg-weights PATH or run "
                  f"torchvision.models.vgg16(weights='IMAGENET1K_V1') once on a connected machine)")
        if mode == "on" or weights:
            raise ConfigError(reason.replace("perceptual: off (", "").rstrip(")"))
        return Perceptual(None, reason)
    from torchvision.models import vgg16

    network = vgg16(weights=None)
    try:
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # a wrong file must say so, not crash later
        raise ConfigError(f"{path} is not a torchvision VGG16 state dict: {error}") from error
    features = network.features[:RELU3_3_END].eval()
    for parameter in features.parameters():
        parameter.requires_grad_(False)
    if device is not None:
        features = features.to(device)
    return Perceptual(features, f"perceptual: VGG16 relu3_3 from {path}")


def perceptual_l1(features: nn.Module, prediction: Tensor, target: Tensor) -> Tensor:
    """L1 between VGG features of two images.

    Args:
        features: from `load_perceptual` (frozen).
        prediction, target: (N, 3, H, W) in [0, 1].
    """
    mean = prediction.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = prediction.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        target_features = features((target - mean) / std)
    return (features((prediction - mean) / std) - target_features).abs().mean()
