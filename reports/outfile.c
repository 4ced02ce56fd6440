/* outfile.c - xdreport's output files: see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char refused[PATH_MAX + 200]; /* the last refusal; xdreport is one thread */

/* The directory at dirfd must be the caller's or root's, and not writable
 * by others without the sticky bit. */
static int dir_ok(int dirfd, const char *dir)
{
    struct stat st;
    if (fstat(dirfd, &st))
        return -1;
    if (st.st_uid != geteuid() && st.st_uid != 0)
        snprintf(refused, sizeof(refused), "directory %s belongs to uid %u, not to uid %u or root; allowed: a directory you or root own",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
    else if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        snprintf(refused, sizeof(refused), "directory %s is writable by others without the sticky bit (mode %04o); allowed: one not writable by others, or sticky like /tmp",
                 dir, (unsigned)(st.st_mode & 07777));
    else
        return 0;
    errno = EPERM;
    return -1;
}

FILE *xr_out_open(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    refused[0] = '\0';
    if (!*base) {
        errno = EISDIR;
        return NULL;
    }
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path) >=
             (int)sizeof(dir)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
    if (dirfd < 0)
        return NULL;
    if (!dir_ok(dirfd, dir) && (!unlinkat(dirfd, base, 0) || errno == ENOENT))
        fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int saved = errno;
    close(dirfd);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0) {
        saved = errno;
        close(fd);
    }
    errno = f ? errno : saved;
    return f;
}

const char *xr_out_strerror(int err)
{
    return refused[0] ? refused : strerror(err);
}
