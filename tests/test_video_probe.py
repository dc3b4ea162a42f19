"""Tests for vdp.video.probe: exact frame rates, and what ffmpeg finds in a file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vdp.errors import ConfigError
from vdp.video import write_mp4
from vdp.video.probe import as_fraction, probe_file


@pytest.mark.parametrize("given, exact", [
    (29.97, Fraction(30000, 1001)),
    (23.976, Fraction(24000, 1001)),
    (59.94, Fraction(60000, 1001)),
    (25.0, Fraction(25)),
    (24, Fraction(24)),
    ("30000/1001", Fraction(30000, 1001)),
    (Fraction(12, 1), Fraction(12)),
])
def test_frame_rates_become_exact_fractions(given: float | int | str | Fraction, exact: Fraction) -> None:
    assert as_fraction(given) == exact


@pytest.mark.parametrize("given", [0, -24, "fast", float("nan"), None])
def test_bad_frame_rates_are_refused(given: object) -> None:
    with pytest.raises(ConfigError, match="fps"):
        as_fraction(given)


def test_probe_reports_rate_size_duration_and_no_audio(tmp_path: Path, smooth_frames: np.ndarray) -> None:
    write_mp4(smooth_frames, tmp_path / "clip.mp4", fps=Fraction(30000, 1001))

    probe = probe_file(tmp_path / "clip.mp4")

    assert probe.opened and probe.has_video and not probe.has_audio and probe.audio_codec is None
    assert probe.fps == Fraction(30000, 1001)
    assert probe.size == (47, 33)
    assert probe.expected_frames() == 10
