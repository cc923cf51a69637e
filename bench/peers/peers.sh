#!/bin/sh
# ulimit -n/-H are not POSIX, but every sh Debian ships (dash, bash) has them.
# shellcheck disable=SC3045
# Starts and stops the peers `herald bench` compares herald with, each on a
# loopback port, with all its files in DIR (a temporary folder).
#
#   peers.sh start mosquitto DIR PORT   prints the broker's pid
#   peers.sh start nchan DIR PORT       prints nginx's pids (master,workers)
#   peers.sh stop mosquitto|nchan DIR   stops what start began (by pid file)
#
# Both get the per-process fd limit raised to 20000 (the hard limit here)
# in the shell that starts them; Debian's packaged services are not used.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
MODDIR=${NCHAN_MODDIR:-/usr/lib/nginx/modules}
WORKERS=${NCHAN_WORKERS:-2}

user_line() {
    # As root both daemons would drop to an unprivileged user that may
    # not be able to write DIR; keep them as the caller.
    if [ "$(id -u)" = 0 ]; then
        case $1 in
        mosquitto) echo "user root" ;;
        nginx) echo "user root root;" ;;
        esac
    fi
}

fill() { # template out port dir user_line
    sed -e "s|@PORT@|$3|g" -e "s|@DIR@|$4|g" -e "s|@USER_LINE@|$5|g" \
        -e "s|@MODDIR@|$MODDIR|g" -e "s|@WORKERS@|$WORKERS|g" "$1" >"$2"
}

wait_port() { # port pid
    i=0
    while [ $i -lt 100 ]; do
        if ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start_mosquitto() { # dir port
    fill "$here/mosquitto.conf.in" "$1/mosquitto.conf" "$2" "$1" \
        "$(user_line mosquitto)"
    (ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
        exec mosquitto -c "$1/mosquitto.conf" >"$1/mosquitto.out" 2>&1) &
    pid=$!
    echo "$pid" >"$1/mosquitto.bench.pid"
    if ! wait_port "$2" "$pid"; then
        echo "peers: mosquitto did not start; see $1/mosquitto.*" >&2
        cat "$1/mosquitto.out" "$1/mosquitto.log" >&2 2>/dev/null || true
        return 1
    fi
    echo "$pid"
}

start_nchan() { # dir port
    [ -f "$MODDIR/ngx_nchan_module.so" ] || {
        echo "peers: $MODDIR/ngx_nchan_module.so missing (make deps)" >&2
        return 1
    }
    mkdir -p "$1/body" "$1/proxy" "$1/fastcgi" "$1/uwsgi" "$1/scgi"
    fill "$here/nginx-nchan.conf.in" "$1/nginx.conf" "$2" "$1" \
        "$(user_line nginx)"
    (ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
        exec nginx -p "$1" -c "$1/nginx.conf" >"$1/nginx.out" 2>&1) &
    pid=$!
    echo "$pid" >"$1/nginx.bench.pid"
    if ! wait_port "$2" "$pid"; then
        echo "peers: nginx did not start; see $1/nginx*" >&2
        cat "$1/nginx.out" "$1/nginx-error.log" >&2 2>/dev/null || true
        return 1
    fi
    # Workers do the work: herald bench samples master and workers.
    i=0
    while [ $i -lt 50 ]; do
        w=$(pgrep -P "$pid" | tr '\n' ',' | sed 's/,$//')
        [ "$(pgrep -P "$pid" | wc -l)" -ge "$WORKERS" ] && break
        sleep 0.1
        i=$((i + 1))
    done
    echo "$pid${w:+,$w}"
}

stop_pidfile() { # file
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

case ${1:-} in
start)
    [ $# -eq 4 ] || { echo "usage: $0 start mosquitto|nchan DIR PORT" >&2; exit 2; }
    mkdir -p "$3"
    case $2 in
    mosquitto) start_mosquitto "$3" "$4" ;;
    nchan) start_nchan "$3" "$4" ;;
    *) echo "peers: unknown peer $2" >&2; exit 2 ;;
    esac
    ;;
stop)
    [ $# -eq 3 ] || { echo "usage: $0 stop mosquitto|nchan DIR" >&2; exit 2; }
    case $2 in
    mosquitto) stop_pidfile "$3/mosquitto.bench.pid" ;;
    nchan) stop_pidfile "$3/nginx.bench.pid" ;;
    *) echo "peers: unknown peer $2" >&2; exit 2 ;;
    esac
    ;;
*)
    echo "usage: $0 start|stop mosquitto|nchan DIR [PORT]" >&2
    exit 2
    ;;
esac
