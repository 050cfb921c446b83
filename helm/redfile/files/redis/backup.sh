#!/bin/sh
# Take a consistent RDB snapshot of the live Redis, as the redfile-ops user, without
# stopping it (redis-cli --rdb: the server forks and streams a point-in-time copy).
#   backup.sh OUTPUT.rdb
# Runs inside the Redis pod (kubectl exec), the compose container, or anywhere redis-cli
# reaches Redis.  REDIS_OPS_PASSWORD_FILE, REDIS_HOST, REDIS_PORT override the defaults.
set -eu
out=$1
REDISCLI_AUTH="$(cat "${REDIS_OPS_PASSWORD_FILE:-/run/secrets/redis/redfile-ops}")"
export REDISCLI_AUTH
redis-cli --no-auth-warning --user redfile-ops -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}" --rdb "$out.part" >&2
mv "$out.part" "$out"
echo "backup.sh: wrote $out ($(wc -c <"$out") bytes)" >&2
