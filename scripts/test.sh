#!/usr/bin/env bash
# The test command: type-check, then every test file through node:test, and a plain
# "N passed, N failed" line at the end. Node 20's `node --test` does not expand globs, so the
# files are listed here.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
mapfile -t files < <(find core edge-agent process-server master-target functions infra cli test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# The run gets a process group of its own, so that a stopped run (Ctrl-C, a CI timeout) takes
# every server the tests started with it instead of leaving them running.
setsid bash -c 'node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec "${@:2}" 2>&1 | tee "$1"; exit "${PIPESTATUS[0]}"' \
  run-tests "$log" "${files[@]}" &
runner=$!
trap 'kill -TERM -- "-$runner" 2>/dev/null' INT TERM
wait "$runner"
status=$?
# A signal interrupts wait: wait once more for the group to end before reporting.
if kill -0 "$runner" 2>/dev/null; then wait "$runner"; status=$?; fi
set -e
passed=$(grep -aE '^ℹ pass [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
failed=$(grep -aE '^ℹ fail [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
skipped=$(grep -aE '^ℹ skipped [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
