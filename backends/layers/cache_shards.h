/* cache_shards.h - how many shards the cache layer splits a cache into.
 *
 * Each shard is its own S3-FIFO over the blocks whose hash picks it, with
 * its own lock; xdcachesim replays the policy split the same way
 * (xd_sim_policy_sharded), so its figure is the layer's, not a single
 * policy's over the whole cache.
 */
#ifndef XD_CACHE_SHARDS_H
#define XD_CACHE_SHARDS_H

#include <stdint.h>

#define CACHE_MAX_SHARDS 16
#define CACHE_SHARD_MIN_BLOCKS 1024 /* a shard smaller than this gets no company */

/* Shards for a cache of `blocks` blocks: doubled while each keeps at least
 * CACHE_SHARD_MIN_BLOCKS, up to CACHE_MAX_SHARDS. */
static inline uint32_t cache_shards_for(uint64_t blocks)
{
    uint32_t n = 1;
    while (n < CACHE_MAX_SHARDS && blocks / (n * 2) >= CACHE_SHARD_MIN_BLOCKS)
        n *= 2;
    return n;
}

#endif
