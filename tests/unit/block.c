/* block.c - unit test of the block storage type on a loop device: aligned
 * and unaligned I/O in sync, libaio and io_uring modes with requests in
 * flight, raw and buffered, BLKDISCARD trim, and the errors a user can cause.
 * Needs root and losetup; exits 77 otherwise. Exit 0 pass, 1 fail. A second
 * loop device with 4096-byte sectors is used when losetup can make one.
 *
 * The checks run in a child process so that the loop device is detached and
 * the image deleted however they end, a crash included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define MIB (1024 * 1024)
#define IMAGE_SIZE (64 * MIB)
#define QUEUE_DEPTH 8
#define BATCH 32
#define CHUNK (16 * 1024)

static char image[64];     /* the 512-byte-sector device's backing file */
static char loopdev[64];   /* a loop device with 512-byte sectors */
static char loopdev4k[64]; /* one with 4096-byte sectors, or empty */

/* A device from key=value pairs (NULL-terminated); NULL with err set. */
static struct xd_dev *dev_open(const char *const *kv, int *rc_out, char *err)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    int rc = cfg ? 0 : -ENOMEM;
    err[0] = '\0';
    rc = rc ? rc : xd_config_set(cfg, "storage_type", "block", "test", err, XD_ERRLEN);
    for (; !rc && kv && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], "test", err, XD_ERRLEN);
    if (!rc)
        rc = xd_open(&dev, cfg, 16, err, XD_ERRLEN);
    xd_config_free(cfg);
    if (rc_out)
        *rc_out = rc;
    return rc ? NULL : dev;
}

/* The loop device opened on dev, or NULL with a failed check. */
static struct xd_file *dev_file(struct xd_dev *dev, const char *path)
{
    char err[XD_ERRLEN];
    struct xd_file *f = NULL;
    int rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open %s: %d %s", path, rc, err);
    return rc ? NULL : f;
}

static void fill(unsigned char *buf, uint64_t off, uint64_t len, unsigned seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(((off + i) * 2654435761u >> 7) ^ seed ^ ((off + i) >> 9));
}

static void *aligned(size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, len + 4096))
        abort();
    return p;
}

static int all_zero(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i])
            return 0;
    return 1;
}

static long long stat_of(struct xd_dev *dev, const char *key) { return layer_stat(dev, "block", key); }

/* open(2) flags of this process's descriptor on path, from /proc; -1 if none. */
static long fd_flags_of(const char *path)
{
    char link[64], target[256], info[64], line[128];
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, path))
            continue;
        snprintf(info, sizeof(info), "/proc/self/fdinfo/%d", fd);
        FILE *fp = fopen(info, "r");
        long flags = -1;
        while (fp && fgets(line, sizeof(line), fp))
            if (!strncmp(line, "flags:", 6))
                flags = strtol(line + 6, NULL, 8);
        if (fp)
            fclose(fp);
        return flags;
    }
    return -1;
}

/* --- synchronous API ----------------------------------------------------- */

/* Aligned and unaligned writes in [base, base+1 MiB), verified by aligned
 * reads of the whole range and by unaligned reads. */
static void check_sync_io(struct xd_dev *dev, struct xd_file *f, uint64_t base, unsigned seed,
                          const char *what)
{
    const size_t span = MIB;
    unsigned char *want = aligned(span), *got = aligned(span), *buf = aligned(span);
    fill(want, base, span, seed);
    ssize_t n = xd_write(dev, f, want, span, base);
    CHECK_MSG(n == (ssize_t)span, "%s: aligned write returned %zd", what, n);

    /* unaligned offset, length and buffer: a read-modify-write under O_DIRECT */
    const uint64_t uoff = 4097, ulen = 10000;
    fill(buf + 1, base + uoff, ulen, seed ^ 0x5a);
    n = xd_write(dev, f, buf + 1, ulen, base + uoff);
    CHECK_MSG(n == (ssize_t)ulen, "%s: unaligned write returned %zd", what, n);
    memcpy(want + uoff, buf + 1, ulen);
    fill(buf + 1, base + 300001, 1, seed ^ 0x33); /* one byte */
    n = xd_write(dev, f, buf + 1, 1, base + 300001);
    CHECK_MSG(n == 1, "%s: one-byte write returned %zd", what, n);
    want[300001] = buf[1];

    n = xd_read(dev, f, got, span, base);
    CHECK_MSG(n == (ssize_t)span && !memcmp(got, want, span), "%s: aligned read back: %zd", what,
              n);
    n = xd_read(dev, f, got + 3, 20011, base + 4000);
    CHECK_MSG(n == 20011 && !memcmp(got + 3, want + 4000, 20011), "%s: unaligned read back: %zd",
              what, n);
    CHECK_MSG(xd_flush(dev, f, 0) == 0 && xd_flush(dev, f, 1) == 0, "%s: flush", what);
    free(want);
    free(got);
    free(buf);
}

/* --- asynchronous API ---------------------------------------------------- */

struct batch_result {
    int busy, queued, inline_done;
};

/* Submit every request, committing and reaping whenever the queue says it is
 * full, then reap the rest; every request must end with result == len. */
static void run_batch(struct xd_dev *dev, struct xd_req *reqs, int n, struct batch_result *r,
                      const char *what)
{
    struct xd_req *done[BATCH];
    struct timespec limit = {10, 0};
    int outstanding = 0;
    for (int i = 0; i < n;) {
        int rc = xd_submit(dev, &reqs[i]);
        if (rc == -EBUSY) {
            r->busy++;
            CHECK_MSG(xd_commit(dev) >= 0, "%s: commit", what);
            int got = xd_reap(dev, done, 1, BATCH, &limit);
            CHECK_MSG(got > 0, "%s: reap after EBUSY returned %d with %d outstanding", what, got,
                      outstanding);
            if (got <= 0)
                return;
            outstanding -= got;
            continue;
        }
        CHECK_MSG(rc == XD_DONE || rc == XD_QUEUED, "%s: submit %d returned %d", what, i, rc);
        if (rc == XD_QUEUED) {
            r->queued++;
            outstanding++;
        } else {
            r->inline_done++;
        }
        i++;
    }
    CHECK_MSG(xd_commit(dev) >= 0, "%s: final commit", what);
    while (outstanding > 0) {
        int got = xd_reap(dev, done, (unsigned)outstanding, BATCH, &limit);
        CHECK_MSG(got > 0, "%s: reap returned %d with %d outstanding", what, got, outstanding);
        if (got <= 0)
            return;
        outstanding -= got;
    }
    for (int i = 0; i < n; i++)
        CHECK_MSG(reqs[i].result == (int64_t)reqs[i].len, "%s: request %d (op %d) result %lld",
                  what, i, reqs[i].op, (long long)reqs[i].result);
}

/* BATCH writes then BATCH reads in flight, more than queue_depth at once. */
static void check_async_io(struct xd_dev *dev, struct xd_file *f, uint64_t base, unsigned seed,
                           const char *what)
{
    unsigned char *wbuf = aligned(BATCH * CHUNK), *rbuf = aligned(BATCH * CHUNK);
    struct xd_req reqs[BATCH];
    struct batch_result w = {0}, r = {0};
    fill(wbuf, base, BATCH * CHUNK, seed);
    memset(rbuf, 0xee, BATCH * CHUNK);
    for (int i = 0; i < BATCH; i++)
        reqs[i] = (struct xd_req){.op = XD_OP_WRITE,
                                  .file = f,
                                  .buf = wbuf + i * CHUNK,
                                  .len = CHUNK,
                                  .off = base + (uint64_t)i * CHUNK};
    run_batch(dev, reqs, BATCH, &w, what);
    for (int i = 0; i < BATCH; i++)
        reqs[i] = (struct xd_req){.op = XD_OP_READ,
                                  .file = f,
                                  .buf = rbuf + i * CHUNK,
                                  .len = CHUNK,
                                  .off = base + (uint64_t)i * CHUNK};
    run_batch(dev, reqs, BATCH, &r, what);
    CHECK_MSG(!memcmp(rbuf, wbuf, BATCH * CHUNK), "%s: async read back differs", what);
    CHECK_MSG(w.queued > 0 && w.busy > 0, "%s: writes queued %d, busy %d (queue_depth %d < %d)",
              what, w.queued, w.busy, QUEUE_DEPTH, BATCH);

    /* an fsync in the queue and an unaligned write completed inline (bounced) */
    struct xd_req sync = {.op = XD_OP_FSYNC, .file = f};
    struct batch_result s = {0};
    run_batch(dev, &sync, 1, &s, what);
    struct xd_req odd = {
        .op = XD_OP_WRITE, .file = f, .buf = wbuf + 1, .len = 777, .off = base + 513};
    run_batch(dev, &odd, 1, &s, what);
    unsigned char back[777];
    CHECK_MSG(xd_read(dev, f, back, 777, base + 513) == 777 && !memcmp(back, wbuf + 1, 777),
              "%s: unaligned async write read back", what);
    free(wbuf);
    free(rbuf);
}

/* Each mode and cache setting gets its own 4 MiB of the device. */
static void check_mode(const char *mode, const char *raw, uint64_t base)
{
    const char *const kv[] = {"async", mode, "use_raw_device", raw, "queue_depth", "8", NULL};
    char err[XD_ERRLEN], what[64];
    snprintf(what, sizeof(what), "async=%s use_raw_device=%s", mode, raw);
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "%s: xd_open: %s", what, err);
    if (!dev)
        return;
    struct xd_file *f = dev_file(dev, loopdev);
    if (f) {
        CHECK_MSG(xd_file_size(dev, f) == IMAGE_SIZE, "%s: size %lld", what,
                  (long long)xd_file_size(dev, f));
        int async = strcmp(mode, "sync") != 0, raw_wanted = !strcmp(raw, "true");
        long flags = fd_flags_of(loopdev);
        CHECK_MSG(flags >= 0 && !!(flags & O_DIRECT) == raw_wanted, "%s: descriptor flags %#lo",
                  what, flags);
        CHECK_MSG(!!(xd_dev_caps(dev) & XD_CAP_ASYNC) == async, "%s: caps %#x", what,
                  xd_dev_caps(dev));
        CHECK_MSG(!(xd_dev_caps(dev) & XD_CAP_TRIM), "%s: trim claimed with enable_trim=false",
                  what);
        check_sync_io(dev, f, base, (unsigned)base >> 20, what);
        if (async)
            check_async_io(dev, f, base + 2 * MIB, (unsigned)base >> 19, what);
        CHECK_MSG(stat_of(dev, "queue_depth") == QUEUE_DEPTH, "%s: stats queue_depth %lld", what,
                  stat_of(dev, "queue_depth"));
        CHECK_MSG(stat_of(dev, "sector_size") == 512, "%s: stats sector_size %lld", what,
                  stat_of(dev, "sector_size"));
        if (!strcmp(raw, "true"))
            CHECK_MSG(stat_of(dev, "bounced") > 0, "%s: unaligned O_DIRECT not bounced", what);
        CHECK_MSG(xd_file_invalidate(dev, f) == 0, "%s: invalidate", what);
        xd_file_close(dev, f);
    }
    xd_close(dev);
}

/* --- trim ---------------------------------------------------------------- */

static void check_trim(const char *raw, uint64_t base)
{
    const char *const kv[] = {"enable_trim", "true", "use_raw_device", raw, NULL};
    char err[XD_ERRLEN];
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "enable_trim=true: xd_open: %s", err);
    if (!dev)
        return;
    struct xd_file *f = dev_file(dev, loopdev);
    if (!f) {
        xd_close(dev);
        return;
    }
    const size_t span = 3 * MIB;
    unsigned char *want = aligned(span), *got = aligned(span);
    fill(want, base, span, 0x77);
    CHECK_MSG(xd_write(dev, f, want, span, base) == (ssize_t)span, "trim: prefill");
    CHECK_MSG(xd_read(dev, f, got, span, base) == (ssize_t)span, "trim: read into the cache");
    CHECK_MSG(xd_dev_caps(dev) & XD_CAP_TRIM, "enable_trim=true without XD_CAP_TRIM");
    int rc = xd_trim(dev, f, MIB, base + MIB);
    CHECK_MSG(rc == 0, "use_raw_device=%s: trim: %d", raw, rc);
    memset(want + MIB, 0, MIB);
    CHECK_MSG(xd_read(dev, f, got, span, base) == (ssize_t)span && all_zero(got + MIB, MIB),
              "use_raw_device=%s: trimmed range does not read as zeros", raw);
    CHECK_MSG(!memcmp(got, want, span), "use_raw_device=%s: bytes around the trim changed", raw);
    rc = xd_trim(dev, f, 1000, base);
    CHECK_MSG(rc == -EINVAL, "unaligned trim: %d", rc);
    rc = xd_trim(dev, f, 4096, base + 100);
    CHECK_MSG(rc == -EINVAL, "unaligned trim offset: %d", rc);
    CHECK_MSG(stat_of(dev, "discarded_bytes") == MIB, "discarded_bytes %lld",
              stat_of(dev, "discarded_bytes"));
    free(want);
    free(got);
    xd_file_close(dev, f);
    xd_close(dev);
}

static void check_trim_disabled(uint64_t base)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev = dev_open(NULL, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    if (!dev)
        return;
    struct xd_file *f = dev_file(dev, loopdev);
    if (f) {
        unsigned char *buf = aligned(4096), *back = aligned(4096);
        fill(buf, base, 4096, 0x12);
        CHECK_MSG(xd_write(dev, f, buf, 4096, base) == 4096, "prefill");
        int rc = xd_trim(dev, f, 4096, base);
        CHECK_MSG(rc == -EOPNOTSUPP, "trim with enable_trim=false: %d", rc);
        CHECK_MSG(xd_read(dev, f, back, 4096, base) == 4096 && !memcmp(buf, back, 4096),
                  "a refused trim changed data");
        free(buf);
        free(back);
        xd_file_close(dev, f);
    }
    xd_close(dev);
}

/* --- configuration and errors -------------------------------------------- */

static void check_errors(void)
{
    char err[XD_ERRLEN];
    struct xd_file *f = NULL;
    struct xd_dev *dev = dev_open(NULL, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    if (dev) {
        int rc = xd_file_open(dev, image, 0, 0, &f, err, sizeof(err));
        CHECK_MSG(rc < 0 && strstr(err, "not a block device") && strstr(err, image) &&
                      strstr(err, "allowed"),
                  "regular file: %d %s", rc, err);
        rc = xd_file_open(dev, "/nonexistent-xd-device", 0, 0, &f, err, sizeof(err));
        CHECK_MSG(rc == -ENOENT && strstr(err, "/nonexistent-xd-device"), "missing device: %d %s",
                  rc, err);
        xd_close(dev);
    }
    static const char *const small[] = {"sector_size", "256", NULL};
    dev = dev_open(small, NULL, err);
    CHECK_MSG(dev, "xd_open sector_size=256: %s", err);
    if (dev) {
        int rc = xd_file_open(dev, loopdev, 0, 0, &f, err, sizeof(err));
        CHECK_MSG(rc == -EINVAL && strstr(err, "sector_size=256") && strstr(err, "512"),
                  "sector_size=256 on a 512-byte device: %d %s", rc, err);
        xd_close(dev);
    }
}

/* block_device overrides the caller's path; sector_size=4096 coarsens the
 * alignment, so 512-aligned requests are bounced yet still correct; reads
 * past the end of the device return what exists. */
static void check_block_device_key(uint64_t base)
{
    const char *const kv[] = {"block_device", loopdev, "sector_size", "4096",
                              "enable_trim",  "true",  NULL};
    char err[XD_ERRLEN];
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    if (!dev)
        return;
    struct xd_file *f = dev_file(dev, "ignored-name");
    if (f) {
        unsigned char *buf = aligned(8192), *back = aligned(8192);
        fill(buf, base + 512, 4096, 0x99);
        CHECK_MSG(xd_write(dev, f, buf, 4096, base + 512) == 4096, "512-aligned write");
        CHECK_MSG(xd_read(dev, f, back, 4096, base + 512) == 4096 && !memcmp(buf, back, 4096),
                  "512-aligned read back with sector_size=4096");
        CHECK_MSG(stat_of(dev, "bounced") >= 2 && stat_of(dev, "sector_size") == 4096,
                  "bounced %lld sector_size %lld", stat_of(dev, "bounced"),
                  stat_of(dev, "sector_size"));
        int rc = xd_trim(dev, f, 4096, base + 512);
        CHECK_MSG(rc == -EINVAL, "trim aligned to the device but not to sector_size=4096: %d", rc);
        rc = xd_trim(dev, f, 8192, base + 8192);
        CHECK_MSG(rc == 0, "trim aligned to sector_size=4096: %d", rc);
        ssize_t n = xd_read(dev, f, back, 8192, IMAGE_SIZE - 4096);
        CHECK_MSG(n == 4096, "read over the end of the device returned %zd", n);
        char *json = xd_stats_json(dev);
        CHECK_MSG(json && strstr(json, loopdev), "stats name no device: %s", json ? json : "NULL");
        free(json);
        free(buf);
        free(back);
        xd_file_close(dev, f);
    }
    xd_close(dev);
}

/* A device with 4096-byte sectors opened after one with 512 on the same
 * xd_dev: the shared data path must raise its alignment, so 512-aligned
 * requests are bounced rather than refused by O_DIRECT. */
static void check_large_sectors(void)
{
    const char *const kv[] = {"async", "io_uring", "queue_depth", "8", NULL};
    char err[XD_ERRLEN];
    if (!loopdev4k[0] || check_skip_io_uring("large sectors"))
        return;
    struct xd_dev *dev = dev_open(kv, NULL, err);
    CHECK_MSG(dev, "xd_open: %s", err);
    if (!dev)
        return;
    struct xd_file *f512 = dev_file(dev, loopdev), *f4k = NULL;
    unsigned char *buf = aligned(3 * CHUNK), *back = aligned(3 * CHUNK);
    if (!f512)
        goto out;
    /* a bounce buffer aligned for 512, big enough for the 4k device's requests below */
    fill(buf + 1, 40 * MIB + 1000, 20000, 0x41);
    CHECK_MSG(xd_write(dev, f512, buf + 1, 20000, 40 * MIB + 1000) == 20000,
              "512: unaligned write");
    f4k = dev_file(dev, loopdev4k);
    if (!f4k)
        goto out;
    CHECK_MSG(stat_of(dev, "sector_size") == 4096, "sector_size %lld", stat_of(dev, "sector_size"));
    CHECK_MSG(xd_file_size(dev, f4k) == 8 * MIB, "4k device size %lld",
              (long long)xd_file_size(dev, f4k));
    const uint64_t offs[] = {512, 4096 + 100, 3 * 4096};
    const size_t lens[] = {4096, 5000, CHUNK};
    for (int i = 0; i < 3; i++) {
        unsigned char *data = i == 1 ? buf + 1 : buf; /* one unaligned buffer */
        fill(data, offs[i], lens[i], 0x42 + i);
        ssize_t n = xd_write(dev, f4k, data, lens[i], offs[i]);
        CHECK_MSG(n == (ssize_t)lens[i], "4k device: write off=%llu len=%zu returned %zd",
                  (unsigned long long)offs[i], lens[i], n);
        n = xd_read(dev, f4k, back + 3, lens[i], offs[i]);
        CHECK_MSG(n == (ssize_t)lens[i] && !memcmp(back + 3, data, lens[i]),
                  "4k device: read back off=%llu returned %zd", (unsigned long long)offs[i], n);
    }
    check_async_io(dev, f4k, 4 * MIB, 0x50, "4096-byte sectors");
    fill(buf, 40 * MIB + 512, 1024, 0x43); /* aligned for 512 only: now bounced */
    CHECK_MSG(xd_write(dev, f512, buf, 1024, 40 * MIB + 512) == 1024, "512: write after 4k open");
    CHECK_MSG(xd_read(dev, f512, back, 1024, 40 * MIB + 512) == 1024 && !memcmp(back, buf, 1024),
              "512: read back after 4k open");
out:
    free(buf);
    free(back);
    if (f4k)
        xd_file_close(dev, f4k);
    if (f512)
        xd_file_close(dev, f512);
    xd_close(dev);
}

static int run_checks(void)
{
    check_errors();
    check_mode("sync", "true", 0);
    check_mode("sync", "false", 4 * MIB);
    if (check_mode_runs("io_uring", "block device requests")) {
        check_mode("io_uring", "true", 8 * MIB);
        check_mode("io_uring", "false", 12 * MIB);
    }
    check_mode("libaio", "true", 16 * MIB);
    check_trim("true", 24 * MIB);
    check_trim("false", 28 * MIB);
    check_trim_disabled(32 * MIB);
    check_block_device_key(36 * MIB);
    check_large_sectors();
    return check_result();
}

/* --- loop device --------------------------------------------------------- */

struct loop {
    char image[64];
    char dev[64];
};

/* An image of size bytes attached with the given losetup options; 0 with
 * l->dev set, or -1 with the reason in why. */
static int loop_attach(struct loop *l, long long size, const char *options, char *why,
                       size_t whylen)
{
    char cmd[256], line[128] = "";
    snprintf(l->image, sizeof(l->image), "/tmp/xd-block-test-XXXXXX");
    int fd = mkstemp(l->image);
    if (fd < 0 || ftruncate(fd, size)) {
        snprintf(why, whylen, "cannot create a %lld MiB image in /tmp: %s", size / MIB,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s %s 2>&1", options, l->image);
    FILE *p = popen(cmd, "r");
    if (p && !fgets(line, sizeof(line), p))
        line[0] = '\0';
    int status = p ? pclose(p) : -1;
    line[strcspn(line, "\n")] = '\0';
    if (status != 0 || strncmp(line, "/dev/", 5)) {
        snprintf(why, whylen, "'%s' failed: %s", cmd, line[0] ? line : "(no output)");
        return -1;
    }
    snprintf(l->dev, sizeof(l->dev), "%s", line);
    return 0;
}

static void loop_detach(struct loop *l)
{
    char cmd[128];
    if (l->dev[0]) {
        snprintf(cmd, sizeof(cmd), "losetup -d %s", l->dev);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: '%s' failed; detach it by hand\n", cmd);
    }
    if (l->image[0])
        unlink(l->image);
}

int main(void)
{
    struct loop small = {.image = ""}, large = {.image = ""};
    char why[512];
    if (geteuid() != 0)
        SKIP("the block test needs root to attach a loop device");
    if (loop_attach(&small, IMAGE_SIZE, "", why, sizeof(why))) {
        loop_detach(&small);
        SKIP("%s", why);
    }
    snprintf(image, sizeof(image), "%s", small.image);
    snprintf(loopdev, sizeof(loopdev), "%s", small.dev);
    if (loop_attach(&large, 8 * MIB, "--sector-size 4096", why, sizeof(why)))
        fprintf(stderr, "note: no 4096-byte-sector loop device, those checks are skipped: %s\n",
                why);
    snprintf(loopdev4k, sizeof(loopdev4k), "%s", large.dev);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        _exit(run_checks());
    int status = 0, rc = 1;
    if (pid < 0)
        fprintf(stderr, "fork: %s\n", strerror(errno));
    else if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
        rc = WEXITSTATUS(status);
    else
        fprintf(stderr, "%s:%d: the checks died (signal %d)\n", __FILE__, __LINE__,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    loop_detach(&large);
    loop_detach(&small);
    return rc ? 1 : 0;
}
