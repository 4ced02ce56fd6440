#!/usr/bin/env bash
# regress.sh - did the working tree get slower? A same-run A/B check for CI.
#
# Builds BASE (a git ref, default HEAD) from a clean export into build/base,
# runs the fio jobs in jobs/regress/ with the BASE and the working tree's
# engines interleaved (REPS rounds of each job; in a round BASE and NEW run
# back to back on one CPU, the order alternating per round so neither side
# always finds the caches warm), then lets `xdreport compare --paired`
# judge. Rows it cannot decide are confirmed: their jobs run
# REGRESS_CONFIRM_REPS more rounds and the undecided rows are judged again,
# up to REGRESS_CONFIRM times. Results go to results/regress-<timestamp>/
# {base,new}/, with compare.txt, junit.xml, metrics.txt, verdicts.txt and
# exit-status beside them.
#
# How a row is judged. On a shared machine one 1 s run varies by 20% and
# more, but the two runs of a round see the same load, so the gate judges
# the per-round ratios NEW/BASE (runs pair by their round tag, -r03): their
# median and the sign test's interval for it, whose ends a round hit by a
# burst of load (one side's CPU a third slower for a second, a fifth of the
# rounds here) moves by one order statistic instead of blowing it up; it
# assumes only independent rounds. Regression: the interval entirely worse than
# -THRESHOLD%; clean ("same"): entirely within +-THRESHOLD%; else
# inconclusive. The gated row of each job and direction is its median
# (total) latency: what a request costs, which a stall of someone else's
# load does not move (it moves IOPS, the mean and the p99: IOPS ratios of
# 0.84 to 1.52 among the rounds of one A/A run here, medians within a few
# percent), while at a fixed queue depth a slower engine moves it with IOPS
# (Little's law). IOPS, bandwidth, the mean and the p99 are shown as
# "informational", with their interval, never judged. With BASELINE (runs
# of another time, no rounds to pair) compare judges two pooled samples
# instead (Mann-Whitney), every row.
#
# The false alarm rate. One look judges each gated row with each end of
# its interval a one-sided bound at level ALPHA / (1 + CONFIRM) / R, R the
# gated rows (compare splits its --alpha over them). A false "regression"
# (or a false "same") at some look needs that look's bound to miss on one
# row; summed over at most 1 + CONFIRM looks and R rows that is at most
# REGRESS_ALPHA: the whole check exits 1 on an engine no worse than the
# threshold with probability at most REGRESS_ALPHA (0.05), whenever it
# stops. Looking again does not inflate it: each look pays its own share
# of alpha, and a row decided at one look keeps that verdict
# (verdicts.txt, compare --decided) instead of being judged again.
#
#   make regress                          working tree against HEAD
#   make regress BASE=origin/main         against a branch, tag or commit
#   make regress BASELINE=results/regress-20260101-120000/new
#                                         against saved results (not rerun)
#   make regress BASE_ENGINE=/opt/xd/xdevice.so   against an engine built
#                                         elsewhere (for fio 3.33 too)
#
# Environment (make passes command-line variables through):
#   BASE / BASE_ENGINE / BASELINE   see above; the later one wins
#   REGRESS_REPS           rounds (runs per side) of each job (12)
#   REGRESS_RUNTIME        fio runtime of each run (1s; fio time units):
#                          more short rounds pair better than few long ones
#   REGRESS_THRESHOLD      percent change that counts (5)
#   REGRESS_ALPHA          false alarm rate of the whole check (0.05); each
#                          of the 1 + REGRESS_CONFIRM looks at the data uses
#                          ALPHA / (1 + REGRESS_CONFIRM), split over its
#                          gated rows (see above)
#   REGRESS_MIN_RUNS       runs a side needed for a verdict (5)
#   REGRESS_CONFIRM        confirmation rounds for inconclusive rows (2; 0: none)
#   REGRESS_CONFIRM_REPS   runs per side and job that each adds (REGRESS_REPS)
#   REGRESS_PIN            1: each round on one CPU, the next CPU the next
#                          round (taskset; the default), 0: where it lands
#   REGRESS_JOBS           job files (jobs/regress/*.fio)
#   REGRESS_SHM_DIR        tmpfs directory for data files (/dev/shm)
#   REGRESS_DISK_DIR       disk directory for data files ($XDEVICE_SCRATCH, else /var/tmp)
#   REGRESS_OUT            results directory (results/regress-<timestamp>)
#   NEW_CFLAGS             extra CFLAGS for the working tree's engine, which
#                          is then built into build/new instead of build/
#   REGRESS_INSTR          1 (default): also count BASE's and NEW's user-space
#                          instructions per 4k read under cachegrind (a sync
#                          read of a tmpfs file, about 15 s; informational,
#                          never judged: instructions.txt); 0: not
#
# Exit status (also written to $OUT/exit-status):
#   0  clean: every gated row decided, none a regression beyond the threshold
#   1  a regression (the rows on the REGRESSION: line)
#   3  inconclusive after the confirmation budget: no regression shown, but
#      the rows on the INCONCLUSIVE: line (also on stderr) were not decided
#   2  bad input or a failed build or run (one line says which)
# GNU make exits 2 for any failing recipe, so `make regress` can only say
# 0 or 2 (a line names the script's status): CI that tells 1 from 3
# runs this script (README, "Regression checks in CI").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { echo "regress: $*" >&2; exit 2; }
# shellcheck source=scripts/fio-clock.sh
. scripts/fio-clock.sh
FIO_CLOCK=$(fio_clock_option) || exit 2
say() { echo "regress: $*" >&2; }
# Builds here take no variables from an outer make (`make regress X=...`
# would otherwise hand them to every sub-make); -j is given explicitly.
submake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@"; }

REPS=${REGRESS_REPS:-12}
RUNTIME=${REGRESS_RUNTIME:-1s}
THRESHOLD=${REGRESS_THRESHOLD:-5}
ALPHA=${REGRESS_ALPHA:-0.05}
MIN_RUNS=${REGRESS_MIN_RUNS:-5}
CONFIRM=${REGRESS_CONFIRM:-2}
CONFIRM_REPS=${REGRESS_CONFIRM_REPS:-$REPS}
PIN=${REGRESS_PIN:-1}
SHM_DIR=${REGRESS_SHM_DIR:-/dev/shm}
DISK_DIR=${REGRESS_DISK_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${REGRESS_OUT:-results/regress-$STAMP}
NCPU=$(nproc 2>/dev/null || echo 2)
XDREPORT=$ROOT/build/xdreport

[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REGRESS_REPS=$REPS: a whole number of runs from 1"
[[ $CONFIRM =~ ^[0-9]+$ ]] || die "REGRESS_CONFIRM=$CONFIRM: a whole number of confirmation rounds from 0"
[[ $PIN =~ ^[01]$ ]] || die "REGRESS_PIN=$PIN: 1 (pin each round to one CPU) or 0"
[[ $CONFIRM_REPS =~ ^[1-9][0-9]*$ ]] || die "REGRESS_CONFIRM_REPS=$CONFIRM_REPS: a whole number of runs from 1"
# checked as text before any arithmetic: (( )) evaluates a value such as
# 'REPS[$(cmd)]', and a bad threshold surfaced only after every run
[[ $MIN_RUNS =~ ^[1-9][0-9]{0,5}$ ]] || die "REGRESS_MIN_RUNS=$MIN_RUNS: a whole number of runs from 1"
[[ $THRESHOLD =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk -v t="$THRESHOLD" 'BEGIN { exit !(t > 0 && t < 100) }' ||
    die "REGRESS_THRESHOLD=$THRESHOLD: a percent change above 0 and below 100, such as 5"
disk_knob=REGRESS_DISK_DIR
[ -n "${REGRESS_DISK_DIR:-}" ] || [ -z "${XDEVICE_SCRATCH:-}" ] || disk_knob=XDEVICE_SCRATCH
for knob in REGRESS_SHM_DIR:$SHM_DIR $disk_knob:$DISK_DIR; do
    [ -d "${knob#*:}" ] || die "${knob%%:*}=${knob#*:}: not a directory; allowed: an existing directory (regress makes its own inside)"
done
[[ $ALPHA =~ ^0?\.[0-9]+$ ]] && awk -v a="$ALPHA" 'BEGIN { exit !(a > 0 && a < 0.5) }' \
    || die "REGRESS_ALPHA=$ALPHA: a significance level above 0 and below 0.5, such as 0.05"
LOOK_ALPHA=$(awk -v a="$ALPHA" -v k="$CONFIRM" 'BEGIN { printf "%.6g", a / (1 + k) }')
INSTR=${REGRESS_INSTR:-1}
[[ $INSTR =~ ^[01]$ ]] || die "REGRESS_INSTR=$INSTR: 1 (count instructions per read too) or 0"
[[ $RUNTIME =~ ^[0-9]+(us|ms|s|m)?$ ]] && [[ ! $RUNTIME =~ ^0+(us|ms|s|m)?$ ]] ||
    die "REGRESS_RUNTIME=$RUNTIME: a fio time above 0, such as 2s or 500ms"
# the results go in a directory of this run's own: files in an existing one
# (another user's, in /tmp) are written by name, and fio follows links there
[ ! -e "$OUT" ] && [ ! -L "$OUT" ] ||
    die "REGRESS_OUT=$OUT exists; allowed: a path that does not exist yet (each run's results go in a directory it makes)"
if [ -n "${REGRESS_JOBS:-}" ]; then
    read -r -a JOBS <<< "$REGRESS_JOBS"
else
    JOBS=(jobs/regress/*.fio)
fi
{ [ ${#JOBS[@]} -gt 0 ] && [ -f "${JOBS[0]}" ]; } || die "no job files (REGRESS_JOBS=${REGRESS_JOBS:-jobs/regress/*.fio})"
for f in "${JOBS[@]}"; do [ -f "$f" ] || die "REGRESS_JOBS: $f: no such file"; done
{ [ -d "$SHM_DIR" ] && [ -w "$SHM_DIR" ]; } || die "REGRESS_SHM_DIR=$SHM_DIR is not a writable directory"
{ [ -d "$DISK_DIR" ] && [ -w "$DISK_DIR" ]; } || die "REGRESS_DISK_DIR=$DISK_DIR is not a writable directory"
command -v fio > /dev/null || die "fio is not installed"
((REPS >= MIN_RUNS)) || say "note: REGRESS_REPS=$REPS is below REGRESS_MIN_RUNS=$MIN_RUNS: no row is decided before confirmation runs add enough"

# --- engines -------------------------------------------------------------------

# build/base and build/new are shared by every run in this checkout.
mkdir -p build || die "cannot create build/"
exec 9> build/.regress.lock
if ! flock -n 9; then
    say "waiting for another regress run in this checkout to finish"
    flock 9 || die "cannot lock build/.regress.lock"
fi

# The working tree's own build: the engine, the fio source it is compiled
# against (build/.fio-src-dir) and xdreport. Quiet when up to date.
submake -s --no-print-directory -j"$NCPU" all build/xdreport > /dev/null \
    || die "make all build/xdreport failed in the working tree"
FIO_SRC=$(cat build/.fio-src-dir) || die "build/.fio-src-dir is missing after make"
case $FIO_SRC in /*) ;; *) FIO_SRC=$ROOT/$FIO_SRC ;; esac

# A build directory that reuses the configured fio source instead of
# fetching it again: the Makefile's stamp, newer than what it depends on,
# points at it. (Packages are still checked by that tree's deps.sh.)
seed_build_dir() {
    mkdir -p "$1" || die "cannot create $1"
    echo "$FIO_SRC" > "$1/.fio-src-dir" || die "cannot write $1/.fio-src-dir"
}

if [ -n "${NEW_CFLAGS:-}" ]; then
    NEW_BUILD=build/new
    # objects do not depend on CFLAGS: start over when they change
    if [ "$(cat "$NEW_BUILD/.regress-cflags" 2> /dev/null)" != "$NEW_CFLAGS" ]; then
        rm -rf "$NEW_BUILD"
    fi
    seed_build_dir "$NEW_BUILD"
    echo "$NEW_CFLAGS" > "$NEW_BUILD/.regress-cflags"
    say "building the working tree with CFLAGS=$NEW_CFLAGS into $NEW_BUILD"
    submake -s --no-print-directory -j"$NCPU" BUILD="$NEW_BUILD" CFLAGS="$NEW_CFLAGS" \
        "$NEW_BUILD/xdevice.so" > "$NEW_BUILD/regress-build.log" 2>&1 \
        || die "building the working tree with CFLAGS=$NEW_CFLAGS failed, see $NEW_BUILD/regress-build.log"
    NEW_ENGINE=$ROOT/$NEW_BUILD/xdevice.so
else
    NEW_ENGINE=$ROOT/build/xdevice.so
fi

if [ -n "${BASELINE:-}" ]; then
    [ -d "$BASELINE" ] || die "BASELINE=$BASELINE is not a directory of fio JSON results"
    BASE_DESC="saved results $BASELINE"
    BASE_ENGINE=
elif [ -n "${BASE_ENGINE:-}" ]; then
    [ -f "$BASE_ENGINE" ] || die "BASE_ENGINE=$BASE_ENGINE: no such file"
    BASE_ENGINE=$(realpath "$BASE_ENGINE")
    BASE_DESC="engine $BASE_ENGINE"
else
    ref=${BASE:-HEAD}
    git rev-parse --git-dir > /dev/null 2>&1 || die "BASE=$ref needs a git checkout (or use BASELINE=DIR)"
    commit=$(git rev-parse --verify --quiet "$ref^{commit}") || die "BASE=$ref is not a commit in this repository"
    BASE_DESC="$ref ($(git log -1 --format='%h %s' "$commit"))"
    BASE_DIR=build/base
    BASE_ENGINE=$ROOT/$BASE_DIR/src/build/xdevice.so
    # A commit's tree never changes: rebuild only for another commit.
    if [ "$(cat "$BASE_DIR/.commit" 2> /dev/null)" != "$commit" ] || [ ! -f "$BASE_ENGINE" ]; then
        say "building BASE=$ref ($commit) in $BASE_DIR/src"
        rm -rf "$BASE_DIR"
        mkdir -p "$BASE_DIR/src" || die "cannot create $BASE_DIR/src"
        git archive --format=tar "$commit" | tar -x -C "$BASE_DIR/src" \
            || die "git archive $commit into $BASE_DIR/src failed"
        seed_build_dir "$BASE_DIR/src/build"
        submake -C "$BASE_DIR/src" -j"$NCPU" build/xdevice.so > "$BASE_DIR/build.log" 2>&1 \
            || die "building BASE=$ref failed, see $BASE_DIR/build.log"
        [ -f "$BASE_ENGINE" ] || die "building BASE=$ref made no $BASE_ENGINE"
        echo "$commit" > "$BASE_DIR/.commit"
    fi
fi

# --- runs -----------------------------------------------------------------------

{ mkdir -p -- "$(dirname -- "$OUT")" && mkdir -- "$OUT" && mkdir "$OUT/new" "$OUT/logs" ${BASE_ENGINE:+"$OUT/base"}; } ||
    die "REGRESS_OUT=$OUT: cannot create it (or it appeared meanwhile)"
DATA_SHM=$(mktemp -d "$SHM_DIR/xdevice-regress.XXXXXX") || die "cannot create a directory in $SHM_DIR"
DATA_DISK=$(mktemp -d "$DISK_DIR/xdevice-regress.XXXXXX") || die "cannot create a directory in $DISK_DIR"
trap 'rm -rf "$DATA_SHM" "$DATA_DISK"' EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it

{
    echo "base: $BASE_DESC"
    echo "new:  working tree${NEW_CFLAGS:+ with CFLAGS=$NEW_CFLAGS} ($(git describe --always --dirty 2> /dev/null || echo '?'))"
    echo "jobs: ${JOBS[*]}"
    echo "reps: $REPS, runtime: $RUNTIME, $(fio --version) ($FIO_CLOCK), $(uname -srm), $NCPU CPUs"
} > "$OUT/run.txt"

# pin_to CPU: the command prefix that keeps a run on that CPU (none when
# REGRESS_PIN=0 or taskset is missing).
pin_to() {
    [ "$PIN" = 1 ] && command -v taskset > /dev/null && echo "taskset -c $1"
    return 0
}

# run_job SIDE ENGINE JOB TAG [RUNTIME] [CPU]: one fio run, its JSON into
# $OUT/SIDE/, on CPU when given.
run_job() {
    local side=$1 engine=$2 job=$3 tag=$4 name pin=
    name=$(basename "$job" .fio)
    local json=$OUT/$side/$name-$tag.json log=$OUT/logs/$side-$name-$tag.log
    [ "$side" = warmup ] && json=/dev/null
    [ -n "${6:-}" ] && pin=$(pin_to "$6")
    XD_ENGINE=$engine XD_REGRESS_SHM=$DATA_SHM XD_REGRESS_DISK=$DATA_DISK \
        XD_REGRESS_RUNTIME=${5:-$RUNTIME} \
        $pin fio "$FIO_CLOCK" --output-format=json --output="$json" "$job" > "$log" 2>&1 \
        || die "fio $job ($side) failed, see $log"
    [ -s "$log" ] || rm -f "$log"
}

# run_round N JOB...: round N of the given jobs, BASE and NEW back to back
# on one CPU (the next one each round), who goes first alternating per
# round. Both runs of a round share the machine's load of that moment and
# the CPU's speed (on a VM the CPUs differ by a third): compare --paired
# judges their ratio, from which both cancel.
run_round() {
    local r=$1 tag job cpu
    shift
    tag=$(printf 'r%02d' "$r")
    cpu=$((r % NCPU))
    for job in "$@"; do
        if [ -z "$BASE_ENGINE" ]; then
            run_job new "$NEW_ENGINE" "$job" "$tag" "" "$cpu"
        elif ((r % 2)); then
            run_job base "$BASE_ENGINE" "$job" "$tag" "" "$cpu"
            run_job new "$NEW_ENGINE" "$job" "$tag" "" "$cpu"
        else
            run_job new "$NEW_ENGINE" "$job" "$tag" "" "$cpu"
            run_job base "$BASE_ENGINE" "$job" "$tag" "" "$cpu"
        fi
    done
}

say "BASE: $BASE_DESC"
say "NEW:  working tree${NEW_CFLAGS:+ built with CFLAGS=$NEW_CFLAGS}; $REPS rounds of ${#JOBS[@]} jobs, $RUNTIME each; up to $CONFIRM confirmation round(s) of $CONFIRM_REPS for inconclusive rows"
# One unrecorded run per job lays out the data files and warms the caches.
for job in "${JOBS[@]}"; do run_job warmup "$NEW_ENGINE" "$job" warmup 500ms; done
# Written-back data files: no writeback in the middle of a measured run.
sync -f "$DATA_DISK" 2> /dev/null || sync
for ((round = 1; round <= REPS; round++)); do
    say "round $round of $REPS"
    run_round "$round" "${JOBS[@]}"
done

# --- verdict ----------------------------------------------------------------------

BASE_RESULTS=$OUT/base
[ -n "$BASE_ENGINE" ] || BASE_RESULTS=$BASELINE

# Rounds pair BASE's run K with NEW's run K only when both ran here; saved
# results (BASELINE) ran at another time: two pooled samples then.
PAIRED=
[ -n "$BASE_ENGINE" ] && PAIRED=--paired

# judge: xdreport compare over everything so far; rc is its exit status.
# Rows an earlier look decided keep their verdict (--decided): only the
# undecided ones are judged on the new rounds.
judge() {
    local decided=()
    rc=0
    if [ -f "$OUT/verdicts.txt" ]; then
        mv "$OUT/verdicts.txt" "$OUT/verdicts-before.txt"
        decided=(--decided "$OUT/verdicts-before.txt")
    fi
    "$XDREPORT" compare $PAIRED --threshold "$THRESHOLD" --alpha "$LOOK_ALPHA" \
        --min-runs "$MIN_RUNS" "${decided[@]}" --verdicts "$OUT/verdicts.txt" \
        --junit "$OUT/junit.xml" --metrics "$OUT/metrics.txt" "$BASE_RESULTS" "$OUT/new" \
        > "$OUT/compare.txt" || rc=$?
}

# The rows compare could not decide (label/metric), from its INCONCLUSIVE: line.
inconclusive_rows() {
    sed -n 's/^INCONCLUSIVE: //p' "$OUT/compare.txt"
}

# The job files behind those rows: a row's label is its job's name (the
# file's, as jobs/regress/ keeps them alike) or starts with it and a "/".
inconclusive_jobs() {
    local job name row rows
    rows=$(inconclusive_rows)
    for job in "${JOBS[@]}"; do
        name=$(basename "$job" .fio)
        for row in $rows; do
            if [ "${row%/*}" = "$name" ] || [[ ${row%/*} == "$name/"* ]]; then
                echo "$job"
                break
            fi
        done
    done
}

judge
for ((confirm = 1; rc == 3 && confirm <= CONFIRM; confirm++)); do
    mapfile -t again < <(inconclusive_jobs)
    [ ${#again[@]} -gt 0 ] || break
    say "confirmation $confirm of $CONFIRM: $CONFIRM_REPS more round(s) of ${again[*]} (inconclusive: $(inconclusive_rows))"
    for ((k = 1; k <= CONFIRM_REPS; k++, round++)); do
        run_round "$round" "${again[@]}"
    done
    judge
done

# --- instructions (informational) ---------------------------------------------------

# shellcheck source=scripts/instr-count.sh
. scripts/instr-count.sh
# count_instructions: BASE's and NEW's user-space instructions per 4k read
# of one sync job on a tmpfs file, into $OUT/instructions.txt. Never judged:
# it is steady where the rounds above are not, so a CPU cost the latency
# gate cannot resolve (100 instructions, a few % of a cached read) shows
# here; but an instruction is not a nanosecond (a change may trade them
# for fewer system calls or cache misses), so it informs and does not gate.
count_instructions() {
    local file=$DATA_SHM/instr.dat job b n
    job=(--filename="$file" --size=64m --xd_type=regular --xd_async=sync)
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size=64m --filename="$file" \
        --output=/dev/null > /dev/null 2>&1 || return 1
    b=$(instr_per_read --ioengine=external:"$BASE_ENGINE" "${job[@]}") || return 1
    n=$(instr_per_read --ioengine=external:"$NEW_ENGINE" "${job[@]}") || return 1
    awk -v b="$b" -v n="$n" 'BEGIN { printf "instructions per 4k read (user space, cachegrind; regular + sync, a 64 MiB tmpfs file; informational): base %d, new %d (%+d, %+.1f%%)\n", b, n, n - b, (b > 0) ? 100 * (n - b) / b : 0 }' \
        > "$OUT/instructions.txt"
}
if [ "$INSTR" = 1 ] && [ -n "$BASE_ENGINE" ]; then
    if ! command -v valgrind > /dev/null; then
        say "instructions per read not counted: valgrind is missing (apt-get install valgrind; REGRESS_INSTR=0 stops this note)"
    elif ! count_instructions; then
        say "instructions per read not counted: a cachegrind run failed"
    fi
fi

[ -n "${REGRESS_OUT:-}" ] || ln -sfn "regress-$STAMP" results/regress-latest
echo "$rc" > "$OUT/exit-status"
cat "$OUT/compare.txt"
[ ! -f "$OUT/instructions.txt" ] || cat "$OUT/instructions.txt"
case $rc in
    0) say "clean: no regression beyond $THRESHOLD%, every row decided; results in $OUT" ;;
    1) say "REGRESSION; results in $OUT (junit.xml, metrics.txt, compare.txt)" ;;
    3) say "INCONCLUSIVE after $((confirm - 1)) confirmation round(s): $(inconclusive_rows); results in $OUT" ;;
    *) say "xdreport compare failed (exit $rc); results in $OUT" ;;
esac
exit "$rc"
