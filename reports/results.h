/* results.h - fio and xdevice results as xdreport sees them.
 *
 * The loader (results.c) turns fio's JSON / json+ output (one document, a
 * --status-interval stream of documents, or client/server output with
 * "client_stats"), fio's logs and xdevice's stats JSON into these structs;
 * report and compare only read them.
 */
#ifndef XR_RESULTS_H
#define XR_RESULTS_H

#include <stddef.h>
#include <stdint.h>

/* XR_MIXED: a job run with unified_rw_reporting=1, whose I/O fio reports
 * only as "mixed" (fiojson_mixed); such a job has no other direction. */
enum xr_ddir { XR_READ, XR_WRITE, XR_TRIM, XR_MIXED, XR_NDIR };

/* Latency percentiles every report shows, in this order. */
#define XR_NPCT 6
extern const double xr_pct[XR_NPCT];      /* 50, 90, 99, 99.9, 99.99, 99.999 */
extern const char *const xr_pct_name[XR_NPCT]; /* "p50", ..., "p99.999" */
extern const char *const xr_ddir_name[XR_NDIR]; /* "read", "write", "trim", "mixed" */

/* One option or config setting, as text (fio gives every option as a string). */
struct xr_kv {
    char *key, *val;
};

struct xr_bin {          /* one json+ clat bin */
    uint64_t ns;         /* bucket midpoint in ns, as fio keys it */
    uint64_t count;
};

struct xr_dir {          /* one data direction of one job */
    uint64_t io_bytes, total_ios, runtime_ms;
    double iops, bw_bytes;          /* per second */
    /* Latency figures: fio's completion latency (clat), or its total latency
     * (submission to completion) when the job set lat_percentiles=1. Total
     * is the one to compare when an engine completes requests inside fio's
     * queue call, where clat spans only fio's own bookkeeping. */
    int total_lat;                  /* 1: the figures below are total latency */
    double clat_mean_ns, clat_min_ns, clat_max_ns;
    double clat_pct_ns[XR_NPCT];    /* NAN where fio did not report it */
    struct xr_bin *bins;            /* json+ only, else NULL */
    size_t nbins;
};

struct xr_job {
    char *name;          /* fio job name: the workload in comparisons */
    char *hostname;      /* client/server output, else NULL */
    int groupid, error;
    char *engine;        /* ioengine option as given */
    char *config;        /* "k=v k=v" of the options that tell configurations apart
                            (ioengine, xd_type, xd_async, bs, rw, iodepth, ...) */
    struct xr_dir dir[XR_NDIR];
    struct xr_kv *opts;  /* every option in effect: the document's "global options"
                            overlaid by the job's "job options", as fio printed them */
    size_t nopts;
};

struct xr_doc {          /* one fio JSON document */
    char *source;        /* file it came from (and ":N" for the N-th of a stream) */
    char *fio_version;
    int64_t timestamp;   /* fio's "timestamp", seconds */
    struct xr_job *jobs;
    size_t njobs;
    char *path;          /* the file alone, without ":N" */
    int64_t timestamp_ms; /* fio's "timestamp_ms"; 0 where absent (client/server) */
    unsigned stream_pos, stream_len; /* 0-based place in its file and the number of
                            documents read from that file; of a --status-interval
                            stream the last one is fio's final (cumulative) report */
};

/* xdevice's stats document (xd_stats=FILE), flattened to what reports show. */
struct xr_xdstats {
    char *source;
    char *type;                  /* storage type of the first job */
    double cache_hit_ratio;      /* NAN when absent */
    double compression_ratio;    /* NAN when absent */
    uint64_t logical_bytes, stored_bytes, allocated_bytes; /* 0 when absent */
    uint64_t tier_hot_reads, tier_cold_reads;
    double tier_promotions;      /* summed over jobs; NAN: no tier layer */
    double direct_alignment;     /* the direct driver's O_DIRECT alignment; NAN: absent */
    double read_p50_ns;          /* xdevice's own median read latency; NAN: no reads */
    char *version, *run_id;      /* "xdevice" header; "" when absent */
    char *job_names;             /* the fio jobs it covers, ", "-separated */
    size_t njobs;
    struct xr_kv *config;        /* effective config of the first job */
    size_t nconfig;
    char *host;                  /* the fio server it came back from (hosts.c), else NULL */
};

/* A time series from fio's logs (write_lat_log / iops / bw / hist). */
struct xr_series {
    char *source;
    char *kind;          /* "lat", "clat", "slat", "iops", "bw", "hist" */
    double *t_ms, *value;
    size_t n;
    char *name;          /* NAME of NAME_kind.N.log (fio's write_*_log value) */
    int jobnum;          /* N of NAME_kind.N.log; 0 without one (per_job_logs=0) */
    enum xr_ddir ddir;   /* a log mixing directions gives one series per direction */
    double *p99;         /* "hist" only, else NULL: per interval p99 in ns, while
                            value holds the p50; other kinds: value is in ns
                            (lat, clat, slat), I/Os per s (iops) or KiB/s (bw) */
};

/* Load one file of any kind above, detected by content. Appends to the
 * arrays (caller zero-initialises a struct xr_set). Returns 0, or -1 with
 * one line in err naming the file and the problem; what could be read
 * before a problem is kept (whole documents: a document that fails to parse
 * is dropped). err reads "xdreport: FILE: problem", e.g. "truncated JSON at
 * byte N", "JSON but not fio output ...", "line N: ..." for a log; a fio log
 * that is empty (fio writes those, e.g. the slat log of a sync engine) loads
 * nothing and is not an error. Out of memory exits (mem.h). */
struct xr_set {
    struct xr_doc *docs; size_t ndocs;
    struct xr_xdstats *stats; size_t nstats;
    struct xr_series *series; size_t nseries;
};
int xr_load(struct xr_set *set, const char *path, char *err, size_t errlen);
void xr_set_free(struct xr_set *set);

#endif
