"""Writing a task's result: full resolution, streamed frame by frame, moved into place when complete.

Layout::

    <out>/<video>/config.json  metrics.json  preview.mp4 ...
                  <output>/00000.png ...      # e.g. alpha/, masks/, layers/foreground/
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

import vdp
from vdp.atomic_write import PARTIAL_MARK, pending_folder
from vdp.errors import VdpError
from vdp.task import TaskResult
from vdp.video import Mp4Writer, Video, write_indexed_png, write_png_sequence

logger = logging.getLogger(__name__)


def result_dir(out_dir: Path, video: Video) -> Path:
    return out_dir / video.name


def check_writable(out_dir: Path) -> None:
    """Make sure results can be written under `out_dir` (created if missing) before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise VdpError(f"the output path {out_dir} is a file, not a folder; choose a folder with -o")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise VdpError(f"cannot write to the output folder {out_dir}: {reason}; choose a writable -o folder") from error


def remove_stale_partials(out_dir: Path, name: str) -> None:
    """Delete `.<name>.partial-<pid>-*` folders left by runs that were killed (their process is gone)."""
    if not out_dir.is_dir():
        return
    for leftover in out_dir.glob(f".{name}{PARTIAL_MARK}*"):
        pid = leftover.name.rsplit(PARTIAL_MARK, 1)[1].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            logger.info("removing %s, left by an interrupted run", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    return True  # running (PermissionError: running as another user)


def write_result(
    result: TaskResult,
    video: Video,
    out_dir: Path,
    *,
    overwrite: bool = False,
    write_videos: bool = True,
    frame_progress: Callable[[int, int], None] | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> Path:
    """Write every per-frame output at full resolution, the videos, config.json and metrics.json.

    Everything goes to a hidden temporary folder beside the destination, renamed into place at the
    end, so an interrupted run never leaves a folder that looks finished. An existing result is
    kept unless `overwrite` is set.

    Returns:
        The result folder `out_dir/<video name>`.
    """
    destination = result_dir(out_dir, video)
    if destination.exists() and not overwrite:
        raise VdpError(
            f"{destination} already exists; pass --overwrite to replace it, or choose another -o folder"
        )
    check_writable(out_dir)
    remove_stale_partials(out_dir, video.name)
    # A hidden `.<name>.partial-<pid>-<random>` folder: removed on any error or Ctrl-C, renamed
    # onto `destination` (replacing an older result) once metrics.json is in it.
    with pending_folder(destination) as temporary:
        write_result_into(result, video, temporary, write_videos=write_videos, frame_progress=frame_progress,
                          extra_metrics=extra_metrics)
    return destination


def write_result_into(
    result: TaskResult,
    video: Video,
    folder: Path,
    *,
    write_videos: bool = True,
    frame_progress: Callable[[int, int], None] | None = None,
    extra_metrics: dict[str, Any] | None = None,
) -> None:
    """Write a result's files into `folder` as they are (no temporary folder of its own): for a
    caller that already writes into one, such as a batch item (`vdp.batch`). metrics.json is last."""
    _write_frames(result, video, folder, write_videos=write_videos, frame_progress=frame_progress)
    (folder / "config.json").write_text(json.dumps(result.config, indent=2, default=str) + "\n")
    metrics = {
        "task": result.task,
        "video": {"name": video.name, "source": str(video.source) if video.source else None,
                  "num_frames": video.num_frames, "size": [video.height, video.width],
                  "fps": str(video.fps), "has_audio": video.has_audio},
        "info": result.info,
        "final_losses": result.losses,
        "timings_seconds": result.timings,
        "versions": _versions(),
        **(extra_metrics or {}),
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")


def _write_frames(result: TaskResult, video: Video, folder: Path, *, write_videos: bool,
                  frame_progress: Callable[[int, int], None] | None, workers: int | None = None) -> None:
    """Lift and write every frame. Frames are computed and their PNGs written by a few threads
    (OpenCV and numpy release the GIL), a small window ahead of the videos, which are encoded in
    order here; at most `workers + 1` frames are in flight, whatever the video's length."""
    writers: dict[str, Mp4Writer] = {}
    if write_videos:
        for file_name in result.videos:
            writers[file_name] = Mp4Writer(folder / file_name, fps=video.fps, expected_frames=video.num_frames,
                                           audio_source=video.source if video.has_audio else None)
    for name in result.outputs:
        (folder / name).mkdir(parents=True, exist_ok=True)
    needed_by_videos = set(result.videos.values())

    def lift_and_write(t: int) -> dict[str, np.ndarray]:
        outputs = result.full_resolution(t, video.frames[t])
        for name, kind in result.outputs.items():
            if kind == "indexed":
                write_indexed_png(outputs[name], folder / name / f"{t:05d}.png")
            else:
                write_png_sequence([outputs[name]], folder / name, start_index=t)
        return {name: outputs[name] for name in needed_by_videos}

    workers = workers or max(1, min(4, os.cpu_count() or 1))
    pending: collections.deque[concurrent.futures.Future] = collections.deque()
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vdp-write")
    try:
        try:
            submitted = 0
            for t in range(video.num_frames):
                while submitted < video.num_frames and len(pending) < workers + 1:
                    pending.append(executor.submit(lift_and_write, submitted))
                    submitted += 1
                outputs = pending.popleft().result()
                for file_name, writer in writers.items():
                    writer.write(outputs[result.videos[file_name]])
                if frame_progress is not None:
                    frame_progress(t + 1, video.num_frames)
        finally:  # after an error, the frames being written finish before the folder is removed
            executor.shutdown(wait=True, cancel_futures=True)
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def _versions() -> dict[str, str]:
    import torch

    return {"vdp": vdp.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform(), "cpu_count": str(os.cpu_count())}
