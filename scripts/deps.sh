#!/usr/bin/env bash
# deps.sh - make sure the Debian packages needed to build and test xdevice are
# installed. Quiet when nothing is missing. As root it installs what is
# missing; otherwise it prints the one command to run and fails.
set -euo pipefail

# libasan8, libubsan1, libtsan2: gcc 12's sanitizer runtimes for make sanitize
# (build-essential pulls them in today; named so that stays true).
# python3-pytest-xdist: make test runs the end-to-end tests in workers.
PACKAGES="build-essential pkg-config fio liburing-dev libaio-dev zlib1g-dev liblz4-dev libzstd-dev libsnappy-dev libbrotli-dev clang libnuma-dev librdmacm-dev libibverbs-dev python3 python3-pytest python3-pytest-xdist dpkg-dev man-db groff-base gnuplot-nox util-linux strace libcjson-dev chromium libasan8 libubsan1 libtsan2"

missing=()
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    # "install ok installed", "hold ok installed"; not "half-installed",
    # "config-files" or "not-installed".
    case "$status" in
        *" ok installed") ;;
        *) missing+=("$pkg") ;;
    esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "xdevice: missing packages; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "xdevice: installing ${missing[*]}" >&2
if ! apt-get update >&2; then
    echo "xdevice: deps.sh: apt-get update failed" >&2
    exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    echo "xdevice: deps.sh: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
