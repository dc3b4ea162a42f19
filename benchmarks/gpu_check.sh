#!/usr/bin/env bash
# GPU readiness check: run from the repository root on a machine with an NVIDIA GPU (about 5-10
# minutes). Writes everything under $OUT (default bench-out/gpu-check) and prints a short report.
#
#   1. the test suite with CUDA visible (tests that pick the device themselves run on it);
#   2. segment, dehaze and relight on the shipped example on CUDA, with timings per step
#      (flow, build, optimise, read-out, total, from each result's metrics.json) and wall time;
#   3. bf16 (the default mixed precision) against fp32 (--no-mixed-precision): how far the alpha,
#      transmission and illumination maps written by the two runs are apart, and the IoU of the masks;
#   4. DAVIS J on the development sequences in bf16 (if ../shared/evaldata/davis2016 is there).
#
# Usage: bash benchmarks/gpu_check.sh            (OUT=folder and DAVIS=folder override the defaults)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out/gpu-check}
DAVIS=${DAVIS:-../shared/evaldata/davis2016}
CLIP=examples/moving_object.mp4
mkdir -p "$OUT"
exec > >(tee "$OUT/report.txt") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA device: nothing to check"; exit 1; }

echo "== 1. test suite (CUDA visible)"
python -m pytest -q -x -p no:cacheprovider 2>&1 | tail -3

echo "== 2. one run per task on CUDA ($CLIP), bf16"
for task in segment dehaze relight; do
  start=$(date +%s.%N)
  vdp "$task" "$CLIP" -o "$OUT/bf16" --device cuda --overwrite --quiet > /dev/null || echo "$task: FAILED"
  end=$(date +%s.%N)
  python - "$OUT/bf16/moving_object/metrics.json" "$task" "$start" "$end" <<'EOF'
import json, sys
metrics = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: wall {float(sys.argv[4]) - float(sys.argv[3]):.1f}s, steps {metrics['timings_seconds']}, "
      f"flow {metrics['info'].get('flow_method')}, device {metrics['info'].get('device')}")
EOF
  mv "$OUT/bf16/moving_object" "$OUT/bf16/$task"
done

echo "== 3. bf16 against fp32 (--no-mixed-precision)"
for task in segment dehaze relight; do
  vdp "$task" "$CLIP" -o "$OUT/fp32" --device cuda --no-mixed-precision --overwrite --quiet > /dev/null || echo "$task fp32: FAILED"
  mv "$OUT/fp32/moving_object" "$OUT/fp32/$task"
done
python - "$OUT" <<'EOF'
import sys
from pathlib import Path
import cv2
import numpy as np
out = Path(sys.argv[1])
for task, folder in (("segment", "alpha"), ("dehaze", "transmission"), ("relight", "illumination")):
    a_dir, b_dir = out / "bf16" / task / folder, out / "fp32" / task / folder
    if not a_dir.is_dir():
        print(f"{task}: no {folder}/ folder ({sorted(p.name for p in (out / 'bf16' / task).iterdir())})")
        continue
    diffs = []
    for file in sorted(a_dir.glob("*.png")):
        a = cv2.imread(str(file), cv2.IMREAD_UNCHANGED).astype(np.float64)
        b = cv2.imread(str(b_dir / file.name), cv2.IMREAD_UNCHANGED).astype(np.float64)
        scale = 65535.0 if a.max() > 255 else 255.0
        diffs.append(np.abs(a - b).mean() / scale)
    line = f"{task}: {folder} mean |bf16 - fp32| = {np.mean(diffs):.4f} (of 1)"
    if task == "segment":
        ious = []
        for file in sorted((out / "bf16" / task / "masks").glob("*.png")):
            m1 = cv2.imread(str(file), cv2.IMREAD_UNCHANGED) > 0
            m2 = cv2.imread(str(out / "fp32" / task / "masks" / file.name), cv2.IMREAD_UNCHANGED) > 0
            union = (m1 | m2).sum()
            ious.append((m1 & m2).sum() / union if union else 1.0)
        line += f", mask IoU {np.mean(ious):.4f}"
    print(line)
EOF

if [ -d "$DAVIS" ]; then
  echo "== 4. DAVIS J (bf16, CUDA)"
  start=$(date +%s)
  vdp bench davis "$DAVIS" -o "$OUT/davis" --device cuda --quiet | tail -12
  echo "wall $(( $(date +%s) - start ))s"
fi
echo "report: $OUT/report.txt"
