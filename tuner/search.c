/* search.c - xdtune search: the start config, warm-start rules, then a
 * Gaussian-process model (or random or grid search) picks each next trial;
 * the best few are measured again before a winner is declared.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "xdtune.h"
#include "../backends/core/fileutil.h"

struct rec {                 /* one distinct candidate and its measurements */
    struct xt_point p;
    struct xt_figures meas[XT_MAX_MEAS];
    unsigned nmeas;
    int failed;
    struct xt_figures median;
    double score;
};

struct search {
    const struct xt_search_opts *o;
    struct xt_space space;
    struct xt_job job;
    struct xd_config *start;
    struct xt_history *hist;
    struct rec *recs;
    unsigned nrecs, cap;
    unsigned trials, planned;  /* fio runs so far / in all (search + re-measures) */
    int best;                  /* index in recs, -1 none (pick_best) */
    int final[64];             /* the finalists' indices in recs, once chosen */
    unsigned nfinal;           /* 0: still searching */
    double started;
    char history_path[4096];
    unsigned long rng;
    struct xt_hosts hosts;     /* --hosts: n 0 runs trials locally, one at a time */
    struct xt_figures ref[XT_MAX_HOSTS]; /* each host's run of the start config */
    unsigned calibration;      /* reference runs past the first: outside the budget */
    char trials_dir[4200];     /* absolute with --hosts: the servers read the INIs there */
    char ref_err[XD_ERRLEN];   /* the first reference run's failure */
};

/* Trials run at once: one per host. */
static unsigned width(const struct search *S)
{
    return S->hosts.n ? S->hosts.n : 1;
}

/* Trials counted against --budget. */
static unsigned spent(const struct search *S)
{
    return S->trials - S->calibration;
}

static unsigned budget_left(const struct search *S, unsigned want)
{
    unsigned left = S->o->budget > spent(S) ? S->o->budget - spent(S) : 0;
    return want < left ? want : left;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: a seeded stream, so --seed repeats a search. */
static double rnd(struct search *S)
{
    S->rng ^= S->rng >> 12;
    S->rng ^= S->rng << 25;
    S->rng ^= S->rng >> 27;
    return (double)((S->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, unsigned n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Each figure's median over the measurements: one slow run does not decide. */
static void rec_update(struct search *S, struct rec *r)
{
    double v[XT_MAX_MEAS];
    unsigned n = r->nmeas;
#define MED(field)                                  \
    for (unsigned i = 0; i < n; i++)                \
        v[i] = r->meas[i].field;                    \
    r->median.field = median_of(v, n);
    MED(iops) MED(lat_us) MED(p99_us) MED(write_lat_us) MED(cache_hit) MED(compress_ratio)
    MED(seconds)
#undef MED
    r->score = xt_score(&S->o->goal, &r->median);
}

static int rec_find(struct search *S, const struct xt_point *p)
{
    for (unsigned i = 0; i < S->nrecs; i++)
        if (xt_point_equal(&S->space, &S->recs[i].p, p))
            return (int)i;
    return -1;
}

static int is_finalist(const struct search *S, unsigned i)
{
    for (unsigned k = 0; k < S->nfinal; k++)
        if (S->final[k] == (int)i)
            return 1;
    return 0;
}

/* Whether record i is in the running for the best so far: while
 * searching, any that ran without failing; once the finalists are chosen,
 * they alone, judged on the runs they have (a failed re-measure adds none). */
static int contender(const struct search *S, unsigned i)
{
    if (!S->recs[i].nmeas)
        return 0;
    return S->nfinal ? is_finalist(S, i) : !S->recs[i].failed;
}

/* The best so far. While searching, of every record: each has one run, so
 * like is compared with like. Once the finalists are chosen, of them alone,
 * on their medians: a single lucky run of a configuration left out of the
 * finalists must not outrank the medians they are judged on; and it is the
 * winner report() declares, so the last trial's best is the winner. */
static void pick_best(struct search *S)
{
    S->best = -1;
    for (unsigned i = 0; i < S->nrecs; i++)
        if (contender(S, i) &&
            (S->best < 0 || xt_compare(&S->o->goal, &S->recs[i].median, &S->recs[S->best].median) < 0))
            S->best = (int)i;
}

static void progress(struct search *S, unsigned k, const char *phase, const struct rec *r,
                     const char *error, const char *host)
{
    if (S->o->quiet)
        return;
    double spent = now_s() - S->started, left = spent / k * (S->planned - k);
    const struct xt_figures *f = &r->meas[r->nmeas ? r->nmeas - 1 : 0];
    printf("xdtune: trial %u of %u [%s]%s%s ", k, S->planned, phase, host ? " on " : "",
           host ? host : "");
    if (error)
        printf("FAILED: %s", error);
    else
        printf("iops %.0f, p99 %.0f us%s", f->iops, f->p99_us, host ? " (rescaled)" : "");
    if (S->best >= 0) { /* said how many runs it stands on: one, or a median */
        const struct rec *b = &S->recs[S->best];
        printf(" | best so far%s: iops %.0f, p99 %.0f us, ", S->nfinal ? " among the finalists" : "",
               b->median.iops, b->median.p99_us);
        if (b->nmeas == 1)
            printf("one run");
        else
            printf("median of %u runs", b->nmeas);
        printf("%s", !xt_goal_any(&S->o->goal) ? ""
                     : xt_gap(&S->o->goal, &b->median) == 0 ? " (targets met)" : " (targets not met)");
    }
    printf(" | about %.0f s left\n", left);
    fflush(stdout);
}

/* Config header: what the file is; the figures go into best.ini's. Every
 * trial, the start one included, runs exactly p: a record pools the runs
 * of one configuration, and history.json names p as what ran. */
static int write_candidate(struct search *S, const struct xt_point *p, const char *path,
                           char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_dup(S->start);
    if (!cfg)
        return -ENOMEM;
    int rc = xt_space_apply(&S->space, p, cfg, err, errlen);
    if (!rc)
        rc = xt_config_save(cfg, path, "xdtune candidate", err, errlen);
    xd_config_free(cfg);
    return rc;
}

static void record_changes(struct search *S, unsigned trial, const struct rec *r)
{
    if (S->best < 0)
        return;
    const struct rec *b = &S->recs[S->best];
    const char *metric = S->o->goal.minimize_p99 ? "p99_us" : "iops";
    double before = S->o->goal.minimize_p99 ? b->median.p99_us : b->median.iops;
    double after = r->failed ? NAN : S->o->goal.minimize_p99 ? r->meas[r->nmeas - 1].p99_us
                                                             : r->meas[r->nmeas - 1].iops;
    for (unsigned i = 0; i < S->space.n; i++)
        if (b->p.idx[i] != r->p.idx[i])
            xt_history_change(S->hist, trial, S->space.dim[i].key,
                              S->space.dim[i].vals[b->p.idx[i]], S->space.dim[i].vals[r->p.idx[i]],
                              metric, before, after);
}

static int rec_slot(struct search *S, const struct xt_point *p)
{
    int i = rec_find(S, p);
    if (i >= 0)
        return i;
    if (S->nrecs == S->cap) {
        S->cap = S->cap * 2 + 16;
        S->recs = realloc(S->recs, S->cap * sizeof(*S->recs));
    }
    i = (int)S->nrecs++;
    memset(&S->recs[i], 0, sizeof(S->recs[i]));
    S->recs[i].p = *p;
    return i;
}

/* One trial that has run: into its record (unless it only calibrates a
 * host), the history and the progress line. */
static void record(struct search *S, unsigned k, const struct xt_point *p, unsigned host,
                   const char *phase, const char *ini, const struct xt_figures *raw, int rc,
                   const char *err, int calibration_only)
{
    struct xt_figures f = *raw;
    if (!rc && S->hosts.n)
        xt_hosts_normalise(&S->ref[0], &S->ref[host], &f);
    struct rec *r = NULL, scratch = {.p = *p};
    if (calibration_only) {
        r = &scratch;
        r->failed = rc != 0;
        if (!rc)
            r->meas[r->nmeas++] = f;
    } else {
        int i = rec_slot(S, p); /* before S->recs is read: it may move */
        r = &S->recs[i];
        if (rc) {
            r->failed = 1;
        } else if (r->nmeas < XT_MAX_MEAS) {
            r->meas[r->nmeas++] = f;
            rec_update(S, r);
        }
        record_changes(S, k, r);
        pick_best(S);
    }
    double best_obj = S->best >= 0 ? xt_objective(&S->o->goal, &S->recs[S->best].median) : NAN;
    xt_history_trial(S->hist, k, phase, ini, &S->space, p, raw, rc ? 0 : xt_score(&S->o->goal, &f),
                     best_obj, rc ? err : NULL);
    if (S->best >= 0)
        xt_history_trial_best(S->hist, S->nfinal ? "finalists" : "search",
                              S->recs[S->best].nmeas);
    if (S->hosts.n)
        xt_history_trial_host(S->hist, S->hosts.name[host], rc ? NULL : &f);
    char herr[XD_ERRLEN];
    if (xt_history_write(S->hist, S->history_path, herr, sizeof(herr)))
        fprintf(stderr, "xdtune: %s\n", herr);
    progress(S, k, phase, r, rc ? err : NULL, S->hosts.n ? S->hosts.name[host] : NULL);
}

/* n fio runs at once (n <= width), the i-th on host i; each of pts.
 * calibrate: the start point's reference run on every host (only the
 * first host's goes into the search's records). */
static void run_batch(struct search *S, const struct xt_point *pts, unsigned n,
                      const char *phase, int calibrate)
{
    struct batch {
        char ini[4400], err[XD_ERRLEN];
        unsigned k;
        int rc, started;
        struct xt_run run;
        struct xt_figures f;
    } *b = calloc(n, sizeof(*b));
    if (!b) {
        fprintf(stderr, "xdtune: out of memory\n");
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        char prefix[4300];
        b[i].k = ++S->trials;
        snprintf(prefix, sizeof(prefix), "%s/%03u", S->trials_dir, b[i].k);
        snprintf(b[i].ini, sizeof(b[i].ini), "%s.ini", prefix);
        /* trials/ is ours and its files are made anew: whatever is at the
         * name goes first (a link itself, never what it points to) */
        int rc = unlink(b[i].ini) && errno != ENOENT ? -errno : 0;
        if (rc)
            xd_errf(b[i].err, sizeof(b[i].err), "%.300s: cannot replace it: %s", b[i].ini,
                    strerror(-rc));
        else
            rc = write_candidate(S, &pts[i], b[i].ini, b[i].err, sizeof(b[i].err));
        if (!rc)
            rc = xt_trial_start(&S->job, b[i].ini, prefix, S->hosts.n ? S->hosts.name[i] : NULL,
                                &b[i].run, b[i].err, sizeof(b[i].err));
        b[i].rc = rc;
        b[i].started = !rc;
    }
    for (unsigned i = 0; i < n; i++)
        if (b[i].started)
            b[i].rc = xt_trial_finish(&b[i].run, S->o->trial_timeout, &b[i].f, b[i].err,
                                      sizeof(b[i].err));
    if (calibrate)
        for (unsigned i = 0; i < n; i++) {
            S->ref[i] = b[i].f;
            if (b[i].rc && !*S->ref_err)
                snprintf(S->ref_err, sizeof(S->ref_err), "%s", b[i].err);
        }
    for (unsigned i = 0; i < n; i++)
        record(S, b[i].k, &pts[i], i, phase, b[i].ini, &b[i].f, b[i].rc, b[i].err,
               calibrate && i > 0);
    free(b);
}

/* One fio run of p. Returns the record. */
static struct rec *run_trial(struct search *S, const struct xt_point *p, const char *phase)
{
    run_batch(S, p, 1, phase, 0);
    return &S->recs[rec_find(S, p)];
}

/* The start config, run once on every host at the same time: the first
 * host's run is the search's start trial, every host's its reference
 * (hosts.c). A host that cannot run it stops the search: its figures could
 * not be compared. Returns the start record, NULL when one failed. */
static struct rec *run_reference(struct search *S, const struct xt_point *start, char *err,
                                 size_t errlen)
{
    if (!S->hosts.n)
        return run_trial(S, start, "start");
    struct xt_point pts[XT_MAX_HOSTS];
    for (unsigned i = 0; i < S->hosts.n; i++)
        pts[i] = *start;
    unsigned first = S->trials + 1;
    run_batch(S, pts, S->hosts.n, "start (reference on every host)", 1);
    S->calibration += S->hosts.n - 1;
    for (unsigned i = 0; i < S->hosts.n; i++)
        if (S->ref[i].iops <= 0) {
            /* the server's own reason when it gave one (it names the host) */
            const char *why = *S->ref_err ? S->ref_err : "it completed no I/O";
            int named = strstr(why, S->hosts.name[i]) != NULL;
            xd_errf(err, errlen, "the start config's reference run (trial %u) failed%s%.100s: %.380s",
                    first + i, named ? "" : " on fio server ", named ? "" : S->hosts.name[i], why);
            return NULL;
        }
    return &S->recs[rec_find(S, start)];
}

/* --- choosing the next point ------------------------------------------------------ */

/* Combinations the library refuses (use_direct_io=false with the direct
 * type...) are never tried: checking costs microseconds, a trial seconds. */
static int point_valid(struct search *S, const struct xt_point *p)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_dup(S->start);
    int ok = cfg && xt_space_apply(&S->space, p, cfg, err, sizeof(err)) == 0;
    xd_config_free(cfg);
    return ok;
}

static int enumerable(const struct xt_space *s)
{
    return xt_space_size(s) <= 20000;
}

/* Candidates not yet measured: the whole space when it is small, else a
 * random sample plus every one-step neighbour of the best. */
static unsigned candidates(struct search *S, struct xt_point *out, unsigned max)
{
    unsigned n = 0;
    struct xt_point p;
    if (enumerable(&S->space)) {
        double size = xt_space_size(&S->space);
        for (double i = 0; i < size && n < max; i++) {
            xt_space_point(&S->space, i, &p);
            if (rec_find(S, &p) < 0 && point_valid(S, &p))
                out[n++] = p;
        }
        return n;
    }
    if (S->best >= 0)
        for (unsigned d = 0; d < S->space.n; d++)
            for (int step = -1; step <= 1; step += 2) {
                p = S->recs[S->best].p;
                int v = (int)p.idx[d] + step;
                if (v < 0 || v >= (int)S->space.dim[d].nvals)
                    continue;
                p.idx[d] = (unsigned)v;
                if (n < max && rec_find(S, &p) < 0 && point_valid(S, &p))
                    out[n++] = p;
            }
    unsigned sample = n + 4000 < max ? n + 4000 : max;
    for (unsigned tries = 0; n < sample && tries < sample * 2; tries++) {
        for (unsigned d = 0; d < S->space.n; d++)
            p.idx[d] = (unsigned)(rnd(S) * S->space.dim[d].nvals);
        if (rec_find(S, &p) < 0 && point_valid(S, &p))
            out[n++] = p;
    }
    return n;
}

/* Expected improvement under a GP fitted to every trial so far; failed
 * trials count as a little worse than the worst success, steering away.
 * The k candidates of highest EI (k > 1: one per host, run at once; they
 * are then picked from one model, without the others' results). Returns
 * how many, 0 when none is left. */
static unsigned model_next(struct search *S, struct xt_point *next, unsigned k)
{
    enum { MAXC = 20000 };
    struct xt_point *cand = malloc(MAXC * sizeof(*cand));
    unsigned nc = cand ? candidates(S, cand, MAXC) : 0;
    unsigned w = xt_space_width(&S->space), n = S->nrecs;
    double *X = malloc((size_t)n * w * sizeof(double)), *y = malloc(n * sizeof(double));
    double worst = INFINITY, best = -INFINITY, x[w], top[k];
    int found[k];
    unsigned nfound = 0;
    for (unsigned i = 0; i < n; i++)
        if (!S->recs[i].failed && S->recs[i].nmeas)
            worst = fmin(worst, S->recs[i].score);
    for (unsigned i = 0; X && y && i < n; i++) {
        xt_space_encode(&S->space, &S->recs[i].p, X + (size_t)i * w);
        y[i] = S->recs[i].failed || !S->recs[i].nmeas ? (isfinite(worst) ? worst - 1 : 0)
                                                      : S->recs[i].score;
        best = fmax(best, y[i]);
    }
    struct xt_gp gp;
    if (nc && X && y && xt_gp_fit(&gp, X, y, n, w) == 0) {
        for (unsigned c = 0; c < nc; c++) {
            double m, sd;
            xt_space_encode(&S->space, &cand[c], x);
            xt_gp_predict(&gp, x, &m, &sd);
            double ei = xt_gp_ei(m, sd, best, 0.01 * gp.yscale);
            /* kept in order of EI, highest first; ties keep the earlier */
            unsigned at = nfound;
            while (at > 0 && ei > top[at - 1])
                at--;
            if (at >= k)
                continue;
            if (nfound < k)
                nfound++;
            for (unsigned m2 = nfound - 1; m2 > at; m2--) {
                top[m2] = top[m2 - 1];
                found[m2] = found[m2 - 1];
            }
            top[at] = ei;
            found[at] = (int)c;
        }
        xt_gp_free(&gp);
    }
    for (unsigned i = 0; i < nfound; i++)
        next[i] = cand[found[i]];
    free(cand);
    free(X);
    free(y);
    return nfound;
}

/* k distinct unmeasured candidates at random; how many there were. */
static unsigned random_next(struct search *S, struct xt_point *next, unsigned k)
{
    enum { MAXC = 20000 };
    struct xt_point *cand = malloc(MAXC * sizeof(*cand));
    unsigned nc = cand ? candidates(S, cand, MAXC) : 0, n = 0;
    while (n < k && nc) {
        unsigned at = (unsigned)(rnd(S) * nc) % nc;
        int dup = 0;
        for (unsigned i = 0; i < n; i++)
            dup |= xt_point_equal(&S->space, &next[i], &cand[at]);
        if (!dup)
            next[n++] = cand[at];
        cand[at] = cand[--nc]; /* drawn: not again */
    }
    free(cand);
    return n;
}

/* The start config's point: its values of the space's keys, a value off
 * the grid moved to the nearest one (xt_space_snap). That point is what
 * the start trial runs, so that its figures are pooled only with runs of
 * the same configuration; each move ("read_ahead_kb=128 -> 16") is said
 * and kept in the history, since the start config as given is not run. */
static void start_point(struct search *S, struct xt_point *start)
{
    char *moved = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&moved, &len);
    struct xd_config *on_grid = xd_config_dup(S->start);
    char err[XD_ERRLEN];
    xt_space_snap(&S->space, S->start, start);
    for (unsigned i = 0; f && on_grid && i < S->space.n; i++) {
        const char *key = S->space.dim[i].key, *text = xd_config_get(S->start, key);
        char given[256]; /* a copy: xd_config_get's buffer is reused by the next call */
        /* compared as the schema reads both, so "8M" and "8m" are one value */
        if (!text || xd_config_set(on_grid, key, S->space.dim[i].vals[start->idx[i]], "xdtune",
                                   err, sizeof(err)))
            continue;
        snprintf(given, sizeof(given), "%s", text);
        const char *runs = xd_config_get(on_grid, key);
        if (runs && strcmp(given, runs))
            fprintf(f, "%s%s=%s -> %s", len ? ", " : "", key, given,
                    S->space.dim[i].vals[start->idx[i]]);
        fflush(f);
    }
    if (f)
        fclose(f);
    xd_config_free(on_grid);
    if (moved && *moved) {
        xt_history_set(S->hist, "start_moved_to_grid", moved);
        if (!S->o->quiet)
            printf("xdtune: the start config is off the space's grid (%s): the start trial runs "
                   "the nearest point, and the config as given is not measured\n", moved);
    }
    free(moved);
}

/* --- the phases ---------------------------------------------------------------------- */

static void run_grid(struct search *S)
{
    double size = xt_space_size(&S->space);
    struct xt_point pts[XT_MAX_HOSTS];
    unsigned n = 0;
    for (double i = 0; i < size && budget_left(S, 1); i++) {
        xt_space_point(&S->space, i, &pts[n]);
        if (point_valid(S, &pts[n]))
            n++;
        if (n == budget_left(S, width(S)) || (n && i + 1 >= size)) {
            run_batch(S, pts, n, "grid", 0);
            n = 0;
        }
    }
}

/* With --hosts the grid has no start trial to calibrate by: the start
 * config runs on every host first, all of it outside the budget (the grid
 * still runs every point). */
static int grid_reference(struct search *S, char *err, size_t errlen)
{
    if (!S->hosts.n)
        return 0;
    struct xt_point start;
    start_point(S, &start);
    int rc = run_reference(S, &start, err, errlen) ? 0 : -1;
    S->calibration++;
    return rc;
}

/* The warm-start rules' picks, one per host at a time. */
static void run_warmstart(struct search *S, const struct xt_point *start, const struct rec *first)
{
    struct xt_rule_pick picks[8];
    unsigned np = xt_warmstart(&S->space, &S->job, start, first->failed ? NULL : &first->meas[0],
                               &S->o->goal, picks, 8);
    struct xt_point pts[XT_MAX_HOSTS];
    char phase[128];
    unsigned n = 0;
    for (unsigned i = 0; i < np && budget_left(S, 1); i++) {
        int seen = rec_find(S, &picks[i].p) >= 0 || !point_valid(S, &picks[i].p);
        for (unsigned j = 0; j < n; j++)
            seen |= xt_point_equal(&S->space, &pts[j], &picks[i].p);
        if (!seen) {
            pts[n++] = picks[i].p;
            snprintf(phase, sizeof(phase), "warm start: %s", picks[i].rule);
        }
        if (n && (n == budget_left(S, width(S)) || i + 1 == np)) {
            /* one phase line per batch: with one host, the rule itself */
            run_batch(S, pts, n, n == 1 ? phase : "warm start", 0);
            n = 0;
        }
    }
}

static int run_search(struct search *S, char *err, size_t errlen)
{
    struct xt_point start, next[XT_MAX_HOSTS];
    start_point(S, &start);
    struct rec *first = run_reference(S, &start, err, errlen);
    if (!first)
        return -1;
    unsigned n;
    if (S->o->method == XT_METHOD_GP) {
        run_warmstart(S, &start, first);
        /* One seeded random point (one per host) before the model: the
         * rules all start from the start config, and the model has no
         * randomness of its own, so without it every --seed would repeat
         * one search. */
        if (budget_left(S, 1) && (n = random_next(S, next, budget_left(S, width(S)))))
            run_batch(S, next, n, "random (initial design)", 0);
    }
    while (budget_left(S, 1)) {
        unsigned ok = 0;
        for (unsigned i = 0; i < S->nrecs; i++)
            ok += !S->recs[i].failed;
        int model = S->o->method == XT_METHOD_GP && ok >= 2;
        unsigned k = budget_left(S, width(S));
        n = model ? model_next(S, next, k) : random_next(S, next, k);
        if (!n) {
            if (!S->o->quiet)
                printf("xdtune: every configuration of the space has been tried\n");
            break;
        }
        run_batch(S, next, n, model ? "model" : "random", 0);
    }
    return 0;
}

static int cmp_rec_score(const void *a, const void *b)
{
    const struct rec *x = *(const struct rec *const *)a, *y = *(const struct rec *const *)b;
    return x->score > y->score ? -1 : x->score < y->score;
}

/* The best few, measured again (--repeats times each) before one is declared. */
static void remeasure(struct search *S, unsigned *nfinal, struct rec **final)
{
    struct rec *order[S->nrecs + 1];
    unsigned n = 0;
    for (unsigned i = 0; i < S->nrecs; i++)
        if (!S->recs[i].failed && S->recs[i].nmeas)
            order[n++] = &S->recs[i];
    qsort(order, n, sizeof(order[0]), cmp_rec_score);
    *nfinal = n < S->o->finalists ? n : S->o->finalists;
    struct xt_point pts[*nfinal > 0 ? *nfinal : 1];
    for (unsigned i = 0; i < *nfinal; i++) {
        pts[i] = order[i]->p;
        S->final[i] = (int)(order[i] - S->recs);
    }
    S->nfinal = *nfinal; /* from here the best so far is the best finalist's median */
    pick_best(S);
    /* one per host at a time; a batch may span two rounds */
    struct xt_point batch[XT_MAX_HOSTS];
    unsigned nb = 0, total = S->o->repeats * *nfinal;
    for (unsigned t = 0; t < total; t++) {
        unsigned rep = t / *nfinal;
        batch[nb++] = pts[t % *nfinal];
        if (nb == width(S) || t + 1 == total) {
            char phase[64];
            snprintf(phase, sizeof(phase), "re-measure %u of %u", rep + 1, S->o->repeats);
            run_batch(S, batch, nb, phase, 0);
            nb = 0;
        }
    }
    for (unsigned i = 0; i < *nfinal; i++)
        final[i] = &S->recs[rec_find(S, &pts[i])];
}

static double spread_pct(const struct search *S, const struct rec *r)
{
    double lo = INFINITY, hi = -INFINITY;
    for (unsigned i = 0; i < r->nmeas; i++) {
        double v = xt_objective(&S->o->goal, &r->meas[i]);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    double mid = fabs(xt_objective(&S->o->goal, &r->median));
    return mid > 0 ? 100.0 * (hi - lo) / mid : 0;
}

/* --- outputs --------------------------------------------------------------------------- */

static char *figures_text(const struct xt_figures *f)
{
    char *t = NULL;
    if (asprintf(&t, "iops %.0f, mean latency %.1f us, p99 %.1f us%s", f->iops, f->lat_us,
                 f->p99_us, "") < 0)
        return NULL;
    if (f->cache_hit >= 0) {
        char *u = NULL;
        if (asprintf(&u, "%s, cache hit ratio %.3f", t, f->cache_hit) >= 0) {
            free(t);
            t = u;
        }
    }
    return t;
}

static char *goal_text(const struct xt_goal *g)
{
    char *t = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&t, &len);
    if (!f)
        return NULL;
    fputs(g->minimize_p99 ? "minimise p99 latency" : "maximise IOPS", f);
    fputs(xt_goal_any(g) ? " after meeting every target:" : ", no targets", f);
    if (g->iops > 0)
        fprintf(f, " iops >= %.0f", g->iops);
    if (g->lat_us > 0)
        fprintf(f, " mean latency <= %g us", g->lat_us);
    if (g->p99_us > 0)
        fprintf(f, " p99 <= %g us", g->p99_us);
    if (g->cache_hit > 0)
        fprintf(f, " cache hit ratio >= %g", g->cache_hit);
    fclose(f);
    return t;
}

static int write_best(struct search *S, const struct rec *w, const char *verdict, const char *path,
                      char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_dup(S->start);
    char *goal = goal_text(&S->o->goal), *figs = figures_text(&w->median), *header = NULL;
    char *point = xt_point_text(&S->space, &w->p);
    const char *method = S->o->method == XT_METHOD_GP ? "gp" : S->o->method == XT_METHOD_RANDOM ? "random" : "grid";
    int rc = cfg ? xt_space_apply(&S->space, &w->p, cfg, err, errlen) : -ENOMEM;
    if (!rc && asprintf(&header,
                        "xdtune best config (xd_config=%s)\n"
                        "%s"
                        "tuned for: %s\n"
                        "job: %s (start config %s)\n"
                        "measured: %s (median of %u runs, %s spread %.1f%%)\n"
                        "targets: %s\n"
                        "search: %u trials, method %s, seed %lu; history: history.json\n"
                        "tuned values: %s",
                        path, verdict ? verdict : "", goal, S->o->job, S->o->config, figs, w->nmeas,
                        S->o->goal.minimize_p99 ? "p99" : "IOPS", spread_pct(S, w),
                        !xt_goal_any(&S->o->goal) ? "none given" : xt_gap(&S->o->goal, &w->median) == 0 ? "met" : "NOT met",
                        S->trials, method, S->o->seed, point) < 0)
        rc = -ENOMEM;
    if (!rc)
        rc = xt_config_save(cfg, path, header, err, errlen);
    xd_config_free(cfg);
    if (!rc) { /* it must load unchanged: prove it before saying so */
        struct xd_config *check = xd_config_new();
        rc = check ? xd_config_load(check, path, err, errlen) : -ENOMEM;
        xd_config_free(check);
    }
    free(goal);
    free(figs);
    free(header);
    free(point);
    return rc;
}

/* The convergence chart through xdreport (next to xdtune unless --xdreport). */
static void draw_chart(struct search *S)
{
    char self[4096], tool[4200], hist[4200];
    const char *xdreport = S->o->xdreport;
    if (!xdreport) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        snprintf(tool, sizeof(tool), "%s/xdreport", self);
        xdreport = tool;
    }
    snprintf(hist, sizeof(hist), "%s/history.json", S->o->out);
    pid_t pid = fork();
    if (pid == 0) {
        execl(xdreport, "xdreport", "convergence", "-o", S->o->out, hist, (char *)NULL);
        char shown[XD_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
        fprintf(stderr, "xdtune: cannot run %s for the convergence chart: %s\n",
                xd_escape(xdreport, shown, sizeof(shown)), strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "xdtune: the convergence chart was not drawn (see above)\n");
}

/* The finalists' runs, in the objective's own figure, and where each
 * stands against the targets, for the verdict; names[] and missed[] are
 * the caller's to free. */
static void finalists_of(struct search *S, struct rec **final, unsigned nfinal,
                         struct xt_finalist *fin, char **names, char **missed)
{
    const struct xt_goal *g = &S->o->goal;
    for (unsigned i = 0; i < nfinal; i++) {
        const struct rec *r = final[i];
        names[i] = xt_point_text(&S->space, &r->p);
        missed[i] = xt_missed_text(g, &r->median);
        fin[i] = (struct xt_finalist){.name = names[i] ? names[i] : "?", .n = r->nmeas,
                                      .gap = xt_gap(g, &r->median), .missed = missed[i]};
        for (unsigned m = 0; m < r->nmeas; m++) {
            fin[i].values[m] = g->minimize_p99 ? r->meas[m].p99_us : r->meas[m].iops;
            fin[i].met_runs += xt_gap(g, &r->meas[m]) == 0;
        }
        fin[i].median = g->minimize_p99 ? r->median.p99_us : r->median.iops;
    }
}

/* The verdict on w: its lines (malloc'd) into *text, printed unless
 * --quiet, and recorded in the history with every finalist's runs. */
static void judge(struct search *S, struct rec **final, unsigned nfinal, const struct rec *w,
                  char **text)
{
    struct xt_finalist fin[64];
    char *names[64], *missed[64];
    unsigned wi = 0;
    finalists_of(S, final, nfinal, fin, names, missed);
    for (unsigned i = 0; i < nfinal; i++)
        if (final[i] == w)
            wi = i;
    const char *metric = S->o->goal.minimize_p99 ? "p99 us" : "IOPS";
    enum xt_verdict_kind kind = xt_verdict(fin, nfinal, wi, !S->o->goal.minimize_p99, metric, text);
    if (*text && !S->o->quiet)
        for (const char *p = *text; *p;) {
            size_t n = strcspn(p, "\n");
            printf("xdtune: %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    xt_history_verdict(S->hist, xt_verdict_name(kind), *text, fin, nfinal, wi);
    for (unsigned i = 0; i < nfinal; i++) {
        free(names[i]);
        free(missed[i]);
    }
}

static int report(struct search *S, struct rec **final, unsigned nfinal)
{
    char path[4200], err[XD_ERRLEN], shown[XD_ESCAPE_LEN]; /* shown: a path escaped, one line */
    if (nfinal == 0) {
        fprintf(stderr, "xdtune: every trial failed; see %s/history.json for fio's errors\n",
                xd_escape(S->o->out, shown, sizeof(shown)));
        return 1;
    }
    /* pick_best among the finalists: what the progress line and the
     * history's last best so far show */
    struct rec *w = S->best >= 0 ? &S->recs[S->best] : final[0];
    for (unsigned i = 0; i < nfinal && !S->o->quiet; i++) {
        char *pt = xt_point_text(&S->space, &final[i]->p);
        printf("xdtune: finalist %s: iops %.0f, p99 %.0f us over %u runs, spread %.1f%%%s\n", pt,
               final[i]->median.iops, final[i]->median.p99_us, final[i]->nmeas,
               spread_pct(S, final[i]), final[i] == w ? "  <- winner" : "");
        free(pt);
    }
    snprintf(path, sizeof(path), "%s/best.ini", S->o->out);
    int met = xt_gap(&S->o->goal, &w->median) == 0;
    char *figs = figures_text(&w->median), *gap = xt_gap_text(&S->o->goal, &w->median);
    char *verdict = NULL;
    xt_history_best(S->hist, path, figs, met, &S->space, &w->p, &w->median,
                    xt_objective(&S->o->goal, &w->median), spread_pct(S, w), w->nmeas);
    judge(S, final, nfinal, w, &verdict);
    int wrc = write_best(S, w, verdict, path, err, sizeof(err));
    free(verdict);
    if (wrc) {
        fprintf(stderr, "xdtune: %s\n", err);
        free(figs);
        free(gap);
        return 1;
    }
    if (xt_history_write(S->hist, S->history_path, err, sizeof(err)))
        fprintf(stderr, "xdtune: %s\n", err);
    draw_chart(S);
    int rc = 0;
    if (!met) {
        fprintf(stderr, "xdtune: no configuration met the targets; the closest, written to %s: %s\n",
                xd_escape(path, shown, sizeof(shown)), gap);
        rc = 3;
    } else {
        printf("xdtune: best config %s: %s%s%s\n", path, figs, xt_goal_any(&S->o->goal) ? "; " : "",
               xt_goal_any(&S->o->goal) ? gap : "");
    }
    free(figs);
    free(gap);
    return rc;
}

/* Targets no configuration can reach whatever fio measures: say so first. */
static int check_goal(struct search *S, char *err, size_t errlen)
{
    if (S->o->goal.cache_hit <= 0)
        return 0;
    const char *on = xd_config_get(S->start, "enable_read_cache");
    for (unsigned i = 0; i < S->space.n; i++)
        if (strcmp(S->space.dim[i].key, "enable_read_cache") == 0)
            on = "true";
    if (on && strcmp(on, "true") == 0)
        return 0;
    xd_errf(err, errlen, "--target-cache-hit %g cannot be reached: the start config has "
            "enable_read_cache=false and the space does not turn it on", S->o->goal.cache_hit);
    return -EINVAL;
}

/* How many entries trials/ holds (-errno when it cannot be listed); first
 * gets one of their names. */
static int trials_count(int trials, char *first, size_t len)
{
    int fd = fcntl(trials, F_DUPFD_CLOEXEC, 0), n = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !n++)
            snprintf(first, len, "%s", e->d_name);
    closedir(d);
    return n;
}

/* An earlier search's trials/ is refused, never emptied: its files would
 * sit beside the new ones, numbered alike, with a history.json that names
 * none of them; and deleting is not xdtune's to do in a directory whose
 * other contents it did not make. */
static int out_fresh(int trials, const char *out, char *err, size_t errlen)
{
    char first[256] = "";
    int n = trials_count(trials, first, sizeof(first));
    if (n < 0)
        xd_errf(err, errlen, "--out %.300s: cannot list its trials/: %s", out, strerror(-n));
    else if (n > 0)
        xd_errf(err, errlen, "--out %.120s: %.120s/trials/ holds %d file%s of an earlier search (%.40s%s); allowed: a new --out, or remove its trials/ first to search into it again",
                out, out, n, n == 1 ? "" : "s", first, n > 1 ? ", ..." : "");
    return n < 0 ? n : n > 0 ? -EEXIST : 0;
}

/* --out must not be writable by others, sticky or not: the results are
 * renamed over whatever holds their names (in /tmp, another user's
 * history.json) and the convergence chart is drawn there by name. */
static int out_private(int dir, const char *what, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(dir, &st))
        return -errno;
    if (!(st.st_mode & S_IWOTH))
        return 0;
    xd_errf(err, errlen, "%.300s: writable by others (mode %04o); xdtune replaces its results there by name; allowed: a directory not writable by others, or a free name (xdtune makes it)",
            what, (unsigned)(st.st_mode & 07777));
    return -EPERM;
}

/* --out and its trials/: made by us or ours already (never a symlink,
 * never another user's), in a parent others cannot redirect. */
static int out_dirs(const char *out, char *err, size_t errlen)
{
    char what[4200], path[4200];
    const char *base;
    snprintf(path, sizeof(path), "%s", out);
    for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--)
        path[n - 1] = '\0';
    snprintf(what, sizeof(what), "--out %s", out);
    int parent = xd_dir_open_for(path, what, false, &base, err, errlen);
    if (parent < 0)
        return parent;
    int dir = xd_mkdir_own_at(parent, base, 0755), trials = -1, rc = 0;
    if (dir >= 0 && (rc = out_private(dir, what, err, errlen)) == 0)
        trials = xd_mkdir_own_at(dir, "trials", 0755); /* nothing made in a shared one */
    if (!rc && (rc = dir < 0 ? dir : trials < 0 ? trials : 0))
        xd_errf(err, errlen, "%.300s: cannot create it%s: %s", what, dir < 0 ? "" : " or its trials/",
                xd_refusal(rc));
    else if (!rc)
        rc = out_fresh(trials, path, err, errlen);
    /* the results are replaced by rename, never through a link: say so
     * now rather than after the trials */
    static const char *const results[] = {"history.json", "best.ini", "convergence.svg"};
    for (unsigned i = 0; !rc && i < sizeof(results) / sizeof(results[0]); i++) {
        struct stat st;
        if (!fstatat(dir, results[i], &st, AT_SYMLINK_NOFOLLOW) && S_ISLNK(st.st_mode)) {
            xd_errf(err, errlen, "%.300s: %s is a symbolic link; xdtune never writes through one; allowed: remove it, or another --out",
                    what, results[i]);
            rc = -ELOOP;
        }
    }
    close(parent);
    if (dir >= 0)
        close(dir);
    if (trials >= 0)
        close(trials);
    return rc;
}

/* --hosts: the servers and the engine's absolute path in the job; read
 * with the other inputs, before --out is made. */
static int hosts_setup(struct search *S, char *err, size_t errlen)
{
    int rc = xt_hosts_load(&S->hosts, S->o->hosts, err, errlen);
    return rc ? rc : xt_hosts_job_engine(&S->job, err, errlen);
}

/* With --hosts, trials/ by its absolute path: a server reads the INI the
 * job names. */
static int trials_dir_absolute(struct search *S, char *err, size_t errlen)
{
    char abs[PATH_MAX];
    if (!realpath(S->trials_dir, abs)) {
        xd_errf(err, errlen, "%.300s: %s", S->trials_dir, strerror(errno));
        return -EINVAL;
    }
    snprintf(S->trials_dir, sizeof(S->trials_dir), "%s", abs);
    return 0;
}

static int setup(struct search *S, char *err, size_t errlen)
{
    int rc;
    S->start = xd_config_new();
    if (!S->start)
        return -ENOMEM;
    if ((rc = xd_config_load(S->start, S->o->config, err, errlen)))
        return rc;
    rc = S->o->space ? xt_space_load(&S->space, S->o->space, err, errlen)
                     : xt_space_default(&S->space, S->start, err, errlen);
    if (!rc)
        rc = xt_space_check_nonempty(&S->space, S->o->space ? S->o->space : "the default space",
                                     err, errlen);
    if (!rc)
        rc = check_goal(S, err, errlen);
    if (!rc)
        rc = S->o->job_argv ? xt_job_load_args(&S->job, S->o->job_argc, S->o->job_argv, &S->space,
                                               err, errlen)
                            : xt_job_load(&S->job, S->o->job, &S->space, err, errlen);
    if (!rc && S->o->hosts)
        rc = hosts_setup(S, err, errlen);
    if (rc)
        return rc;
    if ((rc = out_dirs(S->o->out, err, errlen)))
        return rc;
    snprintf(S->trials_dir, sizeof(S->trials_dir), "%s/trials", S->o->out);
    if (S->o->hosts && (rc = trials_dir_absolute(S, err, errlen)))
        return rc;
    snprintf(S->history_path, sizeof(S->history_path), "%s/history.json", S->o->out);
    S->hist = xt_history_new("search", S->o->job, S->o->config);
    xt_history_set(S->hist, "method", S->o->method == XT_METHOD_GP ? "gp" : S->o->method == XT_METHOD_RANDOM ? "random" : "grid");
    xt_history_set(S->hist, "objective", S->o->goal.minimize_p99 ? "min p99_us" : "max iops");
    xt_history_set_number(S->hist, "seed", (double)S->o->seed);
    xt_history_set_number(S->hist, "space_size", xt_space_size(&S->space));
    return 0;
}

int xt_search(const struct xt_search_opts *opts)
{
    struct search S = { .o = opts, .best = -1, .rng = opts->seed * 0x9E3779B97F4A7C15ULL + 1 };
    struct xt_search_opts o = *opts;
    char err[XD_ERRLEN] = "";
    S.o = &o;
    if (setup(&S, err, sizeof(err))) {
        fprintf(stderr, "xdtune: %s\n", err);
        xd_config_free(S.start);
        xt_space_free(&S.space);
        xt_job_free(&S.job);
        xt_hosts_free(&S.hosts);
        return 1;
    }
    double size = xt_space_size(&S.space);
    if (o.method == XT_METHOD_GP || o.method == XT_METHOD_RANDOM)
        o.budget = (unsigned)fmin(o.budget, size); /* the start is a point of the grid */
    else
        o.budget = (unsigned)fmin(o.budget ? o.budget : size, size);
    S.planned = o.budget + o.finalists * o.repeats + S.hosts.n - (S.hosts.n && o.method != XT_METHOD_GRID);
    S.started = now_s();
    if (!o.quiet)
        printf("xdtune: searching %.0f configurations over %u parameters with %s, budget %u trials "
               "then %u finalists measured %u more times\n", size, S.space.n,
               o.method == XT_METHOD_GP ? "a Gaussian process" : o.method == XT_METHOD_RANDOM ? "random picks" : "the full grid",
               o.budget, o.finalists, o.repeats);
    if (!o.quiet && S.hosts.n)
        printf("xdtune: %u fio servers, one trial on each at a time; figures rescaled by each "
               "host's run of the start config\n", S.hosts.n);
    int rc = o.method == XT_METHOD_GRID ? grid_reference(&S, err, sizeof(err)) : 0;
    if (!rc && o.method == XT_METHOD_GRID)
        run_grid(&S);
    else if (!rc)
        rc = run_search(&S, err, sizeof(err));
    struct rec *final[64];
    unsigned nfinal = 0;
    if (o.finalists > 64)
        o.finalists = 64;
    if (rc) {
        fprintf(stderr, "xdtune: %s\n", err);
        rc = 1;
    } else {
        remeasure(&S, &nfinal, final);
        rc = report(&S, final, nfinal);
    }
    xt_history_free(S.hist);
    xt_hosts_free(&S.hosts);
    free(S.recs);
    xd_config_free(S.start);
    xt_space_free(&S.space);
    xt_job_free(&S.job);
    return rc;
}
