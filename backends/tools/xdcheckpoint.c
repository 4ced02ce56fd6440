/* xdcheckpoint - list, verify and restore the checkpoints the checkpoint
 * layer writes (enable_checkpoints; backends/layers/checkpoint.c).
 *
 *   xdcheckpoint list DIR                one line per checkpoint, oldest first:
 *                                        ID TIME FILES BYTES
 *   xdcheckpoint verify DIR [ID]         recompute each copy's crc32c against
 *                                        the manifest (every checkpoint, or ID)
 *   xdcheckpoint restore DIR ID [--force]
 *                                        copy each file back to its path, each
 *                                        atomically (temp file + rename); an
 *                                        existing file is replaced only with
 *                                        --force
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

static char *read_manifest(int fd, const char *where)
{
    struct stat st;
    char *text = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > MANIFEST_MAX ||
        !(text = calloc(1, (size_t)st.st_size + 1))) {
        fprintf(stderr, "xdcheckpoint: %s: cannot read it\n", where);
        return NULL;
    }
    for (off_t got = 0; got < st.st_size;) {
        ssize_t n = pread(fd, text + got, (size_t)(st.st_size - got), got);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            fprintf(stderr, "xdcheckpoint: %s: cannot read it: %s\n", where,
                    n ? strerror(errno) : "shorter than its size");
            free(text);
            return NULL;
        }
        got += n > 0 ? n : 0;
    }
    return text;
}

/* Open DIR/ID and parse its manifest. 0, or 1 with one line on stderr. */
static int ckpt_load(int dirfd, const char *dir, const char *id, struct ckpt *c)
{
    char where[PATH_MAX + 64];
    *c = (struct ckpt){.dir = dir, .id = id, .fd = -1};
    snprintf(where, sizeof(where), "%s/%s/%s", dir, id, XD_CKPT_MANIFEST);
    if (!xd_ckpt_is_ours(dirfd, id)) {
        fprintf(stderr, "xdcheckpoint: %s: no checkpoint %s there; `xdcheckpoint list %s` names them\n",
                dir, id, dir);
        return 1;
    }
    c->fd = openat(dirfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int mfd = c->fd < 0 ? -1 : openat(c->fd, XD_CKPT_MANIFEST, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    char *text = mfd < 0 ? NULL : read_manifest(mfd, where);
    if (mfd >= 0)
        close(mfd);
    if (mfd < 0)
        fprintf(stderr, "xdcheckpoint: %s: cannot open it: %s\n", where, strerror(errno));
    c->root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(c->root, "format");
    c->files = cJSON_GetObjectItemCaseSensitive(c->root, "files");
    if (c->root && cJSON_IsString(format) && !strcmp(format->valuestring, XD_CKPT_FORMAT) &&
        cJSON_IsArray(c->files))
        return 0;
    if (mfd >= 0)
        fprintf(stderr, "xdcheckpoint: %s: not a manifest of format %s\n", where, XD_CKPT_FORMAT);
    return 1;
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
        fprintf(stderr, "xdcheckpoint: %s/%s/%s: a file entry lacks path, copy, size or crc32c\n",
                c->dir, c->id, XD_CKPT_MANIFEST);
        return 1;
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

/* The ids in DIR, oldest first (NULL and *n 0 when none). */
static char **ids_in(int dirfd, size_t *n)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    char **ids = NULL;
    size_t cap = 0;
    *n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!xd_ckpt_is_ours(dirfd, e->d_name))
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

static int cmd_list(int dirfd, const char *dir)
{
    size_t n;
    char **ids = ids_in(dirfd, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct ckpt c;
        if (ckpt_load(dirfd, dir, ids[i], &c))
            rc = 1;
        else
            printf("%s %s %d %.0f\n", ids[i], str_of(c.root, "time") ? str_of(c.root, "time") : "?",
                   cJSON_GetArraySize(c.files), num_of(c.root, "bytes"));
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
