/* load.h - the parsers behind xr_load, private to the loader.
 *
 * results.c finds the documents in a file and hands each to the parser of
 * its kind; fiojson.c, xdstats.c and fiolog.c fill struct xr_set. Each
 * returns 0, or -1 with one line in err (without the "xdreport: FILE: "
 * prefix, which xr_load adds).
 */
#ifndef XR_LOAD_H
#define XR_LOAD_H

#include <cjson/cJSON.h>

#include "../common/fiojson.h"
#include "results.h"

/* The one JSON document filling buf[0..len) (white space around it
 * allowed), or NULL with why: "truncated JSON at byte N", "JSON nested
 * deeper than 1000 levels at byte N (line L)...", "invalid JSON at byte N
 * (line L)". For a file that is one document (convergence's history.json). */
cJSON *xr_json_parse(const char *buf, size_t len, char *why, size_t whylen);

/* fio's JSON output: one document, with "jobs" or "client_stats". */
int xr_fiojson_parse(struct xr_doc *doc, const cJSON *root, char *err, size_t errlen);

/* xdevice's stats document: {"xdevice": {...}, "jobs": [...], "aggregate": {...}}. */
int xr_xdstats_parse(struct xr_xdstats *st, const cJSON *root, char *err, size_t errlen);
/* Free what a stats document holds (not st itself). */
void xr_xdstats_free(struct xr_xdstats *st);

/* fio's text logs, NAME_{lat,clat,slat,iops,bw,clat_hist}[.N].log. */
int xr_fiolog_parse(struct xr_set *set, const char *path, const char *buf, size_t len,
                    char *err, size_t errlen);
/* 1 when the file name is one fio gives its logs. */
int xr_fiolog_named(const char *path);

/* Lookups that give a default instead of failing (fio leaves out what a run
 * did not measure): fiojson_num and fiojson_str, common/fiojson.h. */
/* Any scalar as text (strings as they are, numbers shortest, booleans). */
char *xr_json_text(const cJSON *item);
/* Every member of an object as struct xr_kv, appended. */
void xr_json_kv(const cJSON *obj, struct xr_kv **kv, size_t *n);

void xr_kv_free(struct xr_kv *kv, size_t n);

/* hosts.c: the stats documents fio servers sent back in the client's
 * output text (NUL-terminated), one per server, labelled with the host of
 * the fio documents loaded from index first on (one server) or with the
 * names the servers gave (several); 0 when there is none. */
int xr_hosts_load_stats(struct xr_set *set, const char *path, const char *text, size_t first,
                        char *err, size_t errlen);

#endif
