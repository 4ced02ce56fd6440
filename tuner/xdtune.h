/* xdtune.h - the tuner's private interfaces: the parameter space, one trial
 * (candidate config + fio run + figures), the objective, the model and the
 * JSON history. One concern per file; xdtune.c is only the command line.
 */
#ifndef XDTUNE_H
#define XDTUNE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "xdevice.h"

#define XT_MAX_DIMS 32
#define XT_MAX_VALS 64

/* Which schema keys the tuner may change, and how: the library's tunable
 * table (xd_tunable_*, XD_TUNABLES in config_schema.h), the only one. */

enum xt_kind { XT_NUM, XT_CHOICE };

/* --- space.c: the discrete search space ------------------------------------- */

struct xt_dim {
    char key[64];
    enum xt_kind kind;
    unsigned nvals;
    char *vals[XT_MAX_VALS];  /* each value as the INI text that sets it */
    int live;
};

struct xt_space {
    struct xt_dim dim[XT_MAX_DIMS];
    unsigned n;
};

struct xt_point {
    unsigned idx[XT_MAX_DIMS];
};

/* The default space: every tunable key that applies to the start config's
 * storage type and is built (not pending). */
int xt_space_default(struct xt_space *s, const struct xd_config *start, char *err, size_t errlen);
/* The space a space file describes (see README "Tuning"). -EINVAL with one
 * line naming file:line, key, value and what is allowed. */
int xt_space_load(struct xt_space *s, const char *path, char *err, size_t errlen);
/* -EINVAL when no dimension has two values or more. */
int xt_space_check_nonempty(const struct xt_space *s, const char *what, char *err, size_t errlen);
void xt_space_free(struct xt_space *s);
/* A line of a space or hosts file read as the project's INI reader reads a
 * config (core/config.c): without a UTF-8 byte order mark on line 1, a ';'
 * comment at its start or after a blank, and blanks, CR and LF around it.
 * Cuts line in place; returns where its text starts. */
char *xt_line_text(char *line, unsigned lineno);
double xt_space_size(const struct xt_space *s);       /* number of points */
/* The point nearest to cfg's values (dims whose value is not on the grid
 * take the nearest numeric value or the first choice). */
void xt_space_snap(const struct xt_space *s, const struct xd_config *cfg, struct xt_point *p);
/* cfg with p's values set; -EINVAL (err) when the schema refuses one. */
int xt_space_apply(const struct xt_space *s, const struct xt_point *p, struct xd_config *cfg,
                   char *err, size_t errlen);
/* Point i (0 <= i < size) in mixed-radix order, for the grid and sampling. */
void xt_space_point(const struct xt_space *s, double i, struct xt_point *p);
int xt_point_equal(const struct xt_space *s, const struct xt_point *a, const struct xt_point *b);
/* Columns of the encoding: numeric dims one (ordinal in [0,1]), choices one-hot. */
unsigned xt_space_width(const struct xt_space *s);
void xt_space_encode(const struct xt_space *s, const struct xt_point *p, double *x);
/* bytes as the schema writes a size ("8m", "1536k"). Returns buf. */
const char *xt_size_text(double bytes, char *buf, size_t len);
/* "key=value key=value" of p, malloc'd. */
char *xt_point_text(const struct xt_space *s, const struct xt_point *p);

/* --- trial.c: one fio run of one candidate ---------------------------------- */

struct xt_figures {
    double iops;          /* all directions, all jobs */
    double lat_us;        /* mean total latency (fio's lat), weighted by ios */
    double p99_us;        /* worst job/direction's 99th percentile total latency */
    double write_lat_us;  /* mean write latency (0: no writes) */
    double cache_hit;     /* xdevice's cache hit ratio, -1 when there is no cache */
    double compress_ratio;/* compressed type's logical/stored, -1 when not compressed */
    double seconds;       /* wall time of the run */
};

struct xt_job {
    char *path;
    char **lines;         /* the job file, includes expanded, without
                           * xd_config/xd_stats/xd_KEY of the space */
    unsigned char *options_after; /* 1: line i ends a job section running xdevice */
    size_t nlines;
    char **xd_jobs;       /* names of the job sections running xdevice */
    size_t nxd_jobs;
    int random_access;    /* rw=rand* somewhere */
    int sequential;       /* rw=read|write|rw somewhere */
    int writes;
    int iodepth;          /* largest iodepth= (1 when none) */
};

/* --- jobfile.c: the user's job and the trial's copy ------------------------- */

/* Read the job as fio does (include lines expanded); at least one job
 * section must run the xdevice engine. -EINVAL with one line in err. */
int xt_job_load(struct xt_job *job, const char *path, const struct xt_space *s, char *err,
                size_t errlen);
/* The same from fio's command-line form (xdtune search ... -- --name=J
 * --ioengine=... ...). */
int xt_job_load_args(struct xt_job *job, int argc, char *const *argv, const struct xt_space *s,
                     char *err, size_t errlen);
void xt_job_free(struct xt_job *job);
/* Whether the job section name runs xdevice. */
int xt_job_runs_xdevice(const struct xt_job *job, const char *name);
/* The copy at path: xd_config=ini, xd_stats=stats and lat_percentiles=1 at
 * the end of every job section running xdevice. 0, or -1 with err. */
int xt_job_write(const struct xt_job *job, const char *path, const char *ini, const char *stats,
                 char *err, size_t errlen);
/* Run fio on job with config ini_path, in two steps so that trials on
 * several hosts run at once: start writes the job copy and starts fio (on
 * host, a fio server in --client syntax, or locally when NULL), its files
 * prefix.{fio,json,stats.json,err}; finish waits for it (timeout_s counted
 * from the start) and reads the figures: 0, or -1 with fio's error line. */
struct xt_run {
    pid_t pid;
    double t0;
    const char *host;
    const struct xt_job *job; /* whose xdevice sections count (xt_figures_parse) */
    char prefix[4200], jobpath[4400], out[4400], stats[4400], errpath[4400];
};
int xt_trial_start(const struct xt_job *job, const char *ini_path, const char *prefix,
                   const char *host, struct xt_run *run, char *err, size_t errlen);
int xt_trial_finish(struct xt_run *run, double timeout_s, struct xt_figures *fig, char *err,
                    size_t errlen);
/* fio's JSON output (the last document in text) and the xd_stats document
 * (may be NULL) into figures, counting the jobs that run xdevice (job NULL:
 * all); -1 with a line in err when text is not fio JSON
 * or a job reports an error. */
int xt_figures_parse(const char *fio_json, const char *stats_json, const struct xt_job *job,
                     struct xt_figures *fig, char *err, size_t errlen);
/* Write text to path atomically (temp file, fsync, rename). */
int xt_write_atomic(const char *path, const char *text, char *err, size_t errlen);
/* Whether xt_write_atomic may replace what is at path: its directory passes
 * the owner rule and the name holds nothing or a regular file of the
 * caller's or root's (xd_replace_check). For a file read before it is
 * rewritten, so that another user's file or link there is refused before
 * it is read. 0, or -errno with one line in err. */
int xt_replace_check(const char *path, char *err, size_t errlen);
/* A fresh file at path (whatever was at the name is removed, never
 * followed), in a checked directory. Returns the fd or -errno. */
int xt_create(const char *path, char *err, size_t errlen);
/* The whole file, NUL-terminated, malloc'd; NULL with errno (EISDIR for a
 * directory) when it cannot be read. */
char *xt_read_file(const char *path, size_t *len);
/* Whether f is open on a directory (fopen takes one for reading). */
int xt_is_directory(FILE *f);

/* --- hosts.c: fio servers (xdtune search --hosts) -------------------------------- */

#define XT_MAX_HOSTS 64

struct xt_hosts {
    unsigned n;
    char *name[XT_MAX_HOSTS];  /* as fio's --client takes it: host[,port], ip6:addr[,port], sock:path */
};

/* One server per line; blank lines, lines starting with # and ; comments
 * are skipped (xt_line_text).
 * -EINVAL with one line naming file:line, the bad value and what is allowed. */
int xt_hosts_load(struct xt_hosts *h, const char *path, char *err, size_t errlen);
void xt_hosts_free(struct xt_hosts *h);
/* The job's ioengine=external:PATH made absolute (a server resolves a
 * relative path against its own directory); -EINVAL when the engine is not
 * a file here. */
int xt_hosts_job_engine(struct xt_job *job, char *err, size_t errlen);
/* After a failed run on host: the server's own complaint from the client's
 * output (lines "<name> fio: ..." before the JSON) replaces err when there
 * is one; a server that cannot load the engine is named as such. */
void xt_host_error(const char *host, const char *output, char *err, size_t errlen);
/* f, measured on a host whose reference run gave ref, rescaled to the first
 * host's reference ref0: each speed figure by its own ratio of references;
 * ratios (cache hits, compression) are left as measured. */
void xt_hosts_normalise(const struct xt_figures *ref0, const struct xt_figures *ref,
                        struct xt_figures *f);

/* --- score.c: the objective --------------------------------------------------- */

struct xt_goal {
    double iops, lat_us, p99_us, cache_hit;  /* 0: no target */
    int minimize_p99;
};

/* Sum of the relative shortfalls against every target; 0 when all are met. */
double xt_gap(const struct xt_goal *g, const struct xt_figures *f);
/* The figure being optimised, higher is better (IOPS, or -p99). */
double xt_objective(const struct xt_goal *g, const struct xt_figures *f);
/* One number for the model: log objective, minus a penalty per unit gap. */
double xt_score(const struct xt_goal *g, const struct xt_figures *f);
/* <0 when a is better than b: targets met first, then a smaller gap, then the objective. */
int xt_compare(const struct xt_goal *g, const struct xt_figures *a, const struct xt_figures *b);
/* "iops 1234 short of 5000 (-75%), p99 3000 us over 2000 us (+50%)", malloc'd. */
char *xt_gap_text(const struct xt_goal *g, const struct xt_figures *f);
/* Only the targets f misses, as xt_gap_text words them; malloc'd, "" when
 * every target is met. */
char *xt_missed_text(const struct xt_goal *g, const struct xt_figures *f);
int xt_goal_any(const struct xt_goal *g);

/* --- gp.c: Gaussian-process regression and expected improvement ---------------- */

struct xt_gp {
    unsigned n, d;
    double *X;            /* n x d */
    double *L;            /* Cholesky factor of K + noise I */
    double *alpha;        /* (K + noise I)^-1 (y - mean) / scale */
    double ymean, yscale;
    double length, noise; /* chosen by marginal likelihood */
};

/* Fit a Matern-5/2 GP with a white-noise term; the length scale and noise
 * are chosen from a small grid by log marginal likelihood. 0 or -ENOMEM. */
int xt_gp_fit(struct xt_gp *gp, const double *X, const double *y, unsigned n, unsigned d);
void xt_gp_predict(const struct xt_gp *gp, const double *x, double *mean, double *sd);
double xt_gp_ei(double mean, double sd, double best, double xi);
void xt_gp_free(struct xt_gp *gp);

/* --- warmstart.c: first candidates from rules ---------------------------------- */

struct xt_rule_pick {
    char rule[96];        /* the rule and what it changed: "random access -> larger cache" */
    struct xt_point p;
};

/* Candidates (at most max) from what the job and the first trial show. */
unsigned xt_warmstart(const struct xt_space *s, const struct xt_job *job,
                      const struct xt_point *start, const struct xt_figures *first,
                      const struct xt_goal *g, struct xt_rule_pick *out, unsigned max);

/* --- verdict.c: what the finalists' runs can say ----------------------------- */

#define XT_MAX_MEAS 16

struct xt_finalist {
    const char *name;            /* "key=value ..." */
    double values[XT_MAX_MEAS];  /* the objective's figure per run (IOPS, or p99 us) */
    unsigned n;
    double median;
    /* Where it stands against the targets, which rank before the objective
     * (xt_compare); all 0/NULL when no target is given. */
    double gap;                  /* xt_gap of its median figures: 0 meets every target */
    unsigned met_runs;           /* how many of its runs met every target */
    const char *missed;          /* the targets its median figures miss (xt_missed_text) */
};

enum xt_verdict_kind {
    XT_VERDICT_CLEAR,
    XT_VERDICT_TIED,
    XT_VERDICT_SOLE,
    XT_VERDICT_NOISE_UNKNOWN,
    XT_VERDICT_TARGETS,
};

/* The verdict on finalist w among n, w being the best by xt_compare. The
 * others that stand as w does against the targets (the same gap: all met,
 * usually) are judged on the objective: w is clear only when every run of
 * w beat every run of them; tied when the runs of one overlap w's (the
 * tied named with their medians, ranges and the spread of the medians).
 * The others are beaten on the targets, each named with its figure (better
 * or worse than w's, as measured) and the targets it misses; when every
 * other is, the verdict is won on the targets. Noise unknown when w ran
 * once; sole with one finalist. text: lines starting "verdict:", malloc'd. */
enum xt_verdict_kind xt_verdict(const struct xt_finalist *fin, unsigned n, unsigned w,
                                int higher_better, const char *metric, char **text);
const char *xt_verdict_name(enum xt_verdict_kind k);

/* --- history.c: the JSON history ---------------------------------------------- */

struct xt_history;
struct xt_history *xt_history_new(const char *mode, const char *job, const char *config);
/* The history at path to append to (the daemon's), a new one when there
 * is no file; NULL with a line in err when the name holds what xdtune may
 * not replace (xt_replace_check: a link, another user's file, a directory)
 * or the file is not readable or not an xdtune history of mode. */
struct xt_history *xt_history_open(const char *path, const char *mode, const char *config,
                                   char *err, size_t errlen);
void xt_history_set(struct xt_history *h, const char *key, const char *value);
void xt_history_set_number(struct xt_history *h, const char *key, double value);
/* One trial: its config (the space's keys), figures, score, failure. Returns its index. */
void xt_history_trial(struct xt_history *h, unsigned n, const char *phase, const char *ini,
                      const struct xt_space *s, const struct xt_point *p,
                      const struct xt_figures *f, double score, double best_objective,
                      const char *error);
/* One changed parameter: time, key, old, new and the measured effect (NAN: not yet). */
void xt_history_change(struct xt_history *h, unsigned trial, const char *key, const char *old,
                       const char *new_value, const char *metric, double before, double after);
/* The measured effect of the last change, once the next interval shows it;
 * applied: whether the engine's records show it running (-1: unknown). */
void xt_history_effect(struct xt_history *h, double after, int applied);
/* The winner: its ini, one-line summary, its config and median figures over
 * all its measurements, with the objective's spread (max-min over median). */
void xt_history_best(struct xt_history *h, const char *ini, const char *summary, int met,
                     const struct xt_space *s, const struct xt_point *p,
                     const struct xt_figures *median, double objective, double spread_pct,
                     unsigned measurements);
/* What the last trial's best_so_far is: of = "search" (the best record of
 * the search, a single run each) or "finalists" (the best finalist's
 * median, once they are measured again); runs: how many runs it stands on. */
void xt_history_trial_best(struct xt_history *h, const char *of, unsigned runs);
/* The last trial's host and its figures rescaled by the host's reference
 * (xt_hosts_normalise; NULL when it failed). */
void xt_history_trial_host(struct xt_history *h, const char *host, const struct xt_figures *norm);
/* The verdict on the winner (after xt_history_best): its kind, its text and
 * every finalist's runs. */
void xt_history_verdict(struct xt_history *h, const char *kind, const char *text,
                        const struct xt_finalist *fin, unsigned n, unsigned winner);
int xt_history_write(struct xt_history *h, const char *path, char *err, size_t errlen);
void xt_history_free(struct xt_history *h);

/* --- search.c and daemon.c ------------------------------------------------------ */

enum xt_method { XT_METHOD_GP, XT_METHOD_RANDOM, XT_METHOD_GRID };

struct xt_search_opts {
    const char *job, *config, *out, *space;
    int job_argc;         /* a job in fio's command-line form (job_argv non-NULL) */
    char *const *job_argv;
    unsigned budget;
    unsigned repeats;     /* extra measurements of each finalist */
    unsigned finalists;
    unsigned long seed;
    enum xt_method method;
    double trial_timeout;
    struct xt_goal goal;
    const char *xdreport; /* path of xdreport for the chart; NULL: next to xdtune */
    const char *hosts;    /* --hosts FILE: trials on these fio servers, NULL: locally */
    int quiet;
};

int xt_search(const struct xt_search_opts *o);

struct xt_daemon_opts {
    const char *config, *fio_status, *stats, *history;
    double interval;      /* 0: the config's tuning_interval_sec */
    unsigned cycles;      /* 0: until fio stops writing its status */
    struct xt_goal goal;
};

int xt_daemon(const struct xt_daemon_opts *o);

/* Save cfg to path with header comments, atomically (the seam for the
 * library's xd_config_save). */
int xt_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen);

#endif
