/* mirror_members.h - which members of a mirrored file (the primary, the
 * copies) any of its writers degraded: a word of the page the writers
 * share (mirror_members.c). Private to the mirror layer; never installed. */
#ifndef XD_MIRROR_MEMBERS_H
#define XD_MIRROR_MEMBERS_H

#include <stdbool.h>
#include <stdint.h>

/* The word: bit 0 the primary, bit c copy c, set by the writer that
 * degraded it. Words 0-4 and the slots are the turns', the mirror's and
 * the writers' (mirror.c, mirror_writers.h). */
#define MIRROR_WORD_DEGRADED 5

#pragma GCC visibility push(hidden)

/* Member c of n degraded in the page: false when every other member is
 * marked already (the writers would then each hold a different member,
 * none of them whole: the caller keeps c in use instead). */
bool mirror_members_mark(uint32_t *words, unsigned c, unsigned n);
/* The members marked (0 without a page). */
uint32_t mirror_members_degraded(const uint32_t *words);
/* By a writer alone at its open: what the marks said is in the stamps
 * now (the last close honoured them) and its fill repairs the rest. */
void mirror_members_reset(uint32_t *words);

#pragma GCC visibility pop

#endif
