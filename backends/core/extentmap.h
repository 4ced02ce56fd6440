/* extentmap.h - the hybrid type's persistent extent map: which extents of a
 * file have a valid copy in the hot tier. Format in docs/EXTENTMAP.md.
 *
 * The map is advisory in one direction only: an extent it calls cold is
 * always read from the cold tier, which is safe whenever the cold tier holds
 * the data (write-through, or write-back after a flush). So every entry that
 * cannot be trusted (torn, zero, checksum mismatch, another hot tier) reads
 * back as cold, and nothing the map says can make a read return wrong data.
 */
#ifndef XD_EXTENTMAP_H
#define XD_EXTENTMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define XD_EXTMAP_HEADER 4096u /* entries start here */
#define XD_EXTMAP_ENTRY  16u

struct xd_extmap {
    int fd;
    uint64_t tag;          /* the hot tier copy this map describes */
    uint64_t extent_size;
};

/* Open (or make) the map at path: in its checked directory, never through
 * a symlink, only the caller's own single-link file (fileutil.h), with
 * file_permissions. */
struct xd_config;
int xd_extmap_open(struct xd_extmap *m, const char *path, const struct xd_config *cfg, char *err,
                   size_t errlen);
/* An OFD lock (F_RDLCK, F_WRLCK, F_UNLCK) on one byte of the map file,
 * waiting for it or not (-EAGAIN); the processes sharing a hybrid file
 * coordinate with them (layers/tier.h). The kernel drops them when the
 * descriptor closes, kill -9 included. */
int xd_extmap_lock(const struct xd_extmap *m, unsigned byte, short type, bool wait);
/* Read the header: 0 when it is valid for extent_size and cold_id, with
 * *tag set; -ENOENT when the map is new, torn or for another file. */
int xd_extmap_load_header(struct xd_extmap *m, uint64_t extent_size, uint64_t cold_id,
                          uint64_t *tag);
/* The same for a header of any cold file: its cold id in *cold_id (the
 * caller judges it). */
int xd_extmap_load_header_of_any(struct xd_extmap *m, uint64_t extent_size, uint64_t *cold_id,
                                 uint64_t *tag);
/* The header names cold_id from now on (its crc kept): 0, or -errno. */
int xd_extmap_set_cold_id(const struct xd_extmap *m, uint64_t cold_id);
/* The tag of a map whose header checks out, for any extent size and file
 * (to read or move its stamp): 0, or -ENOENT. */
int xd_extmap_load_tag(struct xd_extmap *m);
/* Start over: no entries, a header naming tag, extent_size and cold_id, fsynced. */
int xd_extmap_reset(struct xd_extmap *m, uint64_t extent_size, uint64_t cold_id, uint64_t tag);
/* What the map knew of the cold file when the last process to have it open
 * closed it (docs/EXTENTMAP.md, "The cold file's stamp"): its identity,
 * size and times, and whether every hot copy then matched it. While the
 * file is open, whether a hot copy may hold an acknowledged write the file
 * lacks, which is what a kill leaves behind. */
enum {
    /* open, or a process died with it open: a hot copy may hold writes
     * the file lacks (a writable open wrote back, a copy was dirty when
     * it was opened, or a build from before OPEN_THROUGH wrote it) */
    XD_EXTMAP_OPEN = 0,
    XD_EXTMAP_CLEAN = 1, /* closed; every hot copy equals the file's bytes */
    XD_EXTMAP_DIRTY = 2, /* closed; some hot copies hold writes the file lacks */
    /* open, or a process died with it open, and every write acknowledged
     * is in the file: every writable open wrote through, no copy was dirty
     * at the first open (older builds read it as no stamp: OPEN's case) */
    XD_EXTMAP_OPEN_THROUGH = 3,
};
struct xd_extmap_stamp {
    uint32_t state;
    uint64_t dev, ino, size, mtime_ns, ctime_ns;
};
/* The stamp of the map's tag: -ENOENT when there is none (a map from before
 * stamps, or one left XD_EXTMAP_OPEN: a process has or had the file open)
 * or it is torn. An XD_EXTMAP_OPEN_THROUGH one is returned: its state is
 * what matters, not the times. */
int xd_extmap_load_stamp(const struct xd_extmap *m, struct xd_extmap_stamp *s);
/* Write it, with the map's tag (no fdatasync: extentmap.c says why). */
int xd_extmap_save_stamp(const struct xd_extmap *m, const struct xd_extmap_stamp *s);
/* Whether extent i is hot according to the map (false for anything that does
 * not check out). Reads n entries from first into hot[]. */
int xd_extmap_read(const struct xd_extmap *m, uint64_t first, uint64_t n, bool *hot);
/* Write entry i (not synced). */
int xd_extmap_write(const struct xd_extmap *m, uint64_t i, bool hot);
/* Make the entries written so far durable. */
int xd_extmap_sync(const struct xd_extmap *m);
void xd_extmap_close(struct xd_extmap *m);

/* The 16 bytes of entry i (exposed for the unit test). */
void xd_extmap_encode(uint64_t tag, uint64_t i, bool hot, unsigned char out[XD_EXTMAP_ENTRY]);
/* 1 hot, 0 cold, -1 invalid (reads as cold). */
int xd_extmap_decode(uint64_t tag, uint64_t i, const unsigned char in[XD_EXTMAP_ENTRY]);

#endif
