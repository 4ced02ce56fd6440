/* tmpfs_stamp.h - private to the tmpfs layer (tmpfs.c, tmpfs_stamp.c): the
 * stamp beside each tmpfs copy, which says whether the copy is current with
 * the disk file P, and what both files share.
 */
#ifndef XD_TMPFS_STAMP_H
#define XD_TMPFS_STAMP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* Retry a call that returns -1 with errno EINTR, as the drivers do. */
#define TMPFS_RETRY(expr)                                                      \
    ({                                                                         \
        long _r;                                                               \
        do                                                                     \
            _r = (long)(expr);                                                 \
        while (_r == -1 && errno == EINTR);                                    \
        _r;                                                                    \
    })

static inline uint64_t xd_tmpfs_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* A copy's stamp is named after it with this suffix. A copy's name holds
 * '%' only in %2F and %25, so no copy (nor a checksum sidecar or hybrid tag
 * named after one) is ever called that. */
#define TMPFS_STAMP_SUFFIX "%xdstamp"
#define TMPFS_STAMP_LEN    512 /* written whole, in place: never needs new space (one page) */

/* What P was (device, inode, size, mtime, ctime) when the copy (device,
 * inode) last held exactly its data: loaded from it or backed up to it.
 * The ctime as well as the mtime: a program can set mtime back (touch -m
 * -r, cp -p, rsync -t over P), nobody can set ctime. So the stamp is taken
 * from P as it is after the rename that puts a backup there (a rename
 * moves the ctime), once its times are settled (xd_stat_settled). A stamp
 * from before ctimes were kept (ctime_known false) is compared as it was
 * taken: by the mtime. writes: the copy has been written through xdevice
 * since (set before the first such write is acknowledged), so it holds
 * data P lacks; a stamp from before it was kept says so, not knowing.
 * pending: a backup's new file (device, inode, size, mtime), named before
 * its rename over P and cleared by the stamp the backup writes after it;
 * an open that finds P to be that file knows P is its own backup of the
 * copy, placed by a process killed before it could stamp it (the rename
 * moves P's ctime, so the file cannot be named by it in advance). */
struct tmpfs_stamp {
    unsigned long long copy_dev, copy_ino, disk_dev, disk_ino;
    long long disk_size, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
    bool ctime_known, writes;
    bool pending;
    unsigned long long pending_dev, pending_ino;
    long long pending_size, pending_mtime_sec, pending_mtime_nsec;
};

/* The stamp's name for the copy data_name; NULL: no memory. */
char *xd_tmpfs_stamp_name(const char *data_name);
struct tmpfs_stamp xd_tmpfs_stamp_of(const struct stat *copy, const struct stat *disk);
/* false when there is none (an empty file: made just now) or it is torn. */
bool xd_tmpfs_stamp_read(int fd, struct tmpfs_stamp *s);
/* 0, or -errno: written whole, in place. */
int xd_tmpfs_stamp_write(int fd, const struct tmpfs_stamp *s);
bool xd_tmpfs_disk_unchanged(const struct tmpfs_stamp *s, const struct stat *disk);
/* Name made (a backup's new file, not yet renamed over P) as pending in s. */
void xd_tmpfs_stamp_pending(struct tmpfs_stamp *s, const struct stat *made);
/* Whether P (disk) is the file s names as pending: a backup of the copy. */
bool xd_tmpfs_disk_is_pending(const struct tmpfs_stamp *s, const struct stat *disk);
/* Whether the stamp (stamp_fd, read into s) speaks for the copy data_name
 * in dirfd, this very file (one removed and made again has none). */
bool xd_tmpfs_stamp_for_copy(int dirfd, const char *data_name, int stamp_fd, struct tmpfs_stamp *s);
/* Whether the copy data_name in dirfd is current with P (disk), by its
 * stamp (stamp_fd); _at: from the copy's path, for a caller without a
 * device. */
bool xd_tmpfs_copy_current(int dirfd, const char *data_name, int stamp_fd, const struct stat *disk);
bool xd_tmpfs_copy_current_at(const char *copy, const struct stat *disk);

/* Presence: each open of a copy with backups holds a read lock on one byte
 * of the copy's stamp (an OFD lock, apart from the flock that orders
 * stamp updates), for as long as it is open; the kernel drops it when the
 * process dies. The held descriptor, or -errno. */
int xd_tmpfs_presence_hold(int dirfd, const char *stamp_name, mode_t mode);
/* Whether another open (another process, or another device in this one)
 * holds its presence beside ours (fd, from xd_tmpfs_presence_hold); true
 * when it cannot be told (fd < 0). */
bool xd_tmpfs_others_present(int fd);

#endif
