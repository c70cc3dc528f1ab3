#!/usr/bin/env bash
# limine-tool.sh [LIMINE_DIR]
# Prints the path of the `limine` host utility to run `bios-install` with,
# or nothing (and a note on stderr) when there is none that fits.
#
# `bios-install` writes the BIOS stage built into it into the image, and
# that stage stops with "limine-bios.sys build ID mismatch" next to a
# `limine-bios.sys` from another build: the tool must come from the
# release in LIMINE_DIR (default: what
# limine-dir.sh finds). So the release's own tool comes first
# (LIMINE_DIR/limine, built there with `make`); a `limine` on PATH is used
# only when its `--version` is the release's version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
limine_dir=${1:-$("$here/limine-dir.sh")}

if [ -x "$limine_dir/limine" ] && [ ! -d "$limine_dir/limine" ]; then
    echo "$limine_dir/limine"
    exit 0
fi
on_path=$(command -v limine || true)
if [ -z "$on_path" ]; then
    echo "note: no \`limine\` host utility (neither $limine_dir/limine nor one on PATH)" >&2
    exit 0
fi

# The release's version: limine.c (shipped with the binary release) says
# it; failing that, the BIOS stage carries its "Limine X.Y.Z" banner.
release=""
if [ -f "$limine_dir/limine.c" ]; then
    release=$(sed -n 's/^#define LIMINE_VERSION "\(.*\)"$/\1/p' "$limine_dir/limine.c" | head -n 1 || true)
fi
if [ -z "$release" ]; then
    release=$(grep -aoE 'Limine [0-9]+\.[0-9]+(\.[0-9]+)?' "$limine_dir/limine-bios.sys" 2>/dev/null \
        | head -n 1 | sed 's/^Limine //' || true)
fi
tool=$("$on_path" --version 2>/dev/null | sed -n '1s/^Limine \([0-9][0-9.]*\).*/\1/p' || true)

if [ -z "$release" ] || [ -z "$tool" ]; then
    echo "warning: cannot tell whether $on_path (version ${tool:-unknown}) matches the Limine" \
         "release in $limine_dir (version ${release:-unknown}); using it anyway" >&2
    echo "$on_path"
elif [ "$release" = "$tool" ]; then
    echo "$on_path"
else
    echo "note: $on_path is Limine $tool but the release in $limine_dir is $release;" \
         "not using it (build the release's own with \`make -C $limine_dir\`, or put" \
         "Limine $release's \`limine\` first on PATH)" >&2
fi
