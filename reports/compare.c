/* compare.c - `xdreport compare BASE NEW`: per workload and metric, the
 * ratio of medians, a Mann-Whitney U test, a pairwise-ratio confidence
 * interval and a verdict; as a table, JUnit XML and OpenMetrics text.
 * The command's contract is in compare.h, the statistics in stats.c.
 */
#include "outfile.h"
#include "compare.h"
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "results.h"
#include "stats.h"

#define PROG "xdreport compare"
#define USAGE "usage: xdreport compare [--threshold PCT] [--alpha A] [--min-runs N] " \
              "[--junit FILE] [--metrics FILE] BASE NEW"

#define HELP USAGE "\n\n" \
    "Did NEW get slower than BASE? BASE and NEW are directories (or list files)\n" \
    "of fio JSON results, one file per run; jobs are grouped by name. For each\n" \
    "workload and metric (read/write iops, bw, clat_mean, clat_p50, clat_p99; lat_* when\n" \
    "the jobs set lat_percentiles=1):\n" \
    "  ratio    median(NEW) / median(BASE)\n" \
    "  CI       (1 - alpha) interval for the ratio from the order statistics of\n" \
    "           all pairwise NEW/BASE ratios (Hodges-Lehmann, no resampling)\n" \
    "  p        two-sided Mann-Whitney U test, exact up to 20 runs a side\n" \
    "  verdict  regression / improvement: p < alpha and the ratio beyond the\n" \
    "           threshold; same: the CI within +-threshold; else inconclusive\n" \
    "\n" \
    "  --threshold PCT  change that counts, in percent (5)\n" \
    "  --alpha A        significance level (0.05)\n" \
    "  --min-runs N     runs a side needed for a verdict (5)\n" \
    "  --junit FILE     JUnit XML: a testcase per row, regressions fail\n" \
    "  --metrics FILE   OpenMetrics text (xdevice_compare_ratio{...} ...)\n" \
    "\n" \
    "Exit status: 0 no regression, 1 a regression, 2 bad input.\n"

enum side { BASE, NEW, NSIDE };
static const char *const side_name[NSIDE] = {"BASE", "NEW"};

enum kind { K_IOPS, K_BW, K_CLAT_MEAN, K_CLAT_P50, K_CLAT_P99, NKIND };
static const struct {
    const char *name;
    int higher_is_better;
} kinds[NKIND] = {
    [K_IOPS] = {"iops", 1},          [K_BW] = {"bw", 1},
    [K_CLAT_MEAN] = {"clat_mean", 0}, [K_CLAT_P50] = {"clat_p50", 0},
    [K_CLAT_P99] = {"clat_p99", 0},
};
#define NDIR 2 /* read and write; trims are not compared */
static const char *const dir_name[NDIR] = {"read", "write"};
#define NLAT 3 /* the latency kinds, from K_CLAT_MEAN on */

/* fio times a request that the engine completes inside queue() (xdevice's
 * cached reads and tmpfs I/O under libaio/io_uring) only across its own
 * bookkeeping: some 40 ns, jittering by a quarter. Latencies this small on
 * both sides say nothing about the I/O, so they are shown but not judged. */
#define LAT_FLOOR_NS 250.0

enum verdict { V_REGRESSION, V_IMPROVEMENT, V_SAME, V_INCONCLUSIVE, NVERDICT };
static const char *const verdict_name[NVERDICT] = {"regression", "improvement", "same",
                                                   "inconclusive"};

struct opts {
    double threshold; /* percent */
    double alpha;
    long min_runs;
    const char *junit, *metrics;
    const char *path[NSIDE];
};

/* One workload's figures in one run. Latencies are kept as sums weighted by
 * I/O count, so jobs sharing a name in one document combine. */
struct run {
    double iops[NDIR], bw[NDIR], ios[NDIR];
    double lat_x_ios[NDIR][NLAT];
    size_t doc; /* index of the document it came from */
};

/* Which latency a workload's runs report: fio's completion latency, or its
 * total latency when the jobs set lat_percentiles=1 (the loader prefers it). */
enum lat_kind { LAT_UNSEEN, LAT_COMPLETION, LAT_TOTAL };

struct workload {
    char *name;
    enum lat_kind lat; /* the same in every run, or the comparison is refused */
    struct run *runs[NSIDE];
    size_t nruns[NSIDE];
};

struct row {
    const struct workload *w;
    int dir;
    enum kind kind;
    size_t n[NSIDE];
    double median[NSIDE];
    double ratio, ci_lo, ci_hi, p;
    int exact;
    enum verdict verdict;
    char why[160];
};

struct compare {
    struct opts o;
    struct workload *w;
    size_t nw;
    struct row *rows;
    size_t nrows;
    size_t nfiles[NSIDE];
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fail("out of memory");
        exit(2);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fail("out of memory");
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
        return fail("%s: '%s' is not allowed (%s)", opt, xr_escape(s, shown, sizeof(shown)), allowed);
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
                return fail("unexpected argument '%s'; allowed: BASE and NEW only (xdreport compare --help)",
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
        static const char *const known[] = {"--threshold", "--alpha", "--min-runs", "--junit",
                                            "--metrics"};
        int k = -1;
        for (int j = 0; j < 5; j++)
            if (strlen(known[j]) == len && !strncmp(a, known[j], len))
                k = j;
        if (k < 0)
            return fail("unknown option '%s' (allowed: --threshold, --alpha, --min-runs, "
                        "--junit, --metrics)", xr_escape(a, shown, sizeof(shown)));
        if (!val) {
            if (i + 1 >= argc)
                return fail("%s needs a value (xdreport compare --help)", known[k]);
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
                return fail("--min-runs: '%s' is not allowed (a whole number of runs from 1)",
                            xr_escape(val, shown, sizeof(shown)));
            o->min_runs = (long)d;
            break;
        case 3:
            o->junit = val;
            break;
        case 4:
            o->metrics = val;
            break;
        }
    }
    if (npos != NSIDE)
        return fail("BASE and NEW are both required; allowed: xdreport compare [OPTIONS] BASE NEW");
    return 0;
}

/* --- inputs ------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void add_file(char ***files, size_t *n, char *path)
{
    *files = xrealloc(*files, (*n + 1) * sizeof **files);
    (*files)[(*n)++] = path;
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = xrealloc(NULL, len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static int list_dir(const char *label, const char *path, char ***files, size_t *n)
{
    DIR *d = opendir(path);
    if (!d)
        return fail("%s %s: %s", label, path, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *f = join(path, e->d_name);
        if (is_regular(f))
            add_file(files, n, f);
        else
            free(f);
    }
    closedir(d);
    qsort(*files, *n, sizeof **files, cmp_str);
    if (*n == 0)
        return fail("%s %s: the directory holds no result files", label, path);
    return 0;
}

/* A list file names one existing file per line; fio output never looks like
 * that (it is JSON, possibly after notes that are not file names). Returns
 * 1 and fills files when path is one. */
static int read_list(const char *path, char ***files, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;
    char *line = NULL;
    size_t cap = 0;
    int is_list = 1;
    while (is_list && getline(&line, &cap, f) >= 0) {
        char *s = line + strspn(line, " \t\r\n"), *end = s + strlen(s);
        while (end > s && strchr(" \t\r\n", end[-1]))
            *--end = 0;
        if (!*s || *s == '#')
            continue;
        char *p = *s == '/' ? xstrdup(s) : join(*dir ? dir : ".", s);
        if (*s == '{' || !is_regular(p)) {
            free(p);
            is_list = 0;
            break;
        }
        add_file(files, n, p);
    }
    free(line);
    free(dir);
    fclose(f);
    if (!is_list || *n == 0) {
        for (size_t i = 0; i < *n; i++)
            free((*files)[i]);
        *n = 0;
        return 0;
    }
    return 1;
}

static int list_inputs(const char *label, const char *path, char ***files, size_t *n)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail("%s %s: %s", label, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return list_dir(label, path, files, n);
    if (!S_ISREG(st.st_mode))
        return fail("%s %s: not a directory, list file or results file", label, path);
    if (!read_list(path, files, n))
        add_file(files, n, xstrdup(path));
    return 0;
}

static struct workload *find_workload(struct compare *c, const char *name)
{
    for (size_t i = 0; i < c->nw; i++)
        if (!strcmp(c->w[i].name, name))
            return &c->w[i];
    c->w = xrealloc(c->w, (c->nw + 1) * sizeof *c->w);
    struct workload *w = &c->w[c->nw++];
    *w = (struct workload){.name = xstrdup(name)};
    return w;
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

static int add_doc(struct compare *c, enum side s, const struct xr_doc *doc, size_t docno)
{
    for (size_t j = 0; j < doc->njobs; j++) {
        const struct xr_job *job = &doc->jobs[j];
        if (!job->name)
            return fail("%s: a job without a name", doc->source);
        if (job->error)
            return fail("%s: job '%s' failed with error %d (%s); its figures are no sample",
                        doc->source, job->name, job->error, strerror(job->error));
        struct workload *w = find_workload(c, job->name);
        struct run *r = w->nruns[s] ? &w->runs[s][w->nruns[s] - 1] : NULL;
        if (!r || r->doc != docno) {
            w->runs[s] = xrealloc(w->runs[s], (w->nruns[s] + 1) * sizeof *w->runs[s]);
            r = &w->runs[s][w->nruns[s]++];
            *r = (struct run){.doc = docno};
        }
        for (int d = 0; d < NDIR; d++) {
            const struct xr_dir *x = &job->dir[d == 0 ? XR_READ : XR_WRITE];
            enum lat_kind lat = x->total_lat ? LAT_TOTAL : LAT_COMPLETION;
            if (x->total_ios && w->lat != LAT_UNSEEN && w->lat != lat)
                return fail("%s: job '%s' reports %s latency, other runs %s latency; allowed: "
                            "lat_percentiles=1 in every run or in none",
                            doc->source, job->name, lat == LAT_TOTAL ? "total" : "completion",
                            lat == LAT_TOTAL ? "completion" : "total");
            if (x->total_ios)
                w->lat = lat;
            r->iops[d] += x->iops;
            r->bw[d] += x->bw_bytes;
            r->ios[d] += (double)x->total_ios;
            for (int k = 0; k < NLAT; k++)
                r->lat_x_ios[d][k] += lat_value(x, k) * (double)x->total_ios;
        }
    }
    return 0;
}

/* Load one side: every file is a run; of a stream, its last document. */
static int load_side(struct compare *c, enum side s)
{
    const char *label = side_name[s], *path = c->o.path[s];
    char **files = NULL, err[1024];
    size_t nfiles = 0, ndocs = 0;
    struct xr_set set = {0};
    int rc = list_inputs(label, path, &files, &nfiles);
    for (size_t i = 0; !rc && i < nfiles; i++) {
        size_t before = set.ndocs;
        err[0] = 0;
        if (xr_load(&set, files[i], err, sizeof err) != 0) {
            const char *msg = err[0] ? err : files[i];
            if (!strncmp(msg, "xdreport: ", 10)) /* the loader's own prefix */
                msg += 10;
            rc = fail("%s", msg);
            break;
        }
        if (set.ndocs > before) {
            rc = add_doc(c, s, &set.docs[set.ndocs - 1], ndocs++);
        }
    }
    if (!rc && ndocs == 0)
        rc = fail("%s %s: no fio JSON results among its %zu file(s)", label, path, nfiles);
    c->nfiles[s] = ndocs;
    xr_set_free(&set);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return rc;
}

/* --- the comparison ------------------------------------------------------------ */

/* The samples of one metric on one side: NaNs (latency of a run without I/O
 * in that direction, or a percentile fio did not report) are left out. */
static size_t samples(const struct workload *w, enum side s, int d, enum kind k, double *out)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nruns[s]; i++) {
        const struct run *r = &w->runs[s][i];
        double v;
        if (k == K_IOPS)
            v = r->iops[d];
        else if (k == K_BW)
            v = r->bw[d];
        else
            v = r->ios[d] > 0 ? r->lat_x_ios[d][k - K_CLAT_MEAN] / r->ios[d] : NAN;
        if (isfinite(v))
            out[n++] = v;
    }
    return n;
}

static void decide(const struct opts *o, struct row *r, const double *base, const double *new_)
{
    double t = o->threshold / 100, lo = 1 - t, hi = 1 + t;
    int hib = kinds[r->kind].higher_is_better;
    r->ratio = r->ci_lo = r->ci_hi = r->p = NAN;
    r->median[BASE] = xr_median(base, r->n[BASE]);
    r->median[NEW] = xr_median(new_, r->n[NEW]);
    r->verdict = V_INCONCLUSIVE;
    if (r->n[BASE] == 0 || r->n[NEW] == 0) {
        snprintf(r->why, sizeof r->why, "no values in %s", r->n[BASE] ? "NEW" : "BASE");
        return;
    }
    if (r->median[BASE] > 0)
        r->ratio = r->median[NEW] / r->median[BASE];
    struct xr_mwu u;
    if (xr_mwu(new_, r->n[NEW], base, r->n[BASE], &u) == 0) {
        r->p = u.p;
        r->exact = u.exact;
    }
    xr_ratio_ci(base, r->n[BASE], new_, r->n[NEW], o->alpha, &r->ci_lo, &r->ci_hi);
    if ((long)r->n[BASE] < o->min_runs || (long)r->n[NEW] < o->min_runs) {
        snprintf(r->why, sizeof r->why, "fewer than %ld runs: BASE %zu, NEW %zu", o->min_runs,
                 r->n[BASE], r->n[NEW]);
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
    int worse = hib ? r->ratio < lo : r->ratio > hi;
    int better = hib ? r->ratio > hi : r->ratio < lo;
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
    } else if (significant) {
        snprintf(r->why, sizeof r->why, "significant but the ratio is within +-%g%% and the CI "
                 "is not", o->threshold);
    } else {
        snprintf(r->why, sizeof r->why, "not significant and the CI reaches beyond +-%g%%",
                 o->threshold);
    }
}

static void compare_all(struct compare *c)
{
    size_t cap = 0;
    for (size_t i = 0; i < c->nw; i++)
        for (int s = 0; s < NSIDE; s++)
            cap = c->w[i].nruns[s] > cap ? c->w[i].nruns[s] : cap;
    double *v[NSIDE] = {xrealloc(NULL, cap * sizeof(double)), xrealloc(NULL, cap * sizeof(double))};
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
                struct row *r = &c->rows[c->nrows++];
                *r = (struct row){.w = w, .dir = d, .kind = k};
                for (int s = 0; s < NSIDE; s++)
                    r->n[s] = samples(w, s, d, k, v[s]);
                decide(&c->o, r, v[BASE], v[NEW]);
            }
        }
    }
    free(v[BASE]);
    free(v[NEW]);
}

/* --- output ------------------------------------------------------------------ */

/* Latency metrics are named for what was measured: clat_* or, for total
 * latency, lat_* ("clat_p99" without its "c"). */
static const char *metric_name(const struct row *r, char *buf, size_t len)
{
    const char *kind = kinds[r->kind].name;
    if (r->kind >= K_CLAT_MEAN && r->w->lat == LAT_TOTAL)
        kind++;
    snprintf(buf, len, "%s_%s", dir_name[r->dir], kind);
    return buf;
}

static const char *fmt_value(enum kind k, double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (k == K_IOPS)
        snprintf(buf, len, v >= 1e6 ? "%.2fM" : v >= 1e4 ? "%.1fk" : "%.0f",
                 v >= 1e6 ? v / 1e6 : v >= 1e4 ? v / 1e3 : v);
    else if (k == K_BW)
        snprintf(buf, len, "%.1fMiB/s", v / (1024 * 1024));
    else
        snprintf(buf, len, v >= 1e6 ? "%.2fms" : v >= 1e3 ? "%.2fus" : "%.0fns",
                 v >= 1e6 ? v / 1e6 : v >= 1e3 ? v / 1e3 : v);
    return buf;
}

static const char *fmt_ratio(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.3f", v);
    return buf;
}

static const char *fmt_ci(const struct row *r, char *buf, size_t len)
{
    if (isnan(r->ci_lo))
        snprintf(buf, len, "-");
    else if (isinf(r->ci_hi))
        snprintf(buf, len, "[%.3f, inf]", r->ci_lo);
    else
        snprintf(buf, len, "[%.3f, %.3f]", r->ci_lo, r->ci_hi);
    return buf;
}

static const char *fmt_p(double p, char *buf, size_t len)
{
    if (isnan(p))
        snprintf(buf, len, "-");
    else if (p < 0.0001)
        snprintf(buf, len, "<0.0001");
    else
        snprintf(buf, len, "%.4f", p);
    return buf;
}

static void count_verdicts(const struct compare *c, size_t count[NVERDICT])
{
    memset(count, 0, NVERDICT * sizeof *count);
    for (size_t i = 0; i < c->nrows; i++)
        count[c->rows[i].verdict]++;
}

static void print_table(const struct compare *c)
{
    const struct opts *o = &c->o;
    int ww = 8;
    for (size_t i = 0; i < c->nw; i++)
        ww = (int)strlen(c->w[i].name) > ww ? (int)strlen(c->w[i].name) : ww;
    int level = (int)lround((1 - o->alpha) * 100);
    printf("BASE %s (%zu runs)\nNEW  %s (%zu runs)\n", o->path[BASE], c->nfiles[BASE],
           o->path[NEW], c->nfiles[NEW]);
    printf("threshold %g%%, alpha %g, at least %ld runs a side; p: two-sided Mann-Whitney U "
           "(exact up to %d runs a side); CI: %g%% for NEW/BASE from the order statistics of "
           "all pairwise ratios (Hodges-Lehmann)\n\n",
           o->threshold, o->alpha, o->min_runs, XR_MWU_EXACT_MAX, (1 - o->alpha) * 100);
    char ci_head[16];
    snprintf(ci_head, sizeof ci_head, "%d%% CI", level);
    printf("%-*s  %-15s %5s %12s %12s %7s  %-16s %7s  %s\n", ww, "workload", "metric", "runs",
           "base", "new", "ratio", ci_head, "p", "verdict");
    for (size_t i = 0; i < c->nrows; i++) {
        const struct row *r = &c->rows[i];
        char m[32], b[32], n[32], ci[48], p[16], runs[24], ratio[16];
        snprintf(runs, sizeof runs, "%zu/%zu", r->n[BASE], r->n[NEW]);
        fmt_ratio(r->ratio, ratio, sizeof ratio);
        printf("%-*s  %-15s %5s %12s %12s %7s  %-16s %7s  %s%s%s%s\n", ww, r->w->name,
               metric_name(r, m, sizeof m), runs, fmt_value(r->kind, r->median[BASE], b, sizeof b),
               fmt_value(r->kind, r->median[NEW], n, sizeof n), ratio, fmt_ci(r, ci, sizeof ci),
               fmt_p(r->p, p, sizeof p), verdict_name[r->verdict],
               r->verdict == V_INCONCLUSIVE ? " (" : "",
               r->verdict == V_INCONCLUSIVE ? r->why : "",
               r->verdict == V_INCONCLUSIVE ? ")" : "");
    }
    size_t count[NVERDICT];
    count_verdicts(c, count);
    printf("\n%zu regression(s), %zu improvement(s), %zu same, %zu inconclusive\n",
           count[V_REGRESSION], count[V_IMPROVEMENT], count[V_SAME], count[V_INCONCLUSIVE]);
    if (count[V_REGRESSION]) {
        printf("REGRESSION:");
        for (size_t i = 0; i < c->nrows; i++) {
            char m[32];
            if (c->rows[i].verdict == V_REGRESSION)
                printf(" %s/%s", c->rows[i].w->name, metric_name(&c->rows[i], m, sizeof m));
        }
        printf("\n");
    } else {
        printf("no regression beyond %g%%\n", o->threshold);
    }
}

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* XML 1.0 allows no other control characters */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
                fputc('?', f);
            else
                fputc(*s, f);
        }
    }
}

static void row_summary(const struct row *r, char *buf, size_t len)
{
    char b[32], n[32], ci[48], p[16], ratio[16];
    snprintf(buf, len, "%s: BASE median %s (%zu runs), NEW median %s (%zu runs), ratio %s, "
             "CI %s, p %s%s; %s", verdict_name[r->verdict],
             fmt_value(r->kind, r->median[BASE], b, sizeof b), r->n[BASE],
             fmt_value(r->kind, r->median[NEW], n, sizeof n), r->n[NEW],
             fmt_ratio(r->ratio, ratio, sizeof ratio),
             fmt_ci(r, ci, sizeof ci), fmt_p(r->p, p, sizeof p),
             isnan(r->p) ? "" : r->exact ? " (exact)" : " (normal approximation)", r->why);
}

static int close_file(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return fail("%s: write failed: %s", path, strerror(errno ? errno : EIO));
    return 0;
}

static int write_junit(const struct compare *c, const char *path)
{
    FILE *f = xr_out_open(path);
    if (!f)
        return fail("--junit %s: %s", path, xr_out_strerror(errno));
    size_t count[NVERDICT];
    count_verdicts(c, count);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"xdreport compare\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"0\" skipped=\"%zu\">\n", c->nrows, count[V_REGRESSION],
            count[V_INCONCLUSIVE]);
    fprintf(f, "  <testsuite name=\"xdreport compare\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"0\" skipped=\"%zu\" time=\"0\">\n", c->nrows, count[V_REGRESSION],
            count[V_INCONCLUSIVE]);
    fprintf(f, "    <properties>\n      <property name=\"base\" value=\"");
    xml_escaped(f, c->o.path[BASE]);
    fprintf(f, "\"/>\n      <property name=\"new\" value=\"");
    xml_escaped(f, c->o.path[NEW]);
    fprintf(f, "\"/>\n      <property name=\"threshold_percent\" value=\"%g\"/>\n"
            "      <property name=\"alpha\" value=\"%g\"/>\n    </properties>\n",
            c->o.threshold, c->o.alpha);
    for (size_t i = 0; i < c->nrows; i++) {
        const struct row *r = &c->rows[i];
        char m[32], sum[512];
        row_summary(r, sum, sizeof sum);
        fprintf(f, "    <testcase classname=\"");
        xml_escaped(f, r->w->name);
        fprintf(f, "\" name=\"%s\" time=\"0\">\n", metric_name(r, m, sizeof m));
        if (r->verdict == V_REGRESSION) {
            fprintf(f, "      <failure type=\"regression\" message=\"");
            xml_escaped(f, r->why);
            fprintf(f, "\">");
            xml_escaped(f, sum);
            fprintf(f, "</failure>\n");
        } else if (r->verdict == V_INCONCLUSIVE) {
            fprintf(f, "      <skipped message=\"inconclusive: ");
            xml_escaped(f, r->why);
            fprintf(f, "\"/>\n");
        }
        fprintf(f, "      <system-out>");
        xml_escaped(f, sum);
        fprintf(f, "</system-out>\n    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    return close_file(f, path);
}

static void om_labels(FILE *f, const struct row *r)
{
    char m[32];
    fputs("{workload=\"", f);
    for (const char *s = r->w->name; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fprintf(f, "\",metric=\"%s\"", metric_name(r, m, sizeof m));
}

static void om_value(FILE *f, double v)
{
    if (isnan(v))
        fputs(" NaN\n", f);
    else if (isinf(v))
        fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
    else
        fprintf(f, " %.10g\n", v);
}

static int write_openmetrics(const struct compare *c, const char *path)
{
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"xdevice_compare_ratio", "NEW/BASE ratio of medians."},
        {"xdevice_compare_ratio_ci_low", "Lower end of the confidence interval for NEW/BASE."},
        {"xdevice_compare_ratio_ci_high", "Upper end of the confidence interval for NEW/BASE."},
        {"xdevice_compare_p_value", "Two-sided Mann-Whitney U p-value."},
        {"xdevice_compare_base_median", "Median over BASE runs (IOPS, bytes/s or ns)."},
        {"xdevice_compare_new_median", "Median over NEW runs (IOPS, bytes/s or ns)."},
        {"xdevice_compare_base_runs", "Runs with a value in BASE."},
        {"xdevice_compare_new_runs", "Runs with a value in NEW."},
    };
    FILE *f = xr_out_open(path);
    if (!f)
        return fail("--metrics %s: %s", path, xr_out_strerror(errno));
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        fprintf(f, "# TYPE %s gauge\n# HELP %s %s\n", fam[k].name, fam[k].name, fam[k].help);
        for (size_t i = 0; i < c->nrows; i++) {
            const struct row *r = &c->rows[i];
            double v[] = {r->ratio,        r->ci_lo,        r->ci_hi,         r->p,
                          r->median[BASE], r->median[NEW], (double)r->n[BASE], (double)r->n[NEW]};
            fputs(fam[k].name, f);
            om_labels(f, r);
            fputc('}', f);
            om_value(f, v[k]);
        }
    }
    fprintf(f, "# TYPE xdevice_compare_verdict stateset\n"
            "# HELP xdevice_compare_verdict Verdict for the workload and metric.\n");
    for (size_t i = 0; i < c->nrows; i++)
        for (int v = 0; v < NVERDICT; v++) {
            fputs("xdevice_compare_verdict", f);
            om_labels(f, &c->rows[i]);
            fprintf(f, ",xdevice_compare_verdict=\"%s\"} %d\n", verdict_name[v],
                    (int)c->rows[i].verdict == v);
        }
    size_t count[NVERDICT];
    count_verdicts(c, count);
    fprintf(f, "# TYPE xdevice_compare_regressions gauge\n"
            "# HELP xdevice_compare_regressions Comparisons with a regression beyond the "
            "threshold.\nxdevice_compare_regressions %zu\n# EOF\n", count[V_REGRESSION]);
    return close_file(f, path);
}

/* --- entry ----------------------------------------------------------------------- */

static void free_compare(struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++) {
        free(c->w[i].name);
        free(c->w[i].runs[BASE]);
        free(c->w[i].runs[NEW]);
    }
    free(c->w);
    free(c->rows);
}

/* Workloads on one side only are compared as "only in ..."; none shared
 * at all means the inputs are not two runs of one suite. */
static int check_overlap(const struct compare *c)
{
    for (size_t i = 0; i < c->nw; i++)
        if (c->w[i].nruns[BASE] && c->w[i].nruns[NEW])
            return 0;
    return fail("%s and %s have no workload (fio job name) in common", c->o.path[BASE],
                c->o.path[NEW]);
}

int xr_compare_main(int argc, char **argv)
{
    struct compare c = {0};
    int rc = parse_args(argc, argv, &c.o);
    if (!rc)
        rc = load_side(&c, BASE);
    if (!rc)
        rc = load_side(&c, NEW);
    if (!rc)
        rc = check_overlap(&c);
    if (!rc) {
        compare_all(&c);
        print_table(&c);
        fflush(stdout);
        if (c.o.junit)
            rc = write_junit(&c, c.o.junit);
        if (!rc && c.o.metrics)
            rc = write_openmetrics(&c, c.o.metrics);
    }
    if (!rc) {
        size_t count[NVERDICT];
        count_verdicts(&c, count);
        rc = count[V_REGRESSION] ? 1 : 0;
    }
    free_compare(&c);
    return rc;
}
