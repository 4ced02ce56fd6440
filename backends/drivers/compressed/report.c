/* report.c - what the compressed driver reports: its stats JSON (the
 * counters, and the space figures of every container, open or closed, each
 * counted once) and the one line that explains a data error
 * (the take_error hook). Separate because it only reads what the other files
 * keep, under the device's space_lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "../../core/json.h"
#include "compressed.h"

static const char *const ctr_count_names[C_COUNT] = {
    "chunk_writes", "read_modify_writes", "zero_chunks_written", "raw_chunks_written",
    "entropy_skips", "adaptive_skips", "reclaims", "reclaimed_bytes", "stored_bytes_written",
    "logical_bytes_written", "chunks_decoded", "decoded_chunk_reuses", "read_retries",
    "corrupt_chunks", "stale_slots_recovered",
};

/* --- data errors ------------------------------------------------------------- */

/* Corruption is an I/O error to the caller, and one line (once per bad
 * chunk in a row) that the take_error hook hands to whoever reports it. */
int xd_compress_report_corrupt(struct compress_layer *c, struct ctr_file *f, uint64_t chunk,
                               const char *why)
{
    count_add(c, C_CORRUPT, 1);
    if (atomic_exchange(&f->last_bad_chunk, chunk) == chunk)
        return -EIO; /* this chunk was explained already */
    pthread_mutex_lock(&c->space_lock);
    xd_errf(c->error, sizeof(c->error), "%s: chunk %llu (bytes %llu-%llu): %s; reads of it return EIO",
            f->path, (unsigned long long)chunk, (unsigned long long)chunk * f->chunk_size,
            (unsigned long long)(chunk + 1) * f->chunk_size - 1, why);
    pthread_mutex_unlock(&c->space_lock);
    return -EIO;
}

int xd_compress_take_error(struct compress_layer *c, char *line)
{
    pthread_mutex_lock(&c->space_lock);
    int rc = c->error[0] ? 0 : -ENOENT;
    if (!rc)
        memcpy(line, c->error, sizeof(c->error));
    c->error[0] = 0;
    pthread_mutex_unlock(&c->space_lock);
    return rc;
}

/* --- stats ---------------------------------------------------------------------------- */

static void space_add(struct ctr_space *to, const struct ctr_space *sp)
{
    to->logical += sp->logical;
    to->stored += sp->stored;
    to->allocated += sp->allocated;
    to->live_logical += sp->live_logical;
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        to->chunks[a] += sp->chunks[a];
}

static bool open_before(const struct ctr_file *list, const struct ctr_file *f, const char *path)
{
    for (; list && list != f; list = list->next_open)
        if (!strcmp(list->path, path))
            return true;
    return false;
}

/* The space figures: each container counted once, by path, from a live scan
 * when it is open now, else as it was at its last close. (Before, only
 * closed containers counted, so a program reading stats with its files open
 * saw logical_bytes 0 and ratio 0.) */
static void space_now(struct compress_layer *c, struct ctr_space *sp)
{
    char err[XD_ERRLEN];
    memset(sp, 0, sizeof(*sp));
    pthread_mutex_lock(&c->space_lock);
    for (const struct closed_file *cf = c->closed; cf; cf = cf->next)
        if (!open_before(c->open, NULL, cf->path))
            space_add(sp, &cf->space);
    for (struct ctr_file *f = c->open; f; f = f->next_open) {
        struct ctr_space one;
        if (!open_before(c->open, f, f->path) && !xd_compress_container_scan(c, f, &one, SCAN_LIVE, err, sizeof(err)))
            space_add(sp, &one);
    }
    pthread_mutex_unlock(&c->space_lock);
}

/* The decoded-chunk cache's figures (all 0 when it is off). */
static void decoded_cache_json(struct compress_layer *c, struct xd_json *j)
{
    struct xd_dcache_stats st;
    xd_dcache_stats(c->dcache, &st);
    xd_json_uint(j, "decoded_cache_size", st.capacity);
    xd_json_uint(j, "decoded_cache_bytes", st.bytes);
    xd_json_uint(j, "decoded_cache_chunks", st.chunks);
    xd_json_uint(j, "decoded_cache_hits", st.hits);
    xd_json_uint(j, "decoded_cache_misses", st.misses);
    xd_json_uint(j, "decoded_cache_evictions", st.evictions);
    xd_json_uint(j, "decoded_cache_declined", st.declined); /* misses not admitted */
}

void xd_compress_stats_json(struct compress_layer *c, struct xd_json *j)
{
    struct ctr_space sp;
    space_now(c, &sp);
    xd_json_object_begin(j, "compress");
    xd_json_string(j, "codec", xd_algo_name(c->algo));
    xd_json_int(j, "level", atomic_load(&c->level));
    xd_json_uint(j, "logical_bytes", sp.logical);
    xd_json_uint(j, "stored_bytes", sp.stored);
    xd_json_uint(j, "allocated_bytes", sp.allocated);
    xd_json_uint(j, "live_logical_bytes", sp.live_logical);
    /* logical / stored over the chunks that hold data, as the report draws it */
    xd_json_double(j, "ratio", sp.stored ? (double)sp.live_logical / (double)sp.stored : 0);
    xd_json_object_begin(j, "live_chunks");
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        xd_json_uint(j, xd_algo_name(a), sp.chunks[a]);
    xd_json_object_end(j);
    xd_json_object_begin(j, "chunks_written");
    for (int a = 0; a < XD_ALGO_COUNT; a++)
        xd_json_uint(j, xd_algo_name(a), atomic_load(&c->chunks_by_algo[a]));
    xd_json_object_end(j);
    for (int k = 0; k < C_COUNT; k++)
        xd_json_uint(j, ctr_count_names[k], atomic_load(&c->count[k]));
    decoded_cache_json(c, j);
    xd_json_object_end(j);
}
