#!/bin/sh
# make bench: the codec micro-benchmark, then `herald bench` against herald
# (raw TCP, then WebSocket, each on a fresh server), Mosquitto 2.0 and
# nginx+Nchan with one workload, then push_load (durable pushSingleDevice
# over HTTP, then TARS, to online devices; fresh server each).  Builds
# nothing (make did); prints everything and keeps a copy in
# BUILD/bench/last-run.txt, and draws the figures (bench/chart.sh) into
# BUILD/bench/last-run.svg.
#
#   sh bench/run.sh BUILD
#
# Environment (defaults in brackets):
#   BENCH_CONNS [19000]  device connections     BENCH_MSGS [5]  broadcasts
#   BENCH_PAYLOAD [64]   payload bytes          BENCH_PROCS [auto] workers
#   BENCH_UNI_RATE [10000] BENCH_UNI_SECS [5]   herald unicast phase
#   BENCH_PUSH_CONNS [128] BENCH_PUSH_SECS [5]   push_load connections, seconds
#   BENCH_PUSH_DEVICES [1000]                   push_load online devices
#   BENCH_TARGETS ["codec herald-tcp herald-ws mosquitto nchan push-http
#                  push-tars"]
#
# herald's store lives in the temporary folder (BENCH_DB_DIR to put it on
# another disk: durable pushes cost an fsync per group commit there).
# Traffic stays on 127.0.0.0/8; every process started here is stopped on
# exit (trap), and each step has a time limit.
set -u

BUILD=${1:-build}
OUT=$BUILD/bench/last-run.txt

if [ -z "${BENCH_TEED:-}" ]; then
    mkdir -p "$BUILD/bench"
    st=$BUILD/bench/.last-run-status
    echo 1 >"$st"
    (BENCH_TEED=1 sh "$0" "$@"; echo $? >"$st") 2>&1 | tee "$OUT"
    rc=$(cat "$st")
    rm -f "$st"
    echo "bench: full output in $OUT"
    # The side-by-side figures as a chart (bench/chart.sh, gnuplot).
    svg=$BUILD/bench/last-run.svg
    if sh "$(dirname "$0")/chart.sh" "$OUT" "$svg"; then
        echo "bench: chart in $svg"
    fi
    exit "$rc"
fi

HERALD=$BUILD/herald
PEERS=$(dirname "$0")/peers/peers.sh
N=${BENCH_CONNS:-19000}
M=${BENCH_MSGS:-5}
PAYLOAD=${BENCH_PAYLOAD:-64}
UNI_RATE=${BENCH_UNI_RATE:-10000}
UNI_SECS=${BENCH_UNI_SECS:-5}
PUSH_CONNS=${BENCH_PUSH_CONNS:-128}
PUSH_SECS=${BENCH_PUSH_SECS:-5}
PUSH_DEVICES=${BENCH_PUSH_DEVICES:-1000}
TARGETS=${BENCH_TARGETS:-"codec herald-tcp herald-ws mosquitto nchan push-http push-tars"}
PROCS=${BENCH_PROCS:+--procs $BENCH_PROCS}
STEP_LIMIT=${BENCH_STEP_LIMIT:-300}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/herald-bench.XXXXXX")
DB_DIR=${BENCH_DB_DIR:-$TMP}
SERVER_PID=

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    stop_herald
    sh "$PEERS" stop mosquitto "$TMP/mosquitto" 2>/dev/null
    sh "$PEERS" stop nchan "$TMP/nchan" 2>/dev/null
    rm -rf "$TMP"
    [ "$DB_DIR" = "$TMP" ] || rm -f "$DB_DIR"/herald-bench.db*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$HERALD" ] || { echo "bench: $HERALD missing (make bench builds it)"; exit 1; }

# A free loopback port below the ephemeral range (32768+), so no outgoing
# connection of the benchmark can be sitting on it.
free_port() {
    p=$1
    while ss -ltnH "sport = :$p" 2>/dev/null | grep -q .; do p=$((p + 1)); done
    echo "$p"
}

wait_port() { # port pid
    i=0
    while [ $i -lt 100 ]; do
        ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

start_herald() {
    DEV_PORT=$(free_port 27100)
    API_PORT=$(free_port 28080)
    TARS_PORT=$(free_port 29100)
    # A fresh store for every server, so each row starts from the same state.
    rm -f "$DB_DIR"/herald-bench.db*
    # exec keeps the pid: herald bench samples this very process.
    sh -c 'ulimit -n 20000 2>/dev/null; exec "$@"' sh "$HERALD" serve \
        --host 127.0.0.1 --port "$DEV_PORT" --api-port "$API_PORT" \
        --tars-port "$TARS_PORT" --admin-port 0 --db "$DB_DIR/herald-bench.db" \
        --app "bench:$SECRET:$KEY" --log-level warn --tars-max-conns 1024 \
        >"$TMP/herald.log" 2>&1 &
    SERVER_PID=$!
    if ! wait_port "$DEV_PORT" "$SERVER_PID" || ! wait_port "$API_PORT" "$SERVER_PID"; then
        echo "bench: herald serve did not start:"
        cat "$TMP/herald.log"
        stop_herald
        return 1
    fi
    echo "bench: herald serve pid $SERVER_PID, devices 127.0.0.1:$DEV_PORT, API 127.0.0.1:$API_PORT, TARS 127.0.0.1:$TARS_PORT"
}

stop_herald() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

bench() { # args for herald bench
    echo "+ herald bench $*"
    timeout -k 5 "$STEP_LIMIT" "$HERALD" bench "$@"
    rc=$?
    [ $rc -eq 0 ] || { echo "bench: herald bench exited $rc"; FAILED=1; }
}

COMMON="--conns $N --msgs $M --payload $PAYLOAD $PROCS"
FAILED=0
echo "bench: $(date -u '+%Y-%m-%dT%H:%M:%SZ') $(uname -r), $(nproc) cores, N=$N M=$M payload=$PAYLOAD"

for t in $TARGETS; do
    echo
    case $t in
    codec)
        if [ -x "$BUILD/bench/bench_codec" ]; then
            echo "+ $BUILD/bench/bench_codec"
            timeout "$STEP_LIMIT" "$BUILD/bench/bench_codec" || FAILED=1
        else
            echo "bench: $BUILD/bench/bench_codec not built, skipped"
        fi
        ;;
    herald-tcp | herald-ws)
        start_herald || { FAILED=1; continue; }
        if [ "$t" = herald-tcp ]; then
            # shellcheck disable=SC2086 # COMMON is a word list
            bench --target herald --server "127.0.0.1:$DEV_PORT" \
                --api "127.0.0.1:$API_PORT" --app bench --secret "$SECRET" \
                --key "$KEY" --pid "$SERVER_PID" $COMMON \
                --unicast-rate "$UNI_RATE" --unicast-secs "$UNI_SECS"
        else
            # shellcheck disable=SC2086
            bench --target herald --ws --server "127.0.0.1:$DEV_PORT" \
                --api "127.0.0.1:$API_PORT" --app bench --secret "$SECRET" \
                --key "$KEY" --pid "$SERVER_PID" $COMMON
        fi
        stop_herald
        ;;
    mosquitto)
        port=$(free_port 21883)
        if pids=$(sh "$PEERS" start mosquitto "$TMP/mosquitto" "$port"); then
            echo "bench: $(mosquitto -h 2>/dev/null | head -1), pid $pids, port $port"
            # shellcheck disable=SC2086
            bench --target mosquitto --server "127.0.0.1:$port" --pid "$pids" $COMMON
        else
            FAILED=1
        fi
        sh "$PEERS" stop mosquitto "$TMP/mosquitto"
        ;;
    push-http | push-tars)
        if [ ! -x "$BUILD/bench/push_load" ]; then
            echo "bench: $BUILD/bench/push_load not built, skipped"
            continue
        fi
        start_herald || { FAILED=1; continue; }
        if [ "$t" = push-http ]; then api="--http 127.0.0.1:$API_PORT"; else api="--tars 127.0.0.1:$TARS_PORT"; fi
        # shellcheck disable=SC2086 # api is two words
        set -- $api --key "$KEY" --conns "$PUSH_CONNS" --secs "$PUSH_SECS" \
            --devices "$PUSH_DEVICES" --online --gw "127.0.0.1:$DEV_PORT" \
            --app bench --pid "$SERVER_PID"
        echo "+ $BUILD/bench/push_load $(echo "$*" | sed "s/$KEY/KEY/") (secret in HERALD_SECRET)"
        HERALD_SECRET=$SECRET timeout -k 5 "$STEP_LIMIT" "$BUILD/bench/push_load" "$@" ||
            { echo "bench: push_load exited $?"; FAILED=1; }
        stop_herald
        ;;
    nchan)
        port=$(free_port 28090)
        if pids=$(sh "$PEERS" start nchan "$TMP/nchan" "$port"); then
            echo "bench: $(nginx -v 2>&1) + nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null), pids $pids, port $port"
            # shellcheck disable=SC2086
            bench --target nchan --server "127.0.0.1:$port" --pid "$pids" $COMMON
        else
            FAILED=1
        fi
        sh "$PEERS" stop nchan "$TMP/nchan"
        ;;
    *)
        echo "bench: unknown target $t"
        FAILED=1
        ;;
    esac
done

echo
echo "== summary (RESULT and push_load lines) =="
grep -hE '^(RESULT|push_load (http|tars):)' "$OUT" 2>/dev/null || true
exit $FAILED
