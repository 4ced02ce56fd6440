/* config_watch.c - notice when an INI file is rewritten, without polling
 * its contents: inotify on the file's directory, filtered to its name. The
 * directory, not the file, because a safe rewrite (xd_config_save, most
 * editors) renames a new inode over the name, and a watch on the old inode
 * would never hear of it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "xd_internal.h"

struct xd_config_watch {
    int fd;
    char *name; /* the file's last path component */
};

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | \
                    IN_MOVE_SELF)

int xd_config_watch_open(struct xd_config_watch **out, const char *path, char *err, size_t errlen)
{
    if (!path[0] || path[strlen(path) - 1] == '/') { /* it watched the directory's "" */
        xd_errf(err, errlen, "config watch: \"%s\" names no file; allowed: the path of an INI file",
                path);
        return -EINVAL;
    }
    struct xd_config_watch *w = calloc(1, sizeof(*w));
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int rc = 0;
    if (w)
        w->fd = -1;
    if (!w || !dir || !(w->name = strdup(slash ? slash + 1 : path))) {
        rc = -ENOMEM;
        goto fail;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0 || inotify_add_watch(w->fd, dir, WATCH_MASK) < 0) {
        rc = -errno;
        xd_errf(err, errlen, "%s: cannot watch its directory %s for rewrites: %s%s", path, dir,
                strerror(-rc), rc == -EMFILE || rc == -ENOSPC ? " (raise fs.inotify.max_user_instances or max_user_watches)" : "");
        goto fail;
    }
    free(dir);
    *out = w;
    return 0;
fail:
    if (w && w->fd >= 0)
        close(w->fd);
    if (w)
        free(w->name);
    free(w);
    free(dir);
    return rc;
}

/* Drain every pending event; the file's last word wins: a rewrite after a
 * removal is a change, a removal after a rewrite is a removal. */
int xd_config_watch_poll(struct xd_config_watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int state = XD_WATCH_NONE;
    if (!w)
        return XD_WATCH_NONE;
    if (w->fd < 0) /* over: said again, so a caller polling on never mistakes it for quiet */
        return XD_WATCH_GONE;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                state = XD_WATCH_GONE;
                continue;
            }
            if (!ev->len || strcmp(ev->name, w->name))
                continue;
            if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
                state = XD_WATCH_CHANGED;
            else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
                state = XD_WATCH_REMOVED;
        }
    }
    if (state == XD_WATCH_GONE) { /* the directory went: nothing more will come */
        close(w->fd);
        w->fd = -1;
    }
    return state;
}

int xd_config_watch_fd(const struct xd_config_watch *w) { return w ? w->fd : -1; }

void xd_config_watch_close(struct xd_config_watch *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w->name);
    free(w);
}
