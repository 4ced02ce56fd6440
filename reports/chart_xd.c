/* chart_xd.c - xdevice's own figures from its stats documents: cache hit
 * ratio, compression ratio, space (logical, stored, allocated) and tier
 * reads, one bar group per stats document. A chart is drawn only when
 * some document has its figure: the layers that measure them arrive one at
 * a time, and an empty chart would only say "not measured".
 */
#include <math.h>
#include <stdlib.h>

#include "format.h"
#include "mem.h"
#include "plot.h"

enum xkind { X_HIT, X_COMP, X_SPACE, X_TIER, X_NKIND };

static int xd_has(const struct xr_xdstats *st, enum xkind k)
{
    switch (k) {
    case X_HIT: return !isnan(st->cache_hit_ratio);
    case X_COMP: return !isnan(st->compression_ratio);
    case X_SPACE: return st->logical_bytes || st->stored_bytes || st->allocated_bytes;
    default: return st->tier_hot_reads || st->tier_cold_reads;
    }
}

static char *xd_sub(const struct xr_report *r, size_t n)
{
    const char *ver = r->nstats ? r->stats[0].st->version : "";
    char *diff = n > 1 && *r->stats_differ
                     ? xr_mem_printf("%zu runs differing in %s", n, r->stats_differ)
                     : xr_mem_printf("%zu run%s", n, n == 1 ? "" : "s");
    char *out = xr_mem_printf("xdevice %s%s%s · %s", *ver ? ver : "stats",
                              *r->versions ? " · " : "", r->versions, diff);

    free(diff);
    return out;
}

static const struct {
    const char *slug, *what, *ylabel, *note;
    size_t nser;
    const char *ser[3];
} xd_charts[X_NKIND] = {
    { "xdevice-cache-hit-ratio", "cache hit ratio", "cache hit ratio (%)",
      "Share of reads xdevice's cache served, from its stats (layers ... hit_ratio). "
      "Higher is better.", 1, { "hit ratio" } },
    { "xdevice-compression-ratio", "compression ratio", "logical / stored bytes",
      "Bytes written over bytes stored by the compress layer. Higher saves more space.", 1,
      { "ratio" } },
    { "xdevice-space", "space", "bytes (MiB)",
      "Logical bytes (what fio wrote), stored bytes (after compression or holes) and "
      "allocated bytes (what the file system holds).", 3,
      { "logical", "stored", "allocated" } },
    { "xdevice-tier-reads", "tier reads", "reads",
      "Reads the hybrid type served from its hot tier and from its cold tier.", 2,
      { "hot tier", "cold tier" } },
};

static void xd_values(const struct xr_xdstats *st, enum xkind k, double *v)
{
    switch (k) {
    case X_HIT: v[0] = st->cache_hit_ratio * 100; break;
    case X_COMP: v[0] = st->compression_ratio; break;
    case X_SPACE:
        v[0] = (double)st->logical_bytes;
        v[1] = (double)st->stored_bytes;
        v[2] = (double)st->allocated_bytes;
        break;
    default:
        v[0] = (double)st->tier_hot_reads;
        v[1] = (double)st->tier_cold_reads;
        break;
    }
}

static char *xd_text(enum xkind k, double v)
{
    char buf[32];

    switch (k) {
    case X_HIT: return xr_mem_printf("%.1f%%", v);
    case X_COMP: return xr_mem_printf("%.2f:1", v);
    case X_SPACE: xr_fmt_bytes(buf, sizeof buf, v); break;
    default: xr_fmt_si(buf, sizeof buf, v); break;
    }
    return xr_mem_strdup(buf);
}

static const char *xd_ylabel(enum xkind k, double scale)
{
    if (k == X_SPACE)
        return scale == 1 << 30 ? "bytes (GiB)" : "bytes (MiB)";
    if (k == X_TIER)
        return scale == 1e6 ? "reads (millions)" : scale == 1e3 ? "reads (thousands)" : "reads";
    return xd_charts[k].ylabel;
}

static void chart_xdevice(struct xr_plot *gp, enum xkind k)
{
    const struct xr_report *r = gp->r;
    size_t n = 0, ns = xd_charts[k].nser;
    struct xr_bars b = { 0 };
    double top = 0, scale = 1;

    for (size_t i = 0; i < r->nstats; i++)
        n += xd_has(r->stats[i].st, k);
    if (!n)
        return;
    xr_bars_alloc(&b, n, ns);
    n = 0;
    for (size_t i = 0; i < r->nstats; i++) {
        if (!xd_has(r->stats[i].st, k))
            continue;
        b.cat[n] = r->stats[i].label;
        xd_values(r->stats[i].st, k, &b.val[n * ns]);
        for (size_t s = 0; s < ns; s++) {
            b.text[n * ns + s] = xd_text(k, b.val[n * ns + s]);
            top = fmax(top, b.val[n * ns + s]);
        }
        n++;
    }
    if (k == X_SPACE)
        scale = top >= 1 << 30 ? 1 << 30 : 1 << 20;
    if (k == X_TIER)
        scale = top >= 1e6 ? 1e6 : top >= 1e4 ? 1e3 : 1;
    for (size_t i = 0; i < n * ns; i++)
        b.val[i] /= scale;
    for (size_t s = 0; s < ns; s++) {
        b.ser_name[s] = ns > 1 ? xd_charts[k].ser[s] : NULL;
        b.ser_color[s] = xr_dir_color[s];     /* metrics, not configurations: greys */
    }
    b.ylabel = xd_ylabel(k, scale);
    if (k == X_HIT)
        b.ymax = 110;       /* 100% plus room for the figures over the bars */
    char *title = xr_mem_printf("xdevice: %s", xd_charts[k].what);
    char *sub = xd_sub(r, n);
    struct xr_chart_spec spec = { xd_charts[k].slug, title, sub, xd_charts[k].note, -1,
                                  XR_SEC_XDEVICE };

    xr_plot_bars(gp, &spec, &b);
    xr_bars_free(&b);
    free(title);
    free(sub);
}

void xr_charts_xdevice(struct xr_plot *p)
{
    for (int k = 0; k < X_NKIND; k++)
        chart_xdevice(p, k);
}

