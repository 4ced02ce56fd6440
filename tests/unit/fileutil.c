/* fileutil.c - unit test of the helpers that make xdevice's own files
 * (backends/core/fileutil.c): a planted symlink, hard link, FIFO or another
 * user's file is never followed or reused; temp names are unpredictable;
 * directories other users control are refused; modes are exact whatever
 * the umask; a lock file may be removed by its last holder; the atomic
 * replace refuses what is not a regular file at its target, skips planted
 * temp names and leaves no temp file behind when it fails; an open that
 * creates never fails because a concurrent unlink removed the file.
 * Exit 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fileutil.h"
#include "xdevice.h"

#define NOBODY 65534

static char base[PATH_MAX];

/* Temp names come from getrandom; this one replaces libc's for the library
 * linked in, so that while predictable_temps is set the names are known:
 * call k gives bytes that are all k, the suffix ".aaaaaa", ".bbbbbb", ... */
static bool predictable_temps;
static unsigned char next_byte;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    if (!predictable_temps)
        return syscall(SYS_getrandom, buf, len, flags);
    memset(buf, next_byte++, len);
    return (ssize_t)len;
}

/* open(2) for the library linked in: while race_unlink names a path, the
 * next O_EXCL open that finds a file there removes it before answering
 * EEXIST, as an xd_unlink in another thread would between the two opens
 * of an XD_OPEN_CREATE. */
static const char *race_unlink;
/* ... and while race_swap names a path, the next open of it that follows
 * links is followed by an exchange of that name with race_swap_with, as
 * another user swapping a link and a file of theirs would do between the
 * open and the look at the name after it. */
static const char *race_swap, *race_swap_with;

/* ... and while race_mkdir names a path, a mkdir that makes it is
 * followed by a link there to race_mkdir_to, as the owner of the parent
 * directory would plant between the mkdir and the chmod. */
static const char *race_mkdir, *race_mkdir_to;

int mkdir(const char *path, mode_t mode)
{
    int rc = (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
    if (!rc && race_mkdir && !strcmp(path, race_mkdir)) {
        char moved[PATH_MAX + 8];
        snprintf(moved, sizeof(moved), "%s.made", path);
        race_mkdir = NULL;
        if (rename(path, moved) || symlink(race_mkdir_to, path))
            perror("race_mkdir");
    }
    return rc;
}

static void swap_names(const char *a, const char *b)
{
    if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */))
        perror("renameat2");
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
    if (fd >= 0 && !(flags & O_NOFOLLOW) && race_swap && !strcmp(path, race_swap)) {
        race_swap = NULL;
        swap_names(path, race_swap_with);
    }
    if (fd < 0 && errno == EEXIST && (flags & O_EXCL) && race_unlink &&
        !strcmp(path, race_unlink)) {
        race_unlink = NULL;
        unlink(path);
        errno = EEXIST;
    }
    return fd;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static char *at(const char *name)
{
    static char buf[4][PATH_MAX + 64];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", base, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static bool has_text(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, text);
}

/* A symlink at a name: creation, reuse, replacement and mkdir all refuse it. */
static void test_symlinks(int dirfd)
{
    write_text(at("victim"), "victim\n");
    symlink(at("victim"), at("link"));
    CHECK(xd_create_at(dirfd, "link", O_WRONLY, 0644) == -EEXIST);
    CHECK(xd_open_own_at(dirfd, "link", O_WRONLY | O_APPEND, 0644) == -ELOOP);
    CHECK(xd_lock_at(dirfd, "link", 0644) == -ELOOP);
    struct iovec iov = {"new\n", 4};
    CHECK(xd_write_file_atomic(dirfd, "link", 0644, &iov, 1, NULL, NULL, 0) == -ELOOP);
    CHECK(xd_mkdir_own_at(dirfd, "link", 0755) == -ELOOP);
    CHECK(xd_open_data(at("link"), O_RDWR | O_CREAT, 0644, false) == -ELOOP);
    CHECK_MSG(has_text(at("victim"), "victim\n"), "the victim was written through the link");
    struct stat st;
    CHECK(!lstat(at("link"), &st) && S_ISLNK(st.st_mode));
}

/* An open with O_CREAT never fails for want of the file: one removed
 * between its two opens (O_EXCL found it, the plain open did not) is made. */
static void test_create_races_unlink(void)
{
    bool made = false;
    write_text(at("raced"), "old\n");
    race_unlink = at("raced");
    int fd = xd_open_data_made(at("raced"), O_RDWR | O_CREAT, 0640, true, &made);
    CHECK_MSG(fd >= 0 && made, "open with O_CREAT racing an unlink: %d", fd);
    struct stat st;
    CHECK(fd >= 0 && !fstat(fd, &st) && st.st_size == 0 && (st.st_mode & 0777) == 0640);
    if (fd >= 0)
        close(fd);
    race_unlink = NULL;
}

/* Another user's link at the data file's name, swapped for a file of
 * theirs right after the open followed it: the name then shows no link,
 * and the open was taken as the file at the name while it held the link's
 * target (root's writes went into any file). */
static void test_link_swapped_after_open(void)
{
    if (geteuid() != 0) {
        printf("SKIP link swapped after the open: needs root (lchown)\n");
        return;
    }
    write_text(at("target"), "ROOT'S\n");
    write_text(at("swapped"), "theirs\n");
    if (symlink(at("target"), at("swapped-link")) || lchown(at("swapped-link"), NOBODY, NOBODY) ||
        chown(at("swapped"), NOBODY, NOBODY)) {
        CHECK_MSG(0, "set-up: %s", strerror(errno));
        return;
    }
    swap_names(at("swapped"), at("swapped-link")); /* the name is their link */
    race_swap = at("swapped");
    race_swap_with = at("swapped-link");
    int fd = xd_open_data(at("swapped"), O_RDWR, 0, true);
    CHECK_MSG(race_swap == NULL, "the swap did not happen");
    CHECK_MSG(fd == -XD_EUNTRUSTED_LINK, "open through a link swapped away: %d, want -%d", fd,
              XD_EUNTRUSTED_LINK);
    if (fd >= 0)
        close(fd);
    race_swap = NULL;
    CHECK(has_text(at("target"), "ROOT'S\n"));
}

/* A link planted at a directory's name right after xd_mkdir_p made it:
 * the mode is set on what the name then held, the link's target. */
static void test_mkdir_link_planted(void)
{
    struct stat st;
    write_text(at("canary"), "x\n");
    chmod(at("canary"), 0600);
    race_mkdir = at("made");
    race_mkdir_to = at("canary");
    int rc = xd_mkdir_p(at("made"), 0755);
    CHECK_MSG(race_mkdir == NULL, "the link was not planted");
    CHECK_MSG(rc == -ELOOP || rc == -ENOTDIR, /* O_DIRECTORY | O_NOFOLLOW on a link: either */
              "mkdir with a link planted after it: %d, want -ELOOP or -ENOTDIR", rc);
    CHECK_MSG(!stat(at("canary"), &st) && (st.st_mode & 07777) == 0600,
              "the link's target got mode %04o", (unsigned)(st.st_mode & 07777));
    race_mkdir = NULL;
}

/* The sweep of shared memory objects left by killed processes removes
 * only names of the layers' shape (prefix, hex numbers joined by '-'): a
 * file of the caller's that starts with the prefix was removed too. */
static void test_shm_sweep_keeps_other_names(void)
{
    const char *theirs = "/dev/shm/xdevice-unitsweep-notes.txt", *ours = "/dev/shm/xdevice-unitsweep-1a-2b";
    write_text(theirs, "notes\n");
    write_text(ours, "");
    xd_shm_sweep("xdevice-unitsweep-", 0);
    CHECK_MSG(has_text(theirs, "notes\n"), "the sweep removed %s", theirs);
    CHECK_MSG(access(ours, F_OK) && errno == ENOENT, "the sweep left %s, unheld", ours);
    unlink(theirs);
    unlink(ours);
}

/* A hard link or FIFO at a reused name is not ours to append to. */
static void test_planted_files(int dirfd)
{
    link(at("victim"), at("hard"));
    CHECK(xd_open_own_at(dirfd, "hard", O_WRONLY | O_APPEND, 0644) == -EPERM);
    mkfifo(at("fifo"), 0600);
    CHECK(xd_open_own_at(dirfd, "fifo", O_WRONLY | O_APPEND, 0644) == -EPERM);
    write_text(at("theirs"), "theirs\n");
    if (geteuid() == 0 && !chown(at("theirs"), NOBODY, NOBODY))
        CHECK(xd_open_own_at(dirfd, "theirs", O_WRONLY | O_APPEND, 0644) == -EPERM);
    CHECK(has_text(at("victim"), "victim\n") && has_text(at("theirs"), "theirs\n"));
}

/* Exact modes; a fresh file, reused when it is ours. */
static void test_modes(int dirfd)
{
    struct stat st;
    mode_t old = umask(077);
    int fd = xd_open_own_at(dirfd, "log", O_WRONLY | O_APPEND, 0664);
    CHECK(fd >= 0 && !fstat(fd, &st) && (st.st_mode & 07777) == 0664);
    if (fd >= 0)
        close(fd);
    fd = xd_open_own_at(dirfd, "log", O_WRONLY | O_APPEND, 0600);
    CHECK_MSG(fd >= 0, "reusing our own file: %d", fd);
    if (fd >= 0)
        close(fd);
    fd = xd_mkdir_own_at(dirfd, "sub", 0750);
    CHECK(fd >= 0 && !fstat(fd, &st) && (st.st_mode & 07777) == 0750);
    if (fd >= 0)
        close(fd);
    CHECK(xd_mkdir_p(at("a/b/c"), 0751) == 0);
    CHECK(!stat(at("a/b"), &st) && (st.st_mode & 07777) == 0751);
    fd = xd_open_data(at("data"), O_RDWR | O_CREAT, 0666, true);
    CHECK(fd >= 0 && !fstat(fd, &st) && (st.st_mode & 07777) == 0666);
    if (fd >= 0)
        close(fd);
    umask(old);
}

/* Temp names differ every time and never land on an existing name. */
static void test_temps(int dirfd)
{
    char a[256], b[256];
    int fa = xd_temp_at(dirfd, "doc", 0600, a, sizeof(a));
    int fb = xd_temp_at(dirfd, "doc", 0600, b, sizeof(b));
    CHECK(fa >= 0 && fb >= 0 && strcmp(a, b) && !strncmp(a, ".doc.", 5));
    if (fa >= 0)
        close(fa), unlinkat(dirfd, a, 0);
    if (fb >= 0)
        close(fb), unlinkat(dirfd, b, 0);
}

static bool has_prefix_entry(const char *prefix)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -q '^%s'", base, prefix);
    return system(cmd) == 0;
}

static int64_t fill_fails(int fd, void *arg, const char **step)
{
    *step = "make up its data";
    return -EIO;
}

/* xd_write_file_atomic: the whole new file with the mode asked for, whatever
 * the umask; what is not a regular file at the name, or is another user's,
 * is refused with one line naming it; a failed fill leaves the old file and no temp file. */
static void test_atomic_write(int dirfd)
{
    char err[XD_ERRLEN] = "";
    struct stat st;
    mode_t old = umask(077);
    struct iovec iov[] = {{"who", 3}, {"le\n", 3}};
    CHECK(xd_write_file_atomic(dirfd, "doc", 0640, iov, 2, NULL, NULL, 0) == 0);
    CHECK(has_text(at("doc"), "whole\n") && !stat(at("doc"), &st) && (st.st_mode & 07777) == 0640);
    iov[0] = (struct iovec){"new\n", 4};
    CHECK(xd_write_file_atomic(dirfd, "doc", 0604, iov, 1, NULL, NULL, 0) == 0);
    CHECK(has_text(at("doc"), "new\n") && !stat(at("doc"), &st) && (st.st_mode & 07777) == 0604);
    umask(old);

    CHECK(xd_write_file_atomic(dirfd, "link", 0644, iov, 1, "the-link", err, sizeof(err)) == -ELOOP);
    CHECK_MSG(strstr(err, "the-link: is a symbolic link") && strstr(err, "allowed: a regular file"),
              "%s", err);
    CHECK(has_text(at("victim"), "victim\n"));
    symlink(at("never-made"), at("dangling"));
    CHECK(xd_write_file_atomic(dirfd, "dangling", 0644, iov, 1, NULL, NULL, 0) == -ELOOP);
    CHECK(access(at("never-made"), F_OK) && errno == ENOENT);
    mkdir(at("adir"), 0755);
    CHECK(xd_write_file_atomic(dirfd, "adir", 0644, iov, 1, NULL, err, sizeof(err)) == -EISDIR);
    CHECK_MSG(strstr(err, "adir: is a directory"), "%s", err);
    CHECK(xd_write_file_atomic(dirfd, "fifo", 0644, iov, 1, NULL, NULL, 0) == -EPERM);
    /* another user's file: the rename would remove it (theirs, in /tmp) */
    write_text(at("theirs-doc"), "theirs\n");
    if (geteuid() == 0 && !chown(at("theirs-doc"), NOBODY, NOBODY)) {
        CHECK(xd_write_file_atomic(dirfd, "theirs-doc", 0644, iov, 1, NULL, err, sizeof(err)) ==
              -EPERM);
        CHECK_MSG(strstr(err, "theirs-doc: is a file of uid 65534") && !strchr(err, '\n'), "%s",
                  err);
        CHECK(has_text(at("theirs-doc"), "theirs\n") && !has_prefix_entry("\\.theirs-doc\\."));
    }

    CHECK(xd_write_file_atomic_with(dirfd, "doc", 0644, fill_fails, NULL, "doc", err,
                                    sizeof(err)) == -EIO);
    CHECK_MSG(strstr(err, "doc: cannot make up its data: ") && !strchr(err, '\n'), "%s", err);
    CHECK(has_text(at("doc"), "new\n"));
    CHECK_MSG(!has_prefix_entry("\\.doc\\."), "a temp file was left behind");
    CHECK_MSG(!has_prefix_entry("\\.link\\.") && !has_prefix_entry("\\.adir\\."),
              "a temp file was left behind");
}

/* Symlinks planted at the temp names the next replace will try are skipped:
 * it lands at the first free name, and every planted link and its target
 * are untouched. */
static void test_planted_temp_names(int dirfd)
{
    static const char letters[] = "abcde";
    char planted[48];
    struct stat st;
    write_text(at("planted-victim"), "precious\n");
    for (int k = 0; letters[k]; k++) {
        snprintf(planted, sizeof(planted), ".planted." XD_TEMP_MARK "%c%c%c%c%c%c", letters[k], letters[k],
                 letters[k], letters[k], letters[k], letters[k]);
        CHECK(!symlink(at("planted-victim"), at(planted)));
    }
    struct iovec iov = {"landed\n", 7};
    next_byte = 0;
    predictable_temps = true;
    int rc = xd_write_file_atomic(dirfd, "planted", 0600, &iov, 1, NULL, NULL, 0);
    predictable_temps = false;
    CHECK_MSG(rc == 0, "%d", rc);
    CHECK(next_byte == 6); /* five planted names skipped, the sixth made */
    CHECK(has_text(at("planted-victim"), "precious\n") && has_text(at("planted"), "landed\n"));
    for (int k = 0; letters[k]; k++) {
        snprintf(planted, sizeof(planted), ".planted." XD_TEMP_MARK "%c%c%c%c%c%c", letters[k], letters[k],
                 letters[k], letters[k], letters[k], letters[k]);
        CHECK(!lstat(at(planted), &st) && S_ISLNK(st.st_mode));
    }
}

/* A waiter on a lock file its holder removes ends up holding the new one. */
static void test_lock_removed(int dirfd)
{
    int fd = xd_lock_at(dirfd, "lock", 0600);
    CHECK(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd); /* an inherited copy would keep the parent's flock */
        int mine = xd_lock_at(dirfd, "lock", 0600);
        struct stat held, named;
        _exit(mine >= 0 && !fstat(mine, &held) && !fstatat(dirfd, "lock", &named, 0) &&
                      held.st_ino == named.st_ino
                  ? 0
                  : 1);
    }
    usleep(100 * 1000); /* the child blocks on the old file (if not, it still passes) */
    unlinkat(dirfd, "lock", 0);
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the waiter held a removed lock");
}

/* xd_dir_walk follows a link in any name of the path only as its rule
 * allows: fs.protected_symlinks' (another user's link in a sticky directory
 * open to all is refused; root's there, or anyone's in a directory others
 * cannot write, is followed), or only ours and root's anywhere. */
static void test_dir_walk(void)
{
    char err[XD_ERRLEN] = "", path[600];
    mkdir(at("walk"), 0755);
    mkdir(at("walk/real"), 0755);
    mkdir(at("walk/real/sub"), 0755);
    mkdir(at("walk/sticky"), 0755);
    chmod(at("walk/sticky"), 01777);
    symlink(at("walk/real"), at("walk/sticky/ours"));
    symlink("real", at("walk/plain")); /* relative, in a directory others cannot write */
    snprintf(path, sizeof(path), "%s/sub", at("walk/sticky/ours"));
    int fd = xd_dir_walk(path, XD_LINKS_PROTECTED, err, sizeof(err));
    CHECK_MSG(fd >= 0, "a link of ours in a sticky directory: %d %s", fd, err);
    if (fd >= 0)
        close(fd);
    snprintf(path, sizeof(path), "%s/sub", at("walk/plain"));
    fd = xd_dir_walk(path, XD_LINKS_OURS, err, sizeof(err));
    CHECK_MSG(fd >= 0, "a relative link of ours: %d %s", fd, err);
    if (fd >= 0)
        close(fd);
    if (geteuid() != 0)
        return;
    symlink(at("walk/real"), at("walk/sticky/theirs"));
    symlink(at("walk/real"), at("walk/theirs-plain"));
    if (lchown(at("walk/sticky/theirs"), NOBODY, NOBODY) ||
        lchown(at("walk/theirs-plain"), NOBODY, NOBODY))
        return;
    snprintf(path, sizeof(path), "%s/sub", at("walk/sticky/theirs"));
    fd = xd_dir_walk(path, XD_LINKS_PROTECTED, err, sizeof(err));
    CHECK_MSG(fd == -XD_EUNTRUSTED_LINK && strstr(err, at("walk/sticky/theirs")) &&
                  strstr(err, "uid 65534") && !strchr(err, '\n'),
              "another user's link in a sticky directory: %d %s", fd, err);
    snprintf(path, sizeof(path), "%s/sub", at("walk/theirs-plain"));
    fd = xd_dir_walk(path, XD_LINKS_PROTECTED, err, sizeof(err));
    CHECK_MSG(fd >= 0, "a link in a directory others cannot write: %d %s", fd, err);
    if (fd >= 0)
        close(fd);
    CHECK(xd_dir_walk(path, XD_LINKS_OURS, err, sizeof(err)) == -XD_EUNTRUSTED_LINK);
}

/* Directories: ours or root's, not writable by others unless sticky. */
static void test_directories(void)
{
    char err[XD_ERRLEN] = "";
    const char *name;
    mkdir(at("open"), 0777);
    chmod(at("open"), 0777);
    int fd = xd_dir_open_for(at("open/f"), "xd_stats=x", false, &name, err, sizeof(err));
    CHECK_MSG(fd == -EPERM && strstr(err, "without the sticky bit") &&
                  strstr(err, "allow_shared_directories") && !strchr(err, '\n'),
              "%d %s", fd, err);
    fd = xd_dir_open_for(at("open/f"), "xd_stats=x", true, &name, err, sizeof(err));
    CHECK(fd >= 0 && !strcmp(name, "f"));
    if (fd >= 0)
        close(fd);
    chmod(at("open"), 01777);
    fd = xd_dir_open_for(at("open/f"), "xd_stats=x", false, &name, err, sizeof(err));
    CHECK_MSG(fd >= 0, "a sticky directory: %s", err);
    if (fd >= 0)
        close(fd);
    if (geteuid() == 0) {
        mkdir(at("theirdir"), 0755);
        if (!chown(at("theirdir"), NOBODY, NOBODY)) {
            fd = xd_dir_open_for(at("theirdir/f"), "trace=y", false, &name, err, sizeof(err));
            CHECK_MSG(fd == -EPERM && strstr(err, "uid 65534") && strstr(err, "trace=y"), "%d %s",
                      fd, err);
            int dfd = open(base, O_RDONLY | O_DIRECTORY);
            CHECK(xd_mkdir_own_at(dfd, "theirdir", 0755) == -EPERM);
            close(dfd);
        }
    }
    /* the private directory: made 0700, refused when it is anything else */
    CHECK(xd_private_dir(at("private"), err, sizeof(err)) == 0);
    struct stat st;
    CHECK(!lstat(at("private"), &st) && (st.st_mode & 07777) == 0700);
    chmod(at("private"), 0755);
    CHECK(xd_private_dir(at("private"), err, sizeof(err)) == -EPERM && strstr(err, "group or others"));
    symlink(at("open"), at("plink"));
    CHECK(xd_private_dir(at("plink"), err, sizeof(err)) == -EPERM && strstr(err, "symbolic link"));
}

/* The access time of path after one 4k read of it through a device of
 * type with update_access_time=update; -1 when a step failed. The file's
 * atime is first set a day behind its mtime, so a read that may touch it
 * (relatime, the usual mount) does. */
static long long atime_after_read(const char *type, const char *path, const char *update)
{
    struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_nsec = UTIME_OMIT}};
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    char err[XD_ERRLEN] = "", buf[4096];
    struct stat st;
    int rc = cfg ? 0 : -ENOMEM;
    rc = rc ? rc : xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err));
    rc = rc ? rc : xd_config_set(cfg, "update_access_time", update, "test", err, sizeof(err));
    rc = rc ? rc : xd_open(&dev, cfg, 4, err, sizeof(err));
    rc = rc ? rc : xd_file_open(dev, path, 0, 0, &f, err, sizeof(err));
    rc = rc ? rc : utimensat(AT_FDCWD, path, times, 0) ? -errno : 0;
    rc = rc ? rc : xd_read(dev, f, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : -EIO;
    rc = rc ? rc : stat(path, &st) ? -errno : 0;
    CHECK_MSG(!rc, "%s read with update_access_time=%s: %s %s", type, update, strerror(-rc), err);
    if (f)
        xd_file_close(dev, f);
    if (dev)
        xd_close(dev);
    xd_config_free(cfg);
    return rc ? -1 : (long long)st.st_atim.tv_sec;
}

/* Data files are opened O_NOATIME unless update_access_time=true: a read
 * leaves the atime alone. Where even the kernel's own reads leave it (a
 * noatime mount) only the first half can be told. */
static void test_noatime(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/atime.dat", base);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 65536) == 0);
    if (fd >= 0)
        close(fd);
    static const char *const types[] = {"regular", "mmap"};
    for (unsigned i = 0; i < 2; i++) {
        CHECK_MSG(atime_after_read(types[i], path, "false") == 1000000000,
                  "%s: a read moved the atime with update_access_time=false", types[i]);
    }
    /* pread through a plain descriptor: does this mount update atime at all? */
    struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_nsec = UTIME_OMIT}};
    char buf[4096];
    struct stat st;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(fd >= 0 && !utimensat(AT_FDCWD, path, times, 0) && pread(fd, buf, 4096, 0) == 4096 &&
          !fstat(fd, &st));
    if (fd >= 0)
        close(fd);
    if (st.st_atim.tv_sec == 1000000000)
        return;
    CHECK_MSG(atime_after_read("regular", path, "true") > 1000000000,
              "regular: a read left the atime with update_access_time=true");
}

/* xd_dev_caps_for: under io_uring a regular file on a tmpfs (existing or
 * not yet made) is served inline for writes shorter than
 * XD_MEMORY_WRITE_QUEUED_MIN, so it has no XD_CAP_ASYNC; longer writes go
 * to the ring's workers (and xd_dev_caps_at, any length, says async); a
 * file on the disk keeps it, and so does a device node, although /dev is a
 * tmpfs. Under libaio, which copies inside io_submit anyway, writes of
 * any length are inline. */
static void test_caps_at(const char *mode)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    char err[XD_ERRLEN] = "", shm[] = "/dev/shm/xdtest-capsat-XXXXXX", path[PATH_MAX + 16];
    bool uring = !strcmp(mode, "io_uring");
    int rc = cfg ? 0 : -ENOMEM;
    rc = rc ? rc : xd_config_set(cfg, "async", mode, "test", err, sizeof(err));
    rc = rc ? rc : xd_open(&dev, cfg, 8, err, sizeof(err));
    xd_config_free(cfg);
    if (rc == -ENOSYS || rc == -EPERM || !mkdtemp(shm)) { /* no io_uring, or no /dev/shm */
        if (dev)
            xd_close(dev);
        return;
    }
    CHECK_MSG(!rc, "xd_open: %s", err);
    if (rc)
        return;
    CHECK(xd_dev_caps(dev) & XD_CAP_ASYNC);
    snprintf(path, sizeof(path), "%s/not-yet", shm);
    CHECK_MSG(!(xd_dev_caps_for(dev, path, 0) & XD_CAP_ASYNC), "%s: still async", path);
    CHECK_MSG(!(xd_dev_caps_for(dev, path, XD_MEMORY_WRITE_QUEUED_MIN - 1) & XD_CAP_ASYNC),
              "%s: async for short writes", path);
    CHECK_MSG(!(xd_dev_caps_for(dev, path, XD_MEMORY_WRITE_QUEUED_MIN) & XD_CAP_ASYNC) == !uring,
              "%s, %s: long writes inline or not", mode, path);
    CHECK_MSG(!(xd_dev_caps_at(dev, path) & XD_CAP_ASYNC) == !uring,
              "%s, %s: writes of any length inline or not", mode, path);
    snprintf(path, sizeof(path), "%s/disk.dat", base);
    CHECK_MSG(xd_dev_caps_for(dev, path, 0) & XD_CAP_ASYNC, "%s: inline", path);
    CHECK_MSG(xd_dev_caps_for(dev, "/dev/null", 0) & XD_CAP_ASYNC, "/dev/null: inline");
    rmdir(shm);
    xd_close(dev);
}

/* On a tmpfs with large pages (huge=within_size) a long write is copied
 * fast enough inline, so io_uring does not get it: a file there stays
 * inline for writes of any length. Needs root, to mount one. */
static void test_caps_large_pages(void)
{
    char dir[] = "/tmp/xdtest-capshuge-XXXXXX", path[sizeof(dir) + 16];
    if (geteuid() != 0 || !mkdtemp(dir))
        return;
    if (mount("xdtest-capshuge", dir, "tmpfs", 0, "size=16m,huge=within_size")) {
        printf("SKIP large pages: cannot mount a huge=within_size tmpfs: %s\n", strerror(errno));
        rmdir(dir);
        return;
    }
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    char err[XD_ERRLEN] = "";
    int rc = cfg ? 0 : -ENOMEM;
    rc = rc ? rc : xd_config_set(cfg, "async", "io_uring", "test", err, sizeof(err));
    rc = rc ? rc : xd_open(&dev, cfg, 8, err, sizeof(err));
    xd_config_free(cfg);
    if (!rc) {
        snprintf(path, sizeof(path), "%s/f", dir);
        CHECK_MSG(!(xd_dev_caps_at(dev, path) & XD_CAP_ASYNC),
                  "%s: a huge=within_size tmpfs queues long writes", path);
        xd_close(dev);
    }
    umount(dir);
    rmdir(dir);
}

int main(void)
{
    char tmpl[] = "/tmp/xdtest-fileutil-XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(base, sizeof(base), "%s", tmpl);
    int dirfd = open(base, O_RDONLY | O_DIRECTORY);
    test_symlinks(dirfd);
    test_planted_files(dirfd);
    test_create_races_unlink();
    test_link_swapped_after_open();
    test_mkdir_link_planted();
    test_shm_sweep_keeps_other_names();
    test_modes(dirfd);
    test_temps(dirfd);
    test_atomic_write(dirfd);
    test_planted_temp_names(dirfd);
    test_lock_removed(dirfd);
    test_directories();
    test_dir_walk();
    test_noatime();
    test_caps_at("io_uring");
    test_caps_at("libaio");
    test_caps_large_pages();
    close(dirfd);
    nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_result();
}
