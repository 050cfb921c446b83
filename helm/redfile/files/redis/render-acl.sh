#!/bin/sh
# Render users.acl into the ACL file redis-server loads (--aclfile).
#
#   render-acl.sh TEMPLATE PASSWORD_DIR OUTPUT
#
# Drops comments and blank lines; for each `user NAME on ...` line inserts `#<sha256>` of
# the file PASSWORD_DIR/NAME (a mounted Secret or compose secret), so no clear-text password
# is ever written.  Fails when an enabled user has no password, or a password holds a newline
# (a copy-paste accident: clients would send it, probes would not).  POSIX sh + busybox only:
# it runs in the redis image (compose, the chart's init container) and in the tests.
set -eu
set -f  # ~auth:* and friends must not glob

template=$1
passwords=$2
output=$3
tmp="$output.tmp.$$"
umask 077
: >"$tmp"

while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    '' | '#'*) continue ;;
  esac
  # shellcheck disable=SC2086  # splitting the line into words is the point
  set -- $line
  if [ "$#" -lt 3 ] || [ "$1" != user ]; then
    echo "render-acl: not a 'user NAME on|off ...' line: $line" >&2
    exit 1
  fi
  name=$2
  state=$3
  shift 3
  if [ "$state" = on ]; then
    file="$passwords/$name"
    if [ ! -s "$file" ]; then
      echo "render-acl: no password for Redis user '$name' (expected in $file)" >&2
      exit 1
    fi
    if [ "$(wc -l <"$file")" -ne 0 ]; then
      echo "render-acl: the password of '$name' contains a newline; store it without one (printf, --from-literal)" >&2
      exit 1
    fi
    hash=$(sha256sum <"$file" | cut -d ' ' -f 1)
    printf 'user %s on #%s %s\n' "$name" "$hash" "$*" >>"$tmp"
  else
    printf 'user %s %s %s\n' "$name" "$state" "$*" >>"$tmp"
  fi
done <"$template"

mv "$tmp" "$output"
