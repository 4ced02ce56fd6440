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

cJSON *fiojson_last_document(const char *text)
{
    cJSON *doc = NULL;
    const char *p = strchr(text, '{'), *end = NULL;
    while (p) {
        cJSON *next = cJSON_ParseWithOpts(p, &end, 0);
        if (!next)
            break;
        cJSON_Delete(doc);
        doc = next;
        p = strchr(end, '{');
    }
    return doc;
}
