"""Layer separation: the permutation-invariant loss, `vdp synth blend`, the blend bench, the median baseline.

Tiny clips are made in memory (no ../shared data); separators are fakes that know the answer.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from vdp.bench.blend import list_items, run_blend_benchmark
from vdp.bench.restoration import read_frames
from vdp.degrade import (
    BLEND_RANDOM_RANGE,
    blend_frame,
    parse_size,
    read_recipe,
    synthesize_blend,
)
from vdp.errors import ConfigError, VideoInputError
from vdp.example_clip import make_moving_object_video
from vdp.metrics import layer_loss, layer_loss_per_frame, permutation_invariant_loss
from vdp.video import write_png_sequence

HEIGHT, WIDTH = 24, 32
LENGTHS = {"bear": 5, "camel": 6, "cows": 4}
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def vdp_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vdp.cli", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def one_error_line(completed: subprocess.CompletedProcess) -> str:
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert completed.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), completed.stderr
    return lines[0]


def stripes() -> tuple[np.ndarray, np.ndarray]:
    """Layer 1: columns alternating 0 / 200; layer 2: flat 100. Two frames of 4x6."""
    layer1 = np.zeros((2, 4, 6, 3), np.uint8)
    layer1[:, :, 1::2] = 200
    return layer1, np.full_like(layer1, 100)


# --------------------------------------------------------------------------------------------
# The loss


def test_layer_loss_by_hand() -> None:
    u = np.array([[[0.0], [1.0], [0.0]], [[0.0], [0.0], [0.0]]])[None]  # one 2x3 frame, one channel
    v = np.zeros_like(u)
    # pixels 1/6; x differences [1, -1, 0, 0] -> 1/2; y differences [0, -1, 0] -> 1/3
    assert layer_loss(u, v) == pytest.approx((1 / 6 + (1 / 2 + 1 / 3) / 2) / 2)  # 7/24
    flat = np.full((3, 4, 5, 3), 51, np.uint8)
    np.testing.assert_allclose(layer_loss_per_frame(flat, np.zeros_like(flat)), [0.1, 0.1, 0.1])  # pixels only
    with pytest.raises(ValueError, match="frames"):
        layer_loss(flat, flat[:2])
    with pytest.raises(ValueError, match="differ"):
        layer_loss(flat, flat[:, :3])


def test_perfect_and_swapped_outputs_score_zero() -> None:
    layer1, layer2 = stripes()
    perfect = permutation_invariant_loss([layer1, layer2], (layer1, layer2))
    assert perfect["loss"] == 0 and perfect["assignment"] == [0, 1]
    swapped = permutation_invariant_loss([layer2, layer1], (layer1, layer2))
    assert swapped["loss"] == 0 and swapped["assignment"] == [1, 0]
    assert swapped["per_frame"] == [0.0, 0.0]


def test_identity_on_a_50_50_blend_by_hand() -> None:
    layer1, layer2 = stripes()
    blend = np.stack([blend_frame(a, b, 0.5) for a, b in zip(layer1, layer2)])
    assert set(np.unique(blend)) == {50, 150}
    result = permutation_invariant_loss([blend, blend], (layer1, layer2))
    # Each layer: pixels |0-50| = |200-150| = 50 -> 50/255; x gradients differ by 100 -> 100/255,
    # y gradients by 0, so the gradient term is 50/255; the layer's loss (50 + 50) / 2 / 255.
    assert result["per_layer"] == pytest.approx([50 / 255, 50 / 255])
    assert result["loss"] == pytest.approx(100 / 255)
    assert result["per_frame"] == pytest.approx([100 / 255] * 2)


def test_more_outputs_pick_the_best_pair() -> None:
    layer1, layer2 = stripes()
    offset = (layer1 + 10).astype(np.uint8)  # a flat 10 off: pixels 10/255, gradients exact
    noise = np.random.default_rng(0).integers(0, 256, layer1.shape).astype(np.uint8)
    result = permutation_invariant_loss([noise, layer2, offset], (layer1, layer2))
    assert result["assignment"] == [2, 1]
    assert result["loss"] == pytest.approx(10 / 255 / 2)
    assert np.array(result["matrix"]).shape == (2, 3)
    with pytest.raises(ValueError, match="at least two"):
        permutation_invariant_loss([layer1], (layer1, layer2))


# --------------------------------------------------------------------------------------------
# vdp synth blend


def make_source(root: Path) -> Path:
    """``root/src/<name>/%05d.png``: three moving-object clips of different lengths (24x32)."""
    for seed, (name, length) in enumerate(LENGTHS.items()):
        frames, _ = make_moving_object_video(num_frames=length, height=HEIGHT, width=WIDTH, seed=seed)
        write_png_sequence(frames, root / "src" / name)
    return root / "src"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path)


@pytest.fixture
def blends(source: Path, tmp_path: Path) -> Path:
    synthesize_blend(source, tmp_path / "blends")
    return tmp_path / "blends"


def test_synth_blend_layout_recipe_and_mix(source: Path, blends: Path) -> None:
    recipe = read_recipe(blends)
    assert recipe["kind"] == "blend" and recipe["coefficient"] == 0.5
    assert list(recipe["pairs"]) == ["bear+camel", "bear+cows", "camel+cows"]
    assert [name for name, _ in list_items(blends)] == list(recipe["pairs"])
    for item, entry in recipe["pairs"].items():
        first, second = item.split("+")
        assert entry["names"] == [first, second] and entry["a"] == 0.5
        assert entry["frames"] == min(LENGTHS[first], LENGTHS[second])
        assert [entry["width"], entry["height"]] == [WIDTH, HEIGHT]
        assert entry["sources"] == [str((source / first).resolve()), str((source / second).resolve())]
        blend, layer1, layer2 = (read_frames(blends / item / sub) for sub in ("blend", "layer1", "layer2"))
        assert blend.shape == (entry["frames"], HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(layer1, read_frames(source / first)[:entry["frames"]])
        np.testing.assert_array_equal(layer2, read_frames(source / second)[:entry["frames"]])
        expected = np.rint(0.5 * layer1.astype(np.float64) + 0.5 * layer2.astype(np.float64))
        np.testing.assert_array_equal(blend, expected.astype(np.uint8))
    # A second run is refused, then replaces the pairs when asked to.
    with pytest.raises(ConfigError, match="overwrite"):
        synthesize_blend(source, blends)
    again = synthesize_blend(source, blends, limit_frames=2, overwrite=True)
    assert all(entry["frames"] == 2 for entry in again["pairs"].values())
    assert len(list((blends / "bear+camel" / "blend").iterdir())) == 2


def test_synth_blend_random_coefficient_and_size(source: Path, tmp_path: Path) -> None:
    recipe = synthesize_blend(source, tmp_path / "a", coefficient="random", size=(40, 20), seed=3)
    coefficients = [entry["a"] for entry in recipe["pairs"].values()]
    assert all(BLEND_RANDOM_RANGE[0] <= a <= BLEND_RANDOM_RANGE[1] for a in coefficients)
    assert len(set(coefficients)) == 3 and recipe["coefficient"] == "random"
    # Same seed, same coefficients (the recipe names no output folder, so it is the same).
    assert synthesize_blend(source, tmp_path / "b", coefficient="random", size=(40, 20), seed=3) == recipe
    item = tmp_path / "a" / "camel+cows"
    a = recipe["pairs"]["camel+cows"]["a"]
    blend, layer1, layer2 = (read_frames(item / sub) for sub in ("blend", "layer1", "layer2"))
    assert blend.shape == (4, 20, 40, 3)
    expected = np.rint(a * layer1.astype(np.float64) + (1 - a) * layer2.astype(np.float64))
    np.testing.assert_array_equal(blend, expected.astype(np.uint8))
    assert parse_size("224x128") == (224, 128)


def test_synth_blend_refuses_bad_input(source: Path, tmp_path: Path) -> None:
    for coefficient in (0.0, 1.0, 1.5, float("nan"), "half", True):
        with pytest.raises(ConfigError, match="coefficient"):
            synthesize_blend(source, tmp_path / "out", coefficient=coefficient)
    with pytest.raises(ConfigError, match="not both"):
        synthesize_blend(source, tmp_path / "out", size=(32, 32), max_side=32)
    with pytest.raises(ConfigError, match="size"):
        synthesize_blend(source, tmp_path / "out", size=(8, 32))
    with pytest.raises(VideoInputError, match="at least two videos"):
        synthesize_blend(source / "bear", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_synth_blend_command(source: Path, tmp_path: Path) -> None:
    completed = vdp_cli("synth", "blend", str(source), str(tmp_path / "out"), "--size", "40x20",
                        "--coefficient", "random", "--limit-frames", "3")
    assert completed.returncode == 0, completed.stderr
    assert "3 pair(s) written" in completed.stdout
    recipe = json.loads((tmp_path / "out" / "recipe.json").read_text())
    assert recipe["size"] == [40, 20] and recipe["limit_frames"] == 3
    assert len(list((tmp_path / "out" / "bear+cows" / "layer2").iterdir())) == 3


@pytest.mark.parametrize("arguments, message", [
    (["--coefficient", "1.5"], "coefficient must be a number strictly between 0 and 1"),
    (["--coefficient", "half"], "--coefficient expects a number strictly between 0 and 1"),
    (["--size", "224"], "--size expects WIDTHxHEIGHT"),
    (["--size", "224x128", "--max-side", "64"], "not both"),
    (["ONE"], "at least two videos"),
])
def test_synth_blend_bad_input_is_one_error_line(source: Path, tmp_path: Path, arguments: list[str],
                                                 message: str) -> None:
    src = source / "bear" if arguments == ["ONE"] else source
    completed = vdp_cli("synth", "blend", str(src), str(tmp_path / "out"), *[a for a in arguments if a != "ONE"])
    assert message in one_error_line(completed)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# The bench


def true_layers(root: Path):
    def separate(blend: np.ndarray, name: str) -> tuple[list[np.ndarray], dict]:
        layers = [read_frames(root / name / sub, limit_frames=len(blend)) for sub in ("layer2", "layer1")]
        return layers, {"coefficient": 0.5}

    return separate


def test_bench_perfect_and_identity(blends: Path, tmp_path: Path) -> None:
    summary = run_blend_benchmark(blends, tmp_path / "perfect", separator=true_layers(blends), method_name="oracle",
                                  save_layers=True)
    assert summary["failed"] == [] and summary["overall"]["items"] == 3
    score = json.loads((tmp_path / "perfect" / "bear+camel" / "score.json").read_text())
    assert score["loss"] == 0 and score["ratio"] == 0 and score["assignment"] == [1, 0]
    assert score["identity_loss"] > 0.01 and score["coefficient"] == 0.5 and score["coefficient_estimated"] == 0.5
    assert score["frames"] == 5 and score["size"] == [WIDTH, HEIGHT]
    assert len(list((tmp_path / "perfect" / "bear+camel" / "layers" / "2").glob("*.png"))) == 5
    with open(tmp_path / "perfect" / "bear+cows" / "frames.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and float(rows[0]["loss"]) == 0 and float(rows[0]["identity_loss"]) > 0

    summary = run_blend_benchmark(blends, tmp_path / "identity", separator=lambda blend, name: ([blend, blend], {}),
                                  method_name="identity", limit_frames=3)
    overall = summary["overall"]
    assert overall["ratio_mean"] == 1 and overall["ratio_of_means"] == 1
    assert overall["loss_mean"] == overall["identity_loss_mean"] > 0
    assert summary["per_item"]["camel+cows"]["frames"] == 3
    assert (tmp_path / "identity" / "items.csv").read_text().count("\n") == 4


def test_bench_resumes_and_records_failures(blends: Path, tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def separator(blend: np.ndarray, name: str) -> tuple[list[np.ndarray], dict]:
        calls[name] = calls.get(name, 0) + 1
        if name == "bear+cows":
            raise RuntimeError("separator exploded")
        if name == "camel+cows":
            return [blend], {}  # one layer only
        return [blend, blend], {}

    out = tmp_path / "report"
    summary = run_blend_benchmark(blends, out, separator=separator, method_name="m")
    assert summary["failed"] == ["bear+cows", "camel+cows"] and summary["overall"]["items"] == 1
    assert "separator exploded" in (out / "bear+cows" / "error.txt").read_text()
    assert "at least 2 layers" in (out / "camel+cows" / "error.txt").read_text()
    assert not list(out.glob(".*.partial"))
    summary = run_blend_benchmark(blends, out, separator=separator, method_name="m", pairs=["bear+camel", "bear+cows"])
    assert calls == {"bear+camel": 1, "bear+cows": 2, "camel+cows": 1}  # bear+camel was finished: skipped
    assert summary["failed"] == ["bear+cows"]
    with pytest.raises(VideoInputError, match="not in"):
        run_blend_benchmark(blends, out, separator=separator, method_name="m", pairs=["nope"])
    with pytest.raises(VideoInputError, match="vdp synth blend"):
        run_blend_benchmark(tmp_path, out, separator=separator, method_name="m")


# --------------------------------------------------------------------------------------------
# The median baseline (benchmarks/blend_median_baseline.py)


def load_baseline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_blend_median_baseline",
                                                  BENCHMARKS / "blend_median_baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def panning_texture(num_frames: int = 8, shift: int = 2, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: a smooth random texture panning right by ``shift`` px a frame."""
    rng = np.random.default_rng(4)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (height, width + shift * num_frames, 3)).astype(np.float32),
                               (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 20, 235, cv2.NORM_MINMAX)
    frames = [texture[:, shift * (num_frames - t):shift * (num_frames - t) + width] for t in range(num_frames)]
    return np.rint(np.stack(frames)).astype(np.uint8)


def test_baseline_aligns_the_dominant_motion() -> None:
    baseline = load_baseline()
    frames = panning_texture()
    chain = baseline.chained_homographies(frames)
    np.testing.assert_allclose(chain[3][:2, 2], [6.0, 0.0], atol=0.5)  # 2 px a frame to the right
    median = baseline.aligned_median(frames, chain, 4, window=3)
    inner = (slice(6, -6), slice(10, -10))
    assert np.abs(median[inner] - frames[4][inner].astype(np.float32)).mean() < 2.0
    first, second = baseline.separate_frames(frames, window=3)
    assert first.shape == second.shape == frames.shape and first.dtype == np.uint8


def test_baseline_script_writes_the_report(blends: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    baseline = load_baseline()
    out = tmp_path / "median"
    assert baseline.main([str(blends), "-o", str(out), "--window", "2", "--pairs", "bear+camel,camel+cows"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["items"] == 2 and summary["overall"]["method"] == baseline.METHOD_NAME
    assert summary["overall"]["loss_mean"] > 0 and (out / "items.csv").is_file()
    assert json.loads((out / "bear+camel" / "score.json").read_text())["info"]["window"] == 2
    # A broken item (layer 2 shorter than the blend) is recorded and the exit status says so.
    (blends / "bear+cows" / "layer2" / "00003.png").unlink()
    assert baseline.main([str(blends), "-o", str(out), "--window", "2"]) == 1
    assert "frames" in (out / "bear+cows" / "error.txt").read_text()


def test_vdp_separator_reads_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from vdp import api
    from vdp.bench.blend import vdp_separator

    def fake_run(task_name, video, *, config=None, options=None):
        assert task_name == "separate" and video.name == "bear+camel" and config == {"x": 1}
        return SimpleNamespace(
            info={"num_layers": 3, "coefficient": 0.4}, timings={"total": 1.0}, losses={"total": 0.1},
            full_resolution=lambda t, frame: {"layers/1": frame, "layers/2": 255 - frame,
                                              "layers/3": np.full_like(frame, t)})

    monkeypatch.setattr(api, "run", fake_run)
    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 10, 3)).astype(np.uint8)
    layers, info = vdp_separator(task_config={"x": 1})(frames, "bear+camel")
    assert len(layers) == 3 and info["coefficient"] == 0.4 and info["timings"] == {"total": 1.0}
    np.testing.assert_array_equal(layers[0], frames)
    np.testing.assert_array_equal(layers[1], 255 - frames)
    assert layers[2][:, 0, 0, 0].tolist() == [0, 1, 2]


def test_bench_blend_command_with_a_fake_separator(blends: Path, tmp_path: Path) -> None:
    completed = vdp_cli("bench", "blend", "--help")
    assert completed.returncode == 0, completed.stderr
    for option in ("--steps", "--device", "--max-side", "--limit-frames", "--pairs", "--save-layers"):
        assert option in completed.stdout, option
    # `vdp bench blend` as a user runs it, the task replaced by a separator that fails on one pair.
    probe = (
        "import sys\n"
        "import vdp.bench.blend as blend\n"
        "def fake(**kwargs):\n"
        "    def separate(frames, name):\n"
        "        if name == 'bear+cows':\n"
        "            raise RuntimeError('fake separator failed')\n"
        "        return [frames, frames], {}\n"
        "    return separate\n"
        "blend.vdp_separator = fake\n"
        "from vdp.cli import main\n"
        f"sys.argv = ['vdp', 'bench', 'blend', {str(blends)!r}, '-o', {str(tmp_path / 'out')!r}, '--limit-frames', '3']\n"
        "main()\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                               check=False)
    assert completed.returncode == 1, completed.stderr
    assert "1 item(s) failed: bear+cows" in completed.stderr
    overall = json.loads(completed.stdout)
    assert overall["items"] == 2 and overall["ratio_mean"] == 1 and overall["method"] == "vdp separate"
    assert "fake separator failed" in (tmp_path / "out" / "bear+cows" / "error.txt").read_text()
