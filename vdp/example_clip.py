"""Synthetic test videos with known ground truth: a textured object moving over a panning scene.

The background pans slowly in one direction (camera motion) and the object, about 10-20 % of the
frame with a texture of its own, moves in a clearly different direction with a slight rotation,
never leaving the frame. Both carry texture at several scales so optical flow can track them.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

# Motion in pixels per frame. Background slow (a camera pan), object faster and at an angle of
# at least 90 degrees to it, so that the two motions are easy to tell apart.
_BACKGROUND_SPEED = 1.0
_OBJECT_SPEED = 2.5
_OBJECT_TURN_DEGREES = (100.0, 160.0)
_OBJECT_TOTAL_ROTATION_DEGREES = 20.0
# Semi-axes of the object's ellipse as fractions of the frame's width and height:
# pi * 0.2 * 0.22 = 0.14 of the frame.
_OBJECT_SEMI_AXES = (0.20, 0.22)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """``(H, W, 3)`` float32 noise in about [-1, 1], smooth over ``cell`` pixels."""
    coarse = rng.standard_normal((height // cell + 3, width // cell + 3, 3)).astype(np.float32)
    large = cv2.resize(
        coarse, ((width // cell + 3) * cell, (height // cell + 3) * cell),
        interpolation=cv2.INTER_CUBIC,
    )  # fmt: skip
    return large[cell : cell + height, cell : cell + width]


def _background_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 muted, earthy texture: noise at three scales, blurred colour blobs and
    faint stripes."""
    texture = np.empty((height, width, 3), dtype=np.float32)
    texture[:] = (95.0, 120.0, 105.0)  # grey-green base
    for cell, amplitude in ((32, 28.0), (8, 18.0), (2, 10.0)):
        texture += amplitude * _smooth_noise(rng, height, width, cell)
    blobs = np.zeros_like(texture)
    num_blobs = max(6, height * width // 1500)
    for _ in range(num_blobs):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(rng.integers(3, max(4, min(height, width) // 8)))
        colour = tuple(float(c) for c in rng.uniform(-45.0, 45.0, size=3))
        cv2.circle(blobs, center, radius, colour, thickness=-1, lineType=cv2.LINE_AA)
    texture += cv2.GaussianBlur(blobs, (0, 0), sigmaX=1.5)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0.0, math.pi)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * (2 * math.pi / 14.0))
    texture += 12.0 * stripes[:, :, None]
    return np.clip(texture, 0, 255).round().astype(np.uint8)


def _object_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8 saturated warm texture: a checkerboard of two reds/oranges with
    fine noise, unlike the background in both colour and pattern."""
    yy, xx = np.mgrid[0:size, 0:size]
    checker = ((xx // 6 + yy // 6) % 2).astype(np.float32)[:, :, None]
    colour_a = np.array((215.0, 60.0, 40.0), dtype=np.float32)
    colour_b = np.array((245.0, 170.0, 50.0), dtype=np.float32)
    texture = colour_a + checker * (colour_b - colour_a)
    texture += 14.0 * _smooth_noise(rng, size, size, 3)
    return np.clip(texture, 0, 255).round().astype(np.uint8)


def make_moving_object_video(
    *, num_frames: int = 24, height: int = 96, width: int = 128, seed: int = 0,
    pause: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Make a video of a textured ellipse moving over a slowly panning textured background.

    Args:
        num_frames: number of frames ``T`` (at least 1).
        height: frame height ``H`` (at least 16).
        width: frame width ``W`` (at least 16).
        seed: random seed; the same seed gives the same video.
        pause: ``(first, stop)``: in frames ``first .. stop - 1`` the object stops on the ground (it
            moves with the background, so nothing in those frames tells it from the background).

    Returns:
        ``frames``: ``(T, H, W, 3)`` uint8 RGB; ``masks``: ``(T, H, W)`` bool, True on the object.
        The background moves about 1 px/frame, the object about 2.5 px/frame (slower on small
        frames so that it stays inside) in a direction 100-160 degrees away, turning slowly.
    """
    if num_frames < 1 or height < 16 or width < 16:
        raise ValueError(
            "Expected num_frames >= 1 and height, width >= 16; got "
            f"num_frames={num_frames}, height={height}, width={width}."
        )
    rng = np.random.default_rng(seed)
    first, stop = pause if pause is not None else (num_frames, num_frames)
    if not 0 <= first <= stop <= num_frames:
        raise ValueError(f"Expected 0 <= pause[0] <= pause[1] <= num_frames; got pause={pause}.")
    moving_frames = num_frames - (stop - first)

    def object_time(index: int) -> int:
        """Frames the object has moved for by frame `index`."""
        return index if index < first else first if index < stop else index - (stop - first)

    background_angle = rng.uniform(0.0, 2 * math.pi)
    background_velocity = _BACKGROUND_SPEED * np.array(
        (math.cos(background_angle), math.sin(background_angle))
    )
    margin = math.ceil(_BACKGROUND_SPEED * num_frames) + 4
    canvas = _background_texture(rng, height + 2 * margin, width + 2 * margin)

    semi_axis_x = _OBJECT_SEMI_AXES[0] * width
    semi_axis_y = _OBJECT_SEMI_AXES[1] * height
    radius = max(semi_axis_x, semi_axis_y)  # bounds the ellipse at any rotation
    patch_size = 2 * math.ceil(radius) + 5
    patch_center = (patch_size - 1) / 2.0
    patch = _object_texture(rng, patch_size)
    shape = np.zeros((patch_size, patch_size), dtype=np.float32)
    # Draw the ellipse at 16x sub-pixel precision so its edge is smooth.
    cv2.ellipse(
        shape, (round(patch_center * 16), round(patch_center * 16)),
        (round(semi_axis_x * 16), round(semi_axis_y * 16)), 0.0, 0.0, 360.0, 1.0,
        thickness=-1, lineType=cv2.LINE_AA, shift=4,
    )  # fmt: skip

    turn = math.radians(rng.uniform(*_OBJECT_TURN_DEGREES)) * rng.choice((-1.0, 1.0))
    object_angle = background_angle + turn
    direction = np.array((math.cos(object_angle), math.sin(object_angle)))
    # The centre's path must stay inside [radius, W - radius] x [radius, H - radius].
    room = np.array((width - 2 * radius - 2, height - 2 * radius - 2))
    along = np.abs(direction)
    longest = min(room[axis] / along[axis] for axis in range(2) if along[axis] > 1e-9)
    path_length = min(_OBJECT_SPEED * max(moving_frames - 1, 1), max(longest, 0.0))
    displacement = direction * path_length
    slack = np.maximum(room - np.abs(displacement), 0.0)
    start_center = (
        np.array((width, height)) / 2.0 - displacement / 2.0 + rng.uniform(-0.5, 0.5, 2) * slack
    )
    rotation_sign = rng.choice((-1.0, 1.0))

    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    masks = np.empty((num_frames, height, width), dtype=bool)
    for index in range(num_frames):
        progress = object_time(index) / max(moving_frames - 1, 1)
        # Background: crop of the canvas, shifted with sub-pixel accuracy.
        offset = margin - background_velocity * index
        pan = np.array(((1.0, 0.0, offset[0]), (0.0, 1.0, offset[1])))
        background = cv2.warpAffine(
            canvas, pan, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT101,
        )  # fmt: skip
        # Object: rotate the patch about its centre and move it to this frame's position.
        center = start_center + displacement * progress
        if first <= index < stop:  # at rest on the ground: carried along with the background
            center = center + background_velocity * (index - first + 1)
        elif index >= stop:
            center = center + background_velocity * (stop - first)
        angle = rotation_sign * _OBJECT_TOTAL_ROTATION_DEGREES * progress
        placement = cv2.getRotationMatrix2D((patch_center, patch_center), angle, 1.0)
        placement[:, 2] += center - patch_center
        size = (width, height)
        alpha = cv2.warpAffine(shape, placement, size, flags=cv2.INTER_LINEAR)
        texture = cv2.warpAffine(
            patch, placement, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        alpha3 = alpha[:, :, None]
        composite = texture * alpha3 + background * (1.0 - alpha3)
        frames[index] = np.clip(composite, 0, 255).round().astype(np.uint8)
        masks[index] = alpha >= 0.5
    return frames, masks


def make_transparent_blend(
    *, num_frames: int = 16, height: int = 64, width: int = 96, seed: int = 0, coefficient: float = 0.5,
    velocities: tuple[tuple[float, float], tuple[float, float]] = ((2.5, 0.5), (-2.0, 1.5)),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A blend of two textured layers that pan in different directions (a reflection over a scene).

    Args:
        num_frames, height, width: size of the clip (each side at least 16).
        seed: random seed for the two textures.
        coefficient: a in ``blend = a * layer1 + (1 - a) * layer2``.
        velocities: each layer's (dx, dy) in pixels per frame.

    Returns:
        ``(blend, layer1, layer2)``, each ``(T, H, W, 3)`` uint8; the blend is rounded from the
        uint8 layers.
    """
    rng = np.random.default_rng(seed)
    layers = []
    for velocity in velocities:
        velocity = np.asarray(velocity, dtype=np.float64)
        margin = math.ceil(np.abs(velocity).max() * num_frames) + 4
        canvas = _background_texture(rng, height + 2 * margin, width + 2 * margin)
        frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
        for index in range(num_frames):
            offset = margin + velocity * index
            pan = np.array(((1.0, 0.0, offset[0]), (0.0, 1.0, offset[1])))
            frames[index] = cv2.warpAffine(canvas, pan, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                           borderMode=cv2.BORDER_REFLECT101)
        layers.append(frames)
    blend = coefficient * layers[0].astype(np.float32) + (1 - coefficient) * layers[1].astype(np.float32)
    return np.clip(np.round(blend), 0, 255).astype(np.uint8), layers[0], layers[1]


def make_example_video(
    path: str | os.PathLike[str],
    *,
    num_frames: int = 48,
    height: int = 240,
    width: int = 320,
    fps: Fraction = Fraction(24),
    seed: int = 0,
) -> Path:
    """Write :func:`make_moving_object_video` as an H.264 mp4 (well under 2 MB at the defaults).

    Args:
        path: destination ``.mp4``.
        num_frames, height, width, seed: see :func:`make_moving_object_video`.
        fps: frame rate of the file.

    Returns:
        The path written.
    """
    from vdp.video import write_mp4

    frames, _ = make_moving_object_video(
        num_frames=num_frames, height=height, width=width, seed=seed
    )
    path = Path(path)
    write_mp4(frames, path, fps=fps)
    return path

