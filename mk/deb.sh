#!/bin/sh
# make deb: a Debian package of herald built from this tree with Debian's
# own tools (dpkg-shlibdeps for the library dependencies, dpkg-deb), no
# debhelper.  The layout is `make install`'s with PREFIX=/usr:
#   /usr/bin/herald (stripped)           /usr/share/man/man1/herald.1.gz
#   /usr/lib/systemd/system/herald.service
#   /usr/share/doc/herald/ (README.md, docs/, protocol/, bench/, examples/)
#   /etc/herald/herald.conf, /etc/herald/herald.env   (conffiles)
# and mk/debian/{postinst,prerm,postrm}: the herald system user, the
# config's owner (root:herald 0640), systemd's daemon-reload.
#
#   sh mk/deb.sh BUILD VERSION       -> BUILD/herald_VERSION_ARCH.deb
set -eu
cd "$(dirname "$0")/.."

B=${1:?usage: deb.sh BUILD VERSION}
V=${2:?usage: deb.sh BUILD VERSION}
ARCH=$(dpkg --print-architecture)
STAGE=$B/deb/herald
OUT=$B/herald_${V}_$ARCH.deb

rm -rf "$B/deb"
mkdir -p "$STAGE/DEBIAN"
HERALD=$B/herald DESTDIR=$STAGE BINDIR=/usr/bin MANDIR=/usr/share/man \
    DOCDIR=/usr/share/doc/herald UNITDIR=/usr/lib/systemd/system \
    SYSCONFDIR=/etc sh mk/install.sh >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$STAGE/usr/bin/herald"
gzip -9n "$STAGE/usr/share/man/man1/herald.1"
chmod 644 "$STAGE/etc/herald/herald.conf"   # postinst: root:herald 0640

# Library dependencies as Debian computes them (libc6, libssl3, ...).
mkdir -p "$B/deb/debian"
printf 'Source: herald\n\nPackage: herald\nArchitecture: any\n' >"$B/deb/debian/control"
shlibs=$(cd "$B/deb" && dpkg-shlibdeps -O "herald/usr/bin/herald" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOC
Package: herald
Version: $V
Architecture: $ARCH
Maintainer: herald developers <herald@localhost>
Installed-Size: $size
Depends: $shlibs, adduser
Suggests: prometheus, prometheus-blackbox-exporter
Section: net
Priority: optional
Description: self-hosted push server for phones, browsers and IoT devices
 herald delivers messages from application servers to devices over
 long-lived raw TCP and WebSocket connections. Application servers use
 one push API (HTTP/JSON or TARS); messages that must survive are kept
 in an embedded SQLite store and delivered at least once, and every
 message has a status record. The package holds the server, its
 command-line tools, a hardened systemd unit, an example configuration
 and Prometheus alert rules.
EOC
printf '/etc/herald/herald.conf\n/etc/herald/herald.env\n' >"$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 755 "mk/debian/$s" "$STAGE/DEBIAN/$s"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print |
    sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/conffiles"

dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "deb: $OUT"
