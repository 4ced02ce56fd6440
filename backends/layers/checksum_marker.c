/* checksum_marker.c - the data file's mark that it has a checksum sidecar.
 *
 * The sidecar alone cannot say it is missing: a data file whose sidecar
 * was deleted looks like a file that never had one, and a sidecar of
 * another file put in its place like a stale one left from a file made
 * again without the layer. Both used to start over without a word, every
 * block then read unchecked, a corrupt one as data. So the data file itself
 * carries a user extended attribute, CS_MARK_XATTR, from the open that made
 * its sidecar on: a marked file whose sidecar is missing or describes
 * another file is refused at open (cs_header_check). The mark names the
 * sidecar it was made with, for the refusal's line.
 *
 * It works on ext4, xfs, btrfs and tmpfs (since Linux 6.6). Where it does
 * not (a device node: the block type; a file system without user xattrs)
 * nothing is marked and the layer says so once, at the open that made the
 * sidecar. A data file copied with its attributes (cp -a) carries the mark
 * to a new file: its open is refused, the line says how to start over.
 *
 * After the sidecar's path the mark holds, past a NUL, the data file's
 * identity as the sidecar's header names it (device, inode, birth time,
 * CS_MARK_ID bytes). A file moved to another file system with its sidecar
 * (mv, cp -a of both) has a new inode and birth time, so its header names
 * another file; the mark travelled with it and names the same one as the
 * header: the two were made together, and the open takes the sidecar
 * (cs_header_check). Another file's sidecar put in its place names a file
 * the mark does not: refused as before. Marks of the first builds hold the
 * path alone.
 *
 * Last, the data file's size as the layer last saw it (at open and at each
 * close): data past it that the file holds at the next open was written
 * without the layer (psync appending, fio's file_append with another
 * engine). Its empty entries are tagged unchecked then, as the data of a
 * file that had no sidecar yet, rather than read as entries the sidecar
 * lost (EIO) where psync reads the data. A read-only open writes neither
 * the tags nor the mark: it holds them unchecked in memory
 * (cs_file.appended_from).
 */
#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#include "checksum_internal.h"

/* 1 with what the mark names in was (the sidecar it was made with), 0 when
 * the file has none, -errno where marks cannot be read here. With id, the
 * identity past the path (CS_MARK_ID bytes) goes there, all zeros where the
 * mark holds none; with end, the data file's size as the layer last saw it
 * (CS_MARK_NO_END where the mark holds none). */
int cs_mark_read_all(const char *data, char *was, size_t len, unsigned char *id, uint64_t *end)
{
    char buf[4096 + 1 + CS_MARK_ID + 8];
    if (id)
        memset(id, 0, CS_MARK_ID);
    if (end)
        *end = CS_MARK_NO_END;
    ssize_t n = lgetxattr(data, CS_MARK_XATTR, buf, sizeof(buf));
    if (n < 0 && errno == ERANGE) { /* named a longer path than buf holds */
        if (len)
            was[0] = '\0';
        return 1;
    }
    if (n < 0)
        return errno == ENODATA ? 0 : -errno;
    size_t path = strnlen(buf, (size_t)n);
    if (len) {
        size_t keep = path < len - 1 ? path : len - 1;
        memcpy(was, buf, keep);
        was[keep] = '\0';
    }
    if (id && (size_t)n >= path + 1 + CS_MARK_ID)
        memcpy(id, buf + path + 1, CS_MARK_ID);
    if (end && (size_t)n == path + 1 + CS_MARK_ID + 8)
        memcpy(end, buf + path + 1 + CS_MARK_ID, 8);
    return 1;
}

int cs_mark_read_id(const char *data, char *was, size_t len, unsigned char *id)
{
    return cs_mark_read_all(data, was, len, id, NULL);
}

int cs_mark_read(const char *data, char *was, size_t len)
{
    return cs_mark_read_all(data, was, len, NULL, NULL);
}

/* Mark data as having the sidecar side, made for the data file of identity
 * id (CS_MARK_ID bytes), which holds end bytes as the layer sees it. 0 or
 * -errno (-ENOTSUP, -EPERM for a device node: user attributes are for files
 * and directories only). */
int cs_mark_write(const char *data, const char *side, const unsigned char *id, uint64_t end)
{
    char buf[4096 + 1 + CS_MARK_ID + 8];
    size_t path = strlen(side);
    if (path >= 4096)
        path = 4095;
    memcpy(buf, side, path);
    buf[path] = '\0';
    memcpy(buf + path + 1, id, CS_MARK_ID);
    memcpy(buf + path + 1 + CS_MARK_ID, &end, 8);
    return lsetxattr(data, CS_MARK_XATTR, buf, path + 1 + CS_MARK_ID + 8, 0) ? -errno : 0;
}
