"""Object-removal benchmark on composites with a known answer (`vdp synth composite`).

Layout (written by ``vdp synth composite``, ``vdp.degrade.synthesize_composite``)::

    ROOT/<item>/composite/%05d.png   the input: an object pasted on another video
    ROOT/<item>/background/%05d.png  the clean frames (the answer)
    ROOT/<item>/mask/%05d.png        the pasted object's mask (0/255)

``ROOT`` may also be one item's folder. A method is a *remover*: ``(composite (T, H, W, 3) uint8,
masks (T, H, W) bool or None, item name) -> (output (T, H, W, 3) uint8, info dict)``. With masks
it only fills (the true masks: fill quality alone); with None it finds the object itself (the
whole pipeline as users run it). Each item is scored in both modes (``masks``: "true", "own").

Scores, per mode (``vdp.bench.remove.score_removal``):
- ``psnr_region`` (pooled over every pixel of the object's region in every frame) and
  ``ssim_region`` (the SSIM map averaged over the region, then over frames): the fill itself;
- ``psnr_frame``, ``ssim_frame``: per frame over the whole frame, averaged;
- ``tc_ratio``: the output's flow-warped frame-to-frame error inside the region (along the clean
  video's own motion) over the clean video's own error there; 1 is as steady as the real scene,
  above 1 flicker.

Per item ``OUT/<item>/score.json`` (written last; a finished item is skipped by the next run),
with ``save_frames`` the outputs as PNG in ``OUT/<item>/<mode>/``; a failure leaves
``OUT/<item>/error.txt`` and the batch carries on. ``OUT/summary.json`` and ``OUT/items.csv``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vdp.bench.davis import peak_rss_megabytes
from vdp.bench.items import collect_scores, list_item_folders, run_items
from vdp.bench.restoration import read_frames, safe_item_folder, temporal_consistencies
from vdp.errors import VideoInputError
from vdp.metrics import region_ssim, ssim
from vdp.video import write_png_sequence

#: The folders of one item: the input, the answer, the object's mask.
ITEM_FOLDERS = ("composite", "background", "mask")
#: The two ways an item is run: with the true masks, and with the masks the method finds itself.
MODES = ("true", "own")
#: Remover: (composite, masks or None, item name) -> (output, info).
Remover = Callable[[np.ndarray, "np.ndarray | None", str], tuple[np.ndarray, dict[str, Any]]]


def list_items(root: Path) -> list[tuple[str, Path]]:
    """(item name, folder) of every composite under ``root``, in natural order.

    Raises:
        VideoInputError: ``root`` is not a folder or holds no item.
    """
    return list_item_folders(
        Path(root), ITEM_FOLDERS,
        not_a_folder=f"{root} is not a folder; pass a folder made by `vdp synth composite`",
        no_item=(f"{root} is not a removal benchmark folder: expected {root}/<item>/composite/, background/ and mask/ "
                 "(frames in each); make one with `vdp synth composite DAVIS_ROOT OUT`"))


def _psnr_pooled(output: np.ndarray, clean: np.ndarray, region: np.ndarray) -> float:
    if not region.any():
        return math.nan
    error = float(np.mean((output[region].astype(np.float64) - clean[region].astype(np.float64)) ** 2))
    return 99.0 if error == 0 else 10.0 * math.log10(255.0**2 / error)


def score_removal(output: np.ndarray, clean: np.ndarray, region: np.ndarray) -> dict[str, float | None]:
    """Scores of a removal against the clean frames (see the module docstring).

    Args:
        output, clean: (T, H, W, 3) uint8.
        region: (T, H, W) bool, where the object was.
    """
    if output.shape != clean.shape or region.shape != clean.shape[:3]:
        raise ValueError(f"output {output.shape}, clean {clean.shape} and region {region.shape} must match")
    frame_psnrs, frame_ssims, region_ssims = [], [], []
    for t in range(clean.shape[0]):
        a, b = output[t].astype(np.float32) / 255.0, clean[t].astype(np.float32) / 255.0
        frame_psnrs.append(_psnr_pooled(output[t], clean[t], np.ones(region.shape[1:], bool)))
        frame_ssims.append(ssim(a, b))
        if region[t].any():
            region_ssims.append(region_ssim(a, b, region[t]))
    consistency = temporal_consistencies({"output": output, "clean": clean}, clean, regions=region)

    def number(value: float) -> float | None:
        return None if value is None or not math.isfinite(value) else round(float(value), 5)

    return {
        "psnr_region": number(_psnr_pooled(output, clean, region)),
        "ssim_region": number(np.mean(region_ssims)) if region_ssims else None,
        "psnr_frame": number(np.mean([p for p in frame_psnrs if math.isfinite(p)])),
        "ssim_frame": number(np.mean(frame_ssims)),
        "tc_region_output": number(consistency["output"]),
        "tc_region_clean": number(consistency["clean"]),
        "tc_ratio": number(consistency["output"] / consistency["clean"]) if consistency["clean"] > 0 else None,
    }


def _score_item(folder: Path, name: str, temporary: Path, remover: Remover, *, method_name: str,
                modes: tuple[str, ...], limit_frames: int | None, save_frames: bool) -> dict[str, Any]:
    from vdp.editing import read_mask_folder

    composite = read_frames(folder / "composite", limit_frames=limit_frames)
    clean = read_frames(folder / "background", limit_frames=limit_frames)
    if composite.shape != clean.shape:
        raise VideoInputError(f"{folder}: composite/ is {composite.shape} but background/ is {clean.shape}")
    num_frames, height, width = composite.shape[:3]
    region = read_mask_folder(folder / "mask", num_frames, (height, width), what=f"{folder}/mask", extra_ok=True)
    score: dict[str, Any] = {"item": name, "method": method_name, "frames": num_frames, "size": [width, height],
                             "region_fraction": round(float(region.mean()), 5)}
    for mode in modes:
        started = time.perf_counter()
        output, info = remover(composite, region if mode == "true" else None, name)
        seconds = time.perf_counter() - started
        if not isinstance(output, np.ndarray) or output.shape != composite.shape or output.dtype != np.uint8:
            raise ValueError(f"the remover must return a {composite.shape} uint8 array; got "
                             f"{getattr(output, 'dtype', type(output).__name__)} {getattr(output, 'shape', '')}")
        score[mode] = {**score_removal(output, clean, region), "seconds": round(seconds, 3), "info": info}
        if save_frames:
            write_png_sequence(output, temporary / mode)
    score["peak_rss_mb_so_far"] = round(peak_rss_megabytes(), 1)
    return score


_SUMMARY_KEYS = ("psnr_region", "ssim_region", "psnr_frame", "ssim_frame", "tc_ratio", "seconds")


def summarise(out_dir: Path, items: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    """``summary.json`` and ``items.csv`` from the finished items: per mode, the mean of every
    score over items (``seconds``: the median), and the peak memory."""
    scores, failed = collect_scores(out_dir, items, safe_item_folder)
    overall: dict[str, Any] = {**settings, "items": len(scores), "failed": len(failed)}
    for mode in MODES:
        rows = [s[mode] for s in scores if mode in s]
        if not rows:
            continue
        entry = {}
        for key in _SUMMARY_KEYS:
            values = [r[key] for r in rows if r.get(key) is not None]
            if values:
                entry[key] = round(statistics.median(values) if key == "seconds" else float(np.mean(values)), 4)
        overall[mode] = entry
    if scores:
        overall["peak_rss_mb"] = max(s.get("peak_rss_mb_so_far", 0) for s in scores)
    summary = {"overall": overall,
               "per_item": {s["item"]: {m: {k: s[m].get(k) for k in _SUMMARY_KEYS} for m in MODES if m in s}
                            for s in scores},
               "failed": failed}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out_dir / "items.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "masks", *_SUMMARY_KEYS])
        for s in scores:
            for mode in MODES:
                if mode in s:
                    writer.writerow([s["item"], mode, *("" if s[mode].get(k) is None else s[mode][k] for k in _SUMMARY_KEYS)])
        for name in failed:
            writer.writerow([name, "failed", *([""] * len(_SUMMARY_KEYS))])
    return summary


def run_remove_benchmark(root: Path, out_dir: Path, *, remover: Remover, method_name: str,
                         modes: tuple[str, ...] = MODES, limit_frames: int | None = None,
                         items: list[str] | None = None, save_frames: bool = False,
                         log: Callable[[str], None] | None = None, executor=None) -> dict[str, Any]:
    """Run a remover over every composite (resumable; failures recorded) and summarise.

    Raises:
        VideoInputError: the folder is not a composite set, or ``items`` names unknown items.
        ValueError: an unknown mode.
    """
    unknown_modes = [m for m in modes if m not in MODES]
    if unknown_modes or not modes:
        raise ValueError(f"masks must be among {', '.join(MODES)}; got {', '.join(modes) or 'none'}")
    found = dict(list_items(Path(root)))
    if items is not None:
        missing = [name for name in items if name not in found]
        if missing:
            raise VideoInputError(f"no item {', '.join(missing)} in {root}; it has {', '.join(found)}")
        found = {name: found[name] for name in items}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(found)
    settings = {"method": method_name, "limit_frames": limit_frames, "masks": list(modes)}
    say = log or (lambda line: None)

    def describe(score: dict[str, Any]) -> str:
        return "; ".join(f"{m} masks: PSNR in region {score[m]['psnr_region']}, tc ratio {score[m]['tc_ratio']}, "
                         f"{score[m]['seconds']:.0f}s" for m in modes if m in score)

    return run_items(out_dir, names,
                     lambda name, temporary: _score_item(found[name], name, temporary, remover,
                                                         method_name=method_name, modes=modes,
                                                         limit_frames=limit_frames, save_frames=save_frames),
                     describe=describe, say=say, summarise=lambda: summarise(out_dir, names, settings),
                     folder_of=safe_item_folder, executor=executor)


def vdp_remover(*, options=None, task_config: Any = None, dilate: int | None = None) -> Remover:
    """vdp's removal: the clean background (`vdp.complete`) from the given masks, or from the
    masks `vdp segment` finds (with `options` and the segment `task_config`)."""
    from fractions import Fraction

    from vdp.complete import complete_background
    from vdp.editing import DEFAULT_DILATE, segment_masks
    from vdp.video import Video

    grow = DEFAULT_DILATE if dilate is None else dilate

    def remove(frames: np.ndarray, masks: np.ndarray | None, name: str) -> tuple[np.ndarray, dict[str, Any]]:
        info: dict[str, Any] = {"dilate": grow}
        if masks is None:
            video = Video(frames=frames, fps=Fraction(24), name=safe_item_folder(name))
            started = time.perf_counter()
            masks, _, segment_info = segment_masks(video, config=task_config, options=options)
            info.update(segment_info, segment_seconds=round(time.perf_counter() - started, 3))
        return complete_background(frames, masks, dilate=grow), info

    return remove
