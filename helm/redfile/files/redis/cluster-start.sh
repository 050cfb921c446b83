#!/bin/sh
# Start a node of the chart's Redis Cluster (redis.mode cluster):
#   cluster-start.sh redis-server ARGS...
# A pod gets a new IP when it restarts, and nodes.conf names each node by IP (and by hostname:
# --cluster-announce-hostname).  Before the server starts, every node's IP in nodes.conf is
# refreshed from its hostname (the headless Service's DNS, which lists pods that are not ready)
# and this node's own from POD_IP, so a restarted node, or every node restarted at once, finds
# its peers again.  A hostname that does not resolve (its pod is not up) keeps the IP it had: the
# peers' gossip corrects it when that node is back.  REDIS_NODES_CONF names the file
# (default /data/nodes.conf); a missing file (a new node) is left to the server to create.
set -eu
nodes=${REDIS_NODES_CONF:-/data/nodes.conf}

# A function: its `set --` leaves the script's arguments (the server's command line) alone.
refresh() {
  tmp="$nodes.refresh.$$"
  : >"$tmp"
  while IFS= read -r line || [ -n "$line" ]; do
    set -f
    # shellcheck disable=SC2086  # splitting the line into its fields is the point
    set -- $line
    set +f
    # <id> <ip:port@cport[,hostname[,aux...]]> <flags> ...; the last line is "vars ..."
    if [ "$#" -ge 3 ] && [ "$1" != vars ]; then
      id=$1
      addr=$2
      flags=$3
      endpoint=${addr%%,*}
      aux=${addr#"$endpoint"}
      host=${aux#,}
      host=${host%%,*}
      ip=""
      case ",$flags," in
        *,myself,*) ip=${POD_IP:-} ;;
      esac
      if [ -z "$ip" ] && [ -n "$host" ]; then
        ip=$(getent hosts "$host" 2>/dev/null | awk 'NR == 1 { print $1 }') || ip=""
      fi
      if [ -n "$ip" ]; then
        shift 2
        line="$id $ip:${endpoint##*:}$aux $*"
      fi
    fi
    printf '%s\n' "$line" >>"$tmp"
  done <"$nodes"
  mv "$tmp" "$nodes"
}

if [ -s "$nodes" ]; then refresh; fi
exec "$@"
