/* backed.c - unit test of core/backed.h, which tells the layers that store
 * through shared mappings whether a page has a block behind it: pages with
 * data are found from the file's own map, a hole is reserved once (and the
 * file's size never changes), a punched range is forgotten, chunks meet
 * without a gap, a page filled by another writer is found again, and a
 * descriptor that cannot reserve says why. On a disk
 * file (/tmp) and, where there is one, on /dev/shm.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
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
    close(fd);
}

int main(void)
{
    test_on("/tmp");
    if (!access("/dev/shm", W_OK))
        test_on("/dev/shm");
    return check_result();
}
