"""A clean background video: the scene behind an object, from the frames where it is visible.

Where a mask hides the scene in frame t, the scene is usually visible in other frames: the object
has moved, or the camera has. This module carries those pixels into frame t along the motion of
the background (docs/method.md §2.8):

1. **Background motion.** Optical flow between consecutive frames at a working size, with a
   homography fitted (RANSAC) to the flow *outside* the masks: the camera's motion, which the
   object does not disturb. Chained, the homographies map any frame onto any other.
2. **Propagation.** For each hole pixel of frame t, the nearest earlier and the nearest later
   frame in which that point of the scene is visible (inside the frame and outside that frame's
   mask) give a candidate; the two are mixed by their distance in time, so the fill changes
   smoothly as the source frames change.
3. **Seams.** The fill is also computed on a thin ring around the hole, where the frame itself is
   known; their difference there (exposure drift, small misalignment) is spread over the hole by a
   normalised Gaussian filter and added to the fill.
4. **Never visible.** What no frame shows is filled spatially (OpenCV's Telea inpainting) in one
   key frame, the frame with most of it; that key frame then serves as a source like the others,
   so the invented content is the same in every frame (no flicker). Repeated until nothing is left.

Everything runs at full resolution on uint8 frames, one frame at a time (the frames may be a
`vdp.video.FrameStore`), so nothing of the object comes back from a lift.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vdp.cues.motion import RANSAC_THRESHOLD, SAMPLE_STEP

logger = logging.getLogger(__name__)

#: Points (on the fitting grid) two frames must share outside the holes for a direct fit.
MIN_DIRECT_POINTS = 400


@dataclass(frozen=True)
class CompletionSettings:
    """How the clean background is made."""

    max_side: int = 480
    """Longer side of the frames the background motion is estimated on."""
    temporal_range: int = 60
    """Frames on each side searched for a view of a hidden pixel."""
    ring: int = 6
    """Width in pixels of the ring around a hole on which seams are measured."""
    seam_sigma: float = 12.0
    """Spread (pixels) of the seam correction into the hole."""
    inpaint_radius: int = 5
    """Neighbourhood of the spatial fill (OpenCV Telea) for what no frame shows."""
    max_key_frames: int = 8
    """Key frames filled spatially before the rest of the never-visible pixels are filled frame by frame."""
    direct: bool = True
    """Correct the chained camera motion between two frames by a fit between those two frames."""
    temporal_filter: int = 5
    """Frames on each side whose fills are carried into a frame's and averaged (0: off)."""
    filter_sigma: float = 30.0
    """Grey levels of disagreement at which a neighbour's fill counts e^-1 as much (the filter's edge stop)."""
    views: int = 4
    """Views of a hidden pixel taken on each side (the nearest ones), mixed by their distance in time."""


# --------------------------------------------------------------------------------------------
# Background motion


def _fit_homography(flow: np.ndarray, valid: np.ndarray, *, min_points: int = 16) -> np.ndarray | None:
    """Homography a -> b fitted to the flow a -> b at the `valid` pixels (None when too few)."""
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[SAMPLE_STEP // 2: height: SAMPLE_STEP, SAMPLE_STEP // 2: width: SAMPLE_STEP]
    keep = valid[ys, xs]
    ys, xs = ys[keep], xs[keep]
    if ys.size < min_points:
        return None
    source = np.stack([xs, ys], axis=1).astype(np.float32)
    target = source + flow[ys, xs]
    threshold = RANSAC_THRESHOLD * float(np.hypot(height, width))
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, threshold, maxIters=1000, confidence=0.995)
    if homography is None or not np.all(np.isfinite(homography)):
        return None
    return homography


def background_homographies(
    frames: Sequence[np.ndarray],
    holes: np.ndarray,
    *,
    max_side: int = 480,
) -> np.ndarray:
    """Camera motion between consecutive frames, fitted outside the holes.

    Args:
        frames: T frames, each (H, W, 3) uint8 RGB.
        holes: (T, H, W) bool, True where the scene is hidden.
        max_side: the flow is estimated with the longer side at most this.

    Returns:
        (T - 1, 3, 3) float64: homography i maps full-resolution pixel coordinates of frame i to
        frame i + 1 (the identity where a fit fails).
    """
    num_frames = len(frames)
    height, width = holes.shape[1:]
    scale = min(1.0, max_side / max(height, width))
    small = (max(8, round(width * scale)), max(8, round(height * scale)))
    sx, sy = small[0] / width, small[1] / height
    to_small = np.diag([sx, sy, 1.0])
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey_previous = None
    homographies = np.tile(np.eye(3), (max(num_frames - 1, 0), 1, 1))
    for t in range(num_frames):
        grey = cv2.cvtColor(cv2.resize(np.asarray(frames[t]), small, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        if grey_previous is not None:
            flow = dis.calc(grey_previous, grey, None)
            free = cv2.resize((~(holes[t - 1] | holes[t])).astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0
            fitted = _fit_homography(flow, free)
            if fitted is None:
                logger.warning("frames %d-%d: too little visible background to fit the camera motion; "
                               "assuming none", t - 1, t)
            else:
                homographies[t - 1] = np.linalg.inv(to_small) @ fitted @ to_small
        grey_previous = grey
    return homographies


def chain(homographies: np.ndarray) -> np.ndarray:
    """(T, 3, 3): frame 0 -> frame t, for every t, from the consecutive homographies."""
    chained = [np.eye(3)]
    for step in homographies:
        product = step @ chained[-1]
        chained.append(product / product[2, 2])
    return np.stack(chained)


# --------------------------------------------------------------------------------------------
# Completion


class BackgroundCompleter:
    """The clean background of a video, one frame at a time (`completer[t]`).

    Args:
        frames: T frames (H, W, 3) uint8 RGB (an array or a `FrameStore`; read one at a time).
        holes: (T, H, W) bool, True where the background is hidden (the object's mask, dilated).
        settings: see `CompletionSettings`.
        homographies: (T - 1, 3, 3) camera motion frame i -> i + 1 at full resolution, when the
            caller has it; estimated from the frames otherwise.
    """

    def __init__(self, frames: Sequence[np.ndarray], holes: np.ndarray, settings: CompletionSettings = CompletionSettings(),
                 *, homographies: np.ndarray | None = None) -> None:
        self.frames = frames
        self.holes = np.asarray(holes, dtype=bool)
        if self.holes.ndim != 3 or len(frames) != self.holes.shape[0]:
            raise ValueError(f"holes must be (T, H, W) for {len(frames)} frames; got {self.holes.shape}")
        self.settings = settings
        self.num_frames, self.height, self.width = self.holes.shape
        if homographies is None:
            homographies = background_homographies(frames, self.holes, max_side=settings.max_side)
        self.to_frame = chain(homographies)  # frame 0 -> frame t
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._raw_cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the writer asks for frames from several threads
        self._pair_cache: dict[tuple[int, int], np.ndarray] = {}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # Key frames whose never-visible pixels were filled spatially: frame -> (filled frame, filled mask).
        self.keys: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.stats = {"key_frames": 0, "never_visible_pixels": 0, "hole_pixels": 0}
        self._fill_key_frames()

    # -- frames and warps --------------------------------------------------------------------

    def _frame(self, t: int) -> np.ndarray:
        if t in self._cache:
            self._cache.move_to_end(t)
            return self._cache[t]
        frame = np.asarray(self.frames[t])
        self._cache[t] = frame
        if len(self._cache) > 8:
            self._cache.popitem(last=False)
        return frame

    def _target_to_source(self, target: int, source: int) -> np.ndarray:
        """Homography from pixel coordinates of frame `target` to those of frame `source`.

        The chained camera motion, corrected by a homography fitted directly between the two
        frames (outside both holes) once the chain has brought them close: chaining accumulates
        the small error of every link."""
        key = (target, source)
        if key in self._pair_cache:
            return self._pair_cache[key]
        chained = self.to_frame[source] @ np.linalg.inv(self.to_frame[target])
        if self.settings.direct and abs(target - source) > 1:
            chained = self._direct(target, source, chained)
        self._pair_cache[key] = chained
        return chained

    def _direct(self, target: int, source: int, chained: np.ndarray) -> np.ndarray:
        scale = min(1.0, self.settings.max_side / max(self.height, self.width))
        size = (max(8, round(self.width * scale)), max(8, round(self.height * scale)))
        to_small = np.diag([size[0] / self.width, size[1] / self.height, 1.0])
        small_chain = to_small @ chained @ np.linalg.inv(to_small)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        grey_t = cv2.cvtColor(cv2.resize(self._frame(target), size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        grey_s = cv2.cvtColor(cv2.resize(self._frame(source), size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        warped = cv2.warpPerspective(grey_s, small_chain, size, flags=flags)
        inside = cv2.warpPerspective(np.ones_like(grey_s), small_chain, size, flags=flags | cv2.INTER_NEAREST) > 0
        hole_t = cv2.resize(self.holes[target].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        hole_s = cv2.resize(self.holes[source].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        hole_s = cv2.warpPerspective(hole_s, small_chain, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
        flow = self._dis.calc(grey_t, warped, None)
        valid = cv2.erode((inside & ~hole_t & ~hole_s).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        correction = _fit_homography(flow, valid, min_points=MIN_DIRECT_POINTS)
        if correction is None:
            return chained
        return chained @ np.linalg.inv(to_small) @ correction @ to_small

    def _warp(self, image: np.ndarray, target: int, source: int, *, nearest: bool = False) -> np.ndarray:
        """`image` (in frame `source`'s coordinates) seen from frame `target`; zero outside it."""
        flags = (cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP
        return cv2.warpPerspective(image, self._target_to_source(target, source), (self.width, self.height),
                                   flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def _visible(self, source: int, extra: np.ndarray | None = None) -> np.ndarray:
        """uint8 (H, W): 1 where frame `source` shows the background (1 px margin at holes)."""
        visible = ~self.holes[source]
        if extra is not None:
            visible = visible | extra
        return visible.astype(np.uint8)

    # -- propagation -------------------------------------------------------------------------

    def _propagate(self, t: int, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fill `region` of frame t from the nearest frames (and key frames) on each side.

        Returns:
            (H, W, 3) float32 fill (valid where the second output is True), (H, W) bool filled.
        """
        settings = self.settings
        total = np.zeros((self.height, self.width), np.float32)
        value = np.zeros((self.height, self.width, 3), np.float32)
        for direction in (-1, 1):
            views = np.zeros((self.height, self.width), np.uint8)
            for offset in range(1, settings.temporal_range + 1):
                source = t + direction * offset
                todo = region & (views < settings.views)
                if not 0 <= source < self.num_frames or not todo.any():
                    break
                image, visible = self._source(source)
                take = todo & (self._warp(visible, t, source, nearest=True) > 0)
                if take.any():
                    warped = self._warp(image, t, source).astype(np.float32)
                    weight = 1.0 / offset
                    value[take] += weight * warped[take]
                    total[take] += weight
                    views[take] += 1
        filled = total > 0
        return value / np.maximum(total, 1e-6)[..., None], filled

    def _source(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame `source` as a source of background: its pixels and where they are background
        (a key frame also lends its spatially filled pixels)."""
        if source in self.keys:
            filled, extra = self.keys[source]
            return filled, self._visible(source, extra)
        return self._frame(source), self._visible(source)

    def _complete(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame t with its hole filled from other frames, and the pixels left unfilled."""
        frame = self._frame(t)
        hole = self.holes[t]
        if not hole.any():
            return frame.copy(), np.zeros_like(hole)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.settings.ring + 1,) * 2)
        grown = cv2.dilate(hole.astype(np.uint8), kernel) > 0
        ring = grown & ~hole
        fill, filled = self._propagate(t, grown)
        result = frame.astype(np.float32)
        # Seam correction: the frame minus the fill on the ring, spread into the hole.
        known_ring = ring & filled
        if known_ring.any() and self.settings.seam_sigma > 0:
            offset = np.where(known_ring[..., None], result - fill, 0.0).astype(np.float32)
            sigma = self.settings.seam_sigma
            weight = cv2.GaussianBlur(known_ring.astype(np.float32), (0, 0), sigma)
            spread = cv2.GaussianBlur(offset, (0, 0), sigma) / np.maximum(weight, 1e-4)[..., None]
            fill = fill + np.where((weight > 1e-3)[..., None], spread, 0.0)
        inside = hole & filled
        result[inside] = fill[inside]
        return np.clip(result + 0.5, 0, 255).astype(np.uint8), hole & ~filled

    def _unseen(self, t: int) -> np.ndarray:
        """(H, W) bool: the hole pixels of frame t that no source in range shows."""
        left = self.holes[t].copy()
        for offset in range(1, self.settings.temporal_range + 1):
            for source in (t - offset, t + offset):
                if 0 <= source < self.num_frames and left.any():
                    _, visible = self._source(source)
                    left &= ~(self._warp(visible, t, source, nearest=True) > 0)
        return left

    def _fill_key_frames(self) -> None:
        """Fill spatially, in a few key frames, what no frame shows; later frames borrow it."""
        missing = {t: left for t in range(self.num_frames) if self.holes[t].any() and (left := self._unseen(t)).any()}
        self.stats["never_visible_pixels"] = int(sum(left.sum() for left in missing.values()))
        for _ in range(self.settings.max_key_frames):
            if not missing:
                break
            key = max(missing, key=lambda t: int(missing[t].sum()))
            completed, left = self._complete(key)
            filled = cv2.inpaint(completed, left.astype(np.uint8), self.settings.inpaint_radius, cv2.INPAINT_TELEA)
            self.keys[key] = (filled, left)
            self.stats["key_frames"] += 1
            missing.pop(key)
            # Frames still missing pixels once the new key frame lends its filled pixels.
            for t in list(missing):
                if not (left_t := self._unseen(t)).any():
                    missing.pop(t)
                else:
                    missing[t] = left_t

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8: frame t with the background where the hole was."""
        with self._lock:
            return self._clean(t)

    def _raw(self, t: int) -> np.ndarray:
        """Frame t completed, before the temporal filter (the last few kept for the filter)."""
        if t in self._raw_cache:
            self._raw_cache.move_to_end(t)
            return self._raw_cache[t]
        if t in self.keys:
            completed = self.keys[t][0]
        else:
            completed, left = self._complete(t)
            if left.any():
                completed = cv2.inpaint(completed, left.astype(np.uint8), self.settings.inpaint_radius,
                                        cv2.INPAINT_TELEA)
        self._raw_cache[t] = completed
        if len(self._raw_cache) > 2 * self.settings.temporal_filter + 2:
            self._raw_cache.popitem(last=False)
        return completed

    def _clean(self, t: int) -> np.ndarray:
        """The completed frame t, its fill averaged with the neighbours' fills carried into it,
        each weighted by how well it agrees (a temporal bilateral filter: flicker averages out,
        real change and misaligned views do not)."""
        raw = self._raw(t)
        hole = self.holes[t]
        self.stats["hole_pixels"] += int(hole.sum())
        radius, sigma = self.settings.temporal_filter, self.settings.filter_sigma
        if not hole.any() or radius == 0:
            return raw.copy()
        total = raw.astype(np.float32)
        weights = np.ones(hole.shape, np.float32)
        inside = np.ones(hole.shape, np.uint8)
        for source in range(max(0, t - radius), min(self.num_frames, t + radius + 1)):
            if source == t:
                continue
            warped = self._warp(self._raw(source), t, source).astype(np.float32)
            seen = self._warp(inside, t, source, nearest=True).astype(np.float32)
            difference = cv2.GaussianBlur(np.abs(warped - raw).mean(axis=-1), (0, 0), 3.0)
            weight = np.exp(-((difference / sigma) ** 2)) * seen
            total += warped * weight[..., None]
            weights += weight
        filtered = np.clip(total / weights[..., None] + 0.5, 0, 255).astype(np.uint8)
        out = raw.copy()
        out[hole] = filtered[hole]
        return out


def dilate_masks(masks: np.ndarray, pixels: int) -> np.ndarray:
    """(T, H, W) bool masks grown by `pixels` (a disc), frame by frame."""
    masks = np.asarray(masks, dtype=bool)
    if pixels <= 0:
        return masks.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


def complete_background(frames: Sequence[np.ndarray], masks: np.ndarray, *, dilate: int = 0,
                        settings: CompletionSettings = CompletionSettings(),
                        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The whole clean background as one (T, H, W, 3) uint8 array (short videos; see
    `BackgroundCompleter` to stream a long one)."""
    completer = BackgroundCompleter(frames, dilate_masks(masks, dilate), settings)
    out = np.empty((len(frames), *np.asarray(frames[0]).shape), np.uint8)
    for t in range(len(frames)):
        out[t] = completer[t]
        if progress is not None:
            progress(t + 1, len(frames))
    return out
