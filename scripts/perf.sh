#!/usr/bin/env bash
# perf.sh - xdevice against fio's own engines, side by side in one run.
#
# Each row runs xdevice and its fio reference on the same file, back to back,
# PERF_PAIRS times (at least 5 for a figure worth quoting), alternating who
# goes first, and prints the median, min and max of the per-pair ratios
# (xdevice / fio): the two runs of a pair see the same machine load, so their
# ratio is far steadier than either figure. Absolute IOPS on a shared machine
# vary a lot. The last column says whether a row is bound by the CPU or by
# the disk (a disk-bound row measures the device as much as xdevice); on the
# disk-file rows it is measured: the reference job's share of its CPU
# (fio's usr + sys, median over the pairs), "cpu" from 90% up, where the
# job's thread, mostly inside the kernel's I/O path, sets the pace.
#
# Sections after the fio rows: the compressed type against btrfs
# compress-force=zstd:1 on a loop device (root; installs btrfs-progs if
# missing; skipped with the reason where it cannot), the read cache's share of
# the LRU->MIN gap closed (from its own trace=FILE, replayed by xdcachesim),
# numjobs=2 over numjobs=1 with the cache on, and the instructions per read
# in user space beside fio's engine (cachegrind; installs valgrind if missing).
#
#   PERF_RUNTIME=5 PERF_PAIRS=5 PERF_SIZE=1g PERF_DISK_DIR=/var/tmp make perf
# Size knobs, for a quick end-to-end check (PERF_PAIRS=1 and tiny sizes):
#   PERF_BTRFS_SIZE=256m (data; the loop image is 2x plus 256 MiB)
#   PERF_CACHE_SIZE=1g (the cache rows' file; the cache is 10% of it)
#   PERF_CACHE_PASSES=8 (reads, in file sizes)   PERF_CACHE_LONG_PASSES=32 (0: none)
#   PERF_NJ_SIZE=64m
# PERF_ONLY=fio,btrfs,cache,numjobs,instr runs only those sections (default
# all; instr: user-space instructions per read under cachegrind, beside
# fio's engine, scripts/perf-instr.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${XD_ENGINE:-$PWD/build/xdevice.so}
RUNTIME=${PERF_RUNTIME:-5}
REPS=${PERF_PAIRS:-${PERF_REPS:-5}}
SIZE=${PERF_SIZE:-1g}
DISK_DIR=${PERF_DISK_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
BTRFS_SIZE=${PERF_BTRFS_SIZE:-256m}
CACHE_FILE_SIZE=${PERF_CACHE_SIZE:-1g}
CACHE_PASSES=${PERF_CACHE_PASSES:-8}
CACHE_LONG_PASSES=${PERF_CACHE_LONG_PASSES:-32}
NJ_SIZE=${PERF_NJ_SIZE:-64m}
SIM=${XD_CACHESIM:-$PWD/build/xdcachesim}
TARGET=1.0

die() { echo "perf: $*" >&2; exit 1; }
# shellcheck source=scripts/fio-clock.sh
. scripts/fio-clock.sh
FIO_CLOCK=$(fio_clock_option) || exit 1
# every fio run below, both sides of every pair, on the one clock
fio() { command fio "$FIO_CLOCK" "$@"; }
[ -f "$ENGINE" ] || die "$ENGINE is missing; run make first"
# whole KNOB VALUE LEAST: the knob is a whole number, at least LEAST
whole() { [[ $2 =~ ^(0|[1-9][0-9]{0,8})$ ]] && (($2 >= $3)) || die "$1=$2: want a whole number >= $3"; }
# size KNOB VALUE: a fio size, a whole number with an optional k, m or g
size() { [[ $2 =~ ^[1-9][0-9]{0,12}[kKmMgG]?$ ]] || die "$1=$2: want a size such as 64m or 1g"; }
size PERF_SIZE "$SIZE"
size PERF_BTRFS_SIZE "$BTRFS_SIZE"
size PERF_NJ_SIZE "$NJ_SIZE"
size PERF_CACHE_SIZE "${PERF_CACHE_SIZE:-1g}"
DISK_KNOB=PERF_DISK_DIR
[ -n "${PERF_DISK_DIR:-}" ] || DISK_KNOB=XDEVICE_SCRATCH
[ -n "${PERF_DISK_DIR:-}${XDEVICE_SCRATCH:-}" ] || DISK_KNOB="the default disk directory"
[ -d "$DISK_DIR" ] || die "$DISK_KNOB=$DISK_DIR: not a directory; allowed: an existing directory on a disk file system (perf makes its own inside)"
whole PERF_PAIRS "$REPS" 1
whole PERF_RUNTIME "$RUNTIME" 1
whole PERF_CACHE_PASSES "$CACHE_PASSES" 1
whole PERF_CACHE_LONG_PASSES "$CACHE_LONG_PASSES" 0
SECTIONS=fio,btrfs,cache,numjobs,instr
ONLY=${PERF_ONLY:-$SECTIONS}
for section in ${ONLY//,/ }; do
    [[ ,$SECTIONS, == *",$section,"* ]] || die "PERF_ONLY=$ONLY: no section '$section'; allowed: a comma list of $SECTIONS"
done
[[ $ONLY =~ ^[a-z]+(,[a-z]+)*$ ]] || die "PERF_ONLY=$ONLY: want a comma list of $SECTIONS"
# section_on NAME: is the section in PERF_ONLY?
section_on() { [[ ,$ONLY, == *",$1,"* ]]; }
[ "$(stat -f -c %T "$DISK_DIR")" != tmpfs ] || die "PERF_DISK_DIR=$DISK_DIR is a tmpfs; O_DIRECT rows need a disk file system"

# fio --minimal (terse v3) fields: 8 read IOPS, 93..99 IO depth <=1..>=64.
fio_terse() { # only the terse line: fio prints notes on stdout too
    fio --minimal --name=perf --rw=randread --bs=4k --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0 "$@" | grep '^3;'
}
read_iops() { cut -d';' -f8; }
# the job thread's share of a CPU, user + system (fields 88 and 89), in %
job_cpu() { awk -F';' '{ u = $88; s = $89; sub("%", "", u); sub("%", "", s); printf "%.0f\n", u + s }'; }
# fio rounds each depth's share, so the three can add up to a little over 100
depth_16_plus() { awk -F';' '{ s = 0; for (i = 97; i <= 99; i++) s += $i; printf "%.0f%%\n", (s > 100) ? 100 : s }'; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v x="$1" -v f="$2" 'BEGIN { printf "%.4f", ((f > 0) ? x / f : 0) }'; }

# print_row NAME XD_MEDIAN REF_MEDIAN TARGET BOUND RATIO...: one table row,
# the median, min and max of the per-pair ratios and the verdict on the median
# (TARGET 0: a row with no target, for comparison only).
print_row() {
    local name=$1 x=$2 f=$3 t=$4 bound=$5
    shift 5
    printf '%s\n' "$@" | sort -g | awk -v n="$name" -v x="$x" -v f="$f" -v t="$t" -v b="$bound" '
        { v[NR] = $1 } END {
        m = v[int((NR + 1) / 2)]
        printf "%-56s %10.0f %10.0f %7.2f %6.2f %6.2f  %-4s %s\n", n, x, f, m, v[1], v[NR], b,
            ((t == 0) ? "(informational)" : (m >= t) ? "ok" : "BELOW " t) }'
}

# pair_loop NAME TARGET BOUND XD_CMD REF_CMD: REPS pairs of two commands that
# each print one figure (higher is better), alternating who goes first: the
# second run of a pair finds caches (the host's too) warmed by the first.
pair_loop() {
    local name=$1 t=$2 bound=$3 xd_cmd=$4 ref_cmd=$5 xd=() ref=() ratios=() r x f
    for ((r = 0; r < REPS; r++)); do
        if ((r % 2 == 0)); then
            x=$($xd_cmd) f=$($ref_cmd)
        else
            f=$($ref_cmd) x=$($xd_cmd)
        fi
        xd+=("$x") ref+=("$f") ratios+=("$(ratio "$x" "$f")")
    done
    if [ "$bound" = measured ]; then bound=$(measured_bound); fi
    print_row "$name" "$(printf '%s\n' "${xd[@]}" | median)" "$(printf '%s\n' "${ref[@]}" | median)" \
        "$t" "$bound" "${ratios[@]}"
}

# run_pair NAME "XDEVICE ARGS" "FIO ARGS" [BOUND]: a fio row, read IOPS.
# BOUND disk: measured (measured_bound).
PAIR_XD="" PAIR_REF="" CPU_LOG=""
# the argument strings split into words on purpose
# shellcheck disable=SC2086
pair_xd() { fio_terse --ioengine=external:"$ENGINE" $PAIR_XD | read_iops; }
# shellcheck disable=SC2086
pair_ref() {
    local line
    line=$(fio_terse $PAIR_REF)
    echo "$line" | job_cpu >> "$CPU_LOG"
    echo "$line" | read_iops
}
# A disk-file row's bound from its reference runs' CPU shares: on a VM the
# kernel's work per I/O (exits to the host for each doorbell and interrupt)
# can keep the job's CPU busy before the device is, and the row then
# measures that path, not the disk.
measured_bound() {
    local busy
    busy=$(median < "$CPU_LOG")
    if [ "$busy" -ge 90 ]; then echo "cpu $busy%"; else echo "disk (cpu $busy%)"; fi
}
run_pair() {
    local bound=${4:-cpu}
    PAIR_XD=$2 PAIR_REF=$3
    : > "$CPU_LOG"
    if [ "$bound" = disk ]; then bound=measured; fi
    pair_loop "$1" "$TARGET" "$bound" pair_xd pair_ref
}

header() {
    printf '%-56s %10s %10s %7s %6s %6s  %s\n' "row (xdevice | reference)" "xdevice" "reference" "ratio" "min" "max" "bound"
}

lay_out() { # a file fully written, so reads hit data rather than holes
    [ -f "$1" ] && [ "$(stat -c %s "$1")" -ge "$(numfmt --from=iec "${SIZE^^}")" ] && return
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$SIZE" --filename="$1" \
        --output=/dev/null
}

# Scratch directories of this run's own (mktemp), removed whole at exit:
# fixed names in /dev/shm would collide with another perf run, or be a
# link someone planted.
SHM_WORK="" DISK_WORK="" BT_WORK="" BT_LOOP="" BT_MOUNTED=""
# Undo exactly what this run made, in order: the btrfs mount on the directory
# it created, the loop device it attached, then its own scratch directories.
perf_cleanup() {
    if [ -n "$BT_MOUNTED" ]; then umount -- "$BT_MOUNTED" || umount -l -- "$BT_MOUNTED" || true; fi
    if [ -n "$BT_LOOP" ]; then losetup -d "$BT_LOOP" || true; fi
    for d in "$SHM_WORK" "$DISK_WORK" "$BT_WORK"; do if [ -n "$d" ]; then rm -rf -- "$d"; fi; done
}
trap perf_cleanup EXIT
trap 'exit 130' INT TERM HUP # so that EXIT runs the cleanup on a signal too
SHM_WORK=$(mktemp -d /dev/shm/xdevice-perf.XXXXXX)
DISK_WORK=$(mktemp -d "$DISK_DIR/xdevice-perf.XXXXXX")
SHM_FILE=$SHM_WORK/data.dat
CPU_LOG=$SHM_WORK/cpu.log
DISK_FILE=$DISK_WORK/data.dat

printf 'machine: %s, %s cores, kernel %s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    "$(nproc)" "$(uname -r)"
printf 'xdevice vs fio %s (%s on both sides), 4k random read, %ss x %s pairs; IOPS medians, ratio median/min/max over pairs\n' \
    "$(command fio --version)" "$FIO_CLOCK" "$RUNTIME" "$REPS"

# The rows against fio's own engines.
fio_rows() {
    lay_out "$SHM_FILE"
    lay_out "$DISK_FILE"
    header
    local shm="--filename=$SHM_FILE"
    run_pair "regular+io_uring qd32 | io_uring qd32 (shm)" \
        "$shm --iodepth=32 --xd_type=regular --xd_async=io_uring" "$shm --iodepth=32 --ioengine=io_uring"
    run_pair "regular+sync | psync (shm)" \
        "$shm --xd_type=regular --xd_async=sync" "$shm --ioengine=psync"
    run_pair "mmap | mmap (shm)" \
        "$shm --xd_type=mmap --xd_mmap_size=1g" "$shm --ioengine=mmap"
    run_pair "direct+libaio qd32 | libaio direct=1 qd32 (disk)" \
        "--filename=$DISK_FILE --iodepth=32 --xd_type=direct --xd_async=libaio" \
        "--filename=$DISK_FILE --iodepth=32 --ioengine=libaio --direct=1" disk
    run_pair "direct+io_uring qd32 | io_uring direct=1 qd32 (disk)" \
        "--filename=$DISK_FILE --iodepth=32 --xd_type=direct --xd_async=io_uring" \
        "--filename=$DISK_FILE --iodepth=32 --ioengine=io_uring --direct=1" disk
    # xdevice sends reads into fio's buffers as fixed buffers (registered
    # once); fio's engine does so only with fixedbufs=1, off by default: the
    # row above is against what a user gets, this one against fio's best
    TARGET=0 run_pair "direct+io_uring qd32 | io_uring direct=1 fixedbufs=1 qd32 (disk)" \
        "--filename=$DISK_FILE --iodepth=32 --xd_type=direct --xd_async=io_uring" \
        "--filename=$DISK_FILE --iodepth=32 --ioengine=io_uring --direct=1 --fixedbufs=1" disk

    echo
    echo "Beyond fio: buffered reads that io_uring would punt to worker threads"
    run_pair "regular+io_uring qd1 | psync (shm)" \
        "$shm --iodepth=1 --xd_type=regular --xd_async=io_uring" "$shm --ioengine=psync"
    run_pair "regular+io_uring qd1 | io_uring qd1 (shm)" \
        "$shm --iodepth=1 --xd_type=regular --xd_async=io_uring" "$shm --iodepth=1 --ioengine=io_uring"
    # fio's mmap engine serves reads without a syscall; xdevice's mmap type is
    # its match (above), so the best syscall engine is the bar for io_uring mode.
    local best=psync best_iops=0 eng iops line
    for eng in psync libaio io_uring; do
        iops=$(fio_terse "$shm" --iodepth=32 --ioengine=$eng | read_iops)
        if [ "$iops" -gt "$best_iops" ]; then best=$eng best_iops=$iops; fi
    done
    run_pair "regular+io_uring qd32 | best syscall engine ($best) qd32" \
        "$shm --iodepth=32 --xd_type=regular --xd_async=io_uring" "$shm --iodepth=32 --ioengine=$best"

    echo
    echo "Reads that would block keep real queue depth (disk file, page cache dropped at open):"
    run_pair "regular+io_uring qd32 | io_uring qd32 (uncached disk)" \
        "--filename=$DISK_FILE --iodepth=32 --invalidate=1 --xd_type=regular --xd_async=io_uring" \
        "--filename=$DISK_FILE --iodepth=32 --invalidate=1 --ioengine=io_uring" disk
    line=$(fio_terse --filename="$DISK_FILE" --iodepth=32 --invalidate=1 \
        --ioengine=external:"$ENGINE" --xd_type=regular --xd_async=io_uring)
    echo "  xdevice's share of I/O issued at depth >= 16: $(echo "$line" | depth_16_plus)"
}
if section_on fio; then fio_rows; fi

# shellcheck source=scripts/perf-more.sh
. scripts/perf-more.sh
# shellcheck source=scripts/perf-instr.sh
. scripts/perf-instr.sh
