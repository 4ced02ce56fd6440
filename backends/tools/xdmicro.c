/* xdmicro - single-core micro-benchmarks of the library's hot helpers.
 *
 *   xdmicro zero  [--size 64k] [--seconds 1]
 *       xd_is_zero over a cached all-zero buffer (and 1 MiB, 16 MiB for
 *       reference) against a memcmp baseline; PASS/FAIL against 20 GB/s.
 *   xdmicro codec [--algo lz4|zstd|snappy|gzip|brotli|all] [--level 1]
 *                 [--chunk 64k] [--compressibility 50] [--seconds 1]
 *                 [--from CONTAINER]
 *       compress and decompress a 64 MiB buffer chunk by chunk; with --from,
 *       the logical contents of a compressed-type container (all of it, up
 *       to 1 GiB) instead, so a benchmark can set what the container did
 *       against the codec alone on the very same chunks. Prints
 *       sum_compressed_bytes: each chunk compressed on its own, kept raw
 *       when that is not smaller.
 *   xdmicro crc   [--size 64k] [--seconds 1]
 *       xd_crc32c (hardware when the CPU has it) and the table fallback.
 *
 * Each result is one line of key=value pairs after a '#' header line, so
 * scripts can grep the first word and split the rest.
 *
 * Options are checked before anything runs, each with one line naming it,
 * its value and what is allowed (exit 2): sizes 1 byte to 1g (--chunk up
 * to 64m), --seconds above 0 up to 600 per measurement, --compressibility
 * 0-100, --level in the range the config schema allows compression_level
 * for the codec (lz4 1-12, zstd 1-22, gzip 1-9, brotli 1-11, snappy only
 * 1; --algo all: 1). An option of another command is refused too. --help
 * prints the usage and exits 0.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../drivers/compressed/codec.h"
#include "../core/crc32c.h"
#include "../core/zero.h"
#include "../xdevice.h"

#define ZERO_TARGET_GBPS 20.0
#define CODEC_DATA_SIZE (64u << 20)
#define MAX_SIZE (1ull << 30)
#define MAX_SECONDS 600.0 /* per measurement: codec --algo all makes ten */

struct opts {
    size_t size;
    double seconds;
    const char *algo;
    int level;
    size_t chunk;
    int compressibility;
    const char *from;
};

static volatile uint64_t sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Keep the compiler from assuming it knows what p points to, so a pure
 * inline function over an unchanged buffer is not hoisted out of a loop. */
static inline void clobber(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

#define USAGE                                                                                \
    "usage: xdmicro zero [--size 64k] [--seconds 1]\n"                                      \
    "       xdmicro codec [--algo lz4|zstd|snappy|gzip|brotli|all] [--level 1]\n"           \
    "                     [--chunk 64k] [--compressibility 0-100] [--seconds 1]\n"          \
    "                     [--from CONTAINER]\n"                                              \
    "       xdmicro crc [--size 64k] [--seconds 1]\n"                                        \
    "sizes: 1 to 1g (--chunk: to 64m), k/m/g suffixes; --seconds: above 0, up to 600\n"

/* an argument for a message (one use per message) */
static const char *shown(const char *s)
{
    static char buf[XD_ESCAPE_LEN];
    return xd_escape(s, buf, sizeof(buf));
}

enum { CMD_ZERO = 1, CMD_CODEC = 2, CMD_CRC = 4 };

static const struct command {
    const char *name;
    unsigned bit;
    const char *options; /* for "allowed:" */
} commands[] = {
    {"zero", CMD_ZERO, "--size, --seconds"},
    {"codec", CMD_CODEC, "--algo, --level, --chunk, --compressibility, --seconds, --from"},
    {"crc", CMD_CRC, "--size, --seconds"},
};

enum { O_SIZE, O_SECONDS, O_ALGO, O_LEVEL, O_CHUNK, O_COMPRESSIBILITY, O_FROM, O_COUNT };

static const struct option_def {
    const char *name;
    unsigned commands; /* which commands take it */
} options[O_COUNT] = {
    [O_SIZE] = {"--size", CMD_ZERO | CMD_CRC},
    [O_SECONDS] = {"--seconds", CMD_ZERO | CMD_CODEC | CMD_CRC},
    [O_ALGO] = {"--algo", CMD_CODEC},
    [O_LEVEL] = {"--level", CMD_CODEC},
    [O_CHUNK] = {"--chunk", CMD_CODEC},
    [O_COMPRESSIBILITY] = {"--compressibility", CMD_CODEC},
    [O_FROM] = {"--from", CMD_CODEC},
};

/* compression_level's range for each codec: the config schema's check
 * (check_compression_level in core/config.c), so a level measured here is
 * one a config can ask for; codec.c would clamp any other one silently. */
static const struct {
    int max;
    const char *allowed;
} codec_levels[XD_ALGO_COUNT] = {
    [XD_ALGO_LZ4] = {12, "1-12 for lz4 (4 and above use lz4hc)"},
    [XD_ALGO_ZSTD] = {22, "1-22 for zstd"},
    [XD_ALGO_SNAPPY] = {1, "only 1: snappy has no levels"},
    [XD_ALGO_GZIP] = {9, "1-9 for gzip"},
    [XD_ALGO_BROTLI] = {11, "1-11 for brotli"},
};

static const int all_algos[] = {XD_ALGO_LZ4, XD_ALGO_ZSTD, XD_ALGO_SNAPPY, XD_ALGO_GZIP,
                                XD_ALGO_BROTLI};

/* "64k", "1m", "4096": bytes from 1 to max; -1 when malformed or out of range. */
static int parse_size(const char *s, unsigned long long max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10), unit = 1;
    if (errno || !isdigit((unsigned char)*s))
        return -1;
    switch (*end) {
    case 'k': case 'K': unit = 1ull << 10; end++; break;
    case 'm': case 'M': unit = 1ull << 20; end++; break;
    case 'g': case 'G': unit = 1ull << 30; end++; break;
    }
    if (*end || v == 0 || v > max / unit)
        return -1;
    *out = (size_t)(v * unit);
    return 0;
}

/* A whole number from lo to hi; -1 when not one. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static bool algo_known(const char *name)
{
    for (size_t i = 0; i < sizeof(all_algos) / sizeof(all_algos[0]); i++)
        if (!strcmp(name, xd_algo_name(all_algos[i])))
            return true;
    return !strcmp(name, "all");
}

static int bad_value(const char *opt, const char *value, const char *allowed)
{
    fprintf(stderr, "xdmicro: %s %s: not a valid value; allowed: %s\n", opt, shown(value), allowed);
    return -EINVAL;
}

static int set_option(int which, const char *val, struct opts *o)
{
    char *end;
    switch (which) {
    case O_SIZE:
        return parse_size(val, MAX_SIZE, &o->size) ? bad_value("--size", val, "a size from 1 byte to 1g, with an optional k/m/g suffix") : 0;
    case O_CHUNK:
        return parse_size(val, CODEC_DATA_SIZE, &o->chunk) ? bad_value("--chunk", val, "a size from 1 byte to 64m, with an optional k/m/g suffix") : 0;
    case O_SECONDS:
        o->seconds = strtod(val, &end);
        if (end == val || *end || !isfinite(o->seconds) || o->seconds <= 0 || o->seconds > MAX_SECONDS)
            return bad_value("--seconds", val, "a number of seconds above 0, up to 600");
        return 0;
    case O_ALGO:
        if (!algo_known(val))
            return bad_value("--algo", val, "lz4, zstd, snappy, gzip, brotli or all");
        o->algo = val;
        return 0;
    case O_LEVEL:
        return parse_int(val, INT_MIN, INT_MAX, &o->level) ? bad_value("--level", val, "a whole number (1-22, by codec)") : 0;
    case O_COMPRESSIBILITY:
        return parse_int(val, 0, 100, &o->compressibility) ? bad_value("--compressibility", val, "a whole percentage from 0 to 100") : 0;
    case O_FROM:
        if (!*val)
            return bad_value("--from", val, "the path of a compressed-type container");
        o->from = val;
        return 0;
    }
    return -EINVAL;
}

/* The level against the range of every codec the run measures. */
static int check_level(const struct opts *o)
{
    for (size_t i = 0; i < sizeof(all_algos) / sizeof(all_algos[0]); i++) {
        int algo = all_algos[i];
        if (strcmp(o->algo, "all") && strcmp(o->algo, xd_algo_name(algo)))
            continue;
        if (o->level >= 1 && o->level <= codec_levels[algo].max)
            continue;
        fprintf(stderr, "xdmicro: --level %d: out of range for %s; allowed: %s%s\n", o->level,
                xd_algo_name(algo), codec_levels[algo].allowed,
                strcmp(o->algo, "all") ? "" : " (--algo all runs every codec at one level: only 1 fits them all)");
        return -EINVAL;
    }
    return 0;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(name, commands[i].name))
            return &commands[i];
    return NULL;
}

static int find_option(const char *name)
{
    for (int i = 0; i < O_COUNT; i++)
        if (!strcmp(name, options[i].name))
            return i;
    return -1;
}

/* 0, 1 for --help, or -EINVAL after one line saying what is wrong. */
static int parse_opts(const struct command *cmd, int argc, char **argv, struct opts *o)
{
    const char *given[O_COUNT] = {0};
    for (int i = 0; i < argc; i++) {
        const char *key = argv[i];
        if (!strcmp(key, "--help") || !strcmp(key, "-h"))
            return 1;
        int which = find_option(key);
        if (strncmp(key, "--", 2)) {
            fprintf(stderr, "xdmicro: %s: unexpected argument \"%s\"; allowed: %s, each followed by its value\n",
                    cmd->name, shown(key), cmd->options);
            return -EINVAL;
        }
        if (which < 0 || !(options[which].commands & cmd->bit)) {
            fprintf(stderr, "xdmicro: %s: %s is not one of its options; allowed: %s\n", cmd->name,
                    shown(key), cmd->options);
            return -EINVAL;
        }
        if (i + 1 == argc) {
            fprintf(stderr, "xdmicro: %s needs a value (xdmicro --help)\n", key);
            return -EINVAL;
        }
        const char *val = argv[++i];
        if (given[which]) {
            char first[XD_ESCAPE_LEN];
            fprintf(stderr, "xdmicro: %s given twice (%s, then %s); allowed: once\n", key,
                    xd_escape(given[which], first, sizeof(first)), shown(val));
            return -EINVAL;
        }
        given[which] = val;
        if (set_option(which, val, o))
            return -EINVAL;
    }
    return cmd->bit == CMD_CODEC ? check_level(o) : 0;
}

/* The results reached stdout: a full disk or a closed pipe is a failure,
 * not a run that printed nothing. */
static int results_written(int rc)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    fprintf(stderr, "xdmicro: cannot write the results to stdout: %s\n", strerror(errno));
    return 1;
}

/* --- zero ------------------------------------------------------------------ */

static double zero_scan_gbps(const uint8_t *buf, size_t size, double seconds, bool baseline,
                             const uint8_t *zeros)
{
    uint64_t bytes = 0, hits = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < 64; i++) {
            clobber(buf);
            hits += baseline ? memcmp(buf, zeros, size) == 0 : xd_is_zero(buf, size);
            bytes += size;
        }
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    sink += hits;
    return (double)bytes / elapsed / 1e9;
}

static int cmd_zero(const struct opts *o)
{
    size_t sizes[] = {o->size, 1u << 20, 16u << 20};
    size_t max = 0;
    for (int i = 0; i < 3; i++)
        max = sizes[i] > max ? sizes[i] : max;
    uint8_t *buf = aligned_alloc(4096, max), *zeros = aligned_alloc(4096, max);
    if (!buf || !zeros) {
        fprintf(stderr, "xdmicro: out of memory for %zu-byte buffers\n", max);
        return 1;
    }
    memset(buf, 0, max);
    memset(zeros, 0, max);
    printf("# xd_is_zero over an all-zero buffer, one core; memcmp against zeros as baseline\n");
    bool pass = true;
    for (int i = 0; i < 3; i++) {
        if (i && sizes[i] == sizes[0])
            continue;
        double gbps = zero_scan_gbps(buf, sizes[i], o->seconds, false, NULL);
        double base = zero_scan_gbps(buf, sizes[i], o->seconds, true, zeros);
        printf("zero size=%zu is_zero_GBps=%.2f memcmp_GBps=%.2f%s\n", sizes[i], gbps, base,
               i == 0 ? (gbps >= ZERO_TARGET_GBPS ? " result=PASS" : " result=FAIL") : "");
        if (i == 0)
            pass = gbps >= ZERO_TARGET_GBPS;
    }
    printf("%s is_zero at size=%zu against %.0f GB/s\n", pass ? "PASS" : "FAIL", sizes[0],
           ZERO_TARGET_GBPS);
    free(buf);
    free(zeros);
    return 0;
}

/* --- crc ------------------------------------------------------------------- */

static int cmd_crc(const struct opts *o)
{
    uint8_t *buf = aligned_alloc(4096, (o->size + 4095) & ~(size_t)4095);
    if (!buf) {
        fprintf(stderr, "xdmicro: out of memory for a %zu-byte buffer\n", o->size);
        return 1;
    }
    for (size_t i = 0; i < o->size; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    printf("# crc32c over a cached buffer, one core\n");
    for (int sw = 0; sw < 2; sw++) {
        uint64_t bytes = 0;
        uint32_t crc = 0;
        double start = now_s(), elapsed;
        do {
            for (int i = 0; i < 16; i++) {
                crc = sw ? xd_crc32c_sw(crc, buf, o->size) : xd_crc32c(crc, buf, o->size);
                bytes += o->size;
            }
            elapsed = now_s() - start;
        } while (elapsed < o->seconds);
        sink += crc;
        printf("crc impl=%s size=%zu GBps=%.2f\n", sw ? "table" : "default", o->size,
               (double)bytes / elapsed / 1e9);
    }
    free(buf);
    return 0;
}

/* --- codec ----------------------------------------------------------------- */

/* Like fio's buffer_compress_percentage: each 4 KiB block is (100 - pct)%
 * random bytes followed by pct% zeros. */
static void fill_compressible(uint8_t *buf, size_t size, int pct)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t block = 4096, random_len = block * (size_t)(100 - pct) / 100;
    for (size_t off = 0; off < size; off += block) {
        size_t n = size - off < block ? size - off : block;
        size_t r = random_len < n ? random_len : n;
        for (size_t i = 0; i < r; i += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            memcpy(buf + off + i, &x, r - i < 8 ? r - i : 8);
        }
        memset(buf + off + r, 0, n - r);
    }
}

struct codec_bench {
    struct xd_codec_ctx *ctx;
    const uint8_t *data;
    size_t chunk, nchunks;
    unsigned batch;      /* chunks between clock reads: about 256 KiB */
    uint8_t *packed;     /* chunk i compressed at packed + i * chunk */
    size_t *packed_len;  /* 0: stored raw */
    uint8_t *out;
    bool whole;          /* the first pass must cover every chunk (--from) */
};

/* Compress chunks round robin until seconds pass; the first pass fills
 * packed[] for the decompression run and counts towards the ratio.
 * Returns the chunks compressed in the first pass, or -1 on error. */
static long codec_bench_compress(struct codec_bench *b, int algo, int level, double seconds,
                                 double *mbps, double *ratio)
{
    uint64_t bytes = 0, stored = 0;
    size_t i = 0, first_pass = 0;
    bool wrapped = false;
    double start = now_s(), elapsed;
    do {
        int64_t n = xd_codec_compress(b->ctx, algo, level, b->data + i * b->chunk, b->chunk,
                                      b->packed + i * b->chunk, b->chunk);
        if (n < 0) {
            fprintf(stderr, "xdmicro: %s compress failed: %s\n", xd_algo_name(algo),
                    strerror((int)-n));
            return -1;
        }
        if (!wrapped) {
            b->packed_len[i] = (size_t)n;
            stored += n ? (uint64_t)n : b->chunk;
            first_pass++;
        }
        bytes += b->chunk;
        if (++i == b->nchunks)
            i = 0, wrapped = true;
        elapsed = bytes / b->chunk % b->batch ? 0 : now_s() - start;
    } while (elapsed < seconds || (b->whole && !wrapped));
    *mbps = (double)bytes / elapsed / 1e6;
    *ratio = (double)stored / ((double)first_pass * b->chunk);
    return (long)first_pass;
}

/* Decompress what the first compression pass packed (raw chunks are copied,
 * as the compressed type does), after checking each round trip once. */
static int codec_bench_decompress(struct codec_bench *b, int algo, size_t nchunks,
                                  double seconds, double *mbps, double *chunks_per_s)
{
    for (size_t i = 0; i < nchunks; i++) {
        if (!b->packed_len[i])
            continue;
        if (xd_codec_decompress(b->ctx, algo, b->packed + i * b->chunk, b->packed_len[i], b->out,
                                b->chunk) ||
            memcmp(b->out, b->data + i * b->chunk, b->chunk)) {
            fprintf(stderr, "xdmicro: %s round trip of chunk %zu failed\n", xd_algo_name(algo), i);
            return -1;
        }
    }
    uint64_t count = 0;
    size_t i = 0;
    double start = now_s(), elapsed;
    do {
        const uint8_t *src = b->packed + i * b->chunk;
        if (b->packed_len[i]) {
            if (xd_codec_decompress(b->ctx, algo, src, b->packed_len[i], b->out, b->chunk))
                return -1;
        } else {
            memcpy(b->out, b->data + i * b->chunk, b->chunk);
        }
        clobber(b->out);
        count++;
        if (++i == nchunks)
            i = 0;
        elapsed = count % b->batch ? 0 : now_s() - start;
    } while (elapsed < seconds);
    sink += b->out[0];
    *mbps = (double)count * b->chunk / elapsed / 1e6;
    *chunks_per_s = (double)count / elapsed;
    return 0;
}

static int codec_run(struct codec_bench *b, int algo, const struct opts *o)
{
    double c_mbps, ratio, d_mbps, d_chunks;
    long n = codec_bench_compress(b, algo, o->level, o->seconds, &c_mbps, &ratio);
    if (n < 0 || codec_bench_decompress(b, algo, (size_t)n, o->seconds, &d_mbps, &d_chunks))
        return -1;
    size_t raw = 0;
    for (long i = 0; i < n; i++)
        raw += !b->packed_len[i];
    uint64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += b->packed_len[i] ? b->packed_len[i] : b->chunk;
    printf("codec algo=%s level=%d chunk=%zu compressibility=%d compress_MBps=%.1f "
           "decompress_MBps=%.1f decompress_chunks_per_s=%.0f ratio=%.4f raw_chunks=%zu/%ld "
           "sum_compressed_bytes=%llu\n",
           xd_algo_name(algo), o->level, b->chunk, o->from ? -1 : o->compressibility, c_mbps,
           d_mbps, d_chunks, ratio, raw, n, (unsigned long long)sum);
    fflush(stdout);
    return 0;
}

/* The logical bytes of a compressed-type container, read through the
 * library; *size in: the most to read, out: what was read. */
static uint8_t *load_container(const char *path, size_t *size)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    uint8_t *data = NULL;
    int64_t len;
    char shown[XD_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
    if (!cfg || xd_config_set(cfg, "storage_type", "compressed", "xdmicro", err, sizeof(err)) ||
        xd_open(&dev, cfg, 1, err, sizeof(err)) ||
        xd_file_open(dev, path, XD_OPEN_READONLY, 0, &file, err, sizeof(err)))
        goto fail;
    len = xd_file_size(dev, file);
    if (len <= 0) {
        snprintf(err, sizeof(err), "%s: empty container", xd_escape(path, shown, sizeof(shown)));
        goto fail;
    }
    if ((uint64_t)len < *size)
        *size = (size_t)len;
    if (!(data = malloc(*size)) || xd_read(dev, file, data, *size, 0) != (ssize_t)*size) {
        snprintf(err, sizeof(err), "%s: cannot read %zu bytes",
                 xd_escape(path, shown, sizeof(shown)), *size);
        goto fail;
    }
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
    return data;
fail:
    fprintf(stderr, "xdmicro: %s\n", err);
    free(data);
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
    return NULL;
}

static int cmd_codec(const struct opts *o)
{
    int algos[5], nalgos = 0;
    for (int i = 0; i < 5; i++) /* --algo was checked: one of them, or all */
        if (!strcmp(o->algo, "all") || !strcmp(o->algo, xd_algo_name(all_algos[i])))
            algos[nalgos++] = all_algos[i];
    size_t size = o->from ? (size_t)1 << 30 : CODEC_DATA_SIZE;
    uint8_t *data = o->from ? load_container(o->from, &size) : malloc(size);
    if (!data)
        return 1;
    if (size < o->chunk) { /* not one chunk to compress */
        fprintf(stderr, "xdmicro: --from %s: holds %zu bytes, less than one --chunk of %zu; allowed: a --chunk up to %zu\n",
                shown(o->from), size, o->chunk, size);
        free(data);
        return 2;
    }
    struct codec_bench b = {.chunk = o->chunk, .nchunks = size / o->chunk,
                            .batch = o->chunk >= (256u << 10) ? 1 : (256u << 10) / o->chunk};
    size = b.nchunks * b.chunk;
    b.whole = o->from != NULL;
    b.data = data;
    b.packed = malloc(size);
    b.packed_len = calloc(b.nchunks, sizeof(*b.packed_len));
    b.out = malloc(b.chunk);
    b.ctx = xd_codec_ctx_new();
    int rc = 1;
    if (!data || !b.packed || !b.packed_len || !b.out || !b.ctx) {
        fprintf(stderr, "xdmicro: out of memory for a %zu-byte buffer\n", size);
        goto out;
    }
    if (!o->from)
        fill_compressible(data, size, o->compressibility);
    /* touch the output once, so the timed pass measures the codec and not
     * the kernel handing out fresh pages */
    memset(b.packed, 0, size);
    printf("# one core, %zu MiB of %s in %zu-byte chunks, each compressed on its own; MBps of "
           "uncompressed bytes; ratio = stored / input\n",
           size >> 20, o->from ? o->from : "compressible data", b.chunk);
    rc = 0;
    for (int i = 0; i < nalgos; i++)
        if (codec_run(&b, algos[i], o))
            rc = 1;
out:
    xd_codec_ctx_free(b.ctx);
    free(b.out);
    free(b.packed_len);
    free(b.packed);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {.size = 64 << 10, .seconds = 1, .algo = "lz4", .level = 1,
                     .chunk = 64 << 10, .compressibility = 50};
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(USAGE, stdout);
        return results_written(0);
    }
    const struct command *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "xdmicro: unknown command \"%s\"; allowed: zero, codec or crc (xdmicro --help)\n",
                shown(argv[1]));
        return 2;
    }
    int rc = parse_opts(cmd, argc - 2, argv + 2, &o);
    if (rc > 0) {
        fputs(USAGE, stdout);
        return results_written(0);
    }
    if (rc)
        return 2;
    rc = cmd->bit == CMD_ZERO ? cmd_zero(&o) : cmd->bit == CMD_CODEC ? cmd_codec(&o) : cmd_crc(&o);
    return results_written(rc);
}
