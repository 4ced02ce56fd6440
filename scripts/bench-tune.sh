#!/usr/bin/env bash
# bench-tune.sh - does xdtune search find, with a quarter of the trials, what
# a full grid search finds, and does its model beat random picks?
#
#   1. the ground truth: grid-search a fixed space (jobs/tune-space.ini, 48
#      configurations of jobs/tune.fio's read cache) GRID_REPS times and run
#      the TOP best REFINE more times each; the configuration with the best
#      median IOPS is the grid optimum;
#   2. xdtune search with a budget of 25% of the grid (then FINALISTS x
#      REPEATS re-measurements, as a user runs it), SEEDS times (gp, the
#      default), and --method random with the same budget and seeds;
#   3. scoring: the grid optimum and every search's winner are measured
#      again VERIFY times each, interleaved, and each winner's median IOPS
#      over the optimum's is its score (capped at 1: a winner cannot beat the
#      optimum, it ties it). Fresh runs, so that neither the luck that made
#      the optimum win the grid nor the luck that made a winner win its search
#      counts (a grid max of noisy medians is biased high).
#      PASS: gp's median score >= 0.95, and above random's.
#
# `bench-tune.sh live` runs only scripts/bench-tune-live.sh (the daemon's
# cache target), `bench-tune.sh search` only the above; no argument, both.
#
# Knobs: SEEDS ("1 2 3 4 5"), GRID_REPS (2), TOP (8), REFINE (3), VERIFY (5),
# FINALISTS (2), REPEATS (3), JOB, START, SPACE, OUT (build/bench-tune);
# XDEVICE_SCRATCH (/var/tmp): where jobs/tune-fill.fio put the container.
set -euo pipefail
cd "$(dirname "$0")/.."
# jobs/tune.fio reads its container from $XDEVICE_SCRATCH (README, "Scratch files")
export XDEVICE_SCRATCH=${XDEVICE_SCRATCH:-/var/tmp}

what=${1:-all}
case "$what" in
    live) exec bash scripts/bench-tune-live.sh ;;
    search|all) ;;
    *) echo "bench-tune: unknown part \"$what\"; use search, live or nothing for both" >&2; exit 2 ;;
esac

XDTUNE=build/xdtune
JOB=${JOB:-jobs/tune.fio}
START=${START:-jobs/tune-start.ini}
SPACE=${SPACE:-jobs/tune-space.ini}
OUT=${OUT:-build/bench-tune}
SEEDS=${SEEDS:-1 2 3 4 5}
FINALISTS=${FINALISTS:-2}
REPEATS=${REPEATS:-3}
GRID_REPS=${GRID_REPS:-2}
TOP=${TOP:-8}
REFINE=${REFINE:-3}
VERIFY=${VERIFY:-5}

[ -x "$XDTUNE" ] || { echo "bench-tune: $XDTUNE not built; run make" >&2; exit 1; }
# shellcheck source=scripts/out-dir.sh
. "$(dirname "$0")/out-dir.sh"
fresh_out_dir "$(basename "$0")" "$OUT"
mkdir -p "$OUT/runs"

# python3 only reads the result files
py() { /usr/bin/python3 -c "$@"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Every trial's job copy names its candidate config, so running a trial's
# .fio again measures that configuration again. configs.json maps each
# configuration (its space values, as JSON) to one such job copy;
# runs/<stage>-<n>-<rep>.json are the extra runs, n the job copy's index.
index_configs() {
    py '
import json, sys
jobs = {}
for path in sys.argv[2:]:
    for t in json.load(open(path))["trials"]:
        jobs.setdefault(json.dumps(t["config"], sort_keys=True), t["ini"][:-4] + ".fio")
json.dump(jobs, open(sys.argv[1], "w"), indent=1)
' "$OUT/configs.json" "$@"
}

# run_configs STAGE REPS CONFIG_JSON...: each configuration REPS times,
# round-robin, so a slow minute of the machine hits them all alike.
run_configs() {
    local stage=$1 reps=$2
    shift 2
    local jobs
    jobs=$(py '
import json, sys
jobs = json.load(open(sys.argv[1]))
print(" ".join(jobs[c] for c in sys.argv[2:]))
' "$OUT/configs.json" "$@")
    for rep in $(seq 1 "$reps"); do
        local n=0
        for job in $jobs; do
            n=$((n + 1))
            fio --output-format=json --output="$OUT/runs/$stage-$n-$rep.json" "$job" > /dev/null 2>&1 || true
        done
    done
    # which configuration each n was
    py '
import json, sys
json.dump(sys.argv[2:], open(sys.argv[1], "w"))
' "$OUT/runs/$stage.order.json" "$@"
}

# medians STAGE [HISTORY...] > JSON: each configuration's median IOPS over
# the stage's runs (and the histories' trials, when given).
medians() {
    local stage=$1
    shift
    py '
import glob, json, os, statistics, sys
out, stage = sys.argv[1], sys.argv[2]
runs = {}
for path in sys.argv[3:]:
    for t in json.load(open(path))["trials"]:
        if not t["failed"]:
            runs.setdefault(json.dumps(t["config"], sort_keys=True), []).append(t["figures"]["iops"])
order_path = os.path.join(out, "runs", stage + ".order.json")
order = json.load(open(order_path)) if os.path.exists(order_path) else []
for i, config in enumerate(order, 1):
    for f in glob.glob(os.path.join(out, "runs", "%s-%d-*.json" % (stage, i))):
        try:
            text = open(f).read()
            doc = json.loads(text[text.index("{"):])
            runs.setdefault(config, []).append(
                sum(j["read"]["iops"] + j["write"]["iops"] for j in doc["jobs"]))
        except (ValueError, KeyError):
            pass
print(json.dumps({k: statistics.median(v) for k, v in runs.items()}, indent=1))
' "$OUT" "$stage" "$@"
}

describe() { py 'import json, sys; print(" ".join(f"{k}={v}" for k, v in json.loads(sys.argv[1]).items()))' "$1"; }

t0=$(date +%s)
echo "bench-tune: ground truth: grid search of $SPACE on $JOB, $GRID_REPS passes"
for pass in $(seq 1 "$GRID_REPS"); do
    "$XDTUNE" search --job "$JOB" --config "$START" --space "$SPACE" --out "$OUT/grid-$pass" \
        --method grid --repeats 0 --finalists 1 --quiet > "$OUT/grid-$pass.log" 2>&1 || true
done
index_configs "$OUT"/grid-*/history.json
medians none "$OUT"/grid-*/history.json > "$OUT/grid.json"
mapfile -t top < <(py '
import json, sys
m = json.load(open(sys.argv[1]))
for k in sorted(m, key=m.get, reverse=True)[: int(sys.argv[2])]:
    print(k)
' "$OUT/grid.json" "$TOP")
run_configs refine "$REFINE" "${top[@]}"
medians refine "$OUT"/grid-*/history.json > "$OUT/truth.json"
read -r grid_n optimum < <(py '
import json, sys
m = json.load(open(sys.argv[1]))
print(len(m), max(m, key=m.get))
' "$OUT/truth.json")
budget=$(( (grid_n + 3) / 4 ))
echo "bench-tune: grid: $grid_n configurations x $GRID_REPS, the top $TOP x $REFINE more, in $(( $(date +%s) - t0 )) s"
echo "bench-tune: grid optimum: $(describe "$optimum"), $(py 'import json,sys; print(round(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$OUT/truth.json" "$optimum") IOPS (median)"
echo "bench-tune: budget $budget trials (25%), then $FINALISTS finalists x $REPEATS re-measurements"

winners=()
for method in gp random; do
    for seed in $SEEDS; do
        dir="$OUT/$method-$seed"
        "$XDTUNE" search --job "$JOB" --config "$START" --space "$SPACE" --out "$dir" \
            --method "$method" --budget "$budget" --seed "$seed" --finalists "$FINALISTS" \
            --repeats "$REPEATS" --quiet > "$dir.log" 2>&1 || true
        winners+=("$(py 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["best"]["config"], sort_keys=True))' "$dir/history.json")")
    done
done

# the optimum and the distinct winners, measured afresh
mapfile -t verify < <(printf '%s\n' "$optimum" "${winners[@]}" | awk '!seen[$0]++')
echo "bench-tune: scoring: the optimum and ${#verify[@]} distinct configurations x $VERIFY runs"
run_configs verify "$VERIFY" "${verify[@]}"
medians verify > "$OUT/verify.json"

declare -A ratios
i=0
for method in gp random; do
    ratios[$method]=""
    for seed in $SEEDS; do
        w=${winners[$i]}
        i=$((i + 1))
        r=$(py '
import json, sys
m = json.load(open(sys.argv[1]))
print("%.4f" % min(1.0, m.get(sys.argv[2], 0) / m[sys.argv[3]]))
' "$OUT/verify.json" "$w" "$optimum")
        printf 'bench-tune: %-6s seed %s: winner %s -> %.1f%% of the optimum\n' "$method" "$seed" \
            "$(describe "$w")" "$(awk -v r="$r" 'BEGIN { print 100 * r }')"
        ratios[$method]+="$r "
    done
done

gp=$(tr ' ' '\n' <<< "${ratios[gp]}" | grep . | median)
rnd=$(tr ' ' '\n' <<< "${ratios[random]}" | grep . | median)
v1=$(awk -v g="$gp" 'BEGIN { print (g >= 0.95) ? "PASS" : "FAIL" }')
v2=$(awk -v g="$gp" -v r="$rnd" 'BEGIN { print (g > r) ? "PASS" : "FAIL" }')
printf 'bench-tune: median best-found / grid optimum: gp %.3f (target >= 0.95) %s\n' "$gp" "$v1"
printf 'bench-tune: median gp %.3f vs random %.3f (gp must be higher) %s\n' "$gp" "$rnd" "$v2"
echo "bench-tune: total $(( $(date +%s) - t0 )) s; results in $OUT"
live=PASS
if [ "$what" = all ]; then
    bash scripts/bench-tune-live.sh || live=FAIL
fi
[ "$v1" = PASS ] && [ "$v2" = PASS ] && [ "$live" = PASS ]
