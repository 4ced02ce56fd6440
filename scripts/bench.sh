#!/usr/bin/env bash
# bench.sh - the main job: the bench mix (jobs/bench/workloads.fio) on every
# storage type, each next to the fio engine it should be compared with, on the
# same file, in the same run; then a report.
#
#   BENCH=quick|full    depth: quick (default) runs each workload 2 s on 256 MiB
#                       files, full 15 s on 1 GiB files
#   BENCH_DIR=DIR       where the run's scratch directory goes (default
#                       /var/tmp; a disk file system, or the direct type is
#                       skipped). The bench makes its own directory there
#                       (mktemp) and removes only that, never DIR itself, so
#                       two benches, or a user's files in DIR, are safe.
#   BENCH_DEVICE=DEV    block device for the block type (its data is destroyed);
#                       default: a loop device made here as root and removed
#
# Results: results/<timestamp>-<pid>/ (fio json+ and terse per run, xdevice
# stats, logs, report.html), with results/latest pointing at the newest
# complete run (moved only when a run has finished).
set -euo pipefail
cd "$(dirname "$0")/.."

# make bench HOSTS=FILE: the bench on every fio server in FILE instead
if [ -n "${HOSTS:-}" ]; then exec bash scripts/bench-hosts.sh "$HOSTS"; fi

case ${BENCH:-quick} in
    quick) size=256m runtime=2 ;;
    full) size=1g runtime=15 ;;
    *) echo "bench: BENCH=${BENCH}: unknown depth; allowed: quick or full" >&2; exit 2 ;;
esac
parent=${BENCH_DIR:-/var/tmp}
[ -d "$parent" ] || { echo "bench: BENCH_DIR=$parent: not a directory; allowed: an existing directory (the bench makes its own inside)" >&2; exit 2; }
dir="" tmpfs_dir="" loop_dev=""
cleanup() { # only what this run made
    if [ -n "$loop_dev" ]; then losetup -d "$loop_dev" || true; fi
    if [ -n "$dir" ]; then rm -rf -- "$dir"; fi
    if [ -n "$tmpfs_dir" ]; then rm -rf -- "$tmpfs_dir"; fi
}
trap cleanup EXIT
dir=$(mktemp -d "$parent/xdevice-bench.XXXXXX")
tmpfs_dir=$(mktemp -d /dev/shm/xdevice-bench.XXXXXX)
stamp=$(date +%Y%m%d-%H%M%S)-$$
out=results/$stamp
mkdir -p results
mkdir "$out" "$out/logs"
loop_img=$dir/block.img

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
export BENCH_SIZE=$size BENCH_RUNTIME=$runtime BENCH_TMPFS_DIR=$tmpfs_dir

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

# run_fio LABEL GLOBAL: the workloads under one [global]; json+ and terse apart.
# Each run starts with no dirty data left by the one before, which would
# otherwise throttle its writes.
run_fio() {
    local label=$1 global=$2 job=$out/$1.fio
    cat "jobs/bench/$global" jobs/bench/workloads.fio > "$job"
    sync
    BENCH_LOG=$out/logs/$label fio "$job" --output-format=json+,terse --output="$out/$label.raw"
    grep '^3;' "$out/$label.raw" > "$out/$label.terse" || true
    grep -v '^3;' "$out/$label.raw" > "$out/$label.json" || true
    rm -f "$out/$label.raw"
}

run_xdevice() { # NAME TYPE ASYNC FILE [cache]
    # tmpfs restores fio's laid-out data from the disk path, so it reads data, not holes
    local backup=0 cache=0
    [ "$2" = tmpfs ] && backup=1
    [ "${5:-}" = cache ] && cache=1
    BENCH_TYPE=$2 BENCH_ASYNC=$3 BENCH_FILE=$4 BENCH_STATS=$PWD/$out/$1.stats.json \
        BENCH_TMPFS_BACKUP=$backup BENCH_CACHE=$cache BENCH_CACHE_SIZE=$(($(numfmt --from=iec "${size^^}") / 2)) \
        run_fio "$1.xdevice" xdevice.global
}

run_reference() { # NAME ENGINE DIRECT FILE
    BENCH_ENGINE=$2 BENCH_DIRECT=$3 BENCH_FILE=$4 run_fio "$1.reference" reference.global
}

# fio terse v3: 3 job name, 8 read IOPS, 49 write IOPS
summarise() { # NAME: xdevice's IOPS (read + write) over the reference's, per workload
    awk -F';' -v n="$1" 'NR == FNR { ref[$3] = $8 + $49; next } {
        x = $8 + $49; f = ref[$3]
        printf "%-18s %-20s %10d %10d %7.2f\n", n, $3, x, f, ((f > 0) ? x / f : 0) }' \
        "$out/$1.reference.terse" "$out/$1.xdevice.terse"
}

total=${#configs[@]} k=0 start=$SECONDS
summary=$out/summary.txt
printf '%-18s %-20s %10s %10s %7s\n' configuration workload "xdevice" "fio ref" ratio > "$summary"
for entry in "${configs[@]}"; do
    IFS='|' read -r name type async file ref_engine ref_direct cache <<< "$entry"
    k=$((k + 1))
    left=""
    if [ $k -gt 1 ]; then left=", about $(( (SECONDS - start) * (total - k + 1) / (k - 1) ))s left"; fi
    reason=$(skip_reason "$name")
    if [ -n "$reason" ]; then
        echo "bench: $k of $total: $name skipped: $reason"
        printf '%-18s skipped: %s\n' "$name" "$reason" >> "$summary"
        continue
    fi
    echo "bench: $k of $total: $name against fio's $ref_engine$left"
    [ "$file" = DEVICE ] && use_block_device
    ref_file=$file
    [ "$type" = tmpfs ] && ref_file=$tmpfs_dir/reference.dat # the reference's data on tmpfs too
    [ "$type" = compressed ] && ref_file=$dir/compressed-reference.dat # a container is not a plain file
    prepare "$file" "$type"
    [ "$ref_file" = "$file" ] || prepare "$ref_file"
    # alternate who runs first: the second run finds caches warmed by the first
    if ((k % 2)); then
        run_xdevice "$name" "$type" "$async" "$file" "$cache"
        run_reference "$name" "$ref_engine" "$ref_direct" "$ref_file"
    else
        run_reference "$name" "$ref_engine" "$ref_direct" "$ref_file"
        run_xdevice "$name" "$type" "$async" "$file" "$cache"
    fi
    summarise "$name" >> "$summary"
done

echo
cat "$summary"
echo
if [ -x build/xdreport ]; then
    echo "bench: writing the report"
    build/xdreport report -o "$out" --title "xdevice bench ($stamp, BENCH=${BENCH:-quick})" \
        "$out"/*.json "$out/logs" || echo "bench: xdreport reported problems (above); the report has what it could read" >&2
    echo "bench: report: $out/report.html (results/latest/report.html)"
fi
echo "bench: results in $out, $((SECONDS - start))s"

# The space-saving types' and the cache's own targets (ratios measured here, in this run).
# They print PASS/FAIL per target; a missed target is reported, not fatal:
# the main job's results above stand either way.
echo
echo "bench: sparse targets (scripts/bench-sparse.sh)"
bash scripts/bench-sparse.sh | tee "$out/sparse-targets.txt" || echo "bench: a sparse target was missed (above)"
echo
echo "bench: compressed targets (scripts/bench-compress.sh)"
bash scripts/bench-compress.sh | tee "$out/compress-targets.txt" || echo "bench: a compressed target was missed (above)"
echo
echo "bench: cache targets (scripts/bench-cache.sh)"
bash scripts/bench-cache.sh | tee "$out/cache-targets.txt" || echo "bench: a cache target was missed (above)"

echo
echo "bench: hybrid targets (scripts/bench-hybrid.sh)"
bash scripts/bench-hybrid.sh | tee "$out/hybrid-targets.txt" || echo "bench: a hybrid target was missed (above)"

# Only now, with every part done: an interrupted run never becomes "latest".
ln -sfn "$stamp" "results/latest.$$" && mv -T "results/latest.$$" results/latest
