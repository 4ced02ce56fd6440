/* fiozipf.c - unit test of fio's zipf shares per block (core/fiozipf.c),
 * which xdcachesim's A0 replay rests on: they add up to 1, the bad
 * arguments fio refuses are refused, and draws made forward, the way fio's
 * zipf_next makes them (a uniform u, the two fixed slices, the closed
 * formula, the scatter), land on each block as often as its share says,
 * over a file whose block count is not a power of two. That fio makes its
 * draws this way is checked end to end (tests/e2e/test_cachesim.py: a
 * real fio run's most-read block has the share computed here). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "fiozipf.h"
#include "check.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_u32(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* One draw the forward way: the block fio reads for a uniform 32-bit r. */
static uint64_t draw(double theta, uint64_t n, double zetan, uint64_t rand_off)
{
    double zeta2 = 1.0 + pow(0.5, theta), u = (double)next_u32() / (double)UINT32_MAX;
    double alpha = 1.0 / (1.0 - theta);
    double eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    uint64_t rank;
    if (u * zetan < 1.0)
        rank = 1;
    else if (u * zetan < zeta2)
        rank = 2;
    else
        rank = 1 + (uint64_t)((double)n * pow(eta * u - eta + 1.0, alpha));
    return xd_fio_zipf_block(rank, rand_off, n);
}

static double sum_of(const double *p, uint64_t n)
{
    double s = 0;
    for (uint64_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

static void test_shares_add_up(void)
{
    static const double thetas[] = {0.2, 0.8, 1.1, 2.0};
    static const uint64_t sizes[] = {1, 2, 1000, 262144};
    double *p = malloc(262144 * sizeof(*p));
    for (unsigned i = 0; i < 4; i++) {
        for (unsigned j = 0; j < 4; j++) {
            CHECK(xd_fio_zipf_probs(thetas[i], sizes[j], 12345, p) == 0);
            double s = sum_of(p, sizes[j]);
            CHECK_MSG(fabs(s - 1.0) < 1e-9, "zipf:%.1f over %llu blocks: shares add up to %.12f",
                      thetas[i], (unsigned long long)sizes[j], s);
        }
    }
    /* rank 1 is the most likely block, at rand_off */
    CHECK(xd_fio_zipf_probs(1.1, 262144, 6725, p) == 0);
    for (uint64_t b = 0; b < 262144; b++)
        if (p[b] > p[6725])
            CHECK_MSG(0, "block %llu (%.6f) above rank 1's (%.6f)", (unsigned long long)b, p[b], p[6725]);
    free(p);
}

static void test_bad_arguments(void)
{
    double p[4];
    CHECK(xd_fio_zipf_probs(1.0, 4, 0, p) == -EINVAL); /* fio refuses zipf:1 */
    CHECK(xd_fio_zipf_probs(0.0, 4, 0, p) == -EINVAL);
    CHECK(xd_fio_zipf_probs(-0.5, 4, 0, p) == -EINVAL);
    CHECK(xd_fio_zipf_probs(NAN, 4, 0, p) == -EINVAL);
    CHECK(xd_fio_zipf_probs(INFINITY, 4, 0, p) == -EINVAL);
    CHECK(xd_fio_zipf_probs(1.1, 0, 0, p) == -EINVAL);
    CHECK(xd_fio_zipf_probs(1.1, XD_FIO_ZIPF_MAX_BLOCKS + 1, 0, p) == -EINVAL);
}

/* N forward draws over 1000 blocks: every block's count within six
 * binomial standard deviations (and one read) of its share. */
static void test_forward_draws(double theta)
{
    enum { BLOCKS = 1000, N = 2000000 };
    const uint64_t rand_off = 3141592653u;
    double p[BLOCKS], zetan = 0;
    uint32_t *count = calloc(BLOCKS, sizeof(*count));
    for (int i = 0; i < BLOCKS; i++)
        zetan += pow(1.0 / (i + 1), theta);
    CHECK(xd_fio_zipf_probs(theta, BLOCKS, rand_off, p) == 0);
    for (int i = 0; i < N; i++)
        count[draw(theta, BLOCKS, zetan, rand_off)]++;
    int off = 0;
    for (int b = 0; b < BLOCKS; b++) {
        double want = N * p[b], sd = sqrt(N * p[b] * (1 - p[b]));
        if (fabs(count[b] - want) > 6 * sd + 1 && off++ < 5)
            CHECK_MSG(0, "zipf:%.1f: block %d read %u times, its share says %.1f (sd %.1f)", theta,
                      b, count[b], want, sd);
    }
    CHECK_MSG(!off, "zipf:%.1f: %d of %d blocks off their share", theta, off, BLOCKS);
    free(count);
}

int main(void)
{
    test_shares_add_up();
    test_bad_arguments();
    test_forward_draws(1.1);
    test_forward_draws(0.8);
    test_forward_draws(0.3);
    return check_result();
}
