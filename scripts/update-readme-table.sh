#!/usr/bin/env bash
# update-readme-table.sh XDCONFIG README - replace the parameter table between
# the schema markers in README with `xdconfig markdown`, the schema's own view.
set -euo pipefail
xdconfig=$1 readme=$2
table=$(mktemp)
trap 'rm -f "$table" "$readme.tmp"' EXIT
"$xdconfig" markdown > "$table"
grep -q '<!-- schema:begin -->' "$readme" || { echo "$readme: no <!-- schema:begin --> marker" >&2; exit 1; }
awk -v table="$table" '
    /<!-- schema:end -->/ { skipping = 0 }
    !skipping { print }
    /<!-- schema:begin -->/ { while ((getline line < table) > 0) print line; skipping = 1 }
' "$readme" > "$readme.tmp"
mv "$readme.tmp" "$readme"
