#!/usr/bin/env bash
# The project's one test command: installs the system tools the tests need (dcmtk, redis-server),
# type-checks, then runs every *.test.ts with Node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
[ -d node_modules ] || npm ci
npx tsc -p tsconfig.json --noEmit
mapfile -t files < <(find core services trainer synth test bench scripts -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
# Test files share 2 cores; running too many at once makes the ORT-heavy ones slow and flaky.
# A regression that hangs must fail, not stall CI: every test gets at most TEST_TIMEOUT_MS (default
# 20 min). The longest limits the tests set themselves are 120 s per spawned step, so the default
# leaves well over a 3x margin for the slowest legitimate test on a shared 2-core machine.
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-1200000}" "${files[@]}"
