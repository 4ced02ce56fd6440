/* container.h - the compressed type's on-disk format (docs/CONTAINER.md):
 * layout arithmetic and the decoders of the header, the chunk map entries
 * and the chunk headers. Pure functions over bytes, no I/O, so the fuzz
 * target (tests/fuzz/container_fuzz.c) can drive them with hostile input.
 *
 *   offset 0      header block (XD_CTR_HEADER_SIZE bytes)
 *   then groups   [map page: XD_CTR_GROUP_CHUNKS entries][2 slots per chunk]
 *
 * Each logical chunk has two slots; a write goes to the one the map does not
 * point at and then flips the entry, so a chunk is never overwritten in
 * place and a kill at any moment leaves the old or the new version whole.
 * The abandoned slot is punched (its space reclaimed) after the flip.
 * All integers are little-endian.
 */
#ifndef XD_CONTAINER_H
#define XD_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XD_CTR_MAGIC "XDCNTR\r\n" /* 8 bytes; \r\n catches text-mode mangling */
/* Version 2 marks a chunk's first write pending in its map entry before
 * the slot is written, so that a blank entry beside a slot holding the
 * chunk is known to be erased (docs/CONTAINER.md). Version 1 containers are
 * still read, and made version 2 by their next sole writable opener. */
#define XD_CTR_VERSION 2
#define XD_CTR_VERSION_MIN 1
#define XD_CTR_HEADER_SIZE 4096u
#define XD_CTR_ENTRY_SIZE 32u
#define XD_CTR_MAP_PAGE 4096u
#define XD_CTR_GROUP_CHUNKS (XD_CTR_MAP_PAGE / XD_CTR_ENTRY_SIZE) /* 128 */
#define XD_CTR_CHUNK_HDR_SIZE 32u
#define XD_CTR_CHUNK_MAGIC 0x4b434458u /* "XDCK" */
#define XD_CTR_MIN_CHUNK (4u * 1024)
#define XD_CTR_MAX_CHUNK (4u * 1024 * 1024)
/* Largest logical size a container may declare (1 PiB): keeps every offset
 * computed from a hostile header far from overflow. */
#define XD_CTR_MAX_LOGICAL (1ull << 50)

struct xd_ctr_header {
    uint32_t version;
    uint32_t chunk_size;   /* logical bytes per chunk, a power of two */
    uint64_t logical_size; /* bytes the container holds for its users */
    uint32_t created_algo; /* enum xd_algo at creation; informational */
    int32_t created_level;
};

/* One chunk map entry. An all-zero (blank) entry is a chunk never written:
 * zeros. So is a pending one: its first write began (slot 0) and has not
 * flipped the entry yet, or its writer was killed. */
struct xd_ctr_entry {
    uint64_t gen;        /* bumped by every write of the chunk; 0 never written */
    uint32_t stored_len; /* bytes in the slot: chunk header + payload; 0 for ZERO */
    uint32_t data_crc;   /* crc32c of those stored bytes */
    uint8_t algo;        /* enum xd_algo */
    uint8_t slot;        /* 0 or 1 */
    bool pending;        /* gen 0, a first write under way (version 2) */
};

/* The header at the start of every stored chunk; it repeats what the map
 * says so that a misplaced or stale slot is recognised as such. */
struct xd_ctr_chunk_hdr {
    uint8_t algo;
    uint32_t payload_len;
    uint64_t chunk_no;
    uint64_t gen;
};

/* --- layout ---------------------------------------------------------------- */

/* Bytes one slot takes: a chunk header and a raw chunk, 4 KiB aligned. */
static inline uint64_t xd_ctr_slot_size(uint32_t chunk_size)
{
    return (uint64_t)chunk_size + 4096;
}
static inline uint64_t xd_ctr_group_size(uint32_t chunk_size)
{
    return XD_CTR_MAP_PAGE + 2 * XD_CTR_GROUP_CHUNKS * xd_ctr_slot_size(chunk_size);
}
static inline uint64_t xd_ctr_chunks(uint64_t logical_size, uint32_t chunk_size)
{
    return (logical_size + chunk_size - 1) / chunk_size;
}
static inline uint64_t xd_ctr_group_off(uint64_t group, uint32_t chunk_size)
{
    return XD_CTR_HEADER_SIZE + group * xd_ctr_group_size(chunk_size);
}
static inline uint64_t xd_ctr_entry_off(uint64_t chunk, uint32_t chunk_size)
{
    return xd_ctr_group_off(chunk / XD_CTR_GROUP_CHUNKS, chunk_size) +
           (chunk % XD_CTR_GROUP_CHUNKS) * XD_CTR_ENTRY_SIZE;
}
static inline uint64_t xd_ctr_slot_off(uint64_t chunk, unsigned slot, uint32_t chunk_size)
{
    return xd_ctr_group_off(chunk / XD_CTR_GROUP_CHUNKS, chunk_size) + XD_CTR_MAP_PAGE +
           (2 * (chunk % XD_CTR_GROUP_CHUNKS) + slot) * xd_ctr_slot_size(chunk_size);
}
/* The file length a container of logical_size bytes has: the end of its
 * last chunk's second slot. A shorter file is truncated. */
uint64_t xd_ctr_file_size(uint64_t logical_size, uint32_t chunk_size);

/* --- encoders and decoders ------------------------------------------------- */

/* Decoders return 0, or -EINVAL with what is wrong in err (no file name:
 * the caller adds it). They read only the bytes they are given. */
void xd_ctr_header_encode(const struct xd_ctr_header *h, uint8_t out[XD_CTR_HEADER_SIZE]);
int xd_ctr_header_decode(const uint8_t *buf, size_t len, struct xd_ctr_header *h, char *err,
                         size_t errlen);

/* The entry of chunk: in version 2 (seeded) its crc is seeded with the
 * chunk's number, so an entry (or a map page) written at another chunk's
 * place fails it; version 1's is not. */
void xd_ctr_entry_encode(const struct xd_ctr_entry *e, uint64_t chunk, bool seeded,
                         uint8_t out[XD_CTR_ENTRY_SIZE]);
/* chunk_size bounds stored_len. seeded: only a crc seeded with chunk
 * passes (version 2); else either (version 1, whose entries the upgrade to
 * version 2 rewrites seeded, and which a kill may leave half done). */
int xd_ctr_entry_decode(const uint8_t in[XD_CTR_ENTRY_SIZE], uint32_t chunk_size, uint64_t chunk,
                        bool seeded, struct xd_ctr_entry *e, char *err, size_t errlen);

void xd_ctr_chunk_hdr_encode(const struct xd_ctr_chunk_hdr *c, uint8_t out[XD_CTR_CHUNK_HDR_SIZE]);
/* Does this chunk header say it is a version of chunk_no? *gen gets which.
 * Evidence that the chunk was written, whatever its map entry says. */
bool xd_ctr_chunk_hdr_names(const uint8_t in[XD_CTR_CHUNK_HDR_SIZE], uint64_t chunk_no,
                            uint64_t *gen);

struct xd_codec_ctx;
/* Decode the stored bytes of chunk_no as entry e describes them into out
 * (room for chunk_size bytes): crc32c, the chunk header, then the codec.
 * At least the first want bytes are decoded (all of them for most codecs);
 * *valid gets how many. -EIO with the reason in err when anything does not
 * match. */
int xd_ctr_chunk_decode(struct xd_codec_ctx *ctx, const struct xd_ctr_entry *e, uint64_t chunk_no,
                        const uint8_t *stored, size_t len, uint8_t *out, uint32_t chunk_size,
                        uint32_t want, uint32_t *valid, char *err, size_t errlen);

#endif
