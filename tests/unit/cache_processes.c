/* cache_processes.c - unit test of the read cache across processes (each
 * process has its own cache; cache_gens.c keeps them current): a block one
 * process cached is read as another process rewrote it, whether the
 * writer is gone or still writing, for 4 KiB and 64 KiB cache blocks and
 * writes smaller than a block; a reader beside a writer process never gets
 * a block older than the last write completed before the read began; a
 * file closed here keeps its blocks and table for a reopen, up to a bound
 * on such files; the shared table is removed by the last process, one left by a killed
 * process is swept, one in use is not, and one of another user makes the
 * file go uncached (said in the device's notice) rather than be trusted; a
 * writer killed between its two counts (its write landed, its completion
 * never reaped) makes no process serve stale data, and once the table was
 * made anew the units it left counted out are cached again. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/turns.h" /* XD_TURNS_REGAIN_EVERY */
#include "xdevice.h"

#define BLK 4096
#define FILE_BLOCKS 64

static char dir[] = "/var/tmp/xd-unit-cache-proc-XXXXXX";
static char err[XD_ERRLEN];

/* --- helpers ---------------------------------------------------------------- */

static unsigned char pattern(uint64_t off, unsigned seed)
{
    uint32_t h = (uint32_t)(off * 2654435761u) ^ (seed * 0x9e3779b1u + 1);
    h ^= h >> 15, h *= 0x2c1b3c6du, h ^= h >> 12;
    return (unsigned char)(h >> 24);
}

static void fill(unsigned char *buf, uint64_t len, uint64_t off, unsigned seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = pattern(off + i, seed);
}

/* The seed buf holds over [off, off+len), or -1 for none (a mix, or junk). */
static int seed_of(const unsigned char *buf, uint64_t len, uint64_t off)
{
    for (unsigned seed = 0; seed < 4096; seed++)
        if (buf[0] == pattern(off, seed) && buf[1] == pattern(off + 1, seed) &&
            buf[len - 1] == pattern(off + len - 1, seed)) {
            unsigned char *want = malloc(len);
            fill(want, len, off, seed);
            bool same = !memcmp(want, buf, len);
            free(want);
            if (same)
                return (int)seed;
        }
    return -1;
}

static int make_file(const char *path, unsigned seed)
{
    unsigned char buf[FILE_BLOCKS * BLK];
    fill(buf, sizeof(buf), 0, seed);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf);
    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* A device with the cache on (block size bs), path open on it. */
static struct xd_file *open_cached(const char *path, const char *bs, const char *async,
                                   struct xd_dev **dev)
{
    const char *kv[] = {"enable_read_cache", "true", "cache_size", "4m", "cache_block_size", bs,
                        "async", async, NULL};
    struct xd_file *f = NULL;
    if (check_open_dev(dev, kv, "test", 16, err, sizeof(err))) {
        fprintf(stderr, "open: %s\n", err);
        *dev = NULL;
        return NULL;
    }
    if (xd_file_open(*dev, path, 0, 0, &f, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", path, err);
        xd_close(*dev);
        *dev = NULL;
    }
    return f;
}

static long long cache_stat(struct xd_dev *dev, const char *key)
{
    return layer_stat(dev, "cache", key);
}

/* The table's name for path (cache_gens.c: DEV-INO-VIEW). */
static void table_name(const char *path, char *name, size_t len)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    stat(path, &st);
    snprintf(name, len, "/xdevice-cache-%llx-%llx-0", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
}

/* Whether path's table is in /dev/shm. */
static bool table_there(const char *path)
{
    char name[96], shm_path[128];
    table_name(path, name, sizeof(name));
    snprintf(shm_path, sizeof(shm_path), "/dev/shm%s", name);
    return access(shm_path, F_OK) == 0;
}

/* Unit u's pair of counters in path's table (cache_gens.c: a pair of
 * 32-bit started, ended per 4 KiB unit, after the words' page); false when there is
 * no table. */
#define TABLE_HEAD 4096 /* cache_gens.c: the write-back words' page, then the pairs */

static bool table_unit(const char *path, uint64_t u, uint32_t *started, uint32_t *ended)
{
    char name[96];
    table_name(path, name, sizeof(name));
    int fd = shm_open(name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return false;
    size_t len = TABLE_HEAD + (size_t)(u + 1) * 2 * sizeof(uint32_t);
    struct stat st;
    void *map = fstat(fd, &st) || (size_t)st.st_size < len
                    ? MAP_FAILED
                    : mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return false;
    const uint32_t *pair = (const uint32_t *)(const void *)((const char *)map + TABLE_HEAD) + 2 * u;
    *started = __atomic_load_n(&pair[0], __ATOMIC_SEQ_CST);
    *ended = __atomic_load_n(&pair[1], __ATOMIC_SEQ_CST);
    munmap(map, len);
    return true;
}

/* In a process of its own: a device writes len bytes of seed at off, then
 * waits for a byte on hold (if not -1) before it closes. */
static pid_t writer_child(const char *path, const char *async, uint64_t off, uint64_t len,
                          unsigned seed, int done_fd, int hold_fd)
{
    pid_t pid = fork();
    if (pid)
        return pid;
    struct xd_dev *dev;
    struct xd_file *f = open_cached(path, "4k", async, &dev);
    unsigned char *buf = malloc(len);
    char c = 1;
    fill(buf, len, off, seed);
    bool ok = f && xd_write(dev, f, buf, len, off) == (ssize_t)len;
    if (done_fd >= 0 && write(done_fd, &c, 1) != 1)
        ok = false;
    if (hold_fd >= 0 && read(hold_fd, &c, 1) != 1)
        ok = false;
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    _exit(ok ? 0 : 1);
}

static bool child_ok(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* --- another process's writes --------------------------------------------------- */

/* This process caches the file, another rewrites part of a block (gone
 * after, or still open); the next read here has the new bytes and the rest
 * of the block as it was, and blocks nobody wrote still hit. */
static void test_rewrite_seen(const char *path, const char *bs, const char *async, bool writer_stays)
{
    unsigned char buf[FILE_BLOCKS * BLK], want[FILE_BLOCKS * BLK];
    struct xd_dev *dev;
    int done[2], hold[2];
    CHECK(make_file(path, 1) == 0);
    struct xd_file *f = open_cached(path, bs, "sync", &dev);
    if (!f || pipe(done) || pipe(hold))
        return;
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    CHECK(xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
    long long hits = cache_stat(dev, "hits");
    CHECK_MSG(hits > 0, "%s blocks: the second pass hit nothing", bs);
    /* 1 KiB in the middle of block 5 of the file's 4 KiB units */
    pid_t pid = writer_child(path, async, 5 * BLK + 1024, 1024, 2, done[1], writer_stays ? hold[0] : -1);
    char c;
    CHECK(read(done[0], &c, 1) == 1);
    if (!writer_stays)
        CHECK(child_ok(pid));
    for (uint64_t off = 0; off < sizeof(buf); off += BLK) /* a block at a time: hits count */
        CHECK(xd_read(dev, f, buf + off, BLK, off) == BLK);
    fill(want, sizeof(want), 0, 1);
    fill(want + 5 * BLK + 1024, 1024, 5 * BLK + 1024, 2);
    CHECK_MSG(!memcmp(buf, want, sizeof(buf)),
              "%s blocks, %s writer (%s): the read here did not see the other process's write",
              bs, writer_stays ? "a live" : "an exited", async);
    CHECK_MSG(cache_stat(dev, "hits") > hits, "%s blocks: blocks nobody wrote no longer hit", bs);
    /* the first block of the write's 4 KiB found stale; the read that
     * missed it brought its neighbours in that unit current again */
    CHECK_MSG(cache_stat(dev, "stale_dropped") == 1, "%s blocks: %lld dropped", bs,
              cache_stat(dev, "stale_dropped"));
    if (writer_stays) {
        CHECK(write(hold[1], &c, 1) == 1);
        CHECK(child_ok(pid));
    }
    xd_file_close(dev, f);
    xd_close(dev);
    close(done[0]), close(done[1]), close(hold[0]), close(hold[1]);
    CHECK_MSG(!table_there(path), "the last process left the file's table in /dev/shm");
}

/* A reader beside a writer process, both cached: every block the reader
 * gets is never older than the last write of it that completed before the
 * read began (the writer publishes that in shared memory after each
 * write). A read overlapping a write may be torn (the kernel does not
 * make a pread atomic beside a pwrite, so fio's own engines see the same);
 * the cache never keeps such a read, which the last pass checks. */
#define RACE_BLOCKS 16
#define RACE_WRITES 3000

static void test_reader_beside_writer(const char *path)
{
    unsigned _Atomic *done = mmap(NULL, RACE_BLOCKS * sizeof(*done), PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned char buf[BLK];
    struct xd_dev *dev;
    if (done == MAP_FAILED)
        return;
    CHECK(make_file(path, 0) == 0);
    for (unsigned i = 0; i < RACE_BLOCKS; i++)
        done[i] = 0;
    struct xd_file *f = open_cached(path, "4k", "sync", &dev);
    if (!f)
        return;
    pid_t pid = fork();
    if (pid == 0) { /* the writer: seeds 1..RACE_WRITES, a random block each */
        struct xd_dev *wdev;
        struct xd_file *wf = open_cached(path, "4k", "sync", &wdev);
        bool ok = wf != NULL;
        uint64_t x = 88172645463325252ull;
        for (unsigned seed = 1; ok && seed <= RACE_WRITES; seed++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned b = (unsigned)(x % RACE_BLOCKS);
            unsigned char w[BLK];
            fill(w, BLK, (uint64_t)b * BLK, seed % 4096);
            ok = xd_write(wdev, wf, w, BLK, (uint64_t)b * BLK) == BLK;
            atomic_store(&done[b], seed);
        }
        if (wf)
            xd_file_close(wdev, wf);
        xd_close(wdev);
        _exit(ok ? 0 : 1);
    }
    unsigned stale = 0, torn = 0, reads = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int status = -1;
    for (pid_t gone = 0; !gone || reads < 100; reads++) {
        if (!gone)
            gone = waitpid(pid, &status, WNOHANG);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned b = (unsigned)(x % RACE_BLOCKS);
        unsigned before = atomic_load(&done[b]);
        if (xd_read(dev, f, buf, BLK, (uint64_t)b * BLK) != BLK) {
            torn++;
            continue;
        }
        int seed = seed_of(buf, BLK, (uint64_t)b * BLK);
        if (seed < 0)
            torn++;
        else if ((unsigned)seed < before)
            stale++;
    }
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer failed (%d)", status);
    CHECK_MSG(!stale, "%u of %u reads older than a completed write (%u torn)", stale, reads, torn);
    /* and once the writer is done, every block reads as its last write */
    for (unsigned b = 0; b < RACE_BLOCKS; b++) {
        CHECK(xd_read(dev, f, buf, BLK, (uint64_t)b * BLK) == BLK);
        CHECK_MSG(seed_of(buf, BLK, (uint64_t)b * BLK) == (int)done[b],
                  "block %u: not its last write", b);
    }
    CHECK_MSG(cache_stat(dev, "hits") > 0, "the reader never hit: nothing was proved");
    xd_file_close(dev, f);
    xd_close(dev);
    munmap(done, RACE_BLOCKS * sizeof(*done));
}

/* A write-back cache keeps blocks the file does not have yet, so it keeps
 * them only while its process is the file's only user: another process
 * opening the file waits for them to be written back (and reads them),
 * and the first writes through from then on, so its later write-back
 * never lands over the other's write of the same block (on the old code
 * the other read the block without the absorbed write, and the first's
 * write-back of the whole block overwrote the other's bytes in it). */
static void test_write_back_shared(const char *path)
{
    const char *kv[] = {"enable_read_cache", "true", "enable_write_cache", "true", "cache_size",
                        "4m", NULL};
    unsigned char buf[BLK], want[BLK];
    struct xd_dev *dev;
    struct xd_file *f = NULL;
    CHECK(make_file(path, 1) == 0);
    if (check_open_dev(&dev, kv, "test", 16, err, sizeof(err)) ||
        xd_file_open(dev, path, 0, 0, &f, err, sizeof(err))) {
        CHECK_MSG(0, "open: %s", err);
        return;
    }
    CHECK(xd_read(dev, f, buf, BLK, 3 * BLK) == BLK); /* cached: a part of it is kept dirty */
    fill(buf, 1024, 3 * BLK, 2);
    CHECK(xd_write(dev, f, buf, 1024, 3 * BLK) == 1024);
    CHECK_MSG(cache_stat(dev, "writes_absorbed") == 1, "the first write was not kept dirty");
    pid_t pid = fork();
    if (pid == 0) { /* another process: sees the absorbed write, writes the same block */
        struct xd_dev *cdev;
        struct xd_file *cf = open_cached(path, "4k", "sync", &cdev);
        unsigned char got[BLK], mine[1024];
        bool ok = cf && xd_read(cdev, cf, got, BLK, 3 * BLK) == BLK &&
                  seed_of(got, 1024, 3 * BLK) == 2 && seed_of(got + 1024, 1024, 3 * BLK + 1024) == 1;
        fill(mine, sizeof(mine), 3 * BLK + 2048, 3);
        ok = ok && xd_write(cdev, cf, mine, sizeof(mine), 3 * BLK + 2048) == sizeof(mine);
        if (cf)
            xd_file_close(cdev, cf);
        xd_close(cdev);
        _exit(ok ? 0 : 1);
    }
    CHECK_MSG(child_ok(pid), "the other process did not read the absorbed write");
    /* the next write kept here sees it was asked: the blocks go below
     * before it completes, and the writes after it go through */
    fill(buf, BLK, 5 * BLK, 4);
    CHECK(xd_write(dev, f, buf, BLK, 5 * BLK) == BLK);
    long long through = cache_stat(dev, "writes_through");
    long long absorbed = cache_stat(dev, "writes_absorbed");
    fill(buf, BLK, 6 * BLK, 5);
    CHECK(xd_write(dev, f, buf, BLK, 6 * BLK) == BLK);
    CHECK_MSG(cache_stat(dev, "writes_through") == through + 1 &&
                  cache_stat(dev, "writes_absorbed") == absorbed,
              "write-back went on beside another process");
    CHECK_MSG(cache_stat(dev, "dirty_bytes") == 0, "blocks still dirty after another process came");
    /* not while another process has the file open */
    int hold[2], ready[2];
    CHECK(pipe(hold) == 0 && pipe(ready) == 0);
    pid = fork();
    if (pid == 0) {
        close(hold[1]); /* so that the parent's close is its end of file */
        struct xd_dev *cdev;
        struct xd_file *cf = open_cached(path, "4k", "sync", &cdev);
        char c = cf ? 'y' : 'n';
        bool ok = write(ready[1], &c, 1) == 1 && read(hold[0], &c, 1) >= 0;
        if (cf)
            xd_file_close(cdev, cf);
        xd_close(cdev);
        _exit(ok && cf ? 0 : 1);
    }
    char opened = 0;
    CHECK(read(ready[0], &opened, 1) == 1 && opened == 'y');
    for (unsigned i = 0; i < 2 * XD_TURNS_REGAIN_EVERY; i++)
        CHECK(xd_write(dev, f, buf, BLK, 6 * BLK) == BLK);
    CHECK_MSG(cache_stat(dev, "solo_regained") == 0 && cache_stat(dev, "writes_absorbed") == absorbed,
              "write-back came back while another process had the file open");
    close(hold[1]);
    CHECK(child_ok(pid));
    close(hold[0]);
    close(ready[0]);
    close(ready[1]);
    /* the other process gone, write-back comes back (tried every
     * XD_TURNS_REGAIN_EVERY-th write), and a third process opening then
     * again waits for the blocks kept dirty and reads them */
    for (unsigned i = 0; i < XD_TURNS_REGAIN_EVERY; i++) {
        fill(buf, BLK, 7 * BLK, 6);
        CHECK(xd_write(dev, f, buf, BLK, 7 * BLK) == BLK);
    }
    CHECK_MSG(cache_stat(dev, "solo_regained") == 1 &&
                  cache_stat(dev, "writes_absorbed") > absorbed &&
                  cache_stat(dev, "dirty_bytes") == BLK,
              "no write-back once alone again: regained %lld, absorbed %lld",
              cache_stat(dev, "solo_regained"), cache_stat(dev, "writes_absorbed") - absorbed);
    pid = fork();
    if (pid == 0) {
        struct xd_dev *cdev;
        struct xd_file *cf = open_cached(path, "4k", "sync", &cdev);
        unsigned char got[BLK];
        bool ok = cf && xd_read(cdev, cf, got, BLK, 7 * BLK) == BLK && seed_of(got, BLK, 7 * BLK) == 6;
        if (cf)
            xd_file_close(cdev, cf);
        xd_close(cdev);
        _exit(ok ? 0 : 1);
    }
    CHECK_MSG(child_ok(pid), "a process opening after write-back came back did not read it");
    CHECK(xd_flush(dev, f, 0) == 0);
    xd_file_close(dev, f);
    xd_close(dev);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, want, BLK, 3 * BLK) == BLK);
    CHECK_MSG(seed_of(want, 1024, 3 * BLK) == 2 && seed_of(want + 1024, 1024, 3 * BLK + 1024) == 1 &&
                  seed_of(want + 2048, 1024, 3 * BLK + 2048) == 3 &&
                  seed_of(want + 3072, 1024, 3 * BLK + 3072) == 1,
              "block 3 does not hold both processes' writes");
    CHECK(fd >= 0 && pread(fd, want, BLK, 5 * BLK) == BLK && seed_of(want, BLK, 5 * BLK) == 4);
    CHECK(fd >= 0 && pread(fd, want, BLK, 6 * BLK) == BLK && seed_of(want, BLK, 6 * BLK) == 5);
    if (fd >= 0)
        close(fd);
}

/* A writer process killed between its two counts: its write of block 5
 * (seed 2) went down and landed in the file, but its completion was never
 * reaped (async: counted ended only there), so the table is left with
 * block 5's unit counted started and never ended. With `holder`, this
 * process had the block cached before and holds the table throughout;
 * without, the table is left with nobody's lock on it. Neither this
 * process nor a newer one serves the block older than the file (the
 * holder's cached copy is found stale; nobody fills the unit while it
 * looks written); a write after it reads back as itself; and once every
 * process has closed (holder) or a new cache swept the table (no holder),
 * a later process caches the unit again. No sleeps: each wait is for an
 * event, bounded by a deadline. */
#define KILLED_DEADLINE_S 10

static bool block_is(struct xd_dev *dev, struct xd_file *f, uint64_t b, int seed)
{
    unsigned char buf[BLK];
    return xd_read(dev, f, buf, BLK, b * BLK) == BLK && seed_of(buf, BLK, b * BLK) == seed;
}

/* Reads block b twice; whether the second one hit (its data checked both times). */
static bool second_read_hits(struct xd_dev *dev, struct xd_file *f, uint64_t b, int seed)
{
    CHECK_MSG(block_is(dev, f, b, seed), "block %llu: not seed %d", (unsigned long long)b, seed);
    long long hits = cache_stat(dev, "hits");
    CHECK_MSG(block_is(dev, f, b, seed), "block %llu: not seed %d", (unsigned long long)b, seed);
    return cache_stat(dev, "hits") > hits;
}

/* The killed writer: submits its write, lets it land without reaping it,
 * says so on ready (1: landed and still counted out, 0: could not stage it)
 * and waits to be killed. */
static void killed_writer(const char *path, const char *bs, const char *async, int ready)
{
    struct xd_dev *dev;
    struct xd_file *f = open_cached(path, bs, async, &dev);
    unsigned char *buf = aligned_alloc(BLK, BLK), want[BLK], have[BLK];
    char c = 0;
    fill(buf, BLK, 5 * BLK, 2);
    memcpy(want, buf, BLK);
    struct xd_req req = {.op = XD_OP_WRITE, .file = f, .buf = buf, .len = BLK, .off = 5 * BLK};
    if (f && xd_submit(dev, &req) == XD_QUEUED && xd_commit(dev) >= 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do { /* io_uring may hand a buffered write to a kernel worker */
            if (fd < 0 || pread(fd, have, BLK, 5 * BLK) != BLK)
                break;
            if (!memcmp(have, want, BLK)) {
                c = 1;
                break;
            }
            sched_yield();
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while (now.tv_sec - t0.tv_sec < KILLED_DEADLINE_S);
        if (fd >= 0)
            close(fd);
    }
    if (write(ready, &c, 1) != 1)
        _exit(1);
    for (;;)
        pause(); /* SIGKILL: neither the completion nor the close ever comes */
}

static void test_writer_killed(const char *path, const char *bs, const char *async, bool holder)
{
    struct xd_dev *dev = NULL, *later;
    struct xd_file *f = NULL;
    int ready[2];
    char c = 0;
    uint32_t started = 0, ended = 0;
    if (!check_mode_runs(async, "a writer killed between its counts"))
        return;
    CHECK(make_file(path, 1) == 0);
    if (holder) {
        if (!(f = open_cached(path, bs, async, &dev)))
            return;
        CHECK(second_read_hits(dev, f, 5, 1)); /* block 5 cached as seed 1 */
        CHECK(second_read_hits(dev, f, 20, 1));
    }
    if (pipe(ready))
        return;
    pid_t pid = fork();
    if (pid == 0)
        killed_writer(path, bs, async, ready[1]);
    CHECK(pid > 0 && read(ready[0], &c, 1) == 1);
    kill(pid, SIGKILL);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
    close(ready[0]), close(ready[1]);
    if (c != 1) { /* the type completed it inline (a tmpfs): nothing to prove */
        fprintf(stderr, "skip: a writer killed between its counts (%s, %s): its write did not "
                "stay out\n", bs, async);
        if (f)
            xd_file_close(dev, f);
        xd_close(dev);
        return;
    }
    CHECK_MSG(table_unit(path, 5, &started, &ended) && started == ended + 1,
              "%s, %s: block 5's unit is not left counted out (started %u, ended %u)", bs, async,
              started, ended);
    if (!holder)
        CHECK_MSG(table_there(path), "the killed writer's table is not there to be swept");
    /* another process, while the table is as the killed writer left it */
    int failures = check_failures; /* its own, not this process's so far */
    pid = fork();
    if (pid == 0) {
        struct xd_dev *qdev;
        struct xd_file *qf = open_cached(path, bs, async, &qdev);
        unsigned char w[BLK];
        bool ok = qf != NULL;
        if (ok && holder) { /* the holder's table: the unit is still out */
            ok &= !second_read_hits(qdev, qf, 5, 2);
            fill(w, BLK, 5 * BLK, 3);
            ok &= xd_write(qdev, qf, w, BLK, 5 * BLK) == BLK;
            ok &= !second_read_hits(qdev, qf, 5, 3);
            ok &= second_read_hits(qdev, qf, 20, 1); /* the rest of the file is cached */
        } else if (ok) { /* its cache swept the table: made anew, the unit is cached */
            ok &= second_read_hits(qdev, qf, 5, 2);
            fill(w, BLK, 5 * BLK, 3);
            ok &= xd_write(qdev, qf, w, BLK, 5 * BLK) == BLK;
            ok &= block_is(qdev, qf, 5, 3) && second_read_hits(qdev, qf, 5, 3);
        }
        if (qf)
            xd_file_close(qdev, qf);
        xd_close(qdev);
        _exit(ok && check_failures == failures ? 0 : 1);
    }
    CHECK_MSG(child_ok(pid), "%s, %s, %s: another process read or cached block 5 wrong", bs, async,
              holder ? "the table held" : "the table left");
    if (holder) {
        /* the holder's copy of seed 1 is stale: never served; the unit
         * stays uncached here while the table lives */
        CHECK_MSG(!second_read_hits(dev, f, 5, 3), "%s, %s: block 5 cached while counted out", bs,
                  async);
        CHECK(second_read_hits(dev, f, 20, 1));
        xd_file_close(dev, f);
        xd_close(dev);
        CHECK_MSG(!table_there(path), "%s, %s: the last process left the table the killed writer "
                  "used", bs, async);
    }
    /* a later process, on a table made anew: the unit is cached again */
    if ((f = open_cached(path, bs, async, &later))) {
        CHECK_MSG(second_read_hits(later, f, 5, 3),
                  "%s, %s: block 5 not cached again on a table made anew", bs, async);
        CHECK(table_unit(path, 5, &started, &ended) && started == ended);
        xd_file_close(later, f);
        xd_close(later);
    }
    CHECK(!table_there(path));
}

/* --- the shared table ------------------------------------------------------------ */

static unsigned open_fds(void)
{
    unsigned n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A file closed here keeps its table (its blocks stay good for a reopen,
 * and a write elsewhere meanwhile is still seen), but only so many: a
 * program going through many files does not keep a descriptor for each;
 * the file closed longest ago lets its blocks go with its table. */
static void test_closed_files(const char *path)
{
    const char *kv[] = {"enable_read_cache", "true", "cache_size", "4m", NULL};
    struct xd_dev *dev, *keep;
    unsigned char buf[BLK];
    char name[160];
    if (check_open_dev(&dev, kv, "test", 16, err, sizeof(err)) ||
        check_open_dev(&keep, kv, "test", 16, err, sizeof(err))) { /* keep: the cache lives */
        CHECK_MSG(0, "open: %s", err);
        return;
    }
    unsigned fds = open_fds();
    for (unsigned i = 0; i < 48; i++) {
        struct xd_file *f = NULL;
        snprintf(name, sizeof(name), "%s.%u", path, i);
        CHECK(make_file(name, i) == 0);
        CHECK(xd_file_open(dev, name, 0, 0, &f, err, sizeof(err)) == 0);
        CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK);
        if (f)
            xd_file_close(dev, f);
    }
    CHECK_MSG(open_fds() <= fds + 32, "48 files closed hold %u descriptors", open_fds() - fds);
    /* the last ones closed are still cached; a write by another process
     * while one was closed here is seen at its reopen */
    long long hits = cache_stat(dev, "hits");
    struct xd_file *f = NULL;
    snprintf(name, sizeof(name), "%s.46", path);
    CHECK(xd_file_open(dev, name, 0, 0, &f, err, sizeof(err)) == 0);
    CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK && seed_of(buf, BLK, 0) == 46);
    CHECK_MSG(cache_stat(dev, "hits") == hits + 1, "a file just closed lost its blocks");
    if (f)
        xd_file_close(dev, f);
    snprintf(name, sizeof(name), "%s.47", path);
    pid_t pid = writer_child(name, "sync", 0, BLK, 9, -1, -1);
    CHECK(child_ok(pid));
    CHECK(xd_file_open(dev, name, 0, 0, &f, err, sizeof(err)) == 0);
    CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK && seed_of(buf, BLK, 0) == 9);
    if (f)
        xd_file_close(dev, f);
    /* the first one's went */
    snprintf(name, sizeof(name), "%s.0", path);
    CHECK(xd_file_open(dev, name, 0, 0, &f, err, sizeof(err)) == 0);
    hits = cache_stat(dev, "hits");
    CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK && seed_of(buf, BLK, 0) == 0);
    CHECK_MSG(cache_stat(dev, "hits") == hits, "a file without its table was served from the cache");
    if (f)
        xd_file_close(dev, f);
    /* xd_unlink of a file closed here takes its table with it at once */
    snprintf(name, sizeof(name), "%s.46", path);
    CHECK(table_there(name));
    char table[96], shm_path[128];
    table_name(name, table, sizeof(table));
    snprintf(shm_path, sizeof(shm_path), "/dev/shm%s", table);
    CHECK(xd_unlink(dev, name, err, sizeof(err)) == 0);
    CHECK_MSG(access(shm_path, F_OK) != 0, "xd_unlink left the file's table");
    xd_close(dev);
    xd_close(keep);
    for (unsigned i = 0; i < 48; i++) {
        snprintf(name, sizeof(name), "%s.%u", path, i);
        CHECK(!table_there(name));
        unlink(name);
    }
}

/* One left by a killed process (no lock on it) goes at the next process's
 * first table; one a process holds stays. */
static void test_leftover_swept(const char *path)
{
    const char *left = "/xdevice-cache-ffff-1-0";
    int fd = shm_open(left, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(make_file(path, 1) == 0);
    int done[2], hold[2];
    char c;
    if (pipe(done) || pipe(hold))
        return;
    /* a process with the file open: its table is in use */
    pid_t holder = writer_child(path, "sync", 0, BLK, 3, done[1], hold[0]);
    CHECK(read(done[0], &c, 1) == 1);
    pid_t pid = fork();
    if (pid == 0) { /* a new process: its first table sweeps */
        struct xd_dev *dev;
        struct xd_file *f = open_cached(path, "4k", "sync", &dev);
        if (f)
            xd_file_close(dev, f);
        xd_close(dev);
        _exit(f ? 0 : 1);
    }
    CHECK(child_ok(pid));
    char shm_path[96];
    snprintf(shm_path, sizeof(shm_path), "/dev/shm%s", left);
    CHECK_MSG(access(shm_path, F_OK) != 0, "the leftover table is still there");
    CHECK_MSG(table_there(path), "the table in use went with the leftover");
    CHECK(write(hold[1], &c, 1) == 1);
    CHECK(child_ok(holder));
    CHECK(!table_there(path));
    shm_unlink(left);
    close(done[0]), close(done[1]), close(hold[0]), close(hold[1]);
}

/* Another user's object at the table's name: never trusted (it could say
 * a block is current when it is not); the file is read uncached and the
 * notice says why. */
static void test_table_of_another_user(const char *path)
{
    char name[96];
    unsigned char buf[BLK];
    if (geteuid() != 0) {
        fprintf(stderr, "skip: another user's table: needs root to make one\n");
        return;
    }
    CHECK(make_file(path, 1) == 0);
    table_name(path, name, sizeof(name));
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
    CHECK(fd >= 0 && fchown(fd, 65534, 65534) == 0);
    if (fd >= 0)
        close(fd);
    struct xd_dev *dev;
    struct xd_file *f = open_cached(path, "4k", "sync", &dev);
    if (f) {
        CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && xd_read(dev, f, buf, BLK, 0) == BLK);
        CHECK(seed_of(buf, BLK, 0) == 1);
        CHECK_MSG(cache_stat(dev, "hits") <= 0, "the file was cached on another user's table");
        const char *notice = xd_dev_notice(dev);
        CHECK_MSG(notice && strstr(notice, "is not cached") && strstr(notice, "another user"),
                  "notice: %s", notice ? notice : "(none)");
        xd_file_close(dev, f);
        xd_close(dev);
    }
    struct stat st;
    char shm_path[128];
    snprintf(shm_path, sizeof(shm_path), "/dev/shm%s", name);
    CHECK_MSG(!stat(shm_path, &st) && st.st_uid == 65534, "another user's object was removed");
    shm_unlink(name);
}

int main(void)
{
    char path[128];
    if (!mkdtemp(dir))
        SKIP("cannot make a directory under /var/tmp");
    snprintf(path, sizeof(path), "%s/data", dir);
    test_rewrite_seen(path, "4k", "sync", false);
    test_rewrite_seen(path, "4k", "sync", true);
    test_rewrite_seen(path, "64k", "sync", true);
    test_rewrite_seen(path, "512", "sync", false);
    if (!check_skip_io_uring("a writer process"))
        test_rewrite_seen(path, "4k", "io_uring", true);
    test_rewrite_seen(path, "4k", "libaio", true);
    test_reader_beside_writer(path);
    test_writer_killed(path, "4k", "libaio", true);
    test_writer_killed(path, "4k", "libaio", false);
    test_writer_killed(path, "64k", "io_uring", true);
    test_writer_killed(path, "64k", "io_uring", false);
    test_closed_files(path);
    test_write_back_shared(path);
    test_leftover_swept(path);
    test_table_of_another_user(path);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return check_result();
}
