/* reload.c - xd_reload: change an open device's live keys. All or nothing:
 * a new config that differs in a key the chain fixed at open (the storage
 * type, O_DIRECT, the async mode, ...) is refused whole, and a layer that
 * fails to apply its part (the cache cannot reserve a bigger size) puts the
 * old values back, so a device never runs on a config nobody wrote.
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

/* Copy every differing key of next into cfg: how many, or -ENOMEM (only a
 * string key's copy can fail, and no string key is live). */
static int reload_copy(struct xd_config *cfg, const struct xd_config *next)
{
    int changed = 0;
    for (int k = 0; k < XD_KEY_COUNT; k++) {
        if (xd_config_key_equal(cfg, next, k))
            continue;
        if (xd_config_copy_key(cfg, next, k))
            return -ENOMEM;
        changed++;
    }
    return changed;
}

/* A layer failed to apply the new values: put the old ones back and let the
 * chain apply those again. */
static void reload_undo(struct xd_dev *dev, const struct xd_config *before, char *err,
                        size_t errlen, int rc)
{
    char keys[512] = "";
    size_t used = 0;
    for (int k = 0; k < XD_KEY_COUNT && used < sizeof(keys); k++)
        if (!xd_config_key_equal(dev->cfg, before, k))
            used += (size_t)snprintf(keys + used, sizeof(keys) - used, "%s%s", used ? ", " : "",
                                     xd_keys[k].name);
    struct xd_config *failed = xd_config_dup(dev->cfg);
    reload_copy(dev->cfg, before);
    if (failed)
        xd_chain_reload(dev->top, failed);
    xd_config_free(failed);
    xd_errf(err, errlen, "reload refused, the old values stay: the chain could not apply %s: %s",
            keys, strerror(-rc));
}

int xd_reload(struct xd_dev *dev, const struct xd_config *newcfg, char *err, size_t errlen)
{
    char fixed[1024], live[512];
    if (!dev || !newcfg) {
        xd_errf(err, errlen, "reload refused: %s is NULL; allowed: an open device and a config",
                dev ? "the new config" : "the device");
        return -EINVAL;
    }
    if (xd_dev_forked(dev))
        return xd_dev_refuse_forked(dev, err, errlen);
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
    int changed = reload_copy(dev->cfg, newcfg);
    if (changed > 0) {
        rc = xd_chain_reload(dev->top, before);
        if (rc)
            reload_undo(dev, before, err, errlen, rc);
        else
            rc = 0;
    } else {
        rc = changed; /* 0, or -ENOMEM with nothing copied */
    }
    xd_config_free(before);
    return rc ? rc : changed;
}
