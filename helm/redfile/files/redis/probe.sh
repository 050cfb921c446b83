#!/bin/sh
# Probes of the Redis pod (and the compose health check), as the redfile-probe user.
#   probe.sh ready   PONG only: the data set is loaded and Redis serves commands
#   probe.sh alive   PONG or LOADING: a long AOF load is progress, not a hang
# REDIS_PROBE_PASSWORD_FILE names the password file (default: the chart's mount).
set -eu
REDISCLI_AUTH="$(cat "${REDIS_PROBE_PASSWORD_FILE:-/run/secrets/redis/redfile-probe}")"
export REDISCLI_AUTH
reply="$(timeout "${REDIS_PROBE_TIMEOUT:-4}" redis-cli --no-auth-warning --user redfile-probe -h 127.0.0.1 -p "${REDIS_PORT:-6379}" ping 2>&1 || true)"
case "$1:$reply" in
  *:PONG) exit 0 ;;
  alive:LOADING*) exit 0 ;;
esac
echo "redis probe ($1): $reply" >&2
exit 1
