/* compress_cache.c - unit test of the compressed type's decoded-chunk cache
 * (compress_cache_size, backends/drivers/compressed/decoded_cache.c)
 * through the public API: a re-read is a hit; this device's writes and
 * trims are seen at once; another device's and another process's writes
 * are seen (the map entry's generation, not the cache, says what is
 * current); CLOCK eviction and admission (a full cache takes a chunk
 * on its second recent miss) under a small cache; 0 turns it off; bad
 * values are refused with one line; devices in threads reading while one
 * writes never see a stale or torn block.
 *
 * Every check counts operations or compares bytes, never time. Scratch
 * files live in a mkdtemp directory under /var/tmp (the container needs
 * hole punching). Exit 0 pass, 1 fail, 77 skip.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define KIB 1024u
#define CS (64 * KIB) /* the default chunk size */
#define BLK (4 * KIB)

static char scratch[64];

/* --- helpers ---------------------------------------------------------------- */

/* A 4 KiB block tagged (block number, version): 16 bytes of tag, then a
 * body that is a function of them, half zeros so that it compresses. */
static void tagged(uint8_t *p, uint64_t block, uint64_t version)
{
    uint64_t s = block * 0x9E3779B97F4A7C15ull ^ (version + 1) * 0xBF58476D1CE4E5B9ull;
    memcpy(p, &block, 8);
    memcpy(p + 8, &version, 8);
    for (unsigned i = 16; i < BLK; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = i % 512 < 256 ? (uint8_t)(s >> 56) : 0;
    }
}

/* The version block holds, or -1 when it is not one whole tagged block of
 * that number (torn, misplaced, garbage). */
static long long version_of(const uint8_t *p, uint64_t block)
{
    uint8_t want[BLK];
    uint64_t b, v;
    memcpy(&b, p, 8);
    memcpy(&v, p + 8, 8);
    if (b != block)
        return -1;
    tagged(want, block, v);
    return memcmp(want, p, BLK) ? -1 : (long long)v;
}

static void path_of(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", scratch, name);
}

/* A compressed device with extra key/value pairs (NULL-terminated). */
static int open_dev(struct xd_dev **dev, const char *const *kv, char *err)
{
    const char *all[32] = {"storage_type", "compressed"};
    size_t n = 2;
    for (; kv && kv[0] && n + 3 <= 32; kv += 2) {
        all[n++] = kv[0];
        all[n++] = kv[1];
    }
    all[n] = NULL;
    err[0] = 0;
    return check_open_dev(dev, all, "test", 1, err, XD_ERRLEN);
}

/* A device with the file open (created with size bytes when size > 0). */
static bool open_file(struct xd_dev **dev, struct xd_file **f, const char *path, uint64_t size,
                      const char *const *kv)
{
    char err[XD_ERRLEN];
    int rc = open_dev(dev, kv, err);
    if (!rc)
        rc = xd_file_open(*dev, path, size ? XD_OPEN_CREATE : 0, size, f, err, sizeof(err));
    CHECK_MSG(rc == 0, "open %s: %d %s", path, rc, err);
    return rc == 0;
}

static long long stat_of(struct xd_dev *dev, const char *key)
{
    return layer_stat(dev, "compress", key);
}

/* Write blocks [from, to) as version v. */
static void write_blocks(struct xd_dev *dev, struct xd_file *f, uint64_t from, uint64_t to,
                         uint64_t v)
{
    uint8_t *buf = malloc((to - from) * BLK);
    for (uint64_t b = from; b < to; b++)
        tagged(buf + (b - from) * BLK, b, v);
    CHECK(xd_write(dev, f, buf, (to - from) * BLK, from * BLK) == (ssize_t)((to - from) * BLK));
    free(buf);
}

/* A new container of bytes at path, every block written as version 1, and
 * closed again, so the next device starts with nothing decoded. */
static bool lay_out(const char *path, uint64_t bytes, const char *const *kv)
{
    struct xd_dev *dev;
    struct xd_file *f;
    if (!open_file(&dev, &f, path, bytes, kv))
        return false;
    write_blocks(dev, f, 0, bytes / BLK, 1);
    xd_file_close(dev, f);
    xd_close(dev);
    return true;
}

/* The version block b reads as through dev (-1: not a whole tagged block,
 * -2: all zeros, -3: the read failed). */
static long long read_version(struct xd_dev *dev, struct xd_file *f, uint64_t b)
{
    uint8_t buf[BLK], zero[BLK] = {0};
    if (xd_read(dev, f, buf, BLK, b * BLK) != BLK)
        return -3;
    return memcmp(buf, zero, BLK) ? version_of(buf, b) : -2;
}

#define CHECK_VERSION(dev, f, b, want)                                                   \
    do {                                                                                 \
        long long got_ = read_version(dev, f, b);                                        \
        CHECK_MSG(got_ == (want), "block %llu: version %lld, want %lld",                 \
                  (unsigned long long)(b), got_, (long long)(want));                     \
    } while (0)

/* --- 1. a re-read is a hit, and counts as one -------------------------------------- */

static void case_hits(void)
{
    char path[PATH_MAX];
    struct xd_dev *dev;
    struct xd_file *f;
    path_of(path, "hits.ctr");
    if (!lay_out(path, 8 * CS, NULL))
        return;

    /* a fresh device: nothing decoded yet */
    if (!open_file(&dev, &f, path, 0, NULL))
        return;
    CHECK_VERSION(dev, f, 0, 1);  /* chunk 0: a miss, decoded and cached */
    CHECK_VERSION(dev, f, 16, 1); /* chunk 1: a miss */
    CHECK_VERSION(dev, f, 32, 1); /* chunk 2: a miss; the thread's last decoded chunk */
    CHECK_VERSION(dev, f, 3, 1);  /* chunk 0 again: the cache's, not a decode */
    CHECK_VERSION(dev, f, 17, 1); /* chunk 1 again */
    CHECK_VERSION(dev, f, 33, 1); /* chunk 2 again: the thread's copy, no lookup */
    CHECK_MSG(stat_of(dev, "decoded_cache_hits") == 2, "hits %lld, want 2",
              stat_of(dev, "decoded_cache_hits"));
    CHECK_MSG(stat_of(dev, "decoded_cache_misses") == 3, "misses %lld, want 3",
              stat_of(dev, "decoded_cache_misses"));
    CHECK_MSG(stat_of(dev, "chunks_decoded") == 3, "chunks_decoded %lld, want 3",
              stat_of(dev, "chunks_decoded"));
    CHECK(stat_of(dev, "decoded_cache_chunks") == 3);
    CHECK(stat_of(dev, "decoded_cache_bytes") == 3 * CS);
    CHECK(stat_of(dev, "decoded_cache_size") == 256ll * 1024 * 1024); /* the default */

    /* a read across a chunk boundary takes both halves from the cache */
    uint8_t buf[2 * BLK];
    CHECK(xd_read(dev, f, buf, 2 * BLK, 15 * BLK) == 2 * BLK);
    CHECK(version_of(buf, 15) == 1 && version_of(buf + BLK, 16) == 1);
    CHECK(stat_of(dev, "chunks_decoded") == 3 && stat_of(dev, "decoded_cache_hits") == 4);

    /* closing the file frees its entries */
    xd_file_close(dev, f);
    CHECK(stat_of(dev, "decoded_cache_chunks") == 0 && stat_of(dev, "decoded_cache_bytes") == 0);
    xd_close(dev);
    unlink(path);
}

/* --- 2. this device's writes and trims are seen at once ------------------------------- */

static void case_own_writes(void)
{
    char path[PATH_MAX];
    struct xd_dev *dev;
    struct xd_file *f;
    path_of(path, "own.ctr");
    if (!open_file(&dev, &f, path, 8 * CS, NULL))
        return;
    write_blocks(dev, f, 0, 8 * CS / BLK, 1);
    for (uint64_t c = 0; c < 8; c++) /* cache every chunk */
        CHECK_VERSION(dev, f, c * 16, 1);

    write_blocks(dev, f, 2, 3, 2);      /* a small write into chunk 0 (read-modify-write) */
    write_blocks(dev, f, 16, 32, 3);    /* all of chunk 1 */
    CHECK(xd_trim(dev, f, BLK, 33 * BLK) == 0); /* a block of chunk 2 */
    CHECK(xd_trim(dev, f, CS, 3 * CS) == 0);    /* all of chunk 3 */
    /* read each after another chunk, so the thread's last decoded chunk is
     * never the one asked for: what answers is the cache or a decode */
    CHECK_VERSION(dev, f, 100, 1);
    CHECK_VERSION(dev, f, 2, 2);
    CHECK_VERSION(dev, f, 3, 1);
    CHECK_VERSION(dev, f, 100, 1);
    CHECK_VERSION(dev, f, 20, 3);
    CHECK_VERSION(dev, f, 100, 1);
    CHECK_VERSION(dev, f, 33, -2);
    CHECK_VERSION(dev, f, 34, 1);
    CHECK_VERSION(dev, f, 100, 1);
    CHECK_VERSION(dev, f, 50, -2);

    /* a read-modify-write's result is cached: the next small write of the
     * chunk and a read of it decode nothing */
    long long decoded = stat_of(dev, "chunks_decoded");
    write_blocks(dev, f, 4, 5, 4);
    CHECK_VERSION(dev, f, 100, 1);
    write_blocks(dev, f, 5, 6, 4);
    CHECK_VERSION(dev, f, 100, 1);
    CHECK_VERSION(dev, f, 4, 4);
    CHECK_VERSION(dev, f, 5, 4);
    CHECK_VERSION(dev, f, 6, 1);
    CHECK_MSG(stat_of(dev, "chunks_decoded") == decoded, "chunks_decoded %lld -> %lld",
              decoded, stat_of(dev, "chunks_decoded"));
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* --- 3. writes of another device and another process are seen --------------------------- */

static void case_others(void)
{
    char path[PATH_MAX];
    struct xd_dev *a, *b;
    struct xd_file *fa, *fb;
    path_of(path, "others.ctr");
    if (!open_file(&a, &fa, path, 8 * CS, NULL))
        return;
    write_blocks(a, fa, 0, 8 * CS / BLK, 1);
    for (uint64_t c = 0; c < 4; c++)
        CHECK_VERSION(a, fa, c * 16, 1);
    if (!open_file(&b, &fb, path, 0, NULL)) {
        xd_close(a);
        return;
    }
    write_blocks(b, fb, 1, 2, 2);   /* part of chunk 0 */
    write_blocks(b, fb, 16, 32, 2); /* all of chunk 1 */
    CHECK(xd_trim(b, fb, CS, 2 * CS) == 0); /* chunk 2 */
    long long misses = stat_of(a, "decoded_cache_misses");
    CHECK_VERSION(a, fa, 100, 1);
    CHECK_VERSION(a, fa, 1, 2);
    CHECK_VERSION(a, fa, 0, 1);
    CHECK_VERSION(a, fa, 100, 1);
    CHECK_VERSION(a, fa, 17, 2);
    CHECK_VERSION(a, fa, 40, -2);
    CHECK_VERSION(a, fa, 48, 1); /* chunk 3: untouched, still cached */
    CHECK_MSG(stat_of(a, "decoded_cache_misses") >= misses + 2,
              "misses %lld -> %lld: the changed chunks were not looked up again", misses,
              stat_of(a, "decoded_cache_misses"));
    xd_file_close(b, fb);
    xd_close(b);

    /* another process (which cannot share a's cache) */
    CHECK_VERSION(a, fa, 5, 1); /* chunk 0 as it is now, cached in a */
    pid_t pid = fork();
    if (pid == 0) {
        int failed_before = check_failures;
        struct xd_dev *c;
        struct xd_file *fc;
        if (!open_file(&c, &fc, path, 0, NULL))
            _exit(1);
        write_blocks(c, fc, 5, 6, 7);
        xd_file_close(c, fc);
        xd_close(c);
        _exit(check_failures != failed_before);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writing child: status %#x",
              status);
    CHECK_VERSION(a, fa, 100, 1);
    CHECK_VERSION(a, fa, 5, 7);
    CHECK_VERSION(a, fa, 1, 2);
    xd_file_close(a, fa);
    xd_close(a);
    unlink(path);
}

/* --- 4. CLOCK eviction under a small cache; 0 turns it off -------------------------------- */

static void case_eviction(void)
{
    char path[PATH_MAX];
    struct xd_dev *dev;
    struct xd_file *f;
    static const char *const small[] = {"compress_cache_size", "256k", NULL}; /* 4 chunks */
    path_of(path, "evict.ctr");
    if (!lay_out(path, 32 * CS, small))
        return;
    if (!open_file(&dev, &f, path, 0, small))
        return;
    for (uint64_t c = 0; c < 4; c++) /* fills it: chunks 0..3, the hand at 0 */
        CHECK_VERSION(dev, f, c * 16, 1);
    CHECK_VERSION(dev, f, 2 * 16 + 1, 1); /* hits mark 2 and 0 */
    CHECK_VERSION(dev, f, 0 * 16 + 1, 1);
    CHECK(stat_of(dev, "decoded_cache_hits") == 2);
    /* full: a first miss is not admitted, only noted; a second one is */
    CHECK_VERSION(dev, f, 4 * 16, 1);
    CHECK_VERSION(dev, f, 5 * 16, 1);
    CHECK(stat_of(dev, "decoded_cache_declined") == 2);
    CHECK(stat_of(dev, "decoded_cache_evictions") == 0);
    CHECK_VERSION(dev, f, 4 * 16 + 1, 1); /* admitted: the hand spares 0, evicts 1 */
    CHECK_VERSION(dev, f, 5 * 16 + 1, 1); /* spares 2, evicts 3 */
    CHECK_MSG(stat_of(dev, "decoded_cache_evictions") == 2, "evictions %lld, want 2",
              stat_of(dev, "decoded_cache_evictions"));
    CHECK(stat_of(dev, "decoded_cache_declined") == 2);
    CHECK_VERSION(dev, f, 0 * 16 + 2, 1);
    CHECK_VERSION(dev, f, 2 * 16 + 2, 1);
    CHECK_MSG(stat_of(dev, "decoded_cache_hits") == 4, "hits %lld: the second chance failed",
              stat_of(dev, "decoded_cache_hits"));
    CHECK_VERSION(dev, f, 4 * 16 + 2, 1);
    CHECK_VERSION(dev, f, 1 * 16 + 2, 1); /* evicted: a miss */
    CHECK(stat_of(dev, "decoded_cache_hits") == 5);

    for (int pass = 0; pass < 2; pass++) /* scans through all of it, twice */
        for (uint64_t c = 0; c < 32; c++)
            CHECK_VERSION(dev, f, c * 16 + c % 16, 1);
    CHECK(stat_of(dev, "decoded_cache_bytes") <= 256 * KIB);
    CHECK(stat_of(dev, "decoded_cache_chunks") == 4);
    CHECK(stat_of(dev, "decoded_cache_evictions") > 2);
    CHECK(stat_of(dev, "decoded_cache_declined") > 2);
    xd_file_close(dev, f);
    xd_close(dev);

    static const char *const off[] = {"compress_cache_size", "0", NULL};
    if (!open_file(&dev, &f, path, 0, off))
        return;
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t c = 0; c < 32; c++)
            CHECK_VERSION(dev, f, c * 16, 1);
    CHECK(stat_of(dev, "decoded_cache_size") == 0 && stat_of(dev, "decoded_cache_hits") == 0 &&
          stat_of(dev, "decoded_cache_misses") == 0);
    CHECK(stat_of(dev, "chunks_decoded") == 64);
    xd_file_close(dev, f);
    xd_close(dev);
    unlink(path);
}

/* --- 5. bad values: one line naming key, value and what is allowed ------------------------- */

static void refused(const char *const *kv, const char *const *say)
{
    char err[XD_ERRLEN];
    struct xd_dev *dev;
    int rc = open_dev(&dev, kv, err);
    CHECK_MSG(rc == -EINVAL, "%s=%s: %d, want -EINVAL", kv[0], kv[1], rc);
    if (!rc)
        xd_close(dev);
    CHECK_MSG(!strchr(err, '\n'), "more than one line: %s", err);
    for (; *say; say++)
        CHECK_MSG(strstr(err, *say), "%s=%s: \"%s\" is not in: %s", kv[0], kv[1], *say, err);
}

static void case_keys(void)
{
    refused((const char *const[]){"compress_cache_size", "32k", NULL},
            (const char *const[]){"compress_cache_size=32768", "compress_chunk_size=65536",
                                  "allowed: 0 (no cache) or 65536", NULL});
    refused((const char *const[]){"compress_chunk_size", "1m", "compress_cache_size", "512k", NULL},
            (const char *const[]){"compress_cache_size=524288",
                                  "allowed: 0 (no cache) or 1048576", NULL});
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    int rc = xd_config_set(cfg, "compress_cache_size", "65g", "test", err, sizeof(err));
    CHECK_MSG(rc == -EINVAL && strstr(err, "compress_cache_size") && strstr(err, "65g"),
              "65g: %d %s", rc, err);
    rc = xd_config_set(cfg, "compress_cache_size", "lots", "test", err, sizeof(err));
    CHECK_MSG(rc == -EINVAL && strstr(err, "compress_cache_size") && strstr(err, "lots"),
              "lots: %d %s", rc, err);
    xd_config_free(cfg);
    /* the smallest and the largest allowed */
    struct xd_dev *dev;
    CHECK(!open_dev(&dev, (const char *const[]){"compress_cache_size", "64k", NULL}, err));
    xd_close(dev);
    CHECK(!open_dev(&dev, (const char *const[]){"compress_cache_size", "64g", NULL}, err));
    xd_close(dev);
}

/* --- 6. devices in threads: readers during a writer, then all current ----------------------- */

enum {
    T_CHUNKS = 16,
    T_BLOCKS = T_CHUNKS * CS / BLK,
    T_READERS = 3,
    T_WRITES = 600,
    T_READS = 3000
};

struct t_arg {
    const char *path;
    unsigned id;
    long long bad; /* reads that were not one whole block */
    struct xd_dev *dev; /* a reader's, kept open with what it cached */
    struct xd_file *f;
};

static void *t_writer(void *p)
{
    struct t_arg *a = p;
    struct xd_dev *dev;
    struct xd_file *f;
    if (!open_file(&dev, &f, a->path, 0, NULL))
        return NULL;
    uint64_t s = 12345;
    for (unsigned i = 0; i < T_WRITES; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t b = (s >> 33) % T_BLOCKS;
        write_blocks(dev, f, b, b + 1, 2 + i);
    }
    /* the last word on every block, a small write each: the readers must
     * end up seeing exactly this */
    for (uint64_t b = 0; b < T_BLOCKS; b++)
        write_blocks(dev, f, b, b + 1, 1000000);
    xd_file_close(dev, f);
    xd_close(dev);
    return NULL;
}

static void *t_reader(void *p)
{
    struct t_arg *a = p;
    if (!open_file(&a->dev, &a->f, a->path, 0, NULL)) {
        a->dev = NULL;
        return NULL;
    }
    uint64_t s = 777 + a->id;
    for (unsigned i = 0; i < T_READS; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t b = (s >> 33) % T_BLOCKS;
        if (read_version(a->dev, a->f, b) < 1)
            a->bad++;
    }
    return NULL;
}

static void case_threads(void)
{
    char path[PATH_MAX];
    path_of(path, "threads.ctr");
    if (!lay_out(path, T_CHUNKS * CS, NULL))
        return;

    pthread_t w, r[T_READERS];
    struct t_arg wa = {.path = path}, ra[T_READERS];
    pthread_create(&w, NULL, t_writer, &wa);
    for (unsigned i = 0; i < T_READERS; i++) {
        ra[i] = (struct t_arg){.path = path, .id = i};
        pthread_create(&r[i], NULL, t_reader, &ra[i]);
    }
    for (unsigned i = 0; i < T_READERS; i++) {
        pthread_join(r[i], NULL);
        CHECK_MSG(ra[i].bad == 0, "reader %u: %lld reads were not a whole block", i, ra[i].bad);
    }
    pthread_join(w, NULL);
    /* each reader's device still holds what it cached during the writes:
     * every block must now read as the writer's last version */
    for (unsigned i = 0; i < T_READERS; i++) {
        if (!ra[i].dev)
            continue;
        CHECK(stat_of(ra[i].dev, "decoded_cache_hits") > 0);
        long long stale = 0;
        for (uint64_t b = 0; b < T_BLOCKS; b++)
            stale += read_version(ra[i].dev, ra[i].f, b) != 1000000;
        CHECK_MSG(stale == 0, "reader %u: %lld blocks not at the last version", i, stale);
        xd_file_close(ra[i].dev, ra[i].f);
        xd_close(ra[i].dev);
    }
    unlink(path);
}

/* --- main ---------------------------------------------------------------------------------- */

int main(void)
{
    char dir[] = "/var/tmp/xdtest-ccache-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("SKIP: mkdtemp %s: %s\n", dir, strerror(errno));
        return 77;
    }
    snprintf(scratch, sizeof(scratch), "%s", dir);
    static const struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"re-read hits", case_hits},
        {"own writes and trims seen", case_own_writes},
        {"another device's and process's writes seen", case_others},
        {"eviction, and 0 for off", case_eviction},
        {"bad values refused", case_keys},
        {"devices in threads", case_threads},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = check_failures;
        cases[i].run();
        printf("%s %s\n", check_failures == before ? "ok  " : "FAIL", cases[i].name);
        fflush(stdout);
    }
    rmdir(scratch);
    printf("compress_cache: %s, %d check(s) failed\n", check_failures ? "FAIL" : "pass",
           check_failures);
    return check_result();
}
