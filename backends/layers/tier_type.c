/* tier_type.c - the hybrid type seen from a config and a path, before any
 * device or tier state exists: the configs of the two inner chains, where
 * the cold file lives (cold_directory), and the hybrid type's path_prepare
 * and path_size (types.c). Separate because none of it touches a file's
 * tier state: the layer, the migration and the storage type's table all
 * build on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "tier.h"

/* --- inner chains -------------------------------------------------------- */

static int tier_set(struct xd_config *c, const char *key, const char *value, char *err,
                    size_t errlen)
{
    return xd_config_set(c, key, value, "hybrid type", err, errlen);
}

struct xd_config *xd_tier_inner_config(const struct xd_config *cfg, int which, bool sync,
                                        char *err, size_t errlen)
{
    struct xd_config *c = xd_config_dup(cfg);
    int rc = c ? 0 : -ENOMEM;
    if (!c) {
        xd_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (which == TIER_H) {
        rc = tier_set(c, "storage_type", "tmpfs", err, errlen);
        /* the hot copy must never be backed up over the cold file */
        if (!rc)
            rc = tier_set(c, "backup_to_disk", "false", err, errlen);
        if (!rc && cfg->hot_directory[0])
            rc = tier_set(c, "tmpfs_directory", cfg->hot_directory, err, errlen);
    } else {
        const char *type = cfg->cold_enable_compression
                               ? "compressed"
                               : xd_enum_name(XD_KEY_cold_storage_type, cfg->cold_storage_type);
        rc = tier_set(c, "storage_type", type, err, errlen);
    }
    /* keys the tier's type turns on (cold_storage_type=direct: use_direct_io)
     * are its own: the hybrid's false for them, refused when true, says
     * nothing about a tier (check_type_keys refuses a false set by hand) */
    for (const int *k = xd_type_of(c)->sets; !rc && k && *k >= 0; k++)
        rc = tier_set(c, xd_keys[*k].name, "true", err, errlen);
    /* the tier hands its inner devices paths the outer device already
     * resolved (file->path), or names under cold_directory: resolved again
     * against a relative base_directory, the cold file went to
     * base/base/name while the map and shared state were looked for at
     * base/name, and every open failed */
    if (!rc)
        rc = tier_set(c, "base_directory", "", err, errlen);
    if (!rc && sync)
        rc = tier_set(c, "async", "sync", err, errlen);
    /* the hybrid device's own stats layer counts every request once; the
     * inner ones would only add two clock reads to each */
    if (!rc)
        rc = tier_set(c, "enable_metrics", "false", err, errlen);
    /* a cache sits above the tier layer, once, not in each tier's chain */
    if (!rc)
        rc = tier_set(c, "enable_write_cache", "false", err, errlen);
    if (!rc)
        rc = tier_set(c, "enable_read_cache", "false", err, errlen);
    if (!rc)
        rc = tier_set(c, "trace", "", err, errlen);
    /* the recovery layers (checksums, mirror, retries, faults, checkpoints)
     * work on the hybrid device's logical data, once, above the tiers */
    static const char *const outer_only[][2] = {
        {"enable_checksums", "false"},       {"enable_redundancy", "false"},
        {"enable_fault_injection", "false"}, {"max_retries", "0"},
        {"enable_checkpoints", "false"},
    };
    for (size_t i = 0; i < sizeof(outer_only) / sizeof(outer_only[0]) && !rc; i++)
        rc = tier_set(c, outer_only[i][0], outer_only[i][1], err, errlen);
    if (rc) {
        xd_config_free(c);
        return NULL;
    }
    return c;
}

char *xd_tier_cold_path(const struct xd_config *cfg, const char *path)
{
    char *out = NULL;
    const char *slash = strrchr(path, '/');
    if (!cfg->cold_directory[0])
        return strdup(path);
    if (asprintf(&out, "%s/%s", cfg->cold_directory, slash ? slash + 1 : path) < 0)
        return NULL;
    return out;
}

/* --- the cold file before any device opens it ---------------------------- */

static bool tier_cold_compressed(const struct xd_config *cfg)
{
    /* cold_storage_type indexes its own list, not the storage types' */
    return cfg->cold_enable_compression ||
           !strcmp(xd_enum_name(XD_KEY_cold_storage_type, cfg->cold_storage_type), "compressed");
}

/* The cold file when it is not compressed: made, or grown to size (never
 * shrunk). The hybrid format (file plus map) is ours: never through a
 * link, and never into another user's file. 0 or -errno with one line. */
static int tier_cold_prepare(const struct xd_config *cfg, const char *cold, uint64_t size,
                             uint64_t *logical, char *err, size_t errlen)
{
    struct stat st;
    if (cfg->auto_create_dirs)
        xd_mkdir_parents(cold, cfg->dir_permissions);
    int fd = xd_open_data(cold, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)cfg->file_permissions, false);
    if (fd < 0) {
        xd_errf(err, errlen, "%s: cannot create the cold tier's file: %s", cold, xd_refusal(fd));
        return fd;
    }
    int rc = xd_format_file_owner_check(fd, cold, err, errlen);
    if (!rc && (fstat(fd, &st) || ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size)))) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot create the cold tier's file: %s", cold, xd_refusal(rc));
    }
    if (!rc)
        *logical = (uint64_t)st.st_size < size ? size : (uint64_t)st.st_size;
    close(fd);
    return rc;
}

/* The hybrid type owns its files' layout like the compressed type: the cold
 * file is created or grown here (never shrunk), so fio never writes raw
 * bytes into it behind the extent map's back; the map's stamp of the file
 * grows with it (tier_stamp.c). */
int xd_tier_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                    uint64_t *logical, char *err, size_t errlen)
{
    char *cold = xd_tier_cold_path(cfg, path);
    struct xd_config *c = xd_tier_inner_config(cfg, TIER_C, true, err, errlen);
    struct stat before;
    int rc = cold && c ? 0 : -ENOMEM;
    err[0] = 0;
    bool existed = !rc && !lstat(cold, &before) && S_ISREG(before.st_mode);
    if (!rc)
        rc = tier_cold_compressed(cfg) ? xd_compress_prepare(c, cold, size, logical, err, errlen)
                                       : tier_cold_prepare(cfg, cold, size, logical, err, errlen);
    if (!rc && existed) /* grown by us, not changed by another program */
        xd_tier_stamp_grown(cold, &before);
    xd_config_free(c);
    free(cold);
    return rc;
}

int xd_tier_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                         size_t errlen)
{
    char *cold = xd_tier_cold_path(cfg, path);
    if (!cold)
        return -ENOMEM;
    int rc = tier_cold_compressed(cfg) ? xd_compress_logical_size(cold, size, err, errlen)
                                       : xd_path_size(cold, size);
    free(cold);
    return rc;
}
