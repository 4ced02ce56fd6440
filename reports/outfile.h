/* outfile.h - how xdreport makes its output files.
 *
 * xdreport is often run as root beside benches. Each output file is made
 * new (whatever was at its name is removed, never followed or truncated),
 * with O_EXCL|O_NOFOLLOW, in a directory owned by the caller or root and
 * not writable by others unless sticky: whoever else could write there
 * could turn the next write into one through a symlink. The library does
 * the same for its own files (backends/core/fileutil.c); xdreport does not
 * link the library, so this is its own small copy.
 */
#ifndef XR_OUTFILE_H
#define XR_OUTFILE_H

#include <stdio.h>

/* A fresh file at path for writing, or NULL with errno set. */
FILE *xr_out_open(const char *path);
/* Why the last xr_out_open failed, for messages: strerror(err), or which
 * directory was refused and why. */
const char *xr_out_strerror(int err);

#endif
