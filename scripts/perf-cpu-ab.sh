#!/bin/bash
# CPU time per request of two builds of the engine, in alternating pairs:
#   OLD=path/to/old/xdevice.so NEW=build/xdevice.so bash scripts/perf-cpu-ab.sh
# Each run reads 1 GiB in 4k random reads from a 256 MiB file on /dev/shm;
# perf stat's task-clock (software counter, fio's own work included) divided
# by the request count gives ns per request. CPU time moves far less than
# IOPS on a shared VM, so this tells a change in per-request cost that the
# `make perf` rows cannot. PAIRS (default 7) sets the number of pairs.
set -euo pipefail
: "${OLD:?OLD=path of the old xdevice.so}" "${NEW:?NEW=path of the new xdevice.so}"
PAIRS=${PAIRS:-7}
scratch=$(mktemp -d /dev/shm/xd-cpuab.XXXXXX)
trap 'rm -rf -- "$scratch"' EXIT
file=$scratch/f
dd if=/dev/urandom of="$file" bs=1M count=256 status=none
ios=$((1024 * 1024 / 4))

run() { # engine type async iodepth: prints ns of CPU per request
    perf stat -x, -e task-clock -o "$scratch/perf" fio --name=c --ioengine=external:"$1" \
        --xd_type="$2" --xd_async="$3" --iodepth="$4" --filename="$file" --size=256m \
        --io_size=1g --rw=randread --bs=4k --thread=1 --norandommap=1 --randrepeat=1 \
        --output-format=terse > /dev/null
    awk -F, -v ios=$ios '/task-clock/ {printf "%.0f\n", $1 * 1e6 / ios}' "$scratch/perf"
}

for pair in $(seq "$PAIRS"); do
    for cfg in "regular sync 1" "regular io_uring 32" "mmap sync 1"; do
        set -- $cfg
        o=$(run "$OLD" "$1" "$2" "$3")
        n=$(run "$NEW" "$1" "$2" "$3")
        echo "$pair $1+$2 qd$3 old $o new $n"
    done
done
