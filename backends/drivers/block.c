/* block.c - the block driver: a block device sized with BLKGETSIZE64 and
 * BLKSSZGET and trimmed with BLKDISCARD, over the file driver's data path
 * (core/fdio.c), O_DIRECT by default. The block type sits on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fdio.h"
#include "../core/fileutil.h"
#include "../core/json.h"

struct block_file {
    int fd;
    unsigned sector; /* offsets and lengths of trims must be multiples of it */
};

struct block_driver {
    struct xd_fdio io;
    const struct xd_config *cfg;
    unsigned entries; /* queue depth: the caller's, capped by queue_depth */
    struct {          /* the device opened last, for stats */
        char path[256];
        uint64_t size;
        unsigned sector;
    } last;
    uint64_t discarded;
};

/* The alignment O_DIRECT needs is the device's sector size, known only at
 * file_open, so the fdio starts at 512 (the smallest there is; non-zero so
 * io_uring never tries buffered NOWAIT reads on an O_DIRECT descriptor) and
 * file_open raises it. */
static int block_driver_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct block_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = cfg;
    d->entries = layer->dev->queue_entries < (unsigned)cfg->queue_depth
                     ? layer->dev->queue_entries
                     : (unsigned)cfg->queue_depth;
    unsigned align = !cfg->use_raw_device ? 0 : cfg->sector_size ? (unsigned)cfg->sector_size : 512;
    int rc = xd_fdio_init(&d->io, cfg->async, d->entries, align, &layer->dev->io_memory, err,
                          errlen);
    if (rc) {
        free(d);
        return rc;
    }
    layer->priv = d;
    return 0;
}

static void block_driver_close(struct xd_layer *layer)
{
    struct block_driver *d = layer->priv;
    xd_fdio_destroy(&d->io);
    free(d);
}

/* One fdio serves every device opened on this xd_dev, so it aligns to the
 * largest sector seen: a multiple of every smaller one. Its bounce buffer
 * was aligned for the old value and is dropped, to be regrown on demand. */
static void block_raise_align(struct block_driver *d, unsigned align)
{
    if (!d->io.align || align <= d->io.align)
        return;
    xd_fdio_set_align(&d->io, align);
}

/* --- devices ------------------------------------------------------------- */

/* O_DIRECT is set only once fstat has shown a block device, so a wrong path
 * is reported as such rather than as the EINVAL O_DIRECT gets from tmpfs. */
static int block_open_fd(const struct block_driver *d, struct block_file *bf, const char *path,
                         unsigned flags, char *err, size_t errlen)
{
    const struct xd_config *cfg = d->cfg;
    int oflags = O_CLOEXEC | ((flags & XD_OPEN_READONLY) ? O_RDONLY : O_RDWR) |
                 (cfg->use_sync_writes ? O_SYNC : 0);
    struct stat st;
    int rc;
    /* through a link only of ours or root's (/dev/disk/by-id): one another
     * user planted in /tmp would aim the writes at any device */
    bf->fd = xd_open_data(path, oflags, 0, true);
    rc = bf->fd < 0 ? bf->fd : fstat(bf->fd, &st) ? -errno : 0;
    if (bf->fd < 0)
        bf->fd = -1;
    if (rc) {
        xd_errf(err, errlen, "%s: cannot open (storage_type=block): %s", path,
                rc == -XD_EUNTRUSTED_LINK ? xd_refusal(rc) : strerror(-rc));
        return rc;
    }
    if (!S_ISBLK(st.st_mode)) {
        xd_errf(err, errlen, "%s: not a block device (storage_type=block); allowed: a block device such as /dev/loop0", path);
        return -ENOTBLK;
    }
    if (!cfg->update_access_time)
        xd_fd_noatime(bf->fd);
    if (cfg->use_raw_device && fcntl(bf->fd, F_SETFL, fcntl(bf->fd, F_GETFL) | O_DIRECT)) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot open with O_DIRECT (use_raw_device=true): %s; allowed: use_raw_device=false", path, strerror(-rc));
        return rc;
    }
    return 0;
}

/* Size and sector size from the device; sector_size may only coarsen the
 * latter, since the device refuses anything finer. */
static int block_probe(struct block_driver *d, struct block_file *bf, const char *path,
                       char *err, size_t errlen)
{
    const struct xd_config *cfg = d->cfg;
    uint64_t size;
    int sector, rc;
    if (ioctl(bf->fd, BLKGETSIZE64, &size) || ioctl(bf->fd, BLKSSZGET, &sector)) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot read the device's size and sector size: %s", path, strerror(-rc));
        return rc;
    }
    if (cfg->sector_size % sector) {
        xd_errf(err, errlen, "%s: sector_size=%lld (%s): not a multiple of the device's logical sector size %d; allowed: 0 (use the device's) or a multiple of %d",
                path, (long long)cfg->sector_size,
                cfg->origin[XD_KEY_sector_size] ? cfg->origin[XD_KEY_sector_size] : "default",
                sector, sector);
        return -EINVAL;
    }
    bf->sector = cfg->sector_size ? (unsigned)cfg->sector_size : (unsigned)sector;
    block_raise_align(d, bf->sector);
    snprintf(d->last.path, sizeof(d->last.path), "%s", path);
    d->last.size = size;
    d->last.sector = bf->sector;
    return 0;
}

/* The device is block_device when set, else the caller's path (fio's filename). */
static int block_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                           uint64_t size, char *err, size_t errlen)
{
    struct block_driver *d = layer->priv;
    const char *path = d->cfg->block_device[0] ? d->cfg->block_device : xd_file_path(layer, file);
    struct block_file *bf = calloc(1, sizeof(*bf));
    if (!bf)
        return -ENOMEM;
    int rc = block_open_fd(d, bf, path, flags, err, errlen);
    if (!rc)
        rc = block_probe(d, bf, path, err, errlen);
    if (rc) {
        if (bf->fd >= 0)
            close(bf->fd);
        free(bf);
        return rc;
    }
    file->priv[layer->level] = bf;
    return 0;
}

static void block_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct block_file *bf = file->priv[layer->level];
    if (!bf)
        return;
    close(bf->fd);
    free(bf);
    file->priv[layer->level] = NULL;
}

static int64_t block_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct block_file *bf = file->priv[layer->level];
    uint64_t size;
    return ioctl(bf->fd, BLKGETSIZE64, &size) ? -errno : (int64_t)size;
}

/* --- data path ----------------------------------------------------------- */

/* BLKDISCARD is synchronous and takes whole sectors; an unaligned range is
 * refused rather than rounded, so no byte outside it is ever discarded. */
static int64_t block_discard(struct block_driver *d, struct block_file *bf,
                             const struct xd_req *req)
{
    if (!d->cfg->enable_trim)
        return -EOPNOTSUPP;
    if ((req->off | req->len) & (bf->sector - 1))
        return -EINVAL;
    uint64_t range[2] = {req->off, req->len};
    if (ioctl(bf->fd, BLKDISCARD, range))
        return -errno;
    d->discarded += req->len;
    return (int64_t)req->len;
}

static int block_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct block_driver *d = layer->priv;
    struct block_file *bf = req->file->priv[layer->level];
    if (req->op == XD_OP_TRIM) {
        int rc = xd_fdio_wait_overlaps(&d->io, bf->fd, req);
        req->result = rc ? rc : block_discard(d, bf, req);
        return XD_DONE;
    }
    return xd_fdio_submit(&d->io, bf->fd, req);
}

static int block_commit(struct xd_layer *layer)
{
    struct block_driver *d = layer->priv;
    return xd_fdio_commit(&d->io);
}

static int block_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct block_driver *d = layer->priv;
    return xd_fdio_reap(&d->io, done, min, max, timeout);
}

/* A raw device has no cached pages to drop; BLKFLSBUF would also flush and
 * drop the whole device's cache for every user of it, so it is not used. */
static int block_invalidate(struct block_driver *d, struct xd_file *file, unsigned level)
{
    struct block_file *bf = file->priv[level];
    if (d->cfg->use_raw_device)
        return 0;
    return -posix_fadvise(bf->fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void block_stats_json(const struct block_driver *d, struct xd_json *j)
{
    xd_json_object_begin(j, "block");
    xd_json_string(j, "device", d->last.path);
    xd_json_uint(j, "size", d->last.size);
    xd_json_uint(j, "sector_size", d->last.sector);
    xd_json_uint(j, "queue_depth", d->entries);
    xd_json_uint(j, "discarded_bytes", d->discarded);
    xd_fdio_stats_json(&d->io, j);
    xd_json_object_end(j);
}

static int block_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                          unsigned *view)
{
    const struct block_file *bf = file->priv[layer->level];
    *view = 0;
    return fstat(bf->fd, st) ? -errno : 0;
}

static unsigned block_caps(struct xd_layer *layer, unsigned below)
{
    const struct block_driver *d = layer->priv;
    return (d->cfg->enable_trim ? XD_CAP_TRIM : 0) | (d->cfg->use_raw_device ? XD_CAP_DIRECT_IO : 0) |
           (d->io.queue ? XD_CAP_ASYNC : 0);
}

static void block_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    block_stats_json(layer->priv, j);
}

static int block_invalidate_hook(struct xd_layer *layer, struct xd_file *file)
{
    return block_invalidate(layer->priv, file, layer->level);
}

const struct xd_ops xd_block_ops = {
    .version = XD_OPS_VERSION,
    .name = "block",
    .open = block_driver_open,
    .close = block_driver_close,
    .file_open = block_file_open,
    .file_close = block_file_close,
    .file_size = block_file_size,
    .submit = block_submit,
    .commit = block_commit,
    .reap = block_reap,
    .caps = block_caps,
    .stats_json = block_stats_hook,
    .invalidate = block_invalidate_hook,
    .identity = block_identity,
};
