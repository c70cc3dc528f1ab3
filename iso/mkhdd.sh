#!/usr/bin/env bash
# mkhdd.sh KERNEL OUTPUT.hdd [CMDLINE]   (default: $BATON_CMDLINE)
# A GPT disk image with one EFI system partition (FAT32) holding Limine,
# limine.conf and the kernel: boots under UEFI, and under BIOS too when the
# `limine` host utility that matches the release is available to install
# its BIOS stages (see limine-tool.sh).
set -euo pipefail
kernel=$1 out=$2
# The command line: the third argument, else $BATON_CMDLINE (how the
# Makefile passes CMDLINE, untouched by the shell).
if [ $# -ge 3 ]; then cmdline=$3; else cmdline=${BATON_CMDLINE-}; fi
here=$(cd "$(dirname "$0")" && pwd)
limine_dir=$("$here/limine-dir.sh")
stage=$(mktemp -d "${TMPDIR:-/tmp}/baton-hdd.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$(dirname "$out")"
rm -f "$out"
truncate -s 64M "$out"
# Partition 1: from 1 MiB to the end, EFI system partition.
printf 'label: gpt\nstart=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"\n' \
    | "$(command -v sfdisk || echo /sbin/sfdisk)" --quiet "$out"
img="$out@@1M"
mformat -i "$img" -F -v BATON ::
mmd -i "$img" ::/EFI ::/EFI/BOOT ::/boot ::/boot/limine
"$here/limine-conf.sh" "$cmdline" > "$stage/limine.conf"
mcopy -i "$img" "$limine_dir/BOOTX64.EFI" ::/EFI/BOOT/
mcopy -i "$img" "$limine_dir/limine-bios.sys" "$stage/limine.conf" ::/boot/limine/
mcopy -i "$img" "$kernel" ::/boot/baton

limine_tool=$("$here/limine-tool.sh" "$limine_dir")
if [ -n "$limine_tool" ]; then
    if ! log=$("$limine_tool" bios-install "$out" 2>&1); then
        printf '%s\n' "$log" >&2
        echo "mkhdd: \`$limine_tool bios-install $out\` failed (output above)" >&2
        rm -f "$out"
        exit 1
    fi
else
    echo "note: $out boots under UEFI only" >&2
fi
