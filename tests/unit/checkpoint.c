/* checkpoint.c - unit test of the checkpoint layer through the public API:
 * a checkpoint holds what the caller wrote before the flush that took it,
 * in every open file, even with a write-back cache below holding the other
 * file's blocks; checkpoint_keep prunes only our own checkpoints; the names
 * are recognised by shape and manifest. Rounds rewrite both files and
 * flush one, polling (bounded) until checkpoint_interval_sec=1 has passed.
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

#include "check.h"
#include "layers/checkpoint.h"
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

/* The newest checkpoint of ours in ckdir (into newest) and how many. */
static int newest_ckpt(char *newest, size_t len)
{
    int dirfd = open(ckdir, O_RDONLY | O_DIRECTORY), n = 0;
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
 * files as written in its round. */
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
    snprintf(path, sizeof(path), "%s/b", root);
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
    }
    CHECK_MSG(taken == 2, "%d checkpoints in %d s", taken, DEADLINE_S);
    char *stats = xd_stats_json(dev);
    CHECK(stats && strstr(stats, "\"checkpoint\"") && strstr(stats, "\"failed\":0"));
    free(stats);
    xd_file_close(dev, a);
    xd_file_close(dev, b);
    xd_close(dev);
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
