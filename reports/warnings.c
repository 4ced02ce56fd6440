/* warnings.c - configurations not doing what their names say.
 *
 * A bench can run for minutes and report a "hybrid" that never promoted an
 * extent, a "cache" that almost never hit, a "direct" type whose reads came
 * from the page cache, a "compressed" type that stored more than it held:
 * each measured something other than what its name promises, and a
 * comparison built on it misleads. The xd_stats documents the engine writes
 * tell, so each such case becomes one warning, at the top of the report,
 * counted over a configuration's repetitions.
 *
 * Where the fio job that wrote a stats document is among the inputs (its
 * xd_stats option names the document's file), its options can name the
 * cause: fio's invalidate=1, its default, drops the file's cached data,
 * xdevice's cache included, each time it starts a pass over the file, so
 * a job that loops (io_size beyond size, loops, time_based) restarts from
 * a cold cache: hit ratio 0 at 16 MiB of cache over an 8 MiB file, 0.9997
 * with invalidate=0. A larger cache would not help there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "report.h"

#define MIN_HIT_RATIO 0.20
/* Faster than any disk answers a read: below this the reads of a direct
 * type came from memory (the page cache), not through O_DIRECT. */
#define DIRECT_MIN_READ_NS 10000

enum kind { W_HYBRID, W_CACHE, W_DIRECT, W_COMPRESSED, W_NKIND };

struct tally {
    char *subject;
    unsigned hit[W_NKIND], runs;
    double worst[W_NKIND];   /* the figure of the worst repetition */
    unsigned invalidated;    /* W_CACHE runs whose fio job ran with invalidate=1 */
};

static int is_type(const struct xr_xdstats *st, const char *type)
{
    return st->type && strcmp(st->type, type) == 0;
}

/* The figure that shows the problem, or NAN when there is none. */
static double problem(const struct xr_xdstats *st, enum kind k)
{
    switch (k) {
    case W_HYBRID:
        if (!is_type(st, "hybrid"))
            return NAN;
        if (isnan(st->tier_promotions) || st->tier_promotions == 0)
            return 0;
        return st->tier_hot_reads == 0 ? 0 : NAN;
    case W_CACHE:
        return !isnan(st->cache_hit_ratio) && st->cache_hit_ratio < MIN_HIT_RATIO
                   ? st->cache_hit_ratio : NAN;
    case W_DIRECT:
        if (!is_type(st, "direct") || !isnan(st->cache_hit_ratio))
            return NAN;     /* a cache in front answers from memory by design */
        if (st->direct_alignment == 0)
            return 0;
        return st->read_p50_ns < DIRECT_MIN_READ_NS ? st->read_p50_ns : NAN;
    default:
        if (!is_type(st, "compressed") || !st->logical_bytes || !st->stored_bytes)
            return NAN;
        return st->stored_bytes > st->logical_bytes
                   ? (double)st->stored_bytes / (double)st->logical_bytes : NAN;
    }
}

/* The file name of a stats document: its source, less " (HOST)" for a
 * server's document (hosts.c), less the directories. */
static char *stats_file_name(const struct xr_xdstats *st)
{
    size_t n = strlen(st->source), tail = st->host ? strlen(st->host) + 3 : 0;
    char *path = xr_mem_strndup(st->source, tail && n > tail ? n - tail : n);
    const char *slash = strrchr(path, '/');
    char *name = xr_mem_strdup(slash ? slash + 1 : path);

    free(path);
    return name;
}

static const char *job_option(const struct xr_job *job, const char *key)
{
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(job->opts[i].key, key) == 0)
            return job->opts[i].val;
    return NULL;
}

/* Is name one of the ", "-separated job names of a stats document? */
static int names_job(const char *names, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = names; p && *p; p = strstr(p, ", ") ? strstr(p, ", ") + 2 : NULL)
        if (strncmp(p, name, len) == 0 && (p[len] == '\0' || p[len] == ','))
            return 1;
    return 0;
}

/* The fio job that wrote stats document st: named in it, its xd_stats
 * option naming st's file (by file name: results are often moved or
 * copied as a directory). NULL when no input holds it. */
static const struct xr_job *job_of(const struct xr_report *r, const struct xr_xdstats *st)
{
    char *file = stats_file_name(st);
    const struct xr_job *found = NULL;

    for (size_t d = 0; d < r->set.ndocs && !found; d++)
        for (size_t j = 0; j < r->set.docs[d].njobs && !found; j++) {
            const struct xr_job *job = &r->set.docs[d].jobs[j];
            const char *path = job_option(job, "xd_stats");
            const char *base = path && strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

            if (base && strcmp(base, file) == 0 && names_job(st->job_names, job->name))
                found = job;
        }
    free(file);
    return found;
}

/* fio's invalidate: on unless the job turned it off (fio's default is 1). */
static int invalidates(const struct xr_job *job)
{
    const char *v = job_option(job, "invalidate");

    return !v || !(strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
                   strcmp(v, "off") == 0);
}

static char *subject_of(const struct xr_report *r, size_t i)
{
    unsigned rep;
    char *name = xr_stats_bench_name(r->stats[i].st->source, &rep);

    return name ? name : xr_mem_strdup(r->stats[i].label);
}

static struct tally *tally_for(struct tally **t, size_t *n, char *subject)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*t)[i].subject, subject) == 0) {
            free(subject);
            return &(*t)[i];
        }
    struct tally *nt = xr_mem_push(t, n, sizeof **t);

    memset(nt, 0, sizeof *nt);
    nt->subject = subject;
    return nt;
}

/* The hit ratio, and the likely cause: fio's invalidate=1 where the job
 * ran with it, else a cache too small for the data. */
static char *cache_text(const struct tally *t)
{
    unsigned low = t->hit[W_CACHE];
    char *all = t->invalidated == low ? xr_mem_strdup("")
                                      : xr_mem_printf(" (%u of these %u runs)", t->invalidated, low);
    char *out;

    if (t->invalidated)
        out = xr_mem_printf("cache hit ratio %.1f%%, under %.0f%%: fio ran the job with "
                            "invalidate=1 (its default)%s, which drops xdevice's cache at each "
                            "pass over the file (a loop, io_size beyond size, time_based): "
                            "likely the cause: rerun with invalidate=0 to measure the cache warm "
                            "before trying a larger xd_cache_size",
                            t->worst[W_CACHE] * 100, MIN_HIT_RATIO * 100, all);
    else
        out = xr_mem_printf("cache hit ratio %.1f%%, under %.0f%%: the cache layer costs more "
                            "than it saves here (a larger xd_cache_size, or no cache)",
                            t->worst[W_CACHE] * 100, MIN_HIT_RATIO * 100);
    free(all);
    return out;
}

static char *warning_text(enum kind k, const struct tally *t)
{
    char fig[32], *what, *out;

    switch (k) {
    case W_HYBRID:
        what = xr_mem_strdup("hybrid type with 0 promotions or 0 hot-tier reads: every read went "
                             "to the cold tier, so this measured the cold type under another name");
        break;
    case W_CACHE:
        what = cache_text(t);
        break;
    case W_DIRECT:
        if (t->worst[k] == 0) {
            what = xr_mem_strdup("direct type without O_DIRECT in effect (direct_alignment 0): "
                                 "reads and writes went through the page cache");
        } else {
            xr_fmt_ns(fig, sizeof fig, t->worst[k]);
            what = xr_mem_printf("direct type answered reads in %s at the median, faster than a "
                                 "device: they came from the page cache, not through O_DIRECT",
                                 fig);
        }
        break;
    default:
        what = xr_mem_printf("compressed type stored %.2f× the bytes it holds: the data did not "
                             "compress, so it pays compression for nothing", t->worst[k]);
    }
    out = xr_mem_printf("%s (%u of %u run%s)", what, t->hit[k], t->runs, t->runs == 1 ? "" : "s");
    free(what);
    return out;
}

void xr_warnings_build(struct xr_report *r)
{
    struct tally *t = NULL;
    size_t nt = 0;

    for (size_t i = 0; i < r->nstats; i++) {
        struct tally *s = tally_for(&t, &nt, subject_of(r, i));

        s->runs++;
        for (int k = 0; k < W_NKIND; k++) {
            double v = problem(r->stats[i].st, k);

            if (isnan(v))
                continue;
            /* worst: the lowest hit ratio, latency, ...; the highest stored/held */
            if (!s->hit[k] || (k == W_COMPRESSED ? v > s->worst[k] : v < s->worst[k]))
                s->worst[k] = v;
            s->hit[k]++;
            if (k == W_CACHE) {
                const struct xr_job *job = job_of(r, r->stats[i].st);

                s->invalidated += job && invalidates(job);
            }
        }
    }
    for (size_t i = 0; i < nt; i++) {
        for (int k = 0; k < W_NKIND; k++) {
            if (!t[i].hit[k])
                continue;
            struct xr_warning *w = xr_mem_push(&r->warnings, &r->nwarnings, sizeof *w);

            w->subject = xr_mem_strdup(t[i].subject);
            w->text = warning_text(k, &t[i]);
        }
        free(t[i].subject);
    }
    free(t);
}

void xr_warnings_free(struct xr_report *r)
{
    for (size_t i = 0; i < r->nwarnings; i++) {
        free(r->warnings[i].subject);
        free(r->warnings[i].text);
    }
    free(r->warnings);
}
