#!/usr/bin/env bash
# limine-conf.sh [CMDLINE] [KERNEL_BLAKE2B]: the repository's limine.conf
# with CMDLINE baked in. With KERNEL_BLAKE2B (a Secure Boot image) the
# kernel's path carries its hash, which Limine checks before loading it,
# and Limine also prints on the serial line, so that a refusal is in the
# log baton's own output goes to.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmdline=${1:-}
hash=${2:-}
case $cmdline in *$'\n'*|*$'\r'*) echo "CMDLINE must be one line" >&2; exit 1 ;; esac
# Limine (8.x) replaces ${NAME} anywhere in limine.conf by the macro NAME
# (empty if undefined) and stops at an unclosed "${": there is no escape.
case $cmdline in *'${'*) echo "CMDLINE must not contain \"\${\" (a Limine macro)" >&2; exit 1 ;; esac
# BLAKE2B-512, as `b2sum` prints it: 128 hex digits.
if [ -n "$hash" ] && ! [[ $hash =~ ^[0-9a-f]{128}$ ]]; then
    echo "limine-conf.sh: \"$hash\" is not a BLAKE2B hash (128 hex digits)" >&2
    exit 1
fi
# awk printing the value as data: the command line may hold characters
# that sed or awk replacement strings treat specially.
# `nokaslr` asks for Linux's fixed layout: the image at its link address
# too, which only Limine can do (`kaslr: no`; that also keeps its HHDM in
# the guard hole).
kaslr=yes
read -ra words <<< "$cmdline"
for word in "${words[@]}"; do [ "$word" = nokaslr ] && kaslr=no; done
CMDLINE=$cmdline HASH=$hash KASLR=$kaslr awk '
    /^[[:space:]]*cmdline:/ { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH) "cmdline: " ENVIRON["CMDLINE"]; next }
    /^[[:space:]]*kaslr:/ { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH) "kaslr: " ENVIRON["KASLR"]; next }
    /^[[:space:]]*kernel_path:/ && ENVIRON["HASH"] != "" { print $0 "#" ENVIRON["HASH"]; next }
    /^timeout:/ && ENVIRON["HASH"] != "" {
        print
        # Under UEFI too (8.2, 9.6.7 and 11.4.1 do); the rate, which
        # only the BIOS build sets, is the one baton uses.
        print "serial: yes"
        print "serial_baudrate: 115200"
        next
    }
    { print }' "$here/../limine.conf"
