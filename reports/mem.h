/* mem.h - allocation for xdreport: allocate or exit.
 *
 * xdreport is a command that reads some files and writes a report; when
 * memory runs out there is nothing useful left to do, and unwinding every
 * caller for it would double the code. So these print one line and exit(2).
 */
#ifndef XR_MEM_H
#define XR_MEM_H

#include <stddef.h>

void xr_mem_oom(void) __attribute__((noreturn));  /* "out of memory", exit(2) */
void *xr_mem_alloc(size_t size);                 /* zeroed */
void *xr_mem_realloc(void *p, size_t size);
char *xr_mem_strdup(const char *s);              /* NULL gives NULL */
char *xr_mem_strndup(const char *s, size_t n);      /* at most n bytes of s */
char *xr_mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Append one zeroed element to the array *arr of *n elements of size bytes
 * and return it. The capacity is implied by *n (8, then powers of two), so
 * the arrays of struct xr_set need no capacity field. Dropping the last
 * element again (--*n) is safe: the real capacity never falls below the
 * implied one. */
void *xr_mem_push(void *arr, size_t *n, size_t size);

#endif
