/* hosts.c - xdtune search --hosts: the fio servers trials run on, through
 * fio's own client/server mode (fio --server on each host, fio --client
 * here), and what makes their figures comparable.
 *
 * A server reads the job text the client sends, so every path in it is a
 * path on the server: the engine's (made absolute here), the trial's INI
 * and stats file (absolute, under --out), the data files. Hosts may be
 * different machines: each runs the start config once as a reference, and
 * every figure a host measures is rescaled by the first host's reference
 * over its own (search.c). Simpler than a host factor in the model, and
 * honest as long as a host's speed changes every config by about the same
 * ratio; the raw figures stay in history.json beside the rescaled ones.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "xdtune.h"
#include "../backends/core/fileutil.h"

static int hosts_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* escaped: a newline in a path or name would split the line */
    xd_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* "host", "host,port": port 1..65535; what comes before must be non-empty. */
static const char *check_port(char *spec)
{
    char *comma = strrchr(spec, ',');
    if (!comma)
        return NULL;
    *comma = '\0';
    const char *port = comma + 1;
    char *end;
    long v = strtol(port, &end, 10);
    if (!*port || *end || !isdigit((unsigned char)*port) || v < 1 || v > 65535)
        return "the port after the comma must be a number from 1 to 65535";
    return NULL;
}

/* Why spec is not a server in fio's --client syntax, or NULL when it is:
 *   host[,port]  ip:addr[,port]  ip4:addr[,port]  ip6:addr[,port]  sock:/path */
static const char *host_problem(const char *line)
{
    char spec[512];
    for (const char *c = line; *c; c++)
        if (isspace((unsigned char)*c) || !isprint((unsigned char)*c) || *c == '"' || *c == '\'')
            return "one server per line, without spaces or quotes";
    if (*line == '-')
        return "a server name cannot start with '-'";
    if (strlen(line) >= sizeof(spec))
        return "too long";
    snprintf(spec, sizeof(spec), "%s", line);
    if (strncmp(spec, "sock:", 5) == 0)
        return spec[5] == '/' ? NULL : "sock: takes the absolute path of the server's socket";
    int ip6 = strncmp(spec, "ip6:", 4) == 0;
    char *addr = ip6                             ? spec + 4
                 : strncmp(spec, "ip4:", 4) == 0 ? spec + 4
                 : strncmp(spec, "ip:", 3) == 0  ? spec + 3
                                                 : spec;
    const char *bad = check_port(addr);
    if (bad)
        return bad;
    if (!*addr)
        return "no host before the port";
    for (const char *c = addr; *c; c++) {
        if (ip6 ? !(isxdigit((unsigned char)*c) || *c == ':' || *c == '.' || *c == '%')
                : !(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_'))
            return ip6 ? "ip6: takes an IPv6 address (hex digits and colons), then ,port"
                       : "a host name or IPv4 address (letters, digits, '.', '-'), then ,port; "
                         "IPv6 addresses need ip6:";
    }
    return NULL;
}

int xt_hosts_load(struct xt_hosts *h, const char *path, char *err, size_t errlen)
{
    memset(h, 0, sizeof(*h));
    FILE *f = xd_fopen_input(path);
    if (!f)
        return hosts_fail(err, errlen, "--hosts %s: cannot read it: %s", path, strerror(errno));
    if (xt_is_directory(f)) {
        fclose(f);
        return hosts_fail(err, errlen, "--hosts %s: is a directory; allowed: a file naming one fio server per line", path);
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        char *name = xt_line_text(line, ++lineno);
        if (!*name || *name == '#')
            continue;
        const char *why = host_problem(name);
        for (unsigned i = 0; !why && i < h->n; i++)
            if (!strcmp(h->name[i], name))
                why = "listed twice; each line must be a different server";
        if (!why && h->n == XT_MAX_HOSTS)
            why = "too many servers (at most 64)";
        char shown[XD_ESCAPE_LEN];
        if (why)
            rc = hosts_fail(err, errlen, "%s:%u: \"%.200s\": %s", path, lineno,
                            xd_escape(name, shown, sizeof(shown)), why);
        else if (!(h->name[h->n++] = strdup(name)))
            rc = -ENOMEM;
    }
    if (!rc && ferror(f))
        rc = hosts_fail(err, errlen, "--hosts %s: cannot read it: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (!rc && h->n == 0)
        rc = hosts_fail(err, errlen,
                        "%s: names no fio server; allowed: one per line, as fio's "
                        "--client takes it (host,port or ip6:addr,port)",
                        path);
    if (rc)
        xt_hosts_free(h);
    return rc;
}

void xt_hosts_free(struct xt_hosts *h)
{
    for (unsigned i = 0; i < h->n; i++)
        free(h->name[i]);
    memset(h, 0, sizeof(*h));
}

int xt_hosts_job_engine(struct xt_job *job, char *err, size_t errlen)
{
    for (size_t i = 0; i < job->nlines; i++) {
        const char *l = job->lines[i] + strspn(job->lines[i], " \t");
        if (strncmp(l, "ioengine", 8))
            continue;
        const char *v = strchr(l, '=');
        if (!v)
            continue;
        v += strspn(v + 1, " \t") + 1;
        if (strncmp(v, "external:", 9))
            continue;
        const char *engine = v + 9;
        char abs[PATH_MAX], *line = NULL;
        if (*engine == '/')
            continue; /* it may exist only on the servers: the reference run checks */
        if (!realpath(engine, abs))
            return hosts_fail(err, errlen,
                              "%s: ioengine=external:%s: %s; with --hosts the engine "
                              "must be an absolute path that exists on every server",
                              job->path, engine, strerror(errno));
        if (asprintf(&line, "ioengine=external:%s", abs) < 0)
            return -ENOMEM;
        free(job->lines[i]);
        job->lines[i] = line;
    }
    return 0;
}

/* "<name> text" lines: what fio's client prints for its server. */
static const char *server_line(const char *line)
{
    if (*line != '<')
        return NULL;
    const char *end = strstr(line, "> ");
    return end ? end + 2 : NULL;
}

void xt_host_error(const char *host, const char *output, char *err, size_t errlen)
{
    char *text = strdup(output), *save = NULL, *pick = NULL;
    int engine = 0;
    for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
        const char *said = server_line(l);
        if (!said)
            continue;
        if (strstr(said, "external ioengine") || strstr(said, "ioengine=external")) {
            pick = (char *)said;
            engine = 1;
            break;
        }
        if (!pick && (strstr(said, "xdevice:") || strstr(said, "fio:") || strstr(said, "rror")))
            pick = (char *)said;
    }
    if (engine)
        xd_errf(err, errlen,
                "fio server %s cannot load the xdevice engine (%s); the engine "
                "must be at the same absolute path on every server",
                host, pick);
    else if (pick)
        xd_errf(err, errlen, "fio server %s: %s", host, pick);
    free(text);
}

static double ratio(double ref0, double ref)
{
    return ref0 > 0 && ref > 0 ? ref0 / ref : 1;
}

void xt_hosts_normalise(const struct xt_figures *ref0, const struct xt_figures *ref,
                        struct xt_figures *f)
{
    f->iops *= ratio(ref0->iops, ref->iops);
    f->lat_us *= ratio(ref0->lat_us, ref->lat_us);
    f->p99_us *= ratio(ref0->p99_us, ref->p99_us);
    f->write_lat_us *= ratio(ref0->write_lat_us, ref->write_lat_us);
}
