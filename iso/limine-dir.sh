#!/usr/bin/env bash
# Prints the directory holding Limine's release files, or explains what is
# missing and fails. Order: $LIMINE_DIR, /usr/share/limine (where
# distribution packages put it), then a clone of the upstream binary
# branch pinned to a release, in $BUILD_DIR/limine. With --no-clone it
# only looks.
set -euo pipefail
no_clone=false
[ "${1:-}" = --no-clone ] && no_clone=true

LIMINE_BRANCH=${LIMINE_BRANCH:-v8.2.0-binary}
LIMINE_URL=${LIMINE_URL:-https://github.com/limine-bootloader/limine.git}
BUILD_DIR=${BUILD_DIR:-build}
NEEDED="BOOTX64.EFI limine-uefi-cd.bin limine-bios-cd.bin limine-bios.sys"

complete() {
    local d=$1 f
    for f in $NEEDED; do [ -f "$d/$f" ] || return 1; done
}

if [ -n "${LIMINE_DIR:-}" ]; then
    if complete "$LIMINE_DIR"; then echo "$LIMINE_DIR"; exit 0; fi
    if [ ! -e "$LIMINE_DIR" ]; then
        echo "LIMINE_DIR=$LIMINE_DIR: no such directory" \
             "(it should hold Limine's binary release: $NEEDED)" >&2
    elif [ ! -d "$LIMINE_DIR" ]; then
        echo "LIMINE_DIR=$LIMINE_DIR is not a directory" \
             "(it should hold Limine's binary release: $NEEDED)" >&2
    else
        missing=()
        for f in $NEEDED; do [ -f "$LIMINE_DIR/$f" ] || missing+=("$f"); done
        if [ "${missing[*]}" = "$NEEDED" ]; then
            echo "LIMINE_DIR=$LIMINE_DIR holds none of Limine's release files" \
                 "($NEEDED): point it at Limine's binary release" >&2
        else
            echo "LIMINE_DIR=$LIMINE_DIR lacks ${missing[*]}" \
                 "(Limine's binary release holds $NEEDED)" >&2
        fi
    fi
    exit 1
fi
if complete /usr/share/limine; then echo /usr/share/limine; exit 0; fi
if complete "$BUILD_DIR/limine"; then echo "$BUILD_DIR/limine"; exit 0; fi

if $no_clone; then
    echo "Limine not found in /usr/share/limine or $BUILD_DIR/limine" >&2
    exit 1
fi
if command -v git >/dev/null 2>&1; then
    echo "Limine not found in /usr/share/limine; cloning $LIMINE_URL ($LIMINE_BRANCH)" >&2
    rm -rf "$BUILD_DIR/limine"
    if git clone --quiet --depth=1 --branch="$LIMINE_BRANCH" "$LIMINE_URL" "$BUILD_DIR/limine" >&2 \
        && complete "$BUILD_DIR/limine"; then
        echo "$BUILD_DIR/limine"
        exit 0
    fi
else
    echo "Limine not found in /usr/share/limine, and git is not installed to clone it" >&2
fi
cat >&2 <<MSG
Limine's release files are not available. Provide them in one of these ways:
  - install Limine's binary release into /usr/share/limine (see DEVELOPERS.md);
  - point LIMINE_DIR at a directory holding $NEEDED;
  - install git and allow network access so that the build can clone
    $LIMINE_URL (branch $LIMINE_BRANCH).
MSG
exit 1
