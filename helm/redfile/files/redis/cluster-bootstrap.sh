#!/bin/sh
# Create the chart's Redis Cluster (redis.mode cluster) once; run by its post-install and
# post-upgrade Job, as the redfile-ops user:
#   REDIS_CLUSTER_NODES       host:port of every node, space-separated
#   REDIS_CLUSTER_REPLICAS    replicas per primary
#   REDIS_BOOTSTRAP_TIMEOUT   seconds to wait for the nodes and the cluster (default 600)
#   REDIS_OPS_PASSWORD_FILE   the redfile-ops password (default: the chart's mount)
# Waits until every node answers PING.  When a node already holds slots the cluster exists (an
# upgrade, a re-install on kept volumes, a restarted pod): nothing is changed, the script waits
# for cluster_state:ok and names any node that is not part of it.  Otherwise it runs
# `redis-cli --cluster create` over every node's IP (CLUSTER MEET takes IPs; the nodes then
# announce their hostnames) and waits until every node reports cluster_state:ok.
set -eu
REDISCLI_AUTH="$(cat "${REDIS_OPS_PASSWORD_FILE:-/run/secrets/redis/redfile-ops}")"
export REDISCLI_AUTH
deadline=$(($(date +%s) + ${REDIS_BOOTSTRAP_TIMEOUT:-600}))

cli() {
  node=$1
  shift
  timeout 10 redis-cli --no-auth-warning --user redfile-ops -h "${node%:*}" -p "${node##*:}" "$@"
}
field() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
in_time() {
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "cluster-bootstrap: $1 after ${REDIS_BOOTSTRAP_TIMEOUT:-600}s" >&2
    exit 1
  fi
  sleep 2
}
wait_ok() {
  for node in "$@"; do
    until [ "$(field "$node" cluster_state)" = ok ]; do
      in_time "$node is not cluster_state:ok (redis-cli --cluster check; docs/deploy.md)"
    done
  done
}

for node in $REDIS_CLUSTER_NODES; do
  until [ "$(cli "$node" ping 2>/dev/null)" = PONG ]; do in_time "$node does not answer"; done
done

formed=""
for node in $REDIS_CLUSTER_NODES; do
  if [ "$(field "$node" cluster_slots_assigned)" != 0 ]; then
    formed=$node
    break
  fi
done
if [ -n "$formed" ]; then
  echo "cluster-bootstrap: the cluster exists ($formed holds slots): nothing to create" >&2
  wait_ok "$formed"
  for node in $REDIS_CLUSTER_NODES; do
    if [ "$(field "$node" cluster_known_nodes)" = 1 ]; then
      echo "cluster-bootstrap: $node is not in the cluster; add it by hand (redis-cli --cluster add-node, docs/deploy.md)" >&2
    fi
  done
  echo "cluster-bootstrap: cluster_state:ok, $(field "$formed" cluster_known_nodes) nodes" >&2
  exit 0
fi

addresses=""
for node in $REDIS_CLUSTER_NODES; do
  host=${node%:*}
  case "$host" in
    *[!0-9.]*) ip=$(getent hosts "$host" | awk 'NR == 1 { print $1 }') ;;
    *) ip=$host ;;
  esac
  [ -n "$ip" ] || { echo "cluster-bootstrap: $host does not resolve" >&2; exit 1; }
  addresses="$addresses $ip:${node##*:}"
done
echo "cluster-bootstrap: creating the cluster over$addresses, ${REDIS_CLUSTER_REPLICAS} replica(s) per primary" >&2
# shellcheck disable=SC2086  # one argument per node
redis-cli --no-auth-warning --user redfile-ops --cluster create $addresses \
  --cluster-replicas "$REDIS_CLUSTER_REPLICAS" --cluster-yes
# shellcheck disable=SC2086
wait_ok $REDIS_CLUSTER_NODES
echo "cluster-bootstrap: created; cluster_state:ok on every node" >&2
