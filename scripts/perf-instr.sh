# shellcheck shell=bash
# perf-instr.sh - the last section of `make perf` (PERF_ONLY=instr): the
# instructions xdevice runs in user space per 4k read, beside fio's own
# engine on the same job; sourced by perf.sh (its helpers, knobs, files).
#
# IOPS on a shared VM move 5-20% between runs, so a change of 100
# instructions per request (2-5% of a cached read here) hides in the
# noise of the rows above. Instructions do not: cachegrind counts them,
# and two runs of the same job that differ only in their number of reads
# (INSTR_FEW and INSTR_MANY) give the work of one read, setup and exit
# cancelled out. The figure is user space only (the kernel's share is the
# same syscall on both sides, or none for mmap), and in the async rows it
# moves a little with how many completions each reap finds, which
# valgrind's one-thread-at-a-time scheduling changes: compare like with
# like, across commits, on this row rather than across rows.

# shellcheck source=scripts/instr-count.sh
. scripts/instr-count.sh
INSTR_SIZE=64m # a region that stays in the page cache: the rows measure the engines, not the disk

# Why cachegrind cannot run here, or nothing (then valgrind is there).
instr_unavailable() {
    command -v valgrind >/dev/null && return
    [ "$(id -u)" = 0 ] || { echo "valgrind is missing (and installing it needs root)"; return; }
    apt-get install -y -q valgrind >/dev/null 2>&1 || echo "valgrind is missing and apt-get could not install it"
}

# instr_row NAME "XDEVICE ARGS" "FIO ARGS": one row; "failed" where a run did
instr_row() {
    local x f
    # shellcheck disable=SC2086 # the argument strings split into words on purpose
    x=$(instr_per_read --ioengine=external:"$ENGINE" $2) || x=failed
    # shellcheck disable=SC2086
    f=$(instr_per_read $3) || f=failed
    if [ "$x" = failed ] || [ "$f" = failed ]; then
        printf '%-56s %10s %10s\n' "$1" "$x" "$f"
        return
    fi
    printf '%-56s %10d %10d %+8d %6.2f\n' "$1" "$x" "$f" $((x - f)) "$(ratio "$x" "$f")"
}

instr_rows() {
    local why
    echo
    echo "User-space instructions per 4k read (cachegrind; $INSTR_MANY and $INSTR_FEW reads of a $INSTR_SIZE region, the difference):"
    why=$(instr_unavailable)
    if [ -n "$why" ]; then
        echo "instruction rows skipped: $why"
        return
    fi
    lay_out "$SHM_FILE"
    lay_out "$DISK_FILE"
    # The disk file's region in the page cache, as the cached rows want it:
    # dropped, then read in random order (fio advises RANDOM), since pages a
    # sequential read brought in carry the kernel's readahead marks, and a
    # RWF_NOWAIT read of a marked page says EAGAIN (14% of xdevice's probes
    # missed after a sequential warm-up, none after this one).
    fio --name=warm --ioengine=psync --rw=randread --bs=1m --size="$INSTR_SIZE" --invalidate=1 \
        --filename="$DISK_FILE" --output=/dev/null
    printf '%-56s %10s %10s %8s %6s\n' "row (xdevice | reference)" "xdevice" "reference" "extra" "ratio"
    # invalidate=0: fio drops a file's pages at open by default
    local shm="--filename=$SHM_FILE --size=$INSTR_SIZE" disk="--filename=$DISK_FILE --size=$INSTR_SIZE --invalidate=0"
    instr_row "regular+sync | psync (shm)" "$shm --xd_type=regular --xd_async=sync" "$shm --ioengine=psync"
    instr_row "mmap | mmap (shm)" "$shm --xd_type=mmap --xd_mmap_size=$INSTR_SIZE" "$shm --ioengine=mmap"
    instr_row "regular+io_uring qd32 | io_uring qd32 (cached disk)" \
        "$disk --iodepth=32 --xd_type=regular --xd_async=io_uring" "$disk --iodepth=32 --ioengine=io_uring"
    instr_row "direct+libaio qd32 | libaio direct=1 qd32 (disk)" \
        "$disk --iodepth=32 --xd_type=direct --xd_async=libaio" "$disk --iodepth=32 --ioengine=libaio --direct=1"
    echo "  (extra: what xdevice runs per read beyond fio's engine; fio's own work per read is in both)"
}

if section_on instr; then instr_rows; fi
