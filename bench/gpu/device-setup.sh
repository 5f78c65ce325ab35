#!/usr/bin/env bash
# Runs ON THE GPU MACHINE, in the repository root, in every call of the procedure (bench/gpu/README.md).
# Each call carries one part (.device-carry/call<K>/payload.part<K> + plan.env, made by prepare.sh):
#   - the part is checked against plan.env (sha256) and kept in $GPUKIT_DIR/parts (default /tmp/gpukit);
#   - once every part is there: the payload is joined and checked, then installed:
#       $GPUKIT_DIR/node/bin/node                 node binary
#       $GPUKIT_DIR/node_modules                  runtime packages + onnxruntime-node/-common 1.29.0, with
#                                                 libonnxruntime_providers_{cuda,shared}.so next to the
#                                                 binding (ORT loads providers from libonnxruntime.so's folder)
#       ./node_modules -> $GPUKIT_DIR/node_modules (a symlink; a real node_modules is never touched)
#       $GPUKIT_DIR/lib                           unversioned names ORT dlopens (libcudnn.so, ...) pointing
#                                                 at the torch venv's nvidia/*/lib libraries
#       $GPUKIT_DIR/env.sh                        PATH and LD_LIBRARY_PATH for the run
# Exit status: 0 installed (or already), 10 parts still missing (says which call comes next), other: error.
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=${GPUKIT_DIR:-/tmp/gpukit}
STAGE=.device-carry
say() { printf '[device-setup] %s\n' "$*"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# xz may be missing on the image; Python's lzma is always there.
unxz_to_stdout() {
  if command -v xz > /dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer, 1 << 20)' "$1"; fi
}

mkdir -p "$KIT/parts"
shopt -s nullglob
carried=("$STAGE"/call*/plan.env)
if [ ${#carried[@]} -eq 0 ] && [ ! -s "$KIT/plan.env" ]; then
  say "no part carried and none stored: carry .device-carry/call1 (run bench/gpu/prepare.sh first, here)"; exit 2
fi
for plan in "${carried[@]}"; do
  new=$(grep '^PAYLOAD_SHA256=' "$plan" | cut -d= -f2)
  old=$(grep '^PAYLOAD_SHA256=' "$KIT/plan.env" 2>/dev/null | cut -d= -f2 || true)
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    say "a different payload was staged (prepare.sh ran again): dropping the parts of the old one"
    rm -rf "$KIT/parts" "$KIT/installed"; mkdir -p "$KIT/parts"
  fi
  cp "$plan" "$KIT/plan.env"
done
# shellcheck disable=SC1091
. "$KIT/plan.env"

for part in "$STAGE"/call*/payload.part*; do
  k=${part##*.part}
  want=$(eval echo "\${PART${k}_SHA256:-}")
  if [ "$(sha "$part")" != "$want" ]; then say "part $k is damaged (sha256 differs from plan.env): carry $(dirname "$part") again"; exit 3; fi
  if [ ! -s "$KIT/parts/part$k" ] || [ "$(sha "$KIT/parts/part$k")" != "$want" ]; then cp "$part" "$KIT/parts/part$k.tmp" && mv "$KIT/parts/part$k.tmp" "$KIT/parts/part$k"; fi
  say "part $k of $PARTS stored"
done
missing=()
for k in $(seq 1 "$PARTS"); do [ -s "$KIT/parts/part$k" ] || missing+=("$k"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "parts still missing: ${missing[*]} -> next call carries .device-carry/call${missing[0]} (same command)"
  last_stored=0
  for k in $(seq 1 "$PARTS"); do if [ -s "$KIT/parts/part$k" ]; then last_stored=$k; fi; done
  if [ "${missing[0]}" -lt "$last_stored" ]; then
    say "part ${missing[0]} was stored by an earlier call but is gone: the machine was replaced (or /tmp cleaned); start again at call ${missing[0]}"
  fi
  exit 10
fi

if [ "$(cat "$KIT/installed" 2>/dev/null || true)" != "$PAYLOAD_SHA256" ]; then
  t0=$(date +%s)
  for k in $(seq 1 "$PARTS"); do cat "$KIT/parts/part$k"; done > "$KIT/payload.tar"
  [ "$(sha "$KIT/payload.tar")" = "$PAYLOAD_SHA256" ] || { say "joined payload sha256 differs from plan.env"; exit 3; }
  rm -rf "$KIT/payload" "$KIT/node" "$KIT/node_modules" "$KIT/lib"
  mkdir -p "$KIT/payload" "$KIT/node/bin" "$KIT/lib"
  tar -xf "$KIT/payload.tar" -C "$KIT/payload"
  rm -f "$KIT/payload.tar"
  (cd "$KIT/payload" && sha256sum --quiet -c MANIFEST.sha256)
  unxz_to_stdout "$KIT/payload/node.xz" > "$KIT/node/bin/node"
  chmod +x "$KIT/node/bin/node"
  unxz_to_stdout "$KIT/payload/nm.tar.xz" | tar -x -C "$KIT"
  unxz_to_stdout "$KIT/payload/ort.tar.xz" | tar -x -C "$KIT"
  BIN="$KIT/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
  unxz_to_stdout "$KIT/payload/providers.tar.xz" | tar -x -C "$BIN"
  rm -rf "$KIT/payload"
  echo "$PAYLOAD_SHA256" > "$KIT/installed"
  say "installed in $(( $(date +%s) - t0 )) s: $(ls "$BIN" | tr '\n' ' ')"
fi
BIN="$KIT/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"

# ---------------------------------------------------------------- CUDA 13 libraries from the torch venv
# The nvidia-* wheels (cuBLAS 13, cuDNN 9, cudart 13, ...) live under site-packages/nvidia/**/lib.
NV_DIRS=$(python3 - << 'EOF' || true
import importlib.util, os
spec = importlib.util.find_spec("nvidia")
dirs = set()
for root in (spec.submodule_search_locations if spec else []):
    for d, _, files in os.walk(root):
        if any(".so" in f for f in files):
            dirs.add(d)
print(":".join(sorted(dirs)))
EOF
)
if [ -z "$NV_DIRS" ]; then
  say "python3 found no nvidia/*/lib folders; searching /usr /opt for libcublas.so.13"
  NV_DIRS=$(find /usr /opt -name 'libcublas.so.13*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd: || true)
fi
# ORT's CUDA provider dlopens some libraries by their unversioned name (libcudnn.so, libcufft.so,
# libnvrtc.so); the wheels ship only versioned files. Point unversioned names at the newest versioned one.
IFS=: read -r -a dirs <<< "$NV_DIRS"
for name in libcudnn libcufft libnvrtc libcublas libcublasLt libcudart libcurand; do
  have=""; best=""
  for d in "${dirs[@]}"; do
    [ -e "$d/$name.so" ] && have=1
    for f in "$d/$name".so.[0-9]*; do best="$f"; done
  done
  if [ -z "$have" ] && [ -n "$best" ]; then ln -sfn "$best" "$KIT/lib/$name.so"; fi
done
DRIVER_DIRS=""
if ! ldconfig -p 2> /dev/null | grep -q 'libcuda\.so\.1 '; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib64; do
    if [ -e "$d/libcuda.so.1" ]; then DRIVER_DIRS="$DRIVER_DIRS:$d"; fi
  done
fi
cat > "$KIT/env.sh" << EOF
export PATH="$KIT/node/bin:\$PATH"
export LD_LIBRARY_PATH="$KIT/lib:$NV_DIRS$DRIVER_DIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF

# ---------------------------------------------------------------- node_modules for this checkout
if [ -L node_modules ] || [ ! -e node_modules ]; then
  ln -sfn "$KIT/node_modules" node_modules
else
  say "node_modules exists here and is not the kit's symlink: not replaced (the run may not use ORT 1.29 + CUDA)"
fi

# ---------------------------------------------------------------- checks (reported, not fatal)
# shellcheck disable=SC1091
. "$KIT/env.sh"
say "node $(node --version); onnxruntime-node $(node -p "require('$KIT/node_modules/onnxruntime-node/package.json').version")"
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
unresolved=$(ldd "$BIN/libonnxruntime_providers_cuda.so" 2>&1 | grep 'not found' | awk '{print $1}' | paste -sd' ' || true)
[ -z "$unresolved" ] && say "libonnxruntime_providers_cuda.so: all NEEDED libraries resolve" || say "libonnxruntime_providers_cuda.so: NOT FOUND: $unresolved"
# Loaded by name at run time: cuDNN for every Conv/BatchNorm/pooling kernel (required); cuFFT and NVRTC
# only for ops our UNet does not use.
for lib in libcudnn.so libcufft.so libnvrtc.so; do
  if python3 -c "import ctypes, sys; ctypes.CDLL(sys.argv[1])" "$lib" 2> /dev/null; then say "dlopen $lib: ok"
  elif [ "$lib" = libcudnn.so ]; then say "dlopen $lib: FAILS: the CUDA provider cannot run Conv without cuDNN"
  else say "dlopen $lib: fails (not needed by the UNet's ops)"; fi
done
exit 0
