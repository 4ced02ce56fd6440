/* xdcachesim - replay a block access trace (trace=FILE) at a cache size and
 * print the hit ratio of LRU, S3-FIFO, perfect LFU (every block's accesses
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
 * (core/cachepolicy.c), as one shard of the whole size. Prints one line per
 * policy: policy=NAME cache_blocks=.. block_size=.. reads=.. hits=.. hit_ratio=..
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/cachepolicy.h"
#include "../core/cachesim.h"
#include "../core/config.h"
#include "../core/hash.h"

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

static int usage(void)
{
    fprintf(stderr, "usage: xdcachesim TRACE --cache-size N [--block-size B]\n");
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

static int trace_record(struct trace *t, const struct xd_trace_rec *r, const char *path)
{
    unsigned op = (unsigned)(r->word & 3);
    if (op == XD_TRACE_HEADER) {
        uint64_t bs = r->word >> 2;
        if (r->file != XD_TRACE_MAGIC || !bs || bs > UINT32_MAX) {
            fprintf(stderr, "xdcachesim: %s: a bad header record; allowed: a trace written by xdevice's trace=FILE\n", path);
            return -EINVAL;
        }
        if (t->block_size && t->block_size != bs) {
            fprintf(stderr, "xdcachesim: %s: mixes block sizes %u and %llu; allowed: one cache_block_size per trace\n",
                    path, t->block_size, (unsigned long long)bs);
            return -EINVAL;
        }
        t->block_size = (uint32_t)bs;
        return 0;
    }
    if (!t->block_size) {
        fprintf(stderr, "xdcachesim: %s: records before any header; allowed: a trace written by xdevice's trace=FILE\n", path);
        return -EINVAL;
    }
    int64_t id = map_id(&t->map, r->file, r->word >> 2);
    return id < 0 ? (int)id : trace_add(t, (uint32_t)id, (uint8_t)op);
}

static int trace_load(struct trace *t, const char *path)
{
    static struct xd_trace_rec buf[4096];
    FILE *fp = fopen(path, "rb");
    size_t n;
    int rc = 0;
    if (!fp) {
        fprintf(stderr, "xdcachesim: %s: cannot read: %s\n", path, strerror(errno));
        return -errno;
    }
    while (!rc && (n = fread(buf, sizeof(buf[0]), sizeof(buf) / sizeof(buf[0]), fp)) > 0)
        for (size_t i = 0; !rc && i < n; i++)
            rc = trace_record(t, &buf[i], path);
    if (!rc && ferror(fp)) {
        fprintf(stderr, "xdcachesim: %s: read error\n", path);
        rc = -EIO;
    }
    fclose(fp);
    if (rc == -ENOMEM || rc == -E2BIG)
        fprintf(stderr, "xdcachesim: %s: too large to replay in memory\n", path);
    return rc;
}

static void print_result(const char *name, uint32_t capacity, uint32_t bs,
                         const struct xd_sim_result *r)
{
    printf("policy=%s cache_blocks=%u block_size=%u reads=%llu hits=%llu hit_ratio=%.6f\n", name,
           capacity, bs, (unsigned long long)r->reads, (unsigned long long)r->hits,
           r->reads ? (double)r->hits / (double)r->reads : 0.0);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int64_t cache_size = 0, block_size = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cache-size") && i + 1 < argc) {
            if (xd_parse_size(argv[++i], &cache_size) || cache_size <= 0) {
                fprintf(stderr, "xdcachesim: --cache-size %s: not a valid size; allowed: bytes with an optional k/m/g/t suffix, above 0\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--block-size") && i + 1 < argc) {
            if (xd_parse_size(argv[++i], &block_size) || block_size <= 0) {
                fprintf(stderr, "xdcachesim: --block-size %s: not a valid size; allowed: bytes with an optional k/m/g/t suffix\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            return usage();
        }
    }
    if (!path || !cache_size)
        return usage();
    struct trace t = {0};
    if (trace_load(&t, path))
        return 1;
    if (!t.block_size) {
        fprintf(stderr, "xdcachesim: %s: an empty trace; allowed: a trace written by xdevice's trace=FILE\n", path);
        return 1;
    }
    if (block_size && block_size != t.block_size) {
        fprintf(stderr, "xdcachesim: --block-size %llu: the trace records %u-byte blocks; allowed: %u (or leave it out)\n",
                (unsigned long long)block_size, t.block_size, t.block_size);
        return 2;
    }
    uint64_t blocks = cache_size / t.block_size;
    if (!blocks || blocks > UINT32_MAX) {
        fprintf(stderr, "xdcachesim: --cache-size %llu: holds %llu blocks of %u bytes; allowed: 1 to %u blocks\n",
                (unsigned long long)cache_size, (unsigned long long)blocks, t.block_size, UINT32_MAX);
        return 2;
    }
    struct xd_sim_trace sim = {.ids = t.ids, .ops = t.ops, .n = t.n, .nids = (uint32_t)t.map.used};
    struct xd_sim_result lru, s3fifo, lfu, min;
    if (xd_sim_policy(&sim, XD_CP_LRU, (uint32_t)blocks, &lru) ||
        xd_sim_policy(&sim, XD_CP_S3FIFO, (uint32_t)blocks, &s3fifo) ||
        xd_sim_lfu(&sim, (uint32_t)blocks, &lfu) ||
        xd_sim_min(&sim, (uint32_t)blocks, &min)) {
        fprintf(stderr, "xdcachesim: %s: out of memory replaying it\n", path);
        return 1;
    }
    print_result("lru", (uint32_t)blocks, t.block_size, &lru);
    print_result("s3fifo", (uint32_t)blocks, t.block_size, &s3fifo);
    print_result("perfect-lfu", (uint32_t)blocks, t.block_size, &lfu);
    print_result("min", (uint32_t)blocks, t.block_size, &min);
    return 0;
}
