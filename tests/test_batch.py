"""`vdp batch TASK INPUTS... -o OUT`: every video one resumable item; failures recorded, the batch goes on.

The CLI runs in process through click's test runner, on tiny generated clips (an mp4 and a folder
of PNG frames) and one `.mp4` file that is not a video.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from vdp.batch import find_inputs
from vdp.errors import VideoInputError
from vdp.example_clip import make_moving_object_video
from vdp.video import write_mp4
from cli_helpers import cli, one_thread

HEIGHT, WIDTH = 48, 64
FRAMES = {"alpha": 6, "beta": 7}
TINY = ["--steps", "2", "--objectness", "off", "--max-side", "64", "--cache-dir", "", "--device", "cpu"]
OUTPUTS = ("masks", "alpha", "layers/foreground", "layers/background", "overlay")






def write_clip(path: Path, *, num_frames: int, seed: int) -> Path:
    """A tiny clip: an mp4 when `path` ends in .mp4, else a folder of PNG frames."""
    frames, _ = make_moving_object_video(num_frames=num_frames, height=HEIGHT, width=WIDTH, seed=seed)
    if path.suffix == ".mp4":
        write_mp4(frames, path, fps=Fraction(24))
    else:
        path.mkdir(parents=True)
        for t, frame in enumerate(frames):
            cv2.imwrite(str(path / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


def make_inputs(root: Path) -> Path:
    """`root/videos/`: alpha.mp4 (6 frames), beta/ (7 PNG frames) and broken.mp4 (not a video)."""
    videos = root / "videos"
    videos.mkdir(parents=True)
    write_clip(videos / "alpha.mp4", num_frames=FRAMES["alpha"], seed=1)
    write_clip(videos / "beta", num_frames=FRAMES["beta"], seed=2)
    (videos / "broken.mp4").write_bytes(b"this is not a video\n" * 8)
    return videos


def read_csv(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "batch.csv", newline="") as handle:
        return {row["item"]: row for row in csv.DictReader(handle)}


def masks_of(folder: Path) -> np.ndarray:
    files = sorted((folder / "masks").glob("*.png"))
    return np.stack([np.asarray(Image.open(f)) for f in files])  # palette indices: 0 background, 1 object


def hidden(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, str]:
    """One serial batch over the inputs folder: (inputs folder, OUT, exit code, output)."""
    root = tmp_path_factory.mktemp("batch")
    videos = make_inputs(root)
    out = root / "out"
    with one_thread():  # --threads 1 sets this too; restored afterwards either way
        code, output = cli("batch", "segment", str(videos), "-o", str(out), "--workers", "1", "--threads", "1", *TINY)
    return videos, out, code, output


def test_batch_runs_every_video_and_records_the_broken_one(first_batch: tuple[Path, Path, int, str]) -> None:
    videos, out, code, output = first_batch
    assert code == 1, output
    assert "2 of 3 done, 1 failed" in output and "failed: broken" in output
    assert sorted(p.name for p in out.iterdir()) == ["alpha", "batch.csv", "batch.json", "beta", "broken"]
    assert hidden(out) == [], "no .partial folder left"

    for name, num_frames in FRAMES.items():
        item = out / name
        score = json.loads((item / "score.json").read_text())
        assert score["item"] == name and score["status"] == "ok" and score["frames"] == num_frames
        assert score["task"] == "segment"
        for folder in OUTPUTS:
            assert len(list((item / folder).glob("*.png"))) == num_frames, (name, folder)
        assert (item / "metrics.json").is_file() and (item / "config.json").is_file()
        assert (item / "preview.mp4").is_file()
        assert not (item / "worker.json").exists() and not (item / "error.txt").exists()
        assert masks_of(item).shape == (num_frames, HEIGHT, WIDTH)

    broken = out / "broken"
    assert sorted(p.name for p in broken.iterdir()) == ["error.txt"]
    assert (broken / "error.txt").read_text().startswith("VideoInputError:")

    rows = read_csv(out)
    assert list(rows) == ["alpha", "beta", "broken"]
    assert {name: row["status"] for name, row in rows.items()} == {"alpha": "ok", "beta": "ok", "broken": "failed"}
    assert rows["alpha"]["frames"] == "6" and rows["beta"]["frames"] == "7" and rows["broken"]["frames"] == ""
    assert rows["broken"]["error"].startswith("VideoInputError:")
    assert rows["beta"]["source"] == str((videos / "beta").resolve())

    summary = json.loads((out / "batch.json").read_text())
    assert summary["overall"]["task"] == "segment"
    assert {key: summary["overall"][key] for key in ("items", "done", "failed", "pending")} == \
        {"items": 3, "done": 2, "failed": 1, "pending": 0}
    assert summary["failed"] == ["broken"]
    assert [(row["item"], row["status"], row["frames"]) for row in summary["items"]] == \
        [("alpha", "ok", 6), ("beta", "ok", 7), ("broken", "failed", None)]
    assert summary["options"]["optim"]["num_steps"] == 2
    assert summary["task_config"]["objectness"] == "off"


def test_a_rerun_skips_finished_items_and_retries_the_failed_one(
    first_batch: tuple[Path, Path, int, str], tmp_path: Path
) -> None:
    videos, first_out, code, output = first_batch
    assert code == 1, output
    # A copy of the first batch (copytree keeps modification times), its broken input now fixed.
    out = tmp_path / "out"
    shutil.copytree(first_out, out)
    videos = shutil.copytree(videos, tmp_path / "videos")
    (videos / "broken.mp4").unlink()
    write_clip(videos / "broken.mp4", num_frames=6, seed=3)
    finished = {name: ((out / name / "score.json").read_bytes(), (out / name / "score.json").stat().st_mtime_ns,
                       (out / name / "masks" / "00000.png").stat().st_mtime_ns) for name in FRAMES}

    code, output = cli("batch", "segment", str(videos), "-o", str(out), "--workers", "1", *TINY)
    assert code == 0, output
    assert "alpha: already scored, skipped" in output and "beta: already scored, skipped" in output
    assert "3 of 3 done, 0 failed" in output
    for name, before in finished.items():
        after = ((out / name / "score.json").read_bytes(), (out / name / "score.json").stat().st_mtime_ns,
                 (out / name / "masks" / "00000.png").stat().st_mtime_ns)
        assert after == before, f"{name} was run again"
    retried = out / "broken"
    assert not (retried / "error.txt").exists(), "the retried item replaces the folder of its failure"
    assert json.loads((retried / "score.json").read_text())["frames"] == 6
    assert len(list((retried / "masks").glob("*.png"))) == 6
    assert hidden(out) == []
    assert {name: row["status"] for name, row in read_csv(out).items()} == \
        {"alpha": "ok", "beta": "ok", "broken": "ok"}
    summary = json.loads((out / "batch.json").read_text())
    assert summary["overall"]["done"] == 3 and summary["failed"] == []


def test_two_local_workers_do_the_same_items(first_batch: tuple[Path, Path, int, str], tmp_path: Path) -> None:
    videos, serial_out, code, output = first_batch
    assert code == 1, output
    out = tmp_path / "out"
    code, output = cli("batch", "segment", str(videos), "-o", str(out), "--workers", "2", "--threads", "1", *TINY)
    assert code == 1, output
    assert "running items: up to 2 local workers x 1 thread(s)" in output
    assert {name: row["status"] for name, row in read_csv(out).items()} == \
        {"alpha": "ok", "beta": "ok", "broken": "failed"}
    assert hidden(out) == []
    assert (out / "broken" / "error.txt").read_text().startswith("VideoInputError:")
    for name, num_frames in FRAMES.items():
        # Same seed, steps and thread count (1) as the serial run: the same masks and alpha, bit for bit.
        assert np.array_equal(masks_of(out / name), masks_of(serial_out / name)), name
        for t in range(num_frames):
            frame = f"alpha/{t:05d}.png"
            assert np.array_equal(np.asarray(Image.open(out / name / frame)),
                                  np.asarray(Image.open(serial_out / name / frame))), (name, frame)


def test_find_inputs_takes_globs_frame_folders_and_folders_of_videos(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("b.mp4", "a10.mp4", "a2.mp4"):
        (videos / name).write_bytes(b"")  # find_inputs looks at names, not at contents
    frames = write_clip(videos / "frames", num_frames=2, seed=4)
    (videos / "notes.txt").write_text("not a video\n")
    (videos / ".hidden.mp4").write_bytes(b"")

    assert find_inputs([str(videos / "a*.mp4")]) == [("a2", (videos / "a2.mp4").resolve()),
                                                    ("a10", (videos / "a10.mp4").resolve())]
    assert find_inputs([frames]) == [("frames", frames.resolve())]
    assert [name for name, _ in find_inputs([videos])] == ["a2", "a10", "b", "frames"]
    # The same video named twice is one item.
    assert find_inputs([videos / "b.mp4", str(videos / "b.mp4")]) == [("b", (videos / "b.mp4").resolve())]
    with pytest.raises(VideoInputError, match="matches no video"):
        find_inputs([str(videos / "*.avi")])


def test_find_inputs_refuses_name_collisions_and_missing_paths(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(b"")
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "00000.png").write_bytes(b"")
    with pytest.raises(VideoInputError, match="would both write OUT/clip"):
        find_inputs([tmp_path / "one", tmp_path / "two"])
    with pytest.raises(VideoInputError, match="would both write OUT/clip"):  # a file and a frame folder
        find_inputs([tmp_path / "one" / "clip.mp4", tmp_path / "clip"])
    with pytest.raises(VideoInputError, match="does not exist"):
        find_inputs([tmp_path / "nope.mp4"])
    (tmp_path / "notes.txt").write_text("not a video\n")
    with pytest.raises(VideoInputError, match="is not a video"):
        find_inputs([tmp_path / "one" / "clip.mp4", tmp_path / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoInputError, match="holds no video"):
        find_inputs([tmp_path / "empty"])


def test_a_missing_input_is_refused_before_anything_runs(tmp_path: Path) -> None:
    code, output = cli("batch", "segment", str(tmp_path / "nope"), "-o", str(tmp_path / "out"), *TINY)
    assert code == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "does not exist" in lines[0], output
    assert not (tmp_path / "out").exists()


def test_ray_without_ray_installed_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = write_clip(tmp_path / "clip.mp4", num_frames=2, seed=5)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, output = cli("batch", "segment", str(clip), "-o", str(tmp_path / "out"), "--ray", "auto", *TINY)
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:") and 'pip install "vdp[ray]"' in lines[0]
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists(), "nothing is written when the executor cannot start"


def test_ray_and_workers_together_are_refused(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", num_frames=2, seed=5)
    code, output = cli("batch", "segment", str(clip), "-o", str(tmp_path / "out"), "--ray", "auto",
                       "--workers", "2", *TINY)
    assert code == 2 and output.startswith("error:") and "--workers is for this machine" in output, output
