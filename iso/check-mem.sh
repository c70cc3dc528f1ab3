#!/usr/bin/env bash
# check-mem.sh BOOT MEM [KERNEL]   (BOOT: uefi-cd, uefi-usb or bios)
# Succeeds when QEMU's `-m MEM` gives the guest enough RAM for the firmware
# and Limine to start the kernel file KERNEL (default: a release build of
# the reference size below) booted as BOOT; otherwise prints why and fails.
# `check-mem.sh --mib MEM` prints the size QEMU makes of MEM, in MiB.
#
# MEM is read as QEMU reads `-m`: `[size=]N[suffix][,option...]`, where a
# plain number counts MiB (decimal, or hexadecimal with 0x) and a suffix
# B, K, M, G, T, P or E (either case) scales it, with a decimal fraction
# allowed above bytes (1.5G); 0 means QEMU's default of 128 MiB; the size
# is rounded up to 8 KiB.
set -euo pipefail

# The least RAM, in KiB, with which each boot gets a kernel file of
# REF_KERNEL_BYTES (baton's release build, with debug info) to power the
# machine off, bisected to QEMU's 8 KiB granule with QEMU 7.2 (q35, TCG),
# Debian 12's OVMF (edk2 2022.11) and SeaBIOS 1.16.2, and Limine 8.2;
# 8 KiB less fails (see docs/booting.md). Just below, under OVMF Limine
# panics with "High memory allocator: Out of memory" while it reads the
# kernel (on the screen only); under SeaBIOS baton itself stops with
# "mm: heap: out of physical memory", and lower Limine panics.
REF_KERNEL_BYTES=9026672
REF_KERNEL_LOADED=2130093
MIN_UEFI_CD=129464
MIN_UEFI_USB=133280
MIN_BIOS=12952
# Limine reads the whole kernel file into memory: what a kernel file has
# beyond the reference is added. Measured: a file 16 MiB larger needed
# 16 MiB more in each boot, and the minima of a 7756816-byte kernel
# (128224, 132040 KiB under OVMF) plus this file's 1240 KiB more came
# within 1 KiB of the ones above. A smaller file needs less, which the
# minimum does not count on. Under SeaBIOS, where baton's own memory runs
# out first, what its loaded segments (REF_KERNEL_LOADED bytes here) grow
# by is added too: 12936 KiB sufficed for the reference, 14240 KiB (this
# minimum plus both excesses) for a kernel file of 10133904 bytes loading
# 2340741.

# The guest RAM in bytes for a QEMU `-m` value, or nothing if QEMU would
# refuse it.
bytes() {
    local v=$1 num unit=M
    v=${v#"${v%%[![:space:]]*}"}
    v=${v#size=}
    v=${v%%,*}
    if [[ $v =~ ^(0[xX][0-9a-fA-F]+|[0-9]+(\.[0-9]*)?)([bBkKmMgGtTpPeE]?)$ ]]; then
        num=${BASH_REMATCH[1]}
        [ -n "${BASH_REMATCH[3]}" ] && unit=${BASH_REMATCH[3]^^}
    else
        return 0
    fi
    # A fraction needs a suffix above bytes: plain numbers are whole MiB.
    if [[ $num == *.* ]] && [[ -z ${BASH_REMATCH[3]} || $unit == B ]]; then
        return 0
    fi
    [[ $num == 0[xX]* ]] && num=$((num))
    awk -v n="$num" -v u="$unit" 'BEGIN {
        s = index("BKMGTPE", u) - 1
        b = n; for (i = 0; i < s; i++) b *= 1024
        if (b >= 2^64) exit
        if (b == 0) b = 128 * 1024 * 1024
        b = int((b + 8191) / 8192) * 8192
        printf "%.0f\n", b
    }'
}

mib() { awk -v b="$1" 'BEGIN { printf "%g", b / 1048576 }'; }

# loaded FILE: the bytes the PT_LOAD segments of ELF64 file FILE take in
# memory (0 for anything else).
loaded() {
    local f=$1 phoff phentsize phnum i off total=0
    [ "$(od -An -t x1 -N 5 "$f" | tr -d ' \n')" = 7f454c4602 ] || { echo 0; return; }
    phoff=$(od -An -t u8 -j 32 -N 8 "$f" | tr -d ' ')
    phentsize=$(od -An -t u2 -j 54 -N 2 "$f" | tr -d ' ')
    phnum=$(od -An -t u2 -j 56 -N 2 "$f" | tr -d ' ')
    for ((i = 0; i < phnum; i++)); do
        off=$((phoff + i * phentsize))
        [ "$(od -An -t u4 -j "$off" -N 4 "$f" | tr -d ' ')" = 1 ] || continue
        total=$((total + $(od -An -t u8 -j $((off + 40)) -N 8 "$f" | tr -d ' ')))
    done
    echo "$total"
}

boot=${1:-} mem=${2-} kernel=${3:-}
if [ "$boot" = --mib ]; then
    b=$(bytes "$mem")
    [ -n "$b" ] || exit 1
    mib "$b"
    echo
    exit 0
fi
case $boot in
uefi-cd) min=$MIN_UEFI_CD what="OVMF and Limine need to boot baton's ISO" ;;
uefi-usb) min=$MIN_UEFI_USB what="OVMF and Limine need to boot baton's disk image from USB" ;;
bios) min=$MIN_BIOS what="SeaBIOS, Limine and baton need to boot baton's ISO" ;;
*) echo "usage: check-mem.sh uefi-cd|uefi-usb|bios MEM [KERNEL] | --mib MEM" >&2; exit 2 ;;
esac
with=""
if [ -n "$kernel" ] && [ -f "$kernel" ]; then
    size=$(stat -c %s "$kernel")
    excess=$((size > REF_KERNEL_BYTES ? size - REF_KERNEL_BYTES : 0))
    if [ "$boot" = bios ]; then
        load=$(loaded "$kernel")
        excess=$((excess + (load > REF_KERNEL_LOADED ? load - REF_KERNEL_LOADED : 0)))
    fi
    if [ "$excess" -gt 0 ]; then
        min=$(( min + (excess + 1023) / 1024 ))
        with=" with a kernel file of $(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }') MiB ($kernel)"
    fi
fi

if [ -z "$mem" ]; then
    echo "MEM is empty: give the guest's RAM, e.g. MEM=1G" >&2
    exit 1
fi
b=$(bytes "$mem")
if [ -z "$b" ]; then
    echo "MEM=$mem is not a size QEMU's -m takes: give MiB (MEM=512) or a" \
         "K, M, G or T suffix (MEM=1536K, MEM=1.5G)" >&2
    exit 1
fi
if awk -v b="$b" -v m="$min" 'BEGIN { exit !(b < m * 1024) }'; then
    need=$(( (min + 1023) / 1024 ))
    least="$min KiB ($(awk -v k="$min" 'BEGIN { printf "%.1f", k / 1024 }') MiB)"
    case $boot in
    bios) why="baton stops for want of memory, or lower Limine halts with nothing on the serial line" ;;
    *) why="Limine runs out of memory and halts, often with nothing on the serial line (far less: OVMF crashes)" ;;
    esac
    echo "MEM=$mem ($(mib "$b") MiB) is below the $least that $what$with:" \
         "with less, $why. Give MEM=${need}M or more (the default is 1G)$(
         [ "$boot" = bios ] || echo "; make run-bios needs less")" >&2
    exit 1
fi
