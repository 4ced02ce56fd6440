/* cache_trace.c - the block access trace, for xdcachesim to replay. Apart
 * from the cache because it uses none of it: it needs only the request and
 * the file's identity, and works with no cache at all.
 *
 * trace=FILE appends one record per block a request touches (cachesim.h);
 * the layer is in the chain when enable_read_cache or trace is set, and with
 * trace alone it only records.
 *
 * The devices of one process that trace to one file (the same st_dev and
 * st_ino) share one buffer under its lock, so the file holds their records
 * in the order the requests came, as the process's one cache saw them.
 * Each device used to buffer its own 4096 records: two jobs' records then
 * interleaved in runs of 4096, and a replay of a reader beside a scanner
 * saw another sequence than the cache had (on a 6.4 MiB cache the layer's
 * own policy replayed closed 0.344 of the LRU->MIN gap where the engine
 * closed 0.277, and LRU and MIN themselves came from that sequence; in
 * order, 0.433 and 0.438). Processes (fio's jobs without thread=1) have
 * caches of their own and buffers of their own: their records interleave
 * in runs, as their caches never see each other's reads anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "cache_internal.h"

#define CACHE_TRACE_RECS 4096

struct trace_shared {
    struct trace_shared *next;
    dev_t dev;
    ino_t ino;
    int fd;        /* O_APPEND */
    unsigned refs; /* devices using it */
    pthread_mutex_t lock; /* the buffer, and its writes to fd */
    unsigned n;
    struct xd_trace_rec rec[CACHE_TRACE_RECS];
};

static pthread_mutex_t trace_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trace_shared *trace_registry;

/* A child after fork() starts a registry of its own: the parent's devices
 * are not the child's to use (xd_dev_forked), and a buffer's lock may have
 * been held by another of the parent's threads. */
static void trace_forget_parent(void)
{
    trace_registry = NULL;
    pthread_mutex_init(&trace_registry_lock, NULL);
}

__attribute__((constructor)) static void trace_watch_forks(void)
{
    pthread_atfork(NULL, NULL, trace_forget_parent);
}

/* Under t->lock: the buffer to the file. The records of a failed or
 * short write (a full file system) count as lost against the device whose
 * record or close made it (xd_stats: trace_records_lost), so a trace that
 * replays short says so. */
static void trace_write_out(struct cache_layer *cl, struct trace_shared *t)
{
    size_t len = t->n * sizeof(*t->rec);
    ssize_t wrote = t->n ? write(t->fd, t->rec, len) : 0;
    if (wrote != (ssize_t)len)
        cl->trace_lost += t->n - (wrote > 0 ? (size_t)wrote / sizeof(*t->rec) : 0);
    t->n = 0;
}

/* Under t->lock. */
static void trace_add(struct cache_layer *cl, struct trace_shared *t, struct xd_trace_rec rec)
{
    if (t->n == CACHE_TRACE_RECS)
        trace_write_out(cl, t);
    t->rec[t->n++] = rec;
}

void trace_req(struct cache_layer *cl, const struct cache_handle *h, const struct xd_req *req,
               uint32_t shift)
{
    /* a write-through write that goes around the cache drops its blocks,
     * as a trim does (cache_end_write) */
    unsigned op = req->op == XD_OP_READ                                     ? XD_TRACE_READ
                  : req->op == XD_OP_WRITE && !cache_write_goes_around(cl, req) ? XD_TRACE_WRITE
                                                                            : XD_TRACE_TRIM;
    if (!req->len)
        return;
    struct trace_shared *t = cl->trace;
    uint64_t first = req->off >> shift, last = (req->off + req->len - 1) >> shift;
    pthread_mutex_lock(&t->lock);
    for (uint64_t b = first; b <= last; b++)
        trace_add(cl, t, xd_trace_make(h->trace_id, b, op));
    pthread_mutex_unlock(&t->lock);
    cl->trace_records += last - first + 1;
}

/* The process's buffer for the file fd is open on, made on first use:
 * takes fd (closed when another device's buffer already has the file).
 * NULL on -ENOMEM (fd closed). Under trace_registry_lock. */
static struct trace_shared *trace_join(int fd, const struct stat *st)
{
    for (struct trace_shared *t = trace_registry; t; t = t->next) {
        if (t->dev == st->st_dev && t->ino == st->st_ino) {
            close(fd);
            t->refs++;
            return t;
        }
    }
    struct trace_shared *t = calloc(1, sizeof(*t));
    if (!t) {
        close(fd);
        return NULL;
    }
    *t = (struct trace_shared){.next = trace_registry, .dev = st->st_dev, .ino = st->st_ino,
                               .fd = fd, .refs = 1};
    pthread_mutex_init(&t->lock, NULL);
    trace_registry = t;
    return t;
}

int trace_open(struct cache_layer *cl, const struct xd_config *cfg, uint32_t bs, char *err,
               size_t errlen)
{
    char what[PATH_MAX + 8];
    const char *base;
    snprintf(what, sizeof(what), "trace=%s", cfg->trace);
    int dirfd = xd_dir_open_for(cfg->trace, what, cfg->allow_shared_directories, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    /* jobs and runs append to one trace: reused, but only if it is ours */
    int fd = xd_open_own_at(dirfd, base, O_WRONLY | O_APPEND, (mode_t)cfg->file_permissions);
    close(dirfd);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st)) {
        int e = errno;
        close(fd);
        fd = -e;
    }
    if (fd < 0) {
        xd_errf(err, errlen, "%s: cannot open: %s", what, xd_refusal(fd));
        return fd;
    }
    pthread_mutex_lock(&trace_registry_lock);
    cl->trace = trace_join(fd, &st);
    pthread_mutex_unlock(&trace_registry_lock);
    if (!cl->trace)
        return -ENOMEM;
    /* every device's records start with a header: jobs append to one file */
    pthread_mutex_lock(&cl->trace->lock);
    trace_add(cl, cl->trace, (struct xd_trace_rec){.file = XD_TRACE_MAGIC,
                                                   .word = (uint64_t)bs << 2 | XD_TRACE_HEADER});
    pthread_mutex_unlock(&cl->trace->lock);
    return 0;
}

/* The device closes: what the buffer holds goes to the file (other
 * devices' records too: they came before this close), and the last device
 * of the file closes it. */
void trace_close(struct cache_layer *cl)
{
    struct trace_shared *t = cl->trace;
    if (!t)
        return;
    cl->trace = NULL;
    pthread_mutex_lock(&trace_registry_lock);
    pthread_mutex_lock(&t->lock);
    trace_write_out(cl, t);
    pthread_mutex_unlock(&t->lock);
    if (--t->refs == 0) {
        struct trace_shared **p = &trace_registry;
        while (*p != t)
            p = &(*p)->next;
        *p = t->next;
        close(t->fd);
        pthread_mutex_destroy(&t->lock);
        free(t);
    }
    pthread_mutex_unlock(&trace_registry_lock);
}
