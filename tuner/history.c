/* history.c - xdtune's JSON history: every trial (config, figures, score,
 * failure with fio's error) and every parameter change (time, key, old and
 * new value, measured effect). Rewritten atomically after each event, so a
 * run that is stopped still leaves a whole file behind.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "xdtune.h"

struct xt_history {
    cJSON *root, *info, *trials, *changes;
};

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct xt_history *history_wrap(cJSON *root)
{
    struct xt_history *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->root = root;
    h->info = cJSON_GetObjectItemCaseSensitive(root, "xdtune");
    if (!h->info)
        h->info = cJSON_AddObjectToObject(root, "xdtune");
    h->trials = cJSON_GetObjectItemCaseSensitive(root, "trials");
    if (!h->trials)
        h->trials = cJSON_AddArrayToObject(root, "trials");
    h->changes = cJSON_GetObjectItemCaseSensitive(root, "changes");
    if (!h->changes)
        h->changes = cJSON_AddArrayToObject(root, "changes");
    return h;
}

struct xt_history *xt_history_new(const char *mode, const char *job, const char *config)
{
    struct xt_history *h = history_wrap(cJSON_CreateObject());
    if (!h)
        return NULL;
    cJSON_AddStringToObject(h->info, "version", XD_VERSION);
    cJSON_AddStringToObject(h->info, "mode", mode);
    if (job)
        cJSON_AddStringToObject(h->info, "job", job);
    cJSON_AddStringToObject(h->info, "config", config);
    cJSON_AddNumberToObject(h->info, "started", wall_time());
    return h;
}

/* A history of mode: xdtune's object with that mode, and arrays where the
 * trials and changes go. */
static int history_is(const cJSON *root, const char *mode)
{
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(root, "xdtune");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(info, "mode");
    const cJSON *trials = cJSON_GetObjectItemCaseSensitive(root, "trials");
    const cJSON *changes = cJSON_GetObjectItemCaseSensitive(root, "changes");
    return cJSON_IsObject(info) && cJSON_IsString(m) && strcmp(m->valuestring, mode) == 0 &&
           (!trials || cJSON_IsArray(trials)) && (!changes || cJSON_IsArray(changes));
}

struct xt_history *xt_history_open(const char *path, const char *mode, const char *config,
                                   char *err, size_t errlen)
{
    /* the history is replaced by rename at every write: another user's
     * file at the name (in /tmp) would be removed, and a link there is
     * never written through, so neither is read either */
    if (xt_replace_check(path, err, errlen))
        return NULL;
    char *text = xt_read_file(path, NULL);
    if (!text && errno == ENOENT)
        return xt_history_new(mode, NULL, config);
    if (!text) {
        xd_errf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return NULL;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    /* what is there is the user's: appended to only when it is this
     * history, never replaced by a new one */
    if (!history_is(root, mode)) {
        cJSON_Delete(root);
        xd_errf(err, errlen, "%s: not the history of an xdtune %s; allowed: one it wrote, or a new file", path, mode);
        return NULL;
    }
    struct xt_history *h = history_wrap(root);
    if (!h)
        xd_errf(err, errlen, "%s: out of memory reading it", path);
    return h;
}

void xt_history_set(struct xt_history *h, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(h->info, key);
    cJSON_AddStringToObject(h->info, key, value);
}

void xt_history_set_number(struct xt_history *h, const char *key, double value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(h->info, key);
    cJSON_AddNumberToObject(h->info, key, value);
}

static void add_figures(cJSON *o, const struct xt_figures *f)
{
    cJSON *fig = cJSON_AddObjectToObject(o, "figures");
    cJSON_AddNumberToObject(fig, "iops", f->iops);
    cJSON_AddNumberToObject(fig, "lat_us", f->lat_us);
    cJSON_AddNumberToObject(fig, "p99_us", f->p99_us);
    cJSON_AddNumberToObject(fig, "write_lat_us", f->write_lat_us);
    if (f->cache_hit >= 0)
        cJSON_AddNumberToObject(fig, "cache_hit_ratio", f->cache_hit);
    if (f->compress_ratio >= 0)
        cJSON_AddNumberToObject(fig, "compression_ratio", f->compress_ratio);
    cJSON_AddNumberToObject(fig, "seconds", f->seconds);
}

void xt_history_trial(struct xt_history *h, unsigned n, const char *phase, const char *ini,
                      const struct xt_space *s, const struct xt_point *p,
                      const struct xt_figures *f, double score, double best_objective,
                      const char *error)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "trial", n);
    cJSON_AddNumberToObject(t, "time", wall_time());
    cJSON_AddStringToObject(t, "phase", phase);
    cJSON_AddStringToObject(t, "ini", ini);
    cJSON *cfg = cJSON_AddObjectToObject(t, "config");
    for (unsigned i = 0; i < s->n; i++)
        cJSON_AddStringToObject(cfg, s->dim[i].key, s->dim[i].vals[p->idx[i]]);
    cJSON_AddBoolToObject(t, "failed", error != NULL);
    if (error) {
        cJSON_AddStringToObject(t, "error", error);
    } else {
        add_figures(t, f);
        cJSON_AddNumberToObject(t, "score", score);
    }
    if (isfinite(best_objective))
        cJSON_AddNumberToObject(t, "best_so_far", best_objective);
    cJSON_AddItemToArray(h->trials, t);
}

void xt_history_trial_best(struct xt_history *h, const char *of, unsigned runs)
{
    cJSON *t = cJSON_GetArrayItem(h->trials, cJSON_GetArraySize(h->trials) - 1);
    if (!t)
        return;
    cJSON_AddStringToObject(t, "best_of", of);
    cJSON_AddNumberToObject(t, "best_runs", runs);
}

void xt_history_trial_host(struct xt_history *h, const char *host, const struct xt_figures *norm)
{
    cJSON *t = cJSON_GetArrayItem(h->trials, cJSON_GetArraySize(h->trials) - 1);
    if (!t)
        return;
    cJSON_AddStringToObject(t, "host", host);
    if (norm) { /* the figures above are this host's own; these are comparable across hosts */
        cJSON *n = cJSON_CreateObject();
        add_figures(n, norm);
        cJSON_AddItemToObject(t, "normalised", cJSON_DetachItemFromObject(n, "figures"));
        cJSON_Delete(n);
    }
}

void xt_history_change(struct xt_history *h, unsigned trial, const char *key, const char *old,
                       const char *new_value, const char *metric, double before, double after)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "time", wall_time());
    if (trial)
        cJSON_AddNumberToObject(c, "trial", trial);
    cJSON_AddStringToObject(c, "parameter", key);
    cJSON_AddStringToObject(c, "old", old);
    cJSON_AddStringToObject(c, "new", new_value);
    cJSON *e = cJSON_AddObjectToObject(c, "effect");
    cJSON_AddStringToObject(e, "metric", metric);
    if (isfinite(before))
        cJSON_AddNumberToObject(e, "before", before);
    if (isfinite(after))
        cJSON_AddNumberToObject(e, "after", after);
    if (isfinite(before) && isfinite(after) && before != 0)
        cJSON_AddNumberToObject(e, "delta_pct", 100.0 * (after - before) / fabs(before));
    cJSON_AddItemToArray(h->changes, c);
}

void xt_history_effect(struct xt_history *h, double after, int applied)
{
    cJSON *last = cJSON_GetArrayItem(h->changes, cJSON_GetArraySize(h->changes) - 1);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(last, "effect");
    double before = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "before"));
    if (!e)
        return;
    if (applied >= 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(last, "engine_applied");
        cJSON_AddBoolToObject(last, "engine_applied", applied);
    }
    if (!isfinite(after))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(e, "after");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "delta_pct");
    cJSON_AddNumberToObject(e, "after", after);
    if (isfinite(before) && before != 0)
        cJSON_AddNumberToObject(e, "delta_pct", 100.0 * (after - before) / fabs(before));
}

void xt_history_best(struct xt_history *h, const char *ini, const char *summary, int met,
                     const struct xt_space *s, const struct xt_point *p,
                     const struct xt_figures *median, double objective, double spread_pct,
                     unsigned measurements)
{
    cJSON_DeleteItemFromObjectCaseSensitive(h->root, "best");
    cJSON *b = cJSON_AddObjectToObject(h->root, "best");
    cJSON_AddStringToObject(b, "ini", ini);
    cJSON_AddStringToObject(b, "summary", summary);
    cJSON_AddBoolToObject(b, "targets_met", met);
    cJSON *cfg = cJSON_AddObjectToObject(b, "config");
    for (unsigned i = 0; i < s->n; i++)
        cJSON_AddStringToObject(cfg, s->dim[i].key, s->dim[i].vals[p->idx[i]]);
    add_figures(b, median);
    cJSON_AddNumberToObject(b, "objective", objective);
    cJSON_AddNumberToObject(b, "spread_pct", spread_pct);
    cJSON_AddNumberToObject(b, "measurements", measurements);
}

void xt_history_verdict(struct xt_history *h, const char *kind, const char *text,
                        const struct xt_finalist *fin, unsigned n, unsigned winner)
{
    cJSON *b = cJSON_GetObjectItemCaseSensitive(h->root, "best");
    if (!b)
        return;
    cJSON_AddStringToObject(b, "verdict", kind);
    if (text)
        cJSON_AddStringToObject(b, "verdict_text", text);
    cJSON *list = cJSON_AddArrayToObject(b, "finalists");
    for (unsigned i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "config", fin[i].name);
        cJSON_AddNumberToObject(f, "median", fin[i].median);
        cJSON_AddItemToObject(f, "runs", cJSON_CreateDoubleArray(fin[i].values, (int)fin[i].n));
        if (fin[i].missed && *fin[i].missed) /* why it lost, whatever its runs */
            cJSON_AddStringToObject(f, "misses", fin[i].missed);
        cJSON_AddBoolToObject(f, "winner", i == winner);
        cJSON_AddItemToArray(list, f);
    }
}

int xt_history_write(struct xt_history *h, const char *path, char *err, size_t errlen)
{
    char *text = cJSON_Print(h->root);
    if (!text) {
        xd_errf(err, errlen, "%s: out of memory writing the history", path);
        return -1;
    }
    int rc = xt_write_atomic(path, text, err, errlen);
    free(text);
    return rc;
}

void xt_history_free(struct xt_history *h)
{
    if (!h)
        return;
    cJSON_Delete(h->root);
    free(h);
}
