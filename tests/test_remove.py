"""Object removal and layer edits: the clean background recovers what the object hid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vdp.cli import app
from vdp.complete import complete_background
from vdp.editing import EditSettings
from vdp.errors import ConfigError


def _panning_scene(num_frames: int = 12, height: int = 64, width: int = 96, speed: int = 3):
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + speed * num_frames, 3)).astype(np.float32)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    import cv2

    texture = cv2.GaussianBlur(texture, (0, 0), 1.5)
    clean = np.stack([texture[:, speed * t: speed * t + width] for t in range(num_frames)])
    masks = np.zeros((num_frames, height, width), bool)
    masks[:, 20:44, 36:60] = True  # an object that stays put while the camera pans
    frames = clean.copy()
    frames[masks] = 255
    return frames, clean, masks


def _psnr(a, b, region):
    error = np.mean((a[region].astype(np.float64) - b[region]) ** 2)
    return 10 * np.log10(255.0**2 / error)


def test_removal_recovers_the_hidden_background_of_a_panning_scene():
    frames, clean, masks = _panning_scene()
    out = complete_background(frames, masks)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks], frames[~masks])  # outside the hole, the input is kept
    import cv2

    telea = np.stack([cv2.inpaint(f, m.astype(np.uint8), 5, cv2.INPAINT_TELEA) for f, m in zip(frames, masks)])
    assert _psnr(out, clean, masks) > 24.0
    assert _psnr(out, clean, masks) > _psnr(telea, clean, masks) + 5.0


def test_edit_settings_refuse_an_edit_without_anything_to_edit():
    with pytest.raises(ConfigError, match="nothing to edit"):
        EditSettings()
    with pytest.raises(ConfigError, match="--recolor"):
        EditSettings(hue=30.0)


def test_edit_of_a_result_of_another_task_says_so(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"task": "dehaze", "video": {"num_frames": 2, "size": [8, 8]}}))
    result = CliRunner().invoke(app, ["edit", str(folder), "--blur-background", "3", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "`dehaze` result" in result.output and result.output.count("error:") == 1


def test_remove_and_edit_keep_frames_fps_size_and_write_the_previews(tmp_path):
    import cv2

    frames, _, masks = _panning_scene(num_frames=6)
    source, mask_folder = tmp_path / "frames", tmp_path / "masks"
    source.mkdir()
    mask_folder.mkdir()
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        cv2.imwrite(str(source / f"{t:05d}.png"), frame[..., ::-1])
        cv2.imwrite(str(mask_folder / f"{t:05d}.png"), mask.astype(np.uint8) * 255)
    runner = CliRunner()
    removed = runner.invoke(app, ["remove", str(source), "--mask", str(mask_folder), "-o", str(tmp_path / "rm"), "-q"])
    assert removed.exit_code == 0, removed.output
    folder = tmp_path / "rm" / "frames"
    assert len(list((folder / "background").glob("*.png"))) == 6
    assert (folder / "removed.mp4").is_file() and (folder / "preview.mp4").is_file()
    edited = runner.invoke(app, ["edit", str(folder), "--blur-background", "2", "-o", str(tmp_path / "ed"), "-q"])
    assert edited.exit_code == 0, edited.output
    out = tmp_path / "ed" / "frames"
    written = sorted((out / "frames").glob("*.png"))
    assert len(written) == 6
    assert cv2.imread(str(written[0])).shape == frames[0].shape
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["video"]["num_frames"] == 6
    again = runner.invoke(app, ["remove", str(source), "--mask", str(mask_folder), "-o", str(tmp_path / "rm")])
    assert again.exit_code != 0 and "already exists" in again.output
