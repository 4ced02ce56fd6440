#!/usr/bin/env bash
# bench-cache.sh - the cache layer against its bounds and against no cache.
#
# 1. Hit ratio. 4 KiB random reads with random_distribution=zipf:1.1 over a
#    file of CACHE_BENCH_SIZE (1 GiB), cache_size = 10% of it, 8 passes'
#    worth of reads, through the regular type with xd_trace recording the
#    block trace. xdcachesim replays that trace at the same size through
#    LRU, S3-FIFO (the layer's own policy code) and Belady's MIN. Targets:
#    S3-FIFO/LRU >= 1 and S3-FIFO/MIN >= 0.85. The layer's own hit ratio
#    (16 shards, each its own S3-FIFO) is printed beside them.
# 2. A slow type. The same workload on the direct type (O_DIRECT, a disk
#    file) with the cache and without, time_based, each after the same
#    ramp_time (the cache fills during it), alternating who runs first, the
#    median of per-pair IOPS ratios. Target: cached/uncached >= 3.
# 3. All hits. 4 KiB random reads of a 64 MiB file with a 128 MiB cache,
#    warmed during ramp_time, against fio's mmap engine on the same file,
#    kept in the page cache (read once before, invalidate=0 on both
#    sides). Median of per-pair IOPS ratios. Target: >= 0.8.
#
# The disk directory must not be a tmpfs (O_DIRECT). Everything it makes is
# removed at exit.
#
#   CACHE_BENCH_DIR=/var/tmp CACHE_BENCH_SIZE=1g CACHE_BENCH_REPS=3 \
#   CACHE_BENCH_RUNTIME=10 CACHE_BENCH_RAMP=5 bash scripts/bench-cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${XD_ENGINE:-$PWD/build/xdevice.so}
SIM=${XD_CACHESIM:-$PWD/build/xdcachesim}
# shellcheck source=scripts/knobs.sh
. scripts/knobs.sh
KNOB_SCRIPT=bench-cache
DIR=${CACHE_BENCH_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
SIZE=$(knob_size CACHE_BENCH_SIZE "${CACHE_BENCH_SIZE:-1g}")
REPS=${CACHE_BENCH_REPS:-3}
RUNTIME=${CACHE_BENCH_RUNTIME:-10}
RAMP=${CACHE_BENCH_RAMP:-5}
knob_whole CACHE_BENCH_REPS "$REPS" 1
knob_whole CACHE_BENCH_RUNTIME "$RUNTIME" 1
knob_whole CACHE_BENCH_RAMP "$RAMP" 0
HIT_SIZE=$((64 << 20))
HIT_CACHE=$((128 << 20))
CACHE=$((SIZE / 10))
LRU_TARGET=1
MIN_TARGET=0.85
SLOW_TARGET=3
HIT_TARGET=0.8

die() { echo "bench-cache: $*" >&2; exit 2; }
[ -f "$ENGINE" ] || die "$ENGINE is missing; run make first"
[ -x "$SIM" ] || die "$SIM is missing; run make first"
knob_dir "$(knob_dir_name CACHE_BENCH_DIR)" "$DIR"
[ "$(stat -f -c %T "$DIR")" != tmpfs ] || die "CACHE_BENCH_DIR=$DIR is a tmpfs; allowed: a disk file system (the direct type needs O_DIRECT)"

WORK=$(mktemp -d "$DIR/xdevice-cache-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it
DATA=$WORK/data
HOT=$WORK/hot

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0) ? a / b : 0 }'; }
verdict() { # value target -> PASS|FAIL (value >= target)
    awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "PASS" : "FAIL" }'
}
failed=0
report() { # NAME VALUE TARGET DETAIL
    local v
    v=$(verdict "$2" "$3")
    printf '%-34s %8.4f  target >= %-5s %s  (%s)\n' "$1" "$2" "$3" "$v" "$4"
    [ "$v" = PASS ] || failed=1
}

# read IOPS of one fio run (terse v3: field 5 is the error, 8 read IOPS)
iops() {
    fio --minimal --name=bench --bs=4k --rw=randread --norandommap --randrepeat=0 "$@" |
        awk -F';' '/^3;/ { if ($5 != 0) exit 1; print $8 }' || die "fio failed: $*"
}

# stats FILE KEY: the first number under KEY in an xd_stats document
stat_of() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -n 1 | cut -d: -f2; }

sim_of() { # OUTPUT POLICY -> hit ratio
    awk -v p="policy=$2" '$1 == p { for (i = 2; i <= NF; i++) if ($i ~ /^hit_ratio=/) print substr($i, 11) }' <<<"$1"
}

echo "bench-cache: $(numfmt --to=iec "$SIZE") file and $(numfmt --to=iec "$HIT_SIZE") file in $WORK"
fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$SIZE" --filename="$DATA" \
    --end_fsync=1 --output=/dev/null
fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$HIT_SIZE" --filename="$HOT" \
    --end_fsync=1 --output=/dev/null

# --- 1. hit ratio ----------------------------------------------------------------
trace=$WORK/trace.bin stats=$WORK/stats.json
fio --minimal --name=zipf --ioengine=external:"$ENGINE" --xd_enable_read_cache=1 \
    --xd_cache_size="$CACHE" --xd_trace="$trace" --xd_stats="$stats" --filename="$DATA" \
    --size="$SIZE" --io_size=$((8 * SIZE)) --bs=4k --rw=randread --norandommap \
    --random_distribution=zipf:1.1 --invalidate=0 >/dev/null || die "the traced run failed"
sim=$("$SIM" "$trace" --cache-size "$CACHE")
lru=$(sim_of "$sim" lru) s3=$(sim_of "$sim" s3fifo) min=$(sim_of "$sim" min)
layer=$(stat_of "$stats" hit_ratio)
echo
echo "1. hit ratio: zipf:1.1 4k random reads, $((8 * SIZE / 4096)) of them, cache $(numfmt --to=iec "$CACHE") = 10% of the file"
sed 's/^/   xdcachesim: /' <<<"$sim"
printf '   the layer (sharded S3-FIFO) measured hit_ratio=%.6f\n' "$layer"
report "S3-FIFO/LRU hit ratio" "$(ratio "$s3" "$lru")" "$LRU_TARGET" "s3fifo $s3, lru $lru"
report "S3-FIFO/MIN hit ratio" "$(ratio "$s3" "$min")" "$MIN_TARGET" "s3fifo $s3, min $min"

# --- 2. the direct type on a disk file ---------------------------------------------
direct() { # cached|uncached
    local cache=()
    [ "$1" = uncached ] || cache=(--xd_enable_read_cache=1 --xd_cache_size="$CACHE")
    iops --ioengine=external:"$ENGINE" --xd_type=direct "${cache[@]}" --filename="$DATA" \
        --size="$SIZE" --random_distribution=zipf:1.1 --time_based --runtime="$RUNTIME" \
        --ramp_time="$RAMP"
}
echo
echo "2. direct type, zipf:1.1 4k random reads, ${RAMP}s ramp + ${RUNTIME}s, $REPS pairs"
cs=() us=() rs=()
for ((r = 0; r < REPS; r++)); do
    if ((r % 2 == 0)); then c=$(direct cached); u=$(direct uncached); else u=$(direct uncached); c=$(direct cached); fi
    cs+=("$c") us+=("$u") rs+=("$(ratio "$c" "$u")")
    printf '   pair %d: cached %.0f IOPS, uncached %.0f IOPS, ratio %.2f\n' $((r + 1)) "$c" "$u" "${rs[-1]}"
done
report "direct cached/uncached IOPS" "$(printf '%s\n' "${rs[@]}" | median)" "$SLOW_TARGET" \
    "median IOPS cached $(printf '%s\n' "${cs[@]}" | median), uncached $(printf '%s\n' "${us[@]}" | median)"

# --- 3. all hits against fio's mmap engine -----------------------------------------
hits() { # xdevice|mmap
    if [ "$1" = xdevice ]; then
        iops --ioengine=external:"$ENGINE" --xd_enable_read_cache=1 --xd_cache_size="$HIT_CACHE" \
            --filename="$HOT" --size="$HIT_SIZE" --time_based --runtime="$RUNTIME" \
            --ramp_time="$RAMP" --invalidate=0
    else
        iops --ioengine=mmap --filename="$HOT" --size="$HIT_SIZE" --time_based \
            --runtime="$RUNTIME" --ramp_time="$RAMP" --invalidate=0
    fi
}
cat "$HOT" >/dev/null # in the page cache for both sides
echo
echo "3. all hits: 4k random reads of a $(numfmt --to=iec "$HIT_SIZE") file, cache $(numfmt --to=iec "$HIT_CACHE"), against fio's mmap engine, $REPS pairs"
xs=() ms=() rs=()
for ((r = 0; r < REPS; r++)); do
    if ((r % 2 == 0)); then x=$(hits xdevice); m=$(hits mmap); else m=$(hits mmap); x=$(hits xdevice); fi
    xs+=("$x") ms+=("$m") rs+=("$(ratio "$x" "$m")")
    printf '   pair %d: xdevice cache %.0f IOPS, mmap %.0f IOPS, ratio %.3f\n' $((r + 1)) "$x" "$m" "${rs[-1]}"
done
report "all hits xdevice/mmap IOPS" "$(printf '%s\n' "${rs[@]}" | median)" "$HIT_TARGET" \
    "median IOPS xdevice $(printf '%s\n' "${xs[@]}" | median), mmap $(printf '%s\n' "${ms[@]}" | median)"

exit $failed
