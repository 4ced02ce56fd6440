/* cache.c - unit test of the cache layer and its policies: LRU order,
 * S3-FIFO's small-to-main promotion, ghost hits and admission test, Belady's MIN against LRU
 * on the textbook string, TTL expiry, hits served from the cache, reads
 * refusing to insert data older than a write, write-back (dirty until
 * fsync or close, exact bytes below), one cache shared by four threads'
 * devices with every byte checked, a hit served while another thread
 * holds every shard's lock (S3-FIFO hits lock nothing), hits never torn or
 * stale beside a writer of the same blocks, the config's refusals, and the memory
 * bound: resident memory after filling a 64 MiB cache of 4 KiB blocks, and
 * a live cache_size change (the reload hook) growing and shrinking it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cachepolicy.h"
#include "cachesim.h"
#include "check.h"
#include "layers/cache_internal.h"
#include "xd_internal.h"
#include "xdevice.h"

#define BLK 4096
#define MiB (1024 * 1024)

static char dir[] = "/var/tmp/xd-unit-cache-XXXXXX";
static __thread char err[XD_ERRLEN];

/* --- helpers ---------------------------------------------------------------- */

/* Open a device; kv is a NULL-terminated list of key, value pairs. */
/* A device whose keys say they came from origin ("test", "file.ini:3"). */
static struct xd_dev *open_dev_from(const char *const *kv, const char *origin, int *rc_out)
{
    struct xd_dev *dev;
    int rc = check_open_dev(&dev, kv, origin, 16, err, sizeof(err));
    if (rc_out)
        *rc_out = rc;
    return rc ? NULL : dev;
}

static struct xd_dev *open_dev_rc(const char *const *kv, int *rc_out)
{
    return open_dev_from(kv, "test", rc_out);
}

static struct xd_dev *open_dev(const char *const *kv)
{
    int rc;
    struct xd_dev *dev = open_dev_rc(kv, &rc);
    if (!dev)
        fprintf(stderr, "open: %s\n", err);
    return dev;
}

static struct xd_file *open_file(struct xd_dev *dev, const char *path)
{
    struct xd_file *f = NULL;
    if (xd_file_open(dev, path, XD_OPEN_CREATE, 0, &f, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", path, err);
        return NULL;
    }
    return f;
}

/* A device from kv with path open on it; NULL (and no device) on failure. */
static struct xd_file *open_dev_file(const char *const *kv, const char *path, struct xd_dev **dev)
{
    *dev = open_dev(kv);
    struct xd_file *f = *dev ? open_file(*dev, path) : NULL;
    CHECK(f);
    if (!f) {
        xd_close(*dev);
        *dev = NULL;
    }
    return f;
}

static int64_t stat_of(struct xd_dev *dev, const char *key) { return layer_stat(dev, "cache", key); }

static unsigned char pattern(uint64_t off, unsigned seed)
{
    return (unsigned char)((off * 2654435761u) >> 13) ^ (unsigned char)(seed * 37 + 1);
}

static void fill(unsigned char *buf, uint64_t len, uint64_t off, unsigned seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = pattern(off + i, seed);
}

/* Write the file with pattern seed through plain pwrite. */
static int make_file(const char *path, uint64_t len, unsigned seed)
{
    unsigned char *buf = malloc(MiB);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644), rc = 0;
    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    for (uint64_t off = 0; off < len && !rc; off += MiB) {
        uint64_t n = len - off < MiB ? len - off : MiB;
        fill(buf, n, off, seed);
        rc = pwrite(fd, buf, n, (off_t)off) == (ssize_t)n ? 0 : -1;
    }
    close(fd);
    free(buf);
    return rc;
}

/* Does the file below hold pattern seed over [off, off+len)? */
static bool file_holds(const char *path, uint64_t off, uint64_t len, unsigned seed)
{
    unsigned char *buf = malloc(len), *want = malloc(len);
    int fd = open(path, O_RDONLY);
    bool ok = fd >= 0 && buf && want && pread(fd, buf, len, (off_t)off) == (ssize_t)len;
    if (ok) {
        fill(want, len, off, seed);
        ok = !memcmp(buf, want, len);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    free(want);
    return ok;
}

/* --- policies ------------------------------------------------------------------ */

static bool pinned_zero; /* entry 0 may not be evicted (as if dirty) */

static bool evictable(void *ctx, uint32_t id)
{
    return !(pinned_zero && id == 0);
}

static uint64_t hash_of(void *ctx, uint32_t id)
{
    return ((const uint64_t *)ctx)[id];
}

static uint64_t hashes[16];
static const struct xd_cp_owner owner = {.evictable = evictable, .hash = hash_of, .ctx = hashes};

static void insert(struct xd_cp *p, uint32_t id, uint64_t hash)
{
    hashes[id] = hash;
    xd_cp_insert(p, id, hash);
}

static void test_lru_order(void)
{
    struct xd_cp p;
    CHECK(xd_cp_init(&p, XD_CP_LRU, 3, NULL, 0, &owner) == 0);
    for (uint32_t i = 0; i < 3; i++)
        insert(&p, i, 100 + i);
    xd_cp_access(&p, 0); /* 0 is now the most recent: 1 goes first */
    CHECK(xd_cp_evict(&p) == 1);
    insert(&p, 1, 201);
    xd_cp_access(&p, 2);
    CHECK(xd_cp_evict(&p) == 0);
    /* an entry that may not go (dirty) is passed over */
    insert(&p, 0, 300);
    pinned_zero = true;
    CHECK(xd_cp_evict(&p) == 1);
    CHECK(xd_cp_evict(&p) == 2);
    CHECK(xd_cp_evict(&p) == XD_CP_NONE);
    CHECK(xd_cp_size(&p) == 1);
    pinned_zero = false;
    xd_cp_destroy(&p);
}

static void test_s3fifo(void)
{
    struct xd_cp p;
    CHECK(xd_cp_init(&p, XD_CP_S3FIFO, 10, NULL, 0, &owner) == 0);
    CHECK(p.small_target == 1 && p.ghost_cap == 9);
    for (uint32_t i = 0; i < 10; i++)
        insert(&p, i, 1000 + i);
    xd_cp_access(&p, 0);
    xd_cp_access(&p, 3);
    /* the small FIFO's oldest, 0, was hit there: promoted to main, and 1 goes */
    CHECK(xd_cp_evict(&p) == 1);
    CHECK(p.count.promotions == 1);
    CHECK(p.main.size == 1 && p.small.size == 8);
    CHECK(xd_cp_evict(&p) == 2);
    CHECK(xd_cp_evict(&p) == 4); /* 3 was hit: promoted */
    CHECK(p.count.promotions == 2);
    /* a key evicted from small (1's, 1001) comes back: to small, as if hit
     * there, so it leaves small for main */
    insert(&p, 1, 1001);
    CHECK(p.count.ghost_hits == 1);
    CHECK(p.main.size == 2 && p.small.size == 6);
    /* a key never seen goes to small */
    insert(&p, 2, 5555);
    CHECK(p.count.ghost_hits == 1 && p.small.size == 7);
    /* a ghost is taken once */
    insert(&p, 4, 1001);
    CHECK(p.count.ghost_hits == 1);
    xd_cp_destroy(&p);
}

/* The layer adds a device's hits to the sketch in batches, prefetching
 * first (xd_cp_seen_batch): the counts must be what adding them one by
 * one gives, halvings included (20000 adds, a halving every 128 x 64). */
static void test_seen_batch_counts_as_one_by_one(void)
{
    struct xd_cp one, batch;
    CHECK(xd_cp_init(&one, XD_CP_S3FIFO, 64, NULL, 0, &owner) == 0);
    CHECK(xd_cp_init(&batch, XD_CP_S3FIFO, 64, NULL, 0, &owner) == 0);
    uint64_t keys[16], x = 88172645463325252ull;
    for (unsigned round = 0; round < 1250; round++) {
        for (unsigned i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            keys[i] = (x % 300) * 0x9e3779b97f4a7c15ull; /* 300 keys, many repeats */
            xd_cp_seen(&one, keys[i]);
        }
        xd_cp_seen_batch(&batch, keys, 16);
    }
    unsigned differ = 0, counted = 0;
    for (uint64_t k = 0; k < 300; k++) {
        uint32_t a = xd_fs_estimate(&one.sketch, k * 0x9e3779b97f4a7c15ull);
        differ += a != xd_fs_estimate(&batch.sketch, k * 0x9e3779b97f4a7c15ull);
        counted += a > 0;
    }
    CHECK_MSG(!differ && counted > 250, "batched sketch counts differ for %u of 300 keys (%u counted)",
              differ, counted);
    xd_cp_destroy(&one);
    xd_cp_destroy(&batch);
}

/* Once main is full, what leaves small for main must have been seen more
 * often (the frequency sketch) than main's next victim, which it replaces. */
static void test_s3fifo_admission(void)
{
    struct xd_cp p;
    CHECK(xd_cp_init(&p, XD_CP_S3FIFO, 10, NULL, 0, &owner) == 0);
    for (uint32_t i = 0; i < 10; i++)
        insert(&p, i, 2000 + i);
    for (int round = 0; round < 3; round++)
        for (uint32_t i = 0; i < 9; i++)
            xd_cp_access(&p, i);
    xd_cp_access(&p, 9);
    /* 0..8 were hit in small: promoted while main had room (9 of 10); 9 was
     * hit too, but seen twice, less than any of main's */
    CHECK(xd_cp_evict(&p) == 9);
    CHECK(p.count.promotions == 9 && p.count.refused == 1 && p.main.size == 9);
    insert(&p, 9, 3000);
    for (int n = 0; n < 5; n++)
        xd_cp_access(&p, 9);
    /* seen 6 times against main's 4: admitted, main's oldest goes */
    CHECK(xd_cp_evict(&p) == 0);
    CHECK(p.count.promotions == 10 && p.main.size == 9 && p.small.size == 0);
    xd_cp_destroy(&p);
}

/* The textbook reference string 1 2 3 4 1 2 5 1 2 3 4 5 in 3 frames:
 * OPT faults 7 times, LRU 10. */
static void test_min_vs_lru(void)
{
    static const uint32_t ids[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};
    uint8_t ops[12] = {0};
    struct xd_sim_trace t = {.ids = ids, .ops = ops, .n = 12, .nids = 6};
    struct xd_sim_result lru, min, s3;
    CHECK(xd_sim_policy(&t, XD_CP_LRU, 3, &lru) == 0);
    CHECK(xd_sim_min(&t, 3, &min) == 0);
    CHECK(xd_sim_policy(&t, XD_CP_S3FIFO, 3, &s3) == 0);
    CHECK_MSG(lru.reads == 12 && lru.hits == 2, "lru hits %llu", (unsigned long long)lru.hits);
    CHECK_MSG(min.reads == 12 && min.hits == 5, "min hits %llu", (unsigned long long)min.hits);
    CHECK(s3.hits <= min.hits);
    /* MIN bounds the others on a longer, skewed string too */
    enum { N = 20000 };
    uint32_t *many = malloc(N * sizeof(*many));
    uint8_t *mops = calloc(N, 1);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t r = (uint32_t)(x % 1000);
        many[i] = (r * r) / 1000; /* skewed toward low ids */
    }
    struct xd_sim_trace big = {.ids = many, .ops = mops, .n = N, .nids = 1000};
    CHECK(xd_sim_policy(&big, XD_CP_LRU, 50, &lru) == 0);
    CHECK(xd_sim_policy(&big, XD_CP_S3FIFO, 50, &s3) == 0);
    CHECK(xd_sim_min(&big, 50, &min) == 0);
    CHECK_MSG(min.hits >= lru.hits && min.hits >= s3.hits && lru.hits > 0,
              "min %llu lru %llu s3fifo %llu", (unsigned long long)min.hits,
              (unsigned long long)lru.hits, (unsigned long long)s3.hits);
    free(many);
    free(mops);
}

/* --- the layer ------------------------------------------------------------------ */

static void test_hits_and_ttl(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "1m",
                                     "cache_ttl", "1", NULL};
    unsigned char buf[3 * BLK], want[3 * BLK];
    CHECK(make_file(path, 64 * BLK, 1) == 0);
    struct xd_dev *dev;
    struct xd_file *f = open_dev_file(kv, path, &dev);
    if (!f)
        return;
    fill(want, sizeof(want), BLK + 100, 1);
    /* 3 blocks, 1 whole: widened to whole blocks, all 3 are filled */
    CHECK(xd_read(dev, f, buf, 2 * BLK, BLK + 100) == 2 * BLK);
    CHECK(!memcmp(buf, want, 2 * BLK));
    CHECK(stat_of(dev, "misses") == 3 && stat_of(dev, "inserts") == 3);
    CHECK(stat_of(dev, "widened_reads") == 1);
    CHECK(xd_read(dev, f, buf, 3 * BLK, 0) == 3 * BLK); /* block 0 missed: it is added */
    CHECK(stat_of(dev, "hits") == 0 && stat_of(dev, "inserts") == 4);
    memset(buf, 0, sizeof(buf));
    fill(want, sizeof(want), 100, 1);
    CHECK(xd_read(dev, f, buf, 2 * BLK + 50, 100) == 2 * BLK + 50); /* 0, 1, 2: all cached */
    CHECK(!memcmp(buf, want, 2 * BLK + 50));
    CHECK(stat_of(dev, "hits") == 3 && stat_of(dev, "misses") == 6);
    /* a change below, unseen: the cache still answers (until the TTL) */
    CHECK(make_file(path, 64 * BLK, 2) == 0);
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && buf[0] == pattern(0, 1));
    sleep(2);
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && buf[0] == pattern(0, 2));
    CHECK_MSG(stat_of(dev, "expired") >= 1, "expired %lld", (long long)stat_of(dev, "expired"));
    xd_file_close(dev, f);
    xd_close(dev);
}

/* The ops of the trace's access records, in order (headers skipped). */
static unsigned trace_ops(const char *trace, uint8_t *ops, unsigned max)
{
    struct xd_trace_rec r;
    unsigned n = 0;
    FILE *fp = fopen(trace, "rb");
    while (fp && n < max && fread(&r, sizeof(r), 1, fp) == 1)
        if ((r.word & 3) != XD_TRACE_HEADER)
            ops[n++] = (uint8_t)(r.word & 3);
    if (fp)
        fclose(fp);
    return n;
}

/* Write-through: a write shorter than 128 KiB stores its whole blocks (a
 * read of them hits); one of 128 KiB or more goes around the cache: it
 * stores nothing and drops what was cached of its blocks, so a read after
 * it misses and sees the new data. The trace says so (its blocks as
 * trims), so xdcachesim replays what the layer did. */
static void test_write_around(const char *path)
{
    char trace[160];
    snprintf(trace, sizeof(trace), "%s/around.trace", dir);
    const char *const kv[] = {"enable_read_cache", "true", "cache_size", "1m", "trace", trace, NULL};
    enum { LONG = 32 * BLK };
    static unsigned char buf[LONG], back[LONG];
    CHECK(make_file(path, 64 * BLK, 1) == 0);
    struct xd_dev *dev;
    struct xd_file *f = open_dev_file(kv, path, &dev);
    if (!f)
        return;
    fill(buf, 2 * BLK, 0, 2);
    CHECK(xd_write(dev, f, buf, 2 * BLK, 0) == 2 * BLK);
    CHECK(stat_of(dev, "inserts") == 2 && stat_of(dev, "writes_around") == 0);
    CHECK(xd_read(dev, f, back, 2 * BLK, 0) == 2 * BLK && !memcmp(back, buf, 2 * BLK));
    CHECK(stat_of(dev, "hits") == 2 && stat_of(dev, "misses") == 0);
    fill(buf, LONG, 0, 3); /* over the two cached blocks and 30 more */
    CHECK(xd_write(dev, f, buf, LONG, 0) == LONG);
    CHECK(stat_of(dev, "writes_around") == 1 && stat_of(dev, "inserts") == 2);
    CHECK(stat_of(dev, "bytes_cached") == 0);
    CHECK(xd_read(dev, f, back, LONG, 0) == LONG && !memcmp(back, buf, LONG));
    CHECK(stat_of(dev, "hits") == 2 && stat_of(dev, "misses") == 32);
    CHECK(file_holds(path, 0, LONG, 3));
    xd_file_close(dev, f);
    xd_close(dev);
    static uint8_t ops[80];
    unsigned n = trace_ops(trace, ops, 80), k = 0;
    CHECK(n == 2 + 2 + 32 + 32);
    for (; k < 2 && k < n; k++)
        CHECK(ops[k] == XD_TRACE_WRITE);
    for (; k < 4 && k < n; k++)
        CHECK(ops[k] == XD_TRACE_READ);
    for (; k < 36 && k < n; k++)
        CHECK_MSG(ops[k] == XD_TRACE_TRIM, "record %u: op %u, want a trim", k, ops[k]);
    for (; k < n; k++)
        CHECK(ops[k] == XD_TRACE_READ);
}

/* A file changed by someone else while no device here had it open is
 * dropped at the next open; invalidate drops it too. */
static void test_reopen_and_invalidate(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "1m", NULL};
    unsigned char buf[BLK];
    CHECK(make_file(path, 16 * BLK, 3) == 0);
    struct xd_dev *dev = open_dev(kv), *keep = open_dev(kv); /* keep holds the cache */
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    CHECK(f && keep);
    if (!f || !keep)
        goto out;
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && buf[1] == pattern(1, 3));
    xd_file_close(dev, f);
    f = open_file(dev, path); /* unchanged: still cached */
    CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK && stat_of(dev, "hits") == 1);
    xd_file_close(dev, f);
    usleep(20000);
    CHECK(make_file(path, 16 * BLK, 4) == 0);
    f = open_file(dev, path);
    CHECK(f && xd_read(dev, f, buf, BLK, 0) == BLK && buf[1] == pattern(1, 4));
    CHECK(stat_of(dev, "hits") == 1);
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && stat_of(dev, "hits") == 2);
    CHECK(xd_file_invalidate(dev, f) == 0);
    CHECK(stat_of(dev, "bytes_cached") == 0);
    CHECK(xd_read(dev, f, buf, BLK, 0) == BLK && stat_of(dev, "hits") == 2);
    xd_file_close(dev, f);
out:
    xd_close(dev);
    xd_close(keep);
}

/* xd_unlink drops the removed file's blocks at once: a new file may get
 * its inode number straight away, and on kernels whose timestamps tick by
 * the jiffy its times and size could match what the close noted. A file
 * still open elsewhere keeps its blocks, as it keeps its data. */
static void test_unlink_drops_blocks(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "1m", NULL};
    unsigned char buf[BLK];
    char other[160];
    snprintf(other, sizeof(other), "%s.other", path);
    CHECK(make_file(path, 8 * BLK, 5) == 0 && make_file(other, 8 * BLK, 6) == 0);
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL, *g = dev ? open_file(dev, other) : NULL;
    CHECK(f && g);
    if (!f || !g)
        goto out;
    for (int i = 0; i < 8; i++)
        CHECK(xd_read(dev, f, buf, BLK, (uint64_t)i * BLK) == BLK &&
              xd_read(dev, g, buf, BLK, (uint64_t)i * BLK) == BLK);
    xd_file_close(dev, f);
    f = NULL;
    CHECK_MSG(stat_of(dev, "bytes_cached") == 16 * BLK, "%lld",
              (long long)stat_of(dev, "bytes_cached"));
    CHECK(xd_unlink(dev, path, err, sizeof(err)) == 0);
    CHECK_MSG(stat_of(dev, "bytes_cached") == 8 * BLK, "after xd_unlink: %lld cached",
              (long long)stat_of(dev, "bytes_cached"));
    CHECK(xd_unlink(dev, other, err, sizeof(err)) == 0); /* g is open: kept */
    CHECK(stat_of(dev, "bytes_cached") == 8 * BLK);
    CHECK(xd_read(dev, g, buf, BLK, 0) == BLK && buf[1] == pattern(1, 6));
out:
    xd_file_close(dev, g);
    xd_close(dev);
    unlink(other);
}

/* A read that went down before a write must not leave its (maybe older)
 * data in the cache. The direct type under io_uring really queues it. */
static void test_stale_insert(const char *path)
{
    static const char *const kv[] = {"storage_type", "direct", "async", "io_uring",
                                     "enable_read_cache", "true", "cache_size", "1m", NULL};
    unsigned char *rbuf = aligned_alloc(4096, BLK), *wbuf = aligned_alloc(4096, BLK);
    CHECK(make_file(path, 16 * BLK, 5) == 0);
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    if (!f) {
        printf("SKIP stale-insert test: direct+io_uring unavailable here (%s)\n", err);
        xd_close(dev);
        free(rbuf);
        free(wbuf);
        return;
    }
    struct xd_req rd = {.op = XD_OP_READ, .file = f, .buf = rbuf, .len = BLK, .off = 2 * BLK};
    int rc = xd_submit(dev, &rd);
    CHECK(rc == XD_QUEUED || rc == XD_DONE);
    if (rc == XD_QUEUED)
        CHECK(xd_commit(dev) >= 0);
    fill(wbuf, BLK, 2 * BLK, 6);
    CHECK(xd_write(dev, f, wbuf, BLK, 2 * BLK) == BLK);
    if (rc == XD_QUEUED) {
        struct xd_req *done[1];
        CHECK(xd_reap(dev, done, 1, 1, NULL) == 1 && done[0] == &rd);
        CHECK(stat_of(dev, "stale_inserts_refused") == 1);
    }
    memset(rbuf, 0, BLK);
    CHECK(xd_read(dev, f, rbuf, BLK, 2 * BLK) == BLK && !memcmp(rbuf, wbuf, BLK));
    CHECK(stat_of(dev, "hits") == 1); /* the write's own data was inserted */
    xd_file_close(dev, f);
    xd_close(dev);
    CHECK(file_holds(path, 2 * BLK, BLK, 6));
    free(rbuf);
    free(wbuf);
}

static void test_write_back(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "enable_write_cache", "true",
                                     "cache_size", "1m", NULL};
    unsigned char buf[8 * BLK], back[8 * BLK];
    CHECK(make_file(path, 32 * BLK, 7) == 0);
    struct xd_dev *dev;
    struct xd_file *f = open_dev_file(kv, path, &dev);
    if (!f)
        return;
    fill(buf, 4 * BLK, 4 * BLK, 8);
    CHECK(xd_write(dev, f, buf, 4 * BLK, 4 * BLK) == 4 * BLK);
    CHECK(stat_of(dev, "writes_absorbed") == 1 && stat_of(dev, "dirty_bytes") == 4 * BLK);
    CHECK(file_holds(path, 4 * BLK, 4 * BLK, 7)); /* not below yet */
    CHECK(xd_read(dev, f, back, 4 * BLK, 4 * BLK) == 4 * BLK && !memcmp(back, buf, 4 * BLK));
    /* a partial write into a dirty block merges in the cache */
    fill(buf, 100, 5 * BLK + 10, 9);
    CHECK(xd_write(dev, f, buf, 100, 5 * BLK + 10) == 100);
    CHECK(stat_of(dev, "writes_absorbed") == 2);
    /* a partial write to a block not cached goes down */
    fill(buf, 100, 20 * BLK + 10, 9);
    CHECK(xd_write(dev, f, buf, 100, 20 * BLK + 10) == 100);
    CHECK(stat_of(dev, "writes_through") == 1);
    /* a read missing across a dirty block sees the dirty data */
    CHECK(xd_read(dev, f, back, 2 * BLK, 3 * BLK + 7) == 2 * BLK);
    fill(buf, 2 * BLK, 3 * BLK + 7, 7);
    fill(buf + BLK - 7, BLK + 7, 4 * BLK, 8);
    CHECK(!memcmp(back, buf, 2 * BLK));
    CHECK(xd_flush(dev, f, 0) == 0);
    CHECK(stat_of(dev, "dirty_bytes") == 0 && stat_of(dev, "flushes") >= 4);
    CHECK(file_holds(path, 4 * BLK, BLK, 8) && file_holds(path, 6 * BLK, 2 * BLK, 8));
    CHECK(file_holds(path, 5 * BLK + 10, 100, 9) && file_holds(path, 5 * BLK, 10, 8));
    CHECK(file_holds(path, 20 * BLK + 10, 100, 9) && file_holds(path, 20 * BLK, 10, 7));
    /* dirty at close: written on close; a write growing the file too */
    fill(buf, 2 * BLK, 32 * BLK, 10);
    CHECK(xd_write(dev, f, buf, 2 * BLK, 32 * BLK) == 2 * BLK);
    CHECK(stat_of(dev, "dirty_bytes") == 2 * BLK);
    CHECK(xd_file_size(dev, f) == 34 * BLK); /* sizes are asked after a flush */
    fill(buf, BLK, 0, 11);
    CHECK(xd_write(dev, f, buf, BLK, 0) == BLK);
    xd_file_close(dev, f);
    CHECK(file_holds(path, 0, BLK, 11) && file_holds(path, 32 * BLK, 2 * BLK, 10));
    xd_close(dev);
}

/* --- a write-back that fails ------------------------------------------------------ */

/* Take every free block of the file system dir is on. */
static void fill_fs(const char *dir_path)
{
    char name[160];
    static unsigned char zeros[BLK];
    snprintf(name, sizeof(name), "%s/fill", dir_path);
    int fd = open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    while (fd >= 0 && write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros))
        ;
    if (fd >= 0)
        close(fd);
}

/* Blocks 7 and 8 are dirty and cannot be written back (8 is a hole on a
 * full file system). A write too large to absorb, covering block 7 in part,
 * goes down: it must not land while block 7's dirty copy waits, or that
 * copy, written back once there is room, lands over it (old: the write's
 * bytes were lost to the older ones). Now it fails, as the write-back did,
 * and the file ends up with block 7 as the cache held it. A close that
 * cannot write the dirty blocks back says so (xd_file_close). */
static void test_failed_write_back(void)
{
    static const char *const kv[] = {"enable_read_cache", "true", "enable_write_cache", "true",
                                     "cache_size", "64k", NULL};
    char mnt[128], path[160];
    unsigned char buf[5 * BLK];
    snprintf(mnt, sizeof(mnt), "%s/full", dir);
    snprintf(path, sizeof(path), "%s/data", mnt);
    if (mkdir(mnt, 0700) || mount("xd-unit-cache", mnt, "tmpfs", 0, "size=256k")) {
        fprintf(stderr, "skip test_failed_write_back: cannot mount a tmpfs: %s\n", strerror(errno));
        return;
    }
    int fd = -1;
    CHECK(make_file(path, 8 * BLK, 1) == 0);
    CHECK((fd = open(path, O_WRONLY)) >= 0 && !ftruncate(fd, 16 * BLK));
    if (fd >= 0)
        close(fd);
    fill_fs(mnt);
    struct xd_dev *dev;
    struct xd_file *f = open_dev_file(kv, path, &dev);
    if (f) {
        fill(buf, 2 * BLK, 7 * BLK, 2);
        CHECK(xd_write(dev, f, buf, 2 * BLK, 7 * BLK) == 2 * BLK);
        CHECK(stat_of(dev, "writes_absorbed") == 1);
        CHECK(xd_flush(dev, f, 1) < 0); /* block 8 has no room */
        fill(buf, 4 * BLK + 100, 3 * BLK, 3);
        ssize_t n = xd_write(dev, f, buf, 4 * BLK + 100, 3 * BLK);
        CHECK_MSG(stat_of(dev, "writes_absorbed") == 1, "absorbed %lld", (long long)stat_of(dev, "writes_absorbed"));
        char fill_path[160];
        snprintf(fill_path, sizeof(fill_path), "%s/fill", mnt);
        unlink(fill_path);
        /* room now: blocks 7 and 8 go below; the fsync still reports the
         * failed write-back since the last one (once), as fsync(2) does */
        int synced = xd_flush(dev, f, 1);
        CHECK_MSG(synced == 0 || (synced < 0 && xd_flush(dev, f, 1) == 0), "fsync: %d", synced);
        CHECK(stat_of(dev, "dirty_bytes") == 0);
        if (n == 4 * BLK + 100)
            CHECK_MSG(file_holds(path, 7 * BLK, 100, 3), "a completed write lost to an older dirty block");
        else
            CHECK_MSG(n < 0 && file_holds(path, 3 * BLK, 4 * BLK, 1) && file_holds(path, 7 * BLK, 2 * BLK, 2),
                      "a failed write: %zd", n);
        /* no room again, then dirty again (in that order: the flusher may
         * try the block at any time, and must fail too): the close says
         * the blocks are lost */
        fill_fs(mnt);
        fill(buf, BLK, 12 * BLK, 4);
        CHECK(xd_write(dev, f, buf, BLK, 12 * BLK) == BLK);
        CHECK(stat_of(dev, "writes_absorbed") == 2);
        int rc = xd_file_close(dev, f);
        char line[XD_ERRLEN] = "";
        CHECK_MSG(rc < 0 && !xd_dev_take_error(dev, line, sizeof(line)) &&
                      strstr(line, "never reached the file") && strstr(line, path),
                  "close: %d: %s", rc, line);
        xd_close(dev);
    }
    CHECK(!umount(mnt));
    rmdir(mnt);
}

/* --- kill -9 after fsync --------------------------------------------------------- */

/* The child absorbs 16 blocks of seed 12 into the write-back cache, fsyncs
 * (xd_flush), absorbs seed 13 over blocks 0-3 without one, and is killed:
 * the cache's dirty blocks live in the process, so only what the fsync
 * wrote below is owed to the file. */
static void crash_child(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "enable_write_cache", "true",
                                     "cache_size", "1m", NULL};
    static unsigned char buf[16 * BLK];
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    if (!f)
        _exit(3);
    fill(buf, 16 * BLK, 0, 12);
    for (unsigned b = 0; b < 16; b++)
        if (xd_write(dev, f, buf + b * BLK, BLK, b * BLK) != BLK)
            _exit(4);
    if (stat_of(dev, "writes_absorbed") != 16)
        _exit(5); /* not absorbed in the cache: the test would prove nothing */
    if (xd_flush(dev, f, 0))
        _exit(6);
    fill(buf, 4 * BLK, 0, 13);
    if (xd_write(dev, f, buf, 4 * BLK, 0) != 4 * BLK)
        _exit(7);
    kill(getpid(), SIGKILL);
    _exit(8);
}

static void test_kill9_after_fsync(const char *path)
{
    int status;
    CHECK(make_file(path, 16 * BLK, 7) == 0);
    pid_t pid = fork();
    if (pid == 0)
        crash_child(path);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    CHECK(file_holds(path, 4 * BLK, 12 * BLK, 12));
    /* the unsynced rewrite may or may not have reached the file, but each
     * block is one version or the other, never a mix or the old seed */
    for (unsigned b = 0; b < 4; b++)
        CHECK_MSG(file_holds(path, b * BLK, BLK, 12) || file_holds(path, b * BLK, BLK, 13),
                  "block %u is neither the fsynced nor the later version", b);
}

/* --- threads ------------------------------------------------------------------ */

#define T_THREADS 4
#define T_FILE (8 * MiB)
#define T_REGION (T_FILE / T_THREADS)

struct thread_arg {
    const char *path;
    unsigned index;
    bool write_back;
    int failures;
};

/* Each thread has its own device on the shared cache: reads anywhere
 * (aligned or not) must give the byte pattern of who last wrote there,
 * which for other threads' regions is seed 20 (they only rewrite their
 * region's second half), and writes its own region's second half. */
static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    const char *kv[] = {"enable_read_cache", "true", "cache_size", "2m", "cache_block_size", "4k",
                        "enable_write_cache", a->write_back ? "true" : "false", NULL};
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, a->path) : NULL;
    unsigned char *buf = malloc(64 * 1024), *want = malloc(64 * 1024);
    uint64_t x = 0x9e3779b97f4a7c15ull * (a->index + 1);
    if (!f || !buf || !want) {
        a->failures++;
        goto out;
    }
    uint64_t mine = (uint64_t)a->index * T_REGION + T_REGION / 2;
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        bool aligned = (x >> 50) & 1;
        uint64_t len = 1 + x % (16 * 1024);
        if (aligned)
            len = (len + BLK - 1) & ~(uint64_t)(BLK - 1);
        uint64_t off = (x % T_THREADS) * T_REGION + (x >> 20) % (T_REGION / 2 - len);
        if (aligned)
            off &= ~(uint64_t)(BLK - 1);
        if (!((x >> 40) % 4)) {
            /* write: own second half only, with seed 30 + thread */
            uint64_t woff = mine + off % (T_REGION / 2 - len);
            if (aligned)
                woff &= ~(uint64_t)(BLK - 1);
            fill(buf, len, woff, 30 + a->index);
            if (xd_write(dev, f, buf, len, woff) != (ssize_t)len)
                a->failures++;
            /* and read it back at once */
            if (xd_read(dev, f, want, len, woff) != (ssize_t)len || memcmp(want, buf, len))
                a->failures++;
            if ((x >> 30) % 8 == 0 && xd_flush(dev, f, 1))
                a->failures++;
            continue;
        }
        if (xd_read(dev, f, buf, len, off) != (ssize_t)len) {
            a->failures++;
            continue;
        }
        fill(want, len, off, 20);
        if (memcmp(buf, want, len))
            a->failures++;
    }
out:
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    free(buf);
    free(want);
    return NULL;
}

static void test_threads(const char *path, bool write_back)
{
    pthread_t t[T_THREADS];
    struct thread_arg a[T_THREADS];
    CHECK(make_file(path, T_FILE, 20) == 0);
    /* the second halves start as seed 20 too and are rewritten; reads avoid them */
    for (unsigned i = 0; i < T_THREADS; i++) {
        a[i] = (struct thread_arg){.path = path, .index = i, .write_back = write_back};
        CHECK(pthread_create(&t[i], NULL, thread_main, &a[i]) == 0);
    }
    for (unsigned i = 0; i < T_THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(a[i].failures == 0, "%s: thread %u: %d failures",
                  write_back ? "write-back" : "write-through", i, a[i].failures);
        CHECK(file_holds(path, (uint64_t)i * T_REGION, T_REGION / 2, 20));
    }
}

/* --- hits take no lock ---------------------------------------------------------- */

#define RW_BLOCKS 4
#define RW_WRITES 20000

struct rw_arg {
    const char *path;
    atomic_bool *done;
    int failures;
};

static struct xd_dev *open_write_back(void)
{
    static const char *const kv[] = {"enable_read_cache", "true", "enable_write_cache", "true",
                                      "cache_size", "64m", NULL};
    return open_dev(kv);
}

/* Whole-block writes absorbed in the cache (write-back: the data changes
 * in place, under the shard lock), version 1, 2, ... in every word. */
static void *rw_writer(void *p)
{
    struct rw_arg *a = p;
    struct xd_dev *dev = open_write_back();
    struct xd_file *f = dev ? open_file(dev, a->path) : NULL;
    uint32_t words[BLK / 4];
    for (uint32_t v = 1; f && v <= RW_WRITES; v++) {
        for (unsigned i = 0; i < BLK / 4; i++)
            words[i] = v;
        if (xd_write(dev, f, words, BLK, (uint64_t)(v % RW_BLOCKS) * BLK) != BLK)
            a->failures++;
    }
    atomic_store(a->done, true);
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    return NULL;
}

/* Reads of the same blocks, hits without the lock: each must be one
 * version whole (never a copy torn by a write) and never older than one
 * this reader saw before (never stale). */
static void *rw_reader(void *p)
{
    struct rw_arg *a = p;
    struct xd_dev *dev = open_write_back();
    struct xd_file *f = dev ? open_file(dev, a->path) : NULL;
    uint32_t words[BLK / 4], seen[RW_BLOCKS] = {0};
    a->failures += !f;
    for (unsigned n = 0; f && !atomic_load(a->done); n++) {
        unsigned b = n % RW_BLOCKS;
        if (xd_read(dev, f, words, BLK, (uint64_t)b * BLK) != BLK) {
            a->failures++;
            continue;
        }
        bool whole = true;
        for (unsigned i = 1; i < BLK / 4; i++)
            whole &= words[i] == words[0];
        if (!whole || words[0] < seen[b])
            a->failures++;
        seen[b] = words[0];
    }
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    return NULL;
}

/* Two readers hit blocks a third device keeps rewriting in the cache. */
static void test_hits_beside_writes(const char *path)
{
    atomic_bool done = false;
    struct rw_arg a[3];
    pthread_t t[3];
    uint32_t zero[BLK / 4] = {0};
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    for (unsigned b = 0; fd >= 0 && b < RW_BLOCKS; b++)
        CHECK(pwrite(fd, zero, BLK, (off_t)b * BLK) == BLK);
    CHECK(fd >= 0 && close(fd) == 0);
    for (unsigned i = 0; i < 3; i++) {
        a[i] = (struct rw_arg){.path = path, .done = &done};
        CHECK(pthread_create(&t[i], NULL, i ? rw_reader : rw_writer, &a[i]) == 0);
    }
    for (unsigned i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(a[i].failures == 0, "%s %u: %d failures", i ? "reader" : "writer", i,
                  a[i].failures);
    }
}

struct hit_arg {
    struct xd_dev *dev;
    struct xd_file *f;
    unsigned char buf[BLK];
    int64_t got;
};

static void *hit_main(void *p)
{
    struct hit_arg *a = p;
    a->got = xd_read(a->dev, a->f, a->buf, BLK, 5 * BLK);
    return NULL;
}

/* The process's cache, through the device's cache layer (under stats). */
static struct cache *cache_of(struct xd_dev *dev)
{
    for (struct xd_layer *l = dev->top; l; l = l->lower)
        if (!strcmp(l->ops->name, "cache"))
            return ((struct cache_layer *)l->priv)->cache;
    return NULL;
}

/* With S3-FIFO a hit copies without its shard's lock: one held by another
 * job (preempted, or filling a miss) must not stall it. Here this thread
 * holds every shard's lock while another reads a cached block; the read
 * must finish (the old path waited for the lock: a deadlock until the
 * timed join gave up). Deterministic: no timing decides the outcome,
 * only whether the hit path takes a lock at all. */
static void test_hit_takes_no_lock(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "64m", NULL};
    static struct hit_arg a;
    unsigned char want[BLK];
    CHECK(make_file(path, 16 * BLK, 7) == 0);
    a.dev = open_dev(kv);
    a.f = a.dev ? open_file(a.dev, path) : NULL;
    struct cache *c = a.f ? cache_of(a.dev) : NULL;
    CHECK(c && c->nshards == CACHE_MAX_SHARDS);
    if (!c) {
        xd_close(a.dev);
        return;
    }
    CHECK(xd_read(a.dev, a.f, a.buf, BLK, 5 * BLK) == BLK); /* a miss fills it */
    memset(a.buf, 0, sizeof(a.buf));
    for (uint32_t i = 0; i < c->nshards; i++)
        pthread_mutex_lock(&c->shards[i].lock);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hit_main, &a) == 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int joined = pthread_timedjoin_np(t, NULL, &until);
    CHECK_MSG(joined == 0, "a hit waited for a shard lock another thread held");
    for (uint32_t i = 0; i < c->nshards; i++)
        pthread_mutex_unlock(&c->shards[i].lock);
    if (joined)
        pthread_join(t, NULL);
    fill(want, BLK, 5 * BLK, 7);
    CHECK(a.got == BLK && !memcmp(a.buf, want, BLK));
    CHECK(stat_of(a.dev, "hits") == 1 && stat_of(a.dev, "misses") == 1);
    xd_file_close(a.dev, a.f);
    xd_close(a.dev);
}

/* --- config ------------------------------------------------------------------- */

static void test_config(const char *path)
{
    int rc;
    static const char *const wb_alone[] = {"enable_write_cache", "true", NULL};
    CHECK(!open_dev_rc(wb_alone, &rc) && rc == -EINVAL);
    CHECK(strstr(err, "enable_write_cache=true") && strstr(err, "enable_read_cache=false") &&
          strstr(err, "conflicts"));
    static const char *const odd[] = {"enable_read_cache", "true", "cache_block_size", "3000", NULL};
    CHECK(!open_dev_rc(odd, &rc) && rc == -EINVAL && strstr(err, "not a power of two"));
    static const char *const tiny[] = {"enable_read_cache", "true", "cache_size", "32k", NULL};
    CHECK(!open_dev_rc(tiny, &rc) && rc == -EINVAL && strstr(err, "16 blocks"));
    struct xd_config *cfg = xd_config_new();
    CHECK(xd_config_set(cfg, "cache_policy", "arc", "test", err, sizeof(err)) == -EINVAL &&
          strstr(err, "s3fifo|lru"));
    xd_config_free(cfg);
    /* one cache per process: a second device asking for another is refused */
    static const char *const one[] = {"enable_read_cache", "true", "cache_size", "1m", NULL};
    static const char *const two[] = {"enable_read_cache", "true", "cache_size", "2m", NULL};
    static const char *const lru[] = {"enable_read_cache", "true", "cache_size", "1m",
                                      "cache_policy", "lru", NULL};
    struct xd_dev *a = open_dev(one);
    CHECK(a && !open_dev_rc(two, &rc) && rc == -EINVAL && strstr(err, "already open"));
    CHECK(!open_dev_rc(lru, &rc) && rc == -EINVAL);
    xd_close(a);
    a = open_dev(lru); /* the last device closed: a new cache */
    CHECK(a && stat_of(a, "capacity_bytes") == MiB);
    xd_close(a);
    /* ... unless both read cache_size from one INI that changed between
     * their opens (a live reload): the cache takes the newer size */
    a = open_dev_from(one, "dir/xd.ini:2", &rc);
    struct xd_dev *b = open_dev_from(two, "dir/xd.ini:3", &rc);
    CHECK(a && b && stat_of(a, "capacity_bytes") == 2 * MiB && xd_dev_notice(b) &&
          strstr(xd_dev_notice(b), "resized from 1048576"));
    CHECK(!open_dev_from(one, "other.ini:2", &rc) && rc == -EINVAL && strstr(err, "already open"));
    xd_close(b);
    xd_close(a);
    /* trace alone: the layer records without a cache */
    CHECK(make_file(path, 4 * BLK, 1) == 0);
    char trace[160];
    snprintf(trace, sizeof(trace), "%s/trace", dir);
    const char *kv[] = {"trace", trace, NULL};
    a = open_dev(kv);
    struct xd_file *f = a ? open_file(a, path) : NULL;
    unsigned char buf[2 * BLK];
    CHECK(f && xd_read(a, f, buf, 2 * BLK, BLK) == 2 * BLK && stat_of(a, "trace_records") == 2);
    xd_file_close(a, f);
    xd_close(a);
    struct stat st;
    CHECK(!stat(trace, &st) && st.st_size == 3 * sizeof(struct xd_trace_rec));
}

/* Two devices of one process tracing to one file write their records in
 * the order their reads came (one buffer for the file), so a replay sees
 * the sequence the process's cache saw; each used to buffer 4096 records
 * of its own, and the file held all of one device's reads, then the
 * other's. A child after fork() traces on its own buffer. */
static void test_trace_order(const char *path)
{
    enum { READS = 100 };
    char trace[160], other[160];
    snprintf(trace, sizeof(trace), "%s/order.trace", dir);
    snprintf(other, sizeof(other), "%s.other", path);
    CHECK(make_file(path, READS * BLK / 4, 1) == 0 && make_file(other, READS * BLK / 4, 1) == 0);
    const char *kv[] = {"trace", trace, NULL};
    struct xd_dev *a = open_dev(kv), *b = open_dev(kv);
    struct xd_file *fa = a ? open_file(a, path) : NULL, *fb = b ? open_file(b, other) : NULL;
    unsigned char buf[BLK];
    for (unsigned i = 0; fa && fb && i < READS; i++)
        CHECK(xd_read(a, fa, buf, BLK, (uint64_t)i % 25 * BLK) == BLK &&
              xd_read(b, fb, buf, BLK, (uint64_t)i % 25 * BLK) == BLK);
    pid_t pid = fork();
    if (pid == 0) { /* a's buffer is the parent's: the child's device gets its own */
        alarm(20);
        struct xd_dev *c = open_dev(kv);
        struct xd_file *fc = c ? open_file(c, path) : NULL;
        int ok = fc && xd_read(c, fc, buf, BLK, 0) == BLK;
        xd_file_close(c, fc);
        xd_close(c);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
          WEXITSTATUS(status) == 0);
    xd_file_close(a, fa);
    xd_file_close(b, fb);
    xd_close(a);
    xd_close(b);
    /* the parent's 2 headers and 200 reads in turn; the child's header and read */
    FILE *fp = fopen(trace, "rb");
    struct xd_trace_rec r, prev = {0};
    unsigned headers = 0, reads = 0, in_turn = 0;
    while (fp && fread(&r, sizeof(r), 1, fp) == 1) {
        if ((r.word & 3) == XD_TRACE_HEADER) {
            headers++;
            continue;
        }
        in_turn += reads && r.file != prev.file;
        reads++;
        prev = r;
    }
    if (fp)
        fclose(fp);
    CHECK_MSG(headers == 3 && reads == 2 * READS + 1 && in_turn >= 2 * READS - 2,
              "%u headers, %u reads, %u changes of file between records (want 3, %u, >= %u)",
              headers, reads, in_turn, 2 * READS + 1, 2 * READS - 2);
    unlink(other);
}

/* A trace on a full file system: the records of the write that failed
 * are counted (trace_records_lost), so a trace that replays short says so
 * in the device's stats rather than nowhere. */
static void test_trace_full(const char *path)
{
    char mnt[160], trace[200];
    snprintf(mnt, sizeof(mnt), "%s/tracefull", dir);
    snprintf(trace, sizeof(trace), "%s/trace", mnt);
    if (mkdir(mnt, 0700) || mount("xd-unit-cache", mnt, "tmpfs", 0, "size=64k")) {
        fprintf(stderr, "skip test_trace_full: cannot mount a tmpfs: %s\n", strerror(errno));
        return;
    }
    CHECK(make_file(path, 4 * BLK, 1) == 0);
    const char *kv[] = {"trace", trace, NULL};
    struct xd_dev *a = open_dev(kv);
    struct xd_file *f = a ? open_file(a, path) : NULL;
    fill_fs(mnt);
    unsigned char buf[BLK];
    /* the header and 4095 reads fill the buffer; the 4096th read's record
     * makes it write them, which fails */
    for (unsigned i = 0; f && i < 4096; i++)
        CHECK(xd_read(a, f, buf, BLK, (uint64_t)i % 4 * BLK) == BLK);
    CHECK_MSG(a && stat_of(a, "trace_records") == 4096 && stat_of(a, "trace_records_lost") == 4096,
              "traced %lld, lost %lld", a ? (long long)stat_of(a, "trace_records") : -1,
              a ? (long long)stat_of(a, "trace_records_lost") : -1);
    xd_file_close(a, f);
    xd_close(a);
    CHECK(!umount(mnt));
    rmdir(mnt);
}

/* --- memory ---------------------------------------------------------------------- */

/* Read all of a file of n blocks through dev, one block at a time. */
static void read_all(struct xd_dev *dev, struct xd_file *f, unsigned n)
{
    unsigned char buf[BLK];
    for (unsigned i = 0; i < n; i++)
        CHECK(xd_read(dev, f, buf, BLK, (uint64_t)i * BLK) == BLK && buf[0] == pattern(i * BLK, 1));
}

/* What xd_reload does for one key: the device's config takes the new
 * value, then the chain applies it (xd_chain_reload, the old config as arg). */
static int reload_cache_size(struct xd_dev *dev, const char *size)
{
    struct xd_config *before = xd_config_dup(dev->cfg);
    int rc = xd_config_set(dev->cfg, "cache_size", size, "test", err, sizeof(err));
    if (!rc)
        rc = xd_chain_reload(dev->top, before);
    xd_config_free(before);
    return rc;
}

/* cache_size changes live: a file twice the cache misses on every pass;
 * grown past the file, the second pass all hits; shrunk, it holds no more
 * than the new size. Out of range is refused with one line. */
static void test_live_resize(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "256k", NULL};
    const unsigned n = 128; /* 512 KiB */
    CHECK(make_file(path, n * BLK, 1) == 0);
    struct xd_dev *dev;
    struct xd_file *f = open_dev_file(kv, path, &dev);
    if (!f)
        return;
    read_all(dev, f, n);
    read_all(dev, f, n);
    CHECK_MSG(stat_of(dev, "hits") == 0, "hits %lld in a cache half the file", (long long)stat_of(dev, "hits"));
    CHECK_MSG(reload_cache_size(dev, "1m") == 0, "grow: %s", err);
    CHECK(stat_of(dev, "capacity_bytes") == MiB);
    read_all(dev, f, n);
    int64_t hits = stat_of(dev, "hits");
    read_all(dev, f, n);
    CHECK_MSG(stat_of(dev, "hits") - hits == n, "second pass after growing: %lld hits of %u",
              (long long)(stat_of(dev, "hits") - hits), n);
    CHECK_MSG(reload_cache_size(dev, "64k") == 0, "shrink: %s", err);
    CHECK_MSG(stat_of(dev, "bytes_cached") <= 64 * 1024, "bytes_cached %lld after shrinking to 64k",
              (long long)stat_of(dev, "bytes_cached"));
    read_all(dev, f, n); /* data still right after the shrink */
    CHECK(stat_of(dev, "bytes_cached") <= 64 * 1024);
    CHECK(reload_cache_size(dev, "128t") != 0); /* above the schema's bound */
    CHECK(reload_cache_size(dev, "64m") == 0 && stat_of(dev, "capacity_bytes") == 64 * MiB);
    xd_file_close(dev, f);
    xd_close(dev);
}

static long resident_bytes(void)
{
    long size, resident;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp || fscanf(fp, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    if (fp)
        fclose(fp);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Fill a 64 MiB cache of 4 KiB blocks (reading 96 MiB); resident memory
 * may grow by the data plus the per-block overhead the layer documents. */
static void test_memory_bound(const char *path)
{
    static const char *const kv[] = {"enable_read_cache", "true", "cache_size", "64m",
                                     "cache_block_size", "4k", NULL};
    const uint64_t file = 96ull * MiB, cache = 64ull * MiB;
    unsigned char *buf = malloc(MiB);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)file) == 0); /* holes read as zeros, no disk */
    close(fd);
    memset(buf, 1, MiB);
    long before = resident_bytes();
    struct xd_dev *dev = open_dev(kv);
    struct xd_file *f = dev ? open_file(dev, path) : NULL;
    CHECK(f && before > 0);
    if (!f) {
        xd_close(dev);
        free(buf);
        return;
    }
    for (uint64_t off = 0; off < file; off += MiB)
        CHECK(xd_read(dev, f, buf, MiB, off) == MiB);
    long after = resident_bytes();
    int64_t blocks = (int64_t)(cache / BLK);
    int64_t per_block = stat_of(dev, "overhead_bytes_per_block");
    int64_t fixed = stat_of(dev, "overhead_bytes_fixed");
    int64_t bound = (int64_t)cache + blocks * per_block + fixed + 256 * 1024; /* + the stats JSON, stdio */
    CHECK(stat_of(dev, "bytes_cached") == (int64_t)cache);
    CHECK(stat_of(dev, "evictions") == (int64_t)((file - cache) / BLK));
    CHECK_MSG(after - before <= bound && after - before >= (long)cache - 4 * MiB,
              "resident grew by %ld bytes; bound %lld (%lld per block, %lld fixed)",
              after - before, (long long)bound, (long long)per_block, (long long)fixed);
    printf("memory: resident +%.1f MiB for a %llu MiB cache (bound %.1f MiB)\n",
           (after - before) / (double)MiB, (unsigned long long)(cache / MiB), bound / (double)MiB);
    xd_file_close(dev, f);
    xd_close(dev);
    free(buf);
}

int main(void)
{
    char path[128];
    if (!mkdtemp(dir))
        SKIP("cannot make a directory under /var/tmp");
    snprintf(path, sizeof(path), "%s/data", dir);
    test_lru_order();
    test_s3fifo();
    test_s3fifo_admission();
    test_seen_batch_counts_as_one_by_one();
    test_min_vs_lru();
    test_config(path);
    test_hits_and_ttl(path);
    test_write_around(path);
    test_trace_order(path);
    test_trace_full(path);
    test_reopen_and_invalidate(path);
    test_unlink_drops_blocks(path);
    test_stale_insert(path);
    test_write_back(path);
    test_failed_write_back();
    test_kill9_after_fsync(path);
    test_threads(path, false);
    test_threads(path, true);
    test_hit_takes_no_lock(path);
    test_hits_beside_writes(path);
    test_memory_bound(path);
    test_live_resize(path);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return check_result();
}
