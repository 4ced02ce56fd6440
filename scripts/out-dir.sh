# shellcheck shell=bash
# out-dir.sh - sourced by the bench scripts whose results go in an OUT
# directory they empty at each run (bench-tune.sh, bench-tune-live.sh).
#
# fresh_out_dir SCRIPT DIR: DIR made new for this run, holding the marker
# that says a run of these scripts made it. An existing DIR is removed only
# when it holds that marker and it and the marker are the caller's, with
# DIR writable by no one else: anyone who could write DIR could plant the
# marker there and have root's next run remove whatever else it holds (an
# empty directory of another user's was adopted, marked, and emptied with
# their files at the run after). Anything else at DIR: one line, exit 2.
fresh_out_dir() {
    local script=$1 dir=$2 marker=$2/.xdevice-bench-tune me
    me=$(id -u)
    if [ -e "$dir" ] || [ -L "$dir" ]; then
        if [ -L "$dir" ] || [ ! -d "$dir" ] || [ -L "$marker" ] || [ ! -f "$marker" ] ||
            [ "$(stat -c %u -- "$dir")" != "$me" ] || [ "$(stat -c %u -- "$marker")" != "$me" ] ||
            [ -n "$(find "$dir" -maxdepth 0 -perm /022)" ]; then
            echo "$script: OUT=$dir exists and was not made by an earlier run of this script (or others may write to it); allowed: a path that does not exist yet, which the script makes" >&2
            exit 2
        fi
        rm -rf -- "$dir"
    fi
    mkdir -p -- "$(dirname -- "$dir")" && mkdir -m 0755 -- "$dir" && : >"$marker"
}
