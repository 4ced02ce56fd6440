/* turns.c - writers of one file taking turns across descriptors: see
 * turns.h. */
#include "turns.h"

#include "xd_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t turns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xd_turns_member *turns_members;

/* A child after fork() forgets its parent's members: its main thread has
 * the id of the parent's thread that forked, so a drain here would reap
 * the parent's completions out of rings whose memory both share, and
 * unlock the parent's turns through descriptions both share. The lock is
 * made anew: another of the parent's threads may have held it. */
static void turns_forget_parent(void)
{
    turns_members = NULL;
    pthread_mutex_init(&turns_lock, NULL);
}

__attribute__((constructor)) static void turns_watch_forks(void)
{
    pthread_atfork(NULL, NULL, turns_forget_parent);
}
/* This thread is draining: a completion handled meanwhile that writes (the
 * mirror repairing a copy a read found bad) must not drain again. */
static __thread bool turns_draining;

void xd_turns_join(struct xd_turns_member *m, struct xd_layer *layer,
                   int (*drain)(struct xd_layer *layer))
{
    m->layer = layer;
    m->drain = drain;
    pthread_mutex_lock(&turns_lock);
    m->next = turns_members;
    turns_members = m;
    pthread_mutex_unlock(&turns_lock);
}

void xd_turns_leave(struct xd_turns_member *m)
{
    pthread_mutex_lock(&turns_lock);
    struct xd_turns_member **at = &turns_members;
    while (*at && *at != m)
        at = &(*at)->next;
    if (*at)
        *at = m->next;
    pthread_mutex_unlock(&turns_lock);
}

void xd_turns_owner(struct xd_turns_member *m)
{
    /* relaxed: a thread only ever looks for its own id, which its own
     * store made visible to it; another thread's value never equals it */
    __atomic_store_n(&m->owner, pthread_self(), __ATOMIC_RELAXED);
}

/* The list is held while the members drain: a member cannot leave (its
 * device close) in the middle. A write that must wait for its turn while
 * this thread drains (a completion's repair) fails with -EDEADLK instead:
 * its thread's writes out cannot land before it returns. */
int xd_turns_drain_thread(void)
{
    int rc = 0;
    pthread_t self = pthread_self();
    if (turns_draining)
        return -EDEADLK;
    turns_draining = true;
    pthread_mutex_lock(&turns_lock);
    for (struct xd_turns_member *m = turns_members; m && !rc; m = m->next)
        if (pthread_equal(__atomic_load_n(&m->owner, __ATOMIC_RELAXED), self))
            rc = m->drain(m->layer);
    pthread_mutex_unlock(&turns_lock);
    turns_draining = false;
    return rc;
}

int xd_turns_drain_reap(struct xd_layer *lower, struct xd_req **done, unsigned max)
{
    for (unsigned empty = 0; empty < XD_TURNS_DRAIN_EMPTY_MAX; empty++) {
        int rc = xd_layer_reap(lower, done, 1, max, NULL);
        if (rc && rc != -EINTR)
            return rc;
    }
    return -EDEADLK;
}

int xd_turns_fcntl(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    while (fcntl(fd, cmd, &fl))
        if (errno != EINTR)
            return -errno;
    return 0;
}

int xd_turns_lock(int fd, off_t start, off_t len, bool *waited)
{
    int rc = xd_turns_fcntl(fd, F_OFD_SETLK, F_WRLCK, start, len);
    *waited = rc == -EAGAIN || rc == -EACCES;
    if (!*waited)
        return rc;
    rc = xd_turns_drain_thread();
    return rc ? rc : xd_turns_fcntl(fd, F_OFD_SETLKW, F_WRLCK, start, len);
}

void xd_turns_unlock(int fd, off_t start, off_t len)
{
    xd_turns_fcntl(fd, F_OFD_SETLK, F_UNLCK, start, len);
}

/* --- request lists ---------------------------------------------------------- */

int xd_req_list_room(struct xd_req_list *l, unsigned more)
{
    if (l->n + more <= l->cap)
        return 0;
    unsigned want = l->cap ? l->cap : 16;
    while (want < l->n + more)
        want *= 2;
    struct xd_req **at = realloc(l->at, want * sizeof(*at));
    if (!at)
        return -ENOMEM;
    l->at = at;
    l->cap = want;
    return 0;
}

void xd_req_list_add(struct xd_req_list *l, struct xd_req *r)
{
    if (l->n < l->cap)
        l->at[l->n++] = r;
}

void xd_req_list_remove(struct xd_req_list *l, const struct xd_req *r)
{
    for (unsigned i = 0; i < l->n; i++)
        if (l->at[i] == r) {
            l->at[i] = l->at[--l->n];
            return;
        }
}

unsigned xd_req_list_take(struct xd_req_list *l, struct xd_req **out, unsigned max)
{
    unsigned n = l->n < max ? l->n : max;
    if (!n)
        return 0;
    memcpy(out, l->at, n * sizeof(*out));
    l->n -= n;
    memmove(l->at, l->at + n, l->n * sizeof(*l->at));
    return n;
}

void xd_req_list_free(struct xd_req_list *l)
{
    free(l->at);
    *l = (struct xd_req_list){0};
}

/* --- solo ------------------------------------------------------------------- */

#define TURNS_ASK_PAUSE_NS 100000 /* a newcomer's look at the solo writer's count */

/* Does another descriptor hold a lock on byte at? */
static bool turns_byte_held(int fd, off_t at)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    return !fcntl(fd, F_OFD_GETLK, &fl) && fl.l_type != F_UNLCK;
}

int xd_turns_presence(const struct xd_turns_solo *s)
{
    return xd_turns_fcntl(s->fd, F_OFD_SETLKW, F_RDLCK, s->presence_byte, 1);
}

/* An upgrade of a presence held (at open): two openers at once each see
 * the other. */
static bool turns_upgrade(const struct xd_turns_solo *s)
{
    return !xd_turns_fcntl(s->fd, F_OFD_SETLK, F_WRLCK, s->presence_byte, 1);
}

bool xd_turns_last(const struct xd_turns_solo *s)
{
    /* presence let go first: two closing at once would each see the
     * other's and neither be last; this way the later one is */
    xd_turns_fcntl(s->fd, F_OFD_SETLK, F_UNLCK, s->presence_byte, 1);
    return turns_upgrade(s);
}

/* A newcomer: the solo writer (if any) is asked to take turns, and its
 * writes that took none are waited for. */
static int turns_ask(struct xd_turns_solo *s)
{
    __atomic_store_n(s->wanted, 1, __ATOMIC_SEQ_CST);
    int rc = xd_turns_drain_thread(); /* the solo writer may be a device of this thread */
    while (!rc && __atomic_load_n(s->solo_out, __ATOMIC_SEQ_CST) &&
           turns_byte_held(s->fd, s->solo_byte)) {
        struct timespec pause = {0, TURNS_ASK_PAUSE_NS};
        nanosleep(&pause, NULL);
    }
    return rc == -EDEADLK ? 0 : rc;
}

/* Alone (the presence upgraded): what the words say was left by writers
 * gone (a kill -9, or closed since), so they reset; solo; the presence
 * back to shared, so a newcomer's shared lock waits for nothing more. */
static int turns_go_solo(struct xd_turns_solo *s)
{
    __atomic_store_n(s->wanted, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(s->solo_out, 0, __ATOMIC_SEQ_CST);
    /* atomic: the cache's other threads load it (cache_absorb) */
    __atomic_store_n(&s->on, !xd_turns_fcntl(s->fd, F_OFD_SETLK, F_WRLCK, s->solo_byte, 1),
                     __ATOMIC_RELEASE);
    return xd_turns_fcntl(s->fd, F_OFD_SETLK, F_RDLCK, s->presence_byte, 1);
}

int xd_turns_solo_join(struct xd_turns_solo *s)
{
    s->on = false;
    s->turns = 0;
    if (!s->wanted) /* cannot ask a solo writer (its words are not ours) to take turns */
        return turns_byte_held(s->fd, s->solo_byte) ? -EBUSY : 0;
    return turns_upgrade(s) ? turns_go_solo(s) : turns_ask(s);
}

bool xd_turns_solo_regain(struct xd_turns_solo *s)
{
    if (!s->wanted || !turns_upgrade(s))
        return false;
    turns_go_solo(s);
    return s->on;
}

bool xd_turns_solo_enter(struct xd_turns_solo *s, struct xd_layer *layer,
                         int (*drain)(struct xd_layer *layer))
{
    if (!s->on) { /* alone again? (tried now and then: a failed try is a system call) */
        if (++s->turns < XD_TURNS_REGAIN_EVERY)
            return false;
        s->turns = 0;
        if (!xd_turns_solo_regain(s))
            return false;
    }
    __atomic_add_fetch(s->solo_out, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(s->wanted, __ATOMIC_SEQ_CST))
        return true;
    /* asked: the writes out land first, this one still counted so the
     * newcomer waits meanwhile; where they cannot (inside a drain) this
     * write goes solo and the next one tries again */
    if (drain(layer))
        return true;
    __atomic_sub_fetch(s->solo_out, 1, __ATOMIC_SEQ_CST);
    s->on = false;
    xd_turns_fcntl(s->fd, F_OFD_SETLK, F_UNLCK, s->solo_byte, 1);
    return false;
}

void xd_turns_solo_done(struct xd_turns_solo *s)
{
    __atomic_sub_fetch(s->solo_out, 1, __ATOMIC_SEQ_CST);
}
