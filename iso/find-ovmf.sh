#!/usr/bin/env bash
# find-ovmf.sh                 the path of a combined OVMF.fd, for `-bios`:
#                              $OVMF if set, else the usual distribution paths
#                              (none with OVMF_PFLASH=1: the boot tests then
#                              run their -bios cases on pflash OVMF)
# find-ovmf.sh --check         succeeds when either kind of firmware is there
# find-ovmf.sh --check-given   checks only the paths given in $OVMF, $OVMF_CODE
#                              and $OVMF_VARS: each must be a file, and the
#                              split images come in pairs (a typo must stop
#                              the build before `make deps` installs OVMF)
# find-ovmf.sh --qemu VARS.fd  QEMU's firmware arguments, one per line:
#                              `-bios OVMF.fd`, or else OVMF's split images as
#                              two pflash drives, the code read-only and a
#                              fresh writable copy of the variable store in
#                              VARS.fd (as the boot tests run pflash OVMF)
#
# Newer distributions ship only the split OVMF_CODE*.fd / OVMF_VARS*.fd.
# For --check and --qemu: $OVMF (a combined image) wins; then $OVMF_CODE
# with $OVMF_VARS (split); then a combined image from the usual paths,
# unless OVMF_PFLASH=1; then the split images from the usual paths (the
# same list, in the same order, as tests/src/config.rs).
set -euo pipefail

# given VAR: fails, naming the variable and its path, unless the file that
# $VAR names exists.
given() {
    local var=$1 path=${!1}
    if [ -f "$path" ]; then
        return 0
    elif [ -d "$path" ]; then
        echo "$var=$path is a directory, not an OVMF image (a file such as OVMF.fd)" >&2
    elif [ -e "$path" ]; then
        echo "$var=$path is not a regular file" >&2
    else
        echo "$var=$path: no such file" >&2
    fi
    exit 1
}

pair() {
    if [ -n "${OVMF_CODE:-}${OVMF_VARS:-}" ] && { [ -z "${OVMF_CODE:-}" ] || [ -z "${OVMF_VARS:-}" ]; }; then
        echo "set both OVMF_CODE and OVMF_VARS (or neither): OVMF_CODE=${OVMF_CODE:-} OVMF_VARS=${OVMF_VARS:-}" >&2
        exit 1
    fi
}

combined() {
    if [ -n "${OVMF:-}" ]; then
        given OVMF; echo "$OVMF"; return 0
    fi
    local f
    for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/qemu/OVMF.fd \
             /usr/share/edk2/x64/OVMF.fd /usr/share/edk2-ovmf/x64/OVMF.fd \
             /usr/share/edk2/ovmf/OVMF.fd; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# Prints the code and the variable-store template, one per line.
split() {
    if [ -n "${OVMF_CODE:-}" ] && [ -n "${OVMF_VARS:-}" ]; then
        given OVMF_CODE; given OVMF_VARS
        printf '%s\n%s\n' "$OVMF_CODE" "$OVMF_VARS"
        return 0
    fi
    local code vars
    while read -r code vars; do
        [ -f "$code" ] && [ -f "$vars" ] && { printf '%s\n%s\n' "$code" "$vars"; return 0; }
    done <<'PATHS'
/usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd
/usr/share/OVMF/OVMF_CODE.fd /usr/share/OVMF/OVMF_VARS.fd
/usr/share/edk2/ovmf/OVMF_CODE.fd /usr/share/edk2/ovmf/OVMF_VARS.fd
/usr/share/edk2/x64/OVMF_CODE.4m.fd /usr/share/edk2/x64/OVMF_VARS.4m.fd
PATHS
    return 1
}

none() {
    echo "no OVMF firmware found: install the 'ovmf' package, or pass OVMF=/path/to/OVMF.fd" \
         "or OVMF_CODE=/path/to/OVMF_CODE.fd OVMF_VARS=/path/to/OVMF_VARS.fd" >&2
    exit 1
}

# Prints `bios` and the image, or `pflash`, the code and the template.
choose() {
    if [ -n "${OVMF:-}" ]; then
        echo bios; combined; return
    fi
    if [ -n "${OVMF_CODE:-}${OVMF_VARS:-}" ]; then
        pair
        echo pflash; split; return
    fi
    local fd images
    if [ "${OVMF_PFLASH:-0}" != 1 ] && fd=$(combined); then
        printf 'bios\n%s\n' "$fd"
    elif images=$(split); then
        printf 'pflash\n%s\n' "$images"
    else
        none
    fi
}

case ${1:-} in
"")
    if [ "${OVMF_PFLASH:-0}" = 1 ] && [ -z "${OVMF:-}" ]; then
        echo "OVMF_PFLASH=1: no combined image wanted" >&2
        exit 1
    fi
    combined || {
        echo "no OVMF.fd found: install the 'ovmf' package or pass OVMF=/path/to/OVMF.fd" >&2
        exit 1
    }
    ;;
--check)
    choose >/dev/null
    ;;
--check-given)
    [ -z "${OVMF:-}" ] || given OVMF
    pair
    [ -z "${OVMF_CODE:-}" ] || given OVMF_CODE
    [ -z "${OVMF_VARS:-}" ] || given OVMF_VARS
    ;;
--qemu)
    vars=${2:?usage: find-ovmf.sh --qemu VARS.fd}
    mapfile -t fw < <(choose)
    # choose exits on failure, which the process substitution hides.
    [ ${#fw[@]} -ge 2 ] || exit 1
    if [ "${fw[0]}" = bios ]; then
        printf '%s\n%s\n' -bios "${fw[1]}"
        exit 0
    fi
    mkdir -p "$(dirname "$vars")"
    cp "${fw[2]}" "$vars"
    chmod u+w "$vars"
    # QEMU's -drive splits on commas; a comma in a path is written twice.
    printf '%s\n%s\n%s\n%s\n' \
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=${fw[1]//,/,,}" \
        -drive "if=pflash,format=raw,unit=1,file=${vars//,/,,}"
    ;;
*)
    echo "usage: find-ovmf.sh [--check | --check-given | --qemu VARS.fd]" >&2
    exit 2
    ;;
esac
