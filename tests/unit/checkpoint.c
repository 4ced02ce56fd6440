/* checkpoint.c - unit test of the checkpoint layer through the public API:
 * a checkpoint holds what the caller wrote before the flush that took it,
 * in every open file, even with a write-back cache below holding the other
 * file's blocks; checkpoint_keep prunes only our own checkpoints; the names
 * are recognised by shape and manifest. Rounds rewrite both files and
 * flush one, polling (bounded) until checkpoint_interval_sec=1 has passed.
 * A boundary that finds a write in flight waits for it (a test layer under
 * the checkpoint layer keeps writes in flight until they are reaped).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "clock.h"
#include "layers/checkpoint.h"
#include "xd_internal.h"
#include "xdevice.h"

#define LEN (64 * 1024)
#define DEADLINE_S 20

static char err[XD_ERRLEN];
static char root[] = "/tmp/xd-ckpt-unit-XXXXXX";
static char ckdir[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The newest checkpoint of ours in dir (into newest) and how many. */
static int newest_ckpt_in(const char *dir, char *newest, size_t len)
{
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY), n = 0;
    DIR *d = dirfd >= 0 ? fdopendir(dup(dirfd)) : NULL;
    newest[0] = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!xd_ckpt_is_ours(dirfd, e->d_name))
            continue;
        n++;
        if (strcmp(e->d_name, newest) > 0 && strlen(e->d_name) < len)
            memcpy(newest, e->d_name, strlen(e->d_name) + 1);
    }
    if (d)
        closedir(d);
    if (dirfd >= 0)
        close(dirfd);
    return n;
}

static int newest_ckpt(char *newest, size_t len)
{
    return newest_ckpt_in(ckdir, newest, len);
}

static bool copy_holds(const char *id, const char *copy, int fill)
{
    static char got[LEN], want[LEN];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s/%s", ckdir, id, copy);
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && read(fd, got, LEN) == LEN;
    memset(want, fill, LEN);
    if (fd >= 0)
        close(fd);
    return ok && !memcmp(got, want, LEN);
}

static bool manifest_names(const char *id, const char *path)
{
    char name[512], text[4096] = "", want[600];
    snprintf(name, sizeof(name), "%s/%s/manifest.json", ckdir, id);
    int fd = open(name, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
    if (fd >= 0)
        close(fd);
    text[n > 0 ? n : 0] = 0;
    snprintf(want, sizeof(want), "\"%s\"", path);
    return strstr(text, want) != NULL;
}

static struct xd_dev *open_dev(void)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    const char *keys[][2] = {
        {"enable_read_cache", "true"},   {"enable_write_cache", "true"},
        {"enable_checkpoints", "true"},  {"checkpoint_interval_sec", "1"},
        {"checkpoint_directory", ckdir}, {"checkpoint_keep", "1"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (xd_config_set(cfg, keys[i][0], keys[i][1], "test", err, sizeof(err)))
            fprintf(stderr, "%s\n", err);
    if (xd_open(&dev, cfg, 8, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        dev = NULL;
    }
    xd_config_free(cfg);
    return dev;
}

/* Rewrite both files, flush only a: each checkpoint taken must hold both
 * files as written in its round. b is opened through a symlink: its copy
 * and the manifest name b itself, which a restore replaces (old: the copy
 * was "1-b.link", and a restore renamed it over the link). */
static void test_checkpoints_hold_every_open_file(void)
{
    static char buf[LEN];
    char path[512], newest[64], before[64];
    struct xd_file *a, *b;
    struct xd_dev *dev = open_dev();
    CHECK(dev);
    if (!dev)
        return;
    snprintf(path, sizeof(path), "%s/a", root);
    CHECK(xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &a, err, sizeof(err)) == 0);
    char b_path[512];
    snprintf(b_path, sizeof(b_path), "%s/b", root);
    snprintf(path, sizeof(path), "%s/b.link", root);
    int fd = open(b_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && !close(fd) && !symlink("b", path));
    CHECK(xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &b, err, sizeof(err)) == 0);
    int taken = 0;
    double start = now_s();
    newest_ckpt(before, sizeof(before));
    for (unsigned round = 0; taken < 2 && now_s() - start < DEADLINE_S; round++) {
        memset(buf, 'a' + round % 26, LEN);
        CHECK(xd_write(dev, a, buf, LEN, 0) == LEN);
        memset(buf, 'A' + round % 26, LEN);
        CHECK(xd_write(dev, b, buf, LEN, 0) == LEN);
        CHECK(xd_flush(dev, a, 0) == 0);
        int n = newest_ckpt(newest, sizeof(newest));
        if (!strcmp(newest, before))
            continue;
        taken++;
        snprintf(before, sizeof(before), "%s", newest);
        CHECK_MSG(n == 1, "%d checkpoints kept with checkpoint_keep=1", n);
        CHECK_MSG(copy_holds(newest, "0-a", 'a' + round % 26), "round %u: a's copy", round);
        CHECK_MSG(copy_holds(newest, "1-b", 'A' + round % 26),
                  "round %u: b's copy lacks b's blocks in the write-back cache", round);
        CHECK_MSG(manifest_names(newest, b_path), "round %u: the manifest does not name %s", round,
                  b_path);
    }
    CHECK_MSG(taken == 2, "%d checkpoints in %d s", taken, DEADLINE_S);
    char *stats = xd_stats_json(dev);
    CHECK(stats && strstr(stats, "\"checkpoint\"") && strstr(stats, "\"failed\":0"));
    free(stats);
    xd_file_close(dev, a);
    xd_file_close(dev, b);
    xd_close(dev);
}

/* The device's stats hold both texts; then f and the device are closed. */
static void stats_hold_then_close(struct xd_dev *dev, struct xd_file *f, const char *a,
                                  const char *b)
{
    char *stats = xd_stats_json(dev);
    CHECK_MSG(stats && strstr(stats, a) && strstr(stats, b), "%s", stats ? stats : "no stats");
    free(stats);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* --- a boundary with a write in flight ------------------------------------- */

/* The park layer keeps every queued write in flight: answered XD_QUEUED,
 * it is written below only when a reap asks for completions, as a slow
 * device would complete it. Flushes and the library's own synchronous
 * requests (XD_REQ_SYNC: xd_write, the checkpoint's flushes) pass straight
 * down and complete inline. */
#define PARK_MAX 8
static struct {
    struct xd_req *req[PARK_MAX];
    unsigned n;
} parked;

static int park_submit(struct xd_layer *layer, struct xd_req *req)
{
    if (req->op != XD_OP_WRITE || xd_req_is_sync(req) || parked.n == PARK_MAX)
        return xd_layer_submit(layer->lower, req);
    parked.req[parked.n++] = req;
    return XD_QUEUED;
}

static int park_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout)
{
    (void)min;
    (void)timeout;
    unsigned n = 0;
    for (; n < parked.n && n < max; n++) {
        struct xd_req *req = parked.req[n];
        if (xd_layer_submit(layer->lower, req) != XD_DONE)
            req->result = -EIO; /* the file driver in sync mode completes inline */
        done[n] = req;
    }
    memmove(parked.req, parked.req + n, (parked.n - n) * sizeof(parked.req[0]));
    parked.n -= n;
    return (int)n;
}

static const struct xd_ops park_ops = {
    .version = XD_OPS_VERSION,
    .name = "park",
    .submit = park_submit,
    .reap = park_reap,
};

/* file driver, park, checkpoint: as xd_open builds a chain, by hand */
static struct xd_dev *open_parked_dev(const char *dir)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = xd_dev_new();
    dev->cfg = cfg;
    dev->queue_entries = PARK_MAX;
    if (xd_config_set(cfg, "enable_checkpoints", "true", "test", err, sizeof(err)) ||
        xd_config_set(cfg, "checkpoint_interval_sec", "1", "test", err, sizeof(err)) ||
        xd_config_set(cfg, "checkpoint_directory", dir, "test", err, sizeof(err)) ||
        xd_config_check(cfg, err, sizeof(err)) ||
        xd_dev_push(dev, &xd_file_ops, err, sizeof(err)) ||
        xd_dev_push(dev, &park_ops, err, sizeof(err)) ||
        xd_dev_push(dev, &xd_checkpoint_ops, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return dev;
}

/* Block b of checkpoint id's copy of the first file holds fill. */
static bool copy_block_holds(const char *dir, const char *id, int b, int fill)
{
    char path[512], got[4096], want[4096];
    snprintf(path, sizeof(path), "%s/%s/0-parked", dir, id);
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && pread(fd, got, sizeof(got), (off_t)b * 4096) == (ssize_t)sizeof(got);
    memset(want, fill, sizeof(want));
    if (fd >= 0)
        close(fd);
    return ok && !memcmp(got, want, sizeof(want));
}

/* The interval has run out, a flush completes while a write is in flight:
 * the next write's boundary must wait for that write (writes_waited) and
 * take a checkpoint holding it, never one that caught it half done or
 * missing. */
static void test_boundary_waits_for_a_write_in_flight(void)
{
    static char blk[3][4096];
    char dir[300], path[512], id[64];
    snprintf(dir, sizeof(dir), "%s/parked-ckpt", root);
    snprintf(path, sizeof(path), "%s/parked", root);
    CHECK(mkdir(dir, 0755) == 0);
    struct xd_dev *dev = open_parked_dev(dir);
    struct xd_file *f = NULL;
    CHECK(xd_file_open(dev, path, XD_OPEN_CREATE, 2 * 4096, &f, err, sizeof(err)) == 0);
    if (!f)
        return;
    memset(blk[0], 'x', 4096);
    memset(blk[1], 'y', 4096);
    memset(blk[2], 'z', 4096);
    CHECK(xd_write(dev, f, blk[0], 4096, 0) == 4096 && xd_write(dev, f, blk[0], 4096, 4096) == 4096);
    struct timespec interval = {.tv_sec = 1, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&interval, NULL); /* checkpoint_interval_sec=1 has run out since the open */

    struct xd_req w1 = {.op = XD_OP_WRITE, .file = f, .buf = blk[1], .len = 4096, .off = 0};
    struct xd_req fs = {.op = XD_OP_FSYNC, .file = f};
    struct xd_req w2 = {.op = XD_OP_WRITE, .file = f, .buf = blk[2], .len = 4096, .off = 4096};
    CHECK(xd_submit(dev, &w1) == XD_QUEUED);
    CHECK_MSG(xd_submit(dev, &fs) == XD_DONE && fs.result == 0, "the flush completes inline");
    CHECK_MSG(newest_ckpt_in(dir, id, sizeof(id)) == 0, "a checkpoint with a write in flight");
    CHECK(xd_submit(dev, &w2) == XD_QUEUED); /* the boundary: waits for w1 */
    CHECK_MSG(newest_ckpt_in(dir, id, sizeof(id)) == 1, "no checkpoint at the boundary");
    CHECK_MSG(copy_block_holds(dir, id, 0, 'y'), "the checkpoint lacks the write it waited for");
    CHECK_MSG(copy_block_holds(dir, id, 1, 'x'), "the checkpoint holds a write after it");

    struct xd_req *done[4];
    int n = 0;
    for (int got; n < 2 && (got = xd_reap(dev, done + n, 1, 4, NULL)) > 0;)
        n += got;
    CHECK_MSG(n == 2 && w1.result == 4096 && w2.result == 4096,
              "the caller reaps both writes (%d): %lld %lld", n, (long long)w1.result,
              (long long)w2.result);
    stats_hold_then_close(dev, f, "\"writes_waited\":1", "\"failed\":0");
}

/* The data file's name swapped for a link to another file (its directory
 * writable by someone else, /tmp): the checkpoint copies by name, and it
 * copied the link's target, a file only root could read, into the
 * checkpoint with file_permissions. It must copy nothing but the file
 * the device has open. */
static void test_name_swapped_for_a_link(void)
{
    static char buf[LEN];
    char dir[200], path[512], moved[512], secret[512], id[64];
    snprintf(dir, sizeof(dir), "%s/swap-ckpt", root);
    snprintf(path, sizeof(path), "%s/swapped", root);
    snprintf(moved, sizeof(moved), "%s/swapped.away", root);
    snprintf(secret, sizeof(secret), "%s/secret", root);
    CHECK(mkdir(dir, 0755) == 0);
    int fd = open(secret, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    memset(buf, 'S', LEN);
    CHECK(fd >= 0 && write(fd, buf, LEN) == LEN && !close(fd));
    char saved[sizeof(ckdir)];
    snprintf(saved, sizeof(saved), "%s", ckdir);
    snprintf(ckdir, sizeof(ckdir), "%s", dir);
    struct xd_dev *dev = open_dev();
    snprintf(ckdir, sizeof(ckdir), "%s", saved);
    struct xd_file *f = NULL;
    CHECK(dev && xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &f, err, sizeof(err)) == 0);
    if (!f)
        return;
    CHECK(!rename(path, moved) && !symlink(secret, path));
    struct timespec interval = {.tv_sec = 1, .tv_nsec = 50 * 1000 * 1000};
    nanosleep(&interval, NULL); /* checkpoint_interval_sec=1 has run out since the open */
    memset(buf, 'd', LEN);
    CHECK(xd_write(dev, f, buf, LEN, 0) == LEN);
    xd_flush(dev, f, 0); /* takes the checkpoint, which must fail */
    CHECK_MSG(newest_ckpt_in(dir, id, sizeof(id)) == 0, "checkpoint %s copied through the link", id);
    stats_hold_then_close(dev, f, "\"failed\":1", "a symbolic link is at that name");
}

static void test_names(void)
{
    CHECK(xd_ckpt_is_id("20261204T053505.450793Z-000001"));
    CHECK(!xd_ckpt_is_id("20261204T053505.450793Z-00001"));
    CHECK(!xd_ckpt_is_id(".tmp-20261204T053505.450793Z-000001-12"));
    CHECK(!xd_ckpt_is_id("2026120xT053505.450793Z-000001"));
}

int main(void)
{
    char path[512];
    if (!mkdtemp(root))
        SKIP("cannot make a temp directory");
    snprintf(ckdir, sizeof(ckdir), "%s/ckpt", root);
    /* an id-shaped directory without our manifest, and a stray file: never pruned */
    snprintf(path, sizeof(path), "%s/20000101T000000.000000Z-000001", ckdir);
    CHECK(mkdir(ckdir, 0755) == 0 && mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "%s/notes.txt", ckdir);
    int fd = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    test_names();
    test_checkpoints_hold_every_open_file();
    test_boundary_waits_for_a_write_in_flight();
    test_name_swapped_for_a_link();
    snprintf(path, sizeof(path), "%s/20000101T000000.000000Z-000001", ckdir);
    struct stat st;
    CHECK_MSG(!stat(path, &st), "pruning removed a directory that is not a checkpoint");
    snprintf(path, sizeof(path), "%s/notes.txt", ckdir);
    CHECK_MSG(!stat(path, &st), "pruning removed a file that is not a checkpoint");
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", root);
    return check_result();
}
