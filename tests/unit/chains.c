/* chains.c - unit test that the deepest chain of every storage type opens
 * and carries data: each type with every optional layer its config takes
 * (read cache, checksums, mirror, fault injection, retries, checkpoints,
 * sparse), each layer kept when xd_config_check accepts it beside those
 * already on. Such a chain was refused at open, though the schema let a
 * user ask for it: nine layers on regular (more than XD_MAX_LAYERS was),
 * and on mmap 104 bytes of per-request state, more than the 96 of
 * xd_req.xd_private (public ABI, XD_REQ_PRIVATE_WORDS). Each open device
 * then writes and reads back through the whole chain, synchronously and
 * with requests in flight, in every async mode, with a transient fault on
 * every 7th request that the retry layer or the mirror absorbs.
 *
 * While its file is open, every descriptor the chain holds is close-on-exec:
 * a program linking the library that runs another (fork and exec) must not
 * hand it our files, whose locks (a cache table's solo lock, a mirror's
 * turns) would then be held for as long as that program runs.
 *
 * A failure names the type, the layers it asked for, and xd_open's line,
 * which lists each layer's bytes of per-request state. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "config_schema.h"
#include "xd_internal.h"
#include "xdevice.h"

#define TMPFS_MAGIC 0x01021994
#define BLK 4096
#define NBLK 32
#define DEPTH 8

#define TYPE_NAME(id, name) #name,
static const char *const types[] = {XD_STORAGE_TYPES(TYPE_NAME)};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static char disk[] = "/var/tmp/xd-unit-chains-XXXXXX";
static char shm[64];
static char dirs[4][PATH_MAX]; /* sums, copy, ckpt, data */
static char err[XD_ERRLEN];

/* The optional layers, each the keys that put it in the chain. */
static const struct {
    const char *name;
    const struct xd_ops *ops;
    const char *kv[8];
} optional[] = {
    {"cache", &xd_cache_ops, {"enable_read_cache", "true", "cache_size", "1m"}},
    {"checksum", &xd_checksum_ops, {"enable_checksums", "true", "checksum_directory", dirs[0]}},
    {"mirror", &xd_mirror_ops,
     {"enable_redundancy", "true", "redundancy_factor", "2", "mirror_directories", dirs[1]}},
    {"fault", &xd_fault_ops,
     {"enable_fault_injection", "true", "fault_every", "7", "fault_ops", "both"}},
    {"retry", &xd_retry_ops, {"max_retries", "2", "retry_delay_ms", "0"}},
    {"checkpoint", &xd_checkpoint_ops,
     {"enable_checkpoints", "true", "checkpoint_directory", dirs[2]}},
    {"sparse", &xd_sparse_ops, {"enable_sparse", "true"}},
};
#define NOPT (sizeof(optional) / sizeof(optional[0]))

static int set_all(struct xd_config *cfg, const char *const *kv)
{
    int rc = 0;
    for (; !rc && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], "test", err, sizeof(err));
    return rc;
}

/* The config of type with every optional layer its checks accept; which
 * were kept in *kept (a bit each). */
static struct xd_config *deepest_config(const char *type, const char *async, unsigned *kept)
{
    struct xd_config *cfg = xd_config_new();
    const char *base[] = {"storage_type", type, "async", async, "tmpfs_directory", shm,
                          "hot_directory", shm, NULL};
    CHECK_MSG(!set_all(cfg, base), "%s: %s", type, err);
    *kept = 0;
    for (unsigned i = 0; i < NOPT; i++) {
        struct xd_config *more = xd_config_dup(cfg);
        if (!set_all(more, optional[i].kv) && !xd_config_check(more, err, sizeof(err))) {
            xd_config_free(cfg);
            cfg = more;
            *kept |= 1u << i;
        } else {
            xd_config_free(more);
        }
    }
    return cfg;
}

static void names_of(unsigned kept, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < NOPT && used < len; i++)
        if (kept & (1u << i))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "+" : "",
                                     optional[i].name);
}

static bool chain_has(const struct xd_dev *dev, const struct xd_ops *ops)
{
    for (unsigned i = 0; i < dev->nlayers; i++)
        if (dev->layers[i].ops == ops)
            return true;
    return false;
}

/* NBLK blocks written with up to DEPTH requests in flight, then read back
 * the same way; 0 or a line in err. */
static int async_round(struct xd_dev *dev, struct xd_file *f, enum xd_op op, char *data)
{
    struct xd_req reqs[NBLK];
    unsigned sent = 0, done = 0;
    memset(reqs, 0, sizeof(reqs));
    while (done < NBLK) {
        unsigned staged = 0;
        while (sent < NBLK && sent - done < DEPTH) {
            struct xd_req *r = &reqs[sent];
            *r = (struct xd_req){.op = op, .file = f, .buf = data + (size_t)sent * BLK,
                                 .len = BLK, .off = (uint64_t)sent * BLK};
            int rc = xd_submit(dev, r);
            if (rc == -EBUSY)
                break;
            sent++;
            if (rc == XD_DONE)
                done++;
            else
                staged++;
        }
        if (staged && xd_commit(dev) < 0)
            return snprintf(err, sizeof(err), "commit failed"), -1;
        if (done < sent) {
            struct xd_req *out[DEPTH];
            int n = xd_reap(dev, out, 1, DEPTH, NULL);
            if (n < 0)
                return snprintf(err, sizeof(err), "reap: %s", strerror(-n)), -1;
            done += (unsigned)n;
        }
    }
    for (unsigned i = 0; i < NBLK; i++)
        if (reqs[i].result != BLK)
            return snprintf(err, sizeof(err), "%s of block %u: %lld",
                            op == XD_OP_READ ? "read" : "write", i, (long long)reqs[i].result),
                   -1;
    return 0;
}

/* The descriptors open before any device (inherited from whoever ran us). */
#define MAX_FD_SEEN 4096
static bool open_at_start[MAX_FD_SEEN];

/* Calls fn(fd) for each open descriptor but the listing's own; 0 or -errno. */
static int each_open_fd(void (*fn)(int fd, const char *type, const char *async), const char *type,
                        const char *async)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
            fn(atoi(de->d_name), type, async);
    closedir(d);
    return 0;
}

static void note_open_at_start(int fd, const char *type, const char *async)
{
    if (fd >= 0 && fd < MAX_FD_SEEN)
        open_at_start[fd] = true;
}

/* A descriptor the library opened is close-on-exec. */
static void check_fd_close_on_exec(int fd, const char *type, const char *async)
{
    if (fd >= 0 && fd < MAX_FD_SEEN && open_at_start[fd])
        return;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC))
        return;
    char link[64], target[PATH_MAX] = "?";
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    target[n > 0 ? n : 1] = 0;
    CHECK_MSG(0, "%s %s: descriptor %d (%s) is not close-on-exec", type, async, fd, target);
}

static void round_trip(struct xd_dev *dev, const char *type, const char *async)
{
    static char a[NBLK * BLK] __attribute__((aligned(4096)));
    static char got[NBLK * BLK] __attribute__((aligned(4096)));
    char path[PATH_MAX + 32];
    struct xd_file *f = NULL;
    snprintf(path, sizeof(path), "%s/%s-%s", dirs[3], type, async);
    if (xd_file_open(dev, path, XD_OPEN_CREATE, sizeof(a), &f, err, sizeof(err))) {
        CHECK_MSG(0, "%s %s: file open: %s", type, async, err);
        return;
    }
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (char)(i * 31 + (size_t)type[0] + (size_t)async[0]);
    CHECK_MSG(xd_write(dev, f, a, sizeof(a), 0) == (ssize_t)sizeof(a), "%s %s: write", type, async);
    memset(got, 0, sizeof(got));
    CHECK_MSG(xd_read(dev, f, got, sizeof(got), 0) == (ssize_t)sizeof(got) &&
                  !memcmp(a, got, sizeof(a)),
              "%s %s: read back", type, async);
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (char)~a[i];
    CHECK_MSG(!async_round(dev, f, XD_OP_WRITE, a), "%s %s: %s", type, async, err);
    CHECK_MSG(!xd_flush(dev, f, 0), "%s %s: flush", type, async);
    memset(got, 0, sizeof(got));
    CHECK_MSG(!async_round(dev, f, XD_OP_READ, got), "%s %s: %s", type, async, err);
    CHECK_MSG(!memcmp(a, got, sizeof(a)), "%s %s: data read back differs", type, async);
    CHECK_MSG(!each_open_fd(check_fd_close_on_exec, type, async), "listing /proc/self/fd: %s",
              strerror(errno));
    CHECK_MSG(!xd_file_close(dev, f), "%s %s: close", type, async);
    CHECK_MSG(layer_stat(dev, "fault", "injected") > 0, "%s %s: no fault injected", type, async);
}

static void test_type(const char *type, const char *async, size_t *deepest)
{
    unsigned kept;
    char asked[128];
    struct xd_config *cfg = deepest_config(type, async, &kept);
    names_of(kept, asked, sizeof(asked));
    struct xd_dev *dev = NULL;
    int rc = xd_open(&dev, cfg, DEPTH, err, sizeof(err));
    xd_config_free(cfg);
    if (rc == -EINVAL && !strcmp(async, "io_uring") && check_skip_io_uring(type))
        return;
    CHECK_MSG(!rc, "storage_type=%s async=%s with %s: xd_open refused the deepest chain: %s",
              type, async, asked, err);
    if (rc)
        return;
    for (unsigned i = 0; i < NOPT; i++)
        if (kept & (1u << i))
            CHECK_MSG(chain_has(dev, optional[i].ops), "%s: asked for %s, not in the chain", type,
                      optional[i].name);
    if (!strcmp(async, "sync"))
        printf("%-10s %u layers, %2zu of %zu bytes of per-request state (%s)\n", type,
               dev->nlayers, dev->req_ctx_used, sizeof(((struct xd_req *)0)->xd_private), asked);
    if (dev->req_ctx_used > *deepest)
        *deepest = dev->req_ctx_used;
    if (strcmp(type, "block")) /* a block device is test_block's (block.c) */
        round_trip(dev, type, async);
    xd_close(dev);
}

/* Every optional layer is in some type's deepest chain: one added to the
 * table in types.c and not here would go untested. */
static void test_every_layer_somewhere(void)
{
    unsigned all = 0, kept;
    for (size_t t = 0; t < NTYPES; t++) {
        xd_config_free(deepest_config(types[t], "sync", &kept));
        all |= kept;
    }
    for (unsigned i = 0; i < NOPT; i++)
        CHECK_MSG(all & (1u << i), "no type takes the %s layer", optional[i].name);
}

int main(void)
{
    struct statfs sf;
    if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC)
        SKIP("/dev/shm is not a tmpfs (the tmpfs and hybrid types need one)");
    if (!mkdtemp(disk))
        SKIP("mkdtemp %s: %s", disk, strerror(errno));
    snprintf(shm, sizeof(shm), "/dev/shm/xd-unit-chains-%d", (int)getpid());
    const char *sub[] = {"sums", "copy", "ckpt", "data"};
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/%s", disk, sub[i]);
        mkdir(dirs[i], 0755);
    }
    if (each_open_fd(note_open_at_start, NULL, NULL))
        SKIP("cannot list /proc/self/fd: %s", strerror(errno));
    test_every_layer_somewhere();
    unsigned kept;
    xd_config_free(deepest_config("regular", "sync", &kept));
    CHECK_MSG(kept == (1u << NOPT) - 1, "the regular type no longer takes every optional layer");
    size_t deepest = 0;
    static const char *const modes[] = {"sync", "libaio", "io_uring"};
    for (size_t m = 0; m < 3; m++)
        for (size_t t = 0; t < NTYPES; t++)
            test_type(types[t], modes[m], &deepest);
    printf("deepest chain: %zu of %zu bytes of per-request state\n", deepest,
           sizeof(((struct xd_req *)0)->xd_private));
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", disk, shm);
    if (system(cmd))
        fprintf(stderr, "could not remove %s and %s\n", disk, shm);
    return check_result();
}
