/* chart_time.c - IOPS, latency and bandwidth over time, per workload, from
 * the lines timeline.c collected: fio's logs and --status-interval streams.
 *
 * Latency shows what the application waited: the lat log (submission plus
 * completion); a clat log only where the job wrote no lat log; p50 and p99
 * from a hist log. slat alone is left out (the table and CSV keep it).
 * Lines from a status-interval stream have points, as they are few.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "plot.h"

enum tkind { T_IOPS, T_LAT, T_BW };

/* A clat log is drawn only when the same job has no lat log (lat = slat +
 * clat is what the application waited); their lines share a label. */
static int has_lat_twin(const struct xr_report *r, const struct xr_line *l)
{
    for (size_t i = 0; i < r->nlines; i++)
        if (!r->lines[i].from_status && strcmp(r->lines[i].kind, "lat") == 0
            && strcmp(r->lines[i].label, l->label) == 0)
            return 1;
    return 0;
}

static int line_in(const struct xr_report *r, const struct xr_line *l, int gi, enum tkind k)
{
    if (l->group != gi || !l->n)
        return 0;
    switch (k) {
    case T_IOPS: return strcmp(l->kind, "iops") == 0;
    case T_BW: return strcmp(l->kind, "bw") == 0;
    default: break;
    }
    if (strcmp(l->kind, "lat") == 0 || (strcmp(l->kind, "hist") == 0 && l->p99))
        return 1;
    return strcmp(l->kind, "clat") == 0 && (l->from_status || !has_lat_twin(r, l));
}

/* value in the chart's unit: IOPS as they are, KiB/s to MiB/s, ns to µs */
static double time_value(enum tkind k, double v)
{
    return k == T_BW ? v / 1024 : k == T_LAT ? v / 1000 : v;
}

/* Solid for read, dashed for write; the other jobs of a group_reporting
 * job (timeline.c) share their configuration's colour, so each further
 * job steps two dash types on (read dotted, write dash-dot, ...). */
static int line_dash(const struct xr_line *l)
{
    return (int)l->ddir + 1 + 2 * l->clone;
}

static void time_curve(struct xr_linechart *L, const struct xr_line *l, const char *suffix,
                       const double *y, int dash, size_t idx, double scale, enum tkind k)
{
    const char *color = xr_chart_color(l->cfg >= 0 ? (size_t)l->cfg : idx);
    struct xr_curve *cv = xr_curve_add(L, xr_mem_printf("%s%s", l->label, suffix), color, dash,
                                       l->n);

    cv->points = l->from_status;
    for (size_t i = 0; i < l->n; i++)
        xr_curve_point(cv, L, l->t_ms[i] / 1000, time_value(k, y[i]) / scale);
}

static void time_range(const struct xr_report *r, int gi, enum tkind k, double *lo, double *hi,
                       size_t *total)
{
    *lo = INFINITY;
    *hi = 0;
    *total = 0;
    for (size_t i = 0; i < r->nlines; i++) {
        const struct xr_line *l = &r->lines[i];

        if (!line_in(r, l, gi, k))
            continue;
        *total += strcmp(l->kind, "hist") == 0 ? 2 : 1;
        for (size_t j = 0; j < l->n; j++) {
            double v = time_value(k, l->value[j]);
            double v2 = l->p99 ? time_value(k, l->p99[j]) : v;

            *hi = fmax(*hi, fmax(v, v2));
            if (v > 0)
                *lo = fmin(*lo, v);
        }
    }
}

static const char *time_what[] = { "IOPS over time", "latency over time", "bandwidth over time" };
static const char *time_slug[] = { "iops-over-time", "latency-over-time", "bandwidth-over-time" };
static const char *time_note[] = {
    "I/Os per second per fio log interval (write_iops_log with log_avg_msec); lines with "
    "dots, marked (interval), are per --status-interval report. A group_reporting job "
    "writes a log per job: one line each, \"job K\", where the table sums them.",
    "Latency per fio log interval: the lat log (submission + completion), the clat log where "
    "no lat log was written, and p50/p99 from the hist log; lines with dots are the mean "
    "completion latency per --status-interval report. Solid: read, dashed: write; a "
    "group_reporting job's jobs one line each (\"job K\", dotted and dash-dot after the first).",
    "Bandwidth per fio log interval (write_bw_log); lines with dots, marked (interval), are "
    "per --status-interval report. A group_reporting job writes a log per job: one line "
    "each, \"job K\", where the table sums them.",
};

static char *time_sub(const struct xr_report *r, int gi, size_t shown, size_t total)
{
    if (gi >= 0)
        return xr_plot_group_sub(&r->groups[gi], shown, total, "lines");
    if (shown < total)
        return xr_mem_printf("fio logs no job in the inputs names · first %zu of %zu lines shown",
                             shown, total);
    return xr_mem_strdup("fio logs that no job in the inputs names (write_*_log)");
}

/* The lines in the order a chart that can draw only some takes them: by
 * their configuration's place in the recommendation (verdict.c: the best,
 * its ties and their references first), lines of no configuration last. */
static size_t *lines_in_order(const struct xr_report *r, int gi)
{
    size_t *order = xr_mem_alloc((r->nlines + 1) * sizeof *order), n = 0;
    size_t ncfgs = gi >= 0 && r->verdicts ? r->groups[gi].ncfgs : 0;

    for (size_t k = 0; k < ncfgs; k++)
        for (size_t i = 0; i < r->nlines; i++)
            if (r->lines[i].group == gi && r->lines[i].cfg == (long)r->verdicts[gi].order[k])
                order[n++] = i;
    for (size_t i = 0; i < r->nlines; i++)      /* everything the loop above did not take */
        if (!(r->lines[i].group == gi && r->lines[i].cfg >= 0 && r->lines[i].cfg < (long)ncfgs))
            order[n++] = i;
    return order;
}

static void chart_over_time(struct xr_plot *gp, int gi, enum tkind k)
{
    const struct xr_report *r = gp->r;
    double lo, hi, scale = 1;
    size_t total;
    struct xr_linechart L = { .xlabel = "time (s)", .xmin = 0, .ymin = NAN, .ymax = NAN,
                              .with = "lines" };

    time_range(r, gi, k, &lo, &hi, &total);
    if (!total || hi <= 0)
        return;
    if (k == T_IOPS)
        scale = hi >= 1e6 ? 1e6 : hi >= 1e4 ? 1e3 : 1;
    L.ylabel = k == T_BW ? "bandwidth (MiB/s)" : k == T_LAT ? "latency"
               : scale == 1e6 ? "IOPS (millions)" : scale == 1e3 ? "IOPS (thousands)" : "IOPS";
    L.logy = k == T_LAT && hi / lo > 30;
    L.ymin = L.logy ? NAN : 0;
    L.lat_axes = L.logy ? XR_LAT_Y : 0;
    if (k == T_LAT && !L.logy)
        L.ylabel = "latency (µs)";
    size_t *order = lines_in_order(r, gi);

    for (size_t o = 0; o < r->nlines && L.nc < XR_MAX_CURVES; o++) {
        size_t i = order[o];
        const struct xr_line *l = &r->lines[i];
        int hist = strcmp(l->kind, "hist") == 0;

        if (!line_in(r, l, gi, k))
            continue;
        time_curve(&L, l, hist ? " p50 (hist)" : "", l->value, line_dash(l), i, scale, k);
        if (hist && L.nc < XR_MAX_CURVES)
            time_curve(&L, l, " p99 (hist)", l->p99, 4, i, scale, k);
    }
    free(order);
    if (xr_lines_drawable(&L)) {
        char *name = gi >= 0 ? xr_mem_printf("%s-%s", r->groups[gi].slug, time_slug[k])
                             : xr_mem_printf("logs-%s", time_slug[k]);
        char *title = xr_plot_title(r, gi, time_what[k]);
        char *sub = time_sub(r, gi, L.nc, total);
        struct xr_chart_spec spec = { name, title, sub, time_note[k], gi, XR_SEC_TIME };

        xr_plot_lines(gp, &spec, &L);
        free(name);
        free(title);
        free(sub);
    }
    xr_lines_free(&L);
}

void xr_charts_time(struct xr_plot *p, int group)
{
    chart_over_time(p, group, T_IOPS);
    chart_over_time(p, group, T_LAT);
    chart_over_time(p, group, T_BW);
}

