"""vdp.atomic_write: a destination is either absent or complete, whatever interrupts the writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdp.atomic_write import PendingFile, pending_folder


def test_a_file_appears_only_when_complete_under_a_hidden_name_with_its_extension(tmp_path: Path) -> None:
    destination = tmp_path / "sub" / "clip.mp4"
    with PendingFile(destination) as temporary:
        assert temporary.parent == destination.parent and temporary.name.startswith(".clip.mp4.partial-")
        assert temporary.suffix == ".mp4"
        temporary.write_bytes(b"frames")
        assert not destination.exists()
    assert destination.read_bytes() == b"frames"
    assert [entry.name for entry in destination.parent.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_file_leaves_the_previous_one_and_no_temporary(tmp_path: Path, error: BaseException) -> None:
    destination = tmp_path / "weights.pth"
    destination.write_bytes(b"old")
    with pytest.raises(type(error)):
        with PendingFile(destination) as temporary:
            temporary.write_bytes(b"half")
            raise error
    assert destination.read_bytes() == b"old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["weights.pth"]


def test_a_file_kept_across_calls_is_committed_or_discarded(tmp_path: Path) -> None:
    kept, dropped = PendingFile(tmp_path / "kept.txt"), PendingFile(tmp_path / "dropped.txt")
    kept.temporary.write_text("done")
    dropped.temporary.write_text("half")
    kept.commit()
    dropped.discard()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["kept.txt"]


def test_a_folder_replaces_the_previous_one_only_when_complete(tmp_path: Path) -> None:
    destination = tmp_path / "result"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with pending_folder(destination) as temporary:
        (temporary / "new.txt").write_text("new")
        assert (destination / "old.txt").exists() and temporary.name.startswith(".result.partial-")
    assert [entry.name for entry in destination.iterdir()] == ["new.txt"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["result"]


@pytest.mark.parametrize("error", [RuntimeError("no masks"), KeyboardInterrupt()])
def test_a_failed_folder_is_removed_and_the_previous_one_kept(tmp_path: Path, error: BaseException) -> None:
    destination = tmp_path / "result"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with pytest.raises(type(error)):
        with pending_folder(destination) as temporary:
            (temporary / "half.txt").write_text("half")
            raise error
    assert [entry.name for entry in destination.iterdir()] == ["old.txt"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["result"]


def test_an_interrupt_just_after_the_mkdir_removes_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = Path.mkdir

    def mkdir_then_interrupt(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "mkdir", mkdir_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        with pending_folder(tmp_path / "result"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_fixed_temporary_name_replaces_a_killed_runs_leftover(tmp_path: Path) -> None:
    leftover = tmp_path / ".item.partial"
    leftover.mkdir()
    (leftover / "stale.csv").write_text("old\n")
    with pending_folder(tmp_path / "item", temporary=leftover) as temporary:
        assert temporary == leftover and list(temporary.iterdir()) == []
    assert [entry.name for entry in tmp_path.iterdir()] == ["item"]
