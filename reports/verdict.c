/* verdict.c - the answer the report opens with: which configuration to run.
 *
 * Per workload, from the repetitions of every configuration (configs.c
 * folds NAME.rK files into one configuration):
 *
 *   - the best: the candidate with the highest geometric mean IOPS (read +
 *     write + trim). Of a bench (NAME.xdevice / NAME.reference runs) only
 *     the xdevice configurations are candidates: the references are what
 *     they are measured against, not a choice.
 *   - tied with it: candidates whose ratio to the best has a 95% interval
 *     (Welch's t on log IOPS, stats.c) that holds 1.0. With one run each
 *     no interval exists, and the report says so instead of guessing.
 *   - its ratio to its fio reference: paired by repetition (the bench runs
 *     repetition K of both sides back to back), t interval on the log
 *     ratios; "within noise" when it holds 1.0.
 *   - why: the configuration options whose values differ between the best
 *     and the runner-up (the next candidate by IOPS).
 *   - no pick at all when another candidate is level with the best: its
 *     IOPS print alike (3.00k from 3000 and 2999.33) and no interval tells
 *     the two apart (one run each, or an interval that holds 1.0). Naming
 *     one of two clones of a job "run this" by 0.02% would crown a winner
 *     the report cannot tell apart any more than its reader can.
 *
 * order[] lists the workload's configurations as the charts should take
 * them when they can draw only some: the best, its ties, then the rest by
 * IOPS, each xdevice configuration followed by its reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "options.h"
#include "report.h"
#include "stats.h"

#define LEVEL 0.95
#define WHY_MAX_KEYS 3

static double *rep_iops(const struct xr_cfg *c)
{
    double *v = xr_mem_alloc((c->nreps + 1) * sizeof *v);

    for (size_t k = 0; k < c->nreps; k++)
        v[k] = xr_rep_iops(c->reps[k].job);
    return v;
}

static double gmean(const double *v, size_t n)
{
    double s = 0;

    for (size_t i = 0; i < n; i++) {
        if (!(v[i] > 0))
            return 0;
        s += log(v[i]);
    }
    return n ? exp(s / n) : 0;
}

static void set_estimate(struct xr_estimate *e, int rc, const struct xr_ratio_est *est)
{
    e->ok = rc == 0;
    if (e->ok) {
        e->ratio = est->ratio;
        e->lo = est->lo;
        e->hi = est->hi;
    }
}

/* The reference run of the same bench name, or -1. */
static long reference_of(const struct xr_group *g, size_t i)
{
    const struct xr_cfg *c = &g->cfgs[i];

    if (c->side != XR_SIDE_XDEVICE)
        return -1;
    for (size_t k = 0; k < g->ncfgs; k++)
        if (g->cfgs[k].side == XR_SIDE_REFERENCE && strcmp(g->cfgs[k].bench_name, c->bench_name) == 0)
            return (long)k;
    return -1;
}

/* Repetition K of x against repetition K of its reference, by the file's
 * repetition number: both sides of one K ran back to back. */
static void paired_vs_ref(const struct xr_group *g, size_t i, struct xr_cfg_verdict *v)
{
    const struct xr_cfg *x = &g->cfgs[i], *y = &g->cfgs[v->ref];
    double *a = xr_mem_alloc((x->nreps + 1) * sizeof *a), *b = xr_mem_alloc((x->nreps + 1) * sizeof *b);
    struct xr_ratio_est est;
    size_t n = 0;

    for (size_t k = 0; k < x->nreps; k++)      /* a repetition without its partner is left out */
        for (size_t j = 0; j < y->nreps; j++)
            if (y->reps[j].number == x->reps[k].number) {
                a[n] = xr_rep_iops(x->reps[k].job);
                b[n++] = xr_rep_iops(y->reps[j].job);
                break;
            }
    if (n >= 2) {
        set_estimate(&v->vs_ref, xr_paired_ratio_ci(a, b, n, LEVEL, &est), &est);
    } else if (n == 1 && b[0] > 0) {
        v->vs_ref = (struct xr_estimate){ a[0] / b[0], 0, INFINITY, 1 };
    }
    free(a);
    free(b);
}

static int no_sides(const struct xr_group *g)
{
    for (size_t i = 0; i < g->ncfgs; i++)
        if (g->cfgs[i].side == XR_SIDE_XDEVICE)
            return 0;
    return 1;
}

static const char *opt_of(const struct xr_job *job, const char *key)
{
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(xr_opt_canon(job->opts[i].key), key) == 0)
            return job->opts[i].val;
    return NULL;
}

/* "xd_type=tmpfs (not regular), xd_async=io_uring (not sync), iodepth=8
 * (unset in the runner-up)" */
static char *why_text(const struct xr_job *best, const struct xr_job *other)
{
    char *out = xr_mem_strdup("");
    size_t n = 0;

    for (size_t i = 0; i < best->nopts && n < WHY_MAX_KEYS; i++) {
        const char *key = xr_opt_canon(best->opts[i].key);
        const char *a = best->opts[i].val, *b = opt_of(other, key);
        char *va, *vb, *next;

        if (xr_opt_class(key) != XR_OPT_CONFIG || (b && strcmp(a, b) == 0))
            continue;
        va = xr_opt_value(key, a);
        vb = b ? xr_opt_value(key, b) : NULL;
        next = vb ? xr_mem_printf("%s%s%s=%s (not %s)", out, n ? ", " : "", key, va, vb)
                  : xr_mem_printf("%s%s%s=%s (unset in the runner-up)", out, n ? ", " : "", key, va);
        free(va);
        free(vb);
        free(out);
        out = next;
        n++;
    }
    if (!n) {
        free(out);
        out = xr_mem_strdup("the same options (they differ only in their files)");
    }
    return out;
}

/* Best, its ties, then the rest by IOPS; each xdevice run before its reference. */
static void chart_order(const struct xr_group *g, struct xr_verdict *v)
{
    size_t n = 0;
    char *taken = xr_mem_alloc(g->ncfgs + 1);

    memset(taken, 0, g->ncfgs + 1);
    for (int pass = 0; pass < 2; pass++) {
        for (;;) {
            long pick = -1;

            for (size_t i = 0; i < g->ncfgs; i++) {
                const struct xr_cfg_verdict *c = &v->cfg[i];

                if (taken[i] || !c->candidate || (pass == 0 && !c->tied && (long)i != v->best))
                    continue;
                if (pick < 0 || c->gmean_iops > v->cfg[pick].gmean_iops)
                    pick = (long)i;
            }
            if (pick < 0)
                break;
            taken[pick] = 1;
            v->order[n++] = (size_t)pick;
            if (v->cfg[pick].ref >= 0 && !taken[v->cfg[pick].ref]) {
                taken[v->cfg[pick].ref] = 1;
                v->order[n++] = (size_t)v->cfg[pick].ref;
            }
        }
    }
    for (size_t i = 0; i < g->ncfgs; i++)     /* references of nothing, if any */
        if (!taken[i])
            v->order[n++] = i;
    free(taken);
}

static void ties(const struct xr_group *g, struct xr_verdict *v)
{
    const struct xr_cfg *b = &g->cfgs[v->best];
    double *bv = rep_iops(b);

    for (size_t i = 0; i < g->ncfgs; i++) {
        struct xr_cfg_verdict *c = &v->cfg[i];
        struct xr_ratio_est est;

        if (!c->candidate || (long)i == v->best)
            continue;
        double *cv = rep_iops(&g->cfgs[i]);
        set_estimate(&c->vs_best,
                     xr_welch_ratio_ci(bv, b->nreps, cv, g->cfgs[i].nreps, LEVEL, &est), &est);
        c->tied = c->vs_best.ok && xr_ratio_within_noise(&est);
        free(cv);
    }
    free(bv);
}

/* Candidates level with the best (see the top of the file). */
static void level_with_best(struct xr_verdict *v, size_t ncfgs)
{
    char best[32];

    xr_fmt_si(best, sizeof best, v->cfg[v->best].gmean_iops);
    for (size_t i = 0; i < ncfgs; i++) {
        struct xr_cfg_verdict *c = &v->cfg[i];
        char shown[32];

        if (!c->candidate || (long)i == v->best)
            continue;
        xr_fmt_si(shown, sizeof shown, c->gmean_iops);
        c->level = strcmp(shown, best) == 0 &&
                   (!c->vs_best.ok || isinf(c->vs_best.hi) || c->tied);
        v->nlevel += c->level;
    }
}

static void judge(const struct xr_group *g, struct xr_verdict *v)
{
    int all = no_sides(g);

    v->best = v->runner_up = -1;
    v->cfg = xr_mem_alloc((g->ncfgs + 1) * sizeof *v->cfg);
    v->order = xr_mem_alloc((g->ncfgs + 1) * sizeof *v->order);
    for (size_t i = 0; i < g->ncfgs; i++) {
        struct xr_cfg_verdict *c = &v->cfg[i];
        double *iops = rep_iops(&g->cfgs[i]);

        memset(c, 0, sizeof *c);
        c->gmean_iops = gmean(iops, g->cfgs[i].nreps);
        c->candidate = (all || g->cfgs[i].side == XR_SIDE_XDEVICE) && c->gmean_iops > 0;
        c->ref = reference_of(g, i);
        if (c->ref >= 0)
            paired_vs_ref(g, i, c);
        free(iops);
        if (!c->candidate)
            continue;
        if (!v->min_reps || g->cfgs[i].nreps < v->min_reps)
            v->min_reps = g->cfgs[i].nreps;
        if (v->best < 0 || c->gmean_iops > v->cfg[v->best].gmean_iops) {
            v->runner_up = v->best;
            v->best = (long)i;
        } else if (v->runner_up < 0 || c->gmean_iops > v->cfg[v->runner_up].gmean_iops) {
            v->runner_up = (long)i;
        }
    }
    if (v->best >= 0) {
        ties(g, v);
        level_with_best(v, g->ncfgs);
    }
    if (v->best >= 0 && v->runner_up >= 0)
        v->why = why_text(g->cfgs[v->best].job, g->cfgs[v->runner_up].job);
    chart_order(g, v);
}

void xr_verdict_build(struct xr_report *r)
{
    r->verdicts = xr_mem_alloc((r->ngroups + 1) * sizeof *r->verdicts);
    for (size_t g = 0; g < r->ngroups; g++) {
        memset(&r->verdicts[g], 0, sizeof r->verdicts[g]);
        judge(&r->groups[g], &r->verdicts[g]);
    }
}

void xr_verdict_free(struct xr_report *r)
{
    for (size_t g = 0; g < r->ngroups && r->verdicts; g++) {
        free(r->verdicts[g].cfg);
        free(r->verdicts[g].order);
        free(r->verdicts[g].why);
    }
    free(r->verdicts);
}

char *xr_estimate_text(const struct xr_estimate *e)
{
    if (!e->ok)
        return xr_mem_strdup("");
    if (isinf(e->hi))
        return xr_mem_printf("%.2f× (1 run: no interval)", e->ratio);
    return xr_mem_printf("%.2f× (%.2f–%.2f)", e->ratio, e->lo, e->hi);
}

const char *xr_estimate_word(const struct xr_estimate *e)
{
    if (!e->ok || isinf(e->hi))
        return "";
    if (e->lo <= 1.0 && 1.0 <= e->hi)
        return "within noise";
    return e->lo > 1.0 ? "faster" : "slower";
}
