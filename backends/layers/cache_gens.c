/* cache_gens.c - the cache's coherence with other processes: a table of
 * write generations per file, shared through /dev/shm by every process
 * whose cache holds the file, so a block one process cached is not served
 * after another process rewrote it.
 *
 * The table: a page of words for write-back (below), then GENS_SLOTS
 * pairs of counters (started, ended), one pair per 4 KiB unit of the file (unit mod GENS_SLOTS: a file over 4 GiB shares
 * pairs, which only makes blocks look rewritten when they were not). Every
 * write or trim through a cache, in any process, adds 1 to `started` of the
 * units it touches before it goes down and 1 to `ended` once it completed
 * (cache_gens_write_begin/end). A block's generation is the sum of its
 * units' `started`:
 *   - a read may fill the cache only if no write was out on its units when
 *     it went down (started == ended) and none started before it completed
 *     (the generation unchanged); the block keeps that generation;
 *   - a hit serves a clean block only while its generation is still the
 *     file's (one load for a 4 KiB block), else it is a miss and the block
 *     leaves;
 *   - a write stores its own data only if it was the only write out on its
 *     units from start to end (their counts moved by exactly its own).
 * Counters only grow (32 bits, wrapping: a false match needs 2^32 writes
 * of one unit between a fill and a hit). A writer killed between its two
 * adds leaves started > ended: no process caches those units again until
 * every process has closed the file and the table is made anew (safe, only
 * slower).
 *
 * Sharing: the object is /dev/shm/xdevice-cache-DEV-INO-VIEW, made with
 * O_EXCL by whoever finds none, used only when it is the caller's (a table
 * another user owns could say blocks are current when they are not: the
 * file is then not cached in this process, and the device's notice says
 * why). Each process holds a shared OFD lock on its byte 0 while it uses
 * it; the last to let go (an exclusive lock taken at once) removes it. A
 * process that opened a name being removed finds its object unlinked once
 * its lock is granted and opens again. Tables left by processes killed
 * (no lock held on them) are removed when the next cache is made.
 * Writes by programs that do not go through an xdevice cache are not seen
 * (no userspace cache can see them). Write-back keeps dirty blocks only
 * while its process is the file's only user ("write-back across
 * processes" below). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "../core/turns.h"
#include "cache_internal.h"

#define GENS_BYTES (GENS_HEAD + (size_t)GENS_SLOTS * sizeof(struct gens_slot))
#define GENS_PRESENCE 0 /* every user, shared (its last user removes the table) */
#define GENS_SOLO 1     /* the only user at its open, exclusive: write-back allowed */
#define GENS_PREFIX "xdevice-cache-"

/* The caller's tables nobody uses any more (each new cache: a process's
 * first, or a forked child's own). */
void cache_gens_sweep(void)
{
    xd_shm_sweep(GENS_PREFIX, GENS_PRESENCE);
}

/* Open (or make) the table called name and hold it (a shared lock on
 * byte 0): its descriptor, or -errno with why said. Whose it is is known
 * before any wait on it (another user's could hold a lock for ever). */
static int gens_open_shared(const char *name, char *why, size_t whylen)
{
    struct stat st;
    int fd = xd_shm_open_held(name, (off_t)GENS_BYTES, GENS_PRESENCE, &st);
    if (fd == -EPERM)
        snprintf(why, whylen, "/dev/shm%s: another user's (or not a file)", name);
    else if (fd == -EAGAIN)
        snprintf(why, whylen, "/dev/shm%s: removed and made again %u times while opening", name,
                 XD_SHM_OPEN_TRIES);
    else if (fd < 0)
        snprintf(why, whylen, "/dev/shm%s: %s", name, strerror(-fd));
    return fd;
}

/* The table mapped at map: its words and slots, and the solo protocol's
 * view of them (fd -1: a private table, whose only user is solo). */
static void gens_place(struct cache_gens *g, void *map, int fd)
{
    g->map = map;
    g->slot = (struct gens_slot *)(void *)((char *)map + GENS_HEAD);
    g->fd = fd;
    g->solo = (struct xd_turns_solo){.fd = fd, .presence_byte = GENS_PRESENCE,
                                     .solo_byte = GENS_SOLO, .wanted = map,
                                     .solo_out = (uint32_t *)map + 1, .on = fd < 0};
}

int cache_gens_open(struct cache_gens *g, dev_t dev, ino_t ino, unsigned view, bool named,
                    char *why, size_t whylen)
{
    void *map;
    *g = (struct cache_gens){.fd = -1};
    if (!named) { /* a file no other process can name: its table is ours alone */
        map = mmap(NULL, GENS_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) {
            snprintf(why, whylen, "its generation table: %s", strerror(errno));
            return -ENOMEM;
        }
        gens_place(g, map, -1);
        return 0;
    }
    snprintf(g->name, sizeof(g->name), "/" GENS_PREFIX "%llx-%llx-%u", (unsigned long long)dev,
             (unsigned long long)ino, view);
    int fd = gens_open_shared(g->name, why, whylen);
    if (fd < 0)
        return fd;
    map = mmap(NULL, GENS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        snprintf(why, whylen, "/dev/shm%s: %s", g->name, strerror(e));
        close(fd);
        return -e;
    }
    struct stat st;
    g->ino = fstat(fd, &st) ? 0 : st.st_ino;
    gens_place(g, map, fd);
    /* alone: solo (write-back may keep blocks); else a solo user's dirty
     * blocks are waited for (its next write sees `wanted` and writes
     * through while others are there) */
    int rc = xd_turns_solo_join(&g->solo);
    if (rc) {
        snprintf(why, whylen, "/dev/shm%s: waiting for another process's write-back: %s",
                 g->name, strerror(-rc));
        cache_gens_close(g);
    }
    return rc;
}

/* The last user removes the table, when the name still holds the one it used. */
void cache_gens_close(struct cache_gens *g)
{
    if (!g->slot)
        return;
    munmap(g->map, GENS_BYTES);
    g->slot = NULL;
    g->map = NULL;
    g->solo = (struct xd_turns_solo){.fd = -1};
    if (g->fd < 0)
        return;
    xd_shm_release(g->fd, g->name, GENS_PRESENCE, g->ino);
    close(g->fd); /* its locks go with it */
    g->fd = -1;
}

/* --- write-back across processes ---------------------------------------------- */

/* A write-back cache keeps blocks the file does not have yet, so it may
 * only while its process is the file's only user: another process would
 * read the file without them, or write a block that the later write-back
 * of this one's copy would overwrite. The first user is solo; a later one
 * sets `wanted` and waits while the solo user holds dirty blocks of the
 * file (their count is the shared word ident_dirty_add keeps). The solo
 * user adds to that count before it loads `wanted` (cache_gens_asked,
 * after each write it keeps), the newcomer stores `wanted` before it
 * loads the count, both sequentially consistent: either the newcomer
 * waits for that write, or the writer sees `wanted` and writes its
 * blocks back before its write completes (cache_writeback.c,
 * cache_share_file), and writes through while others are there
 * (`shared`; cache_regain_file once they have gone). A solo
 * user killed lets its lock go: nobody waits for its count. */
bool cache_gens_asked(const struct cache_gens *g)
{
    return g->solo.wanted && __atomic_load_n(g->solo.wanted, __ATOMIC_SEQ_CST);
}

/* Its dirty blocks written back: the solo lock goes, so a newcomer waits
 * no more (it may be let go more than once). */
void cache_gens_share(struct cache_gens *g)
{
    if (g->fd >= 0)
        xd_turns_fcntl(g->fd, F_OFD_SETLK, F_UNLCK, GENS_SOLO, 1);
}

/* --- the data path's side --------------------------------------------------- */

/* Whether no write is out on units u0..u1 now; *total their started counts
 * added. A unit's started is loaded before its ended: a write that began
 * and ended between the two makes them differ, so equal means settled. */
static bool gens_settled(const struct cache_gens *g, uint64_t u0, uint64_t u1, uint32_t *total)
{
    bool settled = true;
    uint32_t sum = 0;
    for (uint64_t u = u0; u <= u1; u++) {
        const struct gens_slot *sl = gens_at(g, u);
        uint32_t started = __atomic_load_n(&sl->started, __ATOMIC_SEQ_CST);
        settled &= __atomic_load_n(&sl->ended, __ATOMIC_SEQ_CST) == started;
        sum += started;
    }
    *total = sum;
    return settled;
}

/* A read of blocks first..last goes down: it may fill them only if no
 * write is out on them now (else what it reads may be half of one). */
void cache_gens_read_begin(const struct cache *c, const struct cache_gens *g, uint64_t first,
                           uint64_t last, struct cache_req *r)
{
    uint64_t u0, u1;
    gens_units(c, first, last, &u0, &u1);
    r->storable = gens_settled(g, u0, u1, &r->gen);
}

/* A write or trim of blocks first..last goes down: counted as started on
 * their units, after noting whether another was out on them. */
void cache_gens_write_begin(const struct cache *c, const struct cache_gens *g, uint64_t first,
                            uint64_t last, struct cache_req *r)
{
    uint64_t u0, u1;
    gens_units(c, first, last, &u0, &u1);
    r->storable = gens_settled(g, u0, u1, &r->gen);
    for (uint64_t u = u0; u <= u1; u++)
        __atomic_fetch_add(&gens_at(g, u)->started, 1, __ATOMIC_SEQ_CST);
}

/* It completed (its data is in the file for every reader): counted as
 * ended. Returns how much it moved the blocks' generation (its units). */
uint32_t cache_gens_write_end(const struct cache *c, const struct cache_gens *g, uint64_t first,
                              uint64_t last)
{
    uint64_t u0, u1;
    gens_units(c, first, last, &u0, &u1);
    for (uint64_t u = u0; u <= u1; u++)
        __atomic_fetch_add(&gens_at(g, u)->ended, 1, __ATOMIC_SEQ_CST);
    return (uint32_t)(u1 - u0 + 1);
}

/* The generations of blocks b..b+n-1 (n <= GENS_BATCH, inside first..last)
 * into gen[], for storing them with data a request of first..last noted in
 * r carries; false when that data may not be the file's: another write was
 * out when it went down, or blocks first..last moved by other than `moved`
 * (its own writes: 0 for a read) since, or a write is out on them now. The
 * blocks' generations are loaded first and the whole range checked after,
 * so they are the ones of an instant at which nothing else had started. */
bool cache_gens_blocks(const struct cache *c, const struct cache_gens *g, uint64_t first,
                       uint64_t last, const struct cache_req *r, uint32_t moved, uint64_t b,
                       unsigned n, uint32_t *gen)
{
    uint64_t u0, u1;
    uint32_t total;
    if (!r->storable)
        return false;
    for (unsigned i = 0; i < n; i++)
        gen[i] = gens_of_block(c, g, b + i);
    gens_units(c, first, last, &u0, &u1);
    return gens_settled(g, u0, u1, &total) && total == r->gen + moved;
}
