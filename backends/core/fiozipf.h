/* fiozipf.h - the exact probability with which fio's zipf generator
 * (random_distribution=zipf:THETA, fio 3.33 lib/zipf.c) reads each block of
 * a file, for xdcachesim's A0 replay: the best hit ratio a policy that does
 * not see the future can expect on such a run (see cachesim.h).
 *
 * fio draws a uniform u from its 32-bit generator and turns it into a rank
 * (Gray et al.'s approximation of zipf: ranks 1 and 2 from fixed slices of
 * u, the others from a closed formula, so the shares are not exactly
 * 1 / rank^THETA), then scatters the rank over the file: block =
 * (rank - 1) * GOLDEN_RATIO_64 + rand_off, modulo the number of blocks,
 * with rand_off drawn per job. Each rank's share of u is computed here from
 * the same formula, so the shares are fio's, not the zipf law's.
 */
#ifndef XD_FIOZIPF_H
#define XD_FIOZIPF_H

#include <stdint.h>

/* The most blocks xd_fio_zipf_probs takes (a double each: 2 GiB). */
#define XD_FIO_ZIPF_MAX_BLOCKS (1ull << 28)

/* The block fio reads for rank (1 = the most probable) over nblocks blocks,
 * with rand_off (only rand_off modulo nblocks matters, but for a carry
 * past 2^64 fio makes about once in 2^32 ranks, which this ignores). */
uint64_t xd_fio_zipf_block(uint64_t rank, uint64_t rand_off, uint64_t nblocks);

/* prob[b] for every block b < nblocks: the share of fio's zipf:theta draws
 * that read block b. theta > 0 and not 1 (as fio requires), 1 <= nblocks
 * <= XD_FIO_ZIPF_MAX_BLOCKS. 0 or -EINVAL. */
int xd_fio_zipf_probs(double theta, uint64_t nblocks, uint64_t rand_off, double *prob);

#endif
