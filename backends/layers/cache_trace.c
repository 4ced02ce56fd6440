/* cache_trace.c - the block access trace, for xdcachesim to replay. Apart
 * from the cache because it uses none of it: it needs only the request and
 * the file's identity, and works with no cache at all.
 *
 * trace=FILE appends one record per block a request touches (cachesim.h),
 * buffered per device; the layer is in the chain when enable_read_cache or
 * trace is set, and with trace alone it only records.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../core/fileutil.h"
#include "cache_internal.h"

#define CACHE_TRACE_RECS 4096

void trace_flush(struct cache_layer *cl)
{
    size_t len = cl->ntrace * sizeof(*cl->trace);
    if (cl->ntrace && write(cl->trace_fd, cl->trace, len) != (ssize_t)len)
        cl->trace_errors++;
    cl->ntrace = 0;
}

static void trace_add(struct cache_layer *cl, uint64_t file, uint64_t block, unsigned op)
{
    if (cl->ntrace == CACHE_TRACE_RECS)
        trace_flush(cl);
    cl->trace[cl->ntrace++] = xd_trace_make(file, block, op);
    cl->trace_records++;
}

void trace_req(struct cache_layer *cl, const struct cache_handle *h, const struct xd_req *req,
               uint32_t shift)
{
    /* a write-through write that goes around the cache drops its blocks,
     * as a trim does (cache_end_write) */
    unsigned op = req->op == XD_OP_READ                                     ? XD_TRACE_READ
                  : req->op == XD_OP_WRITE && !cache_write_goes_around(cl, req) ? XD_TRACE_WRITE
                                                                            : XD_TRACE_TRIM;
    if (!req->len)
        return;
    for (uint64_t b = req->off >> shift; b <= (req->off + req->len - 1) >> shift; b++)
        trace_add(cl, h->trace_id, b, op);
}

int trace_open(struct cache_layer *cl, const struct xd_config *cfg, uint32_t bs, char *err,
               size_t errlen)
{
    char what[PATH_MAX + 8];
    const char *base;
    snprintf(what, sizeof(what), "trace=%s", cfg->trace);
    int dirfd = xd_dir_open_for(cfg->trace, what, cfg->allow_shared_directories, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    /* jobs and runs append to one trace: reused, but only if it is ours */
    cl->trace_fd = xd_open_own_at(dirfd, base, O_WRONLY | O_APPEND, (mode_t)cfg->file_permissions);
    close(dirfd);
    if (cl->trace_fd < 0) {
        int rc = cl->trace_fd;
        xd_errf(err, errlen, "%s: cannot open: %s", what, xd_refusal(rc));
        return rc;
    }
    cl->trace = malloc(CACHE_TRACE_RECS * sizeof(*cl->trace));
    if (!cl->trace)
        return -ENOMEM;
    /* every writer's records start with a header: jobs append to one file */
    cl->trace[cl->ntrace++] = (struct xd_trace_rec){.file = XD_TRACE_MAGIC,
                                                    .word = (uint64_t)bs << 2 | XD_TRACE_HEADER};
    return 0;
}
