/* fileutil.c - file and directory chores the drivers and layers share. */
#include "fileutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "xd_internal.h"
#include "../xdevice.h"

/* mkdir dir with mode exactly, whatever the umask. The mode is set on the
 * directory opened without following a link, and only on one of the
 * caller's: chmod(2) by name followed a link that the owner of the parent
 * put at the name after the mkdir, onto any file (/etc/shadow made 0755).
 * 0 (made or there already) or -errno. */
static int mkdir_exact(const char *dir, mode_t mode)
{
    struct stat st;
    if (mkdir(dir, mode))
        return errno == EEXIST ? 0 : -errno;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno; /* swapped for a link (ELOOP) or a file since the mkdir */
    int rc = fstat(fd, &st) ? -errno : st.st_uid != geteuid() ? -EPERM : fchmod(fd, mode) ? -errno : 0;
    close(fd);
    return rc;
}

int xd_mkdir_p(const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    struct stat st;
    int rc;
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if ((rc = mkdir_exact(dir, mode)))
            return rc;
        *p = '/';
    }
    if ((rc = mkdir_exact(dir, mode)))
        return rc;
    if (stat(dir, &st))
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int xd_mkdir_parents(const char *path, mode_t mode)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return xd_mkdir_p(dir, mode);
}

int64_t xd_file_set_size(const struct xd_config *cfg, int fd, uint64_t size)
{
    struct stat st;
    int64_t reserved = 0;
    if (fstat(fd, &st))
        return -errno;
    if (cfg->preallocate_files && cfg->use_fallocate) {
        uint64_t extent = (uint64_t)cfg->extent_size;
        reserved = (int64_t)((size + extent - 1) / extent * extent);
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)reserved))
            return -errno;
    }
    if ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size))
        return -errno;
    return reserved;
}

int xd_path_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st))
        return -errno;
    if (!S_ISBLK(st.st_mode)) {
        *size = (uint64_t)st.st_size;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
    close(fd);
    return rc;
}

/* A partition has no queue/ of its own: its disk's is one level up. */
uint64_t xd_device_readahead(int fd)
{
    static const char *const where[] = {"/sys/dev/block/%u:%u/queue/read_ahead_kb",
                                        "/sys/dev/block/%u:%u/../queue/read_ahead_kb"};
    struct stat st;
    unsigned long long kb;
    if (fstat(fd, &st))
        return 0;
    dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    for (unsigned i = 0; i < 2; i++) {
        char path[96];
        snprintf(path, sizeof(path), where[i], major(dev), minor(dev));
        FILE *fp = fopen(path, "re");
        if (!fp)
            continue;
        int ok = fscanf(fp, "%llu", &kb) == 1;
        fclose(fp);
        if (ok)
            return kb * 1024;
    }
    return 0;
}

/* --- files xdevice makes for itself --------------------------------------- */

#define TEMP_TRIES 100

void xd_private_dir_path(char *buf, size_t len)
{
    snprintf(buf, len, "/dev/shm/xdevice-%u", (unsigned)geteuid());
}

int xd_private_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        int rc = -errno;
        xd_errf(err, errlen, "%s: cannot create it: %s", dir, strerror(-rc));
        return rc;
    }
    if (lstat(dir, &st)) {
        int rc = -errno;
        xd_errf(err, errlen, "%s: cannot examine it: %s", dir, strerror(-rc));
        return rc;
    }
    const char *why = S_ISLNK(st.st_mode)           ? "is a symbolic link"
                      : !S_ISDIR(st.st_mode)        ? "is not a directory"
                      : st.st_uid != geteuid()      ? "is owned by another user"
                      : (st.st_mode & 077)          ? "is open to group or others"
                                                    : NULL;
    if (!why)
        return 0;
    xd_errf(err, errlen, "%s: %s; xdevice's per-user directory must be a directory of uid %u with mode 0700; allowed: remove it so xdevice makes it, or name another directory",
            dir, why, (unsigned)geteuid());
    return -EPERM;
}

/* Whether a symbolic link at path, if one is there, is the caller's or
 * root's and still leads to the file open as fd. The types fio lays out
 * follow a link at the data file's name (/dev/disk/by-id names are root's
 * links), but one another user planted in a shared directory such as /tmp
 * would aim root's writes at any file (fs.protected_symlinks is often 0).
 * Checked after the open, so that a link planted between a check and the
 * open cannot slip through; in a sticky directory nobody else can swap a
 * link of ours or root's after it. */
static bool link_trusted(const char *path, int fd)
{
    struct stat link, target, held;
    char name[PATH_MAX];
    size_t len = strlen(path);
    /* "DIR/" would make lstat follow a link at DIR: look at DIR itself */
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len >= sizeof(name))
        return false;
    memcpy(name, path, len);
    name[len] = '\0';
    path = name;
    if (lstat(path, &link) || fstat(fd, &held))
        return false; /* the name went away: cannot vouch for what was opened */
    /* no link now: what was opened must be the file at the name, for the
     * open may have met a link that another user swapped for a file
     * since (rename(2) exchanges names atomically) */
    if (!S_ISLNK(link.st_mode))
        return link.st_dev == held.st_dev && link.st_ino == held.st_ino;
    if (!xd_uid_ours(link.st_uid))
        return false;
    return !stat(path, &target) && target.st_dev == held.st_dev && target.st_ino == held.st_ino;
}

/* --- walking a path one name at a time ------------------------------------
 * open(2) of a whole path follows every link in it. With
 * fs.protected_symlinks=0 root follows a link another user planted in a
 * sticky directory (/tmp/x -> /etc) onto files of root's: the path is
 * walked instead, and each link is judged before it is followed. */

#define WALK_LINKS_MAX 40 /* links followed in one path, as the kernel's MAXSYMLINKS */

struct walk {
    char todo[2 * PATH_MAX]; /* what is left to walk */
    char done[2 * PATH_MAX]; /* the names walked, for messages */
    unsigned links;
    enum xd_link_rule rule;
    char *err;
    size_t errlen;
};

/* The link (st) in the directory dirfd may be followed under w->rule. */
static bool walk_link_allowed(const struct walk *w, int dirfd, const struct stat *st)
{
    struct stat dir;
    if (w->rule == XD_LINKS_OURS)
        return xd_uid_ours(st->st_uid);
    if (st->st_uid == geteuid())
        return true;
    if (fstat(dirfd, &dir))
        return false;
    bool shared = (dir.st_mode & S_ISVTX) && (dir.st_mode & S_IWOTH);
    return !shared || st->st_uid == dir.st_uid;
}

/* name in dirfd is a symbolic link: its target goes in front of what is
 * left to walk when the rule allows it. The fd to go on from (/ for an
 * absolute target), or -errno with one line. */
static int walk_link(struct walk *w, int dirfd, const char *name, const char *rest)
{
    char target[PATH_MAX], todo[sizeof(w->todo)], shown[XD_ESCAPE_LEN];
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW))
        return -errno;
    if (!walk_link_allowed(w, dirfd, &st)) {
        xd_errf(w->err, w->errlen, "%s is a symbolic link of uid %u, not followed: %s; allowed: a path whose links are %s",
                xd_escape(w->done, shown, sizeof(shown)), (unsigned)st.st_uid,
                w->rule == XD_LINKS_OURS ? "whoever made it could send the file anywhere"
                                         : "another user's link in a sticky directory others may write (fs.protected_symlinks' rule)",
                w->rule == XD_LINKS_OURS ? "yours or root's"
                                         : "yours, or in a directory not writable by others, or its owner's");
        return -XD_EUNTRUSTED_LINK;
    }
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n < 0 || ++w->links > WALK_LINKS_MAX)
        return n < 0 ? -errno : -ELOOP;
    target[n] = 0;
    if (snprintf(todo, sizeof(todo), "%s/%s", target, rest) >= (int)sizeof(todo))
        return -ENAMETOOLONG;
    memcpy(w->todo, todo, sizeof(todo));
    char *slash = strrchr(w->done, '/');
    if (target[0] == '/')
        w->done[0] = 0;
    else if (slash)
        *slash = 0; /* relative: from the directory holding the link */
    int fd = target[0] == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
                              : fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* One step: the next name of w->todo opened from dirfd, which it closes.
 * The new fd, or -errno. */
static int walk_step(struct walk *w, int dirfd)
{
    char name[NAME_MAX + 1], rest[sizeof(w->todo)];
    const char *p = w->todo + strspn(w->todo, "/");
    size_t len = strcspn(p, "/"), used = strlen(w->done);
    if (len > NAME_MAX || used + len + 2 > sizeof(w->done)) {
        close(dirfd);
        return -ENAMETOOLONG;
    }
    memcpy(name, p, len);
    name[len] = 0;
    snprintf(rest, sizeof(rest), "%s", p + len);
    snprintf(w->done + used, sizeof(w->done) - used, "/%s", name);
    memmove(w->todo, rest, strlen(rest) + 1);
    /* O_PATH: passing through a directory needs search permission only */
    int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = fd < 0 ? errno : 0;
    struct stat st;
    if (fd < 0 && (e == ELOOP || e == ENOTDIR) &&
        !fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) && S_ISLNK(st.st_mode))
        fd = walk_link(w, dirfd, name, rest);
    else if (fd < 0)
        fd = -e;
    close(dirfd);
    return fd;
}

int xd_dir_walk(const char *path, enum xd_link_rule rule, char *err, size_t errlen)
{
    struct walk w = {.rule = rule, .err = err, .errlen = errlen};
    if (snprintf(w.todo, sizeof(w.todo), "%s", path) >= (int)sizeof(w.todo))
        return -ENAMETOOLONG;
    if (path[0] != '/')
        snprintf(w.done, sizeof(w.done), ".");
    if (err)
        err[0] = 0;
    int fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fd = -errno;
    while (fd >= 0 && w.todo[strspn(w.todo, "/")])
        fd = walk_step(&w, fd);
    if (fd >= 0) { /* the end of the walk is used for *at calls and fsync */
        int dir = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(fd);
        fd = dir < 0 ? -errno : dir;
    }
    char shown[XD_ESCAPE_LEN];
    if (fd < 0 && err && !err[0])
        xd_errf(err, errlen, "cannot open the directory %s: %s",
                w.done[0] ? xd_escape(w.done, shown, sizeof(shown)) : "/", strerror(-fd));
    return fd;
}

int xd_dir_links_check(int dirfd, const char *dir, char *why, size_t whylen)
{
    struct stat held, walked;
    int fd = xd_dir_walk(dir, XD_LINKS_PROTECTED, why, whylen);
    if (fd == -XD_EUNTRUSTED_LINK)
        return fd;
    if (fd < 0) /* gone or not searchable by this walk: nothing to judge */
        return 0;
    bool moved = fstat(fd, &walked) || fstat(dirfd, &held) || walked.st_dev != held.st_dev ||
                 walked.st_ino != held.st_ino;
    close(fd);
    if (!moved)
        return 0;
    xd_errf(why, whylen, "directory %s moved since it was opened; allowed: a directory nobody moves while it is used",
            dir);
    return -EXDEV;
}

/* xd_dir_links_check, said as xd_dir_check says its refusals: true with
 * one line in err. */
static bool dir_links_refused(int dirfd, const char *dir, const char *what, char *err,
                              size_t errlen)
{
    char why[XD_ERRLEN];
    int rc = xd_dir_links_check(dirfd, dir, why, sizeof(why));
    if (rc == -XD_EUNTRUSTED_LINK)
        xd_errf(err, errlen, "%s: directory %s: %s, or allow_shared_directories=true", what, dir,
                why);
    else if (rc)
        xd_errf(err, errlen, "%s: %s, or allow_shared_directories=true", what, why);
    return rc != 0;
}

int xd_dir_check(int dirfd, const char *dir, const char *what, bool allow_shared, char *err,
                 size_t errlen)
{
    struct stat st;
    if (allow_shared)
        return 0;
    if (fstat(dirfd, &st)) {
        int rc = -errno;
        xd_errf(err, errlen, "%s: cannot examine directory %s: %s", what, dir, strerror(-rc));
        return rc;
    }
    /* the owner rule is the target's: a link of another user's at the
     * directory's name (in /tmp, say) would pick which of root's
     * directories xdevice writes into */
    if (!link_trusted(dir, dirfd)) {
        xd_errf(err, errlen, "%s: directory %s is reached through a symbolic link of another user's (or moved since it was opened); allowed: the directory itself, a link of yours or root's, or allow_shared_directories=true",
                what, dir);
        return -EPERM;
    }
    if (dir_links_refused(dirfd, dir, what, err, errlen))
        return -EPERM;
    if (!xd_uid_ours(st.st_uid)) {
        xd_errf(err, errlen, "%s: directory %s belongs to uid %u, not to uid %u or root; its owner could redirect xdevice's files with symlinks; allowed: a directory you or root own, or allow_shared_directories=true",
                what, dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        xd_errf(err, errlen, "%s: directory %s is writable by others without the sticky bit (mode %04o); anyone could redirect xdevice's files with symlinks; allowed: a directory not writable by others, a sticky one like /tmp, or allow_shared_directories=true",
                what, dir, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

int xd_dir_open_for(const char *path, const char *what, bool allow_shared, const char **base,
                    char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!**base) {
        xd_errf(err, errlen, "%s: names a directory; allowed: a file path", what);
        return -EISDIR;
    }
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path) >=
             (int)sizeof(dir))
        return -ENAMETOOLONG;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        xd_errf(err, errlen, "%s: cannot open directory %s: %s", what, dir, strerror(-rc));
        return rc;
    }
    int rc = xd_dir_check(fd, dir, what, allow_shared, err, errlen);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

int xd_create_at(int dirfd, const char *name, int flags, mode_t mode)
{
    int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0700);
    if (fd < 0)
        return -errno;
    /* created owner-only and widened after: the umask must not decide
     * file_permissions, and nobody can open it in between */
    if (fchmod(fd, mode)) {
        int rc = -errno;
        close(fd);
        unlinkat(dirfd, name, 0);
        return rc;
    }
    return fd;
}

int xd_temp_at(int dirfd, const char *base, mode_t mode, char *name, size_t len)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int i = 0; i < TEMP_TRIES; i++) {
        unsigned char r[6];
        char suffix[7];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return -EAGAIN;
        for (unsigned k = 0; k < sizeof(r); k++)
            suffix[k] = alnum[r[k] % (sizeof(alnum) - 1)];
        suffix[6] = '\0';
        if (snprintf(name, len, ".%.200s." XD_TEMP_MARK "%s", base, suffix) >= (int)len)
            return -ENAMETOOLONG;
        int fd = xd_create_at(dirfd, name, O_RDWR, mode);
        if (fd != -EEXIST)
            return fd;
    }
    return -EEXIST;
}

/* Whether name is one xd_temp_at would give base: ".BASE.xdtmp-XXXXXX",
 * BASE cut at 200 bytes, the suffix 6 of its alphanumerics. The mark keeps
 * other programs' temps of the same file (rsync's ".BASE.XXXXXX") out. */
static bool temp_name_of(const char *name, const char *base)
{
    size_t blen = strnlen(base, 200), nlen = strlen(name), mlen = strlen(XD_TEMP_MARK);
    if (nlen != blen + 2 + mlen + 6 || name[0] != '.' || memcmp(name + 1, base, blen) ||
        name[blen + 1] != '.' || memcmp(name + blen + 2, XD_TEMP_MARK, mlen))
        return false;
    for (const char *c = name + blen + 2 + mlen; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

int xd_temp_sweep_at(int dirfd, const char *base)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int removed = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        /* only a plain file of ours with one link: never another's, never
         * what a link would reach */
        if (temp_name_of(e->d_name, base) && !fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
            S_ISREG(st.st_mode) && st.st_uid == geteuid() && st.st_nlink == 1 &&
            !unlinkat(dirfd, e->d_name, 0))
            removed++;
    closedir(d);
    return removed;
}

int xd_unlink_own(const char *path)
{
    struct stat st;
    if (lstat(path, &st))
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
        return -EPERM;
    if (unlink(path))
        return errno == ENOENT ? 0 : -errno;
    return 1;
}

int xd_open_own_at(int dirfd, const char *name, int flags, mode_t mode)
{
    return xd_open_own_at_made(dirfd, name, flags, mode, NULL);
}

int xd_open_own_at_made(int dirfd, const char *name, int flags, mode_t mode, bool *made)
{
    struct stat st;
    if (made)
        *made = false;
    for (int i = 0; i < TEMP_TRIES; i++) {
        int fd = xd_create_at(dirfd, name, flags, mode);
        if (made)
            *made = fd >= 0;
        if (fd != -EEXIST)
            return fd;
        fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue; /* removed in between: create it again */
        if (fd < 0)
            return errno == ENXIO ? -EPERM : -errno; /* ENXIO: a FIFO nobody reads */
        if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
            close(fd);
            return -EPERM;
        }
        /* O_NONBLOCK only kept a planted FIFO from hanging the open */
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
    }
    return -EEXIST;
}

int xd_lock_at(int dirfd, const char *name, mode_t mode)
{
    for (;;) {
        struct stat held, named;
        int fd = xd_open_own_at(dirfd, name, O_RDWR, mode), rc;
        if (fd < 0)
            return fd;
        while ((rc = flock(fd, LOCK_EX) ? -errno : 0) == -EINTR)
            ;
        if (!rc && fstat(fd, &held))
            rc = -errno;
        if (!rc && !fstatat(dirfd, name, &named, AT_SYMLINK_NOFOLLOW) &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino)
            return fd;
        close(fd);
        if (rc)
            return rc;
    }
}

int xd_mkdir_own_at(int dirfd, const char *name, mode_t mode)
{
    struct stat st;
    bool made = !mkdirat(dirfd, name, mode & 0700);
    if (!made && errno != EEXIST)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR && !fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) &&
                       S_ISLNK(st.st_mode)
                   ? -ELOOP
                   : -errno;
    if (fstat(fd, &st) || st.st_uid != geteuid() || (made && fchmod(fd, mode))) {
        int rc = st.st_uid != geteuid() ? -EPERM : -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int xd_format_file_owner_check(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st)) {
        int rc = -errno;
        xd_errf(err, errlen, "%s: cannot examine it: %s", path, strerror(-rc));
        return rc;
    }
    if (xd_uid_ours(st.st_uid))
        return 0;
    xd_errf(err, errlen, "%s: a file of uid %u is at that name; xdevice writes its format into it in place; allowed: a file of yours or root's, or no file",
            path, (unsigned)st.st_uid);
    return -EPERM;
}

void xd_unlink_made(const char *path, int fd)
{
    struct stat here, made;
    if (!lstat(path, &here) && !fstat(fd, &made) && here.st_dev == made.st_dev &&
        here.st_ino == made.st_ino)
        unlink(path);
}

/* With O_CREAT, a new file by O_EXCL (so *made is known), else the one
 * there; one removed between the two opens (a concurrent xd_unlink) is
 * made again rather than the open failing with ENOENT, as open(2) with
 * O_CREAT never does. */
static int open_data_create(const char *path, int flags, mode_t mode, int nofollow, bool *made)
{
    *made = false;
    for (int i = 0; i < TEMP_TRIES; i++) {
        int fd = open(path, flags | O_EXCL | O_NOFOLLOW, mode & 0700);
        if (fd >= 0) {
            if (fchmod(fd, mode)) {
                int rc = -errno;
                xd_unlink_made(path, fd); /* O_EXCL made it: ours, and empty */
                close(fd);
                return rc;
            }
            *made = true;
            return fd;
        }
        if (errno != EEXIST)
            return -errno;
        /* O_NONBLOCK: see open_data_once */
        fd = open(path, (flags & ~O_CREAT) | nofollow | O_NONBLOCK);
        if (fd >= 0 || errno != ENOENT)
            return fd >= 0 ? fd : -errno;
    }
    return -ENOENT;
}

/* One open of path, never through a link with nofollow: the fd or -errno.
 * O_NONBLOCK: a FIFO at the name would block the open until a writer
 * came; it is refused instead (no file's data). Regular files and devices
 * ignore the flag for I/O, and it is cleared again. */
static int open_data_once(const char *path, int flags, mode_t mode, int nofollow, bool *created)
{
    if (flags & O_CREAT)
        return open_data_create(path, flags, mode, nofollow, created);
    int fd = open(path, flags | nofollow | O_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int xd_open_data_made(const char *path, int flags, mode_t mode, bool follow, bool *made)
{
    bool created = false, via_link = false;
    /* a link is followed only on a second open, when the first found one
     * at the name: a plain file never meets link_trusted's lstat, which
     * fails when a concurrent xd_unlink removed the name meanwhile */
    int fd = open_data_once(path, flags, mode, O_NOFOLLOW, &created);
    if (fd == -ELOOP && follow) {
        via_link = true;
        fd = open_data_once(path, flags, mode, 0, &created);
    }
    struct stat st;
    if (made)
        *made = created;
    if (fd < 0 || created)
        return fd;
    if (via_link && !link_trusted(path, fd)) {
        close(fd);
        return -XD_EUNTRUSTED_LINK;
    }
    if (!fstat(fd, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        close(fd);
        return -ENXIO;
    }
    int now = fcntl(fd, F_GETFL);
    if (!(flags & O_NONBLOCK) && (now < 0 || fcntl(fd, F_SETFL, now & ~O_NONBLOCK))) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

char *xd_own_name(const char *path, const struct stat *st)
{
    struct stat now;
    char *real = realpath(path, NULL);
    if (real && (stat(real, &now) || now.st_dev != st->st_dev || now.st_ino != st->st_ino)) {
        free(real);
        real = NULL;
    }
    return real ? real : strdup(path);
}

int xd_refuse_other_names(const char *key, const char *path, const struct stat *st,
                          const char *what, char *err, size_t errlen)
{
    if (!S_ISREG(st->st_mode) || st->st_nlink <= 1)
        return 0;
    xd_errf(err, errlen, "%s: %s: the file has %lu names (hard links), and %s would be named after one of them; allowed: a file with one name (symlinks to it are fine)",
            key, path, (unsigned long)st->st_nlink, what);
    return -EMLINK;
}

int xd_open_data(const char *path, int flags, mode_t mode, bool follow)
{
    return xd_open_data_made(path, flags, mode, follow, NULL);
}

int xd_open_own_data(const char *path, int flags, mode_t mode, bool *made)
{
    int fd = xd_open_data_made(path, flags, mode, false, made);
    struct stat st;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
        close(fd);
        return -EPERM;
    }
    return fd;
}

/* shmem_enabled "force" gives every tmpfs large pages whatever its mount. */
static bool tmpfs_large_pages_forced(void)
{
    char line[256] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "re");
    bool forced = f && fgets(line, sizeof(line), f) && strstr(line, "[force]");
    if (f)
        fclose(f);
    return forced;
}

/* A mountinfo line: "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS] - TYPE SOURCE SUPER". */
static bool mountinfo_large_pages(const char *line, unsigned maj, unsigned min)
{
    unsigned a, b;
    const char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %u:%u", &a, &b) != 2 || a != maj || b != min)
        return false;
    return strncmp(dash + 3, "tmpfs ", 6) == 0 &&
           (strstr(dash, ",huge=always") || strstr(dash, ",huge=within_size"));
}

bool xd_tmpfs_large_pages(dev_t dev)
{
    char line[4096];
    bool large = false;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    while (f && !large && fgets(line, sizeof(line), f))
        large = mountinfo_large_pages(line, major(dev), minor(dev));
    if (f)
        fclose(f);
    return large || tmpfs_large_pages_forced();
}

void xd_fd_noatime(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NOATIME))
        (void)fcntl(fd, F_SETFL, fl | O_NOATIME);
}

/* path opened non-blocking (a FIFO with no writer does not hold the open)
 * and made blocking again; with regular, anything but a regular file is
 * -ENXIO. fd or -errno. */
static int open_unblocked(const char *path, int flags, bool regular)
{
    struct stat st;
    int fd = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    int rc = regular && fstat(fd, &st) ? -errno
             : regular && !S_ISREG(st.st_mode) ? -ENXIO
             : fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) ? -errno : 0;
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

int xd_open_input(const char *path, int extra)
{
    int fd = open_unblocked(path, O_RDONLY | extra, false);
    if (fd < 0) {
        errno = -fd;
        return -1;
    }
    return fd;
}

int xd_open_regular(const char *path, int flags)
{
    return open_unblocked(path, flags, true);
}

FILE *xd_fopen_input(const char *path)
{
    int fd = xd_open_input(path, 0);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
    if (!f && fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

int xd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

#define RETRY_EINTR(call)                                                      \
    ({                                                                         \
        int _r;                                                                \
        while ((_r = (call)) == -1 && errno == EINTR)                          \
            ;                                                                  \
        _r;                                                                    \
    })

bool xd_uid_ours(uid_t uid)
{
    return uid == geteuid() || uid == 0;
}

/* Only a regular file of ours or root's (or nothing) at name may be
 * replaced: renaming over a symlink would not follow it, but would silently
 * cut a link someone made, and renaming over another user's file (planted
 * in /tmp, or theirs all along) would remove a file that is not ours. */
int xd_replace_check(int dirfd, const char *name, const char *what, struct stat *found,
                     char *err, size_t errlen)
{
    struct stat st;
    if (found)
        found->st_mode = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        int rc = errno == ENOENT ? 0 : -errno;
        if (rc)
            xd_errf(err, errlen, "%s: cannot examine it: %s", what, strerror(-rc));
        return rc;
    }
    if (S_ISREG(st.st_mode) && !xd_uid_ours(st.st_uid)) {
        xd_errf(err, errlen, "%s: is a file of uid %u, not replaced (only the caller's or root's files are); allowed: a regular file of yours or root's, or no file",
                what, (unsigned)st.st_uid);
        return -EPERM;
    }
    if (S_ISREG(st.st_mode)) {
        if (found)
            *found = st;
        return 0;
    }
    xd_errf(err, errlen, "%s: is a %s, not replaced; allowed: a regular file or no file", what,
            S_ISLNK(st.st_mode) ? "symbolic link" : S_ISDIR(st.st_mode) ? "directory" : "special file");
    return S_ISLNK(st.st_mode) ? -ELOOP : S_ISDIR(st.st_mode) ? -EISDIR : -EPERM;
}

/* Fill the temp file tmp (open as fd) and rename it over name; the temp
 * file is gone when this fails. Returns the bytes filled or -errno. */
static int64_t atomic_fill_rename(int dirfd, int fd, const char *tmp, const char *name,
                                  xd_fill_fn fill, void *arg, const char **step)
{
    *step = "write the temporary file";
    int64_t rc = fill(fd, arg, step);
    if (rc >= 0 && RETRY_EINTR(fsync(fd))) {
        rc = -errno;
        *step = "fsync the temporary file";
    }
    if (close(fd) && rc >= 0) {
        rc = -errno;
        *step = "close the temporary file";
    }
    if (rc >= 0 && renameat(dirfd, tmp, dirfd, name)) {
        rc = -errno;
        *step = "rename the temporary file over it";
    }
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int64_t xd_write_file_atomic_with(int dirfd, const char *name, mode_t mode, xd_fill_fn fill,
                                  void *arg, const char *what, char *err, size_t errlen)
{
    char tmp[NAME_MAX + 1];
    const char *step = "create a temporary file beside it";
    what = what ? what : name;
    int64_t rc = xd_replace_check(dirfd, name, what, NULL, err, errlen);
    if (rc)
        return rc;
    int fd = xd_temp_at(dirfd, name, mode, tmp, sizeof(tmp));
    rc = fd < 0 ? fd : atomic_fill_rename(dirfd, fd, tmp, name, fill, arg, &step);
    /* the rename is durable only once the directory is */
    if (rc >= 0 && RETRY_EINTR(fsync(dirfd))) {
        rc = -errno;
        step = "fsync its directory";
    }
    if (rc < 0)
        xd_errf(err, errlen, "%s: cannot %s: %s", what, step, strerror((int)-rc));
    return rc;
}

struct iov_source {
    const struct iovec *iov;
    int iovcnt;
};

static int64_t fill_from_iov(int fd, void *arg, const char **step)
{
    const struct iov_source *src = arg;
    int64_t total = 0;
    for (int i = 0; i < src->iovcnt; i++) {
        int rc = xd_write_all(fd, src->iov[i].iov_base, src->iov[i].iov_len);
        if (rc)
            return rc;
        total += (int64_t)src->iov[i].iov_len;
    }
    return total;
}

int xd_write_file_atomic(int dirfd, const char *name, mode_t mode, const struct iovec *iov,
                         int iovcnt, const char *what, char *err, size_t errlen)
{
    struct iov_source src = {iov, iovcnt};
    int64_t rc = xd_write_file_atomic_with(dirfd, name, mode, fill_from_iov, &src, what, err,
                                           errlen);
    return rc < 0 ? (int)rc : 0;
}

const char *xd_refusal(int rc)
{
    switch (rc) {
    case -ELOOP:
        return "a symbolic link is at that name (xdevice never follows one there)";
    case -EPERM: /* ours, or the kernel's for an immutable file or directory */
        return "not permitted: another user's file, a hard link or a special file is at that name, or the file or its directory is immutable";
    case -EISDIR:
        return "a directory is at that name";
    case -XD_EUNTRUSTED_LINK:
        return "a symbolic link of another user's is at that name (xdevice follows only the caller's or root's links)";
    case -ENXIO: /* xd_open_regular, xd_open_data */
        return "a FIFO, socket or device is at that name, not a regular file";
    default:
        return strerror(-rc);
    }
}

int xd_fd_reserve(int fd, off_t size)
{
    struct stat st;
    while (fallocate(fd, 0, 0, size))
        if (errno != EINTR) {
            if (errno != EOPNOTSUPP)
                return -errno;
            if (fstat(fd, &st) || (st.st_size < size && ftruncate(fd, size)))
                return -errno;
            break;
        }
    return 0;
}

int xd_shm_open_own(const char *name, off_t size, struct stat *st)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        fd = shm_open(name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, st) ? -errno : 0;
    if (!rc && (!S_ISREG(st->st_mode) || st->st_uid != geteuid()))
        rc = -EPERM;
    if (!rc && size)
        rc = xd_fd_reserve(fd, size);
    if (rc) {
        /* one made here and left short (a full /dev/shm) is not removed:
         * another process may have opened it meanwhile; unheld, the next
         * sweep of its prefix removes it */
        close(fd);
        return rc;
    }
    return fd;
}

static int shm_lock(int fd, int cmd, short type, off_t byte)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    while (fcntl(fd, cmd, &fl))
        if (errno != EINTR)
            return -errno;
    return 0;
}

int xd_shm_hold(int fd, off_t byte, struct stat *st)
{
    int rc = shm_lock(fd, F_OFD_SETLKW, F_RDLCK, byte);
    if (!rc && fstat(fd, st))
        rc = -errno;
    return !rc && st->st_nlink == 0 ? -ENOENT : rc;
}

int xd_shm_open_held(const char *name, off_t size, off_t byte, struct stat *st)
{
    for (unsigned tries = 0; tries < XD_SHM_OPEN_TRIES; tries++) {
        int fd = xd_shm_open_own(name, size, st);
        if (fd == -ENOENT)
            continue; /* removed between the two looks */
        if (fd < 0)
            return fd;
        int rc = xd_shm_hold(fd, byte, st);
        if (!rc)
            return fd;
        close(fd);
        if (rc != -ENOENT) /* -ENOENT: its last user removed it meanwhile */
            return rc;
    }
    return -EAGAIN;
}

/* Once fd holds the exclusive lock nobody else removes the object, so the
 * name still holding inode ino means it is this object. */
static void shm_remove_if_unheld(int fd, const char *name, off_t byte, ino_t ino)
{
    char path[NAME_MAX + 16];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    if (!shm_lock(fd, F_OFD_SETLK, F_WRLCK, byte) && !lstat(path, &st) && st.st_ino == ino &&
        S_ISREG(st.st_mode) && st.st_uid == geteuid())
        shm_unlink(name);
}

void xd_shm_release(int fd, const char *name, off_t byte, ino_t ino)
{
    shm_lock(fd, F_OFD_SETLK, F_UNLCK, byte);
    shm_remove_if_unheld(fd, name, byte, ino);
}

/* Whether name has the shape of the objects the layers make after their
 * prefix: hex numbers (device, inode, view) joined by '-'. A file of the
 * caller's that merely starts with the prefix ("xdevice-cache-notes.txt")
 * was swept with them. */
static bool shm_name_ours(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n))
        return false;
    const char *rest = name + n;
    return isxdigit((unsigned char)rest[0]) && rest[strspn(rest, "0123456789abcdef-")] == '\0' &&
           !strstr(rest, "--") && rest[strlen(rest) - 1] != '-';
}

void xd_shm_sweep(const char *prefix, off_t byte)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        char name[NAME_MAX + 2];
        struct stat st;
        if (!shm_name_ours(de->d_name, prefix))
            continue;
        snprintf(name, sizeof(name), "/%s", de->d_name);
        int fd = shm_open(name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_uid == geteuid())
            shm_remove_if_unheld(fd, name, byte, st.st_ino);
        close(fd);
    }
    closedir(d);
}
