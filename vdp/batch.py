"""`vdp batch TASK INPUTS... -o OUT`: one task over many videos, resumable, on any executor.

Every video (a file or a folder of frames) is one item of the benches' item runner
(`vdp.bench.items`): computed into a hidden temporary folder, renamed to `OUT/<video name>/` once
complete (the task's usual outputs plus `score.json`), a failure recorded in `OUT/<name>/error.txt`
while the batch goes on; a rerun skips the finished items. `OUT/batch.json` and `OUT/batch.csv`
summarise every item (frames, seconds, peak memory, status) and are rewritten after each one.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import time
from pathlib import Path
from typing import Any, Callable

from vdp.bench.items import collect_scores, run_items
from vdp.errors import VideoInputError
from vdp.parallel import Executor
from vdp.video.read import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_frame_files, natural_sort_key

SUMMARY_JSON = "batch.json"
SUMMARY_CSV = "batch.csv"


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and bool(list_frame_files(path))


def _item_name(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def find_inputs(inputs: list[str | Path]) -> list[tuple[str, Path]]:
    """(item name, path) of every video the inputs name, in order: a video file, a folder of frames,
    a folder holding videos and/or frame folders (one level), or a glob pattern of those.

    Raises:
        VideoInputError: an input is missing or holds no video, or two items would share a name.
    """
    found: list[Path] = []
    for entry in inputs:
        path = Path(entry).expanduser()
        if not path.exists() and glob.has_magic(str(entry)):
            matches = sorted((Path(m) for m in glob.glob(str(path))), key=lambda p: natural_sort_key(p.name))
            matches = [m for m in matches if _is_video_file(m) or _is_frame_folder(m)]
            if not matches:
                raise VideoInputError(f"the pattern {entry} matches no video file ({' '.join(VIDEO_EXTENSIONS)}) "
                                      "or folder of frames")
            found += matches
        elif _is_video_file(path) or _is_frame_folder(path):
            found.append(path)
        elif path.is_dir():
            children = sorted((c for c in path.iterdir() if not c.name.startswith(".")),
                              key=lambda c: (natural_sort_key(c.name), c.name))
            videos = [c for c in children if _is_video_file(c) or _is_frame_folder(c)]
            if not videos:
                raise VideoInputError(
                    f"{path} holds no video: expected video files ({' '.join(VIDEO_EXTENSIONS)}) or folders of "
                    f"frames ({' '.join(IMAGE_EXTENSIONS)}) in it, or frames directly in it")
            found += videos
        elif path.exists():
            raise VideoInputError(f"{path} is not a video: expected a video file ({' '.join(VIDEO_EXTENSIONS)}), a "
                                  "folder of frames, or a folder of those")
        else:
            raise VideoInputError(f"{entry} does not exist (give video files, folders of them, or a quoted glob)")
    items: dict[str, Path] = {}
    for path in found:
        path = path.resolve()  # workers on other nodes see the same absolute paths
        name = _item_name(path)
        if name in items and items[name] != path:
            raise VideoInputError(f"two inputs would both write OUT/{name}: {items[name]} and {path}; rename one, "
                                  "or run them into different -o folders")
        items[name] = path
    return list(items.items())


def run_batch(
    task_name: str,
    inputs: list[str | Path],
    out_dir: Path,
    *,
    options: Any = None,
    config: Any = None,
    selection: dict[str, Any] | None = None,
    write_videos: bool = True,
    executor: Executor | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `task_name` on every input video into `out_dir/<name>/`; resumable; returns the summary.

    Args:
        options, config: `vdp.api.RunOptions` and the task's config (as the task's own command
            builds them).
        selection: frame selection for every video (`start`, `max_frames`, `stride`).
        executor: where the items run (`vdp.parallel.make_executor`; default here, in order).
    """
    items = find_inputs(inputs)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = dict(items)
    names = [name for name, _ in items]
    selection = dict(selection or {})

    def work(name: str, folder: Path) -> dict[str, Any]:
        from vdp import api
        from vdp.outputs import write_result_into
        from vdp.parallel import peak_memory_mb

        started = time.perf_counter()
        video = api.load_video(sources[name], **selection)
        result = api.run(task_name, video, config=config, options=options)
        write_result_into(result, video, folder, write_videos=write_videos,
                          extra_metrics={"input_selection": {"start": selection.get("start", 0),
                                                             "max_frames": selection.get("max_frames"),
                                                             "stride": selection.get("stride", 1)}})
        return {"item": name, "source": str(sources[name]), "task": task_name, "status": "ok",
                "frames": video.num_frames, "seconds": round(time.perf_counter() - started, 2),
                "peak_rss_mb": round(peak_memory_mb(), 1), "timings": result.timings}

    return run_items(
        out_dir, names, work,
        describe=lambda s: f"{s['frames']} frames, {s['seconds']:.0f}s, peak {s['peak_rss_mb']:.0f} MB",
        say=log or (lambda line: None),
        summarise=lambda: summarise(out_dir, task_name, items, options=options, config=config),
        executor=executor,
    )


def summarise(out_dir: Path, task_name: str, items: list[tuple[str, Path]], *, options: Any = None,
              config: Any = None) -> dict[str, Any]:
    """Write `batch.json` and `batch.csv`: one row per item, finished, failed or not run yet."""
    names = [name for name, _ in items]
    scores, failed = collect_scores(out_dir, names)
    by_name = {score["item"]: score for score in scores}
    rows = []
    for name, source in items:
        if name in by_name:
            score = by_name[name]
            rows.append({key: score.get(key) for key in ("item", "source", "status", "frames", "seconds", "peak_rss_mb")})
        elif name in failed:
            first_line = (out_dir / name / "error.txt").read_text().splitlines()[0]
            rows.append({"item": name, "source": str(source), "status": "failed", "frames": None, "seconds": None,
                         "peak_rss_mb": None, "error": first_line})
        else:
            rows.append({"item": name, "source": str(source), "status": "pending", "frames": None, "seconds": None,
                         "peak_rss_mb": None})
    overall = {"task": task_name, "items": len(items), "done": len(scores), "failed": len(failed),
               "pending": len(items) - len(scores) - len(failed),
               "seconds": round(sum(score["seconds"] for score in scores), 1),
               "peak_rss_mb": max((score["peak_rss_mb"] for score in scores), default=None)}
    summary = {"overall": overall, "items": rows, "failed": failed,
               "options": dataclasses.asdict(options) if dataclasses.is_dataclass(options) else None,
               "task_config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None}
    (out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    with open(out_dir / SUMMARY_CSV, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["item", "status", "frames", "seconds", "peak_rss_mb", "source", "error"])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) for key in writer.fieldnames})
    return summary
