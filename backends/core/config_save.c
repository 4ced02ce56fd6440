/* config_save.c - replace an INI file so that readers see the whole old or
 * the whole new file and a crash leaves one of them: temp file, fsync,
 * rename, fsync of the directory. Everything is opened relative to the
 * directory's fd and without following symlinks, so a link planted in the
 * directory cannot redirect the write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xd_internal.h"

#define TEMP_TRIES 1000

/* header as "# " lines, then the INI text, malloc'd. */
static char *save_text(const struct xd_config *cfg, const char *header)
{
    char *ini = xd_config_ini_set_keys(cfg), *text = NULL;
    size_t len = 0;
    FILE *out = ini ? open_memstream(&text, &len) : NULL;
    if (!out) {
        free(ini);
        return NULL;
    }
    for (const char *p = header; p && *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    fputs(ini, out);
    free(ini);
    fclose(out);
    return text;
}

/* path's directory (opened) and last component. */
static int save_split(const char *path, int *dirfd, char **base, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    *base = strdup(slash ? slash + 1 : path);
    if (!dir || !*base) {
        free(dir);
        free(*base);
        *base = NULL;
        return -ENOMEM;
    }
    int rc = 0;
    if (!**base) {
        xd_errf(err, errlen, "%s: names a directory; allowed: a file path", path);
        rc = -EINVAL;
    } else if ((*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot open its directory %s: %s", path, dir, strerror(-rc));
    }
    free(dir);
    if (rc) {
        free(*base);
        *base = NULL;
    }
    return rc;
}

/* Only a regular file (or nothing) at path may be replaced: renaming over a
 * symlink would not follow it, but would silently cut a link someone made. */
static int save_check_target(int dirfd, const char *base, const char *path, char *err,
                             size_t errlen)
{
    struct stat st;
    if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        xd_errf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    if (S_ISREG(st.st_mode))
        return 0;
    xd_errf(err, errlen, "%s: is a %s, not replaced; allowed: a regular file or no file", path,
            S_ISLNK(st.st_mode) ? "symbolic link" : S_ISDIR(st.st_mode) ? "directory" : "special file");
    return S_ISLNK(st.st_mode) ? -ELOOP : -EINVAL;
}

/* A new temp file beside path, as mkstemp would make it but relative to the
 * directory fd. The names are predictable (pid and a counter); that is safe
 * because O_EXCL|O_NOFOLLOW never opens what is already there, whatever it
 * is: a planted name only costs a retry. */
static int save_open_temp(int dirfd, const char *base, char *name, size_t len)
{
    static _Atomic unsigned counter;
    for (int i = 0; i < TEMP_TRIES; i++) {
        snprintf(name, len, ".%s.%d.%u.tmp", base, (int)getpid(), atomic_fetch_add(&counter, 1));
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

static int save_write_all(int fd, const char *text, size_t len)
{
    while (len) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write, set the mode, make it durable; the step that failed goes in err. */
static int save_fill(int fd, const char *text, mode_t mode, const char *path, char *err,
                     size_t errlen)
{
    const char *step = "write";
    int rc = save_write_all(fd, text, strlen(text));
    if (!rc && fchmod(fd, mode)) {
        rc = -errno;
        step = "fchmod";
    }
    if (!rc && fsync(fd)) {
        rc = -errno;
        step = "fsync";
    }
    if (rc)
        xd_errf(err, errlen, "%s: %s of the new file failed: %s", path, step, strerror(-rc));
    return rc;
}

int xd_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen)
{
    char temp[512];
    char *base = NULL, *text = save_text(cfg, header);
    int dirfd = -1, fd = -1, rc = text ? 0 : -ENOMEM;

    if (!rc)
        rc = save_split(path, &dirfd, &base, err, errlen);
    if (!rc)
        rc = save_check_target(dirfd, base, path, err, errlen);
    if (!rc && (fd = save_open_temp(dirfd, base, temp, sizeof(temp))) < 0) {
        rc = fd;
        xd_errf(err, errlen, "%s: cannot create a temp file beside it: %s", path, strerror(-rc));
    }
    if (!rc)
        rc = save_fill(fd, text, (mode_t)cfg->config_file_mode, path, err, errlen);
    if (fd >= 0 && close(fd) && !rc) {
        rc = -errno;
        xd_errf(err, errlen, "%s: close of the new file failed: %s", path, strerror(-rc));
    }
    if (!rc && renameat(dirfd, temp, dirfd, base)) {
        rc = -errno;
        xd_errf(err, errlen, "%s: rename over it failed: %s", path, strerror(-rc));
    }
    if (rc && fd >= 0)
        unlinkat(dirfd, temp, 0);
    /* the rename is durable only once the directory is */
    if (!rc && fsync(dirfd)) {
        rc = -errno;
        xd_errf(err, errlen, "%s: fsync of its directory failed: %s", path, strerror(-rc));
    }
    if (dirfd >= 0)
        close(dirfd);
    free(base);
    free(text);
    return rc;
}
