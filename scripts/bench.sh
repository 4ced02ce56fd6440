#!/usr/bin/env bash
# bench.sh - the main job: run every storage type's job file and summarise.
#
# Results go to results/<timestamp>/ (fio's json+ per type, xdevice's stats
# JSON, fio's terse lines), with results/latest pointing at the newest run.
# The block type runs on a loop device made here and removed afterwards; it is
# skipped, with the reason, when that is not possible.
set -euo pipefail
cd "$(dirname "$0")/.."

TYPES=(regular mmap direct tmpfs block)
stamp=$(date +%Y%m%d-%H%M%S)
out=results/$stamp
mkdir -p "$out"
ln -sfn "$stamp" results/latest

loop_dev="" loop_img=/var/tmp/xdevice-bench-block.img
cleanup() {
    if [ -n "$loop_dev" ]; then losetup -d "$loop_dev" || true; fi
    rm -f "$loop_img"
}
trap cleanup EXIT

# A loop device for the block type in loop_dev, or the reason in skip_reason.
make_loop_device() {
    if [ "$(id -u)" -ne 0 ]; then skip_reason="not root: loop devices need root"; return 1; fi
    truncate -s 512m "$loop_img"
    if ! loop_dev=$(losetup -f --show "$loop_img" 2>&1); then
        skip_reason="losetup failed: $loop_dev"
        loop_dev=""
        return 1
    fi
}

# fio terse v3: 3 job name, 5 error, 7 read KiB/s, 8 read IOPS, 48 write KiB/s, 49 write IOPS
summarise() {
    local type=$1 terse=$2
    awk -F';' -v t="$type" '{
        printf "%-8s %-22s %10d %9.1f %10d %9.1f %6s\n", t, $3, $8, $7 / 1024, $49, $48 / 1024,
               ($5 == 0 ? "ok" : "err " $5) }' "$terse"
}

n=${#TYPES[@]} k=0 start=$SECONDS
summary=$out/summary.txt
printf '%-8s %-22s %10s %9s %10s %9s %6s\n' type job "read IOPS" "read MiB/s" "write IOPS" "write MiB/s" status > "$summary"
for type in "${TYPES[@]}"; do
    k=$((k + 1))
    elapsed=$((SECONDS - start))
    eta=""
    [ $k -gt 1 ] && eta=", about $(( elapsed * (n - k + 1) / (k - 1) ))s left"
    echo "bench: job $k of $n: $type$eta"
    env_args=()
    if [ "$type" = block ]; then
        if ! make_loop_device; then
            echo "bench: skipping block: $skip_reason"
            printf '%-8s skipped: %s\n' block "$skip_reason" >> "$summary"
            continue
        fi
        env_args=(XD_BLOCK_DEVICE="$loop_dev")
    fi
    rc=0
    env "${env_args[@]}" fio "jobs/$type.fio" --output-format=json+,terse --output="$out/$type.raw" || rc=$?
    grep '^3;' "$out/$type.raw" > "$out/$type.terse" || true
    grep -v '^3;' "$out/$type.raw" > "$out/$type.json" || true
    rm -f "$out/$type.raw"
    cp "/tmp/xdevice-$type.stats.json" "$out/$type.stats.json" 2>/dev/null || true
    summarise "$type" "$out/$type.terse" >> "$summary"
    [ $rc -eq 0 ] || { echo "bench: fio failed on jobs/$type.fio (exit $rc); see $out/$type.json" >&2; cat "$summary"; exit 1; }
done
rm -f /var/tmp/xdevice-{regular,mmap,direct,tmpfs}.dat
echo
cat "$summary"
echo
echo "bench: results in $out (results/latest)"
