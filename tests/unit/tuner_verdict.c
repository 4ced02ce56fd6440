/* tuner_verdict.c - what xdtune may claim about its winner: clear only when
 * every run of the winner beat every run of the others, a tie named with
 * the tied finalists and the spread of their medians, never a claim when
 * the winner ran once; sizes print as the schema writes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "xdtune.h"

static struct xt_finalist finalist(const char *name, double median, double a, double b, double c)
{
    struct xt_finalist f = {.name = name, .n = 3, .median = median};
    f.values[0] = a;
    f.values[1] = b;
    f.values[2] = c;
    return f;
}

static int never_production(const char *text)
{
    return !strstr(text, "production") && !strstr(text, "PRODUCTION");
}

static void test_tie(void)
{
    struct xt_finalist fin[3] = {
        finalist("async=io_uring cache_size=8m", 1000, 900, 1000, 1100),
        finalist("async=sync cache_size=8m", 950, 800, 950, 920), /* overlaps 900..1100 */
        finalist("async=sync cache_size=1m", 500, 480, 500, 520), /* clearly behind */
    };
    char *text;
    CHECK(xt_verdict(fin, 3, 0, 1, "IOPS", &text) == XT_VERDICT_TIED);
    CHECK_MSG(text && strstr(text, "TIED") && strstr(text, "async=sync cache_size=8m") &&
                  strstr(text, "median 950 (800..950 over 3 runs)") && strstr(text, "spread 5.0%"),
              "%s", text);
    CHECK_MSG(!strstr(text, "cache_size=1m"), "%s", text); /* only the tied are named */
    CHECK(never_production(text));
    free(text);
}

static void test_clear(void)
{
    struct xt_finalist fin[2] = {
        finalist("a=1", 1000, 950, 1000, 1050),
        finalist("a=2", 800, 780, 800, 940), /* best run below the winner's worst */
    };
    char *text;
    CHECK(xt_verdict(fin, 2, 0, 1, "IOPS", &text) == XT_VERDICT_CLEAR);
    CHECK_MSG(text && strstr(text, "clear winner") && strstr(text, "20.0% lower") &&
                  strstr(text, "runner-up: a=2"),
              "%s", text);
    free(text);
    /* p99, lower is better: the same ranges judged the other way */
    struct xt_finalist lat[2] = {
        finalist("a=1", 100, 90, 100, 110),
        finalist("a=2", 200, 150, 200, 210),
    };
    CHECK(xt_verdict(lat, 2, 0, 0, "p99 us", &text) == XT_VERDICT_CLEAR);
    CHECK_MSG(strstr(text, "100.0% higher"), "%s", text);
    free(text);
}

static void test_no_evidence(void)
{
    struct xt_finalist one[2] = {{.name = "a=1", .n = 1, .median = 1000, .values = {1000}},
                                 {.name = "a=2", .n = 1, .median = 10, .values = {10}}};
    char *text;
    CHECK(xt_verdict(one, 2, 0, 1, "IOPS", &text) == XT_VERDICT_NOISE_UNKNOWN);
    CHECK_MSG(strstr(text, "noise unknown") && never_production(text), "%s", text);
    free(text);
    struct xt_finalist sole = finalist("a=1", 1000, 900, 1000, 1100);
    CHECK(xt_verdict(&sole, 1, 0, 1, "IOPS", &text) == XT_VERDICT_SOLE);
    CHECK_MSG(strstr(text, "--finalists 1") && never_production(text), "%s", text);
    free(text);
}

static void test_size_text(void)
{
    char buf[32];
    CHECK(!strcmp(xt_size_text(8 << 20, buf, sizeof(buf)), "8m"));
    CHECK(!strcmp(xt_size_text(1536 << 10, buf, sizeof(buf)), "1536k"));
    CHECK(!strcmp(xt_size_text(4097, buf, sizeof(buf)), "4097"));
}

int main(void)
{
    test_tie();
    test_clear();
    test_no_evidence();
    test_size_text();
    return check_result();
}
