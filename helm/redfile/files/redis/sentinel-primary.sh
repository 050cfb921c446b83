#!/bin/sh
# Print the host of the current primary of the chart's Sentinel set-up (redis.mode sentinel):
# what the first other sentinel that answers says, else (none answers: the set's first start,
# or every pod restarting at once) REDIS_FIRST_PRIMARY, pod-0.
#   REDIS_SENTINEL_HOSTS          every sentinel's host, space-separated
#   REDIS_SENTINEL_PORT           their port (default 26379)
#   REDIS_SELF                    this pod's host: its own sentinel is not asked (it starts
#                                 with this pod and knows nothing yet)
#   REDIS_SENTINEL_MASTER         the name the sentinels know the primary by
#   REDIS_SENTINEL_PASSWORD_FILE  the sentinels' password, when they ask for one
set -eu
if [ -s "${REDIS_SENTINEL_PASSWORD_FILE:-}" ]; then
  REDISCLI_AUTH="$(cat "$REDIS_SENTINEL_PASSWORD_FILE")"
  export REDISCLI_AUTH
fi
for host in $REDIS_SENTINEL_HOSTS; do
  [ "$host" != "$REDIS_SELF" ] || continue
  reply=$(timeout 3 redis-cli --no-auth-warning -h "$host" -p "${REDIS_SENTINEL_PORT:-26379}" \
    sentinel get-master-addr-by-name "$REDIS_SENTINEL_MASTER" 2>/dev/null | head -n 1) || reply=""
  case "$reply" in
    '' | *' '* | ERR* | NOAUTH* | WRONGPASS* | *rror*) continue ;;
  esac
  echo "$reply"
  exit 0
done
echo "$REDIS_FIRST_PRIMARY"
