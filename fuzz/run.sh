#!/bin/sh
# Runs every libFuzzer binary in a folder for a while, each on a working
# copy of its seed corpus, and reports runs and crashes.
#   sh fuzz/run.sh BUILD_FUZZ_DIR SECONDS
# fuzz_<name> takes its seeds from fuzz/corpus/<name>/; the working corpus
# and any crash files go to BUILD_FUZZ_DIR/work/<name>/.  Exits non-zero if
# any target crashed (or failed to run).
set -u

dir=${1:?usage: run.sh BUILD_FUZZ_DIR SECONDS}
secs=${2:?usage: run.sh BUILD_FUZZ_DIR SECONDS}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
found=0

for bin in "$dir"/fuzz_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    found=1
    name=$(basename "$bin")
    name=${name#fuzz_}
    work="$dir/work/$name"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/crashes"
    if [ -d "$root/fuzz/corpus/$name" ]; then
        cp "$root/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null || true
    fi
    log="$work/log.txt"
    "$bin" -max_len=65536 -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/crashes/" "$work/corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crash=$(ls "$work/crashes" 2>/dev/null | head -n 1)
    if [ "$rc" = 0 ] && [ -z "$crash" ]; then
        echo "fuzz_$name: ${runs:-?} runs in ${secs}s, 0 crashes"
    else
        status=1
        if [ -n "$crash" ]; then
            echo "fuzz_$name: CRASH after ${runs:-?} runs: $work/crashes/$crash"
        else
            echo "fuzz_$name: exit $rc, see $log"
        fi
        tail -n 30 "$log"
    fi
done

if [ "$found" = 0 ]; then
    echo "no fuzz_* binaries in $dir"
    exit 1
fi
exit $status
