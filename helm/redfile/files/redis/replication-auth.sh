#!/bin/sh
# Write the config lines a Redis node of the chart's sentinel and cluster modes includes
# (--include), so a replica authenticates to its primary as the redfile-ops user:
#   replication-auth.sh OPS_PASSWORD_FILE OUTPUT
# The password is quoted for redis.conf (backslash and double quote escaped) and the file is
# readable by its owner only; it lives on a memory volume, never on the data volume.
set -eu
password_file=$1
output=$2
[ -s "$password_file" ] || { echo "replication-auth: no password in $password_file" >&2; exit 1; }
umask 077
escaped=$(sed 's/\\/\\\\/g; s/"/\\"/g' "$password_file")
printf 'masteruser redfile-ops\nmasterauth "%s"\n' "$escaped" >"$output.tmp"
mv "$output.tmp" "$output"
