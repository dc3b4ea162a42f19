"""The message `vdp segment` gives for each kind of bad input, as a Markdown table.

Makes every input in a temporary folder (text renamed .mp4, a truncated and a scrambled mp4, a
0-frame container, one frame, mixed sizes, 8x8 frames, ...), runs the real command line on each
in a fresh process, and prints `| input | exit code | message |` rows: the source of the README's
Troubleshooting section and of issue 4's table.

    python benchmarks/error_messages.py > bench-out/error-messages.md
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from clips import damage_video, write_test_pattern  # benchmarks/clips.py, beside this script
from vdp.example_clip import make_moving_object_video
from vdp.video import write_mp4

FAST = ["--steps", "2", "--max-side", "48", "--cache-dir", "", "--objectness", "off", "--quiet"]


def make_inputs(work: Path) -> list[tuple[str, list[str]]]:
    """(description, CLI arguments) for every case."""
    frames, _ = make_moving_object_video(num_frames=30, height=48, width=64, seed=3)
    clip = work / "clip.mp4"
    write_mp4(frames, clip, fps=24)
    damage_video(clip, work / "truncated.mp4", "truncated")
    damage_video(clip, work / "scrambled.mp4", "scrambled")
    (work / "notes.mp4").write_text("this is a text file renamed .mp4\n" * 10)
    (work / "empty-folder").mkdir()
    (work / "no-frames").mkdir()
    (work / "no-frames" / "readme.txt").write_text("no images")
    mixed = work / "mixed-sizes"
    mixed.mkdir()
    for index, height in enumerate([48, 48, 40]):
        cv2.imwrite(str(mixed / f"{index:05d}.png"), np.zeros((height, 64, 3), np.uint8))
    broken = work / "broken-image"
    broken.mkdir()
    cv2.imwrite(str(broken / "00000.png"), np.zeros((48, 64, 3), np.uint8))
    (broken / "00001.png").write_bytes(b"\x89PNG not really")
    cv2.imwrite(str(work / "still.png"), np.zeros((48, 64, 3), np.uint8))
    for name, depth in (("gray", np.uint8), ("deep16", np.uint16)):
        folder = work / f"{name}-frames"
        folder.mkdir()
        for t in range(4):
            image = np.full((48, 64) if name == "gray" else (48, 64, 4), 40 * (t + 1), depth)
            cv2.imwrite(str(folder / f"{t:05d}.png"), image)
    write_test_pattern(work / "zero-frames.mp4", "-frames:v", "0")
    write_test_pattern(work / "one-frame.mp4", "-frames:v", "1")
    write_test_pattern(work / "tiny-8x8.mp4", "-frames:v", "6", "-vf", "scale=8:8", "-pix_fmt", "yuv444p")
    write_test_pattern(work / "gray.mp4", "-frames:v", "6", "-pix_fmt", "gray")
    write_test_pattern(work / "rgb48.mkv", "-frames:v", "6", "-c:v", "ffv1", "-pix_fmt", "rgb48le")
    (work / "a-file").write_text("not a folder")
    out = str(work / "out")
    return [
        ("path that does not exist", [str(work / "missing.mp4"), "-o", out]),
        ("empty folder", [str(work / "empty-folder"), "-o", out]),
        ("folder with no frames (a .txt)", [str(work / "no-frames"), "-o", out]),
        ("text file renamed .mp4", [str(work / "notes.mp4"), "-o", out]),
        ("mp4 cut in half", [str(work / "truncated.mp4"), "-o", out]),
        ("mp4 with 2 KB of garbage inside", [str(work / "scrambled.mp4"), "-o", out]),
        ("the cut mp4 with --max-frames 5", [str(work / "truncated.mp4"), "-o", out, "--max-frames", "5"]),
        ("container with 0 frames", [str(work / "zero-frames.mp4"), "-o", out]),
        ("single frame", [str(work / "one-frame.mp4"), "-o", out]),
        ("folder of mixed frame sizes", [str(mixed), "-o", out]),
        ("folder with an undecodable image", [str(broken), "-o", out]),
        ("an image instead of a video", [str(work / "still.png"), "-o", out]),
        ("grayscale PNG frames", [str(work / "gray-frames"), "-o", out]),
        ("16-bit RGBA PNG frames", [str(work / "deep16-frames"), "-o", out]),
        ("grayscale H.264 video", [str(work / "gray.mp4"), "-o", out]),
        ("16-bit RGB (rgb48, FFV1) video", [str(work / "rgb48.mkv"), "-o", out]),
        ("8x8 frames", [str(work / "tiny-8x8.mp4"), "-o", out]),
        ("--start past the end", [str(clip), "-o", out, "--start", "500"]),
        ("--stride 0", [str(clip), "-o", out, "--stride", "0"]),
        ("unknown flow method", [str(clip), "-o", out, "--flow", "optical"]),
        ("unknown device", [str(clip), "-o", out, "--device", "tpu"]),
        ("--device cuda without a GPU", [str(clip), "-o", out, "--device", "cuda"]),
        ("output path is a file", [str(clip), "-o", str(work / "a-file")]),
        ("output under a file", [str(clip), "-o", str(work / "a-file" / "out")]),
        ("output already holds this result", [str(clip), "-o", str(work / "done")]),
        ("learning rate that diverges", [str(clip), "-o", out, "--learning-rate", "1e30", "--steps", "60"]),
    ]


def main() -> None:
    print("| input | exit | what vdp says |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        cases = make_inputs(work)
        command = [sys.executable, "-m", "vdp.cli"]
        subprocess.run([*command, "segment", str(work / "clip.mp4"), "-o", str(work / "done"), *FAST], check=True,
                       capture_output=True)
        unknown_task = subprocess.run([*command, "segmnt", str(work / "clip.mp4")], capture_output=True, text=True)
        rows = [("unknown task (`vdp segmnt`)", unknown_task.returncode,
                 " ".join(line.strip(" │╭╮╰╯─").removeprefix("Error: ")
                          for line in unknown_task.stderr.splitlines() if "No such" in line))]
        for description, args in cases:
            completed = subprocess.run([*command, "segment", *args, *FAST], capture_output=True, text=True)
            said = [line for line in completed.stderr.splitlines() if line.startswith(("error:", "Traceback"))]
            message = said[0] if said else f"ok: wrote {completed.stdout.strip().rsplit('/', 1)[-1]}"
            rows.append((description, completed.returncode, message.replace(folder, "…").replace("|", "\\|")))
        for description, code, message in rows:
            print(f"| {description} | {code} | {message} |", flush=True)


if __name__ == "__main__":
    main()
