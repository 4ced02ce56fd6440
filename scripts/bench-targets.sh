#!/usr/bin/env bash
# bench-targets.sh - the storage types' own targets (`make bench-targets`):
# sparse, compressed, cache and hybrid, each a ratio of two figures measured
# side by side in this run. Apart from `make bench` so the bench mix stays a
# few minutes; these take about ten more on 2 cores.
#
# Each prints PASS or FAIL per target; a missed target is reported, not
# fatal, and the others still run. Output: results/targets-<timestamp>-<pid>/
# NAME-targets.txt. Exit status: 0 every target met, 1 some missed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=$(date +%Y%m%d-%H%M%S)-$$
out=results/targets-$stamp
mkdir -p results
mkdir "$out"
missed=()
for t in sparse compress cache hybrid; do
    echo
    echo "bench-targets: $t (scripts/bench-$t.sh)" >&2
    if ! bash "scripts/bench-$t.sh" | tee "$out/$t-targets.txt"; then
        echo "bench-targets: a $t target was missed (above)" >&2
        missed+=("$t")
    fi
done
echo "bench-targets: results in $out"
if [ ${#missed[@]} -gt 0 ]; then
    echo "bench-targets: targets missed in: ${missed[*]}" >&2
    exit 1
fi
