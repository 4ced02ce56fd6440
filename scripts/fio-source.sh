#!/usr/bin/env bash
# fio-source.sh OUTDIR - fetch and configure the source of exactly the fio
# package that is installed, so the external ioengine is compiled against the
# same struct layouts (thread_data, io_u, fio_file) as /usr/bin/fio.
#
# The source comes from the Debian archive with `apt-get source`, through a
# private apt state under OUTDIR/apt (deb-src copies of this machine's sources,
# private lists and cache); the system's apt configuration is not touched.
#
# Progress goes to stderr; stdout is one line, the configured source dir.
# Every failure is one line on stderr, exit 1.
set -euo pipefail

die() { echo "xdevice: fio-source.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: fio-source.sh OUTDIR"
mkdir -p "$1" || die "cannot create $1"
OUTDIR=$(cd "$1" && pwd) || die "cannot enter $1"

version=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) || true
[ -n "$version" ] || die "fio is not installed (dpkg-query -W fio found nothing)"
upver=${version#*:}                 # file names carry no epoch
SRC="$OUTDIR/fio-$upver"

if [ -f "$SRC/config-host.h" ] && [ -f "$SRC/.xd-configured" ]; then
    echo "$SRC"
    exit 0
fi

command -v dpkg-source >/dev/null || die "dpkg-source not found (install dpkg-dev)"

APT="$OUTDIR/apt"
DL="$APT/dl"
DSC="$DL/fio_$upver.dsc"

# --- private apt state with deb-src entries ---------------------------------
setup_apt() {
    rm -rf "$APT/sources.list.d" "$APT/sources.list"
    mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$DL" \
        || die "cannot create $APT"

    local f base
    for f in /etc/apt/sources.list.d/*; do
        [ -f "$f" ] || continue
        base=${f##*/}
        case "$base" in
            *.disabled*) continue ;;
            *.sources)   # deb822: every stanza becomes a source stanza
                sed -E 's/^Types:.*/Types: deb-src/' "$f" > "$APT/sources.list.d/$base" \
                    || die "cannot convert $f" ;;
            *.list)      # one-line format
                sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' "$f" > "$APT/sources.list.d/$base" \
                    || die "cannot convert $f" ;;
        esac
    done
    : > "$APT/sources.list"
    if [ -f /etc/apt/sources.list ]; then
        sed -nE 's/^[[:space:]]*deb[[:space:]]+/deb-src /p' /etc/apt/sources.list > "$APT/sources.list" \
            || die "cannot convert /etc/apt/sources.list"
    fi

    # Loaded after the system configuration: drop the hooks that
    # `apt-get update` runs (they refresh system caches such as AppStream).
    cat > "$APT/apt.conf" <<'EOF' || die "cannot write $APT/apt.conf"
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
EOF
}

APT_OPTS=(
    -c "$APT/apt.conf"
    -o "Dir::Etc::SourceList=$APT/sources.list"
    -o "Dir::Etc::SourceParts=$APT/sources.list.d"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT/cache"
)
# As root apt would drop to the _apt user, which usually cannot write under
# OUTDIR; say so up front instead of getting the "unsandboxed" warning.
[ "$(id -u)" -eq 0 ] && APT_OPTS+=(-o "APT::Sandbox::User=root")

extract() {
    rm -rf "$SRC"
    (cd "$DL" && dpkg-source -x --no-check --no-copy "fio_$upver.dsc" "$SRC") > "$APT/extract.log" 2>&1
}

# A previous run may have downloaded the source already: try it before the network.
if ! { [ -f "$DSC" ] && extract; }; then
    echo "xdevice: fetching the source of fio $version from the Debian archive" >&2
    setup_apt
    update_ok=1
    apt-get "${APT_OPTS[@]}" update > "$APT/update.log" 2>&1 || update_ok=0
    if ! (cd "$DL" && apt-get "${APT_OPTS[@]}" source --download-only "fio=$version") > "$APT/source.log" 2>&1; then
        if [ $update_ok -eq 0 ]; then
            die "apt-get update (deb-src) failed, see $APT/update.log"
        fi
        die "apt-get source fio=$version failed, see $APT/source.log"
    fi
    [ -f "$DSC" ] || die "apt-get source fio=$version did not produce $DSC"
    extract || die "dpkg-source -x $DSC failed, see $APT/extract.log"
fi

# --- configure as Debian does -----------------------------------------------
RULES="$SRC/debian/rules"
[ -f "$RULES" ] || die "$RULES not found"
# Join continuation lines, take the first ./configure command.
cfgline=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$RULES" | grep -m1 -E '(^|[[:space:]])\./configure([[:space:]]|$)') \
    || die "no ./configure line in $RULES"
cfgline=${cfgline#*./configure}
cfgline=${cfgline%%[;&|]*}          # stop at the end of the command
flags=()
for w in $cfgline; do
    case "$w" in
        # Left out on purpose: --enable-gfio only adds the GTK front end
        # (gfio) and --enable-libnbd only adds the nbd ioengine. Both need
        # large -dev packages, and neither changes struct thread_data,
        # struct io_u, struct fio_file or anything they embed.
        --enable-gfio|--enable-libnbd) ;;
        *'$'*) die "unexpected make variable in the configure line of $RULES: $w" ;;
        *) flags+=("$w") ;;
    esac
done

echo "xdevice: configuring fio $version: ./configure ${flags[*]}" >&2
(cd "$SRC" && ./configure "${flags[@]}") > "$SRC/.xd-configure.log" 2>&1 \
    || die "./configure ${flags[*]} failed in $SRC, see $SRC/.xd-configure.log"
[ -f "$SRC/config-host.h" ] || die "./configure did not produce $SRC/config-host.h"
grep -q '^#define CONFIG_LIBAIO' "$SRC/config-host.h" \
    || die "$SRC/config-host.h lacks CONFIG_LIBAIO (is libaio-dev installed?); io_u would not match /usr/bin/fio"

defver=$(sed -nE 's/^DEF_VER=//p' "$SRC/FIO-VERSION-GEN" | head -n1)
[ -n "$defver" ] || die "no DEF_VER in $SRC/FIO-VERSION-GEN"
echo "$defver" > "$SRC/.xd-version" || die "cannot write $SRC/.xd-version"
touch "$SRC/.xd-configured" || die "cannot write $SRC/.xd-configured"

echo "$SRC"
