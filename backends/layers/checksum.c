/* checksum.c - the checksum layer (enable_checksums): a crc32c per block of
 * checksum_block_size, kept in a sidecar file beside the data as stored
 * ("<data path>.xdsum"), checked on every read.
 *
 * The sidecar: a 64-byte header (magic, block size, which data file) then
 * one 16-byte entry per block at a fixed offset, so writers of different
 * blocks never touch each other's bytes. An entry is two 8-byte slots, each
 * a crc and a tag saying it holds one: CUR, what the block held when a
 * write was last seen to land, and NEW, the last write sent down. Each slot
 * is stored whole with one aligned 8-byte store into a shared mapping of
 * the sidecar (a pwrite where the mapping does not reach), never read,
 * changed and written back as a pair, so no lock is needed for them.
 *
 * A write stores NEW before its data goes down and copies it to CUR once
 * the data is back; a block verifies when it matches either slot (a read
 * that saw a mix while another device's write of the block was copying is
 * read again until the write is done, cs_recheck). So after
 * a kill -9 at any point a block reads as its old or its new contents, and
 * a torn mix of the two matches neither and reads as EIO: never as wrong
 * data. A power loss also undoes writes that completed but were never
 * fsynced, so a third slot, DUR, keeps what the block held as of the last
 * fsync that covered it: each fsync takes the CUR of the blocks changed
 * since the one before (a bitmap per file) and, once the data's fsync has
 * returned, stores them as DUR; a block reverted to that reads as it.
 * (Sidecars made before DUR have 16-byte entries and keep two slots.) A write that finds NEW set and differing from CUR (a write cut
 * short by a crash, or another writer's in flight) reads the block first
 * to learn which one it holds (counted as resolved). An entry with no slot
 * (a block never written through this layer, a hole, a trimmed block, a
 * file that had data before checksums were enabled) is "unknown" and reads
 * unchecked; a first write of such a block cut short by a crash reads as
 * EIO, as no old crc was kept.
 *
 * The header names the data file (device, inode, birth time): a sidecar
 * left from a file that was deleted and made again without the layer is
 * emptied at open rather than failing every read of the new file. The
 * data file carries a mark that it has a sidecar (checksum_marker.c): a
 * marked file whose sidecar is missing or names another file is refused
 * at open, never started afresh unchecked. A sidecar this build started
 * tags what it leaves unchecked on purpose (CS_HDR_FULL), so there an
 * entry with no slot at all was lost, and its block reads as EIO unless
 * it holds zeros (cs_entry_lost).
 *
 * A read-only open (XD_OPEN_READONLY) writes nothing at all: the sidecar is
 * opened read-only, never made, and neither it nor the mark is written
 * (data appended behind the layer is unchecked in memory instead of
 * tagged). With no sidecar and no mark its reads go down unchecked
 * (cs_file.unchecked), said once; a mark with no sidecar is refused.
 *
 * The crc covers the whole block, bytes past end of file counted as zeros,
 * so a file growing past a block never changes that block's crc.
 *
 * Every write and trim claims the blocks it touches until it has folded:
 * one write of a block is out at a time, across this device and every other
 * descriptor of the sidecar (checksum_writers.c: OFD locks, none for a
 * file's only writer). A write that covers part of a block reads the rest
 * of the block, checked, merges and completes inline. Reads that are not
 * block-aligned also complete inline. Whole-block reads and writes go down
 * as they came (async stays async), checked and folded when reaped. A read
 * of blocks the device has a write of out lets that write land first
 * (cs_land_own_writes). An fsync or fdatasync syncs the sidecar before the
 * data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../core/crc32c.h"
#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/xd_internal.h"
#include "checksum_internal.h"

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

/* --- the sidecar ---------------------------------------------------------- */

off_t cs_slot_off(const struct cs_file *cf, uint64_t block, int which)
{
    return (off_t)(CS_HEADER + block * cf->entry_size + (unsigned)which * sizeof(cs_slot));
}

static bool cs_has_dur(const struct cs_file *cf)
{
    return cf->entry_size >= sizeof(struct cs_entry);
}

static cs_slot cs_slot_make(uint32_t crc)
{
    return (uint64_t)CS_TAG << 32 | crc;
}

static bool cs_slot_holds(cs_slot s, uint32_t crc)
{
    return s == cs_slot_make(crc);
}

static bool cs_slot_set(cs_slot s)
{
    return s >> 32 == CS_TAG;
}

/* Map the sidecar again when it has grown past the mapping. */
static void cs_map_grow(struct cs_file *cf)
{
    struct stat st;
    if (fstat(cf->fd, &st) || (size_t)st.st_size <= cf->map_len)
        return;
    int prot = PROT_READ | (cf->read_only ? 0 : PROT_WRITE);
    void *map = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, cf->fd, 0);
    if (map == MAP_FAILED)
        return; /* pread and pwrite serve */
    if (cf->map)
        munmap(cf->map, cf->map_len);
    cf->map = map;
    cf->map_len = (size_t)st.st_size;
    /* the writers' words (checksum_writers.c) follow the mapping */
    cf->solo.wanted = (uint32_t *)(void *)((char *)map + offsetof(struct cs_header, wanted));
    cf->solo.solo_out = (uint32_t *)(void *)((char *)map + offsetof(struct cs_header, solo_out));
}

/* Make the mapping reach end (bytes of sidecar): the sidecar is grown to
 * the next CS_GROW boundary by fallocating its last page only, which never
 * shrinks it (ftruncate could, racing another opener) and leaves the rest a
 * hole: a big file's or device's sidecar takes space (on /dev's devtmpfs,
 * memory) only where entries are written. Where fallocate is refused,
 * slots past the end are written with pwrite instead. */
static void cs_cover(struct cs_file *cf, uint64_t end)
{
    if (end <= cf->map_len)
        return;
    struct stat st;
    if (!cf->read_only && !fstat(cf->fd, &st) && (uint64_t)st.st_size < end) {
        uint64_t want = (end + CS_GROW - 1) / CS_GROW * CS_GROW;
        while (fallocate(cf->fd, 0, (off_t)want - CS_BUF_ALIGN, CS_BUF_ALIGN) && errno == EINTR)
            ;
    }
    cs_map_grow(cf);
}

/* The sidecar is mostly holes: a store through the mapping into one finds
 * its block at fault time, and on a full file system raises SIGBUS (on
 * tmpfs a load does too: it makes the page). A slot is used through the
 * mapping only once its page is known to have a block (core/backed.h); a
 * writer reserves it first, so a full file system is ENOSPC in words.
 * true when the slot may be used through the mapping; false with *rc 0
 * where it must go through pread or pwrite (read-only, or no fallocate
 * here), or -errno. */
static bool cs_slot_mappable(struct cs_file *cf, off_t off, int *rc)
{
    *rc = 0;
    if ((size_t)off + sizeof(cs_slot) > cf->map_len)
        return false;
    if (xd_backed_known(&cf->backed, cf->fd, (uint64_t)off, sizeof(cs_slot)))
        return true;
    if (cf->read_only)
        return false;
    int r = xd_backed_ensure(&cf->backed, cf->fd, (uint64_t)off, sizeof(cs_slot));
    if (r >= 0)
        return true;
    *rc = r == -EOPNOTSUPP ? 0 : r;
    return false;
}

static cs_slot cs_slot_load(struct cs_file *cf, uint64_t block, int which)
{
    off_t off = cs_slot_off(cf, block, which);
    cs_slot s = 0;
    int rc;
    cs_cover(cf, (uint64_t)off + sizeof(s));
    if (cs_slot_mappable(cf, off, &rc))
        return __atomic_load_n((cs_slot *)(void *)((char *)cf->map + off), __ATOMIC_ACQUIRE);
    while (pread(cf->fd, &s, sizeof(s), off) < 0 && errno == EINTR)
        ;
    return s; /* past the end, or a hole: 0, unknown */
}

static void cs_entry_load(struct cs_file *cf, uint64_t block, struct cs_entry *e)
{
    e->slot[CS_CUR] = cs_slot_load(cf, block, CS_CUR);
    e->slot[CS_NEW] = cs_slot_load(cf, block, CS_NEW);
    e->slot[CS_DUR] = cs_has_dur(cf) ? cs_slot_load(cf, block, CS_DUR) : 0;
}

/* One slot stored whole: an aligned 8-byte store, so a reader in any
 * process sees the old or the new slot. 0 or -errno. */
static int cs_slot_store(struct cs_file *cf, uint64_t block, int which, cs_slot s)
{
    off_t off = cs_slot_off(cf, block, which);
    int rc;
    if (cf->read_only)
        return -EROFS;
    cs_cover(cf, (uint64_t)off + sizeof(s));
    if (cs_slot_mappable(cf, off, &rc)) {
        __atomic_store_n((cs_slot *)(void *)((char *)cf->map + off), s, __ATOMIC_RELEASE);
        return 0;
    }
    if (rc)
        return rc;
    ssize_t w;
    while ((w = pwrite(cf->fd, &s, sizeof(s), off)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)sizeof(s) ? 0 : w < 0 ? -errno : -EIO;
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

enum cs_verdict { CS_UNKNOWN, CS_MATCH_CUR, CS_MATCH_NEW, CS_MATCH_DUR, CS_MATCH_HOLE, CS_MISMATCH };

/* What a block whose crc is crc is, by its entry e. A block the layer
 * never saw hold anything (no CUR) whose first write never landed (a kill
 * -9 with it queued: io_uring cancels it at exit) still holds what it held
 * before, which for a block never written is zeros (a hole, a new file's
 * tail): those read as zeros rather than EIO (the mirror's fill after a
 * kill -9 degraded a healthy copy over one such block). A block with a DUR
 * slot held fsynced data, so zeros are no hole there. Anything else
 * there matches no slot. */
static enum cs_verdict cs_judge(const struct cs_layer *cs, const struct cs_entry *e, uint32_t crc)
{
    if (!cs_slot_set(e->slot[CS_CUR]) && !cs_slot_set(e->slot[CS_NEW]) &&
        !cs_slot_set(e->slot[CS_DUR]))
        return CS_UNKNOWN;
    if (cs_slot_holds(e->slot[CS_CUR], crc))
        return CS_MATCH_CUR;
    if (cs_slot_holds(e->slot[CS_NEW], crc))
        return CS_MATCH_NEW;
    if (cs_slot_holds(e->slot[CS_DUR], crc))
        return CS_MATCH_DUR; /* writes since the last fsync never reached the disk */
    /* only a block that never held anything the layer saw: no CUR, and no
     * DUR (an fsync made data durable there, so zeros are not what it
     * held; a zeroed sidecar sector that took CUR alone left NEW and DUR
     * naming the data, and a zeroed data block then read as zeros) */
    if (!cs_slot_set(e->slot[CS_CUR]) && !cs_slot_set(e->slot[CS_DUR]) && crc == cs->zero_crc)
        return CS_MATCH_HOLE;
    return CS_MISMATCH;
}

/* The slot a verdict matched (0 for none): what CUR learns. */
static cs_slot cs_matched(const struct cs_layer *cs, const struct cs_entry *e, enum cs_verdict v)
{
    return v == CS_MATCH_CUR    ? e->slot[CS_CUR]
           : v == CS_MATCH_NEW  ? e->slot[CS_NEW]
           : v == CS_MATCH_DUR  ? e->slot[CS_DUR]
           : v == CS_MATCH_HOLE ? cs_slot_make(cs->zero_crc)
                                : 0;
}

/* Block b's CUR changed: the next fsync makes it durable (cs_durable_take). */
static void cs_mark_dirty(struct cs_file *cf, uint64_t b)
{
    size_t w = (size_t)(b / 64);
    if (!cs_has_dur(cf) || cf->read_only)
        return;
    if (w >= cf->dirty_words) {
        size_t words = w + 1 > 2 * cf->dirty_words ? w + 1 : 2 * cf->dirty_words;
        uint64_t *more = realloc(cf->dirty, words * sizeof(*more));
        if (!more)
            return; /* DUR stays older for this block: after a power loss it reads as EIO */
        memset(more + cf->dirty_words, 0, (words - cf->dirty_words) * sizeof(*more));
        cf->dirty = more;
        cf->dirty_words = words;
    }
    if (cf->dirty_lo == cf->dirty_hi)
        cf->dirty_lo = cf->dirty_hi = w;
    cf->dirty_lo = w < cf->dirty_lo ? w : cf->dirty_lo;
    cf->dirty_hi = w + 1 > cf->dirty_hi ? w + 1 : cf->dirty_hi;
    cf->dirty[w] |= 1ull << (b % 64);
}

/* CUR stored, and its block marked for the next fsync. 0 or -errno. */
static int cs_cur_store(struct cs_file *cf, uint64_t b, cs_slot s)
{
    int rc = cs_slot_store(cf, b, CS_CUR, s);
    if (!rc && s)
        cs_mark_dirty(cf, b);
    return rc;
}

/* A reader's fold: CUR learns s only if it still holds was. A writer may
 * have moved the block on since the entry was loaded (CUR folded, NEW
 * stored, its data going down); storing the older crc then would leave the
 * block's present contents in neither slot until that write lands, and for
 * good if it fails. Where the mapping does not reach, a plain store. */
static bool cs_cur_swap(struct cs_file *cf, uint64_t b, cs_slot was, cs_slot s)
{
    off_t off = cs_slot_off(cf, b, CS_CUR);
    int rc;
    if (!cs_slot_mappable(cf, off, &rc))
        return !rc && !cs_cur_store(cf, b, s); /* no block for the page: no fold */
    if (!__atomic_compare_exchange_n((cs_slot *)(void *)((char *)cf->map + off), &was, s, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return false;
    cs_mark_dirty(cf, b);
    return true;
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

/* Block b read whole into its own buffer; *crc its crc. 0 or -errno. */
static int cs_read_block_crc(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *blk,
                             uint32_t *crc)
{
    struct cs_layer *cs = layer->priv;
    int64_t n = cs_sub(layer, file, XD_OP_READ, b * cs->block, cs->block, blk);
    if (n < 0)
        return (int)n;
    memset(blk + n, 0, cs->block - (uint64_t)n);
    *crc = cs_block_crc(cs, blk, (uint64_t)n);
    return 0;
}

static void cs_record_mismatch(struct xd_layer *layer, struct xd_file *file, uint64_t b,
                               const struct cs_entry *e, uint32_t got)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    cs->count.mismatches++;
    cs->has_error = true;
    char durable[32] = "";
    if (cs_slot_set(e->slot[CS_DUR]))
        snprintf(durable, sizeof(durable), " nor the durable %08x", (uint32_t)e->slot[CS_DUR]);
    snprintf(cs->error, sizeof(cs->error),
             "checksum: %s: block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 "): crc32c %08x "
             "matches neither the stored %08x nor the pending %08x%s (sidecar %s); returning EIO",
             cf->data_path, b, b * cs->block, (b + 1) * cs->block - 1, got,
             (uint32_t)e->slot[CS_CUR], (uint32_t)e->slot[CS_NEW], durable, cf->side_path);
}

/* Block b's entry has no slot at all, in a sidecar that tags every block
 * it leaves unchecked on purpose (cf->full), and the block does not hold
 * zeros (a hole never written, or not yet): its slots were lost with the
 * sidecar's bytes (truncated, a page zeroed). Serving it unchecked would
 * serve a corrupt block as data, so it reads as EIO until rewritten. Not
 * past cf->appended_from: data appended without the layer that a sidecar
 * opened read-only could not tag (cs_header_check). */
static bool cs_entry_lost(const struct cs_layer *cs, const struct cs_file *cf, uint64_t b,
                          const struct cs_entry *e, uint32_t crc)
{
    return cf->full && !e->slot[CS_CUR] && !e->slot[CS_NEW] && !e->slot[CS_DUR] &&
           crc != cs->zero_crc && b < cf->appended_from;
}

static void cs_record_lost(struct xd_layer *layer, struct xd_file *file, uint64_t b)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    cs->count.lost_entries++;
    cs->has_error = true;
    snprintf(cs->error, sizeof(cs->error),
             "checksum: %s: block %" PRIu64 " (bytes %" PRIu64 "-%" PRIu64 "): its entry in the "
             "sidecar %s is gone (the sidecar truncated, or a page of it zeroed) and the block "
             "holds data: returning EIO until it is rewritten",
             cf->data_path, b, b * cs->block, (b + 1) * cs->block - 1, cf->side_path);
}

/* --- reads ---------------------------------------------------------------- */

/* How long a block that matches neither slot, with a write of it pending
 * (NEW not CUR) and nobody seen writing it, is read again before it is
 * called torn (cs_recheck), and the pause between reads: a sleep, not a
 * spin. A writer at work holds its claim or counts itself out (solo), so
 * only a failed or crashed write leaves this state, and each read of such
 * a torn block pays the wait: kept short (500 ms made a full chain with
 * fault injection, retries and a mirror miss make test's 180 s). */
#define CS_RECHECK_STILL_NS (20 * 1000000ull)
/* Past this, a block that keeps moving with no writer of ours at work
 * (something else scribbling on the file) is no longer waited for. */
#define CS_RECHECK_MOVING_NS (10 * 1000000000ull)
#define CS_RECHECK_PAUSE_NS 50000

static bool cs_entry_same(const struct cs_entry *a, const struct cs_entry *b)
{
    return !memcmp(a, b, sizeof(*a));
}

/* A block that matched neither slot may have raced a writer: a buffered
 * read copies while a write of the same block copies, so it can read a
 * mix of the two. Read the block and its entry again and check once more,
 * and again:
 * - while the block is seen moving (its entry changed during a read, or
 *   its data between two reads) or a writer is at work on it (another
 *   descriptor holds its claim, or a solo writer, which takes none, has
 *   writes out): a write is landing, however long a loaded machine takes
 *   (moving with nobody of ours at work, up to CS_RECHECK_MOVING_NS: then
 *   something else scribbles on the file);
 * - for CS_RECHECK_STILL_NS more while a write of it is pending with
 *   nobody seen at work (its writer was preempted between two looks, or a
 *   crash left it: then the block is torn), and at least one pause: this
 *   thread preempted between its own looks has not waited for anyone.
 * A settled entry (NEW is CUR) that still and unwritten data does not
 * match is corrupt at once. Waiting only 20 ms in all, whatever moved,
 * failed a verify read of a 1 MiB block two loaded jobs wrote in turns:
 * the entry moved during the read, the last writer had just let go, and
 * the read was called torn. Readers take no lock: one waiting in a reap,
 * holding its own writes' locks, could wait on a writer waiting on it; the
 * re-read settles once the write's data is down, whoever reaps it. Fresh
 * data that verifies is copied over data[0, len). 0 or -EIO. */
static int cs_recheck(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *data,
                      uint64_t len)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    struct cs_entry before, e;
    char *blk = NULL;
    uint32_t crc, last = 0;
    int rc;
    cs->count.rechecked++;
    if (posix_memalign((void **)&blk, CS_BUF_ALIGN, cs->block))
        return -ENOMEM;
    uint64_t first_look = xd_clock_monotonic_ns(), still_since = first_look;
    bool drained = false, first = true, paused = false;
    for (;;) {
        cs_entry_load(cf, b, &before);
        rc = cs_read_block_crc(layer, file, b, blk, &crc);
        cs_entry_load(cf, b, &e);
        if (rc || cs_judge(cs, &e, crc) != CS_MISMATCH)
            break;
        bool moved = !cs_entry_same(&before, &e) || (!first && crc != last);
        bool pending = cs_slot_set(e.slot[CS_NEW]) && e.slot[CS_NEW] != e.slot[CS_CUR];
        uint64_t now = xd_clock_monotonic_ns();
        first = false;
        last = crc;
        if (cs_writer_at_work(cf, b) || (moved && now - first_look < CS_RECHECK_MOVING_NS)) {
            still_since = now;
        } else if (!pending || (paused && now - still_since > CS_RECHECK_STILL_NS)) {
            cs_record_mismatch(layer, file, b, &e, crc);
            rc = -EIO;
            break;
        }
        if (!drained) {
            /* the write may be another device's of this thread, queued: it
             * cannot land while this thread waits here, so the thread's
             * devices let their writes land first (-EDEADLK inside a
             * drain: the wait is as before) */
            drained = true;
            (void)xd_turns_drain_thread();
            continue;
        }
        struct timespec pause = {0, CS_RECHECK_PAUSE_NS};
        nanosleep(&pause, NULL);
        paused = true;
    }
    if (!rc)
        memcpy(data, blk, len);
    free(blk);
    return rc;
}

/* Check len bytes read from the start of block first on (buf holds them,
 * the last block maybe short at end of file). A block that matches the
 * NEW slot only had its write land unseen (a crash): CUR learns it. 0 or
 * -EIO. */
static int cs_verify(struct xd_layer *layer, struct xd_file *file, uint64_t first, char *buf,
                     uint64_t len)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    uint64_t n = (len + cs->block - 1) / cs->block;
    for (uint64_t i = 0; i < n; i++) {
        char *data = buf + i * cs->block;
        uint64_t dlen = len - i * cs->block < cs->block ? len - i * cs->block : cs->block;
        struct cs_entry e;
        cs_entry_load(cf, first + i, &e);
        uint32_t crc = cs_block_crc(cs, data, dlen);
        enum cs_verdict v = cs_judge(cs, &e, crc);
        switch (v) {
        case CS_UNKNOWN:
            if (cs_entry_lost(cs, cf, first + i, &e, crc)) {
                cs_record_lost(layer, file, first + i);
                return -EIO;
            }
            cs->count.unknown++;
            continue;
        case CS_MATCH_NEW:
        case CS_MATCH_DUR:
        case CS_MATCH_HOLE:
            if (!cf->read_only &&
                cs_cur_swap(cf, first + i, e.slot[CS_CUR], cs_matched(cs, &e, v)))
                cs->count.folded_on_read++;
            /* fall through */
        case CS_MATCH_CUR:
            cs->count.verified++;
            continue;
        case CS_MISMATCH:
            break;
        }
        int rc = cs_recheck(layer, file, first + i, data, dlen);
        if (rc)
            return rc;
        cs->count.verified++;
    }
    return 0;
}

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

/* --- writes --------------------------------------------------------------- */

/* Block b is about to be written with crc fresh: CUR must say what it
 * holds now, then NEW learns fresh. When NEW is set and differs from CUR
 * nobody saw whether that write landed, so the block is read to know; a
 * block matching neither keeps no CUR (its old contents were torn). */
static int cs_prepare(struct xd_layer *layer, struct xd_file *file, uint64_t b, uint32_t fresh,
                      bool *raced)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    struct cs_entry e;
    cs_entry_load(cf, b, &e);
    if (cs_slot_holds(e.slot[CS_NEW], fresh))
        return 0; /* the same data again (or resubmitted after -EBUSY): old and new kept */
    if (cs_slot_set(e.slot[CS_NEW]) && e.slot[CS_NEW] != e.slot[CS_CUR]) {
        char *blk = NULL;
        uint32_t now;
        cs->count.resolved++;
        *raced = true;
        if (posix_memalign((void **)&blk, CS_BUF_ALIGN, cs->block))
            return -ENOMEM;
        int rc = cs_read_block_crc(layer, file, b, blk, &now);
        free(blk);
        if (rc)
            return rc;
        enum cs_verdict v = cs_judge(cs, &e, now);
        if (v != CS_MATCH_CUR && (rc = cs_cur_store(cf, b, cs_matched(cs, &e, v))))
            return rc;
    }
    return cs_slot_store(cf, b, CS_NEW, cs_slot_make(fresh));
}

/* The write of block b with crc landed: CUR learns it. Two writes of one
 * block in flight at once may land in either order, whatever order they
 * complete in, so both stay candidates, one per slot:
 * - another write was sent down since this one (NEW no longer holds crc):
 *   CUR takes this one, NEW keeps the other;
 * - this write was sent down while another was in flight (raced) and CUR
 *   holds a candidate already: CUR keeps it (the other write's, or what
 *   the block held); a read that matches NEW folds it later.
 * A third write in flight at once can still leave a landed block matching
 * neither slot: it reads as EIO, never as wrong data. */
static void cs_fold(struct cs_file *cf, uint64_t b, uint32_t crc, bool raced)
{
    if (raced && cs_slot_holds(cs_slot_load(cf, b, CS_NEW), crc) &&
        cs_slot_set(cs_slot_load(cf, b, CS_CUR)))
        return;
    cs_cur_store(cf, b, cs_slot_make(crc));
}

/* A whole-block write that completed: its blocks fold. One that failed
 * keeps both slots: the block reads as old, new or EIO. */
static void cs_write_done(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    if (req->result < 0 || (uint64_t)req->result != req->len)
        return;
    uint64_t first = req->off / cs->block, n = req->len / cs->block;
    bool raced = ((struct cs_req *)xd_req_ctx(layer, req))->raced;
    for (uint64_t i = 0; i < n; i++)
        cs_fold(cf, first + i, xd_crc32c(0, (const char *)req->buf + i * cs->block, cs->block),
                raced);
    cs->count.blocks_written += n;
}

/* A claimed write or trim goes down: done inline, it folds and lets go
 * now; queued, it joins the writes out (room for it is made first, so it
 * is never out unlisted); refused (-EBUSY), it lets go and comes back (its
 * NEW stays, and cs_prepare knows it again). */
static int cs_send_claimed(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_req *ctx = xd_req_ctx(layer, req);
    struct cs_layer *cs = layer->priv;
    int rc = xd_req_list_room(&cs->flight, 1);
    if (rc) {
        cs_release(layer, req);
        ctx->kind = CS_PASS;
        req->result = rc;
        return XD_DONE;
    }
    rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE) {
        cs_complete(layer, req);
    } else if (rc == XD_QUEUED) {
        if (ctx->claim != CS_CLAIM_NONE)
            xd_req_list_add(&cs->flight, req);
    } else {
        cs_release(layer, req);
        ctx->kind = CS_PASS;
    }
    return rc;
}

/* Whole blocks: claimed, the sidecar learns NEW first, then the write goes
 * down as it came. */
static int cs_write_blocks(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    uint64_t first = req->off / cs->block, n = req->len / cs->block;
    struct cs_req *ctx = xd_req_ctx(layer, req);
    ctx->raced = false;
    int rc = cs_claim(layer, req);
    for (uint64_t i = 0; i < n && !rc; i++)
        rc = cs_prepare(layer, req->file, first + i,
                        xd_crc32c(0, (const char *)req->buf + i * cs->block, cs->block),
                        &ctx->raced);
    if (rc) {
        cs_release(layer, req);
        req->result = rc;
        return XD_DONE;
    }
    ctx->kind = CS_WRITE;
    return cs_send_claimed(layer, req);
}

/* The edge block b of a partial write read into blk and checked; CUR then
 * says what it holds (blessing nothing the checks refused). 0, -EIO (it
 * is corrupt: a crc over it merged would pass the corruption on) or
 * another -errno. */
static int cs_read_edge(struct xd_layer *layer, struct xd_file *file, uint64_t b, char *blk)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = file->priv[layer->level];
    struct cs_entry e;
    uint32_t crc;
    int rc = cs_read_block_crc(layer, file, b, blk, &crc);
    if (rc)
        return rc;
    cs_entry_load(cf, b, &e);
    enum cs_verdict v = cs_judge(cs, &e, crc);
    if (v == CS_UNKNOWN && cs_entry_lost(cs, cf, b, &e, crc)) {
        cs_record_lost(layer, file, b);
        return -EIO; /* merged, its crc would bless what nothing checked */
    }
    if (v == CS_MISMATCH) { /* a whole-block write of it copying meanwhile? */
        if ((rc = cs_recheck(layer, file, b, blk, cs->block)))
            return rc;
        crc = cs_block_crc(cs, blk, cs->block);
        cs_entry_load(cf, b, &e);
        v = cs_judge(cs, &e, crc);
    }
    if (v != CS_UNKNOWN)
        cs->count.verified++;
    return v == CS_MATCH_CUR ? 0 : cs_cur_store(cf, b, cs_slot_make(crc));
}

/* A write covering part of a block: with its blocks claimed (no other
 * write of them out, here or elsewhere), read the edge blocks (checked),
 * merge, record the crcs, write the caller's bytes, fold. Completes
 * inline. */
static int cs_write_partial(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t lo = req->off & ~(cs->block - 1);
    uint64_t hi = (req->off + req->len + cs->block - 1) & ~(cs->block - 1);
    uint64_t first = lo / cs->block, n = (hi - lo) / cs->block, last = first + n - 1;
    char *blocks = cs_blocks(cs, hi - lo);
    int64_t rc = blocks ? cs_claim(layer, req) : -ENOMEM;
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    cs->count.partial_writes++;
    bool head = req->off != lo, tail = req->off + req->len != hi;
    if (head)
        rc = cs_read_edge(layer, req->file, first, blocks);
    if (!rc && tail && (last != first || !head))
        rc = cs_read_edge(layer, req->file, last, blocks + (hi - lo) - cs->block);
    bool raced = false;
    if (!rc) {
        memcpy(blocks + (req->off - lo), req->buf, req->len);
        for (uint64_t i = 0; i < n && !rc; i++)
            rc = cs_prepare(layer, req->file, first + i,
                            xd_crc32c(0, blocks + i * cs->block, cs->block), &raced);
    }
    if (!rc)
        rc = cs_sub(layer, req->file, XD_OP_WRITE, req->off, req->len, req->buf);
    if (rc >= 0) {
        for (uint64_t i = 0; i < n; i++)
            cs_fold(cf, first + i, xd_crc32c(0, blocks + i * cs->block, cs->block), raced);
        cs->count.blocks_written += n;
    }
    cs_release(layer, req);
    req->result = rc < 0 ? rc : (int64_t)req->len;
    return XD_DONE;
}

/* --- other requests ------------------------------------------------------- */

/* The blocks marked since the last fsync was sent, each with its CUR now:
 * what this fsync makes durable. The marks are cleared; NULL when there
 * are none (or no memory: they stay for the next fsync). */
static struct cs_durable *cs_durable_take(struct cs_file *cf)
{
    size_t n = 0;
    for (size_t w = cf->dirty_lo; w < cf->dirty_hi; w++)
        n += (size_t)__builtin_popcountll(cf->dirty[w]);
    struct cs_durable *d = n ? malloc(sizeof(*d) + n * sizeof(d->at[0])) : NULL;
    if (!d)
        return NULL;
    d->n = 0;
    for (size_t w = cf->dirty_lo; w < cf->dirty_hi; w++) {
        for (uint64_t bits = cf->dirty[w]; bits; bits &= bits - 1) {
            uint64_t b = (uint64_t)w * 64 + (unsigned)__builtin_ctzll(bits);
            d->at[d->n].block = b;
            d->at[d->n++].cur = cs_slot_load(cf, b, CS_CUR);
        }
        cf->dirty[w] = 0;
    }
    cf->dirty_lo = cf->dirty_hi = 0;
    return d;
}

/* The fsync that took d returned: on success each block's CUR of then is
 * what the disk holds (DUR); on failure the blocks wait for the next one. */
static void cs_durable_done(struct cs_file *cf, struct cs_durable *d, int64_t result)
{
    for (size_t i = 0; d && i < d->n; i++) {
        if (result < 0)
            cs_mark_dirty(cf, d->at[i].block);
        else if (cs_slot_set(d->at[i].cur))
            cs_slot_store(cf, d->at[i].block, CS_DUR, d->at[i].cur);
    }
    free(d);
}

static void cs_sync_done(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_req *ctx = xd_req_ctx(layer, req);
    cs_durable_done(req->file->priv[layer->level], ctx->durable, req->result);
    ctx->durable = NULL;
}

/* The sidecar is made durable first: a data block on disk never has an
 * older entry than itself once the fsync returns. The blocks changed since
 * the last fsync learn DUR when the data's fsync returns (cs_sync_done). */
static int cs_sync(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    struct cs_req *ctx = xd_req_ctx(layer, req);
    if (cf->unchecked) /* no sidecar open */
        return xd_layer_submit(layer->lower, req);
    ctx->durable = cs_durable_take(cf);
    int rc = req->op == XD_OP_FSYNC ? fsync(cf->fd) : fdatasync(cf->fd);
    cs->count.sidecar_syncs++;
    if (rc && errno != EINVAL) {
        req->result = -errno;
        cs_sync_done(layer, req);
        return XD_DONE;
    }
    ctx->kind = CS_SYNC;
    rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE) {
        cs_sync_done(layer, req);
    } else if (rc < 0) { /* not sent (-EBUSY: the caller sends it again) */
        cs_durable_done(cf, ctx->durable, rc);
        ctx->durable = NULL;
    }
    return rc;
}

/* Trimmed blocks read as zeros (or partly so): their entries become
 * unknown (NEW first, so a reader meanwhile still finds CUR) before the
 * trim goes down. NEW says CS_UNCHECKED: unknown on purpose, never taken
 * for an entry the sidecar lost (cs_entry_lost). */
static int cs_trim(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    uint64_t first = req->off / cs->block;
    uint64_t end = req->len ? (req->off + req->len - 1) / cs->block + 1 : first;
    int rc = cs_claim(layer, req);
    for (uint64_t b = first; b < end && !rc; b++)
        if (!(rc = cs_slot_store(cf, b, CS_NEW, CS_UNCHECKED)) &&
            !(rc = cs_slot_store(cf, b, CS_CUR, 0)) &&
            cs_has_dur(cf))
            rc = cs_slot_store(cf, b, CS_DUR, 0);
    if (rc) {
        cs_release(layer, req);
        req->result = rc;
        return XD_DONE;
    }
    ((struct cs_req *)xd_req_ctx(layer, req))->kind = CS_TRIM;
    return cs_send_claimed(layer, req);
}

static int cs_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_req *ctx = xd_req_ctx(layer, req);
    cs_writers_owner(layer);
    bool whole = !((req->off | req->len) & (cs->block - 1));
    ctx->kind = CS_PASS;
    switch (req->op) {
    case XD_OP_WRITE:
        if (!req->len)
            break;
        return whole ? cs_write_blocks(layer, req) : cs_write_partial(layer, req);
    case XD_OP_READ: {
        if (!req->len || ((struct cs_file *)req->file->priv[layer->level])->unchecked)
            break; /* unchecked: a read-only open with no sidecar to check against */
        int landed = cs_land_own_writes(layer, req);
        if (landed) {
            req->result = landed;
            return XD_DONE;
        }
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

/* A request back from below: checked or folded as its kind says, and a
 * write's or trim's claim let go (after the fold, so the next writer of
 * its blocks finds CUR settled). */
void cs_complete(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_req *ctx = xd_req_ctx(layer, req);
    if (ctx->kind == CS_READ)
        cs_read_done(layer, req);
    else if (ctx->kind == CS_WRITE)
        cs_write_done(layer, req);
    else if (ctx->kind == CS_SYNC)
        cs_sync_done(layer, req);
    if (ctx->kind == CS_WRITE || ctx->kind == CS_TRIM)
        cs_release(layer, req);
    ctx->kind = CS_PASS;
}

/* What a drain held comes back first (cs_drain), unless a drain is under
 * way (its batch may not have completed yet); then what is done below. */
static int cs_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                   const struct timespec *timeout)
{
    struct cs_layer *cs = layer->priv;
    unsigned got = cs->draining ? 0 : xd_req_list_take(&cs->held, done, max);
    if (got == max || (got && got >= min))
        return (int)got;
    int n = xd_layer_reap(layer->lower, done + got, min > got ? min - got : 0, max - got, timeout);
    if (n < 0)
        return got ? (int)got : n;
    for (int i = 0; i < n; i++)
        cs_complete(layer, done[got + (unsigned)i]);
    return (int)got + n;
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

static uint32_t cs_header_crc(const struct cs_header *h)
{
    return xd_crc32c(0, h, offsetof(struct cs_header, hdr_crc));
}

/* The header, its crc kept, tagged tag (CS_HDR_TAG or CS_HDR_FULL). */
static int cs_header_write(struct cs_file *cf, const struct cs_header *h, uint32_t tag)
{
    struct cs_header sealed = *h;
    sealed.hdr_crc = cs_header_crc(&sealed);
    sealed.hdr_tag = tag;
    ssize_t w;
    while ((w = pwrite(cf->fd, &sealed, sizeof(sealed), 0)) < 0 && errno == EINTR)
        ;
    return w == (ssize_t)sizeof(sealed) ? 0 : w < 0 ? -errno : -EIO;
}

/* A header of an earlier build (no crc kept) that checked out: its crc
 * and tag written in place, the two words only (the writers' words after
 * them are in use). Best effort: unsealed, it works as before. */
static void cs_header_seal(struct cs_file *cf, const struct cs_header *h)
{
    uint32_t words[2] = {cs_header_crc(h), CS_HDR_TAG};
    while (pwrite(cf->fd, words, sizeof(words), offsetof(struct cs_header, hdr_crc)) < 0 &&
           errno == EINTR)
        ;
}

/* The data file is the sidecar's, under a new identity (cs_header_check):
 * its file system came back under another device number, or the two were
 * moved to another file system together. The header's identity and, for a
 * sealed one, its crc rewritten in one pwrite of the bytes from data_dev
 * through hdr_crc (the writers' words after them are in use). Best effort:
 * a header left as it was still matches through the mark. */
static void cs_header_moved(struct cs_file *cf, struct cs_header *h, const struct cs_header *now,
                            bool sealed)
{
    h->data_dev = now->data_dev;
    h->data_ino = now->data_ino;
    h->data_birth_ns = now->data_birth_ns;
    if (sealed)
        h->hdr_crc = cs_header_crc(h);
    const size_t from = offsetof(struct cs_header, data_dev);
    const size_t to = sealed ? offsetof(struct cs_header, hdr_tag) : offsetof(struct cs_header, hdr_crc);
    while (pwrite(cf->fd, (const char *)h + from, to - from, (off_t)from) < 0 && errno == EINTR)
        ;
}

/* The identity a header names, as the mark keeps it (CS_MARK_ID bytes). */
static void cs_header_id(const struct cs_header *h, unsigned char *id)
{
    _Static_assert(offsetof(struct cs_header, data_birth_ns) - offsetof(struct cs_header, data_dev) ==
                       CS_MARK_ID - 8, "the identity is three words");
    memcpy(id, &h->data_dev, CS_MARK_ID);
}

/* Does the data file's mark name the file h names? Then the mark and the
 * sidecar were made together and travelled together (checksum_marker.c). */
static bool cs_mark_names(const char *data, const struct cs_header *h)
{
    unsigned char id[CS_MARK_ID], want[CS_MARK_ID], none[CS_MARK_ID] = {0};
    char was[8];
    if (cs_mark_read_id(data, was, sizeof(was), id) != 1 || !memcmp(id, none, sizeof(id)))
        return false;
    cs_header_id(h, want);
    return !memcmp(id, want, sizeof(id));
}

/* Entries of blocks [from, to) tagged CS_UNCHECKED (NEW), the rest of
 * them zero, written with pwrite before the sidecar is mapped. 0 or -errno. */
static int cs_tag_range(struct cs_file *cf, uint64_t from, uint64_t to)
{
    enum { PER = 1024 };
    static const cs_slot tagged[CS_SLOTS] = {0, CS_UNCHECKED, 0};
    char *buf = malloc((size_t)PER * cf->entry_size);
    if (!buf)
        return -ENOMEM;
    for (unsigned i = 0; i < PER; i++)
        memcpy(buf + (size_t)i * cf->entry_size, tagged, cf->entry_size);
    int rc = 0;
    for (uint64_t b = from; b < to && !rc;) {
        size_t len = (size_t)(to - b < PER ? to - b : PER) * cf->entry_size;
        ssize_t w = pwrite(cf->fd, buf, len, cs_slot_off(cf, b, CS_CUR));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < (ssize_t)cf->entry_size)
            rc = w < 0 ? -errno : -EIO;
        else
            b += (uint64_t)w / cf->entry_size;
    }
    free(buf);
    return rc;
}

/* The next run of data in [*off, size), as blocks [*from, *to), by the
 * layers below's SEEK_DATA and SEEK_HOLE (where they answer neither, all
 * of it counts as data); *off moves past it. false once only holes are
 * left. */
static bool cs_next_data(struct xd_layer *layer, struct xd_file *file, int64_t *off, int64_t size,
                         uint64_t *from, uint64_t *to)
{
    const struct cs_layer *cs = layer->priv;
    if (*off >= size)
        return false;
    int64_t data = xd_below_seek(layer, file, SEEK_DATA, (uint64_t)*off);
    if (data == -ENXIO)
        return false; /* holes to the end */
    if (data < 0)
        data = *off; /* no SEEK_DATA below: all of it counts as data */
    int64_t hole = xd_below_seek(layer, file, SEEK_HOLE, (uint64_t)data);
    if (hole <= data || hole > size)
        hole = size;
    *from = (uint64_t)data >> cs->shift;
    *to = ((uint64_t)hole + cs->block - 1) >> cs->shift;
    *off = hole;
    return true;
}

/* The most entries a sidecar's start tags (bytes of them), cs_start. */
#define CS_TAG_MOST (64ull << 20)

/* How many blocks of the file hold data, by the layers below's SEEK_DATA
 * (all of them where none answers; a block device is all data). */
static uint64_t cs_data_blocks(struct xd_layer *layer, struct xd_file *file)
{
    int64_t size = xd_layer_file_size(layer->lower, file), off = 0;
    uint64_t from, to, blocks = 0;
    while (cs_next_data(layer, file, &off, size, &from, &to))
        blocks += to - from;
    return blocks;
}

/* The blocks the data file holds already, as a sidecar starts (cs_start):
 * nothing checked them, so they are unchecked on purpose (CS_UNCHECKED),
 * not lost entries. Only where it has data: holes read as zeros, which an
 * empty entry serves. 0 or -errno. */
static int cs_tag_present(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf)
{
    int64_t size = xd_layer_file_size(layer->lower, file), off = 0;
    for (uint64_t from, to; cs_next_data(layer, file, &off, size, &from, &to);) {
        int rc = cs_tag_range(cf, from, to);
        if (rc)
            return rc;
    }
    return 0;
}

/* Empty entries of blocks [from, to) tagged CS_UNCHECKED, run by run:
 * an entry another writer set meanwhile is never written over with what
 * was read (a tag landing on one being written leaves it checked or
 * unchecked, never mismatching). 0 or -errno. */
static int cs_tag_empty(struct cs_file *cf, uint64_t from, uint64_t to)
{
    enum { PER = 1024 };
    char *buf = malloc((size_t)PER * cf->entry_size);
    static const char zero[sizeof(struct cs_entry)];
    int rc = buf ? 0 : -ENOMEM;
    for (uint64_t b = from; b < to && !rc;) {
        size_t n = (size_t)(to - b < PER ? to - b : PER);
        ssize_t got = pread(cf->fd, buf, n * cf->entry_size, cs_slot_off(cf, b, CS_CUR));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        size_t have = (size_t)got / cf->entry_size; /* past the sidecar's end: all empty */
        uint64_t run = UINT64_MAX;
        for (size_t i = 0; i <= n && !rc; i++) {
            bool empty = i < n && (i >= have || !memcmp(buf + i * cf->entry_size, zero, cf->entry_size));
            if (empty && run == UINT64_MAX)
                run = b + i;
            else if (!empty && run != UINT64_MAX) {
                rc = cs_tag_range(cf, run, b + i);
                run = UINT64_MAX;
            }
        }
        b += n;
    }
    free(buf);
    return rc;
}

/* Data the file holds past the size its mark recorded (the layer's last
 * open or close) was written without the layer: psync appending, fio's
 * file_append through another engine. A full sidecar read its empty
 * entries as lost (EIO) where psync reads the data; they are tagged
 * unchecked now, as a new sidecar tags the data already there
 * (cs_tag_present), where the file has data. Entries the layer set (its
 * own writes past that size, by an open a kill ended) stay. */
static void cs_tag_appended(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                            uint64_t end, int64_t size)
{
    struct cs_layer *cs = layer->priv;
    if (end == CS_MARK_NO_END || size <= 0 || (uint64_t)size <= end ||
        (((uint64_t)size - end) >> cs->shift) * cf->entry_size > CS_TAG_MOST)
        return;
    bool tagged = false;
    int64_t off = (int64_t)(end >> cs->shift << cs->shift);
    for (uint64_t from, to; cs_next_data(layer, file, &off, size, &from, &to); tagged = true)
        if (cs_tag_empty(cf, from, to))
            return;
    if (tagged)
        fdatasync(cf->fd);
}

/* Data the file held before its sidecar reads unchecked until rewritten:
 * said once at the open that starts the sidecar (unless that open has
 * said something already: a copy's own sidecar), where the layers below
 * tell data from holes; where they cannot (the block type) every byte
 * would count, and the line would be about nothing. */
static void cs_tell_present(struct xd_layer *layer, struct xd_file *file,
                            const struct cs_file *cf, uint64_t blocks)
{
    struct cs_layer *cs = layer->priv;
    int64_t probe = xd_below_seek(layer, file, SEEK_DATA, 0);
    if (!blocks || cf->told || (probe < 0 && probe != -ENXIO))
        return;
    snprintf(cs->notice, sizeof(cs->notice),
             "checksum: %s: starts its sidecar %s over %" PRIu64 " blocks of %" PRIu64
             " bytes the file already held, written without checksums: they read unchecked "
             "until rewritten", cf->data_path, cf->side_path, blocks, cs->block);
}

/* A sidecar started afresh, as new or emptied (stale: it described another
 * file): header written as CS_HDR_TAG, the data already there tagged
 * unchecked and made durable, and only then the header CS_HDR_FULL, so a
 * crash between leaves a sound sidecar of the older kind, never a full one
 * missing tags (whose blocks would read as EIO). A file with so much data
 * that its tags would pass CS_TAG_MOST is not tagged: its sidecar stays of
 * the older kind rather than write gigabytes at open (a sidecar takes
 * space only where entries are written). Only data counts: a big file fio
 * has just made (a hole, or fallocated, which SEEK_DATA skips) has nothing
 * to tag, and gets the full kind. 0 or -errno. */
static int cs_start(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                    const struct cs_header *want, bool stale)
{
    int rc;
    if (stale && (rc = cs_zero_entries(cf)))
        return rc;
    if ((rc = cs_header_write(cf, want, CS_HDR_TAG)))
        return rc;
    cf->entry_size = want->entry_size; /* emptied: the entries are this build's */
    uint64_t blocks = cs_data_blocks(layer, file);
    cs_tell_present(layer, file, cf, blocks);
    if (blocks * cf->entry_size > CS_TAG_MOST || cs_tag_present(layer, file, cf) ||
        (blocks && fdatasync(cf->fd)))
        return 0; /* best effort: an older kind of sidecar serves as before */
    if (!cs_header_write(cf, want, CS_HDR_FULL))
        cf->full = true;
    return 0;
}

/* The identity of the file at path as a header names it (CS_MARK_ID
 * bytes: device, inode, birth time where the file system keeps one), as
 * cs_header_check takes it; -errno when there is none there. */
static int cs_path_id(const char *path, unsigned char *id)
{
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_BTIME, &stx))
        return -errno;
    struct cs_header h = {.data_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor),
                          .data_ino = stx.stx_ino};
    if (stx.stx_mask & STATX_BTIME)
        h.data_birth_ns = (uint64_t)stx.stx_btime.tv_sec * 1000000000u + stx.stx_btime.tv_nsec;
    cs_header_id(&h, id);
    return 0;
}

/* The data file a sidecar at side was named for: cs_sidecar_path backwards
 * (<data>.xdsum beside it, or in a checksum_directory its absolute path
 * with '/' written %2F and '%' %25). A name it reads wrongly (a data file
 * whose own name holds "%2F") names a file without the identity wanted,
 * which the caller then refuses as before. */
static int cs_sidecar_data_path(const char *side, char *data, size_t len)
{
    size_t n = strlen(side), suffix = strlen(CS_SUFFIX);
    const char *base = strrchr(side, '/');
    base = base ? base + 1 : side;
    if (n <= suffix || strcmp(side + n - suffix, CS_SUFFIX) || n - suffix >= len)
        return -EINVAL;
    if (strncmp(base, "%2F", 3)) { /* beside the data file */
        memcpy(data, side, n - suffix);
        data[n - suffix] = '\0';
        return 0;
    }
    size_t at = 0;
    for (const char *p = base; p < side + n - suffix && at + 1 < len; at++) {
        unsigned code;
        if (*p == '%' && sscanf(p + 1, "%2X", &code) == 1 && (code == '/' || code == '%')) {
            data[at] = (char)code;
            p += 3;
        } else {
            data[at] = *p++;
        }
    }
    data[at] = '\0';
    return 0;
}

/* A copy of a marked file (cp -a, a backup restored beside the original)
 * carries the original's mark: the mark names another sidecar (was) and
 * another file (id), and that file is still at the sidecar's data path,
 * its sidecar naming it. This file then never had a sidecar of its own,
 * and starts one as an unmarked file does: before, it was refused as a
 * file whose sidecar was lost. A file moved away from its sidecar (mv to
 * another file system, or a rename: the same inode) leaves no such
 * original, and stays refused. */
static bool cs_mark_came_with_copy(const struct cs_file *cf, const char *side, const char *was,
                                   const unsigned char *id)
{
    unsigned char mine[CS_MARK_ID], theirs[CS_MARK_ID];
    char original[PATH_MAX];
    struct cs_header h = {0};
    if (!strcmp(was, side) || cs_path_id(cf->data_path, mine) || !memcmp(mine, id, CS_MARK_ID) ||
        cs_sidecar_data_path(was, original, sizeof(original)) ||
        cs_path_id(original, theirs) || memcmp(theirs, id, CS_MARK_ID))
        return false;
    int fd = open(was, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO: no wait */
    struct stat st;
    if (fd < 0)
        return false;
    bool sound = !fstat(fd, &st) && S_ISREG(st.st_mode) &&
                 pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
                 !memcmp(h.magic, CS_MAGIC, sizeof(h.magic)) &&
                 (h.hdr_tag == CS_HDR_TAG || h.hdr_tag == CS_HDR_FULL) &&
                 h.hdr_crc == cs_header_crc(&h);
    close(fd);
    cs_header_id(&h, theirs);
    return sound && !memcmp(theirs, id, CS_MARK_ID);
}

/* A data file marked as having a sidecar (checksum_marker.c) whose sidecar
 * is missing (empty: made just now, or truncated to nothing) or describes
 * another file (copied or moved over it): refused with one line, nothing
 * emptied or made. 0 for a file with no mark (new, or made again without
 * the layer), or with a mark that came with a copy of its file
 * (cs_mark_came_with_copy, said once): its sidecar starts afresh. */
static int cs_mark_refuse(struct cs_layer *cs, struct cs_file *cf, const char *side,
                          bool missing, char *err, size_t errlen)
{
    char was[PATH_MAX + 1], made_as[PATH_MAX + 16] = "";
    unsigned char id[CS_MARK_ID];
    if (cs_mark_read_id(cf->data_path, was, sizeof(was), id) != 1)
        return 0;
    if (cs_mark_came_with_copy(cf, side, was, id)) {
        xd_errf(cs->notice, sizeof(cs->notice),
                "checksum: %s: a copy of a file with checksums (its mark names %s, the "
                "original's sidecar): it starts its own sidecar, and its blocks read unchecked "
                "until rewritten", cf->data_path, was);
        cf->told = true;
        return 0;
    }
    if (was[0] && strcmp(was, side))
        snprintf(made_as, sizeof(made_as), " (made as %s)", was);
    xd_errf(err, errlen, "enable_checksums: %s: its sidecar %s%s %s, yet the file is marked (%s) "
            "as written with checksums, so its blocks would read unchecked; allowed: its own "
            "sidecar back, or start over (unchecked until rewritten): remove the sidecar and "
            "the mark (setfattr -x %s %s; setfattr is in Debian's attr package)",
            cf->data_path, side, made_as, missing ? "is missing or empty" : "describes another file",
            CS_MARK_XATTR, CS_MARK_XATTR, cf->data_path);
    return -EINVAL;
}

/* The data file marked as having this sidecar, from the open that started
 * it on (or the first open of an earlier build's), with the identity its
 * header names (now), so that the two can travel together. Where it cannot
 * be, the open that started the sidecar says so once (cs->notice). */
static void cs_mark_ensure(struct cs_layer *cs, const struct cs_file *cf, const char *side,
                           bool started, const struct cs_header *now, uint64_t end)
{
    char was[8];
    unsigned char id[CS_MARK_ID], want[CS_MARK_ID];
    uint64_t had;
    if (cf->read_only)
        return;
    cs_header_id(now, want);
    if (cs_mark_read_all(cf->data_path, was, sizeof(was), id, &had) == 1 &&
        !memcmp(id, want, sizeof(id)) && had == end)
        return;
    int rc = cs_mark_write(cf->data_path, side, want, end);
    if (rc && started)
        snprintf(cs->notice, sizeof(cs->notice),
                 "checksum: %s: cannot mark it (%s: %s): were its sidecar deleted or replaced, "
                 "nothing would tell", cf->data_path, CS_MARK_XATTR, strerror(-rc));
}

/* A read-only open has nothing of the file's to check its reads against
 * (why, of the sidecar side): they go down unchecked (cf->unchecked), said
 * once; nothing is made or written. */
static void cs_unchecked(struct cs_layer *cs, struct cs_file *cf, const char *side,
                         const char *why)
{
    cf->unchecked = cf->read_only = true;
    xd_errf(cs->notice, sizeof(cs->notice),
            "checksum: %s: opened read-only and its sidecar %s %s: its reads are unchecked "
            "until a writable open starts the sidecar", cf->data_path, side, why);
}

/* The sidecar's header is written by whoever finds it missing (the
 * creator, or an opener that raced it), under a lock. One that describes
 * another file (the data file was deleted and made again behind our back,
 * so its entries are stale) is emptied: every block unknown until written.
 * One of another block size is refused. A read-only open (ro_open) writes
 * nothing: a missing header or another file's, with no mark, leaves the
 * file unchecked (cs_unchecked); data appended without the layer past the
 * mark's size is unchecked in memory (cf->appended_from), not tagged. */
static int cs_header_check(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                           const char *side, bool ro_open, char *err, size_t errlen)
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
                  (have.entry_size == want.entry_size || have.entry_size == CS_ENTRY_OLD);
    bool sealed = usable && (have.hdr_tag == CS_HDR_TAG || have.hdr_tag == CS_HDR_FULL);
    /* the file is its inode and, where the file system keeps one, its birth
     * time: those travel with the file system. Its device number need not
     * (a loop image attached to another /dev/loopN, disks enumerated in
     * another order at boot, a dm device's minor), so with a birth time to
     * tell files apart a new device number is the same file moved, not
     * another file: the header takes the new number (cs_header_moved). */
    bool moved = false;
    bool same = n > 0 && usable && have.data_ino == want.data_ino &&
                have.data_birth_ns == want.data_birth_ns &&
                (have.data_dev == want.data_dev || (moved = want.data_birth_ns != 0));
    /* moved to another file system with its sidecar (mv, cp -a of both): a
     * new inode, but the mark travelled with the file and names the file
     * the header names, so the two were made together */
    if (!same && n > 0 && usable && cs_mark_names(cf->data_path, &have))
        same = moved = true;
    cf->entry_size = usable ? have.entry_size : want.entry_size;
    if (n > 0 && !usable) {
        rc = -EINVAL;
        xd_errf(err, errlen, "enable_checksums: %s: not an xdevice checksum file; allowed: "
                "a file this layer made, or none (move it away to start over)", side);
    } else if (usable && !sealed && have.hdr_tag) {
        /* builds before the header crc left the tag 0; anything else is a
         * flipped tag, which resealed as CHDR would have turned a CHDF
         * sidecar's lost entries into unchecked ones without a word */
        rc = -EINVAL;
        xd_errf(err, errlen, "enable_checksums: %s: corrupt header: tag %08" PRIx32 " is none "
                "this layer writes; allowed: a sound header, or none (move it away to start "
                "over: the file's blocks then read unchecked until rewritten)",
                side, have.hdr_tag);
    } else if (sealed && have.hdr_crc != cs_header_crc(&have)) {
        /* a bit flip in the data file's identity made it look like
         * another file's sidecar, and emptied it: every block read
         * unchecked from then on, corrupt ones as data */
        rc = -EINVAL;
        xd_errf(err, errlen, "enable_checksums: %s: corrupt header: crc32c %08" PRIx32
                " does not match %08" PRIx32 "; allowed: a sound header, or none (move it "
                "away to start over: the file's blocks then read unchecked until rewritten)",
                side, cs_header_crc(&have), have.hdr_crc);
    } else if (usable && have.block_size != want.block_size) {
        rc = -EINVAL;
        xd_errf(err, errlen, "checksum_block_size=%" PRIu64 ": %s was made with %" PRIu32
                "; allowed: %" PRIu32 ", or remove the sidecar to start over (unchecked until rewritten)",
                cs->block, side, have.block_size, have.block_size);
    } else if (!same && (rc = cs_mark_refuse(cs, cf, side, n <= 0, err, errlen))) {
        /* said */
    } else if (ro_open && !same) {
        cs_unchecked(cs, cf, side, n > 0 ? "describes another file" : "is empty");
    } else if (!cf->read_only && !same) {
        if (n > 0)
            cs->count.stale_sidecars++;
        if ((rc = cs_start(layer, file, cf, &want, n > 0)))
            xd_errf(err, errlen, "enable_checksums: %s: cannot write its header: %s", side,
                    strerror(-rc));
    } else {
        if (moved && !cf->read_only)
            cs_header_moved(cf, &have, &want, sealed);
        if (usable && !sealed && same && !cf->read_only)
            cs_header_seal(cf, &have);
        cf->full = usable && have.hdr_tag == CS_HDR_FULL;
    }
    if (!rc && !cf->unchecked) {
        int64_t size = xd_layer_file_size(layer->lower, file);
        uint64_t end = CS_MARK_NO_END;
        if (same && cf->full && cs_mark_read_all(cf->data_path, NULL, 0, NULL, &end) == 1) {
            if (!cf->read_only)
                cs_tag_appended(layer, file, cf, end, size);
            else if (end != CS_MARK_NO_END && size > 0 && (uint64_t)size > end)
                cf->appended_from = end >> cs->shift; /* as cs_tag_appended would tag */
        }
        cs_mark_ensure(cs, cf, side, !same, &want, size > 0 ? (uint64_t)size : 0);
    }
    fl.l_type = F_UNLCK;
    fcntl(cf->fd, F_OFD_SETLK, &fl);
    return rc;
}

/* The sidecar's path: "<data>.xdsum" beside the data, or in
 * checksum_directory the data's absolute path with '/' as %2F and '%' as
 * %25, so files of one name in two directories never share a sidecar.
 * 0, or -ENAMETOOLONG with one line in err. */
static int cs_sidecar_path(const struct xd_config *cfg, const char *data, char *side, size_t len,
                           char *err, size_t errlen)
{
    char cwd[PATH_MAX] = "";
    size_t at = 0;
    if (!cfg->checksum_directory[0]) {
        const char *slash = strrchr(data, '/');
        size_t name = strlen(slash ? slash + 1 : data), most = NAME_MAX - strlen(CS_SUFFIX);
        if (name <= most && snprintf(side, len, "%s" CS_SUFFIX, data) < (int)len)
            return 0;
        xd_errf(err, errlen, "enable_checksums: %s: a file name of %zu bytes has no room for its sidecar \"<name>" CS_SUFFIX "\" beside it; allowed: names of at most %zu bytes",
                data, name, most);
        return -ENAMETOOLONG;
    }
    if (data[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        return -errno;
    at = (size_t)snprintf(side, len, "%s/", cfg->checksum_directory);
    size_t name_start = at;
    for (int part = 0; part < 3 && at < len; part++) {
        const char *p = part == 0 ? cwd : part == 1 ? (cwd[0] ? "/" : "") : data;
        for (; *p && at + 4 < len; p++)
            at += *p == '/' || *p == '%'
                      ? (size_t)snprintf(side + at, len - at, "%%%02X", (unsigned)*p)
                      : (size_t)snprintf(side + at, len - at, "%c", *p);
    }
    if (at + sizeof(CS_SUFFIX) <= len && at - name_start + sizeof(CS_SUFFIX) - 1 <= NAME_MAX) {
        memcpy(side + at, CS_SUFFIX, sizeof(CS_SUFFIX));
        return 0;
    }
    xd_errf(err, errlen, "enable_checksums: %s: path too long to name its sidecar in checksum_directory=%s (at most %d bytes once '/' is written %%2F)",
            data, cfg->checksum_directory, NAME_MAX - (int)sizeof(CS_SUFFIX) + 1);
    return -ENAMETOOLONG;
}

/* A read-only open's sidecar: opened O_RDONLY, never made, never through
 * a link, a regular file with one link (a FIFO planted there must not
 * hang the open). Another user's is taken only where this process could
 * not write it, as a writable open's read-only retry took it (EACCES,
 * EROFS: a reader of another user's checked file); one it could write
 * (root, or a file anyone may write) is refused as a writable open
 * refuses it: whoever planted it there could have written anything. The
 * fd or -errno (-ENOENT: none there). */
static int cs_sidecar_open_ro(int dirfd, const char *base)
{
    struct stat st;
    int fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENXIO ? -EPERM : -errno;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (st.st_uid != geteuid() &&
         !faccessat(dirfd, base, W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW))) {
        close(fd);
        return -EPERM;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* The sidecar (cs_sidecar_path) of the data file's own name (xd_own_name
 * of the file below opened; the path as given where below names none),
 * opened or made in its checked directory, never through a link, with
 * file_permissions. A sidecar per name let a write through a symlink leave
 * the entries of the file's other name stale, and reads through that name
 * failed with EIO; a file with hard links has no own name: refused. A
 * read-only open (ro_open) makes nothing, neither the sidecar nor its
 * directory: with none there, an unmarked file reads unchecked
 * (cs_unchecked) and a marked one is refused (cs_mark_refuse). */
static int cs_sidecar_open(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                           bool ro_open, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    const struct xd_layer *bottom = layer;
    while (bottom->lower)
        bottom = bottom->lower;
    const char *given = xd_file_path(bottom, file), *data, *base;
    struct stat below;
    unsigned view;
    bool known = !xd_below_identity(layer, file, &below, &view);
    int rc = known ? xd_refuse_other_names("enable_checksums", given, &below, "its sidecar", err,
                                           errlen)
                   : 0;
    if (rc)
        return rc;
    if (!(cf->data_path = known ? xd_own_name(given, &below) : strdup(given)))
        return -ENOMEM;
    data = cf->data_path;
    char side[4096];
    rc = cs_sidecar_path(cfg, data, side, sizeof(side), err, errlen);
    if (rc)
        return rc;
    if (cfg->checksum_directory[0] && cfg->auto_create_dirs && !ro_open)
        xd_mkdir_parents(side, (mode_t)cfg->dir_permissions);
    int dirfd = xd_dir_open_for(side, "enable_checksums", cfg->allow_shared_directories, &base,
                                err, errlen);
    if (dirfd < 0 && !(ro_open && dirfd == -ENOENT)) /* read-only: no directory, no sidecar */
        return dirfd;
    bool made = false;
    int fd;
    if (ro_open) {
        fd = dirfd < 0 ? -ENOENT : cs_sidecar_open_ro(dirfd, base);
        cf->read_only = true;
    } else {
        fd = xd_open_own_at_made(dirfd, base, O_RDWR, (mode_t)cfg->file_permissions, &made);
        if (fd == -EACCES || fd == -EROFS) {
            fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            fd = fd < 0 ? -errno : fd;
            cf->read_only = fd >= 0;
        }
    }
    if (dirfd >= 0)
        close(dirfd);
    if (fd == -ENOENT && ro_open) {
        if ((rc = cs_mark_refuse(layer->priv, cf, side, true, err, errlen)))
            return rc;
        cs_unchecked(layer->priv, cf, side, "is missing");
        return 0;
    }
    if (fd < 0) {
        xd_errf(err, errlen, "enable_checksums: %s: cannot open or create the sidecar: %s",
                side, fd == -ELOOP || fd == -EPERM ? xd_refusal(fd) : strerror(-fd));
        return fd;
    }
    cf->fd = fd;
    if (!(cf->side_path = strdup(side)))
        return -ENOMEM;
    rc = cs_header_check(layer, file, cf, side, ro_open, err, errlen);
    if (rc && made) /* refused: the sidecar made just now is not left to pass for one */
        xd_unlink_made(side, fd);
    if (!rc && cf->unchecked) { /* nothing in it to check against */
        close(cf->fd);
        cf->fd = -1;
    }
    return rc;
}

/* This boot, as a non-zero tag (0: unknown). */
static uint64_t cs_boot_tag(void)
{
    /* the same value from every thread: two racing store it twice */
    static _Atomic uint64_t tag;
    uint64_t have = atomic_load_explicit(&tag, memory_order_relaxed);
    if (!have) {
        char id[64];
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, id, sizeof(id)) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0)
            have = ((uint64_t)xd_crc32c(0, id, (size_t)n) << 32 | xd_crc32c(0x9e3779b9u, id, (size_t)n)) | 1;
        atomic_store_explicit(&tag, have, memory_order_relaxed);
    }
    return have;
}

/* Settled blocks whose CUR is not their DUR were written by an earlier
 * open that ended without an fsync of them (a close, a kill -9). Only the
 * blocks an open wrote itself learnt DUR at its fsyncs, so such a block
 * kept the DUR of an older version for good, fsyncs of the file since
 * notwithstanding, and a later lost write (the disk back at that version,
 * the sidecar right) read as it. Now, at a writable open:
 * - in the boot of the last writable open (the header's `boot`), nothing
 *   undid those writes (a kill -9 leaves them in the page cache): they are
 *   marked for this open's first fsync, which makes them durable;
 * - after a reboot, the power loss may have undone them, so nothing is
 *   promoted unread: CUR takes DUR back and NEW keeps the write, so the
 *   block reads as either (a pending write, as a crash leaves it), and the
 *   first read that finds the write there folds it (then DUR follows).
 * The sidecar is read where it has data (SEEK_DATA), entries as stored. */
static void cs_mark_unsynced(struct cs_file *cf, uint64_t blocks)
{
    enum { PER = 4096 };
    if (cf->read_only || !cs_has_dur(cf))
        return;
    uint64_t now = cs_boot_tag(), was = 0;
    const off_t boot_at = (off_t)offsetof(struct cs_header, boot);
    if (pread(cf->fd, &was, sizeof(was), boot_at) != (ssize_t)sizeof(was))
        was = 0;
    bool same_boot = now && was == now;
    struct cs_entry *buf = blocks ? malloc(PER * sizeof(*buf)) : NULL;
    for (uint64_t b = 0; buf && b < blocks;) {
        off_t at = cs_slot_off(cf, b, CS_CUR), data = lseek(cf->fd, at, SEEK_DATA);
        if (data < 0)
            break; /* no data past at (ENXIO), or no SEEK_DATA: the rest unread */
        if (data > at) {
            b = ((uint64_t)data - CS_HEADER) / sizeof(*buf);
            at = cs_slot_off(cf, b, CS_CUR);
        }
        size_t n = blocks - b < PER ? (size_t)(blocks - b) : PER;
        ssize_t got = n ? pread(cf->fd, buf, n * sizeof(*buf), at) : 0;
        if (got < (ssize_t)sizeof(*buf))
            break;
        n = (size_t)got / sizeof(*buf);
        for (size_t i = 0; i < n; i++) {
            cs_slot cur = buf[i].slot[CS_CUR], dur = buf[i].slot[CS_DUR];
            if (!cs_slot_set(cur) || buf[i].slot[CS_NEW] != cur || dur == cur)
                continue;
            if (same_boot)
                cs_mark_dirty(cf, b + i);
            else if (cs_slot_set(dur))
                cs_cur_swap(cf, b + i, cur, dur);
        }
        b += n;
    }
    free(buf);
    if (now && !same_boot)
        while (pwrite(cf->fd, &now, sizeof(now), boot_at) < 0 && errno == EINTR)
            ;
}

static void cs_file_free(struct cs_file *cf)
{
    if (cf->map)
        munmap(cf->map, cf->map_len);
    if (cf->fd >= 0)
        close(cf->fd);
    xd_backed_free(&cf->backed);
    free(cf->data_path);
    free(cf->side_path);
    free(cf->dirty);
    free(cf);
}

/* A full sidecar (cf->full) that ends before data the file holds lost its
 * tail (truncated): those blocks read as EIO (cs_entry_lost), said once
 * here, before the sidecar is grown over them. Writes through the layer
 * grow the sidecar before their data goes down, so only a truncation or
 * data written without the layer gets here. Where the layers below cannot
 * seek data nothing is said (the reads still say it, block by block). */
static void cs_tell_truncated(struct xd_layer *layer, struct xd_file *file, struct cs_file *cf,
                              int64_t bytes)
{
    struct cs_layer *cs = layer->priv;
    struct stat st;
    if (!cf->full || bytes <= 0 || fstat(cf->fd, &st) || st.st_size < (off_t)CS_HEADER)
        return;
    uint64_t covered = ((uint64_t)st.st_size - CS_HEADER) / cf->entry_size;
    uint64_t blocks = ((uint64_t)bytes + cs->block - 1) >> cs->shift;
    if (blocks > cf->appended_from) /* past it: appended behind the layer, unchecked */
        blocks = cf->appended_from;
    if (covered >= blocks)
        return;
    int64_t data = xd_below_seek(layer, file, SEEK_DATA, covered << cs->shift);
    if (data < 0 || data >= bytes || ((uint64_t)data >> cs->shift) >= blocks)
        return;
    snprintf(cs->notice, sizeof(cs->notice),
             "checksum: %s: its sidecar %s ends at block %" PRIu64 " but the file holds data "
             "past it (truncated?): those blocks read as EIO until rewritten",
             cf->data_path, cf->side_path, covered);
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
    cf->appended_from = UINT64_MAX;
    if ((rc = cs_sidecar_open(layer, file, cf, flags & XD_OPEN_READONLY, err, errlen))) {
        cs_file_free(cf);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    if (cf->unchecked) { /* read-only, nothing to check against: reads go down as they came */
        file->priv[layer->level] = cf;
        cs->count.files++;
        return 0;
    }
    /* the mapping reaches every block the file has, so slots cost no system call */
    int64_t bytes = xd_layer_file_size(layer->lower, file);
    uint64_t blocks = bytes > 0 ? ((uint64_t)bytes + cs->block - 1) / cs->block : 0;
    cs_tell_truncated(layer, file, cf, bytes);
    cs_cover(cf, (uint64_t)cs_slot_off(cf, blocks, CS_CUR));
    cs_map_grow(cf);
    cs_mark_unsynced(cf, blocks);
    file->priv[layer->level] = cf;
    if ((rc = cs_writers_join(layer, cf))) {
        xd_errf(err, errlen, "enable_checksums: the sidecar of %s: cannot lock: %s",
                cf->data_path, strerror(-rc));
        file->priv[layer->level] = NULL;
        cs_file_free(cf);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    cs->count.files++;
    return 0;
}

/* The file's size as this close leaves it, into its mark (checksum_marker.c):
 * what the next open finds past it was written without the layer. */
static void cs_mark_end(struct xd_layer *layer, struct xd_file *file, const struct cs_file *cf)
{
    unsigned char id[CS_MARK_ID];
    uint64_t had, mine[2];
    struct stat st;
    unsigned view;
    int64_t size = xd_layer_file_size(layer->lower, file);
    if (cf->read_only || !cf->data_path || !cf->side_path || size < 0 ||
        xd_below_identity(layer, file, &st, &view) ||
        cs_mark_read_all(cf->data_path, NULL, 0, id, &had) != 1 || had == (uint64_t)size)
        return;
    /* only the mark of the file this device has open: the name may hold
     * another one by now (removed and made again by another run) */
    mine[0] = (uint64_t)st.st_dev;
    mine[1] = (uint64_t)st.st_ino;
    if (memcmp(id, mine, sizeof(mine)))
        return;
    cs_mark_write(cf->data_path, cf->side_path, id, (uint64_t)size);
}

static void cs_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct cs_file *cf = file->priv[layer->level];
    if (cf) {
        cs_mark_end(layer, file, cf);
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
    cs->shift = (unsigned)__builtin_ctzll(cs->block);
    cs->zero_crc = cs_block_crc(cs, "", 0);
    layer->priv = cs;
    return cs_writers_open(layer);
}

static void cs_close(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    cs_writers_close(layer);
    free(cs->blocks);
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

static const char *cs_notice(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    return cs->notice[0] ? cs->notice : NULL;
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
    xd_json_uint(j, "lost_entries", cs->count.lost_entries);
    xd_json_uint(j, "solo_files", cs->count.solo_files);
    xd_json_uint(j, "solo_regained", cs->count.solo_regained);
    xd_json_uint(j, "lock_waits", cs->count.lock_waits);
    xd_json_uint(j, "drained", cs->count.drained);
    xd_json_object_end(j);
}

/* The file is being removed (xd_unlink): its sidecar goes too. */
static int cs_unlink_sidecar(struct xd_layer *layer, const char *path, const char *bottom,
                             char *err, size_t errlen)
{
    (void)path;
    char side[4096];
    int rc = cs_sidecar_path(layer->dev->cfg, bottom, side, sizeof(side), err, errlen);
    if (!rc && (rc = xd_unlink_own(side)) < 0)
        xd_errf(err, errlen, "%s: cannot remove the checksum sidecar: %s", side, strerror(-rc));
    return rc;
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
    .notice = cs_notice,
    .stats_json = cs_stats_json,
    .unlink = cs_unlink_sidecar,
};
