#!/usr/bin/env bash
# System (Debian) packages the project needs, plus any named as arguments. Idempotent;
# `make test` calls it. postgresql: Choir's scale-out ledger (the tests start throwaway servers).
set -euo pipefail
packages=(postgresql "$@")
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-system: need root to install ${need[*]}" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
