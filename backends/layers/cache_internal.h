/* cache_internal.h - what the cache layer's files (cache.c, cache_*.c)
 * share: the structs, the constants they are sized by, the small helpers
 * each file inlines, and the functions one file calls in another. Private to
 * the layer, never installed.
 *
 * The functions are hidden: the library exports only xd_ names (DESIGN.md),
 * and a hidden function is called directly, not through the PLT, and may be
 * inlined within its own file.
 */
#ifndef XD_CACHE_INTERNAL_H
#define XD_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "../core/cachepolicy.h"
#include "../core/cachesim.h"
#include "../core/hash.h"
#include "../core/turns.h"
#include "../core/xd_internal.h"
#include "cache_shards.h"

#define CACHE_STAMPS 1024           /* write stamps per shard, a power of two */
#define CACHE_RUN_BYTES (256 * 1024) /* most one write-back request carries (or one block) */
/* A write-through write this long goes around the cache: the blocks it
 * covers are dropped, none is stored (cache_end_write says why). */
#define CACHE_WRITE_AROUND_BYTES (128 * 1024)
#define CACHE_IDENT_BUCKETS 256
#define CACHE_GENS_IDLE 32 /* closed files that keep their generations (and blocks) */
#define CACHE_FILL_BYTES (256 * 1024) /* most a widened read carries */
#define CACHE_FILL_SLOTS 8            /* widened reads in flight per cache */
/* A device counts its hits in a shard's frequency sketch this many at a
 * time, when the shard's lock is free; at twice this many it waits for it. */
#define CACHE_SEEN_BATCH 16

/* The memory bound's constants (see cache_store.c's header comment). */
#define CACHE_OVERHEAD_PER_BLOCK 96
#define CACHE_OVERHEAD_FIXED \
    (CACHE_MAX_SHARDS * (sizeof(struct cache_shard) + 64) + 2 * CACHE_RUN_BYTES + \
     CACHE_FILL_SLOTS * CACHE_FILL_BYTES)

/* The write generations shared with other processes (cache_gens.c). */
#define GENS_UNIT_SHIFT 12     /* a counter pair per 4 KiB of the file */
#define GENS_SLOTS (1u << 20) /* pairs per file (8 MiB, touched as used) */
#define GENS_HEAD 4096        /* before them: the write-back words (cache_gens.c) */

#define NIL UINT32_MAX
enum { ENTRY_FREE, ENTRY_CLEAN, ENTRY_DIRTY };

/* 56 bytes: key, links and the policy's node in one cache line.
 *
 * Hits read entries without the shard's lock (cache_store.c, "Hits"):
 * file, block, hnext, state, born_s and seq are read that way, so writers
 * (all under the lock) store them with STORE, and change the key, state or
 * data only between entry_change_begin and entry_change_end. */
struct cache_entry {
    uint64_t file, block;
    uint32_t hnext;        /* next in its hash chain or the free list, id + 1 (0 ends) */
    uint32_t dprev, dnext; /* the shard's dirty list, id + 1 */
    uint32_t born_s;       /* filled at, for cache_ttl */
    union {
        uint32_t dirty_ms; /* dirty: since */
        /* clean: its generation (cache_gens.c), served while it is still
         * the file's; changed only inside a change of the entry, as its
         * state, so a hit reads the one that goes with the state it saw */
        uint32_t gen;
    };
    /* Odd while its key, state or data change; never reset, so a reader
     * that saw the same even value before and after its copy copied one
     * version. Write-back notes it as the version it took: a write that
     * reached the block meanwhile changed it. */
    uint32_t seq;
    struct xd_cp_node node;
    uint8_t state;
    uint8_t writeback; /* a write-back of it is under way */
};

struct cache_shard {
    /* What every hit reads, without the lock: set at creation (bucket_mask
     * also by a resize), so its line stays shared by all cores, apart from
     * the lock's and the counters' lines that inserts and drains write. */
    struct cache_entry *entries; /* its own, by local id */
    char *data;                  /* id * block size */
    uint32_t *buckets; /* id + 1; in the cache's bucket mapping, never freed while the cache lives */
    uint32_t bucket_mask;
    uint32_t bs;
    uint32_t per_max;            /* ids reserved (room to grow live) */
    pthread_mutex_t lock __attribute__((aligned(64)));
    pthread_cond_t written; /* a write-back of one of its blocks ended */
    uint32_t per, fresh;         /* entries allowed resident; never used yet from fresh on */
    uint32_t free_head;          /* id + 1 */
    uint32_t dirty_head, dirty_tail; /* id + 1, oldest first */
    uint32_t resident;
    struct xd_cp policy;
    struct {
        uint64_t evictions, expired, stale, no_victim;
    } count;
    uint64_t stamps[CACHE_STAMPS];
} __attribute__((aligned(64)));

struct cache_handle;

/* A file's write generations: per 4 KiB unit, writes started and ended by
 * every process's cache (cache_gens.c). */
struct gens_slot {
    uint32_t started, ended;
};

struct cache_gens {
    struct gens_slot *slot; /* GENS_SLOTS of them; NULL: none (the file is not cached) */
    void *map;              /* the table: the words, then the slots */
    int fd;                 /* the shared object's, holding this process's lock; -1: private */
    ino_t ino;
    char name[80];
    /* Write-back only while this process is the file's only user (solo.on,
     * set at open) and nobody asked to share (shared; solo again once the
     * others have gone, cache_regain_file): the words
     * are `wanted` and the dirty blocks of the file held in write-back
     * caches (solo_out), core/turns.c's protocol (cache_gens.c). */
    struct xd_turns_solo solo;
    atomic_bool shared;
};

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
    /* Its generations, from its first open (without them the file is not
     * cached: gens_why says why) until the cache is freed or too many
     * closed files hold theirs (cache_gens_idle: closed_at orders them). */
    struct cache_gens gens;
    /* cache_share_file and cache_regain_file, one at a time: a share's
     * letting go of the solo byte must not land after a regain took it */
    pthread_mutex_t solo_lock;
    atomic_uint regain_turns; /* writes while shared: every XD_TURNS_REGAIN_EVERY-th tries */
    uint64_t closed_at;
    char gens_why[160];
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
    /* Devices; changed under cache_global, read without it by any device's
     * stats (cache_stats_json), so atomic. */
    atomic_uint users;
    uint64_t size; /* under cache_global */
    /* The INI file the first device took cache_size from (NULL: an option
     * or the default): a later device reading another cache_size from the
     * same file saw that file change, so it resizes rather than refuses. */
    char *size_file;
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
    uint32_t *bucket_arena; /* each shard's hash table, room for per_max entries' worth */
    size_t bucket_arena_len;
    uint32_t buckets_max;   /* buckets reserved per shard */
    struct cache_shard *shards;
    atomic_uint_fast64_t seq;
    atomic_uint dirty;
    atomic_uint_fast64_t flushes, flushed_bytes, flush_errors;
    pthread_mutex_t files_lock;
    struct cache_ident *idents;
    struct cache_ident *ident_hash[CACHE_IDENT_BUCKETS];
    uint64_t next_key;
    unsigned gens_idle; /* idents closed here still holding generations, under files_lock */
    uint64_t closes;
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

/* Hits of one device in one shard not yet counted in its sketch (by key hash). */
struct cache_seen {
    uint32_t n;
    uint64_t hash[2 * CACHE_SEEN_BATCH];
};

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
    struct cache_seen *seen; /* one per shard (S3-FIFO), this device's thread only */
    bool writeback;
    pthread_mutex_t lock; /* held around calls into the chain below, with write-back */
    struct cache_handle *handles;
    char *run_buf; /* write-back requests of this device's thread */
    struct trace_shared *trace; /* trace=FILE: the process's buffer for it (cache_trace.c), or NULL */
    uint64_t trace_records, trace_lost; /* records this device traced; records of failed writes it made */
    struct {
        uint64_t hits, misses, hit_bytes, inserts, refused, absorbed, through, around,
            flush_waits, fills, solo_regained;
    } count;
    char notice[256]; /* the notice hook's one-time line, or empty */
    char error[XD_ERRLEN]; /* a close whose dirty blocks were lost, for take_error */
};

/* The cache's per-request state (its slice of xd_req.xd_private), for its
 * completion to tell whether another write touched its blocks meanwhile:
 * the process's write sequence when it went down (its low 31 bits: the
 * rest is the sequence's now, req_seq), and its blocks' generation then
 * (cache_gens.c), with whether they could be stored at all (no write of
 * another was out on them). 8 bytes: a chain of every layer must fit in
 * xd_req's private words. */
struct cache_req {
    uint32_t seq_lo : 31;
    uint32_t storable : 1;
    uint32_t gen;
};

/* --- small helpers (inlined where used) ------------------------------------ */

#if defined(__SANITIZE_THREAD__)
#define CACHE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CACHE_TSAN 1
#endif
#endif

/* Fields that hits read without the shard's lock: atomic loads and stores
 * (plain ones would be a data race, and TSan would say so), relaxed, with
 * the entry's seq and two fences ordering them (cache_store.c, "Hits").
 * TSan does not model fences, so its builds make every such load acquire
 * and every store release instead, which orders at least as much. */
#ifdef CACHE_TSAN
#define CACHE_MO_LOAD __ATOMIC_ACQUIRE
#define CACHE_MO_STORE __ATOMIC_RELEASE
#else
#define CACHE_MO_LOAD __ATOMIC_RELAXED
#define CACHE_MO_STORE __ATOMIC_RELAXED
#endif
#define LOAD(x) __atomic_load_n(&(x), CACHE_MO_LOAD)
#define STORE(x, v) __atomic_store_n(&(x), (v), CACHE_MO_STORE)

/* A reader's copy before its second look at seq; a writer's odd seq before
 * its changes. */
static inline void seq_fence_acquire(void)
{
#ifndef CACHE_TSAN
    atomic_thread_fence(memory_order_acquire);
#endif
}

static inline void seq_fence_release(void)
{
#ifndef CACHE_TSAN
    atomic_thread_fence(memory_order_release);
#endif
}

/* Block data that an unlocked hit may be copying at the same time. The
 * entry's seq makes a torn copy be thrown away, so memcpy is what runs;
 * under TSan both sides copy with byte-wise atomics instead, so that the
 * sanitizer checks the protocol around the copy rather than report the
 * copy itself. */
static inline void block_store(char *dst, const char *src, size_t n)
{
#ifdef CACHE_TSAN
    for (size_t i = 0; i < n; i++)
        __atomic_store_n(&dst[i], src[i], CACHE_MO_STORE);
#else
    memcpy(dst, src, n);
#endif
}

static inline void block_load(char *dst, const char *src, size_t n)
{
#ifdef CACHE_TSAN
    for (size_t i = 0; i < n; i++)
        dst[i] = __atomic_load_n(&src[i], CACHE_MO_LOAD);
#else
    memcpy(dst, src, n);
#endif
}

/* Under the shard's lock, around a change of an entry's key, state or
 * data: readers without the lock see seq odd, or changed, and retry. */
static inline void entry_change_begin(struct cache_entry *e)
{
    STORE(e->seq, e->seq + 1);
    seq_fence_release();
}

static inline void entry_change_end(struct cache_entry *e)
{
    __atomic_store_n(&e->seq, e->seq + 1, __ATOMIC_RELEASE); /* the changes before seq */
}

static inline struct cache_req *req_state(const struct cache_layer *cl, const struct xd_req *req)
{
    return xd_req_ctx(cl->layer, req);
}

static inline void req_set_seq(const struct cache_layer *cl, const struct xd_req *req, uint64_t seq)
{
    req_state(cl, req)->seq_lo = (uint32_t)(seq & 0x7fffffffu);
}

/* The sequence req noted: the newest value of the process's sequence with
 * its low 31 bits (a request is never out for 2^31 writes). */
static inline uint64_t req_seq(const struct cache_layer *cl, const struct xd_req *req)
{
    uint64_t now = atomic_load(&cl->cache->seq);
    return now - ((now - req_state(cl, req)->seq_lo) & 0x7fffffffu);
}

/* Does req, a write-through write, go around the cache (CACHE_WRITE_AROUND_BYTES)? */
static inline bool cache_write_goes_around(const struct cache_layer *cl, const struct xd_req *req)
{
    return req->op == XD_OP_WRITE && !cl->writeback && req->len >= CACHE_WRITE_AROUND_BYTES;
}

/* --- generations (cache_gens.c) ------------------------------------------- */

static inline struct gens_slot *gens_at(const struct cache_gens *g, uint64_t unit)
{
    return &g->slot[unit & (GENS_SLOTS - 1)];
}

/* The units blocks first..last cover: [*u0, *u1]. */
static inline void gens_units(const struct cache *c, uint64_t first, uint64_t last, uint64_t *u0,
                              uint64_t *u1)
{
    *u0 = (first << c->shift) >> GENS_UNIT_SHIFT;
    *u1 = (((last + 1) << c->shift) - 1) >> GENS_UNIT_SHIFT;
}

/* Block b's generation now: its units' writes started, added. A clean
 * block is served while this is the generation it was stored with. */
static inline uint32_t gens_of_block(const struct cache *c, const struct cache_gens *g, uint64_t b)
{
    uint64_t u0, u1;
    uint32_t sum = 0;
    gens_units(c, b, b, &u0, &u1);
    for (uint64_t u = u0; u <= u1; u++)
        sum += __atomic_load_n(&gens_at(g, u)->started, __ATOMIC_ACQUIRE);
    return sum;
}

/* ident's dirty blocks changed by delta: the cache's count, the file's,
 * and the one other processes see (cache_gens.c: a newcomer waits for it
 * to be 0). */
static inline void ident_dirty_add(struct cache *c, struct cache_ident *ident, int delta)
{
    atomic_fetch_add(&c->dirty, (unsigned)delta);
    atomic_fetch_add(&ident->dirty, (unsigned)delta);
    if (ident->gens.solo.solo_out)
        __atomic_add_fetch(ident->gens.solo.solo_out, (uint32_t)delta, __ATOMIC_SEQ_CST);
}

static inline uint32_t shard_index(const struct cache *c, uint64_t h)
{
    return (uint32_t)(h & (c->nshards - 1));
}

static inline struct cache_shard *shard_of(const struct cache *c, uint64_t h)
{
    return &c->shards[shard_index(c, h)];
}

static inline uint64_t cache_next_seq(struct cache *c)
{
    return atomic_fetch_add(&c->seq, 1) + 1;
}

static inline uint32_t cache_dirty_max(const struct cache *c)
{
    return atomic_load_explicit(&c->dirty_max, memory_order_relaxed);
}

/* The bytes of block b that req covers: [*lo, *hi) from the block's start. */
static inline void block_span(const struct cache *c, const struct xd_req *req, uint64_t b,
                              uint64_t *lo, uint64_t *hi)
{
    uint64_t start = b << c->shift, end = req->off + req->len;
    *lo = req->off > start ? req->off - start : 0;
    *hi = end < start + c->bs ? end - start : c->bs;
}

static inline bool block_whole(const struct cache *c, const struct xd_req *req, uint64_t b)
{
    uint64_t lo, hi;
    block_span(c, req, b, &lo, &hi);
    return lo == 0 && hi == c->bs;
}

static inline char *req_at(const struct cache *c, const struct xd_req *req, uint64_t b, uint64_t lo)
{
    return (char *)req->buf + ((b << c->shift) + lo - req->off);
}

#pragma GCC visibility push(hidden)

/* cache_gens.c: coherence with other processes' writes */
#define GENS_BATCH 64 /* blocks cache_gens_blocks answers for at a time */
int cache_gens_open(struct cache_gens *g, dev_t dev, ino_t ino, unsigned view, bool named,
                    char *why, size_t whylen);
void cache_gens_close(struct cache_gens *g);
void cache_gens_sweep(void);
bool cache_gens_asked(const struct cache_gens *g);
void cache_gens_share(struct cache_gens *g);
void cache_gens_read_begin(const struct cache *c, const struct cache_gens *g, uint64_t first,
                           uint64_t last, struct cache_req *r);
void cache_gens_write_begin(const struct cache *c, const struct cache_gens *g, uint64_t first,
                            uint64_t last, struct cache_req *r);
uint32_t cache_gens_write_end(const struct cache *c, const struct cache_gens *g, uint64_t first,
                              uint64_t last);
bool cache_gens_blocks(const struct cache *c, const struct cache_gens *g, uint64_t first,
                       uint64_t last, const struct cache_req *r, uint32_t moved, uint64_t b,
                       unsigned n, uint32_t *gen);

/* cache_store.c: a shard's entries and the block operations under its lock, the cache's memory */
uint32_t shard_find(struct cache_shard *s, uint64_t h, uint64_t file, uint64_t block);
void shard_unhash(struct cache_shard *s, uint32_t id);
/* Under s's lock: entry id leaves its chain for the free list. */
void shard_free(struct cache_shard *s, uint32_t id);
void shard_advise_huge(const struct cache_shard *s);
bool cache_copy_out(struct cache_layer *cl, const struct cache_ident *ident, uint64_t b,
                    struct xd_req *req);
void cache_seen_flush(struct cache_layer *cl);
bool cache_is_dirty(struct cache *c, uint64_t key, uint64_t b);
bool cache_present(struct cache *c, const struct cache_ident *ident, uint64_t b);
void cache_insert_read(struct cache_layer *cl, uint64_t key, uint64_t b, const char *src,
                       uint64_t seq, uint32_t gen);
int cache_begin_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                      uint64_t b, uint64_t seq);
void cache_end_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req);
bool cache_absorb_block(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                        uint64_t b, uint64_t seq);
bool cache_take(struct cache *c, struct cache_ident *ident, uint64_t b, char *dst,
                uint32_t *version, bool wait);
void cache_release(struct cache *c, struct cache_ident *ident, uint64_t b, uint32_t version,
                   bool ok, const uint32_t *gen);
bool shard_first_dirty(struct cache *c, struct cache_shard *s, uint64_t key,
                       uint32_t min_age_ms, uint64_t *block);
void cache_drop_clean(struct cache *c, uint64_t key);
void cache_free(struct cache *c);
int cache_new(struct cache **out, const struct xd_config *cfg, char *err, size_t errlen);

/* cache_read.c: the read path and widened fills */
void cache_read_done(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req);
struct cache_fill *fill_of(const struct cache *c, const struct xd_req *req);
struct xd_req *fill_done(struct cache_layer *cl, struct cache_fill *f);
int cache_read(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
               struct xd_req *req);

/* cache_writeback.c: write-back and the flusher */
char *cache_run_buf(struct cache_layer *cl);
int64_t cache_flush_ident(struct cache_handle *h, char *buf, uint32_t min_age_ms,
                          uint64_t max, bool wait);
int cache_flush_block(struct cache_layer *cl, struct cache_handle *h, uint64_t b);
bool cache_absorb(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req);
int cache_sync(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
               struct xd_req *req);
int cache_start_flusher(struct cache *c, char *err, size_t errlen);

/* cache_resize.c: a live cache_size change */
int cache_resize(struct cache *c, uint64_t size);

/* cache_trace.c: trace=FILE */
void trace_close(struct cache_layer *cl);
void trace_req(struct cache_layer *cl, const struct cache_handle *h, const struct xd_req *req,
               uint32_t shift);
int trace_open(struct cache_layer *cl, const struct xd_config *cfg, uint32_t bs, char *err,
               size_t errlen);

#pragma GCC visibility pop

#endif
