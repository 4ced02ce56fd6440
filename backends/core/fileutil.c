/* fileutil.c - file and directory chores the drivers and layers share. */
#include "fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "../xdevice.h"

int xd_mkdir_p(const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    struct stat st;
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, mode) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, mode) && errno != EEXIST)
        return -errno;
    if (stat(dir, &st))
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int xd_mkdir_parents(const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return xd_mkdir_p(dir, mode);
}

int64_t xd_file_set_size(const struct xd_config *cfg, int fd, uint64_t size)
{
    struct stat st;
    int64_t reserved = 0;
    if (fstat(fd, &st))
        return -errno;
    if (cfg->preallocate_files && cfg->use_fallocate) {
        uint64_t extent = (uint64_t)cfg->extent_size;
        reserved = (int64_t)((size + extent - 1) / extent * extent);
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)reserved))
            return -errno;
    }
    if ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size))
        return -errno;
    return reserved;
}

int xd_path_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st))
        return -errno;
    if (!S_ISBLK(st.st_mode)) {
        *size = (uint64_t)st.st_size;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
    close(fd);
    return rc;
}

/* A partition has no queue/ of its own: its disk's is one level up. */
uint64_t xd_device_readahead(int fd)
{
    static const char *const where[] = {"/sys/dev/block/%u:%u/queue/read_ahead_kb",
                                        "/sys/dev/block/%u:%u/../queue/read_ahead_kb"};
    struct stat st;
    unsigned long long kb;
    if (fstat(fd, &st))
        return 0;
    dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    for (unsigned i = 0; i < 2; i++) {
        char path[96];
        snprintf(path, sizeof(path), where[i], major(dev), minor(dev));
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        int ok = fscanf(fp, "%llu", &kb) == 1;
        fclose(fp);
        if (ok)
            return kb * 1024;
    }
    return 0;
}
