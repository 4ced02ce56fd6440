/* backed.c - which pages of a file are known to have blocks behind them
 * (backed.h says why). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "backed.h"

#define XD_BACKED_CHUNK_SHIFT 15 /* pages per chunk: 128 MiB of 4 KiB pages, 4 KiB of bits */
#define CHUNK_PAGES (1ull << XD_BACKED_CHUNK_SHIFT)
#define CHUNK_WORDS (CHUNK_PAGES / 64)
#define XD_BACKED_RESCAN_EVERY 64 /* answers of no between looks at the file's map */
#define RESCAN_PAGES 512          /* around the page asked about: 2 MiB of 4 KiB pages */

static void backed_init(struct xd_backed *b)
{
    if (b->page_shift)
        return;
    long page = sysconf(_SC_PAGESIZE);
    b->page_shift = (unsigned)__builtin_ctzl(page > 0 ? (unsigned long)page : 4096ul);
}

/* Set or clear pages [lo, hi) of one chunk's bits (lo < hi <= CHUNK_PAGES). */
static void bits_range(uint64_t *bits, uint64_t lo, uint64_t hi, bool set)
{
    while (lo < hi) {
        uint64_t w = lo / 64, in = lo % 64, n = 64 - in < hi - lo ? 64 - in : hi - lo;
        uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << in;
        bits[w] = set ? bits[w] | mask : bits[w] & ~mask;
        lo += n;
    }
}

/* Pages [lo, hi) of the file, in whichever chunks exist. */
static void backed_range(struct xd_backed *b, uint64_t lo, uint64_t hi, bool set)
{
    while (lo < hi) {
        uint64_t c = lo >> XD_BACKED_CHUNK_SHIFT, base = c << XD_BACKED_CHUNK_SHIFT;
        uint64_t end = base + CHUNK_PAGES < hi ? base + CHUNK_PAGES : hi;
        if (c >= b->nchunk)
            return;
        if (b->chunk[c])
            bits_range(b->chunk[c], lo - base, end - base, set);
        lo = end;
    }
}

/* Pages [first, first + n) of chunk c that hold data now, by the file's
 * own map: whole pages inside a data extent (a page the extent only partly
 * covers is left to fallocate). Where SEEK_DATA is unknown nothing is
 * marked. */
static void backed_scan(struct xd_backed *b, int fd, uint64_t c, uint64_t first, uint64_t n)
{
    uint64_t page = 1ull << b->page_shift;
    off_t start = (off_t)(((c << XD_BACKED_CHUNK_SHIFT) + first) << b->page_shift);
    off_t end = start + (off_t)(n << b->page_shift);
    for (off_t pos = start; pos < end;) {
        off_t data = pos, hole = (off_t)b->extent_hi;
        if ((uint64_t)pos < b->extent_lo || (uint64_t)pos >= b->extent_hi) {
            data = lseek(fd, pos, SEEK_DATA);
            if (data < 0 || data >= end)
                return;
            hole = lseek(fd, data, SEEK_HOLE);
            if (hole < 0)
                return;
            b->extent_lo = (uint64_t)data;
            b->extent_hi = (uint64_t)hole;
        }
        uint64_t lo = ((uint64_t)data + page - 1) >> b->page_shift;
        uint64_t hi = (uint64_t)(hole < end ? hole : end) >> b->page_shift;
        if (lo < hi)
            bits_range(b->chunk[c], lo - (c << XD_BACKED_CHUNK_SHIFT),
                       hi - (c << XD_BACKED_CHUNK_SHIFT), true);
        pos = hole;
    }
}

/* The bits of chunk c, made (and filled in from the file) on first use. */
static uint64_t *backed_chunk(struct xd_backed *b, int fd, uint64_t c)
{
    if (c >= b->nchunk) {
        uint64_t n = b->nchunk ? b->nchunk : 1;
        while (n <= c)
            n *= 2;
        uint64_t **more = n <= SIZE_MAX / sizeof(*more) ? realloc(b->chunk, n * sizeof(*more)) : NULL;
        if (!more)
            return NULL;
        for (uint64_t i = b->nchunk; i < n; i++)
            more[i] = NULL;
        b->chunk = more;
        b->nchunk = n;
    }
    if (!b->chunk[c]) {
        b->chunk[c] = calloc(CHUNK_WORDS, sizeof(uint64_t));
        if (b->chunk[c])
            backed_scan(b, fd, c, 0, CHUNK_PAGES);
    }
    return b->chunk[c];
}

static bool backed_known(struct xd_backed *b, int fd, uint64_t page, int *rc)
{
    uint64_t *bits = backed_chunk(b, fd, page >> XD_BACKED_CHUNK_SHIFT);
    if (!bits) {
        *rc = -ENOMEM;
        return false;
    }
    uint64_t in = page & (CHUNK_PAGES - 1);
    return bits[in / 64] >> (in % 64) & 1;
}

/* Page p was not known backed: every XD_BACKED_RESCAN_EVERY-th time, look
 * at the file's map around it again (another device may have filled it). */
static bool backed_look_again(struct xd_backed *b, int fd, uint64_t p)
{
    int rc = 0;
    if (++b->misses % XD_BACKED_RESCAN_EVERY)
        return false;
    b->extent_hi = 0; /* the map as it is now */
    uint64_t in = p & (CHUNK_PAGES - 1), first = in & ~(uint64_t)(RESCAN_PAGES - 1);
    backed_scan(b, fd, p >> XD_BACKED_CHUNK_SHIFT, first, RESCAN_PAGES);
    return backed_known(b, fd, p, &rc);
}

/* Move the prefix over the pages known backed right after it, a word of
 * bits at a time, stopping at the first page not known or a chunk not made. */
static void backed_grow_prefix(struct xd_backed *b)
{
    uint64_t p = b->prefix >> b->page_shift;
    for (;;) {
        uint64_t c = p >> XD_BACKED_CHUNK_SHIFT, in = p & (CHUNK_PAGES - 1);
        if (c >= b->nchunk || !b->chunk[c])
            break;
        uint64_t rest = ~(b->chunk[c][in / 64] >> (in % 64)); /* a 1 at each page not known */
        if (in % 64)
            rest &= ~0ull >> (in % 64); /* the bits shifted in past the word's end are not pages */
        if (rest) {
            p += (uint64_t)__builtin_ctzll(rest);
            break;
        }
        p += 64 - in % 64;
    }
    b->prefix = p << b->page_shift;
}

bool xd_backed_known_in_map(struct xd_backed *b, int fd, uint64_t off, uint64_t len)
{
    int rc = 0;
    backed_init(b);
    uint64_t last = len ? (off + len - 1) >> b->page_shift : 0;
    for (uint64_t p = off >> b->page_shift; len && p <= last; p++)
        if (!backed_known(b, fd, p, &rc) && (rc || !backed_look_again(b, fd, p)))
            return false;
    return true;
}

int xd_backed_ensure(struct xd_backed *b, int fd, uint64_t off, uint64_t len)
{
    if (!len)
        return 0;
    backed_init(b);
    uint64_t first = off >> b->page_shift, last = (off + len - 1) >> b->page_shift;
    uint64_t lo = UINT64_MAX, hi = 0;
    int rc = 0;
    for (uint64_t p = first; p <= last; p++) {
        if (backed_known(b, fd, p, &rc))
            continue;
        if (rc)
            return rc;
        lo = lo == UINT64_MAX ? p : lo;
        hi = p;
    }
    if (lo == UINT64_MAX)
        return 0;
    /* KEEP_SIZE: a page past end of file is reserved without making the
     * file longer (its last page may be partly past the end) */
    off_t at = (off_t)(lo << b->page_shift), span = (off_t)((hi - lo + 1) << b->page_shift);
    while (fallocate(fd, FALLOC_FL_KEEP_SIZE, at, span))
        if (errno != EINTR)
            return -errno;
    backed_range(b, lo, hi + 1, true);
    return 1;
}

int xd_backed_learn(struct xd_backed *b, int fd, uint64_t size)
{
    backed_init(b);
    uint64_t pages = (size + (1ull << b->page_shift) - 1) >> b->page_shift;
    for (uint64_t c = 0; c << XD_BACKED_CHUNK_SHIFT < pages; c++)
        if (!backed_chunk(b, fd, c))
            return -ENOMEM;
    backed_grow_prefix(b);
    return 0;
}

void xd_backed_note(struct xd_backed *b, int fd, uint64_t off, uint64_t len)
{
    backed_init(b);
    uint64_t page = 1ull << b->page_shift;
    uint64_t lo = (off + page - 1) >> b->page_shift, hi = (off + len) >> b->page_shift;
    if (off + len < off || lo >= hi)
        return;
    /* the chunks made first (filled in from the file), as ensure makes them */
    for (uint64_t c = lo >> XD_BACKED_CHUNK_SHIFT; c <= (hi - 1) >> XD_BACKED_CHUNK_SHIFT; c++)
        if (!backed_chunk(b, fd, c))
            return; /* out of memory: those pages cost a fallocate later */
    backed_range(b, lo, hi, true);
    if (lo << b->page_shift <= b->prefix)
        backed_grow_prefix(b);
}

void xd_backed_forget(struct xd_backed *b, uint64_t off, uint64_t len)
{
    if (!len || !b->nchunk)
        return;
    backed_init(b);
    backed_range(b, off >> b->page_shift, ((off + len - 1) >> b->page_shift) + 1, false);
    uint64_t first = (off >> b->page_shift) << b->page_shift;
    b->prefix = first < b->prefix ? first : b->prefix;
    if (off < b->extent_hi && b->extent_lo < off + len)
        b->extent_hi = 0; /* no longer one extent */
}

void xd_backed_free(struct xd_backed *b)
{
    for (uint64_t i = 0; i < b->nchunk; i++)
        free(b->chunk[i]);
    free(b->chunk);
    *b = (struct xd_backed){0};
}
