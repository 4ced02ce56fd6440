/* stats.h - per-device operation figures and the per-run stats document.
 *
 * A device's figures belong to the one thread that drives it, so counting
 * takes no lock and no atomic. A run's document is assembled from one
 * fragment per job, which works the same whether fio's jobs are threads or
 * processes.
 */
#ifndef XD_STATS_H
#define XD_STATS_H

#include <stdint.h>

#include "histogram.h"
#include "xd_internal.h"

struct xd_op_stats {
    uint64_t ops;    /* completed without error */
    uint64_t bytes;
    uint64_t errors; /* completed with an error */
    uint64_t slow;   /* over slow_operation_threshold_ms */
    struct xd_hist lat_ns;
};

#define XD_SLOW_LOG 16 /* the slowest operations kept for the report */

struct xd_slow_op {
    uint32_t op;
    int32_t result;
    uint64_t off, len, lat_ns;
};

struct xd_stats_snapshot {
    struct xd_op_stats op[XD_OP_COUNT];
    struct xd_slow_op slowest[XD_SLOW_LOG]; /* sorted, slowest first */
    uint32_t nslow;
};


void xd_stats_merge(struct xd_stats_snapshot *into, const struct xd_stats_snapshot *from);
/* out = now - before, op by op (histograms bucket by bucket); the slowest
 * list is left empty. */
void xd_stats_diff(struct xd_stats_snapshot *out, const struct xd_stats_snapshot *now,
                   const struct xd_stats_snapshot *before);
/* The figures a device reports for its run (xd_stats_json, xd_stats_publish):
 * since xd_stats_start_run, else since open. NULL without a stats layer.
 * *owned is set to what the caller frees (NULL when nothing, or out of
 * memory: the whole life's figures then). */
struct xd_dev;
const struct xd_stats_snapshot *xd_dev_run_stats(struct xd_dev *dev,
                                                 struct xd_stats_snapshot **owned);
/* Append "ops": {read, write, trim, sync} with counts and latency percentiles. */
struct xd_json;
void xd_stats_ops_json(struct xd_json *j, const struct xd_stats_snapshot *s);
/* Append "config": config (the device's config as JSON) and "layers": each
 * layer's figures, as every stats document carries them. */
struct xd_dev;
void xd_stats_config_layers_json(struct xd_json *j, struct xd_dev *dev, const char *config);

#endif
