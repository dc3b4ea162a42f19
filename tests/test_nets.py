"""UNet: any frame size in, the same size out, and every weight receives a gradient."""

from __future__ import annotations

import pytest
import torch

from vdp.nets import UNet


@pytest.mark.parametrize("widths", [(8,), (8, 16), (8, 16, 32)])
@pytest.mark.parametrize("height, width", [(37, 53), (16, 16), (1, 7)])
def test_output_has_the_input_size(widths: tuple[int, ...], height: int, width: int) -> None:
    torch.manual_seed(0)
    net = UNet(in_channels=3, out_channels=2, widths=widths)
    out = net(torch.rand(2, 3, height, width))
    assert out.shape == (2, 2, height, width)
    assert torch.isfinite(out).all()


def test_gradients_reach_every_parameter_and_the_input() -> None:
    torch.manual_seed(0)
    net = UNet(in_channels=6, out_channels=1, widths=(8, 16, 32))
    x = torch.rand(1, 6, 37, 53, requires_grad=True)
    net(x).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_padding_does_not_leak_between_samples() -> None:
    # Each sample of a batch is computed on its own: the batch is not mixed by padding or pooling.
    torch.manual_seed(0)
    net = UNet(in_channels=3, out_channels=1, widths=(8, 16))
    a, b = torch.rand(1, 3, 37, 53), torch.rand(1, 3, 37, 53)
    together = net(torch.cat([a, b]))
    torch.testing.assert_close(together[:1], net(a))
    torch.testing.assert_close(together[1:], net(b))


def test_empty_widths_is_an_error() -> None:
    with pytest.raises(ValueError, match="widths"):
        UNet(in_channels=3, out_channels=1, widths=())
