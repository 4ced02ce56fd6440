/* tier_map.c - the extent map's persistence across opens: the hot tier's
 * tag, whether the map on disk still describes this cold file and this hot
 * tier, and loading its hot entries into the state the first process
 * builds. Separate because it is the one place that decides whether a map
 * written by an earlier run can be trusted (docs/EXTENTMAP.md); writing
 * entries is the mover's (tier_migrate.c), sharing the state tier_shm.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tier.h"


/* The hot tier's tag: 8 bytes in a file beside the hot copy. A tmpfs wiped
 * by a reboot loses it, which invalidates every map entry written for it. */
static int tier_read_tag(struct tier_shared *sh, struct xd_file *tagf, uint64_t *tag)
{
    ssize_t n = xd_read(sh->mdev[TIER_H], tagf, tag, sizeof(*tag), 0);
    return n == (ssize_t)sizeof(*tag) && *tag ? 0 : -ENOENT;
}

#define TIER_ID_DEV_SHIFT 40 /* the cold id: the inode, the device number above it */

static uint64_t tier_cold_id(const char *path)
{
    struct stat st;
    if (stat(path, &st))
        return 0;
    return (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << TIER_ID_DEV_SHIFT);
}

/* Is the map's header this cold file's (*maptag then set)? Its cold id is
 * the file's; or it differs in the device number alone, and the map's
 * stamp, from a close, is the file as it is now but for that number: the
 * file system came back under another one (a loop image attached to
 * another /dev/loopN, disks enumerated in another order), keeping inode,
 * size and times (a ctime no program can set). The header then takes the
 * new id. Before, such a map counted as another file's: every hot copy
 * was dropped without a word, dirty ones (writes the file lacks) too. */
static bool tier_map_is_ours(struct tier_shared *sh, uint64_t id, uint64_t *maptag)
{
    uint64_t was, low = ((uint64_t)1 << TIER_ID_DEV_SHIFT) - 1;
    struct xd_extmap_stamp saved;
    const struct xd_extmap_stamp *now = &sh->shm->found;
    if (!xd_extmap_load_header(&sh->map, sh->extent_size, id, maptag))
        return true;
    bool moved = !xd_extmap_load_header_of_any(&sh->map, sh->extent_size, &was, maptag) &&
                 was != id && !((was ^ id) & low) && !xd_extmap_load_stamp(&sh->map, &saved) &&
                 saved.state != XD_EXTMAP_OPEN_THROUGH && saved.dev != now->dev &&
                 xd_tier_stamp_same(&saved, now);
    return moved && !xd_extmap_set_cold_id(&sh->map, id);
}

/* Whether the hot copy holds anything of extent e. An entry that checks out
 * can still be stale: a map page the disk did not write, or a map from an
 * earlier run put back, names an extent hot whose copy a demotion has since
 * punched. Taken as hot, the extent read as the hole's zeros, and, taken as
 * dirty after the restart, its demotion copied them over the cold file, the
 * only copy of its data. A promotion writes every byte of its copy, so one
 * with no data in the extent is no copy: cold. Where the hot tier cannot
 * tell (no SEEK_DATA), the entry is trusted as before. */
static bool tier_hot_copy_held(struct tier_shared *sh, uint64_t e)
{
    struct xd_layer *l = sh->mdev[TIER_H]->top;
    XD_FIND(l, seek);
    if (!l)
        return true;
    uint64_t start = e << sh->shift, end = (e + 1) << sh->shift;
    int64_t data = l->ops->seek(l, sh->mfile[TIER_H], SEEK_DATA, start);
    if (data == -ENXIO)
        return false;
    return data < 0 || (uint64_t)data < end;
}

/* What the map's hot copies are worth, by the cold file's stamp. */
enum tier_verdict {
    TIER_KEEP_DIRTY, /* keep them, each possibly newer than the file */
    TIER_KEEP_CLEAN, /* keep them: they equal the file's bytes */
    TIER_DROP,       /* the file changed since they were made */
};

/* How the file changed, for the lines below. */
static void tier_changed(const struct xd_extmap_stamp *was, const struct xd_extmap_stamp *now,
                         char *out, size_t len)
{
    if (was->size != now->size)
        snprintf(out, len, "size %llu, was %llu", (unsigned long long)now->size,
                 (unsigned long long)was->size);
    else if (was->mtime_ns != now->mtime_ns)
        snprintf(out, len, "written: its mtime moved");
    else
        snprintf(out, len, "its ctime moved: a write that kept its mtime, or a chmod or chown");
}

/* How many extents the map has hot (0 on a read error: nothing to say). */
static uint64_t tier_map_hot(struct tier_shared *sh)
{
    uint64_t n = 0;
    bool *hot = calloc(sh->nextents ? sh->nextents : 1, sizeof(bool));
    if (hot && !xd_extmap_read(&sh->map, 0, sh->nextents, hot))
        for (uint64_t e = 0; e < sh->nextents; e++)
            n += hot[e];
    free(hot);
    return n;
}

/* A process died with the file open, and every write it or any other
 * acknowledged is in the file (OPEN_THROUGH): the copies are dropped, with
 * a notice. Kept, they were taken as dirty: a file another program wrote
 * meanwhile (nothing can tell, the stamp holds no times of a close) got
 * its bytes served from the older copies and then overwritten by them. */
static int tier_killed_through(struct tier_shared *sh)
{
    uint64_t hot = tier_map_hot(sh);
    if (hot)
        snprintf(sh->notice, sizeof(sh->notice), "%s: not closed by the last process that had it open (killed?), whose writes all went through to the file: the hot tier's copies of %llu extent%s are dropped, as another program may have written the file since; they are read from the file, which holds every acknowledged write",
                 sh->cold_path, (unsigned long long)hot, hot == 1 ? "" : "s");
    return TIER_DROP;
}

/* The stamp the last process to close left against the file now (and as
 * it was before this process's open touched it: a job's own open may grow
 * it). No stamp (a process that may have written back died with the file
 * open, or a map from before stamps): every hot copy is kept as possibly
 * newer, as after a crash; one that wrote through drops them. A changed
 * file drops clean copies, with a notice; one whose hot tier holds writes
 * it lacks is refused: either side's writes would be lost, and which to
 * keep is the user's call. */
static int tier_stamp_verdict(struct tier_shared *sh, char *err, size_t errlen)
{
    struct xd_extmap_stamp saved;
    const struct xd_extmap_stamp *now = &sh->shm->found;
    char how[96];
    if (xd_extmap_load_stamp(&sh->map, &saved))
        return TIER_KEEP_DIRTY;
    if (saved.state == XD_EXTMAP_OPEN_THROUGH)
        return tier_killed_through(sh);
    if (xd_tier_stamp_same(&saved, &sh->before) || xd_tier_stamp_same(&saved, now))
        return saved.state == XD_EXTMAP_DIRTY ? TIER_KEEP_DIRTY : TIER_KEEP_CLEAN;
    tier_changed(&saved, now, how, sizeof(how));
    if (saved.state == XD_EXTMAP_DIRTY) {
        xd_errf(err, errlen, "%s: changed by another program since xdevice last closed it (%s), while its hot tier holds writes the file lacks (tier_write_back, not yet copied back); refused rather than lose either's writes: to keep the file as it is now and drop those writes, remove %s%s",
                sh->cold_path, how, sh->cold_path, TIER_MAP_SUFFIX);
        return -ESTALE;
    }
    uint64_t hot = tier_map_hot(sh);
    if (hot)
        snprintf(sh->notice, sizeof(sh->notice), "%s: changed by another program since xdevice last closed it (%s): the hot tier's copies of %llu extent%s, made before, are dropped; they are read from the file",
                 sh->cold_path, how, (unsigned long long)hot, hot == 1 ? "" : "s");
    return TIER_DROP;
}

/* The map's hot entries into the state. dirty: each is taken as possibly
 * newer than the cold file (no stamp said otherwise). */
static int tier_load_entries(struct tier_shared *sh, bool dirty)
{
    bool *hot = calloc(sh->nextents ? sh->nextents : 1, sizeof(bool));
    if (!hot)
        return -ENOMEM;
    int rc = xd_extmap_read(&sh->map, 0, sh->nextents, hot);
    uint64_t now = xd_clock_monotonic_ns();
    for (uint64_t e = 0; !rc && e < sh->nextents; e++) {
        if (!hot[e] || !tier_hot_copy_held(sh, e))
            continue;
        sh->ext[e].hot = 1;
        /* unknown after a restart without a clean close whose stamp
         * says a copy may be newer (a write-back writer had the file, or
         * a map of an older build): assume so, whatever this opener's
         * mode, so a demotion copies it back rather than turn a version
         * a reader saw into the older one (kill9_fsync). A kill with
         * every writer writing through never gets here: its copies were
         * dropped (tier_killed_through). */
        sh->ext[e].dirty = dirty;
        /* idle from now, not since boot: a restart alone demotes nothing */
        sh->ext[e].last_ns = sh->ext[e].win_ns = now;
        sh->shm->hot_count++;
    }
    free(hot);
    return rc;
}

/* Load the map's hot entries, or start a new map and a new tag when the map
 * or the hot tier is not the one it describes, or the cold file changed
 * since the copies were made. Then the map says the file is open. */
int xd_tier_load_map(struct tier_shared *sh, char *err, size_t errlen)
{
    struct xd_file *tagf;
    char *tagname = NULL;
    uint64_t tag = 0, maptag = 0, id = tier_cold_id(sh->cold_path);
    int rc = xd_tier_stamp_now(sh, &sh->shm->found);
    if (rc) {
        xd_errf(err, errlen, "%s: cannot stat the cold tier's file: %s", sh->cold_path,
                strerror(-rc));
        return rc;
    }
    if (asprintf(&tagname, "%s%s", sh->cold_path, TIER_TAG_SUFFIX) < 0)
        return -ENOMEM;
    rc = xd_file_open(sh->mdev[TIER_H], tagname, XD_OPEN_CREATE | XD_OPEN_NO_SOURCE, 0, &tagf,
                      err, errlen);
    free(tagname);
    if (rc)
        return rc;
    bool valid = !tier_read_tag(sh, tagf, &tag) && tier_map_is_ours(sh, id, &maptag) &&
                 tag == maptag;
    int verdict = valid ? tier_stamp_verdict(sh, err, errlen) : TIER_DROP;
    if (verdict < 0) {
        xd_file_close(sh->mdev[TIER_H], tagf);
        return verdict;
    }
    valid = verdict != TIER_DROP;
    if (!valid) {
        while (getrandom(&tag, sizeof(tag), 0) != sizeof(tag) || !tag)
            ;
        int64_t hot_size = xd_file_size(sh->mdev[TIER_H], sh->mfile[TIER_H]);
        if (hot_size > 0)
            xd_trim(sh->mdev[TIER_H], sh->mfile[TIER_H], (uint64_t)hot_size, 0);
        rc = xd_extmap_reset(&sh->map, sh->extent_size, id, tag);
        if (!rc && xd_write(sh->mdev[TIER_H], tagf, &tag, sizeof(tag), 0) != sizeof(tag))
            rc = -EIO;
    }
    xd_file_close(sh->mdev[TIER_H], tagf);
    if (rc) {
        xd_errf(err, errlen, "%s%s: cannot start the extent map: %s", sh->cold_path,
                TIER_MAP_SUFFIX, strerror(-rc));
        return rc;
    }
    if (valid)
        rc = tier_load_entries(sh, verdict == TIER_KEEP_DIRTY);
    /* a copy kept dirty stays newer than the file until flushed: a kill
     * before then must keep it, whatever mode the next writer has */
    bool dirty_loaded = valid && verdict == TIER_KEEP_DIRTY && sh->shm->hot_count;
    return rc ? rc : xd_tier_stamp_opened(sh, dirty_loaded);
}
