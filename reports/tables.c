/* tables.c - the report's tables as text, shared by summary.md and
 * report.html so both show the same figures the same way.
 *
 * Per workload: one row per configuration and data direction with I/O: its
 * IOPS, bandwidth and completion latency p50, p99 and p99.9; the best
 * figure of each column among the rows of one direction is marked when
 * there is more than one configuration, on every row that prints it alike
 * and on none when every row does. Rows, not columns, per direction
 * keep a mixed read/write workload's table narrow enough to read.
 * xdevice: one row per stats document, with the columns it has figures for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "report.h"

struct builder {
    struct xr_table *t;
    double *num;             /* the figure behind each cell, NAN for none */
    signed char *better;     /* per column: +1 higher is better, -1 lower, 0 neither */
    int *rank_group;         /* per row: rows compete only within their group */
};

static void add_col(struct builder *b, char *head, int better, int numeric)
{
    size_t n = b->t->ncols;

    b->t->head = xr_mem_realloc(b->t->head, (n + 1) * sizeof *b->t->head);
    b->t->numeric = xr_mem_realloc(b->t->numeric, n + 1);
    b->better = xr_mem_realloc(b->better, n + 1);
    b->t->head[n] = head;
    b->t->numeric[n] = (unsigned char)numeric;
    b->better[n] = (signed char)better;
    b->t->ncols = n + 1;
}

static void alloc_cells(struct builder *b, size_t nrows)
{
    size_t n = nrows * b->t->ncols + 1;

    b->t->nrows = nrows;
    b->t->cell = xr_mem_alloc(n * sizeof *b->t->cell);
    b->t->best = xr_mem_alloc(n);
    b->t->row_cfg = xr_mem_alloc((nrows + 1) * sizeof *b->t->row_cfg);
    b->rank_group = xr_mem_alloc((nrows + 1) * sizeof *b->rank_group);
    for (size_t r = 0; r < nrows; r++)
        b->t->row_cfg[r] = -1;
    b->num = xr_mem_alloc(n * sizeof *b->num);
    for (size_t i = 0; i < n; i++)
        b->num[i] = NAN;
}

static void set_cell(struct builder *b, size_t row, size_t col, char *text, double num)
{
    size_t i = row * b->t->ncols + col;

    b->t->cell[i] = text;
    b->num[i] = num;
}

/* The text of the best figure of column c among the rows of rank group
 * grp, or NULL; *nrows: the rows with a figure, *nshown: those of them
 * that print it alike. */
static const char *best_of(const struct builder *b, size_t c, int grp, size_t *nrows,
                           size_t *nshown)
{
    const struct xr_table *t = b->t;
    double best = NAN;
    const char *text = NULL;

    *nrows = *nshown = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        double v = b->num[r * t->ncols + c];

        if (b->rank_group[r] != grp || isnan(v))
            continue;
        (*nrows)++;
        if (isnan(best) || (b->better[c] > 0 ? v > best : v < best)) {
            best = v;
            text = t->cell[r * t->ncols + c];
        }
    }
    for (size_t r = 0; text && r < t->nrows; r++)
        *nshown += b->rank_group[r] == grp && !isnan(b->num[r * t->ncols + c]) &&
                   strcmp(t->cell[r * t->ncols + c], text) == 0;
    return text;
}

/* The best figure is marked on every row that prints it: 3000 and 2999.33
 * IOPS both read 3.00k, and bold on one of them would crown a winner the
 * reader cannot see (nor, with one run each, the report tell). A figure
 * every row prints, like a lone one, is not "the best" of anything. */
static void mark_best(struct builder *b)
{
    struct xr_table *t = b->t;

    for (size_t c = 0; c < t->ncols; c++) {
        if (!b->better[c])
            continue;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t i = r * t->ncols + c, n, shown;
            const char *best = best_of(b, c, b->rank_group[r], &n, &shown);

            t->best[i] = best && n > 1 && shown < n && !isnan(b->num[i]) &&
                         strcmp(t->cell[i], best) == 0;
        }
    }
}

static struct xr_table *finish(struct builder *b)
{
    for (size_t i = 0; i < b->t->nrows * b->t->ncols; i++)   /* mark_best reads them */
        if (!b->t->cell[i])
            b->t->cell[i] = xr_mem_strdup("");
    mark_best(b);
    free(b->num);
    free(b->better);
    free(b->rank_group);
    return b->t;
}

static const int shown_pct[] = { 0, 2, 3 };    /* p50, p99, p99.9 */

static char *fmt_with(void (*fmt)(char *, size_t, double), double v, const char *suffix)
{
    char buf[48];

    if (isnan(v))
        return xr_mem_strdup("");
    fmt(buf, sizeof buf, v);
    return xr_mem_printf("%s%s", buf, suffix);
}

/* "1.23× (1.10–1.37) faster", or "" */
static char *ratio_cell(const struct xr_estimate *e)
{
    char *text = xr_estimate_text(e), *out;

    if (!*text || !*xr_estimate_word(e))
        return text;
    out = xr_mem_printf("%s %s", text, xr_estimate_word(e));
    free(text);
    return out;
}

struct xr_table *xr_table_workload(const struct xr_report *r, size_t gi)
{
    const struct xr_group *g = &r->groups[gi];
    struct builder b = { .t = xr_mem_alloc(sizeof *b.t) };
    size_t row = 0, nrows = 0;

    add_col(&b, xr_mem_strdup("configuration"), 0, 0);
    add_col(&b, xr_mem_strdup("direction"), 0, 0);
    add_col(&b, xr_mem_strdup("IOPS"), 1, 1);
    add_col(&b, xr_mem_strdup("bandwidth"), 1, 1);
    /* say which latency the columns hold: total (lat) or completion (clat) */
    int total = 0, completion = 0;
    for (size_t i = 0; i < g->ncfgs; i++)
        for (int d = 0; d < XR_NDIR; d++)
            if (xr_cfg_has_dir(&g->cfgs[i], d))
                *(g->cfgs[i].job->dir[d].total_lat ? &total : &completion) = 1;
    const char *kind = total ? (completion ? "lat/clat" : "lat") : "clat";
    for (size_t p = 0; p < sizeof shown_pct / sizeof *shown_pct; p++)
        add_col(&b, xr_mem_printf("%s %s", kind, xr_pct_name[shown_pct[p]]), -1, 1);
    /* a bench's xdevice runs against their fio reference (verdict.c) */
    int refs = 0;
    for (size_t i = 0; i < g->ncfgs && r->verdicts; i++)
        refs |= r->verdicts[gi].cfg[i].ref >= 0;
    if (refs)
        add_col(&b, xr_mem_strdup("IOPS vs its fio ref (95% interval)"), 0, 1);
    for (size_t i = 0; i < g->ncfgs; i++)
        for (int d = 0; d < XR_NDIR; d++)
            nrows += xr_cfg_has_dir(&g->cfgs[i], d);
    alloc_cells(&b, nrows);
    for (size_t i = 0; i < g->ncfgs; i++) {
        int first = 1;

        for (int d = 0; d < XR_NDIR; d++) {
            const struct xr_dir *dir = &g->cfgs[i].job->dir[d];
            size_t col = 0;

            if (!xr_cfg_has_dir(&g->cfgs[i], d))
                continue;
            b.t->row_cfg[row] = (long)i;
            b.rank_group[row] = d;
            set_cell(&b, row, col++, xr_mem_strdup(first ? g->cfgs[i].label : ""), NAN);
            set_cell(&b, row, col++, xr_mem_strdup(xr_ddir_name[d]), NAN);
            set_cell(&b, row, col++, fmt_with(xr_fmt_si, dir->iops, ""), dir->iops);
            set_cell(&b, row, col++, fmt_with(xr_fmt_bytes, dir->bw_bytes, "/s"), dir->bw_bytes);
            for (size_t p = 0; p < sizeof shown_pct / sizeof *shown_pct; p++) {
                double v = dir->clat_pct_ns[shown_pct[p]];

                set_cell(&b, row, col++, fmt_with(xr_fmt_ns, v, ""), v);
            }
            if (refs && first)
                set_cell(&b, row, col++, ratio_cell(&r->verdicts[gi].cfg[i].vs_ref), NAN);
            first = 0;
            row++;
        }
    }
    return finish(&b);
}

enum { XC_HIT, XC_COMP, XC_LOGICAL, XC_STORED, XC_ALLOC, XC_HOT, XC_COLD, XC_N };

static double xd_figure(const struct xr_xdstats *st, int c)
{
    switch (c) {
    case XC_HIT: return st->cache_hit_ratio;
    case XC_COMP: return st->compression_ratio;
    case XC_LOGICAL: return st->logical_bytes ? (double)st->logical_bytes : NAN;
    case XC_STORED: return st->stored_bytes ? (double)st->stored_bytes : NAN;
    case XC_ALLOC: return st->allocated_bytes ? (double)st->allocated_bytes : NAN;
    case XC_HOT: return st->tier_hot_reads ? (double)st->tier_hot_reads : NAN;
    default: return st->tier_cold_reads ? (double)st->tier_cold_reads : NAN;
    }
}

static char *xd_cell(int c, double v)
{
    if (isnan(v))
        return NULL;
    if (c == XC_HIT)
        return xr_mem_printf("%.1f%%", v * 100);
    if (c == XC_COMP)
        return xr_mem_printf("%.2f:1", v);
    if (c == XC_HOT || c == XC_COLD)
        return fmt_with(xr_fmt_si, v, "");
    return fmt_with(xr_fmt_bytes, v, "");
}

struct xr_table *xr_table_xdevice(const struct xr_report *r)
{
    static const char *const head[XC_N] = { "cache hit ratio", "compression ratio",
                                            "logical", "stored", "allocated",
                                            "hot tier reads", "cold tier reads" };
    static const int better[XC_N] = { 1, 1, 0, 0, 0, 0, 0 };
    struct builder b;
    int cols[XC_N], nc = 0;

    if (!r->nstats)
        return NULL;
    b = (struct builder){ .t = xr_mem_alloc(sizeof *b.t) };
    add_col(&b, xr_mem_strdup("run"), 0, 0);
    add_col(&b, xr_mem_strdup("type"), 0, 0);
    add_col(&b, xr_mem_strdup("jobs"), 0, 0);
    for (int c = 0; c < XC_N; c++) {
        int any = 0;

        for (size_t i = 0; i < r->nstats; i++)
            any |= !isnan(xd_figure(r->stats[i].st, c));
        if (any) {
            cols[nc++] = c;
            add_col(&b, xr_mem_strdup(head[c]), better[c], 1);
        }
    }
    alloc_cells(&b, r->nstats);
    for (size_t i = 0; i < r->nstats; i++) {
        const struct xr_xdstats *st = r->stats[i].st;

        set_cell(&b, i, 0, xr_mem_strdup(r->stats[i].label), NAN);
        set_cell(&b, i, 1, xr_mem_strdup(st->type), NAN);
        set_cell(&b, i, 2, xr_mem_strdup(st->job_names), NAN);
        for (int k = 0; k < nc; k++) {
            double v = xd_figure(st, cols[k]);

            set_cell(&b, i, 3 + k, xd_cell(cols[k], v), v);
        }
    }
    return finish(&b);
}

void xr_table_free(struct xr_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->head[i]);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cell[i]);
    free(t->head);
    free(t->numeric);
    free(t->cell);
    free(t->best);
    free(t->row_cfg);
    free(t);
}
