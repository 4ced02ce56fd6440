/* mmap.c - unit test of the mmap storage type through the public API: copies
 * across window boundaries, growth past end of file, trim, flush, invalidate,
 * read-only files, the inline completion of "async" requests and readahead.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define WINDOW (64 * 1024)
#define MODEL_MAX (2 * 1024 * 1024)

static char dir[] = "/tmp/xd-mmap-test-XXXXXX";

/* What the file should hold: every write and trim is applied here too. */
static struct {
    unsigned char data[MODEL_MAX];
    uint64_t size;
} model;

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* A device from key=value pairs (NULL-terminated); NULL with the reason printed. */
static struct xd_dev *dev_open(const char *const *kv, int *rc_out, char *err)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    int rc = cfg ? 0 : -ENOMEM;
    err[0] = '\0';
    rc = rc ? rc : xd_config_set(cfg, "storage_type", "mmap", "test", err, XD_ERRLEN);
    for (; !rc && kv && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], "test", err, XD_ERRLEN);
    if (!rc)
        rc = xd_open(&dev, cfg, 4, err, XD_ERRLEN);
    xd_config_free(cfg);
    if (rc_out)
        *rc_out = rc;
    return rc ? NULL : dev;
}

static void fill(unsigned char *buf, uint64_t off, uint64_t len, unsigned seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(((off + i) * 2654435761u >> 7) ^ seed ^ ((off + i) >> 9));
}

static void model_write(const unsigned char *buf, uint64_t len, uint64_t off)
{
    memcpy(model.data + off, buf, len);
    if (off + len > model.size)
        model.size = off + len;
}

/* Write [off, off+len) with a fresh pattern through xd_write and the model. */
static void write_pattern(struct xd_dev *dev, struct xd_file *f, uint64_t off, uint64_t len,
                          unsigned seed)
{
    unsigned char *buf = malloc(len + 1);
    fill(buf + 1, off, len, seed); /* +1: an unaligned buffer */
    ssize_t n = xd_write(dev, f, buf + 1, len, off);
    CHECK_MSG(n == (ssize_t)len, "write off=%llu len=%llu returned %zd", (unsigned long long)off,
              (unsigned long long)len, n);
    model_write(buf + 1, len, off);
    free(buf);
}

/* The whole file, read back in pieces of step bytes, equals the model. */
static void verify_all(struct xd_dev *dev, struct xd_file *f, uint64_t step, const char *when)
{
    unsigned char *buf = malloc(step);
    CHECK_MSG(xd_file_size(dev, f) == (int64_t)model.size, "%s: size %lld, expected %llu", when,
              (long long)xd_file_size(dev, f), (unsigned long long)model.size);
    for (uint64_t off = 0; off < model.size; off += step) {
        uint64_t want = model.size - off < step ? model.size - off : step;
        ssize_t n = xd_read(dev, f, buf, step, off);
        CHECK_MSG(n == (ssize_t)want, "%s: read off=%llu returned %zd, expected %llu", when,
                  (unsigned long long)off, n, (unsigned long long)want);
        if (n == (ssize_t)want && memcmp(buf, model.data + off, want)) {
            CHECK_MSG(0, "%s: data differs in [%llu, %llu)", when, (unsigned long long)off,
                      (unsigned long long)(off + want));
            break;
        }
    }
    free(buf);
}

/* Read [off, off+len) and compare with the model. */
static void verify_range(struct xd_dev *dev, struct xd_file *f, uint64_t off, uint64_t len)
{
    unsigned char *buf = malloc(len + 3);
    ssize_t n = xd_read(dev, f, buf + 3, len, off);
    CHECK_MSG(n == (ssize_t)len && !memcmp(buf + 3, model.data + off, len),
              "range off=%llu len=%llu: read %zd", (unsigned long long)off, (unsigned long long)len,
              n);
    free(buf);
}

/* The file on disk, read with plain pread, equals the model: the copies
 * reached the file, not just a private buffer. */
static void verify_on_disk(const char *path)
{
    unsigned char *buf = malloc(model.size ? model.size : 1);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, model.size, 0);
    CHECK_MSG(n == (ssize_t)model.size && !memcmp(buf, model.data, model.size),
              "%s: pread returned %zd of %llu bytes or different data", path, n,
              (unsigned long long)model.size);
    if (fd >= 0)
        close(fd);
    free(buf);
}

static long long stat_of(struct xd_dev *dev, const char *key) { return layer_stat(dev, "mmap", key); }

static void test_windows_and_growth(void)
{
    static const char *const kv[] = {"mmap_size", "64k", NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    int rc;
    struct xd_dev *dev = dev_open(kv, &rc, err);
    CHECK_MSG(dev, "xd_open: %d %s", rc, err);
    if (!dev)
        return;
    path_of(path, sizeof(path), "sub/dir/data");
    rc = xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "xd_file_open: %d %s", rc, err);
    if (rc) {
        xd_close(dev);
        return;
    }
    CHECK_MSG(xd_file_size(dev, f) == 0, "new file has size %lld", (long long)xd_file_size(dev, f));

    write_pattern(dev, f, 12345, 200000, 1);       /* spans windows 0..3, starts unaligned */
    write_pattern(dev, f, WINDOW - 1000, 5000, 2); /* crosses the first boundary */
    write_pattern(dev, f, 2 * WINDOW - 1, 2, 3);   /* one byte either side of a boundary */
    write_pattern(dev, f, 3, 1, 4);                /* a hole before it reads as zeros */
    verify_all(dev, f, 4096, "after writes");
    verify_all(dev, f, 100003, "after writes, odd step"); /* reads crossing windows */
    verify_range(dev, f, WINDOW - 6, 20);
    verify_range(dev, f, 3 * WINDOW - 500, 1000);

    /* growth: past end of file, leaving a gap that must read as zeros */
    uint64_t old_end = model.size;
    write_pattern(dev, f, old_end + 100000, 70000, 5);
    CHECK_MSG(xd_file_size(dev, f) == (int64_t)(old_end + 170000), "size after growth %lld",
              (long long)xd_file_size(dev, f));
    write_pattern(dev, f, model.size - 10, 4096 * 3 + 7, 6); /* overlaps the end, grows again */
    write_pattern(dev, f, model.size, 1, 7);                 /* append one byte */
    verify_all(dev, f, 65536, "after growth");

    /* reads past end of file return the bytes that exist */
    unsigned char buf[100];
    ssize_t n = xd_read(dev, f, buf, 100, model.size - 10);
    CHECK_MSG(n == 10 && !memcmp(buf, model.data + model.size - 10, 10), "read over the end: %zd",
              n);
    n = xd_read(dev, f, buf, 100, model.size + 5);
    CHECK_MSG(n == 0, "read past the end: %zd", n);

    CHECK_MSG(xd_flush(dev, f, 0) == 0, "fsync");
    CHECK_MSG(xd_flush(dev, f, 1) == 0, "fdatasync");
    CHECK_MSG(xd_flush(dev, f, 1) == 0, "fdatasync with nothing written");
    verify_on_disk(path);

    /* trim: a hole reads as zeros through the mapping, neighbours intact */
    rc = xd_trim(dev, f, WINDOW + 8192, WINDOW - 4096);
    CHECK_MSG(rc == 0, "trim: %d", rc);
    memset(model.data + WINDOW - 4096, 0, WINDOW + 8192);
    verify_all(dev, f, 4096, "after trim");
    CHECK_MSG(stat_of(dev, "trimmed_bytes") == WINDOW + 8192, "trimmed_bytes %lld",
              stat_of(dev, "trimmed_bytes"));

    /* invalidate unmaps every window; they come back on the next touch */
    write_pattern(dev, f, 7 * WINDOW + 3, 300, 8); /* dirty, must survive invalidate */
    verify_range(dev, f, 7 * WINDOW + 3, 300); /* a read maps its window (writes map none) */
    long long mapped = stat_of(dev, "windows_mapped");
    CHECK_MSG(mapped >= 8, "windows_mapped %lld", mapped);
    CHECK_MSG(stat_of(dev, "windows_unmapped") == 0, "windows_unmapped %lld before invalidate",
              stat_of(dev, "windows_unmapped"));
    rc = xd_file_invalidate(dev, f);
    CHECK_MSG(rc == 0, "invalidate: %d", rc);
    CHECK_MSG(stat_of(dev, "windows_unmapped") == mapped, "windows_unmapped %lld, mapped %lld",
              stat_of(dev, "windows_unmapped"), mapped);
    verify_all(dev, f, 8192, "after invalidate");
    CHECK_MSG(stat_of(dev, "windows_mapped") > mapped, "no window remapped after invalidate");
    CHECK_MSG(stat_of(dev, "bytes_copied_in") > 0 && stat_of(dev, "bytes_copied_out") > 0,
              "copy counters in=%lld out=%lld", stat_of(dev, "bytes_copied_in"),
              stat_of(dev, "bytes_copied_out"));
    CHECK_MSG(xd_file_close(dev, f) == 0, "close");
    xd_close(dev);
    verify_on_disk(path);
}

/* A second device on the same file sees the first one's growth. */
static void test_shared_growth(void)
{
    static const char *const kv[] = {"mmap_size", "64k", NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *fa = NULL, *fb = NULL;
    struct xd_dev *a = dev_open(kv, NULL, err), *b = dev_open(kv, NULL, err);
    CHECK_MSG(a && b, "xd_open: %s", err);
    path_of(path, sizeof(path), "sub/dir/data");
    if (!a || !b || xd_file_open(a, path, 0, 0, &fa, err, sizeof(err)) ||
        xd_file_open(b, path, 0, 0, &fb, err, sizeof(err))) {
        CHECK_MSG(0, "open %s: %s", path, err);
        goto out;
    }
    uint64_t end = model.size;
    write_pattern(b, fb, end + 5000, 3000, 9);
    verify_range(a, fa, end + 4000, 4000); /* past what a knew; zeros then b's data */
    verify_all(a, fa, 32768, "device a after b grew the file");
out:
    if (fa)
        xd_file_close(a, fa);
    if (fb)
        xd_file_close(b, fb);
    xd_close(a);
    xd_close(b);
}

static void test_readonly(void)
{
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    struct xd_dev *dev = dev_open(NULL, NULL, err); /* default 64m windows */
    CHECK_MSG(dev, "xd_open: %s", err);
    if (!dev)
        return;
    path_of(path, sizeof(path), "sub/dir/data");
    int rc = xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "read-only open: %d %s", rc, err);
    if (!rc) {
        verify_all(dev, f, 1 << 20, "read-only");
        unsigned char byte = 1;
        CHECK_MSG(xd_write(dev, f, &byte, 1, 0) < 0, "a write to a read-only file succeeded");
        xd_file_close(dev, f);
    }
    rc = xd_file_open(dev, "/nonexistent-dir-xd/file", 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == -ENOENT && strstr(err, "/nonexistent-dir-xd/file"), "missing file: %d %s", rc,
              err);
    xd_close(dev);
}

/* size on create gives the file that size, reading as zeros. */
static void test_create_size(void)
{
    static const char *const kv[] = {"mmap_size", "64k", "preallocate_files", "true", NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    if (!dev)
        return;
    path_of(path, sizeof(path), "sized");
    int rc = xd_file_open(dev, path, XD_OPEN_CREATE, 300000, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "create with size: %d %s", rc, err);
    if (!rc) {
        CHECK_MSG(xd_file_size(dev, f) == 300000, "size %lld", (long long)xd_file_size(dev, f));
        unsigned char buf[5000], zero[5000] = {0};
        CHECK_MSG(xd_read(dev, f, buf, sizeof(buf), 299000) == 1000 && !memcmp(buf, zero, 1000),
                  "tail of a new file");
        xd_file_close(dev, f);
    }
    xd_close(dev);
}

/* use_fallocate=false grows files with ftruncate instead. */
static void test_growth_ftruncate(void)
{
    static const char *const kv[] = {"mmap_size", "64k", "use_fallocate", "false", NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    path_of(path, sizeof(path), "truncated");
    if (!dev || xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err))) {
        CHECK_MSG(0, "open %s: %s", path, err);
        xd_close(dev);
        return;
    }
    unsigned char data[5000], back[8000], zero[3000] = {0};
    fill(data, 100000, sizeof(data), 11);
    CHECK_MSG(xd_write(dev, f, data, sizeof(data), 100000) == (ssize_t)sizeof(data),
              "write past end");
    CHECK_MSG(xd_file_size(dev, f) == 105000, "size %lld", (long long)xd_file_size(dev, f));
    CHECK_MSG(xd_read(dev, f, back, sizeof(back), 97000) == 8000 && !memcmp(back, zero, 3000) &&
                  !memcmp(back + 3000, data, sizeof(data)),
              "read back across the old end");
    xd_file_close(dev, f);
    xd_close(dev);
}

/* Async modes are accepted, complete inline, and say so once. */
static void test_async_inline(void)
{
    static const char *const kv[] = {"mmap_size", "64k", "async", "io_uring", NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    struct xd_dev *sync_dev = dev_open(NULL, NULL, err);
    CHECK_MSG(sync_dev && !xd_dev_notice(sync_dev), "sync mode has a notice: %s",
              sync_dev && xd_dev_notice(sync_dev) ? xd_dev_notice(sync_dev) : err);
    xd_close(sync_dev);
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "xd_open async=io_uring: %s", err);
    if (!dev)
        return;
    const char *notice = xd_dev_notice(dev);
    CHECK_MSG(notice && strstr(notice, "inline") && strstr(notice, "io_uring"), "notice: %s",
              notice ? notice : "(none)");
    CHECK_MSG(!(xd_dev_caps(dev) & XD_CAP_ASYNC), "mmap claims XD_CAP_ASYNC");
    CHECK_MSG(xd_dev_caps(dev) & XD_CAP_TRIM, "mmap does not claim XD_CAP_TRIM");
    path_of(path, sizeof(path), "async");
    if (xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err))) {
        CHECK_MSG(0, "open: %s", err);
        xd_close(dev);
        return;
    }
    static unsigned char wbuf[4][70000], rbuf[4][70000];
    struct xd_req req[8];
    for (int i = 0; i < 4; i++) {
        fill(wbuf[i], (uint64_t)i * 70000, 70000, 10);
        req[i] = (struct xd_req){
            .op = XD_OP_WRITE, .file = f, .buf = wbuf[i], .len = 70000, .off = (uint64_t)i * 70000};
        int rc = xd_submit(dev, &req[i]);
        CHECK_MSG(rc == XD_DONE && req[i].result == 70000, "async write %d: rc %d result %lld", i,
                  rc, (long long)req[i].result);
    }
    for (int i = 0; i < 4; i++) {
        req[4 + i] = (struct xd_req){
            .op = XD_OP_READ, .file = f, .buf = rbuf[i], .len = 70000, .off = (uint64_t)i * 70000};
        int rc = xd_submit(dev, &req[4 + i]);
        CHECK_MSG(rc == XD_DONE && req[4 + i].result == 70000 && !memcmp(rbuf[i], wbuf[i], 70000),
                  "async read %d: rc %d result %lld", i, rc, (long long)req[4 + i].result);
    }
    struct xd_req *done[8];
    struct timespec zero = {0, 0};
    CHECK_MSG(xd_commit(dev) == 0, "commit");
    CHECK_MSG(xd_reap(dev, done, 0, 8, &zero) == 0, "reap returned something never queued");
    xd_file_close(dev, f);
    xd_close(dev);
}

/* Whether this process's mappings of path carry the VmFlags bit flag (e.g.
 * "rr", MADV_RANDOM) in /proc/self/smaps: 1 all do, 0 some do not, -1 none
 * mapped. */
static int mappings_flagged(const char *path, const char *flag)
{
    char line[1024];
    int mapped = 0, flagged = 0, ours = 0;
    size_t plen = strlen(path), flen = strlen(flag);
    FILE *fp = fopen("/proc/self/smaps", "r");
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\n")] = '\0';
        size_t n = strlen(line);
        char *dash = strchr(line, '-'), *space = strchr(line, ' ');
        if (dash && space && dash < space) { /* a mapping's header line */
            ours = n >= plen && !strcmp(line + n - plen, path);
            continue;
        }
        if (!ours || strncmp(line, "VmFlags:", 8))
            continue;
        mapped++;
        for (char *at = strstr(line, flag); at; at = strstr(at + 1, flag)) {
            if (at[-1] == ' ' && (at[flen] == ' ' || at[flen] == '\0')) {
                flagged++;
                break;
            }
        }
    }
    fclose(fp);
    return !mapped ? -1 : flagged == mapped;
}

/* read_ahead_kb > 0 advises sequential readers; 0 never does, and marks
 * every window MADV_RANDOM instead. */
static long long sequential_advice(const char *ra_kb)
{
    const char *const kv[] = {"mmap_size", "64k", "read_ahead_kb", ra_kb, NULL};
    char err[XD_ERRLEN], path[256];
    struct xd_file *f = NULL;
    struct xd_dev *dev = dev_open(kv, NULL, err);
    long long advised = -1;
    path_of(path, sizeof(path), "sub/dir/data");
    if (!dev || xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err))) {
        CHECK_MSG(0, "read_ahead_kb=%s: %s", ra_kb, err);
        xd_close(dev);
        return -1;
    }
    unsigned char buf[4096];
    for (uint64_t off = 0; off + sizeof(buf) <= model.size; off += sizeof(buf))
        xd_read(dev, f, buf, sizeof(buf), off);
    advised = stat_of(dev, "advised");
    int random = mappings_flagged(path, "rr");
    CHECK_MSG(random == !strcmp(ra_kb, "0"), "read_ahead_kb=%s: MADV_RANDOM on windows: %d", ra_kb,
              random);
    xd_file_close(dev, f);
    xd_close(dev);
    return advised;
}

static void test_readahead(void)
{
    long long on = sequential_advice("128"), off = sequential_advice("0");
    CHECK_MSG(on > 0, "read_ahead_kb=128: advised %lld", on);
    CHECK_MSG(off == 0, "read_ahead_kb=0: advised %lld", off);
}

static void test_bad_window(void)
{
    static const char *const kv[] = {"mmap_size", "5000", NULL};
    char err[XD_ERRLEN];
    int rc;
    struct xd_dev *dev = dev_open(kv, &rc, err);
    CHECK_MSG(!dev && rc == -EINVAL && strstr(err, "mmap_size=5000") && strstr(err, "allowed"),
              "mmap_size=5000: rc %d, %s", rc, err);
    xd_close(dev);
}

/* On a tmpfs the pages are the file: invalidate drops nothing there, so it
 * keeps the windows mapped (fio invalidates before every pass of a
 * time_based job; unmapping made each pass fault every page in again). */
/* A device (kv) and a new file of size bytes in a fresh directory under
 * /dev/shm (shm: "/dev/shm/xd-mmap-test-XXXXXX", path: its "data"); false
 * (the test skipped, said) where /dev/shm cannot have one. */
static bool open_on_shm(const char *const *kv, char *shm, char *path, size_t pathlen,
                        uint64_t size, struct xd_dev **dev, struct xd_file **f, const char *test)
{
    char err[XD_ERRLEN];
    *dev = NULL;
    *f = NULL;
    if (!mkdtemp(shm)) {
        fprintf(stderr, "skip %s: /dev/shm: %s\n", test, strerror(errno));
        return false;
    }
    snprintf(path, pathlen, "%s/data", shm);
    *dev = dev_open(kv, NULL, err);
    CHECK_MSG(*dev && !xd_file_open(*dev, path, XD_OPEN_CREATE, size, f, err, sizeof(err)),
              "open: %s", err);
    return true;
}

static void close_on_shm(struct xd_dev *dev, struct xd_file *f, const char *shm, const char *path)
{
    if (f)
        xd_file_close(dev, f);
    if (dev)
        xd_close(dev);
    unlink(path);
    rmdir(shm);
}

static void test_invalidate_on_tmpfs(void)
{
    char shm[] = "/dev/shm/xd-mmap-test-XXXXXX", path[64];
    unsigned char buf[4096];
    struct xd_dev *dev;
    struct xd_file *f;
    if (!open_on_shm(NULL, shm, path, sizeof(path), 1 << 20, &dev, &f, "test_invalidate_on_tmpfs"))
        return;
    if (f) {
        memset(buf, 0x5a, sizeof(buf));
        CHECK(xd_write(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf));
        CHECK(xd_file_invalidate(dev, f) == 0);
        memset(buf, 0, sizeof(buf));
        CHECK(xd_read(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf) && buf[7] == 0x5a);
        CHECK_MSG(stat_of(dev, "windows_unmapped") == 0 && stat_of(dev, "windows_mapped") == 1,
                  "tmpfs: windows mapped %lld, unmapped %lld", stat_of(dev, "windows_mapped"),
                  stat_of(dev, "windows_unmapped"));
    }
    close_on_shm(dev, f, shm, path);
}

/* How many of this process's mappings of path carry permissions perms
 * ("r--s", "rw-s"), from /proc/self/maps. */
static int mappings_with(const char *path, const char *perms)
{
    char line[512], p[8], name[256];
    int n = 0;
    FILE *fp = fopen("/proc/self/maps", "r");
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "%*s %7s %*s %*s %*s %255s", p, name) == 2 && !strcmp(p, perms) &&
            !strcmp(name, path))
            n++;
    if (fp)
        fclose(fp);
    return n;
}

/* Windows are mapped without PROT_WRITE (reads through a writable shared
 * mapping ran at half the rate) and stay so: a write goes in through pwrite
 * (a copy into the mapping cut by a kill -9 left a torn block), and reads
 * through the window see it. */
static void test_windows_stay_read_only(void)
{
    static const char *const kv[] = {"mmap_size", "64k", NULL};
    char err[XD_ERRLEN], path[256];
    unsigned char buf[4096];
    struct xd_file *f = NULL;
    path_of(path, sizeof(path), "lazywrite");
    /* data, not holes: on a tmpfs /tmp reads of holes would go through
     * pread and map nothing (test_holes_on_tmpfs) */
    int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    CHECK_MSG(wfd >= 0, "%s: %s", path, strerror(errno));
    memset(buf, 0x11, sizeof(buf));
    for (unsigned i = 0; wfd >= 0 && i < 4 * WINDOW / sizeof(buf); i++)
        CHECK(pwrite(wfd, buf, sizeof(buf), (off_t)(i * sizeof(buf))) == (ssize_t)sizeof(buf));
    if (wfd >= 0)
        close(wfd);
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 4 * WINDOW, &f, err, sizeof(err)),
              "open: %s", err);
    if (!f) {
        if (dev)
            xd_close(dev);
        return;
    }
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(xd_read(dev, f, buf, sizeof(buf), WINDOW) == (ssize_t)sizeof(buf));
    CHECK_MSG(mappings_with(path, "r--s") == 2 && mappings_with(path, "rw-s") == 0,
              "after reads: %d read-only and %d writable windows", mappings_with(path, "r--s"),
              mappings_with(path, "rw-s"));
    memset(buf, 0xa5, sizeof(buf));
    CHECK(xd_write(dev, f, buf, sizeof(buf), WINDOW + 512) == (ssize_t)sizeof(buf));
    CHECK_MSG(mappings_with(path, "r--s") == 2 && mappings_with(path, "rw-s") == 0,
              "after a write: %d read-only, %d writable windows", mappings_with(path, "r--s"),
              mappings_with(path, "rw-s"));
    memset(buf, 0, sizeof(buf));
    CHECK(xd_read(dev, f, buf, sizeof(buf), WINDOW + 512) == (ssize_t)sizeof(buf) &&
          buf[0] == 0xa5 && buf[4095] == 0xa5);
    xd_file_close(dev, f);
    xd_close(dev);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, buf, 1, WINDOW + 512) == 1 && buf[0] == 0xa5);
    if (fd >= 0)
        close(fd);
}

static long long blocks_of(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_blocks;
}

/* On tmpfs a load through a shared mapping makes a page for a hole (and
 * SIGBUS where it cannot: a full tmpfs), so reads of holes go through
 * pread and make nothing; a write into a hole makes its page (pwrite: on a
 * full file system that is ENOSPC, tests/e2e/test_full.py), and reads of
 * it then go through the window, until a trim makes it a hole again. Old:
 * the two reads below made pages (24 blocks). */
static void test_holes_on_tmpfs(void)
{
    static const char *const kv[] = {"mmap_size", "64k", NULL};
    char shm[] = "/dev/shm/xd-mmap-test-XXXXXX", path[64];
    unsigned char buf[4096];
    struct xd_dev *dev;
    struct xd_file *f;
    if (!open_on_shm(kv, shm, path, sizeof(path), 4 * WINDOW, &dev, &f, "test_holes_on_tmpfs"))
        return;
    if (f) {
        memset(buf, 0x77, sizeof(buf));
        CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) && !buf[0] && !buf[4095]);
        CHECK(xd_read(dev, f, buf, sizeof(buf), 2 * WINDOW + 100) == (ssize_t)sizeof(buf) && !buf[9]);
        CHECK_MSG(blocks_of(path) == 0 && stat_of(dev, "reads_through_pread") == 2,
                  "reads of holes: %lld blocks, %lld through pread", blocks_of(path),
                  stat_of(dev, "reads_through_pread"));
        memset(buf, 0x3c, sizeof(buf));
        CHECK(xd_write(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf));
        CHECK(xd_write(dev, f, buf, 100, 8192 + 50) == 100);
        CHECK_MSG(blocks_of(path) == 8, "a write into a hole: %lld blocks", blocks_of(path));
        memset(buf, 0, sizeof(buf));
        CHECK(xd_read(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf) && buf[4095] == 0x3c);
        CHECK(stat_of(dev, "reads_through_pread") == 2); /* through the window */
        CHECK(xd_trim(dev, f, 8192, 4096) == 0 && blocks_of(path) == 0);
        CHECK(xd_read(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf) && !buf[7]);
        CHECK_MSG(stat_of(dev, "reads_through_pread") == 3 && blocks_of(path) == 0,
                  "a read of the trimmed page: %lld through pread, %lld blocks",
                  stat_of(dev, "reads_through_pread"), blocks_of(path));
        memset(buf, 0x3d, sizeof(buf));
        CHECK(xd_write(dev, f, buf, sizeof(buf), 8192) == (ssize_t)sizeof(buf) && blocks_of(path) == 8);
    }
    close_on_shm(dev, f, shm, path);
}

static void cleanup(void)
{
    char path[256];
    static const char *const names[] = {"sub/dir/data", "sized", "async", "truncated", "lazywrite",
                                        "sub/dir",      "sub",   NULL};
    for (int i = 0; names[i]; i++) {
        path_of(path, sizeof(path), names[i]);
        if (unlink(path))
            rmdir(path);
    }
    rmdir(dir);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        SKIP("cannot create a directory under /tmp: %s", strerror(errno));
    }
    test_windows_and_growth();
    test_shared_growth();
    test_readonly();
    test_create_size();
    test_growth_ftruncate();
    test_async_inline();
    test_readahead();
    test_bad_window();
    test_invalidate_on_tmpfs();
    test_windows_stay_read_only();
    test_holes_on_tmpfs();
    cleanup();
    return check_result();
}
