#!/usr/bin/env bash
# Installs the Debian packages that `make lint` and CI need, when their command is missing:
#   luacheck (package lua-check): the Lua lint of `make lint` (scripts/lint-lua.py).
# Idempotent: installs nothing when every command is on PATH.  Needs root (apt-get) otherwise.
set -euo pipefail

declare -A PACKAGE_OF=(
  [luacheck]=lua-check
)

missing=()
for cmd in "${!PACKAGE_OF[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-system-tools: missing Debian packages: ${missing[*]} (run this script as root, or apt-get install them)" >&2
  exit 1
fi
echo "install-system-tools: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
