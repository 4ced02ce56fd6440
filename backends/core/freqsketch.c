/* freqsketch.c - a count-min sketch with halving (see freqsketch.h). */
#include "freqsketch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* Samples per entry of capacity between halvings: long enough for the
 * counts of the blocks at the edge of what the cache can hold to stand out
 * of the noise on a skewed workload (at 32 the zipf:0.8 replay in
 * tests/unit/cache_policy.c closed 0.478 of the LRU->MIN gap, at 128 0.508,
 * at 256 no more), short enough to follow a shift within a few hundred
 * accesses per block. */
#define FS_SAMPLE_PER_ENTRY 128
#define FS_COUNTER_MAX 255

int xd_fs_init(struct xd_fs *s, uint32_t capacity)
{
    uint64_t width = 16;
    while (width < 2ull * capacity)
        width <<= 1;
    uint8_t *counters = aligned_alloc(64, XD_FS_ROWS * width);
    if (!counters)
        return -ENOMEM;
    memset(counters, 0, XD_FS_ROWS * width);
    free(s->counters);
    s->counters = counters;
    s->block_mask = (uint32_t)(XD_FS_ROWS * width / 64 - 1);
    s->sample = (uint64_t)FS_SAMPLE_PER_ENTRY * (capacity ? capacity : 1);
    s->seen = 0;
    return 0;
}

void xd_fs_destroy(struct xd_fs *s)
{
    free(s->counters);
    s->counters = NULL;
}

/* The key's four counters, two in each of two 64-byte blocks (two cache
 * lines: a cache hit pays for two misses here, not four; all four in one
 * block made keys that share it collide in every row, and on the 1 GiB
 * zipf traces closed 0.02 less of the LRU->MIN gap). The remix keeps the
 * choice apart from the bits that already chose the key's shard and
 * bucket. */
static void fs_counters(const struct xd_fs *s, uint64_t hash, uint8_t *c[XD_FS_ROWS])
{
    uint64_t x = xd_hash_mix(hash, 0x5ca1ab1eull), y = xd_hash_mix(x, 0x0ddba11ull);
    for (unsigned r = 0; r < XD_FS_ROWS; r++) {
        uint32_t block = (uint32_t)(r < 2 ? x : x >> 32) & s->block_mask;
        c[r] = s->counters + (size_t)block * 64 + (r & 1) * 32 + ((y >> (5 * r)) & 31);
    }
}

/* The smallest of a key's counters: its estimated count. */
static uint8_t fs_least(uint8_t *const c[XD_FS_ROWS])
{
    uint8_t least = FS_COUNTER_MAX;
    for (unsigned r = 0; r < XD_FS_ROWS; r++)
        if (*c[r] < least)
            least = *c[r];
    return least;
}

uint32_t xd_fs_estimate(const struct xd_fs *s, uint64_t hash)
{
    uint8_t *c[XD_FS_ROWS];
    fs_counters(s, hash, c);
    return fs_least(c);
}

/* Every counter halved, eight at a time (the table is 64-byte aligned and a
 * multiple of 64 bytes): on the largest shard this runs over 16 MiB once
 * every 128 x capacity accesses, under the shard's lock. */
static void fs_halve(struct xd_fs *s)
{
    uint64_t *w = (uint64_t *)(void *)s->counters;
    size_t n = (size_t)(s->block_mask + 1) * 64 / sizeof(*w);
    for (size_t i = 0; i < n; i++)
        w[i] = (w[i] >> 1) & 0x7f7f7f7f7f7f7f7full;
    s->seen /= 2;
}

void xd_fs_prefetch(const struct xd_fs *s, uint64_t hash)
{
    uint8_t *c[XD_FS_ROWS];
    fs_counters(s, hash, c);
    __builtin_prefetch(c[0], 1); /* rows 0 and 1 share one block, 2 and 3 the other */
    __builtin_prefetch(c[2], 1);
}

void xd_fs_add(struct xd_fs *s, uint64_t hash)
{
    uint8_t *c[XD_FS_ROWS];
    fs_counters(s, hash, c);
    uint8_t least = fs_least(c);
    if (least < FS_COUNTER_MAX) /* conservative update: only the least go up */
        for (unsigned r = 0; r < XD_FS_ROWS; r++)
            if (*c[r] == least)
                (*c[r])++;
    if (++s->seen >= s->sample)
        fs_halve(s);
}
