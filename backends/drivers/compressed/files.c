/* files.c - the compressed driver's container files: create or grow one
 * (xd_compress_prepare, before fio lays files out), read its logical size,
 * open it (header, length and map checks, repair of stale slots when it is
 * the sole opener, the read-only mapping), close it, and keep each path's
 * space figures between opens. Separate from the data path because none of
 * it runs per request, except growth and the size refresh; the bytes of
 * the format itself are container.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/fdio.h"
#include "../../core/fileutil.h"
#include "compressed.h"

static _Atomic uint64_t next_file_id = 1;

/* --- header ------------------------------------------------------------------ */

static int header_read(int fd, const char *path, struct xd_ctr_header *h, char *err, size_t errlen)
{
    uint8_t buf[XD_CTR_HEADER_SIZE];
    char why[200];
    int64_t n = xd_pread_full(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        xd_errf(err, errlen, "%s: cannot read the container header: %s", path, strerror((int)-n));
        return (int)n;
    }
    if (xd_ctr_header_decode(buf, (size_t)n, h, why, sizeof(why))) {
        xd_errf(err, errlen, "%s: %s", path, why);
        return -EINVAL;
    }
    return 0;
}

static int header_write(int fd, const char *path, const struct xd_ctr_header *h, char *err,
                        size_t errlen)
{
    uint8_t buf[XD_CTR_HEADER_SIZE];
    xd_ctr_header_encode(h, buf);
    int64_t n = xd_pwrite_full(fd, buf, sizeof(buf), 0);
    if (n < 0) {
        xd_errf(err, errlen, "%s: cannot write the container header: %s", path, strerror((int)-n));
        return (int)n;
    }
    return 0;
}

/* The file must reach the end of the last chunk's slots; less is a
 * truncated container (reads would come back short or as zeros). */
static int check_not_truncated(int fd, const char *path, const struct xd_ctr_header *h, char *err,
                               size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t need = xd_ctr_file_size(h->logical_size, h->chunk_size);
    if ((uint64_t)st.st_size < need) {
        xd_errf(err, errlen, "%s: truncated container: %lld bytes, its header's logical size %llu needs %llu",
                path, (long long)st.st_size, (unsigned long long)h->logical_size,
                (unsigned long long)need);
        return -EINVAL;
    }
    return 0;
}

/* A container lives on punched holes; refuse a file system without them
 * rather than grow without bound. */
static int check_punch(int fd, const char *path, uint64_t off, char *err, size_t errlen)
{
    if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, 4096))
        return 0;
    int e = errno;
    xd_errf(err, errlen, "%s: the file system cannot punch holes (fallocate: %s); the compressed type reclaims space with them",
            path, strerror(e));
    return -e;
}

/* A container's chunk size is fixed when it is created: a config that names
 * another one would otherwise be ignored without a word. */
static int check_chunk_size(const struct xd_config *cfg, const char *path,
                            const struct xd_ctr_header *h, char *err, size_t errlen)
{
    const char *origin = cfg->origin[XD_KEY_compress_chunk_size];
    if (!origin || (uint64_t)cfg->compress_chunk_size == h->chunk_size)
        return 0;
    xd_errf(err, errlen,
            "%s: compress_chunk_size=%lld (%s) but this container was created with %u-byte chunks; a container's chunk size is fixed: leave the key out or set it to %u",
            path, (long long)cfg->compress_chunk_size, origin, h->chunk_size, h->chunk_size);
    return -EINVAL;
}

/* The header's half of container_upgrade: version 2, under the header
 * lock, as growth. */
static int header_upgrade(int fd, const char *path, char *err, size_t errlen)
{
    struct xd_ctr_header h;
    int rc = ofd_lock(fd, F_WRLCK, XD_LOCK_HEADER, true);
    if (rc)
        return rc;
    rc = header_read(fd, path, &h, err, errlen);
    if (!rc && h.version < XD_CTR_VERSION) {
        h.version = XD_CTR_VERSION;
        rc = header_write(fd, path, &h, err, errlen);
    }
    ofd_lock(fd, F_UNLCK, XD_LOCK_HEADER, true);
    return rc;
}

/* Create the container in an empty file, or grow it to size; never shrink.
 * Under the header lock, so concurrent openers agree. */
static int container_prepare_fd(int fd, const char *path, const struct xd_config *cfg,
                                uint64_t size, struct xd_ctr_header *h, char *err, size_t errlen)
{
    struct stat st;
    if (size > XD_CTR_MAX_LOGICAL) {
        xd_errf(err, errlen, "%s: %llu bytes: a container holds at most 1 PiB", path,
                (unsigned long long)size);
        return -EFBIG;
    }
    int rc = ofd_lock(fd, F_WRLCK, XD_LOCK_HEADER, true);
    if (rc)
        return rc;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
    } else if (st.st_size == 0) {
        *h = (struct xd_ctr_header){.version = XD_CTR_VERSION,
                                    .chunk_size = (uint32_t)cfg->compress_chunk_size,
                                    .logical_size = size,
                                    .created_algo = xd_algo_of_codec(cfg->compression_type),
                                    .created_level = (int32_t)cfg->compression_level};
        rc = ftruncate(fd, (off_t)xd_ctr_file_size(size, h->chunk_size)) ? -errno : 0;
        if (!rc)
            rc = check_punch(fd, path, XD_CTR_HEADER_SIZE, err, errlen);
        if (!rc)
            rc = header_write(fd, path, h, err, errlen);
    } else if (!(rc = header_read(fd, path, h, err, errlen)) &&
               !(rc = check_chunk_size(cfg, path, h, err, errlen)) && h->logical_size < size) {
        rc = check_not_truncated(fd, path, h, err, errlen);
        h->logical_size = size;
        if (!rc)
            rc = ftruncate(fd, (off_t)xd_ctr_file_size(size, h->chunk_size)) ? -errno : 0;
        if (!rc)
            rc = header_write(fd, path, h, err, errlen);
    }
    if (rc && !err[0])
        xd_errf(err, errlen, "%s: cannot prepare the container: %s", path, strerror(-rc));
    ofd_lock(fd, F_UNLCK, XD_LOCK_HEADER, true);
    return rc;
}

/* The header and the size it needs, read under a shared hold of the header
 * lock: a container another opener is making (sized, its header not yet
 * written: zeros, "bad magic") or growing (its header half rewritten) is
 * read once that is done. *empty (when not NULL) says the file is empty,
 * a container yet to be made, and nothing is read. */
static int header_read_settled(int fd, const char *path, struct xd_ctr_header *h, bool *empty,
                               char *err, size_t errlen)
{
    struct stat st;
    int rc = ofd_lock(fd, F_RDLCK, XD_LOCK_HEADER, true);
    if (rc)
        return rc;
    if (empty)
        *empty = !fstat(fd, &st) && st.st_size == 0;
    if (!empty || !*empty)
        rc = header_read(fd, path, h, err, errlen);
    if (!rc && (!empty || !*empty))
        rc = check_not_truncated(fd, path, h, err, errlen);
    ofd_lock(fd, F_UNLCK, XD_LOCK_HEADER, true);
    return rc;
}

int xd_compress_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                        uint64_t *logical, char *err, size_t errlen)
{
    struct xd_ctr_header h;
    err[0] = 0;
    int made = cfg->auto_create_dirs ? xd_mkdir_parents(path, cfg->dir_permissions) : 0;
    if (made < 0) { /* -errno itself: errno may be another call's */
        xd_errf(err, errlen, "%s: cannot create its directory: %s", path, strerror(-made));
        return made;
    }
    /* a container's format is ours: never written through a link */
    int fd = xd_open_data(path, O_RDWR | O_CREAT | O_CLOEXEC, (mode_t)cfg->file_permissions, false);
    if (fd < 0) {
        xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(fd));
        return fd;
    }
    int rc = xd_format_file_owner_check(fd, path, err, errlen);
    if (!rc)
        rc = container_prepare_fd(fd, path, cfg, size, &h, err, errlen);
    close(fd);
    if (!rc)
        *logical = h.logical_size;
    return rc;
}

int xd_compress_logical_size(const char *path, uint64_t *size, char *err, size_t errlen)
{
    struct xd_ctr_header h;
    int fd = xd_open_regular(path, O_RDONLY | O_NOFOLLOW); /* as prepare: never via a link */
    if (fd < 0) {
        int rc = fd;
        if (rc == -ELOOP || rc == -ENXIO)
            xd_errf(err, errlen, "%s: cannot open: %s", path, xd_refusal(rc));
        return rc;
    }
    bool empty; /* a container yet to be made (prepare makes it there) */
    int rc = header_read_settled(fd, path, &h, &empty, err, errlen);
    close(fd);
    if (!rc)
        *size = empty ? 0 : h.logical_size;
    return rc;
}

/* --- map scan, open and close ---------------------------------------------- */

/* Punch a free slot that still holds data: a writer was killed after
 * writing it and before flipping the entry to it. */
static void punch_if_stale(struct compress_layer *c, struct ctr_file *f, uint64_t off)
{
    uint64_t len = xd_ctr_slot_size(f->chunk_size);
    off_t data = lseek(f->fd, (off_t)off, SEEK_DATA);
    if (data < 0 || (uint64_t)data >= off + len)
        return;
    if (!fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
        count_add(c, C_RECOVERED_SLOTS, 1);
}

/* An entry of the scan's page that failed its check, read again on its
 * own: a writer elsewhere may have been halfway through its 32 bytes. 0
 * with the entry, or -EIO when it still fails (why says how). */
static int scan_entry_again(struct ctr_file *f, uint64_t chunk, struct xd_ctr_entry *e,
                            char *why, size_t whylen)
{
    uint8_t raw[XD_CTR_ENTRY_SIZE];
    for (int attempt = 0; attempt < 3; attempt++) {
        sched_yield();
        if (xd_pread_full(f->fd, raw, sizeof(raw), xd_ctr_entry_off(chunk, f->chunk_size)) ==
                (int64_t)sizeof(raw) &&
            !xd_ctr_entry_decode(raw, f->chunk_size, chunk, f->strict, e, why, whylen))
            return 0;
    }
    return -EIO;
}

/* An erased entry the open's scan found: its chunk reads EIO from now on
 * (the scan walks the map in order, so the list stays ascending). Out of
 * memory, it is only not remembered: the open's line still names it. */
static void note_erased(struct ctr_file *f, uint64_t chunk)
{
    if (!f->opening)
        return;
    uint64_t *grown = realloc(f->erased, (f->nerased + 1) * sizeof(*grown));
    if (!grown)
        return;
    f->erased = grown;
    f->erased[f->nerased++] = chunk;
}

/* One map entry of the scan: counted in sp, its free slots punched in
 * SCAN_FIX mode. raw is the entry's 32 bytes from the scan's map page. */
static void scan_entry(struct compress_layer *c, struct ctr_file *f, struct ctr_space *sp,
                       uint64_t chunk, const uint8_t *raw, enum scan_mode mode)
{
    bool fix = mode == SCAN_FIX, live = mode == SCAN_LIVE;
    struct xd_ctr_entry e;
    char why[300];
    bool bad = xd_ctr_entry_decode(raw, f->chunk_size, chunk, f->strict, &e, why, sizeof(why)) &&
               (live || scan_entry_again(f, chunk, &e, why, sizeof(why)));
    /* a blank entry beside a version of the chunk: erased, unless a first
     * write has begun meanwhile (read again) */
    if (!bad && !live && f->strict && !e.gen && !e.pending &&
        xd_compress_erased_entry(f, chunk, why, sizeof(why)) &&
        (bad = scan_entry_again(f, chunk, &e, why, sizeof(why)) || (!e.gen && !e.pending)))
        note_erased(f, chunk);
    if (bad) {
        if (!live && !sp->bad_entries++) {
            sp->first_bad = chunk;
            snprintf(sp->bad_why, sizeof(sp->bad_why), "%s", why);
        }
        return;
    }
    if (e.gen) {
        sp->chunks[e.algo]++;
        sp->stored += e.stored_len;
        if (e.algo != XD_ALGO_ZERO)
            sp->live_logical += f->chunk_size;
    }
    if (!fix)
        return;
    /* a slot the entry does not name holds nothing live: both of them
     * for a chunk never written or all zeros */
    bool holds_data = e.gen && e.algo != XD_ALGO_ZERO;
    for (unsigned s = 0; s < 2; s++)
        if (!(holds_data && s == e.slot))
            punch_if_stale(c, f, xd_ctr_slot_off(chunk, s, f->chunk_size));
}

/* The first group at or after group that holds any data. The groups
 * before it are holes, map page and slots: their chunks were never written
 * (an all-zero entry) and no slot of theirs holds a stale copy, so a scan
 * has nothing to count or punch there. Without this a scan cost one pread
 * per group and two lseeks per chunk however little was written: opening
 * a 1 TiB container holding 2 MiB took 110 s. A file system without
 * SEEK_DATA reports data everywhere: every group is scanned. */
uint64_t xd_compress_next_group_with_data(const struct ctr_file *f, uint64_t group, uint64_t ngroups)
{
    off_t data = lseek(f->fd, (off_t)xd_ctr_group_off(group, f->chunk_size), SEEK_DATA);
    if (data < 0)
        return errno == ENXIO ? ngroups : group; /* ENXIO: nothing but holes past it */
    uint64_t at = ((uint64_t)data - XD_CTR_HEADER_SIZE) / xd_ctr_group_size(f->chunk_size);
    return at > group ? at : group;
}

/* Every entry of the map written again with its crc seeded with its chunk
 * number (version 2), the groups that are holes skipped. An entry that fails
 * its check is left as it is: it reads EIO either way. */
static int reseal_entries(struct ctr_file *f)
{
    uint64_t nchunks = xd_ctr_chunks(atomic_load(&f->logical_size), f->chunk_size);
    uint64_t ngroups = (nchunks + XD_CTR_GROUP_CHUNKS - 1) / XD_CTR_GROUP_CHUNKS;
    uint8_t page[XD_CTR_MAP_PAGE], sealed[XD_CTR_ENTRY_SIZE];
    char why[300];
    for (uint64_t group = xd_compress_next_group_with_data(f, 0, ngroups); group < ngroups;
         group = xd_compress_next_group_with_data(f, group + 1, ngroups)) {
        uint64_t first = group * XD_CTR_GROUP_CHUNKS, at = xd_ctr_group_off(group, f->chunk_size);
        if (xd_pread_full(f->fd, page, sizeof(page), at) != (int64_t)sizeof(page))
            return -EIO;
        for (uint64_t chunk = first; chunk < nchunks && chunk < first + XD_CTR_GROUP_CHUNKS; chunk++) {
            const uint8_t *raw = page + (chunk - first) * XD_CTR_ENTRY_SIZE;
            struct xd_ctr_entry e;
            if (xd_ctr_entry_decode(raw, f->chunk_size, chunk, false, &e, why, sizeof(why)) ||
                (!e.gen && !e.pending))
                continue;
            xd_ctr_entry_encode(&e, chunk, true, sealed);
            int64_t n = memcmp(raw, sealed, sizeof(sealed))
                            ? xd_pwrite_full(f->fd, sealed, sizeof(sealed),
                                             xd_ctr_entry_off(chunk, f->chunk_size))
                            : 0;
            if (n < 0)
                return (int)n;
        }
    }
    return 0;
}

/* A version 1 container, its stale slots just punched by its sole opener
 * (so no blank entry has a version of its chunk beside it any more),
 * becomes version 2: its entries' crcs seeded with their chunk numbers
 * (version 1 reads either, so a kill half way leaves it readable), then
 * the header. From then on first writes go through a pending entry, a
 * blank entry beside a version of its chunk is known to be erased, and an
 * entry written at another chunk's place fails its crc. */
static int container_upgrade(struct ctr_file *f, const char *path, char *err, size_t errlen)
{
    int rc = reseal_entries(f);
    /* The punched slots and sealed entries reach the disk before the
     * header that says version 2: written back in another order, a power
     * cut could leave a version-2 header over entries not yet sealed
     * (their chunks, fsynced long ago, would read EIO) or over a stale slot
     * beside a blank entry (read as erased). Once per container. */
    if (!rc && fdatasync(f->fd))
        rc = -errno;
    if (rc) {
        xd_errf(err, errlen, "%s: cannot upgrade the container to version 2: %s", path,
                strerror(-rc));
        return rc;
    }
    return header_upgrade(f->fd, path, err, errlen);
}

/* Walk the map: what the container holds (for stats), repairing per mode. */
int xd_compress_container_scan(struct compress_layer *c, struct ctr_file *f, struct ctr_space *sp,
                               enum scan_mode mode, char *err, size_t errlen)
{
    uint64_t nchunks = xd_ctr_chunks(atomic_load(&f->logical_size), f->chunk_size);
    uint64_t ngroups = (nchunks + XD_CTR_GROUP_CHUNKS - 1) / XD_CTR_GROUP_CHUNKS;
    uint8_t page[XD_CTR_MAP_PAGE];
    memset(sp, 0, sizeof(*sp));
    for (uint64_t group = xd_compress_next_group_with_data(f, 0, ngroups); group < ngroups;
         group = xd_compress_next_group_with_data(f, group + 1, ngroups)) {
        uint64_t first = group * XD_CTR_GROUP_CHUNKS;
        if (xd_pread_full(f->fd, page, sizeof(page), xd_ctr_group_off(group, f->chunk_size)) !=
            (int64_t)sizeof(page)) {
            if (mode == SCAN_LIVE)
                break;
            xd_errf(err, errlen, "%s: truncated map at chunk %llu", f->path, (unsigned long long)first);
            return -EINVAL;
        }
        for (uint64_t chunk = first; chunk < nchunks && chunk < first + XD_CTR_GROUP_CHUNKS; chunk++)
            scan_entry(c, f, sp, chunk, page + (chunk - first) * XD_CTR_ENTRY_SIZE, mode);
    }
    struct stat st;
    if (!fstat(f->fd, &st))
        sp->allocated = (uint64_t)st.st_blocks * 512;
    sp->logical = atomic_load(&f->logical_size);
    sp->stored += XD_CTR_HEADER_SIZE + ngroups * XD_CTR_MAP_PAGE;
    return 0;
}

static struct closed_file *closed_find_or_add(struct compress_layer *c, const char *path)
{
    struct closed_file *cf;
    for (cf = c->closed; cf; cf = cf->next)
        if (!strcmp(cf->path, path))
            return cf;
    if (!(cf = calloc(1, sizeof(*cf))) || !(cf->path = strdup(path))) {
        free(cf);
        return NULL;
    }
    cf->next = c->closed;
    c->closed = cf;
    return cf;
}

static void closed_note(struct compress_layer *c, const char *path, const struct ctr_space *sp)
{
    pthread_mutex_lock(&c->space_lock);
    struct closed_file *cf = closed_find_or_add(c, path);
    if (cf)
        cf->space = *sp;
    pthread_mutex_unlock(&c->space_lock);
}

/* Map the container for reading. Without a map (mmap refused) every read
 * goes through pread, which is slower but the same. A container truncated
 * by someone else while mapped would fault; docs/CONTAINER.md says so. */
static void ctr_file_map(struct ctr_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) || st.st_size <= 0)
        return;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED)
        return;
    f->map = p;
    f->map_len = (uint64_t)st.st_size;
    /* Every access is a chunk's entry or its stored bytes, never a stream of
     * the file: kernel readahead (megabytes here) would fill the page cache
     * with the holes of neighbouring slots for each 32-byte entry read. */
    madvise(p, (size_t)st.st_size, MADV_RANDOM);
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
}

static void ctr_file_free(struct ctr_file *f)
{
    free(f->erased);
    if (f->map)
        munmap((void *)f->map, f->map_len);
    if (f->fd >= 0)
        close(f->fd);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&f->stripe[i]);
    pthread_mutex_destroy(&f->ra_lock);
    free(f);
}

/* A container whose map has entries that fail their check still opens: the
 * other chunks are intact (each entry carries its own crc), and those
 * chunks read EIO (chunk.c) until a whole-chunk write replaces them. Said
 * once here, as the first read of one would say it. */
static void report_bad_entries(struct compress_layer *c, struct ctr_file *f,
                               const struct ctr_space *sp)
{
    char why[420];
    snprintf(why, sizeof(why), "%s (%llu chunk%s with a bad map entry; a whole-chunk write replaces one)",
             sp->bad_why, (unsigned long long)sp->bad_entries, sp->bad_entries == 1 ? "" : "s");
    xd_compress_report_corrupt(c, f, sp->first_bad, why);
}

/* Open a container: create or grow it when asked, check its header and
 * length and every map entry, and repair free slots when nobody else has it
 * open (the users lock is free). */
int xd_compress_file_open(struct xd_layer *layer, struct xd_file *file, unsigned flags,
                          uint64_t size, char *err, size_t errlen)
{
    struct compress_layer *c = layer->priv;
    const struct xd_config *cfg = c->cfg;
    bool ro = flags & XD_OPEN_READONLY;
    struct xd_ctr_header h;
    struct ctr_space sp;
    struct ctr_file *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&f->stripe[i], NULL);
    pthread_mutex_init(&f->ra_lock, NULL);
    f->path = file->path;
    f->id = atomic_fetch_add(&next_file_id, 1);
    atomic_store(&f->last_bad_chunk, UINT64_MAX);
    int rc = 0;
    bool made = false;
    err[0] = 0;
    if ((flags & XD_OPEN_CREATE) && !ro && cfg->auto_create_dirs) {
        int dirs = xd_mkdir_parents(file->path, cfg->dir_permissions); /* -errno itself */
        rc = dirs < 0 ? dirs : 0;
    }
    f->fd = rc ? -1
               : xd_open_data_made(file->path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC |
                                                   ((flags & XD_OPEN_CREATE) && !ro ? O_CREAT : 0) |
                                                   (cfg->use_sync_writes && !ro ? O_SYNC : 0),
                                   (mode_t)cfg->file_permissions, false, &made);
    if (!rc && f->fd < 0) {
        rc = f->fd;
        f->fd = -1;
    }
    if (!rc && !ro) /* written in place: never another user's file */
        rc = xd_format_file_owner_check(f->fd, file->path, err, errlen);
    if (!rc && !cfg->update_access_time)
        xd_fd_noatime(f->fd);
    if (!rc)
        rc = ofd_lock(f->fd, F_RDLCK, XD_LOCK_USERS, true);
    if (!rc && (flags & XD_OPEN_CREATE) && !ro)
        rc = container_prepare_fd(f->fd, file->path, cfg, size, &h, err, errlen);
    if (!rc)
        rc = header_read_settled(f->fd, file->path, &h, NULL, err, errlen);
    if (!rc) /* checked by the create above too; an open without it reads as well */
        rc = check_chunk_size(cfg, file->path, &h, err, errlen);
    if (!rc) {
        f->chunk_size = h.chunk_size;
        f->strict = h.version >= 2;
        atomic_store(&f->logical_size, h.logical_size);
        ctr_file_map(f);
        bool sole = !ro && !ofd_lock(f->fd, F_WRLCK, XD_LOCK_USERS, false);
        f->opening = true;
        rc = xd_compress_container_scan(c, f, &sp, sole ? SCAN_FIX : SCAN_EXACT, err, errlen);
        f->opening = false;
        if (!rc && sole && !f->strict && !(rc = container_upgrade(f, file->path, err, errlen)))
            f->strict = true;
        if (sole) /* back to a shared hold: others may open it now */
            ofd_lock(f->fd, F_RDLCK, XD_LOCK_USERS, true);
        if (!rc && sp.bad_entries)
            report_bad_entries(c, f, &sp);
    }
    if (rc) {
        if (!err[0])
            xd_errf(err, errlen, "%s: cannot open the container: %s", file->path, xd_refusal(rc));
        if (made) /* a container this open made and could not size: nothing of anyone's */
            xd_unlink_made(file->path, f->fd);
        ctr_file_free(f);
        return rc;
    }
    file->priv[layer->level] = f;
    pthread_mutex_lock(&c->space_lock);
    f->next_open = c->open;
    c->open = f;
    pthread_mutex_unlock(&c->space_lock);
    return 0;
}

static void open_list_remove(struct compress_layer *c, struct ctr_file *f)
{
    pthread_mutex_lock(&c->space_lock);
    for (struct ctr_file **p = &c->open; *p; p = &(*p)->next_open) {
        if (*p == f) {
            *p = f->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&c->space_lock);
}

void xd_compress_file_close(struct xd_layer *layer, struct xd_file *file)
{
    struct compress_layer *c = layer->priv;
    struct ctr_file *f = file->priv[layer->level];
    struct ctr_space sp;
    char err[XD_ERRLEN];
    if (!f)
        return;
    open_list_remove(c, f);
    if (c->dcache) /* its id is never used again: its entries could only take room */
        xd_dcache_drop_file(c->dcache, f->id);
    if (!xd_compress_container_scan(c, f, &sp, SCAN_EXACT, err, sizeof(err)))
        closed_note(c, f->path, &sp);
    ctr_file_free(f);
    file->priv[layer->level] = NULL;
}

int64_t xd_compress_file_size(struct xd_layer *layer, struct xd_file *file)
{
    struct ctr_file *f = file->priv[layer->level];
    return f ? (int64_t)xd_compress_file_refresh_size(f) : -EBADF;
}

/* --- growth ---------------------------------------------------------------- */

/* Growing past the end (library users; fio's files are sized up front). */
int xd_compress_file_grow(struct compress_layer *c, struct ctr_file *f, uint64_t end)
{
    struct xd_ctr_header h;
    char err[XD_ERRLEN];
    if (end <= atomic_load(&f->logical_size))
        return 0;
    if (end > XD_CTR_MAX_LOGICAL)
        return -EFBIG;
    int rc = container_prepare_fd(f->fd, f->path, c->cfg, end, &h, err, sizeof(err));
    if (rc)
        return rc;
    atomic_store(&f->logical_size, h.logical_size);
    return 0;
}

/* Another process may have grown the container; look before saying EOF. */
uint64_t xd_compress_file_refresh_size(struct ctr_file *f)
{
    struct xd_ctr_header h;
    char err[XD_ERRLEN];
    if (!header_read(f->fd, f->path, &h, err, sizeof(err)) && h.chunk_size == f->chunk_size &&
        h.logical_size > atomic_load(&f->logical_size))
        atomic_store(&f->logical_size, h.logical_size);
    return atomic_load(&f->logical_size);
}
