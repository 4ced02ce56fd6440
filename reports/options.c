/* options.c - classify fio options for labels (see options.h for why). */
#include "options.h"

#include <string.h>

#include "mem.h"

/* xdevice's keys are listed without "xd_": its stats JSON has them bare */
static const char *const path_keys[] = {
    "filename", "directory", "filename_format", "opendir",
    "base_directory", "hot_directory", "cold_directory",
    "tmpfs_directory", "block_device", "checkpoint_directory",
};

static const char *const book_keys[] = {
    "name", "description", "stonewall", "wait_for", "new_group",
    "group_reporting", "xd_stats", "output", "output-format",
    "status-interval", "eta", "exec_prerun", "exec_postrun",
    "verify_state_save", "percentile_list", "clat_percentiles",
    "lat_percentiles", "slat_percentiles", "disk_util",
    "per_job_logs", "log_avg_msec", "log_hist_msec", "log_hist_coarseness",
    "log_max_value", "log_offset", "log_prio", "log_compression",
    "log_store_compressed", "log_unix_epoch", "log_alternate_epoch",
    "log_alternate_epoch_clock_id",
};

static int in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

enum xr_opt_class xr_opt_class(const char *key)
{
    /* write_lat_log, write_bw_log, write_iops_log, write_hist_log */
    if (strncmp(key, "write_", 6) == 0 && strstr(key, "_log"))
        return XR_OPT_BOOK;
    if (in_list(key, book_keys, sizeof book_keys / sizeof *book_keys))
        return XR_OPT_BOOK;
    if (strncmp(key, "xd_", 3) == 0)
        key += 3;
    if (in_list(key, path_keys, sizeof path_keys / sizeof *path_keys))
        return XR_OPT_PATH;
    return XR_OPT_CONFIG;
}

const char *xr_opt_canon(const char *key)
{
    return strcmp(key, "xd_storage_type") == 0 ? "xd_type" : key;
}

char *xr_opt_value(const char *key, const char *val)
{
    const char *base;
    size_t n;

    if (strcmp(key, "ioengine") || strncmp(val, "external:", 9))
        return xr_mem_strdup(val);
    /* external:/any/where/xdevice.so is the engine people call "xdevice" */
    base = strrchr(val, '/') ? strrchr(val, '/') + 1 : val + 9;
    n = strlen(base);
    if (n > 3 && strcmp(base + n - 3, ".so") == 0)
        n -= 3;
    return xr_mem_strndup(base, n);
}
