#!/bin/sh
# push_ab.sh: compare two herald builds on the push service benchmark,
# alternating them round by round, and split the server's CPU per push by
# thread.  This VM's speed swings by 1.5x within minutes, so one run of
# each build says little: alternate, repeat, and compare the server's CPU
# per push *relative to the load generator's* (same loader, same work per
# push, so the ratio cancels most of the VM's drift).
#
#   sh bench/push_ab.sh BUILD_A [BUILD_B] [ROUNDS=3]
#
# Each run: a fresh `herald serve` from BUILD/herald (same flags as
# bench/run.sh, plus an admin port for /metrics), then build/bench/push_load
# --http with 1,000 online acking devices.  Per run one line:
#
#   BUILD rate/s p50 p99 | server µs/push loader µs/push ratio |
#   store http gw0+gw1 µs/push (per-thread CPU over a 4 s window divided
#   by herald_pushes_total over the same window)
#
# PUSH_AB_CONNS [128] PUSH_AB_SECS [8] PUSH_AB_MODE [http|tars]
# PUSH_AB_EXTRA: extra `herald serve` flags (e.g. --no-fsync).
# PUSH_AB_PAIR=1: run BUILD_A twice side by side instead (two servers, two
# loaders): the sum of their rates against one run alone tells whether the
# machine or the server's pipeline is the limit.
set -u
A=${1:?usage: push_ab.sh BUILD_A [BUILD_B] [ROUNDS]}
B=${2:-}
ROUNDS=${3:-3}
CONNS=${PUSH_AB_CONNS:-128}
SECS=${PUSH_AB_SECS:-8}
MODE=${PUSH_AB_MODE:-http}
LOADER=build/bench/push_load
[ -x "$LOADER" ] || { echo "push_ab: $LOADER not built (make build/bench/push_load)"; exit 2; }
TMP=$(mktemp -d /tmp/push-ab-XXXXXX)
trap 'kill $(cat "$TMP"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

# thread CPU ticks of PID as "comm ticks" lines (utime + stime)
threads() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done 2>/dev/null
}

pushes() { # herald_pushes_total summed, from the admin port $1
    curl -s "http://127.0.0.1:$1/metrics" |
        awk '/^herald_pushes_total/ {s += $2} END {print s + 0}'
}

# one run of BUILD with ports offset by $2; prints its result line
one() {
    build=$1 off=$2
    dev=$((37100 + off)) api=$((38080 + off)) tars=$((39100 + off)) adm=$((39900 + off))
    db="$TMP/db$off"
    rm -rf "$db"; mkdir -p "$db"
    # shellcheck disable=SC2086 # PUSH_AB_EXTRA is a word list
    sh -c 'ulimit -n 20000 2>/dev/null; exec "$@"' sh "$build/herald" serve \
        --host 127.0.0.1 --port $dev --api-port $api --tars-port $tars \
        --admin-port $adm --db "$db/h.db" --app "bench:$SECRET:$KEY" \
        --log-level warn --tars-max-conns 1024 ${PUSH_AB_EXTRA:-} \
        >"$TMP/herald$off.log" 2>&1 &
    pid=$!
    echo $pid >"$TMP/s$off.pid"
    i=0
    while ! curl -s -o /dev/null "http://127.0.0.1:$adm/healthz"; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "$build: herald serve did not start"; cat "$TMP/herald$off.log"; return 1; }
        sleep 0.1
    done
    if [ "$MODE" = tars ]; then ep="--tars 127.0.0.1:$tars"; else ep="--http 127.0.0.1:$api"; fi
    (
        sleep 3
        threads $pid >"$TMP/t0.$off"; p0=$(pushes $adm)
        sleep 4
        threads $pid >"$TMP/t1.$off"; p1=$(pushes $adm)
        echo $((p1 - p0)) >"$TMP/n.$off"
    ) &
    win=$!
    # shellcheck disable=SC2086 # ep is two words
    HERALD_SECRET=$SECRET "$LOADER" $ep --key "$KEY" --conns "$CONNS" \
        --secs "$SECS" --devices 1000 --online --gw "127.0.0.1:$dev" \
        --app bench --pid $pid >"$TMP/load$off.txt" 2>&1
    wait $win
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    rm -f "$TMP/s$off.pid"
    n=$(cat "$TMP/n.$off")
    hz=$(getconf CLK_TCK)
    split=$(join "$TMP/t0.$off" "$TMP/t1.$off" | awk -v n="$n" -v hz="$hz" '
        { d[$1] += ($3 - $2) * 1e6 / hz }
        END { if (n > 0) printf "store %.1f http %.1f tars %.1f gw %.1f",
              d["herald-store"] / n, d["herald-http"] / n, d["herald-tars"] / n,
              (d["herald-gw0"] + d["herald-gw1"]) / n }')
    grep -E "^push_load (http|tars):" "$TMP/load$off.txt" | awk -v b="$build" -v s="$split" '{
        for (i = 1; i <= NF; i++) {
            if ($(i+1) == "pushes/s,") rate = $i
            if ($i == "p50") p50 = $(i+1) " " $(i+2)
            if ($i == "p99") p99 = $(i+1) " " $(i+2)
            if ($i == "server") sv = $(i+1)
            if ($i == "client") cl = $(i+1)
        }
        printf "%-14s %7s/s p50 %s p99 %s | server %s loader %s ratio %.2f | %s us/push\n",
               b, rate, p50, p99, sv, cl, sv / cl, s }'
    grep -q "dup 0" "$TMP/load$off.txt" || grep -E "^push_load: online" "$TMP/load$off.txt"
}

r=1
while [ $r -le "$ROUNDS" ]; do
    if [ "${PUSH_AB_PAIR:-0}" = 1 ]; then
        one "$A" 0 >"$TMP/pa.txt" &
        one "$A" 10000 >"$TMP/pb.txt"
        wait
        echo "round $r, two set-ups side by side:"; cat "$TMP/pa.txt" "$TMP/pb.txt"
    else
        one "$A" 0
        [ -z "$B" ] || one "$B" 0
    fi
    r=$((r + 1))
done
