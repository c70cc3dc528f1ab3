# Helpers for the script tests (sourced by tests/scripts/*.sh).
#
# Each test runs make or a script from the repository's root with a PATH
# whose first directory holds stand-ins for the commands that install,
# build or boot (apt-get, sudo, cargo, rustup, qemu-system-x86_64, git,
# xorriso): each stand-in records its call in $calls and fails, so a test
# sees whether a check stopped everything before those commands ran.

set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/baton-script-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
calls=$scratch/calls
fakes=$scratch/bin
mkdir -p "$fakes"
for c in apt-get sudo cargo rustup qemu-system-x86_64 git xorriso; do
    printf '#!/bin/sh\necho "%s $*" >> "%s"\nexit 1\n' "$c" "$calls" > "$fakes/$c"
    chmod +x "$fakes/$c"
done
failures=0
out=$scratch/out

# run CMD...: runs CMD with the stand-ins first on PATH and a fresh call
# log; its status in $status, its output (both streams) in $out.
# The make running these tests, and the user's own settings, stay out of
# it: a test sets what it needs.
run() {
    : > "$calls"
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u OVMF -u OVMF_CODE -u OVMF_VARS \
        -u OVMF_PFLASH -u LIMINE_DIR -u MEM PATH="$fakes:$PATH" "$@" > "$out" 2>&1
    status=$?
}

fail() {
    echo "FAIL $name: $*"
    sed 's/^/    | /' "$out"
    [ -s "$calls" ] && sed 's/^/    called: /' "$calls"
    failures=$((failures + 1))
}

pass() {
    echo "PASS $name"
}

# refused NAME TEXT CMD...: CMD must fail, print TEXT, and call none of
# the stand-ins.
refused() {
    name=$1 text=$2
    shift 2
    run "$@"
    if [ "$status" -eq 0 ]; then
        fail "succeeded; expected a refusal saying: $text"
    elif ! grep -qF -- "$text" "$out"; then
        fail "did not say: $text"
    elif [ -s "$calls" ]; then
        fail "ran commands before refusing"
    else
        pass
    fi
}

# accepted NAME CMD...: CMD must succeed.
accepted() {
    name=$1
    shift
    run "$@"
    if [ "$status" -ne 0 ]; then
        fail "failed (status $status); expected it to go ahead"
    else
        pass
    fi
}

finish() {
    exit $((failures > 0))
}
