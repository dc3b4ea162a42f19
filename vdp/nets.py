"""Small convolutional U-Nets: the RGB-net and the alpha-net of the decomposition prior.

Shallow on purpose (docs/method.md §1): a net shared across all frames of one video can reproduce what is
coherent over the video and not much more, which is the prior.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="replicate"),
        nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, padding_mode="replicate"),
        nn.LeakyReLU(0.1, inplace=True),
    )


class UNet(nn.Module):
    """A shallow U-Net mapping (N, in_channels, H, W) to (N, out_channels, H, W) logits.

    Any H, W: the input is padded to a multiple of 2**(levels-1) and the output cropped back.

    Args:
        in_channels: input channels (3 for a frame, 3 for FlowRGB, 6 for both).
        out_channels: output channels (raw, no activation: the task chooses sigmoid, softplus, ...).
        widths: channels per level, e.g. (16, 32, 64).
    """

    def __init__(self, *, in_channels: int, out_channels: int, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        if not widths:
            raise ValueError(f"widths must name at least one level, got {widths!r}")
        self.widths = tuple(widths)
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoders.append(_block(previous, width))
            previous = width
        self.decoders = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.decoders.append(_block(previous + width, width))
            previous = width
        self.head = nn.Conv2d(previous, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        multiple = 2 ** (len(self.widths) - 1)
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips: list[Tensor] = []
        for index, encoder in enumerate(self.encoders):
            if index > 0:
                x = F.avg_pool2d(x, 2)
            x = encoder(x)
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :height, :width]
