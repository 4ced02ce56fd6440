/* sparse.c - the sparse layer: all-zero blocks of a write become holes, and
 * reads of holes are served as zeros without I/O.
 *
 * Blocks are hole_detection_size bytes aligned to file offsets, so a block
 * is a hole or not whatever the writes that covered it looked like. Only
 * blocks wholly inside a write count, and only an entirely zero block ever
 * becomes a hole. A write with at least zero_block_threshold zero blocks is
 * split, in file-offset order: data runs are written and zero runs punched
 * (XD_OP_TRIM below, FALLOC_FL_PUNCH_HOLE in the file driver), each
 * synchronously, and the write completes inline. Any other write goes down
 * untouched, so async modes stay async for data.
 *
 * Reads ask the driver where data is (SEEK_DATA/SEEK_HOLE). A read wholly in
 * data goes down untouched; one that meets a hole is zero-filled there and
 * reads its data parts synchronously, stopping short at end of file exactly
 * as the driver would.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/json.h"
#include "../core/xd_internal.h"
#include "../core/zero.h"

struct sparse_file;

/* Space figures of one file, by path, kept across opens so each file counts
 * once however often it is reopened (fio reopens between write and verify). */
struct sparse_space {
    struct sparse_space *next;
    struct sparse_file *open; /* its open handle; NULL once closed */
    uint64_t size, allocated; /* st_size and st_blocks * 512, as of the last look */
    char path[];
};

struct sparse_file {
    struct xd_file *file;
    struct sparse_space *space;
    /* Data found earlier (sparse_remember): reads inside it go down without
     * asking again. A stale data extent is harmless (a hole reads as zeros
     * below too), a stale hole would not be, so holes are never remembered. */
    uint64_t data_lo, data_hi;
};

struct sparse_layer {
    uint64_t block;     /* hole_detection_size, widened to the O_DIRECT alignment */
    uint64_t threshold; /* zero_block_threshold */
    bool punch;         /* the driver punches holes; cleared if the file system refuses */
    struct sparse_space *spaces;
    struct {
        uint64_t zero_blocks, writes_split, hole_bytes, hole_read_bytes, punch_refused;
    } count;
};

static int sparse_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct sparse_layer *sp = calloc(1, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    unsigned caps = xd_chain_caps(layer->lower);
    sp->block = (uint64_t)cfg->hole_detection_size;
    /* A hole inside an O_DIRECT sector would race another writer's
     * read-modify-write of the rest of that sector (fdio.c's range lock
     * covers only its own), so holes cover whole sectors. */
    if ((caps & XD_CAP_DIRECT_IO) && sp->block < (uint64_t)cfg->io_alignment)
        sp->block = (uint64_t)cfg->io_alignment;
    sp->threshold = (uint64_t)cfg->zero_block_threshold;
    sp->punch = caps & XD_CAP_TRIM;
    layer->priv = sp;
    return 0;
}

static void sparse_close(struct xd_layer *layer)
{
    struct sparse_layer *sp = layer->priv;
    while (sp->spaces) {
        struct sparse_space *next = sp->spaces->next;
        free(sp->spaces);
        sp->spaces = next;
    }
    free(sp);
}

/* --- questions to the driver ---------------------------------------------- */

/* SEEK_DATA/SEEK_HOLE from off: the offset, -ENXIO (no data at or after
 * off), or another -errno when the driver cannot tell (-ENOTTY). */
static int64_t sparse_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    return xd_below_seek(layer, file, whence, off);
}

/* The file's size now; 0 when the driver cannot tell, which only costs a
 * needless one-byte write (sparse_punch) or a zero-length read. */
static uint64_t sparse_size(struct xd_layer *layer, struct xd_file *file)
{
    struct xd_space s;
    return xd_below_space(layer, file, &s) ? 0 : s.size;
}

static void sparse_space_update(struct xd_layer *layer, struct sparse_space *space)
{
    struct xd_space s;
    if (!xd_below_space(layer, space->open->file, &s)) {
        space->size = s.size;
        space->allocated = s.allocated;
    }
}

/* One piece of req, sent below and completed before returning: bytes done
 * (a read may stop short at end of file) or -errno. */
static int64_t sparse_sub(struct xd_layer *layer, const struct xd_req *req, enum xd_op op,
                          uint64_t off, uint64_t len)
{
    struct xd_req sub = {.op = op, .file = req->file, .off = off, .len = len,
                         .buf = op == XD_OP_TRIM ? NULL : (char *)req->buf + (off - req->off)};
    xd_req_set_flags(&sub, XD_REQ_SYNC);
    int rc = xd_layer_submit(layer->lower, &sub);
    if (rc < 0)
        return rc;
    if (op != XD_OP_READ && sub.result >= 0 && (uint64_t)sub.result != len)
        return -EIO; /* never report part of a write as all of it */
    return sub.result;
}

/* --- the remembered data extent ------------------------------------------ */

/* Extents found from different offsets of one data run overlap, so they
 * are merged: random reads over a written file soon find all of it
 * remembered, where each new extent alone would start at its read. */
static void sparse_remember(struct sparse_file *sf, uint64_t lo, uint64_t hi)
{
    if (sf->data_lo < sf->data_hi && lo <= sf->data_hi && hi >= sf->data_lo) {
        lo = lo < sf->data_lo ? lo : sf->data_lo;
        hi = hi > sf->data_hi ? hi : sf->data_hi;
    }
    sf->data_lo = lo;
    sf->data_hi = hi;
}

/* [lo, hi) becomes a hole: keep the larger side of the extent outside it.
 * Only to serve that hole as zeros again: what is left stale reads right. */
static void sparse_forget(struct sparse_file *sf, uint64_t lo, uint64_t hi)
{
    if (hi <= sf->data_lo || lo >= sf->data_hi)
        return;
    uint64_t left = lo > sf->data_lo ? lo - sf->data_lo : 0;
    uint64_t right = sf->data_hi > hi ? sf->data_hi - hi : 0;
    if (left >= right)
        sf->data_hi = sf->data_lo + left;
    else
        sf->data_lo = hi;
}

/* Where the file's first data extent is, asked once at open: a file fully
 * written (fio lays files out so) is then remembered whole at once, where
 * learning it read by read costs a SEEK_HOLE scan to its end each time
 * (tmpfs walks its page cache for it). */
static void sparse_probe(struct xd_layer *layer, struct sparse_file *sf)
{
    int64_t data = sparse_seek(layer, sf->file, SEEK_DATA, 0);
    int64_t hole = data < 0 ? data : sparse_seek(layer, sf->file, SEEK_HOLE, (uint64_t)data);
    if (hole > data)
        sparse_remember(sf, (uint64_t)data, (uint64_t)hole);
}

/* --- writes --------------------------------------------------------------- */

/* Start of the first whole zero block of req at or after from, or the
 * write's end when there is none. */
static uint64_t sparse_next_zero(const struct sparse_layer *sp, const struct xd_req *req,
                                 uint64_t from)
{
    uint64_t end = req->off + req->len, whole_end = end & ~(sp->block - 1);
    for (uint64_t b = (from + sp->block - 1) & ~(sp->block - 1); b < whole_end; b += sp->block)
        if (xd_is_zero((const char *)req->buf + (b - req->off), sp->block))
            return b;
    return end;
}

/* End of the run of whole zero blocks that starts at the zero block b. */
static uint64_t sparse_zero_run_end(const struct sparse_layer *sp, const struct xd_req *req,
                                    uint64_t b)
{
    uint64_t whole_end = (req->off + req->len) & ~(sp->block - 1);
    for (b += sp->block; b < whole_end; b += sp->block)
        if (!xd_is_zero((const char *)req->buf + (b - req->off), sp->block))
            break;
    return b;
}

/* Does req hold zero_block_threshold zero blocks? Stops counting there: the
 * split counts what it punches. A write it passes on is counted here. */
static bool sparse_worth_splitting(struct sparse_layer *sp, const struct xd_req *req)
{
    uint64_t end = req->off + req->len, n = 0;
    for (uint64_t b = sparse_next_zero(sp, req, req->off); b < end;
         b = sparse_next_zero(sp, req, b + sp->block))
        if (++n >= sp->threshold)
            return true;
    sp->count.zero_blocks += n;
    return false;
}

/* Make [lo, hi) of req a hole. A punch keeps the file's size, so when the
 * write ends here beyond the end of file its last byte (a zero) is written
 * first and then punched with the rest: the file grows as a write would
 * make it. A file system that cannot punch gets the zeros written. */
static int64_t sparse_punch(struct xd_layer *layer, struct sparse_layer *sp,
                            const struct xd_req *req, uint64_t lo, uint64_t hi)
{
    int64_t rc = 0;
    if (hi == req->off + req->len && sparse_size(layer, req->file) < hi)
        rc = sparse_sub(layer, req, XD_OP_WRITE, hi - 1, 1);
    if (rc >= 0)
        rc = sparse_sub(layer, req, XD_OP_TRIM, lo, hi - lo);
    if (rc == -EOPNOTSUPP) {
        sp->punch = false;
        sp->count.punch_refused++;
        return sparse_sub(layer, req, XD_OP_WRITE, lo, hi - lo);
    }
    if (rc >= 0) {
        sparse_forget(req->file->priv[layer->level], lo, hi);
        sp->count.hole_bytes += hi - lo;
        sp->count.zero_blocks += (hi - lo) / sp->block;
    }
    return rc;
}

/* Data runs written and zero runs punched, in file-offset order, so the
 * file ends up as if the write had gone down whole. */
static int sparse_split_write(struct xd_layer *layer, struct sparse_layer *sp, struct xd_req *req)
{
    uint64_t end = req->off + req->len, pos = req->off;
    int64_t rc = 0;
    while (pos < end && rc >= 0) {
        uint64_t zero = sparse_next_zero(sp, req, pos);
        if (zero > pos)
            rc = sparse_sub(layer, req, XD_OP_WRITE, pos, zero - pos);
        if (rc < 0 || zero == end)
            break;
        pos = sparse_zero_run_end(sp, req, zero);
        rc = sparse_punch(layer, sp, req, zero, pos);
    }
    sp->count.writes_split++;
    req->result = rc < 0 ? rc : (int64_t)req->len;
    return XD_DONE;
}

static int sparse_write(struct xd_layer *layer, struct xd_req *req)
{
    struct sparse_layer *sp = layer->priv;
    if (!sp->punch || !sparse_worth_splitting(sp, req))
        return xd_layer_submit(layer->lower, req);
    return sparse_split_write(layer, sp, req);
}

/* --- reads ---------------------------------------------------------------- */

/* Zeros for [pos, to) of req, which is a hole. */
static void sparse_zero_fill(struct sparse_layer *sp, struct xd_req *req, uint64_t pos, uint64_t to)
{
    memset((char *)req->buf + (pos - req->off), 0, to - pos);
    sp->count.hole_read_bytes += to - pos;
}

/* A read that meets a hole; data is where the first data at or after
 * req->off starts (-ENXIO: none). Holes are zero-filled, data extents read
 * below one by one; a read past end of file stops short there, as the
 * driver's would. Completes inline. */
static int sparse_read_holes(struct xd_layer *layer, struct sparse_layer *sp, struct xd_req *req,
                             int64_t data)
{
    uint64_t end = req->off + req->len, pos = req->off;
    int64_t rc = 0;
    while (pos < end) {
        uint64_t to;
        if (data < 0) { /* nothing but hole up to the end of file */
            uint64_t eof = sparse_size(layer, req->file);
            to = eof < end ? eof : end;
            if (to > pos) {
                sparse_zero_fill(sp, req, pos, to);
                pos = to;
            }
            break;
        }
        to = (uint64_t)data < end ? (uint64_t)data : end;
        sparse_zero_fill(sp, req, pos, to);
        if ((pos = to) == end)
            break;
        int64_t hole = sparse_seek(layer, req->file, SEEK_HOLE, pos);
        to = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
        rc = sparse_sub(layer, req, XD_OP_READ, pos, to - pos);
        if (rc < 0 || (pos += (uint64_t)rc) < to || pos == end)
            break; /* an error, or end of file */
        data = sparse_seek(layer, req->file, SEEK_DATA, pos);
        if (data < 0 && data != -ENXIO) {
            rc = data;
            break;
        }
    }
    req->result = rc < 0 ? rc : (int64_t)(pos - req->off);
    return XD_DONE;
}

/* Reads wholly in data, the common case, go down as they came (async stays
 * async): inside the remembered extent without asking at all. */
static int sparse_read(struct xd_layer *layer, struct xd_req *req)
{
    struct sparse_layer *sp = layer->priv;
    struct sparse_file *sf = req->file->priv[layer->level];
    uint64_t end = req->off + req->len;
    if ((req->off >= sf->data_lo && end <= sf->data_hi) || !req->len)
        return xd_layer_submit(layer->lower, req);
    int64_t data = sparse_seek(layer, req->file, SEEK_DATA, req->off);
    if (data < 0 && data != -ENXIO)
        return xd_layer_submit(layer->lower, req); /* the driver cannot tell: all data */
    if (data == (int64_t)req->off) {
        int64_t hole = sparse_seek(layer, req->file, SEEK_HOLE, req->off);
        if (hole < 0)
            return xd_layer_submit(layer->lower, req);
        sparse_remember(sf, req->off, (uint64_t)hole);
        /* the hole at end of file is the driver's short read, not ours */
        if ((uint64_t)hole >= end || (uint64_t)hole >= sparse_size(layer, req->file))
            return xd_layer_submit(layer->lower, req);
    }
    return sparse_read_holes(layer, sp, req, data);
}

static int sparse_submit(struct xd_layer *layer, struct xd_req *req)
{
    if (req->op == XD_OP_WRITE)
        return sparse_write(layer, req);
    if (req->op == XD_OP_READ)
        return sparse_read(layer, req);
    if (req->op == XD_OP_TRIM)
        sparse_forget(req->file->priv[layer->level], req->off, req->off + req->len);
    return xd_layer_submit(layer->lower, req);
}

/* --- files ---------------------------------------------------------------- */

static struct sparse_space *sparse_space_get(struct sparse_layer *sp, const char *path)
{
    struct sparse_space *s;
    for (s = sp->spaces; s; s = s->next)
        if (!strcmp(s->path, path))
            return s;
    size_t len = strlen(path) + 1;
    if (!(s = calloc(1, sizeof(*s) + len)))
        return NULL;
    memcpy(s->path, path, len);
    s->next = sp->spaces;
    sp->spaces = s;
    return s;
}

/* Opened below first, so the space figures (xd_below_space) are those of
 * the file actually holding the data (tmpfs's copy, say); opens of one
 * caller's path share one record. */
static int sparse_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                            uint64_t size, char *err, size_t errlen)
{
    struct sparse_layer *sp = layer->priv;
    int rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (rc)
        return rc;
    struct sparse_file *sf = calloc(1, sizeof(*sf));
    if (!sf || !(sf->space = sparse_space_get(sp, file->path))) {
        free(sf);
        xd_layer_file_close(layer->lower, file);
        return -ENOMEM;
    }
    sf->file = file;
    sf->space->open = sf;
    file->priv[layer->level] = sf;
    sparse_probe(layer, sf);
    return 0;
}

/* The last look at the file's space is taken here, while the driver still
 * has it open: stats are usually written after every file is closed. */
static void sparse_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct sparse_file *sf = file->priv[layer->level];
    if (sf) {
        struct sparse_space *space = sf->space;
        if (space->open == sf) {
            sparse_space_update(layer, space);
            space->open = NULL;
        }
        free(sf);
        file->priv[layer->level] = NULL;
    }
    xd_layer_file_close(layer->lower, file);
}

/* --- control -------------------------------------------------------------- */

/* Key names match what xdreport charts under "layers" (logical_bytes,
 * allocated_bytes). */
static void sparse_stats_json(struct xd_layer *layer, struct xd_json *j)
{
    struct sparse_layer *sp = layer->priv;
    uint64_t logical = 0, allocated = 0, files = 0;
    for (struct sparse_space *s = sp->spaces; s; s = s->next, files++) {
        if (s->open)
            sparse_space_update(layer, s);
        logical += s->size;
        allocated += s->allocated;
    }
    xd_json_object_begin(j, "sparse");
    xd_json_uint(j, "block_size", sp->block);
    xd_json_uint(j, "zero_block_threshold", sp->threshold);
    xd_json_uint(j, "files", files);
    xd_json_uint(j, "logical_bytes", logical);
    xd_json_uint(j, "allocated_bytes", allocated);
    xd_json_uint(j, "hole_bytes_created", sp->count.hole_bytes);
    xd_json_uint(j, "zero_blocks_detected", sp->count.zero_blocks);
    xd_json_uint(j, "writes_split", sp->count.writes_split);
    xd_json_uint(j, "reads_hole_skipped", sp->count.hole_read_bytes);
    xd_json_uint(j, "punch_refused", sp->count.punch_refused);
    xd_json_object_end(j);
}

const struct xd_ops xd_sparse_ops = {
    .version = XD_OPS_VERSION,
    .name = "sparse",
    .open = sparse_open,
    .close = sparse_close,
    .file_open = sparse_file_open,
    .file_close = sparse_file_close,
    .submit = sparse_submit,
    .stats_json = sparse_stats_json,
};
