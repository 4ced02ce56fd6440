/* config.c - parse, validate and dump the configuration, all driven by XD_SCHEMA.
 *
 * Every value, whether it comes from an INI line or an fio option, goes
 * through config_parse_value, so both faces accept and refuse exactly the
 * same things with the same message.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileutil.h"
#include "json.h"
#include "xd_internal.h"

#define XD_INFO(sec, key, type, def, min, max, allowed, flags, types, help) \
    {#sec, #key, XD_T_##type, def, (double)(min), (double)(max), allowed, flags, types, help},
const struct xd_key_info xd_keys[XD_KEY_COUNT] = {XD_SCHEMA(XD_INFO)};
#undef XD_INFO

#define XD_OFFSET(sec, key, type, def, min, max, allowed, flags, types, help) offsetof(struct xd_config, key),
static const size_t key_offset[XD_KEY_COUNT] = {XD_SCHEMA(XD_OFFSET)};
#undef XD_OFFSET

static void *key_field(const struct xd_config *cfg, int key)
{
    return (char *)cfg + key_offset[key];
}

/* The message is one line whatever it quotes: a control byte in a path or
 * name (a newline, an ESC that recolours the terminal) is written as \xHH,
 * as xd_escape writes values. */
void xd_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xd_verrf(err, errlen, fmt, ap);
    va_end(ap);
}

static size_t utf8_printable(const unsigned char *s, size_t n);

/* A byte of UTF-8 is kept only inside a valid, printable sequence: a C1
 * control (NEL), a line or paragraph separator or a bidirectional
 * override starts a line, or reorders it, for some readers (Python's
 * splitlines, a terminal), as a newline does for all. */
void xd_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    char raw[4 * XD_ERRLEN];
    if (!err || !errlen)
        return;
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
    size_t at = 0;
    for (size_t i = 0; i < len && at + 1 < errlen;) {
        const unsigned char *p = (const unsigned char *)raw + i;
        size_t keep = *p >= 0x80 ? utf8_printable(p, len - i) : (*p >= 0x20 && *p != 0x7f);
        if (keep && at + keep < errlen) {
            memcpy(err + at, p, keep);
            at += keep;
            i += keep;
        } else if (!keep && at + 4 < errlen) {
            snprintf(err + at, errlen - at, "\\x%02x", *p);
            at += 4;
            i++;
        } else {
            break;
        }
    }
    err[at] = '\0';
}

/* --- escaping ---------------------------------------------------------------
 * Values reach messages from files and command lines; a control byte or a
 * broken UTF-8 sequence printed raw can garble or forge a terminal line. */

/* Bytes in the valid, printable UTF-8 sequence at s (at most n), or 0. */
static size_t utf8_printable(const unsigned char *s, size_t n)
{
    size_t need = s[0] >= 0xC2 && s[0] <= 0xDF ? 2
                : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!need || need > n)
        return 0;
    for (size_t i = 1; i < need; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (s[0] == 0xC2 && s[1] < 0xA0)
        return 0; /* C1 controls */
    if (s[0] == 0xE2 && ((s[1] == 0x80 && s[2] >= 0xA8 && s[2] <= 0xAE) ||
                         (s[1] == 0x81 && s[2] >= 0xA6 && s[2] <= 0xA9)))
        return 0; /* line separators and bidirectional overrides */
    return need;
}

const char *xd_escape_n(const char *s, size_t n, char *buf, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    if (!len)
        return buf;
    for (size_t i = 0; i < n;) {
        char piece[8];
        size_t plen = utf8_printable(u + i, n - i), step = plen ? plen : 1;
        if (plen)
            memcpy(piece, u + i, plen);
        else if (u[i] == '\\')
            plen = (size_t)snprintf(piece, sizeof(piece), "\\\\");
        else if (u[i] >= 0x20 && u[i] < 0x7f)
            piece[plen++] = (char)u[i];
        else
            plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", u[i]);
        /* keep room for "..." unless this is the last piece */
        if (o + plen + (i + step < n ? 3 : 0) >= len) {
            if (o + 3 < len)
                memcpy(buf + o, "...", 3), o += 3;
            break;
        }
        memcpy(buf + o, piece, plen);
        o += plen;
        i += step;
    }
    buf[o] = 0;
    return buf;
}

const char *xd_escape(const char *s, char *buf, size_t len)
{
    return xd_escape_n(s ? s : "", s ? strlen(s) : 0, buf, len);
}

int xd_key_lookup(const char *name)
{
    for (int i = 0; i < XD_KEY_COUNT; i++)
        if (!strcmp(xd_keys[i].name, name))
            return i;
    return -1;
}

bool xd_key_applies(enum xd_key key, int storage_type)
{
    unsigned types = xd_keys[key].types;
    return types == XD_ANY || (types & (1u << storage_type));
}

unsigned xd_config_key_count(void) { return XD_KEY_COUNT; }

const char *xd_config_key_name(unsigned i) { return i < XD_KEY_COUNT ? xd_keys[i].name : NULL; }

#define XD_DESC(sec, key, type, def, min, max, allowed, flags, types, help) \
    {#key, #sec, XD_T_##type, def, allowed, help},
static const struct xd_key_desc key_descs[XD_KEY_COUNT] = {XD_SCHEMA(XD_DESC)};
#undef XD_DESC

const struct xd_key_desc *xd_config_key_desc(unsigned i)
{
    return i < XD_KEY_COUNT ? &key_descs[i] : NULL;
}

const char *xd_config_origin(const struct xd_config *cfg, const char *key)
{
    int k = key ? xd_key_lookup(key) : -1;
    return k < 0 ? NULL : cfg->origin[k];
}

/* The n-th name of an "a|b|c" list, copied into a static-per-thread buffer. */
const char *xd_enum_name(enum xd_key key, int value)
{
    static __thread char name[64];
    const char *p = xd_keys[key].allowed;
    for (int i = 0; p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (i == value) {
            snprintf(name, sizeof(name), "%.*s", (int)n, p);
            return name;
        }
        p = bar ? bar + 1 : NULL;
    }
    return "?";
}

static int enum_index(enum xd_key key, const char *value)
{
    const char *p = xd_keys[key].allowed;
    size_t vlen = strlen(value);
    for (int i = 0; p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vlen && !strncasecmp(p, value, n))
            return i;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* Levenshtein distance, bounded to short key names. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[64];
    if (lb >= 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            unsigned best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *xd_key_suggest(const char *name)
{
    const char *best = NULL;
    unsigned best_d = ~0u;
    for (int i = 0; i < XD_KEY_COUNT; i++) {
        unsigned d = edit_distance(name, xd_keys[i].name);
        /* a key that contains the typed text is a better hint than distance */
        if (strstr(xd_keys[i].name, name) && strlen(name) >= 4)
            d = d < 3 ? d : 3;
        if (d < best_d) {
            best_d = d;
            best = xd_keys[i].name;
        }
    }
    return best;
}

/* "what is allowed" for a key, for messages and help. */
static void allowed_text(int key, char *buf, size_t len)
{
    const struct xd_key_info *k = &xd_keys[key];
    switch (k->type) {
    case XD_T_BOOL:
        snprintf(buf, len, "true or false");
        break;
    case XD_T_ENUM:
        snprintf(buf, len, "one of %s", k->allowed);
        break;
    case XD_T_INT:
        snprintf(buf, len, "an integer from %.0f to %.0f", k->min, k->max);
        break;
    case XD_T_SIZE:
        snprintf(buf, len, "a size from %.0f to %.0f bytes, with an optional k/m/g/t suffix", k->min,
                 k->max);
        break;
    case XD_T_MODE:
        snprintf(buf, len, "an octal mode from 0 to 07777");
        break;
    case XD_T_FLOAT:
        snprintf(buf, len, "a number from %g to %g", k->min, k->max);
        break;
    case XD_T_STR:
        snprintf(buf, len, "any text");
        break;
    }
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (unsigned i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_int(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return -EINVAL;
    *out = n;
    return 0;
}

/* Sizes take binary suffixes: k, m, g, t (optionally followed by "b" or "ib"). */
int xd_parse_size(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*v))
        return -EINVAL;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno)
        return -EINVAL;
    int shift = 0;
    switch (tolower((unsigned char)*end)) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    case '\0': break;
    default: return -EINVAL;
    }
    if (shift) {
        end++;
        if (!strcasecmp(end, "b") || !strcasecmp(end, "ib"))
            end += strlen(end);
    }
    if (*end || n > (unsigned long long)INT64_MAX >> shift)
        return -EINVAL;
    *out = (int64_t)(n << shift);
    return 0;
}

static int parse_mode(const char *v, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 8);
    if (errno || end == v || *end || n > 07777)
        return -EINVAL;
    *out = (unsigned)n;
    return 0;
}

static int parse_float(const char *v, double *out)
{
    char *end;
    if (v[strspn(v, "0123456789.eE+-")]) /* strtod takes hex too: 0x10 read as 16 */
        return -EINVAL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d))
        return -EINVAL;
    *out = d;
    return 0;
}

/* Parse value for key into *field (typed as the schema says); -EINVAL with
 * a message if it does not parse or is out of range. */
static int config_parse_value(int key, const char *value, void *field, const char *origin,
                              char *err, size_t errlen)
{
    const struct xd_key_info *k = &xd_keys[key];
    char allowed[160];
    int64_t n = 0;
    double d = 0;
    int rc = 0;

    switch (k->type) {
    case XD_T_STR: {
        char *copy = strdup(value);
        if (!copy)
            return -ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case XD_T_BOOL:
        rc = parse_bool(value, (bool *)field);
        break;
    case XD_T_ENUM: {
        int idx = enum_index(key, value);
        if (idx < 0)
            rc = -EINVAL;
        else
            *(int *)field = idx;
        break;
    }
    case XD_T_MODE:
        rc = parse_mode(value, (unsigned *)field);
        break;
    case XD_T_INT:
    case XD_T_SIZE:
        rc = k->type == XD_T_INT ? parse_int(value, &n) : xd_parse_size(value, &n);
        if (!rc && (n < k->min || n > k->max))
            rc = -ERANGE;
        if (!rc)
            *(int64_t *)field = n;
        break;
    case XD_T_FLOAT:
        rc = parse_float(value, &d);
        if (!rc && (d < k->min || d > k->max))
            rc = -ERANGE;
        if (!rc)
            *(double *)field = d;
        break;
    }
    if (rc) {
        char shown[XD_ESCAPE_LEN];
        allowed_text(key, allowed, sizeof(allowed));
        xd_errf(err, errlen, "%s: %s=%s: %s; allowed: %s", origin, k->name,
                xd_escape(value, shown, sizeof(shown)),
                rc == -ERANGE ? "out of range" : "not a valid value", allowed);
        return -EINVAL;
    }
    return 0;
}

static int power_of_two_refused(int key, int64_t v, const char *origin, char *err, size_t errlen)
{
    if (!(v & (v - 1)))
        return 0;
    xd_errf(err, errlen, "%s: %s=%" PRId64 ": not a power of two; allowed: %s", origin,
            xd_keys[key].name, v,
            key == XD_KEY_compress_chunk_size ? "4k, 8k, ... 4m"
            : key == XD_KEY_tier_extent_size ? "4k, 8k, ... 1g"
            : key == XD_KEY_io_alignment ? "512, 1k, 2k, 4k, ... 64k"
            : key == XD_KEY_sector_size ? "0 (ask the device) or 512, 1024, ... 65536"
            : key == XD_KEY_cache_block_size || key == XD_KEY_checksum_block_size ? "512, 1k, 2k, ... 1m"
                                              : "512, 1k, 2k, ... 64m");
    return -EINVAL;
}

int xd_config_check_power_of_two(const struct xd_config *cfg, int key, char *err, size_t errlen)
{
    return power_of_two_refused(key, *(const int64_t *)key_field(cfg, key),
                                xd_config_key_origin(cfg, key), err, errlen);
}

/* What one key's value alone must be beyond its range, checked as it is
 * set (a fio option when fio parses the job, before any job runs; an INI
 * line with its file:line), not when a device opens. */
static int config_check_alone(int key, const struct xd_config *cfg, const char *origin,
                              char *err, size_t errlen)
{
    static const int powers_of_two[] = {XD_KEY_io_alignment,        XD_KEY_hole_detection_size,
                                        XD_KEY_compress_chunk_size, XD_KEY_cache_block_size,
                                        XD_KEY_checksum_block_size, XD_KEY_tier_extent_size,
                                        XD_KEY_sector_size};
    int64_t v = xd_keys[key].type == XD_T_SIZE || xd_keys[key].type == XD_T_INT
                    ? *(const int64_t *)key_field(cfg, key) : 0;
    for (size_t i = 0; i < sizeof(powers_of_two) / sizeof(powers_of_two[0]); i++)
        if (key == powers_of_two[i])
            return power_of_two_refused(key, v, origin, err, errlen);
    long page = sysconf(_SC_PAGESIZE);
    if (key == XD_KEY_mmap_size && page > 0 && v % page) {
        xd_errf(err, errlen, "%s: mmap_size=%" PRId64 ": not a multiple of the page size; allowed: a multiple of %ld such as 64k or 64m",
                origin, v, page);
        return -EINVAL;
    }
    return 0;
}

/* Keys whose feature is not built keep their default; anything else is refused
 * so that a config never silently asks for something that does not happen. */
static int config_check_pending(int key, const char *value, const char *origin, char *err,
                                size_t errlen)
{
    const struct xd_key_info *k = &xd_keys[key];
    struct xd_config probe_new = {0}, probe_def = {0};
    void *fnew = key_field(&probe_new, key), *fdef = key_field(&probe_def, key);
    int same;

    if (config_parse_value(key, value, fnew, origin, err, errlen) ||
        config_parse_value(key, k->def, fdef, origin, err, errlen))
        return -EINVAL;
    if (k->type == XD_T_STR) {
        same = !strcmp(*(char **)fnew, *(char **)fdef);
        free(*(char **)fnew);
        free(*(char **)fdef);
    } else {
        same = !memcmp(fnew, fdef, k->type == XD_T_BOOL ? sizeof(bool)
                                   : k->type == XD_T_ENUM ? sizeof(int)
                                   : k->type == XD_T_MODE ? sizeof(unsigned)
                                                          : sizeof(int64_t));
    }
    if (!same) {
        char shown[XD_ESCAPE_LEN];
        xd_errf(err, errlen, "%s: %s=%s: this feature is not built yet; allowed: only the default %s",
                origin, k->name, xd_escape(value, shown, sizeof(shown)),
                k->def[0] ? k->def : "(empty)");
        return -EINVAL;
    }
    return 0;
}

/* A newline in a value would make lines of its own when the config is
 * saved (xd_config_save refuses it then); refused as it is set instead. */
static bool value_has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return true;
    return false;
}

int xd_config_set(struct xd_config *cfg, const char *key, const char *value, const char *origin,
                  char *err, size_t errlen)
{
    if (!origin)
        origin = "caller"; /* as xd_config_override takes a NULL origin */
    int k = xd_key_lookup(key);
    if (k < 0) {
        char shown[XD_ESCAPE_LEN];
        xd_errf(err, errlen, "%s: unknown key '%s'; did you mean '%s'?",
                origin, xd_escape(key, shown, sizeof(shown)), xd_key_suggest(key));
        return -EINVAL;
    }
    if (!*value && xd_keys[k].type != XD_T_STR) {
        char allowed[160];
        allowed_text(k, allowed, sizeof(allowed));
        xd_errf(err, errlen, "%s: %s has an empty value; allowed: %s", origin, key, allowed);
        return -EINVAL;
    }
    if (xd_keys[k].type == XD_T_STR && value_has_control(value)) { /* others fail to parse */
        char shown[XD_ESCAPE_LEN];
        xd_errf(err, errlen, "%s: %s=%s: holds a control character, which no INI file can keep; allowed: printable characters",
                origin, key, xd_escape(value, shown, sizeof(shown)));
        return -EINVAL;
    }
    if ((xd_keys[k].flags & XD_K_PENDING) && config_check_pending(k, value, origin, err, errlen))
        return -EINVAL;
    int rc = config_parse_value(k, value, key_field(cfg, k), origin, err, errlen);
    if (!rc)
        rc = config_check_alone(k, cfg, origin, err, errlen);
    if (rc)
        return rc;
    char *o = strdup(origin);
    if (!o)
        return -ENOMEM;
    free(cfg->origin[k]);
    cfg->origin[k] = o;
    return 0;
}

struct xd_config *xd_config_new(void)
{
    struct xd_config *cfg = calloc(1, sizeof(*cfg));
    char err[XD_ERRLEN];
    if (!cfg)
        return NULL;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        /* the schema's defaults are valid by construction (a unit test checks) */
        if (config_parse_value(k, xd_keys[k].def, key_field(cfg, k), "default", err, sizeof(err))) {
            xd_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

void xd_config_free(struct xd_config *cfg)
{
    if (!cfg)
        return;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if (xd_keys[k].type == XD_T_STR)
            free(*(char **)key_field(cfg, k));
        free(cfg->origin[k]);
    }
    free(cfg);
}

struct xd_config *xd_config_dup(const struct xd_config *src)
{
    struct xd_config *cfg = malloc(sizeof(*cfg));
    if (!cfg)
        return NULL;
    memcpy(cfg, src, sizeof(*cfg));
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        char **s = key_field(cfg, k);
        if (xd_keys[k].type == XD_T_STR)
            *s = strdup(*s);
        cfg->origin[k] = src->origin[k] ? strdup(src->origin[k]) : NULL;
    }
    return cfg;
}

static size_t key_size(int key)
{
    switch (xd_keys[key].type) {
    case XD_T_BOOL: return sizeof(bool);
    case XD_T_ENUM: return sizeof(int);
    case XD_T_MODE: return sizeof(unsigned);
    case XD_T_FLOAT: return sizeof(double);
    case XD_T_STR: return sizeof(char *);
    default: return sizeof(int64_t);
    }
}

bool xd_config_key_equal(const struct xd_config *a, const struct xd_config *b, int key)
{
    const void *fa = key_field(a, key), *fb = key_field(b, key);
    if (xd_keys[key].type == XD_T_STR)
        return !strcmp(*(char *const *)fa, *(char *const *)fb);
    return !memcmp(fa, fb, key_size(key));
}

int xd_config_copy_key(struct xd_config *dst, const struct xd_config *src, int key)
{
    char *origin = src->origin[key] ? strdup(src->origin[key]) : NULL;
    void *fd = key_field(dst, key);
    const void *fs = key_field(src, key);
    if (src->origin[key] && !origin)
        return -ENOMEM;
    if (xd_keys[key].type == XD_T_STR) {
        char *s = strdup(*(char *const *)fs);
        if (!s) {
            free(origin);
            return -ENOMEM;
        }
        free(*(char **)fd);
        *(char **)fd = s;
    } else {
        memcpy(fd, fs, key_size(key));
    }
    free(dst->origin[key]);
    dst->origin[key] = origin;
    return 0;
}

const char *xd_config_get(const struct xd_config *cfg, const char *name)
{
    static __thread char text[64];
    int k = xd_key_lookup(name);
    if (k < 0)
        return NULL;
    void *f = key_field(cfg, k);
    switch (xd_keys[k].type) {
    case XD_T_STR: return *(char **)f;
    case XD_T_BOOL: return *(bool *)f ? "true" : "false";
    case XD_T_ENUM: return xd_enum_name(k, *(int *)f);
    case XD_T_MODE: snprintf(text, sizeof(text), "%04o", *(unsigned *)f); break;
    case XD_T_INT:
    case XD_T_SIZE: snprintf(text, sizeof(text), "%" PRId64, *(int64_t *)f); break;
    case XD_T_FLOAT: snprintf(text, sizeof(text), "%g", *(double *)f); break;
    }
    return text;
}

/* --- INI loading ----------------------------------------------------------
 * A small parser of our own rather than libinih: Debian's libinih is built
 * with a 200-byte line buffer and hands the rest of a longer line to the
 * handler as a new line, so a long comment ending in "storage_type =
 * compressed" set the type; it also stops a value at a NUL byte and allows
 * a section twice. Here a line is as long as it is, a NUL byte is an error,
 * and so is a repeated section or key. The syntax is libinih's: `[section]`,
 * `key = value` (or `key: value`), `;` or `#` starting a comment line, and
 * ` ;` starting a comment after a value. */

#define XD_INI_MAX_BYTES (1 << 20) /* a config is a few hundred bytes */

struct ini_ctx {
    struct xd_config *cfg;
    const char *path;
    int line;
    char section[64];            /* "" before the first [section] */
    int section_line[16];        /* where each known section started */
    int seen_line[XD_KEY_COUNT]; /* where each key was set, to refuse repeats */
    char *err;
    size_t errlen;
};

/* The sections the schema uses, in schema order. */
static int ini_section_index(const char *name, char *list, size_t listlen)
{
    const char *seen[16];
    int n = 0, found = -1;
    if (list)
        list[0] = 0;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        int i = 0;
        while (i < n && strcmp(seen[i], xd_keys[k].section))
            i++;
        if (i < n || n == 16)
            continue;
        seen[n++] = xd_keys[k].section;
        if (!strcmp(name, xd_keys[k].section))
            found = i;
        if (list) {
            size_t used = strlen(list);
            snprintf(list + used, listlen - used, "%s[%s]", used ? ", " : "", xd_keys[k].section);
        }
    }
    return found;
}

static char *ini_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = 0;
    return s;
}

/* Cut an inline comment: ';' at the start or after whitespace. */
static void ini_cut_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == ';' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = 0;
            return;
        }
}

static int ini_fail(struct ini_ctx *ctx, const char *fmt, const char *arg, const char *allowed)
{
    char what[XD_ESCAPE_LEN], msg[XD_ERRLEN];
    snprintf(msg, sizeof(msg), fmt, xd_escape(arg, what, sizeof(what)));
    xd_errf(ctx->err, ctx->errlen, "%s:%d: %s; allowed: %s", ctx->path, ctx->line, msg, allowed);
    return -EINVAL;
}

static int ini_on_section(struct ini_ctx *ctx, char *s)
{
    char list[300];
    char *close = strchr(s, ']');
    if (!close)
        return ini_fail(ctx, "\"%s\" has no closing ]", s, "[section]");
    *close = 0;
    char *rest = ini_trim(close + 1), *name = ini_trim(s + 1);
    if (*rest && *rest != ';' && *rest != '#')
        return ini_fail(ctx, "text after [section]: \"%s\"", rest, "a comment only");
    int i = ini_section_index(name, list, sizeof(list));
    if (i < 0)
        return ini_fail(ctx, "unknown section [%s]", name, list);
    if (ctx->section_line[i]) {
        char allowed[64];
        snprintf(allowed, sizeof(allowed), "once (first at line %d)", ctx->section_line[i]);
        return ini_fail(ctx, "section [%s] appears twice", name, allowed);
    }
    ctx->section_line[i] = ctx->line;
    snprintf(ctx->section, sizeof(ctx->section), "%s", name);
    return 0;
}

static int ini_on_key(struct ini_ctx *ctx, char *s)
{
    char origin[300], allowed[64];
    size_t split = strcspn(s, "=:");
    if (!s[split] || !split)
        return ini_fail(ctx, "\"%s\" is not a [section] or key = value line", s,
                        "[section], key = value, or a ; or # comment");
    s[split] = 0;
    char *name = ini_trim(s), *value = s + split + 1;
    ini_cut_comment(value);
    value = ini_trim(value);
    snprintf(origin, sizeof(origin), "%s:%d", ctx->path, ctx->line);
    int k = xd_key_lookup(name);
    if (k >= 0 && strcmp(ctx->section, xd_keys[k].section)) {
        snprintf(allowed, sizeof(allowed), "under [%s]", xd_keys[k].section);
        if (!ctx->section[0])
            return ini_fail(ctx, "key %s comes before any [section]", name, allowed);
        xd_errf(ctx->err, ctx->errlen, "%s: key %s belongs in section [%s], not [%s]", origin, name,
                xd_keys[k].section, ctx->section);
        return -EINVAL;
    }
    if (k >= 0 && ctx->seen_line[k]) {
        xd_errf(ctx->err, ctx->errlen, "%s: key %s is set twice (first at line %d); allowed: once",
                origin, name, ctx->seen_line[k]);
        return -EINVAL;
    }
    int rc = xd_config_set(ctx->cfg, name, value, origin, ctx->err, ctx->errlen);
    if (!rc && k >= 0)
        ctx->seen_line[k] = ctx->line;
    return rc;
}

/* One physical line, without its newline; len counts NUL bytes too. */
static int ini_on_line(struct ini_ctx *ctx, char *line, size_t len)
{
    if (memchr(line, 0, len)) {
        char shown[XD_ESCAPE_LEN];
        xd_errf(ctx->err, ctx->errlen, "%s:%d: \"%s\" holds a NUL byte; allowed: text without NUL bytes",
                ctx->path, ctx->line, xd_escape_n(line, len, shown, sizeof(shown)));
        return -EINVAL;
    }
    if (ctx->line == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) /* a UTF-8 byte order mark */
        line += 3;
    char *s = ini_trim(line);
    if (!*s || *s == ';' || *s == '#')
        return 0;
    if (*s == '[')
        return ini_on_section(ctx, s);
    return ini_on_key(ctx, s);
}

/* The whole file, NUL-terminated; refuses what is not a regular file. */
static int ini_read_all(const char *path, int oflags, const char *shown, char **text, size_t *len,
                        char *err, size_t errlen)
{
    struct stat st;
    int fd = xd_open_input(path, oflags); /* a FIFO: refused below, not waited on */
    if (fd < 0) {
        int e = errno;
        xd_errf(err, errlen, "%s: cannot read the config file: %s", shown, strerror(e));
        return -e;
    }
    /* a directory opens fine and reads as nothing: refuse it, and other
     * non-files, rather than run on defaults */
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > XD_INI_MAX_BYTES) {
        bool big = S_ISREG(st.st_mode);
        close(fd);
        xd_errf(err, errlen, big ? "%s: %lld bytes; allowed: an INI file of up to 1 MiB"
                                 : "%s: not a regular file; allowed: an INI file",
                shown, (long long)st.st_size);
        return -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size + 1) : 0;
    int e = errno;
    close(fd);
    if (!buf || n < 0 || n > st.st_size) {
        free(buf);
        xd_errf(err, errlen, "%s: %s", shown,
                !buf ? "out of memory" : n < 0 ? strerror(e) : "the file grew while being read");
        return !buf ? -ENOMEM : -EIO;
    }
    buf[n] = 0;
    *text = buf;
    *len = (size_t)n;
    return 0;
}

/* oflags: 0, or O_NOFOLLOW (xd_config_load_nofollow). */
static int config_load(struct xd_config *cfg, const char *path, int oflags, char *err,
                       size_t errlen)
{
    char shown[XD_ESCAPE_LEN]; /* the path as messages and origins show it */
    struct ini_ctx ctx = {.cfg = cfg, .path = xd_escape(path, shown, sizeof(shown)), .err = err,
                          .errlen = errlen};
    char *text = NULL;
    size_t len = 0;
    int rc = ini_read_all(path, oflags, ctx.path, &text, &len, err, errlen);
    for (size_t at = 0; !rc && at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        text[end] = 0;
        ctx.line++;
        rc = ini_on_line(&ctx, text + at, end - at);
        at = end + 1;
    }
    free(text);
    return rc;
}

int xd_config_load(struct xd_config *cfg, const char *path, char *err, size_t errlen)
{
    return config_load(cfg, path, 0, err, errlen);
}

int xd_config_load_nofollow(struct xd_config *cfg, const char *path, char *err, size_t errlen)
{
    return config_load(cfg, path, O_NOFOLLOW, err, errlen);
}

/* --- cross-key checks ---------------------------------------------------- */

const char *xd_config_key_origin(const struct xd_config *cfg, int key)
{
    return cfg->origin[key] ? cfg->origin[key] : "default";
}
#define origin_of xd_config_key_origin

int xd_config_conflict(const struct xd_config *cfg, int a, int b, const char *why, char *err,
                       size_t errlen)
{
    char first[64]; /* xd_config_get's buffer is reused by the second call */
    snprintf(first, sizeof(first), "%s", xd_config_get(cfg, xd_keys[a].name));
    xd_errf(err, errlen, "%s=%s (%s) conflicts with %s=%s (%s): %s", xd_keys[a].name, first,
            origin_of(cfg, a), xd_keys[b].name, xd_config_get(cfg, xd_keys[b].name),
            origin_of(cfg, b), why);
    return -EINVAL;
}

/* compression_level's range depends on the codec; snappy has no levels. */
static int check_compression_level(const struct xd_config *cfg, char *err, size_t errlen)
{
    static const struct { int max; const char *allowed; } levels[] = {
        [XD_CODEC_LZ4] = {12, "1-12 for lz4 (4 and above use lz4hc)"},
        [XD_CODEC_ZSTD] = {22, "1-22 for zstd"},
        [XD_CODEC_SNAPPY] = {1, "only 1: snappy has no levels"},
        [XD_CODEC_GZIP] = {9, "1-9 for gzip"},
        [XD_CODEC_BROTLI] = {11, "1-11 for brotli"},
    };
    int codec = cfg->compression_type;
    if (cfg->compression_level <= levels[codec].max)
        return 0;
    xd_errf(err, errlen, "%s: compression_level=%" PRId64 " with compression_type=%s: out of range; allowed: %s",
            origin_of(cfg, XD_KEY_compression_level), cfg->compression_level,
            xd_enum_name(XD_KEY_compression_type, codec), levels[codec].allowed);
    return -EINVAL;
}

static int check_cache(const struct xd_config *cfg, char *err, size_t errlen)
{
    if (cfg->enable_write_cache && !cfg->enable_read_cache)
        return xd_config_conflict(cfg, XD_KEY_enable_write_cache, XD_KEY_enable_read_cache, "write-back keeps dirty blocks in the cache; set enable_read_cache=true", err, errlen);
    if (cfg->use_sync_writes && cfg->enable_write_cache)
        return xd_config_conflict(cfg, XD_KEY_use_sync_writes, XD_KEY_enable_write_cache, "write-back completes writes in the cache, before the file has them; set enable_write_cache=false", err, errlen);
    if (cfg->enable_read_cache && cfg->cache_size < 16 * cfg->cache_block_size)
        return xd_config_conflict(cfg, XD_KEY_cache_size, XD_KEY_cache_block_size, "the cache needs room for at least 16 blocks", err, errlen);
    return 0;
}

/* The decoded-chunk cache holds whole chunks: one smaller than a chunk
 * could never hold anything, which is surely not what was meant. */
static int check_compress_cache(const struct xd_config *cfg, char *err, size_t errlen)
{
    int64_t size = cfg->compress_cache_size, chunk = cfg->compress_chunk_size;
    if (!size || size >= chunk)
        return 0;
    xd_errf(err, errlen, "%s: compress_cache_size=%" PRId64 ": smaller than one chunk (compress_chunk_size=%" PRId64 "); allowed: 0 (no cache) or %" PRId64 " to 64g",
            origin_of(cfg, XD_KEY_compress_cache_size), size, chunk, chunk);
    return -EINVAL;
}

/* The checksum layer covers the data as the caller sees it: a file, a
 * device, or the hybrid type's logical data (one layer above the tiers,
 * whose inner chains go without: xd_tier_inner_config). The compressed
 * type checks every chunk with its own crc32c already. */
static int check_checksums(const struct xd_config *cfg, const struct xd_type *type, char *err,
                           size_t errlen)
{
    if (cfg->enable_checksums && (type->flags & XD_TYPE_COMPRESS))
        return xd_config_conflict(cfg, XD_KEY_enable_checksums, XD_KEY_storage_type, "the compressed type checks every chunk with its own crc32c; allowed with regular, direct, mmap, tmpfs, block, sparse and hybrid", err, errlen);
    return 0;
}

static int check_checkpoints(const struct xd_config *cfg, char *err, size_t errlen)
{
    if (!cfg->enable_checkpoints || cfg->checkpoint_directory[0])
        return 0;
    xd_errf(err, errlen, "%s: enable_checkpoints=true needs checkpoint_directory; allowed: a directory path",
            origin_of(cfg, XD_KEY_enable_checkpoints));
    return -EINVAL;
}

/* The type turns key k on whatever the config says (xd_type.sets). */
static bool key_set_by_type(const struct xd_config *cfg, int k)
{
    const int *sets = xd_type_of(cfg)->sets;
    for (; sets && *sets >= 0; sets++)
        if (*sets == k)
            return true;
    return false;
}

/* Does cfg's storage type read key k? The hybrid type reads its tiers'
 * keys too (cold_storage_type=compressed reads the compressed type's). */
static bool key_read(const struct xd_config *cfg, int k)
{
    if (xd_key_applies(k, cfg->storage_type))
        return true;
    if (strcmp(xd_enum_name(XD_KEY_storage_type, cfg->storage_type), "hybrid"))
        return false;
    int tiers[] = {XD_KEY_hot_storage_type, XD_KEY_cold_storage_type};
    for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
        const char *tier = xd_enum_name(tiers[i], *(int *)key_field(cfg, tiers[i]));
        int t = enum_index(XD_KEY_storage_type, tier);
        if (t >= 0 && xd_key_applies(k, t))
            return true;
    }
    return false;
}

/* The keys that only some types take, by what the type entry says it can
 * do; the allowed list in each message comes from the type table. */
static int check_type_keys(const struct xd_config *cfg, const struct xd_type *type, char *err,
                           size_t errlen)
{
    char names[128], why[256];
    /* A key the type turns on whatever the config says (xd_type.sets), set
     * false in so many words, would be overridden without one. */
    for (const int *k = type->sets; k && *k >= 0; k++)
        if (xd_keys[*k].type == XD_T_BOOL && cfg->origin[*k] && !*(const bool *)key_field(cfg, *k)) {
            snprintf(why, sizeof(why), "the %s type always has %s on; allowed: true, or leave it unset",
                     type->name, xd_keys[*k].name);
            return xd_config_conflict(cfg, *k, XD_KEY_storage_type, why, err, errlen);
        }
    if (cfg->use_mmap && !(type->flags & XD_TYPE_MMAP_IO))
        return xd_config_conflict(cfg, XD_KEY_use_mmap, XD_KEY_storage_type, "mmap I/O is the mmap storage type; set storage_type=mmap", err, errlen);
    if (cfg->use_direct_io && !(type->flags & XD_TYPE_DIRECT_IO)) {
        xd_type_names_with(XD_TYPE_DIRECT_IO, names, sizeof(names));
        snprintf(why, sizeof(why), "this type cannot bypass the page cache; allowed with %s", names);
        return xd_config_conflict(cfg, XD_KEY_use_direct_io, XD_KEY_storage_type, why, err, errlen);
    }
    if (cfg->enable_sparse && !(type->flags & XD_TYPE_HOLES)) {
        xd_type_names_with(XD_TYPE_HOLES, names, sizeof(names));
        snprintf(why, sizeof(why), "holes are punched by the sparse layer over files; allowed with %s", names);
        return xd_config_conflict(cfg, XD_KEY_enable_sparse, XD_KEY_storage_type, why, err, errlen);
    }
    if (cfg->enable_compression && cfg->origin[XD_KEY_enable_compression] &&
        !key_read(cfg, XD_KEY_enable_compression))
        return xd_config_conflict(cfg, XD_KEY_enable_compression, XD_KEY_storage_type, "compression needs the container format; set storage_type=compressed", err, errlen);
    return 0;
}

/* The fault and retry layers: keys that would do nothing are refused. (On
 * the hybrid type they go over the tier layer, once: its inner chains never
 * get the recovery layers, layers/tier_type.c.) */
static int check_fault_retry(const struct xd_config *cfg, char *err, size_t errlen)
{
    if (cfg->fault_corrupt && cfg->fault_ops == 1)
        return xd_config_conflict(cfg, XD_KEY_fault_corrupt, XD_KEY_fault_ops, "corruption acts on reads; allowed: fault_ops=read or both", err, errlen);
    if (cfg->fault_drop_writes && cfg->fault_ops == 0)
        return xd_config_conflict(cfg, XD_KEY_fault_drop_writes, XD_KEY_fault_ops, "dropping acts on writes; allowed: fault_ops=write or both", err, errlen);
    return 0;
}

#define XD_MIRROR_MAX_DIRS 8 /* redundancy_factor's most, less the caller's copy */

static bool mirror_dir_seen(const struct stat *seen, int64_t n, const struct stat *st)
{
    for (int64_t i = 0; i < n && i < XD_MIRROR_MAX_DIRS; i++)
        if (seen[i].st_dev == st->st_dev && seen[i].st_ino == st->st_ino)
            return true;
    return false;
}

/* The mirror layer's keys: copies are plain files of a type that keeps the
 * data at the caller's path, one existing directory per extra copy. */
static int check_mirror(const struct xd_config *cfg, const struct xd_type *type, char *err,
                        size_t errlen)
{
    if (!cfg->enable_redundancy) {
        if (cfg->redundancy_factor > 1)
            return xd_config_conflict(cfg, XD_KEY_redundancy_factor, XD_KEY_enable_redundancy, "copies are kept only with enable_redundancy=true", err, errlen);
        if (cfg->mirror_directories[0]) /* else no copy is made, without a word */
            return xd_config_conflict(cfg, XD_KEY_mirror_directories, XD_KEY_enable_redundancy, "copies are kept only with enable_redundancy=true", err, errlen);
        return 0;
    }
    if (!(type->config_caps & XD_CFG_PLAIN_FILE)) {
        char names[128] = "";
        size_t used = 0;
        for (int t = 0; t < XD_TYPE_COUNT && used < sizeof(names); t++) {
            struct xd_config probe = {.storage_type = t};
            const struct xd_type *other = xd_type_of(&probe);
            if (other->config_caps & XD_CFG_PLAIN_FILE)
                used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                         used ? ", " : "", other->name);
        }
        char why[256];
        snprintf(why, sizeof(why), "copies are plain files beside the caller's; allowed with %s", names);
        return xd_config_conflict(cfg, XD_KEY_enable_redundancy, XD_KEY_storage_type, why, err, errlen);
    }
    const char *list = cfg->mirror_directories;
    int64_t want = cfg->redundancy_factor - 1, have = 0;
    struct stat seen[XD_MIRROR_MAX_DIRS]; /* two names of one directory would be one copy */
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char dir[4096];
        struct stat st;
        snprintf(dir, sizeof(dir), "%.*s", (int)len, p);
        const char *bad = !len                ? "an empty name"
                          : stat(dir, &st)    ? strerror(errno)
                          : !S_ISDIR(st.st_mode) ? "not a directory"
                          : mirror_dir_seen(seen, have, &st) ? "named twice (the same directory holds one copy)"
                                              : NULL;
        if (bad) {
            xd_errf(err, errlen, "%s: mirror_directories=%s: \"%s\": %s; allowed: existing directories, comma-separated",
                    origin_of(cfg, XD_KEY_mirror_directories), list, dir, bad);
            return -EINVAL;
        }
        if (have < XD_MIRROR_MAX_DIRS)
            seen[have] = st;
        have++;
        p += len + (p[len] == ',');
    }
    if (have != want) {
        xd_errf(err, errlen, "%s: mirror_directories=%s: %" PRId64 " director%s for redundancy_factor=%" PRId64 "; allowed: exactly %" PRId64 " (one per copy beyond the first), comma-separated",
                origin_of(cfg, XD_KEY_mirror_directories), list, have, have == 1 ? "y" : "ies",
                cfg->redundancy_factor, want);
        return -EINVAL;
    }
    return 0;
}

/* Keys of a layer that only a switch builds: off (false, or 0 for a
 * number such as max_retries), nothing reads them. */
static const struct {
    enum xd_key key, on;
} key_switch[] = {
    {XD_KEY_checksum_block_size, XD_KEY_enable_checksums},
    {XD_KEY_checksum_directory, XD_KEY_enable_checksums},
    {XD_KEY_checkpoint_interval_sec, XD_KEY_enable_checkpoints},
    {XD_KEY_checkpoint_directory, XD_KEY_enable_checkpoints},
    {XD_KEY_checkpoint_keep, XD_KEY_enable_checkpoints},
    {XD_KEY_cache_size, XD_KEY_enable_read_cache},
    {XD_KEY_cache_ttl, XD_KEY_enable_read_cache},
    {XD_KEY_cache_block_size, XD_KEY_enable_read_cache},
    {XD_KEY_cache_policy, XD_KEY_enable_read_cache},
    {XD_KEY_backup_interval_sec, XD_KEY_backup_to_disk},
    {XD_KEY_health_check_interval_sec, XD_KEY_enable_health_check},
    {XD_KEY_fault_seed, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_ops, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_every, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_probability, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_errno, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_persistent, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_corrupt, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_drop_writes, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_offset, XD_KEY_enable_fault_injection},
    {XD_KEY_fault_length, XD_KEY_enable_fault_injection},
    {XD_KEY_retry_delay_ms, XD_KEY_max_retries},
    {XD_KEY_exponential_backoff, XD_KEY_max_retries},
};

static bool switch_on(const struct xd_config *cfg, enum xd_key on)
{
    if (xd_keys[on].type == XD_T_INT)
        return *(const int64_t *)key_field(cfg, on) != 0;
    return *(const bool *)key_field(cfg, on) || key_set_by_type(cfg, on);
}

int xd_config_reads(const struct xd_config *cfg, const char *key)
{
    int k = key ? xd_key_lookup(key) : -1;
    if (k < 0 || !key_read(cfg, k))
        return 0;
    for (size_t i = 0; i < sizeof(key_switch) / sizeof(key_switch[0]); i++)
        if ((int)key_switch[i].key == k)
            return switch_on(cfg, key_switch[i].on);
    return 1;
}

int xd_config_check(const struct xd_config *cfg, char *err, size_t errlen)
{
    const struct xd_type *type = xd_type_of(cfg);
    if (!cfg->use_aio && cfg->async != XD_ASYNC_SYNC)
        return xd_config_conflict(cfg, XD_KEY_async, XD_KEY_use_aio, "asynchronous I/O needs use_aio=true", err, errlen);
    if (cfg->io_alignment & (cfg->io_alignment - 1)) {
        xd_errf(err, errlen, "%s: io_alignment=%" PRId64 ": not a power of two; allowed: 512, 1k, 2k, 4k, ... 64k",
                origin_of(cfg, XD_KEY_io_alignment), cfg->io_alignment);
        return -EINVAL;
    }
    /* the type's own checks first: they say it in the type's terms */
    int rc = type->check ? type->check(cfg, err, errlen) : 0;
    if (rc || (rc = check_type_keys(cfg, type, err, errlen)))
        return rc;
    rc = xd_config_check_power_of_two(cfg, XD_KEY_hole_detection_size, err, errlen);
    if (!rc)
        rc = xd_config_check_power_of_two(cfg, XD_KEY_compress_chunk_size, err, errlen);
    if (!rc)
        rc = xd_config_check_power_of_two(cfg, XD_KEY_cache_block_size, err, errlen);
    if (!rc)
        rc = xd_config_check_power_of_two(cfg, XD_KEY_checksum_block_size, err, errlen);
    if (!rc)
        rc = check_cache(cfg, err, errlen);
    if (!rc)
        rc = check_compress_cache(cfg, err, errlen);
    if (!rc)
        rc = check_checksums(cfg, type, err, errlen);
    if (!rc)
        rc = check_compression_level(cfg, err, errlen);
    if (!rc)
        rc = check_fault_retry(cfg, err, errlen);
    if (!rc)
        rc = check_mirror(cfg, type, err, errlen);
    if (!rc)
        rc = check_checkpoints(cfg, err, errlen);
    if (rc)
        return rc;
    if (cfg->sector_size & (cfg->sector_size - 1)) {
        xd_errf(err, errlen, "%s: sector_size=%" PRId64 ": not a power of two; allowed: 0 (ask the device) or 512, 1024, ... 65536",
                origin_of(cfg, XD_KEY_sector_size), cfg->sector_size);
        return -EINVAL;
    }
    return 0;
}

/* --- dumps --------------------------------------------------------------- */

static void json_put_key(struct xd_json *j, const struct xd_config *cfg, int k)
{
    void *f = key_field(cfg, k);
    const char *name = xd_keys[k].name;
    switch (xd_keys[k].type) {
    case XD_T_STR: xd_json_string(j, name, *(char **)f); break;
    case XD_T_BOOL: xd_json_bool(j, name, *(bool *)f || key_set_by_type(cfg, k)); break;
    case XD_T_ENUM: xd_json_string(j, name, xd_enum_name(k, *(int *)f)); break;
    case XD_T_MODE: xd_json_string(j, name, xd_config_get(cfg, name)); break;
    case XD_T_INT:
    case XD_T_SIZE: xd_json_int(j, name, *(int64_t *)f); break;
    case XD_T_FLOAT: xd_json_double(j, name, *(double *)f); break;
    }
}

char *xd_config_json(const struct xd_config *cfg)
{
    struct xd_json j;
    xd_json_init(&j);
    xd_json_object_begin(&j, NULL);
    for (int k = 0; k < XD_KEY_COUNT; k++)
        json_put_key(&j, cfg, k);
    xd_json_object_end(&j);
    return xd_json_finish(&j);
}

const char *xd_size_text(int64_t bytes, char *buf, size_t len)
{
    static const char units[] = "tgmk";
    for (int i = 0; i < 4 && bytes; i++) {
        int64_t unit = (int64_t)1 << (10 * (4 - i));
        if (bytes % unit == 0) {
            snprintf(buf, len, "%" PRId64 "%c", bytes / unit, units[i]);
            return buf;
        }
    }
    snprintf(buf, len, "%" PRId64, bytes);
    return buf;
}

/* A key's value as an INI file says it: sizes in the units the schema's
 * defaults use (64m, not 67108864), the rest as xd_config_get gives it. */
static const char *ini_value(const struct xd_config *cfg, int k, char *buf, size_t len)
{
    const char *v = xd_config_get(cfg, xd_keys[k].name);
    int64_t bytes;
    if (xd_keys[k].type == XD_T_SIZE && v && xd_parse_size(v, &bytes) == 0)
        return xd_size_text(bytes, buf, len);
    return v;
}

/* every key, or (only_set) those set from somewhere or not at their default */
static char *config_ini(const struct xd_config *cfg, bool only_set)
{
    char *text = NULL;
    size_t len = 0;
    struct xd_config *def = only_set ? xd_config_new() : NULL;
    FILE *out = only_set && !def ? NULL : open_memstream(&text, &len);
    const char *section = "";
    if (!out) {
        xd_config_free(def);
        return NULL;
    }
    if (!only_set)
        fprintf(out, "; keys storage_type=%s does not read are commented out\n",
                xd_enum_name(XD_KEY_storage_type, cfg->storage_type));
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if (only_set && !cfg->origin[k] && xd_config_key_equal(cfg, def, k))
            continue;
        if (strcmp(section, xd_keys[k].section)) {
            section = xd_keys[k].section;
            fprintf(out, "%s[%s]\n", k || !only_set ? "\n" : "", section);
        }
        char size[32];
        /* the full listing loads back as the same configuration: keys of
         * other types as comments (one such as enable_compression=true
         * set on the regular type is refused), keys the type turns on as
         * on */
        const char *value =
            !only_set && key_set_by_type(cfg, k) ? "true" : ini_value(cfg, k, size, sizeof(size));
        fprintf(out, "%s%s = %s\n", only_set || key_read(cfg, k) ? "" : "; ", xd_keys[k].name,
                value);
    }
    fclose(out);
    xd_config_free(def);
    return text;
}

char *xd_config_ini(const struct xd_config *cfg) { return config_ini(cfg, false); }

char *xd_config_ini_set_keys(const struct xd_config *cfg) { return config_ini(cfg, true); }
