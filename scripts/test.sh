#!/usr/bin/env bash
# `npm test`: installs what the tests need, builds, runs every test with node's test runner.
# Extra arguments go to both runs (e.g. --test-name-pattern=...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
[ -d node_modules/typescript ] || npm ci
npm run --silent build
# Test files by name (node would also run every other .js under a folder named test, the helpers
# included, each in a process of its own). --test-force-exit: a file is done when its tests are,
# not when the last timer it left behind fires.
# Unit tests bind only port 0 and private temp folders, and mostly wait on process start-up: they
# run several files at a time.
mapfile -t unit < <(find dist/test/unit -name '*.test.js' | sort)
# Everything else runs real servers and peers in real time on 127.0.0.1: one file at a time.
mapfile -t serial < <(find dist/test -name '*.test.js' ! -path 'dist/test/unit/*' | sort)
status=0
node --test --test-concurrency=4 --test-force-exit --test-reporter=spec "$@" "${unit[@]}" || status=$?
node --test --test-concurrency=1 --test-force-exit --test-reporter=spec "$@" "${serial[@]}" || status=$?
exit "$status"
