"""Awkward input files made on the spot: ffmpeg's test pattern in any format, damaged copies.

Used by the robustness tests and by the benchmark scripts that exercise bad input
(`error_messages.py`, `memory_long_video.py`); not part of the installed package. Tests import it
as `benchmarks.clips` (pytest puts the repository root on the path, see pyproject.toml); the
scripts, run as `python benchmarks/NAME.py`, import it as their sibling `clips`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg


def write_test_pattern(
    path: str | os.PathLike[str], *output_args: str, size: tuple[int, int] = (64, 48), rate: int = 24
) -> Path:
    """Write ffmpeg's moving ``testsrc2`` pattern to ``path``.

    Args:
        path: destination; its extension picks the container.
        output_args: ffmpeg output options, e.g. ``"-frames:v", "3", "-pix_fmt", "gray"``.
        size: (width, height) of the pattern; rate: its frame rate.

    Returns:
        The path written.
    """
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={rate}", *output_args, str(path)],
        check=True,
    )  # fmt: skip
    return Path(path)


def damage_video(source: str | os.PathLike[str], destination: str | os.PathLike[str], how: str) -> Path:
    """Write a damaged copy of a video file: ``'truncated'`` keeps its first half, ``'scrambled'``
    overwrites 2000 bytes a third of the way in with garbage (deterministic)."""
    data = bytearray(Path(source).read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "scrambled":
        middle = len(data) // 3
        data[middle : middle + 2000] = bytes((7 * b + 13) % 256 for b in data[middle : middle + 2000])
    else:
        raise ValueError(f"how must be 'truncated' or 'scrambled'; got {how!r}")
    Path(destination).write_bytes(bytes(data))
    return Path(destination)


def write_pulsing_blend_clip(
    path: str | os.PathLike[str],
    *,
    num_frames: int = 48,
    size: tuple[int, int] = (128, 96),
    fps: int = 24,
    seed: int = 0,
    sounding_layer: int = 1,
    audio_shift_frames: int = 0,
) -> dict:
    """Write a 50/50 blend of two layers whose soundtrack clicks in time with one of them.

    The sounding layer is a textured background panning slowly, with a textured disc that jerks to
    a new place and size exactly on each click frame (6-8 of them, at irregular seeded times, at
    least 3 frames apart) and holds still in between. The other layer is another texture drifting
    steadily in another direction, with a disc moving at constant velocity: nothing in it keeps
    time with the clicks. The soundtrack is silence with a 6 ms decaying noise burst starting
    exactly at each click frame's time (``frame / fps``), encoded as AAC next to H.264 yuv420p
    video, in one ffmpeg run. Deterministic for a given seed (up to the encoders).

    Args:
        path: destination ``.mp4``.
        num_frames: frames ``T`` (at least 24); size: (width, height), both even; fps: frame rate.
        seed: random seed for textures, motions and click times.
        sounding_layer: 1 or 2, which layer carries the pulsing (sounding) content.
        audio_shift_frames: start every click this many frames late (negative: early) in the
            audio, to mimic an audio/video offset; the returned click frames are the picture's.

    Returns:
        ``{"path", "layers": [layer1, layer2] ((T, H, W, 3) uint8), "blend" ((T, H, W, 3) uint8),
        "click_frames" (sorted list of int), "sounding_layer" (1 or 2), "fps", "sample_rate"}``.
    """
    import tempfile
    import wave

    import cv2
    import numpy as np

    from vdp.example_clip import _background_texture, _object_texture

    width, height = size
    if num_frames < 24 or width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"Expected num_frames >= 24 and even sizes >= 32; got {num_frames}, {size}.")
    if sounding_layer not in (1, 2):
        raise ValueError(f"sounding_layer must be 1 or 2; got {sounding_layer!r}")
    rng = np.random.default_rng(seed)

    # Click frames: irregular, at least 3 apart, away from both ends.
    num_clicks = min(int(rng.integers(6, 9)), (num_frames - 5) // 4)  # sparse enough to draw
    while True:
        clicks = np.sort(rng.choice(np.arange(3, num_frames - 2), size=num_clicks, replace=False))
        if np.diff(clicks).min() >= 3:
            break
    click_frames = [int(c) for c in clicks]

    def panning(texture_seed: int, velocity: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) float32 crops of a large texture, shifted by ``velocity`` px per frame."""
        margin = int(np.ceil(np.abs(velocity).max() * num_frames)) + 4
        canvas = _background_texture(np.random.default_rng(texture_seed), height + 2 * margin,
                                     width + 2 * margin)
        frames = np.empty((num_frames, height, width, 3), np.float32)
        for index in range(num_frames):
            shift = margin - velocity * index
            matrix = np.array(((1.0, 0.0, shift[0]), (0.0, 1.0, shift[1])))
            frames[index] = cv2.warpAffine(canvas, matrix, (width, height),
                                           flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                                           borderMode=cv2.BORDER_REFLECT101)
        return frames

    def paste_disc(frame: np.ndarray, patch: np.ndarray, center: np.ndarray, radius: float) -> None:
        """Draw a textured disc of ``radius`` at ``center`` (x, y) into ``frame``, in place."""
        matrix = np.array(((1.0, 0.0, center[0] - patch.shape[1] / 2),
                           (0.0, 1.0, center[1] - patch.shape[0] / 2)))
        texture = cv2.warpAffine(patch, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        distance = np.hypot(xx - center[0], yy - center[1])
        alpha = np.clip(radius + 0.5 - distance, 0.0, 1.0)[:, :, None]
        frame *= 1.0 - alpha
        frame += alpha * texture

    angle = rng.uniform(0.0, 2 * np.pi)
    short = min(width, height)
    # The pulsing layer: slow pan, a disc that holds still and jerks on every click.
    pulsing = panning(seed * 2 + 11, 0.4 * np.array((np.cos(angle), np.sin(angle))))
    patch = _object_texture(np.random.default_rng(seed + 5), 2 * short).astype(np.float32)
    radius, center = 0.18 * short, np.array((width / 2, height / 2))
    for index in range(num_frames):
        if index in click_frames:
            jump = rng.uniform(0.12, 0.2) * short
            direction = rng.uniform(0.0, 2 * np.pi)
            center = center + jump * np.array((np.cos(direction), np.sin(direction)))
            center = np.clip(center, (0.3 * width, 0.3 * height), (0.7 * width, 0.7 * height))
            radius = (0.24 if radius < 0.2 * short else 0.14) * short
        paste_disc(pulsing[index], patch, center, radius)
    # The silent layer: a faster steady drift another way, a disc moving at constant velocity.
    other_angle = angle + rng.uniform(0.6, 0.9) * np.pi
    steady = panning(seed * 2 + 12, 1.2 * np.array((np.cos(other_angle), np.sin(other_angle))))
    other_patch = _object_texture(np.random.default_rng(seed + 6), 2 * short)[:, :, ::-1]
    start = np.array((0.3 * width, 0.35 * height))
    velocity = (np.array((0.4 * width, 0.3 * height))) / max(num_frames - 1, 1)
    for index in range(num_frames):
        paste_disc(steady[index], other_patch.astype(np.float32), start + velocity * index, 0.16 * short)
    pulsing_layer = np.clip(pulsing, 0, 255).round().astype(np.uint8)
    steady_layer = np.clip(steady, 0, 255).round().astype(np.uint8)
    layers = [pulsing_layer, steady_layer] if sounding_layer == 1 else [steady_layer, pulsing_layer]
    blend = ((layers[0].astype(np.uint16) + layers[1]) // 2).astype(np.uint8)

    # Soundtrack: silence with a short decaying noise burst at each click frame's time.
    sample_rate = 48000
    audio = np.zeros(round(num_frames / fps * sample_rate), np.float32)
    burst_length = round(0.006 * sample_rate)
    burst = rng.uniform(-1.0, 1.0, burst_length) * np.exp(-np.arange(burst_length) / (0.002 * sample_rate))
    for frame in click_frames:
        first = round((frame + audio_shift_frames) / fps * sample_rate)
        if 0 <= first < audio.size:
            piece = burst[: audio.size - first]
            audio[first : first + piece.size] += 0.8 * piece
    pcm = np.clip(audio * 32767, -32768, 32767).astype("<i2")

    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        wav_path = Path(folder) / "clicks.wav"
        with wave.open(str(wav_path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(sample_rate)
            wav.writeframes(pcm.tobytes())
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
             "-i", "-", "-i", str(wav_path), "-map", "0:v:0", "-map", "1:a:0",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
             "-c:a", "aac", "-b:a", "128k", str(destination)],
            input=np.ascontiguousarray(blend).tobytes(), check=True,
        )  # fmt: skip
    return {
        "path": destination, "layers": layers, "blend": blend, "click_frames": click_frames,
        "sounding_layer": sounding_layer, "fps": fps, "sample_rate": sample_rate,
    }  # fmt: skip
