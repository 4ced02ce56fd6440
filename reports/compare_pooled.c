/* compare_pooled.c - the percentiles of jobs that share a name in one run
 * (numjobs without group_reporting, or several job sections named alike).
 *
 * compare sums such jobs into one run: IOPS and bandwidth add up and the
 * mean latency is exact as an I/O-weighted mean of the jobs' means. A
 * percentile does not combine that way: three jobs whose p99s are 100 us,
 * 100 us and 1 ms have a pooled p99 anywhere from 100 us to 1 ms, as the
 * slow requests spread, of which their weighted mean (400 us) knows
 * nothing (measured: numjobs=3, pooled p99 667.6 us, weighted mean of the
 * jobs' 619.2 us, 7% off, more than the default threshold). fio's json+
 * output holds each job's latency histogram ("bins"); pooling those and
 * reading the percentile the way fio does (the first bin where the
 * running count reaches p% of all samples, its key as the value) gives
 * what group_reporting would have printed. Without bins there is no
 * honest percentile, so such a row is shown but never decided: a gate
 * that passed or failed on a mean of percentiles would pass or fail on a
 * number that is no figure of the run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_impl.h"
#include "mem.h"

void xr_cmp_add_part(struct run *r, int d, const struct xr_dir *x)
{
    r->parts[d] = xr_mem_realloc(r->parts[d], (r->nparts[d] + 1) * sizeof *r->parts[d]);
    r->parts[d][r->nparts[d]++] = x;
}

static int by_latency(const void *a, const void *b)
{
    const struct xr_bin *x = a, *y = b;
    return (x->ns > y->ns) - (x->ns < y->ns);
}

/* Every bin of the parts, in latency order, into *out; their number. */
static size_t pooled_bins(const struct xr_dir *const *parts, size_t nparts, struct xr_bin **out)
{
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++)
        n += parts[i]->nbins;
    struct xr_bin *all = xr_mem_alloc((n + 1) * sizeof *all);
    n = 0;
    for (size_t i = 0; i < nparts; i++) {
        memcpy(all + n, parts[i]->bins, parts[i]->nbins * sizeof *all);
        n += parts[i]->nbins;
    }
    qsort(all, n, sizeof *all, by_latency);
    *out = all;
    return n;
}

/* fio's calc_clat_percentiles: the first bin at which the running count
 * reaches pct% of the samples (in long double, as fio compares). */
static double bins_percentile(const struct xr_bin *bins, size_t n, double pct)
{
    unsigned long long total = 0, sum = 0;
    for (size_t i = 0; i < n; i++)
        total += bins[i].count;
    for (size_t i = 0; i < n; i++) {
        sum += bins[i].count;
        if (sum && (long double)sum >= (long double)pct / 100.0L * (long double)total)
            return (double)bins[i].ns;
    }
    return NAN;
}

static int all_have_bins(const struct xr_dir *const *parts, size_t nparts)
{
    for (size_t i = 0; i < nparts; i++)
        if (!parts[i]->nbins)
            return 0;
    return 1;
}

/* One run and direction: a single job's percentiles are fio's own. */
static void pool_run(struct run *r, int d)
{
    if (r->nparts[d] > 1 && all_have_bins(r->parts[d], r->nparts[d])) {
        struct xr_bin *bins;
        size_t n = pooled_bins(r->parts[d], r->nparts[d], &bins);
        r->pct[d][0] = bins_percentile(bins, n, 50);
        r->pct[d][1] = bins_percentile(bins, n, 99);
        r->pooled[d] = 1;
        free(bins);
    } else if (r->nparts[d] > 1) {
        r->averaged[d] = 1;
    }
    free(r->parts[d]);
    r->parts[d] = NULL;
    r->nparts[d] = 0;
}

void xr_cmp_pool_percentiles(struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++)
        for (int s = 0; s < NSIDE; s++)
            for (size_t j = 0; j < c->w[i].nruns[s]; j++)
                for (int d = 0; d < NDIR; d++)
                    pool_run(&c->w[i].runs[s][j], d);
}

/* Runs of the row's workload whose percentiles in its direction are a
 * mean of the jobs' own, both sides together. */
static size_t averaged_runs(const struct row *r)
{
    size_t n = 0;
    for (int s = 0; s < NSIDE; s++)
        for (size_t j = 0; j < r->w->nruns[s]; j++)
            n += r->w->runs[s][j].averaged[r->dir];
    return n;
}

void xr_cmp_check_averaged(struct row *r)
{
    size_t n = r->kind == K_CLAT_P50 || r->kind == K_CLAT_P99 ? averaged_runs(r) : 0;
    if (!n || !r->n[BASE] || !r->n[NEW]) /* a row with nothing to judge says so already */
        return;
    const char *pct = r->kind == K_CLAT_P50 ? "p50" : "p99";
    if (r->verdict == V_INFORMATIONAL) { /* shown, never judged: say what it is */
        size_t len = strlen(r->why);
        snprintf(r->why + len, sizeof r->why - len, "; in %zu run(s) an I/O-weighted mean of "
                 "the %ss of jobs sharing the name, not their pooled %s (no json+ latency "
                 "bins)", n, pct, pct);
        return;
    }
    r->verdict = V_INCONCLUSIVE;
    snprintf(r->why, sizeof r->why, "not judged: in %zu run(s) jobs share the name and the "
             "JSON has no latency bins, so this is an I/O-weighted mean of their %ss, not the "
             "pooled %s; allowed: --output-format=json+ (bins) or group_reporting", n, pct, pct);
}
