/* fiojson.h - what xdreport and xdtune both read from fio's JSON output
 * (--output-format=json or json+, fio 3.x), in one place so that the two
 * tools cannot disagree about a figure. Both link common/fiojson.c.
 *
 * fio's keys: "fio version", "timestamp_ms", "jobs" (or "client_stats" in
 * client/server mode); per job "jobname", "error" and per direction
 * ("read", "write", "trim") "iops", "total_ios", "clat_ns" and, with
 * lat_percentiles=1, "lat_ns" with percentiles: {"min", "max", "mean",
 * "percentile", "bins" (json+)}.
 */
#ifndef XD_COMMON_FIOJSON_H
#define XD_COMMON_FIOJSON_H

#include <cjson/cJSON.h>

/* The number at key, or dflt when it is absent or not a number. fio prints
 * a few figures as strings, and 3.x some large ones too: a string that
 * holds a number, and nothing else, counts. (xdreport reads xdevice's stats
 * with it too.) */
double fiojson_num(const cJSON *obj, const char *key, double dflt);
/* The string at key, "" when absent or not a string. */
const char *fiojson_str(const cJSON *obj, const char *key);
/* The array of jobs: "jobs", or "client_stats" in client/server mode (whose
 * "All clients" entry sums the hosts'); NULL when neither is there. */
const cJSON *fiojson_jobs(const cJSON *root);
/* The latency a direction's figures come from, the one place that choice
 * is made: "lat_ns" (total latency, slat + clat) when the job set
 * lat_percentiles=1 and fio so gave it percentiles, else "clat_ns"
 * (completion latency). NULL when the direction has neither. */
const cJSON *fiojson_latency(const cJSON *dir);
/* A job's figures where fio wrote them once for all directions:
 * unified_rw_reporting=1 (or =mixed) gives a job "mixed" and no "read",
 * "write" or "trim", so "mixed" is the only place its I/O is. NULL for any
 * other job, "both" included (there "mixed" repeats the sum of the three,
 * and counting it too would count every I/O twice). */
const cJSON *fiojson_mixed(const cJSON *job);
/* fio with --status-interval writes one document per interval into one
 * output; the last one that parses is the run's result. NULL when none does. */
cJSON *fiojson_last_document(const char *text);

/* fio --client's output also holds what its server said, one line each,
 * "<name> text", before fio's JSON; the xdevice engine sends its stats
 * document (xd_stats) that way as "<name> xdevice-stats: {...}", once per
 * job, each as it stood after that job. The one with the most jobs (the
 * run's whole document; the last of equals), malloc'd, or NULL when the
 * text has none. fiojson_last_document skips these lines. */
#define FIOJSON_STATS_TAG "xdevice-stats: "
char *fiojson_server_stats(const char *text);

/* One client's output may hold several servers' lines (fio --client=A
 * --client=B): each server's document, the one with the most jobs among
 * the lines of its name and run id (servers on one machine share a name).
 * name: what fio's client put between "<" and ">"; both malloc'd. */
struct fiojson_server_doc {
    char *name, *doc;
};
/* Every server's document in text, in the order of their first lines, into
 * *docs (malloc'd; fiojson_server_docs_free): their number. */
size_t fiojson_server_docs(const char *text, struct fiojson_server_doc **docs);
void fiojson_server_docs_free(struct fiojson_server_doc *docs, size_t n);

#endif
