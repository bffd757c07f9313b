#!/usr/bin/env bash
# The dashboard's sources and its shipped bundle agree: `make test` runs this.
# Installs Node from Debian only if it is missing, installs the locked dev tools (npm ci),
# type-checks the TypeScript (tsc --noEmit), runs its unit tests (node --test), rebuilds the
# bundle into the package
# (src/becomingone/api/static) and fails when the rebuilt files differ from the committed ones.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  bash scripts/install-system.sh
fi
static=src/becomingone/api/static
(
  cd web
  npm ci --no-audit --no-fund --loglevel=error
  npx --no-install tsc --noEmit -p .
  out=$(node test.mjs 2>&1) || { echo "$out"; exit 1; }
  node build.mjs
)
# Against git's index (what is committed or staged): changed files, and files git does not know.
if ! git diff --quiet -- "$static" || [ -n "$(git ls-files --others --exclude-standard -- "$static")" ]; then
  git status --short -- "$static"
  echo "check-web: the shipped dashboard in $static differs from web/; run 'npm run build' in web/ and commit it" >&2
  exit 1
fi
echo "check-web: web/ type-checks, its unit tests pass and the shipped dashboard matches a fresh build"
