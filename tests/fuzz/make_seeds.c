/* make_seeds.c - write the fuzz target's seed corpus (tests/fuzz/corpus):
 * a real container header, map entries, and stored chunks and payloads of
 * every algorithm, each prefixed with the target's selector byte (see
 * container_fuzz.c). Run once; the files are committed.
 *
 *   build/tests/fuzz_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/compressed/codec.h"
#include "core/crc32c.h"
#include "drivers/compressed/container.h"

#define CHUNK 4096 /* small seeds fuzz faster; the target takes any size */

static void put(const char *dir, const char *name, uint8_t selector, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(&selector, 1, 1, fp) != 1 || fwrite(p, 1, n, fp) != n) {
        perror(path);
        exit(1);
    }
    fclose(fp);
}

/* Half random, half zeros per 512 bytes: compresses about 2:1. */
static void fill(uint8_t *p, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (i % 512) < 256 ? (uint8_t)rand() : 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    static uint8_t hdr[XD_CTR_HEADER_SIZE], data[CHUNK], payload[CHUNK * 2],
        stored[2 + XD_CTR_CHUNK_HDR_SIZE + CHUNK], entries[4 * XD_CTR_ENTRY_SIZE];
    struct xd_codec_ctx *ctx = xd_codec_ctx_new();
    char name[64];

    struct xd_ctr_header h = {.version = XD_CTR_VERSION, .chunk_size = CHUNK,
                              .logical_size = 256 << 20, .created_algo = XD_ALGO_LZ4,
                              .created_level = 1};
    xd_ctr_header_encode(&h, hdr);
    put(dir, "header", 0, hdr, 64);

    fill(data, CHUNK, 1);
    for (int algo = XD_ALGO_RAW; algo < XD_ALGO_COUNT; algo++) {
        if (algo == XD_ALGO_ZERO)
            continue;
        int64_t plen = CHUNK;
        if (algo == XD_ALGO_RAW)
            memcpy(payload, data, CHUNK);
        else if ((plen = xd_codec_compress(ctx, algo, 1, data, CHUNK, payload, sizeof(payload))) <= 0)
            return 1;
        /* the payload behind a valid header (selector 3: algo, chunk shift 4 = 64k) */
        uint8_t *p3 = malloc((size_t)plen + 2);
        p3[0] = (uint8_t)algo;
        p3[1] = 0; /* 4k << 0 */
        memcpy(p3 + 2, payload, (size_t)plen);
        snprintf(name, sizeof(name), "payload-%s", xd_algo_name(algo));
        put(dir, name, 3, p3, (size_t)plen + 2);
        free(p3);
        /* the stored bytes as in a slot (selector 2) */
        struct xd_ctr_chunk_hdr ch = {.algo = (uint8_t)algo, .payload_len = (uint32_t)plen,
                                      .chunk_no = 7, .gen = 1};
        stored[0] = (uint8_t)algo;
        stored[1] = 0;
        xd_ctr_chunk_hdr_encode(&ch, stored + 2);
        memcpy(stored + 2 + XD_CTR_CHUNK_HDR_SIZE, payload, (size_t)plen);
        snprintf(name, sizeof(name), "stored-%s", xd_algo_name(algo));
        put(dir, name, 2, stored, 2 + XD_CTR_CHUNK_HDR_SIZE + (size_t)plen);
        /* its map entry */
        struct xd_ctr_entry e = {.gen = 1, .stored_len = XD_CTR_CHUNK_HDR_SIZE + (uint32_t)plen,
                                 .algo = (uint8_t)algo, .slot = (uint8_t)(algo & 1)};
        e.data_crc = xd_crc32c(0, stored + 2, e.stored_len);
        xd_ctr_entry_encode(&e, algo % 4, true, entries + (algo % 4) * XD_CTR_ENTRY_SIZE);
    }
    put(dir, "entries", 1, entries, sizeof(entries));
    xd_codec_ctx_free(ctx);
    return 0;
}
