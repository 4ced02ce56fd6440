/* container_fuzz.c - libFuzzer target over the compressed type's decoders:
 * the container header, map entries, chunk headers and every codec's
 * decompressor, fed hostile bytes. Built with ASan and UBSan; `make fuzz`
 * runs it, `make test` replays tests/fuzz/corpus/ through fuzz_replay.c.
 *
 * Input: byte 0 picks what to decode, the rest is the subject.
 *   0  a container header
 *   1  map entries (32 bytes each)
 *   2  stored chunk bytes exactly as read from a slot (byte 1 the algorithm
 *      the entry names, byte 2 the chunk size shift), against an entry that
 *      matches their length and crc (so the chunk header check runs)
 *   3  a codec payload: byte 1 is the algorithm, byte 2 the chunk size
 *      shift; the rest goes behind a valid chunk header and entry, so the
 *      decompressor itself sees the hostile bytes
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/compressed/codec.h"
#include "core/crc32c.h"
#include "drivers/compressed/container.h"

static struct xd_codec_ctx *ctx;
static uint8_t out[XD_CTR_MAX_CHUNK];
static uint8_t stored[XD_CTR_CHUNK_HDR_SIZE + XD_CTR_MAX_CHUNK];

static void fuzz_header(const uint8_t *p, size_t n)
{
    struct xd_ctr_header h;
    char err[256];
    if (!xd_ctr_header_decode(p, n, &h, err, sizeof(err)))
        (void)xd_ctr_file_size(h.logical_size, h.chunk_size);
}

static void fuzz_entries(const uint8_t *p, size_t n)
{
    struct xd_ctr_entry e;
    char err[256];
    for (uint64_t chunk = 0; n >= XD_CTR_ENTRY_SIZE;
         p += XD_CTR_ENTRY_SIZE, n -= XD_CTR_ENTRY_SIZE, chunk++) {
        (void)xd_ctr_entry_decode(p, 64 * 1024, chunk, true, &e, err, sizeof(err));
        (void)xd_ctr_entry_decode(p, 64 * 1024, chunk, false, &e, err, sizeof(err));
    }
}

static void decode_as_stored(const uint8_t *p, size_t n, uint8_t algo, uint64_t gen,
                             uint32_t chunk)
{
    struct xd_ctr_entry e = {.gen = gen, .stored_len = (uint32_t)n, .algo = algo, .slot = 0};
    char err[256];
    uint32_t valid;
    e.data_crc = xd_crc32c(0, p, n);
    (void)xd_ctr_chunk_decode(ctx, &e, 7, p, n, out, chunk, chunk, &valid, err, sizeof(err));
    /* and a prefix, as a 4k read of a large chunk asks */
    (void)xd_ctr_chunk_decode(ctx, &e, 7, p, n, out, chunk, (uint32_t)(n % chunk) + 1, &valid,
                              err, sizeof(err));
}

static void fuzz_stored(const uint8_t *p, size_t n)
{
    if (n < 2 || n - 2 > sizeof(stored))
        return;
    decode_as_stored(p + 2, n - 2, p[0] % XD_ALGO_COUNT, 1, XD_CTR_MIN_CHUNK << (p[1] % 11));
}

static void fuzz_payload(const uint8_t *p, size_t n)
{
    if (n < 2)
        return;
    uint8_t algo = p[0] % XD_ALGO_COUNT;
    uint32_t chunk = XD_CTR_MIN_CHUNK << (p[1] % 11); /* 4k .. 4m */
    p += 2, n -= 2;
    if (n > chunk)
        return;
    struct xd_ctr_chunk_hdr h = {.algo = algo, .payload_len = (uint32_t)n, .chunk_no = 7, .gen = 1};
    xd_ctr_chunk_hdr_encode(&h, stored);
    memcpy(stored + XD_CTR_CHUNK_HDR_SIZE, p, n);
    decode_as_stored(stored, XD_CTR_CHUNK_HDR_SIZE + n, algo, 1, chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx && !(ctx = xd_codec_ctx_new()))
        abort();
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: fuzz_header(data + 1, size - 1); break;
    case 1: fuzz_entries(data + 1, size - 1); break;
    case 2: fuzz_stored(data + 1, size - 1); break;
    case 3: fuzz_payload(data + 1, size - 1); break;
    }
    return 0;
}
