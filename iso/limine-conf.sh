#!/usr/bin/env bash
# limine-conf.sh [CMDLINE]: the repository's limine.conf with CMDLINE baked in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmdline=${1:-}
case $cmdline in *$'\n'*) echo "CMDLINE must be one line" >&2; exit 1 ;; esac
# awk printing the value as data: the command line may hold characters
# that sed or awk replacement strings treat specially.
CMDLINE=$cmdline awk '
    /^[[:space:]]*cmdline:/ { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH) "cmdline: " ENVIRON["CMDLINE"]; next }
    { print }' "$here/../limine.conf"
