"""Loss terms against hand-computed values, plus gradient checks."""

from __future__ import annotations

import pytest
import torch

from vdp import losses


def image(rows: list[list[float]]) -> torch.Tensor:
    """(1, 1, H, W) float64 from nested lists."""
    return torch.tensor(rows, dtype=torch.float64)[None, None]


def test_masked_l1_plain_mean() -> None:
    prediction = image([[1.0, 2.0], [3.0, 4.0]])
    assert losses.masked_l1(prediction, torch.zeros_like(prediction)).item() == pytest.approx(2.5)


def test_masked_l1_with_weights() -> None:
    # Errors [[1, 2], [3, 4]] weighted [[1, 0], [0, 3]]: (1*1 + 4*3) / (1 + 3) = 13/4.
    prediction = image([[1.0, 2.0], [3.0, 4.0]])
    weight = image([[1.0, 0.0], [0.0, 3.0]])
    assert losses.masked_l1(prediction, torch.zeros_like(prediction), weight).item() == pytest.approx(3.25)


def test_masked_l1_weight_is_shared_by_channels() -> None:
    # Channel 2 is twice channel 1: (1 + 12 + 2 + 24) / (2 channels * weight sum 4) = 39/8.
    first = image([[1.0, 2.0], [3.0, 4.0]])
    prediction = torch.cat([first, 2 * first], dim=1)
    weight = image([[1.0, 0.0], [0.0, 3.0]])
    assert losses.masked_l1(prediction, torch.zeros_like(prediction), weight).item() == pytest.approx(39 / 8)


def test_masked_l1_zero_weight_gives_zero_not_nan() -> None:
    prediction = image([[1.0, 2.0]])
    value = losses.masked_l1(prediction, torch.zeros_like(prediction), torch.zeros_like(prediction))
    assert value.item() == 0.0


def test_total_variation_of_a_ramp_and_its_guide() -> None:
    ramp = torch.arange(5.0).repeat(4, 1)[None, None]  # dx = 1, dy = 0
    assert losses.total_variation(ramp).item() == pytest.approx(1.0)
    # A guide with an edge everywhere damps every difference by exp(-edge_scale * 1).
    guide = torch.arange(5.0).repeat(4, 1)[None, None]
    damped = losses.total_variation(ramp, guide, edge_scale=1.0).item()
    assert damped == pytest.approx(torch.exp(torch.tensor(-1.0)).item())


def test_temporal_warp_l1_counts_only_valid_pixels() -> None:
    current = torch.zeros(1, 1, 2, 2)
    next_warped = image([[1.0, 1.0], [5.0, 5.0]]).float()
    valid = image([[1.0, 1.0], [0.0, 0.0]]).float()
    assert losses.temporal_warp_l1(current, next_warped, valid).item() == pytest.approx(1.0)
    assert losses.temporal_warp_l1(current, next_warped, torch.zeros_like(valid)).item() == 0.0


def test_losses_do_not_modify_their_inputs() -> None:
    generator = torch.Generator().manual_seed(1)
    alpha = torch.rand(1, 1, 6, 8, generator=generator)
    flow = torch.randn(1, 2, 6, 8, generator=generator)
    alpha_before, flow_before = alpha.clone(), flow.clone()
    losses.masked_l1(flow, flow * 0, alpha)
    losses.total_variation(flow, alpha)
    assert torch.equal(alpha, alpha_before) and torch.equal(flow, flow_before)


def test_gradients_are_correct() -> None:
    generator = torch.Generator().manual_seed(2)
    alpha = torch.rand(1, 1, 4, 5, generator=generator, dtype=torch.float64).clamp(0.1, 0.9).requires_grad_()
    flow = torch.randn(1, 2, 4, 5, generator=generator, dtype=torch.float64)
    target = torch.rand(1, 1, 4, 5, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: losses.masked_l1(flow, target, a), (alpha,))
    assert torch.autograd.gradcheck(lambda a: losses.total_variation(a, target), (alpha,))
