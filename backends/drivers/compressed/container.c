/* container.c - encode and decode the compressed type's on-disk format
 * (container.h, docs/CONTAINER.md). Every decoder treats its input as
 * hostile: lengths are checked before use and nothing is trusted because a
 * checksum matched (a crafted file can carry a valid crc).
 */
#include "container.h"

#include <errno.h>
#include <string.h>

#include "codec.h"
#include "../../core/crc32c.h"
#include "../../core/xd_internal.h"

/* --- little-endian fields -------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint64_t xd_ctr_file_size(uint64_t logical_size, uint32_t chunk_size)
{
    uint64_t n = xd_ctr_chunks(logical_size, chunk_size);
    if (!n)
        return XD_CTR_HEADER_SIZE;
    return xd_ctr_slot_off(n - 1, 1, chunk_size) + xd_ctr_slot_size(chunk_size);
}

/* --- header ------------------------------------------------------------------
 *   0  magic[8]   8 version   12 chunk_size   16 logical_size   24 created_algo
 *  28 created_level   32 reserved (zero) ...   60 crc32c of bytes 0..59
 */
#define HDR_CRC_OFF 60

void xd_ctr_header_encode(const struct xd_ctr_header *h, uint8_t out[XD_CTR_HEADER_SIZE])
{
    memset(out, 0, XD_CTR_HEADER_SIZE);
    memcpy(out, XD_CTR_MAGIC, 8);
    put32(out + 8, h->version);
    put32(out + 12, h->chunk_size);
    put64(out + 16, h->logical_size);
    put32(out + 24, h->created_algo);
    put32(out + 28, (uint32_t)h->created_level);
    put32(out + HDR_CRC_OFF, xd_crc32c(0, out, HDR_CRC_OFF));
}

int xd_ctr_header_decode(const uint8_t *buf, size_t len, struct xd_ctr_header *h, char *err,
                         size_t errlen)
{
    if (len < HDR_CRC_OFF + 4) {
        xd_errf(err, errlen, "truncated: %zu bytes, shorter than a container header", len);
        return -EINVAL;
    }
    if (memcmp(buf, XD_CTR_MAGIC, 8)) {
        xd_errf(err, errlen, "bad magic: not an xdevice compressed container");
        return -EINVAL;
    }
    if (get32(buf + HDR_CRC_OFF) != xd_crc32c(0, buf, HDR_CRC_OFF)) {
        xd_errf(err, errlen, "corrupt header: checksum mismatch");
        return -EINVAL;
    }
    h->version = get32(buf + 8);
    h->chunk_size = get32(buf + 12);
    h->logical_size = get64(buf + 16);
    h->created_algo = get32(buf + 24);
    h->created_level = (int32_t)get32(buf + 28);
    if (h->version < XD_CTR_VERSION_MIN || h->version > XD_CTR_VERSION) {
        xd_errf(err, errlen, "container version %u; this build reads versions %d to %d",
                h->version, XD_CTR_VERSION_MIN, XD_CTR_VERSION);
        return -EINVAL;
    }
    if (h->chunk_size < XD_CTR_MIN_CHUNK || h->chunk_size > XD_CTR_MAX_CHUNK ||
        (h->chunk_size & (h->chunk_size - 1))) {
        xd_errf(err, errlen, "corrupt header: chunk size %u is not a power of two in 4k..4m",
                h->chunk_size);
        return -EINVAL;
    }
    if (h->logical_size > XD_CTR_MAX_LOGICAL) {
        xd_errf(err, errlen, "corrupt header: logical size %llu is beyond 1 PiB",
                (unsigned long long)h->logical_size);
        return -EINVAL;
    }
    return 0;
}

/* --- chunk map entry -----------------------------------------------------------
 *   0 gen   8 stored_len   12 data_crc   16 algo   17 slot   18 flags   19..27 zero
 *  28 crc32c of bytes 0..27. All 32 bytes zero: never written. Flags
 *  ENTRY_PENDING with every other field zero: a first write under way.
 */
#define ENTRY_FLAGS_OFF 18
#define ENTRY_PENDING 1u
#define ENTRY_CRC_OFF 28

static uint32_t entry_crc(const uint8_t in[XD_CTR_ENTRY_SIZE], uint64_t chunk, bool seeded)
{
    uint8_t no[8];
    put64(no, chunk);
    return xd_crc32c(seeded ? xd_crc32c(0, no, sizeof(no)) : 0, in, ENTRY_CRC_OFF);
}

void xd_ctr_entry_encode(const struct xd_ctr_entry *e, uint64_t chunk, bool seeded,
                         uint8_t out[XD_CTR_ENTRY_SIZE])
{
    memset(out, 0, XD_CTR_ENTRY_SIZE);
    put64(out, e->gen);
    put32(out + 8, e->stored_len);
    put32(out + 12, e->data_crc);
    out[16] = e->algo;
    out[17] = e->slot;
    out[ENTRY_FLAGS_OFF] = e->pending ? ENTRY_PENDING : 0;
    put32(out + ENTRY_CRC_OFF, entry_crc(out, chunk, seeded));
}

static bool entry_is_blank(const uint8_t in[XD_CTR_ENTRY_SIZE])
{
    for (unsigned i = 0; i < XD_CTR_ENTRY_SIZE; i++)
        if (in[i])
            return false;
    return true;
}

int xd_ctr_entry_decode(const uint8_t in[XD_CTR_ENTRY_SIZE], uint32_t chunk_size, uint64_t chunk,
                        bool seeded, struct xd_ctr_entry *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof(*e));
    if (entry_is_blank(in))
        return 0;
    uint32_t crc = get32(in + ENTRY_CRC_OFF);
    if (crc != entry_crc(in, chunk, true) && (seeded || crc != entry_crc(in, chunk, false))) {
        xd_errf(err, errlen, "corrupt map entry: checksum mismatch");
        return -EINVAL;
    }
    e->gen = get64(in);
    e->stored_len = get32(in + 8);
    e->data_crc = get32(in + 12);
    e->algo = in[16];
    e->slot = in[17];
    uint8_t flags = in[ENTRY_FLAGS_OFF];
    if (flags == ENTRY_PENDING && !e->gen && !e->stored_len && !e->data_crc && !e->algo &&
        !e->slot) {
        e->pending = true;
        return 0;
    }
    if (flags) {
        xd_errf(err, errlen, "corrupt map entry: flags 0x%02x", flags);
        return -EINVAL;
    }
    if (!e->gen || e->algo >= XD_ALGO_COUNT || e->slot > 1) {
        xd_errf(err, errlen, "corrupt map entry: generation %llu, algorithm %u, slot %u",
                (unsigned long long)e->gen, e->algo, e->slot);
        return -EINVAL;
    }
    bool zero = e->algo == XD_ALGO_ZERO;
    if (zero ? e->stored_len != 0
             : (e->stored_len <= XD_CTR_CHUNK_HDR_SIZE ||
                e->stored_len > XD_CTR_CHUNK_HDR_SIZE + chunk_size)) {
        xd_errf(err, errlen, "corrupt map entry: stored length %u for a %s chunk of %u bytes",
                e->stored_len, xd_algo_name(e->algo), chunk_size);
        return -EINVAL;
    }
    return 0;
}

/* --- chunk header ---------------------------------------------------------------
 *   0 magic   4 algo   5..7 zero   8 payload_len   12 zero   16 chunk_no   24 gen
 */
void xd_ctr_chunk_hdr_encode(const struct xd_ctr_chunk_hdr *c, uint8_t out[XD_CTR_CHUNK_HDR_SIZE])
{
    memset(out, 0, XD_CTR_CHUNK_HDR_SIZE);
    put32(out, XD_CTR_CHUNK_MAGIC);
    out[4] = c->algo;
    put32(out + 8, c->payload_len);
    put64(out + 16, c->chunk_no);
    put64(out + 24, c->gen);
}

bool xd_ctr_chunk_hdr_names(const uint8_t in[XD_CTR_CHUNK_HDR_SIZE], uint64_t chunk_no,
                            uint64_t *gen)
{
    *gen = get64(in + 24);
    return get32(in) == XD_CTR_CHUNK_MAGIC && get64(in + 16) == chunk_no && *gen;
}

static int chunk_hdr_check(const struct xd_ctr_entry *e, uint64_t chunk_no, const uint8_t *p,
                           size_t len, char *err, size_t errlen)
{
    if (get32(p) != XD_CTR_CHUNK_MAGIC) {
        xd_errf(err, errlen, "corrupt chunk header: bad magic");
        return -EIO;
    }
    uint32_t payload = get32(p + 8);
    if (p[4] != e->algo || payload != len - XD_CTR_CHUNK_HDR_SIZE || get64(p + 16) != chunk_no ||
        get64(p + 24) != e->gen) {
        xd_errf(err, errlen, "corrupt chunk header: it says chunk %llu generation %llu, %s, %u bytes; the map says chunk %llu generation %llu, %s, %zu bytes",
                (unsigned long long)get64(p + 16), (unsigned long long)get64(p + 24),
                xd_algo_name(p[4]), payload, (unsigned long long)chunk_no,
                (unsigned long long)e->gen, xd_algo_name(e->algo), len - XD_CTR_CHUNK_HDR_SIZE);
        return -EIO;
    }
    return 0;
}

int xd_ctr_chunk_decode(struct xd_codec_ctx *ctx, const struct xd_ctr_entry *e, uint64_t chunk_no,
                        const uint8_t *stored, size_t len, uint8_t *out, uint32_t chunk_size,
                        uint32_t want, uint32_t *valid, char *err, size_t errlen)
{
    if (want > chunk_size)
        want = chunk_size;
    *valid = 0;
    if (!e->gen || e->algo == XD_ALGO_ZERO) {
        memset(out, 0, chunk_size);
        *valid = chunk_size;
        return 0;
    }
    if (len != e->stored_len || len <= XD_CTR_CHUNK_HDR_SIZE) {
        xd_errf(err, errlen, "truncated chunk: %zu of %u stored bytes", len, e->stored_len);
        return -EIO;
    }
    if (xd_crc32c(0, stored, len) != e->data_crc) {
        xd_errf(err, errlen, "corrupt chunk: stored data fails its crc32c");
        return -EIO;
    }
    int rc = chunk_hdr_check(e, chunk_no, stored, len, err, errlen);
    if (rc)
        return rc;
    const uint8_t *payload = stored + XD_CTR_CHUNK_HDR_SIZE;
    size_t plen = len - XD_CTR_CHUNK_HDR_SIZE;
    if (e->algo == XD_ALGO_RAW) {
        if (plen != chunk_size) {
            xd_errf(err, errlen, "corrupt chunk: raw payload of %zu bytes, chunk size %u", plen,
                    chunk_size);
            return -EIO;
        }
        memcpy(out, payload, want);
        *valid = want;
        return 0;
    }
    int64_t n = xd_codec_decompress_prefix(ctx, e->algo, payload, plen, out, want, chunk_size);
    if (n < 0) {
        xd_errf(err, errlen, "corrupt chunk: %s payload of %zu bytes does not decode to %u bytes",
                xd_algo_name(e->algo), plen, chunk_size);
        return -EIO;
    }
    *valid = (uint32_t)n;
    return 0;
}
