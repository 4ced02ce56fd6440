#!/usr/bin/env bash
# check-exports.sh LIB.so HEADER - the shared library exports exactly the
# functions HEADER declares: no internal symbol leaks out, and no declared
# function is missing. The declarations are listed by the compiler itself
# (gcc -aux-info), so macros, line breaks and comments in HEADER cannot fool
# the check. One line on stderr per kind of mismatch, exit 1.
set -euo pipefail
export LC_ALL=C # one collation for sort and comm

so=$1
header=$2
[ -f "$so" ] || { echo "xdevice: $so: no such file (build it first)" >&2; exit 1; }
hpath=$(realpath "$header")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every function HEADER declares (not those of the system headers it includes).
printf '#include "%s"\n' "$hpath" > "$tmp/h.c"
gcc -std=gnu11 -D_GNU_SOURCE -fsyntax-only -aux-info "$tmp/aux" "$tmp/h.c"
# -aux-info writes "/* FILE:LINE:NC */ extern TYPE NAME (PARAMS);" per function:
# NAME is the first identifier followed by a parameter list (" (" then not
# "*", which is a function pointer in the return type, "void (*f (int)) (void)").
grep -F "/* $hpath:" "$tmp/aux" | sed -E 's|^/\*[^*]*\*/ *||' \
    | awk 'match($0, /[A-Za-z_][A-Za-z_0-9]* \([^*]/) {print substr($0, RSTART, RLENGTH - 3)}' \
    | sort -u > "$tmp/declared"
[ -s "$tmp/declared" ] || { echo "xdevice: $header: no function declarations found" >&2; exit 1; }

# What the library exports (version suffixes dropped), less the names some
# linkers define in every shared object.
nm -D --defined-only "$so" | awk '{print $NF}' | sed 's/@.*//' \
    | grep -v -x -E '_init|_fini|_edata|_end|__bss_start' | sort -u > "$tmp/exported" || true
# Everything the library defines, hidden or not (from .symtab, when not stripped).
nm --defined-only "$so" 2> /dev/null | awk '{print $NF}' | sort -u > "$tmp/defined" || true

rc=0
extra=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$extra" ]; then
    echo "xdevice: $so exports symbols that $header does not declare (make them static, or keep them out of XD_API): ${extra//$'\n'/ }" >&2
    rc=1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    hidden=$(comm -12 <(printf '%s\n' "$missing") "$tmp/defined")
    absent=$(comm -23 <(printf '%s\n' "$missing") "$tmp/defined")
    [ -z "$hidden" ] || echo "xdevice: $so does not export functions that $header declares: put XD_API in front of their declarations in $header: ${hidden//$'\n'/ }" >&2
    [ -z "$absent" ] || echo "xdevice: $header declares functions that $so does not define: ${absent//$'\n'/ }" >&2
    rc=1
fi
exit $rc
