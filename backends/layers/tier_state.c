/* tier_state.c - a hybrid file's tier state in a process: the registry
 * that gives every device (fio job) of the process one state per file,
 * and the state's life: its settings, the migration's own devices, the
 * map file, attaching to what other processes share (tier_shm.c), the
 * thread, and the live settings a reload brings. Separate because it
 * owns what a state holds and when it is freed, not what it is used for.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tier.h"

static pthread_mutex_t tier_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tier_shared *tier_registry;
static pthread_rwlock_t tier_names_lock = PTHREAD_RWLOCK_INITIALIZER;

/* A child after fork() forgets its parent's states (their migration
 * threads are not here, their locks are the parent's): a hybrid file it
 * opens gets a state of its own, beside the parent's as another
 * process's. The locks are made anew: a parent's thread may have held
 * them. */
static void tier_forget_parent(void)
{
    tier_registry = NULL;
    pthread_mutex_init(&tier_registry_lock, NULL);
    pthread_rwlock_init(&tier_names_lock, NULL);
}

__attribute__((constructor)) static void tier_watch_forks(void)
{
    pthread_atfork(NULL, NULL, tier_forget_parent);
}

void xd_tier_names_lock(bool removing)
{
    if (removing)
        pthread_rwlock_wrlock(&tier_names_lock);
    else
        pthread_rwlock_rdlock(&tier_names_lock);
}

void xd_tier_names_unlock(void) { pthread_rwlock_unlock(&tier_names_lock); }

/* The migration's own devices. A read-only open's cold file is opened
 * read-only and as it is: made or grown (with the caller's size), a read
 * job wrote the file it was told to leave alone, and one the user may only
 * read could not be opened at all. */
static int tier_open_devs(struct tier_shared *sh, const struct xd_config *cfg, uint64_t size,
                          bool read_only, char *err, size_t errlen)
{
    sh->cold_read_only = read_only;
    /* a cold-only state never moves an extent: no hot copy is made */
    for (int t = 0; t < (sh->cold_only ? 1 : 2); t++) {
        struct xd_config *c = xd_tier_inner_config(cfg, t, true, err, errlen);
        if (!c)
            return -EINVAL;
        int rc = xd_open(&sh->mdev[t], c, 1, err, errlen);
        xd_config_free(c);
        if (rc)
            return rc;
        bool ro = t == TIER_C && read_only;
        /* the hot copy is named after the cold file, never loaded from it */
        unsigned flags = ro ? XD_OPEN_READONLY
                            : XD_OPEN_CREATE | (t == TIER_H ? XD_OPEN_NO_SOURCE : 0);
        rc = xd_file_open(sh->mdev[t], sh->cold_path, flags, t == TIER_C && !ro ? size : 0,
                          &sh->mfile[t], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

/* A writable open of a file whose state a read-only one made: the
 * migration's cold file is reopened for writing, so dirty hot extents can
 * be demoted again. Under mig_lock: a pass owns the file. */
static int tier_cold_writable(struct tier_shared *sh, char *err, size_t errlen)
{
    struct xd_file *f;
    int rc = 0;
    pthread_mutex_lock(&sh->mig_lock);
    if (sh->cold_read_only &&
        !(rc = xd_file_open(sh->mdev[TIER_C], sh->cold_path, 0, 0, &f, err, errlen))) {
        xd_file_close(sh->mdev[TIER_C], sh->mfile[TIER_C]);
        sh->mfile[TIER_C] = f;
        sh->cold_read_only = false;
    }
    pthread_mutex_unlock(&sh->mig_lock);
    return rc;
}

static void tier_settings(struct tier_shared *sh, const struct xd_config *cfg)
{
    sh->extent_size = (uint64_t)cfg->tier_extent_size;
    sh->shift = (unsigned)__builtin_ctzll(sh->extent_size);
    sh->capacity = (uint64_t)cfg->hot_cache_size >> sh->shift;
    sh->threshold = (unsigned)cfg->hot_access_threshold;
    sh->timeout_ns = (uint64_t)(cfg->cold_timeout_sec * 1e9);
    sh->interval_ns = (uint64_t)(cfg->migration_interval_sec * 1e9);
    sh->every_requests = (uint64_t)cfg->migration_interval_requests;
    sh->batch = (unsigned)cfg->migration_batch_size;
    sh->write_back = cfg->tier_write_back;
    sh->auto_migration = cfg->auto_migration;
    sh->map.fd = -1;
    sh->name_pin = -1;
    sh->shm_fd = -1;
    sh->cold_mark = -1;
    pthread_mutex_init(&sh->mig_lock, NULL);
    pthread_mutex_init(&sh->wake_lock, NULL);
}

int xd_tier_apply_live(struct tier_shared *sh, const struct xd_config *cfg)
{
    unsigned batch = (unsigned)cfg->migration_batch_size;
    pthread_mutex_lock(&sh->mig_lock);
    if (batch != sh->batch) {
        uint64_t *cand = calloc(batch, sizeof(uint64_t)), *victim = calloc(batch, sizeof(uint64_t));
        if (!cand || !victim) {
            free(cand);
            free(victim);
            pthread_mutex_unlock(&sh->mig_lock);
            return -ENOMEM;
        }
        free(sh->cand);
        free(sh->victim);
        sh->cand = cand;
        sh->victim = victim;
        sh->batch = batch;
    }
    sh->capacity = (uint64_t)cfg->hot_cache_size >> sh->shift;
    sh->threshold = (unsigned)cfg->hot_access_threshold;
    sh->timeout_ns = (uint64_t)(cfg->cold_timeout_sec * 1e9);
    sh->interval_ns = (uint64_t)(cfg->migration_interval_sec * 1e9);
    sh->every_requests = (uint64_t)cfg->migration_interval_requests;
    for (int k = 0; k < 2; k++) { /* the migration's own devices copy with the new values */
        char err[XD_ERRLEN];
        struct xd_config *c = xd_tier_inner_config(cfg, k, true, err, sizeof(err));
        if (c && sh->mdev[k])
            xd_reload(sh->mdev[k], c, err, sizeof(err));
        xd_config_free(c);
    }
    pthread_mutex_unlock(&sh->mig_lock);
    pthread_mutex_lock(&sh->wake_lock); /* a shorter interval starts now */
    pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&sh->wake_lock);
    return 0;
}

static void tier_shared_free(struct tier_shared *sh)
{
    xd_tier_stop_thread(sh);
    for (int t = 0; t < 2; t++) {
        if (sh->mdev[t]) {
            if (t == TIER_C && sh->mfile[t] && !sh->cold_read_only)
                xd_flush(sh->mdev[t], sh->mfile[t], 1);
            xd_file_close(sh->mdev[t], sh->mfile[t]);
            xd_close(sh->mdev[t]);
        }
    }
    if (sh->map.fd >= 0)
        xd_extmap_sync(&sh->map);
    if (sh->cold_only)
        xd_tier_cold_only_end(sh);
    else
        xd_tier_detach(sh);
    xd_extmap_close(&sh->map);
    free(sh->buf);
    free(sh->cand);
    free(sh->victim);
    free(sh->cold_path);
    free(sh);
}

/* The map is named after the cold file: a name the directory holds may be
 * one it cannot hold with the map's suffix. */
static int tier_map_name_fits(const char *cold_path, char *err, size_t errlen)
{
    const char *slash = strrchr(cold_path, '/');
    size_t len = strlen(slash ? slash + 1 : cold_path), most = NAME_MAX - strlen(TIER_MAP_SUFFIX);
    if (len <= most)
        return 0;
    xd_errf(err, errlen, "%s: a file name of %zu bytes; allowed: at most %zu with the hybrid type, whose extent map beside the file is named after it plus \"" TIER_MAP_SUFFIX "\"",
            cold_path, len, most);
    return -ENAMETOOLONG;
}

static int tier_shared_new(const struct xd_config *cfg, const char *cold_path,
                           const struct stat *cold_st, const struct stat *before, bool read_only,
                           uint64_t size, struct tier_shared **out, char *err, size_t errlen)
{
    struct tier_shared *sh = calloc(1, sizeof(*sh));
    char *map_path = NULL;
    if (!sh || !(sh->cold_path = strdup(cold_path))) {
        free(sh);
        return -ENOMEM;
    }
    tier_settings(sh, cfg);
    if (before)
        xd_tier_stamp_of(before, &sh->before);
    static _Atomic uint64_t serials;
    sh->serial = atomic_fetch_add(&serials, 1) + 1;
    int rc = -ENOMEM;
    sh->cand = calloc(sh->batch, sizeof(uint64_t));
    sh->victim = calloc(sh->batch, sizeof(uint64_t));
    if (!sh->cand || !sh->victim || posix_memalign(&sh->buf, 4096, sh->extent_size) ||
        asprintf(&map_path, "%s%s", cold_path, TIER_MAP_SUFFIX) < 0)
        goto fail;
    /* The map before the hot copy: a map that cannot be made (a name too
     * long for ".xdmap", a link planted there) must leave nothing in
     * hot_directory, whose copies live in RAM until removed. */
    rc = tier_map_name_fits(cold_path, err, errlen);
    if (!rc)
        rc = xd_extmap_open(&sh->map, map_path, cfg, err, errlen);
    /* a job that only reads, where the map cannot be written (a read-only
     * mount or directory): psync reads the file, so it is read from the
     * cold file alone, unless the map says that would return older data */
    if (read_only && xd_tier_map_unwritable(rc))
        rc = xd_tier_cold_only(sh, cfg, map_path, cold_st, rc, err, errlen);
    free(map_path);
    if (!rc)
        rc = tier_open_devs(sh, cfg, size, read_only, err, errlen);
    if (rc)
        goto fail;
    /* the file's size, or the caller's where its open made it so; a
     * read-only open's is the file's: past its end, reads end, as psync's */
    int64_t have = xd_file_size(sh->mdev[TIER_C], sh->mfile[TIER_C]);
    if (have >= 0 && ((uint64_t)have > size || read_only))
        size = (uint64_t)have;
    rc = sh->cold_only ? xd_tier_cold_only_state(sh, size)
                       : xd_tier_attach(sh, size, err, errlen);
    if (!rc && sh->auto_migration && !sh->cold_only)
        rc = xd_tier_start_thread(sh, err, errlen);
    if (rc)
        goto fail;
    *out = sh;
    return 0;
fail:
    tier_shared_free(sh);
    return rc;
}

/* The registry's state for the file, found by its path and its inode:
 * by path alone, a file removed (xd_unlink) while a device here kept it
 * open and made again under its name was given the old file's state, so
 * its reads went by the old extents to a hot copy made empty, and
 * write-back flushed its writes into the removed file. */
int xd_tier_shared_get(const struct xd_config *cfg, const char *cold_path,
                       const struct stat *cold_st, const struct stat *before, bool read_only,
                       uint64_t size, struct tier_shared **out, char *notice,
                       size_t noticelen, char *err, size_t errlen)
{
    char *abs = realpath(cold_path, NULL);
    const char *key = abs ? abs : cold_path;
    int rc = 0;
    pthread_mutex_lock(&tier_registry_lock);
    struct tier_shared *sh = tier_registry;
    while (sh && (strcmp(sh->cold_path, key) || sh->cold_dev != cold_st->st_dev ||
                  sh->cold_ino != cold_st->st_ino))
        sh = sh->next;
    if (sh && sh->extent_size != (uint64_t)cfg->tier_extent_size) {
        xd_errf(err, errlen, "%s: tier_extent_size=%lld differs from the %llu this process opened the file with; allowed: the same value in every job sharing a hybrid file",
                cold_path, (long long)cfg->tier_extent_size, (unsigned long long)sh->extent_size);
        rc = -EINVAL;
    } else if (sh && !read_only && sh->cold_only) {
        xd_errf(err, errlen, "%s: open read-only in this process where its extent map cannot be written, reading every extent from the file; a writable open needs the map: refused; allowed: opening it writable once those have closed it",
                cold_path);
        rc = -EBUSY;
    } else if (sh && !read_only && sh->cold_read_only &&
               (rc = tier_cold_writable(sh, err, errlen))) {
        sh = NULL;
    } else if (sh) {
        sh->refs++;
    } else if (!(rc = tier_shared_new(cfg, key, cold_st, before, read_only, size, &sh, err,
                                      errlen))) {
        sh->cold_dev = cold_st->st_dev;
        sh->cold_ino = cold_st->st_ino;
        sh->refs = 1;
        sh->next = tier_registry;
        tier_registry = sh;
        /* what the map's load dropped: the open that built the state says it */
        snprintf(notice, noticelen, "%s", sh->notice);
    }
    pthread_mutex_unlock(&tier_registry_lock);
    free(abs);
    if (!rc)
        *out = sh;
    return rc;
}

/* The last reference frees the state with the registry held: a job opening
 * the file meanwhile (fio reopens it for verify) must wait until the map's
 * lock is released, or it would find its own process holding it. */
void xd_tier_shared_put(struct tier_shared *sh)
{
    pthread_mutex_lock(&tier_registry_lock);
    if (--sh->refs == 0) {
        struct tier_shared **p = &tier_registry;
        while (*p != sh)
            p = &(*p)->next;
        *p = sh->next;
        tier_shared_free(sh);
    }
    pthread_mutex_unlock(&tier_registry_lock);
}
