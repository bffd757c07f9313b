#!/usr/bin/env bash
# System (Debian) packages the project needs. Idempotent; `make test` calls it.
# - postgresql: Choir's scale-out ledger (the tests start throwaway servers on loopback).
# - chromium: the browser the dashboard tests drive through Playwright (never `playwright install`).
# - nodejs, npm: only when no `node`/`npm` is on PATH; they type-check and rebuild the dashboard.
# Extra package names given as arguments are installed too.
set -euo pipefail
want=(postgresql chromium "$@")
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)
need=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-system: need root to install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
