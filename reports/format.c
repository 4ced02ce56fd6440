/* format.c - numbers as xdreport writes them. */
#include "format.h"
#include "../backends/xdevice.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xr_fmt_num(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "%s", "");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* v scaled into [1, 1000) by powers of 1000 (or base), with its suffix */
static void scaled(char *buf, size_t len, double v, double base, const char *const *suffix,
                   size_t nsuffix, const char *sep)
{
    size_t i = 0;
    double a = fabs(v);

    while (a >= base * 0.9995 && i + 1 < nsuffix) {
        a /= base;
        v /= base;
        i++;
    }
    if (a >= 99.95 || i == 0)
        snprintf(buf, len, "%.0f%s%s", v, sep, suffix[i]);
    else if (a >= 9.995)
        snprintf(buf, len, "%.1f%s%s", v, sep, suffix[i]);
    else
        snprintf(buf, len, "%.2f%s%s", v, sep, suffix[i]);
}

void xr_fmt_si(char *buf, size_t len, double v)
{
    static const char *const sfx[] = { "", "k", "M", "G", "T", "P" };

    if (isnan(v))
        snprintf(buf, len, "%s", "");
    else if (fabs(v) < 10 && v != floor(v))
        snprintf(buf, len, "%.2f", v);
    else
        scaled(buf, len, v, 1000, sfx, 6, "");
}

void xr_fmt_ns(char *buf, size_t len, double ns)
{
    static const char *const sfx[] = { "ns", "µs", "ms", "s" };

    if (isnan(ns))
        snprintf(buf, len, "%s", "");
    else
        scaled(buf, len, ns, 1000, sfx, 4, " ");
}

void xr_fmt_bytes(char *buf, size_t len, double bytes)
{
    static const char *const sfx[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };

    if (isnan(bytes))
        snprintf(buf, len, "%s", "");
    else
        scaled(buf, len, bytes, 1024, sfx, 6, " ");
}

/* The library's escape, so that reports show names as every other tool
 * does (C1 controls, line separators, bidirectional overrides and bytes
 * outside valid UTF-8 escaped too, not only control bytes). */
const char *xr_escape(const char *s, char *buf, size_t len)
{
    return xd_escape(s, buf, len);
}

void xr_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void xr_gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\'')
            fputc('\'', f);
        /* a line break would end the command mid-string */
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, f);
    }
    fputc('\'', f);
}
