/* plot.h - writing charts into the gnuplot script, for charts.c and the
 * chart_*.c files that decide what each chart shows.
 *
 * A chart is a body of gnuplot commands written once and drawn twice, to
 * NAME.svg and NAME.png; its data goes into the script as datablocks. Two
 * kinds cover the report: grouped bars (one group per configuration) and
 * lines (percentiles, histograms, time series).
 */
#ifndef XR_PLOT_H
#define XR_PLOT_H

#include <stdio.h>

#include "report.h"

#define XR_PLOT_W 1000       /* px; wide bar charts grow past it */
#define XR_MAX_CURVES 12     /* more lines than this in one chart is a tangle */
#define XR_MAX_SERIES 3      /* bars per group */

extern const char *const xr_dir_color[XR_NDIR];
/* The paired bars: xdevice and its fio reference, apart from the palette */
#define XR_COLOR_XDEVICE "#1f2a37"
#define XR_COLOR_REFERENCE "#a8b1bd"

struct xr_plot {             /* the script being written */
    FILE *f;                 /* charts.gp */
    FILE *body;              /* the chart being written, drawn twice */
    char *bodybuf;
    size_t bodylen;
    unsigned nblock;         /* datablocks so far: $d1, $d2... */
    struct xr_report *r;
};

struct xr_chart_spec {       /* what every chart has besides its data */
    const char *name;        /* file name base */
    const char *title;       /* "randread: IOPS per configuration" */
    const char *sub;         /* second title line: fio version, what differs */
    const char *note;        /* how to read it, under the chart in the HTML */
    int group, section;      /* where it goes in the report */
};

struct xr_bars {
    const char *ylabel;
    size_t ncat;
    char **cat;              /* category labels (not owned) */
    size_t nser;
    const char *ser_name[XR_MAX_SERIES];
    const char *ser_color[XR_MAX_SERIES];
    double *val;             /* [cat * nser + ser], in axis units; NAN: no bar */
    char **text;             /* the same shape: the figure above each bar */
    double ymax;             /* fixed top of the axis, or NAN */
};

struct xr_curve {
    char *label;
    const char *color;
    int dash;                /* gnuplot dashtype: 1 solid (read), 2 dashed (write)... */
    int points;              /* draw the points too */
    size_t n;
    double *x, *y;
};

enum { XR_LAT_X = 1, XR_LAT_Y = 2 };

struct xr_linechart {
    const char *xlabel, *ylabel;
    int logx, logy;
    int lat_axes;            /* XR_LAT_X, XR_LAT_Y: log axis in µs, labelled "1 ms"... */
    double xmin, ymin, ymax; /* NAN: gnuplot's choice */
    const char *with;        /* "lines", "steps", "linespoints ..." */
    const char *xtics;       /* explicit "set xtics ..." commands, or NULL */
    struct xr_curve *c;
    size_t nc;
};

/* Draw a chart (registered in p->r->charts). */
void xr_plot_bars(struct xr_plot *p, const struct xr_chart_spec *spec, const struct xr_bars *b);
void xr_plot_lines(struct xr_plot *p, const struct xr_chart_spec *spec,
                   const struct xr_linechart *L);

void xr_bars_alloc(struct xr_bars *b, size_t ncat, size_t nser);
void xr_bars_free(struct xr_bars *b);

/* A new curve with room for cap points; label is taken over. */
struct xr_curve *xr_curve_add(struct xr_linechart *L, char *label, const char *color, int dash,
                              size_t cap);
/* Add a point where the axes can show it (log axes: positive values only). */
void xr_curve_point(struct xr_curve *cv, const struct xr_linechart *L, double x, double y);
size_t xr_lines_drawable(const struct xr_linechart *L);  /* curves with points */
void xr_lines_free(struct xr_linechart *L);

/* Titles: "randread: WHAT" (or "fio logs: WHAT" for group -1), and the
 * second line "fio-3.33 · 3 configurations differing in ioengine" noting
 * when only the first shown of total lines are drawn. */
char *xr_plot_title(const struct xr_report *r, int group, const char *what);
char *xr_plot_group_sub(const struct xr_group *g, size_t shown, size_t total, const char *what);

/* The directions a workload did I/O in, and a curve's label: the
 * configuration's, plus the direction when the workload has several. */
void xr_plot_dirs(const struct xr_group *g, int *dirs, size_t *nd);
char *xr_plot_curve_label(const struct xr_group *g, size_t cfg, int ddir);

/* chart_fio.c, chart_time.c, chart_xd.c */
void xr_charts_workload(struct xr_plot *p, int group);
void xr_charts_time(struct xr_plot *p, int group);   /* group -1: logs no job names */
void xr_charts_xdevice(struct xr_plot *p);

#endif
