/* checksum.c - unit test of the checksum layer through the public API: the
 * states a crash can leave (an entry with a write in flight, the data old,
 * new or torn) read as old, new or EIO, never as wrong data; a pending slot
 * the data matches is folded in; partial writes and unaligned reads keep
 * the crcs right; a hole whose first write a crash lost reads as zeros; a
 * write into a corrupt block is refused; a sidecar of
 * another block size is refused at open with one line. A block whose
 * writes since the last fsync never reached the disk (a power loss) reads
 * as what that fsync made durable; a sidecar made before that slot existed
 * (16-byte entries) still serves. A read racing a write of its block from
 * another device waits for it rather than reading as EIO, however long it
 * is seen moving; one after the
 * device's own write of its block, queued, reads the new data, and one
 * beside another device's queued write of the same thread does not wait
 * on it for ever. Writers of one
 * block from two devices take turns (one write of a block out at a time),
 * without waiting on themselves when one thread drives both; a device
 * opening the file of a solo writer waits for its unlocked write out. A
 * block whose entry the sidecar lost reads as EIO; a trimmed one reads. A
 * read-only open writes nothing (no sidecar made, no header, no entry, no
 * mark): with a sidecar it checks reads against it, data appended behind
 * the layer included, and with none (and no mark) it reads unchecked. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/crc32c.h"
#include "core/turns.h" /* XD_TURNS_REGAIN_EVERY */
#include "xdevice.h"

#define BLK 4096
#define NBLK 4
#define HEADER 64

#define TAG 0x4b534358u /* a slot that holds a crc */
#define MARK "user.xdevice.checksum" /* the data file's mark that it has a sidecar */

/* Three slots, each {crc, TAG}: what the block held when last seen, the
 * last write sent down, and what the last fsync made durable. */
struct entry {
    uint32_t cur, cur_tag, new, new_tag, dur, dur_tag;
};

static char err[XD_ERRLEN];
static char path[256], side[256];

/* A device of the config kv (key, value, ..., NULL). */
static struct xd_dev *open_dev_kv(const char *const *kv)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    int rc = 0;
    for (const char *const *p = kv; !rc && p[0]; p += 2)
        rc = xd_config_set(cfg, p[0], p[1], "test", err, sizeof(err));
    if (rc || xd_open(&dev, cfg, 16, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    xd_config_free(cfg);
    return dev;
}

static struct xd_dev *open_dev_mode(const char *block_size, const char *async)
{
    const char *kv[] = {"storage_type", "regular", "enable_checksums", "true",
                        "checksum_block_size", block_size, "async", async, NULL};
    return open_dev_kv(kv);
}

static struct xd_dev *open_dev(const char *block_size) { return open_dev_mode(block_size, "sync"); }

static struct entry entry_of(unsigned block)
{
    struct entry e = {0, 0, 0, 0, 0, 0};
    int fd = open(side, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, &e, sizeof(e), HEADER + block * sizeof(e)) == sizeof(e));
    close(fd);
    return e;
}

static void set_entry(unsigned block, struct entry e)
{
    int fd = open(side, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, &e, sizeof(e), HEADER + block * sizeof(e)) == sizeof(e));
    close(fd);
}

/* Bytes written behind the layer's back. */
static void poke(const void *buf, size_t len, off_t off)
{
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, buf, len, off) == (ssize_t)len);
    close(fd);
}

static long long stat_of(struct xd_dev *dev, const char *key)
{
    return layer_stat(dev, "checksum", key);
}

/* Send a write of buf to block 0 of f down dev's queue, not yet committed. */
static void stage_write(struct xd_dev *dev, struct xd_file *f, struct xd_req *req, char *buf)
{
    *req = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = buf, .len = BLK, .off = 0};
    CHECK(xd_submit(dev, req) == XD_QUEUED);
}

static void land(struct xd_dev *dev, struct xd_req *req)
{
    struct xd_req *done[2];
    CHECK(xd_commit(dev) >= 0);
    CHECK(xd_reap(dev, done, 1, 2, NULL) == 1 && done[0] == req && req->result == BLK);
}

/* nanosleep(2) for the library linked in: the checksum layer pauses with
 * it between reads of a block that matched neither slot while a write of
 * it is in flight. The first pause runs landing, the write finishing. */
static void (*landing)(void);

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    void (*now)(void) = landing;
    landing = NULL;
    if (now)
        now();
    return (int)syscall(SYS_nanosleep, req, rem);
}

/* fcntl(2) for the library linked in: with stall_getlk set, the next
 * F_OFD_GETLK (a reader asking whether a writer is at work) first stalls
 * the caller 30 ms, as a preempted thread on a loaded machine. */
static bool stall_getlk;

int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long); /* an int or a pointer: one register */
    va_end(ap);
    if (cmd == F_OFD_GETLK && stall_getlk) {
        stall_getlk = false;
        struct timespec stalled = {0, 30 * 1000000};
        syscall(SYS_nanosleep, &stalled, NULL);
    }
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

static char race_b[BLK];

static void race_lands(void)
{
    struct entry e = entry_of(0);
    poke(race_b, BLK, 0);
    e.cur = e.new;
    set_entry(0, e);
}

/* A device and its file whose block 0 held a and has a whole-block write
 * of b landing from another device: half of b so far, the entry saying a
 * (CUR) and b (pending). NULL (the device closed) when it cannot open. */
static struct xd_file *open_with_b_landing(struct xd_dev **dev, const char *a, const char *b)
{
    struct xd_file *f = NULL;
    *dev = open_dev("4k");
    CHECK(*dev && !xd_file_open(*dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f) {
        xd_close(*dev);
        return NULL;
    }
    CHECK(xd_write(*dev, f, a, BLK, 0) == BLK);
    memcpy(race_b, b, BLK);
    set_entry(0, (struct entry){xd_crc32c(0, a, BLK), TAG, xd_crc32c(0, b, BLK), TAG, 0, 0});
    poke(b, BLK / 2, 0);
    return f;
}

/* A read racing one whole-block write from another device: its data is a
 * mix of old and new (the writer's copy preempted halfway through), and
 * still a mix when read again at once. It waits for the write, whose
 * pending slot says it is in flight, and reads the new data; not EIO, and
 * no mismatch counted. With no write in flight a torn block reads as EIO
 * at once. */
static void test_read_racing_one_write(const char *a, const char *b)
{
    struct xd_dev *dev;
    struct xd_file *f = open_with_b_landing(&dev, a, b);
    static char got[BLK];
    if (!f)
        return;
    uint32_t crc_a = xd_crc32c(0, a, BLK), crc_b = xd_crc32c(0, b, BLK);
    landing = race_lands;
    ssize_t n = xd_read(dev, f, got, BLK, 0);
    CHECK_MSG(n == BLK && !memcmp(got, b, BLK), "a read racing a write: %zd", n);
    CHECK(stat_of(dev, "mismatches") == 0);
    landing = NULL;

    /* a partial write whose block is being written whole by another
     * device: it merges into the landed block, not EIO */
    set_entry(0, (struct entry){crc_b, TAG, crc_a, TAG, 0, 0}); /* a is being written */
    memcpy(race_b, a, BLK);
    poke(a, BLK / 2, 0);
    landing = race_lands;
    CHECK_MSG(xd_write(dev, f, "zz", 2, 100) == 2, "a partial write racing a whole one");
    landing = NULL;
    static char want[BLK];
    memcpy(want, a, BLK);
    memcpy(want + 100, "zz", 2);
    CHECK(xd_read(dev, f, got, BLK, 0) == BLK && !memcmp(got, want, BLK));
    CHECK(stat_of(dev, "mismatches") == 0);

    poke(b, BLK / 2, 0); /* torn with nothing in flight: corrupt */
    landing = race_lands;
    CHECK(xd_read(dev, f, got, BLK, 0) == -EIO);
    CHECK_MSG(landing, "a torn block with no write in flight was waited on");
    landing = NULL;
    CHECK(stat_of(dev, "mismatches") == 1);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* The reader itself stalled between its first two looks at a block whose
 * write is pending (longer than the 20 ms a still block is waited for):
 * it has not waited for the writer, so it pauses before it calls the block
 * torn, and the write lands in that pause. On the old code the read
 * failed with EIO without a pause. */
static void test_reader_stalled_between_looks(const char *a, const char *b)
{
    struct xd_dev *dev;
    struct xd_file *f = open_with_b_landing(&dev, a, b);
    static char got[BLK];
    if (!f)
        return;
    landing = race_lands;
    stall_getlk = true;
    ssize_t n = xd_read(dev, f, got, BLK, 0);
    CHECK_MSG(!stall_getlk, "the reader never asked whether a writer was at work");
    CHECK_MSG(n == BLK && !memcmp(got, b, BLK), "a read stalled between its looks: %zd", n);
    CHECK(stat_of(dev, "mismatches") == 0);
    landing = NULL;
    stall_getlk = false;
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* Another device's write of block 0 still copying on a loaded machine:
 * each look finds the block torn differently (the writer preempted 100 ms
 * at a time), for longer than any fixed wait, then the write lands. */
static int churns_left;
static char race_a[BLK];

static void race_churns(void)
{
    struct timespec preempted = {0, 100 * 1000000};
    syscall(SYS_nanosleep, &preempted, NULL);
    if (churns_left-- <= 0) {
        race_lands();
        return;
    }
    if (churns_left % 2)
        poke(race_a, BLK / 4, 0); /* the first quarter old again: another mix */
    else
        poke(race_b, BLK / 2, 0); /* the first half new, as it started */
    landing = race_churns;
}

/* A read of a block whose write is seen moving waits for it however long
 * it takes: with a 20 ms limit in all, a verify read of a 1 MiB block two
 * loaded jobs wrote in turns was called torn (EIO) while the write was
 * still landing. */
static void test_read_waits_for_a_moving_block(const char *a, const char *b)
{
    struct xd_dev *dev;
    struct xd_file *f = open_with_b_landing(&dev, a, b);
    static char got[BLK];
    if (!f)
        return;
    memcpy(race_a, a, BLK);
    churns_left = 8;
    landing = race_churns;
    ssize_t n = xd_read(dev, f, got, BLK, 0);
    CHECK_MSG(n == BLK && !memcmp(got, b, BLK), "a read of a block still landing: %zd", n);
    CHECK_MSG(churns_left < 0, "the read returned before the write landed");
    CHECK(stat_of(dev, "mismatches") == 0);
    landing = NULL;
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* The torture case's hybrid file: a sparse cold tier, every block read
 * promotes its extent to the hot tier. */
static struct xd_dev *open_hybrid(const char *hot)
{
    const char *kv[] = {"storage_type", "hybrid", "hot_directory", hot, "cold_storage_type",
                        "sparse", "hot_access_threshold", "1", "tier_extent_size", "64k",
                        "hot_cache_size", "1m", "enable_checksums", "true",
                        "checksum_block_size", "512", "async", "io_uring", NULL};
    return open_dev_kv(kv);
}

/* A read of a block the same device has a write of queued, not yet sent
 * (fio's rw=rw: its read and write streams both start at block 0, and
 * iodepth_batch_submit queues them together). A read served at once (the
 * hybrid type's hot tier, a cached block) found the block matching neither
 * slot (the write's NEW; the old data, here never written through the
 * layer, no CUR), waited 20 ms for a write that could not go before it
 * returned, and failed with EIO. The device's own writes of the block land
 * first now: the read returns the new data, nothing counted a mismatch.
 * An unaligned read (its blocks read whole, at once) likewise. */
static void test_read_after_own_queued_write(const char *b)
{
    if (!check_mode_runs("io_uring", "a read after the device's own queued write"))
        return;
    static char got[BLK];
    char hot[] = "/dev/shm/xd-checksum-hot-XXXXXX";
    if (!mkdtemp(hot)) {
        fprintf(stderr, "skip: a read after the device's own queued write: %s\n", strerror(errno));
        return;
    }
    for (int unaligned = 0; unaligned <= 1; unaligned++) {
        struct xd_dev *dev = open_hybrid(hot);
        struct xd_file *f = NULL;
        CHECK_MSG(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 4 * BLK, &f, err, sizeof(err)),
                  "%s", err);
        if (!f) {
            xd_close(dev);
            return;
        }
        struct xd_req w, r = {.op = XD_OP_READ, .file = f, .buf = got, .len = BLK, .off = 0};
        if (unaligned) {
            r.off = 100;
            r.len = 200;
        }
        stage_write(dev, f, &w, (char *)b);
        int rc = xd_submit(dev, &r);
        struct xd_req *done[4];
        int reaped = 0;
        bool saw_w = false, saw_r = rc == XD_DONE;
        CHECK(xd_commit(dev) >= 0);
        while (reaped >= 0 && (!saw_w || !saw_r)) {
            reaped = xd_reap(dev, done, 1, 4, NULL);
            for (int i = 0; i < reaped; i++) {
                saw_w |= done[i] == &w;
                saw_r |= done[i] == &r;
            }
        }
        CHECK_MSG(w.result == BLK, "the write: %lld", (long long)w.result);
        CHECK_MSG(r.result == (int64_t)r.len && !memcmp(got, b + r.off, r.len),
                  "a read after the device's own queued write (unaligned %d): %lld", unaligned,
                  (long long)r.result);
        CHECK(stat_of(dev, "mismatches") == 0);
        xd_file_close(dev, f);
        CHECK_MSG(!xd_unlink(dev, path, err, sizeof(err)), "%s", err);
        xd_close(dev);
    }
    CHECK_MSG(!rmdir(hot), "%s: %s", hot, strerror(errno));
}

/* Two devices (two fio jobs) in one thread, each sending a write of block
 * 0 before either is reaped, reaped in either order. One write of a block
 * is out at a time: the second device's claim finds the first's lock and,
 * before it waits, lets the writes out of every device of its thread land
 * (the first device's write is reaped then and held for its caller). So
 * nothing waits on itself, each caller reaps its own write, and the block
 * reads as the write sent last: the one that landed last. (With two
 * writes out at once, reaped in the other order, the block read as EIO or
 * as the older data in the old layer, once a third write joined them.) */
static void test_racing_writers(const char *x, const char *y, int later_reaped_first)
{
    struct xd_dev *d1 = open_dev_mode("4k", "libaio"), *d2 = open_dev_mode("4k", "libaio");
    struct xd_file *f1 = NULL, *f2 = NULL;
    CHECK(d1 && d2 && !xd_file_open(d1, path, XD_OPEN_CREATE, 0, &f1, err, sizeof(err)) &&
          !xd_file_open(d2, path, XD_OPEN_CREATE, 0, &f2, err, sizeof(err)));
    if (!f1 || !f2)
        return;
    static char bx[BLK], by[BLK], got[BLK];
    memcpy(bx, x, BLK);
    memcpy(by, y, BLK);
    struct xd_req r1, r2;
    stage_write(d1, f1, &r1, bx); /* sent first, not yet reaped */
    stage_write(d2, f2, &r2, by); /* waits for it: it lands first */
    CHECK(stat_of(d2, "lock_waits") == 1 && stat_of(d1, "drained") == 1);
    if (later_reaped_first) {
        land(d2, &r2);
        land(d1, &r1);
    } else {
        land(d1, &r1);
        land(d2, &r2);
    }
    CHECK_MSG(xd_read(d1, f1, got, BLK, 0) == BLK && !memcmp(got, by, BLK),
              "the write sent last does not read back (reaped in order %d)", later_reaped_first);
    CHECK(stat_of(d1, "mismatches") == 0 && stat_of(d2, "mismatches") == 0);
    xd_file_close(d1, f1);
    xd_file_close(d2, f2);
    xd_close(d1);
    xd_close(d2);
}

static void read_stuck(int sig)
{
    (void)sig;
    static const char msg[] = "checksum: a read waited on a write its own thread holds queued\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

/* Two devices of one file driven by one thread (a program's, not fio's):
 * the first has a write of block 0 queued, not yet sent, holding the
 * block's lock; the second reads block 0, never written through the layer
 * (it holds data from before checksums were on, so no slot and no hole
 * matches it). Its recheck waited while another descriptor
 * held the block: for ever, since the write could not go down before the
 * read returned. The thread's devices land their writes out first now
 * (core/turns.c, as a claim that must wait does): the read returns the new
 * data, and the first device's caller reaps its write. */
static void test_read_beside_another_queued_write_of_its_thread(const char *b)
{
    struct xd_dev *d1 = open_dev_mode("4k", "libaio"), *d2 = open_dev_mode("4k", "libaio");
    struct xd_file *f1 = NULL, *f2 = NULL;
    unlink(path);
    unlink(side);
    static char before[BLK];
    memset(before, 'o', BLK);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && pwrite(fd, before, BLK, 0) == BLK);
    close(fd);
    CHECK(d1 && d2 && !xd_file_open(d1, path, XD_OPEN_CREATE, 4 * BLK, &f1, err, sizeof(err)) &&
          !xd_file_open(d2, path, XD_OPEN_CREATE, 0, &f2, err, sizeof(err)));
    if (!f1 || !f2)
        return;
    static char bb[BLK], got[BLK];
    memcpy(bb, b, BLK);
    struct xd_req w;
    stage_write(d1, f1, &w, bb); /* d2 asked d1 to share: this write holds a lock */
    signal(SIGALRM, read_stuck);
    alarm(10);
    ssize_t n = xd_read(d2, f2, got, BLK, 0);
    alarm(0);
    CHECK_MSG(n == BLK && !memcmp(got, bb, BLK), "the read beside the queued write: %zd", n);
    struct xd_req *done[2];
    CHECK(xd_reap(d1, done, 1, 2, NULL) == 1 && done[0] == &w && w.result == BLK);
    CHECK(stat_of(d2, "mismatches") == 0);
    xd_file_close(d1, f1);
    xd_file_close(d2, f2);
    xd_close(d1);
    xd_close(d2);
    unlink(side);
    unlink(path);
}

/* A second device opening the file of a solo writer (the first one's
 * writes take no lock) waits until the solo writer's write out has landed,
 * and from then on both take locks: the first one's next write of a block
 * the second has out waits for it (having let the second device, driven by
 * this same thread, land its write first). */
struct opener {
    struct xd_dev *dev;
    struct xd_file *f;
    int rc, done;
};

static void *open_second(void *arg)
{
    struct opener *o = arg;
    char e[XD_ERRLEN];
    o->rc = xd_file_open(o->dev, path, XD_OPEN_CREATE, 0, &o->f, e, sizeof(e));
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int opened_within(struct opener *o, long ms)
{
    for (long waited = 0; waited < ms; waited += 10) {
        if (__atomic_load_n(&o->done, __ATOMIC_ACQUIRE))
            return 1;
        struct timespec t = {0, 10 * 1000000L};
        syscall(SYS_nanosleep, &t, NULL);
    }
    return __atomic_load_n(&o->done, __ATOMIC_ACQUIRE);
}

static void test_newcomer_waits_for_the_solo_writer(const char *x, const char *y)
{
    unlink(side);
    unlink(path);
    struct xd_dev *d1 = open_dev_mode("4k", "libaio");
    struct opener o = {.dev = open_dev_mode("4k", "libaio")};
    struct xd_file *f1 = NULL;
    CHECK(d1 && o.dev && !xd_file_open(d1, path, XD_OPEN_CREATE, 0, &f1, err, sizeof(err)));
    if (!f1 || !o.dev)
        return;
    CHECK_MSG(stat_of(d1, "solo_files") == 1, "the only writer did not go solo");
    static char bx[BLK], by[BLK], got[BLK];
    memcpy(bx, x, BLK);
    memcpy(by, y, BLK);
    struct xd_req r1, r2;
    stage_write(d1, f1, &r1, bx); /* out, no lock taken */
    pthread_t t;
    CHECK(!pthread_create(&t, NULL, open_second, &o));
    /* it cannot get in while that write is out, however long it waits */
    CHECK_MSG(!opened_within(&o, 300), "a newcomer opened while the solo writer's write was out");
    land(d1, &r1);
    CHECK_MSG(opened_within(&o, 60000), "the newcomer still waits after the solo write landed");
    pthread_join(t, NULL);
    CHECK(o.rc == 0 && stat_of(o.dev, "solo_files") == 0);
    stage_write(o.dev, o.f, &r2, by);            /* out, locked */
    stage_write(d1, f1, &r1, bx);                /* d1 leaves solo, waits for r2 */
    CHECK(stat_of(d1, "lock_waits") == 1 && stat_of(o.dev, "drained") == 1);
    land(o.dev, &r2);
    land(d1, &r1);
    CHECK(xd_read(o.dev, o.f, got, BLK, 0) == BLK && !memcmp(got, bx, BLK));
    CHECK(stat_of(d1, "mismatches") == 0 && stat_of(o.dev, "mismatches") == 0);
    xd_file_close(o.dev, o.f);
    xd_file_close(d1, f1);
    xd_close(o.dev);
    xd_close(d1);
}

/* A writer that gave up solo for a newcomer is solo again once the
 * newcomer has closed (tried every XD_TURNS_REGAIN_EVERY-th write), and a
 * third device opening then waits for its write out, as at the start. */
static void test_solo_again_once_alone(const char *x, const char *y)
{
    unlink(side);
    unlink(path);
    struct xd_dev *d1 = open_dev_mode("4k", "libaio"), *d2 = open_dev_mode("4k", "libaio");
    struct opener o = {.dev = open_dev_mode("4k", "libaio")};
    struct xd_file *f1 = NULL, *f2 = NULL;
    CHECK(d1 && d2 && o.dev && !xd_file_open(d1, path, XD_OPEN_CREATE, 0, &f1, err, sizeof(err)) &&
          !xd_file_open(d2, path, XD_OPEN_CREATE, 0, &f2, err, sizeof(err)));
    if (!f1 || !f2 || !o.dev)
        return;
    static char bx[BLK], by[BLK], got[BLK];
    memcpy(bx, x, BLK);
    memcpy(by, y, BLK);
    CHECK(xd_write(d1, f1, bx, BLK, 0) == BLK); /* asked: d1 takes turns from here */
    CHECK(xd_write(d2, f2, by, BLK, BLK) == BLK);
    for (unsigned i = 0; i < 2 * XD_TURNS_REGAIN_EVERY; i++)
        CHECK(xd_write(d1, f1, bx, BLK, 0) == BLK);
    CHECK_MSG(stat_of(d1, "solo_regained") == 0, "solo again while another writer is open");
    xd_file_close(d2, f2);
    xd_close(d2);
    for (unsigned i = 0; i < XD_TURNS_REGAIN_EVERY; i++)
        CHECK(xd_write(d1, f1, bx, BLK, 0) == BLK);
    CHECK_MSG(stat_of(d1, "solo_regained") == 1, "the only writer left did not go solo again: %lld",
              stat_of(d1, "solo_regained"));
    struct xd_req r1;
    stage_write(d1, f1, &r1, by); /* out, no lock taken */
    pthread_t t;
    CHECK(!pthread_create(&t, NULL, open_second, &o));
    CHECK_MSG(!opened_within(&o, 300), "a newcomer opened while the regained solo write was out");
    land(d1, &r1);
    CHECK_MSG(opened_within(&o, 60000), "the newcomer still waits after the solo write landed");
    pthread_join(t, NULL);
    CHECK(o.rc == 0);
    CHECK(o.f && xd_read(o.dev, o.f, got, BLK, 0) == BLK && !memcmp(got, by, BLK));
    CHECK(o.f && xd_read(o.dev, o.f, got, BLK, BLK) == BLK && !memcmp(got, by, BLK));
    CHECK(stat_of(d1, "mismatches") == 0 && stat_of(o.dev, "mismatches") == 0);
    if (o.f)
        xd_file_close(o.dev, o.f);
    xd_file_close(d1, f1);
    xd_close(o.dev);
    xd_close(d1);
}

/* A power loss: blocks written (and seen to land) since the last fsync
 * come back as they were at it. They read as that data, not as EIO; a
 * write never fsynced at all (no DUR) still reads as EIO when torn, and a
 * failed read keeps nothing. */
static void test_durable_after_power_loss(const char *a, const char *b)
{
    unlink(side);
    unlink(path);
    struct xd_dev *dev = open_dev("4k");
    struct xd_file *f = NULL;
    static char buf[BLK];
    uint32_t crc_a = xd_crc32c(0, a, BLK), crc_b = xd_crc32c(0, b, BLK);
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f)
        return;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    struct entry e = entry_of(1);
    CHECK_MSG(!e.dur_tag, "DUR set before any fsync");
    CHECK(xd_flush(dev, f, 0) == 0);
    e = entry_of(1);
    CHECK_MSG(e.dur_tag == TAG && e.dur == crc_a, "the fsync did not make block 1 durable");
    /* b lands on blocks 1 and 2, then the power goes: the disk has a again */
    CHECK(xd_write(dev, f, b, BLK, BLK) == BLK && xd_write(dev, f, b, BLK, 2 * BLK) == BLK);
    e = entry_of(1);
    CHECK(e.cur == crc_b && e.new == crc_b && e.dur == crc_a);
    poke(a, BLK, BLK);
    poke(a, BLK, 2 * BLK);
    CHECK_MSG(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, a, BLK),
              "a block reverted to its fsynced data does not read as it");
    e = entry_of(1);
    CHECK(e.cur == crc_a); /* learnt: the next write's old data is a */
    /* a partial write into the other reverted block merges with a */
    CHECK(xd_write(dev, f, "zz", 2, 2 * BLK + 10) == 2);
    CHECK(xd_read(dev, f, buf, BLK, 2 * BLK) == BLK && !memcmp(buf, a, 10) &&
          !memcmp(buf + 10, "zz", 2) && !memcmp(buf + 12, a + 12, BLK - 12));
    /* the fsync after: the reverted block's durable data is a again */
    CHECK(xd_flush(dev, f, 0) == 0);
    e = entry_of(1);
    CHECK(e.dur == crc_a && e.cur == crc_a);
    /* a block torn between the durable data and a lost write: EIO */
    CHECK(xd_write(dev, f, b, BLK, 3 * BLK) == BLK);
    poke(a, BLK / 2, 3 * BLK);
    CHECK(xd_read(dev, f, buf, BLK, 3 * BLK) == -EIO);
    char line[XD_ERRLEN] = "";
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)));
    CHECK_MSG(strstr(line, "nor the durable"), "%s", line);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* A new file at path (its sidecar gone too) on a new device with 4k
 * blocks; NULL (said, the device closed) when it cannot be made. */
static struct xd_file *fresh_file(struct xd_dev **dev)
{
    struct xd_file *f = NULL;
    unlink(side);
    unlink(path);
    *dev = open_dev("4k");
    CHECK(*dev && !xd_file_open(*dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f)
        xd_close(*dev);
    return f;
}

/* A kill -9 with the first write of never-written blocks queued (io_uring
 * cancels it at exit): the entries say nothing was held (no CUR) and b is
 * pending, and the blocks are still holes. They read as the zeros they
 * hold, not EIO, and CUR learns them; a block torn between b and zeros
 * still reads as EIO. (A mirror's fill after such a kill degraded a
 * healthy copy: e2e test_kill9_loses_nothing_fsynced, 1 run in 60 on a
 * loaded machine.) */
static void test_first_write_lost_in_a_crash(const char *b)
{
    static char zeros[BLK], got[BLK];
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    CHECK(xd_write(dev, f, b, BLK, 3 * BLK) == BLK); /* blocks 0-2: holes */
    uint32_t crc_b = xd_crc32c(0, b, BLK);
    set_entry(1, (struct entry){0, 0, crc_b, TAG, 0, 0});
    set_entry(2, (struct entry){0, 0, crc_b, TAG, 0, 0});
    CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == BLK && !memcmp(got, zeros, BLK),
              "a hole whose first write was lost in a crash does not read as zeros");
    struct entry e = entry_of(1);
    CHECK(e.cur_tag == TAG && e.cur == xd_crc32c(0, zeros, BLK));
    poke(b, BLK / 2, 2 * BLK); /* torn: half b, half the hole's zeros */
    CHECK(xd_read(dev, f, got, BLK, 2 * BLK) == -EIO);
    CHECK(stat_of(dev, "mismatches") == 1);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A zeroed sidecar sector can take a block's CUR slot alone (entries are
 * 24 bytes, sectors 512: block 61's CUR ends sector 2, its NEW and DUR
 * begin sector 3), or CUR and NEW. With its fsynced data zeroed too, such a
 * block read as the zeros of a hole (CS_MATCH_HOLE asked only for no CUR),
 * where its DUR says it held data: it reads as EIO. */
static void test_zeroed_block_with_lost_cur_slot(const char *a)
{
    static char zeros[BLK], got[BLK];
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    CHECK(xd_flush(dev, f, 0) == 0);
    uint32_t crc_a = xd_crc32c(0, a, BLK);
    set_entry(1, (struct entry){0, 0, crc_a, TAG, crc_a, TAG}); /* CUR lost */
    set_entry(2, (struct entry){0, 0, 0, 0, crc_a, TAG});       /* CUR and NEW lost */
    poke(zeros, BLK, BLK);
    poke(zeros, BLK, 2 * BLK);
    CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == -EIO,
              "fsynced data zeroed, its CUR slot lost: read as zeros, not EIO");
    CHECK_MSG(xd_read(dev, f, got, BLK, 2 * BLK) == -EIO,
              "fsynced data zeroed, its CUR and NEW slots lost: read as zeros, not EIO");
    /* the slots that are left still serve the data they name */
    poke(a, BLK, BLK);
    CHECK(xd_read(dev, f, got, BLK, BLK) == BLK && !memcmp(got, a, BLK));
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A block written by one open that never fsynced it (a close, a kill -9)
 * and fsynced by the next open of the file: that fsync made it durable, so
 * its DUR is the new data. It kept the DUR of the version before, and a
 * later lost write (the disk back at that version, the sidecar right)
 * read as that older version rather than EIO. */
/* A fresh file of NBLK blocks of a, fsynced, then blocks 1 to upto of b
 * written by the same open and never fsynced, closed. Its device, or NULL
 * (said) when the file could not be made. */
static struct xd_dev *file_with_unsynced_writes(const char *a, const char *b, unsigned upto)
{
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return NULL;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    CHECK(xd_flush(dev, f, 0) == 0);
    for (unsigned i = 1; i <= upto; i++) /* never fsynced by this open */
        CHECK(xd_write(dev, f, b, BLK, (uint64_t)i * BLK) == BLK);
    xd_file_close(dev, f);
    return dev;
}

static void test_durable_learnt_by_the_next_open(const char *a, const char *b)
{
    static char got[BLK];
    struct xd_dev *dev = file_with_unsynced_writes(a, b, 1);
    struct xd_file *f = NULL;
    if (!dev)
        return;
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (!f) {
        xd_close(dev);
        return;
    }
    CHECK(xd_flush(dev, f, 0) == 0); /* b is durable now */
    struct entry e = entry_of(1);
    CHECK_MSG(e.dur_tag == TAG && e.dur == xd_crc32c(0, b, BLK),
              "the next open's fsync left block 1's DUR at the version before");
    e = entry_of(0);
    CHECK(e.dur == xd_crc32c(0, a, BLK)); /* untouched blocks keep theirs */
    poke(a, BLK, BLK); /* the write of b lost after all */
    CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == -EIO,
              "a lost write after the fsync read as the older version");
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* As above, but a reboot came between (the header's boot, offset 56, is
 * another boot's): the power loss that ended the earlier boot may have
 * undone the write, so the next open's fsync must not make it durable
 * unread. A block the power loss took back to its fsynced data reads as
 * it (not EIO), and one that kept the write reads as the write. */
static void test_unsynced_write_before_a_reboot(const char *a, const char *b)
{
    static char got[BLK];
    struct xd_dev *dev = file_with_unsynced_writes(a, b, 2);
    struct xd_file *f = NULL;
    if (!dev)
        return;
    poke(a, BLK, BLK); /* the power loss took block 1 back; block 2 kept b */
    uint64_t other_boot = 0x1234567;
    int fd = open(side, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, &other_boot, sizeof(other_boot), 56) == sizeof(other_boot));
    close(fd);
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (!f) {
        xd_close(dev);
        return;
    }
    CHECK(xd_flush(dev, f, 0) == 0);
    CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == BLK && !memcmp(got, a, BLK),
              "a write a power loss undid: not read as the fsynced data after the next fsync");
    CHECK(xd_read(dev, f, got, BLK, 2 * BLK) == BLK && !memcmp(got, b, BLK));
    CHECK(xd_flush(dev, f, 0) == 0); /* what the reads found is durable now */
    struct entry e = entry_of(2);
    CHECK(e.dur == xd_crc32c(0, b, BLK));
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A bit flip in the header's record of the data file (device, inode,
 * birth time) made the sidecar look like another file's: its entries were
 * zeroed at open and every block read unchecked, a corrupt one as data.
 * The header keeps its crc: such a header is refused with one line, its
 * entries kept. A header of an earlier build (no crc) is sealed at open. */
static void test_header_bit_flip_is_refused(const char *a)
{
    static char got[BLK];
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    CHECK(xd_write(dev, f, a, BLK, BLK) == BLK);
    xd_file_close(dev, f);
    f = NULL;
    unsigned char byte;
    int fd = open(side, O_RDWR);
    CHECK(fd >= 0 && pread(fd, &byte, 1, 24) == 1); /* data_ino's first byte */
    byte ^= 4;
    CHECK(pwrite(fd, &byte, 1, 24) == 1);
    CHECK_MSG(xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == -EINVAL,
              "a sidecar whose header took a bit flip was opened");
    CHECK_MSG(strstr(err, "corrupt header"), "%s", err);
    struct entry e = entry_of(1);
    CHECK_MSG(e.cur_tag == TAG && e.cur == xd_crc32c(0, a, BLK), "the entries were emptied");
    byte ^= 4; /* the flip undone: a sound header opens, checks on */
    CHECK(pwrite(fd, &byte, 1, 24) == 1);
    /* as an earlier build wrote it: no crc kept; sealed at the next open */
    uint32_t words[2] = {0, 0};
    CHECK(pwrite(fd, words, sizeof(words), 40) == sizeof(words));
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    CHECK(pread(fd, words, sizeof(words), 40) == sizeof(words) && words[1] == 0x52444843u);
    close(fd);
    poke("x", 1, BLK + 5);
    CHECK(f && xd_read(dev, f, got, BLK, BLK) == -EIO);
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A bit flip in the header's tag (outside its crc) of a sidecar that tags
 * its unchecked blocks (CHDF): taken for a header of a build before the
 * crc, it was resealed as the older kind (CHDR), and its lost entries then
 * read unchecked. Refused with one line; undone, the file opens. */
static void test_header_tag_flip_is_refused(const char *a)
{
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    CHECK(xd_write(dev, f, a, BLK, 0) == BLK);
    xd_file_close(dev, f);
    f = NULL;
    uint32_t tag = 0;
    int fd = open(side, O_RDWR);
    CHECK(fd >= 0 && pread(fd, &tag, sizeof(tag), 44) == sizeof(tag));
    CHECK_MSG(tag == 0x46444843u, "header tag %08x, not CHDF", tag);
    tag ^= 1u << 9;
    CHECK(pwrite(fd, &tag, sizeof(tag), 44) == sizeof(tag));
    CHECK_MSG(xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == -EINVAL,
              "a sidecar whose header tag took a bit flip was opened");
    CHECK_MSG(strstr(err, "corrupt header: tag"), "%s", err);
    tag ^= 1u << 9;
    CHECK(pwrite(fd, &tag, sizeof(tag), 44) == sizeof(tag));
    close(fd);
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A sidecar this build started tags what it leaves unchecked on purpose,
 * so an entry with no slot at all was lost (the sidecar truncated, a page
 * of it zeroed): such a block reads as EIO, and a partial write into it is
 * refused, where it used to read unchecked, a corrupt block as data. A
 * trimmed block is unchecked on purpose: what it holds then reads. A
 * sidecar of an earlier build (header tag CHDR) keeps reading empty
 * entries unchecked: nothing there told lost from never written. */
static void test_lost_entries_read_eio(const char *a)
{
    static char got[BLK];
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    CHECK(xd_trim(dev, f, BLK, BLK) == 0);
    CHECK(entry_of(1).new_tag == 0x4b434e55u); /* "UNCK": unchecked on purpose */
    poke(a, BLK, BLK); /* a discard that left the data, or data put back */
    CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == BLK && !memcmp(got, a, BLK),
              "a trimmed block read as a lost entry");
    set_entry(2, (struct entry){0, 0, 0, 0, 0, 0});
    set_entry(3, (struct entry){0, 0, 0, 0, 0, 0});
    CHECK_MSG(xd_read(dev, f, got, BLK, 2 * BLK) == -EIO, "a block whose entry was lost read unchecked");
    char line[XD_ERRLEN] = "";
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)));
    CHECK_MSG(strstr(line, path) && strstr(line, side) && strstr(line, "block 2 ") &&
              strstr(line, "is gone"), "%s", line);
    CHECK(xd_write(dev, f, "zz", 2, 3 * BLK + 10) == -EIO);
    CHECK(stat_of(dev, "lost_entries") == 2);
    CHECK(xd_write(dev, f, a, BLK, 2 * BLK) == BLK); /* rewritten whole: checked again */
    CHECK(xd_read(dev, f, got, BLK, 2 * BLK) == BLK && !memcmp(got, a, BLK));
    xd_file_close(dev, f);
    /* an earlier build's sidecar: its header tag, sealed as that build did */
    uint32_t old_tag = 0x52444843u; /* "CHDR" */
    int fd = open(side, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, &old_tag, sizeof(old_tag), 44) == sizeof(old_tag));
    close(fd);
    f = NULL;
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    CHECK_MSG(f && xd_read(dev, f, got, BLK, 3 * BLK) == BLK,
              "an earlier build's sidecar read an empty entry as lost");
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* A file bigger than the data a sidecar may tag at its start (about 11
 * GiB of 4k blocks) whose bytes are mostly holes (fio's layout of a write
 * job: ftruncate, or an fallocate SEEK_DATA skips): only its data counts,
 * so its sidecar is of the full kind (lost entries read as EIO), not the
 * older one the file's size alone made it. The data there is tagged
 * unchecked and reads. On the mmap type too, whose driver answers
 * SEEK_DATA from the file (it did not: all of it counted as data). */
static void test_big_file_of_holes_gets_the_full_kind(const char *type, const char *a)
{
    static char got[BLK];
    const char *kv[] = {"storage_type", type, "enable_checksums", "true", NULL};
    struct xd_dev *dev = open_dev_kv(kv);
    struct xd_file *f = NULL;
    uint32_t tag = 0;
    unlink(side);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    CHECK(fd >= 0 && !ftruncate(fd, 16ll << 30) && pwrite(fd, a, BLK, 7 * BLK) == BLK);
    close(fd);
    CHECK(dev && !xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (!f) {
        xd_close(dev);
        return;
    }
    fd = open(side, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, &tag, sizeof(tag), 44) == sizeof(tag));
    close(fd);
    CHECK_MSG(tag == 0x46444843u, "%s: header tag %08x, not CHDF", type, tag);
    CHECK(entry_of(7).new_tag == 0x4b434e55u); /* "UNCK": unchecked on purpose */
    CHECK(xd_read(dev, f, got, BLK, 7 * BLK) == BLK && !memcmp(got, a, BLK));
    CHECK(xd_write(dev, f, a, BLK, 9 * BLK) == BLK);
    set_entry(9, (struct entry){0, 0, 0, 0, 0, 0});
    CHECK_MSG(xd_read(dev, f, got, BLK, 9 * BLK) == -EIO, "a lost entry read unchecked");
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

/* The hybrid type's tiers answer SEEK_DATA too (the tier layer: an extent
 * held hot counts as data whole, the rest as the cold tier says; a
 * compressed cold tier by its chunk map). A 16 GiB hybrid file holding one
 * block of data, written without checksums, gets the full sidecar kind:
 * the block tagged unchecked on purpose, a lost entry read as EIO. Before,
 * every byte of a hybrid file counted as data, its sidecar was of the
 * older kind, and a lost entry read unchecked. */
static void test_big_hybrid_file_gets_the_full_kind(const char *cold, const char *a)
{
    static char got[BLK];
    char hot[] = "/dev/shm/xd-checksum-hot-XXXXXX";
    if (!mkdtemp(hot)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    const char *kv[] = {"storage_type", "hybrid", "hot_directory", hot, "cold_storage_type", cold,
                        "enable_checksums", "false", NULL};
    struct xd_dev *dev = open_dev_kv(kv);
    struct xd_file *f = NULL;
    uint32_t tag = 0;
    unlink(side);
    CHECK_MSG(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 16ll << 30, &f, err, sizeof(err)),
              "%s", err);
    const unsigned far = (unsigned)((10ull << 30) / BLK); /* past a run of hole groups */
    if (f) {
        CHECK(xd_write(dev, f, a, BLK, 7 * BLK) == BLK);
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)far * BLK) == BLK);
        xd_file_close(dev, f);
        f = NULL;
    }
    if (dev)
        xd_close(dev);
    kv[7] = "true";
    dev = open_dev_kv(kv);
    CHECK_MSG(dev && !xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)), "%s", err);
    if (f) {
        int fd = open(side, O_RDONLY);
        CHECK(fd >= 0 && pread(fd, &tag, sizeof(tag), 44) == sizeof(tag));
        close(fd);
        CHECK_MSG(tag == 0x46444843u, "hybrid, cold %s: header tag %08x, not CHDF", cold, tag);
        CHECK(entry_of(7).new_tag == 0x4b434e55u); /* "UNCK": unchecked on purpose */
        CHECK(entry_of(300).new_tag == 0);          /* a hole: nothing to tag */
        CHECK_MSG(entry_of(far).new_tag == 0x4b434e55u, "hybrid, cold %s: the far block untagged",
                  cold);
        CHECK(xd_read(dev, f, got, BLK, (uint64_t)far * BLK) == BLK && !memcmp(got, a, BLK));
        CHECK(xd_read(dev, f, got, BLK, 7 * BLK) == BLK && !memcmp(got, a, BLK));
        CHECK(xd_write(dev, f, a, BLK, 9 * BLK) == BLK);
        set_entry(9, (struct entry){0, 0, 0, 0, 0, 0});
        CHECK_MSG(xd_read(dev, f, got, BLK, 9 * BLK) == -EIO, "hybrid, cold %s: a lost entry read unchecked",
                  cold);
        xd_file_close(dev, f);
    }
    if (dev) {
        CHECK_MSG(!xd_unlink(dev, path, err, sizeof(err)), "%s", err);
        xd_close(dev);
    }
    unlink(side);
    CHECK_MSG(!rmdir(hot), "%s: %s", hot, strerror(errno));
}

/* An extent whose only data is a dirty hot copy (write-back: the cold
 * file still has a hole there) counts as data when a sidecar starts: its
 * blocks are tagged unchecked and read back as written. Called a hole,
 * they would have read as lost entries (EIO). The cold file's holes around
 * it stay untagged, so the tier was asked. */
static void test_hybrid_dirty_hot_extent_counts_as_data(const char *a)
{
    static char got[BLK];
    char hot[] = "/dev/shm/xd-checksum-hot-XXXXXX";
    if (!mkdtemp(hot)) {
        CHECK_MSG(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    const char *kv[] = {"storage_type", "hybrid", "hot_directory", hot, "tier_write_back", "true",
                        "auto_migration", "false", "hot_access_threshold", "1",
                        "tier_extent_size", "64k", "enable_checksums", "false", NULL};
    const uint64_t at = 128 << 10; /* extent 2 */
    struct xd_dev *plain = open_dev_kv(kv), *checked = NULL;
    struct xd_file *f = NULL, *g = NULL;
    unlink(side);
    CHECK_MSG(plain && !xd_file_open(plain, path, XD_OPEN_CREATE, 1 << 20, &f, err, sizeof(err)),
              "%s", err);
    if (f) {
        CHECK(xd_read(plain, f, got, BLK, at) == BLK);
        CHECK_MSG(xd_migrate(plain) >= 1, "extent 2 not promoted");
        CHECK(xd_write(plain, f, a, BLK, at) == BLK); /* the hot copy alone, dirty */
        kv[13] = "true";
        checked = open_dev_kv(kv);
        CHECK_MSG(checked && !xd_file_open(checked, path, 0, 0, &g, err, sizeof(err)), "%s", err);
    }
    if (g) {
        CHECK(entry_of(at / BLK).new_tag == 0x4b434e55u); /* "UNCK" */
        CHECK(entry_of(0).new_tag == 0 && entry_of(at / BLK + 16).new_tag == 0);
        CHECK_MSG(xd_read(checked, g, got, BLK, at) == BLK && !memcmp(got, a, BLK),
                  "a dirty hot extent read as a hole");
        xd_file_close(checked, g);
    }
    if (checked)
        xd_close(checked);
    if (f)
        xd_file_close(plain, f);
    if (plain) {
        CHECK_MSG(!xd_unlink(plain, path, err, sizeof(err)), "%s", err);
        xd_close(plain);
    }
    unlink(side);
    CHECK_MSG(!rmdir(hot), "%s: %s", hot, strerror(errno));
}

/* A sidecar made before the durable slot (16-byte entries, as its header
 * says) is read and written as it is: two slots per block. */
static void test_sidecar_of_two_slots(const char *a, const char *b)
{
    unlink(side);
    unlink(path);
    struct xd_dev *dev = open_dev("4k");
    struct xd_file *f = NULL;
    static char buf[BLK];
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f)
        return;
    xd_file_close(dev, f);
    /* its header as the earlier build wrote it: entry_size (offset 12) 16,
     * and no header crc kept (offset 40: zeros) */
    uint32_t old = 16, no_crc[2] = {0, 0};
    int fd = open(side, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, &old, sizeof(old), 12) == sizeof(old));
    CHECK(pwrite(fd, no_crc, sizeof(no_crc), 40) == sizeof(no_crc));
    close(fd);
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (!f)
        return;
    CHECK(xd_write(dev, f, a, BLK, 0) == BLK && xd_write(dev, f, b, BLK, BLK) == BLK);
    CHECK(xd_flush(dev, f, 0) == 0);
    uint32_t slots[4];
    fd = open(side, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, slots, sizeof(slots), HEADER + 16) == sizeof(slots));
    close(fd);
    CHECK_MSG(slots[0] == xd_crc32c(0, b, BLK) && slots[1] == TAG && slots[2] == slots[0],
              "block 1's entry is not at 16 bytes per block");
    CHECK(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, b, BLK));
    poke(a, BLK / 2, BLK);
    CHECK(xd_read(dev, f, buf, BLK, BLK) == -EIO);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* A file reached through a symlink keeps one sidecar, beside the file
 * itself: what is written through either name is checked through the
 * other. Old: each name had its own sidecar, so once the file's own name
 * had written a block the link's entry was stale and its read failed with
 * EIO. A file with a second name (a hard link) is refused with one line:
 * neither name is its own. */
static void test_one_sidecar_through_a_symlink(const char *a, const char *b)
{
    char lnk[300], link_side[310], buf[BLK];
    snprintf(lnk, sizeof(lnk), "%s.link", path);
    snprintf(link_side, sizeof(link_side), "%s.xdsum", lnk);
    unlink(path);
    unlink(side);
    struct xd_dev *d1 = open_dev("4k"), *d2 = open_dev("4k");
    struct xd_file *f1 = NULL, *f2 = NULL;
    CHECK(d1 && d2 && !xd_file_open(d1, path, XD_OPEN_CREATE, NBLK * BLK, &f1, err, sizeof(err)));
    CHECK(!symlink(path, lnk));
    CHECK_MSG(d2 && !xd_file_open(d2, lnk, 0, NBLK * BLK, &f2, err, sizeof(err)), "%s", err);
    if (f1 && f2) {
        CHECK(xd_write(d2, f2, a, BLK, 0) == BLK);
        CHECK(xd_write(d1, f1, b, BLK, 0) == BLK);
        CHECK(xd_read(d2, f2, buf, BLK, 0) == BLK && !memcmp(buf, b, BLK));
        CHECK(xd_write(d2, f2, a, BLK, BLK) == BLK);
        CHECK(xd_read(d1, f1, buf, BLK, BLK) == BLK && !memcmp(buf, a, BLK));
        CHECK(entry_of(0).cur == xd_crc32c(0, b, BLK) && entry_of(1).cur == xd_crc32c(0, a, BLK));
        CHECK(access(link_side, F_OK) && errno == ENOENT);
    }
    char hard[300];
    struct xd_file *f3 = NULL;
    snprintf(hard, sizeof(hard), "%s.hard", path);
    CHECK(!link(path, hard));
    CHECK(d2 && xd_file_open(d2, hard, 0, NBLK * BLK, &f3, err, sizeof(err)) == -EMLINK);
    CHECK_MSG(strstr(err, "2 names (hard links)") && strstr(err, "allowed: a file with one name"), "%s", err);
    unlink(hard);
    xd_file_close(d2, f2);
    xd_file_close(d1, f1);
    xd_close(d2);
    xd_close(d1);
    unlink(lnk);
    unlink(link_side);
    unlink(path);
    unlink(side);
}

/* xd_unlink removes the file and its sidecar; a link planted where the
 * sidecar would be is refused with one line, and what it names stays;
 * nothing there is -ENOENT; a directory is refused. */
static void test_unlink(const char *dir)
{
    struct xd_dev *dev = open_dev("4k");
    struct xd_file *f = NULL;
    char victim[300];
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, NBLK * BLK, &f, err, sizeof(err)));
    CHECK(f && xd_write(dev, f, "data", 4, 0) == 4);
    CHECK(!access(side, F_OK));
    CHECK_MSG(!xd_unlink(dev, path, err, sizeof(err)), "%s", err);
    CHECK(access(path, F_OK) && errno == ENOENT && access(side, F_OK) && errno == ENOENT);
    char buf[4];
    CHECK(f && xd_read(dev, f, buf, 4, 0) == 4 && !memcmp(buf, "data", 4)); /* as after unlink(2) */
    if (f)
        xd_file_close(dev, f);
    CHECK(access(path, F_OK) && access(side, F_OK)); /* the close made neither again */
    CHECK(xd_unlink(dev, path, err, sizeof(err)) == -ENOENT);

    int fd = open(victim, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && write(fd, "keep", 4) == 4);
    if (fd >= 0)
        close(fd);
    CHECK(!symlink(victim, side) &&
          (fd = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600)) >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(xd_unlink(dev, path, err, sizeof(err)) == -EPERM);
    CHECK_MSG(strstr(err, side) && strstr(err, "sidecar"), "%s", err);
    struct stat st;
    CHECK(!lstat(side, &st) && S_ISLNK(st.st_mode) && !stat(victim, &st) && st.st_size == 4);
    CHECK(xd_unlink(dev, dir, err, sizeof(err)) == -EPERM && strstr(err, "never devices or directories"));
    unlink(side);
    unlink(victim);
    unlink(path);
    if (dev)
        xd_close(dev);
}


/* What a read-only open must leave as it was: a file's bytes (NULL: it
 * does not exist), mtime and ctime, and the data file's mark. */
struct untouched {
    char *side_bytes;
    size_t side_len;
    struct stat side_st, data_st;
    char mark[4200];
    ssize_t mark_len; /* -1: no mark */
};

static char *read_all(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    *len = 0;
    if (fd < 0)
        return NULL;
    if (!fstat(fd, &st) && (buf = malloc((size_t)st.st_size + 1)) &&
        pread(fd, buf, (size_t)st.st_size, 0) == st.st_size)
        *len = (size_t)st.st_size;
    close(fd);
    return buf;
}

static void untouched_take(struct untouched *u)
{
    memset(u, 0, sizeof(*u));
    u->side_bytes = read_all(side, &u->side_len);
    if (lstat(side, &u->side_st))
        memset(&u->side_st, 0, sizeof(u->side_st));
    CHECK(!lstat(path, &u->data_st));
    u->mark_len = lgetxattr(path, MARK, u->mark, sizeof(u->mark));
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Nothing the read-only open could write changed since u was taken. */
static void untouched_check(struct untouched *u, const char *what)
{
    struct untouched now;
    untouched_take(&now);
    CHECK_MSG(!u->side_bytes == !now.side_bytes, "%s: the sidecar %s", what,
              now.side_bytes ? "was made" : "went away");
    CHECK_MSG(u->side_len == now.side_len &&
                  (!u->side_len || !memcmp(u->side_bytes, now.side_bytes, u->side_len)),
              "%s: the sidecar was written", what);
    CHECK_MSG(same_time(&u->side_st.st_mtim, &now.side_st.st_mtim) &&
                  same_time(&u->side_st.st_ctim, &now.side_st.st_ctim),
              "%s: the sidecar's mtime or ctime moved", what);
    CHECK_MSG(same_time(&u->data_st.st_mtim, &now.data_st.st_mtim) &&
                  same_time(&u->data_st.st_ctim, &now.data_st.st_ctim),
              "%s: the data file's mtime or ctime moved", what);
    CHECK_MSG(u->mark_len == now.mark_len &&
                  (u->mark_len <= 0 || !memcmp(u->mark, now.mark, (size_t)u->mark_len)),
              "%s: the mark %s was set or changed (%zd bytes, was %zd)", what, MARK,
              now.mark_len, u->mark_len);
    free(u->side_bytes);
    free(now.side_bytes);
    u->side_bytes = NULL;
}

/* A plain file of NBLK blocks of a, never opened through the layer: no
 * sidecar, no mark. 0, or -1 (said) when it cannot be made. */
static int plain_file(const char *a)
{
    unlink(side);
    unlink(path);
    int fd = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return -1;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(pwrite(fd, a, BLK, (off_t)i * BLK) == BLK);
    close(fd);
    return 0;
}

/* A read-only open (XD_OPEN_READONLY: fio --readonly) of a file that has
 * no sidecar and no mark makes nothing: no sidecar, no mark, no time
 * moved; its reads and an fsync go through unchecked, said once (the
 * device's notice). Old: the open made the sidecar, wrote its header and
 * tags, and marked the file, where psync writes nothing. A marked file
 * whose sidecar is missing is refused as before, making nothing; an
 * unmarked one whose sidecar describes another file reads unchecked,
 * the sidecar left as it is. */
static void test_read_only_open_makes_nothing(const char *a)
{
    static char got[NBLK * BLK];
    struct untouched u;
    struct xd_file *f = NULL;
    if (plain_file(a))
        return;
    untouched_take(&u);
    struct xd_dev *dev = open_dev("4k");
    CHECK_MSG(dev && !xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err)), "%s",
              err);
    if (f) {
        const char *notice = xd_dev_notice(dev);
        CHECK_MSG(notice && strstr(notice, path) && strstr(notice, "unchecked until a writable open"),
                  "%s", notice ? notice : "(no notice)");
        CHECK(xd_read(dev, f, got, sizeof(got), 0) == (ssize_t)sizeof(got) && !memcmp(got, a, BLK) &&
              !memcmp(got + 3 * BLK, a, BLK));
        CHECK(xd_read(dev, f, got, 100, BLK + 7) == 100 && !memcmp(got, a, 100));
        CHECK(xd_flush(dev, f, 0) == 0 && xd_flush(dev, f, 1) == 0);
        ssize_t w = xd_write(dev, f, a, BLK, 0), p = xd_write(dev, f, a, 10, 5);
        CHECK_MSG(w == -EROFS && p == -EROFS, "writes through a read-only open: %zd, %zd", w, p);
        xd_file_close(dev, f);
    }
    untouched_check(&u, "read-only open of a plain file");
    CHECK(access(side, F_OK) && errno == ENOENT);
    CHECK(lgetxattr(path, MARK, got, sizeof(got)) < 0 && (errno == ENODATA || errno == ENOTSUP));

    /* marked, its sidecar missing: refused, nothing made */
    if (!lsetxattr(path, MARK, side, strlen(side) + 1, 0)) {
        untouched_take(&u);
        f = NULL;
        CHECK(dev && xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err)) == -EINVAL);
        CHECK_MSG(strstr(err, "is missing") && strstr(err, side) && strstr(err, MARK), "%s", err);
        untouched_check(&u, "refused read-only open");
        CHECK(lremovexattr(path, MARK) == 0);
    }

    /* another file's sidecar in its place, no mark: unchecked, kept as it is */
    struct xd_dev *w = open_dev("4k");
    char other[300], other_side[310];
    snprintf(other, sizeof(other), "%s.other", path);
    snprintf(other_side, sizeof(other_side), "%s.xdsum", other);
    CHECK(w && !xd_file_open(w, other, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (f) {
        CHECK(xd_write(w, f, a, BLK, 0) == BLK);
        xd_file_close(w, f);
    }
    CHECK(!rename(other_side, side));
    poke(a + 1, 1, 0); /* corrupt, were it checked against the other file's crcs */
    untouched_take(&u);
    f = NULL;
    CHECK_MSG(dev && !xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err)), "%s",
              err);
    if (f) {
        CHECK(xd_read(dev, f, got, BLK, 0) == BLK);
        const char *notice = xd_dev_notice(dev);
        CHECK_MSG(notice && strstr(notice, "describes another file"), "%s",
                  notice ? notice : "(no notice)");
        xd_file_close(dev, f);
    }
    untouched_check(&u, "read-only open beside another file's sidecar");
    if (w)
        xd_close(w);
    if (dev)
        xd_close(dev);
    unlink(other);
    unlink(side);
    unlink(path);
}

/* A file written through the layer (sidecar and mark), then opened
 * read-only: reads are checked against the sidecar as ever (a corrupt
 * block, and a lost entry below the mark's size, read as EIO), and data
 * appended behind the layer past the size the mark recorded (psync, fio's
 * file_append through another engine) reads as data, unchecked, as a
 * writable open's tags would make it. Nothing is written: not the
 * sidecar, its header, its entries or tags, nor the mark, and no time
 * moves. Old: the open wrote the header's boot word, tagged the appended
 * blocks in the sidecar and rewrote the mark's size. */
static void test_read_only_open_checks_and_writes_nothing(const char *a, const char *b)
{
    static char got[BLK];
    struct untouched u;
    struct xd_dev *dev;
    struct xd_file *f = fresh_file(&dev);
    if (!f)
        return;
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    xd_file_close(dev, f);
    if (lgetxattr(path, MARK, got, sizeof(got)) < 0 && errno == ENOTSUP) {
        fprintf(stderr, "skip: read-only open with a sidecar: no user xattrs on %s\n", path);
        xd_close(dev);
        return;
    }
    CHECK(lgetxattr(path, MARK, got, sizeof(got)) > 0); /* the mark the open set */
    poke(b, BLK / 2, 2 * BLK);                           /* block 2 torn behind the layer */
    set_entry(1, (struct entry){0, 0, 0, 0, 0, 0});      /* block 1's entry lost */
    for (unsigned i = NBLK; i < NBLK + 2; i++)           /* appended behind the layer */
        poke(b, BLK, (off_t)i * BLK);
    poke(b, 100, (off_t)(NBLK + 2) * BLK);               /* and a short tail */
    untouched_take(&u);
    f = NULL;
    CHECK_MSG(!xd_file_open(dev, path, XD_OPEN_READONLY, 0, &f, err, sizeof(err)), "%s", err);
    if (f) {
        CHECK(!xd_dev_notice(dev));
        CHECK(xd_read(dev, f, got, BLK, 0) == BLK && !memcmp(got, a, BLK));
        CHECK_MSG(xd_read(dev, f, got, BLK, 2 * BLK) == -EIO, "a corrupt block read as data");
        char line[XD_ERRLEN] = "";
        CHECK(!xd_dev_take_error(dev, line, sizeof(line)));
        CHECK_MSG(strstr(line, path) && strstr(line, "block 2 "), "%s", line);
        CHECK_MSG(xd_read(dev, f, got, BLK, BLK) == -EIO, "a lost entry read as data");
        CHECK(xd_read(dev, f, got, 10, 2 * BLK + 5) == -EIO);
        for (unsigned i = NBLK; i < NBLK + 2; i++)
            CHECK_MSG(xd_read(dev, f, got, BLK, (uint64_t)i * BLK) == BLK && !memcmp(got, b, BLK),
                      "appended block %u did not read as data", i);
        CHECK(xd_read(dev, f, got, BLK, (uint64_t)(NBLK + 2) * BLK) == 100 && !memcmp(got, b, 100));
        CHECK(xd_read(dev, f, got, 50, (uint64_t)NBLK * BLK + 30) == 50 && !memcmp(got, b, 50));
        CHECK(xd_read(dev, f, got, BLK, 3 * BLK) == BLK && !memcmp(got, a, BLK));
        CHECK(stat_of(dev, "lost_entries") == 1 && stat_of(dev, "mismatches") >= 1);
        CHECK(xd_flush(dev, f, 0) == 0);
        xd_file_close(dev, f);
    }
    untouched_check(&u, "read-only open with a sidecar");
    /* a writable open tags the appended blocks as before, and they read */
    f = NULL;
    CHECK(!xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    CHECK(entry_of(NBLK).new_tag == 0x4b434e55u); /* "UNCK" */
    CHECK(f && xd_read(dev, f, got, BLK, (uint64_t)NBLK * BLK) == BLK && !memcmp(got, b, BLK));
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    unlink(side);
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/xd-checksum-XXXXXX";
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/data", dir);
    snprintf(side, sizeof(side), "%s/data.xdsum", dir);
    static char a[BLK], b[BLK], buf[NBLK * BLK], want[NBLK * BLK];
    memset(a, 'a', BLK);
    memset(b, 'b', BLK);
    uint32_t crc_a = xd_crc32c(0, a, BLK), crc_b = xd_crc32c(0, b, BLK);

    struct xd_dev *dev = open_dev("4k");
    struct xd_file *f = NULL;
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err)));
    if (!f)
        return check_result();
    for (unsigned i = 0; i < NBLK; i++)
        CHECK(xd_write(dev, f, a, BLK, (uint64_t)i * BLK) == BLK);
    struct entry e = entry_of(1);
    CHECK(e.cur_tag == TAG && e.cur == crc_a && e.new_tag == TAG && e.new == crc_a);
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(!memcmp(buf, a, BLK) && !memcmp(buf + 3 * BLK, a, BLK));
    CHECK(stat_of(dev, "verified") == NBLK);

    /* a crash with a write of b to blocks 1 and 2 in flight: the entries
     * hold a (landed before) and b (pending) */
    set_entry(1, (struct entry){crc_a, TAG, crc_b, TAG, 0, 0});
    set_entry(2, (struct entry){crc_a, TAG, crc_b, TAG, 0, 0});
    /* block 1: the write never landed, it reads as the old data */
    CHECK(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, a, BLK));
    /* the write landed: the new data reads, and the pending slot is folded */
    poke(b, BLK, BLK);
    CHECK(xd_read(dev, f, buf, BLK, BLK) == BLK && !memcmp(buf, b, BLK));
    e = entry_of(1);
    CHECK(e.cur_tag == TAG && e.cur == crc_b);
    CHECK(stat_of(dev, "folded_on_read") == 1);
    /* block 2 torn: half new, half old: EIO, one line naming file and block */
    poke(b, BLK / 2, 2 * BLK);
    CHECK(xd_read(dev, f, buf, BLK, 2 * BLK) == -EIO);
    char line[XD_ERRLEN] = "";
    CHECK(!xd_dev_take_error(dev, line, sizeof(line)));
    CHECK_MSG(strstr(line, path) && strstr(line, "block 2 "), "%s", line);
    CHECK(xd_dev_take_error(dev, line, sizeof(line)) == -ENOENT);
    /* a read that covers the torn block anywhere fails too, unaligned included */
    CHECK(xd_read(dev, f, buf, 100, 2 * BLK + 3000) == -EIO);
    CHECK(stat_of(dev, "mismatches") >= 2);
    /* a partial write into the torn block is refused: a crc over it would
     * bless the corruption */
    CHECK(xd_write(dev, f, "zz", 2, 2 * BLK + 10) == -EIO);

    /* block 2 rewritten whole: healthy again */
    CHECK(xd_write(dev, f, a, BLK, 2 * BLK) == BLK);
    /* a partial write spanning blocks 2 and 3, then an unaligned read */
    memcpy(want, a, BLK);
    memcpy(want + BLK, b, BLK);
    memcpy(want + 2 * BLK, a, BLK);
    memcpy(want + 3 * BLK, a, BLK);
    memset(want + 2 * BLK + 4000, 'x', 200);
    CHECK(xd_write(dev, f, want + 2 * BLK + 4000, 200, 2 * BLK + 4000) == 200);
    CHECK(stat_of(dev, "partial_writes") == 2); /* the refused one counts */
    e = entry_of(2);
    CHECK(e.cur_tag == TAG && e.cur == xd_crc32c(0, want + 2 * BLK, BLK) && e.new == e.cur);
    e = entry_of(3);
    CHECK(e.cur_tag == TAG && e.cur == xd_crc32c(0, want + 3 * BLK, BLK) && e.new == e.cur);
    CHECK(xd_read(dev, f, buf, 5000, BLK + 7) == 5000 && !memcmp(buf, want + BLK + 7, 5000));
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(!memcmp(buf, want, sizeof(buf)));
    /* a write past the end of file grows it; the block's tail counts as zeros */
    CHECK(xd_write(dev, f, "tail", 4, NBLK * BLK + 100) == 4);
    CHECK(xd_read(dev, f, buf, 200, NBLK * BLK) == 104 && !memcmp(buf + 100, "tail", 4));
    CHECK(stat_of(dev, "mismatches") == 2 + 1);
    xd_file_close(dev, f);
    xd_close(dev);

    test_read_racing_one_write(a, b);
    test_read_waits_for_a_moving_block(a, b);
    test_reader_stalled_between_looks(a, b);
    test_first_write_lost_in_a_crash(b);
    test_zeroed_block_with_lost_cur_slot(a);
    test_read_after_own_queued_write(b);
    test_racing_writers(a, b, 1);
    test_racing_writers(b, a, 0);
    test_read_beside_another_queued_write_of_its_thread(b);
    test_newcomer_waits_for_the_solo_writer(a, b);
    test_solo_again_once_alone(a, b);
    test_durable_after_power_loss(a, b);
    test_durable_learnt_by_the_next_open(a, b);
    test_unsynced_write_before_a_reboot(a, b);
    test_header_bit_flip_is_refused(a);
    test_header_tag_flip_is_refused(a);
    test_lost_entries_read_eio(a);
    test_big_file_of_holes_gets_the_full_kind("regular", a);
    test_big_file_of_holes_gets_the_full_kind("mmap", a);
    test_big_hybrid_file_gets_the_full_kind("regular", a);
    test_big_hybrid_file_gets_the_full_kind("compressed", a);
    test_hybrid_dirty_hot_extent_counts_as_data(a);
    test_sidecar_of_two_slots(a, b);

    /* the sidecar keeps its block size: another is refused with one line */
    dev = open_dev("8k");
    f = NULL;
    CHECK(dev && xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, "checksum_block_size=8192") && strstr(err, "4096"), "%s", err);
    if (dev)
        xd_close(dev);

    test_read_only_open_makes_nothing(a);
    test_read_only_open_checks_and_writes_nothing(a, b);
    test_one_sidecar_through_a_symlink(a, b);
    unlink(side);
    unlink(path);
    test_unlink(dir);
    rmdir(dir);
    return check_result();
}
