/* xd_internal.h - what drivers, layers and the core share; never installed.
 *
 * A device is a chain of layers. Each layer implements one ops table and only
 * calls the layer below it (lower); drivers sit at the bottom and touch the OS.
 */
#ifndef XD_INTERNAL_H
#define XD_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../xdevice.h"
#include "clock.h"
#include "config.h"

struct xd_layer;
struct xd_queue;


/* control() operations; a layer answers -ENOTTY to what it does not know
 * and passes it down when that makes sense. */
enum xd_ctl {
    XD_CTL_CAPS,       /* arg: unsigned *, OR in XD_CAP_* bits (xdevice.h) */
    XD_CTL_STATS_JSON, /* arg: struct xd_json *, append the layer's figures */
    XD_CTL_INVALIDATE, /* arg: struct xd_file *, drop cached data */
    XD_CTL_NOTICE,     /* arg: const char **, one-time note for the user */
    XD_CTL_SEEK,       /* arg: struct xd_ctl_seek *, SEEK_DATA/SEEK_HOLE on a file */
    XD_CTL_SPACE,      /* arg: struct xd_ctl_space *, a file's size and allocated bytes */
    XD_CTL_TAKE_ERROR, /* arg: char[XD_ERRLEN], the line explaining a data error; then clear it */
    XD_CTL_RELOAD,     /* arg: const struct xd_config *, the config before xd_reload; apply
                        * the live keys the layer owns from dev->cfg, then pass it down */
    XD_CTL_MIGRATE,    /* arg: NULL; run a tier migration pass now; returns extents moved */
};

/* XD_CTL_SEEK: lseek(2) with whence SEEK_DATA or SEEK_HOLE from off; result
 * is the offset found, or -ENXIO when there is no data at or after off. */
struct xd_ctl_seek {
    struct xd_file *file;
    int whence;
    uint64_t off;
    int64_t result;
};

/* XD_CTL_SPACE: st_size and st_blocks * 512 of a file. */
struct xd_ctl_space {
    struct xd_file *file;
    uint64_t size, allocated;
};

#define XD_OPS_VERSION 1

/* One ops table per driver or layer. Grows only at the end (version). */
struct xd_ops {
    unsigned version;
    const char *name;
    /* Set up the layer's private state; lower is already open. */
    int (*open)(struct xd_layer *layer, char *err, size_t errlen);
    void (*close)(struct xd_layer *layer);
    /* Per-file hooks: open a file (fill file->priv[level]), close it, size. */
    int (*file_open)(struct xd_layer *layer, struct xd_file *file, unsigned flags, uint64_t size,
                     char *err, size_t errlen);
    void (*file_close)(struct xd_layer *layer, struct xd_file *file);
    int64_t (*file_size)(struct xd_layer *layer, struct xd_file *file);
    /* Data path, see xd_submit/xd_commit/xd_reap in xdevice.h. With
     * XD_REQ_SYNC in req->flags the request must complete before returning. */
    int (*submit)(struct xd_layer *layer, struct xd_req *req);
    int (*commit)(struct xd_layer *layer);
    int (*reap)(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                const struct timespec *timeout);
    int (*control)(struct xd_layer *layer, int op, void *arg);
};

#define XD_REQ_SYNC (1u << 0) /* complete before submit returns */

struct xd_layer {
    const struct xd_ops *ops;
    struct xd_layer *lower; /* NULL for a driver */
    struct xd_dev *dev;
    unsigned level;         /* index into xd_file.priv */
    void *priv;
};

#define XD_MAX_LAYERS 8

struct xd_file {
    char *path;
    unsigned flags;
    void *priv[XD_MAX_LAYERS]; /* each layer's per-file state, by level */
};

struct xd_dev {
    struct xd_config *cfg;
    struct xd_layer *top;
    struct xd_layer layers[XD_MAX_LAYERS];
    unsigned nlayers;
    unsigned queue_entries;
    uint64_t opened_ns; /* xd_clock_monotonic_ns at open: the first interval's start */
    char notice[256];
};

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
static inline int xd_layer_control(struct xd_layer *l, int op, void *arg)
{
    XD_FIND(l, control);
    return l ? l->ops->control(l, op, arg) : -ENOTTY;
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

/* The compressed type's containers (drivers/compressed/files.c), for xd_path_prepare
 * and xd_path_logical_size. */
int xd_compress_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                        uint64_t *logical, char *err, size_t errlen);
int xd_compress_logical_size(const char *path, uint64_t *size, char *err, size_t errlen);

/* Build the storage type's preset chain (types.c). */
int xd_types_build(struct xd_dev *dev, char *err, size_t errlen);
/* Push a layer on top of the chain being built (core/device.c). */
int xd_dev_push(struct xd_dev *dev, const struct xd_ops *ops, char *err, size_t errlen);

/* Format one line into err (bounded, always terminated). */
void xd_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The drivers and layers. */
extern const struct xd_ops xd_file_ops;
extern const struct xd_ops xd_mmap_ops;
extern const struct xd_ops xd_block_ops;
extern const struct xd_ops xd_tmpfs_ops;
extern const struct xd_ops xd_stats_ops;
extern const struct xd_ops xd_sparse_ops;
extern const struct xd_ops xd_compress_ops;
extern const struct xd_ops xd_cache_ops;
extern const struct xd_ops xd_tier_ops;

/* Whether dir (or its nearest existing ancestor) is on a tmpfs; the line in
 * err names key (layers/tmpfs.c). */
int xd_tmpfs_check_dir(const struct xd_config *cfg, enum xd_key key, const char *dir, char *err,
                       size_t errlen);

/* The hybrid type's cold file for a caller's path (layers/migrate.c), for
 * xd_path_prepare and xd_path_logical_size. */
int xd_tier_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                    uint64_t *logical, char *err, size_t errlen);
int xd_tier_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                         size_t errlen);

#endif
