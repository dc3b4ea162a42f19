"""Peak memory and wall time of a vdp run against the length of a generated video, and the seam
between optimisation windows.

Generates a test video with ffmpeg's `testsrc2` source (moving patterns, 30 fps; 1920x1080 unless
--size says otherwise) for each requested length, runs the CLI on it in a fresh process, and
samples that process's resident memory (VmRSS) every 0.25 s; the peak is the kernel's own
high-water mark (VmHWM) read just before the process exits, cross-checked with getrusage. When the
run was fitted in windows (metrics.json `info.windows`), the seam is measured on the written
alpha/ frames: the mean absolute change of alpha between consecutive frames (0-255) for the pairs
where two windows are cross-faded, against the pairs inside one window. Writes one JSON line per run.

    python benchmarks/memory_long_video.py --frames 1000 10000 --size 854x480 -o bench-out/memory
    python benchmarks/memory_long_video.py --frames 1000 -o bench-out/memory
    python benchmarks/memory_long_video.py --frames 100 --task dehaze -o bench-out/memory -- --steps 20

Everything vdp writes (the result folders) stays under OUT; the generated videos are cached in
OUT/videos so the second length does not re-encode the first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from clips import write_test_pattern  # benchmarks/clips.py, beside this script
from vdp.atomic_write import PendingFile


def make_video(path: Path, num_frames: int, size: tuple[int, int] = (1920, 1080)) -> Path:
    """A 30 fps H.264 clip of ffmpeg's moving test pattern (no audio), `size` = (width, height)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with PendingFile(path) as temporary:  # a hidden name ending in .mp4, so ffmpeg writes mp4
        write_test_pattern(temporary, "-frames:v", str(num_frames), "-c:v", "libx264", "-preset", "veryfast",
                           "-crf", "20", "-pix_fmt", "yuv420p", size=size, rate=30)
    return path


def window_seams(result: Path) -> dict | None:
    """Mean |alpha(t+1) - alpha(t)| (0-255) over consecutive pairs where windows are cross-faded
    ("seam") and over the others ("within"), from a result folder's alpha/ and metrics.json."""
    import cv2
    import numpy as np

    metrics = json.loads((result / "metrics.json").read_text())
    windows = metrics["info"].get("windows")
    if not windows or windows["count"] < 2:
        return None
    spans = [tuple(window["frames"]) for window in windows["per_window"]]
    shared = set()
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        shared.update(range(start, stop))  # frames two windows are blended over
    seam, within = [], []
    previous = None
    for t, file in enumerate(sorted((result / "alpha").glob("*.png"))):
        alpha = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE).astype(np.float32)
        if previous is not None:
            # a pair touching a blended frame, or straddling the switch between windows
            (seam if (t - 1 in shared or t in shared) else within).append(float(np.abs(alpha - previous).mean()))
        previous = alpha
    return {"pairs_seam": len(seam), "pairs_within": len(within),
            "seam_mean_abs_change": round(float(np.mean(seam)), 3) if seam else None,
            "within_mean_abs_change": round(float(np.mean(within)), 3) if within else None}


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def measure(command: list[str], env: dict[str, str]) -> dict:
    """Run `command`, sampling its RSS; returns the peak and the (seconds, MiB) samples."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[float, float]] = []
    peak_hwm = [0]
    lines: list[str] = []

    def sample() -> None:
        while process.poll() is None:
            rss = _status_kib(process.pid, "VmRSS")
            hwm = _status_kib(process.pid, "VmHWM")
            if rss is not None:
                samples.append((round(time.perf_counter() - started, 2), round(rss / 1024, 1)))
            if hwm is not None:
                peak_hwm[0] = max(peak_hwm[0], hwm)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in process.stdout:
        lines.append(line.rstrip())
        if not line.startswith(("flow:", "segment:", "dehaze:", "relight:", "writing:")):
            print(line.rstrip(), file=sys.stderr)
    process.wait()
    sampler.join()
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "returncode": process.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": round(max(peak_hwm[0] / 1024, max((mib for _, mib in samples), default=0.0)), 1),
        "largest_child_maxrss_mib_so_far": round(children_peak, 1),
        "samples": samples,
        "log_tail": lines[-6:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--task", default="segment")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the generated video.")
    parser.add_argument("-o", "--output", type=Path, default=Path("bench-out/memory"))
    parser.add_argument("extra", nargs="*", help="Further options for the vdp command (after --).")
    args = parser.parse_args()
    env = dict(os.environ)
    width, height = (int(side) for side in args.size.lower().split("x"))
    for num_frames in args.frames:
        label = "1080p" if (width, height) == (1920, 1080) else f"{height}p" if width * 9 == height * 16 else args.size
        video = make_video(args.output / "videos" / f"testsrc2_{label}_{num_frames}.mp4", num_frames, (width, height))
        out = args.output / f"{args.task}-{label}-{num_frames}"
        command = [sys.executable, "-c", "from vdp.cli import main; main()", args.task, str(video), "-o", str(out),
                   "--overwrite", "--cache-dir", "", *args.extra]
        print(f"running: {' '.join(command)}", file=sys.stderr)
        result = measure(command, env)
        seams = window_seams(out / video.stem) if result["returncode"] == 0 else None
        record = {"task": args.task, "frames": num_frames, "size": f"{width}x{height}", "options": args.extra,
                  **result, "seams": seams,
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                  "date": time.strftime("%Y-%m-%d")}
        with (args.output / "memory.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k not in ("samples", "log_tail")}))


if __name__ == "__main__":
    main()
