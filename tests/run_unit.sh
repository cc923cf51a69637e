#!/bin/sh
# Runs unit test binaries and sums their "N passed, N failed" lines.
#   sh tests/run_unit.sh DIR BIN...
# DIR is where the binaries live (kept for the caller's log; BIN paths are
# used as given).  A binary that exits non-zero without printing a summary
# (a crash, a sanitizer report) counts as one failure, so a dead test can
# never look like a passing one.
set -u

dir=${1:?usage: run_unit.sh DIR BIN...}
shift
passed=0
failed=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
trap 'exit 130' INT TERM

for bin in "$@"; do
    echo "== $(basename "$bin")"
    "$bin" >"$tmp" 2>&1
    rc=$?
    cat "$tmp"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp" | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}
        f=${line#*passed, }
        f=${f%% failed*}
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            echo "   $(basename "$bin") exited $rc after its summary"
            failed=$((failed + 1))
        fi
    elif [ "$rc" != 0 ]; then
        echo "   $(basename "$bin") exited $rc without a summary"
        failed=$((failed + 1))
    else
        echo "   $(basename "$bin") printed no summary"
        failed=$((failed + 1))
    fi
done

[ $# -gt 0 ] || echo "(no unit test binaries in $dir)"
echo "unit: $passed passed, $failed failed"
[ "$failed" = 0 ]
