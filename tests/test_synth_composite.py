"""`vdp synth composite`: DAVIS objects pasted onto the next sequence's frames (object removal).

A tiny DAVIS-layout root is made in tmp_path: PNG frames (lossless, so the composite can be checked
exactly against them) and 0/255 square masks that move.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vdp.cli import app
from vdp.degrade import COMPOSITE_FOLDERS, read_recipe, synthesize_composite
from vdp.errors import ConfigError, VideoInputError
from vdp.video import write_png_sequence

HEIGHT, WIDTH = 32, 40
LENGTHS = {"alpha": 5, "beta": 6, "gamma": 4}  # sorted: alpha on beta, beta on gamma, gamma on alpha
ITEMS = {"alpha-on-beta": ("alpha", "beta"), "beta-on-gamma": ("beta", "gamma"), "gamma-on-alpha": ("gamma", "alpha")}


def make_sequence(length: int, seed: int, height: int = HEIGHT, width: int = WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """``(T, H, W, 3)`` uint8 noise frames and ``(T, H, W)`` bool masks: a square moving right."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(length, height, width, 3), dtype=np.uint8)
    masks = np.zeros((length, height, width), dtype=bool)
    side = height // 4
    for t in range(length):
        top, left = height // 4 + 2 * seed, 2 * t + 2 * seed
        masks[t, top:top + 2 * side, left:left + 2 * side] = True
    return frames, masks


def write_davis(root: Path, sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    """``root/JPEGImages/480p/<seq>/%05d.png`` and ``root/Annotations/480p/<seq>/%05d.png`` (0/255)."""
    for seed, (name, length) in enumerate(LENGTHS.items()):
        height, width = (sizes or {}).get(name, (HEIGHT, WIDTH))
        frames, masks = make_sequence(length, seed, height, width)
        write_png_sequence(frames, root / "JPEGImages" / "480p" / name)
        write_png_sequence(masks.astype(np.uint8) * 255, root / "Annotations" / "480p" / name)
    return root


def read_rgb(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.png"))
    return np.stack([cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in files])


def read_gray(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(f), cv2.IMREAD_UNCHANGED) for f in sorted(folder.glob("*.png"))])


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def davis(tmp_path: Path) -> Path:
    return write_davis(tmp_path / "davis")


def test_items_pasting_and_recipe(davis: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = synthesize_composite(davis, out, seed=7)
    assert recipe == read_recipe(out)
    assert sorted(p.name for p in out.iterdir()) == [*ITEMS, "recipe.json"]  # no hidden leftovers
    assert recipe["kind"] == "composite" and recipe["seed"] == 7
    assert recipe["source"] == str(davis.resolve())
    assert recipe["limit_frames"] is None and recipe["max_side"] is None and recipe["vdp_version"]
    assert recipe["layout"]["composite"] == "composite" and recipe["layout"]["clean"] == "background"
    assert list(recipe["items"]) == list(ITEMS)
    for item, (obj, background) in ITEMS.items():
        entry = recipe["items"][item]
        frames = min(LENGTHS[obj], LENGTHS[background])
        assert (entry["object"], entry["background"], entry["frames"]) == (obj, background, frames)
        assert (entry["width"], entry["height"]) == (WIDTH, HEIGHT)
        assert sorted(p.name for p in (out / item).iterdir()) == sorted(COMPOSITE_FOLDERS)
        composite, clean = read_rgb(out / item / "composite"), read_rgb(out / item / "background")
        mask = read_gray(out / item / "mask")
        assert composite.shape == (frames, HEIGHT, WIDTH, 3) and mask.dtype == np.uint8
        object_frames = read_rgb(davis / "JPEGImages" / "480p" / obj)[:frames]
        object_masks = read_gray(davis / "Annotations" / "480p" / obj)[:frames] > 0
        np.testing.assert_array_equal(clean, read_rgb(davis / "JPEGImages" / "480p" / background)[:frames])
        np.testing.assert_array_equal(mask, object_masks.astype(np.uint8) * 255)
        np.testing.assert_array_equal(composite, np.where(object_masks[..., None], object_frames, clean))
        assert entry["mean_mask_area_fraction"] == pytest.approx(object_masks.mean())
        assert 0 < entry["mean_mask_area_fraction"] < 1


def test_limit_frames_max_side_and_other_sizes(tmp_path: Path) -> None:
    # gamma is twice the size: pasted onto alpha, it is shrunk to alpha's size (then max_side applies).
    davis = write_davis(tmp_path / "davis", sizes={"gamma": (2 * HEIGHT, 2 * WIDTH)})
    recipe = synthesize_composite(davis, tmp_path / "out", limit_frames=3, max_side=20)
    for item, entry in recipe["items"].items():
        assert (entry["frames"], entry["width"], entry["height"]) == (3, 20, 16)
        composite, clean = read_rgb(tmp_path / "out" / item / "composite"), read_rgb(tmp_path / "out" / item / "background")
        mask = read_gray(tmp_path / "out" / item / "mask")
        assert composite.shape == (3, 16, 20, 3) and mask.shape == (3, 16, 20)
        assert set(np.unique(mask)) <= {0, 255} and mask.any()
        np.testing.assert_array_equal(composite[mask == 0], clean[mask == 0])
    assert recipe["limit_frames"] == 3 and recipe["max_side"] == 20


def test_existing_benchmark_is_refused_unless_overwrite(davis: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    synthesize_composite(davis, out)
    before = all_files(out)
    with pytest.raises(ConfigError, match="overwrite"):
        synthesize_composite(davis, out, limit_frames=2)
    assert all_files(out) == before
    again = synthesize_composite(davis, out, limit_frames=2, overwrite=True)
    assert all(entry["frames"] == 2 for entry in again["items"].values())
    assert len(list((out / "alpha-on-beta" / "mask").iterdir())) == 2


def test_bad_sources_are_input_errors(davis: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    bare = tmp_path / "bare"
    write_png_sequence(make_sequence(2, 0)[0], bare / "JPEGImages" / "480p" / "a")
    write_png_sequence(make_sequence(2, 1)[0], bare / "JPEGImages" / "480p" / "b")
    with pytest.raises(VideoInputError, match="DAVIS root with ground-truth masks.*no Annotations/480p"):
        synthesize_composite(bare, out)
    with pytest.raises(VideoInputError, match="DAVIS root"):
        synthesize_composite(bare / "JPEGImages" / "480p" / "a", out)  # a frame folder
    (davis / "Annotations" / "480p" / "beta" / "00003.png").unlink()
    with pytest.raises(VideoInputError, match="mask for every frame.*'beta'.*00003"):
        synthesize_composite(davis, out)
    for name in ("beta", "gamma"):
        for sub in ("JPEGImages", "Annotations"):
            for file in (davis / sub / "480p" / name).iterdir():
                file.unlink()
            (davis / sub / "480p" / name).rmdir()
    with pytest.raises(VideoInputError, match="at least two sequences"):
        synthesize_composite(davis, out)
    with pytest.raises(ConfigError, match="limit_frames"):
        synthesize_composite(davis, out, limit_frames=0)
    assert not out.exists()


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    logging.getLogger().handlers.clear()  # the CLI's handler wrote to the runner's closed stream
    return result


def test_command(davis: Path, tmp_path: Path) -> None:
    result = cli("synth", "composite", str(davis), str(tmp_path / "out"), "--limit-frames", "2")
    assert result.exit_code == 0, result.output
    assert f"3 item(s) written to {tmp_path / 'out'} (recipe.json beside them)" in result.stdout
    recipe = json.loads((tmp_path / "out" / "recipe.json").read_text())
    assert recipe["kind"] == "composite" and recipe["limit_frames"] == 2
    assert len(list((tmp_path / "out" / "gamma-on-alpha" / "composite").iterdir())) == 2


def test_command_bad_source_is_one_error_line(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    for seed, name in enumerate(("a", "b")):
        write_png_sequence(make_sequence(2, seed)[0], bare / "JPEGImages" / "480p" / name)
    result = cli("synth", "composite", str(bare), str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Annotations/480p" in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
