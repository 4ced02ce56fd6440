/* xdevice_engine.c - the fio adapter over libxdevice, loaded with
 * ioengine=external:build/xdevice.so. It only translates: fio's hooks to
 * xd_submit/xd_commit/xd_reap, fio's options to config keys. Everything about
 * storage lives in backends/. The hooks are here; what they share with
 * the engine's other files is in engine.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

/* --- per-job state -------------------------------------------------------- */

/* The device's notice, once per change: at setup (how a tmpfs came to be
 * used), after each file open (a mirror copy refused or degraded there) and
 * at each file close (io_uring refused to register the job's buffers at
 * its first request). Jobs of one section share their files: the first
 * tells. */
static void fio_xd_tell_notice(struct thread_data *td, struct fio_xd_job *job)
{
    const char *notice = xd_dev_notice(job->dev);
    if (!notice || !strncmp(notice, job->told, sizeof(job->told) - 1))
        return;
    snprintf(job->told, sizeof(job->told), "%s", notice);
    if (td->subjob_number == 0)
        fio_xd_note("xdevice: %s\n", notice);
}

/* --- periodic stats and config reload --------------------------------------
 * The library's monitor does both in the job's own thread between I/Os:
 * fio_xd_tick, called from queue and getevents, polls it, and the engine
 * prints what it has to say. */

/* The monitor's notes, one line each on stderr (a job process leaves with
 * _exit: nothing may wait in a stdio buffer). */
static void fio_xd_tell(struct fio_xd_job *job)
{
    char *line;
    while ((line = xd_monitor_note(job->monitor))) {
        fio_xd_note("xdevice: %s\n", line);
        free(line);
    }
}

/* fio ends a job's ramp_time when it looks at a completion past it, and
 * counts from that completion on; the device's run starts at the next
 * queue or getevents, so xd_stats counts what fio does but for the
 * requests completed in between (at most iodepth). */
static void fio_xd_ramp_ended(struct fio_xd_job *job)
{
    job->in_ramp = false;
    if (xd_stats_start_run(job->dev) == -ENOMEM)
        fio_xd_note("xdevice: out of memory: xd_stats counts ramp_time's I/O too\n");
}

static inline void fio_xd_tick(struct thread_data *td, struct fio_xd_job *job)
{
    if (job->in_ramp && td->ramp_time_over)
        fio_xd_ramp_ended(job);
    if (job->monitor_busy && xd_monitor_poll(job->monitor)) {
        job->monitor_busy = !xd_monitor_idle(job->monitor); /* the watch may have ended */
        fio_xd_tell(job);
    }
}

/* After xd_open: follow xd_config (the first job of its section tells of
 * reloads) and write periodic records, to the log setup made sure of.
 * 0, or the errno of what failed (said in one line). */
static int fio_xd_monitor_open(struct thread_data *td, struct fio_xd_job *job)
{
    struct fio_xd_options *o = td->eo;
    struct xd_config_override *ov = NULL;
    char err[XD_ERRLEN], *log = fio_xd_stats_log_path(o);
    unsigned n = 0;
    int rc = fio_xd_overrides(o, &td->o, &ov, &n, err, sizeof(err));
    struct xd_monitor_opts mo = {
        .config_path = o->config,
        .overrides = ov,
        .n_overrides = n,
        .stats_log = log,
        .name = td->o.name,
        .jobnum = td->subjob_number,
        .config_label = "xd_config",
        .stats_log_label = "xd_stats_log",
        .quiet_reloads = td->subjob_number != 0,
    };
    if (!rc)
        rc = xd_monitor_open(&job->monitor, job->dev, &mo, err, sizeof(err));
    free(ov);
    free(log);
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        return rc < 0 ? -rc : EINVAL;
    }
    job->monitor_busy = !xd_monitor_idle(job->monitor);
    fio_xd_tell(job);
    return 0;
}

/* sync_file_range has no xdevice request: its range and flags mean
 * nothing to most layers (a write-back cache, a compressed container, a
 * tmpfs copy hold data no range of the caller's file names), and its
 * strongest form still promises nothing durable. Each one is served as an
 * fdatasync of the file, which every layer honours: never weaker, only
 * slower than fio's own engines' call. Said once, naming the option as it
 * was written, "write:8" or "wait_before,write,wait_after:1" (fio keeps
 * the flags and the count). */
static void fio_xd_note_sync_file_range(const struct thread_data *td)
{
    char value[64];
    size_t len = sizeof(value);
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {{SYNC_FILE_RANGE_WAIT_BEFORE, "wait_before"},
                 {SYNC_FILE_RANGE_WRITE, "write"},
                 {SYNC_FILE_RANGE_WAIT_AFTER, "wait_after"}};
    size_t at = 0;
    value[0] = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && at < len; i++)
        if (td->o.sync_file_range & names[i].flag)
            at += (size_t)snprintf(value + at, len - at, "%s%s", at ? "," : "", names[i].name);
    if (at < len)
        snprintf(value + at, len - at, ":%u", td->sync_file_range_nr);
    fio_xd_note("xdevice: sync_file_range=%s: each is served as an fdatasync of the file (xdevice has no range sync: its layers hold data no range names); never weaker, but slower than fio's engines' sync_file_range, which promises nothing durable\n",
                value);
}

/* experimental_verify replays the job's offsets and expects each block's
 * header to carry the write at that place in the replay; without the
 * random map a block written twice holds its last write, and the check
 * fails ("bad header numberio"), for psync as for xdevice. fio's own
 * io_uring and libaio engines pass such jobs only because they build the
 * kernel request before fio turns the replayed write into a read: their
 * verify pass writes the expected data and checks it against itself.
 * Said once, before the failure reads as corruption. */
static bool fio_xd_verify_expects_first_writes(struct thread_data *td)
{
    const struct thread_options *o = &td->o;
    return o->experimental_verify && o->norandommap && o->do_verify && o->verify != 0 /* VERIFY_NONE */ &&
           td_write(td) && td_min_bs(td) == td_max_bs(td) && !o->time_based;
}

/* Refuse job shapes the chain cannot serve (what needs the device; setup
 * refused the rest), with one line each: 0, or EOPNOTSUPP. */
static int fio_xd_check_job(struct thread_data *td, struct xd_dev *dev)
{
    const struct xd_config *cfg = xd_dev_config(dev);
    const char *type = xd_config_get(cfg, "storage_type");
    if (td_trim(td) && !(xd_dev_caps(dev) & XD_CAP_TRIM)) {
        fio_xd_err("xdevice: rw=%s: storage_type=%s does not serve trims%s\n",
                td->o.td_ddir & TD_DDIR_RAND ? "randtrim" : "trim", type,
                (xd_config_caps(cfg) & XD_CFG_TRIM_KEY) ? "; set xd_enable_trim=1" : "");
        return EOPNOTSUPP;
    }
    return 0;
}

/* Whether every file the job names is one the device serves inline in any
 * async mode, given the job's largest write (xd_dev_caps_for: the regular
 * and tmpfs types' files on a tmpfs, unless io_uring is to copy long writes
 * on a worker). Such requests complete within queue whatever fio is told,
 * so telling fio they were queued bought nothing but its async bookkeeping
 * per request (about 5% of a cached 4k read). A file the job opens later
 * than fio's list says is still served right, waited for in queue like
 * the rest. */
static bool fio_xd_files_inline(struct thread_data *td, struct xd_dev *dev)
{
    uint64_t largest_write = td_write(td) ? td->o.max_bs[DDIR_WRITE] : 0;
    struct fio_file *f;
    unsigned i;
    if (!td->files_index)
        return false;
    for_each_file(td, f, i)
        if (xd_dev_caps_for(dev, f->file_name, largest_write) & XD_CAP_ASYNC)
            return false;
    return true;
}

/* init failed (said in one line already): the job's error, which fio
 * prints at its end (err=N/..., func=...) and puts in its JSON, is what
 * failed, as fio's own engines record theirs. Otherwise it would be err=1
 * beside whatever fio noted first, such as the ENOENT of a file it was
 * about to lay out. */
static int fio_xd_init_failed(struct thread_data *td, int err, const char *func)
{
    td_verror(td, err, func);
    return 1;
}

static int fio_xd_init(struct thread_data *td)
{
    struct fio_xd_job *job;
    struct xd_config *cfg;
    char err[XD_ERRLEN];

    if (fio_xd_unusable) /* said once, when the engine was loaded */
        return fio_xd_init_failed(td, EINVAL, "the engine's fio version");
    job = calloc(1, sizeof(*job));
    if (!job)
        return fio_xd_init_failed(td, ENOMEM, "calloc");
    job->sync_fd = -1;
    job->in_ramp = td->o.ramp_time != 0;
    td->io_ops_data = job; /* cleanup frees it from here on */
    if (fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        fio_xd_err("xdevice: %s\n", err);
        return fio_xd_init_failed(td, EINVAL, "xdevice config");
    }
    unsigned depth = td->o.iodepth ? td->o.iodepth : 1;
    const char *mode = xd_config_get(cfg, "async");
    bool asked_async = mode && strcmp(mode, "sync") != 0;
    const char *type = xd_config_get(cfg, "storage_type");
    bool mmap_type = type && !strcmp(type, "mmap");
    job->engine_lays_out = xd_config_caps(cfg) & (XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE);
    int rc = xd_open(&job->dev, cfg, depth, err, sizeof(err));
    xd_config_free(cfg);
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        return fio_xd_init_failed(td, -rc, "xd_open");
    }
    if ((rc = fio_xd_check_job(td, job->dev)))
        return fio_xd_init_failed(td, rc, "xdevice job check");
    /* before the run, not after it: a stats file that cannot be written
     * would otherwise fail the job once its work is done */
    struct fio_xd_options *eo = td->eo;
    if (eo->stats && (rc = xd_stats_publish_check(job->dev, eo->stats, err, sizeof(err)))) {
        fio_xd_err("xdevice: %s\n", err);
        job->stats_refused = true;
        return fio_xd_init_failed(td, -rc, "xd_stats");
    }
    if ((rc = fio_xd_monitor_open(td, job)))
        return fio_xd_init_failed(td, rc, "xd_monitor_open");
    job->nreqs = depth;
    job->reqs = calloc(depth, sizeof(*job->reqs));
    job->events = calloc(depth, sizeof(*job->events));
    job->ready = job->ready_buf = calloc(2 * (size_t)depth, sizeof(*job->ready));
    job->ready_end = job->ready_buf + 2 * (size_t)depth;
    job->issued = calloc(depth, sizeof(*job->issued));
    if (!job->reqs || !job->events || !job->ready || !job->issued)
        return fio_xd_init_failed(td, ENOMEM, "calloc");
    job->sync_fd = memfd_create("xdevice-fsync", MFD_CLOEXEC);
    if (job->sync_fd < 0) {
        rc = errno;
        log_err("xdevice: memfd_create: %s\n", strerror(rc));
        return fio_xd_init_failed(td, rc, "memfd_create");
    }
    /* Engine flags are per job (td->flags) from here on. FIO_SYNCIO makes fio
     * cap iodepth at 1: say so only when true. FIO_RAWIO makes fio
     * page-align its buffers, as it does for direct=1, so O_DIRECT requests
     * need no bounce buffer. */
    unsigned caps = xd_dev_caps(job->dev);
    /* At iodepth=1 nothing can overlap, so an async device is driven as a
     * sync engine (queue waits for its one request): fio's async
     * bookkeeping per request (issue times, slat, a getevents call) is then
     * skipped, as it is for psync. So is it when every file of the job
     * would complete each request inline anyway (fio_xd_files_inline).
     * Except for a verify job that asked for an async mode: it is driven
     * as fio's libaio and io_uring engines drive theirs, every request
     * queued, at any depth and on any file. fio keeps its books on the two
     * paths differently (do_io counts a request's bytes as issued only
     * when it was queued), and some jobs verify on one path and not on the
     * other: rw=rw:8k with bs_unaligned=1 and loops=2 fails on fio's psync
     * and mmap engines and passes on its libaio and io_uring ones, and it
     * failed the same way on every type driven as a sync engine here. Not
     * with experimental_verify: fio's replay then gets a randrw job's
     * directions wrong, which its libaio and io_uring engines hide by
     * writing during the verify pass and its posixaio engine, queued as
     * xdevice would be, fails (t0026, tests/e2e/test_conformance.py);
     * driven as a sync engine such a time_based job passes, since fio
     * starts no verify pass for it. Nor on the mmap type, whose
     * counterpart is fio's mmap engine, a sync engine: its requests never
     * stay in flight, and fio's books on the two paths part the other way
     * too (rw=randrw, bs_unaligned=1, time_based: fio's mmap and psync
     * engines pass it, its libaio and io_uring ones fail to verify it, and
     * so did the mmap type driven queued). */
    bool verifies = td->o.verify != 0 /* VERIFY_NONE */ && !td->o.experimental_verify;
    bool async = (asked_async && verifies && !mmap_type) || ((caps & XD_CAP_ASYNC) && depth > 1);
    job->all_queued = async && (verifies || !fio_xd_files_inline(td, job->dev));
    job->stamps_issue = async && !job->all_queued;
    if (!async)
        td->flags |= (unsigned long long)FIO_SYNCIO << TD_ENG_FLAG_SHIFT;
    else /* issue_time is the commit's, as for fio's libaio and io_uring
          * engines, or queue's own (stamps_issue) */
        td->flags |= (unsigned long long)FIO_ASYNCIO_SETS_ISSUE_TIME << TD_ENG_FLAG_SHIFT;
    if (job->all_queued) /* fio stamps a trim's issue_time: fio_xd_trims_inline */
        td->flags |= (unsigned long long)FIO_ASYNCIO_SYNC_TRIM << TD_ENG_FLAG_SHIFT;
    if (caps & XD_CAP_DIRECT_IO)
        td->flags |= (unsigned long long)FIO_RAWIO << TD_ENG_FLAG_SHIFT;
    fio_xd_tell_notice(td, job);
    return 0;
}

static int fio_xd_io_u_init(struct thread_data *td, struct io_u *io_u)
{
    struct fio_xd_job *job = td->io_ops_data;
    /* io_u->index shares a union with engine_data: keep state by index */
    if (io_u->index >= job->nreqs) {
        fio_xd_err("xdevice: io_u index %u beyond iodepth %u\n", io_u->index, job->nreqs);
        return 1;
    }
    job->reqs[io_u->index].user = io_u;
    return 0;
}

/* After fio has made the job's buffers (init_io_u runs between init and
 * post_init): tell the device where they lie, from the lowest io_u buffer
 * to the end of the highest, so that io_uring mode sends the reads and
 * writes into them as fixed buffers (xd_register_memory). Not for a job
 * that replays an I/O log: there fio frees its buffers and makes them again
 * mid-run when the log asks for a larger block (iolog.c, blktrace.c), and
 * I/O into registered pages freed under it would land in the old pages. */
static int fio_xd_post_init(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    uintptr_t low = UINTPTR_MAX, high = 0, bs = (uintptr_t)td_max_bs(td);
    if (td->o.read_iolog_file)
        return 0;
    for (unsigned i = 0; i < job->nreqs; i++) {
        const struct io_u *io_u = job->reqs[i].user;
        if (!io_u || !io_u->buf)
            return 0; /* no data buffers (fio's FIO_NOIO, or a job that moves no data) */
        uintptr_t at = (uintptr_t)io_u->buf;
        low = at < low ? at : low;
        high = at + bs > high ? at + bs : high;
    }
    if (high > low)
        xd_register_memory(job->dev, (void *)low, high - low);
    return 0;
}

static const enum xd_op fio_xd_ops_by_ddir[] = {
    [DDIR_READ] = XD_OP_READ,  [DDIR_WRITE] = XD_OP_WRITE,          [DDIR_TRIM] = XD_OP_TRIM,
    [DDIR_SYNC] = XD_OP_FSYNC, [DDIR_DATASYNC] = XD_OP_FDATASYNC,
    [DDIR_SYNC_FILE_RANGE] = XD_OP_FDATASYNC, /* fio_xd_note_sync_file_range */
};

/* A failed request's error into its io_u; a data error the library can
 * explain (which chunk of which file is corrupt) is said once. */
static __attribute__((noinline, cold)) void fio_xd_fail(struct fio_xd_job *job,
                                                        const struct xd_req *req,
                                                        struct io_u *io_u)
{
    char line[XD_ERRLEN];
    io_u->error = (unsigned)-req->result;
    if (!xd_dev_take_error(job->dev, line, sizeof(line)))
        fio_xd_err("xdevice: %s\n", line);
}

/* Copy a finished request's outcome into its io_u. Inline, the failure
 * apart: it runs once per request, and its call was about 10 of its
 * instructions. */
static inline struct io_u *fio_xd_finish(struct fio_xd_job *job, struct xd_req *req)
{
    struct io_u *io_u = req->user;
    if (req->result < 0) {
        fio_xd_fail(job, req, io_u);
    } else {
        io_u->error = 0;
        if (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE)
            io_u->resid = io_u->xfer_buflen - (unsigned long long)req->result;
    }
    return io_u;
}

/* Room for want more requests at the ready list's tail (want at most
 * nreqs - nready: fio never has more than iodepth requests out). The list
 * moves back to the front of ready_buf only when its tail would pass the
 * end, at most once per iodepth requests taken: taking from its head used
 * to move the rest down every time, a memmove of up to iodepth pointers per
 * request (about 30 instructions per 4k read of make perf's io_uring row,
 * whose cached reads complete inline). */
static void fio_xd_ready_room(struct fio_xd_job *job, unsigned want)
{
    if (job->ready + job->nready + want > job->ready_end) {
        memmove(job->ready_buf, job->ready, job->nready * sizeof(*job->ready));
        job->ready = job->ready_buf;
    }
}

static inline void fio_xd_ready_push(struct fio_xd_job *job, struct xd_req *req)
{
    struct xd_req **tail = job->ready + job->nready;
    if (tail == job->ready_end) {
        fio_xd_ready_room(job, 1);
        tail = job->ready + job->nready;
    }
    *tail = req;
    job->nready++;
}

/* A sync job's one request went to the kernel's queue (io_uring at
 * iodepth=1): send it and wait for it here. A failure to send or reap
 * completes it with that error. */
static void fio_xd_wait_one(struct fio_xd_job *job, struct xd_req *req)
{
    struct xd_req *done = NULL;
    int rc = xd_commit(job->dev);
    while (rc >= 0 && !done) {
        rc = xd_reap(job->dev, &done, 1, 1, NULL);
        if (rc == -EINTR)
            rc = 0;
    }
    if (rc < 0)
        req->result = rc;
    else if (done != req) /* only one request is ever in flight here */
        req->result = -EIO;
}

/* Send req and wait for it while an async job's other requests are in
 * flight: those the device finishes meanwhile join the ready list, where
 * getevents hands them to fio (it has room: fio never has more than
 * iodepth requests out). A failure to send or reap completes req with
 * that error. */
static void fio_xd_wait_among(struct fio_xd_job *job, struct xd_req *req)
{
    int rc = xd_commit(job->dev);
    while (rc >= 0) {
        fio_xd_ready_room(job, job->nreqs - job->nready);
        struct xd_req **got = job->ready + job->nready;
        rc = xd_reap(job->dev, got, 1, job->nreqs - job->nready, NULL);
        if (rc == -EINTR)
            rc = 0;
        unsigned n = rc > 0 ? (unsigned)rc : 0, at = 0;
        while (at < n && got[at] != req)
            at++;
        if (at < n) /* req: out of the list, the others keep their order */
            memmove(got + at, got + at + 1, (--n - at) * sizeof(*got));
        job->nready += n;
        job->in_device -= n < job->in_device ? n : job->in_device;
        if (rc > 0 && n < (unsigned)rc)
            return;
    }
    req->result = rc;
}

/* fio's libaio and io_uring engines trim synchronously
 * (FIO_ASYNCIO_SYNC_TRIM): after the requests staged before it are sent,
 * the trim completes within queue, and fio, which counts a pass's bytes
 * only for queued requests (backend.c, io_queue_event), does not count
 * its bytes. Answered queued, a trimwrite job's trim_backlog trims ended
 * its pass early: 905216 of the 1048576 bytes written that fio's libaio
 * engine writes (trim_percentage=30, trim_backlog=8, iodepth=8). So an
 * async job trims as those engines do. */
static bool fio_xd_trims_inline(const struct fio_xd_job *job, const struct io_u *io_u)
{
    return job->all_queued && io_u->ddir == DDIR_TRIM;
}

/* A read or write that moved no bytes (a read at or past the end of a
 * file: a read_iolog replayed onto a smaller one) is an error to fio's sync
 * path ("full resid", EIO) and a completion of 0 bytes to its async path,
 * so psync fails such a job and libaio and io_uring pass it. A job that
 * asked for an async mode and is driven as a sync engine (iodepth=1, or
 * files that complete inline) hands such a request back through
 * getevents, as those engines would. */
static bool fio_xd_hands_back_empty(const struct fio_xd_job *job, const struct io_u *io_u)
{
    /* the chain's caps last: this runs for every request of a sync job */
    return !io_u->error && io_u->xfer_buflen && io_u->resid == io_u->xfer_buflen &&
           (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE) &&
           (xd_dev_caps(job->dev) & XD_CAP_ASYNC);
}

static enum fio_q_status fio_xd_queue(struct thread_data *td, struct io_u *io_u)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_req *req = &job->reqs[io_u->index];

    fio_ro_check(td, io_u);
    fio_xd_tick(td, job);
    if (io_u->ddir > DDIR_SYNC_FILE_RANGE) {
        io_u->error = EINVAL;
        return FIO_Q_COMPLETED;
    }
    if (fio_xd_trims_inline(job, io_u) && job->nissued)
        return FIO_Q_BUSY; /* as fio's engines: fio commits the staged ones first */
    req->op = fio_xd_ops_by_ddir[io_u->ddir];
    req->file = FILE_ENG_DATA(io_u->file);
    req->buf = io_u->xfer_buf;
    req->len = io_u->xfer_buflen;
    req->off = io_u->offset;
    if (io_u->ddir == DDIR_SYNC_FILE_RANGE)
        req->len = req->off = 0; /* the whole file (fio_xd_note_sync_file_range) */
    bool stamp = job->stamps_issue && fio_fill_issue_time(td);
    if (stamp)
        fio_gettime(&io_u->issue_time, NULL);
    int rc = xd_submit(job->dev, req);
    if (rc == -EBUSY)
        return FIO_Q_BUSY;
    if (stamp) /* its slat, as commit records for a queued one: slat + clat = lat */
        io_u_queued(td, io_u);
    if (fio_xd_trims_inline(job, io_u)) {
        if (rc != XD_DONE)
            fio_xd_wait_among(job, req);
        io_u_mark_submit(td, 1);
        io_u_mark_complete(td, 1);
        fio_xd_finish(job, req);
        return FIO_Q_COMPLETED;
    }
    if (!job->all_queued) {
        if (rc != XD_DONE)
            fio_xd_wait_one(job, req);
        fio_xd_finish(job, req);
        if (fio_xd_hands_back_empty(job, io_u)) {
            io_u_mark_submit(td, 1); /* no slat: the job's other requests have none */
            fio_xd_ready_push(job, req);
            return FIO_Q_QUEUED;
        }
        /* what fio's sync engines do, since this engine has a commit hook */
        io_u_mark_submit(td, 1);
        io_u_mark_complete(td, 1);
        return FIO_Q_COMPLETED;
    }
    /* Async: always FIO_Q_QUEUED, as fio's libaio and io_uring engines do.
     * fio counts a pass's bytes only for queued requests (backend.c,
     * io_queue_event); a mix of inline and queued completions makes a
     * time_based verify pass run past the random map's wrap, so one block is
     * logged twice and verified against its older write. */
    if (rc == XD_DONE) {
        fio_xd_ready_push(job, req);
    } else {
        job->in_device++;
        job->unsent = true;
    }
    job->issued[job->nissued++] = io_u;
    return FIO_Q_QUEUED;
}

/* Issue time and slat of everything queued since the last commit, and the
 * submit-depth histogram, as fio's own async engines record them. */
static void fio_xd_mark_issued(struct thread_data *td, struct fio_xd_job *job)
{
    if (!job->nissued)
        return;
    if (fio_fill_issue_time(td)) {
        struct timespec now;
        fio_gettime(&now, NULL);
        for (unsigned i = 0; i < job->nissued; i++) {
            job->issued[i]->issue_time = now;
            io_u_queued(td, job->issued[i]);
        }
        if (td->o.read_iolog_file)
            td->last_issue = now;
    }
    io_u_mark_submit(td, job->nissued);
    job->nissued = 0;
}

/* fio commits before every wait for completions too, twice per request at
 * depth; with nothing queued in the device since the last commit there is
 * nothing to send (layers send what they stage outside a submit themselves:
 * xd_ops.commit), and the walk down the chain was about 80 instructions
 * per request of the async rows of make perf's instr section. */
static int fio_xd_commit(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    int rc = job->unsent ? xd_commit(job->dev) : 0;
    if (rc >= 0)
        job->unsent = false;
    fio_xd_mark_issued(td, job);
    return rc < 0 ? rc : 0;
}

/* Up to max of the requests completed inline, oldest first, into
 * job->events from index at. */
static unsigned fio_xd_take_ready(struct fio_xd_job *job, unsigned at, unsigned max)
{
    unsigned n = 0;
    while (at + n < max && n < job->nready) {
        job->events[at + n] = job->ready[n];
        n++;
    }
    if (n) {
        job->nready -= n;
        job->ready = job->nready ? job->ready + n : job->ready_buf;
    }
    return n;
}

/* What the device has finished, into job->events from index at. */
static int fio_xd_reap_device(struct fio_xd_job *job, unsigned at, unsigned min, unsigned max,
                              const struct timespec *t)
{
    int rc = xd_reap(job->dev, job->events + at, min, max - at, t);
    if (rc > 0)
        job->in_device -= (unsigned)rc < job->in_device ? (unsigned)rc : job->in_device;
    return rc;
}

/* Inline completions and the device's take turns at the front. fio asks
 * for one event at a time (iodepth_batch_complete_max=0 makes max = min),
 * so taking the inline ones first left a request the device had finished
 * unreaped for as long as inline ones kept coming: 0.5-1.2 s on the
 * compressed type, whose decoded-cache hits complete inline and whose
 * misses go to its worker pool. */
static int fio_xd_getevents(struct thread_data *td, unsigned int min, unsigned int max,
                            const struct timespec *t)
{
    struct fio_xd_job *job = td->io_ops_data;
    unsigned n = 0;
    int rc;
    fio_xd_tick(td, job);
    if (max > job->nreqs)
        max = job->nreqs;
    /* fio may poll (min 0) before it commits: a request handed back here
     * must have its issue time, and may be queued again before the commit */
    fio_xd_mark_issued(td, job);
    job->device_turn = !job->device_turn;
    if (job->device_turn && job->in_device) {
        rc = fio_xd_reap_device(job, 0, 0, max, t); /* min 0: never waits */
        if (rc < 0)
            return rc;
        n = (unsigned)rc;
    }
    n += fio_xd_take_ready(job, n, max);
    if (n == max)
        return (int)n;
    rc = fio_xd_reap_device(job, n, min > n ? min - n : 0, max, t);
    if (rc < 0)
        return n ? (int)n : rc;
    return (int)n + rc;
}

static struct io_u *fio_xd_event(struct thread_data *td, int event)
{
    struct fio_xd_job *job = td->io_ops_data;
    return fio_xd_finish(job, job->events[event]);
}

/* allow_file_create=0, and f is not there: fio's own engines refuse to
 * make it, and so does xdevice, whatever the type (containers are made in
 * setup, tmpfs and hybrid files at open). */
void fio_xd_refuse_create(struct thread_data *td, const struct fio_file *f,
                                 const char *why)
{
    if (why)
        fio_xd_err("xdevice: %s; allow_file_create=0 forbids creating it\n", why);
    else
        fio_xd_err("xdevice: %s: no such file; allow_file_create=0 forbids creating it\n",
                   fio_xd_shown(f->file_name));
    td_verror(td, ENOENT, "file_create");
}

/* fio's pre_read=1 opens each file before the job's first request and
 * read(2)s f->fd from the job's offset in it for its io_size, to bring the
 * file into memory. The data lives wherever the chain keeps it, so the
 * engine reads that range through the device instead (every level warms:
 * page cache, xdevice's cache, decoded chunks), in fio's read block size;
 * the reads count in xd_stats. fio's own loop then reads zeros from holes
 * of the job's memfd, which is made long enough for it (no memory).
 * fio pre-reads every file once, in order, before any other open after
 * init, so the first open of each in turn is its pre-read. */
static bool fio_xd_pre_read_open(struct thread_data *td, struct fio_xd_job *job,
                                 const struct fio_file *f)
{
    if (!td->o.pre_read || job->pre_read >= td->files_index || f->fileno != (int)job->pre_read)
        return false;
    job->pre_read++;
    return true;
}

static int fio_xd_pre_read(struct thread_data *td, struct fio_xd_job *job, struct xd_file *file,
                           struct fio_file *f)
{
    uint64_t end = f->file_offset + f->io_size;
    size_t bs = td->o.max_bs[DDIR_READ] ? td->o.max_bs[DDIR_READ] : 4096;
    void *buf = NULL; /* aligned, as O_DIRECT chains (direct, block) want */
    if (posix_memalign(&buf, 4096, bs))
        return ENOMEM;
    int rc = 0;
    for (uint64_t off = f->file_offset; off < end && !td->terminate;) {
        size_t len = end - off < bs ? (size_t)(end - off) : bs;
        ssize_t n = xd_read(job->dev, file, buf, len, off);
        if (n <= 0) { /* the end of the file, or an error */
            rc = n < 0 ? (int)-n : 0;
            break;
        }
        off += (uint64_t)n;
    }
    free(buf);
    struct stat st;
    if (!rc && !fstat(job->sync_fd, &st) && (uint64_t)st.st_size < end &&
        ftruncate(job->sync_fd, (off_t)end))
        rc = errno;
    return rc;
}

static int fio_xd_open_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file;
    char err[XD_ERRLEN];
    /* A job that only reads opens what is there, as fio's engines do: fio
     * laid its files out (setup made and laid out the types whose files the
     * engine makes, fio_xd_prepare_container), and one still missing or
     * short reads as missing or short (psync: ENOENT, or EIO at the end),
     * never as zeros the open made up: a file setup did not know (an
     * iolog's), or one the job itself removed (unlink_each_loop). */
    bool reads_only = !td_write(td) && !td_trim(td);
    bool makes = td->o.allow_create && !reads_only;
    unsigned flags = read_only ? XD_OPEN_READONLY /* fio --readonly */
                     : makes ? XD_OPEN_CREATE : 0;
    if (!job) { /* fio opens some files before init; xdevice owns none then */
        fio_xd_err("xdevice: %s: fio opened it before the engine was initialised\n",
                   fio_xd_shown(f->file_name));
        return 1;
    }
    /* fill_device: fio's size for the file is unbounded (-1 plus the
     * offset); the file grows as it is written, so it names none */
    uint64_t size = td->o.fill_device || !makes ? 0 : f->real_file_size;
    int rc = xd_file_open(job->dev, f->file_name, flags, size, &file, err, sizeof(err));
    /* a job that neither writes nor trims: fio's own engines open its files
     * O_RDONLY, so a file it may read but not write (mode 0444, another
     * user's readable file, an immutable file or a read-only mount) serves
     * it; opened for writing first, it failed the job here */
    if ((rc == -EACCES || rc == -EPERM || rc == -EROFS) && !(flags & XD_OPEN_READONLY) &&
        reads_only)
        rc = xd_file_open(job->dev, f->file_name, XD_OPEN_READONLY, size, &file, err,
                          sizeof(err));
    if (rc == -ENOENT && !td->o.allow_create) {
        fio_xd_refuse_create(td, f, err);
        return 1;
    } else if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        td_verror(td, -rc, "xd_file_open");
        return 1;
    }
    FILE_SET_ENG_DATA(f, file);
    f->engine_pos = FIO_XD_USED; /* fio_xd_unlink_file */
    fio_xd_tell_notice(td, job);
    /* damage the open found and let pass (a container's bad map entries:
     * their chunks read EIO), said now rather than at the first such read */
    if (!xd_dev_take_error(job->dev, err, sizeof(err)))
        fio_xd_err("xdevice: %s\n", err);
    if (fio_xd_pre_read_open(td, job, f) && (rc = fio_xd_pre_read(td, job, file, f))) {
        fio_xd_err("xdevice: %s: pre_read failed: %s\n", fio_xd_shown(f->file_name), strerror(rc));
        td_verror(td, rc, "pre_read");
        xd_file_close(job->dev, file);
        FILE_SET_ENG_DATA(f, NULL);
        return 1;
    }
    /* fio calls fsync(f->fd) itself for fsync_on_close, before close_file,
     * and fadvise(f->fd) for fadvise_hint. The data may live anywhere in the
     * chain (a write-back cache, a tmpfs, a container), so f->fd is the job's
     * memfd, where those calls succeed and do nothing, and close_file syncs
     * through the whole chain instead. */
    f->fd = job->sync_fd;
    return 0;
}

static int fio_xd_close_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file = FILE_ENG_DATA(f);
    char line[XD_ERRLEN];
    int rc = 0;
    const char *what = "fsync_on_close";
    if (file && should_fsync(td) && td->o.fsync_on_close)
        rc = -xd_flush(job->dev, file, 0);
    /* data the device had taken but could not write (a write-back cache's
     * blocks on a full file system): the job fails, as its writes would
     * have with fio's own engines */
    int closed = file ? -xd_file_close(job->dev, file) : 0;
    if (!rc && closed) {
        rc = closed;
        what = "close";
    }
    if (closed && !xd_dev_take_error(job->dev, line, sizeof(line)))
        fio_xd_err("xdevice: %s\n", line);
    if (file) /* what the run itself found (io_uring refused the job's buffers) */
        fio_xd_tell_notice(td, job);
    FILE_SET_ENG_DATA(f, NULL);
    f->fd = -1;
    if (rc)
        td_verror(td, rc, what);
    return rc;
}

/* fio runs setup before it lays files out (in the parent, one job after
 * another, unless create_serialize=0), so a config that cannot work stops
 * fio before it writes anything. An engine with a setup hook sizes the
 * files itself. Jobs of one section share their options: a failure is said
 * once, not once per job. */
static int fio_xd_setup(struct thread_data *td)
{
    static char last_err[XD_ERRLEN];
    char err[XD_ERRLEN];
    struct xd_config *cfg;
    struct fio_file *f;
    unsigned i;
    int rc = 0;

    if (fio_xd_unusable)
        return 1;
    if (fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        if (strcmp(err, last_err))
            fio_xd_err("xdevice: %s\n", err);
        snprintf(last_err, sizeof(last_err), "%s", err);
        td_verror(td, EINVAL, "xdevice config"); /* the job's result: fio's err=22 */
        return 1;
    }
    if (td->o.sync_file_range && td->subjob_number == 0)
        fio_xd_note_sync_file_range(td);
    if (fio_xd_verify_expects_first_writes(td) && td->subjob_number == 0)
        fio_xd_note("xdevice: experimental_verify=1 with norandommap=1: a block written twice fails fio's verify, which expects its first write (fio's psync fails such jobs too; its io_uring and libaio engines pass them only because their verify pass writes the expected data instead of reading it)\n");
    struct fio_xd_options *o = td->eo;
    if (o->direct_refused && td->subjob_number == 0)
        fio_xd_note("xdevice: %s; the job runs buffered\n", o->direct_why);
    fio_xd_note_unread(td, cfg);
    const char *interval = xd_config_get(cfg, "metrics_interval_sec");
    if (strcmp(interval, "0") && !o->stats_log && !o->stats) {
        const char *origin = xd_config_origin(cfg, "metrics_interval_sec");
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: metrics_interval_sec=%s (%s): periodic stats need a file; allowed: with xd_stats_log=FILE, or xd_stats=FILE (records then go to FILE.jsonl), or 0\n",
                    interval, origin ? origin : "default");
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    /* fio's offload workers queue through threads of their own with this
     * engine's state: the job crashed (SIGSEGV, then a double free) */
    if (td->o.io_submit_mode == IO_MODE_OFFLOAD) {
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: io_submit_mode=offload: not supported by the xdevice engine; allowed: io_submit_mode=inline (the default)\n");
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    if (!strcmp(interval, "0") && o->stats_log) { /* a file no record would go to */
        if (td->subjob_number == 0)
            fio_xd_err("xdevice: xd_stats_log=%s: periodic stats are off (metrics_interval_sec=0); allowed: with xd_stats_interval=SECONDS (or metrics_interval_sec), or no xd_stats_log\n",
                       fio_xd_shown(o->stats_log));
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    if (fio_xd_check_base_directory(td, cfg) || fio_xd_check_outputs(td, cfg)) {
        xd_config_free(cfg);
        td_verror(td, EINVAL, "xdevice config");
        return 1;
    }
    o->stats_jobs = o->stats && td->o.create_serialize ? fio_xd_stats_jobs(o->stats) : 0;
    /* fio lays out neither a container nor a path where no data is kept */
    bool own_format = xd_config_caps(cfg) & (XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE);
    fio_xd_sparse_layout(td, cfg);
    if (own_format)
        rc = fio_xd_prepare_containers(td, cfg);
    else
        for_each_file(td, f, i) {
            if (fio_xd_get_file_size(td, f) && td->error != ENOENT) {
                rc = 1;
                break;
            }
            td_clear_error(td); /* missing: fio lays it out */
        }
    if (!rc && !own_format && (xd_config_caps(cfg) & XD_CFG_WRITES_RECORDED))
        rc = fio_xd_lay_out_recorded(td, cfg);
    xd_config_free(cfg);
    return rc;
}

/* A run id shared by every job of one fio invocation, thread or process:
 * the fio main process's pid and start time (so a reused pid is a new run). */
static void fio_xd_run_id(struct thread_data *td, char *buf, size_t len)
{
    pid_t main_pid = td->o.use_thread ? getpid() : getppid();
    unsigned long long start = 0;
    char path[64], stat[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)main_pid);
    FILE *fp = fopen(path, "re");
    if (fp) {
        if (fgets(stat, sizeof(stat), fp)) {
            const char *p = strrchr(stat, ')'); /* the command name may hold spaces */
            if (p)
                sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                       &start);
        }
        fclose(fp);
    }
    snprintf(buf, len, "%d-%llu", (int)main_pid, start);
}

/* Under fio --server the stats file is written on the server; the
 * document also goes to the fio client, as one line "xdevice-stats: {...}"
 * that the client prints before fio's JSON (prefixed "<host> "), so that
 * every host's figures come back to the one place the run started from.
 * Each job sends the document as it stands after its own publish: the one
 * with the most jobs is the run's (xdtune and xdreport read these lines;
 * docs/DESIGN.md, "Many hosts"). */
static void fio_xd_send_stats(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > (16 << 20)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char *doc = malloc((size_t)st.st_size + 1);
    ssize_t got = doc ? pread(fd, doc, (size_t)st.st_size, 0) : -1;
    close(fd);
    if (got > 0) {
        doc[got] = '\0';
        for (char *c = doc; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' '; /* one line: the client's reader splits on newlines */
        /* log_err: sent to the client like any server text; should the
         * client be gone, the server's stderr gets it, never its stdout
         * (where log_info falls back to, and fio's JSON goes) */
        log_err("xdevice-stats: %s\n", doc);
    }
    free(doc);
}

static void fio_xd_report(struct thread_data *td, struct fio_xd_job *job)
{
    struct fio_xd_options *o = td->eo;
    char err[XD_ERRLEN], run_id[64], shown[XD_ESCAPE_LEN];
    /* the name escaped on the stack: fio_xd_shown's buffer is the thread's
     * TLS, which glibc may free from another thread as this one ends, and
     * TSan takes a write to it this late for a race with that free */
    if (xd_stats_slow_summary(job->dev, err, sizeof(err)))
        fio_xd_note("xdevice: %s: %s\n", xd_escape(td->o.name, shown, sizeof(shown)), err);
    if (!o->stats || job->stats_refused)
        return;
    fio_xd_run_id(td, run_id, sizeof(run_id));
    int rc = xd_stats_publish(job->dev, o->stats, run_id, td->thread_number, td->o.name,
                              td->subjob_number, o->stats_jobs, err, sizeof(err));
    if (rc) {
        fio_xd_err("xdevice: %s\n", err);
        /* the job's result, so fio exits non-zero: a run whose stats are
         * missing must not look like a good one to a script */
        td_verror(td, rc < 0 ? -rc : EIO, "xd_stats_publish");
    } else if (is_backend) {
        fio_xd_send_stats(o->stats);
    }
}

static void fio_xd_cleanup(struct thread_data *td)
{
    struct fio_xd_job *job = td->io_ops_data;
    if (!job)
        return;
    if (job->monitor) {
        xd_monitor_record(job->monitor); /* the last, partial interval */
        fio_xd_tell(job);
    }
    if (job->dev) {
        fio_xd_report(td, job);
        xd_close(job->dev);
    }
    /* Last: its shared watch's lock is then the job's last, which orders
     * the job's work before the thread's TLS is freed by whichever thread
     * trims glibc's stack cache (unseen by TSan: make sanitize). */
    xd_monitor_close(job->monitor);
    if (job->sync_fd >= 0)
        close(job->sync_fd);
    free(job->reqs);
    free(job->events);
    free(job->ready_buf);
    free(job->issued);
    free(job);
    td->io_ops_data = NULL;
}

struct ioengine_ops ioengine = {
    .name = "xdevice",
    .version = FIO_IOOPS_VERSION,
    .setup = fio_xd_setup,
    .init = fio_xd_init,
    .post_init = fio_xd_post_init,
    .io_u_init = fio_xd_io_u_init,
    .queue = fio_xd_queue,
    .commit = fio_xd_commit,
    .getevents = fio_xd_getevents,
    .event = fio_xd_event,
    .cleanup = fio_xd_cleanup,
    .open_file = fio_xd_open_file,
    .close_file = fio_xd_close_file,
    .invalidate = fio_xd_invalidate,
    .unlink_file = fio_xd_unlink_file,
    .get_file_size = fio_xd_get_file_size,
    /* .options and .option_struct_size: set by fio_xd_load */
};