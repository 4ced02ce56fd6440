/* monitor.c - unit test of xd_monitor (and xd_config_build), through the
 * public header only: a rewritten INI is applied by poll with the
 * overrides winning, and said in one note per changed key; a bad, refused
 * or removed file leaves the config in force with one note; a rewrite
 * between the caller's reading the file and open is applied at open; an
 * interval record is appended when due and by xd_monitor_record; monitors
 * of one file share its watch and only the one not quiet tells, but a child
 * after fork() watches with its own; the open errors are one line. Time-driven steps poll with a bounded deadline (a
 * record is due after 1 s, the watch is asked every 0.1 s). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define DEADLINE_S 10.0 /* far above the 1 s and 0.1 s waited for */

static char err[XD_ERRLEN];
static char dir[256], ini[300], logpath[300];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Replace path's contents at once (a new file renamed over the name), as
 * xd_config_save and most editors do. */
static void write_file(const char *path, const char *text)
{
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f && fputs(text, f) >= 0);
    if (f)
        fclose(f);
    CHECK(!rename(tmp, path));
}

/* Poll until it reports bit (returns what it did) or the deadline passes (0). */
static int poll_until(struct xd_monitor *m, int bit)
{
    double end = now_s() + DEADLINE_S;
    while (now_s() < end) {
        int did = xd_monitor_poll(m);
        if (did & bit)
            return did;
        usleep(5000);
    }
    return 0;
}

/* Every note waiting, joined by newlines (malloc'd), and how many. */
static char *take_notes(struct xd_monitor *m, int *count)
{
    size_t len = 0;
    char *all = calloc(1, 1), *line;
    *count = 0;
    while ((line = xd_monitor_note(m))) {
        CHECK_MSG(!strchr(line, '\n'), "%s", line);
        all = realloc(all, len + strlen(line) + 2);
        len += (size_t)sprintf(all + len, "%s\n", line);
        (*count)++;
        free(line);
    }
    return all;
}

static const char *key(const struct xd_dev *dev, const char *name)
{
    return xd_config_get(xd_dev_config(dev), name);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The text of line n (0-based) of path, in buf. */
static const char *read_line(const char *path, int n, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    buf[0] = 0;
    for (int i = 0; f && i <= n; i++)
        if (!fgets(buf, (int)len, f))
            buf[0] = 0;
    if (f)
        fclose(f);
    return buf;
}

static const struct xd_config_override overrides[] = {
    {"slow_operation_threshold_ms", "50", "test override"},
};

static struct xd_dev *open_dev(const char *ini_path)
{
    struct xd_config *cfg = NULL;
    struct xd_dev *dev = NULL;
    CHECK_MSG(!xd_config_build(&cfg, ini_path, overrides, 1, err, sizeof(err)), "%s", err);
    if (cfg)
        CHECK_MSG(!xd_open(&dev, cfg, 4, err, sizeof(err)), "%s", err);
    xd_config_free(cfg);
    return dev;
}

static struct xd_monitor *open_monitor(struct xd_dev *dev, const char *name, int quiet)
{
    struct xd_monitor_opts mo = {.config_path = ini, .overrides = overrides, .n_overrides = 1,
                                 .stats_log = logpath, .name = name, .quiet_reloads = quiet};
    struct xd_monitor *m = NULL;
    CHECK_MSG(!xd_monitor_open(&m, dev, &mo, err, sizeof(err)), "%s", err);
    return m;
}

/* defaults < INI < overrides, in order; each failure one line naming it. */
static void test_build(void)
{
    struct xd_config *cfg = NULL;
    write_file(ini, "[local]\nread_ahead_kb = 64\n[monitoring]\nslow_operation_threshold_ms = 9\n");
    const struct xd_config_override two[] = {{"read_ahead_kb", "256", NULL},
                                             {"read_ahead_kb", "512", "second"}};
    CHECK_MSG(!xd_config_build(&cfg, ini, two, 2, err, sizeof(err)), "%s", err);
    if (cfg) {
        CHECK(!strcmp(xd_config_get(cfg, "read_ahead_kb"), "512"));
        CHECK(!strcmp(xd_config_get(cfg, "slow_operation_threshold_ms"), "9"));
        CHECK(!strcmp(xd_config_origin(cfg, "read_ahead_kb"), "second"));
        CHECK(strstr(xd_config_origin(cfg, "slow_operation_threshold_ms"), ":4"));
        CHECK(!xd_config_origin(cfg, "cache_size")); /* a default */
        xd_config_free(cfg);
    }
    const struct xd_config_override bad[] = {{"read_ahead_kbb", "1", "--set read_ahead_kbb"}};
    cfg = NULL;
    CHECK(xd_config_build(&cfg, ini, bad, 1, err, sizeof(err)) == -EINVAL && !cfg);
    CHECK_MSG(strstr(err, "read_ahead_kbb") && strstr(err, "read_ahead_kb") && !strchr(err, '\n'),
              "%s", err);
    const struct xd_config_override conflict[] = {{"enable_write_cache", "true", "o"}};
    CHECK(xd_config_build(&cfg, NULL, conflict, 1, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, "enable_read_cache"), "%s", err);
    write_file(ini, "[local]\nread_ahead_kb = lots\n");
    CHECK(xd_config_build(&cfg, ini, NULL, 0, err, sizeof(err)) == -EINVAL);
    CHECK_MSG(strstr(err, ":2") && strstr(err, "lots") && strstr(err, "allowed"), "%s", err);
}

/* A rewrite is applied by poll, overrides winning; bad, refused and
 * removed files leave the config in force, one note each. */
static void test_reload(void)
{
    int n;
    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    struct xd_dev *dev = open_dev(ini);
    if (!dev)
        return;
    struct xd_monitor *m = open_monitor(dev, "unit", 0);
    if (!m) {
        xd_close(dev);
        return;
    }
    CHECK(!xd_monitor_idle(m)); /* it follows the file */
    char *notes = take_notes(m, &n);
    CHECK_MSG(n == 0, "%s", notes); /* the file is what the device has */
    free(notes);
    CHECK(!strcmp(key(dev, "slow_operation_threshold_ms"), "50"));

    write_file(ini, "[local]\nread_ahead_kb = 4096\n[monitoring]\nslow_operation_threshold_ms = 7\n");
    CHECK(poll_until(m, XD_MONITOR_RELOAD) & XD_MONITOR_RELOAD);
    CHECK(!strcmp(key(dev, "read_ahead_kb"), "4096"));
    CHECK(!strcmp(key(dev, "slow_operation_threshold_ms"), "50")); /* the override wins */
    notes = take_notes(m, &n);
    CHECK_MSG(n == 1 && strstr(notes, "unit: config=") &&
                  strstr(notes, "reloaded: read_ahead_kb 128 -> 4096"),
              "%s", notes);
    free(notes);

    write_file(ini, "[local]\nread_ahead_kb = lots\n");
    CHECK(poll_until(m, XD_MONITOR_RELOAD));
    notes = take_notes(m, &n);
    CHECK_MSG(n == 1 && strstr(notes, "was rewritten but is not used") &&
                  strstr(notes, "read_ahead_kb=lots") && strstr(notes, "the config in force stays"),
              "%s", notes);
    free(notes);

    write_file(ini, "[local]\nread_ahead_kb = 8\nuse_direct_io = true\n");
    CHECK(poll_until(m, XD_MONITOR_RELOAD));
    notes = take_notes(m, &n);
    CHECK_MSG(n == 1 && strstr(notes, "use_direct_io (false -> true)"), "%s", notes);
    free(notes);
    CHECK(!strcmp(key(dev, "read_ahead_kb"), "4096")); /* all or nothing */

    write_file(ini, "[local]\nread_ahead_kb = 4096\n");
    CHECK(poll_until(m, XD_MONITOR_RELOAD));
    notes = take_notes(m, &n);
    CHECK_MSG(n == 1 && strstr(notes, "reloaded: no change"), "%s", notes);
    free(notes);

    CHECK(!unlink(ini));
    CHECK(poll_until(m, XD_MONITOR_RELOAD));
    notes = take_notes(m, &n);
    CHECK_MSG(n == 1 && strstr(notes, "was removed"), "%s", notes);
    free(notes);
    CHECK(!strcmp(key(dev, "read_ahead_kb"), "4096"));
    xd_monitor_close(m);
    xd_close(dev);
}

/* A rewrite between the caller's build and open is applied at open. */
static void test_catch_up_at_open(void)
{
    int n;
    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    struct xd_dev *dev = open_dev(ini);
    if (!dev)
        return;
    write_file(ini, "[local]\nread_ahead_kb = 1024\n");
    struct xd_monitor_opts mo = {.config_path = ini, .overrides = overrides, .n_overrides = 1,
                                 .config_label = "xd_config"};
    struct xd_monitor *m = NULL;
    CHECK_MSG(!xd_monitor_open(&m, dev, &mo, err, sizeof(err)), "%s", err);
    CHECK(!strcmp(key(dev, "read_ahead_kb"), "1024"));
    char *notes = take_notes(m, &n);
    /* no name: the note starts with the label */
    CHECK_MSG(n == 1 && !strncmp(notes, "xd_config=", 10) &&
                  strstr(notes, "reloaded: read_ahead_kb 128 -> 1024"),
              "%s", notes);
    free(notes);
    xd_monitor_close(m);
    xd_close(dev);
}

/* Monitors of one file share its watch; each applies a rewrite to its own
 * device, and a quiet one says nothing about it. */
static void test_shared_watch(void)
{
    int n;
    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    struct xd_dev *a = open_dev(ini), *b = open_dev(ini);
    struct xd_monitor *ma = a ? open_monitor(a, "a", 0) : NULL;
    struct xd_monitor *mb = b ? open_monitor(b, "b", 1) : NULL;
    if (ma && mb) {
        write_file(ini, "[local]\nread_ahead_kb = 512\n");
        CHECK(poll_until(ma, XD_MONITOR_RELOAD));
        CHECK(poll_until(mb, XD_MONITOR_RELOAD));
        CHECK(!strcmp(key(a, "read_ahead_kb"), "512") && !strcmp(key(b, "read_ahead_kb"), "512"));
        char *notes = take_notes(ma, &n);
        CHECK_MSG(n == 1 && strstr(notes, "a: config="), "%s", notes);
        free(notes);
        notes = take_notes(mb, &n);
        CHECK_MSG(n == 0, "%s", notes);
        free(notes);
    }
    xd_monitor_close(mb);
    xd_monitor_close(ma);
    if (b)
        xd_close(b);
    if (a)
        xd_close(a);
}

/* metrics_interval_sec=1: poll appends a record once one is due, one line
 * each, and xd_monitor_record appends one at once. */
/* A monitor a child opens after fork() watches with its own inotify
 * instance. Old: it joined its copy of the parent's shared watch, whose
 * description both processes read, so a rewrite the child heard first was
 * one the parent's monitors never heard. */
static void test_watch_after_fork(void)
{
    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    struct xd_dev *dev = open_dev(ini);
    struct xd_monitor *m = dev ? open_monitor(dev, "parent", 1) : NULL;
    int ready[2], heard[2];
    if (!m || pipe(ready) || pipe(heard)) {
        CHECK(m != NULL);
        xd_monitor_close(m);
        xd_close(dev);
        return;
    }
    fflush(stderr);
    pid_t pid = fork();
    char x;
    if (pid == 0) {
        check_failures = 0;
        alarm(30);
        struct xd_dev *c = open_dev(ini);
        struct xd_monitor *mc = c ? open_monitor(c, "child", 1) : NULL;
        CHECK(write(ready[1], "r", 1) == 1);
        CHECK(mc && poll_until(mc, XD_MONITOR_RELOAD));
        CHECK(c && !strcmp(key(c, "read_ahead_kb"), "256"));
        CHECK(write(heard[1], "h", 1) == 1);
        xd_monitor_close(mc);
        xd_close(c);
        _exit(check_result());
    }
    close(ready[1]);
    close(heard[1]);
    CHECK(read(ready[0], &x, 1) == 1);
    write_file(ini, "[local]\nread_ahead_kb = 256\n");
    CHECK(read(heard[0], &x, 1) == 1); /* the child heard it first */
    CHECK_MSG(poll_until(m, XD_MONITOR_RELOAD), "the parent never heard the rewrite its child heard");
    CHECK(!strcmp(key(dev, "read_ahead_kb"), "256"));
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ready[0]);
    close(heard[0]);
    xd_monitor_close(m);
    xd_close(dev);
}

static void test_records(void)
{
    char line[1 << 16];
    unlink(logpath);
    write_file(ini, "[local]\nread_ahead_kb = 128\n[monitoring]\nmetrics_interval_sec = 1\n");
    struct xd_dev *dev = open_dev(ini);
    double start = now_s(); /* before open, which starts the interval */
    struct xd_monitor *m = dev ? open_monitor(dev, "rec", 0) : NULL;
    if (!m) {
        if (dev)
            xd_close(dev);
        return;
    }
    CHECK(count_lines(logpath) == 0); /* made at open, empty */
    CHECK(!(xd_monitor_poll(m) & XD_MONITOR_RECORD)); /* not due yet */
    int did = poll_until(m, XD_MONITOR_RECORD);
    double waited = now_s() - start;
    CHECK_MSG(did & XD_MONITOR_RECORD, "no record within %.0f s", DEADLINE_S);
    CHECK_MSG(waited > 0.9, "a record after %.2f s of a 1 s interval", waited);
    CHECK(count_lines(logpath) == 1);
    read_line(logpath, 0, line, sizeof(line));
    CHECK_MSG(line[0] == '{' && strstr(line, "\"seq\":0") && strstr(line, "\"job\":\"rec\"") &&
                  strstr(line, "\"interval\":{"),
              "%.200s", line);
    CHECK(!(xd_monitor_poll(m) & XD_MONITOR_RECORD)); /* the next is a second away */
    CHECK(xd_monitor_record(m) == 0);
    CHECK(count_lines(logpath) == 2);
    read_line(logpath, 1, line, sizeof(line));
    CHECK_MSG(strstr(line, "\"seq\":1"), "%.200s", line);
    xd_monitor_close(m);
    CHECK(count_lines(logpath) == 2); /* close appends nothing */
    xd_close(dev);
}

/* Without records, xd_monitor_record has nothing to do. */
static void test_no_records(void)
{
    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    struct xd_dev *dev = open_dev(ini);
    struct xd_monitor *m = NULL;
    if (!dev)
        return;
    CHECK_MSG(!xd_monitor_open(&m, dev, NULL, err, sizeof(err)), "%s", err); /* no opts: idle */
    CHECK(xd_monitor_record(m) == -ENOENT);
    CHECK(xd_monitor_poll(m) == 0 && !xd_monitor_note(m));
    CHECK(xd_monitor_idle(m) && xd_monitor_idle(NULL)); /* so a caller may stop polling */
    xd_monitor_close(m);
    xd_close(dev);
}

/* The errors open reports, one line each; a watch that cannot be set up is
 * a note, not an error. */
static void test_open_errors(void)
{
    struct xd_monitor *m = NULL;
    struct xd_monitor_opts mo = {.stats_log_label = "xd_stats_log"};
    CHECK(xd_monitor_open(&m, NULL, &mo, err, sizeof(err)) == -EINVAL && !m);
    write_file(ini, "[monitoring]\nmetrics_interval_sec = 1\n");
    struct xd_dev *dev = open_dev(ini);
    if (!dev)
        return;
    CHECK(xd_monitor_open(&m, dev, &mo, err, sizeof(err)) == -EINVAL && !m);
    CHECK_MSG(strstr(err, "metrics_interval_sec=1 (") && strstr(err, "allowed") &&
                  !strchr(err, '\n'),
              "%s", err);
    char link[320];
    snprintf(link, sizeof(link), "%s/link.jsonl", dir);
    CHECK(!symlink(logpath, link));
    mo.stats_log = link;
    CHECK(xd_monitor_open(&m, dev, &mo, err, sizeof(err)) == -ELOOP && !m);
    CHECK_MSG(strstr(err, "xd_stats_log=") && strstr(err, "link.jsonl") && !strchr(err, '\n'),
              "%s", err);
    unlink(link);
    xd_close(dev);

    write_file(ini, "[local]\nread_ahead_kb = 128\n");
    dev = open_dev(ini);
    if (!dev)
        return;
    struct xd_monitor_opts nodir = {.config_path = "/nonexistent-xdevice-dir/x.ini"};
    CHECK_MSG(!xd_monitor_open(&m, dev, &nodir, err, sizeof(err)), "%s", err);
    char *note = m ? xd_monitor_note(m) : NULL;
    CHECK_MSG(note && strstr(note, "cannot watch") && strstr(note, "config is not reloaded this run"),
              "%s", note ? note : "(none)");
    free(note);
    xd_monitor_close(m);
    xd_close(dev);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xd-monitor-XXXXXX");
    if (!mkdtemp(dir))
        SKIP("mkdtemp: %s", strerror(errno));
    snprintf(ini, sizeof(ini), "%s/app.ini", dir);
    snprintf(logpath, sizeof(logpath), "%s/app.jsonl", dir);
    test_build();
    test_reload();
    test_catch_up_at_open();
    test_shared_watch();
    test_watch_after_fork();
    test_records();
    test_no_records();
    test_open_errors();
    unlink(ini);
    unlink(logpath);
    rmdir(dir);
    return check_result();
}
