/* verdict.c - what the finalists' repeated runs can say about the winner.
 *
 * The winner has the best median, but a median of four one-second runs on a
 * shared machine moves by 10-50%: a finalist whose runs overlap the winner's
 * may be as good. So the claim is computed, not assumed: the winner is
 * "clear" only when every one of its runs beat every run of every other
 * finalist; any overlap is a tie, named with the tied finalists' figures
 * and the spread of their medians. One run of the winner, or one finalist,
 * says nothing about noise, and the verdict says that instead.
 *
 * Targets rank before the objective (xt_compare): a winner that meets p99
 * <= 100 us beats a finalist with twice its IOPS that misses it. Such a
 * finalist is no rival on IOPS, so it neither ties with the winner nor is
 * called its runner-up; it is named as beaten on the targets, with its
 * figure said better or worse than the winner's as measured, and the
 * targets it misses.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdtune.h"

static void range_of(const struct xt_finalist *f, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (unsigned i = 0; i < f->n; i++) {
        *lo = fmin(*lo, f->values[i]);
        *hi = fmax(*hi, f->values[i]);
    }
}

static int overlaps(const struct xt_finalist *a, const struct xt_finalist *b)
{
    double alo, ahi, blo, bhi;
    range_of(a, &alo, &ahi);
    range_of(b, &blo, &bhi);
    return alo <= bhi && blo <= ahi;
}

static void finalist_line(FILE *f, const char *tag, const struct xt_finalist *x, const char *metric,
                          int winner)
{
    double lo, hi;
    range_of(x, &lo, &hi);
    fprintf(f, "%s: %s: %s median %.0f (%.0f..%.0f over %u runs)%s\n", tag, x->name, metric,
            x->median, lo, hi, x->n, winner ? " <- this file" : "");
}

/* Judged against w on the objective: standing as w does against the
 * targets (the same gap, 0 when both meet them all), which xt_compare
 * ranks first. The others lost on the targets, whatever their figures. */
static int rival(const struct xt_finalist *fin, unsigned w, unsigned i)
{
    return i != w && fin[i].gap == fin[w].gap;
}

static unsigned count_rivals(const struct xt_finalist *fin, unsigned n, unsigned w, int tied_only)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        k += rival(fin, w, i) && (!tied_only || overlaps(&fin[w], &fin[i]));
    return k;
}

/* The runner-up: the rival with the best median (there is one). */
static unsigned runner_up(const struct xt_finalist *f, unsigned n, unsigned w, int higher_better)
{
    int r = -1;
    for (unsigned i = 0; i < n; i++)
        if (rival(f, w, i) && (r < 0 || (higher_better ? f[i].median > f[r].median
                                                        : f[i].median < f[r].median)))
            r = (int)i;
    return (unsigned)r;
}

/* How a's median compares with b's, in the metric's own sense: from the
 * figures, never from which one won. */
static const char *compared(double a, double b, int higher_better, const char *better,
                            const char *worse, const char *same)
{
    if (a == b)
        return same;
    return (a > b) == (higher_better != 0) ? better : worse;
}

/* " that also meet every target", or its like: which others (count of
 * them) a claim is about, when some lost on the targets. */
static const char *rivals_are(const struct xt_finalist *fin, unsigned n, unsigned w,
                              unsigned count)
{
    if (count_rivals(fin, n, w, 0) == n - 1)
        return "";
    if (fin[w].gap > 0)
        return count == 1 ? " that is as far from the targets" : " that are as far from the targets";
    return count == 1 ? " that also meets every target" : " that also meet every target";
}

/* One line per finalist that lost on the targets. */
static void beaten_lines(FILE *f, const struct xt_finalist *fin, unsigned n, unsigned w,
                         int higher_better, const char *metric)
{
    for (unsigned i = 0; i < n; i++) {
        if (i == w || rival(fin, w, i))
            continue;
        double lo, hi;
        range_of(&fin[i], &lo, &hi);
        const char *than = compared(fin[i].median, fin[w].median, higher_better, "better than",
                                    "worse than", "equal to");
        fprintf(f, "beaten on the targets: %s: %s median %.0f (%.0f..%.0f over %u runs), %s the winner's %.0f, %s %s: %s\n",
                fin[i].name, metric, fin[i].median, lo, hi, fin[i].n, than, fin[w].median,
                strcmp(than, "better than") == 0 ? "but" : "and",
                fin[w].gap == 0 ? "it misses" : "it is further from the targets",
                fin[i].missed && *fin[i].missed ? fin[i].missed : "a target");
    }
}

static enum xt_verdict_kind tied_verdict(FILE *f, const struct xt_finalist *fin, unsigned n,
                                         unsigned w, const char *metric, unsigned ntied)
{
    double lo = fin[w].median, hi = fin[w].median;
    for (unsigned i = 0; i < n; i++)
        if (i == w || (rival(fin, w, i) && overlaps(&fin[w], &fin[i]))) {
            lo = fmin(lo, fin[i].median);
            hi = fmax(hi, fin[i].median);
        }
    fprintf(f,
            "verdict: TIED, no clear winner: the runs of %u other finalist%s%s overlap this one's, so these runs cannot tell them apart (%s medians spread %.1f%%)\n",
            ntied, ntied == 1 ? "" : "s", rivals_are(fin, n, w, ntied), metric,
            fin[w].median ? 100.0 * (hi - lo) / fabs(fin[w].median) : 0);
    finalist_line(f, "tied", &fin[w], metric, 1);
    for (unsigned i = 0; i < n; i++)
        if (rival(fin, w, i) && overlaps(&fin[w], &fin[i]))
            finalist_line(f, "tied", &fin[i], metric, 0);
    fprintf(
        f,
        "choose among the tied on other grounds (memory, simplicity), or measure again with more --repeats\n");
    return XT_VERDICT_TIED;
}

static enum xt_verdict_kind clear_verdict(FILE *f, const struct xt_finalist *fin, unsigned n,
                                          unsigned w, int higher_better, const char *metric)
{
    unsigned r = runner_up(fin, n, w, higher_better), nrivals = count_rivals(fin, n, w, 0);
    fprintf(f,
            "verdict: clear winner: every one of its %u runs beat every run of the other %u finalist%s%s; the runner-up's %s median is %.1f%% %s\n",
            fin[w].n, nrivals, nrivals == 1 ? "" : "s", rivals_are(fin, n, w, nrivals), metric,
            fin[w].median ? 100.0 * fabs(fin[w].median - fin[r].median) / fabs(fin[w].median) : 0,
            compared(fin[r].median, fin[w].median, 1, "higher", "lower", "the same"));
    finalist_line(f, "winner", &fin[w], metric, 1);
    finalist_line(f, "runner-up", &fin[r], metric, 0);
    return XT_VERDICT_CLEAR;
}

/* No other finalist stands as w does: w won on the targets alone. */
static enum xt_verdict_kind targets_verdict(FILE *f, const struct xt_finalist *fin, unsigned n,
                                            unsigned w, const char *metric)
{
    if (fin[w].gap == 0)
        fprintf(f, "verdict: won on the targets: its median figures meet every target and those of the other %u finalist%s do not (%u of its %u runs met every target)\n",
                n - 1, n == 2 ? "" : "s", fin[w].met_runs, fin[w].n);
    else
        fprintf(f, "verdict: won on the targets: no finalist's median figures meet every target, and this one's come closest (it misses: %s)\n",
                fin[w].missed && *fin[w].missed ? fin[w].missed : "a target");
    finalist_line(f, "winner", &fin[w], metric, 1);
    return XT_VERDICT_TARGETS;
}

enum xt_verdict_kind xt_verdict(const struct xt_finalist *fin, unsigned n, unsigned w,
                                int higher_better, const char *metric, char **text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    enum xt_verdict_kind kind;
    if (!f) {
        *text = NULL;
        return XT_VERDICT_NOISE_UNKNOWN;
    }
    if (fin[w].n < 2) {
        fprintf(
            f,
            "verdict: noise unknown: the winner ran once (--repeats 0), so nothing says how far its figures move from run to run; measure again (--repeats 3) before relying on it\n");
        kind = XT_VERDICT_NOISE_UNKNOWN;
    } else if (n < 2) {
        fprintf(f, "verdict: best of the search, compared with no other finalist on repeated runs (--finalists 1)\n");
        finalist_line(f, "measured", &fin[w], metric, 1);
        kind = XT_VERDICT_SOLE;
    } else if (!count_rivals(fin, n, w, 0)) {
        kind = targets_verdict(f, fin, n, w, metric);
    } else if (count_rivals(fin, n, w, 1)) {
        kind = tied_verdict(f, fin, n, w, metric, count_rivals(fin, n, w, 1));
    } else {
        kind = clear_verdict(f, fin, n, w, higher_better, metric);
    }
    if (kind != XT_VERDICT_NOISE_UNKNOWN && kind != XT_VERDICT_SOLE)
        beaten_lines(f, fin, n, w, higher_better, metric);
    fclose(f);
    *text = buf;
    return kind;
}

const char *xt_verdict_name(enum xt_verdict_kind k)
{
    switch (k) {
    case XT_VERDICT_CLEAR:
        return "clear";
    case XT_VERDICT_TIED:
        return "tied";
    case XT_VERDICT_SOLE:
        return "sole finalist";
    case XT_VERDICT_TARGETS:
        return "won on targets";
    default:
        return "noise unknown";
    }
}
