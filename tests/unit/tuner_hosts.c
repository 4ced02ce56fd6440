/* tuner_hosts.c - xdtune --hosts without servers: a server's stats line and
 * its complaint read from a fio client's output (the document with the most
 * jobs wins, lines not from a server are ignored, fio's JSON reader skips
 * them), and the per-host rescaling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xdtune.h"
#include "../../common/fiojson.h"

/* A client's output as fio 3.33 writes it: the server's lines, then the JSON. */
static const char output[] =
    "<lab1> note: both iodepth >= 1 and synchronous I/O engine are selected\n"
    "<lab1> xdevice-stats: {\"xdevice\":{\"run_id\":\"1-2\"},\"jobs\":[{\"name\":\"b\"}]}\n"
    "<lab1> xdevice-stats: {\"xdevice\":{\"run_id\":\"1-2\"},\"jobs\":[{\"name\":\"a\"},{\"name\":\"b\"}]}\n"
    "<lab1> xdevice-stats: {\"xdevice\":{\"run_id\":\"1-2\"},\"jobs\":[{\"name\":\"a\"}]}\n"
    "xdevice-stats: {\"xdevice\":{},\"jobs\":[{},{},{}]}\n" /* not a server's line */
    "\n"
    "{\n  \"fio version\" : \"fio-3.33\",\n  \"client_stats\" : [{\"jobname\" : \"a\"}]\n}\n";

static void test_server_stats(void)
{
    char *doc = fiojson_server_stats(output);
    CHECK(doc != NULL);
    CHECK_MSG(doc && strstr(doc, "[{\"name\":\"a\"},{\"name\":\"b\"}]"), "picked %s", doc);
    free(doc);
    CHECK(fiojson_server_stats("{\"jobs\":[]}\n") == NULL);
    CHECK(fiojson_server_stats("<h> xdevice-stats: {not json\n") == NULL);
    /* fio's own document is still the last one, not a stats line */
    cJSON *fio = fiojson_last_document(output);
    CHECK(fio && cJSON_GetObjectItemCaseSensitive(fio, "client_stats"));
    cJSON_Delete(fio);
    /* a failed run: only stats lines, no fio document */
    cJSON *none = fiojson_last_document("<h> xdevice-stats: {\"jobs\":[]}\n");
    CHECK(none == NULL);
    cJSON_Delete(none);
}

static void test_host_error(void)
{
    char err[512] = "fio's output is not its JSON (no \"jobs\")";
    xt_host_error("10.0.0.7,8765",
                  "<lab1> fio: invalid external ioengine path \"/opt/x.so\"\n"
                  "<lab1> fio: failed parsing ioengine=external:/opt/x.so\n"
                  "<lab1> fio: job global dropped\n", err, sizeof(err));
    CHECK_MSG(strstr(err, "10.0.0.7,8765 cannot load the xdevice engine") &&
              strstr(err, "/opt/x.so") && strstr(err, "same absolute path"), "%s", err);
    snprintf(err, sizeof(err), "unchanged");
    xt_host_error("h", "<lab1> xdevice: xd_config=/x.ini: cannot read the config file\n"
                  "<lab1> fio: failed parsing xd_config\n", err, sizeof(err));
    CHECK_MSG(strcmp(err, "fio server h: xdevice: xd_config=/x.ini: cannot read the config file") == 0,
              "%s", err);
    snprintf(err, sizeof(err), "unchanged");
    xt_host_error("h", "{ \"jobs\": [] }\n", err, sizeof(err));
    CHECK(strcmp(err, "unchanged") == 0);
}

static void test_normalise(void)
{
    struct xt_figures ref0 = { .iops = 1000, .lat_us = 100, .p99_us = 400, .write_lat_us = 0 };
    struct xt_figures ref = { .iops = 500, .lat_us = 200, .p99_us = 1000, .write_lat_us = 50 };
    struct xt_figures f = { .iops = 600, .lat_us = 150, .p99_us = 500, .write_lat_us = 70,
                            .cache_hit = 0.5, .compress_ratio = 2 };
    xt_hosts_normalise(&ref0, &ref, &f);
    CHECK(fabs(f.iops - 1200) < 1e-9);      /* a host half as fast: its IOPS count double */
    CHECK(fabs(f.lat_us - 75) < 1e-9);
    CHECK(fabs(f.p99_us - 200) < 1e-9);
    CHECK(fabs(f.write_lat_us - 70) < 1e-9); /* no reference figure: as measured */
    CHECK(f.cache_hit == 0.5 && f.compress_ratio == 2);
    struct xt_figures same = ref;
    xt_hosts_normalise(&ref0, &ref, &same); /* a host's own reference becomes the first's */
    CHECK(fabs(same.iops - ref0.iops) < 1e-9 && fabs(same.p99_us - ref0.p99_us) < 1e-9);
}

int main(void)
{
    test_server_stats();
    test_host_error();
    test_normalise();
    return check_result();
}
