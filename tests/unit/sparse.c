/* sparse.c - unit test of the sparse layer through the public API: zero
 * blocks of a write become holes (st_blocks, SEEK_HOLE), data blocks never
 * do, the bytes read back are the bytes written (aligned or not, across
 * holes, past end of file), zero_block_threshold keeps small runs of zeros
 * written, async modes stay async for data, and the stats say what happened.
 * On a disk file system and on /dev/shm, and under the regular, direct and
 * tmpfs types with enable_sparse=true. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define BLK 4096
#define NBLK 16
#define TMPFS_MAGIC_ 0x01021994

static char err[XD_ERRLEN];

/* Open a device; kv is a NULL-terminated list of key, value pairs. */
static struct xd_dev *open_dev(const char *const *kv)
{
    struct xd_dev *dev;
    if (check_open_dev(&dev, kv, "test", 16, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    return dev;
}

static struct xd_file *open_file(struct xd_dev *dev, const char *path)
{
    struct xd_file *f = NULL;
    unlink(path);
    if (xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", path, err);
        return NULL;
    }
    return f;
}

static uint64_t allocated(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (uint64_t)st.st_blocks * 512;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (int64_t)st.st_size;
}

static int64_t seek(const char *path, int whence, off_t off)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    off_t r = lseek(fd, off, whence);
    int64_t rc = r < 0 ? -errno : r;
    close(fd);
    return rc;
}

static int64_t stat_of(struct xd_dev *dev, const char *key) { return layer_stat(dev, "sparse", key); }

/* Blocks 0, 3, 8 and 15 hold data, block 7 a single non-zero byte at its
 * very end (it must be written, not punched); the other 11 are zeros. */
#define DATA_BLOCKS 5
static void fill_mixed(unsigned char *buf)
{
    memset(buf, 0, NBLK * BLK);
    static const int data[] = {0, 3, 8, 15};
    for (unsigned i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        for (int j = 0; j < BLK; j++)
            buf[data[i] * BLK + j] = (unsigned char)(j * 31 + data[i] + 1) | 1;
    buf[8 * BLK - 1] = 0x5a;
}

/* The mixed buffer in one write: holes where it is zero, exact bytes back,
 * reads of holes and past end of file as the driver would give them. */
static void test_mixed(struct xd_dev *dev, const char *path, const char *where)
{
    static unsigned char buf[NBLK * BLK], back[NBLK * BLK + BLK];
    struct xd_file *f = open_file(dev, path);
    CHECK_MSG(f, "%s", where);
    if (!f)
        return;
    fill_mixed(buf);
    CHECK_MSG(xd_write(dev, f, buf, sizeof(buf), 0) == sizeof(buf), "%s", where);
    CHECK_MSG(file_size(path) == NBLK * BLK, "%s: size %lld", where, (long long)file_size(path));
    uint64_t a = allocated(path);
    CHECK_MSG(a >= DATA_BLOCKS * BLK && a <= (DATA_BLOCKS + 1) * BLK,
              "%s: %llu bytes allocated for %d data blocks", where, (unsigned long long)a,
              DATA_BLOCKS);
    CHECK_MSG(seek(path, SEEK_HOLE, 0) == BLK, "%s: first hole at %lld", where,
              (long long)seek(path, SEEK_HOLE, 0));
    CHECK_MSG(seek(path, SEEK_DATA, BLK) == 3 * BLK, "%s", where);
    CHECK_MSG(seek(path, SEEK_DATA, 4 * BLK) == 7 * BLK, "%s: the block with one byte is data",
              where);

    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, sizeof(buf), 0) == sizeof(buf), "%s", where);
    CHECK_MSG(!memcmp(back, buf, sizeof(buf)), "%s: bytes read back differ", where);
    /* wholly inside a hole */
    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, 2 * BLK, BLK) == 2 * BLK, "%s", where);
    CHECK_MSG(!memcmp(back, buf + BLK, 2 * BLK), "%s: a hole did not read as zeros", where);
    /* unaligned, across data and hole */
    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, 5 * BLK + 123, 2 * BLK + 77) == 5 * BLK + 123, "%s", where);
    CHECK_MSG(!memcmp(back, buf + 2 * BLK + 77, 5 * BLK + 123), "%s: unaligned read differs",
              where);
    /* past end of file: short, then nothing, as the file driver does */
    CHECK_MSG(xd_read(dev, f, back, 2 * BLK, (NBLK - 1) * BLK) == BLK, "%s", where);
    CHECK_MSG(xd_read(dev, f, back, BLK, NBLK * BLK) == 0, "%s", where);
    CHECK_MSG(stat_of(dev, "reads_hole_skipped") >= 2 * BLK, "%s: reads_hole_skipped %lld", where,
              (long long)stat_of(dev, "reads_hole_skipped"));

    /* A write that ends in zero blocks past end of file still grows the
     * file (a punch alone keeps its size), and its zero blocks stay holes. */
    memset(buf, 0, 3 * BLK);
    memset(buf, 0x11, BLK);
    CHECK_MSG(xd_write(dev, f, buf, 3 * BLK, NBLK * BLK) == 3 * BLK, "%s", where);
    CHECK_MSG(file_size(path) == (NBLK + 3) * BLK, "%s: size %lld after a write ending in zeros",
              where, (long long)file_size(path));
    a = allocated(path);
    CHECK_MSG(a >= (DATA_BLOCKS + 1) * BLK && a <= (DATA_BLOCKS + 2) * BLK,
              "%s: %llu bytes allocated", where, (unsigned long long)a);
    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, 4 * BLK, NBLK * BLK) == 3 * BLK, "%s", where);
    CHECK_MSG(!memcmp(back, buf, 3 * BLK), "%s", where);
    /* all zeros past a gap: just a punch, and the size follows */
    memset(buf, 0, 2 * BLK);
    CHECK_MSG(xd_write(dev, f, buf, 2 * BLK, (NBLK + 5) * BLK) == 2 * BLK, "%s", where);
    CHECK_MSG(file_size(path) == (NBLK + 7) * BLK, "%s", where);
    CHECK_MSG(allocated(path) == a, "%s: an all-zero write allocated space", where);
    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, 4 * BLK, (NBLK + 4) * BLK) == 3 * BLK, "%s", where);
    CHECK_MSG(!memcmp(back, buf, 3 * BLK), "%s", where);

    /* stats: the files' space, and what the layer did */
    CHECK_MSG(stat_of(dev, "logical_bytes") == (NBLK + 7) * BLK, "%s: logical_bytes %lld", where,
              (long long)stat_of(dev, "logical_bytes"));
    CHECK_MSG(stat_of(dev, "allocated_bytes") == (int64_t)allocated(path),
              "%s: allocated_bytes %lld, st_blocks say %llu", where,
              (long long)stat_of(dev, "allocated_bytes"), (unsigned long long)allocated(path));
    CHECK_MSG(stat_of(dev, "hole_bytes_created") == (11 + 2 + 2) * BLK,
              "%s: hole_bytes_created %lld", where, (long long)stat_of(dev, "hole_bytes_created"));
    CHECK_MSG(stat_of(dev, "zero_blocks_detected") == 11 + 2 + 2, "%s: zero_blocks_detected %lld",
              where, (long long)stat_of(dev, "zero_blocks_detected"));
    CHECK_MSG(stat_of(dev, "writes_split") == 3, "%s: writes_split %lld", where,
              (long long)stat_of(dev, "writes_split"));
    xd_file_close(dev, f);
    /* closed files keep counting, as they were at close */
    CHECK_MSG(stat_of(dev, "logical_bytes") == (NBLK + 7) * BLK, "%s: after close", where);
    CHECK_MSG(stat_of(dev, "allocated_bytes") == (int64_t)allocated(path), "%s: after close",
              where);
    /* reopened, it still knows its holes from data */
    int64_t skipped = stat_of(dev, "reads_hole_skipped");
    CHECK_MSG(xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == 0, "%s: %s", where, err);
    memset(back, 0xee, sizeof(back));
    CHECK_MSG(xd_read(dev, f, back, 2 * BLK, BLK) == 2 * BLK, "%s", where);
    CHECK_MSG(back[0] == 0 && back[2 * BLK - 1] == 0, "%s", where);
    CHECK_MSG(stat_of(dev, "reads_hole_skipped") == skipped + 2 * BLK,
              "%s: a hole of a reopened file was read below", where);
    xd_file_close(dev, f);
    unlink(path);
}

/* Unaligned writes keep every byte exact; only whole zero blocks inside
 * the write become holes, the partial ones are written. */
static void test_unaligned(struct xd_dev *dev, const char *path, const char *where)
{
    static unsigned char model[4 * BLK], buf[4 * BLK], back[4 * BLK];
    struct xd_file *f = open_file(dev, path);
    CHECK_MSG(f, "%s", where);
    if (!f)
        return;
    memset(model, 0x55, sizeof(model));
    CHECK(xd_write(dev, f, model, sizeof(model), 0) == sizeof(model));
    /* 3k at 1000: no whole block, mixed zeros and data */
    for (int i = 0; i < 3072; i++)
        buf[i] = i % 3 ? 0 : (unsigned char)(i | 1);
    CHECK(xd_write(dev, f, buf, 3072, 1000) == 3072);
    memcpy(model + 1000, buf, 3072);
    /* 10000 at 1000: data in its head, zeros from 4096 on (block 1 whole) */
    memset(buf, 0, sizeof(buf));
    memset(buf, 0x77, BLK - 1000);
    CHECK(xd_write(dev, f, buf, 10000, 1000) == 10000);
    memcpy(model + 1000, buf, 10000);
    CHECK(xd_read(dev, f, back, sizeof(back), 0) == sizeof(back));
    CHECK_MSG(!memcmp(back, model, sizeof(model)), "%s: unaligned writes changed other bytes",
              where);
    CHECK_MSG(seek(path, SEEK_HOLE, 0) == BLK && seek(path, SEEK_DATA, BLK) == 2 * BLK,
              "%s: the whole zero block [4k, 8k) is not the only hole (hole at %lld)", where,
              (long long)seek(path, SEEK_HOLE, 0));
    xd_file_close(dev, f);
    unlink(path);
}

/* zero_block_threshold=4: two zero blocks are written as zeros, four split. */
static void test_threshold(const char *path)
{
    static const char *const kv[] = {"storage_type", "sparse", "zero_block_threshold", "4", NULL};
    static unsigned char buf[8 * BLK];
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    CHECK(f);
    if (!f)
        goto out;
    memset(buf, 0x33, sizeof(buf));
    memset(buf + 2 * BLK, 0, 2 * BLK);
    CHECK(xd_write(dev, f, buf, sizeof(buf), 0) == sizeof(buf));
    CHECK_MSG(allocated(path) >= sizeof(buf), "two zero blocks were punched under threshold 4");
    CHECK(stat_of(dev, "writes_split") == 0);
    CHECK(stat_of(dev, "zero_blocks_detected") == 2);
    CHECK(stat_of(dev, "hole_bytes_created") == 0);
    memset(buf + 4 * BLK, 0, 2 * BLK);
    CHECK(xd_write(dev, f, buf, sizeof(buf), 8 * BLK) == sizeof(buf));
    CHECK(stat_of(dev, "writes_split") == 1);
    CHECK(stat_of(dev, "hole_bytes_created") == 4 * BLK);
    CHECK(seek(path, SEEK_HOLE, 0) == 10 * BLK);
    xd_file_close(dev, f);
    unlink(path);
out:
    xd_close(dev);
}

/* Data the layer remembers (to send reads inside it straight down) must
 * not hide the holes its own punches and trims make later: those reads
 * are still served as zeros without I/O. */
static void test_remembered_data(const char *path)
{
    static const char *const kv[] = {"storage_type", "sparse", NULL};
    static unsigned char buf[NBLK * BLK], back[BLK];
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    CHECK(f);
    if (!f)
        goto out;
    memset(buf, 0x21, sizeof(buf));
    CHECK(xd_write(dev, f, buf, sizeof(buf), 0) == sizeof(buf));
    CHECK(xd_read(dev, f, back, BLK, 0) == BLK && back[0] == 0x21);
    CHECK(stat_of(dev, "reads_hole_skipped") == 0);
    memset(buf, 0, BLK);
    CHECK(xd_write(dev, f, buf, BLK, 5 * BLK) == BLK); /* all zeros: a punch */
    CHECK(xd_trim(dev, f, BLK, 12 * BLK) == 0);
    memset(back, 0xee, BLK);
    CHECK(xd_read(dev, f, back, BLK, 5 * BLK) == BLK && !memcmp(back, buf, BLK));
    memset(back, 0xee, BLK);
    CHECK(xd_read(dev, f, back, BLK, 12 * BLK) == BLK && !memcmp(back, buf, BLK));
    CHECK_MSG(stat_of(dev, "reads_hole_skipped") == 2 * BLK, "reads_hole_skipped %lld",
              (long long)stat_of(dev, "reads_hole_skipped"));
    CHECK(xd_read(dev, f, back, BLK, 13 * BLK) == BLK && back[0] == 0x21);
    xd_file_close(dev, f);
    unlink(path);
out:
    xd_close(dev);
}

/* libaio: data passes down queued; a write with zero blocks completes inline. */
static void test_async(const char *path)
{
    static const char *const kv[] = {"storage_type", "sparse", "async", "libaio", NULL};
    static unsigned char data[2 * BLK], mixed[2 * BLK], back[2 * BLK];
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    struct xd_req *done[1];
    CHECK(f);
    if (!f)
        goto out;
    memset(data, 0x42, sizeof(data));
    struct xd_req w = {.op = XD_OP_WRITE, .file = f, .buf = data, .len = sizeof(data), .off = 0};
    CHECK(xd_submit(dev, &w) == XD_QUEUED);
    CHECK(xd_commit(dev) == 1);
    CHECK(xd_reap(dev, done, 1, 1, NULL) == 1 && done[0] == &w && w.result == sizeof(data));
    memset(mixed, 0, sizeof(mixed));
    mixed[0] = 1;
    struct xd_req z = {.op = XD_OP_WRITE, .file = f, .buf = mixed, .len = sizeof(mixed),
                       .off = 2 * BLK};
    CHECK(xd_submit(dev, &z) == XD_DONE && z.result == sizeof(mixed));
    struct xd_req r = {.op = XD_OP_READ, .file = f, .buf = back, .len = sizeof(back), .off = 0};
    CHECK(xd_submit(dev, &r) == XD_QUEUED);
    CHECK(xd_commit(dev) == 1);
    CHECK(xd_reap(dev, done, 1, 1, NULL) == 1 && done[0] == &r && r.result == sizeof(back));
    CHECK(!memcmp(back, data, sizeof(data)));
    struct xd_req h = {.op = XD_OP_READ, .file = f, .buf = back, .len = sizeof(back),
                       .off = 2 * BLK};
    CHECK(xd_submit(dev, &h) == XD_DONE && h.result == sizeof(back));
    CHECK(!memcmp(back, mixed, sizeof(mixed)));
    xd_file_close(dev, f);
    unlink(path);
out:
    xd_close(dev);
}

static void run_mixed(const char *const *kv, const char *path, const char *where)
{
    struct xd_dev *dev = open_dev(kv);
    CHECK_MSG(dev, "%s", where);
    if (!dev)
        return;
    test_mixed(dev, path, where);
    test_unaligned(dev, path, where);
    xd_close(dev);
}

/* The tmpfs type keeps its data under tmpfs_directory: the space figures
 * come through the tmpfs layer from the copy there. */
static void test_tmpfs_type(const char *disk_path, const char *shm_dir)
{
    static const char *kv[] = {"storage_type", "tmpfs", "enable_sparse", "true",
                               "tmpfs_directory", NULL, NULL};
    static unsigned char buf[NBLK * BLK], back[NBLK * BLK];
    kv[5] = shm_dir;
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, disk_path) : NULL;
    CHECK(f);
    if (!f)
        goto out;
    fill_mixed(buf);
    CHECK(xd_write(dev, f, buf, sizeof(buf), 0) == sizeof(buf));
    CHECK(xd_read(dev, f, back, sizeof(back), 0) == sizeof(back));
    CHECK(!memcmp(back, buf, sizeof(buf)));
    int64_t a = stat_of(dev, "allocated_bytes");
    CHECK_MSG(a >= DATA_BLOCKS * BLK && a <= (DATA_BLOCKS + 1) * BLK,
              "tmpfs type: allocated_bytes %lld", (long long)a);
    CHECK(stat_of(dev, "logical_bytes") == NBLK * BLK);
    CHECK(stat_of(dev, "reads_hole_skipped") == (NBLK - DATA_BLOCKS) * BLK);
    xd_file_close(dev, f);
out:
    xd_close(dev);
}

/* O_DIRECT: holes are widened to whole io_alignment sectors. */
static void test_direct(const char *path)
{
    static const char *const kv[] = {"storage_type", "direct", "enable_sparse", "true",
                                     "hole_detection_size", "512", NULL};
    struct xd_dev *dev = open_dev(kv);
    CHECK(dev);
    if (!dev)
        return;
    CHECK_MSG(stat_of(dev, "block_size") == 4096, "direct: block_size %lld",
              (long long)stat_of(dev, "block_size"));
    test_mixed(dev, path, "direct+enable_sparse");
    xd_close(dev);
}

static bool on_tmpfs(const char *dir)
{
    struct statfs sfs;
    return !statfs(dir, &sfs) && sfs.f_type == TMPFS_MAGIC_;
}

int main(void)
{
    char disk[] = "/var/tmp/xd-unit-sparse-XXXXXX", shm[] = "/dev/shm/xd-unit-sparse-XXXXXX";
    char path[128], shm_path[128], shm_data[160];
    if (!mkdtemp(disk))
        SKIP("cannot make a directory under /var/tmp");
    if (on_tmpfs(disk))
        SKIP("/var/tmp is a tmpfs; the disk half of this test needs a disk file system");
    snprintf(path, sizeof(path), "%s/data", disk);

    static const char *const sparse_type[] = {"storage_type", "sparse", NULL};
    static const char *const regular[] = {"storage_type", "regular", "enable_sparse", "true", NULL};
    run_mixed(sparse_type, path, "sparse type on disk");
    run_mixed(regular, path, "regular+enable_sparse on disk");
    test_threshold(path);
    test_async(path);
    test_remembered_data(path);
    test_direct(path);

    if (on_tmpfs("/dev/shm") && mkdtemp(shm)) {
        snprintf(shm_path, sizeof(shm_path), "%s/data", shm);
        run_mixed(sparse_type, shm_path, "sparse type on /dev/shm");
        snprintf(shm_data, sizeof(shm_data), "%s/tmpfs", shm);
        test_tmpfs_type(path, shm_data);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shm);
        CHECK(system(cmd) == 0);
    } else {
        printf("SKIP the /dev/shm half: not a tmpfs\n");
    }
    unlink(path);
    CHECK(rmdir(disk) == 0);
    return check_result();
}
