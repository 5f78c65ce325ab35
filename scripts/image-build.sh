#!/usr/bin/env bash
# The CPU image (docker/Dockerfile) as a plain script, for hosts without a docker engine and for the
# tests: the same build context (.dockerignore applied), the same install, env and start command.
#
#   scripts/image-build.sh build <dir>              copy the build context into <dir>, install production deps
#   scripts/image-build.sh start <dir> [K=V ...]    run the image's CMD in <dir> with the image's ENV
#                                                   (K=V pairs override it, like `docker run -e K=V`)
#   scripts/image-build.sh run <dir> [K=V ...] -- <command...>
#                                                   run another command instead of CMD, as `docker run
#                                                   <image> <command...>` or a Kubernetes Job's args do
#   scripts/image-build.sh plan                     print the steps as JSON (the drift test compares them
#                                                   with the Dockerfile's RUN/ENV/CMD)
#
# Left to the container only: tini as PID 1 (a shell-started process is not PID 1), USER, HEALTHCHECK.
set -euo pipefail

# --- Mirrors docker/Dockerfile; test/deploy/dockerfile.test.ts fails when they differ. ---
WORKDIR=/app
NODE_MAJOR=20
DEPS_FILES=(package.json package-lock.json docker/prune-native.mjs)
# The build stage: a full install (dev dependencies for tsc) and `npm run build` -> dist/, copied to the runtime.
BUILD_INSTALL=(env ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --prefer-offline)
BUILD=(npm run build)
INSTALL=(env ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund --prefer-offline)
PRUNE=(node docker/prune-native.mjs)
IMAGE_ENV=(NODE_ENV=production PORT=8080 HOST=0.0.0.0 MODEL_REPOSITORY=/app/models)
START=(node dist/services/main.js)
# ---

repo=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "image-build: $*" >&2; exit 2; }

# The image's paths are under WORKDIR; in script form the target folder stands in for it.
map_workdir() {
  local value=$1 dir=$2
  case "$value" in
    "$WORKDIR") echo "$dir" ;;
    "$WORKDIR"/*) echo "$dir${value#"$WORKDIR"}" ;;
    *) echo "$value" ;;
  esac
}

check_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" = "$NODE_MAJOR" ] || die "node $NODE_MAJOR expected (the image's), found $(node -v)"
}

cmd_build() {
  local dir=${1:?usage: image-build.sh build <dir>}
  check_node
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  # Both Dockerfile stages in one folder: the deps stage sees only DEPS_FILES, which the full
  # context (copied second, as `COPY . .` is) includes unchanged.
  for f in "${DEPS_FILES[@]}"; do mkdir -p "$dir/$(dirname "$f")"; cp "$repo/$f" "$dir/$f"; done
  local t0=$SECONDS
  (cd "$dir" && "${INSTALL[@]}" && "${PRUNE[@]}")
  echo "image-build: install took $((SECONDS - t0)) s" >&2
  (cd "$repo" && node --import tsx scripts/image-context.ts "$repo" "$dir")
  # The build stage: the same context in a scratch folder, a full install, npm run build; dist/ moves over.
  local build
  build=$(mktemp -d)
  (cd "$repo" && node --import tsx scripts/image-context.ts "$repo" "$build")
  t0=$SECONDS
  (cd "$build" && "${BUILD_INSTALL[@]}" >/dev/null && "${BUILD[@]}" >&2)
  mv "$build/dist" "$dir/dist"
  rm -rf "$build"
  echo "image-build: build stage (npm ci + npm run build) took $((SECONDS - t0)) s" >&2
}

# exec_in <dir> [K=V ...] -- <command...>: the command in <dir> with the image's ENV plus overrides.
exec_in() {
  local dir=${1:?} kv
  shift
  dir=$(cd "$dir" && pwd)
  local envs=()
  for kv in "${IMAGE_ENV[@]}"; do envs+=("${kv%%=*}=$(map_workdir "${kv#*=}" "$dir")"); done
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    [[ "$1" == *=* ]] || die "override '$1' is not K=V"
    envs+=("$1")
    shift
  done
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "no command to run"
  cd "$dir"
  # A clean environment like a container's: only PATH and HOME come from the caller.
  exec env -i PATH="$PATH" HOME="${HOME:-/}" "${envs[@]}" "$@"
}

cmd_start() {
  local dir=${1:?usage: image-build.sh start <dir> [K=V ...]}
  shift
  exec_in "$dir" "$@" -- "${START[@]}"
}

cmd_run() {
  [ $# -ge 1 ] || die "usage: image-build.sh run <dir> [K=V ...] -- <command...>"
  exec_in "$@"
}

cmd_plan() {
  WORKDIR="$WORKDIR" NODE_MAJOR="$NODE_MAJOR" DEPS_FILES="${DEPS_FILES[*]}" INSTALL="${INSTALL[*]}" PRUNE="${PRUNE[*]}" \
    BUILD_INSTALL="${BUILD_INSTALL[*]}" BUILD="${BUILD[*]}" \
    IMAGE_ENV="${IMAGE_ENV[*]}" START="${START[*]}" node -e '
      const w = (k) => process.env[k].split(" ").filter(Boolean);
      const env = Object.fromEntries(w("IMAGE_ENV").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      console.log(JSON.stringify({ workdir: process.env.WORKDIR, nodeMajor: Number(process.env.NODE_MAJOR),
        depsFiles: w("DEPS_FILES"), install: w("INSTALL"), prune: w("PRUNE"), buildInstall: w("BUILD_INSTALL"), build: w("BUILD"),
        env, start: w("START") }, null, 2));'
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  start) shift; cmd_start "$@" ;;
  run) shift; cmd_run "$@" ;;
  plan) cmd_plan ;;
  *) die "usage: image-build.sh build <dir> | start <dir> [K=V ...] | run <dir> [K=V ...] -- <command...> | plan" ;;
esac
