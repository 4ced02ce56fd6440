/* score.c - the objective: meet every target given, then maximise IOPS (or
 * minimise p99 latency). One place computes it; search, history and the
 * final report print what it returns.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "xdtune.h"

int xt_goal_any(const struct xt_goal *g)
{
    return g->iops > 0 || g->lat_us > 0 || g->p99_us > 0 || g->cache_hit > 0;
}

/* Shortfall of value against a floor (higher is better) or a ceiling. */
static double short_of(double value, double floor_target)
{
    return floor_target > 0 && value < floor_target ? (floor_target - value) / floor_target : 0;
}

static double over(double value, double ceiling)
{
    return ceiling > 0 && value > ceiling ? (value - ceiling) / ceiling : 0;
}

double xt_gap(const struct xt_goal *g, const struct xt_figures *f)
{
    /* no cache in the run: the hit ratio is 0, the whole target short */
    double hit = f->cache_hit < 0 ? 0 : f->cache_hit;
    return short_of(f->iops, g->iops) + over(f->lat_us, g->lat_us) + over(f->p99_us, g->p99_us) +
           short_of(hit, g->cache_hit);
}

double xt_objective(const struct xt_goal *g, const struct xt_figures *f)
{
    return g->minimize_p99 ? -f->p99_us : f->iops;
}

double xt_score(const struct xt_goal *g, const struct xt_figures *f)
{
    double obj = g->minimize_p99 ? -log(fmax(f->p99_us, 1e-3)) : log(fmax(f->iops, 1e-3));
    return obj - 5.0 * fmin(xt_gap(g, f), 10.0);
}

int xt_compare(const struct xt_goal *g, const struct xt_figures *a, const struct xt_figures *b)
{
    double ga = xt_gap(g, a), gb = xt_gap(g, b);
    if ((ga == 0) != (gb == 0))
        return ga == 0 ? -1 : 1;
    if (ga != gb)
        return ga < gb ? -1 : 1;
    double oa = xt_objective(g, a), ob = xt_objective(g, b);
    return oa > ob ? -1 : oa < ob ? 1 : 0;
}

/* Each target's line of xt_gap_text; only_missed: those f misses, so that
 * a finalist beaten on the targets is named with what it misses alone. */
static char *targets_text(const struct xt_goal *g, const struct xt_figures *f, int only_missed)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    const char *sep = "";
    double hit = f->cache_hit < 0 ? 0 : f->cache_hit;
    if (!o)
        return NULL;
    if (g->iops > 0 && (!only_missed || short_of(f->iops, g->iops) > 0)) {
        fprintf(o, "%siops %.0f of target %.0f (%+.1f%%)", sep, f->iops, g->iops,
                100.0 * (f->iops - g->iops) / g->iops);
        sep = ", ";
    }
    if (g->lat_us > 0 && (!only_missed || over(f->lat_us, g->lat_us) > 0)) {
        fprintf(o, "%slatency %.1f us against target %.1f us (%+.1f%%)", sep, f->lat_us, g->lat_us,
                100.0 * (f->lat_us - g->lat_us) / g->lat_us);
        sep = ", ";
    }
    if (g->p99_us > 0 && (!only_missed || over(f->p99_us, g->p99_us) > 0)) {
        fprintf(o, "%sp99 %.1f us against target %.1f us (%+.1f%%)", sep, f->p99_us, g->p99_us,
                100.0 * (f->p99_us - g->p99_us) / g->p99_us);
        sep = ", ";
    }
    if (g->cache_hit > 0 && (!only_missed || short_of(hit, g->cache_hit) > 0)) {
        if (f->cache_hit < 0)
            fprintf(o, "%scache hit ratio: no cache in the run (target %.3f)", sep, g->cache_hit);
        else
            fprintf(o, "%scache hit ratio %.3f of target %.3f (%+.3f)", sep, f->cache_hit,
                    g->cache_hit, f->cache_hit - g->cache_hit);
    }
    fclose(o);
    return buf;
}

char *xt_gap_text(const struct xt_goal *g, const struct xt_figures *f)
{
    return targets_text(g, f, 0);
}

char *xt_missed_text(const struct xt_goal *g, const struct xt_figures *f)
{
    return targets_text(g, f, 1);
}
