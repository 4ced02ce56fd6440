/* reload.c - xd_reload: change an open device's live keys. All or nothing:
 * a new config that differs in a key the chain fixed at open (the storage
 * type, O_DIRECT, the async mode, ...) is refused whole, so a device never
 * runs on a config nobody wrote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xd_internal.h"

/* "key (old -> new)" for each differing key that is not live, joined; 0
 * when there is none. */
static int reload_fixed_keys(const struct xd_config *cur, const struct xd_config *next, char *out,
                             size_t len)
{
    int n = 0;
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if ((xd_keys[k].flags & XD_K_LIVE) || xd_config_key_equal(cur, next, k))
            continue;
        char old[64];
        snprintf(old, sizeof(old), "%s", xd_config_get(cur, xd_keys[k].name));
        int w = snprintf(out + used, len - used, "%s%s (%s -> %s)", n ? ", " : "", xd_keys[k].name,
                         old, xd_config_get(next, xd_keys[k].name));
        if (w > 0)
            used = used + (size_t)w < len ? used + (size_t)w : len - 1;
        n++;
    }
    return n;
}

/* The live keys joined by commas, for the refusal's "allowed". */
static void reload_live_names(char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < XD_KEY_COUNT && used < len; k++)
        if ((xd_keys[k].flags & XD_K_LIVE) && !(xd_keys[k].flags & XD_K_PENDING))
            used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "",
                                     xd_keys[k].name);
}

int xd_reload(struct xd_dev *dev, const struct xd_config *newcfg, char *err, size_t errlen)
{
    char fixed[1024], live[512];
    int rc = xd_config_check(newcfg, err, errlen);
    if (rc)
        return rc;
    if (reload_fixed_keys(dev->cfg, newcfg, fixed, sizeof(fixed))) {
        reload_live_names(live, sizeof(live));
        xd_errf(err, errlen, "reload refused, nothing applied: %s cannot change while the device is open; allowed to change: %s",
                fixed, live);
        return -EINVAL;
    }
    struct xd_config *before = xd_config_dup(dev->cfg);
    if (!before)
        return -ENOMEM;
    int changed = 0;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if (xd_config_key_equal(dev->cfg, newcfg, k))
            continue;
        if ((rc = xd_config_copy_key(dev->cfg, newcfg, k)))
            break;
        changed++;
    }
    /* even a partial copy (out of memory) is applied: the layers must match
     * what dev->cfg now says */
    if (changed) {
        int lrc = xd_layer_control(dev->top, XD_CTL_RELOAD, before);
        if (!rc && lrc && lrc != -ENOTTY)
            rc = lrc;
    }
    xd_config_free(before);
    if (rc)
        xd_errf(err, errlen, "reload: applying the new config failed: %s", strerror(-rc));
    return rc ? rc : changed;
}
