/* json.c - append-only JSON writer: no DOM, no parsing, just correct escaping. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xd_json_init(struct xd_json *j)
{
    memset(j, 0, sizeof(*j));
    j->first[0] = true;
}

static void json_reserve(struct xd_json *j, size_t extra)
{
    if (j->failed || j->len + extra + 1 <= j->cap)
        return;
    size_t cap = j->cap ? j->cap : 256;
    while (cap < j->len + extra + 1)
        cap *= 2;
    char *buf = realloc(j->buf, cap);
    if (!buf) {
        j->failed = true;
        return;
    }
    j->buf = buf;
    j->cap = cap;
}

static void json_append(struct xd_json *j, const char *s, size_t n)
{
    json_reserve(j, n);
    if (j->failed)
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void json_printf(struct xd_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void json_printf(struct xd_json *j, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        json_append(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 when p starts none. */
static size_t json_utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* s as a JSON string. A byte that starts no UTF-8 character (a path or
 * job name in another encoding) is written as U+FFFD: written raw, it
 * made the whole document unreadable to every JSON parser. */
static void json_quote(struct xd_json *j, const char *s)
{
    json_append(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            json_append(j, esc, 2);
        } else if (*p < 0x20) {
            json_printf(j, "\\u%04x", *p);
        } else if (*p < 0x80) {
            json_append(j, (const char *)p, 1);
        } else {
            size_t n = json_utf8_len(p);
            if (n)
                json_append(j, (const char *)p, n);
            else
                json_append(j, "\\ufffd", 6);
            p += n ? n - 1 : 0;
        }
    }
    json_append(j, "\"", 1);
}

/* Separator and key before any value. */
static void json_member(struct xd_json *j, const char *key)
{
    if (!j->first[j->depth])
        json_append(j, ",", 1);
    j->first[j->depth] = false;
    if (key) {
        json_quote(j, key);
        json_append(j, ":", 1);
    }
}

static void json_open(struct xd_json *j, const char *key, char bracket)
{
    json_member(j, key);
    json_append(j, &bracket, 1);
    if (j->depth + 1 >= XD_JSON_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    j->first[++j->depth] = true;
}

static void json_close(struct xd_json *j, char bracket)
{
    if (j->depth > 0)
        j->depth--;
    json_append(j, &bracket, 1);
}

void xd_json_object_begin(struct xd_json *j, const char *key) { json_open(j, key, '{'); }
void xd_json_object_end(struct xd_json *j) { json_close(j, '}'); }
void xd_json_array_begin(struct xd_json *j, const char *key) { json_open(j, key, '['); }
void xd_json_array_end(struct xd_json *j) { json_close(j, ']'); }

void xd_json_string(struct xd_json *j, const char *key, const char *value)
{
    json_member(j, key);
    if (value)
        json_quote(j, value);
    else
        json_append(j, "null", 4);
}

void xd_json_int(struct xd_json *j, const char *key, int64_t value)
{
    json_member(j, key);
    json_printf(j, "%" PRId64, value);
}

void xd_json_uint(struct xd_json *j, const char *key, uint64_t value)
{
    json_member(j, key);
    json_printf(j, "%" PRIu64, value);
}

void xd_json_double(struct xd_json *j, const char *key, double value)
{
    json_member(j, key);
    /* 15 digits: a rate such as bw_bytes keeps every byte (six cut
     * 24550648 to 24550600), and 0.1 still prints as 0.1 */
    if (isfinite(value))
        json_printf(j, "%.15g", value);
    else
        json_append(j, "null", 4); /* JSON has no NaN or infinity */
}

void xd_json_bool(struct xd_json *j, const char *key, bool value)
{
    json_member(j, key);
    json_append(j, value ? "true" : "false", value ? 4 : 5);
}

void xd_json_raw(struct xd_json *j, const char *key, const char *json)
{
    json_member(j, key);
    json_append(j, json, strlen(json));
}

char *xd_json_finish(struct xd_json *j)
{
    if (j->failed || !j->buf) {
        free(j->buf);
        j->buf = NULL;
        return NULL;
    }
    char *out = j->buf;
    j->buf = NULL;
    return out;
}
