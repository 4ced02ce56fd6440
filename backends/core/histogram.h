/* histogram.h - log-linear latency histogram (HDR-style), fixed memory, O(1) record.
 *
 * Values below 128 ns have exact buckets; above that each power of two is
 * split into 64 linear sub-buckets, so a percentile is within 1/64 (1.6%) of
 * the true value whatever the range, without keeping samples.
 */
#ifndef XD_HISTOGRAM_H
#define XD_HISTOGRAM_H

#include <stdint.h>

#define XD_HIST_SUB_BITS 6
#define XD_HIST_SUB      (1u << XD_HIST_SUB_BITS)
#define XD_HIST_BUCKETS  ((64 - XD_HIST_SUB_BITS) * XD_HIST_SUB)

struct xd_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t min;
    uint64_t bucket[XD_HIST_BUCKETS];
};

void xd_hist_merge(struct xd_hist *into, const struct xd_hist *from);
/* out = now - before, for the figures of an interval; before must be an
 * earlier state of the same histogram. min and max are bucket bounds. */
void xd_hist_diff(struct xd_hist *out, const struct xd_hist *now, const struct xd_hist *before);
/* The value at percentile p (0..100): the midpoint of the bucket holding it. */
uint64_t xd_hist_percentile(const struct xd_hist *h, double p);
double xd_hist_mean(const struct xd_hist *h);
/* The [low, high) range a bucket covers. */
void xd_hist_range(unsigned index, uint64_t *low, uint64_t *high);

/* Bucket of a value: exact below 128, then 64 linear steps per power of two.
 * Inline, with xd_hist_record, because they run on every completion. */
static inline unsigned xd_hist_index(uint64_t v)
{
    if (v < 2 * XD_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - XD_HIST_SUB_BITS;
    return (msb - XD_HIST_SUB_BITS + 1) * XD_HIST_SUB + (unsigned)((v >> shift) - XD_HIST_SUB);
}

static inline void xd_hist_record(struct xd_hist *h, uint64_t v)
{
    if (v < h->min || !h->count)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->bucket[xd_hist_index(v)]++;
}

#endif
