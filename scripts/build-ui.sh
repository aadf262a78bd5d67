#!/usr/bin/env bash
# Builds the management UI into OUT (default dist/web/ui): its TypeScript modules (browser ES
# modules, no bundler), then the page and the style sheet beside them. The controller serves
# index.html for page paths and OUT's files as …/ui/FILE (src/controller/ui-files.ts).
# Run by `npm run build` (so at `npm ci`) and by scripts/dev-workspace.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist/web/ui}
npx tsc -p "$root/src/web/ui/tsconfig.json" --outDir "$out"
cp "$root/src/web/ui/static/index.html" "$root/src/web/ui/static/ui.css" "$out/"
