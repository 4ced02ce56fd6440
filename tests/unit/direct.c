/* direct.c - unit test of the direct type: unaligned requests through bounce
 * buffers, and read-modify-write that stays correct when two processes write
 * different bytes of the same sectors at the same time (OFD range locks).
 * Without the lock, one writer's read-modify-write would put back stale bytes
 * over the other's, and the final check would find them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define TMPFS_MAGIC_ 0x01021994
#define FILE_SIZE (16 * 1024)
#define SLOT 100 /* writer w owns bytes [k*200 + w*100, +100): unaligned, sharing sectors */
#define ROUNDS 100

static char err[XD_ERRLEN];

static struct xd_dev *open_direct(const char *async)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    if (xd_config_set(cfg, "storage_type", "direct", "test", err, sizeof(err)) ||
        xd_config_set(cfg, "async", async, "test", err, sizeof(err)) ||
        xd_open(&dev, cfg, 16, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    xd_config_free(cfg);
    return dev;
}

/* Each writer fills its slots with its own round-stamped byte, then reads
 * them back. Only it writes those bytes, so anything but its latest stamp is
 * an update lost to the other writer's read-modify-write. Exit status: 0, or
 * 1 for an I/O error, or 2 for a lost update. */
static int writer(const char *path, int w)
{
    struct xd_dev *dev = open_direct("sync");
    struct xd_file *f;
    static char buf[SLOT], back[FILE_SIZE];
    if (!dev || xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)))
        return 1;
    for (int r = 0; r < ROUNDS; r++) {
        char stamp = (char)('a' + w * 10 + r % 10);
        memset(buf, stamp, SLOT);
        for (uint64_t off = (uint64_t)w * SLOT; off + SLOT <= FILE_SIZE; off += 2 * SLOT)
            if (xd_write(dev, f, buf, SLOT, off) != SLOT)
                return 1;
        if (xd_read(dev, f, back, FILE_SIZE, 0) != FILE_SIZE)
            return 1;
        for (uint64_t off = (uint64_t)w * SLOT; off + SLOT <= FILE_SIZE; off += 2 * SLOT)
            if (memcmp(back + off, buf, SLOT))
                return 2;
    }
    xd_file_close(dev, f);
    xd_close(dev);
    return 0;
}

static void test_concurrent_rmw(const char *path)
{
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        pids[w] = fork();
        if (pids[w] == 0)
            _exit(writer(path, w));
    }
    for (int w = 0; w < 2; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "writer %d: %s", w, WEXITSTATUS(status) == 2 ? "an update was lost" : "I/O failed");
    }
    /* every slot holds its writer's last round */
    struct xd_dev *dev = open_direct("sync");
    struct xd_file *f;
    static char data[FILE_SIZE];
    CHECK(dev && xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == 0);
    CHECK(xd_read(dev, f, data, FILE_SIZE, 0) == FILE_SIZE);
    unsigned bad = 0;
    for (uint64_t off = 0; off + 2 * SLOT <= FILE_SIZE; off++) {
        int w = (int)((off / SLOT) % 2);
        bad += data[off] != 'a' + w * 10 + (ROUNDS - 1) % 10;
    }
    CHECK_MSG(bad == 0, "%u bytes lost to a concurrent read-modify-write", bad);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* Unaligned reads and writes in an async mode complete inline, correctly. */
static void test_unaligned_async(const char *path, const char *async)
{
    struct xd_dev *dev = open_direct(async);
    struct xd_file *f;
    char *pattern = malloc(10000), *back = malloc(10000);
    CHECK(dev && xd_file_open(dev, path, XD_OPEN_CREATE, FILE_SIZE, &f, err, sizeof(err)) == 0);
    for (int i = 0; i < 10000; i++)
        pattern[i] = (char)(i * 7 + 3);
    struct xd_req w = {.op = XD_OP_WRITE, .file = f, .buf = pattern + 1, .len = 9999, .off = 4097};
    CHECK(xd_submit(dev, &w) == XD_DONE && w.result == 9999);
    struct xd_req r = {.op = XD_OP_READ, .file = f, .buf = back, .len = 9999, .off = 4097};
    CHECK(xd_submit(dev, &r) == XD_DONE && r.result == 9999);
    CHECK(!memcmp(back, pattern + 1, 9999));
    /* an aligned request is queued for real and comes back from reap */
    static char aligned[8192] __attribute__((aligned(4096)));
    struct xd_req q = {.op = XD_OP_READ, .file = f, .buf = aligned, .len = 8192, .off = 4096};
    struct xd_req *done[1];
    CHECK(xd_submit(dev, &q) == XD_QUEUED);
    CHECK(xd_commit(dev) == 1);
    CHECK(xd_reap(dev, done, 1, 1, NULL) == 1 && done[0] == &q && q.result == 8192);
    CHECK(!memcmp(aligned + 1, pattern + 1, 8191));
    /* the widened write did not grow the file past its end */
    CHECK(xd_file_size(dev, f) == FILE_SIZE);
    xd_file_close(dev, f);
    xd_close(dev);
    free(pattern);
    free(back);
}

int main(void)
{
    char dir[] = "/var/tmp/xd-unit-direct-XXXXXX", path[64];
    struct statfs sfs;
    if (!mkdtemp(dir))
        SKIP("cannot make a directory under /var/tmp");
    if (statfs(dir, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC_)
        SKIP("/var/tmp is a tmpfs, which has no O_DIRECT");
    snprintf(path, sizeof(path), "%s/data", dir);
    test_unaligned_async(path, "libaio");
    if (check_mode_runs("io_uring", "unaligned async requests"))
        test_unaligned_async(path, "io_uring");
    test_concurrent_rmw(path);
    unlink(path);
    rmdir(dir);
    return check_result();
}
