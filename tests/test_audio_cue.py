"""The audio cue of `vdp separate --audio-cue`: the layer whose motion keeps time with the
soundtrack's onsets wins. Clips are generated on the spot (benchmarks.clips), two seconds each."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.clips import write_pulsing_blend_clip, write_test_pattern
from vdp.cues.audio import (
    audio_scores,
    lagged_correlation,
    motion_energy,
    onset_envelope,
    rank_layers_by_audio,
    read_audio,
)

FPS = 24
NUM_FRAMES = 48


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Pulsing-blend clips keyed by (sounding_layer, audio_shift_frames)."""
    folder = tmp_path_factory.mktemp("audio_cue")
    made = {}
    for sounding, shift in ((1, 0), (2, 0), (1, 1), (2, -1)):
        made[sounding, shift] = write_pulsing_blend_clip(
            folder / f"blend_{sounding}_{shift}.mp4", num_frames=NUM_FRAMES, fps=FPS, seed=0,
            sounding_layer=sounding, audio_shift_frames=shift,
        )  # fmt: skip
    return made


@pytest.mark.parametrize("sounding", [1, 2])
def test_true_layers_rank_the_sounding_layer_first(clips: dict, sounding: int) -> None:
    clip = clips[sounding, 0]
    assert clip["sounding_layer"] == sounding
    result = rank_layers_by_audio(clip["layers"], clip["path"], FPS)
    assert result["winner"] == sounding - 1
    assert result["envelope_frames"] == NUM_FRAMES
    assert len(result["scores"]) == 2
    assert result["scores"][sounding - 1] > 0.8
    assert result["margin"] > 0.4
    assert result["margin"] == pytest.approx(max(result["scores"]) - min(result["scores"]), abs=1e-5)
    assert "reason" not in result


def test_layers_swap_with_the_blend_order(clips: dict) -> None:
    first, second = clips[1, 0], clips[2, 0]
    assert first["click_frames"] == second["click_frames"]
    np.testing.assert_array_equal(first["layers"][0], second["layers"][1])
    scores = rank_layers_by_audio(first["layers"], first["path"], FPS)["scores"]
    swapped = rank_layers_by_audio(second["layers"], second["path"], FPS)["scores"]
    assert scores == pytest.approx(swapped[::-1], abs=1e-6)


def test_video_without_audio_has_no_winner_and_says_why(tmp_path) -> None:
    path = write_test_pattern(tmp_path / "silent.mp4", "-frames:v", "12", "-pix_fmt", "yuv420p")
    assert read_audio(path) is None
    layers = [np.zeros((12, 48, 64, 3), np.uint8), np.full((12, 48, 64, 3), 9, np.uint8)]
    result = rank_layers_by_audio(layers, path, FPS)
    assert result["winner"] is None
    assert result["scores"] is None
    assert "no audio" in result["reason"]
    assert result["envelope_frames"] == 12


def test_envelope_peaks_at_the_click_frames(clips: dict) -> None:
    clip = clips[1, 0]
    clicks = clip["click_frames"]
    assert 6 <= len(clicks) <= 8
    samples = read_audio(clip["path"], 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size / 16000 - NUM_FRAMES / FPS) < 0.1
    envelope = onset_envelope(samples, 16000, FPS, NUM_FRAMES)
    assert envelope.shape == (NUM_FRAMES,)
    assert abs(float(envelope.mean())) < 1e-4 and float(envelope.std()) == pytest.approx(1.0, abs=1e-4)
    others = np.delete(envelope, clicks)
    assert envelope[clicks].min() > others.max() + 1.0


def test_envelope_of_silence_is_zero() -> None:
    assert not onset_envelope(np.zeros(32000, np.float32), 16000, FPS, NUM_FRAMES).any()
    assert not onset_envelope(np.zeros(0, np.float32), 16000, FPS, NUM_FRAMES).any()


def test_envelope_follows_start_time_and_frame_rate() -> None:
    samples = np.zeros(48000, np.float32)
    burst = np.random.default_rng(0).uniform(-1, 1, 160) * np.exp(-np.arange(160) / 32.0)
    samples[16160:16320] = burst  # a click at 1.01 s
    assert int(np.argmax(onset_envelope(samples, 16000, 30, 60))) == 30
    assert int(np.argmax(onset_envelope(samples, 16000, 60, 120, start_time=0.5))) == 30
    assert int(np.argmax(onset_envelope(samples, 16000, "25", 50))) == 25
    assert int(np.argmax(onset_envelope(samples, 16000, 29.97, 60))) == 30


@pytest.mark.parametrize(("sounding", "shift"), [(1, 1), (2, -1)])
def test_audio_a_frame_off_still_picks_the_sounding_layer(clips: dict, sounding: int, shift: int) -> None:
    clip = clips[sounding, shift]
    result = rank_layers_by_audio(clip["layers"], clip["path"], FPS)
    assert result["winner"] == sounding - 1
    assert result["margin"] > 0.4
    # Positive lags mean the motion trails the sound: audio late by one frame is a lag of -1.
    assert result["lags"][sounding - 1] == -shift
    # Without the lag search the shifted sound no longer lines up with the pulses.
    envelope = onset_envelope(read_audio(clip["path"]), 16000, FPS, NUM_FRAMES)
    energy = motion_energy(clip["layers"][sounding - 1])
    assert lagged_correlation(energy, envelope, max_lag=0)[0] < 0.3
    assert audio_scores(clip["layers"], envelope)[sounding - 1] > 0.8


def test_motion_energy_measures_frame_differences() -> None:
    layer = np.zeros((5, 8, 8, 3), np.uint8)
    layer[3:] = 255
    energy = motion_energy(layer)
    assert energy.dtype == np.float32 and energy.shape == (5,)
    np.testing.assert_allclose(energy, [0, 0, 0, 1, 0], atol=1e-6)
    assert motion_energy(layer[:1]).tolist() == [0.0]
    with pytest.raises(ValueError, match="T, H, W, 3"):
        motion_energy(layer[..., 0])


def test_still_layers_have_no_winner(clips: dict) -> None:
    clip = clips[1, 0]
    still = [np.zeros_like(clip["layers"][0])] * 2
    result = rank_layers_by_audio(still, clip["path"], FPS)
    assert result["winner"] is None
    assert result["scores"] == [0.0, 0.0]
    assert "reason" in result
