#!/usr/bin/env bash
# mkhdd.sh KERNEL OUTPUT.hdd [CMDLINE]   (default: $BATON_CMDLINE)
# A GPT disk image with one EFI system partition (FAT32) holding Limine,
# limine.conf and the kernel: boots under UEFI, and under BIOS too when the
# `limine` host utility that matches the release is available to install
# its BIOS stages (see limine-tool.sh).
#
# With SECURE_BOOT=1 SB_KEY=key.pem SB_CERT=cert.pem the chain is verified
# end to end under UEFI Secure Boot (docs/boot-chains.md): limine.conf
# names the kernel with its BLAKE2B hash, the config's own hash is enrolled
# into Limine's executable (`limine enroll-config`), and that executable is
# then signed with the key (sbsign), whose certificate the firmware's db
# must trust.
set -euo pipefail
kernel=$1 out=$2
# The command line: the third argument, else $BATON_CMDLINE (how the
# Makefile passes CMDLINE, untouched by the shell).
if [ $# -ge 3 ]; then cmdline=$3; else cmdline=${BATON_CMDLINE-}; fi
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "mkhdd: $*" >&2; exit 1; }
case ${SECURE_BOOT:-} in
    ""|0) secure=false ;;
    1) secure=true ;;
    *) fail "SECURE_BOOT=$SECURE_BOOT: give SECURE_BOOT=1 (or leave it unset)" ;;
esac
if $secure; then
    [ -n "${SB_KEY:-}" ] && [ -n "${SB_CERT:-}" ] \
        || fail "SECURE_BOOT=1 needs SB_KEY=<key.pem> SB_CERT=<cert.pem>: the key to sign Limine with and its certificate, which your firmware's db must trust (docs/boot-chains.md)"
    [ -r "$SB_KEY" ] || fail "SB_KEY=$SB_KEY: no such readable file"
    [ -r "$SB_CERT" ] || fail "SB_CERT=$SB_CERT: no such readable file"
    for tool in sbsign sbverify b2sum; do
        command -v "$tool" >/dev/null 2>&1 \
            || fail "SECURE_BOOT=1 needs \`$tool\` (Debian and Ubuntu: apt-get install sbsigntool coreutils)"
    done
fi

limine_dir=$("$here/limine-dir.sh")
limine_tool=$("$here/limine-tool.sh" "$limine_dir")
if $secure && [ -z "$limine_tool" ]; then
    fail "SECURE_BOOT=1 needs the \`limine\` host utility of the release in $limine_dir to enroll the config's hash (build it with \`make -C $limine_dir\`)"
fi
stage=$(mktemp -d "${TMPDIR:-/tmp}/baton-hdd.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# What the image carries (and Secure Boot hashes): the kernel without its
# debug information.
"$here/image-kernel.sh" "$kernel" "$stage/baton"
kernel=$stage/baton

efi="$limine_dir/BOOTX64.EFI"
if $secure; then
    # Order matters: the config names the kernel's hash, Limine holds the
    # config's, and the signature covers Limine as enrolled.
    "$here/limine-conf.sh" "$cmdline" "$(b2sum "$kernel" | cut -d' ' -f1)" > "$stage/limine.conf"
    cp "$efi" "$stage/BOOTX64.EFI"
    chmod u+w "$stage/BOOTX64.EFI"
    if ! log=$("$limine_tool" enroll-config "$stage/BOOTX64.EFI" \
        "$(b2sum "$stage/limine.conf" | cut -d' ' -f1)" 2>&1); then
        printf '%s\n' "$log" >&2
        fail "\`$limine_tool enroll-config\` failed (output above)"
    fi
    # sbsign asks for the passphrase of an encrypted key on the terminal.
    if ! log=$(sbsign --key "$SB_KEY" --cert "$SB_CERT" \
        --output "$stage/BOOTX64.signed" "$stage/BOOTX64.EFI" 2>&1); then
        printf '%s\n' "$log" >&2
        fail "sbsign failed (output above)"
    fi
    sbverify --cert "$SB_CERT" "$stage/BOOTX64.signed" >/dev/null 2>&1 \
        || fail "the signed Limine does not verify against $SB_CERT"
    efi="$stage/BOOTX64.signed"
else
    "$here/limine-conf.sh" "$cmdline" > "$stage/limine.conf"
fi

mkdir -p "$(dirname "$out")"
rm -f "$out"
# 64 MiB: partition 1, the EFI system partition, from 1 MiB to 62 MiB;
# partition 2, a BIOS boot partition of 1 MiB, for Limine's BIOS stage 2
# (8.2 and 9.6.7 can embed it in the GPT's own structures instead; the
# \`bios-install\` of 11.4.1 installs it into such a partition only).
esp_sectors=$(( 61 * 2048 ))
truncate -s 64M "$out"
printf 'label: gpt\nstart=2048, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"\nstart=%d, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot"\n' \
    "$esp_sectors" $(( 2048 + esp_sectors )) | "$(command -v sfdisk || echo /sbin/sfdisk)" --quiet "$out"
# The file system is made apart and copied in: mformat on the disk would
# size it to the end of the disk, over the BIOS boot partition.
esp="$stage/esp.img"
truncate -s $(( esp_sectors * 512 )) "$esp"
mformat -i "$esp" -F -v BATON ::
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/boot ::/boot/limine
mcopy -i "$esp" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$limine_dir/limine-bios.sys" "$stage/limine.conf" ::/boot/limine/
mcopy -i "$esp" "$kernel" ::/boot/baton
dd if="$esp" of="$out" bs=1M seek=1 conv=notrunc status=none

if [ -n "$limine_tool" ]; then
    if ! log=$("$limine_tool" bios-install "$out" 2 2>&1); then
        printf '%s\n' "$log" >&2
        echo "mkhdd: \`$limine_tool bios-install $out 2\` failed (output above)" >&2
        rm -f "$out"
        exit 1
    fi
else
    echo "note: $out boots under UEFI only" >&2
fi
if $secure; then
    echo "mkhdd: $out: Limine signed with $SB_CERT, limine.conf's BLAKE2B enrolled in it, the kernel's in limine.conf" >&2
fi
