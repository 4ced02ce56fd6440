/* reqorder.h - when one request must not start before another finishes.
 *
 * The ordering rule of the data path (docs/DESIGN.md, "Ordering
 * invariant"): a request never starts while an earlier one that overlaps it
 * is staged, queued or running, where overlapping means the same bytes of
 * the same file and at least one of the two changes them (a write or a
 * trim). Two reads never conflict; syncs are ordered by the queue (io_uring
 * drains them) and cover what completed before them, as in fio's engines.
 */
#ifndef XD_REQORDER_H
#define XD_REQORDER_H

#include <stdbool.h>

#include "../xdevice.h"

static inline bool xd_req_changes_data(const struct xd_req *r)
{
    return r->op == XD_OP_WRITE || r->op == XD_OP_TRIM;
}

/* a and b touch the same bytes and at least one changes them; the caller
 * has checked that they are on the same file (or descriptor). */
static inline bool xd_req_ranges_conflict(const struct xd_req *a, const struct xd_req *b)
{
    if (a->op > XD_OP_TRIM || b->op > XD_OP_TRIM)
        return false;
    if (!xd_req_changes_data(a) && !xd_req_changes_data(b))
        return false;
    return a->off < b->off + b->len && b->off < a->off + a->len;
}

static inline bool xd_req_conflict(const struct xd_req *a, const struct xd_req *b)
{
    return a->file == b->file && xd_req_ranges_conflict(a, b);
}

#endif
