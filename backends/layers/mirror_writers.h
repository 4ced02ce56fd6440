/* mirror_writers.h - which writers of a mirrored file are alive: a slot per
 * writer in the words page the writers share (mirror_writers.c). Private to
 * the mirror layer; never installed. */
#ifndef XD_MIRROR_WRITERS_H
#define XD_MIRROR_WRITERS_H

#include <stdbool.h>
#include <stdint.h>

/* Words of the page this module owns: 3 counts the slots handed out (each
 * slot's number, never 0), 4 is 1 once a writer found no free slot (it
 * could die unseen); words MIRROR_SLOT_FIRST.. are the slots. Words 0-2
 * are the turns' and the mirror's (mirror.c), 5 the degraded members'
 * (mirror_members.h). */
#define MIRROR_WORD_SLOT_GEN  3
#define MIRROR_WORD_UNTRACKED 4
#define MIRROR_SLOT_FIRST     16u

/* One writer's slot: word `at` of the page holds its number while it
 * writes, and its descriptor of the page holds an exclusive OFD lock on
 * byte `at` of it. */
struct mirror_slot {
    uint32_t *words; /* the page; NULL: no slot (no page) */
    unsigned nwords; /* its size in words */
    int fd;          /* this writer's own descriptor of the page */
    unsigned at;     /* the slot's word and byte; 0: none */
};

#pragma GCC visibility push(hidden)

/* Take a slot in the page (nwords words, mapped at words; fd: this
 * writer's own descriptor of it). alone: no other writer has the file
 * open, and this one fills every copy not stamped in sync from the primary
 * before it writes: what writers killed earlier left undone is made good
 * by that fill, so their slots are freed first. */
void mirror_writers_join(struct mirror_slot *s, uint32_t *words, unsigned nwords, int fd,
                         bool alone);
/* Did a writer of the file die (killed, with no clean close) since the
 * last writer alone at its open joined, or could one have died unseen? */
bool mirror_writers_dead(const struct mirror_slot *s);
/* A clean close: the slot let go. */
void mirror_writers_leave(struct mirror_slot *s);

#pragma GCC visibility pop

#endif
