/* config_save.c - replace an INI file so that readers see the whole old or
 * the whole new file and a crash leaves one of them: xd_write_file_atomic
 * (fileutil.h), which makes everything relative to the directory's fd and
 * never follows a symlink, so a link planted there cannot redirect the write,
 * and replaces only a file of the caller's or root's, keeping its mode
 * unless config_file_mode is set.
 * A value the INI syntax cannot hold is refused, so what is written reads
 * back as the config it was given (xdevice.h promises it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Why "key = value" would read back as something else, or NULL. The
 * loader (config.c) ends a line at a newline, trims white space around a
 * value, and takes ';' at its start or after white space for a comment: a
 * newline in a value would write lines of its own ("trace=/x\n[fault]\n
 * enable_fault_injection = true"), and "/a ; b" would read back as "/a". */
static const char *ini_unsafe(const char *v)
{
    for (const char *p = v; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "a control character";
        if (*p == ';' && (p == v || isspace((unsigned char)p[-1])))
            return "a ';' at its start or after white space, which starts a comment";
    }
    if (*v && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[strlen(v) - 1])))
        return "white space at its start or end, which is trimmed";
    return NULL;
}

/* Every key's value must survive the trip through the file. 0, or -EINVAL
 * with one line naming where the value came from, the key and the value. */
static int save_check_values(const struct xd_config *cfg, char *err, size_t errlen)
{
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        const char *v = xd_config_get(cfg, xd_keys[k].name), *why = v ? ini_unsafe(v) : NULL;
        char shown[XD_ESCAPE_LEN];
        if (!why)
            continue;
        xd_errf(err, errlen, "%s: %s=%s: holds %s, so an INI file cannot keep it; allowed: a value without control characters, white space at its ends, or a ';' after white space",
                xd_config_key_origin(cfg, k), xd_keys[k].name, xd_escape(v, shown, sizeof(shown)),
                why);
        return -EINVAL;
    }
    return 0;
}

/* path's directory, opened for *at calls, and what is at its name: nothing,
 * or a regular file of the caller's or root's (xd_replace_check), whose stat
 * goes to *old (st_mode 0 when none). The directory's fd, or -errno with
 * one line in err. */
static int save_target(const char *path, const char **base, struct stat *old, char *err,
                       size_t errlen)
{
    /* allow_shared: a config file's directory is the user's choice, not checked */
    int dirfd = xd_dir_open_for(path, path, true, base, err, errlen);
    int rc = dirfd < 0 ? 0 : xd_replace_check(dirfd, *base, path, old, err, errlen);
    if (rc) {
        close(dirfd);
        return rc;
    }
    return dirfd;
}

int xd_config_save_check(const char *path, char *err, size_t errlen)
{
    const char *base;
    struct stat old;
    int dirfd = save_target(path, &base, &old, err, errlen);
    if (dirfd < 0)
        return dirfd;
    close(dirfd);
    return 0;
}

/* The mode of the saved file: config_file_mode when it was set (in the
 * file, on the command line, by the program), else the replaced file's
 * own, so that a config a service reads (0644) stays readable after a
 * save, else config_file_mode's default. */
static mode_t save_mode(const struct xd_config *cfg, const struct stat *old)
{
    if (cfg->origin[XD_KEY_config_file_mode] || !old->st_mode)
        return (mode_t)cfg->config_file_mode;
    return old->st_mode & 07777;
}

int xd_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen)
{
    const char *base;
    struct stat old;
    int checked = save_check_values(cfg, err, errlen);
    if (checked)
        return checked;
    char *text = save_text(cfg, header);
    if (!text)
        return -ENOMEM;
    int dirfd = save_target(path, &base, &old, err, errlen);
    int rc = dirfd;
    if (dirfd >= 0) {
        struct iovec iov = {text, strlen(text)};
        rc = xd_write_file_atomic(dirfd, base, save_mode(cfg, &old), &iov, 1, path, err, errlen);
        close(dirfd);
    }
    free(text);
    return rc;
}
