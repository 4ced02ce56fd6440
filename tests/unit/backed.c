/* backed.c - unit test of core/backed.h, which tells the layers that store
 * through shared mappings whether a page has a block behind it: pages with
 * data are found from the file's own map, a hole is reserved once (and the
 * file's size never changes), a punched range is forgotten, chunks meet
 * without a gap, a page filled by another writer is found again, a data
 * extent over several chunks is asked for once (not once per chunk, each
 * walking the page cache to its end), a file can be learned whole at open,
 * and a descriptor that cannot reserve
 * says why. On a disk
 * file (/tmp) and, where there is one, on /dev/shm.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backed.h"
#include "check.h"

#define K 1024ull
#define M (1024 * K)

/* Bytes of blocks the file holds. A reserved page does not read as data
 * (SEEK_DATA calls an unwritten extent a hole, tmpfs too): it holds a block. */
static long long allocated(int fd)
{
    struct stat st;
    return fstat(fd, &st) ? -1 : (long long)st.st_blocks * 512;
}

/* lseek(2) for the library linked in, counted: how often a scan asks the
 * file's map. */
static unsigned lseeks;
off_t lseek(int fd, off_t off, int whence)
{
    lseeks++;
    return (off_t)syscall(SYS_lseek, fd, off, whence);
}

/* Data from just before the second chunk to just past the third's start:
 * the first chunk's scan learns the whole extent (SEEK_HOLE walks to its
 * end anyway); the second chunk asks nothing, the third only past it. A
 * page punched inside the extent (and forgotten) is not taken from it. */
static void test_extent_over_chunks(int fd, const char *dir)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t edge = (1ull << 15) * (uint64_t)page, lo = edge - 8 * K, hi = 2 * edge + 8 * K;
    static char buf[M];
    memset(buf, 0x5a, sizeof(buf));
    CHECK(!ftruncate(fd, 0) && !ftruncate(fd, (off_t)(3 * edge)));
    for (uint64_t off = lo; off < hi; off += sizeof(buf)) {
        size_t n = hi - off < sizeof(buf) ? (size_t)(hi - off) : sizeof(buf);
        CHECK(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n);
    }
    struct xd_backed b = {0};
    lseeks = 0;
    CHECK(!xd_backed_known(&b, fd, 0, 1));
    unsigned first = lseeks;
    CHECK_MSG(xd_backed_known(&b, fd, edge, edge), "%s: the second chunk's data not known", dir);
    CHECK_MSG(lseeks == first, "%s: the second chunk asked the map again (%u lseeks, %u for the first)",
              dir, lseeks, first);
    CHECK_MSG(xd_backed_known(&b, fd, lo, hi - lo), "%s: the extent not known whole", dir);
    CHECK(!xd_backed_known(&b, fd, hi, 1));
    xd_backed_free(&b);

    /* learned at open: the chunks in order, the extent asked for once, and
     * no question after asks the map */
    lseeks = 0;
    CHECK(xd_backed_learn(&b, fd, 3 * edge) == 0);
    CHECK_MSG(lseeks <= 4, "%s: learning three chunks took %u lseeks", dir, lseeks);
    unsigned learned = lseeks;
    CHECK(xd_backed_known(&b, fd, lo, hi - lo) && !xd_backed_known(&b, fd, 0, 1));
    CHECK(!xd_backed_known(&b, fd, hi, 1));
    CHECK_MSG(lseeks == learned, "%s: a question after learning asked the map", dir);
    xd_backed_free(&b);

    /* a punch inside the extent, forgotten before the third chunk is made */
    CHECK(xd_backed_known(&b, fd, lo, 1));
    CHECK(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(2 * edge), page));
    xd_backed_forget(&b, 2 * edge, (uint64_t)page);
    CHECK_MSG(!xd_backed_known(&b, fd, 2 * edge, 1), "%s: a punched page known from the old extent", dir);
    CHECK(xd_backed_known(&b, fd, 2 * edge + (uint64_t)page, 4 * K));
    xd_backed_free(&b);
    CHECK(!ftruncate(fd, 0));
}

/* The known prefix (the reader's fast answer): learned at open up to the
 * first hole, lowered by a forget to the page punched, grown again by a
 * note that fills the pages after it; never past a page not known. */
static void test_prefix(int fd, const char *dir)
{
    static char buf[64 * K];
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    memset(buf, 0x5a, sizeof(buf));
    /* data over [0, 40 pages) but a hole at page 9; 64 pages long */
    CHECK(!ftruncate(fd, 0) && !ftruncate(fd, (off_t)(64 * page)));
    for (uint64_t p = 0; p < 40; p++)
        CHECK(p == 9 || pwrite(fd, buf, page, (off_t)(p * page)) == (ssize_t)page);
    struct xd_backed b = {0};
    CHECK(xd_backed_learn(&b, fd, 64 * page) == 0);
    CHECK_MSG(b.prefix == 9 * page, "%s: prefix %llu after learning, want %llu", dir,
              (unsigned long long)b.prefix, (unsigned long long)(9 * page));
    CHECK(xd_backed_known(&b, fd, 0, 9 * page) && !xd_backed_known(&b, fd, 8 * page, 2 * page));
    xd_backed_forget(&b, 3 * page + 100, 1);
    CHECK_MSG(b.prefix == 3 * page, "%s: prefix %llu after forgetting page 3", dir,
              (unsigned long long)b.prefix);
    CHECK(!xd_backed_known(&b, fd, 3 * page, 1) && xd_backed_known(&b, fd, 0, 3 * page));
    /* page 3 written again, then the hole at 9: the prefix runs to 40 */
    CHECK(pwrite(fd, buf, page, (off_t)(3 * page)) == (ssize_t)page);
    xd_backed_note(&b, fd, 3 * page, page);
    CHECK_MSG(b.prefix == 9 * page, "%s: prefix %llu after page 3 was noted", dir,
              (unsigned long long)b.prefix);
    CHECK(pwrite(fd, buf, page, (off_t)(9 * page)) == (ssize_t)page);
    xd_backed_note(&b, fd, 9 * page, page);
    CHECK_MSG(b.prefix == 40 * page, "%s: prefix %llu after the hole was filled", dir,
              (unsigned long long)b.prefix);
    CHECK(xd_backed_known(&b, fd, 0, 40 * page) && !xd_backed_known(&b, fd, 40 * page, 1));
    xd_backed_free(&b);
}

static void test_on(const char *dir)
{
    char path[256];
    static char buf[64 * K];
    snprintf(path, sizeof(path), "%s/xd-backed-test-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "skip %s: %s\n", dir, strerror(errno));
        return;
    }
    unlink(path);
    long page = sysconf(_SC_PAGESIZE);
    memset(buf, 0xa5, sizeof(buf));
    /* 1 MiB sparse, data at [64k, 128k) */
    CHECK(!ftruncate(fd, (off_t)M) && pwrite(fd, buf, 64 * K, 64 * K) == (ssize_t)(64 * K));
    struct xd_backed b = {0};

    /* found from the file's map, not reserved */
    CHECK_MSG(xd_backed_known(&b, fd, 64 * K, 64 * K), "%s: data pages not known", dir);
    CHECK_MSG(!xd_backed_known(&b, fd, 0, 4096), "%s: a hole known as backed", dir);
    CHECK_MSG(!xd_backed_known(&b, fd, 64 * K - 1, 2), "%s: a range half in a hole", dir);
    long long before = allocated(fd);
    CHECK(xd_backed_ensure(&b, fd, 64 * K, 64 * K) == 0); /* nothing to do */
    CHECK_MSG(allocated(fd) == before, "%s: a question took space", dir);

    /* a hole reserved once, the size unchanged */
    CHECK(xd_backed_ensure(&b, fd, 100, 8) == 1);
    CHECK_MSG(allocated(fd) >= before + page, "%s: page 0 not reserved: %lld bytes, %lld before",
              dir, allocated(fd), before);
    CHECK(xd_backed_known(&b, fd, 0, (uint64_t)page));
    CHECK(xd_backed_ensure(&b, fd, 0, (uint64_t)page) == 0);
    struct stat st;
    CHECK(!fstat(fd, &st) && st.st_size == (off_t)M);

    /* past the end: reserved without growing the file */
    CHECK(xd_backed_ensure(&b, fd, M - 100, 4096) == 1);
    CHECK_MSG(!fstat(fd, &st) && st.st_size == (off_t)M, "%s: size %lld after a reserve past the end",
              dir, (long long)st.st_size);

    /* a punch is forgotten: the next ensure reserves again */
    CHECK(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, page));
    xd_backed_forget(&b, 0, 1);
    CHECK(!xd_backed_known(&b, fd, 0, 1));
    before = allocated(fd);
    CHECK(xd_backed_ensure(&b, fd, 0, 1) == 1 && allocated(fd) >= before + page);

    /* across the boundary of two chunks (128 MiB of 4 KiB pages each) */
    uint64_t edge = (1ull << 15) * (uint64_t)page;
    CHECK(!ftruncate(fd, (off_t)(edge + M)));
    CHECK(!xd_backed_known(&b, fd, edge - 4096, 8192));
    before = allocated(fd);
    CHECK(xd_backed_ensure(&b, fd, edge - 4096, 8192) == 1);
    CHECK(xd_backed_known(&b, fd, edge - 4096, 8192) && allocated(fd) >= before + 8192);
    CHECK(!xd_backed_known(&b, fd, edge + 4096, 1));
    xd_backed_free(&b);

    /* a fresh one finds the data written across the edge from the file */
    CHECK(pwrite(fd, buf, 8192, (off_t)edge - 4096) == 8192);
    CHECK(xd_backed_known(&b, fd, edge - 4096, 8192) && xd_backed_known(&b, fd, 64 * K, 1));
    xd_backed_free(&b);

    /* a page another writer fills later is found by looking again, within
     * XD_BACKED_RESCAN_EVERY (64) answers of no */
    CHECK(!xd_backed_known(&b, fd, 256 * K, 1));
    CHECK(pwrite(fd, buf, 4096, 256 * K) == 4096);
    int asked = 1;
    while (!xd_backed_known(&b, fd, 256 * K, 1) && asked < 200)
        asked++;
    CHECK_MSG(asked <= 64, "%s: a page filled since found after %d questions", dir, asked);
    xd_backed_free(&b);

    /* a descriptor open read-only cannot reserve: said, not pretended */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int ro = open(proc, O_RDONLY);
    CHECK(ro >= 0 && xd_backed_ensure(&b, ro, 512 * K, 1) == -EBADF);
    CHECK(!xd_backed_known(&b, ro, 512 * K, 1));
    if (ro >= 0)
        close(ro);
    xd_backed_free(&b);
    test_extent_over_chunks(fd, dir);
    test_prefix(fd, dir);
    close(fd);
}

int main(void)
{
    test_on("/tmp");
    if (!access("/dev/shm", W_OK))
        test_on("/dev/shm");
    return check_result();
}
