/* tier_stamp.c - the cold file's stamp: its identity, size and times as the
 * last process to have a hybrid file open left it, kept in the extent map
 * (docs/EXTENTMAP.md), so the next open can tell that another program
 * changed the file meanwhile. The hot copies were made from the file as it
 * was: served after a rewrite by another program, they were stale data, and
 * copied back at demotion they turned the newer file into the older one.
 * Separate because taking a stamp that a later change cannot share is its
 * own concern; what the open does with it is tier_map.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "../core/settled.h"
#include "tier.h"

static uint64_t tier_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

void xd_tier_stamp_of(const struct stat *st, struct xd_extmap_stamp *s)
{
    /* ctime as well as mtime: a program can set mtime back (touch -r,
     * cp -p, rsync -t over the file), nobody can set ctime */
    *s = (struct xd_extmap_stamp){.dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino,
                                  .size = (uint64_t)st->st_size,
                                  .mtime_ns = tier_ns(&st->st_mtim),
                                  .ctime_ns = tier_ns(&st->st_ctim)};
}

int xd_tier_stamp_now(struct tier_shared *sh, struct xd_extmap_stamp *s)
{
    struct stat st;
    if (fstat(sh->name_pin, &st))
        return -errno;
    xd_tier_stamp_of(&st, s);
    return 0;
}

/* Not the device number: a file system that comes back under another one
 * (a loop image on another /dev/loopN) keeps inodes and times, and the
 * same inode, size, mtime and ctime to the nanosecond (a ctime no program
 * can set) are the same file (tier_map_is_ours). */
bool xd_tier_stamp_same(const struct xd_extmap_stamp *a, const struct xd_extmap_stamp *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
           a->ctime_ns == b->ctime_ns;
}

/* The map says the file is open, and whether a kill must keep the hot
 * copies: in write-through every acknowledged write is in the file, so
 * the copies a kill leaves are worth nothing once another program may
 * have written the file; a copy newer than the file must stay. newer_hot
 * is set once the stamp says so, never before: an open that finds it set
 * knows the kill case is covered before its first write. */
static int tier_stamp_open(struct tier_shared *sh, bool newer)
{
    struct xd_extmap_stamp open = sh->shm->found;
    open.state = newer ? XD_EXTMAP_OPEN : XD_EXTMAP_OPEN_THROUGH;
    int rc = xd_extmap_save_stamp(&sh->map, &open);
    if (!rc && newer)
        atomic_store(&sh->shm->newer_hot, 1);
    return rc;
}

int xd_tier_stamp_opened(struct tier_shared *sh, bool dirty_loaded)
{
    /* a read-only open writes nothing, whatever its mode */
    int rc = tier_stamp_open(sh, dirty_loaded || (sh->write_back && !sh->cold_read_only));
    if (!rc)
        sh->shm->stamped = 1;
    return rc;
}

/* Stamped before the open returns, so before any write of it is
 * acknowledged; no fdatasync, as every stamp (xd_extmap_save_stamp says
 * why: a power loss takes the hot tier with it). Two processes joining at
 * once write the same bytes; the first opener's OPEN_THROUGH was written
 * under the setup lock before either could attach. */
int xd_tier_stamp_writer(struct tier_shared *sh, char *err, size_t errlen)
{
    atomic_store(&sh->shm->writers, 1); /* the stamp at the last close is then the file's own */
    if (!sh->write_back || atomic_load(&sh->shm->newer_hot))
        return 0;
    int rc = tier_stamp_open(sh, true);
    if (rc)
        xd_errf(err, errlen, "%s%s: cannot record that a tier_write_back open has the file (a kill would then drop its writes): %s",
                sh->cold_path, TIER_MAP_SUFFIX, strerror(-rc));
    return rc;
}

/* The stamp is taken once the file's times are settled (xd_stat_settled):
 * a change by another program in the tick of the stamp would get the
 * stamp's very times. */
static int tier_stamp_settled(int fd, struct xd_extmap_stamp *s)
{
    struct stat st;
    int rc = xd_stat_settled(fd, NULL, &st);
    if (!rc)
        xd_tier_stamp_of(&st, s);
    return rc;
}

/* Whether a hot copy holds writes the cold file lacks: write-back extents
 * a read-only open could not flush, or a flush that failed. */
static bool tier_any_dirty(struct tier_shared *sh)
{
    bool dirty = false;
    for (uint64_t e = 0; e < sh->nextents && !dirty; e++) {
        tier_lock(sh, e);
        dirty = sh->ext[e].hot && sh->ext[e].dirty;
        tier_unlock(sh, e);
    }
    return dirty;
}

/* The file as the state leaves it: as it was found when no open could
 * write it (so a change by another program while only readers had it open
 * still shows at the next open), else as it is now. With the stamp not
 * recorded (a failed stat or write) the map keeps saying "open", which the
 * next open takes as after a crash. */
void xd_tier_stamp_closed(struct tier_shared *sh)
{
    struct xd_extmap_stamp s = sh->shm->found;
    if (!sh->shm->stamped || (atomic_load(&sh->shm->writers) && tier_stamp_settled(sh->name_pin, &s)))
        return;
    s.state = tier_any_dirty(sh) ? XD_EXTMAP_DIRTY : XD_EXTMAP_CLEAN;
    xd_extmap_save_stamp(&sh->map, &s);
}

/* Nobody has the file open: the map's stamp moves to the file as grown
 * (now) when it was the file before (was), keeping its state. */
static void tier_stamp_move(struct xd_extmap *m, const struct xd_extmap_stamp *was,
                            const struct xd_extmap_stamp *now)
{
    struct xd_extmap_stamp saved, grown = *now;
    if (!xd_extmap_load_tag(m) && !xd_extmap_load_stamp(m, &saved) &&
        saved.state != XD_EXTMAP_OPEN_THROUGH && xd_tier_stamp_same(&saved, was)) {
        grown.state = saved.state;
        xd_extmap_save_stamp(m, &grown);
    }
}

/* Processes have the file open: what their state says the first of them
 * found moves to the file as grown, when it was the file before. With only
 * read-only opens since, the last to close records that as the stamp: left
 * at the size before the growth, the next open took the engine's own
 * growth for another program's change, dropped every hot copy with a
 * notice (or refused the file when some were dirty). A change by another
 * program before the growth (found is not was) still shows. */
static void tier_found_move(const char *cold_path, const struct xd_extmap_stamp *was,
                            const struct xd_extmap_stamp *now)
{
    struct tier_shm *head = xd_tier_shm_head(cold_path);
    if (head && head->stamped && xd_tier_stamp_same(&head->found, was)) {
        struct xd_extmap_stamp grown = *now;
        grown.state = head->found.state;
        head->found = grown;
    }
    xd_tier_shm_head_put(head);
}

/* The engine grew the cold file before an open (xd_tier_prepare): a change
 * of xdevice's own, not another program's. The stamp that the next open
 * compares follows it: the map's when nobody has the file open, else the
 * shared state's record of the file as found (the last to close stamps
 * from it). Else the open took it for another program's write and dropped
 * every hot copy (or refused a file with dirty ones) because a job named a
 * larger size. A stamp a kill left open is not moved: its times are not the
 * file's as closed, and the open drops or keeps by its state alone. Under
 * the setup lock, as an attach: no open stamps, attaches or leaves
 * meanwhile. */
void xd_tier_stamp_grown(const char *cold_path, const struct stat *before)
{
    char *map_path = NULL;
    if (asprintf(&map_path, "%s" TIER_MAP_SUFFIX, cold_path) < 0)
        return;
    int fd = xd_open_regular(map_path, O_RDWR | O_NOFOLLOW);
    free(map_path);
    if (fd < 0)
        return;
    struct xd_extmap m = {.fd = fd};
    struct xd_extmap_stamp was, now;
    int cold = open(cold_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    xd_tier_stamp_of(before, &was);
    if (cold >= 0 && !xd_extmap_lock(&m, TIER_LOCK_SETUP, F_WRLCK, true) &&
        !tier_stamp_settled(cold, &now) && now.dev == was.dev && now.ino == was.ino) {
        if (!xd_extmap_lock(&m, TIER_LOCK_ATTACHED, F_WRLCK, false))
            tier_stamp_move(&m, &was, &now);
        else
            tier_found_move(cold_path, &was, &now);
    }
    if (cold >= 0)
        close(cold);
    close(fd); /* drops the locks */
}
