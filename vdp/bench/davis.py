"""DAVIS benchmark: segment each sequence, score J (region IoU) and F (boundary F-measure).

Layout: `ROOT/JPEGImages/480p/<seq>/%05d.jpg`, `ROOT/Annotations/480p/<seq>/%05d.png`.
Per sequence, `OUT/<seq>/frames.csv` (J and F per frame) and `OUT/<seq>/score.json` (written last:
a sequence with a score.json is finished and skipped by the next run). `OUT/summary.json` and
`OUT/sequences.csv` gather everything, failures included, after every sequence.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vdp import metrics
from vdp.bench.items import collect_scores, run_items
from vdp.errors import VideoInputError

logger = logging.getLogger(__name__)

#: A segmenter: (frames folder, sequence name) -> (list of (H, W) bool masks, info dict).
Segmenter = Callable[[Path, str], tuple[list[np.ndarray], dict[str, Any]]]


def list_sequences(root: Path) -> list[str]:
    images = root / "JPEGImages" / "480p"
    if not images.is_dir():
        raise VideoInputError(
            f"{root} is not a DAVIS folder: expected {images} (and Annotations/480p beside it)"
        )
    return sorted(p.name for p in images.iterdir() if p.is_dir())


def read_annotations(root: Path, sequence: str) -> list[np.ndarray]:
    """Ground-truth masks (H, W) bool of one sequence (any non-zero label is foreground)."""
    folder = root / "Annotations" / "480p" / sequence
    files = sorted(folder.glob("*.png"))
    if not files:
        raise VideoInputError(f"no annotations in {folder}")
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) > 0 for f in files]


def peak_rss_megabytes() -> float:
    """Peak resident memory of this process since the item started (`vdp.parallel.peak_memory_mb`)."""
    from vdp.parallel import peak_memory_mb

    return peak_memory_mb()


def vdp_segmenter(*, options, task_config: Any = None, save_to: Path | None = None) -> Segmenter:
    """The `segment` task as a segmenter (masks lifted to full resolution frame by frame)."""
    from vdp import api

    def segment(frames_folder: Path, sequence: str) -> tuple[list[np.ndarray], dict[str, Any]]:
        video = api.load_video(frames_folder)
        result = api.run("segment", video, config=task_config, options=options)
        masks = [result.full_resolution(t, video.frames[t])["masks"] > 0 for t in range(video.num_frames)]
        if save_to is not None:
            api.save(result, video, save_to, overwrite=True)
        return masks, {"timings": result.timings, "info": result.info, "final_losses": result.losses}

    return segment


def run_davis_benchmark(
    root: Path,
    out_dir: Path,
    *,
    options=None,
    task_config: Any = None,
    sequences: list[str] | None = None,
    segmenter: Segmenter | None = None,
    method_name: str = "vdp segment",
    save_outputs: bool = False,
    log: Callable[[str], None] | None = None,
    executor=None,
) -> dict[str, Any]:
    """Run and score every sequence; resumable; a failing sequence is recorded, not fatal.

    Returns:
        The summary (also written to `out_dir/summary.json`).
    """
    root, out_dir = Path(root), Path(out_dir)
    available = list_sequences(root)
    chosen = sequences or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise VideoInputError(f"sequence(s) {', '.join(unknown)} not in {root}; available: {', '.join(available)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if segmenter is None:
        from vdp.api import RunOptions

        segmenter = vdp_segmenter(options=options or RunOptions(), task_config=task_config,
                                  save_to=out_dir / "outputs" if save_outputs else None)
    say = log or (lambda line: None)
    def score_sequence(sequence: str, folder: Path) -> dict[str, Any]:
        started = time.perf_counter()
        gts = read_annotations(root, sequence)
        masks, details = segmenter(root / "JPEGImages" / "480p" / sequence, sequence)
        if len(masks) != len(gts):
            raise RuntimeError(f"{len(masks)} masks for {len(gts)} annotated frames")
        scores = metrics.score_sequence(masks, gts)  # every annotated frame
        per_frame = zip(scores["j_per_frame"], scores["f_per_frame"])
        with open(folder / "frames.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frame", "J", "F"])
            writer.writerows([[t, f"{j:.5f}", f"{f:.5f}"] for t, (j, f) in enumerate(per_frame)])
        return {"sequence": sequence, "method": method_name, "J": scores["j_mean"],
                "F": scores["f_mean"], "J_davis2016": scores["j_mean_davis2016"],
                "F_davis2016": scores["f_mean_davis2016"], "frames": scores["num_frames"],
                "seconds": round(time.perf_counter() - started, 2),
                "peak_rss_mb_so_far": round(peak_rss_megabytes(), 1), **details}

    return run_items(out_dir, chosen, score_sequence, describe=lambda s: f"J {s['J']:.3f} F {s['F']:.3f} ({s['seconds']:.0f}s)",
                     say=say, summarise=lambda: summarise(out_dir, chosen, method_name), executor=executor)


def summarise(out_dir: Path, sequences: list[str], method_name: str) -> dict[str, Any]:
    """Gather per-sequence scores into `summary.json` and `sequences.csv`."""
    scores, failed = collect_scores(out_dir, sequences)
    overall: dict[str, Any] = {"method": method_name, "sequences": len(scores), "failed": len(failed)}
    if scores:
        overall.update({
            "J_mean": round(float(np.mean([s["J"] for s in scores])), 4),
            "F_mean": round(float(np.mean([s["F"] for s in scores])), 4),
            # The DAVIS-2016 toolkits' protocol (first and last frame left out); absent from scores
            # written before it was recorded.
            **({"J_mean_davis2016": round(float(np.mean([s["J_davis2016"] for s in scores])), 4),
                "F_mean_davis2016": round(float(np.mean([s["F_davis2016"] for s in scores])), 4)}
               if all("J_davis2016" in s for s in scores) else {}),
            "median_seconds": round(statistics.median(s["seconds"] for s in scores), 1),
            "peak_rss_mb": round(max(s.get("peak_rss_mb_so_far", 0) for s in scores), 1),
        })
    keys = ("J", "F", "J_davis2016", "F_davis2016", "seconds", "frames")
    summary = {"overall": overall, "per_sequence": {s["sequence"]: {k: s[k] for k in keys if k in s} for s in scores},
               "failed": failed}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out_dir / "sequences.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sequence", "J", "F", "J_davis2016", "F_davis2016", "seconds", "frames"])
        for s in scores:
            inner = [f"{s[k]:.4f}" if k in s else "" for k in ("J_davis2016", "F_davis2016")]
            writer.writerow([s["sequence"], f"{s['J']:.4f}", f"{s['F']:.4f}", *inner, s["seconds"], s["frames"]])
        for sequence in failed:
            writer.writerow([sequence, "failed", "", "", "", "", ""])
    return summary
