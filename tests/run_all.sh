#!/bin/sh
# Runs every test suite against one build folder and prints one summary.
#   sh tests/run_all.sh BUILD
# Suites, in order: unit, unit under ASan+UBSan, jce2c error tests, interop
# (node:test files in tests/interop), integration (tests/integration), build
# (tests/build: the Makefile's rules, the package, the shipped files and the
# docs checked against the code).
# A suite whose files do not exist yet is skipped with a note.  A suite
# that fails without printing counts (crash, build error, timeout) counts
# as one failure.  The last line is exactly "N passed, N failed".
set -u

B=${1:?usage: run_all.sh BUILD}
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
BREL=${B#"$ROOT"/}
JOBS=${HERALD_JOBS:-2}
SUITE_TIMEOUT=${HERALD_SUITE_TIMEOUT:-900}
MAKE=${MAKE:-make}

total_pass=0
total_fail=0
errors=""
log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
trap 'exit 130' INT TERM

now() { date +%s; }

# add_counts NAME RC PASS FAIL: books one suite's result.
add_counts() {
    name=$1 rc=$2 p=$3 f=$4
    if [ -z "$p" ] && [ -z "$f" ]; then
        p=0 f=1
        errors="$errors $name"
        echo "--- $name: no counts (exit $rc), counted as 1 failure"
    elif [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
        f=1
        errors="$errors $name"
        echo "--- $name: exit $rc with no failed test, counted as 1 failure"
    fi
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-0}))
}

# run_suite NAME PARSER CMD...: runs CMD with output teed to the log,
# then extracts counts with PARSER (unit | tap).
run_suite() {
    name=$1 parser=$2
    shift 2
    echo
    echo "=== $name"
    t0=$(now)
    # The exit status of CMD, not of tee, is wanted: keep it in a file.
    { timeout "$SUITE_TIMEOUT" "$@" 2>&1; echo "$?" >"$log.rc"; } | tee "$log"
    rc=$(cat "$log.rc")
    rm -f "$log.rc"
    case $parser in
    unit)
        line=$(grep -E '(^|[: ])[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
        p=$(echo "$line" | sed -n 's/^\(.*[^0-9]\)\{0,1\}\([0-9][0-9]*\) passed, .*/\2/p')
        f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed$/\1/p')
        ;;
    tap)
        p=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log" | tail -n 1)
        f=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log" | tail -n 1)
        ;;
    esac
    add_counts "$name" "$rc" "$p" "$f"
    echo "--- $name: ${p:-0} passed, ${f:-?} failed, $(( $(now) - t0 ))s"
}

skip() { echo; echo "=== $1"; echo "--- $1: skipped ($2)"; }

js_files() { ls "$1"/*.test.js 2>/dev/null; }

node_suite() {
    name=$1 dir=$2
    files=$(js_files "$dir")
    if [ -z "$files" ]; then skip "$name" "no $dir/*.test.js yet"; return; fi
    if [ ! -d tests/js/node_modules ]; then
        skip "$name" "tests/js/node_modules missing: run make deps"
        add_counts "$name" 1 "" ""
        return
    fi
    # shellcheck disable=SC2086
    run_suite "$name" tap env HERALD_BUILD="$B" \
        NODE_PATH="$ROOT/tests/js/node_modules" \
        node --test --test-reporter=tap $files
}

t_start=$(now)

run_suite unit unit "$MAKE" --no-print-directory -j"$JOBS" BUILD="$BREL" unit
run_suite unit-asan unit "$MAKE" --no-print-directory -j"$JOBS" BUILD="$BREL" unit-san

if [ -f tests/jce2c/run.sh ]; then
    run_suite jce2c unit sh tests/jce2c/run.sh "$B/jce2c"
else
    skip jce2c "no tests/jce2c/run.sh yet"
fi

node_suite interop tests/interop
node_suite integration tests/integration
node_suite build tests/build

echo
if [ -n "$errors" ]; then echo "suites with errors:$errors"; fi
echo "total time $(( $(now) - t_start ))s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ -z "$errors" ]
