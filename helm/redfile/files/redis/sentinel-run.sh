#!/bin/sh
# Run the sentinel beside a Redis pod of the chart's Sentinel set-up (redis.mode sentinel).
# Its config is written at every start (the sentinel rewrites it while it runs): monitor the
# primary sentinel-primary.sh names, by hostname, as the redfile-ops user; ask clients and the
# other sentinels for REDIS_SENTINEL_PASSWORD_FILE's password when it is set.
#   REDIS_SENTINEL_CONF  where the config goes (a memory volume: it holds passwords)
#   REDIS_SENTINEL_PORT, REDIS_PORT  the sentinel's port (26379) and the servers' (6379)
#   REDIS_SENTINEL_QUORUM, REDIS_SENTINEL_DOWN_AFTER_MS, REDIS_SENTINEL_FAILOVER_TIMEOUT_MS
set -eu
dir=$(dirname "$0")
conf=${REDIS_SENTINEL_CONF:-/run/sentinel/sentinel.conf}
master=$REDIS_SENTINEL_MASTER
quoted() { printf '"%s"' "$(sed 's/\\/\\\\/g; s/"/\\"/g' "$1")"; }
primary=$(sh "$dir/sentinel-primary.sh")
umask 077
{
  echo "port ${REDIS_SENTINEL_PORT:-26379}"
  echo "dir /tmp"
  echo "sentinel resolve-hostnames yes"
  echo "sentinel announce-hostnames yes"
  echo "sentinel announce-ip $REDIS_SELF"
  echo "sentinel monitor $master $primary ${REDIS_PORT:-6379} $REDIS_SENTINEL_QUORUM"
  echo "sentinel down-after-milliseconds $master $REDIS_SENTINEL_DOWN_AFTER_MS"
  echo "sentinel failover-timeout $master $REDIS_SENTINEL_FAILOVER_TIMEOUT_MS"
  echo "sentinel parallel-syncs $master 1"
  echo "sentinel auth-user $master redfile-ops"
  echo "sentinel auth-pass $master $(quoted "${REDIS_OPS_PASSWORD_FILE:-/run/secrets/redis/redfile-ops}")"
  if [ -s "${REDIS_SENTINEL_PASSWORD_FILE:-}" ]; then
    echo "requirepass $(quoted "$REDIS_SENTINEL_PASSWORD_FILE")"
    echo "sentinel sentinel-pass $(quoted "$REDIS_SENTINEL_PASSWORD_FILE")"
  fi
} >"$conf"
echo "sentinel-run: monitoring $master at $primary" >&2
exec redis-server "$conf" --sentinel
