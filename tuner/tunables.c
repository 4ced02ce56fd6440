/* tunables.c - the keys xdtune searches by default: the library's tunable
 * table (xd_tunable_*, config_schema.h XD_TUNABLES) seen as xdtune's
 * dimensions, plus the switches that make some of them matter
 * (enable_read_cache turns cache_size on, enable_page_cache).
 *
 * Pending keys are kept here and dropped by space.c, which probes every
 * value through xd_config_set: a key joins the space when its feature does.
 */
#include <pthread.h>
#include <string.h>

#include "xdtune.h"

#define XT_MAX_TUNABLES 64

/* Keys the library's table leaves out but a search needs. */
static const struct xt_tunable extra[] = {
    { "enable_read_cache", XT_CHOICE, 0, 0, 0, 0, "false|true", 0 },
    { "enable_page_cache", XT_CHOICE, 0, 0, 0, 0, "true|false", 0 },
};

static struct xt_tunable table[XT_MAX_TUNABLES];
static unsigned count;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
    for (unsigned i = 0; i < xd_tunable_count() && count < XT_MAX_TUNABLES; i++) {
        const struct xd_tunable *t = xd_tunable_get(i);
        struct xt_tunable *x = &table[count++];
        *x = (struct xt_tunable){ .key = t->key, .lo = t->lo, .hi = t->hi, .step = t->step,
                                  .log_scale = t->log_scale, .live = t->live };
        if (t->type == XD_T_ENUM) {
            x->kind = XT_CHOICE;
            x->choices = t->choices;
        } else if (t->type == XD_T_BOOL) {
            x->kind = XT_CHOICE;
            x->choices = "false|true";
        } else {
            x->kind = XT_NUM;
        }
    }
    for (unsigned i = 0; i < sizeof(extra) / sizeof(extra[0]) && count < XT_MAX_TUNABLES; i++)
        if (!xd_tunable_find(extra[i].key))
            table[count++] = extra[i];
}

unsigned xt_tunable_count(void)
{
    pthread_once(&once, table_build);
    return count;
}

const struct xt_tunable *xt_tunable_get(unsigned i)
{
    return i < xt_tunable_count() ? &table[i] : NULL;
}

const struct xt_tunable *xt_tunable_find(const char *key)
{
    for (unsigned i = 0; i < xt_tunable_count(); i++)
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    return NULL;
}
