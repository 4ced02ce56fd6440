/* queue.c - libaio and io_uring behind one stage/commit/reap interface.
 *
 * Requests are staged without a syscall and sent in one batch at commit, the
 * way fio's own engines do, so a queue depth of 32 costs one io_submit or
 * io_uring_enter, not 32. Per-request kernel state (a struct iocb) lives in a
 * slot array allocated once, so the data path never calls malloc.
 */
#include "queue.h"

#include <errno.h>
#include <libaio.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "xd_internal.h"

struct xd_queue {
    int mode;
    unsigned entries;
    unsigned in_flight; /* staged + submitted, not yet reaped */
    unsigned staged;
    /* io_uring */
    struct io_uring ring;
    bool ring_ready;
    struct xd_io_memory *memory; /* the device's; NULL: none */
    unsigned memory_gen;         /* the memory->gen last registered */
    uintptr_t fixed_base;        /* registered: [fixed_base, + fixed_len) */
    size_t fixed_len;            /* 0: nothing registered */
    uint64_t fixed_ios;
    /* libaio */
    io_context_t aio;
    struct iocb *iocbs;        /* one per slot */
    struct iocb **pending;     /* staged, in order */
    unsigned *free_slots;      /* stack of free slot indices */
    unsigned nfree;
    struct io_event *events;
};

/* Ring flags, best first: COOP_TASKRUN lets completions wait for our next
 * entry into the kernel instead of interrupting us. Not DEFER_TASKRUN: on
 * this kernel (6.18) a ring with it and an IOSQE_IO_DRAIN fsync behind
 * in-flight O_DIRECT writes sometimes never posts the drained requests
 * (fio direct+io_uring, numjobs=2, fsync=16 hung about one run in six), and
 * measured 4k random reads were no faster with it. Older kernels refuse the
 * newer flags; fall back step by step. */
static const unsigned uring_setup_flags[] = {
    IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_CQSIZE,
};

static int queue_create_uring(struct xd_queue *q, char *err, size_t errlen)
{
    int rc = -EINVAL;
    for (unsigned i = 0; i < sizeof(uring_setup_flags) / sizeof(uring_setup_flags[0]); i++) {
        /* the SQ holds what is staged between commits; the CQ everything in flight */
        struct io_uring_params p = {.flags = uring_setup_flags[i], .cq_entries = q->entries};
        rc = io_uring_queue_init_params(q->entries, &q->ring, &p);
        if (rc != -EINVAL)
            break;
    }
    if (rc < 0) {
        xd_errf(err, errlen, "async=io_uring: io_uring_queue_init(%u) failed: %s%s; allowed: async=libaio or async=sync%s",
                q->entries, strerror(-rc),
                rc == -EPERM ? " (io_uring is refused here: kernel.io_uring_disabled, or a seccomp filter such as a container's)" : "",
                rc == -EINVAL && q->entries > 32768 ? ", or a queue depth (queue_entries, fio's iodepth) of up to 32768" : "");
        return rc;
    }
    q->ring_ready = true;
    return 0;
}

static int queue_create_aio(struct xd_queue *q, char *err, size_t errlen)
{
    q->iocbs = calloc(q->entries, sizeof(*q->iocbs));
    q->pending = calloc(q->entries, sizeof(*q->pending));
    q->free_slots = calloc(q->entries, sizeof(*q->free_slots));
    q->events = calloc(q->entries, sizeof(*q->events));
    if (!q->iocbs || !q->pending || !q->free_slots || !q->events)
        return -ENOMEM;
    for (unsigned i = 0; i < q->entries; i++)
        q->free_slots[i] = q->entries - 1 - i;
    q->nfree = q->entries;
    int rc = io_setup((int)q->entries, &q->aio);
    if (rc < 0) {
        xd_errf(err, errlen, "async=libaio: io_setup(%u) failed: %s (see /proc/sys/fs/aio-max-nr)",
                q->entries, strerror(-rc));
        return rc;
    }
    return 0;
}

int xd_queue_create(struct xd_queue **out, int mode, unsigned entries,
                    struct xd_io_memory *memory, char *err, size_t errlen)
{
    struct xd_queue *q = calloc(1, sizeof(*q));
    int rc;
    if (!q)
        return -ENOMEM;
    q->mode = mode;
    q->entries = entries;
    q->memory = memory;
    if (memory)
        q->memory_gen = memory->gen - 1; /* registers at the first stage */
    rc = mode == XD_ASYNC_IO_URING ? queue_create_uring(q, err, errlen)
                                   : queue_create_aio(q, err, errlen);
    if (rc) {
        xd_queue_destroy(q);
        return rc;
    }
    *out = q;
    return 0;
}

void xd_queue_destroy(struct xd_queue *q)
{
    if (!q)
        return;
    if (q->ring_ready)
        io_uring_queue_exit(&q->ring);
    if (q->aio)
        io_destroy(q->aio);
    free(q->iocbs);
    free(q->pending);
    free(q->free_slots);
    free(q->events);
    free(q);
}

unsigned xd_queue_in_flight(const struct xd_queue *q) { return q->in_flight; }

uint64_t xd_queue_fixed_ios(const struct xd_queue *q) { return q->fixed_ios; }

/* The kernel takes a registered buffer of at most 1 GiB: larger memory is
 * registered as consecutive pieces of that size. */
#define FIXED_PIECE_SHIFT 30

/* Register the device's memory as it is now (memory->gen moved): pinned
 * once, so a request into it skips the pinning of its pages that an
 * O_DIRECT request pays each time otherwise. A kernel that refuses (memory
 * that is not anonymous or shared, a locked-memory limit, an old kernel)
 * leaves nothing registered, and requests go as plain ones; the device's
 * notice says so (xd_dev_notice). */
static void uring_register_memory(struct xd_queue *q)
{
    q->memory_gen = q->memory->gen;
    if (q->fixed_len) {
        io_uring_unregister_buffers(&q->ring);
        q->fixed_len = 0;
    }
    size_t len = q->memory->len, piece = (size_t)1 << FIXED_PIECE_SHIFT;
    if (!len || !q->memory->addr)
        return;
    size_t n = (len + piece - 1) >> FIXED_PIECE_SHIFT;
    struct iovec *iov = calloc(n, sizeof(*iov));
    if (!iov)
        return;
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = (char *)q->memory->addr + (i << FIXED_PIECE_SHIFT);
        iov[i].iov_len = i + 1 < n ? piece : len - (i << FIXED_PIECE_SHIFT);
    }
    int rc = io_uring_register_buffers(&q->ring, iov, (unsigned)n);
    if (!rc) {
        q->fixed_base = (uintptr_t)q->memory->addr;
        q->fixed_len = len;
    } else {
        __atomic_store_n(&q->memory->refused, -rc, __ATOMIC_RELAXED); /* queues of other threads */
    }
    free(iov);
}

/* The registered piece that holds all of [buf, buf + len), or -1. */
static inline int uring_fixed_index(struct xd_queue *q, const void *buf, uint64_t len)
{
    if (!q->memory)
        return -1;
    if (q->memory->gen != q->memory_gen)
        uring_register_memory(q);
    uintptr_t at = (uintptr_t)buf - q->fixed_base; /* wraps far past fixed_len below it */
    if (at >= q->fixed_len || len > q->fixed_len - at ||
        at >> FIXED_PIECE_SHIFT != (at + len - 1) >> FIXED_PIECE_SHIFT)
        return -1;
    return (int)(at >> FIXED_PIECE_SHIFT);
}

/* A read or write, into a registered piece where it lies in one. */
static void uring_prep_rw(struct xd_queue *q, struct io_uring_sqe *sqe, enum xd_op op, int fd,
                          void *buf, uint64_t len, uint64_t off)
{
    int idx = uring_fixed_index(q, buf, len);
    if (idx < 0) {
        if (op == XD_OP_READ)
            io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
        else
            io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
        return;
    }
    q->fixed_ios++;
    if (op == XD_OP_READ)
        io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)len, off, idx);
    else
        io_uring_prep_write_fixed(sqe, fd, buf, (unsigned)len, off, idx);
}

static int stage_uring(struct xd_queue *q, struct xd_req *req, int fd, void *buf, uint64_t len,
                       uint64_t off)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (!sqe)
        return -EBUSY;
    switch (req->op) {
    case XD_OP_READ:
    case XD_OP_WRITE: uring_prep_rw(q, sqe, req->op, fd, buf, len, off); break;
    case XD_OP_FSYNC: io_uring_prep_fsync(sqe, fd, 0); break;
    case XD_OP_FDATASYNC: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
    default: return -EOPNOTSUPP;
    }
    /* a sync covers every write submitted before it, not just completed ones */
    if (req->op == XD_OP_FSYNC || req->op == XD_OP_FDATASYNC)
        sqe->flags |= IOSQE_IO_DRAIN;
    io_uring_sqe_set_data(sqe, req);
    return 0;
}

static int stage_aio(struct xd_queue *q, struct xd_req *req, int fd, void *buf, uint64_t len,
                     uint64_t off)
{
    unsigned slot = q->free_slots[--q->nfree];
    struct iocb *cb = &q->iocbs[slot];
    switch (req->op) {
    case XD_OP_READ: io_prep_pread(cb, fd, buf, len, (long long)off); break;
    case XD_OP_WRITE: io_prep_pwrite(cb, fd, buf, len, (long long)off); break;
    case XD_OP_FSYNC: io_prep_fsync(cb, fd); break;
    case XD_OP_FDATASYNC: io_prep_fdsync(cb, fd); break;
    default: q->nfree++; return -EOPNOTSUPP;
    }
    cb->data = req;
    q->pending[q->staged] = cb;
    return 0;
}

int xd_queue_stage(struct xd_queue *q, struct xd_req *req, int fd, void *buf, uint64_t len,
                   uint64_t off)
{
    if (q->in_flight >= q->entries)
        return -EBUSY;
    int rc = q->mode == XD_ASYNC_IO_URING ? stage_uring(q, req, fd, buf, len, off)
                                          : stage_aio(q, req, fd, buf, len, off);
    if (rc)
        return rc;
    q->staged++;
    q->in_flight++;
    return 0;
}

/* libaio may accept only part of a batch; keep going until all are in or
 * the kernel refuses one, which then completes with that error. */
static int commit_aio(struct xd_queue *q)
{
    unsigned done = 0;
    while (done < q->staged) {
        int rc = io_submit(q->aio, (long)(q->staged - done), q->pending + done);
        if (rc == -EAGAIN || rc == -EINTR)
            continue;
        if (rc < 0)
            return rc;
        done += (unsigned)rc;
    }
    q->staged = 0;
    return (int)done;
}

int xd_queue_commit(struct xd_queue *q)
{
    if (!q->staged)
        return 0;
    if (q->mode != XD_ASYNC_IO_URING)
        return commit_aio(q);
    int total = 0;
    while (q->staged) {
        int rc = io_uring_submit(&q->ring);
        if (rc == -EINTR || rc == -EAGAIN)
            continue;
        if (rc < 0)
            return rc;
        q->staged -= (unsigned)rc < q->staged ? (unsigned)rc : q->staged;
        total += rc;
    }
    return total;
}

/* Move up to max - n available completions into done[n...]. */
static unsigned uring_collect(struct xd_queue *q, struct xd_req **done, unsigned n, unsigned max)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&q->ring, head, cqe) {
        if (n + seen == max)
            break;
        struct xd_req *req = io_uring_cqe_get_data(cqe);
        req->result = cqe->res;
        done[n + seen++] = req;
    }
    io_uring_cq_advance(&q->ring, seen);
    return seen;
}

static int reap_uring(struct xd_queue *q, struct xd_req **done, unsigned min, unsigned max,
                      const struct timespec *timeout)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec kts, *tsp = NULL;
    if (timeout) {
        kts.tv_sec = timeout->tv_sec;
        kts.tv_nsec = timeout->tv_nsec;
        tsp = &kts;
    }
    unsigned n = uring_collect(q, done, 0, max);
    if (!n && !min) {
        /* with COOP_TASKRUN, completions are posted when we enter the kernel */
        io_uring_get_events(&q->ring);
        n = uring_collect(q, done, 0, max);
    }
    while (n < min) {
        int rc = io_uring_wait_cqes(&q->ring, &cqe, min - n, tsp, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && !n)
            return rc;
        n += uring_collect(q, done, n, max);
        if (rc < 0)
            break;
    }
    q->in_flight -= n;
    return (int)n;
}

/* The completion ring the kernel maps at the address io_setup returns
 * (fs/aio.c's struct aio_ring): events are written at tail, the reader
 * consumes from head. */
struct aio_ring_view {
    unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
    struct io_event events[];
};
#define AIO_RING_VIEW_MAGIC 0xa10a10a1u

/* Take up to max completions straight from the ring, without a system call.
 * The kernel publishes an event before moving tail (a write barrier), and
 * reads head under its ring lock in io_getevents and when it counts free
 * slots at submit, so a single reader may move head itself; queue users
 * reap from one thread at a time, as they submit. Zero where the ring is
 * not the layout this knows (then io_getevents does all the work). */
static unsigned aio_ring_collect(struct xd_queue *q, unsigned max)
{
    struct aio_ring_view *ring = (struct aio_ring_view *)q->aio;
    if (ring->magic != AIO_RING_VIEW_MAGIC || ring->incompat_features ||
        ring->header_length != sizeof(*ring))
        return 0;
    unsigned head = ring->head, n = 0;
    unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    while (head != tail && n < max) {
        q->events[n++] = ring->events[head];
        head = head + 1 == ring->nr ? 0 : head + 1;
    }
    if (n)
        __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    return n;
}

/* Completions the ring already holds are taken from it: io_getevents only
 * when fewer than min are there, for the rest. A CPU-bound job at depth
 * almost always finds one there, and the system call it saves is a
 * measurable share of a 4k direct read on a VM. */
static int reap_aio(struct xd_queue *q, struct xd_req **done, unsigned min, unsigned max,
                    const struct timespec *timeout)
{
    struct timespec ts, *tsp = NULL;
    int rc;
    if (max > q->entries)
        max = q->entries;
    if (timeout) {
        ts = *timeout;
        tsp = &ts;
    }
    unsigned got = aio_ring_collect(q, max);
    rc = 0;
    if (got < min) {
        do {
            rc = io_getevents(q->aio, min - got, max - got, q->events + got, tsp);
        } while (rc == -EINTR);
        if (rc < 0 && !got)
            return rc;
    }
    rc = (int)got + (rc > 0 ? rc : 0);
    for (int i = 0; i < rc; i++) {
        struct xd_req *req = q->events[i].data;
        long res = (long)q->events[i].res;
        req->result = res;
        /* the iocb's own place in the slot array: the request's core has
         * no room to keep it (fdio keeps its in-flight index there) */
        q->free_slots[q->nfree++] = (unsigned)(q->events[i].obj - q->iocbs);
        done[i] = req;
    }
    q->in_flight -= (unsigned)rc;
    return rc;
}

int xd_queue_reap(struct xd_queue *q, struct xd_req **done, unsigned min, unsigned max,
                  const struct timespec *timeout)
{
    if (min > q->in_flight)
        min = q->in_flight;
    if (!q->in_flight)
        return 0;
    return q->mode == XD_ASYNC_IO_URING ? reap_uring(q, done, min, max, timeout)
                                        : reap_aio(q, done, min, max, timeout);
}
