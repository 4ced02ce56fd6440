/* checksum_writers.c - the checksum layer's writers: one write of a block
 * out at a time, across every descriptor of the sidecar.
 *
 * An entry keeps a block verifiable through one write in flight: CUR says
 * what it held, NEW what is landing. Two or more writes of one block out
 * at once (numjobs on one file, each job its own device; or one device's
 * overlapping requests) could land in an order that leaves the block
 * matching neither slot, and a write covering part of a block merges into
 * what it read, which another write landing in between changes under it:
 * fio's jobs with two writers of one file read EIO within a second. So a
 * write or trim claims its blocks before NEW is stored and lets them go
 * once it has folded (reaped):
 *
 * - against the device's own requests: a claim that overlaps one of the
 *   device's writes still out first lets them land (cs_drain: they are
 *   sent, reaped, folded, and held for the caller's next reap);
 * - against other descriptors: an exclusive OFD lock on the blocks'
 *   entries (threads and processes each have their own descriptor).
 *
 * A lock and its release cost two system calls (about 1.1 us on a 2-vCPU
 * guest: two thirds of a cached 4k write), so the sidecar's only writer
 * takes none: it is "solo" (core/turns.c says how a later writer asks it
 * to share); the words the writers share are the header's `wanted` and
 * `solo_out`, through each writer's mapping of the sidecar.
 *
 * Nobody waits while holding what a waiter needs: a claim that must wait
 * (for a lock, or for the solo writer) first lets the writes out of every
 * device its thread drives land (core/turns.c; their locks go, and a
 * program with two devices in one thread would otherwise wait on itself),
 * so no cycle of waiters can form. The lock bytes lie far past any entry,
 * and past the header, which opens lock for a moment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checksum_internal.h"

#define CS_LOCK_PRESENCE (INT64_MAX - 1) /* every writer, shared, for its life */
#define CS_LOCK_SOLO     (INT64_MAX - 2) /* the solo writer, exclusive */
#define CS_DRAIN_BATCH   32u

_Static_assert(sizeof(struct cs_header) == CS_HEADER, "the sidecar's header is 64 bytes");
_Static_assert(offsetof(struct cs_header, wanted) % 4 == 0, "header words are aligned");

/* --- locks ------------------------------------------------------------------ */

/* Does another descriptor hold a lock of type at start? */
static bool cs_held_by_other(int fd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return !fcntl(fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK;
}

/* Is a write of block at work through another descriptor: one holding the
 * block's claim, or a solo writer (which claims nothing) with writes out?
 * A query only, so a read-only descriptor asks too. */
bool cs_writer_at_work(const struct cs_file *cf, uint64_t block)
{
    if (cs_held_by_other(cf->fd, F_RDLCK, cs_slot_off(cf, block, 0), (off_t)cf->entry_size))
        return true;
    return cf->solo.solo_out && __atomic_load_n(cf->solo.solo_out, __ATOMIC_SEQ_CST) &&
           cs_held_by_other(cf->fd, F_RDLCK, CS_LOCK_SOLO, 1);
}

/* --- this device's writes out ---------------------------------------------- */

/* The blocks a write or trim claims: every block it touches, [*first,
 * *first + *n). */
static void cs_claim_range(const struct cs_layer *cs, const struct xd_req *req, uint64_t *first,
                           uint64_t *n)
{
    *first = req->off >> cs->shift;
    *n = req->len ? ((req->off + req->len - 1) >> cs->shift) + 1 - *first : 0;
}

/* Is one of the device's writes out on a block that req touches? */
static bool cs_flight_overlaps(const struct cs_layer *cs, const struct xd_req *req)
{
    uint64_t first, n, f, m;
    cs_claim_range(cs, req, &first, &n);
    for (unsigned i = 0; i < cs->flight.n; i++) {
        const struct xd_req *r = cs->flight.at[i];
        cs_claim_range(cs, r, &f, &m);
        if (r->file == req->file && f < first + n && first < f + m)
            return true;
    }
    return false;
}

/* Let every write of this device out below land and fold: they are sent,
 * reaped (with whatever else completes) and held for the caller's next
 * reap. 0, or -errno when one cannot be reaped (the claim that needed
 * them gone then fails rather than wait on its own locks).
 *
 * A completion can drain again: a read that fails its check rechecks,
 * which lets the writes of every device of the thread land
 * (xd_turns_drain_thread), this one's and the mirror's above it, whose
 * drain reaps this layer. So the batch is counted held before any of it
 * completes (a nested drain appends after it, never over it), and while a
 * drain runs no reap hands out anything held: a reap in the middle took
 * entries from the front and shifted the list under this loop, which then
 * lost completions (their writes stayed "out" and the next drain spun for
 * ever: a fio job with checksums, a mirror, retries and fault injection
 * hung about one run in 100) and handed out stale ones (a request
 * completed twice). */
int cs_drain(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    struct xd_req_list *held = &cs->held;
    if (!cs->flight.n)
        return 0;
    int rc = xd_layer_commit(layer->lower);
    cs->draining++;
    while (rc >= 0 && cs->flight.n) {
        if ((rc = xd_req_list_room(held, CS_DRAIN_BATCH)))
            break;
        unsigned from = held->n;
        if ((rc = xd_turns_drain_reap(layer->lower, held->at + from, CS_DRAIN_BATCH)) < 0)
            break;
        held->n += (unsigned)rc;
        cs->count.drained += (unsigned)rc;
        for (unsigned i = 0; i < (unsigned)rc; i++)
            cs_complete(layer, held->at[from + i]); /* at may move: a nested drain grows it */
    }
    cs->draining--;
    return rc < 0 ? rc : 0;
}

/* A read of blocks this device has a write of out: the write lands first.
 * Until then it may not even have gone down (queued for the next commit),
 * and a read served at once (a hole, a hot tier, a cached page) found the
 * block matching neither slot and waited in vain for a write that could
 * not go before it returned (EIO after 20 ms). Landed first, the read
 * returns the new data, as if the write had completed before it was sent.
 * 0 or -errno. */
int cs_land_own_writes(struct xd_layer *layer, const struct xd_req *req)
{
    const struct cs_layer *cs = layer->priv;
    return cs->flight.n && cs_flight_overlaps(cs, req) ? cs_drain(layer) : 0;
}

int cs_writers_open(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    unsigned depth = layer->dev->queue_entries ? layer->dev->queue_entries : 1;
    int rc = xd_req_list_room(&cs->flight, depth);
    if (rc)
        return rc;
    xd_turns_join(&cs->turns, layer, cs_drain);
    return 0;
}

void cs_writers_close(struct xd_layer *layer)
{
    struct cs_layer *cs = layer->priv;
    xd_turns_leave(&cs->turns);
    xd_req_list_free(&cs->flight);
    xd_req_list_free(&cs->held);
}

/* The thread sending this device requests (xd_turns_drain_thread). */
void cs_writers_owner(struct xd_layer *layer)
{
    xd_turns_owner(&((struct cs_layer *)layer->priv)->turns);
}

/* --- solo, and asking the solo writer to share ---------------------------- */

/* A writable sidecar just opened and mapped (its header holds the words
 * the writers share): presence, then solo when alone, or the solo writer
 * asked to share (core/turns.c). 0 or -errno; a sidecar that could not be
 * mapped is refused (-ENOMEM): its writer could not ask a solo one. */
int cs_writers_join(struct xd_layer *layer, struct cs_file *cf)
{
    struct cs_layer *cs = layer->priv;
    if (cf->read_only)
        return 0;
    cf->solo.fd = cf->fd;
    cf->solo.presence_byte = CS_LOCK_PRESENCE;
    cf->solo.solo_byte = CS_LOCK_SOLO;
    if (!cf->solo.wanted)
        return -ENOMEM;
    int rc = xd_turns_presence(&cf->solo);
    if (!rc)
        rc = xd_turns_solo_join(&cf->solo);
    cs->count.solo_files += cf->solo.on;
    return rc;
}

/* --- claims ---------------------------------------------------------------- */

/* The blocks req touches (cs_claim_range) claimed for it, a write or trim
 * about to store its slots; how, recorded in req's context for cs_release.
 * 0 or -errno. */
int cs_claim(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_layer *cs = layer->priv;
    struct cs_file *cf = req->file->priv[layer->level];
    struct cs_req *ctx = xd_req_ctx(layer, req);
    uint64_t first, n;
    cs_claim_range(cs, req, &first, &n);
    ctx->claim = CS_CLAIM_NONE;
    if (cf->read_only || !n)
        return 0;
    int rc = cs_flight_overlaps(cs, req) ? cs_drain(layer) : 0;
    if (rc)
        return rc;
    bool was_solo = cf->solo.on;
    if (xd_turns_solo_enter(&cf->solo, layer, cs_drain)) {
        cs->count.solo_regained += !was_solo; /* every other writer closed */
        ctx->claim = CS_CLAIM_SOLO;
        return 0;
    }
    bool waited;
    rc = xd_turns_lock(cf->fd, cs_slot_off(cf, first, 0), (off_t)(n * cf->entry_size), &waited);
    cs->count.lock_waits += waited;
    if (!rc)
        ctx->claim = CS_CLAIM_LOCK;
    return rc;
}

/* req's claim let go (after its fold), and req off the list of writes out. */
void cs_release(struct xd_layer *layer, struct xd_req *req)
{
    struct cs_file *cf = req->file->priv[layer->level];
    struct cs_req *ctx = xd_req_ctx(layer, req);
    uint64_t first, n;
    xd_req_list_remove(&((struct cs_layer *)layer->priv)->flight, req);
    cs_claim_range(layer->priv, req, &first, &n);
    if (ctx->claim == CS_CLAIM_SOLO)
        xd_turns_solo_done(&cf->solo);
    else if (ctx->claim == CS_CLAIM_LOCK)
        xd_turns_unlock(cf->fd, cs_slot_off(cf, first, 0), (off_t)(n * cf->entry_size));
    ctx->claim = CS_CLAIM_NONE;
}
