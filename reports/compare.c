/* compare.c - `xdreport compare BASE NEW`: the arguments, the runs of each
 * side grouped by configuration and workload, and per row the ratio of
 * medians, a Mann-Whitney U test, a pairwise-ratio confidence interval and
 * a verdict. The command's contract is in compare.h; which runs pair in
 * pairing.c, the statistics in stats.c, the output in compare_out.c.
 */
#include "compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_impl.h"
#include "format.h"
#include "mem.h"
#include "outfile.h"
#include "pairing.h"
#include "results.h"
#include "stats.h"

#define PROG "xdreport compare"
#define USAGE "usage: xdreport compare [--threshold PCT] [--alpha A] [--min-runs N] " \
              "[--junit FILE] [--metrics FILE] [--ignore-option KEY]... [--paired] " \
              "[--decided FILE] [--verdicts FILE] BASE NEW"

#define HELP USAGE "\n\n" \
    "Did NEW get slower than BASE? BASE and NEW are directories (their *.json\n" \
    "files: a bench or regress results directory as it is), list files or single\n" \
    "files of fio JSON results, one file per run. For each configuration,\n" \
    "workload and metric (read/write iops, bw, clat_mean, clat_p50, clat_p99; lat_* when\n" \
    "the jobs set lat_percentiles=1):\n" \
    "  ratio    median(NEW) / median(BASE)\n" \
    "  CI       (1 - alpha) interval for the ratio from the order statistics of\n" \
    "           all pairwise NEW/BASE ratios (Hodges-Lehmann, no resampling)\n" \
    "  p        two-sided Mann-Whitney U test, exact up to 20 runs a side\n" \
    "  verdict  regression / improvement: p < alpha and the whole CI beyond the\n" \
    "           threshold; same: the CI within +-threshold; else inconclusive\n" \
    "\n" \
    "  --threshold PCT  change that counts, in percent (5)\n" \
    "  --alpha A        significance level (0.05)\n" \
    "  --min-runs N     runs a side needed for a verdict (5)\n" \
    "  --junit FILE     JUnit XML: a testcase per row, regressions fail\n" \
    "  --metrics FILE   OpenMetrics text (xdevice_compare_ratio{...} ...)\n" \
    "  --ignore-option KEY  leave fio option KEY out when deciding which runs are\n" \
    "                   the same experiment (repeatable)\n" \
    "  --paired         pair run K of BASE with run K of NEW (the number in the\n" \
    "                   file's repetition tag: -r03 is 3) and judge the per-round\n" \
    "                   ratios: ratio is their median, CI the sign test's interval\n" \
    "                   for it, each end one-sided at alpha/R, R the\n" \
    "                   gated rows (median latency); regression / improvement: the\n" \
    "                   CI beyond the threshold; same: within it; iops, bw, mean and\n" \
    "                   p99 latency are informational (shown, never judged); base\n" \
    "                   and new are medians over the paired rounds only\n" \
    "  --decided FILE   rows decided in FILE (an earlier --verdicts) keep that verdict\n" \
    "  --verdicts FILE  every row's verdict and interval, for a later --decided\n" \
    "\n" \
    "Runs are paired by configuration (the file name less .json and a trailing\n" \
    "repetition tag such as -r01) and fio job name; runs whose options differ are\n" \
    "never pooled (refused) nor set against each other (the row is not compared).\n" \
    "\n" \
    "Exit status: 0 no regression and every row decided, 1 a regression,\n" \
    "3 no regression but some row inconclusive, 2 bad input.\n"

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        xr_cmp_fail("out of memory");
        exit(2);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        xr_cmp_fail("out of memory");
        exit(2);
    }
    return d;
}

/* --- arguments ------------------------------------------------------------ */

static int parse_number(const char *opt, const char *s, double lo, double hi, const char *allowed,
                        double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    char shown[XR_ESCAPE_LEN];
    if (errno || end == s || *end || !(v > lo && v < hi))
        return xr_cmp_fail("%s: '%s' is not allowed (%s)", opt, xr_escape(s, shown, sizeof(shown)), allowed);
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.threshold = 5, .alpha = 0.05, .min_runs = 5};
    int npos = 0, only_pos = 0;
    char shown[XR_ESCAPE_LEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (npos == NSIDE)
                return xr_cmp_fail("unexpected argument '%s'; allowed: BASE and NEW only (xdreport compare --help)",
                            xr_escape(a, shown, sizeof(shown)));
            o->path[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(HELP, stdout);
            exit(0);
        }
        size_t len = strcspn(a, "=");
        const char *val = a[len] == '=' ? a + len + 1 : NULL;
        static const char *const known[] = {"--threshold", "--alpha",   "--min-runs",
                                            "--junit",     "--metrics", "--ignore-option",
                                            "--decided",   "--verdicts", "--paired"};
        int k = -1;
        for (int j = 0; j < 9; j++)
            if (strlen(known[j]) == len && !strncmp(a, known[j], len))
                k = j;
        if (k < 0)
            return xr_cmp_fail("unknown option '%s' (allowed: --threshold, --alpha, --min-runs, "
                        "--junit, --metrics, --ignore-option, --paired, --decided, --verdicts)",
                        xr_escape(a, shown, sizeof(shown)));
        if (k == 8) { /* --paired takes no value */
            if (val)
                return xr_cmp_fail("--paired takes no value");
            o->paired = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return xr_cmp_fail("%s needs a value (xdreport compare --help)", known[k]);
            val = argv[++i];
        }
        double d;
        switch (k) {
        case 0:
            if (parse_number("--threshold", val, 0, 100, "a percentage above 0 and below 100", &d))
                return 2;
            o->threshold = d;
            break;
        case 1:
            if (parse_number("--alpha", val, 0, 0.5, "a significance level above 0 and below 0.5",
                             &d))
                return 2;
            o->alpha = d;
            break;
        case 2:
            if (parse_number("--min-runs", val, 0, 1e6, "a whole number of runs from 1", &d))
                return 2;
            if (d != floor(d))
                return xr_cmp_fail("--min-runs: '%s' is not allowed (a whole number of runs from 1)",
                            xr_escape(val, shown, sizeof(shown)));
            o->min_runs = (long)d;
            break;
        case 3:
            o->junit = val;
            break;
        case 4:
            o->metrics = val;
            break;
        case 5:
            if (!*val || strchr(val, '='))
                return xr_cmp_fail("--ignore-option: '%s' is not allowed (a fio option name such as bs)",
                                   xr_escape(val, shown, sizeof(shown)));
            o->ignore = xrealloc(o->ignore, (o->nignore + 1) * sizeof *o->ignore);
            o->ignore[o->nignore++] = (char *)val;
            break;
        case 6:
            o->decided = val;
            break;
        case 7:
            o->verdicts = val;
            break;
        }
    }
    if (npos != NSIDE)
        return xr_cmp_fail("BASE and NEW are both required; allowed: xdreport compare [OPTIONS] BASE NEW");
    return 0;
}

/* The output files are checked before any work: a refused one then costs
 * one line and nothing is written, not even the table. Two options naming
 * one file would leave only the last one's content there. */
static int check_outputs(const struct opts *o)
{
    static const char *const opt[] = {"--junit", "--metrics", "--verdicts"};
    const char *path[] = {o->junit, o->metrics, o->verdicts};
    char a[XR_ESCAPE_LEN], b[XR_ESCAPE_LEN];
    for (int i = 0; i < 3; i++) {
        if (!path[i])
            continue;
        for (int j = 0; j < i; j++)
            if (path[j] && xr_out_same(path[j], path[i]))
                return xr_cmp_fail("%s %s and %s %s name the same file; allowed: a file of its own for each",
                                   opt[j], xr_escape(path[j], a, sizeof a), opt[i],
                                   xr_escape(path[i], b, sizeof b));
        if (xr_out_check(path[i]))
            return xr_cmp_out_refused(opt[i], path[i]);
    }
    return 0;
}

/* --- inputs ------------------------------------------------------------------- */

static struct workload *find_workload(struct compare *c, const char *config, const char *name)
{
    for (size_t i = 0; i < c->nw; i++)
        if (!strcmp(c->w[i].name, name) && !strcmp(c->w[i].config, config))
            return &c->w[i];
    c->w = xrealloc(c->w, (c->nw + 1) * sizeof *c->w);
    struct workload *w = &c->w[c->nw++];
    *w = (struct workload){.config = xstrdup(config), .name = xstrdup(name)};
    return w;
}

/* Runs of one configuration and workload on one side are pooled only when
 * they were the same experiment: the first run's options are the side's,
 * and a run with other options is refused, naming the option. */
static int check_options(struct compare *c, enum side s, struct workload *w,
                         const struct xr_doc *doc, const struct xr_job *job)
{
    char *opts = xr_pair_options(job, c->o.ignore, c->o.nignore);
    if (!w->opts[s]) {
        w->opts[s] = opts;
        w->opts_from[s] = xstrdup(doc->path);
        return 0;
    }
    int same = !strcmp(opts, w->opts[s]);
    if (!same) {
        char diff[600], key[128];
        xr_pair_difference(w->opts[s], opts, diff, sizeof diff, key, sizeof key);
        xr_cmp_fail("%s: %s%s%sworkload '%s': %s has %s %s: runs with different options are "
                    "not pooled; allowed: name the files apart (they are configurations by file "
                    "name) or --ignore-option %s",
                    side_name[s], *w->config ? "configuration '" : "", w->config,
                    *w->config ? "' " : "", w->name, w->opts_from[s], diff, doc->path, key);
    }
    free(opts);
    return same ? 0 : 2;
}

/* --paired: a run needs a round number, and one a round per side and
 * workload, or its partner on the other side would be a guess. */
static int check_round(const struct compare *c, enum side s, const struct workload *w,
                       const struct xr_doc *doc, size_t docno)
{
    long round = c->round[s][docno];
    if (!c->o.paired)
        return 0;
    if (round < 0)
        return xr_cmp_fail("--paired: %s: %s: the file name has no round number (a repetition "
                           "tag such as -r03)", side_name[s], doc->path);
    for (size_t i = 0; i < w->nruns[s]; i++)
        if (w->runs[s][i].round == round)
            return xr_cmp_fail("--paired: %s: %s: a second run of workload '%s' in round %ld",
                               side_name[s], doc->path, w->name, round);
    return 0;
}

static double percentile(const struct xr_dir *d, double pct)
{
    for (int i = 0; i < XR_NPCT; i++)
        if (xr_pct[i] == pct)
            return d->clat_pct_ns[i];
    return NAN;
}

static double lat_value(const struct xr_dir *d, int k)
{
    return k == 0 ? d->clat_mean_ns : percentile(d, k == 1 ? 50 : 99);
}

/* One job of one document: a run of its configuration and workload (jobs
 * sharing a name in one document add up into one run; their percentiles
 * are pooled once all are in, compare_pooled.c). */
static int add_job(struct compare *c, enum side s, const char *config, const struct xr_doc *doc,
                   const struct xr_job *job, size_t docno)
{
    if (!job->name)
        return xr_cmp_fail("%s: a job without a name", doc->source);
    if (job->error)
        return xr_cmp_fail("%s: job '%s' failed with error %d (%s); its figures are no sample",
                           doc->source, job->name, job->error, strerror(job->error));
    struct workload *w = find_workload(c, config, job->name);
    struct run *r = w->nruns[s] ? &w->runs[s][w->nruns[s] - 1] : NULL;
    if (!r || r->doc != docno) {
        if (check_options(c, s, w, doc, job) || check_round(c, s, w, doc, docno))
            return 2;
        w->runs[s] = xrealloc(w->runs[s], (w->nruns[s] + 1) * sizeof *w->runs[s]);
        r = &w->runs[s][w->nruns[s]++];
        *r = (struct run){.doc = docno, .round = c->round[s][docno]};
    }
    for (int d = 0; d < NDIR; d++) {
        const struct xr_dir *x = &job->dir[dir_of[d]];
        enum lat_kind lat = x->total_lat ? LAT_TOTAL : LAT_COMPLETION;
        if (x->total_ios && w->lat != LAT_UNSEEN && w->lat != lat)
            return xr_cmp_fail("%s: job '%s' reports %s latency, other runs %s latency; allowed: "
                               "lat_percentiles=1 in every run or in none",
                               doc->source, job->name, lat == LAT_TOTAL ? "total" : "completion",
                               lat == LAT_TOTAL ? "completion" : "total");
        if (x->total_ios) {
            w->lat = lat;
            xr_cmp_add_part(r, d, x);
        }
        r->iops[d] += x->iops;
        r->bw[d] += x->bw_bytes;
        r->ios[d] += (double)x->total_ios;
        for (int k = 0; k < NLAT; k++)
            r->lat_x_ios[d][k] += lat_value(x, k) * (double)x->total_ios;
    }
    return 0;
}

static int add_doc(struct compare *c, enum side s, const struct xr_doc *doc, const char *config,
                   size_t docno)
{
    int rc = 0;
    for (size_t j = 0; !rc && j < doc->njobs; j++)
        rc = add_job(c, s, config, doc, &doc->jobs[j], docno);
    return rc;
}

/* The configuration of each run of side s. When each side's runs all name
 * one configuration, the two are that configuration whatever they are
 * called, so they pair: base.json with new.json, base/run-*.json with
 * new/b-*.json. Otherwise names pair runs. */
static int one_config(const struct compare *c, enum side s)
{
    for (size_t i = 1; i < c->nloaded[s]; i++)
        if (strcmp(c->config[s][i], c->config[s][0]))
            return 0;
    return 1;
}

static int add_sides(struct compare *c)
{
    int unnamed = one_config(c, BASE) && one_config(c, NEW), rc = 0;
    for (int s = 0; !rc && s < NSIDE; s++)
        for (size_t i = 0; !rc && i < c->nloaded[s]; i++) {
            if (unnamed)
                c->config[s][i][0] = 0;
            rc = add_doc(c, s, &c->set[s].docs[c->doc[s][i]], c->config[s][i], i);
        }
    return rc;
}

/* Load one side: every file is a run; of a stream, its last document. */
static int load_side(struct compare *c, enum side s)
{
    const char *label = side_name[s], *path = c->o.path[s];
    char **files = NULL, err[1024];
    size_t nfiles = 0, ndocs = 0;
    struct xr_set *set = &c->set[s];
    int rc = xr_pair_inputs(label, path, &files, &nfiles);
    size_t *doc = c->doc[s] = xrealloc(NULL, (nfiles + 1) * sizeof *doc);
    for (size_t i = 0; !rc && i < nfiles; i++) {
        size_t before = set->ndocs;
        err[0] = 0;
        if (xr_load(set, files[i], err, sizeof err) != 0) {
            const char *msg = err[0] ? err : files[i];
            if (!strncmp(msg, "xdreport: ", 10)) /* the loader's own prefix */
                msg += 10;
            rc = xr_cmp_fail("%s", msg);
            break;
        }
        if (set->ndocs > before)
            doc[ndocs++] = set->ndocs - 1;
    }
    if (!rc && ndocs == 0)
        rc = xr_cmp_fail("%s %s: no fio JSON results among its %zu file(s)", label, path, nfiles);
    c->config[s] = xr_mem_alloc((ndocs + 1) * sizeof *c->config[s]);
    c->round[s] = xr_mem_alloc((ndocs + 1) * sizeof *c->round[s]);
    for (size_t i = 0; i < ndocs; i++) {
        c->config[s][i] = xr_pair_config_name(set->docs[doc[i]].path);
        c->round[s][i] = xr_pair_round(set->docs[doc[i]].path);
    }
    c->nfiles[s] = c->nloaded[s] = ndocs;
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}

/* --- the comparison ------------------------------------------------------------ */

/* Rows are labelled "configuration/workload", or by the workload alone
 * where that names one thing: a single configuration, an unnamed one, or
 * one named like its only job (the regress suite's files). */
static void label_workloads(struct compare *c)
{
    int one_config = 1;
    for (size_t i = 1; i < c->nw; i++)
        one_config &= !strcmp(c->w[i].config, c->w[0].config);
    for (size_t i = 0; i < c->nw; i++) {
        struct workload *w = &c->w[i];
        if (one_config || !*w->config || !strcmp(w->config, w->name))
            w->label = xstrdup(w->name);
        else
            w->label = xr_mem_printf("%s/%s", w->config, w->name);
    }
}

double xr_cmp_run_value(const struct run *r, int d, enum kind k)
{
    if (k == K_IOPS)
        return r->iops[d];
    if (k == K_BW)
        return r->bw[d];
    if (r->pooled[d] && (k == K_CLAT_P50 || k == K_CLAT_P99))
        return r->pct[d][k == K_CLAT_P99];
    return r->ios[d] > 0 ? r->lat_x_ios[d][k - K_CLAT_MEAN] / r->ios[d] : NAN;
}

/* The samples of one metric on one side: NaNs (latency of a run without I/O
 * in that direction, or a percentile fio did not report) are left out. */
static size_t samples(const struct workload *w, enum side s, int d, enum kind k, double *out)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nruns[s]; i++) {
        double v = xr_cmp_run_value(&w->runs[s][i], d, k);
        if (isfinite(v))
            out[n++] = v;
    }
    return n;
}

/* BASE and NEW ran this configuration with other options: a different
 * experiment, so no figure of one is set against the other. */
static void not_paired(struct row *r)
{
    char diff[300], key[128];
    xr_pair_difference(r->w->opts[BASE], r->w->opts[NEW], diff, sizeof diff, key, sizeof key);
    r->ratio = r->ci_lo = r->ci_hi = r->p = r->median[BASE] = r->median[NEW] = NAN;
    r->verdict = V_INCONCLUSIVE;
    snprintf(r->why, sizeof r->why, "not compared: the options differ, BASE %s in NEW "
             "(--ignore-option %s to compare anyway)", diff, key);
}

static int options_differ(const struct row *r)
{
    return r->w->opts[BASE] && r->w->opts[NEW] && strcmp(r->w->opts[BASE], r->w->opts[NEW]);
}

/* Two pooled samples: the Mann-Whitney test and the pairwise-ratio CI. */
static void decide_unpaired(const struct opts *o, struct row *r, const double *base,
                            const double *new_)
{
    double t = o->threshold / 100, lo = 1 - t, hi = 1 + t;
    int hib = kinds[r->kind].higher_is_better;
    if (r->median[BASE] > 0)
        r->ratio = r->median[NEW] / r->median[BASE];
    struct xr_mwu u;
    if (xr_mwu(new_, r->n[NEW], base, r->n[BASE], &u) == 0) {
        r->p = u.p;
        r->exact = u.exact;
    }
    xr_ratio_ci(base, r->n[BASE], new_, r->n[NEW], o->alpha, &r->ci_lo, &r->ci_hi);
    double p_min = xr_mwu_min_p(r->n[BASE], r->n[NEW]);
    r->too_few = !(p_min < o->alpha);
    if ((long)r->n[BASE] < o->min_runs || (long)r->n[NEW] < o->min_runs) {
        snprintf(r->why, sizeof r->why, "fewer than %ld runs: BASE %zu, NEW %zu", o->min_runs,
                 r->n[BASE], r->n[NEW]);
        return;
    }
    if (r->too_few) {
        snprintf(r->why, sizeof r->why, "too few runs: with %zu and %zu the smallest possible p "
                 "is %.3g, not below alpha %g", r->n[BASE], r->n[NEW], p_min, o->alpha);
        return;
    }
    if (isnan(r->ratio)) {
        snprintf(r->why, sizeof r->why, "BASE median is 0: no ratio");
        return;
    }
    if (r->kind >= K_CLAT_MEAN && r->median[BASE] < LAT_FLOOR_NS &&
        r->median[NEW] < LAT_FLOOR_NS) {
        snprintf(r->why, sizeof r->why, "under %.0f ns: fio timed only its own bookkeeping",
                 LAT_FLOOR_NS);
        return;
    }
    /* "beyond the threshold" is a claim about the change, not about this
     * sample's medians: the whole CI must lie beyond it. A significant
     * ratio of medians past the threshold whose CI still reaches inside
     * it (a true change of 4% against 5%) is not evidence of a change
     * beyond the threshold. */
    int worse = hib ? r->ratio < lo && r->ci_hi < lo : r->ratio > hi && r->ci_lo > hi;
    int better = hib ? r->ratio > hi && r->ci_lo > hi : r->ratio < lo && r->ci_hi < lo;
    int past = r->ratio < lo || r->ratio > hi;
    int significant = r->p < o->alpha;
    const char *what = hib ? "lower" : "higher";
    if (significant && worse) {
        r->verdict = V_REGRESSION;
        snprintf(r->why, sizeof r->why, "%.1f%% %s than BASE (p=%.4g, threshold %g%%)",
                 fabs(r->ratio - 1) * 100, what, r->p, o->threshold);
    } else if (significant && better) {
        r->verdict = V_IMPROVEMENT;
        snprintf(r->why, sizeof r->why, "%.1f%% %s than BASE (p=%.4g)", fabs(r->ratio - 1) * 100,
                 hib ? "higher" : "lower", r->p);
    } else if (r->ci_lo >= lo && r->ci_hi <= hi) {
        r->verdict = V_SAME;
        snprintf(r->why, sizeof r->why, "CI within +-%g%%", o->threshold);
    } else if (significant && past) {
        snprintf(r->why, sizeof r->why, "significant, %.1f%% %s, but the CI [%.3f, %.3f] "
                 "reaches within +-%g%%", fabs(r->ratio - 1) * 100,
                 (r->ratio < 1) == hib ? "worse" : "better", r->ci_lo, r->ci_hi, o->threshold);
    } else if (significant) {
        snprintf(r->why, sizeof r->why, "significant but the ratio is within +-%g%% and the CI "
                 "is not", o->threshold);
    } else {
        snprintf(r->why, sizeof r->why, "not significant and the CI reaches beyond +-%g%%",
                 o->threshold);
    }
}

static void decide(const struct compare *c, struct row *r, const double *base, const double *new_)
{
    if (options_differ(r)) {
        not_paired(r);
        return;
    }
    r->ratio = r->ci_lo = r->ci_hi = r->p = NAN;
    r->median[BASE] = xr_median(base, r->n[BASE]);
    r->median[NEW] = xr_median(new_, r->n[NEW]);
    r->verdict = V_INCONCLUSIVE;
    if (r->n[BASE] == 0 || r->n[NEW] == 0)
        snprintf(r->why, sizeof r->why, "no values in %s", r->n[BASE] ? "NEW" : "BASE");
    else if (c->o.paired)
        xr_cmp_decide_paired(c, r);
    else
        decide_unpaired(&c->o, r, base, new_);
    xr_cmp_check_averaged(r);
}

/* --paired splits alpha evenly over the rows it judges (Bonferroni), so
 * that alpha bounds a false verdict anywhere in the comparison. Rows whose
 * sides ran with other options are never judged and are not counted. */
static void split_alpha(struct compare *c)
{
    size_t gated = 0;
    for (size_t i = 0; i < c->nrows; i++)
        gated += xr_cmp_gated(c->rows[i].kind) && !options_differ(&c->rows[i]);
    c->row_alpha = c->o.alpha / (double)(gated ? gated : 1);
}

/* One row per workload, direction with I/O and metric. */
static void make_rows(struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++) {
        const struct workload *w = &c->w[i];
        for (int d = 0; d < NDIR; d++) {
            int has_io = 0;
            for (int s = 0; s < NSIDE; s++)
                for (size_t j = 0; j < w->nruns[s]; j++)
                    has_io |= w->runs[s][j].ios[d] > 0;
            if (!has_io)
                continue;
            for (int k = 0; k < NKIND; k++) {
                c->rows = xrealloc(c->rows, (c->nrows + 1) * sizeof *c->rows);
                c->rows[c->nrows++] = (struct row){.w = w, .dir = d, .kind = k};
            }
        }
    }
}

static void compare_all(struct compare *c)
{
    size_t cap = 0;
    for (size_t i = 0; i < c->nw; i++)
        for (int s = 0; s < NSIDE; s++)
            cap = c->w[i].nruns[s] > cap ? c->w[i].nruns[s] : cap;
    double *v[NSIDE] = {xrealloc(NULL, cap * sizeof(double)), xrealloc(NULL, cap * sizeof(double))};
    make_rows(c);
    split_alpha(c);
    for (size_t i = 0; i < c->nrows; i++) {
        struct row *r = &c->rows[i];
        for (int s = 0; s < NSIDE; s++)
            r->n[s] = samples(r->w, s, r->dir, r->kind, v[s]);
        decide(c, r, v[BASE], v[NEW]);
    }
    free(v[BASE]);
    free(v[NEW]);
}

/* --- entry ----------------------------------------------------------------------- */

static void free_compare(struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++) {
        free(c->w[i].name);
        free(c->w[i].config);
        free(c->w[i].label);
        for (int s = 0; s < NSIDE; s++) {
            free(c->w[i].opts[s]);
            free(c->w[i].opts_from[s]);
        }
        for (int s = 0; s < NSIDE; s++) {
            for (size_t j = 0; j < c->w[i].nruns[s]; j++)
                for (int d = 0; d < NDIR; d++)
                    free(c->w[i].runs[s][j].parts[d]);
            free(c->w[i].runs[s]);
        }
    }
    free(c->w);
    free(c->rows);
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; c->config[s] && i < c->nloaded[s]; i++)
            free(c->config[s][i]);
        free(c->config[s]);
        free(c->round[s]);
        free(c->doc[s]);
        xr_set_free(&c->set[s]);
    }
    free(c->o.ignore);
}

/* Workloads on one side only are compared as "only in ..."; none shared
 * at all means the inputs are not two runs of one suite. */
static int check_overlap(const struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++)
        if (c->w[i].nruns[BASE] && c->w[i].nruns[NEW])
            return 0;
    return xr_cmp_fail("%s and %s have no workload (configuration and fio job name) in common", c->o.path[BASE],
                c->o.path[NEW]);
}

/* The table is the result: one that did not reach stdout (a full disk,
 * /dev/full) must not pass for one. 0, or 2 after one line. */
static int check_stdout(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    int err = errno ? errno : EIO;
    clearerr(stdout);
    return xr_cmp_fail("standard output: cannot write the table: %s", strerror(err));
}

int xr_compare_main(int argc, char **argv)
{
    struct compare c = {0};
    int rc = parse_args(argc, argv, &c.o);
    if (!rc)
        rc = check_outputs(&c.o);
    if (!rc)
        rc = load_side(&c, BASE);
    if (!rc)
        rc = load_side(&c, NEW);
    if (!rc)
        rc = add_sides(&c);
    if (!rc)
        xr_cmp_pool_percentiles(&c);
    if (!rc)
        rc = check_overlap(&c);
    if (!rc) {
        label_workloads(&c);
        compare_all(&c);
        if (c.o.decided)
            rc = xr_cmp_keep_decided(&c, c.o.decided);
    }
    if (!rc) {
        xr_cmp_print_table(&c);
        rc = check_stdout();
    }
    if (!rc) {
        if (c.o.junit)
            rc = xr_cmp_write_junit(&c, c.o.junit);
        if (!rc && c.o.metrics)
            rc = xr_cmp_write_openmetrics(&c, c.o.metrics);
        if (!rc && c.o.verdicts)
            rc = xr_cmp_write_verdicts(&c, c.o.verdicts);
    }
    if (!rc) {
        size_t count[NVERDICT];
        xr_cmp_count_verdicts(&c, count);
        rc = count[V_REGRESSION] ? 1 : count[V_INCONCLUSIVE] ? 3 : 0;
    }
    free_compare(&c);
    return rc;
}
