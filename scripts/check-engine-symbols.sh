#!/usr/bin/env bash
# check-engine-symbols.sh ENGINE.so FIO - link-time checks for the external
# ioengine, which is linked without -z defs because fio's helpers resolve from
# the running fio binary:
#   - every undefined symbol must be defined by fio or by a library the engine
#     is linked against, or fio fails to load the engine;
#   - no symbol may be defined by both the engine and fio: fio (-rdynamic) comes
#     first in the lookup scope, so the engine would silently call fio's copy.
# One line on stderr per failed check, exit 1.
set -euo pipefail

so=$1
fio=$2
[ -x "$fio" ] || exit 0     # nothing to check against

syms() { nm -D "$@" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//' | sort -u; }

mine=$(syms --defined-only "$so")
fio_defs=$(syms --defined-only "$fio")
# The libraries the engine is linked against (paths from ldd). fio's own
# libraries would resolve symbols too, but relying on them is a missing -l.
libs=$(ldd "$so" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
lib_defs=$(for l in $libs; do syms --defined-only "$l"; done | sort -u)

rc=0
# Weak undefined symbols (w, v) may stay unresolved.
undef=$(nm -D --undefined-only "$so" | awk '$1 == "U" {print $2}' | sed 's/@.*//' | sort -u)
missing=$(comm -23 <(printf '%s\n' "$undef") <(printf '%s\n' "$fio_defs" "$lib_defs" "$mine" | sort -u) | grep -v '^$' || true)
if [ -n "$missing" ]; then
    echo "xdevice: $so: undefined symbols that neither $fio nor the engine's libraries define (fio would fail to load it): ${missing//$'\n'/ }" >&2
    rc=1
fi

clash=$(comm -12 <(printf '%s\n' "$mine") <(printf '%s\n' "$fio_defs") \
        | grep -v -x -E '_init|_fini|_edata|_end|__bss_start|' || true)
if [ -n "$clash" ]; then
    echo "xdevice: $so defines symbols that $fio also exports (fio's copy would be called): ${clash//$'\n'/ }" >&2
    rc=1
fi
exit $rc
