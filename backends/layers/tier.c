/* tier.c - the tier layer, the hybrid type's whole chain below stats: a hot
 * tier (the tmpfs type's chain) and a cold tier (any file type's chain), each
 * an inner device of this device, and per-extent routing between them.
 *
 * The cold tier holds every extent; the hot tier holds copies of the hot
 * ones. Reads of a hot extent go to the hot tier, the rest to the cold one.
 * Writes go to the cold tier, and to the hot copy too when there is one
 * (write-through); with tier_write_back a hot extent's writes go to the hot
 * copy alone and mark it dirty until a flush (fsync, fdatasync, demotion,
 * close) copies it back. The state of each file's extents is shared by every
 * device of the process (tier_state.c), so jobs sharing a file agree on it.
 *
 * A request within one extent goes to the inner devices as one sub-request
 * per tier it needs, async when they are; reap collects completions from
 * both, waiting only on a device that has requests in flight. A request
 * spanning extents is cut into such pieces where the route changes (a run
 * of extents going to the same tiers is one piece), sent the same way and
 * joined when the last piece is back (with small extents, 128k
 * writes over 64 KiB extents ran on the caller's thread when pieces went
 * one by one, at 0.6 of fio's io_uring); it runs piece by piece, inline,
 * when there are not contexts enough for all its pieces, and when flagged
 * XD_REQ_SYNC.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fileutil.h"
#include "../core/json.h"
#include "tier.h"

struct tier_ctx {
    struct xd_req sub[2]; /* by tier */
    struct xd_req *parent;
    struct tier_file *tf;
    uint64_t ext;         /* the first extent of the piece; UINT64_MAX: a sync */
    uint64_t off, len;    /* the part of parent this context carries */
    unsigned pending, mask;
    bool wrote;           /* raised inflight_w */
    int64_t err;
    /* The parent's first context (itself, unless the parent spans extents)
     * counts the pieces still out and keeps what they came back with. */
    struct tier_ctx *head;
    unsigned pieces;
    bool span;
    int64_t span_err;
    uint64_t short_end; /* where the first short piece stopped; UINT64_MAX: none */
    struct tier_ctx *next_free;
};

#define TIER_CTX_PER_DEPTH 2

struct tier_file {
    struct tier_shared *sh;
    struct xd_file *f[2];
    char *map_path; /* named while a checkpoint holds the file (tier_hold_files) */
    uint64_t stream_next, stream_run; /* this device's sequential stream: tier_counts */
    bool read_only; /* XD_OPEN_READONLY: its cold file is not writable through f */
    struct tier_file *prev, *next;
};

#define TIER_COUNTERS 6 /* promotions, demotions, bytes, ns, aborts, flushes */
#define TIER_FIGURES  8 /* ... then the gauges hot_extents, extents */

/* A file's whole-file figures: the last snapshot of its shared state
 * (serial), plus the counters of the states it had before (a file closed by
 * every job is freed; fio's verify phase reopens it with a new one). */
struct tier_figures {
    char *path;
    uint64_t serial;
    uint64_t base[TIER_COUNTERS];
    uint64_t v[TIER_FIGURES];
};

struct tier_layer {
    struct xd_dev *inner[2];
    struct tier_ctx *ctx, *free;
    struct xd_req **subs; /* scratch for inner reaps */
    unsigned nctx, nfree, queued[2];
    /* a sub-request queued on the tier since its last commit: fio commits
     * before every wait, and a commit of an idle tier walked its chain for
     * nothing (the tiers' chains stage nothing of their own: their fdio
     * sends what it starts in a reap itself) */
    bool unsent[2];
    void *buf;            /* write-back flushes from the data path */
    struct tier_file *files;
    uint64_t reads[2], writes[2]; /* by extent: a piece over two counts twice */
    uint64_t sent[2];             /* sub-requests sent to each tier */
    uint64_t sequential_skipped;  /* requests not counted as accesses: tier_counts */
    /* Whole-file figures of closed files, by path (jobs report at cleanup,
     * after fio closed them), so a file closed and reopened counts once. */
    struct tier_figures *closed;
    unsigned nclosed;
    char close_error[XD_ERRLEN]; /* a close that could not flush, for take_error */
    char notice[XD_ERRLEN];      /* an open's: hot copies dropped (tier_map.c) */
};

/* --- open and close ---------------------------------------------------- */

static int tier_open_inner(struct tier_layer *t, struct xd_layer *layer, char *err,
                           size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    if (cfg->hot_directory[0]) {
        int rc = xd_tmpfs_check_dir(cfg, XD_KEY_hot_directory, cfg->hot_directory, err, errlen);
        if (rc)
            return rc;
    }
    /* contexts for twice the depth, so requests spanning two extents all go
     * async; each context has at most one sub-request per tier in flight */
    t->nctx = TIER_CTX_PER_DEPTH * layer->dev->queue_entries;
    for (int k = 0; k < 2; k++) {
        struct xd_config *c = xd_tier_inner_config(cfg, k, false, err, errlen);
        if (!c)
            return -EINVAL;
        int rc = xd_open(&t->inner[k], c, t->nctx, err, errlen);
        xd_config_free(c);
        if (rc)
            return rc;
    }
    t->ctx = calloc(t->nctx, sizeof(*t->ctx));
    t->subs = calloc(t->nctx * 2, sizeof(*t->subs));
    if (!t->ctx || !t->subs)
        return -ENOMEM;
    for (unsigned i = 0; i < t->nctx; i++) {
        t->ctx[i].next_free = t->free;
        t->free = &t->ctx[i];
    }
    t->nfree = t->nctx;
    return 0;
}

static void tier_close(struct xd_layer *layer);

static int tier_open(struct xd_layer *layer, char *err, size_t errlen)
{
    struct tier_layer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    layer->priv = t;
    xd_tier_sweep_states(); /* states processes killed left */
    int rc = tier_open_inner(t, layer, err, errlen);
    if (rc) { /* a layer whose open fails is not closed by the core */
        tier_close(layer);
        layer->priv = NULL;
    }
    return rc;
}

static void tier_close(struct xd_layer *layer)
{
    struct tier_layer *t = layer->priv;
    if (!t)
        return;
    for (int k = 0; k < 2; k++)
        xd_close(t->inner[k]);
    free(t->ctx);
    free(t->subs);
    free(t->buf);
    for (unsigned i = 0; i < t->nclosed; i++)
        free(t->closed[i].path);
    free(t->closed);
    free(t);
}

static void tier_file_free(struct tier_layer *t, struct tier_file *tf)
{
    for (int k = 0; k < 2; k++)
        if (tf->f[k])
            xd_file_close(t->inner[k], tf->f[k]);
    free(tf->map_path);
    free(tf);
}

/* The stat of the cold file open as f on the cold device, from the cold
 * chain (its driver's descriptor), or by path where none can say. */
static int tier_cold_stat(struct tier_layer *t, struct xd_file *f, const char *cold,
                          struct stat *st)
{
    struct xd_layer *l = t->inner[TIER_C]->top;
    unsigned view;
    XD_FIND(l, identity);
    int rc = l ? l->ops->identity(l, f, st, &view) : -ENOTTY;
    if (rc == -ENOTTY)
        rc = stat(cold, st) ? -errno : 0;
    return rc;
}

/* A cold file with several names (hard links) would have an extent map
 * per name: a device writing through one name would send to the cold file
 * an extent another name's map has hot, whose reads then return the hot
 * copy's older bytes. Symlinks are fine: the state is keyed by the
 * realpath. -EMLINK with one line. */
static int tier_one_name(const char *cold, const struct stat *st, char *err, size_t errlen)
{
    return xd_refuse_other_names("storage_type=hybrid", cold, st, "its extent map (.xdmap)", err,
                                 errlen);
}

/* The cold file first (it creates the file the shared state is keyed by),
 * then the shared state, then the hot copy. The cold file is looked at
 * before its open, which may grow it: the map's stamp of it is compared
 * with the file as this open found it (tier_map.c). */
static int tier_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                          uint64_t size, char *err, size_t errlen)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = calloc(1, sizeof(*tf));
    char *cold = xd_tier_cold_path(layer->dev->cfg, file->path), notice[XD_ERRLEN] = "";
    struct stat st, before;
    int rc = tf && cold ? 0 : -ENOMEM;
    if (tf)
        tf->read_only = flags & XD_OPEN_READONLY;
    xd_tier_names_lock(false);
    bool existed = !rc && !stat(cold, &before);
    if (!rc)
        rc = xd_file_open(t->inner[TIER_C], cold, flags, size, &tf->f[TIER_C], err, errlen);
    if (!rc && (rc = tier_cold_stat(t, tf->f[TIER_C], cold, &st)))
        xd_errf(err, errlen, "%s: cannot stat the cold tier's file: %s", cold, strerror(-rc));
    if (!rc)
        rc = tier_one_name(cold, &st, err, errlen);
    if (!rc)
        rc = xd_tier_shared_get(layer->dev->cfg, cold, &st, existed ? &before : NULL,
                                tf->read_only, size, &tf->sh, notice, sizeof(notice), err,
                                errlen);
    if (!rc && !tf->read_only) /* before any of its writes can be acknowledged */
        rc = xd_tier_stamp_writer(tf->sh, err, errlen);
    if (!rc && !tf->sh->cold_only) /* cold-only: no hot copy, none made */
        rc = xd_file_open(t->inner[TIER_H], tf->sh->cold_path, XD_OPEN_CREATE | XD_OPEN_NO_SOURCE,
                          0, &tf->f[TIER_H], err, errlen);
    free(cold);
    if (rc) {
        if (tf && tf->sh)
            xd_tier_shared_put(tf->sh);
        if (tf)
            tier_file_free(t, tf);
    }
    xd_tier_names_unlock();
    if (rc)
        return rc;
    if (notice[0])
        snprintf(t->notice, sizeof(t->notice), "%s", notice);
    tf->next = t->files;
    if (t->files)
        t->files->prev = tf;
    t->files = tf;
    file->priv[layer->level] = tf;
    return 0;
}

/* The file's dirty hot extents to the cold file: write-back ones, and after
 * a restart without a clean close every hot one, write-through too (see
 * tier_map.c). The number copied or -errno. */
static int tier_flush_file(struct tier_layer *t, struct tier_file *tf)
{
    if (!t->buf && posix_memalign(&t->buf, 4096, tf->sh->extent_size)) {
        t->buf = NULL;
        return -ENOMEM;
    }
    return xd_tier_flush(tf->sh, t->inner, tf->f, t->buf);
}

static void tier_figures_of(struct tier_shared *sh, uint64_t v[TIER_FIGURES])
{
    v[0] = atomic_load(&sh->shm->promotions);
    v[1] = atomic_load(&sh->shm->demotions);
    v[2] = atomic_load(&sh->shm->bytes_migrated);
    v[3] = atomic_load(&sh->shm->migration_ns);
    v[4] = atomic_load(&sh->shm->aborts);
    v[5] = atomic_load(&sh->shm->flushes);
    pthread_mutex_lock(&sh->mig_lock); /* hot_count belongs to the pass */
    v[6] = sh->shm->hot_count;
    pthread_mutex_unlock(&sh->mig_lock);
    v[7] = sh->nextents;
}

static struct tier_figures *tier_record(const struct tier_layer *t, const char *path)
{
    for (unsigned i = 0; i < t->nclosed; i++)
        if (!strcmp(t->closed[i].path, path))
            return &t->closed[i];
    return NULL;
}

static void tier_keep_figures(struct tier_layer *t, struct tier_shared *sh)
{
    struct tier_figures *r = tier_record(t, sh->cold_path);
    if (!r) {
        struct tier_figures *grown = realloc(t->closed, (t->nclosed + 1) * sizeof(*grown));
        char *path = strdup(sh->cold_path);
        if (!grown || !path) { /* the figures are lost, nothing else */
            free(path);
            if (grown)
                t->closed = grown;
            return;
        }
        t->closed = grown;
        r = &t->closed[t->nclosed++];
        *r = (struct tier_figures){.path = path, .serial = sh->serial};
    }
    if (r->serial != sh->serial)
        for (int k = 0; k < TIER_COUNTERS; k++)
            r->base[k] += r->v[k];
    r->serial = sh->serial;
    tier_figures_of(sh, r->v);
}

/* Whether fsync writes this open's dirty hot extents back. Not a read-only
 * open's, whose cold file takes no writes (EBADF): nothing was written
 * through it, and the hot extents it found (assumed dirty after a restart:
 * tier_map.c) stay hot for a writable open or the mover to write back, as
 * they were before it opened. */
static bool tier_writes_back(const struct tier_file *tf)
{
    return tf->sh->write_back && !tf->read_only;
}

/* Close flushes every dirty hot extent (write-back, or any mode after a
 * restart without a clean close), so the cold tier holds all the file's
 * data and the map can say so (tier_stamp.c): a copy left dirty makes
 * the next open refuse a file another program changed meanwhile. */
static void tier_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = file->priv[layer->level];
    if (!tf)
        return;
    int rc = tf->read_only ? 0 : tier_flush_file(t, tf);
    if (rc > 0 || (rc == 0 && tier_writes_back(tf)))
        rc = xd_flush(t->inner[TIER_C], tf->f[TIER_C], 1);
    if (rc < 0) { /* the hot copies stay, dirty in the map, for the next flush */
        xd_file_close_failed(file, rc);
        xd_errf(t->close_error, sizeof(t->close_error),
                "tier_write_back=true: %s: writing hot extents back to the cold file at close failed: %s; it lacks what was written to them since",
                tf->sh->cold_path, strerror(-rc));
    }
    xd_extmap_sync(&tf->sh->map);
    tier_keep_figures(t, tf->sh);
    if (tf->prev)
        tf->prev->next = tf->next;
    else
        t->files = tf->next;
    if (tf->next)
        tf->next->prev = tf->prev;
    struct tier_shared *sh = tf->sh;
    tier_file_free(t, tf);
    xd_tier_shared_put(sh);
    file->priv[layer->level] = NULL;
}

static int64_t tier_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = file->priv[layer->level];
    int64_t cold = xd_file_size(t->inner[TIER_C], tf->f[TIER_C]);
    uint64_t logical = atomic_load(&tf->sh->shm->size);
    return cold < 0 || (uint64_t)cold >= logical ? cold : (int64_t)logical;
}

/* --- where the data is --------------------------------------------------- */

/* Whether extent e may hold data the cold tier does not show: a hot copy
 * (written back or not), or one a mover or flusher owns now. */
static bool tier_ext_held_hot(struct tier_shared *sh, uint64_t e)
{
    if (e >= sh->nextents)
        return false;
    tier_lock(sh, e);
    bool hot = sh->ext[e].hot || sh->ext[e].busy;
    tier_unlock(sh, e);
    return hot;
}

/* The cold tier's lseek(whence) from off; -ENOTTY where it answers none. */
static int64_t tier_cold_seek(struct tier_layer *t, struct tier_file *tf, int whence, uint64_t off)
{
    struct xd_layer *l = t->inner[TIER_C]->top;
    XD_FIND(l, seek);
    return l ? l->ops->seek(l, tf->f[TIER_C], whence, off) : -ENOTTY;
}

/* SEEK_DATA from off below size: the cold tier's next data, unless an
 * extent held hot starts before it. */
static int64_t tier_seek_data(struct tier_layer *t, struct tier_file *tf, uint64_t off,
                              uint64_t size)
{
    struct tier_shared *sh = tf->sh;
    int64_t cold = tier_cold_seek(t, tf, SEEK_DATA, off);
    if (cold < 0 && cold != -ENXIO)
        return cold;
    uint64_t until = cold < 0 ? size : (uint64_t)cold;
    for (uint64_t e = off >> sh->shift; e << sh->shift < until; e++)
        if (tier_ext_held_hot(sh, e))
            return (int64_t)(e << sh->shift > off ? e << sh->shift : off);
    return cold;
}

/* SEEK_HOLE from off below size: the cold tier's next hole outside every
 * extent held hot (one past the cold file's end counts as a hole). */
static int64_t tier_seek_hole(struct tier_layer *t, struct tier_file *tf, uint64_t off,
                              uint64_t size)
{
    struct tier_shared *sh = tf->sh;
    while (off < size) {
        uint64_t e = off >> sh->shift;
        if (tier_ext_held_hot(sh, e)) {
            off = (e + 1) << sh->shift;
            continue;
        }
        int64_t cold = tier_cold_seek(t, tf, SEEK_HOLE, off);
        if (cold < 0 && cold != -ENXIO)
            return cold;
        uint64_t hole = cold < 0 ? off : (uint64_t)cold;
        if (hole >= size || !tier_ext_held_hot(sh, hole >> sh->shift))
            return (int64_t)(hole < size ? hole : size);
        off = hole;
    }
    return (int64_t)size;
}

/* lseek(2)'s SEEK_DATA and SEEK_HOLE over the logical file, for the layers
 * above (the checksum layer counts and tags the data a file holds when its
 * sidecar starts). An extent held hot counts as data whole: its copy may
 * hold writes the cold file lacks. Never a hole where either tier may hold
 * data, since a block called a hole there would read as a lost checksum
 * entry (EIO); a hole under a hot copy counts as data, the safe side.
 * -ENXIO at or past the end; the cold tier's error where it answers neither. */
static int64_t tier_seek(struct xd_layer *layer, struct xd_file *file, int whence, uint64_t off)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = file->priv[layer->level];
    int64_t size = tier_file_size(layer, file);
    if (size < 0)
        return size;
    if (off >= (uint64_t)size)
        return -ENXIO;
    if (whence == SEEK_DATA)
        return tier_seek_data(t, tf, off, (uint64_t)size);
    return whence == SEEK_HOLE ? tier_seek_hole(t, tf, off, (uint64_t)size) : -EINVAL;
}

/* --- routing ------------------------------------------------------------ */

static bool tier_is_write(enum xd_op op) { return op == XD_OP_WRITE || op == XD_OP_TRIM; }

/* Does req count as an access toward promotion? Not once the sequential
 * stream it continues (this device's requests to the file, each starting
 * where the one before ended) has run past tier_sequential_cutoff, as
 * bcache's sequential_cutoff keeps streams out of its cache: a scan would
 * otherwise promote every extent it passes (a stream of 128k reads touches
 * a 1 MiB extent 8 times a pass, over the default hot_access_threshold of
 * 3) and push out the extents that are read again for data read once. A
 * hot extent such a stream reads is still read from the hot tier. */
static bool tier_counts(struct tier_layer *t, struct tier_file *tf, const struct xd_req *req,
                        uint64_t cutoff)
{
    if (req->off == tf->stream_next)
        tf->stream_run += req->len;
    else
        tf->stream_run = req->len;
    tf->stream_next = req->off + req->len;
    if (!cutoff || tf->stream_run <= cutoff)
        return true;
    t->sequential_skipped++;
    return false;
}

/* Which tiers (1 << TIER_C | 1 << TIER_H) serve op on extent e, counting the
 * request in flight there, and as an access when count says so. Extents
 * past the end known at open stay cold. */
static unsigned tier_route(struct tier_shared *sh, uint64_t e, enum xd_op op, bool count,
                           bool *wrote)
{
    bool write = tier_is_write(op);
    *wrote = false;
    if (e >= sh->nextents)
        return 1u << TIER_C;
    struct tier_ext *x = &sh->ext[e];
    unsigned mask;
    tier_lock(sh, e);
    if (count)
        xd_tier_touch(sh, x, xd_clock_monotonic_ns()); /* shared by processes: not the TSC */
    if (!write) {
        mask = x->hot ? 1u << TIER_H : 1u << TIER_C;
    } else {
        x->wseq++;
        x->inflight_w++;
        *wrote = true;
        if (!x->hot)
            mask = 1u << TIER_C;
        else if (sh->write_back && op == XD_OP_WRITE)
            mask = 1u << TIER_H;
        else
            mask = 1u << TIER_C | 1u << TIER_H;
        if (x->hot && op == XD_OP_WRITE && sh->write_back)
            x->dirty = 1;
    }
    if (mask & (1u << TIER_H))
        x->inflight_hot++;
    tier_unlock(sh, e);
    return mask;
}

/* A sub-request on extent e finished (on tier k); done with the write too. */
static void tier_release(struct tier_shared *sh, uint64_t e, int k, bool wrote)
{
    if (e >= sh->nextents || (k != TIER_H && !wrote))
        return;
    tier_lock(sh, e);
    if (k == TIER_H)
        sh->ext[e].inflight_hot--;
    if (wrote) {
        sh->ext[e].inflight_w--;
        sh->ext[e].wseq++;
    }
    tier_unlock(sh, e);
}

/* The same for each extent c's piece covered (from c->ext to its last byte's). */
static void tier_release_piece(const struct tier_ctx *c, int k, bool wrote)
{
    uint64_t last = c->len ? (c->off + c->len - 1) >> c->tf->sh->shift : c->ext;
    for (uint64_t e = c->ext; e <= last; e++)
        tier_release(c->tf->sh, e, k, wrote);
}

static void tier_count(struct tier_layer *t, const struct xd_req *req, unsigned mask)
{
    if (req->op == XD_OP_READ)
        t->reads[mask & (1u << TIER_H) ? TIER_H : TIER_C]++;
    else if (req->op == XD_OP_WRITE)
        t->writes[mask & (1u << TIER_C) ? TIER_C : TIER_H]++;
}

/* A write's piece at off came back with res: the size the file has for its
 * callers grows to what was written, once it was. Grown as the write was
 * sent, a write that failed (EFBIG, ENOSPC past the end) left a longer
 * file, read as zeros, until the next open; a trim never grows a file, as
 * a hole punched past the end of a plain one does not. */
static void tier_grow(struct tier_shared *sh, enum xd_op op, uint64_t off, int64_t res)
{
    if (op != XD_OP_WRITE || res <= 0)
        return;
    uint64_t end = off + (uint64_t)res, size = atomic_load(&sh->shm->size);
    while (end > size && !atomic_compare_exchange_weak(&sh->shm->size, &size, end))
        ;
}

/* --- synchronous pieces ------------------------------------------------- */

static int64_t tier_sub_sync(struct tier_layer *t, struct tier_file *tf, int k,
                             const struct xd_req *req, uint64_t off, uint64_t len, char *buf)
{
    struct xd_req sub = {.op = req->op, .file = tf->f[k], .buf = buf, .len = len, .off = off};
    xd_req_set_flags(&sub, XD_REQ_SYNC);
    t->sent[k]++;
    int rc = xd_layer_submit(t->inner[k]->top, &sub);
    return rc < 0 ? rc : sub.result;
}

/* One piece within extent e, on every tier it needs; bytes or -errno. */
static int64_t tier_piece_sync(struct tier_layer *t, struct tier_file *tf, const struct xd_req *req,
                               bool count, uint64_t e, uint64_t off, uint64_t len, char *buf)
{
    bool wrote;
    unsigned mask = tier_route(tf->sh, e, req->op, count, &wrote);
    int64_t res[2] = {0, 0};
    tier_count(t, req, mask);
    for (int k = TIER_H; k >= TIER_C; k--) {
        if (!(mask & (1u << k)))
            continue;
        res[k] = tier_sub_sync(t, tf, k, req, off, len, buf);
        if (k == TIER_H)
            tier_release(tf->sh, e, TIER_H, false);
    }
    if (wrote)
        tier_release(tf->sh, e, TIER_C, true);
    if (res[TIER_H] < 0)
        return res[TIER_H];
    int64_t got = mask & (1u << TIER_C) ? res[TIER_C] : res[TIER_H];
    tier_grow(tf->sh, req->op, off, got);
    return got;
}

/* Requests spanning extents, and XD_REQ_SYNC ones: piece by piece. */
static int tier_split(struct tier_layer *t, struct tier_file *tf, struct xd_req *req, bool count)
{
    struct tier_shared *sh = tf->sh;
    uint64_t off = req->off, end = req->off + req->len, total = 0;
    int64_t rc = 0;
    while (off < end) {
        uint64_t e = off >> sh->shift, stop = (e + 1) << sh->shift;
        uint64_t len = (stop < end ? stop : end) - off;
        char *buf = req->buf ? (char *)req->buf + (off - req->off) : NULL;
        rc = tier_piece_sync(t, tf, req, count, e, off, len, buf);
        if (rc < 0)
            break;
        total += (uint64_t)rc;
        if ((uint64_t)rc < len) /* a read at the end of the file */
            break;
        off += len;
    }
    req->result = rc < 0 ? rc : (int64_t)total;
    return XD_DONE;
}

/* --- asynchronous requests ---------------------------------------------- */

static void tier_ctx_put(struct tier_layer *t, struct tier_ctx *c)
{
    c->next_free = t->free;
    t->free = c;
    t->nfree++;
}

static struct tier_ctx *tier_ctx_take(struct tier_layer *t)
{
    struct tier_ctx *c = t->free;
    t->free = c->next_free;
    t->nfree--;
    return c;
}

/* A sub-request of c finished; true when it was the last. */
static bool tier_sub_done(struct tier_ctx *c, int k)
{
    struct xd_req *sub = &c->sub[k];
    if (sub->result < 0 && !c->err)
        c->err = sub->result;
    if (k == TIER_H && c->ext != UINT64_MAX)
        tier_release_piece(c, TIER_H, false);
    return --c->pending == 0;
}

/* One piece of h's parent fewer out (h->pieces also counts one for the
 * submit still sending pieces). Returns the parent once none is left,
 * with its result: a spanning read stops at the first piece that came
 * back short (end of file), as one read would. */
static struct xd_req *tier_head_drop(struct tier_layer *t, struct tier_ctx *h)
{
    struct xd_req *req = h->parent;
    if (--h->pieces)
        return NULL;
    if (h->span)
        req->result = h->span_err ? h->span_err
                      : h->short_end == UINT64_MAX ? (int64_t)req->len
                                                    : (int64_t)(h->short_end - req->off);
    tier_ctx_put(t, h);
    return req;
}

/* c's piece is back: the write leaves flight, its result joins the head's.
 * Returns the parent once its last piece is back, else NULL. */
static struct xd_req *tier_ctx_finish(struct tier_layer *t, struct tier_ctx *c)
{
    struct xd_req *req = c->parent;
    struct tier_ctx *h = c->head;
    int k = c->mask & (1u << TIER_C) ? TIER_C : TIER_H;
    int64_t res = c->err ? c->err : c->sub[k].result;
    if (c->wrote)
        tier_release_piece(c, TIER_C, true);
    tier_grow(c->tf->sh, req->op, c->off, res);
    if (res < 0 && !h->span_err)
        h->span_err = res;
    else if (res >= 0 && (uint64_t)res < c->len && c->off + (uint64_t)res < h->short_end)
        h->short_end = c->off + (uint64_t)res;
    if (!h->span)
        req->result = res;
    if (c != h)
        tier_ctx_put(t, c);
    return tier_head_drop(t, h);
}

static void tier_ctx_submit_one(struct tier_layer *t, struct tier_ctx *c, int k)
{
    struct xd_req *parent = c->parent, *sub = &c->sub[k];
    char *buf = parent->buf ? (char *)parent->buf + (c->off - parent->off) : NULL;
    *sub = (struct xd_req){.op = parent->op, .file = c->tf->f[k], .buf = buf, .len = c->len,
                           .off = c->off, .user = c};
    t->sent[k]++;
    int rc = xd_submit(t->inner[k], sub);
    if (rc == -EBUSY) { /* cannot happen with one sub per tier per context; stay correct */
        xd_req_set_flags(sub, XD_REQ_SYNC);
        sub->result = 0;
        rc = xd_layer_submit(t->inner[k]->top, sub);
        if (rc < 0)
            sub->result = rc;
        rc = XD_DONE;
    }
    if (rc == XD_QUEUED) {
        t->queued[k]++;
        t->unsent[k] = true;
    } else {
        tier_sub_done(c, k);
    }
}

/* Send a piece of its parent, routed already (mask, wrote), to every tier
 * it needs: [off, off+len), which starts in extent e (UINT64_MAX: a sync,
 * not tied to one). It counts in its head's pieces. */
static void tier_piece_async(struct tier_layer *t, struct tier_ctx *c, uint64_t e, uint64_t off,
                             uint64_t len)
{
    c->err = 0;
    c->ext = e;
    c->off = off;
    c->len = len;
    c->pending = (unsigned)__builtin_popcount(c->mask);
    c->head->pieces++;
    /* hot first: it completes inline, and a write's cold half may then be the last */
    for (int k = TIER_H; k >= TIER_C; k--)
        if (c->mask & (1u << k))
            tier_ctx_submit_one(t, c, k);
    if (!c->pending)
        tier_ctx_finish(t, c); /* never the parent's last: the submit's own count holds it */
}

/* A context for a piece of req, whose first piece's context is h (NULL:
 * this one is the first, and becomes h). */
static struct tier_ctx *tier_piece_ctx(struct tier_layer *t, struct tier_file *tf,
                                       struct xd_req *req, struct tier_ctx *h)
{
    struct tier_ctx *c = tier_ctx_take(t);
    if (!h) /* the head: one count for the submit sending the pieces */
        *c = (struct tier_ctx){.parent = req, .tf = tf, .head = c, .pieces = 1,
                               .short_end = UINT64_MAX};
    else
        *c = (struct tier_ctx){.parent = req, .tf = tf, .head = h};
    return c;
}

/* req within extent e (UINT64_MAX: a sync), or spanning extents first to
 * last. Extents in a row that route alike (the same tiers) go as one
 * piece: a 128k write over 64 KiB cold extents is one write to the cold
 * tier, not two, each of which io_uring hands to a worker of its own (the
 * hybrid's 128k writes ran about 10% slower over 64 KiB extents than over
 * 128 KiB ones). -EBUSY when contexts run short for a request within an
 * extent; one spanning more extents than there are contexts left runs
 * piece by piece (tier_split). */
static int tier_async(struct tier_layer *t, struct tier_file *tf, struct xd_req *req, bool count,
                      uint64_t first, uint64_t last)
{
    bool sync_op = first == UINT64_MAX;
    uint64_t extents = sync_op ? 1 : last - first + 1;
    if (extents > t->nfree)
        return extents == 1 ? -EBUSY : tier_split(t, tf, req, count);
    struct tier_ctx *h = tier_piece_ctx(t, tf, req, NULL), *c = h;
    h->span = extents > 1;
    if (sync_op) { /* the cold tier's: it covers the file */
        c->mask = 1u << TIER_C;
        c->wrote = false;
        tier_piece_async(t, c, UINT64_MAX, req->off, req->len);
        return tier_head_drop(t, h) ? XD_DONE : XD_QUEUED;
    }
    uint64_t off = req->off, end = req->off + req->len, from = first, e;
    for (e = first; e <= last; e++) {
        bool wrote;
        unsigned mask = tier_route(tf->sh, e, req->op, count, &wrote);
        tier_count(t, req, mask);
        if (e > first && mask != c->mask) { /* the run so far goes as one piece */
            uint64_t stop = e << tf->sh->shift;
            tier_piece_async(t, c, from, off, stop - off);
            off = stop;
            from = e;
            c = tier_piece_ctx(t, tf, req, h);
        }
        c->mask = mask;
        c->wrote = wrote;
    }
    tier_piece_async(t, c, from, off, end - off);
    return tier_head_drop(t, h) ? XD_DONE : XD_QUEUED;
}

/* fsync/fdatasync: write-back extents are flushed first, then the map and
 * the cold tier are made durable. */
static int tier_sync(struct tier_layer *t, struct tier_file *tf, struct xd_req *req)
{
    int rc = tier_writes_back(tf) ? tier_flush_file(t, tf) : 0;
    if (rc >= 0 && !tf->sh->cold_only) /* cold-only: no map */
        rc = xd_extmap_sync(&tf->sh->map);
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    if (xd_req_is_sync(req)) {
        req->result = tier_sub_sync(t, tf, TIER_C, req, 0, 0, NULL);
        return XD_DONE;
    }
    return tier_async(t, tf, req, false, UINT64_MAX, UINT64_MAX);
}

static int tier_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = req->file->priv[layer->level];
    struct tier_shared *sh = tf->sh;
    xd_tier_count_request(sh);
    if (req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC)
        return tier_sync(t, tf, req);
    uint64_t first = req->off >> sh->shift;
    uint64_t last = req->len ? (req->off + req->len - 1) >> sh->shift : first;
    bool count = tier_counts(t, tf, req, (uint64_t)layer->dev->cfg->tier_sequential_cutoff);
    if (xd_req_is_sync(req))
        return tier_split(t, tf, req, count);
    return tier_async(t, tf, req, count, first, last);
}

static int tier_commit(struct xd_layer *layer)
{
    struct tier_layer *t = layer->priv;
    int sent = 0;
    for (int k = 0; k < 2; k++) {
        if (!t->unsent[k])
            continue;
        int rc = xd_commit(t->inner[k]);
        if (rc < 0)
            return rc;
        t->unsent[k] = false;
        sent += rc;
    }
    return sent;
}

/* Reap up to max sub-requests of tier k (at least min, which the caller keeps
 * within what is in flight there); completed parents go to done[]. */
static int tier_harvest(struct tier_layer *t, int k, struct xd_req **done, unsigned min,
                        unsigned max, const struct timespec *timeout)
{
    int n = xd_reap(t->inner[k], t->subs, min, max, timeout);
    int out = 0;
    for (int i = 0; i < n; i++) {
        struct tier_ctx *c = t->subs[i]->user;
        t->queued[k]--;
        struct xd_req *parent = tier_sub_done(c, k) ? tier_ctx_finish(t, c) : NULL;
        if (parent)
            done[out++] = parent;
    }
    return n < 0 ? n : out;
}

static bool tier_past(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Collect from both tiers without blocking, then block only on a tier with
 * requests in flight, for no more than it has; with both busy, wait on each
 * in short slices so neither tier's completions sit behind the other. */
static int tier_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout)
{
    struct tier_layer *t = layer->priv;
    static const struct timespec zero = {0, 0}, slice = {0, 200 * 1000};
    struct timespec deadline;
    unsigned n = 0;
    if (timeout) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout->tv_sec;
        deadline.tv_nsec += timeout->tv_nsec;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    for (;;) {
        for (int k = 0; k < 2 && n < max; k++) {
            if (!t->queued[k])
                continue;
            int got = tier_harvest(t, k, done + n, 0, max - n, &zero);
            if (got < 0)
                return n ? (int)n : got;
            n += (unsigned)got;
        }
        if (n >= min || n >= max || (!t->queued[TIER_C] && !t->queued[TIER_H]))
            return (int)n;
        if (timeout && tier_past(&deadline))
            return (int)n;
        int k = t->queued[TIER_C] ? TIER_C : TIER_H;
        bool both = t->queued[TIER_C] && t->queued[TIER_H];
        unsigned want = min - n < t->queued[k] ? min - n : t->queued[k];
        const struct timespec *wait = both ? &slice : timeout;
        int got = tier_harvest(t, k, done + n, both ? 1 : want, max - n, wait);
        if (got < 0)
            return n ? (int)n : got;
        n += (unsigned)got;
    }
}

/* --- control ------------------------------------------------------------- */

static bool tier_path_open(const struct tier_layer *t, const char *path)
{
    for (const struct tier_file *tf = t->files; tf; tf = tf->next)
        if (!strcmp(tf->sh->cold_path, path))
            return true;
    return false;
}

static void tier_add(uint64_t fig[TIER_FIGURES], const uint64_t *v, int n)
{
    for (int k = 0; k < n; k++)
        fig[k] += v[k];
}

/* Open files' figures now, closed ones' as last seen, each file once. */
static void tier_sum_figures(const struct tier_layer *t, uint64_t fig[TIER_FIGURES])
{
    uint64_t v[TIER_FIGURES];
    memset(fig, 0, TIER_FIGURES * sizeof(uint64_t));
    for (unsigned i = 0; i < t->nclosed; i++) {
        const struct tier_figures *r = &t->closed[i];
        if (tier_path_open(t, r->path))
            continue;
        tier_add(fig, r->base, TIER_COUNTERS);
        tier_add(fig, r->v, TIER_FIGURES);
    }
    for (const struct tier_file *tf = t->files; tf; tf = tf->next) {
        bool seen = false;
        for (const struct tier_file *p = t->files; p != tf; p = p->next)
            seen |= p->sh == tf->sh;
        if (seen)
            continue;
        const struct tier_figures *r = tier_record(t, tf->sh->cold_path);
        if (r) {
            tier_add(fig, r->base, TIER_COUNTERS);
            if (r->serial != tf->sh->serial)
                tier_add(fig, r->v, TIER_COUNTERS);
        }
        tier_figures_of(tf->sh, v);
        tier_add(fig, v, TIER_FIGURES);
    }
}

static void tier_stats_json(struct tier_layer *t, struct xd_json *j)
{
    uint64_t fig[TIER_FIGURES];
    tier_sum_figures(t, fig);
    uint64_t hot_extents = fig[6], extents = fig[7];
    uint64_t reads = t->reads[TIER_H] + t->reads[TIER_C];
    xd_json_object_begin(j, "tier");
    xd_json_uint(j, "hot_reads", t->reads[TIER_H]);
    xd_json_uint(j, "cold_reads", t->reads[TIER_C]);
    xd_json_double(j, "hot_hit_ratio", reads ? (double)t->reads[TIER_H] / (double)reads : 0.0);
    xd_json_uint(j, "hot_writes", t->writes[TIER_H]);
    xd_json_uint(j, "cold_writes", t->writes[TIER_C]);
    xd_json_uint(j, "hot_requests", t->sent[TIER_H]);
    xd_json_uint(j, "cold_requests", t->sent[TIER_C]);
    xd_json_uint(j, "sequential_skipped", t->sequential_skipped);
    xd_json_uint(j, "promotions", fig[0]);
    xd_json_uint(j, "demotions", fig[1]);
    xd_json_uint(j, "bytes_migrated", fig[2]);
    xd_json_double(j, "migration_time", (double)fig[3] / 1e9);
    xd_json_uint(j, "migration_aborts", fig[4]);
    xd_json_uint(j, "flushes", fig[5]);
    xd_json_uint(j, "hot_extents", hot_extents);
    xd_json_uint(j, "extents", extents);
    xd_json_object_end(j);
}

static int tier_migrate_all(struct tier_layer *t)
{
    int total = 0;
    for (struct tier_file *tf = t->files; tf; tf = tf->next) {
        int rc = xd_tier_migrate_pass(tf->sh);
        if (rc < 0)
            return rc;
        total += rc;
    }
    return total;
}

/* reload: the inner chains take the live keys they own (readahead,
 * compression_level, ...) and every open file's tier state its own. */
static int tier_reload(struct xd_layer *layer, struct tier_layer *t)
{
    char err[XD_ERRLEN];
    for (int k = 0; k < 2; k++) {
        struct xd_config *c = xd_tier_inner_config(layer->dev->cfg, k, false, err, sizeof(err));
        int rc = c ? xd_reload(t->inner[k], c, err, sizeof(err)) : -ENOMEM;
        xd_config_free(c);
        if (rc < 0)
            return rc;
    }
    for (struct tier_file *tf = t->files; tf; tf = tf->next) {
        int rc = xd_tier_apply_live(tf->sh, layer->dev->cfg);
        if (rc)
            return rc;
    }
    return 0;
}

/* The hybrid type can do what its cold tier can: every extent lives there. */
static unsigned tier_caps(struct xd_layer *layer, unsigned below)
{
    const struct tier_layer *t = layer->priv;
    return xd_dev_caps(t->inner[TIER_C]) & (XD_CAP_ASYNC | XD_CAP_TRIM | XD_CAP_DIRECT_IO);
}

static void tier_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    tier_stats_json(layer->priv, j);
}

static int tier_invalidate(struct xd_layer *layer, struct xd_file *file)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = file->priv[layer->level];
    int rc = xd_file_invalidate(t->inner[TIER_C], tf->f[TIER_C]);
    return rc || !tf->f[TIER_H] ? rc : xd_file_invalidate(t->inner[TIER_H], tf->f[TIER_H]);
}

static const char *tier_notice(struct xd_layer *layer)
{
    struct tier_layer *t = layer->priv;
    if (t->notice[0])
        return t->notice;
    const char *n = xd_dev_notice(t->inner[TIER_H]);
    return n ? n : xd_dev_notice(t->inner[TIER_C]);
}

/* A close of its own that could not flush, else what the tiers' devices say. */
static int tier_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    struct tier_layer *t = layer->priv;
    if (!xd_take_held_error(t->close_error, line))
        return 0;
    if (!xd_dev_take_error(t->inner[TIER_C], line, XD_ERRLEN))
        return 0;
    return xd_dev_take_error(t->inner[TIER_H], line, XD_ERRLEN);
}

static int tier_migrate(struct xd_layer *layer) { return tier_migrate_all(layer->priv); }

/* A checkpoint of the file: once the dirty hot extents are flushed, the
 * cold file holds every extent and the map says which are hot; neither
 * changes while this holds the mover locks (no pass in any process) and the
 * checkpoint layer above holds this device's writes. The hot copies are not
 * copied: a restore writes a new cold file (a new inode), which the map's
 * header no longer names, so the next open starts a new map and drops the
 * hot copies (tier_map.c) instead of serving them over the restored data. */
static int tier_hold_files(struct xd_layer *layer, struct xd_file *file, bool hold,
                           const char **paths, unsigned max)
{
    struct tier_layer *t = layer->priv;
    struct tier_file *tf = file->priv[layer->level];
    struct tier_shared *sh = tf->sh;
    if (sh->cold_only) { /* no map, nothing hot, nothing moves: the file alone */
        if (hold && max)
            paths[0] = sh->cold_path;
        return hold ? (max ? 1 : -ENOSPC) : 0;
    }
    if (!hold) {
        xd_extmap_lock(&sh->map, TIER_LOCK_MOVER, F_UNLCK, false);
        pthread_mutex_unlock(&sh->mig_lock);
        return 0;
    }
    if (max < 2)
        return -ENOSPC;
    if (!tf->map_path && asprintf(&tf->map_path, "%s" TIER_MAP_SUFFIX, sh->cold_path) < 0) {
        tf->map_path = NULL;
        return -ENOMEM;
    }
    pthread_mutex_lock(&sh->mig_lock);
    int rc = xd_extmap_lock(&sh->map, TIER_LOCK_MOVER, F_WRLCK, true);
    if (rc) {
        pthread_mutex_unlock(&sh->mig_lock);
        return rc;
    }
    rc = tier_flush_file(t, tf);
    if (rc >= 0)
        rc = xd_flush(t->inner[TIER_C], tf->f[TIER_C], 0);
    if (!rc)
        rc = xd_extmap_sync(&sh->map);
    if (rc) {
        tier_hold_files(layer, file, false, NULL, 0);
        return rc;
    }
    paths[0] = sh->cold_path;
    paths[1] = tf->map_path;
    return 2;
}

/* The cold file's stat, as a view of its own: what the caller reads is the
 * cold file overlaid with hot extents, neither its bytes (view 0) nor a
 * container's data (1). Without it the cache keyed a hybrid file by the
 * caller's path, which cold_directory leaves empty (or gives to another
 * file): two devices on one file each cached it apart, and one read stale
 * blocks after the other wrote. */
static int tier_identity(struct xd_layer *layer, struct xd_file *file, struct stat *st,
                         unsigned *view)
{
    struct tier_file *tf = file->priv[layer->level];
    *view = 2;
    return tier_cold_stat(layer->priv, tf->f[TIER_C], tf->sh->cold_path, st);
}

static int tier_reload_hook(struct xd_layer *layer, const struct xd_config *before)
{
    return tier_reload(layer, layer->priv);
}

/* The hybrid file at path is being removed (xd_unlink): its shared state,
 * its map, the hot tier's copy and tag, what the cold chain keeps beside
 * the cold file, and the cold file itself, all under the names lock, so
 * an open in this process finds the whole file or none of it. Each is
 * named after the cold file as tier_file_open names it (the real path of
 * cold_directory's copy): named after path, nothing was found with a
 * cold_directory, and the file, its map, its copy in RAM and its shared
 * memory all stayed. The caller's path goes last, under the same lock
 * (unlinks_path): removed by the core after the lock was let go, it took
 * the file an open in another thread had just made there, whose next
 * step (stat for the shared state's name) then failed ENOENT. A link at
 * the cold file's name is not followed: only a link at path is removed,
 * as unlink(2) would, and what it names keeps its companions. */
static int tier_unlink_files(struct xd_layer *layer, const char *path, const char *bottom,
                             char *err, size_t errlen)
{
    (void)bottom;
    struct tier_layer *t = layer->priv;
    char *cold = xd_tier_cold_path(layer->dev->cfg, path), *real = NULL, *map = NULL,
         *tag = NULL, line[XD_ERRLEN];
    struct stat st;
    if (cold && !lstat(cold, &st) && S_ISLNK(st.st_mode)) {
        int rc = strcmp(cold, path) ? 0 : xd_unlink_caller_path(path, err, errlen);
        free(cold);
        return rc;
    }
    const char *key = cold;
    if (cold && (real = realpath(cold, NULL)))
        key = real; /* as xd_tier_shared_get keys it */
    if (!cold || asprintf(&map, "%s" TIER_MAP_SUFFIX, key) < 0 ||
        asprintf(&tag, "%s" TIER_TAG_SUFFIX, key) < 0) {
        free(cold);
        free(real);
        free(map);
        return -ENOMEM;
    }
    int removed = 0, failed = 0;
    xd_tier_names_lock(true);
    int rc = xd_tier_forget_state(key); /* needs the cold file and the map still there */
    xd_errf(line, sizeof(line), "%s: cannot remove the hybrid file's shared state: %s", key,
            strerror(rc < 0 ? -rc : 0));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    rc = xd_unlink_own(map);
    xd_errf(line, sizeof(line), "%s: cannot remove the hybrid file's map: %s", map,
            strerror(rc < 0 ? -rc : 0));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    rc = xd_chain_unlink(t->inner[TIER_H]->top, key, false, line, sizeof(line));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    rc = xd_chain_unlink(t->inner[TIER_H]->top, tag, false, line, sizeof(line));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    rc = xd_chain_unlink(t->inner[TIER_C]->top, cold, false, line, sizeof(line));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    if (strcmp(cold, path)) { /* a file xdevice made: only ours */
        rc = xd_unlink_own(cold);
        xd_errf(line, sizeof(line), "%s: cannot remove the cold tier's file: %s", cold,
                strerror(rc < 0 ? -rc : 0));
        xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    }
    /* the caller's path too, here under the names lock (unlinks_path) */
    rc = xd_unlink_caller_path(path, line, sizeof(line));
    xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
    xd_tier_names_unlock();
    free(cold);
    free(real);
    free(map);
    free(tag);
    return failed ? failed : removed;
}

const struct xd_ops xd_tier_ops = {
    .version = XD_OPS_VERSION,
    .name = "tier",
    .open = tier_open,
    .close = tier_close,
    .file_open = tier_file_open,
    .file_close = tier_file_close,
    .file_size = tier_file_size,
    .submit = tier_submit,
    .commit = tier_commit,
    .reap = tier_reap,
    .caps = tier_caps,
    .stats_json = tier_stats_hook,
    .invalidate = tier_invalidate,
    .notice = tier_notice,
    .take_error = tier_take_error,
    .migrate = tier_migrate,
    .reload = tier_reload_hook,
    .hold_files = tier_hold_files,
    .identity = tier_identity,
    .seek = tier_seek,
    .unlink = tier_unlink_files,
    .unlinks_path = true,
};
