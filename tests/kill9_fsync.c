/* kill9_fsync - kill -9 a writer at a random moment and check what survived.
 *
 * usage: kill9_fsync PATH ROUNDS SEED DEPTH STRICT KEY=VALUE...
 *
 * Each round forks a writer that opens PATH on a device built from the
 * KEY=VALUE pairs and writes 4 KiB blocks of a 1 MiB file (each block's
 * version goes up by one per write; its bytes are a pattern of block and
 * version, with both in a header), DEPTH at a time through xd_submit,
 * calling xd_flush every few batches. Through a pipe it tells the parent
 * each block it is about to write, each write that completed and each
 * fsync that returned. The parent kills it with SIGKILL after a random
 * delay, then reopens the file in a fresh process and reads every block:
 *
 * - every block is exactly some version's bytes (never torn, never
 *   garbage; a version-0 block reads as zeros);
 * - never older than the version the last completed fsync covered;
 * - with STRICT=1 (types that keep no data in process memory: the page
 *   cache survives a kill) never older than the last completed write;
 * - never newer than the last write begun.
 *
 * The restart must also open cleanly: no refusal, nothing left blocking.
 * Exit 0 when every round passed, 1 otherwise; one line per failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xdevice.h"

#define BLK 4096u
#define NBLK 256u
#define MAXDEPTH 16u

enum { MSG_BEGIN = 1, MSG_DONE = 2, MSG_SYNCED = 3 };
struct msg {
    uint32_t kind, block;
    uint64_t version;
};

static const char *path;
static char **kv;
static int nkv;
static unsigned depth;

static uint64_t rng(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* Block b at version v: a header (b, v) and bytes drawn from both. */
static void fill(unsigned char *buf, unsigned b, uint64_t v)
{
    uint64_t x = (b + 1) * 0x9e3779b97f4a7c15ull ^ (v * 0xff51afd7ed558ccdull), h[2] = {b, v};
    for (unsigned i = 0; i < BLK; i += 8) {
        rng(&x);
        memcpy(buf + i, &x, 8);
    }
    memcpy(buf, h, sizeof(h));
}

static struct xd_dev *open_dev(char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    int rc = cfg ? 0 : -ENOMEM;
    for (int i = 0; !rc && i < nkv; i++) {
        char *eq = strchr(kv[i], '=');
        if (!eq)
            return snprintf(err, errlen, "not KEY=VALUE: %s", kv[i]), NULL;
        *eq = 0;
        rc = xd_config_set(cfg, kv[i], eq + 1, "kill9", err, errlen);
        *eq = '=';
    }
    if (!rc)
        rc = xd_open(&dev, cfg, MAXDEPTH, err, errlen);
    xd_config_free(cfg);
    return rc ? NULL : dev;
}

static void say(int fd, uint32_t kind, unsigned block, uint64_t version)
{
    struct msg m = {kind, block, version};
    if (write(fd, &m, sizeof(m)) != sizeof(m))
        _exit(9);
}

/* The writer: batches of up to depth distinct blocks, an fsync every
 * few batches, until it is killed. */
static void writer(int out, uint64_t seed)
{
    static unsigned char bufs[MAXDEPTH][BLK] __attribute__((aligned(4096)));
    static uint64_t ver[NBLK];
    struct xd_req reqs[MAXDEPTH], *done[MAXDEPTH];
    bool finished[MAXDEPTH];
    char err[256];
    struct xd_dev *dev = open_dev(err, sizeof(err));
    struct xd_file *f = NULL;
    if (!dev || xd_file_open(dev, path, XD_OPEN_CREATE, NBLK * BLK, &f, err, sizeof(err))) {
        fprintf(stderr, "writer: %s\n", err);
        _exit(3);
    }
    for (unsigned b = 0; b < NBLK; b++) { /* resume from what the file holds */
        if (xd_read(dev, f, bufs[0], BLK, (uint64_t)b * BLK) != BLK)
            _exit(4);
        memcpy(&ver[b], bufs[0] + 8, 8);
    }
    for (uint64_t batch = 0;; batch++) {
        unsigned n = 1 + (unsigned)(rng(&seed) % depth), first = (unsigned)(rng(&seed) % NBLK);
        for (unsigned i = 0; i < n; i++) {
            unsigned b = (first + i * 37) % NBLK; /* distinct: 37 is prime to 256 */
            fill(bufs[i], b, ++ver[b]);
            say(out, MSG_BEGIN, b, ver[b]);
            reqs[i] = (struct xd_req){.op = XD_OP_WRITE, .file = f, .buf = bufs[i], .len = BLK,
                                      .off = (uint64_t)b * BLK, .user = (void *)(uintptr_t)b};
            int rc = xd_submit(dev, &reqs[i]);
            if (rc < 0)
                _exit(5);
            finished[i] = rc == XD_DONE;
        }
        if (xd_commit(dev) < 0)
            _exit(6);
        /* a request completed inline (XD_DONE) is never reaped; the others
         * are done when xd_reap hands them back (not when a result shows) */
        for (;;) {
            unsigned open_reqs = 0;
            for (unsigned i = 0; i < n; i++)
                open_reqs += !finished[i];
            if (!open_reqs)
                break;
            int got = xd_reap(dev, done, 1, MAXDEPTH, NULL);
            if (got < 0)
                _exit(8);
            for (int k = 0; k < got; k++)
                finished[done[k] - reqs] = true;
        }
        for (unsigned i = 0; i < n; i++) {
            unsigned b = (unsigned)(uintptr_t)reqs[i].user;
            if (reqs[i].result != (int64_t)BLK)
                _exit(10);
            say(out, MSG_DONE, b, ver[b]);
        }
        if (batch % 4 == 3) {
            if (xd_flush(dev, f, (int)(batch / 4 % 2)))
                _exit(11);
            say(out, MSG_SYNCED, 0, 0);
        }
    }
}

/* Read every block back in a fresh process; 0 when all hold a version in
 * [lo, hi] with exactly its bytes, and now[] gets the versions found (the
 * next round's starting point: the next writer goes on from them). */
static int check(const uint64_t *lo, const uint64_t *hi, uint64_t *now, unsigned round)
{
    int p[2];
    if (pipe(p))
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        static unsigned char got[BLK] __attribute__((aligned(4096))), want[BLK];
        char err[256];
        int bad = 0;
        struct xd_dev *dev = open_dev(err, sizeof(err));
        struct xd_file *f = NULL;
        if (!dev || xd_file_open(dev, path, 0, 0, &f, err, sizeof(err))) {
            fprintf(stderr, "round %u: restart refused: %s\n", round, err);
            _exit(1);
        }
        for (unsigned b = 0; b < NBLK; b++) {
            ssize_t n = xd_read(dev, f, got, BLK, (uint64_t)b * BLK);
            uint64_t v = 0, hb = 0;
            memcpy(&hb, got, 8);
            memcpy(&v, got + 8, 8);
            now[b] = 0;
            if (n != BLK) { /* a kill leaves nothing corrupt: even EIO is a failure */
                fprintf(stderr, "round %u: block %u: read %zd\n", round, b, n);
                bad = 1;
                continue;
            }
            if (v == 0 && !memcmp(got, (unsigned char[BLK]){0}, BLK) && lo[b] == 0)
                continue;
            fill(want, b, v);
            now[b] = v;
            if (v < lo[b] || v > hi[b] || memcmp(got, want, BLK)) {
                fprintf(stderr, "round %u: block %u holds block %llu version %llu (%s), want %llu..%llu\n",
                        round, b, (unsigned long long)hb, (unsigned long long)v,
                        memcmp(got, want, BLK) ? "wrong bytes" : "intact",
                        (unsigned long long)lo[b], (unsigned long long)hi[b]);
                bad = 1;
            }
        }
        if (xd_file_close(dev, f))
            bad = 1;
        xd_close(dev);
        if (write(p[1], now, NBLK * sizeof(*now)) != (ssize_t)(NBLK * sizeof(*now)))
            bad = 1;
        _exit(bad);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got < NBLK * sizeof(*now) && (n = read(p[0], (char *)now + got, NBLK * sizeof(*now) - got)) > 0)
        got += (size_t)n;
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != NBLK * sizeof(*now))
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: kill9_fsync PATH ROUNDS SEED DEPTH STRICT KEY=VALUE...\n");
        return 2;
    }
    path = argv[1];
    unsigned rounds = (unsigned)atoi(argv[2]);
    uint64_t seed = strtoull(argv[3], NULL, 0) | 1;
    depth = (unsigned)atoi(argv[4]);
    int strict = atoi(argv[5]);
    kv = argv + 6;
    nkv = argc - 6;
    if (depth < 1 || depth > MAXDEPTH)
        return 2;
    static uint64_t synced[NBLK], done[NBLK], begun[NBLK], pending[NBLK], now[NBLK];
    int fails = 0;
    for (unsigned r = 0; r < rounds; r++) {
        int p[2];
        if (pipe(p))
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            writer(p[1], seed + r * 7919);
        }
        close(p[1]);
        /* kill after a random 20-400 ms of writing (from its first write) */
        struct msg m;
        if (read(p[0], &m, sizeof(m)) != sizeof(m)) {
            fprintf(stderr, "round %u: the writer wrote nothing\n", r);
            return 1;
        }
        usleep(20000 + (useconds_t)(rng(&seed) % 380000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "round %u: writer exited %d before the kill\n", r,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return 1;
        }
        /* replay the writer's story: pending blocks become durable at a sync */
        do {
            unsigned b = m.block % NBLK;
            if (m.kind == MSG_BEGIN)
                begun[b] = m.version;
            else if (m.kind == MSG_DONE)
                done[b] = pending[b] = m.version;
            else if (m.kind == MSG_SYNCED)
                for (unsigned i = 0; i < NBLK; i++)
                    synced[i] = pending[i] > synced[i] ? pending[i] : synced[i];
        } while (read(p[0], &m, sizeof(m)) == sizeof(m));
        close(p[0]);
        if (check(strict ? done : synced, begun, now, r)) {
            fails++;
            break;
        }
        /* the next writer reads what survived and goes on from it */
        for (unsigned b = 0; b < NBLK; b++)
            done[b] = synced[b] = pending[b] = begun[b] = now[b];
    }
    return fails ? 1 : 0;
}
