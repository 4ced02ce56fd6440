/* results.c - xr_load: read one results file of any kind xdreport knows.
 *
 * The kind comes from the content, not the name, because files get renamed
 * and fio mixes its output: a fio JSON file may open with plain-text notes
 * ("note: both iodepth >= 1 and synchronous I/O engine are selected..."),
 * hold several documents (--status-interval prints one per interval, then
 * the final report) and end with lines an engine printed. xdevice's stats
 * document is JSON with a top key "xdevice". fio's logs are lines of
 * numbers. The parsers of each kind live in fiojson.c, xdstats.c and
 * fiolog.c; this file finds the documents and hands them over.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "../backends/core/fileutil.h"
#include "load.h"
#include "mem.h"
#include "results.h"

const double xr_pct[XR_NPCT] = { 50, 90, 99, 99.9, 99.99, 99.999 };
const char *const xr_pct_name[XR_NPCT] = { "p50", "p90", "p99", "p99.9", "p99.99", "p99.999" };
const char *const xr_ddir_name[XR_NDIR] = { "read", "write", "trim", "mixed" };

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    va_list ap;
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
    int n = snprintf(err, errlen, "xdreport: %s: ", xr_escape(path, shown, sizeof shown));

    if (n < 0 || (size_t)n >= errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
    return -1;
}

static int read_all(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    size_t cap, n = 0;
    ssize_t r;
    int fd = xd_open_input(path, 0);

    if (fd < 0)
        return fail(err, errlen, path, "%s", strerror(errno));
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return fail(err, errlen, path, "is a directory");
    }
    /* the size is a hint only: a log may still be growing under a running fio */
    cap = (st.st_size > 0 ? (size_t)st.st_size : 0) + 4096;
    *buf = xr_mem_alloc(cap + 1);
    while ((r = read(fd, *buf + n, cap - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail(err, errlen, path, "read failed: %s", strerror(errno));
            close(fd);
            free(*buf);
            return -1;
        }
        n += r;
        if (n == cap) {
            cap *= 2;
            *buf = xr_mem_realloc(*buf, cap + 1);
        }
    }
    close(fd);
    (*buf)[n] = '\0';
    /* a byte order mark, as editors on other systems save UTF-8: not part
     * of the text (it hid fio's JSON: "JSON but not fio output") */
    if (n >= 3 && !memcmp(*buf, "\xef\xbb\xbf", 3)) {
        memmove(*buf, *buf + 3, n - 3 + 1);
        n -= 3;
    }
    *len = n;
    return 0;
}

/* Offset of the first line at or after pos whose first non-blank character
 * opens a JSON object, or len when there is none. Everything before it is
 * fio's plain-text chatter. */
static size_t next_doc(const char *buf, size_t len, size_t pos)
{
    while (pos < len) {
        size_t i = pos;

        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r'))
            i++;
        if (i < len && buf[i] == '{')
            return i;
        while (i < len && buf[i] != '\n')
            i++;
        pos = i + 1;
    }
    return len;
}

enum extent { WHOLE, CUT, DEEP };

/* Where the JSON value opening at buf[pos] ends: WHOLE with *end just past
 * it, CUT when the text ends inside it, DEEP with *end at the bracket that
 * opens a level deeper than cJSON reads. Matching brackets outside strings
 * tells a truncated document (fio killed mid-write, a copy cut short) and
 * one nested too deep from a malformed one, which cJSON alone does not, and
 * gives cJSON exactly one document. A mismatched bracket ends the extent
 * there, for cJSON to name as invalid. */
static enum extent json_extent(const char *buf, size_t len, size_t pos, size_t *end)
{
    char open[CJSON_NESTING_LIMIT];
    size_t depth = 0;
    int in_str = 0;

    for (size_t i = pos; i < len; i++) {
        char c = buf[i];

        *end = i + 1;
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (depth == sizeof open) {
                *end = i;
                return DEEP;
            }
            open[depth++] = c;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || open[--depth] != (c == '}' ? '{' : '[') || depth == 0)
                return WHOLE;
        }
    }
    *end = len;
    return CUT;
}

static unsigned line_of(const char *buf, size_t off)
{
    unsigned line = 1;

    for (size_t i = 0; i < off; i++)
        line += buf[i] == '\n';
    return line;
}

/* The JSON value opening at buf[pos]: its tree, with *end just past it; or
 * NULL with why, naming the byte (and line) where it goes wrong, and *cut
 * set when the text ends inside it. */
static cJSON *parse_at(const char *buf, size_t len, size_t pos, size_t *end, int *cut, char *why,
                       size_t whylen)
{
    enum extent e = json_extent(buf, len, pos, end);
    cJSON *root = NULL;

    *cut = e == CUT;
    if (e == CUT)
        snprintf(why, whylen, "truncated JSON at byte %zu", len);
    else if (e == DEEP)
        snprintf(why, whylen, "JSON nested deeper than %d levels at byte %zu (line %u)",
                 CJSON_NESTING_LIMIT, *end, line_of(buf, *end));
    else if (!(root = cJSON_ParseWithLength(buf + pos, *end - pos))) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= buf + pos && at <= buf + *end ? (size_t)(at - buf) : pos;

        snprintf(why, whylen, "invalid JSON at byte %zu (line %u)", off, line_of(buf, off));
    }
    return root;
}

/* A scalar at buf[pos] (no brackets to match): its tree, *end past it. */
static cJSON *parse_scalar(const char *buf, size_t len, size_t pos, size_t *end, char *why,
                           size_t whylen)
{
    const char *stop = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf + pos, len - pos, &stop, 0);

    *end = stop && stop >= buf + pos && stop <= buf + len ? (size_t)(stop - buf) : pos;
    if (!root)
        snprintf(why, whylen, "invalid JSON at byte %zu (line %u)", *end, line_of(buf, *end));
    return root;
}

cJSON *xr_json_parse(const char *buf, size_t len, char *why, size_t whylen)
{
    size_t pos = 0, end;
    int cut;
    cJSON *root;

    while (pos < len && isspace((unsigned char)buf[pos]))
        pos++;
    if (pos == len) {
        snprintf(why, whylen, "no JSON in it (%s)", len ? "only white space" : "an empty file");
        return NULL;
    }
    root = buf[pos] == '{' || buf[pos] == '['
               ? parse_at(buf, len, pos, &end, &cut, why, whylen)
               : parse_scalar(buf, len, pos, &end, why, whylen);
    while (root && end < len && isspace((unsigned char)buf[end]))
        end++;
    if (root && end < len) {
        snprintf(why, whylen, "invalid JSON at byte %zu (line %u): text after the document", end,
                 line_of(buf, end));
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

void xr_kv_free(struct xr_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
    free(kv);
}

static void free_doc(struct xr_doc *doc)
{
    for (size_t j = 0; j < doc->njobs; j++) {
        struct xr_job *job = &doc->jobs[j];

        free(job->name);
        free(job->hostname);
        free(job->engine);
        free(job->config);
        for (int d = 0; d < XR_NDIR; d++)
            free(job->dir[d].bins);
        xr_kv_free(job->opts, job->nopts);
    }
    free(doc->jobs);
    free(doc->source);
    free(doc->path);
    free(doc->fio_version);
}

void xr_xdstats_free(struct xr_xdstats *st)
{
    free(st->source);
    free(st->type);
    free(st->version);
    free(st->run_id);
    free(st->job_names);
    xr_kv_free(st->config, st->nconfig);
    free(st->host);
}

static void free_series(struct xr_series *s)
{
    free(s->source);
    free(s->kind);
    free(s->name);
    free(s->t_ms);
    free(s->value);
    free(s->p99);
}

/* One parsed document: xdevice's stats or fio's output, told by its keys. */
static int add_document(struct xr_set *set, const cJSON *root, const char *path, char *err,
                        size_t errlen)
{
    char why[512] = "";
    int rc;

    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "xdevice"))) {
        struct xr_xdstats *st = xr_mem_push(&set->stats, &set->nstats, sizeof *st);

        st->source = xr_mem_strdup(path);
        rc = xr_xdstats_parse(st, root, why, sizeof why);
        if (rc) {       /* a document is read whole or not at all */
            xr_xdstats_free(st);
            set->nstats--;
        }
    } else if (cJSON_GetObjectItemCaseSensitive(root, "jobs")
               || cJSON_GetObjectItemCaseSensitive(root, "client_stats")) {
        struct xr_doc *doc = xr_mem_push(&set->docs, &set->ndocs, sizeof *doc);

        doc->source = xr_mem_strdup(path);
        doc->path = xr_mem_strdup(path);
        rc = xr_fiojson_parse(doc, root, why, sizeof why);
        if (rc) {
            free_doc(doc);
            set->ndocs--;
        }
    } else {
        return fail(err, errlen, path, "JSON but not fio output (no \"jobs\" or "
                    "\"client_stats\") nor xdevice stats (no \"xdevice\")");
    }
    return rc ? fail(err, errlen, path, "%s", why) : 0;
}

/* Label the documents of a stream "FILE:N" and tell each where it stands. */
static void number_stream(struct xr_set *set, size_t first, const char *path)
{
    unsigned n = (unsigned)(set->ndocs - first);

    for (unsigned k = 0; k < n; k++) {
        struct xr_doc *doc = &set->docs[first + k];

        doc->stream_pos = k;
        doc->stream_len = n;
        if (n > 1) {
            free(doc->source);
            doc->source = xr_mem_printf("%s:%u", path, k + 1);
        }
    }
}

/* Text after a document may be plain text (--output-format=json,normal
 * puts fio's normal report there), but fio writes no "{" outside its
 * documents: a line holding one is a document damaged at its start, and
 * reading on past it would take an earlier document of a stream for the
 * run's result. A fio server's lines ("<host> ...", the engine's
 * xdevice-stats document among them) are the server's own. The offset of
 * the first such line in [from, to), or to. */
static size_t stray_brace(const char *buf, size_t from, size_t to)
{
    for (size_t line = from; line < to;) {
        size_t end = line;

        while (end < to && buf[end] != '\n')
            end++;
        if (buf[line + strspn(buf + line, " \t")] != '<' && memchr(buf + line, '{', end - line))
            return line;
        line = end + 1;
    }
    return to;
}

/* The line at off, quoted in a message: its first 40 bytes, escaped. */
static const char *quote_line(const char *buf, size_t off, char *shown, size_t len)
{
    char head[44];
    size_t n = strcspn(buf + off, "\r\n");

    snprintf(head, sizeof head, "%.*s%s", (int)(n < 40 ? n : 40), buf + off, n > 40 ? "..." : "");
    return xr_escape(head, shown, len);
}

static int load_json(struct xr_set *set, const char *path, const char *buf, size_t len,
                     size_t pos, char *err, size_t errlen)
{
    size_t first = set->ndocs;
    unsigned ndoc = 0;
    int rc = 0;

    for (; pos < len && rc == 0; pos = next_doc(buf, len, pos), ndoc++) {
        char why[200];
        size_t end;
        int cut;
        cJSON *root = parse_at(buf, len, pos, &end, &cut, why, sizeof why);

        if (!root) {
            rc = cut && ndoc ? fail(err, errlen, path, "%s (after %u complete documents)", why, ndoc)
                             : fail(err, errlen, path, "%s", why);
            break;
        }
        rc = add_document(set, root, path, err, errlen);
        cJSON_Delete(root);
        size_t next = next_doc(buf, len, end), stray = stray_brace(buf, end, next);
        if (!rc && stray < next) {
            char shown[XR_ESCAPE_LEN];
            rc = fail(err, errlen, path, "line %u: \"%s\" after a JSON document holds a \"{\" but starts no document; allowed: JSON documents that each start a line, and plain text without \"{\"",
                      line_of(buf, stray), quote_line(buf, stray, shown, sizeof shown));
        }
        pos = end;
    }
    number_stream(set, first, path);
    char why[256];
    /* a fio client's output: its server's stats document too */
    if (!rc && xr_hosts_load_stats(set, path, buf, first, why, sizeof why))
        rc = fail(err, errlen, path, "the server's xdevice-stats line: %s", why);
    return rc;
}

static int blank(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)buf[i]))
            return 0;
    return 1;
}

/* A fio log's first line is "time, value, ..." */
static int looks_like_log(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char)buf[i]))
        i++;
    return i < len && isdigit((unsigned char)buf[i]);
}

/* fio's terse output (--output-format=terse, --minimal): each line starts
 * with the terse version, then ";fio-". It starts with a digit as a log
 * does, and was refused as a log with a bad first line, which named
 * neither the format nor what to give instead. */
static int looks_like_terse(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char)buf[i]))
        i++;
    while (i < len && isdigit((unsigned char)buf[i]))
        i++;
    return len - i >= 5 && strncmp(buf + i, ";fio-", 5) == 0;
}

static int terse_refused(const char *path, char *err, size_t errlen)
{
    return fail(err, errlen, path, "fio terse output (--output-format=terse or --minimal), "
                "which xdreport does not read; allowed: fio JSON or json+ output "
                "(--output-format=json, also beside terse: json,terse) and fio logs");
}

/* Quote the start of the first line, so the user sees what the file is. */
static int not_results(const char *path, const char *buf, char *err, size_t errlen)
{
    const char *first = buf + strspn(buf, " \t\r\n");
    int n = (int)strcspn(first, "\r\n");

    return fail(err, errlen, path, "neither fio JSON nor a fio log (it starts \"%.*s%s\")",
                n < 40 ? n : 40, first, n > 40 ? "..." : "");
}

int xr_load(struct xr_set *set, const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, start;
    int rc;

    if (read_all(path, &buf, &len, err, errlen))
        return -1;
    if (blank(buf, len)) {
        free(buf);
        /* fio writes empty logs for what a job did not measure (the slat
         * log of a sync engine): nothing to show, nothing wrong */
        return xr_fiolog_named(path) ? 0 : fail(err, errlen, path, "empty file");
    }
    start = next_doc(buf, len, 0);
    if (start < len)
        rc = load_json(set, path, buf, len, start, err, errlen);
    else if (looks_like_terse(buf, len))
        rc = terse_refused(path, err, errlen);
    else if (looks_like_log(buf, len))
        rc = xr_fiolog_parse(set, path, buf, len, err, errlen);
    else
        rc = not_results(path, buf, err, errlen);
    free(buf);
    return rc;
}

void xr_set_free(struct xr_set *set)
{
    for (size_t i = 0; i < set->ndocs; i++)
        free_doc(&set->docs[i]);
    for (size_t i = 0; i < set->nstats; i++)
        xr_xdstats_free(&set->stats[i]);
    for (size_t i = 0; i < set->nseries; i++)
        free_series(&set->series[i]);
    free(set->docs);
    free(set->stats);
    free(set->series);
    memset(set, 0, sizeof *set);
}
