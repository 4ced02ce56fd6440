/* fork.c - unit test of devices across fork(): a device belongs to the
 * process that opened it. In a child, calls on the parent's device fail
 * with -EBADF (the error line says why) or give NULL, xd_close leaves it
 * alone, and the parent's device goes on; a device the child opens itself is its own (no
 * cache, turns or hybrid state of the parent's), so it neither reaps the
 * parent's completions out of the io_uring ring both map nor reads past
 * the parent's writes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define BLK 4096

static char dir[] = "/var/tmp/xd-unit-fork-XXXXXX";
static char hot[] = "/dev/shm/xd-unit-fork-hot-XXXXXX"; /* the hybrid type's hot tier: a tmpfs */
static char err[XD_ERRLEN];
static const char *async_mode = "io_uring"; /* sync where io_uring is refused */

/* kv's device in this test's async mode; NULL after saying why. */
static struct xd_dev *open_dev_kv(const char *const *kv)
{
    const char *all[40] = {"async", async_mode};
    unsigned n = 2;
    for (; kv[0] && n + 2 < 40; kv += 2, n += 2)
        all[n] = kv[0], all[n + 1] = kv[1];
    struct xd_dev *dev = NULL;
    if (check_open_dev(&dev, all, "test", 16, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    return dev;
}

static const char *const checksummed_write_back[] = {
    "storage_type", "regular", "enable_checksums", "true", "enable_read_cache", "true",
    "enable_write_cache", "true", NULL};

static struct xd_file *open_file(struct xd_dev *dev, const char *path)
{
    struct xd_file *f = NULL;
    int rc = xd_file_open(dev, path, XD_OPEN_CREATE, 16 * BLK, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s: %d %s", path, rc, err);
    return rc ? NULL : f;
}

static char byte_at(struct xd_dev *dev, struct xd_file *f, uint64_t off)
{
    char buf[BLK];
    ssize_t n = xd_read(dev, f, buf, BLK, off);
    CHECK_MSG(n == BLK, "read %zd", n);
    return n == BLK ? buf[0] : 0;
}

static void write_byte(struct xd_dev *dev, struct xd_file *f, uint64_t off, char c)
{
    char buf[BLK];
    memset(buf, c, sizeof(buf));
    ssize_t n = xd_write(dev, f, buf, BLK, off);
    CHECK_MSG(n == BLK, "write %zd", n);
}

/* The child's checks count in its own check_failures (from 0): its exit
 * status says whether any failed (a signal, the alarm, says it hung). */
static pid_t fork_child(void)
{
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        check_failures = 0;
        alarm(20);
    }
    return pid;
}

static void child_exit(void) { _exit(check_result()); }

static void check_child(pid_t pid)
{
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status 0x%x", st);
}

/* --- the parent's device in the child ---------------------------------------- */

static void child_uses_parents(struct xd_dev *dev, struct xd_file *f, pid_t parent)
{
    char buf[BLK], line[XD_ERRLEN], want[64];
    memset(buf, 'c', sizeof(buf));
    CHECK(xd_write(dev, f, buf, BLK, 0) == -EBADF);
    CHECK(xd_read(dev, f, buf, BLK, 0) == -EBADF);
    CHECK(xd_flush(dev, f, 0) == -EBADF);
    struct xd_req req = {.op = XD_OP_WRITE, .file = f, .buf = buf, .len = BLK, .off = 0};
    CHECK(xd_submit(dev, &req) == XD_DONE && req.result == -EBADF);
    CHECK(xd_commit(dev) == -EBADF);
    struct xd_req *done[1];
    struct timespec none = {0, 0};
    CHECK(xd_reap(dev, done, 0, 1, &none) == -EBADF);
    struct xd_file *g = NULL;
    CHECK(xd_file_open(dev, "other", XD_OPEN_CREATE, BLK, &g, err, sizeof(err)) == -EBADF);
    snprintf(want, sizeof(want), "opened by process %d", (int)parent);
    CHECK_MSG(strstr(err, want) && strstr(err, "a child after fork()"), "%s", err);
    CHECK(xd_dev_take_error(dev, line, sizeof(line)) == 0 && strstr(line, want));
    CHECK(xd_file_close(dev, f) == -EBADF);
    CHECK(xd_migrate(dev) == -EBADF && xd_file_size(dev, f) == -EBADF);
    CHECK(xd_register_memory(dev, buf, BLK) == -EBADF);
    CHECK(xd_stats_json(dev) == NULL && xd_stats_slow_summary(dev, line, sizeof(line)) == 0);
    CHECK(xd_health_json(NULL, dev, NULL, err, sizeof(err)) == NULL && strstr(err, want));
    xd_close(dev); /* lets the parent's be: no flush of its dirty blocks, no join of its threads */
}

/* Old: the child's write went into its copy of the parent's write-back
 * cache and returned 4096, and never reached the file. */
static void test_parents_device_refused_in_child(void)
{
    struct xd_dev *dev = open_dev_kv(checksummed_write_back);
    CHECK(dev != NULL);
    if (!dev)
        return;
    struct xd_file *f = open_file(dev, "parents");
    write_byte(dev, f, 0, 'p');
    pid_t parent = getpid(), pid = fork_child();
    if (pid == 0) {
        child_uses_parents(dev, f, parent);
        child_exit();
    }
    check_child(pid);
    CHECK(byte_at(dev, f, 0) == 'p');
    write_byte(dev, f, BLK, 'q');
    CHECK(xd_file_close(dev, f) == 0);
    xd_close(dev);
    FILE *raw = fopen("parents", "r");
    char bytes[2] = {0, 0};
    CHECK(raw && fread(bytes, 1, 1, raw) == 1 && !fseek(raw, BLK, SEEK_SET) &&
          fread(bytes + 1, 1, 1, raw) == 1);
    CHECK_MSG(bytes[0] == 'p' && bytes[1] == 'q', "file has '%c' '%c'", bytes[0], bytes[1]);
    if (raw)
        fclose(raw);
}

/* --- the child's own device -------------------------------------------------- */

/* The child's writer must wait for the turn the parent's write out holds.
 * Old: it first drained every turn-taking layer its thread drives, and its
 * thread has the id of the parent's thread that forked, so it drained the
 * parent's device too: reaped the parent's completion out of the ring both
 * map (the parent's reap then never saw it) and let the parent's turn go
 * through the description both share. */
static void test_child_device_beside_parents_write_out(void)
{
    if (strcmp(async_mode, "io_uring")) {
        fprintf(stderr, "note: io_uring refused here; the ring the parent and child share is io_uring's\n");
        return;
    }
    const char *kv[] = {"storage_type", "regular", "enable_checksums", "true", NULL};
    struct xd_dev *a = open_dev_kv(kv), *b = open_dev_kv(kv);
    CHECK(a && b);
    if (!a || !b)
        return;
    struct xd_file *fa = open_file(a, "shared"), *fb = open_file(b, "shared");
    write_byte(b, fb, BLK, 'b'); /* a is not the file's only writer: its writes take turns */
    static char buf[BLK] __attribute__((aligned(BLK)));
    memset(buf, 'p', sizeof(buf));
    struct xd_req req = {.op = XD_OP_WRITE, .file = fa, .buf = buf, .len = BLK, .off = 0};
    int rc = xd_submit(a, &req);
    CHECK(rc == XD_QUEUED || rc == XD_DONE);
    CHECK(xd_commit(a) >= 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        struct xd_dev *c = open_dev_kv(kv);
        struct xd_file *fc = c ? open_file(c, "shared") : NULL;
        CHECK(write(ready[1], "w", 1) == 1);
        if (fc) {
            write_byte(c, fc, 0, 'c'); /* waits for the parent's turn on block 0 */
            CHECK(xd_file_close(c, fc) == 0);
        }
        xd_close(c);
        child_exit();
    }
    char x;
    close(ready[1]);
    CHECK(read(ready[0], &x, 1) == 1);
    /* Old: the child ends within this wait, having taken the completion.
     * Now it waits for the turn the parent's write holds until reaped.
     * (WNOWAIT: the child stays to be waited for below.) */
    siginfo_t info = {0};
    for (int i = 0; i < 100; i++) {
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) || info.si_pid)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    if (rc == XD_QUEUED) {
        struct xd_req *done[1];
        struct timespec limit = {10, 0};
        int n = xd_reap(a, done, 1, 1, &limit);
        CHECK_MSG(n == 1 && done[0] == &req && req.result == BLK, "the parent reaped %d", n);
        if (n != 1) { /* its write never comes back: a close would wait for it forever */
            check_child(pid);
            close(ready[0]);
            return;
        }
    } else {
        fprintf(stderr, "note: the parent's write completed inline; no completion to take\n");
    }
    check_child(pid);
    CHECK(byte_at(a, fa, 0) == 'c'); /* the child's write came after the parent's */
    CHECK(xd_file_close(a, fa) == 0 && xd_file_close(b, fb) == 0);
    xd_close(a);
    xd_close(b);
    close(ready[0]);
}

/* Parent and child write and read one block in turn, each through a device
 * of its own: each reads the other's last write. Old (before the cache
 * forgot its parent's in the child): a child's device joined its copy of
 * the parent's write-back cache, kept the block dirty there and the parent
 * read its own older version; a hybrid file's was the parent's state, whose
 * migration pass went by the parent's devices. */
static void check_turn_about(const char *const *kv, const char *path)
{
    struct xd_dev *dev = open_dev_kv(kv);
    CHECK(dev != NULL);
    if (!dev)
        return;
    struct xd_file *f = open_file(dev, path);
    write_byte(dev, f, 0, 'p');
    CHECK(byte_at(dev, f, 0) == 'p');
    int to_parent[2], to_child[2];
    CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
    pid_t pid = fork_child();
    char x;
    if (pid == 0) {
        struct xd_dev *c = open_dev_kv(kv);
        struct xd_file *fc = c ? open_file(c, path) : NULL;
        if (fc) {
            CHECK(byte_at(c, fc, 0) == 'p');
            write_byte(c, fc, 0, 'c');
            /* the hybrid type's pass moves by its state's devices: the
             * child's own. The block at 32k is an extent nobody read yet,
             * and passes run only when asked: at least it moves. Old: the
             * parent's state, whose pass here moved nothing. */
            CHECK(byte_at(c, fc, 8 * BLK) == 0);
            int moved = xd_migrate(c);
            CHECK_MSG(moved >= 1 || moved == -ENOTTY, "%s: xd_migrate %d", path, moved);
        }
        CHECK(write(to_parent[1], "w", 1) == 1);
        CHECK(read(to_child[0], &x, 1) == 1); /* 0: the parent is gone */
        if (fc) {
            CHECK_MSG(byte_at(c, fc, 0) == 'P', "%s: the child's device missed the parent's write", path);
            CHECK(xd_file_close(c, fc) == 0);
        }
        xd_close(c);
        child_exit();
    }
    close(to_parent[1]); /* a child gone (its alarm) ends the read below */
    CHECK(read(to_parent[0], &x, 1) == 1);
    CHECK_MSG(byte_at(dev, f, 0) == 'c', "%s: the parent's device missed the child's write", path);
    write_byte(dev, f, 0, 'P');
    CHECK(write(to_child[1], "r", 1) == 1);
    check_child(pid);
    CHECK(xd_file_close(dev, f) == 0);
    xd_close(dev);
    close(to_parent[0]);
    close(to_child[0]);
    close(to_child[1]);
}

static void test_child_device_its_own(void)
{
    check_turn_about(checksummed_write_back, "write-back");
    if (!mkdtemp(hot)) {
        fprintf(stderr, "note: no directory under /dev/shm: the hybrid type's turn is not run\n");
        return;
    }
    const char *hybrid[] = {"storage_type", "hybrid", "hot_directory", hot, "cold_storage_type",
                            "regular", "hot_access_threshold", "1", "tier_extent_size", "16k",
                            "hot_cache_size", "1m", "tier_write_back", "true",
                            "migration_interval_sec", "86400", NULL};
    check_turn_about(hybrid, "hybrid");
}

int main(void)
{
    if (check_io_uring_refused())
        async_mode = "sync";
    if (!mkdtemp(dir) || chdir(dir))
        SKIP("no scratch directory under /var/tmp");
    test_parents_device_refused_in_child();
    test_child_device_beside_parents_write_out();
    test_child_device_its_own();
    CHECK(chdir("/") == 0);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, hot); /* hot: the template where not made */
    CHECK(system(cmd) == 0);
    return check_result();
}
