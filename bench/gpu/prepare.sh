#!/usr/bin/env bash
# Stage, HERE (a machine with the npm registry), everything the GPU machine lacks, as numbered parts
# that fit the device tool's 64 MiB per call:
#   node.xz           this machine's node binary (official build: depends on glibc only)
#   nm.tar.xz         the npm packages bench/gpu/bench.ts and the engine's worker need at run time
#                     (bench/gpu/runtime-packages.ts), onnxruntime-node/-common left out
#   ort.tar.xz        onnxruntime-node@1.29.0 (linux/x64 binding + libonnxruntime.so.1) and
#                     onnxruntime-common@1.29.0: the ORT version the CUDA 13 provider below was built for
#   providers.tar.xz  libonnxruntime_providers_cuda.so (CUDA 13: cuBLAS 13, cudart 13; cuDNN 9 loaded
#                     at run time) + libonnxruntime_providers_shared.so from the npm package
#                     com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (ORT 1.29.0)
# packed into one tar (MANIFEST.sha256 inside), cut into N equal parts, one per device call:
#   .device-carry/call<K>/payload.part<K> + plan.env (sha256 of every part and of the whole).
# Idempotent: downloads and compressed pieces are cached in .device-carry/cache and rebuilt only when
# their inputs change. Prints the call plan (also written to .device-carry/PLAN.txt).
#
#   bash bench/gpu/prepare.sh            # part size from the current working-tree size
#   CHUNK_MIB=40 bash bench/gpu/prepare.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

STAGE=.device-carry
CACHE=$STAGE/cache
ORT_VERSION=1.29.0
GPU_PKG=com.github.asus4.onnxruntime.linux-x64-gpu
GPU_PKG_VERSION=0.4.9
LIMIT_MIB=64     # device tool: working tree + carried paths per call
MARGIN_MIB=3     # room for files others add to the tree before the GPU session
TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner)

say() { printf '[prepare] %s\n' "$*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# The staging folder must never travel by accident or be committed.
mkdir -p .git/info
grep -qxF "/$STAGE/" .git/info/exclude 2>/dev/null || echo "/$STAGE/" >> .git/info/exclude
git check-ignore -q "$STAGE/x" || { say "$STAGE is not ignored by git; stop"; exit 1; }
mkdir -p "$CACHE/npm" "$CACHE/build"

# ---------------------------------------------------------------- 1. npm packages
# npm pack checks the registry's integrity hash of each tarball.
pack() { # name version -> path of the tarball (unscoped names: npm pack writes <name>-<version>.tgz)
  local file="$CACHE/npm/$1-$2.tgz"
  if [ ! -s "$file" ]; then
    say "npm pack $1@$2"
    (cd "$CACHE/npm" && npm pack --silent "$1@$2" > /dev/null 2>&1) || true
  fi
  [ -s "$file" ] || { say "npm pack $1@$2 failed (is the npm registry reachable?)"; exit 1; }
  echo "$file"
}
ORT_NODE_TGZ=$(pack onnxruntime-node "$ORT_VERSION")
ORT_COMMON_TGZ=$(pack onnxruntime-common "$ORT_VERSION")
GPU_TGZ=$(pack "$GPU_PKG" "$GPU_PKG_VERSION")

# Rebuild $out only when the stamp (a hash of its inputs) changed.
fresh() { [ -s "$1" ] && [ -s "$1.stamp" ] && [ "$(cat "$1.stamp")" = "$2" ]; }

B=$CACHE/build
# ---------------------------------------------------------------- 2a. node
NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VERSION=$(node --version)
stamp="node $NODE_VERSION $(sha "$NODE_BIN")"
if ! fresh "$B/node.xz" "$stamp"; then
  say "xz node $NODE_VERSION ($(mib "$(stat -c %s "$NODE_BIN")") MiB)"
  xz -T0 -9 -c "$NODE_BIN" > "$B/node.xz.tmp" && mv "$B/node.xz.tmp" "$B/node.xz"
  echo "$stamp" > "$B/node.xz.stamp"
fi

# ---------------------------------------------------------------- 2b. CUDA provider libraries
# PRUNE_ARCH: the one GPU architecture whose device code travels (90 = Hopper: H100, H200); empty keeps
# all six (sm_75 ... sm_120). Pruned, the provider's xz is 37 MiB instead of 157 (128 of its 159 MiB of
# device code is for other GPUs), so the payload fits 2 calls instead of 4.
PRUNE_ARCH=${PRUNE_ARCH-90}
stamp="providers $(sha "$GPU_TGZ") prune=${PRUNE_ARCH:-none} $(sha bench/gpu/prune-fatbin.py)"
if ! fresh "$B/providers.tar.xz" "$stamp"; then
  say "extract + xz the CUDA provider (device code: ${PRUNE_ARCH:+sm_}${PRUNE_ARCH:-all architectures}; 1-3 minutes on 2 cores)"
  rm -rf "$B/providers"; mkdir -p "$B/providers"
  tar -xzf "$GPU_TGZ" -C "$B/providers" --strip-components=4 \
    package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
  # strip gains nothing (no symbol table; 166 of 230 MB is .nv_fatbin, already compressed device code).
  if [ -n "$PRUNE_ARCH" ]; then python3 bench/gpu/prune-fatbin.py "$B/providers/libonnxruntime_providers_cuda.so" "$PRUNE_ARCH" >&2; fi
  (cd "$B/providers" && "${TAR[@]}" -cf - libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so) | xz -T0 -6 > "$B/providers.tar.xz.tmp"
  mv "$B/providers.tar.xz.tmp" "$B/providers.tar.xz"
  rm -rf "$B/providers"
  echo "$stamp" > "$B/providers.tar.xz.stamp"
fi

# ---------------------------------------------------------------- 2c. onnxruntime-node 1.29.0 (linux/x64 only)
stamp="ort $(sha "$ORT_NODE_TGZ") $(sha "$ORT_COMMON_TGZ")"
if ! fresh "$B/ort.tar.xz" "$stamp"; then
  say "repack onnxruntime-node@$ORT_VERSION (linux/x64) + onnxruntime-common@$ORT_VERSION"
  rm -rf "$B/ort"; mkdir -p "$B/ort/node_modules/onnxruntime-node" "$B/ort/node_modules/onnxruntime-common"
  tar -xzf "$ORT_NODE_TGZ" -C "$B/ort/node_modules/onnxruntime-node" --strip-components=1 \
    package/package.json package/dist package/bin/napi-v6/linux/x64
  tar -xzf "$ORT_COMMON_TGZ" -C "$B/ort/node_modules/onnxruntime-common" --strip-components=1
  (cd "$B/ort" && "${TAR[@]}" -cf - node_modules) | xz -T0 -9 > "$B/ort.tar.xz.tmp"
  mv "$B/ort.tar.xz.tmp" "$B/ort.tar.xz"
  rm -rf "$B/ort"
  echo "$stamp" > "$B/ort.tar.xz.stamp"
fi

# ---------------------------------------------------------------- 2d. runtime npm packages
node --import tsx bench/gpu/runtime-packages.ts --exclude onnxruntime-node,onnxruntime-common \
  bench/gpu/bench.ts core/engine/inference-worker.ts > "$B/packages.txt"
stamp="nm $(sha "$B/packages.txt") $(sha package-lock.json)"
if ! fresh "$B/nm.tar.xz" "$stamp"; then
  say "tar + xz $(wc -l < "$B/packages.txt") runtime packages"
  # shellcheck disable=SC2046
  "${TAR[@]}" -cf - $(cat "$B/packages.txt") | xz -T0 -9 > "$B/nm.tar.xz.tmp"
  mv "$B/nm.tar.xz.tmp" "$B/nm.tar.xz"
  echo "$stamp" > "$B/nm.tar.xz.stamp"
fi

# ---------------------------------------------------------------- 3. payload + parts
P=$CACHE/payload
rm -rf "$P"; mkdir -p "$P"
for f in node.xz nm.tar.xz ort.tar.xz providers.tar.xz; do ln "$B/$f" "$P/$f" 2>/dev/null || cp "$B/$f" "$P/$f"; done
cat > "$P/VERSIONS" <<EOF
node $NODE_VERSION
onnxruntime-node $ORT_VERSION
onnxruntime-common $ORT_VERSION
$GPU_PKG $GPU_PKG_VERSION
device code: ${PRUNE_ARCH:+sm_}${PRUNE_ARCH:-all architectures}
EOF
(cd "$P" && sha256sum node.xz nm.tar.xz ort.tar.xz providers.tar.xz VERSIONS > MANIFEST.sha256)
(cd "$P" && "${TAR[@]}" -cf ../payload.tar MANIFEST.sha256 VERSIONS node.xz nm.tar.xz ort.tar.xz providers.tar.xz)
rm -rf "$P"
PAYLOAD=$CACHE/payload.tar
PAYLOAD_BYTES=$(stat -c %s "$PAYLOAD")
PAYLOAD_SHA=$(sha "$PAYLOAD")

# What travels besides the carried part: tracked and untracked-not-ignored files.
TREE_BYTES=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
TREE_MIB=$(( (TREE_BYTES + 1048575) / 1048576 ))
MAX_PART_MIB=$(( LIMIT_MIB - MARGIN_MIB - TREE_MIB ))
if [ -n "${CHUNK_MIB:-}" ] && [ "$CHUNK_MIB" -lt "$MAX_PART_MIB" ]; then MAX_PART_MIB=$CHUNK_MIB; fi
[ "$MAX_PART_MIB" -ge 8 ] || { say "the working tree is $TREE_MIB MiB: no room for parts under $LIMIT_MIB MiB"; exit 1; }
PARTS=$(( (PAYLOAD_BYTES + MAX_PART_MIB * 1048576 - 1) / (MAX_PART_MIB * 1048576) ))

rm -rf "$STAGE"/call*
split -n "$PARTS" -d -a 1 "$PAYLOAD" "$CACHE/part."
{
  echo "PAYLOAD_SHA256=$PAYLOAD_SHA"
  echo "PAYLOAD_BYTES=$PAYLOAD_BYTES"
  echo "PARTS=$PARTS"
  for k in $(seq 1 "$PARTS"); do echo "PART${k}_SHA256=$(sha "$CACHE/part.$((k - 1))")"; done
} > "$CACHE/plan.env"
for k in $(seq 1 "$PARTS"); do
  mkdir -p "$STAGE/call$k"
  mv "$CACHE/part.$((k - 1))" "$STAGE/call$k/payload.part$k"
  cp "$CACHE/plan.env" "$STAGE/call$k/plan.env"
done

{
  echo "GPU kit staged $(date -u +%FT%TZ): payload $(mib "$PAYLOAD_BYTES") MiB (sha256 ${PAYLOAD_SHA:0:16}...) in $PARTS parts"
  echo "working tree that travels with every call: $(mib "$TREE_BYTES") MiB; part limit $MAX_PART_MIB MiB"
  echo
  printf '%-22s %10s\n' piece MiB
  for f in node.xz nm.tar.xz ort.tar.xz providers.tar.xz; do printf '%-22s %10s\n' "$f" "$(mib "$(stat -c %s "$B/$f")")"; done
  echo
  echo "Device calls, back to back (the machine keeps /tmp only while warm: 30 s after a call):"
  for k in $(seq 1 "$PARTS"); do
    s=$(stat -c %s "$STAGE/call$k/payload.part$k")
    if [ "$k" -lt "$PARTS" ]; then what="stores part $k"; else what="stores part $k, installs, runs the benchmark"; fi
    printf '  call %d: carry ["%s"] (%s MiB + tree) command: bash bench/gpu/device-run.sh   # %s\n' "$k" "$STAGE/call$k" "$(mib "$s")" "$what"
  done
} | tee "$STAGE/PLAN.txt"
