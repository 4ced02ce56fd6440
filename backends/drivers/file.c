/* file.c - the file driver: regular files through pread/pwrite or a kernel
 * queue, buffered or O_DIRECT. The regular, direct and tmpfs types sit on it.
 *
 * Open descriptors are cached up to max_open_files; past that the least
 * recently used idle file is closed and transparently reopened when next
 * used, so a job over thousands of files never runs out of descriptors;
 * an open that finds the process out of them (RLIMIT_NOFILE below the
 * bound) closes the older half of the idle ones and tries again.
 * The reopen is by name, so it must find the same file there (device,
 * inode and, where the file system keeps one, birth time): one removed or
 * replaced meanwhile fails with -ESTALE, rather than read or write
 * whatever file now has the name.
 *
 * Files on tmpfs or ramfs are served inline even in an async mode: their
 * reads and writes are memory copies that cannot block on a device, and
 * these file systems refuse RWF_NOWAIT, so io_uring would punt every request
 * to a worker thread (fio's own io_uring engine reaches a few percent of
 * psync's IOPS on /dev/shm at depth 1 for that reason). Except, under
 * io_uring on a tmpfs without large pages (/dev/shm as most systems mount
 * it), writes of XD_MEMORY_WRITE_QUEUED_MIN (64 KiB) or more: copied 4 KiB
 * page by page they are slow enough that the worker's copy is worth its
 * hand-off, the caller filling its next buffer on another core meanwhile
 * (fio's 128k writes with buffer_compress_percentage=50 on /dev/shm:
 * io_uring 70k IOPS, psync 44k; with nothing to fill psync is ahead, 80k
 * to 70k; at 4k psync is ahead 2x either way). On a huge=within_size tmpfs
 * the copy is 2.5x faster and inline wins or ties (128k: 70k vs 69k with
 * the filling, 260k vs 195k without). An fsync on a file whose long writes
 * are queued is queued too (drained behind them) while anything is in
 * flight, so it still covers every earlier write.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../core/fdio.h"
#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/readahead.h"
#include "../chain.h"

/* What tells a file from the next one made at its name: the inode number
 * a removal frees may come back at once (ext4 gives it to the next file
 * made), its birth time then differs. */
struct file_ident {
    uint64_t dev, ino;
    int64_t birth_sec;
    uint32_t birth_nsec;
    bool birth; /* the file system keeps birth times */
};

static int file_ident_of(int fd, struct file_ident *id)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &stx))
        return -errno;
    *id = (struct file_ident){.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor),
                              .ino = stx.stx_ino,
                              .birth = (stx.stx_mask & STATX_BTIME) != 0};
    if (id->birth) {
        id->birth_sec = stx.stx_btime.tv_sec;
        id->birth_nsec = stx.stx_btime.tv_nsec;
    }
    return 0;
}

static bool file_ident_same(const struct file_ident *a, const struct file_ident *b)
{
    return a->dev == b->dev && a->ino == b->ino &&
           (!a->birth || !b->birth ||
            (a->birth_sec == b->birth_sec && a->birth_nsec == b->birth_nsec));
}

struct file_state {
    int fd;            /* -1 while evicted from the fd cache */
    bool in_memory;    /* on tmpfs/ramfs: I/O cannot block on a device */
    bool queues_long_writes; /* in memory, yet long writes are queued (see the header) */
    uint64_t ra_window; /* WILLNEED this far ahead; 0 when the kernel reads further itself */
    unsigned ra_gen;    /* the driver's ra_gen that ra_window was fitted to */
    int reopen_flags;  /* open(2) flags for reopening: no O_CREAT */
    struct file_ident ident; /* the file opened: a reopen must find it again */
    bool made;         /* this open made the file: a failed open removes it */
    unsigned in_flight;
    struct xd_readahead ra;
    struct file_state *newer, *older; /* fd cache LRU, newest at head */
    struct xd_file *file;
    const char *path; /* where the data is: the caller's path or a layer's stand-in (tmpfs) */
};

struct file_driver {
    struct xd_fdio io;
    const struct xd_config *cfg;
    uint64_t ra_window;
    unsigned ra_gen;  /* bumped when xd_reload changes read_ahead_kb; files refit lazily */
    bool drop_cache; /* enable_page_cache=false */
    struct file_state *newest, *oldest;
    unsigned open_fds;
    /* the last tmpfs asked about large pages (xd_tmpfs_large_pages reads
     * /proc/self/mountinfo: once per file system, not once per file) */
    dev_t pages_dev;
    bool pages_known, pages_large;
    struct {
        uint64_t reopens, evictions, punched, advised, mode_changes, preallocated, in_memory_inline;
    } count;
};

/* O_DIRECT reads skip the page cache, so readahead would only fill it. */
static void file_set_readahead(struct file_driver *d, const struct xd_config *cfg, bool direct)
{
    d->ra_window = direct ? 0 : (uint64_t)cfg->read_ahead_kb * 1024;
    d->ra_gen++;
}

static void file_fit_readahead(struct file_driver *d, struct file_state *fs, bool reset);

static int file_driver_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct file_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    bool direct = cfg->use_direct_io || layer->ops == &xd_file_direct_ops;
    int rc = xd_fdio_init(&d->io, cfg->async, layer->dev->queue_entries,
                          direct ? (unsigned)cfg->io_alignment : 0, &layer->dev->io_memory, err,
                          errlen);
    if (rc) {
        free(d);
        return rc;
    }
    d->cfg = cfg;
    file_set_readahead(d, cfg, direct);
    d->drop_cache = !cfg->enable_page_cache && !direct;
    layer->priv = d;
    return 0;
}

static void file_driver_close(struct xd_layer *layer)
{
    struct file_driver *d = layer->priv;
    xd_fdio_destroy(&d->io);
    free(d);
}

/* --- fd cache ------------------------------------------------------------ */

static void lru_unlink(struct file_driver *d, struct file_state *fs)
{
    if (fs->newer)
        fs->newer->older = fs->older;
    else
        d->newest = fs->older;
    if (fs->older)
        fs->older->newer = fs->newer;
    else
        d->oldest = fs->newer;
    fs->newer = fs->older = NULL;
}

static void lru_push(struct file_driver *d, struct file_state *fs)
{
    fs->older = d->newest;
    fs->newer = NULL;
    if (d->newest)
        d->newest->newer = fs;
    d->newest = fs;
    if (!d->oldest)
        d->oldest = fs;
}

/* Close the least recently used idle descriptors until at most target
 * are open (or none idle is left). */
static void fd_cache_close_to(struct file_driver *d, unsigned target)
{
    struct file_state *fs = d->oldest;
    while (fs && d->open_fds > target) {
        struct file_state *newer = fs->newer;
        if (fs->fd >= 0 && !fs->in_flight) {
            close(fs->fd);
            fs->fd = -1;
            d->open_fds--;
            d->count.evictions++;
            lru_unlink(d, fs);
        }
        fs = newer;
    }
}

/* Close the least recently used idle descriptors until under the bound.
 * Files with requests in flight keep theirs, so the bound can be exceeded
 * briefly rather than fail an I/O. */
static void fd_cache_trim(struct file_driver *d, unsigned room)
{
    unsigned most = (unsigned)d->cfg->max_open_files;
    fd_cache_close_to(d, most > room ? most - room : 0);
}

/* An open failed with EMFILE or ENFILE: the process is out of descriptors
 * before this driver reached max_open_files (RLIMIT_NOFILE is 1024 on
 * most systems, as is max_open_files by default, and other devices and
 * the program hold some). Give back the older half of the idle ones, so
 * the open can be tried again; true when any went. */
static bool fd_cache_shed(struct file_driver *d, int rc)
{
    unsigned before = d->open_fds;
    if (rc != -EMFILE && rc != -ENFILE)
        return false;
    fd_cache_close_to(d, before / 2);
    return d->open_fds < before;
}

/* fd_cache_get when the file is not the newest open one, or not open. */
static int fd_cache_get_slow(struct file_driver *d, struct file_state *fs)
{
    if (fs->fd >= 0) {
        lru_unlink(d, fs);
        lru_push(d, fs);
        return fs->fd;
    }
    fd_cache_trim(d, 1);
    int fd = open(fs->path, fs->reopen_flags);
    if (fd < 0 && fd_cache_shed(d, -errno))
        fd = open(fs->path, fs->reopen_flags);
    struct file_ident now;
    if (fd < 0)
        return errno == ENOENT ? -ESTALE : -errno;
    if (file_ident_of(fd, &now) || !file_ident_same(&now, &fs->ident)) {
        close(fd);
        return -ESTALE; /* removed or replaced since: not this file's data */
    }
    if (!d->cfg->update_access_time)
        xd_fd_noatime(fd);
    fs->fd = fd;
    d->open_fds++;
    d->count.reopens++;
    fs->ra_gen = d->ra_gen - 1; /* a new descriptor has no advice: refit at the next read */
    lru_push(d, fs);
    return fd;
}

/* The file's descriptor, reopened if it was closed; inline for the usual
 * case, a job's one file, open and the newest, asked on every request. */
static inline int fd_cache_get(struct file_driver *d, struct file_state *fs)
{
    return fs->fd >= 0 && d->newest == fs ? fs->fd : fd_cache_get_slow(d, fs);
}

/* --- files --------------------------------------------------------------- */

static int file_open_flags(const struct file_driver *d, unsigned flags)
{
    const struct xd_config *cfg = d->cfg;
    int oflags = O_CLOEXEC | ((flags & XD_OPEN_READONLY) ? O_RDONLY : O_RDWR);
    if (d->io.align)
        oflags |= O_DIRECT;
    if (cfg->use_sync_writes)
        oflags |= O_SYNC;
    if (flags & XD_OPEN_OWN_FILE)
        oflags |= O_NOFOLLOW; /* reopens too: never through a link planted since */
    return oflags;
}

static bool file_system_in_memory(const struct statfs *sfs)
{
    return sfs->f_type == TMPFS_MAGIC || sfs->f_type == RAMFS_MAGIC;
}

/* Whether the queue is kept for writes of len bytes to a file in memory on
 * file system f_type, device dev (see the header): only io_uring hands a
 * buffered write to a worker thread (libaio copies it inside io_submit
 * anyway), and only a copy page by page is slow enough to be worth it. */
static bool file_queues_memory_writes(struct file_driver *d, long f_type, dev_t dev,
                                      uint64_t len)
{
    if (d->io.mode != XD_ASYNC_IO_URING || len < XD_MEMORY_WRITE_QUEUED_MIN)
        return false;
    if (f_type != TMPFS_MAGIC)
        return true;
    if (!d->pages_known || d->pages_dev != dev) {
        d->pages_large = xd_tmpfs_large_pages(dev);
        d->pages_dev = dev;
        d->pages_known = true;
    }
    return !d->pages_large;
}

static int file_open_data(struct file_driver *d, struct file_state *fs, unsigned flags,
                          int oflags)
{
    mode_t mode = (mode_t)d->cfg->file_permissions;
    return (flags & XD_OPEN_OWN_FILE) ? xd_open_own_data(fs->path, oflags, mode, &fs->made)
                                      : xd_open_data_made(fs->path, oflags, mode, true, &fs->made);
}

static int file_open_fd(struct file_driver *d, struct file_state *fs, unsigned flags,
                        uint64_t size, char *err, size_t errlen)
{
    const struct xd_config *cfg = d->cfg;
    const char *path = fs->path;
    int oflags = fs->reopen_flags | ((flags & XD_OPEN_CREATE) ? O_CREAT : 0);
    int rc;
    if ((flags & XD_OPEN_CREATE) && cfg->auto_create_dirs &&
        (rc = xd_mkdir_parents(path, cfg->dir_permissions))) {
        xd_errf(err, errlen, "%s: cannot create its directory: %s", path, strerror(-rc));
        return rc;
    }
    fd_cache_trim(d, 1);
    int fd = file_open_data(d, fs, flags, oflags);
    if (fd < 0 && fd_cache_shed(d, fd))
        fd = file_open_data(d, fs, flags, oflags);
    if (fd < 0) {
        rc = fd;
        if ((flags & XD_OPEN_OWN_FILE) && (rc == -ELOOP || rc == -EPERM))
            xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(rc));
        else if (rc == -XD_EUNTRUSTED_LINK)
            xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(rc));
        else if (rc == -ENXIO)
            xd_errf(err, errlen, "%s: a FIFO or a socket is at that name; allowed: a file", path);
        else if (rc == -EINVAL && (oflags & O_DIRECT))
            xd_errf(err, errlen, "%s: the file system does not support O_DIRECT (direct type or use_direct_io=true); allowed: a disk file system such as ext4 or xfs", path);
        else
            xd_errf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
        return rc;
    }
    if (!cfg->update_access_time)
        xd_fd_noatime(fd);
    fs->fd = fd;
    d->open_fds++;
    lru_push(d, fs);
    if ((rc = file_ident_of(fd, &fs->ident))) {
        xd_errf(err, errlen, "%s: cannot stat: %s", path, strerror(-rc));
        return rc;
    }
    if (size && (flags & XD_OPEN_CREATE)) {
        int64_t reserved = xd_file_set_size(cfg, fd, size);
        if (reserved < 0) {
            xd_errf(err, errlen, "%s: cannot size it to %llu bytes: %s", path,
                    (unsigned long long)size, strerror((int)-reserved));
            return (int)reserved;
        }
        d->count.preallocated += (uint64_t)reserved;
    }
    file_fit_readahead(d, fs, false);
    struct statfs sfs;
    fs->in_memory = !fstatfs(fd, &sfs) && file_system_in_memory(&sfs);
    struct stat st;
    fs->queues_long_writes = fs->in_memory && !fstat(fd, &st) &&
                             file_queues_memory_writes(d, sfs.f_type, st.st_dev, UINT64_MAX);
    if (fs->in_memory && d->io.align) {
        /* recent kernels accept O_DIRECT on tmpfs, where it bypasses nothing */
        xd_errf(err, errlen, "%s: on a tmpfs, where O_DIRECT bypasses no cache (direct type or use_direct_io=true); allowed: a disk file system such as ext4 or xfs", path);
        return -EINVAL;
    }
    return 0;
}

static int file_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                          uint64_t size, char *err, size_t errlen)
{
    struct file_driver *d = layer->priv;
    struct file_state *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->file = file;
    fs->path = xd_file_path(layer, file);
    fs->fd = -1;
    fs->reopen_flags = file_open_flags(d, flags);
    int rc = file_open_fd(d, fs, flags, size, err, errlen);
    if (rc) {
        if (fs->fd >= 0) {
            if (fs->made)
                xd_unlink_made(fs->path, fs->fd);
            lru_unlink(d, fs);
            close(fs->fd);
            d->open_fds--;
        }
        free(fs);
        return rc;
    }
    file->priv[layer->level] = fs;
    return 0;
}

static void file_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct file_driver *d = layer->priv;
    struct file_state *fs = file->priv[layer->level];
    if (!fs)
        return;
    if (fs->fd >= 0) {
        lru_unlink(d, fs);
        close(fs->fd);
        d->open_fds--;
    }
    free(fs);
    file->priv[layer->level] = NULL;
}

static int64_t file_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct file_driver *d = layer->priv;
    struct file_state *fs = file->priv[layer->level];
    struct stat st;
    int fd = fd_cache_get(d, fs);
    if (fd < 0)
        return fd;
    return fstat(fd, &st) ? -errno : (int64_t)st.st_size;
}

/* --- data path ----------------------------------------------------------- */

static int64_t file_punch(struct file_driver *d, int fd, const struct xd_req *req)
{
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)req->off,
                  (off_t)req->len))
        return -errno;
    d->count.punched += req->len;
    return (int64_t)req->len;
}

/* Fit a file to the driver's read_ahead_kb: at open, and at its first read
 * after xd_reload changed it (reset: forget the stream and undo the old
 * advice). read_ahead_kb=0 means none at all: POSIX_FADV_RANDOM. */
static void file_fit_readahead(struct file_driver *d, struct file_state *fs, bool reset)
{
    if (!d->io.align && (!d->ra_window || reset))
        posix_fadvise(fs->fd, 0, 0, d->ra_window ? POSIX_FADV_NORMAL : POSIX_FADV_RANDOM);
    /* Told SEQUENTIAL, the kernel reads twice its device's read_ahead_kb
     * ahead, asynchronously; WILLNEED calls below that would only break its
     * pipeline, so read_ahead_kb adds readahead only beyond it. */
    fs->ra_window = d->ra_window > 2 * xd_device_readahead(fs->fd) ? d->ra_window : 0;
    if (reset)
        fs->ra = (struct xd_readahead){0};
    fs->ra_gen = d->ra_gen;
}

/* Readahead is read_ahead_kb: the kernel is told once whenever the stream
 * turns sequential or random (so its own readahead fits the stream), and a
 * sequential stream is advised read_ahead_kb ahead. With read_ahead_kb=0 the
 * file stays POSIX_FADV_RANDOM from open. */
static void file_advise(struct file_driver *d, struct file_state *fs, const struct xd_req *req)
{
    uint64_t start, len;
    bool want_window;
    if (req->op != XD_OP_READ)
        return;
    if (fs->ra_gen != d->ra_gen)
        file_fit_readahead(d, fs, true);
    if (!d->ra_window)
        return;
    enum xd_ra_mode mode = xd_readahead_next(&fs->ra, fs->ra_window, req->off, req->len,
                                             &want_window, &start, &len);
    if (mode != XD_RA_UNKNOWN) {
        posix_fadvise(fs->fd, 0, 0,
                      mode == XD_RA_SEQUENTIAL ? POSIX_FADV_SEQUENTIAL : POSIX_FADV_RANDOM);
        d->count.mode_changes++;
    }
    if (want_window) {
        posix_fadvise(fs->fd, (off_t)start, (off_t)len, POSIX_FADV_WILLNEED);
        d->count.advised++;
    }
}

/* enable_page_cache=false: drop the pages once the request is done with them. */
static void file_completed(struct file_driver *d, struct file_state *fs, const struct xd_req *req)
{
    if (d->drop_cache && req->op <= XD_OP_WRITE && fs->fd >= 0)
        posix_fadvise(fs->fd, (off_t)req->off, (off_t)req->len, POSIX_FADV_DONTNEED);
}

/* Is req, on a file in memory, done inline (see the header)? A sync waits
 * in the queue behind the writes still in flight, so it covers them. */
static bool file_memory_inline(const struct file_driver *d, const struct file_state *fs,
                               const struct xd_req *req)
{
    if (req->op == XD_OP_WRITE)
        return req->len < XD_MEMORY_WRITE_QUEUED_MIN || !fs->queues_long_writes;
    if (req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC)
        return xd_fdio_idle(&d->io);
    return true;
}

static int file_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct file_driver *d = layer->priv;
    struct file_state *fs = req->file->priv[layer->level];
    int fd = fd_cache_get(d, fs);
    if (fd < 0) {
        req->result = fd;
        return XD_DONE;
    }
    if (req->op == XD_OP_TRIM) {
        int rc = xd_fdio_wait_overlaps(&d->io, fd, req);
        req->result = rc ? rc : file_punch(d, fd, req);
        return XD_DONE;
    }
    file_advise(d, fs, req);
    if (fs->in_memory && d->io.queue && file_memory_inline(d, fs, req)) {
        xd_req_core(req)->flags |= XD_REQ_SYNC;
        d->count.in_memory_inline++;
    }
    int rc = xd_fdio_submit(&d->io, fd, req);
    if (rc == XD_QUEUED)
        fs->in_flight++;
    else if (rc == XD_DONE)
        file_completed(d, fs, req);
    return rc;
}

static int file_commit(struct xd_layer *layer)
{
    struct file_driver *d = layer->priv;
    return xd_fdio_commit(&d->io);
}

static int file_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout)
{
    struct file_driver *d = layer->priv;
    int n = xd_fdio_reap(&d->io, done, min, max, timeout);
    for (int i = 0; i < n; i++) {
        struct file_state *fs = done[i]->file->priv[layer->level];
        fs->in_flight--;
        file_completed(d, fs, done[i]);
    }
    return n;
}

static int file_invalidate(struct file_driver *d, struct xd_file *file, unsigned level)
{
    struct file_state *fs = file->priv[level];
    int fd = fd_cache_get(d, fs);
    if (fd < 0)
        return fd;
    fs->ra = (struct xd_readahead){0};
    return -posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static void file_stats_json(const struct file_driver *d, struct xd_json *j)
{
    xd_json_object_begin(j, "file");
    xd_fdio_stats_json(&d->io, j);
    xd_json_uint(j, "open_fds", d->open_fds);
    xd_json_uint(j, "fd_evictions", d->count.evictions);
    xd_json_uint(j, "fd_reopens", d->count.reopens);
    xd_json_uint(j, "read_ahead_kb", d->ra_window / 1024);
    xd_json_uint(j, "readahead_advised", d->count.advised);
    xd_json_uint(j, "readahead_mode_changes", d->count.mode_changes);
    xd_json_uint(j, "trimmed_bytes", d->count.punched);
    xd_json_uint(j, "preallocated_bytes", d->count.preallocated);
    xd_json_uint(j, "in_memory_inline", d->count.in_memory_inline);
    xd_json_object_end(j);
}

/* SEEK_DATA/SEEK_HOLE, for the sparse layer to skip holes. The lseek moves
 * the descriptor's offset, which nothing here uses (I/O is positional). */
static int64_t file_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        return -EINVAL;
    int fd = fd_cache_get(layer->priv, file->priv[layer->level]);
    if (fd < 0)
        return fd;
    off_t pos = lseek(fd, (off_t)off, whence);
    if (pos < 0 && errno != ENXIO)
        return -errno;
    return pos < 0 ? -ENXIO : (int64_t)pos;
}

static int file_space(struct xd_layer *layer, struct xd_file *file, struct xd_space *out)
{
    struct stat st;
    int fd = fd_cache_get(layer->priv, file->priv[layer->level]);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st))
        return -errno;
    out->size = (uint64_t)st.st_size;
    out->allocated = (uint64_t)st.st_blocks * 512;
    return 0;
}

static int file_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                         unsigned *view)
{
    int fd = fd_cache_get(layer->priv, file->priv[layer->level]);
    if (fd < 0)
        return fd;
    *view = 0;
    return fstat(fd, st) ? -errno : 0;
}

static unsigned file_caps(struct xd_layer *layer, unsigned below)
{
    const struct file_driver *d = layer->priv;
    return XD_CAP_TRIM | (d->io.queue ? XD_CAP_ASYNC : 0) | (d->io.align ? XD_CAP_DIRECT_IO : 0);
}

static void file_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    file_stats_json(layer->priv, j);
}

static int file_invalidate_hook(struct xd_layer *layer, struct xd_file *file)
{
    return file_invalidate(layer->priv, file, layer->level);
}

/* With no queue every request is done inline; with one, a file in memory
 * still is (file_submit marks its requests XD_REQ_SYNC), unless its writes
 * may be long enough to be queued there. A file not made yet is asked
 * about through its directory, and a directory (the tmpfs layer's) stands
 * for the files in it; a device node never counts (/dev is a tmpfs too,
 * and what its nodes name is not in memory). */
static bool file_inline_at(struct xd_layer *layer, const char *path, uint64_t largest_write)
{
    struct file_driver *d = layer->priv;
    struct statfs sfs;
    struct stat st;
    if (!d->io.queue)
        return true;
    char *dir = NULL;
    const char *where = path;
    if (stat(path, &st)) {
        dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash)
            slash[slash == dir] = '\0'; /* "/name" lives in "/" */
        where = !dir ? NULL : slash ? dir : ".";
        if (!where || stat(where, &st) || !S_ISDIR(st.st_mode)) {
            free(dir);
            return false;
        }
    }
    bool in_memory = (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && !statfs(where, &sfs) &&
                     file_system_in_memory(&sfs);
    free(dir);
    return in_memory && !file_queues_memory_writes(d, sfs.f_type, st.st_dev, largest_write);
}

static int file_reload(struct xd_layer *layer, const struct xd_config *before)
{
    struct file_driver *d = layer->priv;
    file_set_readahead(d, d->cfg, d->io.align != 0);
    return 0;
}

/* The file driver's entries; the two tables below differ only in open
 * mode (file_driver_open tells them apart by which one it is). */
#define FILE_DRIVER_OPS                                                                           \
    .version = XD_OPS_VERSION, .name = "file", .open = file_driver_open,                         \
    .close = file_driver_close, .file_open = file_file_open, .file_close = file_file_close,      \
    .file_size = file_file_size, .submit = file_submit, .commit = file_commit,                   \
    .reap = file_reap, .caps = file_caps, .stats_json = file_stats_hook,                         \
    .invalidate = file_invalidate_hook, .reload = file_reload, .seek = file_seek,                \
    .space = file_space, .identity = file_identity, .inline_at = file_inline_at

const struct xd_ops xd_file_ops = {FILE_DRIVER_OPS};

/* The direct type: the same driver, opened with O_DIRECT whatever
 * use_direct_io says. */
const struct xd_ops xd_file_direct_ops = {FILE_DRIVER_OPS};
