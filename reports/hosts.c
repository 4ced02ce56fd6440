/* hosts.c - results from several fio servers (fio --client, one output
 * per host: scripts/bench-hosts.sh).
 *
 * Loading: a client's output carries, before fio's JSON, what its server
 * said, and the xdevice engine sends its stats document that way
 * ("<name> xdevice-stats: {...}", common/fiojson.h); it becomes a stats
 * document of the set, labelled with the host fio's JSON names
 * ("hostname" of its "client_stats").
 *
 * Writing: with two hosts or more, OUTDIR/hosts.md and OUTDIR/hosts.csv
 * group every workload's figures by configuration (its label without the
 * host) and host, then add "all hosts": IOPS and bandwidth summed, mean
 * latency weighted by I/Os, p99 the worst host's (percentiles of different
 * hosts cannot be merged from percentiles), and each host's xdevice stats.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "load.h"
#include "mem.h"
#include "outfile.h"
#include "report.h"

/* The host the documents loaded from one file (from index first) name. */
static const char *file_host(const struct xr_set *set, size_t first)
{
    for (size_t d = first; d < set->ndocs; d++)
        for (size_t j = 0; j < set->docs[d].njobs; j++)
            if (set->docs[d].jobs[j].hostname)
                return set->docs[d].jobs[j].hostname;
    return NULL;
}

/* The host a server's document is shown under. One server: the host fio's
 * JSON names. Several: fio's JSON names each by the address it was reached
 * at, but their lines carry only the name each server gave (its hostname),
 * so that name, numbered where servers share it (one machine): nothing in
 * the output ties a line to an address. */
static char *server_host(const struct xr_set *set, size_t first,
                         const struct fiojson_server_doc *docs, size_t n, size_t i)
{
    const char *host = file_host(set, first);
    unsigned same = 0, nth = 0;

    if (n == 1)
        return host ? xr_mem_strdup(host) : NULL;
    for (size_t k = 0; k < n; k++)
        if (strcmp(docs[k].name, docs[i].name) == 0) {
            same++;
            nth += k <= i;
        }
    return same > 1 ? xr_mem_printf("%s #%u", docs[i].name, nth) : xr_mem_strdup(docs[i].name);
}

static int load_server_doc(struct xr_set *set, const char *path, const char *doc, char *host,
                           char *err, size_t errlen)
{
    cJSON *root = cJSON_Parse(doc);
    if (!root) {
        free(host);
        return 0; /* fiojson_server_docs only returns what parses */
    }
    struct xr_xdstats *st = xr_mem_push(&set->stats, &set->nstats, sizeof *st);
    st->source = xr_mem_printf("%s (%s)", path, host ? host : "server");
    int rc = xr_xdstats_parse(st, root, err, errlen);
    cJSON_Delete(root);
    if (rc) {
        xr_xdstats_free(st); /* whole or not at all: free what the parser kept */
        set->nstats--;
        free(host);
        return -1;
    }
    st->host = host;
    return 0;
}

/* Every server's document: a client's output names one host per server it
 * ran on (fio --client=A --client=B), and each sends its own. */
int xr_hosts_load_stats(struct xr_set *set, const char *path, const char *text, size_t first,
                        char *err, size_t errlen)
{
    struct fiojson_server_doc *docs;
    size_t n = fiojson_server_docs(text, &docs);
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++)
        rc = load_server_doc(set, path, docs[i].doc, server_host(set, first, docs, n, i), err,
                             errlen);
    fiojson_server_docs_free(docs, n);
    return rc;
}

/* --- the per-host tables ------------------------------------------------------- */

struct host_row {
    const char *config; /* config_name: engine, type, async mode */
    const char *host;
    double iops, bw, lat_sum, ios, p99;
};

static const char *opt(const struct xr_job *job, const char *key)
{
    for (size_t i = 0; i < job->nopts; i++)
        if (strcmp(job->opts[i].key, key) == 0)
            return job->opts[i].val;
    return NULL;
}

/* A configuration as the by-host table names it: the engine (xdevice for
 * external:.../xdevice.so), its type and async mode. Not the report's
 * label: that names what differs between all the jobs of a workload, and
 * across hosts that is the host and often its paths. */
static char *config_name(const struct xr_job *job)
{
    const char *engine = job->engine ? job->engine : "", *type = opt(job, "xd_type"),
               *async = opt(job, "xd_async");
    const char *slash = strrchr(engine, '/');
    char *base = xr_mem_strdup(slash                             ? slash + 1
                               : strncmp(engine, "external:", 9) ? engine
                                                                 : engine + 9);
    char *dot = strstr(base, ".so");
    if (dot)
        *dot = '\0';
    char *out = xr_mem_printf("%s%s%s%s%s", *base ? base : "fio", type ? " " : "", type ? type : "",
                              async ? " " : "", async ? async : "");
    free(base);
    return out;
}

static size_t distinct_hosts(const struct xr_report *r)
{
    const char *seen[64];
    size_t n = 0;
    for (size_t g = 0; g < r->ngroups; g++)
        for (size_t i = 0; i < r->groups[g].ncfgs; i++) {
            const char *h = r->groups[g].cfgs[i].job->hostname;
            size_t k = 0;
            while (h && k < n && strcmp(seen[k], h))
                k++;
            if (h && k == n && n < 64)
                seen[n++] = h;
        }
    return n;
}

static void add_dir_figures(struct host_row *row, const struct xr_job *job)
{
    for (int d = 0; d < XR_NDIR; d++) {
        const struct xr_dir *dir = &job->dir[d];
        if (!dir->total_ios)
            continue;
        row->iops += dir->iops;
        row->bw += dir->bw_bytes;
        row->ios += dir->total_ios;
        row->lat_sum += dir->total_ios * dir->clat_mean_ns / 1000.0;
        double p99 = dir->clat_pct_ns[2] / 1000.0;
        if (isfinite(p99) && p99 > row->p99)
            row->p99 = p99;
    }
}

/* A CSV field and its comma. */
static void csv_field(FILE *f, const char *s)
{
    xr_csv_field(f, s);
    fputc(',', f);
}

static void write_row(FILE *md, FILE *csv, const char *workload, const struct host_row *row)
{
    double lat = row->ios > 0 ? row->lat_sum / row->ios : 0;
    fprintf(md, "| %s | %s | %s | %.0f | %.1f | %.1f | %.1f |\n", workload, row->config, row->host,
            row->iops, row->bw / (1 << 20), lat, row->p99);
    csv_field(csv, workload);
    csv_field(csv, row->config);
    csv_field(csv, row->host);
    fprintf(csv, "%.3f,%.0f,%.3f,%.3f\n", row->iops, row->bw, lat, row->p99);
}

static int same_config(const struct xr_cfg *c, const char *key)
{
    return strcmp(c->job->config ? c->job->config : "", key) == 0;
}

static void write_group(FILE *md, FILE *csv, const struct xr_group *g)
{
    struct host_row *rows = xr_mem_alloc((g->ncfgs + 1) * sizeof *rows);
    char **configs = xr_mem_alloc((g->ncfgs + 1) * sizeof *configs);
    for (size_t i = 0; i < g->ncfgs; i++) {
        const struct xr_cfg *c = &g->cfgs[i];
        configs[i] = config_name(c->job);
        rows[i] = (struct host_row){.config = configs[i],
                                    .host = c->job->hostname ? c->job->hostname : "(local)"};
        add_dir_figures(&rows[i], c->job);
        write_row(md, csv, g->name, &rows[i]);
    }
    /* all hosts, per configuration, each once in first-seen order. A
     * configuration is told by the options that set configurations apart
     * (xr_job.config), not by its label: hosts often differ in paths too. */
    for (size_t i = 0; i < g->ncfgs; i++) {
        const char *key = g->cfgs[i].job->config ? g->cfgs[i].job->config : "";
        int first = 1;
        for (size_t k = 0; k < i; k++)
            first &= !same_config(&g->cfgs[k], key);
        if (!first)
            continue;
        struct host_row all = {.config = configs[i], .host = "all hosts"};
        for (size_t k = i; k < g->ncfgs; k++)
            if (same_config(&g->cfgs[k], key)) {
                all.iops += rows[k].iops;
                all.bw += rows[k].bw;
                all.ios += rows[k].ios;
                all.lat_sum += rows[k].lat_sum;
                all.p99 = fmax(all.p99, rows[k].p99);
            }
        write_row(md, csv, g->name, &all);
    }
    for (size_t i = 0; i < g->ncfgs; i++)
        free(configs[i]);
    free(configs);
    free(rows);
}

static void write_stats(FILE *md, const struct xr_report *r)
{
    int any = 0;
    for (size_t i = 0; i < r->nstats; i++) {
        const struct xr_xdstats *st = r->stats[i].st;
        if (!st->host)
            continue;
        if (!any) {
            fputs("\n## xdevice stats by host\n\n"
                  "Each server's stats document, as its engine sent it back to the client. "
                  "Where one client output holds several servers, each is named as it "
                  "named itself (its hostname, numbered where servers share one): the "
                  "output ties no stats line to an address.\n\n"
                  "| host | document | jobs | cache hit ratio | compression ratio |\n"
                  "|---|---|---|---|---|\n",
                  md);
            any = 1;
        }
        fprintf(md, "| %s | %s | %zu | ", st->host, r->stats[i].label, st->njobs);
        if (isfinite(st->cache_hit_ratio))
            fprintf(md, "%.3f | ", st->cache_hit_ratio);
        else
            fputs("- | ", md);
        if (isfinite(st->compression_ratio))
            fprintf(md, "%.2f |\n", st->compression_ratio);
        else
            fputs("- |\n", md);
    }
}

static FILE *open_out(struct xr_report *r, const char *name, char **path)
{
    *path = xr_mem_printf("%s/%s", r->outdir, name);
    FILE *f = xr_out_open(*path);
    char shown[XR_ESCAPE_LEN]; /* escaped: a newline in the path would split the line */
    if (!f)
        xr_report_problem(r, "xdreport: %s: cannot write it: %s",
                          xr_escape(*path, shown, sizeof shown), xr_out_strerror(errno));
    return f;
}

int xr_hosts_write(struct xr_report *r)
{
    if (distinct_hosts(r) < 2)
        return 0;
    char *mdpath, *csvpath;
    FILE *md = open_out(r, "hosts.md", &mdpath),
         *csv = md ? open_out(r, "hosts.csv", &csvpath) : NULL;
    int rc = md && csv ? 0 : -1;
    if (!rc) {
        fprintf(md,
                "# %s: by host\n\n%zu hosts. Each workload's configurations on each host, "
                "then all hosts: IOPS and bandwidth summed, mean latency weighted by I/Os, "
                "p99 the worst host's.\n\n"
                "| workload | configuration | host | IOPS | MiB/s | mean lat us | p99 us |\n"
                "|---|---|---|---|---|---|---|\n",
                r->title, distinct_hosts(r));
        fputs("workload,configuration,host,iops,bw_bytes,lat_mean_us,p99_us\n", csv);
        for (size_t g = 0; g < r->ngroups; g++)
            write_group(md, csv, &r->groups[g]);
        write_stats(md, r);
        if (fclose(md) | fclose(csv))
            rc = -1;
    } else {
        if (md)
            fclose(md);
    }
    free(mdpath);
    if (md)
        free(csvpath);
    return rc;
}
