/* requests.c - unit test of what xd_submit and the synchronous calls refuse
 * before any layer sees it, on every type that keeps a file and in every
 * async mode: an op outside enum xd_op (the stats layer indexed its
 * histograms by it: a heap overflow), and a range a file offset cannot
 * name (off + len past INT64_MAX, or wrapping). Such a trim used to zero a
 * compressed file from its offset to the end while failing, and such a
 * write under libaio was lost (io_submit refused it, the reap waited
 * forever). Each is -EINVAL, completed at once, and the data stays; so is
 * a trim of 0 bytes, on every type alike. The last read goes into memory
 * registered with xd_register_memory (under io_uring a fixed-buffer read)
 * and must hold what was written; the registration's own misuse is
 * -EINVAL. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define LEN (256 * 1024)

static char err[XD_ERRLEN];

static struct xd_dev *open_dev(const char *type, const char *async)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    if (xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err)) ||
        xd_config_set(cfg, "async", async, "test", err, sizeof(err)) ||
        xd_open(&dev, cfg, 8, err, sizeof(err))) {
        fprintf(stderr, "%s %s: %s\n", type, async, err);
        dev = NULL;
    }
    xd_config_free(cfg);
    return dev;
}

/* A request that must come back at once with -EINVAL. */
static void refused_at_submit(struct xd_dev *dev, struct xd_req *req, const char *what)
{
    int rc = xd_submit(dev, req);
    CHECK_MSG(rc == XD_DONE && req->result == -EINVAL, "%s: submit %d, result %lld", what, rc,
              (long long)req->result);
}

/* xd_reap with min above max: the io_uring wait looped at 100% CPU for
 * ever, deaf to its timeout, since no reap of max could reach min. */
static void test_reap_min_above_max(struct xd_dev *dev, struct xd_file *f, const char *type,
                                    const char *async)
{
    static char blk[3][4096] __attribute__((aligned(4096)));
    struct xd_req w[3], *done[3];
    unsigned pending = 0;
    for (int i = 0; i < 3; i++) {
        memset(blk[i], 'A', sizeof(blk[i])); /* what the file holds: the data stays */
        w[i] = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = blk[i], .len = 4096,
                               .off = (uint64_t)i * 4096};
        pending += xd_submit(dev, &w[i]) == XD_QUEUED;
    }
    CHECK(xd_commit(dev) >= 0);
    struct timespec limit = {.tv_sec = 5};
    while (pending) {
        int n = xd_reap(dev, done, 3, 2, &limit);
        CHECK_MSG(n > 0 && n <= 2, "%s %s: reap with min 3, max 2: %d", type, async, n);
        if (n <= 0)
            break;
        pending -= (unsigned)n;
    }
}

static void test_type(const char *type, const char *async, const char *path)
{
    static char a[LEN] __attribute__((aligned(4096))), got[LEN] __attribute__((aligned(4096)));
    struct xd_dev *dev = open_dev(type, async);
    struct xd_file *f = NULL;
    if (!dev && !strcmp(async, "io_uring")) { /* kernel.io_uring_disabled, a seccomp filter */
        printf("skip: %s with io_uring: %s\n", type, err);
        return;
    }
    unlink(path);
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &f, err, sizeof(err)));
    if (!f) {
        if (dev)
            xd_close(dev);
        return;
    }
    memset(a, 'A', sizeof(a));
    CHECK(xd_write(dev, f, a, LEN, 0) == LEN);
    /* got's pages registered: under io_uring the last read lands in them
     * as a fixed-buffer request, and must hold what was written */
    CHECK(xd_register_memory(dev, got, LEN) == 0);

    CHECK_MSG(xd_trim(dev, f, UINT64_MAX, 4096) == -EINVAL, "%s %s: trim wrapping", type, async);
    CHECK_MSG(xd_trim(dev, f, 4096, UINT64_MAX - 10) == -EINVAL, "%s %s: trim past", type, async);
    CHECK_MSG(xd_write(dev, f, a, 4096, UINT64_MAX - 100) == -EINVAL, "%s %s: write past", type,
              async);
    CHECK_MSG(xd_read(dev, f, got, 4096, (uint64_t)INT64_MAX) == -EINVAL, "%s %s: read past",
              type, async);
    /* a trim of nothing: fallocate(2)'s -EINVAL on regular files, once 0
     * on the compressed type; one answer on every type now */
    CHECK_MSG(xd_trim(dev, f, 0, 4096) == -EINVAL, "%s %s: trim of 0 bytes", type, async);

    struct xd_req bad_op = {.op = XD_OP_COUNT, .file = f};
    refused_at_submit(dev, &bad_op, "op XD_OP_COUNT");
    struct xd_req far = {.op = XD_OP_WRITE, .file = f, .buf = a, .len = 4096,
                         .off = UINT64_MAX - 100};
    refused_at_submit(dev, &far, "write past INT64_MAX");
    struct xd_req wrap = {.op = XD_OP_TRIM, .file = f, .len = UINT64_MAX, .off = 4096};
    refused_at_submit(dev, &wrap, "trim wrapping");
    /* a NULL buffer: the compressed type wrote zeros for it */
    CHECK_MSG(xd_write(dev, f, NULL, 4096, 0) == -EFAULT, "%s %s: NULL write", type, async);
    CHECK_MSG(xd_read(dev, f, NULL, 4096, 0) == -EFAULT, "%s %s: NULL read", type, async);
    CHECK(xd_commit(dev) >= 0);
    test_reap_min_above_max(dev, f, type, async);

    memset(got, 0, sizeof(got));
    CHECK_MSG(xd_read(dev, f, got, LEN, 0) == LEN && !memcmp(got, a, LEN),
              "%s %s: the data changed", type, async);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* Misuse a program could make of the API, each answered, none a crash:
 * a file closed through another device (the first device's list was cut:
 * a use after free at its close), a queue deeper than the library allows
 * (32 GiB asked for, "out of memory"), an error line with a control byte
 * of the path (raw: two lines), an error without a line. */
static void test_misuse(const char *dir)
{
    char path[128], odd[160], longname[5000];
    struct xd_dev *d1 = open_dev("regular", "sync"), *d2 = open_dev("regular", "sync"), *big = NULL;
    struct xd_file *f = NULL;
    snprintf(path, sizeof(path), "%s/m", dir);
    CHECK(d1 && d2 && !xd_file_open(d1, path, XD_OPEN_CREATE, 4096, &f, err, sizeof(err)));
    CHECK_MSG(xd_file_close(d2, f) == -EINVAL, "a file closed through another device");
    CHECK(xd_file_close(d1, f) == 0);

    struct xd_config *cfg = xd_config_new();
    err[0] = 0;
    CHECK_MSG(xd_open(&big, cfg, 0xffffffffu, err, sizeof(err)) == -EINVAL &&
              strstr(err, "queue_entries 4294967295") && strstr(err, "up to 65536"), "%s", err);
    xd_config_free(cfg);

    CHECK(xd_register_memory(d1, NULL, 4096) == -EINVAL);
    CHECK(xd_register_memory(d1, (void *)(UINTPTR_MAX - 100), 4096) == -EINVAL);
    CHECK(xd_register_memory(d1, NULL, 0) == 0);

    snprintf(odd, sizeof(odd), "%s/no\nsuch\x1b[31m/x", dir);
    CHECK(xd_file_open(d1, odd, 0, 0, &f, err, sizeof(err)) < 0);
    CHECK_MSG(!strchr(err, '\n') && !strchr(err, 0x1b) && strstr(err, "no\\x0asuch\\x1b[31m"),
              "control bytes raw in '%s'", err);

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    int rc = xd_file_open(d1, longname, XD_OPEN_CREATE, 4096, &f, err, sizeof(err));
    CHECK_MSG(rc < 0 && err[0], "a name past PATH_MAX: %d, err '%s'", rc, err);
    xd_close(d1);
    xd_close(d2);
    unlink(path);
}

int main(void)
{
    char dir[] = "/var/tmp/xd-requests-XXXXXX", path[64];
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/f", dir);
    static const char *types[] = {"regular", "direct", "mmap", "sparse", "compressed"};
    static const char *modes[] = {"sync", "libaio", "io_uring"};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
            test_type(types[t], modes[m], path);

    /* the open of a FIFO blocked until a writer came (for ever) */
    CHECK(!mkfifo(path, 0600));
    for (size_t t = 0; t < 3; t++) { /* regular, direct, mmap: the drivers that open the name */
        struct xd_dev *dev = open_dev(types[t], "sync");
        struct xd_file *f = NULL;
        int rc = dev ? xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err)) : 0;
        /* O_DIRECT refuses a FIFO itself (EINVAL) */
        CHECK_MSG(rc == -ENXIO || (t == 1 && rc == -EINVAL), "%s: a FIFO: %d %s", types[t], rc,
                  err);
        if (f)
            xd_file_close(dev, f);
        if (dev)
            xd_close(dev);
    }
    unlink(path);
    test_misuse(dir);
    rmdir(dir);
    return check_result();
}
