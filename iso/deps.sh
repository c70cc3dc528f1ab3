#!/usr/bin/env bash
# Checks every prerequisite of `make run` / `make test`, installs what it
# can (rustup target, Debian/Ubuntu packages) and prints the exact command
# for what it cannot.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# A path the user gave that is wrong is a typo, not a missing package:
# stop before installing anything.
"$here/check-paths.sh" || exit 1
missing_pkgs=()
problems=0

have() { command -v "$1" >/dev/null 2>&1; }
# sfdisk lives in /sbin on Debian, which is not on every user's PATH.
have_sbin() { have "$1" || [ -x "/sbin/$1" ] || [ -x "/usr/sbin/$1" ]; }

# The repository's rust-toolchain.toml picks the toolchain, so rustup and
# rustc are asked from the repository's root.
root=$(cd "$here/.." && pwd)
cd "$root"
target=x86_64-unknown-none

if ! have cargo; then
    echo "deps: Rust is missing. Install it with:"
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
    problems=1
elif have rustup; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        echo "deps: adding the $target target"
        if ! rustup target add "$target"; then
            echo "deps: could not add the target; run, in $root:"
            echo "  rustup target add $target"
            problems=1
        fi
    fi
    for c in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
            if ! rustup component add "$c"; then
                echo "deps: could not add $c; run, in $root:"
                echo "  rustup component add $c"
                problems=1
            fi
        fi
    done
else
    # A Rust without rustup (a distribution's package): the target's
    # standard library must be in the sysroot; `rustc --print target-list`
    # lists every target rustc knows, installed or not.
    sysroot=$(rustc --print sysroot 2>/dev/null || true)
    if [ -z "$sysroot" ] || [ ! -d "$sysroot/lib/rustlib/$target" ]; then
        echo "deps: this Rust (${sysroot:-rustc not found}) has no standard library for $target,"
        echo "  and there is no rustup to add it. Install Rust through rustup:"
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
        echo "  then, in $root: rustup target add $target"
        problems=1
    fi
    for c in fmt clippy; do
        if ! cargo "$c" --version >/dev/null 2>&1; then
            echo "deps: \`cargo $c\` is missing (needed by \`make test\`); install" \
                 "$([ "$c" = fmt ] && echo rustfmt || echo clippy) from your distribution, or Rust through rustup"
            problems=1
        fi
    done
fi

have qemu-system-x86_64 || missing_pkgs+=(qemu-system-x86)
have xorriso || missing_pkgs+=(xorriso)
have mformat || missing_pkgs+=(mtools)
have_sbin sfdisk || missing_pkgs+=(fdisk)
"$here/find-ovmf.sh" --check >/dev/null 2>&1 || missing_pkgs+=(ovmf)
# git only clones Limine when no release is installed (iso/limine-dir.sh).
have git || "$here/limine-dir.sh" --no-clone >/dev/null 2>&1 || missing_pkgs+=(git)

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
