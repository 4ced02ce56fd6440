/* tier_migrate.c - moving a hybrid file's data between its tiers: the
 * copies, write-back flushes, promotion and demotion, a migration pass and
 * the xd-migrate thread that runs timed ones. Separate from the policy
 * (tier_policy.c), which chooses the extents, and from the layer
 * (tier.c), which routes requests by the state this file flips.
 *
 * Migration never blocks the data path. An extent being moved is marked busy
 * (which only keeps other movers away); requests keep flowing to the tier
 * the extent is in. A copy is kept only if no write touched the extent while
 * it ran (wseq unchanged, none in flight), checked under the stripe lock in
 * the same step that flips the extent, so a write either lands before the
 * flip (and aborts it) or after (and is routed by the new state). A hot copy
 * is punched only after reads on it have drained and after the map says the
 * extent is cold on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tier.h"

#define TIER_DRAIN_NS   (100u * 1000 * 1000) /* longest wait for hot reads before a punch */
#define TIER_POLL_NS    (50u * 1000)

static void tier_nap(void)
{
    struct timespec ts = {0, TIER_POLL_NS};
    nanosleep(&ts, NULL);
}

/* --- copies -------------------------------------------------------------- */

/* Copy [off, off+len) from one tier to the other, synchronously; bytes
 * copied (fewer at the end of the file) or -errno. */
static int64_t tier_copy(struct xd_dev *from, struct xd_file *ff, struct xd_dev *to,
                         struct xd_file *tf, uint64_t off, uint64_t len, void *buf)
{
    ssize_t n = xd_read(from, ff, buf, len, off);
    if (n <= 0)
        return n;
    ssize_t w = xd_write(to, tf, buf, (size_t)n, off);
    return w < 0 ? w : n;
}

static uint64_t tier_extent_len(struct tier_shared *sh, uint64_t e)
{
    uint64_t off = e << sh->shift, size = atomic_load(&sh->shm->size);
    if (off >= size)
        return 0;
    return size - off < sh->extent_size ? size - off : sh->extent_size;
}

/* Whether a claim is held: by a live process (a mover or flusher killed
 * while it held one must not keep the extent, or a flush, waiting for ever;
 * what it was doing is safe to abandon: see tier_flip). Under the lock. */
bool xd_tier_busy(const struct tier_ext *x)
{
    return x->busy && (x->busy == (int32_t)getpid() || kill(x->busy, 0) == 0 || errno != ESRCH);
}

/* Take extent e for a mover: 0, or -EAGAIN when it is busy or not in the
 * state wanted (hot: 1 hot, 0 cold, -1 either). *seq gets its write seq. */
static int tier_claim(struct tier_shared *sh, uint64_t e, int hot, uint32_t *seq)
{
    struct tier_ext *x = &sh->ext[e];
    int rc = -EAGAIN;
    tier_lock(sh, e);
    if (!xd_tier_busy(x) && (hot < 0 || x->hot == hot)) {
        x->busy = (int32_t)getpid();
        *seq = x->wseq;
        rc = 0;
    }
    tier_unlock(sh, e);
    return rc;
}

static void tier_unclaim(struct tier_shared *sh, uint64_t e)
{
    tier_lock(sh, e);
    sh->ext[e].busy = 0;
    tier_unlock(sh, e);
}

/* Nothing wrote the extent since seq was taken, and nothing is writing it. */
static bool tier_untouched(const struct tier_ext *x, uint32_t seq)
{
    return x->wseq == seq && x->inflight_w == 0;
}

/* The hot copy holds writes the cold file lacks (write-back). */
static bool tier_dirty(struct tier_shared *sh, uint64_t e)
{
    tier_lock(sh, e);
    bool dirty = sh->ext[e].dirty;
    tier_unlock(sh, e);
    return dirty;
}

/* Turn extent e hot or cold: its map entry first, then the state that
 * routes requests, both under the stripe lock the caller holds, so no
 * request is routed by a state the map does not yet say. The entry is
 * written (page cache), not synced: that is what survives a kill -9 of the
 * process, and what the next open reads. With the entry written after the
 * unlock, a process killed in between lost completed writes: write-back
 * writes to a just-promoted extent (hot copy only; the map said cold, so
 * the restart read the cold file) and writes to a just-demoted one (cold
 * file only; the map said hot, so the restart read the stale hot copy, even
 * for writes fsynced meanwhile). A failed entry write leaves the extent as
 * it was. A mover killed in here while other processes share the file:
 * xd_tier_stripe_recover. */
static int tier_flip(struct tier_shared *sh, uint64_t e, uint8_t hot)
{
    int rc = xd_extmap_write(&sh->map, e, hot);
    if (!rc)
        sh->ext[e].hot = hot;
    return rc;
}

/* A mover that died inside tier_flip may have written the entry and not
 * the state: the processes still running route by the state, so the map
 * must say the same (else a write they send to the cold file would be read
 * from a stale hot copy after the next open). Rewrite the stripe's entries
 * from the state, under its lock. */
void xd_tier_stripe_recover(struct tier_shared *sh, unsigned stripe)
{
    for (uint64_t e = stripe; e < sh->nextents; e += TIER_STRIPES)
        xd_extmap_write(&sh->map, e, sh->ext[e].hot);
}

/* Flush one dirty extent (the caller claimed it): the hot copy to the cold
 * tier. Clean only if no write came meanwhile; the copy itself still covers
 * every write completed before it began. */
static int tier_flush_one(struct tier_shared *sh, struct xd_dev *dev[2], struct xd_file *f[2],
                          void *buf, uint64_t e, uint32_t seq)
{
    int64_t n = tier_copy(dev[TIER_H], f[TIER_H], dev[TIER_C], f[TIER_C], e << sh->shift,
                          tier_extent_len(sh, e), buf);
    if (n < 0)
        return (int)n;
    tier_lock(sh, e);
    if (tier_untouched(&sh->ext[e], seq))
        sh->ext[e].dirty = 0;
    tier_unlock(sh, e);
    atomic_fetch_add(&sh->shm->flushes, 1);
    return 0;
}

static bool tier_needs_flush(struct tier_shared *sh, uint64_t e, bool *busy)
{
    tier_lock(sh, e);
    bool dirty = sh->ext[e].hot && sh->ext[e].dirty;
    *busy = xd_tier_busy(&sh->ext[e]);
    tier_unlock(sh, e);
    return dirty;
}

int xd_tier_flush(struct tier_shared *sh, struct xd_dev *dev[2], struct xd_file *f[2], void *buf)
{
    int flushed = 0;
    for (uint64_t e = 0; e < sh->nextents; e++) {
        bool busy;
        uint32_t seq;
        /* a mover holding it finishes without waiting on us: wait it out */
        while (tier_needs_flush(sh, e, &busy)) {
            if (busy || tier_claim(sh, e, 1, &seq)) {
                tier_nap();
                continue;
            }
            int rc = tier_flush_one(sh, dev, f, buf, e, seq);
            tier_unclaim(sh, e);
            if (rc)
                return rc;
            flushed++;
            break;
        }
    }
    return flushed;
}

/* --- promotion and demotion ---------------------------------------------- */

/* Move extent e to tier `to`: claim it in the other one, copy what `to`
 * lacks, then flip it, in the critical section that also checks that no
 * write made the copy stale. A promotion and a demotion differ only in:
 *   - the copy: a promotion copies the extent; a demotion only a dirty hot
 *     copy back (a clean one's data is in the cold file already);
 *   - the check: in write-through a write reaches the cold file too, so a
 *     demotion may flip whatever was written meanwhile; in write-back such
 *     a write went to the hot copy alone (even to an extent that was clean
 *     at the claim), and a promotion's copy may always have missed one;
 *   - the claim: a promotion releases it with the flip; a demotion keeps it
 *     until tier_demote_finish has punched the hot copy.
 * 1 when moved, 0 when skipped or aborted. */
static int tier_move(struct tier_shared *sh, uint64_t e, int to)
{
    int from = to == TIER_H ? TIER_C : TIER_H;
    uint32_t seq;
    if (tier_claim(sh, e, from == TIER_H, &seq))
        return 0;
    uint64_t t0 = xd_now_ns();
    int64_t n = 0;
    bool copy = to == TIER_H || tier_dirty(sh, e);
    if (copy && to == TIER_C && sh->cold_read_only) { /* stays hot: see cold_read_only */
        tier_unclaim(sh, e);
        return 0;
    }
    if (copy)
        n = tier_copy(sh->mdev[from], sh->mfile[from], sh->mdev[to], sh->mfile[to],
                      e << sh->shift, tier_extent_len(sh, e), sh->buf);
    /* a copy back may have put older bytes over a write that reached the
     * cold file meanwhile: then only an untouched extent flips */
    bool cold_has_every_write = to == TIER_C && !sh->write_back && !copy;
    bool done = false;
    tier_lock(sh, e);
    /* the entry in the same critical section as the flip (see tier_flip) */
    if (n >= 0 && (cold_has_every_write || tier_untouched(&sh->ext[e], seq)) &&
        !tier_flip(sh, e, to == TIER_H)) {
        sh->ext[e].dirty = 0;
        done = true;
    }
    if (to == TIER_H || !done)
        sh->ext[e].busy = 0;
    tier_unlock(sh, e);
    atomic_fetch_add(&sh->shm->migration_ns, xd_ns_since(t0));
    if (!done) {
        atomic_fetch_add(&sh->shm->aborts, 1);
        return 0;
    }
    if (to == TIER_H)
        sh->shm->hot_count++;
    else
        sh->shm->hot_count--;
    atomic_fetch_add(to == TIER_H ? &sh->shm->promotions : &sh->shm->demotions, 1);
    atomic_fetch_add(&sh->shm->bytes_migrated, (uint64_t)n);
    return 1;
}

int xd_tier_promote(struct tier_shared *sh, uint64_t e)
{
    return tier_move(sh, e, TIER_H);
}

/* First half of a demotion: the cold tier gets a dirty copy back, then the
 * extent turns cold in memory and in the map (not yet synced). The hot copy
 * stays until tier_demote_finish; e stays claimed until then. */
int xd_tier_demote_begin(struct tier_shared *sh, uint64_t e)
{
    return tier_move(sh, e, TIER_C);
}

/* Second half, after the map is synced: wait for reads still on the hot
 * copy, then free it. If they do not drain the copy is left; it is harmless
 * (the extent reads from the cold tier) and the next promotion overwrites it. */
static void tier_demote_finish(struct tier_shared *sh, uint64_t e)
{
    uint64_t until = xd_now_ns() + TIER_DRAIN_NS;
    for (;;) {
        tier_lock(sh, e);
        uint32_t readers = sh->ext[e].inflight_hot;
        tier_unlock(sh, e);
        if (!readers) {
            xd_trim(sh->mdev[TIER_H], sh->mfile[TIER_H], sh->extent_size, e << sh->shift);
            break;
        }
        if (xd_now_ns() > until)
            break;
        tier_nap();
    }
    tier_unclaim(sh, e);
}

/* --- passes -------------------------------------------------------------- */

/* One pass, by one process at a time: the mover lock, held for the pass
 * (a pass is short; xd_migrate and migration_interval_requests passes in
 * any process wait for it). */
int xd_tier_migrate_pass(struct tier_shared *sh)
{
    unsigned ndemoted = 0;
    if (sh->cold_only) /* no map to write, no extent to move */
        return 0;
    pthread_mutex_lock(&sh->mig_lock); /* first: batch may change live */
    int rc = xd_extmap_lock(&sh->map, TIER_LOCK_MOVER, F_WRLCK, true);
    if (rc) {
        pthread_mutex_unlock(&sh->mig_lock);
        return rc;
    }
    uint64_t *demoted = calloc(sh->batch * 2 + 1, sizeof(uint64_t));
    if (!demoted) {
        xd_extmap_lock(&sh->map, TIER_LOCK_MOVER, F_UNLCK, false);
        pthread_mutex_unlock(&sh->mig_lock);
        return -ENOMEM;
    }
    int moved = xd_tier_pass_locked(sh, demoted, &ndemoted);
    if (moved > 0 || ndemoted) {
        /* the cold copies of dirty extents, then the map, before any punch */
        if (sh->write_back && ndemoted)
            xd_flush(sh->mdev[TIER_C], sh->mfile[TIER_C], 1);
        xd_extmap_sync(&sh->map);
    }
    for (unsigned i = 0; i < ndemoted; i++)
        tier_demote_finish(sh, demoted[i]);
    atomic_fetch_add(&sh->shm->passes, 1);
    xd_extmap_lock(&sh->map, TIER_LOCK_MOVER, F_UNLCK, false);
    pthread_mutex_unlock(&sh->mig_lock);
    free(demoted);
    return moved < 0 ? moved : moved + (int)ndemoted;
}

/* Passes tied to the workload rather than the clock: a run migrates the
 * same way on a fast machine and a slow one (the timer thread fires a
 * number of times that depends on how long the run took). */
void xd_tier_count_request(struct tier_shared *sh)
{
    uint64_t every = atomic_load(&sh->every_requests);
    if (every && (atomic_fetch_add(&sh->requests, 1) + 1) % every == 0)
        xd_tier_migrate_pass(sh);
}

/* --- the thread ---------------------------------------------------------- */

static void *tier_thread(void *arg)
{
    struct tier_shared *sh = arg;
    pthread_mutex_lock(&sh->wake_lock);
    while (!sh->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + sh->interval_ns;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&sh->wake, &sh->wake_lock, &ts);
        if (sh->stop)
            break;
        pthread_mutex_unlock(&sh->wake_lock);
        /* one thread among the processes sharing the file runs timed
         * passes: the owner, until it closes or dies and another takes over */
        if (!sh->owner)
            sh->owner = !xd_extmap_lock(&sh->map, TIER_LOCK_OWNER, F_WRLCK, false);
        if (sh->owner)
            xd_tier_migrate_pass(sh);
        pthread_mutex_lock(&sh->wake_lock);
    }
    pthread_mutex_unlock(&sh->wake_lock);
    return NULL;
}

int xd_tier_start_thread(struct tier_shared *sh, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sh->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&sh->thread, NULL, tier_thread, sh);
    if (rc) {
        xd_errf(err, errlen, "%s: cannot start the migration thread: %s", sh->cold_path,
                strerror(rc));
        return -rc;
    }
    pthread_setname_np(sh->thread, "xd-migrate");
    sh->thread_started = true;
    return 0;
}

void xd_tier_stop_thread(struct tier_shared *sh)
{
    if (!sh->thread_started)
        return;
    pthread_mutex_lock(&sh->wake_lock);
    sh->stop = true;
    pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&sh->wake_lock);
    pthread_join(sh->thread, NULL);
    sh->thread_started = false;
}
