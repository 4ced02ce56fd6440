/* readahead.h - sequential-stream detection behind read_ahead_kb.
 *
 * Drivers ask after each read whether to advise the kernel about the next
 * window (posix_fadvise for files, madvise for mappings). Advice is given once
 * per half window, not per read, so a sequential stream costs one extra
 * syscall per read_ahead_kb/2 of data.
 */
#ifndef XD_READAHEAD_H
#define XD_READAHEAD_H

#include <stdbool.h>
#include <stdint.h>

struct xd_readahead {
    uint64_t next_off;   /* where a sequential stream's next read starts */
    uint64_t advised_to; /* end of the range already advised */
    uint64_t advised;    /* number of advice calls, for stats */
};

/* After a read of [off, off+len): true when [*start, *start+*len) should be
 * advised now. window is read_ahead_kb in bytes (0: never). */
static inline bool xd_readahead_next(struct xd_readahead *ra, uint64_t window, uint64_t off,
                                     uint64_t len, uint64_t *start, uint64_t *alen)
{
    bool sequential = off == ra->next_off;
    ra->next_off = off + len;
    if (!window || !sequential)
        return false;
    uint64_t end = off + len;
    if (ra->advised_to > end + window / 2)
        return false; /* still well ahead of the reader */
    *start = ra->advised_to > end ? ra->advised_to : end;
    *alen = end + window - *start;
    ra->advised_to = end + window;
    ra->advised++;
    return *alen > 0;
}

#endif
