/* tmpfs.c - the tmpfs layer: moves each file's data onto a tmpfs (mounted on
 * demand when root) for memory-speed I/O through the file driver below, and
 * with backup_to_disk keeps the caller's disk path as a restorable backup.
 *
 * The data directory is private by default (/dev/shm/xdevice-UID, 0700);
 * one named in the config must be the caller's or root's and not writable
 * by others without the sticky bit (allow_shared_directories), and a
 * symlink or another user's file at a data name is refused, never followed.
 * A tmpfs this layer mounts (auto_mount) goes only on a directory it makes,
 * and is unmounted, with that directory, by the last device to close it in
 * any process: every user holds a read lock on "<dir>.lock", which the
 * kernel drops when a process dies, so the count survives crashes.
 * A backup is a point-in-time-ish copy taken every backup_interval_sec, at
 * each fsync/fdatasync and at close, of a file written through the device:
 * data written after the last of those is lost on a crash or reboot.
 * Beside each copy a stamp records what P was (device, inode, size, mtime,
 * ctime) when the copy was last loaded from it or backed up to it: a copy
 * is used only while P still matches (P changed since, by psync or a user,
 * is loaded again: the disk file wins), and a backup never replaces a P that
 * changed since (it fails with one line, the data staying in the copy).
 * The stamp also says whether the copy was written since (marked before
 * the first such write is acknowledged): a changed P over such a copy is
 * refused at open with one line, neither side's writes dropped unasked.
 * Every open with backups holds its presence on the stamp (an OFD lock):
 * a backup with another open beside it leaves the mark, whose owner would
 * not set it again, and the last writable open backs up at close what
 * the others left in the copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "../core/json.h"
#include "../core/settled.h"
#include "../core/xd_internal.h"
#include "tmpfs_stamp.h"

#define TMPFS_COPY_CHUNK   (1u << 20)          /* read/write fallback of a copy */
#define TMPFS_MOUNT_SOURCE "xdevice"            /* how our mounts show in mountinfo */

struct tmpfs_file {
    struct tmpfs_file *prev, *next; /* the device's open files, under tmpfs_layer.lock */
    unsigned pins;                  /* backup passes using the entry; close waits for 0 */
    char *disk_path;                /* P, absolute: backups go there, restores come from it */
    char *backup_base;              /* P's last component: temps are ".P.xdtmp-XXXXXX" */
    char *disk_dir;                 /* P's directory, fsynced after the rename */
    char *data_path;                /* the tmpfs copy the driver below works on */
    const char *data_name;          /* its name in the data directory (in data_path) */
    char *stamp_name;               /* its stamp there: what P was when the copy matched it */
    pthread_mutex_t backup_lock;    /* one backup of this file at a time */
    atomic_bool dirty;              /* written through this device since the last backup began */
    atomic_bool removed;            /* xd_unlink removed P and the copy: no more backups */
    atomic_bool stamp_clean;        /* the copy's stamp says it holds nothing P lacks: the
                                       next write says otherwise first (tmpfs_stamp_writes) */
    bool temps_swept;               /* stale backup temps beside P removed (under backup_lock) */
    bool read_only;                 /* XD_OPEN_READONLY: never backs up what others wrote */
    bool copy_known;                /* the copy the driver opened: copy_dev, copy_ino */
    dev_t copy_dev;
    ino_t copy_ino;
    int made_fd;                    /* the copy, while opening, when this open made it; or -1 */
    int presence_fd;                /* backups: the stamp, our presence held on it; or -1 */
};

struct tmpfs_layer {
    char *dir; /* the data directory actually used */
    bool backup, mounted_by_us;
    int dirfd;         /* dir, checked: data names are claimed relative to it */
    int mount_fd;      /* auto_mount: "<dir>.lock", read-locked while we use it; or -1 */
    int mount_parent;  /* auto_mount: dir's parent, where that lock lives; or -1 */
    char *mount_lock;  /* its name there */
    /* Settings copied at open: the backup thread must not follow a config
     * that a reload could free under it. */
    mode_t file_mode, dir_mode;
    bool create_dirs, allow_shared;
    unsigned interval_sec;
    char notice[PATH_MAX + 96];
    /* Everything below is shared with the backup thread. */
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* stop request (CLOCK_MONOTONIC timed waits) */
    pthread_cond_t unpinned; /* a backup pass let go of a file */
    pthread_t thread;
    bool thread_started, stop;
    bool rearm; /* interval_sec changed (xd_reload): wait anew from now */
    struct tmpfs_file *files;
    struct {
        uint64_t backups, backup_bytes, backup_errors, restores, restore_bytes, backups_adopted;
    } count;
    char last_backup_error[PATH_MAX + 128];
    char close_error[XD_ERRLEN]; /* a close whose backup failed, for take_error */
};

/* --- paths --------------------------------------------------------------- */

/* statfs of path, or of its nearest existing ancestor: what a directory
 * not made yet would be on. dir gets the one examined. Returns 0 or -errno. */
static int tmpfs_statfs_nearest(const char *path, struct statfs *sf, char dir[PATH_MAX])
{
    if (snprintf(dir, PATH_MAX, "%s", path) >= PATH_MAX)
        return -ENAMETOOLONG;
    while (statfs(dir, sf)) {
        if (errno != ENOENT)
            return -errno;
        char *slash = strrchr(dir, '/');
        if (!slash)
            snprintf(dir, PATH_MAX, ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
    return 0;
}

/* A mount point sits on another device than its parent (or is "/"). */
static bool tmpfs_is_mount_point(const char *dir)
{
    char up[PATH_MAX];
    struct stat st, parent;
    if (snprintf(up, sizeof(up), "%s/..", dir) >= (int)sizeof(up))
        return false;
    if (stat(dir, &st) || stat(up, &parent))
        return false;
    return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

/* P made absolute, with its directory resolved through symlinks when it
 * exists, so two spellings of one file share one tmpfs copy. NULL: no memory. */
static char *tmpfs_absolute(const char *path)
{
    char *copy = strdup(path), *real = NULL, *abs = NULL, cwd[PATH_MAX];
    if (!copy)
        return NULL;
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    if (slash)
        *slash = '\0';
    real = realpath(!slash ? "." : copy[0] ? copy : "/", NULL);
    int n;
    if (real)
        n = asprintf(&abs, "%s/%s", strcmp(real, "/") ? real : "", base);
    else if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
        n = asprintf(&abs, "%s", path);
    else
        n = asprintf(&abs, "%s/%s", cwd, path);
    free(real);
    free(copy);
    return n < 0 ? NULL : abs;
}

/* The tmpfs copy of absolute path abs: one file name in dir, with '%' and
 * '/' escaped as %25 and %2F so distinct paths never share a name and the
 * name reads back as the path. A name past NAME_MAX keeps its tail behind a
 * hash of the whole path. NULL: no memory. */
static char *tmpfs_data_path(const char *dir, const char *abs)
{
    const char *src = abs + (abs[0] == '/');
    char *name = malloc(strlen(src) * 3 + 1), *out = NULL;
    size_t n = 0;
    if (!name)
        return NULL;
    for (; *src; src++) {
        if (*src == '/' || *src == '%') {
            n += (size_t)sprintf(name + n, "%%%02X", (unsigned char)*src);
        } else {
            name[n++] = *src;
        }
    }
    name[n] = '\0';
    int rc;
    if (n > NAME_MAX) /* 16 hex digits, '-', then the tail */
        rc = asprintf(&out, "%s/%016llx-%s", dir, (unsigned long long)xd_tmpfs_hash(abs),
                      name + n - (NAME_MAX - 17));
    else
        rc = asprintf(&out, "%s/%s", dir, name);
    free(name);
    return rc < 0 ? NULL : out;
}

/* --- the data directory ---------------------------------------------------- */

/* Config messages start with where the key was set, when that is known. */
static const char *tmpfs_origin(const struct xd_config *cfg, enum xd_key key, char *buf,
                                size_t len)
{
    const char *origin = cfg->origin[key];
    if (!origin || !strcmp(origin, "default"))
        return "";
    snprintf(buf, len, "%s: ", origin);
    return buf;
}

/* Why dir (examined at seen, its nearest existing ancestor) is no tmpfs
 * directory, for messages: a directory not made yet would be made on the
 * file system of seen, so that is the one named. */
static void tmpfs_not_tmpfs(const char *dir, const char *seen, long f_type, char *why,
                            size_t len)
{
    if (!strcmp(dir, seen))
        snprintf(why, len, "not on a tmpfs (f_type 0x%lx)", (unsigned long)f_type);
    else
        snprintf(why, len, "does not exist, and %s, where it would be made, is not on a tmpfs (f_type 0x%lx)",
                 seen, (unsigned long)f_type);
}

static int tmpfs_refuse_fs(const struct xd_config *cfg, const char *dir, const char *seen,
                           long f_type, char *err, size_t errlen)
{
    char where[256], why[PATH_MAX + 96];
    tmpfs_not_tmpfs(dir, seen, f_type, why, sizeof(why));
    xd_errf(err, errlen,
            "%stmpfs_directory=%s: %s; allowed: a tmpfs mount such as /dev/shm, or auto_mount=true as root",
            tmpfs_origin(cfg, XD_KEY_tmpfs_directory, where, sizeof(where)), dir, why);
    return -EINVAL;
}

/* The directory must be on tmpfs, or the type would silently run at disk speed. */
static int tmpfs_check_dir(const struct xd_config *cfg, const char *dir, char *err, size_t errlen)
{
    struct statfs sf;
    char seen[PATH_MAX];
    int rc = tmpfs_statfs_nearest(dir, &sf, seen);
    if (rc) {
        xd_errf(err, errlen, "tmpfs_directory=%s: cannot examine it: %s", dir, strerror(-rc));
        return rc;
    }
    return sf.f_type == TMPFS_MAGIC ? 0
                                    : tmpfs_refuse_fs(cfg, dir, seen, (long)sf.f_type, err, errlen);
}

/* The same check for another key naming a tmpfs directory (the hybrid
 * type's hot_directory), so its message names that key. */
int xd_tmpfs_check_dir(const struct xd_config *cfg, enum xd_key key, const char *dir, char *err,
                       size_t errlen)
{
    struct statfs sf;
    char where[256], seen[PATH_MAX], why[PATH_MAX + 96];
    int rc = tmpfs_statfs_nearest(dir, &sf, seen);
    if (rc) {
        xd_errf(err, errlen, "%s=%s: cannot examine it: %s", xd_keys[key].name, dir, strerror(-rc));
        return rc;
    }
    if (sf.f_type == TMPFS_MAGIC)
        return 0;
    tmpfs_not_tmpfs(dir, seen, (long)sf.f_type, why, sizeof(why));
    xd_errf(err, errlen, "%s%s=%s: %s; allowed: a directory on a tmpfs mount such as /dev/shm",
            tmpfs_origin(cfg, key, where, sizeof(where)), xd_keys[key].name, dir, why);
    return -EINVAL;
}

/* Open the data directory and check who controls it. The private default
 * was checked when it was made; a mount we made is ours by construction. */
static int tmpfs_open_dir(struct tmpfs_layer *t, bool trusted, char *err, size_t errlen)
{
    char what[PATH_MAX + 32];
    t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->dirfd < 0) {
        int rc = -errno;
        xd_errf(err, errlen, "tmpfs_directory=%s: cannot open it: %s", t->dir, strerror(-rc));
        return rc;
    }
    snprintf(what, sizeof(what), "tmpfs_directory=%s", t->dir);
    return trusted ? 0 : xd_dir_check(t->dirfd, t->dir, what, t->allow_shared, err, errlen);
}

/* Refuse a disk directory before creating it, so a mistake leaves nothing behind. */
static int tmpfs_make_dir(struct tmpfs_layer *t, const struct xd_config *cfg, char *err,
                          size_t errlen)
{
    int rc = tmpfs_check_dir(cfg, t->dir, err, errlen);
    if (rc)
        return rc;
    rc = xd_mkdir_p(t->dir, t->dir_mode);
    if (rc)
        xd_errf(err, errlen, "tmpfs_directory=%s: cannot create it: %s", t->dir, strerror(-rc));
    return rc;
}

/* --- auto_mount ------------------------------------------------------------ */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void tmpfs_unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* Whether the mount on top at dir is a tmpfs xdevice mounted (its source is
 * TMPFS_MOUNT_SOURCE): only those does a last user take down. */
static bool tmpfs_mounted_by_xdevice(const char *dir)
{
    char real[PATH_MAX], line[8192], point[4096], type[64], source[256];
    bool ours = false;
    if (!realpath(dir, real))
        return false;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    while (f && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
            sscanf(dash + 3, "%63s %255s", type, source) != 2)
            continue;
        tmpfs_unescape(point);
        if (!strcmp(point, real)) /* later lines are mounted on top */
            ours = !strcmp(type, "tmpfs") && !strcmp(source, TMPFS_MOUNT_SOURCE);
    }
    if (f)
        fclose(f);
    return ours;
}

/* Called with the mount lock held, so concurrent openers mount once. The
 * mount goes on dirfd, the directory checked (through /proc/self/fd): by
 * its path, a directory above it swapped since would move the mount. */
static int tmpfs_mount_locked(struct tmpfs_layer *t, const struct xd_config *cfg, int dirfd,
                              char *err, size_t errlen)
{
    char opts[1024], where[256], target[64];
    if (snprintf(opts, sizeof(opts), "size=%lld%s%s", (long long)cfg->tmpfs_size,
                 cfg->tmpfs_mount_options[0] ? "," : "",
                 cfg->tmpfs_mount_options) >= (int)sizeof(opts)) {
        xd_errf(err, errlen, "%stmpfs_mount_options=%s: too long; allowed: up to 1000 characters",
                tmpfs_origin(cfg, XD_KEY_tmpfs_mount_options, where, sizeof(where)),
                cfg->tmpfs_mount_options);
        return -EINVAL;
    }
    snprintf(target, sizeof(target), "/proc/self/fd/%d", dirfd);
    if (mount(TMPFS_MOUNT_SOURCE, target, "tmpfs", MS_NOSUID | MS_NODEV, opts)) {
        int rc = -errno;
        if (rc == -EINVAL)
            xd_errf(err, errlen, "%stmpfs_mount_options=%s: the kernel refused to mount a tmpfs at %s with '%s'; allowed: tmpfs options such as mode=0755,nr_inodes=0 (size comes from tmpfs_size)",
                    tmpfs_origin(cfg, XD_KEY_tmpfs_mount_options, where, sizeof(where)),
                    cfg->tmpfs_mount_options, t->dir, opts);
        else
            xd_errf(err, errlen, "%sauto_mount=true: cannot mount a tmpfs at tmpfs_directory=%s: %s; allowed: auto_mount=false with tmpfs_directory on an existing tmpfs such as /dev/shm",
                    tmpfs_origin(cfg, XD_KEY_auto_mount, where, sizeof(where)), t->dir,
                    strerror(-rc));
        return rc;
    }
    t->mounted_by_us = true;
    snprintf(t->notice, sizeof(t->notice),
             "tmpfs: mounted a tmpfs at %s (auto_mount); the last xdevice user to close it unmounts it",
             t->dir);
    return 0;
}

/* Whether dir (open as fd) has entries. */
static bool tmpfs_dir_has_entries(int fd)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    struct dirent *de;
    bool any = false;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return true; /* cannot tell: treat as not empty */
    }
    rewinddir(d);
    while (!any && (de = readdir(d)))
        any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return any;
}

/* With the lock held: a tmpfs already there is used (ours or not); else a
 * directory made just now, or an empty one made by an earlier xdevice (its
 * lock file was already there), gets one. Anything else is refused: a mount
 * would hide what is in it. */
static int tmpfs_mount_decide(struct tmpfs_layer *t, const struct xd_config *cfg, bool made,
                              bool lock_existed, char *err, size_t errlen)
{
    struct statfs sf;
    if (!made && !statfs(t->dir, &sf) && sf.f_type == TMPFS_MAGIC && tmpfs_is_mount_point(t->dir))
        return 0;
    int fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        xd_errf(err, errlen, "auto_mount=true: tmpfs_directory=%s: cannot open it: %s; allowed: a path that does not exist yet (xdevice makes the directory and mounts on it)",
                t->dir, rc == -ELOOP || rc == -ENOTDIR ? "not a directory (a symbolic link?)" : strerror(-rc));
        return rc;
    }
    struct stat st;
    bool full = tmpfs_dir_has_entries(fd);
    /* an earlier xdevice's lock vouches only for a directory of ours: one
     * another user made at the name since would be mounted over, and
     * removed by the last user */
    bool theirs = fstat(fd, &st) || st.st_uid != geteuid();
    if (full || theirs || (!made && !lock_existed)) {
        xd_errf(err, errlen, "auto_mount=true: tmpfs_directory=%s: %s; a mount would hide it; allowed: a path that does not exist yet (xdevice makes the directory, mounts on it and removes both after the last user), or auto_mount=false with a directory on a tmpfs",
                t->dir, full     ? "is not empty"
                        : theirs ? "belongs to another user"
                                 : "exists and was not made by xdevice");
        close(fd);
        return -EEXIST;
    }
    if (made)
        fchmod(fd, t->dir_mode); /* hidden by the mount, but exact; never through a link */
    int rc = tmpfs_mount_locked(t, cfg, fd, err, errlen);
    close(fd);
    return rc;
}

/* The mount lock "<dir>.lock" in dir's parent, which is checked like any
 * directory xdevice makes files in; *existed says whether it was there. */
static int tmpfs_mount_lock(struct tmpfs_layer *t, const struct xd_config *cfg, bool *existed,
                            char *err, size_t errlen)
{
    char what[PATH_MAX + 32], path[PATH_MAX];
    size_t len = strlen(t->dir);
    const char *base;
    while (len > 1 && t->dir[len - 1] == '/')
        len--;
    if (snprintf(path, sizeof(path), "%.*s", (int)len, t->dir) >= (int)sizeof(path) - 6) {
        xd_errf(err, errlen, "tmpfs_directory=%s: too long for its mount lock; allowed: under %d characters",
                t->dir, PATH_MAX - 6);
        return -ENAMETOOLONG;
    }
    snprintf(what, sizeof(what), "auto_mount=true: tmpfs_directory=%s", t->dir);
    int rc = xd_mkdir_parents(path, t->dir_mode);
    t->mount_parent = rc ? rc : xd_dir_open_for(path, what, t->allow_shared, &base, err, errlen);
    if (t->mount_parent < 0) {
        if (rc)
            xd_errf(err, errlen, "%s: cannot create its parent: %s", what, strerror(-rc));
        return t->mount_parent;
    }
    if (asprintf(&t->mount_lock, "%s.lock", base) < 0) {
        t->mount_lock = NULL;
        return -ENOMEM;
    }
    *existed = !faccessat(t->mount_parent, t->mount_lock, F_OK, AT_SYMLINK_NOFOLLOW);
    int fd = xd_lock_at(t->mount_parent, t->mount_lock, (mode_t)cfg->file_permissions);
    if (fd < 0)
        xd_errf(err, errlen, "%s: cannot take the mount lock %s.lock: %s", what, path,
                xd_refusal(fd));
    return fd;
}

/* Mount a tmpfs at the directory unless one is already there, and become
 * one of its users. Jobs and processes opening together serialize on the
 * flock of "<dir>.lock"; each user then keeps a read lock (an OFD lock,
 * which flock does not interact with) on it until close. */
static int tmpfs_auto_mount(struct tmpfs_layer *t, const struct xd_config *cfg, char *err,
                            size_t errlen)
{
    bool existed = false;
    int fd = tmpfs_mount_lock(t, cfg, &existed, err, errlen), rc;
    if (fd < 0)
        return fd;
    bool made = !mkdir(t->dir, t->dir_mode & 0700);
    if (!made && errno != EEXIST) {
        rc = -errno;
        xd_errf(err, errlen, "tmpfs_directory=%s: cannot create it (auto_mount=true): %s", t->dir,
                strerror(-rc));
    } else {
        rc = tmpfs_mount_decide(t, cfg, made, existed, err, errlen);
        if (rc && made)
            rmdir(t->dir);
    }
    struct flock user = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_len = 1};
    if (!rc && TMPFS_RETRY(fcntl(fd, F_OFD_SETLKW, &user))) {
        rc = -errno;
        xd_errf(err, errlen, "tmpfs_directory=%s: cannot register as a user of the mount: %s",
                t->dir, strerror(-rc));
    }
    flock(fd, LOCK_UN);
    if (rc) {
        if (!existed) /* made for this try: no trace of it, or it would vouch for dir */
            unlinkat(t->mount_parent, t->mount_lock, 0);
        close(fd);
        return rc;
    }
    t->mount_fd = fd;
    return 0;
}

/* The last user of an xdevice mount (no other read lock on "<dir>.lock",
 * in any process) unmounts it and removes the directory and the lock; a
 * busy mount (someone's shell in it) stays for the next last user. */
static void tmpfs_auto_unmount(struct tmpfs_layer *t)
{
    if (t->mount_fd < 0)
        return;
    int mutex = xd_lock_at(t->mount_parent, t->mount_lock, t->file_mode);
    struct flock last = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    if (mutex >= 0 && !fcntl(t->mount_fd, F_OFD_SETLK, &last)) {
        bool ours = tmpfs_mounted_by_xdevice(t->dir);
        /* a busy mount keeps its lock: the directory stays "made by xdevice" */
        if (!ours || (!umount2(t->dir, UMOUNT_NOFOLLOW) && !rmdir(t->dir)))
            unlinkat(t->mount_parent, t->mount_lock, 0);
    }
    close(t->mount_fd);
    t->mount_fd = -1;
    if (mutex >= 0)
        close(mutex);
}

/* --- choosing the directory ------------------------------------------------ */

/* The data directory a device of cfg uses: tmpfs_directory, or the
 * private default when none is named or auto_mount needs the root we are
 * not. private_dir (64 bytes) holds the default's name. */
static const char *tmpfs_dir_used(const struct xd_config *cfg, char *private_dir, size_t len)
{
    xd_private_dir_path(private_dir, len);
    if (!cfg->tmpfs_directory[0] || (cfg->auto_mount && geteuid() != 0))
        return private_dir;
    return cfg->tmpfs_directory;
}

/* Decide where data lives: a tmpfs mounted here (root, auto_mount), the
 * private /dev/shm/xdevice-UID (the default, and auto_mount without root,
 * with a notice), or tmpfs_directory as given. */
static int tmpfs_choose_dir(struct tmpfs_layer *t, const struct xd_config *cfg, char *err,
                            size_t errlen)
{
    char private_dir[64];
    const char *dir = tmpfs_dir_used(cfg, private_dir, sizeof(private_dir));
    bool mount_it = cfg->auto_mount && geteuid() == 0;
    if (cfg->auto_mount && !mount_it) {
        if (cfg->tmpfs_directory[0] && strcmp(cfg->tmpfs_directory, private_dir))
            snprintf(t->notice, sizeof(t->notice),
                     "tmpfs: auto_mount needs root; using %s instead of %s", private_dir,
                     cfg->tmpfs_directory);
        else
            snprintf(t->notice, sizeof(t->notice),
                     "tmpfs: auto_mount needs root; using %s as it is, without mounting",
                     private_dir);
    }
    if (!(t->dir = strdup(dir)))
        return -ENOMEM;
    bool private = !mount_it && !strcmp(dir, private_dir);
    int rc = mount_it  ? tmpfs_auto_mount(t, cfg, err, errlen)
             : private ? tmpfs_check_dir(cfg, t->dir, err, errlen)
                       : tmpfs_make_dir(t, cfg, err, errlen);
    if (!rc && private)
        rc = xd_private_dir(t->dir, err, errlen);
    if (!rc)
        rc = tmpfs_check_dir(cfg, t->dir, err, errlen);
    return rc ? rc : tmpfs_open_dir(t, private || t->mounted_by_us, err, errlen);
}

/* Without backup_to_disk the tmpfs type keeps a file's data only in its
 * tmpfs copy (XD_CFG_DATA_ELSEWHERE): the size a caller sees is the
 * copy's, -ENOENT while there is none (an open with XD_OPEN_CREATE makes
 * it), and nothing need be at the caller's path. A regular file there
 * that the copy is not current with (psync wrote it; no copy yet) is what
 * the open loads (tmpfs_restore), so its size is the one seen, as psync
 * would see it. With backup_to_disk the caller's path is the durable copy
 * the tmpfs copy is restored from, so its size is the path's. Nothing is
 * made or mounted here. */
int xd_tmpfs_path_size(const struct xd_config *cfg, const char *path, uint64_t *size, char *err,
                       size_t errlen)
{
    if (cfg->backup_to_disk)
        return xd_path_size(path, size);
    char private_dir[64];
    char *abs = tmpfs_absolute(path);
    char *copy = abs ? tmpfs_data_path(tmpfs_dir_used(cfg, private_dir, sizeof(private_dir)), abs)
                     : NULL;
    struct stat st;
    if (copy && !stat(path, &st) && S_ISREG(st.st_mode) && !xd_tmpfs_copy_current_at(copy, &st)) {
        *size = (uint64_t)st.st_size;
        free(copy);
        free(abs);
        return 0;
    }
    int rc = !copy             ? -ENOMEM
             : lstat(copy, &st) ? -errno
             : S_ISLNK(st.st_mode) ? -ELOOP
             : !S_ISREG(st.st_mode) ? -EPERM
                                    : 0;
    if (!rc)
        *size = (uint64_t)st.st_size;
    else if (rc != -ENOENT)
        xd_errf(err, errlen, "%s: cannot use its tmpfs copy %s: %s", path, copy ? copy : "",
                xd_refusal(rc));
    free(copy);
    free(abs);
    return rc;
}

/* xd_path_prepare: make the tmpfs copy, or grow it, to size bytes, through
 * a device of cfg (the same directory checks and claim as any open), so
 * that a later job set up in fio's parent finds it, as it finds a file
 * psync laid out. On a tmpfs auto_mount mounts, nothing outlives the last
 * device: the copy is made at open instead (*logical 0). */
int xd_tmpfs_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                     uint64_t *logical, char *err, size_t errlen)
{
    int rc = xd_tmpfs_path_size(cfg, path, logical, err, errlen);
    if (cfg->backup_to_disk || (rc && rc != -ENOENT) || (!rc && *logical >= size))
        return rc;
    if (cfg->auto_mount && geteuid() == 0) {
        *logical = 0;
        return 0;
    }
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    rc = xd_open(&dev, cfg, 1, err, errlen);
    if (!rc)
        rc = xd_file_open(dev, path, XD_OPEN_CREATE, size, &file, err, errlen);
    xd_file_close(dev, file);
    xd_close(dev);
    return rc ? rc : xd_tmpfs_path_size(cfg, path, logical, err, errlen);
}

/* --- copying ------------------------------------------------------------- */

/* One step of a copy at off: bytes moved (0 at src's end) or -errno.
 * copy_file_range keeps the bytes in the kernel; when it refuses the pair of
 * file systems the copy continues with pread/pwrite through *buf. */
static ssize_t tmpfs_copy_step(int src, int dst, off_t off, size_t len, char **buf)
{
    if (!*buf) {
        off_t in = off, out = off;
        ssize_t n = TMPFS_RETRY(copy_file_range(src, &in, dst, &out, len, 0));
        if (n >= 0)
            return n;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return -errno;
        if (!(*buf = malloc(TMPFS_COPY_CHUNK)))
            return -ENOMEM;
    }
    ssize_t n = TMPFS_RETRY(pread(src, *buf, len < TMPFS_COPY_CHUNK ? len : TMPFS_COPY_CHUNK, off));
    if (n < 0)
        return -errno;
    for (ssize_t done = 0; done < n;) {
        ssize_t w = pwrite(dst, *buf + done, (size_t)(n - done), off + done);
        if (w < 0 && errno != EINTR)
            return -errno;
        if (w > 0)
            done += w;
    }
    return n;
}

/* Copy [from, to) of src into dst: bytes copied (fewer when src shrank
 * under us) or -errno. */
static int64_t tmpfs_copy_extent(int src, int dst, off_t from, off_t to, char **buf)
{
    off_t pos = from;
    while (pos < to) {
        ssize_t n = tmpfs_copy_step(src, dst, pos, (size_t)(to - pos), buf);
        if (n <= 0) {
            if (n < 0)
                return n;
            break;
        }
        pos += n;
    }
    return pos - from;
}

/* Copy src into the empty dst, data extents only so holes stay holes, then
 * give dst src's size. Returns the data bytes copied or -errno. */
static int64_t tmpfs_copy_file(int src, int dst)
{
    struct stat st;
    char *buf = NULL;
    int64_t copied = 0, rc = 0;
    if (fstat(src, &st))
        return -errno;
    for (off_t pos = 0; pos < st.st_size;) {
        off_t data = lseek(src, pos, SEEK_DATA), hole = st.st_size;
        if (data < 0 && errno == ENXIO)
            break;
        if (data < 0) /* no SEEK_DATA here: all of it is data */
            data = pos;
        else if ((hole = lseek(src, data, SEEK_HOLE)) < 0 || hole > st.st_size)
            hole = st.st_size;
        if (data >= hole || (rc = tmpfs_copy_extent(src, dst, data, hole, &buf)) < 0)
            break;
        copied += rc;
        pos = rc < hole - data ? st.st_size : hole;
    }
    free(buf);
    if (rc >= 0 && TMPFS_RETRY(ftruncate(dst, st.st_size)))
        rc = -errno;
    return rc < 0 ? rc : copied;
}

/* --- backup and restore -------------------------------------------------- */

/* P's directory, checked (it was at open; this is the fd for *at calls),
 * made first when missing and allowed. Returns the fd or -errno. */
static int tmpfs_backup_dir(const struct tmpfs_layer *t, const struct tmpfs_file *tf,
                            const char **step)
{
    char err[XD_ERRLEN];
    const char *base;
    *step = "open its directory";
    int fd = xd_dir_open_for(tf->disk_path, tf->disk_path, t->allow_shared, &base, err, sizeof(err));
    if (fd != -ENOENT || !t->create_dirs)
        return fd;
    *step = "create its directory";
    int rc = xd_mkdir_p(tf->disk_dir, t->dir_mode);
    if (rc)
        return rc;
    *step = "open its directory";
    return xd_dir_open_for(tf->disk_path, tf->disk_path, t->allow_shared, &base, err, sizeof(err));
}

/* A backup's or a restore's new file: filled from src, then stat'd before
 * the rename puts it in place (which file the rename placed). */
struct tmpfs_fill {
    int src;
    struct stat made;
    /* a backup's: the stamp's lock, to name the new file pending in it
     * before the rename (-1 for a load); old, the stamp before that */
    int stamp_fd;
    bool named;
    struct tmpfs_stamp old;
};

static int64_t tmpfs_fill(int dst, void *arg, const char **step)
{
    struct tmpfs_fill *f = arg;
    *step = "copy its data";
    int64_t rc = tmpfs_copy_file(f->src, dst);
    if (rc >= 0 && fstat(dst, &f->made)) {
        rc = -errno;
        *step = "stat the copy";
    }
    if (rc >= 0 && f->stamp_fd >= 0 && xd_tmpfs_stamp_read(f->stamp_fd, &f->old)) {
        struct tmpfs_stamp s = f->old;
        xd_tmpfs_stamp_pending(&s, &f->made);
        f->named = !xd_tmpfs_stamp_write(f->stamp_fd, &s);
    }
    return rc;
}

/* A backup replaces P only while P is what the stamp (stamp_fd) says it
 * was when the copy last held its data, or is missing: a P changed since
 * (psync, a user, another program) holds data the copy never had, and is
 * left as it is, with one line; what was written through xdevice stays in
 * the copy, whose stamp says so: the next open refuses to pick one. 0 or
 * -errno. */
static int tmpfs_backup_check_disk(const struct tmpfs_file *tf, int dirfd, int stamp_fd,
                                   char *err, size_t errlen)
{
    struct stat disk;
    struct tmpfs_stamp s;
    if (fstatat(dirfd, tf->backup_base, &disk, AT_SYMLINK_NOFOLLOW)) {
        int rc = errno == ENOENT ? 0 : -errno;
        if (rc)
            xd_errf(err, errlen, "%s: backup_to_disk: cannot examine it: %s", tf->disk_path,
                    strerror(-rc));
        return rc;
    }
    if (xd_tmpfs_stamp_read(stamp_fd, &s) && xd_tmpfs_disk_unchanged(&s, &disk))
        return 0;
    xd_errf(err, errlen, "%s: backup_to_disk: not replaced: it changed on disk since its tmpfs copy %s was loaded from it or backed up to it (another program wrote it), and xdevice never overwrites such a change; the writes stay in the copy, and the next open is refused until one is chosen",
            tf->disk_path, tf->data_path);
    return -ESTALE;
}

/* The copy at the name (src) must be the one this open writes: another
 * open that found P changed loaded P into a new copy renamed over it, and
 * the writes made here went to the old one, which nobody will read again.
 * Backing the new copy up would drop them without a word. 0 or -ESTALE. */
static int tmpfs_backup_check_copy(const struct tmpfs_file *tf, int src, char *err,
                                   size_t errlen)
{
    struct stat st;
    if (!tf->copy_known || fstat(src, &st) ||
        (st.st_dev == tf->copy_dev && st.st_ino == tf->copy_ino))
        return 0;
    xd_errf(err, errlen, "%s: backup_to_disk: not replaced: its tmpfs copy %s was replaced since this open (the disk file changed and another open loaded it), so what was written here is not in it",
            tf->disk_path, tf->data_path);
    return -ESTALE;
}

/* P as the backup just renamed there (made: the new file before the
 * rename) left it, for its stamp: the rename moved its ctime, and the
 * stamp waits until the ctime is settled. Another program's file renamed
 * over it meanwhile (another inode) leaves made, which that file does not
 * match: the next open sees P changed. */
static void tmpfs_backup_placed(int dirfd, const struct tmpfs_file *tf, const struct stat *made,
                                struct stat *disk)
{
    if (xd_stat_settled(dirfd, tf->backup_base, disk) || disk->st_dev != made->st_dev ||
        disk->st_ino != made->st_ino)
        *disk = *made;
}

/* Replace P with src's data (xd_write_file_atomic_with: a temp file beside
 * P, fsync, rename over P, fsync of P's directory, so P is always one whole
 * backup, old or new), keeping P's mode when P is there, then stamp the
 * copy with the new P: as written when others had the copy open. */
static int64_t tmpfs_backup_replace(const struct tmpfs_layer *t, const struct tmpfs_file *tf,
                                    int dirfd, int src, int stamp_fd, bool others, char *err,
                                    size_t errlen)
{
    char what[PATH_MAX + 32];
    struct stat st;
    struct tmpfs_fill fill = {.src = src, .stamp_fd = stamp_fd};
    mode_t mode = t->file_mode;
    if (!fstatat(dirfd, tf->backup_base, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    snprintf(what, sizeof(what), "%s: backup_to_disk", tf->disk_path);
    int64_t rc = xd_write_file_atomic_with(dirfd, tf->backup_base, mode, tmpfs_fill, &fill, what,
                                           err, errlen);
    if (rc >= 0 && !fstat(src, &st)) {
        struct stat disk;
        tmpfs_backup_placed(dirfd, tf, &fill.made, &disk);
        struct tmpfs_stamp s = xd_tmpfs_stamp_of(&st, &disk);
        s.writes = others;
        xd_tmpfs_stamp_write(stamp_fd, &s); /* fails only with a torn stamp: the next open reloads */
    } else if (rc < 0 && fill.named) {
        xd_tmpfs_stamp_write(stamp_fd, &fill.old); /* no backup placed: nothing pending */
    }
    return rc;
}

/* Write tf's tmpfs data to P atomically. Backups and restores of one P
 * (jobs, processes) take turns on an flock of the copy's stamp, so a later
 * backup never lands before an earlier one, and P's check against the
 * stamp and its replacement are one step. The first backup of an open
 * also removes the temp files ".P.xdtmp-XXXXXX" that backups killed before
 * their rename left beside P (each a whole copy of the file, kept forever
 * otherwise: a kill -9 during a backup is likely, backups run at every
 * fsync): every backup of P fills its temp under that flock, so while we
 * hold it no live one exists. Returns the data bytes copied or -errno,
 * with one line in err. */
static int64_t tmpfs_backup_copy(const struct tmpfs_layer *t, struct tmpfs_file *tf, char *err,
                                 size_t errlen)
{
    const char *step = "lock its tmpfs copy's stamp";
    int64_t rc = 0;
    int dirfd = -1, src = -1, lock = xd_lock_at(t->dirfd, tf->stamp_name, t->file_mode);
    if (lock < 0)
        rc = lock;
    if (!rc) {
        step = "open its tmpfs copy";
        src = TMPFS_RETRY(openat(t->dirfd, tf->data_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (src < 0)
            rc = -errno;
    }
    if (!rc && (dirfd = tmpfs_backup_dir(t, tf, &step)) < 0)
        rc = dirfd;
    if (!rc && !tf->temps_swept) {
        xd_temp_sweep_at(dirfd, tf->backup_base); /* best effort: they only take space */
        tf->temps_swept = true;
    }
    if (rc)
        xd_errf(err, errlen, "%s: backup_to_disk: cannot %s: %s", tf->disk_path, step,
                strerror((int)-rc));
    else if (!(rc = tmpfs_backup_check_copy(tf, src, err, errlen)) &&
             !(rc = tmpfs_backup_check_disk(tf, dirfd, lock, err, errlen))) {
        /* Before the copy is read. Alone, a write done after this marks
         * the stamp again, once it can (this backup holds its lock). With
         * another open beside us the stamp stays "written": its flag says
         * it marked the stamp already, so its writes after this point
         * would not mark it again, and a kill before its own backup would
         * leave them in the copy unmarked, to be loaded over if P then
         * changed. An open that comes later waits for this backup's lock
         * and reads the stamp this backup leaves. */
        bool others = xd_tmpfs_others_present(tf->presence_fd);
        if (!others)
            atomic_store(&tf->stamp_clean, true);
        rc = tmpfs_backup_replace(t, tf, dirfd, src, lock, others, err, errlen);
    }
    if (dirfd >= 0)
        close(dirfd);
    if (src >= 0)
        close(src);
    if (lock >= 0)
        close(lock);
    return rc;
}

static void tmpfs_note_backup(struct tmpfs_layer *t, int64_t rc, const char *err)
{
    pthread_mutex_lock(&t->lock);
    if (rc >= 0) {
        t->count.backups++;
        t->count.backup_bytes += (uint64_t)rc;
    } else {
        t->count.backup_errors++;
        snprintf(t->last_backup_error, sizeof(t->last_backup_error), "%s", err);
    }
    pthread_mutex_unlock(&t->lock);
}

/* Back tf up if it was written through this device since the last backup
 * began (never a file only read: P stays as it is, same inode). A failed
 * backup leaves it dirty for the next try. Returns 0 or -errno. */
static int tmpfs_backup(struct tmpfs_layer *t, struct tmpfs_file *tf)
{
    int64_t rc = 0;
    char err[sizeof(t->last_backup_error)] = "";
    pthread_mutex_lock(&tf->backup_lock);
    if (!atomic_load_explicit(&tf->removed, memory_order_acquire) &&
        atomic_exchange_explicit(&tf->dirty, false, memory_order_acq_rel)) {
        rc = tmpfs_backup_copy(t, tf, err, sizeof(err));
        if (rc < 0)
            atomic_store_explicit(&tf->dirty, true, memory_order_release);
        tmpfs_note_backup(t, rc, err);
    }
    pthread_mutex_unlock(&tf->backup_lock);
    return rc < 0 ? (int)rc : 0;
}

/* This open made tf's tmpfs copy (fd): kept until the open is done, so a
 * failed open removes the copy it made (tmpfs_open_over), as the drivers
 * remove a file they made: a copy in RAM nobody opens again stays there
 * until the machine reboots. */
static void tmpfs_made(struct tmpfs_file *tf, int fd)
{
    if (tf->made_fd < 0)
        tf->made_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* The open is over: on failure the copy this open made goes (if the name
 * still names it), with the stamp a load gave it; either way the
 * descriptor that recalled it is closed. */
static void tmpfs_open_over(const struct tmpfs_layer *t, struct tmpfs_file *tf, bool failed)
{
    if (tf->made_fd < 0)
        return;
    if (failed) {
        xd_unlink_made(tf->data_path, tf->made_fd);
        unlinkat(t->dirfd, tf->stamp_name, 0); /* ours: made by xd_lock_at, never a link's target */
    }
    close(tf->made_fd);
    tf->made_fd = -1;
}

/* P, opened to load the copy from, with its stat (settled: the stamp of
 * the load is taken from it, and a change after it must show): the fd,
 * -ENOENT when there is nothing to load, or -errno with one line. With backup_to_disk P
 * is the backup, never followed through a link (backups replace it by
 * rename). Without, it is whatever file the user put there, followed as
 * fio follows it (only the caller's or root's links), and anything but a
 * regular file is left alone. */
static int tmpfs_open_disk(const struct tmpfs_layer *t, const struct tmpfs_file *tf,
                           struct stat *st, char *err, size_t errlen)
{
    int fd = t->backup ? xd_open_regular(tf->disk_path, O_RDONLY | O_NOFOLLOW)
                       : xd_open_data(tf->disk_path, O_RDONLY | O_CLOEXEC, 0, true);
    int rc = fd >= 0 ? xd_stat_settled(fd, NULL, st) : 0; /* the stamp a load takes */
    if (rc) {
        close(fd);
        fd = rc;
    }
    if (fd >= 0 && !S_ISREG(st->st_mode)) { /* a block device: never loaded */
        close(fd);
        fd = -ENOENT;
    }
    if (fd == -ENXIO && !t->backup)
        fd = -ENOENT;
    if (fd < 0 && fd != -ENOENT)
        xd_errf(err, errlen, "%s: cannot read it to %s: %s", tf->disk_path,
                t->backup ? "restore its tmpfs copy (backup_to_disk=true)"
                          : "load it into its tmpfs copy",
                xd_refusal(fd));
    return fd;
}

/* Whether anything is at P to load: the lock is taken only then, so a copy
 * without a disk file gets no stamp. */
static bool tmpfs_disk_there(const struct tmpfs_layer *t, const struct tmpfs_file *tf)
{
    struct stat st;
    return !(t->backup ? lstat : stat)(tf->disk_path, &st);
}

/* Replace the copy with P's data (src; disk, its stat) and stamp it, with
 * the stamp's lock (stamp_fd) held. A new file renamed over the copy, as a
 * backup replaces P: a crash leaves the old copy or the whole new one, and
 * the new inode tells a checksum sidecar of the old one that it is stale.
 * A copy made where there was none is removed again if the open fails. */
static int tmpfs_load_copy(struct tmpfs_layer *t, struct tmpfs_file *tf, int src,
                           const struct stat *disk, int stamp_fd, char *err, size_t errlen)
{
    char what[PATH_MAX * 2 + 32];
    struct tmpfs_fill fill = {.src = src, .stamp_fd = -1};
    struct stat old;
    bool had = !fstatat(t->dirfd, tf->data_name, &old, AT_SYMLINK_NOFOLLOW);
    snprintf(what, sizeof(what), "%s: loading its tmpfs copy %s", tf->disk_path, tf->data_path);
    xd_temp_sweep_at(t->dirfd, tf->data_name); /* a killed load's: loads hold the stamp's lock */
    int64_t rc = xd_write_file_atomic_with(t->dirfd, tf->data_name, t->file_mode, tmpfs_fill,
                                           &fill, what, err, errlen);
    if (rc < 0)
        return (int)rc;
    int fd = had ? -1 : TMPFS_RETRY(openat(t->dirfd, tf->data_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd >= 0) {
        tmpfs_made(tf, fd);
        close(fd);
    }
    struct tmpfs_stamp s = xd_tmpfs_stamp_of(&fill.made, disk);
    xd_tmpfs_stamp_write(stamp_fd, &s); /* fails only with a torn stamp: the next open loads again */
    pthread_mutex_lock(&t->lock);
    t->count.restores++;
    t->count.restore_bytes += (uint64_t)rc;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* P changed since the copy last matched it, and the copy holds writes P
 * lacks: loading P would drop them without a word, keeping the copy would
 * drop P's change. Which to keep is the user's call. */
static int tmpfs_refuse_both_changed(const struct tmpfs_layer *t, const struct tmpfs_file *tf,
                                     char *err, size_t errlen)
{
    xd_errf(err, errlen, "%s: changed on disk (written, or a chmod, chown or link moved its ctime) since its tmpfs copy last matched it, while the copy holds writes through xdevice that it lacks (never backed up); refused rather than lose either: to keep the disk file, remove the copy's stamp %s/%s; to keep the copy, move the disk file away",
            tf->disk_path, t->dir, tf->stamp_name);
    return -ESTALE;
}

/* P is the copy's own backup, renamed there by a process killed before it
 * stamped it (the stamp names it pending): the copy holds that backup's
 * data and any write since, so it is used, and stamped afresh with P as it
 * is now (disk: settled), as written, since a write may have followed the
 * backup. Loading P, or refusing it as another program's change, would
 * drop those writes or stop a restart that lost nothing. */
static int tmpfs_adopt_backup(struct tmpfs_layer *t, struct tmpfs_file *tf,
                              const struct stat *disk, int lock)
{
    struct stat copy;
    if (fstatat(t->dirfd, tf->data_name, &copy, AT_SYMLINK_NOFOLLOW))
        return -errno;
    struct tmpfs_stamp s = xd_tmpfs_stamp_of(&copy, disk);
    s.writes = true;
    /* not rewritten (the stamp stays as it was: the next open adopts P
     * again): the first write marks it then, as after a clean stamp */
    atomic_store(&tf->stamp_clean, xd_tmpfs_stamp_write(lock, &s) != 0);
    pthread_mutex_lock(&t->lock);
    t->count.backups_adopted++;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* The open's verdict on P (src; disk, its stat) with the stamp's lock
 * (lock) held: a copy current with P is used as it is (it holds P's data
 * and every write through xdevice since, a kill's included); a copy with
 * writes of its own against a changed P is refused; anything else (P
 * changed since: psync or a user wrote it; no copy, after a reboot; no
 * stamp for this copy) loads P: the disk file wins. */
static int tmpfs_verdict(struct tmpfs_layer *t, struct tmpfs_file *tf, int src,
                         const struct stat *disk, int lock, char *err, size_t errlen)
{
    struct tmpfs_stamp s;
    bool ours = xd_tmpfs_stamp_for_copy(t->dirfd, tf->data_name, lock, &s);
    if (ours && xd_tmpfs_disk_unchanged(&s, disk)) {
        atomic_store(&tf->stamp_clean, !s.writes);
        return 0;
    }
    if (ours && xd_tmpfs_disk_is_pending(&s, disk))
        return tmpfs_adopt_backup(t, tf, disk, lock);
    if (ours && s.writes)
        return tmpfs_refuse_both_changed(t, tf, err, errlen);
    int rc = tmpfs_load_copy(t, tf, src, disk, lock, err, errlen);
    atomic_store(&tf->stamp_clean, !rc);
    return rc;
}

/* No P: the copy is used as it is; its writes are recorded in its stamp
 * when it has one saying it holds nothing more than P had, so P put back
 * (or made by a backup) later does not silently replace them. Read
 * without the lock: with no P, no load or backup rewrites it now. */
static void tmpfs_no_disk(const struct tmpfs_layer *t, struct tmpfs_file *tf)
{
    struct tmpfs_stamp s;
    int fd = TMPFS_RETRY(openat(t->dirfd, tf->stamp_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return;
    if (xd_tmpfs_stamp_for_copy(t->dirfd, tf->data_name, fd, &s))
        atomic_store(&tf->stamp_clean, !s.writes);
    close(fd);
}

/* Before the driver opens the copy, make it current with P (tmpfs_verdict).
 * Without backup_to_disk the same: the data a user put at P is what the
 * type serves, as psync would, unless the copy holds writes of its own. A
 * missing P leaves the copy as it is. Openers take turns on the stamp's
 * lock, so one loads. 0 or -errno with one line. */
static int tmpfs_restore(struct tmpfs_layer *t, struct tmpfs_file *tf, char *err, size_t errlen)
{
    if (!tmpfs_disk_there(t, tf)) {
        tmpfs_no_disk(t, tf);
        return 0;
    }
    int lock = xd_lock_at(t->dirfd, tf->stamp_name, t->file_mode);
    if (lock < 0) {
        xd_errf(err, errlen, "%s: cannot lock its tmpfs copy's stamp %s/%s: %s", tf->disk_path,
                t->dir, tf->stamp_name, xd_refusal(lock));
        return lock;
    }
    struct stat disk;
    int rc = 0, src = tmpfs_open_disk(t, tf, &disk, err, errlen); /* under the lock: no
                                                                     backup renames P now */
    if (src >= 0)
        rc = tmpfs_verdict(t, tf, src, &disk, lock, err, errlen);
    else if (src != -ENOENT)
        rc = src;
    if (src >= 0)
        close(src);
    close(lock);
    return rc;
}

/* The first write since the copy last matched P (a load, a backup): its
 * stamp says the copy holds writes P lacks before the write is
 * acknowledged, so an open after a kill, finding P changed, refuses rather
 * than load P over them. Once per load or backup, not per request (the
 * caller tests stamp_clean); under the stamp's lock, so a backup under way
 * stamps first and this after it. Only the stamp of this very copy: one
 * another open loaded since is not ours to mark. 0 or -errno. */
/* The stamp (lock: its descriptor, locked) read into s, when it speaks
 * for the very copy this open's driver has (one another open loaded since
 * is not ours). */
static bool tmpfs_stamp_of_our_copy(const struct tmpfs_file *tf, int lock, struct tmpfs_stamp *s)
{
    return tf->copy_known && xd_tmpfs_stamp_read(lock, s) &&
           s->copy_dev == (unsigned long long)tf->copy_dev &&
           s->copy_ino == (unsigned long long)tf->copy_ino;
}

static int tmpfs_stamp_writes(const struct tmpfs_layer *t, struct tmpfs_file *tf)
{
    struct tmpfs_stamp s;
    int rc = 0, lock = xd_lock_at(t->dirfd, tf->stamp_name, t->file_mode);
    if (lock < 0)
        return lock;
    if (tmpfs_stamp_of_our_copy(tf, lock, &s) && !s.writes) {
        s.writes = true;
        rc = xd_tmpfs_stamp_write(lock, &s);
    }
    if (!rc)
        atomic_store(&tf->stamp_clean, false);
    close(lock);
    return rc;
}

/* --- the backup thread --------------------------------------------------- */

/* Back up every open file. Called and returns with t->lock held, dropping it
 * around each copy; the pinned entry stays linked, so its next stays valid. */
static void tmpfs_backup_pass_locked(struct tmpfs_layer *t)
{
    struct tmpfs_file *tf = t->files;
    while (tf && !t->stop) {
        tf->pins++;
        pthread_mutex_unlock(&t->lock);
        tmpfs_backup(t, tf);
        pthread_mutex_lock(&t->lock);
        struct tmpfs_file *next = tf->next;
        if (!--tf->pins)
            pthread_cond_broadcast(&t->unpinned);
        tf = next;
    }
}

static void *tmpfs_backup_thread(void *arg)
{
    struct tmpfs_layer *t = arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t)t->interval_sec;
        while (!t->stop && !t->rearm &&
               pthread_cond_timedwait(&t->wake, &t->lock, &deadline) != ETIMEDOUT)
            ;
        if (t->rearm) {
            t->rearm = false;
            continue;
        }
        if (!t->stop)
            tmpfs_backup_pass_locked(t);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Started at the first file open, with every signal blocked so signals keep
 * going to the caller's (fio's) threads. Called with t->lock held. */
static int tmpfs_start_thread_locked(struct tmpfs_layer *t, char *err, size_t errlen)
{
    sigset_t all, old;
    if (t->thread_started)
        return 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -pthread_create(&t->thread, NULL, tmpfs_backup_thread, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        xd_errf(err, errlen, "backup_to_disk=true: cannot start the backup thread: %s",
                strerror(-rc));
    t->thread_started = !rc;
    return rc;
}

static void tmpfs_stop_thread(struct tmpfs_layer *t)
{
    if (!t->thread_started)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    t->thread_started = false;
}

/* --- device -------------------------------------------------------------- */

static void tmpfs_free(struct tmpfs_layer *t)
{
    if (t->dirfd >= 0)
        close(t->dirfd); /* first: an open directory keeps the mount busy */
    tmpfs_auto_unmount(t);
    if (t->mount_parent >= 0)
        close(t->mount_parent);
    free(t->mount_lock);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->unpinned);
    free(t->dir);
    free(t);
}

static int tmpfs_new(struct tmpfs_layer **out, const struct xd_config *cfg)
{
    struct tmpfs_layer *t = calloc(1, sizeof(*t));
    pthread_condattr_t attr;
    if (!t)
        return -ENOMEM;
    t->backup = cfg->backup_to_disk;
    t->file_mode = cfg->file_permissions;
    t->dir_mode = cfg->dir_permissions;
    t->create_dirs = cfg->auto_create_dirs;
    t->allow_shared = cfg->allow_shared_directories;
    t->dirfd = t->mount_fd = t->mount_parent = -1;
    t->interval_sec = (unsigned)cfg->backup_interval_sec;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&t->unpinned, NULL);
    *out = t;
    return 0;
}

static int tmpfs_open(struct xd_layer *layer, char *err, size_t errlen)
{
    struct tmpfs_layer *t;
    int rc = tmpfs_new(&t, layer->dev->cfg);
    if (rc)
        return rc;
    rc = tmpfs_choose_dir(t, layer->dev->cfg, err, errlen);
    if (rc) {
        tmpfs_free(t);
        return rc;
    }
    layer->priv = t;
    return 0;
}

static void tmpfs_file_free(struct tmpfs_file *tf)
{
    if (tf->presence_fd >= 0)
        close(tf->presence_fd);
    pthread_mutex_destroy(&tf->backup_lock);
    free(tf->disk_path);
    free(tf->backup_base);
    free(tf->disk_dir);
    free(tf->data_path);
    free(tf->stamp_name);
    free(tf);
}

static void tmpfs_close(struct xd_layer *layer)
{
    struct tmpfs_layer *t = layer->priv;
    tmpfs_stop_thread(t);
    /* files the caller left open still get their last backup */
    for (struct tmpfs_file *tf = t->files; tf; tf = tf->next)
        tmpfs_backup(t, tf);
    tmpfs_free(t);
}

/* --- files --------------------------------------------------------------- */

/* Per-file state for disk path P: its absolute form, backup names and tmpfs name. */
static int tmpfs_file_new(const struct tmpfs_layer *t, const char *path, struct tmpfs_file **out)
{
    struct tmpfs_file *tf = calloc(1, sizeof(*tf));
    char *slash;
    if (!tf)
        return -ENOMEM;
    pthread_mutex_init(&tf->backup_lock, NULL);
    atomic_init(&tf->dirty, false); /* only a write through this device makes a backup */
    tf->made_fd = -1;
    tf->presence_fd = -1;
    if (!(tf->disk_path = tmpfs_absolute(path)) || !(tf->disk_dir = strdup(tf->disk_path)) ||
        !(tf->data_path = tmpfs_data_path(t->dir, tf->disk_path)))
        goto fail;
    slash = strrchr(tf->disk_dir, '/');
    if (slash)
        slash[slash == tf->disk_dir] = '\0'; /* keep "/" for a file at the root */
    else
        strcpy(tf->disk_dir, ".");
    tf->data_name = strrchr(tf->data_path, '/') + 1;
    if (!(tf->stamp_name = xd_tmpfs_stamp_name(tf->data_name)) ||
        !(tf->backup_base = strdup(strrchr(tf->disk_path, '/') ? strrchr(tf->disk_path, '/') + 1
                                                              : tf->disk_path)))
        goto fail;
    *out = tf;
    return 0;
fail:
    tmpfs_file_free(tf);
    return -ENOMEM;
}

static void tmpfs_link_locked(struct tmpfs_layer *t, struct tmpfs_file *tf)
{
    tf->prev = NULL;
    tf->next = t->files;
    if (t->files)
        t->files->prev = tf;
    t->files = tf;
}

/* Waits until no backup pass holds tf, so it can be freed afterwards. */
static void tmpfs_unlink(struct tmpfs_layer *t, struct tmpfs_file *tf)
{
    pthread_mutex_lock(&t->lock);
    while (tf->pins)
        pthread_cond_wait(&t->unpinned, &t->lock);
    if (tf->prev)
        tf->prev->next = tf->next;
    else
        t->files = tf->next;
    if (tf->next)
        tf->next->prev = tf->prev;
    pthread_mutex_unlock(&t->lock);
}

/* Starts backing tf up: in the device's list, with the backup thread running. */
static int tmpfs_track(struct tmpfs_layer *t, struct tmpfs_file *tf, char *err, size_t errlen)
{
    pthread_mutex_lock(&t->lock);
    int rc = tmpfs_start_thread_locked(t, err, errlen);
    if (!rc)
        tmpfs_link_locked(t, tf);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* The copy the driver opened (its reopens find the same file): a backup
 * checks the name still names it (tmpfs_backup_check_copy). */
static void tmpfs_note_copy(struct xd_layer *layer, struct xd_file *file, struct tmpfs_file *tf)
{
    struct stat st;
    unsigned view;
    tf->copy_known = !xd_below_identity(layer, file, &st, &view);
    if (tf->copy_known) {
        tf->copy_dev = st.st_dev;
        tf->copy_ino = st.st_ino;
    }
}

/* A directory would get a tmpfs file of its own and then fail every backup. */
static int tmpfs_check_disk_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    size_t len = strlen(path);
    if (len && path[len - 1] != '/' && (stat(path, &st) || !S_ISDIR(st.st_mode)))
        return 0;
    xd_errf(err, errlen, "%s: is a directory; allowed: a file path (the tmpfs type keeps its data under tmpfs_directory)",
            path);
    return -EISDIR;
}

/* The tmpfs copy's name is ours: a symlink, or another user's file, planted
 * there is refused rather than handed to the driver (which opens by name).
 * With XD_OPEN_CREATE the copy is made here; without, it must exist. */
static int tmpfs_claim(const struct tmpfs_layer *t, struct tmpfs_file *tf, unsigned flags,
                       char *err, size_t errlen)
{
    struct stat st;
    int rc = 0;
    if (flags & XD_OPEN_CREATE) {
        bool made;
        int fd = xd_open_own_at_made(t->dirfd, tf->data_name, O_RDONLY, t->file_mode, &made);
        if (made)
            tmpfs_made(tf, fd);
        rc = fd < 0 ? fd : close(fd);
    } else if (!fstatat(t->dirfd, tf->data_name, &st, AT_SYMLINK_NOFOLLOW)) {
        rc = S_ISLNK(st.st_mode) ? -ELOOP
             : (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) ? -EPERM
                                                                                    : 0;
    } /* missing without XD_OPEN_CREATE: the driver says ENOENT */
    if (rc)
        xd_errf(err, errlen, "%s: cannot use its tmpfs copy %s: %s", tf->disk_path,
                tf->data_path, xd_refusal(rc));
    return rc;
}

/* backup_to_disk replaces P by rename and makes temp files beside it: P's
 * directory must be one others cannot redirect, and P a regular file of
 * ours or root's or nothing (xd_replace_check: a rename would silently cut
 * a symlink, or remove another user's file), said now rather than at the
 * first backup. */
static int tmpfs_check_backup_target(const struct tmpfs_layer *t, const struct tmpfs_file *tf,
                                     char *err, size_t errlen)
{
    char what[PATH_MAX + 32];
    const char *base;
    snprintf(what, sizeof(what), "%s (backup_to_disk=true)", tf->disk_path);
    int fd = xd_dir_open_for(tf->disk_path, what, t->allow_shared, &base, err, errlen);
    if (fd == -ENOENT)
        return 0; /* made at the first backup, when auto_create_dirs allows */
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = xd_replace_check(fd, base, what, &st, err, errlen);
    close(fd);
    /* A backup is renamed over P: P's other names would keep the old data. */
    if (!rc && S_ISREG(st.st_mode) && st.st_nlink > 1) {
        xd_errf(err, errlen, "backup_to_disk: %s: the file has %lu names (hard links); each backup is a new file renamed over this one, and the others would keep the old data; allowed: a file with one name (symlinks to it are fine), or backup_to_disk=false",
                tf->disk_path, (unsigned long)st.st_nlink);
        rc = -EMLINK;
    }
    return rc;
}

/* file->path is the caller's disk path P; the driver below opens (and
 * reopens) the tmpfs copy instead, by the name tmpfs_path_below gives it,
 * once tmpfs_restore made it current with P (with or without backups;
 * never the hybrid type's hot copy, XD_OPEN_NO_SOURCE: its path is the
 * cold file's). */
static int tmpfs_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                           uint64_t size, char *err, size_t errlen)
{
    struct tmpfs_layer *t = layer->priv;
    struct tmpfs_file *tf;
    const char *disk_path = file->path;
    int rc = tmpfs_check_disk_path(disk_path, err, errlen);
    if (rc || (rc = tmpfs_file_new(t, disk_path, &tf)))
        return rc;
    tf->read_only = flags & XD_OPEN_READONLY;
    if (t->backup && (rc = tmpfs_check_backup_target(t, tf, err, errlen)))
        goto fail;
    if (!(flags & XD_OPEN_NO_SOURCE) && (rc = tmpfs_restore(t, tf, err, errlen)))
        goto fail;
    if ((rc = tmpfs_claim(t, tf, flags, err, errlen)))
        goto fail;
    file->priv[layer->level] = tf; /* for tmpfs_path_below, while the driver opens */
    rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (rc)
        goto fail;
    tmpfs_note_copy(layer, file, tf);
    if (t->backup) /* -errno when it cannot: then backups take others to be there */
        tf->presence_fd = xd_tmpfs_presence_hold(t->dirfd, tf->stamp_name, t->file_mode);
    if (t->backup && (rc = tmpfs_track(t, tf, err, errlen))) {
        xd_layer_file_close(layer->lower, file);
        goto fail;
    }
    tmpfs_open_over(t, tf, false);
    return 0;
fail:
    file->priv[layer->level] = NULL;
    tmpfs_open_over(t, tf, true);
    tmpfs_file_free(tf);
    return rc;
}

/* The close's backup failed (a full disk): the disk path does not hold
 * what was written since the last backup. The close says so (xd_file_close
 * returns rc, the line is take_error's); the data stays in the tmpfs copy. */
static void tmpfs_close_failed(struct tmpfs_layer *t, const struct tmpfs_file *tf,
                               struct xd_file *file, int rc)
{
    xd_file_close_failed(file, rc);
    pthread_mutex_lock(&t->lock);
    xd_errf(t->close_error, sizeof(t->close_error),
             "backup_to_disk=true: its backup at close failed: %s; the disk file lacks what was written since the last backup; the data stays in %s",
             t->last_backup_error[0] ? t->last_backup_error : strerror(-rc), tf->data_path);
    pthread_mutex_unlock(&t->lock);
}

static int tmpfs_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    struct tmpfs_layer *t = layer->priv;
    pthread_mutex_lock(&t->lock);
    int rc = xd_take_held_error(t->close_error, line);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Whether tf's copy is stamped as written since it last matched P: left so
 * by a backup that had another open beside it, or by a kill. */
static bool tmpfs_stamped_written(const struct tmpfs_layer *t, const struct tmpfs_file *tf)
{
    struct tmpfs_stamp s;
    int lock = xd_lock_at(t->dirfd, tf->stamp_name, t->file_mode);
    if (lock < 0)
        return false;
    bool written = tmpfs_stamp_of_our_copy(tf, lock, &s) && s.writes;
    close(lock);
    return written;
}

static void tmpfs_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct tmpfs_layer *t = layer->priv;
    struct tmpfs_file *tf = file->priv[layer->level];
    if (tf && t->backup) {
        tmpfs_unlink(t, tf);
        /* The last writable open of a copy stamped as written backs it up
         * even when it wrote nothing itself: the other opens' writes (or a
         * killed run's) are in the copy, and P then holds them, the stamp
         * clean again. */
        if (!tf->read_only && !xd_tmpfs_others_present(tf->presence_fd) &&
            tmpfs_stamped_written(t, tf))
            atomic_store_explicit(&tf->dirty, true, memory_order_release);
        int rc = tmpfs_backup(t, tf); /* an error is kept in last_backup_error */
        if (rc < 0)
            tmpfs_close_failed(t, tf, file, rc);
    }
    xd_layer_file_close(layer->lower, file);
    if (tf)
        tmpfs_file_free(tf);
    file->priv[layer->level] = NULL;
}

/* --- data path ----------------------------------------------------------- */

static bool tmpfs_is_write(const struct xd_req *req)
{
    return req->op == XD_OP_WRITE || req->op == XD_OP_TRIM;
}

static void tmpfs_mark_dirty(const struct xd_layer *layer, const struct xd_req *req)
{
    if (tmpfs_is_write(req)) {
        struct tmpfs_file *tf = req->file->priv[layer->level];
        atomic_store_explicit(&tf->dirty, true, memory_order_release);
    }
}

/* A write about to be acknowledged (or, without backups, sent down) on a
 * copy whose stamp says it holds nothing P lacks: the stamp says otherwise
 * first (tmpfs_stamp_writes). One flag test per write. 0 or -errno: a
 * stamp that cannot be written fails the write, which a kill could
 * otherwise lose without a word. */
static int tmpfs_note_write(const struct xd_layer *layer, const struct xd_req *req)
{
    struct tmpfs_file *tf = req->file->priv[layer->level];
    if (!atomic_load_explicit(&tf->stamp_clean, memory_order_acquire))
        return 0;
    return tmpfs_stamp_writes(layer->priv, tf);
}

static bool tmpfs_is_sync(const struct xd_req *req)
{
    return req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC;
}

/* A request the layer below finished: a write marks its file dirty again
 * (a backup that began while it was in flight is followed by another) and,
 * before it is acknowledged, its stamp; a sync, done below once every
 * write before it was, is where the backup runs: durability means P holds
 * the data. */
static void tmpfs_finished(const struct xd_layer *layer, struct xd_req *req)
{
    struct tmpfs_layer *t = layer->priv;
    if (!tmpfs_is_sync(req)) {
        tmpfs_mark_dirty(layer, req);
        int rc = tmpfs_is_write(req) ? tmpfs_note_write(layer, req) : 0;
        if (rc && req->result >= 0)
            req->result = rc;
        return;
    }
    int rc = tmpfs_backup(t, req->file->priv[layer->level]);
    if (req->result >= 0)
        req->result = rc;
}

/* Without backup_to_disk a write goes down once its stamp is marked (no
 * backup ever clears it, so before is as good as after, and no reap hook
 * is needed). With backup_to_disk a write marks its file dirty when
 * submitted (so a following fsync backs it up) and again when done. A
 * sync goes down (a no-op on tmpfs, but queued behind the large writes the
 * file driver may still have in flight) and the backup follows when it is
 * done. */
static int tmpfs_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct tmpfs_layer *t = layer->priv;
    if (!t->backup) {
        int rc = tmpfs_is_write(req) ? tmpfs_note_write(layer, req) : 0;
        if (rc) {
            req->result = rc;
            return XD_DONE;
        }
        return xd_layer_submit(layer->lower, req);
    }
    tmpfs_mark_dirty(layer, req);
    int rc = xd_layer_submit(layer->lower, req);
    if (rc == XD_DONE)
        tmpfs_finished(layer, req);
    return rc;
}

static int tmpfs_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct tmpfs_layer *t = layer->priv;
    int n = xd_layer_reap(layer->lower, done, min, max, timeout);
    for (int i = 0; t->backup && i < n; i++)
        tmpfs_finished(layer, done[i]);
    return n;
}

static void tmpfs_stats_json(struct tmpfs_layer *t, struct xd_json *j)
{
    pthread_mutex_lock(&t->lock);
    xd_json_object_begin(j, "tmpfs");
    xd_json_string(j, "directory", t->dir);
    xd_json_bool(j, "mounted_by_us", t->mounted_by_us);
    xd_json_bool(j, "backup_to_disk", t->backup);
    xd_json_uint(j, "backup_interval_sec", t->interval_sec);
    xd_json_uint(j, "backups", t->count.backups);
    xd_json_uint(j, "backup_bytes", t->count.backup_bytes);
    xd_json_uint(j, "backup_errors", t->count.backup_errors);
    xd_json_uint(j, "restores", t->count.restores);
    xd_json_uint(j, "restore_bytes", t->count.restore_bytes);
    xd_json_uint(j, "backups_adopted", t->count.backups_adopted);
    if (t->last_backup_error[0])
        xd_json_string(j, "last_backup_error", t->last_backup_error);
    else
        xd_json_raw(j, "last_backup_error", "null");
    xd_json_object_end(j);
    pthread_mutex_unlock(&t->lock);
}

/* backup_interval_sec is live: the backup thread waits anew with it. */
static void tmpfs_set_interval(struct tmpfs_layer *t, const struct xd_config *cfg)
{
    pthread_mutex_lock(&t->lock);
    if (t->interval_sec != (unsigned)cfg->backup_interval_sec) {
        t->interval_sec = (unsigned)cfg->backup_interval_sec;
        t->rearm = true;
        pthread_cond_broadcast(&t->wake);
    }
    pthread_mutex_unlock(&t->lock);
}

static const char *tmpfs_path_below(struct xd_layer *layer, const struct xd_file *file)
{
    const struct tmpfs_file *tf = file->priv[layer->level];
    return tf ? tf->data_path : NULL;
}

/* The copy of the file at path, for xd_unlink (the core removes it). */
static char *tmpfs_path_below_of(struct xd_layer *layer, const char *path)
{
    const struct tmpfs_layer *t = layer->priv;
    char *abs = tmpfs_absolute(path);
    char *data = abs ? tmpfs_data_path(t->dir, abs) : NULL;
    free(abs);
    return data;
}

/* The copy's stamp goes with it (its own only, never through a link). */
static void tmpfs_unlink_stamp(const struct tmpfs_layer *t, const char *abs)
{
    char *data = tmpfs_data_path(t->dir, abs);
    char *stamp = data ? xd_tmpfs_stamp_name(strrchr(data, '/') + 1) : NULL, *path = NULL;
    if (stamp && asprintf(&path, "%s/%s", t->dir, stamp) >= 0) {
        xd_unlink_own(path);
        free(path);
    }
    free(stamp);
    free(data);
}

/* The file at path is being removed (its copy by the core): the files of
 * it open here stop backing up, which would make P again. */
static int tmpfs_unlink_hook(struct xd_layer *layer, const char *path, const char *bottom,
                             char *err, size_t errlen)
{
    (void)bottom, (void)err, (void)errlen;
    struct tmpfs_layer *t = layer->priv;
    char *abs = tmpfs_absolute(path);
    if (!abs)
        return -ENOMEM;
    tmpfs_unlink_stamp(t, abs);
    pthread_mutex_lock(&t->lock);
    for (struct tmpfs_file *tf = t->files; tf; tf = tf->next)
        if (!strcmp(tf->disk_path, abs))
            atomic_store_explicit(&tf->removed, true, memory_order_release);
    pthread_mutex_unlock(&t->lock);
    free(abs);
    return 0;
}

/* Every file lives in the layer's tmpfs directory, whatever path says, and
 * the layer's own work (a backup when a sync completes) is done where the
 * request completes: ask the layer below about that directory. */
static bool tmpfs_inline_at(struct xd_layer *layer, const char *path, uint64_t largest_write)
{
    const struct tmpfs_layer *t = layer->priv;
    return xd_below_inline_at(layer, t->dir, largest_write);
}

static const char *tmpfs_notice(struct xd_layer *layer)
{
    struct tmpfs_layer *t = layer->priv;
    return t->notice[0] ? t->notice : NULL;
}

static void tmpfs_stats_hook(struct xd_layer *layer, struct xd_json *j)
{
    tmpfs_stats_json(layer->priv, j);
}

static int tmpfs_reload(struct xd_layer *layer, const struct xd_config *before)
{
    tmpfs_set_interval(layer->priv, layer->dev->cfg);
    return 0;
}

const struct xd_ops xd_tmpfs_ops = {
    .version = XD_OPS_VERSION,
    .name = "tmpfs",
    .open = tmpfs_open,
    .close = tmpfs_close,
    .file_open = tmpfs_file_open,
    .file_close = tmpfs_file_close,
    .submit = tmpfs_submit,
    .reap = tmpfs_reap,
    .notice = tmpfs_notice,
    .take_error = tmpfs_take_error,
    .path_below = tmpfs_path_below,
    .path_below_of = tmpfs_path_below_of,
    .unlink = tmpfs_unlink_hook,
    .inline_at = tmpfs_inline_at,
    .stats_json = tmpfs_stats_hook,
    .reload = tmpfs_reload,
};
