#!/usr/bin/env bash
# bench-hosts.sh HOSTS_FILE - the bench mix on every fio server in HOSTS_FILE
# at once, through fio's own client/server mode (`make bench HOSTS=FILE`;
# README, "Many hosts"): per configuration, one `fio --client=HOST` per host,
# all running together, each writing its own output; then one report that
# labels and groups the results by host, with an aggregate across hosts
# (report/hosts.md). Each server's xdevice stats come back in its client's
# output (the engine sends them), so nothing is fetched from the servers.
#
# HOSTS_FILE: one server per line as fio's --client takes it (host,port,
# ip6:addr,port, sock:/path); blank lines and # comments are skipped. Each
# server needs fio of this version and the engine at this checkout's
# absolute path (build/xdevice.so, resolved here).
#
#   BENCH=quick|full       as scripts/bench.sh: 2 s on 256 MiB, or 15 s on 1 GiB
#   BENCH_DIR=DIR          where each server keeps its data files (default
#                          $XDEVICE_SCRATCH, else /var/tmp): a directory that exists on every server.
#                          Files are named per run and host; fio removes them
#                          (unlink=1), the stats files are removed here when
#                          the server is this machine and left on the others
#   BENCH_HOSTS_CONFIGS    "TYPE:ASYNC ..." (default: regular:io_uring
#                          regular:sync mmap:sync sparse:io_uring)
#   BENCH_HOSTS_WORKLOADS  the workloads file (default jobs/bench/workloads.fio)
#   BENCH_SIZE, BENCH_RUNTIME  override the depth's size and runtime (tests)
#   BENCH_OUT              results directory (default results/<stamp>-hosts-<pid>)
set -euo pipefail
cd "$(dirname "$0")/.."

hosts_file=${1:-}
[ -n "$hosts_file" ] || { echo "bench-hosts: usage: bench-hosts.sh HOSTS_FILE" >&2; exit 2; }
[ -r "$hosts_file" ] || { echo "bench-hosts: HOSTS=$hosts_file: cannot read it; allowed: a file naming one fio server per line" >&2; exit 2; }

case ${BENCH:-quick} in
    quick) size=256m runtime=2 ;;
    full) size=1g runtime=15 ;;
    *) echo "bench-hosts: BENCH=${BENCH}: unknown depth; allowed: quick or full" >&2; exit 2 ;;
esac
size=${BENCH_SIZE:-$size} runtime=${BENCH_RUNTIME:-$runtime}
parent=${BENCH_DIR:-${XDEVICE_SCRATCH:-/var/tmp}}
workloads=${BENCH_HOSTS_WORKLOADS:-jobs/bench/workloads.fio}
read -r -a configs <<< "${BENCH_HOSTS_CONFIGS:-regular:io_uring regular:sync mmap:sync sparse:io_uring}"
engine=$(realpath build/xdevice.so)
[ -r "$workloads" ] || { echo "bench-hosts: BENCH_HOSTS_WORKLOADS=$workloads: cannot read it" >&2; exit 2; }

# The servers, checked line by line (the same rules as xdtune --hosts).
hosts=() lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line#"${line%%[![:space:]]*}"} line=${line%"${line##*[![:space:]]}"}
    [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
    if ! [[ $line =~ ^((ip|ip4):)?[A-Za-z0-9._-]+(,[0-9]+)?$ || $line =~ ^ip6:[0-9A-Fa-f:.%]+(,[0-9]+)?$ || $line =~ ^sock:/[^[:space:]]+$ ]]; then
        echo "bench-hosts: $hosts_file:$lineno: \"$line\": not a fio server; allowed: host[,port], ip6:addr[,port], sock:/path, one per line" >&2
        exit 2
    fi
    hosts+=("$line")
done < "$hosts_file"
[ ${#hosts[@]} -gt 0 ] || { echo "bench-hosts: $hosts_file names no fio server" >&2; exit 2; }

stamp=$(date +%Y%m%d-%H%M%S)-$$
out=${BENCH_OUT:-results/$stamp-hosts}
mkdir -p "$(dirname "$out")"
mkdir "$out"
token=$(basename "$(mktemp -u XXXXXXXX)") # names the servers' files: unpredictable per run

# The bench's [global] for xdevice, without fio's logs (a client would get
# every server's logs under one name), files removed by fio when done.
global=$out/hosts.global
sed -e '/^write_[a-z]*_log=/d' -e '/^log_avg_msec=/d' \
    -e "s#^ioengine=external:.*#ioengine=external:$engine#" jobs/bench/xdevice.global > "$global"
printf 'unlink=1\n' >> "$global"

slug() { tr -c 'A-Za-z0-9.\n-' '_' <<< "$1"; }

local_stats=()
cleanup() { # the stats files this run's servers on this machine left; nothing else
    for f in "${local_stats[@]}"; do rm -f -- "$f"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the EXIT trap then runs after the fio in hand ends, never under it

failed=0 start=$SECONDS
for cfg in "${configs[@]}"; do
    type=${cfg%%:*} async=${cfg#*:}
    name=$type-$async
    job=$out/$name.fio
    cat "$global" "$workloads" > "$job"
    echo "bench-hosts: $name on ${#hosts[@]} hosts"
    pids=()
    for h in "${hosts[@]}"; do
        hs=$(slug "$h")
        stats=$parent/xdevice-bench-$token-$hs-$name.stats.json
        local_stats+=("$stats")
        # fio's client expands ${BENCH_*} here, before it sends the job
        BENCH_TYPE=$type BENCH_ASYNC=$async BENCH_SIZE=$size BENCH_RUNTIME=$runtime \
            BENCH_FILE=$parent/xdevice-bench-$token-$hs-$name.dat BENCH_STATS=$stats \
            fio --client="$h" --output-format=json --output="$out/$name.$hs.json" "$job" \
            2> "$out/$name.$hs.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        h=${hosts[$i]} hs=$(slug "${hosts[$i]}")
        rc=0
        wait "${pids[$i]}" || rc=$?
        # fio's client exits 0 when its server refused the job: no results is the sign
        if [ $rc -ne 0 ] || ! grep -q '"client_stats"' "$out/$name.$hs.json"; then
            why=$(grep -h -m1 -E '^<[^>]*> (fio|xdevice)|fio:' "$out/$name.$hs.json" "$out/$name.$hs.err" 2>/dev/null || true)
            echo "bench-hosts: $name on $h failed: ${why:-fio exited with $rc}" >&2
            failed=$((failed + 1))
            mv "$out/$name.$hs.json" "$out/$name.$hs.failed" 2>/dev/null || true
        fi
    done
done

echo "bench-hosts: writing the report"
rc=0
build/xdreport report -o "$out/report" --title "xdevice bench on ${#hosts[@]} hosts ($stamp, BENCH=${BENCH:-quick})" \
    "$out"/*.json || rc=$?
echo "bench-hosts: report: $out/report/report.html, by host: $out/report/hosts.md"
echo "bench-hosts: results in $out, $((SECONDS - start))s"
[ $failed -eq 0 ] && [ $rc -eq 0 ]
