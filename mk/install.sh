#!/bin/sh
# make install: puts herald where a system expects it (also the layout of
# `make deb`, mk/deb.sh).  Every path comes from the environment, set by
# the Makefile:
#
#   HERALD      the binary to install (BUILD/herald)
#   DESTDIR     staging root, prepended to every path below (default empty)
#   BINDIR      herald                                  PREFIX/bin
#   MANDIR      man1/herald.1                           PREFIX/share/man
#   DOCDIR      README.md, docs/, protocol/ (the IDL), bench/ (results),
#               examples/ (Prometheus, alerts, Grafana)
#                                                       PREFIX/share/doc/herald
#   UNITDIR     herald.service, its paths rewritten to these
#                                                       PREFIX/lib/systemd/system
#   SYSCONFDIR  herald/herald.conf (0640) and herald/herald.env (0600)
#                                                       /etc
#
# An existing herald.conf or herald.env is never overwritten (the new
# example goes beside it as *.dist).  herald.conf is 0640 group herald when
# that group exists and nothing is staged (DESTDIR empty), else 0644: the
# unit runs herald as user herald, which must read it; the package sets
# root:herald 0640 in its postinst.  No user is created and no service
# started: that is the system's (or the package's) business.
set -eu
cd "$(dirname "$0")/.."

: "${HERALD:?}" "${BINDIR:?}" "${MANDIR:?}" "${DOCDIR:?}" "${UNITDIR:?}" "${SYSCONFDIR:?}"
D=${DESTDIR:-}

install -d "$D$BINDIR" "$D$MANDIR/man1" "$D$DOCDIR/docs" "$D$DOCDIR/protocol" \
    "$D$DOCDIR/bench" "$D$DOCDIR/examples" "$D$UNITDIR" "$D$SYSCONFDIR/herald"
install -m 755 "$HERALD" "$D$BINDIR/herald"
install -m 644 docs/herald.1 "$D$MANDIR/man1/herald.1"
# The docs keep the repository's layout, so their links still resolve.
install -m 644 README.md "$D$DOCDIR/"
install -m 644 docs/*.md "$D$DOCDIR/docs/"
install -m 644 protocol/*.jce "$D$DOCDIR/protocol/"
install -m 644 bench/README.md bench/RESULTS.md bench/results.svg "$D$DOCDIR/bench/"
install -m 644 deploy/prometheus.yml deploy/herald-alerts.yml \
    deploy/grafana-dashboard.json "$D$DOCDIR/examples/"

# The unit names the binary, the config and the docs by path.
sed -e "s|/usr/local/bin/herald|$BINDIR/herald|g" \
    -e "s|/etc/herald/|$SYSCONFDIR/herald/|g" \
    -e "s|file:///usr/share/doc/herald/|file://$DOCDIR/|g" \
    deploy/herald.service >"$D$UNITDIR/herald.service.tmp"
chmod 644 "$D$UNITDIR/herald.service.tmp"
mv "$D$UNITDIR/herald.service.tmp" "$D$UNITDIR/herald.service"

# conf_file SRC NAME MODE: the example config, unless one is there.
conf_file() {
    dst=$D$SYSCONFDIR/herald/$2
    if [ -e "$dst" ]; then
        install -m "$3" "$1" "$dst.dist"
        echo "install: $dst exists, kept; the shipped one is $dst.dist"
    else
        install -m "$3" "$1" "$dst"
    fi
}
if [ -z "$D" ] && getent group herald >/dev/null 2>&1; then
    conf_file deploy/herald.conf herald.conf 640
    chgrp herald "$SYSCONFDIR/herald/herald.conf"
else
    conf_file deploy/herald.conf herald.conf 644
fi
conf_file deploy/herald.env herald.env 600
