"""Restoration benchmark on fake REVIDE and SDSD folders: readers, scores, resuming, failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdp.bench.restoration import (
    PSNR_CAP_DB,
    list_pairs,
    read_frames,
    run_restoration_benchmark,
    temporal_consistencies,
)
from vdp.errors import VideoInputError

NUM_FRAMES, HEIGHT, WIDTH = 4, 32, 40


def make_video(seed: int, *, num_frames: int = NUM_FRAMES, shift: int = 2) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB: a smooth random texture drifting right by ``shift`` px a frame."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (HEIGHT, WIDTH + shift * num_frames, 3)).astype(np.float32),
                               (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 20, 235, cv2.NORM_MINMAX)
    frames = [texture[:, shift * (num_frames - t):shift * (num_frames - t) + WIDTH] for t in range(num_frames)]
    return np.rint(np.stack(frames)).astype(np.uint8)


def degrade(frames: np.ndarray) -> np.ndarray:
    return (frames.astype(np.float32) * 0.3 + 10).astype(np.uint8)


def write_pngs(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t + 1}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def write_npys(folder: Path, frames: np.ndarray, *, kind: str) -> None:
    """SDSD-style .npy frames, BGR: ``uint8``, ``float01`` or ``float255``."""
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        bgr = np.ascontiguousarray(frame[..., ::-1])
        array = {"uint8": bgr, "float01": bgr.astype(np.float32) / 255.0, "float255": bgr.astype(np.float32)}[kind]
        np.save(folder / f"{t + 1}.npy", array)


@pytest.fixture
def revide_root(tmp_path: Path) -> Path:
    """``root/Test/{hazy,gt}/<video>/`` with PNG frames 1.png, 2.png, ..."""
    split = tmp_path / "revide" / "Test"
    for seed, video in enumerate(["video10", "video2"]):
        gt = make_video(seed)
        write_pngs(split / "gt" / video, gt)
        write_pngs(split / "hazy" / video, degrade(gt))
    return tmp_path / "revide"


@pytest.fixture
def sdsd_root(tmp_path: Path) -> Path:
    """A parent of ``indoor_np`` (uint8 input, float [0, 1] GT), ``outdoor_np`` (float [0, 255]
    input, uint8 GT) and an ``indoor_png`` copy that must not be listed twice."""
    root = tmp_path / "sdsd"
    gt = make_video(5)
    write_npys(root / "indoor_np" / "input" / "pair3", degrade(gt), kind="uint8")
    write_npys(root / "indoor_np" / "GT" / "pair3", gt, kind="float01")
    write_pngs(root / "indoor_png" / "input" / "pair3", degrade(gt))
    write_pngs(root / "indoor_png" / "GT" / "pair3", gt)
    gt = make_video(6)
    write_npys(root / "outdoor_np" / "input" / "pair1", degrade(gt), kind="float255")
    write_npys(root / "outdoor_np" / "GT" / "pair1", gt, kind="uint8")
    return root


def test_revide_pairs_from_split_folder_in_natural_order(revide_root: Path) -> None:
    pairs = list_pairs(revide_root, "revide")
    assert [name for name, _, _ in pairs] == ["video2", "video10"]
    assert pairs[0][1] == revide_root / "Test" / "hazy" / "video2"
    assert pairs[0][2] == revide_root / "Test" / "gt" / "video2"
    assert [name for name, _, _ in list_pairs(revide_root / "Test", "revide")] == ["video2", "video10"]
    write_pngs(revide_root / "Train" / "hazy" / "a", make_video(1))
    write_pngs(revide_root / "Train" / "gt" / "a", make_video(1))
    with pytest.raises(VideoInputError, match="several REVIDE splits"):
        list_pairs(revide_root, "revide")
    with pytest.raises(VideoInputError, match="not a REVIDE folder"):
        list_pairs(revide_root / "Test" / "gt", "revide")


def test_sdsd_pairs_parent_and_scene_folder(sdsd_root: Path) -> None:
    assert [n for n, _, _ in list_pairs(sdsd_root, "sdsd")] == ["indoor_np/pair3", "outdoor_np/pair1"]
    assert [n for n, _, _ in list_pairs(sdsd_root / "indoor_png", "sdsd")] == ["pair3"]
    with pytest.raises(VideoInputError, match="not an SDSD folder"):
        list_pairs(sdsd_root / "indoor_np" / "GT", "sdsd")
    with pytest.raises(VideoInputError, match="unknown layout"):
        list_pairs(sdsd_root, "davis")


def test_read_frames_png_natural_sort_and_limit(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for value in (10, 2, 1):
        cv2.imwrite(str(folder / f"frame{value}.png"), np.full((12, 12, 3), (value, 0, 200), np.uint8))  # BGR
    frames = read_frames(folder)
    assert frames.shape == (3, 12, 12, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0, 2].tolist() == [1, 2, 10]  # natural order, converted to RGB
    assert frames[0, 0, 0, 0] == 200
    assert read_frames(folder, limit_frames=2)[:, 0, 0, 2].tolist() == [1, 2]


@pytest.mark.parametrize("kind", ["uint8", "float01", "float255"])
def test_read_frames_npy_kinds(tmp_path: Path, kind: str) -> None:
    video = make_video(3)
    video[0] = 0  # a black frame must not change the video's float scale
    write_npys(tmp_path / "v", video, kind=kind)
    np.testing.assert_array_equal(read_frames(tmp_path / "v"), video)  # BGR .npy read back as RGB


def test_perfect_and_identity_restorers(sdsd_root: Path, tmp_path: Path) -> None:
    truths = {name: read_frames(gt_dir) for name, _, gt_dir in list_pairs(sdsd_root, "sdsd")}
    summary = run_restoration_benchmark(sdsd_root, tmp_path / "perfect", layout="sdsd",
                                        restorer=lambda frames, name: (truths[name], {}), method_name="perfect")
    score = json.loads((tmp_path / "perfect" / "indoor_np__pair3" / "score.json").read_text())
    assert score["psnr"] == PSNR_CAP_DB and score["ssim"] == pytest.approx(1.0)
    assert score["input_psnr"] < 30 and score["frames"] == NUM_FRAMES and score["size"] == [WIDTH, HEIGHT]
    assert score["tc_output"] == pytest.approx(score["tc_gt"])
    assert score["tc_ratio"] == pytest.approx(1.0)  # the ground truth is exactly as steady as itself
    assert summary["overall"]["items"] == 2 and summary["failed"] == []
    assert set(summary["per_item"]) == {"indoor_np/pair3", "outdoor_np/pair1"}

    summary = run_restoration_benchmark(sdsd_root, tmp_path / "identity", layout="sdsd",
                                        restorer=lambda frames, name: (frames, {}), method_name="identity")
    overall = summary["overall"]
    assert overall["psnr"] == overall["input_psnr"] and overall["ssim"] == overall["input_ssim"]
    assert overall["tc_output"] == overall["tc_input"]
    with open(tmp_path / "identity" / "outdoor_np__pair1" / "frames.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == NUM_FRAMES and rows[0]["psnr"] == rows[0]["input_psnr"]
    assert (tmp_path / "identity" / "items.csv").read_text().count("\n") == 3


def test_resume_failures_limit_and_saved_frames(revide_root: Path, tmp_path: Path) -> None:
    # Mismatched frame counts in one pair: its failure is recorded, the others carry on.
    write_pngs(revide_root / "Test" / "hazy" / "video3", make_video(7, num_frames=3))
    write_pngs(revide_root / "Test" / "gt" / "video3", make_video(7, num_frames=2))
    calls: dict[str, int] = {}

    def restorer(frames: np.ndarray, name: str) -> tuple[np.ndarray, dict]:
        calls[name] = calls.get(name, 0) + 1
        if name == "video10":
            raise RuntimeError("restorer exploded")
        return frames, {"note": "identity"}

    out = tmp_path / "report"
    summary = run_restoration_benchmark(revide_root, out, layout="revide", restorer=restorer, method_name="m",
                                        limit_frames=3, save_frames=True)
    assert summary["failed"] == ["video3", "video10"] and summary["overall"]["items"] == 1
    assert "restorer exploded" in (out / "video10" / "error.txt").read_text()
    assert "frames" in (out / "video3" / "error.txt").read_text()
    score = json.loads((out / "video2" / "score.json").read_text())
    assert score["frames"] == 3 and score["info"] == {"note": "identity"}
    assert len(list((out / "video2" / "frames").glob("*.png"))) == 3
    assert not list(out.glob(".*.partial"))

    summary = run_restoration_benchmark(revide_root, out, layout="revide", restorer=restorer, method_name="m",
                                        limit_frames=3, pairs=["video2", "video10"])
    assert calls == {"video2": 1, "video10": 2}  # video2 was finished, so skipped
    assert summary["failed"] == ["video10"]
    with pytest.raises(VideoInputError, match="not in"):
        run_restoration_benchmark(revide_root, out, layout="revide", restorer=restorer, method_name="m",
                                  pairs=["nope"])


def test_temporal_consistency_static_flicker_and_floor() -> None:
    static = np.repeat(make_video(9)[:1], NUM_FRAMES, axis=0)
    assert temporal_consistencies({"static": static}, static)["static"] < 1e-6
    moving = make_video(9)
    flicker = moving.astype(np.float32) * np.array([1.0, 0.7, 1.0, 0.7])[:, None, None, None]
    errors = temporal_consistencies({"steady": moving, "flickering": flicker.astype(np.uint8)}, moving)
    assert errors["steady"] < 0.01 and errors["flickering"] > errors["steady"] + 0.05
    assert np.isnan(temporal_consistencies({"one frame": moving[:1]}, moving[:1])["one frame"])
