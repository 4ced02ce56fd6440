/* files.c - unit test of the file calls' contracts, on every type that
 * keeps a file: open flags the library does not know are refused, not
 * ignored; an open that fails after it made the file (a size the file
 * system refuses) leaves no empty file behind; a file a program forgot to
 * close is closed by xd_close as xd_file_close would close it: its data
 * stays and its descriptors are not leaked; a descriptor the fd cache
 * closed is never reopened as another file made since at the name; a
 * 0-byte write grows nothing, one past the largest file fails EFBIG; more
 * files than the process may have descriptors open and work; the tmpfs
 * type's failed open leaves no copy in RAM; the path
 * calls resolve a relative name against base_directory as the open does. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "xdevice.h"

#define LEN (256 * 1024)

static char err[XD_ERRLEN];
static char dir[] = "/var/tmp/xd-unit-files-XXXXXX";
static char hot[] = "/dev/shm/xd-unit-files-XXXXXX"; /* the hybrid type's hot tier: a tmpfs */

static struct xd_dev *open_dev(const char *type)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    if (xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err)) ||
        (!strcmp(type, "hybrid") &&
         (xd_config_set(cfg, "hot_directory", hot, "test", err, sizeof(err)) ||
          xd_config_set(cfg, "auto_migration", "false", "test", err, sizeof(err)))) ||
        xd_open(&dev, cfg, 8, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", type, err);
        dev = NULL;
    }
    xd_config_free(cfg);
    return dev;
}

static bool exists(const char *path)
{
    struct stat st;
    return !lstat(path, &st);
}

static void test_unknown_flags(const char *type, const char *path)
{
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f = NULL;
    CHECK(dev);
    if (!dev)
        return;
    int rc = xd_file_open(dev, path, XD_OPEN_CREATE | 0x40, LEN, &f, err, sizeof(err));
    CHECK_MSG(rc == -EINVAL && !f && strstr(err, "0x40"), "%s: unknown flag: %d %s", type, rc,
              err);
    CHECK_MSG(!exists(path), "%s: a refused open made %s", type, path);
    rc = xd_file_open(dev, path, XD_OPEN_CREATE, UINT64_MAX, &f, err, sizeof(err));
    CHECK_MSG(rc == -EINVAL && !f && strstr(err, "allowed"), "%s: size 2^64-1: %d %s", type, rc,
              err);
    CHECK_MSG(!exists(path), "%s: a refused size made %s", type, path);
    xd_close(dev);
}

/* A size the kernel refuses on any file system: past RLIMIT_FSIZE (EFBIG,
 * SIGXFSZ ignored), set low around the open. */
#define REFUSED_SIZE (16u << 20)

static int open_over_limit(struct xd_dev *dev, const char *path, struct xd_file **f)
{
    struct rlimit was, low = {.rlim_cur = 1 << 20};
    getrlimit(RLIMIT_FSIZE, &was);
    low.rlim_max = was.rlim_max;
    CHECK(!setrlimit(RLIMIT_FSIZE, &low));
    int rc = xd_file_open(dev, path, XD_OPEN_CREATE, REFUSED_SIZE, f, err, sizeof(err));
    CHECK(!setrlimit(RLIMIT_FSIZE, &was));
    return rc;
}

static void test_failed_create_leaves_nothing(const char *type, const char *path)
{
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f = NULL;
    CHECK(dev);
    if (!dev)
        return;
    int rc = open_over_limit(dev, path, &f);
    CHECK_MSG(rc < 0 && !f, "%s: sized past RLIMIT_FSIZE: %d", type, rc);
    CHECK_MSG(!exists(path), "%s: the failed open left %s behind (%s)", type, path, err);
    if (f)
        xd_file_close(dev, f);
    xd_close(dev);
}

/* An existing file is not ours to remove when sizing it fails. */
static void test_failed_size_keeps_an_existing_file(const char *type, const char *path)
{
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f = NULL;
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    CHECK(dev && fd >= 0);
    if (fd >= 0)
        close(fd);
    if (dev) {
        int rc = open_over_limit(dev, path, &f);
        CHECK_MSG(rc < 0 && !f, "%s: existing, sized past RLIMIT_FSIZE: %d", type, rc);
        if (f)
            xd_file_close(dev, f);
        xd_close(dev);
    }
    CHECK_MSG(exists(path), "%s: a failed open removed a file it did not make", type);
    unlink(path);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* Written, never closed, the device closed: every descriptor the device
 * took is given back, and the data reads back after a fresh open. */
static void test_close_closes_what_was_left_open(const char *type, const char *path)
{
    static char a[LEN] __attribute__((aligned(4096))), got[LEN] __attribute__((aligned(4096)));
    int fds_before = open_fds();
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f = NULL, *g = NULL;
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &f, err, sizeof(err)));
    if (!f) {
        xd_close(dev);
        return;
    }
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (char)(i * 7 + 1);
    CHECK(xd_write(dev, f, a, LEN, 0) == LEN);
    CHECK(xd_file_open(dev, path, 0, 0, &g, err, sizeof(err)) == 0);
    xd_close(dev); /* f and g still open */
    CHECK_MSG(open_fds() == fds_before, "%s: %d descriptors open before, %d after xd_close", type,
              fds_before, open_fds());

    dev = open_dev(type);
    f = NULL;
    CHECK(dev && !xd_file_open(dev, path, 0, 0, &f, err, sizeof(err)));
    if (f) {
        CHECK(xd_read(dev, f, got, LEN, 0) == LEN);
        CHECK_MSG(!memcmp(a, got, LEN), "%s: data written before xd_close is gone", type);
        xd_file_close(dev, f);
    }
    xd_close(dev);
    struct xd_config *cfg = xd_config_new();
    xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err));
    if (!strcmp(type, "hybrid"))
        xd_config_set(cfg, "hot_directory", hot, "test", err, sizeof(err));
    struct xd_dev *d2 = NULL;
    if (!xd_open(&d2, cfg, 8, err, sizeof(err))) {
        xd_unlink(d2, path, err, sizeof(err));
        xd_close(d2);
    }
    xd_config_free(cfg);
}

/* Writes far past the end: a zero-length one changes nothing, as
 * pwrite(2) does, and one past the largest file the kernel allows (past
 * RLIMIT_FSIZE here, set low around it, as past ext4's 16 TiB) fails with
 * EFBIG and leaves the size as it was; at 2^62, so a driver that sizes
 * anything by the offset before asking the kernel shows it. */
static void test_writes_far_past_the_end(const char *type, const char *path)
{
    static char a[4096] __attribute__((aligned(4096)));
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f = NULL;
    CHECK(dev && !xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &f, err, sizeof(err)));
    if (f) {
        int64_t size = xd_file_size(dev, f);
        CHECK(xd_write(dev, f, a, 0, 1ull << 30) == 0);
        CHECK_MSG(xd_file_size(dev, f) == size, "%s: a 0-byte write at 1 GiB made the size %lld",
                  type, (long long)xd_file_size(dev, f));
        struct rlimit was, low = {.rlim_cur = 1 << 30};
        getrlimit(RLIMIT_FSIZE, &was);
        low.rlim_max = was.rlim_max;
        CHECK(!setrlimit(RLIMIT_FSIZE, &low));
        ssize_t n = xd_write(dev, f, a, sizeof(a), 1ull << 62);
        CHECK(!setrlimit(RLIMIT_FSIZE, &was));
        CHECK_MSG(n == -EFBIG, "%s: a write at 2^62: %zd", type, n);
        CHECK(xd_file_size(dev, f) == size);
        xd_file_close(dev, f);
        xd_unlink(dev, path, err, sizeof(err));
    }
    xd_close(dev);
}

/* max_open_files=1: a file whose descriptor the fd cache closed, then
 * removed by another device and made again under its name, is not
 * reopened as that new file: its requests fail with ESTALE, and neither
 * read the new file nor write into it. */
static void test_fd_cache_finds_another_file(const char *type, const char *path)
{
    static char a[4096] __attribute__((aligned(4096))), b[4096] __attribute__((aligned(4096)));
    char other[4300];
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL, *d2 = NULL;
    struct xd_file *f = NULL, *g = NULL, *h = NULL;
    snprintf(other, sizeof(other), "%s.other", path);
    CHECK(!xd_config_set(cfg, "storage_type", type, "test", err, sizeof(err)));
    CHECK(!xd_config_set(cfg, "max_open_files", "1", "test", err, sizeof(err)));
    CHECK_MSG(!xd_open(&dev, cfg, 8, err, sizeof(err)) && !xd_open(&d2, cfg, 8, err, sizeof(err)),
              "%s: %s", type, err);
    if (!dev || !d2)
        goto out;
    memset(a, 'o', sizeof(a));
    CHECK(!xd_file_open(dev, path, XD_OPEN_CREATE, LEN, &f, err, sizeof(err)));
    CHECK(f && xd_write(dev, f, a, sizeof(a), 0) == sizeof(a));
    CHECK(!xd_file_open(dev, other, XD_OPEN_CREATE, LEN, &g, err, sizeof(err))); /* f's fd goes */
    CHECK(!xd_unlink(d2, path, err, sizeof(err)));
    CHECK(!xd_file_open(d2, path, XD_OPEN_CREATE, LEN, &h, err, sizeof(err)));
    memset(a, 'n', sizeof(a));
    CHECK(h && xd_write(d2, h, a, sizeof(a), 0) == sizeof(a));
    if (f) {
        ssize_t n = xd_read(dev, f, b, sizeof(b), 0);
        CHECK_MSG(n == -ESTALE, "%s: the old open read %zd bytes ('%c') of the new file", type, n,
                  n > 0 ? b[0] : '-');
        memset(a, 'x', sizeof(a));
        n = xd_write(dev, f, a, sizeof(a), 0);
        CHECK_MSG(n == -ESTALE, "%s: the old open wrote %zd bytes", type, n);
    }
    CHECK(h && xd_read(d2, h, b, sizeof(b), 0) == sizeof(b) && b[0] == 'n');
    xd_file_close(dev, f);
    xd_file_close(dev, g);
    xd_file_close(d2, h);
    xd_unlink(d2, path, err, sizeof(err));
    xd_unlink(d2, other, err, sizeof(err));
out:
    xd_close(dev);
    xd_close(d2);
    xd_config_free(cfg);
}

/* RLIMIT_NOFILE far below max_open_files (1024, the default of both on
 * most systems, and the program holds some): opening more files than the
 * process may have descriptors works, the fd cache giving back idle ones,
 * and every file reads back what was written to it. */
static void test_more_files_than_descriptors(const char *type, const char *dir_path)
{
    enum { FILES = 150 };
    struct rlimit was, low;
    struct xd_dev *dev = open_dev(type);
    struct xd_file *f[FILES] = {0};
    char name[FILES][4200];
    static char buf[4096] __attribute__((aligned(4096)));
    if (!dev || getrlimit(RLIMIT_NOFILE, &was)) {
        xd_close(dev);
        return;
    }
    low = was;
    low.rlim_cur = 64;
    CHECK(!setrlimit(RLIMIT_NOFILE, &low));
    int opened = 0;
    for (int i = 0; i < FILES; i++) {
        snprintf(name[i], sizeof(name[i]), "%s/many-%d", dir_path, i);
        int rc = xd_file_open(dev, name[i], XD_OPEN_CREATE, 8192, &f[i], err, sizeof(err));
        CHECK_MSG(!rc, "%s: file %d of %d with 64 descriptors: %s", type, i, FILES, err);
        if (rc)
            break;
        memset(buf, 'a' + i % 26, sizeof(buf));
        CHECK(xd_write(dev, f[i], buf, sizeof(buf), 4096) == sizeof(buf));
        opened++;
    }
    for (int i = 0; i < opened; i++) {
        CHECK(xd_read(dev, f[i], buf, sizeof(buf), 4096) == sizeof(buf) &&
              buf[0] == 'a' + i % 26);
        xd_file_close(dev, f[i]);
        xd_unlink(dev, name[i], err, sizeof(err));
    }
    xd_close(dev);
    setrlimit(RLIMIT_NOFILE, &was);
}

static unsigned entries(const char *d)
{
    DIR *dir = opendir(d);
    unsigned n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        n += e->d_name[0] != '.';
    if (dir)
        closedir(dir);
    return n;
}

/* The tmpfs type keeps its data in a copy under tmpfs_directory: a failed
 * open removes the copy it made (new, or restored from P with
 * backup_to_disk), which would otherwise stay in RAM, and P stays. */
static void test_tmpfs_failed_open_leaves_no_copy(const char *path, bool backup)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    CHECK_MSG(!xd_config_set(cfg, "storage_type", "tmpfs", "test", err, sizeof(err)) &&
                  !xd_config_set(cfg, "tmpfs_directory", hot, "test", err, sizeof(err)) &&
                  !xd_config_set(cfg, "backup_to_disk", backup ? "true" : "false", "test", err,
                                 sizeof(err)) &&
                  !xd_open(&dev, cfg, 8, err, sizeof(err)),
              "%s", err);
    if (backup) { /* P holds data: the open restores it into a new copy first */
        static char data[65536];
        memset(data, 'P', sizeof(data));
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
        CHECK(fd >= 0 && write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
        if (fd >= 0)
            close(fd);
    }
    if (dev) {
        int rc = open_over_limit(dev, path, &f);
        CHECK_MSG(rc < 0 && !f, "tmpfs%s: sized past RLIMIT_FSIZE: %d", backup ? " (backup)" : "", rc);
        CHECK_MSG(entries(hot) == 0, "tmpfs%s: the failed open left its copy in %s (%s)",
                  backup ? " (backup)" : "", hot, err);
        if (f)
            xd_file_close(dev, f);
    }
    CHECK_MSG(backup == exists(path), "tmpfs%s: %s %s", backup ? " (backup)" : "", path,
              backup ? "removed" : "made");
    unlink(path);
    xd_close(dev);
    xd_config_free(cfg);
}

/* The path calls resolve a relative name against base_directory as the
 * open does: xd_path_prepare made the compressed type's container at the
 * name in the working directory, xd_path_logical_size read it there,
 * while xd_file_open opened base_directory/name. */
static void test_path_calls_use_base_directory(const char *base)
{
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    struct xd_file *f = NULL;
    uint64_t logical = 0, size = 0;
    char full[4200];
    snprintf(full, sizeof(full), "%s/based.dat", base);
    CHECK_MSG(!xd_config_set(cfg, "storage_type", "compressed", "test", err, sizeof(err)) &&
                  !xd_config_set(cfg, "base_directory", base, "test", err, sizeof(err)),
              "%s", err);
    int rc = xd_path_prepare(cfg, "based.dat", LEN, &logical, err, sizeof(err));
    CHECK_MSG(rc == 0 && logical == LEN, "xd_path_prepare: %d %s", rc, err);
    CHECK_MSG(exists(full), "%s: not made by xd_path_prepare", full);
    CHECK_MSG(!exists("based.dat"), "based.dat made in the working directory");
    rc = xd_path_logical_size(cfg, "based.dat", &size, err, sizeof(err));
    CHECK_MSG(rc == 0 && size == LEN, "xd_path_logical_size: %d %llu %s", rc,
              (unsigned long long)size, err);
    CHECK_MSG(!xd_open(&dev, cfg, 8, err, sizeof(err)), "%s", err);
    CHECK_MSG(dev && !xd_file_open(dev, "based.dat", 0, 0, &f, err, sizeof(err)), "%s", err);
    CHECK(f && xd_file_size(dev, f) == LEN);
    if (f)
        xd_file_close(dev, f);
    if (dev)
        CHECK_MSG(!xd_unlink(dev, "based.dat", err, sizeof(err)), "%s", err);
    xd_close(dev);
    xd_config_free(cfg);
}

int main(void)
{
    static const char *types[] = {"regular", "mmap", "sparse", "compressed", "hybrid"};
    signal(SIGXFSZ, SIG_IGN); /* a write past RLIMIT_FSIZE: EFBIG, not death */
    if (!mkdtemp(dir) || !mkdtemp(hot))
        SKIP("cannot make a directory under /var/tmp and /dev/shm");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s.dat", dir, types[i]);
        test_unknown_flags(types[i], path);
        test_failed_create_leaves_nothing(types[i], path);
        test_failed_size_keeps_an_existing_file(types[i], path);
        test_close_closes_what_was_left_open(types[i], path);
        test_writes_far_past_the_end(types[i], path);
        if (!strcmp(types[i], "regular") || !strcmp(types[i], "sparse"))
            test_fd_cache_finds_another_file(types[i], path); /* the file driver's */
        CHECK_MSG(!exists(path), "%s: %s left behind", types[i], path);
    }
    test_more_files_than_descriptors("regular", dir);
    test_more_files_than_descriptors("sparse", dir);
    test_path_calls_use_base_directory(dir);
    char tpath[4200];
    snprintf(tpath, sizeof(tpath), "%s/tmpfs.dat", dir);
    test_tmpfs_failed_open_leaves_no_copy(tpath, false);
    test_tmpfs_failed_open_leaves_no_copy(tpath, true);
    CHECK_MSG(!rmdir(hot), "%s: not empty at the end", hot);
    CHECK_MSG(!rmdir(dir), "%s: not empty at the end", dir);
    return check_failures ? 1 : 0;
}
