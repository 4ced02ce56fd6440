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
 */
#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#include "checksum_internal.h"

/* 1 with what the mark names in was (the sidecar it was made with), 0 when
 * the file has none, -errno where marks cannot be read here. */
int cs_mark_read(const char *data, char *was, size_t len)
{
    ssize_t n = lgetxattr(data, CS_MARK_XATTR, was, len - 1);
    if (n < 0 && errno == ERANGE) { /* named a longer path than was holds */
        was[0] = '\0';
        return 1;
    }
    if (n < 0)
        return errno == ENODATA ? 0 : -errno;
    was[n] = '\0';
    return 1;
}

/* Mark data as having the sidecar side. 0 or -errno (-ENOTSUP, -EPERM for
 * a device node: user attributes are for files and directories only). */
int cs_mark_write(const char *data, const char *side)
{
    return lsetxattr(data, CS_MARK_XATTR, side, strlen(side), 0) ? -errno : 0;
}
