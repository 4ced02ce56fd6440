/* fiojson.c - one fio JSON document (--output-format=json or json+) to
 * struct xr_doc.
 *
 * fio 3.x keys: "fio version", "timestamp", "timestamp_ms", "global options",
 * and "jobs" - or "client_stats" in client/server mode, where each entry
 * also has "hostname". Per job: "jobname", "groupid", "error", "job options"
 * and per direction "io_bytes", "bw_bytes", "iops", "runtime" (ms),
 * "total_ios", "clat_ns" {"min", "max", "mean", "percentile", "bins"}.
 * What xdtune reads too (numbers, the jobs, lat_ns or clat_ns) comes from
 * common/fiojson.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "load.h"
#include "mem.h"
#include "options.h"

char *xr_json_text(const cJSON *item)
{
    char num[40];

    if (cJSON_IsString(item))
        return xr_mem_strdup(item->valuestring ? item->valuestring : "");
    if (cJSON_IsNumber(item)) {
        xr_fmt_num(num, sizeof num, item->valuedouble);
        return xr_mem_strdup(num);
    }
    if (cJSON_IsBool(item))
        return xr_mem_strdup(cJSON_IsTrue(item) ? "true" : "false");
    if (cJSON_IsNull(item))
        return xr_mem_strdup("null");
    return cJSON_PrintUnformatted(item);    /* arrays, objects: as JSON */
}

/* Set key to val, replacing an earlier value: job options override global ones. */
static void kv_set(struct xr_kv **kv, size_t *n, const char *key, char *val)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].val);
            (*kv)[i].val = val;
            return;
        }
    }
    struct xr_kv *e = xr_mem_push(kv, n, sizeof *e);
    e->key = xr_mem_strdup(key);
    e->val = val;
}

void xr_json_kv(const cJSON *obj, struct xr_kv **kv, size_t *n)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
        if (it->string)
            kv_set(kv, n, it->string, xr_json_text(it));
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct xr_kv *)a)->key, ((const struct xr_kv *)b)->key);
}

/* "k=v k=v" of the options that describe the configuration, sorted so that
 * the same configuration always gives the same string. */
static char *config_string(const struct xr_kv *opts, size_t nopts)
{
    struct xr_kv *sorted = xr_mem_alloc((nopts + 1) * sizeof *sorted);
    size_t n = 0, len = 0;
    char *out, *p;

    for (size_t i = 0; i < nopts; i++)
        if (xr_opt_class(opts[i].key) == XR_OPT_CONFIG) {
            sorted[n].key = (char *)xr_opt_canon(opts[i].key);
            sorted[n].val = xr_opt_value(opts[i].key, opts[i].val);
            len += strlen(sorted[n].key) + strlen(sorted[n].val) + 2;
            n++;
        }
    qsort(sorted, n, sizeof *sorted, kv_cmp);
    p = out = xr_mem_alloc(len + 1);
    for (size_t i = 0; i < n; i++) {
        p += sprintf(p, "%s%s=%s", i ? " " : "", sorted[i].key, sorted[i].val);
        free(sorted[i].val);
    }
    free(sorted);
    return out;
}

/* fio's percentile keys are "99.990000"; match them to xr_pct by value. */
static void read_percentiles(struct xr_dir *dir, const cJSON *pct)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, pct) {
        double p = it->string ? strtod(it->string, NULL) : -1;

        for (int i = 0; i < XR_NPCT; i++)
            if (fabs(p - xr_pct[i]) < 1e-6 && cJSON_IsNumber(it))
                dir->clat_pct_ns[i] = it->valuedouble;
    }
}

static int bin_cmp(const void *a, const void *b)
{
    const struct xr_bin *x = a, *y = b;

    return (x->ns > y->ns) - (x->ns < y->ns);
}

static void read_bins(struct xr_dir *dir, const cJSON *bins)
{
    const cJSON *it;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(bins);

    if (!cap)
        return;
    dir->bins = xr_mem_alloc(cap * sizeof *dir->bins);
    cJSON_ArrayForEach(it, bins) {
        if (!it->string || !cJSON_IsNumber(it) || n == cap)
            continue;
        dir->bins[n].ns = strtoull(it->string, NULL, 10);
        dir->bins[n].count = (uint64_t)it->valuedouble;
        n++;
    }
    qsort(dir->bins, n, sizeof *dir->bins, bin_cmp);
    dir->nbins = n;
}

static const cJSON *with_member(const cJSON *dobj, const char *member)
{
    return cJSON_GetObjectItemCaseSensitive(fiojson_latency(dobj), member);
}

static void read_dir(struct xr_dir *dir, const cJSON *dobj)
{
    for (int i = 0; i < XR_NPCT; i++)
        dir->clat_pct_ns[i] = NAN;
    dir->clat_mean_ns = dir->clat_min_ns = dir->clat_max_ns = NAN;
    if (!cJSON_IsObject(dobj))
        return;
    dir->io_bytes = (uint64_t)fiojson_num(dobj, "io_bytes", 0);
    dir->total_ios = (uint64_t)fiojson_num(dobj, "total_ios", 0);
    dir->runtime_ms = (uint64_t)fiojson_num(dobj, "runtime", 0);
    dir->iops = fiojson_num(dobj, "iops", 0);
    /* "bw_bytes" since fio 3.3; "bw" (KiB/s) before */
    dir->bw_bytes = fiojson_num(dobj, "bw_bytes", fiojson_num(dobj, "bw", 0) * 1024);
    /* min/mean/max from the same latency as the percentiles */
    const cJSON *src = fiojson_latency(dobj);
    dir->total_lat = src && strcmp(src->string, "lat_ns") == 0;
    if (cJSON_IsObject(src)) {
        dir->clat_min_ns = fiojson_num(src, "min", NAN);
        dir->clat_max_ns = fiojson_num(src, "max", NAN);
        dir->clat_mean_ns = fiojson_num(src, "mean", NAN);
    }
    read_percentiles(dir, with_member(dobj, "percentile"));
    read_bins(dir, with_member(dobj, "bins"));
}

static void read_job(struct xr_job *job, const cJSON *jobj, const cJSON *global)
{
    const char *host = fiojson_str(jobj, "hostname");
    static const char *const dkey[XR_NDIR] = { "read", "write", "trim" };

    job->name = xr_mem_strdup(fiojson_str(jobj, "jobname"));
    job->hostname = *host ? xr_mem_strdup(host) : NULL;
    job->groupid = (int)fiojson_num(jobj, "groupid", 0);
    job->error = (int)fiojson_num(jobj, "error", 0);
    xr_json_kv(global, &job->opts, &job->nopts);
    xr_json_kv(cJSON_GetObjectItemCaseSensitive(jobj, "job options"), &job->opts, &job->nopts);
    job->engine = xr_mem_strdup("");
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(job->opts[i].key, "ioengine") == 0) {
            free(job->engine);
            job->engine = xr_mem_strdup(job->opts[i].val);
        }
    job->config = config_string(job->opts, job->nopts);
    for (int d = 0; d < XR_NDIR; d++)
        read_dir(&job->dir[d], cJSON_GetObjectItemCaseSensitive(jobj, dkey[d]));
}

int xr_fiojson_parse(struct xr_doc *doc, const cJSON *root, char *err, size_t errlen)
{
    const cJSON *jobs = fiojson_jobs(root);
    const cJSON *global = cJSON_GetObjectItemCaseSensitive(root, "global options");
    const cJSON *it;

    if (!cJSON_IsArray(jobs)) {
        snprintf(err, errlen, "\"%s\" is not an array", jobs->string);
        return -1;
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, "fio version")) {
        snprintf(err, errlen, "JSON with \"%s\" but no \"fio version\": not fio output",
                 jobs->string);
        return -1;
    }
    doc->fio_version = xr_mem_strdup(fiojson_str(root, "fio version"));
    doc->timestamp = (int64_t)fiojson_num(root, "timestamp", 0);
    doc->timestamp_ms = (int64_t)fiojson_num(root, "timestamp_ms", 0);
    cJSON_ArrayForEach(it, jobs) {
        /* client/server with several hosts adds an "All clients" sum of the
         * hosts' entries; reporting it too would count every I/O twice */
        if (strcmp(fiojson_str(it, "jobname"), "All clients") == 0)
            continue;
        read_job(xr_mem_push(&doc->jobs, &doc->njobs, sizeof *doc->jobs), it, global);
    }
    return 0;
}
