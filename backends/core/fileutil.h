/* fileutil.h - file and directory chores the drivers and layers share. */
#ifndef XD_FILEUTIL_H
#define XD_FILEUTIL_H

#include <stdint.h>
#include <sys/types.h>

struct xd_config;

/* mkdir -p. 0 or -errno; -ENOTDIR when path exists as something else. */
int xd_mkdir_p(const char *path, mode_t mode);
/* mkdir -p of the directory holding path. */
int xd_mkdir_parents(const char *path, mode_t mode);
/* Make a new file at least size bytes long. With preallocate_files (and
 * use_fallocate) its space is reserved up front in extent_size steps, so it is
 * laid out in large extents rather than grown block by block by random
 * writes. Returns the bytes reserved (0 when none) or -errno. */
int64_t xd_file_set_size(const struct xd_config *cfg, int fd, uint64_t size);

/* The kernel's own readahead for the device holding fd's file, in bytes
 * (sysfs queue/read_ahead_kb); 0 when there is no such device (tmpfs) or it
 * cannot be read. */
uint64_t xd_device_readahead(int fd);

#endif
