#!/usr/bin/env bash
# Runs every script test (tests/scripts/test-*.sh); fails if one does.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
failed=0
for t in "$here"/test-*.sh; do
    echo "script-test: $(basename "$t")"
    bash "$t" || failed=1
done
if [ $failed -ne 0 ]; then
    echo "script-test: FAILED"
else
    echo "script-test: all passed"
fi
exit $failed
