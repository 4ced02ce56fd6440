/* warmstart.c - the first candidates after the start config, from rules of
 * thumb read off the job and the first trial: random access wants a larger
 * cache, sequential access readahead, slow writes async I/O, poorly
 * compressing data a lower level or no compression, low IOPS a deeper queue.
 * A rule only fires when the space holds the key it turns, and its label
 * names the changes it made, not every change it might have made (on a
 * space without cache keys the random-access rule only turns readahead
 * off, and a label promising a larger cache would misread the trial).
 */
#include <stdio.h>
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
    snprintf(out[n].rule, sizeof(out[n].rule), "%s", rule);
    out[n].p = *p;
    return n + 1;
}

/* "what -> a, b" of the changes made (non-NULL), into buf; 0 when none was. */
static int label(char *buf, size_t len, const char *what, const char *const *made, unsigned n)
{
    int k = snprintf(buf, len, "%s ->", what), any = 0;
    for (unsigned i = 0; i < n; i++)
        if (made[i] && k >= 0 && (size_t)k < len) {
            k += snprintf(buf + k, len - (size_t)k, "%s %s", any ? "," : "", made[i]);
            any = 1;
        }
    return any;
}

/* Random access: the read cache on and four times larger, readahead off
 * (it only wastes reads here); labelled with what of it the space allowed. */
static unsigned random_access_rule(const struct xt_space *s, const struct xt_point *start,
                                   struct xt_rule_pick *out, unsigned n, unsigned max)
{
    struct xt_point p = *start;
    char rule[96];
    const char *made[3];
    made[0] = turn_value(s, &p, "enable_read_cache", "true") ? "read cache on" : NULL;
    made[1] = turn_by(s, &p, "cache_size", 0, 2) ? "larger cache" : NULL; /* four times: not all memory */
    made[2] = turn_value(s, &p, "read_ahead_kb", "0") ? "readahead off" : NULL;
    int changed = label(rule, sizeof(rule), "random access", made, 3);
    return add(out, n, max, rule, &p, changed);
}

unsigned xt_warmstart(const struct xt_space *s, const struct xt_job *job,
                      const struct xt_point *start, const struct xt_figures *first,
                      const struct xt_goal *g, struct xt_rule_pick *out, unsigned max)
{
    unsigned n = 0;
    struct xt_point p;
    int c;
    if (job->random_access)
        n = random_access_rule(s, start, out, n, max);
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
        int off = turn_value(s, &p, "enable_compression", "false");
        c = off || turn(s, &p, "compression_level", 0);
        n = add(out, n, max, off ? "poor compression ratio -> compression off"
                                 : "poor compression ratio -> lowest compression level", &p, c);
    }
    int low_iops = first && (g->iops > 0 ? first->iops < g->iops : job->iodepth > 1);
    if (low_iops) {
        p = *start;
        c = turn_value(s, &p, "async", "io_uring") || turn_value(s, &p, "async", "libaio");
        n = add(out, n, max, "low IOPS -> deeper queue (async I/O)", &p, c);
    }
    return n;
}
