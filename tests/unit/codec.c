/* codec.c - unit test of crc32c (check values, chaining, hardware against the
 * table fallback) and of the codecs: round trips at several levels, a cap too
 * small, and hostile streams (truncated, corrupted, garbage, wrong length)
 * that must fail with -EIO without touching a byte outside the buffers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drivers/compressed/codec.h"
#include "config.h"
#include "crc32c.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_random();
}

/* Words from a small vocabulary with numbers between: compresses to about a
 * third with any codec, but is not a trivial run. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char *const words[] = {"chunk ", "slot ", "entry ", "crc32c ", "payload ",
                                        "generation ", "sparse ", "compressed ", "\n"};
    size_t i = 0;
    while (i < n) {
        char tmp[32];
        const char *w = words[next_random() % 9];
        int len = snprintf(tmp, sizeof(tmp), "%s%u ", w, (unsigned)(next_random() % 1000));
        for (int k = 0; k < len && i < n; k++)
            p[i++] = (uint8_t)tmp[k];
    }
}

static int guard_intact(const uint8_t *p)
{
    for (int i = 0; i < GUARD; i++)
        if (p[i] != GUARD_BYTE)
            return 0;
    return 1;
}

/* --- crc32c ---------------------------------------------------------------- */

static void test_crc_vectors(void)
{
    /* RFC 3720 (iSCSI) B.4, and the usual "123456789" check value */
    uint8_t zeros[32] = {0}, ones[32], up[32], down[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        up[i] = (uint8_t)i, down[i] = (uint8_t)(31 - i);
    uint32_t (*const impl[2])(uint32_t, const void *, size_t) = {xd_crc32c, xd_crc32c_sw};
    for (int k = 0; k < 2; k++) {
        CHECK_MSG(impl[k](0, "123456789", 9) == 0xE3069283u, "impl %d: %08x", k,
                  impl[k](0, "123456789", 9));
        CHECK(impl[k](0, zeros, 32) == 0x8A9136AAu);
        CHECK(impl[k](0, ones, 32) == 0x62A8AB43u);
        CHECK(impl[k](0, up, 32) == 0x46DD794Eu);
        CHECK(impl[k](0, down, 32) == 0x113FDB5Cu);
        CHECK(impl[k](0, "", 0) == 0);
        CHECK(impl[k](0x12345678u, "", 0) == 0x12345678u);
        CHECK(impl[k](impl[k](0, "1234", 4), "56789", 5) == 0xE3069283u);
    }
}

static void test_crc_random(void)
{
    enum { MAX = 3 * 8192 * 3 + 4096 };
    uint8_t *buf = malloc(MAX + 64);
    fill_random(buf, MAX + 64);
    /* lengths around the three-stream strip sizes, then random ones */
    size_t edges[] = {0, 1, 7, 8, 9, 63, 64, 767, 768, 769, 1535, 1536, 1537, 24575, 24576,
                      24577, 24576 + 768, 49152 + 767, MAX};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++)
        for (size_t align = 0; align < 9; align++) {
            uint32_t seed = (uint32_t)next_random();
            CHECK_MSG(xd_crc32c(seed, buf + align, edges[e]) ==
                          xd_crc32c_sw(seed, buf + align, edges[e]),
                      "len %zu align %zu", edges[e], align);
        }
    for (int i = 0; i < 2000; i++) {
        size_t align = next_random() % 64, len = next_random() % (MAX + 1);
        uint32_t seed = (uint32_t)next_random();
        uint32_t hw = xd_crc32c(seed, buf + align, len);
        CHECK_MSG(hw == xd_crc32c_sw(seed, buf + align, len), "len %zu align %zu", len, align);
        /* chaining at a random split equals one call over the whole */
        size_t split = len ? next_random() % len : 0;
        CHECK_MSG(xd_crc32c(xd_crc32c(seed, buf + align, split), buf + align + split,
                            len - split) == hw,
                  "len %zu split %zu", len, split);
        CHECK(xd_crc32c_sw(xd_crc32c_sw(seed, buf + align, split), buf + align + split,
                           len - split) == hw);
    }
    /* a single flipped bit changes the crc */
    uint32_t before = xd_crc32c(0, buf, 65536);
    buf[12345] ^= 0x10;
    CHECK(xd_crc32c(0, buf, 65536) != before);
    free(buf);
}

/* --- codecs ---------------------------------------------------------------- */

struct level_set {
    int algo;
    int levels[6];
};

static const struct level_set codecs[] = {
    {XD_ALGO_LZ4, {1, 3, 4, 9, 12}},
    {XD_ALGO_ZSTD, {1, 3, 9, 19, 22}},
    {XD_ALGO_SNAPPY, {1}},
    {XD_ALGO_GZIP, {1, 6, 9}},
    {XD_ALGO_BROTLI, {1, 5, 11}},
};
#define NCODECS (sizeof(codecs) / sizeof(codecs[0]))

enum { KIB64 = 64 * 1024, BIG = 4 * 1024 * 1024 };

/* Compress with a generous cap, decompress (on another context) with guard
 * bytes behind the output, compare. Returns the compressed size. */
static int64_t round_trip(struct xd_codec_ctx *c, struct xd_codec_ctx *d, int algo, int level,
                          const uint8_t *src, size_t len, const char *what)
{
    size_t cap = len + len / 2 + 1024;
    uint8_t *packed = malloc(cap), *out = malloc(len + GUARD);
    memset(out, GUARD_BYTE, len + GUARD);
    int64_t n = xd_codec_compress(c, algo, level, src, len, packed, cap);
    CHECK_MSG(n > 0 && (size_t)n <= cap, "%s level %d %s: compress gave %lld",
              xd_algo_name(algo), level, what, (long long)n);
    if (n > 0) {
        int rc = xd_codec_decompress(d, algo, packed, (size_t)n, out, len);
        CHECK_MSG(rc == 0 && !memcmp(out, src, len), "%s level %d %s: round trip rc %d",
                  xd_algo_name(algo), level, what, rc);
        CHECK_MSG(guard_intact(out + len), "%s level %d %s: wrote past expect",
                  xd_algo_name(algo), level, what);
    }
    free(packed);
    free(out);
    return n;
}

static void test_round_trips(void)
{
    uint8_t *text = malloc(BIG), *random = malloc(KIB64), *zero = calloc(1, KIB64);
    fill_text(text, BIG);
    fill_random(random, KIB64);
    struct xd_codec_ctx *c = xd_codec_ctx_new(), *d = xd_codec_ctx_new();
    CHECK(c && d);
    for (size_t i = 0; i < NCODECS; i++) {
        int algo = codecs[i].algo;
        for (int l = 0; l < 6 && codecs[i].levels[l]; l++) {
            int level = codecs[i].levels[l];
            int64_t n = round_trip(c, d, algo, level, text, KIB64, "text 64k");
            CHECK_MSG(n > 0 && n < KIB64 / 2, "%s level %d: text 64k to %lld bytes",
                      xd_algo_name(algo), level, (long long)n);
            n = round_trip(c, d, algo, level, zero, KIB64, "zeros 64k");
            CHECK_MSG(n > 0 && n < KIB64 / 16, "%s level %d: zeros 64k to %lld bytes",
                      xd_algo_name(algo), level, (long long)n);
            round_trip(c, d, algo, level, random, KIB64, "random 64k");
            round_trip(c, d, algo, level, text, 1, "1 byte");
            round_trip(c, d, algo, level, random, 4097, "random 4097");
            round_trip(c, d, algo, level, text + 3, 4096, "text 4k");
        }
        /* the largest chunk, at the fastest level */
        round_trip(c, d, algo, codecs[i].levels[0], text, BIG, "text 4m");
    }
    xd_codec_ctx_free(c);
    xd_codec_ctx_free(d);
    free(text);
    free(random);
    free(zero);
}

/* Switching levels on one context gives what a fresh context gives. */
static void test_context_reuse(void)
{
    uint8_t *text = malloc(KIB64), *a = malloc(KIB64), *b = malloc(KIB64);
    fill_text(text, KIB64);
    struct xd_codec_ctx *reused = xd_codec_ctx_new();
    for (size_t i = 0; i < NCODECS; i++) {
        int algo = codecs[i].algo;
        for (int round = 0; round < 2; round++)
            for (int l = 0; l < 6 && codecs[i].levels[l]; l++) {
                int level = codecs[i].levels[l];
                struct xd_codec_ctx *fresh = xd_codec_ctx_new();
                int64_t na = xd_codec_compress(reused, algo, level, text, KIB64, a, KIB64);
                int64_t nb = xd_codec_compress(fresh, algo, level, text, KIB64, b, KIB64);
                CHECK_MSG(na > 0 && na == nb && !memcmp(a, b, (size_t)na),
                          "%s level %d: reused context %lld bytes, fresh %lld",
                          xd_algo_name(algo), level, (long long)na, (long long)nb);
                xd_codec_ctx_free(fresh);
            }
    }
    xd_codec_ctx_free(reused);
    free(text);
    free(a);
    free(b);
}

/* A cap below the compressed size gives 0 and leaves the bytes past cap alone. */
static void test_cap_too_small(void)
{
    uint8_t *text = malloc(KIB64), *random = malloc(KIB64);
    uint8_t *dst = malloc(2 * KIB64 + GUARD);
    fill_text(text, KIB64);
    fill_random(random, KIB64);
    struct xd_codec_ctx *c = xd_codec_ctx_new();
    for (size_t i = 0; i < NCODECS; i++) {
        int algo = codecs[i].algo;
        for (int l = 0; l < 6 && codecs[i].levels[l]; l++) {
            int level = codecs[i].levels[l];
            int64_t full = xd_codec_compress(c, algo, level, text, KIB64, dst, 2 * KIB64);
            CHECK(full > 1);
            if (full <= 1)
                continue;
            size_t caps[] = {0, 1, (size_t)full / 2, (size_t)full - 1};
            for (int k = 0; k < 4; k++) {
                memset(dst, GUARD_BYTE, 2 * KIB64 + GUARD);
                int64_t n = xd_codec_compress(c, algo, level, text, KIB64, dst, caps[k]);
                CHECK_MSG(n == 0, "%s level %d: cap %zu of %lld gave %lld", xd_algo_name(algo),
                          level, caps[k], (long long)full, (long long)n);
                CHECK_MSG(guard_intact(dst + caps[k]), "%s level %d: wrote past cap %zu",
                          xd_algo_name(algo), level, caps[k]);
            }
            /* incompressible data never fits in its own size */
            memset(dst, GUARD_BYTE, 2 * KIB64 + GUARD);
            int64_t n = xd_codec_compress(c, algo, level, random, KIB64, dst, KIB64);
            CHECK_MSG(n == 0, "%s level %d: random 64k into 64k gave %lld", xd_algo_name(algo),
                      level, (long long)n);
            CHECK(guard_intact(dst + KIB64));
            /* exactly the compressed size fits; zstd wants a few bytes of slack */
            size_t slack = algo == XD_ALGO_ZSTD ? 16 : 0;
            n = xd_codec_compress(c, algo, level, text, KIB64, dst, (size_t)full + slack);
            CHECK_MSG(n == full, "%s level %d: cap == size gave %lld of %lld", xd_algo_name(algo),
                      level, (long long)n, (long long)full);
        }
    }
    xd_codec_ctx_free(c);
    free(text);
    free(random);
    free(dst);
}

/* Decompress hostile input: the result must be -EIO (or, for a corruption
 * the format cannot see, 0), and nothing past expect may change. The source
 * is copied to an exact-size allocation, so a sanitizer build also catches
 * reads past its end. */
static int decode_hostile(struct xd_codec_ctx *d, int algo, const uint8_t *src, size_t len,
                          uint8_t *out, size_t expect)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, src, len);
    memset(out, GUARD_BYTE, expect + GUARD);
    int rc = xd_codec_decompress(d, algo, copy, len, out, expect);
    CHECK_MSG(rc == 0 || rc == -EIO, "%s: rc %d", xd_algo_name(algo), rc);
    CHECK_MSG(guard_intact(out + expect), "%s: wrote past expect %zu (input %zu bytes)",
              xd_algo_name(algo), expect, len);
    free(copy);
    return rc;
}

static void test_hostile(void)
{
    uint8_t *text = malloc(KIB64), *packed = malloc(2 * KIB64), *out = malloc(KIB64 + 1 + GUARD);
    uint8_t *work = malloc(2 * KIB64), *garbage = malloc(4096);
    fill_text(text, KIB64);
    struct xd_codec_ctx *c = xd_codec_ctx_new(), *d = xd_codec_ctx_new();
    for (size_t i = 0; i < NCODECS; i++) {
        int algo = codecs[i].algo;
        const char *name = xd_algo_name(algo);
        int64_t n = xd_codec_compress(c, algo, codecs[i].levels[0], text, KIB64, packed,
                                      2 * KIB64);
        CHECK(n > 16);
        if (n <= 16)
            continue;
        size_t len = (size_t)n;
        CHECK(decode_hostile(d, algo, packed, len, out, KIB64) == 0);

        /* a stream that decodes to another length */
        CHECK_MSG(decode_hostile(d, algo, packed, len, out, KIB64 - 1) == -EIO, "%s", name);
        CHECK_MSG(decode_hostile(d, algo, packed, len, out, KIB64 + 1) == -EIO, "%s", name);
        CHECK_MSG(decode_hostile(d, algo, packed, len, out, 4096) == -EIO, "%s", name);
        CHECK_MSG(decode_hostile(d, algo, packed, len, out, 0) == -EIO, "%s", name);

        /* truncated anywhere, and with a byte of trailing garbage */
        size_t cuts[] = {0, 1, 2, len / 3, len / 2, len - 2, len - 1};
        for (int k = 0; k < 7; k++)
            CHECK_MSG(decode_hostile(d, algo, packed, cuts[k], out, KIB64) == -EIO,
                      "%s cut to %zu of %zu", name, cuts[k], len);
        memcpy(work, packed, len);
        work[len] = 0x5a;
        int rc = decode_hostile(d, algo, work, len + 1, out, KIB64);
        CHECK_MSG(rc == -EIO, "%s: trailing byte accepted", name);

        /* every byte position corrupted in turn, then random multi-byte damage */
        int rejected = 0, tries = 0;
        for (size_t pos = 0; pos < len; pos += 1 + len / 512, tries++) {
            memcpy(work, packed, len);
            work[pos] ^= (uint8_t)(1 + next_random() % 255);
            rejected += decode_hostile(d, algo, work, len, out, KIB64) == -EIO;
        }
        for (int t = 0; t < 200; t++, tries++) {
            memcpy(work, packed, len);
            for (int k = 0; k < 8; k++)
                work[next_random() % len] = (uint8_t)next_random();
            rejected += decode_hostile(d, algo, work, len, out, KIB64) == -EIO;
        }
        /* formats without a checksum accept some damaged literals, but the
         * bulk of damage to a stream must be seen */
        CHECK_MSG(rejected > tries / 4, "%s: only %d of %d corrupt streams rejected", name,
                  rejected, tries);

        /* the header of a valid stream ahead of garbage, and pure garbage */
        for (int t = 0; t < 100; t++) {
            size_t glen = 1 + next_random() % 4096;
            fill_random(garbage, glen);
            CHECK_MSG(decode_hostile(d, algo, garbage, glen, out, KIB64) == -EIO,
                      "%s: %zu random bytes accepted", name, glen);
            size_t keep = next_random() % (len < 32 ? len : 32);
            memcpy(work, packed, keep);
            memcpy(work + keep, garbage, glen);
            CHECK_MSG(decode_hostile(d, algo, work, keep + glen, out, KIB64) == -EIO,
                      "%s: %zu header bytes + garbage accepted", name, keep);
        }
        /* the decoder is still usable after all that */
        CHECK(decode_hostile(d, algo, packed, len, out, KIB64) == 0 && !memcmp(out, text, KIB64));
    }
    xd_codec_ctx_free(c);
    xd_codec_ctx_free(d);
    free(text);
    free(packed);
    free(out);
    free(work);
    free(garbage);
}

static void test_not_codecs(void)
{
    uint8_t src[16] = {1}, dst[64];
    struct xd_codec_ctx *c = xd_codec_ctx_new();
    int not_codecs[] = {XD_ALGO_RAW, XD_ALGO_ZERO, XD_ALGO_COUNT, -1, 255};
    for (int i = 0; i < 5; i++) {
        CHECK(xd_codec_compress(c, not_codecs[i], 1, src, sizeof(src), dst, sizeof(dst)) ==
              -EINVAL);
        CHECK(xd_codec_decompress(c, not_codecs[i], src, sizeof(src), dst, sizeof(dst)) ==
              -EINVAL);
    }
    xd_codec_ctx_free(c);
    xd_codec_ctx_free(NULL);

    CHECK(xd_algo_of_codec(XD_CODEC_LZ4) == XD_ALGO_LZ4);
    CHECK(xd_algo_of_codec(XD_CODEC_ZSTD) == XD_ALGO_ZSTD);
    CHECK(xd_algo_of_codec(XD_CODEC_SNAPPY) == XD_ALGO_SNAPPY);
    CHECK(xd_algo_of_codec(XD_CODEC_GZIP) == XD_ALGO_GZIP);
    CHECK(xd_algo_of_codec(XD_CODEC_BROTLI) == XD_ALGO_BROTLI);
    CHECK(xd_algo_of_codec(99) == XD_ALGO_RAW);
    /* names are what the config calls the codecs */
    for (int id = XD_CODEC_LZ4; id <= XD_CODEC_BROTLI; id++)
        CHECK(!strcmp(xd_algo_name(xd_algo_of_codec(id)),
                      xd_enum_name(XD_KEY_compression_type, id)));
    CHECK(!strcmp(xd_algo_name(XD_ALGO_RAW), "raw"));
    CHECK(!strcmp(xd_algo_name(XD_ALGO_ZERO), "zero"));
    CHECK(!strcmp(xd_algo_name(XD_ALGO_COUNT), "?"));
    CHECK(!strcmp(xd_algo_name(-1), "?"));
}

int main(void)
{
    test_crc_vectors();
    test_crc_random();
    test_not_codecs();
    test_round_trips();
    test_context_reuse();
    test_cap_too_small();
    test_hostile();
    return check_result();
}
