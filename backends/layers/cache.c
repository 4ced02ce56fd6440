/* cache.c - the cache layer: xdevice's own in-memory block cache, under the
 * stats layer of every storage type (enable_read_cache), so the compressed
 * type caches decompressed data. One cache per process, shared by all its
 * devices (fio's jobs in thread mode), created by the first device that
 * enables it and freed when the last one closes.
 *
 * This file is the layer: its ops (open and close, file open, close and
 * size, submit, commit, reap, and the invalidate, reload and stats hooks),
 * a device's attachment to the process's cache, the files as the cache
 * knows them (idents), and a write-back device's mutex around every call
 * into its chain (cache_enter; why: cache_writeback.c). The rest is one
 * concern a file, sharing cache_internal.h (private, never installed):
 *   cache_store.c      the shards: entries, hash, policy, write stamps,
 *                      memory, and every operation on one block
 *   cache_read.c       the read path and widened fills
 *   cache_writeback.c  write-back: absorbing writes, flushing, the flusher
 *                      thread, fsync
 *   cache_resize.c     a live cache_size change
 *   cache_trace.c      trace=FILE
 *
 * Coherence: writes through xdevice caches of other processes are seen
 * through the file's shared write generations (cache_gens.c), which also
 * keep write-back to a file's only user. Writes by other programs are not
 * seen while the file is open; a file reopened after every device here
 * closed it is checked against its mtime, ctime and size at that close,
 * and its blocks are dropped if they changed. Concurrent overlapping writes
 * from two devices to one block, one of them absorbed partially in
 * write-back, may merge at block granularity.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/json.h"
#include "cache_internal.h"

static pthread_mutex_t cache_global = PTHREAD_MUTEX_INITIALIZER;
static struct cache *cache_shared;

/* A child after fork() forgets its parent's cache (its flusher thread is
 * not here, its dirty blocks are the parent's to write, its tables' locks
 * are the parent's): a device the child opens gets a cache of its own. The
 * lock is made anew: another of the parent's threads may have held it. */
static void cache_forget_parent(void)
{
    cache_shared = NULL;
    pthread_mutex_init(&cache_global, NULL);
}

__attribute__((constructor)) static void cache_watch_forks(void)
{
    pthread_atfork(NULL, NULL, cache_forget_parent);
}

/* --- small helpers ---------------------------------------------------------- */

static void cache_enter(struct cache_layer *cl)
{
    if (cl->writeback)
        pthread_mutex_lock(&cl->lock);
}

static void cache_leave(struct cache_layer *cl)
{
    if (cl->writeback)
        pthread_mutex_unlock(&cl->lock);
}

/* --- the data path ----------------------------------------------------------- */

static int cache_write_down(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                            struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t seq = cache_next_seq(c);
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    for (uint64_t b = first; b <= last; b++) {
        int rc = cache_begin_write(cl, h, req, b, seq);
        if (rc < 0) { /* a dirty block it covers could not go below first */
            req->result = rc;
            return XD_DONE;
        }
    }
    req_set_seq(cl, req, seq);
    cache_gens_write_begin(c, &h->ident->gens, first, last, req_state(cl, req));
    int rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE)
        cache_end_write(cl, h, req);
    else if (rc < 0) /* never went down (-EBUSY: it comes again) */
        cache_gens_write_end(c, &h->ident->gens, first, last);
    if (rc != -EBUSY && req->op == XD_OP_WRITE)
        cl->count.through++;
    return rc;
}

static int cache_submit_locked(struct xd_layer *layer, struct cache_layer *cl, struct xd_req *req)
{
    struct cache_handle *h = req->file->priv[layer->level];
    if (cl->trace && req->op <= XD_OP_TRIM)
        trace_req(cl, h, req, cl->cache ? cl->cache->shift : (uint32_t)__builtin_ctzll((uint64_t)layer->dev->cfg->cache_block_size));
    if (!cl->cache || !h->ident) /* no cache, or a file it cannot keep current */
        return xd_layer_submit(layer->lower, req);
    if (req->op >= XD_OP_FSYNC)
        return cache_sync(layer, cl, h, req);
    if (!req->len)
        return xd_layer_submit(layer->lower, req);
    if (req->op == XD_OP_READ)
        return cache_read(layer, cl, h, req);
    if (req->op == XD_OP_WRITE && cl->writeback && cache_absorb(cl, h, req)) {
        req->result = (int64_t)req->len;
        return XD_DONE;
    }
    return cache_write_down(layer, cl, h, req);
}

static int cache_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int rc = cache_submit_locked(layer, cl, req);
    cache_leave(cl);
    return rc;
}

static int cache_commit(struct xd_layer *layer)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int rc = xd_layer_commit(layer->lower);
    cache_leave(cl);
    return rc;
}

static int cache_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int n = xd_layer_reap(layer->lower, done, min, max, timeout);
    for (int i = 0; cl->cache && i < n; i++) {
        struct xd_req *req = done[i];
        struct cache_fill *f = fill_of(cl->cache, req);
        if (f) {
            done[i] = fill_done(cl, f);
            continue;
        }
        struct cache_handle *h = req->file->priv[layer->level];
        if (!h->ident || !req->len || req->op >= XD_OP_FSYNC)
            continue;
        if (req->op == XD_OP_READ)
            cache_read_done(cl, h, req);
        else
            cache_end_write(cl, h, req);
    }
    cache_leave(cl);
    return n;
}

/* --- the shared cache ------------------------------------------------------ */

/* The INI file a key's value came from ("dir/xd.ini:12" -> "dir/xd.ini"),
 * as a new string, or NULL when it came from an option or the default. */
static char *origin_file(const struct xd_config *cfg, int key)
{
    const char *o = cfg->origin[key];
    const char *colon = o ? strrchr(o, ':') : NULL;
    if (!colon || colon == o || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return NULL;
    return strndup(o, (size_t)(colon - o));
}

/* cache_size differs only because the INI both devices read changed between
 * their opens (a live reload the first device has not applied yet): the
 * newer value wins, as the reload will make it. */
static bool cache_size_reloaded(const struct cache *c, const struct xd_config *cfg)
{
    if (!c->size_file || (uint32_t)cfg->cache_block_size != c->bs || cfg->cache_policy != c->policy ||
        (uint32_t)cfg->cache_ttl != c->ttl_s)
        return false;
    char *file = origin_file(cfg, XD_KEY_cache_size);
    bool same = file && strcmp(file, c->size_file) == 0;
    free(file);
    return same;
}

/* The process's cache was made by the first device; the others must ask
 * for the same one (a second cache would break the memory bound), or for
 * a size the shared INI changed to since. Under cache_global. */
static int cache_check_same(struct cache_layer *cl, struct cache *c, const struct xd_config *cfg,
                            char *err, size_t errlen)
{
    uint64_t was = c->size;
    if ((uint64_t)cfg->cache_size == c->size && (uint32_t)cfg->cache_block_size == c->bs &&
        cfg->cache_policy == c->policy && (uint32_t)cfg->cache_ttl == c->ttl_s)
        return 0;
    if (cache_size_reloaded(c, cfg) && cache_resize(c, (uint64_t)cfg->cache_size) == 0) {
        snprintf(cl->notice, sizeof(cl->notice),
                 "cache_size=%" PRId64 " (%s): this process's cache resized from %" PRIu64
                 ": the file changed since the process's first job opened it",
                 cfg->cache_size, cfg->origin[XD_KEY_cache_size], was);
        return 0;
    }
    xd_errf(err, errlen,
            "cache_size=%" PRId64 " cache_block_size=%" PRId64 " cache_policy=%s cache_ttl=%" PRId64
            ": this process's cache is already open with cache_size=%" PRIu64 " cache_block_size=%u cache_policy=%s cache_ttl=%u; allowed: the same cache settings in every job of a process (one cache per process)",
            cfg->cache_size, cfg->cache_block_size, xd_enum_name(XD_KEY_cache_policy, cfg->cache_policy),
            cfg->cache_ttl, c->size, c->bs, xd_enum_name(XD_KEY_cache_policy, c->policy), c->ttl_s);
    return -EINVAL;
}

static int cache_attach(struct cache_layer *cl, const struct xd_config *cfg, char *err, size_t errlen)
{
    struct cache *c;
    int rc = 0;
    pthread_mutex_lock(&cache_global);
    c = cache_shared;
    if (c)
        rc = cache_check_same(cl, c, cfg, err, errlen);
    else if (!(rc = cache_new(&c, cfg, err, errlen))) {
        c->size_file = origin_file(cfg, XD_KEY_cache_size);
        cache_shared = c;
        cache_gens_sweep(); /* tables left by processes killed */
    }
    if (!rc && cl->writeback)
        rc = cache_start_flusher(c, err, errlen);
    /* S3-FIFO hits lock nothing; the device gathers their sketch counts */
    if (!rc && c->policy == XD_CP_S3FIFO && !(cl->seen = calloc(c->nshards, sizeof(*cl->seen))))
        rc = -ENOMEM;
    if (!rc) {
        atomic_fetch_add(&c->users, 1);
        cl->cache = c;
    } else if (c && !atomic_load(&c->users)) {
        cache_shared = NULL;
        cache_free(c);
    }
    pthread_mutex_unlock(&cache_global);
    return rc;
}

static void cache_detach(struct cache *c)
{
    bool last;
    pthread_mutex_lock(&cache_global);
    last = atomic_fetch_sub(&c->users, 1) == 1;
    if (last && cache_shared == c)
        cache_shared = NULL;
    pthread_mutex_unlock(&cache_global);
    if (last)
        cache_free(c);
}

/* --- files ------------------------------------------------------------------------ */

static uint64_t ident_trace_id(dev_t dev, ino_t ino, unsigned view)
{
    return xd_hash_mix((uint64_t)dev ^ ((uint64_t)view << 63), (uint64_t)ino);
}

static bool ident_changed(const struct cache_ident *ident, const struct stat *st)
{
    return ident->closed_seen &&
           (st->st_size != ident->size || st->st_mtim.tv_sec != ident->mtime.tv_sec ||
            st->st_mtim.tv_nsec != ident->mtime.tv_nsec || st->st_ctim.tv_sec != ident->ctime.tv_sec ||
            st->st_ctim.tv_nsec != ident->ctime.tv_nsec);
}

/* ident's last handle here closed: its generations stay, so its blocks
 * stay good for a reopen, up to CACHE_GENS_IDLE files closed at once (each
 * holds a descriptor and a mapping); past that the one closed longest ago
 * lets its generations go, and its blocks, which cannot be kept current
 * without them. Under files_lock. */
static void cache_gens_idle(struct cache *c, struct cache_ident *ident)
{
    ident->closed_at = ++c->closes;
    if (++c->gens_idle <= CACHE_GENS_IDLE)
        return;
    struct cache_ident *oldest = NULL;
    for (struct cache_ident *i = c->idents; i; i = i->next)
        if (!i->opens && i->gens.slot && (!oldest || i->closed_at < oldest->closed_at))
            oldest = i;
    if (!oldest) /* never: gens_idle counts exactly these */
        return;
    cache_drop_clean(c, oldest->key);
    cache_gens_close(&oldest->gens);
    c->gens_idle--;
}

/* The ident of the file st describes, made on first sight, with its
 * generations (cache_gens.c; named: other processes can open the file).
 * Under files_lock. */
static struct cache_ident *cache_ident_get(struct cache *c, const struct stat *st, unsigned view,
                                           bool named)
{
    unsigned bucket = (unsigned)(ident_trace_id(st->st_dev, st->st_ino, view) % CACHE_IDENT_BUCKETS);
    struct cache_ident *ident;
    for (ident = c->ident_hash[bucket]; ident; ident = ident->hnext)
        if (ident->dev == st->st_dev && ident->ino == st->st_ino && ident->view == view)
            break;
    if (!ident) {
        if (!(ident = calloc(1, sizeof(*ident))))
            return NULL;
        pthread_mutex_init(&ident->solo_lock, NULL);
        ident->dev = st->st_dev;
        ident->ino = st->st_ino;
        ident->view = view;
        ident->key = ++c->next_key;
        ident->hnext = c->ident_hash[bucket];
        c->ident_hash[bucket] = ident;
        ident->next = c->idents;
        c->idents = ident;
    }
    if (!ident->opens && ident_changed(ident, st))
        cache_drop_clean(c, ident->key); /* changed by someone else while nobody here had it open */
    if (!ident->gens.slot)
        cache_gens_open(&ident->gens, st->st_dev, st->st_ino, view, named, ident->gens_why,
                        sizeof(ident->gens_why));
    else if (!ident->opens)
        c->gens_idle--;
    return ident;
}

/* What identifies the file: what the driver below opened (tmpfs's copy,
 * the container, the block device, the hybrid type's cold file), or the
 * caller's path for a chain none of whose layers can say. */
static int cache_stat(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                      unsigned *view)
{
    int rc = xd_below_identity(layer, file, st, view);
    if (rc == -ENOTTY) {
        *view = 0;
        rc = stat(file->path, st) ? -errno : 0;
    }
    if (rc)
        return rc;
    if (S_ISBLK(st->st_mode)) { /* any node of the same device is the same data */
        st->st_dev = st->st_rdev;
        st->st_ino = 0;
    }
    return 0;
}

/* h's file as the cache knows it. One whose generations cannot be had
 * (another user's table, /dev/shm full) is not cached: h->ident stays
 * NULL, its requests go straight down, and the device's notice says why. */
static int cache_attach_file(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                             const struct stat *st, unsigned view, bool named)
{
    struct cache *c = cl->cache;
    struct cache_ident *ident;
    pthread_mutex_lock(&c->files_lock);
    ident = cache_ident_get(c, st, view, named);
    if (ident && !ident->gens.slot) {
        snprintf(cl->notice, sizeof(cl->notice),
                 "enable_read_cache: %.100s is not cached (no shared write generations for "
                 "it: %.80s)",
                 h->file->path, ident->gens_why);
        pthread_mutex_unlock(&c->files_lock);
        return 0;
    }
    h->ident = ident;
    if (h->ident) {
        h->ident->opens++;
        h->next_in_ident = h->ident->handles;
        h->ident->handles = h;
    }
    pthread_mutex_unlock(&c->files_lock);
    return ident ? 0 : -ENOMEM;
}

static int cache_file_open_locked(struct xd_layer *layer, struct cache_layer *cl, struct xd_file *file,
                                  unsigned flags, uint64_t size, char *err, size_t errlen)
{
    int rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (rc)
        return rc;
    struct cache_handle *h = calloc(1, sizeof(*h));
    struct stat st;
    unsigned view = 0;
    if (!h) {
        xd_layer_file_close(layer->lower, file);
        return -ENOMEM;
    }
    bool named = !cache_stat(layer, file, &st, &view);
    if (!named) { /* cannot tell who it is: a file of its own */
        static atomic_uint_fast64_t anonymous;
        memset(&st, 0, sizeof(st));
        st.st_ino = (ino_t)atomic_fetch_add(&anonymous, 1) + 1;
    }
    h->owner = cl;
    h->file = file;
    h->writable = !(flags & XD_OPEN_READONLY);
    h->trace_id = ident_trace_id(st.st_dev, st.st_ino, view);
    if (cl->cache && (rc = cache_attach_file(layer, cl, h, &st, view, named))) {
        free(h);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    h->next_in_dev = cl->handles;
    cl->handles = h;
    file->priv[layer->level] = h;
    return 0;
}

static int cache_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                           uint64_t size, char *err, size_t errlen)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int rc = cache_file_open_locked(layer, cl, file, flags, size, err, errlen);
    cache_leave(cl);
    return rc;
}

static void cache_unlink_handle(struct cache_layer *cl, struct cache_handle *h)
{
    struct cache_handle **link;
    for (link = &cl->handles; *link && *link != h; link = &(*link)->next_in_dev)
        ;
    if (*link)
        *link = h->next_in_dev;
    if (!h->ident)
        return;
    pthread_mutex_lock(&cl->cache->files_lock);
    for (link = &h->ident->handles; *link && *link != h; link = &(*link)->next_in_ident)
        ;
    if (*link)
        *link = h->next_in_ident;
    if (!--h->ident->opens && h->ident->gens.slot)
        cache_gens_idle(cl->cache, h->ident);
    pthread_mutex_unlock(&cl->cache->files_lock);
}

/* The last close here notes the file's times and size: a change found at
 * the next open was made by someone else. */
static void cache_note_closed(struct xd_layer *layer, struct cache *c, struct cache_ident *ident,
                              struct xd_file *file)
{
    struct stat st;
    unsigned view;
    bool ok = !cache_stat(layer, file, &st, &view);
    pthread_mutex_lock(&c->files_lock);
    if (!ident->opens) {
        ident->closed_seen = ok;
        if (ok) {
            ident->mtime = st.st_mtim;
            ident->ctime = st.st_ctim;
            ident->size = st.st_size;
        }
    }
    pthread_mutex_unlock(&c->files_lock);
}

/* The close's write-back failed (a full file system): the blocks left dirty
 * never reached the file. The close says so (xd_file_close returns rc, the
 * line is take_error's), as close(2) on NFS reports a failed write-back;
 * the blocks stay in the cache, written if the file is opened again here. */
static void cache_close_lost(struct xd_layer *layer, struct cache_layer *cl,
                             struct cache_handle *h, struct xd_file *file, int rc)
{
    xd_file_close_failed(file, rc);
    snprintf(cl->error, sizeof(cl->error),
             "enable_write_cache=true: %s: %u blocks written since the last fsync never reached the file: writing them back failed: %s",
             xd_file_path(layer, file), atomic_load(&h->ident->dirty), strerror(-rc));
    atomic_store(&h->ident->wb_error, 0); /* said here */
}

/* Close: the file's dirty blocks are written back first, whoever wrote
 * them (no dirty block may outlive the last writer's handle). One whose
 * write-back fails makes the close fail (cache_close_lost); once every
 * block is below, an earlier failed write-back lost nothing and no later
 * fsync reports it. */
static void cache_file_close_locked(struct xd_layer *layer, struct cache_layer *cl, struct xd_file *file)
{
    struct cache_handle *h = file->priv[layer->level];
    struct cache_ident *ident = h ? h->ident : NULL;
    if (ident && h->writable && (atomic_load(&ident->dirty) || atomic_load(&ident->writeback))) {
        int64_t rc = cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
        if (rc < 0)
            cache_close_lost(layer, cl, h, file, (int)rc);
        else if (!atomic_load(&ident->dirty))
            atomic_store(&ident->wb_error, 0);
    }
    if (h)
        cache_unlink_handle(cl, h);
    if (ident) /* while the layers below still have it open */
        cache_note_closed(layer, cl->cache, ident, file);
    free(h);
    file->priv[layer->level] = NULL;
    xd_layer_file_close(layer->lower, file);
}

static void cache_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    cache_file_close_locked(layer, cl, file);
    cache_leave(cl);
}

/* Sizes as the caller will see them once dirty blocks are below. */
static int64_t cache_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct cache_layer *cl = layer->priv;
    struct cache_handle *h = file->priv[layer->level];
    cache_enter(cl);
    if (h && h->ident && h->writable && atomic_load(&h->ident->dirty))
        cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
    int64_t size = xd_layer_file_size(layer->lower, file);
    cache_leave(cl);
    return size;
}

/* --- hooks and stats -------------------------------------------------------- */

static void cache_stats_json(const struct cache_layer *cl, struct xd_json *j)
{
    const struct cache *c = cl->cache;
    uint64_t resident = 0, evictions = 0, expired = 0, stale = 0, no_victim = 0, ghost_hits = 0,
             promotions = 0;
    xd_json_object_begin(j, "cache");
    xd_json_bool(j, "enabled", c != NULL);
    if (c) {
        for (uint32_t i = 0; i < c->nshards; i++) {
            struct cache_shard *s = &c->shards[i];
            pthread_mutex_lock(&s->lock);
            resident += s->resident;
            evictions += s->count.evictions;
            expired += s->count.expired;
            stale += s->count.stale;
            no_victim += s->count.no_victim;
            ghost_hits += s->policy.count.ghost_hits;
            promotions += s->policy.count.promotions;
            pthread_mutex_unlock(&s->lock);
        }
        uint64_t lookups = cl->count.hits + cl->count.misses;
        /* this device's requests */
        xd_json_string(j, "policy", xd_enum_name(XD_KEY_cache_policy, c->policy));
        xd_json_bool(j, "write_back", cl->writeback);
        xd_json_uint(j, "hits", cl->count.hits);
        xd_json_uint(j, "misses", cl->count.misses);
        xd_json_double(j, "hit_ratio", lookups ? (double)cl->count.hits / (double)lookups : 0);
        xd_json_uint(j, "hit_bytes", cl->count.hit_bytes);
        xd_json_uint(j, "inserts", cl->count.inserts);
        xd_json_uint(j, "stale_inserts_refused", cl->count.refused);
        xd_json_uint(j, "writes_absorbed", cl->count.absorbed);
        xd_json_uint(j, "writes_through", cl->count.through);
        xd_json_uint(j, "writes_around", cl->count.around);
        xd_json_uint(j, "solo_regained", cl->count.solo_regained);
        xd_json_uint(j, "widened_reads", cl->count.fills);
        /* the process's cache, shared with other devices */
        xd_json_uint(j, "block_size", c->bs);
        xd_json_uint(j, "capacity_bytes", (uint64_t)atomic_load_explicit(&c->nblocks, memory_order_relaxed) * c->bs);
        xd_json_uint(j, "shards", c->nshards);
        xd_json_uint(j, "devices", atomic_load(&c->users));
        xd_json_uint(j, "bytes_cached", resident * c->bs);
        xd_json_uint(j, "dirty_bytes", (uint64_t)atomic_load(&c->dirty) * c->bs);
        xd_json_uint(j, "dirty_max_bytes", (uint64_t)cache_dirty_max(c) * c->bs);
        xd_json_uint(j, "evictions", evictions);
        xd_json_uint(j, "expired", expired);
        xd_json_uint(j, "stale_dropped", stale);
        xd_json_uint(j, "evictions_refused_all_dirty", no_victim);
        xd_json_uint(j, "ghost_hits", ghost_hits);
        xd_json_uint(j, "promotions", promotions);
        xd_json_uint(j, "flushes", atomic_load(&c->flushes));
        xd_json_uint(j, "flushed_bytes", atomic_load(&c->flushed_bytes));
        xd_json_uint(j, "flush_errors", atomic_load(&c->flush_errors));
        xd_json_uint(j, "overhead_bytes_per_block", CACHE_OVERHEAD_PER_BLOCK);
        xd_json_uint(j, "overhead_bytes_fixed", CACHE_OVERHEAD_FIXED);
    }
    xd_json_uint(j, "trace_records", cl->trace_records);
    xd_json_uint(j, "trace_records_lost", cl->trace_lost);
    xd_json_object_end(j);
}

/* fio's invalidate=1 (and its verify phase): dirty blocks go below, clean
 * ones leave, then the layers below drop theirs. */
static int cache_invalidate(struct xd_layer *layer, struct cache_layer *cl, struct xd_file *file)
{
    struct cache_handle *h = file->priv[layer->level];
    if (cl->cache && h && h->ident) {
        if (h->writable && (atomic_load(&h->ident->dirty) || atomic_load(&h->ident->writeback))) {
            int64_t rc = cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
            if (rc < 0)
                return (int)rc;
        }
        cache_drop_clean(cl->cache, h->ident->key);
    }
    return 0; /* the layers below drop their own after this (xd_chain_invalidate) */
}

/* reload: dev->cfg holds the new values, before the old ones. */
static int cache_reload(struct xd_layer *layer, struct cache_layer *cl, const struct xd_config *before)
{
    struct cache *c = cl->cache;
    uint64_t size = (uint64_t)layer->dev->cfg->cache_size;
    if (c) {
        pthread_mutex_lock(&cache_global); /* devices of one process may reload at once */
        int rc = size == c->size ? 0 : cache_resize(c, size);
        pthread_mutex_unlock(&cache_global);
        if (rc)
            return rc;
    }
    return 0;
}

/* The hooks run under cache_enter, as requests do, so a reload or an
 * invalidate never meets a request half-way through the cache. */
static int cache_invalidate_hook(struct xd_layer *layer, struct xd_file *file)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int rc = cache_invalidate(layer, cl, file);
    cache_leave(cl);
    return rc;
}

static int cache_reload_hook(struct xd_layer *layer, const struct xd_config *before)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    int rc = cache_reload(layer, cl, before);
    cache_leave(cl);
    return rc;
}

/* xd_unlink: the removed file's blocks go now, not at the next open. Its
 * inode number can come back with a new file at once (tmpfs and ext4 reuse
 * them), and only its times and size would tell the two apart, to a clock
 * tick on kernels without fine-grained timestamps. A file still open here
 * keeps its blocks, as it keeps its data after unlink(2). A file closed
 * here also lets its generations go (cache_gens.c: the table is removed
 * when no other process holds it). Removes nothing of the file: 0. */
static int cache_unlink_hook(struct xd_layer *layer, const char *path, const char *bottom,
                             char *err, size_t errlen)
{
    struct cache_layer *cl = layer->priv;
    struct stat st;
    if (!cl->cache || stat(bottom, &st) || !S_ISREG(st.st_mode))
        return 0;
    cache_enter(cl);
    pthread_mutex_lock(&cl->cache->files_lock);
    for (struct cache_ident *ident = cl->cache->idents; ident; ident = ident->next)
        if (ident->dev == st.st_dev && ident->ino == st.st_ino && !ident->opens) {
            cache_drop_clean(cl->cache, ident->key);
            if (ident->gens.slot) { /* and its generations, named after an inode that is gone */
                cache_gens_close(&ident->gens);
                cl->cache->gens_idle--;
            }
        }
    pthread_mutex_unlock(&cl->cache->files_lock);
    cache_leave(cl);
    return 0;
}

static void cache_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    cache_stats_json(cl, j);
    cache_leave(cl);
}

/* The run starts now (fio's ramp_time is over): this device's hits, misses
 * and the rest count afresh, so a hit ratio is the warm cache's, not the
 * warm-up's. The shards' figures (evictions, what is resident) are the
 * cache's own, shared with other devices, and go on. */
static void cache_stats_start_run(struct xd_layer *layer)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    memset(&cl->count, 0, sizeof(cl->count));
    cache_leave(cl);
}

/* --- open and close ---------------------------------------------------------- */

static void cache_layer_close(struct xd_layer *layer)
{
    struct cache_layer *cl = layer->priv;
    if (!cl)
        return;
    cache_enter(cl);
    while (cl->handles) { /* files left open: their dirty blocks go below */
        struct cache_handle *h = cl->handles;
        if (h->ident && h->writable && atomic_load(&h->ident->dirty))
            cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
        cache_unlink_handle(cl, h);
        h->file->priv[layer->level] = NULL;
        free(h);
    }
    cache_leave(cl);
    if (cl->cache) {
        cache_seen_flush(cl);
        cache_detach(cl->cache);
    }
    free(cl->seen);
    trace_close(cl);
    free(cl->run_buf);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

static const char *cache_notice(struct xd_layer *layer)
{
    struct cache_layer *cl = layer->priv;
    return cl->notice[0] ? cl->notice : NULL;
}

static int cache_layer_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct cache_layer *cl = calloc(1, sizeof(*cl));
    int rc = 0;
    if (!cl)
        return -ENOMEM;
    cl->layer = layer;
    cl->writeback = cfg->enable_read_cache && cfg->enable_write_cache;
    pthread_mutex_init(&cl->lock, NULL);
    layer->priv = cl;
    if (cfg->trace[0])
        rc = trace_open(cl, cfg, (uint32_t)cfg->cache_block_size, err, errlen);
    if (!rc && cfg->enable_read_cache)
        rc = cache_attach(cl, cfg, err, errlen);
    if (rc) {
        cache_layer_close(layer);
        layer->priv = NULL;
    }
    return rc;
}

static int cache_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    return xd_take_held_error(((struct cache_layer *)layer->priv)->error, line);
}

const struct xd_ops xd_cache_ops = {
    .version = XD_OPS_VERSION,
    .name = "cache",
    .req_ctx_size = sizeof(struct cache_req),
    .open = cache_layer_open,
    .close = cache_layer_close,
    .file_open = cache_file_open,
    .file_close = cache_file_close,
    .file_size = cache_file_size,
    .submit = cache_submit,
    .commit = cache_commit,
    .reap = cache_reap,
    .invalidate = cache_invalidate_hook,
    .unlink = cache_unlink_hook,
    .reload = cache_reload_hook,
    .notice = cache_notice,
    .take_error = cache_take_error,
    .stats_json = cache_stats_hook,
    .stats_start_run = cache_stats_start_run,
};
