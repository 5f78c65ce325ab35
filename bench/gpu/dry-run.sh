#!/usr/bin/env bash
# Rehearse the GPU-machine procedure HERE: for each call of the plan, a fresh copy of what the device
# tool would send (tracked + untracked-not-ignored files + that call's .device-carry/call<K>) gets
# `bash bench/gpu/device-run.sh`, with the kit installed under a scratch folder instead of /tmp/gpukit.
# The last call installs the carried node, ORT 1.29.0 and the CUDA provider and runs the benchmark
# (--quick): with no GPU here the CUDA session fails to open and the report says why (a missing
# CUDA 13 library), every CPU section still runs. Extra arguments go to bench.ts.
#
#   bash bench/gpu/dry-run.sh [--python /usr/bin/python3]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
SCRATCH=${DRY_RUN_DIR:-/tmp/gpukit-dry}
PLAN=.device-carry/cache/plan.env
[ -s "$PLAN" ] || { echo "no staged kit: run bash bench/gpu/prepare.sh first"; exit 1; }
PARTS=$(grep '^PARTS=' "$PLAN" | cut -d= -f2)
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/out"
export GPUKIT_DIR="$SCRATCH/kit"
for k in $(seq 1 "$PARTS"); do
  echo "=== call $k of $PARTS: carry .device-carry/call$k"
  rm -rf "$SCRATCH/repo"
  mkdir -p "$SCRATCH/repo/.device-carry"
  # Files listed but deleted in the work tree are skipped, as they would not travel either.
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$SCRATCH/repo"
  cp -r ".device-carry/call$k" "$SCRATCH/repo/.device-carry/"
  (cd "$SCRATCH/repo" && OUT="$SCRATCH/out" DEVICE_LIMIT_S=900 bash bench/gpu/device-run.sh --quick "$@")
done
echo "=== dry run done: $SCRATCH/out holds what \$OUT would bring back"
ls -la "$SCRATCH/out"
