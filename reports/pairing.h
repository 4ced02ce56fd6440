/* pairing.h - which runs `xdreport compare` may pool and pair.
 *
 * A side (BASE or NEW) is a directory, a list file or one results file.
 * Of a directory, the *.json files count (every regular, non-hidden file
 * when none ends in .json), so a bench results directory, which also holds
 * terse output, job files, logs and the report, can be given as it is;
 * xdevice stats JSON in it loads as stats and is no run.
 *
 * A run belongs to a configuration, named by its file: the name without
 * ".json" and without a trailing repetition tag ("-r01", ".rep2", "_run3",
 * "-7"), so regular.xdevice.r2.json and regular.xdevice.r3.json are two
 * runs of "regular.xdevice" and run-03.json is a run of "run". A name that
 * is only a tag ("r1", "3") gives the unnamed configuration "". When BASE
 * and NEW each hold a single configuration, compare unnames both, so that
 * base.json pairs with new.json. Within a configuration, a fio job
 * name is a workload; runs of one (configuration, workload) are pooled only
 * when their options agree (xr_pair_options), and BASE is compared with NEW
 * only where they agree too.
 */
#ifndef XR_PAIRING_H
#define XR_PAIRING_H

#include <stddef.h>

#include "results.h"

/* "xdreport compare: MESSAGE" on stderr; returns 2 (bad input). */
int xr_cmp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The files of one side, sorted by name (malloc'd strings in a malloc'd
 * array). label is "BASE" or "NEW" for messages. Returns 0, or 2 after one
 * line on stderr. */
int xr_pair_inputs(const char *label, const char *path, char ***files, size_t *n);

/* The configuration a results file belongs to (malloc'd; see above). */
char *xr_pair_config_name(const char *file);

/* The number in the file's repetition tag (3 for run-03.json and for
 * randread-qd1-shm-r03.json), or -1 when the name has none. scripts/regress.sh
 * names the BASE and NEW runs of round K alike, so compare --paired pairs
 * them by this number. */
long xr_pair_round(const char *file);

/* The options that make a job's configuration, as sorted "key=value" lines
 * (malloc'd): every option fio printed for it except paths and bookkeeping
 * (options.h) and the keys in ignore; an external engine by its name only.
 * Two runs are the same experiment when these agree. */
char *xr_pair_options(const struct xr_job *job, char *const *ignore, size_t nignore);

/* The first option where a and b (xr_pair_options strings) differ, as
 * "bs=4k against bs=8k" or "iodepth=32 against no iodepth", into buf; the
 * key alone into key. */
void xr_pair_difference(const char *a, const char *b, char *buf, size_t len, char *key,
                        size_t keylen);

#endif
