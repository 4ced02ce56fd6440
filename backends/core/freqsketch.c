/* freqsketch.c - a count-min sketch with halving (see freqsketch.h). */
#include "freqsketch.h"

#include <errno.h>
#include <stdlib.h>

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
    uint8_t *counters = calloc(XD_FS_ROWS * width, 1);
    if (!counters)
        return -ENOMEM;
    free(s->counters);
    s->counters = counters;
    s->width_mask = (uint32_t)(width - 1);
    s->sample = (uint64_t)FS_SAMPLE_PER_ENTRY * (capacity ? capacity : 1);
    s->seen = 0;
    return 0;
}

void xd_fs_destroy(struct xd_fs *s)
{
    free(s->counters);
    s->counters = NULL;
}

/* The key's four counters: double hashing over a remix of its hash, so the
 * rows do not reuse the bits that already chose its shard and bucket. */
static void fs_counters(const struct xd_fs *s, uint64_t hash, uint8_t *c[XD_FS_ROWS])
{
    uint64_t x = xd_hash_mix(hash, 0x5ca1ab1eull);
    uint32_t a = (uint32_t)x, b = (uint32_t)(x >> 32) | 1;
    for (unsigned r = 0; r < XD_FS_ROWS; r++)
        c[r] = &s->counters[(size_t)r * (s->width_mask + 1) + ((a + r * b) & s->width_mask)];
}

uint32_t xd_fs_estimate(const struct xd_fs *s, uint64_t hash)
{
    uint8_t *c[XD_FS_ROWS];
    uint32_t least = FS_COUNTER_MAX;
    fs_counters(s, hash, c);
    for (unsigned r = 0; r < XD_FS_ROWS; r++)
        if (*c[r] < least)
            least = *c[r];
    return least;
}

static void fs_halve(struct xd_fs *s)
{
    size_t n = (size_t)XD_FS_ROWS * (s->width_mask + 1);
    for (size_t i = 0; i < n; i++)
        s->counters[i] >>= 1;
    s->seen /= 2;
}

void xd_fs_add(struct xd_fs *s, uint64_t hash)
{
    uint8_t *c[XD_FS_ROWS];
    uint8_t least = FS_COUNTER_MAX;
    fs_counters(s, hash, c);
    for (unsigned r = 0; r < XD_FS_ROWS; r++)
        if (*c[r] < least)
            least = *c[r];
    if (least < FS_COUNTER_MAX)
        for (unsigned r = 0; r < XD_FS_ROWS; r++)
            if (*c[r] == least)
                (*c[r])++;
    if (++s->seen >= s->sample)
        fs_halve(s);
}
