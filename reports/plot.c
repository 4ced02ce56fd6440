/* plot.c - charts into the gnuplot script: text, datablocks, bars, lines.
 *
 * Every chart's body is written once into memory and then twice into the
 * script, after "set terminal svg" and after "set terminal pngcairo" (or
 * libgd's png where this gnuplot lacks cairo). gnuplot gives up at the
 * first error in a script, taking every later chart with it, so nothing is
 * left to chance: text is quoted, log axes get only positive values, and
 * the chart_*.c files draw no chart without data. Text on a command line is
 * single-quoted (xr_gp_string), the one form in which gnuplot runs no
 * `command` and expands no @macro: titles, labels and file names come from
 * the result files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "mem.h"
#include "plot.h"

/* Okabe-Ito first: told apart by most eyes; then ten more, so that the
 * twenty configurations of a bench (ten pairs) each keep a colour of their
 * own in every chart of the report. */
static const char *const palette[] = {
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#4D4D4D", "#8C6D31", "#7B4FA0", "#17BECF",
    "#9E0142", "#66A61E", "#1B3A6B", "#F0C808", "#A6761D",
    "#E7298A", "#2CA58D", "#B15928", "#6A3D9A", "#999933",
};
/* Bars that are not configurations (directions, xdevice's metrics) are in
 * greys, outside the palette: a colour in the report means one configuration. */
const char *const xr_dir_color[XR_NDIR] = { "#3B4A5A", "#8795A6", "#C3CCD6", "#5C6F82" };

const char *xr_chart_color(size_t i)
{
    return palette[i % (sizeof palette / sizeof *palette)];
}

/* --- text ------------------------------------------------------------------- */

/* s as a double-quoted field of a datablock line: gnuplot reads data
 * lines as data, never as commands, so nothing in them is expanded. Text
 * on command lines goes through xr_gp_string. */
static void put_data_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* gnuplot's line break inside a string expression: 'a' . "\n" . 'b' */
#define GP_NEWLINE " . \"\\n\" . "

/* At most max bytes of s, cut at a UTF-8 boundary, with "..." when cut. */
static char *shorten(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return xr_mem_strdup(s);
    n = max - 3;
    while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return xr_mem_printf("%.*s...", (int)n, s);
}

/* A tic label: one "k=v" per line when multiline, else one shortened line;
 * written quoted, with gnuplot's \n between lines. */
static void put_tic_label(FILE *f, const char *label, int multiline, size_t max)
{
    char *copy = xr_mem_strdup(label), *save = NULL, *tok;
    int first = 1;

    if (!multiline) {
        char *s = shorten(label, max);
        xr_gp_string(f, s);
        free(s);
        free(copy);
        return;
    }
    for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *s = shorten(tok, max);

        fputs(first ? "" : GP_NEWLINE, f);
        xr_gp_string(f, s);
        free(s);
        first = 0;
    }
    if (first)              /* no token: still a label, an empty one */
        xr_gp_string(f, "");
    free(copy);
}

static size_t count_tokens(const char *s)
{
    size_t n = 0;

    for (int in = 0; *s; s++) {
        if (*s != ' ' && !in)
            n++;
        in = *s != ' ';
    }
    return n;
}

/* --- script ------------------------------------------------------------------- */

static unsigned block_begin(struct xr_plot *gp)
{
    fprintf(gp->f, "$d%u << EOD\n", ++gp->nblock);
    return gp->nblock;
}

static void block_end(struct xr_plot *gp)
{
    fputs("EOD\n", gp->f);
}

static const char *style =
    "reset\n"
    "set border 3 lw 1 lc rgb \"#777777\"\n"
    "set tics nomirror out scale 0.5 textcolor rgb \"#333333\"\n"
    "set grid ytics lw 1 lc rgb \"#e4e4e4\"\n"
    "set key textcolor rgb \"#222222\" noautotitle\n"
    "set style fill solid 0.9 noborder\n";

/* Start a chart: register it and open its body with the common style. */
/* The subtitle after the title, on lines of at most SUB_LINE_MAX bytes
 * (about the width of the narrowest chart at the title's font), broken
 * after a " · " or ", ": a long list of differing options would run off
 * both sides of the chart, where nobody can read it. */
#define SUB_LINE_MAX 110

static void put_sub(FILE *f, const char *sub)
{
    while (*sub) {
        size_t n = strlen(sub), cut = n;

        if (n > SUB_LINE_MAX) {
            cut = 0;
            for (size_t i = 1; i < SUB_LINE_MAX; i++)
                if (!strncmp(sub + i, " · ", strlen(" · ")))
                    cut = i;
                else if (!strncmp(sub + i, ", ", 2))
                    cut = i + 1;    /* the comma stays at the end of the line */
            cut = cut ? cut : SUB_LINE_MAX;
        }
        char *line = xr_mem_strndup(sub, cut);

        fputs(GP_NEWLINE, f);
        xr_gp_string(f, line);
        free(line);
        sub += cut;
        if (!strncmp(sub, " · ", strlen(" · ")))
            sub += strlen(" · ");
        while (*sub == ' ')
            sub++;
    }
}

static void chart_begin(struct xr_plot *gp, const struct xr_chart_spec *spec)
{
    struct xr_chart *c = xr_mem_push(&gp->r->charts, &gp->r->ncharts, sizeof *c);

    c->name = xr_mem_strdup(spec->name);
    c->title = xr_mem_strdup(spec->title);
    c->note = xr_mem_strdup(spec->note);
    c->group = spec->group;
    c->section = spec->section;
    gp->body = open_memstream(&gp->bodybuf, &gp->bodylen);
    if (!gp->body)
        xr_mem_oom();
    fputs(style, gp->body);
    fputs("set title ", gp->body);
    xr_gp_string(gp->body, spec->title);
    put_sub(gp->body, spec->sub);
    fputs(" font \",13\" textcolor rgb \"#111111\"\n", gp->body);
}

static void put_output(FILE *f, const char *name, const char *ext)
{
    char *file = xr_mem_printf("%s.%s", name, ext);

    fputs("set output ", f);
    xr_gp_string(f, file);
    fputc('\n', f);
    free(file);
}

/* Draw the body to NAME.svg and NAME.png. */
static void chart_end(struct xr_plot *gp, int w, int h)
{
    const char *name = gp->r->charts[gp->r->ncharts - 1].name;

    fclose(gp->body);
    fprintf(gp->f, "\n# --- %s ---\n", name);
    fprintf(gp->f, "set terminal svg size %d,%d font \"sans-serif,12\" noenhanced "
                   "background rgb \"white\"\n", w, h);
    put_output(gp->f, name, "svg");
    fputs(gp->bodybuf, gp->f);
    fprintf(gp->f, "if (xr_cairo) {\n    set terminal pngcairo size %d,%d font \"sans,10\" "
                   "noenhanced background rgb \"white\"\n} else {\n    set terminal png size "
                   "%d,%d noenhanced background rgb \"white\"\n}\n", w, h, w, h);
    put_output(gp->f, name, "png");
    fputs(gp->bodybuf, gp->f);
    fputs("set output\n", gp->f);
    free(gp->bodybuf);
    gp->bodybuf = NULL;
}

/* --- bar charts ------------------------------------------------------------------ */

static int max_label(char **cat, size_t n, int per_token)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (!per_token) {
            m = strlen(cat[i]) > m ? strlen(cat[i]) : m;
            continue;
        }
        char *copy = xr_mem_strdup(cat[i]), *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
            m = strlen(t) > m ? strlen(t) : m;
        free(copy);
    }
    return (int)m;
}

/* Horizontal, one option per line, when there are few configurations:
 * each token is cut to its slot. Otherwise rotated single lines, with room
 * on the left for the first one. Returns the chart's extra height. */
static int put_xtics(FILE *f, char **cat, size_t n)
{
    size_t lines = 1, slot = (XR_PLOT_W - 120) / (n ? n : 1) / 7;
    int multiline, extra;

    for (size_t i = 0; i < n; i++)
        lines = count_tokens(cat[i]) > lines ? count_tokens(cat[i]) : lines;
    multiline = n <= 8 && lines <= 5;
    fputs("set xtics (", f);
    for (size_t i = 0; i < n; i++) {
        put_tic_label(f, cat[i], multiline, multiline ? (slot > 40 ? 40 : slot) : 40);
        fprintf(f, " %zu%s", i, i + 1 < n ? ", " : "");
    }
    fputs(") scale 0\n", f);
    if (multiline) {
        /* gnuplot's automatic margin counts one line per tic label; the
         * key sits below the labels */
        fprintf(f, "set bmargin %zu\n", lines + 3);
        return (int)lines * 16;
    }
    int rot = n > 30 ? 90 : 30;
    int len = max_label(cat, n, 0), len0 = (int)strlen(cat[0]);

    len = len > 40 ? 40 : len;
    len0 = len0 > 40 ? 40 : len0;
    fprintf(f, "set xtics rotate by %d right font \",%d\"\n", rot, n > 30 ? 9 : 11);
    if (rot == 30)          /* the first label reaches left of the axis */
        fprintf(f, "set lmargin %d\n", len0 * 8 / 10 > 10 ? len0 * 8 / 10 : 10);
    extra = (int)(len * 7 * (rot == 90 ? 1.0 : 0.5));
    return extra;
}

static int bars_draw(struct xr_plot *gp, const struct xr_bars *b, int *width)
{
    FILE *f = gp->body;
    double w = 0.8 / (double)b->nser, top = 0;
    unsigned first = gp->nblock + 1;
    int extra, labels = b->text && b->ncat * b->nser <= 24;

    for (size_t s = 0; s < b->nser; s++) {
        block_begin(gp);
        for (size_t i = 0; i < b->ncat; i++) {
            double v = b->val[i * b->nser + s];

            if (isnan(v))
                continue;
            top = v > top ? v : top;
            fprintf(gp->f, "%.6f %.9g ", (double)i - 0.4 + w * ((double)s + 0.5), v);
            put_data_text(gp->f, b->text ? b->text[i * b->nser + s] : "");
            fputc('\n', gp->f);
        }
        block_end(gp);
    }
    if (top <= 0 && isnan(b->ymax))
        top = 1;
    *width = b->ncat > 30 ? (int)(b->ncat * 14 + 200) : XR_PLOT_W;
    extra = put_xtics(f, b->cat, b->ncat);
    /* a chart of one or two configurations keeps its bars slim */
    double pad = b->ncat < 4 ? 0.6 + (4.0 - (double)b->ncat) / 2 : 0.6;
    fprintf(f, "set xrange [%f:%f]\n", -pad, (double)b->ncat - 1 + pad);
    fprintf(f, "set yrange [0:%.9g]\n", isnan(b->ymax) ? top * 1.15 : b->ymax);
    fputs("set ylabel ", f);
    xr_gp_string(f, b->ylabel);
    fputc('\n', f);
    fprintf(f, "set boxwidth %f absolute\n", w * 0.92);
    fputs("set key below center horizontal samplen 1.5\n", f);
    fputs("plot ", f);
    for (size_t s = 0; s < b->nser; s++) {
        fprintf(f, "%s$d%zu using 1:2 with boxes fillcolor rgb \"%s\" title ", s ? ", " : "",
                first + s, b->ser_color[s]);
        xr_gp_string(f, b->ser_name[s] ? b->ser_name[s] : "");
        if (labels)
            fprintf(f, ", $d%zu using 1:2:3 with labels offset 0,0.7 font \",%d\" "
                       "textcolor rgb \"#333333\" notitle", first + s,
                    b->ncat * b->nser > 12 ? 8 : 10);
    }
    fputc('\n', f);
    return extra;
}

/* --- line charts ------------------------------------------------------------------ */

void xr_lines_free(struct xr_linechart *L)
{
    for (size_t i = 0; i < L->nc; i++) {
        free(L->c[i].label);
        free(L->c[i].x);
        free(L->c[i].y);
    }
    free(L->c);
    L->c = NULL;
    L->nc = 0;
}

struct xr_curve *xr_curve_add(struct xr_linechart *L, char *label, const char *color, int dash,
                              size_t cap)
{
    struct xr_curve *cv = xr_mem_push(&L->c, &L->nc, sizeof *cv);

    cv->label = label;
    cv->color = color;
    cv->dash = dash;
    cv->x = xr_mem_alloc((cap + 1) * sizeof *cv->x);
    cv->y = xr_mem_alloc((cap + 1) * sizeof *cv->y);
    return cv;
}

void xr_curve_point(struct xr_curve *cv, const struct xr_linechart *L, double x, double y)
{
    if (isnan(x) || isnan(y) || isinf(x) || isinf(y) || (L->logx && x <= 0) || (L->logy && y <= 0))
        return;
    cv->x[cv->n] = x;
    cv->y[cv->n] = y;
    cv->n++;
}

size_t xr_lines_drawable(const struct xr_linechart *L)
{
    size_t n = 0;

    for (size_t i = 0; i < L->nc; i++)
        n += L->c[i].n > 0;
    return n;
}

/* Decade tics of a log latency axis in µs, labelled with their unit, so
 * that 100000 reads as "100 ms". */
static void put_lat_tics(FILE *f, const char *axis, double lo, double hi)
{
    static const char *const unit[] = { "ns", "µs", "ms", "s" };
    int k0 = (int)floor(log10(lo)), k1 = (int)ceil(log10(hi));

    k0 = k0 < -3 ? -3 : k0;
    k1 = k1 > 8 ? 8 : k1;
    fprintf(f, "set %stics 10 format \"\"\nset %stics add (", axis, axis);
    for (int k = k0; k <= k1; k++) {
        int u = (k + 3) / 3 > 3 ? 3 : (k + 3) / 3;     /* 10^-3 µs is 1 ns */
        int mant = k + 3 - 3 * u;

        fprintf(f, "\"%.0f %s\" %g%s", pow(10, mant), unit[u], pow(10, k), k < k1 ? ", " : ")\n");
    }
}

static void data_range(const struct xr_linechart *L, int y, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < L->nc; i++)
        for (size_t k = 0; k < L->c[i].n; k++) {
            double v = y ? L->c[i].y[k] : L->c[i].x[k];

            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
        }
}

static void put_range(FILE *f, const char *axis, double lo, double hi)
{
    char a[32] = "*", b[32] = "*";

    if (!isnan(lo))
        snprintf(a, sizeof a, "%.9g", lo);
    if (!isnan(hi))
        snprintf(b, sizeof b, "%.9g", hi);
    fprintf(f, "set %srange [%s:%s]\n", axis, a, b);
}

static int lines_draw(struct xr_plot *gp, const struct xr_linechart *L)
{
    FILE *f = gp->body;
    unsigned first = gp->nblock + 1;
    size_t shown = 0, maxlen = 10;
    int rows, cols;

    for (size_t i = 0; i < L->nc; i++) {
        if (!L->c[i].n)
            continue;
        block_begin(gp);
        for (size_t k = 0; k < L->c[i].n; k++)
            fprintf(gp->f, "%.9g %.9g\n", L->c[i].x[k], L->c[i].y[k]);
        block_end(gp);
        maxlen = strlen(L->c[i].label) > maxlen ? strlen(L->c[i].label) : maxlen;
    }
    fputs("set xlabel ", f);
    xr_gp_string(f, L->xlabel);
    fputs(" offset 0,0.3\nset ylabel ", f);
    xr_gp_string(f, L->ylabel);
    fputc('\n', f);
    if (L->logx)
        fputs("set logscale x 10\nset mxtics 10\nset grid xtics lw 1 lc rgb \"#e4e4e4\"\n", f);
    if (L->logy)
        fputs("set logscale y 10\nset mytics 10\n", f);
    for (int y = 0; y < 2; y++) {
        double lo, hi;

        if (!(L->lat_axes & (y ? XR_LAT_Y : XR_LAT_X)))
            continue;
        data_range(L, y, &lo, &hi);
        put_lat_tics(f, y ? "y" : "x", lo, hi);
    }
    if (L->xtics)
        fprintf(f, "%s\n", L->xtics);
    if (!isnan(L->xmin))
        put_range(f, "x", L->xmin, NAN);
    put_range(f, "y", L->ymin, L->ymax);
    cols = (int)((XR_PLOT_W - 80) / (maxlen * 8 + 80));
    cols = cols < 1 ? 1 : cols > 3 ? 3 : cols;
    rows = (int)((xr_lines_drawable(L) + cols - 1) / cols);
    /* below the plot, clear of the axis label; one to three columns */
    fprintf(f, "set key below left Left reverse maxcols %d maxrows %d samplen 3 spacing 1.1 "
               "height 1\n", cols, rows);
    fputs("plot ", f);
    for (size_t i = 0; i < L->nc; i++) {
        const struct xr_curve *cv = &L->c[i];

        if (!cv->n)
            continue;
        fprintf(f, "%s$d%zu using 1:2 with %s lw 2 lc rgb \"%s\" dt %d", shown ? ", \\\n    " : "",
                first + shown, cv->points ? "linespoints pt 7 ps 0.6" : L->with, cv->color,
                cv->dash);
        fputs(" title ", f);
        xr_gp_string(f, cv->label);
        shown++;
    }
    fputc('\n', f);
    return rows * 18 + 10;
}

/* --- titles ------------------------------------------------------------------ */

char *xr_plot_group_sub(const struct xr_group *g, size_t shown, size_t total, const char *what)
{
    char *diff, *cut = NULL, *out;

    if (g->ncfgs == 1)
        diff = xr_mem_printf("1 configuration (%s)", g->cfgs[0].label);
    else if (*g->differ)
        diff = xr_mem_printf("%zu configurations differing in %s", g->ncfgs, g->differ);
    else
        diff = xr_mem_printf("%zu configurations with the same options", g->ncfgs);
    if (shown < total)
        cut = xr_mem_printf(" · %zu of %zu %s shown (all in the table)", shown, total, what);
    out = xr_mem_printf("%s · %s%s", *g->versions ? g->versions : "fio", diff, cut ? cut : "");
    free(diff);
    free(cut);
    return out;
}

char *xr_plot_title(const struct xr_report *r, int g, const char *what)
{
    return g >= 0 ? xr_mem_printf("%s: %s", r->groups[g].name, what)
                  : xr_mem_printf("fio logs: %s", what);
}


void xr_plot_dirs(const struct xr_group *g, int *dirs, size_t *nd)
{
    *nd = 0;
    for (int d = 0; d < XR_NDIR; d++)
        if (g->dirs & (1u << d))
            dirs[(*nd)++] = d;
}

char *xr_plot_curve_label(const struct xr_group *g, size_t i, int d)
{
    /* the direction only when the workload has more than one */
    if (g->dirs & (g->dirs - 1))
        return xr_mem_printf("%s %s", g->cfgs[i].label, xr_ddir_name[d]);
    return xr_mem_strdup(g->cfgs[i].label);
}

void xr_bars_free(struct xr_bars *b)
{
    for (size_t i = 0; b->text && i < b->ncat * b->nser; i++)
        free(b->text[i]);
    free(b->text);
    free(b->val);
    free(b->cat);
}

void xr_bars_alloc(struct xr_bars *b, size_t ncat, size_t nser)
{
    b->ncat = ncat;
    b->nser = nser;
    b->ymax = NAN;
    b->cat = xr_mem_alloc((ncat + 1) * sizeof *b->cat);
    b->val = xr_mem_alloc((ncat * nser + 1) * sizeof *b->val);
    b->text = xr_mem_alloc((ncat * nser + 1) * sizeof *b->text);
}

void xr_plot_bars(struct xr_plot *gp, const struct xr_chart_spec *spec, const struct xr_bars *b)
{
    int width, extra;

    chart_begin(gp, spec);
    extra = bars_draw(gp, b, &width);
    chart_end(gp, width, 420 + extra);
}

void xr_plot_lines(struct xr_plot *gp, const struct xr_chart_spec *spec,
                   const struct xr_linechart *L)
{
    int extra;

    chart_begin(gp, spec);
    extra = lines_draw(gp, L);
    chart_end(gp, XR_PLOT_W, 440 + extra);
}
