/* turns.h - writers of one file taking turns across descriptors: an
 * exclusive OFD lock on a range, taken without ever waiting while this
 * thread holds what another waiter may need.
 *
 * A layer whose writes must not overlap another device's writes of the
 * same bytes while both are out (the checksum layer's entries, the mirror
 * layer's copies) holds a lock on the range from before its write goes
 * down until it has completed (reaped). Its devices' writes out then hold
 * locks, so a device about to wait for a lock first lets the writes out of
 * every device its thread drives land (each layer's drain: send, reap,
 * complete, hold for its caller's next reap), and nobody waits while
 * holding a lock: no cycle of waiters can form, and a program driving two
 * devices in one thread never waits on itself. */
#ifndef XD_TURNS_H
#define XD_TURNS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct xd_layer;
struct xd_req;

/* A layer's own list of requests: its writes out holding turns, or what a
 * drain reaped for the caller's next reap (oldest first). */
struct xd_req_list {
    struct xd_req **at;
    unsigned n, cap;
};

/* One layer of one device in the process-wide list (embedded in the
 * layer's state). */
struct xd_turns_member {
    struct xd_layer *layer;
    int (*drain)(struct xd_layer *layer); /* its writes out land; 0 or -errno */
    pthread_t owner; /* the thread that last sent it a request; 0 before */
    struct xd_turns_member *next;
};

/* A file's only writer takes no turn: two system calls per write (about
 * 1.1 us on a 2-vCPU guest) are saved where nobody else writes. Every
 * writable descriptor holds a shared lock on a presence byte for its life;
 * one whose lock upgrades to exclusive at once is alone: it resets the
 * words, holds the solo byte exclusively and goes solo. A later one sets
 * `wanted` and waits while `solo_out` (the solo writer's writes out, which
 * took no turn) is not 0 and the solo byte is held (a solo writer killed
 * lets it go). The solo writer adds to `solo_out` before it loads
 * `wanted`, the newcomer stores `wanted` before it loads `solo_out`, all
 * sequentially consistent, so one always sees the other; on seeing
 * `wanted` the solo writer lets its writes land, gives up the solo byte and
 * takes turns until it is alone again: every XD_TURNS_REGAIN_EVERY-th
 * write that takes a turn tries the presence upgrade again (one system
 * call that fails at once while others are there), and once every other
 * writer has closed it goes solo as at open. */
struct xd_turns_solo {
    int fd; /* a writable descriptor of the file the two lock bytes are on */
    off_t presence_byte, solo_byte;
    /* shared by every writer of the file (a mapping the caller keeps these
     * pointing into); NULL: this descriptor is never solo and cannot ask */
    uint32_t *wanted, *solo_out;
    bool on;        /* solo now */
    unsigned turns; /* writes that took a turn since the last try to be solo again */
};

#define XD_TURNS_REGAIN_EVERY 64

#pragma GCC visibility push(hidden)

/* Room for more requests on l (made before one goes out, so a request
 * is never out unlisted). 0 or -ENOMEM. */
int xd_req_list_room(struct xd_req_list *l, unsigned more);
/* r at the end of l (xd_req_list_room made room). */
void xd_req_list_add(struct xd_req_list *l, struct xd_req *r);
/* r off l, if there (order not kept). */
void xd_req_list_remove(struct xd_req_list *l, const struct xd_req *r);
/* Up to max of l's oldest into out, off l. How many. */
unsigned xd_req_list_take(struct xd_req_list *l, struct xd_req **out, unsigned max);
void xd_req_list_free(struct xd_req_list *l);

/* The presence lock, taken before the words are set up (see the users). */
int xd_turns_presence(const struct xd_turns_solo *s);
/* With the words set: solo when alone (the words reset: a writer killed
 * left them), else the solo writer, if any, asked and waited for. Without
 * them (wanted NULL): 0, or -EBUSY while a solo writer is at work, which
 * this one cannot ask to take turns (a writer that takes turns beside one
 * that takes none would interleave with it). 0 or -errno. */
int xd_turns_solo_join(struct xd_turns_solo *s);
/* A write about to go: true when solo (counted out: xd_turns_solo_done
 * when it is done); false to take a turn (solo is given up when asked,
 * after layer's writes out have landed, and taken again once alone). */
bool xd_turns_solo_enter(struct xd_turns_solo *s, struct xd_layer *layer,
                         int (*drain)(struct xd_layer *layer));
void xd_turns_solo_done(struct xd_turns_solo *s);
/* A writer with the words that is not solo now (none of its writes
 * counted out) and finds itself alone: solo again, as at open (the words
 * reset, the solo byte taken). false where another writer is there. */
bool xd_turns_solo_regain(struct xd_turns_solo *s);
/* At close: whether this writer is the last (its presence let go, an
 * exclusive one taken at once; the descriptor's close lets it go), so
 * whatever the writers share may go: a writer coming meanwhile waits for
 * its presence until then. */
bool xd_turns_last(const struct xd_turns_solo *s);

void xd_turns_join(struct xd_turns_member *m, struct xd_layer *layer,
                   int (*drain)(struct xd_layer *layer));
void xd_turns_leave(struct xd_turns_member *m);
/* The calling thread sends m's layer requests (call at each submit). */
void xd_turns_owner(struct xd_turns_member *m);
/* Every member this thread drives drains. 0 or the first -errno;
 * -EDEADLK when called while this thread drains already. */
int xd_turns_drain_thread(void);
/* For a layer's drain: completions from lower (the layer below it), at
 * least one, up to max, into done. A reap that gives nothing is tried
 * again (a wait a signal cut short: an io_uring reap says 0, others
 * -EINTR); XD_TURNS_DRAIN_EMPTY_MAX empty ones in a row: -EDEADLK (nothing
 * below can land the writes: their completions are up here) rather than
 * spin for ever. How many, or -errno. */
int xd_turns_drain_reap(struct xd_layer *lower, struct xd_req **done, unsigned max);
#define XD_TURNS_DRAIN_EMPTY_MAX 1000u
/* fcntl(fd, cmd, lock of type on [start, start+len)), retried on EINTR.
 * 0 or -errno: a conflict under F_OFD_SETLK is -EAGAIN or -EACCES. */
int xd_turns_fcntl(int fd, int cmd, short type, off_t start, off_t len);
/* An exclusive OFD lock on [start, start+len) of fd: taken at once, or
 * after the thread's devices drained (*waited set). 0 or -errno. */
int xd_turns_lock(int fd, off_t start, off_t len, bool *waited);
void xd_turns_unlock(int fd, off_t start, off_t len);

#pragma GCC visibility pop

#endif
