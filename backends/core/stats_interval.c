/* stats_interval.c - periodic stats records: what a device did since the
 * last record, for a daemon following a long run (xdtune) rather than a
 * report at the end. The stats layer's counters only grow, so an interval
 * is the difference of two snapshots; histograms subtract bucket by bucket,
 * which keeps the interval's percentiles exact to a bucket.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "stats.h"

struct xd_stats_mark {
    struct xd_stats_snapshot snap; /* the figures at the last record */
    uint64_t at_ns;                /* xd_clock_monotonic_ns then; 0: none yet */
    uint64_t seq;
};

struct xd_stats_mark *xd_stats_mark_new(void) { return calloc(1, sizeof(struct xd_stats_mark)); }

void xd_stats_mark_free(struct xd_stats_mark *mark) { free(mark); }

void xd_stats_diff(struct xd_stats_snapshot *out, const struct xd_stats_snapshot *now,
                   const struct xd_stats_snapshot *before)
{
    for (int i = 0; i < XD_OP_COUNT; i++) {
        const struct xd_op_stats *a = &now->op[i], *b = &before->op[i];
        out->op[i].ops = a->ops - b->ops;
        out->op[i].bytes = a->bytes - b->bytes;
        out->op[i].errors = a->errors - b->errors;
        out->op[i].slow = a->slow - b->slow;
        xd_hist_diff(&out->op[i].lat_ns, &a->lat_ns, &b->lat_ns);
    }
    out->nslow = 0; /* the slowest list is the run's, in "total" */
}

static void interval_json(struct xd_json *j, const struct xd_stats_snapshot *d, double seconds)
{
    uint64_t ops = 0, bytes = 0;
    for (int i = 0; i < XD_OP_COUNT; i++) {
        ops += d->op[i].ops;
        bytes += d->op[i].bytes;
    }
    xd_json_object_begin(j, "interval");
    xd_json_double(j, "seconds", seconds);
    xd_json_double(j, "iops", seconds > 0 ? (double)ops / seconds : 0);
    xd_json_double(j, "bw_bytes", seconds > 0 ? (double)bytes / seconds : 0);
    xd_stats_ops_json(j, d);
    xd_json_object_end(j);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *xd_stats_interval_json(struct xd_dev *dev, struct xd_stats_mark *mark, const char *job_name,
                             unsigned jobnum)
{
    static const struct xd_stats_snapshot empty;
    if (xd_dev_forked(dev))
        return NULL;
    const struct xd_stats_snapshot *now = xd_chain_stats_snapshot(dev->top);
    if (!now)
        now = &empty;
    struct xd_stats_snapshot *d = malloc(sizeof(*d));
    char *config = xd_config_json(dev->cfg);
    if (!d || !config) {
        free(d);
        free(config);
        return NULL;
    }
    uint64_t at = xd_clock_monotonic_ns(), since = mark->at_ns ? mark->at_ns : dev->opened_ns;
    xd_stats_diff(d, now, &mark->snap);

    struct xd_json j;
    xd_json_init(&j);
    xd_json_object_begin(&j, NULL);
    xd_json_uint(&j, "time_ms", wall_ms());
    xd_json_uint(&j, "seq", mark->seq);
    xd_json_string(&j, "job", job_name ? job_name : "");
    xd_json_uint(&j, "jobnum", jobnum);
    xd_json_string(&j, "type", xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type));
    interval_json(&j, d, (double)(at - since) / 1e9);
    xd_json_object_begin(&j, "total");
    xd_stats_ops_json(&j, now);
    xd_json_object_end(&j);
    xd_stats_config_layers_json(&j, dev, config);
    xd_json_object_end(&j);
    free(config);
    free(d);

    char *text = xd_json_finish(&j);
    if (text) {
        mark->snap = *now;
        mark->at_ns = at;
        mark->seq++;
    }
    return text;
}
