"""Command line: `vdp TASK INPUT -o OUT` for every registered task, `vdp tasks`, `vdp bench ...`,
`vdp synth ...`.

Task and bench options are generated from config dataclasses (`vdp.cli_options`); heavy modules
(torch, OpenCV) are imported inside the commands, so `vdp --version` and `--help` answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import click

import vdp

DEBUG = {"on": False}


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
        self.last_done: Optional[int] = None

    def __call__(self, done: int, total: int, losses: Optional[dict] = None) -> None:
        if self.quiet:
            return
        if self.last_done is not None and done < self.last_done:  # a new pass (the next window of a long video)
            if self.bar is not None:
                self.bar.close()
            self.bar, self.first, self.last_reported = None, None, -1
        self.last_done = done
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
            click.echo(f"{self.description}: {done}/{total}{loss} ({now - first_time:.0f}s, ETA {eta})", err=True)


def _run_guarded(function) -> None:
    """Show user mistakes as one clear line (exit 2), keep tracebacks for --debug and real bugs."""
    from vdp.errors import VdpError

    try:
        function()
    except VdpError as error:
        if DEBUG["on"]:
            raise
        click.echo(f"error: {error}", err=True)
        raise click.exceptions.Exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: nothing was written as finished", err=True)
        raise click.exceptions.Exit(130)


# --- Commands made from config dataclasses ---------------------------------------------------------
#
# Every task registered in the `vdp.tasks` entry-point group is a command, `vdp TASK INPUT -o OUT`,
# whose options come from two dataclasses: `vdp.api.RunOptions` (shared by every task and bench)
# and the task's own config. The benches take the same options as the task they run. Commands are
# listed without importing their task (its one-line summary is read from the plugin's source), and
# their options are built the first time click asks for them, so `vdp --help` stays instant.


def _input_options() -> list[click.Parameter]:
    """What to read and write around a task run: declared once, for every task command."""
    return [
        click.Argument(["input"], type=click.Path(path_type=Path)),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("vdp-out"), show_default=True,
                     help="Output folder; results go to OUTPUT/<video name>/."),
        click.Option(["--max-frames"], type=int, default=None, help="Use at most this many frames."),
        click.Option(["--start"], type=int, default=0, show_default=True, help="First frame to use."),
        click.Option(["--stride"], type=int, default=1, show_default=True, help="Use every N-th frame."),
        click.Option(["--no-video"], is_flag=True, default=False, help="Write PNG frames only, no mp4."),
        _quiet_option(),
        click.Option(["--overwrite"], is_flag=True, default=False, help="Replace an existing result folder."),
    ]


def _quiet_option() -> click.Option:
    return click.Option(["--quiet", "-q"], is_flag=True, default=False, help="Print only errors and the output folder.")


def _execution_options() -> list[click.Parameter]:
    """Where the items of a batch or bench run (`vdp.parallel`)."""
    return [
        click.Option(["--workers"], type=int, default=None, metavar="N",
                     help="Items run at once on this machine, the cores split between them [default: one per core, as "
                          "memory allows (4 GB each); 1 on a GPU]."),
        click.Option(["--threads"], type=int, default=None, metavar="N",
                     help="Threads (with --ray: CPUs asked for) per item [default: this machine's cores / --workers; "
                          "1 with --ray]."),
        click.Option(["--ray"], default=None, metavar="auto|ADDRESS",
                     help="Run each item as a Ray task: 'auto' joins the cluster in RAY_ADDRESS or starts a local "
                          "Ray; or a cluster address. The output folder must be on a filesystem every node sees. "
                          "Needs: pip install \"vdp[ray]\"."),
    ]


@contextlib.contextmanager
def _executor(values: dict[str, Any], options: Any):
    """The executor the execution options ask for (checked before any item runs), closed after."""
    from vdp.parallel import make_executor

    if values.get("ray") is not None and values.get("workers") not in (None, 1):
        from vdp.errors import ConfigError

        raise ConfigError("--workers is for this machine; with --ray, Ray places the items (use --threads to size them)")
    executor = make_executor(workers=values.get("workers"), ray=values.get("ray"), threads=values.get("threads"),
                             device=options.device)
    if not values.get("quiet"):
        click.echo(f"running items: {executor.description}", err=True)
    try:
        yield executor
    finally:
        executor.close()


class _ConfiguredCommand(click.Command):
    """A command whose options are generated from config dataclasses the first time they are needed.

    Args:
        name: the command's name.
        short_help: the one line shown in the parent's command list (known without imports).
        fixed: builds the command's own parameters (arguments and options that are not config).
        task_name: the task whose config (and `RunOptions`) adds options.
        run: called with (a function returning the (RunOptions, task config) pair built from the
            command line, to be called where its errors are shown as one line; every parameter's
            value by name).
        help_text: the command's help (default: the task class's docstring).
    """

    def __init__(self, name: str, *, short_help: str, fixed: Callable[[], list[click.Parameter]], task_name: str,
                 run: Callable[..., None], help_text: str | None = None) -> None:
        self._fixed, self._task_name, self._run, self._help_text = fixed, task_name, run, help_text
        self._built: list[click.Parameter] | None = None
        super().__init__(name, callback=self._invoke, short_help=short_help, no_args_is_help=True)

    @property
    def params(self) -> list[click.Parameter]:  # built on first use: it loads the task plugin
        if self._built is None:
            self._build()
        return self._built

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:  # click's __init__ sets an empty list
        pass

    @property
    def help(self) -> str | None:
        if self._help_text is None:
            self._build()
        return self._help_text

    @help.setter
    def help(self, value: str | None) -> None:
        pass

    def _build(self) -> None:
        from vdp.api import RunOptions
        from vdp.cli_options import option_specs
        from vdp.task import load_task

        self.task = load_task(self._task_name)
        self.run_specs = option_specs(RunOptions)
        self.task_specs = option_specs(self.task.config_class)
        fixed = self._fixed()
        taken: dict[str, str] = {}
        for owner, flags in [("vdp", p.opts + p.secondary_opts) for p in fixed if isinstance(p, click.Option)] + \
                [("the run options", s.flags) for s in self.run_specs] + [(f"task {self.task.name!r}", s.flags) for s in self.task_specs]:
            for flag in (part for entry in flags for part in entry.split("/")):
                if flag in taken:
                    raise TypeError(f"{owner} declares {flag}, which {taken[flag]} already uses; "
                                    "rename the config field or give it other flags")
                taken[flag] = owner
        self._built = fixed + [spec.click_option() for spec in self.run_specs + self.task_specs]
        if self._help_text is None:
            self._help_text = inspect.getdoc(type(self.task)) or self.task.summary

    def _invoke(self, **values: Any) -> None:
        _setup_logging(values.get("quiet", False))

        def configs() -> tuple[Any, Any]:
            from vdp.api import RunOptions
            from vdp.cli_options import build_config
            from vdp.task import make_config

            options = build_config(RunOptions, self.run_specs, values)
            config = make_config(self.task, build_config(self.task.config_class, self.task_specs, values))
            return options, config

        self._run(configs, values)


def _task_summary(entry_point) -> str:
    """A task's `summary`, read from its plugin's source without importing it (imports are slow)."""
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec(entry_point.module)
        tree = ast.parse(Path(spec.origin).read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == entry_point.attr:
                for statement in node.body:
                    targets = statement.targets if isinstance(statement, ast.Assign) else \
                        [statement.target] if isinstance(statement, ast.AnnAssign) else []
                    if (any(getattr(target, "id", None) == "summary" for target in targets)
                            and isinstance(statement.value, ast.Constant)):
                        return str(statement.value.value)
    except (ImportError, OSError, SyntaxError, AttributeError, ValueError):
        pass
    return f"task {entry_point.value}"


def _task_command(name: str, entry_point) -> click.Command:
    return _ConfiguredCommand(name, short_help=_task_summary(entry_point), fixed=_input_options, task_name=name,
                              run=functools.partial(_run_task, name))


class _Group(click.Group):
    """Commands listed in the order they were added (click suggests a name when one is mistyped)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


class _CommandsWithTasks(_Group):
    """The top-level group: one command per registered task, then the commands written here.

    The tasks are looked up the first time a command is (not at start-up: `vdp --version` needs
    none of them).
    """

    _tasks_added = False

    def _add_tasks(self) -> None:
        if self._tasks_added:
            return
        from vdp.task import available_tasks

        self._tasks_added = True
        tasks = {name: _task_command(name, entry_point) for name, entry_point in sorted(available_tasks().items())
                 if name not in self.commands}
        self.commands = {**tasks, **self.commands}  # tasks first in --help: they are what vdp is for

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_tasks()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._add_tasks()  # before a miss too: click suggests a close name from self.commands
        return super().get_command(ctx, name)


def _run_task(task_name: str, configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    input, output, quiet, overwrite = values["input"], values["output"], values["quiet"], values["overwrite"]

    def work() -> None:
        from vdp.errors import VdpError

        # Refuse before any heavy import or work: the user's existing result is kept as it is.
        destination = output / (input.name if input.is_dir() else input.stem)
        if destination.exists() and not overwrite:
            raise VdpError(f"{destination} already exists; pass --overwrite to replace it, or choose another -o folder")
        from vdp import api
        from vdp.outputs import check_writable
        from vdp.video import check_input

        check_input(input)
        options, config = configs()
        api.check_options(options)
        created = not output.exists()
        check_writable(output)
        try:
            video = api.load_video(input, start=values["start"], max_frames=values["max_frames"], stride=values["stride"])
            logging.getLogger("vdp").info("%s: %d frames, %dx%d, %s fps%s", video.name, video.num_frames, video.width,
                                          video.height, video.fps, ", with audio" if video.has_audio else "")
            result = api.run(task_name, video, config=config, options=options,
                             progress=Progress(quiet=quiet, description=task_name),
                             flow_progress=Progress(quiet=quiet, description="flow"))
            folder = api.save(result, video, output, overwrite=overwrite, write_videos=not values["no_video"],
                              frame_progress=Progress(quiet=quiet, description="writing"),
                              extra_metrics={"input_selection": _selection(values)})
        except BaseException:
            if created and output.is_dir() and not any(output.iterdir()):
                output.rmdir()  # a failed run leaves no empty folder of its own behind
            raise
        if not quiet:
            timings = ", ".join(f"{key} {value:.1f}s" for key, value in result.timings.items())
            click.echo(f"device {result.info['device']}, flow {result.info['flow_reason']}", err=True)
            for key in ("perceptual", *result.highlights):
                if key in result.info:
                    value = str(result.info[key])
                    click.echo(value if value.startswith(f"{key}:") else f"{key}: {value}", err=True)
            click.echo(f"timings: {timings}", err=True)
        click.echo(str(folder))

    _run_guarded(work)


def _selection(values: dict[str, Any]) -> dict[str, Any]:
    """The frame selection of a run (recorded so that `vdp edit` can re-read the same frames)."""
    return {"start": values["start"], "max_frames": values["max_frames"], "stride": values["stride"]}


def _show_version(ctx: click.Context, parameter: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"vdp {vdp.__version__}")
        ctx.exit()


@click.group(cls=_CommandsWithTasks, no_args_is_help=True)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
def app(debug: bool) -> None:
    """Split a video into layers by fitting small networks to it."""
    DEBUG["on"] = debug


@app.command("tasks")
def list_tasks() -> None:
    """List the registered tasks (the `vdp.tasks` entry-point group)."""
    from vdp.task import available_tasks

    for name, entry in sorted(available_tasks().items()):
        try:
            summary = entry.load().summary
        except Exception as error:  # a broken third-party plugin must not hide the others
            summary = f"(cannot load: {error})"
        click.echo(f"{name:10s} {summary}")


# --- Benchmarks: a task over a benchmark folder, with the task's own options ------------------------

def _bench_davis_options() -> list[click.Parameter]:
    return [
        click.Argument(["root"], type=click.Path(path_type=Path)),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("bench-out/davis"),
                     show_default=True, help="Report folder."),
        click.Option(["--sequences"], default=None, help="Comma-separated subset (default: all)."),
        click.Option(["--save-masks"], is_flag=True, default=False, help="Also keep each sequence's full outputs."),
        *_execution_options(),
        _quiet_option(),
    ]


def _bench_restoration_options(default_output: str) -> Callable[[], list[click.Parameter]]:
    def options() -> list[click.Parameter]:
        return [
            click.Argument(["root"], type=click.Path(path_type=Path)),
            click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path(default_output),
                         show_default=True, help="Report folder."),
            click.Option(["--limit-frames"], type=int, default=None,
                         help="Use the first N frames of each video (SDSD protocol: 30)."),
            click.Option(["--pairs"], default=None, help="Comma-separated subset of videos (default: all)."),
            click.Option(["--save-frames"], is_flag=True, default=False, help="Keep the restored frames as PNG."),
            *_execution_options(),
            _quiet_option(),
        ]

    return options


def _bench_blend_options() -> list[click.Parameter]:
    return [
        click.Argument(["root"], type=click.Path(path_type=Path)),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("bench-out/blend"),
                     show_default=True, help="Report folder."),
        click.Option(["--limit-frames"], type=int, default=None, help="Use the first N frames of each pair."),
        click.Option(["--pairs"], default=None, help="Comma-separated subset of pairs, e.g. bear+camel (default: all)."),
        click.Option(["--save-layers"], is_flag=True, default=False, help="Keep the separated layers as PNG."),
        *_execution_options(),
        _quiet_option(),
    ]


def _bench_remove_options() -> list[click.Parameter]:
    return [
        click.Argument(["root"], type=click.Path(path_type=Path)),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("bench-out/remove"),
                     show_default=True, help="Report folder."),
        click.Option(["--masks"], type=click.Choice(["both", "true", "own"]), default="both", show_default=True,
                     help="Score with the true masks (fill quality alone), with vdp's own masks (the whole "
                          "pipeline), or both."),
        click.Option(["--dilate"], type=int, default=None, metavar="PX", help="Mask growth [default: 6]."),
        click.Option(["--limit-frames"], type=int, default=None, help="Use the first N frames of each item."),
        click.Option(["--items"], default=None, help="Comma-separated subset of items (default: all)."),
        click.Option(["--save-frames"], is_flag=True, default=False, help="Keep the outputs as PNG."),
        *_execution_options(),
        _quiet_option(),
    ]


def _bench_remove(configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    quiet, items = values["quiet"], values["items"]

    def work() -> None:
        from vdp.bench.remove import MODES, run_remove_benchmark, vdp_remover

        options, config = configs()
        with _executor(values, options) as executor:
            summary = run_remove_benchmark(
                values["root"], values["output"], remover=vdp_remover(options=options, task_config=config,
                                                                      dilate=values["dilate"]),
                method_name="vdp remove", modes=MODES if values["masks"] == "both" else (values["masks"],),
                limit_frames=values["limit_frames"],
                items=[i.strip() for i in items.split(",") if i.strip()] if items else None,
                save_frames=values["save_frames"], log=None if quiet else (lambda line: click.echo(line, err=True)),
                executor=executor,
            )
        _report_bench(summary, "item(s)")

    _run_guarded(work)


def _bench_blend(configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    quiet, pairs = values["quiet"], values["pairs"]

    def work() -> None:
        from vdp.bench.blend import run_blend_benchmark, vdp_separator

        options, config = configs()
        with _executor(values, options) as executor:
            summary = run_blend_benchmark(
                values["root"], values["output"], separator=vdp_separator(options=options, task_config=config),
                method_name="vdp separate", limit_frames=values["limit_frames"],
                pairs=[p.strip() for p in pairs.split(",") if p.strip()] if pairs else None,
                save_layers=values["save_layers"], log=None if quiet else (lambda line: click.echo(line, err=True)),
                executor=executor,
            )
        _report_bench(summary, "item(s)")

    _run_guarded(work)


def _bench_davis(configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    quiet = values["quiet"]

    def work() -> None:
        from vdp.bench.davis import run_davis_benchmark

        options, config = configs()
        with _executor(values, options) as executor:
            summary = run_davis_benchmark(
                values["root"], values["output"], options=options, task_config=config,
                sequences=values["sequences"].split(",") if values["sequences"] else None,
                save_outputs=values["save_masks"], log=None if quiet else (lambda line: click.echo(line, err=True)),
                executor=executor,
            )
        _report_bench(summary, "sequence(s)")

    _run_guarded(work)


def _bench_restoration(layout: str, task_name: str) -> Callable[..., None]:
    def run(configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
        quiet, pairs = values["quiet"], values["pairs"]

        def work() -> None:
            from vdp.bench.restoration import run_restoration_benchmark, vdp_restorer

            options, config = configs()
            with _executor(values, options) as executor:
                summary = run_restoration_benchmark(
                    values["root"], values["output"], layout=layout,
                    restorer=vdp_restorer(task_name, options=options, task_config=config),
                    method_name=f"vdp {task_name}", limit_frames=values["limit_frames"],
                    pairs=[p.strip() for p in pairs.split(",") if p.strip()] if pairs else None,
                    save_frames=values["save_frames"], log=None if quiet else (lambda line: click.echo(line, err=True)),
                    executor=executor,
                )
            _report_bench(summary, "item(s)")

        _run_guarded(work)

    return run


def _report_bench(summary: dict[str, Any], what: str) -> None:
    click.echo(json.dumps(summary["overall"], indent=2))
    if summary["failed"]:
        click.echo(f"{len(summary['failed'])} {what} failed: {', '.join(summary['failed'])}", err=True)
        raise click.exceptions.Exit(1)


class _BenchCommands(_Group):
    """`vdp bench davis|revide|sdsd|blend`: each runs one task, with that task's options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        benches = {
            "davis": ("segment", _bench_davis_options, _bench_davis,
                      "Segment every sequence of a DAVIS folder and score J and F (resumable; failures recorded)."),
            "revide": ("dehaze", _bench_restoration_options("bench-out/revide"), _bench_restoration("revide", "dehaze"),
                       "Dehaze every video of a REVIDE-layout folder (hazy/<video>/ and gt/<video>/); PSNR, SSIM, "
                       "temporal consistency (resumable)."),
            "sdsd": ("relight", _bench_restoration_options("bench-out/sdsd"), _bench_restoration("sdsd", "relight"),
                     "Relight every pair of an SDSD-layout folder (input/<pair>/ and GT/<pair>/, .npy or .png, or "
                     "indoor_np/outdoor_np); PSNR, SSIM, temporal consistency (resumable)."),
            "blend": ("separate", _bench_blend_options, _bench_blend,
                      ("Separate every blend of a `vdp synth blend` folder (<pair>/blend/, layer1/, layer2/) into two "
                       "layers; permutation-invariant layer loss against the identity's (resumable).")),
            "remove": ("segment", _bench_remove_options, _bench_remove,
                       ("Remove the object from every composite of a `vdp synth composite` folder (<item>/composite/, "
                        "background/, mask/); PSNR/SSIM in the object's region and over the frame, temporal ratio, with "
                        "the true masks and with vdp's own (resumable).")),
        }
        for name, (task_name, fixed, run, help_text) in benches.items():
            self.add_command(_ConfiguredCommand(name, short_help=help_text.split(";")[0].split(" (")[0] + ".",
                                                fixed=fixed, task_name=task_name, run=run, help_text=help_text), name)


def _batch_options() -> list[click.Parameter]:
    return [
        click.Argument(["inputs"], nargs=-1, required=True),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("vdp-batch"), show_default=True,
                     help="Output folder: OUTPUT/<video name>/ per video, OUTPUT/batch.json and batch.csv."),
        click.Option(["--max-frames"], type=int, default=None, help="Use at most this many frames of each video."),
        click.Option(["--start"], type=int, default=0, show_default=True, help="First frame to use."),
        click.Option(["--stride"], type=int, default=1, show_default=True, help="Use every N-th frame."),
        click.Option(["--no-video"], is_flag=True, default=False, help="Write PNG frames only, no mp4."),
        *_execution_options(),
        _quiet_option(),
    ]


def _run_batch(task_name: str, configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    def work() -> None:
        from vdp import api
        from vdp.batch import find_inputs, run_batch

        options, config = configs()
        api.check_options(options)
        find_inputs(values["inputs"])  # a wrong path is refused before Ray or workers start
        with _executor(values, options) as executor:
            summary = run_batch(task_name, list(values["inputs"]), values["output"], options=options, config=config,
                                selection=_selection(values), write_videos=not values["no_video"], executor=executor,
                                log=None if values["quiet"] else (lambda line: click.echo(line, err=True)))
        overall = summary["overall"]
        click.echo(f"{overall['done']} of {overall['items']} done, {overall['failed']} failed: "
                   f"{values['output'] / 'batch.csv'}", err=True)
        click.echo(str(values["output"]))
        if summary["failed"]:
            click.echo(f"failed: {', '.join(summary['failed'])} (see OUTPUT/<name>/error.txt; a rerun retries them)",
                       err=True)
            raise click.exceptions.Exit(1)

    _run_guarded(work)


class _BatchCommands(_Group):
    """`vdp batch TASK INPUTS...`: one subcommand per registered task, with that task's options."""

    def _add_tasks(self) -> None:
        if self.commands:
            return
        from vdp.task import available_tasks

        for name, entry_point in sorted(available_tasks().items()):
            self.add_command(_ConfiguredCommand(
                name, short_help=_task_summary(entry_point), fixed=_batch_options, task_name=name,
                run=functools.partial(_run_batch, name),
                help_text=(f"Run {name} on every video the INPUTS name (video files, folders of frames, folders of "
                           "those, or quoted globs): OUTPUT/<video name>/ each, as `vdp " + name + "` writes it, and "
                           "a summary in OUTPUT/batch.json and batch.csv. Resumable: a rerun skips finished videos "
                           "and retries failed ones; exit status 1 if any failed.")), name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_tasks()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._add_tasks()
        return super().get_command(ctx, name)


@app.group("batch", cls=_BatchCommands, no_args_is_help=True)
def batch_app() -> None:
    """Run a task on many videos (resumable; local workers or a Ray cluster)."""


@app.group("bench", cls=_BenchCommands, no_args_is_help=True)
def bench_app() -> None:
    """Run a task over a benchmark folder and score it."""


@app.group("synth", cls=_Group, no_args_is_help=True)
def synth_app() -> None:
    """Make benchmark folders with ground truth from clean videos."""


def _synth_options(function: Callable) -> Callable:
    """The options every `vdp synth` command takes (applied in reverse, so --help lists them in order)."""
    for option in reversed([
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for the per-video parameters."),
        click.option("--limit-frames", type=int, default=None, help="Keep the first N frames of each video."),
        click.option("--max-side", type=int, default=None, help="Shrink frames so the longer side is at most this."),
        click.option("--overwrite", is_flag=True, help="Replace an existing output folder."),
    ]):
        function = option(function)
    return function


@synth_app.command("haze")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_synth_options
def synth_haze(source: Path, output: Path, seed: int, limit_frames: Optional[int], max_side: Optional[int],
               overwrite: bool) -> None:
    """Hazy videos from the scattering model (smooth, temporally coherent pseudo-depth, per-video airlight).

    SOURCE: clean video file, frame folder, or DAVIS root. OUTPUT: output folder (REVIDE layout:
    hazy/<video>/, gt/<video>/, recipe.json).
    """
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import synthesize_haze

        recipe = synthesize_haze(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                 overwrite=overwrite)
        click.echo(f"{len(recipe['videos'])} video(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


def _parse_gamma_range(value: str) -> tuple[float, float]:
    """`--gamma-range LOW,HIGH` as two floats (their range is checked by `vdp.degrade`)."""
    from vdp.errors import ConfigError

    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError:  # not a number, or not exactly two of them
        raise ConfigError(
            f"--gamma-range expects 2 float values separated by commas, e.g. 1.2,2.5; got {value!r}"
        ) from None
    return low, high


@synth_app.command("lowlight")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_synth_options
@click.option("--format", "frame_format", default="png", show_default=True,
              help="png or npy (SDSD *_np style, BGR order).")
@click.option("--gamma-range", default="0.8,1.2", show_default=True, metavar="LOW,HIGH",
              help="Each video's gamma is drawn from this range (0 < LOW <= HIGH <= 5); e.g. 1.2,2.5 for strong "
                   "curves, or 1.5,1.5 for one known gamma. Recorded in recipe.json.")
def synth_lowlight(source: Path, output: Path, seed: int, limit_frames: Optional[int], max_side: Optional[int],
                   overwrite: bool, frame_format: str, gamma_range: str) -> None:
    """Low-light videos: gain, gamma and signal-dependent (Poisson-Gaussian) noise.

    SOURCE: clean video file, frame folder, or DAVIS root. OUTPUT: output folder (SDSD layout:
    input/<pair>/, GT/<pair>/, recipe.json).
    """
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import synthesize_lowlight

        recipe = synthesize_lowlight(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                     format=frame_format, gamma_range=_parse_gamma_range(gamma_range),
                                     overwrite=overwrite)
        click.echo(f"{len(recipe['videos'])} video(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


@synth_app.command("blend")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_synth_options
@click.option("--size", default=None, metavar="WxH",
              help="Resize every frame to exactly this many pixels, e.g. 224x128 (instead of --max-side).")
@click.option("--coefficient", default="0.5", show_default=True, metavar="A|random",
              help="Share of layer 1 in the blend, strictly between 0 and 1; or random: drawn per pair in "
                   "[0.3, 0.7] from --seed. Recorded in recipe.json.")
def synth_blend(source: Path, output: Path, seed: int, limit_frames: int | None, max_side: int | None,
                overwrite: bool, size: str | None, coefficient: str) -> None:
    """Blends of two videos, blend = a*layer1 + (1-a)*layer2, for layer separation (vdp bench blend).

    SOURCE: a DAVIS root or a folder of videos / frame folders (at least two). OUTPUT: output folder,
    one item per pair of videos (sorted names): <first>+<second>/blend/, layer1/, layer2/, and recipe.json.
    Both layers are cut to the shorter video.
    """
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import parse_coefficient, parse_size, synthesize_blend

        recipe = synthesize_blend(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                  size=parse_size(size) if size is not None else None,
                                  coefficient=parse_coefficient(coefficient), overwrite=overwrite)
        click.echo(f"{len(recipe['pairs'])} pair(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


@synth_app.command("composite")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@_synth_options
def synth_composite(source: Path, output: Path, seed: int, limit_frames: int | None, max_side: int | None,
                    overwrite: bool) -> None:
    """DAVIS objects pasted onto other videos, with the clean background as the answer (vdp bench remove).

    SOURCE: a DAVIS root with ground-truth masks (JPEGImages/480p/<seq>/ and Annotations/480p/<seq>/), at
    least two sequences. OUTPUT: output folder, one item per sequence (sorted names), its object (mask as a
    binary alpha, its own pixels) pasted onto the next sequence's frames (the last onto the first's):
    <object>-on-<background>/composite/, background/ (the clean frames), mask/ (0/255), and recipe.json.
    Both sequences are cut to the shorter one; the object is resized to the background's size. --seed is
    recorded only (the pairing is fixed).
    """
    _setup_logging(False)

    def work() -> None:
        from vdp.degrade import synthesize_composite

        recipe = synthesize_composite(source, output, seed=seed, limit_frames=limit_frames, max_side=max_side,
                                      overwrite=overwrite)
        click.echo(f"{len(recipe['items'])} item(s) written to {output} (recipe.json beside them)")

    _run_guarded(work)


def _remove_options() -> list[click.Parameter]:
    return [
        click.Argument(["input"], type=click.Path(path_type=Path), required=False),
        click.Option(["--output", "-o"], type=click.Path(path_type=Path), default=Path("vdp-removed"),
                     show_default=True, help="Output folder; results go to OUTPUT/<video name>/."),
        click.Option(["--from", "from_result"], type=click.Path(path_type=Path), default=None,
                     help="Reuse the masks of a `vdp segment` result folder (OUT/<video>) instead of segmenting; "
                          "INPUT may then be omitted (the result's own input is read)."),
        click.Option(["--mask"], type=click.Path(path_type=Path), default=None,
                     help="Your own masks: a folder of PNGs, one per frame, non-zero = object (DAVIS style)."),
        click.Option(["--dilate"], type=int, default=None, metavar="PX",
                     help="Grow the masks by PX full-resolution pixels (shadows, motion blur, soft edges) "
                          "[default: 6]."),
        click.Option(["--max-frames"], type=int, default=None, help="Use at most this many frames."),
        click.Option(["--start"], type=int, default=0, show_default=True, help="First frame to use."),
        click.Option(["--stride"], type=int, default=1, show_default=True, help="Use every N-th frame."),
        click.Option(["--no-video"], is_flag=True, default=False, help="Write PNG frames only, no mp4."),
        _quiet_option(),
        click.Option(["--overwrite"], is_flag=True, default=False, help="Replace an existing result folder."),
    ]


def _check_destination(output: Path, name: str, overwrite: bool) -> None:
    from vdp.errors import VdpError

    destination = output / name
    if destination.exists() and not overwrite:
        raise VdpError(f"{destination} already exists; pass --overwrite to replace it, or choose another -o folder")


def _save_edit(result: Any, video: Any, values: dict[str, Any], started: float, selection: dict[str, Any]) -> None:
    """Write a remove/edit result like a task's (atomic, full resolution, fps and audio kept)."""
    from vdp import api

    output, quiet = values["output"], values["quiet"]
    result.timings["total"] = round(time.perf_counter() - started, 3)
    created = not output.exists()
    try:
        folder = api.save(result, video, output, overwrite=values["overwrite"], write_videos=not values["no_video"],
                          frame_progress=Progress(quiet=quiet, description="writing"),
                          extra_metrics={"input_selection": selection})
    except BaseException:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        raise
    if not quiet:
        for key in result.highlights:
            if key in result.info:
                click.echo(f"{key}: {result.info[key]}", err=True)
    click.echo(str(folder))


def _run_remove(configs: Callable[[], tuple[Any, Any]], values: dict[str, Any]) -> None:
    input, from_result, mask, quiet = values["input"], values["from_result"], values["mask"], values["quiet"]

    def work() -> None:
        from vdp.editing import DEFAULT_DILATE, load_result_input, open_result, read_gray_folder, read_mask_folder
        from vdp.errors import ConfigError

        dilate = DEFAULT_DILATE if values["dilate"] is None else values["dilate"]
        if dilate < 0:
            raise ConfigError(f"--dilate must be 0 or more pixels; got {dilate}")
        if from_result is not None and mask is not None:
            raise ConfigError("pass either --from RESULT (its masks) or --mask FOLDER (yours), not both")
        if from_result is None and input is None:
            raise ConfigError("missing INPUT: pass the video (vdp remove VIDEO -o OUT), or --from a segment result")
        started = time.perf_counter()
        selection = _selection(values)
        alpha, info = None, {}
        if from_result is not None:
            result = open_result(from_result, command="remove")
            video = load_result_input(result, input)
            selection = {key: result.selection.get(key, default) for key, default in selection.items()}
            _check_destination(values["output"], video.name, values["overwrite"])
            masks = read_mask_folder(result.path / "masks", video.num_frames, (video.height, video.width),
                                     what="the result's masks/")
            alpha = read_gray_folder(result.path / "alpha", video.num_frames)
            info["masks_from"] = f"segment result {result.path}"
        else:
            from vdp import api
            from vdp.video import check_input

            check_input(input)
            _check_destination(values["output"], input.name if input.is_dir() else input.stem, values["overwrite"])
            options, config = configs()
            api.check_options(options)
            video = api.load_video(input, start=values["start"], max_frames=values["max_frames"], stride=values["stride"])
            if mask is not None:
                masks = read_mask_folder(mask, video.num_frames, (video.height, video.width))
                info["masks_from"] = f"your masks {mask}"
            else:
                from vdp.editing import segment_masks

                masks, alpha, segment_info = segment_masks(
                    video, config=config, options=options, progress=Progress(quiet=quiet, description="segment"),
                    flow_progress=Progress(quiet=quiet, description="flow"))
                info.update(segment_info, masks_from="vdp segment (this run)")
        from vdp.editing import removal_result

        mark = time.perf_counter()
        result = removal_result(video.frames, masks, dilate=dilate, alpha=alpha, info=info)
        result.timings = {"masks": round(mark - started, 3), "completion_setup": round(time.perf_counter() - mark, 3)}
        result.config = {"task": "remove", "dilate": dilate, "from": str(from_result) if from_result else None,
                         "mask": str(mask) if mask else None}
        _save_edit(result, video, values, started, selection)

    _run_guarded(work)


@click.command("edit", no_args_is_help=True)
@click.argument("result_folder", metavar="RESULT", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("vdp-edited"), show_default=True,
              help="Output folder; results go to OUTPUT/<video name>/.")
@click.option("--background", type=click.Path(path_type=Path), default=None,
              help="A video or image to put behind the foreground (scaled to cover the frame; a shorter video loops).")
@click.option("--recolor", type=click.Choice(["foreground", "background"]), default=None,
              help="The layer --hue and --saturation change.")
@click.option("--hue", type=float, default=0.0, show_default=True, help="Hue rotation in degrees.")
@click.option("--saturation", type=float, default=1.0, show_default=True, help="Saturation factor (0: grey).")
@click.option("--blur-background", type=float, default=0.0, show_default=True, metavar="SIGMA",
              help="Blur the background (without the object) by a Gaussian of this sigma in pixels.")
@click.option("--input", "input_override", type=click.Path(path_type=Path), default=None,
              help="The video the result was made from, when it has moved.")
@click.option("--dilate", type=int, default=None, metavar="PX",
              help="Mask growth when the clean background is computed from a segment result [default: 6].")
@click.option("--no-video", is_flag=True, default=False, help="Write PNG frames only, no mp4.")
@click.option("--quiet", "-q", is_flag=True, default=False, help="Print only errors and the output folder.")
@click.option("--overwrite", is_flag=True, default=False, help="Replace an existing result folder.")
def edit_command(result_folder: Path, **values: Any) -> None:
    """Edit a video by its layers, from a `vdp segment` or `vdp remove` result folder (OUT/<video>).

    The foreground (the input inside the object's soft alpha) is composited over a new background
    (--background), or over the clean background, blurred (--blur-background) or recoloured
    (--recolor background); --recolor foreground recolours the object. Full resolution, the
    source's fps and audio, and a side-by-side preview.mp4.
    """
    _setup_logging(values["quiet"])

    def work() -> None:
        from vdp.editing import DEFAULT_DILATE, EditSettings, clean_background_of, edit_result, load_result_input, \
            open_result, read_gray_folder

        settings = EditSettings(background=values["background"], recolor=values["recolor"], hue=values["hue"],
                                saturation=values["saturation"], blur_background=values["blur_background"])
        started = time.perf_counter()
        result = open_result(result_folder, command="edit")
        video = load_result_input(result, values["input_override"])
        _check_destination(values["output"], video.name, values["overwrite"])
        alpha = read_gray_folder(result.path / "alpha", video.num_frames)
        clean = None
        if settings.needs_clean_background:
            clean = clean_background_of(result, video,
                                        dilate=DEFAULT_DILATE if values["dilate"] is None else values["dilate"])
        edited = edit_result(video, alpha, settings, clean_background=clean)
        edited.info["from"] = str(result.path)
        edited.config = {"task": "edit", **edited.info["edits"], "from": str(result.path)}
        selection = {key: result.selection.get(key) for key in ("start", "max_frames", "stride")}
        _save_edit(edited, video, values, started, selection)

    _run_guarded(work)


app.add_command(_ConfiguredCommand(
    "remove", short_help="Remove the object from a video (segment + clean background from other frames).",
    fixed=_remove_options, task_name="segment", run=_run_remove,
    help_text=("Remove the object from a video: segment it (or take --from a segment result, or --mask your own "
               "masks), then fill where it was with the background seen in other frames (carried by the camera's "
               "motion), and spatially what no frame shows. Writes background/ (the video without the object), "
               "masks/, alpha/, removed.mp4 and preview.mp4 (input | removed), at full resolution with the "
               "source's fps and audio. The segment options below apply when vdp segments.")), "remove")
app.add_command(edit_command, "edit")


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler or `kill`) cleans up like Ctrl-C: no half-written result stays."""
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="vdp")


if __name__ == "__main__":
    main()
