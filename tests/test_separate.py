"""The `separate` task: layer motions from a blend, the solve, outputs, the audio cue, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest

from vdp import api
from vdp.cues.layer_motion import layer_translations
from vdp.example_clip import make_transparent_blend
from vdp.metrics import permutation_invariant_loss
from vdp.optimize import OptimConfig
from vdp.video import Video


def _separate(blend: np.ndarray, *, steps: int, **config) -> tuple[list[np.ndarray], dict]:
    video = Video(frames=blend, fps=Fraction(24), name="blend")
    options = api.RunOptions(cache_dir="", optim=OptimConfig(num_steps=steps))
    result = api.run("separate", video, config=config, options=options)
    n = result.info["num_layers"]
    layers = [np.stack([result.full_resolution(t, blend[t])[f"layers/{k + 1}"] for t in range(len(blend))])
              for k in range(n)]
    return layers, result.info


def test_phase_correlation_finds_each_layers_shift():
    velocities = ((1.5, 0.5), (-1.0, 1.25))
    blend, _, _ = make_transparent_blend(num_frames=6, height=96, width=128, seed=3, velocities=velocities)
    # Shifts 2.6 px apart per frame: correlating frames 3 apart keeps their peaks apart.
    shifts = layer_translations(blend, 2, gap=3).mean(axis=0)  # (2, 2): content moves by -velocity
    found = sorted(map(tuple, np.round(-shifts, 1)))
    for (fx, fy), (vx, vy) in zip(found, sorted(velocities)):
        assert abs(fx - vx) < 0.35 and abs(fy - vy) < 0.35, (found, velocities)


@pytest.mark.parametrize("seed", [0, 1])
def test_separation_beats_identity_and_the_fit_earns_its_keep(seed):
    blend, layer1, layer2 = make_transparent_blend(seed=seed)
    identity = permutation_invariant_loss([blend, blend], (layer1, layer2))["loss"]
    prior, _ = _separate(blend, steps=0)
    prior_loss = permutation_invariant_loss(prior, (layer1, layer2))["loss"]
    fitted, info = _separate(blend, steps=40)
    loss = permutation_invariant_loss(fitted, (layer1, layer2))["loss"]
    # --steps 0 is the identity: every layer is the input.
    assert prior_loss == pytest.approx(identity, rel=1e-3)
    # Two textures moving differently (2.5 and 2 px per frame, in different directions) come
    # apart: a wide margin over the identity (measured 0.44 of it).
    assert loss < 0.6 * identity, (loss, identity)
    # The layers recompose the input (up to rounding) with the coefficient found.
    a = info["coefficient"]
    recomposed = a * fitted[0].astype(np.float32) + (1 - a) * fitted[1].astype(np.float32)
    assert np.abs(recomposed - blend).mean() < 2.0


def test_more_hypotheses_keep_the_most_dissimilar_pair_first():
    blend, _, _ = make_transparent_blend(seed=2)
    layers, info = _separate(blend, steps=20, layers=3)
    assert len(layers) == 3 and info["num_layers"] == 3
    assert len(info["mixing"]) == 3 and sum(info["mixing"]) == pytest.approx(1.0, abs=1e-3)
    difference = lambda i, j: float(np.abs(layers[i].astype(np.float32) - layers[j]).mean())
    assert difference(0, 1) >= max(difference(0, 2), difference(1, 2))


def test_mixing_map_option_runs_and_recomposes():
    blend, _, _ = make_transparent_blend(seed=4, num_frames=8)
    layers, info = _separate(blend, steps=10, mixing_map=True)
    assert info["mixing_kind"] == "map" and len(layers) == 2


def _run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vdp.cli", *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def test_cli_writes_layers_preview_and_audio_layer(tmp_path):
    from benchmarks.clips import write_pulsing_blend_clip

    clip = write_pulsing_blend_clip(tmp_path / "pulse.mp4", num_frames=36, seed=1, sounding_layer=2)
    run = _run_cli("separate", str(clip["path"]), "-o", str(tmp_path / "out"), "--steps", "40", "--audio-cue",
                   "--cache-dir", "", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = tmp_path / "out" / "pulse"
    metrics = json.loads((result / "metrics.json").read_text())
    height, width = clip["layers"][0].shape[1:3]
    for name in ("layers/1", "layers/2", "layers/audio"):
        frames = sorted((result / name).glob("*.png"))
        assert len(frames) == 36
        assert cv2.imread(str(frames[0])).shape == (height, width, 3)
        assert (result / f"{name}.mp4").is_file()
    assert cv2.imread(str(min((result / "preview").glob("*.png")))).shape == (height, 3 * width, 3)
    assert 0 < metrics["info"]["coefficient"] < 1
    cue = metrics["info"]["audio_cue"]
    assert cue["winner"] in (1, 2) and len(cue["scores"]) == 2
    # The layer the sound picked is the output whose motion follows the true sounding layer's (the
    # pulsing disc), more than the other output's does.
    from vdp.cues.audio import motion_energy

    read = lambda name: np.stack([cv2.imread(str(f))[:, :, ::-1] for f in sorted((result / name).glob("*.png"))])
    truth = motion_energy(clip["layers"][clip["sounding_layer"] - 1])
    follows = {k: float(np.corrcoef(motion_energy(read(f"layers/{k}")), truth)[0, 1]) for k in (1, 2)}
    assert follows[cue["winner"]] > follows[3 - cue["winner"]] + 0.2, (follows, cue)


@pytest.mark.parametrize("option, value, expected", [
    ("--layers", "1", "--layers must be 2 or more"),
    ("--mixing", "1.5", "--mixing must be strictly between 0 and 1"),
])
def test_bad_options_get_one_clear_line(tmp_path, option, value, expected):
    blend, _, _ = make_transparent_blend(num_frames=4)
    from vdp.video import write_png_sequence

    write_png_sequence(blend, tmp_path / "clip")
    run = _run_cli("separate", str(tmp_path / "clip"), "-o", str(tmp_path / "out"), option, value, cwd=tmp_path)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], run.stderr
    assert not (tmp_path / "out").exists()
