/* reload.c - unit test of xd_reload: live keys change on an open device and
 * the layers apply them (the file driver's readahead, compress's level, the
 * stats layer's slow threshold, as their figures show); a config that
 * differs in a key fixed at open is refused whole, naming the keys; an
 * invalid config is refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "xdevice.h"

static char err[XD_ERRLEN];
static char dir[256];

static struct xd_config *config_with(const char *type, const char *async)
{
    struct xd_config *cfg = xd_config_new();
    CHECK(!xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "async", async, "test", err, sizeof(err)));
    return cfg;
}

static void set(struct xd_config *cfg, const char *key, const char *value)
{
    CHECK_MSG(!xd_config_set(cfg, key, value, "test", err, sizeof(err)), "%s", err);
}

/* The number after "key": in the device's stats JSON, or -1. */
static long long stats_figure(struct xd_dev *dev, const char *key)
{
    char *json = xd_stats_json(dev), needle[80];
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    const char *p = json ? strstr(json, needle) : NULL;
    long long v = p ? strtoll(p + strlen(needle), NULL, 10) : -1;
    free(json);
    return v;
}

static void test_refused(void)
{
    struct xd_config *cfg = config_with("regular", "sync");
    struct xd_dev *dev;
    CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    struct xd_config *next = xd_config_dup(cfg);
    set(next, "read_ahead_kb", "4096");
    set(next, "use_direct_io", "true");
    set(next, "max_events", "64");
    CHECK(xd_reload(dev, next, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, "use_direct_io (false -> true)") && strstr(err, "max_events (128 -> 64)") &&
                  strstr(err, "nothing applied") && !strstr(err, "read_ahead_kb (") &&
                  !strchr(err, '\n'),
              "%s", err);
    CHECK(xd_dev_config(dev)->read_ahead_kb == 128); /* nothing applied */
    /* an invalid config: the checks' own line */
    struct xd_config *bad = xd_config_dup(cfg);
    set(bad, "enable_write_cache", "true");
    CHECK(xd_reload(dev, bad, err, sizeof(err)) == -EINVAL && strstr(err, "enable_read_cache"));
    /* the same config: nothing to do */
    int same = xd_reload(dev, cfg, err, sizeof(err));
    CHECK_MSG(same == 0, "%d %s", same, err);
    /* no config at all (it crashed): one line */
    CHECK(xd_reload(dev, NULL, err, sizeof(err)) == -EINVAL && strstr(err, "NULL"));
    CHECK(xd_reload(NULL, cfg, err, sizeof(err)) == -EINVAL);
    xd_config_free(bad);
    xd_config_free(next);
    xd_close(dev);
    xd_config_free(cfg);
}

/* read_ahead_kb on the file driver: the window it advises follows. */
static void test_file_readahead(const char *async)
{
    char path[512];
    struct xd_config *cfg = config_with("regular", async);
    struct xd_dev *dev;
    struct xd_file *file;
    snprintf(path, sizeof(path), "%s/ra-%s", dir, async);
    CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    CHECK_MSG(!xd_file_open(dev, path, XD_OPEN_CREATE, 1 << 20, &file, err, sizeof(err)), "%s", err);
    CHECK(stats_figure(dev, "read_ahead_kb") == 128);
    struct xd_config *next = xd_config_dup(cfg);
    set(next, "read_ahead_kb", "8192");
    set(next, "slow_operation_threshold_ms", "7");
    CHECK_MSG(xd_reload(dev, next, err, sizeof(err)) == 2, "%s", err);
    CHECK(xd_dev_config(dev)->read_ahead_kb == 8192);
    CHECK(!strcmp(xd_dev_config(dev)->origin[XD_KEY_read_ahead_kb], "test"));
    CHECK_MSG(stats_figure(dev, "read_ahead_kb") == 8192, "driver reports %lld",
              stats_figure(dev, "read_ahead_kb"));
    CHECK(stats_figure(dev, "slow_threshold_ms") == 7);
    set(next, "read_ahead_kb", "0");
    CHECK(xd_reload(dev, next, err, sizeof(err)) == 1);
    CHECK(stats_figure(dev, "read_ahead_kb") == 0);
    xd_config_free(next);
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
}

/* compression_level on the compressed type: new chunks use the new level. */
static void test_compress_level(const char *async)
{
    char path[512];
    uint64_t logical;
    struct xd_config *cfg = config_with("compressed", async);
    struct xd_dev *dev;
    struct xd_file *file;
    set(cfg, "compression_type", "zstd");
    snprintf(path, sizeof(path), "%s/level-%s", dir, async);
    CHECK_MSG(!xd_path_prepare(cfg, path, 1 << 20, &logical, err, sizeof(err)), "%s", err);
    CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    CHECK_MSG(!xd_file_open(dev, path, XD_OPEN_CREATE, 1 << 20, &file, err, sizeof(err)), "%s", err);
    CHECK(stats_figure(dev, "level") == 1);
    struct xd_config *next = xd_config_dup(cfg);
    set(next, "compression_level", "19");
    CHECK_MSG(xd_reload(dev, next, err, sizeof(err)) == 1, "%s", err);
    CHECK_MSG(stats_figure(dev, "level") == 19, "compress reports %lld", stats_figure(dev, "level"));
    /* data written after the reload still reads back */
    static char buf[65536], back[65536];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)(i % 251 < 100 ? 'a' : i % 7);
    CHECK(xd_write(dev, file, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(xd_read(dev, file, back, sizeof(back), 0) == (ssize_t)sizeof(back));
    CHECK(!memcmp(buf, back, sizeof(buf)));
    /* a level the codec does not have is refused by the config checks */
    set(next, "compression_type", "lz4");
    CHECK(xd_reload(dev, next, err, sizeof(err)) == -EINVAL);
    CHECK(stats_figure(dev, "level") == 19);
    xd_config_free(next);
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
}

/* cache_size: shrinks at once (evicting) and grows, beyond the size the
 * process's cache opened with, through xd_reload. */
static void test_cache_size(void)
{
    char path[512];
    static char buf[1 << 20];
    struct xd_config *cfg = config_with("regular", "sync");
    struct xd_dev *dev;
    struct xd_file *file;
    set(cfg, "enable_read_cache", "true");
    set(cfg, "cache_size", "4m");
    snprintf(path, sizeof(path), "%s/cached", dir);
    CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    CHECK_MSG(!xd_file_open(dev, path, XD_OPEN_CREATE, 4 << 20, &file, err, sizeof(err)), "%s", err);
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t off = 0; off < (4 << 20); off += sizeof(buf))
            CHECK(xd_read(dev, file, buf, sizeof(buf), off) == (ssize_t)sizeof(buf));
    CHECK(stats_figure(dev, "capacity_bytes") == 4 << 20);
    long long full = stats_figure(dev, "bytes_cached");
    CHECK_MSG(full > 3 << 20, "cached %lld", full);

    struct xd_config *next = xd_config_dup(cfg);
    set(next, "cache_size", "1m");
    CHECK_MSG(xd_reload(dev, next, err, sizeof(err)) == 1, "%s", err);
    CHECK(stats_figure(dev, "capacity_bytes") == 1 << 20);
    CHECK_MSG(stats_figure(dev, "bytes_cached") <= 1 << 20, "cached %lld after shrinking",
              stats_figure(dev, "bytes_cached"));
    for (uint64_t off = 0; off < (4 << 20); off += sizeof(buf))
        CHECK(xd_read(dev, file, buf, sizeof(buf), off) == (ssize_t)sizeof(buf));
    CHECK(stats_figure(dev, "bytes_cached") <= 1 << 20);

    set(next, "cache_size", "8m"); /* beyond the size it opened with */
    CHECK_MSG(xd_reload(dev, next, err, sizeof(err)) == 1, "%s", err);
    CHECK(stats_figure(dev, "capacity_bytes") == 8 << 20);
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t off = 0; off < (4 << 20); off += sizeof(buf))
            CHECK(xd_read(dev, file, buf, sizeof(buf), off) == (ssize_t)sizeof(buf));
    long long grown = stats_figure(dev, "bytes_cached");
    CHECK_MSG(grown > 3 << 20, "cached %lld at 8m", grown);
    xd_config_free(next);
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xd-unit-reload-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_refused();
    test_file_readahead("sync");
    if (check_mode_runs("io_uring", "read_ahead_kb reload"))
        test_file_readahead("io_uring");
    test_compress_level("sync");
    test_compress_level("libaio");
    test_cache_size();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    return check_result();
}
