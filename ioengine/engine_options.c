/* engine_options.c - fio's options to xdevice's config (engine.h). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

#ifndef XD_FIO_BUILT_VERSION
#error "XD_FIO_BUILT_VERSION must name the fio source the engine is compiled against"
#endif

/* --- options --------------------------------------------------------------
 * Every schema key K is the fio option xd_K, stored as text and validated by
 * the same code as the INI parser, at parse time, so a bad value stops fio
 * before any job starts. The options are FIO_OPT_STR with a callback that
 * stores the text, not FIO_OPT_STR_STORE: fio refuses an empty value of the
 * latter itself ("failed parsing xd_type="), without asking the engine, so
 * the allowed values could not be said. fio neither copies nor frees what
 * the callbacks store; the jobs of a job file share [global]'s strings, so
 * a value set again is never freed (a few bytes per option per run).
 * fio keeps a pointer to the thread_data at offset 0 of the option struct,
 * hence pad. The table is built when the engine is loaded, from the
 * library's schema (xd_config_key_desc), so the engine needs only the
 * public header. */

/* Short names: the same key under a second option name. Both given with
 * different values is refused (the last would silently win). */
static const struct {
    const char *name;
    const char *key;
    const char *origin;
} fio_xd_aliases[FIO_XD_ALIASES] = {
    [FIO_XD_ALIAS_TYPE] = {"xd_type", "storage_type", "option xd_type"},
    [FIO_XD_ALIAS_INTERVAL] = {"xd_stats_interval", "metrics_interval_sec",
                               "option xd_stats_interval"},
};

/* Per schema key, by index, made when the engine is loaded: its option's
 * name and the origin its value is given in messages. */
static struct fio_xd_key {
    char *option; /* "xd_KEY" */
    char *origin; /* "option xd_KEY" */
} *fio_xd_keys;

/* The index of a schema key, or -1. */
static int fio_xd_key_index(const char *name)
{
    for (unsigned k = 0; k < xd_config_key_count(); k++)
        if (!strcmp(xd_config_key_name(k), name))
            return (int)k;
    return -1;
}

/* Validate one option value with a throwaway config. */
static int fio_xd_check_value(int key, const char *option, const char *value)
{
    char err[XD_ERRLEN], origin[96];
    struct xd_config *probe = xd_config_new();
    if (!probe)
        return 1;
    snprintf(origin, sizeof(origin), "option %s", option);
    int rc = xd_config_set(probe, xd_config_key_name((unsigned)key), value, origin, err,
                           sizeof(err));
    xd_config_free(probe);
    if (rc)
        fio_xd_err("xdevice: %s\n", err);
    return rc ? 1 : 0;
}

/* What the option callbacks store lives as long as the process: fio neither
 * copies nor frees it (jobs share [global]'s strings, a value set again
 * replaces the pointer). Every copy is kept on this list so it stays owned
 * and reachable, not leaked (LeakSanitizer, make sanitize, checks). */
struct fio_xd_kept {
    struct fio_xd_kept *next;
    char text[];
};
static struct fio_xd_kept *fio_xd_kept;
static pthread_mutex_t fio_xd_kept_lock = PTHREAD_MUTEX_INITIALIZER;

static char *fio_xd_keep(const char *value)
{
    size_t len = strlen(value) + 1;
    struct fio_xd_kept *k = malloc(sizeof(*k) + len);
    if (!k)
        return NULL;
    memcpy(k->text, value, len);
    pthread_mutex_lock(&fio_xd_kept_lock);
    k->next = fio_xd_kept;
    fio_xd_kept = k;
    pthread_mutex_unlock(&fio_xd_kept_lock);
    return k->text;
}

/* Keep a checked value; 1 (fio: parse error) if it is bad. */
static int fio_xd_store(char **slot, int key, const char *option, const char *value)
{
    value = value ? value : "";
    if (key >= 0 && fio_xd_check_value(key, option, value))
        return 1;
    char *copy = fio_xd_keep(value);
    if (!copy)
        return 1;
    *slot = copy;
    return 0;
}

/* xd_KEY, the option of schema key `key`. */
static int fio_xd_opt_key(void *data, unsigned key, const char *value)
{
    struct fio_xd_options *o = data;
    return fio_xd_store(&o->values[key], (int)key, fio_xd_keys[key].option, value);
}

/* fio tells an option's callback the value but not which option it is, so
 * each schema key gets a callback of its own: FIO_XD_MAX_KEYS one-line
 * functions made by the macros below, named by their index in octal (the
 * pasted digits are an octal literal: fio_xd_key_0123 serves key 0123). */
#define FIO_XD_MAX_KEYS 128
#define FIO_XD_OCT8(F, p) F(p##0) F(p##1) F(p##2) F(p##3) F(p##4) F(p##5) F(p##6) F(p##7)
#define FIO_XD_OCT64(F, p)                                                                  \
    FIO_XD_OCT8(F, p##0) FIO_XD_OCT8(F, p##1) FIO_XD_OCT8(F, p##2) FIO_XD_OCT8(F, p##3)     \
    FIO_XD_OCT8(F, p##4) FIO_XD_OCT8(F, p##5) FIO_XD_OCT8(F, p##6) FIO_XD_OCT8(F, p##7)
#define FIO_XD_EVERY_KEY(F) FIO_XD_OCT64(F, 00) FIO_XD_OCT64(F, 01)
#define FIO_XD_KEY_CB(n)                                                                    \
    static int fio_xd_key_##n(void *data, const char *value)                                \
    {                                                                                       \
        return fio_xd_opt_key(data, n, value);                                              \
    }
#define FIO_XD_KEY_CB_REF(n) fio_xd_key_##n,
FIO_XD_EVERY_KEY(FIO_XD_KEY_CB)
static int (*const fio_xd_key_cbs[FIO_XD_MAX_KEYS])(void *, const char *) = {
    FIO_XD_EVERY_KEY(FIO_XD_KEY_CB_REF)};
#undef FIO_XD_KEY_CB_REF
#undef FIO_XD_KEY_CB

static int fio_xd_opt_alias(void *data, int a, const char *value)
{
    struct fio_xd_options *o = data;
    return fio_xd_store(&o->aliases[a], fio_xd_key_index(fio_xd_aliases[a].key),
                        fio_xd_aliases[a].name, value);
}

static int fio_xd_opt_type(void *data, const char *value)
{
    return fio_xd_opt_alias(data, FIO_XD_ALIAS_TYPE, value);
}

static int fio_xd_opt_interval(void *data, const char *value)
{
    return fio_xd_opt_alias(data, FIO_XD_ALIAS_INTERVAL, value);
}

static int fio_xd_opt_config(void *data, const char *path)
{
    struct fio_xd_options *o = data;
    char err[XD_ERRLEN];
    if (!path || !*path) {
        fio_xd_err("xdevice: option xd_config has an empty value; allowed: the path of an xdevice INI file\n");
        return 1;
    }
    struct xd_config *probe = xd_config_new();
    int rc = probe ? xd_config_load(probe, path, err, sizeof(err)) : -ENOMEM;
    xd_config_free(probe);
    if (rc) {
        fio_xd_err("xdevice: xd_config=%s\n", probe ? err : "out of memory");
        return 1;
    }
    return fio_xd_store(&o->config, -1, "xd_config", path);
}

/* Where a results file will go must be a file in a directory that exists
 * and can be written: found at parse time, before fio lays out anything,
 * not when the document is written at the end of the run. */
static int fio_xd_check_out_path(const char *option, const char *path)
{
    char shown[XD_ESCAPE_LEN], *copy = NULL;
    struct stat st;
    const char *why = NULL;
    if (!path || !*path) {
        fio_xd_err("xdevice: option %s has an empty value; allowed: the path of a file to write\n",
                   option);
        return 1;
    }
    if (!stat(path, &st) && !S_ISREG(st.st_mode))
        why = S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file";
    if (!why && (copy = strdup(path))) {
        const char *dir = dirname(copy);
        if (stat(dir, &st))
            why = "its directory does not exist";
        else if (!S_ISDIR(st.st_mode))
            why = "its directory is not a directory";
        else if (access(dir, W_OK | X_OK))
            why = errno == EROFS ? "its directory is on a read-only file system"
                                 : "its directory is not writable";
    }
    free(copy);
    if (why)
        fio_xd_err("xdevice: option %s=%s: %s; allowed: a file in a writable directory\n", option,
                   xd_escape(path, shown, sizeof(shown)), why);
    return why ? 1 : 0;
}

static int fio_xd_opt_stats(void *data, const char *path)
{
    struct fio_xd_options *o = data;
    return fio_xd_check_out_path("xd_stats", path) || fio_xd_store(&o->stats, -1, "xd_stats", path);
}

static int fio_xd_opt_stats_log(void *data, const char *path)
{
    struct fio_xd_options *o = data;
    return fio_xd_check_out_path("xd_stats_log", path) ||
           fio_xd_store(&o->stats_log, -1, "xd_stats_log", path);
}

static const struct fio_option fio_xd_own_options[] = {
    {
        .name = "xd_config",
        .lname = "xdevice config file",
        .type = FIO_OPT_STR,
        .cb = fio_xd_opt_config,
        .help = "Path of an xdevice INI file; xd_KEY options override its keys",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "xd_stats",
        .lname = "xdevice stats file",
        .type = FIO_OPT_STR,
        .cb = fio_xd_opt_stats,
        .help = "Write xdevice's statistics for the run to this JSON file (atomically, all jobs)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "xd_stats_log",
        .lname = "xdevice periodic stats file",
        .type = FIO_OPT_STR,
        .cb = fio_xd_opt_stats_log,
        .help = "Append one JSON line per job every xd_stats_interval seconds to this file "
                "(default: the xd_stats file's name plus .jsonl)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "xd_stats_interval",
        .lname = "xdevice periodic stats interval",
        .type = FIO_OPT_STR,
        .cb = fio_xd_opt_interval,
        .help = "Seconds between periodic stats records (short for xd_metrics_interval_sec; "
                "0: none), written to xd_stats_log",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "xd_type",
        .lname = "xdevice storage type",
        .type = FIO_OPT_STR,
        .cb = fio_xd_opt_type,
        .help = "Storage type, short for xd_storage_type: regular|mmap|direct|tmpfs|block|sparse|compressed|hybrid",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
};
#define FIO_XD_OWN_OPTIONS (sizeof(fio_xd_own_options) / sizeof(fio_xd_own_options[0]))

/* xd_KEY's entry: help carries the key's default and allowed values. */
static int fio_xd_key_option(struct fio_option *o, unsigned k)
{
    const struct xd_key_desc *d = xd_config_key_desc(k);
    char *lname = NULL, *help = NULL;
    struct fio_xd_key *key = &fio_xd_keys[k];
    if (asprintf(&key->option, "xd_%s", d->name) < 0 ||
        asprintf(&key->origin, "option xd_%s", d->name) < 0 ||
        asprintf(&lname, "xdevice %s", d->name) < 0 ||
        asprintf(&help, "%s [INI [%s]; default %s%s%s]", d->help, d->section,
                 d->def[0] ? d->def : "(empty)", d->allowed ? "; one of " : "",
                 d->allowed ? d->allowed : "") < 0)
        return -ENOMEM;
    o->name = key->option;
    o->lname = lname;
    o->help = help;
    o->type = FIO_OPT_STR;
    o->cb = fio_xd_key_cbs[k];
    o->category = FIO_OPT_C_ENGINE;
    o->group = FIO_OPT_G_INVALID;
    return 0;
}

/* The engine's own options, then xd_KEY for every schema key, in schema
 * order (--enghelp lists them so); kept for the life of the process. */
static int fio_xd_build_options(char *err, size_t errlen)
{
    static struct fio_option *table;
    unsigned nkeys = xd_config_key_count();
    if (nkeys > FIO_XD_MAX_KEYS) {
        snprintf(err, errlen,
                 "the library has %u config keys, the engine room for %u; raise FIO_XD_MAX_KEYS",
                 nkeys, FIO_XD_MAX_KEYS);
        return -E2BIG;
    }
    table = calloc(FIO_XD_OWN_OPTIONS + nkeys + 1, sizeof(*table)); /* ends with a NULL name */
    fio_xd_keys = calloc(nkeys, sizeof(*fio_xd_keys));
    if (!table || !fio_xd_keys)
        goto oom;
    memcpy(table, fio_xd_own_options, sizeof(fio_xd_own_options));
    for (unsigned k = 0; k < nkeys; k++)
        if (fio_xd_key_option(&table[FIO_XD_OWN_OPTIONS + k], k))
            goto oom;
    ioengine.options = table;
    ioengine.option_struct_size = offsetof(struct fio_xd_options, values) + nkeys * sizeof(char *);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}
/* --- version guard ---------------------------------------------------------
 * fio checks only FIO_IOOPS_VERSION, yet thread_data, io_u and fio_file change
 * layout between releases that share it. An engine compiled against other
 * headers would read the wrong fields, so refuse a different fio outright. */
bool fio_xd_unusable; /* said once, when the engine was loaded */

/* Runs when fio loads the engine, before it parses the engine's options. On a
 * mismatch there is no option table (struct fio_option may differ too), the
 * reason is printed once here, and init fails every job. */
__attribute__((constructor)) static void fio_xd_load(void)
{
    const char *running = dlsym(RTLD_DEFAULT, "fio_version_string");
    char err[XD_ERRLEN];
    fio_xd_unusable = true;
    if (!running || strcmp(running, XD_FIO_BUILT_VERSION))
        fprintf(stderr, "xdevice: engine built for %s but loaded into %s; rebuild it with make\n",
                XD_FIO_BUILT_VERSION, running ? running : "an unknown fio");
    else if (fio_xd_build_options(err, sizeof(err)))
        fprintf(stderr, "xdevice: cannot build the engine's option table: %s\n", err);
    else
        fio_xd_unusable = false;
}

/* --- a job's config ----------------------------------------------------------- */

/* A short name's value as an override, unless the key's own option says
 * otherwise. */
static int fio_xd_alias_override(const struct fio_xd_options *o, int a,
                                 struct xd_config_override *ov, unsigned *n, char *err,
                                 size_t errlen)
{
    int key = fio_xd_key_index(fio_xd_aliases[a].key);
    const char *alias = o->aliases[a], *full = key >= 0 ? o->values[key] : NULL;
    char shown[2][XD_ESCAPE_LEN];
    if (!alias || key < 0)
        return 0;
    if (full && strcmp(alias, full)) {
        snprintf(err, errlen, "option %s=%s conflicts with option xd_%s=%s: both set %s; allowed: one of them",
                 fio_xd_aliases[a].name, xd_escape(alias, shown[0], sizeof(shown[0])),
                 fio_xd_aliases[a].key, xd_escape(full, shown[1], sizeof(shown[1])), fio_xd_aliases[a].key);
        return -EINVAL;
    }
    if (!full)
        ov[(*n)++] = (struct xd_config_override){fio_xd_aliases[a].key, alias,
                                                 fio_xd_aliases[a].origin};
    return 0;
}

/* fio's own options that say how files are opened, and the key of
 * xdevice's that does the same: direct=1 (or buffered=0) is O_DIRECT,
 * sync=1 or sync=dsync O_SYNC (use_sync_writes; O_DSYNC's data part and
 * more). Silently buffered I/O under direct=1 would measure the page
 * cache. A type that cannot bypass it (its data lives in memory, or in a
 * container it reads through the page cache) runs buffered with a note,
 * as fio's own mmap engine does (fio_xd_build_config). */
static int fio_xd_fio_override(const struct thread_options *to, int a,
                               const struct fio_xd_options *o, struct xd_config_override *ov,
                               unsigned *n, char *err, size_t errlen)
{
    static const struct {
        const char *key, *option, *origin;
    } map[] = {{"use_direct_io", "direct=1", "fio option direct=1"},
               {"use_sync_writes", "sync", "fio option sync"}};
    bool on = a == 0 ? to->odirect && !o->direct_refused : to->sync_io != 0;
    int key = fio_xd_key_index(map[a].key);
    const char *mine = key >= 0 ? o->values[key] : NULL;
    if (!on || key < 0)
        return 0;
    if (mine && strcmp(mine, "true") && strcmp(mine, "1")) {
        snprintf(err, errlen, "option xd_%s=%s conflicts with %s; allowed: one of them",
                 map[a].key, mine, map[a].option);
        return -EINVAL;
    }
    if (!mine)
        ov[(*n)++] = (struct xd_config_override){map[a].key, "true", map[a].origin};
    return 0;
}

/* The job's xd_ options as overrides of the INI file, in key order, then
 * the short names, then what fio's own options imply (fio_xd_fio_override;
 * to: NULL for none): *out (free it) and *n; -EINVAL with one line in err
 * when two of them conflict. The strings are the options' own, which live
 * as long as the process (fio_xd_keep). */
int fio_xd_overrides(const struct fio_xd_options *o, const struct thread_options *to,
                            struct xd_config_override **out, unsigned *n, char *err,
                            size_t errlen)
{
    unsigned nkeys = xd_config_key_count();
    struct xd_config_override *ov = calloc(nkeys + FIO_XD_ALIASES + 2, sizeof(*ov));
    int rc = 0;
    *n = 0;
    if (!ov) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (unsigned k = 0; k < nkeys; k++)
        if (o->values[k])
            ov[(*n)++] = (struct xd_config_override){xd_config_key_name(k), o->values[k],
                                                     fio_xd_keys[k].origin};
    for (int a = 0; !rc && a < FIO_XD_ALIASES; a++)
        rc = fio_xd_alias_override(o, a, ov, n, err, errlen);
    for (int a = 0; !rc && to && a < 2; a++)
        rc = fio_xd_fio_override(to, a, o, ov, n, err, errlen);
    if (rc) {
        free(ov);
        return rc;
    }
    *out = ov;
    return 0;
}

static int fio_xd_build_with(struct fio_xd_options *o, const struct thread_options *to,
                             struct xd_config **out, char *err, size_t errlen)
{
    struct xd_config_override *ov;
    unsigned n;
    int rc = fio_xd_overrides(o, to, &ov, &n, err, errlen);
    if (rc)
        return rc;
    rc = xd_config_build(out, o->config, ov, n, err, errlen);
    free(ov);
    return rc;
}

/* Defaults, then the INI file, then xd_ options, then what fio's own
 * options imply: later wins. When only fio's direct=1 is refused (the type
 * cannot bypass the page cache), the job runs without it and
 * o->direct_why keeps the line for setup's note. On failure err holds the
 * one line to print. */
int fio_xd_build_config(struct thread_data *td, struct xd_config **out, char *err,
                               size_t errlen)
{
    struct fio_xd_options *o = td->eo;
    int rc = fio_xd_build_with(o, &td->o, out, err, errlen);
    if (rc != -EINVAL || !td->o.odirect || o->direct_refused)
        return rc;
    o->direct_refused = true;
    snprintf(o->direct_why, sizeof(o->direct_why), "%s", err);
    if (!(rc = fio_xd_build_with(o, &td->o, out, err, errlen)))
        return 0;
    o->direct_refused = false; /* not direct=1's fault: its line is the one to print */
    return fio_xd_build_with(o, &td->o, out, err, errlen);
}

/* Where periodic records go: xd_stats_log, else xd_stats's name + ".jsonl". */
char *fio_xd_stats_log_path(const struct fio_xd_options *o)
{
    char *path = NULL;
    if (o->stats_log)
        return strdup(o->stats_log);
    if (o->stats && asprintf(&path, "%s.jsonl", o->stats) < 0)
        return NULL;
    return path;
}
