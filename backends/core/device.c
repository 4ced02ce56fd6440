/* device.c - the public API: open a device from a config, open files on it,
 * and pass requests to the top of its chain of layers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fileutil.h"
#include "json.h"
#include "stats.h"
#include "xd_internal.h"

/* --- fork -------------------------------------------------------------------
 * A device belongs to the process that opened it. A child after fork()
 * shares its parent's open file descriptions (and so its OFD locks), the
 * io_uring rings' memory and the process-wide state of every layer, but
 * none of its threads: every call on the parent's device fails there with
 * -EBADF, and xd_close lets it be. The registries of process-wide state
 * forget the parent's in the child the same way (their own handlers), so
 * that a device the child opens is its own. */
static unsigned forks;

static void count_fork(void) { forks++; } /* the child, one thread, before fork returns */

__attribute__((constructor)) static void watch_forks(void) { pthread_atfork(NULL, NULL, count_fork); }

unsigned xd_forks(void) { return forks; }

int xd_dev_refuse_forked(const struct xd_dev *dev, char *err, size_t errlen)
{
    xd_errf(err, errlen, "this device was opened by process %d and process %d, a child after fork(), may not use it; allowed: a device the child opens itself",
            (int)dev->opener, (int)getpid());
    return -EBADF;
}

/* The chain so far and ops, bottom first, each with the bytes of per-request
 * state it takes (those that take some): what a refusal at open lists, so
 * that the line says which layers to drop and where the bytes went. */
static void dev_chain_list(const struct xd_dev *dev, const struct xd_ops *ops, bool sizes,
                           char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    if (sizes)
        used += (size_t)snprintf(buf, len, "core %zu", sizeof(struct xd_req_core));
    for (unsigned i = 0; i <= dev->nlayers && used < len; i++) {
        const struct xd_ops *o = i < dev->nlayers ? dev->layers[i].ops : ops;
        if (sizes && !o->req_ctx_size)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", o->name);
        if (sizes && used < len)
            used += (size_t)snprintf(buf + used, len - used, " %zu", o->req_ctx_size);
    }
}

int xd_dev_push(struct xd_dev *dev, const struct xd_ops *ops, char *err, size_t errlen)
{
    char chain[160];
    if (dev->nlayers == XD_MAX_LAYERS) {
        dev_chain_list(dev, ops, false, chain, sizeof(chain));
        xd_errf(err, errlen, "storage_type=%s: chain deeper than %d layers (%s, bottom first); XD_MAX_LAYERS in core/xd_internal.h must hold the deepest chain a config can ask",
                xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type), XD_MAX_LAYERS, chain);
        return -E2BIG;
    }
    size_t off = dev->req_ctx_used ? dev->req_ctx_used : sizeof(struct xd_req_core);
    off = (off + 7) & ~(size_t)7;
    if (off + ops->req_ctx_size > sizeof(((struct xd_req *)0)->xd_private)) {
        dev_chain_list(dev, ops, true, chain, sizeof(chain));
        xd_errf(err, errlen, "storage_type=%s: the chain's layers need more than the %zu bytes of per-request state xd_req holds (layer %s; bytes each, 8-byte aligned, bottom first: %s)",
                xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type),
                sizeof(((struct xd_req *)0)->xd_private), ops->name, chain);
        return -E2BIG;
    }
    struct xd_layer *layer = &dev->layers[dev->nlayers];
    *layer = (struct xd_layer){.ops = ops, .lower = dev->top, .dev = dev, .level = dev->nlayers,
                               .req_ctx_off = off};
    int rc = ops->open ? ops->open(layer, err, errlen) : 0;
    if (rc)
        return rc;
    dev->nlayers++;
    dev->top = layer;
    dev->req_ctx_used = off + ops->req_ctx_size;
    return 0;
}

struct xd_dev *xd_dev_new(void)
{
    struct xd_dev *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return NULL;
    xd_clock_init();
    pthread_mutex_init(&dev->files_lock, NULL);
    dev->opener = getpid();
    dev->opened_at = xd_forks();
    dev->opened_ns = xd_clock_monotonic_ns();
    return dev;
}

/* The most requests a caller may keep in flight: fio's iodepth allows as
 * many. Each takes the queue's slots; 2^32-1 asked for 32 GiB of them
 * before any other check, and failed as "out of memory". */
#define XD_QUEUE_ENTRIES_MAX 65536u

int xd_open(struct xd_dev **out, const struct xd_config *cfg, unsigned queue_entries, char *err,
            size_t errlen)
{
    if (queue_entries > XD_QUEUE_ENTRIES_MAX) {
        xd_errf(err, errlen, "queue_entries %u; allowed: up to %u requests in flight",
                queue_entries, XD_QUEUE_ENTRIES_MAX);
        return -EINVAL;
    }
    struct xd_dev *dev = xd_dev_new();
    int rc = -ENOMEM;
    if (!dev)
        return rc;
    dev->cfg = xd_config_dup(cfg);
    if (!dev->cfg)
        goto fail;
    /* the queue is as deep as the caller's depth, and at least max_events */
    dev->queue_entries = queue_entries > (unsigned)cfg->max_events ? queue_entries
                                                                    : (unsigned)cfg->max_events;
    rc = xd_config_check(dev->cfg, err, errlen);
    if (rc)
        goto fail;
    rc = xd_types_build(dev, err, errlen);
    if (rc)
        goto fail;
    *out = dev;
    return 0;
fail:
    xd_close(dev);
    return rc;
}

/* Files a caller left open are closed first, as xd_file_close would: what
 * their layers write at close (maps, sidecars, a cache's dirty blocks) is
 * written, and their descriptors and memory are not leaked. */
void xd_close(struct xd_dev *dev)
{
    if (!dev || xd_dev_forked(dev))
        return; /* the parent's: its memory goes with this process */
    while (dev->files)
        xd_file_close(dev, dev->files);
    pthread_mutex_destroy(&dev->files_lock);
    while (dev->nlayers) {
        struct xd_layer *layer = &dev->layers[--dev->nlayers];
        if (layer->ops->close)
            layer->ops->close(layer);
    }
    xd_config_free(dev->cfg);
    free(dev->run_base);
    free(dev);
}

/* The queues see the change at their next stage (memory.gen): a device
 * does not know its drivers' queues, and they may be many (hybrid, mirror). */
int xd_register_memory(struct xd_dev *dev, void *addr, size_t len)
{
    if (xd_dev_forked(dev))
        return -EBADF; /* the parent's device, as every other call says */
    if (len && (!addr || (uintptr_t)addr + len < (uintptr_t)addr))
        return -EINVAL;
    dev->io_memory.addr = len ? addr : NULL;
    dev->io_memory.len = len;
    dev->io_memory.refused = 0; /* the queues' verdict on this memory is still to come */
    dev->io_memory.gen++;
    return 0;
}

/* --- the optional hooks, over every layer that has them ------------------- */

unsigned xd_chain_caps(struct xd_layer *top)
{
    if (!top)
        return 0;
    unsigned below = xd_chain_caps(top->lower);
    return top->ops->caps ? top->ops->caps(top, below) : below;
}

void xd_chain_stats_json(struct xd_layer *top, struct xd_json *j)
{
    for (struct xd_layer *l = top; l; l = l->lower)
        if (l->ops->stats_json)
            l->ops->stats_json(l, j);
}

const struct xd_stats_snapshot *xd_chain_stats_snapshot(struct xd_layer *top)
{
    for (struct xd_layer *l = top; l; l = l->lower)
        if (l->ops->stats_snapshot)
            return l->ops->stats_snapshot(l);
    return NULL;
}

int xd_chain_invalidate(struct xd_layer *top, struct xd_file *file)
{
    for (struct xd_layer *l = top; l; l = l->lower) {
        int rc = l->ops->invalidate ? l->ops->invalidate(l, file) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int xd_chain_reload(struct xd_layer *top, const struct xd_config *before)
{
    for (struct xd_layer *l = top; l; l = l->lower) {
        int rc = l->ops->reload ? l->ops->reload(l, before) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

/* Only the layer right below answers: one without the hook, or one that
 * cannot say, may hold requests whatever lies under it. */
bool xd_below_inline_at(struct xd_layer *layer, const char *path, uint64_t largest_write)
{
    struct xd_layer *l = layer->lower;
    return l && l->ops->inline_at && l->ops->inline_at(l, path, largest_write);
}

int64_t xd_below_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    struct xd_layer *l = layer->lower;
    XD_FIND(l, seek);
    return l ? l->ops->seek(l, file, whence, off) : -ENOTTY;
}

int xd_below_space(struct xd_layer *layer, struct xd_file *file, struct xd_space *out)
{
    struct xd_layer *l = layer->lower;
    XD_FIND(l, space);
    return l ? l->ops->space(l, file, out) : -ENOTTY;
}

int xd_below_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                      unsigned *view)
{
    struct xd_layer *l = layer->lower;
    XD_FIND(l, identity);
    return l ? l->ops->identity(l, file, st, view) : -ENOTTY;
}

int xd_below_hold_files(struct xd_layer *layer, struct xd_file *file, bool hold,
                        const char **paths, unsigned max)
{
    struct xd_layer *l = layer->lower;
    XD_FIND(l, hold_files);
    return l ? l->ops->hold_files(l, file, hold, paths, max) : -ENOTTY;
}

const char *xd_file_path(const struct xd_layer *layer, const struct xd_file *file)
{
    const struct xd_dev *dev = layer->dev;
    for (unsigned i = layer->level + 1; i < dev->nlayers; i++) {
        const struct xd_layer *above = &dev->layers[i];
        const char *path =
            above->ops->path_below ? above->ops->path_below((struct xd_layer *)above, file) : NULL;
        if (path)
            return path;
    }
    return file->path;
}

const struct xd_config *xd_dev_config(const struct xd_dev *dev) { return dev->cfg; }

unsigned xd_dev_caps(const struct xd_dev *dev)
{
    return xd_chain_caps(dev->top);
}

/* The kernel refused to register the caller's memory: requests go as plain
 * ones (O_DIRECT pins each buffer's pages again at every request). Said
 * because nothing else shows it but a stats counter; the usual cause, a
 * locked-memory limit, is named with the figures that decide it. */
static const char *dev_memory_notice(const struct xd_dev *dev, char *line, size_t len)
{
    int refused = __atomic_load_n(&dev->io_memory.refused, __ATOMIC_RELAXED);
    if (!refused)
        return NULL;
    size_t kib = dev->io_memory.len / 1024;
    struct rlimit lim;
    if (refused == ENOMEM && !getrlimit(RLIMIT_MEMLOCK, &lim) && lim.rlim_cur != RLIM_INFINITY)
        snprintf(line, len,
                 "io_uring did not register the %zu KiB of I/O buffers as fixed buffers (%s: "
                 "locked-memory limit %llu KiB; raise it with ulimit -l or run with "
                 "CAP_IPC_LOCK); requests go as plain ones",
                 kib, strerror(refused), (unsigned long long)lim.rlim_cur / 1024);
    else
        snprintf(line, len,
                 "io_uring did not register the %zu KiB of I/O buffers as fixed buffers (%s); "
                 "requests go as plain ones",
                 kib, strerror(refused));
    return line;
}

const char *xd_dev_notice(const struct xd_dev *dev)
{
    /* dev->notice is a buffer for the line, not state: const for the caller */
    char *line = ((struct xd_dev *)dev)->notice;
    const char *memory = dev_memory_notice(dev, line, sizeof(dev->notice));
    if (memory)
        return memory;
    for (struct xd_layer *l = dev->top; l; l = l->lower) {
        const char *notice = l->ops->notice ? l->ops->notice(l) : NULL;
        /* one line whatever a path in it holds: a layer's notice names
         * files as they are, and a newline in a name would start a line
         * of its own on the caller's stderr (escaped as errors are) */
        if (notice) {
            xd_errf(line, sizeof(dev->notice), "%s", notice);
            return line;
        }
    }
    return NULL;
}

int xd_dev_take_error(struct xd_dev *dev, char *line, size_t len)
{
    char buf[XD_ERRLEN];
    if (xd_dev_forked(dev)) {
        xd_dev_refuse_forked(dev, line, len);
        return 0;
    }
    for (struct xd_layer *l = dev->top; l; l = l->lower) {
        if (l->ops->take_error && !l->ops->take_error(l, buf)) {
            xd_errf(line, len, "%s", buf); /* one line: see xd_dev_notice */
            return 0;
        }
    }
    return -ENOENT;
}

/* Relative names resolve against base_directory when one is set: for a
 * device's files and for the path functions alike (xd_path_prepare made a
 * container at a relative name in the working directory while the open
 * looked in base_directory). */
static char *cfg_resolve_path(const struct xd_config *cfg, const char *path)
{
    const char *base = cfg->base_directory;
    char *full;
    if (path[0] == '/' || !base[0])
        return strdup(path);
    if (asprintf(&full, "%s/%s", base, path) < 0)
        return NULL;
    return full;
}

static char *dev_resolve_path(const struct xd_dev *dev, const char *path)
{
    return cfg_resolve_path(dev->cfg, path);
}

unsigned xd_dev_caps_for(const struct xd_dev *dev, const char *path, uint64_t largest_write)
{
    unsigned caps = xd_chain_caps(dev->top);
    char *full = dev_resolve_path(dev, path);
    struct xd_layer *top = dev->top;
    if (full && top && top->ops->inline_at && top->ops->inline_at(top, full, largest_write))
        caps &= ~XD_CAP_ASYNC;
    free(full);
    return caps;
}

unsigned xd_dev_caps_at(const struct xd_dev *dev, const char *path)
{
    return xd_dev_caps_for(dev, path, UINT64_MAX);
}

/* An error the layers returned without a line (a path too long, an mmap
 * type's window count): the caller's err names the path and the error,
 * never left empty. */
static void dev_err_said(int rc, const char *path, char *err, size_t errlen)
{
    if (err && errlen && !err[0])
        xd_errf(err, errlen, "%s: %s", path, strerror(-rc));
}

static void dev_files_add(struct xd_dev *dev, struct xd_file *file)
{
    pthread_mutex_lock(&dev->files_lock);
    file->next = dev->files;
    if (dev->files)
        dev->files->prev = file;
    dev->files = file;
    pthread_mutex_unlock(&dev->files_lock);
}

static void dev_files_remove(struct xd_dev *dev, struct xd_file *file)
{
    pthread_mutex_lock(&dev->files_lock);
    if (file->prev)
        file->prev->next = file->next;
    else
        dev->files = file->next;
    if (file->next)
        file->next->prev = file->prev;
    pthread_mutex_unlock(&dev->files_lock);
}

/* XD_OPEN_OWN_FILE (a mirror's copy through a hybrid type's tiers) and
 * XD_OPEN_NO_SOURCE (the hybrid's hot copy) are the library's own; anything
 * else unknown is a caller's mistake, refused rather than ignored. */
#define XD_OPEN_KNOWN (XD_OPEN_CREATE | XD_OPEN_READONLY | XD_OPEN_OWN_FILE | XD_OPEN_NO_SOURCE)

int xd_file_open(struct xd_dev *dev, const char *path, unsigned flags, uint64_t size,
                 struct xd_file **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0'; /* what a failure leaves here is this open's line */
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);
    if (flags & ~XD_OPEN_KNOWN) {
        xd_errf(err, errlen, "%s: open flags 0x%x unknown; allowed: XD_OPEN_CREATE, XD_OPEN_READONLY",
                path, flags & ~XD_OPEN_KNOWN);
        return -EINVAL;
    }
    if (size > (uint64_t)INT64_MAX) { /* the drivers' off_t would turn it negative */
        xd_errf(err, errlen, "%s: size %llu; allowed: up to %lld bytes", path,
                (unsigned long long)size, (long long)INT64_MAX);
        return -EINVAL;
    }
    struct xd_file *file = calloc(1, sizeof(*file));
    if (!file || !(file->path = dev_resolve_path(dev, path))) {
        free(file);
        return -ENOMEM;
    }
    file->flags = flags;
    file->dev = dev;
    if (!size)
        size = (uint64_t)dev->cfg->default_file_size;
    int rc = xd_layer_file_open(dev->top, file, flags, size, err, errlen);
    if (rc) {
        dev_err_said(rc, path, err, errlen);
        free(file->path);
        free(file);
        return rc;
    }
    dev_files_add(dev, file);
    *out = file;
    return 0;
}

int xd_file_close(struct xd_dev *dev, struct xd_file *file)
{
    if (!file)
        return 0;
    if (xd_dev_forked(dev))
        return -EBADF;
    if (file->dev != dev) /* another device's list would be cut (use after free at its close) */
        return -EINVAL;
    dev_files_remove(dev, file);
    xd_layer_file_close(dev->top, file);
    int rc = file->close_error;
    free(file->path);
    free(file);
    return rc;
}

int xd_path_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                         size_t errlen)
{
    const struct xd_type *type = xd_type_of(cfg);
    char *full = cfg_resolve_path(cfg, path);
    err[0] = 0;
    if (!full)
        return -ENOMEM;
    int rc = type->path_size ? type->path_size(cfg, full, size, err, errlen)
                             : xd_path_size(full, size);
    free(full);
    if (rc < 0 && rc != -ENOENT) /* -ENOENT: absent, an answer, not an error */
        dev_err_said(rc, path, err, errlen);
    return rc;
}

int xd_path_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                    uint64_t *logical, char *err, size_t errlen)
{
    const struct xd_type *type = xd_type_of(cfg);
    char *full = cfg_resolve_path(cfg, path);
    err[0] = 0;
    if (!full)
        return -ENOMEM;
    int rc = type->path_prepare ? type->path_prepare(cfg, full, size, logical, err, errlen)
                                : xd_path_size(full, logical);
    free(full);
    if (rc < 0)
        dev_err_said(rc, path, err, errlen);
    return rc;
}

/* --- removing a file (xd_unlink) ------------------------------------------ */

char *xd_chain_bottom_path(struct xd_layer *top, const char *path)
{
    char *bottom = NULL;
    for (struct xd_layer *l = top; l; l = l->lower) {
        char *below = l->ops->path_below_of ? l->ops->path_below_of(l, path) : NULL;
        if (below) {
            free(bottom);
            bottom = below;
        }
    }
    return bottom ? bottom : strdup(path);
}

void xd_unlink_tally(int rc, const char *line, int *removed, int *failed, char *err,
                     size_t errlen)
{
    if (rc >= 0) {
        *removed += rc;
    } else if (!*failed) {
        *failed = rc;
        snprintf(err, errlen, "%s", line);
    }
}

int xd_unlink_caller_path(const char *path, char *line, size_t len)
{
    struct stat st;
    if (lstat(path, &st))
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
        xd_errf(line, len, "%s: not a file; allowed: xd_unlink removes files, never devices or directories",
                path);
        return -EPERM;
    }
    if (!unlink(path))
        return 1;
    int rc = -errno;
    xd_errf(line, len, "%s: cannot remove: %s", path, strerror(-rc));
    return rc == -ENOENT ? 0 : rc;
}

int xd_chain_unlink(struct xd_layer *top, const char *path, bool with_path, char *err,
                    size_t errlen)
{
    char *bottom = xd_chain_bottom_path(top, path), line[XD_ERRLEN] = "";
    int removed = 0, failed = 0, rc;
    if (!bottom)
        return -ENOMEM;
    for (struct xd_layer *l = top; l; l = l->lower)
        with_path &= !l->ops->unlinks_path;
    for (struct xd_layer *l = top; l; l = l->lower)
        if (l->ops->unlink) {
            line[0] = 0;
            rc = l->ops->unlink(l, path, bottom, line, sizeof(line));
            xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
        }
    if (strcmp(bottom, path)) {
        rc = xd_unlink_own(bottom);
        xd_errf(line, sizeof(line), "%s: cannot remove %s's copy: %s", bottom, path,
                strerror(rc < 0 ? -rc : 0));
        xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    }
    if (with_path) {
        rc = xd_unlink_caller_path(path, line, sizeof(line));
        xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    }
    free(bottom);
    return failed ? failed : removed;
}

int xd_unlink(struct xd_dev *dev, const char *path, char *err, size_t errlen)
{
    err[0] = 0;
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);
    char *full = dev_resolve_path(dev, path);
    if (!full)
        return -ENOMEM;
    struct stat st;
    int rc;
    if (!lstat(full, &st) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) /* before any layer */
        rc = xd_unlink_caller_path(full, err, errlen);
    else
        rc = xd_chain_unlink(dev->top, full, true, err, errlen);
    free(full);
    if (rc < 0)
        dev_err_said(rc, path, err, errlen);
    return rc < 0 ? rc : rc ? 0 : -ENOENT;
}

int64_t xd_file_size(struct xd_dev *dev, struct xd_file *file)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    return xd_layer_file_size(dev->top, file);
}

int xd_file_invalidate(struct xd_dev *dev, struct xd_file *file)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    return xd_chain_invalidate(dev->top, file);
}

/* A request no layer may see: an op outside enum xd_op (the stats layer
 * indexes its histograms by it), no file, or a range past what a file
 * offset can name (off + len beyond INT64_MAX: the drivers' off_t, and
 * sums that wrap), or a trim of nothing (regular files said -EINVAL, the
 * compressed and hybrid types 0), or a device of the parent process.
 * -EINVAL or -EBADF, or 0. Such a range
 * once reached the compressed type, whose trim then zeroed the file from
 * off to its end, and libaio, whose refused io_submit lost the request. */
static int dev_req_refused(const struct xd_dev *dev, const struct xd_req *req)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    if ((unsigned)req->op >= XD_OP_COUNT)
        return -EINVAL;
    if (!req->file)
        return -EBADF;
    bool ranged = req->op == XD_OP_READ || req->op == XD_OP_WRITE || req->op == XD_OP_TRIM;
    if (ranged && (req->off > (uint64_t)INT64_MAX || req->len > (uint64_t)INT64_MAX - req->off))
        return -EINVAL;
    if (req->op == XD_OP_TRIM && !req->len)
        return -EINVAL; /* as fallocate(2) says of len 0, on every type alike */
    if (!req->buf && req->len && req->op <= XD_OP_WRITE)
        return -EFAULT; /* the compressed type took a NULL write as zeros */
    return 0;
}

/* One request, completed before returning. */
static int64_t dev_sync_io(struct xd_dev *dev, struct xd_file *file, enum xd_op op, void *buf,
                           uint64_t len, uint64_t off)
{
    struct xd_req req = {.op = op, .file = file, .buf = buf, .len = len, .off = off};
    int rc = dev_req_refused(dev, &req);
    if (rc)
        return rc;
    xd_req_set_flags(&req, XD_REQ_SYNC);
    rc = xd_layer_submit(dev->top, &req);
    if (rc < 0)
        return rc;
    return req.result;
}

ssize_t xd_read(struct xd_dev *dev, struct xd_file *file, void *buf, size_t len, uint64_t off)
{
    return (ssize_t)dev_sync_io(dev, file, XD_OP_READ, buf, len, off);
}

ssize_t xd_write(struct xd_dev *dev, struct xd_file *file, const void *buf, size_t len,
                 uint64_t off)
{
    /* the request type is shared with reads; a write never stores into buf */
    return (ssize_t)dev_sync_io(dev, file, XD_OP_WRITE, (void *)buf, len, off);
}

int xd_trim(struct xd_dev *dev, struct xd_file *file, uint64_t len, uint64_t off)
{
    int64_t rc = dev_sync_io(dev, file, XD_OP_TRIM, NULL, len, off);
    return rc < 0 ? (int)rc : 0;
}

int xd_flush(struct xd_dev *dev, struct xd_file *file, int datasync)
{
    int64_t rc = dev_sync_io(dev, file, datasync ? XD_OP_FDATASYNC : XD_OP_FSYNC, NULL, 0, 0);
    return rc < 0 ? (int)rc : 0;
}

int xd_submit(struct xd_dev *dev, struct xd_req *req)
{
    xd_req_set_flags(req, 0);
    req->result = dev_req_refused(dev, req);
    if (req->result)
        return XD_DONE;
    return xd_layer_submit(dev->top, req);
}

int xd_commit(struct xd_dev *dev)
{
    return xd_dev_forked(dev) ? -EBADF : xd_layer_commit(dev->top);
}

int xd_reap(struct xd_dev *dev, struct xd_req **done, unsigned min, unsigned max,
            const struct timespec *timeout)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    if (min > max) /* no reap could end: the io_uring wait looped for ever */
        min = max;
    return xd_layer_reap(dev->top, done, min, max, timeout);
}

int xd_migrate(struct xd_dev *dev)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    struct xd_layer *l = dev->top;
    XD_FIND(l, migrate);
    return l ? l->ops->migrate(l) : -ENOTTY;
}

int xd_stats_start_run(struct xd_dev *dev)
{
    if (xd_dev_forked(dev))
        return -EBADF;
    const struct xd_stats_snapshot *snap = xd_chain_stats_snapshot(dev->top);
    if (snap) {
        if (!dev->run_base && !(dev->run_base = malloc(sizeof(*dev->run_base))))
            return -ENOMEM;
        *dev->run_base = *snap;
    }
    for (struct xd_layer *l = dev->top; l; l = l->lower)
        if (l->ops->stats_start_run)
            l->ops->stats_start_run(l);
    return 0;
}

/* Errors and slow operations stay the whole life's: a fault during a
 * warm-up is never left out of the figures. */
const struct xd_stats_snapshot *xd_dev_run_stats(struct xd_dev *dev,
                                                 struct xd_stats_snapshot **owned)
{
    const struct xd_stats_snapshot *now = xd_chain_stats_snapshot(dev->top);
    *owned = NULL;
    if (!now || !dev->run_base || !(*owned = malloc(sizeof(**owned))))
        return now;
    struct xd_stats_snapshot *run = *owned;
    xd_stats_diff(run, now, dev->run_base);
    for (int i = 0; i < XD_OP_COUNT; i++) {
        run->op[i].errors = now->op[i].errors;
        run->op[i].slow = now->op[i].slow;
    }
    memcpy(run->slowest, now->slowest, sizeof(run->slowest));
    run->nslow = now->nslow;
    return run;
}

char *xd_stats_json(struct xd_dev *dev)
{
    if (xd_dev_forked(dev))
        return NULL;
    struct xd_stats_snapshot *owned;
    const struct xd_stats_snapshot *snap = xd_dev_run_stats(dev, &owned);
    struct xd_json j;
    xd_json_init(&j);
    xd_json_object_begin(&j, NULL);
    xd_json_string(&j, "type", xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type));
    if (snap)
        xd_stats_ops_json(&j, snap);
    xd_json_object_begin(&j, "layers");
    xd_chain_stats_json(dev->top, &j);
    xd_json_object_end(&j);
    xd_json_object_end(&j);
    free(owned);
    return xd_json_finish(&j);
}

uint64_t xd_stats_slow_summary(struct xd_dev *dev, char *line, size_t len)
{
    static const char *names[XD_OP_COUNT] = {"read", "write", "trim", "fsync", "fdatasync"};
    const struct xd_stats_snapshot *snap =
        xd_dev_forked(dev) ? NULL : xd_chain_stats_snapshot(dev->top);
    uint64_t slow = 0, total = 0;
    if (!snap)
        return 0;
    for (int i = 0; i < XD_OP_COUNT; i++) {
        slow += snap->op[i].slow;
        total += snap->op[i].lat_ns.count;
    }
    if (!slow)
        return 0;
    const struct xd_slow_op *worst = &snap->slowest[0];
    xd_errf(line, len,
            "%llu of %llu operations took longer than slow_operation_threshold_ms=%lld; slowest: %s of %llu bytes at offset %llu took %.1f ms",
            (unsigned long long)slow, (unsigned long long)total,
            (long long)dev->cfg->slow_operation_threshold_ms,
            worst->op < XD_OP_COUNT ? names[worst->op] : "?", (unsigned long long)worst->len,
            (unsigned long long)worst->off, (double)worst->lat_ns / 1e6);
    return slow;
}
