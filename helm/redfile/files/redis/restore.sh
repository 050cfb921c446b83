#!/bin/sh
# Restore an RDB snapshot (from backup.sh) into a Redis data directory that uses AOF.
#   restore.sh BACKUP.rdb DATA_DIR
# Redis must NOT be running on DATA_DIR (scale the StatefulSet to 0 / stop the container).
# With AOF on, Redis ignores dump.rdb at start, so this loads the snapshot into a private
# server (unix socket only, no AOF), turns AOF on (Redis writes a fresh AOF from memory),
# waits for that rewrite and shuts down cleanly.  The old AOF is kept as appendonlydir.old.
set -eu
backup=$1
dir=$(cd "$2" && pwd)
sock="$dir/restore.sock"
[ -s "$backup" ] || { echo "restore.sh: $backup is missing or empty" >&2; exit 1; }
cli() { redis-cli -s "$sock" "$@"; }

rm -rf "$dir/appendonlydir.old"
if [ -d "$dir/appendonlydir" ]; then mv "$dir/appendonlydir" "$dir/appendonlydir.old"; fi
cp "$backup" "$dir/restore.rdb"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$dir" \
  --dbfilename restore.rdb --appendonly no --save "" --logfile "$dir/restore.log" &
pid=$!

tries=0
until [ "$(cli ping 2>/dev/null)" = PONG ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 3000 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "restore.sh: the restore server did not come up; see $dir/restore.log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "restore.sh: loaded $(cli dbsize) keys" >&2

cli config set appendonly yes >/dev/null
until cli info persistence | grep -q '^aof_rewrite_in_progress:0' &&
  cli info persistence | grep -q '^aof_rewrite_scheduled:0' &&
  cli info persistence | grep -q '^aof_enabled:1' &&
  [ -f "$dir/appendonlydir/appendonly.aof.manifest" ]; do
  sleep 0.2
done
cli info persistence | grep -q '^aof_last_bgrewrite_status:ok' || {
  echo "restore.sh: writing the AOF failed; see $dir/restore.log" >&2
  exit 1
}
cli shutdown >/dev/null 2>&1 || true
wait "$pid" || true
rm -f "$dir/restore.rdb" "$sock"
echo "restore.sh: done; start Redis on $dir again" >&2
