#!/bin/sh
# make deps: install what the build, the tests and the benchmarks need.
#
# Idempotent and silent when everything is present (one dpkg-query call and
# a timestamp check), so `make test` and `make run` can call it every time.
# Debian packages: apt-get only for what is missing.  npm test peers: into
# tests/js/node_modules from the lock file.  Services that apt would start
# (redis, mosquitto, nginx, prometheus) are kept stopped: tests start their
# own instances on loopback ports, or only use the tools (promtool).
# systemd, dpkg-dev, adduser and groff-base serve the package tests
# (systemd-analyze verify, dpkg-shlibdeps, the man page).
set -eu

cd "$(dirname "$0")/.."

PKGS="gcc make pkg-config clang libclang-rt-14-dev
libjansson-dev libssl-dev libsqlite3-dev libhiredis-dev liburing-dev zlib1g-dev
redis-server mosquitto mosquitto-clients nginx libnginx-mod-nchan
chromium chromium-driver nodejs curl valgrind
gnuplot-nox libxml2-utils prometheus
systemd dpkg-dev adduser groff-base"
SERVICES="redis-server mosquitto nginx prometheus"

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

missing_pkgs() {
    # One dpkg-query for all packages; a package never seen is reported on
    # stderr and absent from stdout, so compare the lists.
    # shellcheck disable=SC2086 # PKGS is a word list on purpose
    installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
        awk '$NF == "installed" { printf "%s ", $1 }')"
    for p in $PKGS; do
        case "$installed" in
        *" $p "*) ;;
        *) echo "$p" ;;
        esac
    done
    # npm comes with nodesource's nodejs; Debian's npm package would fight
    # it, so it is only asked for when no npm command exists.
    if ! command -v npm >/dev/null 2>&1; then echo npm; fi
}

stop_services() {
    for s in $SERVICES; do
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
            $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
        elif command -v service >/dev/null 2>&1; then
            $SUDO service "$s" stop >/dev/null 2>&1 || true
        fi
    done
}

install_pkgs() {
    echo "deps: apt-get install $*"
    # policy-rc.d answering 101 keeps invoke-rc.d from starting the
    # daemons these packages ship; remove it only if we created it.
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    rc=0
    $SUDO apt-get update -qq >/dev/null || rc=$?
    if [ $rc = 0 ]; then
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "$@" >/dev/null || rc=$?
    fi
    if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    stop_services
    if [ $rc != 0 ]; then
        echo "deps: apt-get failed ($rc)" >&2
        exit $rc
    fi
}

# npm_deps DIR: npm ci in DIR from its lock file, unless already done.
npm_deps() {
    dir=${1:-tests/js}
    lock=$dir/package-lock.json
    mods=$dir/node_modules
    [ -f "$lock" ] || return 0
    # npm ci rewrites node_modules/.package-lock.json, so it is the stamp.
    stamp=$mods/.package-lock.json
    if [ -f "$stamp" ] && [ -z "$(find "$lock" -newer "$stamp")" ]; then
        return 0
    fi
    echo "deps: npm ci ($dir)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
}

miss=$(missing_pkgs)
# shellcheck disable=SC2086 # one argument per package
if [ -n "$miss" ]; then install_pkgs $miss; fi
npm_deps tests/js
# Front-end libraries the binary embeds (uPlot for /dashboard).
npm_deps web
