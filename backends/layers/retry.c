/* retry.c - the retry layer (max_retries > 0): a request that fails with a
 * transient error (EIO, EAGAIN, EINTR, ETIMEDOUT) is sent below again, up to
 * max_retries times, retry_delay_ms apart (doubled per retry with
 * exponential_backoff). Other errors (ENOSPC, EINVAL, EBADF, ...) would only
 * fail again: they go up at once.
 *
 * A request that must complete inline (XD_REQ_SYNC, or a chain without
 * XD_CAP_ASYNC) is retried inline, sleeping between attempts. An async one
 * must not hold up the queue: it waits in the layer's pending list with its
 * due time and is resubmitted from the next commit or reap once due; reap
 * never waits below past the earliest due time, and loops until the
 * caller's min completions or timeout, so the other requests keep flowing.
 * A request that fails for good leaves one line for take_error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "../core/xd_internal.h"

/* Per request: its attempts so far, and its place in the pending or ready
 * list while the layer holds it. 16 bytes, so that the deepest chain's
 * slices fit in xd_req.xd_private (tests/unit/chains.c): the due time in
 * microseconds of xd_now_ns, rounded up (a held request never goes early;
 * 56 bits last 2283 years), and the attempts in 8 bits (max_retries is at
 * most RETRY_MAX). */
#define RETRY_MAX 100
#define RETRY_DUE_US_MAX ((UINT64_C(1) << 56) - 1)
struct retry_req {
    struct xd_req *next;
    uint64_t due_us : 56;
    uint64_t retries : 8;
};
_Static_assert(sizeof(struct retry_req) == 16, "retry_req grew: the deepest chain may not fit");
_Static_assert(RETRY_MAX < 256, "retries counts up to RETRY_MAX in 8 bits");

struct retry_list {
    struct xd_req *head, *tail;
};

struct retry_layer {
    unsigned max;
    uint64_t delay_ns;
    bool backoff, async;
    struct retry_list pending; /* waiting for their due time */
    struct retry_list ready;   /* finished on a resubmission that completed inline */
    unsigned inflight;         /* queued below by this layer's callers or itself */
    bool busy;                 /* a resubmission met a full queue */
    bool has_error;
    char error[XD_ERRLEN];
    struct {
        uint64_t retries, recovered, failed;
    } count;
};

static int retry_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct retry_layer *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return -ENOMEM;
    if (cfg->max_retries > RETRY_MAX) { /* the schema's bound; retry_req counts in 8 bits */
        free(rt);
        xd_errf(err, errlen, "max_retries=%d: more than %d", (int)cfg->max_retries, RETRY_MAX);
        return -EINVAL;
    }
    rt->max = (unsigned)cfg->max_retries;
    rt->delay_ns = (uint64_t)cfg->retry_delay_ms * 1000000ull;
    rt->backoff = cfg->exponential_backoff;
    rt->async = xd_chain_caps(layer->lower) & XD_CAP_ASYNC;
    layer->priv = rt;
    return 0;
}

static void retry_close(struct xd_layer *layer) { free(layer->priv); }

static struct retry_req *retry_ctx(const struct xd_layer *layer, const struct xd_req *req)
{
    return xd_req_ctx(layer, req);
}

static void retry_set_due(struct retry_req *rr, uint64_t due_ns)
{
    uint64_t us = due_ns / 1000 + (due_ns % 1000 != 0);
    rr->due_us = us < RETRY_DUE_US_MAX ? us : RETRY_DUE_US_MAX;
}

static uint64_t retry_due_ns(const struct retry_req *rr) { return (uint64_t)rr->due_us * 1000; }

static void retry_list_push(struct xd_layer *layer, struct retry_list *list, struct xd_req *req)
{
    retry_ctx(layer, req)->next = NULL;
    if (list->tail)
        retry_ctx(layer, list->tail)->next = req;
    else
        list->head = req;
    list->tail = req;
}

/* --- policy ----------------------------------------------------------------- */

static bool retry_transient(int64_t result)
{
    return result == -EIO || result == -EAGAIN || result == -EINTR || result == -ETIMEDOUT;
}

static bool retry_wanted(const struct retry_layer *rt, const struct xd_layer *layer,
                         const struct xd_req *req)
{
    return retry_transient(req->result) && retry_ctx(layer, req)->retries < rt->max;
}

/* The wait before retry number n (1-based). */
static uint64_t retry_delay(const struct retry_layer *rt, unsigned n)
{
    unsigned shift = rt->backoff ? (n - 1 < 20 ? n - 1 : 20) : 0;
    return rt->delay_ns << shift;
}

static const char *const retry_op_names[XD_OP_COUNT] = {"read", "write", "trim", "fsync",
                                                         "fdatasync"};

/* The request's final outcome, counted; a failure after retries is said. */
static void retry_finish(struct xd_layer *layer, struct xd_req *req)
{
    struct retry_layer *rt = layer->priv;
    unsigned retries = retry_ctx(layer, req)->retries;
    if (!retries)
        return;
    if (req->result >= 0) {
        rt->count.recovered++;
        return;
    }
    rt->count.failed++;
    rt->has_error = true;
    snprintf(rt->error, sizeof(rt->error), "%s of %s at offset %llu failed after %u %s: %s",
             retry_op_names[req->op], req->file->path, (unsigned long long)req->off, retries,
             retries == 1 ? "retry" : "retries", strerror((int)-req->result));
}

/* --- sync: retry inline ----------------------------------------------------- */

static void retry_sleep(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static int retry_inline(struct xd_layer *layer, struct xd_req *req)
{
    struct retry_layer *rt = layer->priv;
    struct retry_req *rr = retry_ctx(layer, req);
    int rc = XD_DONE;
    while (rc == XD_DONE && retry_wanted(rt, layer, req)) {
        retry_sleep(retry_delay(rt, ++rr->retries));
        rt->count.retries++;
        req->result = 0;
        rc = xd_layer_submit(layer->lower, req);
    }
    if (rc == XD_QUEUED) /* only an async chain's request can get here */
        rt->inflight++;
    else if (rc == XD_DONE)
        retry_finish(layer, req);
    return rc;
}

/* --- async: hold, resubmit when due ----------------------------------------- */

static void retry_hold(struct xd_layer *layer, struct xd_req *req, uint64_t now)
{
    struct retry_layer *rt = layer->priv;
    struct retry_req *rr = retry_ctx(layer, req);
    retry_set_due(rr, now + retry_delay(rt, ++rr->retries));
    rt->count.retries++;
    retry_list_push(layer, &rt->pending, req);
}

/* A request that came back from below (inline or reaped): held for another
 * try, or finished. Returns whether it goes up now. */
static bool retry_returned(struct xd_layer *layer, struct xd_req *req, uint64_t *now)
{
    struct retry_layer *rt = layer->priv;
    if (!retry_wanted(rt, layer, req)) {
        retry_finish(layer, req);
        return true;
    }
    if (!*now)
        *now = xd_now_ns();
    retry_hold(layer, req, *now);
    return false;
}

/* Send every due request below again; commit them when any was queued.
 * One that meets a full queue waits for a completion (rt->busy). */
static void retry_resubmit_due(struct xd_layer *layer, uint64_t now)
{
    struct retry_layer *rt = layer->priv;
    struct xd_req *req = rt->pending.head, *keep_head = NULL, *keep_tail = NULL;
    bool queued = false;
    rt->pending.head = rt->pending.tail = NULL;
    rt->busy = false;
    while (req) {
        struct retry_req *rr = retry_ctx(layer, req);
        struct xd_req *next = rr->next;
        bool due = retry_due_ns(rr) <= now;
        int rc = due && !rt->busy ? (req->result = 0, xd_layer_submit(layer->lower, req)) : -EBUSY;
        if (rc == -EBUSY) {
            rt->busy |= due;
            rr->next = NULL;
            if (keep_tail)
                retry_ctx(layer, keep_tail)->next = req;
            else
                keep_head = req;
            keep_tail = req;
        } else if (rc == XD_QUEUED) {
            rt->inflight++;
            queued = true;
        } else {
            uint64_t t = now;
            if (retry_returned(layer, req, &t))
                retry_list_push(layer, &rt->ready, req);
        }
        req = next;
    }
    /* requests held again above went on rt->pending; the kept ones go first */
    if (keep_head) {
        retry_ctx(layer, keep_tail)->next = rt->pending.head;
        if (!rt->pending.head)
            rt->pending.tail = keep_tail;
        rt->pending.head = keep_head;
    }
    if (queued)
        xd_layer_commit(layer->lower);
}

static uint64_t retry_earliest_due(const struct xd_layer *layer, const struct retry_layer *rt)
{
    uint64_t due = UINT64_MAX;
    for (const struct xd_req *r = rt->pending.head; r; r = retry_ctx(layer, r)->next)
        if (retry_due_ns(retry_ctx(layer, r)) < due)
            due = retry_due_ns(retry_ctx(layer, r));
    return due;
}

static unsigned retry_take_ready(struct xd_layer *layer, struct xd_req **done, unsigned room)
{
    struct retry_layer *rt = layer->priv;
    unsigned n = 0;
    while (n < room && rt->ready.head) {
        struct xd_req *req = rt->ready.head;
        rt->ready.head = retry_ctx(layer, req)->next;
        if (!rt->ready.head)
            rt->ready.tail = NULL;
        done[n++] = req;
    }
    return n;
}

/* The n requests reaped below into done: those to try again are held, the
 * rest closed up at the front. Returns how many go up. */
static unsigned retry_sort_reaped(struct xd_layer *layer, struct xd_req **done, unsigned n)
{
    struct retry_layer *rt = layer->priv;
    uint64_t now = 0;
    unsigned up = 0;
    rt->inflight -= n < rt->inflight ? n : rt->inflight;
    for (unsigned i = 0; i < n; i++)
        if (retry_returned(layer, done[i], &now))
            done[up++] = done[i];
    return up;
}

static int retry_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct retry_layer *rt = layer->priv;
    retry_ctx(layer, req)->retries = 0;
    int rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_QUEUED) {
        rt->inflight++;
        return rc;
    }
    if (rc != XD_DONE || !retry_transient(req->result))
        return rc; /* -EBUSY, or done: the common cases, untouched */
    if (!rt->async || xd_req_is_sync(req))
        return retry_inline(layer, req);
    retry_hold(layer, req, xd_now_ns());
    return XD_QUEUED; /* it comes back from reap */
}

static int retry_commit(struct xd_layer *layer)
{
    struct retry_layer *rt = layer->priv;
    if (rt->pending.head)
        retry_resubmit_due(layer, xd_now_ns());
    return xd_layer_commit(layer->lower);
}

static struct timespec retry_timespec(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
                             .tv_nsec = (long)(ns % 1000000000ull)};
}

/* While the layer holds requests: resubmit what is due, hand up what is
 * ready, and wait below no later than the next due time, until min have
 * gone up or the caller's timeout has passed. */
static int retry_reap_holding(struct xd_layer *layer, struct xd_req **done, unsigned got,
                              unsigned min, unsigned max, const struct timespec *timeout)
{
    struct retry_layer *rt = layer->priv;
    uint64_t now = xd_now_ns();
    uint64_t deadline = timeout ? now + (uint64_t)timeout->tv_sec * 1000000000ull +
                                      (uint64_t)timeout->tv_nsec
                                : UINT64_MAX;
    for (;;) {
        if (rt->pending.head)
            retry_resubmit_due(layer, now);
        got += retry_take_ready(layer, done + got, max - got);
        if (got >= max || (got >= min && got))
            return (int)got;
        uint64_t until = deadline;
        if (!rt->busy && rt->pending.head) {
            uint64_t due = retry_earliest_due(layer, rt);
            until = due < until ? due : until;
        }
        if (!rt->inflight) {
            if (got >= min || (!rt->pending.head && !rt->ready.head))
                return (int)got; /* a poll, or nothing left that could come back */
            if (until > now)
                retry_sleep(until == UINT64_MAX ? 1000000 : until - now);
        } else {
            unsigned need = got >= min ? 0 : min - got;
            if (rt->busy && !need)
                need = 1; /* a held request needs a slot */
            /* a poll stays a poll: never wait below for what nobody asked */
            struct timespec ts = retry_timespec(until > now && need ? until - now : 0);
            int n = xd_layer_reap(layer->lower, done + got, need, max - got,
                                  until == UINT64_MAX && need ? NULL : &ts);
            if (n < 0)
                return got ? (int)got : n;
            got += retry_sort_reaped(layer, done + got, (unsigned)n);
        }
        now = xd_now_ns();
        if ((got >= min && (got || !min)) || now >= deadline)
            return (int)got + (int)retry_take_ready(layer, done + got, max - got);
    }
}

static int retry_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct retry_layer *rt = layer->priv;
    if (rt->pending.head || rt->ready.head)
        return retry_reap_holding(layer, done, 0, min, max, timeout);
    int n = xd_layer_reap(layer->lower, done, min, max, timeout);
    if (n <= 0)
        return n;
    unsigned up = retry_sort_reaped(layer, done, (unsigned)n);
    if (up >= min || !rt->pending.head)
        return (int)up;
    /* some went back to wait: the caller still wants min of them */
    return retry_reap_holding(layer, done, up, min, max, timeout);
}

/* --- control ---------------------------------------------------------------- */

static int retry_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    struct retry_layer *rt = layer->priv;
    if (!rt->has_error)
        return -ENOENT;
    rt->has_error = false;
    snprintf(line, XD_ERRLEN, "%s", rt->error);
    return 0;
}

static void retry_stats_json(struct xd_layer *layer, struct xd_json *j)
{
    struct retry_layer *rt = layer->priv;
    xd_json_object_begin(j, "retry");
    xd_json_uint(j, "max_retries", rt->max);
    xd_json_uint(j, "retry_delay_ms", rt->delay_ns / 1000000ull);
    xd_json_bool(j, "exponential_backoff", rt->backoff);
    xd_json_uint(j, "retries", rt->count.retries);
    xd_json_uint(j, "recovered", rt->count.recovered);
    xd_json_uint(j, "failed", rt->count.failed);
    xd_json_object_end(j);
}

const struct xd_ops xd_retry_ops = {
    .version = XD_OPS_VERSION,
    .name = "retry",
    .req_ctx_size = sizeof(struct retry_req),
    .open = retry_open,
    .close = retry_close,
    .submit = retry_submit,
    .commit = retry_commit,
    .reap = retry_reap,
    .take_error = retry_take_error,
    .stats_json = retry_stats_json,
};
