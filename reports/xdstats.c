/* xdstats.c - xdevice's stats document (xd_stats=FILE) to struct xr_xdstats.
 *
 * {"xdevice": {"version", "run_id"},
 *  "jobs": [{"name", "jobnum", "type", "config": {...}, "layers": {...}, "ops": {...}}],
 *  "aggregate": {...}}
 *
 * The layers' figures are looked up by key name anywhere under "layers"
 * rather than at fixed paths: layers arrive one issue at a time (cache,
 * compress, tier, sparse...) and each reports what it measures under its
 * own name, so a fixed path would break with every new layer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "load.h"
#include "mem.h"

/* Depth-first, in document order: the first member named key under obj,
 * its path from obj ("cache.hit_ratio") in path[at...]. */
static const cJSON *find_key_in(const cJSON *obj, const char *key, char *path, size_t len,
                                size_t at)
{
    const cJSON *it, *hit;

    cJSON_ArrayForEach(it, obj) {
        if (!it->string)
            continue;
        int n = snprintf(path + at, len - at, "%s%s", at ? "." : "", it->string);
        size_t next = at + (n > 0 ? (size_t)n : 0);

        if (strcmp(it->string, key) == 0)
            return it;
        if (next >= len)
            next = len - 1;     /* a path too long for path: cut, still searched */
        if (cJSON_IsObject(it) && (hit = find_key_in(it, key, path, len, next)))
            return hit;
    }
    path[at] = '\0';
    return NULL;
}

static const cJSON *find_key(const cJSON *obj, const char *key, char *path, size_t len)
{
    return find_key_in(obj, key, path, len, 0);
}

/* "ratio" is generic enough that several layers might use it one day; the
 * one under a compress* layer is the compression ratio. */
static const cJSON *find_compression_ratio(const cJSON *layers, char *path, size_t len)
{
    const cJSON *it, *hit;

    cJSON_ArrayForEach(it, layers)
        if (it->string && strncmp(it->string, "compress", 8) == 0 &&
            (hit = find_key(it, "ratio", path, len))) {
            char *inner = strdup(path);

            snprintf(path, len, "%s.%s", it->string, inner ? inner : "ratio");
            free(inner);
            return hit;
        }
    if ((hit = find_key(layers, "compression_ratio", path, len)))
        return hit;
    return find_key(layers, "ratio", path, len);
}

struct figures {             /* what one "layers" object holds */
    double hit_ratio, comp_ratio;
    double logical, stored, allocated, hot, cold;
    double promotions;       /* NAN: no tier layer */
    double direct_alignment; /* NAN: not the direct file driver */
};

/* The engine writes every layer figure as a number of 0 or more (a hit
 * ratio at most 1). Anything else is not its document: read as absent, a
 * cache with "hit_ratio": "x" became "no cache figures"; read as 0, a
 * made-up result. So it is refused, naming where and the value. */
static int check_figure(const cJSON *it, const char *where, const char *path, double max,
                        double *out, char *err, size_t errlen)
{
    char shown[XR_ESCAPE_LEN], *text;

    if (cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble >= 0 &&
        it->valuedouble <= max) {
        *out = it->valuedouble;
        return 0;
    }
    text = cJSON_PrintUnformatted(it);
    snprintf(err, errlen, "%s%s: %s is not allowed; allowed: %s", where, path,
             xr_escape(text ? text : "?", shown, sizeof shown),
             max == 1 ? "a ratio from 0 to 1" : "a finite number, 0 or more");
    free(text);
    return -1;
}

/* The figure key under layers, or dflt where no layer reports it. */
static int layer_figure(const cJSON *layers, const char *where, const char *key, double max,
                        double dflt, double *out, char *err, size_t errlen)
{
    char path[256];
    const cJSON *it = strcmp(key, "ratio") ? find_key(layers, key, path, sizeof path)
                                           : find_compression_ratio(layers, path, sizeof path);

    *out = dflt;
    return it ? check_figure(it, where, path, max, out, err, errlen) : 0;
}

static int read_layers(const cJSON *layers, const char *where, struct figures *f, char *err,
                       size_t errlen)
{
    return layer_figure(layers, where, "hit_ratio", 1, NAN, &f->hit_ratio, err, errlen) ||
           layer_figure(layers, where, "ratio", INFINITY, NAN, &f->comp_ratio, err, errlen) ||
           layer_figure(layers, where, "logical_bytes", INFINITY, 0, &f->logical, err, errlen) ||
           layer_figure(layers, where, "stored_bytes", INFINITY, 0, &f->stored, err, errlen) ||
           layer_figure(layers, where, "allocated_bytes", INFINITY, 0, &f->allocated, err,
                        errlen) ||
           layer_figure(layers, where, "hot_reads", INFINITY, 0, &f->hot, err, errlen) ||
           layer_figure(layers, where, "cold_reads", INFINITY, 0, &f->cold, err, errlen) ||
           layer_figure(layers, where, "promotions", INFINITY, NAN, &f->promotions, err, errlen) ||
           layer_figure(layers, where, "direct_alignment", INFINITY, NAN, &f->direct_alignment,
                        err, errlen)
               ? -1
               : 0;
}

/* Over jobs without an aggregate: ratios are averaged, reads (events) are
 * summed, and space takes the largest job's figure, because the jobs of
 * one run usually share one file and summing would count it once per job. */
static void combine(struct figures *acc, const struct figures *f, unsigned *nhit, unsigned *ncomp)
{
    if (!isnan(f->hit_ratio)) {
        acc->hit_ratio = (*nhit ? acc->hit_ratio : 0) + f->hit_ratio;
        (*nhit)++;
    }
    if (!isnan(f->comp_ratio)) {
        acc->comp_ratio = (*ncomp ? acc->comp_ratio : 0) + f->comp_ratio;
        (*ncomp)++;
    }
    acc->logical = fmax(acc->logical, f->logical);
    acc->stored = fmax(acc->stored, f->stored);
    acc->allocated = fmax(acc->allocated, f->allocated);
    acc->hot += f->hot;
    acc->cold += f->cold;
    if (!isnan(f->promotions))
        acc->promotions = (isnan(acc->promotions) ? 0 : acc->promotions) + f->promotions;
    if (isnan(acc->direct_alignment))
        acc->direct_alignment = f->direct_alignment;
}

static int read_figures(const cJSON *root, struct figures *acc, char *err, size_t errlen)
{
    const cJSON *agg = cJSON_GetObjectItemCaseSensitive(root, "aggregate");
    const cJSON *alayers = cJSON_GetObjectItemCaseSensitive(agg, "layers");
    unsigned nhit = 0, ncomp = 0, k = 0;
    const cJSON *job;

    *acc = (struct figures){ .hit_ratio = NAN, .comp_ratio = NAN, .promotions = NAN,
                             .direct_alignment = NAN };
    if (cJSON_IsObject(alayers))
        return read_layers(alayers, "aggregate.layers.", acc, err, errlen);
    cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(root, "jobs")) {
        struct figures f;
        char where[48];

        snprintf(where, sizeof where, "jobs[%u].layers.", k++);
        if (read_layers(cJSON_GetObjectItemCaseSensitive(job, "layers"), where, &f, err, errlen))
            return -1;
        combine(acc, &f, &nhit, &ncomp);
    }
    if (nhit)
        acc->hit_ratio /= nhit;
    if (ncomp)
        acc->comp_ratio /= ncomp;
    return 0;
}

/* Was name given to a job before upto? (jobs with numjobs > 1 repeat it) */
static int named_before(const cJSON *jobs, const cJSON *upto, const char *name)
{
    for (const cJSON *j = jobs->child; j && j != upto; j = j->next)
        if (strcmp(fiojson_str(j, "name"), name) == 0)
            return 1;
    return 0;
}

static char *job_names(const cJSON *jobs)
{
    const cJSON *job;
    char *out = xr_mem_strdup("");

    cJSON_ArrayForEach(job, jobs) {
        const char *name = fiojson_str(job, "name");
        char *next;

        if (named_before(jobs, job, name))
            continue;
        next = xr_mem_printf("%s%s%s", out, *out ? ", " : "", name);
        free(out);
        out = next;
    }
    return out;
}

/* The median read latency xdevice measured (the aggregate's, else the
 * first job's), NAN without reads: how fast the reads were answered tells
 * whether a type meant to reach the device reached it. */
static double read_p50(const cJSON *root)
{
    const cJSON *agg = cJSON_GetObjectItemCaseSensitive(root, "aggregate");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(agg, "ops");
    const cJSON *rd;

    if (!ops)
        ops = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "jobs"), 0), "ops");
    rd = cJSON_GetObjectItemCaseSensitive(ops, "read");
    if (fiojson_num(rd, "ops", 0) <= 0)
        return NAN;
    return fiojson_num(cJSON_GetObjectItemCaseSensitive(rd, "lat_ns"), "p50", NAN);
}

int xr_xdstats_parse(struct xr_xdstats *st, const cJSON *root, char *err, size_t errlen)
{
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(root, "xdevice");
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs");
    const cJSON *first = cJSON_GetArrayItem(jobs, 0);
    struct figures f;

    if (!cJSON_IsArray(jobs)) {
        snprintf(err, errlen, "xdevice stats without a \"jobs\" array");
        return -1;
    }
    st->version = xr_mem_strdup(fiojson_str(head, "version"));
    st->run_id = xr_mem_strdup(fiojson_str(head, "run_id"));
    st->type = xr_mem_strdup(fiojson_str(first, "type"));
    st->njobs = (size_t)cJSON_GetArraySize(jobs);
    st->job_names = job_names(jobs);
    xr_json_kv(cJSON_GetObjectItemCaseSensitive(first, "config"), &st->config, &st->nconfig);
    if (read_figures(root, &f, err, errlen))
        return -1;
    st->cache_hit_ratio = f.hit_ratio;
    st->compression_ratio = f.comp_ratio;
    st->logical_bytes = (uint64_t)f.logical;
    st->stored_bytes = (uint64_t)f.stored;
    st->allocated_bytes = (uint64_t)f.allocated;
    st->tier_hot_reads = (uint64_t)f.hot;
    st->tier_cold_reads = (uint64_t)f.cold;
    st->tier_promotions = f.promotions;
    st->direct_alignment = f.direct_alignment;
    st->read_p50_ns = read_p50(root);
    return 0;
}
