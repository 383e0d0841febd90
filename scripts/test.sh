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
node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -aE '^ℹ pass [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
failed=$(grep -aE '^ℹ fail [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
skipped=$(grep -aE '^ℹ skipped [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
