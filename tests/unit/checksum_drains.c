/* checksum_drains.c - unit test of the checksum layer's drains when one
 * nests in another, driven step by step: the layer (and, in the second
 * case, the mirror over it) stacked over a test layer, the gate, over the
 * file driver. The gate keeps every request it is given until a reap takes
 * it (a few per reap, oldest first), and a read it hands back while a write
 * of the same bytes is still kept reads torn (a byte flipped), as a disk
 * with the write half done would.
 *
 * The script: a write of block 5, a read of block 1, writes of blocks 6,
 * 7 and 1, and six reads go out; then a read of block 5 must first let the
 * write of block 5 land (a drain). The drain reaps the read of block 1
 * torn (the write of block 1 is still kept): its check fails, and the
 * recheck, seeing a write of that block out, lets every write of the
 * thread land (drains inside the drain: the mirror's, reaping this layer,
 * and this layer's own, reaping the reads behind) before it reads again.
 * Each request must come back exactly once, the read of block 1 with the
 * data of the write that landed under it, and every block must read back
 * after. The gate hands back 1, 2 and 3 requests a reap: where the torn
 * read sits in the drain's batch decides which entries a wrong drain
 * loses.
 *
 * Before fe5b98d the inner drain reaped over the outer's batch (not yet
 * counted held: the read of block 1 was lost, a stale entry handed out;
 * the layer alone at 1 and 2 a reap and the mirror at 1 fail), and the mirror's drain, reaping the layer mid-drain,
 * took held entries from under the outer loop (the mirror case at 2 a
 * reap fails when only that is undone): a fio job with checksums and a
 * mirror hung or aborted about once in 100 runs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "xd_internal.h"
#include "xdevice.h"

#define BLK 4096
#define NBLK 8
#define GATE_MAX 64
#define NOTHERS 6
#define NREQ (6 + NOTHERS)
static const unsigned other_block[NOTHERS] = {0, 2, 3, 4, 0, 2};

/* --- the gate ------------------------------------------------------------------ */

static struct {
    struct xd_req *kept[GATE_MAX]; /* oldest first */
    unsigned n;
    unsigned batch; /* most requests a reap hands back */
    unsigned torn;  /* reads handed back torn */
} gate;

/* A write of a block read covers is kept (still out). */
static bool gate_write_out(const struct xd_req *read)
{
    for (unsigned i = 0; i < gate.n; i++) {
        const struct xd_req *w = gate.kept[i];
        if (w->op == XD_OP_WRITE && !strcmp(w->file->path, read->file->path) &&
            w->off < read->off + read->len && read->off < w->off + w->len)
            return true;
    }
    return false;
}

static void gate_maybe_tear(struct xd_req *req)
{
    if (req->op == XD_OP_READ && req->result > 0 && gate_write_out(req)) {
        ((unsigned char *)req->buf)[0] ^= 0xff;
        gate.torn++;
    }
}

/* The file driver below runs synchronously: a request is done when it
 * returns, and kept here until reaped (a sync request of a layer above, a
 * recheck's read, comes back at once, torn if a write of it is kept). */
static int gate_submit(struct xd_layer *layer, struct xd_req *req)
{
    int rc = xd_layer_submit(layer->lower, req);
    if (rc < 0 || xd_req_is_sync(req)) {
        if (rc >= 0)
            gate_maybe_tear(req);
        return rc;
    }
    if (gate.n == GATE_MAX)
        return -EBUSY;
    gate.kept[gate.n++] = req;
    return XD_QUEUED;
}

static int gate_commit(struct xd_layer *layer)
{
    (void)layer;
    return 0;
}

/* The oldest gate.batch requests at most: a drain's batch is that small, so
 * the next kept requests are still out when those complete. */
static int gate_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                     const struct timespec *timeout)
{
    (void)layer, (void)min, (void)timeout;
    unsigned n = gate.n < gate.batch ? gate.n : gate.batch;
    n = n < max ? n : max;
    memcpy(done, gate.kept, n * sizeof(done[0]));
    gate.n -= n;
    memmove(gate.kept, gate.kept + n, gate.n * sizeof(gate.kept[0]));
    for (unsigned i = 0; i < n; i++)
        gate_maybe_tear(done[i]);
    return (int)n;
}

static unsigned gate_caps(struct xd_layer *layer, unsigned below)
{
    (void)layer;
    return below | XD_CAP_ASYNC;
}

static const struct xd_ops gate_ops = {
    .version = XD_OPS_VERSION,
    .name = "gate",
    .submit = gate_submit,
    .commit = gate_commit,
    .reap = gate_reap,
    .caps = gate_caps,
};

/* --- helpers ------------------------------------------------------------------- */

static char err[XD_ERRLEN];
static char dir[64], data_dir[96], copy_dir[96], path[128];

/* file driver (sync), gate, checksums, and the mirror when asked: as
 * xd_open builds a chain, by hand. */
static struct xd_dev *open_dev(bool mirror)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = xd_dev_new();
    dev->cfg = cfg;
    dev->queue_entries = 16;
    int rc = xd_config_set(cfg, "async", "sync", "test", err, sizeof(err)) ||
             xd_config_set(cfg, "enable_checksums", "true", "test", err, sizeof(err));
    if (!rc && mirror)
        rc = xd_config_set(cfg, "enable_redundancy", "true", "test", err, sizeof(err)) ||
             xd_config_set(cfg, "redundancy_factor", "2", "test", err, sizeof(err)) ||
             xd_config_set(cfg, "mirror_directories", copy_dir, "test", err, sizeof(err));
    rc = rc || xd_config_check(cfg, err, sizeof(err)) ||
         xd_dev_push(dev, &xd_file_ops, err, sizeof(err)) ||
         xd_dev_push(dev, &gate_ops, err, sizeof(err)) ||
         xd_dev_push(dev, &xd_checksum_ops, err, sizeof(err)) ||
         (mirror && xd_dev_push(dev, &xd_mirror_ops, err, sizeof(err)));
    if (rc) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return dev;
}

static void fill(char *buf, int seed)
{
    for (int i = 0; i < BLK; i++)
        buf[i] = (char)(i * 13 + seed);
}

static void submit(struct xd_dev *dev, struct xd_req *req, enum xd_op op, struct xd_file *f,
                   char *buf, unsigned block)
{
    *req = (struct xd_req){.op = op, .file = f, .buf = buf, .len = BLK, .off = (uint64_t)block * BLK};
    int rc = xd_submit(dev, req);
    /* the gate keeps every request: one done at once skipped a step */
    CHECK_MSG(rc == XD_QUEUED, "block %u: submit gave %d (result %lld)", block, rc,
              (long long)req->result);
}

/* --- the test ------------------------------------------------------------------ */

static void test_nested_drain(bool mirror, unsigned batch)
{
    char name[64];
    snprintf(name, sizeof(name), "%s, %u a reap", mirror ? "mirror over checksums" : "checksums", batch);
    gate.batch = batch;
    struct xd_dev *dev = open_dev(mirror);
    struct xd_file *f = NULL;
    static char old[NBLK * BLK], w5[BLK], w1[BLK], w6[BLK], w7[BLK], r1[BLK], r5[BLK];
    memset(old, 'o', sizeof(old));
    fill(w5, 5);
    fill(w1, 1);
    fill(w6, 6);
    fill(w7, 7);
    /* the last round's file, sidecar and copies: a copy stamped for the
     * file a round without the mirror made again refuses the open */
    xd_unlink(dev, path, err, sizeof(err));
    unlink(path);
    char copy[160];
    snprintf(copy, sizeof(copy), "%s/f", copy_dir);
    unlink(copy);
    if (xd_file_open(dev, path, XD_OPEN_CREATE, sizeof(old), &f, err, sizeof(err))) {
        CHECK_MSG(0, "%s: open %s: %s", name, path, err);
        xd_close(dev);
        return;
    }
    CHECK(xd_write(dev, f, old, sizeof(old), 0) == (ssize_t)sizeof(old));
    CHECK_MSG(gate.n == 0, "%s: a sync write was kept", name);
    gate.torn = 0;

    /* the writes of blocks 6 and 7 go between the read of block 1 and the
     * write under it: that write is still out when the read comes back,
     * whichever batch size */
    struct xd_req req[NREQ];
    submit(dev, &req[0], XD_OP_WRITE, f, w5, 5);
    submit(dev, &req[1], XD_OP_READ, f, r1, 1);
    submit(dev, &req[2], XD_OP_WRITE, f, w6, 6);
    submit(dev, &req[3], XD_OP_WRITE, f, w7, 7);
    submit(dev, &req[4], XD_OP_WRITE, f, w1, 1);
    /* reads out behind the writes: what a drain inside the drain reaps */
    static char others[NOTHERS][BLK];
    for (unsigned i = 0; i < NOTHERS; i++)
        submit(dev, &req[5 + i], XD_OP_READ, f, others[i], other_block[i]);
    /* the read of block 5 lets the write of block 5 land first: the drain */
    submit(dev, &req[NREQ - 1], XD_OP_READ, f, r5, 5);
    CHECK(xd_commit(dev) >= 0);

    unsigned seen[NREQ] = {0}, got = 0, rounds = 0;
    while (got < NREQ && rounds++ < 20) {
        struct xd_req *done[8];
        int n = xd_reap(dev, done, 1, 8, NULL);
        CHECK_MSG(n >= 0, "%s: reap: %s", name, strerror(-n));
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            long k = done[i] - req;
            if (k < 0 || k >= NREQ) {
                CHECK_MSG(0, "%s: reap handed back %p, none of the requests", name,
                          (void *)done[i]);
                continue;
            }
            seen[k]++;
            got++;
        }
    }
    for (int k = 0; k < NREQ; k++) {
        CHECK_MSG(seen[k] == 1, "%s: request %d came back %u times", name, k, seen[k]);
        CHECK_MSG(req[k].result == BLK, "%s: request %d: result %lld", name, k,
                  (long long)req[k].result);
    }
    CHECK_MSG(gate.torn >= 2, "%s: %u torn reads: the script did not reach the recheck", name,
              gate.torn);
    CHECK_MSG(layer_stat(dev, "checksum", "rechecked") >= 1, "%s: no recheck", name);
    CHECK_MSG(!memcmp(r1, w1, BLK), "%s: the read of block 1 did not get the write that landed", name);
    CHECK_MSG(!memcmp(r5, w5, BLK), "%s: the read of block 5 did not get its write", name);
    for (unsigned i = 0; i < NOTHERS; i++)
        CHECK_MSG(!memcmp(others[i], old, BLK), "%s: the read of block %u", name, other_block[i]);
    CHECK_MSG(layer_stat(dev, "checksum", "mismatches") == 0, "%s: a mismatch was reported", name);
    /* and every block reads back as written, through the layer */
    char buf[BLK];
    CHECK(xd_read(dev, f, buf, BLK, 6 * BLK) == BLK && !memcmp(buf, w6, BLK));
    CHECK(xd_read(dev, f, buf, BLK, 7 * BLK) == BLK && !memcmp(buf, w7, BLK));
    CHECK(xd_read(dev, f, buf, BLK, 1 * BLK) == BLK && !memcmp(buf, w1, BLK));
    xd_file_close(dev, f);
    xd_close(dev);
    gate.n = 0;
}

static void remove_dir(const char *d)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", d);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/var/tmp/xd-unit-drains-XXXXXX");
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    snprintf(copy_dir, sizeof(copy_dir), "%s/copy", dir);
    snprintf(path, sizeof(path), "%s/f", data_dir);
    CHECK(!mkdir(data_dir, 0700) && !mkdir(copy_dir, 0700));
    for (unsigned batch = 1; batch <= 3; batch++) {
        test_nested_drain(false, batch);
        test_nested_drain(true, batch);
    }
    remove_dir(dir);
    return check_result();
}
