#!/usr/bin/env bash
# bench-tune.sh - does xdtune search find, with a quarter of the trials, what
# a full grid search finds, and does its model beat random picks?
#
#   1. grid-search a fixed space (jobs/tune-space.ini, 72 configurations) of
#      a 1 s job GRID_REPS times, then run the TOP best REFINE more times
#      each, interleaved: every configuration's median IOPS is the ground
#      truth (one pass alone is too noisy on a shared machine, and the top
#      is where a 5% difference decides);
#   2. xdtune search --budget 25% of the grid, SEEDS times (gp, the default),
#      and --method random with the same budget and seeds;
#   3. each run's winner is scored by its ground-truth IOPS over the grid
#      optimum's, so the noise of the run's own re-measurements does not
#      flatter it. PASS: the median gp ratio >= 0.95 and above random's.
#
# `bench-tune.sh live` runs only scripts/bench-tune-live.sh (the daemon's
# cache target), `bench-tune.sh search` only the above; no argument, both.
#
# Knobs: SEEDS ("1 2 3 4 5"), GRID_REPS (2), TOP (10), REFINE (4), JOB,
# START, SPACE, OUT (build/bench-tune).
set -euo pipefail
cd "$(dirname "$0")/.."

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
TOP=${TOP:-10}
REFINE=${REFINE:-4}

[ -x "$XDTUNE" ] || { echo "bench-tune: $XDTUNE not built; run make" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"

# python3 only reads the result files
py() { /usr/bin/python3 -c "$@"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

t0=$(date +%s)
echo "bench-tune: grid search of $SPACE on $JOB, $GRID_REPS passes (ground truth)"
for pass in $(seq 1 "$GRID_REPS"); do
    "$XDTUNE" search --job "$JOB" --config "$START" --space "$SPACE" --out "$OUT/grid-$pass" \
        --method grid --repeats 0 --finalists 1 --quiet > "$OUT/grid-$pass.log" 2>&1 || true
done
# The TOP configurations of the passes so far, run again through the
# trial's own job copy (it names its candidate config).
top=$(py '
import json, statistics, sys
runs = {}
for path in sys.argv[2:]:
    for t in json.load(open(path))["trials"]:
        if not t["failed"]:
            runs.setdefault(json.dumps(t["config"], sort_keys=True), []).append(
                (t["figures"]["iops"], t["ini"][:-4] + ".fio"))
best = sorted(runs, key=lambda k: -statistics.median(v[0] for v in runs[k]))[: int(sys.argv[1])]
print(" ".join(runs[k][0][1] for k in best))
' "$TOP" "$OUT"/grid-*/history.json)
mkdir -p "$OUT/refine"
for rep in $(seq 1 "$REFINE"); do
    for job in $top; do
        fio --output-format=json --output="$OUT/refine/$(basename "$(dirname "$(dirname "$job")")")-$(basename "$job" .fio)-$rep.json" "$job" > /dev/null 2>&1 || true
    done
done
# truth.json: each configuration's median IOPS over the passes and refinements
py '
import json, statistics, sys
runs = {}
for path in sys.argv[2:]:
    for t in json.load(open(path))["trials"]:
        if not t["failed"]:
            runs.setdefault(json.dumps(t["config"], sort_keys=True), []).append(t["figures"]["iops"])
import glob, os
by_fio = {}
for path in sys.argv[2:]:
    for t in json.load(open(path))["trials"]:
        by_fio[os.path.basename(os.path.dirname(os.path.dirname(t["ini"]))) + "-" + os.path.basename(t["ini"])[:-4]] = json.dumps(t["config"], sort_keys=True)
for f in glob.glob(os.path.join(os.path.dirname(sys.argv[1]), "refine", "*.json")):
    name = os.path.basename(f).rsplit("-", 1)[0]
    try:
        text = open(f).read()
        doc = json.loads(text[text.index("{"):])
        runs[by_fio[name]].append(sum(j["read"]["iops"] + j["write"]["iops"] for j in doc["jobs"]))
    except (ValueError, KeyError):
        pass
json.dump({k: statistics.median(v) for k, v in runs.items()}, open(sys.argv[1], "w"), indent=1)
' "$OUT/truth.json" "$OUT"/grid-*/history.json
read -r grid_n grid_best grid_cfg < <(py '
import json, sys
truth = json.load(open(sys.argv[1]))
k = max(truth, key=truth.get)
print(len(truth), round(truth[k]), " ".join(f"{a}={b}" for a, b in json.loads(k).items()))
' "$OUT/truth.json")
budget=$(( (grid_n + 3) / 4 ))
echo "bench-tune: grid: $grid_n configurations x $GRID_REPS, the top $TOP x $REFINE more, in $(( $(date +%s) - t0 )) s; optimum $grid_best IOPS median ($grid_cfg)"
echo "bench-tune: budget $budget trials (25%), then $FINALISTS finalists x $REPEATS re-measurements"

# The winner's ground-truth IOPS over the grid optimum's.
truth_ratio() {
    py '
import json, sys
truth = json.load(open(sys.argv[1]))
best = json.load(open(sys.argv[2]))["best"]["config"]
print("%.4f" % (truth.get(json.dumps(best, sort_keys=True), 0) / max(truth.values())))
' "$OUT/truth.json" "$1"
}

declare -A ratios
for method in gp random; do
    ratios[$method]=""
    for seed in $SEEDS; do
        dir="$OUT/$method-$seed"
        "$XDTUNE" search --job "$JOB" --config "$START" --space "$SPACE" --out "$dir" \
            --method "$method" --budget "$budget" --seed "$seed" --finalists "$FINALISTS" \
            --repeats "$REPEATS" --quiet > "$dir.log" 2>&1 || true
        r=$(truth_ratio "$dir/history.json")
        winner=$(py 'import json,sys; print(" ".join(f"{k}={v}" for k,v in json.load(open(sys.argv[1]))["best"]["config"].items()))' "$dir/history.json")
        printf 'bench-tune: %-6s seed %s: winner %s -> %.1f%% of the grid optimum\n' "$method" "$seed" "$winner" "$(awk -v r="$r" 'BEGIN { print 100 * r }')"
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
