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

#include "tier.h"


/* The hot tier's tag: 8 bytes in a file beside the hot copy. A tmpfs wiped
 * by a reboot loses it, which invalidates every map entry written for it. */
static int tier_read_tag(struct tier_shared *sh, struct xd_file *tagf, uint64_t *tag)
{
    ssize_t n = xd_read(sh->mdev[TIER_H], tagf, tag, sizeof(*tag), 0);
    return n == (ssize_t)sizeof(*tag) && *tag ? 0 : -ENOENT;
}

static uint64_t tier_cold_id(const char *path)
{
    struct stat st;
    if (stat(path, &st))
        return 0;
    return (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << 40);
}

/* Load the map's hot entries, or start a new map and a new tag when the map
 * or the hot tier is not the one it describes. */
int xd_tier_load_map(struct tier_shared *sh, char *err, size_t errlen)
{
    struct xd_file *tagf;
    char *tagname = NULL;
    uint64_t tag = 0, maptag = 0, id = tier_cold_id(sh->cold_path);
    if (asprintf(&tagname, "%s%s", sh->cold_path, TIER_TAG_SUFFIX) < 0)
        return -ENOMEM;
    int rc = xd_file_open(sh->mdev[TIER_H], tagname, XD_OPEN_CREATE, 0, &tagf, err, errlen);
    free(tagname);
    if (rc)
        return rc;
    bool valid = !tier_read_tag(sh, tagf, &tag) &&
                 !xd_extmap_load_header(&sh->map, sh->extent_size, id, &maptag) && tag == maptag;
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
    if (!valid)
        return 0;
    bool *hot = calloc(sh->nextents ? sh->nextents : 1, sizeof(bool));
    if (!hot)
        return -ENOMEM;
    rc = xd_extmap_read(&sh->map, 0, sh->nextents, hot);
    uint64_t now = xd_clock_monotonic_ns();
    for (uint64_t e = 0; !rc && e < sh->nextents; e++) {
        if (!hot[e])
            continue;
        sh->ext[e].hot = 1;
        /* unknown after a restart: assume so, write-through too. A process
         * killed between a write's hot half (done inline) and its cold
         * half (queued) left the hot copy newer than the cold file; a
         * reader then saw the new bytes, and a demotion without a copy
         * back turned them into the old ones again (kill9_fsync,
         * hybrid-wt-compressed: a version read after one kill was gone
         * after the next). */
        sh->ext[e].dirty = 1;
        /* idle from now, not since boot: a restart alone demotes nothing */
        sh->ext[e].last_ns = sh->ext[e].win_ns = now;
        sh->shm->hot_count++;
    }
    free(hot);
    return rc;
}
