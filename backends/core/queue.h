/* queue.h - a kernel I/O queue (libaio or io_uring) that drivers share.
 *
 * Drivers stage requests on file descriptors, commit them in one batch and
 * reap completions; the queue itself knows nothing of layers or files.
 * One queue belongs to one device and is used by one thread at a time.
 */
#ifndef XD_QUEUE_H
#define XD_QUEUE_H

#include <stdint.h>
#include <time.h>

#include "../xdevice.h"

struct xd_queue;

/* Where the device's caller does its I/O (xd_register_memory): [addr,
 * addr + len), nothing when len is 0. gen moves on at each change, so that
 * every queue of the device registers the new memory at its next stage.
 * refused: the errno of a registration the kernel refused (a queue writes
 * it, the device's notice reads it: the caller would otherwise never learn
 * that its requests went as plain ones); 0 while none was. */
struct xd_io_memory {
    void *addr;
    size_t len;
    unsigned gen;
    int refused;
};

/* mode is XD_ASYNC_LIBAIO or XD_ASYNC_IO_URING; entries is the most requests
 * in flight (staged plus submitted). memory (may be NULL) is the device's,
 * read at each stage: an io_uring queue registers it with the kernel and
 * sends reads and writes whose buffer lies inside it as fixed-buffer
 * requests (a refusal is noted in memory->refused). */
int xd_queue_create(struct xd_queue **out, int mode, unsigned entries, struct xd_io_memory *memory,
                    char *err, size_t errlen);
void xd_queue_destroy(struct xd_queue *q);
/* Stage req->op on fd with the given buffer, length and offset (which may
 * differ from req's, e.g. for bounce buffers). -EBUSY when full. */
int xd_queue_stage(struct xd_queue *q, struct xd_req *req, int fd, void *buf, uint64_t len,
                   uint64_t off);
/* Submit everything staged; returns the number submitted or -errno. */
int xd_queue_commit(struct xd_queue *q);
/* Completions: req->result holds the kernel's answer (bytes or -errno). */
int xd_queue_reap(struct xd_queue *q, struct xd_req **done, unsigned min, unsigned max,
                  const struct timespec *timeout);
unsigned xd_queue_in_flight(const struct xd_queue *q);
/* Reads and writes sent as fixed-buffer requests so far. */
uint64_t xd_queue_fixed_ios(const struct xd_queue *q);

#endif
