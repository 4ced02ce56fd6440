/* pairing.c - the inputs of `xdreport compare` and what makes two runs the
 * same experiment: file lists, configuration names, option fingerprints.
 * The rules are in pairing.h.
 */
#include "pairing.h"
#include "../backends/core/config.h"
#include "../backends/core/fileutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format.h"
#include "mem.h"
#include "options.h"

int xr_cmp_fail(const char *fmt, ...)
{
    va_list ap;
    char line[2048];
    va_start(ap, fmt);
    /* escaped: a newline in a path, configuration or job name would split the line */
    xd_verrf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "xdreport compare: %s\n", line);
    return 2;
}

/* --- the files of a side ----------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void add_file(char ***files, size_t *n, char *path)
{
    *files = xr_mem_realloc(*files, (*n + 1) * sizeof **files);
    (*files)[(*n)++] = path;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static void free_files(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
}

/* The *.json files of a directory, or all its regular files when none is;
 * never a hidden one, never a subdirectory (a regress results directory
 * keeps BASE and NEW in two of them). */
static int list_dir(const char *label, const char *path, char ***files, size_t *n)
{
    DIR *d = opendir(path);
    if (!d)
        return xr_cmp_fail("%s %s: %s", label, path, strerror(errno));
    size_t njson = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *f = xr_mem_printf("%s/%s", path, e->d_name);
        if (is_regular(f)) {
            add_file(files, n, f);
            njson += ends_with(e->d_name, ".json");
        } else {
            free(f);
        }
    }
    closedir(d);
    if (njson) {
        size_t kept = 0;
        for (size_t i = 0; i < *n; i++)
            if (ends_with((*files)[i], ".json"))
                (*files)[kept++] = (*files)[i];
            else
                free((*files)[i]);
        *n = kept;
    }
    qsort(*files, *n, sizeof **files, cmp_str);
    if (*n == 0)
        return xr_cmp_fail("%s %s: the directory holds no result files", label, path);
    return 0;
}

/* A line of a list file: NULL for a blank or # line, else the path it names
 * (relative to the list's directory dir), malloc'd. */
static char *list_entry(char *line, const char *dir)
{
    char *s = line + strspn(line, " \t\r\n"), *end = s + strlen(s);
    while (end > s && strchr(" \t\r\n", end[-1]))
        *--end = 0;
    if (!*s || *s == '#')
        return NULL;
    return *s == '/' ? xr_mem_strdup(s) : xr_mem_printf("%s%s", *dir ? dir : "./", s);
}

/* Results, not a list: JSON opens a line with "{"; a fio log's first line
 * is "time, value, ...". */
static int results_line(const char *line, size_t lineno)
{
    const char *s = line + strspn(line, " \t");
    return *s == '{' || (lineno == 1 && isdigit((unsigned char)*s) && strchr(s, ','));
}

/* A list file names one file per line; fio output never looks like that
 * (it is JSON, possibly after notes that are not file names). A file is a
 * list when none of its lines is results and at least one names an existing
 * file; then every line must (the first that does not is named, rather
 * than the list being read as a results file it is not). Returns 1 and
 * fills files when path is one, 0 when it is not, 2 after one line on
 * stderr. */
static int read_list(const char *label, const char *path, char ***files, size_t *n)
{
    FILE *f = xd_fopen_input(path);
    if (!f)
        return 0;
    char *dir = xr_mem_strdup(path), *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;
    char *line = NULL, *missing = NULL;
    size_t cap = 0, lineno = 0, missing_line = 0;
    const char *why = NULL;
    int results = 0;
    while (!results && !(missing && *n) && getline(&line, &cap, f) >= 0) {
        char *p;
        if ((results = results_line(line, ++lineno)) || !(p = list_entry(line, dir)))
            continue;
        if (is_regular(p)) {
            add_file(files, n, p);
            continue;
        }
        if (!missing) {
            struct stat st;
            why = stat(p, &st) ? strerror(errno) : "not a regular file";
            missing = p;
            missing_line = lineno;
        } else {
            free(p);
        }
    }
    free(line);
    free(dir);
    fclose(f);
    int rc = !results && *n ? 1 : 0;
    if (rc && missing) {
        char shown[XR_ESCAPE_LEN];
        rc = xr_cmp_fail("%s %s: line %zu: %s: %s; allowed: a list of result files, one a line", label,
                         path, missing_line, xr_escape(missing, shown, sizeof shown), why);
    }
    free(missing);
    if (rc != 1) {
        free_files(*files, *n);
        *files = NULL;
        *n = 0;
    }
    return rc;
}

int xr_pair_inputs(const char *label, const char *path, char ***files, size_t *n)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return xr_cmp_fail("%s %s: %s", label, path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return list_dir(label, path, files, n);
    if (!S_ISREG(st.st_mode))
        return xr_cmp_fail("%s %s: not a directory, list file or results file", label, path);
    int list = read_list(label, path, files, n);
    if (list == 0)
        add_file(files, n, xr_mem_strdup(path));
    return list == 2 ? 2 : 0;
}

/* --- configuration names ------------------------------------------------------ */

/* Length of a trailing repetition tag of name[0..len): an optional r, rep or
 * run and then digits, after a separator or at the start; 0 when none. */
static size_t rep_tag_len(const char *name, size_t len)
{
    size_t d = len;
    while (d > 0 && isdigit((unsigned char)name[d - 1]))
        d--;
    if (d == len)
        return 0;
    static const char *const words[] = {"run", "rep", "r", ""};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t wl = strlen(words[w]);
        if (wl > d || strncmp(name + d - wl, words[w], wl))
            continue;
        size_t start = d - wl;
        if (start == 0)
            return len;
        if (strchr("-_.", name[start - 1]))
            return len - start + 1;
    }
    return 0;
}

/* The file's name without its directory and ".json": what the tag ends. */
static const char *stem(const char *file, size_t *len)
{
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    *len = strlen(base);
    if (*len > 5 && !strcmp(base + *len - 5, ".json"))
        *len -= 5;
    return base;
}

char *xr_pair_config_name(const char *file)
{
    size_t len;
    const char *base = stem(file, &len);
    len -= rep_tag_len(base, len);
    return xr_mem_strndup(base, len);
}

long xr_pair_round(const char *file)
{
    size_t len;
    const char *base = stem(file, &len);
    if (!rep_tag_len(base, len))
        return -1;
    size_t d = len;
    while (d > 0 && isdigit((unsigned char)base[d - 1]))
        d--;
    long round = 0;
    for (size_t i = d; i < len && round < 100000000; i++)
        round = round * 10 + (base[i] - '0');
    return round;
}

/* --- options ------------------------------------------------------------------- */

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ignored(const char *key, char *const *ignore, size_t nignore)
{
    for (size_t i = 0; i < nignore; i++)
        if (!strcmp(key, ignore[i]) || !strcmp(xr_opt_canon(key), xr_opt_canon(ignore[i])))
            return 1;
    return 0;
}

char *xr_pair_options(const struct xr_job *job, char *const *ignore, size_t nignore)
{
    char **lines = xr_mem_alloc((job->nopts + 1) * sizeof *lines);
    size_t n = 0, len = 1;
    for (size_t i = 0; i < job->nopts; i++) {
        const struct xr_kv *kv = &job->opts[i];
        if (xr_opt_class(kv->key) != XR_OPT_CONFIG || ignored(kv->key, ignore, nignore))
            continue;
        char *val = xr_opt_value(kv->key, kv->val);
        lines[n] = xr_mem_printf("%s=%s", xr_opt_canon(kv->key), val);
        free(val);
        len += strlen(lines[n++]) + 1;
    }
    qsort(lines, n, sizeof *lines, cmp_line);
    char *out = xr_mem_alloc(len), *p = out;
    for (size_t i = 0; i < n; i++) {
        p += sprintf(p, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* The next "key=value" line of s into line (at most len - 1 characters);
 * returns where the one after it starts, or NULL at the end. */
static const char *next_line(const char *s, char *line, size_t len)
{
    if (!*s)
        return NULL;
    size_t n = strcspn(s, "\n");
    snprintf(line, len, "%.*s", (int)n, s);
    return s[n] ? s + n + 1 : s + n;
}

static void key_of(const char *line, char *key, size_t len)
{
    snprintf(key, len, "%.*s", (int)strcspn(line, "="), line);
}

void xr_pair_difference(const char *a, const char *b, char *buf, size_t len, char *key,
                        size_t keylen)
{
    char la[256], lb[256], ka[128], kb[128];
    const char *pa = next_line(a, la, sizeof la), *pb = next_line(b, lb, sizeof lb);
    while (pa || pb) {
        if (pa && pb && !strcmp(la, lb)) {
            pa = next_line(pa, la, sizeof la);
            pb = next_line(pb, lb, sizeof lb);
            continue;
        }
        key_of(pa ? la : "", ka, sizeof ka);
        key_of(pb ? lb : "", kb, sizeof kb);
        int c = !pa ? 1 : !pb ? -1 : strcmp(ka, kb);
        if (c == 0)
            snprintf(buf, len, "%s against %s", la, lb);
        else if (c < 0)
            snprintf(buf, len, "%s against no %s", la, ka);
        else
            snprintf(buf, len, "no %s against %s", kb, lb);
        snprintf(key, keylen, "%s", c <= 0 ? ka : kb);
        return;
    }
    snprintf(buf, len, "the same options");
    snprintf(key, keylen, "%s", "");
}
