/* migrate.c - the hybrid type's per-file tier state and its migration: the
 * registry that lets every device of a process share one state per file,
 * the shared memory that lets processes share it (docs/HYBRID-PROCESSES.md),
 * the promotion/demotion policy, the copies, and the xd-migrate thread.
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
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "tier.h"

#define TIER_DRAIN_NS   (100u * 1000 * 1000) /* longest wait for hot reads before a punch */
#define TIER_POLL_NS    (50u * 1000)
#define TIER_MAP_SUFFIX ".xdmap"
#define TIER_TAG_SUFFIX ".xdtag"

/* Bytes of the map file whose OFD locks the processes sharing a hybrid
 * file coordinate with (the map's data is not what they lock). */
enum {
    TIER_LOCK_ATTACHED = 0, /* F_RDLCK while a process has the file open */
    TIER_LOCK_SETUP = 1,    /* attaching, building or leaving the shared state */
    TIER_LOCK_MOVER = 2,    /* a migration pass is running */
    TIER_LOCK_OWNER = 3,    /* the process whose thread runs timed passes */
};

static pthread_mutex_t tier_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tier_shared *tier_registry;

static void tier_nap(void)
{
    struct timespec ts = {0, TIER_POLL_NS};
    nanosleep(&ts, NULL);
}

/* --- inner chains -------------------------------------------------------- */

static int tier_set(struct xd_config *c, const char *key, const char *value, char *err,
                    size_t errlen)
{
    return xd_config_set(c, key, value, "hybrid type", err, errlen);
}

struct xd_config *xd_tier_inner_config(const struct xd_config *cfg, int which, bool sync,
                                        char *err, size_t errlen)
{
    struct xd_config *c = xd_config_dup(cfg);
    int rc = c ? 0 : -ENOMEM;
    if (!c) {
        xd_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (which == TIER_H) {
        rc = tier_set(c, "storage_type", "tmpfs", err, errlen);
        /* the hot copy must never be backed up over the cold file */
        if (!rc)
            rc = tier_set(c, "backup_to_disk", "false", err, errlen);
        if (!rc && cfg->hot_directory[0])
            rc = tier_set(c, "tmpfs_directory", cfg->hot_directory, err, errlen);
    } else {
        const char *type = cfg->cold_enable_compression
                               ? "compressed"
                               : xd_enum_name(XD_KEY_cold_storage_type, cfg->cold_storage_type);
        rc = tier_set(c, "storage_type", type, err, errlen);
    }
    if (!rc && sync)
        rc = tier_set(c, "async", "sync", err, errlen);
    /* the hybrid device's own stats layer counts every request once; the
     * inner ones would only add two clock reads to each */
    if (!rc)
        rc = tier_set(c, "enable_metrics", "false", err, errlen);
    /* a cache sits above the tier layer, once, not in each tier's chain */
    if (!rc)
        rc = tier_set(c, "enable_write_cache", "false", err, errlen);
    if (!rc)
        rc = tier_set(c, "enable_read_cache", "false", err, errlen);
    if (!rc)
        rc = tier_set(c, "trace", "", err, errlen);
    if (rc) {
        xd_config_free(c);
        return NULL;
    }
    return c;
}

char *xd_tier_cold_path(const struct xd_config *cfg, const char *path)
{
    char *out = NULL;
    const char *slash = strrchr(path, '/');
    if (!cfg->cold_directory[0])
        return strdup(path);
    if (asprintf(&out, "%s/%s", cfg->cold_directory, slash ? slash + 1 : path) < 0)
        return NULL;
    return out;
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
static bool tier_busy(const struct tier_ext *x)
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
    if (!tier_busy(x) && (hot < 0 || x->hot == hot)) {
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
    *busy = tier_busy(&sh->ext[e]);
    tier_unlock(sh, e);
    return dirty;
}

int xd_tier_flush(struct tier_shared *sh, struct xd_dev *dev[2], struct xd_file *f[2], void *buf)
{
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
            break;
        }
    }
    return 0;
}

/* --- promotion and demotion ---------------------------------------------- */

static int tier_promote(struct tier_shared *sh, uint64_t e)
{
    uint32_t seq;
    if (tier_claim(sh, e, 0, &seq))
        return 0;
    uint64_t t0 = xd_now_ns();
    int64_t n = tier_copy(sh->mdev[TIER_C], sh->mfile[TIER_C], sh->mdev[TIER_H],
                          sh->mfile[TIER_H], e << sh->shift, tier_extent_len(sh, e), sh->buf);
    bool done = false;
    tier_lock(sh, e);
    /* the entry in the same critical section as the flip (see tier_flip) */
    if (n >= 0 && tier_untouched(&sh->ext[e], seq) && !tier_flip(sh, e, 1)) {
        sh->ext[e].dirty = 0;
        done = true;
    }
    sh->ext[e].busy = 0;
    tier_unlock(sh, e);
    atomic_fetch_add(&sh->shm->migration_ns, xd_now_ns() - t0);
    if (!done) {
        atomic_fetch_add(&sh->shm->aborts, 1);
        return n < 0 ? (int)n : 0;
    }
    sh->shm->hot_count++;
    atomic_fetch_add(&sh->shm->promotions, 1);
    atomic_fetch_add(&sh->shm->bytes_migrated, (uint64_t)n);
    return 1;
}

/* First half of a demotion: the cold tier gets a dirty copy back, then the
 * extent turns cold in memory and in the map (not yet synced). The hot copy
 * stays until tier_demote_finish; e stays claimed until then. 1 when
 * demoted, 0 when skipped. */
static int tier_demote_begin(struct tier_shared *sh, uint64_t e)
{
    uint32_t seq;
    if (tier_claim(sh, e, 1, &seq))
        return 0;
    uint64_t t0 = xd_now_ns();
    int64_t n = 0;
    tier_lock(sh, e);
    bool dirty = sh->ext[e].dirty;
    tier_unlock(sh, e);
    if (dirty)
        n = tier_copy(sh->mdev[TIER_H], sh->mfile[TIER_H], sh->mdev[TIER_C], sh->mfile[TIER_C],
                      e << sh->shift, tier_extent_len(sh, e), sh->buf);
    bool done = false;
    tier_lock(sh, e);
    /* write-back: a write since the claim went to the hot copy alone (even
     * to an extent that was clean then), so the flip needs it untouched */
    if (n >= 0 && (!sh->write_back || tier_untouched(&sh->ext[e], seq)) &&
        !tier_flip(sh, e, 0)) {
        sh->ext[e].dirty = 0;
        done = true;
    }
    tier_unlock(sh, e);
    atomic_fetch_add(&sh->shm->migration_ns, xd_now_ns() - t0);
    if (!done) {
        tier_unclaim(sh, e);
        atomic_fetch_add(&sh->shm->aborts, 1);
        return 0;
    }
    sh->shm->hot_count--;
    atomic_fetch_add(&sh->shm->demotions, 1);
    if (n > 0)
        atomic_fetch_add(&sh->shm->bytes_migrated, (uint64_t)n);
    return 1;
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

/* --- policy -------------------------------------------------------------- */

/* Accesses in the current window; 0 once the window has run out. */
static uint32_t tier_heat(const struct tier_shared *sh, const struct tier_ext *x, uint64_t now)
{
    return now - x->win_ns > sh->timeout_ns ? 0 : x->hits;
}

/* Keep the k best of a list by score (higher first), insertion-sorted. */
static void tier_keep(uint64_t *list, uint64_t *score, unsigned *n, unsigned k, uint64_t e,
                      uint64_t s)
{
    if (*n == k && s <= score[k - 1])
        return;
    unsigned pos = *n < k ? (*n)++ : k - 1;
    while (pos > 0 && score[pos - 1] < s) {
        list[pos] = list[pos - 1];
        score[pos] = score[pos - 1];
        pos--;
    }
    list[pos] = e;
    score[pos] = s;
}

struct tier_scan {
    unsigned ncand, nvict, ntimeout;
    uint64_t *cand_score, *vict_score;
};

/* One look at every extent: hot ones idle past cold_timeout_sec (demoted
 * outright), cold ones accessed hot_access_threshold times in their window
 * (candidates, most accessed first) and the coldest hot ones (victims when
 * the hot tier is full: fewest accesses in the window, then longest idle). */
static void tier_scan(struct tier_shared *sh, struct tier_scan *s, uint64_t *timeout_list,
                      uint64_t now)
{
    for (uint64_t e = 0; e < sh->nextents; e++) {
        tier_lock(sh, e);
        struct tier_ext x = sh->ext[e];
        tier_unlock(sh, e);
        if (tier_busy(&x))
            continue;
        uint32_t heat = tier_heat(sh, &x, now);
        if (x.hot && now - x.last_ns > sh->timeout_ns) {
            if (s->ntimeout < sh->batch)
                timeout_list[s->ntimeout++] = e;
        } else if (x.hot) {
            /* coldest scores highest: few hits, then old */
            uint64_t cold = ((uint64_t)(UINT32_MAX - heat) << 32) |
                            (uint32_t)((now - x.last_ns) >> 20);
            tier_keep(sh->victim, s->vict_score, &s->nvict, sh->batch, e, cold);
        } else if (heat >= sh->threshold) {
            tier_keep(sh->cand, s->cand_score, &s->ncand, sh->batch, e, heat);
        }
    }
}

static uint32_t tier_heat_of(struct tier_shared *sh, uint64_t e, uint64_t now)
{
    tier_lock(sh, e);
    uint32_t h = tier_heat(sh, &sh->ext[e], now);
    tier_unlock(sh, e);
    return h;
}

static int tier_pass_locked(struct tier_shared *sh, uint64_t *demoted, unsigned *ndemoted)
{
    uint64_t now = xd_clock_monotonic_ns();
    uint64_t *timeouts = demoted;
    struct tier_scan s = {
        .cand_score = calloc(sh->batch, sizeof(uint64_t)),
        .vict_score = calloc(sh->batch, sizeof(uint64_t)),
    };
    int moved = 0;
    if (!s.cand_score || !s.vict_score) {
        free(s.cand_score);
        free(s.vict_score);
        return -ENOMEM;
    }
    tier_scan(sh, &s, timeouts, now);
    unsigned budget = sh->batch, v = 0, i = 0;
    *ndemoted = 0;
    for (unsigned k = 0; k < s.ntimeout && budget; k++, budget--)
        if (tier_demote_begin(sh, timeouts[k]))
            demoted[(*ndemoted)++] = timeouts[k];
    /* over capacity (a smaller hot_cache_size since the map was written) */
    for (; sh->shm->hot_count > sh->capacity && v < s.nvict && budget; v++, budget--)
        if (tier_demote_begin(sh, sh->victim[v]))
            demoted[(*ndemoted)++] = sh->victim[v];
    while (i < s.ncand && budget) {
        if (sh->shm->hot_count >= sh->capacity) {
            /* make room only for an extent clearly hotter than the coldest
             * hot one (by hot_access_threshold more accesses): extents of
             * about the same heat would otherwise swap places every pass */
            if (v >= s.nvict ||
                tier_heat_of(sh, sh->victim[v], now) + sh->threshold > s.cand_score[i])
                break;
            budget--;
            if (tier_demote_begin(sh, sh->victim[v]))
                demoted[(*ndemoted)++] = sh->victim[v];
            v++;
            continue; /* the same candidate, with room now (or the next victim) */
        }
        if (tier_promote(sh, sh->cand[i++]) > 0)
            moved++;
        budget--;
    }
    free(s.cand_score);
    free(s.vict_score);
    return moved;
}

/* One pass, by one process at a time: the mover lock, held for the pass
 * (a pass is short; xd_migrate and migration_interval_requests passes in
 * any process wait for it). */
int xd_tier_migrate_pass(struct tier_shared *sh)
{
    unsigned ndemoted = 0;
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
    int moved = tier_pass_locked(sh, demoted, &ndemoted);
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

int xd_tier_apply_live(struct tier_shared *sh, const struct xd_config *cfg)
{
    unsigned batch = (unsigned)cfg->migration_batch_size;
    pthread_mutex_lock(&sh->mig_lock);
    if (batch != sh->batch) {
        uint64_t *cand = calloc(batch, sizeof(uint64_t)), *victim = calloc(batch, sizeof(uint64_t));
        if (!cand || !victim) {
            free(cand);
            free(victim);
            pthread_mutex_unlock(&sh->mig_lock);
            return -ENOMEM;
        }
        free(sh->cand);
        free(sh->victim);
        sh->cand = cand;
        sh->victim = victim;
        sh->batch = batch;
    }
    sh->capacity = (uint64_t)cfg->hot_cache_size >> sh->shift;
    sh->threshold = (unsigned)cfg->hot_access_threshold;
    sh->timeout_ns = (uint64_t)(cfg->cold_timeout_sec * 1e9);
    sh->interval_ns = (uint64_t)(cfg->migration_interval_sec * 1e9);
    sh->every_requests = (uint64_t)cfg->migration_interval_requests;
    for (int k = 0; k < 2; k++) { /* the migration's own devices copy with the new values */
        char err[XD_ERRLEN];
        struct xd_config *c = xd_tier_inner_config(cfg, k, true, err, sizeof(err));
        if (c && sh->mdev[k])
            xd_reload(sh->mdev[k], c, err, sizeof(err));
        xd_config_free(c);
    }
    pthread_mutex_unlock(&sh->mig_lock);
    pthread_mutex_lock(&sh->wake_lock); /* a shorter interval starts now */
    pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&sh->wake_lock);
    return 0;
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

static int tier_start_thread(struct tier_shared *sh, char *err, size_t errlen)
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

static void tier_stop_thread(struct tier_shared *sh)
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

/* --- opening: the map, the hot tier's tag -------------------------------- */

/* The hot tier's tag: 8 bytes in a file beside the hot copy. A tmpfs wiped
 * by a reboot loses it, which invalidates every map entry written for it. */
static int tier_read_tag(struct tier_shared *sh, struct xd_file *tagf, uint64_t *tag)
{
    ssize_t n = xd_read(sh->mdev[TIER_H], tagf, tag, sizeof(*tag), 0);
    return n == (ssize_t)sizeof(*tag) && *tag ? 0 : -ENOENT;
}

static uint64_t tier_cold_id(const char *path)
{
    struct stat st;
    if (stat(path, &st))
        return 0;
    return (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << 40);
}

/* Load the map's hot entries, or start a new map and a new tag when the map
 * or the hot tier is not the one it describes. */
static int tier_load_map(struct tier_shared *sh, char *err, size_t errlen)
{
    struct xd_file *tagf;
    char *tagname = NULL;
    uint64_t tag = 0, maptag = 0, id = tier_cold_id(sh->cold_path);
    if (asprintf(&tagname, "%s%s", sh->cold_path, TIER_TAG_SUFFIX) < 0)
        return -ENOMEM;
    int rc = xd_file_open(sh->mdev[TIER_H], tagname, XD_OPEN_CREATE, 0, &tagf, err, errlen);
    free(tagname);
    if (rc)
        return rc;
    bool valid = !tier_read_tag(sh, tagf, &tag) &&
                 !xd_extmap_load_header(&sh->map, sh->extent_size, id, &maptag) && tag == maptag;
    if (!valid) {
        while (getrandom(&tag, sizeof(tag), 0) != sizeof(tag) || !tag)
            ;
        int64_t hot_size = xd_file_size(sh->mdev[TIER_H], sh->mfile[TIER_H]);
        if (hot_size > 0)
            xd_trim(sh->mdev[TIER_H], sh->mfile[TIER_H], (uint64_t)hot_size, 0);
        rc = xd_extmap_reset(&sh->map, sh->extent_size, id, tag);
        if (!rc && xd_write(sh->mdev[TIER_H], tagf, &tag, sizeof(tag), 0) != sizeof(tag))
            rc = -EIO;
    }
    xd_file_close(sh->mdev[TIER_H], tagf);
    if (rc) {
        xd_errf(err, errlen, "%s%s: cannot start the extent map: %s", sh->cold_path,
                TIER_MAP_SUFFIX, strerror(-rc));
        return rc;
    }
    if (!valid)
        return 0;
    bool *hot = calloc(sh->nextents ? sh->nextents : 1, sizeof(bool));
    if (!hot)
        return -ENOMEM;
    rc = xd_extmap_read(&sh->map, 0, sh->nextents, hot);
    uint64_t now = xd_clock_monotonic_ns();
    for (uint64_t e = 0; !rc && e < sh->nextents; e++) {
        if (!hot[e])
            continue;
        sh->ext[e].hot = 1;
        sh->ext[e].dirty = sh->write_back; /* unknown after a restart: assume so */
        /* idle from now, not since boot: a restart alone demotes nothing */
        sh->ext[e].last_ns = sh->ext[e].win_ns = now;
        sh->shm->hot_count++;
    }
    free(hot);
    return rc;
}

static int tier_open_devs(struct tier_shared *sh, const struct xd_config *cfg, uint64_t size,
                          char *err, size_t errlen)
{
    for (int t = 0; t < 2; t++) {
        struct xd_config *c = xd_tier_inner_config(cfg, t, true, err, errlen);
        if (!c)
            return -EINVAL;
        int rc = xd_open(&sh->mdev[t], c, 1, err, errlen);
        xd_config_free(c);
        if (rc)
            return rc;
        rc = xd_file_open(sh->mdev[t], sh->cold_path, XD_OPEN_CREATE, t == TIER_C ? size : 0,
                          &sh->mfile[t], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static void tier_settings(struct tier_shared *sh, const struct xd_config *cfg)
{
    sh->extent_size = (uint64_t)cfg->tier_extent_size;
    sh->shift = (unsigned)__builtin_ctzll(sh->extent_size);
    sh->capacity = (uint64_t)cfg->hot_cache_size >> sh->shift;
    sh->threshold = (unsigned)cfg->hot_access_threshold;
    sh->timeout_ns = (uint64_t)(cfg->cold_timeout_sec * 1e9);
    sh->interval_ns = (uint64_t)(cfg->migration_interval_sec * 1e9);
    sh->every_requests = (uint64_t)cfg->migration_interval_requests;
    sh->batch = (unsigned)cfg->migration_batch_size;
    sh->write_back = cfg->tier_write_back;
    sh->auto_migration = cfg->auto_migration;
    sh->map.fd = -1;
    pthread_mutex_init(&sh->mig_lock, NULL);
    pthread_mutex_init(&sh->wake_lock, NULL);
}

/* --- the state shared by processes --------------------------------------- */

#define TIER_SHM_MAGIC (0x7864746965720000ull ^ (sizeof(struct tier_shm) << 8) ^ \
                        sizeof(struct tier_ext) ^ sizeof(pthread_mutex_t) << 24)

/* Named after the cold file's device and inode: every process opening the
 * file by any path finds the same object. */
static int tier_shm_name(const char *cold_path, char *name, size_t len)
{
    struct stat st;
    if (stat(cold_path, &st))
        return -errno;
    snprintf(name, len, "/xdevice-tier-%llx-%llx", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    return 0;
}

static int tier_shm_map(struct tier_shared *sh, int fd, uint64_t nextents)
{
    sh->shm_len = sizeof(struct tier_shm) + (nextents ? nextents : 1) * sizeof(struct tier_ext);
    void *p = mmap(NULL, sh->shm_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    sh->shm = p;
    sh->ext = sh->shm->ext;
    return 0;
}

/* The first process to attach: a fresh object (whatever a process that
 * died left there is never trusted), its locks, and the map's entries. */
static int tier_shm_build(struct tier_shared *sh, const char *name, uint64_t size, char *err,
                          size_t errlen)
{
    /* Nobody is attached (the caller holds the setup lock), so whatever is
     * at the name was left by a process that died or planted by someone
     * else: remove it and make a new object, never reuse one. */
    shm_unlink(name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = -errno;
        xd_errf(err, errlen, "/dev/shm%s: cannot make the hybrid file's shared state: %s; allowed: a name no other user holds",
                name, strerror(-rc));
        return rc;
    }
    sh->nextents = (size + sh->extent_size - 1) >> sh->shift;
    size_t len = sizeof(struct tier_shm) + (sh->nextents ? sh->nextents : 1) * sizeof(struct tier_ext);
    int rc = ftruncate(fd, 0) || ftruncate(fd, (off_t)len) ? -errno : tier_shm_map(sh, fd, sh->nextents);
    close(fd);
    if (rc)
        return rc;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    for (int i = 0; i < TIER_STRIPES; i++)
        pthread_mutex_init(&sh->shm->stripe[i], &ma);
    pthread_mutexattr_destroy(&ma);
    sh->shm->extent_size = sh->extent_size;
    sh->shm->nextents = sh->nextents;
    atomic_store(&sh->shm->size, size);
    rc = tier_load_map(sh, err, errlen);
    sh->shm->map_tag = sh->map.tag;
    if (!rc)
        sh->shm->magic = TIER_SHM_MAGIC; /* last: attachers check it */
    return rc;
}

/* A later process: the object as the first one built it. */
static int tier_shm_join(struct tier_shared *sh, const char *name, char *err, size_t errlen)
{
    struct stat st;
    int fd = shm_open(name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) ? -errno : 0;
    /* only an object this user made (tier_shm_build), private to it */
    if (!rc && (st.st_uid != geteuid() || (st.st_mode & 077))) {
        xd_errf(err, errlen, "/dev/shm%s: owned by uid %u with mode %03o; allowed: the hybrid file's shared state made by this user, mode 0600",
                name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        rc = -EPERM;
    }
    struct tier_shm head;
    if (!rc && pread(fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head))
        rc = -EIO;
    if (!rc && (head.magic != TIER_SHM_MAGIC ||
                (uint64_t)st.st_size < sizeof(head) + head.nextents * sizeof(struct tier_ext)))
        rc = -EPROTO;
    if (!rc && head.extent_size != sh->extent_size) {
        xd_errf(err, errlen, "%s: tier_extent_size=%llu differs from the %llu another process opened the file with; allowed: the same value in every job sharing a hybrid file",
                sh->cold_path, (unsigned long long)sh->extent_size,
                (unsigned long long)head.extent_size);
        rc = -EINVAL;
    }
    if (!rc)
        rc = tier_shm_map(sh, fd, head.nextents);
    close(fd);
    if (!rc) {
        sh->nextents = head.nextents;
        sh->map.tag = head.map_tag;
        sh->map.extent_size = head.extent_size;
    }
    return rc;
}

/* Attach to the file's shared state, building it if no other process has
 * the file open (no F_RDLCK on the attached byte): under the setup lock,
 * so two first openers never both build it, and a last closer never
 * removes it under a new one. */
static int tier_attach(struct tier_shared *sh, uint64_t size, char *err, size_t errlen)
{
    char name[96];
    int rc = tier_shm_name(sh->cold_path, name, sizeof(name));
    if (!rc)
        rc = xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_WRLCK, true);
    if (rc)
        goto fail;
    if (!xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_WRLCK, false)) {
        rc = tier_shm_build(sh, name, size, err, errlen);
        if (!rc) /* a downgrade: never unlocked in between */
            rc = xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_RDLCK, false);
    } else {
        rc = xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_RDLCK, true);
        if (!rc)
            rc = tier_shm_join(sh, name, err, errlen);
    }
    xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_UNLCK, false);
fail:
    if (rc && !err[0])
        xd_errf(err, errlen, "%s%s: cannot share the hybrid file's state between processes: %s",
                sh->cold_path, TIER_MAP_SUFFIX, strerror(-rc));
    return rc;
}

/* The last process to close removes the shared object. */
static void tier_detach(struct tier_shared *sh)
{
    char name[96];
    if (sh->map.fd < 0)
        return;
    if (!xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_WRLCK, true)) {
        if (!xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_WRLCK, false) &&
            !tier_shm_name(sh->cold_path, name, sizeof(name)))
            shm_unlink(name);
    }
    if (sh->shm)
        munmap(sh->shm, sh->shm_len);
    sh->shm = NULL;
    sh->ext = NULL;
    /* closing the map (the caller) drops every lock, the setup one last */
}

static void tier_shared_free(struct tier_shared *sh)
{
    tier_stop_thread(sh);
    for (int t = 0; t < 2; t++) {
        if (sh->mdev[t]) {
            if (t == TIER_C && sh->mfile[t])
                xd_flush(sh->mdev[t], sh->mfile[t], 1);
            xd_file_close(sh->mdev[t], sh->mfile[t]);
            xd_close(sh->mdev[t]);
        }
    }
    if (sh->map.fd >= 0)
        xd_extmap_sync(&sh->map);
    tier_detach(sh);
    xd_extmap_close(&sh->map);
    free(sh->buf);
    free(sh->cand);
    free(sh->victim);
    free(sh->cold_path);
    free(sh);
}

static int tier_shared_new(const struct xd_config *cfg, const char *cold_path, uint64_t size,
                           struct tier_shared **out, char *err, size_t errlen)
{
    struct tier_shared *sh = calloc(1, sizeof(*sh));
    char *map_path = NULL;
    if (!sh || !(sh->cold_path = strdup(cold_path))) {
        free(sh);
        return -ENOMEM;
    }
    tier_settings(sh, cfg);
    static _Atomic uint64_t serials;
    sh->serial = atomic_fetch_add(&serials, 1) + 1;
    int rc = tier_open_devs(sh, cfg, size, err, errlen);
    if (rc)
        goto fail;
    int64_t have = xd_file_size(sh->mdev[TIER_C], sh->mfile[TIER_C]);
    if (have > 0 && (uint64_t)have > size)
        size = (uint64_t)have;
    rc = -ENOMEM;
    sh->cand = calloc(sh->batch, sizeof(uint64_t));
    sh->victim = calloc(sh->batch, sizeof(uint64_t));
    if (!sh->cand || !sh->victim || posix_memalign(&sh->buf, 4096, sh->extent_size) ||
        asprintf(&map_path, "%s%s", cold_path, TIER_MAP_SUFFIX) < 0)
        goto fail;
    rc = xd_extmap_open(&sh->map, map_path, cfg, err, errlen);
    free(map_path);
    if (!rc)
        rc = tier_attach(sh, size, err, errlen);
    if (!rc && sh->auto_migration)
        rc = tier_start_thread(sh, err, errlen);
    if (rc)
        goto fail;
    *out = sh;
    return 0;
fail:
    tier_shared_free(sh);
    return rc;
}

int xd_tier_shared_get(const struct xd_config *cfg, const char *cold_path, uint64_t size,
                       struct tier_shared **out, char *err, size_t errlen)
{
    char *abs = realpath(cold_path, NULL);
    const char *key = abs ? abs : cold_path;
    int rc = 0;
    pthread_mutex_lock(&tier_registry_lock);
    struct tier_shared *sh = tier_registry;
    while (sh && strcmp(sh->cold_path, key))
        sh = sh->next;
    if (sh && sh->extent_size != (uint64_t)cfg->tier_extent_size) {
        xd_errf(err, errlen, "%s: tier_extent_size=%lld differs from the %llu this process opened the file with; allowed: the same value in every job sharing a hybrid file",
                cold_path, (long long)cfg->tier_extent_size, (unsigned long long)sh->extent_size);
        rc = -EINVAL;
    } else if (sh) {
        sh->refs++;
    } else if (!(rc = tier_shared_new(cfg, key, size, &sh, err, errlen))) {
        sh->refs = 1;
        sh->next = tier_registry;
        tier_registry = sh;
    }
    pthread_mutex_unlock(&tier_registry_lock);
    free(abs);
    if (!rc)
        *out = sh;
    return rc;
}

/* The last reference frees the state with the registry held: a job opening
 * the file meanwhile (fio reopens it for verify) must wait until the map's
 * lock is released, or it would find its own process holding it. */
void xd_tier_shared_put(struct tier_shared *sh)
{
    pthread_mutex_lock(&tier_registry_lock);
    if (--sh->refs == 0) {
        struct tier_shared **p = &tier_registry;
        while (*p != sh)
            p = &(*p)->next;
        *p = sh->next;
        tier_shared_free(sh);
    }
    pthread_mutex_unlock(&tier_registry_lock);
}

/* --- the cold file before any device opens it ---------------------------- */

static bool tier_cold_compressed(const struct xd_config *cfg)
{
    /* cold_storage_type indexes its own list, not the storage types' */
    return cfg->cold_enable_compression ||
           !strcmp(xd_enum_name(XD_KEY_cold_storage_type, cfg->cold_storage_type), "compressed");
}

/* The hybrid type owns its files' layout like the compressed type: the cold
 * file is created or grown here (never shrunk), so fio never writes raw
 * bytes into it behind the extent map's back. */
int xd_tier_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                    uint64_t *logical, char *err, size_t errlen)
{
    char *cold = xd_tier_cold_path(cfg, path);
    struct xd_config *c = xd_tier_inner_config(cfg, TIER_C, true, err, errlen);
    int rc = cold && c ? 0 : -ENOMEM;
    err[0] = 0;
    if (!rc && tier_cold_compressed(cfg)) {
        rc = xd_compress_prepare(c, cold, size, logical, err, errlen);
    } else if (!rc) {
        if (cfg->auto_create_dirs)
            xd_mkdir_parents(cold, cfg->dir_permissions);
        /* the hybrid format (file plus map) is ours: never through a link */
        int fd = xd_open_data(cold, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)cfg->file_permissions,
                              false);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) ||
            ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size))) {
            rc = fd < 0 ? fd : -errno;
            xd_errf(err, errlen, "%s: cannot create the cold tier's file: %s", cold, xd_refusal(rc));
        } else {
            *logical = (uint64_t)st.st_size < size ? size : (uint64_t)st.st_size;
        }
        if (fd >= 0)
            close(fd);
    }
    xd_config_free(c);
    free(cold);
    return rc;
}

int xd_tier_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                         size_t errlen)
{
    char *cold = xd_tier_cold_path(cfg, path);
    if (!cold)
        return -ENOMEM;
    int rc = tier_cold_compressed(cfg) ? xd_compress_logical_size(cold, size, err, errlen)
                                       : xd_path_size(cold, size);
    free(cold);
    return rc;
}
