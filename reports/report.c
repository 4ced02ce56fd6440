/* report.c - `xdreport report -o OUTDIR [--title T] INPUT...`
 *
 * Reads every input it can, then writes whatever it read: a bad file, a
 * missing log or a missing gnuplot costs its own part of the report, not
 * the report. Each problem is one line on stderr naming the file, and the
 * exit status is then 1 (after the report is written); 2 is for usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format.h"
#include "mem.h"
#include "outfile.h"
#include "report.h"

static void usage(FILE *f)
{
    fputs("usage: xdreport report -o OUTDIR [--title TITLE] INPUT...\n"
          "\n"
          "INPUT is a file or a directory (its *.json and *.log files, not recursive):\n"
          "fio JSON or json+ output (also --status-interval streams and client/server\n"
          "output), xdevice stats JSON (xd_stats=FILE), fio logs (*_lat, *_clat, *_slat,\n"
          "*_iops, *_bw, *_clat_hist .N.log). Files named RUN.rK.json (K = 1, 2...) are\n"
          "repetitions of one configuration; make bench's NAME.xdevice.rK.json and\n"
          "NAME.reference.rK.json are paired, xdevice against fio's engine.\n"
          "\n"
          "The report opens with a recommendation per workload (the best configuration,\n"
          "those tied with it, its ratio to its fio reference with a 95% interval, why)\n"
          "and warnings from xd_stats where a configuration does not do what it says.\n"
          "\n"
          "Writes OUTDIR/report.html (self-contained), OUTDIR/summary.md, OUTDIR/figures.csv\n"
          "(every figure), OUTDIR/NAME.svg and NAME.png per chart, and OUTDIR/charts.gp\n"
          "(run `gnuplot charts.gp` in OUTDIR to redraw them).\n"
          "\n"
          "Exit status: 0 all inputs read; 1 some input or gnuplot failed (the report\n"
          "still holds the rest); 2 usage.\n", f);
}

void xr_report_problem(struct xr_report *r, const char *fmt, ...)
{
    va_list ap;
    char *line;

    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0)
        line = xr_mem_strdup("xdreport: out of memory");
    va_end(ap);
    fprintf(stderr, "%s\n", line);
    *(char **)xr_mem_push(&r->problems, &r->nproblems, sizeof line) = line;
}

/* The files already taken, by device and inode: a file given twice, or
 * as itself and through its directory, is one run, not two configurations
 * "r #2" and "r #3" with the same figures. */
struct file_id {
    dev_t dev;
    ino_t ino;
    char *path;
};

struct seen {
    struct file_id *ids;
    size_t n;
};

static void add_input(struct xr_report *r, struct seen *seen, const char *path)
{
    struct stat st;
    char a[XR_ESCAPE_LEN], b[XR_ESCAPE_LEN];

    if (stat(path, &st) == 0) {     /* a missing file is named when it fails to load */
        for (size_t i = 0; i < seen->n; i++)
            if (seen->ids[i].dev == st.st_dev && seen->ids[i].ino == st.st_ino) {
                xr_escape(path, a, sizeof a);
                if (strcmp(path, seen->ids[i].path))
                    fprintf(stderr, "xdreport: note: %s is the same file as %s; read once\n", a,
                            xr_escape(seen->ids[i].path, b, sizeof b));
                else
                    fprintf(stderr, "xdreport: note: %s is given twice; read once\n", a);
                return;
            }
        *(struct file_id *)xr_mem_push(&seen->ids, &seen->n, sizeof *seen->ids) =
            (struct file_id){ st.st_dev, st.st_ino, xr_mem_strdup(path) };
    }
    *(char **)xr_mem_push(&r->inputs, &r->ninputs, sizeof(char *)) = xr_mem_strdup(path);
}

static int wanted(const char *name)
{
    size_t n = strlen(name);

    if (name[0] == '.')
        return 0;
    return (n > 5 && strcmp(name + n - 5, ".json") == 0) || (n > 4 && strcmp(name + n - 4, ".log") == 0);
}

static int by_version(const void *a, const void *b)
{
    /* s2.json before s10.json */
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json and *.log files of a directory, not recursive, in name order. */
static void add_directory(struct xr_report *r, struct seen *seen, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
    size_t n = 0;

    if (!d) {
        xr_report_problem(r, "xdreport: %s: %s", xr_escape(dir, shown, sizeof shown),
                          strerror(errno));
        return;
    }
    while ((e = readdir(d))) {
        char *path;
        struct stat st;

        if (!wanted(e->d_name))
            continue;
        path = xr_mem_printf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            *(char **)xr_mem_push(&names, &n, sizeof *names) = path;
        else
            free(path);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_version);
    if (!n)
        xr_report_problem(r, "xdreport: %s: no *.json or *.log files in it",
                          xr_escape(dir, shown, sizeof shown));
    for (size_t i = 0; i < n; i++) {
        add_input(r, seen, names[i]);
        free(names[i]);
    }
    free(names);
}

static void expand_inputs(struct xr_report *r, char **args, int nargs)
{
    struct seen seen = { 0 };

    for (int i = 0; i < nargs; i++) {
        struct stat st;

        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode))
            add_directory(r, &seen, args[i]);
        else
            add_input(r, &seen, args[i]);
    }
    for (size_t i = 0; i < seen.n; i++)
        free(seen.ids[i].path);
    free(seen.ids);
}

static void load_inputs(struct xr_report *r)
{
    char err[1024];

    for (size_t i = 0; i < r->ninputs; i++)
        if (xr_load(&r->set, r->inputs[i], err, sizeof err))
            xr_report_problem(r, "%s", err);
    /* said only where no input said why: one line per bad input */
    if (!r->set.ndocs && !r->set.nstats && !r->set.nseries && !r->nproblems)
        xr_report_problem(r, "xdreport: nothing to report: none of the inputs holds results");
}

static char *default_title(const struct xr_report *r)
{
    char *t = xr_mem_strdup("fio results");

    for (size_t g = 0; g < r->ngroups && g < 3; g++) {
        char *next = xr_mem_printf("%s%s%s", t, g ? ", " : ": ", r->groups[g].name);
        free(t);
        t = next;
    }
    if (r->ngroups > 3) {
        char *next = xr_mem_printf("%s and %zu more", t, r->ngroups - 3);
        free(t);
        t = next;
    }
    return t;
}

static void report_free(struct xr_report *r)
{
    xr_charts_free(r);
    xr_warnings_free(r);
    xr_verdict_free(r);
    xr_timeline_free(r);
    xr_configs_free(r);
    xr_set_free(&r->set);
    for (size_t i = 0; i < r->ninputs; i++)
        free(r->inputs[i]);
    for (size_t i = 0; i < r->nproblems; i++)
        free(r->problems[i]);
    free(r->inputs);
    free(r->problems);
    free(r->title);
}

int xr_report_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "title", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct xr_report r = { 0 };
    const char *title = NULL;
    int opt, rc;

    char shown[XR_ESCAPE_LEN];
    optind = 1;
    opterr = 0; /* one line of our own, not getopt's and the usage text too */
    while ((opt = getopt_long(argc, argv, "o:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'o': r.outdir = optarg; break;
        case 't': title = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "xdreport: report: %s is not one of its options or lacks its value; allowed: -o OUTDIR, --title TITLE (xdreport report --help)\n",
                    xr_escape(argv[optind - 1], shown, sizeof(shown)));
            return 2;
        }
    }
    if (!r.outdir || optind == argc) {
        fprintf(stderr, "xdreport: report needs %s (xdreport report --help)\n",
                r.outdir ? "at least one INPUT" : "-o OUTDIR");
        return 2;
    }
    int made;
    if (xr_out_dir(r.outdir, &made)) {
        fprintf(stderr, "xdreport: -o %s: cannot write the report there: %s\n",
                xr_escape(r.outdir, shown, sizeof(shown)), xr_out_strerror(errno));
        return 1;
    }
    expand_inputs(&r, argv + optind, argc - optind);
    load_inputs(&r);
    xr_configs_build(&r);
    xr_verdict_build(&r);
    xr_warnings_build(&r);
    xr_timeline_build(&r);
    r.title = title ? xr_mem_strdup(title) : default_title(&r);
    xr_charts_render(&r);
    xr_summary_write(&r);
    xr_csv_write(&r);
    xr_hosts_write(&r);
    xr_html_write(&r);
    rc = r.nproblems ? 1 : 0;
    report_free(&r);
    return rc;
}
