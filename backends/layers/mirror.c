/* mirror.c - the mirror layer (enable_redundancy): every file is kept as
 * redundancy_factor copies, the caller's (copy 1, the primary) and one per
 * directory of mirror_directories (copy i+1 is <dir i>/<basename of the
 * caller's path, symlinks resolved: mirror_copy_name>). Each copy is a
 * file of its own opened through the same layers below (checksum, sparse,
 * fault, the driver), so each is checked and stored as any file is.
 *
 * Opening. The primary opens first, with the caller's flags and size; each
 * copy is then opened (created when missing) with the primary's size. A copy
 * is trusted only if its sync stamp (an extended attribute written at the
 * last clean close, naming the primary's device, inode, size and mtime)
 * matches the primary as it is now; any other copy is filled from the
 * primary at open, synchronously, a megabyte at a time. A stamp that says
 * "newer" (the primary missed writes the copy took, and was degraded when
 * the file was closed) fills the primary from that copy first. So after
 * open every healthy copy holds the same bytes, even when the primary was
 * written without the mirror since, a process died with copies half
 * written (no stamp: opening for writing removes it), or a second file of
 * the same name used the copy. A copy that cannot be opened or filled
 * starts degraded; the primary failing to open fails the open. Without
 * extended attributes (ENOTSUP) nothing is stamped, so every open fills.
 *
 * Writers take turns: a write or trim holds an exclusive OFD lock on its
 * range (of the primary, at 2^62 + offset) until every copy has it, so
 * two devices writing the same bytes (fio jobs on one file) never leave
 * the copies holding different writes (mirror_turn_take, core/turns.c);
 * the file's only writer takes no lock ("solo", its words in a page of
 * /dev/shm: mirror_words_open). Each writer holds a slot in that page
 * (mirror_writers.c), so one killed beside others is seen: the copies it
 * may have left without its last write are then neither trusted by a
 * joiner nor stamped "sync" at the last close.
 *
 * Writes, trims, fsyncs go to every healthy copy: one sub-request per copy,
 * all in flight together in async modes (sub-requests come from a pool of
 * queue_entries * redundancy_factor, taken at open; none free means -EBUSY),
 * and the caller's request completes when the last one does. It succeeds
 * when at least one copy succeeded; a copy that failed is degraded at once
 * (it now holds stale data). When every copy fails, the request fails with
 * the first error and no copy is degraded: they are equally stale, and the
 * caller sees the error as a plain file would show it.
 *
 * Reads come from the first healthy copy: the primary while it is healthy.
 * Not round-robin: on one machine the copies share the page cache and the
 * disks, and reading one copy keeps readahead's streams and the cached pages
 * to one copy's worth; the others are read only when needed. A read that
 * fails (an I/O error, or -EIO from the checksum layer for a mismatch) is
 * served from the next healthy copy, synchronously, and the bad copy is
 * repaired in place by writing the good bytes back. A copy with 3
 * consecutive failures, or whose repair failed, is degraded. Degraded copies
 * are skipped by reads and writes until the device is closed; the last
 * healthy copy is never degraded.
 *
 * One primary per copy: two files of the same name in different
 * directories would map to one copy; each device claims its copy for its
 * primary (mirror_claim, an OFD lock), so while one is open the other's
 * copy is degraded, never shared.
 *
 * Devices share what they degrade: a member one writer degraded misses
 * its writes, so it is stale for all. Each degrade is marked in the
 * writers' page (mirror_members.c) before the failed request completes;
 * every writer takes the marks as its own at its next request (one load
 * of a shared word), at a read's failover, at open and at its close: the
 * last close stamps a copy another writer degraded nothing, and the copies
 * of a primary another writer degraded "newer". Before, a writer closing
 * last stamped them "sync": the next open trusted a stale copy, or a stale
 * primary over the copies that held the other writer's acknowledged
 * writes. Writers without the page (another user's, no /dev/shm) share
 * nothing, as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/turns.h"
#include "../core/xd_internal.h"
#include "mirror_members.h"
#include "mirror_writers.h"

#define MIRROR_MAX_COPIES   8
#define MIRROR_DEGRADE_AFTER 3          /* consecutive failures */
#define MIRROR_FILL_CHUNK   (1u << 20) /* bytes per step of filling a copy at open */
/* Writers' turns lock the primary at byte 2^62 + the write's offset: far
 * from the ranges the drivers lock in it (the direct type's read-modify-
 * writes) for any file shorter than 4 EiB. */
#define MIRROR_TURN_BASE    ((off_t)1 << 62)
#define MIRROR_PRESENCE     (MIRROR_TURN_BASE - 1) /* every writer, shared (core/turns.c) */
#define MIRROR_SOLO         (MIRROR_TURN_BASE - 2) /* the solo writer, exclusive */
#define MIRROR_WORDS_SIZE   4096u
#define MIRROR_WORDS_PREFIX "xdevice-mirror-"
#define MIRROR_WORDS_HOLD   0 /* the byte of the page its users hold (xd_shm_open_held) */
/* The words' third: 1 while the writers keep every copy in sync with the
 * primary (the first set it once its open had them so; any degrading, or
 * a writer found dead, clears it); words 0 and 1 are the turns'
 * (core/turns.c), 3 on the writers' slots (mirror_writers.h). */
#define MIRROR_WORD_IN_SYNC 2
/* Words 6 and 7: the copy set (mirror_copy_set) of the first writer to say
 * which one it writes since the last writer alone, and 1 once a writer with
 * another set had the file open meanwhile (mirror_words_copies). */
#define MIRROR_WORD_COPY_SET 6
#define MIRROR_WORD_MIXED    7
enum { MIRROR_TURN_NONE, MIRROR_TURN_LOCK, MIRROR_TURN_SOLO };
#define MIRROR_DRAIN_BATCH  32u

/* What a copy's sync stamp (an extended attribute, written at a clean close)
 * says about it against the primary as the primary is now. */
enum mirror_stamp {
    MIRROR_UNKNOWN, /* the primary changed since: fill it */
    MIRROR_UNSTAMPED, /* none: a writer open now removed it, or one was killed:
                       * fill it, unless the writers say they keep it in sync */
    MIRROR_IN_SYNC, /* it held the primary's bytes when both were last closed */
    MIRROR_NEWER,   /* the primary missed writes this copy took: fill the primary */
    MIRROR_REPLACED, /* stamped for another file at the primary's path: the
                      * primary was lost or replaced; the copy may hold the
                      * only good data, so neither is filled from the other */
};

struct mirror_copy {
    struct xd_file *file; /* copy 0: the caller's; NULL when it could not be opened */
    unsigned errors;      /* consecutive failures */
    bool opened;          /* the layers below hold it open */
    bool degraded;
    enum mirror_stamp stamp; /* what the copy said at open (mirror_stamp_read) */
    /* the copy as this device opened it (mirror_claim), or -1: holds this
     * primary's claim on it, and its stamps are set through it */
    int claim_fd;
    int64_t size;            /* its size at open */
};

struct mirror_file {
    unsigned ncopies;
    struct mirror_copy copy[MIRROR_MAX_COPIES];
    int turn_fd; /* the primary, for writers' turns (mirror_turn_take); -1: none */
    struct xd_turns_solo solo; /* the file's only writer takes no turn */
    void *words;               /* the writers' shared words (mirror_words_open), or NULL */
    int words_fd;              /* holds them, while words is not NULL */
    ino_t words_ino;
    char words_name[64];
    struct mirror_slot slot; /* this writer's, in the words (mirror_writers.c) */
    uint32_t marks_seen; /* the members degraded in the words this device took as its own */
    bool split; /* a member another writer degraded is the only one this device can use */
    char primary_file[96]; /* the primary's "DEV:INO:BTIME:" at open (mirror_primary_own_id) */
    bool alone;       /* no other writer had the file open when this one joined */
    bool open_failed; /* the open was refused or failed: its close stamps nothing */
};

/* The layer's slice of every caller request. */
struct mirror_req {
    uint8_t pending;  /* sub-requests still in flight */
    uint8_t ok;       /* copies that succeeded, a bit each */
    uint8_t failed;   /* copies that failed */
    uint8_t copy : 4; /* a read: the copy it was sent to */
    uint8_t turn : 2; /* a write or trim: MIRROR_TURN_LOCK or _SOLO while out */
    int32_t err;      /* the first failure */
};

/* A request of this layer's own, to one copy. */
struct mirror_sub {
    struct xd_req req; /* first: what the layer below hands back is this */
    struct xd_req *parent;
    struct mirror_sub *next_free;
    unsigned copy;
};

/* A copy degraded while this device is open, by path: it stays degraded
 * when its file is opened again (fio reopens files to verify), since it
 * holds stale data. */
struct mirror_degraded {
    struct mirror_degraded *next;
    unsigned copy; /* 1-based, as the user counts */
    unsigned errors;
    char why[XD_ERRLEN]; /* whole: a cut one, said again at a reopen, was a second line */
    char path[];
};

struct mirror_layer {
    unsigned ncopies;
    char *dirs[MIRROR_MAX_COPIES]; /* dirs[i] holds copy i+1; dirs[0] unused */
    struct mirror_sub *subs, *free;
    unsigned nsubs;
    struct {
        uint64_t repairs, write_errors, read_errors, filled_bytes;
        uint64_t reads[MIRROR_MAX_COPIES];
    } count;
    struct mirror_degraded *degraded, **degraded_tail; /* in the order it happened */
    unsigned ndegraded;
    char notice[XD_ERRLEN];
    char error[XD_ERRLEN]; /* the last request every copy failed, for take_error */
    /* Writes and trims out holding their turn, and what a drain reaped for
     * the caller's next reap (mirror_drain). */
    struct xd_req_list flight, held;
    uint64_t turn_waits, solo_files, solo_regained;
    bool draining; /* mirror_drain is on the stack */
    struct xd_turns_member turns;
};

static struct mirror_req *mirror_ctx(const struct xd_layer *layer, const struct xd_req *req)
{
    return xd_req_ctx(layer, req);
}

/* --- open and close ------------------------------------------------------- */

static int mirror_split_dirs(struct mirror_layer *ml, const char *list)
{
    unsigned n = 1;
    const char *p = list;
    while (*p && n < ml->ncopies) {
        size_t len = strcspn(p, ",");
        if (!(ml->dirs[n++] = strndup(p, len)))
            return -ENOMEM;
        p += len + (p[len] == ',');
    }
    return n == ml->ncopies ? 0 : -EINVAL; /* xd_config_check said it is so */
}

/* Each mirror directory must be one whose owner cannot redirect the
 * copies xdevice makes there (xd_dir_check: ours or root's, not writable
 * by others unless sticky), as for every directory xdevice writes into. */
static int mirror_check_dirs(const struct mirror_layer *ml, const struct xd_config *cfg,
                             char *err, size_t errlen)
{
    for (unsigned c = 1; c < ml->ncopies; c++) {
        int fd = open(ml->dirs[c], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int rc = -errno;
            xd_errf(err, errlen, "mirror_directories: %s: cannot open it: %s", ml->dirs[c],
                    strerror(-rc));
            return rc;
        }
        int rc = xd_dir_check(fd, ml->dirs[c], "mirror_directories",
                              cfg->allow_shared_directories, err, errlen);
        close(fd);
        if (rc)
            return rc;
    }
    return 0;
}

static int mirror_drain(struct xd_layer *layer);

static int mirror_open(struct xd_layer *layer, char *err, size_t errlen)
{
    const struct xd_config *cfg = layer->dev->cfg;
    struct mirror_layer *ml = calloc(1, sizeof(*ml));
    if (!ml)
        return -ENOMEM;
    layer->priv = ml;
    ml->ncopies = (unsigned)cfg->redundancy_factor;
    int rc = mirror_split_dirs(ml, cfg->mirror_directories);
    if (rc) {
        xd_errf(err, errlen, "mirror_directories=%s: not one directory per copy beyond the first (redundancy_factor=%u)",
                cfg->mirror_directories, ml->ncopies);
        return rc;
    }
    if ((rc = mirror_check_dirs(ml, cfg, err, errlen)))
        return rc;
    ml->degraded_tail = &ml->degraded;
    ml->nsubs = layer->dev->queue_entries * ml->ncopies;
    ml->subs = calloc(ml->nsubs, sizeof(*ml->subs));
    if (!ml->subs)
        return -ENOMEM;
    for (unsigned i = 0; i < ml->nsubs; i++) {
        ml->subs[i].next_free = ml->free;
        ml->free = &ml->subs[i];
    }
    if (xd_req_list_room(&ml->flight, layer->dev->queue_entries))
        return -ENOMEM;
    xd_turns_join(&ml->turns, layer, mirror_drain);
    xd_shm_sweep(MIRROR_WORDS_PREFIX, MIRROR_WORDS_HOLD); /* pages writers killed left */
    return 0;
}

static void mirror_close(struct xd_layer *layer)
{
    struct mirror_layer *ml = layer->priv;
    if (!ml)
        return;
    if (ml->turns.layer)
        xd_turns_leave(&ml->turns);
    for (unsigned i = 0; i < MIRROR_MAX_COPIES; i++)
        free(ml->dirs[i]);
    free(ml->subs);
    xd_req_list_free(&ml->flight);
    xd_req_list_free(&ml->held);
    while (ml->degraded) {
        struct mirror_degraded *next = ml->degraded->next;
        free(ml->degraded);
        ml->degraded = next;
    }
    free(ml);
}

static const char *mirror_copy_path(const struct mirror_file *mf, unsigned c)
{
    return mf->copy[c].file ? mf->copy[c].file->path : "?";
}

static unsigned mirror_healthy(const struct mirror_file *mf)
{
    unsigned n = 0;
    for (unsigned c = 0; c < mf->ncopies; c++)
        n += !mf->copy[c].degraded;
    return n;
}

static struct mirror_degraded *mirror_degraded_before(const struct mirror_layer *ml,
                                                      const char *path)
{
    struct mirror_degraded *d = ml->degraded;
    while (d && strcmp(d->path, path))
        d = d->next;
    return d;
}

static int mirror_stamp_clear(const struct mirror_file *mf, unsigned c);
static void mirror_stamp_degraded(const struct mirror_file *mf);
static int mirror_first_healthy(const struct mirror_file *mf);

/* --- copies kept in sync by the writers open now ---------------------------- */

/* A writer clears the stamps at open (its writes move the data on), so a
 * second writer opening meanwhile (fio's numjobs, a second run) found no
 * stamp and filled every copy from the primary again, whole, though the
 * first had just found or made them in sync and writes every copy since:
 * four jobs re-reading a 64 MiB file copied 192 MiB at open. So the writers
 * say in their words whether they keep the copies in sync. */

static uint32_t *mirror_word(const struct mirror_file *mf, unsigned i)
{
    return mf->words ? (uint32_t *)mf->words + i : NULL;
}

/* Which copies this device writes: a hash of their names, never 0. The
 * words are the primary's, but writers of one file may name other copies
 * (other mirror_directories, another redundancy_factor): a copy kept in
 * sync by the others is not one this device has, and a copy this device
 * wrote missed the others' writes. */
static uint32_t mirror_copy_set(const struct mirror_file *mf)
{
    uint64_t h = xd_hash_mix(0x6d697272u, mf->ncopies);
    for (unsigned c = 1; c < mf->ncopies; c++)
        for (const char *p = mirror_copy_path(mf, c); *p; p++)
            h = xd_hash_mix(h, (unsigned char)*p);
    uint32_t set = (uint32_t)(h ^ (h >> 32));
    return set ? set : 1;
}

/* Before this device's copies are filled or trusted: the first writer to
 * come names its copy set in the words; one naming another set marks the
 * writers mixed, and from then on no copy is taken as kept in sync by a
 * joiner nor stamped "sync" at the last close (the next open fills them),
 * until a writer alone at its open starts the words afresh. */
static void mirror_words_copies(const struct mirror_file *mf)
{
    uint32_t *w = mirror_word(mf, MIRROR_WORD_COPY_SET), want = mirror_copy_set(mf), had = 0;
    if (!w)
        return;
    if (mf->alone) {
        __atomic_store_n(mirror_word(mf, MIRROR_WORD_MIXED), 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(w, want, __ATOMIC_SEQ_CST);
        return;
    }
    if (!__atomic_compare_exchange_n(w, &had, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
        had != want)
        __atomic_store_n(mirror_word(mf, MIRROR_WORD_MIXED), 1, __ATOMIC_SEQ_CST);
}

/* Writers with other copy sets than this device's have had the file open
 * since the last writer alone (mirror_words_copies). */
static bool mirror_words_mixed(const struct mirror_file *mf)
{
    const uint32_t *w = mirror_word(mf, MIRROR_WORD_MIXED);
    return w && __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

/* The first writer (alone at join: its words are fresh) whose open left
 * every copy healthy and in sync says so, before it clears the stamps: a
 * writer joining later finds either the stamps or this. */
static void mirror_words_in_sync(const struct mirror_file *mf)
{
    uint32_t *w = mirror_word(mf, MIRROR_WORD_IN_SYNC);
    if (w && mf->alone && mirror_healthy(mf) == mf->ncopies && !mirror_words_mixed(mf))
        __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
}

/* A copy or the primary degraded here: other devices do not know it (nor
 * that one of their writes may have missed it), so from now on a joining
 * writer fills unstamped copies again. Never set back while the words live. */
static void mirror_words_out_of_sync(const struct mirror_file *mf)
{
    uint32_t *w = mirror_word(mf, MIRROR_WORD_IN_SYNC);
    if (w)
        __atomic_store_n(w, 0, __ATOMIC_SEQ_CST);
}

/* Copy c has no stamp, and writers open before this one keep it in sync:
 * the same copies as this device's (mirror_words_copies). */
static bool mirror_kept_in_sync(const struct mirror_file *mf, unsigned c)
{
    const uint32_t *w = mirror_word(mf, MIRROR_WORD_IN_SYNC);
    const uint32_t *set = mirror_word(mf, MIRROR_WORD_COPY_SET);
    return w && !mf->alone && mf->copy[c].stamp == MIRROR_UNSTAMPED &&
           __atomic_load_n(w, __ATOMIC_SEQ_CST) == 1 && !mirror_words_mixed(mf) &&
           __atomic_load_n(set, __ATOMIC_SEQ_CST) == mirror_copy_set(mf);
}

/* Copy c of mf is no longer used (never the last healthy one). Its stamp
 * goes (it holds stale data); a primary's degrading stamps the others. */
static void mirror_degrade(struct mirror_layer *ml, struct mirror_file *mf, unsigned c,
                           const char *path, const char *why)
{
    struct mirror_copy *cp = &mf->copy[c];
    if (cp->degraded || (mirror_healthy(mf) <= 1 && cp->opened))
        return;
    /* marked for the other writers before the failed write completes */
    if (!mirror_members_mark(mf->words, c, mf->ncopies)) {
        if (cp->opened)
            return; /* they degraded every other member: this one stays in use */
        mf->split = true; /* unusable here, and the only one they use */
    }
    cp->degraded = true;
    mf->marks_seen |= 1u << c;
    mirror_words_out_of_sync(mf);
    if (c && cp->opened && !(mf->copy[0].file->flags & XD_OPEN_READONLY))
        mirror_stamp_clear(mf, c);
    mirror_stamp_degraded(mf);
    if (cp->errors) /* none: another writer degraded it (mirror_adopt_marks) */
        snprintf(ml->notice, sizeof(ml->notice), "mirror: copy %u (%s) degraded after %u error%s: %s",
                 c + 1, path, cp->errors, cp->errors == 1 ? "" : "s", why);
    else
        snprintf(ml->notice, sizeof(ml->notice), "mirror: copy %u (%s) degraded: %s", c + 1, path,
                 why);
    if (mirror_degraded_before(ml, path))
        return;
    struct mirror_degraded *d = calloc(1, sizeof(*d) + strlen(path) + 1);
    if (!d)
        return; /* only the stats miss it */
    d->copy = c + 1;
    d->errors = cp->errors;
    snprintf(d->why, sizeof(d->why), "%s", why);
    strcpy(d->path, path);
    *ml->degraded_tail = d;
    ml->degraded_tail = &d->next;
    ml->ndegraded++;
}

/* A failure of copy c: degraded at MIRROR_DEGRADE_AFTER in a row. */
static void mirror_failed(struct mirror_layer *ml, struct mirror_file *mf, unsigned c,
                          const char *what, int64_t rc)
{
    char why[96];
    mf->copy[c].errors++;
    if (mf->copy[c].errors < MIRROR_DEGRADE_AFTER)
        return;
    snprintf(why, sizeof(why), "%s: %s", what, strerror((int)-rc));
    mirror_degrade(ml, mf, c, mirror_copy_path(mf, c), why);
}

/* Members another writer degraded (marked in the words since this device
 * last looked): they miss that writer's writes, so this device stops
 * reading and writing them too, and its close stamps them as it would had
 * it degraded them itself. A marked member this device cannot give up
 * (the only one it can use) splits the writers: mf->split. */
static void mirror_adopt_marks(struct mirror_layer *ml, struct mirror_file *mf, uint32_t marks)
{
    mf->marks_seen |= marks;
    for (unsigned c = 0; c < mf->ncopies; c++) {
        if (!(marks & (1u << c)) || mf->copy[c].degraded)
            continue;
        mirror_degrade(ml, mf, c, mirror_copy_path(mf, c),
                       "another writer of the file degraded it");
        mf->split |= !mf->copy[c].degraded;
    }
}

/* One load of a shared word per request: a member another process
 * degraded must not serve this one's next read (it misses that
 * process's acknowledged writes); anything new is taken on the slow path. */
static inline void mirror_adopt(struct mirror_layer *ml, struct mirror_file *mf)
{
    uint32_t marks = mirror_members_degraded(mf->words) & ~mf->marks_seen;
    if (marks)
        mirror_adopt_marks(ml, mf, marks);
}

/* One synchronous request to copy c: bytes done or -errno. */
static int64_t mirror_sync_io(struct xd_layer *layer, struct mirror_file *mf, unsigned c,
                              enum xd_op op, void *buf, uint64_t len, uint64_t off)
{
    struct xd_req sub = {.op = op, .file = mf->copy[c].file, .buf = buf, .len = len, .off = off};
    xd_req_set_flags(&sub, XD_REQ_SYNC);
    int rc = xd_layer_submit(layer->lower, &sub);
    return rc < 0 ? rc : sub.result;
}

static int mirror_range_take(struct xd_layer *layer, struct mirror_file *mf, uint64_t off,
                             uint64_t len, uint8_t *kind);
static void mirror_range_give(struct mirror_file *mf, uint64_t off, uint64_t len, uint8_t kind);

/* One chunk at off of copy from written into copy to, holding the
 * range's turn as a write does: another device writing the file (which
 * takes turns once this one joined) then lands wholly before the chunk's
 * read or wholly after its write, never between, where the copy would get
 * back the older bytes. Bytes copied, or -errno (said in why). */
static int64_t mirror_fill_chunk(struct xd_layer *layer, struct mirror_file *mf, unsigned from,
                                 unsigned to, void *buf, uint64_t len, uint64_t off, char *why,
                                 size_t whylen)
{
    uint8_t turn;
    int64_t rc = mirror_range_take(layer, mf, off, len, &turn);
    if (rc) {
        snprintf(why, whylen, "cannot take its turn to fill it: %s", strerror((int)-rc));
        return rc;
    }
    rc = mirror_sync_io(layer, mf, from, XD_OP_READ, buf, len, off);
    if (rc <= 0) {
        snprintf(why, whylen, "cannot read copy %u to fill it: %s", from + 1,
                 rc ? strerror((int)-rc) : "end of file");
        rc = rc ? rc : -EIO;
    } else {
        int64_t w = mirror_sync_io(layer, mf, to, XD_OP_WRITE, buf, (uint64_t)rc, off);
        if (w != rc) {
            snprintf(why, whylen, "cannot fill it from copy %u: %s", from + 1,
                     strerror(w < 0 ? (int)-w : EIO));
            rc = w < 0 ? w : -EIO;
        }
    }
    mirror_range_give(mf, off, len, turn);
    return rc;
}

/* Copy the first size bytes of copy from into copy to. */
static int mirror_fill(struct xd_layer *layer, struct mirror_file *mf, unsigned from, unsigned to,
                       uint64_t size, char *why, size_t whylen)
{
    struct mirror_layer *ml = layer->priv;
    void *buf;
    if (posix_memalign(&buf, 4096, MIRROR_FILL_CHUNK))
        return -ENOMEM;
    int64_t rc = 0;
    for (uint64_t off = 0; off < size; off += (uint64_t)rc) {
        uint64_t len = size - off < MIRROR_FILL_CHUNK ? size - off : MIRROR_FILL_CHUNK;
        rc = mirror_fill_chunk(layer, mf, from, to, buf, len, off, why, whylen);
        if (rc < 0)
            break;
        ml->count.filled_bytes += (uint64_t)rc;
    }
    free(buf);
    return rc < 0 ? (int)rc : 0;
}

/* --- sync stamps ----------------------------------------------------------- */

/* A copy is trusted at open only if a clean close said it matched the
 * primary as the primary still is: the stamp names the primary's device,
 * inode, size and mtime, so a primary written since without the mirror (or
 * another file of the same name) makes every copy unknown, and a copy
 * that was open for writing when the process died has no stamp at all.
 * Where extended attributes are not supported nothing is stamped: every
 * open fills every copy. Stamps are read by name at open, and set or
 * removed through the copy's descriptor (mirror_primary_own_id says why). */
#define MIRROR_STAMP_XATTR "user.xdevice.mirror"

/* The primary's file, "DEV:INO:BTIME:" (birth time, 0 where the file
 * system keeps none: a file deleted and made again often gets the freed
 * inode number back), and with state also "SIZE:MTIME" after it, as stamps
 * name it. */
static int mirror_primary_id(const struct mirror_file *mf, bool state, char *out, size_t len)
{
    struct statx st;
    if (statx(AT_FDCWD, mf->copy[0].file->path, 0, STATX_BASIC_STATS | STATX_BTIME, &st))
        return -errno;
    bool born = st.stx_mask & STATX_BTIME;
    int n = snprintf(out, len, "%llu:%llu:%lld.%09u:",
                     (unsigned long long)makedev(st.stx_dev_major, st.stx_dev_minor),
                     (unsigned long long)st.stx_ino, born ? (long long)st.stx_btime.tv_sec : 0LL,
                     born ? st.stx_btime.tv_nsec : 0u);
    if (state && n > 0 && (size_t)n < len)
        snprintf(out + n, len - (size_t)n, "%lld:%lld.%09u", (long long)st.stx_size,
                 (long long)st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec);
    return 0;
}

/* A stamp is "KIND FILE STATE PATH": the primary's file and state
 * (mirror_primary_id) and its path (realpath), "filling FILE" alone while
 * the primary is being filled. Stamps of earlier builds (no birth time, no
 * path) match nothing: the copy is filled from the primary once. */
#define MIRROR_STAMP_MAX (256 + PATH_MAX)

/* Does a stamp's id (from its FILE on) begin with want ("DEV:INO:BTIME:",
 * maybe "SIZE:MTIME" after it), and, unless prefix, end there (or its PATH
 * follows)? The device number may differ where the file has a birth time:
 * a file system that came back under another number (a loop image on
 * another /dev/loopN, disks enumerated in another order) keeps its inodes
 * and birth times, and the same inode born at the same nanosecond is the
 * same file. Before, such a primary's copies counted as another file's
 * (MIRROR_REPLACED) and the open was refused. */
static bool mirror_id_matches(const char *id, const char *want, bool prefix)
{
    const char *id_ino = strchr(id, ':'), *want_ino = strchr(want, ':');
    if (!id_ino || !want_ino)
        return false;
    size_t len = strlen(want_ino);
    if (strncmp(id_ino, want_ino, len) || (!prefix && id_ino[len] && id_ino[len] != ' '))
        return false;
    size_t dev_len = (size_t)(want_ino - want);
    if ((size_t)(id_ino - id) == dev_len && !strncmp(id, want, dev_len))
        return true;
    const char *birth = strchr(want_ino + 1, ':'); /* ":BTIME:" */
    return birth && strncmp(birth, ":0.000000000:", 13);
}

/* Does the stamp (id: from its FILE) name the primary's path, but another
 * file than the one there now? */
static bool mirror_stamp_replaced(const struct mirror_file *mf, const char *id, const char *file)
{
    char real[PATH_MAX];
    const char *path = strchr(id, ' ');
    return path && realpath(mf->copy[0].file->path, real) && !strcmp(path + 1, real) &&
           !mirror_id_matches(id, file, true);
}

static enum mirror_stamp mirror_stamp_read(const struct mirror_file *mf, unsigned c)
{
    char file[160], want[160], have[MIRROR_STAMP_MAX];
    ssize_t n = lgetxattr(mf->copy[c].file->path, MIRROR_STAMP_XATTR, have, sizeof(have) - 1);
    if (n <= 0)
        return MIRROR_UNSTAMPED;
    if (mirror_primary_id(mf, true, want, sizeof(want)))
        return MIRROR_UNKNOWN;
    /* FILE is want up to its third ':' (one statx, not two) */
    snprintf(file, sizeof(file), "%s", want);
    char *cut = file;
    for (int k = 0; k < 3 && cut; k++)
        cut = strchr(cut + (k > 0), ':');
    if (!cut)
        return MIRROR_UNKNOWN;
    cut[1] = '\0';
    have[n] = 0;
    const char *id = strchr(have, ' ');
    if (!id)
        return MIRROR_UNKNOWN;
    id++;
    /* "filling FILE": an open filling the primary from this newer copy died
     * (mirror_fill_primary); the primary's size and mtime moved with the
     * chunks it wrote, the file did not */
    if (!strncmp(have, "filling ", 8))
        return mirror_id_matches(id, file, false) ? MIRROR_NEWER : MIRROR_UNKNOWN;
    if (!mirror_id_matches(id, want, false)) /* realpath only then */
        return mirror_stamp_replaced(mf, id, file) ? MIRROR_REPLACED : MIRROR_UNKNOWN;
    return !strncmp(have, "newer ", 6) ? MIRROR_NEWER : !strncmp(have, "sync ", 5) ? MIRROR_IN_SYNC
                                                                                : MIRROR_UNKNOWN;
}

/* Before the first write: the copy's stamp would soon be a lie. 0, or the
 * errno of a stamp that cannot be removed (the copy then is not used). */
static int mirror_stamp_clear(const struct mirror_file *mf, unsigned c)
{
    int fd = mf->copy[c].claim_fd;
    /* by name only where this device holds no descriptor of the copy: a
     * stamp removed from another run's copy costs that run a fill, no more */
    if (!(fd >= 0 ? fremovexattr(fd, MIRROR_STAMP_XATTR)
                  : lremovexattr(mf->copy[c].file->path, MIRROR_STAMP_XATTR)) ||
        errno == ENODATA || errno == ENOTSUP)
        return 0;
    return errno;
}

/* Stamps are set while the file is open, and at its close, maybe long
 * after another run removed the file and made it again: by name, a
 * writer's close stamped the new run's copy "sync" with the new primary's
 * id and mtime while that run was writing them, and the next open trusted
 * a copy that missed the new run's last write. So a stamp names the
 * primary only while the primary's name still holds the file this device
 * opened (its DEV:INO:BTIME, recorded at open), and goes on the copy
 * through the descriptor of it this device opened (claim_fd); neither
 * there: no stamp, and the next open fills, as after a kill. */
static int mirror_primary_own_id(const struct mirror_file *mf, bool state, char *out, size_t len)
{
    size_t n = strlen(mf->primary_file);
    int rc = mirror_primary_id(mf, state, out, len);
    return rc ? rc : n && !strncmp(out, mf->primary_file, n) ? 0 : -ESTALE;
}

static void mirror_stamp_set(const struct mirror_file *mf, unsigned c, const char *text)
{
    if (mf->copy[c].claim_fd >= 0)
        (void)fsetxattr(mf->copy[c].claim_fd, MIRROR_STAMP_XATTR, text, strlen(text), 0);
}

static void mirror_stamp_write(const struct mirror_file *mf, unsigned c, const char *kind)
{
    char id[160], real[PATH_MAX], text[MIRROR_STAMP_MAX];
    if (mirror_primary_own_id(mf, true, id, sizeof(id)) ||
        !realpath(mf->copy[0].file->path, real))
        return;
    snprintf(text, sizeof(text), "%s %s %s", kind, id, real);
    mirror_stamp_set(mf, c, text);
}

/* Copy c, newer than the primary, is about to fill it: stamped "filling
 * FILE" of the primary, which a kill mid-fill leaves matching (the chunks
 * written move the primary's mtime and size, never its file), so the next
 * open fills the primary from c again. The stamp is cleared, or rewritten
 * "newer", once the fill is done, as after any open. */
static void mirror_stamp_filling(const struct mirror_file *mf, unsigned c)
{
    char id[96], text[128];
    if (mirror_primary_own_id(mf, false, id, sizeof(id)))
        return;
    snprintf(text, sizeof(text), "filling %s", id);
    mirror_stamp_set(mf, c, text);
}

/* While the file is open for writing the copies carry no stamp as long as
 * the primary is in use (their data moves on), and "newer" on every copy
 * in use once the primary is degraded: a process killed then leaves the
 * next open filling the primary from a copy, which took the writes the
 * primary missed, where with no stamp it would fill the copies from the
 * stale primary and lose writes that were fsynced. Stamped when the
 * primary degrades, at open when it starts degraded, and again at each
 * fsync (the primary's size and mtime in the stamp may have moved with a
 * write out when it degraded). */
static void mirror_stamp_degraded(const struct mirror_file *mf)
{
    if (!mf->copy[0].degraded || (mf->copy[0].file->flags & XD_OPEN_READONLY))
        return;
    for (unsigned c = 1; c < mf->ncopies; c++)
        if (mf->copy[c].opened && !mf->copy[c].degraded)
            mirror_stamp_write(mf, c, "newer");
}

/* --- one primary per copy -------------------------------------------------- */

/* Two primaries of the same name in different directories would have the
 * same copy, each overwriting the other's data in it. So every device
 * claims its copy for its primary with an OFD read lock on one byte
 * numbered by the primary's (device, inode): devices of the same primary
 * (fio jobs sharing a file, in threads or processes) share the claim; a
 * lock on any other byte is another primary's, and the copy is not used.
 * Claimants take turns (mirror_claim_turn), so of two racing the first
 * keeps the copy and the second sees its lock: never shared, and never
 * both refused. Where the file system has no locks nothing is claimed. */

/* Placing the lock and looking for others, one claimant at a time: two
 * claims interleaved would each see the other's lock and both refuse
 * (both primaries unmirrored). An exclusive flock, which an O_RDONLY
 * descriptor may take and which is independent of the OFD byte locks,
 * held only for those few calls; without flock the claims interleave. */
static void mirror_claim_turn(int fd, int op)
{
    while (flock(fd, op) && errno == EINTR)
        ;
}

/* The byte a primary's claims lock: 1 + a hash of its (device, inode). */
static off_t mirror_claim_byte(const struct stat *primary)
{
    return (off_t)(xd_hash_mix(primary->st_dev, primary->st_ino) % ((1ull << 62) - 1)) + 1;
}

/* Is there a claim on fd's copy by mine's primary (own, when asked), or
 * by another? */
static void mirror_claims_on(int fd, off_t mine, bool *own, bool *other)
{
    struct flock at = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = mine, .l_len = 1};
    struct flock below = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = mine};
    struct flock above = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = mine + 1, .l_len = 0};
    if (own)
        *own = !fcntl(fd, F_OFD_GETLK, &at) && at.l_type != F_UNLCK;
    *other = (!fcntl(fd, F_OFD_GETLK, &below) && below.l_type != F_UNLCK) ||
             (!fcntl(fd, F_OFD_GETLK, &above) && above.l_type != F_UNLCK);
}

static int mirror_claim(struct mirror_file *mf, unsigned c, char *why, size_t whylen)
{
    struct stat st;
    if (stat(mf->copy[0].file->path, &st))
        return 0; /* nothing to name the claim by; the open will say */
    off_t mine = mirror_claim_byte(&st);
    int fd = xd_open_regular(mirror_copy_path(mf, c), O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return fd == -ENOENT ? -ENOENT : 0; /* anything else: the open will say */
    struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = mine, .l_len = 1};
    mirror_claim_turn(fd, LOCK_EX);
    if (fcntl(fd, F_OFD_SETLK, &l)) { /* no locks here: nothing claimed, but the stamps */
        mirror_claim_turn(fd, LOCK_UN);
        mf->copy[c].claim_fd = fd;
        return 0;
    }
    bool other;
    mirror_claims_on(fd, mine, NULL, &other);
    mirror_claim_turn(fd, LOCK_UN);
    if (other) {
        close(fd);
        snprintf(why, whylen, "it is the copy of another file of the same name, open now");
        return -EBUSY;
    }
    mf->copy[c].claim_fd = fd;
    return 0;
}

/* A copy not there yet is made by the open, and claimed after it: two
 * primaries making the same copy at once would both make (the larger
 * extending the other's) before either claimed it. So makers take turns
 * by an exclusive flock on the copy's directory, held from looking for the
 * copy to claiming it; the second then finds the copy made and claimed,
 * and refuses it before its open touches it. Returns the descriptor that
 * holds the turn (closing it ends the turn), or -1 where the directory
 * cannot be locked, and the makers do not take turns. */
static int mirror_making_turn(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        mirror_claim_turn(fd, LOCK_EX);
    return fd;
}

/* The open of copy c once it is claimed (or to be claimed once made). */
static int mirror_open_claimed_copy(struct xd_layer *layer, struct mirror_file *mf, unsigned c,
                                    unsigned flags, char *why, size_t whylen)
{
    mf->copy[c].stamp = mirror_stamp_read(mf, c);
    char err[XD_ERRLEN];
    /* a copy kept for another file (the open is about to be refused) is
     * opened as it is: grown to the new primary's size, its data moved
     * back by the user was no longer the file it had been */
    int64_t size = mf->copy[c].stamp == MIRROR_REPLACED ? 0 : mf->copy[0].size;
    int rc = xd_layer_file_open(layer->lower, mf->copy[c].file, flags,
                                size > 0 ? (uint64_t)size : 0, err, sizeof(err));
    if (rc) {
        snprintf(why, whylen, "%s", err);
        return rc;
    }
    mf->copy[c].opened = true;
    mf->copy[c].size = xd_layer_file_size(layer->lower, mf->copy[c].file);
    return 0;
}

/* <dir of copy c>/<basename of the primary's own name>: the name its
 * symlinks lead to (xd_own_name), so that a file written through a link
 * and through its own name has one set of copies. Copies per name left
 * the copy of one name stale after writes through the other, and a read
 * the primary failed was then served, and the primary repaired, from it.
 * malloc'd; NULL: no memory. */
static char *mirror_copy_name(const struct mirror_layer *ml, const struct mirror_file *mf,
                              unsigned c)
{
    const char *primary = mf->copy[0].file->path;
    struct stat st;
    char *own = stat(primary, &st) ? strdup(primary) : xd_own_name(primary, &st), *path = NULL;
    const char *name = own ? strrchr(own, '/') : NULL;
    name = name ? name + 1 : own;
    if (own && asprintf(&path, "%s/%s", ml->dirs[c], name) < 0)
        path = NULL;
    free(own);
    return path;
}

/* Open copy c (1..) of mf at mirror_copy_name, and read its stamp;
 * mirror_sync_copies decides what to fill. On failure the copy starts
 * degraded (why says). */
static int mirror_open_copy(struct xd_layer *layer, struct mirror_file *mf, unsigned c,
                            unsigned flags, char *why, size_t whylen)
{
    struct mirror_layer *ml = layer->priv;
    struct xd_file *cf = calloc(1, sizeof(*cf));
    if (!cf || !(cf->path = mirror_copy_name(ml, mf, c))) {
        free(cf);
        return -ENOMEM;
    }
    flags |= XD_OPEN_OWN_FILE; /* a name we chose in a directory we were given */
    /* a missing copy is made by any open that may write (a read job's
     * open makes no primary, yet fills a copy that went missing) */
    if (!(flags & XD_OPEN_READONLY))
        flags |= XD_OPEN_CREATE;
    cf->flags = flags;
    mf->copy[c].file = cf;
    const struct mirror_degraded *before = mirror_degraded_before(ml, cf->path);
    if (before) {
        snprintf(why, whylen, "%s", before->why);
        return -EIO;
    }
    /* claimed and read before the open, which may create or extend it */
    int claimed = mirror_claim(mf, c, why, whylen);
    int turn = -1;
    if (claimed == -ENOENT) { /* to be made by this open: one maker at a time */
        turn = mirror_making_turn(ml->dirs[c]);
        claimed = mirror_claim(mf, c, why, whylen);
    }
    int rc = claimed == -ENOENT ? 0 : claimed;
    if (!rc)
        rc = mirror_open_claimed_copy(layer, mf, c, flags, why, whylen);
    if (!rc && claimed == -ENOENT) /* made by this open */
        rc = mirror_claim(mf, c, why, whylen);
    if (turn >= 0)
        close(turn); /* ends the turn */
    return rc;
}

/* Copy c cannot be trusted and is not used by this device. */
static void mirror_distrust(struct mirror_layer *ml, struct mirror_file *mf, unsigned c,
                            const char *why)
{
    mf->copy[c].errors++;
    mirror_degrade(ml, mf, c, mirror_copy_path(mf, c), why);
}

/* A copy stamped for another file at the primary's path (MIRROR_REPLACED):
 * the primary was deleted and made again (by fio's layout, or this open's
 * create) or replaced. Which one holds the data wanted is not for the mirror
 * to guess: filling the copy from the new primary lost the only good copy
 * when the primary was lost, filling the primary from the copy would undo
 * a user's replacement. Refused, one line saying what to do either way. */
static int mirror_refuse_replaced(const struct mirror_file *mf, char *err, size_t errlen)
{
    for (unsigned c = 1; c < mf->ncopies; c++) {
        const struct mirror_copy *cp = &mf->copy[c];
        if (cp->degraded || !cp->opened || cp->stamp != MIRROR_REPLACED)
            continue;
        xd_errf(err, errlen,
                "mirror: %s is not the file its copy %s was kept for (the primary was deleted and made again, or replaced); refused rather than overwrite either: to keep the copy's data (%lld bytes), move it over the primary (mv) and remove any other copies; to keep the new primary, remove the copies",
                mf->copy[0].file->path, mirror_copy_path(mf, c), (long long)cp->size);
        return -ESTALE;
    }
    return 0;
}

/* What the copies not in sync are filled from: the primary, unless it is
 * degraded (it could not be filled from the newer copy, or another writer
 * of the file degraded it and writes the copies alone): then the newer
 * copy, or the first healthy one. Filled from a stale primary, they lost
 * that writer's acknowledged writes. */
static unsigned mirror_fill_source(const struct mirror_file *mf, unsigned newer)
{
    if (!mf->copy[0].degraded)
        return 0;
    return newer ? newer : (unsigned)mirror_first_healthy(mf);
}

/* After every copy is open: a copy stamped newer than the primary (the
 * primary missed writes it took, last time) fills the primary first; then
 * every copy not stamped in sync is filled from the primary. A read-only
 * open fills nothing: it reads from the newer copy, and leaves unknown
 * copies out. Then, before any write, the stamps go (or say "newer" where
 * the primary starts degraded: mirror_stamp_degraded). */
static int mirror_sync_copies(struct xd_layer *layer, struct mirror_file *mf, unsigned flags)
{
    struct mirror_layer *ml = layer->priv;
    bool writable = !(flags & XD_OPEN_READONLY);
    char why[XD_ERRLEN];
    unsigned newer = 0;
    if (writable)
        mirror_words_copies(mf);
    for (unsigned c = 1; c < mf->ncopies && !newer; c++)
        if (!mf->copy[c].degraded && mf->copy[c].stamp == MIRROR_NEWER)
            newer = c;
    if (newer && writable && !mf->copy[0].degraded) {
        int64_t size = mf->copy[newer].size;
        /* The fill moves the primary's mtime (and size) chunk by chunk, and
         * the "newer" stamp names them as they were: a process killed
         * mid-fill left a stamp that no longer matched, so the next open
         * filled the newer copy from the half-filled primary and lost the
         * fsynced writes only the copy held. The stamp names only the
         * primary's device and inode until the fill is done. */
        if (size > 0)
            mirror_stamp_filling(mf, newer);
        int rc = size > 0 ? mirror_fill(layer, mf, newer, 0, (uint64_t)size, why, sizeof(why)) : 0;
        if (rc == -ENOMEM)
            return rc;
        if (rc) /* the primary stays stale: serve from the newer copy */
            mirror_distrust(ml, mf, 0, why);
        else
            mf->copy[0].size = size;
    } else if (newer) {
        mirror_distrust(ml, mf, 0, "it missed writes another copy took (read-only: not filled)");
    }
    unsigned src = mirror_fill_source(mf, newer);
    for (unsigned c = 1; c < mf->ncopies; c++) {
        struct mirror_copy *cp = &mf->copy[c];
        if (cp->degraded || c == newer || c == src)
            continue;
        int64_t size = mf->copy[src].size;
        bool in_sync = cp->size == size &&
                       (size <= 0 || ((cp->stamp == MIRROR_IN_SYNC || mirror_kept_in_sync(mf, c)) &&
                                      !newer));
        if (in_sync)
            continue;
        if (!writable) {
            snprintf(why, sizeof(why), "not known to hold the primary's data (%lld bytes, the primary %lld; read-only: not filled)",
                     (long long)cp->size, (long long)size);
            mirror_distrust(ml, mf, c, why);
            continue;
        }
        int rc = mirror_fill(layer, mf, src, c, (uint64_t)size, why, sizeof(why));
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            mirror_distrust(ml, mf, c, why);
    }
    if (writable)
        mirror_words_in_sync(mf);
    for (unsigned c = 1; writable && !mf->copy[0].degraded && c < mf->ncopies; c++) {
        int e = mf->copy[c].opened ? mirror_stamp_clear(mf, c) : 0;
        if (e) {
            snprintf(why, sizeof(why), "cannot clear its sync stamp: %s", strerror(e));
            mirror_distrust(ml, mf, c, why);
        }
    }
    mirror_stamp_degraded(mf);
    return 0;
}

static void mirror_file_close(struct xd_layer *layer, struct xd_file *file);

/* The primary opened again, for writers' turns only (no byte is read or
 * written through it): none for a file opened read-only, or one this
 * process may not open for writing (then writers do not take turns). A
 * link at the name is followed only where the driver followed it (one of
 * the caller's or root's). */
static int mirror_turn_fd(const struct xd_file *file, unsigned flags)
{
    if (flags & XD_OPEN_READONLY)
        return -1;
    int fd = xd_open_regular(file->path, O_RDWR | O_NOFOLLOW);
    if (fd == -ELOOP)
        fd = xd_open_regular(file->path, O_RDWR);
    return fd < 0 ? -1 : fd;
}

/* The words the writers of the primary share (core/turns.c): a page of
 * /dev/shm named after the primary's device and inode, made by whoever
 * finds none (O_EXCL), used only when it is the caller's, and held while
 * used (a shared lock on its byte 0: xd_shm_open_held), so the last to
 * let go removes it and one left by writers killed is swept by the next
 * mirror made (mirror_open). Without it this
 * writer is never solo and cannot ask one to share: while a solo writer
 * (whose page it is) is at work, the open is refused (mirror_turns_join). */
static void mirror_words_open(struct mirror_file *mf)
{
    struct stat st, ws;
    void *map = MAP_FAILED;
    if (fstat(mf->turn_fd, &st))
        return;
    snprintf(mf->words_name, sizeof(mf->words_name), "/" MIRROR_WORDS_PREFIX "%llx-%llx",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    int fd = xd_shm_open_held(mf->words_name, MIRROR_WORDS_SIZE, MIRROR_WORDS_HOLD, &ws);
    if (fd < 0)
        return;
    map = mmap(NULL, MIRROR_WORDS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        xd_shm_release(fd, mf->words_name, MIRROR_WORDS_HOLD, ws.st_ino);
        close(fd);
        return;
    }
    mf->words = map;
    mf->words_fd = fd;
    mf->words_ino = ws.st_ino;
    mf->solo.wanted = map;
    mf->solo.solo_out = (uint32_t *)map + 1;
}

/* Presence, the words, then solo when alone or the solo writer asked to
 * share. A file system without OFD locks: no turns (turn_fd closed).
 * -EBUSY, said in err, when a solo writer is at work whose words this one
 * may not use (another user's page): it could not be asked to take turns. */
static int mirror_turns_join(struct mirror_layer *ml, struct mirror_file *mf, const char *path,
                             char *err, size_t errlen)
{
    mf->solo = (struct xd_turns_solo){.fd = mf->turn_fd, .presence_byte = MIRROR_PRESENCE,
                                      .solo_byte = MIRROR_SOLO};
    if (mf->turn_fd < 0)
        return 0;
    if (xd_turns_presence(&mf->solo)) {
        close(mf->turn_fd);
        mf->turn_fd = -1;
        return 0;
    }
    mirror_words_open(mf);
    int rc = xd_turns_solo_join(&mf->solo);
    mf->alone = mf->solo.on;
    mirror_writers_join(&mf->slot, mf->words, MIRROR_WORDS_SIZE / sizeof(uint32_t), mf->words_fd,
                        mf->alone);
    /* alone: what the words say was left by writers gone; a writer that
     * died beside those at work may have left a copy without its last
     * write: this one must not trust the copies they keep */
    if (mf->alone || mirror_writers_dead(&mf->slot))
        mirror_words_out_of_sync(mf);
    /* alone: the writers gone left what they degraded in the stamps (the
     * last close honoured the marks, a degrade removed the copy's stamp or
     * said "newer"), and this open's fill goes by those */
    if (mf->alone)
        mirror_members_reset(mf->words);
    if (rc == -EBUSY)
        xd_errf(err, errlen,
                "%s: enable_redundancy: another writer of it works alone, and its shared page "
                "/dev/shm%s is not this user's, so it cannot be asked to take turns (their "
                "writes would leave the copies different); allowed: open it once that writer "
                "has closed it, or as the page's owner",
                path, mf->words_name);
    ml->solo_files += mf->solo.on;
    return rc == -EBUSY ? rc : 0;
}

/* Is this device the primary's last writer? Its presence let go and an
 * exclusive one held until turn_fd closes (a writer opening meanwhile
 * waits), so what it does next is the last word. Without turns (a
 * read-only open, or no locks here) it cannot tell and says yes. */
static bool mirror_last_writer(const struct mirror_file *mf)
{
    return mf->turn_fd < 0 || xd_turns_last(&mf->solo);
}

/* The words' page let go (its last holder removes it, when the name still
 * holds it), and the turns' descriptor closed. */
static void mirror_turns_leave(struct mirror_file *mf)
{
    if (mf->words) {
        mirror_writers_leave(&mf->slot);
        munmap(mf->words, MIRROR_WORDS_SIZE);
        xd_shm_release(mf->words_fd, mf->words_name, MIRROR_WORDS_HOLD, mf->words_ino);
        close(mf->words_fd);
    }
    if (mf->turn_fd >= 0)
        close(mf->turn_fd); /* its locks go with it */
}

/* A primary with several names (hard links) would have copies per name:
 * writes through one name would leave the copies of another stale, and a
 * read the primary failed would be served from them. -EMLINK with one line. */
static int mirror_one_name(const struct xd_file *file, char *err, size_t errlen)
{
    struct stat st;
    return stat(file->path, &st) ? 0
                                 : xd_refuse_other_names("enable_redundancy", file->path, &st,
                                                         "its copies", err, errlen);
}

/* A mirror directory that holds the primary itself (the data file's own
 * directory) makes that copy the primary: a mistake in the config, refused
 * at open in one line (it ran with a copy fewer, said only as a degraded
 * copy). -EINVAL, or 0. */
static int mirror_copies_apart(const struct mirror_layer *ml, const struct mirror_file *mf,
                               char *err, size_t errlen)
{
    struct stat primary, copy;
    if (stat(mf->copy[0].file->path, &primary))
        return 0;
    for (unsigned c = 1; c < mf->ncopies; c++) {
        char *path = mirror_copy_name(ml, mf, c);
        bool same = path && !stat(path, &copy) && copy.st_dev == primary.st_dev &&
                    copy.st_ino == primary.st_ino;
        free(path);
        if (same) {
            xd_errf(err, errlen, "mirror_directories: %s holds the data file %s itself; allowed: directories other than the data file's",
                    ml->dirs[c], mf->copy[0].file->path);
            return -EINVAL;
        }
    }
    return 0;
}

/* A joiner that can use only members the writers at work degraded (the
 * others it cannot open) would write where none of them reads, and they
 * where it does not: refused in one line, -EIO. */
static int mirror_refuse_split(const struct mirror_file *mf, char *err, size_t errlen)
{
    if (!mf->split)
        return 0;
    xd_errf(err, errlen,
            "mirror: %s: the other writers of it degraded every copy this device can use (the others it cannot open); refused rather than write copies nobody else reads: open it once they have closed it",
            mf->copy[0].file->path);
    return -EIO;
}

static int mirror_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                            uint64_t size, char *err, size_t errlen)
{
    struct mirror_layer *ml = layer->priv;
    struct mirror_file *mf = calloc(1, sizeof(*mf));
    if (!mf)
        return -ENOMEM;
    int rc = xd_layer_file_open(layer->lower, file, flags, size, err, errlen);
    if (!rc && (rc = mirror_one_name(file, err, errlen)))
        xd_layer_file_close(layer->lower, file);
    if (rc) {
        free(mf);
        return rc;
    }
    mf->ncopies = ml->ncopies;
    for (unsigned c = 0; c < MIRROR_MAX_COPIES; c++)
        mf->copy[c].claim_fd = -1;
    mf->copy[0].file = file;
    mf->copy[0].opened = true;
    mf->copy[0].size = xd_layer_file_size(layer->lower, file);
    if (mirror_primary_id(mf, false, mf->primary_file, sizeof(mf->primary_file)))
        mf->primary_file[0] = '\0'; /* the stamps will name nothing */
    if ((rc = mirror_copies_apart(ml, mf, err, errlen))) {
        free(mf);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    mf->turn_fd = mirror_turn_fd(file, flags);
    if ((rc = mirror_turns_join(ml, mf, file->path, err, errlen))) {
        mirror_turns_leave(mf);
        free(mf);
        xd_layer_file_close(layer->lower, file);
        return rc;
    }
    file->priv[layer->level] = mf;
    for (unsigned c = 1; c < mf->ncopies; c++) {
        char why[XD_ERRLEN] = "";
        rc = mirror_open_copy(layer, mf, c, flags, why, sizeof(why));
        if (rc == -ENOMEM) {
            mirror_file_close(layer, file);
            return rc;
        }
        if (rc)
            mirror_distrust(ml, mf, c, why);
    }
    /* the primary too stays degraded once it was (its data is stale) */
    const struct mirror_degraded *before = mirror_degraded_before(ml, file->path);
    if (before)
        mirror_distrust(ml, mf, 0, before->why);
    mirror_adopt(ml, mf); /* before any fill: from and into what the others use */
    if ((rc = mirror_refuse_split(mf, err, errlen)) ||
        (rc = mirror_refuse_replaced(mf, err, errlen)) ||
        (rc = mirror_sync_copies(layer, mf, flags))) {
        /* a refused open (a copy kept for another file) or a fill that
         * failed leaves the copies unstamped: a "sync" stamp naming this
         * primary vouched for copies holding another file's data, and the
         * next open took them in sync without a word */
        mf->open_failed = true;
        mirror_file_close(layer, file);
        return rc;
    }
    return 0;
}

/* A clean close of a file opened for writing, by its last writer, stamps
 * the copies that hold the primary's data; when the primary itself missed
 * writes, the healthy copies say they are newer, and the next open fills
 * the primary. Another writer still at work leaves them as they are (no
 * stamp, or "newer"): its writes move the data on, and were it killed a
 * "sync" stamp could vouch for copies its last write left different. A stamp
 * must not outlive a power loss that the data it vouches for did not: the
 * data of the primary and the copy is made durable first, and the copy's
 * inode (the stamp) after. A copy whose fsync fails is not stamped. */
static void mirror_stamp_copies(struct xd_layer *layer, struct mirror_file *mf)
{
    if (mf->copy[0].file->flags & XD_OPEN_READONLY)
        return;
    /* what the other writers degraded, as if this one had: a copy one of
     * them degraded missed its writes (no "sync"), and a primary one of
     * them degraded missed them (the copies are "newer") */
    mirror_adopt(layer->priv, mf);
    bool newer = mf->copy[0].degraded;
    /* a writer killed beside this one may have written the primary and
     * not a copy (or the reverse): no copy is known in sync, and with no
     * stamp the next open fills them. "newer" stays: the copies took
     * writes the primary missed, and the next open fills the primary and
     * then the other copies from one of them, which leaves them alike. */
    if (!newer && mirror_writers_dead(&mf->slot))
        return;
    /* a writer with other copies had the file open: these missed its
     * writes, and no stamp lets the next open fill them */
    if (!newer && mirror_words_mixed(mf))
        return;
    if (!newer && mirror_sync_io(layer, mf, 0, XD_OP_FSYNC, NULL, 0, 0) < 0)
        return; /* the primary's data is not known durable: no copy is in sync */
    for (unsigned c = 1; c < mf->ncopies; c++) {
        if (!mf->copy[c].opened || mf->copy[c].degraded ||
            mirror_sync_io(layer, mf, c, XD_OP_FSYNC, NULL, 0, 0) < 0)
            continue;
        mirror_stamp_write(mf, c, newer ? "newer" : "sync");
        mirror_sync_io(layer, mf, c, XD_OP_FSYNC, NULL, 0, 0);
    }
}

static void mirror_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct mirror_file *mf = file->priv[layer->level];
    if (!mf)
        return;
    bool last = mirror_last_writer(mf);
    if (last && !mf->open_failed)
        mirror_stamp_copies(layer, mf);
    for (unsigned c = 1; c < mf->ncopies; c++) {
        struct xd_file *cf = mf->copy[c].file;
        if (!cf)
            continue;
        if (mf->copy[c].opened)
            xd_layer_file_close(layer->lower, cf);
        if (mf->copy[c].claim_fd >= 0)
            close(mf->copy[c].claim_fd);
        free(cf->path);
        free(cf);
    }
    mirror_turns_leave(mf);
    free(mf);
    file->priv[layer->level] = NULL;
    xd_layer_file_close(layer->lower, file);
}

/* --- reads ---------------------------------------------------------------- */

static int mirror_first_healthy(const struct mirror_file *mf)
{
    for (unsigned c = 0; c < mf->ncopies; c++)
        if (!mf->copy[c].degraded)
            return (int)c;
    return 0;
}

/* A read of copy bad failed with req->result: serve it from the other
 * healthy copies in turn, and write what one of them had back into bad. */
/* The bad copy rewritten with the r bytes read from a good one, holding
 * the range's turn from before that read (mirror_read_recover), so no
 * write of the range by another device lands between the read and the
 * repair (the bad copy would keep the older bytes). A turn that could not
 * be had (-EDEADLK: asked for inside a drain) leaves the copy degraded
 * rather than repaired from bytes that may be stale. */
static void mirror_repair(struct xd_layer *layer, struct mirror_file *mf, unsigned bad,
                          struct xd_req *req, int64_t r, int turn)
{
    struct mirror_layer *ml = layer->priv;
    int64_t w = turn ? turn
                     : mirror_sync_io(layer, mf, bad, XD_OP_WRITE, req->buf, (uint64_t)r, req->off);
    if (w == r) {
        ml->count.repairs++;
        return;
    }
    char why[96];
    snprintf(why, sizeof(why), "repair failed: %s", strerror(w < 0 ? (int)-w : EIO));
    mirror_degrade(ml, mf, bad, mirror_copy_path(mf, bad), why);
}

static void mirror_read_recover(struct xd_layer *layer, struct mirror_file *mf, unsigned bad,
                                struct xd_req *req)
{
    struct mirror_layer *ml = layer->priv;
    int64_t first = req->result;
    uint8_t kind;
    mirror_adopt(ml, mf); /* no other copy another writer degraded serves it */
    ml->count.read_errors++;
    mirror_failed(ml, mf, bad, "read failed", first);
    int turn = mirror_range_take(layer, mf, req->off, req->len, &kind);
    for (unsigned c = 0; c < mf->ncopies; c++) {
        if (c == bad || mf->copy[c].degraded)
            continue;
        int64_t r = mirror_sync_io(layer, mf, c, XD_OP_READ, req->buf, req->len, req->off);
        ml->count.reads[c]++;
        if (r < 0) {
            ml->count.read_errors++;
            mirror_failed(ml, mf, c, "read failed", r);
            continue;
        }
        mf->copy[c].errors = 0;
        req->result = r;
        if (!mf->copy[bad].degraded && r)
            mirror_repair(layer, mf, bad, req, r, turn);
        mirror_range_give(mf, req->off, req->len, kind);
        return;
    }
    mirror_range_give(mf, req->off, req->len, kind);
    snprintf(ml->error, sizeof(ml->error),
             "mirror: no copy of %s could be read (%llu bytes at %llu): %s",
             mirror_copy_path(mf, 0), (unsigned long long)req->len, (unsigned long long)req->off,
             strerror((int)-first));
}

/* A read of copy c came back as r: the caller's result. */
static void mirror_read_done(struct xd_layer *layer, struct mirror_file *mf, unsigned c,
                             struct xd_req *req, int64_t r)
{
    struct mirror_layer *ml = layer->priv;
    ml->count.reads[c]++;
    req->result = r;
    if (r >= 0)
        mf->copy[c].errors = 0;
    else
        mirror_read_recover(layer, mf, c, req);
}

/* --- fan-out of writes, trims, fsyncs ------------------------------------ */

/* The outcome of one copy's part of req. */
static void mirror_part_done(struct mirror_file *mf, struct mirror_req *ctx, struct xd_req *req,
                             unsigned c, int64_t r)
{
    if (r < 0) {
        ctx->failed |= (uint8_t)(1u << c);
        if (!ctx->err)
            ctx->err = (int32_t)r;
        return;
    }
    ctx->ok |= (uint8_t)(1u << c);
    mf->copy[c].errors = 0;
    req->result = r;
}

static const char *const mirror_op_names[XD_OP_COUNT] = {"read", "write", "trim", "fsync",
                                                         "fdatasync"};

/* req took no copy in use (ctx->ok): it failed, as on a plain file. */
static bool mirror_fanout_missed(struct mirror_layer *ml, const struct mirror_file *mf,
                                 struct xd_req *req, const struct mirror_req *ctx)
{
    unsigned in_use = 0;
    for (unsigned c = 0; c < mf->ncopies; c++)
        in_use |= mf->copy[c].degraded ? 0 : 1u << c;
    if (ctx->ok & in_use)
        return false;
    req->result = ctx->err;
    snprintf(ml->error, sizeof(ml->error), "mirror: every copy %sof %s failed a %s at %llu: %s",
             ctx->ok ? "in use " : "", mirror_copy_path(mf, 0), mirror_op_names[req->op],
             (unsigned long long)req->off, strerror(-ctx->err));
    return true;
}

/* Every copy's part of req is done: its result, and failed copies degraded.
 * A part that succeeded on a copy degraded since it went out (a read's
 * repair of that copy failed meanwhile, or another writer degraded it) is
 * on no copy that is read: when only such parts succeeded, the request
 * failed, as when every copy failed (the retry layer above sends it again,
 * to the copies in use). Reported done, the copies still read lacked it,
 * and the last of them is never degraded: a read returned the bytes from
 * before the write. Looked at again after the degrades: another writer
 * degrading the members this one took (at once, so that this one's mark
 * was refused, mirror_members.c) leaves the request on none in use. */
static void mirror_fanout_done(struct xd_layer *layer, struct mirror_file *mf, struct xd_req *req)
{
    struct mirror_layer *ml = layer->priv;
    struct mirror_req *ctx = mirror_ctx(layer, req);
    if (!ctx->failed)
        return;
    ml->count.write_errors += (uint64_t)__builtin_popcount(ctx->failed);
    mirror_adopt(ml, mf);
    if (mirror_fanout_missed(ml, mf, req, ctx))
        return;
    for (unsigned c = 0; c < mf->ncopies; c++) {
        if (!(ctx->failed & (1u << c)))
            continue;
        char why[96];
        mf->copy[c].errors++;
        snprintf(why, sizeof(why), "%s failed: %s", mirror_op_names[req->op],
                 strerror(-ctx->err));
        mirror_degrade(ml, mf, c, mirror_copy_path(mf, c), why);
    }
    mirror_adopt(ml, mf);
    mirror_fanout_missed(ml, mf, req, ctx);
}

/* --- writers' turns -------------------------------------------------------
 * Two devices writing the same bytes at once (fio jobs sharing a file)
 * send each write to every copy; the copies' writes land in no set order,
 * so copy 1 could keep one job's data and copy 2 the other's: once the
 * primary failed, a block read as an older write than the one read
 * before. So a write or trim holds its range's turn (an exclusive OFD lock
 * on the primary, core/turns.c) from before its first copy's write goes
 * down until its last copy's is done, and one of the device's own that
 * overlaps a write still out first lets it land (mirror_drain). */

static bool mirror_flight_overlaps(const struct mirror_layer *ml, const struct xd_file *file,
                                   uint64_t off, uint64_t len)
{
    for (unsigned i = 0; i < ml->flight.n; i++) {
        const struct xd_req *r = ml->flight.at[i];
        if (r->file == file && r->off < off + len && off < r->off + r->len)
            return true;
    }
    return false;
}

/* The turn of [off, off+len) of mf taken: *kind says how (solo, or a
 * lock). 0 or -errno. */
static int mirror_range_take(struct xd_layer *layer, struct mirror_file *mf, uint64_t off,
                             uint64_t len, uint8_t *kind)
{
    struct mirror_layer *ml = layer->priv;
    const struct xd_file *file = mf->copy[0].file;
    *kind = MIRROR_TURN_NONE;
    if (mf->turn_fd < 0 || !len)
        return 0;
    xd_turns_owner(&ml->turns);
    int rc = mirror_flight_overlaps(ml, file, off, len) ? mirror_drain(layer) : 0;
    if (rc)
        return rc;
    bool was_solo = mf->solo.on;
    if (xd_turns_solo_enter(&mf->solo, layer, mirror_drain)) {
        ml->solo_regained += !was_solo; /* every other writer closed */
        *kind = MIRROR_TURN_SOLO;
        return 0;
    }
    bool waited = false;
    rc = xd_turns_lock(mf->turn_fd, MIRROR_TURN_BASE + (off_t)off, (off_t)len, &waited);
    ml->turn_waits += waited;
    *kind = rc ? MIRROR_TURN_NONE : MIRROR_TURN_LOCK;
    return rc;
}

static void mirror_range_give(struct mirror_file *mf, uint64_t off, uint64_t len, uint8_t kind)
{
    if (kind == MIRROR_TURN_SOLO)
        xd_turns_solo_done(&mf->solo);
    else if (kind == MIRROR_TURN_LOCK)
        xd_turns_unlock(mf->turn_fd, MIRROR_TURN_BASE + (off_t)off, (off_t)len);
}

/* req's turn: taken (ctx->turn) for a write or trim, with room made first
 * on the list of writes out (it joins it if it goes out). 0 or -errno. */
static int mirror_turn_take(struct xd_layer *layer, struct mirror_file *mf, struct xd_req *req)
{
    struct mirror_layer *ml = layer->priv;
    struct mirror_req *ctx = mirror_ctx(layer, req);
    uint8_t kind = MIRROR_TURN_NONE;
    ctx->turn = MIRROR_TURN_NONE;
    if (req->op != XD_OP_WRITE && req->op != XD_OP_TRIM)
        return 0;
    int rc = xd_req_list_room(&ml->flight, 1); /* made before it goes */
    if (!rc)
        rc = mirror_range_take(layer, mf, req->off, req->len, &kind);
    ctx->turn = kind & 3u;
    return rc;
}

/* req's turn let go (it is done, or it was refused before it went). */
static void mirror_turn_give(struct xd_layer *layer, struct xd_req *req)
{
    struct mirror_layer *ml = layer->priv;
    struct mirror_req *ctx = mirror_ctx(layer, req);
    if (!ctx->turn)
        return;
    xd_req_list_remove(&ml->flight, req);
    mirror_range_give(req->file->priv[layer->level], req->off, req->len, ctx->turn);
    ctx->turn = MIRROR_TURN_NONE;
}

/* An fsync makes the stamps of a degraded primary's copies durable with
 * their data, naming the primary as it is now. */
static void mirror_before_flush(const struct mirror_file *mf, const struct xd_req *req)
{
    if (req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC)
        mirror_stamp_degraded(mf);
}

static int mirror_submit_sync(struct xd_layer *layer, struct mirror_file *mf, struct xd_req *req)
{
    struct mirror_req *ctx = mirror_ctx(layer, req);
    mirror_adopt(layer->priv, mf);
    if (req->op == XD_OP_READ) {
        unsigned c = (unsigned)mirror_first_healthy(mf);
        int64_t r = mirror_sync_io(layer, mf, c, req->op, req->buf, req->len, req->off);
        mirror_read_done(layer, mf, c, req, r);
        return XD_DONE;
    }
    *ctx = (struct mirror_req){0};
    int rc = mirror_turn_take(layer, mf, req);
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    mirror_before_flush(mf, req);
    for (unsigned c = 0; c < mf->ncopies; c++)
        if (!mf->copy[c].degraded)
            mirror_part_done(mf, ctx, req, c,
                             mirror_sync_io(layer, mf, c, req->op, req->buf, req->len, req->off));
    mirror_fanout_done(layer, mf, req);
    mirror_turn_give(layer, req);
    return XD_DONE;
}

/* --- asynchronous requests ------------------------------------------------ */

/* A sub-request finished: the caller's request when it was its last. */
static struct xd_req *mirror_sub_done(struct xd_layer *layer, struct mirror_sub *s)
{
    struct mirror_layer *ml = layer->priv;
    struct xd_req *req = s->parent;
    struct mirror_file *mf = req->file->priv[layer->level];
    struct mirror_req *ctx = mirror_ctx(layer, req);
    unsigned c = s->copy;
    int64_t r = s->req.result;
    s->next_free = ml->free;
    ml->free = s;
    if (req->op == XD_OP_READ) {
        mirror_read_done(layer, mf, c, req, r);
        return req;
    }
    mirror_part_done(mf, ctx, req, c, r);
    if (--ctx->pending)
        return NULL;
    mirror_fanout_done(layer, mf, req);
    mirror_turn_give(layer, req);
    return req;
}

static int mirror_submit(struct xd_layer *layer, struct xd_req *req)
{
    struct mirror_layer *ml = layer->priv;
    struct mirror_file *mf = req->file->priv[layer->level];
    if (xd_req_is_sync(req))
        return mirror_submit_sync(layer, mf, req);
    struct mirror_req *ctx = mirror_ctx(layer, req);
    unsigned targets = 0;
    mirror_adopt(ml, mf); /* what another writer degraded: the one shared load per request */
    if (req->op == XD_OP_READ)
        targets = 1u << mirror_first_healthy(mf);
    else
        for (unsigned c = 0; c < mf->ncopies; c++)
            targets |= mf->copy[c].degraded ? 0 : 1u << c;
    unsigned n = (unsigned)__builtin_popcount(targets);
    unsigned have = 0;
    for (struct mirror_sub *f = ml->free; f && have < n; f = f->next_free)
        have++;
    if (have < n)
        return -EBUSY; /* the pool is sized for queue_entries requests to every copy */
    struct mirror_sub *s;
    *ctx = (struct mirror_req){.pending = (uint8_t)(n + 1)}; /* + 1: not done before the last is sent */
    int taken = mirror_turn_take(layer, mf, req);
    if (taken) {
        req->result = taken;
        return XD_DONE;
    }
    mirror_before_flush(mf, req);
    bool sent = false;
    struct xd_req *done = NULL;
    for (unsigned c = 0; c < mf->ncopies; c++) {
        if (!(targets & (1u << c)))
            continue;
        s = ml->free;
        ml->free = s->next_free;
        s->req = (struct xd_req){.op = req->op, .file = mf->copy[c].file, .buf = req->buf,
                                 .len = req->len, .off = req->off};
        s->parent = req;
        s->copy = c;
        ctx->copy = (uint8_t)c;
        int rc = xd_layer_submit(layer->lower, &s->req);
        if (rc == -EBUSY && !sent) { /* nothing sent yet: the caller's request comes again */
            s->next_free = ml->free;
            ml->free = s;
            mirror_turn_give(layer, req);
            return -EBUSY;
        }
        if (rc == -EBUSY) { /* the others are in flight: send this one inline */
            xd_req_set_flags(&s->req, XD_REQ_SYNC);
            s->req.result = 0;
            rc = xd_layer_submit(layer->lower, &s->req);
            if (rc < 0)
                s->req.result = rc;
            rc = XD_DONE;
        }
        sent = true;
        if (rc == XD_DONE)
            done = mirror_sub_done(layer, s);
    }
    if (req->op == XD_OP_READ)
        return done ? XD_DONE : XD_QUEUED;
    if (--ctx->pending) {
        if (ctx->turn)
            xd_req_list_add(&ml->flight, req); /* mirror_turn_take made room */
        return XD_QUEUED;
    }
    mirror_fanout_done(layer, mf, req);
    mirror_turn_give(layer, req);
    return XD_DONE;
}

/* What the layer below completed, n of them at done[from]: each a
 * sub-request of this layer; the caller's requests they finished are
 * closed up from done[from] (never more than came in). Their count.
 * Failed reads go last: each one's repair takes its range's turn, which
 * waits for the writes out over the range to land (mirror_drain), and a
 * write whose completion is in this batch has landed, though only once
 * counted here; the drain would wait below for it for ever. */
static unsigned mirror_collect(struct xd_layer *layer, struct xd_req **done, unsigned from,
                               unsigned n)
{
    unsigned out = from;
    struct mirror_sub *failed = NULL, **tail = &failed;
    for (unsigned i = from; i < from + n; i++) {
        struct mirror_sub *s = (struct mirror_sub *)(void *)done[i];
        if (s->parent->op == XD_OP_READ && s->req.result < 0) {
            s->next_free = NULL; /* free only once mirror_sub_done has it */
            *tail = s;
            tail = &s->next_free;
            continue;
        }
        struct xd_req *req = mirror_sub_done(layer, s);
        if (req)
            done[out++] = req;
    }
    while (failed) {
        struct mirror_sub *s = failed;
        failed = s->next_free;
        struct xd_req *req = mirror_sub_done(layer, s);
        if (req)
            done[out++] = req;
    }
    return out - from;
}

/* Every write of this device holding a turn lands: sent, reaped (with
 * whatever else completes) and held for the caller's next reap. 0 or
 * -errno (the turn that needed them then fails rather than wait on
 * itself). */
static int mirror_drain(struct xd_layer *layer)
{
    struct mirror_layer *ml = layer->priv;
    struct xd_req_list *held = &ml->held;
    if (!ml->flight.n)
        return 0;
    if (ml->draining) /* a completion handled here wants its turn (a repair) */
        return -EDEADLK;
    ml->draining = true;
    int rc = xd_layer_commit(layer->lower);
    while (rc >= 0 && ml->flight.n) {
        if ((rc = xd_req_list_room(held, MIRROR_DRAIN_BATCH)))
            break;
        rc = xd_turns_drain_reap(layer->lower, held->at + held->n, MIRROR_DRAIN_BATCH);
        if (rc > 0)
            held->n += mirror_collect(layer, held->at, held->n, (unsigned)rc);
    }
    ml->draining = false;
    return rc < 0 ? rc : 0;
}

/* Completions below are all sub-requests of this layer; each caller's
 * request comes back once, with its last: first those a drain held. */
static int mirror_reap(struct xd_layer *layer, struct xd_req **done, unsigned min, unsigned max,
                       const struct timespec *timeout)
{
    unsigned n = xd_req_list_take(&((struct mirror_layer *)layer->priv)->held, done, max);
    if (n && (n >= min || n == max))
        return (int)n;
    for (;;) {
        unsigned want = min > n ? min - n : 0;
        int got = xd_layer_reap(layer->lower, done + n, want, max - n, timeout);
        if (got < 0)
            return n ? (int)n : got;
        n += mirror_collect(layer, done, n, (unsigned)got);
        /* enough, or the layer below gave what it had before the timeout */
        if (n >= min || n >= max || (unsigned)got < want || !got)
            return (int)n;
    }
}

/* --- hooks ---------------------------------------------------------------- */

static int mirror_invalidate(struct xd_layer *layer, struct xd_file *file)
{
    struct mirror_file *mf = file->priv[layer->level];
    for (unsigned c = 1; mf && c < mf->ncopies; c++)
        if (mf->copy[c].file && !mf->copy[c].degraded)
            xd_chain_invalidate(layer->lower, mf->copy[c].file);
    return 0; /* the primary: the layers below, after this */
}

static const char *mirror_notice(struct xd_layer *layer)
{
    struct mirror_layer *ml = layer->priv;
    return ml->notice[0] ? ml->notice : NULL;
}

static int mirror_take_error(struct xd_layer *layer, char line[XD_ERRLEN])
{
    struct mirror_layer *ml = layer->priv;
    if (!ml->error[0])
        return -ENOENT;
    snprintf(line, XD_ERRLEN, "%s", ml->error);
    ml->error[0] = 0;
    return 0;
}

static void mirror_stats_json(struct xd_layer *layer, struct xd_json *j)
{
    struct mirror_layer *ml = layer->priv;
    xd_json_object_begin(j, "mirror");
    xd_json_uint(j, "copies", ml->ncopies);
    xd_json_uint(j, "degraded", ml->ndegraded);
    xd_json_array_begin(j, "degraded_copies");
    for (const struct mirror_degraded *d = ml->degraded; d; d = d->next) {
        xd_json_object_begin(j, NULL);
        xd_json_uint(j, "copy", d->copy);
        xd_json_string(j, "path", d->path);
        xd_json_uint(j, "errors", d->errors);
        xd_json_string(j, "why", d->why);
        xd_json_object_end(j);
    }
    xd_json_array_end(j);
    xd_json_uint(j, "repairs", ml->count.repairs);
    xd_json_array_begin(j, "reads_per_copy");
    for (unsigned c = 0; c < ml->ncopies; c++)
        xd_json_uint(j, NULL, ml->count.reads[c]);
    xd_json_array_end(j);
    xd_json_uint(j, "write_errors", ml->count.write_errors);
    xd_json_uint(j, "read_errors", ml->count.read_errors);
    xd_json_uint(j, "filled_bytes", ml->count.filled_bytes);
    xd_json_uint(j, "turn_waits", ml->turn_waits);
    xd_json_uint(j, "solo_files", ml->solo_files);
    xd_json_uint(j, "solo_regained", ml->solo_regained);
    xd_json_object_end(j);
}

/* --- removal (xd_unlink) --------------------------------------------------- */

/* Is the copy at copy_path the primary's: claimed for it now (a device of
 * it has the file open) and by no other, or, unclaimed, stamped with its
 * device and inode? A same-named primary elsewhere may own the copy. */
static bool mirror_copy_is_of(const char *copy_path, const struct stat *primary)
{
    int fd = xd_open_regular(copy_path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool own, other;
    mirror_claims_on(fd, mirror_claim_byte(primary), &own, &other);
    close(fd);
    if (other)
        return false;
    if (own)
        return true;
    char stamp[MIRROR_STAMP_MAX], want[48];
    ssize_t n = lgetxattr(copy_path, MIRROR_STAMP_XATTR, stamp, sizeof(stamp) - 1);
    const char *id = n > 0 ? (stamp[n] = 0, strchr(stamp, ' ')) : NULL;
    snprintf(want, sizeof(want), "%llu:%llu:", (unsigned long long)primary->st_dev,
             (unsigned long long)primary->st_ino);
    return id && !strncmp(id + 1, want, strlen(want));
}

/* The primary at path is being removed (xd_unlink): its copies go too,
 * with what the layers below keep for each (a sidecar), where they are
 * this primary's (mirror_copy_is_of); any other copy stays. */
static int mirror_unlink_copies(struct xd_layer *layer, const char *path, const char *bottom,
                                char *err, size_t errlen)
{
    (void)bottom;
    struct mirror_layer *ml = layer->priv;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    struct stat primary;
    if (stat(path, &primary))
        return 0; /* gone already: nothing says which copies were its */
    int removed = 0, failed = 0;
    for (unsigned c = 1; c < ml->ncopies; c++) {
        char *copy = NULL, line[XD_ERRLEN] = "";
        if (asprintf(&copy, "%s/%s", ml->dirs[c], name) < 0)
            return -ENOMEM;
        if (mirror_copy_is_of(copy, &primary)) {
            int rc = xd_chain_unlink(layer->lower, copy, false, line, sizeof(line));
            xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
            rc = xd_unlink_own(copy);
            xd_errf(line, sizeof(line), "%s: cannot remove the mirror copy of %s: %s", copy,
                    path, strerror(rc < 0 ? -rc : 0));
            xd_unlink_tally(rc, line, &removed, &failed, err, errlen);
        }
        free(copy);
    }
    return failed ? failed : removed;
}

const struct xd_ops xd_mirror_ops = {
    .version = XD_OPS_VERSION,
    .name = "mirror",
    .req_ctx_size = sizeof(struct mirror_req),
    .open = mirror_open,
    .close = mirror_close,
    .file_open = mirror_file_open,
    .file_close = mirror_file_close,
    .submit = mirror_submit,
    .reap = mirror_reap,
    .invalidate = mirror_invalidate,
    .notice = mirror_notice,
    .take_error = mirror_take_error,
    .stats_json = mirror_stats_json,
    .unlink = mirror_unlink_copies,
};
