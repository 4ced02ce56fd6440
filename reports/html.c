/* html.c - OUTDIR/report.html: one self-contained page.
 *
 * Everything is inside the file: the charts as inline SVG, the style in a
 * <style> element, no scripts, no fonts or images from elsewhere, so the
 * page can be mailed, attached to a CI run or opened offline and looks the
 * same. Per workload: what was compared, a table with the best figures
 * marked, the charts, and the options of every configuration (folded).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "outfile.h"
#include "mem.h"
#include "options.h"
#include "report.h"

static const char *css =
    ":root{--fg:#1d232b;--muted:#5b6675;--line:#dfe3e8;--bg:#f4f5f7;--accent:#0b63a5}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"DejaVu Sans\","
    "sans-serif;color:var(--fg);background:var(--bg)}\n"
    ".wrap{max-width:1180px;margin:0 auto;padding:0 24px}\n"
    "header{background:#1f2a37;color:#fff;padding:22px 0 18px}\n"
    "header h1{margin:0 0 4px;font-size:26px;font-weight:650}\n"
    "header p{margin:0;color:#c8d1db}\n"
    "nav{margin:14px 0 0}nav a{color:#9fd0ff;margin-right:16px;text-decoration:none}\n"
    "nav a:hover{text-decoration:underline}\n"
    "section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 24px;"
    "margin:20px 0}\n"
    "h2{margin:0 0 4px;font-size:21px}h3{font-size:16px;margin:18px 0 6px}\n"
    ".lede{color:var(--muted);margin:0 0 12px}\n"
    ".problems{border-left:5px solid #d97706;background:#fff9ed}\n"
    ".problems li{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;font-size:13.5px}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:14px;margin:6px 0 10px;min-width:50%}\n"
    "th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top}\n"
    "th{background:#eef1f4;font-weight:600;white-space:nowrap}\n"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "tbody tr:hover td{background:#f8fafc}\n"
    "td.best{font-weight:700;color:#0a6b2b}\n"
    "tr.diff td:first-child{font-weight:600}tr.diff td{background:#fffbea}\n"
    ".swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:7px;"
    "vertical-align:-1px}\n"
    "figure{margin:22px 0 8px}\n"
    "figure svg{display:block;width:100%;height:auto;border:1px solid var(--line);"
    "border-radius:6px;background:#fff}\n"
    "figcaption{color:var(--muted);font-size:13.5px;margin-top:6px}\n"
    "figcaption a{color:var(--accent)}\n"
    "details{margin-top:14px}summary{cursor:pointer;color:var(--accent)}\n"
    "code{font:13px ui-monospace,\"DejaVu Sans Mono\",monospace;background:#eef1f4;"
    "padding:1px 4px;border-radius:3px}\n"
    "footer{color:var(--muted);font-size:13px;margin:8px 0 40px}\n"
    ".verdict{border-left:5px solid #0a6b2b}\n"
    ".verdict td.pick{font-weight:700;color:#0a6b2b;white-space:nowrap}\n"
    ".warnings{border-left:5px solid #b42318;background:#fff5f4}\n"
    ".warnings li b{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace}\n"
    ".faster{color:#0a6b2b}.slower{color:#b42318}.noise{color:var(--muted)}\n";

void xr_html_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

#define esc xr_html_esc

/* A problem as shown on the page, without the "xdreport: " every line has. */
static const char *problem_text(const char *line)
{
    return strncmp(line, "xdreport: ", 10) == 0 ? line + 10 : line;
}

/* --- inline SVG ------------------------------------------------------------------ */

/* gnuplot names the same things in every SVG (gnuplot_canvas, gpPt0...);
 * inline, ids must be unique in the page, so each chart's get a prefix. */
static const char *const id_refs[] = { " id='", " id=\"", "href='#", "href=\"#", "url(#" };

static void put_svg(FILE *f, const char *svg, size_t idx, const char *title)
{
    const char *p = strstr(svg, "<svg");

    if (!p)
        return;
    fprintf(f, "<svg role=\"img\" aria-label=\"");
    esc(f, title);
    fputc('"', f);
    p += 4;
    while (*p) {
        size_t k, n = 0;

        for (k = 0; k < sizeof id_refs / sizeof *id_refs; k++)
            if (strncmp(p, id_refs[k], n = strlen(id_refs[k])) == 0)
                break;
        if (k < sizeof id_refs / sizeof *id_refs) {
            fwrite(p, 1, n, f);
            fprintf(f, "c%zu-", idx);
            p += n;
        } else if (strncmp(p, "<title>Gnuplot</title>", 22) == 0) {
            fputs("<title>", f);
            esc(f, title);
            fputs("</title>", f);
            p += 22;
        } else {
            fputc(*p++, f);
        }
    }
}

static void put_chart(FILE *f, const struct xr_chart *c, size_t idx)
{
    fprintf(f, "<figure id=\"%s\">\n", c->name);
    put_svg(f, c->svg, idx, c->title);
    fputs("\n<figcaption>", f);
    esc(f, c->note);
    fprintf(f, " <a href=\"%s.png\">PNG</a></figcaption>\n</figure>\n", c->name);
}

static void put_charts(FILE *f, const struct xr_report *r, int section, int group)
{
    for (size_t i = 0; i < r->ncharts; i++)
        if (r->charts[i].section == section && r->charts[i].group == group && r->charts[i].svg)
            put_chart(f, &r->charts[i], i);
}

/* --- tables ------------------------------------------------------------------ */

/* swatch: the colour of each row's configuration in the line charts, or NULL */
static void put_table(FILE *f, const struct xr_table *t, int swatch)
{
    fputs("<div class=\"scroll\"><table>\n<thead><tr>", f);
    for (size_t c = 0; c < t->ncols; c++) {
        fputs(t->numeric[c] ? "<th class=\"n\">" : "<th>", f);
        esc(f, t->head[c]);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (size_t r = 0; r < t->nrows; r++) {
        fputs("<tr>", f);
        for (size_t c = 0; c < t->ncols; c++) {
            size_t i = r * t->ncols + c;

            if (!t->numeric[c]) {
                fputs("<td>", f);
                if (c == 0 && swatch && *t->cell[i] && t->row_cfg[r] >= 0)
                    fprintf(f, "<span class=\"swatch\" style=\"background:%s\"></span>",
                            xr_chart_color((size_t)t->row_cfg[r]));
            } else {
                fputs(t->best[i] && *t->cell[i] ? "<td class=\"n best\">" : "<td class=\"n\">", f);
            }
            esc(f, t->cell[i]);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

static const char *opt_value(const struct xr_job *job, const char *key)
{
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(xr_opt_canon(job->opts[i].key), key) == 0)
            return job->opts[i].val;
    return NULL;
}

static int differs(const struct xr_group *g, const char *key)
{
    const char *v0 = opt_value(g->cfgs[0].job, key);

    for (size_t i = 1; i < g->ncfgs; i++) {
        const char *v = opt_value(g->cfgs[i].job, key);

        if ((!v0) != (!v) || (v && strcmp(v, v0)))
            return 1;
    }
    return 0;
}

/* Every option (but bookkeeping) of every configuration: the ones all of
 * them share said once, in a line, and a table of the ones that differ,
 * one column per configuration. The labels show only what differs; this
 * shows the rest. */
static void put_options(FILE *f, const struct xr_group *g)
{
    const char **keys = NULL;
    size_t nk = 0, nshared = 0;

    for (size_t i = 0; i < g->ncfgs; i++)
        for (size_t k = 0; k < g->cfgs[i].job->nopts; k++) {
            const char *key = xr_opt_canon(g->cfgs[i].job->opts[k].key);
            size_t j;

            for (j = 0; j < nk && strcmp(keys[j], key); j++)
                ;
            if (j == nk && xr_opt_class(key) != XR_OPT_BOOK)
                *(const char **)xr_mem_push(&keys, &nk, sizeof *keys) = key;
        }
    fputs("<details><summary>Options of each configuration</summary>\n", f);
    for (size_t k = 0; k < nk; k++) {
        if (g->ncfgs > 1 && differs(g, keys[k]))
            continue;
        const char *v = opt_value(g->cfgs[0].job, keys[k]);

        fputs(nshared++ ? ", " : "<p>Every configuration: <code>", f);
        esc(f, keys[k]);
        if (v && *v) {
            fputc('=', f);
            esc(f, v);
        }
    }
    if (nshared)
        fputs("</code></p>\n", f);
    if (g->ncfgs > 1 && nshared < nk) {
        fputs("<div class=\"scroll\"><table>\n<thead><tr><th>option</th>", f);
        for (size_t i = 0; i < g->ncfgs; i++) {
            fputs("<th>", f);
            esc(f, g->cfgs[i].label);
            fputs("</th>", f);
        }
        fputs("</tr></thead>\n<tbody>\n", f);
        for (size_t k = 0; k < nk; k++) {
            if (!differs(g, keys[k]))
                continue;
            fputs("<tr class=\"diff\"><td>", f);
            esc(f, keys[k]);
            fputs("</td>", f);
            for (size_t i = 0; i < g->ncfgs; i++) {
                const char *v = opt_value(g->cfgs[i].job, keys[k]);

                fputs("<td>", f);
                esc(f, v ? v : "");
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        fputs("</tbody></table></div>\n", f);
    }
    fputs("</details>\n", f);
    free(keys);
}

/* --- sections ------------------------------------------------------------------ */

static void put_workload(FILE *f, const struct xr_report *r, size_t g)
{
    const struct xr_group *grp = &r->groups[g];
    struct xr_table *t = xr_table_workload(r, g);

    fprintf(f, "<section id=\"w-%s\">\n<h2>", grp->slug);
    esc(f, grp->name);
    fprintf(f, "</h2>\n<p class=\"lede\">%zu configuration%s, ", grp->ncfgs,
            grp->ncfgs == 1 ? "" : "s");
    esc(f, *grp->versions ? grp->versions : "fio");
    if (grp->ncfgs > 1 && *grp->differ) {
        fputs(". They differ in <b>", f);
        esc(f, grp->differ);
        fputs("</b>", f);
    } else if (grp->ncfgs > 1) {
        fputs(". Their options are the same", f);
    }
    fputs(". Latencies are fio's total latency (lat) where the job set lat_percentiles=1, "
          "otherwise its completion latency (clat); the best figure of each "
          "column is in <b>bold green</b>.", f);
    if (xr_group_max_reps(grp) > 1)
        fprintf(f, " Each configuration ran up to %zu times: its row shows the run with the "
                   "median IOPS; the ratio column and the recommendation use every run.",
                xr_group_max_reps(grp));
    fputs("</p>\n", f);
    put_table(f, t, 1);
    put_charts(f, r, XR_SEC_WORKLOAD, (int)g);
    put_charts(f, r, XR_SEC_TIME, (int)g);
    put_options(f, grp);
    fputs("</section>\n", f);
    xr_table_free(t);
}

static void put_xdevice(FILE *f, const struct xr_report *r)
{
    struct xr_table *t = xr_table_xdevice(r);

    if (!t)
        return;
    fputs("<section id=\"xdevice\">\n<h2>xdevice</h2>\n<p class=\"lede\">", f);
    fprintf(f, "%zu stats document%s (xd_stats)", r->nstats, r->nstats == 1 ? "" : "s");
    if (r->nstats > 1 && *r->stats_differ) {
        fputs("; the runs differ in <b>", f);
        esc(f, r->stats_differ);
        fputs("</b>", f);
    }
    fputs(t->ncols == 3 ? ". They hold no cache, compression, space or tier figures, so there "
                          "are no charts for them.</p>\n" : ".</p>\n", f);
    put_table(f, t, 0);
    put_charts(f, r, XR_SEC_XDEVICE, -1);
    fputs("</section>\n", f);
    xr_table_free(t);
}

static int has_charts(const struct xr_report *r, int section, int group)
{
    for (size_t i = 0; i < r->ncharts; i++)
        if (r->charts[i].section == section && r->charts[i].group == group && r->charts[i].svg)
            return 1;
    return 0;
}

static void put_logs(FILE *f, const struct xr_report *r)
{
    if (!has_charts(r, XR_SEC_TIME, -1))
        return;
    fputs("<section id=\"logs\">\n<h2>fio logs</h2>\n<p class=\"lede\">Logs that no job in the "
          "inputs names in its write_*_log options; lines are labelled by log name.</p>\n", f);
    put_charts(f, r, XR_SEC_TIME, -1);
    fputs("</section>\n", f);
}

static void put_problems(FILE *f, const struct xr_report *r)
{
    if (!r->nproblems)
        return;
    fputs("<section class=\"problems\" id=\"problems\">\n<h2>Problems</h2>\n<p class=\"lede\">"
          "These inputs or steps failed; the report shows everything else.</p>\n<ul>\n", f);
    for (size_t i = 0; i < r->nproblems; i++) {
        fputs("<li>", f);
        esc(f, problem_text(r->problems[i]));
        fputs("</li>\n", f);
    }
    fputs("</ul>\n</section>\n", f);
}

static void put_nav(FILE *f, const struct xr_report *r)
{
    fputs("<nav>", f);
    if (r->ngroups || r->nwarnings)
        fputs("<a href=\"#recommendation\">Recommendation</a>", f);
    if (r->nproblems)
        fputs("<a href=\"#problems\">Problems</a>", f);
    for (size_t g = 0; g < r->ngroups; g++) {
        fprintf(f, "<a href=\"#w-%s\">", r->groups[g].slug);
        esc(f, r->groups[g].name);
        fputs("</a>", f);
    }
    if (has_charts(r, XR_SEC_TIME, -1))
        fputs("<a href=\"#logs\">fio logs</a>", f);
    if (r->nstats)
        fputs("<a href=\"#xdevice\">xdevice</a>", f);
    fputs("<a href=\"#inputs\">Inputs</a></nav>\n", f);
}

static void put_header(FILE *f, const struct xr_report *r)
{
    char when[64];
    time_t now = time(NULL);
    size_t ncfg = 0;

    for (size_t g = 0; g < r->ngroups; g++)
        ncfg += r->groups[g].ncfgs;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&now));
    fputs("<header><div class=\"wrap\">\n<h1>", f);
    esc(f, r->title);
    fputs("</h1>\n<p>", f);
    esc(f, *r->versions ? r->versions : "no fio results");
    fprintf(f, " · %zu configuration%s in %zu workload%s · %zu xdevice stats · "
               "%zu time series · generated %s</p>\n",
            ncfg, ncfg == 1 ? "" : "s", r->ngroups, r->ngroups == 1 ? "" : "s", r->nstats,
            r->nlines, when);
    put_nav(f, r);
    fputs("</div></header>\n", f);
}

static void put_inputs(FILE *f, const struct xr_report *r)
{
    fprintf(f, "<section id=\"inputs\">\n<h2>Inputs</h2>\n<details><summary>%zu file%s read"
               "</summary>\n<ul>\n", r->ninputs, r->ninputs == 1 ? "" : "s");
    for (size_t i = 0; i < r->ninputs; i++) {
        fputs("<li><code>", f);
        esc(f, r->inputs[i]);
        fputs("</code></li>\n", f);
    }
    fputs("</ul>\n</details>\n</section>\n", f);
}

static void put_body(FILE *f, const struct xr_report *r)
{
    put_header(f, r);
    fputs("<main class=\"wrap\">\n", f);
    xr_html_verdict(f, r);
    put_problems(f, r);
    if (r->ncharts && !r->charts_drawn)
        fputs("<section><p class=\"lede\">No charts: gnuplot did not draw them (see Problems)."
              "</p></section>\n", f);
    for (size_t g = 0; g < r->ngroups; g++)
        put_workload(f, r, g);
    put_logs(f, r);
    put_xdevice(f, r);
    put_inputs(f, r);
    fputs("<footer>Made by <code>xdreport report</code>. Every figure is in "
          "<a href=\"figures.csv\">figures.csv</a>, the tables in <a href=\"summary.md\">"
          "summary.md</a>; each chart is also a PNG beside this file, and "
          "<code>gnuplot charts.gp</code> in this directory draws them again.</footer>\n"
          "</main>\n", f);
}

int xr_html_write(struct xr_report *r)
{
    char *path = xr_mem_printf("%s/report.html", r->outdir);
    FILE *f = xr_out_open(path);
    int rc = 0;
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    if (!f) {
        xr_report_problem(r, "xdreport: %s: %s", xr_escape(path, shown, sizeof shown),
                          xr_out_strerror(errno));
        free(path);
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>", f);
    esc(f, r->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
    put_body(f, r);
    fputs("</body>\n</html>\n", f);
    if (ferror(f) | fclose(f)) {
        xr_report_problem(r, "xdreport: %s: write failed: %s", xr_escape(path, shown, sizeof shown),
                          strerror(errno));
        rc = -1;
    }
    free(path);
    return rc;
}
