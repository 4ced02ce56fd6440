/* configs.c - workloads and the labels of their configurations.
 *
 * A configuration is one job of one document; of a --status-interval
 * stream only the last document counts, the others are its history
 * (timeline.c draws them). Configurations that share a fio job name are one
 * workload and are compared with each other.
 *
 * A label names a configuration by what sets it apart from the others it
 * is compared with: "ioengine=mmap", not its forty options. So the label
 * holds keys whose values differ within the workload (a key one side lacks
 * counts as different), leaving out bookkeeping options (log names, the
 * stats file) and using paths only when nothing else differs (options.h).
 * Of those keys it keeps only the ones that tell apart configurations the
 * keys before them do not: comparing xdevice with fio's engines, a dozen
 * xd_* options differ, but once ioengine=xdevice is said they add nothing.
 * ioengine and xd_type name the storage stack and are kept whenever they
 * differ. Without any difference the file name is the label.
 */
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "options.h"
#include "report.h"

char *xr_basename_noext(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *dot = strrchr(base, '.');

    return dot && dot != base ? xr_mem_strndup(base, dot - base) : xr_mem_strdup(base);
}

/* What the labeller needs of each item: fio jobs and xdevice stats alike. */
struct item {
    const struct xr_kv *kv;
    size_t nkv;
    const char *host;        /* client/server hostname or NULL */
    char *fallback;          /* file name: the label when nothing differs */
};

static const char *value_of(const struct item *it, const char *key)
{
    for (size_t i = 0; i < it->nkv; i++)
        if (strcmp(xr_opt_canon(it->kv[i].key), key) == 0)
            return it->kv[i].val;
    return NULL;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Keys of class cls whose values are not all equal, in first-seen order. */
static size_t differing(const struct item *it, size_t n, enum xr_opt_class cls, const char ***keys)
{
    size_t nk = 0;

    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < it[i].nkv; k++) {
            const char *key = xr_opt_canon(it[i].kv[k].key);
            size_t j;

            if (xr_opt_class(key) != cls)
                continue;
            for (j = 0; j < nk && strcmp((*keys)[j], key); j++)
                ;
            if (j < nk)
                continue;
            for (j = 1; j < n && same(value_of(&it[0], key), value_of(&it[j], key)); j++)
                ;
            if (j < n)
                *(const char **)xr_mem_push(keys, &nk, sizeof **keys) = key;
        }
    }
    return nk;
}

static char *join_keys(const char **keys, size_t nk, int host)
{
    char *out = xr_mem_strdup(host ? "host" : "");

    for (size_t k = 0; k < nk; k++) {
        char *next = xr_mem_printf("%s%s%s", out, *out ? ", " : "", keys[k]);

        free(out);
        out = next;
    }
    return out;
}

/* Keys whose value says it all: "xdevice mmap io_uring" reads better on an
 * axis than "ioengine=xdevice xd_type=mmap xd_async=io_uring". */
static int label_value_only(const char *key)
{
    return !strcmp(key, "ioengine") || !strcmp(key, "xd_type") || !strcmp(key, "xd_async");
}

static char *label_of(const struct item *it, const char **keys, size_t nk, int host)
{
    char *out = host && it->host ? xr_mem_printf("host=%s", it->host) : xr_mem_strdup("");

    for (size_t k = 0; k < nk; k++) {
        const char *v = value_of(it, keys[k]);
        char *shown, *next;

        if (!v)         /* "xd_type=" on a psync job would only be noise */
            continue;
        shown = xr_opt_value(keys[k], v);
        if (label_value_only(keys[k]))
            next = xr_mem_printf("%s%s%s", out, *out ? " " : "", shown);
        else
            next = xr_mem_printf("%s%s%s=%s", out, *out ? " " : "", keys[k], shown);
        free(shown);
        free(out);
        out = next;
    }
    if (!*out) {
        free(out);
        out = xr_mem_strdup(it->fallback);
    }
    return out;
}

static int has_twin(char *const *labels, size_t n, size_t i)
{
    for (size_t j = 0; j < n; j++)
        if (j != i && strcmp(labels[i], labels[j]) == 0)
            return 1;
    return 0;
}

/* Labels must tell configurations apart: add the file name, then a count. */
static void make_unique(char **labels, const struct item *it, size_t n)
{
    char *twin = xr_mem_alloc(n + 1);

    for (size_t i = 0; i < n; i++)
        twin[i] = has_twin(labels, n, i);
    for (size_t i = 0; i < n; i++) {
        if (twin[i] && strcmp(labels[i], it[i].fallback)) {
            char *next = xr_mem_printf("%s (%s)", labels[i], it[i].fallback);
            free(labels[i]);
            labels[i] = next;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned k = 1;

        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(labels[i], labels[j]))
                continue;
            char *next = xr_mem_printf("%s #%u", labels[j], ++k);
            free(labels[j]);
            labels[j] = next;
        }
    }
    free(twin);
}

static int always_shown(const char *key)
{
    return strcmp(key, "ioengine") == 0 || strcmp(key, "xd_type") == 0;
}

/* Does key split configurations that share a class so far? Then it joins
 * the label, and the classes are split by its value. */
static int refines(const struct item *it, size_t n, size_t *cls, const char *key)
{
    size_t *next = xr_mem_alloc((n + 1) * sizeof *next);
    int split = 0;

    for (size_t i = 0; i < n; i++) {
        next[i] = i;
        for (size_t j = 0; j < i; j++) {
            if (cls[j] != cls[i])
                continue;
            if (same(value_of(&it[i], key), value_of(&it[j], key))) {
                next[i] = next[j];
                break;
            }
            split = 1;
        }
    }
    memcpy(cls, next, n * sizeof *cls);
    free(next);
    return split;
}

/* The differing keys worth a place in the labels, kept in keys[]. */
static size_t telling_keys(const struct item *it, size_t n, const char **keys, size_t nk)
{
    size_t *cls = xr_mem_alloc((n + 1) * sizeof *cls);     /* all in one class */
    const char **kept = xr_mem_alloc((nk + 1) * sizeof *kept);
    size_t nkept = 0;

    /* ioengine and xd_type first, then the rest in the order first seen */
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < nk; k++)
            if (always_shown(keys[k]) == !pass && (refines(it, n, cls, keys[k]) || !pass))
                kept[nkept++] = keys[k];
    if (nkept)      /* keys is NULL when nothing differs */
        memcpy(keys, kept, nkept * sizeof *keys);
    free(kept);
    free(cls);
    return nkept;
}

/* Labels of n items (malloc'd array of malloc'd strings) and the keys that
 * tell them apart in *differ. */
static char **label_items(const struct item *it, size_t n, char **differ)
{
    const char **keys = NULL;
    size_t nk = differing(it, n, XR_OPT_CONFIG, &keys);
    char **labels = xr_mem_alloc((n + 1) * sizeof *labels);
    int host = 0;

    for (size_t i = 1; i < n; i++)
        host |= !same(it[0].host, it[i].host);
    if (nk == 0)
        nk = differing(it, n, XR_OPT_PATH, &keys);
    nk = telling_keys(it, n, keys, nk);
    for (size_t i = 0; i < n; i++)
        labels[i] = nk || host ? label_of(&it[i], keys, nk, host) : xr_mem_strdup(it[i].fallback);
    make_unique(labels, it, n);
    *differ = join_keys(keys, nk, host);
    free(keys);
    return labels;
}

static int slug_taken(const char *slug, const struct xr_group *groups, size_t ngroups)
{
    for (size_t g = 0; g < ngroups; g++)
        if (strcmp(groups[g].slug, slug) == 0)
            return 1;
    return 0;
}

/* The job name as it can go in a file name; "a b" and "a/b" would both be
 * "a-b", so a repeat gets "-2", "-3"... Cut to SLUG_MAX bytes: a chart's
 * file is the slug plus a suffix ("-latency-over-time.svg"), and a job
 * name of 240 bytes made one past NAME_MAX, which gnuplot could not open. */
#define SLUG_MAX 120
static char *slug_of(const char *name, const struct xr_group *groups, size_t ngroups)
{
    char *base = xr_mem_strndup(*name ? name : "job", SLUG_MAX), *slug;
    unsigned k = 1;

    for (char *p = base; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p))
            *p = '-';
    slug = xr_mem_strdup(base);
    while (slug_taken(slug, groups, ngroups)) {
        free(slug);
        slug = xr_mem_printf("%s-%u", base, ++k);
    }
    free(base);
    return slug;
}

static struct xr_group *group_for(struct xr_report *r, const char *name)
{
    struct xr_group *g;

    for (size_t i = 0; i < r->ngroups; i++)
        if (strcmp(r->groups[i].name, name) == 0)
            return &r->groups[i];
    g = xr_mem_push(&r->groups, &r->ngroups, sizeof *g);
    g->name = xr_mem_strdup(name);
    g->slug = slug_of(name, r->groups, r->ngroups - 1);
    return g;
}

/* "fio-3.33" or "fio-3.33, fio-3.36": appended when new */
static void add_version(char **list, const char *v)
{
    char *next;

    if (!*v)
        return;
    if (*list) {
        for (const char *p = strstr(*list, v); p; p = strstr(p + 1, v))
            if ((p == *list || p[-1] == ' ') && (p[strlen(v)] == ',' || !p[strlen(v)]))
                return;
    }
    next = xr_mem_printf("%s%s%s", *list ? *list : "", *list ? ", " : "", v);
    free(*list);
    *list = next;
}

/* The run a file belongs to: its name without the extension and, for
 * NAME.rK (K digits), without ".rK": repetitions of one configuration. */
static char *run_of(const char *path, unsigned *rep)
{
    char *base = xr_basename_noext(path);
    char *dot = strrchr(base, '.');

    *rep = 1;
    if (dot && dot[1] == 'r' && dot[2] && strspn(dot + 2, "0123456789") == strlen(dot + 2)) {
        *rep = (unsigned)strtoul(dot + 2, NULL, 10);
        *dot = '\0';
    }
    return base;
}

/* The ordinal of job j among the jobs of its document with the same name. */
static size_t ordinal_of(const struct xr_doc *doc, size_t j)
{
    size_t k = 0;

    for (size_t i = 0; i < j; i++)
        k += strcmp(doc->jobs[i].name, doc->jobs[j].name) == 0;
    return k;
}

double xr_rep_iops(const struct xr_job *job)
{
    return job->dir[XR_READ].iops + job->dir[XR_WRITE].iops + job->dir[XR_TRIM].iops +
           job->dir[XR_MIXED].iops;
}

/* The configuration of a repetition already seen: same run, same job. */
static struct xr_cfg *cfg_of_run(struct xr_group *g, const char *run, const struct xr_doc *doc,
                                 size_t j)
{
    for (size_t i = 0; i < g->ncfgs; i++) {
        struct xr_cfg *c = &g->cfgs[i];

        if (strcmp(c->run, run) == 0 && ordinal_of(c->doc, c->job_index) == ordinal_of(doc, j)
            && c->doc->path != doc->path && strcmp(c->doc->path, doc->path))
            return c;
    }
    return NULL;
}

/* scripts/bench.sh's names: NAME.xdevice and NAME.reference */
static void bench_side(struct xr_cfg *c)
{
    static const char *const suffix[] = { ".xdevice", ".reference" };

    for (int s = 0; s < 2; s++) {
        size_t n = strlen(c->run), k = strlen(suffix[s]);

        if (n > k && strcmp(c->run + n - k, suffix[s]) == 0) {
            c->side = s ? XR_SIDE_REFERENCE : XR_SIDE_XDEVICE;
            c->bench_name = xr_mem_strndup(c->run, n - k);
        }
    }
}

static void add_rep(struct xr_cfg *c, const struct xr_doc *doc, size_t j, unsigned number)
{
    struct xr_rep *rp = xr_mem_push(&c->reps, &c->nreps, sizeof *rp);

    rp->number = number;
    rp->doc = doc;
    rp->job = &doc->jobs[j];
    rp->job_index = j;
}

/* The representative repetition, the one tables and charts show: the
 * median by IOPS (the lower middle one of an even number). */
static void pick_median_rep(struct xr_cfg *c)
{
    size_t best = 0;

    for (size_t i = 0; i < c->nreps; i++) {
        size_t below = 0;
        double v = xr_rep_iops(c->reps[i].job);

        for (size_t k = 0; k < c->nreps; k++) {
            double w = xr_rep_iops(c->reps[k].job);
            below += w < v || (w == v && k < i);
        }
        if (below == (c->nreps - 1) / 2)
            best = i;
    }
    c->doc = c->reps[best].doc;
    c->job = c->reps[best].job;
    c->job_index = c->reps[best].job_index;
}

static int all_bench(const struct xr_group *g)
{
    for (size_t i = 0; i < g->ncfgs; i++)
        if (g->cfgs[i].side == XR_SIDE_NONE)
            return 0;
    return g->ncfgs > 0;
}

/* A bench's runs in pairs: each xdevice configuration, then its reference. */
static int by_pair(const void *a, const void *b)
{
    const struct xr_cfg *x = a, *y = b;
    int c = strcmp(x->bench_name, y->bench_name);

    return c ? c : (int)x->side - (int)y->side;
}

static void collect_groups(struct xr_report *r)
{
    for (size_t i = 0; i < r->set.ndocs; i++) {
        const struct xr_doc *doc = &r->set.docs[i];
        unsigned rep;
        char *run;

        if (doc->stream_pos + 1 != doc->stream_len)
            continue;
        add_version(&r->versions, doc->fio_version);
        run = run_of(doc->path, &rep);
        for (size_t j = 0; j < doc->njobs; j++) {
            struct xr_group *g = group_for(r, doc->jobs[j].name);
            struct xr_cfg *c = cfg_of_run(g, run, doc, j);

            if (!c) {
                c = xr_mem_push(&g->cfgs, &g->ncfgs, sizeof *c);
                c->doc = doc;
                c->job = &doc->jobs[j];
                c->job_index = j;
                c->run = xr_mem_strdup(run);
                bench_side(c);
            }
            add_rep(c, doc, j, rep);
            add_version(&g->versions, doc->fio_version);
            for (int d = 0; d < XR_NDIR; d++)
                if (doc->jobs[j].dir[d].total_ios > 0)
                    g->dirs |= 1u << d;
        }
        free(run);
    }
    for (size_t g = 0; g < r->ngroups; g++) {
        for (size_t i = 0; i < r->groups[g].ncfgs; i++)
            pick_median_rep(&r->groups[g].cfgs[i]);
        if (all_bench(&r->groups[g]))
            qsort(r->groups[g].cfgs, r->groups[g].ncfgs, sizeof *r->groups[g].cfgs, by_pair);
    }
}

static char *cfg_fallback(const struct xr_cfg *c, size_t njobs_same_name)
{
    char *base = xr_mem_strdup(c->run);
    char *out;

    if (njobs_same_name < 2)
        return base;
    /* numjobs=4 without group_reporting: four jobs, one name, one file */
    out = xr_mem_printf("%s job %zu", base, c->job_index + 1);
    free(base);
    return out;
}

static size_t jobs_named(const struct xr_doc *doc, const char *name)
{
    size_t n = 0;

    for (size_t j = 0; j < doc->njobs; j++)
        n += strcmp(doc->jobs[j].name, name) == 0;
    return n;
}

/* A bench's configurations go by the bench's names, which the engineer
 * chooses between, and every reference by one pattern: "NAME ref (fio
 * ENGINE)", so it reads as the baseline of NAME, never as a choice. */
static void bench_labels(struct xr_group *g)
{
    for (size_t i = 0; i < g->ncfgs; i++) {
        struct xr_cfg *c = &g->cfgs[i];

        free(c->label);
        if (c->side == XR_SIDE_XDEVICE)
            c->label = xr_mem_strdup(c->bench_name);
        else
            c->label = xr_mem_printf("%s ref (fio %s)", c->bench_name,
                                     c->job->engine && *c->job->engine ? c->job->engine : "?");
    }
}

static void label_group(struct xr_group *g)
{
    struct item *it = xr_mem_alloc((g->ncfgs + 1) * sizeof *it);
    char **labels;

    for (size_t i = 0; i < g->ncfgs; i++) {
        const struct xr_cfg *c = &g->cfgs[i];

        it[i].kv = c->job->opts;
        it[i].nkv = c->job->nopts;
        it[i].host = c->job->hostname;
        it[i].fallback = cfg_fallback(c, jobs_named(c->doc, c->job->name));
    }
    labels = label_items(it, g->ncfgs, &g->differ);
    for (size_t i = 0; i < g->ncfgs; i++) {
        g->cfgs[i].label = labels[i];
        free(it[i].fallback);
    }
    free(labels);
    free(it);
    if (all_bench(g))
        bench_labels(g);
}

char *xr_stats_bench_name(const char *source, unsigned *rep)
{
    char *base = xr_basename_noext(source);      /* NAME.xdevice.rK.stats */
    size_t n = strlen(base);
    char *run, *out = NULL;

    if (n > 6 && strcmp(base + n - 6, ".stats") == 0) {
        base[n - 6] = '\0';
        char *withjson = xr_mem_printf("%s.json", base);
        run = run_of(withjson, rep);
        n = strlen(run);
        if (n > 8 && strcmp(run + n - 8, ".xdevice") == 0)
            out = xr_mem_strndup(run, n - 8);
        free(run);
        free(withjson);
    }
    free(base);
    return out;
}

/* A bench's stats go by the bench's names too: "NAME run K". */
static void bench_stats_labels(struct xr_report *r)
{
    unsigned rep;

    for (size_t i = 0; i < r->nstats; i++) {   /* all of them a bench's, or no change */
        char *name = xr_stats_bench_name(r->stats[i].st->source, &rep);

        if (!name)
            return;
        free(name);
    }
    for (size_t i = 0; i < r->nstats; i++) {
        char *name = xr_stats_bench_name(r->stats[i].st->source, &rep);

        free(r->stats[i].label);
        r->stats[i].label = xr_mem_printf("%s run %u", name, rep);
        free(name);
    }
}

/* A stats document's name when nothing else tells it apart: its file's
 * name less the extension; a server's document's source is "PATH (HOST)",
 * whose host keeps its dots ("client (10.0.0.7)", not "client (10.0.0"). */
static char *stats_fallback(const struct xr_xdstats *st)
{
    size_t n = strlen(st->source), tail = st->host ? strlen(st->host) + 3 : 0;

    if (tail && n > tail && strncmp(st->source + n - tail, " (", 2) == 0) {
        char *path = xr_mem_strndup(st->source, n - tail);
        char *base = xr_basename_noext(path);
        char *name = xr_mem_printf("%s (%s)", base, st->host);

        free(path);
        free(base);
        return name;
    }
    return xr_basename_noext(st->source);
}

static void label_stats(struct xr_report *r)
{
    struct item *it = xr_mem_alloc((r->set.nstats + 1) * sizeof *it);
    char **labels;

    r->nstats = r->set.nstats;
    r->stats = xr_mem_alloc((r->nstats + 1) * sizeof *r->stats);
    for (size_t i = 0; i < r->nstats; i++) {
        it[i].kv = r->set.stats[i].config;
        it[i].nkv = r->set.stats[i].nconfig;
        it[i].host = r->set.stats[i].host;
        it[i].fallback = stats_fallback(&r->set.stats[i]);
    }
    labels = label_items(it, r->nstats, &r->stats_differ);
    for (size_t i = 0; i < r->nstats; i++) {
        r->stats[i].st = &r->set.stats[i];
        r->stats[i].label = labels[i];
        free(it[i].fallback);
    }
    free(labels);
    free(it);
}

void xr_configs_build(struct xr_report *r)
{
    collect_groups(r);
    for (size_t g = 0; g < r->ngroups; g++)
        label_group(&r->groups[g]);
    label_stats(r);
    if (r->nstats)
        bench_stats_labels(r);
    if (!r->versions)
        r->versions = xr_mem_strdup("");
}

void xr_configs_free(struct xr_report *r)
{
    for (size_t g = 0; g < r->ngroups; g++) {
        struct xr_group *grp = &r->groups[g];

        for (size_t i = 0; i < grp->ncfgs; i++) {
            free(grp->cfgs[i].label);
            free(grp->cfgs[i].reps);
            free(grp->cfgs[i].run);
            free(grp->cfgs[i].bench_name);
        }
        free(grp->cfgs);
        free(grp->name);
        free(grp->slug);
        free(grp->versions);
        free(grp->differ);
    }
    for (size_t i = 0; i < r->nstats; i++)
        free(r->stats[i].label);
    free(r->stats);
    free(r->stats_differ);
    free(r->groups);
    free(r->versions);
}
