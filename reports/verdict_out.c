/* verdict_out.c - the recommendation (verdict.c) and the warnings
 * (warnings.c) as the first section of report.html and of summary.md.
 *
 * One row per workload: the configuration to run, those tied with it, its
 * IOPS, its ratio to fio's own engine with the interval and what that
 * means, and why it beat the runner-up. The numbers behind a row are in
 * the workload's section below.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "report.h"

/* The names of the configurations tied with the best, ", "-separated, or
 * a sentence saying why there are none. */
static char *tied_text(const struct xr_group *g, const struct xr_verdict *v)
{
    char *out = xr_mem_strdup("");
    int any_interval = 0;

    for (size_t i = 0; i < g->ncfgs; i++) {
        const struct xr_cfg_verdict *c = &v->cfg[i];

        any_interval |= c->vs_best.ok && !isinf(c->vs_best.hi);
        if (!c->tied)
            continue;
        char *next = xr_mem_printf("%s%s%s", out, *out ? ", " : "", g->cfgs[i].label);
        free(out);
        out = next;
    }
    if (!*out) {
        free(out);
        if (v->runner_up < 0)
            return xr_mem_strdup("no other candidate");
        if (v->min_reps < 2 || !any_interval)
            return xr_mem_strdup("cannot tell: fewer than 2 runs each");
        return xr_mem_strdup("none: the best beats every other");
    }
    return out;
}

/* "run this": the best, or, when others are level with it (verdict.c),
 * no pick and the names of all of them. */
static char *pick_text(const struct xr_group *g, const struct xr_verdict *v)
{
    if (!v->nlevel)
        return xr_mem_strdup(g->cfgs[v->best].label);
    char *out = xr_mem_printf("no pick: %s", g->cfgs[v->best].label);

    for (size_t i = 0; i < g->ncfgs; i++) {
        if (!v->cfg[i].level)
            continue;
        char *next = xr_mem_printf("%s, %s", out, g->cfgs[i].label);
        free(out);
        out = next;
    }
    char *done = xr_mem_printf("%s are level (the same IOPS as printed, no interval tells them "
                               "apart)", out);
    free(out);
    return done;
}

/* "why": what set the best apart from the runner-up (with their ratio in
 * the HTML), or, with no pick, what differs between the level ones. */
static char *why_cell(const struct xr_group *g, const struct xr_verdict *v, int with_ratio)
{
    if (v->runner_up < 0 || !v->why)
        return xr_mem_strdup("the only candidate");
    if (v->nlevel)
        return xr_mem_printf("between them: %s", v->why);
    char *ratio = with_ratio ? xr_estimate_text(&v->cfg[v->runner_up].vs_best)
                             : xr_mem_strdup("");
    char *out = *ratio ? xr_mem_printf("vs the runner-up %s (%s): %s", g->cfgs[v->runner_up].label,
                                       ratio, v->why)
                       : xr_mem_printf("vs the runner-up %s: %s", g->cfgs[v->runner_up].label,
                                       v->why);
    free(ratio);
    return out;
}

static const char *word_class(const char *word)
{
    return !strcmp(word, "faster") ? "faster" : !strcmp(word, "slower") ? "slower" : "noise";
}

static char *iops_text(const struct xr_group *g, const struct xr_verdict *v)
{
    char num[32];

    xr_fmt_si(num, sizeof num, v->cfg[v->best].gmean_iops);
    return xr_mem_printf("%s (%zu run%s)", num, g->cfgs[v->best].nreps,
                         g->cfgs[v->best].nreps == 1 ? "" : "s");
}

static int any_reference(const struct xr_report *r)
{
    for (size_t g = 0; g < r->ngroups; g++)
        if (r->verdicts[g].best >= 0 && r->verdicts[g].cfg[r->verdicts[g].best].ref >= 0)
            return 1;
    return 0;
}

static void html_row(FILE *f, const struct xr_report *r, size_t gi, int refs)
{
    const struct xr_group *g = &r->groups[gi];
    const struct xr_verdict *v = &r->verdicts[gi];
    const struct xr_cfg_verdict *b;
    char *tied, *iops, *pick, *why;

    fputs("<tr><td>", f);
    fprintf(f, "<a href=\"#w-%s\">", g->slug);
    xr_html_esc(f, g->name);
    fputs("</a></td>", f);
    if (v->best < 0) {
        fputs("<td colspan=\"5\">no configuration did I/O</td></tr>\n", f);
        return;
    }
    b = &v->cfg[v->best];
    tied = tied_text(g, v);
    iops = iops_text(g, v);
    pick = pick_text(g, v);
    if (v->nlevel)              /* no colour: no configuration is picked */
        fputs("<td>", f);
    else
        fprintf(f, "<td class=\"pick\"><span class=\"swatch\" style=\"background:%s\"></span>",
                xr_chart_color((size_t)v->best));
    xr_html_esc(f, pick);
    fputs("</td><td>", f);
    xr_html_esc(f, tied);
    fputs("</td><td class=\"n\">", f);
    xr_html_esc(f, iops);
    fputs("</td>", f);
    if (refs) {
        char *ratio = xr_estimate_text(&b->vs_ref);
        const char *word = xr_estimate_word(&b->vs_ref);

        fputs("<td class=\"n\">", f);
        xr_html_esc(f, *ratio ? ratio : "no reference run");
        fprintf(f, "<br><span class=\"%s\">", word_class(word));
        xr_html_esc(f, word);
        fputs("</span></td>", f);
        free(ratio);
    }
    fputs("<td>", f);
    why = why_cell(g, v, 1);
    xr_html_esc(f, why);
    fputs("</td></tr>\n", f);
    free(tied);
    free(iops);
    free(pick);
    free(why);
}

static void html_warnings(FILE *f, const struct xr_report *r)
{
    if (!r->nwarnings)
        return;
    fprintf(f, "<section class=\"warnings\" id=\"warnings\">\n<h2>%zu warning%s: configurations "
               "not doing what their names say</h2>\n<p class=\"lede\">From the xd_stats "
               "documents of the runs; compare these configurations with care.</p>\n<ul>\n",
            r->nwarnings, r->nwarnings == 1 ? "" : "s");
    for (size_t i = 0; i < r->nwarnings; i++) {
        fputs("<li><b>", f);
        xr_html_esc(f, r->warnings[i].subject);
        fputs("</b>: ", f);
        xr_html_esc(f, r->warnings[i].text);
        fputs("</li>\n", f);
    }
    fputs("</ul>\n</section>\n", f);
}

void xr_html_verdict(FILE *f, const struct xr_report *r)
{
    int refs = any_reference(r);

    if (!r->ngroups) {
        html_warnings(f, r);
        return;
    }
    fputs("<section class=\"verdict\" id=\"recommendation\">\n<h2>Recommendation</h2>\n"
          "<p class=\"lede\">Per workload, the configuration with the most IOPS (geometric mean "
          "over its runs", f);
    if (refs)
        fputs(", among xdevice's; fio's own engines are the references", f);
    fputs("), the ones statistically tied with it (the 95% interval of their ratio to it holds "
          "1.0)", f);
    if (refs)
        fputs(", its ratio to fio's reference on the same file (paired by run, 95% interval; "
              "<i>within noise</i> when the interval holds 1.0)", f);
    fputs(" and the options that set it apart from the runner-up; no pick where another "
          "configuration's IOPS print alike and no interval tells the two apart.</p>\n"
          "<div class=\"scroll\"><table>\n<thead><tr><th>workload</th><th>run this</th>"
          "<th>tied with it</th><th class=\"n\">IOPS</th>", f);
    if (refs)
        fputs("<th class=\"n\">vs its fio reference</th>", f);
    fputs("<th>why</th></tr></thead>\n<tbody>\n", f);
    for (size_t g = 0; g < r->ngroups; g++)
        html_row(f, r, g, refs);
    fputs("</tbody></table></div>\n</section>\n", f);
    html_warnings(f, r);
}

void xr_md_verdict(FILE *f, const struct xr_report *r)
{
    int refs = any_reference(r);

    if (r->ngroups) {
        fputs("## Recommendation\n\nPer workload: the configuration with the most IOPS "
              "(geometric mean over its runs), those tied with it (95% interval of the ratio "
              "holds 1.0), its paired ratio to fio's reference (95% interval) and why; no pick "
              "where another configuration's IOPS print alike and no interval tells them "
              "apart.\n\n", f);
        fputs(refs ? "| workload | run this | tied with it | IOPS | vs its fio reference | why |\n"
                     "| --- | --- | --- | ---: | ---: | --- |\n"
                   : "| workload | run this | tied with it | IOPS | why |\n"
                     "| --- | --- | --- | ---: | --- |\n", f);
    }
    for (size_t gi = 0; gi < r->ngroups; gi++) {
        const struct xr_group *g = &r->groups[gi];
        const struct xr_verdict *v = &r->verdicts[gi];

        fputs("| ", f);
        xr_md_text(f, g->name);
        if (v->best < 0) {
            fputs(refs ? " | - | - | - | - | no I/O |\n" : " | - | - | - | no I/O |\n", f);
            continue;
        }
        char *tied = tied_text(g, v), *iops = iops_text(g, v), *pick = pick_text(g, v);
        const char *bold = v->nlevel ? "" : "**";

        fprintf(f, " | %s", bold);
        xr_md_text(f, pick);
        fprintf(f, "%s | ", bold);
        xr_md_text(f, tied);
        fputs(" | ", f);
        xr_md_text(f, iops);
        if (refs) {
            char *ratio = xr_estimate_text(&v->cfg[v->best].vs_ref);

            fputs(" | ", f);
            xr_md_text(f, *ratio ? ratio : "no reference run");
            fputs(" ", f);
            xr_md_text(f, xr_estimate_word(&v->cfg[v->best].vs_ref));
            free(ratio);
        }
        char *why = why_cell(g, v, 0);

        fputs(" | ", f);
        xr_md_text(f, why);
        fputs(" |\n", f);
        free(tied);
        free(iops);
        free(pick);
        free(why);
    }
    if (r->ngroups)
        fputc('\n', f);
    if (r->nwarnings) {
        fprintf(f, "## Warnings\n\n");
        for (size_t i = 0; i < r->nwarnings; i++) {
            fputs("- **", f);
            xr_md_text(f, r->warnings[i].subject);
            fputs("**: ", f);
            xr_md_text(f, r->warnings[i].text);
            fputc('\n', f);
        }
        fputc('\n', f);
    }
}
