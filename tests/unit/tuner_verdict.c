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

/* Targets rank first (xt_compare): a winner that meets p99 <= 100 us beats a
 * finalist with twice its IOPS that misses it. The verdict says so, never
 * "clear" on IOPS, and never calls the faster finalist slower. */
static void test_won_on_targets(void)
{
    struct xt_finalist fin[2] = {
        finalist("async=sync", 1000, 990, 1000, 1010),    /* p99 90 us: meets */
        finalist("async=io_uring", 2000, 1990, 2000, 2010), /* p99 150 us: misses */
    };
    fin[0].met_runs = 3;
    fin[1].gap = 0.5;
    fin[1].missed = "p99 150.0 us against target 100.0 us (+50.0%)";
    char *text;
    enum xt_verdict_kind k = xt_verdict(fin, 2, 0, 1, "IOPS", &text);
    CHECK_MSG(k == XT_VERDICT_TARGETS, "%s: %s", xt_verdict_name(k), text);
    CHECK_MSG(text && strstr(text, "won on the targets") && !strstr(text, "clear") &&
                  !strstr(text, "lower") && strstr(text, "3 of its 3 runs"),
              "%s", text);
    CHECK_MSG(strstr(text, "beaten on the targets: async=io_uring: IOPS median 2000 (1990..2010 "
                           "over 3 runs), better than the winner's 1000, but it misses: p99 150.0"),
              "%s", text);
    free(text);

    /* no finalist meets the target: the winner comes closest, and one
     * with fewer IOPS that is further off is said to be worse, not faster */
    struct xt_finalist none[2] = {fin[1], fin[0]};
    none[0].gap = 0.2; /* the winner, 2000 IOPS, p99 120 us */
    none[0].missed = "p99 120.0 us against target 100.0 us (+20.0%)";
    none[1].gap = 0.5;
    none[1].missed = "p99 150.0 us against target 100.0 us (+50.0%)";
    CHECK(xt_verdict(none, 2, 0, 1, "IOPS", &text) == XT_VERDICT_TARGETS);
    CHECK_MSG(strstr(text, "no finalist's median figures meet every target") &&
                  strstr(text, "it misses: p99 120.0") &&
                  strstr(text, "median 1000 (990..1010 over 3 runs), worse than the winner's 2000, "
                               "and it is further from the targets: p99 150.0"),
              "%s", text);
    free(text);

    /* a third finalist that meets the target too is judged on IOPS: clear
     * against it, and the one that misses is still named for its target */
    struct xt_finalist three[3] = {fin[0], fin[1], finalist("async=libaio", 500, 480, 500, 520)};
    CHECK(xt_verdict(three, 3, 0, 1, "IOPS", &text) == XT_VERDICT_CLEAR);
    CHECK_MSG(strstr(text, "beat every run of the other 1 finalist that also meets every target") &&
                  strstr(text, "runner-up: async=libaio") && strstr(text, "50.0% lower") &&
                  strstr(text, "beaten on the targets: async=io_uring"),
              "%s", text);
    free(text);

    /* a tie is among the finalists judged on IOPS only: one that misses
     * the target is not tied, even where its runs overlap the winner's */
    three[1].values[0] = 1000;
    three[2] = finalist("async=libaio", 980, 950, 980, 1050);
    CHECK_MSG(xt_verdict(three, 3, 0, 1, "IOPS", &text) == XT_VERDICT_TIED, "%s", text);
    CHECK_MSG(strstr(text, "the runs of 1 other finalist that also meets every target overlap") &&
                  strstr(text, "tied: async=libaio") && !strstr(text, "tied: async=io_uring") &&
                  strstr(text, "beaten on the targets: async=io_uring"),
              "%s", text);
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
    test_won_on_targets();
    test_size_text();
    return check_result();
}
