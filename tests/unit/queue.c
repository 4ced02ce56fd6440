/* queue.c - the kernel queue (backends/core/queue.c) on its own: every
 * request staged comes back from reap exactly once with its own data, in
 * both modes, across many more requests than the completion ring holds
 * (libaio's is reaped from user space and its head wraps), whether reap
 * waits for some (min > 0) or only takes what is there (min 0). And
 * io_uring's fixed buffers (xd_register_memory): reads into the
 * registered memory go fixed and land in the caller's buffer, a buffer
 * that runs past the memory's end goes plain, and a change of the memory
 * (here to none) halfway through is followed at the next stage. Memory the
 * kernel will not register (a file's shared mapping) serves plain reads
 * and leaves the refusal's errno for the device's notice.
 */
#include <sys/mman.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "queue.h"

#define BLOCK 4096u
#define BLOCKS 64u
#define DEPTH 8u
#define ROUNDS 300u /* DEPTH * ROUNDS reads: far more than either ring holds */

/* Every 8-byte word of block b holds b's number and the word's place. */
static uint64_t word_of(unsigned block, unsigned word) { return (uint64_t)block << 32 | word; }

static int make_file(const char *dir, char *path, size_t size)
{
    snprintf(path, size, "%s/xd-unit-queue.XXXXXX", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint64_t buf[BLOCK / 8];
    for (unsigned b = 0; b < BLOCKS; b++) {
        for (unsigned w = 0; w < BLOCK / 8; w++)
            buf[w] = word_of(b, w);
        if (pwrite(fd, buf, BLOCK, (off_t)b * BLOCK) != BLOCK) {
            close(fd);
            return -1;
        }
    }
    fsync(fd);
    return fd;
}

static bool block_holds(const uint64_t *buf, unsigned block)
{
    for (unsigned w = 0; w < BLOCK / 8; w++)
        if (buf[w] != word_of(block, w))
            return false;
    return true;
}

/* A buffer in use by one read at a time; every read has a request of its
 * own (reqs[]), so a completion handed out twice names a request already
 * retired even where the slot is busy again. */
struct slot {
    struct xd_req *req; /* the read in flight on this buffer, or NULL */
    unsigned block;
    uint64_t *buf;
    unsigned staged_fixed; /* reads staged while its buffer lay in registered memory */
};

/* The slots' buffers, one after another in one allocation, and the part of
 * it registered as the device's memory (in_memory: the slots that lie
 * wholly inside it; the next one straddles its end). */
struct arena {
    char *base;
    struct xd_io_memory memory;
    unsigned in_memory;
    bool dropped; /* the memory was changed to none halfway */
    int refused;  /* memory.refused when it was dropped */
};

static struct xd_req reqs[DEPTH * ROUNDS];

/* Stage a read of the next block into every free slot, up to the last
 * request; how many. */
static unsigned fill(struct xd_queue *q, int fd, struct slot *slots, unsigned *next,
                     const struct arena *a)
{
    unsigned staged = 0;
    for (unsigned i = 0; i < DEPTH && *next < DEPTH * ROUNDS; i++) {
        struct slot *s = &slots[i];
        if (s->req)
            continue;
        struct xd_req *req = &reqs[*next];
        s->block = (*next)++ % BLOCKS;
        memset(s->buf, 0xee, BLOCK);
        *req = (struct xd_req){.op = XD_OP_READ, .buf = s->buf, .len = BLOCK,
                               .off = (uint64_t)s->block * BLOCK, .user = s};
        int rc = xd_queue_stage(q, req, fd, s->buf, BLOCK, req->off);
        CHECK_MSG(rc == 0, "stage: %d", rc);
        if (rc)
            break;
        s->req = req;
        s->staged_fixed += a && !a->dropped && i < a->in_memory;
        staged++;
    }
    return staged;
}

/* Check what reap returned; how many were reads in flight. */
static unsigned retire(struct xd_req **done, int n)
{
    unsigned good = 0;
    for (int i = 0; i < n; i++) {
        struct slot *s = done[i]->user;
        CHECK_MSG(s->req == done[i], "request %ld came back twice, or was never staged",
                  (long)(done[i] - reqs));
        if (s->req != done[i])
            continue;
        CHECK_MSG(done[i]->result == BLOCK, "read of block %u: %lld", s->block,
                  (long long)done[i]->result);
        CHECK_MSG(block_holds(s->buf, s->block), "block %u: another block's bytes", s->block);
        s->req = NULL;
        good++;
    }
    return good;
}

/* Halfway through, change the device's memory to none: the queue follows
 * at its next stage (memory.gen) and sends the rest plain. */
static void arena_drop_memory(struct arena *a)
{
    a->refused = a->memory.refused;
    a->memory = (struct xd_io_memory){.gen = a->memory.gen + 1};
    a->dropped = true;
}

/* Reads expected to have gone fixed: those staged into a slot inside the
 * memory while it was registered. */
static uint64_t staged_fixed(const struct slot *slots)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < DEPTH; i++)
        n += slots[i].staged_fixed;
    return n;
}

static void run_mode(int mode, const char *name, int fd, bool poll_only, struct arena *a)
{
    struct xd_queue *q = NULL;
    char err[256] = "";
    int rc = xd_queue_create(&q, mode, DEPTH, a ? &a->memory : NULL, err, sizeof(err));
    CHECK_MSG(rc == 0, "%s: %s", name, err);
    if (rc)
        return;
    struct slot slots[DEPTH];
    for (unsigned i = 0; i < DEPTH; i++) {
        slots[i] = (struct slot){0};
        if (a)
            slots[i].buf = (uint64_t *)(a->base + (size_t)i * BLOCK);
        else
            CHECK(posix_memalign((void **)&slots[i].buf, 4096, BLOCK) == 0);
    }
    unsigned next = 0, reaped = 0;
    struct xd_req *done[DEPTH];
    /* a bound that no working queue comes near, so a lost completion fails
     * the test rather than hanging it */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (reaped < DEPTH * ROUNDS) {
        if (a && !a->dropped && next >= DEPTH * ROUNDS / 2)
            arena_drop_memory(a);
        if (fill(q, fd, slots, &next, a))
            CHECK(xd_queue_commit(q) >= 0);
        /* min 0 takes only what is there; min 1..3 waits for that many */
        unsigned min = poll_only ? 0 : 1 + reaped % 3;
        unsigned in_flight = xd_queue_in_flight(q);
        int n = xd_queue_reap(q, done, min, DEPTH, NULL);
        CHECK_MSG(n >= 0, "%s: reap: %d", name, n);
        if (n < 0)
            break;
        CHECK_MSG((unsigned)n >= (min < in_flight ? min : in_flight) && (unsigned)n <= in_flight,
                  "%s: reap(min %u) with %u in flight returned %d", name, min, in_flight, n);
        reaped += retire(done, n);
        if (check_failures)
            break; /* the first wrong answer says it; the rest would repeat it */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 60) {
            CHECK_MSG(false, "%s: %u of %u reads came back in 60 s", name, reaped, DEPTH * ROUNDS);
            break;
        }
    }
    CHECK_MSG(xd_queue_in_flight(q) == 0, "%s: %u still in flight", name, xd_queue_in_flight(q));
    /* nothing in flight: a reap returns nothing, at once */
    CHECK(xd_queue_reap(q, done, 1, DEPTH, NULL) == 0);
    uint64_t want = a && mode == XD_ASYNC_IO_URING ? staged_fixed(slots) : 0;
    CHECK_MSG(xd_queue_fixed_ios(q) == want, "%s: %llu reads went fixed; want %llu", name,
              (unsigned long long)xd_queue_fixed_ios(q), (unsigned long long)want);
    xd_queue_destroy(q);
    for (unsigned i = 0; i < DEPTH && !a; i++)
        free(slots[i].buf);
}

/* Every mode once more with the slots' buffers in one arena, all but the
 * last wholly inside the registered memory and the last straddling its
 * end, so that both kinds of read are in flight at once. */
static void run_mode_in_arena(int mode, const char *name, int fd)
{
    struct arena a = {.in_memory = DEPTH - 1};
    CHECK(posix_memalign((void **)&a.base, 4096, (size_t)DEPTH * BLOCK) == 0);
    a.memory = (struct xd_io_memory){.addr = a.base, .len = (size_t)(DEPTH - 1) * BLOCK + BLOCK / 2,
                                     .gen = 1};
    run_mode(mode, name, fd, false, &a);
    CHECK_MSG(a.dropped, "%s: the memory was never dropped", name);
    CHECK_MSG(a.refused == 0, "%s: registration refused: %s", name, strerror(a.refused));
    free(a.base);
}

/* io_uring with memory the kernel refuses to register (a disk file's
 * shared mapping: registered buffers must be anonymous or shmem): every
 * read goes plain and still lands right, and the refusal's errno is left
 * in the memory for xd_dev_notice to say. */
static void run_io_uring_in_refused_memory(const char *dir, int fd)
{
    char path[256];
    int map_fd = make_file(dir, path, sizeof(path));
    CHECK_MSG(map_fd >= 0, "a file to map in %s", dir);
    if (map_fd < 0)
        return;
    unlink(path);
    struct arena a = {.in_memory = 0};
    a.base = mmap(NULL, (size_t)DEPTH * BLOCK, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    CHECK(a.base != MAP_FAILED);
    if (a.base != MAP_FAILED) {
        a.memory = (struct xd_io_memory){.addr = a.base, .len = (size_t)DEPTH * BLOCK, .gen = 1};
        run_mode(XD_ASYNC_IO_URING, "io_uring, memory the kernel refuses", fd, false, &a);
        CHECK_MSG(a.refused != 0, "a file's shared mapping was registered (or the refusal lost)");
        munmap(a.base, (size_t)DEPTH * BLOCK);
    }
    close(map_fd);
}

int main(void)
{
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    int fd = make_file(dir, path, sizeof(path));
    if (fd < 0)
        SKIP("cannot make a file in %s", dir);
    unlink(path);
    for (int poll_only = 0; poll_only <= 1; poll_only++) {
        run_mode(XD_ASYNC_LIBAIO, poll_only ? "libaio, min 0" : "libaio", fd, poll_only, NULL);
        if (check_io_uring_refused())
            fprintf(stderr, "skip: io_uring cases: %s\n", check_io_uring_refused());
        else
            run_mode(XD_ASYNC_IO_URING, poll_only ? "io_uring, min 0" : "io_uring", fd, poll_only,
                     NULL);
    }
    run_mode_in_arena(XD_ASYNC_LIBAIO, "libaio, registered memory (ignored)", fd);
    if (!check_io_uring_refused()) {
        run_mode_in_arena(XD_ASYNC_IO_URING, "io_uring, registered memory", fd);
        run_io_uring_in_refused_memory(dir, fd);
    }
    close(fd);
    return check_failures ? 1 : 0;
}
