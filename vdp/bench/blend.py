"""Layer-separation benchmark on blends of two videos (`vdp synth blend`): permutation-invariant loss.

Layout (written by ``vdp synth blend``, ``vdp.degrade.synthesize_blend``)::

    ROOT/<pair>/blend/%05d.png     the input, round(a * layer1 + (1 - a) * layer2)
    ROOT/<pair>/layer1/%05d.png    the two true layers
    ROOT/<pair>/layer2/%05d.png
    ROOT/recipe.json               optional; gives each pair's true coefficient ``a`` (reported only)

``ROOT`` may also be one pair's folder (holding ``blend/``, ``layer1/``, ``layer2/``). A method is
a *separator*: ``(blend (T, H, W, 3) uint8, item name) -> (list of n >= 2 layers, each
(T, H, W, 3) uint8, info dict)``; it sees the blend only, never the layers nor ``a``.

Score (lower is better): the Visual Centrifuge's permutation-invariant loss
(``vdp.metrics.permutation_invariant_loss``), the sum over the two true layers of
``vdp.metrics.layer_loss`` (L1 on pixels and on their gradients, in [0, 1]) under the best
assignment of outputs to layers, fixed for the whole video; it lies in [0, 2]. Every item is also
scored for the identity baseline (both outputs are the blend), and ``ratio`` = loss / identity
loss (below 1: better than not separating at all).

Per item, ``OUT/<item>/frames.csv`` (per frame: the method's loss, its two layers' shares, the
identity's loss) and ``OUT/<item>/score.json`` (written last: an item with a score.json is
finished and skipped by the next run); with ``save_layers``, the outputs as PNG in
``OUT/<item>/layers/<k>/`` (k = 1.. in the separator's order; ``assignment`` in the score says
which output matched which true layer). A failing item leaves ``OUT/<item>/error.txt`` and the
batch carries on. ``OUT/summary.json`` and ``OUT/items.csv`` gather everything after every item.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vdp.bench.davis import peak_rss_megabytes
from vdp.bench.items import collect_scores, list_item_folders, run_items
from vdp.bench.restoration import read_frames, safe_item_folder
from vdp.errors import VideoInputError
from vdp.metrics import permutation_invariant_loss
from vdp.video import write_png_sequence

logger = logging.getLogger(__name__)

__all__ = [
    "ITEM_FOLDERS",
    "Separator",
    "benchmark_argument_parser",
    "list_items",
    "run_benchmark_command",
    "run_blend_benchmark",
    "summarise",
    "vdp_separator",
]

#: A separator: ((T, H, W, 3) uint8 RGB blend, item name) -> (n >= 2 layers, each (T, H, W, 3)
#: uint8 RGB, info dict).
Separator = Callable[[np.ndarray, str], tuple[list[np.ndarray], dict[str, Any]]]

#: The folders of one item: the blend, then the two true layers.
ITEM_FOLDERS = ("blend", "layer1", "layer2")


# --------------------------------------------------------------------------------------------
# Reading


def list_items(root: Path) -> list[tuple[str, Path]]:
    """The (item name, item folder) of every blend under ``root``, in natural order of names.

    Raises:
        VideoInputError: ``root`` is not a folder, or holds no item.
    """
    return list_item_folders(
        Path(root), ITEM_FOLDERS,
        not_a_folder=f"{root} is not a folder; pass a folder made by `vdp synth blend`",
        no_item=(f"{root} is not a blend benchmark folder: expected {root}/<pair>/blend/, layer1/ and layer2/ (frames "
                 "in each); make one with `vdp synth blend SOURCE OUT`"))


def _true_coefficients(root: Path) -> dict[str, float]:
    """Each pair's ``a`` from ``root/recipe.json`` when there is a blend recipe (else nothing)."""
    try:
        recipe = json.loads((root / "recipe.json").read_text(encoding="utf-8"))
        return {name: float(entry["a"]) for name, entry in recipe["pairs"].items()} if recipe["kind"] == "blend" else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


# --------------------------------------------------------------------------------------------
# Scoring


def _check_layers(layers: Any, shape: tuple[int, ...]) -> list[np.ndarray]:
    if not isinstance(layers, (list, tuple)) or len(layers) < 2:
        got = f"{len(layers)} layer(s)" if isinstance(layers, (list, tuple)) else type(layers).__name__
        raise ValueError(f"the separator must return a list of at least 2 layers; got {got}")
    for index, layer in enumerate(layers):
        if not isinstance(layer, np.ndarray) or layer.dtype != np.uint8 or layer.shape != shape:
            got = f"{layer.dtype} {layer.shape}" if isinstance(layer, np.ndarray) else type(layer).__name__
            raise ValueError(f"the separator's layer {index + 1} must be a {shape} uint8 RGB array; got {got}")
    return list(layers)


def _score_item(
    name: str, folder: Path, temporary: Path, *, separator: Separator, method_name: str,
    limit_frames: int | None, save_layers: bool, coefficient: float | None,
) -> dict[str, Any]:
    blend, layer1, layer2 = (read_frames(folder / sub, limit_frames=limit_frames) for sub in ITEM_FOLDERS)
    if not blend.shape == layer1.shape == layer2.shape:
        raise VideoInputError(
            f"{name}: blend, layer1 and layer2 must hold as many frames of one size; got "
            f"{', '.join(f'{v.shape[0]} of {v.shape[2]}x{v.shape[1]}' for v in (blend, layer1, layer2))}"
        )
    started = time.perf_counter()
    layers, info = separator(blend.copy(), name)  # a copy: the identity figures must see the original
    seconds = time.perf_counter() - started
    layers = _check_layers(layers, blend.shape)
    method = permutation_invariant_loss(layers, (layer1, layer2))
    identity = permutation_invariant_loss([blend, blend], (layer1, layer2))
    with open(temporary / "frames.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "loss", "layer1_loss", "layer2_loss", "identity_loss"])
        for t, (total, (first, second), base) in enumerate(
                zip(method["per_frame"], method["per_frame_layers"], identity["per_frame"])):
            writer.writerow([t, *(f"{v:.6f}" for v in (total, first, second, base))])
    if save_layers:
        for index, layer in enumerate(layers, start=1):
            write_png_sequence(layer, temporary / "layers" / str(index))
    estimated = info.get("coefficient") if isinstance(info, dict) else None
    return {
        "item": name, "method": method_name,
        "loss": method["loss"], "identity_loss": identity["loss"],
        "ratio": method["loss"] / identity["loss"] if identity["loss"] > 0 else None,
        "layer_losses": method["per_layer"], "assignment": method["assignment"], "outputs": len(layers),
        "coefficient": coefficient,
        "coefficient_estimated": float(estimated) if isinstance(estimated, (int, float)) else None,
        "seconds": round(seconds, 3), "frames": int(blend.shape[0]),
        "size": [int(blend.shape[2]), int(blend.shape[1])],  # width, height
        "peak_rss_mb_so_far": round(peak_rss_megabytes(), 1), "info": info,
    }


def run_blend_benchmark(
    root: Path,
    out_dir: Path,
    *,
    separator: Separator,
    method_name: str,
    limit_frames: int | None = None,
    pairs: list[str] | None = None,
    save_layers: bool = False,
    log: Callable[[str], None] | None = None,
    executor=None,
) -> dict[str, Any]:
    """Separate and score every blend; resumable; a failing item is recorded, not fatal.

    Args:
        root: a folder made by ``vdp synth blend`` (see the module docstring).
        out_dir: report folder; items already holding a ``score.json`` are skipped.
        separator: the method under test; it sees only the blend and the item's name.
        method_name: written into every score and the summary.
        limit_frames: score only the first this many frames of each item.
        pairs: item names to score (default: all of ``list_items``).
        save_layers: also keep the output layers as PNG in ``OUT/<item>/layers/<k>/``.
        log: called with one line per item (default: this module's logger, at INFO).

    Returns:
        The summary (also written to ``out_dir/summary.json``).
    """
    root, out_dir = Path(root), Path(out_dir)
    if limit_frames is not None and limit_frames < 1:
        raise VideoInputError(f"limit_frames must be at least 1; got {limit_frames}")
    by_name = dict(list_items(root))
    chosen = list(pairs) if pairs else list(by_name)
    unknown = [name for name in chosen if name not in by_name]
    if unknown:
        raise VideoInputError(f"pair(s) {', '.join(unknown)} not in {root}; available: {', '.join(by_name)}")
    coefficients = _true_coefficients(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or logger.info
    settings = {"method": method_name, "limit_frames": limit_frames}
    return run_items(
        out_dir, chosen,
        lambda name, temporary: _score_item(
            name, by_name[name], temporary, separator=separator, method_name=method_name,
            limit_frames=limit_frames, save_layers=save_layers, coefficient=coefficients.get(name)),
        describe=lambda score: (f"loss {score['loss']:.4f} (identity {score['identity_loss']:.4f}, ratio "
                                f"{score['ratio']:.3f}) ({score['seconds']:.1f}s)"
                                if score["ratio"] is not None else f"loss {score['loss']:.4f}"),
        say=say, summarise=lambda: summarise(out_dir, chosen, settings), folder_of=safe_item_folder,
        executor=executor,
    )


_PER_ITEM = ("loss", "identity_loss", "ratio", "layer_losses", "assignment", "coefficient",
             "coefficient_estimated", "seconds", "frames")


def _rounded(value: float) -> float:
    return round(float(value), 5)


def summarise(out_dir: Path, items: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Gather per-item scores into ``summary.json`` and ``items.csv``.

    Args:
        out_dir: the report folder.
        items: item names, in report order.
        settings: method and frame limit, copied into the summary's ``overall``.

    Returns:
        ``{"overall": ..., "per_item": {name: scores}, "failed": [names]}``. ``overall`` holds,
        over the scored items: ``loss_mean``, ``loss_median``, ``identity_loss_mean``,
        ``ratio_mean`` (mean of the per-item ratios), ``ratio_of_means`` (loss_mean /
        identity_loss_mean), ``median_seconds`` and ``peak_rss_mb``.
    """
    out_dir = Path(out_dir)
    scores, failed = collect_scores(out_dir, items, safe_item_folder)
    overall: dict[str, Any] = {**settings, "items": len(scores), "failed": len(failed)}
    if scores:
        losses = [s["loss"] for s in scores]
        identities = [s["identity_loss"] for s in scores]
        ratios = [s["ratio"] for s in scores if s.get("ratio") is not None]
        overall.update({
            "loss_mean": _rounded(np.mean(losses)),
            "loss_median": _rounded(statistics.median(losses)),
            "identity_loss_mean": _rounded(np.mean(identities)),
            "ratio_mean": _rounded(np.mean(ratios)) if ratios else None,
            "ratio_of_means": _rounded(np.mean(losses) / np.mean(identities)) if np.mean(identities) > 0 else None,
            "median_seconds": round(statistics.median(s["seconds"] for s in scores), 3),
            "peak_rss_mb": round(max(s.get("peak_rss_mb_so_far", 0) for s in scores), 1),
        })
    summary = {"overall": overall, "per_item": {s["item"]: {k: s.get(k) for k in _PER_ITEM} for s in scores},
               "failed": failed}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    columns = ("loss", "identity_loss", "ratio", "layer1_loss", "layer2_loss", "coefficient",
               "coefficient_estimated", "seconds", "frames")
    with open(out_dir / "items.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", *columns])
        for s in scores:
            row = {**s, "layer1_loss": s["layer_losses"][0], "layer2_loss": s["layer_losses"][1]}
            writer.writerow([s["item"], *("" if row.get(k) is None else row[k] for k in columns)])
        for name in failed:
            writer.writerow([name, "failed", *([""] * (len(columns) - 1))])
    return summary


# --------------------------------------------------------------------------------------------
# Command-line glue for the scripts in benchmarks/ (the only functions here that print)


def benchmark_argument_parser(*, description: str) -> argparse.ArgumentParser:
    """The options every blend benchmark script takes; a script adds its own to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path, help="folder made by `vdp synth blend` (<pair>/blend, layer1, layer2)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--limit-frames", type=int, default=None, help="score only the first N frames of each pair")
    parser.add_argument("--pairs", default=None, help="comma-separated item names (default: all)")
    parser.add_argument("--save-layers", action="store_true", help="keep the output layers as PNG")
    return parser


def run_benchmark_command(args: argparse.Namespace, *, separator: Separator, method_name: str) -> int:
    """Run the benchmark for parsed ``args``, progress on stderr, summary as JSON on stdout.

    Returns:
        The exit status: 1 when an item failed, else 0.
    """
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else None
    summary = run_blend_benchmark(
        args.root, args.out, separator=separator, method_name=method_name, limit_frames=args.limit_frames,
        pairs=pairs, save_layers=args.save_layers, log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps(summary, indent=2))
    return 1 if summary["failed"] else 0


def vdp_separator(*, options=None, task_config: Any = None) -> Separator:
    """The `separate` task as a separator: full-resolution layers, streamed from the result.

    Reads ``layers/1``, ``layers/2`` (and ``layers/3``... when ``result.info["num_layers"]`` says
    there are more) from ``result.full_resolution(t, frame)``. The info holds the run's timings,
    ``result.info`` and final losses, and ``coefficient`` when the task reports one in
    ``result.info["coefficient"]`` (the mixing coefficient it learned).
    """
    from fractions import Fraction

    from vdp import api
    from vdp.video import Video

    def separate(frames: np.ndarray, name: str) -> tuple[list[np.ndarray], dict[str, Any]]:
        video = Video(frames=frames, fps=Fraction(24), name=safe_item_folder(name))
        result = api.run("separate", video, config=task_config, options=options or api.RunOptions())
        count = int(result.info.get("num_layers", 2))
        layers = [np.empty_like(frames) for _ in range(count)]
        for t in range(video.num_frames):
            outputs = result.full_resolution(t, frames[t])
            for index, layer in enumerate(layers, start=1):
                layer[t] = outputs[f"layers/{index}"]
        info: dict[str, Any] = {"timings": result.timings, "info": result.info, "final_losses": result.losses}
        if isinstance(result.info.get("coefficient"), (int, float)):
            info["coefficient"] = float(result.info["coefficient"])
        return layers, info

    return separate
