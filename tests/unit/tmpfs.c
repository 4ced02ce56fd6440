/* tmpfs.c - unit test of the tmpfs type through the public API: data lands on
 * the tmpfs and not on disk, disk directories are refused, backup_to_disk
 * backs up and restores, auto_mount mounts once (only on a directory it makes)
 * and its last user unmounts; planted symlinks and other users' directories
 * are refused. Exit 0 pass, 1 fail, 77 skip.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../backends/xdevice.h"
#include "../../backends/layers/tmpfs_stamp.h"

/* The per-user default, /dev/shm/xdevice-UID, for the effective uid. */
static const char *fallback_dir(void)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/dev/shm/xdevice-%u", (unsigned)geteuid());
    return dir;
}

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static char shm_base[PATH_MAX];  /* parent of every tmpfs_directory used */
static char disk_base[PATH_MAX]; /* parent of every disk path P */

/* --- helpers ------------------------------------------------------------- */

static bool on_tmpfs(const char *path)
{
    struct statfs sf;
    return !statfs(path, &sf) && sf.f_type == TMPFS_MAGIC;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
}

/* The whole file, malloc'd, or NULL when it cannot be read. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    unsigned char *buf = NULL;
    if (!f)
        return NULL;
    if (!fstat(fileno(f), &st) && (buf = malloc((size_t)st.st_size + 1)) &&
        fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
        *len = (size_t)st.st_size;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static bool file_equals(const char *path, const unsigned char *want, size_t len)
{
    size_t have_len = 0;
    unsigned char *have = slurp(path, &have_len);
    bool same = have && have_len == len && !memcmp(have, want, len);
    free(have);
    return same;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Open a tmpfs device at dir with extra key/value pairs (NULL-terminated). */
static int open_dev(struct xd_dev **dev, const char *dir, const char *const *kv, char *err)
{
    struct xd_config *cfg = xd_config_new();
    int rc = cfg ? 0 : -ENOMEM;
    if (!rc)
        rc = xd_config_set(cfg, "storage_type", "tmpfs", "test", err, XD_ERRLEN);
    if (!rc)
        rc = xd_config_set(cfg, "tmpfs_directory", dir, "test", err, XD_ERRLEN);
    for (; !rc && kv && kv[0]; kv += 2)
        rc = xd_config_set(cfg, kv[0], kv[1], "test", err, XD_ERRLEN);
    if (!rc)
        rc = xd_open(dev, cfg, 32, err, XD_ERRLEN);
    xd_config_free(cfg);
    return rc;
}

/* The unsigned number after "key": in the stats JSON, or -1. */
static long long stat_value(struct xd_dev *dev, const char *key)
{
    char *json = xd_stats_json(dev), pat[64];
    long long v = -1;
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    char *at = json ? strstr(json, pat) : NULL;
    if (at && at[strlen(pat)] >= '0' && at[strlen(pat)] <= '9')
        v = strtoll(at + strlen(pat), NULL, 10);
    free(json);
    return v;
}

static bool stats_have(struct xd_dev *dev, const char *text, bool show)
{
    char *json = xd_stats_json(dev);
    bool found = json && strstr(json, text);
    if (!found && show)
        printf("  stats: %s\n", json ? json : "(null)");
    free(json);
    return found;
}

static bool stats_contain(struct xd_dev *dev, const char *text)
{
    return stats_have(dev, text, true);
}

/* The tmpfs copies in dir: its files but the stamps beside them. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' && !strstr(e->d_name, "%xdstamp");
    closedir(d);
    return n;
}

static bool has_prefix_entry(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)))
        found |= !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return found;
}

/* Remove the files in dir, as a reboot would empty a tmpfs. */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX * 2];
    if (!d)
        return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Whether some file in dir holds want at off. */
static bool dir_has_data(const char *dir, const unsigned char *want, size_t len, size_t off)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX * 2];
    bool found = false;
    while (d && !found && (e = readdir(d))) {
        size_t n;
        unsigned char *buf;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((buf = slurp(path, &n))) {
            found = n >= off + len && !memcmp(buf + off, want, len);
            free(buf);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* --- data lands on the tmpfs --------------------------------------------- */

/* Without backup_to_disk the data is only in the copy (XD_CFG_DATA_ELSEWHERE):
 * the size a caller sees is the copy's, not the disk path's (fio laid a
 * full-size disk file out, nothing read it), and xd_path_prepare makes the
 * copy, leaving the disk path alone. With backup_to_disk it is the path's. */
static void test_sizes_are_the_copies(const char *dir, const char *p, const char *pdir)
{
    char err[XD_ERRLEN] = "", r[PATH_MAX + 32];
    uint64_t size = 0, logical = 0;
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", "tmpfs", "test", err, sizeof(err));
    xd_config_set(cfg, "tmpfs_directory", dir, "test", err, sizeof(err));
    CHECK(xd_config_caps(cfg) & XD_CFG_DATA_ELSEWHERE, "caps 0x%x", xd_config_caps(cfg));
    int rc = xd_path_logical_size(cfg, p, &size, err, sizeof(err));
    CHECK(rc == 0 && size == 1 << 20, "%s: %d, %llu (the copy's size, not the disk file's 9)", p,
          rc, (unsigned long long)size);
    snprintf(r, sizeof(r), "%s/new.dat", pdir);
    rc = xd_path_logical_size(cfg, r, &size, err, sizeof(err));
    CHECK(rc == -ENOENT, "%s before prepare: %d", r, rc);
    rc = xd_path_prepare(cfg, r, 3 << 20, &logical, err, sizeof(err));
    CHECK(rc == 0 && logical == 3 << 20, "prepare %s: %d %llu %s", r, rc,
          (unsigned long long)logical, err);
    rc = xd_path_logical_size(cfg, r, &size, err, sizeof(err));
    CHECK(rc == 0 && size == 3 << 20, "%s after prepare: %d %llu", r, rc, (unsigned long long)size);
    CHECK(access(r, F_OK) && errno == ENOENT, "prepare made %s on disk", r);
    xd_config_set(cfg, "backup_to_disk", "true", "test", err, sizeof(err));
    CHECK(!(xd_config_caps(cfg) & XD_CFG_DATA_ELSEWHERE), "backup_to_disk: caps 0x%x",
          xd_config_caps(cfg));
    rc = xd_path_logical_size(cfg, p, &size, err, sizeof(err));
    CHECK(rc == 0 && size == 9, "backup_to_disk: %s: %d %llu", p, rc, (unsigned long long)size);
    xd_config_free(cfg);
}

static void test_data_on_tmpfs(void)
{
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32], q[PATH_MAX + 32],
         pdir[PATH_MAX + 16], qdir[PATH_MAX + 16], text[PATH_MAX + 64];
    enum { LEN = 64 * 1024, OFF = 4096 };
    static unsigned char a[LEN], b[LEN], back[LEN];
    struct xd_dev *dev = NULL;
    struct xd_file *fp = NULL, *fq = NULL;

    snprintf(dir, sizeof(dir), "%s/plain", shm_base);
    snprintf(pdir, sizeof(pdir), "%s/a", disk_base);
    snprintf(qdir, sizeof(qdir), "%s/b", disk_base);
    snprintf(p, sizeof(p), "%s/x.dat", pdir); /* same base name, two directories */
    snprintf(q, sizeof(q), "%s/x.dat", qdir);
    mkdir(pdir, 0755);
    write_text(p, "ORIGINAL\n");
    fill(a, LEN, 1);
    fill(b, LEN, 2);

    int rc = open_dev(&dev, dir, NULL, err);
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (rc)
        return;
    CHECK(xd_dev_notice(dev) == NULL, "unexpected notice '%s'", xd_dev_notice(dev));
    rc = xd_file_open(dev, p, XD_OPEN_CREATE, 1 << 20, &fp, err, sizeof(err));
    CHECK(rc == 0, "file_open %s: %d %s", p, rc, err);
    rc = rc ? rc : xd_file_open(dev, q, XD_OPEN_CREATE, 1 << 20, &fq, err, sizeof(err));
    CHECK(rc == 0, "file_open %s: %d %s", q, rc, err);
    if (!rc) {
        CHECK(xd_write(dev, fp, a, LEN, OFF) == LEN, "write p");
        CHECK(xd_write(dev, fq, b, LEN, OFF) == LEN, "write q");
        CHECK(xd_read(dev, fp, back, LEN, OFF) == LEN && !memcmp(back, a, LEN), "read back p");
        CHECK(xd_read(dev, fq, back, LEN, OFF) == LEN && !memcmp(back, b, LEN), "read back q");
        CHECK(xd_flush(dev, fp, 0) == 0, "flush without backup");
        snprintf(text, sizeof(text), "\"directory\":\"%s\"", dir);
        CHECK(stats_contain(dev, text), "stats lack %s", text);
        CHECK(stats_contain(dev, "\"mounted_by_us\":false"), "mounted_by_us");
        CHECK(stats_contain(dev, "\"file\":{"), "the file driver's stats follow tmpfs's");
    }
    xd_file_close(dev, fp);
    xd_file_close(dev, fq);
    xd_close(dev);

    CHECK(count_entries(dir) == 2, "%d copies in %s, want 2", count_entries(dir), dir);
    /* the file at p was loaded into its copy, as psync would have read it */
    CHECK(dir_has_data(dir, (const unsigned char *)"ORIGINAL\n", 9, 0),
          "p's disk data not loaded into its copy under %s", dir);
    CHECK(dir_has_data(dir, a, LEN, OFF), "p's data not found under %s", dir);
    CHECK(dir_has_data(dir, b, LEN, OFF), "q's data not found under %s", dir);
    CHECK(file_equals(p, (const unsigned char *)"ORIGINAL\n", 9), "%s was touched", p);
    CHECK(access(qdir, F_OK) && errno == ENOENT, "%s was created without backup_to_disk", qdir);
    test_sizes_are_the_copies(dir, p, pdir);
}

/* --- a disk directory is refused ----------------------------------------- */

static void test_disk_dir_refused(void)
{
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 32], parent[PATH_MAX + 16];
    struct xd_dev *dev = NULL;
    if (on_tmpfs(disk_base)) {
        printf("SKIP disk directory refusal: %s is on a tmpfs\n", disk_base);
        return;
    }
    snprintf(parent, sizeof(parent), "%s/notmpfs", disk_base);
    snprintf(dir, sizeof(dir), "%s/data", parent);
    int rc = open_dev(&dev, dir, NULL, err);
    CHECK(rc == -EINVAL, "open on disk: rc %d, want -EINVAL", rc);
    CHECK(strstr(err, "not on a tmpfs") && strstr(err, dir), "message: '%s'", err);
    /* the directory is not there: said, with where it would be made */
    CHECK(strstr(err, "does not exist, and ") && strstr(err, ", where it would be made,"),
          "message: '%s'", err);
    CHECK(!strchr(err, '\n'), "message is more than one line: '%s'", err);
    CHECK(access(parent, F_OK) && errno == ENOENT, "a refused %s was created", parent);
    if (!rc)
        xd_close(dev);
}

/* --- backup_to_disk ------------------------------------------------------ */

enum { BK_LEN = (1 << 20) + 4096 };

/* Write through the device: data, a hole, data; expect mirrors the file. */
static void backup_write(struct xd_dev *dev, struct xd_file *f, unsigned char *expect)
{
    memset(expect, 0, BK_LEN);
    fill(expect, 256 * 1024, 3);
    fill(expect + (1 << 20), 4096, 4);
    CHECK(xd_write(dev, f, expect, 256 * 1024, 0) == 256 * 1024, "write head");
    CHECK(xd_write(dev, f, expect + (1 << 20), 4096, 1 << 20) == 4096, "write tail");
}

static bool wait_for_backup(const char *p, const unsigned char *expect, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (file_equals(p, expect, BK_LEN))
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static void test_backup(void)
{
    static const char *const kv[] = {"backup_to_disk", "true", "backup_interval_sec", "1", NULL};
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32], tmp[PATH_MAX + 64];
    static unsigned char expect[BK_LEN], back[BK_LEN];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/backup", shm_base);
    snprintf(p, sizeof(p), "%s/backup/data.bin", disk_base); /* directory made on backup */
    snprintf(tmp, sizeof(tmp), "%s/backup", disk_base);
    int rc = open_dev(&dev, dir, kv, err);
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (rc)
        return;
    rc = xd_file_open(dev, p, XD_OPEN_CREATE, 0, &f, err, sizeof(err));
    CHECK(rc == 0, "file_open: %d %s", rc, err);
    if (!rc) {
        backup_write(dev, f, expect);
        CHECK(xd_flush(dev, f, 0) == 0, "fsync");
        CHECK(file_equals(p, expect, BK_LEN), "after fsync %s differs from what was written", p);
        CHECK(!stat(p, &st) && (uint64_t)st.st_blocks * 512 < BK_LEN,
              "the backup's hole was filled in (%lld blocks)", (long long)st.st_blocks);
        CHECK(!has_prefix_entry(tmp, ".data.bin."), "a temporary copy left in %s", tmp);
        fill(expect + 8192, 4096, 5); /* no sync: the thread must pick it up */
        CHECK(xd_write(dev, f, expect + 8192, 4096, 8192) == 4096, "write 3");
        CHECK(wait_for_backup(p, expect, 5), "no periodic backup within 5 s");
        fill(expect + 16384, 512, 6);
        CHECK(xd_write(dev, f, expect + 16384, 512, 16384) == 512, "write 4");
        CHECK(xd_flush(dev, f, 1) == 0, "fdatasync");
        CHECK(file_equals(p, expect, BK_LEN), "after fdatasync %s differs", p);
        CHECK(stat_value(dev, "backups") >= 2, "backups %lld", stat_value(dev, "backups"));
        CHECK(stat_value(dev, "backup_bytes") > 0, "backup_bytes");
        CHECK(stats_contain(dev, "\"last_backup_error\":null"), "a backup failed");
        fill(expect + 20480, 4096, 7); /* only close backs this one up */
        CHECK(xd_write(dev, f, expect + 20480, 4096, 20480) == 4096, "write 5");
        xd_file_close(dev, f);
    }
    xd_close(dev);
    CHECK(file_equals(p, expect, BK_LEN), "after close %s differs", p);

    empty_dir(dir); /* as after a reboot */
    dev = NULL;
    f = NULL;
    rc = open_dev(&dev, dir, kv, err);
    CHECK(rc == 0, "reopen: %d %s", rc, err);
    if (rc)
        return;
    rc = xd_file_open(dev, p, 0, 0, &f, err, sizeof(err));
    CHECK(rc == 0, "file_open for restore: %d %s", rc, err);
    if (!rc) {
        CHECK(xd_read(dev, f, back, BK_LEN, 0) == BK_LEN, "read restored");
        CHECK(!memcmp(back, expect, BK_LEN), "restored data differ");
        CHECK(stat_value(dev, "restores") == 1, "restores %lld", stat_value(dev, "restores"));
        CHECK(stat_value(dev, "restore_bytes") >= 256 * 1024 + 4096, "restore_bytes %lld",
              stat_value(dev, "restore_bytes"));
        xd_file_close(dev, f);
    }
    xd_close(dev);
    CHECK(file_equals(p, expect, BK_LEN), "after the restore run %s differs", p);
}

/* A disk path with another name (a hard link): each backup is a new file
 * renamed over the path, which would leave the other name with the old
 * data, so backup_to_disk refuses it with one line; without backups the
 * disk file is never written, and the path opens. */
static void test_backup_refuses_hard_links(void)
{
    static const char *const kv[] = {"backup_to_disk", "true", NULL};
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32], q[PATH_MAX + 32];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    snprintf(dir, sizeof(dir), "%s/links", shm_base);
    snprintf(p, sizeof(p), "%s/linked.bin", disk_base);
    snprintf(q, sizeof(q), "%s/other-name.bin", disk_base);
    write_text(p, "the data");
    CHECK(link(p, q) == 0, "link %s: %s", q, strerror(errno));
    int rc = open_dev(&dev, dir, kv, err);
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (!rc) {
        rc = xd_file_open(dev, p, 0, 0, &f, err, sizeof(err));
        CHECK(rc == -EMLINK && strstr(err, "backup_to_disk") && strstr(err, "2 names"),
              "a path with 2 names under backup_to_disk: %d %s", rc, err);
        if (!rc)
            xd_file_close(dev, f);
        xd_close(dev);
    }
    dev = NULL;
    rc = open_dev(&dev, dir, NULL, err);
    CHECK(rc == 0, "open without backups: %d %s", rc, err);
    if (!rc) {
        rc = xd_file_open(dev, p, XD_OPEN_CREATE, 0, &f, err, sizeof(err));
        CHECK(rc == 0, "without backup_to_disk the path opens: %d %s", rc, err);
        if (!rc)
            xd_file_close(dev, f);
        xd_close(dev);
    }
    size_t len = 0;
    unsigned char *data = slurp(q, &len);
    CHECK(data && len == 8 && !memcmp(data, "the data", 8), "the other name changed");
    free(data);
    unlink(q);
    unlink(p);
}

/* Under io_uring, writes of XD_MEMORY_WRITE_QUEUED_MIN or more are queued
 * (a kernel worker copies them); an fsync submitted behind them, before any
 * was even sent, must back up what they wrote, not what the file held when
 * the fsync was submitted. */
static void test_backup_covers_queued_writes(void)
{
    enum { NW = 8, WLEN = XD_MEMORY_WRITE_QUEUED_MIN * 2 };
    static const char *const kv[] = {"backup_to_disk", "true", "backup_interval_sec", "86400",
                                     "async", "io_uring", NULL};
    static unsigned char expect[NW * WLEN];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    snprintf(dir, sizeof(dir), "%s/queued", shm_base);
    snprintf(p, sizeof(p), "%s/queued.bin", disk_base);
    int rc = open_dev(&dev, dir, kv, err);
    if (rc == -ENOSYS || rc == -EPERM) /* no io_uring here */
        return;
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (!rc)
        rc = xd_file_open(dev, p, XD_OPEN_CREATE, 0, &f, err, sizeof(err));
    CHECK(rc == 0, "file_open: %d %s", rc, err);
    if (rc) {
        xd_close(dev);
        return;
    }
    struct xd_req reqs[NW + 1];
    int queued = 0, pending = 0;
    fill(expect, sizeof(expect), 9);
    for (int i = 0; i <= NW; i++) {
        reqs[i] = (struct xd_req){.op = i < NW ? XD_OP_WRITE : XD_OP_FSYNC, .file = f,
                                  .buf = i < NW ? expect + (size_t)i * WLEN : NULL,
                                  .len = i < NW ? WLEN : 0, .off = (uint64_t)i * WLEN};
        rc = xd_submit(dev, &reqs[i]);
        CHECK(rc == XD_DONE || rc == XD_QUEUED, "submit %d: %d", i, rc);
        queued += i < NW && rc == XD_QUEUED;
        pending += rc == XD_QUEUED;
    }
    CHECK(queued > 0, "no long write was queued");
    CHECK(xd_commit(dev) >= 0, "commit");
    while (pending > 0) {
        struct xd_req *done[NW + 1];
        int got = xd_reap(dev, done, 1, NW + 1, NULL);
        CHECK(got > 0, "reap: %d", got);
        if (got <= 0)
            break;
        pending -= got;
    }
    for (int i = 0; i <= NW; i++)
        CHECK(reqs[i].result == (i < NW ? WLEN : 0), "request %d: result %lld", i,
              (long long)reqs[i].result);
    CHECK(file_equals(p, expect, sizeof(expect)), "the fsync's backup missed queued writes");
    xd_file_close(dev, f);
    xd_close(dev);
}

/* --- the copy is used only while current with the disk file ----------------- */

/* Write data over P in place, as psync does, and move its mtime a whole
 * second on from what it was, so the change shows whatever the clock's
 * granularity (no test of this depends on how fast the machine is). */
/* A new disk file p of the scratch directory holding data: made with
 * O_EXCL and O_NOFOLLOW, never through a name someone planted. */
static void disk_create(const char *p, const unsigned char *data, size_t len)
{
    int fd = open(p, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len, "create %s: %s", p, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void disk_write(const char *p, const unsigned char *data, size_t len)
{
    struct stat st;
    FILE *f = fopen(p, "r+b");
    CHECK(f && fwrite(data, 1, len, f) == len, "write %s: %s", p, strerror(errno));
    if (f)
        fclose(f);
    if (!stat(p, &st)) {
        struct timespec t[2] = {st.st_atim, st.st_mtim};
        t[1].tv_sec += 1;
        CHECK(utimensat(AT_FDCWD, p, t, 0) == 0, "utimensat %s: %s", p, strerror(errno));
    }
}

/* Read the whole file through a device of dir (kv: extra keys), opened
 * with flags, and say whether it holds want. */
static bool dev_reads(const char *dir, const char *const *kv, const char *p, unsigned flags,
                      const unsigned char *want, size_t len)
{
    char err[XD_ERRLEN] = "";
    static unsigned char back[1 << 20];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    int rc = open_dev(&dev, dir, kv, err);
    if (!rc)
        rc = xd_file_open(dev, p, flags, 0, &f, err, sizeof(err));
    CHECK(rc == 0, "open %s: %d %s", p, rc, err);
    bool same = !rc && xd_read(dev, f, back, len + 1, 0) == (ssize_t)len && !memcmp(back, want, len);
    if (f)
        CHECK(xd_file_close(dev, f) == 0, "close %s", p);
    if (dev)
        xd_close(dev);
    return same;
}

/* Whether an open of p through a device of dir (kv: extra keys) is
 * refused with ESTALE and one line naming the copy's stamp, the way to keep
 * the disk file. */
static bool dev_refuses(const char *dir, const char *const *kv, const char *p)
{
    char err[XD_ERRLEN] = "";
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    int rc = open_dev(&dev, dir, kv, err);
    CHECK(rc == 0, "device: %d %s", rc, err);
    if (!rc)
        rc = xd_file_open(dev, p, 0, 0, &f, err, sizeof(err));
    if (f)
        xd_file_close(dev, f);
    if (dev)
        xd_close(dev);
    bool said = strstr(err, "%xdstamp") && strstr(err, p) && !strchr(err, '\n');
    if (rc != -ESTALE || !said)
        printf("  open of %s: %d '%s'\n", p, rc, err);
    return rc == -ESTALE && said;
}

/* Remove the stamp beside p's copy in dir: the user's way to keep p. */
static void remove_stamp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX * 2];
    int n = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, "%xdstamp")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            n += !unlink(path);
        }
    if (d)
        closedir(d);
    CHECK(n == 1, "%d stamps removed in %s", n, dir);
}

/* A disk file written since the tmpfs copy was backed up to it (psync, a
 * user) wins: the copy is loaded from it, not the other way round. Before,
 * the stale copy was served and every close renamed it over the newer disk
 * file, a read-only open's and a read job's included. Now only a file
 * written through the device is backed up: P keeps its inode and data. */
static void test_backup_disk_wins(void)
{
    static const char *const kv[] = {"backup_to_disk", "true", NULL};
    enum { LEN = 256 * 1024 };
    static unsigned char a[LEN], b[LEN];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    struct stat before, after;
    snprintf(dir, sizeof(dir), "%s/diskwins", shm_base);
    snprintf(p, sizeof(p), "%s/diskwins.bin", disk_base);
    fill(a, LEN, 21);
    fill(b, LEN, 22);
    int rc = open_dev(&dev, dir, kv, err);
    if (!rc)
        rc = xd_file_open(dev, p, XD_OPEN_CREATE, LEN, &f, err, sizeof(err));
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (!rc)
        CHECK(xd_write(dev, f, a, LEN, 0) == LEN, "write a");
    if (f)
        xd_file_close(dev, f);
    if (dev)
        xd_close(dev);
    CHECK(file_equals(p, a, LEN), "the close did not back a up");

    disk_write(p, b, LEN); /* as psync would */
    stat(p, &before);
    CHECK(dev_reads(dir, kv, p, XD_OPEN_READONLY, b, LEN), "a read-only open served the stale copy");
    CHECK(dev_reads(dir, kv, p, 0, b, LEN), "a read-write open that only read served stale data");
    CHECK(dev_reads(dir, NULL, p, 0, b, LEN), "without backup_to_disk the stale copy was served");
    CHECK(!stat(p, &after) && after.st_ino == before.st_ino &&
              after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
          "a device that only read replaced or wrote %s", p);
    CHECK(file_equals(p, b, LEN), "%s lost the data written on disk", p);
}

/* Write data over P in place and set its times back to what they were
 * (touch -m -r, cp -p, rsync -t do): only its ctime shows the change. */
static void disk_rewrite_keeping_mtime(const char *p, const unsigned char *data, size_t len)
{
    struct stat st;
    CHECK(!stat(p, &st), "stat %s: %s", p, strerror(errno));
    FILE *f = fopen(p, "r+b");
    CHECK(f && fwrite(data, 1, len, f) == len, "write %s: %s", p, strerror(errno));
    if (f)
        fclose(f);
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    CHECK(utimensat(AT_FDCWD, p, t, 0) == 0, "utimensat %s: %s", p, strerror(errno));
}

/* A tmpfs job with backup_to_disk left p (in disk_base) holding a, with
 * its copy in dir (in shm_base) current and every write backed up. */
static void backed_up_file(const char *name, const char *const *kv, unsigned char *a, size_t len,
                           char *dir, size_t dirlen, char *p, size_t plen)
{
    char err[XD_ERRLEN] = "";
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    snprintf(dir, dirlen, "%s/%s", shm_base, name);
    snprintf(p, plen, "%s/%s.bin", disk_base, name);
    int rc = open_dev(&dev, dir, kv, err);
    if (!rc)
        rc = xd_file_open(dev, p, XD_OPEN_CREATE, len, &f, err, sizeof(err));
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (!rc)
        CHECK(xd_write(dev, f, a, len, 0) == (ssize_t)len, "write a");
    if (f)
        CHECK(xd_file_close(dev, f) == 0, "close");
    if (dev)
        xd_close(dev);
    CHECK(file_equals(p, a, len), "the close did not back a up");
}

/* P rewritten by another program that set its mtime back (same inode,
 * size and mtime) is still loaded: the stamp holds P's ctime, which nobody
 * can set. Before, the stamp held the mtime only: the stale copy was
 * served, and the next backup put it over the newer P. */
static void test_mtime_set_back_is_seen(void)
{
    static const char *const kv[] = {"backup_to_disk", "true", NULL};
    enum { LEN = 64 * 1024 };
    static unsigned char a[LEN], b[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    fill(a, LEN, 61);
    fill(b, LEN, 62);
    backed_up_file("mtimeback", kv, a, LEN, dir, sizeof(dir), p, sizeof(p));
    disk_rewrite_keeping_mtime(p, b, LEN);
    CHECK(dev_reads(dir, kv, p, XD_OPEN_READONLY, b, LEN),
          "P rewritten with its mtime set back: the stale copy was served");
    CHECK(dev_reads(dir, NULL, p, 0, b, LEN), "without backup_to_disk the stale copy was served");
    CHECK(file_equals(p, b, LEN), "%s lost the data written on disk", p);
}

/* A chmod of P moves its ctime only: with a copy holding nothing P lacks
 * the open loads P again (the same data), and serves it. */
static void test_chmod_of_clean_copy(void)
{
    static const char *const kv[] = {"backup_to_disk", "true", NULL};
    enum { LEN = 64 * 1024 };
    static unsigned char a[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    fill(a, LEN, 71);
    backed_up_file("chmodclean", kv, a, LEN, dir, sizeof(dir), p, sizeof(p));
    CHECK(chmod(p, 0600) == 0, "chmod %s: %s", p, strerror(errno));
    CHECK(dev_reads(dir, kv, p, 0, a, LEN), "after a chmod of P the data is not served");
    CHECK(file_equals(p, a, LEN), "%s changed", p);
}

/* The fixture of the backup refusals: a disk file p (in disk_base) holding
 * a, opened on a device with backup_to_disk and its copy in dir (in
 * shm_base); b and c filled for the test. 0, or the open's error (said). */
enum { REFUSE_LEN = 64 * 1024 };
static const char *const backup_kv[] = {"backup_to_disk", "true", "backup_interval_sec", "86400",
                                        NULL};

static int backup_fixture(const char *name, int seed, unsigned char *a, unsigned char *b,
                          unsigned char *c, char *dir, size_t dirlen, char *p, size_t plen,
                          struct xd_dev **dev, struct xd_file **f)
{
    char err[XD_ERRLEN] = "";
    snprintf(dir, dirlen, "%s/%s", shm_base, name);
    snprintf(p, plen, "%s/%s.bin", disk_base, name);
    fill(a, REFUSE_LEN, seed);
    fill(b, REFUSE_LEN, seed + 1);
    fill(c, REFUSE_LEN, seed + 2);
    disk_create(p, a, REFUSE_LEN);
    *dev = NULL;
    *f = NULL;
    int rc = open_dev(dev, dir, backup_kv, err);
    if (!rc)
        rc = xd_file_open(*dev, p, 0, 0, f, err, sizeof(err));
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (rc && *dev)
        xd_close(*dev);
    return rc;
}

/* A disk file changed while a device has its copy open is never replaced
 * by the copy: the backup (at fsync, at close) fails with one line, P
 * keeps the other writer's data, and the next open serves that. */
static void test_backup_refuses_changed_disk(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev;
    struct xd_file *f;
    int rc;
    if (backup_fixture("changed", 31, a, b, c, dir, sizeof(dir), p, sizeof(p), &dev, &f))
        return;
    CHECK(xd_write(dev, f, c, LEN, 0) == LEN, "write c");
    CHECK(xd_flush(dev, f, 0) == 0, "fsync before the disk file changed");
    CHECK(file_equals(p, c, LEN), "the fsync did not back c up");
    disk_write(p, b, LEN); /* another program, while the device has it open */
    CHECK(xd_write(dev, f, a, 4096, 0) == 4096, "write after");
    rc = xd_flush(dev, f, 0);
    CHECK(rc < 0, "fsync replaced a disk file changed since: %d", rc);
    CHECK(file_equals(p, b, LEN), "the backup overwrote the other program's data");
    rc = xd_file_close(dev, f);
    CHECK(rc < 0, "close backed up over a changed disk file: %d", rc);
    err[0] = '\0';
    CHECK(!xd_dev_take_error(dev, err, sizeof(err)) && strstr(err, "changed on disk") &&
              strstr(err, p),
          "no line saying why: '%s'", err);
    xd_close(dev);
    CHECK(file_equals(p, b, LEN), "%s lost the other program's data", p);
    /* the copy holds the refused write: neither side is dropped unasked */
    CHECK(dev_refuses(dir, kv, p), "the next open loaded P over the copy's writes");
    remove_stamp(dir);
    CHECK(dev_reads(dir, kv, p, XD_OPEN_READONLY, b, LEN), "with the stamp removed P was not loaded");
}

/* A device whose copy another open replaced (P changed; the other open
 * loaded it) never backs up the new copy as if it held its writes: its
 * fsync fails with one line, and P keeps the other writer's data. */
static void test_backup_refuses_replaced_copy(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev;
    struct xd_file *f;
    int rc;
    if (backup_fixture("replaced", 51, a, b, c, dir, sizeof(dir), p, sizeof(p), &dev, &f))
        return;
    disk_write(p, b, LEN);
    CHECK(dev_reads(dir, kv, p, 0, b, LEN), "a second open did not load the changed disk file");
    CHECK(xd_write(dev, f, c, LEN, 0) == LEN, "write c");
    rc = xd_flush(dev, f, 0);
    CHECK(rc < 0, "fsync backed up a copy that is not the one written: %d", rc);
    CHECK(file_equals(p, b, LEN), "the disk file lost the other writer's data");
    CHECK(xd_file_close(dev, f) < 0, "close backed up a replaced copy");
    err[0] = '\0';
    CHECK(!xd_dev_take_error(dev, err, sizeof(err)) && strstr(err, "was replaced"),
          "no line saying why: '%s'", err);
    xd_close(dev);
    CHECK(file_equals(p, b, LEN), "%s lost the other writer's data", p);
}

/* Without backup_to_disk a regular file already at P is the data the type
 * serves (loaded into the copy, as a restore does), sized as psync sees it,
 * opened without XD_OPEN_CREATE; the copy then serves its own writes while
 * P is unchanged, and P changed since is loaded again. P is never written.
 * Before, the type ignored it: zeros, "no such file", or no size at all. */
static void test_loads_disk_file(void)
{
    enum { LEN = 3 * 65536 + 512 };
    static unsigned char a[LEN], b[LEN], w[4096];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct stat before, after;
    uint64_t size = 0;
    snprintf(dir, sizeof(dir), "%s/load", shm_base);
    snprintf(p, sizeof(p), "%s/load.bin", disk_base);
    fill(a, LEN, 41);
    fill(b, LEN, 42);
    fill(w, sizeof(w), 43);
    disk_create(p, a, LEN);
    stat(p, &before);
    mkdir(dir, 0700);
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", "tmpfs", "test", err, sizeof(err));
    xd_config_set(cfg, "tmpfs_directory", dir, "test", err, sizeof(err));
    int rc = xd_path_logical_size(cfg, p, &size, err, sizeof(err));
    CHECK(rc == 0 && size == LEN, "size of %s before any copy: %d %llu", p, rc,
          (unsigned long long)size);
    CHECK(dev_reads(dir, NULL, p, XD_OPEN_READONLY, a, LEN), "read-only: the disk file not served");
    CHECK(dev_reads(dir, NULL, p, 0, a, LEN), "the disk file not served");

    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    rc = open_dev(&dev, dir, NULL, err);
    if (!rc)
        rc = xd_file_open(dev, p, 0, 0, &f, err, sizeof(err));
    CHECK(rc == 0, "open: %d %s", rc, err);
    if (!rc)
        CHECK(xd_write(dev, f, w, sizeof(w), 0) == sizeof(w), "write");
    if (f)
        xd_file_close(dev, f);
    if (dev)
        xd_close(dev);
    memcpy(a, w, sizeof(w));
    CHECK(dev_reads(dir, NULL, p, 0, a, LEN), "the copy's own write lost while P was unchanged");
    CHECK(!stat(p, &after) && after.st_ino == before.st_ino &&
              after.st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
              after.st_mtim.tv_sec == before.st_mtim.tv_sec,
          "without backup_to_disk %s was written", p);

    disk_write(p, b, LEN);
    rc = xd_path_logical_size(cfg, p, &size, err, sizeof(err));
    CHECK(rc == 0 && size == LEN, "size after P changed: %d %llu", rc, (unsigned long long)size);
    /* the copy holds a write P lacks: loading P would drop it unasked */
    CHECK(dev_refuses(dir, NULL, p), "P changed over a written copy: loaded without a word");
    remove_stamp(dir);
    CHECK(dev_reads(dir, NULL, p, 0, b, LEN), "P changed since the copy was loaded: stale copy served");
    xd_config_free(cfg);
}

/* A second process writing p beside this one, on a device of its own: it
 * writes `first` over p's start, says so, writes `then` (if any) when
 * told, says so again, and waits to be killed (a kill -9 before any
 * backup of its own). */
struct writer {
    pid_t pid;
    int tell, heard; /* to the child, from it */
};

static void writer_child(int tell, int heard, const char *dir, const char *const *kv,
                         const char *p, const unsigned char *first, size_t first_len,
                         const unsigned char *then, size_t then_len)
{
    char err[XD_ERRLEN], c = 'w';
    struct xd_dev *dev;
    struct xd_file *f;
    if (open_dev(&dev, dir, kv, err) || xd_file_open(dev, p, 0, 0, &f, err, sizeof(err)) ||
        xd_write(dev, f, first, first_len, 0) != (ssize_t)first_len || write(heard, &c, 1) != 1)
        _exit(1);
    if (then && (read(tell, &c, 1) != 1 || xd_write(dev, f, then, then_len, 0) != (ssize_t)then_len ||
                 write(heard, &c, 1) != 1))
        _exit(1);
    for (;;)
        pause();
}

static bool writer_start(struct writer *w, const char *dir, const char *const *kv, const char *p,
                         const unsigned char *first, size_t first_len, const unsigned char *then,
                         size_t then_len)
{
    int down[2], up[2];
    char c;
    if (pipe(down) || pipe(up))
        return false;
    w->pid = fork();
    if (w->pid == 0) {
        close(down[1]);
        close(up[0]);
        writer_child(down[0], up[1], dir, kv, p, first, first_len, then, then_len);
    }
    close(down[0]);
    close(up[1]);
    w->tell = down[1];
    w->heard = up[0];
    return w->pid > 0 && read(w->heard, &c, 1) == 1; /* EOF: the child failed */
}

/* Its second write, done once it answers. */
static bool writer_then(struct writer *w)
{
    char c = 'g';
    return write(w->tell, &c, 1) == 1 && read(w->heard, &c, 1) == 1;
}

static void writer_kill(struct writer *w)
{
    int status;
    kill(w->pid, SIGKILL);
    waitpid(w->pid, &status, 0);
    close(w->tell);
    close(w->heard);
}

/* A process that opens p on a device of dir (kv), writes data over its
 * start and dies before any backup, as a kill -9 would leave it. */
static void write_then_die(const char *dir, const char *const *kv, const char *p,
                           const unsigned char *data, size_t len)
{
    struct writer w;
    CHECK(writer_start(&w, dir, kv, p, data, len, NULL, 0), "the writer did not write");
    writer_kill(&w);
}

/* P changed (a chmod will do: it moves the ctime) under a copy holding
 * writes it lacks: the next open is refused with one line. */
static void changed_disk_refused(const char *dir, const char *const *kv, const char *p)
{
    CHECK(chmod(p, 0600) == 0, "chmod %s: %s", p, strerror(errno));
    CHECK(dev_refuses(dir, kv, p), "P changed under unbacked writes: loaded over them");
}

/* With P moved away, the copy is served as it is: want. */
static void moved_away_serves_copy(const char *dir, const char *const *kv, const char *p,
                                   const unsigned char *want, size_t len)
{
    char moved[PATH_MAX + 48];
    snprintf(moved, sizeof(moved), "%s.moved", p);
    CHECK(rename(p, moved) == 0, "rename %s: %s", p, strerror(errno));
    CHECK(dev_reads(dir, kv, p, 0, want, len), "with P moved away the copy's writes were not served");
    unlink(moved);
}

/* backup_fixture's P holding a, its copy holding c from a writer killed
 * before any backup of it (write_then_die). 0, or -1 (said). */
static int killed_writer_fixture(const char *name, int seed, unsigned char *a, unsigned char *b,
                                 unsigned char *c, char *dir, size_t dirlen, char *p, size_t plen)
{
    struct xd_dev *dev;
    struct xd_file *f;
    if (backup_fixture(name, seed, a, b, c, dir, dirlen, p, plen, &dev, &f))
        return -1;
    xd_file_close(dev, f);
    xd_close(dev);
    write_then_die(dir, backup_kv, p, c, REFUSE_LEN);
    return 0;
}

/* A process killed with writes not yet backed up (backup_to_disk, no
 * fsync): with P unchanged the next open uses the copy, writes included;
 * with P changed since (a chmod will do: it moves the ctime) the open is
 * refused with one line rather than load P over them, and the copy keeps
 * them; moving P away keeps the copy. Before, P was loaded over the copy
 * and the writes were gone without a word. */
static void test_killed_writes_kept(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    if (killed_writer_fixture("killed", 81, a, b, c, dir, sizeof(dir), p, sizeof(p)))
        return;
    CHECK(file_equals(p, a, LEN), "the killed writer backed up");
    changed_disk_refused(dir, kv, p);
    CHECK(file_equals(p, a, LEN), "%s was written", p);
    moved_away_serves_copy(dir, kv, p, c, LEN);
}

/* Write dev as the disk file's device number in the stamp beside the copy
 * in dir: what a remount of P's file system under another number shows. */
static void stamp_set_disk_dev(const char *dir, unsigned long long dev)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX * 2], text[4096], out[4200];
    bool done = false;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, "%xdstamp")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            FILE *f = fopen(path, "r+");
            size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
            text[n] = '\0';
            char *at = strstr(text, " disk "), *colon = at ? strchr(at, ':') : NULL;
            if (colon) { /* " disk DEV:INO ..." becomes " disk dev:INO ..." */
                *at = '\0';
                int len = snprintf(out, sizeof(out), "%s disk %llu%s", text, dev, colon);
                rewind(f);
                done = fwrite(out, 1, (size_t)len, f) == (size_t)len &&
                       !ftruncate(fileno(f), (off_t)len);
            }
            if (f)
                fclose(f);
        }
    if (d)
        closedir(d);
    CHECK(done, "no stamp in %s took the new device number", dir);
}

/* P's file system back under another device number (a loop image on
 * another /dev/loopN) is the same P: the same inode, size and times. A
 * copy holding a killed writer's writes is served, and the close backs
 * them up. Before, the new number counted as a change on disk and the open
 * was refused. A real change after it (a chmod) is still refused. */
static void test_disk_on_another_device_number(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct stat st;
    if (killed_writer_fixture("otherdev", 91, a, b, c, dir, sizeof(dir), p, sizeof(p)))
        return;
    CHECK(!stat(p, &st), "stat %s", p);
    stamp_set_disk_dev(dir, (unsigned long long)st.st_dev ^ 0x700);
    CHECK(dev_reads(dir, kv, p, 0, c, LEN), "P under a new device number: the copy's writes not served");
    CHECK(file_equals(p, c, LEN), "the close did not back the copy's writes up");
    write_then_die(dir, kv, p, b, LEN);
    stamp_set_disk_dev(dir, (unsigned long long)st.st_dev ^ 0x700);
    changed_disk_refused(dir, kv, p);
    CHECK(file_equals(p, c, LEN), "%s was written", p);
}

/* Two writers of one copy, each on its own device (here a second
 * process): a backup by one, with the other open beside it, leaves the
 * stamp saying "written", so the other's writes after that backup are
 * not left unmarked. Before, the backup cleared the mark, the other's
 * flag said it had marked already, and when it was killed before its own
 * backup and P then changed, the next open loaded P over its write
 * without a word. Now that open is refused, and moving P away keeps the
 * copy, the killed writer's last write in it. */
static void test_second_writer_marks_after_backup(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN], want[LEN];
    char err[XD_ERRLEN] = "", dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev;
    struct xd_file *f;
    struct writer w;
    if (backup_fixture("twowriters", 91, a, b, c, dir, sizeof(dir), p, sizeof(p), &dev, &f))
        return;
    CHECK(writer_start(&w, dir, kv, p, b, LEN, b, 4096), "the second writer did not start");
    CHECK(xd_write(dev, f, c, LEN, 0) == LEN, "write c");
    CHECK(xd_flush(dev, f, 0) == 0, "fsync: the backup with the other writer open");
    CHECK(file_equals(p, c, LEN), "the fsync did not back c up");
    CHECK(writer_then(&w), "the second writer's write after the backup");
    writer_kill(&w);
    memcpy(want, c, LEN);
    memcpy(want, b, 4096);
    changed_disk_refused(dir, kv, p);
    /* the last open left backs the copy up at close: refused, P changed */
    CHECK(xd_file_close(dev, f) < 0, "close backed up over a changed disk file");
    CHECK(!xd_dev_take_error(dev, err, sizeof(err)) && strstr(err, "changed on disk"),
          "no line saying why: '%s'", err);
    xd_close(dev);
    moved_away_serves_copy(dir, kv, p, want, LEN);
}

/* The last open of a copy backs it up at close even when it wrote nothing:
 * the other writer, killed before its own backup, left its writes in the
 * copy, and P holds them after the close. Before, only a close that had
 * written backed up, and P kept the old data. */
static void test_last_open_backs_up_others_writes(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev;
    struct xd_file *f;
    if (backup_fixture("lastopen", 95, a, b, c, dir, sizeof(dir), p, sizeof(p), &dev, &f))
        return;
    write_then_die(dir, kv, p, b, LEN);
    CHECK(file_equals(p, a, LEN), "the killed writer backed up");
    CHECK(xd_file_close(dev, f) == 0, "close");
    xd_close(dev);
    CHECK(file_equals(p, b, LEN), "the last open's close left P without the killed writer's data");
    CHECK(dev_reads(dir, kv, p, XD_OPEN_READONLY, b, LEN), "the copy after the close");
}

/* Open the one stamp in dir (a copy's), read-write; -1 when there is none. */
static int open_stamp(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX * 2];
    int fd = -1;
    while (d && fd < 0 && (e = readdir(d)))
        if (strstr(e->d_name, "%xdstamp")) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        }
    if (d)
        closedir(d);
    return fd;
}

/* What a backup does up to its rename, and a kill right after it: a new
 * file beside P holding data, named pending in the copy's stamp (when
 * name_it), fsynced, renamed over P; no stamp after it. */
static void backup_killed_after_rename(const char *dir, const char *p, const unsigned char *data,
                                       size_t len, bool name_it)
{
    char tmp[PATH_MAX + 48];
    struct stat made;
    struct tmpfs_stamp s;
    snprintf(tmp, sizeof(tmp), "%s.xdtmp-test", p);
    int fd = open(tmp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len && !fstat(fd, &made),
          "temp %s: %s", tmp, strerror(errno));
    int stamp = open_stamp(dir);
    CHECK(stamp >= 0 && xd_tmpfs_stamp_read(stamp, &s), "no stamp in %s", dir);
    if (stamp >= 0 && name_it) {
        xd_tmpfs_stamp_pending(&s, &made);
        CHECK(xd_tmpfs_stamp_write(stamp, &s) == 0, "stamp write");
    }
    if (stamp >= 0)
        close(stamp);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    CHECK(rename(tmp, p) == 0, "rename %s: %s", tmp, strerror(errno));
}

/* A backup killed between its rename over P and the stamp that names P
 * after it: P is the copy's own backup, not another program's change. The
 * next open uses the copy (a write after that backup included) and says
 * nothing. Before the backup named its new file in the stamp first, that
 * open was refused (P changed, the copy written: ESTALE) though nothing
 * was lost, as make torture-crash's tmpfs-backup cases showed. A file put
 * at P by anyone else in that window is still refused. */
static void test_backup_killed_after_rename(void)
{
    static const char *const *const kv = backup_kv;
    enum { LEN = REFUSE_LEN };
    static unsigned char a[LEN], b[LEN], c[LEN];
    char dir[PATH_MAX + 16], p[PATH_MAX + 32];
    struct xd_dev *dev;
    struct xd_file *f;
    if (backup_fixture("renamekill", 91, a, b, c, dir, sizeof(dir), p, sizeof(p), &dev, &f))
        return;
    /* b written and backed up at close; then c written by a run killed before its backup */
    CHECK(xd_write(dev, f, b, LEN, 0) == LEN, "write b");
    xd_file_close(dev, f);
    xd_close(dev);
    CHECK(file_equals(p, b, LEN), "the close did not back b up");
    write_then_die(dir, kv, p, c, LEN);
    backup_killed_after_rename(dir, p, c, LEN, true);
    CHECK(dev_reads(dir, kv, p, 0, c, LEN), "P is the copy's own backup: the open did not serve the copy");
    CHECK(file_equals(p, c, LEN), "%s changed", p);
    /* the stamp now names P as it is: a second open needs no adopting */
    CHECK(dev_reads(dir, kv, p, 0, c, LEN), "the second open did not serve the copy");
    /* the same window, P put there by someone else: refused, as before */
    write_then_die(dir, kv, p, a, LEN);
    backup_killed_after_rename(dir, p, b, LEN, false);
    CHECK(dev_refuses(dir, kv, p), "P replaced by another program over unbacked writes: not refused");
    CHECK(file_equals(p, b, LEN), "%s was written", p);
}

/* --- auto_mount without root: /dev/shm/xdevice and a notice --------------- */

static int nonroot_check(const char *dir)
{
    static const char *const kv[] = {"auto_mount", "true", NULL};
    char err[XD_ERRLEN] = "", want[PATH_MAX + 128];
    struct xd_dev *dev = NULL;
    int before = failures;
    int rc = open_dev(&dev, dir, kv, err);
    CHECK(rc == 0, "open as non-root: %d %s", rc, err);
    if (rc)
        return 1;
    snprintf(want, sizeof(want), "tmpfs: auto_mount needs root; using %s instead of %s",
             fallback_dir(), dir);
    const char *notice = xd_dev_notice(dev);
    CHECK(notice && !strcmp(notice, want), "notice '%s', want '%s'", notice ? notice : "(null)",
          want);
    snprintf(want, sizeof(want), "\"directory\":\"%s\"", fallback_dir());
    CHECK(stats_contain(dev, want), "fallback directory");
    struct stat st;
    CHECK(!lstat(fallback_dir(), &st) && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
              (st.st_mode & 07777) == 0700,
          "%s is not a 0700 directory of uid %u", fallback_dir(), (unsigned)geteuid());
    CHECK(access(dir, F_OK) && errno == ENOENT, "%s created though unused", dir);
    xd_close(dev);
    return failures != before;
}

static void test_auto_mount_nonroot(void)
{
    char dir[PATH_MAX + 16], fallback[64];
    snprintf(fallback, sizeof(fallback), "/dev/shm/xdevice-%u", geteuid() ? geteuid() : 65534u);
    bool existed = !access(fallback, F_OK);
    snprintf(dir, sizeof(dir), "%s/nonroot", shm_base);
    if (geteuid() != 0) {
        nonroot_check(dir);
    } else {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int rc = seteuid(65534) ? 2 : nonroot_check(dir);
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "non-root child: status %d", status);
    }
    if (!existed)
        rmdir(fallback); /* only if empty: never another user's data */
}

/* --- auto_mount as root -------------------------------------------------- */

static int mounts_at(const char *dir)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], point[PATH_MAX];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && !strcmp(point, dir);
    if (f)
        fclose(f);
    return n;
}

/* Does the (last) mount at dir have opt among its super options? */
static bool mount_has_option(const char *dir, const char *opt)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], point[PATH_MAX];
    bool has = false;
    while (f && fgets(line, sizeof(line), f)) {
        const char *dash = strstr(line, " - ");
        if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && !strcmp(point, dir))
            has = strstr(dash, opt) != NULL;
    }
    if (f)
        fclose(f);
    return has;
}

struct racer {
    const char *dir;
    struct xd_dev *dev;
    int rc;
    char err[XD_ERRLEN];
};

static void *race_open(void *arg)
{
    static const char *const kv[] = {"auto_mount", "true", "tmpfs_size", "16m",
                                     "tmpfs_mount_options", "mode=0755,huge=within_size", NULL};
    struct racer *r = arg;
    r->rc = open_dev(&r->dev, r->dir, kv, r->err);
    return NULL;
}

static void auto_mount_checks(struct racer *r, int n, const char *dir)
{
    char err[XD_ERRLEN] = "", p[PATH_MAX + 16];
    struct xd_file *f = NULL;
    struct statfs sf;
    int ours = 0;
    for (int i = 0; i < n; i++) {
        CHECK(r[i].rc == 0, "racer %d: %d %s", i, r[i].rc, r[i].err);
        if (!r[i].rc)
            ours += stats_have(r[i].dev, "\"mounted_by_us\":true", false);
    }
    CHECK(ours == 1, "%d devices say they mounted, want 1", ours);
    CHECK(mounts_at(dir) == 1, "%d mounts at %s, want 1", mounts_at(dir), dir);
    CHECK(!statfs(dir, &sf) && sf.f_type == TMPFS_MAGIC, "%s is not a tmpfs", dir);
    CHECK((uint64_t)sf.f_blocks * sf.f_bsize == 16 << 20, "size %llu, want 16 MiB",
          (unsigned long long)sf.f_blocks * sf.f_bsize);
    /* tmpfs_mount_options reach the mount (the racers ask for large pages) */
    CHECK(mount_has_option(dir, "huge=within_size"), "%s mounted without huge=within_size", dir);
    for (int i = 0; i < n; i++) {
        const char *notice = r[i].rc ? NULL : xd_dev_notice(r[i].dev);
        bool mounter = !r[i].rc && stats_have(r[i].dev, "\"mounted_by_us\":true", false);
        CHECK(mounter ? notice && strstr(notice, "unmounts it") && !strchr(notice, '\n')
                      : notice == NULL,
              "racer %d: notice '%s'", i, notice ? notice : "(null)");
    }
    snprintf(p, sizeof(p), "%s/m.dat", disk_base);
    if (!r[0].rc && !xd_file_open(r[0].dev, p, XD_OPEN_CREATE, 0, &f, err, sizeof(err))) {
        CHECK(xd_write(r[0].dev, f, "mounted", 7, 0) == 7, "write on the mount");
        xd_file_close(r[0].dev, f);
        CHECK(dir_has_data(dir, (const unsigned char *)"mounted", 7, 0), "data not on the mount");
    }
}

/* A mount would hide what is in a directory: an existing non-empty one,
 * or one xdevice did not make, is refused with one line and left as it was. */
static void auto_mount_refusals(const char *parent)
{
    static const char *const kv[] = {"auto_mount", "true", "tmpfs_size", "16m", NULL};
    char err[XD_ERRLEN] = "", dir[PATH_MAX], keep[PATH_MAX + 16];
    struct xd_dev *dev = NULL;
    snprintf(dir, sizeof(dir), "%s/users", parent);
    snprintf(keep, sizeof(keep), "%s/keep.txt", dir);
    mkdir(dir, 0755);
    write_text(keep, "mine\n");
    for (int round = 0; round < 2; round++) {
        int rc = open_dev(&dev, dir, kv, err);
        CHECK(rc == -EEXIST, "auto_mount on %s %s: rc %d, want -EEXIST", dir,
              round ? "(empty)" : "(not empty)", rc);
        CHECK(strstr(err, round ? "not made by xdevice" : "is not empty") && !strchr(err, '\n'),
              "message: '%s'", err);
        CHECK(mounts_at(dir) == 0, "mounted over %s", dir);
        if (!rc)
            xd_close(dev);
        if (!round)
            CHECK(file_equals(keep, (const unsigned char *)"mine\n", 5), "%s was touched", keep);
        unlink(keep);
    }
    CHECK(rmdir(dir) == 0, "%s: %s", dir, strerror(errno));
    snprintf(keep, sizeof(keep), "%s.lock", dir);
    unlink(keep);
}

static void test_auto_mount_root(void)
{
    enum { RACERS = 4 };
    char parent[] = "/tmp/xdtest-tmpfs-mnt-XXXXXX", dir[sizeof(parent) + 8],
         lock[sizeof(parent) + 16];
    struct racer r[RACERS] = {{0}};
    pthread_t th[RACERS];
    if (geteuid() != 0) {
        printf("SKIP auto_mount as root: not root\n");
        return;
    }
    if (!mkdtemp(parent)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return;
    }
    snprintf(dir, sizeof(dir), "%s/mnt", parent); /* made by the library */
    snprintf(lock, sizeof(lock), "%s.lock", dir);
    for (int i = 0; i < RACERS; i++) {
        r[i].dir = dir;
        pthread_create(&th[i], NULL, race_open, &r[i]);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    if (r[0].rc == -EPERM && strstr(r[0].err, "cannot mount")) {
        printf("SKIP auto_mount as root: mount is not permitted here: %s\n", r[0].err);
    } else {
        auto_mount_checks(r, RACERS, dir);
    }
    for (int i = 0; i < RACERS; i++) {
        if (r[i].rc)
            continue;
        xd_close(r[i].dev);
        if (i < RACERS - 1) /* users remain: the mount stays */
            CHECK(mounts_at(dir) == 1, "unmounted with %d users left", RACERS - 1 - i);
    }
    CHECK(mounts_at(dir) == 0, "still mounted after the last user closed");
    CHECK(access(dir, F_OK) && errno == ENOENT, "%s left behind", dir);
    CHECK(access(lock, F_OK) && errno == ENOENT, "%s left behind", lock);
    for (int i = 0; i < RACERS && mounts_at(dir); i++) /* mounts stacked by a bug */
        umount2(dir, 0);
    rmdir(dir);
    unlink(lock);
    auto_mount_refusals(parent);
    CHECK(rmdir(parent) == 0, "%s not empty after the test: %s", parent, strerror(errno));
}

int main(void)
{
    char disk[] = "/tmp/xdtest-tmpfs-XXXXXX";
    if (!on_tmpfs("/dev/shm")) {
        printf("SKIP: /dev/shm is not a tmpfs\n");
        return 77;
    }
    snprintf(shm_base, sizeof(shm_base), "/dev/shm/xdtest-tmpfs-%d", (int)getpid());
    if (mkdir(shm_base, 0755) || !mkdtemp(disk)) {
        printf("FAIL: cannot create %s or %s: %s\n", shm_base, disk, strerror(errno));
        rmdir(shm_base);
        return 1;
    }
    snprintf(disk_base, sizeof(disk_base), "%s", disk);

    test_data_on_tmpfs();
    test_disk_dir_refused();
    test_backup();
    test_backup_covers_queued_writes();
    test_backup_refuses_hard_links();
    test_backup_disk_wins();
    test_mtime_set_back_is_seen();
    test_chmod_of_clean_copy();
    test_backup_refuses_changed_disk();
    test_backup_refuses_replaced_copy();
    test_loads_disk_file();
    test_killed_writes_kept();
    test_disk_on_another_device_number();
    test_backup_killed_after_rename();
    test_second_writer_marks_after_backup();
    test_last_open_backs_up_others_writes();
    test_auto_mount_nonroot();
    test_auto_mount_root();

    rm_rf(shm_base);
    rm_rf(disk_base);
    CHECK(access(shm_base, F_OK) && access(disk_base, F_OK), "cleanup left files behind");
    if (failures)
        printf("tmpfs: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
