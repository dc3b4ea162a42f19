"""One benchmark item, run so that a batch can resume and survive failures.

Each item is computed into a hidden temporary folder; `score.json` is written there last and the
folder is renamed into place, so a finished item is exactly one that has `score.json`. A failure is
recorded in `<item>/error.txt` and the batch carries on; Ctrl-C removes the partial folder.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from vdp.atomic_write import pending_folder
from vdp.errors import VideoInputError
from vdp.parallel import Executor, ItemLost, SerialExecutor, peak_memory_reset

#: Written into an item's temporary folder while it runs: which host and process is computing it
#: (to find a stuck or lost item on a cluster).
WORKER_FILE = "worker.json"
from vdp.video.read import natural_sort_key


def list_item_folders(root: Path, folders: tuple[str, ...], *, not_a_folder: str, no_item: str) -> list[tuple[str, Path]]:
    """(item name, folder) of every benchmark item under ``root`` (a folder holding all of
    ``folders``), in natural order of names; ``root`` may itself be one item.

    Raises:
        VideoInputError: ``root`` is not a folder (message ``not_a_folder``), or holds no item
            (``no_item``).
    """
    root = Path(root)

    def is_item(folder: Path) -> bool:
        return all((folder / name).is_dir() for name in folders)

    if not root.is_dir():
        raise VideoInputError(not_a_folder)
    if is_item(root):
        return [(root.name, root)]
    items = [entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".") and is_item(entry)]
    if not items:
        raise VideoInputError(no_item)
    items.sort(key=lambda entry: (natural_sort_key(entry.name), entry.name))
    return [(entry.name, entry) for entry in items]


def run_item(
    out_dir: Path,
    folder_name: str,
    work: Callable[[Path], dict[str, Any]],
    *,
    label: str,
    describe: Callable[[dict[str, Any]], str],
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    """Run `work(temporary_folder) -> score` for one item unless it is already scored.

    Args:
        out_dir: the report folder.
        folder_name: the item's folder inside it.
        work: computes the item, may write files into the folder it is given, returns the score.
        label: prefix of the log line (e.g. "[2/5] blackswan").
        describe: turns a score into the rest of the log line.
        say: where log lines go.

    Returns:
        The new score, or None when the item was skipped or failed.
    """
    folder = out_dir / folder_name
    if (folder / "score.json").is_file():
        say(f"{label}: already scored, skipped")
        return None
    # A fixed temporary name, so that a rerun replaces the leftover of a killed run; the helper
    # removes it on any error or Ctrl-C and renames it onto `folder` (replacing an earlier
    # error.txt) once score.json is in it.
    try:
        with pending_folder(folder, temporary=out_dir / f".{folder_name}.partial") as temporary:
            peak_memory_reset()  # the item's own peak, in a worker that runs several items
            (temporary / WORKER_FILE).write_text(json.dumps(
                {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}) + "\n")
            score = work(temporary)
            (temporary / WORKER_FILE).unlink(missing_ok=True)
            (temporary / "score.json").write_text(json.dumps(score, indent=2, default=str) + "\n")
        say(f"{label}: {describe(score)}")
        return score
    except Exception as error:  # a batch records the failure and carries on (Ctrl-C stops it)
        folder.mkdir(exist_ok=True)
        (folder / "error.txt").write_text(f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}")
        say(f"{label}: FAILED ({type(error).__name__}: {error})")
        return None


def collect_scores(out_dir: Path, names: list[str], folder_of: Callable[[str], str] = str) -> tuple[list[dict], list[str]]:
    """The scores of the finished items (their score.json, in `names` order) and the names of the
    failed ones (an error.txt and no score); items not run yet are in neither.

    Args:
        out_dir: the report folder.
        names: item names, in report order.
        folder_of: item name -> its folder inside `out_dir`.
    """
    scores, failed = [], []
    for name in names:
        folder = out_dir / folder_of(name)
        if (folder / "score.json").is_file():
            scores.append(json.loads((folder / "score.json").read_text()))
        elif (folder / "error.txt").is_file():
            failed.append(name)
    return scores, failed


def _run_one(out_dir: Path, folder_name: str, work: Callable[[Path], dict[str, Any]], label: str,
             describe: Callable[[dict[str, Any]], str]) -> list[str]:
    """`run_item` where the item runs (this process, a local worker or a Ray worker): its log lines
    come back to the driver."""
    lines: list[str] = []
    run_item(out_dir, folder_name, work, label=label, describe=describe, say=lines.append)
    return lines


def run_items(
    out_dir: Path,
    names: list[str],
    work: Callable[[str, Path], dict[str, Any]],
    *,
    describe: Callable[[dict[str, Any]], str],
    say: Callable[[str], None],
    summarise: Callable[[], dict[str, Any]],
    folder_of: Callable[[str], str] = str,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run every item not finished yet (`run_item`) on `executor` (default: here, in order),
    rewriting the summary after each so an interrupted batch leaves an up-to-date one; returns
    the final summary.

    Args:
        work: (item name, temporary folder) -> score; with another executor than the serial one it
            runs in another process (it travels with cloudpickle, closures included).
        summarise: writes and returns the summary of the whole batch (here, in the driver).
        folder_of: item name -> its folder inside `out_dir`.
        executor: where the items run (`vdp.parallel.make_executor`).
    """
    executor = executor or SerialExecutor()
    todo = []
    for index, name in enumerate(names, start=1):
        label = f"[{index}/{len(names)}] {name}"
        if (out_dir / folder_of(name) / "score.json").is_file():  # resume: decided here, not on a worker
            say(f"{label}: already scored, skipped")
            continue
        todo.append((out_dir, folder_of(name), functools.partial(work, name), label, describe))
    for index, lines in executor.map(_run_one, todo):
        if isinstance(lines, ItemLost):  # the worker died under it: record it here, as run_item would
            _, folder_name, _, label, _ = todo[index]
            shutil.rmtree(out_dir / f".{folder_name}.partial", ignore_errors=True)
            (out_dir / folder_name).mkdir(exist_ok=True)
            (out_dir / folder_name / "error.txt").write_text(f"ItemLost: {lines.reason}\n")
            lines = [f"{label}: FAILED ({lines.reason})"]
        for line in lines:
            say(line)
        summarise()
    return summarise()
