/* health.h - the health check's report for the library's own callers
 * (the monitor, xdconfig); the public face is xd_health_json. */
#ifndef XD_HEALTH_H
#define XD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

struct xd_config;
struct xd_dev;

/* xd_health_json, and its problems as text, one line each ending in a
 * newline ("" when none), malloc'd into *lines. */
char *xd_health_report(const struct xd_config *cfg, struct xd_dev *dev, int *healthy,
                       char **lines, char *err, size_t errlen);

/* layers.LAYER.NAME of a stats JSON text (xd_stats_json) as a number;
 * false when it is absent or not a number. */
bool xd_health_figure(const char *stats, const char *layer, const char *name, double *value);

#endif
