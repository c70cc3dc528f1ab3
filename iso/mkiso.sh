#!/usr/bin/env bash
# mkiso.sh KERNEL OUTPUT.iso [CMDLINE]
# A hybrid ISO: El Torito for BIOS (limine-bios-cd.bin) and UEFI
# (limine-uefi-cd.bin); with the `limine` host utility it is also made
# bootable as a BIOS disk (e.g. dd'd to a USB stick).
set -euo pipefail
kernel=$1 out=$2 cmdline=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
limine_dir=$("$here/limine-dir.sh")
stage=$(mktemp -d "${TMPDIR:-/tmp}/baton-iso.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/boot/limine" "$stage/EFI/BOOT"
cp "$kernel" "$stage/boot/baton"
"$here/limine-conf.sh" "$cmdline" > "$stage/boot/limine/limine.conf"
cp "$limine_dir/limine-bios.sys" "$limine_dir/limine-bios-cd.bin" \
   "$limine_dir/limine-uefi-cd.bin" "$stage/boot/limine/"
cp "$limine_dir/BOOTX64.EFI" "$stage/EFI/BOOT/"

mkdir -p "$(dirname "$out")"
xorriso -as mkisofs -quiet -R -r -J \
    -b boot/limine/limine-bios-cd.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
    -hfsplus -apm-block-size 2048 \
    --efi-boot boot/limine/limine-uefi-cd.bin -efi-boot-part --efi-boot-image \
    --protective-msdos-label "$stage" -o "$out" 2>/dev/null

limine_tool=$(command -v limine || true)
[ -z "$limine_tool" ] && [ -x "$limine_dir/limine" ] && limine_tool=$limine_dir/limine
if [ -n "$limine_tool" ]; then
    "$limine_tool" bios-install "$out" >/dev/null 2>&1
fi
