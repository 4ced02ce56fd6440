# shellcheck shell=bash
# fio-clock.sh - sourced by perf.sh, regress.sh and bench.sh: one clock for
# every fio run they compare.
#
# Left to itself fio picks its clock at each start: the TSC when a short
# test finds it monotonic across CPUs, else clock_gettime. On a VM that test
# passes in some runs and fails in others (seen here: 3 of 6 runs each
# way), so the two runs of a pair could time themselves with different
# clocks, several reads per request apart in cost. Both sides get the same
# one: the TSC where the CPU says it is invariant (fio's own first choice),
# else clock_gettime. FIO_CLOCKSOURCE=cpu|clock_gettime|gettimeofday
# overrides.

# fio_clock_option: the fio option naming that clock.
fio_clock_option() {
    local cs=${FIO_CLOCKSOURCE:-}
    if [ -z "$cs" ]; then
        cs=clock_gettime
        if grep -qw constant_tsc /proc/cpuinfo && grep -qw nonstop_tsc /proc/cpuinfo; then cs=cpu; fi
    fi
    case $cs in
    cpu | clock_gettime | gettimeofday) echo "--clocksource=$cs" ;;
    *)
        echo "FIO_CLOCKSOURCE=$cs: allowed: cpu, clock_gettime or gettimeofday" >&2
        return 1
        ;;
    esac
}
