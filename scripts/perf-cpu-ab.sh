#!/bin/bash
# CPU time per request of two builds of the engine, in alternating pairs:
#   OLD=path/to/old/xdevice.so NEW=build/xdevice.so bash scripts/perf-cpu-ab.sh
# Each run reads 1 GiB in 4k random reads from a 256 MiB file on /dev/shm;
# perf stat's task-clock (software counter, fio's own work included) divided
# by the request count gives ns per request. CPU time moves far less than
# IOPS on a shared VM, so this tells a change in per-request cost that the
# `make perf` rows cannot. PAIRS (default 7) sets the number of pairs.
# CACHE=1 runs the read cache's rows instead (cache on, a 256 MiB cache over
# the file's first 64 MiB, so after the first pass reads hit): 4k random reads, an 80/20
# read/write mix, and random writes; the pairs alternate which side runs
# first.
set -euo pipefail
: "${OLD:?OLD=path of the old xdevice.so}" "${NEW:?NEW=path of the new xdevice.so}"
PAIRS=${PAIRS:-7}
scratch=$(mktemp -d /dev/shm/xd-cpuab.XXXXXX)
trap 'rm -rf -- "$scratch"' EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it
file=$scratch/f
dd if=/dev/urandom of="$file" bs=1M count=256 status=none
ios=$((1024 * 1024 / 4))

run() { # engine type async iodepth [rw [fio options...]]: prints ns of CPU per request
    local engine=$1 type=$2 async=$3 depth=$4 rw=${5:-randread}
    shift $(($# < 5 ? $# : 5))
    perf stat -x, -e task-clock -o "$scratch/perf" fio --name=c --ioengine=external:"$engine" \
        --xd_type="$type" --xd_async="$async" --iodepth="$depth" --filename="$file" --size=256m \
        --io_size=1g --rw="$rw" --rwmixread=80 --bs=4k --thread=1 --norandommap=1 \
        --randrepeat=1 --invalidate=0 --output-format=terse "$@" > /dev/null
    awk -F, -v ios=$ios '/task-clock/ {printf "%.0f\n", $1 * 1e6 / ios}' "$scratch/perf"
}

if [ "${CACHE:-0}" = 1 ]; then
    for pair in $(seq "$PAIRS"); do
        for rw in randread randrw randwrite; do
            set -- regular sync 1 "$rw" --xd_enable_read_cache=1 --xd_cache_size=256m --size=64m
            if ((pair % 2)); then o=$(run "$OLD" "$@"); n=$(run "$NEW" "$@")
            else n=$(run "$NEW" "$@"); o=$(run "$OLD" "$@"); fi
            echo "$pair cache $rw old $o new $n"
        done
    done
    exit 0
fi

for pair in $(seq "$PAIRS"); do
    for cfg in "regular sync 1" "regular io_uring 32" "mmap sync 1"; do
        set -- $cfg
        o=$(run "$OLD" "$1" "$2" "$3")
        n=$(run "$NEW" "$1" "$2" "$3")
        echo "$pair $1+$2 qd$3 old $o new $n"
    done
done
