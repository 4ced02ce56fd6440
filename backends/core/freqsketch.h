/* freqsketch.h - a count-min sketch of how often keys were seen lately, for
 * the cache policy's admission test (TinyLFU, Einziger et al., 2017).
 *
 * Four rows of 8-bit counters, each row as wide as the power of two at or
 * above twice the capacity it is sized for (at most 16 bytes per entry); a
 * key's four counters lie in two 64-byte blocks, one per 32-byte half. A
 * key's estimate is the least of its four counters; an increment raises only
 * the counters equal to that least (conservative update: fewer
 * over-estimates). After `sample` increments (128 per entry of capacity) every counter is halved, so the
 * sketch forgets what was popular long ago; the sample is a multiple of the
 * capacity, long enough that a block near the edge of what a cache of that
 * size should keep has been seen several times. Not thread-safe: the cache
 * keeps one per shard, under the shard's lock.
 */
#ifndef XD_FREQSKETCH_H
#define XD_FREQSKETCH_H

#include <stdint.h>

#define XD_FS_ROWS 4
/* Bytes per entry of the capacity a sketch is sized for, at most. */
#define XD_FS_BYTES_PER_ENTRY 16

struct xd_fs {
    uint8_t *counters; /* XD_FS_ROWS rows of width */
    uint32_t block_mask; /* 64-byte blocks, less one */
    uint64_t sample, seen; /* halve every sample increments */
};

/* 0 or -ENOMEM; the old table (if any) is freed only on success. */
int xd_fs_init(struct xd_fs *s, uint32_t capacity);
void xd_fs_destroy(struct xd_fs *s);
void xd_fs_add(struct xd_fs *s, uint64_t hash);
/* Start loading the two cache lines hash's counters lie in, for an add
 * soon after: a batch of adds whose lines are all asked for first waits
 * for their misses together instead of one after another. */
void xd_fs_prefetch(const struct xd_fs *s, uint64_t hash);
uint32_t xd_fs_estimate(const struct xd_fs *s, uint64_t hash);

#endif
