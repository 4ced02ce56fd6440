/* cache_writeback.c - write-back (enable_write_cache): which writes the
 * cache absorbs, when dirty blocks go below (runs of them, on fsync, close
 * and invalidate, when the dirty share is full, and from the flusher
 * thread), and how a failed write-back is reported. Apart from the block
 * store (cache_store.c) because it is policy and threads over it, and a
 * write-through cache never runs any of it.
 *
 * Write-back (enable_write_cache): a write whose blocks are whole, or
 * partial but cached, is copied into the cache as dirty and completes
 * inline; any other write goes down (cache_store.c), after writing back every
 * dirty block it touches, and fails with the write-back's error where that
 * fails (the dirty block would otherwise land over it later). Dirty blocks are never evicted (a victim
 * is chosen among clean ones) and are at most half the cache: a writer over
 * that writes back its own files' dirty blocks inline, and writes through
 * if that is not enough. fsync/fdatasync write back that file's dirty
 * blocks (and wait for write-backs under way) before going down; close and
 * invalidate do the same. cache_ttl never expires a dirty block.
 *
 * Threads: the layers below are not safe for two threads of one device, so
 * a device with write-back holds its own mutex across every call into its
 * chain (submit, commit, reap, file calls and hooks). The background
 * flusher (one per cache) writes a file's dirty blocks through the chain of
 * a write-back device that has it open, after a pthread_mutex_trylock of
 * that device's mutex: it never waits for a device, so a device blocked in
 * reap only delays it. It wakes every 100 ms, writes blocks dirty for
 * 500 ms, and everything once a quarter of the cache is dirty. Each block
 * being written back is marked, so it is written by one thread at a time,
 * and stays dirty if a write reached it meanwhile.
 *
 * Across processes: a file's writes are kept dirty only while this process
 * is its only user (cache_gens.c); once another process opens it, the next
 * write kept here writes every dirty block of the file back before it
 * completes, and the file is written through until every other process
 * has let it go (cache_share_file, cache_regain_file).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache_internal.h"

#define CACHE_RUN_MAX 512            /* = CACHE_RUN_BYTES / the smallest block */
#define CACHE_FLUSH_INTERVAL_MS 100
#define CACHE_DIRTY_EXPIRE_MS 500
#define CACHE_FLUSH_BATCH 256 /* blocks the flusher writes per hold of a device */
#define CACHE_WAIT_MS 10

/* --- small helpers ---------------------------------------------------------- */

static uint32_t cache_dirty_background(const struct cache *c)
{
    return atomic_load_explicit(&c->dirty_background, memory_order_relaxed);
}

static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(cond, lock, &ts);
}

/* --- write-back ------------------------------------------------------------- */

char *cache_run_buf(struct cache_layer *cl)
{
    if (!cl->run_buf && posix_memalign((void **)&cl->run_buf, 4096, cl->cache->run_blocks * cl->cache->bs))
        cl->run_buf = NULL;
    return cl->run_buf;
}

/* Write back dirty block b of h's file and the dirty blocks right after it
 * (one request), through h's device, whose mutex the caller holds. Returns
 * the blocks written (0: b was not dirty, or already being written back
 * and wait is false) or -errno. */
static int cache_flush_run(struct cache_handle *h, uint64_t b, char *buf, bool wait)
{
    struct cache *c = h->owner->cache;
    struct cache_ident *ident = h->ident;
    uint32_t versions[CACHE_RUN_MAX];
    unsigned n = 0;
    if (!buf)
        return -ENOMEM;
    while (n < c->run_blocks &&
           cache_take(c, ident, b + n, buf + (size_t)n * c->bs, &versions[n], wait && !n))
        n++;
    if (!n)
        return 0;
    struct xd_req req = {.op = XD_OP_WRITE, .file = h->file, .buf = buf,
                         .len = (uint64_t)n * c->bs, .off = b << c->shift};
    struct cache_req gens_noted;
    uint32_t gen[GENS_BATCH];
    xd_req_set_flags(&req, XD_REQ_SYNC);
    cache_gens_write_begin(c, &ident->gens, b, b + n - 1, &gens_noted);
    int rc = xd_layer_submit(h->owner->layer->lower, &req);
    uint32_t moved = cache_gens_write_end(c, &ident->gens, b, b + n - 1);
    bool ok = rc >= 0 && req.result == (int64_t)req.len;
    for (unsigned i = 0; i < n;) {
        unsigned batch = n - i < GENS_BATCH ? n - i : GENS_BATCH;
        bool current = ok && cache_gens_blocks(c, &ident->gens, b, b + n - 1, &gens_noted, moved,
                                               b + i, batch, gen);
        for (unsigned j = 0; j < batch; j++, i++)
            cache_release(c, ident, b + i, versions[i], ok, current ? &gen[j] : NULL);
    }
    if (!ok) {
        int e = rc < 0 ? rc : req.result < 0 ? (int)req.result : -EIO;
        int none = 0;
        atomic_compare_exchange_strong(&ident->wb_error, &none, e);
        atomic_fetch_add(&c->flush_errors, 1);
        return e;
    }
    atomic_fetch_add(&c->flushes, n);
    atomic_fetch_add(&c->flushed_bytes, req.len);
    return (int)n;
}

/* Write back up to max of h's file's dirty blocks dirty for min_age_ms, as
 * runs through h's device (its mutex held by the caller). With wait, also
 * wait for write-backs of the file that others have under way, so all its
 * data dirty at the call is below on return. Blocks written, or -errno. */
int64_t cache_flush_ident(struct cache_handle *h, char *buf, uint32_t min_age_ms,
                          uint64_t max, bool wait)
{
    struct cache *c = h->owner->cache;
    struct cache_ident *ident = h->ident;
    int64_t total = 0;
    for (uint32_t i = 0; i < c->nshards && (uint64_t)total < max; i++) {
        uint64_t b;
        while ((uint64_t)total < max && atomic_load(&ident->dirty) &&
               shard_first_dirty(c, &c->shards[i], ident->key, min_age_ms, &b)) {
            int n = cache_flush_run(h, b, buf, false);
            if (n < 0)
                return n;
            total += n;
        }
    }
    if (wait) {
        pthread_mutex_lock(&c->wb_lock);
        while (atomic_load(&ident->writeback))
            timed_wait(&c->wb_done, &c->wb_lock, CACHE_WAIT_MS);
        pthread_mutex_unlock(&c->wb_lock);
    }
    return total;
}

static void cache_kick_flusher(struct cache *c)
{
    pthread_mutex_lock(&c->flusher_lock);
    pthread_cond_signal(&c->flusher_wake);
    pthread_mutex_unlock(&c->flusher_lock);
}

/* Make block b of h's file clean below before a request that must not
 * find it dirty goes down. A read-only handle cannot write: the flusher
 * writes it through the writer's device, and this waits (bounded). */
int cache_flush_block(struct cache_layer *cl, struct cache_handle *h, uint64_t b)
{
    struct cache *c = cl->cache;
    if (h->writable) {
        int rc = cache_flush_run(h, b, cache_run_buf(cl), true);
        return rc < 0 ? rc : 0;
    }
    uint64_t hash = xd_hash_mix(h->ident->key, b);
    struct cache_shard *s = shard_of(c, hash);
    pthread_mutex_lock(&s->lock);
    for (unsigned tries = 0; tries < 1000; tries++) {
        uint32_t id = shard_find(s, hash, h->ident->key, b);
        if (id == NIL || s->entries[id].state != ENTRY_DIRTY)
            break;
        pthread_mutex_unlock(&s->lock);
        cl->count.flush_waits++;
        cache_kick_flusher(c);
        pthread_mutex_lock(&s->lock);
        timed_wait(&s->written, &s->lock, CACHE_WAIT_MS);
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* --- writes absorbed (write-back) ------------------------------------------ */

/* Room for n more dirty blocks, writing back this device's own files'
 * dirty blocks if the cache is over its dirty share. */
static bool cache_dirty_room(struct cache_layer *cl, unsigned n)
{
    struct cache *c = cl->cache;
    uint64_t max = cache_dirty_max(c); /* one value: a reload may change it meanwhile */
    for (struct cache_handle *h = cl->handles; h && atomic_load(&c->dirty) + (uint64_t)n > max;
         h = h->next_in_dev) {
        uint64_t want = atomic_load(&c->dirty) + (uint64_t)n - max + c->run_blocks;
        if (h->writable && h->ident && cache_flush_ident(h, cache_run_buf(cl), 0, want, false) < 0)
            return false;
    }
    return atomic_load(&c->dirty) + (uint64_t)n <= max;
}

/* Write-back: the whole write lands in the cache, or nothing is claimed
 * (blocks already copied hold this write's data, which the write going
 * down writes again). */
/* Another process opened a file this one keeps dirty blocks of
 * (cache_gens.c, "write-back across processes"): they go below now, before
 * the write that saw it completes, and the file is written through from
 * then on; the newcomer is let go once none is left dirty here. */
static void cache_share_file(struct cache_layer *cl, struct cache_handle *h)
{
    struct cache_ident *ident = h->ident;
    pthread_mutex_lock(&ident->solo_lock);
    atomic_store(&ident->gens.shared, true); /* no absorb starts from now */
    if (cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true) >= 0 &&
        !atomic_load(&ident->dirty))
        cache_gens_share(&ident->gens);
    pthread_mutex_unlock(&ident->solo_lock);
}

/* A file written through since another process came (or that was not the
 * first's at open): once every other process has let the file's table go,
 * solo again (core/turns.c), so writes are absorbed again. Tried every
 * XD_TURNS_REGAIN_EVERY-th write (a failed try is a system call), by one
 * thread at a time, never while a share runs or a block is dirty or being
 * written back here (the count the others wait on restarts at 0). */
static bool cache_regain_file(struct cache_ident *ident)
{
    struct cache_gens *g = &ident->gens;
    if (!g->solo.wanted ||
        atomic_fetch_add(&ident->regain_turns, 1) % XD_TURNS_REGAIN_EVERY != XD_TURNS_REGAIN_EVERY - 1)
        return false;
    if (pthread_mutex_trylock(&ident->solo_lock))
        return false;
    bool solo = !atomic_load(&ident->dirty) && !atomic_load(&ident->writeback) &&
                xd_turns_solo_regain(&g->solo);
    if (solo)
        atomic_store(&g->shared, false);
    pthread_mutex_unlock(&ident->solo_lock);
    return solo;
}

bool cache_absorb(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    uint64_t n = last - first + 1;
    if (!h->writable || n > cache_dirty_max(c) / 2)
        return false;
    /* a write-back of the file failed (a full file system): until an fsync
     * has said so, its writes go down and meet the error themselves, as
     * write(2) does, rather than pile up blocks that cannot be written */
    if (atomic_load(&h->ident->wb_error))
        return false;
    if (!__atomic_load_n(&h->ident->gens.solo.on, __ATOMIC_ACQUIRE) ||
        atomic_load(&h->ident->gens.shared)) {
        if (!cache_regain_file(h->ident))
            return false;
        cl->count.solo_regained++;
    }
    if ((!block_whole(c, req, first) && !cache_present(c, h->ident, first)) ||
        (!block_whole(c, req, last) && !cache_present(c, h->ident, last)))
        return false;
    if (!cache_dirty_room(cl, (unsigned)n))
        return false;
    uint64_t seq = cache_next_seq(c);
    bool all = true;
    for (uint64_t b = first; b <= last && all; b++)
        all = cache_absorb_block(cl, h, req, b, seq);
    if (cache_gens_asked(&h->ident->gens)) /* after the blocks above counted as dirty */
        cache_share_file(cl, h);
    if (!all)
        return false;
    unsigned dirty = atomic_load(&c->dirty), background = cache_dirty_background(c);
    if (dirty >= background && dirty - n < background)
        cache_kick_flusher(c);
    cl->count.absorbed++;
    return true;
}

/* --- fsync ------------------------------------------------------------------ */

int cache_sync(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
               struct xd_req *req)
{
    struct cache_ident *ident = h->ident;
    if (atomic_load(&ident->dirty) || atomic_load(&ident->writeback)) {
        int64_t rc = cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
        if (rc < 0) {
            atomic_store(&ident->wb_error, 0);
            req->result = rc;
            return XD_DONE;
        }
    }
    int error = atomic_exchange(&ident->wb_error, 0);
    if (error) { /* a background write-back failed: this fsync says so */
        req->result = error;
        return XD_DONE;
    }
    return xd_layer_submit(layer->lower, req);
}

/* --- the flusher -------------------------------------------------------------- */

/* A writable handle of ident on a write-back device whose mutex this
 * thread now holds; NULL when every such device is busy. */
static struct cache_handle *cache_pick_handle(struct cache *c, struct cache_ident *ident)
{
    struct cache_handle *found = NULL;
    pthread_mutex_lock(&c->files_lock);
    for (struct cache_handle *h = ident->handles; h && !found; h = h->next_in_ident)
        if (h->writable && h->owner->writeback && !pthread_mutex_trylock(&h->owner->lock))
            found = h;
    pthread_mutex_unlock(&c->files_lock);
    return found;
}

/* One pass over the files with dirty blocks; blocks written. Idents are
 * never freed while the cache lives and only ever prepended, so the list
 * can be walked without the lock once its head is read. */
static uint64_t cache_flusher_pass(struct cache *c)
{
    bool pressed = atomic_load(&c->dirty) >= cache_dirty_background(c);
    uint64_t total = 0;
    pthread_mutex_lock(&c->files_lock);
    struct cache_ident *ident = c->idents;
    pthread_mutex_unlock(&c->files_lock);
    for (; ident; ident = ident->next) {
        if (!atomic_load(&ident->dirty))
            continue;
        struct cache_handle *h = cache_pick_handle(c, ident);
        if (!h)
            continue;
        int64_t n = cache_flush_ident(h, c->flusher_buf, pressed ? 0 : CACHE_DIRTY_EXPIRE_MS,
                                      CACHE_FLUSH_BATCH, false);
        pthread_mutex_unlock(&h->owner->lock);
        total += n > 0 ? (uint64_t)n : 0;
    }
    return total;
}

static void *cache_flusher(void *arg)
{
    struct cache *c = arg;
    bool again = false;
    pthread_mutex_lock(&c->flusher_lock);
    while (!c->flusher_stop) {
        if (!again)
            timed_wait(&c->flusher_wake, &c->flusher_lock, CACHE_FLUSH_INTERVAL_MS);
        if (c->flusher_stop)
            break;
        pthread_mutex_unlock(&c->flusher_lock);
        uint64_t n = cache_flusher_pass(c);
        /* still over the background share and getting somewhere: go on */
        again = n && atomic_load(&c->dirty) >= cache_dirty_background(c);
        pthread_mutex_lock(&c->flusher_lock);
    }
    pthread_mutex_unlock(&c->flusher_lock);
    return NULL;
}

int cache_start_flusher(struct cache *c, char *err, size_t errlen)
{
    if (c->flusher_running)
        return 0;
    if (posix_memalign((void **)&c->flusher_buf, 4096, (size_t)c->run_blocks * c->bs))
        return -ENOMEM;
    int rc = pthread_create(&c->flusher, NULL, cache_flusher, c);
    if (rc) {
        xd_errf(err, errlen, "enable_write_cache=true: cannot start the flusher thread: %s", strerror(rc));
        return -rc;
    }
    c->flusher_running = true;
    return 0;
}
