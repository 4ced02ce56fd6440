/* xdcachesim - replay a block access trace (trace=FILE) at a cache size and
 * print the hit ratio of LRU, S3-FIFO (one policy over the whole cache, and
 * split into shards as the cache layer splits it), perfect LFU (every block's accesses
 * counted from the start, in unbounded memory: the frequency learning the
 * layer's sketch approximates) and Belady's MIN (offline: it knows the
 * future), so anyone can see how far the cache layer's policies are from
 * the optimum, and how much of that distance counting alone would close.
 *
 *   xdcachesim TRACE --cache-size N [--block-size B] [--fio-zipf THETA --file-size S]
 *
 * With --fio-zipf, the trace is taken for one fio job's
 * random_distribution=zipf:THETA reads of one file, fio spreading its ranks
 * over S bytes (the job's size= for that file, or the file's size if
 * smaller) in blocks of the trace's block size (fio's bs), and one more
 * line, policy=a0, replays
 * A0: the blocks kept by their true probability, computed from fio's own
 * generator (fiozipf.h), the most any policy that does not see the future
 * can expect on such a run (cachesim.h). The job's random offset is found
 * from the trace's most-read block; a trace whose 16 most likely blocks
 * under fio's zipf:THETA are not read about as often as that makes them
 * (another exponent, file size or bs) is refused.
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
 * where it is in the file), a trace --fio-zipf does not fit, or results it
 * cannot write; 2 for a bad command line. Every failure is one line on
 * stderr.
 */
#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/cachepolicy.h"
#include "../core/fileutil.h"
#include "../core/cachesim.h"
#include "../core/config.h"
#include "../core/fiozipf.h"
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

#define USAGE "usage: xdcachesim TRACE --cache-size N [--block-size B] [--fio-zipf THETA --file-size S]"

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
    FILE *fp = xd_fopen_input(path);
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
    int64_t cache_size, block_size, file_size;
    const char *cache_text, *block_text, *file_text; /* as given, to name a repeat */
    const char *theta_text;
    double theta; /* --fio-zipf */
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

/* --fio-zipf THETA: fio's zipf exponent, above 0 and not 1 (fio refuses 1), given once. */
static int theta_option(const char *value, struct args *a)
{
    char *end;
    if (a->theta_text) {
        char first[XD_ESCAPE_LEN];
        fprintf(stderr, "xdcachesim: --fio-zipf given twice (%s, then %s); allowed: once\n",
                xd_escape(a->theta_text, first, sizeof(first)), shown(value));
        return 2;
    }
    errno = 0;
    a->theta = strtod(value, &end);
    if (errno || end == value || *end || isspace((unsigned char)*value) || !isfinite(a->theta) ||
        a->theta <= 0 || a->theta == 1.0 || a->theta > 100) {
        fprintf(stderr, "xdcachesim: --fio-zipf %s: not a zipf exponent fio takes; allowed: a number above 0 and up to 100, not 1 (as in random_distribution=zipf:1.1)\n",
                shown(value));
        return 2;
    }
    a->theta_text = value;
    return 0;
}

/* 0, -1 for --help, or the exit status of a bad command line (said). */
static int parse_args(int argc, char **argv, struct args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int takes_value = !strcmp(arg, "--cache-size") || !strcmp(arg, "--block-size") ||
                          !strcmp(arg, "--file-size") || !strcmp(arg, "--fio-zipf");
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return -1;
        if (takes_value && i + 1 == argc)
            return bad_usage(strcmp(arg, "--fio-zipf") ? "needs a value (a size such as 64m)"
                                                       : "needs a value (a zipf exponent such as 1.1)",
                             arg);
        if (!strcmp(arg, "--cache-size")) {
            if (size_option(arg, argv[++i], &a->cache_text, &a->cache_size))
                return 2;
        } else if (!strcmp(arg, "--block-size")) {
            if (size_option(arg, argv[++i], &a->block_text, &a->block_size))
                return 2;
        } else if (!strcmp(arg, "--file-size")) {
            if (size_option(arg, argv[++i], &a->file_text, &a->file_size))
                return 2;
        } else if (!strcmp(arg, "--fio-zipf")) {
            if (theta_option(argv[++i], a))
                return 2;
        } else if (arg[0] == '-' && arg[1]) {
            return bad_usage("unknown option; allowed: --cache-size, --block-size, --fio-zipf, --file-size, --help", arg);
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
    if (!a->theta_text != !a->file_text)
        return bad_usage("--fio-zipf and --file-size go together (the run's zipf exponent and its file's size)", NULL);
    return 0;
}

/* --- A0 for a fio zipf run (--fio-zipf) ----------------------------------------- */

/* The ranks whose blocks must be read as often as fio's zipf reads them:
 * a wrong file size moves most of them, a wrong exponent their counts. */
#define A0_CHECK_RANKS 16
/* Below this the most-read block may as well be any block: no offset to find. */
#define A0_MIN_TOP_READS 16

/* Each id's block: 0, or 1 (said) when the trace has more than one file. */
static int a0_blocks(const struct trace *t, const char *path, uint64_t *block_of)
{
    uint64_t file = 0;
    bool any = false;
    for (size_t j = 0; j < t->map.cap; j++) {
        if (!t->map.id[j])
            continue;
        if (any && t->map.file[j] != file) {
            fprintf(stderr, "xdcachesim: %s: --fio-zipf: the trace reads more than one file; allowed: the trace of one fio job's zipf reads of one file\n",
                    shown(path));
            return 1;
        }
        file = t->map.file[j], any = true;
        block_of[t->map.id[j] - 1] = t->map.block[j];
    }
    return 0;
}

/* Is the trace fio's zipf:theta run over nblocks with rand_off? Each of
 * the first A0_CHECK_RANKS ranks' blocks read within six binomial standard
 * deviations, 1% (the model's rounding) and one read of its share: a run
 * passes against itself, and another exponent, file size or bs fails.
 * 0, or 1 (said). */
static int a0_check(const char *path, const struct args *a, uint64_t nblocks, uint64_t rand_off,
                    const double *by_block, const uint32_t *reads_of_block, uint64_t total)
{
    for (uint64_t rank = 1; rank <= A0_CHECK_RANKS && rank <= nblocks; rank++) {
        uint64_t b = xd_fio_zipf_block(rank, rand_off, nblocks);
        double p = by_block[b], want = p * (double)total, got = reads_of_block[b];
        if (fabs(got - want) <= 6 * sqrt(want * (1 - p)) + 0.01 * want + 1)
            continue;
        fprintf(stderr, "xdcachesim: %s: --fio-zipf %s --file-size %s: block %llu, rank %llu of fio's zipf there, has %.0f of the %llu reads where that run would give it about %.0f: not such a run (another exponent, file size or bs), or another job's reads too\n",
                shown(path), a->theta_text, a->file_text, (unsigned long long)b,
                (unsigned long long)rank, got, (unsigned long long)total, want);
        return 1;
    }
    return 0;
}

/* Each id's probability under fio's zipf:theta over nblocks, its random
 * offset taken from the most-read block (rank 1's is rand_off itself):
 * 0, 1 (said) for a trace that is not such a run, -ENOMEM. */
static int a0_probs(const struct trace *t, const char *path, const struct args *a,
                    uint64_t nblocks, const uint64_t *block_of, const uint64_t *reads, double *prob)
{
    uint64_t total = 0, rand_off = 0, most = 0;
    for (uint32_t id = 0; id < t->map.used; id++) {
        if (block_of[id] >= nblocks) {
            fprintf(stderr, "xdcachesim: %s: --file-size %s: the trace has block %llu, past the file's %llu blocks of %u bytes\n",
                    shown(path), a->file_text, (unsigned long long)block_of[id],
                    (unsigned long long)nblocks, t->block_size);
            return 1;
        }
        total += reads[id];
        if (reads[id] > most)
            most = reads[id], rand_off = block_of[id];
    }
    if (most < A0_MIN_TOP_READS) {
        fprintf(stderr, "xdcachesim: %s: --fio-zipf: its most-read block was read %llu times, too few to tell where fio put the ranks; allowed: a run whose most-read block is read at least %d times\n",
                shown(path), (unsigned long long)most, A0_MIN_TOP_READS);
        return 1;
    }
    double *by_block = malloc(nblocks * sizeof(*by_block));
    uint32_t *reads_of_block = calloc(nblocks, sizeof(*reads_of_block));
    int rc = by_block && reads_of_block ? 0 : -ENOMEM;
    if (!rc) {
        (void)xd_fio_zipf_probs(a->theta, nblocks, rand_off, by_block); /* theta and nblocks checked */
        for (uint32_t id = 0; id < t->map.used; id++)
            reads_of_block[block_of[id]] = (uint32_t)reads[id]; /* < 2^32: a trace holds fewer accesses */
        rc = a0_check(path, a, nblocks, rand_off, by_block, reads_of_block, total);
    }
    for (uint32_t id = 0; !rc && id < t->map.used; id++)
        prob[id] = by_block[block_of[id]];
    free(by_block);
    free(reads_of_block);
    return rc;
}

/* Replay A0 on a fio zipf run's trace: 0, 1 (said: the trace is not
 * such a run), 2 (said: --file-size too large), -ENOMEM. */
static int a0_replay(const struct trace *t, const struct xd_sim_trace *sim, const char *path,
                     const struct args *a, uint32_t capacity, struct xd_sim_result *out)
{
    uint64_t nblocks = ((uint64_t)a->file_size + t->block_size - 1) / t->block_size;
    if (nblocks > XD_FIO_ZIPF_MAX_BLOCKS) {
        fprintf(stderr, "xdcachesim: --file-size %s: %llu blocks of %u bytes; allowed: up to %llu blocks\n",
                a->file_text, (unsigned long long)nblocks, t->block_size, XD_FIO_ZIPF_MAX_BLOCKS);
        return 2;
    }
    size_t nids = t->map.used ? t->map.used : 1;
    uint64_t *block_of = malloc(nids * sizeof(*block_of)), *reads = calloc(nids, sizeof(*reads));
    double *prob = malloc(nids * sizeof(*prob));
    int rc = block_of && reads && prob ? a0_blocks(t, path, block_of) : -ENOMEM;
    for (size_t i = 0; !rc && i < t->n; i++)
        reads[t->ids[i]] += t->ops[i] == XD_TRACE_READ;
    if (!rc)
        rc = a0_probs(t, path, a, nblocks, block_of, reads, prob);
    if (!rc)
        rc = xd_sim_a0(sim, prob, capacity, out);
    free(block_of);
    free(reads);
    free(prob);
    return rc;
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
    struct xd_sim_result a0;
    rc = a.theta_text ? a0_replay(&t, &sim, path, &a, (uint32_t)blocks, &a0) : 0;
    if (rc == -ENOMEM || rc == -E2BIG)
        fprintf(stderr, "xdcachesim: %s: out of memory replaying it\n", shown(path));
    if (rc)
        return rc == 2 ? 2 : 1;
    print_result("lru", (uint32_t)blocks, t.block_size, &lru);
    print_result("s3fifo", (uint32_t)blocks, t.block_size, &s3fifo);
    print_result("s3fifo-sharded", (uint32_t)blocks, t.block_size, &sharded);
    print_result("perfect-lfu", (uint32_t)blocks, t.block_size, &lfu);
    if (a.theta_text)
        print_result("a0", (uint32_t)blocks, t.block_size, &a0);
    print_result("min", (uint32_t)blocks, t.block_size, &min);
    return results_written();
}
