/* histogram.c - unit test of the log-linear latency histogram: bucket edges,
 * percentile accuracy against exact answers, and merging. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "histogram.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_buckets(void)
{
    /* every value falls inside the range of its bucket, and buckets tile */
    uint64_t prev_high = 0;
    for (unsigned i = 0; i < XD_HIST_BUCKETS; i++) {
        uint64_t low, high;
        xd_hist_range(i, &low, &high);
        CHECK_MSG(low == prev_high, "bucket %u starts at %llu, previous ended at %llu", i,
                  (unsigned long long)low, (unsigned long long)prev_high);
        prev_high = high;
        if (i == XD_HIST_BUCKETS - 1)
            break;
    }
    uint64_t samples[] = {0, 1, 127, 128, 129, 1000, 4095, 4096, 123456789, UINT64_MAX / 2};
    for (unsigned i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        uint64_t low, high;
        unsigned idx = xd_hist_index(samples[i]);
        CHECK(idx < XD_HIST_BUCKETS);
        xd_hist_range(idx, &low, &high);
        CHECK(samples[i] >= low && samples[i] < high);
    }
}

static void test_percentiles(void)
{
    enum { N = 100000 };
    static uint64_t v[N];
    struct xd_hist *h = calloc(1, sizeof(*h));
    srand(7);
    for (unsigned i = 0; i < N; i++) {
        /* a long-tailed mix, as latencies are */
        v[i] = 1000 + (uint64_t)rand() % 5000 + ((i % 100) == 0 ? (uint64_t)rand() % 10000000 : 0);
        xd_hist_record(h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    double ps[] = {50, 90, 99, 99.9, 99.99};
    for (unsigned i = 0; i < 5; i++) {
        uint64_t exact = v[(size_t)(ps[i] / 100.0 * N + 0.5) - 1];
        uint64_t got = xd_hist_percentile(h, ps[i]);
        double err = got > exact ? (double)(got - exact) / exact : (double)(exact - got) / exact;
        CHECK_MSG(err < 0.02, "p%g: %llu vs exact %llu", ps[i], (unsigned long long)got,
                  (unsigned long long)exact);
    }
    CHECK(h->min == v[0] && h->max == v[N - 1] && h->count == N);
    free(h);
}

static void test_merge(void)
{
    struct xd_hist *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *all = calloc(1, sizeof(*all));
    for (uint64_t i = 1; i <= 1000; i++) {
        xd_hist_record(i % 2 ? a : b, i * 37);
        xd_hist_record(all, i * 37);
    }
    xd_hist_merge(a, b);
    CHECK(a->count == all->count && a->sum == all->sum && a->min == all->min && a->max == all->max);
    CHECK(!memcmp(a->bucket, all->bucket, sizeof(a->bucket)));
    CHECK(xd_hist_percentile(a, 99) == xd_hist_percentile(all, 99));
    struct xd_hist *empty = calloc(1, sizeof(*empty));
    CHECK(xd_hist_percentile(empty, 50) == 0 && xd_hist_mean(empty) == 0);
    free(a);
    free(b);
    free(all);
    free(empty);
}

/* An interval (now - before) has the percentiles of the values recorded
 * in between, as if they had been recorded alone. */
static void test_diff(void)
{
    static struct xd_hist before, now, alone, diff;
    for (uint64_t v = 1; v <= 5000; v++) {
        xd_hist_record(&now, v * 7);
        xd_hist_record(&before, v * 7);
    }
    for (uint64_t v = 1; v <= 3000; v++) {
        xd_hist_record(&now, 100000 + v * 131);
        xd_hist_record(&alone, 100000 + v * 131);
    }
    xd_hist_diff(&diff, &now, &before);
    CHECK(diff.count == 3000 && diff.sum == alone.sum);
    CHECK(!memcmp(diff.bucket, alone.bucket, sizeof(diff.bucket)));
    double pcts[] = {1, 50, 90, 99, 99.9};
    for (unsigned i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        CHECK_MSG(xd_hist_percentile(&diff, pcts[i]) == xd_hist_percentile(&alone, pcts[i]),
                  "p%g: %llu vs %llu", pcts[i], (unsigned long long)xd_hist_percentile(&diff, pcts[i]),
                  (unsigned long long)xd_hist_percentile(&alone, pcts[i]));
    /* min and max are within the buckets of the true ones */
    CHECK(diff.min <= alone.min && xd_hist_index(diff.min) == xd_hist_index(alone.min));
    CHECK(diff.max >= alone.max && xd_hist_index(diff.max) == xd_hist_index(alone.max));
    xd_hist_diff(&diff, &now, &now);
    CHECK(diff.count == 0 && xd_hist_percentile(&diff, 50) == 0);
}

int main(void)
{
    test_buckets();
    test_percentiles();
    test_merge();
    test_diff();
    return check_result();
}
