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

/* What went to stdout must have arrived: a listing cut short by a full disk
 * or a closed pipe is a failure, not an empty answer. */
static int stdout_done(int rc)
{
    int e = fflush(stdout) ? errno : 0;
    if (!e && !ferror(stdout))
        return rc;
    fprintf(stderr, "xdcheckpoint: standard output: cannot write: %s\n", strerror(e ? e : EIO));
    return rc ? rc : 1;
}

/* One checkpoint: its directory, manifest and the manifest's files. */
struct ckpt {
    const char *dir, *id;
    int fd; /* DIR/ID */
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

/* The manifest's bytes, NUL-terminated, *len of them; NULL with one line
 * when it cannot be read. O_NONBLOCK: a FIFO planted there must not hang. */
static char *read_manifest(const struct ckpt *c, size_t *len)
{
    struct stat st;
    char *text = NULL;
    int fd = openat(c->fd, XD_CKPT_MANIFEST, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        damaged(c, XD_CKPT_MANIFEST, errno, "cannot open it");
    else if (fstat(fd, &st))
        damaged(c, XD_CKPT_MANIFEST, errno, "cannot examine it");
    else if (!S_ISREG(st.st_mode))
        damaged(c, XD_CKPT_MANIFEST, 0, "not a regular file");
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
static int ckpt_load(int dirfd, const char *dir, const char *id, struct ckpt *c)
{
    size_t len = 0;
    *c = (struct ckpt){.dir = dir, .id = id, .fd = -1};
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
    if (!*copy || !*path || (*path)[0] != '/' || strchr(*copy, '/') || s < 0 || k < 0 ||
        k > 4294967295.0) {
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
    int fd = dup(dirfd);
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
        ids[(*n)++] = strdup(e->d_name);
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
        fflush(stdout); /* the rows and the reasons in order on a terminal */
        if (ckpt_load(dirfd, dir, ids[i], &c)) {
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
        int fd = openat(c->fd, copy, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        int rc = fd < 0 ? -errno : xd_ckpt_crc_fd(fd, &got, &got_size);
        if (fd >= 0)
            close(fd);
        if (rc)
            fprintf(stderr, "xdcheckpoint: %s/%s/%s: cannot read it: %s\n", c->dir, c->id, copy,
                    strerror(-rc));
        else if (got_size != size || got != crc)
            fprintf(stderr, "xdcheckpoint: %s/%s/%s: %llu bytes with crc32c %08x, the manifest says %llu bytes with %08x: the copy is damaged\n",
                    c->dir, c->id, copy, (unsigned long long)got_size, got,
                    (unsigned long long)size, crc);
        bad |= rc || got_size != size || got != crc;
    }
    return bad;
}

static int verify_one(int dirfd, const char *dir, const char *id)
{
    struct ckpt c;
    int rc = ckpt_load(dirfd, dir, id, &c) || ckpt_verify(&c);
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
};

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
    return (int64_t)cp.size;
}

static int restore_file(const struct ckpt *c, const char *copy, const char *path, uint64_t size,
                        uint32_t crc)
{
    char err[XD_ERRLEN];
    const char *base;
    struct stat st;
    struct restore_src src = {.size = size, .crc = crc};
    int dirfd = xd_dir_open_for(path, path, false, &base, err, sizeof(err)), rc = 0;
    if (dirfd < 0) {
        fprintf(stderr, "xdcheckpoint: %s\n", err);
        return 1;
    }
    if ((src.fd = openat(c->fd, copy, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fstat(src.fd, &st)) {
        fprintf(stderr, "xdcheckpoint: %s/%s/%s: cannot open it: %s\n", c->dir, c->id, copy,
                strerror(errno));
        rc = 1;
    }
    /* the file's own mode when it is there, else the copy's */
    struct stat old;
    mode_t mode = st.st_mode & 07777;
    if (!fstatat(dirfd, base, &old, AT_SYMLINK_NOFOLLOW) && S_ISREG(old.st_mode))
        mode = old.st_mode & 07777;
    if (!rc && xd_write_file_atomic_with(dirfd, base, mode, restore_fill, &src, path, err,
                                         sizeof(err)) < 0) {
        fprintf(stderr, "xdcheckpoint: %s\n", err);
        rc = 1;
    }
    if (!rc)
        printf("restored %s (%llu bytes)\n", path, (unsigned long long)size);
    if (src.fd >= 0)
        close(src.fd);
    close(dirfd);
    return rc;
}

/* Without --force, any file already at a target refuses the whole restore. */
static int restore_refused(const struct ckpt *c)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, c->files)
    {
        const char *copy, *path;
        uint64_t size;
        uint32_t crc;
        struct stat st;
        if (!entry_of(c, f, &copy, &path, &size, &crc) && !lstat(path, &st)) {
            fprintf(stderr, "xdcheckpoint: %s exists; allowed: --force to replace it with checkpoint %s's copy\n",
                    path, c->id);
            return 1;
        }
    }
    return 0;
}

static int cmd_restore(int dirfd, const char *dir, const char *id, bool force)
{
    struct ckpt c;
    int rc = ckpt_load(dirfd, dir, id, &c) || ckpt_verify(&c) || (!force && restore_refused(&c));
    const cJSON *f;
    if (!rc) {
        cJSON_ArrayForEach(f, c.files)
        {
            const char *copy, *path;
            uint64_t size;
            uint32_t crc;
            rc |= entry_of(&c, f, &copy, &path, &size, &crc) ||
                  restore_file(&c, copy, path, size, crc);
        }
    }
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
    const char *cmd = argv[1], *dir = argv[2], *id = NULL;
    bool force = false;
    int rc = parse_args(argc, argv, &id, &force);
    if (rc)
        return rc;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(stderr, "xdcheckpoint: %s: cannot open the directory: %s\n", esc(dir),
                strerror(errno));
        return 1;
    }
    rc = !strcmp(cmd, "list")     ? cmd_list(dirfd, dir)
         : !strcmp(cmd, "verify") ? cmd_verify(dirfd, dir, id)
                                  : cmd_restore(dirfd, dir, id, force);
    close(dirfd);
    return stdout_done(rc);
}
