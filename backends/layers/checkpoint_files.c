/* checkpoint_files.c - the checkpoint names and the copy shared by the
 * checkpoint layer and xdcheckpoint (see checkpoint.h).
 *
 * A copy is a clone when the file system can (FICLONE: btrfs, XFS with
 * reflink, bcachefs; the clone shares extents, so it costs metadata, not
 * data) and a read/write copy otherwise. Both are read for their crc32c:
 * the manifest's checksum is of the copy as stored, which is what verify
 * and restore check later.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/crc32c.h"
#include "../core/zero.h"
#include "checkpoint.h"

#define CKPT_COPY_CHUNK (1u << 20)

bool xd_ckpt_is_id(const char *name)
{
    /* YYYYmmddTHHMMSS.uuuuuuZ-NNNNNN */
    static const char shape[] = "dddddddd" "Tdddddd.ddddddZ-dddddd";
    if (strlen(name) != XD_CKPT_ID_LEN)
        return false;
    for (size_t i = 0; i < XD_CKPT_ID_LEN; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)name[i]) : name[i] != shape[i])
            return false;
    return true;
}

bool xd_ckpt_is_ours(int dirfd, const char *name)
{
    char head[sizeof(XD_CKPT_MANIFEST_HEAD)];
    struct stat st;
    if (!xd_ckpt_is_id(name))
        return false;
    int dfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return false;
    int fd = openat(dfd, XD_CKPT_MANIFEST, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    close(dfd);
    if (fd < 0)
        return false;
    ssize_t n = fstat(fd, &st) || !S_ISREG(st.st_mode) ? -1 : pread(fd, head, sizeof(head) - 1, 0);
    close(fd);
    return n == (ssize_t)sizeof(head) - 1 && !memcmp(head, XD_CKPT_MANIFEST_HEAD, sizeof(head) - 1);
}

static ssize_t ckpt_pread_full(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (!n)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int ckpt_pwrite_full(int fd, const char *buf, size_t len, off_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(fd, buf + done, len - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    return 0;
}

/* Read all of src (writing it to dst unless dst < 0; zero chunks become
 * holes), crc32c as we go. */
static int ckpt_stream(int src, int dst, uint32_t *crc, uint64_t *size)
{
    char *buf = malloc(CKPT_COPY_CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    off_t off = 0;
    *crc = 0;
    while (!rc) {
        ssize_t n = ckpt_pread_full(src, buf, CKPT_COPY_CHUNK, off);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        *crc = xd_crc32c(*crc, buf, (size_t)n);
        if (dst >= 0 && !xd_is_zero(buf, (size_t)n))
            rc = ckpt_pwrite_full(dst, buf, (size_t)n, off);
        off += n;
    }
    free(buf);
    *size = (uint64_t)off;
    /* the holes at the end are part of the size */
    if (!rc && dst >= 0 && ftruncate(dst, off))
        rc = -errno;
    return rc;
}

int xd_ckpt_crc_fd(int fd, uint32_t *crc, uint64_t *size)
{
    return ckpt_stream(fd, -1, crc, size);
}

int xd_ckpt_copy_fd(int src, int dst, bool try_clone, struct xd_ckpt_copy *out)
{
    int rc;
    out->cloned = try_clone && !ioctl(dst, FICLONE, src);
    if (out->cloned)
        rc = ckpt_stream(dst, -1, &out->crc, &out->size);
    else
        rc = ckpt_stream(src, dst, &out->crc, &out->size);
    if (!rc && fsync(dst))
        rc = -errno;
    return rc;
}
