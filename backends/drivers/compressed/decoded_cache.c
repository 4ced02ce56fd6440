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
 * (a few hundred ns for 4 KiB), a fill the whole chunk (a few us).
 *
 * Memory: one anonymous mapping of the budget, reserved (MAP_NORESERVE)
 * and touched only as chunks are cached, with huge pages advised. Why not
 * malloc: every new entry then landed on fresh pages, and a page fault per
 * 4 KiB of a fill cost more than the decode it saved (measured on this
 * project's VMs: 1.4k fills/s against 65k decodes/s). Each shard owns an
 * even slice, at least XD_CTR_MAX_CHUNK, cut into slots of one chunk size:
 * the size of the first chunk it caches, until it is empty again. A chunk
 * of another size is not cached meanwhile (a device whose containers have
 * different chunk sizes caches the first size met, per shard).
 *
 * Eviction: CLOCK per shard (second chance): a hit sets an entry's
 * referenced bit; the hand clears set bits as it passes and evicts the
 * first entry it finds clear. New entries go just behind the hand.
 *
 * Admission: a miss is cached at once while its shard has a free slot;
 * once it is full, only a chunk missed before, recently (a ghost of the
 * last misses, twice as many as the shard has slots), is. Caching a chunk
 * costs its reader a full decode (lz4 otherwise decodes only the prefix it
 * needs), a pread instead of the mapping and a copy of the chunk: about
 * 40% more per miss, measured on a 256 MiB file with a 16 MiB cache, where
 * admitting every miss made random reads 0.5-0.6 of the uncached path's
 * speed. A file that fits is cached on first touch, as before.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../core/hash.h"
#include "compressed.h"

#define MAX_SHARDS 16
#define FIRST_BUCKETS 64
#define HUGE_PAGE (2u << 20)

/* A slot's bookkeeping; its data is the shard's slot of the same index. */
struct dc_entry {
    uint64_t file, chunk, gen;
    bool referenced;
    struct dc_entry *hash_next; /* also the free list's link */
    struct dc_entry *prev, *next; /* the CLOCK ring */
};

struct dc_shard {
    pthread_mutex_t lock;
    uint8_t *region;            /* its slice of the mapping */
    uint64_t region_len;
    uint32_t slot_size;         /* 0: not cut into slots yet */
    uint64_t nslots, fresh;     /* slots; slots never used yet, from the end */
    struct dc_entry *entries;   /* one per slot */
    struct dc_entry *free;      /* used once, free again */
    struct dc_entry **buckets;
    uint64_t nbuckets, count;   /* nbuckets: a power of two */
    struct dc_entry *hand;      /* next to look at for eviction; NULL: empty */
    uint64_t *ghost;            /* hashes of recent misses, by chunk number */
    uint64_t ghost_len;
    uint64_t hits, misses, evictions, declined;
} __attribute__((aligned(64))); /* shards' locks on lines of their own */

struct xd_dcache {
    unsigned nshards;
    uint64_t budget;
    void *map;
    size_t map_len;
    struct dc_shard shard[];
};

static uint8_t *slot_data(const struct dc_shard *sh, const struct dc_entry *e)
{
    return sh->region + (uint64_t)(e - sh->entries) * sh->slot_size;
}

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
    sh->count++;
}

/* Take the entry linked at *at out of the table and the ring. */
static struct dc_entry *entry_unlink(struct dc_shard *sh, struct dc_entry **at)
{
    struct dc_entry *e = *at;
    *at = e->hash_next;
    ring_remove(sh, e);
    sh->count--;
    return e;
}

/* ... and its slot to the free list. */
static void entry_release(struct dc_shard *sh, struct dc_entry **at)
{
    struct dc_entry *e = entry_unlink(sh, at);
    e->hash_next = sh->free;
    sh->free = e;
}

/* --- slots --------------------------------------------------------------------- */

/* Cut the shard's slice into slots of size bytes; only while it is empty.
 * false when not even one fits. */
static bool shard_format(struct dc_shard *sh, uint32_t size)
{
    uint64_t n = sh->region_len / size, glen = 2 * n < 64 ? 64 : 2 * n;
    if (!n)
        return false;
    struct dc_entry *entries = calloc(n, sizeof(*entries));
    uint64_t *ghost = calloc(glen, sizeof(*ghost));
    if (!entries || !ghost) {
        free(entries);
        free(ghost);
        return false;
    }
    free(sh->entries);
    free(sh->ghost);
    sh->entries = entries;
    sh->ghost = ghost;
    sh->ghost_len = glen;
    sh->slot_size = size;
    sh->nslots = sh->fresh = n;
    sh->free = NULL;
    return true;
}

/* A slot for a chunk of size bytes: a free one, one never used, or the
 * CLOCK's victim. NULL when this shard holds chunks of another size. */
static struct dc_entry *slot_take(struct dc_shard *sh, uint32_t size)
{
    if (sh->slot_size != size && (sh->count || !shard_format(sh, size)))
        return NULL;
    struct dc_entry *e = sh->free;
    if (e) {
        sh->free = e->hash_next;
        return e;
    }
    if (sh->fresh)
        return &sh->entries[sh->nslots - sh->fresh--];
    if (!sh->hand)
        return NULL;
    e = clock_victim(sh);
    entry_unlink(sh, hash_slot(sh, e->file, e->chunk));
    sh->evictions++;
    return e;
}

/* Should a miss of (file, chunk) be cached? Yes while there is room
 * without evicting; then only when it was missed recently too. The ghost is
 * indexed by chunk number, so neighbouring chunks never push each other
 * out; its tag is the key's hash. */
static bool admit(struct dc_shard *sh, uint64_t file, uint64_t chunk, uint64_t nshards)
{
    if (!sh->slot_size || sh->free || sh->fresh)
        return true;
    uint64_t tag = xd_hash_mix(file, chunk) | 1, *g = &sh->ghost[chunk / nshards % sh->ghost_len];
    if (*g == tag) {
        *g = 0;
        return true;
    }
    *g = tag;
    sh->declined++;
    return false;
}

/* --- the interface (compressed.h) ------------------------------------------------ */

/* Huge pages where the kernel offers them, on whole 2 MiB pages only: a
 * fill then faults once per 2 MiB, not once per 4 KiB. */
static void advise_huge(void *start, size_t len)
{
    uintptr_t lo = ((uintptr_t)start + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)start + len) & ~(uintptr_t)(HUGE_PAGE - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

static int shard_init(struct dc_shard *sh, uint8_t *region, uint64_t len)
{
    pthread_mutex_init(&sh->lock, NULL);
    sh->region = region;
    sh->region_len = len;
    sh->nbuckets = FIRST_BUCKETS;
    sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
    return sh->buckets ? 0 : -ENOMEM;
}

struct xd_dcache *xd_dcache_new(uint64_t budget)
{
    if (!budget)
        return NULL;
    unsigned n = 1;
    while (n < MAX_SHARDS && budget / (2 * n) >= XD_CTR_MAX_CHUNK)
        n *= 2;
    uint64_t slice = budget / n / 4096 * 4096;
    struct xd_dcache *dc = NULL;
    if (posix_memalign((void **)&dc, 64, sizeof(*dc) + n * sizeof(dc->shard[0])))
        return NULL;
    memset(dc, 0, sizeof(*dc) + n * sizeof(dc->shard[0]));
    dc->budget = budget;
    dc->map_len = (size_t)(slice * n);
    dc->map = mmap(NULL, dc->map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dc->map == MAP_FAILED) {
        free(dc);
        return NULL;
    }
    advise_huge(dc->map, dc->map_len);
    for (unsigned i = 0; i < n; i++) {
        dc->nshards = i + 1;
        if (shard_init(&dc->shard[i], (uint8_t *)dc->map + i * slice, slice)) {
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
        free(sh->entries);
        free(sh->ghost);
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    munmap(dc->map, dc->map_len);
    free(dc);
}

bool xd_dcache_read(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                    uint32_t at, uint32_t len, void *dst, bool *cache_it)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk), *e = *slot;
    bool hit = e && e->gen == gen && (uint64_t)at + len <= sh->slot_size;
    if (hit) {
        memcpy(dst, slot_data(sh, e) + at, len);
        e->referenced = true;
        sh->hits++;
    } else {
        sh->misses++;
        if (e && e->gen != gen) /* a version the map no longer names */
            entry_release(sh, slot);
        if (cache_it)
            *cache_it = admit(sh, file, chunk, dc->nshards);
    }
    pthread_mutex_unlock(&sh->lock);
    return hit;
}

void xd_dcache_put(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                   const void *data, uint32_t size)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk);
    if (*slot) /* the latest put wins: an older version is only a miss later */
        entry_release(sh, slot);
    struct dc_entry *e = slot_take(sh, size);
    if (e) {
        *e = (struct dc_entry){.file = file, .chunk = chunk, .gen = gen};
        memcpy(slot_data(sh, e), data, size);
        entry_link(sh, e);
    }
    pthread_mutex_unlock(&sh->lock);
}

void xd_dcache_drop(struct xd_dcache *dc, uint64_t file, uint64_t chunk)
{
    struct dc_shard *sh = shard_of(dc, file, chunk);
    pthread_mutex_lock(&sh->lock);
    struct dc_entry **slot = hash_slot(sh, file, chunk);
    if (*slot)
        entry_release(sh, slot);
    pthread_mutex_unlock(&sh->lock);
}

void xd_dcache_drop_file(struct xd_dcache *dc, uint64_t file)
{
    for (unsigned i = 0; i < dc->nshards; i++) {
        struct dc_shard *sh = &dc->shard[i];
        pthread_mutex_lock(&sh->lock);
        for (uint64_t b = 0; b < sh->nbuckets; b++) {
            struct dc_entry **slot = &sh->buckets[b];
            while (*slot) {
                if ((*slot)->file == file)
                    entry_release(sh, slot);
                else
                    slot = &(*slot)->hash_next;
            }
        }
        pthread_mutex_unlock(&sh->lock);
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
        st->bytes += sh->count * sh->slot_size;
        st->chunks += sh->count;
        st->hits += sh->hits;
        st->misses += sh->misses;
        st->evictions += sh->evictions;
        st->declined += sh->declined;
        pthread_mutex_unlock(&sh->lock);
    }
}
