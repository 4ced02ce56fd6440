/* retry.c - the retry layer (max_retries), being built: until it is, its keys
 * are refused as not built yet (XD_K_PENDING) and types.c never pushes it.
 * A layer that leaves every op NULL passes everything through. */
#include "../chain.h"

const struct xd_ops xd_retry_ops = {
    .version = XD_OPS_VERSION,
    .name = "retry",
};
