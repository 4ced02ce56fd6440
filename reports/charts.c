/* charts.c - every chart of the report, drawn by one gnuplot process.
 *
 * OUTDIR/charts.gp holds the data inline and draws each chart twice:
 * NAME.svg, which report.html inlines, and NAME.png for pasting elsewhere.
 * One process for all charts because gnuplot's start-up costs more than a
 * chart does. What each chart shows is decided in chart_fio.c,
 * chart_time.c and chart_xd.c; how it is written, in plot.c.
 *
 * Every chart's title names the workload, and its second line the fio
 * version and the options the configurations differ in; the configuration
 * labels (configs.c) carry the values.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "outfile.h"
#include "mem.h"
#include "plot.h"

static int in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char *copy, *save = NULL;
    int found = 0;

    if (!path)
        return 0;
    copy = xr_mem_strdup(path);
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *full = xr_mem_printf("%s/%s", *dir ? dir : ".", prog);

        found = access(full, X_OK) == 0;
        free(full);
    }
    free(copy);
    return found;
}

/* The first line of gnuplot's complaint that says where ("charts.gp" line N: ...). */
static char *first_error(const char *text)
{
    const char *p = strstr(text, "line ");
    const char *start, *end;

    if (!p)
        p = text;
    for (start = p; start > text && start[-1] != '\n'; start--)
        ;
    end = strchr(p, '\n');
    return end ? xr_mem_strndup(start, end - start) : xr_mem_strdup(start);
}

/* gnuplot charts.gp in OUTDIR; 0, or -1 with its error output in *errtext. */
static int run_gnuplot(const char *outdir, char **errtext)
{
    int pipefd[2], status;
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    *errtext = xr_mem_strdup("");
    if (pipe2(pipefd, O_CLOEXEC))
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        if (chdir(outdir) == 0 && devnull >= 0) {
            dup2(devnull, 1);
            dup2(pipefd[1], 2);
            execlp("gnuplot", "gnuplot", "charts.gp", (char *)NULL);
        }
        _exit(127);
    }
    close(pipefd[1]);
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        if (n <= 0 || len > 65536)         /* enough to find the first error */
            continue;
        *errtext = xr_mem_realloc(*errtext, len + n + 1);
        memcpy(*errtext + len, buf, n);
        len += n;
        (*errtext)[len] = '\0';
    }
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static char *read_svg(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *m;

    if (!f)
        return NULL;
    m = open_memstream(&buf, &len);
    if (!m) {
        fclose(f);
        return NULL;
    }
    for (int c; (c = getc(f)) != EOF;)
        putc(c, m);
    fclose(f);
    fclose(m);
    if (!strstr(buf, "</svg>")) {       /* gnuplot stopped mid-chart */
        free(buf);
        return NULL;
    }
    return buf;
}

static void remove_old(const struct xr_report *r)
{
    for (size_t i = 0; i < r->ncharts; i++) {
        char *svg = xr_mem_printf("%s/%s.svg", r->outdir, r->charts[i].name);
        char *png = xr_mem_printf("%s/%s.png", r->outdir, r->charts[i].name);

        unlink(svg);
        unlink(png);
        free(svg);
        free(png);
    }
}

static void draw(struct xr_report *r, const char *script)
{
    char *errtext, shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    if (!in_path("gnuplot")) {
        xr_report_problem(r, "xdreport: gnuplot not found; install gnuplot-nox (the charts' "
                          "script is in %s)", xr_escape(script, shown, sizeof shown));
        return;
    }
    remove_old(r);
    if (run_gnuplot(r->outdir, &errtext)) {
        char *line = first_error(errtext), said[XR_ESCAPE_LEN];

        xr_report_problem(r, "xdreport: %s: gnuplot failed: %s",
                          xr_escape(script, shown, sizeof shown),
                          xr_escape(*line ? line : "no message", said, sizeof said));
        free(line);
    }
    free(errtext);
    for (size_t i = 0; i < r->ncharts; i++) {
        char *svg = xr_mem_printf("%s/%s.svg", r->outdir, r->charts[i].name);

        r->charts[i].svg = read_svg(svg);
        r->charts_drawn += r->charts[i].svg != NULL;
        free(svg);
    }
}

static void write_header(FILE *f)
{
    fputs("# charts.gp - written by `xdreport report`. Run `gnuplot charts.gp` in this\n"
          "# directory to draw every chart again, as NAME.svg and NAME.png.\n"
          "set encoding utf8\n"
          "xr_cairo = strstrt(GPVAL_TERMINALS, \" pngcairo \") > 0\n", f);
}

static void write_charts(struct xr_plot *gp)
{
    for (size_t g = 0; g < gp->r->ngroups; g++)
        xr_charts_workload(gp, (int)g);
    for (size_t g = 0; g < gp->r->ngroups; g++)
        xr_charts_time(gp, (int)g);
    xr_charts_time(gp, -1);         /* logs that no job names */
    xr_charts_xdevice(gp);
}

void xr_charts_render(struct xr_report *r)
{
    char *script = xr_mem_printf("%s/charts.gp", r->outdir);
    struct xr_plot gp = { .r = r };
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */

    gp.f = xr_out_open(script);
    if (!gp.f) {
        xr_report_problem(r, "xdreport: %s: %s", xr_escape(script, shown, sizeof shown),
                          xr_out_strerror(errno));
        free(script);
        return;
    }
    write_header(gp.f);
    write_charts(&gp);
    if (fclose(gp.f)) {
        xr_report_problem(r, "xdreport: %s: %s", xr_escape(script, shown, sizeof shown),
                          strerror(errno));
        free(script);
        return;
    }
    if (r->ncharts)
        draw(r, script);
    free(script);
}

void xr_charts_free(struct xr_report *r)
{
    for (size_t i = 0; i < r->ncharts; i++) {
        free(r->charts[i].name);
        free(r->charts[i].title);
        free(r->charts[i].note);
        free(r->charts[i].svg);
    }
    free(r->charts);
}

