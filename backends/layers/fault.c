/* fault.c - the fault-injection layer (enable_fault_injection): makes chosen
 * reads and writes fail, so that the layers above, and the caller, can be
 * tested against real failures. It sits right above the driver.
 *
 * Which requests fail is deterministic: the eligible requests (of fault_ops,
 * overlapping [fault_offset, fault_offset + fault_length)) are numbered in
 * the order they arrive, and request n fails when fault_every divides n, or
 * when a hash of (fault_seed, n) falls under fault_probability. No rand():
 * the same seed and the same sequence of requests give the same faults.
 *
 * How a chosen request fails:
 *   - by default it completes at once with -fault_errno, never sent below;
 *   - fault_corrupt, a read: it is read below, then bits of what came back
 *     are flipped and it succeeds (silent corruption);
 *   - fault_drop_writes, a write: it succeeds (result = len) but is not
 *     sent below: a volatile write cache holds it (fault_held.c). Reads on
 *     this device see it; the next fsync/fdatasync of its file stores it
 *     (so does the cache filling past FAULT_HELD_MAX, oldest first); a
 *     close before that, or a crash, loses it (LevelDB's fault env drops
 *     a file's unsynced data the same way). Other devices and processes
 *     read what is stored.
 * fault_persistent=false: the failed request's (file, op, offset, length)
 * is remembered for a while (FAULT_RECENT requests), and the next identical
 * request passes untouched: a retry succeeds. fault_persistent=true: the
 * range goes on the file's list of bad ranges (kept by path, across
 * reopens) and every later eligible request touching it fails the same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/json.h"
#include "../core/xd_internal.h"
#include "fault_held.h"

/* Identical requests remembered after a transient fault: enough for a
 * retry layer to come back, or fio's next pass over a queue depth of 64. */
#define FAULT_RECENT 64

/* Bytes of held writes per file before the oldest are stored: a volatile
 * cache is small, and a job that never flushes must not grow without end. */
#define FAULT_HELD_MAX (64ull << 20)

/* fault_errno's values, in the order of its allowed list (config_schema.h). */
static const int fault_errnos[] = {EIO, ENOSPC, EAGAIN, EINTR, ETIMEDOUT, EROFS, ENOMEM};

struct fault_range {
    uint64_t lo, hi;
};

/* One file's bad ranges (fault_persistent), sorted and disjoint. */
struct fault_bad {
    struct fault_bad *next;
    struct fault_range *r;
    size_t n, cap;
    char path[];
};

/* One open file: its bad ranges (fault_persistent, kept by path across
 * opens) and its held writes (fault_drop_writes, lost at close). */
struct fault_file {
    struct fault_bad *bad;
    struct fault_held held;
};

struct fault_recent {
    const struct xd_file *file;
    uint64_t off, len;
    enum xd_op op;
    bool used;
};

struct fault_layer {
    uint64_t seed, every, lo, hi; /* hi: UINT64_MAX for "to the end" */
    uint64_t threshold;           /* fault_probability scaled to 2^64 (0: never) */
    int err;
    bool reads, writes, persistent, corrupt, drop, all_of_probability;
    bool async; /* the chain below queues: failures come back from reap, as a device's do */
    struct xd_req *failed_head, *failed_tail;
    uint64_t seen; /* eligible requests so far: the counter the hash is keyed by */
    struct fault_recent recent[FAULT_RECENT];
    unsigned recent_next;
    struct fault_bad *bad;
    struct {
        uint64_t injected, reads, writes, errors, corrupted, passed_retries, bad_hits;
        uint64_t held, stored, lost, store_errors; /* fault_drop_writes */
    } count;
};

/* Per request: a read to corrupt once it comes back, and how, while it is
 * below; the link of the failed list while an async failure waits for
 * reap. Never both: a failed request never goes below (fault_inject), and
 * every request that does had its key set on the way (fault_submit_chosen),
 * so they share 8 bytes and the deepest chain's slices fit in
 * xd_req.xd_private (tests/unit/chains.c). */
struct fault_req {
    union {
        uint64_t corrupt_key; /* below: 0 to leave it alone */
        struct xd_req *next;  /* on the failed list */
    };
};
_Static_assert(sizeof(struct fault_req) == 8, "fault_req grew: the deepest chain may not fit");

static int fault_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct fault_layer *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return -ENOMEM;
    fl->seed = (uint64_t)cfg->fault_seed;
    fl->every = (uint64_t)cfg->fault_every;
    fl->lo = (uint64_t)cfg->fault_offset;
    fl->hi = cfg->fault_length ? fl->lo + (uint64_t)cfg->fault_length : UINT64_MAX;
    if (cfg->fault_probability >= 1.0)
        fl->all_of_probability = true;
    else
        fl->threshold = (uint64_t)(cfg->fault_probability * 18446744073709551616.0);
    fl->err = fault_errnos[cfg->fault_errno];
    fl->reads = cfg->fault_ops != 1;  /* read|write|both */
    fl->writes = cfg->fault_ops != 0;
    fl->persistent = cfg->fault_persistent;
    fl->corrupt = cfg->fault_corrupt;
    fl->drop = cfg->fault_drop_writes;
    fl->async = xd_chain_caps(layer->lower) & XD_CAP_ASYNC;
    layer->priv = fl;
    return 0;
}

static void fault_close(struct xd_layer *layer)
{
    struct fault_layer *fl = layer->priv;
    while (fl->bad) {
        struct fault_bad *next = fl->bad->next;
        free(fl->bad->r);
        free(fl->bad);
        fl->bad = next;
    }
    free(fl);
}

/* --- bad ranges (fault_persistent) ------------------------------------------ */

/* Index of the first range ending after off. */
static size_t fault_bad_find(const struct fault_bad *b, uint64_t off)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->r[mid].hi <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool fault_bad_touches(const struct fault_bad *b, uint64_t off, uint64_t len)
{
    size_t i = fault_bad_find(b, off);
    return i < b->n && b->r[i].lo < off + (len ? len : 1);
}

/* Add [lo, hi), merged with the ranges it overlaps or adjoins. Out of
 * memory only loses the range: the request that chose it fails anyway. */
static void fault_bad_add(struct fault_bad *b, uint64_t lo, uint64_t hi)
{
    size_t i = fault_bad_find(b, lo ? lo - 1 : 0), j = i;
    while (j < b->n && b->r[j].lo <= hi) {
        lo = b->r[j].lo < lo ? b->r[j].lo : lo;
        hi = b->r[j].hi > hi ? b->r[j].hi : hi;
        j++;
    }
    if (j == i) { /* nothing merged: make room for one more */
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 16;
            struct fault_range *r = realloc(b->r, cap * sizeof(*r));
            if (!r)
                return;
            b->r = r;
            b->cap = cap;
        }
        memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
        b->n++;
        j = i + 1;
    } else { /* ranges i..j-1 become one */
        memmove(&b->r[i + 1], &b->r[j], (b->n - j) * sizeof(*b->r));
        b->n -= j - i - 1;
    }
    b->r[i] = (struct fault_range){lo, hi};
}

static struct fault_bad *fault_bad_get(struct fault_layer *fl, const char *path)
{
    struct fault_bad *b;
    for (b = fl->bad; b; b = b->next)
        if (!strcmp(b->path, path))
            return b;
    size_t len = strlen(path) + 1;
    if (!(b = calloc(1, sizeof(*b) + len)))
        return NULL;
    memcpy(b->path, path, len);
    b->next = fl->bad;
    fl->bad = b;
    return b;
}

/* --- transient faults: the retry passes ------------------------------------- */

static struct fault_recent *fault_recent_find(struct fault_layer *fl, const struct xd_req *req)
{
    for (unsigned i = 0; i < FAULT_RECENT; i++) {
        struct fault_recent *r = &fl->recent[i];
        if (r->used && r->file == req->file && r->op == req->op && r->off == req->off &&
            r->len == req->len)
            return r;
    }
    return NULL;
}

static void fault_recent_add(struct fault_layer *fl, const struct xd_req *req)
{
    fl->recent[fl->recent_next] = (struct fault_recent){
        .file = req->file, .off = req->off, .len = req->len, .op = req->op, .used = true};
    fl->recent_next = (fl->recent_next + 1) % FAULT_RECENT;
}

/* --- the choice ------------------------------------------------------------- */

static bool fault_eligible(const struct fault_layer *fl, const struct xd_req *req)
{
    if (req->op == XD_OP_READ ? !fl->reads : req->op == XD_OP_WRITE ? !fl->writes : true)
        return false;
    return req->off < fl->hi && req->off + req->len > fl->lo;
}

/* Whether the next eligible request, number n, is chosen. */
static bool fault_chosen(const struct fault_layer *fl, uint64_t n)
{
    if (fl->every && n % fl->every == 0)
        return true;
    return fl->all_of_probability || (fl->threshold && xd_hash_mix(fl->seed, n) < fl->threshold);
}

/* --- the data path ---------------------------------------------------------- */

/* Flip one bit in every 4 KiB (at least one) of what a read returned, at
 * places drawn from key, so a checksum over any block of it fails. */
static void fault_flip_bits(struct xd_req *req, uint64_t key)
{
    uint64_t n = (uint64_t)req->result;
    for (uint64_t at = 0; at < n; at += 4096) {
        uint64_t span = n - at < 4096 ? n - at : 4096, h = xd_hash_mix(key, at);
        ((unsigned char *)req->buf)[at + h % span] ^= (unsigned char)(1u << (h >> 61));
    }
}

static void fault_complete_read(struct fault_layer *fl, struct fault_req *fr, struct xd_req *req)
{
    if (fr->corrupt_key && req->result > 0) {
        fault_flip_bits(req, fr->corrupt_key);
        fl->count.corrupted++;
    }
    fr->corrupt_key = 0;
}

/* --- held writes (fault_drop_writes) --------------------------------------- */

/* Store one held write below, synchronously; 0 or -errno. */
static int fault_store(struct xd_layer *layer, struct fault_layer *fl, struct xd_file *file,
                       struct fault_held_write *w)
{
    struct xd_req sub = {.op = XD_OP_WRITE, .file = file, .buf = w->data, .len = w->len,
                         .off = w->off};
    xd_req_set_flags(&sub, XD_REQ_SYNC);
    int rc = xd_layer_submit(layer->lower, &sub);
    if (rc >= 0)
        rc = sub.result < 0 ? (int)sub.result : (uint64_t)sub.result == w->len ? 0 : -EIO;
    fault_held_free(w);
    rc ? fl->count.store_errors++ : fl->count.stored++;
    return rc;
}

/* Store file's held writes, oldest first, until at most keep bytes are
 * held; the first error, or 0. */
static int fault_store_until(struct xd_layer *layer, struct fault_layer *fl, struct xd_file *file,
                             uint64_t keep)
{
    struct fault_file *ff = file->priv[layer->level];
    int first = 0;
    while (ff->held.bytes > keep || (!keep && ff->held.count)) {
        int rc = fault_store(layer, fl, file, fault_held_pop(&ff->held));
        first = first ? first : rc;
    }
    return first;
}

/* A chosen write: acknowledged, held until a flush of its file. */
static int fault_hold(struct xd_layer *layer, struct fault_layer *fl, struct xd_req *req)
{
    struct fault_file *ff = req->file->priv[layer->level];
    int rc = fault_held_add(&ff->held, req->off, req->buf, req->len);
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    fl->count.held++;
    fault_store_until(layer, fl, req->file, FAULT_HELD_MAX); /* already acknowledged */
    req->result = (int64_t)req->len;
    return XD_DONE;
}

/* A chosen request: fails, is corrupted, or is held. */
static int fault_inject(struct xd_layer *layer, struct fault_layer *fl, struct xd_req *req,
                        uint64_t key)
{
    fl->count.injected++;
    if (req->op == XD_OP_READ)
        fl->count.reads++;
    else
        fl->count.writes++;
    if (req->op == XD_OP_READ && fl->corrupt) {
        struct fault_req *fr = xd_req_ctx(layer, req);
        fr->corrupt_key = key | 1; /* never 0 */
        int rc = xd_layer_submit(layer->lower, req);
        if (rc == XD_DONE)
            fault_complete_read(fl, fr, req);
        return rc;
    }
    if (req->op == XD_OP_WRITE && fl->drop)
        return fault_hold(layer, fl, req);
    fl->count.errors++;
    req->result = -fl->err;
    if (!fl->async || xd_req_is_sync(req))
        return XD_DONE;
    struct fault_req *fr = xd_req_ctx(layer, req);
    fr->next = NULL;
    if (fl->failed_tail)
        ((struct fault_req *)xd_req_ctx(layer, fl->failed_tail))->next = req;
    else
        fl->failed_head = req;
    fl->failed_tail = req;
    return XD_QUEUED;
}

static int fault_submit_chosen(struct xd_layer *layer, struct xd_req *req)
{
    struct fault_layer *fl = layer->priv;
    ((struct fault_req *)xd_req_ctx(layer, req))->corrupt_key = 0;
    if (!fault_eligible(fl, req))
        return xd_layer_submit(layer->lower, req);
    struct fault_bad *bad = ((struct fault_file *)req->file->priv[layer->level])->bad;
    if (bad && fault_bad_touches(bad, req->off, req->len)) {
        fl->count.bad_hits++;
        return fault_inject(layer, fl, req, xd_hash_mix(fl->seed, req->off));
    }
    struct fault_recent *again = fl->persistent ? NULL : fault_recent_find(fl, req);
    if (again) {
        again->used = false;
        fl->count.passed_retries++;
        return xd_layer_submit(layer->lower, req);
    }
    uint64_t n = ++fl->seen;
    if (!fault_chosen(fl, n))
        return xd_layer_submit(layer->lower, req);
    if (bad)
        fault_bad_add(bad, req->off, req->off + (req->len ? req->len : 1));
    else
        fault_recent_add(fl, req);
    return fault_inject(layer, fl, req, xd_hash_mix(fl->seed, n));
}

/* A read of bytes the cache holds: read below at once (the held bytes
 * must not be stored or patched while it is in flight), then the held
 * bytes laid over what came back. */
static int fault_read_held(struct xd_layer *layer, struct fault_layer *fl, struct xd_req *req)
{
    struct fault_file *ff = req->file->priv[layer->level];
    unsigned flags = xd_req_core(req)->flags;
    xd_req_set_flags(req, flags | XD_REQ_SYNC);
    fault_submit_chosen(layer, req);
    xd_req_set_flags(req, flags);
    if (req->result > 0)
        fault_held_overlay(&ff->held, req->off, req->buf, (uint64_t)req->result);
    return XD_DONE;
}

/* A flush stores the file's held writes first; a write or trim that goes
 * below makes the held bytes it covers its own. */
static int fault_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct fault_layer *fl = layer->priv;
    struct fault_file *ff = req->file->priv[layer->level];
    if (ff->held.count) {
        if (req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC) {
            int rc = fault_store_until(layer, fl, req->file, 0);
            if (rc) {
                req->result = rc;
                return XD_DONE;
            }
        } else if (req->op == XD_OP_READ && fault_held_overlaps(&ff->held, req->off, req->len)) {
            return fault_read_held(layer, fl, req);
        } else if (req->op == XD_OP_WRITE || req->op == XD_OP_TRIM) {
            fault_held_patch(&ff->held, req->off, req->op == XD_OP_WRITE ? req->buf : NULL,
                             req->len);
        }
    }
    return fault_submit_chosen(layer, req);
}

/* Async failures waiting to be reaped, up to room of them. */
static unsigned fault_take_failed(struct xd_layer *layer, struct xd_req **done, unsigned room)
{
    struct fault_layer *fl = layer->priv;
    unsigned n = 0;
    while (n < room && fl->failed_head) {
        struct xd_req *req = fl->failed_head;
        fl->failed_head = ((struct fault_req *)xd_req_ctx(layer, req))->next;
        if (!fl->failed_head)
            fl->failed_tail = NULL;
        done[n++] = req;
    }
    return n;
}

/* Failed requests first; then what below has, without waiting once they
 * alone make min. */
static int fault_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    static const struct timespec no_wait;
    struct fault_layer *fl = layer->priv;
    unsigned failed = fl->failed_head ? fault_take_failed(layer, done, max) : 0;
    if (failed == max)
        return (int)failed;
    int n = xd_layer_reap(layer->lower, done + failed, failed >= min ? 0 : min - failed,
                          max - failed, failed && failed >= min ? &no_wait : timeout);
    if (n < 0)
        return failed ? (int)failed : n;
    if (fl->corrupt)
        for (int i = 0; i < n; i++)
            fault_complete_read(fl, xd_req_ctx(layer, done[failed + i]), done[failed + i]);
    return (int)failed + n;
}

/* --- files and figures ------------------------------------------------------ */

static int fault_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                           uint64_t size, char *err, size_t errlen)
{
    struct fault_layer *fl = layer->priv;
    int rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (rc)
        return rc;
    struct fault_file *ff = calloc(1, sizeof(*ff));
    if (!ff || (fl->persistent && !(ff->bad = fault_bad_get(fl, file->path)))) {
        free(ff);
        xd_layer_file_close(layer->lower, file);
        return -ENOMEM;
    }
    file->priv[layer->level] = ff;
    return 0;
}

static void fault_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct fault_layer *fl = layer->priv;
    struct fault_file *ff = file->priv[layer->level];
    fl->count.lost += fault_held_clear(&ff->held); /* a close before a flush: lost */
    free(ff); /* the bad ranges stay, by path */
    file->priv[layer->level] = NULL;
    for (unsigned i = 0; i < FAULT_RECENT; i++)
        if (fl->recent[i].file == file)
            fl->recent[i].used = false; /* the pointer may come back for another file */
    xd_layer_file_close(layer->lower, file);
}

static void fault_stats_json(struct xd_layer *layer, struct xd_json *j)
{
    struct fault_layer *fl = layer->priv;
    uint64_t ranges = 0, bytes = 0;
    for (const struct fault_bad *b = fl->bad; b; b = b->next)
        for (size_t i = 0; i < b->n; i++, ranges++)
            bytes += b->r[i].hi - b->r[i].lo;
    const struct xd_config *cfg = layer->dev->cfg;
    xd_json_object_begin(j, "fault");
    xd_json_uint(j, "seed", fl->seed);
    xd_json_string(j, "ops", xd_enum_name(XD_KEY_fault_ops, cfg->fault_ops));
    xd_json_string(j, "errno", xd_enum_name(XD_KEY_fault_errno, cfg->fault_errno));
    xd_json_uint(j, "eligible", fl->seen);
    xd_json_uint(j, "injected", fl->count.injected);
    xd_json_uint(j, "injected_reads", fl->count.reads);
    xd_json_uint(j, "injected_writes", fl->count.writes);
    xd_json_uint(j, "errors", fl->count.errors);
    xd_json_uint(j, "corrupted", fl->count.corrupted);
    xd_json_uint(j, "held_writes", fl->count.held);
    xd_json_uint(j, "held_stored", fl->count.stored);
    xd_json_uint(j, "held_store_errors", fl->count.store_errors);
    xd_json_uint(j, "dropped_writes", fl->count.lost);
    xd_json_uint(j, "retries_passed", fl->count.passed_retries);
    xd_json_uint(j, "bad_range_hits", fl->count.bad_hits);
    xd_json_uint(j, "bad_ranges", ranges);
    xd_json_uint(j, "bad_bytes", bytes);
    xd_json_object_end(j);
}

const struct xd_ops xd_fault_ops = {
    .version = XD_OPS_VERSION,
    .name = "fault",
    .req_ctx_size = sizeof(struct fault_req),
    .open = fault_open,
    .close = fault_close,
    .file_open = fault_file_open,
    .file_close = fault_file_close,
    .submit = fault_submit,
    .reap = fault_reap,
    .stats_json = fault_stats_json,
};
