/* fault_retry.c - unit test of the fault and retry layers through the public
 * API: the fault layer's choices repeat with the seed; an async queue keeps
 * flowing while failed requests wait for their retry (they come back last,
 * the others first); a poll never waits for them; sync requests are retried
 * inline; ENOSPC is never retried; a persistent fault fails every retry and
 * leaves one line for take_error; fault_drop_writes holds writes as a
 * volatile cache would: read back on the device, stored by a flush, lost by
 * a close before one. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define BLK 4096
#define NREQ 16

static char err[XD_ERRLEN];

static struct xd_dev *open_dev(const char *const *kv)
{
    struct xd_dev *dev;
    if (check_open_dev(&dev, kv, "test", 32, err, sizeof(err)))
        fprintf(stderr, "open: %s\n", err);
    return dev;
}

static struct xd_file *open_file(struct xd_dev *dev, const char *path)
{
    struct xd_file *f = NULL;
    if (xd_file_open(dev, path, XD_OPEN_CREATE, NREQ * BLK, &f, err, sizeof(err)))
        fprintf(stderr, "%s: %s\n", path, err);
    return f;
}

static char path[64];
static unsigned char bufs[NREQ][BLK];

/* Submit NREQ writes of block i at offset i * BLK, commit. */
static void submit_writes(struct xd_dev *dev, struct xd_file *f, struct xd_req *reqs)
{
    for (unsigned i = 0; i < NREQ; i++) {
        memset(bufs[i], 'a' + (int)i, BLK);
        reqs[i] = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = bufs[i], .len = BLK,
                                  .off = i * (uint64_t)BLK, .user = (void *)(uintptr_t)i};
        int rc = xd_submit(dev, &reqs[i]);
        CHECK_MSG(rc == XD_QUEUED || rc == XD_DONE, "submit %u: %d", i, rc);
    }
    CHECK(xd_commit(dev) >= 0);
}

/* Async: every 4th write fails once and waits 200 ms for its retry; the 12
 * others come back first, one reap at a time, and a poll meanwhile returns
 * without waiting. Then the 4 come back recovered. */
static void test_async_queue_flows(const char *mode)
{
    const char *kv[] = {"async", mode, "enable_fault_injection", "true", "fault_every", "4",
                        "max_retries", "2", "retry_delay_ms", "200", NULL};
    struct xd_dev *dev = open_dev(kv);
    CHECK(dev);
    if (!dev)
        return;
    struct xd_file *f = open_file(dev, path);
    struct xd_req reqs[NREQ], *done[NREQ];
    unsigned order[NREQ], got = 0;
    submit_writes(dev, f, reqs);
    while (got < NREQ) {
        int n = xd_reap(dev, done, 1, NREQ, NULL);
        CHECK_MSG(n >= 1, "reap: %d", n);
        if (n < 1)
            break;
        for (int i = 0; i < n; i++) {
            CHECK_MSG(done[i]->result == BLK, "result %lld", (long long)done[i]->result);
            order[got++] = (unsigned)(uintptr_t)done[i]->user;
        }
        if (got == NREQ - 4) {
            struct timespec zero = {0, 0};
            CHECK(xd_reap(dev, done, 0, NREQ, &zero) == 0); /* held, not yet due */
        }
    }
    for (unsigned i = 0; i < got; i++) /* writes 3, 7, 11, 15 failed: last back */
        CHECK_MSG((order[i] % 4 == 3) == (i >= NREQ - 4), "%s: request %u came back %u-th",
                  mode, order[i], i);
    CHECK(layer_stat(dev, "retry", "recovered") == 4);
    CHECK(layer_stat(dev, "retry", "failed") == 0);
    CHECK(layer_stat(dev, "fault", "retries_passed") == 4);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* Sync: each request completes inline, retried inline when it failed. */
static void test_sync_inline(void)
{
    const char *kv[] = {"enable_fault_injection", "true", "fault_every", "4", "max_retries", "1",
                        "retry_delay_ms", "0", NULL};
    struct xd_dev *dev = open_dev(kv);
    CHECK(dev);
    if (!dev)
        return;
    struct xd_file *f = open_file(dev, path);
    struct xd_req reqs[NREQ];
    for (unsigned i = 0; i < NREQ; i++) {
        reqs[i] = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = bufs[i], .len = BLK,
                                  .off = i * (uint64_t)BLK};
        CHECK(xd_submit(dev, &reqs[i]) == XD_DONE && reqs[i].result == BLK);
    }
    CHECK(layer_stat(dev, "retry", "recovered") == 4);
    xd_file_close(dev, f);
    xd_close(dev);
}

/* ENOSPC goes up at once; a persistent EIO fails all its retries and says so. */
static void test_errors_that_stay(void)
{
    for (int persistent = 0; persistent < 2; persistent++) {
        const char *kv[] = {"enable_fault_injection", "true", "fault_every", "4",
                            "fault_errno", persistent ? "EIO" : "ENOSPC",
                            "fault_persistent", persistent ? "true" : "false",
                            "max_retries", "3", "retry_delay_ms", "0", NULL};
        struct xd_dev *dev = open_dev(kv);
        CHECK(dev);
        if (!dev)
            return;
        struct xd_file *f = open_file(dev, path);
        struct xd_req req;
        for (unsigned i = 0; i < 4; i++) {
            req = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = bufs[i], .len = BLK,
                                  .off = i * (uint64_t)BLK};
            CHECK(xd_submit(dev, &req) == XD_DONE);
        }
        CHECK(req.result == (persistent ? -EIO : -ENOSPC));
        CHECK(layer_stat(dev, "retry", "retries") == (persistent ? 3 : 0));
        CHECK(layer_stat(dev, "retry", "failed") == persistent);
        CHECK(layer_stat(dev, "fault", "bad_range_hits") == (persistent ? 3 : 0));
        xd_file_close(dev, f);
        xd_close(dev);
    }
}

/* The same seed picks the same requests; another seed, others. */
static uint64_t chosen_mask(const char *seed)
{
    const char *kv[] = {"enable_fault_injection", "true", "fault_probability", "0.25",
                        "fault_seed", seed, NULL};
    struct xd_dev *dev = open_dev(kv);
    CHECK(dev);
    if (!dev)
        return 0;
    struct xd_file *f = open_file(dev, path);
    uint64_t mask = 0;
    for (unsigned i = 0; i < 64; i++) {
        struct xd_req req = {.op = XD_OP_WRITE, .file = f, .buf = bufs[0], .len = BLK,
                             .off = (i % NREQ) * (uint64_t)BLK};
        xd_submit(dev, &req);
        if (req.result < 0)
            mask |= 1ull << i;
    }
    xd_file_close(dev, f);
    xd_close(dev);
    return mask;
}

static void test_seeded(void)
{
    uint64_t a = chosen_mask("7"), b = chosen_mask("7"), c = chosen_mask("8");
    CHECK(a != 0 && a != ~0ull);
    CHECK(a == b);
    CHECK(a != c);
}

/* Block i of f read through dev (async: submitted and reaped) equals c. */
static bool block_is(struct xd_dev *dev, struct xd_file *f, unsigned i, int c, bool async)
{
    static unsigned char got[BLK], want[BLK];
    memset(got, 0xee, BLK);
    memset(want, c, BLK);
    struct xd_req req = {.op = XD_OP_READ, .file = f, .buf = got, .len = BLK,
                         .off = i * (uint64_t)BLK}, *done;
    if (!async) {
        if (xd_read(dev, f, got, BLK, i * (uint64_t)BLK) != BLK)
            return false;
    } else if (xd_submit(dev, &req) == XD_QUEUED) {
        xd_commit(dev);
        if (xd_reap(dev, &done, 1, 1, NULL) != 1 || done->result != BLK)
            return false;
    } else if (req.result != BLK) {
        return false;
    }
    return !memcmp(got, want, BLK);
}

static unsigned blocks_matching(struct xd_dev *dev, struct xd_file *f, int base, bool async)
{
    unsigned n = 0;
    for (unsigned i = 0; i < NREQ; i++)
        n += block_is(dev, f, i, base + (int)i, async);
    return n;
}

/* Every 2nd write is held. A second device, with no fault layer, reads
 * what is stored; the faulty one sees its held writes too, newest bytes
 * winning whichever write (held or stored) came last. */
static void test_held_writes(const char *mode)
{
    const char *kv[] = {"async", mode, "enable_fault_injection", "true", "fault_every", "2",
                        "fault_drop_writes", "true", NULL};
    const char *plain_kv[] = {"async", "sync", NULL};
    bool async = strcmp(mode, "sync");
    struct xd_dev *dev = open_dev(kv), *plain = open_dev(plain_kv);
    CHECK(dev && plain);
    if (!dev || !plain)
        return;
    struct xd_file *f = open_file(dev, path), *pf = open_file(plain, path);
    for (int round = 0; round < 2; round++) /* 'a'+i, then 'A'+i over it */
        for (unsigned i = 0; i < NREQ; i++) {
            memset(bufs[i], (round ? 'A' : 'a') + (int)i, BLK);
            CHECK(xd_write(dev, f, bufs[i], BLK, i * (uint64_t)BLK) == BLK);
        }
    long long held = layer_stat(dev, "fault", "held_writes");
    CHECK_MSG(held >= NREQ / 2, "held %lld", held); /* a rewrite of one may pass as its retry */
    CHECK_MSG(blocks_matching(dev, f, 'A', async) == NREQ, "%s: the device reads its writes", mode);
    CHECK_MSG(blocks_matching(plain, pf, 'A', false) < NREQ, "%s: held writes were stored", mode);
    CHECK(xd_flush(dev, f, 0) == 0);
    CHECK_MSG(blocks_matching(plain, pf, 'A', false) == NREQ, "%s: a flush stores them", mode);
    CHECK(layer_stat(dev, "fault", "held_stored") == held);
    for (unsigned i = 0; i < 4; i++) { /* some held, then a close before a flush */
        memset(bufs[i], '0' + (int)i, BLK);
        CHECK(xd_write(dev, f, bufs[i], BLK, i * (uint64_t)BLK) == BLK);
    }
    xd_file_close(dev, f);
    long long lost = layer_stat(dev, "fault", "dropped_writes");
    CHECK_MSG(lost >= 1 && lost == layer_stat(dev, "fault", "held_writes") - held, "lost %lld", lost);
    unsigned stored = 0;
    for (unsigned i = 0; i < 4; i++)
        stored += block_is(plain, pf, i, '0' + (int)i, false);
    CHECK_MSG(stored == 4 - lost, "%s: %u stored, %lld lost at close", mode, stored, lost);
    xd_file_close(plain, pf);
    xd_close(dev);
    xd_close(plain);
}

int main(void)
{
    /* in a directory of our own: a predictable name in /tmp could be a link
     * someone planted there */
    char dir[] = "/tmp/xd-fault-retry-XXXXXX";
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/data", dir);
    test_seeded();
    test_sync_inline();
    test_errors_that_stay();
    if (check_mode_runs("io_uring", "queued retries"))
        test_async_queue_flows("io_uring");
    test_async_queue_flows("libaio");
    test_held_writes("sync");
    if (check_mode_runs("io_uring", "held writes"))
        test_held_writes("io_uring");
    unlink(path);
    rmdir(dir);
    return check_result();
}
