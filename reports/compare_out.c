/* compare_out.c - what `xdreport compare` writes: the table on stdout (with
 * the REGRESSION:/INCONCLUSIVE: lines and the too-few-runs warning), JUnit
 * XML and OpenMetrics text. The judging is in compare.c.
 */
#include "compare_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "outfile.h"
#include "pairing.h"
#include "stats.h"

/* --- output ------------------------------------------------------------------ */

/* Latency metrics are named for what was measured: clat_* or, for total
 * latency, lat_* ("clat_p99" without its "c"). */
static const char *metric_name(const struct row *r, char *buf, size_t len)
{
    const char *kind = kinds[r->kind].name;
    if (r->kind >= K_CLAT_MEAN && r->w->lat == LAT_TOTAL)
        kind++;
    snprintf(buf, len, "%s_%s", dir_name[r->dir], kind);
    return buf;
}

const char *xr_cmp_row_name(const struct row *r, char *buf, size_t len)
{
    char m[32];
    snprintf(buf, len, "%s/%s", r->w->label, metric_name(r, m, sizeof m));
    return buf;
}

static const char *fmt_value(enum kind k, double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (k == K_IOPS)
        snprintf(buf, len, v >= 1e6 ? "%.2fM" : v >= 1e4 ? "%.1fk" : "%.0f",
                 v >= 1e6 ? v / 1e6 : v >= 1e4 ? v / 1e3 : v);
    else if (k == K_BW)
        snprintf(buf, len, "%.1fMiB/s", v / (1024 * 1024));
    else
        snprintf(buf, len, v >= 1e6 ? "%.2fms" : v >= 1e3 ? "%.2fus" : "%.0fns",
                 v >= 1e6 ? v / 1e6 : v >= 1e3 ? v / 1e3 : v);
    return buf;
}

static const char *fmt_ratio(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.3f", v);
    return buf;
}

static const char *fmt_ci(const struct row *r, char *buf, size_t len)
{
    if (isnan(r->ci_lo))
        snprintf(buf, len, "-");
    else if (isinf(r->ci_hi))
        snprintf(buf, len, "[%.3f, inf]", r->ci_lo);
    else
        snprintf(buf, len, "[%.3f, %.3f]", r->ci_lo, r->ci_hi);
    return buf;
}

static const char *fmt_p(double p, char *buf, size_t len)
{
    if (isnan(p))
        snprintf(buf, len, "-");
    else if (p < 0.0001)
        snprintf(buf, len, "<0.0001");
    else
        snprintf(buf, len, "%.4f", p);
    return buf;
}

int xr_cmp_out_refused(const char *opt, const char *path)
{
    char shown[XR_ESCAPE_LEN];
    return xr_cmp_fail("%s %s: %s", opt, xr_escape(path, shown, sizeof shown),
                       xr_out_strerror(errno));
}

void xr_cmp_count_verdicts(const struct compare *c, size_t count[NVERDICT])
{
    memset(count, 0, NVERDICT * sizeof *count);
    for (size_t i = 0; i < c->nrows; i++)
        count[c->rows[i].verdict]++;
}

/* One line naming every row with the verdict, as label/metric. */
static void print_rows(const struct compare *c, enum verdict v, const char *head)
{
    fputs(head, stdout);
    for (size_t i = 0; i < c->nrows; i++) {
        char name[300];
        if (c->rows[i].verdict == v)
            printf(" %s", xr_cmp_row_name(&c->rows[i], name, sizeof name));
    }
    printf("\n");
}

/* What the p and CI columns hold: the two modes judge differently. */
static void print_method(const struct compare *c)
{
    const struct opts *o = &c->o;
    if (!o->paired) {
        printf("threshold %g%%, alpha %g, at least %ld runs a side; p: two-sided Mann-Whitney U "
               "(exact up to %d runs a side); CI: %g%% for NEW/BASE from the order statistics of "
               "all pairwise ratios (Hodges-Lehmann)\n\n",
               o->threshold, o->alpha, o->min_runs, XR_MWU_EXACT_MAX, (1 - o->alpha) * 100);
        return;
    }
    printf("paired by round: threshold %g%%, alpha %g over the gated rows (median "
           "latency): %.3g each, at least %ld paired rounds; base, new: medians over the "
           "paired rounds only; ratio: median of the per-round "
           "NEW/BASE ratios; CI: %.4g%% for it from the sign test (one-sided %.3g each way); iops, bw, mean and p99 latency are "
           "informational\n\n",
           o->threshold, o->alpha, c->row_alpha, o->min_runs > 2 ? o->min_runs : 2,
           (1 - 2 * c->row_alpha) * 100, c->row_alpha);
}

/* The reason shown after the verdict: wherever a verdict needs one, and
 * with --paired on every row, as it says how many rounds were paired (the
 * runs column counts each side's runs, a round without its partner too). */
static int shows_why(const struct compare *c, const struct row *r)
{
    return c->o.paired || r->verdict == V_INCONCLUSIVE || r->verdict == V_INFORMATIONAL ||
           r->kept;
}

/* Smallest number of runs a side with which p < alpha is possible at all. */
static size_t runs_needed(double alpha)
{
    size_t k = 1;
    while (k < 1000 && !(xr_mwu_min_p(k, k) < alpha))
        k++;
    return k;
}

/* benchstat's warning: rows whose runs could never show a difference. On
 * stdout under the table, and once on stderr where a CI log shows it. */
static void warn_too_few(const struct compare *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nrows; i++)
        n += c->rows[i].too_few;
    if (!n)
        return;
    char line[200];
    snprintf(line, sizeof line, "%zu row(s) have too few runs to reach p < %g at all; "
             "at least %zu runs a side are needed", n, c->o.alpha, runs_needed(c->o.alpha));
    printf("warning: %s\n", line);
    fprintf(stderr, "xdreport compare: warning: %s\n", line);
}

void xr_cmp_print_table(const struct compare *c)
{
    const struct opts *o = &c->o;
    int ww = 8;
    for (size_t i = 0; i < c->nw; i++)
        ww = (int)strlen(c->w[i].label) > ww ? (int)strlen(c->w[i].label) : ww;
    printf("BASE %s (%zu runs)\nNEW  %s (%zu runs)\n", o->path[BASE], c->nfiles[BASE],
           o->path[NEW], c->nfiles[NEW]);
    print_method(c);
    char ci_head[16];
    double level = o->paired ? 1 - 2 * c->row_alpha : 1 - o->alpha;
    snprintf(ci_head, sizeof ci_head, "%.4g%% CI", level * 100); /* 97.5% is no 98% */
    printf("%-*s  %-15s %5s %12s %12s %7s  %-16s %7s  %s\n", ww, "workload", "metric", "runs",
           "base", "new", "ratio", ci_head, "p", "verdict");
    for (size_t i = 0; i < c->nrows; i++) {
        const struct row *r = &c->rows[i];
        char m[32], b[32], n[32], ci[48], p[16], runs[24], ratio[16];
        snprintf(runs, sizeof runs, "%zu/%zu", r->n[BASE], r->n[NEW]);
        fmt_ratio(r->ratio, ratio, sizeof ratio);
        printf("%-*s  %-15s %5s %12s %12s %7s  %-16s %7s  %s%s%s%s\n", ww, r->w->label,
               metric_name(r, m, sizeof m), runs, fmt_value(r->kind, r->median[BASE], b, sizeof b),
               fmt_value(r->kind, r->median[NEW], n, sizeof n), ratio, fmt_ci(r, ci, sizeof ci),
               fmt_p(r->p, p, sizeof p), verdict_name[r->verdict], shows_why(c, r) ? " (" : "",
               shows_why(c, r) ? r->why : "", shows_why(c, r) ? ")" : "");
    }
    size_t count[NVERDICT];
    xr_cmp_count_verdicts(c, count);
    printf("\n%zu regression(s), %zu improvement(s), %zu same, %zu inconclusive",
           count[V_REGRESSION], count[V_IMPROVEMENT], count[V_SAME], count[V_INCONCLUSIVE]);
    if (count[V_INFORMATIONAL])
        printf(", %zu informational (shown, not gated)", count[V_INFORMATIONAL]);
    printf("\n");
    if (count[V_REGRESSION])
        print_rows(c, V_REGRESSION, "REGRESSION:");
    if (count[V_INCONCLUSIVE])
        print_rows(c, V_INCONCLUSIVE, "INCONCLUSIVE:");
    if (!count[V_REGRESSION] && count[V_INCONCLUSIVE])
        printf("no regression shown, but %zu row(s) are inconclusive: no evidence either way\n",
               count[V_INCONCLUSIVE]);
    else if (!count[V_REGRESSION])
        printf("no regression beyond %g%%\n", o->threshold);
    warn_too_few(c);
}

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* XML 1.0 allows no other control characters */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')
                fputc('?', f);
            else
                fputc(*s, f);
        }
    }
}

/* "(12 runs)", or with --paired "(10 paired rounds of 12 runs)": what the
 * median beside it is over. */
static const char *median_over(const struct compare *c, const struct row *r, enum side s,
                               char *buf, size_t len)
{
    if (c->o.paired && !r->kept)
        snprintf(buf, len, "%zu paired rounds of %zu runs", r->npairs, r->n[s]);
    else
        snprintf(buf, len, "%zu runs", r->n[s]);
    return buf;
}

static void row_summary(const struct compare *c, const struct row *r, char *buf, size_t len)
{
    char b[32], n[32], ci[48], p[16], ratio[16], ob[64], on[64];
    snprintf(buf, len, "%s: BASE median %s (%s), NEW median %s (%s), ratio %s, "
             "CI %s, p %s%s; %s", verdict_name[r->verdict],
             fmt_value(r->kind, r->median[BASE], b, sizeof b), median_over(c, r, BASE, ob, sizeof ob),
             fmt_value(r->kind, r->median[NEW], n, sizeof n), median_over(c, r, NEW, on, sizeof on),
             fmt_ratio(r->ratio, ratio, sizeof ratio),
             fmt_ci(r, ci, sizeof ci), fmt_p(r->p, p, sizeof p),
             isnan(r->p) ? "" : r->exact ? " (exact)" : " (normal approximation)", r->why);
}

static int finish_file(struct xr_out *o, const char *opt, const char *path)
{
    char shown[XR_ESCAPE_LEN];
    if (xr_out_commit(o))
        return xr_cmp_fail("%s %s: cannot write it: %s", opt, xr_escape(path, shown, sizeof shown),
                           xr_out_strerror(errno));
    return 0;
}

int xr_cmp_write_junit(const struct compare *c, const char *path)
{
    struct xr_out out;
    if (xr_out_begin(&out, path))
        return xr_cmp_out_refused("--junit", path);
    FILE *f = out.f;
    size_t count[NVERDICT];
    xr_cmp_count_verdicts(c, count);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"xdreport compare\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"0\" skipped=\"%zu\">\n", c->nrows, count[V_REGRESSION],
            count[V_INCONCLUSIVE] + count[V_INFORMATIONAL]);
    fprintf(f, "  <testsuite name=\"xdreport compare\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"0\" skipped=\"%zu\" time=\"0\">\n", c->nrows, count[V_REGRESSION],
            count[V_INCONCLUSIVE] + count[V_INFORMATIONAL]);
    fprintf(f, "    <properties>\n      <property name=\"base\" value=\"");
    xml_escaped(f, c->o.path[BASE]);
    fprintf(f, "\"/>\n      <property name=\"new\" value=\"");
    xml_escaped(f, c->o.path[NEW]);
    fprintf(f, "\"/>\n      <property name=\"threshold_percent\" value=\"%g\"/>\n"
            "      <property name=\"alpha\" value=\"%g\"/>\n    </properties>\n",
            c->o.threshold, c->o.alpha);
    for (size_t i = 0; i < c->nrows; i++) {
        const struct row *r = &c->rows[i];
        char m[32], sum[1024];
        row_summary(c, r, sum, sizeof sum);
        fprintf(f, "    <testcase classname=\"");
        xml_escaped(f, r->w->label);
        fprintf(f, "\" name=\"%s\" time=\"0\">\n", metric_name(r, m, sizeof m));
        if (r->verdict == V_REGRESSION) {
            fprintf(f, "      <failure type=\"regression\" message=\"");
            xml_escaped(f, r->why);
            fprintf(f, "\">");
            xml_escaped(f, sum);
            fprintf(f, "</failure>\n");
        } else if (r->verdict == V_INCONCLUSIVE || r->verdict == V_INFORMATIONAL) {
            fprintf(f, "      <skipped message=\"%s: ", verdict_name[r->verdict]);
            xml_escaped(f, r->why);
            fprintf(f, "\"/>\n");
        }
        fprintf(f, "      <system-out>");
        xml_escaped(f, sum);
        fprintf(f, "</system-out>\n    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    return finish_file(&out, "--junit", path);
}

static void om_labels(FILE *f, const struct row *r)
{
    char m[32];
    fputs("{workload=\"", f);
    for (const char *s = r->w->label; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fprintf(f, "\",metric=\"%s\"", metric_name(r, m, sizeof m));
}

static void om_value(FILE *f, double v)
{
    if (isnan(v))
        fputs(" NaN\n", f);
    else if (isinf(v))
        fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
    else
        fprintf(f, " %.10g\n", v);
}

int xr_cmp_write_openmetrics(const struct compare *c, const char *path)
{
    static const struct {
        const char *name, *help;
    } fam[] = {
        {"xdevice_compare_ratio", "NEW/BASE ratio of medians (--paired: median of the "
                                  "per-round ratios)."},
        {"xdevice_compare_ratio_ci_low", "Lower end of the confidence interval for NEW/BASE."},
        {"xdevice_compare_ratio_ci_high", "Upper end of the confidence interval for NEW/BASE."},
        {"xdevice_compare_p_value", "Two-sided Mann-Whitney U p-value."},
        {"xdevice_compare_base_median", "Median over BASE runs (IOPS, bytes/s or ns; "
                                        "--paired: over the paired rounds)."},
        {"xdevice_compare_new_median", "Median over NEW runs (IOPS, bytes/s or ns; "
                                       "--paired: over the paired rounds)."},
        {"xdevice_compare_base_runs", "Runs with a value in BASE."},
        {"xdevice_compare_new_runs", "Runs with a value in NEW."},
    };
    struct xr_out out;
    if (xr_out_begin(&out, path))
        return xr_cmp_out_refused("--metrics", path);
    FILE *f = out.f;
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        fprintf(f, "# TYPE %s gauge\n# HELP %s %s\n", fam[k].name, fam[k].name, fam[k].help);
        for (size_t i = 0; i < c->nrows; i++) {
            const struct row *r = &c->rows[i];
            double v[] = {r->ratio,        r->ci_lo,        r->ci_hi,         r->p,
                          r->median[BASE], r->median[NEW], (double)r->n[BASE], (double)r->n[NEW]};
            fputs(fam[k].name, f);
            om_labels(f, r);
            fputc('}', f);
            om_value(f, v[k]);
        }
    }
    fprintf(f, "# TYPE xdevice_compare_verdict stateset\n"
            "# HELP xdevice_compare_verdict Verdict for the workload and metric.\n");
    for (size_t i = 0; i < c->nrows; i++)
        for (int v = 0; v < NVERDICT; v++) {
            fputs("xdevice_compare_verdict", f);
            om_labels(f, &c->rows[i]);
            fprintf(f, ",xdevice_compare_verdict=\"%s\"} %d\n", verdict_name[v],
                    (int)c->rows[i].verdict == v);
        }
    size_t count[NVERDICT];
    xr_cmp_count_verdicts(c, count);
    fprintf(f, "# TYPE xdevice_compare_regressions gauge\n"
            "# HELP xdevice_compare_regressions Comparisons with a regression beyond the "
            "threshold.\nxdevice_compare_regressions %zu\n# EOF\n", count[V_REGRESSION]);
    return finish_file(&out, "--metrics", path);
}
