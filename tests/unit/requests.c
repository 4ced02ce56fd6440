/* requests.c - unit test of what xd_submit and the synchronous calls refuse
 * before any layer sees it, on every type that keeps a file and in every
 * async mode: an op outside enum xd_op (the stats layer indexed its
 * histograms by it: a heap overflow), and a range a file offset cannot
 * name (off + len past INT64_MAX, or wrapping). Such a trim used to zero a
 * compressed file from its offset to the end while failing, and such a
 * write under libaio was lost (io_submit refused it, the reap waited
 * forever). Each is -EINVAL, completed at once, and the data stays; so is
 * a trim of 0 bytes, on every type alike. */
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
    CHECK(xd_commit(dev) >= 0);

    memset(got, 0, sizeof(got));
    CHECK_MSG(xd_read(dev, f, got, LEN, 0) == LEN && !memcmp(got, a, LEN),
              "%s %s: the data changed", type, async);
    xd_file_close(dev, f);
    xd_close(dev);
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
    rmdir(dir);
    return check_result();
}
