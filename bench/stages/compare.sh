#!/usr/bin/env bash
# Before/after instruction counts of one stage, measured at the same time (so both see the same load):
# BEFORE and AFTER are two checkouts of this repository (node_modules may be a symlink).
#
#   bash bench/stages/compare.sh BEFORE_DIR AFTER_DIR STAGE [N=20] [WARMUP=10]
set -euo pipefail
before=${1:?before dir}
after=${2:?after dir}
stage=${3:?stage}
n=${4:-20}
warm=${5:-10}
(cd "$before" && bash bench/stages/count.sh "$stage" "$n" "$warm" | sed 's/^/before /') &
(cd "$after" && bash bench/stages/count.sh "$stage" "$n" "$warm" | sed 's/^/after  /')
wait
