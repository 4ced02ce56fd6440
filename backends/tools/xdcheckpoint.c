/* xdcheckpoint - list, verify and restore the checkpoints the checkpoint
 * layer writes (enable_checkpoints; backends/layers/checkpoint.c).
 *
 *   xdcheckpoint list DIR                one line per checkpoint, oldest first:
 *                                        ID TIME FILES BYTES ("ID damaged - -"
 *                                        for one whose manifest is unreadable)
 *   xdcheckpoint verify DIR [ID]         recompute each copy's crc32c against
 *                                        the manifest (every checkpoint, or ID)
 *   xdcheckpoint restore DIR ID [--force]
 *                                        copy each file back to its path, each
 *                                        atomically (temp file + rename); an
 *                                        existing file is replaced only with
 *                                        --force
 *
 * Every name in DIR shaped like an id is a checkpoint, so a damaged one is
 * named, never skipped; dot-names (the layer's .tmp- and .del- directories)
 * and other names are not checkpoints.
 *
 * restore takes orders only from a checkpoint the checkpoint layer could
 * have made (see "trust" below), refuses a manifest naming a file twice,
 * and never follows a link another user planted on the way to a target
 * ("where a target goes").
 *
 * Exit status: 0 ok, 1 failure (one line on stderr naming what; standard
 * output that cannot be written is one), 2 bad usage (one line).
 * A restore verifies the checkpoint first and checks every target before it
 * writes any, so a refusal leaves every file as it was.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "../layers/checkpoint.h"
#include "../xdevice.h"

#define MANIFEST_MAX (64u << 20)

#define USAGE "xdcheckpoint list DIR | verify DIR [ID] | restore DIR ID [--force]"

/* A bad command line: one line saying what is wrong and what is allowed. */
static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("xdcheckpoint: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; allowed: " USAGE "\n", stderr);
    return 2;
}

/* s made safe for a one-line message (control bytes as \xHH); up to four
 * at a time in one message. */
static const char *esc(const char *s)
{
    static char bufs[4][1024];
    static unsigned next;
    char *buf = bufs[next++ % 4];
    return xd_escape(s, buf, sizeof(bufs[0]));
}

/* The first error writing stdout: a flush before the end (list orders its
 * rows and reasons) must not lose it. */
static int stdout_errno;

static void flush_stdout(void)
{
    if (fflush(stdout) && !stdout_errno)
        stdout_errno = errno;
}

/* What went to stdout must have arrived: a listing cut short by a full disk
 * or a closed pipe is a failure, not an empty answer. */
static int stdout_done(int rc)
{
    flush_stdout();
    if (!stdout_errno && !ferror(stdout))
        return rc;
    fprintf(stderr, "xdcheckpoint: standard output: cannot write: %s\n",
            strerror(stdout_errno ? stdout_errno : EIO));
    return rc ? rc : 1;
}

/* --- trust ------------------------------------------------------------------
 * A manifest decides which paths a restore creates or replaces, as root
 * too, so a restore takes orders only from what the checkpoint layer would
 * have made (ckpt_open_dir): a checkpoint directory reached without a
 * symlink, in a parent and holding checkpoints that, like it, pass the rule
 * of xd_dir_check. list and verify only read, and read any directory. */

#define TRUST_ALLOWED "allowed: what the checkpoint layer makes: no symbolic link, owned by you or root, not writable by others (a directory may be, with the sticky bit)"

#define CKPT_STAKE "whoever controls it decides which files restore writes"

/* Whether the open fd (named label in messages) passes the trust rule:
 * owned by us or root, not writable by others unless a sticky directory.
 * 0, or 1 with one line saying what is at stake and what is allowed. */
static int trusted(int fd, const char *label, const char *stake, const char *allowed)
{
    struct stat st;
    if (fstat(fd, &st)) {
        fprintf(stderr, "xdcheckpoint: %s: cannot examine it: %s\n", label, strerror(errno));
        return 1;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        fprintf(stderr, "xdcheckpoint: %s: belongs to uid %u, not to you (uid %u) or root; %s; %s\n",
                label, (unsigned)st.st_uid, (unsigned)geteuid(), stake, allowed);
        return 1;
    }
    if ((st.st_mode & S_IWOTH) && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX))) {
        fprintf(stderr, "xdcheckpoint: %s: writable by others (mode %04o)%s; %s; %s\n", label,
                (unsigned)(st.st_mode & 07777), S_ISDIR(st.st_mode) ? " without the sticky bit" : "",
                stake, allowed);
        return 1;
    }
    return 0;
}

/* DIR for a restore, opened as the checkpoint layer opens
 * checkpoint_directory: through its checked parent, never through a
 * symlink, and checked itself. Its fd, or -1 with one line. */
static int open_trusted_dir(const char *dir)
{
    char parent[PATH_MAX], name[NAME_MAX + 1], label[PATH_MAX + 64];
    struct stat st;
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    const char *slash = memrchr(dir, '/', len), *base = slash ? slash + 1 : dir;
    size_t plen = !slash ? 0 : slash == dir ? 1 : (size_t)(slash - dir);
    size_t blen = len - (size_t)(base - dir);
    if (plen >= sizeof(parent) || blen > NAME_MAX) {
        fprintf(stderr, "xdcheckpoint: %s: %s\n", esc(dir), strerror(ENAMETOOLONG));
        return -1;
    }
    snprintf(parent, sizeof(parent), "%.*s", (int)(plen ? plen : 1), plen ? dir : ".");
    snprintf(name, sizeof(name), "%.*s", (int)(blen ? blen : 1), blen ? base : ".");
    int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
    snprintf(label, sizeof(label), "%s: its directory %s", esc(dir), esc(parent));
    if (pfd < 0)
        fprintf(stderr, "xdcheckpoint: %s: cannot open it: %s\n", label, strerror(errno));
    else if (!trusted(pfd, label, CKPT_STAKE, TRUST_ALLOWED) &&
             (fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        int e = errno;
        if (!fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISLNK(st.st_mode))
            fprintf(stderr, "xdcheckpoint: %s: a symbolic link, never followed (the checkpoint layer never follows one); " TRUST_ALLOWED "\n",
                    esc(dir));
        else
            fprintf(stderr, "xdcheckpoint: %s: cannot open the directory: %s\n", esc(dir),
                    strerror(e));
    }
    if (pfd >= 0)
        close(pfd);
    if (fd >= 0 && trusted(fd, esc(dir), CKPT_STAKE, TRUST_ALLOWED)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One checkpoint: its directory, manifest and the manifest's files. */
struct ckpt {
    const char *dir, *id;
    int fd; /* DIR/ID */
    bool trust; /* a restore: DIR/ID and its manifest must pass trusted() */
    cJSON *root;
    const cJSON *files;
};

/* A checkpoint that cannot be read: one line naming the file and why. */
static int __attribute__((format(printf, 4, 5)))
damaged(const struct ckpt *c, const char *file, int err, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "xdcheckpoint: %s/%s%s%s: ", esc(c->dir), c->id, file ? "/" : "", file ? file : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s; the checkpoint is damaged\n", err ? ": " : "", err ? strerror(err) : "");
    return 1;
}

static const char *manifest_label(const struct ckpt *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", esc(c->dir), c->id, XD_CKPT_MANIFEST);
    return buf;
}

/* The manifest's bytes, NUL-terminated, *len of them; NULL with one line
 * when it cannot be read. O_NONBLOCK: a FIFO planted there must not hang. */
static char *read_manifest(const struct ckpt *c, size_t *len)
{
    char label[PATH_MAX + 64];
    struct stat st;
    char *text = NULL;
    int fd = openat(c->fd, XD_CKPT_MANIFEST,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        damaged(c, XD_CKPT_MANIFEST, errno, "cannot open it");
    else if (fstat(fd, &st))
        damaged(c, XD_CKPT_MANIFEST, errno, "cannot examine it");
    else if (!S_ISREG(st.st_mode))
        damaged(c, XD_CKPT_MANIFEST, 0, "not a regular file");
    else if (c->trust &&
             trusted(fd, manifest_label(c, label, sizeof(label)), CKPT_STAKE, TRUST_ALLOWED))
        ; /* said why */
    else if (!st.st_size)
        damaged(c, XD_CKPT_MANIFEST, 0, "empty");
    else if (st.st_size > MANIFEST_MAX)
        damaged(c, XD_CKPT_MANIFEST, 0, "%lld bytes, more than a manifest's %u",
                (long long)st.st_size, MANIFEST_MAX);
    else if (!(text = calloc(1, (size_t)st.st_size + 1)))
        damaged(c, XD_CKPT_MANIFEST, ENOMEM, "cannot read it");
    for (off_t got = 0; text && got < st.st_size;) {
        ssize_t n = pread(fd, text + got, (size_t)(st.st_size - got), got);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            damaged(c, XD_CKPT_MANIFEST, n ? errno : 0, "cannot read it%s",
                    n ? "" : ": shorter than its size");
            free(text);
            text = NULL;
        }
        got += n > 0 ? n : 0;
        *len = (size_t)got;
    }
    if (fd >= 0)
        close(fd);
    return text;
}

/* Parse the manifest: JSON (no checksum covers its bytes, so white space is
 * free) of our format with a files array. 0, or 1 with one line. */
static int parse_manifest(struct ckpt *c, const char *text, size_t len)
{
    const char *end = NULL;
    c->root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!c->root)
        return damaged(c, XD_CKPT_MANIFEST, 0, "not valid JSON (from byte %zu of %zu)",
                       end ? (size_t)(end - text) : (size_t)0, len);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(c->root, "format");
    c->files = cJSON_GetObjectItemCaseSensitive(c->root, "files");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, XD_CKPT_FORMAT))
        return damaged(c, XD_CKPT_MANIFEST, 0, "not a manifest of format %s", XD_CKPT_FORMAT);
    if (!cJSON_IsArray(c->files))
        return damaged(c, XD_CKPT_MANIFEST, 0, "no \"files\" array");
    return 0;
}

/* Open DIR/ID and parse its manifest. 0, or 1 with one line on stderr:
 * "no checkpoint" only when there is nothing by that name; a directory of
 * that name that cannot be read is a damaged checkpoint, named as such. */
static int ckpt_load(int dirfd, const char *dir, const char *id, bool trust, struct ckpt *c)
{
    char label[PATH_MAX + 64];
    size_t len = 0;
    *c = (struct ckpt){.dir = dir, .id = id, .fd = -1, .trust = trust};
    if (xd_ckpt_is_id(id))
        c->fd = openat(dirfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (c->fd < 0 && (!xd_ckpt_is_id(id) || errno == ENOENT)) {
        fprintf(stderr, "xdcheckpoint: %s: no checkpoint %s there; allowed: an id `xdcheckpoint list %s` prints\n",
                esc(dir), esc(id), esc(dir));
        return 1;
    }
    if (c->fd < 0)
        return damaged(c, NULL, errno == ELOOP || errno == ENOTDIR ? 0 : errno,
                       "%s", errno == ELOOP || errno == ENOTDIR ? "not a directory" : "cannot open it");
    snprintf(label, sizeof(label), "%s/%s", esc(dir), id);
    if (trust && trusted(c->fd, label, CKPT_STAKE, TRUST_ALLOWED))
        return 1;
    char *text = read_manifest(c, &len);
    int rc = text ? parse_manifest(c, text, len) : 1;
    free(text);
    return rc;
}

static void ckpt_free(struct ckpt *c)
{
    cJSON_Delete(c->root);
    if (c->fd >= 0)
        close(c->fd);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* A file entry's copy name, path, size and crc32c; 1 with a line if bad. */
static int entry_of(const struct ckpt *c, const cJSON *f, const char **copy, const char **path,
                    uint64_t *size, uint32_t *crc)
{
    *copy = str_of(f, "copy");
    *path = str_of(f, "path");
    double s = num_of(f, "size"), k = num_of(f, "crc32c");
    if (!*copy || !*path || (*path)[0] != '/' || strchr(*copy, '/') || s < 0 ||
        s >= 18446744073709551616.0 || k < 0 || k > 4294967295.0) {
        return damaged(c, XD_CKPT_MANIFEST, 0,
                       "a file entry lacks an absolute path, a copy name, a size or a crc32c");
    }
    *size = (uint64_t)s;
    *crc = (uint32_t)k;
    return 0;
}

/* --- list ----------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in DIR shaped like an id, oldest first (NULL and *n 0 when
 * none): a damaged checkpoint is listed too, to be named. Dot-names (the
 * layer's .tmp- and .del- directories) and other names are no checkpoints. */
static char **ids_in(int dirfd, size_t *n)
{
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    char **ids = NULL;
    size_t cap = 0;
    *n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!xd_ckpt_is_id(e->d_name))
            continue;
        if (*n == cap && !(ids = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*ids)))) {
            fprintf(stderr, "xdcheckpoint: out of memory\n");
            exit(1);
        }
        if (!(ids[*n] = strdup(e->d_name))) {
            fprintf(stderr, "xdcheckpoint: out of memory\n");
            exit(1);
        }
        (*n)++;
    }
    if (d)
        closedir(d);
    if (*n)
        qsort(ids, *n, sizeof(*ids), name_cmp);
    return ids;
}

/* A damaged checkpoint is listed as "ID damaged - -" (its reason on
 * stderr) and makes the exit status 1. */
static int cmd_list(int dirfd, const char *dir)
{
    size_t n;
    char **ids = ids_in(dirfd, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct ckpt c;
        flush_stdout(); /* the rows and the reasons in order on a terminal */
        if (ckpt_load(dirfd, dir, ids[i], false, &c)) {
            printf("%s damaged - -\n", ids[i]);
            rc = 1;
        } else {
            printf("%s %s %d %.0f\n", ids[i], str_of(c.root, "time") ? esc(str_of(c.root, "time")) : "?",
                   cJSON_GetArraySize(c.files), num_of(c.root, "bytes"));
        }
        ckpt_free(&c);
        free(ids[i]);
    }
    free(ids);
    return rc;
}

/* --- verify --------------------------------------------------------------- */

/* A copy in the checkpoint, read-only: a regular file, never through a link;
 * O_NONBLOCK so that a FIFO planted in its place cannot hang us. The fd, or
 * -errno (-EINVAL for anything but a regular file). */
static int open_copy(const struct ckpt *c, const char *copy)
{
    struct stat st;
    int fd = openat(c->fd, copy, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static const char *copy_error(int rc)
{
    return rc == -EINVAL ? "not a regular file" : rc == -ELOOP ? "a symbolic link" : strerror(-rc);
}

/* Every copy of c against its manifest; 0, or 1 with a line per bad copy. */
static int ckpt_verify(const struct ckpt *c)
{
    int bad = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, c->files)
    {
        const char *copy, *path;
        uint64_t size, got_size = 0;
        uint32_t crc, got = 0;
        if (entry_of(c, f, &copy, &path, &size, &crc)) {
            bad = 1;
            continue;
        }
        int fd = open_copy(c, copy);
        int rc = fd < 0 ? fd : xd_ckpt_crc_fd(fd, &got, &got_size);
        if (fd >= 0)
            close(fd);
        if (rc)
            fprintf(stderr, "xdcheckpoint: %s/%s/%s: cannot read it: %s; the copy is damaged\n",
                    esc(c->dir), c->id, esc(copy), copy_error(rc));
        else if (got_size != size || got != crc)
            fprintf(stderr, "xdcheckpoint: %s/%s/%s: %llu bytes with crc32c %08x, the manifest says %llu bytes with %08x: the copy is damaged\n",
                    esc(c->dir), c->id, esc(copy), (unsigned long long)got_size, got,
                    (unsigned long long)size, crc);
        bad |= rc || got_size != size || got != crc;
    }
    return bad;
}

static int verify_one(int dirfd, const char *dir, const char *id)
{
    struct ckpt c;
    int rc = ckpt_load(dirfd, dir, id, false, &c) || ckpt_verify(&c);
    if (!rc)
        printf("%s ok %d files\n", id, cJSON_GetArraySize(c.files));
    ckpt_free(&c);
    return rc;
}

static int cmd_verify(int dirfd, const char *dir, const char *id)
{
    if (id)
        return verify_one(dirfd, dir, id);
    size_t n;
    char **ids = ids_in(dirfd, &n);
    int rc = 0;
    if (!n)
        printf("%s: no checkpoints there\n", esc(dir));
    for (size_t i = 0; i < n; i++) {
        rc |= verify_one(dirfd, dir, ids[i]);
        free(ids[i]);
    }
    free(ids);
    return rc;
}

/* --- restore -------------------------------------------------------------- */

struct restore_src {
    int fd;
    uint64_t size;
    uint32_t crc;
    const struct stat *old; /* the file replaced, or NULL */
};

/* A replaced file keeps its owner and group, as it keeps its mode (it is
 * ours or root's: target_check refuses another user's, the group may be
 * any): the temp file is ours until it is filled. fchown may clear set-id
 * bits, so the mode is set again after it. 0 or -errno. */
static int restore_owner(int fd, const struct stat *old, const char **step)
{
    struct stat st;
    *step = "give it the owner and group of the file it replaces";
    if (fstat(fd, &st))
        return -errno;
    if ((st.st_uid != old->st_uid || st.st_gid != old->st_gid) &&
        (fchown(fd, old->st_uid, old->st_gid) || fchmod(fd, old->st_mode & 07777)))
        return -errno;
    return 0;
}

/* The fill of xd_write_file_atomic_with: the copy into the temp file, which
 * must still match the manifest (it was verified a moment ago). */
static int64_t restore_fill(int fd, void *arg, const char **step)
{
    const struct restore_src *src = arg;
    struct xd_ckpt_copy cp;
    *step = "copy the checkpoint's data";
    int rc = xd_ckpt_copy_fd(src->fd, fd, true, &cp);
    if (rc)
        return rc;
    if (cp.size != src->size || cp.crc != src->crc) {
        *step = "copy the checkpoint's data (it changed while being restored)";
        return -EIO;
    }
    rc = src->old ? restore_owner(fd, src->old, step) : 0;
    return rc ? rc : (int64_t)cp.size;
}

/* One file of a restore: its manifest entry, and its directory. */
struct target {
    const char *copy, *path, *base;
    uint64_t size;
    uint32_t crc;
    dev_t dev; /* its directory's, to find a file named twice */
    ino_t ino;
};

/* --- where a target goes ------------------------------------------------------
 * A target's directory is reached from / one name at a time with
 * O_NOFOLLOW (xd_dir_walk), so a link planted in the path cannot send the
 * file elsewhere (open(2) of the whole path would follow a link another
 * user made in a directory of theirs, onto a file of root's). A link is
 * followed only when we or root made it (/data -> /mnt/data is a normal
 * setup): the rule fs.protected_symlinks applies in sticky directories,
 * here everywhere (XD_LINKS_OURS). The directory reached must pass the
 * trust rule, since whoever controls it controls the names in it. */

/* The directory a target goes in, for *at calls; *base is its name there.
 * Its fd, or -1 with one line. */
static int target_dir_open(const char *path, const char **base)
{
    char label[PATH_MAX + 64], dir[PATH_MAX], err[XD_ERRLEN];
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash || path[0] != '/' || !**base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
        fprintf(stderr, "xdcheckpoint: %s: not a file path; allowed: an absolute path naming a file\n",
                esc(path));
        return -1;
    }
    if (snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path) >=
        (int)sizeof(dir)) {
        fprintf(stderr, "xdcheckpoint: %s: %s\n", esc(path), strerror(ENAMETOOLONG));
        return -1;
    }
    int fd = xd_dir_walk(dir, XD_LINKS_OURS, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "xdcheckpoint: %s: %s\n", esc(path), err);
        return -1;
    }
    snprintf(label, sizeof(label), "%s: its directory %s", esc(path), esc(dir));
    if (trusted(fd, label, "whoever controls it could swap the restored file for a link",
                "allowed: a directory you or root own, not writable by others unless sticky")) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int restore_file(const struct ckpt *c, const struct target *t)
{
    char err[XD_ERRLEN];
    const char *base;
    struct stat st = {0};
    struct restore_src src = {.size = t->size, .crc = t->crc};
    int dirfd = target_dir_open(t->path, &base), rc = 0;
    if (dirfd < 0)
        return 1;
    if ((src.fd = open_copy(c, t->copy)) < 0 || fstat(src.fd, &st)) {
        fprintf(stderr, "xdcheckpoint: %s/%s/%s: cannot open it: %s\n", esc(c->dir), c->id,
                esc(t->copy), copy_error(src.fd < 0 ? src.fd : -errno));
        rc = 1;
    }
    /* the file's own mode, owner and group when it is there, else the
     * copy's mode (what the layer gave it: file_permissions) */
    struct stat old;
    mode_t mode = st.st_mode & 07777;
    if (!xd_replace_check(dirfd, base, esc(t->path), &old, err, sizeof(err)) && old.st_mode) {
        mode = old.st_mode & 07777;
        src.old = &old;
    }
    if (!rc && xd_write_file_atomic_with(dirfd, base, mode, restore_fill, &src, esc(t->path), err,
                                         sizeof(err)) < 0) {
        fprintf(stderr, "xdcheckpoint: %s\n", err);
        rc = 1;
    }
    if (!rc)
        printf("restored %s (%llu bytes)\n", esc(t->path), (unsigned long long)t->size);
    if (src.fd >= 0)
        close(src.fd);
    close(dirfd);
    return rc;
}

/* Whether target i may be written, given the ones before it: its directory
 * opens, no earlier entry names the same file (without --force the second
 * copy would silently replace the first), and what is there is a regular
 * file of ours or root's (xd_replace_check: another user's, planted in a
 * sticky directory, would be removed, and its owner kept got the restored
 * bytes), replaced only with --force. 0, or 1 with one line. */
static int target_check(const struct ckpt *c, struct target *t, int i, bool force)
{
    char err[XD_ERRLEN];
    struct stat st;
    int fd = target_dir_open(t[i].path, &t[i].base), rc = 0;
    if (fd < 0)
        return 1;
    if (fstat(fd, &st))
        st = (struct stat){0};
    t[i].dev = st.st_dev;
    t[i].ino = st.st_ino;
    for (int j = 0; j < i && !rc; j++) {
        if (t[j].dev != t[i].dev || t[j].ino != t[i].ino || strcmp(t[j].base, t[i].base))
            continue;
        fprintf(stderr, "xdcheckpoint: %s/%s/%s: names one file twice: %s (file %d) and %s (file %d); allowed: a manifest naming each file once\n",
                esc(c->dir), c->id, XD_CKPT_MANIFEST, esc(t[j].path), j + 1, esc(t[i].path), i + 1);
        rc = 1;
    }
    if (!rc && xd_replace_check(fd, t[i].base, esc(t[i].path), &st, err, sizeof(err))) {
        fprintf(stderr, "xdcheckpoint: %s\n", err);
        rc = 1;
    } else if (!rc && st.st_mode && !force) {
        fprintf(stderr, "xdcheckpoint: %s exists; allowed: --force to replace it with checkpoint %s's copy\n",
                esc(t[i].path), c->id);
        rc = 1;
    }
    close(fd);
    return rc;
}

/* Every target checked before any is written, so a refusal leaves every
 * file as it was. The entries were checked by ckpt_verify. */
static int restore_all(const struct ckpt *c, bool force)
{
    int n = cJSON_GetArraySize(c->files), i = 0, rc = 0;
    struct target *t = calloc(n ? (size_t)n : 1, sizeof(*t));
    const cJSON *f;
    if (!t) {
        fprintf(stderr, "xdcheckpoint: out of memory\n");
        return 1;
    }
    cJSON_ArrayForEach(f, c->files)
    {
        struct target *e = &t[i];
        rc = entry_of(c, f, &e->copy, &e->path, &e->size, &e->crc) || target_check(c, t, i, force);
        if (rc)
            break;
        i++;
    }
    for (i = 0; !rc && i < n; i++)
        rc = restore_file(c, &t[i]);
    free(t);
    return rc;
}

static int cmd_restore(int dirfd, const char *dir, const char *id, bool force)
{
    struct ckpt c;
    int rc = ckpt_load(dirfd, dir, id, true, &c) || ckpt_verify(&c) || restore_all(&c, force);
    ckpt_free(&c);
    return rc;
}

/* The command line: CMD DIR [ID] [--force]. 0, or 2 with one line. */
static int parse_args(int argc, char **argv, const char **id, bool *force)
{
    const char *cmd = argv[1];
    bool list = !strcmp(cmd, "list"), verify = !strcmp(cmd, "verify"),
         restore = !strcmp(cmd, "restore");
    int nargs = 0;
    if (!list && !verify && !restore)
        return usage_error("unknown command \"%s\"", esc(cmd));
    if (argc < 3)
        return usage_error("%s needs DIR", cmd);
    for (int i = 3; i < argc; i++) {
        if (restore && !strcmp(argv[i], "--force"))
            *force = true;
        else if (argv[i][0] == '-')
            return usage_error("%s: unknown option \"%s\"", cmd, esc(argv[i]));
        else if (list || nargs == 1)
            return usage_error("%s: an extra argument \"%s\"", cmd, esc(argv[i]));
        else
            id[nargs++] = argv[i];
    }
    if (restore && !nargs)
        return usage_error("restore needs DIR and ID");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: " USAGE);
        return stdout_done(0);
    }
    if (argc < 2)
        return usage_error("no command");
    const char *cmd = argv[1], *id = NULL;
    char dir[PATH_MAX];
    bool force = false;
    int rc = parse_args(argc, argv, &id, &force);
    if (rc)
        return rc;
    /* without its trailing slashes, as the checkpoint layer names it */
    size_t len = strlen(argv[2]);
    while (len > 1 && argv[2][len - 1] == '/')
        len--;
    if (len >= sizeof(dir))
        return usage_error("DIR of %zu bytes; a path of at most %d", len, PATH_MAX - 1);
    snprintf(dir, sizeof(dir), "%.*s", (int)len, argv[2]);
    bool restore = !strcmp(cmd, "restore");
    int dirfd = restore ? open_trusted_dir(dir) : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 && !restore)
        fprintf(stderr, "xdcheckpoint: %s: cannot open the directory: %s\n", esc(dir),
                strerror(errno));
    if (dirfd < 0)
        return 1;
    rc = !strcmp(cmd, "list")     ? cmd_list(dirfd, dir)
         : !strcmp(cmd, "verify") ? cmd_verify(dirfd, dir, id)
                                  : cmd_restore(dirfd, dir, id, force);
    close(dirfd);
    return stdout_done(rc);
}
