/* types.c - the storage types: each is a preset chain of one driver and the
 * layers above it, built bottom-up from the config.
 *
 *   regular     stats -> [cache] -> [sparse] -> file
 *   direct      stats -> [cache] -> [sparse] -> file (O_DIRECT, io_alignment)
 *   mmap        stats -> [cache] -> mmap
 *   tmpfs       stats -> [cache] -> [sparse] -> tmpfs -> file (on a tmpfs mount, optional backup)
 *   block       stats -> [cache] -> block
 *   sparse      stats -> [cache] -> sparse -> file
 *   compressed  stats -> [cache] -> compress (a driver: owns its container files, see
 *               drivers/compressed/compressed.c)
 *   hybrid      stats -> [cache] -> tier (two inner devices: the tmpfs chain for hot
 *               extents, cold_storage_type's chain for all; see tier.c)
 *
 * [sparse] is there when enable_sparse=true (config.c refuses it elsewhere).
 * Every type gets the cache layer right under stats when enable_read_cache
 * (or trace) is set, so it sees what the caller asked for: the compressed
 * type's logical data, the sparse layer's zeros.
 */
#include "core/xd_internal.h"

static int types_push_all(struct xd_dev *dev, const struct xd_ops *const *chain, char *err,
                          size_t errlen)
{
    for (; *chain; chain++) {
        int rc = xd_dev_push(dev, *chain, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* The driver (and tmpfs's mount layer) of each type, bottom first. */
static const struct xd_ops *const *types_base(int type)
{
    static const struct xd_ops *const file[] = {&xd_file_ops, NULL};
    static const struct xd_ops *const mmap[] = {&xd_mmap_ops, NULL};
    static const struct xd_ops *const tmpfs[] = {&xd_file_ops, &xd_tmpfs_ops, NULL};
    static const struct xd_ops *const block[] = {&xd_block_ops, NULL};
    static const struct xd_ops *const compress[] = {&xd_compress_ops, NULL};

    switch (type) {
    case XD_TYPE_REGULAR:
    case XD_TYPE_DIRECT: /* the file driver reads storage_type for O_DIRECT */
    case XD_TYPE_SPARSE:
        return file;
    case XD_TYPE_MMAP:
        return mmap;
    case XD_TYPE_TMPFS:
        return tmpfs;
    case XD_TYPE_BLOCK:
        return block;
    case XD_TYPE_COMPRESSED:
        return compress;
    default:
        return NULL;
    }
}

int xd_types_build(struct xd_dev *dev, char *err, size_t errlen)
{
    const struct xd_config *cfg = dev->cfg;
    if (cfg->storage_type == XD_TYPE_HYBRID) { /* the tiers' chains are its inner devices */
        int rc = xd_dev_push(dev, &xd_tier_ops, err, errlen);
        if (!rc && (cfg->enable_read_cache || cfg->trace[0]))
            rc = xd_dev_push(dev, &xd_cache_ops, err, errlen);
        return rc ? rc : xd_dev_push(dev, &xd_stats_ops, err, errlen);
    }
    const struct xd_ops *const *base = types_base(cfg->storage_type);
    if (!base) {
        xd_errf(err, errlen, "storage_type=%s: this type is not built yet; allowed: regular|mmap|direct|tmpfs|block|sparse|compressed",
                xd_enum_name(XD_KEY_storage_type, cfg->storage_type));
        return -EINVAL;
    }
    int rc = types_push_all(dev, base, err, errlen);
    if (!rc && (cfg->enable_sparse || cfg->storage_type == XD_TYPE_SPARSE))
        rc = xd_dev_push(dev, &xd_sparse_ops, err, errlen);
    if (!rc && (cfg->enable_read_cache || cfg->trace[0]))
        rc = xd_dev_push(dev, &xd_cache_ops, err, errlen);
    if (!rc)
        rc = xd_dev_push(dev, &xd_stats_ops, err, errlen);
    return rc;
}
