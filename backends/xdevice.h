/* xdevice.h - the public API of libxdevice, a stack of storage drivers and layers.
 *
 * Production programs and the fio engine link the same library and read the
 * same INI files. Every function returns 0 (or a count) on success and a
 * negative errno on failure; the library never sets errno and never prints.
 * Functions that can fail for a reason a person must read take an error
 * buffer and fill it with one line naming the file, key, value and what is
 * allowed. Pointer arguments must not be NULL unless a function's comment
 * says what NULL means there (as in the C library, a NULL where none is
 * allowed is the caller's bug, not a reported error).
 *
 * Threads: a device (struct xd_dev) and the files opened on it are driven
 * by one thread at a time, as a fio job drives its own; give each thread
 * its own device. Devices in any threads of one process may open the same
 * files: what they share (the read cache, the hybrid type's extent state)
 * is locked inside the library.
 *
 * fork(): a device belongs to the process that opened it. In a child, the
 * calls that act on its parent's device fail with -EBADF (I/O, files,
 * reload, migrate, monitor open, publish; xd_dev_take_error says why),
 * the stats and health calls return NULL or 0, and xd_close lets it be
 * (the parent's files, locks, rings and threads stay the parent's; its
 * memory goes with the child's exit or exec). Devices the child opens are
 * its own, beside the parent's as another process's.
 */
#ifndef XDEVICE_H
#define XDEVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h> /* struct timespec (xd_reap): C11 declares it here */

#ifdef __cplusplus
extern "C" {
#endif

#define XD_VERSION "0.1.0"
#define XD_ERRLEN  512 /* a comfortable size for the err buffers below */

/* XD_API marks the functions libxdevice.so exports. The library is built with
 * -fvisibility=hidden, so every function declared here carries it and nothing
 * else leaves the library. */
#if defined(__GNUC__)
#define XD_API __attribute__((visibility("default")))
#else
#define XD_API
#endif

struct xd_config;
struct xd_dev;
struct xd_file;

/* --- configuration ------------------------------------------------------ */

/* A config holding every key's default. Returns NULL only when out of memory. */
XD_API struct xd_config *xd_config_new(void);
/* Parse an INI file into cfg, overriding what it names. -EINVAL (message in err)
 * on the first bad line: unknown key (with the nearest valid key), bad value,
 * wrong section. -errno when the file cannot be read. */
XD_API int xd_config_load(struct xd_config *cfg, const char *ini_path, char *err, size_t errlen);
/* Set one key from text, validating it as the INI parser does. origin names
 * where the value came from in messages (a file:line, or "option xd_KEY";
 * NULL: "caller").
 * A value holding a control character (a newline, a tab) is -EINVAL: no
 * INI file could keep it (xd_config_save). */
XD_API int xd_config_set(struct xd_config *cfg, const char *key, const char *value,
                         const char *origin, char *err, size_t errlen);
/* Cross-key checks (conflicting keys). Run after the last set/load. */
XD_API int xd_config_check(const struct xd_config *cfg, char *err, size_t errlen);
/* What a caller must know of cfg's storage type before opening a device,
 * as XD_CFG_* bits, so that no caller ever tests type names. */
#define XD_CFG_OWN_FORMAT (1u << 0) /* files hold the type's own format: make them ready with
                                       xd_path_prepare, size them with xd_path_logical_size,
                                       and never write raw bytes into them */
#define XD_CFG_HOLES      (1u << 1) /* the chain leaves holes for zero blocks: lay new files
                                       out with ftruncate, not by allocating every block */
#define XD_CFG_TRIM_KEY   (1u << 2) /* trims are served only with enable_trim=true */
#define XD_CFG_PLAIN_FILE (1u << 3) /* the data is a plain file at the caller's path, byte for
                                       byte: every type with this bit reads what another wrote */
#define XD_CFG_DATA_ELSEWHERE (1u << 4) /* nothing is kept at the caller's path (the tmpfs
                                       type without backup_to_disk: a file there is only
                                       read, loaded into the copy): never lay it out;
                                       xd_path_logical_size gives the data's size (-ENOENT:
                                       none yet) and an open with XD_OPEN_CREATE makes it */
#define XD_CFG_WRITES_RECORDED (1u << 5) /* a layer records what the chain writes (a checksum
                                       per block): data written around the chain reads
                                       unchecked, so lay files out through it (xd_write) */
XD_API unsigned xd_config_caps(const struct xd_config *cfg);
/* The effective config as a JSON object, malloc'd; NULL when out of memory. */
XD_API char *xd_config_json(const struct xd_config *cfg);
/* The effective config as INI text that recreates it, malloc'd. */
XD_API char *xd_config_ini(const struct xd_config *cfg);
XD_API struct xd_config *xd_config_dup(const struct xd_config *cfg);
XD_API void xd_config_free(struct xd_config *cfg);
/* Read back one key as text; NULL for an unknown key. The pointer is valid
 * until the next call from the same thread. */
XD_API const char *xd_config_get(const struct xd_config *cfg, const char *key);
/* Number of schema keys and the i-th key's name, for tools that walk the schema. */
XD_API unsigned xd_config_key_count(void);
XD_API const char *xd_config_key_name(unsigned i);

/* --- tuning: tunable keys, safe rewrites, live reload --------------------
 * What a tuner calls (xdtune uses them all):
 *   xd_tunable_count/xd_tunable_get/xd_tunable_find  the search space
 *   xd_config_save                                   write an INI atomically
 *   xd_reload                                        apply live keys to an open device
 * and, further down, for a daemon that follows a run:
 *   xd_config_watch_open/poll/fd/close               notice rewrites of an INI
 *   xd_stats_mark_new/free, xd_stats_interval_json   per-interval figures
 * The fio engine uses all of them: xd_stats_interval=N appends one JSON line
 * per job and interval to xd_stats_log (default <xd_stats>.jsonl), and a
 * rewrite of xd_config is applied to the running jobs (README, "Live reload
 * and periodic stats"). Keys set as xd_ options in a job win over the file,
 * so a daemon tunes only keys the job leaves to the INI.
 * A config written by xd_config_save is read back by xd_config_load into an
 * equal config, which passes xd_config_check when cfg did: it holds the keys
 * set from somewhere (file, option, xd_config_set) or not at their default,
 * the rest read back as defaults; header lines are INI comments. A value
 * the file could not keep as it is (a control character, white space at
 * either end, ';' starting a comment) is refused: -EINVAL, one line in err. */

/* Key types, for struct xd_tunable and tools that walk the schema. */
enum xd_key_type { XD_T_STR, XD_T_BOOL, XD_T_INT, XD_T_SIZE, XD_T_ENUM, XD_T_MODE, XD_T_FLOAT };

/* One dimension of a tuner's search space: one of the keys worth tuning.
 * INT and SIZE: values lo..hi; a step adds step (log_scale 0) or multiplies
 * by step (log_scale 1). FLOAT likewise. BOOL: lo 0, hi 1, step 1. ENUM:
 * choices is "a|b|c" (the values worth trying, which may be fewer than the
 * key allows), lo 0, hi = the number of choices - 1, step 1. live: xd_reload
 * can change it on an open device; otherwise only a new xd_open (a new fio
 * run) can. pending: this library does not build the key's feature yet, so
 * xd_config_set accepts only its default: leave it out of a search. */
struct xd_tunable {
    const char *key;
    int type;          /* enum xd_key_type: XD_T_INT, SIZE, FLOAT, BOOL or ENUM */
    double lo, hi, step;
    int log_scale;
    const char *choices; /* ENUM only, else NULL */
    int live;
    int pending;
    const char *def;     /* the schema's default, as text */
};
/* The tunables, in a fixed order. xd_tunable_get returns NULL past the
 * end; xd_tunable_find NULL for a key that is not tunable. Never fail. */
XD_API unsigned xd_tunable_count(void);
XD_API const struct xd_tunable *xd_tunable_get(unsigned i);
XD_API const struct xd_tunable *xd_tunable_find(const char *key);

/* Replace the INI file at path with cfg (see above), so that a reader
 * (xd_config_load) sees the whole old file or the whole new one, and the new
 * one survives a crash once this returns: a temp file in path's directory
 * (opened relative to the directory with O_CREAT|O_EXCL|O_NOFOLLOW, so a
 * name planted there is skipped, never followed), written, given
 * cfg's config_file_mode with fchmod (umask does not apply; when the key was
 * never set, the replaced file's own mode), fsync'd, renamed over path, then
 * the directory fsync'd. path itself must be a regular file of the caller's
 * or root's, or absent: a symlink, another user's file (or anything else)
 * there is refused, never followed or replaced. header: text written first as "# " comment lines (split at
 * newlines), or NULL. Returns 0, or -errno with one line in err naming path. */
XD_API int xd_config_save(const struct xd_config *cfg, const char *path, const char *header,
                          char *err, size_t errlen);

/* Apply newcfg to an open device (neither may be NULL: -EINVAL). newcfg
 * must pass xd_config_check. Only
 * keys marked live (xdevice(7), struct xd_tunable.live) may differ from the
 * device's config: when another key differs, nothing is applied and err
 * names every such key (-EINVAL). Otherwise the changed live keys are
 * copied into the device's config and each layer applies those it owns
 * (readahead in the drivers, compression_level in compress, ...) before
 * this returns. Returns how many keys changed (0: none). Call it from the
 * thread that submits the device's I/O, between requests (any still in
 * flight complete under whichever value they started with). */
XD_API int xd_reload(struct xd_dev *dev, const struct xd_config *newcfg, char *err, size_t errlen);

/* Notice rewrites of an INI file (inotify on its directory, so a rename
 * over the name is seen as well as a write in place). open: -errno with one
 * line in err when the directory cannot be watched. poll never blocks and
 * drains what happened since the last call: XD_WATCH_NONE; XD_WATCH_CHANGED
 * (written and closed, or renamed over: load it again); XD_WATCH_REMOVED
 * (deleted or renamed away: keep the config in force); XD_WATCH_GONE (the
 * directory itself went; the watch is over, and every later poll says
 * so again). fd is pollable (POLLIN) for
 * callers with an event loop; -1 once the watch is over. */
#define XD_WATCH_NONE    0
#define XD_WATCH_CHANGED 1
#define XD_WATCH_REMOVED 2
#define XD_WATCH_GONE    3
struct xd_config_watch;
XD_API int xd_config_watch_open(struct xd_config_watch **out, const char *path, char *err,
                                size_t errlen);
XD_API int xd_config_watch_poll(struct xd_config_watch *w);
XD_API int xd_config_watch_fd(const struct xd_config_watch *w);
XD_API void xd_config_watch_close(struct xd_config_watch *w);

/* --- following a run: config reloads and periodic records ----------------
 * What a long-running program does between its requests to follow its INI
 * file and keep periodic stats (the fio engine does it per job):
 *
 *   struct xd_config_override ov[] = {{"cache_size", "256m", "--set cache_size"}};
 *   xd_config_build(&cfg, "app.ini", ov, 1, err, sizeof(err));  (defaults < INI < ov)
 *   xd_open(&dev, cfg, depth, err, sizeof(err));
 *   struct xd_monitor_opts mo = {.config_path = "app.ini", .overrides = ov,
 *                                .n_overrides = 1, .stats_log = "app.jsonl", .name = "app"};
 *   xd_monitor_open(&mon, dev, &mo, err, sizeof(err));
 *   for (;;) { ...submit, reap...; if (xd_monitor_poll(mon)) print every xd_monitor_note; }
 *   xd_monitor_record(mon);  (the last, partial interval)  xd_monitor_close(mon); xd_close(dev);
 *
 * examples/xdfollow.c is a whole program. */

/* One key set over the INI file: value as text, as an INI line gives it;
 * origin names where it came from in messages ("option xd_KEY", "--set
 * KEY"; NULL: "override"). */
struct xd_config_override {
    const char *key;
    const char *value;
    const char *origin;
};
/* The config every face of xdevice builds: the defaults, then the INI file
 * at ini_path (NULL: none), then each override in order (a later one wins),
 * then xd_config_check. *out (free it with xd_config_free), or -errno with
 * one line in err: the file's, an override's or the check's. */
XD_API int xd_config_build(struct xd_config **out, const char *ini_path,
                    const struct xd_config_override *overrides, unsigned n_overrides, char *err,
                    size_t errlen);

/* A monitor follows one open device; every call, open and close included,
 * comes from the thread that drives the device, between its requests. Its
 * inotify watch is shared by the monitors of a process that follow the same
 * file (instances are few); a child after fork() opens its own.
 *
 * open copies opts. With config_path, it watches that file, then builds
 * the config from it as xd_config_build(config_path, overrides) does and
 * hands a difference from the device's config to xd_reload, so a rewrite
 * between the caller's reading the file and open is applied, not missed;
 * the device's config must be what that build gave. When the device's
 * metrics_interval_sec is not 0, records are appended to stats_log (needed
 * then; opened in its checked directory, see allow_shared_directories,
 * never through a symlink, and only when it is the caller's own regular
 * file or absent). -errno with
 * one line in err: no device, no stats_log, the log refused, out of memory.
 * A watch that cannot be set up is not an error: a note says so and the
 * monitor keeps records only.
 *
 * poll is cheap when nothing is due (a clock read), so call it as often as
 * you like: at most every 0.1 s it asks the watch, and on a rewrite builds
 * the file again (overrides win) and applies it with xd_reload; a bad file,
 * a refused change or a removed file leaves the config in force. Every
 * metrics_interval_sec it appends one xd_stats_interval_json line (job:
 * name, jobnum) in one write(2), so monitors sharing the file (threads or
 * processes) never mix lines; after a stall, one record covers the gap. A
 * write that fails ends the records with a note. With enable_health_check,
 * it runs xd_health_json at open and every health_check_interval_sec after:
 * the next record carries the latest report as "health", and each problem
 * is noted the first time it is found ("NAME: health: KEY=PATH: what").
 * Returns the XD_MONITOR_*
 * bits of what it did (0: nothing).
 *
 * idle: 1 when the monitor has nothing left to look at (no config to
 * follow, no records, no health checks; or m is NULL), and it stays so for
 * the monitor's life, so a caller that polls per request may stop; 0 when
 * poll may still act. Ask again after a poll that returned non-zero (the
 * watch ends when the config's directory goes away).
 *
 * Notes are lines for a person, without a newline: each changed key
 * ("NAME: LABEL=PATH reloaded: KEY OLD -> NEW"), a file not used and why,
 * a refused reload, a removed file, the watch's end, a failed record.
 * xd_monitor_note returns the oldest not yet taken, malloc'd (free it),
 * or NULL; take them after open and every poll that returns non-zero (64
 * wait at most; later ones are dropped). quiet_reloads: no notes about the
 * watch or reloads, for monitors whose sibling on the same file tells.
 *
 * record appends a record now (the last, partial interval, before close):
 * 0, -ENOENT when no records are kept, -errno when the write failed (noted).
 * close appends nothing, stops watching and frees the monitor; it does
 * not touch the device, which may be open or closed already. */
#define XD_MONITOR_RELOAD 1 /* poll acted on a rewrite or removal of config_path */
#define XD_MONITOR_RECORD 2 /* poll appended a record */
#define XD_MONITOR_HEALTH 4 /* poll ran a health check (enable_health_check) */
struct xd_monitor_opts {
    const char *config_path;   /* the INI to follow; NULL: none */
    const struct xd_config_override *overrides; /* over it at every reload */
    unsigned n_overrides;
    const char *stats_log;     /* where records go (metrics_interval_sec > 0) */
    const char *name;          /* records' "job", and the notes' "NAME: "; NULL: "" */
    unsigned jobnum;           /* records' "jobnum" */
    const char *config_label;  /* how notes name config_path: LABEL=PATH; NULL: "config" */
    const char *stats_log_label; /* how notes name stats_log; NULL: "stats_log" */
    int quiet_reloads;
};
struct xd_monitor;
XD_API int xd_monitor_open(struct xd_monitor **out, struct xd_dev *dev, const struct xd_monitor_opts *opts,
                    char *err, size_t errlen);
XD_API int xd_monitor_poll(struct xd_monitor *m);
XD_API int xd_monitor_idle(const struct xd_monitor *m);
XD_API char *xd_monitor_note(struct xd_monitor *m);
XD_API int xd_monitor_record(struct xd_monitor *m);
XD_API void xd_monitor_close(struct xd_monitor *m);

/* What an adapter that presents the keys itself needs (the fio engine's
 * xd_KEY options and their --enghelp texts). xd_config_key_desc: the i-th
 * key of the schema (i < xd_config_key_count()), NULL past the end.
 * xd_config_origin: where key's value came from ("file.ini:12", an
 * override's or xd_config_set's origin), NULL for a default or an unknown
 * key. xd_config_reads: 1 when cfg reads key at all, else 0: its storage
 * type must read it (the [tmpfs] keys on the regular type have no effect;
 * a hybrid reads its tiers' types' keys), and a layer's keys need the
 * layer switched on (checksum_block_size: enable_checksums). xd_escape: value made safe for a one-line message (printable ASCII
 * and UTF-8 as they are, a backslash doubled, other bytes as \xHH, cut
 * with "..." to fit len; XD_ESCAPE_LEN holds a path); returns buf. */
struct xd_key_desc {
    const char *name;
    const char *section; /* its INI section, without brackets */
    int type;            /* enum xd_key_type */
    const char *def;     /* the default, as text ("" for an empty string) */
    const char *allowed; /* ENUM: "a|b|c"; otherwise NULL */
    const char *help;
};
XD_API const struct xd_key_desc *xd_config_key_desc(unsigned i);
XD_API const char *xd_config_origin(const struct xd_config *cfg, const char *key);
XD_API int xd_config_reads(const struct xd_config *cfg, const char *key);
#define XD_ESCAPE_LEN 160
XD_API const char *xd_escape(const char *value, char *buf, size_t len);

/* --- devices and files -------------------------------------------------- */

/* Build the storage type's chain from cfg (copied). queue_entries is the most
 * requests the caller keeps in flight (fio's iodepth), up to 65536 (-EINVAL);
 * the async queue is at least that deep. */
XD_API int xd_open(struct xd_dev **out, const struct xd_config *cfg, unsigned queue_entries,
                   char *err, size_t errlen);
/* Close the device; files still open on it are closed first, as
 * xd_file_close would (their requests must have been reaped). In a child
 * after fork(), a device the parent opened is left alone (see the top). */
XD_API void xd_close(struct xd_dev *dev);
/* Say where the caller's I/O buffers live: [addr, addr + len) (NULL, 0:
 * nowhere, the default). In io_uring mode each of the device's queues
 * registers that memory with the kernel once (its pages pinned) and sends
 * the reads and writes whose buffer lies inside it as fixed-buffer
 * requests, which skip the pinning of the buffer's pages that an O_DIRECT
 * request otherwise pays every time. The memory must stay mapped, with the
 * same pages, until the next call or xd_close: I/O into memory freed and
 * mapped again at the same address would land in the old pages. Call it
 * from the thread that submits, with nothing in flight. A kernel that
 * refuses the registration (memory that is neither anonymous nor shared,
 * the locked-memory limit) costs only the speed-up: the requests go as
 * before ("fixed_buffer_ios" in xd_stats_json counts those that went fixed).
 * Other modes ignore it. Returns 0, -EINVAL for len > 0 with a NULL addr
 * or a range that wraps, or -EBADF in a child of the process that opened
 * dev. */
XD_API int xd_register_memory(struct xd_dev *dev, void *addr, size_t len);
XD_API const struct xd_config *xd_dev_config(const struct xd_dev *dev);
#define XD_CAP_TRIM  (1u << 0) /* trim is served (not refused with EOPNOTSUPP) */
#define XD_CAP_ASYNC (1u << 1) /* requests can stay in flight (libaio/io_uring) */
#define XD_CAP_DIRECT_IO (1u << 2) /* bypasses the page cache: give it page-aligned buffers,
                                      or every request is copied through a bounce buffer */
/* What the device's chain can do, as XD_CAP_* bits, so callers never probe by failing. */
XD_API unsigned xd_dev_caps(const struct xd_dev *dev);
/* The same for a file at path (it need not exist yet): without XD_CAP_ASYNC
 * where every request on such a file completes within xd_submit whatever
 * the async mode, so a caller can drive it as a sync device. The regular
 * and tmpfs types read and write files on a tmpfs or ramfs inline, except
 * writes of XD_MEMORY_WRITE_QUEUED_MIN bytes or more under io_uring on a
 * tmpfs without large pages, which a kernel worker copies while the caller
 * goes on (see file.c).
 * xd_dev_caps_for answers for a caller whose writes are never longer than
 * largest_write (0: it only reads); xd_dev_caps_at for any length. */
#define XD_MEMORY_WRITE_QUEUED_MIN (64u * 1024)
XD_API unsigned xd_dev_caps_for(const struct xd_dev *dev, const char *path, uint64_t largest_write);
XD_API unsigned xd_dev_caps_at(const struct xd_dev *dev, const char *path);
/* Human-readable notes the device wants its user to see once (e.g. "tmpfs:
 * auto_mount needs root; using /dev/shm/xdevice-UID ...", that it mounted
 * a tmpfs its last user will unmount, or that io_uring refused to register
 * the memory of xd_register_memory); NULL when none. One line, whatever a
 * file name in it holds (control bytes as \xHH), written into a buffer of
 * the device: valid until the next call, and threads sharing the device
 * take turns calling it. */
XD_API const char *xd_dev_notice(const struct xd_dev *dev);
/* After a request failed with a data error (e.g. -EIO for a corrupt chunk),
 * or an xd_file_open that found damage it let pass (a compressed container
 * whose map has bad entries: those chunks read EIO, the rest is served):
 * the one line saying what is wrong and where, copied into line; 0 when there
 * was one (and it is now cleared), -ENOENT when not. The library prints
 * nothing itself; callers decide where the line goes. */
XD_API int xd_dev_take_error(struct xd_dev *dev, char *line, size_t len);

#define XD_OPEN_CREATE 0x1 /* create the file (and, with auto_create_dirs, its directories) */
#define XD_OPEN_READONLY 0x2

/* Open a file on the device. flags: XD_OPEN_* (others: -EINVAL). size:
 * the size wanted for a new file (0 for default_file_size). -errno with a
 * message in err on failure (a FIFO or socket at path: -ENXIO, refused
 * rather than waited on); a file the failed open made is removed again. */
XD_API int xd_file_open(struct xd_dev *dev, const char *path, unsigned flags, uint64_t size,
                        struct xd_file **out, char *err, size_t errlen);
/* Close a file once, after every request on it was reaped (the requests'
 * state belongs to the file: one still staged or in flight would be
 * completed into freed memory). xd_close closes those left open. The file
 * is closed either way; -errno when data the device had taken never
 * reached it (a write-back cache that could not write its dirty blocks
 * back: -ENOSPC on a full file system), said by xd_dev_take_error, as
 * close(2) on NFS reports a failed write-back; -EINVAL, with nothing
 * done, for a file another device opened. */
XD_API int xd_file_close(struct xd_dev *dev, struct xd_file *file);
/* Size of what path names, without a device: a regular file's length or a
 * block device's capacity (BLKGETSIZE64). -ENOENT when it does not exist. */
XD_API int xd_path_size(const char *path, uint64_t *size);
/* The size a caller of the storage type sees at path (relative: against
 * base_directory, as xd_file_open and xd_path_prepare resolve it): for
 * types with their own format (compressed) the container's logical size,
 * read from its header (0 for an empty file: a container yet to be made);
 * for the tmpfs type without backup_to_disk its tmpfs copy's size
 * (XD_CFG_DATA_ELSEWHERE), or the size of the regular file at path when
 * the copy is not current with it (an open loads that file into the copy);
 * for the others xd_path_size. -ENOENT when it
 * does not exist; other -errno with the one line in err (e.g. not a
 * container, truncated). */
XD_API int xd_path_logical_size(const struct xd_config *cfg, const char *path, uint64_t *size,
                                char *err, size_t errlen);
/* Make path ready to hold size logical bytes: types with their own format
 * create the container or grow it (never shrink), so no caller ever writes
 * raw bytes into it; the tmpfs type without backup_to_disk makes or grows
 * its tmpfs copy (at open instead where auto_mount mounts a tmpfs, which
 * keeps nothing once its last device closes: *logical 0); for other types
 * this does nothing and returns -ENOENT when path is missing. *logical gets the size now seen. */
XD_API int xd_path_prepare(const struct xd_config *cfg, const char *path, uint64_t size,
                           uint64_t *logical, char *err, size_t errlen);
/* Remove the file at path as unlink(2) removes a plain one (fio's
 * unlink=1), with what the device's chain keeps for it: the tmpfs copy,
 * the hybrid type's hot copy, map and shared state, checksum sidecars, the
 * mirror copies that are its own (never another same-named file's). Only
 * files xdevice made besides path itself, never through a link;
 * checkpoints stay. Devices and directories are refused
 * (-EPERM). Opens of it keep working until closed, except one whose
 * descriptor the fd cache had closed (more than max_open_files files open
 * on its device): reopened by name, it would find another file or none,
 * so its requests fail with -ESTALE. 0, -ENOENT when there was nothing
 * to remove, or -errno with the one line in err. */
XD_API int xd_unlink(struct xd_dev *dev, const char *path, char *err, size_t errlen);
/* Size in bytes as the device sees it, or -errno. */
XD_API int64_t xd_file_size(struct xd_dev *dev, struct xd_file *file);
/* Drop what xdevice and the OS cache for the file (fio's invalidate=1). */
XD_API int xd_file_invalidate(struct xd_dev *dev, struct xd_file *file);

/* --- synchronous I/O ---------------------------------------------------- */

/* Whole-buffer I/O: returns len, or -errno. A short transfer is retried
 * internally, never returned. Reads past end of file return the bytes that
 * exist. */
XD_API ssize_t xd_read(struct xd_dev *dev, struct xd_file *file, void *buf, size_t len,
                       uint64_t off);
XD_API ssize_t xd_write(struct xd_dev *dev, struct xd_file *file, const void *buf, size_t len,
                        uint64_t off);
XD_API int xd_trim(struct xd_dev *dev, struct xd_file *file, uint64_t len, uint64_t off);
XD_API int xd_flush(struct xd_dev *dev, struct xd_file *file, int datasync);

/* --- asynchronous I/O --------------------------------------------------- */

enum xd_op { XD_OP_READ, XD_OP_WRITE, XD_OP_TRIM, XD_OP_FSYNC, XD_OP_FDATASYNC, XD_OP_COUNT };

/* A request. The caller owns the memory and keeps it alive until it is
 * reaped, and submits it again only after that (or after it completed
 * inline); the library allocates nothing per request: the state each layer
 * of the device keeps for a request in flight lives in xd_private, sliced
 * among the layers when the device opens (xd_open refuses a chain whose
 * layers need more). */
#define XD_REQ_PRIVATE_WORDS 12
struct xd_req {
    enum xd_op op;
    struct xd_file *file;
    void *buf;
    uint64_t len;
    uint64_t off;
    int64_t result;   /* on completion: bytes transferred (== len) or -errno */
    void *user;       /* the caller's cookie, untouched */
    uint64_t xd_private[XD_REQ_PRIVATE_WORDS]; /* the library's; never read or written by callers */
};

#define XD_DONE   1 /* xd_submit completed the request inline; req->result is set */
#define XD_QUEUED 0 /* staged; it is sent at xd_commit and comes back from xd_reap */

/* Stage one request. Returns XD_DONE, XD_QUEUED, or -EBUSY when the queue is
 * full (commit and reap first). Other errors complete the request inline with
 * req->result < 0 and return XD_DONE; so does a request no layer sees: an op
 * outside enum xd_op, a range past what a file offset names (off + len
 * beyond INT64_MAX) or a trim of 0 bytes, -EINVAL, a NULL file, -EBADF, and
 * a read or write of len > 0 with a NULL buf, -EFAULT. xd_read, xd_write
 * and xd_trim return the same. */
XD_API int xd_submit(struct xd_dev *dev, struct xd_req *req);
/* Send every staged request to the kernel. Returns the number sent or
 * -errno (0 where the type hands each request on as it is submitted: the
 * compressed type's worker threads). */
XD_API int xd_commit(struct xd_dev *dev);
/* Wait for at least min completions (up to max; a min above max is taken
 * as max) or until timeout (NULL: no limit). Returns how many were stored
 * in done[], or -errno. */
XD_API int xd_reap(struct xd_dev *dev, struct xd_req **done, unsigned min, unsigned max,
                   const struct timespec *timeout);

/* --- the hybrid type ---------------------------------------------------- */

/* Run one migration pass now on every hybrid file open on dev (promotions
 * and demotions by the policy, up to migration_batch_size per file), in the
 * caller's thread; the way to migrate with auto_migration=false. Returns the
 * number of extents moved, -ENOTTY when dev is not of the hybrid type. */
XD_API int xd_migrate(struct xd_dev *dev);

/* --- statistics --------------------------------------------------------- */

/* This device's figures as a JSON object (ops, latency percentiles, errors,
 * slow operations, the layers' own figures), malloc'd. */
XD_API char *xd_stats_json(struct xd_dev *dev);
/* One line on the operations slower than slow_operation_threshold_ms (how
 * many, and the slowest), for the caller to log. Returns how many there were
 * (0: nothing written to line). */
XD_API uint64_t xd_stats_slow_summary(struct xd_dev *dev, char *line, size_t len);

/* The run's figures start now: what the device did before (a warm-up,
 * fio's ramp_time) is left out of the ops, bytes and latencies that
 * xd_stats_json and xd_stats_publish report (latency min and max then to
 * a bucket), and of the read cache's counters of this device (hits,
 * misses, inserts, ...). Errors and slow operations still count from the
 * open, so a fault in a warm-up is never hidden; periodic records
 * (xd_stats_interval_json) and the layers' other figures are unaffected.
 * Called again, the run starts again. 0, -ENOMEM, or -EBADF in a child
 * after fork. */
XD_API int xd_stats_start_run(struct xd_dev *dev);

/* Periodic figures (metrics_interval_sec; the fio engine's xd_stats_interval).
 * A mark remembers the figures at the last record, so that each record
 * carries the interval's own: ops, bytes, iops, bandwidth and latency
 * percentiles since the mark. xd_stats_interval_json returns one record as
 * a one-line JSON object, malloc'd (NULL when out of memory), and moves the
 * mark to now; a new mark's first interval starts when the device opened:
 *   {"time_ms": unix ms, "seq": 0.., "job": .., "jobnum": .., "type": ..,
 *    "interval": {"seconds", "iops", "bw_bytes", "ops": {read, write, trim,
 *    sync, fsync, fdatasync: {ops, bytes, errors, slow, lat_ns}}, "errors",
 *    "slow_ops"}, "total": {the same since open}, "config": {effective,
 *    after any xd_reload}, "layers": {cumulative counters and current
 *    settings of each layer, as in xd_stats_json}}
 * Call it from the thread that drives the device. */
struct xd_stats_mark;
XD_API struct xd_stats_mark *xd_stats_mark_new(void);
XD_API void xd_stats_mark_free(struct xd_stats_mark *mark);
XD_API char *xd_stats_interval_json(struct xd_dev *dev, struct xd_stats_mark *mark,
                                    const char *job_name, unsigned jobnum);

/* --- health (enable_health_check; xdconfig health) ---------------------
 * Whether the world cfg names is fit to run in, as a JSON object, malloc'd:
 *   {"healthy": bool, "checks": [{"check", "key", "path", "ok", "detail"}],
 *    "problems": ["KEY=PATH: what is wrong", ...]}
 * From cfg alone: every directory the config names (base_directory,
 * tmpfs_directory or hot_directory, cold_directory, checkpoint_directory,
 * each of mirror_directories) exists (one xdevice makes at open may be
 * absent), is writable by us, is owned by us or root and not writable by
 * others unless sticky (allow_shared_directories skips that), has room for
 * default_file_size (hot_cache_size for a hot tier) and is not full, and a
 * tmpfs directory is on a tmpfs; block_device is a block device we can read
 * and write. With dev (cfg may then be NULL: the device's), also its figures
 * from xd_stats_json, read by name and skipped when a layer does not report
 * them: layers.mirror.degraded, layers.checksum.mismatches and
 * layers.retry.failed must be 0. *healthy (may be NULL): 1 when no check
 * failed. NULL with one line in err when out of memory or given nothing. */
XD_API char *xd_health_json(const struct xd_config *cfg, struct xd_dev *dev, int *healthy,
                            char *err, size_t errlen);

/* Publish this device's figures as one job of a run's stats document at
 * path: {"xdevice":{...},"jobs":[...],"aggregate":{...}}. Each job leaves a
 * fragment in "<path>.d/" and rewrites the document from every fragment of
 * the same run_id under a lock, atomically (temp file + rename), so the
 * document is whole after each job and complete after the last, whether the
 * jobs are threads or processes. Fragments of other runs are removed.
 * job_key orders and distinguishes jobs (fio's thread number). run_jobs is
 * how many jobs publish to path in this run (0: unknown): the job that
 * finds them all removes the fragments, "<path>.d/" and "<path>.d.lock".
 * Everything is made relative to path's directory, which must be the
 * caller's or root's and not writable by others unless sticky
 * (allow_shared_directories), never through a symlink. run_id names the
 * fragments: 1 to 63 printable characters without '/', not starting with
 * '.' (-EINVAL). */
/* What xd_stats_publish would refuse about path, asked before the run
 * rather than after it: path's directory must pass the same checks, and
 * path, "<path>.d" and "<path>.d.lock" must not be symbolic links (path a
 * regular file or absent). 0, or -errno with one line in err. */
XD_API int xd_stats_publish_check(struct xd_dev *dev, const char *path, char *err,
                                  size_t errlen);
XD_API int xd_stats_publish(struct xd_dev *dev, const char *path, const char *run_id,
                            unsigned job_key, const char *job_name, unsigned jobnum,
                            unsigned run_jobs, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
