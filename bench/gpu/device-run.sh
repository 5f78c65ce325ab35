#!/usr/bin/env bash
# The one command of every GPU-machine call (bench/gpu/README.md): stores the part this call carries;
# once all parts are there, installs the kit (device-setup.sh) and runs the benchmark into $OUT.
# Extra arguments go to bench.ts (e.g. --skip cpu, --train-steps 100).
#   call K < N: bash bench/gpu/device-run.sh        -> "part K of N stored", exit 0
#   call N:     bash bench/gpu/device-run.sh        -> setup + bench, report.md/report.json/logs in $OUT
set -uo pipefail
cd "$(dirname "$0")/../.."
KIT=${GPUKIT_DIR:-/tmp/gpukit}
OUTDIR=${OUT:-$PWD/tmp/gpu-bench}
LIMIT_S=${DEVICE_LIMIT_S:-600}   # the device tool's per-command limit
started=$(date +%s)
mkdir -p "$OUTDIR"

bash bench/gpu/device-setup.sh 2>&1 | tee "$OUTDIR/setup.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 10 ]; then exit 0; fi
if [ "$rc" -ne 0 ]; then echo "device-setup failed (exit $rc): see above"; exit "$rc"; fi

# shellcheck disable=SC1091
. "$KIT/env.sh"
nvidia-smi -L 2>&1 || true
# Leave a minute of the call for the sections already running when the budget ends and for writing.
budget=$(( LIMIT_S - ($(date +%s) - started) - 75 ))
echo "benchmark budget: ${budget} s"
node --import tsx bench/gpu/bench.ts --out "$OUTDIR" --budget-s "$budget" "$@" 2>&1 | tee "$OUTDIR/bench.log"
rc=${PIPESTATUS[0]}
# A native crash (e.g. a provider/ORT ABI mismatch) ends node by a signal: 128 + signal number.
if [ "$rc" -gt 128 ]; then echo "bench.ts was killed by signal $((rc - 128)) (native crash?): the last lines of bench.log show where"; fi
exit "$rc"
