#!/usr/bin/env bash
# `make gpu-check`, the part that runs on a GPU machine (the `device` tool; no internet there):
# ftuscope's CUDA backend trains U-Net-effb0 at 512 for a fixed number of steps on synthetic tiles,
# then PyTorch does the same with AMP; both print images/s and their loss curves, then the ratio.
# Usage: bash .ci/gpu-check.sh BINARY [STEPS] [BATCH]
set -uo pipefail
bin=${1:?the ftuscope binary built with --features cuda,train}
steps=${2:-30}; batch=${3:-8}
out=${OUT:-/tmp}/gpu-check; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for size in 512 256; do
  echo "== ftuscope CUDA, U-Net-effb0 at $size, batch $batch, $steps steps"
  timeout 240 "$bin" bench train --device cuda --arch unet-efficientnet-b0 --size $size --batch $batch --steps $steps | tee "$out/ftuscope-$size.json"
done
echo "== PyTorch AMP, same model"
timeout 180 python3 .ci/gpu_check_torch.py --size 512 --batch $batch --steps $steps | tee "$out/torch-512.json"
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
try:
    f = json.load(open(os.path.join(d, "ftuscope-512.json"))); t = json.load(open(os.path.join(d, "torch-512.json")))
    print(f"ratio ftuscope/PyTorch-AMP at 512: {f['images_per_s'] / t['images_per_s']:.3f} "
          f"({f['images_per_s']:.1f} vs {t['images_per_s']:.1f} images/s)")
except Exception as e:
    print("no ratio:", e)
PY
