/* stats_run.c - the per-run statistics document, assembled from per-job fragments.
 *
 * fio's jobs may be processes, so no job can see another's memory. Each job
 * writes a binary fragment (its raw histograms, so the aggregate's percentiles
 * are exact merges rather than averages of percentiles) and then, under an
 * flock, renders every fragment of its run into the JSON document.
 */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
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

/* Fragments are read without following links: FILE.d is ours, but a
 * link planted there must not make us read (and splice in) another file. */
static int frag_read(int dirfd, const char *name, struct frag *f)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    int rc = -EINVAL;
    if (!fp) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
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

/* Read every fragment of run_id in dirfd (removing other runs'), sorted by job. */
static int frags_collect(int dirfd, const char *run_id, struct frag **out, unsigned *count)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    struct frag *frags = NULL;
    unsigned n = 0, cap = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    rewinddir(d);
    while ((de = readdir(d))) {
        struct frag f = {0};
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 5, ".frag"))
            continue; /* temp files start with '.' */
        if (frag_read(dirfd, de->d_name, &f))
            continue;
        if (strcmp(f.hdr.run_id, run_id)) {
            unlinkat(dirfd, de->d_name, 0); /* an earlier run's: the document is per run */
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
    if (n)
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
    xd_chain_stats_json(dev->top, j);
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

static int publish_fragment(struct xd_dev *dev, int dirfd, const char *run_id, unsigned job_key,
                            const char *job_name, unsigned jobnum)
{
    struct xd_stats_snapshot *owned;
    const struct xd_stats_snapshot *snap = xd_dev_run_stats(dev, &owned);
    static const struct xd_stats_snapshot empty;
    struct frag_header hdr = {.job_key = job_key, .jobnum = jobnum};
    char name[128];
    if (!snap)
        snap = &empty;
    char *extra = frag_extra(dev);
    if (!extra) {
        free(owned);
        return -ENOMEM;
    }
    memcpy(hdr.magic, FRAG_MAGIC, 8);
    snprintf(hdr.run_id, sizeof(hdr.run_id), "%s", run_id);
    snprintf(hdr.name, sizeof(hdr.name), "%s", job_name ? job_name : "");
    hdr.extra_len = (uint32_t)strlen(extra);
    snprintf(name, sizeof(name), "%s-%u.frag", run_id, job_key);
    struct iovec iov[] = {{&hdr, sizeof(hdr)}, {(void *)snap, sizeof(*snap)}, {extra, hdr.extra_len}};
    int rc = xd_write_file_atomic(dirfd, name, (mode_t)dev->cfg->file_permissions, iov, 3, NULL,
                                  NULL, 0);
    free(extra);
    free(owned);
    return rc;
}

/* The run's last job removes what the runs made beside the document: its
 * fragments, FILE.d (when nothing else is in it) and the lock, which it
 * still holds (xd_lock_at makes a waiter on the removed name retry). */
static void publish_cleanup(int parentfd, int dirfd, const char *dname, const char *lname,
                            const char *run_id, const struct frag *frags, unsigned n)
{
    char name[128];
    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s-%u.frag", run_id, frags[i].hdr.job_key);
        unlinkat(dirfd, name, 0);
    }
    if (!unlinkat(parentfd, dname, AT_REMOVEDIR))
        unlinkat(parentfd, lname, 0);
}

/* Render every fragment of the run into the document at base in parentfd;
 * 0 or -errno, with *n the jobs it holds. */
static int publish_document(int parentfd, int dirfd, const char *base, mode_t mode,
                            const char *run_id, struct frag **frags, unsigned *n)
{
    int rc = frags_collect(dirfd, run_id, frags, n);
    char *doc = rc ? NULL : run_document(run_id, *frags, *n);
    if (!rc && !doc)
        rc = -ENOMEM;
    if (!rc) {
        struct iovec iov[] = {{doc, strlen(doc)}, {"\n", 1}};
        rc = xd_write_file_atomic(parentfd, base, mode, iov, 2, NULL, NULL, 0);
    }
    free(doc);
    return rc;
}

/* FILE.d and FILE.d.lock beside FILE, in FILE's (checked) directory. */
static int publish_open(const struct xd_config *cfg, const char *path, const char *base,
                        int parentfd, int *dirfd, char *dname, char *lname, size_t len, char *err,
                        size_t errlen)
{
    snprintf(dname, len, "%s.d", base);
    snprintf(lname, len, "%s.d.lock", base);
    int lock_fd = xd_lock_at(parentfd, lname, (mode_t)cfg->file_permissions);
    if (lock_fd < 0) {
        xd_errf(err, errlen, "xd_stats=%s: cannot lock %s.d.lock: %s", path, path,
                xd_refusal(lock_fd));
        return lock_fd;
    }
    *dirfd = xd_mkdir_own_at(parentfd, dname, (mode_t)cfg->dir_permissions);
    if (*dirfd < 0) {
        xd_errf(err, errlen, "xd_stats=%s: cannot use %s.d for the jobs' fragments: %s", path,
                path, xd_refusal(*dirfd));
        close(lock_fd);
        return *dirfd;
    }
    return lock_fd;
}

/* A name in the document's directory that publishing would refuse: a link,
 * or (for the document) anything but a regular file of ours or root's:
 * the rename would remove another user's file of that name in /tmp. 0 or
 * -errno. */
static int publish_name_usable(int parentfd, const char *name, bool file, const char *path,
                               char *err, size_t errlen)
{
    struct stat st;
    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW))
        return 0;
    bool theirs = st.st_uid != geteuid() && st.st_uid != 0;
    int rc = S_ISLNK(st.st_mode)             ? -ELOOP
             : file && !S_ISREG(st.st_mode) ? -EISDIR
             : file && theirs               ? -EPERM
                                            : 0;
    if (rc)
        xd_errf(err, errlen, "xd_stats=%s: cannot write the stats document: %s (%s)", path,
                xd_refusal(rc), name);
    return rc;
}

int xd_stats_publish_check(struct xd_dev *dev, const char *path, char *err, size_t errlen)
{
    char what[4200], name[NAME_MAX + 16];
    const char *base;
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);
    snprintf(what, sizeof(what), "xd_stats=%s", path);
    int parentfd = xd_dir_open_for(path, what, dev->cfg->allow_shared_directories, &base, err,
                                   errlen);
    if (parentfd < 0)
        return parentfd;
    int rc = 0;
    if (strlen(base) > NAME_MAX - 7) {
        xd_errf(err, errlen, "%s: name too long for its .d.lock beside it; allowed: up to %d characters",
                what, NAME_MAX - 7);
        rc = -ENAMETOOLONG;
    }
    if (!rc)
        rc = publish_name_usable(parentfd, base, true, path, err, errlen);
    snprintf(name, sizeof(name), "%s.d", base);
    if (!rc)
        rc = publish_name_usable(parentfd, name, false, path, err, errlen);
    snprintf(name, sizeof(name), "%s.d.lock", base);
    if (!rc)
        rc = publish_name_usable(parentfd, name, false, path, err, errlen);
    close(parentfd);
    return rc;
}

/* run_id names the fragments ("RUN-JOB.frag") and is kept whole in their
 * header, where a longer one would be cut and then match no fragment, not
 * even the job's own: 1 to 63 printable characters, no '/'. NULL when
 * usable, else what is wrong with it. */
static const char *run_id_refusal(const char *run_id)
{
    if (!run_id)
        return "NULL";
    size_t n = strlen(run_id);
    if (!n || n >= sizeof(((struct frag_header *)0)->run_id))
        return n ? "too long" : "empty";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)run_id[i] < 0x20 || run_id[i] == 0x7f)
            return "holding a control character";
    if (strchr(run_id, '/'))
        return "holding '/'";
    if (run_id[0] == '.') /* its fragments would read as temp files, and be skipped */
        return "starting with '.'";
    return NULL;
}

int xd_stats_publish(struct xd_dev *dev, const char *path, const char *run_id, unsigned job_key,
                     const char *job_name, unsigned jobnum, unsigned run_jobs, char *err,
                     size_t errlen)
{
    const struct xd_config *cfg = dev->cfg;
    char what[4200], dname[NAME_MAX + 8], lname[NAME_MAX + 16];
    const char *base, *bad_id = run_id_refusal(run_id);
    struct frag *frags = NULL;
    unsigned n = 0;
    int dirfd = -1, lock_fd, rc;
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);

    if (bad_id) {
        xd_errf(err, errlen, "xd_stats=%s: run id %s; allowed: 1 to %zu printable characters without '/'",
                path, bad_id, sizeof(((struct frag_header *)0)->run_id) - 1);
        return -EINVAL;
    }
    snprintf(what, sizeof(what), "xd_stats=%s", path);
    int parentfd = xd_dir_open_for(path, what, cfg->allow_shared_directories, &base, err, errlen);
    if (parentfd < 0)
        return parentfd;
    if (strlen(base) > NAME_MAX - 7) {
        xd_errf(err, errlen, "%s: name too long for its .d.lock beside it; allowed: up to %d characters",
                what, NAME_MAX - 7);
        close(parentfd);
        return -ENAMETOOLONG;
    }
    lock_fd = publish_open(cfg, path, base, parentfd, &dirfd, dname, lname, sizeof(dname), err,
                           errlen);
    if (lock_fd < 0) {
        close(parentfd);
        return lock_fd;
    }
    rc = publish_fragment(dev, dirfd, run_id, job_key, job_name, jobnum);
    if (!rc)
        rc = publish_document(parentfd, dirfd, base, (mode_t)cfg->file_permissions, run_id,
                              &frags, &n);
    if (rc)
        xd_errf(err, errlen, "xd_stats=%s: cannot write the stats document: %s", path,
                xd_refusal(rc));
    else if (run_jobs && n >= run_jobs)
        publish_cleanup(parentfd, dirfd, dname, lname, run_id, frags, n);
    for (unsigned i = 0; i < n; i++)
        free(frags[i].extra);
    free(frags);
    close(dirfd);
    close(lock_fd);
    close(parentfd);
    return rc;
}
