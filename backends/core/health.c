/* health.c - is the world a config names fit to run in? (issue 15)
 *
 * Static checks read the config alone: every directory and device it names
 * exists (or is one the engine makes at open, and can), is usable by us, is
 * not open to other users (the trust rules of docs/DESIGN.md "Trust
 * boundaries"), has room for what the config needs, and a directory meant
 * to be on tmpfs really is. Each directory key gets the rules the engine
 * applies to it (health_static), so health never passes what an open
 * refuses (a symlinked checkpoint_directory) nor fails what it makes (a
 * missing one). Dynamic checks read an
 * open device's stats JSON by name (layers.mirror.degraded,
 * layers.checksum.mismatches, layers.retry.failed): a figure a layer does
 * not report is skipped, so core knows no layer. Nothing here prints: the
 * caller gets a JSON report with one line per problem, and prints it where
 * it likes (xdconfig health, the monitor's notes).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fileutil.h"
#include "health.h"
#include "json.h"
#include "xd_internal.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

struct health {
    struct xd_json checks;   /* the "checks" array being written */
    struct xd_json problems; /* the "problems" array: one line each */
    unsigned nproblems;
    FILE *lines;             /* the same lines, each ending in a newline */
    char *lines_text;
    size_t lines_len;
};

/* One directory or device the config names, and what the engine asks of
 * it: the same rules, so health and an open agree. */
struct health_target {
    const char *key;     /* the key naming it, for messages */
    const char *path;
    bool tmpfs;          /* must be on a tmpfs */
    bool made_at_open;   /* xdevice makes it when absent... */
    bool parents_made;   /* ...and its missing parents too (else its parent must exist) */
    bool no_symlink;     /* opened with O_NOFOLLOW: a symlink there is refused */
    bool own;            /* the caller's, root's will not do (xd_mkdir_own_at, xd_private_dir) */
    bool private;        /* no access for group or others (xd_private_dir) */
    bool parent_trusted; /* opened through its parent, which must pass the trust rule */
    uint64_t need;       /* bytes of room the config asks for (0: any room) */
    const char *need_key;
};

/* One check: a member of "checks", and a line in "problems" when not ok. */
static void __attribute__((format(printf, 5, 6)))
health_add(struct health *h, const char *check, const struct health_target *t, bool ok,
           const char *fmt, ...)
{
    char detail[1024], shown[XD_ESCAPE_LEN], *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    xd_json_object_begin(&h->checks, NULL);
    xd_json_string(&h->checks, "check", check);
    xd_json_string(&h->checks, "key", t->key);
    xd_json_string(&h->checks, "path", t->path);
    xd_json_bool(&h->checks, "ok", ok);
    xd_json_string(&h->checks, "detail", detail);
    xd_json_object_end(&h->checks);
    if (ok)
        return;
    if (asprintf(&line, "%s=%s: %s", t->key, xd_escape(t->path, shown, sizeof(shown)), detail) >= 0) {
        xd_json_string(&h->problems, NULL, line);
        if (h->lines)
            fprintf(h->lines, "%s\n", line);
    } else
        h->problems.failed = true;
    free(line);
    h->nproblems++;
}

/* --- directories ------------------------------------------------------------ */

/* The nearest existing ancestor of path (path itself when it exists). */
static int health_nearest(const char *path, char *out, size_t len, struct stat *st)
{
    if (snprintf(out, len, "%s", path) >= (int)len)
        return -ENAMETOOLONG;
    while (stat(out, st)) {
        if (errno != ENOENT)
            return -errno;
        char *slash = strrchr(out, '/');
        if (!slash)
            snprintf(out, len, ".");
        else
            slash[slash == out] = '\0'; /* "/a" -> "/" */
    }
    return 0;
}

static bool health_is_tmpfs(const char *path)
{
    struct statfs sf;
    return !statfs(path, &sf) && sf.f_type == TMPFS_MAGIC;
}

/* path without its trailing slashes into out ("/" stays); its parent into
 * parent ("." for a bare name). */
static void health_split(const char *path, char *out, char *parent, size_t len)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    snprintf(out, len, "%.*s", (int)n, path);
    const char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(parent, len, ".");
    else
        snprintf(parent, len, "%.*s", slash == out ? 1 : (int)(slash - out), out);
}

/* A missing directory xdevice makes at open: fine when what it needs
 * exists (its parent, or any ancestor when it makes parents too) and, for
 * a tmpfs directory, is on a tmpfs. probe: that ancestor. */
static bool health_absent(struct health *h, const struct health_target *t, char *probe,
                          size_t len)
{
    char path[PATH_MAX], parent[PATH_MAX];
    struct stat st;
    health_split(t->path, path, parent, sizeof(path));
    if (health_nearest(t->path, probe, len, &st) || !S_ISDIR(st.st_mode)) {
        health_add(h, "exists", t, false, "does not exist, and neither does a directory to make it in");
        return false;
    }
    if (!t->parents_made && strcmp(probe, parent)) {
        health_add(h, "exists", t, false,
                   "does not exist, nor does its parent %s; xdevice makes the directory, not its parents (auto_create_dirs=false); allowed: an existing parent, or auto_create_dirs=true",
                   parent);
        return false;
    }
    if (t->tmpfs && !health_is_tmpfs(probe)) {
        health_add(h, "exists", t, false,
                   "does not exist, and xdevice makes it only on a tmpfs, which %s is not", probe);
        return false;
    }
    health_add(h, "exists", t, true, "absent; xdevice makes it at open, in %s", probe);
    return true;
}

/* Whether it exists; sets probe to what the other checks examine (path, or
 * the ancestor it will be made in). false: nothing more to check. */
static bool health_exists(struct health *h, const struct health_target *t, char *probe,
                          size_t len)
{
    char path[PATH_MAX], parent[PATH_MAX];
    struct stat st;
    health_split(t->path, path, parent, sizeof(path));
    if (t->no_symlink && !lstat(path, &st) && S_ISLNK(st.st_mode)) {
        health_add(h, "exists", t, false,
                   "a symbolic link, which xdevice never follows here; allowed: a real directory, or none (xdevice makes it)");
        return false;
    }
    if (!stat(t->path, &st)) {
        snprintf(probe, len, "%s", t->path);
        if (S_ISDIR(st.st_mode)) {
            health_add(h, "exists", t, true, "a directory");
            return true;
        }
        health_add(h, "exists", t, false, "not a directory; allowed: a directory");
        return false;
    }
    int rc = -errno;
    if (rc == -ENOENT && t->made_at_open)
        return health_absent(h, t, probe, len);
    health_add(h, "exists", t, false, "%s%s", rc == -ENOENT ? "does not exist" : strerror(-rc),
               rc == -ENOENT && t->parents_made ? "; allowed: an existing directory, or auto_create_dirs=true to have xdevice make it" : "");
    return false;
}

static void health_writable(struct health *h, const struct health_target *t, const char *probe)
{
    if (!access(probe, W_OK | X_OK))
        health_add(h, "writable", t, true, "writable by uid %u", (unsigned)geteuid());
    else
        health_add(h, "writable", t, false, "%s is not writable by uid %u: %s", probe,
                   (unsigned)geteuid(), strerror(errno));
}

/* What the engine asks of a directory it uses as its own (the checkpoint
 * directory, the private tmpfs one) beyond the trust rule, whatever
 * allow_shared_directories says. false: a problem was added. */
static bool health_own(struct health *h, const struct health_target *t, const struct stat *st)
{
    if (t->own && st->st_uid != geteuid()) {
        health_add(h, "trusted", t, false,
                   "belongs to uid %u; xdevice uses only a directory of its own here; allowed: a directory of uid %u, or none (xdevice makes it)",
                   (unsigned)st->st_uid, (unsigned)geteuid());
        return false;
    }
    if (t->private && (st->st_mode & 077)) {
        health_add(h, "trusted", t, false,
                   "is open to group or others (mode %04o); allowed: mode 0700, or none (xdevice makes it)",
                   (unsigned)(st->st_mode & 07777));
        return false;
    }
    return true;
}

/* The trust rule for directories xdevice's files go in (fileutil.h
 * xd_dir_check): whoever controls one can swap names in it. */
static void health_trusted(struct health *h, const struct health_target *t, const char *probe,
                           bool allow_shared)
{
    struct stat st;
    if (stat(probe, &st)) {
        health_add(h, "trusted", t, false, "cannot examine %s: %s", probe, strerror(errno));
    } else if (!strcmp(probe, t->path) && !health_own(h, t, &st)) {
        return;
    } else if (allow_shared) {
        health_add(h, "trusted", t, true, "not checked: allow_shared_directories=true");
    } else if (st.st_uid != geteuid() && st.st_uid != 0) {
        health_add(h, "trusted", t, false,
                   "%s belongs to uid %u, not to uid %u or root; its owner could redirect xdevice's files with symlinks; allowed: a directory you or root own, or allow_shared_directories=true",
                   probe, (unsigned)st.st_uid, (unsigned)geteuid());
    } else if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        health_add(h, "trusted", t, false,
                   "%s is writable by others without the sticky bit (mode %04o); anyone could redirect xdevice's files with symlinks; allowed: a directory not writable by others, a sticky one like /tmp, or allow_shared_directories=true",
                   probe, (unsigned)(st.st_mode & 07777));
    } else {
        health_add(h, "trusted", t, true, "owner uid %u, mode %04o", (unsigned)st.st_uid,
                   (unsigned)(st.st_mode & 07777));
    }
}

static void health_on_tmpfs(struct health *h, const struct health_target *t, const char *probe)
{
    struct statfs sf;
    if (statfs(probe, &sf))
        health_add(h, "tmpfs", t, false, "cannot examine %s: %s", probe, strerror(errno));
    else if (sf.f_type != TMPFS_MAGIC)
        health_add(h, "tmpfs", t, false,
                   "%s is not on a tmpfs (f_type 0x%lx), so the data would run at disk speed; allowed: a tmpfs mount such as /dev/shm",
                   probe, (unsigned long)sf.f_type);
    else
        health_add(h, "tmpfs", t, true, "on a tmpfs");
}

/* Room for what the config needs, and some room at all. */
static void health_free_space(struct health *h, const struct health_target *t, const char *probe)
{
    struct statvfs sv;
    if (statvfs(probe, &sv)) {
        health_add(h, "free_space", t, false, "cannot examine %s: %s", probe, strerror(errno));
        return;
    }
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t size = (uint64_t)sv.f_blocks * sv.f_frsize;
    if (!avail)
        health_add(h, "free_space", t, false, "file system full: 0 of %llu bytes free",
                   (unsigned long long)size);
    else if (avail < t->need)
        health_add(h, "free_space", t, false, "%llu bytes free, %s needs %llu",
                   (unsigned long long)avail, t->need_key, (unsigned long long)t->need);
    else
        health_add(h, "free_space", t, true, "%llu of %llu bytes free%s%s", (unsigned long long)avail,
                   (unsigned long long)size, t->need ? ", enough for " : "",
                   t->need ? t->need_key : "");
}

static void health_directory(struct health *h, const struct xd_config *cfg,
                             const struct health_target *t)
{
    char probe[PATH_MAX];
    if (!health_exists(h, t, probe, sizeof(probe)))
        return;
    health_writable(h, t, probe);
    health_trusted(h, t, probe, cfg->allow_shared_directories);
    if (t->parent_trusted && !strcmp(probe, t->path)) {
        char path[PATH_MAX], parent[PATH_MAX];
        health_split(t->path, path, parent, sizeof(path));
        health_trusted(h, t, parent, cfg->allow_shared_directories);
    }
    if (t->tmpfs)
        health_on_tmpfs(h, t, probe);
    health_free_space(h, t, probe);
}

static void health_block_device(struct health *h, const struct health_target *t)
{
    struct stat st;
    if (stat(t->path, &st)) {
        health_add(h, "exists", t, false, "%s", errno == ENOENT ? "does not exist" : strerror(errno));
        return;
    }
    if (!S_ISBLK(st.st_mode)) {
        health_add(h, "block_device", t, false, "not a block device; allowed: a block device such as /dev/loop0");
        return;
    }
    if (access(t->path, R_OK | W_OK))
        health_add(h, "block_device", t, false, "not readable and writable by uid %u: %s",
                   (unsigned)geteuid(), strerror(errno));
    else
        health_add(h, "block_device", t, true, "a block device, readable and writable");
}

/* --- what the config names ---------------------------------------------------- */

static bool is_type(const struct xd_config *cfg, int type) { return cfg->storage_type == type; }

/* Which directories the engine makes when missing, and how it opens them:
 * base_directory, cold_directory and checksum_directory are made with their
 * parents by auto_create_dirs (the drivers, the tier, the checksum layer);
 * a tmpfs directory is always made (on a tmpfs), the private default one
 * 0700 and never through a symlink (xd_private_dir); checkpoint_directory
 * always, its parents with auto_create_dirs, through its checked parent,
 * never through a symlink and only the caller's (checkpoint.c). */
static void health_static(struct health *h, const struct xd_config *cfg)
{
    uint64_t fsize = (uint64_t)cfg->default_file_size;
    bool made = cfg->auto_create_dirs;
    char private_dir[PATH_MAX];
    xd_private_dir_path(private_dir, sizeof(private_dir));
    if (cfg->base_directory[0])
        health_directory(h, cfg, &(struct health_target){
                                     .key = "base_directory", .path = cfg->base_directory,
                                     .made_at_open = made, .parents_made = true, .need = fsize,
                                     .need_key = "default_file_size"});
    bool tmpfs = is_type(cfg, XD_TYPE_TMPFS);
    bool hybrid = is_type(cfg, XD_TYPE_HYBRID);
    bool private = !cfg->tmpfs_directory[0];
    const char *tdir = private ? private_dir : cfg->tmpfs_directory;
    if (tmpfs || (hybrid && !cfg->hot_directory[0]))
        health_directory(h, cfg, &(struct health_target){
                                     .key = "tmpfs_directory", .path = tdir,
                                     .tmpfs = !(tmpfs && cfg->auto_mount), .made_at_open = true,
                                     .parents_made = true, .no_symlink = private, .own = private,
                                     .private = private,
                                     .need = hybrid ? (uint64_t)cfg->hot_cache_size : fsize,
                                     .need_key = hybrid ? "hot_cache_size" : "default_file_size"});
    if (hybrid && cfg->hot_directory[0])
        health_directory(h, cfg, &(struct health_target){
                                     .key = "hot_directory", .path = cfg->hot_directory,
                                     .tmpfs = true, .made_at_open = true, .parents_made = true,
                                     .need = (uint64_t)cfg->hot_cache_size,
                                     .need_key = "hot_cache_size"});
    if (hybrid && cfg->cold_directory[0])
        health_directory(h, cfg, &(struct health_target){
                                     .key = "cold_directory", .path = cfg->cold_directory,
                                     .made_at_open = made, .parents_made = true, .need = fsize,
                                     .need_key = "default_file_size"});
    if (cfg->enable_checkpoints && cfg->checkpoint_directory[0])
        health_directory(h, cfg, &(struct health_target){
                                     .key = "checkpoint_directory",
                                     .path = cfg->checkpoint_directory, .made_at_open = true,
                                     .parents_made = made, .no_symlink = true, .own = true,
                                     .parent_trusted = true, .need_key = ""});
    if (cfg->enable_checksums && cfg->checksum_directory[0])
        health_directory(h, cfg, &(struct health_target){
                                     .key = "checksum_directory",
                                     .path = cfg->checksum_directory, .made_at_open = made,
                                     .parents_made = true, .need_key = ""});
    if (is_type(cfg, XD_TYPE_BLOCK) && cfg->block_device[0])
        health_block_device(h, &(struct health_target){.key = "block_device", .path = cfg->block_device});
}

/* mirror_directories: "A,B,..."; each holds a whole copy. */
static void health_mirrors(struct health *h, const struct xd_config *cfg)
{
    char *list = strdup(cfg->mirror_directories), *save = NULL;
    if (!list) {
        h->checks.failed = true;
        return;
    }
    for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ')
            d++;
        if (*d)
            health_directory(h, cfg, &(struct health_target){
                                         .key = "mirror_directories", .path = d,
                                         .need = (uint64_t)cfg->default_file_size,
                                         .need_key = "default_file_size"});
    }
    free(list);
}

/* --- a device's figures ----------------------------------------------------------
 * Just enough JSON reading to find a number by its path in xd_stats_json's
 * text (which xdevice wrote: names have no escapes). */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *json_skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : NULL;
}

/* Past the value at p (after white space), or NULL. */
static const char *json_skip_value(const char *p, unsigned depth)
{
    p = json_ws(p);
    if (*p == '"')
        return json_skip_string(p);
    if (*p != '{' && *p != '[') {
        while (*p && !strchr(",}] \n\t\r", *p))
            p++;
        return p;
    }
    if (depth > 64)
        return NULL;
    char close = *p == '{' ? '}' : ']';
    p = json_ws(p + 1);
    while (p && *p && *p != close) {
        if (close == '}') {
            p = *p == '"' ? json_skip_string(p) : NULL;
            p = p ? json_ws(p) : NULL;
            if (!p || *p != ':')
                return NULL;
            p++;
        }
        p = json_skip_value(p, depth + 1);
        p = p ? json_ws(p) : NULL;
        if (p && *p == ',')
            p = json_ws(p + 1);
    }
    return p && *p == close ? p + 1 : NULL;
}

/* The value of member key of the object at p, or NULL. */
static const char *json_member(const char *p, const char *key)
{
    size_t klen = strlen(key);
    p = json_ws(p);
    if (*p != '{')
        return NULL;
    p = json_ws(p + 1);
    while (*p == '"') {
        const char *name = p + 1, *end = json_skip_string(p);
        if (!end)
            return NULL;
        p = json_ws(end);
        if (*p != ':')
            return NULL;
        p = json_ws(p + 1);
        if ((size_t)(end - 1 - name) == klen && !memcmp(name, key, klen))
            return p;
        p = json_skip_value(p, 0);
        p = p ? json_ws(p) : NULL;
        if (!p || *p != ',')
            return NULL;
        p = json_ws(p + 1);
    }
    return NULL;
}

bool xd_health_figure(const char *stats, const char *layer, const char *name, double *value)
{
    const char *p = json_member(stats, "layers");
    p = p ? json_member(p, layer) : NULL;
    p = p ? json_member(p, name) : NULL;
    char *end;
    if (!p)
        return false;
    *value = strtod(p, &end);
    return end != p;
}

static void health_counter(struct health *h, const char *stats, const char *layer,
                           const char *name, const char *what)
{
    char path[128];
    double v;
    if (!xd_health_figure(stats, layer, name, &v))
        return; /* the layer is not in the chain, or does not count this */
    snprintf(path, sizeof(path), "layers.%s.%s", layer, name);
    health_add(h, layer, &(struct health_target){.key = "stats", .path = path}, v == 0, "%.0f %s", v, what);
}

static void health_dynamic(struct health *h, struct xd_dev *dev)
{
    char *stats = xd_stats_json(dev);
    if (!stats) {
        h->checks.failed = true;
        return;
    }
    health_counter(h, stats, "mirror", "degraded", "degraded copies");
    health_counter(h, stats, "checksum", "mismatches", "checksum mismatches");
    health_counter(h, stats, "retry", "failed", "requests failed after their retries");
    free(stats);
}

/* --- the report ------------------------------------------------------------------ */

char *xd_health_report(const struct xd_config *cfg, struct xd_dev *dev, int *healthy,
                       char **lines, char *err, size_t errlen)
{
    struct health h = {0};
    struct xd_json top;
    if (dev && xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen), NULL;
    if (!cfg && dev)
        cfg = xd_dev_config(dev);
    if (!cfg) {
        xd_errf(err, errlen, "xd_health_json: no config; allowed: a config or an open device");
        return NULL;
    }
    if (lines && !(h.lines = open_memstream(&h.lines_text, &h.lines_len))) {
        xd_errf(err, errlen, "out of memory");
        return NULL;
    }
    xd_json_init(&h.checks);
    xd_json_init(&h.problems);
    xd_json_array_begin(&h.checks, NULL);
    xd_json_array_begin(&h.problems, NULL);
    health_static(&h, cfg);
    if (cfg->mirror_directories[0])
        health_mirrors(&h, cfg);
    if (dev)
        health_dynamic(&h, dev);
    xd_json_array_end(&h.checks);
    xd_json_array_end(&h.problems);
    char *checks = xd_json_finish(&h.checks), *problems = xd_json_finish(&h.problems);
    char *text = NULL;
    if (checks && problems) {
        xd_json_init(&top);
        xd_json_object_begin(&top, NULL);
        xd_json_bool(&top, "healthy", h.nproblems == 0);
        xd_json_raw(&top, "checks", checks);
        xd_json_raw(&top, "problems", problems);
        xd_json_object_end(&top);
        text = xd_json_finish(&top);
    }
    free(checks);
    free(problems);
    bool lines_failed = h.lines && fclose(h.lines);
    if (!text || lines_failed) {
        free(text);
        free(h.lines_text);
        xd_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (lines)
        *lines = h.lines_text;
    if (healthy)
        *healthy = h.nproblems == 0;
    return text;
}

char *xd_health_json(const struct xd_config *cfg, struct xd_dev *dev, int *healthy, char *err,
                     size_t errlen)
{
    return xd_health_report(cfg, dev, healthy, NULL, err, errlen);
}
