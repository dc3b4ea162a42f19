"""Command line: `vdp segment INPUT -o OUT`, `vdp tasks`, `vdp bench davis ROOT -o OUT`.

Heavy modules (torch, OpenCV) are imported inside the commands, so `vdp --version` and `--help`
answer at once.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional

import typer

import vdp

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False, help="Split a video into layers by fitting small networks to it.")
bench_app = typer.Typer(no_args_is_help=True, help="Run a task over a benchmark folder and score it.")
app.add_typer(bench_app, name="bench")

DEBUG = {"on": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"vdp {vdp.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
) -> None:
    DEBUG["on"] = debug


def _setup_logging(quiet: bool) -> None:
    level = logging.DEBUG if DEBUG["on"] else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for noisy in ("imageio_ffmpeg", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


class Progress:
    """A tqdm bar on a terminal, a plain line every ~10% otherwise, nothing when quiet."""

    def __init__(self, *, quiet: bool, description: str) -> None:
        self.quiet, self.description = quiet, description
        self.bar = None
        self.interactive = sys.stderr.isatty()
        self.last_reported = -1
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int, losses: Optional[dict] = None) -> None:
        if self.quiet:
            return
        if self.interactive:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.description, unit="step", dynamic_ncols=True, leave=False)
            self.bar.update(done - self.bar.n)
            if losses:
                self.bar.set_postfix(loss=f"{losses.get('total', 0):.4f}")
            if done >= total:
                self.bar.close()
            return
        tenth = (10 * done) // max(total, 1)
        if tenth != self.last_reported:
            self.last_reported = tenth
            elapsed = time.perf_counter() - self.started
            eta = elapsed / max(done, 1) * (total - done)
            loss = f" loss {losses['total']:.4f}" if losses and "total" in losses else ""
            typer.echo(f"{self.description}: {done}/{total}{loss} ({elapsed:.0f}s, ETA {eta:.0f}s)", err=True)


def _run_guarded(function) -> None:
    """Show user mistakes as one clear line (exit 2), keep tracebacks for --debug and real bugs."""
    from vdp.errors import VdpError

    try:
        function()
    except VdpError as error:
        if DEBUG["on"]:
            raise
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: nothing was written as finished", err=True)
        raise typer.Exit(130)


def _common_options(device: str, flow: str, raft_weights: Optional[Path], max_side: int, steps: int,
                    seed: int, learning_rate: float, time_budget: Optional[float], cache_dir: Optional[str]):
    from vdp.api import RunOptions
    from vdp.optimize import OptimConfig

    return RunOptions(
        device=device, flow=flow, raft_weights=str(raft_weights) if raft_weights else None, max_side=max_side,
        cache_dir=cache_dir,
        optim=OptimConfig(num_steps=steps, seed=seed, learning_rate=learning_rate, time_budget=time_budget),
    )


DeviceOption = typer.Option("auto", "--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
FlowOption = typer.Option("auto", "--flow", help="Optical flow: auto (RAFT on a GPU when its weights load, else DIS), raft, dis, farneback.")
RaftOption = typer.Option(None, "--raft-weights", help="RAFT-large weights file (default: torchvision's cache; downloaded when online).")
MaxSideOption = typer.Option(256, "--max-side", help="Working resolution: longer side, in pixels, the nets are fitted at.")
StepsOption = typer.Option(200, "--steps", help="Optimisation steps.")
SeedOption = typer.Option(0, "--seed", help="Random seed (nets and batch order).")
LearningRateOption = typer.Option(2e-3, "--learning-rate", help="Peak Adam learning rate.")
BudgetOption = typer.Option(None, "--time-budget", help="Stop optimising after this many seconds.")
CacheOption = typer.Option(None, "--cache-dir", help="Flow cache folder (default ~/.cache/vdp; '' disables it).")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print only errors and the output folder.")
OverwriteOption = typer.Option(False, "--overwrite", help="Replace an existing result folder.")


@app.command()
def segment(
    input: Path = typer.Argument(..., help="Video file (mp4, mov, avi, mkv, webm) or folder of jpg/png frames."),
    output: Path = typer.Option(Path("vdp-out"), "--output", "-o", help="Output folder; results go to OUTPUT/<video name>/."),
    objectness: str = typer.Option("auto", "--objectness", help="Salient-object cue: auto (when installed), on, off."),
    objectness_model: Optional[Path] = typer.Option(None, "--objectness-model", help="U2-Net-p .onnx file for the objectness cue."),
    threshold: float = typer.Option(0.5, "--threshold", help="Alpha above which a pixel is in the binary mask."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Use at most this many frames."),
    start: int = typer.Option(0, "--start", help="First frame to use."),
    stride: int = typer.Option(1, "--stride", help="Use every N-th frame."),
    no_video: bool = typer.Option(False, "--no-video", help="Write PNG frames only, no preview mp4."),
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, quiet: bool = QuietOption, overwrite: bool = OverwriteOption,
) -> None:
    """Unsupervised video object segmentation: soft alpha, DAVIS-style masks, RGBA layers, preview."""
    task_config = {"objectness": objectness, "objectness_model": str(objectness_model) if objectness_model else None,
                   "threshold": threshold}
    _run_task("segment", input, output, task_config, max_frames=max_frames, start=start, stride=stride,
              no_video=no_video, options=_common_options(device, flow, raft_weights, max_side, steps, seed,
                                                         learning_rate, time_budget, cache_dir),
              quiet=quiet, overwrite=overwrite)


def _run_task(task_name: str, input: Path, output: Path, task_config: dict, *, max_frames, start, stride, no_video,
              options, quiet: bool, overwrite: bool) -> None:
    _setup_logging(quiet)

    def work() -> None:
        from vdp.errors import VdpError

        # Refuse before any heavy import or work: the user's existing result is kept as it is.
        destination = output / (input.name if input.is_dir() else input.stem)
        if destination.exists() and not overwrite:
            raise VdpError(f"{destination} already exists; pass --overwrite to replace it, or choose another -o folder")
        from vdp import api

        video = api.load_video(input, start=start, max_frames=max_frames, stride=stride)
        logging.getLogger("vdp").info("%s: %d frames, %dx%d, %s fps%s", video.name, video.num_frames, video.width,
                                      video.height, video.fps, ", with audio" if video.has_audio else "")
        result = api.run(task_name, video, config=task_config, options=options,
                         progress=Progress(quiet=quiet, description=task_name),
                         flow_progress=Progress(quiet=quiet, description="flow"))
        folder = api.save(result, video, output, overwrite=overwrite, write_videos=not no_video,
                          frame_progress=Progress(quiet=quiet, description="writing"))
        if not quiet:
            timings = ", ".join(f"{key} {value:.1f}s" for key, value in result.timings.items())
            typer.echo(f"device {result.info['device']}, flow {result.info['flow_reason']}", err=True)
            if "objectness" in result.info:
                typer.echo(result.info["objectness"], err=True)
            typer.echo(f"timings: {timings}", err=True)
        typer.echo(str(folder))

    _run_guarded(work)


@app.command("tasks")
def list_tasks() -> None:
    """List the registered tasks (the `vdp.tasks` entry-point group)."""
    from vdp.task import available_tasks

    for name, entry in sorted(available_tasks().items()):
        try:
            summary = entry.load().summary
        except Exception as error:  # a broken third-party plugin must not hide the others
            summary = f"(cannot load: {error})"
        typer.echo(f"{name:10s} {summary}")


@bench_app.command("davis")
def bench_davis(
    root: Path = typer.Argument(..., help="DAVIS root with JPEGImages/480p and Annotations/480p."),
    output: Path = typer.Option(Path("bench-out/davis"), "--output", "-o", help="Report folder."),
    sequences: Optional[str] = typer.Option(None, "--sequences", help="Comma-separated subset (default: all)."),
    objectness: str = typer.Option("auto", "--objectness", help="Salient-object cue: auto, on, off."),
    save_masks: bool = typer.Option(False, "--save-masks", help="Also keep each sequence's full outputs."),
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, quiet: bool = QuietOption,
) -> None:
    """Segment every sequence of a DAVIS folder and score J and F (resumable; failures recorded)."""
    _setup_logging(quiet)

    def work() -> None:
        from vdp.bench.davis import run_davis_benchmark

        options = _common_options(device, flow, raft_weights, max_side, steps, seed, learning_rate, time_budget, cache_dir)
        summary = run_davis_benchmark(
            root, output, options=options, task_config={"objectness": objectness},
            sequences=sequences.split(",") if sequences else None, save_outputs=save_masks,
            log=None if quiet else (lambda line: typer.echo(line, err=True)),
        )
        typer.echo(json.dumps(summary["overall"], indent=2))
        if summary["failed"]:
            typer.echo(f"{len(summary['failed'])} sequence(s) failed: {', '.join(summary['failed'])}", err=True)
            raise typer.Exit(1)

    _run_guarded(work)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
