/* cache_policy.c - unit test of the cache policy's hit ratio, replayed
 * through the simulator (the layer's own policy code), as the share of the
 * gap between LRU and Belady's MIN it closes on fixed synthetic traces:
 * zipf:1.1 at least 0.5 and zipf:0.8 at least 0.48 (0.562 and 0.504 when
 * written; plain S3-FIFO, without the frequency sketch, closed 0.446 and
 * 0.385), and a reader mixed with a scanner better than LRU by at least 0.7
 * of the gap (0.806; plain S3-FIFO 0.541). Deterministic (a fixed xorshift
 * seed) and quick.
 *
 * Also the simulator's perfect LFU, the reference `make perf` prints beside
 * the engine: exact hits on short hand-worked traces (counts, ties to the
 * least recent, trims, writes), the same hits as a naive quadratic replay
 * on a zipf trace long enough to compact its heap many times, and on the
 * zipf traces a share of the gap between LRU's and MIN's; and its A0,
 * which knows each block's probability: exact hits on a hand-worked trace
 * (bypass, trims, writes), and between perfect LFU and MIN on the zipf
 * traces. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "cachepolicy.h"
#include "cachesim.h"
#include "hash.h"
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
    double lru, s3fifo, lfu, min;
};

static struct ratios replay(const uint32_t *ids, size_t n, uint32_t nids)
{
    uint8_t *ops = calloc(n, 1); /* all reads */
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = n, .nids = nids};
    struct xd_sim_result lru, s3, lfu, min;
    CHECK(xd_sim_policy(&t, XD_CP_LRU, CAPACITY, &lru) == 0);
    CHECK(xd_sim_policy(&t, XD_CP_S3FIFO, CAPACITY, &s3) == 0);
    CHECK(xd_sim_lfu(&t, CAPACITY, &lfu) == 0);
    CHECK(xd_sim_min(&t, CAPACITY, &min) == 0);
    free(ops);
    return (struct ratios){(double)lru.hits / n, (double)s3.hits / n, (double)lfu.hits / n,
                           (double)min.hits / n};
}

static double share_of_gap(struct ratios r, double hit_ratio)
{
    return (hit_ratio - r.lru) / (r.min - r.lru);
}

static double gap_closed(struct ratios r)
{
    return share_of_gap(r, r.s3fifo);
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
    /* counting every read learns a stationary zipf: well past LRU, short
     * of MIN, which knows the future */
    CHECK_MSG(share_of_gap(r, r.lfu) > 0.3 && r.lfu < r.min,
              "zipf:%.1f: lru %.4f perfect lfu %.4f min %.4f", theta, r.lru, r.lfu, r.min);
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

/* Perfect LFU's hits on reads of ids (cap blocks); ops NULL: all reads. */
static uint64_t lfu_hits(const uint32_t *ids, const uint8_t *ops, size_t n, uint32_t nids,
                         uint32_t cap)
{
    uint8_t *reads = ops ? NULL : calloc(n, 1);
    struct xd_sim_trace t = {.ids = ids, .ops = ops ? ops : reads, .n = n, .nids = nids};
    struct xd_sim_result r = {0};
    CHECK(xd_sim_lfu(&t, cap, &r) == 0);
    free(reads);
    return r.hits;
}

static void test_lfu_by_hand(void)
{
    /* 1 and 2 enter once each while 0 has three reads: each evicts the
     * other, 0 stays (LRU would keep 1 and 2 and hit 4 times) */
    static const uint32_t counts[] = {0, 0, 0, 1, 2, 1, 2, 0};
    CHECK(lfu_hits(counts, NULL, 8, 3, 2) == 3);
    /* equal counts: the least recent goes (0), so 1 hits */
    static const uint32_t ties[] = {0, 1, 2, 1};
    CHECK(lfu_hits(ties, NULL, 4, 3, 2) == 1);
    /* a trimmed block misses again; a write fills without a hit */
    static const uint32_t ids[] = {0, 0, 0, 0, 1, 1};
    static const uint8_t ops[] = {XD_TRACE_READ, XD_TRACE_READ, XD_TRACE_TRIM,
                                  XD_TRACE_READ, XD_TRACE_WRITE, XD_TRACE_READ};
    CHECK(lfu_hits(ids, ops, 6, 2, 4) == 2);
}

/* Perfect LFU the slow way: a scan of the residents for the least counted,
 * then the least recent, on every miss with the cache full. */
static uint64_t naive_lfu_hits(const uint32_t *ids, size_t n, uint32_t nids, uint32_t cap)
{
    uint32_t *count = calloc(nids, sizeof(*count)), *last = calloc(nids, sizeof(*last));
    uint32_t *res = malloc(cap * sizeof(*res)), nres = 0;
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i], j = 0;
        while (j < nres && res[j] != id)
            j++;
        if (j < nres) {
            hits++;
        } else if (nres < cap) {
            res[nres++] = id;
        } else {
            uint32_t v = 0;
            for (uint32_t k = 1; k < nres; k++)
                if (count[res[k]] < count[res[v]] ||
                    (count[res[k]] == count[res[v]] && last[res[k]] < last[res[v]]))
                    v = k;
            res[v] = id;
        }
        count[id]++;
        last[id] = (uint32_t)i;
    }
    free(count);
    free(last);
    free(res);
    return hits;
}

/* 60000 reads at 200 blocks: the heap compacts every few thousand hits. */
static void test_lfu_matches_naive(void)
{
    enum { N = 60000, CAP = 200 };
    double *cdf = zipf_cdf(0.8);
    uint32_t *ids = malloc(N * sizeof(*ids));
    for (size_t i = 0; i < N; i++)
        ids[i] = zipf_draw(cdf);
    uint64_t fast = lfu_hits(ids, NULL, N, ITEMS, CAP), slow = naive_lfu_hits(ids, N, ITEMS, CAP);
    CHECK_MSG(fast == slow && fast > 0, "perfect lfu %llu hits, the naive replay %llu",
              (unsigned long long)fast, (unsigned long long)slow);
    free(ids);
    free(cdf);
}

/* Two blocks read in turn, n times, through S3-FIFO of `capacity` blocks
 * split into `shards` as the cache layer splits it: the hits. */
static uint64_t alternate(uint32_t a, uint32_t b, uint32_t capacity, uint32_t shards)
{
    enum { N = 100 };
    uint32_t ids[N];
    uint8_t ops[N] = {0}; /* reads */
    for (int i = 0; i < N; i++)
        ids[i] = i % 2 ? b : a;
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = N, .nids = (a > b ? a : b) + 1};
    struct xd_sim_result r;
    CHECK(xd_sim_policy_sharded(&t, XD_CP_S3FIFO, capacity, shards, &r) == 0);
    CHECK(r.reads == N);
    return r.hits;
}

/* The replay splits the cache as the layer does (xdcachesim's
 * s3fifo-sharded): 4 blocks in 4 shards hold one block each, so two blocks
 * read in turn keep each other out when their hashes pick one shard, and
 * both stay when they pick two, or when the 4 blocks are one policy. */
static void test_sharded(void)
{
    uint32_t a = 0, same = 1, other = 1;
    while (xd_hash_mix(same, 1) % 4 != xd_hash_mix(a, 1) % 4)
        same++;
    while (xd_hash_mix(other, 1) % 4 == xd_hash_mix(a, 1) % 4)
        other++;
    CHECK(alternate(a, same, 4, 1) == 98); /* one policy: both stay after their first read */
    CHECK_MSG(alternate(a, same, 4, 4) == 0, "%llu", (unsigned long long)alternate(a, same, 4, 4));
    CHECK(alternate(a, other, 4, 4) == 98);
    uint32_t id = 0;
    uint8_t op = 0;
    struct xd_sim_trace one = {.ids = &id, .ops = &op, .n = 1, .nids = 1};
    struct xd_sim_result r;
    CHECK(xd_sim_policy_sharded(&one, XD_CP_S3FIFO, 4, 8, &r) == -EINVAL); /* no shard of 0 blocks */
}

/* A0 keeps the most probable blocks it has seen: a less probable one is
 * not kept over them, a trim makes room, a write is considered but not
 * counted. Probabilities 0.5, 0.3, 0.2 for ids 0, 1, 2; 2 blocks. */
static void test_a0_by_hand(void)
{
    static const double prob[] = {0.5, 0.3, 0.2};
    static const uint32_t ids[] = {2, 1, 0, 2, 1, 0, 1, 2, 2, 1, 2, 2};
    static const uint8_t ops[] = {XD_TRACE_READ, XD_TRACE_READ, XD_TRACE_READ, XD_TRACE_READ,
                                  XD_TRACE_READ, XD_TRACE_READ, XD_TRACE_TRIM, XD_TRACE_READ,
                                  XD_TRACE_READ, XD_TRACE_READ, XD_TRACE_WRITE, XD_TRACE_READ};
    /* 2, 1 fill; 0 evicts 2; 2 is not kept; 1, 0 hit; the trim of 1 makes
     * room for 2, which hits; 1 evicts 2; the write of 2 and its read miss */
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = 12, .nids = 3};
    struct xd_sim_result r;
    CHECK(xd_sim_a0(&t, prob, 2, &r) == 0);
    CHECK_MSG(r.reads == 10 && r.hits == 3, "a0: %llu reads, %llu hits; want 10 and 3",
              (unsigned long long)r.reads, (unsigned long long)r.hits);
    CHECK(xd_sim_a0(&t, prob, 0, &r) == 0 && r.hits == 0);
}

/* On independent zipf draws A0, which knows each block's probability, does
 * better than perfect LFU, which learns them by counting, and no better
 * than MIN, which knows the future. */
static void test_a0_between_lfu_and_min(double theta)
{
    double *cdf = zipf_cdf(theta), *prob = calloc(ITEMS, sizeof(*prob));
    for (uint32_t rank = 0; rank < ITEMS; rank++) /* the id zipf_draw gives the rank */
        prob[(uint64_t)rank * 7919 % ITEMS] = cdf[rank] - (rank ? cdf[rank - 1] : 0);
    uint32_t *ids = malloc(READS * sizeof(*ids));
    for (size_t i = 0; i < READS; i++)
        ids[i] = zipf_draw(cdf);
    struct ratios r = replay(ids, READS, ITEMS);
    uint8_t *ops = calloc(READS, 1);
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = READS, .nids = ITEMS};
    struct xd_sim_result a0;
    CHECK(xd_sim_a0(&t, prob, CAPACITY, &a0) == 0);
    double a0_ratio = (double)a0.hits / READS;
    CHECK_MSG(a0_ratio > r.lfu && a0_ratio < r.min, "zipf:%.1f: perfect lfu %.4f a0 %.4f min %.4f",
              theta, r.lfu, a0_ratio, r.min);
    free(ops);
    free(ids);
    free(prob);
    free(cdf);
}

int main(void)
{
    test_a0_by_hand();
    test_a0_between_lfu_and_min(1.1);
    test_a0_between_lfu_and_min(0.8);
    test_sharded();
    test_lfu_by_hand();
    test_lfu_matches_naive();
    test_zipf(1.1, 0.5);
    test_zipf(0.8, 0.48);
    test_reader_scanner();
    return check_result();
}
