"""Formulas of the dehaze and relight tasks, their inverses, airlight and the gamma start."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from vdp import api
from vdp.errors import ConfigError
from vdp.cues.haze import dark_channel, dark_channel_transmission, estimate_airlight, remove_haze
from vdp.video import Video
from vdp_tasks.relight import RelightConfig, RelightTask, exposure_start


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


@pytest.fixture(scope="module")
def dark_context():
    """A tiny dark video's context: grey levels 20, 40 and 60 in about equal parts, so the 99th
    luminance percentile is the brightest level and the start maps it to 0.95 without clipping."""
    levels = np.array([20, 40, 60], np.uint8)
    frames = levels[np.random.default_rng(0).integers(0, 3, (4, 24, 32))]
    video = Video(frames=np.repeat(frames[..., None], 3, axis=-1), fps=Fraction(24), name="dark")
    return api.prepare(video, options=api.RunOptions(device="cpu", flow="dis", perceptual="off", cache_dir=""))


def test_relight_starts_at_its_formula_inverted(dark_context) -> None:
    # log X_in = g * (log s + log X_out): before the fit, the problem's enhanced frames (the
    # formula inverted, stored in half precision) and illumination put back into the formula give
    # the input frames again.
    problem = RelightTask().build(dark_context, RelightConfig(gamma_init=0.85))
    with torch.no_grad():
        out = problem(torch.arange(dark_context.num_frames))
    g = problem.g.item()
    assert g == pytest.approx(0.85, abs=1e-6)
    reconstruction = (torch.exp(out["log_s"]) * out["enhanced"]) ** g
    torch.testing.assert_close(reconstruction, out["frames"], atol=2e-4, rtol=2e-3)
    assert float(out["enhanced"].max()) == pytest.approx(0.95, abs=1e-3)  # the exposure start
    assert bool((out["enhanced"] > out["frames"]).all())  # the input was darkened (s < 1)


def test_gamma_start_from_exposure_statistics() -> None:
    rng = np.random.default_rng(0)
    clear = rng.uniform(0, 1, size=(4, 32, 32, 3)) ** 2
    clear[:, :2, :2] = 1.0  # some near-white
    dark = (0.2 * clear * 255).astype(np.uint8)
    g, s, stats = exposure_start(dark, 0.9)
    assert g == 0.9 and stats["gamma_source"] == "given"
    luminance = (dark / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
    highlight = np.percentile(luminance[:: max(1, 4 // 8)], 99)
    assert math.isclose(highlight ** (1 / g) / s, 0.95, rel_tol=0.02)
    assert 0 < s < 1 and stats["input_p99"] > stats["input_median"]
    g_given, _, _ = exposure_start(dark, 1.7)
    assert g_given == 1.7  # curves above 1 are representable
    with pytest.raises(ConfigError):
        RelightConfig(gamma_init=0.0)


def test_estimated_gamma_follows_the_darkening_curve() -> None:
    # One scene darkened by steeper and steeper curves: the exposure prior's estimate rises with the
    # true gamma, and the start then inverts each to the same brightness. (Its level depends on
    # the scene, which the prior cannot know: docs/method.md §2.3.)
    rng = np.random.default_rng(1)
    clear = np.clip(rng.normal(0.45, 0.18, size=(4, 48, 48, 3)), 0.02, 1.0)
    estimates = []
    for gamma in (0.6, 1.0, 1.6, 2.5):
        dark = np.round(0.3 * clear**gamma * 255).astype(np.uint8)
        g, s, stats = exposure_start(dark, None)
        assert stats["gamma_source"].startswith("estimated")
        estimates.append(g)
    assert all(a < b for a, b in zip(estimates, estimates[1:]))
    assert estimates[-1] > 1.2  # gamma > 1 is reached, not clipped at 1


@pytest.mark.parametrize("learn_gamma", [True, False])
def test_gamma_starts_where_asked_and_is_learned_only_on_request(dark_context, learn_gamma: bool) -> None:
    problem = RelightTask().build(dark_context, RelightConfig(gamma_init=0.3, learn_gamma=learn_gamma))
    assert problem.g.item() == pytest.approx(0.3, abs=1e-6)
    assert problem.g.requires_grad == learn_gamma
