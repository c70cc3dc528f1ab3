# `make help` lists every target and every variable of the Makefile, one
# line each; JOBS reaches the boot-test runner as --jobs.
source "$(dirname "$0")/lib.sh"

name="make help lists every .PHONY target"
run make help
help=$(cat "$out")
targets=$(sed -n '/^\.PHONY:/,/[^\\]$/p' Makefile | sed 's/^\.PHONY://; s/\\//g' | tr -s ' \t\n' '\n' | sed '/^$/d')
missing=()
for t in $targets; do
    grep -qE "^  $t( |$)" <<< "$help" || missing+=("$t")
done
if [ "$status" -ne 0 ] || [ -z "$targets" ]; then
    fail "make help failed, or no .PHONY targets found"
elif [ ${#missing[@]} -gt 0 ]; then
    fail "not listed: ${missing[*]}"
else
    pass
fi

name="make help lists every variable a user sets"
vars=$(sed -nE 's/^([A-Z_]+) \?=.*/\1/p' Makefile)
vars="$vars $(sed -nE 's/^export ([A-Z_ ]+)$/\1/p' Makefile)"
missing=()
for v in $vars; do
    grep -qE "^  $v(=| |$)" <<< "$help" || missing+=("$v")
done
if [ -z "${vars// /}" ]; then
    fail "no variables found in the Makefile"
elif [ ${#missing[@]} -gt 0 ]; then
    fail "not listed: ${missing[*]}"
else
    pass
fi

name="the README's tables name every .PHONY target and every variable"
missing=()
for t in $targets; do
    grep -qE "\`(make )?$t\`" README.md || missing+=("$t")
done
for v in $vars; do
    grep -qE "\`$v(=|\`)" README.md || missing+=("$v")
done
if [ ${#missing[@]} -gt 0 ]; then
    fail "not in README.md: ${missing[*]}"
else
    pass
fi

name="JOBS reaches the boot-test runner as --jobs"
run make -n boot-test JOBS=3
if [ "$status" -ne 0 ] || ! grep -q -- '-p boot-tests -- .*--jobs 3' "$out"; then
    fail "no --jobs 3 in the runner's command"
else
    run make -n boot-test
    if grep -q -- '--jobs' "$out"; then fail "--jobs given without JOBS"; else pass; fi
fi
finish
