/* cachepolicy.c - S3-FIFO and LRU over numbered entries (see cachepolicy.h). */
#include "cachepolicy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { CP_Q_NONE, CP_Q_SMALL, CP_Q_MAIN };

#define CP_FREQ_MAX 3
#define CP_GHOST_WAYS 8
#define CP_VICTIM_SAMPLE 8
/* While main has room, a block leaving small unhit still goes there if the
 * sketch has seen it this often: else a block read every few thousand reads
 * next to a scan (which fills small with blocks read once) never reaches
 * main, and main stays part empty while small holds the scan. */
#define CP_SEEN_TO_FILL 3

static inline struct xd_cp_node *node(const struct xd_cp *p, uint32_t id)
{
    return (struct xd_cp_node *)(p->nodes + (size_t)id * p->stride);
}

/* The hit counter is the one field a hit writes without the caller's lock
 * (xd_cp_hit), so every access to it is atomic; relaxed, since it is a
 * hint: a bump lost to a racing decrement only costs a block one turn. */
static inline uint8_t freq_of(const struct xd_cp_node *n)
{
    return __atomic_load_n(&n->freq, __ATOMIC_RELAXED);
}

static inline void freq_set(struct xd_cp_node *n, uint8_t f)
{
    __atomic_store_n(&n->freq, f, __ATOMIC_RELAXED);
}

/* --- lists ------------------------------------------------------------------ */

static void list_init(struct xd_cp_list *l)
{
    l->head = l->tail = XD_CP_NONE;
    l->size = 0;
}

static void list_push_head(struct xd_cp *p, struct xd_cp_list *l, uint32_t id)
{
    struct xd_cp_node *n = node(p, id);
    n->prev = XD_CP_NONE;
    n->next = l->head;
    if (l->head != XD_CP_NONE)
        node(p, l->head)->prev = id;
    else
        l->tail = id;
    l->head = id;
    l->size++;
}

static void list_unlink(struct xd_cp *p, struct xd_cp_list *l, uint32_t id)
{
    struct xd_cp_node *n = node(p, id);
    if (n->prev != XD_CP_NONE)
        node(p, n->prev)->next = n->next;
    else
        l->head = n->next;
    if (n->next != XD_CP_NONE)
        node(p, n->next)->prev = n->prev;
    else
        l->tail = n->prev;
    l->size--;
}

static struct xd_cp_list *list_of(struct xd_cp *p, uint32_t id)
{
    switch (node(p, id)->queue) {
    case CP_Q_SMALL: return &p->small;
    case CP_Q_MAIN: return &p->main;
    default: return NULL;
    }
}

static void move_to(struct xd_cp *p, uint32_t id, int queue)
{
    struct xd_cp_list *from = list_of(p, id);
    if (from)
        list_unlink(p, from, id);
    node(p, id)->queue = (uint8_t)queue;
    list_push_head(p, queue == CP_Q_SMALL ? &p->small : &p->main, id);
}

/* --- ghost ------------------------------------------------------------------ */

static struct xd_cp_ghost_slot *ghost_bucket(const struct xd_cp *p, uint64_t hash)
{
    uint64_t b = ((hash >> 32) * (uint64_t)p->ghost_buckets) >> 32;
    return &p->ghost[b * CP_GHOST_WAYS];
}

static uint32_t ghost_fp(uint64_t hash)
{
    uint32_t fp = (uint32_t)hash;
    return fp ? fp : 1;
}

static bool ghost_live(const struct xd_cp *p, const struct xd_cp_ghost_slot *s)
{
    return s->seq && p->ghost_seq - s->seq < p->ghost_cap;
}

/* Remember hash as the newest ghost; the oldest slot of its bucket goes
 * when the bucket is full (so the ghost is FIFO up to bucket collisions). */
static void ghost_add(struct xd_cp *p, uint64_t hash)
{
    struct xd_cp_ghost_slot *b = ghost_bucket(p, hash), *victim = &b[0];
    uint32_t fp = ghost_fp(hash);
    if (!p->ghost_cap)
        return;
    if (++p->ghost_seq == 0)
        p->ghost_seq = 1;
    for (int i = 0; i < CP_GHOST_WAYS; i++) {
        if (b[i].fp == fp || !ghost_live(p, &b[i])) {
            victim = &b[i];
            break;
        }
        if (p->ghost_seq - b[i].seq > p->ghost_seq - victim->seq)
            victim = &b[i];
    }
    victim->fp = fp;
    victim->seq = p->ghost_seq;
}

/* Is hash in the ghost? It leaves the ghost if so. */
static bool ghost_take(struct xd_cp *p, uint64_t hash)
{
    if (!p->ghost_cap)
        return false;
    struct xd_cp_ghost_slot *b = ghost_bucket(p, hash);
    uint32_t fp = ghost_fp(hash);
    for (int i = 0; i < CP_GHOST_WAYS; i++) {
        if (b[i].fp == fp && ghost_live(p, &b[i])) {
            b[i].seq = 0;
            return true;
        }
    }
    return false;
}

/* --- the policy ------------------------------------------------------------- */

/* S3-FIFO's shares of a capacity: the small FIFO's target and a ghost of
 * as many keys as main holds, in a new (empty) ghost table. */
static int cp_size_s3fifo(struct xd_cp *p, uint32_t capacity)
{
    uint32_t small = capacity / 100 ? capacity / 100 : 1;
    uint32_t ghost_cap = capacity > small ? capacity - small : 0;
    /* two slots per ghost entry keep bucket overflow (an early loss) rare */
    uint32_t buckets = (2 * ghost_cap + CP_GHOST_WAYS - 1) / CP_GHOST_WAYS;
    struct xd_cp_ghost_slot *ghost = NULL;
    if (buckets && !(ghost = calloc((size_t)buckets * CP_GHOST_WAYS, sizeof(*ghost))))
        return -ENOMEM;
    if (xd_fs_init(&p->sketch, capacity)) {
        free(ghost);
        return -ENOMEM;
    }
    free(p->ghost);
    p->ghost = ghost;
    p->ghost_buckets = buckets;
    p->ghost_cap = buckets ? ghost_cap : 0;
    p->ghost_seq = 0;
    p->small_target = small;
    return 0;
}

int xd_cp_init(struct xd_cp *p, int kind, uint32_t capacity, void *nodes, size_t stride,
               const struct xd_cp_owner *owner)
{
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->capacity = capacity ? capacity : 1;
    p->owner = *owner;
    list_init(&p->small);
    list_init(&p->main);
    p->nodes = nodes;
    p->stride = nodes ? stride : sizeof(struct xd_cp_node);
    if (!nodes) {
        p->own_nodes = true;
        if (!(p->nodes = calloc(p->capacity, sizeof(struct xd_cp_node))))
            return -ENOMEM;
    }
    if (kind != XD_CP_S3FIFO)
        return 0;
    int rc = cp_size_s3fifo(p, p->capacity);
    if (rc)
        xd_cp_destroy(p);
    return rc;
}

int xd_cp_set_capacity(struct xd_cp *p, uint32_t capacity)
{
    if (!capacity || (p->own_nodes && capacity > p->capacity))
        return -EINVAL;
    if (p->kind == XD_CP_S3FIFO) {
        int rc = cp_size_s3fifo(p, capacity);
        if (rc)
            return rc;
    }
    p->capacity = capacity;
    return 0;
}

void xd_cp_destroy(struct xd_cp *p)
{
    if (p->own_nodes)
        free(p->nodes);
    free(p->ghost);
    xd_fs_destroy(&p->sketch);
    p->nodes = NULL;
    p->ghost = NULL;
}

void xd_cp_insert(struct xd_cp *p, uint32_t id, uint64_t hash)
{
    struct xd_cp_node *n = node(p, id);
    freq_set(n, 0);
    n->queue = CP_Q_NONE;
    if (p->kind != XD_CP_S3FIFO) {
        move_to(p, id, CP_Q_MAIN);
        return;
    }
    xd_fs_add(&p->sketch, hash);
    /* a key back from the ghost counts as hit in small: it leaves small
     * for main, if it passes the admission test there */
    if (ghost_take(p, hash)) {
        p->count.ghost_hits++;
        freq_set(n, 1);
    }
    move_to(p, id, CP_Q_SMALL);
}

void xd_cp_hit(struct xd_cp *p, uint32_t id)
{
    struct xd_cp_node *n = node(p, id);
    uint8_t f = freq_of(n);
    if (p->kind == XD_CP_S3FIFO && f < CP_FREQ_MAX)
        freq_set(n, f + 1);
}

void xd_cp_seen(struct xd_cp *p, uint64_t hash)
{
    if (p->kind == XD_CP_S3FIFO)
        xd_fs_add(&p->sketch, hash);
}

/* The sketch was 5-7% of the CPU samples of fully cached 4k reads with one
 * job and 8-9% with two (both bumping one shard's counters), 2.2-2.5%
 * with the lines prefetched (perf, cpu-clock, two runs each). */
void xd_cp_seen_batch(struct xd_cp *p, const uint64_t *hash, unsigned n)
{
    if (p->kind != XD_CP_S3FIFO)
        return;
    for (unsigned i = 0; i < n; i++)
        xd_fs_prefetch(&p->sketch, hash[i]);
    for (unsigned i = 0; i < n; i++)
        xd_fs_add(&p->sketch, hash[i]);
}

void xd_cp_access(struct xd_cp *p, uint32_t id)
{
    if (p->kind == XD_CP_LRU) {
        if (p->main.head != id)
            move_to(p, id, CP_Q_MAIN);
        return;
    }
    xd_cp_seen(p, p->owner.hash(p->owner.ctx, id));
    xd_cp_hit(p, id);
}

void xd_cp_remove(struct xd_cp *p, uint32_t id)
{
    struct xd_cp_list *l = list_of(p, id);
    if (l)
        list_unlink(p, l, id);
    node(p, id)->queue = CP_Q_NONE;
}

static uint32_t cp_take(struct xd_cp *p, struct xd_cp_list *l, uint32_t id)
{
    list_unlink(p, l, id);
    node(p, id)->queue = CP_Q_NONE;
    return id;
}

/* Main's next victim, after giving its hit entries their turns (as its own
 * eviction would): of the first CP_VICTIM_SAMPLE entries from the tail with
 * no hits left that may go, the one the sketch has seen least (a sampled
 * LFU choice: the tail of a FIFO is where it is by age, not by worth).
 * XD_CP_NONE when main has none within a bounded walk. */
static uint32_t s3fifo_main_victim(struct xd_cp *p)
{
    uint32_t best = XD_CP_NONE, best_freq = UINT32_MAX, found = 0;
    uint32_t t = p->main.tail;
    for (uint64_t steps = 4ull * (p->main.size + 1); steps-- && t != XD_CP_NONE;) {
        struct xd_cp_node *n = node(p, t);
        uint32_t up = n->prev;
        if (freq_of(n) == 0 && p->owner.evictable(p->owner.ctx, t)) {
            uint32_t f = xd_fs_estimate(&p->sketch, p->owner.hash(p->owner.ctx, t));
            if (f < best_freq)
                best = t, best_freq = f;
            if (++found == CP_VICTIM_SAMPLE)
                break;
        } else {
            if (freq_of(n) > 0)
                freq_set(n, freq_of(n) - 1);
            p->count.reinsertions++;
            move_to(p, t, CP_Q_MAIN);
            if (up == XD_CP_NONE) /* it was the only one left to look at */
                break;
        }
        t = up;
    }
    return best;
}

static uint32_t s3fifo_evict_small_tail(struct xd_cp *p, uint32_t t)
{
    ghost_add(p, p->owner.hash(p->owner.ctx, t));
    return cp_take(p, &p->small, t);
}

/* One step at the small FIFO's tail: promote, pass over, or evict. An entry
 * not hit while in small leaves into the ghost, unless main has room and the
 * sketch has seen it CP_SEEN_TO_FILL times. One hit while in small (or back
 * from the ghost) goes to main while main has room; once main is full it
 * goes only if the sketch has seen it more often than main's next victim,
 * which then leaves in its place (TinyLFU's admission test: a block read
 * twice by a scan does not push out one read every few thousand reads). */
static uint32_t s3fifo_small_step(struct xd_cp *p)
{
    uint32_t t = p->small.tail;
    struct xd_cp_node *n = node(p, t);
    if (!p->owner.evictable(p->owner.ctx, t)) { /* dirty: main keeps it */
        freq_set(n, 0);
        move_to(p, t, CP_Q_MAIN);
        return XD_CP_NONE;
    }
    bool main_full = p->main.size + p->small_target >= p->capacity;
    uint32_t seen = xd_fs_estimate(&p->sketch, p->owner.hash(p->owner.ctx, t));
    if (freq_of(n) == 0 && (main_full || seen < CP_SEEN_TO_FILL))
        return s3fifo_evict_small_tail(p, t);
    uint32_t v = XD_CP_NONE;
    if (main_full)
        v = s3fifo_main_victim(p);
    if (v != XD_CP_NONE && seen <= xd_fs_estimate(&p->sketch, p->owner.hash(p->owner.ctx, v))) {
        p->count.refused++;
        return s3fifo_evict_small_tail(p, t);
    }
    p->count.promotions++;
    freq_set(n, 0);
    move_to(p, t, CP_Q_MAIN);
    return v == XD_CP_NONE ? XD_CP_NONE : cp_take(p, &p->main, v);
}

static uint32_t s3fifo_main_step(struct xd_cp *p)
{
    uint32_t t = p->main.tail;
    struct xd_cp_node *n = node(p, t);
    uint8_t f = freq_of(n);
    if (f > 0 || !p->owner.evictable(p->owner.ctx, t)) {
        if (f > 0)
            freq_set(n, f - 1);
        p->count.reinsertions++;
        move_to(p, t, CP_Q_MAIN);
        return XD_CP_NONE;
    }
    return cp_take(p, &p->main, t);
}

/* Each step either evicts or moves an entry; an entry's counter falls to 0
 * within 3 turns of main, so 5 passes over all residents find a victim if
 * any entry is evictable. */
static uint32_t s3fifo_evict(struct xd_cp *p)
{
    uint64_t steps = 5ull * (xd_cp_size(p) + 1);
    while (steps-- && xd_cp_size(p)) {
        uint32_t v;
        if (p->small.size && (p->small.size >= p->small_target || !p->main.size))
            v = s3fifo_small_step(p);
        else
            v = s3fifo_main_step(p);
        if (v != XD_CP_NONE)
            return v;
    }
    return XD_CP_NONE;
}

static uint32_t lru_evict(struct xd_cp *p)
{
    for (uint32_t n = p->main.size; n; n--) {
        uint32_t t = p->main.tail;
        if (p->owner.evictable(p->owner.ctx, t))
            return cp_take(p, &p->main, t);
        move_to(p, t, CP_Q_MAIN);
    }
    return XD_CP_NONE;
}

uint32_t xd_cp_evict(struct xd_cp *p)
{
    return p->kind == XD_CP_LRU ? lru_evict(p) : s3fifo_evict(p);
}
