/* trial.c - one trial: the job copy for a candidate config (jobfile.c), one
 * fio run with JSON output and xdevice's stats, and the figures read back.
 *
 * fio runs in xdtune's working directory, so the job's relative paths (the
 * engine, its data files) mean what they mean when the user runs it.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "xdtune.h"
#include "../backends/core/fileutil.h"
#include "../common/fiojson.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* escaped: a newline in a path or name would split the line */
    xd_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int xt_is_directory(FILE *f)
{
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode);
}

char *xt_read_file(const char *path, size_t *len)
{
    FILE *f = xd_fopen_input(path);
    if (!f)
        return NULL;
    /* a directory opens, and reads as nothing: an empty job, history or
     * stats document would be read as valid */
    if (xt_is_directory(f)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            char *grown = realloc(buf, cap = cap * 2 + 65536);
            if (!grown) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) { /* half a file read as all of it would mislead */
        int e = errno;
        free(buf);
        fclose(f);
        errno = e;
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

/* xdtune's outputs are made the way the library makes its own files
 * (backends/core/fileutil.h): in a directory checked to be the user's or
 * root's and not writable by others unless sticky, never through a symlink,
 * temp names unpredictable. xdtune has no config, so no shared directory
 * is allowed. */
static int out_dir(const char *path, const char **base, char *err, size_t errlen)
{
    return xd_dir_open_for(path, path, false, base, err, errlen);
}

int xt_write_atomic(const char *path, const char *text, char *err, size_t errlen)
{
    const char *base;
    int dirfd = out_dir(path, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    struct iovec iov = {(void *)text, strlen(text)};
    int rc = xd_write_file_atomic(dirfd, base, 0644, &iov, 1, NULL, NULL, 0);
    close(dirfd);
    if (rc)
        fail(err, errlen, "%s: cannot replace it: %s", path, xd_refusal(rc));
    return rc;
}

int xt_replace_check(const char *path, char *err, size_t errlen)
{
    const char *base;
    int dirfd = out_dir(path, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    int rc = xd_replace_check(dirfd, base, path, NULL, err, errlen);
    close(dirfd);
    return rc;
}

int xt_create(const char *path, char *err, size_t errlen)
{
    const char *base;
    int dirfd = out_dir(path, &base, err, errlen);
    if (dirfd < 0)
        return dirfd;
    /* an earlier trial's file, or a link planted at the name: the link
     * itself goes, never what it points to */
    int fd = unlinkat(dirfd, base, 0) && errno != ENOENT ? -errno
                                                        : xd_create_at(dirfd, base, O_WRONLY, 0644);
    close(dirfd);
    if (fd < 0)
        fail(err, errlen, "%s: cannot create it: %s", path, xd_refusal(fd));
    return fd;
}

/* --- fio ------------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The line of fio's stderr that says what went wrong: the first naming an
 * error, else the last one. */
static void fio_error_line(const char *errpath, int status, char *err, size_t errlen)
{
    char *text = xt_read_file(errpath, NULL);
    char *pick = NULL, *last = NULL, *save = NULL;
    for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        if (!*l || strncmp(l, "note:", 5) == 0)
            continue;
        last = l;
        if (!pick && (strstr(l, "rror") || strstr(l, "xdevice:") || strstr(l, "fio:")))
            pick = l;
    }
    if (!pick)
        pick = last;
    if (WIFSIGNALED(status))
        fail(err, errlen, "fio was killed by signal %d%s%s", WTERMSIG(status), pick ? ": " : "",
             pick ? pick : "");
    else
        fail(err, errlen, "fio exited with %d: %s", WEXITSTATUS(status),
             pick ? pick : "(no message)");
    free(text);
}

/* host: a fio server in --client syntax (hosts.c), NULL to run locally. */
static pid_t fio_spawn(const char *jobpath, const char *outpath, const char *host, int errfd)
{
    pid_t pid = fork();
    if (pid)
        return pid;
    int fd = errfd;
    if (fd >= 0) {
        dup2(fd, 1); /* fio's notes on stdout go with its errors, not into the JSON */
        dup2(fd, 2);
    }
    setpgid(0, 0);
    char out[4500];
    snprintf(out, sizeof(out), "--output=%s", outpath);
    if (host) {
        char client[4200];
        snprintf(client, sizeof(client), "--client=%s", host);
        execlp("fio", "fio", client, "--output-format=json", out, jobpath, (char *)NULL);
    } else {
        execlp("fio", "fio", "--output-format=json", out, jobpath, (char *)NULL);
    }
    fprintf(stderr, "xdtune: cannot run fio: %s\n", strerror(errno));
    _exit(127);
}

/* Wait for fio, killing its process group after timeout seconds. */
static int fio_wait(pid_t pid, double timeout, int *status)
{
    double until = now_s() + timeout;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_s() > until) {
            kill(-pid, SIGKILL);
            waitpid(pid, status, 0);
            return 1;
        }
        usleep(20000);
    }
}

static void run_paths(struct xt_run *run, const char *prefix)
{
    snprintf(run->prefix, sizeof(run->prefix), "%s", prefix);
    snprintf(run->jobpath, sizeof(run->jobpath), "%s.fio", prefix);
    snprintf(run->out, sizeof(run->out), "%s.json", prefix);
    snprintf(run->stats, sizeof(run->stats), "%s.stats.json", prefix);
    snprintf(run->errpath, sizeof(run->errpath), "%s.err", prefix);
}

int xt_trial_start(const struct xt_job *job, const char *ini_path, const char *prefix,
                   const char *host, struct xt_run *run, char *err, size_t errlen)
{
    char ini_abs[4400];
    memset(run, 0, sizeof(*run));
    run->pid = -1;
    run->host = host;
    run->job = job;
    run_paths(run, prefix);
    if (!realpath(ini_path, ini_abs))
        return fail(err, errlen, "%s: %s", ini_path, strerror(errno));
    /* fio opens --output by name: made here first, in the checked
     * directory, so no planted link can be where fio writes */
    int errfd = -1, outfd = xt_create(run->out, err, errlen);
    if (outfd < 0 || (errfd = xt_create(run->errpath, err, errlen)) < 0) {
        if (outfd >= 0)
            close(outfd);
        return -1;
    }
    close(outfd);
    const char *sbase;
    int sdir = out_dir(run->stats, &sbase, err, errlen);
    if (sdir < 0) {
        close(errfd);
        return -1;
    }
    unlinkat(sdir, sbase, 0); /* the engine makes it anew (never through a link) */
    close(sdir);
    if (xt_job_write(job, run->jobpath, ini_abs, run->stats, err, errlen)) {
        close(errfd);
        return -1;
    }
    run->t0 = now_s();
    run->pid = fio_spawn(run->jobpath, run->out, host, errfd);
    close(errfd);
    if (run->pid < 0)
        return fail(err, errlen, "cannot start fio: %s", strerror(errno));
    return 0;
}

int xt_trial_finish(struct xt_run *run, double timeout_s, struct xt_figures *fig, char *err,
                    size_t errlen)
{
    int status = 0;
    memset(fig, 0, sizeof(*fig));
    double left = timeout_s - (now_s() - run->t0);
    int timed_out = fio_wait(run->pid, left > 0 ? left : 0.001, &status);
    run->pid = -1;
    fig->seconds = now_s() - run->t0;
    if (timed_out > 0)
        return fail(err, errlen, "fio did not finish within %.0f s (--trial-timeout); killed",
                    timeout_s);
    if (timed_out < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fio_error_line(run->errpath, status, err, errlen);
        return -1;
    }
    /* on a server, the stats come back in fio's output (hosts.c) */
    char *fio_json = xt_read_file(run->out, NULL);
    char *stats_json = run->host && fio_json ? fiojson_server_stats(fio_json) : NULL;
    if (!stats_json)
        stats_json = xt_read_file(run->stats, NULL);
    double seconds = fig->seconds;
    int rc = fio_json ? xt_figures_parse(fio_json, stats_json, run->job, fig, err, errlen)
                      : fail(err, errlen, "%s: fio wrote no output", run->out);
    /* fio's client exits 0 when its server refused the job: the server's
     * own line says why (hosts.c) */
    if (rc && run->host && fio_json)
        xt_host_error(run->host, fio_json, err, errlen);
    fig->seconds = seconds;
    free(fio_json);
    free(stats_json);
    return rc;
}

/* --- figures ---------------------------------------------------------------------- */

static void stats_figures(const char *stats_json, struct xt_figures *fig)
{
    fig->cache_hit = -1;
    fig->compress_ratio = -1;
    cJSON *doc = stats_json ? cJSON_Parse(stats_json) : NULL;
    const cJSON *job, *jobs = cJSON_GetObjectItemCaseSensitive(doc, "jobs");
    double hits = 0, lookups = 0, ratio_sum = 0;
    int nratio = 0;
    cJSON_ArrayForEach(job, jobs) {
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(job, "layers");
        const cJSON *cache = cJSON_GetObjectItemCaseSensitive(layers, "cache");
        const cJSON *compress = cJSON_GetObjectItemCaseSensitive(layers, "compress");
        if (cache && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cache, "enabled"))) {
            hits += fiojson_num(cache, "hits", 0);
            lookups += fiojson_num(cache, "hits", 0) + fiojson_num(cache, "misses", 0);
        }
        if (compress && fiojson_num(compress, "ratio", 0) > 0) {
            ratio_sum += fiojson_num(compress, "ratio", 0);
            nratio++;
        }
    }
    if (lookups > 0)
        fig->cache_hit = hits / lookups;
    if (nratio)
        fig->compress_ratio = ratio_sum / nratio;
    cJSON_Delete(doc);
}

/* The jobs whose figures count: those running xdevice (a job on another
 * engine in the same file does not change with the candidate). When none
 * is found by name (group_reporting names a group after its first job),
 * every job counts. */
static int job_counts(const cJSON *jobs, const cJSON *job, const struct xt_job *xj)
{
    const cJSON *j;
    int any = 0;
    if (!xj || !xj->nxd_jobs)
        return 1;
    cJSON_ArrayForEach(j, jobs) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "jobname");
        any |= cJSON_IsString(name) && xt_job_runs_xdevice(xj, name->valuestring);
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "jobname");
    return !any || (cJSON_IsString(name) && xt_job_runs_xdevice(xj, name->valuestring));
}

int xt_figures_parse(const char *fio_json, const char *stats_json, const struct xt_job *xj,
                     struct xt_figures *fig, char *err, size_t errlen)
{
    static const char *const dirs[] = { "read", "write", "trim" };
    cJSON *doc = fiojson_last_document(fio_json);
    const cJSON *job, *jobs = fiojson_jobs(doc);
    double ios = 0, lat_sum = 0, wios = 0, wlat_sum = 0;
    memset(fig, 0, sizeof(*fig));
    if (!cJSON_IsArray(jobs) || cJSON_GetArraySize(jobs) == 0) {
        cJSON_Delete(doc);
        return fail(err, errlen, "fio's output is not its JSON (no \"jobs\")");
    }
    cJSON_ArrayForEach(job, jobs) {
        if (fiojson_num(job, "error", 0)) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(job, "jobname");
            fail(err, errlen, "fio job %s ended with error %.0f (%s)",
                 cJSON_IsString(name) ? name->valuestring : "?", fiojson_num(job, "error", 0),
                 strerror((int)fiojson_num(job, "error", 0)));
            cJSON_Delete(doc);
            return -1;
        }
        if (!job_counts(jobs, job, xj))
            continue;
        /* unified_rw_reporting=1: one "mixed" for all three; its writes
         * cannot be told apart, so it adds nothing to write_lat_us */
        const cJSON *mixed = fiojson_mixed(job);
        for (int d = 0; d < 3; d++) {
            const cJSON *dir = mixed ? (d == 0 ? mixed : NULL)
                                     : cJSON_GetObjectItemCaseSensitive(job, dirs[d]);
            /* total latency: the job copy sets lat_percentiles=1, unless a
             * job section turned it off */
            const cJSON *lat = fiojson_latency(dir);
            const cJSON *pct = cJSON_GetObjectItemCaseSensitive(lat, "percentile");
            double n = fiojson_num(dir, "total_ios", 0), p99 = fiojson_num(pct, "99.000000", 0) / 1000.0;
            fig->iops += fiojson_num(dir, "iops", 0);
            ios += n;
            lat_sum += n * fiojson_num(lat, "mean", 0) / 1000.0;
            if (d == 1) {
                wios += n;
                wlat_sum += n * fiojson_num(lat, "mean", 0) / 1000.0;
            }
            if (n > 0 && p99 > fig->p99_us)
                fig->p99_us = p99;
        }
    }
    cJSON_Delete(doc);
    fig->lat_us = ios > 0 ? lat_sum / ios : 0;
    fig->write_lat_us = wios > 0 ? wlat_sum / wios : 0;
    stats_figures(stats_json, fig);
    if (ios <= 0)
        return fail(err, errlen, "fio completed no I/O");
    return 0;
}
