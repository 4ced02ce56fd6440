/* engine.h - what the fio adapter's files share; private to ioengine/.
 *
 *   xdevice_engine.c  the hooks fio calls: per-job state, init, the data
 *                     path (queue, commit, getevents), open and close,
 *                     setup, the report, the ops table
 *   engine_messages.c the engine's lines on stderr
 *   engine_options.c  fio's options: the xd_ option table, the version
 *                     guard, and a job's options made into its config
 *   engine_files.c    fio's files on the stack: who lays them out (fio, the
 *                     engine through the stack, a container), their size,
 *                     removal and page cache
 *   engine_checks.c   setup's checks of what the job names: base
 *                     directory, output files, keys the job does not read
 *
 * The functions one file calls in another are declared here, hidden: the
 * engine is linked -rdynamic, and fio's own symbols must not meet them.
 */
#ifndef XD_ENGINE_H
#define XD_ENGINE_H

#include <stdbool.h>

#include "fio.h"
#include "optgroup.h"

#include "../backends/xdevice.h"

#define FIO_XD_SHARED __attribute__((visibility("hidden")))

/* The engine, under the name fio looks up (xdevice_engine.c); its options
 * table is made when the engine is loaded (engine_options.c). */
extern struct ioengine_ops ioengine;

/* --- options (engine_options.c) ------------------------------------------- */

/* Short names of keys (xd_type, xd_stats_interval), by index. */
enum { FIO_XD_ALIAS_TYPE, FIO_XD_ALIAS_INTERVAL, FIO_XD_ALIASES };

/* A job's engine options (td->eo), as fio's option table stores them. */
struct fio_xd_options {
    void *pad;
    char *config;
    char *stats;
    char *stats_log;
    char *aliases[FIO_XD_ALIASES];   /* by FIO_XD_ALIAS_* */
    unsigned stats_jobs;             /* not an option: see fio_xd_stats_jobs */
    /* not an option: fio's direct=1 is more than the type can do, and the
     * job runs buffered (fio_xd_build_config); direct_why says why */
    bool direct_refused;
    char direct_why[XD_ERRLEN];
    char *values[];                  /* by key index; option_struct_size counts them */
};

/* Set when the engine was loaded into a fio it was not built for (or its
 * option table could not be made): every job's init fails. */
extern FIO_XD_SHARED bool fio_xd_unusable;

FIO_XD_SHARED int fio_xd_overrides(const struct fio_xd_options *o, const struct thread_options *to,
                                   struct xd_config_override **out, unsigned *n, char *err,
                                   size_t errlen);
FIO_XD_SHARED int fio_xd_build_config(struct thread_data *td, struct xd_config **out, char *err,
                                      size_t errlen);
FIO_XD_SHARED char *fio_xd_stats_log_path(const struct fio_xd_options *o);

/* --- per-job state (xdevice_engine.c) ------------------------------------- */

/* f->engine_pos: 0 until the job opens the file (fio_xd_unlink_file tells
 * fio's own removals before a layout by it); then used; removed once the
 * job removed it (unlink_each_loop). */
enum { FIO_XD_USED = 1, FIO_XD_REMOVED = 2 };

struct fio_xd_job {
    struct xd_dev *dev;
    struct xd_req *reqs;   /* one per io_u, by io_u->index */
    unsigned nreqs;
    struct xd_req **events;
    /* Async jobs tell fio every request is queued, even one the chain
     * completed inline (see fio_xd_queue); those wait here for getevents. */
    bool all_queued;
    /* Driven as a sync engine at iodepth > 1, without fio's FIO_SYNCIO
     * (whose note, "queue depth will be capped at 1", would go to the
     * stream fio's JSON goes to): queue stamps issue_time itself and
     * records slat, so slat + clat = lat as for the async jobs. */
    bool stamps_issue;
    /* Requests completed inline, oldest first: ready[0 .. nready). The list
     * slides along ready_buf (twice the depth) as getevents takes from its
     * head (fio_xd_ready_room). */
    struct xd_req **ready, **ready_buf, **ready_end;
    unsigned nready;
    unsigned in_device;    /* queued in the device (XD_QUEUED), not reaped yet */
    bool unsent;           /* a request queued in the device since the last xd_commit */
    bool device_turn;      /* getevents looks at the device's completions first */
    struct io_u **issued;  /* queued since the last commit, for slat */
    unsigned nissued;
    int sync_fd;           /* every file's f->fd: see fio_xd_open_file */
    unsigned pre_read;     /* files pre-read so far (fio_xd_pre_read) */
    /* Periodic stats and config reloads (the library's monitor) happen in
     * the job's own thread, between I/Os (queue and getevents poll it),
     * because the device is not safe for a second thread. */
    struct xd_monitor *monitor;
    /* the monitor may still act (xd_monitor_idle): polled only then, since
     * a poll per request was about 25 instructions per 4k read of make
     * perf's async rows for a monitor with nothing to do */
    bool monitor_busy;
    char told[256]; /* the device's notice last printed (fio_xd_tell_notice) */
    bool stats_refused; /* xd_stats refused at init: nothing is published */
    /* ramp_time set and not over yet: fio leaves the ramp's I/O out of its
     * figures, and xd_stats does too (xd_stats_start_run once it ends) */
    bool in_ramp;
    /* the type's files are made by the engine (its own format, or data
     * kept elsewhere: XD_CFG_OWN_FORMAT | XD_CFG_DATA_ELSEWHERE), in setup
     * or at open, never laid out by fio */
    bool engine_lays_out;
};

FIO_XD_SHARED void fio_xd_refuse_create(struct thread_data *td, const struct fio_file *f,
                                        const char *why);

/* --- messages (engine_messages.c) ----------------------------------------- */

FIO_XD_SHARED const char *fio_xd_shown(const char *s);
FIO_XD_SHARED void fio_xd_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
FIO_XD_SHARED void fio_xd_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- files (engine_files.c) ----------------------------------------------- */

FIO_XD_SHARED int fio_xd_unlink_file(struct thread_data *td, struct fio_file *f);
FIO_XD_SHARED int fio_xd_invalidate(struct thread_data *td, struct fio_file *f);
FIO_XD_SHARED int fio_xd_get_file_size(struct thread_data *td, struct fio_file *f);
FIO_XD_SHARED int fio_xd_prepare_containers(struct thread_data *td, const struct xd_config *cfg);
FIO_XD_SHARED int fio_xd_lay_out_recorded(struct thread_data *td, const struct xd_config *cfg);
FIO_XD_SHARED void fio_xd_sparse_layout(struct thread_data *td, const struct xd_config *cfg);

/* --- setup's checks (engine_checks.c) ------------------------------------- */

FIO_XD_SHARED unsigned fio_xd_stats_jobs(const char *path);
FIO_XD_SHARED int fio_xd_check_base_directory(struct thread_data *td, const struct xd_config *cfg);
FIO_XD_SHARED int fio_xd_check_outputs(struct thread_data *td, const struct xd_config *cfg);
FIO_XD_SHARED void fio_xd_note_unread(struct thread_data *td, const struct xd_config *cfg);

#endif
