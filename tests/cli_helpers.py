"""Helpers shared by the tests that drive the command line in process."""

from __future__ import annotations

import contextlib
import logging
import os

from click.testing import CliRunner

from vdp.cli import app
from vdp.parallel import set_threads


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in process; returns (exit code, everything it printed to stderr and stdout)."""
    result = CliRunner().invoke(app, list(args))
    logging.getLogger().handlers.clear()  # the CLI's handler wrote to the runner's closed stream
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@contextlib.contextmanager
def one_thread():
    """This process runs with one thread (torch, OpenCV), as a worker given `--threads 1` does, so
    that results compare bit for bit whatever this machine's core count (sums over threads may add
    up in another order); the thread counts are restored afterwards."""
    import cv2
    import torch

    saved = torch.get_num_threads(), cv2.getNumThreads(), os.environ.get("OMP_NUM_THREADS")
    set_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])
        if saved[2] is None:
            os.environ.pop("OMP_NUM_THREADS", None)
