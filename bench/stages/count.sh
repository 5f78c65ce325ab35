#!/usr/bin/env bash
# Instructions per run of one stage of the flagship path, with valgrind (callgrind's Ir counts every
# thread: libvips' workers too). perf's hardware counters are not available on this VM, and wall
# time on a shared, loaded machine is noise. The count of `--iters 2` (start-up, inputs, warm-up, and
# two runs so V8's background compiles triggered by the warm-up land in both) is subtracted from
# `--iters 2+N`'s, so what remains is N steady-state runs of the stage.
#
#   node --import tsx bench/stages/prepare.ts            # once
#   bash bench/stages/count.sh STAGE [N=5] [WARMUP=10]     # STAGE: decode|preprocess|postprocess|mask|rle
set -euo pipefail
stage=${1:?stage}
n=${2:-5}
warm=${3:-10}
cd "$(dirname "$0")/../.."
ir() {
  valgrind --tool=callgrind --smc-check=all-non-file --trace-children=no --callgrind-out-file=/dev/null \
    node --import tsx bench/stages/driver.ts --stage "$stage" --iters "$1" --warmup "$warm" 2>&1 >/dev/null |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | tail -1
}
tmp=$(mktemp -d)
ir 2 >"$tmp/base" &
ir $((n + 2)) >"$tmp/full"
wait
base=$(cat "$tmp/base")
full=$(cat "$tmp/full")
rm -r "$tmp"
echo "$stage: $(( (full - base) / n )) instructions/run (N=$n, warm-up $warm; totals $full - $base)"
