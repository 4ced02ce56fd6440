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

/* An access counts toward promotion within a window of cold_timeout_sec
 * that starts at the first access after the previous window ran out. */
void xd_tier_touch(struct tier_shared *sh, struct tier_ext *x, uint64_t now)
{
    if (now - x->win_ns > sh->timeout_ns) {
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
        if (xd_tier_busy(&x))
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

int xd_tier_pass_locked(struct tier_shared *sh, uint64_t *demoted, unsigned *ndemoted)
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
        if (xd_tier_demote_begin(sh, timeouts[k]))
            demoted[(*ndemoted)++] = timeouts[k];
    /* over capacity (a smaller hot_cache_size since the map was written) */
    for (; sh->shm->hot_count > sh->capacity && v < s.nvict && budget; v++, budget--)
        if (xd_tier_demote_begin(sh, sh->victim[v]))
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
            if (xd_tier_demote_begin(sh, sh->victim[v]))
                demoted[(*ndemoted)++] = sh->victim[v];
            v++;
            continue; /* the same candidate, with room now (or the next victim) */
        }
        if (xd_tier_promote(sh, sh->cand[i++]) > 0)
            moved++;
        budget--;
    }
    free(s.cand_score);
    free(s.vict_score);
    return moved;
}
