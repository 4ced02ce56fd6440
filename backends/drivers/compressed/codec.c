/* codec.c - see codec.h. Each codec is a compress/decompress pair over one
 * library; the per-thread context keeps whatever that library would otherwise
 * allocate per call (lz4 state, zstd and zlib streams, a bound-sized scratch
 * for the codecs that cannot stop at a smaller output).
 */
#include "codec.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <lz4hc.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "../../core/config.h"

struct xd_codec_ctx {
    void *lz4_state;
    void *lz4hc_state;
    ZSTD_CCtx *zstd_c;
    ZSTD_DCtx *zstd_d;
    z_stream deflate;
    int deflate_level; /* 0: deflate not initialized */
    z_stream inflate;
    bool inflate_ready;
    /* snappy and brotli need room for their worst case; when the caller's
     * cap is smaller they write here and the result is copied if it fits. */
    uint8_t *scratch;
    size_t scratch_size;
};

static const char *const algo_names[XD_ALGO_COUNT] = {
    [XD_ALGO_RAW] = "raw",       [XD_ALGO_ZERO] = "zero", [XD_ALGO_LZ4] = "lz4",
    [XD_ALGO_ZSTD] = "zstd",     [XD_ALGO_SNAPPY] = "snappy", [XD_ALGO_GZIP] = "gzip",
    [XD_ALGO_BROTLI] = "brotli",
};

/* An unknown codec id maps to RAW, which every compress call refuses: the
 * chunk is then stored as is rather than under a made-up algorithm. */
enum xd_algo xd_algo_of_codec(int codec_id)
{
    switch (codec_id) {
    case XD_CODEC_LZ4: return XD_ALGO_LZ4;
    case XD_CODEC_ZSTD: return XD_ALGO_ZSTD;
    case XD_CODEC_SNAPPY: return XD_ALGO_SNAPPY;
    case XD_CODEC_GZIP: return XD_ALGO_GZIP;
    case XD_CODEC_BROTLI: return XD_ALGO_BROTLI;
    }
    return XD_ALGO_RAW;
}

const char *xd_algo_name(int algo)
{
    return algo >= 0 && algo < XD_ALGO_COUNT ? algo_names[algo] : "?";
}

struct xd_codec_ctx *xd_codec_ctx_new(void)
{
    return calloc(1, sizeof(struct xd_codec_ctx));
}

void xd_codec_ctx_free(struct xd_codec_ctx *ctx)
{
    if (!ctx)
        return;
    free(ctx->lz4_state);
    free(ctx->lz4hc_state);
    ZSTD_freeCCtx(ctx->zstd_c);
    ZSTD_freeDCtx(ctx->zstd_d);
    if (ctx->deflate_level)
        deflateEnd(&ctx->deflate);
    if (ctx->inflate_ready)
        inflateEnd(&ctx->inflate);
    free(ctx->scratch);
    free(ctx);
}

static int clamp_level(int level, int min, int max)
{
    return level < min ? min : level > max ? max : level;
}

static uint8_t *scratch_get(struct xd_codec_ctx *ctx, size_t size)
{
    if (ctx->scratch_size < size) {
        uint8_t *p = realloc(ctx->scratch, size);
        if (!p)
            return NULL;
        ctx->scratch = p;
        ctx->scratch_size = size;
    }
    return ctx->scratch;
}

/* n compressed bytes at out (dst itself, or the scratch buffer when dst was
 * smaller than the codec's bound): 0 when they do not fit in cap, else
 * their length, copied into dst if they are not there yet. */
static int64_t deliver(const uint8_t *out, size_t n, void *dst, size_t cap)
{
    if (n > cap)
        return 0;
    if (out != dst)
        memcpy(dst, out, n);
    return (int64_t)n;
}

/* --- lz4: levels 1-3 the fast compressor, 4 and up lz4hc ---------------- */

static int64_t lz4_compress(struct xd_codec_ctx *ctx, int level, const void *src, size_t len,
                            void *dst, size_t cap)
{
    int icap = cap > INT_MAX ? INT_MAX : (int)cap;
    int n;
    if (len > LZ4_MAX_INPUT_SIZE)
        return -EINVAL;
    if (level <= 3) {
        if (!ctx->lz4_state && !(ctx->lz4_state = malloc((size_t)LZ4_sizeofState())))
            return -ENOMEM;
        n = LZ4_compress_fast_extState(ctx->lz4_state, src, dst, (int)len, icap, 1);
    } else {
        if (!ctx->lz4hc_state && !(ctx->lz4hc_state = malloc((size_t)LZ4_sizeofStateHC())))
            return -ENOMEM;
        n = LZ4_compress_HC_extStateHC(ctx->lz4hc_state, src, dst, (int)len, icap,
                                       clamp_level(level, 1, LZ4HC_CLEVEL_MAX));
    }
    return n > 0 ? n : 0; /* lz4 says 0 only when the output does not fit */
}

static int lz4_decompress(const void *src, size_t len, void *dst, size_t expect)
{
    if (len > INT_MAX || expect > INT_MAX)
        return -EIO;
    int n = LZ4_decompress_safe(src, dst, (int)len, (int)expect);
    return n >= 0 && (size_t)n == expect ? 0 : -EIO;
}

/* --- zstd ------------------------------------------------------------------ */

/* Straight into dst: zstd stops at cap by itself. It wants a few bytes of
 * slack beyond the frame it would write, so a frame within about 8 bytes of
 * cap is reported as not fitting; the chunk is then stored raw, a loss too
 * small to pay a copy through a scratch buffer on every chunk for. */
static int64_t zstd_compress(struct xd_codec_ctx *ctx, int level, const void *src, size_t len,
                             void *dst, size_t cap)
{
    if (!ctx->zstd_c && !(ctx->zstd_c = ZSTD_createCCtx()))
        return -ENOMEM;
    size_t n = ZSTD_compressCCtx(ctx->zstd_c, dst, cap, src, len,
                                 clamp_level(level, 1, ZSTD_maxCLevel()));
    if (!ZSTD_isError(n))
        return (int64_t)n;
    switch (ZSTD_getErrorCode(n)) {
    case ZSTD_error_dstSize_tooSmall: return 0;
    case ZSTD_error_memory_allocation: return -ENOMEM;
    default: return -EIO;
    }
}

static int zstd_decompress(struct xd_codec_ctx *ctx, const void *src, size_t len, void *dst,
                           size_t expect)
{
    if (!ctx->zstd_d && !(ctx->zstd_d = ZSTD_createDCtx()))
        return -ENOMEM;
    size_t n = ZSTD_decompressDCtx(ctx->zstd_d, dst, expect, src, len);
    return !ZSTD_isError(n) && n == expect ? 0 : -EIO;
}

/* --- snappy: no levels; compresses only into a worst-case sized buffer ---- */

static int64_t snappy_compress_into(struct xd_codec_ctx *ctx, const void *src, size_t len,
                                    void *dst, size_t cap)
{
    size_t bound = snappy_max_compressed_length(len);
    uint8_t *out = dst;
    if (cap < bound && !(out = scratch_get(ctx, bound)))
        return -ENOMEM;
    size_t n = bound;
    if (snappy_compress(src, len, (char *)out, &n) != SNAPPY_OK)
        return -EIO;
    return deliver(out, n, dst, cap);
}

static int snappy_decompress(const void *src, size_t len, void *dst, size_t expect)
{
    size_t n;
    if (snappy_uncompressed_length(src, len, &n) != SNAPPY_OK || n != expect)
        return -EIO;
    if (snappy_uncompress(src, len, dst, &n) != SNAPPY_OK || n != expect)
        return -EIO;
    return 0;
}

/* --- gzip: a zlib stream (RFC 1950) through reused z_streams ------------- */

static int64_t gzip_compress(struct xd_codec_ctx *ctx, int level, const void *src, size_t len,
                             void *dst, size_t cap)
{
    z_stream *z = &ctx->deflate;
    level = clamp_level(level, 1, 9);
    if (len > UINT_MAX)
        return -EINVAL;
    if (ctx->deflate_level != level) {
        if (ctx->deflate_level)
            deflateEnd(z);
        ctx->deflate_level = 0;
        memset(z, 0, sizeof(*z));
        if (deflateInit(z, level) != Z_OK)
            return -ENOMEM;
        ctx->deflate_level = level;
    } else if (deflateReset(z) != Z_OK) {
        return -EIO;
    }
    z->next_in = (Bytef *)src;
    z->avail_in = (uInt)len;
    z->next_out = dst;
    z->avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    int rc = deflate(z, Z_FINISH);
    if (rc == Z_STREAM_END)
        return (int64_t)z->total_out;
    return rc == Z_OK || rc == Z_BUF_ERROR ? 0 : -EIO; /* out of room, or broken */
}

static int gzip_decompress(struct xd_codec_ctx *ctx, const void *src, size_t len, void *dst,
                           size_t expect)
{
    z_stream *z = &ctx->inflate;
    if (len > UINT_MAX || expect > UINT_MAX)
        return -EIO;
    if (!ctx->inflate_ready) {
        memset(z, 0, sizeof(*z));
        if (inflateInit(z) != Z_OK)
            return -ENOMEM;
        ctx->inflate_ready = true;
    } else if (inflateReset(z) != Z_OK) {
        return -EIO;
    }
    z->next_in = (Bytef *)src;
    z->avail_in = (uInt)len;
    z->next_out = dst;
    z->avail_out = (uInt)expect;
    int rc = inflate(z, Z_FINISH);
    /* the stream must end exactly at the end of both buffers */
    return rc == Z_STREAM_END && z->total_out == expect && z->avail_in == 0 ? 0 : -EIO;
}

/* --- brotli: quality = level; the window fits the chunk --------------- */

/* A window no larger than the chunk keeps the decoder's ring buffer (which
 * it allocates per stream) as small as the chunk. */
static int brotli_window(size_t len)
{
    int lgwin = BROTLI_MIN_WINDOW_BITS;
    while (lgwin < BROTLI_DEFAULT_WINDOW && ((size_t)1 << lgwin) - 16 < len)
        lgwin++;
    return lgwin;
}

static int64_t brotli_compress(struct xd_codec_ctx *ctx, int level, const void *src, size_t len,
                               void *dst, size_t cap)
{
    size_t bound = BrotliEncoderMaxCompressedSize(len);
    uint8_t *out = dst;
    if (!bound)
        return -EINVAL;
    if (cap < bound && !(out = scratch_get(ctx, bound)))
        return -ENOMEM;
    size_t n = bound;
    if (!BrotliEncoderCompress(clamp_level(level, BROTLI_MIN_QUALITY, BROTLI_MAX_QUALITY),
                               brotli_window(len), BROTLI_MODE_GENERIC, len, src, &n, out))
        return -EIO;
    return deliver(out, n, dst, cap);
}

static int brotli_decompress(const void *src, size_t len, void *dst, size_t expect)
{
    BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!s)
        return -ENOMEM;
    const uint8_t *next_in = src;
    uint8_t *next_out = dst;
    size_t avail_in = len, avail_out = expect, total = 0;
    BrotliDecoderResult r =
        BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, &total);
    BrotliDecoderDestroyInstance(s);
    /* NEEDS_MORE_OUTPUT means the stream is longer than expect, NEEDS_MORE_INPUT
     * that it is cut short; trailing bytes are not part of a valid chunk */
    return r == BROTLI_DECODER_RESULT_SUCCESS && total == expect && avail_in == 0 ? 0 : -EIO;
}

/* --- dispatch -------------------------------------------------------------- */

int64_t xd_codec_compress(struct xd_codec_ctx *ctx, int algo, int level, const void *src,
                          size_t len, void *dst, size_t cap)
{
    switch (algo) {
    case XD_ALGO_LZ4: return lz4_compress(ctx, level, src, len, dst, cap);
    case XD_ALGO_ZSTD: return zstd_compress(ctx, level, src, len, dst, cap);
    case XD_ALGO_SNAPPY: return snappy_compress_into(ctx, src, len, dst, cap);
    case XD_ALGO_GZIP: return gzip_compress(ctx, level, src, len, dst, cap);
    case XD_ALGO_BROTLI: return brotli_compress(ctx, level, src, len, dst, cap);
    }
    return -EINVAL;
}

int64_t xd_codec_decompress_prefix(struct xd_codec_ctx *ctx, int algo, const void *src,
                                   size_t len, void *dst, size_t want, size_t expect)
{
    if (algo == XD_ALGO_LZ4 && want < expect && len <= INT_MAX && expect <= INT_MAX) {
        /* lz4 can stop once want bytes are out: a 4k read of a 64k chunk
         * decodes on average half of it */
        int n = LZ4_decompress_safe_partial(src, dst, (int)len, (int)want, (int)expect);
        return n >= 0 && (size_t)n >= want ? n : -EIO;
    }
    int rc = xd_codec_decompress(ctx, algo, src, len, dst, expect);
    return rc ? rc : (int64_t)expect;
}

int xd_codec_decompress(struct xd_codec_ctx *ctx, int algo, const void *src, size_t len,
                        void *dst, size_t expect)
{
    switch (algo) {
    case XD_ALGO_LZ4: return lz4_decompress(src, len, dst, expect);
    case XD_ALGO_ZSTD: return zstd_decompress(ctx, src, len, dst, expect);
    case XD_ALGO_SNAPPY: return snappy_decompress(src, len, dst, expect);
    case XD_ALGO_GZIP: return gzip_decompress(ctx, src, len, dst, expect);
    case XD_ALGO_BROTLI: return brotli_decompress(src, len, dst, expect);
    }
    return -EINVAL;
}
