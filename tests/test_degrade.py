"""Synthetic haze and low-light benchmarks made from tiny frame folders (vdp/degrade.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vdp import degrade
from vdp.errors import ConfigError, VideoInputError
from vdp.degrade import (
    HazeParameters,
    LowLightParameters,
    list_sources,
    read_recipe,
    synthesize_haze,
    synthesize_lowlight,
)
from vdp.video import write_png_sequence

NUM_FRAMES, HEIGHT, WIDTH = 6, 24, 32


def make_frames(offset: int = 0) -> np.ndarray:
    """``(6, 24, 32, 3)`` uint8: smooth gradients plus a moving texture, values in [20, 190].

    Green stays below 80, far from any airlight (>= 0.75 * 255), so that the transmission can be
    recovered at every pixel.
    """
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(NUM_FRAMES):
        shift = index + offset
        frames[index, ..., 0] = 30 + 150 * x / (WIDTH - 1)
        frames[index, ..., 1] = 20 + 60 * y / (HEIGHT - 1)
        frames[index, ..., 2] = 110 + 80 * np.sin((x + 2 * y + 3 * shift) / 5.0)
    return frames


@pytest.fixture
def frame_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "street"
    write_png_sequence(make_frames(), folder)
    return folder


@pytest.fixture
def davis_root(tmp_path: Path) -> Path:
    root = tmp_path / "DAVIS"
    for offset, sequence in enumerate(("bear", "camel")):
        write_png_sequence(make_frames(offset), root / "JPEGImages" / "480p" / sequence)
    return root


def read_png(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_folder(folder: Path) -> np.ndarray:
    files = sorted(folder.iterdir())
    load = np.load if files[0].suffix == ".npy" else read_png
    return np.stack([load(file) for file in files])


def all_files(root: Path) -> dict[str, bytes]:
    files = sorted(path for path in root.rglob("*") if path.is_file())
    return {str(path.relative_to(root)): path.read_bytes() for path in files}


# --------------------------------------------------------------------------------------------
# Layouts


def test_haze_layout_and_recipe(frame_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "haze"
    recipe = synthesize_haze(frame_folder, out, seed=3)

    hazy_files = sorted(p.name for p in (out / "hazy" / "street").iterdir())
    gt_files = sorted(p.name for p in (out / "gt" / "street").iterdir())
    assert hazy_files == gt_files == [f"{i:05d}.png" for i in range(NUM_FRAMES)]
    np.testing.assert_array_equal(read_folder(out / "gt" / "street"), make_frames())
    assert not [p for p in out.rglob(".*")], "temporary folders left behind"

    assert read_recipe(out) == recipe
    assert recipe["kind"] == "haze" and recipe["seed"] == 3 and recipe["vdp_version"]
    assert "gamma_range" not in recipe  # low light only
    entry = recipe["videos"]["street"]
    assert (entry["frames"], entry["height"], entry["width"]) == (NUM_FRAMES, HEIGHT, WIDTH)
    assert 1.0 <= entry["beta"] <= 2.5
    assert all(0.75 <= a <= 0.95 for a in entry["airlight"])
    t_min, t_max = entry["transmission_range"]
    assert 0.05 < t_min < t_max < 0.95


def test_haze_transmission_recovered_with_recorded_airlight(
    frame_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "haze"
    entry = synthesize_haze(frame_folder, out, seed=1)["videos"]["street"]
    parameters = HazeParameters.from_dict(entry)
    airlight = np.asarray(entry["airlight"], dtype=np.float64)
    previous = None
    for index in range(NUM_FRAMES):
        clean = read_png(out / "gt" / "street" / f"{index:05d}.png") / 255.0
        hazy = read_png(out / "hazy" / "street" / f"{index:05d}.png") / 255.0
        # Invert I = t J + (1 - t) A per channel where J is far from A (quantisation <= 0.01).
        difference = clean - airlight
        valid = np.abs(difference) > 0.25
        ratios = np.where(valid, (hazy - airlight) / np.where(valid, difference, 1.0), 0.0)
        counts = valid.sum(axis=2)
        assert (counts > 0).all()
        t = ratios.sum(axis=2) / counts
        assert (t > 0).all() and (t <= 1.0 + 0.02).all()
        # Smooth: neighbouring pixels have close transmissions, and so do consecutive frames.
        assert np.abs(np.diff(t, axis=0)).max() < 0.06
        assert np.abs(np.diff(t, axis=1)).max() < 0.06
        if previous is not None:
            assert np.abs(t - previous).max() < 0.06
        previous = t
        # The recipe alone reproduces the transmission that made the frame.
        expected = parameters.transmission(index, HEIGHT, WIDTH)
        np.testing.assert_allclose(t, expected, atol=0.02)


def test_depth_field_is_bounded_and_drifts_slowly() -> None:
    parameters = degrade.draw_haze_parameters(np.random.default_rng(0))
    depths = np.stack([parameters.depth(index, 48, 64) for index in range(30)])
    assert depths.dtype == np.float32
    assert depths.min() >= 0.1 - 1e-6 and depths.max() <= 1.0 + 1e-6
    assert np.abs(np.diff(depths, axis=0)).max() < 0.02  # no flicker
    # The ground plane: the top of the frame is farther than the bottom, on average.
    assert depths[:, :8].mean() > depths[:, -8:].mean() + 0.2


@pytest.mark.parametrize("frame_format", ["png", "npy"])
def test_lowlight_layout_and_brightness(
    frame_folder: Path, tmp_path: Path, frame_format: str
) -> None:
    out = tmp_path / "low"
    recipe = synthesize_lowlight(frame_folder, out, seed=2, format=frame_format, npy_channel_order="rgb")
    assert read_recipe(out) == recipe
    assert recipe["kind"] == "lowlight" and recipe["layout"]["format"] == frame_format
    entry = recipe["videos"]["street"]
    parameters = LowLightParameters.from_dict(entry)
    assert 0.08 <= parameters.gain <= 0.25 and 0.8 <= parameters.gamma <= 1.2
    assert 0.002 <= parameters.read_noise <= 0.01 and parameters.shot_noise > 0

    names = [f"{i:05d}.{frame_format}" for i in range(NUM_FRAMES)]
    assert sorted(p.name for p in (out / "input" / "street").iterdir()) == names
    assert sorted(p.name for p in (out / "GT" / "street").iterdir()) == names
    low = read_folder(out / "input" / "street")
    clean = read_folder(out / "GT" / "street")
    assert low.dtype == clean.dtype == np.uint8
    assert low.shape == clean.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(clean, make_frames())

    expected = parameters.gain * np.mean((clean / 255.0) ** parameters.gamma)
    measured = np.mean(low / 255.0)
    assert measured < np.mean(clean / 255.0)
    # Noise averages out over 14k values; clipping read noise at black adds a little.
    assert measured == pytest.approx(expected, rel=0.1, abs=0.004)
    # Noise is independent from frame to frame (the source frames 0 and 1 differ only in blue).
    assert not np.array_equal(low[0, ..., 0], low[1, ..., 0])


def test_default_gamma_range_draws_what_it_always_drew(davis_root: Path, tmp_path: Path) -> None:
    default = synthesize_lowlight(davis_root, tmp_path / "default", seed=0, limit_frames=2)
    explicit = synthesize_lowlight(
        davis_root, tmp_path / "explicit", seed=0, limit_frames=2, gamma_range=(0.8, 1.2)
    )
    assert default["gamma_range"] == explicit["gamma_range"] == [0.8, 1.2]
    assert default["videos"] == explicit["videos"]
    for entry in default["videos"].values():
        # The per-video draw is the one made before gamma_range existed: the default range's.
        drawn = degrade.draw_lowlight_parameters(np.random.default_rng(entry["seed"]), (0.8, 1.2))
        assert LowLightParameters.from_dict(entry) == drawn
    assert {
        name: data for name, data in all_files(tmp_path / "default").items() if name != "recipe.json"
    } == {name: data for name, data in all_files(tmp_path / "explicit").items() if name != "recipe.json"}


def test_gamma_range_changes_gamma_only(davis_root: Path, tmp_path: Path) -> None:
    default = synthesize_lowlight(davis_root, tmp_path / "default", seed=4, limit_frames=2)
    strong = synthesize_lowlight(
        davis_root, tmp_path / "strong", seed=4, limit_frames=2, gamma_range=(1.2, 2.5)
    )
    assert read_recipe(tmp_path / "strong")["gamma_range"] == strong["gamma_range"] == [1.2, 2.5]
    for name, entry in strong["videos"].items():
        assert 1.2 <= entry["gamma"] <= 2.5
        # Same rng order: gain and noise are those of the default range.
        for key in ("gain", "shot_noise", "read_noise"):
            assert entry[key] == default["videos"][name][key]
    # A stronger gamma darkens the mid-tones more.
    for name in strong["videos"]:
        assert read_folder(tmp_path / "strong" / "input" / name).mean() < read_folder(
            tmp_path / "default" / "input" / name
        ).mean()


@pytest.mark.parametrize("gamma", [0.6, 2.5])
def test_equal_gamma_range_fixes_gamma(davis_root: Path, tmp_path: Path, gamma: float) -> None:
    recipe = synthesize_lowlight(
        davis_root, tmp_path / "fixed", limit_frames=1, gamma_range=(gamma, gamma)
    )
    assert recipe["gamma_range"] == [gamma, gamma]
    assert [entry["gamma"] for entry in recipe["videos"].values()] == [gamma, gamma]


def test_gamma_range_is_drawn_uniformly_inside() -> None:
    gammas = [
        degrade.draw_lowlight_parameters(np.random.default_rng(seed), (0.6, 2.5)).gamma
        for seed in range(200)
    ]
    assert min(gammas) >= 0.6 and max(gammas) <= 2.5
    assert min(gammas) < 0.8 and max(gammas) > 2.2  # the whole range is used


@pytest.mark.parametrize(
    "gamma_range",
    [(2.5, 1.2), (0.0, 1.0), (-1.0, 1.0), (1.0, 6.0), (1.0, float("nan")), (1.0, float("inf")),
     (1.0,), (1.0, 1.5, 2.0), "1.2,2.5", 1.5, ("1.2", "2.5"), (True, 2.0), None],
)
def test_bad_gamma_range_is_refused(
    gamma_range, frame_folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"gamma_range must be two finite numbers.*e\.g\."):
        synthesize_lowlight(frame_folder, tmp_path / "out", gamma_range=gamma_range)
    assert not (tmp_path / "out").exists()


def test_npy_frames_load_as_uint8_rgb(frame_folder: Path, tmp_path: Path) -> None:
    synthesize_lowlight(frame_folder, tmp_path / "low", format="npy", npy_channel_order="rgb")
    for folder in ("input", "GT"):
        array = np.load(tmp_path / "low" / folder / "street" / "00003.npy")
        assert array.dtype == np.uint8 and array.shape == (HEIGHT, WIDTH, 3)
    clean = np.load(tmp_path / "low" / "GT" / "street" / "00003.npy")
    np.testing.assert_array_equal(clean, make_frames()[3])
    assert read_recipe(tmp_path / "low")["layout"]["npy_channel_order"] == "rgb"

    # SDSD's own files are in OpenCV's order; "bgr" writes them that way.
    synthesize_lowlight(frame_folder, tmp_path / "bgr", format="npy", npy_channel_order="bgr")
    clean = np.load(tmp_path / "bgr" / "GT" / "street" / "00003.npy")
    np.testing.assert_array_equal(clean, make_frames()[3][:, :, ::-1])
    with pytest.raises(ConfigError, match="npy_channel_order"):
        synthesize_lowlight(frame_folder, tmp_path / "x", format="npy", npy_channel_order="rbg")


def test_davis_root_with_limit_frames_and_max_side(davis_root: Path, tmp_path: Path) -> None:
    assert [name for name, _ in list_sources(davis_root)] == ["bear", "camel"]
    haze = synthesize_haze(davis_root, tmp_path / "haze", limit_frames=4, max_side=16)
    low = synthesize_lowlight(davis_root, tmp_path / "low", limit_frames=4, max_side=16)
    layouts = ((haze, tmp_path / "haze", ("hazy", "gt")), (low, tmp_path / "low", ("input", "GT")))
    for recipe, out, folders in layouts:
        assert list(recipe["videos"]) == ["bear", "camel"]
        for sequence in ("bear", "camel"):
            entry = recipe["videos"][sequence]
            assert (entry["frames"], entry["height"], entry["width"]) == (4, 12, 16)
            assert (entry["source_height"], entry["source_width"]) == (HEIGHT, WIDTH)
            for folder in folders:
                frames = read_folder(out / folder / sequence)
                assert frames.shape == (4, 12, 16, 3)
    # Per-video parameters differ between videos.
    assert haze["videos"]["bear"]["beta"] != haze["videos"]["camel"]["beta"]


# --------------------------------------------------------------------------------------------
# Determinism, overwriting, atomic writes


@pytest.mark.parametrize("synthesize", [synthesize_haze, synthesize_lowlight])
def test_deterministic_per_seed(synthesize, davis_root: Path, tmp_path: Path) -> None:
    synthesize(davis_root, tmp_path / "a", seed=7)
    synthesize(davis_root, tmp_path / "b", seed=7)
    synthesize(davis_root, tmp_path / "c", seed=8)
    first, again, other = (all_files(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys()
    degraded = [name for name in first if name.startswith(("hazy", "input"))]
    assert degraded and all(first[name] != other[name] for name in degraded)
    clean = [name for name in first if name.startswith(("gt", "GT"))]
    assert all(first[name] == other[name] for name in clean)


def test_refuses_to_overwrite_without_permission(frame_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    synthesize_haze(frame_folder, out, seed=0)
    before = all_files(out)
    with pytest.raises(ConfigError, match="overwrite=True"):
        synthesize_haze(frame_folder, out, seed=1)
    with pytest.raises(ConfigError, match="overwrite=True"):
        synthesize_lowlight(frame_folder, out)
    assert all_files(out) == before

    recipe = synthesize_haze(frame_folder, out, seed=1, overwrite=True)
    assert read_recipe(out)["seed"] == recipe["seed"] == 1
    assert all_files(out) != before
    # Another kind replaces the previous benchmark's folders, not only its recipe.
    synthesize_lowlight(frame_folder, out, overwrite=True)
    assert read_recipe(out)["kind"] == "lowlight"
    assert not (out / "hazy" / "street").exists() and (out / "input" / "street").is_dir()


def test_failed_video_leaves_no_partial_folder(
    frame_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing_haze(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(*args, **kwargs)

    original = degrade.add_haze
    monkeypatch.setattr(degrade, "add_haze", failing_haze)
    out = tmp_path / "haze"
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize_haze(frame_folder, out)
    assert [p for p in out.rglob("*") if p.is_file()] == []
    assert not (out / "recipe.json").exists()


# --------------------------------------------------------------------------------------------
# Sources and errors


def test_list_sources_kinds(tmp_path: Path, frame_folder: Path) -> None:
    assert list_sources(frame_folder) == [("street", frame_folder)]
    video = tmp_path / "clip.MP4"
    video.write_bytes(b"")  # listing looks at the name only; decoding happens later
    assert list_sources(video) == [("clip", video)]
    mixed = tmp_path / "mixed"
    write_png_sequence(make_frames()[:2], mixed / "walk")
    (mixed / "notes").mkdir()  # no frames: skipped
    (mixed / "ride.mov").write_bytes(b"")
    (mixed / ".hidden.mp4").write_bytes(b"")
    assert [name for name, _ in list_sources(mixed)] == ["ride", "walk"]
    (mixed / "walk.mp4").write_bytes(b"")
    with pytest.raises(VideoInputError, match="'walk'"):
        list_sources(mixed)


def test_clear_errors(tmp_path: Path, frame_folder: Path) -> None:
    with pytest.raises(VideoInputError, match="nothing exists"):
        synthesize_haze(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoInputError, match="It is empty"):
        synthesize_lowlight(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VideoInputError, match=r"\.txt file"):
        synthesize_haze(tmp_path / "notes.txt", tmp_path / "out")
    (tmp_path / "davis" / "JPEGImages" / "480p").mkdir(parents=True)
    with pytest.raises(VideoInputError, match="no sequence folders"):
        list_sources(tmp_path / "davis")
    with pytest.raises(ConfigError, match="format"):
        synthesize_lowlight(frame_folder, tmp_path / "out", format="tiff")
    with pytest.raises(ConfigError, match="limit_frames"):
        synthesize_haze(frame_folder, tmp_path / "out", limit_frames=0)
    with pytest.raises(ConfigError, match="max_side"):
        synthesize_haze(frame_folder, tmp_path / "out", max_side=4)
    with pytest.raises(ConfigError, match="seed"):
        synthesize_haze(frame_folder, tmp_path / "out", seed=-1)
    with pytest.raises(VideoInputError, match="recipe.json"):
        read_recipe(tmp_path / "empty")
    assert not (tmp_path / "out").exists()
