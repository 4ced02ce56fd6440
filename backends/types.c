/* types.c - the storage types: each is a preset chain of one driver and the
 * layers above it, built bottom-up from the config.
 *
 *   regular  stats -> file
 *   direct   stats -> file (O_DIRECT, io_alignment)
 *   mmap     stats -> mmap
 *   tmpfs    stats -> tmpfs -> file (on a tmpfs mount, optional backup to disk)
 *   block    stats -> block
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

int xd_types_build(struct xd_dev *dev, char *err, size_t errlen)
{
    static const struct xd_ops *const regular[] = {&xd_file_ops, &xd_stats_ops, NULL};
    static const struct xd_ops *const mmap[] = {&xd_mmap_ops, &xd_stats_ops, NULL};
    static const struct xd_ops *const tmpfs[] = {&xd_file_ops, &xd_tmpfs_ops, &xd_stats_ops, NULL};
    static const struct xd_ops *const block[] = {&xd_block_ops, &xd_stats_ops, NULL};

    switch (dev->cfg->storage_type) {
    case XD_TYPE_REGULAR:
    case XD_TYPE_DIRECT: /* the file driver reads storage_type for O_DIRECT */
        return types_push_all(dev, regular, err, errlen);
    case XD_TYPE_MMAP:
        return types_push_all(dev, mmap, err, errlen);
    case XD_TYPE_TMPFS:
        return types_push_all(dev, tmpfs, err, errlen);
    case XD_TYPE_BLOCK:
        return types_push_all(dev, block, err, errlen);
    default:
        xd_errf(err, errlen, "storage_type=%s: this type is not built yet; allowed: regular|mmap|direct|tmpfs|block",
                xd_enum_name(XD_KEY_storage_type, dev->cfg->storage_type));
        return -EINVAL;
    }
}
