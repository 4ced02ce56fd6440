#!/usr/bin/env bash
# bench-sparse.sh - the sparse type against the regular type, side by side.
#
# 1. Sparse writes: a sequential write of 64 KiB blocks, 90% of them entirely
#    zero and 10% random data, with end_fsync=1, on the same disk directory
#    for both types. Targets: allocated/logical of the sparse file <= 0.12,
#    and time sparse/regular <= 0.6 (median of per-pair ratios).
# 2. Cost on plain data: 4 KiB random writes of random data and random reads
#    of a fully written file on /dev/shm (so the layer's CPU cost is not
#    hidden behind a disk), IOPS sparse/regular. Reported, no target: these
#    are the paths that must stay cheap (no zero block, no hole).
#
# How the zero blocks are made. fio cannot make some buffers of one job all
# zeros and others random: buffer_compress_percentage zeroes the tail of
# every buffer (90% of each block), never whole blocks. So two jobs of one
# group write one file, each sequentially in 64 KiB blocks, in 640 KiB zones
# (zonemode=strided, zonerange=640k):
#   data   from offset 0, writes the first 64 KiB of each zone (zonesize=64k)
#          with fio's random buffer contents;
#   zeros  from offset 64k, writes the other 576 KiB of each zone
#          (zonesize=576k) with zero_buffers=1.
# io_size gives each job exactly its share, so every block is written once:
# block k holds data when k % 10 == 0 and zeros otherwise. The script checks
# that first, with fio's write_iolog of the same jobs on a small file.
#
# Each pair alternates who runs first; the file is removed and dirty pages
# flushed (sync) before every run. The time compared is fio's own: the write
# runtime of the slower of the two jobs, end_fsync included. The fio
# process's wall clock is printed beside it; it adds about 0.35 s of fio
# startup and teardown to either side here, which says nothing about xdevice.
# fio would preallocate the file (fallocate=native); for chains with the
# sparse layer the engine sizes it with ftruncate instead (see
# fio_xd_sparse_layout in ioengine/engine_files.c), the regular type keeps
# fio's preallocation: each type as a user gets it by default.
#
#   SPARSE_BENCH_SIZE=256m SPARSE_BENCH_REPS=3 SPARSE_BENCH_DIRS="/var/tmp /tmp" \
#       bash scripts/bench-sparse.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/knobs.sh
. scripts/knobs.sh
KNOB_SCRIPT=bench-sparse
ENGINE=${XD_ENGINE:-$PWD/build/xdevice.so}
SIZE=$(knob_size SPARSE_BENCH_SIZE "${SPARSE_BENCH_SIZE:-256m}")
REPS=${SPARSE_BENCH_REPS:-3}
DIRS=${SPARSE_BENCH_DIRS:-${XDEVICE_SCRATCH:-/var/tmp} /tmp}
RUNTIME=${SPARSE_BENCH_RUNTIME:-3}
knob_whole SPARSE_BENCH_REPS "$REPS" 1
knob_whole SPARSE_BENCH_RUNTIME "$RUNTIME" 1
for d in $DIRS; do knob_dir "$(knob_dir_name SPARSE_BENCH_DIRS)" "$d"; done
ALLOC_TARGET=0.12
TIME_TARGET=0.6
BS=65536

die() { echo "bench-sparse: $*" >&2; exit 2; }
[ -f "$ENGINE" ] || die "$ENGINE is missing; run make first"
((SIZE % BS == 0)) || die "SPARSE_BENCH_SIZE must be a multiple of 64k"

FILES=()
cleanup() { if [ ${#FILES[@]} -gt 0 ]; then rm -rf -- "${FILES[@]}"; fi; } # only what this run made
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it

# The two jobs over a file of $1 bytes (see the top of this file).
job_args() {
    local size=$1 nblocks ndata
    nblocks=$((size / BS))
    ndata=$(((nblocks + 9) / 10)) # blocks 0, 10, 20, ...
    echo "--bs=64k --rw=write --zonemode=strided --zonerange=640k" \
        "--name=data --size=$size --io_size=$((ndata * BS)) --zonesize=64k" \
        "--name=zeros --offset=64k --size=$((size - BS)) --io_size=$(((nblocks - ndata) * BS))" \
        "--zonesize=576k --zero_buffers=1"
}

# Every block written exactly once, by data when k % 10 == 0, else by zeros.
check_pattern() {
    local dir f size=$((100 * BS + 6 * BS)) # a partial last zone too
    dir=$(mktemp -d /dev/shm/xdevice-sparse-pattern.XXXXXX)
    FILES+=("$dir")
    f=$dir/f.dat
    # shellcheck disable=SC2046
    (cd "$dir" && fio --output=/dev/null --ioengine=psync --filename="$f" \
        $(job_args "$size" | sed "s#--name=\([a-z]*\)#--name=\1 --write_iolog=$dir/\1.log#g"))
    awk -v bs="$BS" -v n="$((size / BS))" '
        $2 == "write" || $3 == "write" {
            off = ($2 == "write") ? $3 : $4
            k = off / bs; seen[k]++
            if ((FILENAME ~ /data.log$/) != (k % 10 == 0)) bad++
        }
        END {
            for (k = 0; k < n; k++) if (seen[k] != 1) bad++
            exit bad > 0
        }' "$dir/data.log" "$dir/zeros.log" ||
        die "the two jobs do not write each block once with data at every tenth"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0) ? a / b : 0 }'; }
verdict() { # value op target -> PASS|FAIL
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        ok = (op == "<=") ? v <= t : v >= t; print ok ? "PASS" : "FAIL" }'
}

# sparse_write TYPE FILE STATS -> "seconds wall_seconds allocated_bytes logical_bytes"
# seconds: the longer job's write runtime as fio measures it (terse field
# 50, ms; end_fsync included); wall: the fio process, startup and layout too.
sparse_write() {
    local type=$1 file=$2 stats=$3 t0 t1 ms
    rm -f "$file" "$stats"
    rm -rf "$stats.d"
    sync
    t0=$(date +%s%N)
    # shellcheck disable=SC2046
    ms=$(fio --minimal --ioengine=external:"$ENGINE" --xd_type="$type" --xd_stats="$stats" \
        --filename="$file" --end_fsync=1 $(job_args "$SIZE") |
        awk -F';' '/^3;/ { if ($5 != 0) bad = 1; if ($50 > m) m = $50 } END { if (!bad) print m + 0 }') ||
        die "fio failed for xd_type=$type on $file"
    t1=$(date +%s%N)
    [ -n "$ms" ] || die "fio reported an error for xd_type=$type on $file"
    [ "$(stat -c %s "$file")" -eq "$SIZE" ] || die "$file: size $(stat -c %s "$file"), expected $SIZE"
    echo "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }') \
$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') \
$(($(stat -c '%b * %B' "$file"))) $(stat -c %s "$file")"
}

# The sparse layer's own figures in an xd_stats document (the first job's).
stats_figure() { # FILE KEY
    grep -o "\"$2\":[0-9]*" "$1" | head -n 1 | cut -d: -f2
}

failed=0
bench_dir() {
    local dir=$1 file stats r s w a l g gw sp rg sl sa ratios=() allocs=() tsp=() trg=()
    [ "$(stat -f -c %T "$dir")" != tmpfs ] || { echo "skip $dir: a tmpfs, not a disk"; return; }
    local work
    work=$(mktemp -d "$dir/xdevice-sparse-bench.XXXXXX") # ours alone: removed whole
    FILES+=("$work")
    file=$work/data.dat
    stats=$work/stats.json
    for ((r = 0; r < REPS; r++)); do
        # alternate who goes first: the second run finds the machine warmed
        if ((r % 2 == 0)); then
            sp=$(sparse_write sparse "$file" "$stats")
            sl=$(stats_figure "$stats" logical_bytes) sa=$(stats_figure "$stats" allocated_bytes)
            rg=$(sparse_write regular "$file" "$stats")
        else
            rg=$(sparse_write regular "$file" "$stats")
            sp=$(sparse_write sparse "$file" "$stats")
            sl=$(stats_figure "$stats" logical_bytes) sa=$(stats_figure "$stats" allocated_bytes)
        fi
        read -r s w a l <<<"$sp"
        read -r g gw _ _ <<<"$rg"
        tsp+=("$s") trg+=("$g")
        ratios+=("$(ratio "$s" "$g")")
        allocs+=("$(ratio "$a" "$l")")
        printf '  %s pair %d: sparse %.3f s (wall %.3f), regular %.3f s (wall %.3f), ratio %.3f;' \
            "$dir" "$((r + 1))" "$s" "$w" "$g" "$gw" "${ratios[-1]}"
        printf ' allocated/logical %.4f (st_blocks), %.4f (xd_stats)\n' "${allocs[-1]}" \
            "$(ratio "${sa:-0}" "${sl:-0}")"
    done
    local tr al
    tr=$(printf '%s\n' "${ratios[@]}" | median)
    al=$(printf '%s\n' "${allocs[@]}" | sort -g | tail -n 1) # the worst
    printf '%-10s time sparse/regular  %.3f (median of %d pairs; sparse %.3f s, regular %.3f s)  target <= %s  %s\n' \
        "$dir" "$tr" "$REPS" "$(printf '%s\n' "${tsp[@]}" | median)" \
        "$(printf '%s\n' "${trg[@]}" | median)" "$TIME_TARGET" "$(verdict "$tr" "<=" "$TIME_TARGET")"
    printf '%-10s allocated/logical   %.4f (worst of %d)  target <= %s  %s\n' \
        "$dir" "$al" "$REPS" "$ALLOC_TARGET" "$(verdict "$al" "<=" "$ALLOC_TARGET")"
    [ "$(verdict "$tr" "<=" "$TIME_TARGET")" = PASS ] || failed=1
    [ "$(verdict "$al" "<=" "$ALLOC_TARGET")" = PASS ] || failed=1
}

# iops TYPE ARGS... -> IOPS of one fio run (terse v3: field 8 read, 49 write)
iops() {
    local type=$1
    shift
    fio --minimal --name=cost --ioengine=external:"$ENGINE" --xd_type="$type" --bs=4k \
        --time_based --runtime="$RUNTIME" --norandommap --randrepeat=0 "$@" |
        awk -F';' '/^3;/ { print $8 + $49 }'
}

cost_row() { # NAME ARGS...: median of per-pair IOPS ratios sparse/regular
    local name=$1 r s g ratios=() ss=() gs=()
    shift
    for ((r = 0; r < REPS; r++)); do
        if ((r % 2 == 0)); then
            s=$(iops sparse "$@")
            g=$(iops regular "$@")
        else
            g=$(iops regular "$@")
            s=$(iops sparse "$@")
        fi
        ss+=("$s") gs+=("$g") ratios+=("$(ratio "$s" "$g")")
    done
    printf '%-40s %10d %10d %7.3f\n' "$name" "$(printf '%s\n' "${ss[@]}" | median)" \
        "$(printf '%s\n' "${gs[@]}" | median)" "$(printf '%s\n' "${ratios[@]}" | median)"
}

check_pattern
printf 'sparse write: %d MiB in 64 KiB blocks, %d data + %d zero blocks, end_fsync=1, %d pairs\n' \
    $((SIZE >> 20)) $(((SIZE / BS + 9) / 10)) $((SIZE / BS - (SIZE / BS + 9) / 10)) "$REPS"
for d in $DIRS; do
    bench_dir "$d"
done

shm_dir=$(mktemp -d /dev/shm/xdevice-sparse-cost.XXXXXX)
FILES+=("$shm_dir")
shm=$shm_dir/data.dat
fio --name=layout --ioengine=psync --rw=write --bs=1m --size=256m --filename="$shm" \
    --output=/dev/null
echo
printf 'cost on data (no zero block, no hole), /dev/shm, %ss runs, %d pairs\n' "$RUNTIME" "$REPS"
printf '%-40s %10s %10s %7s\n' "row" "sparse" "regular" "ratio"
cost_row "randwrite 4k random data, sync" --filename="$shm" --rw=randwrite
cost_row "randread 4k, sync" --filename="$shm" --rw=randread
cost_row "randread 4k, io_uring qd32" --filename="$shm" --rw=randread --iodepth=32 \
    --xd_async=io_uring

exit $failed
