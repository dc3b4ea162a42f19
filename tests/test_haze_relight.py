"""Formulas of the dehaze and relight tasks, their inverses, airlight and the gamma start."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vdp.errors import ConfigError
from vdp.cues.haze import dark_channel, dark_channel_transmission, estimate_airlight, remove_haze
from vdp_tasks.relight import DEFAULT_G, RelightConfig, exposure_start


def clear_scene(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A textured clear image with dark pixels in every patch (as the dark-channel prior expects)."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.05, 0.7, size=(height, width, 3)).astype(np.float32)
    image[::4, ::4] = 0.0  # a dark pixel in every 4x4 block
    return image


def test_haze_formula_and_its_inverse_round_trip() -> None:
    clear = clear_scene()
    airlight = np.array([0.8, 0.85, 0.9], np.float32)
    transmission = np.linspace(0.3, 0.9, clear.shape[1], dtype=np.float32)[None].repeat(clear.shape[0], 0)
    hazy = transmission[..., None] * clear + (1 - transmission[..., None]) * airlight
    np.testing.assert_allclose(remove_haze(hazy, transmission, airlight, floor=0.05), clear, atol=1e-5)


def test_dark_channel_transmission_is_a_lower_bound_and_exact_on_dark_pixels() -> None:
    clear = clear_scene()
    airlight = np.array([0.8, 0.85, 0.9], np.float32)
    hazy = 0.5 * clear + 0.5 * airlight
    estimate = dark_channel_transmission(hazy, airlight, omega=1.0, patch=5)
    assert np.all(estimate <= 0.5 + 1e-5)
    assert np.allclose(np.median(estimate), 0.5, atol=0.02)  # every 5x5 patch holds a zero pixel
    assert dark_channel(clear, 5)[:46, :62].max() == 0.0  # interior: every window reaches a dark pixel


def test_airlight_estimate_on_a_scene_with_known_airlight() -> None:
    height, width = 60, 80
    airlight = np.array([0.78, 0.82, 0.88], np.float32)
    frames = []
    for index in range(4):
        clear = clear_scene(height, width, seed=index)
        depth = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, 1)  # far at the top
        transmission = np.exp(-3.0 * depth)[..., None]
        hazy = transmission * clear + (1 - transmission) * airlight
        frames.append((hazy * 255 + 0.5).astype(np.uint8))
    estimate = estimate_airlight(np.stack(frames))
    np.testing.assert_allclose(estimate, airlight, atol=0.04)


def test_relight_formula_inverts() -> None:
    # log X_in = g * (log s + log X_out)  <=>  X_out = X_in ** (1/g) / s
    g, s = 0.85, 0.2
    x_out = np.linspace(0.05, 1.0, 20)
    x_in = np.exp(g * (np.log(s) + np.log(x_out)))
    np.testing.assert_allclose(x_in ** (1 / g) / s, x_out, rtol=1e-10)
    assert np.all(x_in < x_out)  # s < 1 darkens


def test_gamma_start_from_exposure_statistics() -> None:
    rng = np.random.default_rng(0)
    clear = rng.uniform(0, 1, size=(4, 32, 32, 3)) ** 2
    clear[:, :2, :2] = 1.0  # some near-white
    dark = (0.2 * clear * 255).astype(np.uint8)
    g, s, stats = exposure_start(dark, None)
    assert g == DEFAULT_G
    luminance = (dark / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
    highlight = np.percentile(luminance[:: max(1, 4 // 8)], 99)
    assert math.isclose(highlight ** (1 / g) / s, 0.95, rel_tol=0.02)
    assert 0 < s < 1 and stats["input_p99"] > stats["input_median"]
    g_given, _, _ = exposure_start(dark, 0.7)
    assert g_given == 0.7
    with pytest.raises(ConfigError):
        exposure_start(dark, 1.5)


def test_gamma_parametrisation_stays_in_the_open_interval() -> None:
    import torch

    from vdp_tasks.relight import RelightProblem  # noqa: F401 - the parametrisation lives in it

    logits = torch.tensor([-50.0, 0.0, 50.0])
    g = torch.sigmoid(logits)
    assert float(g.min()) >= 0.0 and float(g.max()) <= 1.0
    assert RelightConfig().learn_gamma
