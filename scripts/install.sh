#!/usr/bin/env bash
# install.sh install|uninstall - put the built xdevice into a tree, or take
# it out again. Run by `make install`, `make uninstall` and `make deb`, which
# pass the layout in the environment:
#   BUILD VERSION DESTDIR PREFIX BINDIR LIBDIR INCLUDEDIR MANDIR DATADIR UNITDIR
#   LIB_DEPS   "pkg:-lflag ..." (pkg "-": a library with no .pc file)
#   MANIFEST   1 (default): record what install made, so uninstall removes
#              exactly that; 0 for a package tree (dpkg keeps its own list)
#
# One list of what is installed (entries below) serves both directions. The
# manifest, DATADIR/xdevice/install-manifest, also names each directory that
# install created, so uninstall leaves the tree as it found it.
set -euo pipefail

: "${BUILD:?}" "${VERSION:?}" "${PREFIX:?}" "${BINDIR:?}" "${LIBDIR:?}" "${INCLUDEDIR:?}"
: "${MANDIR:?}" "${DATADIR:?}" "${UNITDIR:?}" "${LIB_DEPS:?}"
DESTDIR=${DESTDIR:-}
MANIFEST=${MANIFEST:-1}
MAJOR=${VERSION%%.*}
REAL=libxdevice.so.$VERSION
SONAME=libxdevice.so.$MAJOR
TOOLS="xdconfig xdreport xdtune xdmicro xdcachesim xdcheckpoint"
MAN_PAGES="man1/xdconfig.1 man1/xdreport.1 man1/xdtune.1 man1/xdcheckpoint.1 man3/libxdevice.3 man7/xdevice.7"
MANIFEST_PATH=$DATADIR/xdevice/install-manifest

die() { echo "xdevice: install.sh: $*" >&2; exit 1; }

# Paths under PREFIX are written relative to ${prefix} in the .pc file, so
# that pkg-config's sysroot and relocation work.
pc_path() {
    case "$1" in
        "$PREFIX"/*) echo "\${prefix}${1#"$PREFIX"}" ;;
        *) echo "$1" ;;
    esac
}

# xdevice.pc: libraries that ship a .pc file go in Requires.private (their
# own flags then follow them), the others in Libs.private.
write_pc() {
    local requires=() libs=() dep pkg flag
    for dep in $LIB_DEPS; do
        pkg=${dep%%:*} flag=${dep#*:}
        if [ "$pkg" != "-" ] && pkg-config --exists "$pkg"; then
            requires+=("$pkg")
        else
            libs+=("$flag")
        fi
    done
    cat <<EOF
prefix=$PREFIX
libdir=$(pc_path "$LIBDIR")
includedir=$(pc_path "$INCLUDEDIR")

Name: xdevice
Description: xdevice storage stack (drivers and layers behind the xdevice fio engine)
Version: $VERSION
Requires.private: ${requires[*]}
Libs: -L\${libdir} -lxdevice
Libs.private: ${libs[*]}
Cflags: -I\${includedir}
EOF
}

# The unit runs the installed xdtune; %i is the INI path with "/" as "-"
# (systemd-escape --path), e.g. xdtune-daemon@etc-xdevice-prod.ini.service.
write_unit() {
    sed "s|@BINDIR@|$BINDIR|g" dist/xdtune-daemon@.service.in
}

# A job file from jobs/ with its engine path and the INI files it names
# from jobs/ made the installed ones.
write_job() {
    sed -e "s|external:build/xdevice.so|external:$LIBDIR/fio/xdevice.so|" \
        -e "s|xd_config=jobs/|xd_config=$DATADIR/xdevice/|" "$1"
}

# Each entry: KIND MODE SOURCE DEST. KIND file: copy SOURCE; gen: the output
# of the command SOURCE; link: a symlink to SOURCE.
entries() {
    local t f
    echo "file 0755 $BUILD/$REAL $LIBDIR/$REAL"
    echo "link - $REAL $LIBDIR/$SONAME"
    echo "link - $SONAME $LIBDIR/libxdevice.so"
    echo "file 0644 $BUILD/libxdevice.a $LIBDIR/libxdevice.a"
    echo "file 0644 backends/xdevice.h $INCLUDEDIR/xdevice.h"
    echo "gen 0644 write_pc $LIBDIR/pkgconfig/xdevice.pc"
    # fio dlopen()s the engine: it is read, never executed
    echo "file 0644 $BUILD/xdevice.so $LIBDIR/fio/xdevice.so"
    for t in $TOOLS; do
        echo "file 0755 $BUILD/$t $BINDIR/$t"
    done
    for f in $MAN_PAGES; do
        echo "file 0644 $BUILD/man/${f#*/} $MANDIR/$f"
    done
    echo "file 0644 $BUILD/xdevice-defaults.ini $DATADIR/xdevice/xdevice-defaults.ini"
    for f in jobs/*.ini examples/*.ini; do
        echo "file 0644 $f $DATADIR/xdevice/${f##*/}"
    done
    for f in jobs/*.fio; do
        [ "${f##*/}" = block.fio ] || echo "gen 0644 write_job:$f $DATADIR/xdevice/jobs/${f##*/}"
    done
    for f in examples/*.c examples/Makefile; do
        echo "file 0644 $f $DATADIR/xdevice/examples/${f##*/}"
    done
    echo "gen 0644 write_unit $UNITDIR/xdtune-daemon@.service"
}

# mkdir -p that records in CREATED each directory it made, outermost first.
CREATED=()
make_dirs() {
    local d=$1 missing=()
    while [ ! -d "$DESTDIR$d" ]; do
        missing=("$d" "${missing[@]}")
        d=$(dirname "$d")
    done
    for d in "${missing[@]}"; do
        mkdir "$DESTDIR$d"
        CREATED+=("$d")
    done
}

do_install() {
    local kind mode src dest tmp list=()
    mapfile -t list < <(entries)
    for line in "${list[@]}"; do
        read -r kind mode src dest <<<"$line"
        [ "$kind" = gen ] || [ "$kind" = link ] || [ -f "$src" ] || die "$src missing: run make first"
    done
    for line in "${list[@]}"; do
        read -r kind mode src dest <<<"$line"
        make_dirs "$(dirname "$dest")"
        case $kind in
            file) install -m "$mode" "$src" "$DESTDIR$dest" ;;
            link) ln -sfn "$src" "$DESTDIR$dest" ;;
            gen)
                tmp=$(mktemp)
                # SOURCE is a function, or function:argument
                if [[ $src == *:* ]]; then set -- "${src#*:}"; else set --; fi
                "${src%%:*}" "$@" >"$tmp" || { rm -f "$tmp"; die "generating $dest failed"; }
                install -m "$mode" "$tmp" "$DESTDIR$dest"
                rm -f "$tmp"
                ;;
        esac
        echo "  $dest"
    done
    if [ "$MANIFEST" = 1 ]; then
        make_dirs "$(dirname "$MANIFEST_PATH")"
        # written aside and put in place by install(1), as the files are: a
        # redirect would follow a link planted at the manifest's name
        tmp=$(mktemp)
        {
            for line in "${list[@]}"; do echo "${line##* }"; done
            for d in "${CREATED[@]}"; do echo "dir $d"; done
        } >"$tmp"
        install -m 0644 "$tmp" "$DESTDIR$MANIFEST_PATH"
        rm -f "$tmp"
    fi
    # a new shared library in the real system: refresh the loader's cache
    if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
        ldconfig
    fi
}

# A manifest line install could have written: an absolute path with no
# "." or ".." in it. Anyone who could write the manifest (a DESTDIR others
# may write) could otherwise name "/../../x" and have uninstall remove x.
manifest_path_ok() {
    case $1/ in
        */../* | */./*) return 1 ;;
    esac
    [[ $1 == /* && $1 != *[[:cntrl:]]* ]]
}

# Remove the files (and created directories, innermost first) the manifest
# names; without a manifest, the files the entries list would install.
do_uninstall() {
    local paths=() dirs=() line i path
    if [ -f "$DESTDIR$MANIFEST_PATH" ] && [ ! -L "$DESTDIR$MANIFEST_PATH" ]; then
        while IFS= read -r line; do
            path=${line#dir }
            if ! manifest_path_ok "$path"; then
                echo "xdevice: $DESTDIR$MANIFEST_PATH: \"$line\" is no path install writes there; left alone" >&2
                continue
            fi
            case $line in
                "dir "*) dirs+=("$path") ;;
                *) paths+=("$line") ;;
            esac
        done <"$DESTDIR$MANIFEST_PATH"
        paths+=("$MANIFEST_PATH")
    else
        echo "xdevice: no $DESTDIR$MANIFEST_PATH; removing the files this version installs" >&2
        while IFS= read -r line; do paths+=("${line##* }"); done < <(entries)
    fi
    for line in "${paths[@]}"; do
        if [ -e "$DESTDIR$line" ] || [ -L "$DESTDIR$line" ]; then
            rm -f "$DESTDIR$line"
            echo "  removed $line"
        fi
    done
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        rmdir --ignore-fail-on-non-empty "$DESTDIR${dirs[i]}" 2>/dev/null || true
    done
    if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
        ldconfig
    fi
}

case "${1:-}" in
    install) do_install ;;
    uninstall) do_uninstall ;;
    *) die "usage: install.sh install|uninstall (got '${1:-}')" ;;
esac
