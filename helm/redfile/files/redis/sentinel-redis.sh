#!/bin/sh
# Start a Redis pod of the chart's Sentinel set-up (redis.mode sentinel):
#   sentinel-redis.sh redis-server ARGS...
# As the primary when the sentinels name this pod (or none answers and this is pod-0), else as a
# replica of the primary they name.  The pod announces its stable hostname, not its IP.
set -eu
primary=$(sh "$(dirname "$0")/sentinel-primary.sh")
if [ "$primary" = "$REDIS_SELF" ]; then
  echo "sentinel-redis: starting as the primary" >&2
  exec "$@" --replica-announce-ip "$REDIS_SELF"
fi
echo "sentinel-redis: starting as a replica of $primary" >&2
exec "$@" --replica-announce-ip "$REDIS_SELF" --replicaof "$primary" "${REDIS_PORT:-6379}"
