/* chart_fio.c - the charts of one workload from fio's JSON: IOPS and
 * bandwidth bars per configuration, completion latency percentiles, and the
 * json+ histogram as a distribution and as a CDF.
 *
 * Colours follow the configuration (its row in the tables has the same
 * swatch) and dashes the direction: solid read, dashed write.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "plot.h"

static double throughput(const struct xr_dir *d, int bw)
{
    return bw ? d->bw_bytes : d->iops;
}

/* Axis units that keep tick labels short: IOPS in thousands, MiB/s... */
static double throughput_scale(const struct xr_group *g, const int *dirs, size_t nd, int bw,
                               const char **ylabel)
{
    double top = 0;

    for (size_t i = 0; i < g->ncfgs; i++)
        for (size_t s = 0; s < nd; s++)
            top = fmax(top, throughput(&g->cfgs[i].job->dir[dirs[s]], bw));
    if (bw) {
        *ylabel = top >= 1024 * 1024 ? "bandwidth (MiB/s)" : "bandwidth (KiB/s)";
        return top >= 1024 * 1024 ? 1024 * 1024 : 1024;
    }
    *ylabel = top >= 1e6 ? "IOPS (millions)" : top >= 1e4 ? "IOPS (thousands)" : "IOPS";
    return top >= 1e6 ? 1e6 : top >= 1e4 ? 1e3 : 1;
}

static char *throughput_text(const struct xr_dir *d, int bw)
{
    char txt[32];

    if (!d->total_ios)
        return xr_mem_strdup("");
    if (!bw) {
        xr_fmt_si(txt, sizeof txt, d->iops);
        return xr_mem_strdup(txt);
    }
    xr_fmt_bytes(txt, sizeof txt, d->bw_bytes);
    return xr_mem_printf("%s/s", txt);
}

static void chart_throughput(struct xr_plot *gp, int gi, int bw)
{
    const struct xr_group *g = &gp->r->groups[gi];
    struct xr_bars b = { 0 };
    int dirs[XR_NDIR];
    size_t nd;
    double scale;

    xr_plot_dirs(g, dirs, &nd);
    if (!nd)
        return;
    xr_bars_alloc(&b, g->ncfgs, nd);
    scale = throughput_scale(g, dirs, nd, bw, &b.ylabel);
    for (size_t i = 0; i < g->ncfgs; i++) {
        b.cat[i] = g->cfgs[i].label;
        for (size_t s = 0; s < nd; s++) {
            const struct xr_dir *d = &g->cfgs[i].job->dir[dirs[s]];

            b.val[i * nd + s] = d->total_ios ? throughput(d, bw) / scale : NAN;
            b.text[i * nd + s] = throughput_text(d, bw);
        }
    }
    for (size_t s = 0; s < nd; s++) {
        b.ser_name[s] = xr_ddir_name[dirs[s]];
        b.ser_color[s] = xr_dir_color[dirs[s]];
    }
    char *name = xr_mem_printf("%s-%s", g->slug, bw ? "bandwidth" : "iops");
    char *title = xr_plot_title(gp->r, gi, bw ? "bandwidth per configuration"
                                              : "IOPS per configuration");
    char *sub = xr_plot_group_sub(g, g->ncfgs, g->ncfgs, "");
    struct xr_chart_spec spec = {
        name, title, sub,
        bw ? "Mean bandwidth over each job's run time (fio's bw_bytes), per data direction. "
             "Higher is better."
           : "Mean I/Os per second over each job's run time (fio's iops), per data direction. "
             "Higher is better.",
        gi, XR_SEC_WORKLOAD,
    };
    xr_plot_bars(gp, &spec, &b);
    xr_bars_free(&b);
    free(name);
    free(title);
    free(sub);
}

/* The k-th configuration to draw when a chart can take only some: the
 * recommended one, its ties and their references first (verdict.c). */
static size_t cfg_in_order(const struct xr_report *r, int gi, size_t k)
{
    return r->verdicts ? r->verdicts[gi].order[k] : k;
}

/* Mean IOPS over a configuration's repetitions (geometric, as verdict.c). */
static double pair_value(const struct xr_report *r, int gi, long i)
{
    return i >= 0 && r->verdicts ? r->verdicts[gi].cfg[i].gmean_iops : NAN;
}

/* Per bench configuration, xdevice's bar beside its fio reference's, in two
 * colours, with the paired ratio in the category label. */
static void chart_pairs(struct xr_plot *gp, int gi)
{
    const struct xr_group *g = &gp->r->groups[gi];
    const struct xr_verdict *v = gp->r->verdicts ? &gp->r->verdicts[gi] : NULL;
    struct xr_bars b = { 0 };
    size_t n = 0;
    double top = 0, scale;
    char **cats;

    for (size_t i = 0; v && i < g->ncfgs; i++)
        n += v->cfg[i].ref >= 0;
    if (!n)
        return;
    xr_bars_alloc(&b, n, 2);
    cats = xr_mem_alloc((n + 1) * sizeof *cats);
    n = 0;
    for (size_t i = 0; i < g->ncfgs; i++) {
        const struct xr_cfg_verdict *c = &v->cfg[i];

        if (c->ref < 0)
            continue;
        cats[n] = c->vs_ref.ok ? xr_mem_printf("%s %.2f×", g->cfgs[i].bench_name, c->vs_ref.ratio)
                               : xr_mem_strdup(g->cfgs[i].bench_name);
        b.cat[n] = cats[n];
        b.val[n * 2] = pair_value(gp->r, gi, (long)i);
        b.val[n * 2 + 1] = pair_value(gp->r, gi, c->ref);
        top = fmax(top, fmax(b.val[n * 2], b.val[n * 2 + 1]));
        n++;
    }
    scale = top >= 1e6 ? 1e6 : top >= 1e4 ? 1e3 : 1;
    b.ylabel = scale == 1e6 ? "IOPS (millions)" : scale == 1e3 ? "IOPS (thousands)" : "IOPS";
    for (size_t k = 0; k < n * 2; k++) {
        char txt[32];

        xr_fmt_si(txt, sizeof txt, b.val[k]);
        b.text[k] = xr_mem_strdup(txt);
        b.val[k] /= scale;
    }
    b.ser_name[0] = "xdevice";
    b.ser_color[0] = XR_COLOR_XDEVICE;
    b.ser_name[1] = "fio reference (same file)";
    b.ser_color[1] = XR_COLOR_REFERENCE;
    char *name = xr_mem_printf("%s-pairs", g->slug);
    char *title = xr_plot_title(gp->r, gi, "xdevice vs its fio reference");
    char *sub = xr_mem_printf("%s · IOPS, geometric mean over the runs · label: paired ratio",
                              *g->versions ? g->versions : "fio");
    struct xr_chart_spec spec = {
        name, title, sub,
        "Each bench configuration's xdevice run (dark) beside fio's own engine on the same file "
        "(grey): IOPS, read + write, geometric mean over the repetitions. The factor after each "
        "name is the paired ratio; its interval is in the table above. Higher is better.",
        gi, XR_SEC_WORKLOAD,
    };
    xr_plot_bars(gp, &spec, &b);
    xr_bars_free(&b);
    for (size_t k = 0; k < n; k++)
        free(cats[k]);
    free(cats);
    free(name);
    free(title);
    free(sub);
}

/* Draw a line chart of the workload, named SLUG-suffix, then free it. */
static void workload_lines(struct xr_plot *gp, int gi, struct xr_linechart *L, size_t total,
                           const char *suffix, const char *what, const char *note)
{
    const struct xr_group *g = &gp->r->groups[gi];

    if (xr_lines_drawable(L)) {
        char *name = xr_mem_printf("%s-%s", g->slug, suffix);
        char *title = xr_plot_title(gp->r, gi, what);
        char *sub = xr_plot_group_sub(g, L->nc, total, "lines");
        struct xr_chart_spec spec = { name, title, sub, note, gi, XR_SEC_WORKLOAD };

        xr_plot_lines(gp, &spec, L);
        free(name);
        free(title);
        free(sub);
    }
    xr_lines_free(L);
}

static int npct_shown(const struct xr_group *g)
{
    for (size_t i = 0; i < g->ncfgs; i++)
        for (int d = 0; d < XR_NDIR; d++)
            if (!isnan(g->cfgs[i].job->dir[d].clat_pct_ns[XR_NPCT - 1]))
                return XR_NPCT;
    return XR_NPCT - 1;      /* fio's default list stops at 99.99 */
}

static void chart_percentiles(struct xr_plot *gp, int gi)
{
    const struct xr_group *g = &gp->r->groups[gi];
    int np = npct_shown(g);
    char xtics[256] = "set xtics (";
    struct xr_linechart L = { .xlabel = "percentile", .ylabel = "latency",
                              .logy = 1, .lat_axes = XR_LAT_Y, .xmin = NAN, .ymin = NAN,
                              .ymax = NAN, .with = "linespoints pt 7 ps 0.8", .xtics = xtics };
    size_t total = 0;

    for (int p = 0; p < np; p++)
        snprintf(xtics + strlen(xtics), sizeof xtics - strlen(xtics), "'%s' %d%s",
                 xr_pct_name[p], p, p + 1 < np ? ", " : ")\n");
    snprintf(xtics + strlen(xtics), sizeof xtics - strlen(xtics), "set xrange [-0.3:%f]",
             np - 0.7);
    for (size_t k = 0; k < g->ncfgs; k++) {
        size_t i = cfg_in_order(gp->r, gi, k);

        for (int d = 0; d < XR_NDIR; d++) {
            const struct xr_dir *dir = &g->cfgs[i].job->dir[d];
            struct xr_curve *cv;

            if (!dir->total_ios || isnan(dir->clat_pct_ns[0]) || total++ >= XR_MAX_CURVES)
                continue;
            cv = xr_curve_add(&L, xr_plot_curve_label(g, i, d), xr_chart_color(i), d + 1, np);
            for (int p = 0; p < np; p++)
                xr_curve_point(cv, &L, p, dir->clat_pct_ns[p] / 1000);
        }
    }
    workload_lines(gp, gi, &L, total, "latency-percentiles", "latency percentiles",
                   "fio's latency percentiles (total latency where the job set lat_percentiles=1, else completion latency) on a log scale. Lower is better; "
                   "the right end is the tail. Solid: read, dashed: write.");
}

#define BINS_PER_DECADE 10
#define MAX_REBIN (14 * BINS_PER_DECADE)   /* 1 ns to 10^14 ns */

/* fio's 1856 log-linear buckets into BINS_PER_DECADE per decade, so that
 * runs with few I/Os still show a shape: x in µs (bin centre), y in % of
 * the direction's I/Os. */
static void histogram_curve(struct xr_curve *cv, const struct xr_linechart *L,
                            const struct xr_dir *d)
{
    double count[MAX_REBIN] = { 0 }, total = 0;
    int lo = MAX_REBIN, hi = -1;

    for (size_t i = 0; i < d->nbins; i++) {
        double ns = d->bins[i].ns > 1 ? (double)d->bins[i].ns : 1;
        int k = (int)floor(BINS_PER_DECADE * log10(ns));

        k = k < 0 ? 0 : k >= MAX_REBIN ? MAX_REBIN - 1 : k;
        count[k] += (double)d->bins[i].count;
        total += (double)d->bins[i].count;
        if (d->bins[i].count) {
            lo = k < lo ? k : lo;
            hi = k > hi ? k : hi;
        }
    }
    if (total <= 0)
        return;
    /* one empty bin either side so each curve starts and ends at zero */
    for (int k = lo > 0 ? lo - 1 : 0; k <= hi + 1 && k < MAX_REBIN; k++)
        xr_curve_point(cv, L, pow(10, (k + 0.5) / BINS_PER_DECADE) / 1000,
                       count[k] / total * 100);
}

static void cdf_curve(struct xr_curve *cv, const struct xr_linechart *L, const struct xr_dir *d)
{
    double total = 0, cum = 0;

    for (size_t i = 0; i < d->nbins; i++)
        total += (double)d->bins[i].count;
    if (total <= 0)
        return;
    xr_curve_point(cv, L, fmax((double)d->bins[0].ns, 1) / 1000, 0);
    for (size_t i = 0; i < d->nbins; i++) {
        cum += (double)d->bins[i].count;
        xr_curve_point(cv, L, fmax((double)d->bins[i].ns, 1) / 1000, cum / total * 100);
    }
}

static void chart_bins(struct xr_plot *gp, int gi, int cdf)
{
    const struct xr_group *g = &gp->r->groups[gi];
    struct xr_linechart L = { .xlabel = "latency (log scale)",
                              .ylabel = cdf ? "I/Os completed within (%)" : "share of I/Os (%)",
                              .logx = 1, .lat_axes = XR_LAT_X, .xmin = NAN, .ymin = 0,
                              .ymax = cdf ? 100 : NAN, .with = cdf ? "steps" : "lines" };
    size_t total = 0;

    for (size_t k = 0; k < g->ncfgs; k++) {
        size_t i = cfg_in_order(gp->r, gi, k);

        for (int d = 0; d < XR_NDIR; d++) {
            const struct xr_dir *dir = &g->cfgs[i].job->dir[d];
            struct xr_curve *cv;

            if (!dir->total_ios || !dir->nbins || total++ >= XR_MAX_CURVES)
                continue;
            cv = xr_curve_add(&L, xr_plot_curve_label(g, i, d), xr_chart_color(i), d + 1,
                              dir->nbins + MAX_REBIN + 2);
            if (cdf)
                cdf_curve(cv, &L, dir);
            else
                histogram_curve(cv, &L, dir);
        }
    }
    if (cdf)
        workload_lines(gp, gi, &L, total, "clat-cdf", "latency CDF",
                       "Share of I/Os that completed within a latency, from fio's json+ "
                       "histogram. Further left is better. Solid: read, dashed: write.");
    else
        workload_lines(gp, gi, &L, total, "clat-histogram", "latency histogram",
                       "Distribution of latency from fio's json+ histogram, "
                       "10 bins per decade. Solid: read, dashed: write.");
}

void xr_charts_workload(struct xr_plot *p, int group)
{
    chart_pairs(p, group);
    chart_throughput(p, group, 0);
    chart_throughput(p, group, 1);
    chart_percentiles(p, group);
    chart_bins(p, group, 0);
    chart_bins(p, group, 1);
}
