"""The segment task's read-out rule: which of the two layers is the foreground."""

from __future__ import annotations

import numpy as np

from vdp_tasks.segment import border_coverage


def test_small_object_touching_the_border_stays_foreground() -> None:
    # A 2%-area object that touches the left border in every frame (the DAVIS kite-surf case).
    alpha = np.zeros((4, 40, 60), np.float32)
    alpha[:, 10:16, 0:8] = 1.0
    assert alpha.mean() < 0.05
    assert border_coverage(alpha) < 0.5
    assert border_coverage(1.0 - alpha) > 0.5


def test_border_coverage_is_the_mean_border_opacity() -> None:
    alpha = np.zeros((1, 5, 5), np.float32)
    alpha[0, 0, :] = 1.0  # top row: 5 of the 20 border samples (corners counted twice: 4 + 4 + 6)
    # border samples: top 5, bottom 5, left 5, right 5 = 20; ones: top row 5, plus left[0], right[0]
    assert np.isclose(border_coverage(alpha), 7 / 20)
