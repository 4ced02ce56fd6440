/* engine_checks.c - setup's checks of what a job names (engine.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

/* How many of the run's jobs publish to the stats file at path, so the
 * last of them can remove the fragments. Counted in setup, which with
 * create_serialize (the default) runs in fio's main process for every job
 * before any starts: later, fio frees a finished job's engine options (in
 * thread mode under our feet). 0 (unknown: fragments stay) otherwise. */
unsigned fio_xd_stats_jobs(const char *path)
{
    struct thread_data *td;
    unsigned n = 0;
    int i;
    for_each_td(td, i) {
        const struct fio_xd_options *o = td->eo;
        if (td->io_ops && td->io_ops->queue == ioengine.queue && o && o->stats &&
            !strcmp(o->stats, path))
            n++;
    }
    return n;
}

/* base_directory is for programs linking libxdevice, where relative names
 * resolve against it; fio has already named the job's files (directory=)
 * and lays them out at those names, so a relative name would have fio's
 * layout in one place and the data in another (base_directory/name). A
 * config shared with such a program works once the job sets directory= to
 * it (fio's names are then absolute and base_directory never applies). */
int fio_xd_check_base_directory(struct thread_data *td, const struct xd_config *cfg)
{
    const char *base = xd_config_get(cfg, "base_directory");
    struct fio_file *f;
    unsigned i;
    if (!base || !base[0])
        return 0;
    for_each_file(td, f, i)
        if (f->file_name[0] != '/') {
            const char *origin = xd_config_origin(cfg, "base_directory"), *name;
            name = fio_xd_shown(f->file_name); /* base has no control bytes (xd_config_set) */
            if (td->subjob_number == 0)
                fio_xd_err("xdevice: base_directory=%s (%s): fio names and lays out the job's files itself, and %s is relative, so fio's file and xdevice's (%s/%s) would differ; allowed: directory=%s in the job (or absolute file names), or an empty base_directory\n",
                           base, origin ? origin : "xd_base_directory", name, base, name, base);
            return 1;
        }
    return 0;
}

/* path with its directory resolved (symlinks, "..", relative names), for
 * telling whether two names, one or both not made yet, are one file;
 * malloc'd, or NULL when the directory cannot be resolved. */
static char *fio_xd_resolved_path(const char *path)
{
    char *copy = strdup(path), *copy2 = strdup(path), *dir = NULL, *out = NULL;
    if (copy && copy2 && (dir = realpath(dirname(copy), NULL)) &&
        asprintf(&out, "%s/%s", dir, basename(copy2)) < 0)
        out = NULL;
    free(copy);
    free(copy2);
    free(dir);
    return out;
}

static bool fio_xd_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!stat(a, &sa) && !stat(b, &sb))
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char *ra = fio_xd_resolved_path(a), *rb = fio_xd_resolved_path(b);
    bool same = ra && rb ? !strcmp(ra, rb) : !strcmp(a, b);
    free(ra);
    free(rb);
    return same;
}

/* An output the run writes (xd_stats, replaced at the end; the periodic
 * log and the trace, appended to) that is also one of the job's data
 * files, its xd_config or another output: xd_stats named like the data
 * file replaced the data with JSON, and the trace appended records to it.
 * Said in one line naming both; 1 when so. */
static int fio_xd_output_clash(struct thread_data *td, const char *what, const char *path,
                               const char *const *used, const char *const *used_as, unsigned n)
{
    struct fio_file *f;
    unsigned i;
    const char *clash = NULL, *as = NULL;
    for_each_file(td, f, i)
        if (fio_xd_same_file(path, f->file_name)) {
            clash = f->file_name;
            as = "the job's data file";
            break;
        }
    for (i = 0; !clash && i < n; i++)
        if (used[i] && fio_xd_same_file(path, used[i])) {
            clash = used[i];
            as = used_as[i];
        }
    if (clash && td->subjob_number == 0) {
        char shown[XD_ESCAPE_LEN];
        fio_xd_err("xdevice: %s=%s: it is %s (%s); allowed: a file of its own\n",
                   what, xd_escape(path, shown, sizeof(shown)), as, fio_xd_shown(clash));
    }
    return clash ? 1 : 0;
}

int fio_xd_check_outputs(struct thread_data *td, const struct xd_config *cfg)
{
    const struct fio_xd_options *o = td->eo;
    const char *trace = xd_config_get(cfg, "trace");
    bool periodic = strcmp(xd_config_get(cfg, "metrics_interval_sec"), "0") != 0;
    char *log = periodic ? fio_xd_stats_log_path(o) : NULL;
    const char *used[] = { o->config, o->stats, log };
    const char *as[] = { "the job's xd_config", "its xd_stats file", "its periodic stats log" };
    int rc = (o->stats && fio_xd_output_clash(td, "xd_stats", o->stats, used, as, 1)) ||
             (log && fio_xd_output_clash(td, o->stats_log ? "xd_stats_log" : "the periodic stats log",
                                         log, used, as, 2)) ||
             (trace && trace[0] && fio_xd_output_clash(td, "trace", trace, used, as, 3));
    free(log);
    return rc;
}

/* Options the job gives that nothing reads (xd_backup_to_disk on the
 * regular type, xd_checksum_block_size without xd_enable_checksums) change
 * nothing: said once, in one line, rather than let the user believe them
 * in force. Keys from an INI file are not named:
 * one file may serve several types. */
void fio_xd_note_unread(struct thread_data *td, const struct xd_config *cfg)
{
    char *names = NULL;
    size_t used = 0, count = 0;
    FILE *line = open_memstream(&names, &used); /* as long as the options are */
    if (!line)
        return;
    for (unsigned i = 0; i < xd_config_key_count(); i++) {
        const char *key = xd_config_key_name(i), *origin = xd_config_origin(cfg, key);
        if (origin && !strncmp(origin, "option ", 7) && !xd_config_reads(cfg, key))
            fprintf(line, "%s%s", count++ ? ", " : "", origin + 7);
    }
    if (fclose(line) || !names)
        count = 0; /* out of memory: nothing to say it with */
    if (count && td->subjob_number == 0)
        fio_xd_note("xdevice: this job reads no %s (keys of another storage type than %s, or of a layer it leaves off): %s no effect\n",
                    names, xd_config_get(cfg, "storage_type"), count > 1 ? "they have" : "it has");
    free(names);
}
