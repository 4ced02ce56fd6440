/* json.h - a small append-only JSON writer for stats and config dumps.
 *
 * Writing is infallible from the caller's view: an allocation failure marks
 * the writer failed and xd_json_finish returns NULL.
 */
#ifndef XD_JSON_H
#define XD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XD_JSON_MAX_DEPTH 32

struct xd_json {
    char *buf;
    size_t len, cap;
    bool failed;
    unsigned depth;
    bool first[XD_JSON_MAX_DEPTH]; /* no member written yet at this depth */
};

/* key is NULL for array elements and the top-level value. */
void xd_json_init(struct xd_json *j);
void xd_json_object_begin(struct xd_json *j, const char *key);
void xd_json_object_end(struct xd_json *j);
void xd_json_array_begin(struct xd_json *j, const char *key);
void xd_json_array_end(struct xd_json *j);
void xd_json_string(struct xd_json *j, const char *key, const char *value);
void xd_json_int(struct xd_json *j, const char *key, int64_t value);
void xd_json_uint(struct xd_json *j, const char *key, uint64_t value);
void xd_json_double(struct xd_json *j, const char *key, double value);
void xd_json_bool(struct xd_json *j, const char *key, bool value);
/* Insert already-valid JSON text as a value. */
void xd_json_raw(struct xd_json *j, const char *key, const char *json);
/* The text (caller frees), or NULL if anything failed. */
char *xd_json_finish(struct xd_json *j);

#endif
