"""`vdp batch --ray auto`: a local Ray instance runs the items; a worker killed mid-item is retried.

Ray is in the test extra, so these tests run in CI; they skip only where Ray is not installed.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vdp.bench.items import WORKER_FILE
from vdp.example_clip import make_moving_object_video
from vdp.parallel import RAY_RETRIES
from vdp.video import write_mp4
from cli_helpers import cli, one_thread

ray = pytest.importorskip("ray")

FRAMES = {"one": 6, "two": 7, "three": 6}
TINY = ["--steps", "5", "--objectness", "off", "--max-side", "64", "--cache-dir", "", "--device", "cpu"]






def write_clip(path: Path, *, num_frames: int, seed: int) -> None:
    """A tiny 64x48 clip: an mp4 when `path` ends in .mp4, else a folder of PNG frames."""
    frames, _ = make_moving_object_video(num_frames=num_frames, height=48, width=64, seed=seed)
    if path.suffix == ".mp4":
        write_mp4(frames, path, fps=Fraction(24))
    else:
        path.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(path / f"{t:05d}.png")


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch):
    """No RAY_ADDRESS (so `--ray auto` starts a local instance); Ray shut down afterwards, pass or fail."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


class WorkerKiller(threading.Thread):
    """Watches OUT for items in progress (`.<name>.partial/worker.json`): SIGKILLs the process of
    the first one it sees, once, and records every (item, pid) it sees running."""

    def __init__(self, out: Path) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.stop = threading.Event()
        self.seen: set[tuple[str, int]] = set()
        self.killed: tuple[str, int] | None = None
        self.finished_before_kill: bool | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            for worker_file in self.out.glob(f".*.partial/{WORKER_FILE}"):
                try:
                    pid = json.loads(worker_file.read_text())["pid"]
                except (OSError, ValueError, KeyError):  # gone, or being written: look again
                    continue
                name = worker_file.parent.name[1:-len(".partial")]
                self.seen.add((name, pid))
                if self.killed is None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed = (name, pid)
                    self.finished_before_kill = (self.out / name / "score.json").exists()
            self.stop.wait(0.01)


def masks_and_alpha(folder: Path) -> np.ndarray:
    files = sorted((folder / "masks").glob("*.png")) + sorted((folder / "alpha").glob("*.png"))
    return np.concatenate([np.asarray(Image.open(f)).ravel() for f in files])


def test_ray_batch_retries_a_killed_worker_and_matches_the_serial_batch(tmp_path: Path, local_ray: None) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for seed, (name, num_frames) in enumerate(FRAMES.items(), start=11):
        write_clip(videos / (f"{name}.mp4" if name != "two" else name), num_frames=num_frames, seed=seed)
    out = tmp_path / "ray"
    out.mkdir()

    killer = WorkerKiller(out)
    killer.start()
    try:
        code, output = cli("batch", "segment", str(videos), "-o", str(out), "--ray", "auto", "--threads", "1", *TINY)
    finally:
        killer.stop.set()
        killer.join(timeout=10)
    assert not ray.is_initialized(), "the batch shuts down the Ray instance it started"

    assert code == 0, output
    assert "Ray (" in output and "1 CPU(s) per item" in output
    assert killer.killed is not None, f"no item was seen running; output:\n{output}"
    killed_name, killed_pid = killer.killed
    assert killer.finished_before_kill is False, "the kill landed mid-item"
    with pytest.raises(ProcessLookupError):
        os.kill(killed_pid, 0)
    # Ray ran the killed item again (RAY_RETRIES > 0), in another worker process.
    assert RAY_RETRIES >= 1
    assert any(name == killed_name and pid != killed_pid for name, pid in killer.seen), killer.seen
    assert "FAILED" not in output

    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no .partial folder left"
    for name, num_frames in FRAMES.items():
        score = json.loads((out / name / "score.json").read_text())
        assert score["status"] == "ok" and score["frames"] == num_frames
        assert not (out / name / "error.txt").exists() and not (out / name / WORKER_FILE).exists()
    with open(out / "batch.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["item"], row["status"], row["frames"]) for row in rows] == \
        [("one", "ok", "6"), ("three", "ok", "6"), ("two", "ok", "7")]  # in natural order of names
    assert json.loads((out / "batch.json").read_text())["overall"]["done"] == 3

    # The same batch here, in order, with one thread as each Ray item had (--threads 1): the same
    # masks and alpha, bit for bit (same seed, steps and thread count).
    serial = tmp_path / "serial"
    with one_thread():
        code, output = cli("batch", "segment", str(videos), "-o", str(serial), "--workers", "1", "--threads", "1", *TINY)
    assert code == 0, output
    for name in FRAMES:
        assert np.array_equal(masks_and_alpha(out / name), masks_and_alpha(serial / name)), name
