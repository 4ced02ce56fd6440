/* clock.h - the one clock latencies are measured with.
 *
 * Two CLOCK_MONOTONIC reads per request are a measurable share of a 1-2 us
 * memory-speed I/O, so when the TSC can be trusted (the kernel's clocksource
 * is "tsc", or the CPU says its TSC is invariant, as fio's own clock checks)
 * the clock reads it directly, scaled to nanoseconds by a factor calibrated
 * against CLOCK_MONOTONIC once per process. Otherwise it falls back to
 * clock_gettime. Only differences of its readings within one process are
 * meaningful, and a difference across CPUs may come out a little negative:
 * anything kept across processes uses xd_clock_monotonic_ns.
 */
#ifndef XD_CLOCK_H
#define XD_CLOCK_H

#include <stdint.h>
#include <time.h>

struct xd_clock {
    int use_tsc;
    uint64_t tsc0;
    uint64_t mult; /* ns per cycle, 32.32 fixed point */
};

extern struct xd_clock xd_clock;

/* Calibrate once (thread-safe, idempotent); xd_open calls it. */
void xd_clock_init(void);

static inline uint64_t xd_clock_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t xd_now_ns(void)
{
#if defined(__x86_64__)
    if (xd_clock.use_tsc) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        uint64_t cycles = (((uint64_t)hi << 32) | lo) - xd_clock.tsc0;
        return (uint64_t)(((unsigned __int128)cycles * xd_clock.mult) >> 32);
    }
#endif
    return xd_clock_monotonic_ns();
}

/* Nanoseconds since start, an xd_now_ns reading: 0, not 2^64 - a little,
 * when a thread that moved to another CPU finds its TSC a little behind. */
static inline uint64_t xd_ns_since(uint64_t start)
{
    uint64_t now = xd_now_ns();
    return now > start ? now - start : 0;
}

#endif
