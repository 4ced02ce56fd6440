/* config.h - the config struct and key table, generated from config_schema.h. */
#ifndef XD_CONFIG_H
#define XD_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "../xdevice.h"
#include "config_schema.h"

/* enum xd_key_type (XD_T_*) is public: xdevice.h */

/* Key indices: XD_KEY_cache_size, ... */
enum xd_key {
#define XD_KEY_ENUM(sec, key, type, def, min, max, allowed, flags, types, help) XD_KEY_##key,
    XD_SCHEMA(XD_KEY_ENUM)
#undef XD_KEY_ENUM
    XD_KEY_COUNT
};

/* Field types by schema type. ENUM holds the index into its allowed list. */
#define XD_CTYPE_STR   char *
#define XD_CTYPE_BOOL  bool
#define XD_CTYPE_INT   int64_t
#define XD_CTYPE_SIZE  int64_t
#define XD_CTYPE_ENUM  int
#define XD_CTYPE_MODE  unsigned
#define XD_CTYPE_FLOAT double

struct xd_config {
#define XD_KEY_FIELD(sec, key, type, def, min, max, allowed, flags, types, help) XD_CTYPE_##type key;
    XD_SCHEMA(XD_KEY_FIELD)
#undef XD_KEY_FIELD
    /* Where each key's value came from ("default", "file.ini:12", "option
     * xd_KEY"), so later checks can name it. Owned strings. */
    char *origin[XD_KEY_COUNT];
};

struct xd_key_info {
    const char *section;
    const char *name;
    enum xd_key_type type;
    const char *def;
    double min, max;
    const char *allowed;
    unsigned flags;
    unsigned types; /* XD_ANY or XD_ON(TYPE) | ...: see xd_key_applies */
    const char *help;
};

extern const struct xd_key_info xd_keys[XD_KEY_COUNT];

/* Enum values used by code; they follow the order of the allowed lists. */
#define XD_TYPE_ENUM(id, name) XD_TYPE_##id,
enum xd_storage_type { XD_STORAGE_TYPES(XD_TYPE_ENUM) XD_TYPE_COUNT };
enum xd_async_mode { XD_ASYNC_SYNC, XD_ASYNC_LIBAIO, XD_ASYNC_IO_URING };
enum xd_codec_id { XD_CODEC_LZ4, XD_CODEC_ZSTD, XD_CODEC_SNAPPY, XD_CODEC_GZIP, XD_CODEC_BROTLI };

/* Index of a key by name, or -1. */
int xd_key_lookup(const char *name);
/* Whether key means anything to a device of storage_type (enum
 * xd_storage_type): the schema's types column, the one rule for it (xdtune
 * leaves the others out of a search). */
bool xd_key_applies(enum xd_key key, int storage_type);
/* The name of value i of an ENUM key. */
const char *xd_enum_name(enum xd_key key, int value);
/* Where key's value came from ("file:line", "option xd_KEY"), or "default". */
const char *xd_config_key_origin(const struct xd_config *cfg, int key);
/* One line in err: key a's value and origin conflict with key b's: why. -EINVAL. */
int xd_config_conflict(const struct xd_config *cfg, int a, int b, const char *why, char *err,
                       size_t errlen);
/* -EINVAL with one line unless the size key's value is a power of two. */
int xd_config_check_power_of_two(const struct xd_config *cfg, int key, char *err, size_t errlen);
/* As xd_config_ini, but only the keys set from somewhere (a file, an
 * option, xd_config_set) or not at their default: loading it gives the same
 * values and the same keys counted as set, which some checks look at
 * (enable_compression without the compressed type is refused only when set). */
char *xd_config_ini_set_keys(const struct xd_config *cfg);
/* For a config about to be rewritten (xdconfig set): what is at path must
 * be nothing or a regular file of the caller's or root's (xd_replace_check),
 * checked before it is read, so that a symlink planted at the name is never
 * read through (its target's lines would be shown in parse errors) and
 * another user's file is refused before anything is done. 0, or -errno
 * with one line in err. */
int xd_config_save_check(const char *path, char *err, size_t errlen);
/* xd_config_load, never through a symlink at path (-ELOOP): for the file
 * xdconfig set replaces, whose name xd_config_save_check looked at. */
int xd_config_load_nofollow(struct xd_config *cfg, const char *path, char *err, size_t errlen);
/* Whether key holds the same value in a and b. */
bool xd_config_key_equal(const struct xd_config *a, const struct xd_config *b, int key);
/* Copy key's value and origin from src into dst; -ENOMEM leaves dst as it was. */
int xd_config_copy_key(struct xd_config *dst, const struct xd_config *src, int key);
/* The valid key closest to name (edit distance), for "did you mean". */
const char *xd_key_suggest(const char *name);

/* value (n bytes, NUL bytes included) for a message, as xd_escape (public:
 * xdevice.h, with XD_ESCAPE_LEN) does for a string. Returns buf. */
const char *xd_escape_n(const char *value, size_t n, char *buf, size_t len);
/* Format one line into err (bounded, always terminated; control bytes as
 * \xHH). Here, not in xd_internal.h: the tools' err buffers use it too. */
void xd_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* xd_errf for a caller's own variadic helper (the tools' fail()). */
void xd_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A SIZE value ("64m", "4k", "1gib", "4096") in bytes: 0, or -EINVAL. */
int xd_parse_size(const char *v, int64_t *out);
/* bytes as the schema writes sizes: the largest of t, g, m, k that divides
 * exactly ("64m", "1536k", "4097"), what xd_parse_size reads back. Returns buf. */
const char *xd_size_text(int64_t bytes, char *buf, size_t len);

#endif
