/* check.h - the few macros every unit test uses: count failures, print each
 * with its line, exit 0 (pass), 1 (fail) or 77 (skip) as automake does. */
#ifndef XD_CHECK_H
#define XD_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdevice.h"

static int check_failures;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                   \
        }                                                                       \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            check_failures++;                                                   \
        }                                                                       \
    } while (0)

#define SKIP(...)                                                               \
    do {                                                                        \
        fprintf(stderr, "skip: " __VA_ARGS__);                                  \
        fputc('\n', stderr);                                                    \
        exit(77);                                                               \
    } while (0)

static inline int check_result(void)
{
    return check_failures ? 1 : 0;
}

/* A number in layer's object ("cache", "sparse", ...) of the device's
 * xd_stats_json, e.g. layer_stat(dev, "cache", "hits"); -1 when absent. */
static inline long long layer_stat(struct xd_dev *dev, const char *layer, const char *key)
{
    char *json = xd_stats_json(dev), obj[64], pat[96];
    snprintf(obj, sizeof(obj), "\"%s\":{", layer);
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *in = json ? strstr(json, obj) : NULL;
    const char *at = in ? strstr(in, pat) : NULL;
    long long v = at ? strtoll(at + strlen(pat), NULL, 10) : -1;
    free(json);
    return v;
}

/* A device from kv, a NULL-terminated list of key, value pairs whose
 * values say they came from origin ("test", "file.ini:3"), with queue
 * entries: 0 and *dev set, or the -errno with the reason in err. */
static inline int check_open_dev(struct xd_dev **dev, const char *const *kv, const char *origin,
                                 unsigned queue, char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? 0 : -ENOMEM;
    *dev = NULL;
    for (; !rc && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], origin, err, errlen);
    if (!rc)
        rc = xd_open(dev, cfg, queue, err, errlen);
    xd_config_free(cfg);
    return rc;
}

#endif
