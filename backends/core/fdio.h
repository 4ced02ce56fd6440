/* fdio.h - the data path over file descriptors that the file and block
 * drivers share: synchronous pread/pwrite, or a libaio/io_uring queue, with
 * O_DIRECT alignment handled through bounce buffers.
 */
#ifndef XD_FDIO_H
#define XD_FDIO_H

#include "queue.h"
#include "xd_internal.h"

struct xd_json;

struct xd_fdio {
    int mode;                /* enum xd_async_mode */
    unsigned align;          /* O_DIRECT alignment; 0 for buffered I/O */
    struct xd_queue *queue;  /* NULL in sync mode */
    bool try_nowait;         /* io_uring, buffered: read cached data inline */
    unsigned nowait_window, nowait_misses, nowait_skip;
    /* Requests staged or in flight; requests held back, in the order they
     * came, until nothing earlier overlaps them (fdio.c, "Ordering"); and
     * completions waiting for the next reap (reaped while a request waited
     * for an overlapping one, or held-back requests that then ran inline). */
    struct xd_req **in_flight; /* each at xd_req_core(req)->pos */
    unsigned n_in_flight, capacity;
    unsigned n_changing_in_flight; /* writes among them: reads need no scan without */
    struct xd_req **deferred;
    unsigned n_deferred;
    struct xd_req **early;
    unsigned n_early;
    void *bounce;            /* grown on demand, only for unaligned O_DIRECT */
    size_t bounce_size;
    struct {
        uint64_t nowait_hits, nowait_misses, bounced, rmw, short_retries, overlap_waits,
            overlap_deferrals;
    } count;
};

/* memory: the device's (xd_register_memory), for the io_uring queue. */
int xd_fdio_init(struct xd_fdio *io, int mode, unsigned entries, unsigned align,
                 struct xd_io_memory *memory, char *err, size_t errlen);
void xd_fdio_destroy(struct xd_fdio *io);
/* Change the O_DIRECT alignment (0: buffered); drops a bounce buffer aligned
 * for the old value. Only while nothing is in flight. */
void xd_fdio_set_align(struct xd_fdio *io, unsigned align);
/* Read, write, fsync or fdatasync req on fd: XD_DONE (inline, result set) or
 * XD_QUEUED; -EBUSY when the queue is full. A request that overlaps an
 * earlier one still staged, in flight or held back is held back itself
 * (XD_QUEUED) and started by the reap that retires the last of them. */
int xd_fdio_submit(struct xd_fdio *io, int fd, struct xd_req *req);
int xd_fdio_commit(struct xd_fdio *io);
/* Nothing staged, in flight or held back. */
static inline bool xd_fdio_idle(const struct xd_fdio *io)
{
    return !io->n_in_flight && !io->n_deferred;
}
/* Before req runs inline (a trim, or a request flagged XD_REQ_SYNC): send
 * what is staged and reap, keeping the completions for the next
 * xd_fdio_reap, until no request staged, in flight or held back on fd
 * overlaps req. 0 or -errno. */
int xd_fdio_wait_overlaps(struct xd_fdio *io, int fd, const struct xd_req *req);
/* Completions, with short transfers finished so no caller sees one. */
int xd_fdio_reap(struct xd_fdio *io, struct xd_req **done, unsigned min, unsigned max,
                 const struct timespec *timeout);
void xd_fdio_stats_json(const struct xd_fdio *io, struct xd_json *j);

/* Whole-range pread/pwrite that retry short transfers; bytes done or -errno.
 * A read stops early only at end of file. */
int64_t xd_pread_full(int fd, void *buf, uint64_t len, uint64_t off);
int64_t xd_pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off);

#endif
