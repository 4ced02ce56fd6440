/* mirror_members.c - which members of a mirrored file any of its writers
 * degraded (see mirror_members.h).
 *
 * A member degraded by one writer misses that writer's later writes, so it
 * is stale for every writer: another one, closing last, stamped such a copy
 * "sync" (the next open trusted it), or, the primary degraded, stamped the
 * copies "sync" rather than "newer" (the next open trusted the stale
 * primary, and the degrading writer's acknowledged writes were lost). So
 * the degrade is marked in the writers' page before the failed write
 * completes, and every writer takes the marks as its own (mirror.c). A
 * degrade is rare: the mark costs nothing on the normal path.
 *
 * Marks never cover every member: two writers degrading different members
 * at once would leave each writing a member the other skips. The second
 * mark is refused, and its member stays in use (as the last healthy copy
 * does: its failed writes then fail). */
#include "mirror_members.h"

bool mirror_members_mark(uint32_t *words, unsigned c, unsigned n)
{
    if (!words)
        return true; /* no page: nobody else to tell, nothing to refuse */
    uint32_t all = (n >= 32 ? 0u : 1u << n) - 1u;
    uint32_t old = __atomic_load_n(&words[MIRROR_WORD_DEGRADED], __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t want = old | 1u << c;
        if (want == old)
            return true;
        if ((want & all) == all)
            return false;
        if (__atomic_compare_exchange_n(&words[MIRROR_WORD_DEGRADED], &old, want, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return true;
    }
}

uint32_t mirror_members_degraded(const uint32_t *words)
{
    return words ? __atomic_load_n(&words[MIRROR_WORD_DEGRADED], __ATOMIC_ACQUIRE) : 0;
}

void mirror_members_reset(uint32_t *words)
{
    if (words)
        __atomic_store_n(&words[MIRROR_WORD_DEGRADED], 0, __ATOMIC_SEQ_CST);
}
