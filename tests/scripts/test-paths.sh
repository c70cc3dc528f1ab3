# A wrong OVMF=, OVMF_CODE=, OVMF_VARS= or LIMINE_DIR= is a typo: make and
# iso/deps.sh must stop at once, naming the variable, the path and what is
# missing there, before installing, cloning or building anything.
source "$(dirname "$0")/lib.sh"

code=$scratch/code.fd vars=$scratch/vars.fd
touch "$code" "$vars"
partial=$scratch/limine
mkdir -p "$partial"
touch "$partial/BOOTX64.EFI" "$partial/limine-uefi-cd.bin"

refused "make run OVMF=missing" "OVMF=/nonexistent/OVMF.fd: no such file" \
    make run OVMF=/nonexistent/OVMF.fd
refused "make run OVMF=a directory" "OVMF=$scratch is a directory" \
    make run OVMF="$scratch"
refused "make run OVMF_CODE=missing" "OVMF_CODE=/nonexistent/CODE.fd: no such file" \
    make run OVMF_CODE=/nonexistent/CODE.fd OVMF_VARS="$vars"
refused "make run OVMF_VARS=missing" "OVMF_VARS=/nonexistent/VARS.fd: no such file" \
    make run OVMF_CODE="$code" OVMF_VARS=/nonexistent/VARS.fd
refused "make run OVMF_CODE without OVMF_VARS" "set both OVMF_CODE and OVMF_VARS" \
    make run OVMF_CODE="$code"
# Nothing is built either, whatever order make runs the targets in.
refused "make iso OVMF=missing" "OVMF=/nonexistent/OVMF.fd: no such file" \
    make iso OVMF=/nonexistent/OVMF.fd
refused "make -j4 run-hdd OVMF_VARS=missing" "OVMF_VARS=/nonexistent/VARS.fd: no such file" \
    make -j4 run-hdd OVMF_CODE="$code" OVMF_VARS=/nonexistent/VARS.fd
refused "make test OVMF=missing" "OVMF=/nonexistent/OVMF.fd: no such file" \
    make test OVMF=/nonexistent/OVMF.fd
refused "make run LIMINE_DIR=missing" "LIMINE_DIR=/nonexistent/limine: no such directory" \
    make run LIMINE_DIR=/nonexistent/limine
refused "make iso LIMINE_DIR=missing" "LIMINE_DIR=/nonexistent/limine: no such directory" \
    make iso LIMINE_DIR=/nonexistent/limine
refused "make run-bios LIMINE_DIR=incomplete" \
    "LIMINE_DIR=$partial lacks limine-bios-cd.bin limine-bios.sys" \
    make run-bios LIMINE_DIR="$partial"
refused "make run LIMINE_DIR=a file" "LIMINE_DIR=$code is not a directory" \
    make run LIMINE_DIR="$code"
refused "deps.sh OVMF=missing" "OVMF=/nonexistent/OVMF.fd: no such file" \
    env OVMF=/nonexistent/OVMF.fd iso/deps.sh
refused "deps.sh LIMINE_DIR=missing" "LIMINE_DIR=/nonexistent/limine: no such directory" \
    env LIMINE_DIR=/nonexistent/limine iso/deps.sh

# Paths that are right pass the check (the dry run builds nothing).
complete=$scratch/limine-complete
mkdir -p "$complete"
touch "$complete"/{BOOTX64.EFI,limine-uefi-cd.bin,limine-bios-cd.bin,limine-bios.sys}
accepted "make -n run with existing split images and Limine" \
    make -n run OVMF_CODE="$code" OVMF_VARS="$vars" LIMINE_DIR="$complete"
accepted "make -n run with an existing OVMF" make -n run OVMF="$code" LIMINE_DIR="$complete"
finish
