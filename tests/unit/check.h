/* check.h - the few macros every unit test uses: count failures, print each
 * with its line, exit 0 (pass), 1 (fail) or 77 (skip) as automake does. */
#ifndef XD_CHECK_H
#define XD_CHECK_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
