/* config_save.c - unit test of the tuner's config API: the tunables table,
 * and xd_config_save's round trip, file mode, refusal of symlinks at the
 * path, and that 10,000 rewrites racing with readers only ever show a whole
 * written version (planted temp names: tests/unit/fileutil.c, which tests
 * the atomic write it uses). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "xdevice.h"

static char dir[256];
static char err[XD_ERRLEN];

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f))
        exit(1);
}

static char *read_file(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static bool configs_equal(const struct xd_config *a, const struct xd_config *b)
{
    for (int k = 0; k < XD_KEY_COUNT; k++)
        if (!xd_config_key_equal(a, b, k))
            return false;
    return true;
}

/* --- tunables ------------------------------------------------------------ */

static void test_tunables(void)
{
    static const char *required[] = {
        "storage_type", "async", "max_events", "use_direct_io", "read_ahead_kb", "cache_size",
        "cache_policy", "compression_type", "compression_level", "compress_chunk_size",
        "hot_cache_size", "hot_access_threshold", "cold_timeout_sec", "tier_extent_size",
        "tier_sequential_cutoff", "enable_read_cache", "enable_page_cache"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        CHECK_MSG(xd_tunable_find(required[i]), "%s is not tunable", required[i]);
    CHECK(!xd_tunable_find("base_directory"));
    CHECK(!xd_tunable_find("no_such_key"));
    CHECK(!xd_tunable_find(NULL));
    CHECK(xd_tunable_get(xd_tunable_count()) == NULL);

    for (unsigned i = 0; i < xd_tunable_count(); i++) {
        const struct xd_tunable *t = xd_tunable_get(i);
        CHECK(t && xd_tunable_find(t->key) == t);
        CHECK_MSG(t->lo <= t->hi && t->step > 0, "%s: lo %g hi %g step %g", t->key, t->lo, t->hi,
                  t->step);
        CHECK_MSG(!t->log_scale || (t->step > 1 && t->lo > 0), "%s: log scale from %g by %g",
                  t->key, t->lo, t->step);
        CHECK_MSG((t->type == XD_T_ENUM) == (t->choices != NULL), "%s", t->key);
        int k = xd_key_lookup(t->key);
        if (k < 0) { /* ahead of its schema line: only its default can be set */
            CHECK_MSG(t->pending, "%s is not in the schema but not pending", t->key);
            continue;
        }
        CHECK(t->type == (int)xd_keys[k].type);
        CHECK(t->live == !!(xd_keys[k].flags & XD_K_LIVE));
        if (t->type == XD_T_INT || t->type == XD_T_SIZE)
            CHECK_MSG(t->lo >= xd_keys[k].min && t->hi <= xd_keys[k].max,
                      "%s: searched %g..%g outside the schema's %g..%g", t->key, t->lo, t->hi,
                      xd_keys[k].min, xd_keys[k].max);
        /* every bound is a value the parser accepts */
        struct xd_config *cfg = xd_config_new();
        char text[64];
        if (!t->pending && (t->type == XD_T_INT || t->type == XD_T_SIZE)) {
            snprintf(text, sizeof(text), "%.0f", t->lo);
            CHECK_MSG(!xd_config_set(cfg, t->key, text, "test", err, sizeof(err)), "%s", err);
            snprintf(text, sizeof(text), "%.0f", t->hi);
            CHECK_MSG(!xd_config_set(cfg, t->key, text, "test", err, sizeof(err)), "%s", err);
        }
        xd_config_free(cfg);
    }
    const struct xd_tunable *t = xd_tunable_find("cache_policy");
    CHECK(t->type == XD_T_ENUM && !strcmp(t->choices, "s3fifo|lru") && t->hi == 1);
    t = xd_tunable_find("storage_type");
    CHECK(t->type == XD_T_ENUM && !strstr(t->choices, "hybrid") && !t->live);
    t = xd_tunable_find("read_ahead_kb");
    CHECK(t->live && !t->pending && t->log_scale && t->type == XD_T_INT);
    t = xd_tunable_find("compression_level");
    CHECK(t->live && !t->log_scale && t->lo == 1 && t->hi == 22);
    t = xd_tunable_find("use_direct_io");
    CHECK(t->type == XD_T_BOOL && t->lo == 0 && t->hi == 1 && !t->live);
    t = xd_tunable_find("async");
    CHECK(t->type == XD_T_ENUM && t->hi == 2 && !t->live);
    t = xd_tunable_find("tier_extent_size"); /* the hybrid type has landed; fixed at open */
    CHECK(t->type == XD_T_SIZE && !t->pending && !t->live);
}

/* --- save ---------------------------------------------------------------- */

static void test_round_trip(void)
{
    char path[512];
    path_in_dir(path, sizeof(path), "round.ini");
    struct xd_config *cfg = xd_config_new(), *back = xd_config_new();
    CHECK(!xd_config_set(cfg, "read_ahead_kb", "512", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "compression_type", "zstd", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "compression_level", "9", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "base_directory", "/srv/data dir", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "compression_threshold", "33.5", "test", err, sizeof(err)));
    CHECK_MSG(!xd_config_save(cfg, path, "written by the unit test\nsecond line", err, sizeof(err)),
              "%s", err);
    const char *text = read_file(path);
    const char *top = "# written by the unit test\n# second line\n[local]\n";
    CHECK_MSG(!strncmp(text, top, strlen(top)), "file starts: %.60s", text);
    CHECK_MSG(!xd_config_load(back, path, err, sizeof(err)), "%s", err);
    CHECK(configs_equal(cfg, back));
    CHECK(back->read_ahead_kb == 512 && back->compression_level == 9);
    /* the file passes the same checks: keys never set stay unset (a
     * regular-type config must not come back with enable_compression set) */
    CHECK_MSG(!xd_config_check(back, err, sizeof(err)), "%s", err);
    CHECK(!back->origin[XD_KEY_enable_compression] && !strstr(text, "enable_compression"));
    struct xd_config *direct = xd_config_new(), *direct_back = xd_config_new();
    CHECK(!xd_config_set(direct, "storage_type", "direct", "test", err, sizeof(err)));
    CHECK(!xd_config_save(direct, path, NULL, err, sizeof(err)));
    CHECK(!xd_config_load(direct_back, path, err, sizeof(err)));
    CHECK_MSG(!xd_config_check(direct_back, err, sizeof(err)), "%s", err);
    CHECK(configs_equal(direct, direct_back));
    xd_config_free(direct);
    xd_config_free(direct_back);
    /* a missing directory is one line naming the path */
    CHECK(xd_config_save(cfg, "/nonexistent-xd/dir/x.ini", NULL, err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "/nonexistent-xd/dir/x.ini") != NULL);
    xd_config_free(cfg);
    xd_config_free(back);
}

/* Sizes are written as the schema writes them (64m, not 67108864), and
 * read back to the same bytes. */
static void test_size_units(void)
{
    char path[512];
    path_in_dir(path, sizeof(path), "sizes.ini");
    struct xd_config *cfg = xd_config_new(), *back = xd_config_new();
    CHECK(!xd_config_set(cfg, "cache_size", "8388608", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "cache_block_size", "16384", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "extent_size", "1572864", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "tmpfs_size", "2g", "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "default_file_size", "4097", "test", err, sizeof(err)));
    CHECK_MSG(!xd_config_save(cfg, path, NULL, err, sizeof(err)), "%s", err);
    const char *text = read_file(path);
    CHECK_MSG(strstr(text, "cache_size = 8m\n") && strstr(text, "cache_block_size = 16k\n") &&
              strstr(text, "extent_size = 1536k\n") && strstr(text, "tmpfs_size = 2g\n") &&
              strstr(text, "default_file_size = 4097\n"), "%s", text);
    CHECK_MSG(!xd_config_load(back, path, err, sizeof(err)), "%s", err);
    CHECK(configs_equal(cfg, back));
    char buf[32];
    CHECK(!strcmp(xd_size_text(0, buf, sizeof(buf)), "0"));
    CHECK(!strcmp(xd_size_text((int64_t)3 << 40, buf, sizeof(buf)), "3t"));
    xd_config_free(cfg);
    xd_config_free(back);
}

static void test_mode(void)
{
    char path[512];
    struct stat st;
    path_in_dir(path, sizeof(path), "mode.ini");
    struct xd_config *cfg = xd_config_new();
    mode_t old = umask(077); /* the configured mode wins over the umask */
    CHECK(cfg->config_file_mode == 0600);
    CHECK(!xd_config_save(cfg, path, NULL, err, sizeof(err)));
    CHECK(!stat(path, &st) && (st.st_mode & 07777) == 0600);
    CHECK(!xd_config_set(cfg, "config_file_mode", "0640", "test", err, sizeof(err)));
    CHECK(!xd_config_save(cfg, path, NULL, err, sizeof(err)));
    CHECK_MSG(!stat(path, &st) && (st.st_mode & 07777) == 0640, "mode %o", st.st_mode & 07777);
    umask(old);
    xd_config_free(cfg);
}

/* A symlink at the path is refused, and its target keeps its bytes. */
static void test_symlink_at_path(void)
{
    char path[512], victim[512];
    struct stat st;
    path_in_dir(path, sizeof(path), "link.ini");
    path_in_dir(victim, sizeof(victim), "victim");
    write_file(victim, "precious\n");
    CHECK(!symlink(victim, path));
    struct xd_config *cfg = xd_config_new();
    int rc = xd_config_save(cfg, path, NULL, err, sizeof(err));
    CHECK(rc == -ELOOP);
    CHECK(strstr(err, path) && strstr(err, "symbolic link"));
    CHECK(!strcmp(read_file(victim), "precious\n"));
    CHECK(!lstat(path, &st) && S_ISLNK(st.st_mode));
    /* a dangling link too: nothing is created at its target */
    path_in_dir(path, sizeof(path), "dangling.ini");
    path_in_dir(victim, sizeof(victim), "never-created");
    CHECK(!symlink(victim, path));
    CHECK(xd_config_save(cfg, path, NULL, err, sizeof(err)) == -ELOOP);
    CHECK(access(victim, F_OK) && errno == ENOENT);
    xd_config_free(cfg);
}

/* A value the INI syntax cannot hold as given is refused with one line and
 * nothing written (a control character already by xd_config_set): a
 * newline wrote keys of its own (xdconfig set
 * "trace=/x\n[fault]\nenable_fault_injection = true"), " ; b" read back cut.
 * Values that only look odd are kept, and read back the same. */
static void test_values_that_would_not_read_back(void)
{
    static const char *bad[] = {"/x\n[fault]\nenable_fault_injection = true", "/a ; b", ";b",
                                "/a\tb", " /a", "/a ", "/a\r", "/a\x1b[2J"};
    static const char *odd[] = {"/a;b", "/t #x", "a = b:c", "/d\xc3\xbcr", "#/x", "[x]"};
    char path[512];
    path_in_dir(path, sizeof(path), "values.ini");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct xd_config *cfg = xd_config_new();
        write_file(path, "[local]\nasync = sync\n");
        bool control = strpbrk(bad[i], "\n\t\r\x1b");
        /* a control character is refused as it is set, the rest at save */
        int set = xd_config_set(cfg, "trace", bad[i], "test:9", err, sizeof(err));
        CHECK_MSG(control ? set == -EINVAL : !set, "%zu: set %d", i, set);
        if (!control)
            CHECK_MSG(xd_config_save(cfg, path, NULL, err, sizeof(err)) == -EINVAL, "%zu", i);
        CHECK_MSG(strstr(err, "test:9: trace=") && !strchr(err, '\n') && strstr(err, "allowed"),
                  "%s", err);
        CHECK(!strcmp(read_file(path), "[local]\nasync = sync\n"));
        xd_config_free(cfg);
    }
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        struct xd_config *cfg = xd_config_new(), *back = xd_config_new();
        CHECK(!xd_config_set(cfg, "trace", odd[i], "test", err, sizeof(err)));
        CHECK_MSG(!xd_config_save(cfg, path, NULL, err, sizeof(err)), "%s", err);
        CHECK_MSG(!xd_config_load(back, path, err, sizeof(err)), "%s", err);
        CHECK_MSG(!strcmp(back->trace, odd[i]), "%s read back as %s", odd[i], back->trace);
        xd_config_free(cfg);
        xd_config_free(back);
    }
}

/* --- atomicity: rewrites racing with readers ------------------------------ */

#define VERSIONS 4
#define REWRITES 10000
#define READERS 3

static struct xd_config *versions[VERSIONS];
static char race_path[512];
static atomic_bool writing_done;
static atomic_ulong loads, bad_loads;

/* Versions differ in several keys and in length, so any mix of two is
 * caught by the comparison. */
static void make_versions(void)
{
    static const char *dirs[VERSIONS] = {"", "/a", "/a/much/longer/base/directory/name/here",
                                         "/b/c"};
    char text[32];
    for (int v = 0; v < VERSIONS; v++) {
        versions[v] = xd_config_new();
        snprintf(text, sizeof(text), "%d", 100 + v);
        xd_config_set(versions[v], "read_ahead_kb", text, "test", err, sizeof(err));
        snprintf(text, sizeof(text), "%d", 1 + v);
        xd_config_set(versions[v], "compression_level", text, "test", err, sizeof(err));
        snprintf(text, sizeof(text), "%dm", 64 + v);
        xd_config_set(versions[v], "cache_size", text, "test", err, sizeof(err));
        xd_config_set(versions[v], "base_directory", dirs[v], "test", err, sizeof(err));
    }
}

static void *race_reader(void *arg)
{
    char rerr[XD_ERRLEN];
    while (!atomic_load(&writing_done)) {
        struct xd_config *cfg = xd_config_new();
        int rc = xd_config_load(cfg, race_path, rerr, sizeof(rerr)), match = -1;
        for (int v = 0; !rc && v < VERSIONS && match < 0; v++)
            if (configs_equal(cfg, versions[v]))
                match = v;
        if (match < 0) {
            if (atomic_fetch_add(&bad_loads, 1) < 3)
                fprintf(stderr, "reader: rc %d (%s), matches no version\n", rc, rc ? rerr : "");
        }
        atomic_fetch_add(&loads, 1);
        xd_config_free(cfg);
    }
    return NULL;
}

static void test_rewrites_race_readers(void)
{
    pthread_t readers[READERS];
    char werr[XD_ERRLEN];
    int failed = 0;
    path_in_dir(race_path, sizeof(race_path), "race.ini");
    make_versions();
    CHECK(!xd_config_save(versions[0], race_path, NULL, werr, sizeof(werr)));
    for (int i = 0; i < READERS; i++)
        pthread_create(&readers[i], NULL, race_reader, NULL);
    for (int i = 1; i <= REWRITES && !failed; i++)
        failed = xd_config_save(versions[i % VERSIONS], race_path, "race", werr, sizeof(werr));
    atomic_store(&writing_done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(readers[i], NULL);
    CHECK_MSG(!failed, "save failed: %s", werr);
    CHECK_MSG(atomic_load(&bad_loads) == 0, "%lu of %lu loads saw no whole version",
              atomic_load(&bad_loads), atomic_load(&loads));
    /* the readers really raced the writer */
    CHECK_MSG(atomic_load(&loads) > 1000, "only %lu loads", atomic_load(&loads));
    if (!atomic_load(&bad_loads))
        fprintf(stderr, "%d rewrites, %lu concurrent loads, all whole\n", REWRITES,
                atomic_load(&loads));
    for (int v = 0; v < VERSIONS; v++)
        xd_config_free(versions[v]);
}

/* The watch hears a save (rename over), a write in place and a removal of
 * its file, nothing of other files, and the end of its directory. */
static void test_watch(void)
{
    char sub[300], path[400], other[400];
    struct xd_config_watch *w;
    snprintf(sub, sizeof(sub), "%s/watched", dir);
    snprintf(path, sizeof(path), "%s/x.ini", sub);
    snprintf(other, sizeof(other), "%s/y.ini", sub);
    CHECK(!mkdir(sub, 0755));
    CHECK(xd_config_watch_open(&w, "/nonexistent-xd/x.ini", err, sizeof(err)) == -ENOENT);
    CHECK(strstr(err, "/nonexistent-xd") != NULL);
    CHECK_MSG(!xd_config_watch_open(&w, path, err, sizeof(err)), "%s", err);
    CHECK(xd_config_watch_fd(w) >= 0);
    CHECK(xd_config_watch_poll(w) == XD_WATCH_NONE);
    struct xd_config *cfg = xd_config_new();
    CHECK(!xd_config_save(cfg, path, NULL, err, sizeof(err)));
    CHECK(xd_config_watch_poll(w) == XD_WATCH_CHANGED);
    CHECK(xd_config_watch_poll(w) == XD_WATCH_NONE); /* drained */
    write_file(other, "[local]\n");
    CHECK(!xd_config_save(cfg, other, NULL, err, sizeof(err)));
    CHECK(xd_config_watch_poll(w) == XD_WATCH_NONE);
    write_file(path, "[local]\nread_ahead_kb = 1\n");
    CHECK(xd_config_watch_poll(w) == XD_WATCH_CHANGED);
    CHECK(!unlink(path));
    CHECK(xd_config_watch_poll(w) == XD_WATCH_REMOVED);
    CHECK(!xd_config_save(cfg, path, NULL, err, sizeof(err)));
    CHECK(!unlink(path));
    CHECK(xd_config_watch_poll(w) == XD_WATCH_REMOVED); /* the last word wins */
    CHECK(!unlink(other) && !rmdir(sub));
    CHECK(xd_config_watch_poll(w) == XD_WATCH_GONE);
    CHECK(xd_config_watch_fd(w) == -1 && xd_config_watch_poll(w) == XD_WATCH_GONE);
    xd_config_watch_close(w);
    xd_config_free(cfg);
}

/* No temp file is left behind by successful or refused saves. */
static void test_no_leftovers(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q '^\\.'", dir); /* temps: ".NAME.XXXXXX" */
    CHECK(system(cmd) != 0);
}

int main(void)
{
    /* fsync is the slow part of a save and not what the race tests: use a
     * tmpfs when there is one, so 10,000 rewrites take seconds */
    const char *base = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/xd-unit-save-XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    test_tunables();
    test_round_trip();
    test_size_units();
    test_mode();
    test_symlink_at_path();
    test_values_that_would_not_read_back();
    test_rewrites_race_readers();
    test_watch();
    test_no_leftovers();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    return check_result();
}
