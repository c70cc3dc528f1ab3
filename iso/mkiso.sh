#!/usr/bin/env bash
# mkiso.sh KERNEL OUTPUT.iso [CMDLINE]   (default: $BATON_CMDLINE)
# A hybrid ISO: El Torito for BIOS (limine-bios-cd.bin) and UEFI
# (limine-uefi-cd.bin); with a matching `limine` host utility (see
# limine-tool.sh) it is also made bootable as a BIOS disk (e.g. dd'd to a
# USB stick).
set -euo pipefail
kernel=$1 out=$2
# The command line: the third argument, else $BATON_CMDLINE (how the
# Makefile passes CMDLINE, untouched by the shell).
if [ $# -ge 3 ]; then cmdline=$3; else cmdline=${BATON_CMDLINE-}; fi
here=$(cd "$(dirname "$0")" && pwd)
case ${SECURE_BOOT:-} in
    ""|0) ;;
    *) echo "mkiso: SECURE_BOOT=1 is for \`make hdd\`: the ISO's UEFI boot image" \
            "(limine-uefi-cd.bin) holds an unsigned Limine (docs/boot-chains.md)" >&2
       exit 1 ;;
esac
limine_dir=$("$here/limine-dir.sh")
stage=$(mktemp -d "${TMPDIR:-/tmp}/baton-iso.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/boot/limine" "$stage/EFI/BOOT"
"$here/image-kernel.sh" "$kernel" "$stage/boot/baton"
"$here/limine-conf.sh" "$cmdline" > "$stage/boot/limine/limine.conf"
cp "$limine_dir/limine-bios.sys" "$limine_dir/limine-bios-cd.bin" \
   "$limine_dir/limine-uefi-cd.bin" "$stage/boot/limine/"
cp "$limine_dir/BOOTX64.EFI" "$stage/EFI/BOOT/"

mkdir -p "$(dirname "$out")"
if ! log=$(xorriso -as mkisofs -quiet -R -r -J \
    -b boot/limine/limine-bios-cd.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
    -hfsplus -apm-block-size 2048 \
    --efi-boot boot/limine/limine-uefi-cd.bin -efi-boot-part --efi-boot-image \
    --protective-msdos-label "$stage" -o "$out" 2>&1); then
    printf '%s\n' "$log" >&2
    echo "mkiso: xorriso failed to write $out (output above)" >&2
    rm -f "$out"
    exit 1
fi

limine_tool=$("$here/limine-tool.sh" "$limine_dir")
if [ -n "$limine_tool" ]; then
    if ! log=$("$limine_tool" bios-install "$out" 2>&1); then
        printf '%s\n' "$log" >&2
        echo "mkiso: \`$limine_tool bios-install $out\` failed (output above)" >&2
        rm -f "$out"
        exit 1
    fi
else
    echo "note: $out boots from CD only, not as a BIOS disk" >&2
fi
