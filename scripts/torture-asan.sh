#!/bin/bash
# torture-asan.sh BUILD - tests/torture.py over the engine built with ASan
# and UBSan (BUILD/asan/xdevice.so, which `make torture-asan` builds first):
# the random jobs of `make torture` reach paths that the short matrix of
# `make sanitize` never runs (numjobs in processes, bssplit, trims, live
# reloads, hybrid migration, corrupt and read-back passes).
#
# /usr/bin/fio is not instrumented: a wrapper named fio, first in PATH,
# preloads the runtime into it, so the xdevice runs and the oracle runs of
# fio's own engines both go through it. A memory error or undefined
# behaviour aborts fio (halt_on_error), which fails its case; the ASan
# reports (log_path) and the UBSan ones (fio's stderr, in the case's
# output) are printed at the end. Leaks are not looked for here (fio's own
# are many; `make sanitize` checks xdevice's). The engine is a copy, so a
# rebuild of the tree during the run cannot pull it from under fio.
#
# Environment: what tests/torture.py takes (TORTURE_SEED, TORTURE_CASES,
# TORTURE_TYPES, TORTURE_DIR, ...); XDEVICE_SCRATCH (default /var/tmp)
# holds this script's scratch directory (the engine's copy, the wrapper,
# the reports); CC (gcc) names the compiler whose runtime is preloaded, as
# the Makefile built the engine with it.
set -euo pipefail

build=${1:-build}
engine="$build/asan/xdevice.so"
[ -f "$engine" ] || { echo "torture-asan: $engine is missing (make torture-asan builds it)" >&2; exit 2; }
runtime=$("${CC:-gcc}" -print-file-name=libasan.so)
[ -f "$runtime" ] || {
    echo "torture-asan: ${CC:-gcc} names no libasan.so runtime (install libasan8: scripts/deps.sh)" >&2
    exit 2
}
fio_bin=$(command -v fio) || { echo "torture-asan: fio is not installed" >&2; exit 2; }

work=$(mktemp -d "${XDEVICE_SCRATCH:-/var/tmp}/xdevice-torture-asan.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT TERM HUP # so that EXIT runs the cleanup on a signal too
mkdir "$work/bin" "$work/logs"
cp "$engine" "$work/xdevice.so"
cat > "$work/bin/fio" <<EOF
#!/bin/sh
LD_PRELOAD=$runtime \\
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:log_path=$work/logs/asan \\
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \\
exec $fio_bin "\$@"
EOF
chmod +x "$work/bin/fio"

rc=0
PATH="$work/bin:$PATH" XD_ENGINE="$work/xdevice.so" TORTURE_TARGET=torture-asan \
    "${PYTHON:-python3}" tests/torture.py || rc=$?
reports=$(find "$work/logs" -type f -size +0 | sort)
if [ -n "$reports" ]; then
    echo "torture-asan: sanitizer reports:"
    for r in $reports; do
        sed 's/^/    /' "$r"
    done
    rc=1
fi
exit "$rc"
