/* checksum.c - the checksum layer (enable_checksums): a crc32c per block of
 * checksum_block_size, kept in a sidecar file beside the data as stored
 * ("<data path>.xdsum"), checked on every read.
 *
 * The sidecar: a 64-byte header (magic, block size) then one 16-byte entry
 * per block at a fixed offset, so writers of different blocks never touch
 * each other's bytes. An entry holds two slots: CUR, the crc of what the
 * block held when the last write was known to have landed, and NEW, the crc
 * of a write in flight. A write records NEW in the sidecar before the data
 * goes down and folds it into CUR once the data is back; a block verifies
 * when it matches either slot, so after a kill -9 at any point a block reads
 * as its old or its new contents, and a torn mix of the two matches neither
 * and reads as EIO: never as wrong data. An entry with no slot (a block
 * never written through this layer, a hole, a trimmed block, a file that
 * had data before checksums were enabled) is "unknown" and reads unchecked.
 *
 * The header names the data file (device, inode, birth time): a sidecar
 * left from a file that was deleted and made again without the layer is
 * emptied at open rather than failing every read of the new file.
 *
 * The crc covers the whole block, bytes past end of file counted as zeros,
 * so a file growing past a block never changes that block's crc.
 *
 * Entry updates (read, change, write) hold an OFD lock on the entries'
 * bytes for a moment: threads and processes with the same file open each
 * have their own sidecar descriptor, so they exclude each other. A write
 * that covers part of a block reads the rest of the block, checked, and
 * holds the lock until its data is down, completing inline; so do reads
 * that are not block-aligned. Whole-block reads and writes go down as they
 * came (async stays async): the sidecar is updated synchronously before a
 * write is submitted and when it is reaped, and reads are checked when reaped.
 * An fsync or fdatasync syncs the sidecar before the data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/crc32c.h"
#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/xd_internal.h"

#define CS_MAGIC      "XDSUM01\n"
#define CS_HEADER     64u
#define CS_SUFFIX     ".xdsum"
#define CS_SLOT_CUR   1u /* crc[0] holds what the block held when last known */
#define CS_SLOT_NEW   2u /* crc[1] holds a write that may or may not have landed */
#define CS_BUF_ALIGN  4096u

struct cs_entry {
    uint32_t crc[2];
    uint32_t slots; /* CS_SLOT_*; 0: unknown */
    uint32_t reserved;
};

struct cs_header {
    char magic[8];
    uint32_t block_size;
    uint32_t entry_size;
    /* the data file the entries describe: inode numbers are soon reused, a
     * birth time (where the file system keeps one) tells the files apart */
    uint64_t data_dev, data_ino, data_birth_ns;
    char reserved[CS_HEADER - 40];
};

enum cs_kind { CS_PASS, CS_READ, CS_WRITE };

struct cs_req {
    enum cs_kind kind;
};

struct cs_file {
    int fd;             /* the sidecar */
    bool read_only;     /* opened read-only: no lazy fold of a NEW slot */
    char *data_path;    /* for messages */
    /* The sidecar mapped shared, read-only, so looking up an entry costs no
     * system call; remapped when it has grown. It never shrinks (a stale
     * one is zeroed, not truncated), so the mapping never points past it. */
    void *map;
    size_t map_len;
};

struct cs_layer {
    uint64_t block;            /* checksum_block_size */
    /* scratch of the data path (one thread per device): blocks and entries */
    char *blocks;
    size_t blocks_len;
    struct cs_entry *entries;
    size_t entries_len;
    char error[XD_ERRLEN];
    bool has_error;
    struct {
        uint64_t verified, mismatches, unknown, blocks_written, partial_writes, partial_reads;
        uint64_t resolved, folded_on_read, rechecked, sidecar_syncs, files, stale_sidecars;
    } count;
};

/* --- scratch -------------------------------------------------------------- */

static char *cs_blocks(struct cs_layer *cs, size_t len)
{
    if (cs->blocks_len < len) {
        void *p = NULL;
        if (posix_memalign(&p, CS_BUF_ALIGN, len))
            return NULL;
        free(cs->blocks);
        cs->blocks = p;
        cs->blocks_len = len;
    }
    return cs->blocks;
}

static struct cs_entry *cs_entries(struct cs_layer *cs, size_t n)
{
    if (cs->entries_len < n) {
        struct cs_entry *p = realloc(cs->entries, n * sizeof(*p));
        if (!p)
            return NULL;
        cs->entries = p;
        cs->entries_len = n;
    }
    return cs->entries;
}

/* --- the sidecar ---------------------------------------------------------- */

static off_t cs_entry_off(uint64_t block)
{
    return (off_t)(CS_HEADER + block * sizeof(struct cs_entry));
}

/* An OFD lock (F_WRLCK or F_UNLCK) on the entries of blocks [first, first+n). */
static int cs_lock(const struct cs_file *cf, short type, uint64_t first, uint64_t n)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = cs_entry_off(first),
                       .l_len = (off_t)(n * sizeof(struct cs_entry))};
    while (fcntl(cf->fd, F_OFD_SETLKW, &fl))
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* Map the sidecar again when it has grown past the mapping. */
static void cs_map_grow(struct cs_file *cf)
{
    struct stat st;
    if (fstat(cf->fd, &st) || (size_t)st.st_size <= cf->map_len)
        return;
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, cf->fd, 0);
    if (map == MAP_FAILED)
        return; /* pread serves */
    if (cf->map)
        munmap(cf->map, cf->map_len);
    cf->map = map;
    cf->map_len = (size_t)st.st_size;
}

/* Entries of blocks [first, first+n): those past the sidecar's end are zero
 * (unknown). From the mapping when it covers them; an entry another writer
 * changes meanwhile may read torn, which only ever fails a check, and a
 * failed check is done again under the lock (cs_recheck). */
static int cs_entries_read(struct cs_file *cf, uint64_t first, uint64_t n, struct cs_entry *e)
{
    size_t want = n * sizeof(*e), got = 0, end = (size_t)cs_entry_off(first) + want;
    if (end > cf->map_len)
        cs_map_grow(cf);
    if (end <= cf->map_len) {
        memcpy(e, (const char *)cf->map + cs_entry_off(first), want);
        return 0;
    }
    while (got < want) {
        ssize_t r = pread(cf->fd, (char *)e + got, want - got, cs_entry_off(first) + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    memset((char *)e + got, 0, want - got);
    return 0;
}

static int cs_entries_write(struct cs_file *cf, uint64_t first, uint64_t n,
                            const struct cs_entry *e)
{
    size_t want = n * sizeof(*e), done = 0;
    while (done < want) {
        ssize_t r = pwrite(cf->fd, (const char *)e + done, want - done,
                           cs_entry_off(first) + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        done += (size_t)r;
    }
    return 0;
}

/* --- blocks --------------------------------------------------------------- */

/* crc32c of a block of which len bytes were read; the rest (past end of
 * file) counts as zeros. */
static uint32_t cs_block_crc(const struct cs_layer *cs, const void *data, uint64_t len)
{
    static const char zeros[4096];
    uint32_t crc = xd_crc32c(0, data, len);
    for (uint64_t left = cs->block - len; left;) {
        uint64_t n = left < sizeof(zeros) ? left : sizeof(zeros);
        crc = xd_crc32c(crc, zeros, n);
        left -= n;
    }
    return crc;
}

static bool cs_matches(const struct cs_entry *e, uint32_t crc, unsigned *slot)
{
    if ((e->slots & CS_SLOT_CUR) && e->crc[0] == crc) {
        *slot = CS_SLOT_CUR;
        return true;
    }
    if ((e->slots & CS_SLOT_NEW) && e->crc[1] == crc) {
        *slot = CS_SLOT_NEW;
        return true;
    }
    return false;
}

/* A sync request of our own below: bytes done (a read stops short at end of
 * file) or -errno. */
static int64_t cs_sub(struct xd_layer *layer, struct xd_file *file, enum xd_op op, uint64_t off,
                      uint64_t len, void *buf)
{
    struct xd_req sub = {.op = op, .file = file, .off = off, .len = len, .buf = buf};
    xd_req_set_flags(&sub, XD_REQ_SYNC);
    int rc = xd_layer_submit(layer->lower, &sub);
    if (rc < 0)
        return rc;
    if (op == XD_OP_WRITE && sub.result >= 0 && (uint64_t)sub.result != len)
        return -EIO; /* never report part of a write as all of it */
    return sub.result;
}

/* Read block b whole into buf: the bytes read (short at end of file, 0
 * past it) or -errno. */
static int64_t cs_read_block(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *buf)
{
    struct cs_layer *cs = layer->priv;
    return cs_sub(layer, file, XD_OP_READ, b * cs->block, cs->block, buf);
}

static void cs_record_mismatch(struct xd_layer *layer, struct xd_file *file, uint64_t b,
                               const struct cs_entry *e, uint32_t got)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    cs->count.mismatches++;
    cs->has_error = true;
    snprintf(cs->error, sizeof(cs->error),
             "checksum: %s: block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 "): crc32c %08x "
             "matches neither the stored %08x nor the pending %08x (sidecar %s" CS_SUFFIX
             "); returning EIO",
             cf->data_path, b, b * cs->block, (b + 1) * cs->block - 1, got,
             (e->slots & CS_SLOT_CUR) ? e->crc[0] : 0, (e->slots & CS_SLOT_NEW) ? e->crc[1] : 0,
             cf->data_path);
}

/* Fold a NEW slot the block's data was found to match into CUR, unless the
 * entry changed meanwhile (another writer). */
static void cs_fold(struct xd_layer *layer, struct cs_file *cf, uint64_t b, uint32_t crc)
{
    struct cs_entry e;
    if (cf->read_only || cs_lock(cf, F_WRLCK, b, 1))
        return;
    if (!cs_entries_read(cf, b, 1, &e) && (e.slots & CS_SLOT_NEW) && e.crc[1] == crc) {
        e = (struct cs_entry){.crc = {crc, 0}, .slots = CS_SLOT_CUR};
        cs_entries_write(cf, b, 1, &e);
    }
    cs_lock(cf, F_UNLCK, b, 1);
}

/* A block that matched neither slot may have raced a writer (its data read
 * before the writer's entry changed): read the block and its entry again,
 * under the lock, and check once more. Fresh data that verifies is copied
 * over data[0, len). 0 or -EIO. */
static int cs_recheck(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *data,
                      uint64_t len)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    struct cs_entry e;
    char *blk = NULL;
    uint32_t got = 0;
    int rc = -EIO;
    cs->count.rechecked++;
    if (posix_memalign((void **)&blk, CS_BUF_ALIGN, cs->block))
        return -ENOMEM;
    if (cs_lock(cf, F_WRLCK, b, 1)) {
        free(blk);
        return -EIO;
    }
    int64_t n = cs_read_block(layer, file, b, blk);
    if (n >= 0 && !cs_entries_read(cf, b, 1, &e)) {
        unsigned slot;
        got = cs_block_crc(cs, blk, (uint64_t)n);
        if (!e.slots || cs_matches(&e, got, &slot)) {
            uint64_t have = (uint64_t)n < len ? (uint64_t)n : len;
            memcpy(data, blk, have);
            memset(data + have, 0, len - have);
            rc = 0;
        } else {
            cs_record_mismatch(layer, file, b, &e, got);
        }
    } else if (n < 0) {
        rc = (int)n;
    }
    cs_lock(cf, F_UNLCK, b, 1);
    free(blk);
    return rc;
}

/* Check len bytes read from block offset 0 of blocks first.. (buf holds
 * them, the last block maybe short at end of file). 0 or -EIO. */
static int cs_verify(struct xd_layer *layer, struct xd_file *file, uint64_t first, char *buf,
                     uint64_t len)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    uint64_t n = (len + cs->block - 1) / cs->block;
    struct cs_entry *e = cs_entries(cs, n);
    if (!e)
        return -ENOMEM;
    int rc = cs_entries_read(cf, first, n, e);
    for (uint64_t i = 0; i < n && !rc; i++) {
        char *data = buf + i * cs->block;
        uint64_t dlen = len - i * cs->block < cs->block ? len - i * cs->block : cs->block;
        unsigned slot;
        if (!e[i].slots) {
            cs->count.unknown++;
            continue;
        }
        uint32_t crc = cs_block_crc(cs, data, dlen);
        if (cs_matches(&e[i], crc, &slot)) {
            cs->count.verified++;
            if (slot == CS_SLOT_NEW) {
                cs_fold(layer, cf, first + i, crc);
                cs->count.folded_on_read++;
            }
            continue;
        }
        rc = cs_recheck(layer, file, first + i, data, dlen);
        if (!rc)
            cs->count.verified++;
    }
    return rc;
}

/* --- writes --------------------------------------------------------------- */

/* Which crc block b holds now, for an entry that has a NEW slot (a write
 * in flight elsewhere, or one cut short by a crash): read it and see.
 * false when it matches neither slot (a torn block). */
static bool cs_resolve(struct xd_layer *layer, struct xd_file *file, uint64_t b,
                       const struct cs_entry *e, uint32_t *cur)
{
    struct cs_layer *cs = layer->priv;
    char *blk = NULL;
    unsigned slot;
    bool found = false;
    cs->count.resolved++;
    if (posix_memalign((void **)&blk, CS_BUF_ALIGN, cs->block))
        return false;
    int64_t n = cs_read_block(layer, file, b, blk);
    if (n >= 0 && cs_matches(e, cs_block_crc(cs, blk, (uint64_t)n), &slot)) {
        *cur = e->crc[slot == CS_SLOT_CUR ? 0 : 1];
        found = true;
    }
    free(blk);
    return found;
}

/* Entry e of block b, about to be written with crc fresh: NEW <- fresh,
 * CUR <- what the block holds now. known: the caller read the block and
 * found it matched cur (partial writes), so no need to look. */
static void cs_prepare(struct xd_layer *layer, struct xd_file *file, uint64_t b,
                       struct cs_entry *e, uint32_t fresh, const uint32_t *known)
{
    uint32_t cur = e->crc[0];
    bool have_cur = e->slots & CS_SLOT_CUR;
    if (known) {
        cur = *known;
        have_cur = true;
    } else if (e->slots & CS_SLOT_NEW) {
        if (e->crc[1] == fresh)
            return; /* the same write again (resubmitted after -EBUSY): both already there */
        have_cur = cs_resolve(layer, file, b, e, &cur);
    }
    *e = (struct cs_entry){.crc = {have_cur ? cur : 0, fresh},
                           .slots = (have_cur ? CS_SLOT_CUR : 0) | CS_SLOT_NEW};
}

/* The data of blocks [first, first+n) is down (buf holds it): NEW becomes
 * CUR where it is still ours. The caller holds the lock on the entries. */
static void cs_fold_locked(struct xd_layer *layer, struct cs_file *cf, uint64_t first,
                           uint64_t n, const char *buf)
{
    struct cs_layer *cs = layer->priv;
    struct cs_entry *e = cs_entries(cs, n);
    if (e && !cs_entries_read(cf, first, n, e)) {
        for (uint64_t i = 0; i < n; i++) {
            uint32_t crc = xd_crc32c(0, buf + i * cs->block, cs->block);
            if ((e[i].slots & CS_SLOT_NEW) && e[i].crc[1] == crc)
                e[i] = (struct cs_entry){.crc = {crc, 0}, .slots = CS_SLOT_CUR};
        }
        cs_entries_write(cf, first, n, e);
    }
    cs->count.blocks_written += n;
}

static bool cs_write_landed(const struct xd_layer *layer, const struct xd_req *req)
{
    const struct cs_req *ctx = xd_req_ctx(layer, req);
    return ctx->kind == CS_WRITE && req->result >= 0 && (uint64_t)req->result == req->len;
}

/* A write that completed inline. One that failed keeps both slots: the
 * block reads as old, new or EIO. */
static void cs_write_done(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t first = req->off / cs->block, n = req->len / cs->block;
    if (!cs_write_landed(layer, req) || cs_lock(cf, F_WRLCK, first, n))
        return;
    cs_fold_locked(layer, cf, first, n, req->buf);
    cs_lock(cf, F_UNLCK, first, n);
}

/* The writes of one reap, file by file, folded under one lock over the
 * span of their entries: a lock costs two system calls, a batch of 32
 * writes would otherwise pay 64. */
static void cs_writes_reaped(struct xd_layer *layer, struct xd_req **done, int n)
{
    struct cs_layer *cs = layer->priv;
    for (int i = 0; i < n; i++) {
        if (!cs_write_landed(layer, done[i]))
            continue;
        struct xd_file *file = done[i]->file;
        struct cs_file *cf = file->priv[layer->level];
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int k = i; k < n; k++)
            if (done[k]->file == file && cs_write_landed(layer, done[k])) {
                uint64_t first = done[k]->off / cs->block;
                uint64_t end = first + done[k]->len / cs->block;
                lo = first < lo ? first : lo;
                hi = end > hi ? end : hi;
            }
        bool locked = !cs_lock(cf, F_WRLCK, lo, hi - lo);
        for (int k = i; k < n; k++)
            if (done[k]->file == file && cs_write_landed(layer, done[k])) {
                if (locked)
                    cs_fold_locked(layer, cf, done[k]->off / cs->block,
                                   done[k]->len / cs->block, done[k]->buf);
                ((struct cs_req *)xd_req_ctx(layer, done[k]))->kind = CS_PASS;
            }
        if (locked)
            cs_lock(cf, F_UNLCK, lo, hi - lo);
    }
}

/* Whole blocks: the sidecar learns NEW first, then the write goes down as
 * it came. */
static int cs_write_blocks(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t first = req->off / cs->block, n = req->len / cs->block;
    struct cs_entry *e = cs_entries(cs, n);
    int rc = e ? cs_lock(cf, F_WRLCK, first, n) : -ENOMEM;
    if (!rc) {
        rc = cs_entries_read(cf, first, n, e);
        for (uint64_t i = 0; i < n && !rc; i++)
            cs_prepare(layer, req->file, first + i, &e[i],
                       xd_crc32c(0, (const char *)req->buf + i * cs->block, cs->block), NULL);
        if (!rc)
            rc = cs_entries_write(cf, first, n, e);
        cs_lock(cf, F_UNLCK, first, n);
    }
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    ((struct cs_req *)xd_req_ctx(layer, req))->kind = CS_WRITE;
    rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE)
        cs_write_done(layer, req);
    return rc;
}

/* Read the edge block b of a partial write into blk, checked; *crc gets
 * its crc. 0, or -EIO (it is corrupt: a new crc over it would bless the
 * corruption) or another -errno. */
static int cs_read_edge(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *blk,
                        const struct cs_entry *e, uint32_t *crc, bool *known)
{
    struct cs_layer *cs = layer->priv;
    int64_t n = cs_read_block(layer, file, b, blk);
    if (n < 0)
        return (int)n;
    memset(blk + n, 0, cs->block - (uint64_t)n);
    *crc = cs_block_crc(cs, blk, (uint64_t)n);
    unsigned slot;
    *known = true; /* what the block holds now, under our lock: the old slot */
    if (!e->slots || cs_matches(e, *crc, &slot)) {
        if (e->slots)
            cs->count.verified++;
        return 0;
    }
    cs_record_mismatch(layer, file, b, e, *crc);
    return -EIO;
}

/* A write covering part of a block: under the lock on its blocks' entries,
 * read the edge blocks (checked), merge, record the crcs, write the
 * caller's bytes, fold. Completes inline. */
static int cs_write_partial(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t lo = req->off & ~(cs->block - 1);
    uint64_t hi = (req->off + req->len + cs->block - 1) & ~(cs->block - 1);
    uint64_t first = lo / cs->block, n = (hi - lo) / cs->block, last = first + n - 1;
    char *blocks = cs_blocks(cs, hi - lo);
    struct cs_entry *e = cs_entries(cs, n);
    uint32_t edge_crc[2];
    bool edge_known[2] = {false, false};
    int64_t rc = blocks && e ? cs_lock(cf, F_WRLCK, first, n) : -ENOMEM;
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    cs->count.partial_writes++;
    rc = cs_entries_read(cf, first, n, e);
    if (!rc && req->off != lo)
        rc = cs_read_edge(layer, req->file, first, blocks, &e[0], &edge_crc[0], &edge_known[0]);
    if (!rc && req->off + req->len != hi && (last != first || req->off == lo))
        rc = cs_read_edge(layer, req->file, last, blocks + (hi - lo) - cs->block, &e[n - 1],
                          &edge_crc[1], &edge_known[1]);
    if (!rc) {
        memcpy(blocks + (req->off - lo), req->buf, req->len);
        for (uint64_t i = 0; i < n; i++) {
            const uint32_t *known = NULL;
            if (i == 0 && edge_known[0])
                known = &edge_crc[0];
            else if (i == n - 1 && edge_known[1])
                known = &edge_crc[1];
            cs_prepare(layer, req->file, first + i, &e[i],
                       xd_crc32c(0, blocks + i * cs->block, cs->block), known);
        }
        rc = cs_entries_write(cf, first, n, e);
    }
    if (!rc)
        rc = cs_sub(layer, req->file, XD_OP_WRITE, req->off, req->len, req->buf);
    if (rc >= 0) {
        for (uint64_t i = 0; i < n; i++)
            if (e[i].slots & CS_SLOT_NEW)
                e[i] = (struct cs_entry){.crc = {e[i].crc[1], 0}, .slots = CS_SLOT_CUR};
        cs_entries_write(cf, first, n, e);
        cs->count.blocks_written += n;
    }
    cs_lock(cf, F_UNLCK, first, n);
    req->result = rc < 0 ? rc : (int64_t)req->len;
    return XD_DONE;
}

/* --- reads ---------------------------------------------------------------- */

static void cs_read_done(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    if (req->result <= 0)
        return;
    int rc = cs_verify(layer, req->file, req->off / cs->block, req->buf, (uint64_t)req->result);
    if (rc)
        req->result = rc;
}

/* A read not on block boundaries: the blocks around it, read and checked,
 * and the caller's part copied out. Completes inline. */
static int cs_read_partial(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    uint64_t lo = req->off & ~(cs->block - 1);
    uint64_t hi = (req->off + req->len + cs->block - 1) & ~(cs->block - 1);
    char *blocks = cs_blocks(cs, hi - lo);
    int64_t rc = blocks ? cs_sub(layer, req->file, XD_OP_READ, lo, hi - lo, blocks) : -ENOMEM;
    cs->count.partial_reads++;
    if (rc > 0) {
        int v = cs_verify(layer, req->file, lo / cs->block, blocks, (uint64_t)rc);
        if (v)
            rc = v;
    }
    if (rc >= 0) {
        uint64_t end = lo + (uint64_t)rc;
        uint64_t got = end > req->off ? end - req->off : 0;
        if (got > req->len)
            got = req->len;
        memcpy(req->buf, blocks + (req->off - lo), got);
        rc = (int64_t)got;
    }
    req->result = rc;
    return XD_DONE;
}

/* --- other requests ------------------------------------------------------- */

/* The sidecar is made durable first: a data block on disk never has an
 * older entry than itself once the fsync returns. */
static int cs_sync(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    int rc = req->op == XD_OP_FSYNC ? fsync(cf->fd) : fdatasync(cf->fd);
    cs->count.sidecar_syncs++;
    if (rc && errno != EINVAL) {
        req->result = -errno;
        return XD_DONE;
    }
    return xd_layer_submit(layer->lower, req);
}

/* Trimmed blocks read as zeros (or partly so): their entries become
 * unknown before the trim goes down. */
static int cs_trim(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t first = req->off / cs->block;
    uint64_t n = req->len ? (req->off + req->len - 1) / cs->block - first + 1 : 0;
    struct cs_entry *e = cs_entries(cs, n ? n : 1);
    int rc = e ? 0 : -ENOMEM;
    if (!rc && n && !(rc = cs_lock(cf, F_WRLCK, first, n))) {
        memset(e, 0, n * sizeof(*e));
        rc = cs_entries_write(cf, first, n, e);
        cs_lock(cf, F_UNLCK, first, n);
    }
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    return xd_layer_submit(layer->lower, req);
}

static int cs_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_req *ctx = xd_req_ctx(layer, req);
    bool whole = !((req->off | req->len) & (cs->block - 1));
    ctx->kind = CS_PASS;
    switch (req->op) {
    case XD_OP_WRITE:
        if (!req->len)
            break;
        return whole ? cs_write_blocks(layer, req) : cs_write_partial(layer, req);
    case XD_OP_READ: {
        if (!req->len)
            break;
        if (!whole)
            return cs_read_partial(layer, req);
        ctx->kind = CS_READ;
        int rc = xd_layer_submit(layer->lower, req);
        if (rc == XD_DONE)
            cs_read_done(layer, req);
        return rc;
    }
    case XD_OP_FSYNC:
    case XD_OP_FDATASYNC:
        return cs_sync(layer, req);
    case XD_OP_TRIM:
        return cs_trim(layer, req);
    default:
        break;
    }
    return xd_layer_submit(layer->lower, req);
}

static int cs_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                   const struct timespec *timeout)
{
    int n = xd_layer_reap(layer->lower, done, min, max, timeout);
    cs_writes_reaped(layer, done, n);
    for (int i = 0; i < n; i++) {
        struct cs_req *ctx = xd_req_ctx(layer, done[i]);
        if (ctx->kind == CS_READ)
            cs_read_done(layer, done[i]);
        ctx->kind = CS_PASS;
    }
    return n;
}

/* --- files ---------------------------------------------------------------- */

/* Every entry unknown. Zeroed in place, never truncated: another process
 * may have the sidecar mapped, and a mapping past end of file faults. */
static int cs_zero_entries(struct cs_file *cf)
{
    static const char zeros[4096];
    struct stat st;
    if (fstat(cf->fd, &st))
        return -errno;
    for (off_t off = CS_HEADER; off < st.st_size;) {
        size_t n = st.st_size - off < (off_t)sizeof(zeros) ? (size_t)(st.st_size - off) : sizeof(zeros);
        ssize_t w = pwrite(cf->fd, zeros, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += w;
    }
    return 0;
}

/* The sidecar's header is written by whoever finds it missing (the
 * creator, or an opener that raced it), under a lock. One that describes
 * another file (the data file was deleted and made again behind our back,
 * so its entries are stale) is emptied: every block unknown until written.
 * One of another block size is refused. */
static int cs_header_check(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                           const char *side, char *err, size_t errlen)
{
    struct cs_layer *cs = layer->priv;
    struct cs_header want = {.magic = CS_MAGIC, .block_size = (uint32_t)cs->block,
                             .entry_size = sizeof(struct cs_entry)}, have;
    struct stat st;
    struct statx stx;
    unsigned view;
    if (!xd_below_identity(layer, file, &st, &view)) {
        want.data_dev = (uint64_t)st.st_dev;
        want.data_ino = (uint64_t)st.st_ino;
    }
    if (!statx(AT_FDCWD, cf->data_path, 0, STATX_BTIME | STATX_INO, &stx) &&
        (stx.stx_mask & STATX_BTIME) && stx.stx_ino == want.data_ino)
        want.data_birth_ns = (uint64_t)stx.stx_btime.tv_sec * 1000000000u + stx.stx_btime.tv_nsec;
    struct flock fl = {.l_type = cf->read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET,
                       .l_len = CS_HEADER};
    int rc = 0;
    while (fcntl(cf->fd, F_OFD_SETLKW, &fl))
        if (errno != EINTR) {
            xd_errf(err, errlen, "enable_checksums: %s: cannot lock: %s", side, strerror(errno));
            return -errno;
        }
    ssize_t n = pread(cf->fd, &have, sizeof(have), 0);
    bool usable = n == (ssize_t)sizeof(have) && !memcmp(have.magic, want.magic, sizeof(want.magic)) &&
                  have.entry_size == want.entry_size;
    if (n > 0 && !usable) {
        rc = -EINVAL;
        xd_errf(err, errlen, "enable_checksums: %s: not an xdevice checksum file; allowed: "
                "a file this layer made, or none (move it away to start over)", side);
    } else if (usable && have.block_size != want.block_size) {
        rc = -EINVAL;
        xd_errf(err, errlen, "checksum_block_size=%" PRIu64 ": %s was made with %" PRIu32
                "; allowed: %" PRIu32 ", or remove the sidecar to start over (unchecked until rewritten)",
                cs->block, side, have.block_size, have.block_size);
    } else if (!cf->read_only && (n <= 0 || have.data_dev != want.data_dev ||
                                  have.data_ino != want.data_ino ||
                                  have.data_birth_ns != want.data_birth_ns)) {
        if (n > 0)
            cs->count.stale_sidecars++;
        if ((n > 0 && cs_zero_entries(cf)) ||
            pwrite(cf->fd, &want, sizeof(want), 0) != (ssize_t)sizeof(want)) {
            rc = -EIO;
            xd_errf(err, errlen, "enable_checksums: %s: cannot write its header", side);
        }
    }
    fl.l_type = F_UNLCK;
    fcntl(cf->fd, F_OFD_SETLK, &fl);
    return rc;
}

/* "<path the driver opens>.xdsum", opened or made in its checked directory,
 * never through a link, with file_permissions. */
static int cs_sidecar_open(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                           char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    const struct xd_layer *bottom = layer;
    while (bottom->lower)
        bottom = bottom->lower;
    const char *data = xd_file_path(bottom, file), *base;
    char side[4096];
    if (snprintf(side, sizeof(side), "%s" CS_SUFFIX, data) >= (int)sizeof(side)) {
        xd_errf(err, errlen, "enable_checksums: %s: path too long for its sidecar", data);
        return -ENAMETOOLONG;
    }
    if (!(cf->data_path = strdup(data)))
        return -ENOMEM;
    int dirfd = xd_dir_open_for(side, "enable_checksums", cfg->allow_shared_directories, &base,
                                err, errlen);
    if (dirfd < 0)
        return dirfd;
    int fd = xd_open_own_at(dirfd, base, O_RDWR, (mode_t)cfg->file_permissions);
    if (fd == -EACCES || fd == -EROFS) {
        fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        fd = fd < 0 ? -errno : fd;
        cf->read_only = fd >= 0;
    }
    close(dirfd);
    if (fd < 0) {
        xd_errf(err, errlen, "enable_checksums: %s: cannot open or create the sidecar: %s",
                side, fd == -ELOOP || fd == -EPERM ? xd_refusal(fd) : strerror(-fd));
        return fd;
    }
    cf->fd = fd;
    return cs_header_check(layer, file, cf, side, err, errlen);
}

static void cs_file_free(struct cs_file *cf)
{
    if (cf->map)
        munmap(cf->map, cf->map_len);
    if (cf->fd >= 0)
        close(cf->fd);
    free(cf->data_path);
    free(cf);
}

/* Opened below first, so the sidecar goes beside the file actually
 * holding the data (tmpfs's copy, say). */
static int cs_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                        uint64_t size, char *err, size_t errlen)
{
    struct cs_layer *cs = layer->priv;
    int rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (rc)
        return rc;
    struct cs_file *cf = calloc(1, sizeof(*cf));
    if (!cf) {
        xd_layer_file_close(layer->lower, file);
        return -ENOMEM;
    }
    cf->fd = -1;
    if ((rc = cs_sidecar_open(layer, file, cf, err, errlen))) {
        cs_file_free(cf);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    file->priv[layer->level] = cf;
    cs->count.files++;
    return 0;
}

static void cs_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct cs_file *cf = file->priv[layer->level];
    if (cf) {
        cs_file_free(cf);
        file->priv[layer->level] = NULL;
    }
    xd_layer_file_close(layer->lower, file);
}

/* --- control -------------------------------------------------------------- */

static int cs_open(struct xd_layer *layer, char *err, size_t errlen)
{
    struct cs_layer *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return -ENOMEM;
    cs->block = (uint64_t)layer->dev->cfg->checksum_block_size;
    layer->priv = cs;
    return 0;
}

static void cs_close(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    free(cs->blocks);
    free(cs->entries);
    free(cs);
}

static int cs_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    struct cs_layer *cs = layer->priv;
    if (!cs->has_error)
        return -ENOENT;
    snprintf(line, XD_ERRLEN, "%s", cs->error);
    cs->has_error = false;
    return 0;
}

static void cs_stats_json(struct xd_layer *layer, struct xd_json *j)
{
    struct cs_layer *cs = layer->priv;
    xd_json_object_begin(j, "checksum");
    xd_json_uint(j, "block_size", cs->block);
    xd_json_uint(j, "files", cs->count.files);
    xd_json_uint(j, "verified", cs->count.verified);
    xd_json_uint(j, "mismatches", cs->count.mismatches);
    xd_json_uint(j, "unknown", cs->count.unknown);
    xd_json_uint(j, "blocks_written", cs->count.blocks_written);
    xd_json_uint(j, "partial_writes", cs->count.partial_writes);
    xd_json_uint(j, "partial_reads", cs->count.partial_reads);
    xd_json_uint(j, "resolved", cs->count.resolved);
    xd_json_uint(j, "folded_on_read", cs->count.folded_on_read);
    xd_json_uint(j, "rechecked", cs->count.rechecked);
    xd_json_uint(j, "sidecar_syncs", cs->count.sidecar_syncs);
    xd_json_uint(j, "stale_sidecars", cs->count.stale_sidecars);
    xd_json_object_end(j);
}

const struct xd_ops xd_checksum_ops = {
    .version = XD_OPS_VERSION,
    .name = "checksum",
    .req_ctx_size = sizeof(struct cs_req),
    .open = cs_open,
    .close = cs_close,
    .file_open = cs_file_open,
    .file_close = cs_file_close,
    .submit = cs_submit,
    .reap = cs_reap,
    .take_error = cs_take_error,
    .stats_json = cs_stats_json,
};
