/* convergence.c - `xdreport convergence`: xdtune's history.json drawn as
 * best-so-far against trial number (with every trial's own figure as a
 * point, re-measurements of a configuration run before marked apart, and
 * failed trials marked), one gnuplot run into SVG and PNG.
 *
 * The best so far of the search is of single runs, and a lucky one may
 * lead it; the winner is declared on the finalists' medians once they are
 * measured again. So each is its own line, named for what it is (the
 * trials' "best_of": "search" or "finalists"), and the winner is drawn
 * where the finalists' line ends: a single line ending at a lucky run
 * that never became a finalist read as the search's result.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "../backends/core/fileutil.h"
#include "load.h"
#include "mem.h"
#include "outfile.h"
#include "report.h"

static char *slurp(const char *path)
{
    FILE *f = xd_fopen_input(path);
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        char *grown = realloc(buf, len + got + 1);
        if (!grown) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = grown;
        memcpy(buf + len, chunk, got);
        len += got;
        buf[len] = 0;
    }
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e || (!buf && !(buf = calloc(1, 1)))) { /* empty: parsed, and named as such */
        free(buf);
        errno = e ? e : ENOMEM;
        return NULL;
    }
    return buf;
}

static double number(const cJSON *o, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Is t a configuration an earlier trial already ran (a finalist measured
 * again, a daemon's revert)? Its point is then not a new candidate. */
static int remeasured(const cJSON *trials, const cJSON *t)
{
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(t, "config"), *e;
    if (!config)
        return 0;
    cJSON_ArrayForEach(e, trials) {
        if (e == t)
            return 0;
        if (cJSON_Compare(cJSON_GetObjectItemCaseSensitive(e, "config"), config, 1))
            return 1;
    }
    return 0;
}

/* The successful trials' own figures, first runs of a configuration
 * (again 0) or re-measurements (again 1). */
static unsigned write_points(FILE *f, const cJSON *trials, const char *field, int again)
{
    const cJSON *t;
    unsigned n = 0;
    cJSON_ArrayForEach(t, trials) {
        const cJSON *fig = cJSON_GetObjectItemCaseSensitive(t, "figures");
        if (fig && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "failed")) &&
            remeasured(trials, t) == again) {
            fprintf(f, "%g %g\n", number(t, "trial", 0), number(fig, field, 0));
            n++;
        }
    }
    return n;
}

/* Whether t's best so far is the finalists' (medians of re-measured runs)
 * rather than the search's; histories before "best_of" have the search's. */
static int of_finalists(const cJSON *t)
{
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "best_of");
    return cJSON_IsString(of) && strcmp(of->valuestring, "finalists") == 0;
}

/* What the chart holds, for its legend. */
struct drawn {
    unsigned failed, again, finalists;
    int single_runs;    /* every point of the search's line is one run */
    double winner_runs; /* 0: no winner in the history */
};

/* The best-so-far points of the search (finalists 0) or of the finalists. */
static unsigned write_best(FILE *f, const cJSON *trials, int p99, int finalists, int *single_runs)
{
    const cJSON *t;
    unsigned n = 0;
    *single_runs = 1;
    cJSON_ArrayForEach(t, trials) {
        double b = number(t, "best_so_far", NAN);
        if (!isfinite(b) || of_finalists(t) != finalists) /* the same points count_best counts */
            continue;
        fprintf(f, "%g %g\n", number(t, "trial", 0), p99 ? -b : b);
        *single_runs &= number(t, "best_runs", 0) == 1;
        n++;
    }
    return n;
}

/* The declared winner's median objective, at the last trial. */
static double write_winner(FILE *f, const cJSON *trials, const cJSON *best, int p99)
{
    double objective = number(best, "objective", NAN), last = 0;
    const cJSON *t;
    if (!isfinite(objective))
        return 0;
    cJSON_ArrayForEach(t, trials)
        last = fmax(last, number(t, "trial", 0));
    fprintf(f, "%g %g\n", last, p99 ? -objective : objective);
    return fmax(number(best, "measurements", 1), 1);
}

/* Datablocks $trials (trial, own figure: first runs), $again (re-measured
 * configurations), $best (trial, the search's best so far), $finalists
 * (the best finalist's median), $winner (the declared one), $failed. */
static void write_data(FILE *f, const cJSON *trials, const cJSON *best, int p99, struct drawn *d)
{
    const cJSON *t;
    const char *field = p99 ? "p99_us" : "iops";
    int unused;
    fputs("$trials << EOD\n", f);
    write_points(f, trials, field, 0);
    fputs("EOD\n$again << EOD\n", f);
    d->again = write_points(f, trials, field, 1);
    fputs("EOD\n$best << EOD\n", f);
    write_best(f, trials, p99, 0, &d->single_runs);
    fputs("EOD\n$finalists << EOD\n", f);
    d->finalists = write_best(f, trials, p99, 1, &unused);
    fputs("EOD\n$winner << EOD\n", f);
    d->winner_runs = write_winner(f, trials, best, p99);
    fputs("EOD\n$failed << EOD\n", f);
    d->failed = 0;
    cJSON_ArrayForEach(t, trials)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "failed"))) {
            fprintf(f, "%g\n", number(t, "trial", 0));
            ++d->failed;
        }
    fputs("EOD\n", f);
}

/* gnuplot script in outdir: 0, 127 when gnuplot cannot be run, else -1. */
static int draw(const char *outdir, const char *script)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(outdir) == 0)
            execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127); /* said by the caller, in its one line */
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return 127;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The job's name comes from the history file: only ever in single quotes
 * (xr_gp_string), where gnuplot runs no `command` in it. */
static void put_title(FILE *f, const char *job, unsigned nfailed)
{
    char *title = xr_mem_printf("xdtune: best so far by trial%s%s (%u failed)", job ? " - " : "",
                                job ? job : "", nfailed);

    fputs("set title ", f);
    xr_gp_string(f, title);
    fputc('\n', f);
    free(title);
}

static const char *body =
    "set border 3 lw 1 lc rgb \"#777777\"\n"
    "set tics nomirror out scale 0.5\n"
    "set grid ytics lw 1 lc rgb \"#e4e4e4\"\n"
    "set key below\n" /* never over the points */

    "set xlabel \"trial\"\n";

/* Trials with a best-so-far figure: the points of the line. */
static int count_best(const cJSON *trials)
{
    const cJSON *t;
    int n = 0;
    cJSON_ArrayForEach(t, trials)
        n += isfinite(number(t, "best_so_far", NAN));
    return n;
}

/* The plot command: each series the history holds, named for what it is. */
static void put_plot(FILE *f, const struct drawn *d)
{
    fputs("plot $trials using 1:2 with points pt 7 ps 0.7 lc rgb \"#9ab\" title \"trial (new configuration)\"", f);
    /* re-measured points: hollow, in another colour, so a finalist's
     * repeated runs are not read as new candidates */
    if (d->again)
        fputs(", $again using 1:2 with points pt 6 ps 1.0 lw 1.5 lc rgb \"#2a6\" title \"re-measured (a configuration run before)\"", f);
    fprintf(f, ", $best using 1:2 with steps lw 2 lc rgb \"#c33\" title \"%s\"",
            d->single_runs ? "best single run so far" : "best so far");
    if (d->finalists)
        fputs(", $finalists using 1:2 with steps lw 2 lc rgb \"#36c\" title \"best finalist (median of its runs)\"", f);
    if (d->winner_runs)
        fprintf(f, ", $winner using 1:2 with points pt 9 ps 2 lc rgb \"#36c\" title \"winner: median of %.0f run%s\"",
                d->winner_runs, d->winner_runs == 1 ? "" : "s");
    if (d->failed)
        fputs(", $failed using 1:(0) with points pt 2 ps 1.2 lc rgb \"#000\" title \"failed\"", f);
    fputc('\n', f);
}

/* The whole script: data, then the chart drawn to SVG and PNG. */
static void write_script(FILE *f, const cJSON *trials, const cJSON *info, const cJSON *best)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(info, "objective");
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(info, "job");
    int p99 = cJSON_IsString(obj) && strstr(obj->valuestring, "p99");
    const char *ylabel = p99 ? "p99 latency (us), lower is better" : "IOPS, higher is better";
    struct drawn d;
    fputs("# convergence.gp - written by `xdreport convergence`; run `gnuplot convergence.gp` here\n", f);
    write_data(f, trials, best, p99, &d);
    for (int png = 0; png < 2; png++) {
        fputs(png ? "set terminal png size 900,500 noenhanced\nset output \"convergence.png\"\n"
                  : "set terminal svg size 900,500 noenhanced background rgb \"white\"\n"
                    "set output \"convergence.svg\"\n", f);
        fputs("reset\n", f);
        fputs(body, f);
        put_title(f, cJSON_IsString(job) ? job->valuestring : NULL, d.failed);
        fprintf(f, "set ylabel \"%s\"\n", ylabel);
        put_plot(f, &d);
        fputs("set output\n", f);
    }
}

/* A failed run leaves nothing new behind: the script, what gnuplot drew of
 * the chart and OUTDIR itself when this run made it. */
static void remove_outputs(const char *outdir, int made)
{
    static const char *const names[] = {"convergence.gp", "convergence.svg", "convergence.png"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *path = xr_mem_printf("%s/%s", outdir, names[i]);
        unlink(path);
        free(path);
    }
    if (made)
        rmdir(outdir);
}

/* OUTDIR/convergence.{gp,svg,png} from a history's trials; 0, or 1 after
 * one line, with nothing left behind. */
static int draw_history(const char *input, const char *outdir, const cJSON *trials,
                        const cJSON *info, const cJSON *best)
{
    char shown[XR_ESCAPE_LEN], path[4200];
    int made;
    if (!count_best(trials)) {
        fprintf(stderr, "xdreport: convergence: %s: no successful trial to draw (%d trials); allowed: a history with a trial that gave a figure\n",
                xr_escape(input, shown, sizeof(shown)), cJSON_GetArraySize(trials));
        return 1;
    }
    if (xr_out_dir(outdir, &made)) {
        fprintf(stderr, "xdreport: convergence: -o %s: cannot write the chart there: %s\n",
                xr_escape(outdir, shown, sizeof(shown)), xr_out_strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/convergence.gp", outdir);
    FILE *f = xr_out_open(path);
    if (!f) {
        fprintf(stderr, "xdreport: convergence: %s: cannot write: %s\n",
                xr_escape(path, shown, sizeof(shown)), xr_out_strerror(errno));
        remove_outputs(outdir, made);
        return 1;
    }
    write_script(f, trials, info, best);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        fprintf(stderr, "xdreport: convergence: %s: write failed: %s\n",
                xr_escape(path, shown, sizeof(shown)), strerror(errno ? errno : EIO));
        remove_outputs(outdir, made);
        return 1;
    }
    int drawn = draw(outdir, "convergence.gp");
    if (drawn) {
        fprintf(stderr, drawn == 127 ? "xdreport: convergence: cannot run gnuplot for %s; install gnuplot-nox\n"
                                     : "xdreport: convergence: gnuplot failed on %s\n",
                xr_escape(path, shown, sizeof(shown)));
        remove_outputs(outdir, made);
        return 1;
    }
    return 0;
}

/* The parsed history, or NULL after one line. */
static cJSON *read_history(const char *input)
{
    char shown[XR_ESCAPE_LEN], why[200];
    char *text = slurp(input);
    if (!text) {
        fprintf(stderr, "xdreport: convergence: %s: cannot read: %s\n",
                xr_escape(input, shown, sizeof(shown)), strerror(errno));
        return NULL;
    }
    cJSON *root = xr_json_parse(text, strlen(text), why, sizeof why);
    free(text);
    if (!root)
        fprintf(stderr, "xdreport: convergence: %s: %s; allowed: an xdtune history.json\n",
                xr_escape(input, shown, sizeof(shown)), why);
    else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "trials"))) {
        fprintf(stderr, "xdreport: convergence: %s: not an xdtune history (no \"trials\" array); allowed: an xdtune history.json\n",
                xr_escape(input, shown, sizeof(shown)));
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

int xr_convergence_main(int argc, char **argv)
{
    const char *outdir = NULL, *input = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            outdir = argv[++i];
        else if (!strcmp(argv[i], "-o"))
            break; /* no OUTDIR: said below */
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: xdreport convergence -o OUTDIR HISTORY.json\n"
                 "draws xdtune's best-so-far against trial into OUTDIR/convergence.{svg,png}:\n"
                 "the search's best single run, the best finalist's median once the finalists\n"
                 "are measured again, and the declared winner");
            return 0;
        } else if (!input && argv[i][0] != '-')
            input = argv[i];
        else {
            char shown[XR_ESCAPE_LEN];
            fprintf(stderr, "xdreport: convergence: unexpected argument \"%s\"; allowed: -o OUTDIR HISTORY.json\n",
                    xr_escape(argv[i], shown, sizeof(shown)));
            return 2;
        }
    }
    if (!outdir || !input) {
        fprintf(stderr, "xdreport: convergence needs -o OUTDIR and one xdtune history.json; allowed: xdreport convergence -o OUTDIR HISTORY.json\n");
        return 2;
    }
    cJSON *root = read_history(input);
    if (!root)
        return 1;
    int rc = draw_history(input, outdir, cJSON_GetObjectItemCaseSensitive(root, "trials"),
                          cJSON_GetObjectItemCaseSensitive(root, "xdtune"),
                          cJSON_GetObjectItemCaseSensitive(root, "best"));
    cJSON_Delete(root);
    return rc;
}
