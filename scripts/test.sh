#!/usr/bin/env bash
# `npm test`: installs what the tests need, builds, runs every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
[ -d node_modules/typescript ] || npm ci
npm run --silent build
# Integration tests bind real ports on 127.0.0.1, so files run one at a time.
exec node --test --test-concurrency=1 --test-reporter=spec "$@" dist/test/
