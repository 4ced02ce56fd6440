/* xdexample - the smallest production use of libxdevice: open a device from
 * an INI file (say the best.ini xdtune wrote), write, read back, check, and
 * print the device's statistics.
 *
 *   cc -o xdexample xdexample.c $(pkg-config --cflags --libs xdevice)
 *   ./xdexample CONFIG.ini FILE [MiB]
 *
 * FILE is created when missing (with the compressed type it is a container:
 * only the library may write it). The statistics JSON goes to stdout, taken
 * while FILE is still open; what happened goes to stderr. Exit 0 when every
 * byte read back is the byte written, 1 otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xdevice.h>

#define BLOCK (256u * 1024)

/* Compressible, block- and offset-dependent bytes: half text, half counter. */
static void fill(unsigned char *buf, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (i % 64 < 32) ? (unsigned char)"xdevice example "[i % 16]
                               : (unsigned char)((off + i) / 64 * 7);
}

/* Write mib MiB, read them back and compare. 0, or -1 with a message. */
static int write_and_check(struct xd_dev *dev, struct xd_file *file, unsigned mib)
{
    unsigned char *out = malloc(BLOCK), *in = malloc(BLOCK);
    int rc = out && in ? 0 : -1;
    for (uint64_t off = 0; !rc && off < (uint64_t)mib << 20; off += BLOCK) {
        fill(out, BLOCK, off);
        ssize_t n = xd_write(dev, file, out, BLOCK, off);
        if (n != (ssize_t)BLOCK) {
            fprintf(stderr, "xdexample: write at %llu: %s\n", (unsigned long long)off,
                    strerror(n < 0 ? (int)-n : EIO));
            rc = -1;
        }
    }
    if (!rc && xd_flush(dev, file, 0) < 0) {
        fprintf(stderr, "xdexample: flush failed\n");
        rc = -1;
    }
    for (uint64_t off = 0; !rc && off < (uint64_t)mib << 20; off += BLOCK) {
        fill(out, BLOCK, off);
        ssize_t n = xd_read(dev, file, in, BLOCK, off);
        if (n != (ssize_t)BLOCK || memcmp(in, out, BLOCK)) {
            char line[XD_ERRLEN] = "";
            xd_dev_take_error(dev, line, sizeof(line));
            fprintf(stderr, "xdexample: data read back at %llu differs %s\n",
                    (unsigned long long)off, line);
            rc = -1;
        }
    }
    free(out);
    free(in);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: xdexample CONFIG.ini FILE [MiB (8)]\n");
        return 2;
    }
    unsigned mib = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 8;
    char err[XD_ERRLEN];
    struct xd_config *cfg = xd_config_new();
    struct xd_dev *dev = NULL;
    struct xd_file *file = NULL;
    if (!cfg || xd_config_load(cfg, argv[1], err, sizeof(err)) < 0 ||
        xd_config_check(cfg, err, sizeof(err)) < 0 || xd_open(&dev, cfg, 1, err, sizeof(err)) < 0 ||
        xd_file_open(dev, argv[2], XD_OPEN_CREATE, (uint64_t)mib << 20, &file, err, sizeof(err)) < 0) {
        fprintf(stderr, "xdexample: %s\n", cfg ? err : "out of memory");
        if (dev)
            xd_close(dev);
        xd_config_free(cfg);
        return 1;
    }
    const char *notice = xd_dev_notice(dev);
    if (notice)
        fprintf(stderr, "xdexample: %s\n", notice);

    int rc = write_and_check(dev, file, mib);
    if (!rc) {
        char shown[XD_ESCAPE_LEN]; /* escaped: a newline in FILE would split the line */
        fprintf(stderr, "xdexample: wrote and read back %u MiB of %s (%s), all equal\n", mib,
                xd_escape(argv[2], shown, sizeof(shown)), xd_config_get(cfg, "storage_type"));
    }
    /* while the file is open: the figures are live, not only at close */
    char *stats = xd_stats_json(dev);
    if (stats) {
        puts(stats);
        free(stats);
    }
    xd_file_close(dev, file);
    xd_close(dev);
    xd_config_free(cfg);
    return rc ? 1 : 0;
}
