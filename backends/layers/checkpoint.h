/* checkpoint.h - what the checkpoint layer (checkpoint.c) and its tool
 * (tools/xdcheckpoint.c) share: the names in a checkpoint directory, the
 * manifest's format tag and the copy that both take and restore with.
 * Private: never installed; the tool links libxdevice.a.
 *
 * A checkpoint directory holds one directory per checkpoint, named by its
 * id "YYYYmmddTHHMMSS.uuuuuuZ-NNNNNN" (UTC time, then a sequence number),
 * so names sort oldest first. Each holds the copies ("<i>-<name>") and
 * manifest.json, written last. One being written is ".tmp-<id>-<pid>" and
 * one being removed ".del-<id>-<pid>": a name starting with a dot is never
 * a checkpoint.
 */
#ifndef XD_CHECKPOINT_H
#define XD_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#define XD_CKPT_MANIFEST "manifest.json"
#define XD_CKPT_FORMAT   "xdevice-checkpoint-1"
/* How every manifest begins: the tag pruning trusts before removing. */
#define XD_CKPT_MANIFEST_HEAD "{\"format\":\"" XD_CKPT_FORMAT "\""
#define XD_CKPT_ID_LEN 30 /* strlen("20261204T052822.123456Z-000001") */

/* Whether name has the shape of a checkpoint id. */
bool xd_ckpt_is_id(const char *name);
/* Whether dirfd/name is a checkpoint directory of ours: an id, a real
 * directory (never through a symlink) with a manifest beginning with
 * XD_CKPT_MANIFEST_HEAD. */
bool xd_ckpt_is_ours(int dirfd, const char *name);

/* What a copy did: its bytes (the file's size), their crc32c (holes read as
 * zeros) and whether the file system cloned it (FICLONE). */
struct xd_ckpt_copy {
    uint64_t size;
    uint32_t crc;
    bool cloned;
};
/* Copy all of src into the empty dst: FICLONE when try_clone and the file
 * system shares extents, else read/write, leaving holes where src reads
 * zeros. Either way dst's crc32c is computed (a clone is read back) and
 * dst is fsync'd. 0 or -errno. */
int xd_ckpt_copy_fd(int src, int dst, bool try_clone, struct xd_ckpt_copy *out);
/* crc32c and size of all of fd's bytes. 0 or -errno. */
int xd_ckpt_crc_fd(int fd, uint32_t *crc, uint64_t *size);

#endif
