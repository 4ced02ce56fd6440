/* checksum_internal.h - what the checksum layer's files (checksum.c,
 * checksum_writers.c) share: the sidecar's format, the structs, and the
 * functions one file calls in the other. Private to the layer, never
 * installed; the functions are hidden (the library exports only xd_ names).
 */
#ifndef XD_CHECKSUM_INTERNAL_H
#define XD_CHECKSUM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/backed.h"
#include "../core/turns.h"
#include "../core/xd_internal.h"

#define CS_MAGIC     "XDSUM02\n"
#define CS_HEADER    64u
#define CS_SUFFIX    ".xdsum"
#define CS_TAG       0x4b534358u /* "XCSK": the slot holds a crc */
#define CS_HDR_TAG   0x52444843u /* "CHDR": the header's crc is kept */
/* "CHDF": as CS_HDR_TAG, and every block the sidecar leaves unchecked on
 * purpose (data from before the sidecar, a trim) has CS_UNCHECKED in NEW,
 * so an entry with no slot at all was lost (the sidecar truncated, or a
 * page of it zeroed): such a block reads as EIO unless it holds zeros
 * (a hole never written). Sidecars made before it keep CS_HDR_TAG: there
 * an empty entry is unknown, as it always was. */
#define CS_HDR_FULL  0x46444843u
#define CS_UNCHECKED ((uint64_t)0x4b434e55u << 32) /* "UNCK": unchecked on purpose */
/* The data file's mark that it has a sidecar (checksum_marker.c). */
#define CS_MARK_XATTR "user.xdevice.checksum"
#define CS_CUR       0           /* slot: what the block held when last seen */
#define CS_NEW       1           /* slot: the last write sent down */
#define CS_DUR       2           /* slot: what an fsync made durable last */
#define CS_SLOTS     3
#define CS_BUF_ALIGN 4096u
#define CS_GROW      (1u << 20)  /* the sidecar grows by this much at a time */

/* One slot as stored: crc in the low half, tag in the high half (the file
 * is little-endian, like the machines xdevice runs on). */
typedef uint64_t cs_slot;

struct cs_entry {
    cs_slot slot[CS_SLOTS]; /* CS_CUR, CS_NEW, CS_DUR */
};
#define CS_ENTRY_OLD 16u /* entry_size of sidecars made before CS_DUR */

struct cs_header {
    char magic[8];
    uint32_t block_size;
    uint32_t entry_size;
    /* the data file the entries describe: inode numbers are soon reused, a
     * birth time (where the file system keeps one) tells the files apart */
    uint64_t data_dev, data_ino, data_birth_ns;
    /* crc32c of the bytes above, and CS_HDR_TAG once it is kept (headers
     * written before it have zeros here): a header whose identity a bit
     * flip changed is refused, not taken for another file's */
    uint32_t hdr_crc, hdr_tag;
    /* shared by the writers of the sidecar (checksum_writers.c), used
     * through the mapping: a writer asks the solo one to take locks; the
     * solo writer's writes out that took none */
    uint32_t wanted, solo_out;
    /* the boot (a hash of /proc/sys/kernel/random/boot_id) of the last
     * writable open: writes an earlier boot left unsynced may have been
     * undone by the power loss that ended it (cs_mark_unsynced) */
    uint64_t boot;
};

enum cs_kind { CS_PASS, CS_READ, CS_WRITE, CS_TRIM, CS_SYNC };

/* What a write holds on its blocks while it is out (checksum_writers.c). */
enum cs_claim { CS_CLAIM_NONE, CS_CLAIM_SOLO, CS_CLAIM_LOCK };

/* An fsync's promise: these blocks' CUR, as it was when the fsync was sent
 * down, is durable once it returns. */
struct cs_durable {
    size_t n;
    struct {
        uint64_t block;
        cs_slot cur;
    } at[];
};

struct cs_req {
    enum cs_kind kind;
    bool raced;    /* a write sent down while another write of a block it covers was in flight */
    uint8_t claim; /* enum cs_claim: a write's or trim's hold on its blocks */
    struct cs_durable *durable; /* CS_SYNC: stored as DUR when the fsync returns */
};

struct cs_file {
    int fd;             /* the sidecar; -1 when unchecked */
    bool read_only;     /* opened read-only: nothing is stored */
    /* A read-only open (XD_OPEN_READONLY) with nothing of this file's to
     * check against (no sidecar, or an empty one or another file's, and no
     * mark): no sidecar is open, reads go down unchecked, nothing is made
     * or written (a writable open starts the sidecar). */
    bool unchecked;
    bool full;          /* its header is CS_HDR_FULL: an empty entry was lost */
    bool told;          /* this open has set the layer's notice (a copy's own sidecar) */
    unsigned entry_size; /* sizeof(struct cs_entry), or CS_ENTRY_OLD: no DUR slot */
    /* A sidecar opened read-only cannot tag data appended without the layer
     * past the size the mark recorded (cs_tag_appended): the empty entries
     * of blocks from this one on are unchecked, not lost, as that tagging
     * would have made them (in memory only). UINT64_MAX: none. */
    uint64_t appended_from;
    /* Blocks whose CUR changed since the last fsync was sent (bit per
     * block), for that fsync's cs_durable; words [dirty_lo, dirty_hi). */
    uint64_t *dirty;
    size_t dirty_words, dirty_lo, dirty_hi;
    char *data_path;    /* for messages */
    char *side_path;    /* the sidecar's, for messages */
    /* The sidecar mapped shared, so a slot costs no system call; remapped
     * when it has grown. It never shrinks (a stale one is zeroed, not
     * truncated), so the mapping never points past its end. */
    void *map;
    size_t map_len;
    struct xd_backed backed; /* its pages a store through map cannot SIGBUS on */
    struct xd_turns_solo solo; /* the sidecar's only writer takes no lock (checksum_writers.c) */
};

struct cs_layer {
    uint64_t block; /* checksum_block_size, a power of two */
    unsigned shift; /* log2(block) */
    uint32_t zero_crc; /* a block of zeros' */
    char *blocks;   /* scratch of the data path (one thread per device) */
    size_t blocks_len;
    char error[XD_ERRLEN];
    bool has_error;
    /* said once by the engine: a data file that could not be marked, a
     * read-only open with no sidecar to check against */
    char notice[XD_ERRLEN];
    struct {
        uint64_t verified, mismatches, unknown, blocks_written, partial_writes, partial_reads;
        uint64_t resolved, folded_on_read, rechecked, sidecar_syncs, files, stale_sidecars;
        uint64_t lost_entries;
        uint64_t solo_files, solo_regained, lock_waits, drained;
    } count;
    /* This device's writes and trims out below, each holding its blocks
     * (cs_claim); what a drain reaped, for the caller's next reap. */
    struct xd_req_list flight, held;
    /* Drains under way in this device (they nest: a completion's recheck
     * drains the thread's devices). While one runs, a reap hands out
     * nothing from held: see cs_drain. */
    unsigned draining;
    struct xd_turns_member turns; /* a claim about to wait drains the thread's devices */
};

#pragma GCC visibility push(hidden)

/* checksum.c */
off_t cs_slot_off(const struct cs_file *cf, uint64_t block, int which);
void cs_complete(struct xd_layer *layer, struct xd_req *req);

/* checksum_marker.c */
/* the data file's identity in the mark: data_dev, data_ino, data_birth_ns */
#define CS_MARK_ID 24
int cs_mark_read(const char *data, char *was, size_t len);
#define CS_MARK_NO_END UINT64_MAX
int cs_mark_read_id(const char *data, char *was, size_t len, unsigned char *id);
int cs_mark_read_all(const char *data, char *was, size_t len, unsigned char *id, uint64_t *end);
int cs_mark_write(const char *data, const char *side, const unsigned char *id, uint64_t end);

/* checksum_writers.c */
int cs_writers_open(struct xd_layer *layer);
void cs_writers_close(struct xd_layer *layer);
void cs_writers_owner(struct xd_layer *layer);
int cs_writers_join(struct xd_layer *layer, struct cs_file *cf);
int cs_claim(struct xd_layer *layer, struct xd_req *req);
void cs_release(struct xd_layer *layer, struct xd_req *req);
int cs_drain(struct xd_layer *layer);
int cs_land_own_writes(struct xd_layer *layer, const struct xd_req *req);
bool cs_writer_at_work(const struct cs_file *cf, uint64_t block);

#pragma GCC visibility pop

#endif
