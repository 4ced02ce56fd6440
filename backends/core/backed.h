/* backed.h - which pages of a file are known to have blocks behind them.
 *
 * A store through a shared mapping into a hole makes the kernel find a
 * block at fault time; where there is none (a full file system, a full
 * /dev/shm) the store raises SIGBUS and kills the caller, where write(2)
 * would have said ENOSPC. A layer that writes a file through a mapping
 * asks xd_backed_ensure first: a page not known backed is reserved with
 * fallocate (which says ENOSPC in words), and remembered, so a page costs
 * at most one system call, not one per store.
 *
 * One bit per page, in chunks made on first use: a chunk is filled in from
 * the file's own SEEK_DATA/SEEK_HOLE map when made, so a file written
 * before costs a few lseeks per chunk rather than a fallocate per page
 * (a page reserved but never written reads as a hole there: it is
 * reserved again, which takes no space; one data extent that spans chunks
 * is asked for once). Pages another device or process
 * fills later are found by looking again around a page asked about in
 * vain, every XD_BACKED_RESCAN_EVERY such answers.
 *
 * Not thread-safe: one per file per device, as the rest of a device's
 * per-file state. It knows only what this process reserved or found: a
 * hole punched by another process or device into a page it holds as
 * backed is not seen (the callers document that).
 */
#ifndef XD_BACKED_H
#define XD_BACKED_H

#include <stdbool.h>
#include <stdint.h>

struct xd_backed {
    uint64_t **chunk; /* chunk[i]: the bits of pages [i << XD_BACKED_CHUNK_SHIFT, ...), or NULL */
    uint64_t nchunk;  /* slots in chunk */
    unsigned page_shift;
    uint64_t misses; /* xd_backed_known answers of no: every so often the map is looked at again */
    /* The last data extent the file's map gave, [extent_lo, extent_hi)
     * bytes (empty: hi 0). SEEK_HOLE walks the page cache to the hole, not
     * to the chunk's end: on a file with no holes each chunk's first scan
     * walked the rest of the file (1 GiB on tmpfs: 8 scans, ~50 ms, paid
     * by the first reads of each chunk); a chunk inside it is marked from
     * it, without a system call. */
    uint64_t extent_lo, extent_hi;
    /* Bytes: every page of [0, prefix) is known backed. Grown by
     * xd_backed_learn and xd_backed_note, lowered by xd_backed_forget, so a
     * read of a file written whole answers without a bit lookup. */
    uint64_t prefix;
};

/* Reserve blocks behind [off, off + len) of fd where not known backed.
 * 0 when every page was known backed, 1 when it reserved some (one
 * fallocate); -EOPNOTSUPP where the file system cannot (the caller writes
 * with pwrite instead); -ENOSPC, -EDQUOT, -ENOMEM or another -errno.
 * Never changes the file's size. */
int xd_backed_ensure(struct xd_backed *b, int fd, uint64_t off, uint64_t len);

/* Whether every page of [off, off + len) is known backed. On tmpfs even a
 * load through a shared mapping makes a page for a hole (and SIGBUS when
 * it cannot): a reader asks this first and reads what is not known with
 * pread, which makes nothing. */
bool xd_backed_known_in_map(struct xd_backed *b, int fd, uint64_t off, uint64_t len);
static inline bool xd_backed_known(struct xd_backed *b, int fd, uint64_t off, uint64_t len)
{
    /* inline: the mmap type asks this on every read of a tmpfs file */
    return (off + len <= b->prefix && off + len >= off) || xd_backed_known_in_map(b, fd, off, len);
}

/* Learn [0, size) of the file now, from its map (a caller at open): every
 * chunk made in order, so a data extent over many chunks is walked once,
 * here, rather than by the first question about each chunk in the middle
 * of the I/O (SEEK_HOLE walks the page cache: ~12 ms per GiB of tmpfs, a
 * stall of the read that asks). 0, or -ENOMEM (what is left is learned
 * on first use, as without it). */
int xd_backed_learn(struct xd_backed *b, int fd, uint64_t size);

/* The caller reserved [off, off + len) itself (fallocate, or a write):
 * the pages wholly inside it are known backed. */
void xd_backed_note(struct xd_backed *b, int fd, uint64_t off, uint64_t len);

/* [off, off + len) may be holes again (a punch): every page it touches is
 * no longer known backed. */
void xd_backed_forget(struct xd_backed *b, uint64_t off, uint64_t len);

void xd_backed_free(struct xd_backed *b);

#endif
