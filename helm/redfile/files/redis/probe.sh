#!/bin/sh
# Probes of the Redis pod (and the compose health check), as the redfile-probe user.
#   probe.sh ready   PONG only: the data set is loaded and Redis serves commands
#   probe.sh alive   PONG or LOADING: a long AOF load is progress, not a hang
#   probe.sh sentinel  PONG from the sentinel on port 26379 (REDIS_SENTINEL_PASSWORD_FILE's
#                    password, when the sentinels ask for one)
# REDIS_PROBE_PASSWORD_FILE names the password file (default: the chart's mount).
set -eu
if [ "$1" = sentinel ]; then
  if [ -s "${REDIS_SENTINEL_PASSWORD_FILE:-}" ]; then
    REDISCLI_AUTH="$(cat "$REDIS_SENTINEL_PASSWORD_FILE")"
    export REDISCLI_AUTH
  fi
  reply="$(timeout "${REDIS_PROBE_TIMEOUT:-4}" redis-cli --no-auth-warning -h 127.0.0.1 -p "${REDIS_SENTINEL_PORT:-26379}" ping 2>&1 || true)"
else
  REDISCLI_AUTH="$(cat "${REDIS_PROBE_PASSWORD_FILE:-/run/secrets/redis/redfile-probe}")"
  export REDISCLI_AUTH
  reply="$(timeout "${REDIS_PROBE_TIMEOUT:-4}" redis-cli --no-auth-warning --user redfile-probe -h 127.0.0.1 -p "${REDIS_PORT:-6379}" ping 2>&1 || true)"
fi
case "$1:$reply" in
  *:PONG) exit 0 ;;
  alive:LOADING*) exit 0 ;;
esac
echo "redis probe ($1): $reply" >&2
exit 1
