/* cache.c - the cache layer: xdevice's own in-memory block cache, under the
 * stats layer of every storage type (enable_read_cache), so the compressed
 * type caches decompressed data. One cache per process, shared by all its
 * devices (fio's jobs in thread mode), created by the first device that
 * enables it and freed when the last one closes.
 *
 * Blocks are cache_block_size bytes aligned to file offsets, keyed by the
 * file's identity (st_dev, st_ino, and whether it is the compressed type's
 * logical view) and the block's index, so devices on one file share blocks.
 * The cache is split into up to 16 shards by key hash; each has its own
 * lock, hash table, entries, eviction policy (cachepolicy.c: S3-FIFO or LRU)
 * and its share of cache_size. No lock is shared by all threads on the data
 * path; a hit takes one shard lock per block and copies under it.
 *
 * Memory: block data lives in one anonymous mapping of cache_size bytes
 * reserved at creation and touched only as blocks are filled, entries in a
 * second one; resident memory grows by at most cache_size plus
 * CACHE_OVERHEAD_PER_BLOCK bytes per block (entry, policy node, ghost slots,
 * hash bucket) plus CACHE_OVERHEAD_FIXED. The unit test measures it.
 *
 * Live resize (the reload hook, e.g. xdtune's daemon changing cache_size):
 * both mappings reserve address space for the schema's largest cache_size
 * at creation (MAP_NORESERVE: untouched pages cost nothing), so each shard
 * grows in place; its hash table is rebuilt larger and the policy takes the
 * new capacity. A shrink evicts down to the new size and gives the freed
 * blocks' pages back (MADV_DONTNEED), so the memory bound follows.
 *
 * Reads: a read whose blocks all hit is copied and completes inline. Any
 * other read goes down (async stays async) and, when it completes, the
 * blocks it covered are inserted. A read that covers its edge blocks only
 * partly (4 KiB reads with 64 KiB blocks) goes down widened to whole blocks
 * through one of CACHE_FILL_SLOTS buffers of the cache (CACHE_FILL_BYTES
 * each, in CACHE_OVERHEAD_FIXED), so every miss fills its blocks; when all
 * slots are busy, or the widened read would be larger than a slot, it goes
 * down unchanged and only its whole blocks are inserted.
 *
 * Writes: write-through by default. A write going down first removes the
 * blocks it touches; when it completes, the whole blocks it covered are
 * inserted with its data (partial edges stay out).
 *
 * Stale inserts: a read that started before a write to the same block
 * completed may carry old data. Each shard keeps write stamps (a hash of
 * the block picks one of 1024): a write sets its blocks' stamps from a
 * process-wide sequence when it starts and again when it completes; a read
 * notes the sequence when it goes down and refuses to insert a block whose
 * stamp is newer. A completing write inserts its data only if no other
 * write touched the stamp since it started (else it removes the block).
 * Collisions only refuse inserts, never allow a stale one.
 *
 * Write-back (enable_write_cache): a write whose blocks are whole, or
 * partial but cached, is copied into the cache as dirty and completes
 * inline; any other write goes down as above, after writing back dirty
 * blocks it touches only partly. Dirty blocks are never evicted (a victim
 * is chosen among clean ones) and are at most half the cache: a writer over
 * that writes back its own files' dirty blocks inline, and writes through
 * if that is not enough. fsync/fdatasync write back that file's dirty
 * blocks (and wait for write-backs under way) before going down; close and
 * invalidate do the same. cache_ttl never expires a dirty block.
 *
 * Threads: the layers below are not safe for two threads of one device, so
 * a device with write-back holds its own mutex across every call into its
 * chain (submit, commit, reap, file and control calls). The background
 * flusher (one per cache) writes a file's dirty blocks through the chain of
 * a write-back device that has it open, after a pthread_mutex_trylock of
 * that device's mutex: it never waits for a device, so a device blocked in
 * reap only delays it. It wakes every 100 ms, writes blocks dirty for
 * 500 ms, and everything once a quarter of the cache is dirty. Each block
 * being written back is marked, so it is written by one thread at a time,
 * and stays dirty if a write reached it meanwhile.
 *
 * Coherence: the cache sees I/O through xdevice in this process only. A
 * file reopened after every device here closed it is checked against its
 * mtime, ctime and size at that close, and its blocks are dropped if another
 * process changed it; while it is open, other processes' writes to it are
 * not seen (fio's process mode gives each job its own file and cache).
 * Concurrent overlapping writes from two devices to one block, one of them
 * absorbed partially in write-back, may merge at block granularity.
 *
 * trace=FILE appends one record per block a request touches (cachesim.h),
 * buffered per device; the layer is in the chain when enable_read_cache or
 * trace is set, and with trace alone it only records.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/cachepolicy.h"
#include "../core/cachesim.h"
#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/xd_internal.h"

#define CACHE_MAX_SHARDS 16
#define CACHE_SHARD_MIN_BLOCKS 1024 /* a shard smaller than this gets no company */
#define CACHE_STAMPS 1024           /* write stamps per shard, a power of two */
#define CACHE_RUN_BYTES (256 * 1024) /* most one write-back request carries (or one block) */
#define CACHE_RUN_MAX 512            /* = CACHE_RUN_BYTES / the smallest block */
#define CACHE_FLUSH_INTERVAL_MS 100
#define CACHE_DIRTY_EXPIRE_MS 500
#define CACHE_FLUSH_BATCH 256 /* blocks the flusher writes per hold of a device */
#define CACHE_TRACE_RECS 4096
#define CACHE_IDENT_BUCKETS 256
#define CACHE_WAIT_MS 10
#define CACHE_FILL_BYTES (256 * 1024) /* most a widened read carries */
#define CACHE_FILL_SLOTS 8            /* widened reads in flight per cache */
#define CACHE_MIN_BLOCKS_PER_SHARD 1
#define CACHE_CEILING_BYTES (64 * XD_GIB) /* cache_size's schema maximum */

/* The memory bound's constants (see the header comment). */
#define CACHE_OVERHEAD_PER_BLOCK 96
#define CACHE_OVERHEAD_FIXED \
    (CACHE_MAX_SHARDS * (sizeof(struct cache_shard) + 64) + 2 * CACHE_RUN_BYTES + \
     CACHE_FILL_SLOTS * CACHE_FILL_BYTES)

#define NIL UINT32_MAX
enum { ENTRY_FREE, ENTRY_CLEAN, ENTRY_DIRTY };

/* 56 bytes: key, links and the policy's node in one cache line. */
struct cache_entry {
    uint64_t file, block;
    uint32_t hnext;        /* next in its hash chain or the free list, id + 1 (0 ends) */
    uint32_t dprev, dnext; /* the shard's dirty list, id + 1 */
    uint32_t born_s;       /* filled at, for cache_ttl */
    uint32_t dirty_ms;     /* dirty since */
    uint32_t version;      /* writes that reached it while dirty */
    struct xd_cp_node node;
    uint8_t state;
    uint8_t writeback; /* a write-back of it is under way */
};

/* the entry, its ghost slots and at most two hash buckets (rounded up) */
_Static_assert(sizeof(struct cache_entry) + XD_CP_GHOST_BYTES_PER_ENTRY + 2 * sizeof(uint32_t) <=
                   CACHE_OVERHEAD_PER_BLOCK,
               "CACHE_OVERHEAD_PER_BLOCK is what the header comment promises");

struct cache_shard {
    pthread_mutex_t lock;
    pthread_cond_t written; /* a write-back of one of its blocks ended */
    struct cache_entry *entries; /* its own, by local id */
    char *data;                  /* id * block size */
    uint32_t bs;
    uint32_t per, fresh;         /* entries allowed resident; never used yet from fresh on */
    uint32_t per_max;            /* ids reserved (room to grow live) */
    uint32_t free_head;          /* id + 1 */
    uint32_t bucket_mask;
    uint32_t *buckets; /* id + 1 */
    uint32_t dirty_head, dirty_tail; /* id + 1, oldest first */
    uint32_t resident;
    struct xd_cp policy;
    struct {
        uint64_t evictions, expired, no_victim;
    } count;
    uint64_t stamps[CACHE_STAMPS];
} __attribute__((aligned(64)));

struct cache_handle;

/* One file as the cache knows it, by identity; kept until the cache is
 * freed so reopening finds its blocks. */
struct cache_ident {
    struct cache_ident *next, *hnext; /* all idents (newest first), hash chain */
    dev_t dev;
    ino_t ino;
    unsigned view;
    uint64_t key;  /* the blocks' file key */
    unsigned opens; /* handles, under files_lock */
    struct cache_handle *handles;
    bool closed_seen; /* mtime, ctime, size below are from the last close */
    struct timespec mtime, ctime;
    off_t size;
    atomic_uint dirty, writeback;
    atomic_int wb_error; /* the first failed write-back since the last fsync */
};

/* A read widened to whole blocks: sub goes down in place of parent. */
struct cache_fill {
    struct xd_req sub; /* first, so a completion's pointer is the fill's */
    struct xd_req *parent;
    struct cache_handle *h;
    char *buf; /* CACHE_FILL_BYTES in the cache's fill arena */
    struct cache_fill *next_free;
};

struct cache {
    pid_t pid;
    /* Devices; changed under cache_global, read without it by any device's
     * stats (cache_stats_json), so atomic. */
    atomic_uint users;
    uint64_t size; /* under cache_global */
    uint32_t bs, shift, ttl_s;
    int policy;
    uint32_t nshards, run_blocks;
    uint32_t per_max; /* ids reserved per shard: cache_size can grow live up to nshards * per_max blocks */
    /* Set by cache_resize (a reload, in whichever job's thread sees it, under
     * cache_global) while other devices' writes (cache_absorb), the flusher
     * and stats read them without that lock: atomic, and each reader loads a
     * value once per decision. They are limits, not guards of other data, so
     * relaxed loads are enough. */
    atomic_uint nblocks, dirty_max, dirty_background;
    uint64_t t0_ns;
    struct cache_entry *entries;
    size_t entries_len;
    char *arena;
    size_t arena_len;
    struct cache_shard *shards;
    atomic_uint_fast64_t seq;
    atomic_uint dirty;
    atomic_uint_fast64_t flushes, flushed_bytes, flush_errors;
    pthread_mutex_t files_lock;
    struct cache_ident *idents;
    struct cache_ident *ident_hash[CACHE_IDENT_BUCKETS];
    uint64_t next_key;
    pthread_mutex_t wb_lock; /* with wb_done: an ident's write-backs all ended */
    pthread_cond_t wb_done;
    pthread_mutex_t flusher_lock;
    pthread_cond_t flusher_wake;
    pthread_t flusher;
    bool flusher_running, flusher_stop;
    char *flusher_buf;
    pthread_mutex_t fill_lock;
    struct cache_fill fills[CACHE_FILL_SLOTS];
    struct cache_fill *fill_free;
    char *fill_arena; /* made at the first widened read */
};

struct cache_layer;

struct cache_handle {
    struct cache_handle *next_in_ident, *next_in_dev;
    struct cache_ident *ident; /* NULL when only tracing */
    struct cache_layer *owner;
    struct xd_file *file;
    uint64_t trace_id;
    bool writable;
};

struct cache_layer {
    struct xd_layer *layer;
    struct cache *cache; /* NULL: trace only */
    bool writeback;
    pthread_mutex_t lock; /* held around calls into the chain below, with write-back */
    struct cache_handle *handles;
    char *run_buf; /* write-back requests of this device's thread */
    int trace_fd;
    struct xd_trace_rec *trace;
    unsigned ntrace;
    uint64_t trace_records, trace_errors;
    struct {
        uint64_t hits, misses, hit_bytes, inserts, refused, absorbed, through, flush_waits, fills;
    } count;
};

static pthread_mutex_t cache_global = PTHREAD_MUTEX_INITIALIZER;
static struct cache *cache_shared;

/* --- small helpers ---------------------------------------------------------- */

/* The cache's per-request state (its slice of xd_req.xd_private): the
 * write sequence when the request went down, so that its completion can
 * tell whether another write touched its blocks meanwhile. */
struct cache_req {
    uint64_t seq;
};

static uint64_t *req_seq(const struct cache_layer *cl, const struct xd_req *req)
{
    return &((struct cache_req *)xd_req_ctx(cl->layer, req))->seq;
}

static uint64_t cache_hash(uint64_t file, uint64_t block)
{
    uint64_t x = file * 0x9e3779b97f4a7c15ull ^ block * 0xc2b2ae3d27d4eb4full;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static struct cache_shard *shard_of(const struct cache *c, uint64_t h)
{
    return &c->shards[h & (c->nshards - 1)];
}

static uint64_t *stamp_of(struct cache_shard *s, uint64_t h)
{
    return &s->stamps[(h >> 40) & (CACHE_STAMPS - 1)];
}

static void stamp_raise(uint64_t *stamp, uint64_t seq)
{
    if (*stamp < seq)
        *stamp = seq;
}

static uint64_t cache_next_seq(struct cache *c)
{
    return atomic_fetch_add(&c->seq, 1) + 1;
}

static uint32_t cache_dirty_max(const struct cache *c)
{
    return atomic_load_explicit(&c->dirty_max, memory_order_relaxed);
}

static uint32_t cache_dirty_background(const struct cache *c)
{
    return atomic_load_explicit(&c->dirty_background, memory_order_relaxed);
}

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t cache_now_s(const struct cache *c)
{
    return (uint32_t)((coarse_ns() - c->t0_ns) / 1000000000ull);
}

static uint32_t cache_now_ms(const struct cache *c)
{
    return (uint32_t)((coarse_ns() - c->t0_ns) / 1000000ull);
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

/* The bytes of block b that req covers: [*lo, *hi) from the block's start. */
static void block_span(const struct cache *c, const struct xd_req *req, uint64_t b, uint64_t *lo,
                       uint64_t *hi)
{
    uint64_t start = b << c->shift, end = req->off + req->len;
    *lo = req->off > start ? req->off - start : 0;
    *hi = end < start + c->bs ? end - start : c->bs;
}

static bool block_whole(const struct cache *c, const struct xd_req *req, uint64_t b)
{
    uint64_t lo, hi;
    block_span(c, req, b, &lo, &hi);
    return lo == 0 && hi == c->bs;
}

static char *req_at(const struct cache *c, const struct xd_req *req, uint64_t b, uint64_t lo)
{
    return (char *)req->buf + ((b << c->shift) + lo - req->off);
}

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

/* --- a shard's entries (all under its lock) --------------------------------- */

static uint32_t shard_find(struct cache_shard *s, uint64_t h, uint64_t file, uint64_t block)
{
    uint32_t head = s->buckets[(h >> 16) & s->bucket_mask];
    /* most chains hold one entry: start loading its data with its key */
    if (head)
        __builtin_prefetch(s->data + (size_t)(head - 1) * s->bs);
    for (uint32_t i = head; i; i = s->entries[i - 1].hnext) {
        const struct cache_entry *e = &s->entries[i - 1];
        if (e->block == block && e->file == file)
            return i - 1;
    }
    return NIL;
}

static void shard_unhash(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    uint32_t *link = &s->buckets[(cache_hash(e->file, e->block) >> 16) & s->bucket_mask];
    while (*link != id + 1)
        link = &s->entries[*link - 1].hnext;
    *link = e->hnext;
}

static void dirty_append(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    e->dnext = 0;
    e->dprev = s->dirty_tail;
    if (s->dirty_tail)
        s->entries[s->dirty_tail - 1].dnext = id + 1;
    else
        s->dirty_head = id + 1;
    s->dirty_tail = id + 1;
}

static void dirty_unlink(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    if (e->dprev)
        s->entries[e->dprev - 1].dnext = e->dnext;
    else
        s->dirty_head = e->dnext;
    if (e->dnext)
        s->entries[e->dnext - 1].dprev = e->dprev;
    else
        s->dirty_tail = e->dprev;
    e->dprev = e->dnext = 0;
}

/* A clean entry leaves (invalidated or expired; evictions go through the policy). */
static void shard_remove(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    shard_unhash(s, id);
    xd_cp_remove(&s->policy, id);
    e->state = ENTRY_FREE;
    e->hnext = s->free_head;
    s->free_head = id + 1;
    s->resident--;
}

static bool entry_evictable(void *ctx, uint32_t id)
{
    const struct cache_entry *e = &((struct cache_shard *)ctx)->entries[id];
    return e->state == ENTRY_CLEAN && !e->writeback;
}

static uint64_t entry_hash(void *ctx, uint32_t id)
{
    const struct cache_entry *e = &((struct cache_shard *)ctx)->entries[id];
    return cache_hash(e->file, e->block);
}

static bool entry_expired(const struct cache *c, const struct cache_entry *e)
{
    return c->ttl_s && e->state == ENTRY_CLEAN && !e->writeback &&
           cache_now_s(c) - e->born_s >= c->ttl_s;
}

/* An entry for a new block: a free one, a never used one, or a victim.
 * NIL when every resident is dirty or being written back. */
static uint32_t shard_alloc(struct cache_shard *s)
{
    uint32_t id;
    if (s->resident < s->per) { /* below capacity; after a shrink it may be above */
        if (s->free_head) {
            id = s->free_head - 1;
            s->free_head = s->entries[id].hnext;
            return id;
        }
        if (s->fresh < s->per_max)
            return s->fresh++;
    }
    id = xd_cp_evict(&s->policy);
    if (id == XD_CP_NONE) {
        s->count.no_victim++;
        return NIL;
    }
    shard_unhash(s, id);
    s->entries[id].state = ENTRY_FREE;
    s->resident--;
    s->count.evictions++;
    return id;
}

static void shard_link(const struct cache *c, struct cache_shard *s, uint32_t id, uint64_t h,
                       uint64_t file, uint64_t block)
{
    struct cache_entry *e = &s->entries[id];
    uint32_t *bucket = &s->buckets[(h >> 16) & s->bucket_mask];
    e->file = file;
    e->block = block;
    e->state = ENTRY_CLEAN;
    e->writeback = 0;
    e->hnext = *bucket;
    e->dprev = e->dnext = 0;
    e->version = 0;
    e->born_s = c->ttl_s ? cache_now_s(c) : 0;
    *bucket = id + 1;
    xd_cp_insert(&s->policy, id, h);
    s->resident++;
}

/* Look up block b, dropping it if it expired. */
static uint32_t shard_get(const struct cache *c, struct cache_shard *s, uint64_t h, uint64_t file,
                          uint64_t b)
{
    uint32_t id = shard_find(s, h, file, b);
    if (id != NIL && entry_expired(c, &s->entries[id])) {
        shard_remove(s, id);
        s->count.expired++;
        return NIL;
    }
    return id;
}

/* --- the trace ------------------------------------------------------------ */

static void trace_flush(struct cache_layer *cl)
{
    size_t len = cl->ntrace * sizeof(*cl->trace);
    if (cl->ntrace && write(cl->trace_fd, cl->trace, len) != (ssize_t)len)
        cl->trace_errors++;
    cl->ntrace = 0;
}

static void trace_add(struct cache_layer *cl, uint64_t file, uint64_t block, unsigned op)
{
    if (cl->ntrace == CACHE_TRACE_RECS)
        trace_flush(cl);
    cl->trace[cl->ntrace++] = xd_trace_make(file, block, op);
    cl->trace_records++;
}

static void trace_req(struct cache_layer *cl, const struct cache_handle *h, const struct xd_req *req,
                      uint32_t shift)
{
    unsigned op = req->op == XD_OP_READ ? XD_TRACE_READ
                  : req->op == XD_OP_WRITE ? XD_TRACE_WRITE
                                           : XD_TRACE_TRIM;
    if (!req->len)
        return;
    for (uint64_t b = req->off >> shift; b <= (req->off + req->len - 1) >> shift; b++)
        trace_add(cl, h->trace_id, b, op);
}

static int trace_open(struct cache_layer *cl, const struct xd_config *cfg, uint32_t bs, char *err,
                      size_t errlen)
{
    char what[PATH_MAX + 8];
    const char *base;
    snprintf(what, sizeof(what), "trace=%s", cfg->trace);
    int dirfd = xd_dir_open_for(cfg->trace, what, cfg->allow_shared_directories, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    /* jobs and runs append to one trace: reused, but only if it is ours */
    cl->trace_fd = xd_open_own_at(dirfd, base, O_WRONLY | O_APPEND, (mode_t)cfg->file_permissions);
    close(dirfd);
    if (cl->trace_fd < 0) {
        int rc = cl->trace_fd;
        xd_errf(err, errlen, "%s: cannot open: %s", what, xd_refusal(rc));
        return rc;
    }
    cl->trace = malloc(CACHE_TRACE_RECS * sizeof(*cl->trace));
    if (!cl->trace)
        return -ENOMEM;
    /* every writer's records start with a header: jobs append to one file */
    cl->trace[cl->ntrace++] = (struct xd_trace_rec){.file = XD_TRACE_MAGIC,
                                                    .word = (uint64_t)bs << 2 | XD_TRACE_HEADER};
    return 0;
}

/* --- write-back ------------------------------------------------------------- */

/* Take dirty block b of file for write-back: copy it to dst, note its
 * version. With wait, first wait out a write-back of it under way. */
static bool cache_take(struct cache *c, struct cache_ident *ident, uint64_t b, char *dst,
                       uint32_t *version, bool wait)
{
    uint64_t h = cache_hash(ident->key, b);
    struct cache_shard *s = shard_of(c, h);
    bool taken = false;
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_find(s, h, ident->key, b);
    while (wait && id != NIL && s->entries[id].writeback) {
        pthread_cond_wait(&s->written, &s->lock);
        id = shard_find(s, h, ident->key, b);
    }
    if (id != NIL && s->entries[id].state == ENTRY_DIRTY && !s->entries[id].writeback) {
        struct cache_entry *e = &s->entries[id];
        dirty_unlink(s, id);
        e->writeback = 1;
        *version = e->version;
        memcpy(dst, s->data + (size_t)id * c->bs, c->bs);
        atomic_fetch_add(&ident->writeback, 1);
        taken = true;
    }
    pthread_mutex_unlock(&s->lock);
    return taken;
}

/* A write-back of b ended: clean unless a write reached it meanwhile or the
 * write-back failed (then it stays dirty, at the back of the list). */
static void cache_release(struct cache *c, struct cache_ident *ident, uint64_t b, uint32_t version,
                          bool ok)
{
    uint64_t h = cache_hash(ident->key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_find(s, h, ident->key, b);
    if (id != NIL) { /* always: a block being written back is never removed */
        struct cache_entry *e = &s->entries[id];
        e->writeback = 0;
        if (ok && e->version == version) {
            e->state = ENTRY_CLEAN;
            atomic_fetch_sub(&c->dirty, 1);
            atomic_fetch_sub(&ident->dirty, 1);
        } else {
            e->dirty_ms = cache_now_ms(c);
            dirty_append(s, id);
        }
    }
    pthread_cond_broadcast(&s->written);
    pthread_mutex_unlock(&s->lock);
    if (atomic_fetch_sub(&ident->writeback, 1) == 1) {
        pthread_mutex_lock(&c->wb_lock);
        pthread_cond_broadcast(&c->wb_done);
        pthread_mutex_unlock(&c->wb_lock);
    }
}

static char *cache_run_buf(struct cache_layer *cl)
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
    xd_req_set_flags(&req, XD_REQ_SYNC);
    int rc = xd_layer_submit(h->owner->layer->lower, &req);
    bool ok = rc >= 0 && req.result == (int64_t)req.len;
    for (unsigned i = 0; i < n; i++)
        cache_release(c, ident, b + i, versions[i], ok);
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

/* The first dirty block of ident in shard s dirty for at least min_age_ms;
 * false when none. The list is oldest first. */
static bool shard_first_dirty(struct cache *c, struct cache_shard *s, uint64_t key,
                              uint32_t min_age_ms, uint64_t *block)
{
    uint32_t now = min_age_ms ? cache_now_ms(c) : 0;
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = s->dirty_head; i; i = s->entries[i - 1].dnext) {
        const struct cache_entry *e = &s->entries[i - 1];
        if (min_age_ms && now - e->dirty_ms < min_age_ms)
            break;
        if (e->file == key) {
            *block = e->block;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* Write back up to max of h's file's dirty blocks dirty for min_age_ms, as
 * runs through h's device (its mutex held by the caller). With wait, also
 * wait for write-backs of the file that others have under way, so all its
 * data dirty at the call is below on return. Blocks written, or -errno. */
static int64_t cache_flush_ident(struct cache_handle *h, char *buf, uint32_t min_age_ms,
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
static int cache_flush_block(struct cache_layer *cl, struct cache_handle *h, uint64_t b)
{
    struct cache *c = cl->cache;
    if (h->writable) {
        int rc = cache_flush_run(h, b, cache_run_buf(cl), true);
        return rc < 0 ? rc : 0;
    }
    uint64_t hash = cache_hash(h->ident->key, b);
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

/* --- reads ------------------------------------------------------------------ */

/* Copy what req wants of block b from the cache; false on a miss. */
static bool cache_copy_out(struct cache *c, uint64_t key, uint64_t b, struct xd_req *req)
{
    uint64_t h = cache_hash(key, b), lo, hi;
    struct cache_shard *s = shard_of(c, h);
    block_span(c, req, b, &lo, &hi);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_get(c, s, h, key, b);
    if (id != NIL) {
        memcpy(req_at(c, req, b, lo), s->data + (size_t)id * c->bs + lo, hi - lo);
        xd_cp_access(&s->policy, id);
    }
    pthread_mutex_unlock(&s->lock);
    return id != NIL;
}

static bool cache_is_dirty(struct cache *c, uint64_t key, uint64_t b)
{
    uint64_t h = cache_hash(key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_find(s, h, key, b);
    bool dirty = id != NIL && s->entries[id].state == ENTRY_DIRTY;
    pthread_mutex_unlock(&s->lock);
    return dirty;
}

/* Insert clean block b read by a request that went down at sequence seq,
 * unless a write touched it since. */
static void cache_insert_read(struct cache_layer *cl, uint64_t key, uint64_t b, const char *src,
                              uint64_t seq)
{
    struct cache *c = cl->cache;
    uint64_t h = cache_hash(key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    if (*stamp_of(s, h) > seq) {
        cl->count.refused++;
    } else if (shard_find(s, h, key, b) == NIL) {
        uint32_t id = shard_alloc(s);
        if (id != NIL) {
            shard_link(c, s, id, h, key, b);
            memcpy(s->data + (size_t)id * c->bs, src, c->bs);
            cl->count.inserts++;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void cache_read_done(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    if (req->result <= 0)
        return;
    uint64_t end = req->off + (uint64_t)req->result;
    uint64_t first = (req->off + c->bs - 1) >> c->shift, stop = end >> c->shift;
    for (uint64_t b = first; b < stop; b++)
        cache_insert_read(cl, h->ident->key, b, req_at(c, req, b, 0), *req_seq(cl, req));
}

/* --- widened reads ------------------------------------------------------------ */

/* A free fill slot, NULL when all are in flight (or the arena cannot be
 * made: the read then goes down unwidened, which is only slower). */
static struct cache_fill *fill_get(struct cache *c)
{
    struct cache_fill *f = NULL;
    pthread_mutex_lock(&c->fill_lock);
    if (!c->fill_arena && !posix_memalign((void **)&c->fill_arena, 4096,
                                          (size_t)CACHE_FILL_SLOTS * CACHE_FILL_BYTES)) {
        for (unsigned i = 0; i < CACHE_FILL_SLOTS; i++) {
            c->fills[i].buf = c->fill_arena + (size_t)i * CACHE_FILL_BYTES;
            c->fills[i].next_free = c->fill_free;
            c->fill_free = &c->fills[i];
        }
    }
    if ((f = c->fill_free))
        c->fill_free = f->next_free;
    pthread_mutex_unlock(&c->fill_lock);
    return f;
}

static void fill_put(struct cache *c, struct cache_fill *f)
{
    pthread_mutex_lock(&c->fill_lock);
    f->next_free = c->fill_free;
    c->fill_free = f;
    pthread_mutex_unlock(&c->fill_lock);
}

/* The fill whose sub-request req is, or NULL for any other request. */
static struct cache_fill *fill_of(const struct cache *c, const struct xd_req *req)
{
    uintptr_t p = (uintptr_t)req, lo = (uintptr_t)&c->fills[0];
    if (p < lo || p >= (uintptr_t)&c->fills[CACHE_FILL_SLOTS])
        return NULL;
    return (struct cache_fill *)req;
}

/* A widened read completed: its whole blocks go into the cache, the part
 * the caller asked for into its buffer (short when the file ends first).
 * Returns the caller's request; the slot is free again. */
static struct xd_req *fill_done(struct cache_layer *cl, struct cache_fill *f)
{
    struct xd_req *req = f->parent;
    int64_t r = f->sub.result;
    cache_read_done(cl, f->h, &f->sub);
    if (r < 0) {
        req->result = r;
    } else {
        uint64_t skip = req->off - f->sub.off;
        uint64_t n = (uint64_t)r > skip ? (uint64_t)r - skip : 0;
        if (n > req->len)
            n = req->len;
        memcpy(req->buf, f->buf + skip, n);
        req->result = (int64_t)n;
    }
    cl->count.fills++;
    fill_put(cl->cache, f);
    return req;
}

/* Send req down as a read of whole blocks first..last; 1 when it cannot be
 * widened (the caller sends it as it is), else what the layer below said. */
static int fill_submit(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                       struct xd_req *req, uint64_t first, uint64_t last)
{
    struct cache *c = cl->cache;
    uint64_t len = (last - first + 1) << c->shift;
    struct cache_fill *f = len <= CACHE_FILL_BYTES ? fill_get(c) : NULL;
    if (!f)
        return 1;
    f->sub = (struct xd_req){.op = XD_OP_READ, .file = req->file, .buf = f->buf, .len = len,
                             .off = first << c->shift};
    xd_req_set_flags(&f->sub, xd_req_core(req)->flags);
    *req_seq(cl, &f->sub) = *req_seq(cl, req);
    f->parent = req;
    f->h = h;
    int rc = xd_layer_submit(layer->lower, &f->sub);
    if (rc == XD_DONE)
        fill_done(cl, f);
    else if (rc < 0) /* -EBUSY: the caller's request comes again */
        fill_put(c, f);
    return rc;
}

static int cache_read(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                      struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift, b;
    for (b = first; b <= last && cache_copy_out(c, key, b, req); b++)
        ;
    if (b > last) {
        cl->count.hits += last - first + 1;
        cl->count.hit_bytes += req->len;
        req->result = (int64_t)req->len;
        return XD_DONE;
    }
    cl->count.misses += last - first + 1;
    /* what goes down must not read below a block newer in the cache */
    if (atomic_load(&c->dirty))
        for (b = first; b <= last; b++)
            if (cache_is_dirty(c, key, b))
                cache_flush_block(cl, h, b);
    *req_seq(cl, req) = atomic_load(&c->seq);
    int rc = 1;
    if (!block_whole(c, req, first) || !block_whole(c, req, last))
        rc = fill_submit(layer, cl, h, req, first, last);
    if (rc == 1 && (rc = xd_layer_submit(layer->lower, req)) == XD_DONE)
        cache_read_done(cl, h, req);
    else if (rc == -EBUSY) /* it comes again */
        cl->count.misses -= last - first + 1;
    return rc;
}

/* --- writes going down ------------------------------------------------------- */

/* Before a write or trim at sequence seq goes down: block b leaves the
 * cache. A dirty block it overwrites whole is dropped; one it covers only
 * partly is written back first (its other bytes are newer than below). */
static void cache_begin_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                              uint64_t b, uint64_t seq)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, hash = cache_hash(key, b);
    struct cache_shard *s = shard_of(c, hash);
    bool whole = block_whole(c, req, b);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        uint32_t id = shard_find(s, hash, key, b);
        if (id == NIL)
            break;
        struct cache_entry *e = &s->entries[id];
        if (e->writeback) {
            pthread_cond_wait(&s->written, &s->lock);
            continue;
        }
        if (e->state == ENTRY_DIRTY && !whole) {
            pthread_mutex_unlock(&s->lock);
            cache_flush_block(cl, h, b);
            pthread_mutex_lock(&s->lock);
            if ((id = shard_find(s, hash, key, b)) != NIL && s->entries[id].state == ENTRY_DIRTY)
                break; /* written again meanwhile: a concurrent write, keep it */
            continue;
        }
        if (e->state == ENTRY_DIRTY) {
            dirty_unlink(s, id);
            atomic_fetch_sub(&c->dirty, 1);
            atomic_fetch_sub(&h->ident->dirty, 1);
            e->state = ENTRY_CLEAN;
        }
        shard_remove(s, id);
        break;
    }
    stamp_raise(stamp_of(s, hash), seq);
    pthread_mutex_unlock(&s->lock);
}

/* A write or trim that went down at sequence *req_seq(cl, req) completed:
 * its whole blocks take its data if no other write touched them since,
 * anything else it touched leaves. */
static void cache_end_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, done_seq = cache_next_seq(c);
    bool ok = req->op == XD_OP_WRITE && req->result == (int64_t)req->len;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    for (uint64_t b = first; b <= last; b++) {
        uint64_t hash = cache_hash(key, b);
        struct cache_shard *s = shard_of(c, hash);
        uint64_t *stamp = stamp_of(s, hash);
        pthread_mutex_lock(&s->lock);
        uint32_t id = shard_find(s, hash, key, b);
        if (ok && *stamp == *req_seq(cl, req) && block_whole(c, req, b)) {
            if (id == NIL && (id = shard_alloc(s)) != NIL) {
                shard_link(c, s, id, hash, key, b);
                cl->count.inserts++;
            } else if (id != NIL && s->entries[id].state == ENTRY_CLEAN) {
                xd_cp_access(&s->policy, id);
                s->entries[id].born_s = c->ttl_s ? cache_now_s(c) : 0;
            }
            if (id != NIL && s->entries[id].state == ENTRY_CLEAN)
                memcpy(s->data + (size_t)id * c->bs, req_at(c, req, b, 0), c->bs);
        } else if (id != NIL && s->entries[id].state == ENTRY_CLEAN) {
            shard_remove(s, id);
        }
        stamp_raise(stamp, done_seq);
        pthread_mutex_unlock(&s->lock);
    }
}

static int cache_write_down(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                            struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t seq = cache_next_seq(c);
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    for (uint64_t b = first; b <= last; b++)
        cache_begin_write(cl, h, req, b, seq);
    *req_seq(cl, req) = seq;
    int rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE)
        cache_end_write(cl, h, req);
    if (rc != -EBUSY && req->op == XD_OP_WRITE)
        cl->count.through++;
    return rc;
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

static bool cache_present(struct cache *c, uint64_t key, uint64_t b)
{
    uint64_t h = cache_hash(key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_get(c, s, h, key, b);
    pthread_mutex_unlock(&s->lock);
    return id != NIL;
}

/* Copy req's part of block b into the cache as dirty; false if the block
 * is partly written and not cached, or no entry is free. */
static bool cache_absorb_block(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                               uint64_t b, uint64_t seq)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, hash = cache_hash(key, b), lo, hi;
    struct cache_shard *s = shard_of(c, hash);
    block_span(c, req, b, &lo, &hi);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_get(c, s, hash, key, b);
    if (id == NIL && (lo || hi != c->bs || (id = shard_alloc(s)) == NIL)) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    struct cache_entry *e = &s->entries[id];
    if (e->state == ENTRY_FREE) {
        shard_link(c, s, id, hash, key, b);
        cl->count.inserts++;
    } else {
        xd_cp_access(&s->policy, id);
    }
    memcpy(s->data + (size_t)id * c->bs + lo, req_at(c, req, b, lo), hi - lo);
    if (e->state == ENTRY_CLEAN) {
        e->state = ENTRY_DIRTY;
        e->dirty_ms = cache_now_ms(c);
        dirty_append(s, id);
        atomic_fetch_add(&c->dirty, 1);
        atomic_fetch_add(&h->ident->dirty, 1);
    }
    e->version++;
    if (c->ttl_s)
        e->born_s = cache_now_s(c);
    stamp_raise(stamp_of(s, hash), seq);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* Write-back: the whole write lands in the cache, or nothing is claimed
 * (blocks already copied hold this write's data, which the write going
 * down writes again). */
static bool cache_absorb(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    uint64_t n = last - first + 1;
    if (!h->writable || n > cache_dirty_max(c) / 2)
        return false;
    if ((!block_whole(c, req, first) && !cache_present(c, h->ident->key, first)) ||
        (!block_whole(c, req, last) && !cache_present(c, h->ident->key, last)))
        return false;
    if (!cache_dirty_room(cl, (unsigned)n))
        return false;
    uint64_t seq = cache_next_seq(c);
    for (uint64_t b = first; b <= last; b++)
        if (!cache_absorb_block(cl, h, req, b, seq))
            return false;
    unsigned dirty = atomic_load(&c->dirty), background = cache_dirty_background(c);
    if (dirty >= background && dirty - n < background)
        cache_kick_flusher(c);
    cl->count.absorbed++;
    return true;
}

/* --- the data path ----------------------------------------------------------- */

static int cache_sync(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
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

static int cache_submit_locked(struct xd_layer *layer, struct cache_layer *cl, struct xd_req *req)
{
    struct cache_handle *h = req->file->priv[layer->level];
    if (cl->trace && req->op <= XD_OP_TRIM)
        trace_req(cl, h, req, cl->cache ? cl->cache->shift : (uint32_t)__builtin_ctzll((uint64_t)layer->dev->cfg->cache_block_size));
    if (!cl->cache)
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
        if (!req->len || req->op >= XD_OP_FSYNC)
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

static void cache_free(struct cache *c)
{
    if (!c)
        return;
    if (c->flusher_running) {
        pthread_mutex_lock(&c->flusher_lock);
        c->flusher_stop = true;
        pthread_cond_signal(&c->flusher_wake);
        pthread_mutex_unlock(&c->flusher_lock);
        pthread_join(c->flusher, NULL);
    }
    for (uint32_t i = 0; c->shards && i < c->nshards; i++) {
        struct cache_shard *s = &c->shards[i];
        xd_cp_destroy(&s->policy);
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->written);
    }
    free(c->shards);
    while (c->idents) {
        struct cache_ident *next = c->idents->next;
        free(c->idents);
        c->idents = next;
    }
    if (c->arena)
        munmap(c->arena, c->arena_len);
    if (c->entries)
        munmap(c->entries, c->entries_len);
    free(c->flusher_buf);
    free(c->fill_arena);
    pthread_mutex_destroy(&c->fill_lock);
    pthread_mutex_destroy(&c->files_lock);
    pthread_mutex_destroy(&c->wb_lock);
    pthread_cond_destroy(&c->wb_done);
    pthread_mutex_destroy(&c->flusher_lock);
    pthread_cond_destroy(&c->flusher_wake);
    free(c);
}

static void *cache_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Huge pages where the kernel offers them: hits copy from random blocks,
 * and 4 KiB pages would make most of them a TLB miss. Only whole 2 MiB
 * pages inside the part of a shard's region in use are advised, so resident
 * memory stays within cache_size (a huge page past the end would add up to
 * 2 MiB per shard). */
static void advise_huge(char *start, size_t used)
{
    const uintptr_t huge = 2u << 20;
    uintptr_t lo = ((uintptr_t)start + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)start + used) & ~(huge - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

static void shard_advise_huge(const struct cache_shard *s)
{
    advise_huge(s->data, (size_t)s->per * s->bs);
    advise_huge((char *)s->entries, (size_t)s->per * sizeof(struct cache_entry));
}

static int cache_shard_init(struct cache *c, uint32_t i)
{
    struct cache_shard *s = &c->shards[i];
    uint32_t buckets = 1;
    while (buckets < c->nblocks / c->nshards)
        buckets <<= 1;
    s->per = c->nblocks / c->nshards;
    s->per_max = c->per_max;
    s->bs = c->bs;
    s->entries = c->entries + (size_t)i * s->per_max;
    s->data = c->arena + (size_t)i * s->per_max * c->bs;
    s->bucket_mask = buckets - 1;
    s->buckets = calloc(buckets, sizeof(*s->buckets));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->written, NULL);
    shard_advise_huge(s);
    struct xd_cp_owner owner = {.evictable = entry_evictable, .hash = entry_hash, .ctx = s};
    if (!s->buckets || xd_cp_init(&s->policy, c->policy, s->per, &s->entries[0].node,
                                  sizeof(struct cache_entry), &owner))
        return -ENOMEM;
    return 0;
}

/* Address space for the largest cache_size (the schema's bound), so a live
 * change can grow the cache in place: MAP_NORESERVE pages cost nothing
 * until touched, and only blocks in use are touched. Where the kernel will
 * not reserve that much (strict overcommit), the cache is its first size. */
static void cache_reserve(struct cache *c)
{
    uint64_t ceiling = (uint64_t)CACHE_CEILING_BYTES / c->bs / c->nshards;
    uint32_t first = c->nblocks / c->nshards;
    c->per_max = ceiling > first ? (uint32_t)(ceiling < UINT32_MAX / 2 ? ceiling : UINT32_MAX / 2) : first;
    for (int attempt = 0; attempt < 2; attempt++) {
        c->arena_len = (size_t)c->nshards * c->per_max * c->bs;
        c->entries_len = (size_t)c->nshards * c->per_max * sizeof(struct cache_entry);
        c->arena = cache_map(c->arena_len);
        c->entries = cache_map(c->entries_len);
        if (c->arena && c->entries)
            return;
        if (c->arena)
            munmap(c->arena, c->arena_len);
        if (c->entries)
            munmap(c->entries, c->entries_len);
        c->arena = NULL;
        c->entries = NULL;
        c->per_max = first;
    }
}

static int cache_new(struct cache **out, const struct xd_config *cfg, char *err, size_t errlen)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->pid = getpid();
    c->bs = (uint32_t)cfg->cache_block_size;
    c->shift = (uint32_t)__builtin_ctz(c->bs);
    c->size = (uint64_t)cfg->cache_size;
    c->policy = cfg->cache_policy;
    c->ttl_s = (uint32_t)cfg->cache_ttl;
    c->t0_ns = coarse_ns() - 1000000000ull; /* born_s 0 means "long ago" only without a TTL */
    uint64_t blocks = c->size / c->bs;
    c->nshards = 1;
    while (c->nshards < CACHE_MAX_SHARDS && blocks / (c->nshards * 2) >= CACHE_SHARD_MIN_BLOCKS)
        c->nshards *= 2;
    c->nblocks = (uint32_t)(blocks / c->nshards * c->nshards);
    c->run_blocks = c->bs >= CACHE_RUN_BYTES ? 1 : CACHE_RUN_BYTES / c->bs;
    c->dirty_max = c->nblocks / 2;
    c->dirty_background = c->nblocks / 4;
    pthread_mutex_init(&c->files_lock, NULL);
    pthread_mutex_init(&c->wb_lock, NULL);
    pthread_cond_init(&c->wb_done, NULL);
    pthread_mutex_init(&c->flusher_lock, NULL);
    pthread_mutex_init(&c->fill_lock, NULL);
    pthread_cond_init(&c->flusher_wake, NULL);
    cache_reserve(c);
    c->shards = aligned_alloc(64, c->nshards * sizeof(*c->shards));
    int rc = c->arena && c->entries && c->shards ? 0 : -ENOMEM;
    if (c->shards)
        memset(c->shards, 0, c->nshards * sizeof(*c->shards));
    for (uint32_t i = 0; !rc && c->shards && i < c->nshards; i++)
        rc = cache_shard_init(c, i);
    if (rc) {
        xd_errf(err, errlen, "cache_size=%" PRIu64 ": cannot reserve the cache's memory", c->size);
        cache_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void *cache_flusher(void *arg);

static int cache_start_flusher(struct cache *c, char *err, size_t errlen)
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

/* The process's cache was made by the first device; the others must ask
 * for the same one (a second cache would break the memory bound). */
static int cache_check_same(const struct cache *c, const struct xd_config *cfg, char *err,
                            size_t errlen)
{
    if ((uint64_t)cfg->cache_size == c->size && (uint32_t)cfg->cache_block_size == c->bs &&
        cfg->cache_policy == c->policy && (uint32_t)cfg->cache_ttl == c->ttl_s)
        return 0;
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
    if (c && c->pid != getpid())
        c = cache_shared = NULL; /* inherited across fork: the parent's, not ours */
    if (c)
        rc = cache_check_same(c, cfg, err, errlen);
    else if (!(rc = cache_new(&c, cfg, err, errlen)))
        cache_shared = c;
    if (!rc && cl->writeback)
        rc = cache_start_flusher(c, err, errlen);
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

/* --- files ------------------------------------------------------------------------ */

static uint64_t ident_trace_id(dev_t dev, ino_t ino, unsigned view)
{
    return cache_hash((uint64_t)dev ^ ((uint64_t)view << 63), (uint64_t)ino);
}

/* Blocks of ident not dirty and not being written back leave the cache. */
static void cache_drop_clean(struct cache *c, uint64_t key)
{
    for (uint32_t i = 0; i < c->nshards; i++) {
        struct cache_shard *s = &c->shards[i];
        pthread_mutex_lock(&s->lock);
        for (uint32_t id = 0; id < s->fresh; id++) {
            const struct cache_entry *e = &s->entries[id];
            if (e->state == ENTRY_CLEAN && !e->writeback && e->file == key)
                shard_remove(s, id);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

static bool ident_changed(const struct cache_ident *ident, const struct stat *st)
{
    return ident->closed_seen &&
           (st->st_size != ident->size || st->st_mtim.tv_sec != ident->mtime.tv_sec ||
            st->st_mtim.tv_nsec != ident->mtime.tv_nsec || st->st_ctim.tv_sec != ident->ctime.tv_sec ||
            st->st_ctim.tv_nsec != ident->ctime.tv_nsec);
}

/* The ident of the file st describes, made on first sight; under files_lock. */
static struct cache_ident *cache_ident_get(struct cache *c, const struct stat *st, unsigned view)
{
    unsigned bucket = (unsigned)(ident_trace_id(st->st_dev, st->st_ino, view) % CACHE_IDENT_BUCKETS);
    struct cache_ident *ident;
    for (ident = c->ident_hash[bucket]; ident; ident = ident->hnext)
        if (ident->dev == st->st_dev && ident->ino == st->st_ino && ident->view == view)
            break;
    if (!ident) {
        if (!(ident = calloc(1, sizeof(*ident))))
            return NULL;
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
    return ident;
}

/* What identifies the file: what the driver below opened (tmpfs's copy,
 * the container, the block device), or the caller's path for chains whose
 * bottom has no descriptor of its own to ask (the hybrid type's tiers). */
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

static int cache_attach_file(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                             const struct stat *st, unsigned view)
{
    struct cache *c = cl->cache;
    pthread_mutex_lock(&c->files_lock);
    h->ident = cache_ident_get(c, st, view);
    if (h->ident) {
        h->ident->opens++;
        h->next_in_ident = h->ident->handles;
        h->ident->handles = h;
    }
    pthread_mutex_unlock(&c->files_lock);
    return h->ident ? 0 : -ENOMEM;
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
    if (cache_stat(layer, file, &st, &view)) { /* cannot tell who it is: a file of its own */
        static atomic_uint_fast64_t anonymous;
        memset(&st, 0, sizeof(st));
        st.st_ino = (ino_t)atomic_fetch_add(&anonymous, 1) + 1;
    }
    h->owner = cl;
    h->file = file;
    h->writable = !(flags & XD_OPEN_READONLY);
    h->trace_id = ident_trace_id(st.st_dev, st.st_ino, view);
    if (cl->cache && (rc = cache_attach_file(layer, cl, h, &st, view))) {
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
    h->ident->opens--;
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

/* Close: the file's dirty blocks are written back first, whoever wrote
 * them (no dirty block may outlive the last writer's handle). */
static void cache_file_close_locked(struct xd_layer *layer, struct cache_layer *cl, struct xd_file *file)
{
    struct cache_handle *h = file->priv[layer->level];
    struct cache_ident *ident = h ? h->ident : NULL;
    if (ident && h->writable && (atomic_load(&ident->dirty) || atomic_load(&ident->writeback)))
        cache_flush_ident(h, cache_run_buf(cl), 0, UINT64_MAX, true);
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

/* --- control and stats ------------------------------------------------------ */

static void cache_stats_json(const struct cache_layer *cl, struct xd_json *j)
{
    const struct cache *c = cl->cache;
    uint64_t resident = 0, evictions = 0, expired = 0, no_victim = 0, ghost_hits = 0, promotions = 0;
    xd_json_object_begin(j, "cache");
    xd_json_bool(j, "enabled", c != NULL);
    if (c) {
        for (uint32_t i = 0; i < c->nshards; i++) {
            struct cache_shard *s = &c->shards[i];
            pthread_mutex_lock(&s->lock);
            resident += s->resident;
            evictions += s->count.evictions;
            expired += s->count.expired;
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

/* --- live resize (reload hook) ---------------------------------------------- */

/* A bigger hash table for a shard that grew, so chains stay short: every
 * resident entry is linked again; free entries keep their free-list links. */
static int shard_rehash(struct cache_shard *s, uint32_t want)
{
    uint32_t buckets = 1;
    while (buckets < want)
        buckets <<= 1;
    if (buckets <= s->bucket_mask + 1)
        return 0;
    uint32_t *table = calloc(buckets, sizeof(*table));
    if (!table)
        return -ENOMEM;
    for (uint32_t id = 0; id < s->fresh; id++) {
        struct cache_entry *e = &s->entries[id];
        if (e->state == ENTRY_FREE)
            continue;
        uint32_t *bucket = &table[(cache_hash(e->file, e->block) >> 16) & (buckets - 1)];
        e->hnext = *bucket;
        *bucket = id + 1;
    }
    free(s->buckets);
    s->buckets = table;
    s->bucket_mask = buckets - 1;
    return 0;
}

/* Evict down to a shard's capacity after it shrank, and give the freed
 * blocks' pages back, so resident memory follows cache_size down. Dirty
 * blocks cannot go yet: allocations keep evicting until they are clean. */
static void shard_trim(const struct cache *c, struct cache_shard *s)
{
    while (s->resident > s->per) {
        uint32_t id = xd_cp_evict(&s->policy);
        if (id == XD_CP_NONE)
            break;
        shard_unhash(s, id);
        s->entries[id].state = ENTRY_FREE;
        s->entries[id].hnext = s->free_head;
        s->free_head = id + 1;
        s->resident--;
        s->count.evictions++;
        if (c->bs >= 4096) /* a block owns its pages */
            madvise(s->data + (size_t)id * c->bs, c->bs, MADV_DONTNEED);
    }
}

static int shard_resize(const struct cache *c, struct cache_shard *s, uint32_t per)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (per > s->per)
        rc = shard_rehash(s, per);
    if (!rc)
        rc = xd_cp_set_capacity(&s->policy, per);
    if (!rc) {
        s->per = per;
        shard_trim(c, s);
        shard_advise_huge(s);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* cache_size changed live: every shard takes its share of the new size, in
 * place (the address space was reserved at creation). The block size,
 * policy and shard count stay. Any size the schema allows fits, unless the
 * reservation fell back to the first size (strict overcommit): -ENOSPC. */
static int cache_resize(struct cache *c, uint64_t size)
{
    uint64_t per = size / c->bs / c->nshards;
    if (per < CACHE_MIN_BLOCKS_PER_SHARD || per > c->per_max)
        return -ENOSPC;
    for (uint32_t i = 0; i < c->nshards; i++) {
        int rc = shard_resize(c, &c->shards[i], (uint32_t)per);
        if (rc)
            return rc;
    }
    uint32_t nblocks = (uint32_t)(per * c->nshards);
    c->size = size;
    atomic_store_explicit(&c->nblocks, nblocks, memory_order_relaxed);
    atomic_store_explicit(&c->dirty_max, nblocks / 2, memory_order_relaxed);
    atomic_store_explicit(&c->dirty_background, nblocks / 4, memory_order_relaxed);
    return 0;
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

static void cache_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    struct cache_layer *cl = layer->priv;
    cache_enter(cl);
    cache_stats_json(cl, j);
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
    if (cl->cache)
        cache_detach(cl->cache);
    if (cl->trace) {
        trace_flush(cl);
        free(cl->trace);
    }
    if (cl->trace_fd >= 0)
        close(cl->trace_fd);
    free(cl->run_buf);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

static int cache_layer_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct cache_layer *cl = calloc(1, sizeof(*cl));
    int rc = 0;
    if (!cl)
        return -ENOMEM;
    cl->layer = layer;
    cl->trace_fd = -1;
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
    .reload = cache_reload_hook,
    .stats_json = cache_stats_hook,
};
