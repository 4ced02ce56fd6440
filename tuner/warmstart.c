/* warmstart.c - the first candidates after the start config, from rules of
 * thumb read off the job and the first trial: random access wants a larger
 * cache, sequential access readahead, slow writes async I/O, poorly
 * compressing data a lower level or no compression, low IOPS a deeper queue.
 * A rule only fires when the space holds the key it turns.
 */
#include <string.h>

#include "xdtune.h"

static int dim_of(const struct xt_space *s, const char *key)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->dim[i].key, key) == 0)
            return (int)i;
    return -1;
}

static int value_of(const struct xt_space *s, int d, const char *value)
{
    for (unsigned j = 0; d >= 0 && j < s->dim[d].nvals; j++)
        if (strcmp(s->dim[d].vals[j], value) == 0)
            return (int)j;
    return -1;
}

/* Move dim key of p to value index v, or (up != 0) up steps along its grid
 * from where it is; 0 if the key is not in the space or already there. */
static int turn_by(const struct xt_space *s, struct xt_point *p, const char *key, int v, int up)
{
    int d = dim_of(s, key);
    if (d < 0)
        return 0;
    int want = up ? (int)p->idx[d] + up : v;
    unsigned idx = want < 0 ? 0 : want >= (int)s->dim[d].nvals ? s->dim[d].nvals - 1 : (unsigned)want;
    if (p->idx[d] == idx)
        return 0;
    p->idx[d] = idx;
    return 1;
}

static int turn(const struct xt_space *s, struct xt_point *p, const char *key, int v)
{
    return turn_by(s, p, key, v, 0);
}

static int turn_value(const struct xt_space *s, struct xt_point *p, const char *key,
                      const char *value)
{
    int v = value_of(s, dim_of(s, key), value);
    return v >= 0 && turn(s, p, key, v);
}

static unsigned add(struct xt_rule_pick *out, unsigned n, unsigned max, const char *rule,
                    const struct xt_point *p, int changed)
{
    if (!changed || n >= max)
        return n;
    out[n].rule = rule;
    out[n].p = *p;
    return n + 1;
}

unsigned xt_warmstart(const struct xt_space *s, const struct xt_job *job,
                      const struct xt_point *start, const struct xt_figures *first,
                      const struct xt_goal *g, struct xt_rule_pick *out, unsigned max)
{
    unsigned n = 0;
    struct xt_point p;
    int c;
    if (job->random_access) {
        p = *start;
        c = turn_value(s, &p, "enable_read_cache", "true");
        c |= turn_by(s, &p, "cache_size", 0, 2); /* four times: larger, not all memory */
        c |= turn_value(s, &p, "read_ahead_kb", "0"); /* readahead only wastes reads here */
        n = add(out, n, max, "random access -> larger cache", &p, c);
    }
    if (job->sequential) {
        p = *start;
        n = add(out, n, max, "sequential -> readahead", &p, turn_by(s, &p, "read_ahead_kb", 0, 3));
    }
    if (first && first->write_lat_us > 1000) {
        p = *start;
        c = turn_value(s, &p, "async", "io_uring") || turn_value(s, &p, "async", "libaio");
        n = add(out, n, max, "high write latency -> async I/O", &p, c);
    }
    if (first && first->compress_ratio >= 0 && first->compress_ratio < 1.3) {
        p = *start;
        c = turn_value(s, &p, "enable_compression", "false");
        if (!c)
            c = turn(s, &p, "compression_level", 0);
        n = add(out, n, max, "poor compression ratio -> compression off or a lower level", &p, c);
    }
    int low_iops = first && (g->iops > 0 ? first->iops < g->iops : job->iodepth > 1);
    if (low_iops) {
        p = *start;
        c = turn_value(s, &p, "async", "io_uring") || turn_value(s, &p, "async", "libaio");
        n = add(out, n, max, "low IOPS -> deeper queue (async I/O)", &p, c);
    }
    return n;
}
