/* compress.c - the compressed type: each file is a container of fixed
 * logical chunks, each compressed on its own (format: container.h and
 * docs/CONTAINER.md). Random reads decode only the chunks they touch;
 * writes of any size and alignment read-modify-write their chunks.
 *
 * Why it owns its file descriptors instead of sitting on the file driver:
 * it locks chunk ranges with OFD locks (one open file description per
 * container, so the locks are its own) and its worker threads do I/O on the
 * same descriptor concurrently, which the file driver's fd cache does not
 * allow.
 *
 * Concurrency, between the jobs of one fio run (threads or processes) and
 * the worker threads of one device:
 *  - A writer of chunk N holds a mutex stripe (threads of this device) and an
 *    OFD write lock on byte XD_LOCK_BASE+N of the container (everyone else).
 *  - Readers take no lock. A slot is only written while the map points at
 *    the other one, so a slot cannot change while its entry still names it.
 *    A reader checks crc32c and the chunk header against the entry it read,
 *    decodes, and (when it decoded straight from the mapping) reads the
 *    entry again: the same generation means the bytes it used were that
 *    version's. If anything fails it reads the entry again: a new
 *    generation means a writer flipped it meanwhile (retry); the same
 *    generation means the chunk is corrupt (EIO).
 *
 * Crash safety: the new version goes to the free slot, then the 32-byte map
 * entry flips (one pwrite), then the old slot is punched. A kill between any
 * two steps leaves the old or the new version readable; what it can leave
 * behind is a stale free slot, punched when the sole opener next opens it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "../../core/crc32c.h"
#include "../../core/fdio.h"
#include "../../core/fileutil.h"
#include "../../core/json.h"
#include "../../core/reqorder.h"
#include "../../core/workpool.h"
#include "../../core/zero.h"
#include "container.h"

/* OFD lock bytes, far beyond any container's data (locks may lie past EOF). */
#define XD_LOCK_BASE (1ll << 62)
#define XD_LOCK_HEADER (XD_LOCK_BASE - 1) /* creation and growth */
#define XD_LOCK_USERS (XD_LOCK_BASE - 2)  /* read-held by every opener */

#define STRIPES 64
/* Chunks a sequential reader asks the kernel for ahead of itself. */
#define RA_CHUNKS 32
/* In an async mode, requests that take less than this on average (a read
 * of a page-cached lz4 chunk: a few microseconds) run inline: handing them
 * to a thread and waking the reaper costs more than the work. Slower ones
 * (compressing a chunk, the slow codecs) go to the threads. */
#define INLINE_BELOW_NS 20000
#define READ_RETRIES 8

/* Bits per byte above which a sampled chunk is taken as incompressible. */
#define ENTROPY_SKIP_BITS 7.5

enum ctr_count {
    C_WRITES, C_RMW, C_ZERO, C_RAW, C_ENTROPY_SKIP, C_ADAPTIVE_SKIP, C_RECLAIMS,
    C_RECLAIMED_BYTES, C_STORED_WRITTEN, C_LOGICAL_WRITTEN, C_DECODED, C_REUSED,
    C_RETRIES, C_CORRUPT, C_RECOVERED_SLOTS, C_COUNT
};
static const char *const ctr_count_names[C_COUNT] = {
    "chunk_writes", "read_modify_writes", "zero_chunks_written", "raw_chunks_written",
    "entropy_skips", "adaptive_skips", "reclaims", "reclaimed_bytes", "stored_bytes_written",
    "logical_bytes_written", "chunks_decoded", "decoded_chunk_reuses", "read_retries",
    "corrupt_chunks", "stale_slots_recovered",
};

/* What a container holds, from a scan of its map. */
struct ctr_space {
    uint64_t logical, stored, allocated, live_logical;
    uint64_t chunks[XD_ALGO_COUNT];
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
    _Atomic uint64_t logical_size;
    _Atomic uint64_t last_bad_chunk; /* explained already; UINT64_MAX: none */
    /* sequential readahead, per file since a pool's threads share a stream:
     * where the last read ended, how many reads in a row continued near
     * it, and the chunk the window reaches */
    pthread_mutex_t ra_lock;
    uint64_t ra_next, ra_until;
    unsigned ra_seq;
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

static _Atomic uint64_t next_file_id = 1;

static void count_add(struct compress_layer *c, enum ctr_count k, uint64_t v)
{
    atomic_fetch_add_explicit(&c->count[k], v, memory_order_relaxed);
}

/* --- locks ------------------------------------------------------------------ */

static int ofd_lock(int fd, short type, off_t byte, bool wait)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

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

/* --- header ------------------------------------------------------------------ */

static int header_read(int fd, const char *path, struct xd_ctr_header *h, char *err, size_t errlen)
{
    uint8_t buf[XD_CTR_HEADER_SIZE];
    char why[200];
    int64_t n = xd_pread_full(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        xd_errf(err, errlen, "%s: cannot read the container header: %s", path, strerror((int)-n));
        return (int)n;
    }
    if (xd_ctr_header_decode(buf, (size_t)n, h, why, sizeof(why))) {
        xd_errf(err, errlen, "%s: %s", path, why);
        return -EINVAL;
    }
    return 0;
}

static int header_write(int fd, const char *path, const struct xd_ctr_header *h, char *err,
                        size_t errlen)
{
    uint8_t buf[XD_CTR_HEADER_SIZE];
    xd_ctr_header_encode(h, buf);
    int64_t n = xd_pwrite_full(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        xd_errf(err, errlen, "%s: cannot write the container header: %s", path, strerror((int)-n));
        return (int)n;
    }
    return 0;
}

/* The file must reach the end of the last chunk's slots; less is a
 * truncated container (reads would come back short or as zeros). */
static int check_not_truncated(int fd, const char *path, const struct xd_ctr_header *h, char *err,
                               size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t need = xd_ctr_file_size(h->logical_size, h->chunk_size);
    if ((uint64_t)st.st_size < need) {
        xd_errf(err, errlen, "%s: truncated container: %lld bytes, its header's logical size %llu needs %llu",
                path, (long long)st.st_size, (unsigned long long)h->logical_size,
                (unsigned long long)need);
        return -EINVAL;
    }
    return 0;
}

/* A container lives on punched holes; refuse a file system without them
 * rather than grow without bound. */
static int check_punch(int fd, const char *path, uint64_t off, char *err, size_t errlen)
{
    if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, 4096))
        return 0;
    int e = errno;
    xd_errf(err, errlen, "%s: the file system cannot punch holes (fallocate: %s); the compressed type reclaims space with them",
            path, strerror(e));
    return -e;
}

/* A container's chunk size is fixed when it is created: a config that names
 * another one would otherwise be ignored without a word. */
static int check_chunk_size(const struct xd_config *cfg, const char *path,
                            const struct xd_ctr_header *h, char *err, size_t errlen)
{
    const char *origin = cfg->origin[XD_KEY_compress_chunk_size];
    if (!origin || (uint64_t)cfg->compress_chunk_size == h->chunk_size)
        return 0;
    xd_errf(err, errlen,
            "%s: compress_chunk_size=%lld (%s) but this container was created with %u-byte chunks; a container's chunk size is fixed: leave the key out or set it to %u",
            path, (long long)cfg->compress_chunk_size, origin, h->chunk_size, h->chunk_size);
    return -EINVAL;
}

/* Create the container in an empty file, or grow it to size; never shrink.
 * Under the header lock, so concurrent openers agree. */
static int container_prepare_fd(int fd, const char *path, const struct xd_config *cfg,
                                uint64_t size, struct xd_ctr_header *h, char *err, size_t errlen)
{
    struct stat st;
    if (size > XD_CTR_MAX_LOGICAL) {
        xd_errf(err, errlen, "%s: %llu bytes: a container holds at most 1 PiB", path,
                (unsigned long long)size);
        return -EFBIG;
    }
    int rc = ofd_lock(fd, F_WRLCK, XD_LOCK_HEADER, true);
    if (rc)
        return rc;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (st.st_size == 0) {
        *h = (struct xd_ctr_header){.version = XD_CTR_VERSION,
                                    .chunk_size = (uint32_t)cfg->compress_chunk_size,
                                    .logical_size = size,
                                    .created_algo = xd_algo_of_codec(cfg->compression_type),
                                    .created_level = (int32_t)cfg->compression_level};
        rc = ftruncate(fd, (off_t)xd_ctr_file_size(size, h->chunk_size)) ? -errno : 0;
        if (!rc)
            rc = check_punch(fd, path, XD_CTR_HEADER_SIZE, err, errlen);
        if (!rc)
            rc = header_write(fd, path, h, err, errlen);
    } else if (!(rc = header_read(fd, path, h, err, errlen)) &&
               !(rc = check_chunk_size(cfg, path, h, err, errlen)) && h->logical_size < size) {
        rc = check_not_truncated(fd, path, h, err, errlen);
        h->logical_size = size;
        if (!rc)
            rc = ftruncate(fd, (off_t)xd_ctr_file_size(size, h->chunk_size)) ? -errno : 0;
        if (!rc)
            rc = header_write(fd, path, h, err, errlen);
    }
    if (rc && !err[0])
        xd_errf(err, errlen, "%s: cannot prepare the container: %s", path, strerror(-rc));
    ofd_lock(fd, F_UNLCK, XD_LOCK_HEADER, true);
    return rc;
}

int xd_compress_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                        uint64_t *logical, char *err, size_t errlen)
{
    struct xd_ctr_header h;
    err[0] = 0;
    if (cfg->auto_create_dirs && xd_mkdir_parents(path, cfg->dir_permissions) < 0) {
        xd_errf(err, errlen, "%s: cannot create its directory: %s", path, strerror(errno));
        return -errno;
    }
    /* a container's format is ours: never written through a link */
    int fd = xd_open_data(path, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)cfg->file_permissions, false);
    if (fd < 0) {
        xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(fd));
        return fd;
    }
    int rc = container_prepare_fd(fd, path, cfg, size, &h, err, errlen);
    close(fd);
    if (!rc)
        *logical = h.logical_size;
    return rc;
}

int xd_compress_logical_size(const char *path, uint64_t *size, char *err, size_t errlen)
{
    struct xd_ctr_header h;
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC); /* as prepare: never via a link */
    if (fd < 0) {
        int rc = -errno;
        if (rc == -ELOOP)
            xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(rc));
        return rc;
    }
    if (!fstat(fd, &st) && st.st_size == 0) {
        close(fd); /* empty: a container yet to be made (prepare makes it there) */
        *size = 0;
        return 0;
    }
    int rc = header_read(fd, path, &h, err, errlen);
    if (!rc)
        rc = check_not_truncated(fd, path, &h, err, errlen);
    close(fd);
    if (!rc)
        *size = h.logical_size;
    return rc;
}

/* --- map entries ------------------------------------------------------------- */

/* Read chunk's entry. A checksum mismatch is retried a few times, since a
 * reader racing a writer's 32-byte pwrite may see it half done, then
 * reported as corrupt. */
/* via_map: from the mapping when the entry lies in it (no syscall). */
static int entry_read_from(struct ctr_file *f, uint64_t chunk, struct xd_ctr_entry *e,
                           bool via_map, char *why, size_t whylen)
{
    uint8_t raw[XD_CTR_ENTRY_SIZE];
    uint64_t off = xd_ctr_entry_off(chunk, f->chunk_size);
    int rc = -EIO;
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
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
        if (!xd_ctr_entry_decode(raw, f->chunk_size, e, why, whylen))
            return 0;
        rc = -EIO;
        sched_yield();
    }
    return rc;
}

static int entry_read(struct ctr_file *f, uint64_t chunk, struct xd_ctr_entry *e, char *why,
                      size_t whylen)
{
    return entry_read_from(f, chunk, e, true, why, whylen);
}

static int entry_write(struct ctr_file *f, uint64_t chunk, const struct xd_ctr_entry *e)
{
    uint8_t raw[XD_CTR_ENTRY_SIZE];
    xd_ctr_entry_encode(e, raw);
    int64_t n = xd_pwrite_full(f->fd, raw, sizeof(raw), xd_ctr_entry_off(chunk, f->chunk_size));
    return n < 0 ? (int)n : 0;
}

/* Corruption is an I/O error to the caller, and one line (once per bad
 * chunk in a row) that XD_CTL_TAKE_ERROR hands to whoever reports it. */
static int report_corrupt(struct compress_layer *c, struct ctr_file *f, uint64_t chunk,
                          const char *why)
{
    count_add(c, C_CORRUPT, 1);
    if (atomic_exchange(&f->last_bad_chunk, chunk) == chunk)
        return -EIO; /* this chunk was explained already */
    pthread_mutex_lock(&c->space_lock);
    xd_errf(c->error, sizeof(c->error), "%s: chunk %llu (bytes %llu-%llu): %s; reads of it return EIO",
            f->path, (unsigned long long)chunk, (unsigned long long)chunk * f->chunk_size,
            (unsigned long long)(chunk + 1) * f->chunk_size - 1, why);
    pthread_mutex_unlock(&c->space_lock);
    return -EIO;
}

static int take_error(struct compress_layer *c, char *line)
{
    pthread_mutex_lock(&c->space_lock);
    int rc = c->error[0] ? 0 : -ENOENT;
    if (!rc)
        memcpy(line, c->error, sizeof(c->error));
    c->error[0] = 0;
    pthread_mutex_unlock(&c->space_lock);
    return rc;
}

/* --- per-thread scratch -------------------------------------------------------- */

static void thread_free(struct ctr_thread *t)
{
    if (!t)
        return;
    xd_codec_ctx_free(t->codec);
    free(t->merged);
    free(t->stored);
    free(t->decoded);
    free(t);
}

static struct ctr_thread *thread_new(void)
{
    struct ctr_thread *t = calloc(1, sizeof(*t));
    if (t && !(t->codec = xd_codec_ctx_new())) {
        free(t);
        return NULL;
    }
    return t;
}

/* Buffers follow the largest chunk size met (containers may differ). */
static int thread_buffers(struct ctr_thread *t, uint32_t chunk_size)
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
 * since open): pread. *mapped says whether the result points into the map. */
static int stored_bytes(struct ctr_thread *t, struct ctr_file *f, const struct xd_ctr_entry *e,
                        uint64_t off, const uint8_t **stored, bool *mapped)
{
    *stored = t->stored;
    *mapped = false;
    if (off + e->stored_len <= f->map_len) {
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
                        uint64_t chunk, const struct xd_ctr_entry *e, uint32_t want, char *why,
                        size_t whylen)
{
    const uint8_t *stored = t->stored;
    bool mapped = false;
    int got = 0;
    if (e->gen && e->algo != XD_ALGO_ZERO) {
        got = stored_bytes(t, f, e, xd_ctr_slot_off(chunk, e->slot, f->chunk_size), &stored,
                           &mapped);
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
 * version; *entry gets its entry. */
static int chunk_load(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                      uint64_t chunk, uint32_t want, struct xd_ctr_entry *entry)
{
    char why[300] = "";
    uint64_t seen_gen = UINT64_MAX;
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
        int rc = entry_read(f, chunk, entry, why, sizeof(why));
        if (rc)
            return rc == -EIO ? report_corrupt(c, f, chunk, why) : rc;
        if (decoded_is(t, f, chunk, entry, want)) {
            count_add(c, C_REUSED, 1);
            return 0;
        }
        if (entry->gen == seen_gen) /* failed twice on one version: corrupt */
            return report_corrupt(c, f, chunk, why);
        rc = chunk_decode(c, t, f, chunk, entry, want, why, sizeof(why));
        if (rc != -EIO)
            return rc;
        seen_gen = entry->gen;
        count_add(c, C_RETRIES, 1);
    }
    return report_corrupt(c, f, chunk, why);
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

/* Write len bytes of src (NULL: zeros, for trims) at byte at of chunk. */
static int chunk_write(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
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
            e = (struct xd_ctr_entry){.gen = xd_now_ns(), .algo = XD_ALGO_ZERO}, rc = 0;
        if (!src) /* a trim: zeros, stored as a hole */
            memset(t->merged, 0, f->chunk_size);
        data = src ? src : t->merged;
    } else {
        rc = chunk_load(c, t, f, chunk, f->chunk_size, &e);
        if (!rc) {
            memcpy(t->merged, t->decoded, f->chunk_size);
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
    if (t->last_file == f->id && t->last_chunk == chunk)
        t->last_gen = 0; /* what decoded holds is now stale */
    chunk_unlock(f, chunk);
    return rc;
}

/* --- requests ------------------------------------------------------------------ */

/* Growing past the end (library users; fio's files are sized up front). */
static int file_grow(struct compress_layer *c, struct ctr_file *f, uint64_t end)
{
    struct xd_ctr_header h;
    char err[XD_ERRLEN];
    if (end <= atomic_load(&f->logical_size))
        return 0;
    if (end > XD_CTR_MAX_LOGICAL)
        return -EFBIG;
    int rc = container_prepare_fd(f->fd, f->path, c->cfg, end, &h, err, sizeof(err));
    if (rc)
        return rc;
    atomic_store(&f->logical_size, h.logical_size);
    return 0;
}

/* Another process may have grown the container; look before saying EOF. */
static uint64_t file_refresh_size(struct ctr_file *f)
{
    struct xd_ctr_header h;
    char err[XD_ERRLEN];
    if (!header_read(f->fd, f->path, &h, err, sizeof(err)) && h.chunk_size == f->chunk_size &&
        h.logical_size > atomic_load(&f->logical_size))
        atomic_store(&f->logical_size, h.logical_size);
    return atomic_load(&f->logical_size);
}

/* Kernel readahead is off for containers (ctr_file_map), so a sequential
 * reader (two reads in a row continuing the one before) asks for the stored
 * bytes of the next RA_CHUNKS chunks itself (MADV_WILLNEED: the kernel reads
 * them in the background), each chunk's live slot only, topping the window
 * up once the reader is half way through it. */
static void readahead_window(struct ctr_file *f, uint64_t from, uint64_t to)
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

/* A read continues the stream when it starts near where the last one ended
 * (the pool's threads may take a stream's requests slightly out of order). */
static void readahead_note(struct ctr_file *f, uint64_t off, uint64_t len)
{
    if (!f->map)
        return;
    pthread_mutex_lock(&f->ra_lock);
    bool seq = off + 4 * len >= f->ra_next && off <= f->ra_next + 4 * len;
    f->ra_seq = seq ? f->ra_seq + 1 : 0;
    if (!seq)
        f->ra_until = 0;
    if (off + len > f->ra_next || !seq)
        f->ra_next = off + len;
    uint64_t next = (off + len) / f->chunk_size, from = 0, to = 0;
    if (f->ra_seq >= 2 && next + RA_CHUNKS / 2 >= f->ra_until) {
        uint64_t end = xd_ctr_chunks(atomic_load(&f->logical_size), f->chunk_size);
        from = next > f->ra_until ? next : f->ra_until;
        to = next + RA_CHUNKS < end ? next + RA_CHUNKS : end;
        f->ra_until = to;
    }
    pthread_mutex_unlock(&f->ra_lock);
    readahead_window(f, from, to);
}

static int64_t ctr_read(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                        uint8_t *buf, uint64_t len, uint64_t off)
{
    uint64_t size = atomic_load(&f->logical_size);
    if (off + len > size)
        size = file_refresh_size(f);
    if (off >= size)
        return 0;
    if (len > size - off)
        len = size - off;
    readahead_note(f, off, len);
    for (uint64_t done = 0; done < len;) {
        uint64_t chunk = (off + done) / f->chunk_size;
        uint32_t at = (uint32_t)((off + done) % f->chunk_size);
        uint32_t n = (uint32_t)(len - done < f->chunk_size - at ? len - done : f->chunk_size - at);
        struct xd_ctr_entry e;
        int rc = chunk_load(c, t, f, chunk, at + n, &e);
        if (rc)
            return rc;
        memcpy(buf + done, t->decoded + at, n);
        done += n;
    }
    return (int64_t)len;
}

static int64_t ctr_write(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                         const uint8_t *buf, uint64_t len, uint64_t off)
{
    int rc = file_grow(c, f, off + len);
    if (rc)
        return rc;
    for (uint64_t done = 0; done < len;) {
        uint64_t chunk = (off + done) / f->chunk_size;
        uint32_t at = (uint32_t)((off + done) % f->chunk_size);
        uint32_t n = (uint32_t)(len - done < f->chunk_size - at ? len - done : f->chunk_size - at);
        rc = chunk_write(c, t, f, chunk, buf ? buf + done : NULL, at, n);
        if (rc)
            return rc;
        done += n;
    }
    if (buf)
        count_add(c, C_LOGICAL_WRITTEN, len);
    return (int64_t)len;
}

/* Fold one request's cost into the running average of its kind. */
static void cost_note(struct compress_layer *c, int kind, uint64_t ns)
{
    uint64_t avg = atomic_load_explicit(&c->cost_ns[kind], memory_order_relaxed);
    atomic_store_explicit(&c->cost_ns[kind], avg ? (7 * avg + ns) / 8 : ns, memory_order_relaxed);
}

static int cost_kind(const struct xd_req *req)
{
    return req->op == XD_OP_READ ? 0 : 1;
}

/* A trim writes zeros, but only within the container: past its end there
 * is nothing to discard, and growing it to discard would be absurd. */
static int64_t ctr_trim(struct compress_layer *c, struct ctr_thread *t, struct ctr_file *f,
                        uint64_t len, uint64_t off)
{
    uint64_t size = file_refresh_size(f);
    if (off >= size)
        return (int64_t)len;
    int64_t rc = ctr_write(c, t, f, NULL, len < size - off ? len : size - off, off);
    return rc < 0 ? rc : (int64_t)len;
}

static void ctr_run(struct compress_layer *c, struct ctr_thread *t, struct xd_req *req,
                    unsigned level)
{
    struct ctr_file *f = req->file->priv[level];
    uint64_t start = xd_now_ns();
    int64_t rc;
    if (!f) {
        req->result = -EBADF;
        return;
    }
    if ((rc = thread_buffers(t, f->chunk_size))) {
        req->result = rc;
        return;
    }
    switch (req->op) {
    case XD_OP_READ: rc = ctr_read(c, t, f, req->buf, req->len, req->off); break;
    case XD_OP_WRITE: rc = ctr_write(c, t, f, req->buf, req->len, req->off); break;
    case XD_OP_TRIM: rc = ctr_trim(c, t, f, req->len, req->off); break;
    case XD_OP_FSYNC: rc = fsync(f->fd) ? -errno : 0; break;
    case XD_OP_FDATASYNC: rc = fdatasync(f->fd) ? -errno : 0; break;
    default: rc = -EINVAL; break;
    }
    req->result = rc;
    if (req->op == XD_OP_READ || req->op == XD_OP_WRITE)
        cost_note(c, cost_kind(req), xd_now_ns() - start);
}

/* --- worker pool glue -------------------------------------------------------------- */

static void *pool_thread_init(void *owner) { return thread_new(); }
static void pool_thread_fini(void *owner, void *state) { thread_free(state); }
static void pool_run(void *owner, void *state, struct xd_req *req)
{
    struct xd_layer *layer = owner;
    if (!state) {
        req->result = -ENOMEM;
        return;
    }
    ctr_run(layer->priv, state, req, layer->level);
}

static bool pool_conflict(const struct xd_req *earlier, const struct xd_req *later)
{
    return xd_req_conflict(earlier, later);
}

static int compress_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct compress_layer *c = layer->priv;
    bool cheap = atomic_load_explicit(&c->cost_ns[cost_kind(req)], memory_order_relaxed) <
                 INLINE_BELOW_NS;
    /* inline only when nothing queued or running touches the same bytes:
     * otherwise it would overtake it (docs/DESIGN.md, "Ordering invariant") */
    if (c->pool && !(req->flags & XD_REQ_SYNC) &&
        (!cheap || xd_workpool_conflicts(c->pool, req)))
        return xd_workpool_submit(c->pool, req);
    ctr_run(c, c->inline_state, req, layer->level);
    return XD_DONE;
}

static int compress_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                         const struct timespec *timeout)
{
    struct compress_layer *c = layer->priv;
    return c->pool ? xd_workpool_reap(c->pool, done, min, max, timeout, c->inline_state) : 0;
}

static int compress_commit(struct xd_layer *layer) { return 0; }

/* --- open and close ------------------------------------------------------------------ */

/* One thread per core but one, at most 4: the codecs are CPU-bound and the
 * caller's thread runs requests too while it waits (xd_workpool_reap), so
 * more would only contend (for the CPU, and in the kernel for the file's
 * inode lock on every write). */
static unsigned pool_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
    return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
}

static void compress_close(struct xd_layer *layer);

static int compress_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct compress_layer *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    layer->priv = c;
    c->cfg = cfg;
    c->algo = xd_algo_of_codec(cfg->compression_type);
    atomic_init(&c->level, (int)cfg->compression_level);
    c->compress = cfg->enable_compression;
    c->adaptive = cfg->adaptive_compression;
    c->keep_ratio = 1.0 - cfg->compression_threshold / 100.0;
    pthread_mutex_init(&c->space_lock, NULL);
    int rc = (c->inline_state = thread_new()) ? 0 : -ENOMEM;
    if (!rc && cfg->async != XD_ASYNC_SYNC) {
        struct xd_workpool_ops ops = {.owner = layer, .thread_init = pool_thread_init,
                                      .thread_fini = pool_thread_fini, .run = pool_run,
                                      .conflict = pool_conflict};
        rc = xd_workpool_create(&c->pool, pool_threads(), layer->dev->queue_entries, &ops, err,
                                errlen);
    }
    if (rc) /* a layer whose open fails is not closed by the chain */
        compress_close(layer);
    return rc;
}

static void compress_close(struct xd_layer *layer)
{
    struct compress_layer *c = layer->priv;
    if (!c)
        return;
    xd_workpool_destroy(c->pool);
    thread_free(c->inline_state);
    while (c->closed) {
        struct closed_file *next = c->closed->next;
        free(c->closed->path);
        free(c->closed);
        c->closed = next;
    }
    pthread_mutex_destroy(&c->space_lock);
    free(c);
    layer->priv = NULL;
}

/* Punch a free slot that still holds data: a writer was killed after
 * writing it and before flipping the entry to it. */
static void punch_if_stale(struct compress_layer *c, struct ctr_file *f, uint64_t off)
{
    uint64_t len = xd_ctr_slot_size(f->chunk_size);
    off_t data = lseek(f->fd, (off_t)off, SEEK_DATA);
    if (data < 0 || (uint64_t)data >= off + len)
        return;
    if (!fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
        count_add(c, C_RECOVERED_SLOTS, 1);
}

/* How container_scan treats the map: FIX punches stale data left in free
 * slots by a writer killed mid-update; EXACT only counts, and fails on a bad
 * entry; LIVE counts a container others may be writing (the pool's threads,
 * other processes): an entry read torn mid-rewrite fails its checksum and
 * is skipped, and a map still growing ends the walk early, since a stats
 * figure may lag a write in flight but a live scan must never fail. */
enum scan_mode { SCAN_EXACT, SCAN_FIX, SCAN_LIVE };

/* Walk the map: what the container holds (for stats), repairing per mode. */
static int container_scan(struct compress_layer *c, struct ctr_file *f, struct ctr_space *sp,
                          enum scan_mode mode, char *err, size_t errlen)
{
    bool fix = mode == SCAN_FIX, live = mode == SCAN_LIVE;
    uint64_t nchunks = xd_ctr_chunks(atomic_load(&f->logical_size), f->chunk_size);
    uint8_t page[XD_CTR_MAP_PAGE];
    char why[300];
    memset(sp, 0, sizeof(*sp));
    for (uint64_t chunk = 0; chunk < nchunks; chunk++) {
        unsigned k = chunk % XD_CTR_GROUP_CHUNKS;
        if (!k && xd_pread_full(f->fd, page, sizeof(page), xd_ctr_entry_off(chunk, f->chunk_size)) !=
                      (int64_t)sizeof(page)) {
            if (live)
                break;
            xd_errf(err, errlen, "%s: truncated map at chunk %llu", f->path, (unsigned long long)chunk);
            return -EINVAL;
        }
        struct xd_ctr_entry e;
        if (xd_ctr_entry_decode(page + k * XD_CTR_ENTRY_SIZE, f->chunk_size, &e, why, sizeof(why))) {
            if (live)
                continue;
            xd_errf(err, errlen, "%s: chunk %llu: %s", f->path, (unsigned long long)chunk, why);
            return -EINVAL;
        }
        if (e.gen) {
            sp->chunks[e.algo]++;
            sp->stored += e.stored_len;
            if (e.algo != XD_ALGO_ZERO)
                sp->live_logical += f->chunk_size;
        }
        if (!fix)
            continue;
        /* a slot the entry does not name holds nothing live: both of them
         * for a chunk never written or all zeros */
        bool holds_data = e.gen && e.algo != XD_ALGO_ZERO;
        for (unsigned s = 0; s < 2; s++)
            if (!(holds_data && s == e.slot))
                punch_if_stale(c, f, xd_ctr_slot_off(chunk, s, f->chunk_size));
    }
    struct stat st;
    if (!fstat(f->fd, &st))
        sp->allocated = (uint64_t)st.st_blocks * 512;
    sp->logical = atomic_load(&f->logical_size);
    sp->stored += XD_CTR_HEADER_SIZE + (nchunks + XD_CTR_GROUP_CHUNKS - 1) / XD_CTR_GROUP_CHUNKS *
                                           XD_CTR_MAP_PAGE;
    return 0;
}

static void space_add(struct ctr_space *to, const struct ctr_space *sp)
{
    to->logical += sp->logical;
    to->stored += sp->stored;
    to->allocated += sp->allocated;
    to->live_logical += sp->live_logical;
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        to->chunks[a] += sp->chunks[a];
}

static struct closed_file *closed_find_or_add(struct compress_layer *c, const char *path)
{
    struct closed_file *cf;
    for (cf = c->closed; cf; cf = cf->next)
        if (!strcmp(cf->path, path))
            return cf;
    if (!(cf = calloc(1, sizeof(*cf))) || !(cf->path = strdup(path))) {
        free(cf);
        return NULL;
    }
    cf->next = c->closed;
    c->closed = cf;
    return cf;
}

static void closed_note(struct compress_layer *c, const char *path, const struct ctr_space *sp)
{
    pthread_mutex_lock(&c->space_lock);
    struct closed_file *cf = closed_find_or_add(c, path);
    if (cf)
        cf->space = *sp;
    pthread_mutex_unlock(&c->space_lock);
}

/* Map the container for reading. Without a map (mmap refused) every read
 * goes through pread, which is slower but the same. A container truncated
 * by someone else while mapped would fault; docs/CONTAINER.md says so. */
static void ctr_file_map(struct ctr_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) || st.st_size <= 0)
        return;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED)
        return;
    f->map = p;
    f->map_len = (uint64_t)st.st_size;
    /* Every access is a chunk's entry or its stored bytes, never a stream of
     * the file: kernel readahead (megabytes here) would fill the page cache
     * with the holes of neighbouring slots for each 32-byte entry read. */
    madvise(p, (size_t)st.st_size, MADV_RANDOM);
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
}

static void ctr_file_free(struct ctr_file *f)
{
    if (f->map)
        munmap((void *)f->map, f->map_len);
    if (f->fd >= 0)
        close(f->fd);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&f->stripe[i]);
    pthread_mutex_destroy(&f->ra_lock);
    free(f);
}

/* Open a container: create or grow it when asked, check its header and
 * length and every map entry, and repair free slots when nobody else has it
 * open (the users lock is free). */
static int compress_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                              uint64_t size, char *err, size_t errlen)
{
    struct compress_layer *c = layer->priv;
    const struct xd_config *cfg = c->cfg;
    bool ro = flags & XD_OPEN_READONLY;
    struct xd_ctr_header h;
    struct ctr_space sp;
    struct ctr_file *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&f->stripe[i], NULL);
    pthread_mutex_init(&f->ra_lock, NULL);
    f->path = file->path;
    f->id = atomic_fetch_add(&next_file_id, 1);
    atomic_store(&f->last_bad_chunk, UINT64_MAX);
    int rc = 0;
    err[0] = 0;
    if ((flags & XD_OPEN_CREATE) && !ro && cfg->auto_create_dirs &&
        xd_mkdir_parents(file->path, cfg->dir_permissions) < 0)
        rc = -errno;
    f->fd = rc ? -1
               : xd_open_data(file->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC |
                                              ((flags & XD_OPEN_CREATE) && !ro ? O_CREAT : 0),
                              (mode_t)cfg->file_permissions, false);
    if (!rc && f->fd < 0) {
        rc = f->fd;
        f->fd = -1;
    }
    if (!rc)
        rc = ofd_lock(f->fd, F_RDLCK, XD_LOCK_USERS, true);
    if (!rc && (flags & XD_OPEN_CREATE) && !ro)
        rc = container_prepare_fd(f->fd, file->path, cfg, size, &h, err, errlen);
    if (!rc)
        rc = header_read(f->fd, file->path, &h, err, errlen);
    if (!rc)
        rc = check_not_truncated(f->fd, file->path, &h, err, errlen);
    if (!rc) {
        f->chunk_size = h.chunk_size;
        atomic_store(&f->logical_size, h.logical_size);
        ctr_file_map(f);
        bool sole = !ro && !ofd_lock(f->fd, F_WRLCK, XD_LOCK_USERS, false);
        rc = container_scan(c, f, &sp, sole ? SCAN_FIX : SCAN_EXACT, err, errlen);
        if (sole) /* back to a shared hold: others may open it now */
            ofd_lock(f->fd, F_RDLCK, XD_LOCK_USERS, true);
    }
    if (rc) {
        if (!err[0])
            xd_errf(err, errlen, "%s: cannot open the container: %s", file->path, strerror(-rc));
        ctr_file_free(f);
        return rc;
    }
    file->priv[layer->level] = f;
    pthread_mutex_lock(&c->space_lock);
    f->next_open = c->open;
    c->open = f;
    pthread_mutex_unlock(&c->space_lock);
    return 0;
}

static void open_list_remove(struct compress_layer *c, struct ctr_file *f)
{
    pthread_mutex_lock(&c->space_lock);
    for (struct ctr_file **p = &c->open; *p; p = &(*p)->next_open) {
        if (*p == f) {
            *p = f->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&c->space_lock);
}

static void compress_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct compress_layer *c = layer->priv;
    struct ctr_file *f = file->priv[layer->level];
    struct ctr_space sp;
    char err[XD_ERRLEN];
    if (!f)
        return;
    open_list_remove(c, f);
    if (!container_scan(c, f, &sp, SCAN_EXACT, err, sizeof(err)))
        closed_note(c, f->path, &sp);
    ctr_file_free(f);
    file->priv[layer->level] = NULL;
}

static int64_t compress_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct ctr_file *f = file->priv[layer->level];
    return f ? (int64_t)file_refresh_size(f) : -EBADF;
}

/* --- stats ---------------------------------------------------------------------------- */

static bool open_before(const struct ctr_file *list, const struct ctr_file *f, const char *path)
{
    for (; list && list != f; list = list->next_open)
        if (!strcmp(list->path, path))
            return true;
    return false;
}

/* The space figures: each container counted once, by path, from a live scan
 * when it is open now, else as it was at its last close. (Before, only
 * closed containers counted, so a program reading stats with its files open
 * saw logical_bytes 0 and ratio 0.) */
static void space_now(struct compress_layer *c, struct ctr_space *sp)
{
    char err[XD_ERRLEN];
    memset(sp, 0, sizeof(*sp));
    pthread_mutex_lock(&c->space_lock);
    for (const struct closed_file *cf = c->closed; cf; cf = cf->next)
        if (!open_before(c->open, NULL, cf->path))
            space_add(sp, &cf->space);
    for (struct ctr_file *f = c->open; f; f = f->next_open) {
        struct ctr_space one;
        if (!open_before(c->open, f, f->path) && !container_scan(c, f, &one, SCAN_LIVE, err, sizeof(err)))
            space_add(sp, &one);
    }
    pthread_mutex_unlock(&c->space_lock);
}

static void compress_stats_json(struct compress_layer *c, struct xd_json *j)
{
    struct ctr_space sp;
    space_now(c, &sp);
    xd_json_object_begin(j, "compress");
    xd_json_string(j, "codec", xd_algo_name(c->algo));
    xd_json_int(j, "level", atomic_load(&c->level));
    xd_json_uint(j, "logical_bytes", sp.logical);
    xd_json_uint(j, "stored_bytes", sp.stored);
    xd_json_uint(j, "allocated_bytes", sp.allocated);
    xd_json_uint(j, "live_logical_bytes", sp.live_logical);
    /* logical / stored over the chunks that hold data, as the report draws it */
    xd_json_double(j, "ratio", sp.stored ? (double)sp.live_logical / (double)sp.stored : 0);
    xd_json_object_begin(j, "live_chunks");
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        xd_json_uint(j, xd_algo_name(a), sp.chunks[a]);
    xd_json_object_end(j);
    xd_json_object_begin(j, "chunks_written");
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        xd_json_uint(j, xd_algo_name(a), atomic_load(&c->chunks_by_algo[a]));
    xd_json_object_end(j);
    for (int k = 0; k < C_COUNT; k++)
        xd_json_uint(j, ctr_count_names[k], atomic_load(&c->count[k]));
    xd_json_object_end(j);
}

static int compress_control(struct xd_layer *layer, int op, void *arg)
{
    struct compress_layer *c = layer->priv;
    switch (op) {
    case XD_CTL_CAPS:
        *(unsigned *)arg |= XD_CAP_TRIM | (c->pool ? XD_CAP_ASYNC : 0);
        return 0;
    case XD_CTL_STATS_JSON:
        compress_stats_json(c, arg);
        return 0;
    case XD_CTL_TAKE_ERROR:
        return take_error(c, arg);
    case XD_CTL_INVALIDATE: {
        struct xd_file *file = arg;
        struct ctr_file *f = file->priv[layer->level];
        c->inline_state->last_gen = 0;
        return f ? -posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED) : 0;
    }
    case XD_CTL_RELOAD: /* new chunks take the new level; stored ones keep theirs */
        atomic_store(&c->level, (int)layer->dev->cfg->compression_level);
        return 0; /* compress is the bottom of its chain */
    default:
        return -ENOTTY;
    }
}

const struct xd_ops xd_compress_ops = {
    .version = XD_OPS_VERSION,
    .name = "compress",
    .open = compress_open,
    .close = compress_close,
    .file_open = compress_file_open,
    .file_close = compress_file_close,
    .file_size = compress_file_size,
    .submit = compress_submit,
    .commit = compress_commit,
    .reap = compress_reap,
    .control = compress_control,
};
