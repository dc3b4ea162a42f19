"""Where the items of a batch run: here one after another, in N local processes, or on a Ray cluster.

A batch (`vdp batch`, `vdp bench ...`) is a list of independent items, each a call
`function(*arguments)` that writes its own folder and returns a small picklable value. An executor
runs the calls and yields the results as they finish; the caller (the driver) keeps the summary
and the resume logic, so the three ways to run are interchangeable:

- `SerialExecutor`: in this process, in order (the default);
- `LocalExecutor`: `--workers N` processes on this machine, the cores split between them (each
  worker sets torch's, OpenCV's and onnxruntime's thread counts to its share);
- `RayExecutor`: `--ray auto|ADDRESS`, one Ray task per item asking for its CPUs (and one GPU when
  the run uses CUDA), retried by Ray when the worker running it dies. Every node must see the output
  folder at the same path (a shared filesystem) and have vdp installed.

Functions and their arguments may be closures: they travel with cloudpickle, as Ray sends them.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Protocol

from vdp.errors import ConfigError

logger = logging.getLogger(__name__)

#: Threads per item when neither --workers nor --threads says otherwise: measured on a 2-core machine
#: over the 5 development DAVIS sequences (docs/benchmarks.md, "Batches, Ray and long videos"), two
#: items at once with one thread each took 318 s against 370 s for one item at a time with two.
THREADS_PER_ITEM = 1

#: Memory a CPU worker is given room for when --workers is chosen automatically (segment items
#: peaked at 1.3-3.2 GB on the sample videos, the longest 914 frames).
MEMORY_PER_WORKER_GB = 4.0

#: How often Ray runs an item again after the worker running it died (a lost node, the OOM killer).
RAY_RETRIES = 3

RAY_INSTALL_HINT = 'Ray is not installed; install the extra with: pip install "vdp[ray]" (or drop --ray)'


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def memory_gb() -> float:
    """This machine's physical memory in GB (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (AttributeError, ValueError, OSError):
        return 0.0


def auto_workers(device: str) -> int:
    """Items at once by default: one per `THREADS_PER_ITEM` cores, as memory allows; one on a GPU
    (items would share it)."""
    if not device.startswith("cpu"):
        import torch

        on_gpu = device.startswith(("cuda", "mps")) or torch.cuda.is_available() or (
            getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
        if on_gpu:
            return 1
    by_memory = int(memory_gb() // MEMORY_PER_WORKER_GB) or 1
    return max(1, min(available_cores() // THREADS_PER_ITEM, by_memory))


def set_threads(threads: int) -> None:
    """Make torch, OpenCV and onnxruntime (which follows torch's count in vdp) use `threads` threads."""
    import cv2
    import torch

    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


class Executor(Protocol):
    """Runs `function(*arguments)` for each argument tuple; yields (index, result) as they finish."""

    description: str

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class ItemLost:
    """What an executor yields for an item whose worker died and was not run again (the item's own
    exceptions are the item's business: it records them)."""

    reason: str


class SerialExecutor:
    """One item after another, in this process; with `threads`, that many threads while it runs."""

    def __init__(self, threads: int | None = None) -> None:
        self.description = "serial" + (f", {threads} thread(s)" if threads else "")
        self._restore: int | None = None
        if threads:
            import torch

            self._restore = torch.get_num_threads()
            set_threads(threads)

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        for index, args in enumerate(arguments):
            yield index, function(*args)

    def close(self) -> None:
        if self._restore is not None:
            set_threads(self._restore)
            self._restore = None


def _start_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported in this new process
    set_threads(threads)


def _call_pickled(payload: bytes) -> Any:
    import cloudpickle

    function, args = cloudpickle.loads(payload)
    return function(*args)


class LocalExecutor:
    """Up to `workers` processes on this machine, each with `threads` threads (default: the cores
    split between the processes). Fewer items than workers start fewer processes, each with more
    threads; a single item runs here. Processes are spawned, not forked (torch's threads do not
    survive a fork), once for the batch, not per item."""

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers, self.threads = workers, threads
        self.description = f"up to {workers} local workers x {threads or max(1, available_cores() // workers)} thread(s)"
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._serial: SerialExecutor | None = None

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        import cloudpickle
        import multiprocessing

        workers = max(1, min(self.workers, len(arguments)))
        threads = self.threads or max(1, available_cores() // workers)
        if workers == 1:
            self._serial = SerialExecutor(threads)
            yield from self._serial.map(function, arguments)
            return
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(threads,))
        futures = {self._pool.submit(_call_pickled, cloudpickle.dumps((function, args))): index
                   for index, args in enumerate(arguments)}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield futures[future], future.result()
            except concurrent.futures.process.BrokenProcessPool as error:
                yield futures[future], ItemLost(f"a worker process died ({error}); killed, or out of memory?")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._serial is not None:
            self._serial.close()


def _ray_item(threads: int, function: Callable[..., Any], args: tuple) -> Any:
    set_threads(threads)
    return function(*args)


class RayExecutor:
    """One Ray task per item. `address` is 'auto' (the cluster in RAY_ADDRESS when it is set, else a
    new local Ray instance with this machine's cores) or a cluster address ('host:6379', 'ray://...').

    Each task asks for `threads` CPUs (and one GPU when `gpu`), runs with that many threads, and is
    run again (up to RAY_RETRIES times) when its worker dies; an exception raised by the item itself
    is not retried (the item records it as its failure).
    """

    def __init__(self, address: str, threads: int, *, gpu: bool = False, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as error:
            raise ConfigError(RAY_INSTALL_HINT) from error
        self._ray = ray
        self.threads, self.gpu = threads, gpu
        self._started_here = not ray.is_initialized()
        if self._started_here:
            joining = address != "auto" or bool(os.environ.get("RAY_ADDRESS"))
            settings: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
            if joining:
                settings["address"] = None if address == "auto" else address
            else:  # a local instance: this machine's cores, a small object store (items exchange little)
                settings.update(num_cpus=num_cpus or available_cores(), object_store_memory=100 * 1024 * 1024)
            try:
                ray.init(**settings)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = address if address != "auto" else os.environ.get("RAY_ADDRESS", "a local instance")
                raise ConfigError(f"could not start or join Ray at {where}: {error}") from error
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < threads:
            self.close()
            raise ConfigError(f"each item asks for {threads} CPUs but the Ray cluster has {cpus:g}; "
                              "pass a smaller --threads")
        self._remote = ray.remote(_ray_item).options(num_cpus=threads, num_gpus=1 if gpu else 0,
                                                     max_retries=RAY_RETRIES, retry_exceptions=False)
        self.description = f"Ray ({cpus:g} CPUs), {threads} CPU(s){' and 1 GPU' if gpu else ''} per item"

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        shared = ray.put(function)
        pending = {self._remote.remote(self.threads, shared, args): index for index, args in enumerate(arguments)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                index = pending.pop(reference)
                try:
                    result = ray.get(reference)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.ObjectLostError) as error:
                    result = ItemLost(f"its Ray worker died {RAY_RETRIES + 1} times ({type(error).__name__}); "
                                      "killed, out of memory, or a node lost?")
                yield index, result

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(*, workers: int | None = None, ray: str | None = None, threads: int | None = None,
                  device: str = "cpu") -> Executor:
    """The executor a command line asks for.

    Args:
        workers: items at once on this machine (default `auto_workers`); ignored with `ray`.
        ray: None (no Ray), 'auto' or a cluster address.
        threads: threads (and, with Ray, CPUs) per item; default: this machine's cores split
            between the workers (with Ray: `THREADS_PER_ITEM`).
        device: the run's device; with Ray, 'cuda...' makes every item ask for a GPU.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be 1 or more, got {workers}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {threads}")
    if ray is not None:
        wants_gpu = device.startswith("cuda")
        if device == "auto":
            import torch

            wants_gpu = torch.cuda.is_available()
        return RayExecutor(ray, threads or THREADS_PER_ITEM, gpu=wants_gpu)
    workers = workers or auto_workers(device)
    if workers == 1:
        return SerialExecutor(threads)
    return LocalExecutor(workers, threads)


def peak_memory_reset() -> None:
    """Start measuring this process's peak resident memory afresh (Linux; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB since `peak_memory_reset` (Linux), or since it
    started (elsewhere)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
