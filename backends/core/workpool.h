/* workpool.h - a few threads that run CPU-heavy requests (the compressed
 * type's codecs) so that requests really overlap at iodepth > 1: submit
 * queues, the threads complete, reap collects. Nothing completes inside
 * submit while the caller is told it was queued.
 *
 * One pool belongs to one device; submit and reap come from the device's
 * thread, the work function runs on the pool's threads.
 */
#ifndef XD_WORKPOOL_H
#define XD_WORKPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct xd_req;
struct xd_workpool;

struct xd_workpool_ops {
    void *owner;
    /* Per-thread scratch state (codec contexts, buffers). */
    void *(*thread_init)(void *owner);
    void (*thread_fini)(void *owner, void *state);
    /* Run req to completion, setting req->result. */
    void (*run)(void *owner, void *state, struct xd_req *req);
    /* True when later must not start before earlier (submitted first) has
     * finished; NULL: requests run in any order. */
    bool (*conflict)(const struct xd_req *earlier, const struct xd_req *later);
};

/* capacity: the most requests queued, running and done-but-unreaped. */
int xd_workpool_create(struct xd_workpool **out, unsigned threads, unsigned capacity,
                       const struct xd_workpool_ops *ops, char *err, size_t errlen);
/* Waits for the requests already running, then stops the threads. */
void xd_workpool_destroy(struct xd_workpool *pool);
/* XD_QUEUED, or -EBUSY when capacity requests are outstanding. */
int xd_workpool_submit(struct xd_workpool *pool, struct xd_req *req);
/* At least min (if they are outstanding) and at most max completions, or
 * fewer when the relative timeout (NULL: none) expires. Rather than sleep
 * while requests wait for a thread, the caller runs them itself with
 * caller_state (its own scratch): no wake-up latency, and the caller's core
 * does work instead of idling. */
int xd_workpool_reap(struct xd_workpool *pool, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout, void *caller_state);
unsigned xd_workpool_outstanding(struct xd_workpool *pool);
/* True when req conflicts with a request queued or running in the pool: it
 * must then go through the pool (which keeps the order), not run inline. */
bool xd_workpool_conflicts(struct xd_workpool *pool, const struct xd_req *req);

#endif
