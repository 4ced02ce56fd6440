/* verdict.c - what the finalists' repeated runs can say about the winner.
 *
 * The winner has the best median, but a median of four one-second runs on a
 * shared machine moves by 10-50%: a finalist whose runs overlap the winner's
 * may be as good. So the claim is computed, not assumed: the winner is
 * "clear" only when every one of its runs beat every run of every other
 * finalist; any overlap is a tie, named with the tied finalists' figures
 * and the spread of their medians. One run of the winner, or one finalist,
 * says nothing about noise, and the verdict says that instead.
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

/* The runner-up: the other finalist with the best median. */
static unsigned runner_up(const struct xt_finalist *f, unsigned n, unsigned w, int higher_better)
{
    unsigned r = w == 0 ? 1 : 0;
    for (unsigned i = 0; i < n; i++)
        if (i != w && (higher_better ? f[i].median > f[r].median : f[i].median < f[r].median))
            r = i;
    return r;
}

static enum xt_verdict_kind tied_verdict(FILE *f, const struct xt_finalist *fin, unsigned n,
                                         unsigned w, const char *metric, unsigned ntied)
{
    double lo = fin[w].median, hi = fin[w].median;
    for (unsigned i = 0; i < n; i++)
        if (i == w || overlaps(&fin[w], &fin[i])) {
            lo = fmin(lo, fin[i].median);
            hi = fmax(hi, fin[i].median);
        }
    fprintf(f,
            "verdict: TIED, no clear winner: the runs of %u other finalist%s overlap this one's, so these runs cannot tell them apart (%s medians spread %.1f%%)\n",
            ntied, ntied == 1 ? "" : "s", metric,
            fin[w].median ? 100.0 * (hi - lo) / fabs(fin[w].median) : 0);
    finalist_line(f, "tied", &fin[w], metric, 1);
    for (unsigned i = 0; i < n; i++)
        if (i != w && overlaps(&fin[w], &fin[i]))
            finalist_line(f, "tied", &fin[i], metric, 0);
    fprintf(
        f,
        "choose among the tied on other grounds (memory, simplicity), or measure again with more --repeats\n");
    return XT_VERDICT_TIED;
}

enum xt_verdict_kind xt_verdict(const struct xt_finalist *fin, unsigned n, unsigned w,
                                int higher_better, const char *metric, char **text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    enum xt_verdict_kind kind;
    unsigned ntied = 0;
    for (unsigned i = 0; i < n; i++)
        ntied += i != w && overlaps(&fin[w], &fin[i]);
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
    } else if (ntied) {
        kind = tied_verdict(f, fin, n, w, metric, ntied);
    } else {
        unsigned r = runner_up(fin, n, w, higher_better);
        fprintf(f,
                "verdict: clear winner: every one of its %u runs beat every run of the other %u finalist%s; the runner-up's %s median is %.1f%% %s\n",
                fin[w].n, n - 1, n == 2 ? "" : "s", metric,
                fin[w].median ? 100.0 * fabs(fin[w].median - fin[r].median) / fabs(fin[w].median)
                              : 0,
                higher_better ? "lower" : "higher");
        finalist_line(f, "winner", &fin[w], metric, 1);
        finalist_line(f, "runner-up", &fin[r], metric, 0);
        kind = XT_VERDICT_CLEAR;
    }
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
    default:
        return "noise unknown";
    }
}
