# perf-more.sh - the rows of `make perf` beyond fio's engines; sourced by
# perf.sh after its fio rows (it uses perf.sh's helpers, knobs and cleanup).
#
# 1. The compressed type against btrfs compress-force=zstd:1 on a loop
#    device: warm 4k random reads, 4k random writes at qd16, and the stored
#    share of the logical size after those writes. Both files hold the same
#    50%-compressible data written by fio; both are read through the page
#    cache (read once before each run), both sides io_uring at the same depth,
#    neither side fsyncs during the writes (the stored sizes are taken after
#    a sync). xdevice's container lies beside the loop image, on
#    PERF_DISK_DIR's file system: inside the btrfs it would be compressed
#    twice.
# 2. The read cache's share of the LRU->MIN gap closed: the engine's own hit
#    ratio (xd_stats) between LRU and Belady's MIN replayed by xdcachesim on
#    the trace the same run recorded (xd_trace); once with PERF_CACHE_PASSES
#    reads (8 file sizes: the cache's warm-up weighs) and once with
#    PERF_CACHE_LONG_PASSES (32: closer to a cache that has run for hours;
#    0 skips them) in at most 3 runs: hit ratios hardly move between runs.
#    The reader + scanner mix is paced (fio's flow=1 on both jobs: each
#    has read as much as the other, within fio's flow slack), so the
#    scanner reads beside the reader from start to end and the figure
#    hardly moves between runs (on 1 GiB: not at all in nine); the
#    unpaced mix, an informational row, lets the reader, whose reads
#    mostly hit, finish first, and the scanner then reads alone for the
#    last 30-35% of the trace, a share that moves with scheduling and the
#    row with it.
# 3. numjobs=2 over numjobs=1 with the cache on, every read a hit (thread=1,
#    one cache shared by both jobs, warmed in ramp_time), after the same
#    ratio for two plain CPU-bound loops: the most this machine gave two
#    CPU-bound jobs during the run.

# --- 1. btrfs ------------------------------------------------------------------

btrfs_skip() { echo "btrfs rows skipped: $*"; }

# Why the btrfs rows cannot run here, or nothing (then btrfs-progs is there).
btrfs_unavailable() {
    [ "$(id -u)" = 0 ] || { echo "not root (a loop device and a mount need root)"; return; }
    command -v losetup >/dev/null || { echo "no losetup"; return; }
    if ! command -v mkfs.btrfs >/dev/null; then
        apt-get install -y -q btrfs-progs >/dev/null 2>&1 ||
            { echo "btrfs-progs is missing and apt-get could not install it"; return; }
    fi
    grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null ||
        { echo "the kernel has no btrfs"; return; }
}

# Make the loop image in a directory of our own, attach it, and mount it
# on a directory we created; perf_cleanup undoes each step that happened.
btrfs_setup() {
    local bytes img
    bytes=$(numfmt --from=iec "${BTRFS_SIZE^^}")
    BT_WORK=$(mktemp -d "$DISK_DIR/xdevice-perf-btrfs.XXXXXX")
    img=$BT_WORK/btrfs.img
    truncate -s $((2 * bytes + (256 << 20))) "$img" || return 1
    BT_LOOP=$(losetup --find --show -- "$img") || { BT_LOOP=""; return 1; }
    mkfs.btrfs -q -f "$BT_LOOP" >/dev/null || return 1
    mkdir -- "$BT_WORK/mnt" || return 1
    mount -t btrfs -o compress-force=zstd:1 "$BT_LOOP" "$BT_WORK/mnt" || return 1
    BT_MOUNTED=$BT_WORK/mnt
}

# fio writes the same 50%-compressible data to both (same seed).
bt_lay_out() { # FILE [fio args]
    local file=$1
    shift
    fio --name=layout --rw=write --bs=1m --size="$BTRFS_SIZE" --filename="$file" \
        --buffer_compress_percentage=50 --refill_buffers --randseed=1 --end_fsync=1 \
        --output=/dev/null "$@"
}

BT_FILE="" XC_FILE=""
bt_warm() { cat "$BT_FILE" "$XC_FILE" >/dev/null; } # both in the page cache
bt_read_xd() {
    bt_warm
    fio_terse --ioengine=external:"$ENGINE" --xd_type=compressed --xd_compression_type=zstd \
        --xd_async=io_uring --iodepth=16 --filename="$XC_FILE" --size="$BTRFS_SIZE" \
        --invalidate=0 | read_iops
}
bt_read_ref() {
    bt_warm
    fio_terse --ioengine=io_uring --iodepth=16 --filename="$BT_FILE" --size="$BTRFS_SIZE" \
        --invalidate=0 | read_iops
}
# terse v3: field 49 is write IOPS
write_iops() { cut -d';' -f49; }
bt_write() { # [fio args]: 4k random writes of 50%-compressible data at qd16
    fio --minimal --name=perf --rw=randwrite --bs=4k --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0 --iodepth=16 --size="$BTRFS_SIZE" \
        --buffer_compress_percentage=50 --refill_buffers "$@" | grep '^3;' | write_iops
}
bt_write_xd() {
    bt_write --ioengine=external:"$ENGINE" --xd_type=compressed --xd_compression_type=zstd \
        --xd_async=io_uring --filename="$XC_FILE"
}
bt_write_ref() { bt_write --ioengine=io_uring --filename="$BT_FILE"; }

btrfs_rows() {
    local why
    echo
    echo "Compressed type (zstd) vs btrfs compress-force=zstd:1 on a loop device, $BTRFS_SIZE of 50%-compressible data:"
    why=$(btrfs_unavailable)
    if [ -n "$why" ]; then btrfs_skip "$why"; return; fi
    if ! btrfs_setup; then btrfs_skip "could not make, attach or mount the loop image"; return; fi
    BT_FILE=$BT_MOUNTED/data XC_FILE=$BT_WORK/data.xdc
    bt_lay_out "$BT_FILE" --ioengine=psync
    bt_lay_out "$XC_FILE" --ioengine=external:"$ENGINE" --xd_type=compressed \
        --xd_compression_type=zstd
    header
    pair_loop "compressed warm 4k randread qd16 | btrfs" 1.0 cpu bt_read_xd bt_read_ref
    pair_loop "compressed 4k randwrite qd16 | btrfs" 0.5 disk bt_write_xd bt_write_ref
    sync
    local logical xd_stored bt_stored
    logical=$(numfmt --from=iec "${BTRFS_SIZE^^}")
    xd_stored=$(du -sB1 -- "$XC_FILE" | cut -f1)
    bt_stored=$(btrfs filesystem df -b "$BT_MOUNTED" | awk -F'used=' '/^Data/ { split($2, a, /[^0-9]/); print a[1] }')
    printf '  stored / logical size after the writes: compressed %.2f (target <= 0.7), btrfs %.2f\n' \
        "$(ratio "$xd_stored" "$logical")" "$(ratio "$bt_stored" "$logical")"
}

# --- 2. cache hit ratio --------------------------------------------------------

CACHE_WORK=""
# gap_of TRACE HITS READS CACHE_BYTES [XDCACHESIM ARGS...]: the engine's share
# of the LRU->MIN gap, its hit ratio, LRU's, MIN's, perfect LFU's share of
# the same gap (what counting every block's reads from the start, in
# unbounded memory, closes: on independent zipf draws a block's count is
# all a policy can learn of it, so this is as far as an online policy
# gets), the layer's own policy's share, replayed in its shards
# (s3fifo-sharded: what the engine should have closed; far from the
# engine's, a layer bug), and A0's share (--fio-zipf: each block kept by
# its true probability under fio's generator, which a policy knows only by
# counting unless it knows how fio scatters ranks over the file; "-" for
# the mix, whose scanner is no zipf draw)
gap_of() {
    local sim trace=$1 hits=$2 reads=$3 cache=$4
    shift 4
    sim=$("$SIM" "$trace" --cache-size "$cache" "$@") || return 1
    awk -v h="$hits" -v n="$reads" '
        { for (i = 2; i <= NF; i++) if ($i ~ /^hit_ratio=/) r[$1] = substr($i, 11) }
        END { e = (n > 0) ? h / n : 0; lru = r["policy=lru"]; min = r["policy=min"]; lfu = r["policy=perfect-lfu"]
              own = r["policy=s3fifo-sharded"]; d = min - lru
              a0 = ("policy=a0" in r) ? sprintf("%.4f", (d > 0) ? (r["policy=a0"] - lru) / d : 0) : "-"
              printf "%.4f %.4f %.4f %.4f %.4f %.4f %s\n", (d > 0) ? (e - lru) / d : 0, e, lru, min,
                  (d > 0) ? (lfu - lru) / d : 0, (d > 0) ? (own - lru) / d : 0, a0 }' <<<"$sim"
}
# stats FILE KEY: the first number under KEY in an xd_stats document
stat_of() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -n 1 | cut -d: -f2; }

# cache_run zipf:T|mix|mix-unpaced PASSES: one traced run; prints "gap engine lru min lfu_gap replay_gap a0_gap"
cache_run() {
    local passes=$2 bytes cache trace stats
    bytes=$(numfmt --from=iec "${CACHE_FILE_SIZE^^}") cache=$((bytes / 10))
    trace=$(mktemp -u "$CACHE_WORK/trace.XXXXXX") stats=$CACHE_WORK/stats
    rm -f -- "$stats".*
    local common=(--ioengine=external:"$ENGINE" --thread=1 --xd_enable_read_cache=1
        --xd_cache_size="$cache" --xd_trace="$trace" --bs=4k --size="$CACHE_FILE_SIZE"
        --invalidate=0 --norandommap)
    if [ "${1%-unpaced}" = mix ]; then # a zipf:1.1 reader and a sequential scanner of another file, one process
        local pace=(--flow=1)
        [ "$1" = mix ] || pace=()
        fio --minimal "${common[@]}" "${pace[@]}" --io_size=$((passes * bytes / 2)) \
            --name=reader --filename="$CACHE_WORK/a" --rw=randread --random_distribution=zipf:1.1 \
            --xd_stats="$stats.r" \
            --name=scanner --filename="$CACHE_WORK/b" --rw=read --xd_stats="$stats.s" >/dev/null
    else
        fio --minimal "${common[@]}" --io_size=$((passes * bytes)) --name=reader \
            --filename="$CACHE_WORK/a" --rw=randread --random_distribution="$1" \
            --xd_stats="$stats.r" >/dev/null
    fi
    local hits=0 reads=0 f
    for f in "$stats".*; do
        hits=$((hits + $(stat_of "$f" hits))) reads=$((reads + $(stat_of "$f" hits) + $(stat_of "$f" misses)))
    done
    local a0=()
    [ "${1%-unpaced}" = mix ] || a0=(--fio-zipf "${1#zipf:}" --file-size "$bytes")
    gap_of "$trace" "$hits" "$reads" "$cache" "${a0[@]}"
    rm -f -- "$trace"
}

# cache_row_name WORKLOAD PASSES: the row's name
cache_row_name() {
    case $1 in
    mix) echo "zipf:1.1 reader + sequential scanner, $2x" ;;
    mix-unpaced) echo "the same, unpaced (informational), $2x" ;;
    *) echo "$1, $2x" ;;
    esac
}

# cache_rows PASSES RUNS: the four workloads, each RUNS traced runs of PASSES file sizes of reads
cache_rows() {
    local passes=$1 runs=$2
    echo
    echo "Read cache: share of the LRU->MIN gap closed by the engine's own hit ratio (4k reads, $CACHE_FILE_SIZE file, cache 10%, ${passes}x the file in reads; LRU and MIN from xdcachesim on the run's own trace), $runs runs:"
    [ -x "$SIM" ] || { echo "cache rows skipped: $SIM is missing; run make first"; return; }
    CACHE_WORK=$(mktemp -d "$SHM_WORK/cache.XXXXXX")
    local size_sfx=$CACHE_FILE_SIZE
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$size_sfx" --filename="$CACHE_WORK/a" --output=/dev/null
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$size_sfx" --filename="$CACHE_WORK/b" --output=/dev/null
    printf '%-52s %8s %8s %8s %7s %6s %6s %7s %7s %7s  %s\n' "workload" "engine" "lru" "min" "gap" "min" "max" "lfu gap" "replay" "a0 gap" "bound"
    local w r out gaps lfu_gaps replay_gaps a0_gaps a0
    for w in zipf:1.1 zipf:0.8 mix mix-unpaced; do
        gaps=() lfu_gaps=() replay_gaps=() a0_gaps=() out=""
        for ((r = 0; r < runs; r++)); do
            out=$(cache_run "$w" "$passes")
            # shellcheck disable=SC2086
            set -- $out
            gaps+=("$1") lfu_gaps+=("$5") replay_gaps+=("$6") a0_gaps+=("$7")
        done
        a0=-
        [ "$7" = - ] || a0=$(printf '%s\n' "${a0_gaps[@]}" | median)
        printf '%s\n' "${gaps[@]}" | sort -g | awk -v n="$(cache_row_name "$w" "$passes")" -v info="$([ "$w" = mix-unpaced ] && echo 1)" \
            -v e="$2" -v l="$3" -v m="$4" -v f="$(printf '%s\n' "${lfu_gaps[@]}" | median)" \
            -v o="$(printf '%s\n' "${replay_gaps[@]}" | median)" -v a="$a0" '{ v[NR] = $1 } END { g = v[int((NR + 1) / 2)]
            printf "%-52s %8.4f %8.4f %8.4f %7.3f %6.3f %6.3f %7.3f %7.3f %7s  %-4s %s\n", n, e, l, m, g, v[1], v[NR], f, o,
                (a == "-") ? a : sprintf("%.3f", a), "none", info ? "(no target)" : (g >= 0.5) ? "ok" : "BELOW 0.5" }'
    done
    echo "  (engine, lru, min: the last run's hit ratios; gap: the engine's share of the LRU->MIN gap, median, min, max over the runs;"
    echo "   lfu gap: perfect LFU's share of the same gap, median: every block's reads counted from the start in unbounded memory,"
    echo "   about the best an online policy does on independent zipf draws; MIN knows the future;"
    echo "   replay: the layer's own policy, split into its shards, replayed on each run's trace, median: what the engine should close;"
    echo "   a0 gap: A0, each block kept by its true probability under fio's zipf generator, median: the most a policy that does"
    echo "   not see the future could expect if it also knew which blocks fio makes likely; one that does not can only count)"
    rm -rf -- "$CACHE_WORK"
}

# --- 3. numjobs scaling with the cache on -------------------------------------------

NJ_FILE=""
nj_run() { # NUMJOBS: total read IOPS, every read a cache hit after ramp_time
    local size cache
    size=$(numfmt --from=iec "${NJ_SIZE^^}") cache=$((2 * size))
    fio --minimal --name=perf --ioengine=external:"$ENGINE" --thread=1 --numjobs="$1" \
        --group_reporting --xd_enable_read_cache=1 --xd_cache_size="$cache" --rw=randread \
        --bs=4k --norandommap --randrepeat=0 --filename="$NJ_FILE" --size="$size" \
        --invalidate=0 --time_based --runtime="$RUNTIME" --ramp_time=1 | grep '^3;' | read_iops
}
nj_two() { nj_run 2; }
nj_one() { nj_run 1; }
# spin_rate N: work per second of N CPU-bound loops run at once (awk, a fixed
# count each). Two over one is what the machine leaves two CPU-bound jobs:
# on a shared machine other work takes CPUs, the cache's row is capped
# there, and without this row a busy run reads as poor scaling.
spin_rate() {
    local t0 t1 i
    t0=$(date +%s%N)
    for ((i = 0; i < $1; i++)); do awk 'BEGIN { for (i = 0; i < 6e7; i++) n += i }' & done
    wait
    t1=$(date +%s%N)
    echo $(($1 * 1000000000000 / (t1 - t0)))
}
spin_two() { spin_rate 2; }
spin_one() { spin_rate 1; }

numjobs_rows() {
    echo
    echo "Cache on, fully cached ($NJ_SIZE file, cache 2x), thread=1: numjobs=2 total IOPS over numjobs=1 ($(nproc) cores):"
    NJ_FILE=$SHM_WORK/nj.dat
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$NJ_SIZE" --filename="$NJ_FILE" --output=/dev/null
    header
    pair_loop "machine: 2 CPU-bound loops | 1 (the ceiling)" 1.8 cpu spin_two spin_one
    pair_loop "cache numjobs=2 | numjobs=1" 1.8 cpu nj_two nj_one
}

if section_on btrfs; then btrfs_rows; fi
if section_on cache; then
    cache_rows "$CACHE_PASSES" "$REPS"
    [ "$CACHE_LONG_PASSES" = 0 ] || cache_rows "$CACHE_LONG_PASSES" "$((REPS < 3 ? REPS : 3))"
fi
if section_on numjobs; then numjobs_rows; fi
