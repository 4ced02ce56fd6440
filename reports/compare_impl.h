/* compare_impl.h - what the parts of `xdreport compare` share: the rows
 * compare.c loads and judges (runs, workloads, rows) and the output
 * compare_out.c writes from them. Private to those two files; the command's
 * contract is in compare.h.
 */
#ifndef XR_COMPARE_IMPL_H
#define XR_COMPARE_IMPL_H

#include <stddef.h>

#include "results.h"

/* The tables are static: each of the two files gets its own small copy. */
enum side { BASE, NEW, NSIDE };
static const char *const side_name[NSIDE] = {"BASE", "NEW"};

enum kind { K_IOPS, K_BW, K_CLAT_MEAN, K_CLAT_P50, K_CLAT_P99, NKIND };
static const struct {
    const char *name;
    int higher_is_better;
} kinds[NKIND] = {
    [K_IOPS] = {"iops", 1},          [K_BW] = {"bw", 1},
    [K_CLAT_MEAN] = {"clat_mean", 0}, [K_CLAT_P50] = {"clat_p50", 0},
    [K_CLAT_P99] = {"clat_p99", 0},
};
/* read, write and, for jobs run with unified_rw_reporting=1, mixed (their
 * only figures); trims are not compared */
#define NDIR 3
static const char *const dir_name[NDIR] = {"read", "write", "mixed"};
static const enum xr_ddir dir_of[NDIR] = {XR_READ, XR_WRITE, XR_MIXED};
#define NLAT 3 /* the latency kinds, from K_CLAT_MEAN on */

/* fio times a request that the engine completes inside queue() (xdevice's
 * cached reads and tmpfs I/O under libaio/io_uring) only across its own
 * bookkeeping: some 40 ns, jittering by a quarter. Latencies this small on
 * both sides say nothing about the I/O, so they are shown but not judged. */
#define LAT_FLOOR_NS 250.0

/* V_INFORMATIONAL: shown with its figures but not judged (--paired: a
 * metric that is not gated, compare_paired.c); it never sets the exit
 * status. */
enum verdict { V_REGRESSION, V_IMPROVEMENT, V_SAME, V_INCONCLUSIVE, V_INFORMATIONAL, NVERDICT };
static const char *const verdict_name[NVERDICT] = {"regression", "improvement", "same",
                                                   "inconclusive", "informational"};

struct opts {
    double threshold; /* percent */
    double alpha;
    long min_runs;
    const char *junit, *metrics;
    const char *path[NSIDE];
    char **ignore; /* --ignore-option keys, left out of the options compared */
    size_t nignore;
    int paired;              /* --paired: judge the per-round NEW/BASE ratios */
    const char *decided;     /* --decided FILE: verdicts an earlier look reached */
    const char *verdicts;    /* --verdicts FILE: this look's verdicts, for the next */
};

/* One workload's figures in one run. Latencies are kept as sums weighted by
 * I/O count, so jobs sharing a name in one document combine: exactly for
 * the mean, but a mean of percentiles is no percentile, so those come from
 * the jobs' json+ latency bins pooled (compare_pooled.c), as fio's
 * group_reporting computes them, and without bins are marked averaged. */
struct run {
    double iops[NDIR], bw[NDIR], ios[NDIR];
    double lat_x_ios[NDIR][NLAT];
    size_t doc; /* index of the document it came from */
    long round; /* its file's repetition number (xr_pair_round), -1 if none */
    const struct xr_dir **parts[NDIR]; /* the jobs with I/O in the direction, */
    size_t nparts[NDIR];               /* until xr_cmp_pool_percentiles */
    int pooled[NDIR];   /* several jobs: p50 and p99 below, from their bins */
    double pct[NDIR][2];
    int averaged[NDIR]; /* several jobs without bins: p50 and p99 are the
                           I/O-weighted mean of the jobs' own */
};

/* Which latency a workload's runs report: fio's completion latency, or its
 * total latency when the jobs set lat_percentiles=1 (the loader prefers it). */
enum lat_kind { LAT_UNSEEN, LAT_COMPLETION, LAT_TOTAL };

/* One fio job name within one configuration (pairing.h): its runs on each
 * side, and the options they all share (pairing.c's fingerprint). */
struct workload {
    char *config, *name;
    char *label; /* "config/name", or name alone where that is unambiguous */
    enum lat_kind lat; /* the same in every run, or the comparison is refused */
    struct run *runs[NSIDE];
    size_t nruns[NSIDE];
    char *opts[NSIDE];        /* NULL until a run is seen */
    char *opts_from[NSIDE];   /* the file that set them, for messages */
};

struct row {
    const struct workload *w;
    int dir;
    enum kind kind;
    size_t n[NSIDE];
    double median[NSIDE];
    double ratio, ci_lo, ci_hi, p;
    int exact;
    enum verdict verdict;
    int too_few; /* with these many runs, p < alpha cannot happen */
    size_t npairs; /* --paired: rounds with a value on both sides */
    int kept;      /* the verdict is an earlier look's (--decided) */
    char why[600];
};

struct compare {
    struct opts o;
    struct workload *w;
    size_t nw;
    struct row *rows;
    size_t nrows;
    size_t nfiles[NSIDE];
    struct xr_set set[NSIDE]; /* what each side loaded */
    size_t *doc[NSIDE];       /* its runs: the last document of each file */
    char **config[NSIDE];     /* and their configuration names */
    long *round[NSIDE];       /* and repetition numbers (xr_pair_round) */
    size_t nloaded[NSIDE];
    double row_alpha;         /* --paired: alpha / gated rows (Bonferroni) */
};

/* compare.c: one run's value of a metric; NAN when it has none (latency of
 * a direction without I/O, a percentile fio did not report). */
double xr_cmp_run_value(const struct run *r, int dir, enum kind k);

/* compare_pooled.c: job x of a run does I/O in direction d; once every
 * job is in, each run's percentiles where several jobs did (pooled from
 * their bins, else marked averaged); the verdict of a percentile row that
 * rests on averaged runs: never decided (the reason says why). */
void xr_cmp_add_part(struct run *r, int d, const struct xr_dir *x);
void xr_cmp_pool_percentiles(struct compare *c);
void xr_cmp_check_averaged(struct row *r);

/* compare_paired.c: --paired judges only this metric (the median
 * latency); the rest are informational. */
int xr_cmp_gated(enum kind k);

/* compare_paired.c: the verdict of row r from the rounds both sides ran,
 * the sign test's interval for the median log ratio, each end at
 * one-sided level c->row_alpha. */
void xr_cmp_decide_paired(const struct compare *c, struct row *r);

/* compare_decided.c: --decided and --verdicts (0, or 2 after one line on
 * stderr). Reading keeps each row's earlier decision: its verdict and the
 * figures that reached it. */
int xr_cmp_keep_decided(struct compare *c, const char *path);
int xr_cmp_write_verdicts(const struct compare *c, const char *path);

/* compare_out.c: the one line for an output file (--junit, --metrics,
 * --verdicts) that xr_out_begin or xr_out_check refused; returns 2. */
int xr_cmp_out_refused(const char *opt, const char *path);

/* compare_out.c: "label/metric" of a row into buf. */
const char *xr_cmp_row_name(const struct row *r, char *buf, size_t len);

/* compare_out.c: the verdict counts, the table on stdout, JUnit XML and
 * OpenMetrics text (the writers return 0, or 2 after one line on stderr). */
void xr_cmp_count_verdicts(const struct compare *c, size_t count[NVERDICT]);
void xr_cmp_print_table(const struct compare *c);
int xr_cmp_write_junit(const struct compare *c, const char *path);
int xr_cmp_write_openmetrics(const struct compare *c, const char *path);

#endif
