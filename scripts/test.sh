#!/usr/bin/env bash
# The test command: type-check, then every test file through node:test.
# Node 20's `node --test` does not expand globs, so the files are listed here.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p .
mapfile -t files < <(find core edge-agent process-server master-target functions infra cli test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"
