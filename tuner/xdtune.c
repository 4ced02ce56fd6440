/* xdtune.c - the xdtune command line: `search` tunes a config for a fio job
 * by trials; `daemon` tunes the live-safe keys of a running job's config.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "xdtune.h"

/* an argument for a message (one use per message) */
static const char *shown(const char *s)
{
    static char buf[XD_ESCAPE_LEN];
    return xd_escape(s, buf, sizeof(buf));
}

static void usage(FILE *f)
{
    fputs("usage: xdtune search --job JOB.fio --config START.ini --out DIR [--space SPACE.ini]\n"
          "           [--budget N (20; grid: all)] [--method gp|random|grid] [--seed N] [--repeats N] [--finalists N]\n"
          "           [--target-iops N] [--target-latency-us N] [--target-p99-us N]\n"
          "           [--target-cache-hit R] [--minimize iops|p99] [--trial-timeout S] [--quiet]\n"
          "           [--hosts FILE (fio servers, one per line: trials run on them at once)]\n"
          "       xdtune search [the options above but --job] -- --name=JOB --ioengine=external:PATH/xdevice.so ...\n"
          "       xdtune daemon --config CFG.ini [--fio-status FILE] [--stats FILE] [--history FILE]\n"
          "           [--interval S] [--cycles N] [--target-cache-hit R] [--target-iops N]\n"
          "\n"
          "search  runs fio on JOB (a job file, or after -- fio's --name=J --option=value\n"
          "        form) once per candidate config and writes DIR/best.ini,\n"
          "        DIR/history.json and DIR/convergence.svg (see README, \"Tuning\")\n"
          "daemon  each interval reads fio's status and xdevice's stats and rewrites the\n"
          "        live-safe keys of CFG.ini, which the engine reloads\n", f);
}

/* A number option: one line naming it and its value when it is not one. */
static int number(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "xdtune: --%s %s: expected a number from %g to %g\n", opt, shown(s), lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* A count option (--budget, --seed, ...): a number, and a whole one. */
static int whole_number(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi || v != floor(v)) {
        fprintf(stderr, "xdtune: --%s %s: expected a whole number from %.0f to %.0f\n", opt, shown(s), lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* getopt's answer for an option it does not take: one line naming it, and
 * whether it is unknown or needs a value (c ':' with ":" opening optstring). */
static int bad_option(const char *cmd, int c, char **argv)
{
    const char *opt = shown(argv[optind - 1]);
    if (c == ':')
        fprintf(stderr, "xdtune: %s: %s needs a value (xdtune --help)\n", cmd, opt);
    else
        fprintf(stderr, "xdtune: %s: %s is not one of its options (xdtune --help)\n", cmd, opt);
    return 2;
}

enum { O_JOB = 1, O_CONFIG, O_OUT, O_SPACE, O_BUDGET, O_METHOD, O_SEED, O_REPEATS, O_FINALISTS,
       O_TIOPS, O_TLAT, O_TP99, O_THIT, O_MIN, O_TIMEOUT, O_QUIET, O_XDREPORT, O_STATUS, O_STATS,
       O_HISTORY, O_INTERVAL, O_CYCLES, O_HOSTS };

static const struct option longopts[] = {
    { "job", 1, 0, O_JOB }, { "config", 1, 0, O_CONFIG }, { "out", 1, 0, O_OUT },
    { "space", 1, 0, O_SPACE }, { "budget", 1, 0, O_BUDGET }, { "method", 1, 0, O_METHOD },
    { "seed", 1, 0, O_SEED }, { "repeats", 1, 0, O_REPEATS }, { "finalists", 1, 0, O_FINALISTS },
    { "target-iops", 1, 0, O_TIOPS }, { "target-latency-us", 1, 0, O_TLAT },
    { "target-p99-us", 1, 0, O_TP99 }, { "target-cache-hit", 1, 0, O_THIT },
    { "minimize", 1, 0, O_MIN }, { "trial-timeout", 1, 0, O_TIMEOUT }, { "quiet", 0, 0, O_QUIET },
    { "xdreport", 1, 0, O_XDREPORT }, { "fio-status", 1, 0, O_STATUS }, { "stats", 1, 0, O_STATS },
    { "history", 1, 0, O_HISTORY }, { "hosts", 1, 0, O_HOSTS }, { "interval", 1, 0, O_INTERVAL }, { "cycles", 1, 0, O_CYCLES },
    { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
};

static int goal_option(int c, const char *arg, struct xt_goal *g)
{
    switch (c) {
    case O_TIOPS: return number("target-iops", arg, 1, 1e12, &g->iops);
    case O_TLAT: return number("target-latency-us", arg, 1e-3, 1e12, &g->lat_us);
    case O_TP99: return number("target-p99-us", arg, 1e-3, 1e12, &g->p99_us);
    case O_THIT: {
        char *end;
        g->cache_hit = strtod(arg, &end);
        if (end != arg && !*end && g->cache_hit > 0 && g->cache_hit <= 1)
            return 0;
        fprintf(stderr, "xdtune: --target-cache-hit %s: expected a ratio above 0, up to 1\n", shown(arg));
        return -1;
    }
    case O_MIN:
        if (strcmp(arg, "p99") && strcmp(arg, "iops")) {
            fprintf(stderr, "xdtune: --minimize %s: expected p99 (or iops, the default: maximise IOPS)\n", shown(arg));
            return -1;
        }
        g->minimize_p99 = strcmp(arg, "p99") == 0;
        return 0;
    }
    return 1;
}

static int search_main(int argc, char **argv)
{
    struct xt_search_opts o = { .budget = 0, .repeats = 3, .finalists = 3, .seed = 1,
                                .trial_timeout = 600 };
    double v;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int rc = goal_option(c, optarg, &o.goal);
        if (rc <= 0) {
            if (rc < 0)
                return 2;
            continue;
        }
        switch (c) {
        case O_JOB: o.job = optarg; break;
        case O_CONFIG: o.config = optarg; break;
        case O_OUT: o.out = optarg; break;
        case O_SPACE: o.space = optarg; break;
        case O_XDREPORT: o.xdreport = optarg; break;
        case O_HOSTS: o.hosts = optarg; break;
        case O_QUIET: o.quiet = 1; break;
        case O_BUDGET: if (whole_number("budget", optarg, 1, 100000, &v)) return 2; o.budget = (unsigned)v; break;
        case O_SEED: if (whole_number("seed", optarg, 0, 4e9, &v)) return 2; o.seed = (unsigned long)v; break;
        case O_REPEATS: if (whole_number("repeats", optarg, 0, 15, &v)) return 2; o.repeats = (unsigned)v; break;
        case O_FINALISTS: if (whole_number("finalists", optarg, 1, 64, &v)) return 2; o.finalists = (unsigned)v; break;
        case O_TIMEOUT: if (number("trial-timeout", optarg, 1, 86400, &v)) return 2; o.trial_timeout = v; break;
        case O_METHOD:
            if (!strcmp(optarg, "gp")) o.method = XT_METHOD_GP;
            else if (!strcmp(optarg, "random")) o.method = XT_METHOD_RANDOM;
            else if (!strcmp(optarg, "grid")) o.method = XT_METHOD_GRID;
            else {
                fprintf(stderr, "xdtune: --method %s: expected gp, random or grid\n", shown(optarg));
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: return bad_option("search", c, argv);
        }
    }
    /* after "--": the job in fio's command-line form, instead of --job */
    if (!o.job && optind > 1 && optind < argc && !strcmp(argv[optind - 1], "--")) {
        o.job_argc = argc - optind;
        o.job_argv = argv + optind;
        o.job = "fio command line";
        optind = argc;
    }
    const char *missing = !o.job ? "--job" : !o.config ? "--config" : !o.out ? "--out" : NULL;
    if (missing || optind < argc) {
        if (missing)
            fprintf(stderr, "xdtune: search needs %s (xdtune --help)\n", missing);
        else
            fprintf(stderr, "xdtune: search: unexpected argument \"%s\"\n", shown(argv[optind]));
        return 2;
    }
    /* each trial's fio job file names its config and stats under --out,
     * and a fio job file has no escapes: a line break would end the option
     * there and make the rest of the name a line of the job */
    if (strpbrk(o.out, "\n\r")) {
        fprintf(stderr, "xdtune: search: --out %s: a line break in it cannot be written into the "
                "trials' fio job files; allowed: a directory name without one\n", shown(o.out));
        return 2;
    }
    if (o.method != XT_METHOD_GRID && !o.budget)
        o.budget = 20; /* the grid's default is the whole space */
    return xt_search(&o);
}

static int daemon_main(int argc, char **argv)
{
    struct xt_daemon_opts o = { 0 };
    double v;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int rc = goal_option(c, optarg, &o.goal);
        if (rc <= 0) {
            if (rc < 0)
                return 2;
            continue;
        }
        switch (c) {
        case O_CONFIG: o.config = optarg; break;
        case O_STATUS: o.fio_status = optarg; break;
        case O_STATS: o.stats = optarg; break;
        case O_HISTORY: o.history = optarg; break;
        case O_INTERVAL: if (number("interval", optarg, 0.1, 86400, &v)) return 2; o.interval = v; break;
        case O_CYCLES: if (whole_number("cycles", optarg, 1, 1e9, &v)) return 2; o.cycles = (unsigned)v; break;
        case 'h': usage(stdout); return 0;
        default: return bad_option("daemon", c, argv);
        }
    }
    if (!o.config || optind < argc) {
        fprintf(stderr, o.config ? "xdtune: daemon: unexpected argument \"%s\"\n"
                                 : "xdtune: daemon needs --config%s (xdtune --help)\n",
                o.config ? shown(argv[optind]) : "");
        return 2;
    }
    if (!o.fio_status && !o.stats) {
        fprintf(stderr, "xdtune: daemon needs --fio-status FILE or --stats FILE to measure with\n");
        return 2;
    }
    /* the files may not be there yet (fio makes them), but a directory
     * never becomes one: said now, not as "nothing new" every cycle */
    const char *given[][2] = {{"--fio-status", o.fio_status}, {"--stats", o.stats}};
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        struct stat st;
        if (given[i][1] && !stat(given[i][1], &st) && S_ISDIR(st.st_mode)) {
            fprintf(stderr, "xdtune: daemon: %s %s is a directory; allowed: the file fio or the engine writes to\n",
                    given[i][0], shown(given[i][1]));
            return 2;
        }
    }
    return xt_daemon(&o);
}

int main(int argc, char **argv)
{
    opterr = 0; /* one line of our own for a bad option, not getopt's too */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "search"))
        return search_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "daemon"))
        return daemon_main(argc - 1, argv + 1);
    fprintf(stderr, "xdtune: unknown command \"%s\"; use search or daemon\n", shown(argv[1]));
    return 2;
}
