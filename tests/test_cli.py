"""The command line, through the real entry point (`python -m vdp.cli`), as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vdp
from vdp.example_clip import make_moving_object_video
from vdp.video import read_video, write_mp4

NUM_FRAMES = 6
TINY_RUN = ["--steps", "2", "--objectness", "off", "--max-side", "64", "--cache-dir", "", "--device", "cpu"]


def vdp_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vdp.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_version_is_printed() -> None:
    # Speed is checked without a clock: the next test shows that --version imports neither torch nor cv2.
    completed = vdp_cli("--version", timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"vdp {vdp.__version__}"


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_do_not_import_heavy_modules(flag: str) -> None:
    # --help lists every task command: their summaries are read from the plugins' source, not imported.
    probe = (
        "import sys\n"
        f"sys.argv = ['vdp', '{flag}']\n"
        "from vdp.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('heavy:', ','.join(name for name in ('torch', 'cv2') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[-1] == "heavy: "
    assert lines[0] == f"vdp {vdp.__version__}" if flag == "--version" else "segment" in completed.stdout


def test_tasks_lists_segment() -> None:
    completed = vdp_cli("tasks")
    assert completed.returncode == 0, completed.stderr
    names = [line.split()[0] for line in completed.stdout.splitlines() if line.strip()]
    assert "segment" in names


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`vdp segment` run once on a tiny mp4: (the output folder given with -o, the finished process)."""
    folder = tmp_path_factory.mktemp("cli")
    frames, _ = make_moving_object_video(num_frames=NUM_FRAMES, height=40, width=56, seed=5)
    write_mp4(frames, folder / "clip.mp4", fps=Fraction(24))
    out = folder / "out"
    completed = vdp_cli("segment", str(folder / "clip.mp4"), "-o", str(out), *TINY_RUN)
    return out, completed


def test_segment_writes_the_documented_layout(segmented: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, completed = segmented
    assert completed.returncode == 0, completed.stderr
    result = out / "clip"
    assert completed.stdout.strip() == str(result)

    for name in ("masks", "alpha", "layers/foreground", "layers/background", "overlay"):
        files = sorted((result / name).glob("*.png"))
        assert [f.name for f in files] == [f"{t:05d}.png" for t in range(NUM_FRAMES)], name

    with Image.open(result / "masks" / "00000.png") as mask:
        assert mask.mode == "P"
        assert mask.size == (56, 40)
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1}
    with Image.open(result / "alpha" / "00000.png") as alpha:
        assert alpha.mode == "L" and alpha.size == (56, 40)
    with Image.open(result / "layers" / "foreground" / "00000.png") as foreground:
        assert foreground.mode == "RGBA" and foreground.size == (56, 40)

    preview = read_video(result / "preview.mp4")
    assert preview.num_frames == NUM_FRAMES
    assert (preview.height, preview.width) == (40, 56)

    config = json.loads((result / "config.json").read_text())
    assert config["task"] == "segment"
    assert config["task_config"]["objectness"] == "off"
    assert config["options"]["max_side"] == 64 and config["options"]["optim"]["num_steps"] == 2
    metrics = json.loads((result / "metrics.json").read_text())
    assert metrics["task"] == "segment"
    assert metrics["video"]["num_frames"] == NUM_FRAMES
    assert metrics["info"]["steps"] == 2
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "no temporary folder is left behind"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_second_run_needs_overwrite_and_keeps_the_first_result(
    segmented: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, first = segmented
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    completed = vdp_cli("segment", str(out.parent / "clip.mp4"), "-o", str(out), *TINY_RUN)
    assert completed.returncode == 2
    assert "--overwrite" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert snapshot(out) == before


def test_missing_input_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-video.mp4"
    completed = vdp_cli("segment", str(missing), "-o", str(tmp_path / "out"), *TINY_RUN)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error:") and "no-such-video" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, extra, map_folder, key", [
    ("dehaze", ["--airlight", "0.8,0.82,0.85"], "transmission", "airlight"),
    ("relight", ["--gamma-init", "0.85"], "illumination", "gamma_g"),
])
def test_restoration_commands_write_video_frames_and_maps(
    tmp_path: Path, command: str, extra: list[str], map_folder: str, key: str
) -> None:
    frames, _ = make_moving_object_video(num_frames=NUM_FRAMES, height=40, width=56, seed=6)
    write_mp4((frames // 3).astype(np.uint8), tmp_path / "clip.mp4", fps=Fraction(30000, 1001))
    run = ["--steps", "2", "--max-side", "48", "--cache-dir", "", "--device", "cpu"]
    completed = vdp_cli(command, str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out"), *run, *extra)
    assert completed.returncode == 0, completed.stderr
    result = tmp_path / "out" / "clip"
    assert len(list((result / "frames").glob("*.png"))) == NUM_FRAMES
    assert len(list((result / map_folder).glob("*.png"))) == NUM_FRAMES
    video = read_video(result / "result.mp4")
    assert video.num_frames == NUM_FRAMES and (video.height, video.width) == (40, 56)
    assert video.fps == Fraction(30000, 1001)
    metrics = json.loads((result / "metrics.json").read_text())
    assert key in metrics["info"]


def test_bad_airlight_is_a_one_line_error(tmp_path: Path) -> None:
    frames, _ = make_moving_object_video(num_frames=3, height=24, width=32, seed=1)
    write_mp4(frames, tmp_path / "clip.mp4", fps=Fraction(24))
    completed = vdp_cli("dehaze", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "out"), "--airlight", "0.8,0.9")
    assert completed.returncode == 2
    assert "--airlight" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize("bench, task_option", [("davis", "--objectness"), ("revide", "--airlight"),
                                                ("sdsd", "--gamma-init")])
def test_benches_take_the_run_options_and_their_task_options(bench: str, task_option: str) -> None:
    completed = vdp_cli("bench", bench, "--help")
    assert completed.returncode == 0, completed.stderr
    for option in ("--perceptual", "--steps", "--device", "--max-side", task_option):
        assert option in completed.stdout, option


def test_synth_lowlight_gamma_range(tmp_path: Path) -> None:
    frames, _ = make_moving_object_video(num_frames=2, height=24, width=32, seed=2)
    write_mp4(frames, tmp_path / "clip.mp4", fps=Fraction(24))
    completed = vdp_cli("synth", "lowlight", "--help", timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "--gamma-range" in completed.stdout and "0.8,1.2" in completed.stdout
    completed = vdp_cli("synth", "lowlight", str(tmp_path / "clip.mp4"), str(tmp_path / "out"),
                        "--gamma-range", "1.5,1.5")
    assert completed.returncode == 0, completed.stderr
    recipe = json.loads((tmp_path / "out" / "recipe.json").read_text())
    assert recipe["gamma_range"] == [1.5, 1.5] and recipe["videos"]["clip"]["gamma"] == 1.5


@pytest.mark.parametrize("value, message", [
    ("1.2", "--gamma-range expects 2 float values separated by commas, e.g. 1.2,2.5; got '1.2'"),
    ("1.2,x", "--gamma-range expects 2 float values separated by commas"),
    ("0.6,1.2,2.5", "--gamma-range expects 2 float values separated by commas"),
    ("2.5,1.2", "0 < low <= high <= 5"),
])
def test_synth_lowlight_bad_gamma_range_is_a_one_line_error(tmp_path: Path, value: str, message: str) -> None:
    write_mp4(np.zeros((2, 24, 32, 3), np.uint8), tmp_path / "clip.mp4", fps=Fraction(24))
    completed = vdp_cli("synth", "lowlight", str(tmp_path / "clip.mp4"), str(tmp_path / "out"),
                        f"--gamma-range={value}")
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], completed.stderr
    assert not (tmp_path / "out").exists()
