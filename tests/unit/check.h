/* check.h - the few macros every unit test uses: count failures, print each
 * with its line, exit 0 (pass), 1 (fail) or 77 (skip) as automake does. */
#ifndef XD_CHECK_H
#define XD_CHECK_H

#include <errno.h>
#include <linux/io_uring.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* Why this machine refuses io_uring, or NULL: the kernel.io_uring_disabled
 * sysctl, a seccomp filter (a container's default profile), a kernel
 * without it. xdevice then refuses async=io_uring in one line, which is
 * right, so tests skip their io_uring cases, saying so (check_skip_io_uring),
 * and run the rest. */
static inline const char *check_io_uring_refused(void)
{
    static int probed;
    static const char *why;
    if (probed++)
        return why;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    int fd = (int)syscall(__NR_io_uring_setup, 1, &p);
    if (fd >= 0)
        close(fd);
    else if (errno == EPERM || errno == EACCES)
        why = "io_uring is refused here (kernel.io_uring_disabled, or a seccomp filter)";
    else if (errno == ENOSYS)
        why = "this kernel has no io_uring";
    return why;
}

/* True, with one "skip:" line naming what, when io_uring cannot run here. */
static inline bool check_skip_io_uring(const char *what)
{
    const char *why = check_io_uring_refused();
    if (why)
        fprintf(stderr, "skip: %s under io_uring: %s\n", what, why);
    return why != NULL;
}

/* Whether async mode `async` can run here (skips io_uring, saying so). */
static inline bool check_mode_runs(const char *async, const char *what)
{
    return strcmp(async, "io_uring") || !check_skip_io_uring(what);
}

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
