/* tuner_figures.c - a trial's figures from fio's JSON whatever
 * unified_rw_reporting says: =1 (or =mixed) reports a job's I/O only as
 * "mixed", with no "read" or "write" (before, a search on such a job failed
 * every trial with "fio completed no I/O"); =both adds "mixed" beside them,
 * which must not be counted twice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xdtune.h"

/* One job's direction as fio 3.33 writes it, with lat_percentiles=1. */
#define DIR(iops, ios, mean_ns, p99_ns)                                                  \
    "{\"iops\": " #iops ", \"total_ios\": " #ios ", \"lat_ns\": {\"mean\": " #mean_ns     \
    ", \"percentile\": {\"99.000000\": " #p99_ns "}}}"

static const char mixed_only[] =
    "{\"fio version\": \"fio-3.33\", \"jobs\": [{\"jobname\": \"m\", \"error\": 0,"
    " \"mixed\": " DIR(3000, 3000, 20000, 90000) "}]}";

static const char both[] =
    "{\"fio version\": \"fio-3.33\", \"jobs\": [{\"jobname\": \"b\", \"error\": 0,"
    " \"read\": " DIR(1000, 1000, 10000, 50000) ","
    " \"write\": " DIR(2000, 2000, 40000, 80000) ","
    " \"trim\": " DIR(0, 0, 0, 0) ","
    " \"mixed\": " DIR(3000, 3000, 30000, 80000) "}]}";

static void test_mixed_only(void)
{
    struct xt_figures f;
    char err[256] = "";
    CHECK_MSG(xt_figures_parse(mixed_only, NULL, NULL, &f, err, sizeof err) == 0, "%s", err);
    CHECK(fabs(f.iops - 3000) < 1e-9);
    CHECK(fabs(f.lat_us - 20) < 1e-9 && fabs(f.p99_us - 90) < 1e-9);
    CHECK(f.write_lat_us == 0); /* writes cannot be told apart in "mixed" */
}

static void test_both_counted_once(void)
{
    struct xt_figures f;
    char err[256] = "";
    CHECK_MSG(xt_figures_parse(both, NULL, NULL, &f, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(fabs(f.iops - 3000) < 1e-9, "iops %f", f.iops);
    CHECK(fabs(f.lat_us - 30) < 1e-9 && fabs(f.write_lat_us - 40) < 1e-9);
}

int main(void)
{
    test_mixed_only();
    test_both_counted_once();
    return check_result();
}
