#!/usr/bin/env bash
# The Dice effect of the resize method on held-out data (issue 11: a cheaper downscale only as a
# preprocessing option pinned in the manifest, used by the trainer too, its effect measured).
# Trains the same UNet recipe twice on the same synthetic 1024² JPEG radiographs, once with
# --resize bilinear and once with --resize area, then scores each on a held-out set generated with
# another seed, through the service's path (trainer/evaluate.ts: the manifest's processor, masks at
# 1024²). It also scores each model served with the other method (the manifest edited), which is
# the train/serve skew that pinning the method in the manifest prevents.
#
#   bash bench/resize-dice/run.sh [WORK_DIR]   (env: TRAIN_N=300 HELDOUT_N=120 EPOCHS=16 SEED=42)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/resize-dice}
train_n=${TRAIN_N:-300}
held_n=${HELDOUT_N:-120}
epochs=${EPOCHS:-16}
seed=${SEED:-42}
mkdir -p "$work"
[ -f "$work/train/train-rle.csv" ] || node --import tsx synth/cli.ts siim --out "$work/train" --count "$train_n" --seed 1 >/dev/null
[ -f "$work/heldout/train-rle.csv" ] || node --import tsx synth/cli.ts siim --out "$work/heldout" --count "$held_n" --seed 2 >/dev/null
for m in bilinear area; do
  if [ ! -f "$work/models/cxr-$m/1/model.json" ]; then
    start=$(date +%s)
    node --import tsx trainer/cli.ts --data "$work/train" --resize "$m" --epochs "$epochs" --seed "$seed" \
      --cache "$work/cache" --work "$work/runs/$m" --out "$work/models" --name "cxr-$m" --force --no-val-original >"$work/train-$m.log" 2>&1
    echo "trained cxr-$m in $(( $(date +%s) - start )) s"
  fi
done
# The same weights served with the other method: a copy of each model whose manifest names it.
for m in bilinear area; do
  other=$([ "$m" = bilinear ] && echo area || echo bilinear)
  dir="$work/models/cxr-$m-served-$other/1"
  rm -rf "$dir" && mkdir -p "$dir" && cp "$work/models/cxr-$m/1/model.onnx" "$dir/"
  node -e 'const fs=require("fs");const [src,dst,r]=process.argv.slice(1);const j=JSON.parse(fs.readFileSync(src));j.preprocessing.resize=r;j.name=j.name+"-served-"+r;fs.writeFileSync(dst,JSON.stringify(j,null,2))' \
    "$work/models/cxr-$m/1/model.json" "$dir/model.json" "$other"
done
printf '%-34s %s\n' 'trained with -> served with' 'held-out Dice (mean per image)'
for pair in bilinear:bilinear area:area bilinear:area area:bilinear; do
  t=${pair%%:*}; s=${pair##*:}
  model="$work/models/cxr-$t/1"; [ "$t" = "$s" ] || model="$work/models/cxr-$t-served-$s/1"
  val=$(node -e 'const j=require(process.argv[1]);console.log(j.training.validationDice.toFixed(4))' "$work/models/cxr-$t/1/model.json")
  printf '%-34s %s   (validation Dice at training: %s)\n' "$t -> $s" "$(node --import tsx trainer/evaluate.ts --model "$model" --data "$work/heldout" --layout siim 2>&1 | tail -1)" "$val"
done
