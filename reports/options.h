/* options.h - which fio options describe a configuration.
 *
 * Two runs of the same workload differ in many options that say nothing
 * about how the storage was set up: log file names, the stats file, output
 * settings. Labels and the "config" string leave those out; paths
 * (filename, directory) are used only when nothing else tells runs apart,
 * because a temporary directory per run would otherwise label everything.
 */
#ifndef XR_OPTIONS_H
#define XR_OPTIONS_H

enum xr_opt_class {
    XR_OPT_CONFIG,   /* describes the configuration: ioengine, bs, xd_type... */
    XR_OPT_PATH,     /* where the data lives: telling only when nothing else differs */
    XR_OPT_BOOK,     /* bookkeeping: names of logs and outputs, never a label */
};

enum xr_opt_class xr_opt_class(const char *key);

/* One name for options that have two: the xdevice engine takes xd_type as
 * short for xd_storage_type, and fio prints whichever the job used. */
const char *xr_opt_canon(const char *key);

/* The value as labels show it (malloc'd): an external engine's path is cut
 * to its name ("external:/a/b/xdevice.so" is "xdevice"), so the same engine
 * built in two checkouts compares equal. Other values are copied unchanged. */
char *xr_opt_value(const char *key, const char *val);

#endif
