/* tier_shm.c - the tier state across processes: the POSIX shared memory
 * object holding a hybrid file's extents, stripe locks and figures, built
 * by the first process to attach and removed by the last, and the checks
 * that a later process only joins an object its own user made for this
 * layout (docs/HYBRID-PROCESSES.md). Separate because attaching and
 * leaving follow their own protocol (OFD locks on bytes of the map file),
 * apart from what the state is used for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "tier.h"

#define TIER_SHM_PREFIX "xdevice-tier-"
#define TIER_SHM_HOLD 0       /* the object's byte its processes hold (xd_shm_hold) */
#define TIER_ATTACH_TRIES 4   /* attaches that found the state swept under them */

#define TIER_SHM_MAGIC (0x7864746965720000ull ^ (sizeof(struct tier_shm) << 8) ^ \
                        sizeof(struct tier_ext) ^ sizeof(pthread_mutex_t) << 24)

/* Named after the cold file's device and inode: every process opening the
 * file by any path finds the same object. pin (when not NULL) holds the
 * inode the name was taken from until it is closed (tier_shared.name_pin). */
static int tier_shm_name(const char *cold_path, char *name, size_t len, int *pin)
{
    struct stat st;
    int fd = open(cold_path, O_PATH | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st)) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    snprintf(name, len, "/" TIER_SHM_PREFIX "%llx-%llx", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    if (pin)
        *pin = fd;
    else
        close(fd);
    return 0;
}

static int tier_shm_map(struct tier_shared *sh, int fd, uint64_t nextents)
{
    sh->shm_len = sizeof(struct tier_shm) + (nextents ? nextents : 1) * sizeof(struct tier_ext);
    void *p = mmap(NULL, sh->shm_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    sh->shm = p;
    sh->ext = sh->shm->ext;
    return 0;
}

/* Remove the object at name if it is this user's: one a process of ours
 * left when it died. The name is predictable (the cold file's device and
 * inode, which anyone who can stat it knows), so another user may hold an
 * object there, which is not ours to remove. /dev/shm is sticky: nobody
 * else can remove or replace an object of ours between the look and the
 * unlink. 1 when removed, 0 when there is none, -EPERM for another
 * user's (one line in err, when err is not NULL), or -errno. */
static int tier_shm_remove_own(const char *name, char *err, size_t errlen)
{
    char path[96];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm%s", name);
    if (lstat(path, &st))
        return errno == ENOENT ? 0 : -errno;
    if (st.st_uid != geteuid()) {
        if (err)
            xd_errf(err, errlen, "%s: belongs to uid %u, not to uid %u; xdevice removes only a stale hybrid shared state of the caller's there; allowed: no object at that name (its owner or root may remove it)",
                    path, (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    return shm_unlink(name) ? (errno == ENOENT ? 0 : -errno) : 1;
}

/* The first process to attach: a fresh object (whatever a process that
 * died left there is never trusted), its locks, and the map's entries. */
static int tier_shm_build(struct tier_shared *sh, const char *name, uint64_t size, char *err,
                          size_t errlen)
{
    /* Nobody is attached (the caller holds the setup lock), so whatever is
     * at the name was left by a process that died or planted by someone
     * else: ours is removed, another user's refused, and a new object is
     * made, never one reused. */
    struct stat st;
    int rc = tier_shm_remove_own(name, err, errlen);
    if (rc < 0)
        return rc;
    /* made (O_EXCL: the name is free now) and held; a sweep between the two
     * makes it again */
    int fd = xd_shm_open_held(name, 0, TIER_SHM_HOLD, &st);
    if (fd < 0) {
        xd_errf(err, errlen, "/dev/shm%s: cannot make the hybrid file's shared state: %s; allowed: a name no other user holds",
                name, strerror(-fd));
        return fd;
    }
    sh->shm_fd = fd;
    sh->nextents = (size + sh->extent_size - 1) >> sh->shift;
    size_t len = sizeof(struct tier_shm) + (sh->nextents ? sh->nextents : 1) * sizeof(struct tier_ext);
    rc = ftruncate(fd, 0) ? -errno : xd_fd_reserve(fd, (off_t)len);
    if (!rc)
        rc = tier_shm_map(sh, fd, sh->nextents);
    if (rc) {
        xd_errf(err, errlen, "/dev/shm%s: cannot make the hybrid file's shared state of %zu bytes: %s",
                name, len, strerror(-rc));
        return rc;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    for (int i = 0; i < TIER_STRIPES; i++)
        pthread_mutex_init(&sh->shm->stripe[i], &ma);
    pthread_mutexattr_destroy(&ma);
    sh->shm->extent_size = sh->extent_size;
    sh->shm->nextents = sh->nextents;
    atomic_store(&sh->shm->size, size);
    rc = xd_tier_load_map(sh, err, errlen);
    sh->shm->map_tag = sh->map.tag;
    if (!rc)
        sh->shm->magic = TIER_SHM_MAGIC; /* last: attachers check it */
    return rc;
}

/* A later process: the object as the first one built it, held. -ENOENT
 * when it is gone (its processes were killed, and a sweep removed it):
 * attach again. */
static int tier_shm_join(struct tier_shared *sh, const char *name, char *err, size_t errlen)
{
    struct stat st;
    int fd = shm_open(name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) ? -errno : 0;
    /* only an object this user made (tier_shm_build), private to it: known
     * before the hold waits on it (another user's could be locked for ever) */
    if (!rc && (st.st_uid != geteuid() || (st.st_mode & 077))) {
        xd_errf(err, errlen, "/dev/shm%s: owned by uid %u with mode %03o; allowed: the hybrid file's shared state made by this user, mode 0600",
                name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        rc = -EPERM;
    }
    if (!rc)
        rc = xd_shm_hold(fd, TIER_SHM_HOLD, &st);
    struct tier_shm head;
    if (!rc && pread(fd, &head, sizeof(head), 0) != (ssize_t)sizeof(head))
        rc = -EIO;
    if (!rc && (head.magic != TIER_SHM_MAGIC ||
                (uint64_t)st.st_size < sizeof(head) + head.nextents * sizeof(struct tier_ext)))
        rc = -EPROTO;
    if (!rc && head.extent_size != sh->extent_size) {
        xd_errf(err, errlen, "%s: tier_extent_size=%llu differs from the %llu another process opened the file with; allowed: the same value in every job sharing a hybrid file",
                sh->cold_path, (unsigned long long)sh->extent_size,
                (unsigned long long)head.extent_size);
        rc = -EINVAL;
    }
    if (!rc)
        rc = tier_shm_map(sh, fd, head.nextents);
    if (rc) {
        close(fd);
    } else {
        sh->shm_fd = fd;
        sh->nextents = head.nextents;
        sh->map.tag = head.map_tag;
        sh->map.extent_size = head.extent_size;
    }
    return rc;
}

/* Under the setup lock: build the state when nobody is attached, else join it. */
static int tier_attach_once(struct tier_shared *sh, uint64_t size, char *err, size_t errlen)
{
    int rc = xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_WRLCK, true);
    if (rc)
        return rc;
    if (!xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_WRLCK, false)) {
        /* nobody attached; a reader without the map may have it open, and
         * joiners come only after a build: one look here keeps them all out */
        rc = xd_tier_cold_readers(sh, err, errlen);
        if (!rc)
            rc = tier_shm_build(sh, sh->shm_name, size, err, errlen);
        if (!rc) /* a downgrade: never unlocked in between */
            rc = xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_RDLCK, false);
    } else {
        rc = xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_RDLCK, true);
        if (!rc)
            rc = tier_shm_join(sh, sh->shm_name, err, errlen);
        if (rc == -ENOENT) /* attached ones were killed, their state swept: look again */
            xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_UNLCK, false);
    }
    xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_UNLCK, false);
    return rc;
}

/* Attach to the file's shared state, building it if no other process has
 * the file open (no F_RDLCK on the attached byte): under the setup lock,
 * so two first openers never both build it, and a last closer never
 * removes it under a new one. */
int xd_tier_attach(struct tier_shared *sh, uint64_t size, char *err, size_t errlen)
{
    int rc = tier_shm_name(sh->cold_path, sh->shm_name, sizeof(sh->shm_name), &sh->name_pin);
    unsigned tries = 0;
    while (!rc && (rc = tier_attach_once(sh, size, err, errlen)) == -ENOENT &&
           ++tries < TIER_ATTACH_TRIES)
        rc = 0;
    if (rc && !err[0])
        xd_errf(err, errlen, "%s%s: cannot share the hybrid file's state between processes: %s",
                sh->cold_path, TIER_MAP_SUFFIX, strerror(-rc));
    return rc;
}

/* The header of the state at name, mapped, when it is one this user made
 * (tier_shm_build) and built: NULL otherwise. */
static struct tier_shm *tier_shm_map_head(const char *name)
{
    struct stat st;
    int fd = shm_open(name, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    void *p = MAP_FAILED;
    if (!fstat(fd, &st) && st.st_uid == geteuid() && !(st.st_mode & 077) &&
        (uint64_t)st.st_size >= sizeof(struct tier_shm))
        p = mmap(NULL, sizeof(struct tier_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the object */
    if (p == MAP_FAILED)
        return NULL;
    if (((struct tier_shm *)p)->magic == TIER_SHM_MAGIC)
        return p;
    munmap(p, sizeof(struct tier_shm));
    return NULL;
}

struct tier_shm *xd_tier_shm_head(const char *cold_path)
{
    char name[64];
    return tier_shm_name(cold_path, name, sizeof(name), NULL) ? NULL : tier_shm_map_head(name);
}

void xd_tier_shm_head_put(struct tier_shm *head)
{
    if (head)
        munmap(head, sizeof(*head));
}

void xd_tier_sweep_states(void)
{
    xd_shm_sweep(TIER_SHM_PREFIX, TIER_SHM_HOLD);
}

int xd_tier_forget_state(const char *cold_path)
{
    char name[64], *map_path = NULL;
    if (asprintf(&map_path, "%s" TIER_MAP_SUFFIX, cold_path) < 0)
        return -ENOMEM;
    int fd = xd_open_regular(map_path, O_RDWR | O_NOFOLLOW), rc = 0;
    free(map_path);
    if (fd < 0)
        return fd == -ENOENT ? 0 : fd;
    /* as xd_tier_attach: under the setup lock, nobody attached */
    struct xd_extmap m = {.fd = fd};
    if (!xd_extmap_lock(&m, TIER_LOCK_SETUP, F_WRLCK, true) &&
        !xd_extmap_lock(&m, TIER_LOCK_ATTACHED, F_WRLCK, false) &&
        !tier_shm_name(cold_path, name, sizeof(name), NULL))
        rc = tier_shm_remove_own(name, NULL, 0);
    close(fd); /* drops the locks */
    return rc;
}

/* The last process to close removes the shared object, by the name it
 * was attached under: the cold file may be gone from its directory by now
 * (fio's unlink=1), but its inode, pinned, cannot yet be another file's. */
void xd_tier_detach(struct tier_shared *sh)
{
    if (sh->map.fd < 0)
        return;
    if (!xd_extmap_lock(&sh->map, TIER_LOCK_SETUP, F_WRLCK, true)) {
        /* only ours: an attach refused for another user's object there
         * ends here too */
        if (!xd_extmap_lock(&sh->map, TIER_LOCK_ATTACHED, F_WRLCK, false) && sh->shm_name[0]) {
            /* the last: the map records the cold file as it leaves it,
             * while the state still says which hot copies are dirty */
            if (sh->shm && sh->name_pin >= 0)
                xd_tier_stamp_closed(sh);
            tier_shm_remove_own(sh->shm_name, NULL, 0);
        }
    }
    if (sh->name_pin >= 0) /* the name is not used again: the inode may go */
        close(sh->name_pin);
    sh->name_pin = -1;
    if (sh->shm_fd >= 0) /* after the removal: held until then */
        close(sh->shm_fd);
    sh->shm_fd = -1;
    if (sh->shm)
        munmap(sh->shm, sh->shm_len);
    sh->shm = NULL;
    sh->ext = NULL;
    /* closing the map (the caller) drops every lock, the setup one last */
}
