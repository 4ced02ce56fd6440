/* mem.c - allocate or exit (see mem.h for why). */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xr_mem_oom(void)
{
    fputs("xdreport: out of memory\n", stderr);
    exit(2);
}

static void *oom(void)
{
    xr_mem_oom();
}

void *xr_mem_alloc(size_t size)
{
    void *p = calloc(1, size ? size : 1);
    return p ? p : oom();
}

void *xr_mem_realloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    return p ? p : oom();
}

char *xr_mem_strdup(const char *s)
{
    return s ? xr_mem_strndup(s, strlen(s)) : NULL;
}

/* At most n bytes of s, as strndup: a cap longer than the string (slug_of
 * cuts every job name to 120) must not read past its end. */
char *xr_mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xr_mem_alloc(len + 1);

    memcpy(p, s, len);
    return p;
}

char *xr_mem_printf(const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    if (vasprintf(&p, fmt, ap) < 0)
        p = oom();
    va_end(ap);
    return p;
}

void *xr_mem_push(void *arr, size_t *n, size_t size)
{
    void **pp = arr;
    size_t k = *n;
    char *elem;

    /* full when k is 0, 8, 16, 32...: grow to twice that */
    if (k == 0 || (k >= 8 && (k & (k - 1)) == 0))
        *pp = xr_mem_realloc(*pp, (k ? 2 * k : 8) * size);
    elem = (char *)*pp + k * size;
    memset(elem, 0, size);
    *n = k + 1;
    return elem;
}
