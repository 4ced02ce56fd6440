/* compressed.c - the compressed type's driver: each file is a container of
 * fixed logical chunks, each compressed on its own (format: container.h and
 * docs/CONTAINER.md). Random reads decode only the chunks they touch;
 * writes of any size and alignment read-modify-write their chunks.
 *
 * This file holds the ops table, the device's open/close and control, and
 * the data path: requests split into chunks, run inline or on the worker
 * pool, and the read-ahead of a sequential reader. The container files,
 * the chunks and the reports are files.c, chunk.c and report.c beside it
 * (the map is in compressed.h, the driver's private header).
 *
 * A driver, not a layer: it is the bottom of its chain (stats -> [cache] ->
 * compress) and never calls a layer below. Why it owns its file descriptors
 * instead of sitting on the file driver: it locks chunk ranges with OFD
 * locks (one open file description per container, so the locks are its
 * own) and its worker threads do I/O on the same descriptor concurrently,
 * which the file driver's fd cache does not allow.
 *
 * Concurrency, between the jobs of one fio run (threads or processes) and
 * the worker threads of one device:
 *  - A writer of chunk N holds a mutex stripe (threads of this device) and an
 *    OFD write lock on byte XD_LOCK_BASE+N of the container (everyone else).
 *  - Readers take no lock. A slot is only written while the map points at
 *    the other one, so a slot cannot change while its entry still names it.
 *    A reader checks crc32c and the chunk header against the entry it read,
 *    decodes, and (when it decoded straight from the mapping) reads the
 *    entry again: the same generation means the bytes it used were that
 *    version's. If anything fails it reads the entry again: a new
 *    generation means a writer flipped it meanwhile (retry); the same
 *    generation means the chunk is corrupt (EIO).
 *  - The decoded-chunk cache (decoded_cache.c, one per device, shared by its
 *    pool's threads) is consulted after the entry is read and serves only
 *    the generation the entry names; its shards' mutexes are held for a
 *    lookup and a copy, never across I/O or a decode, and never while
 *    taking a chunk lock.
 *
 * Crash safety: the new version goes to the free slot, then the 32-byte map
 * entry flips (one pwrite), then the old slot is punched. A kill between any
 * two steps leaves the old or the new version readable; what it can leave
 * behind is a stale free slot, punched when the sole opener next opens it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/reqorder.h"
#include "../../core/workpool.h"
#include "compressed.h"

/* Chunks a sequential reader asks the kernel for ahead of itself. */
#define RA_CHUNKS 32
/* A read that starts within this many read lengths of where the stream
 * ended continues it: the pool's threads may take a stream's requests
 * slightly out of order. */
#define RA_SLACK 4
/* In an async mode, requests that take less than this on average (a read
 * of a page-cached lz4 chunk: a few microseconds) run inline: handing them
 * to a thread and waking the reaper costs more than the work. Slower ones
 * (compressing a chunk, the slow codecs) go to the threads. */
#define INLINE_BELOW_NS 20000

/* --- requests ------------------------------------------------------------------ */

/* Kernel readahead is off for containers (ctr_file_map), so a sequential
 * reader asks for the stored bytes of the next RA_CHUNKS chunks itself
 * (xd_compress_readahead_window: each chunk's live slot, MADV_WILLNEED),
 * topping the window up once it is half way through it (core/readahead.h). */
static void readahead_note(struct ctr_file *f, uint64_t off, uint64_t len)
{
    uint64_t start, alen;
    bool want_window;
    if (!f->map)
        return;
    pthread_mutex_lock(&f->ra_lock);
    xd_readahead_next_near(&f->ra, RA_SLACK, (uint64_t)RA_CHUNKS * f->chunk_size, off, len,
                           &want_window, &start, &alen);
    pthread_mutex_unlock(&f->ra_lock);
    if (!want_window)
        return;
    /* a top-up (start past the read) begins after the last window's last
     * chunk, which that window covered already */
    uint64_t from = start > off + len ? xd_ctr_chunks(start, f->chunk_size) : start / f->chunk_size;
    uint64_t end = xd_ctr_chunks(atomic_load(&f->logical_size), f->chunk_size);
    uint64_t to = xd_ctr_chunks(start + alen, f->chunk_size);
    xd_compress_readahead_window(f, from, to < end ? to : end);
}

static int64_t ctr_read(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                        uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t size = atomic_load(&f->logical_size);
    if (off + len > size)
        size = xd_compress_file_refresh_size(f);
    if (off >= size)
        return 0;
    if (len > size - off)
        len = size - off;
    readahead_note(f, off, len);
    for (uint64_t done = 0; done < len;) {
        uint64_t chunk = (off + done) / f->chunk_size;
        uint32_t at = (uint32_t)((off + done) % f->chunk_size);
        uint32_t n = (uint32_t)(len - done < f->chunk_size - at ? len - done : f->chunk_size - at);
        int rc = xd_compress_chunk_read(c, t, f, chunk, at, n, buf + done);
        if (rc)
            return rc;
        done += n;
    }
    return (int64_t)len;
}

static int64_t ctr_write(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                         const uint8_t *buf, uint64_t len, uint64_t off)
{
    if (!len)
        return 0; /* as pwrite: no growth (a 0-byte write at 1 GiB made the file 1 GiB) */
    int rc = xd_compress_file_grow(c, f, off + len);
    if (rc)
        return rc;
    for (uint64_t done = 0; done < len;) {
        uint64_t chunk = (off + done) / f->chunk_size;
        uint32_t at = (uint32_t)((off + done) % f->chunk_size);
        uint32_t n = (uint32_t)(len - done < f->chunk_size - at ? len - done : f->chunk_size - at);
        rc = xd_compress_chunk_write(c, t, f, chunk, buf ? buf + done : NULL, at, n);
        if (rc)
            return rc;
        done += n;
    }
    if (buf)
        count_add(c, C_LOGICAL_WRITTEN, len);
    return (int64_t)len;
}

/* Fold one request's cost into the running average of its kind. */
static void cost_note(struct compress_layer *c, int kind, uint64_t ns)
{
    uint64_t avg = atomic_load_explicit(&c->cost_ns[kind], memory_order_relaxed);
    atomic_store_explicit(&c->cost_ns[kind], avg ? (7 * avg + ns) / 8 : ns, memory_order_relaxed);
}

static int cost_kind(const struct xd_req *req)
{
    return req->op == XD_OP_READ ? 0 : 1;
}

/* A trim writes zeros, but only within the container: past its end there
 * is nothing to discard, and growing it to discard would be absurd. */
static int64_t ctr_trim(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                        uint64_t len, uint64_t off)
{
    uint64_t size = xd_compress_file_refresh_size(f);
    if (off >= size)
        return (int64_t)len;
    int64_t rc = ctr_write(c, t, f, NULL, len < size - off ? len : size - off, off);
    return rc < 0 ? rc : (int64_t)len;
}

static void ctr_run(struct compress_layer *c, struct ctr_thread *t, struct xd_req *req,
                    unsigned level)
{
    struct ctr_file *f = req->file->priv[level];
    uint64_t start = xd_now_ns();
    int64_t rc;
    if (!f) {
        req->result = -EBADF;
        return;
    }
    if ((rc = xd_compress_thread_buffers(t, f->chunk_size))) {
        req->result = rc;
        return;
    }
    switch (req->op) {
    case XD_OP_READ: rc = ctr_read(c, t, f, req->buf, req->len, req->off); break;
    case XD_OP_WRITE: rc = ctr_write(c, t, f, req->buf, req->len, req->off); break;
    case XD_OP_TRIM: rc = ctr_trim(c, t, f, req->len, req->off); break;
    case XD_OP_FSYNC: rc = fsync(f->fd) ? -errno : 0; break;
    case XD_OP_FDATASYNC: rc = fdatasync(f->fd) ? -errno : 0; break;
    default: rc = -EINVAL; break;
    }
    req->result = rc;
    if (req->op == XD_OP_READ || req->op == XD_OP_WRITE)
        cost_note(c, cost_kind(req), xd_ns_since(start));
}

/* --- worker pool glue -------------------------------------------------------------- */

static void *pool_thread_init(void *owner) { return xd_compress_thread_new(); }
static void pool_thread_fini(void *owner, void *state) { xd_compress_thread_free(state); }
static void pool_run(void *owner, void *state, struct xd_req *req)
{
    struct xd_layer *layer = owner;
    if (!state) {
        req->result = -ENOMEM;
        return;
    }
    ctr_run(layer->priv, state, req, layer->level);
}

static bool pool_conflict(const struct xd_req *earlier, const struct xd_req *later)
{
    return xd_req_conflict(earlier, later);
}

static int compress_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct compress_layer *c = layer->priv;
    bool cheap = atomic_load_explicit(&c->cost_ns[cost_kind(req)], memory_order_relaxed) <
                 INLINE_BELOW_NS;
    /* inline only when nothing queued or running touches the same bytes:
     * otherwise it would overtake it (docs/DESIGN.md, "Ordering invariant") */
    if (c->pool && !xd_req_is_sync(req) &&
        (!cheap || xd_workpool_conflicts(c->pool, req)))
        return xd_workpool_submit(c->pool, req);
    ctr_run(c, c->inline_state, req, layer->level);
    return XD_DONE;
}

static int compress_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                         const struct timespec *timeout)
{
    struct compress_layer *c = layer->priv;
    return c->pool ? xd_workpool_reap(c->pool, done, min, max, timeout, c->inline_state) : 0;
}

static int compress_commit(struct xd_layer *layer) { return 0; }

/* --- open and close ------------------------------------------------------------------ */

/* One thread per core but one, at most 4: the codecs are CPU-bound and the
 * caller's thread runs requests too while it waits (xd_workpool_reap), so
 * more would only contend (for the CPU, and in the kernel for the file's
 * inode lock on every write). */
static unsigned pool_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
    return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
}

static void compress_close(struct xd_layer *layer);

static int compress_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct compress_layer *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    layer->priv = c;
    c->cfg = cfg;
    c->algo = xd_algo_of_codec(cfg->compression_type);
    atomic_init(&c->level, (int)cfg->compression_level);
    c->compress = cfg->enable_compression;
    c->adaptive = cfg->adaptive_compression;
    c->keep_ratio = 1.0 - cfg->compression_threshold / 100.0;
    pthread_mutex_init(&c->space_lock, NULL);
    int rc = (c->inline_state = xd_compress_thread_new()) ? 0 : -ENOMEM;
    if (!rc && cfg->compress_cache_size &&
        !(c->dcache = xd_dcache_new((uint64_t)cfg->compress_cache_size)))
        rc = -ENOMEM;
    if (!rc && cfg->async != XD_ASYNC_SYNC) {
        struct xd_workpool_ops ops = {.owner = layer, .thread_init = pool_thread_init,
                                      .thread_fini = pool_thread_fini, .run = pool_run,
                                      .conflict = pool_conflict};
        rc = xd_workpool_create(&c->pool, pool_threads(), layer->dev->queue_entries, &ops, err,
                                errlen);
    }
    if (rc) /* a layer whose open fails is not closed by the chain */
        compress_close(layer);
    return rc;
}

static void compress_close(struct xd_layer *layer)
{
    struct compress_layer *c = layer->priv;
    if (!c)
        return;
    xd_workpool_destroy(c->pool);
    xd_compress_thread_free(c->inline_state);
    xd_dcache_free(c->dcache);
    while (c->closed) {
        struct closed_file *next = c->closed->next;
        free(c->closed->path);
        free(c->closed);
        c->closed = next;
    }
    pthread_mutex_destroy(&c->space_lock);
    free(c);
    layer->priv = NULL;
}

/* The container's stat, as a logical view: its bytes are not the data. */
static int compress_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                             unsigned *view)
{
    const struct ctr_file *f = file->priv[layer->level];
    *view = 1;
    return fstat(f->fd, st) ? -errno : 0;
}

/* The first chunk at or after chunk that may hold data, or nchunks. A
 * group with no data at all (map page and slots holes: never written) is
 * skipped whole (xd_compress_next_group_with_data), so a big container of
 * holes costs a few lseeks, not a read of every entry (256 GiB holding
 * one chunk: 2.1 s of reads at a sidecar's start before). */
static uint64_t compress_next_data(struct ctr_file *f, uint64_t chunk, uint64_t nchunks)
{
    uint64_t ngroups = (nchunks + XD_CTR_GROUP_CHUNKS - 1) / XD_CTR_GROUP_CHUNKS;
    while (chunk < nchunks) {
        uint64_t group = xd_compress_next_group_with_data(f, chunk / XD_CTR_GROUP_CHUNKS, ngroups);
        if (group * XD_CTR_GROUP_CHUNKS > chunk)
            chunk = group * XD_CTR_GROUP_CHUNKS;
        uint64_t end = (chunk / XD_CTR_GROUP_CHUNKS + 1) * XD_CTR_GROUP_CHUNKS;
        for (end = end < nchunks ? end : nchunks; chunk < end; chunk++)
            if (xd_compress_chunk_present(f, chunk))
                return chunk;
    }
    return nchunks;
}

/* lseek(2)'s SEEK_DATA and SEEK_HOLE over the logical data, chunk by chunk
 * (a chunk counts whole: xd_compress_chunk_present), for the layers above
 * a hybrid file's compressed cold tier. -ENXIO at or past the end. */
static int64_t compress_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    struct ctr_file *f = file->priv[layer->level];
    if (!f)
        return -EBADF;
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        return -EINVAL;
    uint64_t size = xd_compress_file_refresh_size(f), cs = f->chunk_size;
    if (off >= size)
        return -ENXIO;
    uint64_t nchunks = xd_ctr_chunks(size, f->chunk_size), chunk = off / cs;
    if (whence == SEEK_DATA)
        chunk = compress_next_data(f, chunk, nchunks);
    else
        while (chunk < nchunks && xd_compress_chunk_present(f, chunk))
            chunk++;
    if (chunk >= nchunks)
        return whence == SEEK_DATA ? -ENXIO : (int64_t)size;
    return (int64_t)(chunk * cs > off ? chunk * cs : off);
}

static unsigned compress_caps(struct xd_layer *layer, unsigned below)
{
    const struct compress_layer *c = layer->priv;
    return XD_CAP_TRIM | (c->pool ? XD_CAP_ASYNC : 0);
}

static void compress_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    xd_compress_stats_json(layer->priv, j);
}

static int compress_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    return xd_compress_take_error(layer->priv, line);
}

static int compress_invalidate(struct xd_layer *layer, struct xd_file *file)
{
    struct compress_layer *c = layer->priv;
    struct ctr_file *f = file->priv[layer->level];
    c->inline_state->last_gen = 0;
    if (f && c->dcache) /* cold means cold: the decoded copies go with the pages */
        xd_dcache_drop_file(c->dcache, f->id);
    return f ? -posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED) : 0;
}

/* New chunks take the new level; stored ones keep theirs. */
static int compress_reload(struct xd_layer *layer, const struct xd_config *before)
{
    struct compress_layer *c = layer->priv;
    atomic_store(&c->level, (int)layer->dev->cfg->compression_level);
    return 0;
}

const struct xd_ops xd_compress_ops = {
    .version = XD_OPS_VERSION,
    .name = "compress",
    .open = compress_open,
    .close = compress_close,
    .file_open = xd_compress_file_open,
    .file_close = xd_compress_file_close,
    .file_size = xd_compress_file_size,
    .submit = compress_submit,
    .commit = compress_commit,
    .reap = compress_reap,
    .caps = compress_caps,
    .stats_json = compress_stats_hook,
    .take_error = compress_take_error,
    .invalidate = compress_invalidate,
    .reload = compress_reload,
    .identity = compress_identity,
    .seek = compress_seek,
};
