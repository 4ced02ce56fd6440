/* mirror.c - unit test of the mirror layer's recovery: the layer stacked over
 * a tiny test layer that fails chosen requests of chosen copies with -EIO
 * (as the checksum layer reports a mismatch), over the file driver. A read
 * that fails is served from the other copy and the bad copy repaired on
 * disk; three failures in a row degrade a copy, which reads then skip; a
 * failed write degrades its copy at once and the write still succeeds; a
 * write every copy fails fails, degrading nobody. Sync and io_uring. Two
 * primaries of one name never share their copy, and their claims on it
 * take turns. Two devices writing one block take turns too. A member one
 * writer degrades (in a forked process) is stale for every writer: the
 * others stop using it, and the last close stamps it so. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "chain.h"
#include "clock.h"
#include "turns.h" /* XD_TURNS_REGAIN_EVERY */
#include "xd_internal.h"
#include "xdevice.h"

#define BLK 4096
#define NBLK 16

/* --- the failing test layer -------------------------------------------------- */

/* Requests of op on a path containing `where` fail while `left` is not 0
 * (negative: for ever). */
static struct {
    enum xd_op op;
    const char *where;
    int left;
} fail;

/* A second rule beside it (fail_also), for a test that needs two at once. */
static struct {
    enum xd_op op;
    const char *where;
    int left;
} also;

static void fail_set(enum xd_op op, const char *where, int left)
{
    fail.op = op;
    fail.where = where;
    fail.left = left;
    also.where = NULL;
}

static void fail_also(enum xd_op op, const char *where, int left)
{
    also.op = op;
    also.where = where;
    also.left = left;
}

/* Run once, at the next write to a path containing `where`, before it
 * goes down (then cleared): a test's other device acts at that moment. */
static struct {
    const char *where;
    void (*run)(void);
} hook;

static int flaky_submit(struct xd_layer *layer, struct xd_req *req)
{
    if (hook.run && req->op == XD_OP_WRITE && strstr(req->file->path, hook.where)) {
        void (*run)(void) = hook.run;
        hook.run = NULL;
        run();
    }
    if (fail.where && fail.left && req->op == fail.op && strstr(req->file->path, fail.where)) {
        if (fail.left > 0)
            fail.left--;
        req->result = -EIO;
        return XD_DONE;
    }
    if (also.where && also.left && req->op == also.op && strstr(req->file->path, also.where)) {
        if (also.left > 0)
            also.left--;
        req->result = -EIO;
        return XD_DONE;
    }
    return xd_layer_submit(layer->lower, req);
}

static const struct xd_ops flaky_ops = {
    .version = XD_OPS_VERSION,
    .name = "flaky",
    .submit = flaky_submit,
};

/* --- helpers ------------------------------------------------------------------ */

static char err[XD_ERRLEN];
static char primary_dir[64], copy_dir[64], primary[128], copy[128];

static struct xd_dev *open_dev_copies(const char *async, const char *dirs);

/* file driver, flaky, mirror: as xd_open builds a chain, by hand */
static struct xd_dev *open_dev(const char *async)
{
    return open_dev_copies(async, copy_dir);
}

/* the same, with its copies in dirs (mirror_directories) */
static struct xd_dev *open_dev_copies(const char *async, const char *dirs)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = xd_dev_new();
    dev->cfg = cfg;
    dev->queue_entries = 16;
    int rc = xd_config_set(cfg, "async", async, "test", err, sizeof(err)) ||
             xd_config_set(cfg, "enable_redundancy", "true", "test", err, sizeof(err)) ||
             xd_config_set(cfg, "redundancy_factor", "2", "test", err, sizeof(err)) ||
             xd_config_set(cfg, "mirror_directories", dirs, "test", err, sizeof(err)) ||
             xd_config_check(cfg, err, sizeof(err)) ||
             xd_dev_push(dev, &xd_file_ops, err, sizeof(err)) ||
             xd_dev_push(dev, &flaky_ops, err, sizeof(err)) ||
             xd_dev_push(dev, &xd_mirror_ops, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return dev;
}

static struct xd_file *open_file(struct xd_dev *dev)
{
    struct xd_file *f = NULL;
    unlink(primary);
    unlink(copy);
    if (xd_file_open(dev, primary, XD_OPEN_CREATE, NBLK * BLK, &f, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", primary, err);
        exit(1);
    }
    return f;
}

static void fill(char *buf, int seed)
{
    for (int i = 0; i < NBLK * BLK; i++)
        buf[i] = (char)(i * 7 + seed);
}

/* The bytes of block b of path equal want's. */
static bool on_disk(const char *path, int b, const char *want)
{
    char got[BLK];
    int fd = open(path, O_RDONLY);
    bool same = fd >= 0 && pread(fd, got, BLK, (off_t)b * BLK) == BLK &&
                !memcmp(got, want + b * BLK, BLK);
    if (fd >= 0)
        close(fd);
    return same;
}

static void corrupt(const char *path, int b)
{
    char junk[BLK];
    memset(junk, 0xa5, sizeof(junk));
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, junk, BLK, (off_t)b * BLK) == BLK);
    if (fd >= 0)
        close(fd);
}

/* Read block b: inline, or submitted and reaped under an async mode. */
static int64_t read_block(struct xd_dev *dev, struct xd_file *f, char *buf, int b, bool async)
{
    if (!async)
        return xd_read(dev, f, buf, BLK, (uint64_t)b * BLK);
    struct xd_req req = {.op = XD_OP_READ, .file = f, .buf = buf, .len = BLK,
                         .off = (uint64_t)b * BLK};
    struct xd_req *done[4];
    int rc = xd_submit(dev, &req);
    if (rc == XD_QUEUED) {
        CHECK(xd_commit(dev) >= 0);
        CHECK(xd_reap(dev, done, 1, 4, NULL) == 1 && done[0] == &req);
    }
    return req.result;
}

/* --- the tests ------------------------------------------------------------------ */

static void test_repair(const char *async)
{
    bool queued = strcmp(async, "sync");
    struct xd_dev *dev = open_dev(async);
    struct xd_file *f = open_file(dev);
    static char data[NBLK * BLK], buf[BLK];
    struct stat st;
    CHECK_MSG(!stat(copy, &st) && st.st_size == NBLK * BLK, "%s: the copy is missing or short",
              async);
    fill(data, 1);
    CHECK(xd_write(dev, f, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    for (int b = 0; b < NBLK; b++)
        CHECK(on_disk(primary, b, data) && on_disk(copy, b, data));

    /* block 3 of the primary goes bad, and the layer below says so once */
    corrupt(primary, 3);
    fail_set(XD_OP_READ, primary_dir, 1);
    CHECK(read_block(dev, f, buf, 3, queued) == BLK);
    CHECK_MSG(!memcmp(buf, data + 3 * BLK, BLK), "%s: the read was not served from the copy", async);
    CHECK_MSG(on_disk(primary, 3, data), "%s: the primary was not repaired", async);
    CHECK(layer_stat(dev, "mirror", "repairs") == 1);
    CHECK(layer_stat(dev, "mirror", "read_errors") == 1);
    CHECK(layer_stat(dev, "mirror", "degraded") == 0);

    /* a read that fails every time: served, and degraded at the third */
    fail_set(XD_OP_READ, primary_dir, -1);
    for (int i = 0; i < 3; i++) {
        memset(buf, 0, sizeof(buf));
        CHECK(read_block(dev, f, buf, 5, queued) == BLK && !memcmp(buf, data + 5 * BLK, BLK));
    }
    CHECK_MSG(layer_stat(dev, "mirror", "degraded") == 1, "%s: the primary is not degraded", async);
    const char *notice = xd_dev_notice(dev);
    CHECK_MSG(notice && strstr(notice, "copy 1") && strstr(notice, "degraded after 3 errors"),
              "%s: notice %s", async, notice ? notice : "(none)");
    long long errors = layer_stat(dev, "mirror", "read_errors");
    CHECK(read_block(dev, f, buf, 6, queued) == BLK && !memcmp(buf, data + 6 * BLK, BLK));
    CHECK_MSG(layer_stat(dev, "mirror", "read_errors") == errors, "%s: a degraded copy was read",
              async);
    /* the last healthy copy is never degraded: its errors go to the caller */
    fail_set(XD_OP_READ, copy_dir, -1);
    for (int i = 0; i < 4; i++)
        CHECK(read_block(dev, f, buf, 6, queued) == -EIO);
    CHECK(layer_stat(dev, "mirror", "degraded") == 1);
    char line[XD_ERRLEN];
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)) && strstr(line, "no copy of"));
    fail_set(XD_OP_READ, NULL, 0);
    xd_file_close(dev, f);
    xd_close(dev);
}

static void test_write_failures(void)
{
    struct xd_dev *dev = open_dev("io_uring");
    struct xd_file *f = open_file(dev);
    static char data[NBLK * BLK], buf[BLK];
    fill(data, 2);
    /* every copy fails: the write fails, nobody is degraded */
    fail_set(XD_OP_WRITE, "/", 1 + 1);
    CHECK(xd_write(dev, f, data, BLK, 0) == -EIO);
    CHECK(layer_stat(dev, "mirror", "degraded") == 0);
    CHECK(layer_stat(dev, "mirror", "write_errors") == 2);
    /* the copy fails an async write: the write succeeds, the copy is degraded */
    fail_set(XD_OP_WRITE, copy_dir, 1);
    struct xd_req req = {.op = XD_OP_WRITE, .file = f, .buf = data, .len = sizeof(data)};
    struct xd_req *done[4];
    int rc = xd_submit(dev, &req);
    if (rc == XD_QUEUED) {
        CHECK(xd_commit(dev) >= 0);
        CHECK(xd_reap(dev, done, 1, 4, NULL) == 1 && done[0] == &req);
    }
    CHECK(req.result == (int64_t)sizeof(data));
    CHECK(layer_stat(dev, "mirror", "write_errors") == 3);
    CHECK(layer_stat(dev, "mirror", "degraded") == 1);
    /* later writes skip it, and so does a reopen */
    fill(data, 3);
    CHECK(xd_write(dev, f, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    CHECK(on_disk(primary, 0, data) && !on_disk(copy, 0, data));
    xd_file_close(dev, f);
    CHECK(!xd_file_open(dev, primary, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && !memcmp(buf, data, BLK));
    CHECK(layer_stat(dev, "mirror", "degraded") == 1);
    fail_set(XD_OP_READ, NULL, 0);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* A write whose copies fail apart while the other copy is degraded under
 * it: the copy's part fails at once, and before the primary's part comes
 * back a read's repair of the primary fails, degrading it. The write was
 * reported done (the primary took it) though the copy, the one copy still
 * read, never had it: the next read of the block returned the old bytes
 * (fio's verify failed on the chain with faults and retries). It fails
 * now, as a write no copy in use took, and sent again (as the retry layer
 * does) it lands on the copy. */
static void test_write_lands_on_a_copy_in_use(const char *async)
{
    struct xd_dev *dev = open_dev(async);
    struct xd_file *f = open_file(dev);
    static char old[NBLK * BLK], data[NBLK * BLK], buf[BLK];
    fill(old, 4);
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (ssize_t)sizeof(old));
    fill(data, 5);
    struct xd_req w = {.op = XD_OP_WRITE, .file = f, .buf = data + 2 * BLK, .len = BLK,
                       .off = 2 * BLK};
    struct xd_req *done[4];
    fail_set(XD_OP_WRITE, copy_dir, 1);
    CHECK_MSG(xd_submit(dev, &w) == XD_QUEUED, "%s: the primary's part is not in flight", async);
    /* block 5's read fails on the primary, and so does its repair */
    fail_set(XD_OP_READ, primary_dir, 1);
    fail_also(XD_OP_WRITE, primary_dir, 1);
    CHECK(xd_read(dev, f, buf, BLK, 5 * BLK) == BLK && !memcmp(buf, old + 5 * BLK, BLK));
    CHECK_MSG(layer_stat(dev, "mirror", "degraded") == 1, "%s: the primary is not degraded", async);
    fail_set(XD_OP_READ, NULL, 0);
    CHECK(xd_commit(dev) >= 0);
    CHECK(xd_reap(dev, done, 1, 4, NULL) == 1 && done[0] == &w);
    CHECK_MSG(w.result == -EIO, "%s: a write only a degraded copy took came back %lld", async,
              (long long)w.result);
    char line[XD_ERRLEN];
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)) && strstr(line, "in use"));
    if (w.result < 0) { /* sent again: to the copy alone */
        w.result = 0;
        int rc = xd_submit(dev, &w);
        if (rc == XD_QUEUED) {
            CHECK(xd_commit(dev) >= 0);
            CHECK(xd_reap(dev, done, 1, 4, NULL) == 1 && done[0] == &w);
        }
        CHECK(w.result == BLK);
    }
    /* what was acknowledged is what a read returns */
    CHECK(xd_read(dev, f, buf, BLK, 2 * BLK) == BLK);
    CHECK_MSG(!memcmp(buf, data + 2 * BLK, BLK), "%s: an acknowledged write was lost", async);
    CHECK(on_disk(copy, 2, data));
    xd_file_close(dev, f);
    xd_close(dev);
}

static void stuck(int sig)
{
    static const char line[] = "mirror.c: test_repair_waits_for_a_write_in_its_batch: reap never "
                               "returned (a drain waiting for a write its own reap held)\n";
    (void)sig;
    if (write(2, line, sizeof(line) - 1) < 0)
        _exit(2);
    _exit(1);
}

/* A read's failure and the completions of a write it overlaps come back
 * in one reap (the fault layer hands its failures up first): the read's
 * repair takes the range's turn, which waits for the write to land, but
 * the write had landed, its completions later in the same batch, not yet
 * counted. The drain reaped below for ever, finding nothing in flight
 * (fio spun at 100% CPU, never finishing: a randrw job with bsrange,
 * faults and retries). The batch's writes are counted first now, and the
 * read is then served from the copy and repaired. file, fault, mirror. */
static void test_repair_waits_for_a_write_in_its_batch(const char *async)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = xd_dev_new();
    dev->cfg = cfg;
    dev->queue_entries = 16;
    const char *kv[] = {"async", async, "enable_redundancy", "true", "redundancy_factor", "2",
                        "mirror_directories", copy_dir, "enable_fault_injection", "true",
                        "fault_ops", "read", "fault_every", "2", NULL};
    int rc = 0;
    for (const char *const *p = kv; !rc && p[0]; p += 2)
        rc = xd_config_set(cfg, p[0], p[1], "test", err, sizeof(err));
    rc = rc || xd_config_check(cfg, err, sizeof(err)) ||
         xd_dev_push(dev, &xd_file_ops, err, sizeof(err)) ||
         xd_dev_push(dev, &xd_fault_ops, err, sizeof(err)) ||
         xd_dev_push(dev, &xd_mirror_ops, err, sizeof(err));
    if (rc) {
        CHECK_MSG(0, "%s: open: %s", async, err);
        xd_close(dev);
        return;
    }
    struct xd_file *f = open_file(dev);
    static char old[NBLK * BLK], data[NBLK * BLK], got[2 * BLK];
    fill(old, 6);
    fill(data, 7);
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (ssize_t)sizeof(old));
    CHECK(xd_read(dev, f, got, BLK, 0) == BLK); /* the 1st read: the 2nd fails */
    struct xd_req w = {.op = XD_OP_WRITE, .file = f, .buf = data, .len = 4 * BLK};
    struct xd_req r = {.op = XD_OP_READ, .file = f, .buf = got, .len = 2 * BLK, .off = BLK};
    CHECK_MSG(xd_submit(dev, &w) == XD_QUEUED, "%s: the write is not in flight", async);
    CHECK_MSG(xd_submit(dev, &r) == XD_QUEUED, "%s: the read's failure is not queued", async);
    CHECK(xd_commit(dev) >= 0);
    signal(SIGALRM, stuck);
    alarm(10);
    struct xd_req *done[4];
    for (int n = 0, left = 2; left > 0; left -= n) {
        n = xd_reap(dev, done, 2, 4, NULL);
        CHECK(n > 0);
        if (n <= 0)
            break;
    }
    alarm(0);
    CHECK_MSG(w.result == 4 * BLK && r.result == 2 * BLK, "%s: write %lld, read %lld", async,
              (long long)w.result, (long long)r.result);
    CHECK(layer_stat(dev, "mirror", "read_errors") >= 1 && layer_stat(dev, "mirror", "degraded") == 0);
    for (int b = 0; b < 4; b++)
        CHECK_MSG(on_disk(primary, b, data) && on_disk(copy, b, data), "%s: block %d", async, b);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* Two devices (two fio jobs) in one thread, each sending a write of block
 * 0 before either is reaped. Without turns each copy's two writes landed
 * in their own order (one copy could keep the other's data); now the
 * second waits for the first's turn, having let the first device's write
 * land (drained, held for its caller's reap), so nothing waits on itself
 * and both copies hold the write sent last. */
static void test_writers_take_turns(void)
{
    struct xd_dev *d1 = open_dev("io_uring"), *d2 = open_dev("io_uring");
    struct xd_file *f1 = open_file(d1), *f2 = NULL;
    CHECK(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)));
    /* the first writer went solo; the second asked it to share */
    CHECK(layer_stat(d1, "mirror", "solo_files") == 1 && layer_stat(d2, "mirror", "solo_files") == 0);
    struct stat pst;
    char words[96];
    CHECK(!stat(primary, &pst));
    snprintf(words, sizeof(words), "/dev/shm/xdevice-mirror-%llx-%llx",
             (unsigned long long)pst.st_dev, (unsigned long long)pst.st_ino);
    CHECK_MSG(!access(words, F_OK), "no shared words at %s", words);
    static char a[NBLK * BLK], b[NBLK * BLK];
    fill(a, 4);
    fill(b, 5);
    struct xd_req r1 = {.op = XD_OP_WRITE, .file = f1, .buf = a, .len = BLK};
    struct xd_req r2 = {.op = XD_OP_WRITE, .file = f2, .buf = b, .len = BLK};
    struct xd_req *done[4];
    CHECK(xd_submit(d1, &r1) == XD_QUEUED); /* out, holding its turn */
    CHECK(xd_submit(d2, &r2) == XD_QUEUED); /* waited for it */
    CHECK(layer_stat(d2, "mirror", "turn_waits") == 1);
    CHECK(xd_commit(d2) >= 0 && xd_reap(d2, done, 1, 4, NULL) == 1 && done[0] == &r2);
    CHECK(xd_commit(d1) >= 0 && xd_reap(d1, done, 1, 4, NULL) == 1 && done[0] == &r1);
    CHECK(r1.result == BLK && r2.result == BLK);
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(copy, 0, b),
              "the copies do not both hold the write sent last");
    /* solo again once the other writer has closed (core/turns.c tries
     * every XD_TURNS_REGAIN_EVERY-th write that takes a turn), not before */
    for (unsigned i = 0; i < 2 * XD_TURNS_REGAIN_EVERY; i++)
        CHECK(xd_write(d1, f1, a + BLK, BLK, BLK) == BLK);
    CHECK(layer_stat(d1, "mirror", "solo_regained") == 0);
    xd_file_close(d2, f2);
    for (unsigned i = 0; i < XD_TURNS_REGAIN_EVERY; i++)
        CHECK(xd_write(d1, f1, b + BLK, BLK, BLK) == BLK);
    CHECK_MSG(layer_stat(d1, "mirror", "solo_regained") == 1, "not solo again: %lld",
              layer_stat(d1, "mirror", "solo_regained"));
    CHECK(on_disk(primary, 1, b) && on_disk(copy, 1, b));
    xd_file_close(d1, f1);
    CHECK_MSG(access(words, F_OK) && errno == ENOENT, "the last writer left %s", words);
    xd_close(d2);
    xd_close(d1);
}

/* A writer whose shared page is another user's cannot ask that user's
 * solo writer (which takes no turns) to take turns: its open is refused,
 * saying so, while one is at work (here: the page made another user's,
 * the solo byte held through a descriptor of our own), and goes through
 * (taking turns, never solo) once none is. */
static void test_solo_writer_of_another_user(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skip: a solo writer of another user: needs root to make its page\n");
        return;
    }
    struct xd_dev *dev = open_dev("sync");
    xd_file_close(dev, open_file(dev)); /* the primary exists; its page went with it */
    struct stat pst;
    char words[96];
    CHECK(!stat(primary, &pst));
    snprintf(words, sizeof(words), "/xdevice-mirror-%llx-%llx", (unsigned long long)pst.st_dev,
             (unsigned long long)pst.st_ino);
    int page = shm_open(words, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    CHECK(page >= 0 && !ftruncate(page, 4096) && !fchown(page, 65534, 65534));
    int solo = open(primary, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = ((off_t)1 << 62) - 2,
                       .l_len = 1};
    CHECK(solo >= 0 && !fcntl(solo, F_OFD_SETLK, &fl));
    struct xd_file *f = NULL;
    int rc = xd_file_open(dev, primary, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == -EBUSY && strstr(err, "cannot be asked to take turns") && strstr(err, words),
              "rc %d: %s", rc, err);
    close(solo); /* that writer closed */
    long long solo_files = layer_stat(dev, "mirror", "solo_files");
    CHECK_MSG(!xd_file_open(dev, primary, 0, 0, &f, err, sizeof(err)), "%s", err);
    CHECK(layer_stat(dev, "mirror", "solo_files") == solo_files); /* not solo: not its page */
    if (f)
        xd_file_close(dev, f);
    if (page >= 0)
        close(page);
    shm_unlink(words);
    xd_close(dev);
}

static bool stamped(const char *kind)
{
    char text[160 + PATH_MAX];
    ssize_t n = lgetxattr(copy, "user.xdevice.mirror", text, sizeof(text) - 1);
    if (n < 0)
        return false;
    text[n] = 0;
    return !strncmp(text, kind, strlen(kind));
}

static struct xd_file *reopen(struct xd_dev *dev)
{
    struct xd_file *f = NULL;
    CHECK_MSG(!xd_file_open(dev, primary, XD_OPEN_CREATE, 0, &f, err, sizeof(err)), "%s", err);
    return f;
}

/* A copy is trusted across opens only when its stamp says it matches the
 * primary as it is; a primary that missed writes is filled from the copy. */
static void test_stamps(void)
{
    static char data[NBLK * BLK], other[NBLK * BLK];
    struct xd_dev *dev = open_dev("sync");
    struct xd_file *f = open_file(dev);
    fill(data, 4);
    CHECK(xd_write(dev, f, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    CHECK_MSG(!stamped(""), "a copy open for writing still has a stamp");
    xd_file_close(dev, f);
    if (!stamped("sync ")) {
        CHECK_MSG(errno == ENOTSUP, "no sync stamp after a clean close: %s", strerror(errno));
        xd_close(dev);
        return; /* no user xattrs here: every open fills, as test_repair saw */
    }
    /* reopened as is: trusted, nothing filled */
    uint64_t filled = (uint64_t)layer_stat(dev, "mirror", "filled_bytes");
    f = reopen(dev);
    CHECK(layer_stat(dev, "mirror", "filled_bytes") == (int64_t)filled);
    xd_file_close(dev, f);
    /* the primary written without the mirror, same size: the copy is filled */
    fill(other, 5);
    int fd = open(primary, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, other, sizeof(other), 0) == (ssize_t)sizeof(other));
    close(fd);
    f = reopen(dev);
    CHECK_MSG(on_disk(copy, 0, other) && on_disk(copy, NBLK - 1, other),
              "a copy stamped for an older primary was trusted");
    /* the primary misses a write: the copy is newer, and says so at close */
    fail_set(XD_OP_WRITE, primary_dir, 1);
    CHECK(xd_write(dev, f, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    CHECK(layer_stat(dev, "mirror", "degraded") == 1 && !on_disk(primary, 0, data));
    xd_file_close(dev, f);
    xd_close(dev);
    CHECK(stamped("newer "));
    dev = open_dev("sync"); /* a new device: nothing remembered but the stamp */
    f = reopen(dev);
    CHECK_MSG(on_disk(primary, 0, data) && on_disk(primary, NBLK - 1, data),
              "the primary was not filled from the newer copy");
    CHECK(layer_stat(dev, "mirror", "degraded") == 0);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* The primary deleted and made again (fio lays a missing file out anew; here
 * the open's create): its copy, stamped for the file that was at that path,
 * may hold the only good data. The open is refused in one line, and the copy
 * keeps its data; moved back over the primary, it is the file again. Before,
 * the copy was filled from the new primary's zeros. */
static void test_primary_replaced(void)
{
    static char data[NBLK * BLK];
    struct xd_dev *dev = open_dev("sync");
    struct xd_file *f = open_file(dev);
    fill(data, 9);
    CHECK(xd_write(dev, f, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    xd_file_close(dev, f);
    if (!stamped("sync ")) {
        CHECK_MSG(errno == ENOTSUP, "no sync stamp after a clean close: %s", strerror(errno));
        xd_close(dev);
        return; /* no user xattrs: nothing tells the primary's files apart */
    }
    CHECK(!unlink(primary));
    f = NULL;
    /* made again larger: the refusal must not grow the copy either */
    int rc = xd_file_open(dev, primary, XD_OPEN_CREATE, 2 * NBLK * BLK, &f, err, sizeof(err));
    CHECK_MSG(rc == -ESTALE && strstr(err, "is not the file its copy") && strstr(err, copy) &&
                  !strchr(err, '\n'),
              "a primary made again: open %d '%s'", rc, err);
    struct stat cst;
    CHECK_MSG(on_disk(copy, 0, data) && on_disk(copy, NBLK - 1, data) && !stat(copy, &cst) &&
                  cst.st_size == NBLK * BLK,
              "the copy lost its data to the new primary, or was grown");
    if (f)
        xd_file_close(dev, f);
    /* the refused open stamps nothing: before, its close stamped the copy
     * "sync" with the new primary, and the next open took the copy (the
     * old file's data) as in sync with it, without a word */
    f = NULL;
    rc = xd_file_open(dev, primary, 0, NBLK * BLK, &f, err, sizeof(err));
    CHECK_MSG(rc == -ESTALE && strstr(err, "is not the file its copy"),
              "a second open of the primary made again: %d '%s'", rc, rc ? err : "");
    if (f)
        xd_file_close(dev, f);
    CHECK(!rename(copy, primary)); /* the copy's data kept: moved back */
    f = reopen(dev);
    CHECK_MSG(f && on_disk(primary, 0, data) && on_disk(copy, NBLK - 1, data),
              "the copy moved back is not the file with its copy made anew");
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
}

/* A copy open for writing by two devices is stamped by the last to close,
 * not the first: the other's writes move its data on. */
static void test_last_writer_stamps(void)
{
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync");
    struct xd_file *f1 = open_file(d1), *f2 = NULL;
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    xd_file_close(d1, f1);
    CHECK_MSG(!stamped(""), "the first of two writers to close stamped the copy");
    if (f2)
        xd_file_close(d2, f2);
    CHECK_MSG(stamped("sync ") || errno == ENOTSUP, "the last writer did not stamp the copy");
    xd_close(d2);
    xd_close(d1);
}

/* A process whose primary failed a write goes on writing the copy alone,
 * fsyncs, and is killed: the copy says it is newer (stamped when the
 * primary degraded), so the next open fills the primary from it. With no
 * stamp (as before) the open filled the copy from the stale primary, and
 * the fsynced write was gone from both. */
static void test_degraded_primary_survives_a_kill(void)
{
    static char old[NBLK * BLK], data[NBLK * BLK];
    fill(old, 8);
    fill(data, 9);
    struct xd_dev *dev = open_dev("sync");
    struct xd_file *f = open_file(dev);
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (ssize_t)sizeof(old));
    xd_file_close(dev, f);
    xd_close(dev);
    pid_t pid = fork();
    if (pid == 0) {
        struct xd_dev *d = open_dev("sync");
        struct xd_file *cf = reopen(d);
        fail_set(XD_OP_WRITE, primary_dir, 1);
        bool ok = xd_write(d, cf, data, sizeof(data), 0) == (ssize_t)sizeof(data) &&
                  layer_stat(d, "mirror", "degraded") == 1 && xd_flush(d, cf, 0) == 0;
        _exit(ok ? 0 : 1); /* no close: as kill -9 leaves it */
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer did not degrade the "
                                                             "primary and fsync (status %d)", status);
    if (!stamped("newer ")) {
        CHECK_MSG(errno == ENOTSUP, "a degraded primary's copy is not stamped newer: %s",
                  strerror(errno));
        return; /* no user xattrs here: nothing tells the next open */
    }
    dev = open_dev("sync");
    f = reopen(dev);
    CHECK_MSG(on_disk(copy, 0, data) && on_disk(copy, NBLK - 1, data),
              "the fsynced write is gone from the copy");
    CHECK_MSG(on_disk(primary, 0, data) && on_disk(primary, NBLK - 1, data),
              "the primary was not filled from the newer copy");
    xd_file_close(dev, f);
    xd_close(dev);
}

/* As above, and the next open, filling the primary from the newer copy,
 * is killed after its first chunk landed: the primary's mtime moved, so
 * the copy's "newer" stamp, naming the primary as it was, matched no
 * more, and the open after filled the copy from the half-filled primary:
 * the fsynced writes were gone from both. */
static void die_mid_fill(void)
{
    static char data[NBLK * BLK];
    fill(data, 11);
    int fd = open(primary, O_WRONLY);
    if (fd >= 0 && pwrite(fd, data, BLK, 0) == BLK) /* the first chunk's bytes landed */
        _exit(0);                                    /* then kill -9 */
    _exit(1);
}

static void test_kill_while_filling_the_primary(void)
{
    static char old[NBLK * BLK], data[NBLK * BLK];
    fill(old, 10);
    fill(data, 11);
    struct xd_dev *dev = open_dev("sync");
    struct xd_file *f = open_file(dev);
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (ssize_t)sizeof(old));
    xd_file_close(dev, f);
    xd_close(dev);
    pid_t pid = fork();
    if (pid == 0) { /* degrades the primary, fsyncs the copy alone, dies */
        struct xd_dev *d = open_dev("sync");
        struct xd_file *cf = reopen(d);
        fail_set(XD_OP_WRITE, primary_dir, 1);
        bool ok = xd_write(d, cf, data, sizeof(data), 0) == (ssize_t)sizeof(data) &&
                  layer_stat(d, "mirror", "degraded") == 1 && xd_flush(d, cf, 0) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0);
    if (!stamped("newer "))
        return; /* no user xattrs here (test_degraded_primary_survives_a_kill says so) */
    usleep(20000); /* a coarse mtime clock still ticks between the two writes */
    pid = fork();
    if (pid == 0) { /* fills the primary from the copy, dies after a chunk */
        struct xd_dev *d = open_dev("sync");
        hook.where = primary_dir;
        hook.run = die_mid_fill;
        reopen(d);
        _exit(2); /* the fill wrote nothing to the primary */
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "no fill of the primary to kill "
                                                             "(status %d)", status);
    dev = open_dev("sync");
    f = reopen(dev);
    CHECK_MSG(on_disk(copy, NBLK - 1, data), "the fsynced write is gone from the copy");
    CHECK_MSG(on_disk(primary, 0, data) && on_disk(primary, NBLK - 1, data),
              "the primary was not filled from the newer copy after the killed fill");
    xd_file_close(dev, f);
    xd_close(dev);
}

/* The writers' page of a file whose writers were all killed is removed
 * when the next mirror is made; one a live writer holds stays. */
static void test_pages_of_killed_writers_swept(void)
{
    struct xd_dev *dev = open_dev("sync");
    xd_file_close(dev, open_file(dev));
    xd_close(dev);
    struct stat pst;
    char words[96];
    CHECK(!stat(primary, &pst));
    snprintf(words, sizeof(words), "/dev/shm/xdevice-mirror-%llx-%llx",
             (unsigned long long)pst.st_dev, (unsigned long long)pst.st_ino);
    pid_t pid = fork();
    if (pid == 0) {
        struct xd_dev *d = open_dev("sync");
        reopen(d);
        _exit(access(words, F_OK) ? 1 : 0); /* no close: as kill -9 leaves it */
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer made no page %s", words);
    CHECK_MSG(!access(words, F_OK), "no page left by the killed writer to sweep");
    struct xd_dev *live = open_dev("sync");
    struct xd_file *f = reopen(live);
    dev = open_dev("sync");
    CHECK_MSG(!access(words, F_OK), "a page a live writer holds was swept");
    xd_file_close(live, f);
    CHECK_MSG(access(words, F_OK) && errno == ENOENT, "the last writer left %s", words);
    xd_close(live);
    xd_close(dev);
    pid = fork();
    if (pid == 0) {
        reopen(open_dev("sync"));
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && !access(words, F_OK));
    xd_close(open_dev("sync"));
    CHECK_MSG(access(words, F_OK) && errno == ENOENT, "a page nobody holds was not swept: %s",
              words);
}

/* Two primaries of one name in different directories never share their
 * copy while both are open; two devices of one primary do. */
static void test_one_primary_per_copy(const char *other)
{
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync"), *d3 = open_dev("sync");
    struct xd_file *f1 = NULL, *f2 = NULL, *f3 = NULL;
    unlink(primary);
    unlink(copy);
    CHECK(!xd_file_open(d1, primary, XD_OPEN_CREATE, NBLK * BLK, &f1, err, sizeof(err)));
    CHECK(!xd_file_open(d3, primary, XD_OPEN_CREATE, NBLK * BLK, &f3, err, sizeof(err)));
    CHECK_MSG(layer_stat(d3, "mirror", "degraded") == 0, "a second device of one primary was refused");
    CHECK(!xd_file_open(d2, other, XD_OPEN_CREATE, NBLK * BLK, &f2, err, sizeof(err)));
    const char *notice = xd_dev_notice(d2);
    CHECK_MSG(layer_stat(d2, "mirror", "degraded") == 1 && notice && strstr(notice, "another file"),
              "two primaries share a copy: %s", notice ? notice : "(no notice)");
    static char data[NBLK * BLK];
    fill(data, 7);
    CHECK(f2 && xd_write(d2, f2, data, sizeof(data), 0) == (ssize_t)sizeof(data));
    CHECK_MSG(!on_disk(copy, 0, data), "the other primary wrote into the copy");
    if (f1)
        xd_file_close(d1, f1);
    if (f3)
        xd_file_close(d3, f3);
    if (f2)
        xd_file_close(d2, f2);
    xd_close(d1);
    xd_close(d3);
    /* alone now: the copy is its own again, filled from it */
    CHECK(!xd_file_open(d2, other, XD_OPEN_CREATE, 0, &f2, err, sizeof(err)));
    CHECK(layer_stat(d2, "mirror", "degraded") == 1); /* remembered for this device's life */
    xd_file_close(d2, f2);
    xd_close(d2);
    d2 = open_dev("sync");
    CHECK(!xd_file_open(d2, other, XD_OPEN_CREATE, 0, &f2, err, sizeof(err)));
    CHECK(layer_stat(d2, "mirror", "degraded") == 0 && on_disk(copy, 0, data));
    xd_file_close(d2, f2);
    xd_close(d2);
}

/* Is a lock of kind ("FLOCK", "OFDLCK") on inode ino waited for (a "->"
 * line of /proc/locks)? */
static bool lock_waited_on(const char *kind, ino_t ino)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256], want[40], waiter[24];
    bool found = false;
    snprintf(want, sizeof(want), ":%llu ", (unsigned long long)ino);
    snprintf(waiter, sizeof(waiter), "-> %s", kind);
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, waiter) && strstr(line, want);
    if (f)
        fclose(f);
    return found;
}

struct claim_open {
    struct xd_dev *dev;
    const char *path;
    struct xd_file *f;
    volatile bool done;
};

static void *claim_open_main(void *arg)
{
    struct claim_open *o = arg;
    char e[XD_ERRLEN];
    if (xd_file_open(o->dev, o->path, XD_OPEN_CREATE, NBLK * BLK, &o->f, e, sizeof(e)))
        o->f = NULL;
    o->done = true;
    return NULL;
}

/* Does open o come to wait on a flock of inode ino (within 10 s)? */
static bool open_waits_on_flock(const struct claim_open *o, ino_t ino)
{
    for (uint64_t end = xd_clock_monotonic_ns() + 10000000000ull;
         !o->done && xd_clock_monotonic_ns() < end; usleep(1000))
        if (lock_waited_on("FLOCK", ino))
            return true;
    return false;
}

/* The write test_fill_takes_turns sends from another thread while a
 * second device fills its copy. */
static struct {
    struct xd_dev *dev;
    struct xd_file *f;
    const char *data;
    pthread_t thread;
    int64_t rc;
    volatile bool done;
} late;

static void *late_write_main(void *arg)
{
    (void)arg;
    late.rc = xd_write(late.dev, late.f, late.data, BLK, 0);
    late.done = true;
    return NULL;
}

/* The hook at the filler's first write of its copy: the other device's
 * write goes, and the filler goes on once it completed or waits for a
 * turn on the primary (within 10 s). */
static void write_during_fill(void)
{
    struct stat st;
    CHECK(!stat(primary, &st));
    CHECK(!pthread_create(&late.thread, NULL, late_write_main, NULL));
    for (uint64_t end = xd_clock_monotonic_ns() + 10000000000ull;
         !late.done && xd_clock_monotonic_ns() < end; usleep(1000))
        if (lock_waited_on("OFDLCK", st.st_ino))
            break;
}

/* The third word of the writers' shared page of primary (mirror.c: 1 while
 * the writers keep every copy in sync), set to v; false when there is none. */
static bool set_in_sync_word(uint32_t v)
{
    struct stat pst;
    char words[96];
    if (stat(primary, &pst))
        return false;
    snprintf(words, sizeof(words), "/xdevice-mirror-%llx-%llx", (unsigned long long)pst.st_dev,
             (unsigned long long)pst.st_ino);
    int fd = shm_open(words, O_RDWR | O_NOFOLLOW, 0600);
    if (fd < 0)
        return false;
    uint32_t *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (w == MAP_FAILED)
        return false;
    __atomic_store_n(&w[2], v, __ATOMIC_SEQ_CST);
    munmap(w, 4096);
    return true;
}

/* A device opening a file another device, alone at its open, writes with
 * every copy in sync trusts the copy it finds unstamped (the other removed
 * the stamp): it filled it whole again, each numjobs job one more copy of
 * the file. Cleared (a degrade somewhere), the next one fills. */
static void test_joiner_trusts_kept_copies(void)
{
    static char a[NBLK * BLK];
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync"), *d3 = open_dev("sync");
    struct xd_file *f1 = open_file(d1), *f2 = NULL, *f3 = NULL;
    fill(a, 8);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    CHECK_MSG(layer_stat(d2, "mirror", "filled_bytes") == 0, "the joiner filled %lld bytes",
              (long long)layer_stat(d2, "mirror", "filled_bytes"));
    CHECK(set_in_sync_word(0));
    CHECK_MSG(!xd_file_open(d3, primary, 0, 0, &f3, err, sizeof(err)), "%s", err);
    CHECK_MSG(layer_stat(d3, "mirror", "filled_bytes") == (int64_t)sizeof(a),
              "out of sync: the joiner filled %lld bytes",
              (long long)layer_stat(d3, "mirror", "filled_bytes"));
    if (f3)
        xd_file_close(d3, f3);
    if (f2)
        xd_file_close(d2, f2);
    xd_file_close(d1, f1);
    xd_close(d3);
    xd_close(d2);
    xd_close(d1);
}

/* Writers of one file whose copies are in other directories: the words
 * are the primary's, so a joiner took the first writer's "kept in sync" for
 * its own copy, which nobody had filled (it held zeros where the primary
 * held data), and, closing last, stamped it "sync" though it missed the
 * first writer's writes: the next open trusted it, and a read the primary
 * failed was served stale from it. Now the joiner fills its copy, and no
 * copy is stamped "sync" after writers with other copy sets (the next open
 * fills them). */
static void test_writers_with_other_copies(const char *other_dir, const char *other)
{
    static char a[NBLK * BLK], b[NBLK * BLK];
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev_copies("sync", other_dir);
    unlink(other);
    struct xd_file *f1 = open_file(d1), *f2 = NULL;
    fill(a, 21);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    CHECK_MSG(layer_stat(d2, "mirror", "filled_bytes") == (int64_t)sizeof(a),
              "a joiner with another copy filled %lld bytes of %zu",
              (long long)layer_stat(d2, "mirror", "filled_bytes"), sizeof(a));
    CHECK(on_disk(other, 3, a));
    fill(b, 22);
    CHECK(xd_write(d1, f1, b, BLK, 0) == BLK); /* not on d2's copy */
    xd_file_close(d1, f1);
    if (f2)
        xd_file_close(d2, f2); /* the last writer */
    char text[160 + PATH_MAX];
    ssize_t n = lgetxattr(other, "user.xdevice.mirror", text, sizeof(text) - 1);
    text[n > 0 ? n : 0] = 0;
    CHECK_MSG(n < 0 || strncmp(text, "sync", 4),
              "a copy that missed another writer's write was stamped: %s", text);
    xd_close(d2);
    xd_close(d1);
    unlink(other);
}

/* A device opening a file another device is writing fills its copy from
 * the primary while the other writes: a write that completed on both
 * copies between the fill's read of the primary and its write of the copy
 * was put back to the older bytes in the copy (the primary kept the new
 * ones: the copies differed, and a read served by the copy returned old
 * data). The fill takes its turn on each chunk as a write does, so that
 * write now waits for it and lands after. */
static void test_fill_takes_turns(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK];
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync");
    struct xd_file *f1 = open_file(d1), *f2 = NULL;
    fill(a, 6);
    fill(b, 7);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    /* the writers would say the copy is kept in sync (no fill at all):
     * said otherwise here, as a copy degraded by d1 would */
    CHECK_MSG(set_in_sync_word(0), "no shared words for the primary");
    late.dev = d1;
    late.f = f1;
    late.data = b;
    late.done = false;
    hook.where = copy_dir;
    hook.run = write_during_fill; /* at d2's fill of its copy (no stamp: d1 writes) */
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    CHECK_MSG(!hook.run, "the second device did not fill its copy");
    hook.run = NULL;
    if (late.thread)
        pthread_join(late.thread, NULL);
    CHECK(late.rc == BLK);
    CHECK_MSG(on_disk(primary, 0, b), "the primary lost the write");
    CHECK_MSG(on_disk(copy, 0, b), "the fill put back older bytes over a write completed on "
                                   "both copies while it ran");
    if (f2)
        xd_file_close(d2, f2);
    xd_file_close(d1, f1);
    xd_close(d2);
    xd_close(d1);
}

/* The hook at a killed writer's copy write: its primary has the block,
 * its copy never will (as kill -9 between the two leaves them). */
static void die_before_the_copy(void)
{
    _exit(0);
}

/* A writer joins d1 (which keeps the copy in sync and says so), writes a
 * block to the primary and dies before the copy's write, in a child. The
 * survivor never heard of it: a third writer joining trusted the copy, and
 * the survivor's clean close stamped it "sync" though it differed from the
 * primary at that block; every later open trusted it. Now the dead
 * writer's slot in the words gives it away: the joiner fills, and the
 * last close leaves the copy unstamped, so the next open fills it. */
static void test_writer_killed_beside_a_survivor(bool third)
{
    static char a[NBLK * BLK], b[NBLK * BLK];
    struct xd_dev *d1 = open_dev("sync");
    struct xd_file *f1 = open_file(d1);
    fill(a, 12);
    fill(b, 13);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    pid_t pid = fork();
    if (pid == 0) {
        struct xd_dev *d = open_dev("sync");
        struct xd_file *cf = NULL;
        if (xd_file_open(d, primary, 0, 0, &cf, err, sizeof(err)))
            _exit(2);
        hook.where = copy_dir;
        hook.run = die_before_the_copy;
        xd_write(d, cf, b, BLK, 0);
        _exit(3); /* the hook did not run */
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer did not die between "
                                                             "its two writes (status %d)", status);
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(copy, 0, a), "the killed writer's block is not "
                                                             "on the primary alone");
    if (third) {
        struct xd_dev *d3 = open_dev("sync");
        struct xd_file *f3 = NULL;
        CHECK_MSG(!xd_file_open(d3, primary, 0, 0, &f3, err, sizeof(err)), "%s", err);
        CHECK_MSG(layer_stat(d3, "mirror", "filled_bytes") == (int64_t)sizeof(a),
                  "a writer joining after another died trusted the copy (filled %lld bytes)",
                  (long long)layer_stat(d3, "mirror", "filled_bytes"));
        CHECK_MSG(on_disk(copy, 0, b), "the joiner's fill did not bring the copy in line");
        if (f3)
            xd_file_close(d3, f3);
        xd_close(d3);
    }
    xd_file_close(d1, f1);
    xd_close(d1);
    bool same = on_disk(copy, 0, b);
    CHECK_MSG(same || !stamped("sync "), "the survivor stamped \"sync\" a copy that differs "
                                         "from the primary at the dead writer's block");
    d1 = open_dev("sync");
    f1 = reopen(d1);
    CHECK_MSG(on_disk(copy, 0, b) && on_disk(copy, 1, a), "the next open did not fill the copy");
    xd_file_close(d1, f1);
    xd_close(d1);
}

/* A writer beside d1 (in a child: another process) fails its write of
 * block `at` (b's) on member `where` (the copy's or the primary's
 * directory), so it degrades that member and writes block at + 1 (c's) on
 * to the others alone, then closes cleanly: not last, it stamps nothing. */
static void degrade_in_another_writer(const char *where, int at, const char *b, const char *c)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct xd_dev *d = open_dev("sync");
        struct xd_file *cf = NULL;
        if (xd_file_open(d, primary, 0, 0, &cf, err, sizeof(err)))
            _exit(2);
        fail_set(XD_OP_WRITE, where, 1);
        uint64_t off = (uint64_t)at * BLK;
        bool ok = xd_write(d, cf, b + off, BLK, off) == BLK &&
                  layer_stat(d, "mirror", "degraded") == 1 &&
                  xd_write(d, cf, c + off + BLK, BLK, off + BLK) == BLK;
        xd_file_close(d, cf);
        xd_close(d);
        _exit(ok ? 0 : 3);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the other writer did not degrade %s and write on (status %d)", where, status);
}

/* Writer B (another process) degrades the copy, a write to it having
 * failed, and writes on to the primary alone. Writer A, closing last, did
 * not know: it stamped the copy "sync", the next open trusted it, and a
 * read the primary failed was served from it, stale. The writers share
 * what they degrade now: A stops using the copy too, and its close leaves
 * it unstamped, so the next open fills it. */
static void test_copy_degraded_by_another_writer(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK], c[NBLK * BLK], buf[BLK];
    fill(a, 16);
    fill(b, 17);
    fill(c, 18);
    struct xd_dev *d1 = open_dev("sync");
    struct xd_file *f1 = open_file(d1);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    degrade_in_another_writer(copy_dir, 0, b, c);
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(primary, 1, c) && on_disk(copy, 0, a),
              "the other writer's blocks are not on the primary alone");
    CHECK(xd_read(d1, f1, buf, BLK, 0) == BLK && !memcmp(buf, b, BLK));
    CHECK_MSG(layer_stat(d1, "mirror", "degraded") == 1,
              "a writer still uses the copy another writer degraded");
    xd_file_close(d1, f1);
    xd_close(d1);
    CHECK_MSG(!stamped("sync "), "the last writer stamped \"sync\" a copy another writer "
                                 "degraded (it missed that writer's writes)");
    d1 = open_dev("sync");
    f1 = reopen(d1);
    fail_set(XD_OP_READ, primary_dir, 1); /* served from the copy */
    CHECK(xd_read(d1, f1, buf, BLK, BLK) == BLK);
    CHECK_MSG(!memcmp(buf, c + BLK, BLK), "a read served from the copy another writer degraded "
                                          "returned stale bytes");
    fail_set(XD_OP_READ, NULL, 0);
    CHECK(on_disk(copy, 0, b) && on_disk(copy, 1, c));
    xd_file_close(d1, f1);
    xd_close(d1);
}

/* Writer B degrades the primary (a write to it failed) and writes on to
 * the copy alone. Writer A, closing last, stamped the copy "sync" over
 * B's "newer": the stale primary was trusted, and B's acknowledged writes
 * read back as the older bytes. Now A reads them from the copy while
 * open, its close stamps the copy "newer", and the next open fills the
 * primary from it. */
static void test_primary_degraded_by_another_writer(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK], c[NBLK * BLK], buf[BLK];
    fill(a, 19);
    fill(b, 20);
    fill(c, 21);
    struct xd_dev *d1 = open_dev("sync");
    struct xd_file *f1 = open_file(d1);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    degrade_in_another_writer(primary_dir, 0, b, c);
    CHECK_MSG(on_disk(copy, 0, b) && on_disk(copy, 1, c) && on_disk(primary, 0, a),
              "the other writer's blocks are not on the copy alone");
    CHECK(xd_read(d1, f1, buf, BLK, BLK) == BLK);
    CHECK_MSG(!memcmp(buf, c + BLK, BLK), "a writer read the primary another writer degraded: "
                                          "that writer's acknowledged write read as older bytes");
    xd_file_close(d1, f1);
    xd_close(d1);
    CHECK_MSG(!stamped("sync "), "the last writer stamped \"sync\" the copy of a primary "
                                 "another writer degraded");
    d1 = open_dev("sync");
    f1 = reopen(d1);
    CHECK(xd_read(d1, f1, buf, BLK, 0) == BLK);
    CHECK_MSG(!memcmp(buf, b, BLK), "the next open lost the other writer's acknowledged write");
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(primary, 1, c) && on_disk(copy, 0, b),
              "the next open did not fill the primary from the copy");
    xd_file_close(d1, f1);
    xd_close(d1);
}

/* The hook at d1's write of its copy, its primary's part done: another
 * process degrades the primary meanwhile (blocks 2 and 3). */
static const char *other_b, *other_c;

static void primary_degraded_meanwhile(void)
{
    degrade_in_another_writer(primary_dir, 2, other_b, other_c);
}

/* Two writers degrade different members at once: B the primary, A the
 * copy (its write to it fails just after B's mark). Each went on with the
 * member the other dropped: A wrote the primary alone, B the copy alone,
 * and no member held both's writes. A now finds the primary marked when
 * its write completes: the write took no member in use and fails (the
 * retry layer sends it again, to the copy), the copy stays in use, and
 * the primary is filled from it at the next open. */
static void test_writers_degrade_different_members(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK], c[NBLK * BLK], d[NBLK * BLK], buf[BLK];
    fill(a, 22);
    fill(b, 23);
    fill(c, 24);
    fill(d, 25);
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync");
    struct xd_file *f1 = open_file(d1), *f2 = NULL;
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    /* a second writer here: d1 takes turns by range, so B's writes of
     * blocks 2 and 3 do not wait for d1's write of block 0, out meanwhile */
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    other_b = b;
    other_c = c;
    hook.where = copy_dir;
    hook.run = primary_degraded_meanwhile;
    fail_set(XD_OP_WRITE, copy_dir, 1);
    int64_t rc = xd_write(d1, f1, d, BLK, 0);
    CHECK_MSG(!hook.run, "d1's write of its copy never came");
    CHECK_MSG(rc == -EIO, "a write only the primary another writer degraded took came back %lld",
              (long long)rc);
    CHECK_MSG(layer_stat(d1, "mirror", "degraded") == 1, "d1 degraded %lld members",
              layer_stat(d1, "mirror", "degraded"));
    CHECK(xd_write(d1, f1, d, BLK, 0) == BLK); /* sent again, as the retry layer does */
    CHECK_MSG(on_disk(copy, 0, d), "the write sent again missed the copy in use");
    CHECK(xd_read(d1, f1, buf, BLK, 2 * BLK) == BLK && !memcmp(buf, b + 2 * BLK, BLK));
    if (f2)
        xd_file_close(d2, f2);
    xd_file_close(d1, f1);
    xd_close(d2);
    xd_close(d1);
    d1 = open_dev("sync");
    f1 = reopen(d1);
    CHECK_MSG(on_disk(primary, 0, d) && on_disk(primary, 2, b) && on_disk(primary, 3, c) &&
                  on_disk(copy, 0, d) && on_disk(copy, 3, c),
              "the copies do not hold both writers' writes after the next open");
    xd_file_close(d1, f1);
    xd_close(d1);
}

/* A writer joining while another writer degraded the primary, whose copy
 * it cannot use (degraded in its device's earlier open): it would write
 * the primary alone, the others the copy alone. Refused in one line. */
static void test_joiner_with_no_member_in_use_refused(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK];
    fill(a, 26);
    fill(b, 27);
    struct xd_dev *d3 = open_dev("sync");
    struct xd_file *f3 = open_file(d3);
    fail_set(XD_OP_WRITE, copy_dir, 1);
    CHECK(xd_write(d3, f3, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    CHECK(layer_stat(d3, "mirror", "degraded") == 1); /* d3 keeps its copy degraded */
    xd_file_close(d3, f3);
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync");
    struct xd_file *f1 = reopen(d1), *f2 = NULL; /* alone: fills the copy */
    CHECK_MSG(!xd_file_open(d2, primary, 0, 0, &f2, err, sizeof(err)), "%s", err);
    fail_set(XD_OP_WRITE, primary_dir, 1);
    CHECK(f2 && xd_write(d2, f2, b, BLK, 0) == BLK && layer_stat(d2, "mirror", "degraded") == 1);
    f3 = NULL;
    int rc = xd_file_open(d3, primary, 0, 0, &f3, err, sizeof(err));
    CHECK_MSG(rc == -EIO && strstr(err, "degraded every copy this device can use") &&
                  !strchr(err, '\n'),
              "a writer that can use only the primary another writer degraded: open %d '%s'", rc,
              rc ? err : "");
    if (f3)
        xd_file_close(d3, f3);
    xd_close(d3);
    if (f2)
        xd_file_close(d2, f2);
    xd_file_close(d1, f1);
    xd_close(d2);
    xd_close(d1);
    d1 = open_dev("sync");
    f1 = reopen(d1);
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(primary, 1, a),
              "the next open did not fill the primary from the copy");
    xd_file_close(d1, f1);
    xd_close(d1);
}

/* Pipes between the test and a child writer of the file made again: up
 * says the child's primary has its block, down lets it die. */
static int up[2], down[2];

static void signal_and_die(void)
{
    char c = 'w';
    if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
        _exit(4);
    _exit(0); /* the copy's write never goes: as kill -9 leaves it */
}

/* A writer still open after another run removed its file and made it again
 * stamped at its close by path: the primary's id was the new file's, and
 * the copy stamped "sync" was the new run's, which that run was writing
 * (here: its primary took a block, its copy never will, as a kill between
 * the two leaves them). The next open trusted the copy and never filled
 * it. Stamps now go through the copy the closing writer opened, and only
 * while the primary's name still holds the file it opened. */
static void test_close_after_the_file_was_made_again(void)
{
    static char a[NBLK * BLK], b[NBLK * BLK];
    fill(a, 14);
    fill(b, 15);
    struct xd_dev *d1 = open_dev("sync");
    struct xd_file *f1 = open_file(d1);
    CHECK(xd_write(d1, f1, a, sizeof(a), 0) == (ssize_t)sizeof(a));
    CHECK(!pipe(up) && !pipe(down));
    pid_t pid = fork();
    if (pid == 0) { /* the other run: the files removed and made again */
        struct xd_dev *d = open_dev("sync");
        struct xd_file *cf = open_file(d);
        hook.where = copy_dir;
        hook.run = signal_and_die;
        xd_write(d, cf, b, BLK, 0);
        _exit(3); /* the hook did not run */
    }
    char c;
    CHECK_MSG(pid > 0 && read(up[0], &c, 1) == 1, "the other run's write never came");
    xd_file_close(d1, f1); /* the first run's clean close, after the other's open */
    CHECK_MSG(!stamped(""), "a writer of the removed file stamped the new run's copy");
    CHECK(write(down[1], &c, 1) == 1);
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    struct xd_file *f = reopen(d1);
    CHECK_MSG(on_disk(primary, 0, b) && on_disk(copy, 0, b),
              "the next open trusted a copy stamped by a writer of the file removed");
    xd_file_close(d1, f);
    xd_close(d1);
}

/* Claims take turns: a claimant between placing its lock and looking for
 * others (here the test, as another primary's device would be) holds the
 * copy's flock, and a second claim waits for it rather than placing its
 * own lock in between, where each would see the other's and both refuse.
 * After the turn the waiting one sees the first's lock and refuses alone. */
static void test_claims_take_turns(const char *other)
{
    struct xd_dev *d1 = open_dev("sync"), *d2 = open_dev("sync");
    struct xd_file *f1 = NULL;
    unlink(primary);
    unlink(copy);
    CHECK(!xd_file_open(d1, primary, XD_OPEN_CREATE, NBLK * BLK, &f1, err, sizeof(err)));
    if (f1)
        xd_file_close(d1, f1); /* the copy exists now, unclaimed */
    int t = open(copy, O_RDONLY | O_CLOEXEC);
    struct stat st;
    CHECK(t >= 0 && !fstat(t, &st) && !flock(t, LOCK_EX));
    struct flock mine = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 12345, .l_len = 1};
    CHECK(!fcntl(t, F_OFD_SETLK, &mine));
    struct claim_open o = {.dev = d2, .path = other};
    pthread_t th;
    CHECK(!pthread_create(&th, NULL, claim_open_main, &o));
    CHECK_MSG(open_waits_on_flock(&o, st.st_ino), "a claim did not wait for another claimant's turn");
    struct flock rest = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 12346, .l_len = 0};
    CHECK(!fcntl(t, F_OFD_GETLK, &rest));
    CHECK_MSG(rest.l_type == F_UNLCK, "a claim was placed during another claimant's turn");
    flock(t, LOCK_UN);
    pthread_join(th, NULL);
    CHECK_MSG(o.f && layer_stat(d2, "mirror", "degraded") == 1,
              "the claim after the turn did not refuse the claimed copy");
    close(t);
    if (o.f)
        xd_file_close(d2, o.f);
    xd_close(d1);
    xd_close(d2);
}

/* Copies are made in turns: a primary making a copy not there yet (here
 * the test, as another primary's device would be) holds the copy
 * directory's flock from looking for the copy to claiming it, and a second
 * maker waits, then finds the copy made and claimed and refuses it without
 * opening it: a larger second primary would otherwise have extended it. */
static void test_makers_take_turns(const char *other)
{
    struct xd_dev *d2 = open_dev("sync");
    unlink(copy);
    int dir = open(copy_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    CHECK(dir >= 0 && !fstat(dir, &st) && !flock(dir, LOCK_EX));
    struct claim_open o = {.dev = d2, .path = other};
    pthread_t th;
    CHECK(!pthread_create(&th, NULL, claim_open_main, &o));
    CHECK_MSG(open_waits_on_flock(&o, st.st_ino),
              "a maker of a copy did not wait for another maker's turn");
    /* the other maker's turn: make a one-block copy and claim it */
    int t = open(copy, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct flock mine = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 12345, .l_len = 1};
    CHECK(t >= 0 && !ftruncate(t, BLK) && !fcntl(t, F_OFD_SETLK, &mine));
    close(dir);
    pthread_join(th, NULL);
    CHECK_MSG(o.f && layer_stat(d2, "mirror", "degraded") == 1,
              "the maker after the turn did not refuse the claimed copy");
    CHECK_MSG(t >= 0 && !fstat(t, &st) && st.st_size == BLK,
              "the refused maker changed the copy's size to %lld", (long long)st.st_size);
    if (t >= 0)
        close(t);
    if (o.f)
        xd_file_close(d2, o.f);
    xd_close(d2);
}

/* xd_unlink removes the primary's copy, claimed now (the file open) or
 * stamped for it (closed), and never another same-named primary's. */
static void test_unlink_removes_own_copies(const char *other)
{
    struct xd_dev *d = open_dev("sync");
    struct xd_file *f = open_file(d);
    CHECK(f && !access(copy, F_OK));
    CHECK_MSG(!xd_unlink(d, primary, err, sizeof(err)), "%s", err);
    CHECK_MSG(access(copy, F_OK) && access(primary, F_OK), "the open primary's copy stayed");
    if (f)
        xd_file_close(d, f);
    CHECK(access(copy, F_OK)); /* the close made it no more */

    f = open_file(d); /* closed and stamped: still its */
    if (f)
        xd_file_close(d, f);
    CHECK(!access(copy, F_OK));
    CHECK_MSG(!xd_unlink(d, primary, err, sizeof(err)), "%s", err);
    CHECK_MSG(access(copy, F_OK), "the closed primary's stamped copy stayed");

    struct xd_file *g = NULL; /* another primary's copy, then a plain primary */
    CHECK(!xd_file_open(d, other, XD_OPEN_CREATE, NBLK * BLK, &g, err, sizeof(err)));
    if (g)
        xd_file_close(d, g);
    int fd = open(primary, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_MSG(!xd_unlink(d, primary, err, sizeof(err)), "%s", err);
    CHECK_MSG(!access(copy, F_OK), "another primary's copy was removed");
    unlink(other);
    unlink(copy);
    xd_close(d);
}

/* A file opened through a symlink has the copies of its own name: a write
 * through the link reaches the copy a read through the file's name falls
 * back on. Old: the link's copy was another file (missing here, so that
 * device ran degraded), the file's own copy kept the older bytes, and a
 * read the primary failed returned them. A file with a second name (a hard
 * link) is refused with one line: neither name is its own. */
static void test_one_copy_through_a_symlink(void)
{
    static char older[NBLK * BLK], newer[NBLK * BLK], got[BLK];
    char lnk[160], link_copy[160];
    snprintf(lnk, sizeof(lnk), "%s.link", primary);
    snprintf(link_copy, sizeof(link_copy), "%s.link", copy);
    struct xd_dev *a = open_dev("sync"), *b = open_dev("sync");
    struct xd_file *fa = open_file(a), *fb = NULL;
    CHECK(!symlink(primary, lnk));
    CHECK_MSG(!xd_file_open(b, lnk, 0, NBLK * BLK, &fb, err, sizeof(err)), "%s", err);
    fill(older, 1);
    fill(newer, 2);
    CHECK(xd_write(a, fa, older, BLK, 0) == BLK);
    CHECK(fb && xd_write(b, fb, newer, BLK, 0) == BLK);
    CHECK_MSG(on_disk(copy, 0, newer), "the file's own copy missed the write through the link");
    fail_set(XD_OP_READ, primary_dir, 1);
    CHECK(xd_read(a, fa, got, BLK, 0) == BLK && !memcmp(got, newer, BLK));
    fail_set(XD_OP_READ, NULL, 0);
    CHECK(access(link_copy, F_OK) && errno == ENOENT);
    char hard[160];
    struct xd_file *fh = NULL;
    snprintf(hard, sizeof(hard), "%s.hard", primary);
    CHECK(!link(primary, hard));
    CHECK(xd_file_open(b, hard, 0, NBLK * BLK, &fh, err, sizeof(err)) == -EMLINK);
    CHECK_MSG(strstr(err, "2 names (hard links)") && strstr(err, "allowed: a file with one name"), "%s", err);
    unlink(hard);
    if (fb)
        xd_file_close(b, fb);
    xd_file_close(a, fa);
    xd_close(b);
    xd_close(a);
    unlink(lnk);
    unlink(link_copy);
}

int main(void)
{
    char tmpl[] = "/var/tmp/xd-mirror-XXXXXX";
    const char *base = mkdtemp(tmpl);
    if (!base)
        SKIP("no scratch directory in /var/tmp");
    snprintf(primary_dir, sizeof(primary_dir), "%s/primary", base);
    snprintf(copy_dir, sizeof(copy_dir), "%s/copy", base);
    snprintf(primary, sizeof(primary), "%s/f", primary_dir);
    snprintf(copy, sizeof(copy), "%s/f", copy_dir);
    CHECK(!mkdir(primary_dir, 0700) && !mkdir(copy_dir, 0700));
    test_repair("sync");
    if (check_mode_runs("io_uring", "mirror repair and write failures")) {
        test_repair("io_uring");
        test_write_failures();
        test_write_lands_on_a_copy_in_use("io_uring");
        test_repair_waits_for_a_write_in_its_batch("io_uring");
        test_writers_take_turns();
    }
    test_joiner_trusts_kept_copies();
    test_fill_takes_turns();
    test_write_lands_on_a_copy_in_use("libaio");
    test_repair_waits_for_a_write_in_its_batch("libaio");
    test_solo_writer_of_another_user();
    test_stamps();
    test_primary_replaced();
    test_last_writer_stamps();
    test_degraded_primary_survives_a_kill();
    test_kill_while_filling_the_primary();
    test_pages_of_killed_writers_swept();
    test_writer_killed_beside_a_survivor(false);
    test_writer_killed_beside_a_survivor(true);
    test_close_after_the_file_was_made_again();
    test_copy_degraded_by_another_writer();
    test_primary_degraded_by_another_writer();
    test_writers_degrade_different_members();
    test_joiner_with_no_member_in_use_refused();
    test_one_copy_through_a_symlink();
    char other_dir[80], other[96];
    snprintf(other_dir, sizeof(other_dir), "%s/other", base);
    snprintf(other, sizeof(other), "%s/f", other_dir);
    CHECK(!mkdir(other_dir, 0700));
    test_writers_with_other_copies(other_dir, other);
    test_one_primary_per_copy(other);
    test_claims_take_turns(other);
    test_makers_take_turns(other);
    test_unlink_removes_own_copies(other);
    unlink(other);
    rmdir(other_dir);
    unlink(primary);
    unlink(copy);
    rmdir(primary_dir);
    rmdir(copy_dir);
    rmdir(base);
    return check_result();
}
