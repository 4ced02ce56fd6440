/* workpool.c - see workpool.h. Two rings of request pointers under one
 * mutex: the work is tens of microseconds per request (a chunk through a
 * codec), so a lock round trip per request is noise.
 *
 * Order: a thread takes the oldest queued request that conflicts (ops.conflict)
 * with no running request and no older queued one, so a read never overtakes
 * a write of the same bytes, nor a write another (docs/DESIGN.md, "Ordering
 * invariant"). A request held back waits for the one before it to finish.
 */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xd_internal.h"

struct ring {
    struct xd_req **slot;
    unsigned head, count, size;
};

struct xd_workpool {
    struct xd_workpool_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t work_ready, work_done;
    struct ring todo, done;
    struct xd_req **active; /* the requests running, one per thread plus the reaper */
    unsigned running, capacity, nthreads, idle;
    bool stopping;
    pthread_t threads[];
};

static void ring_push(struct ring *r, struct xd_req *req)
{
    r->slot[(r->head + r->count++) % r->size] = req;
}

static struct xd_req **ring_at(struct ring *r, unsigned i)
{
    return &r->slot[(r->head + i) % r->size];
}

static struct xd_req *ring_pop(struct ring *r)
{
    struct xd_req *req = r->slot[r->head];
    r->head = (r->head + 1) % r->size;
    r->count--;
    return req;
}

/* Remove the i-th oldest entry, keeping the others in order. */
static struct xd_req *ring_take(struct ring *r, unsigned i)
{
    struct xd_req *req = *ring_at(r, i);
    for (; i + 1 < r->count; i++)
        *ring_at(r, i) = *ring_at(r, i + 1);
    r->count--;
    return req;
}

/* Must req wait for one of the running requests or an older queued one?
 * Queued requests from index `older` on are younger than req. */
static bool must_wait(const struct xd_workpool *p, const struct xd_req *req, unsigned older)
{
    if (!p->ops.conflict)
        return false;
    for (unsigned i = 0; i < p->running; i++)
        if (p->ops.conflict(p->active[i], req))
            return true;
    for (unsigned i = 0; i < older; i++)
        if (p->ops.conflict(*ring_at((struct ring *)&p->todo, i), req))
            return true;
    return false;
}

/* The index of the oldest queued request free to start, or -1. */
static int next_runnable(const struct xd_workpool *p)
{
    for (unsigned i = 0; i < p->todo.count; i++)
        if (!must_wait(p, *ring_at((struct ring *)&p->todo, i), i))
            return (int)i;
    return -1;
}

static void active_remove(struct xd_workpool *p, const struct xd_req *req)
{
    for (unsigned i = 0; i < p->running; i++) {
        if (p->active[i] == req) {
            p->active[i] = p->active[--p->running];
            return;
        }
    }
}

/* Run queued request `at` on this thread with its scratch state; the lock
 * is held on entry and on return, not while the request runs. */
static void run_one(struct xd_workpool *p, void *state, int at)
{
    struct xd_req *req = ring_take(&p->todo, (unsigned)at);
    p->active[p->running++] = req;
    pthread_mutex_unlock(&p->lock);
    p->ops.run(p->ops.owner, state, req);
    pthread_mutex_lock(&p->lock);
    active_remove(p, req);
    ring_push(&p->done, req);
    if (p->todo.count && p->idle) /* a request held back by this one may start */
        pthread_cond_broadcast(&p->work_ready);
}

static void *workpool_thread(void *arg)
{
    struct xd_workpool *p = arg;
    void *state = p->ops.thread_init ? p->ops.thread_init(p->ops.owner) : NULL;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        int at;
        while ((at = next_runnable(p)) < 0 && !(p->stopping && !p->todo.count)) {
            p->idle++;
            pthread_cond_wait(&p->work_ready, &p->lock);
            p->idle--;
        }
        if (at < 0)
            break; /* stopping, and nothing left to do */
        run_one(p, state, at);
        pthread_cond_signal(&p->work_done);
    }
    pthread_mutex_unlock(&p->lock);
    if (p->ops.thread_fini)
        p->ops.thread_fini(p->ops.owner, state);
    return NULL;
}

int xd_workpool_create(struct xd_workpool **out, unsigned threads, unsigned capacity,
                       const struct xd_workpool_ops *ops, char *err, size_t errlen)
{
    struct xd_workpool *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
    if (!p)
        return -ENOMEM;
    p->ops = *ops;
    p->capacity = capacity;
    p->todo = (struct ring){.slot = calloc(capacity, sizeof(void *)), .size = capacity};
    p->done = (struct ring){.slot = calloc(capacity, sizeof(void *)), .size = capacity};
    p->active = calloc(threads + 1, sizeof(*p->active));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_ready, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work_done, &mono);
    pthread_condattr_destroy(&mono);
    if (!p->todo.slot || !p->done.slot || !p->active) {
        xd_workpool_destroy(p);
        return -ENOMEM;
    }
    for (; p->nthreads < threads; p->nthreads++) {
        int rc = pthread_create(&p->threads[p->nthreads], NULL, workpool_thread, p);
        if (rc) {
            xd_errf(err, errlen, "cannot start worker thread: %s", strerror(rc));
            xd_workpool_destroy(p);
            return -rc;
        }
    }
    *out = p;
    return 0;
}

void xd_workpool_destroy(struct xd_workpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work_ready);
    pthread_cond_destroy(&p->work_done);
    free(p->todo.slot);
    free(p->done.slot);
    free(p->active);
    free(p);
}

static unsigned outstanding_locked(const struct xd_workpool *p)
{
    return p->todo.count + p->running + p->done.count;
}

bool xd_workpool_conflicts(struct xd_workpool *p, const struct xd_req *req)
{
    pthread_mutex_lock(&p->lock);
    bool wait = must_wait(p, req, p->todo.count);
    pthread_mutex_unlock(&p->lock);
    return wait;
}

unsigned xd_workpool_outstanding(struct xd_workpool *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = outstanding_locked(p);
    pthread_mutex_unlock(&p->lock);
    return n;
}

int xd_workpool_submit(struct xd_workpool *p, struct xd_req *req)
{
    pthread_mutex_lock(&p->lock);
    if (outstanding_locked(p) >= p->capacity) {
        pthread_mutex_unlock(&p->lock);
        return -EBUSY;
    }
    ring_push(&p->todo, req);
    if (p->idle) /* busy threads look at the ring again before sleeping */
        pthread_cond_signal(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
    return XD_QUEUED;
}

static struct timespec deadline_after(const struct timespec *rel)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += rel->tv_sec;
    t.tv_nsec += rel->tv_nsec;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* work_done waits on CLOCK_MONOTONIC deadlines, immune to clock changes. */
static int wait_done(struct xd_workpool *p, const struct timespec *deadline)
{
    if (!deadline)
        return pthread_cond_wait(&p->work_done, &p->lock);
    return pthread_cond_timedwait(&p->work_done, &p->lock, deadline);
}

int xd_workpool_reap(struct xd_workpool *p, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout, void *caller_state)
{
    struct timespec deadline;
    if (timeout)
        deadline = deadline_after(timeout);
    unsigned n = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (n < max && p->done.count)
            done[n++] = ring_pop(&p->done);
        /* never wait for more than is outstanding */
        if (n >= min || n >= max || !(p->todo.count + p->running))
            break;
        int at = caller_state ? next_runnable(p) : -1;
        if (at >= 0) {
            run_one(p, caller_state, at);
            continue;
        }
        if (wait_done(p, timeout ? &deadline : NULL) == ETIMEDOUT) {
            while (n < max && p->done.count)
                done[n++] = ring_pop(&p->done);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return (int)n;
}
