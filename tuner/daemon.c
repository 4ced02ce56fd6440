/* daemon.c - xdtune daemon: while a long fio job runs, measure each interval
 * (fio's --status-interval documents, the engine's periodic xd_stats) and
 * change one live-safe key of the config at a time, keeping a change only
 * when the measured effect is not worse. The engine reloads the file when it
 * is renamed over, so the job never stops.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xdtune.h"
#include "core/config.h"
#include "../common/fiojson.h"

struct sample {              /* cumulative counters at one point in time */
    double t_ms, ios, hits, lookups, evictions;
    double cached_bytes, capacity_bytes; /* the cache's fill, now */
    int have_fio, have_cache;
    size_t fio_bytes, stats_bytes; /* what the files held, read or not */
    cJSON *config;           /* the engine's effective config, from its records */
};

struct change {              /* the change waiting for its effect */
    int active;
    char key[64], old[64], new_value[64];
    double before;
    int target_driven;       /* made to reach a target: kept while it helps */
};

struct daemon {
    const struct xt_daemon_opts *o;
    struct xt_goal goal;
    struct xt_history *hist;
    struct sample prev;
    struct change pending;
    unsigned next_key;       /* round robin over the live keys */
    int direction[XT_MAX_DIMS];
    double interval;
    unsigned unreadable;     /* cycles in a row whose files held bytes but nothing usable */
};

/* fio's status file holds one JSON document per interval; the last whole one counts. */
static void sample_fio(const char *path, struct sample *s)
{
    char *text = path ? xt_read_file(path, &s->fio_bytes) : NULL;
    cJSON *last = text ? fiojson_last_document(text) : NULL;
    const cJSON *job, *jobs = fiojson_jobs(last);
    cJSON_ArrayForEach(job, jobs) {
        s->ios += fiojson_num(cJSON_GetObjectItemCaseSensitive(job, "read"), "total_ios", 0) +
                  fiojson_num(cJSON_GetObjectItemCaseSensitive(job, "write"), "total_ios", 0) +
                  fiojson_num(fiojson_mixed(job), "total_ios", 0);
        s->have_fio = 1;
    }
    if (s->have_fio)
        s->t_ms = fiojson_num(last, "timestamp_ms", 0);
    cJSON_Delete(last);
    free(text);
}

static void add_cache(const cJSON *layers, struct sample *s)
{
    const cJSON *cache = cJSON_GetObjectItemCaseSensitive(layers, "cache");
    if (cache && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cache, "enabled"))) {
        s->hits += fiojson_num(cache, "hits", 0);
        s->lookups += fiojson_num(cache, "hits", 0) + fiojson_num(cache, "misses", 0);
        s->evictions += fiojson_num(cache, "evictions", 0);
        /* one cache per process: every job's record shows the same fill */
        s->cached_bytes = fmax(s->cached_bytes, fiojson_num(cache, "bytes_cached", 0));
        s->capacity_bytes = fmax(s->capacity_bytes, fiojson_num(cache, "capacity_bytes", 0));
        s->have_cache = 1;
    }
}

/* One record of the engine's periodic stats (xd_stats_interval): cumulative
 * ops and layer figures of one job, and the config it runs with. */
static void add_record(const cJSON *rec, struct sample *s, int use_ops)
{
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(rec, "total"), "ops");
    add_cache(cJSON_GetObjectItemCaseSensitive(rec, "layers"), s);
    if (use_ops) {
        s->ios += fiojson_num(cJSON_GetObjectItemCaseSensitive(ops, "read"), "ops", 0) +
                  fiojson_num(cJSON_GetObjectItemCaseSensitive(ops, "write"), "ops", 0);
        s->t_ms = fmax(s->t_ms, fiojson_num(rec, "time_ms", 0));
        s->have_fio = 1;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(rec, "config");
    if (cfg) {
        cJSON_Delete(s->config);
        s->config = cJSON_Duplicate(cfg, 1);
    }
}

/* --stats: the engine's periodic records (JSON lines, the last per job
 * counts) or its end-of-run document ({"jobs":[...]}). Without fio's status
 * the records' op counts give the IOPS too. */
static void sample_stats(const char *path, struct sample *s)
{
    char *text = path ? xt_read_file(path, &s->stats_bytes) : NULL;
    cJSON *last[64] = { 0 };
    char *names[64] = { 0 };
    unsigned n = 0;
    int use_ops = !s->have_fio;
    const char *p = text, *end = NULL;
    while (p && (p = strchr(p, '{'))) {
        cJSON *doc = cJSON_ParseWithOpts(p, &end, 0);
        if (!doc)
            break;
        p = end;
        const cJSON *job, *jobs = cJSON_GetObjectItemCaseSensitive(doc, "jobs");
        if (jobs) { /* the end-of-run document */
            cJSON_ArrayForEach(job, jobs) add_cache(cJSON_GetObjectItemCaseSensitive(job, "layers"), s);
            cJSON_Delete(doc);
            continue;
        }
        char key[160];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "job");
        snprintf(key, sizeof(key), "%s/%.0f", cJSON_IsString(name) ? name->valuestring : "",
                 fiojson_num(doc, "jobnum", 0));
        unsigned i = 0;
        while (i < n && strcmp(names[i], key))
            i++;
        if (i == n && n < 64)
            names[n++] = strdup(key);
        if (i < 64) {
            cJSON_Delete(last[i]);
            last[i] = doc;
        } else {
            cJSON_Delete(doc);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        add_record(last[i], s, use_ops);
        cJSON_Delete(last[i]);
        free(names[i]);
    }
    free(text);
}

/* Did the engine take the change? Its records carry the config it runs with. */
static int engine_applied(const cJSON *config, const char *key, const char *value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    int64_t bytes; /* a size is written 8m; the records say 8388608 */
    if (cJSON_IsNumber(v))
        return v->valuedouble == (xd_parse_size(value, &bytes) == 0 ? (double)bytes
                                                                    : strtod(value, NULL));
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) == !strcmp(value, "true");
    return cJSON_IsString(v) && !strcmp(v->valuestring, value);
}

/* The interval's IOPS and hit ratio from two cumulative samples; NAN when
 * there is nothing new to measure. */
static void rates(const struct sample *a, const struct sample *b, double *iops, double *hit)
{
    *iops = b->have_fio && a->have_fio && b->t_ms > a->t_ms && b->ios >= a->ios
                ? (b->ios - a->ios) * 1000.0 / (b->t_ms - a->t_ms) : NAN;
    double looks = b->lookups - a->lookups;
    *hit = b->have_cache && looks > 0 ? (b->hits - (a->have_cache ? a->hits : 0)) /
                                            (b->lookups - (a->have_cache ? a->lookups : 0))
                                      : NAN;
}

static double metric_of(const struct daemon *D, double iops, double hit, const char **name)
{
    if (D->goal.cache_hit > 0 && isfinite(hit)) {
        *name = "cache_hit_ratio";
        return hit;
    }
    *name = "iops";
    return iops;
}

/* The next value of a live key: one grid step up or down from cur. */
static int step_value(const struct xd_tunable *t, const char *cur, int dir, char *out, size_t len)
{
    if (t->type == XD_T_ENUM || t->type == XD_T_BOOL)
        return -1;
    int64_t bytes;
    double v = t->type == XD_T_SIZE && xd_parse_size(cur, &bytes) == 0 ? (double)bytes
                                                                        : strtod(cur, NULL);
    double next;
    if (t->log_scale)
        next = dir > 0 ? (v <= 0 ? t->lo > 0 ? t->lo : t->step : v * t->step) : v / t->step;
    else
        next = v + dir * t->step;
    if (t->log_scale && dir < 0 && next < fmax(t->lo, 1))
        next = t->lo;
    if (next > t->hi || next < t->lo || next == v)
        return -1;
    if (t->type == XD_T_SIZE)
        xt_size_text(next, out, len); /* as the schema writes sizes: 16m */
    else
        snprintf(out, len, "%.0f", next);
    return 0;
}

/* Set key to value in the file, atomically; the old value goes to old. */
static int apply(struct daemon *D, struct xd_config *cfg, const char *key, const char *value,
                 char *old, size_t oldlen, char *err, size_t errlen)
{
    const char *cur = xd_config_get(cfg, key);
    const struct xd_tunable *t = xd_tunable_find(key);
    int64_t bytes;
    if (cur && t && t->type == XD_T_SIZE && xd_parse_size(cur, &bytes) == 0)
        xt_size_text((double)bytes, old, oldlen);
    else
        snprintf(old, oldlen, "%s", cur ? cur : "");
    int rc = xd_config_set(cfg, key, value, "xdtune daemon", err, errlen);
    if (!rc)
        rc = xd_config_check(cfg, err, errlen);
    char header[256];
    snprintf(header, sizeof(header), "written by xdtune daemon: %s %s -> %s", key, old, value);
    if (!rc)
        rc = xt_config_save(cfg, D->o->config, header, err, errlen);
    return rc;
}

/* The live keys this config can turn: built, and meaningful for its type. */
static int key_usable(const struct xd_tunable *t, const struct xd_config *cfg)
{
    char err[XD_ERRLEN], next[64];
    const char *cur = xd_config_get(cfg, t->key);
    int k = xd_key_lookup(t->key);
    if (!t->live || t->type == XD_T_ENUM || t->type == XD_T_BOOL || !cur)
        return 0;
    if (k >= 0 && !xd_key_applies(k, cfg->storage_type))
        return 0;
    if (!strcmp(t->key, "cache_size") && strcmp(xd_config_get(cfg, "enable_read_cache"), "true"))
        return 0;
    struct xd_config *probe = xd_config_dup(cfg);
    int ok = probe && (step_value(t, cur, 1, next, sizeof(next)) == 0 ||
                       step_value(t, cur, -1, next, sizeof(next)) == 0) &&
             xd_config_set(probe, t->key, next, "probe", err, sizeof(err)) == 0;
    xd_config_free(probe);
    return ok;
}

/* A cache that evicted nothing in the interval and is not nearly full is
 * still filling: its misses are first reads, which no larger cache avoids.
 * Growing it then only overshoots (a 2 GiB cache for a 256 MiB file). */
static int cache_filling(const struct sample *a, const struct sample *b)
{
    return b->have_cache && a->have_cache && b->evictions == a->evictions &&
           b->cached_bytes < 0.95 * b->capacity_bytes;
}

/* Decide the cycle's change: reach the cache target first, else climb.
 * 1 when the cache is below its target but still filling: wait. */
static int choose(struct daemon *D, const struct xd_config *cfg, double hit, int filling,
                  char *key, char *value, int *target_driven)
{
    const struct xd_tunable *cache = xd_tunable_find("cache_size");
    *target_driven = 0;
    if (D->goal.cache_hit > 0 && isfinite(hit) && hit < D->goal.cache_hit && filling)
        return 1;
    if (D->goal.cache_hit > 0 && isfinite(hit) && hit < D->goal.cache_hit && cache &&
        key_usable(cache, cfg) &&
        step_value(cache, xd_config_get(cfg, "cache_size"), 1, value, 64) == 0) {
        char further[64]; /* far from the target: two steps at once */
        if (hit < 0.9 * D->goal.cache_hit && step_value(cache, value, 1, further, sizeof(further)) == 0)
            strcpy(value, further);
        strcpy(key, "cache_size");
        *target_driven = 1;
        return 0;
    }
    if (D->goal.cache_hit > 0 && isfinite(hit) && hit >= D->goal.cache_hit)
        return -1; /* at the target: leave it be */
    for (unsigned tries = 0; tries < 2 * xd_tunable_count(); tries++) {
        unsigned i = D->next_key++ % xd_tunable_count();
        const struct xd_tunable *t = xd_tunable_get(i);
        if (!key_usable(t, cfg))
            continue;
        int dir = D->direction[i % XT_MAX_DIMS] ? D->direction[i % XT_MAX_DIMS] : 1;
        if (step_value(t, xd_config_get(cfg, t->key), dir, value, 64) &&
            step_value(t, xd_config_get(cfg, t->key), dir = -dir, value, 64))
            continue;
        D->direction[i % XT_MAX_DIMS] = dir;
        strcpy(key, t->key);
        return 0;
    }
    return -1;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* Judge the last change by the interval since it was made; revert it when it
 * hurt (a target-driven change is kept: it is the way to the target). */
static int judge(struct daemon *D, struct xd_config *cfg, double metric, const char *mname,
                 unsigned cycle, char *err, size_t errlen)
{
    struct change *c = &D->pending;
    if (!c->active)
        return 0;
    c->active = 0;
    int applied = -1;
    if (D->prev.config)
        applied = engine_applied(D->prev.config, c->key, c->new_value);
    xt_history_effect(D->hist, metric, applied);
    printf("xdtune: cycle %u: effect of %s %s -> %s: %s %.3f -> %.3f%s\n", cycle, c->key, c->old,
           c->new_value, mname, c->before, metric,
           applied < 0 ? "" : applied ? " (the engine runs it)" : " (the engine has not taken it)");
    if (c->target_driven || !isfinite(metric) || !isfinite(c->before) || metric >= c->before * 0.97)
        return 0;
    char old[64];
    int rc = apply(D, cfg, c->key, c->old, old, sizeof(old), err, errlen);
    if (!rc) {
        xt_history_change(D->hist, 0, c->key, c->new_value, c->old, mname, metric, NAN);
        printf("xdtune: cycle %u: reverted %s to %s (it cost %.1f%%)\n", cycle, c->key, c->old,
               100.0 * (c->before - metric) / fmax(fabs(c->before), 1e-9));
        for (unsigned i = 0; i < xd_tunable_count(); i++)
            if (!strcmp(xd_tunable_get(i)->key, c->key))
                D->direction[i % XT_MAX_DIMS] = -(D->direction[i % XT_MAX_DIMS] ? D->direction[i % XT_MAX_DIMS] : 1);
    }
    return rc;
}

/* Files that hold bytes cycle after cycle but no fio status document
 * and no engine record (another file named, or fio writing terse) read
 * as "nothing new to measure yet" for ever: said once, on stderr, after
 * UNREADABLE_CYCLES such cycles (a status file fio is still starting
 * to write holds a partial document for a cycle or two). */
#define UNREADABLE_CYCLES 3
static void note_unreadable(struct daemon *D, const struct sample *now)
{
    bool unread = !now->have_fio && !now->have_cache && !now->config &&
                  (now->fio_bytes || now->stats_bytes);
    D->unreadable = unread ? D->unreadable + 1 : 0;
    if (D->unreadable != UNREADABLE_CYCLES)
        return;
    const char *path = now->fio_bytes ? D->o->fio_status : D->o->stats;
    char shown[XD_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
    fprintf(stderr, "xdtune: %s: %zu bytes, and no fio status document or xdevice stats record in them after %u cycles; allowed: for --fio-status, fio's --output with --output-format=json and --status-interval; for --stats, the engine's records (xd_stats_interval)\n",
            xd_escape(path, shown, sizeof(shown)),
            now->fio_bytes ? now->fio_bytes : now->stats_bytes, UNREADABLE_CYCLES);
}

static int cycle(struct daemon *D, unsigned n, char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? xd_config_load(cfg, D->o->config, err, errlen) : -ENOMEM;
    if (rc) {
        xd_config_free(cfg);
        return rc;
    }
    struct sample now = { 0 };
    double iops, hit;
    const char *mname;
    sample_fio(D->o->fio_status, &now);
    sample_stats(D->o->stats, &now);
    rates(&D->prev, &now, &iops, &hit);
    double metric = metric_of(D, iops, hit, &mname);
    int filling = cache_filling(&D->prev, &now);
    cJSON_Delete(D->prev.config);
    D->prev = now;
    if (isfinite(metric))
        printf("xdtune: cycle %u: %s %.3f\n", n, mname, metric);
    else
        printf("xdtune: cycle %u: nothing new to measure yet (%s)\n", n,
               D->o->fio_status ? D->o->fio_status : D->o->stats);
    note_unreadable(D, &now);
    rc = judge(D, cfg, metric, mname, n, err, errlen);
    char key[64], value[64], old[64];
    int target_driven;
    int choice = !rc && isfinite(metric) ? choose(D, cfg, hit, filling, key, value, &target_driven) : -1;
    if (choice == 1)
        printf("xdtune: cycle %u: the cache is still filling (%.0f of %.0f MiB, no evictions): "
               "waiting before it grows\n", n, now.cached_bytes / 1048576.0,
               now.capacity_bytes / 1048576.0);
    if (choice == 0) {
        rc = apply(D, cfg, key, value, old, sizeof(old), err, errlen);
        if (!rc) {
            D->pending = (struct change){ .active = 1, .before = metric, .target_driven = target_driven };
            snprintf(D->pending.key, sizeof(D->pending.key), "%s", key);
            snprintf(D->pending.old, sizeof(D->pending.old), "%s", old);
            snprintf(D->pending.new_value, sizeof(D->pending.new_value), "%s", value);
            xt_history_change(D->hist, 0, key, old, value, mname, metric, NAN);
            printf("xdtune: cycle %u: set %s %s -> %s%s\n", n, key, old, value,
                   target_driven ? " (towards the target)" : "");
        }
    }
    xd_config_free(cfg);
    fflush(stdout);
    return rc;
}

/* The history to append to, written once now: a path that cannot take it
 * (no such directory, a link or a directory at the name, another file)
 * is refused before any cycle changes the config, not found after all. */
static int open_history(struct daemon *D, char *err, size_t errlen)
{
    const struct xt_daemon_opts *o = D->o;
    if (!o->history) {
        D->hist = xt_history_new("daemon", NULL, o->config);
        return D->hist ? 0 : -ENOMEM;
    }
    D->hist = xt_history_open(o->history, "daemon", o->config, err, errlen);
    if (!D->hist)
        return -EINVAL;
    return xt_history_write(D->hist, o->history, err, errlen);
}

int xt_daemon(const struct xt_daemon_opts *o)
{
    struct daemon D = { .o = o, .goal = o->goal };
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? xd_config_load(cfg, o->config, err, sizeof(err)) : -ENOMEM;
    if (rc) {
        fprintf(stderr, "xdtune: daemon: %s\n", err);
        xd_config_free(cfg);
        return 1;
    }
    if (strcmp(xd_config_get(cfg, "enable_auto_tuning"), "true")) {
        char shown[XD_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
        fprintf(stderr, "xdtune: daemon: %s: enable_auto_tuning is false; set it to true in "
                "[tuning] to let the daemon rewrite this config\n",
                xd_escape(o->config, shown, sizeof(shown)));
        xd_config_free(cfg);
        return 1;
    }
    /* targets and the interval the config names, unless the command line does */
    if (D.goal.cache_hit <= 0)
        D.goal.cache_hit = strtod(xd_config_get(cfg, "target_cache_hit_ratio"), NULL);
    if (D.goal.iops <= 0)
        D.goal.iops = strtod(xd_config_get(cfg, "target_iops"), NULL);
    D.interval = o->interval > 0 ? o->interval : strtod(xd_config_get(cfg, "tuning_interval_sec"), NULL);
    xd_config_free(cfg);
    if (open_history(&D, err, sizeof(err))) {
        fprintf(stderr, "xdtune: daemon: --history %s\n", err);
        xt_history_free(D.hist);
        return 1;
    }
    sample_fio(o->fio_status, &D.prev);
    sample_stats(o->stats, &D.prev);
    printf("xdtune: daemon tuning %s every %.1f s%s\n", o->config, D.interval,
           D.goal.cache_hit > 0 ? " towards its cache hit target" : "");
    fflush(stdout);
    unsigned idle = 0;
    for (unsigned n = 1; !o->cycles || n <= o->cycles; n++) {
        double before_ms = D.prev.t_ms;
        sleep_s(D.interval);
        rc = cycle(&D, n, err, sizeof(err));
        char herr[XD_ERRLEN];
        if (o->history && xt_history_write(D.hist, o->history, herr, sizeof(herr))) {
            fprintf(stderr, "xdtune: daemon: --history %s; stopping (every change must be recorded)\n", herr);
            rc = -EIO;
            break;
        }
        if (rc) {
            fprintf(stderr, "xdtune: daemon: %s; stopping (the config must stay readable)\n", err);
            break;
        }
        idle = D.prev.t_ms == before_ms ? idle + 1 : 0;
        if (!o->cycles && o->fio_status && idle >= 3) {
            printf("xdtune: daemon: fio wrote no status for 3 intervals; stopping\n");
            break;
        }
    }
    cJSON_Delete(D.prev.config);
    xt_history_free(D.hist);
    return rc ? 1 : 0;
}
