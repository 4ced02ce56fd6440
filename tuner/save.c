/* save.c - writing a config the engine will read: header comments, then the
 * keys set in it, through the library's xd_config_save (atomic rename, so
 * the engine's reload and a person never see half a file). Only keys set
 * are written: the library checks explicit keys against each other, and a
 * short file says at a glance what was tuned.
 */
#include "xdtune.h"

int xt_config_save(const struct xd_config *cfg, const char *path, const char *header, char *err,
                   size_t errlen)
{
    return xd_config_save(cfg, path, header, err, errlen);
}
