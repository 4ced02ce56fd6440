/* chain.h - the drivers and layers the storage types are made of, for
 * backends/types.c (which assembles them) and the few layers that build
 * inner chains of their own (the hybrid type's tiers). Never installed;
 * the core does not include it. */
#ifndef XD_CHAIN_H
#define XD_CHAIN_H

#include "core/xd_internal.h"

/* Drivers: the bottom of a chain, touching the OS. */
extern const struct xd_ops xd_file_ops;
extern const struct xd_ops xd_file_direct_ops; /* the file driver, always O_DIRECT */
extern const struct xd_ops xd_mmap_ops;
extern const struct xd_ops xd_block_ops;
extern const struct xd_ops xd_compress_ops; /* its own container format over files */

/* Layers. */
extern const struct xd_ops xd_tmpfs_ops;
extern const struct xd_ops xd_stats_ops;
extern const struct xd_ops xd_sparse_ops;
extern const struct xd_ops xd_cache_ops;
extern const struct xd_ops xd_tier_ops;
extern const struct xd_ops xd_fault_ops;    /* just above the driver */
extern const struct xd_ops xd_checksum_ops;
extern const struct xd_ops xd_mirror_ops;
extern const struct xd_ops xd_retry_ops;
extern const struct xd_ops xd_checkpoint_ops; /* just under stats */

/* The compressed type's containers (drivers/compressed/files.c): the type's
 * path_prepare and path_size. */
int xd_compress_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                        uint64_t *logical, char *err, size_t errlen);
int xd_compress_logical_size(const char *path, uint64_t *size, char *err, size_t errlen);

/* The hybrid type's cold file for a caller's path (layers/tier_type.c). */
int xd_tier_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                    uint64_t *logical, char *err, size_t errlen);
int xd_tier_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                         size_t errlen);

/* The tmpfs type's xd_path_logical_size and xd_path_prepare (layers/tmpfs.c). */
int xd_tmpfs_path_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                       size_t errlen);
int xd_tmpfs_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                     uint64_t *logical, char *err, size_t errlen);
/* Whether dir (or its nearest existing ancestor) is on a tmpfs; the line in
 * err names key (layers/tmpfs.c). */
int xd_tmpfs_check_dir(const struct xd_config *cfg, enum xd_key key, const char *dir, char *err,
                       size_t errlen);

#endif
