/* tuner_warmstart.c - a warm-start rule's label says what it changed: on a
 * space without cache keys, the random-access rule only turns readahead
 * off, and it was once labelled "random access -> larger cache". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xdtune.h"

static void dim(struct xt_space *s, const char *key, enum xt_kind kind, const char *const *vals,
                unsigned n)
{
    struct xt_dim *d = &s->dim[s->n++];
    snprintf(d->key, sizeof(d->key), "%s", key);
    d->kind = kind;
    d->nvals = n;
    d->live = 1;
    for (unsigned i = 0; i < n; i++)
        d->vals[i] = (char *)vals[i];
}

static const char *const asyncs[] = {"sync", "libaio", "io_uring"};
static const char *const readaheads[] = {"0", "16", "256"};
static const char *const switches[] = {"false", "true"};
static const char *const sizes[] = {"1m", "2m", "4m", "8m", "16m"};

/* The random-access rule's pick, NULL when it made none. */
static const struct xt_rule_pick *random_rule(const struct xt_space *s, const struct xt_point *start,
                                              struct xt_rule_pick *picks)
{
    struct xt_job job = {.random_access = 1, .iodepth = 1};
    struct xt_goal g = {0};
    unsigned n = xt_warmstart(s, &job, start, NULL, &g, picks, 8);
    for (unsigned i = 0; i < n; i++)
        if (strstr(picks[i].rule, "random access"))
            return &picks[i];
    return NULL;
}

static void test_readahead_only(void)
{
    struct xt_space s = {.n = 0};
    dim(&s, "async", XT_CHOICE, asyncs, 3);
    dim(&s, "read_ahead_kb", XT_NUM, readaheads, 3);
    struct xt_point start = {.idx = {0, 1}}; /* sync, 16 */
    struct xt_rule_pick picks[8];
    const struct xt_rule_pick *p = random_rule(&s, &start, picks);
    CHECK(p && p->p.idx[1] == 0 && p->p.idx[0] == 0);
    CHECK_MSG(p && strstr(p->rule, "readahead off") && !strstr(p->rule, "cache"), "%s",
              p ? p->rule : "(no pick)");
}

static void test_cache_and_readahead(void)
{
    struct xt_space s = {.n = 0};
    dim(&s, "enable_read_cache", XT_CHOICE, switches, 2);
    dim(&s, "cache_size", XT_NUM, sizes, 5);
    dim(&s, "read_ahead_kb", XT_NUM, readaheads, 3);
    struct xt_point start = {.idx = {0, 1, 0}}; /* cache off, 2m, readahead already 0 */
    struct xt_rule_pick picks[8];
    const struct xt_rule_pick *p = random_rule(&s, &start, picks);
    CHECK_MSG(p && strstr(p->rule, "read cache on") && strstr(p->rule, "larger cache") &&
                  !strstr(p->rule, "readahead"),
              "%s", p ? p->rule : "(no pick)");
    /* the cache already on and at its largest: only readahead is left to turn */
    start = (struct xt_point){.idx = {1, 4, 2}};
    p = random_rule(&s, &start, picks);
    CHECK_MSG(p && !strstr(p->rule, "cache") && strstr(p->rule, "readahead off"), "%s",
              p ? p->rule : "(no pick)");
}

int main(void)
{
    test_readahead_only();
    test_cache_and_readahead();
    return check_result();
}
