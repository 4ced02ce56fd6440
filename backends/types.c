/* types.c - the storage types: one entry each, naming the driver (and any
 * layer always there) at the bottom of its chain, what it can do, what its
 * callers must know (XD_CFG_*), its own config checks and, for types with a
 * format of their own, how a path is made ready and sized. The core asks
 * these entries (xd_type_of) and never compares type names.
 *
 * Every chain is the type's base with the common layers over it, those
 * its config asks for (common_layers below, bottom first):
 *
 *   stats -> [checkpoint] -> [cache] -> [retry] -> [mirror] -> [checksum] -> [sparse] -> [fault] -> base
 *
 *   regular     file
 *   direct      file (O_DIRECT, io_alignment)
 *   mmap        mmap
 *   tmpfs       tmpfs -> file (on a tmpfs mount, optional backup)
 *   block       block
 *   sparse      file, with the sparse layer always over it
 *   compressed  compress (a driver: owns its container files, see
 *               drivers/compressed/compressed.c)
 *   hybrid      tier (two inner devices: the tmpfs chain for hot extents,
 *               cold_storage_type's chain for all; see tier.c)
 *
 * [sparse] is there when enable_sparse=true on a type with XD_TYPE_HOLES.
 * The cache sits right under stats, so it sees what the caller asked for:
 * the compressed type's logical data, the sparse layer's zeros.
 *
 * Adding a type: a line in XD_STORAGE_TYPES (core/config_schema.h) and its
 * xd_type_<name> entry here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chain.h"
#include "core/config.h"

static const struct xd_ops *const file_chain[] = {&xd_file_ops, NULL};

static const struct xd_type xd_type_regular = {
    .name = "regular",
    .base = file_chain,
    .flags = XD_TYPE_HOLES | XD_TYPE_DIRECT_IO | XD_TYPE_SEARCHED,
    .config_caps = XD_CFG_PLAIN_FILE,
};

static const struct xd_type xd_type_direct = {
    .name = "direct",
    .sets = (const int[]){XD_KEY_use_direct_io, -1},
    .base = (const struct xd_ops *const[]){&xd_file_direct_ops, NULL},
    .flags = XD_TYPE_HOLES | XD_TYPE_DIRECT_IO | XD_TYPE_SEARCHED,
    .config_caps = XD_CFG_PLAIN_FILE,
};

static const struct xd_type xd_type_mmap = {
    .name = "mmap",
    .sets = (const int[]){XD_KEY_use_mmap, -1},
    .base = (const struct xd_ops *const[]){&xd_mmap_ops, NULL},
    .flags = XD_TYPE_MMAP_IO | XD_TYPE_SEARCHED,
    .config_caps = XD_CFG_PLAIN_FILE,
};

static const struct xd_type xd_type_tmpfs = {
    .name = "tmpfs",
    .base = (const struct xd_ops *const[]){&xd_file_ops, &xd_tmpfs_ops, NULL},
    .flags = XD_TYPE_HOLES | XD_TYPE_SEARCHED,
    .path_prepare = xd_tmpfs_prepare,
    .path_size = xd_tmpfs_path_size,
};

/* A checkpoint is a copy of files in a directory: a whole device copied on
 * every interval, and restored by rename, is not what a block user wants. */
static int block_check(const struct xd_config *cfg, char *err, size_t errlen)
{
    if (cfg->enable_checkpoints)
        return xd_config_conflict(cfg, XD_KEY_enable_checkpoints, XD_KEY_storage_type, "checkpoints copy files, not block devices; allowed with every type but block", err, errlen);
    /* beside the device node, a sidecar would live on /dev's devtmpfs: gone
     * at the next boot, and every block of the disk unchecked from then on */
    if (cfg->enable_checksums && !cfg->checksum_directory[0]) {
        xd_errf(err, errlen, "%s: enable_checksums=true on the block type needs checksum_directory; allowed: a directory on a persistent file system for the sidecar",
                xd_config_key_origin(cfg, XD_KEY_enable_checksums));
        return -EINVAL;
    }
    return 0;
}

static const struct xd_type xd_type_block = {
    .name = "block",
    .base = (const struct xd_ops *const[]){&xd_block_ops, NULL},
    .flags = XD_TYPE_DIRECT_IO,
    .check = block_check,
    .config_caps = XD_CFG_TRIM_KEY,
};

static const struct xd_type xd_type_sparse = {
    .name = "sparse",
    .sets = (const int[]){XD_KEY_enable_sparse, -1},
    .base = file_chain,
    .flags = XD_TYPE_HOLES | XD_TYPE_DIRECT_IO | XD_TYPE_SEARCHED,
    .config_caps = XD_CFG_PLAIN_FILE | XD_CFG_HOLES,
};

static int compressed_check(const struct xd_config *cfg, char *err, size_t errlen)
{
    static const char why[] =
        "the compressed type reads and writes its container through the page cache";
    if (cfg->use_direct_io)
        return xd_config_conflict(cfg, XD_KEY_use_direct_io, XD_KEY_storage_type, why, err, errlen);
    if (!cfg->enable_page_cache)
        return xd_config_conflict(cfg, XD_KEY_enable_page_cache, XD_KEY_storage_type, why, err,
                                  errlen);
    return 0;
}

static int compressed_size(const struct xd_config *cfg, const char *path, uint64_t *size,
                           char *err, size_t errlen)
{
    return xd_compress_logical_size(path, size, err, errlen);
}

static const struct xd_type xd_type_compressed = {
    .name = "compressed",
    .base = (const struct xd_ops *const[]){&xd_compress_ops, NULL},
    .flags = XD_TYPE_COMPRESS | XD_TYPE_SEARCHED,
    .config_caps = XD_CFG_OWN_FORMAT,
    .check = compressed_check,
    .path_prepare = xd_compress_prepare,
    .path_size = compressed_size,
};

/* The hybrid type builds a tmpfs chain and a cold chain from copies of this
 * config; what cannot hold for both is refused here, by name. */
static int hybrid_check(const struct xd_config *cfg, char *err, size_t errlen)
{
    /* cold_storage_type indexes its own list, not the storage types' */
    bool cold_compressed =
        !strcmp(xd_enum_name(XD_KEY_cold_storage_type, cfg->cold_storage_type), "compressed");
    if (cfg->cold_enable_compression && !cold_compressed && cfg->origin[XD_KEY_cold_storage_type])
        return xd_config_conflict(cfg, XD_KEY_cold_enable_compression, XD_KEY_cold_storage_type, "a compressed cold tier is cold_storage_type=compressed", err, errlen);
    if (cfg->use_direct_io)
        return xd_config_conflict(cfg, XD_KEY_use_direct_io, XD_KEY_storage_type, "the hybrid type's hot tier is a tmpfs; set cold_storage_type=direct for O_DIRECT on the cold tier", err, errlen);
    if (cfg->enable_sparse)
        return xd_config_conflict(cfg, XD_KEY_enable_sparse, XD_KEY_storage_type, "set cold_storage_type=sparse for holes in the cold tier", err, errlen);
    if (cfg->use_sync_writes && cfg->tier_write_back)
        return xd_config_conflict(cfg, XD_KEY_use_sync_writes, XD_KEY_tier_write_back, "write-back completes writes in the hot tier, before the cold file has them; set tier_write_back=false", err, errlen);
    int rc = xd_config_check_power_of_two(cfg, XD_KEY_tier_extent_size, err, errlen);
    if (rc)
        return rc;
    if (cfg->hot_cache_size < cfg->tier_extent_size) {
        xd_errf(err, errlen, "%s: hot_cache_size=%" PRId64 ": smaller than tier_extent_size=%" PRId64 "; allowed: at least one extent",
                xd_config_key_origin(cfg, XD_KEY_hot_cache_size), cfg->hot_cache_size, cfg->tier_extent_size);
        return -EINVAL;
    }
    return 0;
}

/* The tiers' chains are the tier layer's inner devices (tier.c). */
static const struct xd_type xd_type_hybrid = {
    .name = "hybrid",
    .base = (const struct xd_ops *const[]){&xd_tier_ops, NULL},
    .config_caps = XD_CFG_OWN_FORMAT,
    .check = hybrid_check,
    .path_prepare = xd_tier_prepare,
    .path_size = xd_tier_logical_size,
};

#define XD_TYPE_ENTRY(id, name) [XD_TYPE_##id] = &xd_type_##name,
static const struct xd_type *const types[XD_TYPE_COUNT] = {XD_STORAGE_TYPES(XD_TYPE_ENTRY)};

const struct xd_type *xd_type_of(const struct xd_config *cfg) { return types[cfg->storage_type]; }

void xd_type_names_with(unsigned flags, char *buf, size_t len)
{
    unsigned n = 0, total = 0;
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < XD_TYPE_COUNT; i++)
        total += (types[i]->flags & flags) == flags;
    for (int i = 0; i < XD_TYPE_COUNT && used < len; i++) {
        if ((types[i]->flags & flags) != flags)
            continue;
        n++;
        const char *sep = n == 1 ? "" : n == total ? " and " : ", ";
        used += (size_t)snprintf(buf + used, len - used, "%s%s", sep, types[i]->name);
    }
}

void xd_type_choices_with(unsigned flags, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < XD_TYPE_COUNT && used < len; i++)
        if ((types[i]->flags & flags) == flags)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "|" : "",
                                     types[i]->name);
}

/* The common layers over a type's base, bottom first, and when each is
 * there. Order matters: fault right above the driver, so every layer above
 * meets real failures; checksum over the data as stored (holes included);
 * mirror over checksummed copies, so a mismatch is served from another
 * copy; retry above them all; the cache sees what the caller asked for;
 * checkpoints over the cache, so a flush has emptied it below them; stats
 * on top, timing all of it. */
static bool want_fault(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_fault_injection;
}
static bool want_sparse(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_sparse || (t->config_caps & XD_CFG_HOLES);
}
static bool want_checksum(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_checksums;
}
static bool want_mirror(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_redundancy;
}
static bool want_retry(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->max_retries > 0;
}
static bool want_cache(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_read_cache || cfg->trace[0];
}
static bool want_checkpoint(const struct xd_config *cfg, const struct xd_type *t)
{
    return cfg->enable_checkpoints;
}
static bool always(const struct xd_config *cfg, const struct xd_type *t) { return true; }

static const struct {
    const struct xd_ops *ops;
    bool (*wanted)(const struct xd_config *cfg, const struct xd_type *t);
} common_layers[] = {
    {&xd_fault_ops, want_fault},   {&xd_sparse_ops, want_sparse}, {&xd_checksum_ops, want_checksum},
    {&xd_mirror_ops, want_mirror}, {&xd_retry_ops, want_retry},   {&xd_cache_ops, want_cache},
    {&xd_checkpoint_ops, want_checkpoint}, {&xd_stats_ops, always},
};

#define N_COMMON_LAYERS (sizeof(common_layers) / sizeof(common_layers[0]))
_Static_assert(XD_TYPE_BASE_MAX + N_COMMON_LAYERS <= XD_MAX_LAYERS,
               "a type's base under every common layer must fit XD_MAX_LAYERS");

int xd_types_build(struct xd_dev *dev, char *err, size_t errlen)
{
    const struct xd_config *cfg = dev->cfg;
    const struct xd_type *type = xd_type_of(cfg);
    int rc = 0;
    for (const struct xd_ops *const *ops = type->base; *ops && !rc; ops++)
        rc = xd_dev_push(dev, *ops, err, errlen);
    for (size_t i = 0; i < N_COMMON_LAYERS && !rc; i++)
        if (common_layers[i].wanted(cfg, type))
            rc = xd_dev_push(dev, common_layers[i].ops, err, errlen);
    return rc;
}

unsigned xd_config_caps(const struct xd_config *cfg)
{
    const struct xd_type *type = xd_type_of(cfg);
    unsigned caps = type->config_caps;
    if (cfg->enable_sparse && (type->flags & XD_TYPE_HOLES))
        caps |= XD_CFG_HOLES;
    if (type == &xd_type_tmpfs && !cfg->backup_to_disk)
        caps |= XD_CFG_DATA_ELSEWHERE;
    if (want_checksum(cfg, type))
        caps |= XD_CFG_WRITES_RECORDED;
    return caps;
}
