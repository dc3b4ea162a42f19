"""Write a file or folder under a hidden temporary name beside its destination, then rename it there.

A destination therefore either does not exist or is complete: an error, Ctrl-C or a kill while
writing never leaves a truncated file or a half-filled folder under the final name. The rename is
atomic because the temporary lies in the same folder (same file system) as the destination.

Temporary names start with ``.<destination name>.partial-<pid>-`` so that a later run can tell
whose leftovers they are (a killed process cannot remove its own); a file's temporary keeps the
destination's extension at the end, for tools that pick a format from it (ffmpeg).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

PARTIAL_MARK = ".partial-"
"""What temporary names hold between the destination's name and ``<pid>-<random>``."""


def temporary_path_beside(destination: Path, *, keep_suffix: bool = False) -> Path:
    """A new hidden name in ``destination``'s folder: ``.<name>.partial-<pid>-<8 hex digits>``,
    followed by ``destination``'s extension when ``keep_suffix``."""
    name = f".{destination.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    return destination.parent / (name + (destination.suffix if keep_suffix else ""))


class PendingFile:
    """A hidden temporary file beside ``destination`` that becomes ``destination`` on :meth:`commit`.

    As a context manager it yields the temporary path, commits when the block succeeds and
    removes the temporary when it raises anything (KeyboardInterrupt included)::

        with PendingFile(path) as temporary:
            temporary.write_bytes(data)

    A writer that spans several calls (the mp4 encoder) keeps the object and calls
    :meth:`commit` or :meth:`discard` itself.
    """

    def __init__(self, destination: str | os.PathLike[str]) -> None:
        """Choose the temporary name and create ``destination``'s folder if missing; the
        temporary file itself is created by whoever writes it."""
        self.destination = Path(destination)
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary_path_beside(self.destination, keep_suffix=True)

    def commit(self) -> None:
        """Rename the written temporary onto ``destination``, replacing any file there.

        Raises:
            FileNotFoundError: nothing was written to the temporary.
        """
        os.replace(self.temporary, self.destination)

    def discard(self) -> None:
        """Remove the temporary (if any); ``destination`` is left as it was."""
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temporary

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


@contextmanager
def pending_folder(destination: str | os.PathLike[str], *, temporary: Path | None = None) -> Iterator[Path]:
    """Yield a new empty hidden folder beside ``destination``, renamed onto it when the block succeeds.

    A folder already at ``destination`` is replaced (moved aside under a hidden name first, so it
    is never lost half-deleted, then removed). If the block raises anything, KeyboardInterrupt
    included, the temporary folder is removed and ``destination`` is left as it was.

    Args:
        destination: the final folder; its parent is created if missing.
        temporary: a fixed temporary name to use instead of a new unique one, for callers that
            find a killed run's leftover by name; whatever is there is removed first.
    """
    destination = Path(destination)
    temporary = temporary_path_beside(destination) if temporary is None else Path(temporary)
    try:  # from before the mkdir on, so that a Ctrl-C at any point removes the temporary folder
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        yield temporary
        _move_folder_into_place(temporary, destination)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _move_folder_into_place(temporary: Path, destination: Path) -> None:
    """Rename ``temporary`` to ``destination``, replacing what is there."""
    if not (destination.exists() or destination.is_symlink()):
        temporary.rename(destination)
        return
    aside = destination.parent / f".{destination.name}.replaced-{secrets.token_hex(4)}"
    destination.rename(aside)
    try:
        temporary.rename(destination)
    except BaseException:
        if not destination.exists():
            aside.rename(destination)  # put the previous one back rather than leave nothing
        raise
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)
