#!/usr/bin/env bash
# bench.sh - the main job: the bench mix (jobs/bench/workloads.fio) on every
# storage type, each next to the fio engine it should be compared with, on the
# same file, in the same run; then a report.
#
#   BENCH=quick|full    depth: quick (default) runs each workload 0.25 s on
#                       64 MiB files (about 4 minutes on 2 cores with 3
#                       repetitions), full 15 s on 1 GiB files
#   BENCH_REPS=N        repetitions of every xdevice/reference pair (default 3,
#                       at least 2: the report's intervals come from them)
#   BENCH_ONLY=A,B      run only these configurations (names below)
#   BENCH_DIR=DIR       where the run's scratch directory goes (default
#                       $XDEVICE_SCRATCH, else /var/tmp; a disk file system, or the direct type is
#                       skipped). The bench makes its own directory there
#                       (mktemp) and removes only that, never DIR itself, so
#                       two benches, or a user's files in DIR, are safe.
#   BENCH_DEVICE=DEV    block device for the block type (its data is destroyed);
#                       default: a loop device made here as root and removed
#
# Results: results/<timestamp>-<pid>/ (fio json+ and terse per run, named
# NAME.xdevice.rK.json / NAME.reference.rK.json for repetition K, xdevice
# stats, logs of the first repetition, report.html), with results/latest
# pointing at the newest complete run (moved only when a run has finished).
# Progress (run k of N, time left) goes to stderr. The types' own targets
# are `make bench-targets` (scripts/bench-targets.sh), not part of this.
set -euo pipefail
cd "$(dirname "$0")/.."

# make bench HOSTS=FILE: the bench on every fio server in FILE instead
if [ -n "${HOSTS:-}" ]; then exec bash scripts/bench-hosts.sh "$HOSTS"; fi
# shellcheck source=scripts/fio-clock.sh
. scripts/fio-clock.sh
FIO_CLOCK=$(fio_clock_option) || exit 2 # xdevice and its reference on one fio clock

case ${BENCH:-quick} in
    quick) size=64m runtime=250ms log_msec=50 ;;
    full) size=1g runtime=15 log_msec=500 ;;
    *) echo "bench: BENCH=${BENCH}: unknown depth; allowed: quick or full" >&2; exit 2 ;;
esac
reps=${BENCH_REPS:-3}
[[ $reps =~ ^[0-9]+$ ]] && [ "$reps" -ge 2 ] && [ "$reps" -le 100 ] \
    || { echo "bench: BENCH_REPS=$reps: allowed: a whole number from 2 to 100 (intervals need repetitions)" >&2; exit 2; }
parent=${BENCH_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
parent_knob=BENCH_DIR
[ -n "${BENCH_DIR:-}" ] || [ -z "${XDEVICE_SCRATCH:-}" ] || parent_knob=XDEVICE_SCRATCH
[ -d "$parent" ] || { echo "bench: $parent_knob=$parent: not a directory; allowed: an existing directory (the bench makes its own inside)" >&2; exit 2; }
dir="" tmpfs_dir="" tmpfs_mounted="" loop_dev=""
cleanup() { # only what this run made
    if [ -n "$loop_dev" ]; then losetup -d "$loop_dev" || true; fi
    if [ -n "$dir" ]; then rm -rf -- "$dir"; fi
    if [ -n "$tmpfs_mounted" ]; then umount -- "$tmpfs_dir" || umount -l -- "$tmpfs_dir" || true; fi
    if [ -n "$tmpfs_dir" ]; then rm -rf -- "$tmpfs_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it
dir=$(mktemp -d "$parent/xdevice-bench.XXXXXX")
tmpfs_dir=$(mktemp -d /dev/shm/xdevice-bench.XXXXXX)
loop_img=$dir/block.img

# The tmpfs rows (the tmpfs type and fio's reference beside it, the hybrid
# type's hot tier) run on a tmpfs of the bench's own, mounted as root on the
# directory it just made, with huge=within_size: without large pages a
# tmpfs reads 128k requests at 0.45 of that (README "make bench"). Both
# sides of the tmpfs row share it; it has room for the hybrid's sparse hot
# copy taking a 2 MiB page per hot extent, up to the whole file.
mount_bench_tmpfs() {
    local bytes
    bytes=$(numfmt --from=iec "${size^^}")
    [ "$(id -u)" = 0 ] || { echo "bench: not root: tmpfs rows on /dev/shm (no huge=within_size)" >&2; return; }
    if mount -t tmpfs -o "size=$((bytes * 3 + (64 << 20))),mode=0700,huge=within_size" \
        xdevice-bench "$tmpfs_dir" 2>/dev/null; then
        tmpfs_mounted=1
    else
        echo "bench: cannot mount a huge=within_size tmpfs at $tmpfs_dir: tmpfs rows on /dev/shm" >&2
    fi
}
mount_bench_tmpfs

# --- configurations ------------------------------------------------------------
# name | xdevice type | async | data file | fio reference engine | its direct= | xdevice's cache
# The last column, when set, turns on the cache layer with half the file's
# size: the direct type then answers repeated reads from memory, which is
# what the cache is for, while fio's reference still pays O_DIRECT.
configs=(
    "regular-io_uring|regular|io_uring|$dir/regular.dat|io_uring|0"
    "regular-sync|regular|sync|$dir/regular.dat|psync|0"
    "mmap|mmap|sync|$dir/mmap.dat|mmap|0"
    "direct-libaio|direct|libaio|$dir/direct.dat|libaio|1"
    "tmpfs-io_uring|tmpfs|io_uring|$dir/tmpfs.dat|io_uring|0"
    "block-io_uring|block|io_uring|DEVICE|io_uring|1"
    "sparse-io_uring|sparse|io_uring|$dir/sparse.dat|io_uring|0"
    "compressed-io_uring|compressed|io_uring|$dir/compressed.dat|psync|0"
    "direct-cache-libaio|direct|libaio|$dir/direct.dat|libaio|1|cache"
    "hybrid-io_uring|hybrid|io_uring|$dir/hybrid.dat|io_uring|0"
)
if [ -n "${BENCH_ONLY:-}" ]; then
    wanted=()
    for entry in "${configs[@]}"; do
        case ",$BENCH_ONLY," in *",${entry%%|*},"*) wanted+=("$entry") ;; esac
    done
    # names compared whole (grep took "mmap*" or "." as patterns, matched,
    # and the bench then ran nothing and said it had run)
    allowed=$(printf '%s\n' "${configs[@]}" | cut -d'|' -f1 | paste -sd, -)
    IFS=, read -r -a names <<<"$BENCH_ONLY" # no word splitting or globbing: "*" is a name
    for name in "${names[@]}"; do
        found=
        for entry in "${configs[@]}"; do [ "${entry%%|*}" != "$name" ] || found=1; done
        [ -n "$found" ] ||
            { echo "bench: BENCH_ONLY=$BENCH_ONLY: \"$name\" is not a configuration; allowed: a comma list of $allowed" >&2; exit 2; }
    done
    [ ${#wanted[@]} -gt 0 ] ||
        { echo "bench: BENCH_ONLY=$BENCH_ONLY names no configuration; allowed: a comma list of $allowed" >&2; exit 2; }
    configs=("${wanted[@]}")
fi
# the results directory only once the knobs are known good: a refused bench
# leaves nothing behind
stamp=$(date +%Y%m%d-%H%M%S)-$$
out=results/$stamp
mkdir -p results
mkdir "$out" "$out/logs"

skip_reason() { # why a configuration cannot run here, or nothing
    case $1 in
        direct-*)
            [ "$(stat -f -c %T "$dir")" != tmpfs ] || echo "BENCH_DIR=$dir is a tmpfs; O_DIRECT needs a disk file system" ;;
        block-*)
            if [ -n "${BENCH_DEVICE:-}" ]; then
                [ -b "$BENCH_DEVICE" ] || echo "BENCH_DEVICE=$BENCH_DEVICE is not a block device"
            elif [ "$(id -u)" -ne 0 ]; then
                echo "not root: a loop device needs root (or set BENCH_DEVICE)"
            fi ;;
    esac
}

# Sets file to the device for the block type. Not called through $(...):
# loop_dev must be set in this shell, or the exit trap cannot detach it.
use_block_device() {
    if [ -n "${BENCH_DEVICE:-}" ]; then file=$BENCH_DEVICE; return; fi
    if [ -z "$loop_dev" ]; then
        truncate -s "$size" "$loop_img"
        loop_dev=$(losetup -f --show "$loop_img")
    fi
    file=$loop_dev
}

# --- running -------------------------------------------------------------------
size_bytes=$(numfmt --from=iec "${size^^}")
export BENCH_SIZE=$size BENCH_RUNTIME=$runtime BENCH_TMPFS_DIR=$tmpfs_dir BENCH_LOG_MSEC=$log_msec
export BENCH_HOT_SIZE=$((size_bytes / 4 >> 20))m

# Write FILE (or device) in full and flush it, so both runs of a pair start
# from the same clean state: fio's default invalidate=1 cannot drop dirty
# pages, so a run right after a layout would read from cache and its
# partner from disk.
prepare() { # FILE [xdevice type that owns its format]
    local direct=0
    [ -b "$1" ] && direct=1
    if [ "${2:-}" = compressed ]; then # a container, written through xdevice
        rm -f "$1"
        fio --name=layout --ioengine=external:build/xdevice.so --xd_type=compressed \
            --rw=write --bs=1m --size="$size" --filename="$1" --end_fsync=1 \
            --buffer_compress_percentage=50 --output=/dev/null
        return
    fi
    # a hybrid file laid out raw starts a new extent map (its hot tier empty)
    [ "${2:-}" = hybrid ] && rm -f "$1.xdmap"
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$size" --direct=$direct \
        --filename="$1" --end_fsync=1 --buffer_compress_percentage=50 --output=/dev/null
}

# run_fio LABEL GLOBAL REP [OPTIONS...]: the workloads under one [global]
# (plus the option fragments named), json+ and terse apart. Logs only in
# the first repetition. Each run starts with no dirty data left by the one
# before, which would otherwise throttle its writes.
run_fio() {
    local label=$1 global=$2 rep=$3 job=$out/$1.r$3.fio
    shift 3
    local parts=("jobs/bench/$global")
    for extra in "$@"; do parts+=("jobs/bench/$extra"); done
    [ "$rep" -eq 1 ] && parts+=(jobs/bench/logs.options)
    cat "${parts[@]}" jobs/bench/workloads.fio > "$job"
    sync
    BENCH_LOG=$out/logs/$label fio "$FIO_CLOCK" "$job" --output-format=json+,terse --output="$out/$label.r$rep.raw"
    grep '^3;' "$out/$label.r$rep.raw" > "$out/$label.r$rep.terse" || true
    grep -v '^3;' "$out/$label.r$rep.raw" > "$out/$label.r$rep.json" || true
    rm -f "$out/$label.r$rep.raw"
}

run_xdevice() { # NAME TYPE ASYNC FILE CACHE REP
    # each configuration gets only the keys it reads (jobs/bench/*.options)
    local extra=()
    case $2 in tmpfs | block | hybrid) extra=("$2.options") ;; esac
    [ "$5" = cache ] && extra+=(cache.options)
    BENCH_TYPE=$2 BENCH_ASYNC=$3 BENCH_FILE=$4 BENCH_STATS=$PWD/$out/$1.xdevice.r$6.stats.json \
        BENCH_CACHE_SIZE=$((size_bytes / 2)) run_fio "$1.xdevice" xdevice.global "$6" "${extra[@]}"
}

run_reference() { # NAME ENGINE DIRECT FILE REP
    BENCH_ENGINE=$2 BENCH_DIRECT=$3 BENCH_FILE=$4 run_fio "$1.reference" reference.global "$5"
}

# fio terse v3: 3 job name, 8 read IOPS, 49 write IOPS
summarise() { # NAME REP: xdevice's IOPS (read + write) over the reference's, per workload
    awk -F';' -v n="$1" -v r="$2" 'NR == FNR { ref[$3] = $8 + $49; next } {
        x = $8 + $49; f = ref[$3]
        printf "%-20s %3d %-20s %10d %10d %7.2f\n", n, r, $3, x, f, ((f > 0) ? x / f : 0) }' \
        "$out/$1.reference.r$2.terse" "$out/$1.xdevice.r$2.terse"
}

# Progress on stderr: "run k of N" counts xdevice/reference pairs; the time
# left is the mean pair time so far times the pairs left.
total=$((${#configs[@]} * reps)) k=0 start=$SECONDS
progress() { # NAME REP WHAT
    local left=""
    if [ $k -gt 1 ]; then
        local s=$(( (SECONDS - start) * (total - k + 1) / (k - 1) ))
        left=", about $((s / 60))m$(printf %02d $((s % 60)))s left"
    fi
    echo "bench: [$k/$total] $1 repetition $2 of $reps: $3$left" >&2
}

summary=$out/summary.txt
printf '%-20s %3s %-20s %10s %10s %7s\n' configuration rep workload "xdevice" "fio ref" ratio > "$summary"
n=0
for entry in "${configs[@]}"; do
    IFS='|' read -r name type async file ref_engine ref_direct cache <<< "$entry"
    n=$((n + 1))
    reason=$(skip_reason "$name")
    if [ -n "$reason" ]; then
        k=$((k + reps))
        echo "bench: [$k/$total] $name skipped: $reason" >&2
        printf '%-20s skipped: %s\n' "$name" "$reason" >> "$summary"
        continue
    fi
    [ "$file" = DEVICE ] && use_block_device
    ref_file=$file
    [ "$type" = tmpfs ] && ref_file=$tmpfs_dir/reference.dat # the reference's data on tmpfs too
    [ "$type" = compressed ] && ref_file=$dir/compressed-reference.dat # a container is not a plain file
    prepare "$file" "$type"
    [ "$ref_file" = "$file" ] || prepare "$ref_file"
    for rep in $(seq 1 "$reps"); do
        k=$((k + 1))
        # alternate who runs first: the second run finds caches warmed by
        # the first; over the repetitions each side leads in turn
        if (((n + rep) % 2)); then
            progress "$name" "$rep" "fio's $ref_engine first, then xdevice"
            run_reference "$name" "$ref_engine" "$ref_direct" "$ref_file" "$rep"
            run_xdevice "$name" "$type" "$async" "$file" "$cache" "$rep"
        else
            progress "$name" "$rep" "xdevice first, then fio's $ref_engine"
            run_xdevice "$name" "$type" "$async" "$file" "$cache" "$rep"
            run_reference "$name" "$ref_engine" "$ref_direct" "$ref_file" "$rep"
        fi
        summarise "$name" "$rep" >> "$summary"
    done
done

echo
cat "$summary"
echo
if [ -x build/xdreport ]; then
    echo "bench: writing the report" >&2
    build/xdreport report -o "$out" --title "xdevice bench ($stamp, BENCH=${BENCH:-quick}, $reps repetitions)" \
        "$out" "$out/logs" || echo "bench: xdreport reported problems (above); the report has what it could read" >&2
    echo "bench: report: $out/report.html (results/latest/report.html)"
fi
echo "bench: results in $out, $((SECONDS - start))s"

# Only now, with every part done: an interrupted run never becomes "latest".
ln -sfn "$stamp" "results/latest.$$" && mv -T "results/latest.$$" results/latest
