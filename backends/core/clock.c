/* clock.c - calibrate the TSC against CLOCK_MONOTONIC; see clock.h for why. */
#include "clock.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

struct xd_clock xd_clock;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

/* The kernel picks "tsc" only for an invariant, synchronised TSC. */
static int clock_kernel_trusts_tsc(void)
{
    char name[32] = "";
    FILE *fp = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (!fp)
        return 0;
    if (!fgets(name, sizeof(name), fp))
        name[0] = '\0';
    fclose(fp);
    return !strcmp(name, "tsc\n");
}

#if defined(__x86_64__)
/* CPUID 0x80000007 EDX bit 8: the TSC ticks at one rate in every P- and
 * C-state. fio trusts such a TSC for its own latencies (its "cpu" clock)
 * whatever the kernel's clocksource; a VM's kernel often runs kvm-clock
 * with tsc=unstable on its command line, and a kvm-clock read costs 5-10x
 * an rdtsc there, 2 per request. */
static int clock_cpu_has_invariant_tsc(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx) || eax < 0x80000007)
        return 0;
    __get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx);
    return (edx >> 8) & 1;
}

static uint64_t clock_rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Count cycles across 5 ms of CLOCK_MONOTONIC: 1 part in 10^4 or better. */
static void clock_calibrate(void)
{
    if (!clock_kernel_trusts_tsc() && !clock_cpu_has_invariant_tsc())
        return;
    uint64_t t0 = xd_clock_monotonic_ns(), c0 = clock_rdtsc(), t1, c1;
    do {
        t1 = xd_clock_monotonic_ns();
        c1 = clock_rdtsc();
    } while (t1 - t0 < 5000000);
    if (c1 <= c0)
        return;
    xd_clock.mult = ((t1 - t0) << 32) / (c1 - c0);
    xd_clock.tsc0 = c0;
    xd_clock.use_tsc = xd_clock.mult != 0;
}
#else
static void clock_calibrate(void) {}
#endif

void xd_clock_init(void)
{
    pthread_once(&clock_once, clock_calibrate);
}
