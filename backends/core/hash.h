/* hash.h - the one 64-bit hash mix xdevice keys its tables with. */
#ifndef XD_HASH_H
#define XD_HASH_H

#include <stdint.h>

/* Two words to one hash: multiply each by an odd constant, then a
 * multiply-xorshift finaliser (splitmix64's). Cheap, and spread in its low
 * bits (shard, bucket) and its high bits (stamps, the ghost's buckets) alike,
 * which the cache and the policy both use. The cache layer, its simulator
 * and xdcachesim's key map all hash with it. */
static inline uint64_t xd_hash_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ b * 0xc2b2ae3d27d4eb4full;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

#endif
