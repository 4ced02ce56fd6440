/* tunable.c - the tuner's search space: XD_TUNABLES (config_schema.h) joined
 * with each key's schema line, built once so callers get stable pointers.
 */
#include <pthread.h>
#include <string.h>

#include "xd_internal.h"

#define XD_SCALE_LIN 0
#define XD_SCALE_LOG 1

struct tunable_row {
    const char *key;
    double lo, hi, step;
    int log_scale;
};

#define XD_TUNE_ROW(key, lo, hi, step, scale) {#key, (double)(lo), (double)(hi), (double)(step), XD_SCALE_##scale},
static const struct tunable_row rows[] = {XD_TUNABLES(XD_TUNE_ROW)};
#undef XD_TUNE_ROW
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* Storage types a search can try: those the type table marks
 * XD_TYPE_SEARCHED (not block: it needs a device; not hybrid: it needs a
 * hot_directory on a tmpfs and its own keys in the search). */
static char storage_type_choices[256];

static struct xd_tunable table[NROWS];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static unsigned count_choices(const char *list)
{
    unsigned n = 1;
    for (const char *p = list; *p; p++)
        n += *p == '|';
    return n;
}

/* Type, choices and flags from the key's schema line. */
static void tunable_fill(struct xd_tunable *t, const struct tunable_row *row)
{
    int k = xd_key_lookup(row->key); /* found: XD_TUNABLES names schema keys */
    unsigned flags = k >= 0 ? xd_keys[k].flags : XD_K_PENDING;
    *t = (struct xd_tunable){.key = row->key, .lo = row->lo, .hi = row->hi, .step = row->step,
                             .log_scale = row->log_scale, .def = ""};
    if (k >= 0) {
        t->type = xd_keys[k].type;
        t->choices = xd_keys[k].allowed;
        t->def = xd_keys[k].def;
    }
    if (k == XD_KEY_storage_type)
        t->choices = storage_type_choices;
    if (t->type == XD_T_BOOL || t->type == XD_T_ENUM) {
        t->lo = 0;
        t->hi = t->type == XD_T_BOOL ? 1 : count_choices(t->choices) - 1;
        t->step = 1;
        t->log_scale = 0;
    }
    if (t->type != XD_T_ENUM)
        t->choices = NULL;
    t->live = !!(flags & XD_K_LIVE);
    t->pending = !!(flags & XD_K_PENDING);
}

static void tunable_build(void)
{
    xd_type_choices_with(XD_TYPE_SEARCHED, storage_type_choices, sizeof(storage_type_choices));
    for (size_t i = 0; i < NROWS; i++)
        tunable_fill(&table[i], &rows[i]);
}

unsigned xd_tunable_count(void) { return NROWS; }

const struct xd_tunable *xd_tunable_get(unsigned i)
{
    pthread_once(&table_once, tunable_build);
    return i < NROWS ? &table[i] : NULL;
}

const struct xd_tunable *xd_tunable_find(const char *key)
{
    pthread_once(&table_once, tunable_build);
    for (size_t i = 0; key && i < NROWS; i++)
        if (!strcmp(table[i].key, key))
            return &table[i];
    return NULL;
}
