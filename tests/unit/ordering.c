/* ordering.c - unit test of the data path's ordering rule: a request never
 * starts while an earlier request that overlaps it (at least one a write) is
 * staged or in flight. Without it, a read staged behind a write could be
 * served inline (RWF_NOWAIT from the page cache) with the bytes from before
 * the write, and an unaligned O_DIRECT write (done inline through a bounce
 * buffer) could land before a staged aligned write to the same sectors and
 * then be overwritten by it. Both run in every async mode.
 *
 * How the rule is kept matters for speed: under io_uring a request that
 * overlaps one in flight is held back (answered XD_QUEUED) while requests
 * that overlap nothing go ahead, instead of the submit waiting for the
 * earlier one and stalling the queue; an fsync waits behind what is held
 * back before it. In libaio mode on buffered files, where a wait costs
 * nothing (the I/O is done inside io_submit), it waits. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define BLOCK 4096
#define DEPTH 8

static char err[XD_ERRLEN];

static char hot_dir[] = "/dev/shm/xd-ordering-XXXXXX";

/* type is a storage type, or "cached" (regular under a write-back cache). */
static struct xd_dev *open_dev(const char *type, const char *async)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    bool cached = !strcmp(type, "cached"), hybrid = !strcmp(type, "hybrid");
    if (xd_config_set(cfg, "storage_type", cached ? "regular" : type, "test", err, sizeof(err)) ||
        xd_config_set(cfg, "async", async, "test", err, sizeof(err)) ||
        (cached && (xd_config_set(cfg, "enable_read_cache", "true", "test", err, sizeof(err)) ||
                    xd_config_set(cfg, "enable_write_cache", "true", "test", err, sizeof(err)))) ||
        (hybrid && (xd_config_set(cfg, "hot_directory", hot_dir, "test", err, sizeof(err)) ||
                    xd_config_set(cfg, "auto_migration", "false", "test", err, sizeof(err)))) ||
        xd_open(&dev, cfg, DEPTH, err, sizeof(err))) {
        fprintf(stderr, "open %s/%s: %s\n", type, async, err);
        dev = NULL;
    }
    xd_config_free(cfg);
    return dev;
}

/* A device of type with path open on it, created size bytes long; NULL
 * (and nothing left open) when either fails. */
static struct xd_dev *open_dev_file(const char *type, const char *async, const char *path,
                                    uint64_t size, struct xd_file **f)
{
    struct xd_dev *dev = open_dev(type, async);
    CHECK(dev);
    if (dev && xd_file_open(dev, path, XD_OPEN_CREATE, size, f, err, sizeof(err))) {
        CHECK_MSG(0, "open %s: %s", path, err);
        xd_close(dev);
        dev = NULL;
    }
    return dev;
}

/* Submit every request without committing in between, then commit and reap
 * them all. Returns how many failed. */
static int run_batch(struct xd_dev *dev, struct xd_req *reqs, int n)
{
    int pending = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        int rc = xd_submit(dev, &reqs[i]);
        if (rc == XD_QUEUED)
            pending++;
        else if (rc != XD_DONE || reqs[i].result != (int64_t)reqs[i].len)
            failed++;
    }
    if (xd_commit(dev) < 0)
        return n;
    while (pending > 0) {
        struct xd_req *done[DEPTH];
        int got = xd_reap(dev, done, 1, DEPTH, NULL);
        if (got <= 0)
            return n;
        for (int i = 0; i < got; i++)
            if (done[i]->result != (int64_t)done[i]->len)
                failed++;
        pending -= got;
    }
    return failed;
}

/* Send what was submitted and reap the pending requests it answered XD_QUEUED. */
static void commit_and_reap(struct xd_dev *dev, int pending)
{
    CHECK(xd_commit(dev) >= 0);
    while (pending > 0) {
        struct xd_req *done[DEPTH];
        int got = xd_reap(dev, done, 1, DEPTH, NULL);
        CHECK(got > 0);
        if (got <= 0)
            break;
        pending -= got;
    }
}

/* A read queued right behind a write of the same block sees the write, and
 * a read queued before the write (none in flight yet: fdio scans reads in
 * flight only for a write) does not. */
static void test_read_after_write(const char *dir, const char *type, const char *async)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/raw-%s-%s", dir, type, async);
    struct xd_file *f;
    struct xd_dev *dev = open_dev_file(type, async, path, 4 * BLOCK, &f);
    if (!dev)
        return;
    static char old[BLOCK], new[BLOCK], newer[BLOCK], first[BLOCK], back[BLOCK], last[BLOCK];
    memset(old, 'o', BLOCK);
    for (int round = 0; round < 50; round++) {
        memset(new, 'a' + round % 20, BLOCK);
        memset(newer, 'A' + round % 20, BLOCK);
        CHECK(xd_write(dev, f, old, BLOCK, BLOCK) == BLOCK);
        CHECK(xd_read(dev, f, back, BLOCK, BLOCK) == BLOCK); /* cached: NOWAIT would hit */
        memset(first, 0, BLOCK);
        memset(back, 0, BLOCK);
        memset(last, 0, BLOCK);
        struct xd_req reqs[5] = {
            {.op = XD_OP_READ, .file = f, .buf = first, .len = BLOCK, .off = BLOCK},
            {.op = XD_OP_WRITE, .file = f, .buf = new, .len = BLOCK, .off = BLOCK},
            {.op = XD_OP_READ, .file = f, .buf = back, .len = BLOCK, .off = BLOCK},
            {.op = XD_OP_WRITE, .file = f, .buf = newer, .len = BLOCK, .off = BLOCK},
            {.op = XD_OP_READ, .file = f, .buf = last, .len = BLOCK, .off = BLOCK},
        };
        CHECK(run_batch(dev, reqs, 5) == 0);
        CHECK_MSG(memcmp(first, old, BLOCK) == 0, "%s/%s round %d: a write overtook a read",
                  type, async, round);
        CHECK_MSG(memcmp(back, new, BLOCK) == 0, "%s/%s round %d: a read overtook a write",
                  type, async, round);
        CHECK_MSG(memcmp(last, newer, BLOCK) == 0, "%s/%s round %d: writes out of order", type,
                  async, round);
        CHECK(xd_read(dev, f, back, BLOCK, BLOCK) == BLOCK);
        CHECK_MSG(memcmp(back, newer, BLOCK) == 0, "%s/%s round %d: the earlier write landed last",
                  type, async, round);
    }
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* A direct-type device with DIR/NAME-ASYNC open on it, 4 blocks long, its
 * path in path; NULL (said, or counted as a failure) when either fails. */
static struct xd_dev *open_direct_file(const char *dir, const char *name, const char *async,
                                       char *path, size_t len, struct xd_file **f)
{
    snprintf(path, len, "%s/%s-%s", dir, name, async);
    struct xd_dev *dev = open_dev("direct", async);
    if (!dev) {
        fprintf(stderr, "direct type unavailable here (%s); skipped\n", err);
        return NULL;
    }
    if (xd_file_open(dev, path, XD_OPEN_CREATE, 4 * BLOCK, f, err, sizeof(err))) {
        CHECK_MSG(0, "open %s: %s", path, err);
        xd_close(dev);
        return NULL;
    }
    return dev;
}

/* Two writes of the same sectors, the second unaligned (done inline through
 * a bounce buffer): the file ends with the second one's bytes. */
static void test_write_after_write_direct(const char *dir, const char *async)
{
    char path[512];
    struct xd_file *f;
    struct xd_dev *dev = open_direct_file(dir, "waw", async, path, sizeof(path), &f);
    if (!dev)
        return;
    char *first = NULL, *back = NULL;
    if (posix_memalign((void **)&first, BLOCK, BLOCK) || posix_memalign((void **)&back, BLOCK, BLOCK)) {
        CHECK(!"posix_memalign");
        return;
    }
    static char second[100];
    memset(first, 'a', BLOCK);
    memset(second, 'b', sizeof(second));
    for (int round = 0; round < 20; round++) {
        struct xd_req reqs[2] = {
            {.op = XD_OP_WRITE, .file = f, .buf = first, .len = BLOCK, .off = 0},
            {.op = XD_OP_WRITE, .file = f, .buf = second, .len = sizeof(second), .off = 10},
        };
        CHECK(run_batch(dev, reqs, 2) == 0);
        CHECK(xd_read(dev, f, back, BLOCK, 0) == BLOCK);
        CHECK_MSG(back[0] == 'a' && back[10] == 'b' && back[109] == 'b' && back[110] == 'a',
                  "%s round %d: the earlier write landed last", async, round);
    }
    free(first);
    free(back);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* A write behind an O_DIRECT read of the same block, both staged: the
 * write is held back until the read is reaped, and the read returns the
 * bytes from before it. fdio scans the requests in flight for a write even
 * when no other write is there (it skips the scan only for a read with no
 * write in flight); the count of held-back requests says the rule ran,
 * where the data alone would pass whenever the device kept the order. */
static void test_write_behind_read_direct(const char *dir, const char *async)
{
    char path[512];
    struct xd_file *f;
    struct xd_dev *dev = open_direct_file(dir, "war", async, path, sizeof(path), &f);
    if (!dev)
        return;
    char *old = NULL, *new = NULL, *back = NULL;
    if (posix_memalign((void **)&old, BLOCK, BLOCK) || posix_memalign((void **)&new, BLOCK, BLOCK) ||
        posix_memalign((void **)&back, BLOCK, BLOCK)) {
        CHECK(!"posix_memalign");
        return;
    }
    for (int round = 0; round < 20; round++) {
        memset(old, 'a' + round % 20, BLOCK);
        memset(new, 'A' + round % 20, BLOCK);
        memset(back, 0, BLOCK);
        CHECK(xd_write(dev, f, old, BLOCK, 0) == BLOCK);
        long long held = layer_stat(dev, "file", "overlap_deferrals");
        struct xd_req reqs[2] = {
            {.op = XD_OP_READ, .file = f, .buf = back, .len = BLOCK, .off = 0},
            {.op = XD_OP_WRITE, .file = f, .buf = new, .len = BLOCK, .off = 0},
        };
        CHECK(run_batch(dev, reqs, 2) == 0);
        CHECK_MSG(layer_stat(dev, "file", "overlap_deferrals") == held + 1,
                  "%s round %d: the write was not held back behind the read", async, round);
        CHECK_MSG(memcmp(back, old, BLOCK) == 0, "%s round %d: a write overtook a read", async,
                  round);
        CHECK(xd_read(dev, f, back, BLOCK, 0) == BLOCK);
        CHECK_MSG(memcmp(back, new, BLOCK) == 0, "%s round %d: the write was lost", async, round);
    }
    free(old);
    free(new);
    free(back);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* A write staged, then a read of the same block, a read of another block
 * and an fsync, without a commit between them. Under io_uring the first
 * read is held back while the second (cached) is served at once, and the
 * fsync is held back behind the first read; in libaio mode on a buffered
 * file the first read waits instead. Every answer is right either way. */
static void test_held_back_not_stalled(const char *dir, const char *async)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/hold-%s", dir, async);
    struct xd_file *f;
    struct xd_dev *dev = open_dev_file("regular", async, path, 4 * BLOCK, &f);
    if (!dev)
        return;
    static char old[4 * BLOCK], new[BLOCK], back[BLOCK], other[BLOCK];
    memset(old, 'o', sizeof(old));
    memset(new, 'n', BLOCK);
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (int64_t)sizeof(old));
    CHECK(xd_read(dev, f, back, BLOCK, 3 * BLOCK) == BLOCK); /* cached */
    bool uring = !strcmp(async, "io_uring");
    struct xd_req reqs[4] = {
        {.op = XD_OP_WRITE, .file = f, .buf = new, .len = BLOCK, .off = BLOCK},
        {.op = XD_OP_READ, .file = f, .buf = back, .len = BLOCK, .off = BLOCK},
        {.op = XD_OP_READ, .file = f, .buf = other, .len = BLOCK, .off = 3 * BLOCK},
        {.op = XD_OP_FSYNC, .file = f},
    };
    int rc[4], pending = 0;
    for (int i = 0; i < 4; i++)
        pending += (rc[i] = xd_submit(dev, &reqs[i])) == XD_QUEUED;
    if (uring) {
        CHECK_MSG(rc[1] == XD_QUEUED && rc[3] == XD_QUEUED, "the overlapping read answered %d",
                  rc[1]);
        CHECK_MSG(rc[2] == XD_DONE && other[0] == 'o', "a read of another block waited");
        CHECK(layer_stat(dev, "file", "overlap_deferrals") == 2); /* the read, the fsync */
        CHECK(layer_stat(dev, "file", "overlap_waits") == 0);
    } else {
        CHECK(layer_stat(dev, "file", "overlap_deferrals") == 0);
        CHECK(layer_stat(dev, "file", "overlap_waits") == 1);
    }
    commit_and_reap(dev, pending);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(reqs[i].result == (i == 3 ? 0 : BLOCK), "%s: request %d: %lld", async, i,
                  (long long)reqs[i].result);
    CHECK_MSG(back[0] == 'n' && back[BLOCK - 1] == 'n' && other[0] == 'o',
              "%s: the held-back read did not see the write before it", async);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* A file on a tmpfs: requests are done inline, except long writes under
 * io_uring, queued for the ring's workers to copy. A sync behind one is
 * queued too (drained behind it: it covers the write), and a read of the
 * same bytes waits for it and sees it. */
static void test_memory_file(const char *shm, const char *async)
{
    enum { LONG = XD_MEMORY_WRITE_QUEUED_MIN * 2 };
    char path[512];
    snprintf(path, sizeof(path), "%s/memory-%s", shm, async);
    struct xd_file *f;
    struct xd_dev *dev = open_dev_file("regular", async, path, LONG, &f);
    if (!dev)
        return;
    static char data[LONG], small[BLOCK], back[BLOCK];
    memset(data, 'L', LONG);
    memset(small, 's', BLOCK);
    bool uring = !strcmp(async, "io_uring");
    struct xd_req reqs[4] = {
        {.op = XD_OP_WRITE, .file = f, .buf = data, .len = LONG, .off = 0},
        {.op = XD_OP_FSYNC, .file = f},
        {.op = XD_OP_WRITE, .file = f, .buf = small, .len = BLOCK, .off = LONG - BLOCK},
        {.op = XD_OP_READ, .file = f, .buf = back, .len = BLOCK, .off = 0},
    };
    int rc[4], pending = 0;
    for (int i = 0; i < 4; i++)
        pending += (rc[i] = xd_submit(dev, &reqs[i])) == XD_QUEUED;
    CHECK_MSG(rc[0] == (uring ? XD_QUEUED : XD_DONE), "%s: the long write answered %d", async,
              rc[0]);
    CHECK_MSG(rc[1] == (uring ? XD_QUEUED : XD_DONE), "%s: the fsync answered %d", async, rc[1]);
    CHECK_MSG(rc[2] == XD_DONE && rc[3] == XD_DONE, "%s: short requests answered %d, %d", async,
              rc[2], rc[3]);
    commit_and_reap(dev, pending);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(reqs[i].result == (int64_t)reqs[i].len, "%s: request %d: %lld", async, i,
                  (long long)reqs[i].result);
    CHECK_MSG(back[0] == 'L', "%s: the read did not see the long write before it", async);
    CHECK(xd_read(dev, f, back, BLOCK, LONG - BLOCK) == BLOCK && back[0] == 's');
    CHECK(layer_stat(dev, "file", "in_memory_inline") == (uring ? 3 : 5)); /* and xd_read */
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* Remove dir and the files in it (the hybrid type leaves its hot copies,
 * tags and map beside the data files). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    char dir[] = "/var/tmp/xd-ordering-XXXXXX";
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    const char *modes[] = {"io_uring", "libaio"};
    if (!mkdtemp(hot_dir))
        SKIP("mkdtemp %s: %s", hot_dir, strerror(errno));
    const char *types[] = {"regular", "sparse", "compressed", "cached", "hybrid"};
    for (int m = 0; m < 2; m++) {
        if (!check_mode_runs(modes[m], "the ordering rule"))
            continue;
        for (int t = 0; t < 5; t++)
            test_read_after_write(dir, types[t], modes[m]);
        test_write_after_write_direct(dir, modes[m]);
        test_write_behind_read_direct(dir, modes[m]);
        test_held_back_not_stalled(dir, modes[m]);
        test_memory_file(hot_dir, modes[m]);
    }
    remove_dir(dir);
    remove_dir(hot_dir);
    return check_result();
}
