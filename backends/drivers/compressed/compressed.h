/* compressed.h - private to the compressed driver (backends/drivers/compressed/):
 * the structs its files share (the device, an open container, a thread's
 * scratch, the space figures), its counters, its OFD lock bytes, and the
 * functions one of its files calls in another. Nothing outside this
 * directory includes it; the driver's face to the library is xd_compress_ops
 * and xd_compress_prepare / xd_compress_logical_size (core/xd_internal.h).
 *
 *   compressed.c  the ops table, device open/close, control, the data path
 *                 (requests split into chunks, run inline or on the worker
 *                 pool, read-ahead)
 *   files.c       container files: prepare, open, checks, map scan and
 *                 repair, close, growth; the per-path figures kept between
 *                 opens
 *   chunk.c       one chunk: map entries, per-thread scratch, decode (with
 *                 retry and reuse), encode and store, read-modify-write
 *   decoded_cache.c  whole decoded chunks kept for later reads, each valid
 *                 while the map names its generation (compress_cache_size)
 *   report.c      what the driver reports: stats JSON and the data-error line
 *   container.c   the on-disk format, pure functions over bytes (fuzzed)
 *   codec.c       the codecs behind one interface
 */
#ifndef XD_COMPRESSED_H
#define XD_COMPRESSED_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../core/readahead.h"
#include "../../core/xd_internal.h"
#include "codec.h"
#include "container.h"

/* OFD lock bytes, far beyond any container's data (locks may lie past EOF). */
#define XD_LOCK_BASE (1ll << 62)
#define XD_LOCK_HEADER (XD_LOCK_BASE - 1) /* creation and growth */
#define XD_LOCK_USERS (XD_LOCK_BASE - 2)  /* read-held by every opener */

#define STRIPES 64

enum ctr_count {
    C_WRITES, C_RMW, C_ZERO, C_RAW, C_ENTROPY_SKIP, C_ADAPTIVE_SKIP, C_RECLAIMS,
    C_RECLAIMED_BYTES, C_STORED_WRITTEN, C_LOGICAL_WRITTEN, C_DECODED, C_REUSED,
    C_RETRIES, C_CORRUPT, C_RECOVERED_SLOTS, C_COUNT
};

/* What a container holds, from a scan of its map. */
struct ctr_space {
    uint64_t logical, stored, allocated, live_logical;
    uint64_t chunks[XD_ALGO_COUNT];
    /* map entries that fail their check (not counted above), the first's
     * chunk and what is wrong with it: their chunks read EIO */
    uint64_t bad_entries, first_bad;
    char bad_why[300];
};

struct ctr_file {
    int fd;
    /* The container mapped read-only as it was when opened: reads of map
     * entries and stored chunks come from the page cache without a copy or
     * a syscall. Beyond map_len (grown since) they fall back to pread. */
    const uint8_t *map;
    uint64_t map_len;
    uint64_t id; /* tells apart files that reuse a freed address */
    const char *path;
    uint32_t chunk_size;
    /* version 2 or later: first writes go through a pending entry, so a
     * blank entry beside a slot holding the chunk is an erased one (EIO) */
    bool strict;
    /* the chunks whose blank entries the open's map scan found erased,
     * ascending: they read EIO until a whole-chunk write replaces them.
     * Looked for at open only: a look per read of a never-written chunk
     * (two lseeks) made those reads 3.5 times slower on the 2-vCPU EPYC VM */
    uint64_t *erased;
    size_t nerased;
    bool opening; /* the open's scan is running: it fills erased */
    _Atomic uint64_t logical_size;
    _Atomic uint64_t last_bad_chunk; /* explained already; UINT64_MAX: none */
    /* sequential readahead (core/readahead.h), per file since a pool's
     * threads share a stream */
    pthread_mutex_t ra_lock;
    struct xd_readahead ra;
    pthread_mutex_t stripe[STRIPES];
    struct ctr_file *next_open; /* compress_layer.open, under its space_lock */
};

/* Scratch of one thread: codec state, buffers, and the chunk it decoded
 * last (sequential 4k reads of one chunk decode it once). */
struct ctr_thread {
    struct xd_codec_ctx *codec;
    uint32_t buf_chunk; /* chunk size the buffers are sized for */
    uint8_t *merged, *stored, *decoded;
    uint64_t last_file, last_chunk, last_gen; /* what decoded holds; last_gen 0: nothing */
    uint32_t last_valid;                      /* bytes of it decoded (a prefix, for lz4) */
    bool last_cached; /* the decoded cache has that version already */
    /* adaptive compression: running ratio and back-off */
    double ewma;
    unsigned skip_left, backoff;
};

struct compress_layer {
    const struct xd_config *cfg;
    int algo;
    _Atomic int level; /* live: xd_reload stores, the pool's threads load */
    bool compress, adaptive;
    double keep_ratio; /* compressed/raw must be at most this to keep it */
    struct xd_workpool *pool; /* async modes */
    _Atomic uint64_t cost_ns[2]; /* running average of reads [0] and writes [1] */
    struct ctr_thread *inline_state;
    struct xd_dcache *dcache; /* decoded chunks; NULL when compress_cache_size=0 */
    _Atomic uint64_t count[C_COUNT];
    _Atomic uint64_t chunks_by_algo[XD_ALGO_COUNT];
    pthread_mutex_t space_lock; /* also guards error */
    char error[XD_ERRLEN];      /* the data error to explain; "" when none */
    struct closed_file *closed; /* what each container held when last closed */
    struct ctr_file *open;      /* containers open now, scanned for live stats */
};

/* fio closes and reopens a file between phases: the space figures are per
 * container, so the last close of each path counts, once. */
struct closed_file {
    struct closed_file *next;
    char *path;
    struct ctr_space space;
};

/* How xd_compress_container_scan treats the map: FIX punches stale data left in free
 * slots by a writer killed mid-update; EXACT only counts; both read an
 * entry that fails its check again (a writer in another process may be
 * halfway through it), then count it in bad_entries and leave its slots
 * alone (which one is live is unknown). LIVE counts a container others
 * may be writing (the pool's threads, other processes): an entry read torn
 * mid-rewrite is skipped, and a map still growing ends the walk early,
 * since a stats figure may lag a write in flight but a live scan must
 * never fail. */
enum scan_mode { SCAN_EXACT, SCAN_FIX, SCAN_LIVE };

static inline void count_add(struct compress_layer *c, enum ctr_count k, uint64_t v)
{
    atomic_fetch_add_explicit(&c->count[k], v, memory_order_relaxed);
}

static inline int ofd_lock(int fd, short type, off_t byte, bool wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* --- files.c --------------------------------------------------------------- */

int xd_compress_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                          uint64_t size, char *err, size_t errlen);
void xd_compress_file_close(struct xd_layer *layer, struct xd_file *file);
int64_t xd_compress_file_size(struct xd_layer *layer, struct xd_file *file);
int xd_compress_container_scan(struct compress_layer *c, struct ctr_file *f, struct ctr_space *sp,
                               enum scan_mode mode, char *err, size_t errlen);
int xd_compress_file_grow(struct compress_layer *c, struct ctr_file *f, uint64_t end);
uint64_t xd_compress_file_refresh_size(struct ctr_file *f);
uint64_t xd_compress_next_group_with_data(const struct ctr_file *f, uint64_t group,
                                          uint64_t ngroups);

/* --- chunk.c --------------------------------------------------------------- */

struct ctr_thread *xd_compress_thread_new(void);
void xd_compress_thread_free(struct ctr_thread *t);
int xd_compress_thread_buffers(struct ctr_thread *t, uint32_t chunk_size);
int xd_compress_chunk_read(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                           uint64_t chunk, uint32_t at, uint32_t len, uint8_t *dst);
int xd_compress_chunk_write(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                            uint64_t chunk, const uint8_t *src, uint32_t at, uint32_t len);
void xd_compress_readahead_window(struct ctr_file *f, uint64_t from, uint64_t to);
int xd_compress_erased_entry(struct ctr_file *f, uint64_t chunk, char *why, size_t whylen);
bool xd_compress_known_erased(const struct ctr_file *f, uint64_t chunk);
bool xd_compress_chunk_present(struct ctr_file *f, uint64_t chunk);

/* --- decoded_cache.c ------------------------------------------------------- */

struct xd_dcache;
struct xd_dcache_stats {
    uint64_t capacity, bytes, chunks, hits, misses, evictions, declined;
};
/* NULL for a budget of 0 (no cache) or without memory. */
struct xd_dcache *xd_dcache_new(uint64_t budget);
void xd_dcache_free(struct xd_dcache *dc);
/* Copy [at, at+len) of (file, chunk) to dst if the cache holds version gen
 * of it; a version other than gen is dropped. Counts a hit or a miss; on a
 * miss *cache_it (unless NULL) says whether the chunk, once decoded, should
 * be put here (admission: decoded_cache.c). */
bool xd_dcache_read(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                    uint32_t at, uint32_t len, void *dst, bool *cache_it);
/* Keep a copy of version gen of (file, chunk), size bytes, in place of any. */
void xd_dcache_put(struct xd_dcache *dc, uint64_t file, uint64_t chunk, uint64_t gen,
                   const void *data, uint32_t size);
void xd_dcache_drop(struct xd_dcache *dc, uint64_t file, uint64_t chunk);
void xd_dcache_drop_file(struct xd_dcache *dc, uint64_t file);
void xd_dcache_stats(struct xd_dcache *dc, struct xd_dcache_stats *st);

/* --- report.c -------------------------------------------------------------- */

struct xd_json;
int xd_compress_report_corrupt(struct compress_layer *c, struct ctr_file *f, uint64_t chunk,
                               const char *why);
int xd_compress_take_error(struct compress_layer *c, char *line);
void xd_compress_stats_json(struct compress_layer *c, struct xd_json *j);

#endif
