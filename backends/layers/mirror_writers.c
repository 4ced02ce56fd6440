/* mirror_writers.c - which writers of a mirrored file are alive (see
 * mirror_writers.h).
 *
 * A writer killed (kill -9) between its write of the primary and of a copy
 * leaves them different at that block; with no clean close it cannot say
 * so, and a writer still at work never learned of it: a writer joining
 * later trusted the copies it kept "in sync", and the last clean close
 * stamped them "sync" though they differed. So each writer takes a slot in
 * the page the writers share, and holds an exclusive OFD lock on the
 * slot's byte of the page through its own descriptor for as long as it
 * writes: the kernel lets the lock go when the process dies, the slot
 * stays taken, and a slot taken whose lock nobody holds is a writer that
 * died. Looked at once per open and once per close, never per request.
 *
 * The order makes a live writer's slot never look dead: a writer takes
 * the lock before it writes its number into the slot, and clears the
 * number before it lets the lock go. A look that sees the same number
 * before and after finding no lock saw a dead writer's slot (numbers are
 * never reused while the page lives). */
#include "mirror_writers.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>

#include "../core/turns.h"

static uint32_t slot_load(const struct mirror_slot *s, unsigned i)
{
    return __atomic_load_n(&s->words[i], __ATOMIC_SEQ_CST);
}

/* Does another descriptor hold slot i's lock? */
static bool slot_locked(const struct mirror_slot *s, unsigned i)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)i, .l_len = 1};
    return !fcntl(s->fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK;
}

/* Slot i's number when it is a dead writer's, else 0. */
static uint32_t slot_dead(const struct mirror_slot *s, unsigned i)
{
    uint32_t n = slot_load(s, i);
    if (!n || i == s->at || slot_locked(s, i))
        return 0;
    return slot_load(s, i) == n ? n : 0;
}

/* The slots of writers that died, freed: only by a writer alone at its
 * open, whose fill makes good what they left undone. */
static void slots_free_dead(const struct mirror_slot *s)
{
    for (unsigned i = MIRROR_SLOT_FIRST; i < s->nwords; i++) {
        uint32_t n = slot_dead(s, i);
        if (n)
            __atomic_compare_exchange_n(&s->words[i], &n, 0, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&s->words[MIRROR_WORD_UNTRACKED], 0, __ATOMIC_SEQ_CST);
}

/* A number for a new slot: never 0, never one the page handed out before
 * (until 2^32 joins of one page). */
static uint32_t slot_number(const struct mirror_slot *s)
{
    uint32_t n;
    do
        n = __atomic_add_fetch(&s->words[MIRROR_WORD_SLOT_GEN], 1, __ATOMIC_SEQ_CST);
    while (!n);
    return n;
}

/* Slot i taken for number n: its lock first, then the number. A slot whose
 * lock was free but whose word is not 0 is a dead writer's, left as it is
 * for the others to see. */
static bool slot_take(struct mirror_slot *s, unsigned i, uint32_t n)
{
    uint32_t free_word = 0;
    if (slot_load(s, i) || xd_turns_fcntl(s->fd, F_OFD_SETLK, F_WRLCK, (off_t)i, 1))
        return false;
    if (__atomic_compare_exchange_n(&s->words[i], &free_word, n, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
        return true;
    xd_turns_fcntl(s->fd, F_OFD_SETLK, F_UNLCK, (off_t)i, 1);
    return false;
}

void mirror_writers_join(struct mirror_slot *s, uint32_t *words, unsigned nwords, int fd,
                         bool alone)
{
    *s = (struct mirror_slot){.words = words, .nwords = nwords, .fd = fd};
    if (!words)
        return;
    if (alone)
        slots_free_dead(s);
    uint32_t n = slot_number(s);
    for (unsigned i = MIRROR_SLOT_FIRST; i < nwords && !s->at; i++)
        if (slot_take(s, i, n))
            s->at = i;
    if (!s->at) /* every slot taken: this writer could die unseen */
        __atomic_store_n(&words[MIRROR_WORD_UNTRACKED], 1, __ATOMIC_SEQ_CST);
}

bool mirror_writers_dead(const struct mirror_slot *s)
{
    if (!s->words)
        return false;
    if (__atomic_load_n(&s->words[MIRROR_WORD_UNTRACKED], __ATOMIC_SEQ_CST))
        return true;
    for (unsigned i = MIRROR_SLOT_FIRST; i < s->nwords; i++)
        if (slot_dead(s, i))
            return true;
    return false;
}

void mirror_writers_leave(struct mirror_slot *s)
{
    if (!s->at)
        return;
    __atomic_store_n(&s->words[s->at], 0, __ATOMIC_SEQ_CST); /* the number before the lock */
    xd_turns_fcntl(s->fd, F_OFD_SETLK, F_UNLCK, (off_t)s->at, 1);
    s->at = 0;
}
