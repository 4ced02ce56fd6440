/* xdfollow - a long-running program that follows its INI file: whenever it
 * is rewritten (by xdtune's daemon, xdconfig set or a person), the keys
 * marked live change on the open device, with the program's own settings
 * winning; with metrics_interval_sec set, one JSON record per interval is
 * appended to a log. The same as the fio engine does per job.
 *
 *   cc -o xdfollow xdfollow.c $(pkg-config --cflags --libs xdevice)
 *   ./xdfollow CONFIG.ini FILE SECONDS [KEY=VALUE ...]
 *
 * Rewrites and reads back 1 MiB of FILE for SECONDS (0: until SIGINT or
 * SIGTERM, which also end a timed run early, as a service is stopped: the
 * last record is written and the device closed); KEY=VALUE pairs are
 * set over the INI file, now and at every reload. What the monitor says
 * (each changed key, a file refused and why) goes to stderr, records to
 * FILE.jsonl. Exit 0 when every byte read back is the byte written.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sigaction under -std=c11 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xdevice.h>

#define BLOCK (64u * 1024)
#define SPAN  (1u << 20)

static volatile sig_atomic_t stop_asked;

static void ask_to_stop(int sig)
{
    (void)sig;
    stop_asked = 1;
}

/* SIGINT and SIGTERM end the run between passes, not the process. */
static void stop_on_signals(void)
{
    struct sigaction sa = {.sa_handler = ask_to_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* KEY=VALUE arguments as overrides (pointing into argv); -1 on a bad one. */
static int parse_overrides(int argc, char **argv, struct xd_config_override *ov)
{
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i]) {
            char shown[XD_ESCAPE_LEN]; /* escaped: a newline in it would split the line */
            fprintf(stderr, "xdfollow: %s: not KEY=VALUE\n",
                    xd_escape(argv[i], shown, sizeof(shown)));
            return -1;
        }
        *eq = 0;
        ov[i] = (struct xd_config_override){argv[i], eq + 1, "the command line"};
    }
    return 0;
}

/* Print what the monitor has to say. */
static void print_notes(struct xd_monitor *mon)
{
    char *line;
    while ((line = xd_monitor_note(mon))) {
        fprintf(stderr, "%s\n", line); /* "xdfollow: config=..." */
        free(line);
    }
}

/* One pass: write the span, read it back; the monitor is polled between
 * requests, from this thread, the one that drives the device. */
static int pass(struct xd_dev *dev, struct xd_file *file, struct xd_monitor *mon, unsigned seq)
{
    static unsigned char out[BLOCK], in[BLOCK];
    for (uint32_t off = 0; off < SPAN; off += BLOCK) {
        memset(out, (int)(seq + off / BLOCK), sizeof(out));
        if (xd_write(dev, file, out, BLOCK, off) != (ssize_t)BLOCK ||
            xd_read(dev, file, in, BLOCK, off) != (ssize_t)BLOCK || memcmp(in, out, BLOCK)) {
            fprintf(stderr, "xdfollow: block at %u did not read back as written\n", off);
            return -1;
        }
        if (xd_monitor_poll(mon))
            print_notes(mon);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: xdfollow CONFIG.ini FILE SECONDS [KEY=VALUE ...]\n");
        return 2;
    }
    char *tail;
    double seconds = strtod(argv[3], &tail);
    if (tail == argv[3] || *tail || !(seconds >= 0)) { /* a typo must not mean "for ever" */
        char shown[XD_ESCAPE_LEN]; /* escaped: a newline in it would split the line */
        fprintf(stderr, "xdfollow: SECONDS=%s: not a number of seconds; allowed: 0 (until SIGINT or SIGTERM) or more\n",
                xd_escape(argv[3], shown, sizeof(shown)));
        return 2;
    }
    char err[XD_ERRLEN], log[4096];
    struct xd_config_override *ov = calloc((size_t)argc, sizeof(*ov));
    unsigned nov = (unsigned)(argc - 4);
    struct xd_config *cfg = NULL;
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    struct xd_monitor *mon = NULL;
    int rc = ov && !parse_overrides(argc - 4, argv + 4, ov) ? 0 : 1;
    snprintf(log, sizeof(log), "%s.jsonl", argv[2]);
    struct xd_monitor_opts mo = {.config_path = argv[1], .overrides = ov, .n_overrides = nov,
                                 .stats_log = log, .name = "xdfollow"};
    /* the device's config is built exactly as the monitor builds it again */
    if (!rc && (xd_config_build(&cfg, argv[1], ov, nov, err, sizeof(err)) < 0 ||
                xd_open(&dev, cfg, 1, err, sizeof(err)) < 0 ||
                xd_monitor_open(&mon, dev, &mo, err, sizeof(err)) < 0 ||
                xd_file_open(dev, argv[2], XD_OPEN_CREATE, SPAN, &file, err, sizeof(err)) < 0)) {
        fprintf(stderr, "xdfollow: %s\n", err);
        rc = 1;
    }
    if (mon)
        print_notes(mon);
    stop_on_signals();
    double end = now_s() + seconds;
    for (unsigned seq = 0; !rc && !stop_asked && (seconds <= 0 || now_s() < end); seq++)
        rc = pass(dev, file, mon, seq) ? 1 : 0;
    if (mon) {
        xd_monitor_record(mon); /* the last, partial interval */
        print_notes(mon);
        xd_monitor_close(mon);
    }
    if (file)
        xd_file_close(dev, file);
    if (dev)
        xd_close(dev);
    xd_config_free(cfg);
    free(ov);
    return rc;
}
