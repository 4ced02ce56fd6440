/* stats.c - the stats layer: counts, bytes and latency of every request that
 * passes through it, and a short list of the slowest ones. It sits on top of
 * every chain, so what it sees is what the caller saw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/stats.h"

struct stats_layer {
    struct xd_stats_snapshot snap;
    uint64_t slow_ns; /* threshold; 0 when slow logging is off */
    bool enabled;
};

/* slow_operation_threshold_ms is live (xd_reload). */
static void stats_set_threshold(struct stats_layer *s, const struct xd_config *cfg)
{
    s->slow_ns = cfg->log_slow_operations ? (uint64_t)cfg->slow_operation_threshold_ms * 1000000ull
                                          : 0;
}

static int stats_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct stats_layer *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->enabled = cfg->enable_metrics;
    stats_set_threshold(s, cfg);
    layer->priv = s;
    return 0;
}

static void stats_close(struct xd_layer *layer)
{
    free(layer->priv);
}

/* Keep the XD_SLOW_LOG slowest, sorted slowest first (insertion: the list is tiny). */
static void stats_note_slow(struct xd_stats_snapshot *snap, const struct xd_req *req, uint64_t lat)
{
    unsigned n = snap->nslow, pos = n;
    if (n == XD_SLOW_LOG && lat <= snap->slowest[n - 1].lat_ns)
        return;
    while (pos > 0 && snap->slowest[pos - 1].lat_ns < lat)
        pos--;
    if (n < XD_SLOW_LOG)
        n++;
    memmove(&snap->slowest[pos + 1], &snap->slowest[pos],
            (n - 1 - pos) * sizeof(snap->slowest[0]));
    snap->slowest[pos] = (struct xd_slow_op){.op = req->op,
                                             .result = (int32_t)(req->result < 0 ? req->result : 0),
                                             .off = req->off,
                                             .len = req->len,
                                             .lat_ns = lat};
    snap->nslow = n;
}

/* What the stats layer keeps per request (its slice of xd_req.xd_private). */
struct stats_req {
    uint64_t start_ns;
};

/* Inline in both callers (submit's inline completions, reap's loop): it
 * runs once per request, and its call was about 13 instructions of it. */
static inline __attribute__((always_inline)) void
stats_complete(const struct xd_layer *layer, const struct xd_req *req, uint64_t now)
{
    struct stats_layer *s = layer->priv;
    struct xd_op_stats *o = &s->snap.op[req->op];
    uint64_t start = ((struct stats_req *)xd_req_ctx(layer, req))->start_ns;
    uint64_t lat = now > start ? now - start : 0; /* reaped on another CPU: TSCs may differ a little */
    if (req->result < 0) {
        o->errors++;
    } else {
        o->ops++;
        o->bytes += (uint64_t)req->result;
    }
    xd_hist_record(&o->lat_ns, lat);
    if (s->slow_ns && lat > s->slow_ns) {
        o->slow++;
        stats_note_slow(&s->snap, req, lat);
    }
}

static int stats_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct stats_layer *s = layer->priv;
#ifdef XD_TEST_DELAY_NS
    /* Only for the regression check's own test (tests/e2e/test_regress.py):
     * a build with -DXD_TEST_DELAY_NS=N spins N ns on every request. */
    for (uint64_t until = xd_now_ns() + (XD_TEST_DELAY_NS); xd_now_ns() < until;)
        ;
#endif
    if (s->enabled)
        ((struct stats_req *)xd_req_ctx(layer, req))->start_ns = xd_now_ns();
    int rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE && s->enabled)
        stats_complete(layer, req, xd_now_ns());
    return rc;
}

static int stats_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct stats_layer *s = layer->priv;
    int n = xd_layer_reap(layer->lower, done, min, max, timeout);
    if (n > 0 && s->enabled) {
        uint64_t now = xd_now_ns();
        for (int i = 0; i < n; i++)
            stats_complete(layer, done[i], now);
    }
    return n;
}

/* The stats layer never holds a request: inline when the layer below is. */
static bool stats_inline_at(struct xd_layer *layer, const char *path, uint64_t largest_write)
{
    return xd_below_inline_at(layer, path, largest_write);
}

static const struct xd_stats_snapshot *stats_snapshot(struct xd_layer *layer)
{
    const struct stats_layer *s = layer->priv;
    return &s->snap;
}

static int stats_reload(struct xd_layer *layer, const struct xd_config *before)
{
    stats_set_threshold(layer->priv, layer->dev->cfg);
    return 0;
}

static void stats_json(struct xd_layer *layer, struct xd_json *j)
{
    const struct stats_layer *s = layer->priv;
    xd_json_object_begin(j, "stats");
    xd_json_uint(j, "slow_threshold_ms", s->slow_ns / 1000000ull);
    xd_json_object_end(j);
}

const struct xd_ops xd_stats_ops = {
    .version = XD_OPS_VERSION,
    .name = "stats",
    .req_ctx_size = sizeof(struct stats_req),
    .open = stats_open,
    .close = stats_close,
    .submit = stats_submit,
    .reap = stats_reap,
    .inline_at = stats_inline_at,
    .stats_snapshot = stats_snapshot,
    .stats_json = stats_json,
    .reload = stats_reload,
};
