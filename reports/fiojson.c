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
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
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

/* --- checked figures -------------------------------------------------------------
 *
 * fio writes every figure read here as a number of 0 or more (a few as
 * strings holding one). Anything else was not written by fio: a figure
 * read as 0 or as a default would be a made-up result, so it is refused,
 * naming where it is ("job 'x': read.clat_ns.mean") and the value. */

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* it (the member key of the object at "at") as a figure: 0, or -1 with err. */
static int check_figure(const cJSON *it, const char *at, const char *key, double *out, char *err,
                        size_t errlen)
{
    char shown[XR_ESCAPE_LEN], name[XR_ESCAPE_LEN];
    double v = NAN;

    if (cJSON_IsNumber(it))
        v = it->valuedouble;
    else if (cJSON_IsString(it) && it->valuestring && *it->valuestring) {
        char *end;

        v = strtod(it->valuestring, &end);
        v = *end ? NAN : v;
    }
    xr_escape(key, name, sizeof name);
    if (isnan(v)) {
        char *text = cJSON_PrintUnformatted(it);    /* a string in its quotes */
        int rc = bad(err, errlen, "%s%s: %s is not a number; allowed: a number, 0 or more", at, name,
                     xr_escape(text ? text : "", shown, sizeof shown));
        free(text);
        return rc;
    }
    if (isinf(v))
        return bad(err, errlen, "%s%s: a number beyond the range of a double (read as %sinfinity); allowed: a finite number, 0 or more",
                   at, name, v < 0 ? "-" : "");
    if (v < 0)
        return bad(err, errlen, "%s%s: %.17g is negative; allowed: a number, 0 or more", at, name, v);
    *out = v;
    return 0;
}

/* The figure at key of obj; dflt when fio left it out. */
static int read_figure(const cJSON *obj, const char *key, const char *at, double dflt, double *out,
                       char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    *out = dflt;
    return it ? check_figure(it, at, key, out, err, errlen) : 0;
}

/* fio's percentile keys are "99.990000"; match them to xr_pct by value. */
static int read_percentiles(struct xr_dir *dir, const cJSON *pct, const char *at, char *err,
                            size_t errlen)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, pct) {
        char *end, shown[XR_ESCAPE_LEN];
        double p = it->string ? strtod(it->string, &end) : NAN, v;

        if (!it->string || end == it->string || *end || !(p >= 0 && p <= 100))
            return bad(err, errlen, "%spercentile: key \"%s\" is not a percentile; allowed: a number from 0 to 100",
                       at, xr_escape(it->string ? it->string : "", shown, sizeof shown));
        if (check_figure(it, at, "percentile", &v, err, errlen))
            return -1;
        for (int i = 0; i < XR_NPCT; i++)
            if (fabs(p - xr_pct[i]) < 1e-6)
                dir->clat_pct_ns[i] = v;
    }
    return 0;
}

static int bin_cmp(const void *a, const void *b)
{
    const struct xr_bin *x = a, *y = b;

    return (x->ns > y->ns) - (x->ns < y->ns);
}

/* json+ "bins": {"LATENCY_NS": COUNT, ...}, both whole numbers. */
static int read_bin(struct xr_bin *bin, const cJSON *it, const char *at, char *err, size_t errlen)
{
    char shown[XR_ESCAPE_LEN], *end;
    double count;
    const char *key = it->string ? it->string : "";

    errno = 0;
    unsigned long long ns = strtoull(key, &end, 10);
    if (!isdigit((unsigned char)key[0]) || *end || errno)
        return bad(err, errlen, "%sbins: key \"%s\" is not a latency; allowed: a whole number of ns",
                   at, xr_escape(key, shown, sizeof shown));
    if (check_figure(it, at, "bins", &count, err, errlen))
        return -1;
    bin->ns = ns;
    bin->count = (uint64_t)count;
    return 0;
}

static int read_bins(struct xr_dir *dir, const cJSON *bins, const char *at, char *err,
                     size_t errlen)
{
    const cJSON *it;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(bins);

    if (!cap)
        return 0;
    dir->bins = xr_mem_alloc(cap * sizeof *dir->bins);
    cJSON_ArrayForEach(it, bins) {
        if (n == cap)
            break;
        if (read_bin(&dir->bins[n++], it, at, err, errlen))
            return -1;
    }
    qsort(dir->bins, n, sizeof *dir->bins, bin_cmp);
    dir->nbins = n;
    return 0;
}

static const cJSON *with_member(const cJSON *dobj, const char *member)
{
    return cJSON_GetObjectItemCaseSensitive(fiojson_latency(dobj), member);
}

/* min/mean/max, percentiles and bins of the latency fio measured (lat_ns
 * or clat_ns: fiojson_latency). */
static int read_latency(struct xr_dir *dir, const cJSON *dobj, const char *at, char *err,
                        size_t errlen)
{
    const cJSON *src = fiojson_latency(dobj);
    char *where;
    int rc;

    if (!cJSON_IsObject(src))
        return 0;
    dir->total_lat = strcmp(src->string, "lat_ns") == 0;
    where = xr_mem_printf("%s%s.", at, src->string);
    rc = read_figure(src, "min", where, NAN, &dir->clat_min_ns, err, errlen) ||
         read_figure(src, "max", where, NAN, &dir->clat_max_ns, err, errlen) ||
         read_figure(src, "mean", where, NAN, &dir->clat_mean_ns, err, errlen) ||
         read_percentiles(dir, with_member(dobj, "percentile"), where, err, errlen) ||
         read_bins(dir, with_member(dobj, "bins"), where, err, errlen);
    free(where);
    return rc ? -1 : 0;
}

/* One direction's figures; at is "job 'x': read.". */
static int read_dir(struct xr_dir *dir, const cJSON *dobj, const char *at, char *err,
                    size_t errlen)
{
    double io_bytes, total_ios, runtime, bw_kib;

    for (int i = 0; i < XR_NPCT; i++)
        dir->clat_pct_ns[i] = NAN;
    dir->clat_mean_ns = dir->clat_min_ns = dir->clat_max_ns = NAN;
    if (!dobj)
        return 0;
    if (read_figure(dobj, "io_bytes", at, 0, &io_bytes, err, errlen) ||
        read_figure(dobj, "total_ios", at, 0, &total_ios, err, errlen) ||
        read_figure(dobj, "runtime", at, 0, &runtime, err, errlen) ||
        read_figure(dobj, "iops", at, 0, &dir->iops, err, errlen) ||
        read_figure(dobj, "bw", at, 0, &bw_kib, err, errlen) ||
        /* "bw_bytes" since fio 3.3; "bw" (KiB/s) before */
        read_figure(dobj, "bw_bytes", at, bw_kib * 1024, &dir->bw_bytes, err, errlen))
        return -1;
    dir->io_bytes = (uint64_t)io_bytes;
    dir->total_ios = (uint64_t)total_ios;
    dir->runtime_ms = (uint64_t)runtime;
    /* min/mean/max from the same latency as the percentiles */
    return read_latency(dir, dobj, at, err, errlen);
}

/* fio writes "read", "write" and "trim" for every job, with or without I/O,
 * or, with unified_rw_reporting=1, "mixed" alone; a job with neither holds
 * no figure at all. */
static int read_dirs(struct xr_job *job, const cJSON *jobj, const char *name, char *err,
                     size_t errlen)
{
    const cJSON *mixed = fiojson_mixed(jobj);

    for (int d = 0; d < XR_NDIR; d++) {
        const char *key = xr_ddir_name[d];
        const cJSON *dobj = d == XR_MIXED ? mixed : cJSON_GetObjectItemCaseSensitive(jobj, key);
        char *at;
        int rc;

        if (!dobj && !mixed && d < XR_TRIM)
            return bad(err, errlen, "job '%s': no \"%s\" object; allowed: a job as fio writes it, with \"read\", \"write\" and \"trim\" (or \"mixed\" alone: unified_rw_reporting=1)",
                       name, key);
        if (dobj && !cJSON_IsObject(dobj))
            return bad(err, errlen, "job '%s': \"%s\" is not an object; allowed: a job as fio writes it, with \"read\", \"write\" and \"trim\" objects",
                       name, key);
        at = xr_mem_printf("job '%s': %s.", name, key);
        rc = read_dir(&job->dir[d], dobj, at, err, errlen);
        free(at);
        if (rc)
            return -1;
    }
    return 0;
}

/* The job's name is its workload: fio always writes one. */
static int check_jobname(const cJSON *jobj, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(jobj, "jobname");
    char shown[XR_ESCAPE_LEN];
    char *text;

    if (cJSON_IsString(it) && it->valuestring && *it->valuestring)
        return 0;
    text = it ? cJSON_PrintUnformatted(it) : NULL;
    bad(err, errlen, "a job's \"jobname\" is %s; allowed: a name (a non-empty string)",
        !it ? "missing" : xr_escape(text ? text : "", shown, sizeof shown));
    free(text);
    return -1;
}

static int read_job(struct xr_job *job, const cJSON *jobj, const cJSON *global, char *err,
                    size_t errlen)
{
    const char *host = fiojson_str(jobj, "hostname");
    char name[XR_ESCAPE_LEN], *at;
    double groupid, error;
    int rc;

    if (check_jobname(jobj, err, errlen))
        return -1;
    job->name = xr_mem_strdup(fiojson_str(jobj, "jobname"));
    job->hostname = *host ? xr_mem_strdup(host) : NULL;
    xr_escape(job->name, name, sizeof name);
    at = xr_mem_printf("job '%s': ", name);
    rc = read_figure(jobj, "groupid", at, 0, &groupid, err, errlen) ||
         read_figure(jobj, "error", at, 0, &error, err, errlen);
    free(at);
    if (rc)
        return -1;
    job->groupid = (int)fmin(groupid, INT_MAX);
    job->error = (int)fmin(error, INT_MAX);
    xr_json_kv(global, &job->opts, &job->nopts);
    xr_json_kv(cJSON_GetObjectItemCaseSensitive(jobj, "job options"), &job->opts, &job->nopts);
    job->engine = xr_mem_strdup("");
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(job->opts[i].key, "ioengine") == 0) {
            free(job->engine);
            job->engine = xr_mem_strdup(job->opts[i].val);
        }
    job->config = config_string(job->opts, job->nopts);
    return read_dirs(job, jobj, name, err, errlen);
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
    if (!cJSON_GetArraySize(jobs)) {
        snprintf(err, errlen, "\"%s\" is empty: no job to report; allowed: fio output, which lists every job", jobs->string);
        return -1;
    }
    cJSON_ArrayForEach(it, jobs) {
        /* client/server with several hosts adds an "All clients" sum of the
         * hosts' entries; reporting it too would count every I/O twice */
        if (strcmp(fiojson_str(it, "jobname"), "All clients") == 0)
            continue;
        if (read_job(xr_mem_push(&doc->jobs, &doc->njobs, sizeof *doc->jobs), it, global, err,
                     errlen))
            return -1;
    }
    return 0;
}
