/* fileutil.h - file and directory chores the drivers and layers share. */
#ifndef XD_FILEUTIL_H
#define XD_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

struct xd_config;

/* mkdir -p. 0 or -errno; -ENOTDIR when path exists as something else. */
int xd_mkdir_p(const char *path, mode_t mode);
/* mkdir -p of the directory holding path. */
int xd_mkdir_parents(const char *path, mode_t mode);
/* Make a new file at least size bytes long. With preallocate_files (and
 * use_fallocate) its space is reserved up front in extent_size steps, so it is
 * laid out in large extents rather than grown block by block by random
 * writes. Returns the bytes reserved (0 when none) or -errno. */
int64_t xd_file_set_size(const struct xd_config *cfg, int fd, uint64_t size);

/* The kernel's own readahead for the device holding fd's file, in bytes
 * (sysfs queue/read_ahead_kb); 0 when there is no such device (tmpfs) or it
 * cannot be read. */
uint64_t xd_device_readahead(int fd);

/* --- files xdevice makes for itself --------------------------------------
 * xdevice runs as root in most labs, so every file it makes (stats, logs,
 * traces, maps, locks, temp files, tmpfs data) is made relative to a
 * directory fd it has checked, with O_NOFOLLOW, and new names with O_EXCL:
 * a symlink or file another user planted is never followed or reused. */

/* The per-user default directory under /dev/shm: "/dev/shm/xdevice-UID". */
void xd_private_dir_path(char *buf, size_t len);
/* Make (mode 0700) or accept dir as private: a real directory (not a
 * symlink) owned by the caller, no access for group or others. One line in
 * err names what is wrong. Returns 0 or -errno. */
int xd_private_dir(const char *dir, char *err, size_t errlen);
/* Which symbolic links xd_dir_walk follows. */
enum xd_link_rule {
    /* fs.protected_symlinks' rule, which root does not get from the kernel
     * here (it is often 0): a link is followed when it is the caller's,
     * or the directory holding it is not sticky and writable by others,
     * or the link's owner owns that directory. /var/run -> /run passes;
     * another user's link in /tmp does not. */
    XD_LINKS_PROTECTED,
    /* only the caller's or root's links, anywhere (xdcheckpoint restore:
     * the manifest names the path, and any link on it decides where). */
    XD_LINKS_OURS,
};
/* Open the directory path (relative to the working directory unless
 * absolute) one name at a time with O_NOFOLLOW, following a symbolic link
 * in any of its components only as rule allows. The fd, or -errno with
 * one line in err naming the name where it stopped; -XD_EUNTRUSTED_LINK
 * for a link the rule refuses. */
int xd_dir_walk(const char *path, enum xd_link_rule rule, char *err, size_t errlen);
/* Whether the names above the directory open as dirfd (named dir) may be
 * trusted: no link in them that XD_LINKS_PROTECTED refuses
 * (-XD_EUNTRUSTED_LINK), and the walk ends at dirfd's directory (-EXDEV:
 * moved since it was opened). 0, or one of those with one line in why;
 * a path the walk cannot open is left to whoever opened dirfd (0). */
int xd_dir_links_check(int dirfd, const char *dir, char *why, size_t whylen);
/* Whether the open directory dirfd (named dir) may hold files xdevice
 * makes: owned by the caller or root, and not writable by others unless
 * sticky (like /tmp). what prefixes the one-line refusal ("xd_stats=F").
 * allow_shared (allow_shared_directories) skips the check. 0 or -EPERM. */
int xd_dir_check(int dirfd, const char *dir, const char *what, bool allow_shared, char *err,
                 size_t errlen);
/* Open path's directory (checked as above) for *at calls; *base points at
 * path's last component. Returns the fd or -errno, with one line in err. */
int xd_dir_open_for(const char *path, const char *what, bool allow_shared, const char **base,
                    char *err, size_t errlen);
/* A new file: O_CREAT|O_EXCL|O_NOFOLLOW, then fchmod to mode exactly.
 * flags adds O_WRONLY/O_RDWR/O_APPEND. Returns the fd or -errno. */
int xd_create_at(int dirfd, const char *name, int flags, mode_t mode);
/* A new temp file ".base.xdtmp-XXXXXX" (random, mkstemp-style) in dirfd;
 * its name goes to name. Returns the fd or -errno. The mark tells xdevice's
 * temps from other programs' (xd_temp_sweep_at removes only xdevice's). */
#define XD_TEMP_MARK "xdtmp-"
int xd_temp_at(int dirfd, const char *base, mode_t mode, char *name, size_t len);
/* Remove the temp files xd_temp_at made for base in dirfd that a process
 * killed before its rename left behind (a kill -9 in the middle of
 * xd_write_file_atomic_with): regular files of the caller's with one link
 * and exactly such a name. Only for a caller that knows no live writer is
 * filling one (it holds the lock every writer of base holds). Returns how
 * many it removed or -errno. */
int xd_temp_sweep_at(int dirfd, const char *base);
/* Open or create a file xdevice reuses between runs (a log appended to, a
 * lock, a map): never through a symlink; an existing one must be a regular
 * file of the caller's with one link (a hard link planted in a shared
 * directory would aim the writes at another file). -ELOOP for a symlink,
 * -EPERM for a file that is not the caller's. Returns the fd or -errno. */
int xd_open_own_at(int dirfd, const char *name, int flags, mode_t mode);
/* The same, telling in *made whether this call made the file, so that an
 * open failing after it can remove it again (xd_unlink_made). */
int xd_open_own_at_made(int dirfd, const char *name, int flags, mode_t mode, bool *made);
/* Remove a file xdevice made for another (a sidecar, a map, a tmpfs copy):
 * only a regular file of the caller's, never what a symlink names. 1 when
 * removed, 0 when there was none, -EPERM for anything else there, -errno. */
int xd_unlink_own(const char *path);
/* The same, then flock(LOCK_EX) (EINTR retried). A lock won on a name that
 * its remover has unlinked meanwhile is let go and taken on the new file,
 * so a last user may delete the lock file. Returns the fd or -errno. */
int xd_lock_at(int dirfd, const char *name, mode_t mode);
/* mkdir name in dirfd (mode exactly) or accept the one there if it is a
 * real directory owned by the caller. Returns its fd or -errno (-ELOOP: a
 * symlink, -EPERM: someone else's). */
int xd_mkdir_own_at(int dirfd, const char *name, mode_t mode);
/* Whether uid, the owner of a file or link at a name xdevice uses, is the
 * caller or root: xdevice follows, replaces or removes only what they made
 * (another user's, planted in /tmp say, is refused). */
bool xd_uid_ours(uid_t uid);
/* What is at name in dirfd, before a file is put there by rename
 * (xd_write_file_atomic_with looks again): nothing, or a regular file of
 * the caller's or root's, whose stat goes to *found (st_mode 0 when there
 * is none; found may be NULL). A symlink (-ELOOP), a directory (-EISDIR),
 * another user's file or anything else (-EPERM) is refused, with one line
 * in err naming what (what) and what is allowed. 0 or -errno. */
int xd_replace_check(int dirfd, const char *name, const char *what, struct stat *found,
                     char *err, size_t errlen);
/* What xd_write_file_atomic_with puts in the new file: write all of it to
 * fd and return the bytes written, or -errno with *step naming what failed
 * (to follow "cannot "). */
typedef int64_t (*xd_fill_fn)(int fd, void *arg, const char **step);
/* The one way xdevice and its tools replace a file (config saves, stats
 * documents and fragments, tmpfs backups, xdtune's outputs), so that a
 * reader sees the whole old or the whole new file and a crash leaves one of
 * them: a new temp file ".NAME.xdtmp-XXXXXX" beside name (xd_temp_at:
 * O_CREAT|O_EXCL|O_NOFOLLOW relative to dirfd, so a planted name is skipped,
 * never followed), given mode exactly (fchmod, whatever the umask), filled,
 * fsync'd, renamed over name, then dirfd fsync'd so that the rename is
 * durable. Only a regular file of the caller's or root's, or nothing, may
 * be at name (xd_replace_check): a symlink (-ELOOP), a directory (-EISDIR),
 * another user's file or anything else (-EPERM) is refused, never followed
 * or replaced. On failure the temp file is removed and, when
 * err is not NULL, one line there names what (name when NULL) and the step
 * that failed. Returns the bytes fill wrote or -errno. */
int64_t xd_write_file_atomic_with(int dirfd, const char *name, mode_t mode, xd_fill_fn fill,
                                  void *arg, const char *what, char *err, size_t errlen);
/* The same with the buffers' bytes. 0 or -errno. */
int xd_write_file_atomic(int dirfd, const char *name, mode_t mode, const struct iovec *iov,
                         int iovcnt, const char *what, char *err, size_t errlen);
/* Open a data file. With O_CREAT a new file is made with O_EXCL and then
 * given mode exactly (file_permissions, whatever the umask); an existing
 * one is opened as it is, through a symlink only when follow (the file
 * types fio lays out follow links as fio does, but only the caller's or
 * root's; the types whose format xdevice owns do not). Returns the fd or -errno (-ELOOP: a link; -ENXIO:
 * a FIFO or socket, refused rather than waited on). A file removed in
 * between (a concurrent xd_unlink) is made again: never -ENOENT with
 * O_CREAT, as with open(2). */
int xd_open_data(const char *path, int flags, mode_t mode, bool follow);
/* -XD_EUNTRUSTED_LINK: with follow, the link at the name is neither the
 * caller's nor root's (or no longer leads to the file opened). */
#define XD_EUNTRUSTED_LINK ENOLINK
/* The same, telling in *made whether this call made the file (made may be
 * NULL), so that an open that fails after it can remove it again
 * (xd_unlink_made) and leave nothing behind. */
int xd_open_data_made(const char *path, int flags, mode_t mode, bool follow, bool *made);
/* A data file's own name, for naming what a layer keeps of it beside or
 * after it (a checksum sidecar, a mirror copy): realpath(path) where that
 * names the file st describes (its device and inode: the file opened),
 * else path as given (a link changed since). Every name of a file, through
 * symlinks, then keys one sidecar and one set of copies. malloc'd; NULL:
 * no memory. */
char *xd_own_name(const char *path, const struct stat *st);
/* A regular file with more than one name (hard links), st its stat, has no
 * own name: state named after one of them (what: "its sidecar") would go
 * stale through another. -EMLINK with one line in err (key: the setting
 * that keeps the state), else 0. */
int xd_refuse_other_names(const char *key, const char *path, const struct stat *st,
                          const char *what, char *err, size_t errlen);
/* xd_open_data_made for a file xdevice names and makes itself
 * (XD_OPEN_OWN_FILE): never through a link (-ELOOP), and an existing file
 * must be a regular file of the caller's with one link (-EPERM otherwise;
 * xd_refusal words both). Returns the fd or -errno. */
int xd_open_own_data(const char *path, int flags, mode_t mode, bool *made);
/* For a file whose format is xdevice's and which it writes in place (a
 * compressed container, a hybrid cold file; opened never through a link):
 * 0 when the file open as fd is the caller's or root's, else -EPERM with
 * one line in err naming path and the owner. Another user's file at the
 * name (planted in /tmp, or theirs) is not ours to write into, as fio's
 * layout of a data file refuses to remove one. */
int xd_format_file_owner_check(int fd, const char *path, char *err, size_t errlen);
/* Remove the file at path that this process made and holds open as fd,
 * when path still names that file (never one put there since). */
void xd_unlink_made(const char *path, int fd);
/* Reads through fd stop updating the file's access time (O_NOATIME), when
 * the kernel allows it: only the file's owner or root may; anyone else's
 * reads go on updating it, as git's object reads do. Best effort, no error. */
void xd_fd_noatime(int fd);
/* Does the tmpfs with device number dev give its files large pages (mounted
 * huge=always or huge=within_size, or the system forces them)? Without
 * them every 4 KiB page is looked up and copied on its own: 128k reads and
 * writes ran at 0.4-0.5 of a huge=within_size tmpfs here. */
bool xd_tmpfs_large_pages(dev_t dev);
/* path opened for reading (O_RDONLY | extra, close-on-exec, no
 * controlling tty), its descriptor or -1 with errno set. Opened
 * non-blocking, then made blocking again: a FIFO no one writes to blocked
 * open(2) for ever (a config, job or results file swapped for one hung
 * the job or the tool without a word); this way it reads as empty, and a
 * pipe someone writes to (a shell's <(...)) reads as before. */
int xd_open_input(const char *path, int extra);
/* The same as a stdio stream: NULL with errno set. */
FILE *xd_fopen_input(const char *path);
/* path opened with flags (O_RDONLY or O_RDWR, O_NOFOLLOW as the caller
 * wants; close-on-exec, no controlling tty), for a file that must be a
 * regular one: opened non-blocking, so that a FIFO planted at the name
 * (another user's, in a shared directory) does not hang the open for
 * ever, then blocking again. fd, or -errno: -ENXIO for anything but a
 * regular file. */
int xd_open_regular(const char *path, int flags);
/* write(2) all of buf, EINTR retried. 0 or -errno (-EIO for a 0 return). */
int xd_write_all(int fd, const void *buf, size_t len);
/* What a refused name is, for messages: "a symbolic link", ... */
const char *xd_refusal(int rc);

/* fd at least size bytes long, every block of them there (fallocate):
 * an object written through a shared mapping must not be holes, or a full
 * file system (a full /dev/shm) is SIGBUS at a store rather than ENOSPC
 * here. Never shrinks it; ftruncate where fallocate is not supported.
 * 0 or -errno. */
int xd_fd_reserve(int fd, off_t size);

/* The caller's shared memory object at name ("/xdevice-..."), made
 * (O_EXCL, 0600) when there is none, and at least size bytes long (its
 * blocks reserved: xd_fd_reserve): its
 * descriptor, with its stat in *st, or -errno: -ENOENT when one was
 * removed between the two looks (look again), -EPERM when the name holds
 * another user's object or no regular file (never used: its owner could
 * put anything in it). */
int xd_shm_open_own(const char *name, off_t size, struct stat *st);

/* Shared memory objects in use are held: each user keeps a shared OFD lock
 * on byte `byte` of its descriptor while it uses the object, so one left by
 * users all killed (no lock on it) can be told from one in use, and
 * removed. */

/* xd_shm_open_own, the object then held: its descriptor, or -errno. One
 * removed by its last user between the open and the lock (no link left) is
 * opened anew (-EAGAIN after XD_SHM_OPEN_TRIES such races). */
#define XD_SHM_OPEN_TRIES 16u
int xd_shm_open_held(const char *name, off_t size, off_t byte, struct stat *st);
/* Hold the object open at fd (a shared lock on byte, waited for: know
 * whose it is first, as another user's could be locked for ever), its stat
 * in *st: 0, -ENOENT when its name was removed before the hold (nobody
 * held it: open it anew), or -errno. */
int xd_shm_hold(int fd, off_t byte, struct stat *st);
/* Let go of fd's hold on the object (inode ino) at name and remove it if
 * nobody else holds it (an exclusive lock taken at once) and the name
 * still holds it; the caller then closes fd, which lets every lock go. */
void xd_shm_release(int fd, const char *name, off_t byte, ino_t ino);
/* The caller's objects named prefix ("xdevice-...") then hex numbers
 * joined by '-', as the layers name theirs, that nobody holds: removed.
 * Other names that start with prefix are not ours to remove. */
void xd_shm_sweep(const char *prefix, off_t byte);

#endif
