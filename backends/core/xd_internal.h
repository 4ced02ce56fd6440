/* xd_internal.h - what drivers, layers and the core share; never installed.
 *
 * A device is a chain of layers. Each layer implements one ops table and only
 * calls the layer below it (lower); drivers sit at the bottom and touch the OS.
 */
#ifndef XD_INTERNAL_H
#define XD_INTERNAL_H

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "../xdevice.h"
#include "clock.h"
#include "config.h"
#include "queue.h"

struct xd_layer;
struct xd_queue;


struct xd_json;
struct xd_stats_snapshot;

/* A file's size and allocated bytes (st_size, st_blocks * 512). */
struct xd_space {
    uint64_t size, allocated;
};

#define XD_OPS_VERSION 2

/* One ops table per driver or layer. Grows only at the end (version).
 *
 * Two kinds of entry. The data path and the per-file hooks are passed down:
 * a layer that leaves one NULL is skipped and the call goes to the next
 * layer below that has it (XD_FIND). The optional hooks after them are the
 * layer's own answer about itself: the core visits every layer of the chain
 * that has the hook (core/device.c, xd_chain_*), so no layer ever passes a
 * question on, and a new hook never needs every layer to learn to forward it. */
struct xd_ops {
    unsigned version;
    const char *name;
    /* Bytes of per-request state this layer keeps in each xd_req's private
     * area (xd_req_ctx); the chain's layers share the area, each its slice. */
    size_t req_ctx_size;
    /* Set up the layer's private state; lower is already open. */
    int (*open)(struct xd_layer *layer, char *err, size_t errlen);
    void (*close)(struct xd_layer *layer);
    /* Per-file hooks: open a file (fill file->priv[level]), close it, size. */
    int (*file_open)(struct xd_layer *layer, struct xd_file *file, unsigned flags, uint64_t size,
                     char *err, size_t errlen);
    void (*file_close)(struct xd_layer *layer, struct xd_file *file);
    int64_t (*file_size)(struct xd_layer *layer, struct xd_file *file);
    /* Data path, see xd_submit/xd_commit/xd_reap in xdevice.h. With
     * XD_REQ_SYNC in the request's core flags it must complete before
     * returning. What a layer stages outside a submit (a retry, a held-back
     * request started in a reap) it commits itself: callers commit only
     * after a submit that answered XD_QUEUED (the fio engine does). */
    int (*submit)(struct xd_layer *layer, struct xd_req *req);
    int (*commit)(struct xd_layer *layer);
    int (*reap)(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                const struct timespec *timeout);

    /* --- optional hooks: each answers for its own layer only ------------ */
    /* XD_CAP_* bits of the chain from here down, given below's (bottom up). */
    unsigned (*caps)(struct xd_layer *layer, unsigned below);
    /* true when every request this layer is given for a file at path (or
     * in path, a directory) completes within its submit, provided no write
     * is longer than largest_write (0: no writes; asking the layers below,
     * through xd_below_inline_at, where it passes requests on). Absent:
     * requests may stay in flight. xd_dev_caps_for drops XD_CAP_ASYNC on
     * it. */
    bool (*inline_at)(struct xd_layer *layer, const char *path, uint64_t largest_write);
    /* Append the layer's figures to the "layers" object (top down). */
    void (*stats_json)(struct xd_layer *layer, struct xd_json *j);
    /* The run's figures start now (xd_stats_start_run: a warm-up such as
     * fio's ramp_time is over): count this device's activity afresh. */
    void (*stats_start_run)(struct xd_layer *layer);
    /* The stats layer's running figures (the first layer that has them). */
    const struct xd_stats_snapshot *(*stats_snapshot)(struct xd_layer *layer);
    /* Drop what this layer caches of file (top down: a write-back cache
     * flushes first, so the layers below see its data before they drop). */
    int (*invalidate)(struct xd_layer *layer, struct xd_file *file);
    /* Apply the live keys the layer owns from dev->cfg; before holds the
     * values in force until now (top down; an error undoes the reload). */
    int (*reload)(struct xd_layer *layer, const struct xd_config *before);
    /* A one-time note for the user, or NULL (the first layer with one wins). */
    const char *(*notice)(struct xd_layer *layer);
    /* The line explaining the last data error, then cleared: 0 when there
     * was one, -ENOENT when not (the first layer with one wins). */
    int (*take_error)(struct xd_layer *layer, char line[XD_ERRLEN]);
    /* Services a layer asks of those below it (xd_below_*): the first layer
     * at or below the asker that has the hook answers. */
    /* lseek(2) SEEK_DATA/SEEK_HOLE from off: the offset, or -ENXIO. */
    int64_t (*seek)(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off);
    int (*space)(struct xd_layer *layer, struct xd_file *file, struct xd_space *out);
    /* The path this layer's lower layers should use for file, when it
     * stands in for the caller's (tmpfs: its copy on the tmpfs); NULL: not
     * this layer. Nothing rewrites the caller's file->path. */
    const char *(*path_below)(struct xd_layer *layer, const struct xd_file *file);
    /* What holds file's data: the stat(2) of the file or device the
     * driver opened, and which view of it the chain serves (0: its bytes;
     * 1: a logical view, the compressed container's data; 2: the hybrid
     * type's, its cold file under the hot extents). Two opens with
     * the same identity see the same data (the cache shares blocks by it). */
    int (*identity)(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                    unsigned *view);
    /* Run a migration pass now; extents moved (xd_migrate). */
    int (*migrate)(struct xd_layer *layer);
    /* A point-in-time copy of file is about to be taken (checkpoints).
     * hold=true: flush what the layer keeps of file, stop changing its
     * files on the layer's own (migration) until the call with hold=false,
     * and name the files that then hold all of file's data, in place of the
     * driver's path: up to max in paths (the layer's strings, valid until
     * released), returning how many. hold=false: let them go; returns 0. */
    int (*hold_files)(struct xd_layer *layer, struct xd_file *file, bool hold,
                      const char **paths, unsigned max);
    /* The path this layer's lower layers use for the file at path, as
     * path_below does for an open file (malloc'd); NULL: not this layer. */
    char *(*path_below_of)(struct xd_layer *layer, const char *path);
    /* The file at path is being removed (xd_unlink; bottom: the path the
     * chain's driver opens for it, xd_chain_bottom_path): remove what this
     * layer keeps for it apart from those two (a sidecar, a map, another
     * device's files), only what xdevice made (xd_unlink_own). Files still
     * open keep working, as after unlink(2). How many it removed, or
     * -errno with the line in err. */
    int (*unlink)(struct xd_layer *layer, const char *path, const char *bottom, char *err,
                  size_t errlen);
    /* The unlink hook removes the caller's path itself, under the lock its
     * file_open holds while it makes the file there: the core leaves the
     * path alone, since a removal after the hook returned would take the
     * file an open in another thread has just made (and is stat'ing). */
    bool unlinks_path;
};

#define XD_REQ_SYNC (1u << 0) /* complete before submit returns */

/* xd_file_open flag of the library's own, beside XD_OPEN_*: the path is one
 * xdevice names and makes itself (a mirror copy in mirror_directories), so
 * the driver never follows a link there, and an existing file must be a
 * regular file of the caller's with one link (xd_open_own_data): someone
 * else's file of that name is never written. */
#define XD_OPEN_OWN_FILE 0x100u
/* Another of the library's own: the path names no file whose data this
 * open may take (the hybrid type's hot copy is named after its cold file,
 * which is the cold tier's, not the hot copy's to load), so the tmpfs layer
 * never loads it from the disk file at the path. */
#define XD_OPEN_NO_SOURCE 0x200u

struct xd_layer {
    const struct xd_ops *ops;
    struct xd_layer *lower; /* NULL for a driver */
    struct xd_dev *dev;
    unsigned level;         /* index into xd_file.priv */
    size_t req_ctx_off;     /* where this layer's slice of xd_req.xd_private starts */
    void *priv;
};

/* The core's own per-request state, first in xd_req.xd_private: the sync
 * flag, and the bookkeeping of the descriptor queue (core/fdio.c,
 * core/queue.c) for whichever driver queues the request. The layers'
 * slices follow it, in chain order from the bottom. */
struct xd_req_core {
    /* fdio: bytes one RWF_NOWAIT read transferred inline before the rest
     * was queued; Linux moves at most MAX_RW_COUNT (under 2 GiB) in one
     * call, and fdio_try_nowait queues the whole read past 32 bits */
    uint32_t done;
    unsigned flags; /* XD_REQ_* */
    unsigned pos;   /* fdio: its index in the in-flight array */
    int fd;         /* fdio: the descriptor it was queued on */
};
_Static_assert(sizeof(struct xd_req_core) == 16, "xd_req_core grew: the deepest chain may not fit");

static inline struct xd_req_core *xd_req_core(const struct xd_req *req)
{
    return (struct xd_req_core *)(void *)req->xd_private;
}
static inline bool xd_req_is_sync(const struct xd_req *req)
{
    return xd_req_core(req)->flags & XD_REQ_SYNC;
}
static inline void xd_req_set_flags(struct xd_req *req, unsigned flags)
{
    xd_req_core(req)->flags = flags;
}
/* This layer's slice of req's private area (ops->req_ctx_size bytes). */
static inline void *xd_req_ctx(const struct xd_layer *layer, const struct xd_req *req)
{
    return (char *)(void *)req->xd_private + layer->req_ctx_off;
}

/* Layers in one chain, the driver's included: enough for the deepest any
 * config can ask, a type's base of at most XD_TYPE_BASE_MAX (tmpfs over
 * file) under every common layer of backends/types.c (checked there). */
#define XD_TYPE_BASE_MAX 2
#define XD_MAX_LAYERS 10

struct xd_file {
    char *path;
    const struct xd_dev *dev; /* the device xd_file_open opened it on (NULL: a layer's own) */
    unsigned flags;
    void *priv[XD_MAX_LAYERS]; /* each layer's per-file state, by level */
    struct xd_file *prev, *next; /* the device's open files (xd_close closes what is left) */
    int close_error; /* the first -errno a layer met closing it: xd_file_close returns it */
};

/* A take_error hook's answer from a layer's held line (empty: none): the
 * line, once. */
static inline int xd_take_held_error(char *held, char line[XD_ERRLEN])
{
    if (!held[0])
        return -ENOENT;
    snprintf(line, XD_ERRLEN, "%s", held);
    held[0] = '\0';
    return 0;
}

/* A layer closing file could not do all a close owes (a write-back cache's
 * dirty blocks, which never reached the file): xd_file_close says so. */
static inline void xd_file_close_failed(struct xd_file *file, int rc)
{
    if (!file->close_error)
        file->close_error = rc;
}

struct xd_dev {
    struct xd_config *cfg;
    struct xd_layer *top;
    struct xd_layer layers[XD_MAX_LAYERS];
    unsigned nlayers;
    size_t req_ctx_used; /* bytes of xd_req.xd_private the chain's layers took */
    unsigned queue_entries;
    uint64_t opened_ns; /* xd_clock_monotonic_ns at open: the first interval's start */
    /* the stats layer's figures when the run started (xd_stats_start_run);
     * NULL: the run is the device's whole life */
    struct xd_stats_snapshot *run_base;
    char notice[XD_ERRLEN]; /* the line xd_dev_notice hands out */
    pthread_mutex_t files_lock; /* files: opened and closed from any thread */
    struct xd_file *files;
    pid_t opener;       /* the process that opened it (getpid) */
    unsigned opened_at; /* xd_forks() then: another value means a child after fork */
    struct xd_io_memory io_memory; /* xd_register_memory; the drivers' queues read it */
};

/* fork()s this process is a child of since the library was loaded (a
 * pthread_atfork child handler counts them); cheaper than getpid(), a
 * system call, on every request. */
unsigned xd_forks(void);
/* dev was opened by the parent of this process, whose files, locks,
 * rings and threads it holds: using it here would act on the parent's
 * (a completion reaped here is one the parent never sees). */
static inline bool xd_dev_forked(const struct xd_dev *dev)
{
    return dev->opened_at != xd_forks();
}
/* -EBADF, and why in err: dev is the parent's (xd_dev_forked). */
int xd_dev_refuse_forked(const struct xd_dev *dev, char *err, size_t errlen);

/* Calls into a layer go through these wrappers: a layer that leaves an op
 * NULL passes it straight down, so layers only write what they change. */
#define XD_FIND(l, op) \
    while ((l) && !(l)->ops->op) \
        (l) = (l)->lower
static inline int xd_layer_submit(struct xd_layer *l, struct xd_req *req)
{
    XD_FIND(l, submit);
    return l->ops->submit(l, req);
}
static inline int xd_layer_commit(struct xd_layer *l)
{
    XD_FIND(l, commit);
    return l ? l->ops->commit(l) : 0;
}
static inline int xd_layer_reap(struct xd_layer *l, struct xd_req **done, unsigned min,
                                unsigned max, const struct timespec *timeout)
{
    XD_FIND(l, reap);
    return l ? l->ops->reap(l, done, min, max, timeout) : 0;
}
static inline int xd_layer_file_open(struct xd_layer *l, struct xd_file *file, unsigned flags,
                                     uint64_t size, char *err, size_t errlen)
{
    XD_FIND(l, file_open);
    return l->ops->file_open(l, file, flags, size, err, errlen);
}
static inline void xd_layer_file_close(struct xd_layer *l, struct xd_file *file)
{
    XD_FIND(l, file_close);
    if (l)
        l->ops->file_close(l, file);
}
static inline int64_t xd_layer_file_size(struct xd_layer *l, struct xd_file *file)
{
    XD_FIND(l, file_size);
    return l ? l->ops->file_size(l, file) : -EOPNOTSUPP;
}


/* The optional hooks over a chain (core/device.c). */
unsigned xd_chain_caps(struct xd_layer *top);
void xd_chain_stats_json(struct xd_layer *top, struct xd_json *j);
const struct xd_stats_snapshot *xd_chain_stats_snapshot(struct xd_layer *top);
int xd_chain_invalidate(struct xd_layer *top, struct xd_file *file);
int xd_chain_reload(struct xd_layer *top, const struct xd_config *before);
/* What a layer asks of the layers below it; -ENOTTY when none can answer. */
bool xd_below_inline_at(struct xd_layer *layer, const char *path, uint64_t largest_write);
int64_t xd_below_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off);
int xd_below_space(struct xd_layer *layer, struct xd_file *file, struct xd_space *out);
int xd_below_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                      unsigned *view);
/* The hold_files hook of the first layer below that has one; -ENOTTY: none
 * (the driver's path holds the file's data, and nothing moves it). */
int xd_below_hold_files(struct xd_layer *layer, struct xd_file *file, bool hold,
                        const char **paths, unsigned max);
/* The path layer should open for file: the nearest layer above it that
 * stands in a path of its own (path_below) decides, else the caller's. */
const char *xd_file_path(const struct xd_layer *layer, const struct xd_file *file);

/* The path the driver at the bottom of the chain from top opens for path:
 * the lowest layer that stands in one of its own (path_below_of) decides,
 * else path (malloc'd; NULL: no memory). */
char *xd_chain_bottom_path(struct xd_layer *top, const char *path);
/* xd_unlink's work on the chain from top: every layer's own files for
 * path (its unlink hook) and the bottom's file where a layer stands one
 * in; path itself only with with_path, and none of the chain's layers
 * unlinks_path (the tier removes its inner devices' files, never the cold
 * file they share; the mirror a copy's, from the layer below it). How
 * many files went, or the first -errno (err says it) after trying them
 * all. */
int xd_chain_unlink(struct xd_layer *top, const char *path, bool with_path, char *err,
                    size_t errlen);
/* path itself, as unlink(2) would remove it (a link, not what it names):
 * 1, 0 when not there, -EPERM for what is not a file, -errno (line says
 * it). The core's last step of xd_unlink, unless a layer unlinks_path
 * (the tier, under its names lock). */
int xd_unlink_caller_path(const char *path, char *line, size_t len);
/* One removal's outcome (1, 0 or -errno, line its failure) into a running
 * count of files removed; the first failure and its line are kept. */
void xd_unlink_tally(int rc, const char *line, int *removed, int *failed, char *err,
                     size_t errlen);

/* Build the storage type's chain (backends/types.c). */
int xd_types_build(struct xd_dev *dev, char *err, size_t errlen);
/* A device with no chain yet, this process's (xd_open's first step; a test
 * building a chain by hand with xd_dev_push starts here too). NULL: no
 * memory. */
struct xd_dev *xd_dev_new(void);
/* Push a layer on top of the chain being built (core/device.c). */
int xd_dev_push(struct xd_dev *dev, const struct xd_ops *ops, char *err, size_t errlen);

/* --- storage types --------------------------------------------------------
 * One entry per type (backends/types.c; the names are XD_STORAGE_TYPES in
 * config_schema.h). The core asks the entry, never compares type names. */
#define XD_TYPE_HOLES     (1u << 0) /* enable_sparse may put the sparse layer over it */
#define XD_TYPE_DIRECT_IO (1u << 1) /* use_direct_io may bypass the page cache */
#define XD_TYPE_MMAP_IO   (1u << 2) /* it is the mmap type (use_mmap) */
#define XD_TYPE_COMPRESS  (1u << 3) /* it compresses (enable_compression) */
#define XD_TYPE_SEARCHED  (1u << 4) /* xdtune may try it: it needs no device or directory of its own */

struct xd_type {
    const char *name;
    /* The bottom of the chain, driver first, NULL-terminated; the common
     * layers go on top: sparse (when enabled), cache (when enabled), stats. */
    const struct xd_ops *const *base;
    unsigned flags;       /* XD_TYPE_* */
    unsigned config_caps; /* XD_CFG_* (xdevice.h): what a caller must know */
    /* The type's own cross-key checks (the rest are in xd_config_check). */
    int (*check)(const struct xd_config *cfg, char *err, size_t errlen);
    /* Types that own their format (XD_CFG_OWN_FORMAT) or keep the data
     * elsewhere (XD_CFG_DATA_ELSEWHERE): xd_path_prepare and
     * xd_path_logical_size. NULL: the plain file's size. */
    int (*path_prepare)(const struct xd_config *cfg, const char *path, uint64_t size,
                        uint64_t *logical, char *err, size_t errlen);
    int (*path_size)(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                     size_t errlen);
    /* BOOL keys the type turns on whatever the config says (ended by -1;
     * NULL: none): the effective config shows them true, and one set false
     * in so many words is refused (check_type_keys). */
    const int *sets;
};

/* cfg's storage type (never NULL: the schema admits only listed types). */
const struct xd_type *xd_type_of(const struct xd_config *cfg);
/* The names of the types with every bit of flags, as "a, b and c". */
void xd_type_names_with(unsigned flags, char *buf, size_t len);
/* The same names as a choice list, "a|b|c". */
void xd_type_choices_with(unsigned flags, char *buf, size_t len);

#endif
