/* tier_cold_dir.c - unit test of the hybrid type where the cold file is
 * not at the caller's path (cold_directory) or the path is relative to a
 * base_directory: two devices on one file with a read cache see each
 * other's writes (the cache keys the file by the cold file, not by the
 * empty caller's path), xd_unlink removes the cold file, its map, the hot
 * copy, its tag and the shared memory object, an open racing xd_unlink in
 * another thread never fails, and a relative base_directory is applied
 * once.
 *
 * Needs /dev/shm on tmpfs (skips otherwise); cold files go under build/.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include "xdevice.h"
#include "check.h"

static char base_dir[4096], cold_dir[4200], hot_dir[256], rel_dir[256];
static char err[XD_ERRLEN];

static struct xd_config *config(const char *cache_mode, const char *base, const char *cold)
{
    struct xd_config *c = xd_config_new();
    CHECK(!xd_config_set(c, "storage_type", "hybrid", "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "base_directory", base, "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "cold_directory", cold, "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "hot_directory", hot_dir, "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "tier_extent_size", "64k", "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "hot_cache_size", "256k", "test", err, sizeof(err)));
    CHECK(!xd_config_set(c, "auto_migration", "false", "test", err, sizeof(err)));
    if (cache_mode) {
        CHECK(!xd_config_set(c, "enable_read_cache", "true", "test", err, sizeof(err)));
        if (!strcmp(cache_mode, "write-back"))
            CHECK(!xd_config_set(c, "enable_write_cache", "true", "test", err, sizeof(err)));
    }
    return c;
}

static unsigned entries(const char *dir, const char *prefix)
{
    unsigned n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return n;
}

/* Device b caches block 0, device a overwrites it, b reads it again: the
 * new data, from the cache both share (write-back: before any flush). */
static void test_devices_share_the_cache(const char *cache_mode)
{
    struct xd_config *c = config(cache_mode, base_dir, cold_dir);
    struct xd_dev *a = NULL, *b = NULL;
    struct xd_file *fa = NULL, *fb = NULL;
    static char w[4096], r[4096];
    CHECK_MSG(!xd_open(&a, c, 4, err, sizeof(err)) && !xd_open(&b, c, 4, err, sizeof(err)),
              "%s", err);
    CHECK_MSG(!xd_file_open(a, "f", XD_OPEN_CREATE, 1 << 20, &fa, err, sizeof(err)) &&
                  !xd_file_open(b, "f", XD_OPEN_CREATE, 1 << 20, &fb, err, sizeof(err)),
              "%s", err);
    if (fa && fb) {
        memset(w, 'A', sizeof(w));
        CHECK(xd_write(a, fa, w, sizeof(w), 0) == sizeof(w));
        CHECK(xd_read(b, fb, r, sizeof(r), 0) == sizeof(r) && r[0] == 'A');
        memset(w, 'B', sizeof(w));
        CHECK(xd_write(a, fa, w, sizeof(w), 0) == sizeof(w));
        CHECK(xd_read(b, fb, r, sizeof(r), 0) == sizeof(r));
        CHECK_MSG(r[0] == 'B' && r[4095] == 'B', "%s cache: device b read '%c' after a wrote 'B'",
                  cache_mode, r[0]);
    }
    if (fa)
        xd_file_close(a, fa);
    if (fb)
        xd_file_close(b, fb);
    if (a)
        CHECK_MSG(!xd_unlink(a, "f", err, sizeof(err)), "%s", err);
    xd_close(a);
    xd_close(b);
    xd_config_free(c);
}

/* xd_unlink finds what the hybrid file keeps under the cold file's name,
 * also while another device still has it open (which keeps working). */
static void test_unlink_removes_everything(void)
{
    struct xd_config *c = config(NULL, base_dir, cold_dir);
    struct xd_dev *a = NULL, *b = NULL;
    struct xd_file *fb = NULL;
    static char w[4096], r[4096];
    CHECK_MSG(!xd_open(&a, c, 4, err, sizeof(err)) && !xd_open(&b, c, 4, err, sizeof(err)),
              "%s", err);
    CHECK_MSG(!xd_file_open(b, "g", XD_OPEN_CREATE, 1 << 20, &fb, err, sizeof(err)), "%s", err);
    memset(w, 'C', sizeof(w));
    CHECK(fb && xd_write(b, fb, w, sizeof(w), 8192) == sizeof(w));
    CHECK(entries(cold_dir, "g") == 2); /* g and g.xdmap */
    CHECK(entries(hot_dir, "") == 2);   /* the hot copy and its tag */
    /* the shared state is named after the cold file's device and inode
     * (tier_shm.c): this file's own, whatever other runs hold in /dev/shm;
     * the inode is held here so no other run's file gets its number (and
     * name) once the file is gone */
    char cold[4400], shm[128];
    struct stat st;
    snprintf(cold, sizeof(cold), "%s/g", cold_dir);
    int pin = open(cold, O_PATH | O_CLOEXEC);
    CHECK(pin >= 0 && !fstat(pin, &st));
    snprintf(shm, sizeof(shm), "/dev/shm/xdevice-tier-%llx-%llx", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    CHECK_MSG(!access(shm, F_OK), "%s: no shared state while the file is open", shm);
    int rc = xd_unlink(a, "g", err, sizeof(err));
    CHECK_MSG(rc == 0, "xd_unlink: %d %s", rc, err);
    CHECK_MSG(entries(cold_dir, "g") == 0, "%u cold files left", entries(cold_dir, "g"));
    CHECK_MSG(entries(hot_dir, "") == 0, "%u hot files left", entries(hot_dir, ""));
    CHECK(fb && xd_read(b, fb, r, sizeof(r), 8192) == sizeof(r) && r[0] == 'C');
    if (fb)
        xd_file_close(b, fb);
    CHECK_MSG(access(shm, F_OK) && errno == ENOENT, "%s: the shared state was left", shm);
    if (pin >= 0)
        close(pin);
    CHECK(xd_unlink(a, "g", err, sizeof(err)) == -ENOENT);
    xd_close(a);
    xd_close(b);
    xd_config_free(c);
}

/* One thread opens, writes and closes a file over and over while another
 * removes it with xd_unlink: every open succeeds and reads back its own
 * write, whichever side of a removal it falls on. */
struct race {
    struct xd_config *cfg;
    atomic_int stop;
    int opens, failed;
    char why[XD_ERRLEN];
};

static void *race_opener(void *arg)
{
    struct race *r = arg;
    struct xd_dev *d = NULL;
    char e[XD_ERRLEN];
    static char w[4096], got[4096];
    if (xd_open(&d, r->cfg, 4, e, sizeof(e))) {
        snprintf(r->why, sizeof(r->why), "%s", e);
        r->failed++;
        return NULL;
    }
    for (int i = 0; !atomic_load(&r->stop) && !r->failed; i++) {
        struct xd_file *f = NULL;
        int rc = xd_file_open(d, "race", XD_OPEN_CREATE, 1 << 20, &f, e, sizeof(e));
        if (rc) {
            snprintf(r->why, sizeof(r->why), "open %d: %.400s", rc, e);
            r->failed++;
            break;
        }
        memset(w, 'a' + i % 26, sizeof(w));
        if (xd_write(d, f, w, sizeof(w), 65536) != sizeof(w) ||
            xd_read(d, f, got, sizeof(got), 65536) != sizeof(got) || got[0] != w[0]) {
            snprintf(r->why, sizeof(r->why), "open %d: the write did not read back", i);
            r->failed++;
        }
        xd_file_close(d, f);
        r->opens++;
    }
    xd_close(d);
    return NULL;
}

static void test_open_races_unlink(void)
{
    struct race r = {.cfg = config(NULL, base_dir, "")};
    struct xd_dev *d = NULL;
    pthread_t th;
    CHECK_MSG(!xd_open(&d, r.cfg, 4, err, sizeof(err)), "%s", err);
    if (!d || pthread_create(&th, NULL, race_opener, &r)) {
        xd_close(d);
        xd_config_free(r.cfg);
        return;
    }
    for (int i = 0; i < 3000 && !r.failed; i++) {
        int rc = xd_unlink(d, "race", err, sizeof(err));
        CHECK_MSG(rc == 0 || rc == -ENOENT, "xd_unlink: %d %s", rc, err);
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    CHECK_MSG(!r.failed, "after %d opens: %s", r.opens, r.why);
    xd_unlink(d, "race", err, sizeof(err));
    xd_close(d);
    xd_config_free(r.cfg);
}

/* The shared state's name is the cold file's device and inode, and the
 * inode of a file removed while open is freed at its last close, when
 * another file may get its number at once. A child process opens, removes
 * and closes one file over and over while this process opens another in
 * the same directory: the state of the file open here stays at its name
 * however the inode numbers fall. (The last close removed the object by
 * the name after the cold file was closed: the object of a file made
 * meanwhile with the freed inode went, and the next process to open that
 * file built a second state beside the first process's.) */
static bool own_state_there(const char *name)
{
    char path[4400], shm[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", cold_dir, name);
    if (stat(path, &st))
        return false;
    snprintf(shm, sizeof(shm), "/dev/shm/xdevice-tier-%llx-%llx", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    return !access(shm, F_OK);
}

static void open_remove_close(struct xd_dev *d, const char *name, unsigned times, bool check)
{
    static char w[4096];
    for (unsigned i = 0; i < times && !check_failures; i++) {
        struct xd_file *f = NULL;
        CHECK_MSG(!xd_file_open(d, name, XD_OPEN_CREATE, 1 << 16, &f, err, sizeof(err)), "%s",
                  err);
        if (!f)
            return;
        CHECK_MSG(!check || own_state_there(name), "%s, open %u: its shared state is gone", name, i);
        memset(w, 'a' + i % 26, sizeof(w));
        CHECK(xd_write(d, f, w, sizeof(w), 0) == sizeof(w));
        CHECK_MSG(!check || own_state_there(name), "%s, open %u: its shared state went during a write",
                  name, i);
        CHECK(!xd_unlink(d, name, err, sizeof(err)));
        xd_file_close(d, f);
    }
}

static void test_last_close_spares_a_new_file(void)
{
    struct xd_config *c = config(NULL, base_dir, cold_dir);
    struct xd_dev *d = NULL;
    pid_t child = fork(); /* before any device: each process opens its own */
    CHECK_MSG(!xd_open(&d, c, 4, err, sizeof(err)), "%s", err);
    if (child == 0) {
        if (d)
            open_remove_close(d, "churn", 400, false);
        _exit(check_failures ? 1 : 0);
    }
    if (d)
        open_remove_close(d, "kept", 400, true);
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
          !WEXITSTATUS(status));
    xd_close(d);
    xd_config_free(c);
}

/* A relative base_directory is applied once (the file is base/name), and
 * a relative cold_directory is taken from the working directory, as
 * mirror_directories is: the data, the map and the shared state agree. */
static void test_relative_dirs(const char *base, const char *cold, const char *where)
{
    struct xd_config *c = config(NULL, base, cold);
    struct xd_dev *d = NULL;
    struct xd_file *f = NULL;
    static char w[4096], r[4096];
    struct stat st;
    CHECK_MSG(!xd_open(&d, c, 4, err, sizeof(err)), "%s", err);
    CHECK_MSG(d && !xd_file_open(d, "h", XD_OPEN_CREATE, 1 << 20, &f, err, sizeof(err)), "%s",
              err);
    CHECK_MSG(!stat(where, &st), "%s: not made", where);
    memset(w, 'D', sizeof(w));
    CHECK(f && xd_write(d, f, w, sizeof(w), 0) == sizeof(w));
    CHECK(f && xd_read(d, f, r, sizeof(r), 0) == sizeof(r) && r[0] == 'D');
    if (f)
        xd_file_close(d, f);
    if (d)
        CHECK_MSG(!xd_unlink(d, "h", err, sizeof(err)), "%s", err);
    CHECK_MSG(stat(where, &st) && errno == ENOENT, "%s: left", where);
    xd_close(d);
    xd_config_free(c);
}

int main(void)
{
    struct statfs sf;
    if (statfs("/dev/shm", &sf) || sf.f_type != TMPFS_MAGIC)
        SKIP("/dev/shm is not a tmpfs");
    snprintf(hot_dir, sizeof(hot_dir), "/dev/shm/xd-unit-tier-cold-%d", (int)getpid());
    snprintf(rel_dir, sizeof(rel_dir), "build/tests/unit/tier-cold-%d", (int)getpid());
    mkdir("build/tests", 0755);
    mkdir("build/tests/unit", 0755);
    if ((mkdir(rel_dir, 0755) && errno != EEXIST) || !realpath(rel_dir, base_dir))
        SKIP("cannot create %s", rel_dir);
    snprintf(cold_dir, sizeof(cold_dir), "%s/cold", base_dir);
    if (mkdir(cold_dir, 0755) && errno != EEXIST)
        SKIP("cannot create %s", cold_dir);
    test_devices_share_the_cache("write-through");
    test_devices_share_the_cache("write-back");
    test_unlink_removes_everything();
    test_open_races_unlink();
    test_last_close_spares_a_new_file();
    char rel_cold[300], where[310];
    snprintf(where, sizeof(where), "%s/h", rel_dir);
    test_relative_dirs(rel_dir, "", where);
    snprintf(rel_cold, sizeof(rel_cold), "%s/cold", rel_dir);
    snprintf(where, sizeof(where), "%s/h", rel_cold);
    test_relative_dirs(hot_dir, rel_cold, where); /* any absolute base_directory */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", hot_dir, rel_dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", rel_dir);
    return check_result();
}
