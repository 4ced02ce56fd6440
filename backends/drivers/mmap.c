/* mmap.c - the mmap driver: regular files read through shared mappings,
 * mapped window by window (mmap_size) on first touch, so reads are memory
 * copies that complete inline. The mmap type sits on it.
 *
 * Writes go through pwrite into the same page cache the windows map (as
 * LMDB writes by default): a copy into a shared mapping runs in user
 * space, and a kill -9 in the middle of it left the block torn in the page
 * cache, old and new bytes (scripts/crash-kill9.sh found fsynced blocks
 * destroyed this way under the write-back cache); the kernel copies a page
 * whole before the kill lands. pwrite also says ENOSPC where a store into
 * a hole on a full file system raises SIGBUS.
 *
 * A mapping turns trouble into signals: touching a page past end of file, or
 * one whose read fails, raises SIGBUS. Reads are therefore checked against
 * the size this driver knows before any copy. A truncate, or a hole
 * punched, by someone else is not supported: pages past the new end would
 * SIGBUS in the caller (on tmpfs, a read of a page not known to have a
 * block goes through pread: core/backed.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "../core/backed.h"
#include "../core/fdio.h"
#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/readahead.h"
#include "../core/xd_internal.h"

struct mmap_window {
    char *addr; /* NULL until first touched; always mmap_size bytes long; read-only */
};

struct mmap_file {
    int fd;
    bool readonly;
    bool in_memory;  /* on tmpfs/ramfs: the pages are the file, no cache to drop */
    bool meta_dirty; /* written, grown or punched since the last sync */
    uint64_t size;   /* the end of file this driver knows; no copy goes past it */
    struct mmap_window *win;
    size_t nwin;   /* slots in win, enough to cover size */
    struct xd_backed backed; /* pages with blocks: on tmpfs a load of any other makes one */
    struct xd_readahead ra;
    uint64_t ra_window; /* WILLNEED this far ahead; 0 when the kernel reads further itself */
    unsigned ra_gen;    /* the driver's ra_gen that ra_window was fitted to */
    bool made;          /* this open made the file: a failed open removes it */
};

struct mmap_driver {
    const struct xd_config *cfg;
    uint64_t window;    /* mmap_size */
    unsigned window_shift; /* log2(window) when it is a power of two, else 0 */
    uint64_t ra_window; /* read_ahead_kb in bytes; 0 advises MADV_RANDOM */
    unsigned ra_gen;    /* bumped when xd_reload changes read_ahead_kb; files refit lazily */
    uint64_t page;
    char notice[192];   /* empty when there is nothing to say */
    struct {
        uint64_t mapped, unmapped, copied_in, copied_out, advised, trimmed, extended;
        uint64_t read_through, writes_synced;
    } count;
};

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Windows start at multiples of mmap_size, which mmap(2) accepts only as
 * page multiples; the page size is known at run time, so it is checked here. */
static int mmap_check_window(const struct xd_config *cfg, uint64_t page, char *err, size_t errlen)
{
    if (!((uint64_t)cfg->mmap_size % page))
        return 0;
    const char *origin = cfg->origin[XD_KEY_mmap_size] ? cfg->origin[XD_KEY_mmap_size] : "default";
    xd_errf(err, errlen, "%s: mmap_size=%lld: not a multiple of the page size; allowed: a multiple of %llu such as 64k or 64m",
            origin, (long long)cfg->mmap_size, (unsigned long long)page);
    return -EINVAL;
}

static int mmap_driver_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    int rc = mmap_check_window(cfg, page, err, errlen);
    if (rc)
        return rc;
    struct mmap_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = cfg;
    d->window = (uint64_t)cfg->mmap_size;
    if (!(d->window & (d->window - 1)))
        d->window_shift = (unsigned)__builtin_ctzll(d->window);
    d->ra_window = (uint64_t)cfg->read_ahead_kb * 1024;
    d->page = page;
    if (cfg->async != XD_ASYNC_SYNC)
        snprintf(d->notice, sizeof(d->notice),
                 "mmap: reads are memory copies and writes pwrite calls, all complete inline; async=%s is accepted but queues nothing",
                 xd_enum_name(XD_KEY_async, cfg->async));
    layer->priv = d;
    return 0;
}

static void mmap_driver_close(struct xd_layer *layer)
{
    free(layer->priv);
}

/* --- windows ------------------------------------------------------------- */

/* The most windows a file's table may have: 256 MiB of it, a file of
 * 1 PiB at the default mmap_size, far past what a mapping count allows
 * anyway (vm.max_map_count). A longer file is -EFBIG to this driver. */
#define MMAP_MAX_WINDOWS (1ull << 24)

/* Make win[] cover a file of size bytes. Doubling keeps a file grown by
 * appends from reallocating on every write. */
static int mmap_windows_reserve(struct mmap_driver *d, struct mmap_file *mf, uint64_t size)
{
    uint64_t windows = (size + d->window - 1) / d->window;
    if (windows > MMAP_MAX_WINDOWS)
        return -EFBIG;
    size_t need = (size_t)windows;
    if (need <= mf->nwin)
        return 0;
    size_t n = mf->nwin ? mf->nwin : 1;
    while (n < need)
        n *= 2;
    struct mmap_window *win = realloc(mf->win, n * sizeof(*win));
    if (!win)
        return -ENOMEM;
    memset(win + mf->nwin, 0, (n - mf->nwin) * sizeof(*win));
    mf->win = win;
    mf->nwin = n;
    return 0;
}

/* How the kernel should fault pages in for this file's stream: no
 * read-around for random readers (as fio's fadvise_hint asks for its own
 * mmap engine), more for sequential ones; read_ahead_kb=0 is always random. */
static int mmap_stream_advice(const struct mmap_driver *d, const struct mmap_file *mf)
{
    if (!d->ra_window || mf->ra.mode == XD_RA_RANDOM)
        return MADV_RANDOM;
    return mf->ra.mode == XD_RA_SEQUENTIAL ? MADV_SEQUENTIAL : MADV_NORMAL;
}

/* Every window is mapped whole, even past end of file: pages there only
 * fault once the file has grown over them, so growing the file never means
 * remapping, and the size check before each copy keeps callers off them.
 * Windows are read-only (writes go through pwrite): random 4k reads
 * through a PROT_WRITE shared mapping of a tmpfs file ran at half the rate
 * on the machine `make perf` was measured on. */
static int mmap_window_map(struct mmap_driver *d, struct mmap_file *mf, size_t idx)
{
    void *addr = mmap(NULL, d->window, PROT_READ, MAP_SHARED, mf->fd, (off_t)(idx * d->window));
    if (addr == MAP_FAILED)
        return -errno;
    int advice = mmap_stream_advice(d, mf);
    if (advice != MADV_NORMAL)
        madvise(addr, d->window, advice);
    mf->win[idx].addr = addr;
    d->count.mapped++;
    return 0;
}

/* The windows are read-only: unmapping loses nothing. */
static void mmap_windows_unmap(struct mmap_driver *d, struct mmap_file *mf)
{
    for (size_t i = 0; i < mf->nwin; i++) {
        if (!mf->win[i].addr)
            continue;
        munmap(mf->win[i].addr, d->window);
        mf->win[i] = (struct mmap_window){0};
        d->count.unmapped++;
    }
}

/* Copy the file's [off, off+len) into buf, window by window. The caller
 * has made sure the range lies within the file. */
static int mmap_copy_out(struct mmap_driver *d, struct mmap_file *mf, char *buf, uint64_t len,
                         uint64_t off)
{
    uint64_t done = 0;
    while (done < len) {
        uint64_t pos = off + done;
        /* a shift and a mask, not two 64-bit divisions, on every request */
        size_t idx = (size_t)(d->window_shift ? pos >> d->window_shift : pos / d->window);
        uint64_t in = d->window_shift ? pos & (d->window - 1) : pos % d->window;
        uint64_t n = min_u64(len - done, d->window - in);
        struct mmap_window *w = &mf->win[idx];
        int rc = w->addr ? 0 : mmap_window_map(d, mf, idx);
        if (rc)
            return rc;
        memcpy(buf + done, w->addr + in, n);
        done += n;
    }
    return 0;
}

/* --- size ---------------------------------------------------------------- */

/* Another descriptor or device may have grown the file; look before
 * answering a read at or past the end this driver knows. */
static int mmap_refresh_size(struct mmap_driver *d, struct mmap_file *mf)
{
    struct stat st;
    if (fstat(mf->fd, &st))
        return -errno;
    if ((uint64_t)st.st_size <= mf->size)
        return 0;
    int rc = mmap_windows_reserve(d, mf, (uint64_t)st.st_size);
    if (rc)
        return rc;
    mf->size = (uint64_t)st.st_size;
    return 0;
}

/* fallocate never shrinks a file, so two writers growing it at once cannot
 * cut off each other's data as a stale ftruncate could, and it reserves the
 * blocks, so a full disk is ENOSPC here, before any byte goes in.
 * ftruncate remains for use_fallocate=false and file systems without it.
 * 1 when the new range was reserved, 0 when it is holes, or -errno. */
static int mmap_grow_fd(const struct mmap_driver *d, int fd, uint64_t from, uint64_t end)
{
    if (d->cfg->use_fallocate) {
        if (!fallocate(fd, 0, (off_t)from, (off_t)(end - from)))
            return 1;
        if (errno != EOPNOTSUPP)
            return -errno;
    }
    struct stat st;
    if (fstat(fd, &st))
        return -errno;
    if ((uint64_t)st.st_size < end && ftruncate(fd, (off_t)end))
        return -errno;
    return 0;
}

/* Grow the file to end before a write touches pages past the old end. The
 * file system says first whether a file may be that long (ext4: 16 TiB):
 * sizing the window table first tried to allocate a terabyte for a write
 * at 2^62, failing with ENOMEM (and aborting under ASan) where write(2)
 * says EFBIG. */
static int mmap_extend(struct mmap_driver *d, struct mmap_file *mf, uint64_t off, uint64_t end)
{
    if (end > (uint64_t)INT64_MAX || (end - 1) / d->window >= MMAP_MAX_WINDOWS)
        return -EFBIG;
    uint64_t from = off > mf->size ? off : mf->size;
    int rc = mmap_grow_fd(d, mf->fd, from, end);
    if (rc == 1)
        xd_backed_note(&mf->backed, mf->fd, from, end - from);
    if (rc >= 0)
        rc = mmap_windows_reserve(d, mf, end);
    if (rc)
        return rc;
    mf->size = end;
    mf->meta_dirty = true;
    d->count.extended++;
    return 0;
}

/* --- files --------------------------------------------------------------- */

static int mmap_open_fd(struct mmap_driver *d, struct mmap_file *mf, const char *path,
                        unsigned flags, uint64_t size, char *err, size_t errlen)
{
    const struct xd_config *cfg = d->cfg;
    bool create = flags & XD_OPEN_CREATE;
    int oflags = O_CLOEXEC | (mf->readonly ? O_RDONLY : O_RDWR) | (create ? O_CREAT : 0);
    int rc;
    if (create && cfg->auto_create_dirs &&
        (rc = xd_mkdir_parents(path, cfg->dir_permissions))) {
        xd_errf(err, errlen, "%s: cannot create its directory: %s", path, strerror(-rc));
        return rc;
    }
    mf->fd = (flags & XD_OPEN_OWN_FILE)
                 ? xd_open_own_data(path, oflags, (mode_t)cfg->file_permissions, &mf->made)
                 : xd_open_data_made(path, oflags, (mode_t)cfg->file_permissions, true, &mf->made);
    if (mf->fd < 0) {
        rc = mf->fd;
        mf->fd = -1;
        xd_errf(err, errlen, "%s: cannot open: %s", path,
                rc == -ENXIO                  ? "a FIFO or a socket is at that name; allowed: a file"
                : (flags & XD_OPEN_OWN_FILE) || rc == -XD_EUNTRUSTED_LINK ? xd_refusal(rc)
                                              : strerror(-rc));
        return rc;
    }
    if (!cfg->update_access_time)
        xd_fd_noatime(mf->fd);
    struct stat st;
    if (fstat(mf->fd, &st)) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot stat: %s", path, strerror(-rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        xd_errf(err, errlen, "%s: not a regular file (storage_type=mmap); allowed: a regular file, or storage_type=block for a device", path);
        return -EINVAL;
    }
    /* as in the file driver: told SEQUENTIAL, the kernel reads twice the
     * device's readahead ahead; smaller WILLNEED calls would only stall it */
    mf->ra_window = d->ra_window > 2 * xd_device_readahead(mf->fd) ? d->ra_window : 0;
    mf->ra_gen = d->ra_gen;
    int64_t reserved = create && size && !mf->readonly ? xd_file_set_size(cfg, mf->fd, size) : 0;
    if (reserved < 0) {
        xd_errf(err, errlen, "%s: cannot size to %llu bytes%s: %s", path, (unsigned long long)size,
                cfg->preallocate_files ? " (preallocate_files=true)" : "", strerror((int)-reserved));
        return (int)reserved;
    }
    return 0;
}

static int mmap_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                          uint64_t size, char *err, size_t errlen)
{
    struct mmap_driver *d = layer->priv;
    struct mmap_file *mf = calloc(1, sizeof(*mf));
    if (!mf)
        return -ENOMEM;
    mf->fd = -1;
    mf->readonly = flags & XD_OPEN_READONLY;
    int rc = mmap_open_fd(d, mf, xd_file_path(layer, file), flags, size, err, errlen);
    if (!rc)
        rc = mmap_refresh_size(d, mf);
    struct statfs sfs;
    mf->in_memory = !rc && !fstatfs(mf->fd, &sfs) &&
                    (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
    /* reads of a file in memory ask which pages are backed (mmap_read):
     * learned now, not by a stalled first read of each 128 MiB */
    if (mf->in_memory)
        (void)xd_backed_learn(&mf->backed, mf->fd, mf->size);
    if (rc) {
        if (mf->fd >= 0 && mf->made)
            xd_unlink_made(xd_file_path(layer, file), mf->fd);
        if (mf->fd >= 0)
            close(mf->fd);
        free(mf->win);
        free(mf);
        return rc;
    }
    file->priv[layer->level] = mf;
    return 0;
}

static void mmap_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct mmap_driver *d = layer->priv;
    struct mmap_file *mf = file->priv[layer->level];
    if (!mf)
        return;
    mmap_windows_unmap(d, mf);
    close(mf->fd);
    xd_backed_free(&mf->backed);
    free(mf->win);
    free(mf);
    file->priv[layer->level] = NULL;
}

static int64_t mmap_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct mmap_driver *d = layer->priv;
    struct mmap_file *mf = file->priv[layer->level];
    int rc = mmap_refresh_size(d, mf);
    return rc ? rc : (int64_t)mf->size;
}

/* --- data path ----------------------------------------------------------- */

/* The stream changed: re-advise every mapped window (new ones get it when mapped). */
static void mmap_advise_windows(struct mmap_driver *d, struct mmap_file *mf)
{
    int advice = mmap_stream_advice(d, mf);
    for (size_t i = 0; i < mf->nwin; i++)
        if (mf->win[i].addr)
            madvise(mf->win[i].addr, d->window, advice);
    d->count.advised++;
}

/* WILLNEED for what a sequential reader will want next, clamped to the file
 * and to windows already mapped: madvise takes only mapped addresses, and a
 * window is mapped by the first read that needs it. */
static void mmap_advise(struct mmap_driver *d, struct mmap_file *mf, uint64_t off, uint64_t len,
                        bool reading)
{
    uint64_t start, alen;
    bool want_window;
    if (mf->ra_gen != d->ra_gen) { /* read_ahead_kb changed: refit, re-advise the windows */
        mf->ra_window = d->ra_window > 2 * xd_device_readahead(mf->fd) ? d->ra_window : 0;
        mf->ra = (struct xd_readahead){0};
        mf->ra_gen = d->ra_gen;
        mmap_advise_windows(d, mf);
    }
    if (!d->ra_window)
        return; /* mapped MADV_RANDOM, nothing to follow */
    /* writes fault pages in too (a partly written page is read first), so
     * they steer the stream's advice as reads do, but get no WILLNEED */
    if (xd_readahead_next(&mf->ra, reading ? mf->ra_window : 0, off, len, &want_window, &start,
                          &alen) != XD_RA_UNKNOWN)
        mmap_advise_windows(d, mf);
    if (!want_window)
        return;
    uint64_t end = min_u64(start + alen, mf->size);
    while (start < end) {
        size_t idx = (size_t)(start / d->window);
        uint64_t base = (uint64_t)idx * d->window;
        uint64_t stop = min_u64(base + d->window, end);
        uint64_t from = (start - base) & ~(d->page - 1);
        if (mf->win[idx].addr) {
            madvise(mf->win[idx].addr + from, stop - base - from, MADV_WILLNEED);
            d->count.advised++;
        }
        start = stop;
    }
}

/* On tmpfs a load through a shared mapping makes a page for a hole, and
 * SIGBUS when it cannot (a full tmpfs); pread returns zeros and makes
 * nothing. So a read there touching a page not known to hold data goes
 * through pread. */
static int64_t mmap_read_through(struct mmap_driver *d, struct mmap_file *mf, char *buf,
                                 uint64_t len, uint64_t off)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pread(mf->fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (!n)
            break; /* shrunk by someone else: the bytes that exist */
        done += (uint64_t)n;
    }
    d->count.read_through++;
    return (int64_t)done;
}

/* Reads past end of file return the bytes that exist. */
static int64_t mmap_read(struct mmap_driver *d, struct mmap_file *mf, struct xd_req *req)
{
    uint64_t off = req->off;
    int rc;
    if ((off >= mf->size || req->len > mf->size - off) && (rc = mmap_refresh_size(d, mf)))
        return rc;
    if (off >= mf->size)
        return 0;
    uint64_t len = min_u64(req->len, mf->size - off);
    if (mf->in_memory && !xd_backed_known(&mf->backed, mf->fd, off, len)) {
        int64_t n = mmap_read_through(d, mf, req->buf, len, off);
        if (n < 0)
            return n;
        len = (uint64_t)n;
    } else if ((rc = mmap_copy_out(d, mf, req->buf, len, off))) {
        return rc;
    }
    d->count.copied_out += len;
    mmap_advise(d, mf, off, len, true);
    return (int64_t)len;
}

/* The bytes go in with pwrite (see the top of this file), whole pages as
 * one kernel copy each; the page cache they fill is the one the windows
 * map. use_sync_writes: durable on return, as O_SYNC makes a pwrite. */
static int mmap_pwrite(struct mmap_driver *d, struct mmap_file *mf, const struct xd_req *req)
{
    int64_t n = xd_pwrite_full(mf->fd, req->buf, req->len, req->off);
    if (n < 0)
        return (int)n;
    xd_backed_note(&mf->backed, mf->fd, req->off, req->len);
    mf->meta_dirty = true; /* the next sync's fdatasync carries the pages */
    if (!d->cfg->use_sync_writes)
        return 0;
    if (fdatasync(mf->fd))
        return -errno;
    mf->meta_dirty = false; /* that fdatasync was the next sync */
    d->count.writes_synced++;
    return 0;
}

/* All or nothing from the caller's view: a failure is -errno, never a short write. */
static int64_t mmap_write(struct mmap_driver *d, struct mmap_file *mf, struct xd_req *req)
{
    uint64_t end = req->off + req->len;
    int rc;
    if (mf->readonly)
        return -EBADF;
    if (end < req->off)
        return -EINVAL;
    if (!req->len)
        return 0; /* as pwrite: no growth, and fallocate refuses a zero length */
    if (end > mf->size && (rc = mmap_extend(d, mf, req->off, end)))
        return rc;
    if ((rc = mmap_pwrite(d, mf, req)))
        return rc;
    d->count.copied_in += req->len;
    mmap_advise(d, mf, req->off, req->len, false);
    return (int64_t)req->len;
}

/* Mapped pages of the range read as zeros afterwards, like the file itself. */
static int64_t mmap_punch(struct mmap_driver *d, struct mmap_file *mf, const struct xd_req *req)
{
    if (fallocate(mf->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)req->off,
                  (off_t)req->len))
        return -errno;
    xd_backed_forget(&mf->backed, req->off, req->len);
    mf->meta_dirty = true;
    d->count.trimmed += req->len;
    return (int64_t)req->len;
}

/* Writes went in through pwrite: the file's own fsync or fdatasync makes
 * them durable; an fdatasync with nothing written, grown or punched since
 * the last is skipped. */
static int64_t mmap_sync(struct mmap_driver *d, struct mmap_file *mf, enum xd_op op)
{
    if (op == XD_OP_FSYNC || mf->meta_dirty) {
        if (op == XD_OP_FSYNC ? fsync(mf->fd) : fdatasync(mf->fd))
            return -errno;
        mf->meta_dirty = false;
    }
    return 0;
}

static int mmap_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct mmap_driver *d = layer->priv;
    struct mmap_file *mf = req->file->priv[layer->level];
    switch (req->op) {
    case XD_OP_READ: req->result = mmap_read(d, mf, req); break;
    case XD_OP_WRITE: req->result = mmap_write(d, mf, req); break;
    case XD_OP_TRIM: req->result = mmap_punch(d, mf, req); break;
    case XD_OP_FSYNC:
    case XD_OP_FDATASYNC: req->result = mmap_sync(d, mf, req->op); break;
    default: req->result = -EOPNOTSUPP; break;
    }
    return XD_DONE;
}

/* Nothing is ever queued: every request completed in submit. */
static int mmap_commit(struct xd_layer *layer)
{
    return 0;
}

static int mmap_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout)
{
    return 0;
}

/* Written pages are written back first: DONTNEED leaves dirty pages cached.
 * Mapped pages are never dropped, so the windows go too, except on a tmpfs:
 * there the pages are the file, nothing is dropped, and unmapping would only
 * make the next pass fault every page in again (fio invalidates before each
 * pass of a time_based job; its own mmap engine keeps its mapping). */
static int mmap_invalidate(struct mmap_driver *d, struct mmap_file *mf)
{
    if (mf->in_memory)
        return 0;
    int rc = (int)mmap_sync(d, mf, XD_OP_FDATASYNC);
    if (rc)
        return rc;
    mmap_windows_unmap(d, mf);
    mf->ra = (struct xd_readahead){0};
    return -posix_fadvise(mf->fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void mmap_stats_json(const struct mmap_driver *d, struct xd_json *j)
{
    xd_json_object_begin(j, "mmap");
    xd_json_uint(j, "window_size", d->window);
    xd_json_uint(j, "windows_mapped", d->count.mapped);
    xd_json_uint(j, "windows_unmapped", d->count.unmapped);
    xd_json_uint(j, "bytes_copied_in", d->count.copied_in);
    xd_json_uint(j, "bytes_copied_out", d->count.copied_out);
    xd_json_uint(j, "read_ahead_kb", d->ra_window / 1024);
    xd_json_uint(j, "advised", d->count.advised);
    xd_json_uint(j, "extends", d->count.extended);
    xd_json_uint(j, "reads_through_pread", d->count.read_through);
    xd_json_uint(j, "writes_synced", d->count.writes_synced);
    xd_json_uint(j, "trimmed_bytes", d->count.trimmed);
    xd_json_object_end(j);
}

static int mmap_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                         unsigned *view)
{
    const struct mmap_file *mf = file->priv[layer->level];
    *view = 0;
    return fstat(mf->fd, st) ? -errno : 0;
}

/* Where data is, for the layers above (the checksum layer tags only data
 * at a sidecar's start): the file's own SEEK_DATA/SEEK_HOLE, which counts
 * pages written through a mapping and not yet written back as data
 * (ext4, xfs and btrfs look at the page cache over unwritten extents;
 * tmpfs at its pages). */
static int64_t mmap_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    const struct mmap_file *mf = file->priv[layer->level];
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        return -EINVAL;
    off_t pos = lseek(mf->fd, (off_t)off, whence);
    if (pos < 0)
        return -errno;
    return (int64_t)pos;
}

static unsigned mmap_caps(struct xd_layer *layer, unsigned below)
{
    return XD_CAP_TRIM; /* never XD_CAP_ASYNC: nothing stays in flight */
}

static void mmap_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    mmap_stats_json(layer->priv, j);
}

static int mmap_invalidate_hook(struct xd_layer *layer, struct xd_file *file)
{
    return mmap_invalidate(layer->priv, file->priv[layer->level]);
}

static const char *mmap_notice(struct xd_layer *layer)
{
    const struct mmap_driver *d = layer->priv;
    return d->notice[0] ? d->notice : NULL;
}

static int mmap_reload(struct xd_layer *layer, const struct xd_config *before)
{
    struct mmap_driver *d = layer->priv;
    d->ra_window = (uint64_t)d->cfg->read_ahead_kb * 1024;
    d->ra_gen++;
    return 0;
}

const struct xd_ops xd_mmap_ops = {
    .version = XD_OPS_VERSION,
    .name = "mmap",
    .open = mmap_driver_open,
    .close = mmap_driver_close,
    .file_open = mmap_file_open,
    .file_close = mmap_file_close,
    .file_size = mmap_file_size,
    .submit = mmap_submit,
    .commit = mmap_commit,
    .reap = mmap_reap,
    .caps = mmap_caps,
    .stats_json = mmap_stats_hook,
    .invalidate = mmap_invalidate_hook,
    .notice = mmap_notice,
    .reload = mmap_reload,
    .identity = mmap_identity,
    .seek = mmap_seek,
};
