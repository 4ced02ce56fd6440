/* cache_read.c - the cache's read path: a read served from the cache,
 * sent down on a miss (widened to whole blocks where it covers an edge block
 * only partly), and the blocks it brought inserted when it completes. Apart
 * from the data path's dispatch (cache.c) because the fill slots and their
 * completion are their own small machine.
 *
 * Reads: a read whose blocks all hit is copied and completes inline. Any
 * other read goes down (async stays async) and, when it completes, the
 * blocks it covered are inserted. A read that covers its edge blocks only
 * partly (4 KiB reads with 64 KiB blocks) goes down widened to whole blocks
 * through one of CACHE_FILL_SLOTS buffers of the cache (CACHE_FILL_BYTES
 * each, in CACHE_OVERHEAD_FIXED), so every miss fills its blocks; when all
 * slots are busy, or the widened read would be larger than a slot, it goes
 * down unchanged and only its whole blocks are inserted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache_internal.h"

/* --- reads ------------------------------------------------------------------ */

/* A read completed: the whole blocks it brought go in, with their
 * generations, if nobody wrote them while it was out (cache_gens.c). */
void cache_read_done(struct cache_layer *cl, struct cache_handle *h, const struct xd_req *req)
{
    struct cache *c = cl->cache;
    if (req->result <= 0)
        return;
    uint64_t end = req->off + (uint64_t)req->result, seq = req_seq(cl, req);
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift;
    uint64_t b = (req->off + c->bs - 1) >> c->shift, stop = end >> c->shift;
    uint32_t gen[GENS_BATCH];
    while (b < stop) {
        unsigned n = stop - b < GENS_BATCH ? (unsigned)(stop - b) : GENS_BATCH;
        if (!cache_gens_blocks(c, &h->ident->gens, first, last, req_state(cl, req), 0, b, n, gen)) {
            cl->count.refused += stop - b;
            return;
        }
        for (unsigned i = 0; i < n; i++, b++)
            cache_insert_read(cl, h->ident->key, b, req_at(c, req, b, 0), seq, gen[i]);
    }
}

/* --- widened reads ------------------------------------------------------------ */

/* A free fill slot, NULL when all are in flight (or the arena cannot be
 * made: the read then goes down unwidened, which is only slower). */
static struct cache_fill *fill_get(struct cache *c)
{
    struct cache_fill *f = NULL;
    pthread_mutex_lock(&c->fill_lock);
    if (!c->fill_arena && !posix_memalign((void **)&c->fill_arena, 4096,
                                          (size_t)CACHE_FILL_SLOTS * CACHE_FILL_BYTES)) {
        for (unsigned i = 0; i < CACHE_FILL_SLOTS; i++) {
            c->fills[i].buf = c->fill_arena + (size_t)i * CACHE_FILL_BYTES;
            c->fills[i].next_free = c->fill_free;
            c->fill_free = &c->fills[i];
        }
    }
    if ((f = c->fill_free))
        c->fill_free = f->next_free;
    pthread_mutex_unlock(&c->fill_lock);
    return f;
}

static void fill_put(struct cache *c, struct cache_fill *f)
{
    pthread_mutex_lock(&c->fill_lock);
    f->next_free = c->fill_free;
    c->fill_free = f;
    pthread_mutex_unlock(&c->fill_lock);
}

/* The fill whose sub-request req is, or NULL for any other request. */
struct cache_fill *fill_of(const struct cache *c, const struct xd_req *req)
{
    uintptr_t p = (uintptr_t)req, lo = (uintptr_t)&c->fills[0];
    if (p < lo || p >= (uintptr_t)&c->fills[CACHE_FILL_SLOTS])
        return NULL;
    return (struct cache_fill *)req;
}

/* A widened read completed: its whole blocks go into the cache, the part
 * the caller asked for into its buffer (short when the file ends first).
 * Returns the caller's request; the slot is free again. */
struct xd_req *fill_done(struct cache_layer *cl, struct cache_fill *f)
{
    struct xd_req *req = f->parent;
    int64_t r = f->sub.result;
    cache_read_done(cl, f->h, &f->sub);
    if (r < 0) {
        req->result = r;
    } else {
        uint64_t skip = req->off - f->sub.off;
        uint64_t n = (uint64_t)r > skip ? (uint64_t)r - skip : 0;
        if (n > req->len)
            n = req->len;
        memcpy(req->buf, f->buf + skip, n);
        req->result = (int64_t)n;
    }
    cl->count.fills++;
    fill_put(cl->cache, f);
    return req;
}

/* Send req down as a read of whole blocks first..last; 1 when it cannot be
 * widened (the caller sends it as it is), else what the layer below said. */
static int fill_submit(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
                       struct xd_req *req, uint64_t first, uint64_t last)
{
    struct cache *c = cl->cache;
    uint64_t len = (last - first + 1) << c->shift;
    struct cache_fill *f = len <= CACHE_FILL_BYTES ? fill_get(c) : NULL;
    if (!f)
        return 1;
    f->sub = (struct xd_req){.op = XD_OP_READ, .file = req->file, .buf = f->buf, .len = len,
                             .off = first << c->shift};
    xd_req_set_flags(&f->sub, xd_req_core(req)->flags);
    *req_state(cl, &f->sub) = *req_state(cl, req); /* its blocks are req's */
    f->parent = req;
    f->h = h;
    int rc = xd_layer_submit(layer->lower, &f->sub);
    if (rc == XD_DONE)
        fill_done(cl, f);
    else if (rc < 0) /* -EBUSY: the caller's request comes again */
        fill_put(c, f);
    return rc;
}

int cache_read(struct xd_layer *layer, struct cache_layer *cl, struct cache_handle *h,
               struct xd_req *req)
{
    struct cache *c = cl->cache;
    uint64_t key = h->ident->key;
    uint64_t first = req->off >> c->shift, last = (req->off + req->len - 1) >> c->shift, b;
    for (b = first; b <= last && cache_copy_out(cl, h->ident, b, req); b++)
        ;
    if (b > last) {
        cl->count.hits += last - first + 1;
        cl->count.hit_bytes += req->len;
        req->result = (int64_t)req->len;
        return XD_DONE;
    }
    cl->count.misses += last - first + 1;
    /* what goes down must not read below a block newer in the cache */
    if (atomic_load(&c->dirty))
        for (b = first; b <= last; b++)
            if (cache_is_dirty(c, key, b))
                cache_flush_block(cl, h, b);
    req_set_seq(cl, req, atomic_load(&c->seq));
    cache_gens_read_begin(c, &h->ident->gens, first, last, req_state(cl, req));
    int rc = 1;
    if (!block_whole(c, req, first) || !block_whole(c, req, last))
        rc = fill_submit(layer, cl, h, req, first, last);
    if (rc == 1 && (rc = xd_layer_submit(layer->lower, req)) == XD_DONE)
        cache_read_done(cl, h, req);
    else if (rc == -EBUSY) /* it comes again */
        cl->count.misses -= last - first + 1;
    return rc;
}
