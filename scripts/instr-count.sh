# shellcheck shell=bash
# instr-count.sh - user-space instructions per 4k read of a fio job, counted
# by cachegrind: sourced by perf-instr.sh (make perf's instr rows) and
# regress.sh (make regress's informational line). Needs FIO_CLOCK
# (fio-clock.sh) and valgrind.
#
# Two runs of one job that differ only in their number of reads
# (INSTR_FEW and INSTR_MANY) give the work of one read, setup and exit
# cancelled out. Unlike IOPS on a shared VM, which move 5-20% between
# runs, the count moves by under 1% for a sync job (2-4% in async modes:
# how many completions each reap finds depends on valgrind's
# one-thread-at-a-time scheduling), so a change of 100 instructions per
# request shows.

INSTR_FEW=2000
INSTR_MANY=12000

# instr_total READS FIO_ARGS...: instructions the whole fio process ran for
# a job of READS 4k random reads (FIO_ARGS name the engine, the file and
# its --size; --thread keeps the job in the one process valgrind follows).
instr_total() {
    local reads=$1
    shift
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        fio "$FIO_CLOCK" --thread --minimal --name=perf --rw=randread --bs=4k --norandommap \
        --randrepeat=0 --io_size=$((reads * 4))k "$@" 2>&1 >/dev/null |
        awk '/I +refs:/ { gsub(",", "", $NF); n = $NF } END { if (n == "") exit 1; print n }'
}

# instr_per_read FIO_ARGS...: instructions per read; non-zero status when a run failed
instr_per_read() {
    local few many
    few=$(instr_total "$INSTR_FEW" "$@") && many=$(instr_total "$INSTR_MANY" "$@") || return 1
    echo $(((many - few) / (INSTR_MANY - INSTR_FEW)))
}
