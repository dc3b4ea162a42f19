"""Restoration benchmarks on paired videos (REVIDE dehazing, SDSD low-light): PSNR, SSIM, flicker.

Layouts (docs/method.md §3):

- ``revide``: ``ROOT/hazy/<video>/<frames>`` and ``ROOT/gt/<video>/<frames>``. ``ROOT`` may also
  be the dataset folder holding exactly one split (``ROOT/Test/hazy``, ...); with several splits,
  pass the one to score.
- ``sdsd``: ``ROOT/input/<pair>/*.npy`` and ``ROOT/GT/<pair>/*.npy`` (``ROOT`` is ``indoor_np``,
  ``outdoor_np``, or a ``*_png`` variant with PNG frames), or a parent holding those folders; then
  items are named ``indoor_np/<pair>``, ``outdoor_np/<pair>``. When a parent holds both the
  ``_np`` and the ``_png`` copy of the same scenes, only the ``_np`` one is listed (the format the
  published numbers were measured on), so no scene counts twice; pass the ``_png`` folder itself
  to score that copy.

Folder names are matched case-insensitively (``gt``/``GT``). Frames are read in natural order
(``2.png`` before ``10.png``).

Per item, ``OUT/<item>/frames.csv`` (PSNR and SSIM per frame, of the output and of the untouched
input) and ``OUT/<item>/score.json`` (written last: an item with a score.json is finished and
skipped by the next run). A failing item leaves ``OUT/<item>/error.txt`` and the batch carries
on. ``OUT/summary.json`` and ``OUT/items.csv`` gather everything after every item. Item names
with a slash (``indoor_np/pair3``) are stored in ``OUT/indoor_np__pair3``.

Conventions:

- PSNR and SSIM are computed on the restorer's uint8 output against the ground truth, both as
  float in [0, 1] (lossless: never from re-encoded video), per frame, then averaged per item, then
  over items. PSNR of identical frames is capped at ``PSNR_CAP_DB`` (100 dB) so means stay finite.
- Temporal consistency (lower is better): the mean absolute difference, in [0, 1], between
  output frame t and output frame t+1 warped back onto frame t with the forward DIS flow
  t -> t+1, over pixels that are not occluded, averaged over frame pairs. The flow (and the
  occlusion check) is computed on the ground truth, not on the output, so every method is
  measured along the same motion; the ground truth's own figure is the floor.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from vdp.bench.davis import peak_rss_megabytes
from vdp.bench.items import collect_scores, run_items
from vdp.errors import VideoInputError
from vdp.flow import compute_flow
from vdp.metrics import psnr, ssim
from vdp.video import write_png_sequence
from vdp.video.read import list_frame_files, natural_sort_key, to_rgb_uint8
from vdp.warp import backward_warp, forward_backward_occlusion

logger = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "PSNR_CAP_DB",
    "Restorer",
    "benchmark_argument_parser",
    "list_pairs",
    "read_frames",
    "run_benchmark_command",
    "run_restoration_benchmark",
    "safe_item_folder",
    "summarise",
    "temporal_consistencies",
]

#: A restorer: ((T, H, W, 3) uint8 RGB input, item name) -> ((T, H, W, 3) uint8 RGB output, info dict).
Restorer = Callable[[np.ndarray, str], tuple[np.ndarray, dict[str, Any]]]

LAYOUTS = ("revide", "sdsd")

#: PSNR of identical frames is infinite; it is reported as this many dB instead, so that means
#: over frames and items stay finite and the JSON stays valid.
PSNR_CAP_DB = 100.0

#: Channel order of SDSD ``.npy`` frames. The SDSD authors' loaders (and SNR-Aware's, built on
#: them) read each file with ``np.load``, describe it as "HWC, BGR", and reorder ``[2, 1, 0]`` to
#: RGB: the arrays were saved in OpenCV's order. PSNR and SSIM averaged over channels do not
#: depend on it, but saved frames, flow (grayscale weights) and colour-aware methods do.
SDSD_NPY_CHANNEL_ORDER = "bgr"

_SDSD_PARENT_FOLDERS = (("indoor_np", "indoor_png"), ("outdoor_np", "outdoor_png"))


# --------------------------------------------------------------------------------------------
# Reading


def _child_folder(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name``, compared case-insensitively (exact first)."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    matches = [entry for entry in parent.iterdir() if entry.is_dir() and entry.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _subfolders(folder: Path) -> list[Path]:
    entries = [entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith(".")]
    return sorted(entries, key=lambda entry: (natural_sort_key(entry.name), entry.name))


def _pairs_in(base: Path, input_name: str, gt_name: str, prefix: str = "") -> list[tuple[str, Path, Path]]:
    """Every ``base/<input>/<video>`` with its ``base/<gt>/<video>`` (which may be missing: that
    item then fails when it is scored, and the failure says so)."""
    inputs, gts = _child_folder(base, input_name), _child_folder(base, gt_name)
    assert inputs is not None and gts is not None  # checked by the callers
    pairs = [(f"{prefix}{video.name}", video, gts / video.name) for video in _subfolders(inputs)]
    unpaired = sorted({g.name for g in _subfolders(gts)} - {v.name for v in _subfolders(inputs)})
    if unpaired:
        logger.warning("%s: ground truth without input, ignored: %s", gts, ", ".join(unpaired))
    return pairs


def _has_both(folder: Path, input_name: str, gt_name: str) -> bool:
    return _child_folder(folder, input_name) is not None and _child_folder(folder, gt_name) is not None


def _revide_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    if _has_both(root, "hazy", "gt"):
        return _pairs_in(root, "hazy", "gt")
    splits = [folder for folder in _subfolders(root) if _has_both(folder, "hazy", "gt")]
    if len(splits) == 1:
        logger.info("REVIDE: using the split folder %s", splits[0])
        return _pairs_in(splits[0], "hazy", "gt")
    if splits:
        raise VideoInputError(
            f"{root} holds several REVIDE splits ({', '.join(s.name for s in splits)}); pass the one "
            f"to score, e.g. {splits[-1]}"
        )
    raise VideoInputError(
        f"{root} is not a REVIDE folder: expected {root / 'hazy'} and {root / 'gt'} (one sub-folder "
        "of frames per video in each), or a split folder such as Test/ holding them"
    )


def _sdsd_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    if _has_both(root, "input", "GT"):
        return _pairs_in(root, "input", "GT")
    pairs: list[tuple[str, Path, Path]] = []
    for preferred, alternative in _SDSD_PARENT_FOLDERS:
        for name in (preferred, alternative):
            folder = _child_folder(root, name)
            if folder is not None and _has_both(folder, "input", "GT"):
                pairs += _pairs_in(folder, "input", "GT", prefix=f"{name}/")
                break  # the same scenes in the other format would count twice
    if not pairs:
        raise VideoInputError(
            f"{root} is not an SDSD folder: expected {root / 'input'} and {root / 'GT'} (one sub-folder "
            "of frames per pair in each), or a folder holding indoor_np/ and outdoor_np/ (or their "
            "_png variants) laid out that way"
        )
    return pairs


def list_pairs(root: Path, layout: str) -> list[tuple[str, Path, Path]]:
    """The (item name, input folder, ground-truth folder) of every video pair under ``root``.

    Args:
        root: dataset folder, as described in this module's docstring.
        layout: ``'revide'`` or ``'sdsd'``.

    Returns:
        Pairs in natural order of their names.

    Raises:
        VideoInputError: ``root`` does not have the layout, or holds several REVIDE splits.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise VideoInputError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise VideoInputError(f"{root} is not a folder; pass the {layout.upper()} dataset folder")
    return _revide_pairs(root) if layout == "revide" else _sdsd_pairs(root)


def _npy_files(folder: Path) -> list[Path]:
    files = [e for e in folder.iterdir() if e.is_file() and not e.name.startswith(".") and e.suffix.lower() == ".npy"]
    return sorted(files, key=lambda entry: (natural_sort_key(entry.name), entry.name))


def _float_scale(files: list[Path]) -> float:
    """255 when float .npy frames are in [0, 1] (their maximum over the whole video is at most 1),
    else 1 (float in [0, 255], or integer frames).

    Decided per video, not per frame, so a nearly black frame stored in [0, 255] is not
    mistaken for one in [0, 1].
    """
    if not np.issubdtype(np.load(files[0], mmap_mode="r").dtype, np.floating):
        return 1.0
    peak = max(float(np.nanmax(np.load(file, mmap_mode="r"))) for file in files)
    return 255.0 if peak <= 1.0 else 1.0


def _npy_to_rgb_uint8(array: np.ndarray, *, scale: float, channel_order: str, source: str) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.rint(np.nan_to_num(array.astype(np.float32) * scale)), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint16 and np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise VideoInputError(f"{source}: integer pixels outside [0, 255] ({array.min()}..{array.max()})")
        array = array.astype(np.uint8)
    return to_rgb_uint8(array, channel_order=channel_order, source=source)


def read_frames(
    folder: Path, *, limit_frames: int | None = None, npy_channel_order: str = SDSD_NPY_CHANNEL_ORDER
) -> np.ndarray:
    """The frames of one video folder: images (read with OpenCV) or ``.npy`` arrays.

    Args:
        folder: a folder of image files (.png, .jpg, ...) or of ``.npy`` frames, natural order.
        limit_frames: read only the first this many frames (the SDSD protocol scores the first 30).
        npy_channel_order: channel order of 3-channel ``.npy`` frames, ``'bgr'`` (SDSD, see
            ``SDSD_NPY_CHANNEL_ORDER``) or ``'rgb'``. ``.npy`` frames may be (H, W, 3) or (H, W)
            uint8, uint16, or float in [0, 1] or [0, 255] (see ``_float_scale``).

    Returns:
        (T, H, W, 3) uint8 RGB.

    Raises:
        VideoInputError: no frames, unreadable frames, or frames of different sizes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoInputError(f"expected a folder of frames at {folder}; it does not exist")
    if limit_frames is not None and limit_frames < 1:
        raise VideoInputError(f"limit_frames must be at least 1; got {limit_frames}")
    images, arrays = list_frame_files(folder), _npy_files(folder)
    if images and arrays:
        raise VideoInputError(
            f"{folder} mixes image files and .npy frames; keep one kind per folder"
        )
    files = (images or arrays)[:limit_frames]
    if not files:
        raise VideoInputError(f"no frames (.png, .jpg, ... or .npy) in {folder}")
    scale = _float_scale(files) if arrays else 1.0
    frames: np.ndarray | None = None
    for index, file in enumerate(files):
        if arrays:
            frame = _npy_to_rgb_uint8(np.load(file), scale=scale, channel_order=npy_channel_order, source=str(file))
        else:
            image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise VideoInputError(f"OpenCV could not decode {file}; re-export it or remove it")
            frame = to_rgb_uint8(image, channel_order="bgr", source=str(file))
        if frames is None:
            frames = np.empty((len(files), *frame.shape), dtype=np.uint8)
        elif frame.shape != frames.shape[1:]:
            raise VideoInputError(
                f"{file.name} is {frame.shape[1]}x{frame.shape[0]} but {files[0].name} is "
                f"{frames.shape[2]}x{frames.shape[1]} (WxH), in {folder}; all frames must match"
            )
        frames[index] = frame
    assert frames is not None
    return frames


# --------------------------------------------------------------------------------------------
# Temporal consistency


def _check_video(frames: np.ndarray, name: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"{name} must be a (T, H, W, 3) uint8 RGB array; got {got}")


def temporal_consistencies(videos: Mapping[str, np.ndarray], reference: np.ndarray,
                           regions: np.ndarray | None = None) -> dict[str, float]:
    """Flow-warped frame-to-frame error of several videos along the motion of ``reference``.

    Frame t+1 of each video is warped onto its frame t with the DIS flow t -> t+1 of ``reference``,
    and the mean absolute difference over pixels that are not occluded (forward-backward check)
    and stay inside the frame is averaged over pairs; ``reference`` against itself is the floor.
    The flow is computed once per pair of reference frames (two frames at a time, so memory
    stays at one pair's worth at any resolution) and used for every video.

    Args:
        videos: name -> (T, H, W, 3) uint8 RGB, each the shape of ``reference``.
        reference: (T, H, W, 3) uint8 RGB whose motion is followed (the ground truth).
        regions: optional (T, H, W) bool; pair (t, t+1) is measured only at the pixels of
            ``regions[t]`` (e.g. where an object was removed).

    Returns:
        name -> mean absolute error in [0, 1] (lower is steadier); NaN when T < 2 or no pixel is
        ever visible in both frames of a pair.
    """
    _check_video(reference, "reference")
    for name, frames in videos.items():
        _check_video(frames, name)
        if frames.shape != reference.shape:
            raise ValueError(f"{name} is {frames.shape} but the reference is {reference.shape}")
    height, width = reference.shape[1:3]
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                torch.arange(width, dtype=torch.float32), indexing="ij")
    errors: dict[str, list[float]] = {name: [] for name in videos}
    for t in range(reference.shape[0] - 1):
        field = compute_flow(reference[t:t + 2], method="dis")
        forward = torch.from_numpy(field.forward).permute(0, 3, 1, 2)
        backward = torch.from_numpy(field.backward).permute(0, 3, 1, 2)
        occluded = forward_backward_occlusion(forward, backward)[0, 0] > 0.5
        # Pixels whose match falls outside frame t+1 are not occluded by the check above, but
        # border padding would compare them with the wrong pixel.
        target_x, target_y = cols + forward[0, 0], rows + forward[0, 1]
        outside = (target_x < 0) | (target_x > width - 1) | (target_y < 0) | (target_y > height - 1)
        valid = ~(occluded | outside)
        if regions is not None:
            valid &= torch.from_numpy(np.asarray(regions[t], dtype=bool))
        count = int(valid.sum())
        if count == 0:
            continue
        for name, frames in videos.items():
            pair = torch.from_numpy(frames[t:t + 2]).permute(0, 3, 1, 2).float() / 255.0
            warped = backward_warp(pair[1:], forward)[0]
            difference = (pair[0] - warped).abs().mean(dim=0)
            errors[name].append(float(difference[valid].sum()) / count)
    return {name: float(np.mean(values)) if values else math.nan for name, values in errors.items()}


# --------------------------------------------------------------------------------------------
# Benchmark


def safe_item_folder(name: str) -> str:
    """Folder name of an item: ``indoor_np/pair3`` -> ``indoor_np__pair3``."""
    return name.replace("/", "__").replace("\\", "__")


def _capped_psnr(pred: np.ndarray, target: np.ndarray) -> float:
    return min(psnr(pred, target), PSNR_CAP_DB)


def _frame_scores(frames: np.ndarray, gt: np.ndarray) -> tuple[list[float], list[float]]:
    psnrs, ssims = [], []
    for frame, target in zip(frames, gt):
        frame_float, target_float = frame.astype(np.float32) / 255.0, target.astype(np.float32) / 255.0
        psnrs.append(_capped_psnr(frame_float, target_float))
        ssims.append(ssim(frame_float, target_float))
    return psnrs, ssims


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _score_item(
    name: str, input_dir: Path, gt_dir: Path, temporary: Path, *, restorer: Restorer, method_name: str,
    limit_frames: int | None, save_frames: bool,
) -> dict[str, Any]:
    if not gt_dir.is_dir():
        raise VideoInputError(f"no ground-truth folder for {name}: expected {gt_dir}")
    inputs = read_frames(input_dir, limit_frames=limit_frames)
    gt = read_frames(gt_dir, limit_frames=limit_frames)
    if inputs.shape != gt.shape:
        raise VideoInputError(
            f"{name}: input {input_dir} has {inputs.shape[0]} frames of {inputs.shape[2]}x{inputs.shape[1]} "
            f"but ground truth {gt_dir} has {gt.shape[0]} of {gt.shape[2]}x{gt.shape[1]}; they must match"
        )
    started = time.perf_counter()
    output, info = restorer(inputs.copy(), name)  # a copy: the input figures must see the original
    seconds = time.perf_counter() - started
    if not isinstance(output, np.ndarray) or output.dtype != np.uint8 or output.shape != inputs.shape:
        got = f"{output.dtype} {output.shape}" if isinstance(output, np.ndarray) else type(output).__name__
        raise ValueError(f"the restorer must return a {inputs.shape} uint8 RGB array; got {got}")
    psnrs, ssims = _frame_scores(output, gt)
    input_psnrs, input_ssims = _frame_scores(inputs, gt)
    consistency = temporal_consistencies({"output": output, "input": inputs, "gt": gt}, gt)
    with open(temporary / "frames.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "psnr", "ssim", "input_psnr", "input_ssim"])
        for t, values in enumerate(zip(psnrs, ssims, input_psnrs, input_ssims)):
            writer.writerow([t, *(f"{v:.5f}" for v in values)])
    if save_frames:
        write_png_sequence(output, temporary / "frames")
    return {
        "item": name, "method": method_name,
        "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
        "input_psnr": float(np.mean(input_psnrs)), "input_ssim": float(np.mean(input_ssims)),
        "tc_output": _json_number(consistency["output"]), "tc_input": _json_number(consistency["input"]),
        "tc_gt": _json_number(consistency["gt"]),
        # The output's temporal error relative to the ground truth's own: a restoration that
        # raises contrast raises the raw measure, so 1 (not the input's value) is the target.
        "tc_ratio": _json_number(consistency["output"] / consistency["gt"]) if consistency["gt"] > 0 else None,
        "seconds": round(seconds, 3), "frames": int(inputs.shape[0]),
        "size": [int(inputs.shape[2]), int(inputs.shape[1])],  # width, height
        "peak_rss_mb_so_far": round(peak_rss_megabytes(), 1), "info": info,
    }


def run_restoration_benchmark(
    root: Path,
    out_dir: Path,
    *,
    layout: str,
    restorer: Restorer,
    method_name: str,
    limit_frames: int | None = None,
    pairs: list[str] | None = None,
    save_frames: bool = False,
    log: Callable[[str], None] | None = None,
    executor=None,
) -> dict[str, Any]:
    """Restore and score every video pair; resumable; a failing item is recorded, not fatal.

    Args:
        root: dataset folder (see the module docstring for the layouts).
        out_dir: report folder; items already holding a ``score.json`` are skipped.
        layout: ``'revide'`` or ``'sdsd'``.
        restorer: the method under test; it sees only the input frames and the item's name.
        method_name: written into every score and the summary.
        limit_frames: score only the first this many frames of each pair (SDSD protocol: 30).
        pairs: item names to score (default: all of ``list_pairs``).
        save_frames: also keep the output frames as PNG in ``OUT/<item>/frames/``.
        log: called with one line per item (default: this module's logger, at INFO).

    Returns:
        The summary (also written to ``out_dir/summary.json``).
    """
    root, out_dir = Path(root), Path(out_dir)
    available = list_pairs(root, layout)
    by_name = {name: (input_dir, gt_dir) for name, input_dir, gt_dir in available}
    chosen = list(pairs) if pairs else list(by_name)
    unknown = [name for name in chosen if name not in by_name]
    if unknown:
        raise VideoInputError(f"pair(s) {', '.join(unknown)} not in {root}; available: {', '.join(by_name)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or logger.info
    settings = {"method": method_name, "layout": layout, "limit_frames": limit_frames}
    return run_items(
        out_dir, chosen,
        lambda name, folder: _score_item(
            name, *by_name[name], folder, restorer=restorer, method_name=method_name,
            limit_frames=limit_frames, save_frames=save_frames),
        describe=lambda score: (f"PSNR {score['psnr']:.2f} (input {score['input_psnr']:.2f}) SSIM {score['ssim']:.3f} "
                                f"(input {score['input_ssim']:.3f}) ({score['seconds']:.1f}s)"),
        say=say, summarise=lambda: summarise(out_dir, chosen, settings), folder_of=safe_item_folder,
        executor=executor,
    )


_MEANS = ("psnr", "ssim", "input_psnr", "input_ssim", "tc_output", "tc_input", "tc_gt", "tc_ratio")
_PER_ITEM = (*_MEANS, "seconds", "frames")


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 5) if finite else None


def summarise(out_dir: Path, items: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """Gather per-item scores into ``summary.json`` and ``items.csv``.

    Args:
        out_dir: the report folder.
        items: item names, in report order.
        settings: method, layout and frame limit, copied into the summary's ``overall``.

    Returns:
        ``{"overall": ..., "per_item": {name: scores}, "failed": [names]}``; means are over
        the scored items (temporal consistency over those where it is defined).
    """
    out_dir = Path(out_dir)
    scores, failed = collect_scores(out_dir, items, safe_item_folder)
    overall: dict[str, Any] = {**settings, "items": len(scores), "failed": len(failed)}
    if scores:
        overall.update({key: _mean([s.get(key) for s in scores]) for key in _MEANS})  # get: older scores
        overall["median_seconds"] = round(statistics.median(s["seconds"] for s in scores), 3)
        overall["peak_rss_mb"] = round(max(s.get("peak_rss_mb_so_far", 0) for s in scores), 1)
    summary = {"overall": overall, "per_item": {s["item"]: {k: s.get(k) for k in _PER_ITEM} for s in scores},
               "failed": failed}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out_dir / "items.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", *_PER_ITEM])
        for s in scores:
            writer.writerow([s["item"], *("" if s.get(k) is None else s[k] for k in _PER_ITEM)])
        for name in failed:
            writer.writerow([name, "failed", *([""] * (len(_PER_ITEM) - 1))])
    return summary


# --------------------------------------------------------------------------------------------
# Command-line glue for the scripts in benchmarks/ (the only functions here that print)


def benchmark_argument_parser(*, description: str, root_help: str) -> argparse.ArgumentParser:
    """The options every restoration benchmark script takes; a script adds its own to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path, help=root_help)
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--limit-frames", type=int, default=None,
                        help="score only the first N frames of each pair (the SDSD protocol uses 30)")
    parser.add_argument("--pairs", default=None, help="comma-separated item names (default: all)")
    parser.add_argument("--save-frames", action="store_true", help="keep the output frames as PNG")
    return parser


def run_benchmark_command(args: argparse.Namespace, *, layout: str, restorer: Restorer, method_name: str) -> int:
    """Run the benchmark for parsed ``args``, progress on stderr, summary as JSON on stdout.

    Returns:
        The exit status: 1 when an item failed, else 0.
    """
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else None
    summary = run_restoration_benchmark(
        args.root, args.out, layout=layout, restorer=restorer, method_name=method_name,
        limit_frames=args.limit_frames, pairs=pairs, save_frames=args.save_frames,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps(summary, indent=2))
    return 1 if summary["failed"] else 0


def vdp_restorer(task_name: str, *, options=None, task_config: Any = None) -> Restorer:
    """A vdp task (`dehaze`, `relight`) as a restorer: full-resolution frames, streamed from the result."""
    from fractions import Fraction

    from vdp import api
    from vdp.video import Video

    def restore(frames: np.ndarray, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        video = Video(frames=frames, fps=Fraction(24), name=safe_item_folder(name))
        result = api.run(task_name, video, config=task_config, options=options or api.RunOptions())
        restored = np.empty_like(frames)
        for t in range(video.num_frames):
            restored[t] = result.full_resolution(t, frames[t])["frames"]
        return restored, {"timings": result.timings, "info": result.info, "final_losses": result.losses}

    return restore
