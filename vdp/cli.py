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
        self.first: Optional[tuple[int, float]] = None

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
        now = time.perf_counter()
        if self.first is None:  # the rate is measured from the first report, not from set-up
            self.first = (done, now)
        tenth = (10 * done) // max(total, 1)
        if tenth != self.last_reported:
            self.last_reported = tenth
            first_done, first_time = self.first
            eta = f"{(now - first_time) / (done - first_done) * (total - done):.0f}s" if done > first_done else "?"
            loss = f" loss {losses['total']:.4f}" if losses and "total" in losses else ""
            typer.echo(f"{self.description}: {done}/{total}{loss} ({now - first_time:.0f}s, ETA {eta})", err=True)


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
                    seed: int, learning_rate: float, time_budget: Optional[float], cache_dir: Optional[str],
                    perceptual: str = "auto", vgg_weights: Optional[Path] = None):
    from vdp.api import RunOptions
    from vdp.optimize import OptimConfig

    return RunOptions(
        device=device, flow=flow, raft_weights=str(raft_weights) if raft_weights else None, max_side=max_side,
        cache_dir=cache_dir, perceptual=perceptual, vgg_weights=str(vgg_weights) if vgg_weights else None,
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
PerceptualOption = typer.Option("auto", "--perceptual", help="VGG16 perceptual term: auto (when weights are cached), on, off.")
VggOption = typer.Option(None, "--vgg-weights", help="torchvision VGG16 weights file for the perceptual term.")
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
    cache_dir: Optional[str] = CacheOption, perceptual: str = PerceptualOption, vgg_weights: Optional[Path] = VggOption,
    quiet: bool = QuietOption, overwrite: bool = OverwriteOption,
) -> None:
    """Unsupervised video object segmentation: soft alpha, DAVIS-style masks, RGBA layers, preview."""
    task_config = {"objectness": objectness, "objectness_model": str(objectness_model) if objectness_model else None,
                   "threshold": threshold}
    _run_task("segment", input, output, task_config, max_frames=max_frames, start=start, stride=stride,
              no_video=no_video, options=_common_options(device, flow, raft_weights, max_side, steps, seed,
                                                         learning_rate, time_budget, cache_dir, perceptual, vgg_weights),
              quiet=quiet, overwrite=overwrite)


def _parse_airlight(text: Optional[str]):
    from vdp.errors import ConfigError

    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(f"--airlight expects three numbers r,g,b in (0, 1], e.g. 0.85,0.87,0.9; got {text!r}")
    return values


@app.command()
def dehaze(
    input: Path = typer.Argument(..., help="Video file or folder of frames."),
    output: Path = typer.Option(Path("vdp-out"), "--output", "-o", help="Output folder; results go to OUTPUT/<video name>/."),
    airlight: Optional[str] = typer.Option(None, "--airlight", help="Airlight r,g,b in (0, 1] (default: estimated once per video)."),
    alpha_input: str = typer.Option("both", "--alpha-input", help="What the transmission net sees: frame, flow or both."),
    transmission_floor: float = typer.Option(0.1, "--transmission-floor", help="Lower bound on t when inverting the haze model."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Use at most this many frames."),
    start: int = typer.Option(0, "--start", help="First frame to use."),
    stride: int = typer.Option(1, "--stride", help="Use every N-th frame."),
    no_video: bool = typer.Option(False, "--no-video", help="Write PNG frames only, no mp4."),
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, perceptual: str = PerceptualOption, vgg_weights: Optional[Path] = VggOption,
    quiet: bool = QuietOption, overwrite: bool = OverwriteOption,
) -> None:
    """Haze removal (I = t*J + (1-t)*A): clear video and frames, transmission maps, airlight in metrics.json."""
    def config() -> dict:
        return {"airlight": _parse_airlight(airlight), "alpha_input": alpha_input, "transmission_floor": transmission_floor}

    _run_task("dehaze", input, output, config, max_frames=max_frames, start=start, stride=stride, no_video=no_video,
              options=_common_options(device, flow, raft_weights, max_side, steps, seed, learning_rate, time_budget,
                                      cache_dir, perceptual, vgg_weights),
              quiet=quiet, overwrite=overwrite)


@app.command()
def relight(
    input: Path = typer.Argument(..., help="Video file or folder of frames."),
    output: Path = typer.Option(Path("vdp-out"), "--output", "-o", help="Output folder; results go to OUTPUT/<video name>/."),
    gamma_init: Optional[float] = typer.Option(None, "--gamma-init", help="Initial g = 1/gamma in (0, 1) (default: from exposure statistics)."),
    fixed_gamma: bool = typer.Option(False, "--fixed-gamma", help="Keep g at its initial value."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Use at most this many frames."),
    start: int = typer.Option(0, "--start", help="First frame to use."),
    stride: int = typer.Option(1, "--stride", help="Use every N-th frame."),
    no_video: bool = typer.Option(False, "--no-video", help="Write PNG frames only, no mp4."),
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, perceptual: str = PerceptualOption, vgg_weights: Optional[Path] = VggOption,
    quiet: bool = QuietOption, overwrite: bool = OverwriteOption,
) -> None:
    """Low-light enhancement (logarithmic formulation, learned gamma): enhanced video, illumination maps."""
    def config() -> dict:
        return {"gamma_init": gamma_init, "learn_gamma": not fixed_gamma}

    _run_task("relight", input, output, config, max_frames=max_frames, start=start, stride=stride, no_video=no_video,
              options=_common_options(device, flow, raft_weights, max_side, steps, seed, learning_rate, time_budget,
                                      cache_dir, perceptual, vgg_weights),
              quiet=quiet, overwrite=overwrite)


def _run_task(task_name: str, input: Path, output: Path, task_config, *, max_frames, start, stride, no_video,
              options, quiet: bool, overwrite: bool) -> None:
    _setup_logging(quiet)

    def work() -> None:
        from vdp.errors import VdpError

        # Refuse before any heavy import or work: the user's existing result is kept as it is.
        destination = output / (input.name if input.is_dir() else input.stem)
        if destination.exists() and not overwrite:
            raise VdpError(f"{destination} already exists; pass --overwrite to replace it, or choose another -o folder")
        from vdp import api
        from vdp.outputs import check_writable
        from vdp.video_io import check_input

        check_input(input)
        api.check_options(options)
        created = not output.exists()
        check_writable(output)
        try:
            video = api.load_video(input, start=start, max_frames=max_frames, stride=stride)
            logging.getLogger("vdp").info("%s: %d frames, %dx%d, %s fps%s", video.name, video.num_frames, video.width,
                                          video.height, video.fps, ", with audio" if video.has_audio else "")
            config = task_config() if callable(task_config) else task_config
            result = api.run(task_name, video, config=config, options=options,
                             progress=Progress(quiet=quiet, description=task_name),
                             flow_progress=Progress(quiet=quiet, description="flow"))
            folder = api.save(result, video, output, overwrite=overwrite, write_videos=not no_video,
                              frame_progress=Progress(quiet=quiet, description="writing"))
        except BaseException:
            if created and output.is_dir() and not any(output.iterdir()):
                output.rmdir()  # a failed run leaves no empty folder of its own behind
            raise
        if not quiet:
            timings = ", ".join(f"{key} {value:.1f}s" for key, value in result.timings.items())
            typer.echo(f"device {result.info['device']}, flow {result.info['flow_reason']}", err=True)
            for key in ("objectness", "perceptual", "airlight", "gamma_g"):
                if key in result.info:
                    value = str(result.info[key])
                    typer.echo(value if value.startswith(f"{key}:") else f"{key}: {value}", err=True)
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


def _bench_restoration(layout: str, task_name: str, root: Path, output: Path, limit_frames, pairs, save_frames,
                       task_config: dict, options, quiet: bool) -> None:
    _setup_logging(quiet)

    def work() -> None:
        from vdp.bench.restoration import run_restoration_benchmark, vdp_restorer

        summary = run_restoration_benchmark(
            root, output, layout=layout, restorer=vdp_restorer(task_name, options=options, task_config=task_config),
            method_name=f"vdp {task_name}", limit_frames=limit_frames,
            pairs=[p.strip() for p in pairs.split(",") if p.strip()] if pairs else None, save_frames=save_frames,
            log=None if quiet else (lambda line: typer.echo(line, err=True)),
        )
        typer.echo(json.dumps(summary["overall"], indent=2))
        if summary["failed"]:
            typer.echo(f"{len(summary['failed'])} item(s) failed: {', '.join(summary['failed'])}", err=True)
            raise typer.Exit(1)

    _run_guarded(work)


LimitFramesOption = typer.Option(None, "--limit-frames", help="Use the first N frames of each video (SDSD protocol: 30).")
PairsOption = typer.Option(None, "--pairs", help="Comma-separated subset of videos (default: all).")
SaveFramesOption = typer.Option(False, "--save-frames", help="Keep the restored frames as PNG.")


@bench_app.command("revide")
def bench_revide(
    root: Path = typer.Argument(..., help="REVIDE-layout folder: hazy/<video>/ and gt/<video>/."),
    output: Path = typer.Option(Path("bench-out/revide"), "--output", "-o", help="Report folder."),
    alpha_input: str = typer.Option("both", "--alpha-input", help="What the transmission net sees: frame, flow or both."),
    limit_frames: Optional[int] = LimitFramesOption, pairs: Optional[str] = PairsOption,
    save_frames: bool = SaveFramesOption,
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, perceptual: str = PerceptualOption, vgg_weights: Optional[Path] = VggOption,
    quiet: bool = QuietOption,
) -> None:
    """Dehaze every video of a REVIDE-layout folder; PSNR, SSIM, temporal consistency (resumable)."""
    _bench_restoration("revide", "dehaze", root, output, limit_frames, pairs, save_frames, {"alpha_input": alpha_input},
                       _common_options(device, flow, raft_weights, max_side, steps, seed, learning_rate, time_budget,
                                       cache_dir, perceptual, vgg_weights), quiet)


@bench_app.command("sdsd")
def bench_sdsd(
    root: Path = typer.Argument(..., help="SDSD-layout folder: input/<pair>/ and GT/<pair>/ (.npy or .png), or indoor_np/outdoor_np."),
    output: Path = typer.Option(Path("bench-out/sdsd"), "--output", "-o", help="Report folder."),
    limit_frames: Optional[int] = LimitFramesOption, pairs: Optional[str] = PairsOption,
    save_frames: bool = SaveFramesOption,
    device: str = DeviceOption, flow: str = FlowOption, raft_weights: Optional[Path] = RaftOption,
    max_side: int = MaxSideOption, steps: int = StepsOption, seed: int = SeedOption,
    learning_rate: float = LearningRateOption, time_budget: Optional[float] = BudgetOption,
    cache_dir: Optional[str] = CacheOption, perceptual: str = PerceptualOption, vgg_weights: Optional[Path] = VggOption,
    quiet: bool = QuietOption,
) -> None:
    """Relight every pair of an SDSD-layout folder; PSNR, SSIM, temporal consistency (resumable)."""
    _bench_restoration("sdsd", "relight", root, output, limit_frames, pairs, save_frames, {},
                       _common_options(device, flow, raft_weights, max_side, steps, seed, learning_rate, time_budget,
                                       cache_dir, perceptual, vgg_weights), quiet)


synth_app = typer.Typer(no_args_is_help=True, help="Make benchmark folders with ground truth from clean videos.")
app.add_typer(synth_app, name="synth")


@synth_app.command("haze")
def synth_haze(
    source: Path = typer.Argument(..., help="Clean video file, frame folder, or DAVIS root."),
    output: Path = typer.Argument(..., help="Output folder (REVIDE layout: hazy/<video>/, gt/<video>/, recipe.json)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the per-video haze parameters."),
    limit_frames: Optional[int] = typer.Option(None, "--limit-frames", help="Keep the first N frames of each video."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Shrink frames so the longer side is at most this."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Hazy videos from the scattering model (smooth, temporally coherent pseudo-depth, per-video airlight)."""
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import synthesize_haze

        recipe = synthesize_haze(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                 overwrite=overwrite)
        typer.echo(f"{len(recipe['videos'])} video(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


@synth_app.command("lowlight")
def synth_lowlight(
    source: Path = typer.Argument(..., help="Clean video file, frame folder, or DAVIS root."),
    output: Path = typer.Argument(..., help="Output folder (SDSD layout: input/<pair>/, GT/<pair>/, recipe.json)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the per-video exposure and noise."),
    limit_frames: Optional[int] = typer.Option(None, "--limit-frames", help="Keep the first N frames of each video."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Shrink frames so the longer side is at most this."),
    frame_format: str = typer.Option("png", "--format", help="png or npy (SDSD *_np style, BGR order)."),
    overwrite: bool = OverwriteOption,
) -> None:
    """Low-light videos: gain, gamma and signal-dependent (Poisson-Gaussian) noise."""
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import synthesize_lowlight

        recipe = synthesize_lowlight(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                     format=frame_format, overwrite=overwrite)
        typer.echo(f"{len(recipe['videos'])} video(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler or `kill`) cleans up like Ctrl-C: no half-written result stays."""
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    app()


if __name__ == "__main__":
    main()
