/* xdreload - apply a new INI file to an open device, live, as a production
 * program does when xdtune's daemon (or a person) rewrites its config.
 *
 *   cc -o xdreload xdreload.c $(pkg-config --cflags --libs xdevice)
 *   ./xdreload OLD.ini NEW.ini FILE
 *
 * Opens FILE on a device built from OLD.ini, writes a block, then loads
 * NEW.ini and hands it to xd_reload: the keys marked live (read_ahead_kb,
 * cache_size, compression_level, ...; `xdconfig tunables` says which) change
 * on the open device; any other difference is refused and nothing changes.
 * It prints each changed key as "KEY: OLD -> NEW" and reads the block back
 * under the new config. A long-running program would wait for rewrites with
 * xd_config_watch_open/poll and do the same on XD_WATCH_CHANGED.
 * Exit 0 applied (or nothing to apply), 1 refused or failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xdevice.h>

static struct xd_config *load(const char *path)
{
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    if (!cfg || xd_config_load(cfg, path, err, sizeof(err)) < 0 ||
        xd_config_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "xdreload: %s\n", cfg ? err : "out of memory");
        xd_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Print the keys whose values differ between before and the device's config now. */
static void print_changes(const struct xd_config *before, const struct xd_dev *dev)
{
    const struct xd_config *now = xd_dev_config(dev);
    for (unsigned i = 0; i < xd_config_key_count(); i++) {
        const char *key = xd_config_key_name(i);
        char old[256];
        /* xd_config_get's text lives until the next call: copy the first */
        snprintf(old, sizeof(old), "%s", xd_config_get(before, key));
        const char *new = xd_config_get(now, key);
        if (strcmp(old, new))
            printf("%s: %s -> %s\n", key, old, new);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: xdreload OLD.ini NEW.ini FILE\n");
        return 2;
    }
    char err[XD_ERRLEN];
    static char block[64 * 1024], back[64 * 1024];
    struct xd_config *old = load(argv[1]), *new = old ? load(argv[2]) : NULL;
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    int rc = old && new ? 0 : 1;
    if (!rc && (xd_open(&dev, old, 1, err, sizeof(err)) < 0 ||
                xd_file_open(dev, argv[3], XD_OPEN_CREATE, 1 << 20, &file, err, sizeof(err)) < 0)) {
        fprintf(stderr, "xdreload: %s\n", err);
        rc = 1;
    }
    memset(block, 'x', sizeof(block));
    if (!rc && xd_write(dev, file, block, sizeof(block), 0) != (ssize_t)sizeof(block)) {
        fprintf(stderr, "xdreload: write failed\n");
        rc = 1;
    }
    if (!rc) {
        int changed = xd_reload(dev, new, err, sizeof(err));
        if (changed < 0) {
            fprintf(stderr, "xdreload: %s\n", err);
            rc = 1;
        } else {
            print_changes(old, dev);
            fprintf(stderr, "xdreload: %d key%s changed live\n", changed, changed == 1 ? "" : "s");
        }
    }
    if (!rc && (xd_read(dev, file, back, sizeof(back), 0) != (ssize_t)sizeof(back) ||
                memcmp(block, back, sizeof(back)))) {
        fprintf(stderr, "xdreload: data read back after the reload differs\n");
        rc = 1;
    }
    if (file)
        xd_file_close(dev, file);
    if (dev)
        xd_close(dev);
    xd_config_free(new);
    xd_config_free(old);
    return rc;
}
