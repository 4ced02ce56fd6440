/* codec.h - the compressed type's codecs (lz4/lz4hc, zstd, snappy, zlib,
 * brotli) behind one interface, over Debian's libraries.
 *
 * Codec ids are the on-disk algorithm byte of a chunk; they never change
 * meaning once written (docs/CONTAINER.md). RAW and ZERO are not codecs but
 * share the id space so a chunk map entry needs one byte for "how stored".
 */
#ifndef XD_CODEC_H
#define XD_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum xd_algo {
    XD_ALGO_RAW = 0,    /* stored as is */
    XD_ALGO_ZERO = 1,   /* all zeros: nothing stored */
    XD_ALGO_LZ4 = 2,    /* lz4 or lz4hc: one block format */
    XD_ALGO_ZSTD = 3,
    XD_ALGO_SNAPPY = 4,
    XD_ALGO_GZIP = 5,   /* zlib stream (RFC 1950) */
    XD_ALGO_BROTLI = 6,
    XD_ALGO_COUNT
};

/* The on-disk algorithm of a compression_type enum value (enum xd_codec_id). */
enum xd_algo xd_algo_of_codec(int codec_id);
const char *xd_algo_name(int algo); /* "raw", "zero", "lz4", ...; "?" when unknown */

/* Scratch state one thread reuses across calls (zstd contexts, lz4 state);
 * never shared between threads. */
struct xd_codec_ctx;
struct xd_codec_ctx *xd_codec_ctx_new(void);
void xd_codec_ctx_free(struct xd_codec_ctx *ctx);

/* Compress src into dst (cap bytes). Returns the compressed length, 0 when
 * the result would not fit in cap (the caller then stores the chunk raw), or
 * -errno on a codec failure. level follows compression_level (lz4 above 3
 * is lz4hc). */
int64_t xd_codec_compress(struct xd_codec_ctx *ctx, int algo, int level, const void *src,
                          size_t len, void *dst, size_t cap);
/* Decompress exactly expect bytes into dst. 0, or -EIO when src is not a
 * valid stream of the algorithm or does not decode to exactly expect bytes.
 * Never reads outside src[0..len) nor writes outside dst[0..expect). */
int xd_codec_decompress(struct xd_codec_ctx *ctx, int algo, const void *src, size_t len,
                        void *dst, size_t expect);

/* Decompress at least the first want bytes (want <= expect; dst has room
 * for expect). Codecs that can stop early (lz4) do; the others decode it
 * all. Returns how many bytes at dst are now valid (>= want), or -EIO. */
int64_t xd_codec_decompress_prefix(struct xd_codec_ctx *ctx, int algo, const void *src,
                                   size_t len, void *dst, size_t want, size_t expect);

#endif
