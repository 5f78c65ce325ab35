#!/usr/bin/env bash
# The Dice effect of the resize method on held-out data (issue 11: a cheaper downscale only as a
# preprocessing option pinned in the manifest, used by the trainer too, its effect measured).
# For each seed, trains the same UNet recipe twice on the same synthetic 1024² JPEG radiographs, once
# with --resize bilinear and once with --resize area, then scores each on a held-out set generated
# with another data seed, through the service's path (trainer/evaluate.ts: the manifest's processor,
# masks at 1024²). It also scores each model served with the other method (a copy whose manifest
# names it): the train/serve skew that pinning the method in the manifest prevents. Models already
# trained in WORK_DIR are reused, so more seeds can be added later.
#
#   bash bench/resize-dice/run.sh [WORK_DIR]
#   env: SEEDS="42 43 44" TRAIN_N=300 HELDOUT_N=120 EPOCHS=16
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/resize-dice}
seeds=${SEEDS:-42 43 44}
train_n=${TRAIN_N:-300}
held_n=${HELDOUT_N:-120}
epochs=${EPOCHS:-16}
mkdir -p "$work"
[ -f "$work/train/train-rle.csv" ] || node --import tsx synth/cli.ts siim --out "$work/train" --count "$train_n" --seed 1 >/dev/null
[ -f "$work/heldout/train-rle.csv" ] || node --import tsx synth/cli.ts siim --out "$work/heldout" --count "$held_n" --seed 2 >/dev/null

score() { # model dir -> mean Dice
  node --import tsx trainer/evaluate.ts --model "$1" --data "$work/heldout" --layout siim | sed -E 's/.*mean Dice ([0-9.]+).*/\1/'
}
printf '| seed | trained with | validation Dice (training) | held-out, served as trained | held-out, served with the other method |\n|---|---|---|---|---|\n'
for seed in $seeds; do
  for m in bilinear area; do
    name="cxr-$m-s$seed"
    if [ ! -f "$work/models/$name/1/model.json" ]; then
      node --import tsx trainer/cli.ts --data "$work/train" --resize "$m" --epochs "$epochs" --seed "$seed" \
        --cache "$work/cache" --work "$work/runs/$m-s$seed" --out "$work/models" --name "$name" --force --no-val-original >"$work/train-$name.log" 2>&1
    fi
    other=$([ "$m" = bilinear ] && echo area || echo bilinear)
    skew="$work/skew/$name-served-$other/1"
    rm -rf "$skew" && mkdir -p "$skew" && cp "$work/models/$name/1/model.onnx" "$skew/"
    node -e 'const fs=require("fs");const [src,dst,r]=process.argv.slice(1);const j=JSON.parse(fs.readFileSync(src));j.preprocessing.resize=r;fs.writeFileSync(dst,JSON.stringify(j,null,2))' \
      "$work/models/$name/1/model.json" "$skew/model.json" "$other"
    val=$(node -e 'console.log(require(process.argv[1]).training.validationDice.toFixed(4))' "$work/models/$name/1/model.json")
    printf '| %s | %s | %s | %s | %s |\n' "$seed" "$m" "$val" "$(score "$work/models/$name/1")" "$(score "$skew")"
  done
done
