/* decoded_cache.c - the compressed driver's cache of decompressed chunks.
 *
 * Why: the page cache keeps a warm container's compressed bytes, so every
 * 4 KiB random read still decoded its whole chunk (64 KiB by default), and
 * a file system that compresses (btrfs) keeps the decompressed pages and
 * serves the same read with a copy. This cache keeps whole decoded chunks,
 * up to compress_cache_size bytes per device.
 *
 * Correctness: an entry is keyed by (file, chunk) and holds one version of
 * it, named by its generation. It is served only to a reader that has just
 * read the chunk's map entry and found that same generation: the map, which
 * every writer flips (this device's threads, other devices, other
 * processes, none of which share this cache), says what is current, never
 * the cache. This device's own writes replace or drop the entry as well,
 * only so that memory is not held by a version nobody can read any more.
 * file is ctr_file.id, unique per open and never reused: a container
 * deleted and made again (its generations starting over at 1) cannot match
 * an entry of the old one; a file's entries go when it closes.
 *
 * Locking: shards chosen by chunk number, so that consecutive chunks (and a
 * uniform random reader) spread evenly; each has its own mutex, hash table
 * and CLOCK ring. A hit copies the bytes asked for under its shard's mutex
 * (a few hundred ns for 4 KiB); a fill copies the chunk into a new entry
 * before taking the mutex and frees what it evicted after dropping it.
 * Each shard gets an even share of the budget, at least XD_CTR_MAX_CHUNK,
 * so that any chunk fits; a cache under twice that is one shard.
 *
 * Eviction: CLOCK per shard (second chance): a hit sets an entry's
 * referenced bit; the hand clears set bits as it passes and evicts the
 * first entry it finds clear. New entries go just behind the hand.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/hash.h"
#include "compressed.h"

#define MAX_SHARDS 16
#define FIRST_BUCKETS 64

struct dc_entry {
    uint64_t file, chunk, gen;
    uint32_t size; /* bytes of data: the chunk size of its container */
    bool referenced;
    struct dc_entry *hash_next;
    struct dc_entry *prev, *next; /* the CLOCK ring */
    uint8_t data[];
};

struct dc_shard {
    pthread_mutex_t lock;
    struct dc_entry **buckets;
    uint64_t nbuckets, count; /* nbuckets: a power of two */
    struct dc_entry *hand;    /* next to look at for eviction; NULL: empty */
    uint64_t bytes, budget;
    uint64_t hits, misses, evictions;
} __attribute__((aligned(64))); /* shards' locks on lines of their own */

struct xd_dcache {
    unsigned nshards;
    uint64_t budget;
    struct dc_shard shard[];
};

/* --- lookup ------------------------------------------------------------------ */

static struct dc_shard *shard_of(struct xd_dcache *dc, uint64_t file, uint64_t chunk)
{
    return &dc->shard[(chunk + file) % dc->nshards];
}

/* Where (file, chunk)'s entry is linked in its bucket, or where it would be. */
static struct dc_entry **hash_slot(struct dc_shard *sh, uint64_t file, uint64_t chunk)
{
    struct dc_entry **at = &sh->buckets[xd_hash_mix(file, chunk) & (sh->nbuckets - 1)];
    while (*at && ((*at)->file != file || (*at)->chunk != chunk))
        at = &(*at)->hash_next;
    return at;
}

/* Double the buckets once there are as many entries; without memory for
 * more the chains just grow longer. */
static void hash_grow(struct dc_shard *sh)
{
    if (sh->count < sh->nbuckets)
        return;
    uint64_t n = sh->nbuckets * 2;
    struct dc_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (uint64_t i = 0; i < sh->nbuckets; i++) {
        for (struct dc_entry *e = sh->buckets[i], *next; e; e = next) {
            next = e->hash_next;
            struct dc_entry **head = &b[xd_hash_mix(e->file, e->chunk) & (n - 1)];
            e->hash_next = *head;
            *head = e;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = n;
}

/* --- the CLOCK ring ------------------------------------------------------------ */

/* Just behind the hand: the last place it reaches. */
static void ring_insert(struct dc_shard *sh, struct dc_entry *e)
{
    if (!sh->hand) {
        e->prev = e->next = e;
        sh->hand = e;
        return;
    }
    e->next = sh->hand;
    e->prev = sh->hand->prev;
    e->prev->next = e;
    sh->hand->prev = e;
}

static void ring_remove(struct dc_shard *sh, struct dc_entry *e)
{
    if (e->next == e) {
        sh->hand = NULL;
        return;
    }
    e->prev->next = e->next;
    e->next->prev = e->prev;
    if (sh->hand == e)
        sh->hand = e->next;
}

static struct dc_entry *clock_victim(struct dc_shard *sh)
{
    while (sh->hand->referenced) {
        sh->hand->referenced = false;
        sh->hand = sh->hand->next;
    }
    return sh->hand;
}

/* --- entries ------------------------------------------------------------------- */

static void entry_link(struct dc_shard *sh, struct dc_entry *e)
{
    hash_grow(sh);
    struct dc_entry **head = &sh->buckets[xd_hash_mix(e->file, e->chunk) & (sh->nbuckets - 1)];
    e->hash_next = *head;
    *head = e;
    ring_insert(sh, e);
    sh->bytes += e->size;
    sh->count++;
}

/* Take e (found at *at) out of its shard; the caller frees it, after
 * dropping the lock. */
static void entry_unlink(struct dc_shard *sh, struct dc_entry **at)
{
    struct dc_entry *e = *at;
    *at = e->hash_next;
    ring_remove(sh, e);
    sh->bytes -= e->size;
    sh->count--;
}

static void free_list(struct dc_entry *list)
{
    while (list) {
        struct dc_entry *next = list->hash_next;
        free(list);
        list = next;
    }
}

/* Evict until size more bytes fit; the evicted go on *freed. */
static void make_room(struct dc_shard *sh, uint32_t size, struct dc_entry **freed)
{
    while (sh->hand && sh->bytes + size > sh->budget) {
        struct dc_entry *v = clock_victim(sh);
        entry_unlink(sh, hash_slot(sh, v->file, v->chunk));
        v->hash_next = *freed;
        *freed = v;
        sh->evictions++;
    }
}

/* --- the interface (compressed.h) ------------------------------------------------ */

struct xd_dcache *xd_dcache_new(uint64_t budget)
{
    if (!budget)
        return NULL;
    unsigned n = 1;
    while (n < MAX_SHARDS && budget / (2 * n) >= XD_CTR_MAX_CHUNK)
        n *= 2;
    struct xd_dcache *dc = NULL;
    if (posix_memalign((void **)&dc, 64, sizeof(*dc) + n * sizeof(dc->shard[0])))
        return NULL;
    memset(dc, 0, sizeof(*dc) + n * sizeof(dc->shard[0]));
    dc->nshards = n;
    dc->budget = budget;
    for (unsigned i = 0; i < n; i++) {
        struct dc_shard *sh = &dc->shard[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->budget = budget / n;
        sh->nbuckets = FIRST_BUCKETS;
        if (!(sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets)))) {
            dc->nshards = i + 1;
            xd_dcache_free(dc);
            return NULL;
        }
    }
    return dc;
}

void xd_dcache_free(struct xd_dcache *dc)
{
    if (!dc)
        return;
    for (unsigned i = 0; i < dc->nshards; i++) {
        struct dc_shard *sh = &dc->shard[i];
        while (sh->hand) {
            struct dc_entry *e = sh->hand;
            ring_remove(sh, e);
            free(e);
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(dc);
}

bool xd_dcache_read(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                    uint32_t at, uint32_t len, void *dst)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    struct dc_entry *stale = NULL;
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk), *e = *slot;
    bool hit = e && e->gen == gen && (uint64_t)at + len <= e->size;
    if (hit) {
        memcpy(dst, e->data + at, len);
        e->referenced = true;
        sh->hits++;
    } else {
        sh->misses++;
        if (e && e->gen != gen) { /* a version the map no longer names */
            entry_unlink(sh, slot);
            stale = e;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    free(stale);
    return hit;
}

void xd_dcache_put(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                   const void *data, uint32_t size)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    if (size > sh->budget)
        return;
    struct dc_entry *e = malloc(sizeof(*e) + size), *freed = NULL;
    if (!e)
        return; /* a cache is allowed to forget */
    *e = (struct dc_entry){.file = file, .chunk = chunk, .gen = gen, .size = size};
    memcpy(e->data, data, size);
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk);
    if (*slot) { /* the latest put wins: an older version is only a miss later */
        freed = *slot;
        entry_unlink(sh, slot);
        freed->hash_next = NULL;
    }
    make_room(sh, size, &freed);
    entry_link(sh, e);
    pthread_mutex_unlock(&sh->lock);
    free_list(freed);
}

void xd_dcache_drop(struct xd_dcache *dc, uint64_t file, uint64_t chunk)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    struct dc_entry *e;
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk);
    if ((e = *slot))
        entry_unlink(sh, slot);
    pthread_mutex_unlock(&sh->lock);
    free(e);
}

void xd_dcache_drop_file(struct xd_dcache *dc, uint64_t file)
{
    for (unsigned i = 0; i < dc->nshards; i++) {
        struct dc_shard *sh = &dc->shard[i];
        struct dc_entry *freed = NULL;
        pthread_mutex_lock(&sh->lock);
        for (uint64_t b = 0; b < sh->nbuckets; b++) {
            struct dc_entry **slot = &sh->buckets[b];
            while (*slot) {
                struct dc_entry *e = *slot;
                if (e->file != file) {
                    slot = &e->hash_next;
                    continue;
                }
                entry_unlink(sh, slot);
                e->hash_next = freed;
                freed = e;
            }
        }
        pthread_mutex_unlock(&sh->lock);
        free_list(freed);
    }
}

void xd_dcache_stats(struct xd_dcache *dc, struct xd_dcache_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!dc)
        return;
    st->capacity = dc->budget;
    for (unsigned i = 0; i < dc->nshards; i++) {
        struct dc_shard *sh = &dc->shard[i];
        pthread_mutex_lock(&sh->lock);
        st->bytes += sh->bytes;
        st->chunks += sh->count;
        st->hits += sh->hits;
        st->misses += sh->misses;
        st->evictions += sh->evictions;
        pthread_mutex_unlock(&sh->lock);
    }
}
