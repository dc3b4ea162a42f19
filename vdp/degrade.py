"""Turn clean videos into benchmark folders with ground truth: synthetic haze, low light, blends,
composites.

For users who want to test dehazing or relighting on their own footage. A source is a video file,
a folder of frames, a folder holding several of those, or a DAVIS root (one video per sequence
in ``JPEGImages/480p/<seq>/``). Two layouts are written, mirroring the real benchmarks (docs/method.md
§3) so the same readers serve both::

    synthesize_haze      ->  out/hazy/<video>/00000.png   out/gt/<video>/00000.png    (REVIDE)
    synthesize_lowlight  ->  out/input/<pair>/00000.png   out/GT/<pair>/00000.png     (SDSD)
                             (or 00000.npy: (H, W, 3) uint8 RGB, like SDSD's *_np variants)
    synthesize_blend     ->  out/<a>+<b>/blend/00000.png  out/<a>+<b>/layer1/  out/<a>+<b>/layer2/
                             (one item per unordered pair of source videos; vdp bench blend)
    synthesize_composite ->  out/<obj>-on-<bg>/composite/00000.png  .../background/  .../mask/
                             (one item per DAVIS sequence, its object pasted on the next one's
                             frames; vdp bench remove)
    all                  ->  out/recipe.json  (kind, seed, vdp version, source, per-item values)

Degradations, applied frame by frame to the frame's values scaled to [0, 1]:

- haze: the scattering model ``I = t * J + (1 - t) * A`` with ``t = exp(-beta * depth)``, the model
  vdp's dehazing task fits. ``depth`` is a smooth pseudo-depth in [0.1, 1]: a ground plane (far at
  the top of the frame) plus a low-frequency random field that drifts slowly over time, so ``t``
  is smooth in space and in time (no flicker). ``beta`` and the airlight ``A`` are drawn per video.
- low light: ``low = gain * J ** gamma`` plus Poisson-Gaussian sensor noise (shot noise whose
  variance grows with the signal, and read noise), drawn afresh for every frame as on a real
  sensor, then quantised to uint8. ``gamma`` is drawn per video from ``gamma_range`` (by default
  0.8-1.2, curves close to a pure gain); a wider or higher range (``--gamma-range 1.2,2.5`` on the
  command line) makes sets with strong curves, and ``low == high`` fixes every video's gamma
  (known-gamma checks). The range is recorded in ``recipe.json``.

- blend: two videos mixed with one coefficient ``a`` in (0, 1),
  ``blend = round(a * layer1 + (1 - a) * layer2)``, the input of the Visual Centrifuge's layer
  separation (Alayrac et al., CVPR 2019) and of vdp's ``separate`` task.
- composite: the object of one DAVIS sequence (its ground-truth mask as a binary alpha, its own
  pixels, frame by frame) pasted onto the frames of another,
  ``composite = mask ? object : background``; the clean background is the answer of an object
  removal.

All are applied to the stored (display) values, not to linearised light, because that is the
space in which vdp's task models are written: the recorded parameters then invert the hazy
frames exactly up to quantisation. Everything is deterministic for a seed: per-video parameters
come from ``zlib.crc32`` of the seed and the video's name (stable across runs and machines, unlike
Python's ``hash``). Each video folder is written into a hidden temporary folder and renamed when
complete; ``recipe.json`` is written last.

Frames are read as uint8 (the project's in-memory convention); float copies exist for one frame
at a time only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vdp.atomic_write import PendingFile, pending_folder
from vdp.errors import ConfigError, VideoInputError
from vdp.video import read_video, write_png_sequence
from vdp.video.read import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, describe_contents, list_frame_files

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.json"
"""Name of the file describing how a benchmark folder was made (written last)."""

LAYOUTS: dict[str, tuple[str, str]] = {"haze": ("hazy", "gt"), "lowlight": ("input", "GT")}
"""Per kind, the (degraded, clean) folder names under ``out``: REVIDE's and SDSD's."""

BLEND_FOLDERS = ("blend", "layer1", "layer2")
"""The folders of one blend item, ``out/<pair>/<folder>/%05d.png``: the mix, then its two layers."""

COMPOSITE_FOLDERS = ("composite", "background", "mask")
"""The folders of one composite item, ``out/<item>/<folder>/%05d.png``: the pasted frames, the clean
background (the answer of a removal), and the pasted object's mask (8-bit gray, 0 or 255)."""

COMPOSITE_SEPARATOR = "-on-"
"""Joins the two sequence names of a composite item: ``bear-on-camel`` (object first)."""

KINDS = (*LAYOUTS, "blend", "composite")
"""Every kind of benchmark a recipe can describe."""

PAIR_SEPARATOR = "+"
"""Joins the two source names of a blend item: ``bear+camel`` (sorted names, first one first)."""

BLEND_RANDOM_RANGE = (0.3, 0.7)
"""Range of the mixing coefficient drawn per pair with ``coefficient="random"``."""

FRAME_FORMATS = ("png", "npy")
"""Frame file formats for the low-light layout (haze is always PNG, like REVIDE)."""

# Haze. beta in 1.0-2.5 over depth in [0.1, 1] gives t from exp(-2.5) = 0.08 (far, thick haze)
# to exp(-0.1) = 0.90 (near, thin haze), the range of outdoor haze benchmarks such as RESIDE.
_BETA_RANGE = (1.0, 2.5)
_DEPTH_RANGE = (0.1, 1.0)
# Airlight: greyish white with a slight tint (sky light is rarely pure white, nor saturated).
_AIRLIGHT_LEVEL = (0.78, 0.92)
_AIRLIGHT_TINT = 0.03
_AIRLIGHT_RANGE = (0.75, 0.95)
# Share of the random field in the depth (the rest is the ground plane).
_FIELD_WEIGHT = 0.35
_FIELD_WAVES = 4
_FIELD_CYCLES = (0.4, 1.5)  # spatial frequency, in cycles per frame height: low on purpose
_FIELD_DRIFT = (0.01, 0.04)  # phase change per frame, radians: slow, smooth drift
_PLANE_TILT = 0.2  # sideways tilt of the ground plane, depth change across the frame width

# Low light, in units of the [0, 1] signal. Shot noise: variance = shot_noise * signal (a
# Poisson photon count scaled by shot_noise); read noise: Gaussian with sigma read_noise.
_GAIN_RANGE = (0.08, 0.25)
# Default gamma range, around 1: frames are stored gamma-encoded, where less light is close to a
# pure gain ((gain * linear) ** (1/2.2) = gain ** (1/2.2) * J); camera tone curves bend it either
# way. `gamma_range` (`--gamma-range`) replaces it to make sets with stronger curves (e.g. 1.2-2.5,
# as some low-light training sets use) or one fixed gamma (low == high).
_GAMMA_RANGE = (0.8, 1.2)
# Largest gamma accepted: with gains of 0.08-0.25, a larger one leaves little but the
# highlights above a few grey levels.
_GAMMA_LIMIT = 5.0
_SHOT_NOISE_RANGE = (0.0005, 0.003)  # at signal 0.1: noise sigma 0.007-0.017 (2-4 grey levels)
_READ_NOISE_RANGE = (0.002, 0.01)

_MIN_SIDE = 16


# --------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class DepthField:
    """A smooth pseudo-depth in ``[0.1, 1]`` that drifts slowly over time.

    Defined in frame-relative coordinates, so it looks the same at any resolution. Depth is
    ``0.1 + 0.9 * ((1 - w) * plane + w * (field + 1) / 2)`` with
    ``plane = 1 - v + tilt * (u - 0.5)`` clipped to [0, 1] (``u``, ``v`` in [0, 1] from the
    left and the top), ``w`` the field's weight, and
    ``field = sum_k a_k cos(2 pi (fx_k u + fy_k v) + phase_k + drift_k t) / sum_k a_k``.
    """

    tilt: float
    """Sideways tilt of the ground plane (depth change from the left to the right edge)."""
    frequencies: tuple[tuple[float, float], ...]
    """Per wave, spatial frequency ``(fx, fy)`` in cycles per frame width and height."""
    amplitudes: tuple[float, ...]
    """Per wave, its weight (larger for lower frequencies)."""
    phases: tuple[float, ...]
    """Per wave, the phase at frame 0, radians."""
    drifts: tuple[float, ...]
    """Per wave, the phase change per frame, radians (small: the field drifts, never flickers)."""
    field_weight: float = _FIELD_WEIGHT
    """Share of the random field in the depth; the rest is the ground plane."""

    def __call__(self, index: int, height: int, width: int) -> np.ndarray:
        """Depth of frame ``index`` as ``(H, W)`` float32 in ``[0.1, 1]``."""
        v = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]
        u = ((np.arange(width, dtype=np.float32) + 0.5) / width)[None, :]
        plane = np.clip(1.0 - v + self.tilt * (u - 0.5), 0.0, 1.0)
        field = np.zeros((height, width), dtype=np.float32)
        for (fx, fy), amplitude, phase, drift in zip(
            self.frequencies, self.amplitudes, self.phases, self.drifts
        ):
            field += amplitude * np.cos(
                2 * math.pi * (fx * u + fy * v) + (phase + drift * index)
            ).astype(np.float32)
        field /= sum(self.amplitudes)
        mix = (1.0 - self.field_weight) * plane + self.field_weight * (field + 1.0) / 2.0
        low, high = _DEPTH_RANGE
        return (low + (high - low) * mix).astype(np.float32)


@dataclass(frozen=True)
class HazeParameters:
    """How one video is hazed: ``I = t * J + (1 - t) * A``, ``t = exp(-beta * depth)``."""

    beta: float
    """Scattering coefficient; with depth in [0.1, 1], t lies in [exp(-beta), exp(-beta / 10)]."""
    airlight: tuple[float, float, float]
    """Airlight ``A`` per RGB channel, in [0, 1]."""
    depth: DepthField
    """The pseudo-depth over time."""

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> HazeParameters:
        """Rebuild from a recipe's per-video entry (``read_recipe(out)["videos"][name]``)."""
        depth = entry["depth"]
        return cls(
            beta=float(entry["beta"]),
            airlight=tuple(float(a) for a in entry["airlight"]),  # type: ignore[arg-type]
            depth=DepthField(
                tilt=float(depth["tilt"]),
                frequencies=tuple((float(fx), float(fy)) for fx, fy in depth["frequencies"]),
                amplitudes=tuple(float(a) for a in depth["amplitudes"]),
                phases=tuple(float(p) for p in depth["phases"]),
                drifts=tuple(float(d) for d in depth["drifts"]),
                field_weight=float(depth["field_weight"]),
            ),
        )

    def transmission(self, index: int, height: int, width: int) -> np.ndarray:
        """Transmission ``t`` of frame ``index`` as ``(H, W)`` float32 in (0, 1]."""
        return np.exp(-self.beta * self.depth(index, height, width)).astype(np.float32)


@dataclass(frozen=True)
class LowLightParameters:
    """How one video is darkened: ``low = gain * J ** gamma`` plus Poisson-Gaussian noise."""

    gain: float
    """Exposure scale applied after the gamma curve."""
    gamma: float
    """Exponent (> 1 darkens the shadows more than the highlights)."""
    shot_noise: float
    """Shot-noise scale: the noise variance is ``shot_noise * signal`` (signal in [0, 1])."""
    read_noise: float
    """Standard deviation of the signal-independent read noise (in [0, 1] units)."""

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> LowLightParameters:
        """Rebuild from a recipe's per-video entry (``read_recipe(out)["videos"][name]``)."""
        return cls(
            gain=float(entry["gain"]),
            gamma=float(entry["gamma"]),
            shot_noise=float(entry["shot_noise"]),
            read_noise=float(entry["read_noise"]),
        )


def video_seed(seed: int, name: str) -> int:
    """A video's own seed: ``crc32`` of ``"<seed>/<name>"`` (stable across runs and platforms)."""
    return zlib.crc32(f"{seed}/{name}".encode("utf-8"))


def draw_haze_parameters(rng: np.random.Generator) -> HazeParameters:
    """Draw a video's haze: beta, a greyish-white airlight and a drifting depth field."""
    beta = float(rng.uniform(*_BETA_RANGE))
    level = rng.uniform(*_AIRLIGHT_LEVEL)
    airlight = np.clip(level + rng.uniform(-_AIRLIGHT_TINT, _AIRLIGHT_TINT, 3), *_AIRLIGHT_RANGE)
    cycles = rng.uniform(*_FIELD_CYCLES, _FIELD_WAVES)
    angles = rng.uniform(0.0, 2 * math.pi, _FIELD_WAVES)
    frequencies = tuple(
        (float(c * math.cos(a)), float(c * math.sin(a))) for c, a in zip(cycles, angles)
    )
    depth = DepthField(
        tilt=float(rng.uniform(-_PLANE_TILT, _PLANE_TILT)),
        frequencies=frequencies,
        amplitudes=tuple(float(1.0 / c) for c in cycles),
        phases=tuple(float(p) for p in rng.uniform(0.0, 2 * math.pi, _FIELD_WAVES)),
        drifts=tuple(
            float(sign * speed)
            for sign, speed in zip(
                rng.choice((-1.0, 1.0), _FIELD_WAVES), rng.uniform(*_FIELD_DRIFT, _FIELD_WAVES)
            )
        ),
    )
    return HazeParameters(
        beta=beta, airlight=tuple(float(a) for a in airlight), depth=depth  # type: ignore[arg-type]
    )


def draw_lowlight_parameters(
    rng: np.random.Generator, gamma_range: tuple[float, float] = _GAMMA_RANGE
) -> LowLightParameters:
    """Draw a video's exposure (gain, gamma) and sensor noise (shot and read).

    ``gamma`` is uniform in ``gamma_range`` (exactly ``low`` when ``low == high``); the rng is
    drawn in the same order whatever the range, so the other parameters do not depend on it.
    """
    return LowLightParameters(
        gain=float(rng.uniform(*_GAIN_RANGE)),
        gamma=float(rng.uniform(*gamma_range)),
        shot_noise=float(rng.uniform(*_SHOT_NOISE_RANGE)),
        read_noise=float(rng.uniform(*_READ_NOISE_RANGE)),
    )


# --------------------------------------------------------------------------------------------
# Degradations of one frame (pure functions)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def add_haze(
    clean: np.ndarray, transmission: np.ndarray, airlight: tuple[float, float, float]
) -> np.ndarray:
    """Haze one frame: ``I = t * J + (1 - t) * A``.

    Args:
        clean: ``(H, W, 3)`` uint8 RGB, the haze-free frame ``J`` (scaled to [0, 1]).
        transmission: ``(H, W)`` float in (0, 1].
        airlight: ``A`` per RGB channel, in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8 RGB hazy frame.
    """
    if clean.shape[:2] != transmission.shape:
        raise ValueError(
            f"Expected a transmission map of the frame's size {clean.shape[:2]}; got "
            f"{transmission.shape}."
        )
    frame = clean.astype(np.float32) / 255.0
    t = transmission[:, :, None].astype(np.float32)
    hazy = t * frame + (1.0 - t) * np.asarray(airlight, dtype=np.float32)
    return _to_uint8(hazy)


def darken(
    clean: np.ndarray, parameters: LowLightParameters, rng: np.random.Generator
) -> np.ndarray:
    """Darken one frame and add sensor noise: ``gain * J ** gamma`` + shot + read noise.

    Shot noise is an exact Poisson photon count (``Poisson(low / shot_noise) * shot_noise``, whose
    variance is ``shot_noise * low``); read noise is Gaussian. Negative values are clipped to 0,
    as a sensor's black level does.

    Args:
        clean: ``(H, W, 3)`` uint8 RGB, the well-lit frame ``J`` (scaled to [0, 1]).
        parameters: exposure and noise.
        rng: source of this frame's noise.

    Returns:
        ``(H, W, 3)`` uint8 RGB low-light frame.
    """
    frame = clean.astype(np.float32) / 255.0
    low = parameters.gain * np.power(frame, parameters.gamma, dtype=np.float32)
    photons = rng.poisson(low / parameters.shot_noise)
    noisy = photons.astype(np.float32) * parameters.shot_noise
    noisy += rng.normal(0.0, parameters.read_noise, size=low.shape).astype(np.float32)
    return _to_uint8(noisy)


# --------------------------------------------------------------------------------------------
# Sources


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def list_sources(src: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The videos in ``src``, as ``(name, path)`` pairs; each path is readable by ``read_video``.

    ``src`` may be:

    - a video file (``.mp4 .mov .avi .mkv .webm .m4v``): one video named after its stem;
    - a folder of frames: one video named after the folder;
    - a DAVIS root (holds ``JPEGImages/480p/<seq>/``): one video per sequence;
    - a folder of video files and/or frame folders: one video per entry (hidden entries and
      sub-folders without frames are skipped).

    Raises:
        VideoInputError: ``src`` is missing, of an unknown type, or holds no video; or two
            entries would get the same name (``clip.mp4`` beside a ``clip/`` frame folder).
    """
    src = Path(src).expanduser()
    if not src.exists():
        raise VideoInputError(
            f"Expected a video file, a folder of frames or a DAVIS root; nothing exists at {src}. "
            f"Check the spelling and the current directory ({Path.cwd()})."
        )
    if src.is_file():
        if not _is_video_file(src):
            raise VideoInputError(
                f"Expected a video file ({' '.join(VIDEO_EXTENSIONS)}, any case), a folder of "
                f"frames or a DAVIS root; {src} is a {src.suffix or 'extension-less'} file. "
                "Convert it to mp4, or pass the folder that holds its frames."
            )
        return [(src.stem, src)]
    davis_images = src / "JPEGImages" / "480p"
    if davis_images.is_dir():
        sequences = sorted(
            (p for p in davis_images.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if not sequences:
            raise VideoInputError(
                f"{src} looks like a DAVIS root but {davis_images} holds no sequence folders. "
                "Expected JPEGImages/480p/<sequence>/00000.jpg, ..."
            )
        return [(p.name, p) for p in sequences]
    if list_frame_files(src):
        return [(src.name, src)]
    entries: list[tuple[str, Path]] = []
    for child in sorted(src.iterdir(), key=lambda p: p.name):
        if child.name.startswith("."):
            continue
        if _is_video_file(child):
            entries.append((child.stem, child))
        elif child.is_dir() and list_frame_files(child):
            entries.append((child.name, child))
    if not entries:
        raise VideoInputError(
            f"Expected a video file, a folder of frames ({' '.join(IMAGE_EXTENSIONS)}), a folder "
            f"of videos or a DAVIS root (JPEGImages/480p/<seq>/); found none of these in {src}."
            f"{describe_contents(src)}"
        )
    names = [name for name, _ in entries]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise VideoInputError(
            f"Two entries of {src} would both be written as {clashes[0]!r} (e.g. a video file "
            "beside a frame folder of the same name); rename one of them."
        )
    return entries


# --------------------------------------------------------------------------------------------
# Writing


def _target_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """``(h, w)`` with the longer side at most ``max_side``, aspect kept; never enlarged.

    Same rule as ``vdp.api.working_size`` (which lives beside torch-importing code; synthesis
    should not pay for importing torch).
    """
    if max_side is None:
        return height, width
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _write_frame(
    folder: Path, index: int, frame: np.ndarray, frame_format: str, npy_channel_order: str
) -> None:
    if frame_format == "npy":
        array = frame[:, :, ::-1] if npy_channel_order == "bgr" else frame
        np.save(folder / f"{index:05d}.npy", np.ascontiguousarray(array))
    else:
        write_png_sequence([frame], folder, start_index=index)


@contextmanager
def _atomic_folders(finals: list[Path]) -> Iterator[list[Path]]:
    """Hidden temporary folders beside ``finals``, renamed onto them once the block succeeds
    (replacing what was there) and all removed if it raises."""
    with ExitStack() as stack:
        yield [stack.enter_context(pending_folder(final)) for final in finals]


def _check_options(seed: int, limit_frames: int | None, max_side: int | None) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a whole number, 0 or more; got {seed!r}.")
    if limit_frames is not None and limit_frames < 1:
        raise ConfigError(f"limit_frames must be 1 or more (or None for all); got {limit_frames}.")
    if max_side is not None and max_side < _MIN_SIDE:
        raise ConfigError(
            f"max_side must be at least {_MIN_SIDE} (or None for the source size); got {max_side}."
        )


def check_gamma_range(gamma_range: Any) -> tuple[float, float]:
    """``gamma_range`` as ``(low, high)`` floats, checked: finite, ``0 < low <= high <= 5``.

    Raises:
        ConfigError: not two numbers, or out of that range.
    """
    expected = (
        f"gamma_range must be two finite numbers (low, high) with 0 < low <= high <= "
        f"{_GAMMA_LIMIT:g}, e.g. (1.2, 2.5), or (1.5, 1.5) for one fixed gamma; got {gamma_range!r}."
    )
    if isinstance(gamma_range, (str, bytes)):
        raise ConfigError(expected)
    try:
        values = tuple(gamma_range)
    except TypeError:
        raise ConfigError(expected) from None
    if len(values) != 2 or not all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
        for v in values
    ):
        raise ConfigError(expected)
    low, high = float(values[0]), float(values[1])
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low <= high <= _GAMMA_LIMIT):
        raise ConfigError(expected)
    return low, high


def _prepare_output(out: Path, *, overwrite: bool) -> None:
    """Refuse to touch an existing benchmark unless ``overwrite``; then remove what its recipe
    lists (only that: ``out`` may hold other files of the user's)."""
    recipe_file = out / RECIPE_FILE
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Expected an output folder; {out} is a file. Choose another path.")
    if not recipe_file.exists():
        return
    if not overwrite:
        raise ConfigError(
            f"{out} already holds a synthesized benchmark ({recipe_file}). Pass overwrite=True "
            "to replace it, or choose another output folder."
        )
    try:
        previous = read_recipe(out)
    except VideoInputError as error:
        logger.warning("replacing an unreadable %s (%s)", recipe_file, error)
        previous = {}
    if previous.get("kind") == "blend":
        targets = [(out / name, out) for name in previous.get("pairs", {})]
    elif previous.get("kind") == "composite":
        targets = [(out / name, out) for name in previous.get("items", {})]
    else:
        folders = LAYOUTS.get(previous.get("kind", ""), ())
        targets = [(out / folder / name, out / folder) for name in previous.get("videos", {}) for folder in folders]
    for target, parent in targets:
        if target.is_dir() and target.parent == parent and target != parent:  # never follow odd names out
            shutil.rmtree(target)
    recipe_file.unlink()
    logger.info("removed the previous %s benchmark in %s", previous.get("kind", "?"), out)


def _write_recipe(out: Path, recipe: dict[str, Any]) -> None:
    with PendingFile(out / RECIPE_FILE) as temporary:
        temporary.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")


def read_recipe(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The recipe of a benchmark folder written by :func:`synthesize_haze`,
    :func:`synthesize_lowlight`, :func:`synthesize_blend` or :func:`synthesize_composite` (the dict
    they returned).

    Raises:
        VideoInputError: ``out`` holds no readable ``recipe.json``.
    """
    recipe_file = Path(out).expanduser() / RECIPE_FILE
    if not recipe_file.is_file():
        raise VideoInputError(
            f"Expected a synthesized benchmark folder with a {RECIPE_FILE}; there is none at "
            f"{recipe_file}. Make one with `synthesize_haze`, `synthesize_lowlight`, `synthesize_blend` "
            "or `synthesize_composite`."
        )
    try:
        recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VideoInputError(
            f"Could not read {recipe_file}: {error}. Synthesize it again."
        ) from error
    if not isinstance(recipe, dict) or recipe.get("kind") not in KINDS:
        raise VideoInputError(
            f"Expected {recipe_file} to describe a 'haze', 'lowlight', 'blend' or 'composite' benchmark; "
            "it does not. "
            "Synthesize it again."
        )
    return recipe


def _synthesize(
    kind: str,
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int,
    limit_frames: int | None,
    max_side: int | None,
    frame_format: str,
    npy_channel_order: str = "bgr",
    gamma_range: tuple[float, float] = _GAMMA_RANGE,
    overwrite: bool,
) -> dict[str, Any]:
    """The shared loop: list sources, check the output, degrade each video frame by frame.

    ``gamma_range`` is used (and recorded in the recipe) for low light only.
    """
    from vdp import __version__

    _check_options(seed, limit_frames, max_side)
    sources = list_sources(src)
    out = Path(out).expanduser()
    _prepare_output(out, overwrite=overwrite)
    degraded_folder, clean_folder = LAYOUTS[kind]
    recipe: dict[str, Any] = {
        "kind": kind,
        "layout": {
            "degraded": degraded_folder,
            "clean": clean_folder,
            "format": frame_format,
            **({"npy_channel_order": npy_channel_order} if frame_format == "npy" else {}),
        },
        "model": (
            "I = t*J + (1-t)*A, t = exp(-beta*depth), on frame values in [0, 1]"
            if kind == "haze"
            else "I = quantise(shot_noise*Poisson(gain*J**gamma/shot_noise) + N(0, read_noise**2))"
            ", on frame values in [0, 1]"
        ),
        **({"gamma_range": [float(v) for v in gamma_range]} if kind == "lowlight" else {}),
        "seed": int(seed),
        "vdp_version": __version__,
        "source": str(Path(src).expanduser().resolve()),
        "limit_frames": limit_frames,
        "max_side": max_side,
        "videos": {},
    }
    for name, path in sources:
        own_seed = video_seed(int(seed), name)
        rng = np.random.default_rng(own_seed)
        video = read_video(path, max_frames=limit_frames)
        height, width = _target_size(video.height, video.width, max_side)
        parameters = (
            draw_haze_parameters(rng)
            if kind == "haze"
            else draw_lowlight_parameters(rng, gamma_range=gamma_range)
        )
        entry: dict[str, Any] = {
            "source": str(path.resolve()),
            "seed": own_seed,
            "frames": video.num_frames,
            "height": height,
            "width": width,
            "source_height": video.height,
            "source_width": video.width,
            **asdict(parameters),
        }
        t_min, t_max = math.inf, -math.inf
        with _atomic_folders([out / degraded_folder / name, out / clean_folder / name]) as (
            degraded_dir,
            clean_dir,
        ):
            for index, source_frame in enumerate(video.frames):
                clean = source_frame
                if (height, width) != source_frame.shape[:2]:
                    clean = cv2.resize(source_frame, (width, height), interpolation=cv2.INTER_AREA)
                if isinstance(parameters, HazeParameters):
                    transmission = parameters.transmission(index, height, width)
                    t_min = min(t_min, float(transmission.min()))
                    t_max = max(t_max, float(transmission.max()))
                    degraded = add_haze(clean, transmission, parameters.airlight)
                else:
                    # Noise drawn afresh per frame, from (video seed, frame index): independent
                    # over time like a sensor's, and the same whatever order frames are written.
                    degraded = darken(clean, parameters, np.random.default_rng([own_seed, index]))
                _write_frame(degraded_dir, index, degraded, frame_format, npy_channel_order)
                _write_frame(clean_dir, index, clean, frame_format, npy_channel_order)
        if kind == "haze":
            entry["transmission_range"] = [t_min, t_max]
        recipe["videos"][name] = entry
        logger.info(
            "synthesized %s for %s: %d frames of %dx%d", kind, name, video.num_frames, width, height
        )
        del video
    # Through JSON and back, so that the returned dict is exactly what read_recipe gives.
    recipe = json.loads(json.dumps(recipe))
    _write_recipe(out, recipe)
    return recipe


def synthesize_haze(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    limit_frames: int | None = None,
    max_side: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a REVIDE-like hazy benchmark: ``out/hazy/<video>/%05d.png``, ``out/gt/<video>/``.

    Args:
        src: a video file, a folder of frames, a folder of those, or a DAVIS root
            (see :func:`list_sources`).
        out: output folder (created if missing).
        seed: makes the result reproducible; each video's parameters depend on it and its name.
        limit_frames: keep at most this many frames per video (``None``: all).
        max_side: shrink frames so that the longer side is at most this (``None``: keep).
        overwrite: replace a benchmark already in ``out`` (otherwise refused).

    Returns:
        The recipe, also written to ``out/recipe.json``: kind, seed, vdp version, source, and
        per video its frame count, size, ``beta``, ``airlight`` (RGB in [0, 1]), ``depth`` field
        and the ``transmission_range`` it produced.

    Raises:
        VideoInputError: the source is missing, empty, or of an unknown type.
        ConfigError: an option is out of range, or ``out`` holds a benchmark and not ``overwrite``.
    """
    return _synthesize(
        "haze", src, out, seed=seed, limit_frames=limit_frames, max_side=max_side,
        frame_format="png", overwrite=overwrite,
    )  # fmt: skip


def synthesize_lowlight(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    limit_frames: int | None = None,
    max_side: int | None = None,
    format: str = "png",  # noqa: A002 - the brief's and SDSD's word for it
    npy_channel_order: str = "bgr",
    gamma_range: tuple[float, float] = _GAMMA_RANGE,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write an SDSD-like low-light benchmark: ``out/input/<pair>/``, ``out/GT/<pair>/``.

    Args:
        src: a video file, a folder of frames, a folder of those, or a DAVIS root
            (see :func:`list_sources`).
        out: output folder (created if missing).
        seed: makes the result reproducible; each video's parameters depend on it and its name,
            each frame's noise also on the frame's index.
        limit_frames: keep at most this many frames per video (``None``: all).
        max_side: shrink frames so that the longer side is at most this (``None``: keep).
        format: ``"png"`` (``%05d.png``) or ``"npy"`` (``%05d.npy``, ``(H, W, 3)`` uint8 RGB
            arrays like SDSD's ``*_np`` variants).
        npy_channel_order: ``"rgb"`` or ``"bgr"``, the channel order of ``.npy`` frames. The
            SDSD authors saved theirs in OpenCV's BGR order (see
            ``vdp.bench.restoration.SDSD_NPY_CHANNEL_ORDER``); pass ``"bgr"`` for folders that
            SDSD's own loaders should read with the right colours. Recorded in the recipe.
        gamma_range: ``(low, high)``, each video's gamma is drawn uniformly from it (``low ==
            high``: that gamma for every video); ``0 < low <= high <= 5``. The default, 0.8-1.2,
            keeps curves close to a pure gain; e.g. ``(1.2, 2.5)`` makes strong ones. Recorded in
            the recipe as ``gamma_range``; the other parameters (gain, noise levels) do not
            depend on it.
        overwrite: replace a benchmark already in ``out`` (otherwise refused).

    Returns:
        The recipe, also written to ``out/recipe.json``: kind, seed, ``gamma_range``, vdp version,
        source, and per video its frame count, size, ``gain``, ``gamma``, ``shot_noise`` and
        ``read_noise``.

    Raises:
        VideoInputError: the source is missing, empty, or of an unknown type.
        ConfigError: an option (``gamma_range`` included) is out of range or ``format``
            unknown, or ``out`` holds a benchmark and not ``overwrite``.
    """
    if npy_channel_order not in ("rgb", "bgr"):
        raise ConfigError(
            f"npy_channel_order must be 'rgb' or 'bgr'; got {npy_channel_order!r}."
        )
    if format not in FRAME_FORMATS:
        raise ConfigError(
            f"format must be one of {', '.join(FRAME_FORMATS)}; got {format!r}."
        )
    gamma_range = check_gamma_range(gamma_range)
    return _synthesize(
        "lowlight", src, out, seed=seed, limit_frames=limit_frames, max_side=max_side,
        frame_format=format, npy_channel_order=npy_channel_order, gamma_range=gamma_range,
        overwrite=overwrite,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Blends of two videos (layer separation)


def check_coefficient(coefficient: Any) -> float | str:
    """``coefficient`` checked: a finite number strictly between 0 and 1, or ``"random"``.

    Raises:
        ConfigError: anything else (0 and 1 are refused: one layer would be absent).
    """
    if isinstance(coefficient, str) and coefficient.strip().lower() == "random":
        return "random"
    low, high = BLEND_RANDOM_RANGE
    expected = (
        "coefficient must be a number strictly between 0 and 1 (the share of layer 1 in the blend, e.g. "
        f"0.5), or 'random' (drawn per pair in [{low:g}, {high:g}]); got {coefficient!r}."
    )
    if isinstance(coefficient, (bool, np.bool_)) or not isinstance(
        coefficient, (int, float, np.integer, np.floating)
    ):
        raise ConfigError(expected)
    value = float(coefficient)
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise ConfigError(expected)
    return value


def parse_coefficient(value: str) -> float | str:
    """``--coefficient`` from the command line: a number in (0, 1) or the word ``random``."""
    if value.strip().lower() == "random":
        return "random"
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"--coefficient expects a number strictly between 0 and 1 (e.g. 0.5) or the word random; got {value!r}."
        ) from None
    return check_coefficient(number)


def check_size(size: Any) -> tuple[int, int] | None:
    """``size`` as ``(width, height)`` whole numbers of at least 16 each, or ``None``.

    Raises:
        ConfigError: not two whole numbers, or a side below 16.
    """
    if size is None:
        return None
    expected = f"size must be (width, height), two whole numbers of at least {_MIN_SIDE}, e.g. (224, 128); got {size!r}."
    if isinstance(size, (str, bytes)):
        raise ConfigError(expected)
    try:
        values = tuple(size)
    except TypeError:
        raise ConfigError(expected) from None
    if len(values) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        raise ConfigError(expected)
    width, height = int(values[0]), int(values[1])
    if width < _MIN_SIDE or height < _MIN_SIDE:
        raise ConfigError(expected)
    return width, height


def parse_size(value: str) -> tuple[int, int]:
    """``--size WxH`` from the command line (``224x128``) as ``(width, height)``, checked."""
    parts = value.strip().lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:  # not whole numbers, or not exactly two of them
        raise ConfigError(
            f"--size expects WIDTHxHEIGHT in pixels, e.g. 224x128; got {value!r}."
        ) from None
    return check_size((width, height))  # type: ignore[return-value]


def blend_frame(layer1: np.ndarray, layer2: np.ndarray, a: float) -> np.ndarray:
    """``round(a * layer1 + (1 - a) * layer2)`` of two uint8 frames, computed in float64.

    Rounding is numpy's (halves to the even neighbour, e.g. 127.5 -> 128, 126.5 -> 126).

    Args:
        layer1: ``(H, W, 3)`` uint8 RGB.
        layer2: ``(H, W, 3)`` uint8 RGB of the same shape.
        a: share of layer 1, in (0, 1).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if layer1.shape != layer2.shape:
        raise ValueError(f"layers of different shapes {layer1.shape} and {layer2.shape} cannot be blended")
    mix = a * layer1.astype(np.float64) + (1.0 - a) * layer2.astype(np.float64)
    return np.clip(np.rint(mix), 0, 255).astype(np.uint8)


def _resize_exactly(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """``frame`` at ``(height, width)``: area averaging when no side grows, bilinear otherwise."""
    if frame.shape[:2] == (height, width):
        return frame
    grows = height > frame.shape[0] or width > frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR if grows else cv2.INTER_AREA)


def pair_names(names: list[str]) -> list[tuple[str, str, str]]:
    """Every unordered pair of ``names`` as ``(item name, first, second)``, sorted names first.

    Raises:
        VideoInputError: fewer than two names, or two pairs that would get the same item name
            (names holding ``+``).
    """
    ordered = sorted(names)
    pairs = [
        (f"{first}{PAIR_SEPARATOR}{second}", first, second)
        for index, first in enumerate(ordered)
        for second in ordered[index + 1:]
    ]
    items = [item for item, _, _ in pairs]
    clashes = sorted({item for item in items if items.count(item) > 1})
    if clashes:
        raise VideoInputError(
            f"Two pairs of videos would both be written as {clashes[0]!r} (a name holds "
            f"{PAIR_SEPARATOR!r}); rename the videos."
        )
    return pairs


def synthesize_blend(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    limit_frames: int | None = None,
    max_side: int | None = None,
    size: tuple[int, int] | None = None,
    coefficient: float | str = 0.5,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a layer-separation benchmark: every pair of source videos mixed into one.

    For each unordered pair of videos (names sorted, ``first < second``), the item
    ``out/<first>+<second>/`` holds ``blend/%05d.png``, ``layer1/%05d.png`` (``first``) and
    ``layer2/%05d.png`` (``second``), with ``blend = round(a * layer1 + (1 - a) * layer2)``
    (:func:`blend_frame`). Both layers are cut to the shorter video (and ``limit_frames``) and
    brought to one size: ``size`` exactly, else layer 1's size after ``max_side`` (layer 2 is
    resized to it, whatever its aspect ratio; a warning says when that distorts it). Each pair
    is written into a hidden folder and renamed when complete; ``recipe.json`` comes last.

    Args:
        src: a folder of videos or frame folders, or a DAVIS root (see :func:`list_sources`),
            holding at least two videos.
        out: output folder (created if missing).
        seed: makes ``coefficient="random"`` reproducible; each pair draws from its own seed
            (``video_seed(seed, "<first>+<second>")``), so a pair's ``a`` does not depend on the
            other videos.
        limit_frames: keep at most this many frames per pair (``None``: the shorter video's).
        max_side: shrink frames so that the longer side is at most this (``None``: keep).
        size: ``(width, height)`` to resize every frame to exactly (area averaging when
            shrinking); not together with ``max_side``.
        coefficient: ``a``, the share of layer 1, in (0, 1); or ``"random"``: per pair, uniform
            in ``BLEND_RANDOM_RANGE`` (0.3-0.7).
        overwrite: replace a benchmark already in ``out`` (otherwise refused).

    Returns:
        The recipe, also written to ``out/recipe.json``: kind ``"blend"``, the settings, and per
        pair (``pairs``) its two ``sources`` (paths) and ``names``, ``a``, ``frames``, ``width``,
        ``height``, ``seed`` and the sources' own frame counts and sizes.

    Raises:
        VideoInputError: the source is missing, empty, of an unknown type, or holds one video.
        ConfigError: an option is out of range (``coefficient`` outside (0, 1), ``size`` and
            ``max_side`` both given), or ``out`` holds a benchmark and not ``overwrite``.
    """
    from vdp import __version__

    _check_options(seed, limit_frames, max_side)
    coefficient = check_coefficient(coefficient)
    size = check_size(size)
    if size is not None and max_side is not None:
        raise ConfigError(
            f"Pass either size ({size[0]}x{size[1]}, exact) or max_side ({max_side}, keeps the aspect ratio), not both."
        )
    sources = dict(list_sources(src))
    if len(sources) < 2:
        name = next(iter(sources), "?")
        raise VideoInputError(
            f"A blend needs at least two videos to mix; {Path(src).expanduser()} holds one ({name!r}). Pass a folder "
            "of videos or frame folders, or a DAVIS root with several sequences."
        )
    pairs = pair_names(list(sources))
    out = Path(out).expanduser()
    _prepare_output(out, overwrite=overwrite)
    recipe: dict[str, Any] = {
        "kind": "blend",
        "layout": {"item": f"<first>{PAIR_SEPARATOR}<second>", "blend": BLEND_FOLDERS[0],
                   "layers": list(BLEND_FOLDERS[1:]), "format": "png"},
        "model": "blend = round(a*layer1 + (1-a)*layer2), in float64 on the uint8 layers (halves to even)",
        "coefficient": coefficient,
        **({"coefficient_range": list(BLEND_RANDOM_RANGE)} if coefficient == "random" else {}),
        "seed": int(seed),
        "vdp_version": __version__,
        "source": str(Path(src).expanduser().resolve()),
        "limit_frames": limit_frames,
        "max_side": max_side,
        "size": list(size) if size is not None else None,
        "pairs": {},
    }
    for item, first, second in pairs:
        own_seed = video_seed(int(seed), item)
        a = float(np.random.default_rng(own_seed).uniform(*BLEND_RANDOM_RANGE)) if coefficient == "random" \
            else float(coefficient)
        video1 = read_video(sources[first], max_frames=limit_frames)
        video2 = read_video(sources[second], max_frames=limit_frames)
        if size is not None:
            width, height = size
        else:
            height, width = _target_size(video1.height, video1.width, max_side)
        aspect1, aspect2 = video1.width / video1.height, video2.width / video2.height
        if size is None and abs(aspect1 / aspect2 - 1.0) > 0.01:
            logger.warning("%s: %s is %dx%d, stretched to %s's aspect ratio (%dx%d); pass size to choose one",
                           item, second, video2.width, video2.height, first, width, height)
        num_frames = min(video1.num_frames, video2.num_frames)
        with pending_folder(out / item) as folder:
            for index in range(num_frames):
                layer1 = _resize_exactly(video1.frames[index], height, width)
                layer2 = _resize_exactly(video2.frames[index], height, width)
                for name, frame in zip(BLEND_FOLDERS, (blend_frame(layer1, layer2, a), layer1, layer2)):
                    write_png_sequence([frame], folder / name, start_index=index)
        recipe["pairs"][item] = {
            "sources": [str(sources[first].resolve()), str(sources[second].resolve())],
            "names": [first, second],
            "a": a,
            "frames": num_frames,
            "width": width,
            "height": height,
            "seed": own_seed,
            "source_frames": [video1.num_frames, video2.num_frames],
            "source_sizes": [[video1.width, video1.height], [video2.width, video2.height]],
        }
        logger.info("blended %s (a = %.3f): %d frames of %dx%d", item, a, num_frames, width, height)
        del video1, video2
    recipe = json.loads(json.dumps(recipe))
    _write_recipe(out, recipe)
    return recipe


# --------------------------------------------------------------------------------------------
# Composites: one sequence's object pasted onto another's frames (object removal)


def composite_frame(obj: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask ? obj : background``, pixel by pixel: the object pasted with a binary alpha.

    Args:
        obj: ``(H, W, 3)`` uint8 RGB, the object's frame.
        background: ``(H, W, 3)`` uint8 RGB of the same shape.
        mask: ``(H, W)`` bool, where the object is.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if obj.shape != background.shape or mask.shape != background.shape[:2]:
        raise ValueError(
            f"object {obj.shape}, background {background.shape} and mask {mask.shape} do not match"
        )
    return np.where(mask[:, :, None], obj, background)


def _check_annotations(root: Path, name: str, frames_folder: Path) -> None:
    """Every frame of sequence ``name`` has its ground-truth mask (same file stem), and the masks
    sort like the frames, so that ``read_annotations``' list lines up with the frames.

    Raises:
        VideoInputError: the sequence's annotation folder is missing, or a frame has no mask.
    """
    folder = root / "Annotations" / "480p" / name
    if not folder.is_dir():
        raise VideoInputError(
            f"A composite needs a DAVIS root with ground-truth masks (Annotations/480p/<sequence>/%05d.png "
            f"beside JPEGImages/480p/<sequence>/); {root} has no {folder.relative_to(root)} for sequence {name!r}."
        )
    frames = [file.stem for file in list_frame_files(frames_folder)]
    masks = [file.stem for file in sorted(folder.glob("*.png"))]
    missing = [stem for stem in frames if stem not in set(masks)]
    if missing:
        raise VideoInputError(
            f"A composite needs a mask for every frame of the object's sequence; {len(missing)} frame(s) of "
            f"{name!r} have none in {folder} (the first: {missing[0]}). Expected {folder}/{missing[0]}.png."
        )
    if masks != frames:
        raise VideoInputError(
            f"The masks of {name!r} in {folder} do not match its frames one to one ({len(masks)} masks for "
            f"{len(frames)} frames, or names that sort differently); expected one <frame name>.png per frame."
        )


def synthesize_composite(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    limit_frames: int | None = None,
    max_side: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write an object-removal benchmark with a known answer: DAVIS objects pasted onto other videos.

    With the sequences of the DAVIS root sorted by name ``s_0 .. s_{n-1}``, item ``i`` pastes the
    object of ``s_i`` (its ground-truth mask, ``> 0``, as a binary alpha, and its own pixels,
    frame by frame, so that it moves as in its own video) onto the frames of ``s_{(i+1) mod n}``.
    The item ``out/<object>-on-<background>/`` holds ``composite/%05d.png`` (RGB,
    ``mask ? object : background``, :func:`composite_frame`), ``background/%05d.png`` (the clean
    background frames: the ground truth of a removal) and ``mask/%05d.png`` (8-bit gray, 0 or
    255: the pasted object's mask). Both sequences are cut to the shorter one (and
    ``limit_frames``); the frames take the background's size after ``max_side``, the object's
    frames being resized to it (its masks by nearest neighbour; a warning says when that changes
    the object's aspect ratio). Each item is written into a hidden folder and renamed when
    complete; ``recipe.json`` comes last.

    Args:
        src: a DAVIS root (``JPEGImages/480p/<seq>/`` and ``Annotations/480p/<seq>/%05d.png``, a
            mask for every frame) holding at least two sequences.
        out: output folder (created if missing).
        seed: recorded only: the pairing is deterministic and nothing is drawn (kept for
            uniformity with the other ``synthesize_*`` functions).
        limit_frames: keep at most this many frames per item (``None``: the shorter sequence's).
        max_side: shrink frames so that the longer side is at most this (``None``: keep).
        overwrite: replace a benchmark already in ``out`` (otherwise refused).

    Returns:
        The recipe, also written to ``out/recipe.json``: kind ``"composite"``, the layout, the
        settings, and per item (``items``) its ``object`` and ``background`` sequence names,
        ``frames``, ``width``, ``height``, ``mean_mask_area_fraction`` (the share of the pixels the
        pasted object covers, averaged over the frames), and the sources' paths, frame counts and
        sizes.

    Raises:
        VideoInputError: the source is missing, not a DAVIS root with ``Annotations/480p``, holds
            one sequence, or a frame of a sequence has no mask.
        ConfigError: an option is out of range, or ``out`` holds a benchmark and not ``overwrite``.
    """
    from vdp import __version__
    from vdp.bench.davis import read_annotations

    _check_options(seed, limit_frames, max_side)
    sources = dict(list_sources(src))
    root = Path(src).expanduser()
    absent = [folder for folder in ("JPEGImages/480p", "Annotations/480p") if not (root / folder).is_dir()]
    if absent:
        raise VideoInputError(
            f"A composite needs a DAVIS root with ground-truth masks: JPEGImages/480p/<sequence>/ and "
            f"Annotations/480p/<sequence>/%05d.png; {root} has no {absent[0]} folder."
        )
    if len(sources) < 2:
        raise VideoInputError(
            f"A composite needs at least two sequences (one gives the object, the next the background); {root} "
            f"holds one ({next(iter(sources), '?')!r}). Pass a DAVIS root with several sequences."
        )
    names = sorted(sources)
    for name in names:
        _check_annotations(root, name, sources[name])
    items = [
        (f"{obj}{COMPOSITE_SEPARATOR}{background}", obj, background)
        for obj, background in zip(names, names[1:] + names[:1])
    ]
    if len({item for item, _, _ in items}) < len(items):
        raise VideoInputError(
            f"Two composites would get the same folder name (a sequence name holds {COMPOSITE_SEPARATOR!r}); "
            "rename the sequences."
        )
    out = Path(out).expanduser()
    _prepare_output(out, overwrite=overwrite)
    recipe: dict[str, Any] = {
        "kind": "composite",
        "layout": {"item": f"<object>{COMPOSITE_SEPARATOR}<background>", "composite": COMPOSITE_FOLDERS[0],
                   "clean": COMPOSITE_FOLDERS[1], "mask": COMPOSITE_FOLDERS[2], "format": "png"},
        "model": "composite = mask ? object : background (binary alpha: the object's ground-truth mask > 0); "
                 "object of sequence i (sorted names) on the frames of sequence i+1, the last on the first",
        "seed": int(seed),
        "vdp_version": __version__,
        "source": str(root.resolve()),
        "limit_frames": limit_frames,
        "max_side": max_side,
        "items": {},
    }
    for item, obj, background in items:
        object_video = read_video(sources[obj], max_frames=limit_frames)
        background_video = read_video(sources[background], max_frames=limit_frames)
        height, width = _target_size(background_video.height, background_video.width, max_side)
        num_frames = min(object_video.num_frames, background_video.num_frames)
        masks = read_annotations(root, obj)[:num_frames]
        aspect_object = object_video.width / object_video.height
        aspect_background = background_video.width / background_video.height
        if abs(aspect_object / aspect_background - 1.0) > 0.01:
            logger.warning("%s: the object of %s (%dx%d) is stretched to %s's aspect ratio (%dx%d)", item, obj,
                           object_video.width, object_video.height, background, width, height)
        area = 0.0
        with pending_folder(out / item) as folder:
            for index in range(num_frames):
                obj_frame = _resize_exactly(object_video.frames[index], height, width)
                clean = _resize_exactly(background_video.frames[index], height, width)
                mask = masks[index]
                if mask.shape != (height, width):
                    mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
                area += float(mask.mean())
                frames = (composite_frame(obj_frame, clean, mask), clean, mask.astype(np.uint8) * 255)
                for name, frame in zip(COMPOSITE_FOLDERS, frames):
                    write_png_sequence([frame], folder / name, start_index=index)
        recipe["items"][item] = {
            "object": obj,
            "background": background,
            "frames": num_frames,
            "width": width,
            "height": height,
            "mean_mask_area_fraction": area / num_frames,
            "sources": [str(sources[obj].resolve()), str(sources[background].resolve())],
            "source_frames": [object_video.num_frames, background_video.num_frames],
            "source_sizes": [[object_video.width, object_video.height],
                             [background_video.width, background_video.height]],
        }
        logger.info("composited %s: %d frames of %dx%d, the object covering %.1f%% of each on average",
                    item, num_frames, width, height, 100 * area / num_frames)
        del object_video, background_video, masks
    recipe = json.loads(json.dumps(recipe))
    _write_recipe(out, recipe)
    return recipe
