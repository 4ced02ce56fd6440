/* extentmap.c - the hybrid type's persistent extent map (docs/EXTENTMAP.md).
 *
 * One fixed-size entry per extent at a fixed place, so a state change is one
 * 16-byte pwrite that never moves anything else; each entry carries its own
 * index and a crc32c seeded with the hot tier's tag, so a torn, misplaced or
 * stale entry (one from before the hot tier was wiped) reads back as cold.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "extentmap.h"
#include "fileutil.h"
#include "turns.h"
#include "config.h"
#include "xd_internal.h"

#define EXTMAP_MAGIC   "XDTMAP01"
#define EXTMAP_VERSION 1u
#define EXTMAP_HDR_LEN 44u /* the bytes the header's crc covers, plus the crc */
#define STAMP_MAGIC    "XDSTAMP1"
#define STAMP_OFF      64u /* in the header's reserved 4096 bytes */
#define STAMP_LEN      76u /* the bytes the stamp's crc covers, plus the crc */

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The entry's checksum covers the tag too: entries written for an earlier
 * hot tier (before a reboot wiped the tmpfs) do not check out. */
static uint32_t extmap_entry_crc(uint64_t tag, const unsigned char *entry)
{
    unsigned char t[8];
    put64(t, tag);
    return xd_crc32c(xd_crc32c(0, t, 8), entry, 12);
}

void xd_extmap_encode(uint64_t tag, uint64_t i, bool hot, unsigned char out[XD_EXTMAP_ENTRY])
{
    put64(out, i);
    put32(out + 8, hot ? 1u : 0u);
    put32(out + 12, extmap_entry_crc(tag, out));
}

int xd_extmap_decode(uint64_t tag, uint64_t i, const unsigned char in[XD_EXTMAP_ENTRY])
{
    uint32_t state = get32(in + 8);
    if (get64(in) != i || state > 1 || get32(in + 12) != extmap_entry_crc(tag, in))
        return -1;
    return (int)state;
}

int xd_extmap_open(struct xd_extmap *m, const char *path, const struct xd_config *cfg, char *err,
                   size_t errlen)
{
    const char *base;
    int dirfd = xd_dir_open_for(path, path, cfg->allow_shared_directories, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    m->fd = xd_open_own_at(dirfd, base, O_RDWR, (mode_t)cfg->file_permissions);
    close(dirfd);
    if (m->fd < 0) {
        int rc = m->fd;
        xd_errf(err, errlen, "%s: cannot open the hybrid type's extent map: %s", path,
                xd_refusal(rc));
        return rc;
    }
    return 0;
}

/* A wait a signal cut short waits again (xd_turns_fcntl): the hybrid
 * type's attach and last close wait here for the setup lock, and one that
 * gave up with EINTR failed an open, or left the shared state behind. */
int xd_extmap_lock(const struct xd_extmap *m, unsigned byte, short type, bool wait)
{
    return xd_turns_fcntl(m->fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, type, byte, 1);
}

static int extmap_header(const struct xd_extmap *m, unsigned char h[EXTMAP_HDR_LEN])
{
    if (pread(m->fd, h, EXTMAP_HDR_LEN, 0) != (ssize_t)EXTMAP_HDR_LEN)
        return -ENOENT;
    if (memcmp(h, EXTMAP_MAGIC, 8) || get32(h + 8) != EXTMAP_VERSION ||
        get32(h + 40) != xd_crc32c(0, h, 40))
        return -ENOENT;
    return 0;
}

int xd_extmap_load_header(struct xd_extmap *m, uint64_t extent_size, uint64_t cold_id,
                          uint64_t *tag)
{
    unsigned char h[EXTMAP_HDR_LEN];
    if (extmap_header(m, h) || get64(h + 16) != extent_size || get64(h + 24) != cold_id)
        return -ENOENT;
    m->extent_size = extent_size;
    m->tag = *tag = get64(h + 32);
    return 0;
}

int xd_extmap_load_header_of_any(struct xd_extmap *m, uint64_t extent_size, uint64_t *cold_id,
                                 uint64_t *tag)
{
    unsigned char h[EXTMAP_HDR_LEN];
    if (extmap_header(m, h) || get64(h + 16) != extent_size)
        return -ENOENT;
    m->extent_size = extent_size;
    m->tag = *tag = get64(h + 32);
    *cold_id = get64(h + 24);
    return 0;
}

int xd_extmap_set_cold_id(const struct xd_extmap *m, uint64_t cold_id)
{
    unsigned char h[EXTMAP_HDR_LEN];
    if (extmap_header(m, h))
        return -ENOENT;
    put64(h + 24, cold_id);
    put32(h + 40, xd_crc32c(0, h, 40));
    ssize_t n = pwrite(m->fd, h, sizeof(h), 0); /* one sector: whole or not at all */
    return n == (ssize_t)sizeof(h) ? 0 : n < 0 ? -errno : -EIO;
}

int xd_extmap_load_tag(struct xd_extmap *m)
{
    unsigned char h[EXTMAP_HDR_LEN];
    if (extmap_header(m, h))
        return -ENOENT;
    m->tag = get64(h + 32);
    return 0;
}

int xd_extmap_reset(struct xd_extmap *m, uint64_t extent_size, uint64_t cold_id, uint64_t tag)
{
    unsigned char h[EXTMAP_HDR_LEN] = {0};
    memcpy(h, EXTMAP_MAGIC, 8);
    put32(h + 8, EXTMAP_VERSION);
    put64(h + 16, extent_size);
    put64(h + 24, cold_id);
    put64(h + 32, tag);
    put32(h + 40, xd_crc32c(0, h, 40));
    if (ftruncate(m->fd, 0) || fdatasync(m->fd))
        return -errno;
    ssize_t n = pwrite(m->fd, h, sizeof(h), 0);
    if (n != (ssize_t)sizeof(h))
        return n < 0 ? -errno : -EIO;
    if (fdatasync(m->fd))
        return -errno;
    m->extent_size = extent_size;
    m->tag = tag;
    return 0;
}

/* The stamp is a record of its own beside the header, so writing it never
 * rewrites the header (a torn stamp only reads as none). It carries the
 * map's tag: a stamp left from before the map was started over is not its. */
int xd_extmap_load_stamp(const struct xd_extmap *m, struct xd_extmap_stamp *s)
{
    unsigned char b[STAMP_LEN];
    if (pread(m->fd, b, sizeof(b), STAMP_OFF) != (ssize_t)sizeof(b))
        return -ENOENT;
    if (memcmp(b, STAMP_MAGIC, 8) || get32(b + 72) != xd_crc32c(0, b, 72) ||
        get64(b + 16) != m->tag || get32(b + 8) > XD_EXTMAP_OPEN_THROUGH)
        return -ENOENT;
    *s = (struct xd_extmap_stamp){.state = get32(b + 8), .dev = get64(b + 24),
                                  .ino = get64(b + 32), .size = get64(b + 40),
                                  .mtime_ns = get64(b + 48), .ctime_ns = get64(b + 56)};
    return s->state == XD_EXTMAP_OPEN ? -ENOENT : 0;
}

int xd_extmap_save_stamp(const struct xd_extmap *m, const struct xd_extmap_stamp *s)
{
    unsigned char b[STAMP_LEN] = {0};
    memcpy(b, STAMP_MAGIC, 8);
    put32(b + 8, s->state);
    put64(b + 16, m->tag);
    put64(b + 24, s->dev);
    put64(b + 32, s->ino);
    put64(b + 40, s->size);
    put64(b + 48, s->mtime_ns);
    put64(b + 56, s->ctime_ns);
    put32(b + 72, xd_crc32c(0, b, 72));
    /* no fdatasync: a kill -9 leaves the write in the page cache, and a
     * power loss takes the hot tier (a tmpfs) with it, whose new tag then
     * starts the map over whatever the stamp says (an fdatasync per open
     * and per close cost a hybrid job of 200 small files 0.75 of its time
     * on the 2-vCPU EPYC VM, ext4) */
    ssize_t n = pwrite(m->fd, b, sizeof(b), STAMP_OFF);
    return n == (ssize_t)sizeof(b) ? 0 : n < 0 ? -errno : -EIO;
}

int xd_extmap_read(const struct xd_extmap *m, uint64_t first, uint64_t n, bool *hot)
{
    unsigned char buf[XD_EXTMAP_ENTRY * 256];
    for (uint64_t done = 0; done < n;) {
        uint64_t step = n - done < 256 ? n - done : 256;
        off_t off = (off_t)(XD_EXTMAP_HEADER + (first + done) * XD_EXTMAP_ENTRY);
        ssize_t got = pread(m->fd, buf, step * XD_EXTMAP_ENTRY, off);
        if (got < 0)
            return -errno;
        for (uint64_t k = 0; k < step; k++) {
            bool whole = (uint64_t)got >= (k + 1) * XD_EXTMAP_ENTRY;
            hot[done + k] = whole && xd_extmap_decode(m->tag, first + done + k,
                                                      buf + k * XD_EXTMAP_ENTRY) == 1;
        }
        done += step;
    }
    return 0;
}

int xd_extmap_write(const struct xd_extmap *m, uint64_t i, bool hot)
{
    unsigned char e[XD_EXTMAP_ENTRY];
    xd_extmap_encode(m->tag, i, hot, e);
    off_t off = (off_t)(XD_EXTMAP_HEADER + i * XD_EXTMAP_ENTRY);
    ssize_t n = pwrite(m->fd, e, sizeof(e), off);
    return n == (ssize_t)sizeof(e) ? 0 : n < 0 ? -errno : -EIO;
}

int xd_extmap_sync(const struct xd_extmap *m)
{
    return fdatasync(m->fd) ? -errno : 0;
}

void xd_extmap_close(struct xd_extmap *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
