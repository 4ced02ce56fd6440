/* chunk.c - one chunk of a container: its map entry, a thread's scratch,
 * reading a version (decode straight from the mapping, reuse of the chunk
 * a thread decoded last, retry when a writer flips the entry meanwhile,
 * EIO when it is corrupt) and writing one (entropy and adaptive skips,
 * encode, store in the free slot, flip, punch the old one), whole or by
 * read-modify-write under the chunk's locks. Separate from the data path
 * (compressed.c), which splits requests into chunks and decides where they
 * run, because this is the part that knows the slots and the versions.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../core/crc32c.h"
#include "../../core/fdio.h"
#include "../../core/zero.h"
#include "compressed.h"

#define READ_RETRIES 8
#define ENTRY_SETTLE_NS (50 * 1000000ull)
#define ENTRY_NAP_NS 50000

/* Bits per byte above which a sampled chunk is taken as incompressible. */
#define ENTROPY_SKIP_BITS 7.5

/* --- locks ------------------------------------------------------------------ */

static void chunk_lock(struct ctr_file *f, uint64_t chunk)
{
    pthread_mutex_lock(&f->stripe[chunk % STRIPES]);
    ofd_lock(f->fd, F_WRLCK, XD_LOCK_BASE + (off_t)chunk, true);
}

static void chunk_unlock(struct ctr_file *f, uint64_t chunk)
{
    ofd_lock(f->fd, F_UNLCK, XD_LOCK_BASE + (off_t)chunk, true);
    pthread_mutex_unlock(&f->stripe[chunk % STRIPES]);
}

/* --- map entries ------------------------------------------------------------- */

/* Read chunk's entry. A checksum mismatch is retried, since a reader
 * racing a writer's 32-byte pwrite may see it half done: a few times at
 * once, then with short naps for up to ENTRY_SETTLE_NS, so a writer whose
 * CPU was taken from it in the middle (a loaded machine, a guest's vCPU
 * descheduled) finishes first; only then is it reported as corrupt. */
/* via_map: from the mapping when the entry lies in it (no syscall). */
static int entry_read_from(struct ctr_file *f, uint64_t chunk, struct xd_ctr_entry *e,
                           bool via_map, char *why, size_t whylen)
{
    uint8_t raw[XD_CTR_ENTRY_SIZE];
    uint64_t off = xd_ctr_entry_off(chunk, f->chunk_size);
    int rc = -EIO;
    uint64_t until = 0;
    for (int attempt = 0;; attempt++) {
        int64_t n = sizeof(raw);
        if (via_map && off + sizeof(raw) <= f->map_len)
            memcpy(raw, f->map + off, sizeof(raw));
        else
            n = xd_pread_full(f->fd, raw, sizeof(raw), off);
        if (n < 0)
            return (int)n;
        if (n != sizeof(raw)) {
            xd_errf(why, whylen, "truncated map: the entry is past the end of the file");
            return -EIO;
        }
        if (!xd_ctr_entry_decode(raw, f->chunk_size, chunk, f->strict, e, why, whylen))
            return 0;
        rc = -EIO;
        if (attempt < READ_RETRIES) {
            sched_yield();
            continue;
        }
        uint64_t now = xd_clock_monotonic_ns();
        if (!until)
            until = now + ENTRY_SETTLE_NS;
        else if (now > until)
            return rc;
        struct timespec nap = {0, ENTRY_NAP_NS};
        nanosleep(&nap, NULL);
    }
}

static int entry_read(struct ctr_file *f, uint64_t chunk, struct xd_ctr_entry *e, char *why,
                      size_t whylen)
{
    return entry_read_from(f, chunk, e, true, why, whylen);
}

static int entry_write(struct ctr_file *f, uint64_t chunk, const struct xd_ctr_entry *e)
{
    uint8_t raw[XD_CTR_ENTRY_SIZE];
    xd_ctr_entry_encode(e, chunk, f->strict, raw);
    int64_t n = xd_pwrite_full(f->fd, raw, sizeof(raw), xd_ctr_entry_off(chunk, f->chunk_size));
    return n < 0 ? (int)n : 0;
}

/* A blank map entry in a strict (version 2) container is a chunk never
 * written, and then neither slot holds a version of it: a first write marks
 * the entry pending before it writes slot 0. A blank entry beside a slot
 * whose chunk header names this chunk was erased (a zeroed sector or page
 * of the map, a lost write of it): -EIO with why, never the zeros of a
 * chunk never written. A slot is looked at only where its first page holds
 * data (SEEK_DATA), so a chunk never written costs two lseeks, no page of
 * holes in the page cache. The caller (the open's map scan) reads the
 * entry again before calling it corrupt (a first write may have begun
 * meanwhile); reads look the chunk up in what the scan found
 * (xd_compress_known_erased). */
int xd_compress_erased_entry(struct ctr_file *f, uint64_t chunk, char *why, size_t whylen)
{
    for (unsigned s = 0; s < 2; s++) {
        uint64_t off = xd_ctr_slot_off(chunk, s, f->chunk_size);
        uint8_t hdr[XD_CTR_CHUNK_HDR_SIZE];
        uint64_t gen;
        if (lseek(f->fd, (off_t)off, SEEK_DATA) != (off_t)off ||
            xd_pread_full(f->fd, hdr, sizeof(hdr), off) != (int64_t)sizeof(hdr) ||
            !xd_ctr_chunk_hdr_names(hdr, chunk, &gen))
            continue;
        xd_errf(why, whylen, "corrupt map entry: erased (all zeros) while slot %u holds generation %llu of the chunk",
                s, (unsigned long long)gen);
        return -EIO;
    }
    return 0;
}

bool xd_compress_known_erased(const struct ctr_file *f, uint64_t chunk)
{
    size_t lo = 0, hi = f->nerased;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->erased[mid] == chunk)
            return true;
        if (f->erased[mid] < chunk)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Whether chunk may hold data, for SEEK_DATA (compressed.c): anything but a
 * blank entry the open's scan did not find erased. A pending first write,
 * and an entry that does not check out (it reads EIO), count as data: never
 * a hole where a read would not give zeros. */
bool xd_compress_chunk_present(struct ctr_file *f, uint64_t chunk)
{
    struct xd_ctr_entry e;
    char why[XD_ERRLEN];
    if (entry_read(f, chunk, &e, why, sizeof(why)))
        return true;
    return e.gen || e.pending || xd_compress_known_erased(f, chunk);
}

/* --- per-thread scratch -------------------------------------------------------- */

void xd_compress_thread_free(struct ctr_thread *t)
{
    if (!t)
        return;
    xd_codec_ctx_free(t->codec);
    free(t->merged);
    free(t->stored);
    free(t->decoded);
    free(t);
}

struct ctr_thread *xd_compress_thread_new(void)
{
    struct ctr_thread *t = calloc(1, sizeof(*t));
    if (t && !(t->codec = xd_codec_ctx_new())) {
        free(t);
        return NULL;
    }
    return t;
}

/* Buffers follow the largest chunk size met (containers may differ). */
int xd_compress_thread_buffers(struct ctr_thread *t, uint32_t chunk_size)
{
    if (t->buf_chunk >= chunk_size)
        return 0;
    free(t->merged);
    free(t->stored);
    free(t->decoded);
    t->merged = malloc(chunk_size);
    t->decoded = malloc(chunk_size);
    t->stored = malloc(xd_ctr_slot_size(chunk_size));
    t->last_gen = 0;
    if (!t->merged || !t->decoded || !t->stored) {
        t->buf_chunk = 0;
        return -ENOMEM;
    }
    t->buf_chunk = chunk_size;
    return 0;
}

/* --- reading a chunk ------------------------------------------------------------- */

/* Where the stored bytes of a version are read from. lz4 and raw chunks are
 * decoded straight from the read-only mapping: copying them out first cost
 * as much as lz4's decoding. Those decoders read each input byte once and
 * check every length they read, so bytes changing under them (a writer
 * reusing the slot after a flip) give garbage or an error, never a fault;
 * and chunk_decode re-reads the entry afterwards, so such a result is never
 * used. The other codecs get a private copy. Beyond the mapping (grown
 * since open), and when via_map is false: pread. *mapped says whether the
 * result points into the map.
 *
 * via_map is false for a version that will be decoded once, not once per
 * read (with the decoded cache on) and for a read-modify-write, whose old
 * slot is punched next: a slot read through the mapping has its pages in
 * this process's page tables, and punching it then unmaps them with a TLB
 * shootdown of every CPU running one of its threads. On the development
 * VM those IPIs took 40% of a 4k random write (perf: fallocate ->
 * truncate_pagecache_range -> flush_tlb_mm_range). */
static int stored_bytes(struct ctr_thread *t, struct ctr_file *f, const struct xd_ctr_entry *e,
                        uint64_t off, bool via_map, const uint8_t **stored, bool *mapped)
{
    *stored = t->stored;
    *mapped = false;
    if (via_map && off + e->stored_len <= f->map_len) {
        if (e->algo == XD_ALGO_LZ4 || e->algo == XD_ALGO_RAW) {
            *stored = f->map + off;
            *mapped = true;
        } else {
            memcpy(t->stored, f->map + off, e->stored_len);
        }
        return (int)e->stored_len;
    }
    int64_t n = xd_pread_full(f->fd, t->stored, e->stored_len, off);
    return (int)n;
}

/* Did chunk's entry move on from e? Then a version decoded from the mapping
 * may have been overwritten while it was read. */
static bool entry_moved(struct ctr_file *f, uint64_t chunk, const struct xd_ctr_entry *e)
{
    struct xd_ctr_entry now;
    char why[300];
    return entry_read(f, chunk, &now, why, sizeof(why)) || now.gen != e->gen;
}

/* Decode the version entry e describes into t->decoded. -EIO when it does
 * not decode: corrupt, or a writer flipped the entry meanwhile (the caller
 * tells the two apart by reading the entry again). */
static int chunk_decode(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                        uint64_t chunk, const struct xd_ctr_entry *e, uint32_t want, bool via_map,
                        char *why, size_t whylen)
{
    const uint8_t *stored = t->stored;
    bool mapped = false;
    int got = 0;
    if (!e->gen && !e->pending && f->nerased && xd_compress_known_erased(f, chunk)) {
        xd_errf(why, whylen, "corrupt map entry: erased (all zeros) while a slot holds a version of the chunk (found when the container was opened)");
        return -EIO;
    }
    if (e->gen && e->algo != XD_ALGO_ZERO) {
        got = stored_bytes(t, f, e, xd_ctr_slot_off(chunk, e->slot, f->chunk_size), via_map,
                           &stored, &mapped);
        if (got < 0)
            return got;
    }
    /* a second read of the version just decoded in part wants more of it:
     * decode it all, so a sequential reader decodes each chunk about once */
    bool again = t->last_gen && t->last_file == f->id && t->last_chunk == chunk &&
                 t->last_gen == e->gen;
    t->last_gen = 0; /* decoded is overwritten now; valid again only on success */
    int rc = xd_ctr_chunk_decode(t->codec, e, chunk, stored, (size_t)got, t->decoded,
                                 f->chunk_size, again ? f->chunk_size : want, &t->last_valid, why,
                                 whylen);
    if (!rc && mapped && entry_moved(f, chunk, e)) {
        xd_errf(why, whylen, "the chunk changed while it was read");
        rc = -EIO;
    }
    if (rc)
        return rc;
    count_add(c, C_DECODED, 1);
    t->last_cached = false;
    t->last_file = f->id;
    t->last_chunk = chunk;
    t->last_gen = e->gen ? e->gen : UINT64_MAX; /* never-written chunks are cached too */
    return 0;
}

static bool decoded_is(const struct ctr_thread *t, const struct ctr_file *f, uint64_t chunk,
                       const struct xd_ctr_entry *e, uint32_t want)
{
    return t->last_gen && t->last_file == f->id && t->last_chunk == chunk &&
           t->last_gen == (e->gen ? e->gen : UINT64_MAX) && t->last_valid >= want;
}

/* Make t->decoded hold at least the first want bytes of chunk's current
 * version; *entry gets its entry. via_map: see stored_bytes. */
static int chunk_load(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                      uint64_t chunk, uint32_t want, bool via_map, struct xd_ctr_entry *entry)
{
    char why[300] = "";
    uint64_t seen_gen = UINT64_MAX;
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
        int rc = entry_read(f, chunk, entry, why, sizeof(why));
        if (rc)
            return rc == -EIO ? xd_compress_report_corrupt(c, f, chunk, why) : rc;
        if (decoded_is(t, f, chunk, entry, want)) {
            count_add(c, C_REUSED, 1);
            return 0;
        }
        /* failed twice on one version: corrupt (a pending entry never
         * fails: a first write that began meanwhile) */
        if (entry->gen == seen_gen && !entry->pending)
            return xd_compress_report_corrupt(c, f, chunk, why);
        rc = chunk_decode(c, t, f, chunk, entry, want, via_map, why, sizeof(why));
        if (rc != -EIO)
            return rc;
        seen_gen = entry->gen;
        count_add(c, C_RETRIES, 1);
    }
    return xd_compress_report_corrupt(c, f, chunk, why);
}

/* --- the decoded cache ------------------------------------------------------------ */

/* A version worth keeping decoded: one that took a decode. A chunk never
 * written, or all zeros, "decodes" with a memset. */
static bool cacheable(const struct xd_ctr_entry *e)
{
    return e->gen && e->algo != XD_ALGO_ZERO;
}

/* Keep version e of chunk, which t->decoded holds in full, in the decoded
 * cache: once per version and thread, not on every reuse of it. */
static void cache_keep(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                       uint64_t chunk, const struct xd_ctr_entry *e)
{
    if (!c->dcache || t->last_cached || !cacheable(e) || t->last_valid < f->chunk_size)
        return;
    xd_dcache_put(c->dcache, f->id, chunk, e->gen, t->decoded, f->chunk_size);
    t->last_cached = true;
}

/* Copy bytes [at, at+len) of chunk's current version to dst. The map entry
 * is read first, always (from the mapping: a memcpy of 32 bytes and a
 * crc32c): the decoded cache serves only the generation it names, which is
 * how writes by other devices and processes are seen. Otherwise the thread's
 * last decoded chunk or a decode serves it. A version the cache admits is
 * decoded whole (lz4 otherwise decodes only the prefix this read needs),
 * from a pread (stored_bytes), and kept. */
int xd_compress_chunk_read(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                           uint64_t chunk, uint32_t at, uint32_t len, uint8_t *dst)
{
    struct xd_ctr_entry e;
    char why[300] = "";
    bool keep = false;
    int rc = entry_read(f, chunk, &e, why, sizeof(why));
    if (rc)
        return rc == -EIO ? xd_compress_report_corrupt(c, f, chunk, why) : rc;
    if (c->dcache && cacheable(&e) && !decoded_is(t, f, chunk, &e, at + len) &&
        xd_dcache_read(c->dcache, f->id, chunk, e.gen, at, len, dst, &keep))
        return 0;
    rc = chunk_load(c, t, f, chunk, keep ? f->chunk_size : at + len, !keep, &e);
    if (rc)
        return rc;
    memcpy(dst, t->decoded + at, len);
    if (keep)
        cache_keep(c, t, f, chunk, &e);
    return 0;
}

/* --- writing a chunk ------------------------------------------------------------- */

/* Shannon entropy, in bits per byte, of 64 samples of 16 bytes: cheap enough
 * to run on every chunk, and random data scores near 8. The stride is odd
 * and not a power of two, so data with a power-of-two structure (fio's
 * buffer_compress_chunk: random then zeros) is not sampled in one phase. */
static double sample_entropy(const uint8_t *data, uint32_t len)
{
    unsigned hist[256] = {0}, n = 0;
    uint32_t stride = (len - 16) / 64 | 1;
    stride -= stride % 8 == 0 ? 1 : 0;
    for (uint32_t at = 0; at + 16 <= len && n < 64 * 16; at += stride)
        for (unsigned i = 0; i < 16; i++, n++)
            hist[data[at + i]]++;
    double bits = 0;
    for (int b = 0; b < 256; b++)
        if (hist[b]) {
            double p = (double)hist[b] / n;
            bits -= p * log2(p);
        }
    return bits;
}

/* Adaptive compression: while the running ratio is poor, try only every
 * backoff-th chunk, doubling the interval (to 64) each time it stays poor. */
static bool adaptive_skip(struct compress_layer *c, struct ctr_thread *t)
{
    if (!c->adaptive || !t->skip_left)
        return false;
    t->skip_left--;
    return true;
}

static void adaptive_note(struct compress_layer *c, struct ctr_thread *t, double ratio)
{
    if (!c->adaptive)
        return;
    t->ewma = t->ewma ? 0.8 * t->ewma + 0.2 * ratio : ratio;
    if (t->ewma > c->keep_ratio) {
        t->backoff = t->backoff ? (t->backoff < 64 ? t->backoff * 2 : 64) : 1;
        t->skip_left = t->backoff;
    } else {
        t->backoff = 0;
    }
}

/* Compress data into t->stored after its chunk header; returns the payload
 * length and sets *algo (RAW when compression does not pay). */
static uint32_t chunk_encode_payload(struct compress_layer *c, struct ctr_thread *t,
                                     const uint8_t *data, uint32_t chunk_size, uint8_t *algo)
{
    uint8_t *payload = t->stored + XD_CTR_CHUNK_HDR_SIZE;
    uint32_t keep = (uint32_t)(chunk_size * c->keep_ratio);
    *algo = XD_ALGO_RAW;
    if (!c->compress)
        goto raw;
    if (adaptive_skip(c, t)) {
        count_add(c, C_ADAPTIVE_SKIP, 1);
        goto raw;
    }
    if (sample_entropy(data, chunk_size) > ENTROPY_SKIP_BITS) {
        count_add(c, C_ENTROPY_SKIP, 1);
        goto raw;
    }
    int64_t n = xd_codec_compress(t->codec, c->algo, atomic_load_explicit(&c->level, memory_order_relaxed), data, chunk_size, payload, keep);
    adaptive_note(c, t, n > 0 ? (double)n / chunk_size : 1.0);
    if (n > 0) {
        *algo = (uint8_t)c->algo;
        return (uint32_t)n;
    }
raw:
    memcpy(payload, data, chunk_size);
    return chunk_size;
}

/* Store data as chunk's next version and flip its entry; *old is the
 * current entry, updated to the new one. */
static int chunk_store(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                       uint64_t chunk, const uint8_t *data, struct xd_ctr_entry *old)
{
    struct xd_ctr_entry e = {.gen = old->gen + 1, .slot = old->gen ? !old->slot : 0};
    if (xd_is_zero(data, f->chunk_size)) {
        e.algo = XD_ALGO_ZERO;
        count_add(c, C_ZERO, 1);
    } else {
        uint32_t plen = chunk_encode_payload(c, t, data, f->chunk_size, &e.algo);
        struct xd_ctr_chunk_hdr h = {.algo = e.algo, .payload_len = plen, .chunk_no = chunk,
                                     .gen = e.gen};
        /* a first write says so in the map before its slot holds anything:
         * a kill between the two leaves a pending entry, not a blank one
         * beside a version of the chunk (which reads as erased) */
        if (!old->gen && !old->pending && f->strict) {
            int rc = entry_write(f, chunk, &(struct xd_ctr_entry){.pending = true});
            if (rc)
                return rc;
        }
        xd_ctr_chunk_hdr_encode(&h, t->stored);
        e.stored_len = XD_CTR_CHUNK_HDR_SIZE + plen;
        e.data_crc = xd_crc32c(0, t->stored, e.stored_len);
        int64_t n = xd_pwrite_full(f->fd, t->stored, e.stored_len,
                                   xd_ctr_slot_off(chunk, e.slot, f->chunk_size));
        if (n < 0)
            return (int)n;
        if (e.algo == XD_ALGO_RAW)
            count_add(c, C_RAW, 1);
    }
    int rc = entry_write(f, chunk, &e);
    if (rc)
        return rc;
    atomic_fetch_add_explicit(&c->chunks_by_algo[e.algo], 1, memory_order_relaxed);
    count_add(c, C_WRITES, 1);
    count_add(c, C_STORED_WRITTEN, e.stored_len);
    if (old->gen && old->algo != XD_ALGO_ZERO) {
        /* the old version is unreachable now: give its space back */
        fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)xd_ctr_slot_off(chunk, old->slot, f->chunk_size),
                  (off_t)xd_ctr_slot_size(f->chunk_size));
        count_add(c, C_RECLAIMS, 1);
        count_add(c, C_RECLAIMED_BYTES, old->stored_len);
    }
    *old = e;
    return 0;
}

/* Put chunk's current version in t->merged for a read-modify-write, and
 * its entry in *e: from the decoded cache when it holds that version (no
 * decode), else as a read would. The caller holds the chunk's locks, so no
 * writer can flip the entry meanwhile. */
static int rmw_base(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                    uint64_t chunk, struct xd_ctr_entry *e)
{
    char why[300] = "";
    if (c->dcache && !entry_read(f, chunk, e, why, sizeof(why)) && cacheable(e) &&
        !decoded_is(t, f, chunk, e, f->chunk_size) &&
        xd_dcache_read(c->dcache, f->id, chunk, e->gen, 0, f->chunk_size, t->merged, NULL))
        return 0;
    int rc = chunk_load(c, t, f, chunk, f->chunk_size, false, e);
    if (!rc)
        memcpy(t->merged, t->decoded, f->chunk_size);
    return rc;
}

/* After a write of chunk, what this thread and the decoded cache hold of it
 * follows. A read-modify-write that stored (merged) has the whole new
 * version e in t->merged: it becomes the thread's decoded chunk, by a swap
 * of the two buffers, and is cached, so the next small write or read of the
 * chunk decodes nothing. Anything else (a whole-chunk write, whose data is
 * the caller's and is not copied; zeros; a failure) drops what was cached. */
static void note_written(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                         uint64_t chunk, const struct xd_ctr_entry *e, bool merged)
{
    if (t->last_file == f->id && t->last_chunk == chunk)
        t->last_gen = 0; /* what decoded holds is now stale */
    if (!merged || !cacheable(e)) {
        if (c->dcache)
            xd_dcache_drop(c->dcache, f->id, chunk);
        return;
    }
    uint8_t *was = t->decoded;
    t->decoded = t->merged;
    t->merged = was;
    t->last_file = f->id;
    t->last_chunk = chunk;
    t->last_gen = e->gen;
    t->last_valid = f->chunk_size;
    t->last_cached = false;
    cache_keep(c, t, f, chunk, e);
}

/* Write len bytes of src (NULL: zeros, for trims) at byte at of chunk. */
int xd_compress_chunk_write(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                            uint64_t chunk, const uint8_t *src, uint32_t at, uint32_t len)
{
    struct xd_ctr_entry e;
    char why[300] = "";
    const uint8_t *data;
    int rc;

    chunk_lock(f, chunk);
    if (at == 0 && len == f->chunk_size) {
        /* a whole chunk: the old version does not matter, even a corrupt one */
        rc = entry_read(f, chunk, &e, why, sizeof(why));
        if (rc == -EIO) /* heal it; a fresh generation no reader has seen */
            e = (struct xd_ctr_entry){.gen = xd_clock_monotonic_ns(), .algo = XD_ALGO_ZERO}, rc = 0;
        if (!src) /* a trim: zeros, stored as a hole */
            memset(t->merged, 0, f->chunk_size);
        data = src ? src : t->merged;
    } else {
        rc = rmw_base(c, t, f, chunk, &e);
        if (!rc) {
            if (src)
                memcpy(t->merged + at, src, len);
            else
                memset(t->merged + at, 0, len);
            count_add(c, C_RMW, 1);
        }
        data = t->merged;
    }
    if (!rc)
        rc = chunk_store(c, t, f, chunk, data, &e);
    note_written(c, t, f, chunk, &e, !rc && data == t->merged);
    chunk_unlock(f, chunk);
    return rc;
}

/* --- read-ahead -------------------------------------------------------------- */

/* Ask the kernel for the stored bytes of chunks [from, to) (MADV_WILLNEED:
 * it reads them in the background), each chunk's live slot only: a stream
 * of the file would read the other slots' holes too. Which chunks, and
 * when, is readahead_note's (compressed.c). */
void xd_compress_readahead_window(struct ctr_file *f, uint64_t from, uint64_t to)
{
    for (uint64_t chunk = from; chunk < to; chunk++) {
        struct xd_ctr_entry e;
        char why[300];
        if (entry_read(f, chunk, &e, why, sizeof(why)) || !e.gen || e.algo == XD_ALGO_ZERO)
            continue;
        uint64_t at = xd_ctr_slot_off(chunk, e.slot, f->chunk_size);
        if (at + e.stored_len <= f->map_len)
            madvise((void *)(f->map + at), e.stored_len, MADV_WILLNEED);
    }
}
