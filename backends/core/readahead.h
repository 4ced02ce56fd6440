/* readahead.h - sequential-stream detection behind read_ahead_kb.
 *
 * Drivers ask after each read whether the stream changed between random and
 * sequential (tell the kernel once: its own readahead then fits the stream,
 * as fio's fadvise_hint does for fio's engines) and whether to advise the
 * next window (WILLNEED, read_ahead_kb ahead). Advice is given once per half
 * window, not per read, so a sequential stream costs one extra syscall per
 * read_ahead_kb/2 of data.
 */
#ifndef XD_READAHEAD_H
#define XD_READAHEAD_H

#include <stdbool.h>
#include <stdint.h>

enum xd_ra_mode { XD_RA_UNKNOWN, XD_RA_RANDOM, XD_RA_SEQUENTIAL };

#define XD_RA_SEQUENTIAL_AFTER 2 /* back-to-back reads that make a stream sequential */
#define XD_RA_RANDOM_AFTER 4     /* and the other kind that make it random again */

struct xd_readahead {
    uint64_t next_off;   /* where a sequential stream's next read starts */
    uint64_t advised_to; /* end of the range already advised */
    uint64_t advised;    /* number of advice calls, for stats */
    enum xd_ra_mode mode;
    unsigned run;        /* reads in a row that disagree with mode */
};

/* After a read of [off, off+len). Returns the stream's new mode when it just
 * changed, else XD_RA_UNKNOWN. Sets *want_window when [*start, *start+*alen)
 * should be advised now; window is read_ahead_kb in bytes (0: never).
 *
 * slack is for a driver whose reads of one stream may run slightly out of
 * order (a pool of threads taking a queue's requests): a read that starts
 * within slack read lengths of where the stream ended, either way, continues
 * it (a late one does not pull the stream's end back), and a read that does
 * not starts the stream over, forgetting the window advised so far. slack 0
 * (xd_readahead_next): only a read exactly at the end continues it, and the
 * window is kept. */
static inline enum xd_ra_mode xd_readahead_next_near(struct xd_readahead *ra, unsigned slack,
                                                     uint64_t window, uint64_t off, uint64_t len,
                                                     bool *want_window, uint64_t *start,
                                                     uint64_t *alen)
{
    uint64_t near = (uint64_t)slack * len;
    bool sequential = off + near >= ra->next_off && off <= ra->next_off + near;
    enum xd_ra_mode seen = sequential ? XD_RA_SEQUENTIAL : XD_RA_RANDOM;
    enum xd_ra_mode changed = XD_RA_UNKNOWN;
    if (!sequential || off + len > ra->next_off)
        ra->next_off = off + len;
    if (!sequential && slack)
        ra->advised_to = 0;
    *want_window = false;
    if (seen == ra->mode) {
        ra->run = 0;
    } else if (++ra->run >= (sequential ? XD_RA_SEQUENTIAL_AFTER : XD_RA_RANDOM_AFTER)) {
        ra->mode = changed = seen;
        ra->run = 0;
    }
    if (!window || !sequential)
        return changed;
    uint64_t end = off + len;
    if (ra->advised_to > end + window / 2)
        return changed; /* still well ahead of the reader */
    *start = ra->advised_to > end ? ra->advised_to : end;
    *alen = end + window - *start;
    ra->advised_to = end + window;
    ra->advised++;
    *want_window = *alen > 0;
    return changed;
}

static inline enum xd_ra_mode xd_readahead_next(struct xd_readahead *ra, uint64_t window,
                                                uint64_t off, uint64_t len, bool *want_window,
                                                uint64_t *start, uint64_t *alen)
{
    return xd_readahead_next_near(ra, 0, window, off, len, want_window, start, alen);
}

#endif
