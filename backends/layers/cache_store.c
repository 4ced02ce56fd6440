/* cache_store.c - the cache's block store: its shards, each with its lock,
 * hash table, entries, dirty list, write stamps and eviction policy, the
 * memory they live in, and every operation on one block under its shard's
 * lock (look up, copy out, insert, remove, mark dirty, take for write-back
 * and release). The other files decide what to do with blocks; this one is
 * the only place that keeps a shard's structures consistent, so its
 * invariants can be read in one file.
 *
 * Blocks are cache_block_size bytes aligned to file offsets, keyed by the
 * file's identity (st_dev, st_ino, and whether it is the compressed type's
 * logical view) and the block's index, so devices on one file share blocks.
 * The cache is split into up to 16 shards by key hash; each has its own
 * lock, hash table, entries, eviction policy (cachepolicy.c: S3-FIFO or LRU)
 * and its share of cache_size. No lock is shared by all threads on the data
 * path, and with S3-FIFO a hit takes none (below).
 *
 * Hits (S3-FIFO) read without the shard's lock, as a seqlock reader per
 * entry: walk the hash chain with atomic loads, and on the key, note the
 * entry's seq, copy, and check that seq is the same even number after the
 * copy. Every change to an entry's key, state or data is made under the
 * lock between entry_change_begin and entry_change_end (seq odd), so a copy
 * that overlapped one is thrown away; a reader that finds nothing, a seq
 * that moved, or an expired block, does the lookup again under the lock,
 * which is the answer. Nothing a reader follows is ever unmapped while the
 * cache lives (entries, data and hash tables are in reserved mappings), and
 * a walk is bounded, so a chain relinked under it costs a retry, not a
 * wrong answer. The policy's share of a hit is its S3-FIFO hit counter
 * (xd_cp_hit, an atomic bump) and a count in the shard's frequency sketch,
 * which each device gathers and adds CACHE_SEEN_BATCH at a time under the
 * lock (trylock; it waits only at twice that), and before any decision it
 * takes in that shard (its inserts), so one device's policy sees exactly
 * what it saw when every hit locked. Why: two jobs hitting one cache both
 * took shard locks on every read, and on a shared machine a job preempted
 * while holding one stalled the other (see DESIGN.md). LRU hits reorder
 * its list, so they still lock.
 *
 * Memory: block data lives in one anonymous mapping of cache_size bytes
 * reserved at creation and touched only as blocks are filled, entries in a
 * second one, hash tables in a third (so a resize rebuilds a table in place
 * and an unlocked hit never reads a freed one); resident memory grows by at
 * most cache_size plus CACHE_OVERHEAD_PER_BLOCK bytes per block (entry,
 * policy node, ghost slots, frequency sketch counters, hash bucket) plus
 * CACHE_OVERHEAD_FIXED. The unit test measures it.
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
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache_internal.h"

#define CACHE_CEILING_BYTES (64 * XD_GIB) /* cache_size's schema maximum */

/* the entry, its ghost slots and sketch counters, and at most two hash
 * buckets (rounded up) */
_Static_assert(sizeof(struct cache_entry) + XD_CP_GHOST_BYTES_PER_ENTRY + 2 * sizeof(uint32_t) <=
                   CACHE_OVERHEAD_PER_BLOCK,
               "CACHE_OVERHEAD_PER_BLOCK is what the header comment promises");

/* --- small helpers ---------------------------------------------------------- */

static uint64_t *stamp_of(struct cache_shard *s, uint64_t h)
{
    return &s->stamps[(h >> 40) & (CACHE_STAMPS - 1)];
}

static void stamp_raise(uint64_t *stamp, uint64_t seq)
{
    if (*stamp < seq)
        *stamp = seq;
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

/* --- a shard's entries (all under its lock) ---------------------------------
 * Plain loads are fine here: every store to these fields is made under the
 * same lock. Stores to what unlocked hits read use STORE. */

uint32_t shard_find(struct cache_shard *s, uint64_t h, uint64_t file, uint64_t block)
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

void shard_unhash(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    uint32_t *link = &s->buckets[(xd_hash_mix(e->file, e->block) >> 16) & s->bucket_mask];
    while (*link != id + 1)
        link = &s->entries[*link - 1].hnext;
    STORE(*link, e->hnext);
}

/* An entry leaves its chain for the free list (removed, trimmed). */
void shard_free(struct cache_shard *s, uint32_t id)
{
    struct cache_entry *e = &s->entries[id];
    entry_change_begin(e);
    shard_unhash(s, id);
    STORE(e->state, ENTRY_FREE);
    STORE(e->hnext, s->free_head);
    entry_change_end(e);
    s->free_head = id + 1;
    s->resident--;
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
    xd_cp_remove(&s->policy, id);
    shard_free(s, id);
}

static bool entry_evictable(void *ctx, uint32_t id)
{
    const struct cache_entry *e = &((struct cache_shard *)ctx)->entries[id];
    return e->state == ENTRY_CLEAN && !e->writeback;
}

static uint64_t entry_hash(void *ctx, uint32_t id)
{
    const struct cache_entry *e = &((struct cache_shard *)ctx)->entries[id];
    return xd_hash_mix(e->file, e->block);
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
    entry_change_begin(&s->entries[id]);
    shard_unhash(s, id);
    STORE(s->entries[id].state, ENTRY_FREE);
    entry_change_end(&s->entries[id]);
    s->resident--;
    s->count.evictions++;
    return id;
}

/* A free entry takes block (file, block); the caller has begun a change
 * of it (entry_change_begin) and ends it once the data is in. */
static void shard_link(const struct cache *c, struct cache_shard *s, uint32_t id, uint64_t h,
                       uint64_t file, uint64_t block, uint32_t gen)
{
    struct cache_entry *e = &s->entries[id];
    uint32_t *bucket = &s->buckets[(h >> 16) & s->bucket_mask];
    STORE(e->file, file);
    STORE(e->block, block);
    STORE(e->state, ENTRY_CLEAN);
    STORE(e->gen, gen);
    e->writeback = 0;
    STORE(e->hnext, *bucket);
    e->dprev = e->dnext = 0;
    STORE(e->born_s, c->ttl_s ? cache_now_s(c) : 0);
    STORE(*bucket, id + 1);
    xd_cp_insert(&s->policy, id, h);
    s->resident++;
}

/* A clean block whose file has been written since it was stored (by
 * another process, or over its 4 KiB unit): cache_gens.c. */
static bool entry_stale(const struct cache *c, const struct cache_entry *e,
                        const struct cache_gens *g)
{
    return LOAD(e->state) == ENTRY_CLEAN && LOAD(e->gen) != gens_of_block(c, g, LOAD(e->block));
}

/* Look up block b of the file whose generations are g, dropping it if it
 * expired or is stale. */
static uint32_t shard_get(const struct cache *c, struct cache_shard *s, uint64_t h, uint64_t file,
                          uint64_t b, const struct cache_gens *g)
{
    uint32_t id = shard_find(s, h, file, b);
    if (id == NIL || s->entries[id].writeback)
        return id;
    if (entry_expired(c, &s->entries[id])) {
        shard_remove(s, id);
        s->count.expired++;
        return NIL;
    }
    if (entry_stale(c, &s->entries[id], g)) {
        shard_remove(s, id);
        s->count.stale++;
        return NIL;
    }
    return id;
}

/* --- hits counted in the sketch, a batch at a time ------------------------------ */

/* Under s's lock: this device's hits in s go into its sketch. */
static void seen_drain(struct cache_layer *cl, struct cache_shard *s, uint32_t si)
{
    struct cache_seen *p = cl->seen ? &cl->seen[si] : NULL;
    if (!p)
        return;
    xd_cp_seen_batch(&s->policy, p->hash, p->n);
    p->n = 0;
}

/* A hit found without the lock, to be counted in shard si's sketch: a
 * batch goes in when the lock is free, or, once twice that waits, when it
 * is (a batch is never dropped, so the sketch sees every hit). */
static void seen_add(struct cache_layer *cl, struct cache_shard *s, uint32_t si, uint64_t h)
{
    struct cache_seen *p = &cl->seen[si];
    p->hash[p->n++] = h;
    if (p->n < CACHE_SEEN_BATCH)
        return;
    if (p->n < 2 * CACHE_SEEN_BATCH ? pthread_mutex_trylock(&s->lock) : pthread_mutex_lock(&s->lock))
        return;
    seen_drain(cl, s, si);
    pthread_mutex_unlock(&s->lock);
}

/* Every hit this device has not counted yet (it is closing). */
void cache_seen_flush(struct cache_layer *cl)
{
    struct cache *c = cl->cache;
    for (uint32_t si = 0; c && cl->seen && si < c->nshards; si++) {
        if (!cl->seen[si].n)
            continue;
        pthread_mutex_lock(&c->shards[si].lock);
        seen_drain(cl, &c->shards[si], si);
        pthread_mutex_unlock(&c->shards[si].lock);
    }
}

/* Take s's lock for a change this device makes: first its hits there go
 * into the sketch, so the policy decides on what it would have seen had
 * every hit locked. */
static void shard_lock_for(struct cache_layer *cl, struct cache_shard *s, uint64_t h)
{
    pthread_mutex_lock(&s->lock);
    seen_drain(cl, s, shard_index(cl->cache, h));
}

/* --- reads ------------------------------------------------------------------ */

#define CACHE_WALK_MAX 64 /* chain links a hit follows without the lock before it locks */

/* Bytes [lo, lo + n) of block (file, block) copied to dst without s's lock
 * (see "Hits" above); its entry id in *id. false when not found, or when
 * only the lock can tell (a change under way, a chain relinked, expiry). */
static bool shard_peek(const struct cache *c, struct cache_shard *s, uint64_t h, uint64_t file,
                       uint64_t block, const struct cache_gens *g, char *dst, uint64_t lo,
                       uint64_t n, uint32_t *id)
{
    uint32_t i = LOAD(s->buckets[(h >> 16) & LOAD(s->bucket_mask)]);
    if (i && i <= s->per_max) /* as shard_find: the data's miss overlaps the entry's */
        __builtin_prefetch(s->data + (size_t)(i - 1) * c->bs + lo);
    for (unsigned steps = 0; i && i <= s->per_max && steps < CACHE_WALK_MAX; steps++) {
        struct cache_entry *e = &s->entries[i - 1];
        uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (LOAD(e->block) != block || LOAD(e->file) != file) {
            i = LOAD(e->hnext);
            continue;
        }
        if ((seq & 1) || LOAD(e->state) == ENTRY_FREE || entry_stale(c, e, g) ||
            (c->ttl_s && cache_now_s(c) - LOAD(e->born_s) >= c->ttl_s))
            return false;
        block_load(dst, s->data + (size_t)(i - 1) * c->bs + lo, n);
        seq_fence_acquire();
        if (LOAD(e->seq) != seq)
            return false;
        *id = i - 1;
        return true;
    }
    return false;
}

/* Copy what req wants of block b of ident's file from the cache; false on
 * a miss. */
bool cache_copy_out(struct cache_layer *cl, const struct cache_ident *ident, uint64_t b,
                    struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t key = ident->key, h = xd_hash_mix(key, b), lo, hi;
    uint32_t si = shard_index(c, h), id;
    struct cache_shard *s = &c->shards[si];
    block_span(c, req, b, &lo, &hi);
    char *dst = req_at(c, req, b, lo);
    if (cl->seen && shard_peek(c, s, h, key, b, &ident->gens, dst, lo, hi - lo, &id)) {
        xd_cp_hit(&s->policy, id);
        seen_add(cl, s, si, h);
        return true;
    }
    shard_lock_for(cl, s, h);
    id = shard_get(c, s, h, key, b, &ident->gens);
    if (id != NIL) {
        memcpy(dst, s->data + (size_t)id * c->bs + lo, hi - lo);
        xd_cp_access(&s->policy, id);
    }
    pthread_mutex_unlock(&s->lock);
    return id != NIL;
}

bool cache_is_dirty(struct cache *c, uint64_t key, uint64_t b)
{
    uint64_t h = xd_hash_mix(key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_find(s, h, key, b);
    bool dirty = id != NIL && s->entries[id].state == ENTRY_DIRTY;
    pthread_mutex_unlock(&s->lock);
    return dirty;
}

/* Insert clean block b of generation gen read by a request that went down
 * at sequence seq, unless a write of this process touched it since. */
void cache_insert_read(struct cache_layer *cl, uint64_t key, uint64_t b, const char *src,
                       uint64_t seq, uint32_t gen)
{
    struct cache *c = cl->cache;
    uint64_t h = xd_hash_mix(key, b);
    struct cache_shard *s = shard_of(c, h);
    shard_lock_for(cl, s, h);
    uint32_t id;
    if (*stamp_of(s, h) > seq) {
        cl->count.refused++;
    } else if ((id = shard_find(s, h, key, b)) == NIL) {
        id = shard_alloc(s);
        if (id != NIL) {
            entry_change_begin(&s->entries[id]);
            shard_link(c, s, id, h, key, b, gen);
            block_store(s->data + (size_t)id * c->bs, src, c->bs);
            entry_change_end(&s->entries[id]);
            cl->count.inserts++;
        }
    } else if (s->entries[id].state == ENTRY_CLEAN && !s->entries[id].writeback &&
               s->entries[id].gen != gen) { /* stale (written elsewhere): this is the file's now */
        entry_change_begin(&s->entries[id]);
        STORE(s->entries[id].gen, gen);
        block_store(s->data + (size_t)id * c->bs, src, c->bs);
        entry_change_end(&s->entries[id]);
    }
    pthread_mutex_unlock(&s->lock);
}

/* --- writes going down ------------------------------------------------------- */

/* Before a write or trim at sequence seq goes down: block b leaves the
 * cache. A dirty block is written back first, and where that fails the
 * write must not go down: 0, or the write-back's -errno. */
int cache_begin_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                      uint64_t b, uint64_t seq)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, hash = xd_hash_mix(key, b);
    struct cache_shard *s = shard_of(c, hash);
    int rc = 0;
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
        if (e->state == ENTRY_DIRTY) {
            /* below first, even under a whole-block write: were this write
             * to fail, dropping the block would lose data a write already
             * completed with; and if the write-back fails (a full file
             * system), so does this write, as going down would leave the
             * dirty block to land over it later */
            pthread_mutex_unlock(&s->lock);
            rc = cache_flush_block(cl, h, b);
            pthread_mutex_lock(&s->lock);
            if (rc < 0 || ((id = shard_find(s, hash, key, b)) != NIL &&
                           s->entries[id].state == ENTRY_DIRTY))
                break; /* or written again meanwhile: a concurrent write, keep it */
            continue;
        }
        shard_remove(s, id);
        break;
    }
    if (!rc)
        stamp_raise(stamp_of(s, hash), seq);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* A write or trim that went down at sequence req_seq(cl, req) completed:
 * its whole blocks take its data if no other write touched them since (of
 * this process: the stamps; of any: the generations), anything else it
 * touched leaves. A write-through write of
 * CACHE_WRITE_AROUND_BYTES or more stores nothing (write-back absorbs
 * writes; one it could not take stores as before): a stream of them (a sequential write, a restore)
 * would otherwise copy every block into the cache and push out blocks that
 * are read, for blocks that seldom are (bcache's sequential_cutoff does
 * the same). Storing them costs a copy, the admission sketch and an
 * eviction per 4 KiB block: 128k writes through a 32 MiB cache to a file
 * on a tmpfs ran at 63-72k IOPS storing, 184-195k going around, 220-250k
 * with no cache. */
/* Block b of write req ended: with gen (its generation, the write's data
 * being the file's) it takes req's data if whole and no other write of
 * this process touched it since; else it leaves. */
static void end_write_block(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                            uint64_t b, uint64_t done_seq, const uint32_t *gen)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, hash = xd_hash_mix(key, b);
    struct cache_shard *s = shard_of(c, hash);
    uint64_t *stamp = stamp_of(s, hash);
    shard_lock_for(cl, s, hash);
    uint32_t id = shard_find(s, hash, key, b);
    if (gen && *stamp == req_seq(cl, req) && block_whole(c, req, b)) {
        if (id == NIL && (id = shard_alloc(s)) != NIL) {
            entry_change_begin(&s->entries[id]);
            shard_link(c, s, id, hash, key, b, *gen);
            cl->count.inserts++;
        } else if (id != NIL && s->entries[id].state == ENTRY_CLEAN) {
            entry_change_begin(&s->entries[id]);
            xd_cp_access(&s->policy, id);
            STORE(s->entries[id].gen, *gen);
            STORE(s->entries[id].born_s, c->ttl_s ? cache_now_s(c) : 0);
        } else {
            id = NIL; /* dirty: left as it is */
        }
        if (id != NIL) {
            block_store(s->data + (size_t)id * c->bs, req_at(c, req, b, 0), c->bs);
            entry_change_end(&s->entries[id]);
        }
    } else if (id != NIL && s->entries[id].state == ENTRY_CLEAN) {
        shard_remove(s, id);
    }
    stamp_raise(stamp, done_seq);
    pthread_mutex_unlock(&s->lock);
}

void cache_end_write(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t done_seq = cache_next_seq(c);
    bool around = cache_write_goes_around(cl, req);
    bool ok = req->op == XD_OP_WRITE && req->result == (int64_t)req->len && !around;
    if (around)
        cl->count.around++;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    uint32_t moved = cache_gens_write_end(c, &h->ident->gens, first, last), gen[GENS_BATCH];
    for (uint64_t b = first; b <= last;) {
        unsigned n = last - b + 1 < GENS_BATCH ? (unsigned)(last - b + 1) : GENS_BATCH;
        bool current = ok && cache_gens_blocks(c, &h->ident->gens, first, last, req_state(cl, req),
                                               moved, b, n, gen);
        for (unsigned i = 0; i < n; i++, b++)
            end_write_block(cl, h, req, b, done_seq, current ? &gen[i] : NULL);
    }
}

/* --- writes absorbed (write-back) ------------------------------------------ */

bool cache_present(struct cache *c, const struct cache_ident *ident, uint64_t b)
{
    uint64_t h = xd_hash_mix(ident->key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_get(c, s, h, ident->key, b, &ident->gens);
    pthread_mutex_unlock(&s->lock);
    return id != NIL;
}

/* Copy req's part of block b into the cache as dirty; false if the block
 * is partly written and not cached, or no entry is free. */
bool cache_absorb_block(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req,
                        uint64_t b, uint64_t seq)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key, hash = xd_hash_mix(key, b), lo, hi;
    struct cache_shard *s = shard_of(c, hash);
    block_span(c, req, b, &lo, &hi);
    shard_lock_for(cl, s, hash);
    uint32_t id = shard_get(c, s, hash, key, b, &h->ident->gens);
    if (id == NIL && (lo || hi != c->bs || (id = shard_alloc(s)) == NIL)) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    struct cache_entry *e = &s->entries[id];
    entry_change_begin(e); /* also what a write-back of it compares (cache_release) */
    if (e->state == ENTRY_FREE) {
        shard_link(c, s, id, hash, key, b, 0); /* dirty: no generation until written back */
        cl->count.inserts++;
    } else {
        xd_cp_access(&s->policy, id);
    }
    block_store(s->data + (size_t)id * c->bs + lo, req_at(c, req, b, lo), hi - lo);
    if (e->state == ENTRY_CLEAN) {
        STORE(e->state, ENTRY_DIRTY);
        e->dirty_ms = cache_now_ms(c);
        dirty_append(s, id);
        ident_dirty_add(c, h->ident, 1);
    }
    if (c->ttl_s)
        STORE(e->born_s, cache_now_s(c));
    entry_change_end(e);
    stamp_raise(stamp_of(s, hash), seq);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* --- write-back ------------------------------------------------------------- */

/* Take dirty block b of file for write-back: copy it to dst, note its
 * version (its seq: only an absorbed write changes a block being written
 * back). With wait, first wait out a write-back of it under way. */
bool cache_take(struct cache *c, struct cache_ident *ident, uint64_t b, char *dst,
                uint32_t *version, bool wait)
{
    uint64_t h = xd_hash_mix(ident->key, b);
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
        *version = e->seq;
        memcpy(dst, s->data + (size_t)id * c->bs, c->bs);
        atomic_fetch_add(&ident->writeback, 1);
        taken = true;
    }
    pthread_mutex_unlock(&s->lock);
    return taken;
}

/* A write-back of b ended: clean unless a write reached it meanwhile or the
 * write-back failed (then it stays dirty, at the back of the list). Clean
 * with gen, its generation now; without (another process wrote it while
 * it went down, so the file may hold either) it leaves. */
void cache_release(struct cache *c, struct cache_ident *ident, uint64_t b, uint32_t version,
                   bool ok, const uint32_t *gen)
{
    uint64_t h = xd_hash_mix(ident->key, b);
    struct cache_shard *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    uint32_t id = shard_find(s, h, ident->key, b);
    if (id != NIL) { /* always: a block being written back is never removed */
        struct cache_entry *e = &s->entries[id];
        e->writeback = 0;
        if (ok && e->seq == version) {
            entry_change_begin(e); /* the data stays; readers see state and gen change together */
            STORE(e->state, ENTRY_CLEAN);
            STORE(e->gen, gen ? *gen : 0);
            entry_change_end(e);
            ident_dirty_add(c, ident, -1);
            if (!gen)
                shard_remove(s, id);
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

/* The first dirty block of ident in shard s dirty for at least min_age_ms;
 * false when none. The list is oldest first. */
bool shard_first_dirty(struct cache *c, struct cache_shard *s, uint64_t key,
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

/* --- files ------------------------------------------------------------------------ */

/* Blocks of ident not dirty and not being written back leave the cache. */
void cache_drop_clean(struct cache *c, uint64_t key)
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

/* --- the shared cache ------------------------------------------------------ */

void cache_free(struct cache *c)
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
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->written);
    }
    free(c->shards);
    free(c->size_file);
    while (c->idents) {
        struct cache_ident *next = c->idents->next;
        cache_gens_close(&c->idents->gens);
        pthread_mutex_destroy(&c->idents->solo_lock);
        free(c->idents);
        c->idents = next;
    }
    if (c->arena)
        munmap(c->arena, c->arena_len);
    if (c->entries)
        munmap(c->entries, c->entries_len);
    if (c->bucket_arena)
        munmap(c->bucket_arena, c->bucket_arena_len);
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

void shard_advise_huge(const struct cache_shard *s)
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
    s->buckets = c->bucket_arena + (size_t)i * c->buckets_max;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->written, NULL);
    shard_advise_huge(s);
    struct xd_cp_owner owner = {.evictable = entry_evictable, .hash = entry_hash, .ctx = s};
    if (xd_cp_init(&s->policy, c->policy, s->per, &s->entries[0].node, sizeof(struct cache_entry),
                   &owner))
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
        c->buckets_max = 1;
        while (c->buckets_max < c->per_max)
            c->buckets_max <<= 1;
        c->arena_len = (size_t)c->nshards * c->per_max * c->bs;
        c->entries_len = (size_t)c->nshards * c->per_max * sizeof(struct cache_entry);
        c->bucket_arena_len = (size_t)c->nshards * c->buckets_max * sizeof(uint32_t);
        c->arena = cache_map(c->arena_len);
        c->entries = cache_map(c->entries_len);
        c->bucket_arena = cache_map(c->bucket_arena_len);
        if (c->arena && c->entries && c->bucket_arena)
            return;
        if (c->arena)
            munmap(c->arena, c->arena_len);
        if (c->entries)
            munmap(c->entries, c->entries_len);
        if (c->bucket_arena)
            munmap(c->bucket_arena, c->bucket_arena_len);
        c->arena = NULL;
        c->entries = NULL;
        c->bucket_arena = NULL;
        c->per_max = first;
    }
}

int cache_new(struct cache **out, const struct xd_config *cfg, char *err, size_t errlen)
{
    struct cache *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->bs = (uint32_t)cfg->cache_block_size;
    c->shift = (uint32_t)__builtin_ctz(c->bs);
    c->size = (uint64_t)cfg->cache_size;
    c->policy = cfg->cache_policy;
    c->ttl_s = (uint32_t)cfg->cache_ttl;
    c->t0_ns = coarse_ns() - 1000000000ull; /* born_s 0 means "long ago" only without a TTL */
    uint64_t blocks = c->size / c->bs;
    c->nshards = cache_shards_for(blocks);
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
    int rc = c->arena && c->entries && c->bucket_arena && c->shards ? 0 : -ENOMEM;
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
