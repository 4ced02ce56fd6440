#!/bin/bash
# crash-kill9.sh - kill -9 a writer of the library at random moments, on
# every type, layer and async mode, and check what survived
# (tests/kill9_fsync.c says what is checked). Types that keep no data in
# process memory are held to every completed write (strict 1); the
# write-back cache and the hybrid write-back tier to what an fsync covered.
#
# usage: scripts/crash-kill9.sh [ROUNDS [REGEX on NAME/MODE]]
# Environment: KILL9 (default build/tests/kill9_fsync), SWEEP_DIR (a disk
# directory, default $XDEVICE_SCRATCH, else /var/tmp). Exit 1 when a case failed.
K=${KILL9:-build/tests/kill9_fsync}
R=${1:-20}
F=${2:-.}
B=$(mktemp -d "${SWEEP_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}/xd-kill9.XXXXXX") || exit 2
S=$(mktemp -d /dev/shm/xd-kill9.XXXXXX) || exit 2
trap 'rm -rf "$B" "$S"' EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it
D=$B/d M=$B/m
HY="storage_type=hybrid hot_directory=$S/hot tier_extent_size=16k hot_access_threshold=1 hot_cache_size=256k cold_timeout_sec=0.05 auto_migration=true migration_interval_sec=0.01 migration_interval_requests=8"
WB="enable_read_cache=true enable_write_cache=true"
declare -A C=(
    [regular]="1 storage_type=regular"
    [mmap]="1 storage_type=mmap"
    [direct]="1 storage_type=direct"
    [sparse]="1 storage_type=sparse"
    [compressed]="1 storage_type=compressed"
    [tmpfs]="1 storage_type=tmpfs tmpfs_directory=$S/tmpfs"
    [tmpfs-backup]="1 storage_type=tmpfs tmpfs_directory=$S/tmpfs backup_to_disk=true"
    [checksums]="1 storage_type=regular enable_checksums=true"
    [mirror]="1 storage_type=regular enable_checksums=true enable_redundancy=true redundancy_factor=2 mirror_directories=$M"
    [read-cache]="1 storage_type=regular enable_read_cache=true"
    [wb-regular]="0 storage_type=regular $WB"
    [wb-mmap]="0 storage_type=mmap $WB"
    [wb-direct]="0 storage_type=direct $WB"
    [wb-sparse]="0 storage_type=sparse $WB"
    [wb-compressed]="0 storage_type=compressed $WB"
    [wb-tmpfs]="0 storage_type=tmpfs tmpfs_directory=$S/tmpfs $WB"
    [hybrid-wt-regular]="1 $HY cold_storage_type=regular"
    [hybrid-wt-compressed]="1 $HY cold_storage_type=compressed"
    [hybrid-wt-sparse]="1 $HY cold_storage_type=sparse"
    [hybrid-wb-regular]="0 $HY tier_write_back=true cold_storage_type=regular"
    [hybrid-wb-compressed]="0 $HY tier_write_back=true cold_storage_type=compressed"
    [hybrid-wb-sparse]="0 $HY tier_write_back=true cold_storage_type=sparse"
)
fails=0
for name in $(printf '%s\n' "${!C[@]}" | sort); do
    for mode in sync libaio io_uring; do
        [[ $name/$mode =~ $F ]] || continue
        set -- ${C[$name]}
        strict=$1
        shift
        depth=8
        [ $mode = sync ] && depth=1
        rm -rf "$D" "$M" "$S/hot" "$S/tmpfs"
        mkdir -p "$D" "$M" "$S/hot" "$S/tmpfs"
        seed=$RANDOM
        out=$("$K" "$D/f" "$R" $seed $depth $strict "$@" async=$mode 2>&1)
        if [ $? = 0 ]; then r=PASS; else r=FAIL; fails=$((fails + 1)); fi
        printf '%s %-22s %-8s strict=%s seed=%s %s\n' $r $name $mode $strict $seed \
            "$(echo "$out" | head -3 | tr '\n' '|')"
    done
done
echo "$fails failed"
[ $fails = 0 ]
