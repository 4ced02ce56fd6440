/* histogram.c - log-linear latency histogram; see histogram.h for the layout. */
#include "histogram.h"

#include <string.h>

void xd_hist_range(unsigned index, uint64_t *low, uint64_t *high)
{
    if (index < 2 * XD_HIST_SUB) {
        *low = index;
        *high = index + 1;
        return;
    }
    unsigned group = index / XD_HIST_SUB; /* >= 2 */
    unsigned shift = group - 1;
    uint64_t sub = index % XD_HIST_SUB + XD_HIST_SUB;
    *low = sub << shift;
    *high = (sub + 1) << shift;
}

void xd_hist_merge(struct xd_hist *into, const struct xd_hist *from)
{
    if (!from->count)
        return;
    if (!into->count || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
    for (unsigned i = 0; i < XD_HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
}

uint64_t xd_hist_percentile(const struct xd_hist *h, double p)
{
    if (!h->count)
        return 0;
    /* rank of the sample at percentile p, 1-based, as fio computes it */
    uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < XD_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t low, high;
            xd_hist_range(i, &low, &high);
            uint64_t mid = low + (high - low) / 2;
            /* never report beyond what was seen */
            return mid > h->max ? h->max : mid < h->min ? h->min : mid;
        }
    }
    return h->max;
}

double xd_hist_mean(const struct xd_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

void xd_hist_diff(struct xd_hist *out, const struct xd_hist *now, const struct xd_hist *before)
{
    memset(out, 0, sizeof(*out));
    out->count = now->count - before->count;
    out->sum = now->sum - before->sum;
    unsigned first = XD_HIST_BUCKETS, last = 0;
    for (unsigned i = 0; i < XD_HIST_BUCKETS; i++) {
        out->bucket[i] = now->bucket[i] - before->bucket[i];
        if (out->bucket[i]) {
            first = first < i ? first : i;
            last = i;
        }
    }
    if (!out->count)
        return;
    /* the extremes of an interval are known to a bucket, clamped to the
     * extremes seen overall */
    uint64_t low, high;
    xd_hist_range(first, &low, &high);
    out->min = low > now->min ? low : now->min;
    xd_hist_range(last, &low, &high);
    out->max = high - 1 < now->max ? high - 1 : now->max;
}
