/* outfile.c - xdreport's output files: see outfile.h. */
#include "outfile.h"

#include "../backends/core/fileutil.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* A symlink at the directory's own name must be the caller's or root's
 * and still lead to the directory open as dirfd, as in the library's
 * xd_dir_check: dir_ok judges the link's target, so another user's link in
 * /tmp would choose which of root's directories gets the file. 0, or -1
 * with the reason. */
static int dir_link_ok(int dirfd, const char *dir)
{
    struct stat link, target, held;
    char name[PATH_MAX];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') /* "d/" would make lstat follow d */
        len--;
    snprintf(name, sizeof(name), "%.*s", (int)len, dir);
    if (!lstat(name, &link) && !S_ISLNK(link.st_mode))
        return 0;
    if (!lstat(name, &link) && (link.st_uid == geteuid() || link.st_uid == 0) &&
        !stat(name, &target) && !fstat(dirfd, &held) && target.st_dev == held.st_dev &&
        target.st_ino == held.st_ino)
        return 0;
    snprintf(refused, sizeof(refused), "directory %s is reached through a symbolic link of another user's (or moved since it was opened); allowed: the directory itself, or a link of yours or root's",
             dir);
    errno = EPERM;
    return -1;
}

/* A link in a name above the directory (/tmp/x in /tmp/x/y) gets the rule
 * fs.protected_symlinks=1 would apply (the library's xd_dir_links_check,
 * the walk xdevice's own directories get): another user's link in /tmp
 * chose which of root's directories got the file. 0, or -1 with the
 * reason. */
static int links_above_ok(int dirfd, const char *dir)
{
    char why[sizeof(refused)];
    int rc = xd_dir_links_check(dirfd, dir, why, sizeof(why));
    if (!rc)
        return 0;
    snprintf(refused, sizeof(refused), "%s", why);
    errno = -rc == XD_EUNTRUSTED_LINK ? EPERM : -rc;
    return -1;
}

static const char *kind_of(mode_t mode)
{
    return S_ISREG(mode)    ? "a regular file"
           : S_ISLNK(mode)  ? "a symbolic link"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISSOCK(mode) ? "a socket"
                            : "a special file";
}

/* Whether what is at name may be replaced: nothing, or a regular file of
 * the caller's or root's (an earlier output), or with link_ok a link of
 * theirs, which is removed rather than followed. The directory may be a
 * shared one like /tmp, where root could remove any user's report.html:
 * never what another user made. 0 (*absent set), or -1 with the reason. */
static int target_ok(int dirfd, const char *name, bool link_ok, int *absent)
{
    struct stat st;

    *absent = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        *absent = errno == ENOENT;
        return *absent ? 0 : -1;
    }
    if (!S_ISREG(st.st_mode) && !(link_ok && S_ISLNK(st.st_mode)))
        snprintf(refused, sizeof(refused), "%s is at that name, not %s; allowed: a regular file of yours or root's, or no file",
                 kind_of(st.st_mode), S_ISLNK(st.st_mode) ? "followed or replaced" : "replaced");
    else if (st.st_uid != geteuid() && st.st_uid != 0)
        snprintf(refused, sizeof(refused), "a file of uid %u is at that name, not replaced; allowed: a regular file of yours (uid %u) or root's, or no file",
                 (unsigned)st.st_uid, (unsigned)geteuid());
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
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1, absent;
    if (dirfd < 0)
        return NULL;
    if (!dir_ok(dirfd, dir) && !target_ok(dirfd, base, true, &absent) &&
        (!unlinkat(dirfd, base, 0) || errno == ENOENT))
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

/* --- the output directory -------------------------------------------------------- */

/* mkdir -p of every directory above the last name in path. */
static int make_parents(char *path)
{
    for (char *s = path + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        int rc = mkdir(path, 0755) && errno != EEXIST;
        *s = '/';
        if (rc)
            return -1;
    }
    return 0;
}

/* Why the directory at path cannot be opened as one, without following a
 * symlink: one of ours, or strerror's. */
static void not_a_directory(const char *path, int err)
{
    struct stat st;

    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        snprintf(refused, sizeof(refused), "a symbolic link is at that name, not followed; allowed: a directory of yours or root's, or a free name (the directory is made)");
    else if (err == ENOTDIR)
        snprintf(refused, sizeof(refused), "%s is at that name; allowed: a directory of yours or root's, or a free name (the directory is made)",
                 lstat(path, &st) == 0 ? kind_of(st.st_mode) : "something else than a directory");
    errno = err;
}

/* Every directory above the output directory must be one its owner alone
 * controls, as the output directory must: each output is opened by its
 * path, and whoever could rename a directory on the way could swap the
 * output directory for a link elsewhere between the check and a write.
 * A symlink on the way counts when the caller or root made it; names not
 * there yet are the ones make_parents makes, checked before it. 0, or -1
 * with the reason. */
static int ancestors_ok(const char *path)
{
    char abs[PATH_MAX];
    if (path[0] == '/')
        snprintf(abs, sizeof(abs), "%s", path);
    else if (!getcwd(abs, sizeof(abs)) ||
             strlen(abs) + 1 + strlen(path) >= sizeof(abs))
        return -1;
    else
        snprintf(abs + strlen(abs), sizeof(abs) - strlen(abs), "/%s", path);
    for (char *s = strrchr(abs, '/'); s; s = strrchr(abs, '/')) {
        *s = '\0'; /* abs is now the next directory up ("" for /) */
        const char *dir = *abs ? abs : "/";
        struct stat st;
        if (lstat(dir, &st)) {
            if (errno == ENOENT)
                continue; /* made by us, below a directory checked next */
            return -1;
        }
        if (S_ISLNK(st.st_mode) && (st.st_uid == geteuid() || st.st_uid == 0))
            continue;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc = fd < 0 ? -1 : dir_ok(fd, dir);
        if (fd >= 0)
            close(fd);
        if (rc)
            return -1;
        if (!*abs)
            break;
    }
    return 0;
}

/* The output directory must not be writable by others, sticky or not:
 * the charts are removed and then written by name, by gnuplot (O_TRUNC,
 * following links), so in a shared one like /tmp another user could plant
 * a link at NAME.png in between and have root's gnuplot overwrite any
 * file, and the old outputs removed would be anyone's. 0, or -1 with the
 * reason. */
static int private_enough(int fd, const char *dir)
{
    struct stat st;
    if (fstat(fd, &st))
        return -1;
    if (!(st.st_mode & S_IWOTH))
        return 0;
    snprintf(refused, sizeof(refused), "directory %s is writable by others (mode %04o); its outputs are written by name; allowed: a directory not writable by others, or a free name (the directory is made)",
             dir, (unsigned)(st.st_mode & 07777));
    errno = EPERM;
    return -1;
}

int xr_out_dir(const char *path, int *made)
{
    char *copy = strdup(path);
    int fd = -1;

    refused[0] = '\0';
    *made = 0;
    if (!copy || !*copy) {
        free(copy);
        errno = copy ? ENOENT : ENOMEM;
        return -1;
    }
    /* "out/" would follow a symlink at out: the slash asks for its target */
    for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
        copy[n - 1] = '\0';
    if (!ancestors_ok(copy) && !make_parents(copy)) {
        *made = mkdir(copy, 0755) == 0;
        if (*made || errno == EEXIST)
            fd = open(copy, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
            not_a_directory(copy, errno);
    }
    /* once more, now that every name on the way is there: one missing at
     * the first look could have been made by another user before
     * make_parents got to it (mkdir's EEXIST taken as ours), and whoever
     * owns it could later swap OUTDIR for a link to a directory of theirs,
     * where gnuplot, run as the caller, would read their charts.gp */
    if (fd >= 0 && ancestors_ok(copy)) {
        int saved = errno;
        close(fd);
        fd = -1;
        errno = saved;
    }
    int rc = fd >= 0 && !dir_ok(fd, copy) && !private_enough(fd, copy) ? 0 : -1, saved = errno;
    if (fd >= 0)
        close(fd);
    free(copy);
    errno = saved;
    return rc;
}

/* --- files the user names ------------------------------------------------------ */

/* Split path into its directory, opened and checked, and its last name. */
static int open_parent(const char *path, char *name, size_t namelen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;

    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        snprintf(refused, sizeof(refused), "names a directory; allowed: a file path");
        errno = EISDIR;
        return -1;
    }
    if (strlen(base) >= namelen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(name, namelen, "%s", base);
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path) >=
             (int)sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd >= 0 && (dir_link_ok(dirfd, dir) || links_above_ok(dirfd, dir) || dir_ok(dirfd, dir))) {
        int saved = errno;
        close(dirfd);
        errno = saved;
        return -1;
    }
    return dirfd;
}

int xr_out_check(const char *path)
{
    char name[NAME_MAX + 1];
    int absent, dirfd, rc;

    refused[0] = '\0';
    dirfd = open_parent(path, name, sizeof(name));
    if (dirfd < 0)
        return -1;
    rc = target_ok(dirfd, name, false, &absent);
    int saved = errno;
    close(dirfd);
    errno = saved;
    return rc;
}

/* ".NAME.XXXXXX" beside name, made new; the fd or -1. */
static int make_temp(struct xr_out *o)
{
    static unsigned serial;

    for (int tries = 0; tries < 100; tries++) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(o->tmp, sizeof(o->tmp), ".%.200s.%06lx", o->name,
                 ((unsigned long)ts.tv_nsec ^ (unsigned long)getpid() * 2654435761u ^ ++serial) &
                     0xffffff);
        int fd = openat(o->dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

int xr_out_begin(struct xr_out *o, const char *path)
{
    int absent, fd = -1;

    refused[0] = '\0';
    o->f = NULL;
    o->dirfd = open_parent(path, o->name, sizeof(o->name));
    if (o->dirfd < 0)
        return -1;
    if (!target_ok(o->dirfd, o->name, false, &absent))
        fd = make_temp(o);
    /* the mode exactly, whatever the umask: these files are read by CI */
    if (fd >= 0 && !fchmod(fd, 0644))
        o->f = fdopen(fd, "w");
    if (o->f)
        return 0;
    int saved = errno;
    if (fd >= 0) {
        close(fd);
        unlinkat(o->dirfd, o->tmp, 0);
    }
    close(o->dirfd);
    errno = saved;
    return -1;
}

/* The temp file to its name: linked when the name was free (a link fails
 * where anything appeared since, never replacing it), renamed over a file
 * of ours (nobody else may swap it in a checked directory). */
static int move_into_place(struct xr_out *o)
{
    int absent;

    if (target_ok(o->dirfd, o->name, false, &absent))
        return errno;
    if (!absent)
        return renameat(o->dirfd, o->tmp, o->dirfd, o->name) ? errno : 0;
    if (linkat(o->dirfd, o->tmp, o->dirfd, o->name, 0)) {
        if (errno == EEXIST)
            snprintf(refused, sizeof(refused), "a file appeared at that name while it was written, not replaced; allowed: a regular file of yours or root's, or no file");
        return errno;
    }
    unlinkat(o->dirfd, o->tmp, 0);
    return 0;
}

int xr_out_commit(struct xr_out *o)
{
    int err = 0;

    refused[0] = '\0';
    if (fflush(o->f) || ferror(o->f))
        err = errno ? errno : EIO;
    if (!err && fsync(fileno(o->f)))
        err = errno;
    if (fclose(o->f) && !err)
        err = errno;
    if (!err)
        err = move_into_place(o);
    if (err)
        unlinkat(o->dirfd, o->tmp, 0);
    close(o->dirfd);
    errno = err;
    return err ? -1 : 0;
}

/* The directory entry path names: its directory's device and inode, and
 * its last name. 0, or -1 when the directory cannot be examined. */
static int entry_of(const char *path, dev_t *dev, ino_t *ino, const char **base)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    struct stat st = { 0 };
    int rc = dir && stat(dir, &st) == 0 ? 0 : -1;

    free(dir);
    *dev = st.st_dev;
    *ino = st.st_ino;
    *base = slash ? slash + 1 : path;
    return rc;
}

int xr_out_same(const char *a, const char *b)
{
    dev_t da, db;
    ino_t ia, ib;
    const char *ba, *bb;

    if (entry_of(a, &da, &ia, &ba) || entry_of(b, &db, &ib, &bb))
        return strcmp(a, b) == 0;
    return da == db && ia == ib && strcmp(ba, bb) == 0;
}
