/* tier.h - what the files of the hybrid type share: the per-file tier
 * state, one per hybrid file per process, reference-counted and shared by
 * every device (fio job) that opens the file, and the functions one of
 * them calls in another. Never installed. The files, one concern each:
 *   tier.c          the layer: inner devices, routing, sub-requests, figures
 *   tier_type.c     from a config and a path: inner configs, the cold file
 *   tier_state.c    the state in a process: registry, life, live settings
 *   tier_shm.c      the state across processes: the shared memory object
 *   tier_map.c      the extent map across opens: tag, validity, loading
 *   tier_stamp.c    the cold file's stamp: changed behind xdevice's back?
 *   tier_readonly.c a read-only open whose map cannot be written: cold only
 *   tier_policy.c   which extents move: access windows, a pass's choices
 *   tier_migrate.c  moving them: copies, flushes, moves, passes, the thread
 */
#ifndef XD_TIER_H
#define XD_TIER_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "../core/extentmap.h"
#include "../chain.h"

enum { TIER_C = 0, TIER_H = 1 }; /* inner devices and files: cold, hot */

#define TIER_STRIPES 64

#define TIER_MAP_SUFFIX ".xdmap" /* the map beside the cold file */
#define TIER_TAG_SUFFIX ".xdtag" /* the hot tier's tag, a file of the hot device */

/* Bytes of the map file whose OFD locks the processes sharing a hybrid
 * file coordinate with (the map's data is not what they lock). */
enum {
    TIER_LOCK_ATTACHED = 0, /* F_RDLCK while a process has the file open */
    TIER_LOCK_SETUP = 1,    /* attaching, building or leaving the shared state */
    TIER_LOCK_MOVER = 2,    /* a migration pass is running */
    TIER_LOCK_OWNER = 3,    /* the process whose thread runs timed passes */
};

/* A byte of the cold file itself (far past any data), read-locked by
 * every read-only open that reads it without its map (tier_readonly.c):
 * the map may not exist for it to lock, and a process about to build the
 * shared state looks here before any of its writes can reach the hot tier
 * alone. */
#define TIER_LOCK_COLD_READER ((off_t)INT64_MAX - 1)

/* One extent. Every field is read and written under its stripe lock. The
 * extents live in memory shared by every process that has the file open
 * (struct tier_shm), so all of them route by the same state. */
struct tier_ext {
    uint8_t hot;           /* the hot tier holds a valid copy; reads go there */
    uint8_t dirty;         /* write-back: the hot copy is newer than the cold one */
    int32_t busy;          /* pid of the mover or flusher that owns the copies; 0 none */
    uint32_t hits;         /* accesses in the window that began at win_ns */
    uint32_t inflight_hot; /* requests in flight on the hot copy */
    uint32_t inflight_w;   /* writes and trims in flight, either tier */
    uint32_t wseq;         /* bumped when a write is submitted and when it completes */
    uint64_t win_ns, last_ns; /* CLOCK_MONOTONIC (one clock for every process) */
};

/* What the processes sharing a hybrid file share: a POSIX shared memory
 * object named after the cold file's device and inode (tier_shm_name),
 * built from the map by the first process to attach (tier_shm.c). */
struct tier_shm {
    uint64_t magic;            /* TIER_SHM_MAGIC: layout and version */
    uint64_t extent_size, nextents;
    uint64_t map_tag;          /* the map's (every process writes entries with it) */
    _Atomic uint64_t size;     /* logical size: the cold file's, grown by writes */
    _Atomic uint64_t hot_count; /* changed by the mover only */
    /* figures, whole-file (every device and process sharing it) */
    _Atomic uint64_t promotions, demotions, bytes_migrated, migration_ns, aborts, flushes, passes;
    /* the cold file as the first process found it (tier_map.c), and whether
     * a writable open attached since: the last to close records the stamp
     * from them (tier_stamp.c); stamped: 0 until the map was loaded */
    struct xd_extmap_stamp found;
    _Atomic uint32_t writers;
    uint32_t stamped;
    /* a hot copy may hold an acknowledged write the file lacks (a copy was
     * dirty at load, or a writable open in write-back mode attached), and
     * the map's open stamp already says so: a kill keeps every copy. Set
     * only after that stamp was written (tier_stamp.c); never cleared. */
    _Atomic uint32_t newer_hot;
    pthread_mutex_t stripe[TIER_STRIPES]; /* process-shared, robust */
    struct tier_ext ext[];
};

struct tier_shared {
    struct tier_shared *next; /* the process's registry */
    char *cold_path;
    /* the cold file it was made for: one made again at cold_path (removed
     * while a device here still has the old one open) gets its own state */
    dev_t cold_dev;
    ino_t cold_ino;
    unsigned refs;
    uint64_t serial; /* unique per state in the process: figures are kept per serial */
    /* settings, copied when the first device of the process opened the
     * file; the atomic ones are live (xd_reload: xd_tier_apply_live), batch
     * under mig_lock. A pass uses the settings of the process running it. */
    uint64_t extent_size, nextents;
    _Atomic uint64_t capacity, timeout_ns, interval_ns;
    /* migration_interval_requests: a pass after every that many requests
     * (0: none), counted over the process's devices sharing the file */
    _Atomic uint64_t every_requests, requests;
    _Atomic unsigned threshold;
    unsigned shift, batch;
    bool write_back, auto_migration;
    /* the migration's cold file is open read-only (every open in the
     * process so far was XD_OPEN_READONLY): it never writes the cold file,
     * so a dirty hot extent is not demoted; a writable open reopens it */
    bool cold_read_only;
    /* a read-only open whose map cannot be written (tier_readonly.c):
     * no map, no hot device, a private state of no extents (all cold),
     * no passes; cold_mark holds the cold file's reader lock, -1 none */
    bool cold_only;
    int cold_mark;
    /* the cold file before this process's first open of it touched it */
    struct xd_extmap_stamp before;
    /* what loading the map dropped, for the open that built the state */
    char notice[XD_ERRLEN];
    struct tier_shm *shm;
    size_t shm_len;
    /* holds the object while attached (xd_shm_hold: a shared lock on its
     * byte 0), so one whose processes were all killed is told from one in
     * use and swept by the next tier layer made (tier_open); -1: none */
    int shm_fd;
    /* the object's name, taken at attach: the cold file may be gone by
     * the last close (fio's unlink=1 removes it first) */
    char shm_name[64];
    /* the cold file's inode, held (O_PATH) from the name's stat until the
     * object is removed by that name: once the inode is freed another file
     * may get its number, and so the name, and its object would be the one
     * removed (then two processes sharing that file build two states) */
    int name_pin;
    struct tier_ext *ext; /* shm->ext */
    struct xd_extmap map;
    /* one migration pass at a time: mig_lock in the process, the map's
     * mover lock across processes; the pass owns mdev/mfile/buf */
    pthread_mutex_t mig_lock;
    struct xd_dev *mdev[2];
    struct xd_file *mfile[2];
    void *buf;
    uint64_t *cand, *victim; /* scratch of batch entries each */
    /* the background thread */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool thread_started, stop;
    bool owner; /* this process runs the timed passes (the thread's) */
};

/* tier_migrate.c: after a process died holding a stripe lock, its extents'
 * map entries are rewritten from the state (see the function). */
void xd_tier_stripe_recover(struct tier_shared *sh, unsigned stripe);

/* Lock extent e's stripe, recovering it from a process that died (kill -9)
 * holding it: every field is a value written under the lock, so only a
 * map entry can disagree with the state. */
static inline void tier_lock(struct tier_shared *sh, uint64_t e)
{
    pthread_mutex_t *m = &sh->shm->stripe[e % TIER_STRIPES];
    if (pthread_mutex_lock(m) == EOWNERDEAD) {
        xd_tier_stripe_recover(sh, (unsigned)(e % TIER_STRIPES));
        pthread_mutex_consistent(m);
    }
}

static inline void tier_unlock(struct tier_shared *sh, uint64_t e)
{
    pthread_mutex_unlock(&sh->shm->stripe[e % TIER_STRIPES]);
}

/* tier_type.c */
/* The config of an inner chain: storage_type hot (tmpfs) or cold, as
 * async says (the migration's own devices are synchronous). NULL: err set. */
struct xd_config *xd_tier_inner_config(const struct xd_config *cfg, int which, bool sync,
                                        char *err, size_t errlen);
/* Where the cold tier keeps the caller's path (cold_directory), malloc'd. */
char *xd_tier_cold_path(const struct xd_config *cfg, const char *path);

/* tier_state.c */
/* A hybrid file is several names (the cold file, its map, the hot copy and
 * tag, the shared memory object) that an open takes one by one and
 * xd_unlink removes one by one. Opens hold this shared, xd_unlink
 * exclusive, so in a process neither sees the other half done: an open
 * racing a removal failed on a name just removed ("another user's file"
 * for a copy whose link count had dropped to 0, ENOENT for the shared
 * state), or took the removed cold file with a new map and hot copy. */
void xd_tier_names_lock(bool removing);
void xd_tier_names_unlock(void);
/* The state of the hybrid file at cold_path, the file cold_st describes
 * (before: as it was before this open touched it; NULL when it made it),
 * created by the first opener. A read-only open (XD_OPEN_READONLY) never
 * writes the cold file, and one made by it never does until a writable
 * open joins. notice: what building the state dropped ("" when nothing). */
int xd_tier_shared_get(const struct xd_config *cfg, const char *cold_path,
                       const struct stat *cold_st, const struct stat *before, bool read_only,
                       uint64_t size, struct tier_shared **out, char *notice,
                       size_t noticelen, char *err, size_t errlen);
void xd_tier_shared_put(struct tier_shared *sh);
/* The live keys (hot_cache_size, hot_access_threshold, cold_timeout_sec,
 * migration_batch_size, migration_interval_sec, migration_interval_requests) of cfg take effect for the
 * file: the next pass uses them, the thread wakes for a new interval. */
int xd_tier_apply_live(struct tier_shared *sh, const struct xd_config *cfg);

/* tier_shm.c */
/* Attach sh (its map open, its settings set) to the file's shared state,
 * building it, and loading the map, when no other process has the file
 * open; 0 or -errno with err set. */
int xd_tier_attach(struct tier_shared *sh, uint64_t size, char *err, size_t errlen);
/* The caller's shared states nobody holds (their processes were killed):
 * removed. */
void xd_tier_sweep_states(void);
/* Unmap it; the last process to leave removes it. */
void xd_tier_detach(struct tier_shared *sh);
/* The cold file at cold_path is being removed (xd_unlink): its shared
 * state goes now when no process has the file open (else the last one's
 * detach removes it). 1 when removed, 0, or -errno. */
int xd_tier_forget_state(const char *cold_path);

/* The header of the state of the file at cold_path that processes have
 * open, for a caller holding the setup lock while the attached byte is
 * held (so nobody builds or removes it meanwhile): mapped, or NULL when
 * there is no built state of this user's there. Unmapped by _put. */
struct tier_shm *xd_tier_shm_head(const char *cold_path);
void xd_tier_shm_head_put(struct tier_shm *head);

/* tier_map.c */
/* Fill the state the first process builds (tier_shm.c) with the map's hot
 * entries, or start a new map and hot tier tag when they do not match. */
int xd_tier_load_map(struct tier_shared *sh, char *err, size_t errlen);

/* tier_stamp.c */
void xd_tier_stamp_of(const struct stat *st, struct xd_extmap_stamp *s);
/* The cold file's stamp now (through the inode the state pins); -errno. */
int xd_tier_stamp_now(struct tier_shared *sh, struct xd_extmap_stamp *s);
/* Same file, same size, same times. */
bool xd_tier_stamp_same(const struct xd_extmap_stamp *a, const struct xd_extmap_stamp *b);
/* The first process: the map says the file is open from now on, and
 * whether a hot copy may be newer than it (dirty_loaded: the map's load
 * kept copies as dirty; or this process's open writes back). */
int xd_tier_stamp_opened(struct tier_shared *sh, bool dirty_loaded);
/* A writable open (any process): before its first write can be
 * acknowledged, the map's open stamp says a kill must keep the hot copies
 * when the process writes back. 0, or -errno with err set. */
int xd_tier_stamp_writer(struct tier_shared *sh, char *err, size_t errlen);
/* The last process to close: the map records the file as it leaves it. */
void xd_tier_stamp_closed(struct tier_shared *sh);
/* The cold file at cold_path, as before describes it, was grown by
 * xd_tier_prepare: the map's stamp follows when it was the file's. */
void xd_tier_stamp_grown(const char *cold_path, const struct stat *before);

/* tier_readonly.c */
/* Whether the map's open for writing failed in a way a read-only open may
 * read around (the map, or its directory, cannot be written here). */
bool xd_tier_map_unwritable(int rc);
/* A read-only open whose map at map_path cannot be written (map_rc): the
 * cold file's reader lock, and the map's verdict. 0: sh reads every extent
 * from the cold file (cold_only, a notice); else -errno with one line (a
 * hot copy may hold writes the file lacks; another process has the file
 * open where its map can be written; the map cannot be read). */
int xd_tier_cold_only(struct tier_shared *sh, const struct xd_config *cfg, const char *map_path,
                      const struct stat *cold_st, int map_rc, char *err, size_t errlen);
/* Its state, private to the process: no extents, the file's size. */
int xd_tier_cold_only_state(struct tier_shared *sh, uint64_t size);
void xd_tier_cold_only_end(struct tier_shared *sh);
/* A process about to build the file's shared state: -EBUSY with one line
 * while a cold-only reader has the file open (its reads would miss writes
 * that went to the hot tier alone), else 0. */
int xd_tier_cold_readers(struct tier_shared *sh, char *err, size_t errlen);

/* tier_policy.c */
/* Count an access to extent x (under its stripe lock) in its window. */
void xd_tier_touch(struct tier_shared *sh, struct tier_ext *x, uint64_t now);
/* Choose and make a pass's moves (the caller holds the mover locks): the
 * number promoted, or -ENOMEM; the extents demoted go to demoted[], for
 * the caller to finish once the map is synced. */
int xd_tier_pass_locked(struct tier_shared *sh, uint64_t *demoted, unsigned *ndemoted);

/* tier_migrate.c */
/* Whether a mover or flusher that is alive holds the extent. */
bool xd_tier_busy(const struct tier_ext *x);
/* Move extent e hot, or begin moving it cold (the hot copy is punched when
 * the pass finishes it); 1 when moved, 0 when skipped or aborted. */
int xd_tier_promote(struct tier_shared *sh, uint64_t e);
int xd_tier_demote_begin(struct tier_shared *sh, uint64_t e);
/* One migration pass now; returns the number of extents moved or -errno. */
int xd_tier_migrate_pass(struct tier_shared *sh);
/* Count one request to the file; every migration_interval_requests-th
 * runs a pass in the caller's thread before it is routed. */
void xd_tier_count_request(struct tier_shared *sh);
/* Copy the dirty hot extents of the file to the cold tier through the
 * caller's devices: the number copied or -errno. */
int xd_tier_flush(struct tier_shared *sh, struct xd_dev *dev[2], struct xd_file *file[2],
                  void *buf);
/* The xd-migrate thread of a state with auto_migration. */
int xd_tier_start_thread(struct tier_shared *sh, char *err, size_t errlen);
void xd_tier_stop_thread(struct tier_shared *sh);

#endif
