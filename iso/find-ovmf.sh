#!/usr/bin/env bash
# Prints the path of an OVMF firmware image usable with `-bios`: $OVMF if
# set, else the first of the usual distribution paths.
set -euo pipefail
if [ -n "${OVMF:-}" ]; then
    [ -f "$OVMF" ] && { echo "$OVMF"; exit 0; }
    echo "OVMF=$OVMF does not exist" >&2; exit 1
fi
for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/qemu/OVMF.fd \
         /usr/share/edk2/x64/OVMF.fd /usr/share/edk2-ovmf/x64/OVMF.fd \
         /usr/share/edk2/ovmf/OVMF.fd; do
    [ -f "$f" ] && { echo "$f"; exit 0; }
done
echo "no OVMF.fd found: install the 'ovmf' package or pass OVMF=/path/to/OVMF.fd" >&2
exit 1
