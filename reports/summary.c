/* summary.c - OUTDIR/summary.md and OUTDIR/figures.csv.
 *
 * summary.md holds the report's tables, for a terminal, a pull request or
 * a chat message. figures.csv holds every figure the report read, one per
 * row, in a long format a spreadsheet or a script can filter:
 *
 *   kind,source,workload,configuration,host,direction,metric,value,unit
 *
 * kind is "fio" (a job of a final document), "fio-interval" (a job of an
 * earlier document of a --status-interval stream: cumulative so far),
 * "xdevice" (a stats document) or "log" / "interval" (a time series,
 * summarised). Values are written so they read back as exactly the number
 * fio printed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "outfile.h"
#include "mem.h"
#include "report.h"

static FILE *open_out(struct xr_report *r, const char *name, char **path)
{
    FILE *f;
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    *path = xr_mem_printf("%s/%s", r->outdir, name);
    f = xr_out_open(*path);
    if (!f)
        xr_report_problem(r, "xdreport: %s: %s", xr_escape(*path, shown, sizeof shown),
                          xr_out_strerror(errno));
    return f;
}

static int close_out(struct xr_report *r, FILE *f, char *path)
{
    int rc = 0;
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    if (ferror(f) | fclose(f)) {
        xr_report_problem(r, "xdreport: %s: write failed: %s", xr_escape(path, shown, sizeof shown),
                          strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
}

/* --- summary.md ------------------------------------------------------------------ */

#define md_text xr_md_text

void xr_md_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (strchr("|\\*`[]<>", *s))   /* GFM leaves intraword _ alone */
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
}

static void md_table(FILE *f, const struct xr_table *t)
{
    for (size_t c = 0; c < t->ncols; c++) {
        fputs("| ", f);
        md_text(f, t->head[c]);
        fputc(' ', f);
    }
    fputs("|\n", f);
    for (size_t c = 0; c < t->ncols; c++)
        fputs(t->numeric[c] ? "| ---: " : "| --- ", f);
    fputs("|\n", f);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t i = r * t->ncols + c;

            fputs("| ", f);
            fputs(t->best[i] && *t->cell[i] ? "**" : "", f);
            md_text(f, t->cell[i]);
            fputs(t->best[i] && *t->cell[i] ? "** " : " ", f);
        }
        fputs("|\n", f);
    }
    fputc('\n', f);
}

static void md_charts(FILE *f, const struct xr_report *r, int section, int group)
{
    for (size_t i = 0; i < r->ncharts; i++) {
        const struct xr_chart *c = &r->charts[i];

        if (c->section != section || c->group != group || !c->svg)
            continue;
        fputs("- [", f);
        md_text(f, c->title);
        fprintf(f, "](%s.png)\n", c->name);
    }
}

static void md_workloads(FILE *f, const struct xr_report *r)
{
    for (size_t g = 0; g < r->ngroups; g++) {
        const struct xr_group *grp = &r->groups[g];
        struct xr_table *t = xr_table_workload(r, g);

        fputs("## ", f);
        md_text(f, grp->name);
        fprintf(f, "\n\n%zu configuration%s (%s)", grp->ncfgs, grp->ncfgs == 1 ? "" : "s",
                *grp->versions ? grp->versions : "fio");
        if (grp->ncfgs > 1) {
            fputs(*grp->differ ? "; they differ in " : "; their options are the same", f);
            md_text(f, grp->differ);
        }
        fputs(". Latencies are fio's total latency (lat) where the job set lat_percentiles=1, "
              "otherwise its completion latency (clat).", f);
        if (xr_group_max_reps(grp) > 1)
            fprintf(f, " Each configuration ran up to %zu times: its row shows the run with the "
                       "median IOPS; the ratio column and the recommendation use every run.",
                    xr_group_max_reps(grp));
        fputs("\n\n", f);
        md_table(f, t);
        md_charts(f, r, XR_SEC_WORKLOAD, (int)g);
        md_charts(f, r, XR_SEC_TIME, (int)g);
        fputc('\n', f);
        xr_table_free(t);
    }
}

static void md_xdevice(FILE *f, const struct xr_report *r)
{
    struct xr_table *t = xr_table_xdevice(r);

    if (!t)
        return;
    fputs("## xdevice\n\n", f);
    if (r->nstats > 1 && *r->stats_differ) {
        fputs("The runs differ in ", f);
        md_text(f, r->stats_differ);
        fputs(".\n\n", f);
    }
    md_table(f, t);
    if (t->ncols == 3)
        fputs("These stats hold no cache, compression, space or tier figures.\n\n", f);
    md_charts(f, r, XR_SEC_XDEVICE, -1);
    xr_table_free(t);
}

static size_t n_final_docs(const struct xr_report *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->set.ndocs; i++)
        n += r->set.docs[i].stream_pos + 1 == r->set.docs[i].stream_len;
    return n;
}

static size_t n_configs(const struct xr_report *r)
{
    size_t n = 0;

    for (size_t g = 0; g < r->ngroups; g++)
        n += r->groups[g].ncfgs;
    return n;
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

int xr_summary_write(struct xr_report *r)
{
    char *path;
    FILE *f = open_out(r, "summary.md", &path);

    if (!f)
        return -1;
    fputs("# ", f);
    md_text(f, r->title);
    fprintf(f, "\n\n%s%s%zu configuration%s in %zu workload%s from %zu fio result%s, "
               "%zu xdevice stats, %zu time series; %zu input file%s.\n\n",
            r->versions, *r->versions ? ": " : "", n_configs(r), plural(n_configs(r)),
            r->ngroups, plural(r->ngroups), n_final_docs(r), plural(n_final_docs(r)),
            r->nstats, r->nlines, r->ninputs, plural(r->ninputs));
    xr_md_verdict(f, r);
    if (r->nproblems) {
        fputs("## Problems\n\n", f);
        for (size_t i = 0; i < r->nproblems; i++) {
            fputs("- ", f);
            md_text(f, r->problems[i]);
            fputc('\n', f);
        }
        fputc('\n', f);
    }
    md_workloads(f, r);
    md_xdevice(f, r);
    if (r->ncharts) {
        size_t n = 0;

        for (size_t i = 0; i < r->ncharts; i++)
            n += r->charts[i].section == XR_SEC_TIME && r->charts[i].group < 0;
        if (n) {
            fputs("## fio logs no job in the inputs names\n\n", f);
            md_charts(f, r, XR_SEC_TIME, -1);
            fputc('\n', f);
        }
    }
    fputs("Every figure is in figures.csv; the full report with charts is report.html.\n", f);
    return close_out(r, f, path);
}

/* --- figures.csv ------------------------------------------------------------------ */


struct row {                 /* the columns every row of one subject shares */
    const char *kind, *source, *workload, *config, *host, *dir;
};

static void csv_row(FILE *f, const struct row *w, const char *metric, double v, const char *unit)
{
    const char *cols[] = { w->kind, w->source, w->workload, w->config, w->host, w->dir, metric };
    char num[40];

    if (isnan(v))
        return;
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++) {
        xr_csv_field(f, cols[i] ? cols[i] : "");
        fputc(',', f);
    }
    xr_fmt_num(num, sizeof num, v);
    fprintf(f, "%s,%s\n", num, unit);
}

/* The configuration a job belongs to: a stream's earlier documents share
 * the label of the same job in the final one, which follows them. */
static const struct xr_cfg *cfg_of(const struct xr_report *r, const struct xr_doc *doc, size_t j)
{
    const struct xr_doc *final = doc + (doc->stream_len - 1 - doc->stream_pos);

    for (size_t g = 0; g < r->ngroups; g++)
        for (size_t i = 0; i < r->groups[g].ncfgs; i++)
            for (size_t k = 0; k < r->groups[g].cfgs[i].nreps; k++)
                if (r->groups[g].cfgs[i].reps[k].doc == final
                    && r->groups[g].cfgs[i].reps[k].job_index == j)
                    return &r->groups[g].cfgs[i];
    return NULL;
}

static void csv_dir(FILE *f, struct row *w, const struct xr_dir *d)
{
    static const char *const pct_name[XR_NPCT] = {
        "p50", "p90", "p99", "p99.9", "p99.99", "p99.999",
    };
    const char *kind = d->total_lat ? "lat" : "clat"; /* which latency fio reported */
    char metric[32];

    csv_row(f, w, "iops", d->iops, "IO/s");
    csv_row(f, w, "bw_bytes", d->bw_bytes, "B/s");
    csv_row(f, w, "io_bytes", (double)d->io_bytes, "B");
    csv_row(f, w, "total_ios", (double)d->total_ios, "I/Os");
    csv_row(f, w, "runtime", (double)d->runtime_ms, "ms");
    static const char *const stat_name[3] = {"mean", "min", "max"};
    const double stat[3] = {d->clat_mean_ns, d->clat_min_ns, d->clat_max_ns};
    for (int i = 0; i < 3; i++) {
        snprintf(metric, sizeof metric, "%s_%s", kind, stat_name[i]);
        csv_row(f, w, metric, stat[i], "ns");
    }
    for (int p = 0; p < XR_NPCT; p++) {
        snprintf(metric, sizeof metric, "%s_%s", kind, pct_name[p]);
        csv_row(f, w, metric, d->clat_pct_ns[p], "ns");
    }
}

static void csv_docs(FILE *f, const struct xr_report *r)
{
    for (size_t i = 0; i < r->set.ndocs; i++) {
        const struct xr_doc *doc = &r->set.docs[i];

        for (size_t j = 0; j < doc->njobs; j++) {
            const struct xr_job *job = &doc->jobs[j];
            const struct xr_cfg *c = cfg_of(r, doc, j);
            struct row w = { doc->stream_pos + 1 == doc->stream_len ? "fio" : "fio-interval",
                             doc->source, job->name, c ? c->label : "", job->hostname, "" };

            if (job->error)
                csv_row(f, &w, "error", job->error, "errno");
            for (int d = 0; d < XR_NDIR; d++) {
                if (!job->dir[d].total_ios)
                    continue;
                w.dir = xr_ddir_name[d];
                csv_dir(f, &w, &job->dir[d]);
            }
        }
    }
}

static void csv_xdevice(FILE *f, const struct xr_report *r)
{
    for (size_t i = 0; i < r->nstats; i++) {
        const struct xr_xdstats *st = r->stats[i].st;
        struct row w = { "xdevice", st->source, st->job_names, r->stats[i].label, NULL, "" };

        csv_row(f, &w, "cache_hit_ratio", st->cache_hit_ratio, "ratio");
        csv_row(f, &w, "compression_ratio", st->compression_ratio, "ratio");
        csv_row(f, &w, "logical_bytes", st->logical_bytes ? (double)st->logical_bytes : NAN, "B");
        csv_row(f, &w, "stored_bytes", st->stored_bytes ? (double)st->stored_bytes : NAN, "B");
        csv_row(f, &w, "allocated_bytes", st->allocated_bytes ? (double)st->allocated_bytes : NAN,
                "B");
        csv_row(f, &w, "tier_hot_reads", st->tier_hot_reads ? (double)st->tier_hot_reads : NAN,
                "reads");
        csv_row(f, &w, "tier_cold_reads", st->tier_cold_reads ? (double)st->tier_cold_reads : NAN,
                "reads");
    }
}

static const char *line_unit(const char *kind)
{
    if (strcmp(kind, "iops") == 0)
        return "IO/s";
    if (strcmp(kind, "bw") == 0)
        return "KiB/s";
    return "ns";
}

static void csv_stats(FILE *f, const struct row *w, const char *prefix, const double *v, size_t n,
                      const char *unit)
{
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    char metric[64];

    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    snprintf(metric, sizeof metric, "%s_mean", prefix);
    csv_row(f, w, metric, sum / n, unit);
    snprintf(metric, sizeof metric, "%s_min", prefix);
    csv_row(f, w, metric, lo, unit);
    snprintf(metric, sizeof metric, "%s_max", prefix);
    csv_row(f, w, metric, hi, unit);
}

static void csv_lines(FILE *f, const struct xr_report *r)
{
    for (size_t i = 0; i < r->nlines; i++) {
        const struct xr_line *l = &r->lines[i];
        const char *workload = l->group >= 0 ? r->groups[l->group].name : "";
        const char *config = l->cfg >= 0 ? r->groups[l->group].cfgs[l->cfg].label : l->label;
        struct row w = { l->from_status ? "interval" : "log", l->source, workload, config, NULL,
                         xr_ddir_name[l->ddir] };
        int hist = strcmp(l->kind, "hist") == 0;
        char prefix[32], samples[48];

        if (!l->n)
            continue;
        snprintf(prefix, sizeof prefix, "%s%s", l->kind, hist ? "_p50" : "");
        snprintf(samples, sizeof samples, "%s_samples", l->kind);
        csv_row(f, &w, samples, (double)l->n, "samples");
        csv_stats(f, &w, prefix, l->value, l->n, line_unit(l->kind));
        if (hist && l->p99)
            csv_stats(f, &w, "hist_p99", l->p99, l->n, "ns");
    }
}

int xr_csv_write(struct xr_report *r)
{
    char *path;
    FILE *f = open_out(r, "figures.csv", &path);

    if (!f)
        return -1;
    fputs("kind,source,workload,configuration,host,direction,metric,value,unit\n", f);
    csv_docs(f, r);
    csv_xdevice(f, r);
    csv_lines(f, r);
    return close_out(r, f, path);
}
