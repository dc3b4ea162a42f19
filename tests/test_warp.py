"""Checks of vdp.warp on hand-made flows."""

from __future__ import annotations

import pytest
import torch

from vdp.warp import backward_warp, compose_flows, forward_backward_occlusion


def constant_flow(batch: int, height: int, width: int, flow_x: float, flow_y: float) -> torch.Tensor:
    flow = torch.empty(batch, 2, height, width, dtype=torch.float64)
    flow[:, 0] = flow_x
    flow[:, 1] = flow_y
    return flow


def test_zero_flow_is_identity() -> None:
    image = torch.rand(2, 3, 9, 13, dtype=torch.float64)
    warped = backward_warp(image, torch.zeros(2, 2, 9, 13, dtype=torch.float64))
    torch.testing.assert_close(warped, image)


def test_integer_shift_samples_exact_pixels() -> None:
    image = torch.rand(1, 3, 16, 20, dtype=torch.float64)
    original = image.clone()
    warped = backward_warp(image, constant_flow(1, 16, 20, 2.0, -1.0))
    # output(y, x) = image(y - 1, x + 2) wherever that lies inside the frame.
    torch.testing.assert_close(warped[..., 1:, :-2], image[..., :-1, 2:])
    torch.testing.assert_close(image, original)  # the input is left untouched


def test_half_pixel_shift_averages_neighbours() -> None:
    image = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4)
    warped = backward_warp(image, constant_flow(1, 3, 4, 0.5, 0.0))
    torch.testing.assert_close(warped[..., :-1], (image[..., :-1] + image[..., 1:]) / 2)
    torch.testing.assert_close(warped[..., -1], image[..., -1])  # border padding


def test_warp_gradients_reach_image_and_flow() -> None:
    image = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    # Away from integer positions, where bilinear sampling is not differentiable.
    flow = (constant_flow(1, 4, 5, 0.3, 0.4) + 0.1 * torch.rand(1, 2, 4, 5, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(backward_warp, (image, flow))


def test_warp_rejects_mismatched_flow() -> None:
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        backward_warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 9))


def test_translation_is_consistent() -> None:
    forward = constant_flow(1, 12, 16, 3.0, -2.0)
    occlusion = forward_backward_occlusion(forward, -forward)
    assert occlusion.shape == (1, 1, 12, 16)
    assert occlusion.dtype == torch.float64
    assert occlusion.sum() == 0


def test_moving_square_marks_covered_background() -> None:
    """A square moves 6 px right over a static background between frames t and t+1.

    At frame t the background just right of the square is hidden at t+1: its forward flow (0)
    lands on the square, whose backward flow (-6) does not bring it back.
    """
    height, width, top, left, side, step = 24, 32, 8, 6, 8, 6
    forward = torch.zeros(1, 2, height, width)
    forward[:, 0, top : top + side, left : left + side] = step
    backward = torch.zeros(1, 2, height, width)
    backward[:, 0, top : top + side, left + step : left + step + side] = -step

    occlusion = forward_backward_occlusion(forward, backward)[0, 0]

    expected = torch.zeros(height, width)
    expected[top : top + side, left + side : left + side + step] = 1.0
    torch.testing.assert_close(occlusion, expected)


def test_occlusion_tolerance_grows_with_motion() -> None:
    forward = constant_flow(1, 4, 4, 20.0, 0.0)
    # A (0.8, 0.8) px round trip (1.28 px^2) exceeds alpha2 = 0.5 alone, not 0.5 + 0.01 * ~770 px^2.
    assert forward_backward_occlusion(forward, -forward + 0.8).sum() == 0
    assert forward_backward_occlusion(forward, -forward + 0.8, alpha1=0.0).sum() == 16


def test_compose_flows_follows_the_first_flow_to_where_the_second_is_read() -> None:
    height, width = 6, 9
    first = torch.zeros(1, 2, height, width)
    first[:, 0] = 2.0  # everything moves 2 px right from a to b
    second = torch.zeros(1, 2, height, width)
    second[:, 1, :, 4:] = 1.0  # in b, only the right part (x >= 4) moves 1 px down
    composed = compose_flows(first, second)
    assert torch.equal(composed[0, 0], torch.full((height, width), 2.0))
    # p lands at x + 2 in b: it picks up the downward motion exactly when x + 2 >= 4
    expected_y = (torch.arange(width) + 2 >= 4).float().expand(height, width)
    assert torch.equal(composed[0, 1], expected_y)
