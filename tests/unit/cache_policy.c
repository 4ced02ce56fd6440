/* cache_policy.c - unit test of the cache policy's hit ratio, replayed
 * through the simulator (the layer's own policy code), as the share of the
 * gap between LRU and Belady's MIN it closes on fixed synthetic traces:
 * zipf:1.1 at least 0.5 and zipf:0.8 at least 0.48 (0.562 and 0.504 when
 * written; plain S3-FIFO, without the frequency sketch, closed 0.446 and
 * 0.385), and a reader mixed with a scanner better than LRU by at least 0.7
 * of the gap (0.806; plain S3-FIFO 0.541). Deterministic (a fixed xorshift
 * seed) and quick. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "cachepolicy.h"
#include "cachesim.h"
#include "check.h"

#define ITEMS 20000  /* the zipf reader's blocks */
#define CAPACITY 2000 /* cache blocks: 10% of them */
#define READS 600000  /* 30 passes' worth: long enough that warm-up is not the result */

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* The cumulative zipf(theta) distribution over ranks 0..ITEMS-1. */
static double *zipf_cdf(double theta)
{
    double *cdf = malloc(ITEMS * sizeof(*cdf)), sum = 0;
    for (int r = 0; r < ITEMS; r++)
        sum += cdf[r] = 1.0 / pow(r + 1, theta);
    double acc = 0;
    for (int r = 0; r < ITEMS; r++)
        cdf[r] = (acc += cdf[r]) / sum;
    return cdf;
}

static uint32_t zipf_draw(const double *cdf)
{
    double u = (double)(next_rand() >> 11) / (double)(1ull << 53);
    int lo = 0, hi = ITEMS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* ranks spread over the ids, as fio hashes zipf ranks to offsets */
    return (uint32_t)(((uint64_t)lo * 7919) % ITEMS);
}

struct ratios {
    double lru, s3fifo, min;
};

static struct ratios replay(const uint32_t *ids, size_t n, uint32_t nids)
{
    uint8_t *ops = calloc(n, 1); /* all reads */
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = n, .nids = nids};
    struct xd_sim_result lru, s3, min;
    CHECK(xd_sim_policy(&t, XD_CP_LRU, CAPACITY, &lru) == 0);
    CHECK(xd_sim_policy(&t, XD_CP_S3FIFO, CAPACITY, &s3) == 0);
    CHECK(xd_sim_min(&t, CAPACITY, &min) == 0);
    free(ops);
    return (struct ratios){(double)lru.hits / n, (double)s3.hits / n, (double)min.hits / n};
}

static double gap_closed(struct ratios r)
{
    return (r.s3fifo - r.lru) / (r.min - r.lru);
}

static void test_zipf(double theta, double want)
{
    double *cdf = zipf_cdf(theta);
    uint32_t *ids = malloc(READS * sizeof(*ids));
    for (size_t i = 0; i < READS; i++)
        ids[i] = zipf_draw(cdf);
    struct ratios r = replay(ids, READS, ITEMS);
    CHECK_MSG(r.min > r.lru && gap_closed(r) >= want,
              "zipf:%.1f: lru %.4f s3fifo %.4f min %.4f: closes %.3f of the gap", theta, r.lru,
              r.s3fifo, r.min, gap_closed(r));
    free(ids);
    free(cdf);
}

/* A zipf:1.1 reader and a scanner reading 5x the cache's blocks in order,
 * again and again, one read each in turn: the scan's blocks are never read
 * again before LRU has dropped them, and only push the reader's out. */
static void test_reader_scanner(void)
{
    enum { SCAN = 5 * CAPACITY };
    double *cdf = zipf_cdf(1.1);
    uint32_t *ids = malloc(READS * sizeof(*ids));
    for (size_t i = 0; i < READS; i++)
        ids[i] = i % 2 ? ITEMS + (uint32_t)(i / 2 % SCAN) : zipf_draw(cdf);
    struct ratios r = replay(ids, READS, ITEMS + SCAN);
    CHECK_MSG(r.s3fifo > r.lru && gap_closed(r) >= 0.7,
              "reader+scanner: lru %.4f s3fifo %.4f min %.4f: closes %.3f of the gap", r.lru,
              r.s3fifo, r.min, gap_closed(r));
    free(ids);
    free(cdf);
}

int main(void)
{
    test_zipf(1.1, 0.5);
    test_zipf(0.8, 0.48);
    test_reader_scanner();
    return check_result();
}
