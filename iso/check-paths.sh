#!/usr/bin/env bash
# Checks the paths a user gave (OVMF, OVMF_CODE, OVMF_VARS, LIMINE_DIR)
# without installing, cloning or building anything: a typo is one error
# naming the variable, the path and what is missing there. Paths not given
# are left to the lookups of find-ovmf.sh and limine-dir.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/find-ovmf.sh" --check-given
if [ -n "${LIMINE_DIR:-}" ]; then
    # With LIMINE_DIR set, limine-dir.sh only looks there.
    "$here/limine-dir.sh" --no-clone >/dev/null
fi
