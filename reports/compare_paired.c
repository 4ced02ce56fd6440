/* compare_paired.c - `xdreport compare --paired`: a row judged on the
 * per-round ratios NEW/BASE instead of two pooled samples.
 *
 * scripts/regress.sh runs BASE and NEW back to back in each round, so the
 * two runs of a round share whatever else the machine was doing then. On
 * a shared runner single runs vary by 20% while the ratio within a round
 * varies by a few percent: pairing removes the load that both sides saw.
 *
 * Per row, from the n rounds with a value on both sides, on the log ratios
 * d_k = log(new_k / base_k):
 *   ratio     exp of their median
 *   base, new each side's median over the same n rounds (runs without a
 *             partner are left out of them as of the ratio)
 *   interval  the order statistics d_(k), d_(n+1-k) that the sign test at
 *             one-sided level a leaves, a = row_alpha (alpha split over the
 *             gated rows): a 1 - 2a interval for the median (stats.h). A
 *             round in which one side found its CPU a third slower moves
 *             each end by one order statistic, where it would widen a t
 *             interval by its size.
 *   verdict   regression   the interval entirely worse than the threshold
 *             improvement  the interval entirely better than it
 *             same         the interval entirely within +-threshold
 *             inconclusive otherwise
 * "regression" is a one-sided test at level a that the change is worse
 * than the threshold, "same" two one-sided tests (TOST) at level a that it
 * is within it: each wrong verdict has probability at most a.
 *
 * Gated is the median latency: what a request costs. It is the one figure
 * a shared machine leaves alone: a burst of someone else's load that stops
 * the job for milliseconds lands in IOPS, the mean and the p99 (a mean of
 * 7 ms against 4 us measured here; IOPS ratios of 0.84 to 1.52 within the
 * rounds of one A/A run) but not in the median of a million requests,
 * whose paired ratio stays within a few percent. At a fixed queue depth a
 * slower engine moves the median with IOPS (Little's law: latency is
 * depth over IOPS), so a 20% slower build shows as 25-30% on it. IOPS,
 * bandwidth (IOPS times the block size), the mean and the p99 are
 * informational: shown with their interval, never judged, so they neither
 * raise nor clear an alarm; a regression that only adds stalls shows
 * there, for a person to read, not in the gate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "compare_impl.h"
#include "mem.h"
#include "stats.h"

int xr_cmp_gated(enum kind k)
{
    return k == K_CLAT_P50;
}

static const char *why_informational(enum kind k)
{
    if (k == K_IOPS)
        return "IOPS take in every stall of a shared machine: the median latency is gated";
    if (k == K_BW)
        return "bandwidth is IOPS times the block size: the median latency is gated";
    if (k == K_CLAT_MEAN)
        return "the mean takes in every stall of a shared machine: the median is gated";
    return "the p99 of a short run on a shared machine is its stalls: the median is gated";
}

/* The value pairs of rounds both sides ran, into base[] and new_[]. */
static size_t paired_values(const struct row *r, double *base, double *new_)
{
    const struct workload *w = r->w;
    size_t n = 0;
    for (size_t i = 0; i < w->nruns[BASE]; i++) {
        const struct run *b = &w->runs[BASE][i];
        for (size_t j = 0; j < w->nruns[NEW]; j++) {
            const struct run *x = &w->runs[NEW][j];
            if (x->round != b->round)
                continue;
            double vb = xr_cmp_run_value(b, r->dir, r->kind);
            double vn = xr_cmp_run_value(x, r->dir, r->kind);
            if (vb > 0 && vn > 0) { /* a ratio needs both, and logs need > 0 */
                base[n] = vb;
                new_[n++] = vn;
            }
            break;
        }
    }
    return n;
}

/* The paired interval into r; 0, or -1 when there is none (too few pairs
 * for level a: then lo is 0 and hi infinite, which decides nothing). The
 * medians shown beside the ratio are over the same rounds: a round one
 * side lacks would move a side's median but not the ratio, and the two
 * columns would tell another change than the ratio does (12 BASE rounds
 * against 10 NEW ones once showed medians 1.6% apart next to a ratio of
 * 0.90). No pair leaves no median to show. */
static int paired_interval(const struct compare *c, struct row *r)
{
    const struct workload *w = r->w;
    double *base = xr_mem_alloc((w->nruns[BASE] + 1) * sizeof *base);
    double *new_ = xr_mem_alloc((w->nruns[BASE] + 1) * sizeof *new_);
    struct xr_ratio_est est;
    r->npairs = paired_values(r, base, new_);
    r->median[BASE] = xr_median(base, r->npairs);
    r->median[NEW] = xr_median(new_, r->npairs);
    int rc = r->npairs >= 2
                 ? xr_paired_median_ratio(new_, base, r->npairs, c->row_alpha, &est)
                 : -1;
    if (rc == 0) {
        r->ratio = est.ratio;
        r->ci_lo = est.lo;
        r->ci_hi = est.hi;
    }
    free(base);
    free(new_);
    return rc == 0 ? 0 : -1;
}

/* A row with an interval: where it lies against the threshold band. */
static void judge_interval(const struct opts *o, struct row *r)
{
    double t = o->threshold / 100, lo = 1 - t, hi = 1 + t;
    int hib = kinds[r->kind].higher_is_better;
    int worse = hib ? r->ci_hi < lo : r->ci_lo > hi;
    int better = hib ? r->ci_lo > hi : r->ci_hi < lo;
    const char *dir = (r->ratio < 1) == hib ? "worse" : "better";
    if (worse || better) {
        r->verdict = worse ? V_REGRESSION : V_IMPROVEMENT;
        snprintf(r->why, sizeof r->why, "%.1f%% %s than BASE, all of the interval beyond "
                 "%g%%; %zu paired rounds", fabs(r->ratio - 1) * 100, dir, o->threshold,
                 r->npairs);
    } else if (r->ci_lo >= lo && r->ci_hi <= hi) {
        r->verdict = V_SAME;
        snprintf(r->why, sizeof r->why, "interval within +-%g%%; %zu paired rounds",
                 o->threshold, r->npairs);
    } else {
        r->verdict = V_INCONCLUSIVE;
        snprintf(r->why, sizeof r->why, "the interval reaches across %g%%; %zu paired rounds",
                 o->threshold, r->npairs);
    }
}

void xr_cmp_decide_paired(const struct compare *c, struct row *r)
{
    const struct opts *o = &c->o;
    int has_interval = paired_interval(c, r) == 0;
    long need = o->min_runs > 2 ? o->min_runs : 2;
    r->verdict = V_INCONCLUSIVE;
    if (!xr_cmp_gated(r->kind)) {
        r->verdict = V_INFORMATIONAL;
        snprintf(r->why, sizeof r->why, "not gated: %s; %zu paired rounds",
                 why_informational(r->kind), r->npairs);
    } else if (r->kind >= K_CLAT_MEAN && r->median[BASE] < LAT_FLOOR_NS &&
               r->median[NEW] < LAT_FLOOR_NS) {
        r->verdict = V_INFORMATIONAL;
        snprintf(r->why, sizeof r->why, "not gated: under %.0f ns, fio timed only its own "
                 "bookkeeping; %zu paired rounds", LAT_FLOOR_NS, r->npairs);
    } else if ((long)r->npairs < need) {
        snprintf(r->why, sizeof r->why, "fewer than %ld paired rounds: %zu (runs BASE %zu, "
                 "NEW %zu)", need, r->npairs, r->n[BASE], r->n[NEW]);
    } else if (!has_interval) {
        snprintf(r->why, sizeof r->why, "no interval from %zu paired rounds", r->npairs);
    } else if (isinf(r->ci_hi)) {
        snprintf(r->why, sizeof r->why, "%zu paired rounds are too few for a bound at "
                 "one-sided level %.3g (the sign test needs 1/2^n <= it)", r->npairs,
                 c->row_alpha);
    } else {
        judge_interval(o, r);
    }
}
