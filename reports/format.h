/* format.h - numbers as xdreport writes them. */
#ifndef XR_FORMAT_H
#define XR_FORMAT_H

#include <stddef.h>
#include <stdio.h>

/* The shortest text that reads back as the same double, so figures.csv
 * holds exactly fio's numbers ("5936.231884", not "5936.2318839999998").
 * NAN gives "". */
void xr_fmt_num(char *buf, size_t len, double v);

/* About three significant digits with an SI suffix: "812", "12.3k", "1.23M". */
void xr_fmt_si(char *buf, size_t len, double v);

/* A latency in ns in the unit that suits it: "812 ns", "12.3 µs", "1.23 ms". */
void xr_fmt_ns(char *buf, size_t len, double ns);

/* Bytes in binary units: "512 B", "12.3 MiB". */
void xr_fmt_bytes(char *buf, size_t len, double bytes);

/* s for a message, as the library's xd_escape writes it: control bytes,
 * C1 controls, line separators, bidirectional overrides and bytes outside
 * valid UTF-8 as \\xHH, a backslash doubled, cut with "..." to fit len
 * (XR_ESCAPE_LEN holds a path). Returns buf. */
#define XR_ESCAPE_LEN 160
const char *xr_escape(const char *s, char *buf, size_t len);

/* s as one CSV field: quoted, its quotes doubled, when it holds a comma, a
 * quote or a line break. */
void xr_csv_field(FILE *f, const char *s);

/* s as a gnuplot string constant that gnuplot takes literally: in single
 * quotes, a quote doubled, control bytes as spaces. Every text from the
 * inputs (job names, option values, file names, fio's version) reaches
 * charts.gp and convergence.gp only through this: gnuplot runs `command`
 * inside double quotes and expands @macro outside quotes, so a result file
 * could otherwise run commands as whoever draws its report. */
void xr_gp_string(FILE *f, const char *s);

#endif
