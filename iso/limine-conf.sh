#!/usr/bin/env bash
# limine-conf.sh [CMDLINE]: the repository's limine.conf with CMDLINE baked in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmdline=${1:-}
case $cmdline in *$'\n'*|*$'\r'*) echo "CMDLINE must be one line" >&2; exit 1 ;; esac
# Limine (8.x) replaces ${NAME} anywhere in limine.conf by the macro NAME
# (empty if undefined) and stops at an unclosed "${": there is no escape.
case $cmdline in *'${'*) echo "CMDLINE must not contain \"\${\" (a Limine macro)" >&2; exit 1 ;; esac
# awk printing the value as data: the command line may hold characters
# that sed or awk replacement strings treat specially.
# `nokaslr` asks for Linux's fixed layout: the image at its link address
# too, which only Limine can do (`kaslr: no`; that also keeps its HHDM in
# the guard hole).
kaslr=yes
read -ra words <<< "$cmdline"
for word in "${words[@]}"; do [ "$word" = nokaslr ] && kaslr=no; done
CMDLINE=$cmdline KASLR=$kaslr awk '
    /^[[:space:]]*cmdline:/ { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH) "cmdline: " ENVIRON["CMDLINE"]; next }
    /^[[:space:]]*kaslr:/ { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH) "kaslr: " ENVIRON["KASLR"]; next }
    { print }' "$here/../limine.conf"
