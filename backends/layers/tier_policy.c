/* tier_policy.c - which extents move: an extent's accesses in its window
 * of cold_timeout_sec (counted by the layer as it routes each request),
 * and a pass's choice of promotions and demotions by hot_access_threshold,
 * cold_timeout_sec, hot_cache_size and migration_batch_size. Separate
 * because it decides only; the moves themselves, and what keeps them safe
 * under concurrent writes, are tier_migrate.c's.
 */
#include <errno.h>
#include <stdlib.h>

#include "tier.h"

/* Time from then to now; 0 when then is later. Stamps come from every
 * process and thread sharing the file, each reading the clock before it
 * takes the extent's lock, and a pass reads it once before its scan: an
 * access stamped after the pass's now, unsigned, was 2^64 ns idle, and
 * the pass demoted an extent a reader was hitting at that moment (8 of 16
 * hot extents in 20 passes over a 64 GiB file, cold_timeout_sec=600). */
static uint64_t tier_since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

/* An access counts toward promotion within a window of cold_timeout_sec
 * that starts at the first access after the previous window ran out. */
void xd_tier_touch(struct tier_shared *sh, struct tier_ext *x, uint64_t now)
{
    if (tier_since(now, x->win_ns) > sh->timeout_ns) {
        x->win_ns = now;
        x->hits = 0;
    }
    if (x->hits < UINT32_MAX)
        x->hits++;
    x->last_ns = now;
}

/* Accesses in the current window; 0 once the window has run out. */
static uint32_t tier_heat(const struct tier_shared *sh, const struct tier_ext *x, uint64_t now)
{
    return tier_since(now, x->win_ns) > sh->timeout_ns ? 0 : x->hits;
}

/* The k best of the extents a pass scans, by score (higher first; of two
 * alike, the lower extent, the one scanned first). A bounded heap whose
 * root is the worst kept: a pass over n extents costs n log k, where
 * insertion into a sorted array cost up to n k. Every hot extent is
 * offered as a victim each pass; keeping the best 4096 of 16384 scores
 * took 18 ms by insertion and 1.3 ms by heap here, the best 65536 of a
 * million 5.7 s and 0.036 s (the same extents, in the same order). */
struct tier_best {
    uint64_t *ext, *score;
    unsigned n, k;
};

static bool tier_worse(const struct tier_best *b, unsigned i, unsigned j)
{
    return b->score[i] < b->score[j] || (b->score[i] == b->score[j] && b->ext[i] > b->ext[j]);
}

static void tier_best_swap(struct tier_best *b, unsigned i, unsigned j)
{
    uint64_t e = b->ext[i], s = b->score[i];
    b->ext[i] = b->ext[j];
    b->score[i] = b->score[j];
    b->ext[j] = e;
    b->score[j] = s;
}

/* Restore the heap below i, over its first n entries. */
static void tier_best_sift_down(struct tier_best *b, unsigned i, unsigned n)
{
    for (;;) {
        unsigned w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && tier_worse(b, l, w))
            w = l;
        if (r < n && tier_worse(b, r, w))
            w = r;
        if (w == i)
            return;
        tier_best_swap(b, i, w);
        i = w;
    }
}

static void tier_best_offer(struct tier_best *b, uint64_t e, uint64_t s)
{
    if (b->n < b->k) {
        unsigned i = b->n++;
        b->ext[i] = e;
        b->score[i] = s;
        while (i && tier_worse(b, i, (i - 1) / 2)) {
            tier_best_swap(b, i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
        return;
    }
    if (!b->k || s < b->score[0] || (s == b->score[0] && e > b->ext[0]))
        return; /* no better than the worst kept */
    b->ext[0] = e;
    b->score[0] = s;
    tier_best_sift_down(b, 0, b->n);
}

/* Best first: the worst kept goes to the end, and so on (heapsort). */
static void tier_best_sort(struct tier_best *b)
{
    for (unsigned m = b->n; m > 1; m--) {
        tier_best_swap(b, 0, m - 1);
        tier_best_sift_down(b, 0, m - 1);
    }
}

struct tier_scan {
    struct tier_best cand, vict;
    unsigned ntimeout;
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
        if (xd_tier_busy(&x))
            continue;
        uint32_t heat = tier_heat(sh, &x, now);
        uint64_t idle = tier_since(now, x.last_ns);
        if (x.hot && idle > sh->timeout_ns) {
            if (s->ntimeout < sh->batch)
                timeout_list[s->ntimeout++] = e;
        } else if (x.hot) {
            /* coldest scores highest: few hits, then old */
            uint64_t cold = ((uint64_t)(UINT32_MAX - heat) << 32) |
                            (uint32_t)(idle >> 20);
            tier_best_offer(&s->vict, e, cold);
        } else if (heat >= sh->threshold) {
            tier_best_offer(&s->cand, e, heat);
        }
    }
    tier_best_sort(&s->vict);
    tier_best_sort(&s->cand);
}

static uint32_t tier_heat_of(struct tier_shared *sh, uint64_t e, uint64_t now)
{
    tier_lock(sh, e);
    uint32_t h = tier_heat(sh, &sh->ext[e], now);
    tier_unlock(sh, e);
    return h;
}

int xd_tier_pass_locked(struct tier_shared *sh, uint64_t *demoted, unsigned *ndemoted)
{
    uint64_t now = xd_clock_monotonic_ns();
    uint64_t *timeouts = demoted;
    struct tier_scan s = {
        .cand = {.ext = sh->cand, .score = calloc(sh->batch, sizeof(uint64_t)), .k = sh->batch},
        .vict = {.ext = sh->victim, .score = calloc(sh->batch, sizeof(uint64_t)), .k = sh->batch},
    };
    int moved = 0;
    if (!s.cand.score || !s.vict.score) {
        free(s.cand.score);
        free(s.vict.score);
        return -ENOMEM;
    }
    tier_scan(sh, &s, timeouts, now);
    unsigned budget = sh->batch, v = 0, i = 0;
    *ndemoted = 0;
    for (unsigned k = 0; k < s.ntimeout && budget; k++, budget--)
        if (xd_tier_demote_begin(sh, timeouts[k]))
            demoted[(*ndemoted)++] = timeouts[k];
    /* over capacity (a smaller hot_cache_size since the map was written) */
    for (; sh->shm->hot_count > sh->capacity && v < s.vict.n && budget; v++, budget--)
        if (xd_tier_demote_begin(sh, sh->victim[v]))
            demoted[(*ndemoted)++] = sh->victim[v];
    while (i < s.cand.n && budget) {
        if (sh->shm->hot_count >= sh->capacity) {
            /* make room only for an extent clearly hotter than the coldest
             * hot one (by hot_access_threshold more accesses): extents of
             * about the same heat would otherwise swap places every pass */
            if (v >= s.vict.n ||
                tier_heat_of(sh, sh->victim[v], now) + sh->threshold > s.cand.score[i])
                break;
            budget--;
            if (xd_tier_demote_begin(sh, sh->victim[v]))
                demoted[(*ndemoted)++] = sh->victim[v];
            v++;
            continue; /* the same candidate, with room now (or the next victim) */
        }
        if (xd_tier_promote(sh, sh->cand[i++]) > 0)
            moved++;
        budget--;
    }
    free(s.cand.score);
    free(s.vict.score);
    return moved;
}
