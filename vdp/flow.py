"""Optical flow between consecutive frames: RAFT (GPU), DIS or Farneback (OpenCV, CPU).

Every backend returns the forward flow t -> t+1 and the backward flow t+1 -> t for each pair of
consecutive frames, in pixels, channel 0 = x (right) and channel 1 = y (down). Results can be
kept in a disk cache keyed by the frames' content, so a video is analysed once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Literal, get_args

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vdp.atomic_write import PendingFile
from vdp.errors import ConfigError, VideoInputError

__all__ = [
    "FLOW_METHODS",
    "FlowField",
    "check_method",
    "compute_flow",
    "flow_to_rgb",
    "video_flow_scale",
]

logger = logging.getLogger(__name__)

FlowMethod = Literal["auto", "raft", "dis", "farneback"]
"""Values accepted by ``compute_flow(method=...)`` (and ``RunOptions.flow``)."""
FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with counts of frame pairs."""

# Bump whenever a backend's output changes, so stale cache entries are not reused.
_CACHE_VERSION = "flow-v1"

# DIS at full resolution (finest scale 0) is about 3 to 5 times slower than the MEDIUM preset's
# half resolution (finest scale 1) but halves the sub-pixel error; above about 960x540 the preset's
# scale keeps a flow near 0.2 s on one core.
_DIS_FULL_RESOLUTION_MAX_PIXELS = 960 * 540

# RAFT (Teed and Deng, ECCV 2020) works on features at 1/8 resolution, and torchvision's
# correlation pyramid needs at least 16x16 features at that scale.
_RAFT_STRIDE = 8
_RAFT_MIN_SIDE = 128
_RAFT_NUM_FLOW_UPDATES = 12  # torchvision's default and the paper's training count; more costs linearly
# The all-pairs correlation volume costs (H/8 * W/8)^2 float32 per direction of a pair; this
# budget bounds the pairs run at once (4 at 960x540, 1 at 1920x1080, which needs ~8 GB anyway).
_RAFT_CORRELATION_BUDGET_BYTES = 2 * 1024**3
_RAFT_MAX_PAIRS_PER_BATCH = 8
_RAFT_DOWNLOAD_TIMEOUT_S = 20.0


@dataclass
class FlowField:
    """Forward and backward optical flow of a video."""

    forward: np.ndarray
    """``(T-1, H, W, 2)`` float32 flow t -> t+1 in pixels, channel 0 = x, 1 = y."""
    backward: np.ndarray
    """``(T-1, H, W, 2)`` float32 flow t+1 -> t in pixels."""
    method: str
    """Backend that produced it: ``'raft'``, ``'dis'`` or ``'farneback'``."""
    reason: str
    """Why this backend was used, for the log (e.g. ``'dis: no CUDA device'``)."""

    def __post_init__(self) -> None:
        if self.forward.shape != self.backward.shape or self.forward.ndim != 4 or self.forward.shape[-1] != 2:
            raise ValueError(
                "forward and backward flow must both have shape (T-1, H, W, 2); "
                f"got {self.forward.shape} and {self.backward.shape}"
            )

    @property
    def num_pairs(self) -> int:
        """Number of consecutive frame pairs, T - 1."""
        return int(self.forward.shape[0])

    @property
    def height(self) -> int:
        """Frame height ``H`` in pixels."""
        return int(self.forward.shape[1])

    @property
    def width(self) -> int:
        """Frame width ``W`` in pixels."""
        return int(self.forward.shape[2])


# --------------------------------------------------------------------------------------------
# Public entry point


def compute_flow(
    frames: np.ndarray,
    *,
    method: str = "auto",
    device: str = "cpu",
    raft_weights: str | Path | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> FlowField:
    """Forward and backward optical flow for every pair of consecutive frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB, T >= 2.
        method: ``'auto'`` (RAFT on a CUDA device when its weights are available without a
            download, DIS otherwise), ``'raft'``, ``'dis'`` or ``'farneback'``.
        device: torch device for RAFT (``'cpu'``, ``'cuda'``, ``'cuda:1'``); OpenCV backends
            ignore it.
        raft_weights: a torchvision ``raft_large`` state dict (``.pth``); default: torchvision's
            ``Raft_Large_Weights.DEFAULT`` from the torch hub cache, downloaded when missing.
        cache_dir: where to keep results (one compressed ``.npz`` per video and method);
            ``None`` disables the cache.
        progress: called as ``progress(done_pairs, num_pairs)``.

    Returns:
        A ``FlowField`` with ``(T-1, H, W, 2)`` float32 flows.

    Raises:
        VideoInputError: ``frames`` is not ``(T, H, W, 3)`` uint8 with T >= 2.
        ConfigError: unknown method, or RAFT asked for and its weights cannot be had.
    """
    _check_frames(frames)
    method, reason = _resolve_method(method, device=device, raft_weights=raft_weights)
    logger.info("optical flow: %s", reason)

    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"flow-{method}-{_cache_key(frames, method)}.npz"
        cached = _load_cached(cache_path, method=method, reason=reason)
        if cached is not None:
            if progress is not None:
                progress(cached.num_pairs, cached.num_pairs)
            return cached

    backend = _BACKENDS[method]
    forward, backward = backend(frames, device=device, raft_weights=raft_weights, progress=progress)
    field = FlowField(forward=forward, backward=backward, method=method, reason=reason)
    if cache_path is not None:
        _save_cached(cache_path, field)
    return field


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray):
        raise VideoInputError(f"optical flow expects frames as a numpy array; got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        got = f"{frames.dtype} array of shape {frames.shape}"
        raise VideoInputError(f"optical flow expects frames as a (T, H, W, 3) uint8 RGB array; got {got}")
    if frames.shape[0] < 2:
        raise VideoInputError(
            f"optical flow needs at least 2 frames; got {frames.shape[0]}. "
            "Give a video or frame folder with more frames."
        )


def check_method(method: str) -> None:
    """Refuse a flow method name that is not one of ``FLOW_METHODS``."""
    if method not in FLOW_METHODS:
        raise ConfigError(f"unknown optical flow method {method!r}; expected one of: {', '.join(FLOW_METHODS)}")


def _resolve_method(method: str, *, device: str, raft_weights: str | Path | None) -> tuple[str, str]:
    """Map ``method`` (possibly ``'auto'``) to a backend name and a reason for the log."""
    check_method(method)
    if raft_weights is not None and method in ("auto", "raft"):
        _existing_weights_file(raft_weights)  # a mistyped path fails here, not after a DIS fallback
    if method != "auto":
        return method, f"{method}: requested"
    if torch.device(device).type != "cuda":
        return "dis", f"dis: no GPU (device={device!r}); RAFT is used on CUDA devices"
    if not torch.cuda.is_available():
        return "dis", f"dis: device {device!r} asked for but CUDA is not available"
    if raft_weights is not None:
        return "raft", f"raft: CUDA device {device!r} and weights at {raft_weights}"
    weights_file = _raft_cache_file()
    if not weights_file.is_file():
        return "dis", f"dis: RAFT weights not in cache ({weights_file})"
    return "raft", f"raft: CUDA device {device!r} and cached weights at {weights_file}"


# --------------------------------------------------------------------------------------------
# OpenCV backends


def _to_gray(frames: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]


def _estimate_pairwise(
    frames: np.ndarray,
    estimate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a two-frame grayscale estimator both ways on every consecutive pair."""
    gray = _to_gray(frames)
    num_pairs = len(gray) - 1
    height, width = gray[0].shape
    forward = np.empty((num_pairs, height, width, 2), dtype=np.float32)
    backward = np.empty_like(forward)
    for index in range(num_pairs):
        forward[index] = estimate(gray[index], gray[index + 1])
        backward[index] = estimate(gray[index + 1], gray[index])
        if progress is not None:
            progress(index + 1, num_pairs)
    return forward, backward


def _dis_flow(
    frames: np.ndarray, *, device: str, raft_weights: str | Path | None, progress: ProgressCallback | None
) -> tuple[np.ndarray, np.ndarray]:
    """DIS (Kroeger et al., ECCV 2016), OpenCV's MEDIUM preset; full resolution on small frames."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    height, width = frames.shape[1:3]
    if height * width <= _DIS_FULL_RESOLUTION_MAX_PIXELS:
        dis.setFinestScale(0)
    dis.setUseSpatialPropagation(True)
    dis.setUseMeanNormalization(True)  # robust to global brightness changes between frames

    def estimate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return dis.calc(first, second, None)

    return _estimate_pairwise(frames, estimate, progress)


def _farneback_flow(
    frames: np.ndarray, *, device: str, raft_weights: str | Path | None, progress: ProgressCallback | None
) -> tuple[np.ndarray, np.ndarray]:
    """Farneback (SCIA 2003) polynomial expansion, dense, CPU."""
    # 5 pyramid levels at scale 0.5 (coarsest 1/32) follow large motions; poly_n=7 with
    # poly_sigma=1.5 is the pairing OpenCV's documentation gives for smoother, more robust fits.
    def estimate(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(
            first,
            second,
            None,
            pyr_scale=0.5,
            levels=5,
            winsize=15,
            iterations=3,
            poly_n=7,
            poly_sigma=1.5,
            flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN,
        )

    return _estimate_pairwise(frames, estimate, progress)


# --------------------------------------------------------------------------------------------
# RAFT backend


def _raft_weights_url() -> str:
    from torchvision.models.optical_flow import Raft_Large_Weights

    return Raft_Large_Weights.DEFAULT.url


def _raft_cache_file() -> Path:
    """Where torch hub keeps (or would keep) the default RAFT weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_raft_weights_url())


def _write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    A crash or a failed ``write`` never leaves a truncated file at ``path`` (its folder is created
    if missing).
    """
    with PendingFile(path) as temporary, temporary.open("wb") as part:
        write(part)


def _download_raft_weights(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination``, checking torch hub's sha256 prefix in the file name.

    torch.hub's own download has no timeout, so a network that drops packets would hang it.
    """
    match = re.search(r"-([a-f0-9]+)\.", destination.name)

    def write(part: BinaryIO) -> None:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=_RAFT_DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                part.write(chunk)
        if match is not None and not digest.hexdigest().startswith(match.group(1)):
            raise OSError(f"the download's sha256 {digest.hexdigest()} does not start with {match.group(1)}")

    _write_atomically(destination, write)


def _raft_weights_help() -> str:
    return (
        "Give a local copy with --raft-weights PATH (raft_large_C_T_SKHT_V2-ff5fadd5.pth from "
        f"{_raft_weights_url()}), or run vdp once on a connected machine and copy "
        f"{_raft_cache_file()} into the same place here (torch hub directory: {torch.hub.get_dir()}; "
        "set TORCH_HOME to move it), or use --flow dis."
    )


def _existing_weights_file(raft_weights: str | Path) -> Path:
    weights_file = Path(raft_weights).expanduser()
    if not weights_file.is_file():
        raise ConfigError(f"RAFT weights file {weights_file} does not exist. {_raft_weights_help()}")
    return weights_file


def _load_raft_state_dict(raft_weights: str | Path | None) -> dict[str, torch.Tensor]:
    """The RAFT-large state dict from ``raft_weights``, the torch hub cache, or a download."""
    if raft_weights is not None:
        weights_file = _existing_weights_file(raft_weights)
    else:
        weights_file = _raft_cache_file()
        if not weights_file.is_file():
            url = _raft_weights_url()
            logger.info("downloading RAFT weights %s to %s", url, weights_file)
            try:
                _download_raft_weights(url, weights_file)
            except OSError as error:  # URLError, timeouts and bad hashes are all OSErrors
                raise ConfigError(
                    f"RAFT weights are not in the cache ({weights_file}) and downloading them failed: {error}. "
                    f"{_raft_weights_help()}"
                ) from error
    try:
        state_dict = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a corrupt or foreign file
        raise ConfigError(f"cannot read RAFT weights {weights_file}: {error}. {_raft_weights_help()}") from error
    if isinstance(state_dict, dict) and isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, dict):
        raise ConfigError(f"RAFT weights {weights_file} hold a {type(state_dict).__name__}, not a state dict")
    return state_dict


def _load_raft_model(raft_weights: str | Path | None, device: str) -> torch.nn.Module:
    from torchvision.models.optical_flow import raft_large

    state_dict = _load_raft_state_dict(raft_weights)
    model = raft_large(weights=None)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ConfigError(
            f"RAFT weights {raft_weights or _raft_cache_file()} do not fit torchvision's raft_large "
            f"(the original princeton-vl checkpoints have other names): {error}"
        ) from error
    return model.eval().to(device)


def _raft_flow(
    frames: np.ndarray, *, device: str, raft_weights: str | Path | None, progress: ProgressCallback | None
) -> tuple[np.ndarray, np.ndarray]:
    model = _load_raft_model(raft_weights, device)
    return _estimate_raft(frames, model=model, device=device, progress=progress)


def _raft_padded_size(height: int, width: int) -> tuple[int, int]:
    def pad(side: int) -> int:
        return max(_RAFT_MIN_SIDE, -(-side // _RAFT_STRIDE) * _RAFT_STRIDE)

    return pad(height), pad(width)


def _pad_to_raft_size(images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad ``(N, C, H, W)`` to a multiple of 8 and at least 128 per side.

    Returns the padded tensor and the padding ``(left, right, top, bottom)``.
    """
    height, width = images.shape[-2:]
    padded_height, padded_width = _raft_padded_size(height, width)
    top = (padded_height - height) // 2
    left = (padded_width - width) // 2
    padding = (left, padded_width - width - left, top, padded_height - height - top)
    return F.pad(images, padding, mode="replicate"), padding


def _raft_pairs_per_batch(height: int, width: int) -> int:
    """Pairs per RAFT batch for ``height`` x ``width`` frames (padded size), both directions."""
    padded_height, padded_width = _raft_padded_size(height, width)
    features = (padded_height // _RAFT_STRIDE) * (padded_width // _RAFT_STRIDE)
    correlation_bytes_per_pair = 2 * features * features * 4
    return max(1, min(_RAFT_MAX_PAIRS_PER_BATCH, _RAFT_CORRELATION_BUDGET_BYTES // correlation_bytes_per_pair))


def _estimate_raft(
    frames: np.ndarray,
    *,
    model: torch.nn.Module,
    device: str,
    progress: ProgressCallback | None = None,
    num_flow_updates: int = _RAFT_NUM_FLOW_UPDATES,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a torchvision RAFT ``model`` on every consecutive pair, both directions in one batch.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        model: a torchvision ``RAFT`` in eval mode, already on ``device``.

    Returns:
        forward and backward flows, each ``(T-1, H, W, 2)`` float32.
    """
    num_pairs = frames.shape[0] - 1
    height, width = frames.shape[1:3]
    forward = np.empty((num_pairs, height, width, 2), dtype=np.float32)
    backward = np.empty_like(forward)
    pairs_per_batch = _raft_pairs_per_batch(height, width)
    with torch.inference_mode():
        for start in range(0, num_pairs, pairs_per_batch):
            stop = min(start + pairs_per_batch, num_pairs)
            clip = torch.from_numpy(frames[start : stop + 1]).to(device).permute(0, 3, 1, 2).float()
            # [0, 255] -> [-1, 1], the normalisation of torchvision's RAFT weights' transforms.
            clip = clip / 127.5 - 1.0
            clip, (left, _, top, _) = _pad_to_raft_size(clip)
            first = torch.cat((clip[:-1], clip[1:]))
            second = torch.cat((clip[1:], clip[:-1]))
            flows = model(first, second, num_flow_updates=num_flow_updates)[-1]
            flows = flows[:, :, top : top + height, left : left + width].permute(0, 2, 3, 1).float().cpu().numpy()
            count = stop - start
            forward[start:stop] = flows[:count]
            backward[start:stop] = flows[count:]
            if progress is not None:
                progress(stop, num_pairs)
    return forward, backward


_Backend = Callable[..., tuple[np.ndarray, np.ndarray]]
_BACKENDS: dict[str, _Backend] = {"raft": _raft_flow, "dis": _dis_flow, "farneback": _farneback_flow}


# --------------------------------------------------------------------------------------------
# Disk cache
#
# Flows are stored as float16: the relative rounding error is at most 2^-11, i.e. under 0.01 px
# for motions below 16 px and 0.03 px at 100 px, far below any backend's own error (~0.5 px),
# and the files are half the size of float32 ones.


def _cache_key(frames: np.ndarray, method: str) -> str:
    # SHA-1 over the whole buffer runs at ~1 GB/s, cheap next to any flow backend, and a
    # subsample could miss a local edit to the video.
    content = hashlib.sha1(np.ascontiguousarray(frames).data).hexdigest()
    num_frames, height, width = frames.shape[:3]
    description = f"{_CACHE_VERSION}|{method}|{num_frames}x{height}x{width}|{content}"
    return hashlib.sha1(description.encode()).hexdigest()


def _load_cached(path: Path, *, method: str, reason: str) -> FlowField | None:
    if not path.is_file():
        logger.debug("flow cache miss: %s", path)
        return None
    try:
        with np.load(path) as stored:
            forward = stored["forward"].astype(np.float32)
            backward = stored["backward"].astype(np.float32)
    except (OSError, ValueError, KeyError) as error:
        logger.warning("ignoring unreadable flow cache file %s: %s", path, error)
        return None
    logger.info("optical flow loaded from cache %s", path)
    return FlowField(forward=forward, backward=backward, method=method, reason=f"{reason} (cached)")


def _save_cached(path: Path, field: FlowField) -> None:
    def write(part: BinaryIO) -> None:
        np.savez_compressed(part, forward=field.forward.astype(np.float16), backward=field.backward.astype(np.float16))

    _write_atomically(path, write)
    logger.debug("flow cached at %s", path)


# --------------------------------------------------------------------------------------------
# Utilities


# Colour wheel of Baker et al., "A Database and Evaluation Methodology for Optical Flow" (IJCV
# 2011): hue segments red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta,
# magenta-red with these numbers of steps, chosen so perceptually similar hues get similar arcs.
_WHEEL_SEGMENTS = (
    # (steps, RGB channel held at full, channel ramped, whether the ramp rises)
    (15, 0, 1, True),  # red -> yellow
    (6, 1, 0, False),  # yellow -> green
    (4, 1, 2, True),  # green -> cyan
    (11, 2, 1, False),  # cyan -> blue
    (13, 2, 0, True),  # blue -> magenta
    (6, 0, 2, False),  # magenta -> red
)


def _colour_wheel() -> np.ndarray:
    """``(55, 3)`` float RGB in [0, 1] around the wheel, starting at red."""
    segments = []
    for steps, full, ramped, rises in _WHEEL_SEGMENTS:
        ramp = np.arange(steps) / steps
        segment = np.zeros((steps, 3))
        segment[:, full] = 1.0
        segment[:, ramped] = ramp if rises else 1.0 - ramp
        segments.append(segment)
    return np.concatenate(segments)


def video_flow_scale(flow: np.ndarray) -> float:
    """The magnitude ``flow_to_rgb`` normalises by: the 99th percentile over all frames.

    Pass it to ``flow_to_rgb(..., max_magnitude=)`` for the forward and the backward flow so both
    use one colour scale. Large videos are subsampled (every k-th vector, at most ~4M) so this
    stays cheap.

    Args:
        flow: ``(N, H, W, 2)`` in pixels.

    Returns:
        A magnitude in pixels, at least 1e-6.
    """
    vectors = np.asarray(flow).reshape(-1, 2)
    if vectors.shape[0] == 0:
        return 1e-6
    step = max(1, vectors.shape[0] // 4_000_000)
    sample = vectors[::step].astype(np.float32)
    magnitudes = np.hypot(sample[:, 0], sample[:, 1])
    return max(float(np.percentile(magnitudes, 99)), 1e-6)


def flow_to_rgb(flow: np.ndarray, *, max_magnitude: float | None = None) -> np.ndarray:
    """Render flow with the Middlebury colour wheel: hue = direction, saturation = magnitude.

    One normaliser serves the whole video, so a frame with less motion looks paler; zero motion
    is white and magnitudes at or above ``max_magnitude`` get the wheel's full colour.

    Args:
        flow: ``(N, H, W, 2)`` in pixels, channel 0 = x, 1 = y.
        max_magnitude: motion in pixels shown fully saturated; default ``video_flow_scale(flow)``.

    Returns:
        ``(N, H, W, 3)`` uint8 RGB.
    """
    flow = np.asarray(flow)
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (N, H, W, 2); got {flow.shape}")
    scale = video_flow_scale(flow) if max_magnitude is None else max(float(max_magnitude), 1e-6)
    wheel = _colour_wheel().astype(np.float32)
    rgb = np.empty(flow.shape[:-1] + (3,), dtype=np.uint8)
    # Frame by frame: the float intermediates cost ~50 bytes a pixel, too much for a whole video.
    for index, field in enumerate(flow):
        rgb[index] = _render_flow_frame(field.astype(np.float32, copy=False), wheel, scale)
    return rgb


def _render_flow_frame(flow: np.ndarray, wheel: np.ndarray, scale: float) -> np.ndarray:
    """``(H, W, 2)`` float32 flow -> ``(H, W, 3)`` uint8 through the ``(K, 3)`` colour ``wheel``."""
    num_colours = wheel.shape[0]
    flow_x, flow_y = flow[..., 0], flow[..., 1]
    radius = np.clip(np.hypot(flow_x, flow_y) / scale, 0.0, 1.0)
    # Direction in half turns, in [-1, 1], oriented so that motion to the right is red as in
    # Baker et al.; then a fractional index into the wheel.
    angle = np.arctan2(-flow_y, -flow_x) / np.pi
    position = (angle + 1.0) / 2.0 * (num_colours - 1)
    lower = np.floor(position).astype(np.int64)
    upper = (lower + 1) % num_colours
    blend = (position - lower)[..., None]
    colour = (1.0 - blend) * wheel[lower] + blend * wheel[upper]
    colour = 1.0 - radius[..., None] * (1.0 - colour)
    return np.round(colour * 255.0).astype(np.uint8)
