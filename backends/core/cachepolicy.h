/* cachepolicy.h - eviction policies over numbered entries: S3-FIFO and LRU.
 *
 * The policy only orders entries; the caller owns keys and data. Entries are
 * numbered 0..capacity-1 by the caller (the cache layer keeps one policy per
 * shard, xdcachesim one per replay), so the same code decides what the layer
 * evicts and what the simulator predicts. Not thread-safe: callers lock,
 * except around xd_cp_hit, which only bumps a hit counter (atomically) and
 * may run beside any other call, so a cache hit needs no lock.
 *
 * S3-FIFO (Yang et al., SOSP'23) with TinyLFU's admission test (Einziger
 * et al., 2017): new entries go to a small FIFO (1% of the capacity); every
 * access, hit or miss, is counted in a frequency sketch (freqsketch.h). An
 * entry leaving small unhit is evicted and its key remembered in a ghost
 * FIFO (keys only, as many as main holds) - unless main has room and the
 * sketch has seen it 3 times. One hit while in small (or back from the
 * ghost, which puts a key into small as if hit there) goes to main while
 * main has room. Once main is full, it is compared with main's next victim:
 * it replaces that victim if the sketch has seen it more often, else it is
 * evicted into the ghost. Main's victim: entries whose 2-bit hit counter is
 * not zero are reinserted at main's head, the counter decremented (as in
 * S3-FIFO); of the first 8 from the tail whose counter is spent, the one
 * the sketch has seen least. Hits only bump the counters, so a hit never
 * reorders a queue.
 *
 * LRU: one list, a hit moves the entry to the head, the tail is evicted.
 */
#ifndef XD_CACHEPOLICY_H
#define XD_CACHEPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freqsketch.h"

enum xd_cp_kind { XD_CP_S3FIFO, XD_CP_LRU }; /* the order of cache_policy's allowed list */

#define XD_CP_NONE UINT32_MAX

struct xd_cp_node {
    uint32_t prev, next; /* toward head / toward tail; XD_CP_NONE ends */
    uint8_t queue;       /* CP_Q_* (cachepolicy.c) */
    uint8_t freq;        /* S3-FIFO hit counter, 0..3 */
};

struct xd_cp_list {
    uint32_t head, tail, size;
};

/* The ghost: fingerprints with the insertion number they were added at; one
 * older than `cap` insertions has left the FIFO. Buckets of 8 slots. */
struct xd_cp_ghost_slot {
    uint32_t fp, seq; /* seq 0: empty */
};

/* What the policy asks its owner about entry id. */
struct xd_cp_owner {
    bool (*evictable)(void *ctx, uint32_t id); /* may it go now? (not dirty) */
    uint64_t (*hash)(void *ctx, uint32_t id);  /* its key's hash, for the ghost */
    void *ctx;
};

struct xd_cp {
    int kind;
    uint32_t capacity;
    uint32_t small_target; /* S3-FIFO: the small FIFO's share */
    char *nodes;           /* node of id at nodes + id * stride */
    size_t stride;
    bool own_nodes;
    struct xd_cp_owner owner;
    struct xd_cp_list small, main; /* LRU uses main only */
    struct xd_cp_ghost_slot *ghost;
    uint32_t ghost_buckets, ghost_cap, ghost_seq;
    struct xd_fs sketch; /* S3-FIFO: recent access counts, for admission to main */
    struct {
        uint64_t ghost_hits, promotions, reinsertions, refused;
    } count;
};

/* Bytes of policy state per entry besides the node (the ghost's slots and
 * the frequency sketch's counters). */
#define XD_CP_GHOST_BYTES_PER_ENTRY (2 * sizeof(struct xd_cp_ghost_slot) + XD_FS_BYTES_PER_ENTRY)

/* 0, or -ENOMEM. capacity >= 1. nodes: where the caller keeps entry id's
 * node, at nodes + id * stride (embedded in its own entries, so a hit
 * touches one cache line), zeroed; NULL to have the policy allocate them.
 * Memory is calloc'd, so untouched parts of a large policy are not
 * resident. */
int xd_cp_init(struct xd_cp *p, int kind, uint32_t capacity, void *nodes, size_t stride,
               const struct xd_cp_owner *owner);
void xd_cp_destroy(struct xd_cp *p);
/* A new capacity (a live cache_size change). Residents stay; past a smaller
 * capacity the owner evicts them down with xd_cp_evict. S3-FIFO's small
 * share and ghost follow the capacity; the ghost starts empty at its new
 * size. Only for caller-owned nodes (ids beyond the old capacity must have
 * somewhere to live). 0, -EINVAL or -ENOMEM (nothing changed). */
int xd_cp_set_capacity(struct xd_cp *p, uint32_t capacity);
/* id becomes resident (a miss that is being filled); hash is its key's. */
void xd_cp_insert(struct xd_cp *p, uint32_t id, uint64_t hash);
/* id was hit: xd_cp_hit and xd_cp_seen of its hash (LRU: id moves to the head). */
void xd_cp_access(struct xd_cp *p, uint32_t id);
/* S3-FIFO: id's hit counter goes up. Needs no lock (see above): a hit found
 * without the owner's lock may bump an entry that has just been evicted or
 * refilled, which only gives that block a turn in main it did not earn.
 * LRU: nothing (its hits reorder a list: xd_cp_access, under the lock). */
void xd_cp_hit(struct xd_cp *p, uint32_t id);
/* S3-FIFO: a hit on the key with this hash counts in the frequency sketch;
 * under the lock, and may come later than the hit (the cache layer counts
 * a device's hits in batches). LRU: nothing. */
void xd_cp_seen(struct xd_cp *p, uint64_t hash);
/* xd_cp_seen of n hashes in order (the same counts), with every sketch
 * line they touch asked for first: the cache layer adds a device's hits
 * in batches, and one add at a time waited for two cache misses each. */
void xd_cp_seen_batch(struct xd_cp *p, const uint64_t *hash, unsigned n);
/* id leaves without being evicted (invalidated); not remembered in the ghost. */
void xd_cp_remove(struct xd_cp *p, uint32_t id);
/* Choose a victim among the residents the owner says may go and take it
 * out; XD_CP_NONE when none can be evicted. Entries that may not go now
 * (dirty ones) are passed over as if they had been hit. */
uint32_t xd_cp_evict(struct xd_cp *p);
/* Residents. */
static inline uint32_t xd_cp_size(const struct xd_cp *p)
{
    return p->small.size + p->main.size;
}

#endif
