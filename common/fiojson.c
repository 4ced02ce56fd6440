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

char *fiojson_server_stats(const char *text)
{
    char *best = NULL;
    double most = -1;
    for (const char *p = strstr(text, FIOJSON_STATS_TAG); p; p = strstr(p + 1, FIOJSON_STATS_TAG)) {
        /* only a server's line: "<name> " then the tag */
        const char *line = p;
        while (line > text && line[-1] != '\n')
            line--;
        if (*line != '<')
            continue;
        const char *doc = p + strlen(FIOJSON_STATS_TAG), *nl = strchr(doc, '\n');
        size_t len = nl ? (size_t)(nl - doc) : strlen(doc);
        char *copy = strndup(doc, len);
        cJSON *root = copy ? cJSON_Parse(copy) : NULL;
        const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs");
        double n = cJSON_IsArray(jobs) ? cJSON_GetArraySize(jobs) : -1;
        cJSON_Delete(root);
        if (n >= 0 && n >= most) {
            free(best);
            best = copy;
            most = n;
        } else {
            free(copy);
        }
    }
    return best;
}
