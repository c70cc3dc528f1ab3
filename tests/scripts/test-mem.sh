# make run, debug and run-hdd refuse a MEM below what OVMF and Limine need
# to reach baton, run-bios one below what SeaBIOS and Limine need, with
# the reason, before building or booting anything; they accept the
# minimum itself. MEM is read as QEMU's -m reads it, which the last test
# checks against the QEMU installed here.
source "$(dirname "$0")/lib.sh"

# The minima measured for iso/check-mem.sh (in KiB), for a kernel file of
# the reference size or smaller; QEMU's granule is 8 KiB.
uefi_cd=129464 uefi_usb=133280 bios=12952
below() { echo "$(($1 - 8))K"; }

# make checks MEM against the image's copy of the kernel it last built,
# $(BUILD)/baton-image: none
# here, so the reference minima apply, whatever this checkout has built.
export BUILD=$scratch/build

refused "make run MEM=64M" "MEM=64M (64 MiB) is below the $uefi_cd KiB (126.4 MiB) that OVMF and Limine need" \
    make run MEM=64M
refused "make run MEM=64 (plain MiB)" "MEM=64 (64 MiB) is below the $uefi_cd KiB" \
    make run MEM=64
refused "make run MEM=0.1g" "is below the $uefi_cd KiB" make run MEM=0.1g
refused "make -n run just below the minimum" "is below the $uefi_cd KiB" \
    make -n run MEM="$(below $uefi_cd)"
accepted "make -n run at the minimum" make -n run MEM=${uefi_cd}K
refused "make -n debug just below the minimum" "is below the $uefi_cd KiB" \
    make -n debug MEM="$(below $uefi_cd)"
accepted "make -n debug at the minimum" make -n debug MEM=${uefi_cd}K
refused "make -n run-hdd just below the minimum" \
    "is below the $uefi_usb KiB (130.2 MiB) that OVMF and Limine need to boot baton's disk image" \
    make -n run-hdd MEM="$(below $uefi_usb)"
accepted "make -n run-hdd at the minimum" make -n run-hdd MEM=${uefi_usb}K
refused "make -n run-bios just below the minimum" \
    "is below the $bios KiB (12.6 MiB) that SeaBIOS, Limine and baton need" \
    make -n run-bios MEM="$(below $bios)"
accepted "make -n run-bios at the minimum" make -n run-bios MEM=${bios}K
accepted "make -n run with the default MEM" make -n run
accepted "make -n run MEM=0x100 (hexadecimal MiB)" make -n run MEM=0x100
# A larger kernel file needs as much more memory: Limine reads it whole.
# The parse-time check sees the kernel last built, the recipe's the one
# it boots (both through check-mem.sh's third argument).
mkdir -p "$scratch/big"
truncate -s 24532408 "$scratch/big/baton-image"
refused "make -n run with a 23.4 MiB kernel, 1 MiB short" \
    "is below the 144607 KiB (141.2 MiB) that OVMF and Limine need to boot baton's ISO with a kernel file of 23.4 MiB" \
    make -n run MEM=141M BUILD="$scratch/big"
accepted "make -n run with a 23.4 MiB kernel, enough memory" \
    make -n run MEM=142M BUILD="$scratch/big"
refused "check-mem.sh with a 23.4 MiB kernel, 1 MiB short" "is below the 148423 KiB (144.9 MiB)" \
    iso/check-mem.sh uefi-usb 144M "$scratch/big/baton-image"
# Under SeaBIOS the kernel's loaded segments count too: an ELF file of
# the reference size whose one PT_LOAD segment takes 1 MiB more than the
# reference kernel's.
elf=$scratch/loads-more/baton
mkdir -p "$(dirname "$elf")"
# le VALUE BYTES: VALUE as BYTES little-endian bytes.
le() {
    local v=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        printf "$(printf '\\%03o' $(((v >> (8 * i)) & 255)))"
    done
}
{
    printf '\177ELF\002\001\001'; le 0 9                # identification
    le 2 2; le 62 2; le 1 4; le 0 8; le 64 8; le 0 8     # type, machine, version, entry, phoff, shoff
    le 0 4; le 64 2; le 56 2; le 1 2; le 0 2; le 0 2; le 0 2
    le 1 4; le 5 4; le 0 8; le 0 8; le 0 8              # PT_LOAD, flags, offset, vaddr, paddr
    le 0 8; le $((2130093 + 1048576)) 8; le 4096 8      # filesz, memsz, align
} > "$elf"
truncate -s 9026672 "$elf"
refused "check-mem.sh bios with 1 MiB more loaded, 8 KiB short" \
    "is below the $((bios + 1024)) KiB" iso/check-mem.sh bios "$((bios + 1024 - 8))K" "$elf"
accepted "check-mem.sh bios with 1 MiB more loaded, enough memory" \
    iso/check-mem.sh bios "$((bios + 1024))K" "$elf"
accepted "check-mem.sh uefi-cd does not count the loaded segments" \
    iso/check-mem.sh uefi-cd "${uefi_cd}K" "$elf"
refused "make run MEM=128MB" "MEM=128MB is not a size QEMU's -m takes" make run MEM=128MB
refused "make run MEM=1.5" "MEM=1.5 is not a size QEMU's -m takes" make run MEM=1.5
refused "make run MEM=" "MEM is empty" make run MEM=

# What iso/check-mem.sh makes of a value must be what QEMU makes of it:
# QEMU's own answer (query-memory-size-summary over QMP, the guest halted
# before its first instruction), or its refusal.
name="MEM parsed as QEMU parses -m"
qemu_mib() {
    local reply
    reply=$(printf '%s\n' '{"execute":"qmp_capabilities"}' \
        '{"execute":"query-memory-size-summary"}' '{"execute":"quit"}' |
        timeout 20 qemu-system-x86_64 -M q35 -accel tcg -S -display none -nodefaults \
            -qmp stdio -m "$1" 2>/dev/null)
    [[ $reply =~ \"base-memory\":\ ([0-9]+) ]] || { echo refused; return; }
    awk -v b="${BASH_REMATCH[1]}" 'BEGIN { printf "%g\n", b / 1048576 }'
}
: > "$out"
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "qemu-system-x86_64 is not installed (make deps installs it)" > "$out"
    fail "cannot compare with QEMU"
else
    for m in 128 128M 128m 1.5G 131072K 0.125g 1.G size=128M 128M,maxmem=2G \
             0x80 00128 134217729B 100.3M 1 0 128MB 1.5 1.5B .5G 12X 128E; do
        want=$(qemu_mib "$m")
        got=$(iso/check-mem.sh --mib "$m" 2>/dev/null || echo refused)
        echo "-m $m: QEMU $want, check-mem.sh $got" >> "$out"
        [ "$want" = "$got" ] || mismatch=1
    done
    if [ -n "${mismatch:-}" ]; then fail "check-mem.sh and QEMU disagree"; else pass; fi
fi
finish
