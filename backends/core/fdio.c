/* fdio.c - I/O on file descriptors, shared by the file and block drivers.
 *
 * Aligned requests go straight to the kernel: inline in sync mode, through
 * the libaio/io_uring queue otherwise. Two things are done inline even in an
 * async mode, and reported to the caller as completed (XD_DONE), never as
 * queued: unaligned O_DIRECT requests (a bounce buffer and, for writes, a
 * locked read-modify-write) and, under io_uring, buffered reads that
 * preadv2(RWF_NOWAIT) can serve from the page cache without blocking: one
 * syscall, cheaper than a trip through the ring for a read that io_uring
 * would also complete inline (see NOWAIT_WINDOW).
 *
 * Ordering: a request never starts while an earlier one that overlaps it
 * (same descriptor, overlapping bytes, at least one of them a write) is
 * staged, in flight or held back. Inline paths would otherwise overtake it
 * (a NOWAIT read returning the data from before a staged write), and the
 * kernel does not order two queued requests either (an io_uring write
 * punted to a worker can land after a later one that was not). Such a
 * request is held back: answered XD_QUEUED and kept, in the order requests
 * came, until the reap that retires the last request it overlaps starts it
 * (inline, its completion handed out by that reap, or staged and sent).
 * Requests that overlap nothing go ahead meanwhile, as they would in the
 * kernel's queue, so a hot block written and read at depth (a zipf mix with
 * norandommap) delays only the requests on that block; waiting for the
 * overlap inside submit instead stalled the whole queue and halved such a
 * mix. An fsync or fdatasync is held back behind every held-back request,
 * so it covers the writes that came before it. Trims, which run inline,
 * and requests flagged XD_REQ_SYNC wait instead (xd_fdio_wait_overlaps):
 * they commit and reap until nothing earlier overlaps them, keeping the
 * completions reaped meanwhile for the next reap.
 */
#include "fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "json.h"
#include "reqorder.h"

/* NOWAIT adapts: when more than half of the last NOWAIT_WINDOW attempts
 * missed (data not cached) it stops trying for NOWAIT_BACKOFF reads, so
 * uncached reads do not pay for a failed syscall. A hit saves about what a
 * miss costs (a miss also queues the read, a hit skips the ring): 4k random
 * reads at depth 32 here ran about 10% faster with the probe on a cached
 * ext4 file and about 10% slower with it on an uncached one. Backing off
 * at three quarters instead kept probing a file whose cache was filling:
 * make perf's uncached-disk row ran 8% and 15% faster backing off at half
 * (medians of 20 and 16 alternating runs; faster in 28 of the 36). */
#define NOWAIT_WINDOW 64
#define NOWAIT_BACKOFF 1024

/* pread, pwrite and preadv2 without glibc's cancellation-point wrapper: in
 * a multithreaded process (fio always is one) glibc turns asynchronous
 * cancellation on and off around each of these calls, about 1% of a cached
 * 4k read in a profile here. Nothing in xdevice or fio cancels a thread, so
 * these are plain system calls. Same contract: -1 with errno. The
 * offset of pread64/pwrite64 is one argument on the 64-bit ABIs xdevice is
 * built for (a 32-bit one would split it in two). */
static inline ssize_t fdio_pread(int fd, void *buf, size_t len, uint64_t off)
{
    return syscall(SYS_pread64, fd, buf, len, (off_t)off);
}

static inline ssize_t fdio_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    return syscall(SYS_pwrite64, fd, buf, len, (off_t)off);
}

/* preadv2 takes its offset as two longs, low then high (the kernel's
 * pos_from_hilo); on a 64-bit kernel the low one holds all of it. */
static inline ssize_t fdio_preadv2(int fd, const struct iovec *iov, int n, uint64_t off, int flags)
{
    return syscall(SYS_preadv2, fd, iov, n, (unsigned long)off,
                   (unsigned long)(off >> (4 * sizeof(long)) >> (4 * sizeof(long))), flags);
}

int64_t xd_pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = fdio_pread(fd, (char *)buf + done, len - done, off + done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return done ? (int64_t)done : -errno;
        if (n == 0)
            break; /* end of file */
        done += (uint64_t)n;
    }
    return (int64_t)done;
}

int64_t xd_pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = fdio_pwrite(fd, (const char *)buf + done, len - done, off + done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno; /* a partial write is an error, never a short success */
        if (n == 0)
            return -EIO;
        done += (uint64_t)n;
    }
    return (int64_t)done;
}

int xd_fdio_init(struct xd_fdio *io, int mode, unsigned entries, unsigned align,
                 struct xd_io_memory *memory, char *err, size_t errlen)
{
    memset(io, 0, sizeof(*io));
    io->mode = mode;
    io->align = align;
    io->try_nowait = mode == XD_ASYNC_IO_URING && !align;
    if (mode == XD_ASYNC_SYNC)
        return 0;
    io->capacity = entries;
    io->in_flight = calloc(entries, sizeof(*io->in_flight));
    io->deferred = calloc(entries, sizeof(*io->deferred));
    /* completions not yet handed out come from in flight or held back */
    io->early = calloc(2 * (size_t)entries, sizeof(*io->early));
    int rc = -ENOMEM;
    if (!io->in_flight || !io->deferred || !io->early)
        xd_errf(err, errlen, "out of memory");
    else
        rc = xd_queue_create(&io->queue, mode, entries, memory, err, errlen);
    if (rc) /* nothing kept by a device that does not open (io_uring refused its size) */
        xd_fdio_destroy(io);
    return rc;
}

void xd_fdio_destroy(struct xd_fdio *io)
{
    xd_queue_destroy(io->queue);
    free(io->bounce);
    free(io->in_flight);
    free(io->deferred);
    free(io->early);
    io->queue = NULL;
    io->bounce = NULL;
    io->in_flight = io->deferred = io->early = NULL;
}

void xd_fdio_set_align(struct xd_fdio *io, unsigned align)
{
    free(io->bounce);
    io->bounce = NULL;
    io->bounce_size = 0;
    io->align = align;
    io->try_nowait = io->mode == XD_ASYNC_IO_URING && !align;
}

static int64_t fdio_sync_op(int fd, struct xd_req *req)
{
    switch (req->op) {
    case XD_OP_READ: return xd_pread_full(fd, req->buf, req->len, req->off);
    case XD_OP_WRITE: return xd_pwrite_full(fd, req->buf, req->len, req->off);
    case XD_OP_FSYNC: return fsync(fd) ? -errno : 0;
    case XD_OP_FDATASYNC: return fdatasync(fd) ? -errno : 0;
    default: return -EOPNOTSUPP;
    }
}

static bool fdio_aligned(const struct xd_fdio *io, const struct xd_req *req)
{
    uint64_t mask = io->align - 1;
    return !io->align || req->op > XD_OP_WRITE ||
           !(((uintptr_t)req->buf | req->off | req->len) & mask);
}

static int fdio_bounce_reserve(struct xd_fdio *io, size_t size)
{
    if (size <= io->bounce_size)
        return 0;
    void *buf;
    if (posix_memalign(&buf, io->align, size))
        return -ENOMEM;
    free(io->bounce);
    io->bounce = buf;
    io->bounce_size = size;
    return 0;
}

/* Lock [off, off+len) against other read-modify-writers, whether they are
 * threads or processes: OFD locks belong to the open file description. */
static int fdio_range_lock(int fd, short type, uint64_t off, uint64_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)off,
                       .l_len = (off_t)len};
    while (fcntl(fd, type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW, &fl)) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Unaligned O_DIRECT: widen to the alignment through a bounce buffer. */
static int64_t fdio_bounced(struct xd_fdio *io, int fd, struct xd_req *req)
{
    uint64_t mask = io->align - 1;
    uint64_t start = req->off & ~mask;
    uint64_t end = (req->off + req->len + mask) & ~mask;
    uint64_t head = req->off - start;
    int64_t rc = fdio_bounce_reserve(io, end - start);
    if (rc)
        return rc;
    io->count.bounced++;
    if (req->op == XD_OP_READ) {
        rc = xd_pread_full(fd, io->bounce, end - start, start);
        if (rc < 0)
            return rc;
        uint64_t got = (uint64_t)rc > head ? (uint64_t)rc - head : 0;
        got = got < req->len ? got : req->len;
        memcpy(req->buf, (char *)io->bounce + head, got);
        return (int64_t)got;
    }
    /* write: read-modify-write of the widened range, atomic against other
     * unaligned writers of the same sectors */
    io->count.rmw++;
    rc = fdio_range_lock(fd, F_WRLCK, start, end - start);
    if (rc)
        return rc;
    struct stat st = {0};
    rc = fstat(fd, &st) ? -errno : xd_pread_full(fd, io->bounce, end - start, start);
    if (rc >= 0) {
        memset((char *)io->bounce + rc, 0, end - start - (uint64_t)rc); /* past EOF reads as zero */
        memcpy((char *)io->bounce + head, req->buf, req->len);
        rc = xd_pwrite_full(fd, io->bounce, end - start, start);
    }
    /* the widened write must not grow a regular file past the caller's end */
    uint64_t want = req->off + req->len > (uint64_t)st.st_size ? req->off + req->len
                                                                : (uint64_t)st.st_size;
    if (rc >= 0 && S_ISREG(st.st_mode) && end > want && ftruncate(fd, (off_t)want))
        rc = -errno;
    fdio_range_lock(fd, F_UNLCK, start, end - start);
    return rc < 0 ? rc : (int64_t)req->len;
}

/* fdio_try_nowait for a read it may probe. */
static inline __attribute__((always_inline)) bool fdio_nowait_probe(struct xd_fdio *io, int fd,
                                                                    struct xd_req *req)
{
    if (io->nowait_skip) {
        io->nowait_skip--;
        return false;
    }
    struct iovec iov = {.iov_base = req->buf, .iov_len = req->len};
    ssize_t n = fdio_preadv2(fd, &iov, 1, req->off, RWF_NOWAIT);
    bool hit = n == (ssize_t)req->len;
    if (n < 0 && errno == EOPNOTSUPP)
        io->try_nowait = false; /* this file system cannot say; stop asking */
    /* this attempt counts in the window it closes (it used to count in the
     * next one: a window weighed its first 63 attempts) */
    io->nowait_misses += !hit;
    if (++io->nowait_window == NOWAIT_WINDOW) {
        if (io->nowait_misses * 2 > NOWAIT_WINDOW)
            io->nowait_skip = NOWAIT_BACKOFF;
        io->nowait_window = io->nowait_misses = 0;
    }
    if (hit) {
        io->count.nowait_hits++;
        req->result = n;
        return true;
    }
    io->count.nowait_misses++;
    /* queue only the rest (all of it past what xd_req_core counts) */
    xd_req_core(req)->done = n > 0 && (uint64_t)n <= UINT32_MAX ? (uint32_t)n : 0;
    return false;
}

/* io_uring on buffered files: serve a read inline when the page cache has
 * it. Whether to probe at all is decided inline: libaio and O_DIRECT jobs
 * never do, and pay no call for asking. */
static inline bool fdio_try_nowait(struct xd_fdio *io, int fd, struct xd_req *req)
{
    return io->try_nowait && req->op == XD_OP_READ && fdio_nowait_probe(io, fd, req);
}

static bool fdio_overlap(const struct xd_req *a, int fd, const struct xd_req *b)
{
    return xd_req_core(a)->fd == fd && xd_req_ranges_conflict(a, b);
}

static bool fdio_any_overlap(struct xd_req *const *reqs, unsigned n, int fd,
                             const struct xd_req *req)
{
    for (unsigned i = 0; i < n; i++)
        if (fdio_overlap(reqs[i], fd, req))
            return true;
    return false;
}

/* fdio_must_wait past its usual case: the scans, out of line. */
static bool fdio_must_wait_scan(const struct xd_fdio *io, int fd, const struct xd_req *req,
                                unsigned n_earlier)
{
    bool sync_op = req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC;
    if (sync_op && n_earlier)
        return true; /* it covers the writes held back before it */
    /* Two reads never conflict, so with no write in flight a read (the
     * whole of a read-only job) skips the scan: at depth 32 the scan was a
     * third of xdevice's instructions per request (callgrind). */
    bool scan_in_flight = io->n_changing_in_flight || xd_req_changes_data(req);
    return (scan_in_flight && fdio_any_overlap(io->in_flight, io->n_in_flight, fd, req)) ||
           fdio_any_overlap(io->deferred, n_earlier, fd, req);
}

/* Must req wait: for a request in flight, or for one of the first
 * n_earlier held-back requests (those that came before it)? A read with
 * nothing held back before it and no write in flight never does (the
 * whole of a read-only job): answered here, inline, since the call to the
 * scans was about 20 instructions per request of make perf's async rows. */
static inline bool fdio_must_wait(const struct xd_fdio *io, int fd, const struct xd_req *req,
                                  unsigned n_earlier)
{
    if (!n_earlier && !io->n_changing_in_flight && !xd_req_changes_data(req))
        return false;
    return fdio_must_wait_scan(io, fd, req, n_earlier);
}

static void fdio_track(struct xd_fdio *io, struct xd_req *req)
{
    xd_req_core(req)->pos = io->n_in_flight;
    io->in_flight[io->n_in_flight++] = req;
    io->n_changing_in_flight += xd_req_changes_data(req);
}

/* Out of the in-flight array: the last one takes its place. Found in O(1)
 * by the index it keeps; searched for if that index is not its own (a
 * request is only ever in one queue at a time, but a search costs nothing
 * where that holds and keeps the array right where it would not). */
static void fdio_forget(struct xd_fdio *io, const struct xd_req *req)
{
    unsigned i = xd_req_core(req)->pos;
    if (i >= io->n_in_flight || io->in_flight[i] != req) {
        for (i = 0; i < io->n_in_flight && io->in_flight[i] != req; i++)
            ;
        if (i == io->n_in_flight)
            return; /* not in flight (never staged): nothing to forget */
    }
    struct xd_req *last = io->in_flight[--io->n_in_flight];
    io->in_flight[i] = last;
    xd_req_core(last)->pos = i;
    io->n_changing_in_flight -= xd_req_changes_data(req);
}

static void fdio_finish_short(struct xd_fdio *io, struct xd_req *req);

/* Completions the kernel returned: short transfers finished, out of flight. */
static void fdio_retire(struct xd_fdio *io, struct xd_req **done, int n)
{
    for (int i = 0; i < n; i++) {
        fdio_finish_short(io, done[i]);
        fdio_forget(io, done[i]);
    }
}

/* Run req now, nothing earlier overlapping it: inline (XD_DONE, result
 * set) or staged (XD_QUEUED); -EBUSY when the queue is full. Inline in
 * its two callers: every request starts here, and its call was about 15
 * instructions per request. */
static inline __attribute__((always_inline)) int fdio_start(struct xd_fdio *io, int fd,
                                                            struct xd_req *req)
{
    xd_req_core(req)->done = 0;
    if (!io->queue || (xd_req_is_sync(req))) {
        req->result = fdio_aligned(io, req) ? fdio_sync_op(fd, req) : fdio_bounced(io, fd, req);
        return XD_DONE;
    }
    if (!fdio_aligned(io, req)) {
        req->result = fdio_bounced(io, fd, req);
        return XD_DONE;
    }
    if (fdio_try_nowait(io, fd, req))
        return XD_DONE;
    uint64_t done = xd_req_core(req)->done;
    int rc = xd_queue_stage(io->queue, req, fd, (char *)req->buf + done, req->len - done,
                            req->off + done);
    if (rc == -EBUSY)
        return rc;
    if (rc) {
        req->result = rc;
        return XD_DONE;
    }
    fdio_track(io, req);
    return XD_QUEUED;
}

/* Start the held-back requests that nothing earlier overlaps any more, in
 * the order they came, and send the staged ones; those done inline join
 * the completions the next reap hands out. 0 or -errno from the send. */
static int fdio_start_deferred(struct xd_fdio *io, bool *staged_out)
{
    unsigned kept = 0;
    bool staged = false;
    for (unsigned i = 0; i < io->n_deferred; i++) {
        struct xd_req *req = io->deferred[i];
        int fd = xd_req_core(req)->fd;
        int rc = fdio_must_wait(io, fd, req, kept) ? -EBUSY : fdio_start(io, fd, req);
        if (rc == -EBUSY)
            io->deferred[kept++] = req; /* still behind something, or no room yet */
        else if (rc == XD_QUEUED)
            staged = true;
        else
            io->early[io->n_early++] = req;
    }
    io->n_deferred = kept;
    *staged_out = staged;
    return staged ? xd_queue_commit(io->queue) : 0;
}

/* Send what is staged and reap, keeping the completions for the next reap,
 * until nothing staged, in flight or held back overlaps req (see the
 * header). */
int xd_fdio_wait_overlaps(struct xd_fdio *io, int fd, const struct xd_req *req)
{
    if (!io->queue || !fdio_must_wait(io, fd, req, io->n_deferred))
        return 0;
    io->count.overlap_waits++;
    int rc = xd_queue_commit(io->queue);
    if (rc < 0)
        return rc;
    while (fdio_must_wait(io, fd, req, io->n_deferred)) {
        struct xd_req **out = io->early + io->n_early;
        int n = xd_queue_reap(io->queue, out, 1, 2 * io->capacity - io->n_early, NULL);
        if (n < 0)
            return n;
        fdio_retire(io, out, n);
        io->n_early += (unsigned)n;
        bool staged;
        if (io->n_deferred && (rc = fdio_start_deferred(io, &staged)) < 0)
            return rc;
    }
    return 0;
}

/* Is waiting for an overlap as cheap as holding the request back? libaio
 * does buffered reads and writes inside io_submit, so what a wait commits
 * is done when it reaps, and a request held back would cost a submit and
 * an io_getevents more (a zipf mix at depth 16 ran 10-20% slower held
 * back). io_uring may hand a write to a worker thread, and O_DIRECT goes to
 * the device: there a wait stalls every request behind one. */
static bool fdio_waits_cheaply(const struct xd_fdio *io)
{
    return io->mode == XD_ASYNC_LIBAIO && !io->align;
}

int xd_fdio_submit(struct xd_fdio *io, int fd, struct xd_req *req)
{
    xd_req_core(req)->fd = fd;
    if (io->queue && fdio_must_wait(io, fd, req, io->n_deferred)) {
        if (!xd_req_is_sync(req) && !fdio_waits_cheaply(io)) {
            if (io->n_deferred == io->capacity)
                return -EBUSY;
            io->deferred[io->n_deferred++] = req;
            io->count.overlap_deferrals++;
            return XD_QUEUED;
        }
        int rc = xd_fdio_wait_overlaps(io, fd, req);
        if (rc) {
            req->result = rc;
            return XD_DONE;
        }
    }
    return fdio_start(io, fd, req);
}

int xd_fdio_commit(struct xd_fdio *io)
{
    return io->queue ? xd_queue_commit(io->queue) : 0;
}

/* The kernel may transfer less than asked (a signal, a page-cache hiccup);
 * fio would silently resubmit a short write, which hides bugs, so finish it
 * here and report whole transfers only. */
static void fdio_finish_short(struct xd_fdio *io, struct xd_req *req)
{
    if (req->result < 0 || req->op > XD_OP_WRITE) {
        if (req->result > 0)
            req->result = 0; /* syncs report 0 bytes */
        return;
    }
    uint64_t done = xd_req_core(req)->done + (uint64_t)req->result;
    if (done < req->len) {
        io->count.short_retries++;
        uint64_t rest = req->len - done;
        int64_t rc = req->op == XD_OP_READ
                         ? xd_pread_full(xd_req_core(req)->fd, (char *)req->buf + done, rest, req->off + done)
                         : xd_pwrite_full(xd_req_core(req)->fd, (char *)req->buf + done, rest, req->off + done);
        if (rc < 0) {
            req->result = rc;
            return;
        }
        done += (uint64_t)rc;
    }
    req->result = (int64_t)done;
}

/* Hand out up to max completions kept for the next reap, oldest first. */
static unsigned fdio_take_early(struct xd_fdio *io, struct xd_req **done, unsigned max)
{
    unsigned n = io->n_early < max ? io->n_early : max;
    if (!n)
        return 0; /* the usual case: spare the library calls */
    memcpy(done, io->early, n * sizeof(*done));
    io->n_early -= n;
    memmove(io->early, io->early + n, io->n_early * sizeof(*io->early));
    return n;
}

int xd_fdio_reap(struct xd_fdio *io, struct xd_req **done, unsigned min, unsigned max,
                 const struct timespec *timeout)
{
    if (!io->queue)
        return 0;
    unsigned got = fdio_take_early(io, done, max);
    while (got < max) {
        /* the kernel can return only what is in flight; held-back requests
         * start as the ones they wait for come back, and are reaped next */
        unsigned want = min > got ? min - got : 0;
        want = want < io->n_in_flight ? want : io->n_in_flight;
        int n = xd_queue_reap(io->queue, done + got, want, max - got, timeout);
        if (n < 0)
            return got ? (int)got : n;
        fdio_retire(io, done + got, n);
        got += (unsigned)n;
        bool staged = false;
        int rc = 0;
        if (io->n_deferred) { /* only they add completions to hand out here */
            rc = fdio_start_deferred(io, &staged);
            got += fdio_take_early(io, done + got, max - got);
        }
        if (rc < 0)
            return got ? (int)got : rc;
        /* what was just sent may be done already (libaio runs buffered I/O
         * inside io_submit): look once more rather than make the caller
         * come back for it */
        if (!staged && (got >= min || n == 0))
            break;
    }
    return (int)got;
}

void xd_fdio_stats_json(const struct xd_fdio *io, struct xd_json *j)
{
    static const char *modes[] = {"sync", "libaio", "io_uring"};
    xd_json_string(j, "async", modes[io->mode]);
    xd_json_uint(j, "direct_alignment", io->align);
    xd_json_uint(j, "nowait_hits", io->count.nowait_hits);
    xd_json_uint(j, "nowait_misses", io->count.nowait_misses);
    xd_json_uint(j, "bounced", io->count.bounced);
    xd_json_uint(j, "read_modify_writes", io->count.rmw);
    xd_json_uint(j, "short_retries", io->count.short_retries);
    xd_json_uint(j, "overlap_waits", io->count.overlap_waits);
    xd_json_uint(j, "overlap_deferrals", io->count.overlap_deferrals);
    xd_json_uint(j, "fixed_buffer_ios", io->queue ? xd_queue_fixed_ios(io->queue) : 0);
}
