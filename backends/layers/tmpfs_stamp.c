/* tmpfs_stamp.c - the tmpfs layer's stamps (tmpfs_stamp.h): beside each
 * tmpfs copy, a small file saying what the disk file P was (device, inode,
 * size, mtime, ctime) when the copy last held exactly its data, loaded from it or
 * backed up to it, and whether the copy was written through xdevice since.
 * The layer (tmpfs.c) uses a copy only while its stamp says it is current
 * with P, and backs up over P only while P is what the stamp says. Apart from tmpfs.c because it is one question, asked of
 * bytes and stat(2) alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "tmpfs_stamp.h"

/* The stamp's name for the copy data_name; one with no room for the suffix
 * keeps its tail behind a hash of the whole. NULL: no memory. */
char *xd_tmpfs_stamp_name(const char *data_name)
{
    size_t n = strlen(data_name), room = NAME_MAX - strlen(TMPFS_STAMP_SUFFIX);
    char *out = NULL;
    int rc = n <= room ? asprintf(&out, "%s%s", data_name, TMPFS_STAMP_SUFFIX)
                       : asprintf(&out, "%016llx-%s%s", (unsigned long long)xd_tmpfs_hash(data_name),
                                  data_name + n - (room - 17), TMPFS_STAMP_SUFFIX);
    return rc < 0 ? NULL : out;
}

struct tmpfs_stamp xd_tmpfs_stamp_of(const struct stat *copy, const struct stat *disk)
{
    return (struct tmpfs_stamp){
        .copy_dev = copy->st_dev, .copy_ino = copy->st_ino,
        .disk_dev = disk->st_dev, .disk_ino = disk->st_ino, .disk_size = disk->st_size,
        .mtime_sec = disk->st_mtim.tv_sec, .mtime_nsec = disk->st_mtim.tv_nsec,
        .ctime_sec = disk->st_ctim.tv_sec, .ctime_nsec = disk->st_ctim.tv_nsec,
        .ctime_known = true,
    };
}

#define TMPFS_STAMP_FORMAT "xdevice tmpfs stamp 3 copy %llu:%llu disk %llu:%llu size %lld mtime %lld.%lld ctime %lld.%lld writes %d pending %d %llu:%llu size %lld mtime %lld.%lld"
/* What stamps said before they kept whether the copy was written since
 * (2), and before they kept P's ctime (1): still read, so a copy current
 * with P stays in use across the upgrade, taken as written (nothing says
 * it was not: a killed run's writes may be in it). */
#define TMPFS_STAMP_FORMAT_2 "xdevice tmpfs stamp 2 copy %llu:%llu disk %llu:%llu size %lld mtime %lld.%lld ctime %lld.%lld"
#define TMPFS_STAMP_FORMAT_1 "xdevice tmpfs stamp 1 copy %llu:%llu disk %llu:%llu size %lld mtime %lld.%lld"

/* A stamp of format 1 or 2 in buf: false when it is neither. */
static bool tmpfs_stamp_parse_old(const char *buf, struct tmpfs_stamp *s)
{
    s->writes = true;
    s->ctime_known = sscanf(buf, TMPFS_STAMP_FORMAT_2, &s->copy_dev, &s->copy_ino, &s->disk_dev,
                            &s->disk_ino, &s->disk_size, &s->mtime_sec, &s->mtime_nsec,
                            &s->ctime_sec, &s->ctime_nsec) == 9;
    return s->ctime_known ||
           sscanf(buf, TMPFS_STAMP_FORMAT_1, &s->copy_dev, &s->copy_ino, &s->disk_dev,
                  &s->disk_ino, &s->disk_size, &s->mtime_sec, &s->mtime_nsec) == 7;
}

/* false when there is none (an empty file: made just now) or it is torn. */
bool xd_tmpfs_stamp_read(int fd, struct tmpfs_stamp *s)
{
    char buf[TMPFS_STAMP_LEN + 1];
    int writes = 0, pending = 0;
    ssize_t n = TMPFS_RETRY(pread(fd, buf, TMPFS_STAMP_LEN, 0));
    if (n <= 0)
        return false;
    buf[n] = '\0';
    *s = (struct tmpfs_stamp){0};
    if (sscanf(buf, TMPFS_STAMP_FORMAT, &s->copy_dev, &s->copy_ino, &s->disk_dev, &s->disk_ino,
               &s->disk_size, &s->mtime_sec, &s->mtime_nsec, &s->ctime_sec, &s->ctime_nsec,
               &writes, &pending, &s->pending_dev, &s->pending_ino, &s->pending_size,
               &s->pending_mtime_sec, &s->pending_mtime_nsec) != 16)
        return tmpfs_stamp_parse_old(buf, s);
    s->ctime_known = true;
    s->writes = writes != 0;
    s->pending = pending != 0;
    return true;
}

/* Always TMPFS_STAMP_LEN bytes at 0, space-padded: rewriting it on a full
 * tmpfs reuses its page, so a backup never fails for want of a stamp. */
int xd_tmpfs_stamp_write(int fd, const struct tmpfs_stamp *s)
{
    char buf[TMPFS_STAMP_LEN];
    memset(buf, ' ', sizeof(buf));
    int n = snprintf(buf, sizeof(buf), "xdevice tmpfs stamp 3 copy %llu:%llu disk %llu:%llu size %lld mtime %lld.%09lld ctime %lld.%09lld writes %d pending %d %llu:%llu size %lld mtime %lld.%09lld",
                     s->copy_dev, s->copy_ino, s->disk_dev, s->disk_ino, s->disk_size,
                     s->mtime_sec, s->mtime_nsec, s->ctime_sec, s->ctime_nsec, s->writes,
                     s->pending, s->pending_dev, s->pending_ino, s->pending_size,
                     s->pending_mtime_sec, s->pending_mtime_nsec);
    if (n < 0 || n >= (int)sizeof(buf))
        return -EOVERFLOW;
    buf[n] = ' '; /* snprintf's terminator */
    buf[sizeof(buf) - 1] = '\n';
    ssize_t w = TMPFS_RETRY(pwrite(fd, buf, sizeof(buf), 0));
    return w == (ssize_t)sizeof(buf) ? 0 : w < 0 ? -errno : -EIO;
}

/* P's device number need not survive a remount (a loop image attached to
 * another /dev/loopN, disks enumerated in another order at boot); its inode
 * and times do. With P's ctime known, which no program can set, the same
 * inode, size, mtime and ctime to the nanosecond are the same file under a
 * new number: before, such a P counted as changed on disk, its copy was
 * loaded again or, holding writes P lacks, refused. Stamps of format 1 (no
 * ctime) still go by the number. */
bool xd_tmpfs_disk_unchanged(const struct tmpfs_stamp *s, const struct stat *disk)
{
    return (s->disk_dev == (unsigned long long)disk->st_dev || s->ctime_known) &&
           s->disk_ino == (unsigned long long)disk->st_ino && s->disk_size == disk->st_size &&
           s->mtime_sec == disk->st_mtim.tv_sec && s->mtime_nsec == disk->st_mtim.tv_nsec &&
           (!s->ctime_known ||
            (s->ctime_sec == disk->st_ctim.tv_sec && s->ctime_nsec == disk->st_ctim.tv_nsec));
}

void xd_tmpfs_stamp_pending(struct tmpfs_stamp *s, const struct stat *made)
{
    s->pending = true;
    s->pending_dev = made->st_dev;
    s->pending_ino = made->st_ino;
    s->pending_size = made->st_size;
    s->pending_mtime_sec = made->st_mtim.tv_sec;
    s->pending_mtime_nsec = made->st_mtim.tv_nsec;
}

bool xd_tmpfs_disk_is_pending(const struct tmpfs_stamp *s, const struct stat *disk)
{
    return s->pending && s->pending_dev == (unsigned long long)disk->st_dev &&
           s->pending_ino == (unsigned long long)disk->st_ino &&
           s->pending_size == disk->st_size && s->pending_mtime_sec == disk->st_mtim.tv_sec &&
           s->pending_mtime_nsec == disk->st_mtim.tv_nsec;
}

bool xd_tmpfs_stamp_for_copy(int dirfd, const char *data_name, int stamp_fd, struct tmpfs_stamp *s)
{
    struct stat copy;
    return xd_tmpfs_stamp_read(stamp_fd, s) &&
           !fstatat(dirfd, data_name, &copy, AT_SYMLINK_NOFOLLOW) &&
           s->copy_dev == (unsigned long long)copy.st_dev &&
           s->copy_ino == (unsigned long long)copy.st_ino;
}

/* Whether the copy data_name in dirfd is current with P (disk): its stamp
 * (stamp_fd) speaks for this very copy and says P has not changed since. */
bool xd_tmpfs_copy_current(int dirfd, const char *data_name, int stamp_fd,
                               const struct stat *disk)
{
    struct tmpfs_stamp s;
    return xd_tmpfs_stamp_for_copy(dirfd, data_name, stamp_fd, &s) &&
           xd_tmpfs_disk_unchanged(&s, disk);
}

/* The same for a caller without a device, from the copy's path; the stamp
 * read without its lock (one being rewritten reads as not current: the
 * open loads P, whose size that caller then gets). */
bool xd_tmpfs_copy_current_at(const char *copy, const struct stat *disk)
{
    const char *name = strrchr(copy, '/') + 1;
    char *dir = strndup(copy, (size_t)(name - copy)), *stamp = xd_tmpfs_stamp_name(name);
    int dirfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int fd = dirfd >= 0 && stamp ? openat(dirfd, stamp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    bool current = fd >= 0 && xd_tmpfs_copy_current(dirfd, name, fd, disk);
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    free(stamp);
    free(dir);
    return current;
}

/* Far past any stamp's bytes: a lock needs no data under it. */
#define TMPFS_PRESENCE_BYTE ((off_t)1 << 30)

static struct flock tmpfs_presence_range(short type)
{
    return (struct flock){.l_type = type, .l_whence = SEEK_SET, .l_start = TMPFS_PRESENCE_BYTE,
                          .l_len = 1};
}

int xd_tmpfs_presence_hold(int dirfd, const char *stamp_name, mode_t mode)
{
    int fd = xd_open_own_at(dirfd, stamp_name, O_RDWR, mode);
    if (fd < 0)
        return fd;
    struct flock l = tmpfs_presence_range(F_RDLCK);
    if (TMPFS_RETRY(fcntl(fd, F_OFD_SETLK, &l))) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* A write lock over the byte would conflict with any other open's read
 * lock; our own (the same open file description) never conflicts. */
bool xd_tmpfs_others_present(int fd)
{
    struct flock l = tmpfs_presence_range(F_WRLCK);
    return fd < 0 || TMPFS_RETRY(fcntl(fd, F_OFD_GETLK, &l)) || l.l_type != F_UNLCK;
}
