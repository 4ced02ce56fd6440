#!/usr/bin/env bash
# deb.sh - build/deb/xdevice_VERSION_ARCH.deb from this build (`make deb`).
#
# The tree is `make install` with PREFIX=/usr and the multiarch LIBDIR, so
# the engine lands in /usr/lib/<triplet>/fio/xdevice.so. Depends holds the
# runtime libraries (dpkg-shlibdeps on the binaries, as debhelper would) and
# fio at exactly the Debian version whose source the engine was built
# against: the engine refuses any other fio, so dpkg should too.
# Environment from the Makefile: BUILD VERSION LIB_DEPS FIOSRC.
set -euo pipefail

: "${BUILD:?}" "${VERSION:?}" "${LIB_DEPS:?}" "${FIOSRC:?}"
die() { echo "xdevice: deb.sh: $*" >&2; exit 1; }

arch=$(dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null || dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
[ -n "$triplet" ] || die "no multiarch triplet (dpkg-architecture and gcc -print-multiarch gave none)"

# fio: the installed package's version must be the one the engine was built
# against ($FIOSRC/.xd-version is "fio-UPSTREAM").
built=$(cat "$FIOSRC/.xd-version") || die "$FIOSRC/.xd-version missing: run make"
fio_version=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) || die "the fio package is not installed"
upstream=${fio_version#*:}
upstream=${upstream%-*}
[ "fio-$upstream" = "$built" ] ||
    die "the engine was built against $built but fio $fio_version is installed: run make first"

stage=$(realpath -m "$BUILD/deb")
root=$stage/debian/xdevice
rm -rf "$stage"
mkdir -p "$root/DEBIAN"

BUILD=$BUILD VERSION=$VERSION LIB_DEPS=$LIB_DEPS MANIFEST=0 DESTDIR=$root PREFIX=/usr \
    BINDIR=/usr/bin LIBDIR=/usr/lib/$triplet INCLUDEDIR=/usr/include DATADIR=/usr/share \
    MANDIR=/usr/share/man UNITDIR=/usr/lib/systemd/system \
    bash scripts/install.sh install >"$stage/install.log"

# Debian ships man pages compressed; man(1) reads them as they are.
find "$root/usr/share/man" -type f -exec gzip -9n {} +
mkdir -p "$root/usr/share/doc/xdevice"
gzip -9nc README.md >"$root/usr/share/doc/xdevice/README.md.gz"

# dpkg-shlibdeps wants a source tree's debian/control naming the package.
printf 'Source: xdevice\n\nPackage: xdevice\nArchitecture: any\n' >"$stage/debian/control"
bins=("$root/usr/lib/$triplet/libxdevice.so.$VERSION" "$root/usr/lib/$triplet/fio/xdevice.so")
bins+=("$root"/usr/bin/*)
# (The engine's fio symbols, td_verror and the like, come from the fio
# binary that loads it: no library provides them, and Depends names fio.)
if ! shlibs=$(cd "$stage" && dpkg-shlibdeps -O "${bins[@]#"$stage/"}" 2>"$stage/shlibdeps.log"); then
    cat "$stage/shlibdeps.log" >&2
    die "dpkg-shlibdeps failed"
fi
depends=${shlibs#shlibs:Depends=}
depends="$depends, fio (= $fio_version)"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: xdevice
Version: $VERSION
Architecture: $arch
Maintainer: xdevice developers <xdevice@localhost>
Installed-Size: $size
Depends: $depends
Section: libs
Priority: optional
Description: storage backend stack as a library and an fio ioengine
 libxdevice (drivers and layers: regular, mmap, direct, tmpfs, block,
 sparse, compressed, hybrid; one INI schema), its fio engine in
 /usr/lib/$triplet/fio/xdevice.so, and the tools xdconfig, xdtune,
 xdreport, xdmicro, xdcachesim and xdcheckpoint. The engine matches fio
 $fio_version.
EOF
# the shared library: let libc-bin refresh the loader's cache
echo "activate-noawait ldconfig" >"$root/DEBIAN/triggers"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)

deb=$stage/xdevice_${VERSION}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
