/* engine_files.c - fio's files on the stack: who lays them out, their
 * size, removal and page cache (engine.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

/* The uid of another user's file or link at the name (in /tmp, say),
 * which is not ours to remove; 0 when there is none. */
static uid_t fio_xd_theirs(const struct fio_file *f)
{
    struct stat st;
    if (lstat(f->file_name, &st) || st.st_uid == geteuid() || st.st_uid == 0)
        return 0;
    return st.st_uid;
}

/* A copy of the mirrored file at path longer than the file: the file lost
 * its tail outside xdevice (truncated, a damaged restore), and the copy may
 * hold the only whole data. Its path goes to copy. Copies in sync have the
 * file's size; a job growing the file grows them with it, never past it. */
static bool fio_xd_copy_longer(struct xd_config *cfg, const char *path, char *copy, size_t len)
{
    const char *dirs = xd_config_get(cfg, "mirror_directories");
    char real[PATH_MAX];
    struct stat p, c;
    if (!dirs || !realpath(path, real) || stat(real, &p) || !S_ISREG(p.st_mode))
        return false;
    const char *name = strrchr(real, '/') + 1;
    bool longer = false;
    for (const char *d = dirs; *d && !longer;) {
        size_t n = strcspn(d, ",");
        snprintf(copy, len, "%.*s/%s", (int)n, d, name);
        longer = !lstat(copy, &c) && S_ISREG(c.st_mode) && c.st_size > p.st_size;
        d += n + (d[n] == ',');
    }
    return longer;
}

/* A mirrored file fio lays out anew (too short for the job: fio removes it
 * and writes it again) goes with its copies, as xd_unlink removes them:
 * they were kept for the file fio is throwing away, and a copy stamped for
 * it would refuse the new file's open (the mirror cannot tell fio's new
 * layout from a lost primary). A primary already missing keeps its copies
 * (nothing says which were its): the open then says what to do. A copy
 * longer than the file refuses the layout (fio_xd_copy_longer). */
static int fio_xd_layout_unlink_mirrored(struct thread_data *td, struct fio_file *f)
{
    struct xd_config *cfg;
    struct xd_dev *dev;
    char err[XD_ERRLEN];
    if (fio_xd_build_config(td, &cfg, err, sizeof(err)))
        return 0; /* said at init */
    const char *mirrored = xd_config_get(cfg, "enable_redundancy");
    int rc = 0;
    char copy[PATH_MAX + 256], shown_copy[XD_ESCAPE_LEN];
    if (mirrored && !strcmp(mirrored, "true") &&
        fio_xd_copy_longer(cfg, f->file_name, copy, sizeof(copy))) {
        fio_xd_err("xdevice: mirror: %s is shorter than its copy %s (it lost data outside xdevice: truncated?); fio's layout would remove both; refused: to keep the copy's data, move it over the file (mv) and remove any other copies; to lay the file out anew, remove the copies\n",
                   fio_xd_shown(f->file_name), xd_escape(copy, shown_copy, sizeof(shown_copy)));
        xd_config_free(cfg);
        return ESTALE;
    }
    if (mirrored && !strcmp(mirrored, "true") && !xd_open(&dev, cfg, 1, err, sizeof(err))) {
        rc = xd_unlink(dev, f->file_name, err, sizeof(err));
        if (rc && rc != -ENOENT)
            fio_xd_err("xdevice: %s\n", err);
        xd_close(dev);
    }
    xd_config_free(cfg);
    return rc == -ENOENT ? 0 : -rc;
}

/* fio lays a file out by calling this, then open(O_CREAT) by name with
 * no O_EXCL, following links: in a sticky directory such as /tmp another
 * user looping on symlink() wins that gap and has root's fio write the
 * layout into any file. So the name gets a new empty file of ours (what
 * fio makes next anyway), which nobody else may remove there. */
static int fio_xd_layout_unlink(struct thread_data *td, struct fio_file *f)
{
    uid_t theirs = fio_xd_theirs(f);
    if (theirs) {
        fio_xd_err("xdevice: %s: a file of uid %u is at that name; fio's layout would remove it; allowed: a file of yours or root's, or no file\n",
                   fio_xd_shown(f->file_name), (unsigned)theirs);
        return EPERM;
    }
    int rc = fio_xd_layout_unlink_mirrored(td, f);
    if (rc)
        return rc;
    if (unlink(f->file_name) && errno != ENOENT)
        return errno;
    int fd = open(f->file_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    rc = errno;
    if (rc == EEXIST)
        fio_xd_err("xdevice: %s: something was put at the name between its removal and fio's layout; refused: fio would open it (a link, say) by name\n",
                   fio_xd_shown(f->file_name));
    return rc;
}

/* fio removes files itself for unlink=1 and unlink_each_loop=1, and
 * before laying one out anew. xdevice keeps more than the file for some
 * types (a tmpfs copy, the hybrid type's hot copy, map and shared state, a
 * checksum sidecar): once the job has used the file (f->engine_pos, set at
 * open), xd_unlink removes them with it. A file fio is about to lay out
 * (in its parent before init, or in the job with create_serialize=0) is
 * only the plain file, as fio would remove: the tmpfs type's copy holds
 * data fio does not see there (a fill_device run's, say), and stays. fio
 * calls this before and after closing the file: both remove. */
int fio_xd_unlink_file(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    char err[XD_ERRLEN];
    if (td->runstate == TD_SETTING_UP && !td->terminate && td->o.allow_create &&
        !f->engine_pos && f->filetype == FIO_TYPE_FILE)
        return fio_xd_layout_unlink(td, f);
    /* a file the job never opened (its open was refused: another user's
     * file there, say) is removed for unlink=1 only when it is ours; the
     * refusal already said why, once */
    if (!job || !job->dev || !f->engine_pos)
        return fio_xd_theirs(f) ? EPERM : unlink(f->file_name) ? errno : 0;
    int rc = xd_unlink(job->dev, f->file_name, err, sizeof(err));
    if (rc && rc != -ENOENT)
        fio_xd_err("xdevice: %s\n", err);
    f->engine_pos = FIO_XD_REMOVED;
    return -rc;
}

int fio_xd_invalidate(struct thread_data *td, struct fio_file *f)
{
    struct fio_xd_job *job = td->io_ops_data;
    struct xd_file *file = FILE_ENG_DATA(f);
    return file ? -xd_file_invalidate(job->dev, file) : 0;
}

/* fio asks for sizes before init, and its own probe for block devices opens
 * the file through the engine and ioctls f->fd, which xdevice does not use.
 * A missing file is ENOENT, which fio takes as "lay it out". A container
 * (compressed) reports its logical size, not its length on disk. */
int fio_xd_get_file_size(struct thread_data *td, struct fio_file *f)
{
    char err[XD_ERRLEN] = "";
    struct xd_config *cfg = NULL;
    uint64_t size;
    int rc;
    struct stat st;
    if (fio_file_size_known(f))
        return 0;
    /* its size reads as 0, so the job did no I/O and said nothing */
    if (!stat(f->file_name, &st) && S_ISCHR(st.st_mode)) {
        fio_xd_err("xdevice: %s: a character device; allowed: a regular file, or a block device (xd_type=block)\n",
                   fio_xd_shown(f->file_name));
        td_verror(td, EINVAL, "xd_path_size");
        return 1;
    }
    if (!fio_xd_build_config(td, &cfg, err, sizeof(err))) {
        rc = xd_path_logical_size(cfg, f->file_name, &size, err, sizeof(err));
        xd_config_free(cfg);
    } else {
        err[0] = 0; /* setup says what is wrong with the config */
        rc = xd_path_size(f->file_name, &size);
    }
    if (rc) {
        if (err[0])
            fio_xd_err("xdevice: %s\n", err);
        td_verror(td, -rc, "xd_path_size");
        return 1;
    }
    f->real_file_size = size;
    fio_file_set_size_known(f);
    return 0;
}

/* Where fio's setup_files (fio 3.33, filesetup.c) will want f to end, given
 * the size setup reports for it (have): the job's start offset in it plus
 * its io_size - the share of size= (the first *extra files get one more
 * minimum block when size= does not divide evenly), or filesize= (fixed, or
 * drawn from the job's random state as fio draws it), cut to size=N%.
 * Never less than have; have when the job names no end (fill_device). */
static uint64_t fio_xd_wanted_end(struct thread_data *td, struct fio_file *f, uint64_t have,
                                  unsigned *extra)
{
    const struct thread_options *o = &td->o;
    uint64_t io_size, off;
    f->real_file_size = have; /* offset=N% and offset_increment=N% are of it */
    off = get_start_offset(td, f);
    if (!o->file_size_low) {
        io_size = o->size / (o->nr_files ? o->nr_files : 1);
        if (*extra) {
            (*extra)--;
            io_size += td_min_bs(td);
        }
        if (!io_size || o->fill_device)
            return have; /* fio takes the file as it is, or it grows as written */
    } else if (have < o->file_size_low || have > o->file_size_high) {
        if (off > o->file_size_low)
            return have; /* fio says the offset is past the end */
        io_size = (o->file_size_low == o->file_size_high ? o->file_size_low
                                                          : get_rand_file_size(td)) - off;
    } else {
        return have; /* in filesize='s range: fio uses it as it is */
    }
    if (o->size_percent && o->size_percent != 100) {
        uint64_t whole = io_size + off;
        io_size = whole * o->size_percent / 100;
        if (io_size > whole - off)
            io_size = whole - off;
        io_size -= io_size % td_min_bs(td);
    }
    if (io_size > UINT64_MAX - off)
        return have;
    return off + io_size > have ? off + io_size : have;
}

/* How many files fio gives one minimum block more than size= / nrfiles. */
static unsigned fio_xd_extra_blocks(struct thread_data *td)
{
    const struct thread_options *o = &td->o;
    if (o->file_size_low || !o->nr_files)
        return 0;
    uint64_t share = o->size / o->nr_files;
    return (unsigned)((o->size - share * o->nr_files) / td_min_bs(td));
}

/* The job's config for its layout, without the hybrid type's migration:
 * a file fio laid out is a file that was there before the job, all of it
 * cold (the writes of the layout would otherwise promote extents, and the
 * job would start from a hot tier it never asked for). NULL with a line
 * in err. */
static struct xd_config *fio_xd_layout_config(const struct xd_config *cfg, char *err,
                                              size_t errlen)
{
    struct xd_config *c = xd_config_dup(cfg);
    const char *type = xd_config_get(cfg, "storage_type");
    if (!c)
        snprintf(err, errlen, "out of memory");
    else if (type && !strcmp(type, "hybrid") &&
             (xd_config_set(c, "auto_migration", "false", "layout", err, errlen) ||
              xd_config_set(c, "migration_interval_requests", "0", "layout", err, errlen))) {
        xd_config_free(c);
        c = NULL;
    }
    return c;
}

/* A write, the flush or the close of a layout failed with rc: the
 * device's line in err, or one naming the file. */
static void fio_xd_layout_failed(struct xd_dev *dev, const struct fio_file *f, int rc, char *err,
                                 size_t errlen)
{
    if (xd_dev_take_error(dev, err, errlen) == -ENOENT)
        snprintf(err, errlen, "%s: laying out the file for the job's reads: %s",
                 fio_xd_shown(f->file_name), strerror(-rc));
}

/* A layout that failed on a file it made (missing before): the file goes,
 * with what the chain made for it, as fio's failed layout leaves a short
 * file behind, so the next run lays it out again. Kept, it had the job's
 * full size (the container grown first) and chunks never written: the next
 * run found nothing to lay out and read zeros without a word. */
static void fio_xd_layout_undo(struct xd_dev *dev, const struct fio_file *f, char *err,
                               size_t errlen)
{
    char why[XD_ERRLEN];
    size_t at = strlen(err);
    if (!xd_unlink(dev, f->file_name, why, sizeof(why)))
        snprintf(err + at, errlen - at, "; the file it made is removed");
    else
        snprintf(err + at, errlen - at, "; the file it made could not be removed (%s): remove it "
                 "before the next run, which would read its blocks never written as zeros", why);
}

/* fio lays out a file that a job reads and finds missing or short with
 * its own buffers' data (extend_file: fill_io_buffer, so
 * buffer_compress_percentage, zero_buffers and the rest apply) before the
 * job starts. A container fio cannot lay out gets the same, written
 * through a device of the job's config over [from, to): a read job on a
 * new container then reads data, as it would from psync's file, rather
 * than chunks never written (zeros, which a compressed container serves
 * without decompressing anything). made: the file was missing (undone on
 * failure, fio_xd_layout_undo). 0 or -errno with one line in err. */
static int fio_xd_lay_out_data(struct thread_data *td, const struct xd_config *cfg,
                               const struct fio_file *f, uint64_t from, uint64_t to, bool made,
                               char *err, size_t errlen)
{
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    uint64_t bs = td->o.max_bs[DDIR_WRITE] ? td->o.max_bs[DDIR_WRITE] : 4096;
    void *buf = NULL;
    struct xd_config *quiet = fio_xd_layout_config(cfg, err, errlen);
    int rc = quiet ? xd_open(&dev, quiet, 1, err, errlen) : -EINVAL;
    xd_config_free(quiet);
    if (!rc)
        rc = xd_file_open(dev, f->file_name, XD_OPEN_CREATE, to, &file, err, errlen);
    if (!rc && posix_memalign(&buf, 4096, bs)) /* aligned: O_DIRECT chains copy nothing */
        rc = -ENOMEM;
    for (uint64_t off = from, n; !rc && off < to && !td->terminate; off += n) {
        n = to - off < bs ? to - off : bs;
        fill_io_buffer(td, buf, n, n);
        ssize_t w = xd_write(dev, file, buf, n, off);
        if (w != (ssize_t)n)
            rc = w < 0 ? (int)w : -EIO;
    }
    if (!rc)
        rc = xd_flush(dev, file, 0);
    /* an open that failed left its own line in err */
    if (rc && file)
        fio_xd_layout_failed(dev, f, rc, err, errlen);
    if (file) {
        int closed = xd_file_close(dev, file);
        if (closed && !rc)
            fio_xd_layout_failed(dev, f, closed, err, errlen);
        rc = rc ? rc : closed;
    }
    if (rc && made && dev) {
        fio_xd_layout_undo(dev, f, err, errlen);
    } else if (rc && file) { /* grown, never shrunk: say what its new tail holds */
        size_t at = strlen(err);
        snprintf(err + at, errlen - at, "; it keeps the size it was grown to, and its bytes from "
                 "%" PRIu64 " on hold no data: remove it before the next run, which would read "
                 "them as zeros", from);
    }
    xd_close(dev);
    free(buf);
    return rc;
}

/* Whether fio lays a job's missing or short files out with data, not just
 * sized (its extend_file): a job that reads, or one that writes with
 * overwrite=1 (so that its writes overwrite), unless it appends. */
static bool fio_xd_layout_with_data(const struct thread_data *td)
{
    return td_read(td) || (td_write(td) && td->o.overwrite && !td->o.file_append);
}

/* Types with their own format own their files: fio must never lay raw
 * bytes into one; the tmpfs type without backup_to_disk keeps nothing at
 * the path at all (XD_CFG_DATA_ELSEWHERE: fio's layout wrote a full-size
 * disk file nothing read). The container or tmpfs copy is created or
 * grown here, in setup (so a later job set up in fio's parent finds it, as
 * it finds a file psync laid out), with data where fio would write data
 * (fio_xd_layout_with_data: an overwrite=1 write job's container held
 * zeros, and its writes were first writes of blank chunks where psync's
 * overwrote data), to exactly the end fio will want - any
 * longer and a reader without size= would read a tail nobody wrote. fio is told the size from before
 * (what psync would find on disk), so its offset=N% comes out the same; the
 * setup hook then marks the job create_on_open, which makes fio take the
 * new end as the file's size instead of laying it out, and the engine's
 * open gets that end. Without size= the container must exist, and its
 * logical size is what fio sees, as st_size is for fio's own engines. */
static int fio_xd_prepare_container(struct thread_data *td, const struct xd_config *cfg,
                                    struct fio_file *f, unsigned *extra)
{
    char err[XD_ERRLEN] = "";
    uint64_t have = 0, want, logical;
    int rc = xd_path_logical_size(cfg, f->file_name, &have, err, sizeof(err));
    bool missing = rc == -ENOENT;
    if (rc && !missing)
        goto fail;
    want = read_only ? have : fio_xd_wanted_end(td, f, have, extra);
    if (missing && !td->o.allow_create && !read_only) {
        fio_xd_refuse_create(td, f, NULL);
        return 1;
    }
    if (missing && !want) {
        f->real_file_size = 0;
        return 0; /* fio says "you need to specify size=", or open creates it */
    }
    if ((missing || want > have) &&
        (rc = xd_path_prepare(cfg, f->file_name, want, &logical, err, sizeof(err))))
        goto fail;
    if (fio_xd_layout_with_data(td) && want > have &&
        (rc = fio_xd_lay_out_data(td, cfg, f, have, want, missing, err, sizeof(err)))) {
        fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
        td_verror(td, -rc, "xdevice layout");
        return 1;
    }
    f->real_file_size = have;
    fio_file_set_size_known(f);
    return 0;
fail:
    fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
    td_verror(td, -rc, "xd_path_prepare"); /* fio's own line then names the call */
    return 1;
}

/* Prepare every file of the job; fio's setup_files then recomputes the
 * same ends. Its random filesize= draws are taken again from the same
 * state, so they come out the same and in the same order. */
int fio_xd_prepare_containers(struct thread_data *td, const struct xd_config *cfg)
{
    struct frand_state drawn_from = td->file_size_state;
    unsigned extra = fio_xd_extra_blocks(td);
    struct fio_file *f;
    unsigned i;
    int rc = 0;
    for_each_file(td, f, i)
        if ((rc = fio_xd_prepare_container(td, cfg, f, &extra)))
            break;
    td->file_size_state = drawn_from;
    if (!read_only)
        td->o.create_on_open = 1; /* no layout: the ends are made above or at open */
    return rc;
}

/* Where fio would lay f out with data (missing or short: it would end at
 * *want, past the *have found), and whether the engine may do it
 * instead: not a device, no file of another user (whose removal
 * fio's layout refuses), no missing one under allow_file_create=0 (which
 * fio refuses), nothing but a regular file at the name. Takes f's ends in
 * file order (extra, random filesize= draws). -1: fio's to lay out; 0:
 * nothing to lay out; 1: the engine's. */
static int fio_xd_recorded_plan(struct thread_data *td, struct fio_file *f, unsigned *extra,
                                uint64_t *have, uint64_t *want)
{
    struct stat st;
    int looked = lstat(f->file_name, &st) ? errno : 0;
    bool missing = looked == ENOENT;
    *have = missing ? 0 : f->real_file_size;
    *want = fio_xd_wanted_end(td, f, *have, extra);
    if (*want <= *have)
        return 0;
    if (f->filetype != FIO_TYPE_FILE || (looked && !missing) ||
        (!missing && !S_ISREG(st.st_mode)) || (missing && !td->o.allow_create) || fio_xd_theirs(f))
        return -1;
    return 1;
}

/* fio lays out a file that a job reads (or writes with overwrite=1) and
 * finds missing or short with plain write()s of data, around the chain
 * (a write job's other files get only ftruncate or fallocate, no data).
 * Where a layer records what the chain
 * writes (XD_CFG_WRITES_RECORDED: checksums), every block of it then read
 * unchecked (data from before the sidecar, tagged so): a job trusting
 * checked reads got none. Such files are laid out here through the stack
 * instead, over what fio would add, [have, want), with the same buffers
 * (fio_xd_lay_out_data), and the job is marked create_on_open as for
 * containers: fio, told the size found before (so offset=N% comes out as
 * psync's), takes its end as the file's size instead of laying it out.
 * A job with a file fio must handle (fio_xd_recorded_plan), or with
 * --readonly, create_on_open or fill_device, is left to fio whole. 0, or
 * 1 with the error set and said. */
int fio_xd_lay_out_recorded(struct thread_data *td, const struct xd_config *cfg)
{
    struct frand_state drawn_from = td->file_size_state;
    unsigned extra = fio_xd_extra_blocks(td);
    uint64_t have, want;
    char err[XD_ERRLEN] = "";
    struct fio_file *f;
    unsigned i;
    int rc = 0, plan = 0, ours = 0;
    if (!fio_xd_layout_with_data(td) || read_only || td->o.create_on_open || td->o.fill_device)
        return 0;
    for_each_file(td, f, i) {
        if ((plan = fio_xd_recorded_plan(td, f, &extra, &have, &want)) < 0)
            break;
        ours += plan;
    }
    td->file_size_state = drawn_from;
    if (plan < 0 || !ours)
        return 0;
    extra = fio_xd_extra_blocks(td);
    for_each_file(td, f, i) {
        struct stat st;
        bool made = lstat(f->file_name, &st) && errno == ENOENT;
        if (fio_xd_recorded_plan(td, f, &extra, &have, &want) > 0 &&
            (rc = fio_xd_lay_out_data(td, cfg, f, have, want, made, err, sizeof(err)))) {
            fio_xd_err("xdevice: %s\n", err[0] ? err : strerror(-rc));
            td_verror(td, -rc, "xdevice layout");
            break;
        }
    }
    td->file_size_state = drawn_from;
    td->o.create_on_open = 1;
    return rc ? 1 : 0;
}

/* fio preallocates the files it lays out (fallocate=native by default),
 * which allocates every block the sparse layer is about to leave a hole in;
 * freeing them again costs a punch per zero block (on ext4 more than writing
 * them). Chains with the sparse layer get their files sized by ftruncate
 * instead, unless the job chose fallocate= itself. */
void fio_xd_sparse_layout(struct thread_data *td, const struct xd_config *cfg)
{
    bool sparse = xd_config_caps(cfg) & XD_CFG_HOLES;
    if (sparse && !fio_option_is_set(&td->o, fallocate_mode))
        td->o.fallocate_mode = FIO_FALLOCATE_TRUNCATE;
}
