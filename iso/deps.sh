#!/usr/bin/env bash
# Checks every prerequisite of `make run` / `make test`, installs what it
# can (rustup target, Debian/Ubuntu packages) and prints the exact command
# for what it cannot.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing_pkgs=()
problems=0

have() { command -v "$1" >/dev/null 2>&1; }
# sfdisk lives in /sbin on Debian, which is not on every user's PATH.
have_sbin() { have "$1" || [ -x "/sbin/$1" ] || [ -x "/usr/sbin/$1" ]; }

if ! have cargo; then
    echo "deps: Rust is missing. Install it with:"
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
    problems=1
elif have rustup; then
    if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
        echo "deps: adding the x86_64-unknown-none target"
        rustup target add x86_64-unknown-none || problems=1
    fi
    for c in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
            rustup component add "$c" || problems=1
        fi
    done
fi

have qemu-system-x86_64 || missing_pkgs+=(qemu-system-x86)
have xorriso || missing_pkgs+=(xorriso)
have mformat || missing_pkgs+=(mtools)
have_sbin sfdisk || missing_pkgs+=(fdisk)
"$here/find-ovmf.sh" >/dev/null 2>&1 || missing_pkgs+=(ovmf)

if [ ${#missing_pkgs[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if have apt-get; then
        echo "deps: installing ${missing_pkgs[*]}"
        if ! { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing_pkgs[@]}"; } >/dev/null; then
            echo "deps: could not install; run: $sudo apt-get install ${missing_pkgs[*]}"
            problems=1
        fi
    else
        echo "deps: missing ${missing_pkgs[*]}; install them with your distribution's package manager"
        problems=1
    fi
fi

if ! "$here/limine-dir.sh" >/dev/null; then
    problems=1
fi
exit $problems
