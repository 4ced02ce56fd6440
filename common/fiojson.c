/* fiojson.c - what xdreport and xdtune both read from fio's JSON output:
 * see fiojson.h. */
#include "fiojson.h"

#include <stdlib.h>
#include <string.h>

double fiojson_num(const cJSON *obj, const char *key, double dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(it))
        return it->valuedouble;
    if (cJSON_IsString(it) && it->valuestring && *it->valuestring) {
        char *end;
        double v = strtod(it->valuestring, &end);
        if (*end == '\0')
            return v;
    }
    return dflt;
}

const char *fiojson_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) && it->valuestring ? it->valuestring : "";
}

const cJSON *fiojson_jobs(const cJSON *root)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs");
    return jobs ? jobs : cJSON_GetObjectItemCaseSensitive(root, "client_stats");
}

const cJSON *fiojson_latency(const cJSON *dir)
{
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(dir, "lat_ns");
    if (cJSON_GetObjectItemCaseSensitive(lat, "percentile"))
        return lat;
    return cJSON_GetObjectItemCaseSensitive(dir, "clat_ns");
}

const cJSON *fiojson_mixed(const cJSON *job)
{
    const cJSON *mixed = cJSON_GetObjectItemCaseSensitive(job, "mixed");
    if (!cJSON_IsObject(mixed) || cJSON_GetObjectItemCaseSensitive(job, "read") ||
        cJSON_GetObjectItemCaseSensitive(job, "write"))
        return NULL;
    return mixed;
}

/* p at a '{' that starts a stats line's document, not fio's. */
static int is_stats_line(const char *text, const char *p)
{
    size_t n = strlen(FIOJSON_STATS_TAG);
    return (size_t)(p - text) >= n && !strncmp(p - n, FIOJSON_STATS_TAG, n);
}

cJSON *fiojson_last_document(const char *text)
{
    cJSON *doc = NULL;
    const char *p = strchr(text, '{'), *end = NULL;
    while (p) {
        if (is_stats_line(text, p)) {
            const char *nl = strchr(p, '\n');
            p = nl ? strchr(nl, '{') : NULL;
            continue;
        }
        cJSON *next = cJSON_ParseWithOpts(p, &end, 0);
        if (!next)
            break;
        cJSON_Delete(doc);
        doc = next;
        p = strchr(end, '{');
    }
    return doc;
}

/* The document of a server's stats line, as a string and parsed, and the
 * server's name; NULL when the line at p is not a server's or holds no
 * document with "jobs" (what fio's own text can never be). */
static cJSON *server_line(const char *text, const char *p, char **doc, char **name)
{
    const char *line = p;
    while (line > text && line[-1] != '\n')
        line--;
    const char *close = strchr(line, '>');
    if (*line != '<' || !close || close > p)
        return NULL;
    const char *start = p + strlen(FIOJSON_STATS_TAG), *nl = strchr(start, '\n');
    *doc = strndup(start, nl ? (size_t)(nl - start) : strlen(start));
    cJSON *root = *doc ? cJSON_Parse(*doc) : NULL;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "jobs"))) {
        cJSON_Delete(root);
        free(*doc);
        return NULL;
    }
    *name = strndup(line + 1, (size_t)(close - line - 1));
    return root;
}

static const char *run_id_of(const cJSON *root)
{
    return fiojson_str(cJSON_GetObjectItemCaseSensitive(root, "xdevice"), "run_id");
}

/* Keep doc as server (name, run id)'s, unless it has one of more jobs. */
static size_t keep_server_doc(struct fiojson_server_doc **docs, char **ids, double *jobs,
                              size_t n, char *name, char *doc, const cJSON *root)
{
    double njobs = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "jobs"));
    size_t i = 0;
    while (i < n && (strcmp((*docs)[i].name, name) || strcmp(ids[i], run_id_of(root))))
        i++;
    if (i < n && njobs < jobs[i]) {
        free(name);
        free(doc);
        return n;
    }
    if (i < n) {
        free((*docs)[i].name);
        free((*docs)[i].doc);
    } else {
        ids[i] = strdup(run_id_of(root));
    }
    (*docs)[i] = (struct fiojson_server_doc){.name = name, .doc = doc};
    jobs[i] = njobs;
    return i < n ? n : n + 1;
}

size_t fiojson_server_docs(const char *text, struct fiojson_server_doc **docs)
{
    size_t n = 0, cap = 0;
    char **ids = NULL;
    double *jobs = NULL;
    *docs = NULL;
    for (const char *p = strstr(text, FIOJSON_STATS_TAG); p; p = strstr(p + 1, FIOJSON_STATS_TAG)) {
        char *doc, *name;
        cJSON *root = server_line(text, p, &doc, &name);
        if (!root)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            *docs = realloc(*docs, cap * sizeof **docs);
            ids = realloc(ids, cap * sizeof *ids);
            jobs = realloc(jobs, cap * sizeof *jobs);
            if (!*docs || !ids || !jobs)
                abort(); /* as cJSON's own allocations: nothing to report with */
        }
        n = keep_server_doc(docs, ids, jobs, n, name, doc, root);
        cJSON_Delete(root);
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(jobs);
    return n;
}

void fiojson_server_docs_free(struct fiojson_server_doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(docs[i].name);
        free(docs[i].doc);
    }
    free(docs);
}

char *fiojson_server_stats(const char *text)
{
    char *best = NULL;
    double most = -1;
    for (const char *p = strstr(text, FIOJSON_STATS_TAG); p; p = strstr(p + 1, FIOJSON_STATS_TAG)) {
        char *doc, *name;
        cJSON *root = server_line(text, p, &doc, &name);
        if (!root)
            continue;
        double n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "jobs"));
        cJSON_Delete(root);
        free(name);
        if (n >= most) {
            free(best);
            best = doc;
            most = n;
        } else {
            free(doc);
        }
    }
    return best;
}
