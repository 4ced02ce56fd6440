/* cachesim.h - the block access trace (trace=FILE) and its replay.
 *
 * The cache layer appends one record per cache block a request touches;
 * xdcachesim (and the unit test) replay a trace through the same policy code
 * the layer evicts with, and through Belady's MIN, the offline optimum.
 *
 * A trace file is a sequence of 16-byte records in host byte order. Every
 * writer (each device that opens the trace) first appends a header record,
 * so files appended to by several jobs stay self-describing:
 *   header: file = XD_TRACE_MAGIC, word = block_size << 2 | XD_TRACE_HEADER
 *   access: file = the file's id (its st_dev, st_ino, and whether the data
 *           is the compressed type's logical view, hashed: the same file has
 *           the same id in every process), word = block << 2 | op
 */
#ifndef XD_CACHESIM_H
#define XD_CACHESIM_H

#include <stddef.h>
#include <stdint.h>

#define XD_TRACE_MAGIC 0x3145434152544458ull /* "XDTRACE1" read as little-endian */

enum xd_trace_op { XD_TRACE_READ, XD_TRACE_WRITE, XD_TRACE_TRIM, XD_TRACE_HEADER };

struct xd_trace_rec {
    uint64_t file;
    uint64_t word;
};

static inline struct xd_trace_rec xd_trace_make(uint64_t file, uint64_t block, unsigned op)
{
    return (struct xd_trace_rec){.file = file, .word = block << 2 | op};
}

/* A replay: accesses to dense ids 0..nids-1 with their op. Reads count as
 * hits or misses; a write makes its block resident (as the layer inserts
 * written blocks) without counting; a trim drops it (the layer traces a
 * write-through write it sends around the cache as trims). */
struct xd_sim_trace {
    const uint32_t *ids;
    const uint8_t *ops; /* enum xd_trace_op */
    size_t n;
    uint32_t nids;
};

struct xd_sim_result {
    uint64_t reads, hits;
};

/* Replay with an xd_cp policy (enum xd_cp_kind) of capacity blocks. 0 or -ENOMEM. */
int xd_sim_policy(const struct xd_sim_trace *t, int kind, uint32_t capacity,
                  struct xd_sim_result *out);
/* The same policy split as the cache layer splits it: nshards policies of
 * capacity / nshards blocks each, every block in the one its hash picks.
 * nshards <= 1 is xd_sim_policy. 0, -EINVAL (fewer blocks than shards)
 * or -ENOMEM. */
int xd_sim_policy_sharded(const struct xd_sim_trace *t, int kind, uint32_t capacity,
                          uint32_t nshards, struct xd_sim_result *out);
/* Replay with perfect LFU (Breslau et al.'s "Perfect-LFU"): every block's
 * accesses are counted from the start of the trace, evicted or not, and a
 * miss evicts the resident counted least (the least recently used among
 * equals). Online, with unbounded memory for the counts: on independent
 * draws (fio's zipf and pareto reads) it learns the most probable blocks
 * as fast as counting can, which is what the layer's frequency sketch
 * approximates in bounded memory; MIN, which knows the future, is beyond
 * any online policy. capacity >= 1. 0, -E2BIG (a trace of 2^32 accesses
 * or more) or -ENOMEM. */
int xd_sim_lfu(const struct xd_sim_trace *t, uint32_t capacity, struct xd_sim_result *out);
/* Replay with A0 (Aho, Denning and Ullman, 1971) given each block's true
 * probability prob[id]: keep the capacity most probable blocks seen so
 * far (a block less probable than every resident one is not kept; ties by
 * id). When the trace's accesses are independent draws with those
 * probabilities (fio's zipf reads: fiozipf.h), no policy that does not see
 * the future can expect more hits: each read hits with the summed
 * probability of what is resident, and this keeps the most probable of
 * what can be resident. Unlike perfect LFU it knows the probabilities
 * rather than learning them by counting, so the distance between the two
 * is the price of learning. 0, -E2BIG (2^32 ids or more) or -ENOMEM. */
int xd_sim_a0(const struct xd_sim_trace *t, const double *prob, uint32_t capacity,
              struct xd_sim_result *out);
/* Replay with Belady's MIN: on a miss with the cache full, evict the
 * resident block whose next access is furthest away (next-use times come
 * from one backward pass). Every access that misses is inserted, as the
 * other policies do, so MIN bounds them. 0 or -ENOMEM. */
int xd_sim_min(const struct xd_sim_trace *t, uint32_t capacity, struct xd_sim_result *out);

#endif
