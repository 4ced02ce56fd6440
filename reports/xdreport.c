/* xdreport.c - the xdreport command: fio and xdevice results, read by
 * people (report) and by CI (compare).
 *
 *   xdreport report -o OUTDIR [--title T] INPUT...    charts, HTML, Markdown, CSV
 *   xdreport compare [OPTIONS] BASE NEW               did NEW get slower than BASE?
 *   xdreport convergence -o OUTDIR HISTORY.json       xdtune's best-so-far by trial
 *
 * Each subcommand gets argv from its own name on, so argv[0] is "report"
 * or "compare".
 */
#include <stdio.h>
#include <string.h>

#include "compare.h"
#include "format.h"
#include "report.h"

static void usage(FILE *f)
{
    fputs("usage: xdreport report -o OUTDIR [--title TITLE] INPUT...\n"
          "       xdreport compare [OPTIONS] BASE NEW\n"
          "       xdreport convergence -o OUTDIR HISTORY.json\n"
          "\n"
          "report   charts (SVG, PNG via gnuplot), report.html, summary.md and figures.csv\n"
          "         from fio JSON/json+ output, fio logs and xdevice stats\n"
          "compare  compare two sets of runs and flag regressions (exit 1)\n"
          "convergence  xdtune's history.json: best so far against trial (SVG, PNG)\n"
          "\n"
          "`xdreport COMMAND --help` describes each.\n", f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "report") == 0)
        return xr_report_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "compare") == 0)
        return xr_compare_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "convergence") == 0)
        return xr_convergence_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    char shown[XR_ESCAPE_LEN];
    fprintf(stderr, "xdreport: unknown command \"%s\"; use report, compare or convergence (xdreport --help)\n",
            xr_escape(argv[1], shown, sizeof(shown)));
    return 2;
}
