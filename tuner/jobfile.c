/* jobfile.c - the user's fio job read the way fio 3.33 reads it (init.c,
 * __parse_jobs_ini), and the copy one trial runs.
 *
 * Where the candidate's options go: fio parses a section's engine options
 * against the engine that section runs, after reading all of the section.
 * A [global] section that names no engine (the job names its own) cannot
 * take xd_config= and fio drops it ("job global dropped"); neither can a job
 * that runs another engine. So xd_config=, xd_stats= and lat_percentiles=1
 * go at the end of every job section whose engine is xdevice - its own
 * ioengine= or the one the [global] sections before it set - and only there.
 *
 * include lines are expanded in place, so the copy (in DIR/trials/) needs no
 * file beside it: fio opens an include by its name from the working
 * directory, else next to the file that includes it, and allows no section
 * in an included file; this does the same.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "xdtune.h"

#define XT_INCLUDE_DEPTH 8 /* deeper is a loop, or near enough to one */

struct reader {
    struct xt_job *job;
    const struct xt_space *space;
    size_t cap;
    int in_section, section_global, section_xd, global_xd;
    char section[256];
    char *err;
    size_t errlen;
};

static int fail(struct reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* escaped: a newline in a path or name would split the line */
    xd_verrf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* The value of "name = value" (blanks allowed around '='), or NULL. */
static const char *option_value(const char *line, const char *name)
{
    size_t n = strlen(name);
    while (*line == ' ' || *line == '\t')
        line++;
    if (strncmp(line, name, n))
        return NULL;
    line += n;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '=')
        return NULL;
    line++;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

/* fio's ${VAR} expansion (an unset variable is empty), for reading the
 * engine's name as fio will: ioengine=external:${XD_ENGINE} is common. */
static char *expand_env(const char *s)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        return NULL;
    while (*s) {
        const char *close = s[0] == '$' && s[1] == '{' ? strchr(s, '}') : NULL;
        if (close && close > s + 2) {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)(close - s - 2), s + 2);
            const char *v = getenv(name);
            fputs(v ? v : "", f);
            s = close + 1;
        } else {
            fputc(*s++, f);
        }
    }
    fclose(f);
    return out;
}

static int engine_is_xdevice(const char *value)
{
    char *v = expand_env(value);
    int xd = v && strncmp(v, "external:", 9) == 0 && strstr(v, "xdevice");
    free(v);
    return xd;
}

/* Lines the candidate must win over: its config file, stats path, and any
 * xd_KEY the space sets (fio's xd_KEY options override the config file).
 * NULL for a line kept; else the key of the space it sets, or "" for the
 * config file and stats path. */
static const char *line_dropped(const char *line, const struct xt_space *s)
{
    if (option_value(line, "xd_config") || option_value(line, "xd_stats"))
        return "";
    for (unsigned i = 0; s && i < s->n; i++) {
        char name[80];
        snprintf(name, sizeof(name), "xd_%s", s->dim[i].key);
        if (option_value(line, name))
            return s->dim[i].key;
        if (!strcmp(s->dim[i].key, "storage_type") && option_value(line, "xd_type"))
            return s->dim[i].key; /* xd_type is short for xd_storage_type */
    }
    return NULL;
}

/* The value a dropped line gives a key the search sets. The candidate's
 * value replaces it, but one the key does not take is still a mistake in
 * the job, which fio would refuse: said in one line (it was dropped
 * without a word, and every trial ran). */
static int dropped_value_check(struct reader *r, const char *line, const char *key,
                               const char *where, unsigned lineno)
{
    const char *raw = strchr(line, '=');
    char *value = raw ? expand_env(raw + 1 + strspn(raw + 1, " \t")) : NULL, origin[96];
    size_t n = raw ? strcspn(line, " \t=") : 0;
    snprintf(origin, sizeof(origin), "option %.*s", (int)(n < 80 ? n : 80), line);
    struct xd_config *probe = value ? xd_config_new() : NULL;
    char why[XD_ERRLEN];
    int rc = probe ? xd_config_set(probe, key, value, origin, why, sizeof(why)) : -ENOMEM;
    xd_config_free(probe);
    free(value);
    if (rc == -ENOMEM)
        return fail(r, "out of memory reading the job");
    return rc ? fail(r, "%s:%u: %s", where, lineno, why) : 0;
}

static void job_note_line(struct xt_job *job, const char *line)
{
    const char *v;
    if ((v = option_value(line, "rw")) || (v = option_value(line, "readwrite"))) {
        if (strstr(v, "rand"))
            job->random_access = 1;
        else
            job->sequential = 1;
        if (strstr(v, "write") || strstr(v, "rw") || strstr(v, "trim"))
            job->writes = 1;
    }
    if ((v = option_value(line, "iodepth")) && atoi(v) > job->iodepth)
        job->iodepth = atoi(v);
}

static int keep_line(struct reader *r, const char *text)
{
    struct xt_job *job = r->job;
    if (job->nlines == r->cap) {
        size_t cap = r->cap * 2 + 64;
        char **lines = realloc(job->lines, cap * sizeof(*lines));
        unsigned char *after = lines ? realloc(job->options_after, cap) : NULL;
        if (lines)
            job->lines = lines;
        if (!after)
            return fail(r, "%s: out of memory reading the job", job->path);
        job->options_after = after;
        r->cap = cap;
    }
    job->options_after[job->nlines] = 0;
    job->lines[job->nlines] = strdup(text);
    if (!job->lines[job->nlines])
        return fail(r, "%s: out of memory reading the job", job->path);
    job->nlines++;
    return 0;
}

/* A section ends: a job that runs xdevice gets the trial's options after
 * its last line, and its name is one whose figures count. */
static int section_end(struct reader *r)
{
    struct xt_job *job = r->job;
    if (!r->in_section || r->section_global || !r->section_xd)
        return 0;
    char **names = realloc(job->xd_jobs, (job->nxd_jobs + 1) * sizeof(*names));
    if (!names)
        return fail(r, "%s: out of memory reading the job", job->path);
    job->xd_jobs = names;
    if (!(names[job->nxd_jobs] = strdup(r->section)))
        return fail(r, "%s: out of memory reading the job", job->path);
    job->nxd_jobs++;
    job->options_after[job->nlines - 1] = 1;
    return 0;
}

/* "[name]": fio takes what is between the brackets, and any name starting
 * with "global" as a global section. */
static int section_start(struct reader *r, const char *p, const char *file, unsigned lineno,
                         int depth)
{
    if (depth > 0)
        return fail(r, "%s:%u: %s: fio allows no new section in an included file", file, lineno, p);
    int rc = section_end(r);
    if (rc)
        return rc;
    size_t n = strlen(p);
    snprintf(r->section, sizeof(r->section), "%.*s", (int)(n > 2 ? n - 2 : 0), p + 1);
    r->in_section = 1;
    r->section_global = strncmp(r->section, "global", 6) == 0;
    r->section_xd = r->global_xd;
    return keep_line(r, p);
}

static int option_line(struct reader *r, const char *p, const char *file, unsigned lineno)
{
    const char *engine = option_value(p, "ioengine");
    if (engine) {
        int xd = engine_is_xdevice(engine);
        r->section_xd = xd;
        if (r->section_global)
            r->global_xd = xd;
    }
    job_note_line(r->job, p);
    const char *key = line_dropped(p, r->space);
    if (!key)
        return keep_line(r, p);
    return *key ? dropped_value_check(r, p, key, file, lineno) : 0;
}

static int read_file(struct reader *r, const char *file, int depth);

/* "include NAME": from the working directory when it is there, else next to
 * the including file (fio's order). */
static int include_line(struct reader *r, const char *p, const char *file, unsigned lineno,
                        int depth)
{
    const char *name = p + strlen("include") + 1;
    char *path = NULL;
    const char *slash = strrchr(file, '/');
    if (access(name, F_OK) && slash) {
        if (asprintf(&path, "%.*s%s", (int)(slash - file + 1), file, name) < 0)
            return fail(r, "%s: out of memory reading the job", file);
    }
    const char *use = path ? path : name;
    int rc;
    if (depth + 1 >= XT_INCLUDE_DEPTH) {
        rc = fail(
            r,
            "%s:%u: include %s: more than %d include levels (one includes itself?); allowed: up to %d",
            file, lineno, name, XT_INCLUDE_DEPTH - 1, XT_INCLUDE_DEPTH - 1);
    } else {
        char note[4400];
        snprintf(note, sizeof(note), "; include %s (%s, expanded by xdtune)", name, use);
        rc = keep_line(r, note);
        if (!rc)
            rc = read_file(r, use, depth + 1);
        if (rc == -ENOENT)
            rc = fail(r, "%s:%u: include %s: cannot read %s: %s", file, lineno, name, use,
                      strerror(ENOENT));
        if (rc == -EISDIR)
            rc = fail(r, "%s:%u: include %s: %s is a directory; allowed: a file of job lines",
                      file, lineno, name, use);
    }
    free(path);
    return rc;
}

static void strip_blanks(char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\r')
        (*p)++;
    size_t n = strlen(*p);
    while (n && ((*p)[n - 1] == ' ' || (*p)[n - 1] == '\t' || (*p)[n - 1] == '\r'))
        (*p)[--n] = 0;
}

static int read_line(struct reader *r, char *p, const char *file, unsigned lineno, int depth)
{
    strip_blanks(&p);
    if (!*p || *p == ';' || *p == '#')
        return keep_line(r, p);
    if (*p == '[')
        return section_start(r, p, file, lineno, depth);
    if (strncmp(p, "include", strlen("include")) == 0 && strlen(p) > strlen("include") + 1)
        return include_line(r, p, file, lineno, depth);
    return option_line(r, p, file, lineno);
}

static int read_file(struct reader *r, const char *file, int depth)
{
    char *text = xt_read_file(file, NULL);
    if (!text) {
        int e = errno;
        if ((e == ENOENT || e == EISDIR) && depth > 0)
            return -e; /* include_line names the including line */
        if (e == EISDIR)
            return fail(r, "%s: is a directory; allowed: a fio job file", file);
        return fail(r, "%s: cannot read the job file: %s", file, strerror(e));
    }
    char *line = text, *nl;
    unsigned lineno = 0;
    int rc = 0;
    for (; !rc && line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        rc = read_line(r, line, file, ++lineno, depth);
    }
    free(text);
    return rc;
}

/* fio's command-line form of a job: --name=NAME starts a job section, the
 * options before the first one are global, --opt=value is opt=value and a
 * bare --flag is flag. Each argument is read as the line it stands for. */
static int read_args(struct reader *r, int argc, char *const *argv)
{
    int rc = 0;
    if (argc > 0 && strncmp(argv[0], "--name=", 7))
        rc = read_line(r, (char[]){"[global]"}, "the command line", 0, 0);
    for (int i = 0; !rc && i < argc; i++) {
        if (strncmp(argv[i], "--", 2) || !argv[i][2])
            return fail(r, "fio job argument %d \"%s\": not a job option; allowed after --: fio's --name=NAME and --option=value", i + 1, argv[i]);
        char *line = NULL;
        if (strncmp(argv[i], "--name=", 7) == 0 ? asprintf(&line, "[%s]", argv[i] + 7) < 0
                                                 : !(line = strdup(argv[i] + 2)))
            return fail(r, "out of memory reading the job");
        rc = read_line(r, line, "the command line", (unsigned)i + 1, 0);
        free(line);
    }
    return rc;
}

/* From the file at path, or (argv) from fio's command-line form. */
static int job_load(struct xt_job *job, const char *path, int argc, char *const *argv,
                    const struct xt_space *s, char *err, size_t errlen)
{
    memset(job, 0, sizeof(*job));
    job->iodepth = 1;
    job->path = strdup(path);
    struct reader r = {.job = job, .space = s, .err = err, .errlen = errlen};
    int rc = !job->path ? -ENOMEM : argv ? read_args(&r, argc, argv) : read_file(&r, path, 0);
    if (!rc)
        rc = section_end(&r);
    if (!rc && !job->nxd_jobs)
        rc = fail(&r,
                  "%s: no job section runs the xdevice engine; one needs a line ioengine=external:PATH/xdevice.so, in it or in a [global] section before it",
                  path);
    if (rc)
        xt_job_free(job);
    return rc;
}

int xt_job_load(struct xt_job *job, const char *path, const struct xt_space *s, char *err,
                size_t errlen)
{
    return job_load(job, path, 0, NULL, s, err, errlen);
}

int xt_job_load_args(struct xt_job *job, int argc, char *const *argv, const struct xt_space *s,
                     char *err, size_t errlen)
{
    return job_load(job, "the fio job on the command line", argc, argv, s, err, errlen);
}

void xt_job_free(struct xt_job *job)
{
    for (size_t i = 0; i < job->nlines; i++)
        free(job->lines[i]);
    for (size_t i = 0; i < job->nxd_jobs; i++)
        free(job->xd_jobs[i]);
    free(job->lines);
    free(job->options_after);
    free(job->xd_jobs);
    free(job->path);
    memset(job, 0, sizeof(*job));
}

int xt_job_runs_xdevice(const struct xt_job *job, const char *name)
{
    for (size_t i = 0; name && i < job->nxd_jobs; i++)
        if (strcmp(job->xd_jobs[i], name) == 0)
            return 1;
    return 0;
}

/* lat_percentiles: fio stamps an async engine's issue time after queue()
 * and the commit return, and xdevice's async modes often finish a request
 * in there (a cache hit, a page-cached io_uring read): its clat is then ~0.
 * lat (from fio's start of the I/O to its completion) is the latency a
 * program sees. */
int xt_job_write(const struct xt_job *job, const char *path, const char *ini, const char *stats,
                 char *err, size_t errlen)
{
    int fd = xt_create(path, err, errlen);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) { /* xt_create said why when it failed */
        if (fd >= 0) {
            xd_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
            close(fd);
        }
        return -1;
    }
    char shown[XD_ESCAPE_LEN]; /* a comment: one line whatever the name holds */
    fprintf(f, "; %s as run by xdtune with one candidate config\n",
            xd_escape(job->path, shown, sizeof(shown)));
    for (size_t i = 0; i < job->nlines; i++) {
        fprintf(f, "%s\n", job->lines[i]);
        if (job->options_after[i])
            fprintf(f,
                    "; added by xdtune to this xdevice job\nxd_config=%s\nxd_stats=%s\n"
                    "lat_percentiles=1\n",
                    ini, stats);
    }
    if (fclose(f)) {
        xd_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
