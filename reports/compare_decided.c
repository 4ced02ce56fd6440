/* compare_decided.c - `xdreport compare --verdicts FILE` and `--decided
 * FILE`: the verdicts of one look at the data, kept for the next.
 *
 * scripts/regress.sh looks at its runs more than once: rows left
 * inconclusive get more rounds and are judged again. A row that a look
 * already decided (regression, improvement or same) keeps that verdict:
 * judging it again on more data at a stricter level could only turn a
 * decision back into "inconclusive" (or flip it), and the split of alpha
 * across looks already pays for having looked. So each look writes every
 * row's verdict and the figures behind it, and the next reads them back.
 *
 * The file has one row a line, tab-separated:
 *   label/metric  verdict  ratio  interval-low  interval-high  pairs
 * Lines starting with # are comments. Rows not in the file, or there as
 * inconclusive or informational, are judged afresh.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_impl.h"
#include "../backends/core/fileutil.h"
#include "outfile.h"
#include "pairing.h"

#define HEADER "# xdreport compare verdicts: label/metric, verdict, ratio, interval, pairs\n"

static int decided(enum verdict v)
{
    return v == V_REGRESSION || v == V_IMPROVEMENT || v == V_SAME;
}

int xr_cmp_write_verdicts(const struct compare *c, const char *path)
{
    struct xr_out out;
    if (xr_out_begin(&out, path))
        return xr_cmp_out_refused("--verdicts", path);
    FILE *f = out.f;
    fputs(HEADER, f);
    for (size_t i = 0; i < c->nrows; i++) {
        const struct row *r = &c->rows[i];
        char name[300];
        fprintf(f, "%s\t%s\t%.17g\t%.17g\t%.17g\t%zu\n", xr_cmp_row_name(r, name, sizeof name),
                verdict_name[r->verdict], r->ratio, r->ci_lo, r->ci_hi, r->npairs);
    }
    if (xr_out_commit(&out))
        return xr_cmp_fail("--verdicts %s: cannot write it: %s", path, xr_out_strerror(errno));
    return 0;
}

static enum verdict verdict_of(const char *word)
{
    for (int v = 0; v < NVERDICT; v++)
        if (!strcmp(word, verdict_name[v]))
            return (enum verdict)v;
    return NVERDICT;
}

static struct row *row_named(struct compare *c, const char *name)
{
    for (size_t i = 0; i < c->nrows; i++) {
        char n[300];
        if (!strcmp(xr_cmp_row_name(&c->rows[i], n, sizeof n), name))
            return &c->rows[i];
    }
    return NULL;
}

/* The earlier decision replaces what this look found for the row. */
static void keep(struct row *r, enum verdict v, double ratio, double lo, double hi, size_t pairs)
{
    r->verdict = v;
    r->ratio = ratio;
    r->ci_lo = lo;
    r->ci_hi = hi;
    r->npairs = pairs;
    r->kept = 1;
    snprintf(r->why, sizeof r->why, "kept: decided %s at an earlier look", verdict_name[v]);
}

/* One line of the file; 0, or 2 when it is not one of ours. */
static int keep_line(struct compare *c, const char *path, char *line, size_t lineno)
{
    char *field[6], *save = NULL, *s = line;
    size_t n = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (!*line || *line == '#')
        return 0;
    for (char *tok; n < 6 && (tok = strtok_r(s, "\t", &save)); s = NULL)
        field[n++] = tok;
    enum verdict v = n == 6 ? verdict_of(field[1]) : NVERDICT;
    if (v == NVERDICT)
        return xr_cmp_fail("--decided %s: line %zu is not a row of --verdicts output", path,
                           lineno);
    struct row *r = row_named(c, field[0]);
    if (r && decided(v) && r->verdict != V_INFORMATIONAL)
        keep(r, v, strtod(field[2], NULL), strtod(field[3], NULL), strtod(field[4], NULL),
             (size_t)strtoul(field[5], NULL, 10));
    return 0;
}

int xr_cmp_keep_decided(struct compare *c, const char *path)
{
    FILE *f = xd_fopen_input(path);
    if (!f)
        return xr_cmp_fail("--decided %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0)
        rc = keep_line(c, path, line, ++lineno);
    free(line);
    fclose(f);
    return rc;
}
