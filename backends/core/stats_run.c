/* stats_run.c - the per-run statistics document, assembled from per-job fragments.
 *
 * fio's jobs may be processes, so no job can see another's memory. Each job
 * writes a binary fragment (its raw histograms, so the aggregate's percentiles
 * are exact merges rather than averages of percentiles) and then, under an
 * flock, renders every fragment of its run into the JSON document.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "stats.h"

#define FRAG_MAGIC "XDSTAT01"

struct frag_header {
    char magic[8];
    char run_id[64];
    char name[128];
    uint32_t job_key;
    uint32_t jobnum;
    uint32_t extra_len; /* JSON object after the snapshot, see frag_extra */
    uint32_t pad;
};

struct frag {
    struct frag_header hdr;
    struct xd_stats_snapshot snap;
    char *extra;
};

static const char *op_names[XD_OP_COUNT] = {"read", "write", "trim", "fsync", "fdatasync"};

void xd_stats_merge(struct xd_stats_snapshot *into, const struct xd_stats_snapshot *from)
{
    for (int i = 0; i < XD_OP_COUNT; i++) {
        into->op[i].ops += from->op[i].ops;
        into->op[i].bytes += from->op[i].bytes;
        into->op[i].errors += from->op[i].errors;
        into->op[i].slow += from->op[i].slow;
        xd_hist_merge(&into->op[i].lat_ns, &from->op[i].lat_ns);
    }
}

static void lat_json(struct xd_json *j, const struct xd_hist *h)
{
    static const struct { const char *name; double p; } pcts[] = {
        {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}};
    xd_json_object_begin(j, "lat_ns");
    xd_json_double(j, "mean", xd_hist_mean(h));
    xd_json_uint(j, "min", h->min);
    xd_json_uint(j, "max", h->max);
    for (unsigned i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        xd_json_uint(j, pcts[i].name, xd_hist_percentile(h, pcts[i].p));
    xd_json_object_end(j);
}

static void op_json(struct xd_json *j, const char *name, const struct xd_op_stats *o)
{
    xd_json_object_begin(j, name);
    xd_json_uint(j, "ops", o->ops);
    xd_json_uint(j, "bytes", o->bytes);
    xd_json_uint(j, "errors", o->errors);
    xd_json_uint(j, "slow", o->slow);
    lat_json(j, &o->lat_ns);
    xd_json_object_end(j);
}

void xd_stats_ops_json(struct xd_json *j, const struct xd_stats_snapshot *s)
{
    /* fio reports fsync and fdatasync together as "sync"; so do we, and
     * keep them apart as well for those who care which. */
    struct xd_op_stats sync = {0};
    uint64_t errors = 0, slow = 0;
    for (int i = XD_OP_FSYNC; i <= XD_OP_FDATASYNC; i++) {
        sync.ops += s->op[i].ops;
        sync.bytes += s->op[i].bytes;
        sync.errors += s->op[i].errors;
        sync.slow += s->op[i].slow;
        xd_hist_merge(&sync.lat_ns, &s->op[i].lat_ns);
    }
    xd_json_object_begin(j, "ops");
    op_json(j, "read", &s->op[XD_OP_READ]);
    op_json(j, "write", &s->op[XD_OP_WRITE]);
    op_json(j, "trim", &s->op[XD_OP_TRIM]);
    op_json(j, "sync", &sync);
    op_json(j, "fsync", &s->op[XD_OP_FSYNC]);
    op_json(j, "fdatasync", &s->op[XD_OP_FDATASYNC]);
    xd_json_object_end(j);
    for (int i = 0; i < XD_OP_COUNT; i++) {
        errors += s->op[i].errors;
        slow += s->op[i].slow;
    }
    xd_json_uint(j, "errors", errors);
    xd_json_uint(j, "slow_ops", slow);
    xd_json_array_begin(j, "slowest");
    for (unsigned i = 0; i < s->nslow; i++) {
        const struct xd_slow_op *so = &s->slowest[i];
        xd_json_object_begin(j, NULL);
        xd_json_string(j, "op", so->op < XD_OP_COUNT ? op_names[so->op] : "?");
        xd_json_uint(j, "offset", so->off);
        xd_json_uint(j, "len", so->len);
        xd_json_uint(j, "lat_ns", so->lat_ns);
        xd_json_int(j, "result", so->result);
        xd_json_object_end(j);
    }
    xd_json_array_end(j);
}

/* Write all of buf or fail: stats files are small, a short write is an error. */
static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write a whole file atomically: a temp file beside it, fsync, rename. */
static int write_atomic(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                        const void *c, size_t clen)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, a, alen);
    if (!rc && blen)
        rc = write_all(fd, b, blen);
    if (!rc && clen)
        rc = write_all(fd, c, clen);
    if (!rc && fsync(fd))
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static int frag_read(const char *file, struct frag *f)
{
    FILE *fp = fopen(file, "rb");
    int rc = -EINVAL;
    if (!fp)
        return -errno;
    if (fread(&f->hdr, sizeof(f->hdr), 1, fp) == 1 && !memcmp(f->hdr.magic, FRAG_MAGIC, 8) &&
        fread(&f->snap, sizeof(f->snap), 1, fp) == 1 && f->hdr.extra_len < (1u << 24)) {
        f->hdr.run_id[sizeof(f->hdr.run_id) - 1] = '\0';
        f->hdr.name[sizeof(f->hdr.name) - 1] = '\0';
        f->extra = calloc(1, f->hdr.extra_len + 1);
        if (f->extra && fread(f->extra, 1, f->hdr.extra_len, fp) == f->hdr.extra_len)
            rc = 0;
    }
    fclose(fp);
    if (rc) {
        free(f->extra);
        f->extra = NULL;
    }
    return rc;
}

static int frag_compare(const void *a, const void *b)
{
    const struct frag *x = a, *y = b;
    return (x->hdr.job_key > y->hdr.job_key) - (x->hdr.job_key < y->hdr.job_key);
}

/* Read every fragment of run_id in dir (removing other runs'), sorted by job. */
static int frags_collect(const char *dir, const char *run_id, struct frag **out, unsigned *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct frag *frags = NULL;
    unsigned n = 0, cap = 0;
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        char file[4096];
        struct frag f = {0};
        if (!strstr(de->d_name, ".frag") || strstr(de->d_name, ".tmp."))
            continue;
        snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
        if (frag_read(file, &f))
            continue;
        if (strcmp(f.hdr.run_id, run_id)) {
            unlink(file); /* an earlier run's: the document is per run */
            free(f.extra);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct frag *grown = realloc(frags, cap * sizeof(*frags));
            if (!grown) {
                free(f.extra);
                break;
            }
            frags = grown;
        }
        frags[n++] = f;
    }
    closedir(d);
    qsort(frags, n, sizeof(*frags), frag_compare);
    *out = frags;
    *count = n;
    return 0;
}

static char *run_document(const char *run_id, struct frag *frags, unsigned n)
{
    struct xd_json j;
    struct xd_stats_snapshot *total = calloc(1, sizeof(*total));
    if (!total)
        return NULL;
    xd_json_init(&j);
    xd_json_object_begin(&j, NULL);
    xd_json_object_begin(&j, "xdevice");
    xd_json_string(&j, "version", XD_VERSION);
    xd_json_string(&j, "run_id", run_id);
    xd_json_object_end(&j);
    xd_json_array_begin(&j, "jobs");
    for (unsigned i = 0; i < n; i++) {
        xd_json_object_begin(&j, NULL);
        xd_json_string(&j, "name", frags[i].hdr.name);
        xd_json_uint(&j, "jobnum", frags[i].hdr.jobnum);
        xd_json_uint(&j, "job_key", frags[i].hdr.job_key);
        /* extra is an object; splice its members (type, config, layers) in */
        size_t len = strlen(frags[i].extra);
        if (len >= 2 && frags[i].extra[0] == '{' && frags[i].extra[len - 1] == '}' && len > 2) {
            frags[i].extra[len - 1] = '\0';
            xd_json_raw(&j, NULL, frags[i].extra + 1);
        }
        xd_stats_ops_json(&j, &frags[i].snap);
        xd_json_object_end(&j);
        xd_stats_merge(total, &frags[i].snap);
    }
    xd_json_array_end(&j);
    xd_json_object_begin(&j, "aggregate");
    xd_json_uint(&j, "jobs", n);
    xd_stats_ops_json(&j, total);
    xd_json_object_end(&j);
    xd_json_object_end(&j);
    free(total);
    return xd_json_finish(&j);
}

void xd_stats_config_layers_json(struct xd_json *j, struct xd_dev *dev, const char *config)
{
    xd_json_raw(j, "config", config);
    xd_json_object_begin(j, "layers");
    xd_layer_control(dev->top, XD_CTL_STATS_JSON, j);
    xd_json_object_end(j);
}

/* What a fragment carries besides its snapshot, as a JSON object:
 * {"type":..,"config":{..},"layers":{..}}. */
static char *frag_extra(struct xd_dev *dev)
{
    struct xd_json j;
    char *config = xd_config_json(dev->cfg);
    if (!config)
        return NULL;
    xd_json_init(&j);
    xd_json_object_begin(&j, NULL);
    xd_json_string(&j, "type", xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type));
    xd_stats_config_layers_json(&j, dev, config);
    xd_json_object_end(&j);
    free(config);
    return xd_json_finish(&j);
}

static int publish_fragment(struct xd_dev *dev, const char *dir, const char *run_id,
                            unsigned job_key, const char *job_name, unsigned jobnum)
{
    const struct xd_stats_snapshot *snap = NULL;
    struct xd_stats_snapshot empty = {0};
    struct frag_header hdr = {.job_key = job_key, .jobnum = jobnum};
    char file[4096];
    if (xd_layer_control(dev->top, XD_CTL_STATS_SNAPSHOT, &snap) || !snap)
        snap = &empty;
    char *extra = frag_extra(dev);
    if (!extra)
        return -ENOMEM;
    memcpy(hdr.magic, FRAG_MAGIC, 8);
    snprintf(hdr.run_id, sizeof(hdr.run_id), "%s", run_id);
    snprintf(hdr.name, sizeof(hdr.name), "%s", job_name);
    hdr.extra_len = (uint32_t)strlen(extra);
    snprintf(file, sizeof(file), "%s/%s-%u.frag", dir, run_id, job_key);
    int rc = write_atomic(file, &hdr, sizeof(hdr), snap, sizeof(*snap), extra, hdr.extra_len);
    free(extra);
    return rc;
}

int xd_stats_publish(struct xd_dev *dev, const char *path, const char *run_id, unsigned job_key,
                     const char *job_name, unsigned jobnum, char *err, size_t errlen)
{
    char dir[4096], lock[4200];
    struct frag *frags = NULL;
    unsigned n = 0;
    int lock_fd = -1, rc;

    snprintf(dir, sizeof(dir), "%s.d", path);
    snprintf(lock, sizeof(lock), "%s.lock", dir);
    if (mkdir(dir, 0755) && errno != EEXIST) {
        rc = -errno;
        xd_errf(err, errlen, "xd_stats=%s: cannot create %s: %s", path, dir, strerror(-rc));
        return rc;
    }
    lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX)) {
        rc = -errno;
        xd_errf(err, errlen, "xd_stats=%s: cannot lock %s: %s", path, lock, strerror(-rc));
        goto out;
    }
    rc = publish_fragment(dev, dir, run_id, job_key, job_name, jobnum);
    if (!rc)
        rc = frags_collect(dir, run_id, &frags, &n);
    char *doc = rc ? NULL : run_document(run_id, frags, n);
    if (!rc && !doc)
        rc = -ENOMEM;
    if (!rc)
        rc = write_atomic(path, doc, strlen(doc), "\n", 1, NULL, 0);
    if (rc)
        xd_errf(err, errlen, "xd_stats=%s: cannot write the stats document: %s", path,
                strerror(-rc));
    free(doc);
    for (unsigned i = 0; i < n; i++)
        free(frags[i].extra);
    free(frags);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}
