/* settled.h - stat a file once a later change to it cannot carry the same
 * times: what a stamp of a file (the hybrid's cold file, the tmpfs type's
 * disk file) must be taken from to tell a later change by another program.
 */
#ifndef XD_SETTLED_H
#define XD_SETTLED_H

#include <sys/stat.h>

/* fstatat(dirfd, name) (name NULL: dirfd itself; a symlink at name is not
 * followed), taken once the coarse clock has left the tick of the file's
 * ctime, waiting at most about 100 ms. 0 or -errno. */
int xd_stat_settled(int dirfd, const char *name, struct stat *st);

#endif
