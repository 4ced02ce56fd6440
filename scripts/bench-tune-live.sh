#!/usr/bin/env bash
# bench-tune-live.sh - does `xdtune daemon` bring a running zipf job's cache
# hit ratio to its target (target_cache_hit_ratio=0.85, the cache starting at
# about 1% of the working set) within 10 tuning intervals, while fio keeps
# running? jobs/tune-live.fio and jobs/tune-live.ini, with XDEVICE_SCRATCH
# (the job's one directory) set to OUT.
#
# Knobs: INTERVAL (2 s), CYCLES (10), OUT (build/bench-tune-live).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build/bench-tune-live}
INTERVAL=${INTERVAL:-2}
CYCLES=${CYCLES:-10}
# shellcheck source=scripts/knobs.sh
. scripts/knobs.sh
knob_whole INTERVAL "$INTERVAL" 1
knob_whole CYCLES "$CYCLES" 1
RUNTIME=$(( INTERVAL * CYCLES + 15 ))
# shellcheck source=scripts/out-dir.sh
. "$(dirname "$0")/out-dir.sh"
fresh_out_dir "$(basename "$0")" "$OUT"
out=$(realpath "$OUT")

export XDEVICE_SCRATCH=$out
cp jobs/tune-live.ini "$out/xdtune-live.ini"
sed -e "s|^runtime=.*|runtime=$RUNTIME|" jobs/tune-live.fio > "$out/live.fio"

# lay the file out and warm nothing: the first run only writes it
fio --name=layout --filename="$out/xdevice-tune-live.dat" --size=256m --rw=write --bs=1m \
    --output=/dev/null > /dev/null
fio --status-interval=1 --output-format=json --output="$out/live.status" "$out/live.fio" \
    > "$out/fio.log" 2>&1 &
fio_pid=$!
sleep 2
build/xdtune daemon --config "$out/xdtune-live.ini" --fio-status "$out/live.status" \
    --stats "$out/xdtune-live.stats.json.jsonl" --history "$out/history.json" \
    --interval "$INTERVAL" --cycles "$CYCLES" | tee "$out/daemon.log"
running=$(kill -0 "$fio_pid" 2>/dev/null && echo yes || echo no)
fio_rc=0
wait "$fio_pid" || fio_rc=$?

# the first cycle whose measured hit ratio is at the target
read -r reached last applied < <(/usr/bin/python3 -c '
import json, re, sys
target = 0.85
reached, last = 0, 0.0
for line in open(sys.argv[1]):
    m = re.match(r"xdtune: cycle (\d+): cache_hit_ratio ([0-9.]+)$", line)
    if m:
        last = float(m.group(2))
        if not reached and last >= target:
            reached = int(m.group(1))
h = json.load(open(sys.argv[2]))
applied = all(c.get("engine_applied", False) for c in h["changes"] if "after" in c["effect"])
print(reached, last, "yes" if applied and h["changes"] else "no")
' "$out/daemon.log" "$out/history.json")
grep -h "xdevice:" "$out/fio.log" | sort | uniq -c | head -5 || true
echo "bench-tune-live: hit ratio target 0.85 reached at cycle ${reached/#0/never} of $CYCLES (last measured $last)"
echo "bench-tune-live: every change reloaded by the engine: $applied; fio still running after the daemon: $running; fio exit $fio_rc"
ok=FAIL
[ "$reached" -ge 1 ] && [ "$reached" -le "$CYCLES" ] && [ "$applied" = yes ] && [ "$running" = yes ] && [ "$fio_rc" -eq 0 ] && ok=PASS
echo "bench-tune-live: $ok"
[ "$ok" = PASS ]
