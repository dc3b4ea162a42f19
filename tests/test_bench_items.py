"""run_item: a finished item is exactly one with score.json; an interrupt leaves no partial folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdp.bench.items import WORKER_FILE, run_item


def _run(out: Path, work, lines: list[str]):
    return run_item(out, "seq", work, label="seq", describe=lambda s: f"J {s['J']}", say=lines.append)


def test_a_finished_item_has_its_score_and_is_skipped_next_time(tmp_path: Path) -> None:
    lines: list[str] = []
    assert _run(tmp_path, lambda folder: {"J": 0.5}, lines) == {"J": 0.5}
    assert json.loads((tmp_path / "seq" / "score.json").read_text()) == {"J": 0.5}
    assert _run(tmp_path, lambda folder: {"J": 0.9}, lines) is None
    assert lines == ["seq: J 0.5", "seq: already scored, skipped"]
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]
    assert not (tmp_path / "seq" / WORKER_FILE).exists()


def test_a_failure_is_recorded_and_the_batch_can_go_on(tmp_path: Path) -> None:
    def fail(folder: Path):
        (folder / "half.csv").write_text("1,2\n")
        raise RuntimeError("no masks")

    lines: list[str] = []
    assert _run(tmp_path, fail, lines) is None
    assert "RuntimeError: no masks" in (tmp_path / "seq" / "error.txt").read_text()
    assert not (tmp_path / "seq" / "score.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]
    assert not (tmp_path / "seq" / WORKER_FILE).exists()


def test_an_interrupt_during_the_work_removes_the_partial_folder(tmp_path: Path) -> None:
    def interrupted(folder: Path):
        (folder / "frames.csv").write_text("frame,J\n")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, interrupted, [])
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_just_after_the_partial_folder_is_made_removes_it(tmp_path: Path, monkeypatch) -> None:
    # The window CI once hit: Ctrl-C arriving after mkdir, before the work starts.
    real_mkdir = Path.mkdir

    def mkdir_then_interrupt(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if self.name.endswith(".partial"):
            raise KeyboardInterrupt

    monkeypatch.setattr(Path, "mkdir", mkdir_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, lambda folder: {"J": 1.0}, [])
    assert list(tmp_path.iterdir()) == []


def test_a_stale_partial_folder_from_a_killed_run_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / ".seq.partial"
    stale.mkdir()
    (stale / "frames.csv").write_text("old\n")
    assert _run(tmp_path, lambda folder: {"J": 0.7, "files": sorted(p.name for p in folder.iterdir())}, []) \
        == {"J": 0.7, "files": [WORKER_FILE]}  # the old file is gone; only who computes it is there
    assert [p.name for p in tmp_path.iterdir()] == ["seq"]
    assert not (tmp_path / "seq" / WORKER_FILE).exists()


def test_an_item_whose_worker_died_is_recorded_as_failed_and_its_partial_folder_removed(tmp_path: Path) -> None:
    from vdp.bench.items import run_items
    from vdp.parallel import ItemLost

    class DyingWorkers:  # an executor whose worker dies under the second item, after it began writing
        description = "test"

        def map(self, function, arguments):
            yield 0, function(*arguments[0])
            out_dir, folder_name = arguments[1][0], arguments[1][1]
            (out_dir / f".{folder_name}.partial").mkdir()
            (out_dir / f".{folder_name}.partial" / "half.csv").write_text("1\n")
            yield 1, ItemLost("a worker process died")

        def close(self):
            pass

    lines: list[str] = []
    run_items(tmp_path, ["a", "b"], lambda name, folder: {"J": 1.0}, describe=lambda s: "ok", say=lines.append,
              summarise=lambda: {}, executor=DyingWorkers())
    assert (tmp_path / "a" / "score.json").is_file()
    assert "a worker process died" in (tmp_path / "b" / "error.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert lines == ["[1/2] a: ok", "[2/2] b: FAILED (a worker process died)"]
