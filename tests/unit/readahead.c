/* readahead.c - unit test of core/readahead.h: the exact detector the file
 * and mmap drivers use (a sequential stream, a random one, advice once per
 * half window, the window kept across a jump) and the slack the compressed
 * driver gives it (reads of one stream taken slightly out of order by a
 * pool of threads, and a jump that starts the stream over). */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "readahead.h"

#define K 1024ull
#define WINDOW (256 * K)

struct advice {
    enum xd_ra_mode changed;
    bool want;
    uint64_t start, len;
};

static struct advice read_at(struct xd_readahead *ra, unsigned slack, uint64_t off, uint64_t len)
{
    struct advice a = {0};
    a.changed = xd_readahead_next_near(ra, slack, WINDOW, off, len, &a.want, &a.start, &a.len);
    return a;
}

/* slack 0: a stream turns sequential after two back-to-back reads, is
 * advised a window ahead, topped up once the reader is half way through. */
static void exact_stream(void)
{
    struct xd_readahead ra = {0};
    struct advice a = read_at(&ra, 0, 0, 64 * K);
    CHECK(a.want && a.start == 64 * K && a.len == WINDOW);
    a = read_at(&ra, 0, 64 * K, 64 * K);
    CHECK(a.changed == XD_RA_SEQUENTIAL && ra.mode == XD_RA_SEQUENTIAL);
    CHECK(!a.want); /* the first window still reaches far enough */
    unsigned advised = 1;
    for (uint64_t off = 128 * K; off < 4096 * K; off += 64 * K) {
        a = read_at(&ra, 0, off, 64 * K);
        if (a.want) {
            advised++;
            CHECK(a.start + a.len == off + 64 * K + WINDOW);
        }
    }
    CHECK_MSG(advised == 1 + (4096 - 128) / 128, "%u windows", advised);
    /* the old function is the same thing */
    struct xd_readahead same = ra;
    bool want1, want2;
    uint64_t s1 = 0, s2 = 0, l1 = 0, l2 = 0;
    xd_readahead_next(&ra, WINDOW, 4096 * K, 64 * K, &want1, &s1, &l1);
    xd_readahead_next_near(&same, 0, WINDOW, 4096 * K, 64 * K, &want2, &s2, &l2);
    CHECK(want1 == want2 && s1 == s2 && l1 == l2 && ra.advised_to == same.advised_to);
}

/* slack 0: a read a little behind the end is not sequential, and four
 * reads that are not make the stream random; jumping keeps the window
 * advised so far. */
static void exact_random_and_jump(void)
{
    struct xd_readahead ra = {0};
    for (uint64_t off = 0; off < 1024 * K; off += 64 * K)
        read_at(&ra, 0, off, 64 * K);
    uint64_t advised_to = ra.advised_to;
    struct advice a = read_at(&ra, 0, 1024 * K - 4 * K, 4 * K);
    CHECK(!a.want && ra.advised_to == advised_to);
    for (int i = 0; i < 2; i++)
        CHECK(read_at(&ra, 0, (uint64_t)(7 + 13 * i) * 1024 * K, 4 * K).changed == XD_RA_UNKNOWN);
    CHECK(read_at(&ra, 0, 99 * 1024 * K, 4 * K).changed == XD_RA_RANDOM);
    CHECK(ra.advised_to == advised_to);
}

/* slack 4: reads of one stream out of order by a few requests continue it
 * and never pull its end back; a read beyond the slack starts it over, so
 * a stream that wraps to the start is advised again at once. */
static void slack_stream(void)
{
    struct xd_readahead ra = {0};
    struct advice a = read_at(&ra, 4, 0, 16 * K);
    CHECK(a.want);
    read_at(&ra, 4, 32 * K, 16 * K); /* one ahead of its turn */
    CHECK(ra.next_off == 48 * K && ra.mode == XD_RA_SEQUENTIAL);
    read_at(&ra, 4, 16 * K, 16 * K); /* the late one */
    CHECK(ra.next_off == 48 * K && ra.mode == XD_RA_SEQUENTIAL && ra.run == 0);
    uint64_t off = 48 * K;
    for (; off < 8192 * K; off += 16 * K)
        read_at(&ra, 4, off, 16 * K);
    CHECK(ra.mode == XD_RA_SEQUENTIAL && ra.advised_to > off);
    a = read_at(&ra, 4, 0, 16 * K); /* the stream wraps */
    CHECK(!a.want && ra.advised_to == 0);
    a = read_at(&ra, 4, 16 * K, 16 * K);
    CHECK(a.want && a.start == 32 * K && a.len == WINDOW);
    /* the same wrap without slack: the old window stops the advice */
    struct xd_readahead exact = {0};
    for (off = 0; off < 8192 * K; off += 16 * K)
        read_at(&exact, 0, off, 16 * K);
    read_at(&exact, 0, 0, 16 * K);
    CHECK(!read_at(&exact, 0, 16 * K, 16 * K).want);
}

int main(void)
{
    exact_stream();
    exact_random_and_jump();
    slack_stream();
    return check_result();
}
