/* fault_held.h - the fault layer's volatile write cache (fault_drop_writes):
 * writes acknowledged but not yet stored, per open file (fault_held.c).
 * Private to the fault layer; never installed. */
#ifndef XD_FAULT_HELD_H
#define XD_FAULT_HELD_H

#include <stdbool.h>
#include <stdint.h>

struct fault_held_write {
    struct fault_held_write *next;
    uint64_t off, len;
    unsigned char *data; /* 4 KiB aligned: it may go below with O_DIRECT */
};

/* Oldest first. Every entry holds the newest bytes for its range: a later
 * write over part of it, held or stored, patches it, so the entries never
 * disagree and their order matters only for write-back. */
struct fault_held {
    struct fault_held_write *head, *tail;
    uint64_t bytes, count;
};

/* Hold len bytes of buf for off (a copy); 0 or -ENOMEM. */
int fault_held_add(struct fault_held *h, uint64_t off, const void *buf, uint64_t len);
bool fault_held_overlaps(const struct fault_held *h, uint64_t off, uint64_t len);
/* A write (buf) or trim (buf NULL: zeros) of [off, off+len) reached the
 * file: the held bytes it covers take its data. */
void fault_held_patch(struct fault_held *h, uint64_t off, const void *buf, uint64_t len);
/* A read of [off, off+len) came back into buf: the held bytes win. */
void fault_held_overlay(const struct fault_held *h, uint64_t off, void *buf, uint64_t len);
/* The oldest entry, taken off the list (the caller stores it, then
 * fault_held_free). */
struct fault_held_write *fault_held_pop(struct fault_held *h);
void fault_held_free(struct fault_held_write *w);
/* Forget every entry (a close before a flush: the cache lost its power);
 * returns how many were lost. */
uint64_t fault_held_clear(struct fault_held *h);

#endif
