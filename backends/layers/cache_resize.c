/* cache_resize.c - a live cache_size change (the reload hook): every shard
 * grows or shrinks in place. Apart from the block store because it runs
 * only on a reload, from whichever device's thread sees it, and reaches
 * into each shard's whole table at once.
 *
 * Live resize (the reload hook, e.g. xdtune's daemon changing cache_size):
 * both mappings reserve address space for the schema's largest cache_size
 * at creation (MAP_NORESERVE: untouched pages cost nothing), so each shard
 * grows in place; its hash table is rebuilt larger, in place in its own
 * reserved mapping (a hit walking a chain without the lock meanwhile finds
 * nothing, or a seq that moved, and looks again under the lock), and the
 * policy takes the new capacity. A shrink evicts down to the new size and gives the freed
 * blocks' pages back (MADV_DONTNEED), so the memory bound follows.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "cache_internal.h"

#define CACHE_MIN_BLOCKS_PER_SHARD 1

/* --- live resize (reload hook) ---------------------------------------------- */

/* A bigger hash table for a shard that grew, so chains stay short: every
 * resident entry is linked again; free entries keep their free-list links.
 * Stores are atomic: unlocked hits read the table and links meanwhile. */
static void shard_rehash(const struct cache *c, struct cache_shard *s, uint32_t want)
{
    uint32_t buckets = 1;
    while (buckets < want)
        buckets <<= 1;
    if (buckets > c->buckets_max)
        buckets = c->buckets_max;
    if (buckets <= s->bucket_mask + 1)
        return;
    for (uint32_t i = 0; i < buckets; i++)
        STORE(s->buckets[i], 0);
    STORE(s->bucket_mask, buckets - 1);
    for (uint32_t id = 0; id < s->fresh; id++) {
        struct cache_entry *e = &s->entries[id];
        if (e->state == ENTRY_FREE)
            continue;
        uint32_t *bucket = &s->buckets[(xd_hash_mix(e->file, e->block) >> 16) & (buckets - 1)];
        STORE(e->hnext, *bucket);
        STORE(*bucket, id + 1);
    }
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
        shard_free(s, id);
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
        shard_rehash(c, s, per);
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
int cache_resize(struct cache *c, uint64_t size)
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
