#!/usr/bin/env bash
# bench-hybrid.sh - the hybrid type against its cold type alone, side by side.
#
# Workload: fio 4 KiB random reads, random_distribution=zipf:1.2, io_uring at
# iodepth 16, one job (thread=1), over a file 10x the hot tier's size
# (HYBRID_BENCH_HOT, default 64m: a 640 MiB file). The cold tier is the
# direct type in a directory made (mktemp) under HYBRID_BENCH_DIR (default
# $XDEVICE_SCRATCH, else /var/tmp; refused if it is a tmpfs), the hot tier a
# directory made under /dev/shm.
#
# Each repetition lays out both files afresh (a new extent map, so the hot
# tier starts empty), then runs
#   hybrid   ramp_time=RAMP (warm-up: extents are promoted as they get hot),
#            then RUNTIME measured;
#   direct   the same job with xd_type=direct on a file of the same size;
# alternating which goes first. fio reports IOPS over the measured part only.
#
# Targets (medians over HYBRID_BENCH_REPS repetitions):
#   IOPS hybrid / IOPS direct >= 3
#   CPU of the xd-migrate thread over the measured part (utime+stime from
#   /proc/<fio>/task/<tid>/stat, sampled when the ramp ends and when the run
#   ends, over the time elapsed between the samples) <= 10% of one core.
#   A sample that cannot be taken (the thread is polled for up to 5 s) makes
#   the CPU figure UNMEASURED, said on stderr, never a missed target.
#
# Hybrid settings: tier_extent_size=16k (HYBRID_BENCH_EXTENT; fio hashes zipf
# ranks over the file, so hot 4 KiB blocks are scattered and large extents
# would dilute them: with 1m extents the hot tier holds only 64 of them),
# hot_access_threshold=2, migration every 0.5 s in batches of 1024.
#
#   HYBRID_BENCH_HOT=64m HYBRID_BENCH_REPS=3 HYBRID_BENCH_RAMP=20 \
#       HYBRID_BENCH_RUNTIME=10 bash scripts/bench-hybrid.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/knobs.sh
. scripts/knobs.sh
KNOB_SCRIPT=bench-hybrid
ENGINE=${XD_ENGINE:-$PWD/build/xdevice.so}
HOT=$(knob_size HYBRID_BENCH_HOT "${HYBRID_BENCH_HOT:-64m}")
SIZE=$((HOT * 10))
REPS=${HYBRID_BENCH_REPS:-3}
RAMP=${HYBRID_BENCH_RAMP:-20}
RUNTIME=${HYBRID_BENCH_RUNTIME:-10}
knob_whole HYBRID_BENCH_REPS "$REPS" 1
knob_whole HYBRID_BENCH_RAMP "$RAMP" 0
knob_whole HYBRID_BENCH_RUNTIME "$RUNTIME" 1
DIR=${HYBRID_BENCH_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
knob_dir "$(knob_dir_name HYBRID_BENCH_DIR)" "$DIR"
IOPS_TARGET=3
CPU_TARGET=10

die() { echo "bench-hybrid: $*" >&2; exit 2; }
[ -f "$ENGINE" ] || die "$ENGINE is missing; run make first"
[ "$(stat -f -c %T "$DIR")" != tmpfs ] || die "HYBRID_BENCH_DIR=$DIR is a tmpfs; the cold tier (direct) needs a disk"
[ "$(stat -f -c %T /dev/shm)" = tmpfs ] || die "/dev/shm is not a tmpfs"
HOT_DIR="" WORK=""
cleanup() { # only what this run made
    if [ -n "$WORK" ]; then rm -rf -- "$WORK"; fi
    if [ -n "$HOT_DIR" ]; then rm -rf -- "$HOT_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it
HOT_DIR=$(mktemp -d /dev/shm/xdevice-bench-hybrid.XXXXXX)
WORK=$(mktemp -d "$DIR/run.XXXXXX")

layout() { # FILE: written in full, flushed; a hybrid file gets a new map
    rm -f "$1" "$1.xdmap"
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$SIZE" --direct=1 \
        --filename="$1" --end_fsync=1 --output=/dev/null
}

job() { # TYPE FILE STATS: the measured job's arguments
    local extra=()
    if [ "$1" = hybrid ]; then
        extra=(--xd_cold_storage_type=direct --xd_hot_directory="$HOT_DIR"
               --xd_hot_cache_size="$HOT" --xd_tier_extent_size=${HYBRID_BENCH_EXTENT:-16k}
               --xd_hot_access_threshold=2 --xd_migration_interval_sec=0.5
               --xd_migration_batch_size=1024)
    fi
    echo --name=zipf --thread=1 --ioengine=external:"$ENGINE" --xd_type="$1" --xd_async=io_uring \
        "${extra[@]}" --xd_stats="$3" --filename="$2" --size="$SIZE" --rw=randread --bs=4k \
        --iodepth=16 --random_distribution=zipf:1.2 --norandommap --randrepeat=0 \
        --time_based --ramp_time="$RAMP" --runtime="$RUNTIME" --invalidate=0
}

# The xd-migrate thread's utime+stime in clock ticks, or nothing when fio
# has no such thread right now. Races it must survive: fio starts its job
# after the ramp's clock has started, the thread is created under fio's name
# and renamed a moment later, and a task can exit between the directory
# listing and the read of its stat file (the read then fails: skip it).
migrate_ticks() { # PID
    local t comm stat
    for t in /proc/"$1"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        [ "$comm" = xd-migrate ] || continue
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        awk '{ sub(/.*\) /, ""); print $12 + $13 }' <<< "$stat"
        return
    done
}

# Sample the thread: poll (every 0.1 s, up to 5 s) until it is there; prints
# "TICKS SECONDS" (a monotonic clock) or nothing if fio has exited or the
# thread never appeared.
sample_migrate() { # PID
    local ticks tries=0
    while [ $tries -lt 50 ] && kill -0 "$1" 2>/dev/null; do
        ticks=$(migrate_ticks "$1")
        if [ -n "$ticks" ]; then
            echo "$ticks $(awk '{ print $1 }' /proc/uptime)"
            return
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
}

# Prints IOPS, and for the hybrid the xd-migrate thread's CPU in % of a
# core over the measured part, or "unmeasured" when the samples could not
# be taken: that is a failure to measure, reported as such, not a target
# missed. CPU is ticks over the seconds actually elapsed between the two
# samples, not over the sleeps asked for, so a slow start-up does not skew it.
run() { # TYPE FILE TAG
    local out=$WORK/$3.terse pid s0="" s1="" iops cpu=unmeasured
    # shellcheck disable=SC2046
    fio $(job "$1" "$2" "$WORK/$3.stats.json") --output-format=terse --output="$out" &
    pid=$!
    if [ "$1" = hybrid ]; then
        sleep "$RAMP"
        sleep 0.5 # fio's own start-up: the ramp begins when the job does
        s0=$(sample_migrate $pid)
        sleep "$((RUNTIME - 1))"
        s1=$(sample_migrate $pid)
    fi
    wait $pid || die "fio failed for $1 (see $out)"
    iops=$(awk -F';' '/^3;/ { print $8 }' "$out") # terse v3: field 8 is read IOPS
    if [ "$1" = hybrid ]; then
        if [ -n "$s0" ] && [ -n "$s1" ]; then
            cpu=$(awk -v a="$s0" -v b="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN {
                split(a, x, " "); split(b, y, " "); dt = y[2] - x[2]
                if (dt <= 0) print "unmeasured"; else printf "%.2f", (y[1] - x[1]) / hz / dt * 100 }')
        else
            echo "bench-hybrid: $3: could not sample fio's xd-migrate thread (pid $pid) at both ends of the measured part; its CPU is unmeasured in this repetition" >&2
        fi
        echo "$iops $cpu"
    else
        echo "$iops"
    fi
}

ratios=() cpus=()
for rep in $(seq 1 "$REPS"); do
    layout "$WORK/hybrid.dat"
    layout "$WORK/direct.dat"
    rm -rf "${HOT_DIR:?}"/*
    if ((rep % 2)); then
        read -r h cpu < <(run hybrid "$WORK/hybrid.dat" "h$rep")
        d=$(run direct "$WORK/direct.dat" "d$rep")
    else
        d=$(run direct "$WORK/direct.dat" "d$rep")
        read -r h cpu < <(run hybrid "$WORK/hybrid.dat" "h$rep")
    fi
    ratio=$(awk -v h="$h" -v d="$d" 'BEGIN { printf "%.2f", (d > 0) ? h / d : 0 }')
    hit=$(jq -r '.jobs[0].layers.tier | "\(.hot_hit_ratio) \(.promotions) \(.demotions)"' "$WORK/h$rep.stats.json")
    read -r hitr prom dem <<< "$hit"
    printf 'bench-hybrid: rep %d: hybrid %d IOPS, direct %d IOPS, ratio %s; migrate thread %s%% of a core; hot hit ratio %s, %d promotions, %d demotions\n' \
        "$rep" "$h" "$d" "$ratio" "$cpu" "$hitr" "$prom" "$dem"
    ratios+=("$ratio")
    [ "$cpu" = unmeasured ] || cpus+=("$cpu")
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
r=$(median "${ratios[@]}")
c=unmeasured
[ ${#cpus[@]} -gt 0 ] && c=$(median "${cpus[@]}")
check() { # VALUE OP TARGET: PASS, FAIL, or UNMEASURED (no sample: not a miss)
    if [ "$1" = unmeasured ]; then echo UNMEASURED; return; fi
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { exit !((op == ">=") ? v >= t : v <= t) }'; then echo PASS; else echo FAIL; fi
}
vr=$(check "$r" ">=" "$IOPS_TARGET")
vc=$(check "$c" "<=" "$CPU_TARGET")
echo "bench-hybrid: zipf:1.2 4k random reads, file $((SIZE >> 20)) MiB, hot tier $((HOT >> 20)) MiB, $REPS reps (medians)"
printf 'bench-hybrid: IOPS hybrid/direct        %6s (target >= %s)  %s\n' "$r" "$IOPS_TARGET" "$vr"
printf 'bench-hybrid: xd-migrate CPU, %% of core %6s (target <= %s)  %s\n' "$c" "$CPU_TARGET" "$vc"
[ "$vr" = PASS ] && [ "$vc" != FAIL ]
