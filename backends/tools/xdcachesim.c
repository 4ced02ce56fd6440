/* xdcachesim - replay a block access trace (trace=FILE) at a cache size and
 * print the hit ratio of LRU, S3-FIFO (one policy over the whole cache, and
 * split into shards as the cache layer splits it), perfect LFU (every block's accesses
 * counted from the start, in unbounded memory: the frequency learning the
 * layer's sketch approximates) and Belady's MIN (offline: it knows the
 * future), so anyone can see how far the cache layer's policies are from
 * the optimum, and how much of that distance counting alone would close.
 *
 *   xdcachesim TRACE --cache-size N [--block-size B]
 *
 * N and B take k/m/g/t suffixes. B is the trace's own block size (from its
 * header records); giving another one is refused, since a trace records
 * blocks, not bytes. LRU and S3-FIFO are the cache layer's own policy code
 * (core/cachepolicy.c): s3fifo as one shard of the whole size,
 * s3fifo-sharded in the layer's shards (cache_shards.h: 16 for 16384
 * blocks or more), each block in the one its hash picks. Prints one line per
 * policy: policy=NAME cache_blocks=.. block_size=.. reads=.. hits=.. hit_ratio=..
 *
 * Exit status: 0; 1 for a trace it cannot replay (unreadable, a directory,
 * a bad or partial record: each named with the file, and the byte offset
 * where it is in the file) or results it cannot write; 2 for a bad command
 * line. Every failure is one line on stderr.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/cachepolicy.h"
#include "../core/cachesim.h"
#include "../core/config.h"
#include "../core/hash.h"
#include "../layers/cache_shards.h"

struct key_map { /* (file, block) -> dense id, open addressing */
    uint64_t *file, *block;
    uint32_t *id; /* id + 1; 0: empty */
    size_t cap, used;
};

struct trace {
    uint32_t *ids;
    uint8_t *ops;
    size_t n, cap;
    uint32_t block_size;
    struct key_map map;
};

#define USAGE "usage: xdcachesim TRACE --cache-size N [--block-size B]"

/* an argument or path for a message (one use per message) */
static const char *shown(const char *s)
{
    static char buf[XD_ESCAPE_LEN];
    return xd_escape(s, buf, sizeof(buf));
}

/* A bad command line: one line saying what, and the usage, exit 2. */
static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "xdcachesim: %s%s%s; " USAGE "\n", arg ? shown(arg) : "", arg ? ": " : "",
            what);
    return 2;
}

static int map_grow(struct key_map *m)
{
    struct key_map big = {.cap = m->cap ? 2 * m->cap : 1 << 16, .used = m->used};
    big.file = malloc(big.cap * sizeof(*big.file));
    big.block = malloc(big.cap * sizeof(*big.block));
    big.id = calloc(big.cap, sizeof(*big.id));
    if (!big.file || !big.block || !big.id) {
        free(big.file);
        free(big.block);
        free(big.id);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->id[i])
            continue;
        size_t j = xd_hash_mix(m->file[i], m->block[i]) & (big.cap - 1);
        while (big.id[j])
            j = (j + 1) & (big.cap - 1);
        big.file[j] = m->file[i];
        big.block[j] = m->block[i];
        big.id[j] = m->id[i];
    }
    free(m->file);
    free(m->block);
    free(m->id);
    *m = big;
    return 0;
}

/* The dense id of (file, block), made on first sight; -ENOMEM. */
static int64_t map_id(struct key_map *m, uint64_t file, uint64_t block)
{
    if ((m->used + 1) * 2 > m->cap && map_grow(m))
        return -ENOMEM;
    size_t j = xd_hash_mix(file, block) & (m->cap - 1);
    while (m->id[j]) {
        if (m->file[j] == file && m->block[j] == block)
            return m->id[j] - 1;
        j = (j + 1) & (m->cap - 1);
    }
    if (m->used >= UINT32_MAX - 1)
        return -E2BIG;
    m->file[j] = file;
    m->block[j] = block;
    m->id[j] = (uint32_t)++m->used;
    return m->id[j] - 1;
}

static int trace_add(struct trace *t, uint32_t id, uint8_t op)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1 << 16;
        uint32_t *ids = realloc(t->ids, cap * sizeof(*ids));
        if (ids)
            t->ids = ids;
        uint8_t *ops = realloc(t->ops, cap * sizeof(*ops));
        if (ops)
            t->ops = ops;
        if (!ids || !ops)
            return -ENOMEM;
        t->cap = cap;
    }
    t->ids[t->n] = id;
    t->ops[t->n++] = op;
    return 0;
}

/* r is the record at byte off of path (named in messages). */
static int trace_record(struct trace *t, const struct xd_trace_rec *r, const char *path,
                        uint64_t off)
{
    unsigned op = (unsigned)(r->word & 3);
    if (op == XD_TRACE_HEADER) {
        uint64_t bs = r->word >> 2;
        if (r->file != XD_TRACE_MAGIC || !bs || bs > UINT32_MAX) {
            fprintf(stderr, "xdcachesim: %s: a bad header record at byte %llu; allowed: a trace written by xdevice's trace=FILE\n",
                    shown(path), (unsigned long long)off);
            return -EINVAL;
        }
        if (t->block_size && t->block_size != bs) {
            fprintf(stderr, "xdcachesim: %s: mixes block sizes %u and %llu (the header at byte %llu); allowed: one cache_block_size per trace\n",
                    shown(path), t->block_size, (unsigned long long)bs, (unsigned long long)off);
            return -EINVAL;
        }
        t->block_size = (uint32_t)bs;
        return 0;
    }
    if (!t->block_size) {
        fprintf(stderr, "xdcachesim: %s: a record before any header (byte %llu); allowed: a trace written by xdevice's trace=FILE\n",
                shown(path), (unsigned long long)off);
        return -EINVAL;
    }
    int64_t id = map_id(&t->map, r->file, r->word >> 2);
    return id < 0 ? (int)id : trace_add(t, (uint32_t)id, (uint8_t)op);
}

/* The records in buf[0..n) (bytes), the first at byte off of the file. */
static int trace_records(struct trace *t, const unsigned char *buf, size_t n, const char *path,
                         uint64_t off)
{
    int rc = 0;
    for (size_t i = 0; !rc && i + sizeof(struct xd_trace_rec) <= n; i += sizeof(struct xd_trace_rec)) {
        struct xd_trace_rec r;
        memcpy(&r, buf + i, sizeof(r));
        rc = trace_record(t, &r, path, off + i);
    }
    return rc;
}

/* A file of whole records. A partial one at the end is refused, not
 * dropped: a trace cut short (a full disk, a writer killed) replays as a
 * different run, and its figures would be taken for that run's. */
static int trace_read(struct trace *t, FILE *fp, const char *path)
{
    enum { REC = sizeof(struct xd_trace_rec) };
    static unsigned char buf[4096 * REC];
    uint64_t off = 0;
    size_t have = 0, n;
    int rc = 0;
    while (!rc && (n = fread(buf + have, 1, sizeof(buf) - have, fp)) > 0) {
        have += n;
        size_t whole = have / REC * REC;
        rc = trace_records(t, buf, whole, path, off);
        memmove(buf, buf + whole, have - whole);
        off += whole;
        have -= whole;
    }
    if (!rc && ferror(fp)) {
        fprintf(stderr, "xdcachesim: %s: cannot read it at byte %llu: %s\n", shown(path),
                (unsigned long long)(off + have), strerror(errno));
        return -EIO;
    }
    if (!rc && have) {
        fprintf(stderr, "xdcachesim: %s: a partial record at byte %llu (%zu of %d bytes): the trace is cut short; allowed: whole %d-byte records, as trace=FILE writes them\n",
                shown(path), (unsigned long long)off, have, (int)REC, (int)REC);
        return -EINVAL;
    }
    return rc;
}

static int trace_load(struct trace *t, const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp) {
        int e = errno;
        fprintf(stderr, "xdcachesim: %s: cannot read: %s\n", shown(path), strerror(e));
        return -e;
    }
    /* fopen takes a directory for reading; it fails only at the first read */
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(fp);
        fprintf(stderr, "xdcachesim: %s: is a directory; allowed: a trace file written by xdevice's trace=FILE\n",
                shown(path));
        return -EISDIR;
    }
    int rc = trace_read(t, fp, path);
    fclose(fp);
    if (rc == -ENOMEM || rc == -E2BIG)
        fprintf(stderr, "xdcachesim: %s: too large to replay in memory\n", shown(path));
    return rc;
}

static void print_result(const char *name, uint32_t capacity, uint32_t bs,
                         const struct xd_sim_result *r)
{
    printf("policy=%s cache_blocks=%u block_size=%u reads=%llu hits=%llu hit_ratio=%.6f\n", name,
           capacity, bs, (unsigned long long)r->reads, (unsigned long long)r->hits,
           r->reads ? (double)r->hits / (double)r->reads : 0.0);
}

struct args {
    const char *path;
    int64_t cache_size, block_size;
    const char *cache_text, *block_text; /* as given, to name a repeat */
};

/* --cache-size / --block-size N: a size above 0, given once. */
static int size_option(const char *opt, const char *value, const char **seen, int64_t *out)
{
    if (*seen) {
        char first[XD_ESCAPE_LEN];
        fprintf(stderr, "xdcachesim: %s given twice (%s, then %s); allowed: once\n", opt,
                xd_escape(*seen, first, sizeof(first)), shown(value));
        return 2;
    }
    if (xd_parse_size(value, out) || *out <= 0) {
        fprintf(stderr, "xdcachesim: %s %s: not a valid size; allowed: bytes with an optional k/m/g/t suffix, above 0\n",
                opt, shown(value));
        return 2;
    }
    *seen = value;
    return 0;
}

/* 0, -1 for --help, or the exit status of a bad command line (said). */
static int parse_args(int argc, char **argv, struct args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int is_size = !strcmp(arg, "--cache-size") || !strcmp(arg, "--block-size");
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return -1;
        if (is_size && i + 1 == argc)
            return bad_usage("needs a value (a size such as 64m)", arg);
        if (!strcmp(arg, "--cache-size")) {
            if (size_option(arg, argv[++i], &a->cache_text, &a->cache_size))
                return 2;
        } else if (!strcmp(arg, "--block-size")) {
            if (size_option(arg, argv[++i], &a->block_text, &a->block_size))
                return 2;
        } else if (arg[0] == '-' && arg[1]) {
            return bad_usage("unknown option; allowed: --cache-size, --block-size, --help", arg);
        } else if (a->path) {
            char first[XD_ESCAPE_LEN];
            fprintf(stderr, "xdcachesim: %s: a second trace (the first: %s); allowed: one TRACE\n",
                    shown(arg), xd_escape(a->path, first, sizeof(first)));
            return 2;
        } else {
            a->path = arg;
        }
    }
    if (!a->path)
        return bad_usage("no TRACE given", NULL);
    if (!a->cache_size)
        return bad_usage("no --cache-size given", NULL);
    return 0;
}

/* The results reached stdout: a full disk or a closed pipe is a failure,
 * not a run that printed nothing. */
static int results_written(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "xdcachesim: cannot write the results to stdout: %s\n", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        printf(USAGE "\n");
        return results_written();
    }
    if (rc)
        return rc;
    const char *path = a.path;
    struct trace t = {0};
    if (trace_load(&t, path))
        return 1;
    if (!t.block_size) {
        fprintf(stderr, "xdcachesim: %s: an empty trace; allowed: a trace written by xdevice's trace=FILE\n", shown(path));
        return 1;
    }
    if (a.block_size && a.block_size != t.block_size) {
        fprintf(stderr, "xdcachesim: --block-size %llu: the trace records %u-byte blocks; allowed: %u (or leave it out)\n",
                (unsigned long long)a.block_size, t.block_size, t.block_size);
        return 2;
    }
    uint64_t blocks = a.cache_size / t.block_size;
    if (!blocks || blocks > UINT32_MAX) {
        fprintf(stderr, "xdcachesim: --cache-size %llu: holds %llu blocks of %u bytes; allowed: 1 to %u blocks\n",
                (unsigned long long)a.cache_size, (unsigned long long)blocks, t.block_size, UINT32_MAX);
        return 2;
    }
    struct xd_sim_trace sim = {.ids = t.ids, .ops = t.ops, .n = t.n, .nids = (uint32_t)t.map.used};
    struct xd_sim_result lru, s3fifo, sharded, lfu, min;
    if (xd_sim_policy(&sim, XD_CP_LRU, (uint32_t)blocks, &lru) ||
        xd_sim_policy(&sim, XD_CP_S3FIFO, (uint32_t)blocks, &s3fifo) ||
        xd_sim_policy_sharded(&sim, XD_CP_S3FIFO, (uint32_t)blocks, cache_shards_for(blocks),
                              &sharded) ||
        xd_sim_lfu(&sim, (uint32_t)blocks, &lfu) ||
        xd_sim_min(&sim, (uint32_t)blocks, &min)) {
        fprintf(stderr, "xdcachesim: %s: out of memory replaying it\n", shown(path));
        return 1;
    }
    print_result("lru", (uint32_t)blocks, t.block_size, &lru);
    print_result("s3fifo", (uint32_t)blocks, t.block_size, &s3fifo);
    print_result("s3fifo-sharded", (uint32_t)blocks, t.block_size, &sharded);
    print_result("perfect-lfu", (uint32_t)blocks, t.block_size, &lfu);
    print_result("min", (uint32_t)blocks, t.block_size, &min);
    return results_written();
}
