/* compress.c - unit test of the compressed storage type through the public
 * API (xdevice.h): random unaligned I/O against a shadow copy with every
 * codec and several chunk sizes, reopening with another codec, the async
 * path, concurrent writers (threads and processes, each with its own device)
 * on the same chunks, kill -9 in the middle of writes, hostile containers
 * (offsets from docs/CONTAINER.md, computed here independently of
 * container.h), trim, space reclaim, and a map entry read while another
 * device's write of it is half done.
 *
 * Scratch files live in a mkdtemp directory under /var/tmp (a disk file
 * system: the container needs hole punching) and are removed at the end.
 * XD_SEED=<n> in the environment repeats a run, XD_CASES=<digits> runs only
 * those cases, XD_VERBOSE=1 prints more. Exit 0 pass, 1 fail, 77 skip.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"
#include "../../backends/core/crc32c.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

static char scratch[64]; /* "/var/tmp/xdtest-compress-XXXXXX" */

/* --- helpers ---------------------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void fill_random(struct rng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rnd(r);
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
}

/* Half random, half zeros in every 512 bytes: compresses to about half. */
static void fill_compressible(struct rng *r, uint8_t *p, size_t n, uint64_t phase)
{
    fill_random(r, p, n);
    for (size_t i = 0; i < n; i++)
        if ((phase + i) % 512 >= 256)
            p[i] = 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A unit (block or sector) tagged with (a, b): 16 bytes of tag, then a body
 * that is a function of the tag, half zeros so that it compresses. */
static void tagged_fill(uint8_t *p, size_t len, uint64_t a, uint64_t b)
{
    struct rng r = {a * 0x2545F4914F6CDD1Dull ^ (b + 0x1234567)};
    put64(p, a);
    put64(p + 8, b);
    fill_random(&r, p + 16, len - 16);
    for (size_t i = 16; i < len; i++)
        if (i % 512 >= 256)
            p[i] = 0;
}

/* 0: all zeros; 1: a whole tagged unit (*a, *b set); -1: anything else. */
static int tagged_classify(const uint8_t *p, size_t len, uint64_t *a, uint64_t *b)
{
    uint8_t want[4096];
    if (all_zero(p, len))
        return 0;
    *a = get64(p);
    *b = get64(p + 8);
    tagged_fill(want, len, *a, *b);
    return memcmp(want, p, len) ? -1 : 1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void scratch_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", scratch, name);
}

/* A compressed device with extra key/value pairs (NULL-terminated). */
static int open_dev_q(struct xd_dev **dev, const char *const *kv, unsigned queue, char *err)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? 0 : -ENOMEM;
    err[0] = 0;
    if (!rc)
        rc = xd_config_set(cfg, "storage_type", "compressed", "test", err, XD_ERRLEN);
    for (; !rc && kv && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], "test", err, XD_ERRLEN);
    if (!rc)
        rc = xd_open(dev, cfg, queue, err, XD_ERRLEN);
    xd_config_free(cfg);
    return rc;
}

static int open_dev(struct xd_dev **dev, const char *const *kv, char *err)
{
    return open_dev_q(dev, kv, 1, err);
}

/* The number at "k1": ... "kN": in json (each key searched after the
 * previous one), or -1. */
static long long json_num(const char *json, ...)
{
    va_list ap;
    const char *at = json;
    char pat[128];
    va_start(ap, json);
    for (const char *k; at && (k = va_arg(ap, const char *));) {
        snprintf(pat, sizeof(pat), "\"%s\":", k);
        at = strstr(at, pat);
        if (at)
            at += strlen(pat);
    }
    va_end(ap);
    if (!at || *at < '0' || *at > '9')
        return -1;
    return strtoll(at, NULL, 10);
}

static long long dev_stat(struct xd_dev *dev, const char *key)
{
    char *json = xd_stats_json(dev);
    long long v = json ? json_num(json, "layers", "compress", key, (const char *)NULL) : -1;
    free(json);
    return v;
}

static long long file_blocks(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_blocks;
}

/* Layout, from docs/CONTAINER.md. */
static uint64_t ctr_group(uint64_t g, uint64_t cs)
{
    return 4096 + g * (4096 + 2 * 128 * (cs + 4096));
}
static uint64_t ctr_entry(uint64_t n, uint64_t cs)
{
    return ctr_group(n / 128, cs) + (n % 128) * 32;
}
static uint64_t ctr_slot(uint64_t n, unsigned s, uint64_t cs)
{
    return ctr_group(n / 128, cs) + 4096 + (2 * (n % 128) + s) * (cs + 4096);
}

static int flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    int rc = fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1 ? 0 : -1;
    b ^= 0x5a;
    if (!rc)
        rc = pwrite(fd, &b, 1, (off_t)off) == 1 ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

static int raw_read(const char *path, void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    int rc = fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

static int raw_write(const char *path, const void *buf, size_t len, uint64_t off)
{
    int fd = open(path, O_RDWR);
    int rc = fd >= 0 && pwrite(fd, buf, len, (off_t)off) == (ssize_t)len ? 0 : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* An entry's crc as docs/CONTAINER.md gives it: crc32c of bytes 0 to 27,
 * seeded (version 2) with the crc32c of the chunk's number. */
static void cc_seal(uint8_t e[32], uint64_t chunk, bool seeded)
{
    uint8_t no[8];
    put64(no, chunk);
    put32(e + 28, xd_crc32c(seeded ? xd_crc32c(0, no, 8) : 0, e, 28));
}

/* Chunk's version-2 entry, pending: a first write under way. */
static void cc_pending_entry(uint8_t out[32], uint64_t chunk)
{
    memset(out, 0, 32);
    out[18] = 1;
    cc_seal(out, chunk, true);
}

/* --- 1. random unaligned I/O against a shadow, every codec and chunk size ---- */

enum { C1_SIZE = 8 * MIB, C1_MAXW = 200 * KIB, C1_MAXR = 300 * KIB };

static void case1_one(const char *codec, const char *level, const char *chunk, struct rng *r)
{
    const char *const kv[] = {"compression_type", codec, "compression_level", level,
                              "compress_chunk_size", chunk, NULL};
    char err[XD_ERRLEN], path[PATH_MAX], what[64];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *shadow = calloc(1, C1_SIZE), *buf = malloc(C1_MAXR), *back = malloc(C1_SIZE);
    int before = check_failures;

    snprintf(what, sizeof(what), "%s level %s chunk %s", codec, level, chunk);
    snprintf(path, sizeof(path), "%s/c1-%s-%s-%s.ctr", scratch, codec, level, chunk);
    int rc = open_dev(&dev, kv, err);
    CHECK_MSG(rc == 0, "%s: open: %d %s", what, rc, err);
    if (rc)
        goto out;
    rc = xd_file_open(dev, path, XD_OPEN_CREATE, C1_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s: file_open: %d %s", what, rc, err);
    if (rc)
        goto out_dev;
    CHECK_MSG(xd_file_size(dev, f) == (int64_t)C1_SIZE, "%s: size %lld", what,
              (long long)xd_file_size(dev, f));

    for (int batch = 0; batch < 4 && check_failures == before; batch++) {
        for (int w = 0; w < 12; w++) {
            uint64_t len = below(r, 4) ? 1 + below(r, C1_MAXW) : 1 + below(r, 4096);
            uint64_t off = below(r, C1_SIZE - len + 1);
            unsigned kind = (unsigned)below(r, 100);
            if (kind < 70)
                fill_compressible(r, buf, len, off);
            else if (kind < 85)
                memset(buf, 0, len);
            else
                fill_random(r, buf, len);
            ssize_t n = xd_write(dev, f, buf, len, off);
            CHECK_MSG(n == (ssize_t)len, "%s: write %llu at %llu: %zd", what,
                      (unsigned long long)len, (unsigned long long)off, n);
            memcpy(shadow + off, buf, len);
        }
        for (int k = 0; k < 12; k++) {
            uint64_t off = below(r, C1_SIZE + 64 * KIB), len = 1 + below(r, C1_MAXR);
            uint64_t want = off >= C1_SIZE ? 0 : (len < C1_SIZE - off ? len : C1_SIZE - off);
            memset(buf, 0xee, len);
            ssize_t n = xd_read(dev, f, buf, len, off);
            CHECK_MSG(n == (ssize_t)want, "%s: read %llu at %llu: %zd, want %llu", what,
                      (unsigned long long)len, (unsigned long long)off, n,
                      (unsigned long long)want);
            CHECK_MSG(n < 0 || !memcmp(buf, shadow + off, (size_t)(n < (ssize_t)want ? n : (ssize_t)want)),
                      "%s: batch %d: read %llu at %llu differs from what was written", what, batch,
                      (unsigned long long)len, (unsigned long long)off);
        }
    }
    /* past the end: short, then nothing */
    CHECK_MSG(xd_read(dev, f, buf, 200, C1_SIZE - 100) == 100 && !memcmp(buf, shadow + C1_SIZE - 100, 100),
              "%s: read across the end", what);
    CHECK_MSG(xd_read(dev, f, buf, 100, C1_SIZE) == 0, "%s: read at the end", what);
    CHECK_MSG(xd_read(dev, f, buf, 100, C1_SIZE + 12345) == 0, "%s: read past the end", what);
    CHECK_MSG(xd_read(dev, f, back, C1_SIZE, 0) == (ssize_t)C1_SIZE && !memcmp(back, shadow, C1_SIZE),
              "%s: the whole container differs from the shadow", what);
    CHECK_MSG(dev_stat(dev, "corrupt_chunks") == 0, "%s: corrupt chunks", what);
    CHECK_MSG(dev_stat(dev, "chunk_writes") > 0, "%s: no chunk writes counted", what);
    xd_file_close(dev, f);
    /* and again from a fresh device: what is on disk, not a cached chunk */
    xd_close(dev);
    dev = NULL;
    if (!open_dev(&dev, kv, err) && !xd_file_open(dev, path, 0, 0, &f, err, sizeof(err))) {
        memset(back, 0xee, C1_SIZE);
        CHECK_MSG(xd_read(dev, f, back, C1_SIZE, 0) == (ssize_t)C1_SIZE && !memcmp(back, shadow, C1_SIZE),
                  "%s: after reopening, the container differs from the shadow", what);
        xd_file_close(dev, f);
    } else {
        CHECK_MSG(0, "%s: reopen: %s", what, err);
    }
out_dev:
    xd_close(dev);
out:
    unlink(path);
    free(shadow);
    free(buf);
    free(back);
}

static void case1(struct rng *r)
{
    static const char *const codecs[][2] = {{"lz4", "1"},    {"lz4", "9"},  {"zstd", "3"},
                                            {"snappy", "1"}, {"gzip", "6"}, {"brotli", "4"}};
    static const char *const chunks[] = {"4k", "64k", "1m"};
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++)
        for (size_t k = 0; k < 3; k++) {
            double t0 = now_s();
            case1_one(codecs[c][0], codecs[c][1], chunks[k], r);
            if (getenv("XD_VERBOSE"))
                printf("    %s/%s %s: %.2f s\n", codecs[c][0], codecs[c][1], chunks[k], now_s() - t0);
        }
}

/* --- 2. reopen with another codec: every chunk keeps its own ------------------ */

enum { C2_CHUNK = 64 * KIB, C2_CHUNKS = 64, C2_SIZE = C2_CHUNK * C2_CHUNKS };

/* Open path on a new device with codec, write each [first, last] chunk with
 * kind ('c' compressible, 'z' zeros, 'r' random), close the file; the stats
 * after the close go to *json (malloc'd) when json is not NULL. */
static void case2_session(const char *path, const char *codec, uint8_t *shadow, int first,
                          int last, char kind, struct rng *r, char **json)
{
    const char *const kv[] = {"compression_type", codec, NULL};
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *back = malloc(C2_SIZE);
    int rc = open_dev(&dev, kv, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, C2_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s session: %d %s", codec, rc, err);
    if (!rc) {
        /* what earlier sessions wrote, with other codecs, reads back */
        CHECK_MSG(xd_read(dev, f, back, C2_SIZE, 0) == C2_SIZE && !memcmp(back, shadow, C2_SIZE),
                  "%s session: data written with other codecs differ", codec);
        for (int c = first; c <= last; c++) {
            uint8_t *p = shadow + (uint64_t)c * C2_CHUNK;
            if (kind == 'c')
                fill_compressible(r, p, C2_CHUNK, 0);
            else if (kind == 'z')
                memset(p, 0, C2_CHUNK);
            else
                fill_random(r, p, C2_CHUNK);
            CHECK_MSG(xd_write(dev, f, p, C2_CHUNK, (uint64_t)c * C2_CHUNK) == C2_CHUNK,
                      "%s session: write chunk %d", codec, c);
        }
        CHECK_MSG(xd_read(dev, f, back, C2_SIZE, 0) == C2_SIZE && !memcmp(back, shadow, C2_SIZE),
                  "%s session: read back", codec);
        xd_file_close(dev, f);
        if (json)
            *json = xd_stats_json(dev);
    }
    xd_close(dev);
    free(back);
}

static void case2(struct rng *r)
{
    char path[PATH_MAX];
    uint8_t *shadow = calloc(1, C2_SIZE);
    char *json = NULL;
    scratch_path(path, sizeof(path), "c2.ctr");
    case2_session(path, "lz4", shadow, 0, 63, 'c', r, NULL);
    case2_session(path, "zstd", shadow, 0, 15, 'c', r, NULL);
    case2_session(path, "gzip", shadow, 16, 19, 'c', r, NULL);
    case2_session(path, "gzip", shadow, 20, 20, 'z', r, NULL);
    case2_session(path, "snappy", shadow, 21, 22, 'c', r, NULL);
    case2_session(path, "brotli", shadow, 23, 23, 'c', r, NULL);
    case2_session(path, "brotli", shadow, 24, 24, 'r', r, &json);
    /* a last session with yet another codec only reads */
    case2_session(path, "lz4", shadow, 1, 0, 'c', r, NULL);
    static const struct { const char *algo; long long want; } live[] = {
        {"raw", 1}, {"zero", 1}, {"lz4", 39}, {"zstd", 16}, {"snappy", 2}, {"gzip", 4}, {"brotli", 1},
    };
    CHECK_MSG(json != NULL, "no stats");
    for (size_t i = 0; json && i < sizeof(live) / sizeof(live[0]); i++) {
        long long n = json_num(json, "layers", "compress", "live_chunks", live[i].algo, (const char *)NULL);
        CHECK_MSG(n == live[i].want, "live_chunks.%s = %lld, want %lld (stats %s)", live[i].algo, n,
                  live[i].want, json);
    }
    if (json && json_num(json, "layers", "compress", "stored_bytes", (const char *)NULL) <= 0)
        CHECK_MSG(0, "stored_bytes missing: %s", json);
    free(json);
    free(shadow);
    unlink(path);
}

/* --- 3. async: requests in flight on the worker pool --------------------------- */

enum { C3_CHUNK = 64 * KIB, C3_CHUNKS = 64, C3_SIZE = C3_CHUNK * C3_CHUNKS, C3_DEPTH = 32 };

/* Submit reqs[0..n), commit, and reap until every request that was queued
 * came back, each once. A request may complete inline (XD_DONE: the layer
 * runs cheap ones at once); returns how many were queued. */
static int case3_run(struct xd_dev *dev, struct xd_req *reqs, int n)
{
    struct xd_req *done[C3_DEPTH];
    bool pending[C3_DEPTH] = {false};
    int queued = 0, got = 0;
    for (int i = 0; i < n; i++) {
        int rc = xd_submit(dev, &reqs[i]);
        CHECK_MSG(rc == XD_QUEUED || rc == XD_DONE, "submit %d: %d", i, rc);
        pending[i] = rc == XD_QUEUED;
        queued += rc == XD_QUEUED;
    }
    int rc = xd_commit(dev);
    CHECK_MSG(rc >= 0, "commit: %d", rc);
    double t0 = now_s();
    while (got < queued && now_s() - t0 < 10) {
        struct timespec ts = {1, 0};
        int k = xd_reap(dev, done, 1, C3_DEPTH, &ts);
        CHECK_MSG(k >= 0, "reap: %d", k);
        if (k < 0)
            break;
        for (int i = 0; i < k; i++) {
            long idx = done[i] - reqs;
            CHECK_MSG(idx >= 0 && idx < n && pending[idx],
                      "reap returned request %ld, which is not outstanding", idx);
            if (idx >= 0 && idx < n) {
                pending[idx] = false;
                CHECK_MSG(done[i]->user == (void *)(intptr_t)(idx + 1), "user cookie changed");
            }
        }
        got += k;
    }
    CHECK_MSG(got == queued, "reaped %d of %d queued", got, queued);
    return queued;
}

static void case3(struct rng *r)
{
    const char *const kv[] = {"async", "io_uring", NULL};
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct xd_req reqs[C3_DEPTH], *done[C3_DEPTH];
    uint8_t *shadow = calloc(1, C3_SIZE), *back = malloc(C3_SIZE);
    uint8_t *bufs = malloc((size_t)C3_DEPTH * C3_CHUNK);
    scratch_path(path, sizeof(path), "c3.ctr");

    int rc = open_dev_q(&dev, kv, C3_DEPTH, err);
    CHECK_MSG(rc == 0, "open async=io_uring: %d %s", rc, err);
    if (rc)
        goto out;
    CHECK_MSG(xd_dev_caps(dev) & XD_CAP_ASYNC, "XD_CAP_ASYNC not set: caps %#x", xd_dev_caps(dev));
    CHECK_MSG(xd_dev_caps(dev) & XD_CAP_TRIM, "XD_CAP_TRIM not set: caps %#x", xd_dev_caps(dev));
    rc = xd_file_open(dev, path, XD_OPEN_CREATE, C3_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "file_open: %d %s", rc, err);
    if (rc)
        goto out_dev;

    /* nothing outstanding: a reap with a timeout comes back at once with 0 */
    struct timespec ts = {0, 50 * 1000 * 1000};
    double t0 = now_s();
    CHECK_MSG(xd_reap(dev, done, 1, C3_DEPTH, &ts) == 0, "reap with nothing outstanding");
    CHECK_MSG(xd_reap(dev, done, 0, C3_DEPTH, &ts) == 0, "reap (min 0) with nothing outstanding");
    CHECK_MSG(now_s() - t0 < 1.0, "reap with nothing outstanding waited %.2f s", now_s() - t0);

    fill_compressible(r, shadow, C3_SIZE, 0);
    CHECK_MSG(xd_write(dev, f, shadow, C3_SIZE, 0) == C3_SIZE, "synchronous fill");

    /* 32 requests, one per chunk: writes (whole, partial, unaligned) and reads */
    uint8_t *expect = malloc(C3_SIZE);
    memcpy(expect, shadow, C3_SIZE);
    for (int i = 0; i < C3_DEPTH; i++) {
        uint64_t chunk = (uint64_t)i * 2 + (i & 1); /* distinct chunks, some neighbours */
        uint8_t *b = bufs + (size_t)i * C3_CHUNK;
        reqs[i] = (struct xd_req){.file = f, .buf = b, .user = (void *)(intptr_t)(i + 1)};
        if (i % 3 == 0) {
            reqs[i].op = XD_OP_READ;
            reqs[i].off = chunk * C3_CHUNK + below(r, 1000);
            reqs[i].len = 1 + below(r, C3_CHUNK - 1000);
            memset(b, 0xee, reqs[i].len);
        } else {
            reqs[i].op = XD_OP_WRITE;
            if (i % 3 == 1) {
                reqs[i].off = chunk * C3_CHUNK;
                reqs[i].len = C3_CHUNK;
            } else {
                reqs[i].off = chunk * C3_CHUNK + 1 + below(r, 30000);
                reqs[i].len = 1 + below(r, 30000);
            }
            fill_compressible(r, b, reqs[i].len, reqs[i].off);
            memcpy(expect + reqs[i].off, b, reqs[i].len);
        }
    }
    int queued = case3_run(dev, reqs, C3_DEPTH);
    /* writes compress a chunk: far above what the layer runs inline */
    CHECK_MSG(queued >= C3_DEPTH / 2, "only %d of %d requests were queued", queued, C3_DEPTH);
    for (int i = 0; i < C3_DEPTH; i++) {
        CHECK_MSG(reqs[i].result == (int64_t)reqs[i].len, "request %d (%s %llu at %llu): result %lld", i,
                  reqs[i].op == XD_OP_READ ? "read" : "write", (unsigned long long)reqs[i].len,
                  (unsigned long long)reqs[i].off, (long long)reqs[i].result);
        if (reqs[i].op == XD_OP_READ)
            CHECK_MSG(!memcmp(reqs[i].buf, shadow + reqs[i].off, reqs[i].len), "async read %d differs", i);
    }
    memcpy(shadow, expect, C3_SIZE);
    CHECK_MSG(xd_read(dev, f, back, C3_SIZE, 0) == C3_SIZE && !memcmp(back, shadow, C3_SIZE),
              "after the async writes the container differs");

    /* trims, an fsync and reads through the queue */
    int n = 0;
    for (int i = 0; i < 4; i++, n++) {
        uint64_t off = (uint64_t)(40 + i) * C3_CHUNK + (i & 1 ? 100 : 0);
        uint64_t len = i & 1 ? 5000 : C3_CHUNK;
        reqs[n] = (struct xd_req){.op = XD_OP_TRIM, .file = f, .off = off, .len = len,
                                  .user = (void *)(intptr_t)(n + 1)};
        memset(shadow + off, 0, len);
    }
    reqs[n] = (struct xd_req){.op = XD_OP_FSYNC, .file = f, .user = (void *)(intptr_t)(n + 1)};
    n++;
    for (int i = 0; i < 8; i++, n++)
        reqs[n] = (struct xd_req){.op = XD_OP_READ, .file = f, .buf = bufs + (size_t)n * C3_CHUNK,
                                  .off = (uint64_t)(50 + i) * C3_CHUNK + 7, .len = C3_CHUNK - 7,
                                  .user = (void *)(intptr_t)(n + 1)};
    case3_run(dev, reqs, n);
    for (int i = 0; i < n; i++) {
        int64_t want = reqs[i].op == XD_OP_FSYNC ? 0 : (int64_t)reqs[i].len;
        CHECK_MSG(reqs[i].result == want || (reqs[i].op == XD_OP_TRIM && reqs[i].result >= 0),
                  "request %d (op %d): result %lld", i, reqs[i].op, (long long)reqs[i].result);
        if (reqs[i].op == XD_OP_READ)
            CHECK_MSG(!memcmp(reqs[i].buf, shadow + reqs[i].off, reqs[i].len), "async read %d differs", i);
    }
    CHECK_MSG(xd_read(dev, f, back, C3_SIZE, 0) == C3_SIZE && !memcmp(back, shadow, C3_SIZE),
              "after the async trims the container differs");
    t0 = now_s();
    CHECK_MSG(xd_reap(dev, done, 1, C3_DEPTH, &ts) == 0, "reap after everything was reaped");
    CHECK_MSG(now_s() - t0 < 1.0, "reap with nothing outstanding waited %.2f s", now_s() - t0);
    free(expect);
    xd_file_close(dev, f);
out_dev:
    xd_close(dev);
out:
    unlink(path);
    free(shadow);
    free(back);
    free(bufs);
}

/* --- 4. concurrent writers on the same chunks, each with its own device ------- */

enum { C4_BLOCK = 4096, C4_BLOCKS = 256, C4_SIZE = C4_BLOCK * C4_BLOCKS, C4_ITERS = 8 };

#define C4_TAG(block, owner) (0xB10C000000000000ull | (uint64_t)(owner) << 32 | (block))

struct c4_worker {
    const char *path;
    int k, n;
    uint64_t seed;
    int failures;
    pthread_t th;
};

#define WCHECK(w, cond, ...)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: writer %d: check failed: %s: ", __FILE__, __LINE__, (w)->k, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            (w)->failures++;                                                    \
        }                                                                       \
    } while (0)

static void *c4_run(void *arg)
{
    struct c4_worker *w = arg;
    const char *const kv[] = {"compress_chunk_size", "64k", NULL};
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct rng r = {w->seed};
    uint8_t buf[C4_BLOCK], want[C4_BLOCK];
    int mine[C4_BLOCKS], nmine = 0;
    int rc = open_dev(&dev, kv, err);
    if (!rc)
        rc = xd_file_open(dev, w->path, XD_OPEN_CREATE, C4_SIZE, &f, err, sizeof(err));
    WCHECK(w, rc == 0, "open: %d %s", rc, err);
    if (rc) {
        xd_close(dev);
        return NULL;
    }
    for (int b = w->k; b < C4_BLOCKS; b += w->n)
        mine[nmine++] = b;
    for (int it = 1; it <= C4_ITERS && !w->failures; it++) {
        for (int i = nmine - 1; i > 0; i--) { /* a new random order each time */
            int j = (int)below(&r, (uint64_t)i + 1), t = mine[i];
            mine[i] = mine[j];
            mine[j] = t;
        }
        for (int i = 0; i < nmine && !w->failures; i++) {
            int b = mine[i];
            tagged_fill(buf, C4_BLOCK, C4_TAG(b, w->k), (uint64_t)it);
            ssize_t n = xd_write(dev, f, buf, C4_BLOCK, (uint64_t)b * C4_BLOCK);
            WCHECK(w, n == C4_BLOCK, "write block %d: %zd", b, n);
            /* our own block: exactly what we wrote */
            n = xd_read(dev, f, want, C4_BLOCK, (uint64_t)b * C4_BLOCK);
            WCHECK(w, n == C4_BLOCK && !memcmp(want, buf, C4_BLOCK),
                   "block %d: read after write: %zd, differs: %d", b, n, n == C4_BLOCK);
            /* someone else's: zeros or one of its versions, whole */
            int o = (int)below(&r, C4_BLOCKS);
            uint64_t a = 0, g = 0;
            n = xd_read(dev, f, want, C4_BLOCK, (uint64_t)o * C4_BLOCK);
            int kind = n == C4_BLOCK ? tagged_classify(want, C4_BLOCK, &a, &g) : -2;
            WCHECK(w, kind == 0 || (kind == 1 && a == C4_TAG(o, o % w->n) && g >= 1 && g <= C4_ITERS),
                   "block %d of writer %d: read %zd, kind %d, tag %#llx gen %llu", o, o % w->n, n, kind,
                   (unsigned long long)a, (unsigned long long)g);
        }
    }
    WCHECK(w, dev_stat(dev, "corrupt_chunks") == 0, "corrupt chunks reported");
    xd_file_close(dev, f);
    xd_close(dev);
    return NULL;
}

/* Every block holds its writer's last version. */
static void c4_verify(const char *path, int n, const char *what)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *back = malloc(C4_SIZE), want[C4_BLOCK];
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s: verify open: %d %s", what, rc, err);
    if (!rc) {
        CHECK_MSG(xd_read(dev, f, back, C4_SIZE, 0) == C4_SIZE, "%s: read", what);
        int lost = 0;
        for (int b = 0; b < C4_BLOCKS; b++) {
            tagged_fill(want, C4_BLOCK, C4_TAG(b, b % n), C4_ITERS);
            if (memcmp(want, back + (size_t)b * C4_BLOCK, C4_BLOCK)) {
                uint64_t a = 0, g = 0;
                int kind = tagged_classify(back + (size_t)b * C4_BLOCK, C4_BLOCK, &a, &g);
                if (lost++ < 5)
                    fprintf(stderr, "%s: block %d: kind %d tag %#llx version %llu, want version %d\n",
                            what, b, kind, (unsigned long long)a, (unsigned long long)g, C4_ITERS);
            }
        }
        CHECK_MSG(lost == 0, "%s: %d of %d blocks lost their last update", what, lost, C4_BLOCKS);
        xd_file_close(dev, f);
    }
    xd_close(dev);
    free(back);
}

/* Whole-chunk versions, one writer and one reader on their own devices: a
 * read must return exactly one version, never a mix or bytes of a slot
 * being punched or rewritten while it was decoded. The writer cycles through
 * C4R_VERSIONS prepared chunks; odd ones are incompressible (stored raw),
 * even ones compress (lz4). */
enum { C4R_CHUNK = 1 * MIB, C4R_SIZE = 4 * MIB, C4R_VERSIONS = 8 };

static uint8_t *c4r_version[C4R_VERSIONS];

static void c4r_prepare(void)
{
    for (uint64_t v = 0; v < C4R_VERSIONS; v++) {
        uint8_t *p = c4r_version[v] = malloc(C4R_CHUNK);
        for (uint64_t b = 0; b < C4R_CHUNK / 4096; b++) {
            uint8_t *q = p + b * 4096;
            tagged_fill(q, 4096, 0xC4C4000000000000ull | b, v);
            if (v & 1) {
                struct rng r = {v * 1000003 + b};
                fill_random(&r, q + 16, 4096 - 16);
            }
        }
    }
}

struct c4r_shared {
    const char *path;
    atomic_bool stop;
    atomic_ullong written;
    int failures;
};

/* A device of its own with chunk_size chunks, and the container at path
 * opened on it (a thread racing another device). */
static bool open_own(const char *path, const char *chunk_size, struct xd_dev **dev,
                     struct xd_file **f, char *err)
{
    const char *const kv[] = {"compress_chunk_size", chunk_size, NULL};
    *dev = NULL;
    *f = NULL;
    return !open_dev(dev, kv, err) && !xd_file_open(*dev, path, 0, 0, f, err, XD_ERRLEN);
}

static void *c4r_writer(void *arg)
{
    struct c4r_shared *sh = arg;
    char err[XD_ERRLEN];
    struct xd_dev *dev;
    struct xd_file *f;
    if (open_own(sh->path, "1m", &dev, &f, err)) {
        for (uint64_t n = 1; !atomic_load(&sh->stop); n++) {
            if (xd_write(dev, f, c4r_version[n % C4R_VERSIONS], C4R_CHUNK, 0) != C4R_CHUNK) {
                fprintf(stderr, "race writer: write %llu failed\n", (unsigned long long)n);
                sh->failures++;
                break;
            }
            atomic_store(&sh->written, n);
        }
        xd_file_close(dev, f);
    } else {
        fprintf(stderr, "race writer: %s\n", err);
        sh->failures++;
    }
    xd_close(dev);
    return NULL;
}

static void c4_race(void)
{
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct c4r_shared sh = {.path = path};
    uint8_t *buf = malloc(C4R_CHUNK);
    const char *const kv[] = {"compress_chunk_size", "1m", NULL};
    uint64_t reads = 0, changes = 0, last = 0;
    int bad = 0;
    pthread_t th;
    c4r_prepare();
    scratch_path(path, sizeof(path), "c4-race.ctr");
    int rc = open_dev(&dev, kv, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, C4R_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "race: open: %d %s", rc, err);
    if (rc)
        goto out;
    CHECK(xd_write(dev, f, c4r_version[0], C4R_CHUNK, 0) == C4R_CHUNK);
    pthread_create(&th, NULL, c4r_writer, &sh);
    CHECK(xd_write(dev, f, c4r_version[0], C4R_CHUNK, C4R_CHUNK) == C4R_CHUNK);
    for (double t0 = now_s(); now_s() - t0 < 0.8 && bad < 3; reads++) {
        /* a read of another chunk in between: the next one decodes again
         * rather than reusing the chunk decoded last */
        CHECK(xd_read(dev, f, buf, 4096, C4R_CHUNK) == 4096 && !memcmp(buf, c4r_version[0], 4096));
        ssize_t n = xd_read(dev, f, buf, C4R_CHUNK, 0);
        uint64_t v = get64(buf + 8);
        if (n != C4R_CHUNK || v >= C4R_VERSIONS || memcmp(buf, c4r_version[v], C4R_CHUNK)) {
            size_t at = 0;
            while (n == C4R_CHUNK && v < C4R_VERSIONS && at < C4R_CHUNK && buf[at] == c4r_version[v][at])
                at++;
            fprintf(stderr, "race: read %zd: version %llu, first difference at byte %zu\n", n,
                    (unsigned long long)v, at);
            bad++;
            continue;
        }
        changes += v != last;
        last = v;
    }
    atomic_store(&sh.stop, true);
    pthread_join(th, NULL);
    CHECK_MSG(bad == 0 && sh.failures == 0, "race: %d of %llu reads returned a mix of versions or failed",
              bad, (unsigned long long)reads);
    if (getenv("XD_VERBOSE"))
        printf("    race: %llu reads, %llu version changes seen, %llu writes\n", (unsigned long long)reads,
               (unsigned long long)changes, (unsigned long long)atomic_load(&sh.written));
    CHECK_MSG(dev_stat(dev, "corrupt_chunks") == 0, "race: corrupt chunks reported");
    xd_file_close(dev, f);
out:
    xd_close(dev);
    unlink(path);
    free(buf);
    for (int v = 0; v < C4R_VERSIONS; v++)
        free(c4r_version[v]);
}

static void case4(struct rng *r)
{
    char path[PATH_MAX];
    enum { THREADS = 4, PROCS = 2 };
    struct c4_worker w[THREADS];

    scratch_path(path, sizeof(path), "c4-threads.ctr");
    for (int k = 0; k < THREADS; k++) {
        w[k] = (struct c4_worker){.path = path, .k = k, .n = THREADS, .seed = rnd(r)};
        pthread_create(&w[k].th, NULL, c4_run, &w[k]);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(w[k].th, NULL);
        check_failures += w[k].failures;
    }
    c4_verify(path, THREADS, "threads");
    unlink(path);

    scratch_path(path, sizeof(path), "c4-procs.ctr");
    pid_t pids[PROCS];
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < PROCS; k++) {
        struct c4_worker pw = {.path = path, .k = k, .n = PROCS, .seed = rnd(r)};
        pids[k] = fork();
        if (pids[k] == 0) {
            c4_run(&pw);
            fflush(stderr);
            _exit(pw.failures ? 1 : 0);
        }
        CHECK_MSG(pids[k] > 0, "fork: %s", strerror(errno));
    }
    for (int k = 0; k < PROCS; k++) {
        int status = 0;
        if (pids[k] > 0 && waitpid(pids[k], &status, 0) == pids[k])
            CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer process %d: status %#x", k, status);
    }
    c4_verify(path, PROCS, "processes");
    unlink(path);

    c4_race();
}

/* --- 5. kill -9 in the middle of writes ------------------------------------------ */

enum { C5_CHUNK = 64 * KIB, C5_SIZE = 2 * MIB, C5_SECT = 512, C5_NSECT = C5_SIZE / C5_SECT,
       C5_ROUNDS = 5, C5_GEN_STRIDE = 1000000 };

#define C5_TAG(sector) (0x5EC7000000000000ull | (sector))

/* The write of one generation: whole chunks or a sector-aligned range that
 * may cross chunks. The child and the parent's replay call it alike. */
static void c5_op(struct rng *r, uint64_t *off, uint64_t *len)
{
    if (below(r, 10) < 3) {
        *off = below(r, C5_SIZE / C5_CHUNK) * C5_CHUNK;
        *len = C5_CHUNK;
    } else {
        uint64_t s = below(r, C5_NSECT), n = 1 + below(r, 256);
        if (s + n > C5_NSECT)
            n = C5_NSECT - s;
        *off = s * C5_SECT;
        *len = n * C5_SECT;
    }
}

static void c5_fill(uint8_t *buf, uint64_t off, uint64_t len, uint64_t gen)
{
    for (uint64_t at = 0; at < len; at += C5_SECT)
        tagged_fill(buf + at, C5_SECT, C5_TAG((off + at) / C5_SECT), gen);
}

/* The child: write, and after every 8 writes flush and report the last
 * generation the flush covers. Never returns. */
static void c5_child(const char *path, uint64_t seed, uint64_t base, int out)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct rng r = {seed};
    static uint8_t buf[128 * KIB];
    if (open_dev(&dev, NULL, err) || xd_file_open(dev, path, 0, 0, &f, err, sizeof(err))) {
        fprintf(stderr, "crash child: %s\n", err);
        _exit(2);
    }
    for (uint64_t j = 0;; j++) {
        uint64_t off, len, gen = base + j;
        c5_op(&r, &off, &len);
        c5_fill(buf, off, len, gen);
        ssize_t n = xd_write(dev, f, buf, len, off);
        if (n != (ssize_t)len) {
            fprintf(stderr, "crash child: write gen %llu: %zd\n", (unsigned long long)gen, n);
            _exit(3);
        }
        if ((j + 1) % 8 == 0) {
            int rc = xd_flush(dev, f, 0);
            if (rc) {
                fprintf(stderr, "crash child: flush: %d\n", rc);
                _exit(4);
            }
            if (write(out, &gen, sizeof(gen)) != sizeof(gen))
                _exit(5);
        }
    }
}

static void case5_stale(struct rng *r);

static void case5(struct rng *r)
{
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint64_t *baseline = calloc(C5_NSECT, sizeof(uint64_t)); /* gen seen per sector; 0 zeros */
    uint64_t *durable = calloc(C5_NSECT, sizeof(uint64_t));
    uint8_t *back = malloc(C5_SIZE);
    uint64_t total_writes = 0, recovered = 0, newer_total = 0;
    int rounds_with_flush = 0;
    scratch_path(path, sizeof(path), "c5.ctr");

    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, C5_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "create: %d %s", rc, err);
    xd_file_close(dev, f);
    xd_close(dev);
    if (rc)
        goto out;

    for (int round = 0; round < C5_ROUNDS; round++) {
        uint64_t base = (uint64_t)(round + 1) * C5_GEN_STRIDE, seed = rnd(r);
        int fds[2];
        if (pipe(fds)) {
            CHECK_MSG(0, "pipe: %s", strerror(errno));
            break;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            c5_child(path, seed, base, fds[1]);
        }
        close(fds[1]);
        if (pid < 0) {
            CHECK_MSG(0, "fork: %s", strerror(errno));
            close(fds[0]);
            break;
        }
        usleep((useconds_t)(50000 + below(r, 250001)));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "round %d: the child ended by itself: status %#x", round, status);
        uint64_t g, flushed = 0; /* 0: no flush reported */
        while (read(fds[0], &g, sizeof(g)) == sizeof(g))
            flushed = g;
        close(fds[0]);
        rounds_with_flush += flushed != 0;

        /* reopen: map intact, every chunk reads (no EIO) */
        rc = open_dev(&dev, NULL, err);
        if (!rc)
            rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
        CHECK_MSG(rc == 0, "round %d: reopen after kill -9: %d %s", round, rc, err);
        if (rc) {
            xd_close(dev);
            break;
        }
        long long rec = dev_stat(dev, "stale_slots_recovered");
        CHECK_MSG(rec >= 0, "round %d: stale_slots_recovered not in the stats", round);
        recovered += rec > 0 ? (uint64_t)rec : 0;
        for (uint64_t off = 0; off < C5_SIZE; off += C5_CHUNK) {
            ssize_t n = xd_read(dev, f, back + off, C5_CHUNK, off);
            CHECK_MSG(n == C5_CHUNK, "round %d: read chunk %llu after kill -9: %zd", round,
                      (unsigned long long)(off / C5_CHUNK), n);
            if (n != C5_CHUNK)
                memset(back + off, 0xee, C5_CHUNK);
        }
        CHECK_MSG(dev_stat(dev, "corrupt_chunks") == 0, "round %d: corrupt chunks", round);
        xd_file_close(dev, f);
        xd_close(dev);

        /* what each sector holds */
        uint64_t *seen = calloc(C5_NSECT, sizeof(uint64_t)), top = flushed;
        int garbage = 0;
        for (uint64_t s = 0; s < C5_NSECT; s++) {
            uint64_t a = 0, gen = 0;
            int kind = tagged_classify(back + s * C5_SECT, C5_SECT, &a, &gen);
            if (kind < 0 || (kind == 1 && a != C5_TAG(s))) {
                if (garbage++ < 5)
                    fprintf(stderr, "round %d: sector %llu holds data never written to it (kind %d tag %#llx)\n",
                            round, (unsigned long long)s, kind, (unsigned long long)a);
                seen[s] = UINT64_MAX;
                continue;
            }
            seen[s] = kind ? gen : 0;
            if (seen[s] >= base && seen[s] > top)
                top = seen[s];
        }
        CHECK_MSG(garbage == 0, "round %d: %d sectors hold data never written to them", round, garbage);

        /* replay the child's writes up to the newest generation seen */
        uint64_t count = top >= base ? top - base + 1 : 0;
        uint64_t (*ops)[2] = calloc(count ? count : 1, sizeof(*ops));
        struct rng rr = {seed};
        for (uint64_t j = 0; j < count; j++)
            c5_op(&rr, &ops[j][0], &ops[j][1]);
        memcpy(durable, baseline, C5_NSECT * sizeof(uint64_t));
        for (uint64_t j = 0; flushed && base + j <= flushed; j++)
            for (uint64_t s = ops[j][0] / C5_SECT; s < (ops[j][0] + ops[j][1]) / C5_SECT; s++)
                durable[s] = base + j;
        int bad = 0, newer = 0;
        for (uint64_t s = 0; s < C5_NSECT; s++) {
            uint64_t gen = seen[s];
            bool ok = gen == durable[s];
            if (!ok && gen != UINT64_MAX && gen >= base && gen > flushed && gen <= top) {
                const uint64_t *op = ops[gen - base];
                ok = s >= op[0] / C5_SECT && s < (op[0] + op[1]) / C5_SECT;
                newer += ok;
            }
            if (!ok && gen != UINT64_MAX && bad++ < 5)
                fprintf(stderr, "round %d: sector %llu holds generation %llu; durable %llu, flushed up to %llu\n",
                        round, (unsigned long long)s, (unsigned long long)gen,
                        (unsigned long long)durable[s], (unsigned long long)flushed);
            baseline[s] = gen == UINT64_MAX ? 0 : gen;
        }
        CHECK_MSG(bad == 0, "round %d: %d sectors lost flushed data or hold a version not written there",
                  round, bad);
        if (getenv("XD_VERBOSE"))
            printf("    round %d: %llu writes seen, flushed up to +%lld, %d sectors newer than the flush, %lld stale slots recovered\n",
                   round, (unsigned long long)count, flushed ? (long long)(flushed - base) : -1LL,
                   newer, rec);
        total_writes += count;
        newer_total += (uint64_t)newer;
        free(ops);
        free(seen);
    }
    CHECK_MSG(rounds_with_flush > 0, "no round got as far as a flush: the test checked nothing");
    printf("    crash: %d rounds, %llu writes, %llu sectors newer than the last flush, %llu stale slots recovered\n",
           C5_ROUNDS, (unsigned long long)total_writes, (unsigned long long)newer_total,
           (unsigned long long)recovered);
out:
    unlink(path);
    case5_stale(r);
    free(baseline);
    free(durable);
    free(back);
}

/* What a writer killed between writing a slot and flipping the entry leaves
 * behind, made by hand: bytes in a slot the map does not name. A second
 * opener must leave them (someone else has the container open); the next
 * sole opener punches them, next to data entries and next to zero ones,
 * in a group of chunks otherwise all holes (the scan skips such groups,
 * map page and all), and next to a pending entry (a first writer killed
 * after writing its slot). The container spans three groups of 128
 * chunks: data in the first and the third, the second a hole. */
static void case5_stale(struct rng *r)
{
    enum { CS = 64 * KIB, GROUP = 128, SIZE = 3 * GROUP * CS, FAR = 2 * GROUP + 3 };
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL, *other = NULL;
    struct xd_file *f = NULL, *fo = NULL;
    uint8_t *shadow = calloc(1, SIZE), *back = malloc(SIZE), *junk = malloc(CS), ent[32];
    scratch_path(path, sizeof(path), "c5-stale.ctr");
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "stale: create: %d %s", rc, err);
    if (rc)
        goto out;
    fill_compressible(r, shadow, 5 * CS, 0);
    CHECK(xd_write(dev, f, shadow, 5 * CS, 0) == 5 * CS);
    CHECK(xd_trim(dev, f, CS, 2 * CS) == 0); /* chunks 2 and 4: zero entries */
    CHECK(xd_trim(dev, f, CS, 4 * CS) == 0);
    memset(shadow + 2 * CS, 0, CS);
    memset(shadow + 4 * CS, 0, CS);
    fill_compressible(r, shadow + (size_t)FAR * CS, CS, 0);
    CHECK(xd_write(dev, f, shadow + (size_t)FAR * CS, CS, (uint64_t)FAR * CS) == CS);
    xd_file_close(dev, f);
    xd_close(dev);
    dev = NULL;
    long long clean = file_blocks(path);

    /* someone has it open from here on (it was the sole opener: nothing to punch) */
    rc = open_dev(&other, NULL, err);
    if (!rc)
        rc = xd_file_open(other, path, 0, 0, &fo, err, sizeof(err));
    CHECK_MSG(rc == 0, "stale: first opener: %d %s", rc, err);
    CHECK_MSG(rc || dev_stat(other, "stale_slots_recovered") == 0, "stale: a clean container had stale slots");

    /* chunk 1 (data): the free slot; chunk 2 (zero): the slot its next
     * writer would use; chunk 4 (zero): the slot its entry names; chunks 6
     * and GROUP + 5 (never written, an all-zero entry, the latter in the
     * group of holes): slot 0, where its first writer was killed */
    static const struct { int chunk; bool named; } stale[] = {
        {1, false}, {2, false}, {4, true}, {6, true}, {GROUP + 5, true}};
    enum { NSTALE = sizeof(stale) / sizeof(stale[0]) };
    for (size_t i = 0; i < NSTALE; i++) {
        CHECK(raw_read(path, ent, 32, ctr_entry(stale[i].chunk, CS)) == 0);
        unsigned slot = stale[i].named ? ent[17] : !ent[17];
        fill_random(r, junk, CS);
        CHECK(raw_write(path, junk, CS, ctr_slot(stale[i].chunk, slot, CS)) == 0);
    }
    /* chunk 7 (never written): a first writer killed after writing slot 0,
     * its entry still pending, the slot a valid version of the chunk */
    cc_pending_entry(ent, 7);
    CHECK(raw_write(path, ent, 32, ctr_entry(7, CS)) == 0);
    fill_random(r, junk, CS);
    memset(junk, 0, 32);
    put32(junk, 0x4b434458u); /* "XDCK" */
    junk[4] = 0;              /* raw */
    put32(junk + 8, CS);
    put64(junk + 16, 7);
    put64(junk + 24, 1);
    CHECK(raw_write(path, junk, CS, ctr_slot(7, 0, CS)) == 0);
    long long dirty = file_blocks(path);
    CHECK_MSG(dirty - clean >= (NSTALE + 1) * CS / 512, "stale: %lld -> %lld blocks", clean, dirty);

    /* not the only user: nothing is punched, everything reads */
    rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "stale: second opener: %d %s", rc, err);
    if (!rc) {
        CHECK_MSG(dev_stat(dev, "stale_slots_recovered") == 0, "stale: a second opener punched %lld slots",
                  dev_stat(dev, "stale_slots_recovered"));
        CHECK_MSG(xd_read(dev, f, back, SIZE, 0) == SIZE && !memcmp(back, shadow, SIZE),
                  "stale: data differ with stale slots present");
        xd_file_close(dev, f);
    }
    xd_close(dev);
    dev = NULL;
    xd_file_close(other, fo);
    xd_close(other);

    /* the sole opener punches all five, and counts the four chunks of data */
    rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "stale: sole opener: %d %s", rc, err);
    if (!rc) {
        long long rec = dev_stat(dev, "stale_slots_recovered"), now = file_blocks(path);
        CHECK_MSG(rec == NSTALE + 1, "stale: %lld slots recovered, want 6 (chunks 1, 2, 4, 6, 7 and 133)", rec);
        CHECK_MSG(dev_stat(dev, "live_logical_bytes") == 4 * CS, "stale: live_logical_bytes %lld, want %d",
                  dev_stat(dev, "live_logical_bytes"), 4 * CS);
        CHECK_MSG(now <= clean, "stale: %lld blocks after recovery, %lld before the stale slots", now, clean);
        CHECK_MSG(xd_read(dev, f, back, SIZE, 0) == SIZE && !memcmp(back, shadow, SIZE),
                  "stale: data differ after recovery");
        xd_file_close(dev, f);
    }
out:
    xd_close(dev);
    unlink(path);
    free(shadow);
    free(back);
    free(junk);
}

/* --- 6. hostile containers ----------------------------------------------------------- */

/* Open path (no create) on a fresh default device; the rc, with err. */
static int try_open(const char *path, unsigned flags, char *err)
{
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    int rc = open_dev(&dev, NULL, err);
    if (rc)
        return rc;
    rc = xd_file_open(dev, path, flags, 0, &f, err, XD_ERRLEN);
    if (!rc)
        xd_file_close(dev, f);
    xd_close(dev);
    return rc;
}

enum { C6_CHUNK = 64 * KIB, C6_SIZE = 1 * MIB };

/* A container with chunks 0..15 written (compressible), closed. */
static void c6_make(const char *path, uint8_t *shadow, struct rng *r)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    unlink(path);
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, C6_SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "create %s: %d %s", path, rc, err);
    if (!rc) {
        fill_compressible(r, shadow, C6_SIZE, 0);
        CHECK_MSG(xd_write(dev, f, shadow, C6_SIZE, 0) == C6_SIZE, "fill %s", path);
        xd_file_close(dev, f);
    }
    xd_close(dev);
}

static bool contains(const char *s, const char *what)
{
    return s && strstr(s, what);
}

/* The container at path opens (with flags) without a line about bad
 * entries and, when shadow is given, reads as it. Returns the slots the
 * open found stale and punched. */
static long long c6_opens_clean(const char *path, unsigned flags, const char *what,
                                const uint8_t *shadow)
{
    char err[XD_ERRLEN], line[XD_ERRLEN] = "";
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *all = malloc(C6_SIZE);
    long long stale = -1;
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, flags, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0 && xd_dev_take_error(dev, line, sizeof(line)) == -ENOENT,
              "%s: open %d, line '%s'", what, rc, rc ? err : line);
    CHECK_MSG(rc || !shadow || (xd_read(dev, f, all, C6_SIZE, 0) == C6_SIZE &&
                                !memcmp(all, shadow, C6_SIZE)),
              "%s: data differ", what);
    if (f) {
        stale = dev_stat(dev, "stale_slots_recovered");
        xd_file_close(dev, f);
    }
    xd_close(dev);
    free(all);
    return stale;
}

/* A container whose map entry for chunk bad fails its check opens (one
 * map entry guards one chunk; refusing the container lost every other
 * chunk), says which chunk at open, reads EIO there and the written data
 * everywhere else; a whole-chunk write replaces the entry and the
 * container opens clean again. */
static void c6_bad_entry(const char *path, const uint8_t *shadow, unsigned bad, const char *says)
{
    char err[XD_ERRLEN], line[XD_ERRLEN], want[32];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *got = malloc(C6_CHUNK);
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "chunk %u's map entry flipped: open %d '%s'", bad, rc, err);
    snprintf(want, sizeof(want), "chunk %u ", bad);
    CHECK_MSG(dev && !xd_dev_take_error(dev, line, sizeof(line)) && contains(line, want) &&
                  contains(line, path) && contains(line, "corrupt map entry") && contains(line, says),
              "chunk %u: no line at open naming it: '%s'", bad, dev ? line : "");
    for (unsigned c = 0; f && got && c < C6_SIZE / C6_CHUNK; c++) {
        int64_t n = xd_read(dev, f, got, C6_CHUNK, (uint64_t)c * C6_CHUNK);
        if (c == bad)
            CHECK_MSG(n == -EIO, "chunk %u, its entry bad: read %lld, want EIO", c, (long long)n);
        else
            CHECK_MSG(n == C6_CHUNK && !memcmp(got, shadow + (size_t)c * C6_CHUNK, C6_CHUNK),
                      "chunk %u beside a bad entry: read %lld or wrong data", c, (long long)n);
    }
    if (f && got) {
        const uint8_t *mine = shadow + (size_t)bad * C6_CHUNK;
        CHECK(xd_write(dev, f, mine, C6_CHUNK, (uint64_t)bad * C6_CHUNK) == C6_CHUNK);
        CHECK(xd_read(dev, f, got, C6_CHUNK, (uint64_t)bad * C6_CHUNK) == C6_CHUNK &&
              !memcmp(got, mine, C6_CHUNK));
        xd_file_close(dev, f);
    }
    xd_close(dev);
    snprintf(want, sizeof(want), "chunk %u rewritten", bad);
    c6_opens_clean(path, 0, want, NULL);
    free(got);
}

/* stderr goes to file between these two; stderr_end returns what was
 * printed, malloc'd. */
static void stderr_begin(const char *file, int *saved)
{
    fflush(stderr);
    *saved = dup(2);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

static char *stderr_end(const char *file, int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = calloc(1, 4096);
    int fd = open(file, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, text, 4095);
        (void)n;
        close(fd);
    }
    unlink(file);
    return text;
}

static void case6(struct rng *r)
{
    char err[XD_ERRLEN], path[PATH_MAX], logf[PATH_MAX];
    uint8_t *shadow = malloc(C6_SIZE), *buf = malloc(C6_SIZE), ent[32];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    int rc;
    scratch_path(logf, sizeof(logf), "stderr.txt");

    /* (a) random bytes */
    scratch_path(path, sizeof(path), "c6-random.ctr");
    fill_random(r, buf, 64 * KIB);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_MSG(fd >= 0 && write(fd, buf, 64 * KIB) == 64 * KIB, "write %s", path);
    if (fd >= 0)
        close(fd);
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, "bad magic") && contains(err, path), "random file: %d '%s'", rc, err);
    rc = try_open(path, XD_OPEN_CREATE, err); /* create must not overwrite someone's file */
    CHECK_MSG(rc < 0 && contains(err, "bad magic") && contains(err, path), "random file, create: %d '%s'", rc, err);
    rc = try_open(path, XD_OPEN_READONLY, err);
    CHECK_MSG(rc < 0 && contains(err, "bad magic"), "random file, read-only: %d '%s'", rc, err);
    unlink(path);

    /* (b) truncated */
    scratch_path(path, sizeof(path), "c6-trunc.ctr");
    c6_make(path, shadow, r);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(truncate(path, st.st_size - 4096) == 0);
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, "truncated") && contains(err, path), "a page short: %d '%s'", rc, err);
    CHECK(truncate(path, 8192) == 0);
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, "truncated") && contains(err, path), "truncated to 8k: %d '%s'", rc, err);
    CHECK(truncate(path, 100) == 0); /* shorter than the header itself */
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, path), "truncated to 100 bytes: %d '%s'", rc, err);
    uint64_t lsize = 0;
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", "compressed", "test", err, sizeof(err));
    rc = xd_path_logical_size(cfg, path, &lsize, err, sizeof(err));
    CHECK_MSG(rc < 0 && contains(err, path), "xd_path_logical_size of a truncated container: %d '%s'", rc, err);
    xd_config_free(cfg);
    unlink(path);

    /* (c) header byte flipped: the logical size, then the chunk size */
    scratch_path(path, sizeof(path), "c6-header.ctr");
    c6_make(path, shadow, r);
    /* a symlink to it: refused (xdevice writes its format in place only at
     * the container's own name), in one line that says so */
    char lnk[PATH_MAX];
    scratch_path(lnk, sizeof(lnk), "c6-header.link");
    CHECK(!symlink(path, lnk));
    rc = try_open(lnk, 0, err);
    CHECK_MSG(rc == -ELOOP && contains(err, lnk) && contains(err, "a symbolic link is at that name"),
              "a link to a container: %d '%s'", rc, err);
    unlink(lnk);
    CHECK(flip_byte(path, 17) == 0);
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, "corrupt header") && contains(err, path), "header flip: %d '%s'", rc, err);
    CHECK(flip_byte(path, 17) == 0);
    CHECK_MSG(try_open(path, 0, err) == 0, "header flipped back: '%s'", err);
    CHECK(flip_byte(path, 13) == 0);
    rc = try_open(path, XD_OPEN_CREATE, err);
    CHECK_MSG(rc < 0 && contains(err, "corrupt header"), "chunk size flip, create: %d '%s'", rc, err);
    unlink(path);

    /* (d) chunk 5's map entry (its generation), then chunk 15's (a byte
     * that must be zero): only that chunk is lost, until rewritten */
    scratch_path(path, sizeof(path), "c6-map.ctr");
    c6_make(path, shadow, r);
    CHECK(flip_byte(path, ctr_entry(5, C6_CHUNK) + 3) == 0);
    c6_bad_entry(path, shadow, 5, "checksum mismatch");
    CHECK(flip_byte(path, ctr_entry(15, C6_CHUNK) + 20) == 0);
    c6_bad_entry(path, shadow, 15, "checksum mismatch");
    unlink(path);

    /* (e) stored payload of chunk 7; then chunk 8 made a copy of chunk 7 whose
     * crcs all match but whose chunk header names chunk 7 */
    scratch_path(path, sizeof(path), "c6-payload.ctr");
    c6_make(path, shadow, r);
    CHECK(raw_read(path, ent, 32, ctr_entry(7, C6_CHUNK)) == 0);
    uint32_t stored_len = le32(ent + 8);
    unsigned slot = ent[17];
    CHECK_MSG(ent[16] == 2 && slot <= 1 && stored_len > 32 && stored_len < C6_CHUNK,
              "chunk 7's entry: algo %u slot %u stored %u (want lz4, compressed)", ent[16], slot, stored_len);
    uint8_t *copy = malloc(stored_len);
    CHECK(raw_read(path, copy, stored_len, ctr_slot(7, slot, C6_CHUNK)) == 0);
    CHECK(flip_byte(path, ctr_slot(7, slot, C6_CHUNK) + 32 + stored_len / 2) == 0);
    /* chunk 8 := chunk 7's entry and slot, the entry's crc sealed for
     * chunk 8: every crc matches, only the chunk header names chunk 7 */
    cc_seal(ent, 8, true);
    CHECK(raw_write(path, ent, 32, ctr_entry(8, C6_CHUNK)) == 0);
    CHECK(raw_write(path, copy, stored_len, ctr_slot(8, slot, C6_CHUNK)) == 0);
    rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open with a corrupt payload (the map is fine): %d %s", rc, err);
    if (!rc) {
        int saved;
        stderr_begin(logf, &saved);
        memset(buf, 0xee, C6_SIZE);
        ssize_t n1 = xd_read(dev, f, buf, C6_CHUNK, 7 * C6_CHUNK);
        ssize_t n2 = xd_read(dev, f, buf, 100, 7 * C6_CHUNK + 5000);
        ssize_t n3 = xd_read(dev, f, buf, 3 * C6_CHUNK, 6 * C6_CHUNK);
        ssize_t n4 = xd_write(dev, f, shadow, 100, 7 * C6_CHUNK + 10); /* needs the old version */
        ssize_t n5 = xd_read(dev, f, buf, C6_CHUNK, 8 * C6_CHUNK);
        char *text = stderr_end(logf, saved);
        CHECK_MSG(n1 == -EIO, "read of the corrupt chunk: %zd, want -EIO", n1);
        CHECK_MSG(n2 == -EIO, "partial read of the corrupt chunk: %zd, want -EIO", n2);
        CHECK_MSG(n3 == -EIO, "read across the corrupt chunk: %zd, want -EIO", n3);
        CHECK_MSG(n4 == -EIO, "partial write into the corrupt chunk: %zd, want -EIO", n4);
        CHECK_MSG(n5 == -EIO, "read of chunk 8 holding chunk 7's stored bytes: %zd, want -EIO", n5);
        CHECK_MSG(n5 != C6_CHUNK || memcmp(buf, shadow + 7 * C6_CHUNK, C6_CHUNK),
                  "chunk 8 returned chunk 7's data");
        /* the library prints nothing; the line is the caller's to take */
        CHECK_MSG(text && !text[0], "the library printed on stderr: '%s'", text);
        free(text);
        char line[XD_ERRLEN] = "";
        rc = xd_dev_take_error(dev, line, sizeof(line));
        CHECK_MSG(rc == 0 && contains(line, path) && contains(line, "chunk 7") && !strchr(line, '\n'),
                  "xd_dev_take_error: %d '%s'", rc, line);
        CHECK_MSG(xd_dev_take_error(dev, line, sizeof(line)) == -ENOENT, "the error line was not cleared");
        for (int c = 0; c < 16; c++) {
            if (c == 7 || c == 8)
                continue;
            ssize_t n = xd_read(dev, f, buf, C6_CHUNK, (uint64_t)c * C6_CHUNK);
            CHECK_MSG(n == C6_CHUNK && !memcmp(buf, shadow + (uint64_t)c * C6_CHUNK, C6_CHUNK),
                      "chunk %d next to the corrupt one: %zd", c, n);
        }
        CHECK_MSG(dev_stat(dev, "corrupt_chunks") >= 2, "corrupt_chunks %lld", dev_stat(dev, "corrupt_chunks"));
        /* a whole-chunk write heals it */
        CHECK(xd_write(dev, f, shadow + 7 * C6_CHUNK, C6_CHUNK, 7 * C6_CHUNK) == C6_CHUNK);
        CHECK_MSG(xd_read(dev, f, buf, C6_CHUNK, 7 * C6_CHUNK) == C6_CHUNK &&
                      !memcmp(buf, shadow + 7 * C6_CHUNK, C6_CHUNK),
                  "chunk 7 after a whole-chunk rewrite");
        xd_file_close(dev, f);
    }
    xd_close(dev);
    dev = NULL;
    free(copy);
    unlink(path);

    /* (f) a zero-length file, without and with create */
    scratch_path(path, sizeof(path), "c6-empty.ctr");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    rc = try_open(path, 0, err);
    CHECK_MSG(rc < 0 && contains(err, path) && !strchr(err, '\n'), "empty file: %d '%s'", rc, err);
    printf("    empty file without create: %d '%s'\n", rc, err);
    rc = try_open(path, XD_OPEN_READONLY, err);
    CHECK_MSG(rc < 0 && contains(err, path), "empty file read-only: %d '%s'", rc, err);
    CHECK(stat(path, &st) == 0 && st.st_size == 0); /* left alone */
    rc = try_open(path, XD_OPEN_CREATE, err); /* an empty file is made a container */
    CHECK_MSG(rc == 0, "empty file with create: %d '%s'", rc, err);
    unlink(path);
    /* a missing file without create */
    rc = try_open(path, 0, err);
    CHECK_MSG(rc == -ENOENT, "missing file: %d '%s'", rc, err);

    free(shadow);
    free(buf);
}

/* --- 7. trim -------------------------------------------------------------------------- */

static void case7(struct rng *r)
{
    enum { CS = 64 * KIB, SIZE = 1 * MIB };
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *shadow = malloc(SIZE), *back = malloc(SIZE);
    scratch_path(path, sizeof(path), "c7.ctr");
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open: %d %s", rc, err);
    if (rc)
        goto out;
    fill_random(r, shadow, SIZE); /* incompressible: each chunk takes a whole slot */
    CHECK(xd_write(dev, f, shadow, SIZE, 0) == SIZE);
    CHECK(xd_flush(dev, f, 0) == 0);
    long long before = file_blocks(path);

    CHECK(xd_trim(dev, f, CS, 3 * CS) == 0);
    memset(shadow + 3 * CS, 0, CS);
    CHECK(xd_flush(dev, f, 0) == 0);
    long long after = file_blocks(path);
    CHECK_MSG(after >= 0 && (before - after) * 512 >= CS, "st_blocks %lld -> %lld: a trimmed chunk freed %lld bytes",
              before, after, (before - after) * 512);
    CHECK_MSG(xd_read(dev, f, back, CS, 3 * CS) == CS && all_zero(back, CS), "trimmed chunk reads zeros");

    /* past the end a trim discards nothing and does not grow the container;
     * a write beyond what the format can address is refused */
    CHECK(xd_trim(dev, f, CS, SIZE + 4 * CS) == 0);
    CHECK_MSG(xd_file_size(dev, f) == SIZE, "a trim past the end grew the container to %lld",
              (long long)xd_file_size(dev, f));
    CHECK_MSG(xd_write(dev, f, back, 4096, 1ull << 51) == -EFBIG, "a write at 2 PiB is not EFBIG");
    CHECK(xd_file_size(dev, f) == SIZE);

    /* partial: only the range */
    CHECK(xd_trim(dev, f, 1000, 5 * CS + 300) == 0);
    memset(shadow + 5 * CS + 300, 0, 1000);
    /* across chunks: a tail, two whole chunks, a head */
    CHECK(xd_trim(dev, f, 3 * CS - 1500, 8 * CS + 1000) == 0);
    memset(shadow + 8 * CS + 1000, 0, 3 * CS - 1500);
    CHECK_MSG(xd_read(dev, f, back, SIZE, 0) == SIZE && !memcmp(back, shadow, SIZE),
              "after trims the container differs");
    CHECK(xd_flush(dev, f, 0) == 0);
    long long last = file_blocks(path);
    CHECK_MSG((after - last) * 512 >= 2 * CS, "st_blocks %lld -> %lld after trimming two more chunks", after, last);
    xd_file_close(dev, f);
    xd_close(dev);
    dev = NULL;
    /* and on disk */
    if (!open_dev(&dev, NULL, err) && !xd_file_open(dev, path, 0, 0, &f, err, sizeof(err))) {
        CHECK_MSG(xd_read(dev, f, back, SIZE, 0) == SIZE && !memcmp(back, shadow, SIZE),
                  "after reopening, the trimmed container differs");
        xd_file_close(dev, f);
    }
out:
    xd_close(dev);
    unlink(path);
    free(shadow);
    free(back);
}

/* --- 8. space is reclaimed on overwrite ------------------------------------------------ */

static void case8(struct rng *r)
{
    enum { SIZE = 8 * MIB };
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *buf = malloc(64 * KIB);
    scratch_path(path, sizeof(path), "c8.ctr");
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open: %d %s", rc, err);
    if (rc)
        goto out;
    uint64_t written = 0;
    while (written < 10ull * SIZE) {
        uint64_t len = 4 * KIB + below(r, 60 * KIB + 1), off = below(r, SIZE - len + 1);
        fill_compressible(r, buf, len, off);
        if (xd_write(dev, f, buf, len, off) != (ssize_t)len) {
            CHECK_MSG(0, "write %llu at %llu", (unsigned long long)len, (unsigned long long)off);
            break;
        }
        written += len;
    }
    CHECK(xd_flush(dev, f, 0) == 0);
    xd_file_close(dev, f);
    long long stored = dev_stat(dev, "stored_bytes"), blocks = file_blocks(path);
    CHECK_MSG(stored > 0, "stored_bytes %lld", stored);
    CHECK_MSG(blocks >= 0 && (double)blocks * 512 <= 1.5 * (double)stored,
              "after 10 overwrites the file takes %lld bytes, stored_bytes %lld", blocks * 512, stored);
    long long allocated = dev_stat(dev, "allocated_bytes");
    CHECK_MSG(allocated == blocks * 512, "allocated_bytes %lld, st_blocks*512 %lld", allocated, blocks * 512);
    printf("    reclaim: %llu MiB written, stored %lld, on disk %lld (%.2fx)\n",
           (unsigned long long)(written >> 20), stored, blocks * 512,
           stored > 0 ? (double)blocks * 512 / (double)stored : 0);
out:
    xd_close(dev);
    unlink(path);
    free(buf);
}

/* --- 9. adaptive compression backs off on data that does not compress ------------------ */

/* Random bytes over a 64-symbol alphabet: 6 bits per byte, so the entropy
 * sample lets the codec try, but lz4 finds no repeats and saves nothing. */
static void fill_poor(struct rng *r, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)('A' + below(r, 64));
}

static long long poor_run(struct rng *r, const char *adaptive, const char *name, long long *tried)
{
    enum { CS = 64 * KIB, CHUNKS = 256 };
    const char *kv[] = {"adaptive_compression", adaptive, NULL};
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *buf = malloc(CS);
    long long skips = -1;
    scratch_path(path, sizeof(path), name);
    int rc = open_dev(&dev, kv, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, (uint64_t)CS * CHUNKS, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open: %d %s", rc, err);
    for (int i = 0; !rc && i < CHUNKS; i++) {
        fill_poor(r, buf, CS);
        CHECK(xd_write(dev, f, buf, CS, (uint64_t)i * CS) == CS);
    }
    if (!rc) {
        skips = dev_stat(dev, "adaptive_skips");
        *tried = CHUNKS - skips - dev_stat(dev, "entropy_skips");
        CHECK_MSG(dev_stat(dev, "raw_chunks_written") == CHUNKS, "every poor chunk is stored raw");
        xd_file_close(dev, f);
    }
    xd_close(dev);
    unlink(path);
    free(buf);
    return skips;
}

static void case9(struct rng *r)
{
    long long tried_on, tried_off;
    long long on = poor_run(r, "true", "c9-on.ctr", &tried_on);
    long long off = poor_run(r, "false", "c9-off.ctr", &tried_off);
    CHECK_MSG(off == 0 && tried_off == 256, "without adaptive every chunk is tried: skips %lld, tried %lld",
              off, tried_off);
    CHECK_MSG(on > 128 && tried_on < 64, "adaptive backs off: skips %lld, tried %lld of 256", on, tried_on);
    printf("    adaptive: codec tried on %lld of 256 poor chunks (%lld without)\n", tried_on, tried_off);
}

/* --- 0. space figures are live while containers are open ---------------------------- */

/* A program reads xd_stats_json with its files open (the example, the
 * engine's interval records): the figures must count open containers, once
 * each however many handles, and agree with the figures at close. */
static void case0(struct rng *r)
{
    enum { SIZE = 4 * MIB, CS = 64 * KIB };
    char err[XD_ERRLEN], path[PATH_MAX];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL, *again = NULL;
    uint8_t *buf = malloc(CS);
    scratch_path(path, sizeof(path), "c0.ctr");
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open: %d %s", rc, err);
    if (rc)
        goto out;
    CHECK_MSG(dev_stat(dev, "logical_bytes") == SIZE, "a new open container: logical_bytes %lld",
              dev_stat(dev, "logical_bytes"));
    for (uint64_t off = 0; off < SIZE / 2; off += CS) {
        fill_compressible(r, buf, CS, off);
        CHECK(xd_write(dev, f, buf, CS, off) == CS);
    }
    long long logical = dev_stat(dev, "logical_bytes"), live = dev_stat(dev, "live_logical_bytes");
    long long stored = dev_stat(dev, "stored_bytes"), ratio = dev_stat(dev, "ratio");
    CHECK_MSG(logical == SIZE && live == SIZE / 2, "while open: logical_bytes %lld, live_logical_bytes %lld",
              logical, live);
    CHECK_MSG(stored > 0 && stored < SIZE / 2 && ratio >= 1, "while open: stored_bytes %lld, ratio %lld",
              stored, ratio);
    rc = xd_file_open(dev, path, 0, 0, &again, err, sizeof(err));
    CHECK_MSG(rc == 0, "second open: %d %s", rc, err);
    if (!rc) {
        CHECK_MSG(dev_stat(dev, "logical_bytes") == SIZE, "two handles count once: logical_bytes %lld",
                  dev_stat(dev, "logical_bytes"));
        xd_file_close(dev, again);
        CHECK_MSG(dev_stat(dev, "logical_bytes") == SIZE, "one handle closed: logical_bytes %lld",
                  dev_stat(dev, "logical_bytes"));
    }
    xd_file_close(dev, f);
    CHECK_MSG(dev_stat(dev, "logical_bytes") == logical && dev_stat(dev, "stored_bytes") == stored &&
                  dev_stat(dev, "live_logical_bytes") == live,
              "the figures at close are those seen open: logical %lld stored %lld live %lld",
              dev_stat(dev, "logical_bytes"), dev_stat(dev, "stored_bytes"),
              dev_stat(dev, "live_logical_bytes"));
out:
    xd_close(dev);
    unlink(path);
    free(buf);
}

/* --- a. a container being made is read once made --------------------------------------- */

/* docs/CONTAINER.md: the header lock, held while a container is made or grown. */
#define HEADER_LOCK ((1ll << 62) - 1)

struct size_look {
    const char *path;
    uint64_t size;
    int rc;
    char err[XD_ERRLEN];
    atomic_bool done;
};

static void *size_look_main(void *arg)
{
    struct size_look *l = arg;
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", "compressed", "test", l->err, sizeof(l->err));
    l->rc = xd_path_logical_size(cfg, l->path, &l->size, l->err, sizeof(l->err));
    xd_config_free(cfg);
    atomic_store(&l->done, true);
    return NULL;
}

/* Is an OFD lock of inode ino waited for (a "->" line of /proc/locks)? */
static bool ofd_lock_waited_on(ino_t ino)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256], want[40];
    bool found = false;
    snprintf(want, sizeof(want), ":%llu ", (unsigned long long)ino);
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, "-> OFDLCK") && strstr(line, want);
    if (f)
        fclose(f);
    return found;
}

/* fio jobs sharing a file with create_serialize=0 make it at once: one
 * sized the container and had not yet written its header when another
 * read it ("bad magic", the job failed; 1 run in 3 of a torture case).
 * Here the maker is the test: it holds the header lock over a file of
 * zeros; a look at the size waits for it, then reads what it wrote (the
 * bytes of a container xd_path_prepare made beside it). */
static void casea(struct rng *r)
{
    (void)r;
    enum { SIZE = 1 * MIB };
    char err[XD_ERRLEN], path[PATH_MAX], made[PATH_MAX];
    scratch_path(path, sizeof(path), "ca.ctr");
    scratch_path(made, sizeof(made), "ca-made.ctr");
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", "compressed", "test", err, sizeof(err));
    uint64_t logical = 0;
    int rc = xd_path_prepare(cfg, made, SIZE, &logical, err, sizeof(err));
    CHECK_MSG(rc == 0 && logical == SIZE, "prepare: %d %s", rc, err);
    struct stat st;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = HEADER_LOCK, .l_len = 1};
    CHECK(fd >= 0 && !stat(made, &st) && !ftruncate(fd, st.st_size) &&
          !fcntl(fd, F_OFD_SETLK, &fl) && !fstat(fd, &st));
    struct size_look look = {.path = path};
    pthread_t t;
    CHECK(!pthread_create(&t, NULL, size_look_main, &look));
    bool waited = false;
    for (double end = now_s() + 10; !atomic_load(&look.done) && now_s() < end; usleep(1000))
        if ((waited = ofd_lock_waited_on(st.st_ino)))
            break;
    CHECK_MSG(waited, "the size was read while the container was being made: %d %s", look.rc,
              look.err);
    /* made: its bytes are the prepared container's */
    int src = open(made, O_RDONLY);
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    while (src >= 0 && (n = pread(src, buf, sizeof(buf), off)) > 0)
        off += pwrite(fd, buf, (size_t)n, off);
    if (src >= 0)
        close(src);
    fl.l_type = F_UNLCK;
    CHECK(!fcntl(fd, F_OFD_SETLK, &fl));
    pthread_join(t, NULL);
    CHECK_MSG(look.rc == 0 && look.size == SIZE, "the size once made: %d %llu %s", look.rc,
              (unsigned long long)look.size, look.err);
    if (fd >= 0)
        close(fd);
    xd_config_free(cfg);
    unlink(path);
    unlink(made);
}

/* --- main -------------------------------------------------------------------------------- */

/* nanosleep(2) for the library linked in: the first nap of a reader
 * waiting on a map entry that failed its check (armed) finishes the
 * "writer's" pwrite of it first, restoring the byte it left flipped. */
static const char *entry_heal_path;
static uint64_t entry_heal_off;
static bool entry_heal_armed;

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (entry_heal_armed) {
        entry_heal_armed = false;
        CHECK(flip_byte(entry_heal_path, entry_heal_off) == 0);
    }
    return (int)syscall(SYS_nanosleep, req, rem);
}

/* A map entry caught half written by another device's pwrite whose CPU
 * was taken away in the middle (a loaded machine, a guest's vCPU
 * descheduled): the read waits for it, not only 8 tries at once, then
 * reads the chunk; it is not reported corrupt. */
static void caseb(struct rng *r)
{
    char err[XD_ERRLEN], path[PATH_MAX];
    uint8_t *shadow = malloc(C6_SIZE), *got = malloc(C6_CHUNK);
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    scratch_path(path, sizeof(path), "cb-entry.ctr");
    c6_make(path, shadow, r);
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open %s: %d '%s'", path, rc, err);
    if (f && shadow && got) {
        entry_heal_path = path;
        entry_heal_off = ctr_entry(5, C6_CHUNK) + 3;
        CHECK(flip_byte(path, entry_heal_off) == 0); /* the writer's pwrite, half done */
        entry_heal_armed = true;
        int64_t n = xd_read(dev, f, got, C6_CHUNK, 5 * C6_CHUNK);
        CHECK_MSG(!entry_heal_armed, "the read never waited for the entry being written");
        CHECK_MSG(n == C6_CHUNK && !memcmp(got, shadow + 5 * C6_CHUNK, C6_CHUNK),
                  "a read racing its entry's write: %lld or wrong data", (long long)n);
        CHECK(dev_stat(dev, "corrupt_chunks") == 0);
        entry_heal_armed = false;
    }
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
    free(shadow);
    free(got);
}

/* --- c. erased map entries ------------------------------------------------------------ */

/* The header's version field, and its crc, rewritten. */
static void cc_set_version(const char *path, uint32_t version)
{
    uint8_t h[64];
    CHECK(raw_read(path, h, sizeof(h), 0) == 0);
    put32(h + 8, version);
    put32(h + 60, xd_crc32c(0, h, 60));
    CHECK(raw_write(path, h, sizeof(h), 0) == 0);
}

static uint32_t cc_version(const char *path)
{
    uint8_t h[12] = {0};
    CHECK(raw_read(path, h, sizeof(h), 0) == 0);
    return le32(h + 8);
}

/* Every chunk of a C6 container reads EIO (its map page zeroed); whole-chunk
 * writes give them fresh entries and the container opens clean again. */
static void cc_page_lost(const char *path, const uint8_t *shadow)
{
    char err[XD_ERRLEN], line[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *got = malloc(C6_CHUNK);
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "map page zeroed: open %d '%s'", rc, err);
    if (rc)
        goto out;
    CHECK_MSG(!xd_dev_take_error(dev, line, sizeof(line)) && contains(line, "erased") &&
                  contains(line, "16 chunks with a bad map entry"),
              "map page zeroed: the line at open: '%s'", line);
    for (unsigned c = 0; c < C6_SIZE / C6_CHUNK; c++) {
        int64_t n = xd_read(dev, f, got, 4096, (uint64_t)c * C6_CHUNK + 8192);
        CHECK_MSG(n == -EIO, "map page zeroed: chunk %u read %lld, want EIO", c, (long long)n);
    }
    CHECK_MSG(xd_write(dev, f, shadow, 100, 3 * C6_CHUNK + 10) == -EIO,
              "map page zeroed: a partial write merged into zeros");
    CHECK(xd_write(dev, f, shadow, C6_SIZE, 0) == C6_SIZE);
    xd_file_close(dev, f);
    xd_close(dev);
    dev = NULL;
    c6_opens_clean(path, 0, "map page rewritten", shadow);
out:
    xd_close(dev);
    free(got);
}

/* A version-1 container (no pending entries: a blank entry beside a version
 * of its chunk may be a killed first write) reads as before, read-only; its
 * sole writable opener punches such slots and makes it version 2. With
 * half_upgraded, what an upgrade killed half way leaves: every other entry
 * already sealed with its chunk number, the header still version 1, which
 * must read the same and be upgraded by the next sole opener. */
static void cc_version1(const char *path, struct rng *r, bool half_upgraded)
{
    uint8_t *shadow = calloc(1, C6_SIZE), slot[4096];
    c6_make(path, shadow, r);
    /* chunk 9: a blank entry, and in slot 0 what a v1 writer killed before
     * its flip left: chunk 9's header, generation 1 */
    uint8_t blank[32] = {0}, ent[32];
    CHECK(raw_read(path, ent, 32, ctr_entry(9, C6_CHUNK)) == 0);
    CHECK(raw_read(path, slot, sizeof(slot), ctr_slot(9, ent[17], C6_CHUNK)) == 0);
    CHECK(raw_write(path, blank, 32, ctr_entry(9, C6_CHUNK)) == 0);
    CHECK(raw_write(path, slot, sizeof(slot), ctr_slot(9, 0, C6_CHUNK)) == 0);
    memset(shadow + 9 * C6_CHUNK, 0, C6_CHUNK);
    /* version 1's entries: crcs not seeded with the chunk number */
    for (unsigned c = 0; c < C6_SIZE / C6_CHUNK; c++) {
        CHECK(raw_read(path, ent, 32, ctr_entry(c, C6_CHUNK)) == 0);
        if (memcmp(ent, blank, 32)) {
            cc_seal(ent, c, half_upgraded && c % 2 == 0);
            CHECK(raw_write(path, ent, 32, ctr_entry(c, C6_CHUNK)) == 0);
        }
    }
    cc_set_version(path, 1);

    /* chunk 9 reads zeros, no line */
    c6_opens_clean(path, XD_OPEN_READONLY, "version 1, read-only", shadow);
    CHECK_MSG(cc_version(path) == 1, "a read-only opener changed the version to %u", cc_version(path));
    long long stale = c6_opens_clean(path, 0, "version 1, sole writable opener", shadow);
    CHECK_MSG(stale >= 1, "version 1: chunk 9's slot not punched (%lld)", stale);
    CHECK_MSG(cc_version(path) == 2, "the sole opener left version %u", cc_version(path));
    /* the upgrade sealed every entry with its chunk number */
    uint8_t want[32];
    CHECK(raw_read(path, ent, 32, ctr_entry(3, C6_CHUNK)) == 0);
    memcpy(want, ent, 32);
    cc_seal(want, 3, true);
    CHECK_MSG(!memcmp(ent, want, 32), "chunk 3's entry was not sealed by the upgrade");
    c6_opens_clean(path, 0, "version 2, upgraded", shadow);
    free(shadow);
}

/* A map page written at another group's place (a misdirected write): its
 * entries fail their crcs there (seeded with their own chunk numbers), so
 * that group's chunks read EIO, even those whose entries say "all zeros",
 * which have no slot to contradict them. */
static void cc_misdirected_page(const char *path, struct rng *r)
{
    enum { CS = 64 * KIB, SIZE = 2 * 128 * CS };
    char err[XD_ERRLEN], line[XD_ERRLEN] = "";
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint8_t *data = malloc(CS), page[4096];
    unlink(path);
    int rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, SIZE, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "misdirected page: create %d '%s'", rc, err);
    if (rc)
        goto out;
    memset(data, 0, CS); /* group 0: "all zeros" entries */
    for (unsigned c = 0; c < 128; c++)
        CHECK(xd_write(dev, f, data, CS, (uint64_t)c * CS) == CS);
    fill_compressible(r, data, CS, 0); /* group 1: data */
    for (unsigned c = 128; c < 256; c++)
        CHECK(xd_write(dev, f, data, CS, (uint64_t)c * CS) == CS);
    xd_file_close(dev, f);
    xd_close(dev);
    dev = NULL;
    f = NULL;
    CHECK(raw_read(path, page, sizeof(page), ctr_group(0, CS)) == 0);
    CHECK(raw_write(path, page, sizeof(page), ctr_group(1, CS)) == 0);
    rc = open_dev(&dev, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    CHECK_MSG(rc == 0 && !xd_dev_take_error(dev, line, sizeof(line)) &&
                  contains(line, "chunk 128 ") && contains(line, "checksum mismatch"),
              "misdirected page: open %d, line '%s'", rc, rc ? err : line);
    for (unsigned c = 128; !rc && c < 256; c += 37) {
        int64_t n = xd_read(dev, f, data, CS, (uint64_t)c * CS);
        CHECK_MSG(n == -EIO, "misdirected page: chunk %u read %lld, want EIO", c, (long long)n);
    }
    CHECK(!rc && xd_read(dev, f, data, CS, 5 * CS) == CS); /* group 0 is whole */
    if (f)
        xd_file_close(dev, f);
out:
    xd_close(dev);
    unlink(path);
    free(data);
}

/* First writes of many chunks, and on devices of their own a reader of the
 * chunk being written and openers whose map scans look at every blank
 * entry's slots: every read returns zeros or the chunk's data, and no scan
 * finds an entry erased (without the pending entry, a scan finding a blank
 * entry, then the slot a first write had just filled, called it erased). */
enum { CCR_CHUNK = 4 * KIB, CCR_CHUNKS = 8192 };

struct ccr_shared {
    const char *path;
    atomic_ullong next; /* the chunk being written */
    atomic_bool done;
};

static void *ccr_writer(void *arg)
{
    struct ccr_shared *sh = arg;
    char err[XD_ERRLEN];
    struct xd_dev *dev;
    struct xd_file *f;
    uint8_t buf[CCR_CHUNK];
    if (open_own(sh->path, "4k", &dev, &f, err)) {
        for (uint64_t c = 0; c < CCR_CHUNKS; c++) {
            memset(buf, (int)(c % 251) + 1, sizeof(buf));
            atomic_store(&sh->next, c);
            CHECK(xd_write(dev, f, buf, CCR_CHUNK, c * CCR_CHUNK) == CCR_CHUNK);
        }
        xd_file_close(dev, f);
    } else {
        CHECK_MSG(false, "first-write race: the writer's open: %s", err);
    }
    atomic_store(&sh->done, true);
    xd_close(dev);
    return NULL;
}

static void cc_first_write_race(const char *path)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct ccr_shared sh = {.path = path};
    const char *const kv[] = {"compress_chunk_size", "4k", NULL};
    uint8_t buf[CCR_CHUNK];
    uint64_t reads = 0, written_seen = 0, scans = 0;
    int bad = 0;
    pthread_t th;
    unlink(path);
    int rc = open_dev(&dev, kv, err);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, (uint64_t)CCR_CHUNKS * CCR_CHUNK, &f, err, sizeof(err));
    CHECK_MSG(rc == 0, "first-write race: open %d '%s'", rc, err);
    if (rc)
        goto out;
    pthread_create(&th, NULL, ccr_writer, &sh);
    while (!atomic_load(&sh.done) && bad < 3) {
        uint64_t c = atomic_load(&sh.next);
        int64_t n = xd_read(dev, f, buf, CCR_CHUNK, c * CCR_CHUNK);
        reads++;
        uint8_t want = (uint8_t)(c % 251 + 1);
        bool zeros = n == CCR_CHUNK && buf[0] == 0 && !memcmp(buf, buf + 1, CCR_CHUNK - 1);
        bool data = n == CCR_CHUNK && buf[0] == want && !memcmp(buf, buf + 1, CCR_CHUNK - 1);
        written_seen += data;
        if (!zeros && !data) {
            fprintf(stderr, "first-write race: chunk %llu read %lld, first byte %u\n",
                    (unsigned long long)c, (long long)n, buf[0]);
            bad++;
        }
        if (reads % 2 == 0) { /* an open: its scan looks at the blank entries' slots */
            struct xd_dev *other;
            struct xd_file *of;
            char line[XD_ERRLEN] = "";
            if (open_own(path, "4k", &other, &of, err)) {
                scans++;
                if (xd_dev_take_error(other, line, sizeof(line)) != -ENOENT) {
                    fprintf(stderr, "first-write race: a scan said: %s\n", line);
                    bad++;
                }
                xd_file_close(other, of);
            }
            xd_close(other);
        }
    }
    pthread_join(th, NULL);
    CHECK_MSG(bad == 0 && dev_stat(dev, "corrupt_chunks") == 0,
              "first-write race: %d of %llu reads wrong or failed", bad, (unsigned long long)reads);
    if (getenv("XD_VERBOSE"))
        printf("    first-write race: %llu reads, %llu saw the chunk written, %llu scans\n",
               (unsigned long long)reads, (unsigned long long)written_seen,
               (unsigned long long)scans);
    xd_file_close(dev, f);
out:
    xd_close(dev);
    unlink(path);
}

static void casec(struct rng *r)
{
    char path[PATH_MAX];
    uint8_t *shadow = malloc(C6_SIZE);
    scratch_path(path, sizeof(path), "cc.ctr");

    /* chunk 5's entry zeroed (a sector of the map lost): EIO, not zeros */
    c6_make(path, shadow, r);
    uint8_t blank[32] = {0};
    CHECK(raw_write(path, blank, 32, ctr_entry(5, C6_CHUNK)) == 0);
    c6_bad_entry(path, shadow, 5, "erased");

    /* the whole map page zeroed, then a hole (a block lost either way) */
    for (int punch = 0; punch < 2; punch++) {
        c6_make(path, shadow, r);
        int fd = open(path, O_RDWR);
        uint8_t zeros[4096] = {0};
        CHECK(fd >= 0 && (punch ? fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                            (off_t)ctr_group(0, C6_CHUNK), 4096)
                                : pwrite(fd, zeros, 4096, (off_t)ctr_group(0, C6_CHUNK)) != 4096) == 0);
        if (fd >= 0)
            close(fd);
        cc_page_lost(path, shadow);
    }
    unlink(path);

    cc_version1(path, r, false);
    unlink(path);
    cc_version1(path, r, true);
    unlink(path);
    cc_misdirected_page(path, r);
    cc_first_write_race(path);
    free(shadow);
}

int main(void)
{
    const char *s = getenv("XD_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    struct rng r = {seed};
    char dir[] = "/var/tmp/xdtest-compress-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("SKIP: mkdtemp %s: %s\n", dir, strerror(errno));
        return 77;
    }
    snprintf(scratch, sizeof(scratch), "%s", dir);
    printf("compress: seed %llu (XD_SEED=%llu repeats it), scratch %s\n", (unsigned long long)seed,
           (unsigned long long)seed, scratch);
    /* the container needs hole punching: skip where the file system has none */
    {
        char path[PATH_MAX];
        scratch_path(path, sizeof(path), "punch");
        int fd = open(path, O_RDWR | O_CREAT, 0600);
        bool ok = fd >= 0 && !ftruncate(fd, 1 << 20) &&
                  !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
        if (fd >= 0)
            close(fd);
        unlink(path);
        if (!ok) {
            rmdir(scratch);
            printf("SKIP: %s cannot punch holes\n", scratch);
            return 77;
        }
    }

    static const struct {
        const char *name;
        void (*run)(struct rng *);
    } cases[] = {
        {"0 live space figures", case0},
        {"1 random I/O, every codec and chunk size", case1},
        {"2 reopen with another codec", case2},
        {"3 async", case3},
        {"4 concurrent writers", case4},
        {"5 kill -9", case5},
        {"6 hostile containers", case6},
        {"7 trim", case7},
        {"8 space reclaim", case8},
        {"9 adaptive compression", case9},
        {"a a container being made is read once made", casea},
        {"b a map entry being written is read once written", caseb},
        {"c erased map entries read EIO", casec},
    };
    const char *only = getenv("XD_CASES"); /* e.g. XD_CASES=46: only cases 4 and 6 */
    double start = now_s();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = check_failures;
        if (only && !strchr(only, cases[i].name[0]))
            continue;
        double t0 = now_s();
        fflush(stdout);
        cases[i].run(&r);
        printf("%s case %s (%.2f s)\n", check_failures == before ? "ok  " : "FAIL", cases[i].name,
               now_s() - t0);
        fflush(stdout);
    }
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    CHECK_MSG(access(scratch, F_OK) && errno == ENOENT, "%s left behind", scratch);
    printf("compress: %s, %d check(s) failed, %.2f s\n", check_failures ? "FAIL" : "pass",
           check_failures, now_s() - start);
    return check_result();
}
