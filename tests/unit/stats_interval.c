/* stats_interval.c - unit test of the periodic stats records: each record's
 * interval counts exactly the operations since the one before, totals keep
 * growing, seq counts records, and the record carries the config and the
 * layers' figures as they are after a reload. And xd_stats_publish's run
 * id: NULL crashed, a '/' left "<path>.d" behind, one longer than the
 * fragments' header keeps matched no fragment; each is one line now. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "xdevice.h"

static char err[XD_ERRLEN];

/* The number after the first "key": following the text after, or -1. */
static long long figure(const char *json, const char *after, const char *key)
{
    char needle[80];
    const char *p = after ? strstr(json, after) : json;
    snprintf(needle, sizeof(needle), "\"%s\":", key);
    p = p ? strstr(p, needle) : NULL;
    return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

static void io(struct xd_dev *dev, struct xd_file *file, int writes, int reads)
{
    static char buf[4096];
    for (int i = 0; i < writes; i++)
        CHECK(xd_write(dev, file, buf, sizeof(buf), (uint64_t)i * sizeof(buf)) == sizeof(buf));
    for (int i = 0; i < reads; i++)
        CHECK(xd_read(dev, file, buf, sizeof(buf), (uint64_t)i * sizeof(buf)) == sizeof(buf));
}

static void test_publish_run_id(struct xd_dev *dev, const char *dir)
{
    char doc[160], frags[170], long_id[80];
    struct stat st;
    snprintf(doc, sizeof(doc), "%s/stats.json", dir);
    snprintf(frags, sizeof(frags), "%s.d", doc);
    memset(long_id, 'r', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad[] = {NULL, "", "a/b", "a\nb", long_id, ".hidden" /* read as a temp file */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = xd_stats_publish(dev, doc, bad[i], 1, "unit", 0, 1, err, sizeof(err));
        CHECK_MSG(rc == -EINVAL && strstr(err, "run id") && !strchr(err, '\n'), "run id %zu: %d %s",
                  i, rc, err);
        CHECK_MSG(lstat(frags, &st) && lstat(doc, &st), "run id %zu: something was made", i);
    }
    CHECK_MSG(!xd_stats_publish(dev, doc, "run-1", 1, NULL, 0, 1, err, sizeof(err)), "%s", err);
    CHECK(!lstat(doc, &st) && lstat(frags, &st)); /* the one job of the run: fragments gone */
    unlink(doc);
}

/* xd_stats_start_run: the run's figures (xd_stats_json) leave out what came
 * before it; the periodic totals still count from open. */
static void test_start_run(struct xd_dev *dev, struct xd_file *file, struct xd_stats_mark *mark)
{
    char *before = xd_stats_json(dev);
    long long reads0 = figure(before, "\"read\":{", "ops");
    CHECK(!xd_stats_start_run(dev));
    io(dev, file, 3, 7);
    char *run = xd_stats_json(dev);
    char *rec = xd_stats_interval_json(dev, mark, "unit", 3);
    CHECK_MSG(reads0 >= 30 && figure(run, "\"read\":{", "ops") == 7 &&
                  figure(run, "\"write\":{", "ops") == 3,
              "since the run started: %s", run);
    CHECK_MSG(figure(run, "\"read\":{", "bytes") == 7 * 4096, "%s", run);
    CHECK_MSG(figure(strstr(rec, "\"total\""), "\"read\":{", "ops") == reads0 + 7,
              "periodic totals count from open: %s", rec);
    free(before);
    free(run);
    free(rec);
}

int main(void)
{
    char dir[] = "/tmp/xd-unit-interval-XXXXXX", path[128];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/data", dir);
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev;
    struct xd_file *file;
    CHECK_MSG(!xd_open(&dev, cfg, 1, err, sizeof(err)), "%s", err);
    CHECK_MSG(!xd_file_open(dev, path, XD_OPEN_CREATE, 1 << 20, &file, err, sizeof(err)), "%s", err);
    struct xd_stats_mark *mark = xd_stats_mark_new();

    io(dev, file, 40, 0);
    char *r0 = xd_stats_interval_json(dev, mark, "unit", 3);
    io(dev, file, 0, 25);
    usleep(20000);
    char *r1 = xd_stats_interval_json(dev, mark, "unit", 3);
    struct xd_config *next = xd_config_dup(cfg);
    CHECK(!xd_config_set(next, "read_ahead_kb", "2048", "test", err, sizeof(err)));
    CHECK(xd_reload(dev, next, err, sizeof(err)) == 1);
    io(dev, file, 5, 5);
    char *r2 = xd_stats_interval_json(dev, mark, "unit", 3);
    CHECK(r0 && r1 && r2);

    CHECK(figure(r0, NULL, "seq") == 0 && figure(r1, NULL, "seq") == 1 && figure(r2, NULL, "seq") == 2);
    CHECK(figure(r0, NULL, "jobnum") == 3 && strstr(r0, "\"job\":\"unit\""));
    CHECK(!strchr(r0, '\n'));
    /* interval: what happened since the record before */
    long long w0 = figure(strstr(r0, "\"interval\""), "\"write\":{", "ops");
    long long r1reads = figure(strstr(r1, "\"interval\""), "\"read\":{", "ops");
    long long w1 = figure(strstr(r1, "\"interval\""), "\"write\":{", "ops");
    long long r2reads = figure(strstr(r2, "\"interval\""), "\"read\":{", "ops");
    CHECK_MSG(w0 == 40 && r1reads == 25 && w1 == 0 && r2reads == 5, "%lld %lld %lld %lld", w0,
              r1reads, w1, r2reads);
    /* totals: everything since open */
    CHECK(figure(strstr(r2, "\"total\""), "\"write\":{", "ops") == 45);
    CHECK(figure(strstr(r2, "\"total\""), "\"read\":{", "ops") == 30);
    const char *secs = strstr(r1, "\"seconds\":");
    CHECK(secs && strtod(secs + 10, NULL) >= 0.015); /* the 20 ms sleep is inside it */
    CHECK(figure(r1, "\"interval\"", "iops") > 0);
    /* after the reload: the config and the driver show the new value */
    CHECK(figure(strstr(r1, "\"config\""), NULL, "read_ahead_kb") == 128);
    CHECK(figure(strstr(r2, "\"config\""), NULL, "read_ahead_kb") == 2048);
    CHECK(figure(strstr(r2, "\"layers\""), "\"file\"", "read_ahead_kb") == 2048);

    test_start_run(dev, file, mark);
    test_publish_run_id(dev, dir);
    free(r0);
    free(r1);
    free(r2);
    xd_config_free(next);
    xd_stats_mark_free(mark);
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
    unlink(path);
    rmdir(dir);
    return check_result();
}
