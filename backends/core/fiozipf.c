/* fiozipf.c - fio's zipf generator's share of reads per block (see fiozipf.h). */
#include "fiozipf.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define FIO_GOLDEN_RATIO_64 0x61C8864680B583EBull /* fio's __hash_u64 multiplier */
#define FIO_ZIPF_MAX_GEN 10000000ull /* fio sums zeta(n) over at most this many terms */

uint64_t xd_fio_zipf_block(uint64_t rank, uint64_t rand_off, uint64_t nblocks)
{
    uint64_t h = (rank - 1) * FIO_GOLDEN_RATIO_64; /* wraps, as fio's does */
    return (h % nblocks + rand_off % nblocks) % nblocks;
}

/* fio's constants for n ranges (zipf_init, zipf_next) */
struct fio_zipf {
    double n, theta, zetan, zeta2, alpha, eta;
};

static struct fio_zipf fio_zipf_init(double theta, uint64_t n)
{
    struct fio_zipf z = {.n = (double)n, .theta = theta};
    uint64_t terms = n < FIO_ZIPF_MAX_GEN ? n : FIO_ZIPF_MAX_GEN;
    for (uint64_t i = 0; i < terms; i++)
        z.zetan += pow(1.0 / (double)(i + 1), theta);
    z.zeta2 = pow(1.0, theta) + pow(0.5, theta);
    z.alpha = 1.0 / (1.0 - theta);
    z.eta = (1.0 - pow(2.0 / z.n, 1.0 - theta)) / (1.0 - z.zeta2 / z.zetan);
    return z;
}

/* The u at which fio's formula n * (eta * u - eta + 1)^alpha reaches x
 * (it rises with u for every theta: alpha and eta share their sign),
 * clipped to [lo, 1], the slice of u the formula serves. */
static double formula_u(const struct fio_zipf *z, double x, double lo)
{
    double u = 1.0 - (1.0 - pow(x / z->n, 1.0 / z->alpha)) / z->eta;
    return isnan(u) || u < lo ? lo : u > 1.0 ? 1.0 : u;
}

int xd_fio_zipf_probs(double theta, uint64_t nblocks, uint64_t rand_off, double *prob)
{
    if (!(theta > 0) || theta == 1.0 || !isfinite(theta) || !nblocks ||
        nblocks > XD_FIO_ZIPF_MAX_BLOCKS)
        return -EINVAL;
    struct fio_zipf z = fio_zipf_init(theta, nblocks);
    memset(prob, 0, nblocks * sizeof(*prob));
    /* u * zetan < 1: rank 1; < zeta2: rank 2; else the formula gives
     * rank 1 + floor(n * (...)^alpha), up to n + 1 at u = 1 */
    double first = 1.0 / z.zetan, formula_lo = z.zeta2 / z.zetan;
    prob[xd_fio_zipf_block(1, rand_off, nblocks)] += first < 1.0 ? first : 1.0;
    if (formula_lo > first)
        prob[xd_fio_zipf_block(2, rand_off, nblocks)] += (formula_lo < 1.0 ? formula_lo : 1.0) - first;
    for (uint64_t rank = 1; rank <= nblocks + 1; rank++) {
        double share = formula_u(&z, (double)rank, formula_lo) -
                       formula_u(&z, (double)(rank - 1), formula_lo);
        if (share > 0)
            prob[xd_fio_zipf_block(rank, rand_off, nblocks)] += share;
    }
    return 0;
}
