"""DAVIS benchmark on a fake DAVIS folder: scoring, per-sequence failures, resuming."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdp.api import RunOptions
from vdp.bench.davis import read_annotations, run_davis_benchmark
from vdp.errors import VideoInputError
from vdp.optimize import OptimConfig
from vdp.example_clip import make_moving_object_video
from vdp.video import write_indexed_png

SEQUENCES = {"alpha-seq": 11, "beta-seq": 12}  # name -> generator seed
NUM_FRAMES, HEIGHT, WIDTH = 5, 40, 56


@pytest.fixture
def davis_root(tmp_path: Path) -> Path:
    """`ROOT/JPEGImages/480p/<seq>/%05d.jpg` and `ROOT/Annotations/480p/<seq>/%05d.png`, as DAVIS has them."""
    root = tmp_path / "davis"
    for sequence, seed in SEQUENCES.items():
        frames, masks = make_moving_object_video(num_frames=NUM_FRAMES, height=HEIGHT, width=WIDTH, seed=seed)
        images = root / "JPEGImages" / "480p" / sequence
        annotations = root / "Annotations" / "480p" / sequence
        images.mkdir(parents=True)
        for t, (frame, mask) in enumerate(zip(frames, masks)):
            cv2.imwrite(str(images / f"{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            write_indexed_png(mask, annotations / f"{t:05d}.png")
    return root


class Counting:
    """A segmenter that returns the ground truth, or raises for the sequences in `failing`."""

    def __init__(self, root: Path, failing: set[str]) -> None:
        self.root, self.failing = root, failing
        self.calls: dict[str, int] = {}

    def __call__(self, frames_folder: Path, sequence: str) -> tuple[list[np.ndarray], dict]:
        self.calls[sequence] = self.calls.get(sequence, 0) + 1
        assert frames_folder == self.root / "JPEGImages" / "480p" / sequence
        if sequence in self.failing:
            raise RuntimeError(f"segmenter exploded on {sequence}")
        return read_annotations(self.root, sequence), {"note": "ground truth"}


def test_scores_records_failures_and_resumes(davis_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    segmenter = Counting(davis_root, failing={"beta-seq"})
    summary = run_davis_benchmark(davis_root, out, segmenter=segmenter, method_name="ground truth")

    score = json.loads((out / "alpha-seq" / "score.json").read_text())
    assert score["J"] == pytest.approx(1.0) and score["F"] == pytest.approx(1.0)
    assert score["frames"] == NUM_FRAMES and score["method"] == "ground truth" and score["note"] == "ground truth"
    with open(out / "alpha-seq" / "frames.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["frame"]) for row in rows] == list(range(NUM_FRAMES))
    assert all(float(row["J"]) == pytest.approx(1.0) for row in rows)

    assert summary["failed"] == ["beta-seq"]
    assert not (out / "beta-seq" / "score.json").exists()
    assert "segmenter exploded on beta-seq" in (out / "beta-seq" / "error.txt").read_text()
    assert summary["overall"]["sequences"] == 1 and summary["overall"]["failed"] == 1
    assert summary["overall"]["J_mean"] == pytest.approx(1.0)
    assert summary["overall"]["J_mean_davis2016"] == pytest.approx(1.0)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "sequences.csv").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no partial folder is left behind"

    # A rerun skips the finished sequence and retries the failed one.
    finished_score = (out / "alpha-seq" / "score.json").read_text()
    segmenter.failing.clear()
    summary = run_davis_benchmark(davis_root, out, segmenter=segmenter, method_name="ground truth")
    assert segmenter.calls == {"alpha-seq": 1, "beta-seq": 2}
    assert (out / "alpha-seq" / "score.json").read_text() == finished_score
    assert summary["failed"] == []
    assert sorted(summary["per_sequence"]) == ["alpha-seq", "beta-seq"]
    assert not (out / "beta-seq" / "error.txt").exists()


def test_a_wrong_number_of_masks_is_a_recorded_failure(davis_root: Path, tmp_path: Path) -> None:
    def too_few(frames_folder: Path, sequence: str) -> tuple[list[np.ndarray], dict]:
        return read_annotations(davis_root, sequence)[:-1], {}

    summary = run_davis_benchmark(davis_root, tmp_path / "report", segmenter=too_few, sequences=["alpha-seq"])
    assert summary["failed"] == ["alpha-seq"]
    assert "4 masks for 5 annotated frames" in (tmp_path / "report" / "alpha-seq" / "error.txt").read_text()


def test_unknown_sequence_and_missing_layout_are_input_errors(davis_root: Path, tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="alpha-seq"):  # lists what is available
        run_davis_benchmark(davis_root, tmp_path / "report", sequences=["gamma-seq"], segmenter=lambda *_: ([], {}))
    with pytest.raises(VideoInputError, match="JPEGImages"):
        run_davis_benchmark(tmp_path / "empty", tmp_path / "report", segmenter=lambda *_: ([], {}))


def test_with_the_vdp_segmenter(davis_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    options = RunOptions(device="cpu", max_side=48, cache_dir="", optim=OptimConfig(num_steps=2))
    summary = run_davis_benchmark(davis_root, out, options=options, task_config={"objectness": "off"},
                                  sequences=["alpha-seq"])
    assert summary["failed"] == [], (out / "alpha-seq" / "error.txt").read_text() if summary["failed"] else ""
    assert list(summary["per_sequence"]) == ["alpha-seq"]
    assert not (out / "beta-seq").exists()
    score = json.loads((out / "alpha-seq" / "score.json").read_text())
    assert 0.0 <= score["J"] <= 1.0 and 0.0 <= score["F"] <= 1.0
    assert score["frames"] == NUM_FRAMES
    assert score["method"] == "vdp segment"
    assert score["info"]["steps"] == 2 and score["info"]["objectness"].startswith("off")
