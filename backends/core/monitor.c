/* monitor.c - follow a running device: apply a rewritten INI file (with
 * the caller's overrides winning) and append periodic stats records, both
 * from the thread that drives the device, between its requests (a device
 * is not safe for a second thread). What the fio engine does per job, and
 * what a production program linking libxdevice needs for the same: the
 * caller polls, and takes the monitor's notes to print them where it likes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileutil.h"
#include "health.h"
#include "xd_internal.h"

#define MONITOR_TICK_NS 100000000ull /* look for a rewritten config 10 times a second */
#define MONITOR_NOTES   64           /* notes kept until taken; later ones are dropped */

/* --- building a config ------------------------------------------------------ */

static int config_apply_override(struct xd_config *cfg, const struct xd_config_override *ov,
                                 char *err, size_t errlen)
{
    if (!ov->key || !ov->value) {
        xd_errf(err, errlen, "%s: an override without a key or a value; allowed: KEY and VALUE",
                ov->origin ? ov->origin : "override");
        return -EINVAL;
    }
    return xd_config_set(cfg, ov->key, ov->value, ov->origin ? ov->origin : "override", err,
                         errlen);
}

int xd_config_build(struct xd_config **out, const char *ini_path,
                    const struct xd_config_override *overrides, unsigned n_overrides, char *err,
                    size_t errlen)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? 0 : -ENOMEM;
    if (!cfg)
        xd_errf(err, errlen, "out of memory");
    if (!rc && ini_path)
        rc = xd_config_load(cfg, ini_path, err, errlen);
    for (unsigned i = 0; !rc && i < n_overrides; i++)
        rc = config_apply_override(cfg, &overrides[i], err, errlen);
    if (!rc)
        rc = xd_config_check(cfg, err, errlen);
    if (rc) {
        xd_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* --- the config watch, one per file and process ------------------------------
 * inotify instances are few (fs.inotify.max_user_instances, 128 by default),
 * so the monitors of a process (fio's jobs in thread mode) share one per
 * config file. Any monitor may drain it; what it heard is kept with a
 * generation number, and every monitor acts on a new generation in its own
 * thread. */
struct shared_watch {
    struct shared_watch *next;
    char *path;
    struct xd_config_watch *w;
    unsigned users;
    unsigned gen; /* bumped for every event heard */
    int last;     /* XD_WATCH_* of the latest */
};

static pthread_mutex_t shared_watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_watch *shared_watches;

/* A child after fork() forgets its parent's watches: their inotify
 * descriptions are shared with the parent, so an event drained here would
 * be one the parent's monitors never hear. */
static void shared_watch_forget_parent(void)
{
    shared_watches = NULL;
    pthread_mutex_init(&shared_watch_lock, NULL);
}

__attribute__((constructor)) static void shared_watch_watch_forks(void)
{
    pthread_atfork(NULL, NULL, shared_watch_forget_parent);
}

/* The process's watch of path, opened by its first user; *gen: its
 * generation now, so a monitor joining late does not act on older events. */
static struct shared_watch *shared_watch_get(const char *path, unsigned *gen, char *err,
                                             size_t errlen)
{
    struct shared_watch *sw;
    pthread_mutex_lock(&shared_watch_lock);
    for (sw = shared_watches; sw && strcmp(sw->path, path); sw = sw->next)
        ;
    if (!sw && (sw = calloc(1, sizeof(*sw))) && (sw->path = strdup(path)) &&
        !xd_config_watch_open(&sw->w, path, err, errlen)) {
        sw->next = shared_watches;
        shared_watches = sw;
    } else if (sw && !sw->w) {
        if (!sw->path)
            xd_errf(err, errlen, "%s: out of memory", path);
        free(sw->path);
        free(sw);
        sw = NULL;
    } else if (!sw) {
        xd_errf(err, errlen, "%s: out of memory", path);
    }
    if (sw) {
        sw->users++;
        *gen = sw->gen;
    }
    pthread_mutex_unlock(&shared_watch_lock);
    return sw;
}

static void shared_watch_put(struct shared_watch *sw)
{
    if (!sw)
        return;
    pthread_mutex_lock(&shared_watch_lock);
    if (!--sw->users) {
        struct shared_watch **p = &shared_watches;
        while (*p != sw)
            p = &(*p)->next;
        *p = sw->next;
        xd_config_watch_close(sw->w);
        free(sw->path);
        free(sw);
    }
    pthread_mutex_unlock(&shared_watch_lock);
}

/* What happened since this monitor last looked: XD_WATCH_*. */
static int shared_watch_check(struct shared_watch *sw, unsigned *seen)
{
    pthread_mutex_lock(&shared_watch_lock);
    int state = xd_config_watch_poll(sw->w);
    if (state != XD_WATCH_NONE) {
        sw->gen++;
        sw->last = state;
    }
    state = *seen != sw->gen ? sw->last : XD_WATCH_NONE;
    *seen = sw->gen;
    pthread_mutex_unlock(&shared_watch_lock);
    return state;
}

/* --- the monitor -------------------------------------------------------------- */

struct xd_monitor {
    struct xd_dev *dev;
    char *config_path;           /* NULL: no reloads */
    char shown_config[XD_ESCAPE_LEN]; /* config_path escaped, for notes */
    struct xd_config_override *overrides;
    unsigned n_overrides;
    char *name;                  /* records' "job" */
    unsigned jobnum;
    char *prefix;                /* "NAME: " or "", before most notes */
    char *config_label, *stats_log_label;
    bool quiet_reloads;
    struct shared_watch *watch;  /* NULL: none (no config, or it is over) */
    unsigned watch_gen;          /* the watch's generation this monitor has acted on */
    uint64_t next_tick_ns;       /* xd_now_ns when to look again */
    uint64_t next_stats_ns;      /* when the next record is due; 0: none */
    uint64_t interval_ns;
    struct xd_stats_mark *mark;
    int stats_fd;                /* the records' file, O_APPEND; -1: none */
    char *notes[MONITOR_NOTES];  /* oldest first */
    unsigned nnotes;
    uint64_t next_health_ns;     /* when the next health check is due; 0: none */
    uint64_t health_interval_ns;
    char *health;                /* the latest check's report, for the next record */
    char *told[MONITOR_NOTES];   /* what the last check found wrong ("KEY=PATH"): told already */
    unsigned ntold;
};

static void __attribute__((format(printf, 2, 3))) monitor_note(struct xd_monitor *m,
                                                               const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    if (m->nnotes == MONITOR_NOTES)
        return; /* the caller stopped taking them */
    va_start(ap, fmt);
    int len = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (len >= 0)
        m->notes[m->nnotes++] = line;
}

char *xd_monitor_note(struct xd_monitor *m)
{
    if (!m || !m->nnotes)
        return NULL;
    char *line = m->notes[0];
    m->nnotes--;
    memmove(m->notes, m->notes + 1, m->nnotes * sizeof(*m->notes));
    return line;
}

/* The record object with "health": the latest check's report added as its
 * last member; the record itself when there is none. */
static char *monitor_add_health(struct xd_monitor *m, char *record)
{
    char *out = NULL;
    size_t len = record ? strlen(record) : 0;
    if (!m->health || len < 2 || record[len - 1] != '}')
        return record;
    if (asprintf(&out, "%.*s,\"health\":%s}", (int)(len - 1), record, m->health) < 0)
        out = NULL;
    free(record);
    if (out) {
        free(m->health);
        m->health = NULL;
    }
    return out;
}

/* One record, one write(2) on an O_APPEND file, so the lines of monitors
 * that share the file (threads or processes) never interleave. */
static int monitor_write_record(struct xd_monitor *m)
{
    char *text = monitor_add_health(m, xd_stats_interval_json(m->dev, m->mark, m->name, m->jobnum));
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 1) : NULL;
    if (!line) {
        free(text);
        return -ENOMEM;
    }
    line[len] = '\n';
    ssize_t n = write(m->stats_fd, line, len + 1);
    int rc = n == (ssize_t)(len + 1) ? 0 : n < 0 ? -errno : -EIO;
    free(line);
    if (rc) {
        monitor_note(m, "%s%s: write failed (%s); no more periodic records this run", m->prefix,
                     m->stats_log_label, n < 0 ? strerror(-rc) : "short write");
        close(m->stats_fd);
        m->stats_fd = -1;
        m->next_stats_ns = 0;
    }
    return rc;
}

int xd_monitor_record(struct xd_monitor *m)
{
    if (!m || m->stats_fd < 0)
        return -ENOENT;
    return monitor_write_record(m);
}

/* The keys in which next differs from the device's config, with their old
 * values as text (xd_config_get's text lives until its next call). */
static unsigned monitor_changed_keys(const struct xd_config *cur, const struct xd_config *next,
                                     unsigned *changed, char (*old)[64])
{
    unsigned n = 0;
    for (unsigned k = 0; k < XD_KEY_COUNT; k++) {
        if (xd_config_key_equal(cur, next, (int)k))
            continue;
        snprintf(old[n], sizeof(old[n]), "%s", xd_config_get(cur, xd_keys[k].name));
        changed[n++] = k;
    }
    return n;
}

/* The rewritten file, built as the device's config was (the INI, then the
 * overrides), and its live keys applied; one note per changed key, or one
 * saying why not. catch_up: at open, where an equal config is no news. */
static void monitor_reload(struct xd_monitor *m, bool catch_up)
{
    unsigned changed[XD_KEY_COUNT];
    char err[XD_ERRLEN], old[XD_KEY_COUNT][64];
    struct xd_config *next;
    bool say = !m->quiet_reloads;
    if (xd_config_build(&next, m->config_path, m->overrides, m->n_overrides, err, sizeof(err))) {
        if (say)
            monitor_note(m, "%s%s=%s was rewritten but is not used: %s; the config in force stays",
                         m->prefix, m->config_label, m->shown_config, err);
        return;
    }
    const struct xd_config *cur = xd_dev_config(m->dev);
    unsigned n = monitor_changed_keys(cur, next, changed, old);
    if (catch_up && !n) {
        xd_config_free(next);
        return;
    }
    int rc = xd_reload(m->dev, next, err, sizeof(err));
    if (rc < 0 && say)
        monitor_note(m, "%s%s=%s: %s; the config in force stays", m->prefix, m->config_label,
                     m->shown_config, err);
    if (rc >= 0 && say && !n)
        monitor_note(m, "%s%s=%s reloaded: no change", m->prefix, m->config_label,
                     m->shown_config);
    for (unsigned i = 0; rc >= 0 && say && i < n; i++)
        monitor_note(m, "%s%s=%s reloaded: %s %s -> %s", m->prefix, m->config_label,
                     m->shown_config, xd_keys[changed[i]].name, old[i],
                     xd_config_get(next, xd_keys[changed[i]].name));
    xd_config_free(next);
}

/* Act on what the watch heard: XD_MONITOR_RELOAD when it heard anything. */
static int monitor_watch(struct xd_monitor *m)
{
    bool say = !m->quiet_reloads;
    switch (shared_watch_check(m->watch, &m->watch_gen)) {
    case XD_WATCH_CHANGED:
        monitor_reload(m, false);
        return XD_MONITOR_RELOAD;
    case XD_WATCH_REMOVED:
        if (say)
            monitor_note(m, "%s%s=%s was removed; the config in force stays", m->prefix,
                         m->config_label, m->shown_config);
        return XD_MONITOR_RELOAD;
    case XD_WATCH_GONE:
        if (say)
            monitor_note(m, "%sthe directory of %s=%s went away; no more reloads this run",
                         m->prefix, m->config_label, m->shown_config);
        shared_watch_put(m->watch);
        m->watch = NULL;
        return XD_MONITOR_RELOAD;
    }
    return 0;
}

/* --- the health check (enable_health_check) ----------------------------------- */

/* A problem line is "KEY=PATH: what is wrong", and what is wrong may
 * carry a count that grows while the problem lasts ("63 checksum
 * mismatches", then 129): the problem is its KEY=PATH. */
static size_t monitor_problem_len(const char *line, size_t len)
{
    const char *colon = memmem(line, len, ": ", 2);
    return colon ? (size_t)(colon - line) : len;
}

static bool monitor_told(char *const *told, unsigned ntold, const char *line, size_t len)
{
    for (unsigned i = 0; i < ntold; i++)
        if (!strncmp(told[i], line, len) && !told[i][len])
            return true;
    return false;
}

/* The problems found now become the ones told. */
static void monitor_keep_told(struct xd_monitor *m, char **now, unsigned nnow)
{
    for (unsigned i = 0; i < m->ntold; i++)
        free(m->told[i]);
    memcpy(m->told, now, nnow * sizeof(*now));
    m->ntold = nnow;
}

/* Check now; keep the report for the next record, and note each problem
 * when it is found: a problem that persists from one check to the next is
 * not news (even as its count grows), one that cleared and came back is. */
static void monitor_health(struct xd_monitor *m)
{
    char err[XD_ERRLEN], *lines = NULL;
    int healthy;
    char *text = xd_health_report(NULL, m->dev, &healthy, &lines, err, sizeof(err));
    if (!text) {
        monitor_note(m, "%shealth check: %s", m->prefix, err);
        return;
    }
    free(m->health);
    m->health = text;
    char *now[MONITOR_NOTES];
    unsigned nnow = 0;
    for (char *line = lines, *nl; line && (nl = strchr(line, '\n')); line = nl + 1) {
        size_t len = (size_t)(nl - line), key = monitor_problem_len(line, len);
        if (nnow == MONITOR_NOTES || monitor_told(now, nnow, line, key))
            continue;
        if (!(now[nnow] = strndup(line, key)))
            break;
        if (!monitor_told(m->told, m->ntold, line, key))
            monitor_note(m, "%shealth: %.*s", m->prefix, (int)len, line);
        nnow++;
    }
    monitor_keep_told(m, now, nnow);
    free(lines);
}

static int monitor_health_due(struct xd_monitor *m, uint64_t now)
{
    if (!m->next_health_ns || now < m->next_health_ns)
        return 0;
    monitor_health(m);
    m->next_health_ns += m->health_interval_ns;
    if (m->next_health_ns <= now) /* after a stall, one check */
        m->next_health_ns = now + m->health_interval_ns;
    return XD_MONITOR_HEALTH;
}

/* A first check at open, so a problem is told before the run rather than
 * an interval into it, and the first record carries a report. */
static void monitor_start_health(struct xd_monitor *m)
{
    const struct xd_config *cfg = xd_dev_config(m->dev);
    if (!cfg->enable_health_check)
        return;
    m->health_interval_ns = (uint64_t)cfg->health_check_interval_sec * 1000000000ull;
    monitor_health(m);
    m->next_health_ns = xd_now_ns() + m->health_interval_ns;
}

/* xd_monitor_poll with something to look at; apart, so that the usual
 * call (nothing to do) is a few instructions, not a full frame */
static __attribute__((noinline)) int monitor_poll_due(struct xd_monitor *m)
{
    uint64_t now = xd_now_ns();
    int did = 0;
    if (now < m->next_tick_ns)
        return 0;
    m->next_tick_ns = now + MONITOR_TICK_NS;
    if (m->watch)
        did |= monitor_watch(m);
    did |= monitor_health_due(m, now);
    if (m->next_stats_ns && now >= m->next_stats_ns) {
        if (!monitor_write_record(m))
            did |= XD_MONITOR_RECORD;
        /* after a stall, one record for the whole gap rather than a burst */
        if (m->next_stats_ns) {
            m->next_stats_ns += m->interval_ns;
            if (m->next_stats_ns <= now)
                m->next_stats_ns = now + m->interval_ns;
        }
    }
    return did;
}

/* Nothing to look at, for good: a watch, once dropped, and records and
 * health checks, once off, are never started again after open. */
int xd_monitor_idle(const struct xd_monitor *m)
{
    return !m || (!m->watch && !m->next_stats_ns && !m->next_health_ns);
}

int xd_monitor_poll(struct xd_monitor *m)
{
    /* spare the clock read when idle */
    if (xd_monitor_idle(m))
        return 0;
    return monitor_poll_due(m);
}

/* The records' file is appended to by every job and run: opened in its
 * checked directory, never through a symlink, and only if it is the
 * caller's own regular file (see fileutil.h). */
static int monitor_open_log(struct xd_monitor *m, const char *path, char *err, size_t errlen)
{
    const struct xd_config *cfg = xd_dev_config(m->dev);
    char what[XD_ESCAPE_LEN + 64], shown[XD_ESCAPE_LEN];
    const char *base;
    snprintf(what, sizeof(what), "%s=%s", m->stats_log_label,
             xd_escape(path, shown, sizeof(shown)));
    int dirfd = xd_dir_open_for(path, what, cfg->allow_shared_directories, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    int fd = xd_open_own_at(dirfd, base, O_WRONLY | O_APPEND, (mode_t)cfg->file_permissions);
    close(dirfd);
    if (fd < 0)
        xd_errf(err, errlen, "%s: cannot open it: %s", what, xd_refusal(fd));
    return fd;
}

/* The records' file and clock, when the device's config asks for records. */
static int monitor_start_records(struct xd_monitor *m, const char *stats_log, char *err,
                                 size_t errlen)
{
    const struct xd_config *cfg = xd_dev_config(m->dev);
    if (!cfg->metrics_interval_sec)
        return 0;
    if (!stats_log) {
        const char *origin = cfg->origin[XD_KEY_metrics_interval_sec];
        xd_errf(err, errlen, "metrics_interval_sec=%lld (%s): periodic records need a file; allowed: a stats_log, or metrics_interval_sec=0",
                (long long)cfg->metrics_interval_sec, origin ? origin : "default");
        return -EINVAL;
    }
    m->stats_fd = monitor_open_log(m, stats_log, err, errlen);
    if (m->stats_fd < 0)
        return m->stats_fd;
    if (!(m->mark = xd_stats_mark_new())) {
        xd_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->interval_ns = (uint64_t)cfg->metrics_interval_sec * 1000000000ull;
    m->next_stats_ns = xd_now_ns() + m->interval_ns;
    return 0;
}

/* Follow the config file: the watch first, then one look at the file, so a
 * rewrite between the caller's reading it and now is applied, not missed. */
static void monitor_start_watch(struct xd_monitor *m)
{
    char err[XD_ERRLEN];
    m->watch = shared_watch_get(m->config_path, &m->watch_gen, err, sizeof(err));
    if (!m->watch) {
        if (!m->quiet_reloads)
            monitor_note(m, "%s; %s is not reloaded this run", err, m->config_label);
        return;
    }
    monitor_reload(m, true);
}

static int monitor_copy_overrides(struct xd_monitor *m, const struct xd_config_override *ov,
                                  unsigned n)
{
    if (!n)
        return 0;
    m->overrides = calloc(n, sizeof(*m->overrides));
    if (!m->overrides)
        return -ENOMEM;
    m->n_overrides = n;
    for (unsigned i = 0; i < n; i++) {
        struct xd_config_override *c = &m->overrides[i];
        c->key = ov[i].key ? strdup(ov[i].key) : NULL;
        c->value = ov[i].value ? strdup(ov[i].value) : NULL;
        c->origin = ov[i].origin ? strdup(ov[i].origin) : NULL;
        if ((ov[i].key && !c->key) || (ov[i].value && !c->value) || (ov[i].origin && !c->origin))
            return -ENOMEM;
    }
    return 0;
}

static int monitor_copy_opts(struct xd_monitor *m, const struct xd_monitor_opts *o)
{
    const char *name = o->name ? o->name : "";
    m->jobnum = o->jobnum;
    m->quiet_reloads = o->quiet_reloads;
    m->name = strdup(name);
    m->config_label = strdup(o->config_label ? o->config_label : "config");
    m->stats_log_label = strdup(o->stats_log_label ? o->stats_log_label : "stats_log");
    char shown_name[XD_ESCAPE_LEN]; /* a job name with a newline made a note two lines */
    xd_escape(name, shown_name, sizeof(shown_name));
    if (asprintf(&m->prefix, "%s%s", shown_name, name[0] ? ": " : "") < 0)
        m->prefix = NULL;
    if (o->config_path && !(m->config_path = strdup(o->config_path)))
        return -ENOMEM;
    xd_escape(o->config_path, m->shown_config, sizeof(m->shown_config));
    if (!m->name || !m->config_label || !m->stats_log_label || !m->prefix)
        return -ENOMEM;
    return monitor_copy_overrides(m, o->overrides, o->n_overrides);
}

int xd_monitor_open(struct xd_monitor **out, struct xd_dev *dev, const struct xd_monitor_opts *opts,
                    char *err, size_t errlen)
{
    static const struct xd_monitor_opts none;
    if (!dev) {
        xd_errf(err, errlen, "xd_monitor_open: no device; allowed: an open device (xd_open)");
        return -EINVAL;
    }
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);
    struct xd_monitor *m = calloc(1, sizeof(*m));
    int rc;
    if (!m) {
        xd_errf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->dev = dev;
    m->stats_fd = -1;
    if ((rc = monitor_copy_opts(m, opts ? opts : &none))) {
        xd_errf(err, errlen, "out of memory");
        goto fail;
    }
    if ((rc = monitor_start_records(m, opts ? opts->stats_log : NULL, err, errlen)))
        goto fail;
    m->next_tick_ns = xd_now_ns() + MONITOR_TICK_NS;
    monitor_start_health(m);
    if (m->config_path)
        monitor_start_watch(m);
    *out = m;
    return 0;
fail:
    xd_monitor_close(m);
    return rc;
}

void xd_monitor_close(struct xd_monitor *m)
{
    if (!m)
        return;
    shared_watch_put(m->watch);
    if (m->stats_fd >= 0)
        close(m->stats_fd);
    xd_stats_mark_free(m->mark);
    for (unsigned i = 0; i < m->nnotes; i++)
        free(m->notes[i]);
    for (unsigned i = 0; i < m->ntold; i++)
        free(m->told[i]);
    free(m->health);
    for (unsigned i = 0; m->overrides && i < m->n_overrides; i++) {
        free((char *)m->overrides[i].key);
        free((char *)m->overrides[i].value);
        free((char *)m->overrides[i].origin);
    }
    free(m->overrides);
    free(m->config_path);
    free(m->name);
    free(m->prefix);
    free(m->config_label);
    free(m->stats_log_label);
    free(m);
}
