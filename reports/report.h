/* report.h - `xdreport report`: the model its writers share.
 *
 *   xdreport report -o OUTDIR [--title T] INPUT...
 *
 * report.c reads the inputs into a struct xr_set and builds the model:
 * configs.c groups fio's jobs into workloads and labels each configuration
 * by the options that set it apart, timeline.c collects the series to draw
 * over time. Then charts.c (one gnuplot run for OUTDIR/NAME.svg and .png;
 * chart_fio.c, chart_time.c and chart_xd.c choose the charts, plot.c writes
 * them), summary.c (summary.md, figures.csv) and html.c (report.html) write
 * it out, both showing the tables of tables.c.
 */
#ifndef XR_REPORT_H
#define XR_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "results.h"

int xr_report_main(int argc, char **argv);
/* xdtune's history.json as a convergence chart (convergence.c). */
int xr_convergence_main(int argc, char **argv);

struct xr_rep {              /* one repetition of a configuration */
    const struct xr_doc *doc;
    const struct xr_job *job;
    size_t job_index;
    unsigned number;         /* K of RUN.rK, 1 without one */
};

enum xr_side { XR_SIDE_NONE, XR_SIDE_XDEVICE, XR_SIDE_REFERENCE };

struct xr_cfg {              /* one configuration: one job of one final document */
    const struct xr_doc *doc;    /* of the representative repetition (median IOPS) */
    const struct xr_job *job;
    size_t job_index;        /* in doc->jobs */
    char *label;             /* the options that set it apart: "ioengine=psync" */
    /* Repetitions: documents from files named RUN.rK.json (K = 1, 2...) are
     * runs of one configuration, RUN; other files are one repetition each. */
    struct xr_rep *reps;
    size_t nreps;
    char *run;               /* RUN: the file name without .rK and .json */
    /* scripts/bench.sh names its runs NAME.xdevice and NAME.reference: the
     * pair compared in the recommendation (verdict.c); else XR_SIDE_NONE */
    enum xr_side side;
    char *bench_name;        /* NAME, or NULL */
};

struct xr_group {            /* one workload: the configurations of one fio job name */
    char *name;              /* the job name */
    char *slug;              /* name as it can go in a file name, unique */
    char *versions;          /* fio versions, ", "-separated */
    char *differ;            /* option keys that differ, ", "-separated; "" if none */
    struct xr_cfg *cfgs;
    size_t ncfgs;
    unsigned dirs;           /* bit d: some configuration did I/O in direction d */
};

struct xr_line {             /* one time series as the charts draw it */
    int group;               /* the workload it belongs to, -1 when no job claims it */
    long cfg;                /* its configuration in that group, -1 when unknown */
    char *label;
    char *kind;              /* "iops", "bw", "lat", "clat", "slat", "hist" */
    int from_status;         /* 1: derived from a --status-interval stream */
    enum xr_ddir ddir;
    double *t_ms, *value, *p99;  /* p99: hist only */
    size_t n;
    int owned;               /* arrays are the line's own (derived), not the set's */
    const char *source;      /* file it came from */
    int jobnum;              /* N of a log NAME_kind.N.log, 0 without one */
    int clone;               /* 0, or k: the k-th other job of a group_reporting
                                job (numjobs) whose logs share its configuration */
};

struct xr_statcfg {          /* one xdevice stats document, labelled */
    const struct xr_xdstats *st;
    char *label;
};

struct xr_chart {
    char *name;              /* OUTDIR/name.svg and name.png */
    char *title;             /* heading in the HTML */
    char *note;              /* how to read it, under the chart */
    int group;               /* workload, -1 for the logs and xdevice sections */
    int section;             /* XR_SEC_* */
    char *svg;               /* the SVG once gnuplot drew it, else NULL */
};

enum { XR_SEC_WORKLOAD, XR_SEC_TIME, XR_SEC_XDEVICE };

/* verdict.c: the answer the report opens with. Per workload: the best
 * configuration by IOPS (geometric mean over its repetitions; of a bench,
 * among the xdevice ones), those tied with it, each one's paired ratio to
 * its fio reference, and why the best differs from the runner-up. */
struct xr_estimate {         /* a ratio with its 95% interval (stats.h) */
    double ratio, lo, hi;    /* lo = 0, hi = INFINITY: no interval (too few runs) */
    int ok;                  /* 0: no figure at all */
};

struct xr_cfg_verdict {
    double gmean_iops;       /* over the repetitions */
    long ref;                /* its reference's index in the workload, or -1 */
    struct xr_estimate vs_ref;   /* paired: xdevice / reference */
    struct xr_estimate vs_best;  /* the best / this one, unpaired */
    int candidate;           /* competes for best (xdevice side, or no sides) */
    int tied;                /* vs_best's interval holds 1.0 */
    int level;               /* its IOPS print as the best's and no interval
                                tells it from the best (none, or one holding 1.0) */
};

struct xr_verdict {
    long best;               /* index in the workload, -1 without candidates */
    long runner_up;          /* the next candidate by IOPS, -1 */
    size_t min_reps;         /* fewest repetitions of a candidate */
    size_t nlevel;           /* candidates level with the best: then there is
                                no pick, best only leads the charts' order */
    char *why;               /* the key options that set best apart from runner_up */
    struct xr_cfg_verdict *cfg;  /* ncfgs */
    size_t *order;           /* ncfgs: best, its ties and the references first */
};

struct xr_warning {          /* a configuration not doing what its name says */
    char *subject;           /* the configuration (bench name or stats label) */
    char *text;
};

struct xr_report {
    const char *outdir;
    char *title;
    struct xr_set set;
    char **inputs;           /* files read, in order */
    size_t ninputs;
    char **problems;         /* every line printed on stderr, for the report too */
    size_t nproblems;
    char *versions;          /* fio versions of all documents */
    struct xr_group *groups;
    size_t ngroups;
    struct xr_line *lines;
    size_t nlines;
    struct xr_statcfg *stats;
    size_t nstats;
    char *stats_differ;      /* config keys that differ between stats documents */
    struct xr_chart *charts;
    size_t ncharts;
    struct xr_verdict *verdicts; /* ngroups */
    struct xr_warning *warnings;
    size_t nwarnings;
    int charts_drawn;        /* gnuplot ran and drew them */
};

/* report.c: record a problem (printed at once, listed in the report too) */
void xr_report_problem(struct xr_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* configs.c */
void xr_configs_build(struct xr_report *r);
void xr_configs_free(struct xr_report *r);
/* The basename of path without its extension, e.g. "psync" (malloc'd). */
char *xr_basename_noext(const char *path);

/* NAME of a bench's NAME.xdevice.rK.stats.json (malloc'd) and K, or NULL. */
char *xr_stats_bench_name(const char *source, unsigned *rep);

/* A configuration's throughput in one repetition: read + write + trim IOPS. */
double xr_rep_iops(const struct xr_job *job);

/* verdict.c */
void xr_verdict_build(struct xr_report *r);
void xr_verdict_free(struct xr_report *r);
/* "1.23× (1.10–1.37)", "1.23× (1 run: no interval)" or "" (malloc'd) */
char *xr_estimate_text(const struct xr_estimate *e);
/* "faster", "slower" or "within noise" by the interval; "" without one */
const char *xr_estimate_word(const struct xr_estimate *e);
/* warnings.c: from the xd_stats documents */
void xr_warnings_build(struct xr_report *r);
void xr_warnings_free(struct xr_report *r);

/* timeline.c */
void xr_timeline_build(struct xr_report *r);
void xr_timeline_free(struct xr_report *r);

/* charts.c: write OUTDIR/charts.gp, run gnuplot once for all charts. */
void xr_charts_render(struct xr_report *r);
void xr_charts_free(struct xr_report *r);

/* The colour of a workload's i-th configuration in every chart. */
const char *xr_chart_color(size_t i);

/* tables.c: the report's tables, as text, for summary.md and report.html */
struct xr_table {
    size_t ncols, nrows;
    char **head;             /* ncols */
    unsigned char *numeric;  /* ncols: 1 for figures (right-aligned) */
    char **cell;             /* nrows * ncols; column 0 names the row, "" when the
                                row continues the configuration above it */
    unsigned char *best;     /* nrows * ncols: 1 on the best figure of its column
                                (among the rows of the same data direction) */
    long *row_cfg;           /* nrows: the configuration's index in its workload, or -1 */
};
struct xr_table *xr_table_workload(const struct xr_report *r, size_t g);
struct xr_table *xr_table_xdevice(const struct xr_report *r);   /* NULL without stats */
void xr_table_free(struct xr_table *t);

/* summary.c, html.c: 0, or -1 after recording the problem */
int xr_summary_write(struct xr_report *r);
int xr_csv_write(struct xr_report *r);
int xr_html_write(struct xr_report *r);
/* hosts.c: OUTDIR/hosts.md and hosts.csv, figures by host and across
 * hosts, when the results come from two hosts or more. */
int xr_hosts_write(struct xr_report *r);
/* html.c: s with HTML's special characters escaped */
void xr_html_esc(FILE *f, const char *s);
/* html_verdict.c: the recommendation and warnings section, first on the page */
void xr_html_verdict(FILE *f, const struct xr_report *r);
/* summary.c's counterpart for summary.md */
void xr_md_verdict(FILE *f, const struct xr_report *r);
/* summary.c: s as Markdown text (table-safe) */
void xr_md_text(FILE *f, const char *s);

/* The most repetitions any configuration of a workload has. */
static inline size_t xr_group_max_reps(const struct xr_group *g)
{
    size_t n = 0;

    for (size_t i = 0; i < g->ncfgs; i++)
        n = g->cfgs[i].nreps > n ? g->cfgs[i].nreps : n;
    return n;
}

/* Directions with I/O in a configuration, and whether it did any. */
static inline int xr_cfg_has_dir(const struct xr_cfg *c, int d)
{
    return c->job->dir[d].total_ios > 0;
}

#endif
