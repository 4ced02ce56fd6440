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

#include "load.h"
#include "mem.h"

/* Depth-first, in document order: the first number under key name. */
static const cJSON *find_key(const cJSON *obj, const char *key)
{
    const cJSON *it, *hit;

    cJSON_ArrayForEach(it, obj) {
        if (it->string && strcmp(it->string, key) == 0 && cJSON_IsNumber(it))
            return it;
        if (cJSON_IsObject(it) && (hit = find_key(it, key)))
            return hit;
    }
    return NULL;
}

/* "ratio" is generic enough that several layers might use it one day; the
 * one under a compress* layer is the compression ratio. */
static const cJSON *find_compression_ratio(const cJSON *layers)
{
    const cJSON *it, *hit;

    cJSON_ArrayForEach(it, layers)
        if (it->string && strncmp(it->string, "compress", 8) == 0 && (hit = find_key(it, "ratio")))
            return hit;
    if ((hit = find_key(layers, "compression_ratio")))
        return hit;
    return find_key(layers, "ratio");
}

struct figures {             /* what one "layers" object holds */
    double hit_ratio, comp_ratio;
    double logical, stored, allocated, hot, cold;
    double promotions;       /* NAN: no tier layer */
    double direct_alignment; /* NAN: not the direct file driver */
};

static double num_or(const cJSON *it, double dflt)
{
    return it ? it->valuedouble : dflt;
}

static struct figures read_layers(const cJSON *layers)
{
    struct figures f = {
        .hit_ratio = num_or(find_key(layers, "hit_ratio"), NAN),
        .comp_ratio = num_or(find_compression_ratio(layers), NAN),
        .logical = num_or(find_key(layers, "logical_bytes"), 0),
        .stored = num_or(find_key(layers, "stored_bytes"), 0),
        .allocated = num_or(find_key(layers, "allocated_bytes"), 0),
        .hot = num_or(find_key(layers, "hot_reads"), 0),
        .cold = num_or(find_key(layers, "cold_reads"), 0),
        .promotions = num_or(find_key(layers, "promotions"), NAN),
        .direct_alignment = num_or(find_key(layers, "direct_alignment"), NAN),
    };
    return f;
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

static struct figures read_figures(const cJSON *root)
{
    const cJSON *agg = cJSON_GetObjectItemCaseSensitive(root, "aggregate");
    const cJSON *alayers = cJSON_GetObjectItemCaseSensitive(agg, "layers");
    struct figures acc = { .hit_ratio = NAN, .comp_ratio = NAN, .promotions = NAN,
                           .direct_alignment = NAN };
    unsigned nhit = 0, ncomp = 0;
    const cJSON *job;

    if (cJSON_IsObject(alayers))
        return read_layers(alayers);
    cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(root, "jobs")) {
        struct figures f = read_layers(cJSON_GetObjectItemCaseSensitive(job, "layers"));

        combine(&acc, &f, &nhit, &ncomp);
    }
    if (nhit)
        acc.hit_ratio /= nhit;
    if (ncomp)
        acc.comp_ratio /= ncomp;
    return acc;
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
    f = read_figures(root);
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
