/* cachesim.c - replay a block access trace through a policy or Belady's MIN. */
#include "cachesim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cachepolicy.h"
#include "hash.h"

struct sim_slots {
    uint32_t *slot_of; /* by id; XD_CP_NONE when not resident */
    uint32_t *id_of;   /* by slot; XD_CP_NONE when free */
    uint32_t *free;    /* slots freed by trims */
    uint32_t nfree, used;
};

static bool sim_any(void *ctx, uint32_t slot)
{
    return true;
}

static uint64_t sim_slot_hash(void *ctx, uint32_t slot)
{
    return xd_hash_mix(((struct sim_slots *)ctx)->id_of[slot], 0);
}

/* A slot for id: a freed or never-used one while there are any, else the
 * victim's. */
static void sim_fill(struct xd_cp *p, struct sim_slots *s, uint32_t id, uint32_t capacity)
{
    uint32_t slot;
    if (s->nfree)
        slot = s->free[--s->nfree];
    else if (s->used < capacity)
        slot = s->used++;
    else if ((slot = xd_cp_evict(p)) != XD_CP_NONE)
        s->slot_of[s->id_of[slot]] = XD_CP_NONE;
    else
        return;
    s->id_of[slot] = id;
    s->slot_of[id] = slot;
    xd_cp_insert(p, slot, xd_hash_mix(id, 0));
}

static void sim_trim(struct xd_cp *p, struct sim_slots *s, uint32_t id)
{
    uint32_t slot = s->slot_of[id];
    if (slot == XD_CP_NONE)
        return;
    xd_cp_remove(p, slot);
    s->slot_of[id] = XD_CP_NONE;
    s->id_of[slot] = XD_CP_NONE;
    s->free[s->nfree++] = slot;
}

int xd_sim_policy(const struct xd_sim_trace *t, int kind, uint32_t capacity,
                  struct xd_sim_result *out)
{
    struct xd_cp p;
    struct sim_slots s = {0};
    struct xd_cp_owner owner = {.evictable = sim_any, .hash = sim_slot_hash, .ctx = &s};
    int rc = xd_cp_init(&p, kind, capacity, NULL, 0, &owner);
    if (rc)
        return rc;
    s.slot_of = malloc((t->nids ? t->nids : 1) * sizeof(*s.slot_of));
    s.id_of = malloc(capacity * sizeof(*s.id_of));
    s.free = malloc(capacity * sizeof(*s.free));
    if (!s.slot_of || !s.id_of || !s.free) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < t->nids; i++)
        s.slot_of[i] = XD_CP_NONE;
    *out = (struct xd_sim_result){0};
    for (size_t i = 0; i < t->n; i++) {
        uint32_t id = t->ids[i];
        if (t->ops[i] == XD_TRACE_TRIM) {
            sim_trim(&p, &s, id);
            continue;
        }
        if (t->ops[i] == XD_TRACE_READ)
            out->reads++;
        if (s.slot_of[id] != XD_CP_NONE) {
            out->hits += t->ops[i] == XD_TRACE_READ;
            xd_cp_access(&p, s.slot_of[id]);
        } else {
            sim_fill(&p, &s, id, capacity);
        }
    }
out:
    free(s.slot_of);
    free(s.id_of);
    free(s.free);
    xd_cp_destroy(&p);
    return rc;
}

int xd_sim_policy_sharded(const struct xd_sim_trace *t, int kind, uint32_t capacity,
                          uint32_t nshards, struct xd_sim_result *out)
{
    if (nshards <= 1)
        return xd_sim_policy(t, kind, capacity, out);
    if (capacity / nshards == 0)
        return -EINVAL;
    uint32_t *ids = malloc((t->n ? t->n : 1) * sizeof(*ids));
    uint8_t *ops = malloc(t->n ? t->n : 1);
    int rc = ids && ops ? 0 : -ENOMEM;
    *out = (struct xd_sim_result){0};
    for (uint32_t shard = 0; !rc && shard < nshards; shard++) {
        struct xd_sim_trace sub = {.ids = ids, .ops = ops, .nids = t->nids};
        size_t n = 0;
        for (size_t i = 0; i < t->n; i++)
            if (xd_hash_mix(t->ids[i], 1) % nshards == shard) {
                ids[n] = t->ids[i];
                ops[n++] = t->ops[i];
            }
        sub.n = n;
        struct xd_sim_result part;
        rc = xd_sim_policy(&sub, kind, capacity / nshards, &part);
        out->reads += part.reads;
        out->hits += part.hits;
    }
    free(ids);
    free(ops);
    return rc;
}

/* --- MIN -------------------------------------------------------------------- */

/* A max-heap of (next use << 32 | id); entries whose next use is no longer
 * the block's are skipped when they surface (lazy deletion). */
struct sim_heap {
    uint64_t *v;
    size_t n, cap;
};

static int heap_push(struct sim_heap *h, uint64_t x)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        uint64_t *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i && h->v[(i - 1) / 2] < x) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
    return 0;
}

static uint64_t heap_pop(struct sim_heap *h)
{
    uint64_t top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1] > h->v[c])
            c++;
        if (h->v[c] <= last)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* --- perfect LFU ------------------------------------------------------------- */

/* A heap entry: (count << 32 | when) of a block's latest access, the
 * access's index naming the block (t->ids[when]); complemented so the
 * max-heap surfaces the least counted, then the least recent. An entry is
 * stale once its block has been accessed again or evicted. */
struct lfu_state {
    const struct xd_sim_trace *t;
    uint32_t *count, *last; /* by id: accesses so far, index of the latest */
    bool *resident;
    struct sim_heap heap;
};

static int lfu_note(struct lfu_state *s, uint32_t id, uint32_t when)
{
    s->count[id]++;
    s->last[id] = when;
    return heap_push(&s->heap, ~((uint64_t)s->count[id] << 32 | when));
}

static bool lfu_current(const struct lfu_state *s, uint64_t entry)
{
    uint32_t when = (uint32_t)~entry, id = s->t->ids[when];
    return s->resident[id] && s->last[id] == when;
}

/* Hits push entries without popping any: past 4 per resident, drop the
 * stale ones and rebuild, so the heap stays within a few times the cache. */
static void lfu_compact(struct lfu_state *s, uint32_t capacity)
{
    struct sim_heap *h = &s->heap;
    if (h->n < 4 * (size_t)capacity + 1024)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < h->n; i++)
        if (lfu_current(s, h->v[i]))
            h->v[kept++] = h->v[i];
    h->n = 0;
    for (size_t i = 0; i < kept; i++) /* in place: cannot grow, cannot fail */
        (void)heap_push(h, h->v[i]);
}

static void lfu_evict(struct lfu_state *s)
{
    for (;;) {
        uint64_t top = heap_pop(&s->heap);
        if (lfu_current(s, top)) {
            s->resident[s->t->ids[(uint32_t)~top]] = false;
            return;
        }
    }
}

int xd_sim_lfu(const struct xd_sim_trace *t, uint32_t capacity, struct xd_sim_result *out)
{
    if (t->n >= UINT32_MAX)
        return -E2BIG;
    size_t nids = t->nids ? t->nids : 1;
    struct lfu_state s = {.t = t,
                          .count = calloc(nids, sizeof(*s.count)),
                          .last = calloc(nids, sizeof(*s.last)),
                          .resident = calloc(nids, sizeof(*s.resident))};
    uint32_t resident = 0;
    int rc = s.count && s.last && s.resident ? 0 : -ENOMEM;
    *out = (struct xd_sim_result){0};
    for (size_t i = 0; i < t->n && !rc; i++) {
        uint32_t id = t->ids[i];
        if (t->ops[i] == XD_TRACE_TRIM) {
            resident -= s.resident[id];
            s.resident[id] = false;
            continue;
        }
        if (t->ops[i] == XD_TRACE_READ) {
            out->reads++;
            out->hits += s.resident[id];
        }
        if (!s.resident[id]) {
            if (resident == capacity)
                lfu_evict(&s);
            else
                resident++;
            s.resident[id] = true;
        }
        rc = lfu_note(&s, id, (uint32_t)i);
        lfu_compact(&s, capacity);
    }
    free(s.count);
    free(s.last);
    free(s.resident);
    free(s.heap.v);
    return rc;
}

/* --- A0 ---------------------------------------------------------------------- */

struct a0_key {
    double prob;
    uint32_t id;
};

static int a0_more_probable_first(const void *a, const void *b)
{
    const struct a0_key *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* rank[id]: 0 for the most probable id, nids - 1 for the least; NULL on -ENOMEM. */
static uint32_t *a0_ranks(const double *prob, uint32_t nids)
{
    struct a0_key *keys = malloc((nids ? nids : 1) * sizeof(*keys));
    uint32_t *rank = malloc((nids ? nids : 1) * sizeof(*rank));
    if (keys && rank) {
        for (uint32_t id = 0; id < nids; id++)
            keys[id] = (struct a0_key){prob[id], id};
        qsort(keys, nids, sizeof(*keys), a0_more_probable_first);
        for (uint32_t r = 0; r < nids; r++)
            rank[keys[r].id] = r;
    } else {
        free(rank);
        rank = NULL;
    }
    free(keys);
    return rank;
}

/* The least probable resident (top of the max-heap of rank << 32 | id;
 * entries of blocks trimmed since are dropped as they surface). */
static uint32_t a0_least(struct sim_heap *h, const bool *resident)
{
    while (!resident[(uint32_t)h->v[0]])
        (void)heap_pop(h);
    return (uint32_t)h->v[0];
}

int xd_sim_a0(const struct xd_sim_trace *t, const double *prob, uint32_t capacity,
              struct xd_sim_result *out)
{
    if (t->nids >= UINT32_MAX)
        return -E2BIG;
    uint32_t *rank = a0_ranks(prob, t->nids);
    bool *resident = calloc(t->nids ? t->nids : 1, sizeof(*resident));
    struct sim_heap h = {0};
    uint32_t n_resident = 0;
    int rc = rank && resident ? 0 : -ENOMEM;
    *out = (struct xd_sim_result){0};
    for (size_t i = 0; i < t->n && !rc; i++) {
        uint32_t id = t->ids[i];
        if (t->ops[i] == XD_TRACE_TRIM) {
            n_resident -= resident[id];
            resident[id] = false;
            continue;
        }
        if (t->ops[i] == XD_TRACE_READ) {
            out->reads++;
            out->hits += resident[id];
        }
        if (resident[id] || !capacity)
            continue;
        if (n_resident == capacity) {
            uint32_t least = a0_least(&h, resident);
            if (rank[least] < rank[id])
                continue; /* less probable than every resident: not kept */
            (void)heap_pop(&h);
            resident[least] = false;
            n_resident--;
        }
        resident[id] = true;
        n_resident++;
        rc = heap_push(&h, (uint64_t)rank[id] << 32 | id);
    }
    free(rank);
    free(resident);
    free(h.v);
    return rc;
}

/* next[i]: when ids[i] is accessed next (a trim ends its use), or a value
 * past the trace unique to the id when never. */
static uint32_t *sim_next_use(const struct xd_sim_trace *t)
{
    uint32_t *next = malloc((t->n ? t->n : 1) * sizeof(*next));
    uint32_t *last = malloc((t->nids ? t->nids : 1) * sizeof(*last));
    if (!next || !last) {
        free(next);
        free(last);
        return NULL;
    }
    uint32_t never = (uint32_t)t->n;
    for (uint32_t id = 0; id < t->nids; id++)
        last[id] = never + id;
    for (size_t i = t->n; i-- > 0;) {
        uint32_t id = t->ids[i];
        next[i] = last[id];
        last[id] = t->ops[i] == XD_TRACE_TRIM ? never + id : (uint32_t)i;
    }
    free(last);
    return next;
}

int xd_sim_min(const struct xd_sim_trace *t, uint32_t capacity, struct xd_sim_result *out)
{
    if (t->n + t->nids >= UINT32_MAX)
        return -E2BIG;
    uint32_t *next = sim_next_use(t);
    uint32_t *due = malloc((t->nids ? t->nids : 1) * sizeof(*due)); /* next use of a resident; 0: not resident */
    struct sim_heap h = {0};
    uint32_t resident = 0;
    int rc = 0;
    if (!next || !due) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t id = 0; id < t->nids; id++)
        due[id] = 0;
    *out = (struct xd_sim_result){0};
    for (size_t i = 0; i < t->n && !rc; i++) {
        uint32_t id = t->ids[i];
        if (t->ops[i] == XD_TRACE_TRIM) {
            if (due[id]) {
                due[id] = 0;
                resident--;
            }
            continue;
        }
        if (t->ops[i] == XD_TRACE_READ)
            out->reads++;
        if (due[id]) {
            out->hits += t->ops[i] == XD_TRACE_READ;
        } else if (resident == capacity) {
            for (;;) { /* the furthest next use among residents */
                uint64_t top = heap_pop(&h);
                uint32_t vid = (uint32_t)top, when = (uint32_t)(top >> 32);
                if (due[vid] == when + 1) {
                    due[vid] = 0;
                    break;
                }
            }
        } else {
            resident++;
        }
        due[id] = next[i] + 1;
        rc = heap_push(&h, (uint64_t)next[i] << 32 | id);
    }
out:
    free(next);
    free(due);
    free(h.v);
    return rc;
}
