/* settled.c - a file's stat taken once its times are settled (settled.h).
 * File times move in ticks of the coarse clock on kernels without
 * fine-grained timestamps: a change made in the tick of a stamp gets the
 * stamp's very times, and goes unseen. Waiting until the clock has left
 * the tick of the file's ctime (the one time nobody can set) means every
 * later change gets a later ctime. Apart because two stamps (tier_stamp.c,
 * tmpfs_stamp.c's users) need the same wait, and it is one question.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

#include "settled.h"

#define SETTLED_WAIT_NS  (1000u * 1000) /* between looks at the clock */
#define SETTLED_WAIT_MAX 100            /* looks: 100 ms, many ticks */

static uint64_t settled_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

int xd_stat_settled(int dirfd, const char *name, struct stat *st)
{
    for (int i = 0;; i++) {
        if (fstatat(dirfd, name ? name : "", st, name ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH))
            return -errno;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME_COARSE, &now);
        if (settled_ns(&now) > settled_ns(&st->st_ctim) || i == SETTLED_WAIT_MAX)
            return 0;
        struct timespec nap = {0, SETTLED_WAIT_NS};
        nanosleep(&nap, NULL);
    }
}
