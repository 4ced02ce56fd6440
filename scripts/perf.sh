#!/usr/bin/env bash
# perf.sh - xdevice against fio's own engines, side by side in one run.
#
# Each row runs xdevice and its fio reference on the same file, back to back,
# REPS times, and prints the median of the per-pair ratios (xdevice / fio):
# the two runs of a pair see the same machine load, so their ratio is far
# steadier than either figure. Absolute IOPS on a shared machine vary a lot.
#
#   PERF_RUNTIME=5 PERF_REPS=3 PERF_SIZE=1g PERF_DISK_DIR=/var/tmp make perf
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${XD_ENGINE:-$PWD/build/xdevice.so}
RUNTIME=${PERF_RUNTIME:-5}
REPS=${PERF_REPS:-3}
SIZE=${PERF_SIZE:-1g}
DISK_DIR=${PERF_DISK_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
TARGET=0.95

die() { echo "perf: $*" >&2; exit 1; }
[ -f "$ENGINE" ] || die "$ENGINE is missing; run make first"
[ "$(stat -f -c %T "$DISK_DIR")" != tmpfs ] || die "PERF_DISK_DIR=$DISK_DIR is a tmpfs; O_DIRECT rows need a disk file system"

# fio --minimal (terse v3) fields: 8 read IOPS, 93..99 IO depth <=1..>=64.
fio_terse() { # only the terse line: fio prints notes on stdout too
    fio --minimal --name=perf --rw=randread --bs=4k --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0 "$@" | grep '^3;'
}
read_iops() { cut -d';' -f8; }
depth_16_plus() { awk -F';' '{ s = 0; for (i = 97; i <= 99; i++) s += $i; print s "%" }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# run_pair NAME "XDEVICE ARGS" "FIO ARGS": REPS back-to-back pairs.
run_pair() {
    local name=$1 xd_args=$2 ref_args=$3 xd=() ref=() ratios=() r x f
    for ((r = 0; r < REPS; r++)); do
        # alternate who goes first: the second run of a pair finds caches
        # (the host's too) warmed by the first
        if ((r % 2 == 0)); then
            # shellcheck disable=SC2086
            x=$(fio_terse --ioengine=external:"$ENGINE" $xd_args | read_iops)
            # shellcheck disable=SC2086
            f=$(fio_terse $ref_args | read_iops)
        else
            # shellcheck disable=SC2086
            f=$(fio_terse $ref_args | read_iops)
            # shellcheck disable=SC2086
            x=$(fio_terse --ioengine=external:"$ENGINE" $xd_args | read_iops)
        fi
        xd+=("$x") ref+=("$f")
        ratios+=("$(awk -v x="$x" -v f="$f" 'BEGIN { printf "%.4f", ((f > 0) ? x / f : 0) }')")
    done
    awk -v n="$name" -v x="$(printf '%s\n' "${xd[@]}" | median)" \
        -v f="$(printf '%s\n' "${ref[@]}" | median)" \
        -v r="$(printf '%s\n' "${ratios[@]}" | median)" -v t="$TARGET" 'BEGIN {
        printf "%-52s %10d %10d %7.2f  %s\n", n, x, f, r, ((r >= t) ? "ok" : "BELOW " t) }'
}

lay_out() { # a file fully written, so reads hit data rather than holes
    [ -f "$1" ] && [ "$(stat -c %s "$1")" -ge "$(numfmt --from=iec "${SIZE^^}")" ] && return
    fio --name=layout --ioengine=psync --rw=write --bs=1m --size="$SIZE" --filename="$1" \
        --output=/dev/null
}

# Scratch directories of this run's own (mktemp), removed whole at exit:
# fixed names in /dev/shm would collide with another perf run, or be a
# link someone planted.
SHM_WORK="" DISK_WORK=""
trap 'for d in "$SHM_WORK" "$DISK_WORK"; do if [ -n "$d" ]; then rm -rf -- "$d"; fi; done' EXIT
SHM_WORK=$(mktemp -d /dev/shm/xdevice-perf.XXXXXX)
DISK_WORK=$(mktemp -d "$DISK_DIR/xdevice-perf.XXXXXX")
SHM_FILE=$SHM_WORK/data.dat
DISK_FILE=$DISK_WORK/data.dat
lay_out "$SHM_FILE"
lay_out "$DISK_FILE"

printf 'xdevice vs fio %s, 4k random read, %ss x %s reps, median IOPS\n' "$(fio --version)" "$RUNTIME" "$REPS"
printf '%-52s %10s %10s %7s\n' "row (xdevice | fio reference)" "xdevice" "fio" "ratio"
printf '%-52s %10s %10s %7s\n' "" "median" "median" "median"
shm="--filename=$SHM_FILE"
run_pair "regular+io_uring qd32 | io_uring qd32 (shm)" \
    "$shm --iodepth=32 --xd_type=regular --xd_async=io_uring" "$shm --iodepth=32 --ioengine=io_uring"
run_pair "regular+sync | psync (shm)" \
    "$shm --xd_type=regular --xd_async=sync" "$shm --ioengine=psync"
run_pair "mmap | mmap (shm)" \
    "$shm --xd_type=mmap --xd_mmap_size=1g" "$shm --ioengine=mmap"
run_pair "direct+libaio qd32 | libaio direct=1 qd32 (disk)" \
    "--filename=$DISK_FILE --iodepth=32 --xd_type=direct --xd_async=libaio" \
    "--filename=$DISK_FILE --iodepth=32 --ioengine=libaio --direct=1"

echo
echo "Beyond fio: buffered reads that io_uring would punt to worker threads"
run_pair "regular+io_uring qd1 | psync (shm)" \
    "$shm --iodepth=1 --xd_type=regular --xd_async=io_uring" "$shm --ioengine=psync"
run_pair "regular+io_uring qd1 | io_uring qd1 (shm)" \
    "$shm --iodepth=1 --xd_type=regular --xd_async=io_uring" "$shm --iodepth=1 --ioengine=io_uring"
# fio's mmap engine serves reads without a syscall; xdevice's mmap type is
# its match (above), so the best syscall engine is the bar for io_uring mode.
best=psync best_iops=0
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
    "--filename=$DISK_FILE --iodepth=32 --invalidate=1 --ioengine=io_uring"
line=$(fio_terse --filename="$DISK_FILE" --iodepth=32 --invalidate=1 \
    --ioengine=external:"$ENGINE" --xd_type=regular --xd_async=io_uring)
echo "  xdevice's share of I/O issued at depth >= 16: $(echo "$line" | depth_16_plus)"
