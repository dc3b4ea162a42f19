"""Bad input, interruptions and long videos: vdp fails clearly and loses nothing (issue 4).

Every input is generated here (a file truncated, garbage written, sizes mixed); the CLI runs in
process through click's test runner except where a real process is the point (signals).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vdp.cli import app
from vdp.errors import VideoInputError
from benchmarks.clips import damage_video, write_test_pattern
from vdp.example_clip import make_moving_object_video
from vdp.video import FrameStore, Video, read_video, write_mp4
from cli_helpers import cli

TINY = ["--steps", "2", "--max-side", "48", "--cache-dir", "", "--device", "cpu"]




def assert_one_line_error(code: int, output: str, *phrases: str) -> str:
    assert code == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    frames, _ = make_moving_object_video(num_frames=30, height=48, width=64, seed=3)
    write_mp4(frames, tmp_path / "clip.mp4", fps=24)
    return tmp_path / "clip.mp4"


# ---------------------------------------------------------------------------------------------
# 1. Clear errors: exit code 2, one line, what was expected, what arrived and what to do


def test_missing_path(tmp_path: Path) -> None:
    line = assert_one_line_error(*cli("segment", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out"), *TINY),
                                 "nothing exists at", "nope.mp4", "Check the spelling")
    assert "Expected" in line
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--debug", "segment", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out")])
    logging.getLogger().handlers.clear()
    assert isinstance(result.exception, VideoInputError) and "nothing exists at" in str(result.exception)


def test_folder_with_no_frames(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("no images here")
    assert_one_line_error(*cli("segment", str(tmp_path / "frames"), "-o", str(tmp_path / "out"), *TINY),
                          "found no such files", "notes.txt")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_text("this is not a video\n" * 20)
    assert_one_line_error(*cli("segment", str(tmp_path / "fake.mp4"), "-o", str(tmp_path / "out"), *TINY),
                          "Expected a decodable video", "Invalid data", "ffmpeg -i")


@pytest.mark.parametrize("damage", ["truncated", "scrambled"])
def test_damaged_video_is_refused_not_silently_shortened(clip: Path, damage: str) -> None:
    broken = damage_video(clip, clip.with_name(f"{damage}.mp4"), damage)
    with pytest.raises(VideoInputError, match=r"Expected the 30 frames .* ffmpeg decoded \d+ and then reported errors"):
        read_video(broken)
    assert_one_line_error(*cli("segment", str(broken), "-o", str(clip.parent / "out"), *TINY), "truncated or damaged")
    assert not (clip.parent / "out").exists(), "a failed run leaves no empty output folder"
    # The frames before the damage are still usable, on request.
    assert read_video(broken, max_frames=5).num_frames == 5


def test_video_with_zero_frames(tmp_path: Path) -> None:
    empty = write_test_pattern(tmp_path / "empty.mp4", "-frames:v", "0")
    assert_one_line_error(*cli("segment", str(empty), "-o", str(tmp_path / "out"), *TINY), "0 frames")


def test_single_frame_is_refused(tmp_path: Path) -> None:
    one = write_test_pattern(tmp_path / "one.mp4", "-frames:v", "1")
    assert_one_line_error(*cli("segment", str(one), "-o", str(tmp_path / "out"), *TINY), "at least 2 frames")


def test_folder_of_mixed_sizes(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, size in enumerate([(32, 48), (32, 48), (40, 48)]):
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.zeros((*size, 3), np.uint8))
    assert_one_line_error(*cli("segment", str(folder), "-o", str(tmp_path / "out"), *TINY),
                          "same size", "002.png", "48x40")


def test_undecodable_image_in_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "000.png"), np.zeros((32, 48, 3), np.uint8))
    (folder / "001.png").write_bytes(b"\x89PNG garbage")
    assert_one_line_error(*cli("segment", str(folder), "-o", str(tmp_path / "out"), *TINY), "001.png", "could not decode")


def test_image_file_instead_of_a_video(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((32, 48, 3), np.uint8))
    assert_one_line_error(*cli("segment", str(tmp_path / "still.png"), "-o", str(tmp_path / "out"), *TINY),
                          "an image", "folder")


def test_gray_rgba_and_16_bit_frames_are_converted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (24, 32, 3), dtype=np.uint16)
    cases = {
        "gray": (rng.integers(0, 256, (24, 32), dtype=np.uint8), None),
        "rgba": (rng.integers(0, 256, (24, 32, 4), dtype=np.uint8), None),
        "deep": (rgb16, None),
    }
    for name, (image, _) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        for t in range(2):
            cv2.imwrite(str(folder / f"{t}.png"), image)
    gray = read_video(tmp_path / "gray").frames[0]
    assert np.array_equal(gray, np.repeat(cases["gray"][0][:, :, None], 3, axis=2))
    rgba = read_video(tmp_path / "rgba").frames[0]
    assert np.array_equal(rgba, cases["rgba"][0][:, :, 2::-1])  # BGRA on disk -> RGB, alpha dropped
    deep = read_video(tmp_path / "deep").frames[0]
    assert np.array_equal(deep, ((rgb16[:, :, ::-1].astype(np.uint32) + 128) // 257).astype(np.uint8))


def test_gray_and_16_bit_video_files(tmp_path: Path) -> None:
    gray = read_video(write_test_pattern(tmp_path / "gray.mp4", "-frames:v", "3", "-pix_fmt", "gray"))
    assert gray.frames.shape == (3, 48, 64, 3)
    assert np.array_equal(gray.frames[..., 0], gray.frames[..., 1])
    deep = read_video(write_test_pattern(tmp_path / "deep.mkv", "-frames:v", "3", "-c:v", "ffv1", "-pix_fmt", "rgb48le"))
    reference = read_video(write_test_pattern(tmp_path / "ref.mkv", "-frames:v", "3", "-c:v", "ffv1", "-pix_fmt", "rgb24"))
    assert deep.frames.dtype == np.uint8
    difference = np.abs(deep.frames.astype(int) - reference.frames)  # 16 -> 8 bits may dither
    assert difference.max() <= 4 and difference.mean() < 0.5


def test_tiny_frames_run_end_to_end(tmp_path: Path) -> None:
    tiny = write_test_pattern(tmp_path / "tiny.mp4", "-frames:v", "4", "-vf", "scale=8:8", "-pix_fmt", "yuv444p")
    code, output = cli("dehaze", str(tiny), "-o", str(tmp_path / "out"), *TINY, "--quiet")
    assert code == 0, output
    assert read_video(tmp_path / "out" / "tiny" / "result.mp4").frames.shape == (4, 8, 8, 3)


@pytest.mark.parametrize("args, phrases", [
    (["--flow", "optical"], ["unknown optical flow method 'optical'", "farneback"]),
    (["--device", "tpu"], ["unknown device 'tpu'", "cpu"]),
    (["--device", "cuda"], ["no CUDA GPU", "--device cpu"]),
    (["--max-side", "8"], ["--max-side must be at least 16"]),
    (["--start", "-1"], ["start must be 0 or more"]),
    (["--stride", "0"], ["stride must be 1 or more"]),
    (["--max-frames", "0"], ["max_frames must be 1 or more"]),
    (["--start", "100"], ["from frame 100 on", "smaller start"]),
])
def test_bad_options(clip: Path, args: list[str], phrases: list[str]) -> None:
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(*cli("segment", str(clip), "-o", str(clip.parent / "out"), *TINY, *args), *phrases)
    assert not (clip.parent / "out" / "clip").exists()


def test_unknown_task_is_a_usage_error(clip: Path) -> None:
    code, output = cli("segmnt", str(clip))
    assert code == 2 and "No such command" in output and "Traceback" not in output


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_output_folder_that_cannot_be_written(clip: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = clip.parent / "blocker"
    blocker.write_text("a file where the output folder should go")
    out = blocker if where == "file" else blocker / "out"

    def no_decoding(*args, **kwargs):
        raise AssertionError("the video was decoded before the output folder was checked")

    monkeypatch.setattr("vdp.api.load_video", no_decoding)  # refused before any work
    line = assert_one_line_error(*cli("segment", str(clip), "-o", str(out), *TINY), "-o")
    assert "output" in line
    assert blocker.read_text() == "a file where the output folder should go"


def test_divergence_is_a_one_line_error_and_writes_nothing(clip: Path) -> None:
    code, output = cli("segment", str(clip), "-o", str(clip.parent / "out"), *TINY, "--learning-rate", "1e30",
                       "--steps", "60", "--objectness", "off")
    assert_one_line_error(code, output, "diverged", "--learning-rate")
    assert not (clip.parent / "out" / "clip").exists()


def test_a_result_holding_nan_is_never_written(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vdp_tasks.dehaze import DehazeTask

    original = DehazeTask.read_out

    def poisoned(self, problem, context, config):
        result = original(self, problem, context, config)
        next(iter(result.alphas.values()))[1, 2, 3] = np.nan
        return result

    monkeypatch.setattr(DehazeTask, "read_out", poisoned)
    assert_one_line_error(*cli("dehaze", str(clip), "-o", str(clip.parent / "out"), *TINY), "NaN", "nothing was written")
    assert not (clip.parent / "out" / "clip").exists()


# ---------------------------------------------------------------------------------------------
# 2. Nothing lost


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_result_is_kept_without_overwrite_and_the_input_never_changes(clip: Path) -> None:
    source = clip.read_bytes()
    out = clip.parent / "out"
    code, output = cli("dehaze", str(clip), "-o", str(out), *TINY, "--quiet")
    assert code == 0, output
    first = snapshot(out)
    assert_one_line_error(*cli("dehaze", str(clip), "-o", str(out), *TINY), "already exists", "--overwrite")
    assert snapshot(out) == first
    code, output = cli("dehaze", str(clip), "-o", str(out), *TINY, "--quiet", "--overwrite", "--seed", "1")
    assert code == 0, output
    assert json.loads((out / "clip" / "config.json").read_text())["options"]["optim"]["seed"] == 1
    assert clip.read_bytes() == source
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def start_cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vdp.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_ctrl_c_mid_run_leaves_nothing_and_a_rerun_completes(clip: Path) -> None:
    out = clip.parent / "out"
    process = start_cli("dehaze", str(clip), "-o", str(out), *TINY, "--steps", "100000")
    lines: list[str] = []

    def optimising() -> bool:  # progress goes to stderr once per 10% of the steps; the first at step 1
        lines.append(process.stderr.readline())
        return lines[-1].startswith("dehaze: ")

    wait_for(optimising, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists(), "nothing written, not even the output folder"
    code, output = cli("dehaze", str(clip), "-o", str(out), *TINY, "--quiet")
    assert code == 0, output
    assert (out / "clip" / "metrics.json").is_file()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_killed_while_writing_leaves_nothing_that_looks_finished(tmp_path: Path, how: signal.Signals) -> None:
    frames, _ = make_moving_object_video(num_frames=40, height=240, width=320, seed=5)
    write_mp4(frames, tmp_path / "long.mp4", fps=Fraction(24))
    out = tmp_path / "out"
    process = start_cli("segment", str(tmp_path / "long.mp4"), "-o", str(out), *TINY, "--objectness", "off")
    wait_for(lambda: out.is_dir() and any(p.name.startswith(".long.partial-") for p in out.iterdir()), process)
    time.sleep(0.3)  # some frames are written
    process.send_signal(how)
    process.communicate(timeout=60)
    assert process.returncode in ((130,) if how == signal.SIGTERM else (-signal.SIGKILL,))
    assert not (out / "long").exists(), "no result folder under the final name"
    left = list(out.iterdir()) if out.exists() else []  # SIGTERM also removes the folder it created
    assert all(p.name.startswith(".long.partial-") and not (p / "metrics.json").exists() for p in left)
    if how == signal.SIGTERM:
        assert left == [], "cleaned up like Ctrl-C"
    code, output = cli("segment", str(tmp_path / "long.mp4"), "-o", str(out), *TINY, "--objectness", "off", "--quiet")
    assert code == 0, output
    assert (out / "long" / "metrics.json").is_file()
    assert [p.name for p in out.iterdir()] == ["long"], "the killed run's partial folder is removed by the rerun"


def test_bench_interrupted_then_resumed(tmp_path: Path) -> None:
    from vdp.video import write_indexed_png

    root = tmp_path / "davis"
    for index, name in enumerate(["aaa", "bbb", "ccc"]):
        frames, masks = make_moving_object_video(num_frames=4, height=32, width=48, seed=20 + index)
        for t, (frame, mask) in enumerate(zip(frames, masks)):
            folder = root / "JPEGImages" / "480p" / name
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            write_indexed_png(mask, root / "Annotations" / "480p" / name / f"{t:05d}.png")
    out = tmp_path / "report"
    run = ["bench", "davis", str(root), "-o", str(out), "--steps", "3", "--max-side", "32", "--cache-dir", "",
           "--objectness", "off", "--device", "cpu"]
    process = start_cli(*run)
    wait_for(lambda: (out / "aaa" / "score.json").is_file(), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no partial item left"
    finished_first = (out / "aaa" / "score.json").read_bytes()

    completed = subprocess.run([sys.executable, "-m", "vdp.cli", *run], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "aaa: already scored, skipped" in completed.stderr
    assert (out / "aaa" / "score.json").read_bytes() == finished_first
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["per_sequence"]) == ["aaa", "bbb", "ccc"] and not summary["failed"]


def test_bench_continues_after_a_failing_item_and_exits_non_zero(tmp_path: Path) -> None:
    from vdp.video import write_indexed_png

    root = tmp_path / "davis"
    for index, name in enumerate(["good", "odd"]):
        frames, masks = make_moving_object_video(num_frames=3, height=32, width=48, seed=30 + index)
        for t, (frame, mask) in enumerate(zip(frames, masks)):
            folder = root / "JPEGImages" / "480p" / name
            folder.mkdir(parents=True, exist_ok=True)
            if name == "odd" and t == 2:
                frame = frame[:16]  # a frame of another size: this item fails
            cv2.imwrite(str(folder / f"{t:05d}.jpg"), cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
            write_indexed_png(mask, root / "Annotations" / "480p" / name / f"{t:05d}.png")
    out = tmp_path / "report"
    code, output = cli("bench", "davis", str(root), "-o", str(out), "--steps", "2", "--max-side", "32",
                       "--cache-dir", "", "--objectness", "off", "--device", "cpu")
    assert code == 1, output
    assert "1 sequence(s) failed: odd" in output
    assert (out / "good" / "score.json").is_file()
    assert "same size" in (out / "odd" / "error.txt").read_text()
    assert "odd" in json.loads((out / "summary.json").read_text())["failed"]


# ---------------------------------------------------------------------------------------------
# 3. Long videos: frames beyond the memory limit live in a temporary file


def test_frames_beyond_the_limit_spill_to_a_file_and_read_back_exactly(tmp_path: Path) -> None:
    frames, _ = make_moving_object_video(num_frames=12, height=40, width=56, seed=9)
    write_mp4(frames, tmp_path / "clip.mp4", fps=24, lossless=True)
    in_memory = read_video(tmp_path / "clip.mp4")
    spilled = read_video(tmp_path / "clip.mp4", ram_limit=5 * 40 * 56 * 3)
    assert isinstance(in_memory.frames, np.ndarray) and isinstance(spilled.frames, FrameStore)
    assert spilled.frames.shape == in_memory.frames.shape and len(spilled.frames) == 12
    assert np.array_equal(np.asarray(spilled.frames), in_memory.frames)
    assert np.array_equal(spilled.frames[-1], in_memory.frames[11])
    assert np.array_equal(np.stack(list(spilled.frames)), in_memory.frames)
    assert np.array_equal(spilled.frames[2:5], in_memory.frames[2:5])
    folder = read_video(tmp_path / "clip.mp4", ram_limit=0)
    assert isinstance(folder.frames, FrameStore) and np.array_equal(folder.frames[0], in_memory.frames[0])


def test_a_spilled_video_runs_and_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vdp import api

    frames, _ = make_moving_object_video(num_frames=6, height=40, width=56, seed=2)
    options = api.RunOptions(device="cpu", max_side=32, cache_dir="", optim=api.OptimConfig(num_steps=2))
    results = []
    for stored in (frames, None):
        video = Video(frames=frames, fps=Fraction(24), name="v")
        if stored is None:
            store = FrameStore(40, 56)
            for frame in frames:
                store.append(frame)
            video = Video(frames=store, fps=Fraction(24), name="v")
        result = api.run("dehaze", video, options=options)
        results.append(result.full_resolution(3, video.frames[3])["frames"])
    assert np.array_equal(results[0], results[1])


def test_bad_frames_ram_setting(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    monkeypatch.setenv("VDP_FRAMES_RAM_MB", "lots")
    assert_one_line_error(*cli("segment", str(clip), "-o", str(clip.parent / "out"), *TINY), "VDP_FRAMES_RAM_MB")


def test_parallel_writing_gives_the_same_files_in_order_and_stops_cleanly_on_an_error(tmp_path: Path) -> None:
    from vdp import api, outputs

    frames, _ = make_moving_object_video(num_frames=9, height=40, width=56, seed=4)
    video = Video(frames=frames, fps=Fraction(24), name="v")
    result = api.run("dehaze", video, options=api.RunOptions(device="cpu", max_side=32, cache_dir="",
                                                             optim=api.OptimConfig(num_steps=2)))
    written = {}
    for workers in (1, 3):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        outputs._write_frames(result, video, folder, write_videos=True, frame_progress=None, workers=workers)
        written[workers] = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.png")}
        written[workers]["frames of result.mp4"] = read_video(folder / "result.mp4").frames.tobytes()
    assert written[1] == written[3] and len(written[1]) > 9

    lift = result.full_resolution

    def failing(t: int, frame: np.ndarray) -> dict:
        if t == 5:
            raise RuntimeError("frame 5 cannot be lifted")
        return lift(t, frame)

    result.full_resolution = failing
    with pytest.raises(RuntimeError, match="frame 5"):
        outputs.write_result(result, video, tmp_path / "out")
    assert not (tmp_path / "out" / "v").exists()
    assert not list((tmp_path / "out").iterdir()), "the partial folder is removed"
