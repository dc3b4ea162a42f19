"""Editing a video layer by layer: remove the object, replace or restyle the background, recolour.

`vdp remove` is the segment fit (or the user's masks) followed by the clean background of
`vdp.complete`; `vdp edit` recomposes a result's layers: the input frame as the foreground,
weighted by the soft alpha, over a background that is the clean one (restyled), a new video or
image, or the frame itself. Both write their results like a task does (`vdp.outputs`: a hidden
folder renamed into place, full resolution, the source's fps and audio, a side-by-side preview).
docs/method.md §2.8 explains the choices.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vdp.complete import BackgroundCompleter, CompletionSettings, dilate_masks
from vdp.errors import ConfigError, VideoInputError
from vdp.task import TaskResult
from vdp.video.read import natural_sort_key

logger = logging.getLogger(__name__)

#: Results `vdp remove` and `vdp edit` can start from (they hold a per-frame alpha).
LAYERED_TASKS = ("segment", "remove")
#: Default growth of the mask before removal, in full-resolution pixels: covers the soft edge,
#: motion blur and a contact shadow (measured on the composites, docs/benchmarks.md).
DEFAULT_DILATE = 6
#: The longer side of the side-by-side preview is at most this (the frames themselves keep theirs).
PREVIEW_MAX_WIDTH = 1920
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------
# Reading results and masks


@dataclass
class ResultFolder:
    """A finished `vdp segment` or `vdp remove` result, as `vdp edit` and `vdp remove --from` read it."""

    path: Path
    task: str
    source: Path | None
    num_frames: int
    size: tuple[int, int]
    """(H, W) of the frames."""
    selection: dict[str, Any] = field(default_factory=dict)
    """start / max_frames / stride the input was read with (empty: the whole input)."""

    def has(self, output: str) -> bool:
        return (self.path / output).is_dir() and any((self.path / output).glob("*.png"))


def open_result(path: str | Path, *, command: str) -> ResultFolder:
    """Read a result folder's metrics.json and check that it is one `command` can work from.

    Raises:
        VideoInputError: not a vdp result, or the result of a task without layers to edit.
    """
    path = Path(path).expanduser()
    metrics_file = path / "metrics.json"
    if not path.is_dir() or not metrics_file.is_file():
        raise VideoInputError(
            f"{path} is not a vdp result folder (expected {metrics_file}); pass the folder `vdp segment INPUT -o OUT` "
            f"wrote, OUT/<video name>"
        )
    try:
        metrics = json.loads(metrics_file.read_text())
        task, video = str(metrics["task"]), metrics["video"]
    except (ValueError, KeyError, TypeError) as error:
        raise VideoInputError(f"{metrics_file} is not a vdp metrics file ({error}); rerun the task") from None
    if task not in LAYERED_TASKS:
        raise VideoInputError(
            f"{path} is a `{task}` result, which has no object layer; `vdp {command}` works from a `segment` or "
            f"`remove` result: run `vdp segment INPUT -o OUT` first"
        )
    if not (path / "alpha").is_dir():
        raise VideoInputError(f"{path} has no alpha/ folder (the object's matte); rerun `vdp segment` on the input")
    return ResultFolder(path=path, task=task, source=Path(video["source"]) if video.get("source") else None,
                        num_frames=int(video["num_frames"]), size=(int(video["size"][0]), int(video["size"][1])),
                        selection=dict(metrics.get("input_selection") or {}))


def load_result_input(result: ResultFolder, override: str | Path | None = None):
    """The input video of a result (re-read with the same frame selection), or `override`."""
    from vdp.api import load_video
    from vdp.video import check_input

    source = Path(override).expanduser() if override is not None else result.source
    if source is None or not source.exists():
        raise VideoInputError(
            f"the input of {result.path} ({source}) is not there any more; pass it with --input VIDEO"
        )
    check_input(source)
    selection = {key: result.selection[key] for key in ("start", "max_frames", "stride") if key in result.selection}
    video = load_video(source, **selection)
    if video.num_frames != result.num_frames or (video.height, video.width) != result.size:
        raise VideoInputError(
            f"{source} gives {video.num_frames} frames of {video.width}x{video.height}, but {result.path} was made from "
            f"{result.num_frames} frames of {result.size[1]}x{result.size[0]}; pass the video it was made from "
            f"(--input), with the same frame selection"
        )
    return video


def _png_files(folder: Path) -> list[Path]:
    files = [f for f in folder.iterdir() if f.suffix.lower() == ".png" and not f.name.startswith(".")]
    return sorted(files, key=lambda f: (natural_sort_key(f.name), f.name))


def read_mask_folder(folder: str | Path, num_frames: int, size: tuple[int, int], *, what: str = "--mask",
                     extra_ok: bool = False) -> np.ndarray:
    """DAVIS-style masks (one PNG per frame, any non-zero value is the object) as (T, H, W) bool.

    Masks of another size are resized (nearest); the count must match the frames (with
    `extra_ok`, the first `num_frames` of more masks are used).

    Raises:
        VideoInputError: not a folder, unreadable files, or another number of masks than frames.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise VideoInputError(f"{what} {folder} is not a folder; pass a folder of PNG masks, one per frame")
    files = _png_files(folder)
    if extra_ok:
        files = files[:num_frames]
    if len(files) != num_frames:
        raise VideoInputError(
            f"{what} {folder} holds {len(files)} PNG mask(s) but the video has {num_frames} frames; pass one mask per "
            f"frame (DAVIS style: 00000.png, 00001.png, ..., non-zero = object)"
        )
    height, width = size
    masks = np.zeros((num_frames, height, width), bool)
    for t, file in enumerate(files):
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise VideoInputError(f"{file} is not a readable PNG; re-export it")
        if image.ndim == 3:
            image = image[..., :3].max(axis=-1)
        if image.shape != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)
        masks[t] = image > 0
    return masks


def read_gray_folder(folder: Path, num_frames: int) -> np.ndarray:
    """A result's grey PNG output (e.g. alpha/) as (T, H, W) uint8."""
    files = _png_files(folder)
    if len(files) != num_frames:
        raise VideoInputError(f"{folder} holds {len(files)} frames, expected {num_frames}; rerun the task")
    return np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])


# --------------------------------------------------------------------------------------------
# Removal


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    pair = np.concatenate([left, right], axis=1)
    if pair.shape[1] > PREVIEW_MAX_WIDTH:
        scale = PREVIEW_MAX_WIDTH / pair.shape[1]
        size = (PREVIEW_MAX_WIDTH // 2 * 2, max(2, round(pair.shape[0] * scale / 2) * 2))
        pair = cv2.resize(pair, size, interpolation=cv2.INTER_AREA)
    return pair


def removal_result(frames, masks: np.ndarray, *, dilate: int = DEFAULT_DILATE, alpha: np.ndarray | None = None,
                   settings: CompletionSettings = CompletionSettings(), info: dict | None = None) -> TaskResult:
    """The video without the object, as a result the writer can save.

    Args:
        frames: (T, H, W, 3) uint8 (array or frame store), the input.
        masks: (T, H, W) bool, the object in every frame.
        dilate: grow the masks by this many pixels first (soft edges, blur, shadows).
        alpha: (T, H, W) uint8 soft matte of the object, kept for `vdp edit` (default: the masks).
        info: facts to add to metrics.json (where the masks came from).

    Outputs: `background/` (the clean background: the removed video), `masks/` (the hole that was
    filled), `alpha/`, `preview` (input | removed); videos `removed.mp4` and `preview.mp4`.
    """
    holes = dilate_masks(masks, dilate)
    completer = BackgroundCompleter(frames, holes, settings)
    alpha = (np.asarray(masks, dtype=np.uint8) * 255) if alpha is None else alpha

    def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
        clean = completer[t]
        return {"background": clean, "masks": holes[t].astype(np.uint8), "alpha": alpha[t],
                "preview": _side_by_side(frame, clean)}

    return TaskResult(
        task="remove",
        layers={},
        outputs={"background": "rgb", "masks": "indexed", "alpha": "gray", "preview": "rgb"},
        videos={"removed.mp4": "background", "preview.mp4": "preview"},
        full_resolution=full_resolution,
        info={**(info or {}), "dilate_pixels": int(dilate), "hole_fraction": float(holes.mean()),
              "completion": completer.stats, "key_frames": sorted(completer.keys)},
        highlights=("masks_from",),
    )


def segment_masks(video, *, config=None, options=None, progress=None, flow_progress=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run `vdp segment` in memory: full-resolution masks (T, H, W) bool, alpha (T, H, W) uint8 and
    the segment run's info."""
    from vdp import api

    result = api.run("segment", video, config=config, options=options, progress=progress, flow_progress=flow_progress)
    masks = np.zeros((video.num_frames, video.height, video.width), bool)
    alpha = np.zeros((video.num_frames, video.height, video.width), np.uint8)
    for t in range(video.num_frames):
        out = result.full_resolution(t, video.frames[t])
        masks[t], alpha[t] = out["masks"] > 0, out["alpha"]
    info = {"segment_" + key: value for key, value in result.info.items() if key in ("objectness", "foreground_area")}
    info["segment_timings_seconds"] = result.timings
    return masks, alpha, info


# --------------------------------------------------------------------------------------------
# Edits


@dataclass(frozen=True)
class EditSettings:
    """What `vdp edit` changes (any combination; at least one)."""

    background: Path | None = None
    """A video or image composited behind the foreground (scaled to cover the frame, centred)."""
    recolor: str | None = None
    """'foreground' or 'background': the layer --hue and --saturation apply to."""
    hue: float = 0.0
    """Hue rotation in degrees."""
    saturation: float = 1.0
    """Saturation factor (0: grey, 1: unchanged)."""
    blur_background: float = 0.0
    """Gaussian blur of the (clean) background, sigma in pixels (0: none)."""

    def __post_init__(self) -> None:
        if self.recolor not in (None, "foreground", "background"):
            raise ConfigError(f"--recolor must be foreground or background; got {self.recolor!r}")
        if self.recolor is None and (self.hue != 0.0 or self.saturation != 1.0):
            raise ConfigError("--hue and --saturation need --recolor foreground|background (which layer to recolour)")
        if self.recolor is not None and self.hue == 0.0 and self.saturation == 1.0:
            raise ConfigError(f"--recolor {self.recolor} changes nothing without --hue DEGREES or --saturation FACTOR")
        if self.saturation < 0:
            raise ConfigError(f"--saturation must be 0 or more; got {self.saturation}")
        if self.blur_background < 0:
            raise ConfigError(f"--blur-background must be 0 or more (a sigma in pixels); got {self.blur_background}")
        if self.background is not None and self.blur_background > 0:
            raise ConfigError("--background replaces the background, so --blur-background has nothing to blur; "
                              "pick one (blur the new background yourself)")
        if self.background is None and self.recolor is None and self.blur_background == 0:
            raise ConfigError("nothing to edit: pass --background FILE, --recolor foreground|background with --hue/"
                              "--saturation, or --blur-background SIGMA")

    @property
    def needs_clean_background(self) -> bool:
        return self.blur_background > 0 or self.recolor == "background"


def recolor(image: np.ndarray, *, hue: float, saturation: float) -> np.ndarray:
    """Rotate hue by `hue` degrees and scale saturation by `saturation`; (H, W, 3) uint8 -> float32."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + hue, 360.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0.0, 1.0)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0


def _cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale `image` to cover (height, width) and crop the centre (no bars, no distortion)."""
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, size, interpolation=interpolation)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top:top + height, left:left + width]


class NewBackground:
    """A replacement background: an image (every frame) or a video (looped when shorter), fitted to
    the frame size."""

    def __init__(self, path: Path, height: int, width: int) -> None:
        path = Path(path).expanduser()
        if not path.exists():
            raise VideoInputError(f"--background {path} does not exist; pass a video or an image file")
        self.height, self.width = height, width
        if path.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise VideoInputError(f"--background {path} is not a readable image")
            self.frames = [image[..., ::-1]]
            self.kind = "image"
        else:
            from vdp.api import load_video
            from vdp.video import check_input

            check_input(path)
            self.frames = load_video(path).frames
            self.kind = "video"
        self.path = path

    def __getitem__(self, t: int) -> np.ndarray:
        return _cover(np.asarray(self.frames[t % len(self.frames)]), self.height, self.width)


def edit_result(video, alpha: np.ndarray, settings: EditSettings, *,
                clean_background: Callable[[int], np.ndarray] | None = None) -> TaskResult:
    """The edited video: `alpha * foreground + (1 - alpha) * background`, per frame.

    The foreground is the input frame (recoloured with --recolor foreground); the background is
    the new one (--background), else the clean background (needed for --blur-background and
    --recolor background: the object must not bleed into it), restyled.

    Args:
        video: the input (frames at full resolution).
        alpha: (T, H, W) uint8 matte of the object.
        clean_background: t -> (H, W, 3) uint8 background without the object.
    """
    if settings.needs_clean_background and clean_background is None:
        raise ValueError("this edit needs the clean background")
    new = NewBackground(settings.background, video.height, video.width) if settings.background else None

    def full_resolution(t: int, frame: np.ndarray) -> dict[str, np.ndarray]:
        matte = (alpha[t].astype(np.float32) / 255.0)[..., None]
        foreground = frame.astype(np.float32)
        if settings.recolor == "foreground":
            foreground = recolor(frame, hue=settings.hue, saturation=settings.saturation)
        if new is not None:
            background = new[t].astype(np.float32)
        elif clean_background is not None and settings.needs_clean_background:
            clean = clean_background(t)
            if settings.recolor == "background":
                clean = np.clip(recolor(clean, hue=settings.hue, saturation=settings.saturation) + 0.5, 0, 255).astype(np.uint8)
            if settings.blur_background > 0:
                clean = cv2.GaussianBlur(clean, (0, 0), settings.blur_background)
            background = clean.astype(np.float32)
        else:
            background = frame.astype(np.float32)
        edited = np.clip(matte * foreground + (1.0 - matte) * background + 0.5, 0, 255).astype(np.uint8)
        return {"frames": edited, "preview": _side_by_side(frame, edited)}

    info = {"edits": {key: (str(value) if isinstance(value, Path) else value)
                      for key, value in settings.__dict__.items()}}
    if new is not None:
        info["background_kind"] = new.kind
    return TaskResult(task="edit", layers={}, outputs={"frames": "rgb", "preview": "rgb"},
                      videos={"edited.mp4": "frames", "preview.mp4": "preview"},
                      full_resolution=full_resolution, info=info)


def clean_background_of(result: ResultFolder, video, *, dilate: int = DEFAULT_DILATE) -> Callable[[int], np.ndarray]:
    """t -> the clean background of a result: read from a `remove` result, computed from a
    `segment` result's masks otherwise."""
    if result.task == "remove" and result.has("background"):
        files = _png_files(result.path / "background")
        if len(files) == result.num_frames:
            return lambda t: cv2.imread(str(files[t]), cv2.IMREAD_COLOR)[..., ::-1]
    masks = read_mask_folder(result.path / "masks", result.num_frames, result.size, what="the result's")
    logger.info("computing the clean background from %s/masks (run `vdp remove --from` to keep it)", result.path)
    completer = BackgroundCompleter(video.frames, dilate_masks(masks, dilate))
    return completer.__getitem__
