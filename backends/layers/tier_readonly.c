/* tier_readonly.c - a read-only open of a hybrid file whose extent map
 * cannot be written here (a read-only mount, a directory or map the caller
 * may not write): fio's psync reads such a file, and the hybrid type
 * refused it. Such an open reads every extent from the cold file, which
 * holds every byte unless the map says a hot copy may hold writes the file
 * lacks; then the open is refused, never served older data. Nothing is hot
 * for it, nothing moves, nothing is written beside the file or in the hot
 * tier (docs/EXTENTMAP.md, "Read-only opens whose map cannot be written").
 * Separate because it judges the map as it lies on disk, without the write
 * locks and shared state that a writable map allows, and keeps writable
 * opens of the file out while it reads (a lock they look for).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/config.h"
#include "../core/fileutil.h"
#include "tier.h"

#define TIER_SCAN 256 /* map entries read at a time */

bool xd_tier_map_unwritable(int rc)
{
    return rc == -EROFS || rc == -EACCES || rc == -EPERM;
}

/* An OFD lock's query: does another descriptor hold a lock on byte that a
 * write lock would meet? fd may be read-only. */
static bool tier_byte_held(int fd, off_t byte)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
    return !fcntl(fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK;
}

/* The reader's mark: a read lock on a byte of the cold file far past its
 * data, which a process about to build the file's shared state looks for
 * (xd_tier_cold_readers). Taken before the map is looked at, so a writable
 * open that makes or loads the map after the look still sees it. */
static int tier_mark(struct tier_shared *sh, const struct stat *cold_st, char *err, size_t errlen)
{
    struct stat st;
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET,
                       .l_start = TIER_LOCK_COLD_READER, .l_len = 1};
    int fd = xd_open_regular(sh->cold_path, O_RDONLY | O_NOFOLLOW);
    int rc = fd < 0 ? fd : fstat(fd, &st) ? -errno : 0;
    if (!rc && (st.st_dev != cold_st->st_dev || st.st_ino != cold_st->st_ino))
        rc = -ESTALE; /* another file at the name since the open looked */
    if (!rc && fcntl(fd, F_OFD_SETLK, &fl))
        rc = -errno;
    if (rc) {
        if (fd >= 0)
            close(fd);
        xd_errf(err, errlen, "%s: cannot lock the file for a read-only open without its extent map: %s",
                sh->cold_path, xd_refusal(rc));
        return rc;
    }
    sh->cold_mark = fd;
    return 0;
}

/* The map, read-only, in its checked directory and never through a link:
 * its descriptor, -ENOENT when there is none, or -errno with err set. Only
 * a single-link regular file of the caller's, root's or the cold file's
 * owner: a map planted by anyone else could call dirty copies clean. */
static int tier_map_open_ro(const char *map_path, const struct xd_config *cfg,
                            const struct stat *cold_st, char *err, size_t errlen)
{
    const char *base;
    struct stat st;
    int dirfd = xd_dir_open_for(map_path, map_path, cfg->allow_shared_directories, &base, err,
                                errlen);
    if (dirfd < 0)
        return dirfd;
    /* O_NONBLOCK: a FIFO planted at the name cannot hang the open */
    int fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int rc = fd < 0 ? (errno == ENXIO ? -ENXIO : -errno) : fstat(fd, &st) ? -errno : 0;
    close(dirfd);
    if (!rc && (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
                !(xd_uid_ours(st.st_uid) || st.st_uid == cold_st->st_uid)))
        rc = -EPERM;
    if (!rc)
        return fd;
    if (fd >= 0)
        close(fd);
    if (rc != -ENOENT)
        xd_errf(err, errlen, "%s: cannot read the hybrid type's extent map: %s", map_path,
                xd_refusal(rc));
    return rc;
}

/* Whether any entry of the map (whose tag is loaded) says hot. */
static int tier_map_any_hot(const struct xd_extmap *m, bool *any)
{
    struct stat st;
    bool hot[TIER_SCAN];
    if (fstat(m->fd, &st))
        return -errno;
    uint64_t size = (uint64_t)st.st_size, n = 0;
    if (size > XD_EXTMAP_HEADER)
        n = (size - XD_EXTMAP_HEADER + XD_EXTMAP_ENTRY - 1) / XD_EXTMAP_ENTRY;
    for (uint64_t i = 0; i < n && !*any; i += TIER_SCAN) {
        uint64_t k = n - i < TIER_SCAN ? n - i : TIER_SCAN;
        int rc = xd_extmap_read(m, i, k, hot);
        if (rc)
            return rc;
        for (uint64_t j = 0; j < k; j++)
            *any |= hot[j];
    }
    return 0;
}

/* Whether a hot copy may hold writes the cold file lacks. A header that
 * does not check out: no copy is valid, as for a writable open. A stamp
 * of a clean close, or of an open whose writes all went through: the file
 * holds every byte. A dirty close: it does not. No stamp, or an open (a
 * write-back process, maybe killed): any hot entry may be newer. The map's
 * extent size and file are not compared: a dirty map of another extent
 * size is still the hot tier's only copy of those writes, and refusing is
 * safe where reading the file might not be. */
static int tier_map_newer(int fd, bool *newer)
{
    struct xd_extmap m = {.fd = fd};
    struct xd_extmap_stamp s;
    *newer = false;
    if (xd_extmap_load_tag(&m))
        return 0;
    if (!xd_extmap_load_stamp(&m, &s)) {
        *newer = s.state == XD_EXTMAP_DIRTY;
        return 0;
    }
    return tier_map_any_hot(&m, newer);
}

/* The map's verdict, with no attach or last close half done: the setup
 * byte read-locked (a read-only descriptor may) waits them out, and is held
 * until the map is closed. A process attached (the attached byte held) may
 * have writes in the hot tier alone, or move extents: refused. */
static int tier_map_judge(struct tier_shared *sh, int fd, const char *why, int map_rc,
                          char *err, size_t errlen)
{
    struct xd_extmap m = {.fd = fd};
    bool newer = false;
    int rc = xd_extmap_lock(&m, TIER_LOCK_SETUP, F_RDLCK, true);
    if (!rc && tier_byte_held(fd, TIER_LOCK_ATTACHED)) {
        xd_errf(err, errlen, "%s: opened read-only, and its extent map cannot be written here (%s), while another process has the file open where it can, whose writes may be in the hot tier alone: refused; allowed: reading it once that process has closed it",
                sh->cold_path, why);
        return -EBUSY;
    }
    if (!rc)
        rc = tier_map_newer(fd, &newer);
    if (rc) {
        xd_errf(err, errlen, "%s%s: cannot read the hybrid type's extent map: %s", sh->cold_path,
                TIER_MAP_SUFFIX, strerror(-rc));
        return rc;
    }
    if (!newer)
        return 0;
    xd_errf(err, errlen, "%s: opened read-only, and its extent map %s%s cannot be written here (%s), and says the hot tier may hold writes the file lacks (tier_write_back, not copied back): refused rather than read older data from the file; open it writable once where the map can be written, which copies them back",
            sh->cold_path, sh->cold_path, TIER_MAP_SUFFIX, why);
    return map_rc;
}

int xd_tier_cold_only(struct tier_shared *sh, const struct xd_config *cfg, const char *map_path,
                      const struct stat *cold_st, int map_rc, char *err, size_t errlen)
{
    char why[128];
    snprintf(why, sizeof(why), "%s", strerror(-map_rc));
    err[0] = 0;
    int rc = tier_mark(sh, cold_st, err, errlen);
    int fd = rc ? rc : tier_map_open_ro(map_path, cfg, cold_st, err, errlen);
    if (fd >= 0) {
        rc = tier_map_judge(sh, fd, why, map_rc, err, errlen);
        close(fd); /* drops the setup byte's lock */
    } else if (fd != -ENOENT) { /* no map: nothing was ever hot */
        rc = fd;
    }
    if (rc) {
        if (sh->cold_mark >= 0)
            close(sh->cold_mark);
        sh->cold_mark = -1;
        return rc;
    }
    err[0] = 0;
    sh->cold_only = true;
    snprintf(sh->notice, sizeof(sh->notice), "%s: opened read-only, and its extent map cannot be written here (%s): the hot tier is not used for this open; every read goes to the file, which holds every byte",
             sh->cold_path, why);
    return 0;
}

int xd_tier_cold_only_state(struct tier_shared *sh, uint64_t size)
{
    /* private, zeroed (a zeroed mutex is an unlocked one): no extent, so
     * every request routes cold (tier_route) and no pass has work */
    sh->shm_len = sizeof(struct tier_shm) + sizeof(struct tier_ext);
    sh->shm = calloc(1, sh->shm_len);
    if (!sh->shm)
        return -ENOMEM;
    sh->ext = sh->shm->ext;
    sh->nextents = 0;
    sh->shm->extent_size = sh->extent_size;
    atomic_store(&sh->shm->size, size);
    return 0;
}

void xd_tier_cold_only_end(struct tier_shared *sh)
{
    free(sh->shm);
    sh->shm = NULL;
    sh->ext = NULL;
    if (sh->cold_mark >= 0) /* after: writable opens may build a state now */
        close(sh->cold_mark);
    sh->cold_mark = -1;
}

int xd_tier_cold_readers(struct tier_shared *sh, char *err, size_t errlen)
{
    /* a file the caller may not read: it cannot look, and a reader of the
     * same user could not have opened it either */
    int fd = xd_open_regular(sh->cold_path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    bool held = tier_byte_held(fd, TIER_LOCK_COLD_READER);
    close(fd);
    if (!held)
        return 0;
    xd_errf(err, errlen, "%s: open in another process read-only where its extent map cannot be written (a read-only mount or directory), reading every extent from the file, which a write here could make older than the hot tier: refused; allowed: opening it once that process has closed it",
            sh->cold_path);
    return -EBUSY;
}
