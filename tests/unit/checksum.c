/* checksum.c - unit test of the checksum layer through the public API: the
 * states a crash can leave (an entry with a write in flight, the data old,
 * new or torn) read as old, new or EIO, never as wrong data; a pending slot
 * the data matches is folded in; partial writes and unaligned reads keep
 * the crcs right; a write into a corrupt block is refused; a sidecar of
 * another block size is refused at open with one line. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/crc32c.h"
#include "xdevice.h"

#define BLK 4096
#define NBLK 4
#define HEADER 64

#define TAG 0x4b534358u /* a slot that holds a crc */

/* Two slots, each {crc, TAG}: what the block held when last seen, and the
 * last write sent down. */
struct entry {
    uint32_t cur, cur_tag, new, new_tag;
};

static char err[XD_ERRLEN];
static char path[256], side[256];

static struct xd_dev *open_dev(const char *block_size)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    const char *kv[] = {"storage_type", "regular", "enable_checksums", "true",
                        "checksum_block_size", block_size, NULL};
    int rc = 0;
    for (const char **p = kv; !rc && p[0]; p += 2)
        rc = xd_config_set(cfg, p[0], p[1], "test", err, sizeof(err));
    if (rc || xd_open(&dev, cfg, 16, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    xd_config_free(cfg);
    return dev;
}

static struct entry entry_of(unsigned block)
{
    struct entry e = {0, 0, 0, 0};
    int fd = open(side, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, &e, sizeof(e), HEADER + block * sizeof(e)) == sizeof(e));
    close(fd);
    return e;
}

static void set_entry(unsigned block, struct entry e)
{
    int fd = open(side, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, &e, sizeof(e), HEADER + block * sizeof(e)) == sizeof(e));
    close(fd);
}

/* Bytes written behind the layer's back. */
static void poke(const void *buf, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
    close(fd);
}

static long long stat_of(struct xd_dev *dev, const char *key)
{
    return layer_stat(dev, "checksum", key);
}

int main(void)
{
    char dir[] = "/tmp/xd-checksum-XXXXXX";
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/data", dir);
    snprintf(side, sizeof(side), "%s/data.xdsum", dir);
    static char a[BLK], b[BLK], buf[NBLK * BLK], want[NBLK * BLK];
    memset(a, 'a', BLK);
    memset(b, 'b', BLK);
    uint32_t crc_a = xd_crc32c(0, a, BLK), crc_b = xd_crc32c(0, b, BLK);

    struct xd_dev *dev = open_dev("4k");
    struct xd_file *f = NULL;
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f)
        return check_result();
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    struct entry e = entry_of(1);
    CHECK(e.cur_tag == TAG && e.cur == crc_a && e.new_tag == TAG && e.new == crc_a);
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(!memcmp(buf, a, BLK) && !memcmp(buf + 3 * BLK, a, BLK));
    CHECK(stat_of(dev, "verified") == NBLK);

    /* a crash with a write of b to blocks 1 and 2 in flight: the entries
     * hold a (landed before) and b (pending) */
    set_entry(1, (struct entry){crc_a, TAG, crc_b, TAG});
    set_entry(2, (struct entry){crc_a, TAG, crc_b, TAG});
    /* block 1: the write never landed, it reads as the old data */
    CHECK(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, a, BLK));
    /* the write landed: the new data reads, and the pending slot is folded */
    poke(b, BLK, BLK);
    CHECK(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, b, BLK));
    e = entry_of(1);
    CHECK(e.cur_tag == TAG && e.cur == crc_b);
    CHECK(stat_of(dev, "folded_on_read") == 1);
    /* block 2 torn: half new, half old: EIO, one line naming file and block */
    poke(b, BLK / 2, 2 * BLK);
    CHECK(xd_read(dev, f, buf, BLK, 2 * BLK) == -EIO);
    char line[XD_ERRLEN] = "";
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)));
    CHECK_MSG(strstr(line, path) && strstr(line, "block 2 "), "%s", line);
    CHECK(xd_dev_take_error(dev, line, sizeof(line)) == -ENOENT);
    /* a read that covers the torn block anywhere fails too, unaligned included */
    CHECK(xd_read(dev, f, buf, 100, 2 * BLK + 3000) == -EIO);
    CHECK(stat_of(dev, "mismatches") >= 2);
    /* a partial write into the torn block is refused: a crc over it would
     * bless the corruption */
    CHECK(xd_write(dev, f, "zz", 2, 2 * BLK + 10) == -EIO);

    /* block 2 rewritten whole: healthy again */
    CHECK(xd_write(dev, f, a, BLK, 2 * BLK) == BLK);
    /* a partial write spanning blocks 2 and 3, then an unaligned read */
    memcpy(want, a, BLK);
    memcpy(want + BLK, b, BLK);
    memcpy(want + 2 * BLK, a, BLK);
    memcpy(want + 3 * BLK, a, BLK);
    memset(want + 2 * BLK + 4000, 'x', 200);
    CHECK(xd_write(dev, f, want + 2 * BLK + 4000, 200, 2 * BLK + 4000) == 200);
    CHECK(stat_of(dev, "partial_writes") == 2); /* the refused one counts */
    e = entry_of(2);
    CHECK(e.cur_tag == TAG && e.cur == xd_crc32c(0, want + 2 * BLK, BLK) && e.new == e.cur);
    e = entry_of(3);
    CHECK(e.cur_tag == TAG && e.cur == xd_crc32c(0, want + 3 * BLK, BLK) && e.new == e.cur);
    CHECK(xd_read(dev, f, buf, 5000, BLK + 7) == 5000 && !memcmp(buf, want + BLK + 7, 5000));
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(!memcmp(buf, want, sizeof(buf)));
    /* a write past the end of file grows it; the block's tail counts as zeros */
    CHECK(xd_write(dev, f, "tail", 4, NBLK * BLK + 100) == 4);
    CHECK(xd_read(dev, f, buf, 200, NBLK * BLK) == 104 && !memcmp(buf + 100, "tail", 4));
    CHECK(stat_of(dev, "mismatches") == 2 + 1);
    xd_file_close(dev, f);
    xd_close(dev);

    /* the sidecar keeps its block size: another is refused with one line */
    dev = open_dev("8k");
    f = NULL;
    CHECK(dev && xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, "checksum_block_size=8192") && strstr(err, "4096"), "%s", err);
    if (dev)
        xd_close(dev);

    unlink(side);
    unlink(path);
    rmdir(dir);
    return check_result();
}
