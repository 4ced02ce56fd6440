/* save.c - writing a config the engine will read: header comments, then the
 * INI that recreates it, replaced atomically so a reader (the engine's
 * reload, a person) never sees half a file.
 *
 * Only keys that differ from their defaults are written: the library checks
 * keys set explicitly against each other (enable_compression=true with
 * storage_type=regular is refused), so a full dump - what xd_config_save
 * writes today - does not load in the engine for most types. A short file
 * also says at a glance what was tuned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdtune.h"

int xt_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen)
{
    char *ini = xd_config_ini(cfg), *text = NULL;
    size_t len = 0;
    FILE *f = ini ? open_memstream(&text, &len) : NULL;
    if (!f) {
        free(ini);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    for (const char *l = header; l && *l;) { /* every header line becomes a comment */
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        fprintf(f, "; %.*s\n", (int)n, l);
        l += n + (nl != NULL);
    }
    struct xd_config *defaults = xd_config_new();
    char *save = NULL, *section = NULL;
    for (char *l = strtok_r(ini, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *eq = strstr(l, " = ");
        if (l[0] == '[') {
            section = l;  /* written before its first differing key */
            continue;
        }
        if (!eq || !defaults)
            continue;
        *eq = 0;
        const char *def = xd_config_get(defaults, l);
        if (def && strcmp(def, eq + 3) == 0)
            continue;
        if (section)
            fprintf(f, "%s\n", section);
        section = NULL;
        fprintf(f, "%s = %s\n", l, eq + 3);
    }
    xd_config_free(defaults);
    fclose(f);
    free(ini);
    int rc = xt_write_atomic(path, text, err, errlen);
    free(text);
    return rc;
}
