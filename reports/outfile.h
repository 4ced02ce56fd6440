/* outfile.h - how xdreport makes its output files.
 *
 * xdreport is often run as root beside benches. Each output file is made
 * new (whatever was at its name is removed, never followed or truncated),
 * with O_EXCL|O_NOFOLLOW, in a directory owned by the caller or root and
 * not writable by others unless sticky: whoever else could write there
 * could turn the next write into one through a symlink. The library does
 * the same for its own files (backends/core/fileutil.c); xdreport does not
 * link the library, so this is its own small copy.
 *
 * A file the user names on the command line (compare's --junit, --metrics,
 * --verdicts) is stricter: at its name may be only nothing or a regular
 * file of the caller's or root's. A device node, a FIFO, a symlink or
 * another user's file there is refused, not replaced: as root,
 * `--metrics /dev/null` would otherwise turn /dev/null into a file.
 */
#ifndef XR_OUTFILE_H
#define XR_OUTFILE_H

#include <limits.h>
#include <stdio.h>

/* A fresh file at path for writing, or NULL with errno set. */
FILE *xr_out_open(const char *path);
/* Why the last xr_out_* call failed, for messages: strerror(err), or which
 * directory or file was refused and why. */
const char *xr_out_strerror(int err);

/* OUTDIR of report and convergence: made, with its parents, when absent.
 * Then it must be a real directory (a symlink there is refused, never
 * followed: in a shared directory anyone may plant one) of the caller's or
 * root's, not writable by others unless sticky, and so must every
 * directory above it (a symlink on the way: the caller's or root's), or
 * whoever owns one could swap OUTDIR for a link between the check and the
 * writes. 0, or -1 with errno and the reason for xr_out_strerror; *made
 * says whether this call made it. */
int xr_out_dir(const char *path, int *made);

/* A file the user named, written beside its name and moved there by
 * xr_out_commit: a reader never sees half of it, and a failed run leaves
 * what was there. */
struct xr_out {
    FILE *f;                     /* write here */
    int dirfd;
    char name[NAME_MAX + 1];     /* its name in dirfd */
    char tmp[NAME_MAX + 1];      /* the temp file beside it */
};
/* 0 with o->f open, or -1 with errno and the reason for xr_out_strerror. */
int xr_out_begin(struct xr_out *o, const char *path);
/* Flush, fsync and move the file to its name, checked again (a symlink or
 * file that appeared meanwhile is refused, never replaced). 0, or -1 with
 * errno (and the reason for xr_out_strerror); the temp file is then gone. */
int xr_out_commit(struct xr_out *o);
/* The checks of xr_out_begin, nothing written: to refuse before any work. */
int xr_out_check(const char *path);
/* 1 when a and b name the same directory entry ("f", "./f", "d/../f"). */
int xr_out_same(const char *a, const char *b);

#endif
