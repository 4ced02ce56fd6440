/* space.c - the discrete space xdtune searches: one dimension per key, each
 * a short list of values (a numeric range becomes a linear or geometric grid).
 *
 * Every value is checked through xd_config_set when the space is built, so a
 * candidate can never carry a value the engine would refuse, and a key whose
 * feature is still pending (only its default accepted) drops out by itself.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "../backends/core/fileutil.h"
#include "xdtune.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* escaped: a newline in a path or name would split the line */
    xd_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* "64m", "4k", "12.5", "1g" -> bytes or plain number; -1 on junk. */
static int parse_number(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v *= 1024.0; end++; break;
    case 'm': case 'M': v *= 1048576.0; end++; break;
    case 'g': case 'G': v *= 1073741824.0; end++; break;
    case 't': case 'T': v *= 1099511627776.0; end++; break;
    }
    if (*end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static char *number_text(double v)
{
    char buf[64];
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, sizeof(buf), "%.0f", v);
    else
        snprintf(buf, sizeof(buf), "%g", v);
    return strdup(buf);
}

/* A grid value as the schema writes the key: sizes in units (8m, not
 * 8388608), so best.ini, the history and every message read alike. */
static char *value_text(const char *key, double v)
{
    const struct xd_tunable *t = xd_tunable_find(key);
    if (t && t->type == XD_T_SIZE && v == floor(v) && v >= 0 && v < 9e18) {
        char buf[32];
        return strdup(xt_size_text(v, buf, sizeof(buf)));
    }
    return number_text(v);
}

const char *xt_size_text(double bytes, char *buf, size_t len)
{
    return xd_size_text((int64_t)bytes, buf, len);
}

/* Does the schema take key=value? err gets its line when not; *canon (when
 * asked, malloc'd) the value as the schema reads it, so 1m and 1024k are
 * known for one value. */
static int value_ok(const char *key, const char *value, char **canon, char *err, size_t errlen)
{
    struct xd_config *cfg = xd_config_new();
    if (!cfg)
        return -ENOMEM;
    int rc = xd_config_set(cfg, key, value, "space", err, errlen);
    if (!rc && canon && !(*canon = strdup(xd_config_get(cfg, key))))
        rc = -ENOMEM;
    xd_config_free(cfg);
    return rc;
}

static int dim_add_value(struct xt_dim *d, char *value, const char *where, char *err, size_t errlen)
{
    if (!value)
        return -ENOMEM;
    if (d->nvals == XT_MAX_VALS) {
        free(value);
        return fail(err, errlen, "%s: %s: more than %d values; use a coarser step", where, d->key,
                    XT_MAX_VALS);
    }
    d->vals[d->nvals++] = value;
    return 0;
}

/* The grid lo..hi: lo, lo+step... or, geometric, lo, lo*step... (a range
 * starting at 0 on a geometric grid takes 0 and then step, step^2...). */
static int dim_range(struct xt_dim *d, double lo, double hi, double step, int geometric,
                     const char *where, char *err, size_t errlen)
{
    if (lo > hi) { /* the bounds as the schema writes the key: 64m, not 67108864 */
        char *lo_text = value_text(d->key, lo), *hi_text = value_text(d->key, hi);
        int rc = fail(err, errlen, "%s: %s: bad bound: lo %s is above hi %s", where, d->key,
                      lo_text ? lo_text : "?", hi_text ? hi_text : "?");
        free(lo_text);
        free(hi_text);
        return rc;
    }
    if (geometric ? step <= 1 : step <= 0)
        return fail(err, errlen, "%s: %s: bad step %g: a %s step must be %s", where, d->key, step,
                    geometric ? "geometric" : "linear", geometric ? "above 1" : "above 0");
    d->kind = XT_NUM;
    int rc = 0;
    double v = lo;
    if (geometric && lo <= 0) {
        rc = dim_add_value(d, value_text(d->key, 0), where, err, errlen);
        v = step;
    }
    for (; !rc && v <= hi * (1 + 1e-9); v = geometric ? v * step : v + step)
        rc = dim_add_value(d, value_text(d->key, v), where, err, errlen);
    return rc;
}

static char *trim(char *s);

/* "a|b|c", blanks around each value allowed; an empty value is refused
 * rather than skipped, since "sync||io_uring" more likely lost a value. */
static int dim_choices(struct xt_dim *d, const char *list, const char *where, char *err,
                       size_t errlen)
{
    char *copy = strdup(list), *rest = copy;
    int rc = copy ? 0 : -ENOMEM;
    d->kind = XT_CHOICE;
    while (!rc && rest) {
        char *t = trim(strsep(&rest, "|"));
        rc = *t ? dim_add_value(d, strdup(t), where, err, errlen)
                : fail(err, errlen, "%s: %s: an empty value in \"%s\"; allowed: a|b|c, each value given", where, d->key, list);
    }
    free(copy);
    return rc;
}

/* The value before i that the schema reads as canon[i], or -1. */
static int dim_twin(char *const *canon, unsigned i)
{
    for (unsigned j = 0; j < i; j++)
        if (strcmp(canon[j], canon[i]) == 0)
            return (int)j;
    return -1;
}

static int dim_refuse_twin(const struct xt_dim *d, const char *value, const char *twin,
                           const char *where, char *err, size_t errlen)
{
    if (strcmp(value, twin) == 0)
        return fail(err, errlen, "%s: %s: value %s is listed twice; allowed: each value once",
                    where, d->key, value);
    return fail(err, errlen, "%s: %s: value %s is the same as %s, listed before; allowed: each value once", where,
                d->key, value, twin);
}

/* Drop the values the schema refuses (strict: report the first instead,
 * and a value given twice: a space file's list is the user's, and a twin
 * would be one configuration tried as two). */
static int dim_validate(struct xt_dim *d, int strict, const char *where, char *err, size_t errlen)
{
    char *canon[XT_MAX_VALS] = {0};
    unsigned kept = 0, i;
    int rc = 0;
    for (i = 0; i < d->nvals && !rc; i++) {
        char why[XD_ERRLEN];
        rc = value_ok(d->key, d->vals[i], strict ? &canon[kept] : NULL, why, sizeof(why));
        int twin = !rc && strict ? dim_twin(canon, kept) : -1;
        if (twin >= 0)
            rc = dim_refuse_twin(d, d->vals[i], d->vals[twin], where, err, errlen);
        else if (!rc)
            d->vals[kept++] = d->vals[i];
        else if (rc == -ENOMEM)
            xd_errf(err, errlen, "%s: %s: out of memory", where, d->key);
        else if (!strict)
            rc = 0, free(d->vals[i]);
        else
            rc = fail(err, errlen, "%s: %s: value %s is not allowed: %s", where, d->key,
                      d->vals[i], why);
    }
    if (rc) /* the refused value and those after it */
        for (unsigned j = i - 1; j < d->nvals; j++)
            free(d->vals[j]);
    for (unsigned j = 0; j <= kept && j < XT_MAX_VALS; j++)
        free(canon[j]);
    d->nvals = kept;
    return rc;
}

static struct xt_dim *space_new_dim(struct xt_space *s, const char *key, const char *where,
                                    char *err, size_t errlen)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->dim[i].key, key) == 0) {
            fail(err, errlen, "%s: %s: named twice", where, key);
            return NULL;
        }
    if (s->n == XT_MAX_DIMS) {
        fail(err, errlen, "%s: %s: more than %d parameters", where, key, XT_MAX_DIMS);
        return NULL;
    }
    struct xt_dim *d = &s->dim[s->n++];
    memset(d, 0, sizeof(*d));
    snprintf(d->key, sizeof(d->key), "%s", key);
    const struct xd_tunable *t = xd_tunable_find(key);
    d->live = t ? t->live : 0;
    return d;
}

void xt_space_free(struct xt_space *s)
{
    for (unsigned i = 0; i < s->n; i++)
        for (unsigned j = 0; j < s->dim[i].nvals; j++)
            free(s->dim[i].vals[j]);
    s->n = 0;
}

/* Whether the type keeps its data as a plain file at the job's path
 * (XD_CFG_PLAIN_FILE): a search can move among such types without ever
 * meeting a file another type wrote in its own format or elsewhere. */
static int raw_type(const char *name)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    int raw = cfg && !xd_config_set(cfg, "storage_type", name, "xdtune", err, sizeof(err)) &&
              (xd_config_caps(cfg) & XD_CFG_PLAIN_FILE);
    xd_config_free(cfg);
    return raw;
}

/* Which tunables make sense for a start config of this type: the schema's
 * types column (xd_key_applies); storage_type itself moves among raw types. */
static int tunable_applies(const char *key, int type)
{
    if (strcmp(key, "storage_type") == 0)
        return raw_type(xd_enum_name(XD_KEY_storage_type, type));
    int k = xd_key_lookup(key);
    return k < 0 || xd_key_applies(k, type);
}

/* A tunable's values as a choice list, NULL for a numeric one: an ENUM's
 * choices; a BOOL's default first, so a walk of the grid starts there. */
static const char *tunable_choices(const struct xd_tunable *t)
{
    if (t->type == XD_T_ENUM)
        return t->choices;
    if (t->type == XD_T_BOOL)
        return strcmp(t->def, "true") ? "false|true" : "true|false";
    return NULL;
}

/* Cache sizes above half the machine's memory would take it from fio and
 * the page cache: such a trial measures swapping, not the config. */
static void dim_cap_memory(struct xt_dim *d)
{
    double half = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 2;
    unsigned kept = 0;
    for (unsigned j = 0; j < d->nvals; j++) {
        double v;
        if (parse_number(d->vals[j], &v) == 0 && v <= half)
            d->vals[kept++] = d->vals[j];
        else
            free(d->vals[j]);
    }
    d->nvals = kept;
}

/* storage_type: only the raw types (see raw_type). */
static void dim_keep_raw_types(struct xt_dim *d)
{
    unsigned kept = 0;
    for (unsigned j = 0; j < d->nvals; j++) {
        if (raw_type(d->vals[j]))
            d->vals[kept++] = d->vals[j];
        else
            free(d->vals[j]);
    }
    d->nvals = kept;
}

int xt_space_default(struct xt_space *s, const struct xd_config *start, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < xd_tunable_count(); i++) {
        const struct xd_tunable *t = xd_tunable_get(i);
        const char *choices = tunable_choices(t);
        if (!tunable_applies(t->key, start->storage_type))
            continue;
        struct xt_dim *d = space_new_dim(s, t->key, "tunables", err, errlen);
        int rc = d ? 0 : -EINVAL;
        if (!rc)
            rc = choices ? dim_choices(d, choices, "tunables", err, errlen)
                         : dim_range(d, t->lo, t->hi, t->step, t->log_scale, "tunables", err,
                                     errlen);
        if (!rc)
            rc = dim_validate(d, 0, "tunables", err, errlen);
        if (!rc && strcmp(d->key, "storage_type") == 0)
            dim_keep_raw_types(d);
        if (!rc && strstr(d->key, "cache_size"))
            dim_cap_memory(d);
        if (rc) {
            xt_space_free(s);
            return rc;
        }
        if (d->nvals < 2) { /* pending feature, or nothing to choose */
            for (unsigned j = 0; j < d->nvals; j++)
                free(d->vals[j]);
            s->n--;
        }
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

char *xt_line_text(char *line, unsigned lineno)
{
    if (lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
        line += 3;
    for (char *p = line; *p; p++)
        if (*p == ';' && (p == line || isspace((unsigned char)p[-1]))) {
            *p = 0;
            break;
        }
    return trim(line);
}

/* "lo..hi", "lo..hi step N", "lo..hi N", "lo..hi step xN" / "*N" (geometric),
 * "a|b|c" or a single value. */
static int dim_parse_spec(struct xt_dim *d, char *spec, const char *where, char *err, size_t errlen)
{
    char *dots = strstr(spec, "..");
    if (!dots) {
        if (!*spec)
            return fail(err, errlen, "%s: %s: no values; give lo..hi [step N|xN] or a|b|c",
                        where, d->key);
        return dim_choices(d, spec, where, err, errlen);
    }
    *dots = 0;
    char *lo_s = trim(spec), *rest = trim(dots + 2), *step_s = NULL;
    char *space = strpbrk(rest, " \t");
    if (space) {
        *space = 0;
        step_s = trim(space + 1);
        if (strncmp(step_s, "step", 4) == 0)
            step_s = trim(step_s + 4);
    }
    double lo, hi, step = 1;
    int geometric = 0;
    if (parse_number(lo_s, &lo))
        return fail(err, errlen, "%s: %s: bad bound \"%s\": lo..hi takes numbers (k/m/g suffixes allowed)",
                    where, d->key, lo_s);
    if (parse_number(rest, &hi))
        return fail(err, errlen, "%s: %s: bad bound \"%s\": lo..hi takes numbers (k/m/g suffixes allowed)",
                    where, d->key, rest);
    if (step_s && *step_s) {
        geometric = *step_s == 'x' || *step_s == '*';
        if (parse_number(step_s + geometric, &step))
            return fail(err, errlen, "%s: %s: bad step \"%s\": use N (linear) or xN (geometric)",
                        where, d->key, step_s);
    }
    return dim_range(d, lo, hi, step, geometric, where, err, errlen);
}

/* [key] sections: lo, hi, step, log (true: step is a factor), values. */
enum { S_LO, S_HI, S_STEP, S_LOG, S_VALUES, S_COUNT };
static const char *const section_settings[S_COUNT] = {"lo", "hi", "step", "log", "values"};

struct section {
    struct xt_dim *d;
    char lo[64], hi[64], step[64], values[512];
    int log, line;
    int set_line[S_COUNT]; /* where each setting was given, 0: not yet */
};

static int section_finish(struct section *sec, const char *path, char *err, size_t errlen)
{
    if (!sec->d)
        return 0;
    char where[600], spec[1024];
    snprintf(where, sizeof(where), "%s:%d", path, sec->line);
    if (sec->values[0]) {
        snprintf(spec, sizeof(spec), "%s", sec->values);
    } else {
        if (!sec->lo[0] || !sec->hi[0])
            return fail(err, errlen, "%s: [%s]: needs lo and hi, or values", where, sec->d->key);
        snprintf(spec, sizeof(spec), "%s..%s %s%s", sec->lo, sec->hi, sec->log ? "x" : "",
                 sec->step[0] ? sec->step : (sec->log ? "2" : "1"));
    }
    int rc = dim_parse_spec(sec->d, spec, where, err, errlen);
    if (!rc)
        rc = dim_validate(sec->d, 1, where, err, errlen);
    sec->d = NULL;
    return rc;
}

static int check_key(const char *key, const char *where, char *err, size_t errlen)
{
    struct xd_config *probe = xd_config_new();
    int known = probe && xd_config_get(probe, key) != NULL;
    xd_config_free(probe);
    if (!known)
        return fail(err, errlen, "%s: unknown parameter \"%s\"; a space names schema keys (README's parameter table, "
                    "`xdconfig defaults`)", where, key);
    /* what keeps data safe, or breaks it on purpose, is never in the
     * default space; a space that names one was written to search it, but
     * the user hears that the search may turn it off */
    const char *section = xd_keys[xd_key_lookup(key)].section;
    if (!strcmp(section, "recovery") || !strcmp(section, "fault")) {
        char shown[XD_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
        fprintf(stderr, "xdtune: %s: %s is a [%s] key: the search may change what protects "
                "or breaks data, as this space asks\n", xd_escape(where, shown, sizeof(shown)), key,
                section);
    }
    return 0;
}

static int section_start(struct xt_space *s, struct section *sec, char *l, const char *path,
                         int lineno, const char *where, char *err, size_t errlen)
{
    int rc = section_finish(sec, path, err, errlen);
    char *close = strchr(l, ']');
    if (rc)
        return rc;
    if (!close || close[1])
        return fail(err, errlen, "%s: bad section line \"%s\"; allowed: [key], then a ; comment at most",
                    where, l);
    *close = 0;
    char *key = trim(l + 1);
    if ((rc = check_key(key, where, err, errlen)))
        return rc;
    memset(sec, 0, sizeof(*sec));
    sec->line = lineno;
    sec->d = space_new_dim(s, key, where, err, errlen);
    return sec->d ? 0 : -EINVAL;
}

/* A setting given once; values, or lo and hi (with step and log): both
 * would leave one of them silently unused, so the user is told to keep one. */
static int section_setting_once(struct section *sec, int i, int lineno, const char *where,
                                char *err, size_t errlen)
{
    if (sec->set_line[i])
        return fail(err, errlen, "%s: [%s] %s: set twice (first at line %d); allowed: once", where,
                    sec->d->key, section_settings[i], sec->set_line[i]);
    for (int j = 0; j < S_COUNT; j++)
        if (sec->set_line[j] && (i == S_VALUES) != (j == S_VALUES))
            return fail(err, errlen, "%s: [%s] %s: %s is set too (line %d); allowed: values, or lo and hi (with step and log): keep one of them",
                        where, sec->d->key, section_settings[i], section_settings[j], sec->set_line[j]);
    sec->set_line[i] = lineno;
    return 0;
}

static int section_setting(struct section *sec, const char *key, const char *value, int lineno,
                           const char *where, char *err, size_t errlen)
{
    int i = 0;
    while (i < S_COUNT && strcmp(key, section_settings[i]))
        i++;
    if (i == S_COUNT)
        return fail(err, errlen, "%s: [%s]: unknown setting \"%s\"; use lo, hi, step, log or values",
                    where, sec->d->key, key);
    size_t room = i == S_VALUES ? sizeof(sec->values) : sizeof(sec->lo);
    if (strlen(value) >= room)
        return fail(err, errlen, "%s: [%s] %s: a value of %zu characters; allowed: up to %zu",
                    where, sec->d->key, key, strlen(value), room - 1);
    if (i == S_LOG && strcmp(value, "true") && strcmp(value, "false"))
        return fail(err, errlen, "%s: [%s] log: bad value \"%s\"; use true or false", where,
                    sec->d->key, value);
    int rc = section_setting_once(sec, i, lineno, where, err, errlen);
    char *const text[S_COUNT] = {sec->lo, sec->hi, sec->step, NULL, sec->values};
    if (!rc && text[i])
        snprintf(text[i], room, "%s", value);
    if (!rc && i == S_LOG)
        sec->log = !strcmp(value, "true");
    return rc;
}

static int space_line(struct xt_space *s, struct section *sec, char *line, const char *path,
                      int lineno, char *err, size_t errlen)
{
    char where[600];
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    char *l = xt_line_text(line, (unsigned)lineno);
    if (!*l || *l == '#')
        return 0;
    if (*l == '[')
        return section_start(s, sec, l, path, lineno, where, err, errlen);
    char *eq = strchr(l, '=');
    if (!eq)
        return fail(err, errlen, "%s: expected key = value, got \"%s\"", where, l);
    *eq = 0;
    char *key = trim(l), *value = trim(eq + 1);
    if (sec->d)
        return section_setting(sec, key, value, lineno, where, err, errlen);
    int rc = check_key(key, where, err, errlen);
    if (rc)
        return rc;
    struct xt_dim *d = space_new_dim(s, key, where, err, errlen);
    if (!d)
        return -EINVAL;
    rc = dim_parse_spec(d, value, where, err, errlen);
    return rc ? rc : dim_validate(d, 1, where, err, errlen);
}

/* A space file is text: a NUL byte or a control byte is refused here, so
 * no message below echoes one raw. */
static int space_line_bytes(const char *line, size_t n, const char *path, int lineno, char *err,
                            size_t errlen)
{
    char shown[XD_ESCAPE_LEN];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        if ((c == '\n' && i == n - 1) || c == '\t' || (c == '\r' && i >= n - 2))
            continue;
        return fail(err, errlen, "%s:%d: \"%s\" holds a %s byte; allowed: text without NUL bytes or control characters",
                    path, lineno, xd_escape_n(line, n && line[n - 1] == '\n' ? n - 1 : n, shown, sizeof(shown)),
                    c ? "control" : "NUL");
    }
    return 0;
}

int xt_space_load(struct xt_space *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    FILE *f = xd_fopen_input(path);
    if (!f)
        return fail(err, errlen, "%s: cannot read the space file: %s", path, strerror(errno));
    if (xt_is_directory(f)) {
        fclose(f);
        return fail(err, errlen, "%s: is a directory; allowed: a space file (key = values lines, README \"Tuning\")",
                    path);
    }
    struct section sec = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    /* getline, not fgets into a fixed buffer: the rest of a long line must
     * not be read as a line of its own */
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        rc = space_line_bytes(line, (size_t)n, path, ++lineno, err, errlen);
        if (!rc)
            rc = space_line(s, &sec, line, path, lineno, err, errlen);
    }
    if (!rc && ferror(f))
        rc = fail(err, errlen, "%s: cannot read the space file: %s", path, strerror(errno));
    free(line);
    if (!rc)
        rc = section_finish(&sec, path, err, errlen);
    fclose(f);
    if (rc)
        xt_space_free(s);
    return rc;
}

int xt_space_check_nonempty(const struct xt_space *s, const char *what, char *err, size_t errlen)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->dim[i].nvals > 1)
            return 0;
    return fail(err, errlen, "%s: the space is empty: no parameter has two values or more to "
                "choose from", what);
}

double xt_space_size(const struct xt_space *s)
{
    double n = 1;
    for (unsigned i = 0; i < s->n; i++)
        n *= s->dim[i].nvals;
    return n;
}

void xt_space_snap(const struct xt_space *s, const struct xd_config *cfg, struct xt_point *p)
{
    memset(p, 0, sizeof(*p));
    for (unsigned i = 0; i < s->n; i++) {
        const struct xt_dim *d = &s->dim[i];
        const char *cur = xd_config_get(cfg, d->key);
        double want, v, best = INFINITY;
        if (!cur)
            continue;
        int numeric = parse_number(cur, &want) == 0;
        for (unsigned j = 0; j < d->nvals; j++) {
            if (strcmp(d->vals[j], cur) == 0) {
                p->idx[i] = j;
                break;
            }
            if (numeric && parse_number(d->vals[j], &v) == 0 && fabs(v - want) < best) {
                best = fabs(v - want);
                p->idx[i] = j;
            }
        }
    }
}

int xt_space_apply(const struct xt_space *s, const struct xt_point *p, struct xd_config *cfg,
                   char *err, size_t errlen)
{
    for (unsigned i = 0; i < s->n; i++) {
        int rc = xd_config_set(cfg, s->dim[i].key, s->dim[i].vals[p->idx[i]], "xdtune candidate",
                               err, errlen);
        if (rc)
            return rc;
    }
    return xd_config_check(cfg, err, errlen);
}

void xt_space_point(const struct xt_space *s, double i, struct xt_point *p)
{
    memset(p, 0, sizeof(*p));
    for (unsigned k = 0; k < s->n; k++) {
        unsigned n = s->dim[k].nvals;
        p->idx[k] = (unsigned)fmod(i, n);
        i = floor(i / n);
    }
}

int xt_point_equal(const struct xt_space *s, const struct xt_point *a, const struct xt_point *b)
{
    for (unsigned i = 0; i < s->n; i++)
        if (a->idx[i] != b->idx[i])
            return 0;
    return 1;
}

unsigned xt_space_width(const struct xt_space *s)
{
    unsigned w = 0;
    for (unsigned i = 0; i < s->n; i++)
        w += s->dim[i].kind == XT_CHOICE ? s->dim[i].nvals : 1;
    return w;
}

void xt_space_encode(const struct xt_space *s, const struct xt_point *p, double *x)
{
    for (unsigned i = 0; i < s->n; i++) {
        const struct xt_dim *d = &s->dim[i];
        if (d->kind == XT_CHOICE) {
            for (unsigned j = 0; j < d->nvals; j++)
                *x++ = j == p->idx[i];
        } else {
            *x++ = d->nvals > 1 ? (double)p->idx[i] / (d->nvals - 1) : 0;
        }
    }
}

char *xt_point_text(const struct xt_space *s, const struct xt_point *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (unsigned i = 0; i < s->n; i++)
        fprintf(f, "%s%s=%s", i ? " " : "", s->dim[i].key, s->dim[i].vals[p->idx[i]]);
    fclose(f);
    return buf;
}
