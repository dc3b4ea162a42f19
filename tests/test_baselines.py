"""Classical restoration baselines in benchmarks/: dark channel prior dehazing, gamma/exposure."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from vdp.metrics import psnr

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dcp = load_script("dark_channel_dehaze")
gamma = load_script("gamma_enhance")

AIRLIGHT = np.array([0.80, 0.85, 0.90], np.float32)


def clean_scene(height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    """(H, W, 3) float32: a sky the colour of the airlight on top, saturated colour blocks below
    (one channel near zero in each, as the dark channel prior assumes of haze-free scenes)."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.float32)
    image[: height // 4] = AIRLIGHT
    for y in range(height // 4, height, 8):
        for x in range(0, width, 8):
            colour = rng.uniform(0.2, 0.9, 3)
            colour[rng.integers(3)] = 0.03
            image[y:y + 8, x:x + 8] = colour
    return image


def test_dark_channel_prior_recovers_airlight_and_improves_psnr() -> None:
    clean = clean_scene()
    hazy = 0.5 * clean + 0.5 * AIRLIGHT  # transmission 0.5 everywhere
    patch = dcp.patch_size(*hazy.shape[:2])
    airlight = dcp.estimate_airlight(hazy, dcp.dark_channel(hazy, patch))
    np.testing.assert_allclose(airlight, AIRLIGHT, atol=0.02)

    hazy_uint8 = np.rint(hazy * 255).astype(np.uint8)
    dehazed = dcp.dehaze_frames(hazy_uint8[None])[0]
    assert dehazed.dtype == np.uint8 and dehazed.shape == hazy_uint8.shape
    hazy_psnr = psnr(hazy_uint8 / 255.0, clean)
    assert psnr(dehazed / 255.0, clean) > hazy_psnr + 10


def test_patch_size_scales_with_resolution() -> None:
    assert dcp.patch_size(480, 854) == 15
    assert dcp.patch_size(1080, 1920) == 35 and dcp.patch_size(40, 60) == 3


@pytest.mark.parametrize("mode", ["gamma", "exposure"])
def test_global_curves_brighten_a_dark_video(mode: str) -> None:
    rng = np.random.default_rng(0)
    dark = rng.integers(5, 40, (2, 24, 24, 3)).astype(np.uint8)
    bright = gamma.enhance_frames(dark, mode)
    assert bright.dtype == np.uint8 and bright.shape == dark.shape
    assert bright.mean() > 2 * dark.mean()
    if mode == "gamma":
        assert bright.mean() / 255 == pytest.approx(0.45, abs=0.05)
    else:
        assert np.percentile(bright, 99) / 255 == pytest.approx(0.95, abs=0.02)
    with pytest.raises(ValueError, match="unknown mode"):
        gamma.enhance_frames(dark, "retinex")


def _write_sdsd(root: Path, inputs: np.ndarray, gt: np.ndarray) -> None:
    for folder, frames in (("input", inputs), ("GT", gt)):
        (root / folder / "pair1").mkdir(parents=True)
        for t, frame in enumerate(frames):
            np.save(root / folder / "pair1" / f"{t}.npy", frame[..., ::-1])


@pytest.mark.parametrize("mode", ["gamma", "exposure"])
def test_enhancement_cli_never_reads_the_ground_truth(tmp_path: Path, mode: str, capsys) -> None:
    rng = np.random.default_rng(1)
    noise = rng.uniform(0, 255, (3, 24, 32, 3)).astype(np.float32)
    gt = np.stack([cv2.GaussianBlur(frame, (0, 0), 1.5) for frame in noise]).astype(np.uint8)
    inputs = (gt // 6).astype(np.uint8)
    saved = []
    for index, truth in enumerate((gt, 255 - gt)):  # same input, two different ground truths
        root, out = tmp_path / f"sdsd{index}", tmp_path / f"out{index}"
        _write_sdsd(root, inputs, truth)
        assert gamma.main([str(root), "-o", str(out), "--mode", mode, "--limit-frames", "2", "--save-frames"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["overall"]["items"] == 1 and summary["overall"]["limit_frames"] == 2
        saved.append([cv2.imread(str(f)) for f in sorted((out / "pair1" / "frames").glob("*.png"))])
    assert len(saved[0]) == 2
    for first, second in zip(*saved):
        np.testing.assert_array_equal(first, second)


def test_dehaze_cli_on_a_revide_folder(tmp_path: Path, capsys) -> None:
    clean = clean_scene(32, 40)
    frames = np.stack([clean, np.roll(clean, 2, axis=1)])
    for folder, images in (("gt", frames), ("hazy", 0.5 * frames + 0.5 * AIRLIGHT)):
        (tmp_path / "revide" / folder / "v1").mkdir(parents=True)
        for t, image in enumerate(images):
            bgr = cv2.cvtColor(np.rint(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(tmp_path / "revide" / folder / "v1" / f"{t}.png"), bgr)
    assert dcp.main([str(tmp_path / "revide"), "-o", str(tmp_path / "out")]) == 0
    overall = json.loads(capsys.readouterr().out)["overall"]
    assert overall["method"] == dcp.METHOD_NAME and overall["psnr"] > overall["input_psnr"]
