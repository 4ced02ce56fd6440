/* config_save.c - replace an INI file so that readers see the whole old or
 * the whole new file and a crash leaves one of them: xd_write_file_atomic
 * (fileutil.h), which makes everything relative to the directory's fd and
 * never follows a symlink, so a link planted there cannot redirect the write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fileutil.h"
#include "xd_internal.h"

/* header as "# " lines, then the INI text, malloc'd. */
static char *save_text(const struct xd_config *cfg, const char *header)
{
    char *ini = xd_config_ini_set_keys(cfg), *text = NULL;
    size_t len = 0;
    FILE *out = ini ? open_memstream(&text, &len) : NULL;
    if (!out) {
        free(ini);
        return NULL;
    }
    for (const char *p = header; p && *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "# %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
    fputs(ini, out);
    free(ini);
    fclose(out);
    return text;
}

int xd_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen)
{
    const char *base;
    char *text = save_text(cfg, header);
    if (!text)
        return -ENOMEM;
    /* allow_shared: a config file's directory is the user's choice, not checked */
    int dirfd = xd_dir_open_for(path, path, true, &base, err, errlen);
    int rc = dirfd;
    if (dirfd >= 0) {
        struct iovec iov = {text, strlen(text)};
        rc = xd_write_file_atomic(dirfd, base, (mode_t)cfg->config_file_mode, &iov, 1, path, err,
                                  errlen);
        close(dirfd);
    }
    free(text);
    return rc;
}
