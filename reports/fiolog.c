/* fiolog.c - fio's text logs to struct xr_series.
 *
 * write_lat_log=NAME gives NAME_lat.N.log, NAME_clat.N.log and
 * NAME_slat.N.log; write_iops_log, write_bw_log and write_hist_log give
 * NAME_iops, NAME_bw and NAME_clat_hist. N is the job's number (absent with
 * per_job_logs=0). Lines, as fio 3.33 writes them (iolog.c):
 *
 *     time_ms, value, ddir, bs[, offset], prio           flush_samples()
 *     time_ms, ddir, bs, count0, count1, ...             flush_hist_samples()
 *
 * A hist line has 1856 >> log_hist_coarseness counts: the I/Os of that
 * interval in each latency bucket. The lines of lat, clat, iops and bw logs
 * look alike, so the name tells which figure the value is; the number of
 * columns tells a hist log.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "load.h"
#include "mem.h"

/* fio's latency buckets (stat.h): 29 groups of 64, log-linear */
#define PLAT_BITS 6
#define PLAT_VAL (1u << PLAT_BITS)
#define PLAT_NR (29 * PLAT_VAL)

static const struct {
    const char *suffix, *kind;
} kinds[] = {   /* _clat_hist before _clat, _clat and _slat before _lat */
    { "_clat_hist", "hist" }, { "_clat", "clat" }, { "_slat", "slat" },
    { "_lat", "lat" }, { "_iops", "iops" }, { "_bw", "bw" },
};

struct logname {
    char *name;
    const char *kind;    /* NULL when the name is not one fio gives */
    int jobnum;
};

static struct logname parse_name(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t len = strlen(base);
    struct logname ln = { 0 };
    const char *dot;

    if (len > 4 && strcmp(base + len - 4, ".log") == 0)
        len -= 4;
    dot = memrchr(base, '.', len);
    if (dot && dot + 1 < base + len && strspn(dot + 1, "0123456789") == (size_t)(base + len - dot - 1)) {
        ln.jobnum = atoi(dot + 1);
        len = dot - base;
    }
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        size_t sl = strlen(kinds[i].suffix);

        if (len > sl && memcmp(base + len - sl, kinds[i].suffix, sl) == 0) {
            ln.kind = kinds[i].kind;
            len -= sl;
            break;
        }
    }
    ln.name = xr_mem_strndup(base, len);
    return ln;
}

int xr_fiolog_named(const char *path)
{
    struct logname ln = parse_name(path);

    free(ln.name);
    return ln.kind != NULL;
}

/* One direction's samples as they are read. */
struct builder {
    double *t, *v, *p99;
    size_t n;
};

static void add_point(struct builder *b, double t, double v, double p99, int hist)
{
    size_t n = b->n;

    xr_mem_push(&b->t, &n, sizeof *b->t);
    n = b->n;
    xr_mem_push(&b->v, &n, sizeof *b->v);
    if (hist) {
        n = b->n;
        xr_mem_push(&b->p99, &n, sizeof *b->p99);
        b->p99[b->n] = p99;
    }
    b->t[b->n] = t;
    b->v[b->n] = v;
    b->n++;
}

/* Numbers of one line, comma separated; -1 on anything else. */
static int split_numbers(char *line, double *f, int max)
{
    int n = 0;
    char *p = line, *end;

    while (*p) {
        if (n == max)
            return -1;
        errno = 0;
        f[n] = strtod(p, &end);
        if (end == p || errno)
            return -1;
        n++;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

/* fio's plat_idx_to_val(): the middle of bucket idx, in ns */
static double bucket_ns(unsigned idx)
{
    unsigned err_bits;

    if (idx < (PLAT_VAL << 1))
        return idx;
    err_bits = (idx >> PLAT_BITS) - 1;
    return (double)(1ull << (err_bits + PLAT_BITS)) + ((idx % PLAT_VAL) + 0.5) * (double)(1ull << err_bits);
}

/* p50 and p99 of one interval's buckets; 0 when the interval had no I/O. */
static int hist_percentiles(const double *cnt, int nb, double *p50, double *p99)
{
    unsigned stride = PLAT_NR / nb;
    double total = 0, cum = 0;

    for (int i = 0; i < nb; i++)
        total += cnt[i];
    if (total <= 0)
        return 0;
    *p50 = *p99 = NAN;
    for (int i = 0; i < nb; i++) {
        cum += cnt[i];
        if (isnan(*p50) && cum >= 0.50 * total)
            *p50 = bucket_ns(i * stride + stride / 2);
        if (cum >= 0.99 * total) {
            *p99 = bucket_ns(i * stride + stride / 2);
            break;
        }
    }
    return 1;
}

static int valid_hist_width(int nb)
{
    return nb > 0 && PLAT_NR % nb == 0 && ((PLAT_NR / nb) & (PLAT_NR / nb - 1)) == 0;
}

/* One line into b[]; returns 0, or -1 with the reason in err. *hist is -1
 * until the first line tells whether this is a hist log; every later line
 * must agree, or the per-direction arrays would fall out of step. */
static int parse_line(char *line, double *f, int maxf, struct builder *b, int *hist_mode,
                      char *err, size_t errlen)
{
    int n = split_numbers(line, f, maxf);
    int hist = n > 6;
    double p50, p99;
    int ddir;

    if (n < 3) {
        snprintf(err, errlen, "expected \"time, value, direction, block size\" numbers");
        return -1;
    }
    if (*hist_mode < 0)
        *hist_mode = hist;
    if (*hist_mode != hist) {
        snprintf(err, errlen, "%d columns, unlike the lines before it", n);
        return -1;
    }
    /* fio writes no negative time or figure, and directions 0-6 (read,
     * write, trim, then sync, datasync, sync_file_range, wait) */
    double dir = hist ? f[1] : f[2];
    if (f[0] < 0 || (!hist && f[1] < 0)) {
        snprintf(err, errlen, "%s %g is negative; allowed: 0 or more", f[0] < 0 ? "time" : "value",
                 f[0] < 0 ? f[0] : f[1]);
        return -1;
    }
    if (dir < 0 || dir > 6 || dir != (int)dir) {
        snprintf(err, errlen, "direction %g; allowed: 0 to 6 (read, write, trim, sync, datasync, sync_file_range, wait)",
                 dir);
        return -1;
    }
    ddir = (int)dir;
    if (ddir > XR_TRIM)
        return 0;                 /* sync/fsync samples: no direction to show */
    if (!hist) {
        add_point(&b[ddir], f[0], f[1], 0, 0);
        return 0;
    }
    if (!valid_hist_width(n - 3)) {
        snprintf(err, errlen, "%d latency buckets; fio writes %u >> log_hist_coarseness", n - 3,
                 PLAT_NR);
        return -1;
    }
    if (hist_percentiles(f + 3, n - 3, &p50, &p99))
        add_point(&b[ddir], f[0], p50, p99, 1);
    return 0;
}

static void emit(struct xr_set *set, const char *path, const struct logname *ln,
                 const char *kind, struct builder *b)
{
    for (int d = 0; d < XR_NDIR; d++) {
        struct xr_series *s;

        if (!b[d].n)
            continue;
        s = xr_mem_push(&set->series, &set->nseries, sizeof *s);
        s->source = xr_mem_strdup(path);
        s->kind = xr_mem_strdup(kind);
        s->name = xr_mem_strdup(ln->name);
        s->jobnum = ln->jobnum;
        s->ddir = d;
        s->t_ms = b[d].t;
        s->value = b[d].v;
        s->p99 = b[d].p99;
        s->n = b[d].n;
    }
}

int xr_fiolog_parse(struct xr_set *set, const char *path, const char *buf, size_t len,
                    char *err, size_t errlen)
{
    struct logname ln = parse_name(path);
    struct builder b[XR_NDIR] = { 0 };
    int maxf = PLAT_NR + 8, rc = 0;
    double *f = xr_mem_alloc(maxf * sizeof *f);
    char *copy = xr_mem_strndup(buf, len), *save = NULL, *line;
    unsigned lineno = 0;
    int hist_mode = -1;
    char why[160], shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    for (line = strtok_r(copy, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        if (parse_line(line, f, maxf, b, &hist_mode, why, sizeof why)) {
            snprintf(err, errlen, "xdreport: %s: line %u: %s", xr_escape(path, shown, sizeof shown),
                     lineno, why);
            rc = -1;
        }
    }
    /* a hist log is known by its columns even when renamed */
    if (!ln.kind && hist_mode == 1)
        ln.kind = "hist";
    if (ln.kind && strcmp(ln.kind, "hist") == 0 && hist_mode == 0) {
        snprintf(err, errlen, "xdreport: %s: named a hist log but its lines have no latency "
                 "buckets", xr_escape(path, shown, sizeof shown));
        ln.kind = NULL;
        rc = -1;
    }
    if (!ln.kind && rc == 0) {
        snprintf(err, errlen, "xdreport: %s: a fio log by its content, but which one? fio "
                 "names them NAME_{lat,clat,slat,iops,bw,clat_hist}.N.log",
                 xr_escape(path, shown, sizeof shown));
        rc = -1;
    }
    if (ln.kind) {
        emit(set, path, &ln, ln.kind, b);   /* what was read before a bad line is kept */
    } else {
        for (int d = 0; d < XR_NDIR; d++) {
            free(b[d].t);
            free(b[d].v);
            free(b[d].p99);
        }
    }
    free(ln.name);
    free(copy);
    free(f);
    return rc;
}
