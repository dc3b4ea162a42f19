"""Loss terms against hand-computed values (and torch's own BCE), plus gradient checks."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

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


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_binarisation_is_zero_for_constant_binary_masks(value: float) -> None:
    assert losses.binarisation(torch.full((2, 1, 5, 6), value)).item() == 0.0


def test_binarisation_hand_values() -> None:
    binary = image([[0.0, 1.0], [1.0, 0.0]])
    assert losses.binarisation(binary).item() == 0.0
    assert losses.binarisation(torch.full((1, 1, 3, 3), 0.5)).item() == pytest.approx(0.25)
    assert losses.binarisation(image([[0.0, 0.5], [1.0, 0.5]])).item() == pytest.approx(0.125)


def test_binarisation_prefers_neither_empty_nor_full() -> None:
    empty, full = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    assert losses.binarisation(empty).item() == losses.binarisation(full).item()


def half_mask(height: int = 6, width: int = 8) -> torch.Tensor:
    alpha = torch.zeros(1, 1, height, width)
    alpha[..., : width // 2] = 1.0
    return alpha


def test_motion_similarity_same_motion_is_one() -> None:
    flow = torch.tensor([1.0, 2.0])[None, :, None, None].expand(1, 2, 6, 8)
    assert losses.motion_similarity(half_mask(), flow).item() == pytest.approx(1.0, abs=1e-5)


def test_motion_similarity_opposite_motion_is_minus_one() -> None:
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0, :, :4], flow[:, 1, :, :4] = 1.0, 2.0
    flow[:, 0, :, 4:], flow[:, 1, :, 4:] = -1.0, -2.0
    assert losses.motion_similarity(half_mask(), flow).item() == pytest.approx(-1.0, abs=1e-5)


def test_motion_similarity_orthogonal_motion_is_zero() -> None:
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0, :, :4] = 1.0
    flow[:, 1, :, 4:] = 1.0
    assert losses.motion_similarity(half_mask(), flow).item() == pytest.approx(0.0, abs=1e-5)


def test_temporal_warp_l1_counts_only_valid_pixels() -> None:
    current = torch.zeros(1, 1, 2, 2)
    next_warped = image([[1.0, 1.0], [5.0, 5.0]]).float()
    valid = image([[1.0, 1.0], [0.0, 0.0]]).float()
    assert losses.temporal_warp_l1(current, next_warped, valid).item() == pytest.approx(1.0)
    assert losses.temporal_warp_l1(current, next_warped, torch.zeros_like(valid)).item() == 0.0


def test_weighted_binary_cross_entropy_matches_torch() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 5, 7, generator=generator, dtype=torch.float64)
    target = torch.rand(2, 1, 5, 7, generator=generator, dtype=torch.float64)
    weight = torch.rand(2, 1, 5, 7, generator=generator, dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum") / weight.sum()
    torch.testing.assert_close(losses.weighted_binary_cross_entropy(logits, target, weight), expected)
    unweighted = F.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(losses.weighted_binary_cross_entropy(logits, target, torch.ones_like(weight)), unweighted)


def test_weighted_binary_cross_entropy_hand_value() -> None:
    # A logit of 0 is probability 1/2: the cross-entropy against 1 is log 2.
    logits, target = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    value = losses.weighted_binary_cross_entropy(logits, target, torch.ones_like(target)).item()
    assert value == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_losses_do_not_modify_their_inputs() -> None:
    generator = torch.Generator().manual_seed(1)
    alpha = torch.rand(1, 1, 6, 8, generator=generator)
    flow = torch.randn(1, 2, 6, 8, generator=generator)
    alpha_before, flow_before = alpha.clone(), flow.clone()
    losses.binarisation(alpha)
    losses.motion_similarity(alpha, flow)
    losses.masked_l1(flow, flow * 0, alpha)
    assert torch.equal(alpha, alpha_before) and torch.equal(flow, flow_before)


def test_gradients_are_correct() -> None:
    generator = torch.Generator().manual_seed(2)
    alpha = torch.rand(1, 1, 4, 5, generator=generator, dtype=torch.float64).clamp(0.1, 0.9).requires_grad_()
    flow = torch.randn(1, 2, 4, 5, generator=generator, dtype=torch.float64)
    target = torch.rand(1, 1, 4, 5, generator=generator, dtype=torch.float64)
    assert torch.autograd.gradcheck(losses.binarisation, (alpha,))
    assert torch.autograd.gradcheck(lambda a: losses.motion_similarity(a, flow), (alpha,))
    assert torch.autograd.gradcheck(lambda a: losses.weighted_binary_cross_entropy(a, target, target), (alpha,))
