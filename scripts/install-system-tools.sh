#!/usr/bin/env bash
# Installs the Debian packages that `make lint`, the tests and CI need, when their command is missing:
#   luacheck (package lua-check): the Lua lint of `make lint` (scripts/lint-lua.py).
#   nginx (package nginx): the front door of tests/e2e/test_nginx.py, run with the shipped
#     deploy/nginx/redfile.conf.template.  The package's own service is never started (the tests
#     run their own nginx on a free loopback port), see policy-rc.d below.
#   envsubst (package gettext-base): renders that template in `make lint-deploy`, as the nginx image does.
# Idempotent: installs nothing when every command is on PATH.  Needs root (apt-get) otherwise.
set -euo pipefail

declare -A PACKAGE_OF=(
  [luacheck]=lua-check
  [nginx]=nginx
  [envsubst]=gettext-base
)

missing=()
for cmd in "${!PACKAGE_OF[@]}"; do
  # nginx lives in /usr/sbin, which is not on every PATH
  command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("${PACKAGE_OF[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-system-tools: missing Debian packages: ${missing[*]} (run this script as root, or apt-get install them)" >&2
  exit 1
fi
echo "install-system-tools: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian starts a package's service on install unless policy-rc.d refuses (exit 101): without
# one (container images usually ship it), refuse for the length of this install only.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
