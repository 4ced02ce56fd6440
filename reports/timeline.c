/* timeline.c - the lines the over-time charts draw.
 *
 * Two sources. fio's logs (write_iops_log, write_lat_log, write_bw_log,
 * write_hist_log) hold samples per log_avg_msec. A --status-interval
 * stream holds cumulative figures per interval, so each interval's own
 * IOPS, bandwidth and mean latency come from the difference of two
 * documents.
 *
 * A log is tied to its configuration through the job's write_*_log option
 * (write_iops_log=NAME writes NAME_iops.N.log), so its line carries the same
 * label as that configuration's bars. When several runs used the same NAME,
 * the one whose JSON sits in the log's directory wins.
 *
 * A group_reporting job with numjobs=N is one configuration in the JSON
 * (its figures the sum of its jobs) but writes N logs of each kind,
 * NAME_kind.1.log to NAME_kind.N.log. Each such log is one job's share,
 * drawn as a line of its own and labelled "CONFIG job K" (label_clones):
 * under one label they read as one configuration drawn twice, each at
 * half the figure its table row shows.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "report.h"

static const char *log_option(const char *kind)
{
    if (strcmp(kind, "iops") == 0)
        return "write_iops_log";
    if (strcmp(kind, "bw") == 0)
        return "write_bw_log";
    if (strcmp(kind, "hist") == 0)
        return "write_hist_log";
    return "write_lat_log";            /* lat, clat, slat */
}

static const char *opt_of(const struct xr_job *job, const char *key)
{
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(job->opts[i].key, key) == 0)
            return job->opts[i].val;
    return NULL;
}

/* The directory of path, resolved, for "does this log sit beside that JSON". */
static char *dir_of(const char *path)
{
    char *copy = xr_mem_strdup(path), *slash = strrchr(copy, '/');
    char *real;

    if (slash)
        *slash = '\0';
    real = realpath(slash ? (*copy ? copy : "/") : ".", NULL);
    free(copy);
    return real ? real : xr_mem_strdup("");
}

static int rep_score(const struct xr_series *s, const struct xr_rep *rep, const char *sdir)
{
    const char *val = opt_of(rep->job, log_option(s->kind));
    const char *base;
    int score = 1;
    char *cdir;

    if (!val)
        return 0;
    base = strrchr(val, '/') ? strrchr(val, '/') + 1 : val;
    if (strcmp(base, s->name))
        return 0;
    cdir = dir_of(rep->doc->path);
    score += strcmp(cdir, sdir) == 0 ? 2 : 0;
    free(cdir);
    /* fio numbers a run's jobs from 1 in its log names */
    score += s->jobnum > 0 && (size_t)s->jobnum == rep->job_index + 1;
    return score;
}

/* The best match among the configuration's repetitions: a bench writes
 * logs in one repetition only, not necessarily the one the tables show. */
static int match_score(const struct xr_series *s, const struct xr_cfg *c, const char *sdir)
{
    int best = 0;

    for (size_t k = 0; k < c->nreps; k++) {
        int score = rep_score(s, &c->reps[k], sdir);

        best = score > best ? score : best;
    }
    return best;
}

/* The configuration a log belongs to; *g = -1 when none or several equally. */
static void find_cfg(const struct xr_report *r, const struct xr_series *s, int *g, long *c)
{
    char *sdir = dir_of(s->source);
    int best = 0, ties = 0;

    *g = -1;
    *c = -1;
    for (size_t gi = 0; gi < r->ngroups; gi++) {
        for (size_t ci = 0; ci < r->groups[gi].ncfgs; ci++) {
            int score = match_score(s, &r->groups[gi].cfgs[ci], sdir);

            if (score > best) {
                best = score;
                ties = 0;
                *g = (int)gi;
                *c = (long)ci;
            } else if (score && score == best) {
                ties++;
            }
        }
    }
    if (ties) {
        *g = -1;
        *c = -1;
    }
    free(sdir);
}

static char *line_label(const struct xr_report *r, int g, long c, const char *name, int jobnum,
                        enum xr_ddir d, const char *suffix)
{
    if (g < 0) {
        if (jobnum)
            return xr_mem_printf("%s.%d %s%s", name, jobnum, xr_ddir_name[d], suffix);
        return xr_mem_printf("%s %s%s", name, xr_ddir_name[d], suffix);
    }
    /* the direction only when the workload has more than one */
    if (r->groups[g].dirs & (r->groups[g].dirs - 1))
        return xr_mem_printf("%s %s%s", r->groups[g].cfgs[c].label, xr_ddir_name[d], suffix);
    return xr_mem_printf("%s%s", r->groups[g].cfgs[c].label, suffix);
}

static void add_log_lines(struct xr_report *r)
{
    for (size_t i = 0; i < r->set.nseries; i++) {
        struct xr_series *s = &r->set.series[i];
        struct xr_line *l = xr_mem_push(&r->lines, &r->nlines, sizeof *l);

        find_cfg(r, s, &l->group, &l->cfg);
        l->label = line_label(r, l->group, l->cfg, s->name, s->jobnum, s->ddir, "");
        l->kind = xr_mem_strdup(s->kind);
        l->ddir = s->ddir;
        l->t_ms = s->t_ms;
        l->value = s->value;
        l->p99 = s->p99;
        l->n = s->n;
        l->source = s->source;
        l->jobnum = s->jobnum;
    }
}

/* "CONFIG job K", and the direction when the workload has several. */
static char *clone_label(const struct xr_report *r, const struct xr_line *l)
{
    const struct xr_group *g = &r->groups[l->group];
    const char *cfg = g->cfgs[l->cfg].label;

    if (g->dirs & (g->dirs - 1))
        return xr_mem_printf("%s job %d %s", cfg, l->jobnum, xr_ddir_name[l->ddir]);
    return xr_mem_printf("%s job %d", cfg, l->jobnum);
}

/* Another log of the same configuration, kind and direction from another
 * job: a clone of a group_reporting job. */
static int is_clone_of(const struct xr_line *a, const struct xr_line *b)
{
    return a != b && !a->from_status && !b->from_status && a->group >= 0 &&
           a->group == b->group && a->cfg == b->cfg && a->ddir == b->ddir &&
           strcmp(a->kind, b->kind) == 0 && a->jobnum != b->jobnum;
}

/* Lines that are clones get "job K" in their label, and their place among
 * the clones (by job number) so that the charts can draw them apart. */
static void label_clones(struct xr_report *r)
{
    for (size_t i = 0; i < r->nlines; i++) {
        struct xr_line *l = &r->lines[i];
        int clones = 0;

        for (size_t j = 0; j < r->nlines; j++) {
            if (!is_clone_of(l, &r->lines[j]))
                continue;
            clones++;
            l->clone += r->lines[j].jobnum < l->jobnum;
        }
        if (!clones)
            continue;
        free(l->label);
        l->label = clone_label(r, l);
    }
}

/* One interval of a stream: the difference of two cumulative documents. */
struct interval {
    double t_ms, iops, kib_s, mean_ns;
};

static int interval_of(const struct xr_dir *now, const struct xr_dir *before, struct interval *iv)
{
    double dt = (double)now->runtime_ms - (double)before->runtime_ms;
    double dios = (double)now->total_ios - (double)before->total_ios;

    if (dt <= 0 || dios < 0)
        return 0;              /* fio's last two documents may cover the same time */
    iv->t_ms = now->runtime_ms;
    iv->iops = dios * 1000 / dt;
    iv->kib_s = ((double)now->io_bytes - (double)before->io_bytes) / 1024 * 1000 / dt;
    iv->mean_ns = dios > 0 ? (now->clat_mean_ns * now->total_ios
                              - (before->total_ios ? before->clat_mean_ns * before->total_ios : 0))
                                 / dios
                           : 0;
    return 1;
}

static struct xr_line *derived_line(struct xr_report *r, int g, long c, enum xr_ddir d,
                                    const char *kind, const char *suffix, size_t cap,
                                    const char *source)
{
    struct xr_line *l = xr_mem_push(&r->lines, &r->nlines, sizeof *l);

    l->group = g;
    l->cfg = c;
    l->label = line_label(r, g, c, "", 0, d, suffix);
    l->kind = xr_mem_strdup(kind);
    l->from_status = 1;
    l->ddir = d;
    l->t_ms = xr_mem_alloc(cap * sizeof *l->t_ms);
    l->value = xr_mem_alloc(cap * sizeof *l->value);
    l->owned = 1;
    l->source = source;
    return l;
}

/* The stream docs[0..n-1], job j, direction d of configuration (g, c). */
static void add_stream_dir(struct xr_report *r, const struct xr_doc *docs, size_t n, size_t j,
                           int g, long c, enum xr_ddir d)
{
    size_t k0 = r->nlines;
    struct xr_dir zero = { 0 };
    const struct xr_dir *before = &zero;
    struct xr_line *l;

    derived_line(r, g, c, d, "iops", " (interval)", n, docs[n - 1].path);
    derived_line(r, g, c, d, "bw", " (interval)", n, docs[n - 1].path);
    derived_line(r, g, c, d, "clat", " mean (interval)", n, docs[n - 1].path);
    l = &r->lines[k0];        /* after the pushes: they may move r->lines */
    for (size_t k = 0; k < n; k++) {
        const struct xr_dir *now;
        struct interval iv;

        if (j >= docs[k].njobs || strcmp(docs[k].jobs[j].name, docs[n - 1].jobs[j].name))
            continue;
        now = &docs[k].jobs[j].dir[d];
        if (!interval_of(now, before, &iv))
            continue;
        before = now;
        l[0].t_ms[l[0].n] = l[1].t_ms[l[1].n] = l[2].t_ms[l[2].n] = iv.t_ms;
        l[0].value[l[0].n++] = iv.iops;
        l[1].value[l[1].n++] = iv.kib_s;
        l[2].value[l[2].n++] = iv.mean_ns;
    }
}

static long cfg_of(const struct xr_report *r, const struct xr_doc *doc, size_t j, int *g)
{
    for (size_t gi = 0; gi < r->ngroups; gi++)
        for (size_t ci = 0; ci < r->groups[gi].ncfgs; ci++)
            if (r->groups[gi].cfgs[ci].doc == doc && r->groups[gi].cfgs[ci].job_index == j) {
                *g = (int)gi;
                return (long)ci;
            }
    *g = -1;
    return -1;
}

/* xr_load appends a stream's documents one after another, positions 0..n-1. */
static void add_stream_lines(struct xr_report *r)
{
    for (size_t i = 0; i < r->set.ndocs; i++) {
        const struct xr_doc *docs = &r->set.docs[i];
        size_t n = docs->stream_len;

        if (docs->stream_pos != 0 || n < 2 || i + n > r->set.ndocs)
            continue;
        for (size_t j = 0; j < docs[n - 1].njobs; j++) {
            int g;
            long c = cfg_of(r, &docs[n - 1], j, &g);

            for (int d = 0; d < XR_NDIR && c >= 0; d++)
                if (docs[n - 1].jobs[j].dir[d].total_ios)
                    add_stream_dir(r, docs, n, j, g, c, d);
        }
    }
}

void xr_timeline_build(struct xr_report *r)
{
    add_log_lines(r);
    label_clones(r);
    add_stream_lines(r);
}

void xr_timeline_free(struct xr_report *r)
{
    for (size_t i = 0; i < r->nlines; i++) {
        free(r->lines[i].label);
        free(r->lines[i].kind);
        if (r->lines[i].owned) {
            free(r->lines[i].t_ms);
            free(r->lines[i].value);
        }
    }
    free(r->lines);
}
