#!/usr/bin/env bash
# A private build of this checkout for parallel work: /tmp/hz-NAME holds its own dist/ (so one
# person's half-done change does not break another's test run) and links to everything else.
# Usage: scripts/dev-workspace.sh NAME   (prints the workspace path; run tests there:
#   node --test /tmp/hz-NAME/dist/test/integration/foo.test.js)
set -euo pipefail
name=${1:?usage: dev-workspace.sh NAME}
src=$(cd "$(dirname "$0")/.." && pwd)
ws=/tmp/hz-$name
mkdir -p "$ws/bin" "$ws/test"
cp "$src/bin/haze" "$ws/bin/haze"
for p in node_modules media package.json docs dashboards scripts; do ln -sfn "$src/$p" "$ws/$p"; done
ln -sfn "$src/test/fixtures" "$ws/test/fixtures"
# test/helpers.ts finds MistServer's fixtures next to the repository
[ -e /tmp/shared ] || ln -sfn "$(cd "$src/.." && pwd)/shared" /tmp/shared
# type errors are printed but do not stop the build (others may be mid-change in shared files)
(cd "$src" && { npx tsc -p tsconfig.json --outDir "$ws/dist" || echo "dev-workspace: type errors above" >&2; npx tsc -p src/web/player/tsconfig.json --outDir "$ws/dist/web/player"; bash scripts/build-ui.sh "$ws/dist/web/ui"; })
echo "$ws"
