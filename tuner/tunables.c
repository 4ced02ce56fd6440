/* tunables.c - the keys xdtune searches by default, with their ranges.
 *
 * This is the seam to the library's own tunable table (xd_tunable_*, coming
 * with the engine's hot reload): until it lands, the ranges live here. Keys
 * the schema still marks pending are dropped by space.c, which probes every
 * value through xd_config_set, so a key joins the space when its feature does.
 */
#include <string.h>

#include "xdtune.h"

#define NUM(k, lo, hi, step, lg, live) { k, XT_NUM, lo, hi, step, lg, NULL, live }
#define CHOICE(k, c, live)             { k, XT_CHOICE, 0, 0, 0, 0, c, live }

static const struct xt_tunable tunables[] = {
    /* storage_type: only the types sharing the plain file format, so that a
     * trial never meets a file another type wrote (space.c decides) */
    CHOICE("storage_type", "regular|mmap|direct|sparse", 0),
    CHOICE("async", "sync|libaio|io_uring", 0),
    NUM("read_ahead_kb", 0, 4096, 4, 1, 1),
    CHOICE("enable_page_cache", "true|false", 0),
    CHOICE("enable_read_cache", "false|true", 0),
    NUM("cache_size", 1 << 20, 1 << 30, 4, 1, 1),
    CHOICE("cache_policy", "s3fifo|lru", 0),
    NUM("mmap_size", 4 << 20, 256 << 20, 4, 1, 0),
    CHOICE("enable_compression", "true|false", 0),
    CHOICE("compression_type", "lz4|zstd|snappy", 0),
    NUM("compression_level", 1, 9, 2, 0, 1),
    CHOICE("adaptive_compression", "false|true", 0),
    NUM("hot_cache_size", 16 << 20, 4096.0 * (1 << 20), 4, 1, 1),
    NUM("hot_access_threshold", 1, 16, 2, 1, 1),
    NUM("cold_timeout_sec", 10, 3600, 4, 1, 1),
    NUM("migration_batch_size", 8, 512, 4, 1, 1),
};

unsigned xt_tunable_count(void)
{
    return sizeof(tunables) / sizeof(tunables[0]);
}

const struct xt_tunable *xt_tunable_get(unsigned i)
{
    return i < xt_tunable_count() ? &tunables[i] : NULL;
}

const struct xt_tunable *xt_tunable_find(const char *key)
{
    for (unsigned i = 0; i < xt_tunable_count(); i++)
        if (strcmp(tunables[i].key, key) == 0)
            return &tunables[i];
    return NULL;
}
