/* xdevice_engine.c - the fio adapter over libxdevice, loaded with
 * ioengine=external:build/xdevice.so. It only translates: fio's hooks to
 * xd_submit/xd_commit/xd_reap, fio's options to config keys. Everything about
 * storage lives in backends/.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"

#include "../backends/xdevice.h"

#ifndef XD_FIO_BUILT_VERSION
#error "XD_FIO_BUILT_VERSION must name the fio source the engine is compiled against"
#endif

/* --- messages ---------------------------------------------------------------
 * fio 3.33's log_info writes to fio's output stream, the one its JSON goes to
 * (stdout or --output=FILE), and log_err copies each line into an --output
 * file as well; in client/server mode both travel to the client, which
 * prints them into its own output stream. A notice, or an error while fio's
 * report is still to come, would break the JSON there. So the engine writes
 * its lines itself, to stderr, in one write(2) each (job processes leave
 * with _exit: nothing may wait in a stdio buffer). Only an error that stops
 * a job on a server goes through log_err, so that the client sees why. */
static void fio_xd_vsay(bool fatal, const char *fmt, va_list ap)
{
    char *line = NULL;
    int len = vasprintf(&line, fmt, ap);
    if (len < 0)
        return;
    if (fatal && is_backend)
        log_err("%s", line);
    else if (write(STDERR_FILENO, line, (size_t)len) < 0) {
        /* nowhere left to say it */
    }
    free(line);
}

/* s escaped for a message (one use per message: the buffer is per thread). */
static const char *fio_xd_shown(const char *s)
{
    static __thread char buf[XD_ESCAPE_LEN];
    return xd_escape(s, buf, sizeof(buf));
}

/* A notice: the run goes on. */
static void __attribute__((format(printf, 1, 2))) fio_xd_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fio_xd_vsay(false, fmt, ap);
    va_end(ap);
}

/* An error that fails a job or the run. */
static void __attribute__((format(printf, 1, 2))) fio_xd_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fio_xd_vsay(true, fmt, ap);
    va_end(ap);
}

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
enum { FIO_XD_ALIAS_TYPE, FIO_XD_ALIAS_INTERVAL, FIO_XD_ALIASES };
static const struct {
    const char *name;
    const char *key;
    const char *origin;
} fio_xd_aliases[FIO_XD_ALIASES] = {
    [FIO_XD_ALIAS_TYPE] = {"xd_type", "storage_type", "option xd_type"},
    [FIO_XD_ALIAS_INTERVAL] = {"xd_stats_interval", "metrics_interval_sec",
                               "option xd_stats_interval"},
};

struct fio_xd_options {
    void *pad;
    char *config;
    char *stats;
    char *stats_log;
    char *aliases[FIO_XD_ALIASES];   /* by FIO_XD_ALIAS_* */
    unsigned stats_jobs;             /* not an option: see fio_xd_stats_jobs */
    /* not an option: fio's direct=1 is more than the type can do, and the
     * job runs buffered (fio_xd_build_config); direct_why says why */
    bool direct_refused;
    char direct_why[XD_ERRLEN];
    char *values[];                  /* by key index; option_struct_size counts them */
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

extern struct ioengine_ops ioengine; /* defined at the bottom, as fio expects */

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
static bool fio_xd_unusable; /* said once, when the engine was loaded */

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

/* --- per-job state -------------------------------------------------------- */

/* f->engine_pos: 0 until the job opens the file (fio_xd_unlink_file tells
 * fio's own removals before a layout by it); then used; removed once the
 * job removed it (unlink_each_loop). */
enum { FIO_XD_USED = 1, FIO_XD_REMOVED = 2 };

struct fio_xd_job {
    struct xd_dev *dev;
    struct xd_req *reqs;   /* one per io_u, by io_u->index */
    unsigned nreqs;
    struct xd_req **events;
    /* Async jobs tell fio every request is queued, even one the chain
     * completed inline (see fio_xd_queue); those wait here for getevents. */
    bool all_queued;
    /* Driven as a sync engine at iodepth > 1, without fio's FIO_SYNCIO
     * (whose note, "queue depth will be capped at 1", would go to the
     * stream fio's JSON goes to): queue stamps issue_time itself and
     * records slat, so slat + clat = lat as for the async jobs. */
    bool stamps_issue;
    /* Requests completed inline, oldest first: ready[0 .. nready). The list
     * slides along ready_buf (twice the depth) as getevents takes from its
     * head (fio_xd_ready_room). */
    struct xd_req **ready, **ready_buf, **ready_end;
    unsigned nready;
    unsigned in_device;    /* queued in the device (XD_QUEUED), not reaped yet */
    bool unsent;           /* a request queued in the device since the last xd_commit */
    bool device_turn;      /* getevents looks at the device's completions first */
    struct io_u **issued;  /* queued since the last commit, for slat */
    unsigned nissued;
    int sync_fd;           /* every file's f->fd: see fio_xd_open_file */
    unsigned pre_read;     /* files pre-read so far (fio_xd_pre_read) */
    /* Periodic stats and config reloads (the library's monitor) happen in
     * the job's own thread, between I/Os (queue and getevents poll it),
     * because the device is not safe for a second thread. */
    struct xd_monitor *monitor;
    /* the monitor may still act (xd_monitor_idle): polled only then, since
     * a poll per request was about 25 instructions per 4k read of make
     * perf's async rows for a monitor with nothing to do */
    bool monitor_busy;
    char told[256]; /* the device's notice last printed (fio_xd_tell_notice) */
    bool stats_refused; /* xd_stats refused at init: nothing is published */
    /* ramp_time set and not over yet: fio leaves the ramp's I/O out of its
     * figures, and xd_stats does too (xd_stats_start_run once it ends) */
    bool in_ramp;
    /* the type's files are made by the engine (its own format, or data
     * kept elsewhere: XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE), in setup
     * or at open, never laid out by fio */
    bool engine_lays_out;
};

/* The device's notice, once per change: at setup (how a tmpfs came to be
 * used), after each file open (a mirror copy refused or degraded there) and
 * at each file close (io_uring refused to register the job's buffers at
 * its first request). Jobs of one section share their files: the first
 * tells. */
static void fio_xd_tell_notice(struct thread_data *td, struct fio_xd_job *job)
{
    const char *notice = xd_dev_notice(job->dev);
    if (!notice || !strncmp(notice, job->told, sizeof(job->told) - 1))
        return;
    snprintf(job->told, sizeof(job->told), "%s", notice);
    if (td->subjob_number == 0)
        fio_xd_note("xdevice: %s\n", notice);
}

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
static int fio_xd_overrides(const struct fio_xd_options *o, const struct thread_options *to,
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
static int fio_xd_build_config(struct thread_data *td, struct xd_config **out, char *err,
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

/* --- periodic stats and config reload --------------------------------------
 * The library's monitor does both in the job's own thread between I/Os:
 * fio_xd_tick, called from queue and getevents, polls it, and the engine
 * prints what it has to say. */

/* Where periodic records go: xd_stats_log, else xd_stats's name + ".jsonl". */
static char *fio_xd_stats_log_path(const struct fio_xd_options *o)
{
    char *path = NULL;
    if (o->stats_log)
        return strdup(o->stats_log);
    if (o->stats && asprintf(&path, "%s.jsonl", o->stats) < 0)
        return NULL;
    return path;
}

/* The monitor's notes, one line each on stderr (a job process leaves with
 * _exit: nothing may wait in a stdio buffer). */
static void fio_xd_tell(struct fio_xd_job *job)
{
    char *line;
    while ((line = xd_monitor_note(job->monitor))) {
        fio_xd_note("xdevice: %s\n", line);
        free(line);
    }
}

/* fio ends a job's ramp_time when it looks at a completion past it, and
 * counts from that completion on; the device's run starts at the next
 * queue or getevents, so xd_stats counts what fio does but for the
 * requests completed in between (at most iodepth). */
static void fio_xd_ramp_ended(struct fio_xd_job *job)
{
    job->in_ramp = false;
    if (xd_stats_start_run(job->dev) == -ENOMEM)
        fio_xd_note("xdevice: out of memory: xd_stats counts ramp_time's I/O too\n");
}

static inline void fio_xd_tick(struct thread_data *td, struct fio_xd_job *job)
{
    if (job->in_ramp && td->ramp_time_over)
        fio_xd_ramp_ended(job);
    if (job->monitor_busy && xd_monitor_poll(job->monitor)) {
        job->monitor_busy = !xd_monitor_idle(job->monitor); /* the watch may have ended */
        fio_xd_tell(job);
    }
}

/* After xd_open: follow xd_config (the first job of its section tells of
 * reloads) and write periodic records, to the log setup made sure of.
 * 0, or the errno of what failed (said in one line). */
static int fio_xd_monitor_open(struct thread_data *td, struct fio_xd_job *job)
{
    struct fio_xd_options *o = td->eo;
    struct xd_config_override *ov = NULL;
    char err[XD_ERRLEN], *log = fio_xd_stats_log_path(o);
    unsigned n = 0;
    int rc = fio_xd_overrides(o, &td->o, &ov, &n, err, sizeof(err));
    struct xd_monitor_opts mo = {
        .config_path = o->config,
        .overrides = ov,
        .n_overrides = n,
        .stats_log = log,
        .name = td->o.name,
        .jobnum = td->subjob_number,
        .config_label = "xd_config",
        .stats_log_label = "xd_stats_log",
        .quiet_reloads = td->subjob_number != 0,
    };
    if (!rc)
        rc = xd_monitor_open(&job->monitor, job->dev, &mo, err, sizeof(err));
    free(ov);
    free(log);
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        return rc < 0 ? -rc : EINVAL;
    }
    job->monitor_busy = !xd_monitor_idle(job->monitor);
    fio_xd_tell(job);
    return 0;
}

/* sync_file_range has no xdevice request: its range and flags mean
 * nothing to most layers (a write-back cache, a compressed container, a
 * tmpfs copy hold data no range of the caller's file names), and its
 * strongest form still promises nothing durable. Each one is served as an
 * fdatasync of the file, which every layer honours: never weaker, only
 * slower than fio's own engines' call. Said once, naming the option as it
 * was written, "write:8" or "wait_before,write,wait_after:1" (fio keeps
 * the flags and the count). */
static void fio_xd_note_sync_file_range(const struct thread_data *td)
{
    char value[64];
    size_t len = sizeof(value);
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {{SYNC_FILE_RANGE_WAIT_BEFORE, "wait_before"},
                 {SYNC_FILE_RANGE_WRITE, "write"},
                 {SYNC_FILE_RANGE_WAIT_AFTER, "wait_after"}};
    size_t at = 0;
    value[0] = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && at < len; i++)
        if (td->o.sync_file_range & names[i].flag)
            at += (size_t)snprintf(value + at, len - at, "%s%s", at ? "," : "", names[i].name);
    if (at < len)
        snprintf(value + at, len - at, ":%u", td->sync_file_range_nr);
    fio_xd_note("xdevice: sync_file_range=%s: each is served as an fdatasync of the file (xdevice has no range sync: its layers hold data no range names); never weaker, but slower than fio's engines' sync_file_range, which promises nothing durable\n",
                value);
}

/* experimental_verify replays the job's offsets and expects each block's
 * header to carry the write at that place in the replay; without the
 * random map a block written twice holds its last write, and the check
 * fails ("bad header numberio"), for psync as for xdevice. fio's own
 * io_uring and libaio engines pass such jobs only because they build the
 * kernel request before fio turns the replayed write into a read: their
 * verify pass writes the expected data and checks it against itself.
 * Said once, before the failure reads as corruption. */
static bool fio_xd_verify_expects_first_writes(struct thread_data *td)
{
    const struct thread_options *o = &td->o;
    return o->experimental_verify && o->norandommap && o->do_verify && o->verify != 0 /* VERIFY_NONE */ &&
           td_write(td) && td_min_bs(td) == td_max_bs(td) && !o->time_based;
}

/* Refuse job shapes the chain cannot serve (what needs the device; setup
 * refused the rest), with one line each: 0, or EOPNOTSUPP. */
static int fio_xd_check_job(struct thread_data *td, struct xd_dev *dev)
{
    const struct xd_config *cfg = xd_dev_config(dev);
    const char *type = xd_config_get(cfg, "storage_type");
    if (td_trim(td) && !(xd_dev_caps(dev) & XD_CAP_TRIM)) {
        fio_xd_err("xdevice: rw=%s: storage_type=%s does not serve trims%s\n",
                td->o.td_ddir & TD_DDIR_RAND ? "randtrim" : "trim", type,
                (xd_config_caps(cfg) & XD_CFG_TRIM_KEY) ? "; set xd_enable_trim=1" : "");
        return EOPNOTSUPP;
    }
    return 0;
}

/* Whether every file the job names is one the device serves inline in any
 * async mode, given the job's largest write (xd_dev_caps_for: the regular
 * and tmpfs types' files on a tmpfs, unless io_uring is to copy long writes
 * on a worker). Such requests complete within queue whatever fio is told,
 * so telling fio they were queued bought nothing but its async bookkeeping
 * per request (about 5% of a cached 4k read). A file the job opens later
 * than fio's list says is still served right, waited for in queue like
 * the rest. */
static bool fio_xd_files_inline(struct thread_data *td, struct xd_dev *dev)
{
    uint64_t largest_write = td_write(td) ? td->o.max_bs[DDIR_WRITE] : 0;
    struct fio_file *f;
    unsigned i;
    if (!td->files_index)
        return false;
    for_each_file(td, f, i)
        if (xd_dev_caps_for(dev, f->file_name, largest_write) & XD_CAP_ASYNC)
            return false;
    return true;
}

/* init failed (said in one line already): the job's error, which fio
 * prints at its end (err=N/..., func=...) and puts in its JSON, is what
 * failed, as fio's own engines record theirs. Otherwise it would be err=1
 * beside whatever fio noted first, such as the ENOENT of a file it was
 * about to lay out. */
static int fio_xd_init_failed(struct thread_data *td, int err, const char *func)
{
    td_verror(td, err, func);
    return 1;
}

static int fio_xd_init(struct thread_data *td)
{
    struct fio_xd_job *job;
    struct xd_config *cfg;
    char err[XD_ERRLEN];

    if (fio_xd_unusable) /* said once, when the engine was loaded */
        return fio_xd_init_failed(td, EINVAL, "the engine's fio version");
    job = calloc(1, sizeof(*job));
    if (!job)
        return fio_xd_init_failed(td, ENOMEM, "calloc");
    job->sync_fd = -1;
    job->in_ramp = td->o.ramp_time != 0;
    td->io_ops_data = job; /* cleanup frees it from here on */
    if (fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        fio_xd_err("xdevice: %s\n", err);
        return fio_xd_init_failed(td, EINVAL, "xdevice config");
    }
    unsigned depth = td->o.iodepth ? td->o.iodepth : 1;
    const char *mode = xd_config_get(cfg, "async");
    bool asked_async = mode && strcmp(mode, "sync") != 0;
    const char *type = xd_config_get(cfg, "storage_type");
    bool mmap_type = type && !strcmp(type, "mmap");
    job->engine_lays_out = xd_config_caps(cfg) & (XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE);
    int rc = xd_open(&job->dev, cfg, depth, err, sizeof(err));
    xd_config_free(cfg);
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        return fio_xd_init_failed(td, -rc, "xd_open");
    }
    if ((rc = fio_xd_check_job(td, job->dev)))
        return fio_xd_init_failed(td, rc, "xdevice job check");
    /* before the run, not after it: a stats file that cannot be written
     * would otherwise fail the job once its work is done */
    struct fio_xd_options *eo = td->eo;
    if (eo->stats && (rc = xd_stats_publish_check(job->dev, eo->stats, err, sizeof(err)))) {
        fio_xd_err("xdevice: %s\n", err);
        job->stats_refused = true;
        return fio_xd_init_failed(td, -rc, "xd_stats");
    }
    if ((rc = fio_xd_monitor_open(td, job)))
        return fio_xd_init_failed(td, rc, "xd_monitor_open");
    job->nreqs = depth;
    job->reqs = calloc(depth, sizeof(*job->reqs));
    job->events = calloc(depth, sizeof(*job->events));
    job->ready = job->ready_buf = calloc(2 * (size_t)depth, sizeof(*job->ready));
    job->ready_end = job->ready_buf + 2 * (size_t)depth;
    job->issued = calloc(depth, sizeof(*job->issued));
    if (!job->reqs || !job->events || !job->ready || !job->issued)
        return fio_xd_init_failed(td, ENOMEM, "calloc");
    job->sync_fd = memfd_create("xdevice-fsync", MFD_CLOEXEC);
    if (job->sync_fd < 0) {
        rc = errno;
        log_err("xdevice: memfd_create: %s\n", strerror(rc));
        return fio_xd_init_failed(td, rc, "memfd_create");
    }
    /* Engine flags are per job (td->flags) from here on. FIO_SYNCIO makes fio
     * cap iodepth at 1: say so only when true. FIO_RAWIO makes fio
     * page-align its buffers, as it does for direct=1, so O_DIRECT requests
     * need no bounce buffer. */
    unsigned caps = xd_dev_caps(job->dev);
    /* At iodepth=1 nothing can overlap, so an async device is driven as a
     * sync engine (queue waits for its one request): fio's async
     * bookkeeping per request (issue times, slat, a getevents call) is then
     * skipped, as it is for psync. So is it when every file of the job
     * would complete each request inline anyway (fio_xd_files_inline).
     * Except for a verify job that asked for an async mode: it is driven
     * as fio's libaio and io_uring engines drive theirs, every request
     * queued, at any depth and on any file. fio keeps its books on the two
     * paths differently (do_io counts a request's bytes as issued only
     * when it was queued), and some jobs verify on one path and not on the
     * other: rw=rw:8k with bs_unaligned=1 and loops=2 fails on fio's psync
     * and mmap engines and passes on its libaio and io_uring ones, and it
     * failed the same way on every type driven as a sync engine here. Not
     * with experimental_verify: fio's replay then gets a randrw job's
     * directions wrong, which its libaio and io_uring engines hide by
     * writing during the verify pass and its posixaio engine, queued as
     * xdevice would be, fails (t0026, tests/e2e/test_conformance.py);
     * driven as a sync engine such a time_based job passes, since fio
     * starts no verify pass for it. Nor on the mmap type, whose
     * counterpart is fio's mmap engine, a sync engine: its requests never
     * stay in flight, and fio's books on the two paths part the other way
     * too (rw=randrw, bs_unaligned=1, time_based: fio's mmap and psync
     * engines pass it, its libaio and io_uring ones fail to verify it, and
     * so did the mmap type driven queued). */
    bool verifies = td->o.verify != 0 /* VERIFY_NONE */ && !td->o.experimental_verify;
    bool async = (asked_async && verifies && !mmap_type) || ((caps & XD_CAP_ASYNC) && depth > 1);
    job->all_queued = async && (verifies || !fio_xd_files_inline(td, job->dev));
    job->stamps_issue = async && !job->all_queued;
    if (!async)
        td->flags |= (unsigned long long)FIO_SYNCIO << TD_ENG_FLAG_SHIFT;
    else /* issue_time is the commit's, as for fio's libaio and io_uring
          * engines, or queue's own (stamps_issue) */
        td->flags |= (unsigned long long)FIO_ASYNCIO_SETS_ISSUE_TIME << TD_ENG_FLAG_SHIFT;
    if (job->all_queued) /* fio stamps a trim's issue_time: fio_xd_trims_inline */
        td->flags |= (unsigned long long)FIO_ASYNCIO_SYNC_TRIM << TD_ENG_FLAG_SHIFT;
    if (caps & XD_CAP_DIRECT_IO)
        td->flags |= (unsigned long long)FIO_RAWIO << TD_ENG_FLAG_SHIFT;
    fio_xd_tell_notice(td, job);
    return 0;
}

static int fio_xd_io_u_init(struct thread_data *td, struct io_u *io_u)
{
    struct fio_xd_job *job = td->io_ops_data;
    /* io_u->index shares a union with engine_data: keep state by index */
    if (io_u->index >= job->nreqs) {
        fio_xd_err("xdevice: io_u index %u beyond iodepth %u\n", io_u->index, job->nreqs);
        return 1;
    }
    job->reqs[io_u->index].user = io_u;
    return 0;
}

/* After fio has made the job's buffers (init_io_u runs between init and
 * post_init): tell the device where they lie, from the lowest io_u buffer
 * to the end of the highest, so that io_uring mode sends the reads and
 * writes into them as fixed buffers (xd_register_memory). Not for a job
 * that replays an I/O log: there fio frees its buffers and makes them again
 * mid-run when the log asks for a larger block (iolog.c, blktrace.c), and
 * I/O into registered pages freed under it would land in the old pages. */
static int fio_xd_post_init(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    uintptr_t low = UINTPTR_MAX, high = 0, bs = (uintptr_t)td_max_bs(td);
    if (td->o.read_iolog_file)
        return 0;
    for (unsigned i = 0; i < job->nreqs; i++) {
        const struct io_u *io_u = job->reqs[i].user;
        if (!io_u || !io_u->buf)
            return 0; /* no data buffers (fio's FIO_NOIO, or a job that moves no data) */
        uintptr_t at = (uintptr_t)io_u->buf;
        low = at < low ? at : low;
        high = at + bs > high ? at + bs : high;
    }
    if (high > low)
        xd_register_memory(job->dev, (void *)low, high - low);
    return 0;
}

static const enum xd_op fio_xd_ops_by_ddir[] = {
    [DDIR_READ] = XD_OP_READ,  [DDIR_WRITE] = XD_OP_WRITE,          [DDIR_TRIM] = XD_OP_TRIM,
    [DDIR_SYNC] = XD_OP_FSYNC, [DDIR_DATASYNC] = XD_OP_FDATASYNC,
    [DDIR_SYNC_FILE_RANGE] = XD_OP_FDATASYNC, /* fio_xd_note_sync_file_range */
};

/* A failed request's error into its io_u; a data error the library can
 * explain (which chunk of which file is corrupt) is said once. */
static __attribute__((noinline, cold)) void fio_xd_fail(struct fio_xd_job *job,
                                                        const struct xd_req *req,
                                                        struct io_u *io_u)
{
    char line[XD_ERRLEN];
    io_u->error = (unsigned)-req->result;
    if (!xd_dev_take_error(job->dev, line, sizeof(line)))
        fio_xd_err("xdevice: %s\n", line);
}

/* Copy a finished request's outcome into its io_u. Inline, the failure
 * apart: it runs once per request, and its call was about 10 of its
 * instructions. */
static inline struct io_u *fio_xd_finish(struct fio_xd_job *job, struct xd_req *req)
{
    struct io_u *io_u = req->user;
    if (req->result < 0) {
        fio_xd_fail(job, req, io_u);
    } else {
        io_u->error = 0;
        if (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE)
            io_u->resid = io_u->xfer_buflen - (unsigned long long)req->result;
    }
    return io_u;
}

/* Room for want more requests at the ready list's tail (want at most
 * nreqs - nready: fio never has more than iodepth requests out). The list
 * moves back to the front of ready_buf only when its tail would pass the
 * end, at most once per iodepth requests taken: taking from its head used
 * to move the rest down every time, a memmove of up to iodepth pointers per
 * request (about 30 instructions per 4k read of make perf's io_uring row,
 * whose cached reads complete inline). */
static void fio_xd_ready_room(struct fio_xd_job *job, unsigned want)
{
    if (job->ready + job->nready + want > job->ready_end) {
        memmove(job->ready_buf, job->ready, job->nready * sizeof(*job->ready));
        job->ready = job->ready_buf;
    }
}

static inline void fio_xd_ready_push(struct fio_xd_job *job, struct xd_req *req)
{
    struct xd_req **tail = job->ready + job->nready;
    if (tail == job->ready_end) {
        fio_xd_ready_room(job, 1);
        tail = job->ready + job->nready;
    }
    *tail = req;
    job->nready++;
}

/* A sync job's one request went to the kernel's queue (io_uring at
 * iodepth=1): send it and wait for it here. A failure to send or reap
 * completes it with that error. */
static void fio_xd_wait_one(struct fio_xd_job *job, struct xd_req *req)
{
    struct xd_req *done = NULL;
    int rc = xd_commit(job->dev);
    while (rc >= 0 && !done) {
        rc = xd_reap(job->dev, &done, 1, 1, NULL);
        if (rc == -EINTR)
            rc = 0;
    }
    if (rc < 0)
        req->result = rc;
    else if (done != req) /* only one request is ever in flight here */
        req->result = -EIO;
}

/* Send req and wait for it while an async job's other requests are in
 * flight: those the device finishes meanwhile join the ready list, where
 * getevents hands them to fio (it has room: fio never has more than
 * iodepth requests out). A failure to send or reap completes req with
 * that error. */
static void fio_xd_wait_among(struct fio_xd_job *job, struct xd_req *req)
{
    int rc = xd_commit(job->dev);
    while (rc >= 0) {
        fio_xd_ready_room(job, job->nreqs - job->nready);
        struct xd_req **got = job->ready + job->nready;
        rc = xd_reap(job->dev, got, 1, job->nreqs - job->nready, NULL);
        if (rc == -EINTR)
            rc = 0;
        unsigned n = rc > 0 ? (unsigned)rc : 0, at = 0;
        while (at < n && got[at] != req)
            at++;
        if (at < n) /* req: out of the list, the others keep their order */
            memmove(got + at, got + at + 1, (--n - at) * sizeof(*got));
        job->nready += n;
        job->in_device -= n < job->in_device ? n : job->in_device;
        if (rc > 0 && n < (unsigned)rc)
            return;
    }
    req->result = rc;
}

/* fio's libaio and io_uring engines trim synchronously
 * (FIO_ASYNCIO_SYNC_TRIM): after the requests staged before it are sent,
 * the trim completes within queue, and fio, which counts a pass's bytes
 * only for queued requests (backend.c, io_queue_event), does not count
 * its bytes. Answered queued, a trimwrite job's trim_backlog trims ended
 * its pass early: 905216 of the 1048576 bytes written that fio's libaio
 * engine writes (trim_percentage=30, trim_backlog=8, iodepth=8). So an
 * async job trims as those engines do. */
static bool fio_xd_trims_inline(const struct fio_xd_job *job, const struct io_u *io_u)
{
    return job->all_queued && io_u->ddir == DDIR_TRIM;
}

/* A read or write that moved no bytes (a read at or past the end of a
 * file: a read_iolog replayed onto a smaller one) is an error to fio's sync
 * path ("full resid", EIO) and a completion of 0 bytes to its async path,
 * so psync fails such a job and libaio and io_uring pass it. A job that
 * asked for an async mode and is driven as a sync engine (iodepth=1, or
 * files that complete inline) hands such a request back through
 * getevents, as those engines would. */
static bool fio_xd_hands_back_empty(const struct fio_xd_job *job, const struct io_u *io_u)
{
    /* the chain's caps last: this runs for every request of a sync job */
    return !io_u->error && io_u->xfer_buflen && io_u->resid == io_u->xfer_buflen &&
           (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE) &&
           (xd_dev_caps(job->dev) & XD_CAP_ASYNC);
}

static enum fio_q_status fio_xd_queue(struct thread_data *td, struct io_u *io_u)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_req *req = &job->reqs[io_u->index];

    fio_ro_check(td, io_u);
    fio_xd_tick(td, job);
    if (io_u->ddir > DDIR_SYNC_FILE_RANGE) {
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    if (fio_xd_trims_inline(job, io_u) && job->nissued)
        return FIO_Q_BUSY; /* as fio's engines: fio commits the staged ones first */
    req->op = fio_xd_ops_by_ddir[io_u->ddir];
    req->file = FILE_ENG_DATA(io_u->file);
    req->buf = io_u->xfer_buf;
    req->len = io_u->xfer_buflen;
    req->off = io_u->offset;
    if (io_u->ddir == DDIR_SYNC_FILE_RANGE)
        req->len = req->off = 0; /* the whole file (fio_xd_note_sync_file_range) */
    bool stamp = job->stamps_issue && fio_fill_issue_time(td);
    if (stamp)
        fio_gettime(&io_u->issue_time, NULL);
    int rc = xd_submit(job->dev, req);
    if (rc == -EBUSY)
        return FIO_Q_BUSY;
    if (stamp) /* its slat, as commit records for a queued one: slat + clat = lat */
        io_u_queued(td, io_u);
    if (fio_xd_trims_inline(job, io_u)) {
        if (rc != XD_DONE)
            fio_xd_wait_among(job, req);
        io_u_mark_submit(td, 1);
        io_u_mark_complete(td, 1);
        fio_xd_finish(job, req);
        return FIO_Q_COMPLETED;
    }
    if (!job->all_queued) {
        if (rc != XD_DONE)
            fio_xd_wait_one(job, req);
        fio_xd_finish(job, req);
        if (fio_xd_hands_back_empty(job, io_u)) {
            io_u_mark_submit(td, 1); /* no slat: the job's other requests have none */
            fio_xd_ready_push(job, req);
            return FIO_Q_QUEUED;
        }
        /* what fio's sync engines do, since this engine has a commit hook */
        io_u_mark_submit(td, 1);
        io_u_mark_complete(td, 1);
        return FIO_Q_COMPLETED;
    }
    /* Async: always FIO_Q_QUEUED, as fio's libaio and io_uring engines do.
     * fio counts a pass's bytes only for queued requests (backend.c,
     * io_queue_event); a mix of inline and queued completions makes a
     * time_based verify pass run past the random map's wrap, so one block is
     * logged twice and verified against its older write. */
    if (rc == XD_DONE) {
        fio_xd_ready_push(job, req);
    } else {
        job->in_device++;
        job->unsent = true;
    }
    job->issued[job->nissued++] = io_u;
    return FIO_Q_QUEUED;
}

/* Issue time and slat of everything queued since the last commit, and the
 * submit-depth histogram, as fio's own async engines record them. */
static void fio_xd_mark_issued(struct thread_data *td, struct fio_xd_job *job)
{
    if (!job->nissued)
        return;
    if (fio_fill_issue_time(td)) {
        struct timespec now;
        fio_gettime(&now, NULL);
        for (unsigned i = 0; i < job->nissued; i++) {
            job->issued[i]->issue_time = now;
            io_u_queued(td, job->issued[i]);
        }
        if (td->o.read_iolog_file)
            td->last_issue = now;
    }
    io_u_mark_submit(td, job->nissued);
    job->nissued = 0;
}

/* fio commits before every wait for completions too, twice per request at
 * depth; with nothing queued in the device since the last commit there is
 * nothing to send (layers send what they stage outside a submit themselves:
 * xd_ops.commit), and the walk down the chain was about 80 instructions
 * per request of the async rows of make perf's instr section. */
static int fio_xd_commit(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    int rc = job->unsent ? xd_commit(job->dev) : 0;
    if (rc >= 0)
        job->unsent = false;
    fio_xd_mark_issued(td, job);
    return rc < 0 ? rc : 0;
}

/* Up to max of the requests completed inline, oldest first, into
 * job->events from index at. */
static unsigned fio_xd_take_ready(struct fio_xd_job *job, unsigned at, unsigned max)
{
    unsigned n = 0;
    while (at + n < max && n < job->nready) {
        job->events[at + n] = job->ready[n];
        n++;
    }
    if (n) {
        job->nready -= n;
        job->ready = job->nready ? job->ready + n : job->ready_buf;
    }
    return n;
}

/* What the device has finished, into job->events from index at. */
static int fio_xd_reap_device(struct fio_xd_job *job, unsigned at, unsigned min, unsigned max,
                              const struct timespec *t)
{
    int rc = xd_reap(job->dev, job->events + at, min, max - at, t);
    if (rc > 0)
        job->in_device -= (unsigned)rc < job->in_device ? (unsigned)rc : job->in_device;
    return rc;
}

/* Inline completions and the device's take turns at the front. fio asks
 * for one event at a time (iodepth_batch_complete_max=0 makes max = min),
 * so taking the inline ones first left a request the device had finished
 * unreaped for as long as inline ones kept coming: 0.5-1.2 s on the
 * compressed type, whose decoded-cache hits complete inline and whose
 * misses go to its worker pool. */
static int fio_xd_getevents(struct thread_data *td, unsigned int min, unsigned int max,
                            const struct timespec *t)
{
    struct fio_xd_job *job = td->io_ops_data;
    unsigned n = 0;
    int rc;
    fio_xd_tick(td, job);
    if (max > job->nreqs)
        max = job->nreqs;
    /* fio may poll (min 0) before it commits: a request handed back here
     * must have its issue time, and may be queued again before the commit */
    fio_xd_mark_issued(td, job);
    job->device_turn = !job->device_turn;
    if (job->device_turn && job->in_device) {
        rc = fio_xd_reap_device(job, 0, 0, max, t); /* min 0: never waits */
        if (rc < 0)
            return rc;
        n = (unsigned)rc;
    }
    n += fio_xd_take_ready(job, n, max);
    if (n == max)
        return (int)n;
    rc = fio_xd_reap_device(job, n, min > n ? min - n : 0, max, t);
    if (rc < 0)
        return n ? (int)n : rc;
    return (int)n + rc;
}

static struct io_u *fio_xd_event(struct thread_data *td, int event)
{
    struct fio_xd_job *job = td->io_ops_data;
    return fio_xd_finish(job, job->events[event]);
}

/* allow_file_create=0, and f is not there: fio's own engines refuse to
 * make it, and so does xdevice, whatever the type (containers are made in
 * setup, tmpfs and hybrid files at open). */
static void fio_xd_refuse_create(struct thread_data *td, const struct fio_file *f,
                                 const char *why)
{
    if (why)
        fio_xd_err("xdevice: %s; allow_file_create=0 forbids creating it\n", why);
    else
        fio_xd_err("xdevice: %s: no such file; allow_file_create=0 forbids creating it\n",
                   fio_xd_shown(f->file_name));
    td_verror(td, ENOENT, "file_create");
}

/* fio's pre_read=1 opens each file before the job's first request and
 * read(2)s f->fd from the job's offset in it for its io_size, to bring the
 * file into memory. The data lives wherever the chain keeps it, so the
 * engine reads that range through the device instead (every level warms:
 * page cache, xdevice's cache, decoded chunks), in fio's read block size;
 * the reads count in xd_stats. fio's own loop then reads zeros from holes
 * of the job's memfd, which is made long enough for it (no memory).
 * fio pre-reads every file once, in order, before any other open after
 * init, so the first open of each in turn is its pre-read. */
static bool fio_xd_pre_read_open(struct thread_data *td, struct fio_xd_job *job,
                                 const struct fio_file *f)
{
    if (!td->o.pre_read || job->pre_read >= td->files_index || f->fileno != (int)job->pre_read)
        return false;
    job->pre_read++;
    return true;
}

static int fio_xd_pre_read(struct thread_data *td, struct fio_xd_job *job, struct xd_file *file,
                           struct fio_file *f)
{
    uint64_t end = f->file_offset + f->io_size;
    size_t bs = td->o.max_bs[DDIR_READ] ? td->o.max_bs[DDIR_READ] : 4096;
    void *buf = NULL; /* aligned, as O_DIRECT chains (direct, block) want */
    if (posix_memalign(&buf, 4096, bs))
        return ENOMEM;
    int rc = 0;
    for (uint64_t off = f->file_offset; off < end && !td->terminate;) {
        size_t len = end - off < bs ? (size_t)(end - off) : bs;
        ssize_t n = xd_read(job->dev, file, buf, len, off);
        if (n <= 0) { /* the end of the file, or an error */
            rc = n < 0 ? (int)-n : 0;
            break;
        }
        off += (uint64_t)n;
    }
    free(buf);
    struct stat st;
    if (!rc && !fstat(job->sync_fd, &st) && (uint64_t)st.st_size < end &&
        ftruncate(job->sync_fd, (off_t)end))
        rc = errno;
    return rc;
}

static int fio_xd_open_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file;
    char err[XD_ERRLEN];
    /* A job that only reads opens what is there, as fio's engines do: fio
     * laid its files out (setup made and laid out the types whose files the
     * engine makes, fio_xd_prepare_container), and one still missing or
     * short reads as missing or short (psync: ENOENT, or EIO at the end),
     * never as zeros the open made up: a file setup did not know (an
     * iolog's), or one the job itself removed (unlink_each_loop). */
    bool reads_only = !td_write(td) && !td_trim(td);
    bool makes = td->o.allow_create && !reads_only;
    unsigned flags = read_only ? XD_OPEN_READONLY /* fio --readonly */
                     : makes ? XD_OPEN_CREATE : 0;
    if (!job) { /* fio opens some files before init; xdevice owns none then */
        fio_xd_err("xdevice: %s: fio opened it before the engine was initialised\n",
                   fio_xd_shown(f->file_name));
        return 1;
    }
    /* fill_device: fio's size for the file is unbounded (-1 plus the
     * offset); the file grows as it is written, so it names none */
    uint64_t size = td->o.fill_device || !makes ? 0 : f->real_file_size;
    int rc = xd_file_open(job->dev, f->file_name, flags, size, &file, err, sizeof(err));
    /* a job that neither writes nor trims: fio's own engines open its files
     * O_RDONLY, so a file it may read but not write (mode 0444, another
     * user's readable file, an immutable file or a read-only mount) serves
     * it; opened for writing first, it failed the job here */
    if ((rc == -EACCES || rc == -EPERM || rc == -EROFS) && !(flags & XD_OPEN_READONLY) &&
        reads_only)
        rc = xd_file_open(job->dev, f->file_name, XD_OPEN_READONLY, size, &file, err,
                          sizeof(err));
    if (rc == -ENOENT && !td->o.allow_create) {
        fio_xd_refuse_create(td, f, err);
        return 1;
    } else if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        td_verror(td, -rc, "xd_file_open");
        return 1;
    }
    FILE_SET_ENG_DATA(f, file);
    f->engine_pos = FIO_XD_USED; /* fio_xd_unlink_file */
    fio_xd_tell_notice(td, job);
    /* damage the open found and let pass (a container's bad map entries:
     * their chunks read EIO), said now rather than at the first such read */
    if (!xd_dev_take_error(job->dev, err, sizeof(err)))
        fio_xd_err("xdevice: %s\n", err);
    if (fio_xd_pre_read_open(td, job, f) && (rc = fio_xd_pre_read(td, job, file, f))) {
        fio_xd_err("xdevice: %s: pre_read failed: %s\n", fio_xd_shown(f->file_name), strerror(rc));
        td_verror(td, rc, "pre_read");
        xd_file_close(job->dev, file);
        FILE_SET_ENG_DATA(f, NULL);
        return 1;
    }
    /* fio calls fsync(f->fd) itself for fsync_on_close, before close_file,
     * and fadvise(f->fd) for fadvise_hint. The data may live anywhere in the
     * chain (a write-back cache, a tmpfs, a container), so f->fd is the job's
     * memfd, where those calls succeed and do nothing, and close_file syncs
     * through the whole chain instead. */
    f->fd = job->sync_fd;
    return 0;
}

static int fio_xd_close_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file = FILE_ENG_DATA(f);
    char line[XD_ERRLEN];
    int rc = 0;
    const char *what = "fsync_on_close";
    if (file && should_fsync(td) && td->o.fsync_on_close)
        rc = -xd_flush(job->dev, file, 0);
    /* data the device had taken but could not write (a write-back cache's
     * blocks on a full file system): the job fails, as its writes would
     * have with fio's own engines */
    int closed = file ? -xd_file_close(job->dev, file) : 0;
    if (!rc && closed) {
        rc = closed;
        what = "close";
    }
    if (closed && !xd_dev_take_error(job->dev, line, sizeof(line)))
        fio_xd_err("xdevice: %s\n", line);
    if (file) /* what the run itself found (io_uring refused the job's buffers) */
        fio_xd_tell_notice(td, job);
    FILE_SET_ENG_DATA(f, NULL);
    f->fd = -1;
    if (rc)
        td_verror(td, rc, what);
    return rc;
}

/* The uid of another user's file or link at the name (in /tmp, say),
 * which is not ours to remove; 0 when there is none. */
static uid_t fio_xd_theirs(const struct fio_file *f)
{
    struct stat st;
    if (lstat(f->file_name, &st) || st.st_uid == geteuid() || st.st_uid == 0)
        return 0;
    return st.st_uid;
}

/* A copy of the mirrored file at path longer than the file: the file lost
 * its tail outside xdevice (truncated, a damaged restore), and the copy may
 * hold the only whole data. Its path goes to copy. Copies in sync have the
 * file's size; a job growing the file grows them with it, never past it. */
static bool fio_xd_copy_longer(struct xd_config *cfg, const char *path, char *copy, size_t len)
{
    const char *dirs = xd_config_get(cfg, "mirror_directories");
    char real[PATH_MAX];
    struct stat p, c;
    if (!dirs || !realpath(path, real) || stat(real, &p) || !S_ISREG(p.st_mode))
        return false;
    const char *name = strrchr(real, '/') + 1;
    bool longer = false;
    for (const char *d = dirs; *d && !longer;) {
        size_t n = strcspn(d, ",");
        snprintf(copy, len, "%.*s/%s", (int)n, d, name);
        longer = !lstat(copy, &c) && S_ISREG(c.st_mode) && c.st_size > p.st_size;
        d += n + (d[n] == ',');
    }
    return longer;
}

/* A mirrored file fio lays out anew (too short for the job: fio removes it
 * and writes it again) goes with its copies, as xd_unlink removes them:
 * they were kept for the file fio is throwing away, and a copy stamped for
 * it would refuse the new file's open (the mirror cannot tell fio's new
 * layout from a lost primary). A primary already missing keeps its copies
 * (nothing says which were its): the open then says what to do. A copy
 * longer than the file refuses the layout (fio_xd_copy_longer). */
static int fio_xd_layout_unlink_mirrored(struct thread_data *td, struct fio_file *f)
{
    struct xd_config *cfg;
    struct xd_dev *dev;
    char err[XD_ERRLEN];
    if (fio_xd_build_config(td, &cfg, err, sizeof(err)))
        return 0; /* said at init */
    const char *mirrored = xd_config_get(cfg, "enable_redundancy");
    int rc = 0;
    char copy[PATH_MAX + 256];
    if (mirrored && !strcmp(mirrored, "true") &&
        fio_xd_copy_longer(cfg, f->file_name, copy, sizeof(copy))) {
        fio_xd_err("xdevice: mirror: %s is shorter than its copy %s (it lost data outside xdevice: truncated?); fio's layout would remove both; refused: to keep the copy's data, move it over the file (mv) and remove any other copies; to lay the file out anew, remove the copies\n",
                   fio_xd_shown(f->file_name), copy);
        xd_config_free(cfg);
        return ESTALE;
    }
    if (mirrored && !strcmp(mirrored, "true") && !xd_open(&dev, cfg, 1, err, sizeof(err))) {
        rc = xd_unlink(dev, f->file_name, err, sizeof(err));
        if (rc && rc != -ENOENT)
            fio_xd_err("xdevice: %s\n", err);
        xd_close(dev);
    }
    xd_config_free(cfg);
    return rc == -ENOENT ? 0 : -rc;
}

/* fio lays a file out by calling this, then open(O_CREAT) by name with
 * no O_EXCL, following links: in a sticky directory such as /tmp another
 * user looping on symlink() wins that gap and has root's fio write the
 * layout into any file. So the name gets a new empty file of ours (what
 * fio makes next anyway), which nobody else may remove there. */
static int fio_xd_layout_unlink(struct thread_data *td, struct fio_file *f)
{
    uid_t theirs = fio_xd_theirs(f);
    if (theirs) {
        fio_xd_err("xdevice: %s: a file of uid %u is at that name; fio's layout would remove it; allowed: a file of yours or root's, or no file\n",
                   fio_xd_shown(f->file_name), (unsigned)theirs);
        return EPERM;
    }
    int rc = fio_xd_layout_unlink_mirrored(td, f);
    if (rc)
        return rc;
    if (unlink(f->file_name) && errno != ENOENT)
        return errno;
    int fd = open(f->file_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    rc = errno;
    if (rc == EEXIST)
        fio_xd_err("xdevice: %s: something was put at the name between its removal and fio's layout; refused: fio would open it (a link, say) by name\n",
                   fio_xd_shown(f->file_name));
    return rc;
}

/* fio removes files itself for unlink=1 and unlink_each_loop=1, and
 * before laying one out anew. xdevice keeps more than the file for some
 * types (a tmpfs copy, the hybrid type's hot copy, map and shared state, a
 * checksum sidecar): once the job has used the file (f->engine_pos, set at
 * open), xd_unlink removes them with it. A file fio is about to lay out
 * (in its parent before init, or in the job with create_serialize=0) is
 * only the plain file, as fio would remove: the tmpfs type's copy holds
 * data fio does not see there (a fill_device run's, say), and stays. fio
 * calls this before and after closing the file: both remove. */
static int fio_xd_unlink_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    char err[XD_ERRLEN];
    if (td->runstate == TD_SETTING_UP && !td->terminate && td->o.allow_create &&
        !f->engine_pos && f->filetype == FIO_TYPE_FILE)
        return fio_xd_layout_unlink(td, f);
    /* a file the job never opened (its open was refused: another user's
     * file there, say) is removed for unlink=1 only when it is ours; the
     * refusal already said why, once */
    if (!job || !job->dev || !f->engine_pos)
        return fio_xd_theirs(f) ? EPERM : unlink(f->file_name) ? errno : 0;
    int rc = xd_unlink(job->dev, f->file_name, err, sizeof(err));
    if (rc && rc != -ENOENT)
        fio_xd_err("xdevice: %s\n", err);
    f->engine_pos = FIO_XD_REMOVED;
    return -rc;
}

static int fio_xd_invalidate(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file = FILE_ENG_DATA(f);
    return file ? -xd_file_invalidate(job->dev, file) : 0;
}

/* fio asks for sizes before init, and its own probe for block devices opens
 * the file through the engine and ioctls f->fd, which xdevice does not use.
 * A missing file is ENOENT, which fio takes as "lay it out". A container
 * (compressed) reports its logical size, not its length on disk. */
static int fio_xd_get_file_size(struct thread_data *td, struct fio_file *f)
{
    char err[XD_ERRLEN] = "";
    struct xd_config *cfg = NULL;
    uint64_t size;
    int rc;
    struct stat st;
    if (fio_file_size_known(f))
        return 0;
    /* its size reads as 0, so the job did no I/O and said nothing */
    if (!stat(f->file_name, &st) && S_ISCHR(st.st_mode)) {
        fio_xd_err("xdevice: %s: a character device; allowed: a regular file, or a block device (xd_type=block)\n",
                   fio_xd_shown(f->file_name));
        td_verror(td, EINVAL, "xd_path_size");
        return 1;
    }
    if (!fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        rc = xd_path_logical_size(cfg, f->file_name, &size, err, sizeof(err));
        xd_config_free(cfg);
    } else {
        err[0] = 0; /* setup says what is wrong with the config */
        rc = xd_path_size(f->file_name, &size);
    }
    if (rc) {
        if (err[0])
            fio_xd_err("xdevice: %s\n", err);
        td_verror(td, -rc, "xd_path_size");
        return 1;
    }
    f->real_file_size = size;
    fio_file_set_size_known(f);
    return 0;
}

/* Where fio's setup_files (fio 3.33, filesetup.c) will want f to end, given
 * the size setup reports for it (have): the job's start offset in it plus
 * its io_size - the share of size= (the first *extra files get one more
 * minimum block when size= does not divide evenly), or filesize= (fixed, or
 * drawn from the job's random state as fio draws it), cut to size=N%.
 * Never less than have; have when the job names no end (fill_device). */
static uint64_t fio_xd_wanted_end(struct thread_data *td, struct fio_file *f, uint64_t have,
                                  unsigned *extra)
{
    const struct thread_options *o = &td->o;
    uint64_t io_size, off;
    f->real_file_size = have; /* offset=N% and offset_increment=N% are of it */
    off = get_start_offset(td, f);
    if (!o->file_size_low) {
        io_size = o->size / (o->nr_files ? o->nr_files : 1);
        if (*extra) {
            (*extra)--;
            io_size += td_min_bs(td);
        }
        if (!io_size || o->fill_device)
            return have; /* fio takes the file as it is, or it grows as written */
    } else if (have < o->file_size_low || have > o->file_size_high) {
        if (off > o->file_size_low)
            return have; /* fio says the offset is past the end */
        io_size = (o->file_size_low == o->file_size_high ? o->file_size_low
                                                          : get_rand_file_size(td)) - off;
    } else {
        return have; /* in filesize='s range: fio uses it as it is */
    }
    if (o->size_percent && o->size_percent != 100) {
        uint64_t whole = io_size + off;
        io_size = whole * o->size_percent / 100;
        if (io_size > whole - off)
            io_size = whole - off;
        io_size -= io_size % td_min_bs(td);
    }
    if (io_size > UINT64_MAX - off)
        return have;
    return off + io_size > have ? off + io_size : have;
}

/* How many files fio gives one minimum block more than size= / nrfiles. */
static unsigned fio_xd_extra_blocks(struct thread_data *td)
{
    const struct thread_options *o = &td->o;
    if (o->file_size_low || !o->nr_files)
        return 0;
    uint64_t share = o->size / o->nr_files;
    return (unsigned)((o->size - share * o->nr_files) / td_min_bs(td));
}

/* The job's config for its layout, without the hybrid type's migration:
 * a file fio laid out is a file that was there before the job, all of it
 * cold (the writes of the layout would otherwise promote extents, and the
 * job would start from a hot tier it never asked for). NULL with a line
 * in err. */
static struct xd_config *fio_xd_layout_config(const struct xd_config *cfg, char *err,
                                              size_t errlen)
{
    struct xd_config *c = xd_config_dup(cfg);
    const char *type = xd_config_get(cfg, "storage_type");
    if (!c)
        snprintf(err, errlen, "out of memory");
    else if (type && !strcmp(type, "hybrid") &&
             (xd_config_set(c, "auto_migration", "false", "layout", err, errlen) ||
              xd_config_set(c, "migration_interval_requests", "0", "layout", err, errlen))) {
        xd_config_free(c);
        c = NULL;
    }
    return c;
}

/* fio lays out a file that a job reads and finds missing or short with
 * its own buffers' data (extend_file: fill_io_buffer, so
 * buffer_compress_percentage, zero_buffers and the rest apply) before the
 * job starts. A container fio cannot lay out gets the same, written
 * through a device of the job's config over [from, to): a read job on a
 * new container then reads data, as it would from psync's file, rather
 * than chunks never written (zeros, which a compressed container serves
 * without decompressing anything). 0 or -errno with one line in err. */
static int fio_xd_lay_out_data(struct thread_data *td, const struct xd_config *cfg,
                               const struct fio_file *f, uint64_t from, uint64_t to, char *err,
                               size_t errlen)
{
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    uint64_t bs = td->o.max_bs[DDIR_WRITE] ? td->o.max_bs[DDIR_WRITE] : 4096;
    void *buf = NULL;
    struct xd_config *quiet = fio_xd_layout_config(cfg, err, errlen);
    int rc = quiet ? xd_open(&dev, quiet, 1, err, errlen) : -EINVAL;
    xd_config_free(quiet);
    if (!rc)
        rc = xd_file_open(dev, f->file_name, XD_OPEN_CREATE, to, &file, err, errlen);
    if (!rc && posix_memalign(&buf, 4096, bs)) /* aligned: O_DIRECT chains copy nothing */
        rc = -ENOMEM;
    for (uint64_t off = from, n; !rc && off < to && !td->terminate; off += n) {
        n = to - off < bs ? to - off : bs;
        fill_io_buffer(td, buf, n, n);
        ssize_t w = xd_write(dev, file, buf, n, off);
        if (w != (ssize_t)n)
            rc = w < 0 ? (int)w : -EIO;
    }
    if (!rc)
        rc = xd_flush(dev, file, 0);
    /* a write or the flush failed: the device's line, or ours (an open
     * that failed left its own line in err) */
    if (rc && file && xd_dev_take_error(dev, err, errlen) == -ENOENT)
        snprintf(err, errlen, "%s: laying out the file for the job's reads: %s",
                 f->file_name, strerror(-rc));
    if (file) {
        int closed = xd_file_close(dev, file);
        rc = rc ? rc : closed;
    }
    xd_close(dev);
    free(buf);
    return rc;
}

/* Types with their own format own their files: fio must never lay raw
 * bytes into one; the tmpfs type without backup_to_disk keeps nothing at
 * the path at all (XD_CFG_DATA_ELSEWHERE: fio's layout wrote a full-size
 * disk file nothing read). The container or tmpfs copy is created or
 * grown here, in setup (so a later job set up in fio's parent finds it, as
 * it finds a file psync laid out), to exactly the end fio will want - any
 * longer and a reader without size= would read a tail nobody wrote. fio is told the size from before
 * (what psync would find on disk), so its offset=N% comes out the same; the
 * setup hook then marks the job create_on_open, which makes fio take the
 * new end as the file's size instead of laying it out, and the engine's
 * open gets that end. Without size= the container must exist, and its
 * logical size is what fio sees, as st_size is for fio's own engines. */
static int fio_xd_prepare_container(struct thread_data *td, const struct xd_config *cfg,
                                    struct fio_file *f, unsigned *extra)
{
    char err[XD_ERRLEN] = "";
    uint64_t have = 0, want, logical;
    int rc = xd_path_logical_size(cfg, f->file_name, &have, err, sizeof(err));
    bool missing = rc == -ENOENT;
    if (rc && !missing)
        goto fail;
    want = read_only ? have : fio_xd_wanted_end(td, f, have, extra);
    if (missing && !td->o.allow_create && !read_only) {
        fio_xd_refuse_create(td, f, NULL);
        return 1;
    }
    if (missing && !want) {
        f->real_file_size = 0;
        return 0; /* fio says "you need to specify size=", or open creates it */
    }
    if ((missing || want > have) &&
        (rc = xd_path_prepare(cfg, f->file_name, want, &logical, err, sizeof(err))))
        goto fail;
    if (td_read(td) && want > have &&
        (rc = fio_xd_lay_out_data(td, cfg, f, have, want, err, sizeof(err)))) {
        fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
        td_verror(td, -rc, "xdevice layout");
        return 1;
    }
    f->real_file_size = have;
    fio_file_set_size_known(f);
    return 0;
fail:
    fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
    td_verror(td, -rc, "xd_path_prepare"); /* fio's own line then names the call */
    return 1;
}

/* Prepare every file of the job; fio's setup_files then recomputes the
 * same ends. Its random filesize= draws are taken again from the same
 * state, so they come out the same and in the same order. */
static int fio_xd_prepare_containers(struct thread_data *td, const struct xd_config *cfg)
{
    struct frand_state drawn_from = td->file_size_state;
    unsigned extra = fio_xd_extra_blocks(td);
    struct fio_file *f;
    unsigned i;
    int rc = 0;
    for_each_file(td, f, i)
        if ((rc = fio_xd_prepare_container(td, cfg, f, &extra)))
            break;
    td->file_size_state = drawn_from;
    if (!read_only)
        td->o.create_on_open = 1; /* no layout: the ends are made above or at open */
    return rc;
}

/* Where fio would lay f out with data (missing or short: it would end at
 * *want, past the *have found), and whether the engine may do it
 * instead: not a device, no file of another user (whose removal
 * fio's layout refuses), no missing one under allow_file_create=0 (which
 * fio refuses), nothing but a regular file at the name. Takes f's ends in
 * file order (extra, random filesize= draws). -1: fio's to lay out; 0:
 * nothing to lay out; 1: the engine's. */
static int fio_xd_recorded_plan(struct thread_data *td, struct fio_file *f, unsigned *extra,
                                uint64_t *have, uint64_t *want)
{
    struct stat st;
    int looked = lstat(f->file_name, &st) ? errno : 0;
    bool missing = looked == ENOENT;
    *have = missing ? 0 : f->real_file_size;
    *want = fio_xd_wanted_end(td, f, *have, extra);
    if (*want <= *have)
        return 0;
    if (f->filetype != FIO_TYPE_FILE || (looked && !missing) ||
        (!missing && !S_ISREG(st.st_mode)) || (missing && !td->o.allow_create) || fio_xd_theirs(f))
        return -1;
    return 1;
}

/* fio lays out a file that a job reads (or writes with overwrite=1) and
 * finds missing or short with plain write()s of data, around the chain
 * (a write job's other files get only ftruncate or fallocate, no data).
 * Where a layer records what the chain
 * writes (XD_CFG_WRITES_RECORDED: checksums), every block of it then read
 * unchecked (data from before the sidecar, tagged so): a job trusting
 * checked reads got none. Such files are laid out here through the stack
 * instead, over what fio would add, [have, want), with the same buffers
 * (fio_xd_lay_out_data), and the job is marked create_on_open as for
 * containers: fio, told the size found before (so offset=N% comes out as
 * psync's), takes its end as the file's size instead of laying it out.
 * A job with a file fio must handle (fio_xd_recorded_plan), or with
 * --readonly, create_on_open or fill_device, is left to fio whole. 0, or
 * 1 with the error set and said. */
static int fio_xd_lay_out_recorded(struct thread_data *td, const struct xd_config *cfg)
{
    struct frand_state drawn_from = td->file_size_state;
    unsigned extra = fio_xd_extra_blocks(td);
    uint64_t have, want;
    char err[XD_ERRLEN] = "";
    struct fio_file *f;
    unsigned i;
    int rc = 0, plan = 0, ours = 0;
    bool with_data = td_read(td) || (td_write(td) && td->o.overwrite && !td->o.file_append);
    if (!with_data || read_only || td->o.create_on_open || td->o.fill_device)
        return 0;
    for_each_file(td, f, i) {
        if ((plan = fio_xd_recorded_plan(td, f, &extra, &have, &want)) < 0)
            break;
        ours += plan;
    }
    td->file_size_state = drawn_from;
    if (plan < 0 || !ours)
        return 0;
    extra = fio_xd_extra_blocks(td);
    for_each_file(td, f, i) {
        if (fio_xd_recorded_plan(td, f, &extra, &have, &want) > 0 &&
            (rc = fio_xd_lay_out_data(td, cfg, f, have, want, err, sizeof(err)))) {
            fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
            td_verror(td, -rc, "xdevice layout");
            break;
        }
    }
    td->file_size_state = drawn_from;
    td->o.create_on_open = 1;
    return rc ? 1 : 0;
}

/* fio preallocates the files it lays out (fallocate=native by default),
 * which allocates every block the sparse layer is about to leave a hole in;
 * freeing them again costs a punch per zero block (on ext4 more than writing
 * them). Chains with the sparse layer get their files sized by ftruncate
 * instead, unless the job chose fallocate= itself. */
static void fio_xd_sparse_layout(struct thread_data *td, const struct xd_config *cfg)
{
    bool sparse = xd_config_caps(cfg) & XD_CFG_HOLES;
    if (sparse && !fio_option_is_set(&td->o, fallocate_mode))
        td->o.fallocate_mode = FIO_FALLOCATE_TRUNCATE;
}

/* How many of the run's jobs publish to the stats file at path, so the
 * last of them can remove the fragments. Counted in setup, which with
 * create_serialize (the default) runs in fio's main process for every job
 * before any starts: later, fio frees a finished job's engine options (in
 * thread mode under our feet). 0 (unknown: fragments stay) otherwise. */
static unsigned fio_xd_stats_jobs(const char *path)
{
    struct thread_data *td;
    unsigned n = 0;
    int i;
    for_each_td(td, i) {
        const struct fio_xd_options *o = td->eo;
        if (td->io_ops && td->io_ops->queue == ioengine.queue && o && o->stats &&
            !strcmp(o->stats, path))
            n++;
    }
    return n;
}

/* base_directory is for programs linking libxdevice, where relative names
 * resolve against it; fio has already named the job's files (directory=)
 * and lays them out at those names, so a relative name would have fio's
 * layout in one place and the data in another (base_directory/name). A
 * config shared with such a program works once the job sets directory= to
 * it (fio's names are then absolute and base_directory never applies). */
static int fio_xd_check_base_directory(struct thread_data *td, const struct xd_config *cfg)
{
    const char *base = xd_config_get(cfg, "base_directory");
    struct fio_file *f;
    unsigned i;
    if (!base || !base[0])
        return 0;
    for_each_file(td, f, i)
        if (f->file_name[0] != '/') {
            const char *origin = xd_config_origin(cfg, "base_directory"), *name;
            name = fio_xd_shown(f->file_name); /* base has no control bytes (xd_config_set) */
            if (td->subjob_number == 0)
                fio_xd_err("xdevice: base_directory=%s (%s): fio names and lays out the job's files itself, and %s is relative, so fio's file and xdevice's (%s/%s) would differ; allowed: directory=%s in the job (or absolute file names), or an empty base_directory\n",
                           base, origin ? origin : "xd_base_directory", name, base, name, base);
            return 1;
        }
    return 0;
}

/* path with its directory resolved (symlinks, "..", relative names), for
 * telling whether two names, one or both not made yet, are one file;
 * malloc'd, or NULL when the directory cannot be resolved. */
static char *fio_xd_resolved_path(const char *path)
{
    char *copy = strdup(path), *copy2 = strdup(path), *dir = NULL, *out = NULL;
    if (copy && copy2 && (dir = realpath(dirname(copy), NULL)) &&
        asprintf(&out, "%s/%s", dir, basename(copy2)) < 0)
        out = NULL;
    free(copy);
    free(copy2);
    free(dir);
    return out;
}

static bool fio_xd_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!stat(a, &sa) && !stat(b, &sb))
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char *ra = fio_xd_resolved_path(a), *rb = fio_xd_resolved_path(b);
    bool same = ra && rb ? !strcmp(ra, rb) : !strcmp(a, b);
    free(ra);
    free(rb);
    return same;
}

/* An output the run writes (xd_stats, replaced at the end; the periodic
 * log and the trace, appended to) that is also one of the job's data
 * files, its xd_config or another output: xd_stats named like the data
 * file replaced the data with JSON, and the trace appended records to it.
 * Said in one line naming both; 1 when so. */
static int fio_xd_output_clash(struct thread_data *td, const char *what, const char *path,
                               const char *const *used, const char *const *used_as, unsigned n)
{
    struct fio_file *f;
    unsigned i;
    const char *clash = NULL, *as = NULL;
    for_each_file(td, f, i)
        if (fio_xd_same_file(path, f->file_name)) {
            clash = f->file_name;
            as = "the job's data file";
            break;
        }
    for (i = 0; !clash && i < n; i++)
        if (used[i] && fio_xd_same_file(path, used[i])) {
            clash = used[i];
            as = used_as[i];
        }
    if (clash && td->subjob_number == 0) {
        char shown[XD_ESCAPE_LEN];
        fio_xd_err("xdevice: %s=%s: it is %s (%s); allowed: a file of its own\n",
                   what, xd_escape(path, shown, sizeof(shown)), as, fio_xd_shown(clash));
    }
    return clash ? 1 : 0;
}

static int fio_xd_check_outputs(struct thread_data *td, const struct xd_config *cfg)
{
    const struct fio_xd_options *o = td->eo;
    const char *trace = xd_config_get(cfg, "trace");
    bool periodic = strcmp(xd_config_get(cfg, "metrics_interval_sec"), "0") != 0;
    char *log = periodic ? fio_xd_stats_log_path(o) : NULL;
    const char *used[] = { o->config, o->stats, log };
    const char *as[] = { "the job's xd_config", "its xd_stats file", "its periodic stats log" };
    int rc = (o->stats && fio_xd_output_clash(td, "xd_stats", o->stats, used, as, 1)) ||
             (log && fio_xd_output_clash(td, o->stats_log ? "xd_stats_log" : "the periodic stats log",
                                         log, used, as, 2)) ||
             (trace && trace[0] && fio_xd_output_clash(td, "trace", trace, used, as, 3));
    free(log);
    return rc;
}

/* Options the job gives that nothing reads (xd_backup_to_disk on the
 * regular type, xd_checksum_block_size without xd_enable_checksums) change
 * nothing: said once, in one line, rather than let the user believe them
 * in force. Keys from an INI file are not named:
 * one file may serve several types. */
static void fio_xd_note_unread(struct thread_data *td, const struct xd_config *cfg)
{
    char *names = NULL;
    size_t used = 0, count = 0;
    FILE *line = open_memstream(&names, &used); /* as long as the options are */
    if (!line)
        return;
    for (unsigned i = 0; i < xd_config_key_count(); i++) {
        const char *key = xd_config_key_name(i), *origin = xd_config_origin(cfg, key);
        if (origin && !strncmp(origin, "option ", 7) && !xd_config_reads(cfg, key))
            fprintf(line, "%s%s", count++ ? ", " : "", origin + 7);
    }
    if (fclose(line) || !names)
        count = 0; /* out of memory: nothing to say it with */
    if (count && td->subjob_number == 0)
        fio_xd_note("xdevice: this job reads no %s (keys of another storage type than %s, or of a layer it leaves off): %s no effect\n",
                    names, xd_config_get(cfg, "storage_type"), count > 1 ? "they have" : "it has");
    free(names);
}

/* fio runs setup before it lays files out (in the parent, one job after
 * another, unless create_serialize=0), so a config that cannot work stops
 * fio before it writes anything. An engine with a setup hook sizes the
 * files itself. Jobs of one section share their options: a failure is said
 * once, not once per job. */
static int fio_xd_setup(struct thread_data *td)
{
    static char last_err[XD_ERRLEN];
    char err[XD_ERRLEN];
    struct xd_config *cfg;
    struct fio_file *f;
    unsigned i;
    int rc = 0;

    if (fio_xd_unusable)
        return 1;
    if (fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        if (strcmp(err, last_err))
            fio_xd_err("xdevice: %s\n", err);
        snprintf(last_err, sizeof(last_err), "%s", err);
        td_verror(td, EINVAL, "xdevice config"); /* the job's result: fio's err=22 */
        return 1;
    }
    if (td->o.sync_file_range && td->subjob_number == 0)
        fio_xd_note_sync_file_range(td);
    if (fio_xd_verify_expects_first_writes(td) && td->subjob_number == 0)
        fio_xd_note("xdevice: experimental_verify=1 with norandommap=1: a block written twice fails fio's verify, which expects its first write (fio's psync fails such jobs too; its io_uring and libaio engines pass them only because their verify pass writes the expected data instead of reading it)\n");
    struct fio_xd_options *o = td->eo;
    if (o->direct_refused && td->subjob_number == 0)
        fio_xd_note("xdevice: %s; the job runs buffered\n", o->direct_why);
    fio_xd_note_unread(td, cfg);
    const char *interval = xd_config_get(cfg, "metrics_interval_sec");
    if (strcmp(interval, "0") && !o->stats_log && !o->stats) {
        const char *origin = xd_config_origin(cfg, "metrics_interval_sec");
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: metrics_interval_sec=%s (%s): periodic stats need a file; allowed: with xd_stats_log=FILE, or xd_stats=FILE (records then go to FILE.jsonl), or 0\n",
                    interval, origin ? origin : "default");
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    /* fio's offload workers queue through threads of their own with this
     * engine's state: the job crashed (SIGSEGV, then a double free) */
    if (td->o.io_submit_mode == IO_MODE_OFFLOAD) {
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: io_submit_mode=offload: not supported by the xdevice engine; allowed: io_submit_mode=inline (the default)\n");
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    if (!strcmp(interval, "0") && o->stats_log) { /* a file no record would go to */
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: xd_stats_log=%s: periodic stats are off (metrics_interval_sec=0); allowed: with xd_stats_interval=SECONDS (or metrics_interval_sec), or no xd_stats_log\n",
                       fio_xd_shown(o->stats_log));
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    if (fio_xd_check_base_directory(td, cfg) || fio_xd_check_outputs(td, cfg)) {
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    o->stats_jobs = o->stats && td->o.create_serialize ? fio_xd_stats_jobs(o->stats) : 0;
    /* fio lays out neither a container nor a path where no data is kept */
    bool own_format = xd_config_caps(cfg) & (XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE);
    fio_xd_sparse_layout(td, cfg);
    if (own_format)
        rc = fio_xd_prepare_containers(td, cfg);
    else
        for_each_file(td, f, i) {
            if (fio_xd_get_file_size(td, f) && td->error != ENOENT) {
                rc = 1;
                break;
            }
            td_clear_error(td); /* missing: fio lays it out */
        }
    if (!rc && !own_format && (xd_config_caps(cfg) & XD_CFG_WRITES_RECORDED))
        rc = fio_xd_lay_out_recorded(td, cfg);
    xd_config_free(cfg);
    return rc;
}

/* A run id shared by every job of one fio invocation, thread or process:
 * the fio main process's pid and start time (so a reused pid is a new run). */
static void fio_xd_run_id(struct thread_data *td, char *buf, size_t len)
{
    pid_t main_pid = td->o.use_thread ? getpid() : getppid();
    unsigned long long start = 0;
    char path[64], stat[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)main_pid);
    FILE *fp = fopen(path, "re");
    if (fp) {
        if (fgets(stat, sizeof(stat), fp)) {
            const char *p = strrchr(stat, ')'); /* the command name may hold spaces */
            if (p)
                sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                       &start);
        }
        fclose(fp);
    }
    snprintf(buf, len, "%d-%llu", (int)main_pid, start);
}

/* Under fio --server the stats file is written on the server; the
 * document also goes to the fio client, as one line "xdevice-stats: {...}"
 * that the client prints before fio's JSON (prefixed "<host> "), so that
 * every host's figures come back to the one place the run started from.
 * Each job sends the document as it stands after its own publish: the one
 * with the most jobs is the run's (xdtune and xdreport read these lines;
 * docs/DESIGN.md, "Many hosts"). */
static void fio_xd_send_stats(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > (16 << 20)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char *doc = malloc((size_t)st.st_size + 1);
    ssize_t got = doc ? pread(fd, doc, (size_t)st.st_size, 0) : -1;
    close(fd);
    if (got > 0) {
        doc[got] = '\0';
        for (char *c = doc; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' '; /* one line: the client's reader splits on newlines */
        /* log_err: sent to the client like any server text; should the
         * client be gone, the server's stderr gets it, never its stdout
         * (where log_info falls back to, and fio's JSON goes) */
        log_err("xdevice-stats: %s\n", doc);
    }
    free(doc);
}

static void fio_xd_report(struct thread_data *td, struct fio_xd_job *job)
{
    struct fio_xd_options *o = td->eo;
    char err[XD_ERRLEN], run_id[64];
    if (xd_stats_slow_summary(job->dev, err, sizeof(err)))
        fio_xd_note("xdevice: %s: %s\n", td->o.name, err);
    if (!o->stats || job->stats_refused)
        return;
    fio_xd_run_id(td, run_id, sizeof(run_id));
    int rc = xd_stats_publish(job->dev, o->stats, run_id, td->thread_number, td->o.name,
                              td->subjob_number, o->stats_jobs, err, sizeof(err));
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        /* the job's result, so fio exits non-zero: a run whose stats are
         * missing must not look like a good one to a script */
        td_verror(td, rc < 0 ? -rc : EIO, "xd_stats_publish");
    } else if (is_backend) {
        fio_xd_send_stats(o->stats);
    }
}

static void fio_xd_cleanup(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    if (!job)
        return;
    if (job->monitor) {
        xd_monitor_record(job->monitor); /* the last, partial interval */
        fio_xd_tell(job);
    }
    if (job->dev) {
        fio_xd_report(td, job);
        xd_close(job->dev);
    }
    /* Last: its shared watch's lock is then the job's last, which orders
     * the job's work before the thread's TLS is freed by whichever thread
     * trims glibc's stack cache (unseen by TSan: make sanitize). */
    xd_monitor_close(job->monitor);
    if (job->sync_fd >= 0)
        close(job->sync_fd);
    free(job->reqs);
    free(job->events);
    free(job->ready_buf);
    free(job->issued);
    free(job);
    td->io_ops_data = NULL;
}

struct ioengine_ops ioengine = {
    .name = "xdevice",
    .version = FIO_IOOPS_VERSION,
    .setup = fio_xd_setup,
    .init = fio_xd_init,
    .post_init = fio_xd_post_init,
    .io_u_init = fio_xd_io_u_init,
    .queue = fio_xd_queue,
    .commit = fio_xd_commit,
    .getevents = fio_xd_getevents,
    .event = fio_xd_event,
    .cleanup = fio_xd_cleanup,
    .open_file = fio_xd_open_file,
    .close_file = fio_xd_close_file,
    .invalidate = fio_xd_invalidate,
    .unlink_file = fio_xd_unlink_file,
    .get_file_size = fio_xd_get_file_size,
    /* .options and .option_struct_size: set by fio_xd_load */
};
