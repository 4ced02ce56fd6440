/* fault_held.c - the volatile write cache of fault_drop_writes: a chosen
 * write is acknowledged and kept here instead of going below; reads of the
 * device see it, a flush of its file stores it, and a close or a crash
 * before that loses it (LevelDB's fault env drops a file's unsynced data in
 * the same way). See fault.c for when each is called. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault_held.h"

/* The intersection of [a, a+alen) and [b, b+blen): its start and length. */
static bool held_cross(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen, uint64_t *at,
                       uint64_t *len)
{
    uint64_t lo = a > b ? a : b, hi = a + alen < b + blen ? a + alen : b + blen;
    if (lo >= hi)
        return false;
    *at = lo;
    *len = hi - lo;
    return true;
}

int fault_held_add(struct fault_held *h, uint64_t off, const void *buf, uint64_t len)
{
    struct fault_held_write *w = malloc(sizeof(*w));
    if (!w || posix_memalign((void **)&w->data, 4096, len ? len : 1)) {
        free(w);
        return -ENOMEM;
    }
    fault_held_patch(h, off, buf, len); /* older held bytes it covers are stale now */
    w->next = NULL;
    w->off = off;
    w->len = len;
    memcpy(w->data, buf, len);
    if (h->tail)
        h->tail->next = w;
    else
        h->head = w;
    h->tail = w;
    h->bytes += len;
    h->count++;
    return 0;
}

bool fault_held_overlaps(const struct fault_held *h, uint64_t off, uint64_t len)
{
    uint64_t at, n;
    for (const struct fault_held_write *w = h->head; w; w = w->next)
        if (held_cross(w->off, w->len, off, len, &at, &n))
            return true;
    return false;
}

void fault_held_patch(struct fault_held *h, uint64_t off, const void *buf, uint64_t len)
{
    uint64_t at, n;
    for (struct fault_held_write *w = h->head; w; w = w->next) {
        if (!held_cross(w->off, w->len, off, len, &at, &n))
            continue;
        if (buf)
            memcpy(w->data + (at - w->off), (const unsigned char *)buf + (at - off), n);
        else
            memset(w->data + (at - w->off), 0, n);
    }
}

void fault_held_overlay(const struct fault_held *h, uint64_t off, void *buf, uint64_t len)
{
    uint64_t at, n;
    for (const struct fault_held_write *w = h->head; w; w = w->next)
        if (held_cross(w->off, w->len, off, len, &at, &n))
            memcpy((unsigned char *)buf + (at - off), w->data + (at - w->off), n);
}

struct fault_held_write *fault_held_pop(struct fault_held *h)
{
    struct fault_held_write *w = h->head;
    if (!w)
        return NULL;
    if (!(h->head = w->next))
        h->tail = NULL;
    h->bytes -= w->len;
    h->count--;
    return w;
}

void fault_held_free(struct fault_held_write *w)
{
    if (w)
        free(w->data);
    free(w);
}

uint64_t fault_held_clear(struct fault_held *h)
{
    uint64_t lost = h->count;
    for (struct fault_held_write *w; (w = fault_held_pop(h));)
        fault_held_free(w);
    return lost;
}
