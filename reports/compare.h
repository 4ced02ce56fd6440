/* compare.h - `xdreport compare`: did NEW get slower than BASE?
 *
 *   xdreport compare [--threshold PCT] [--alpha A] [--min-runs N]
 *                    [--junit FILE] [--metrics FILE] [--ignore-option KEY]...
 *                    [--paired] [--decided FILE] [--verdicts FILE] BASE NEW
 *
 * BASE and NEW are each a directory of fio JSON results (its *.json files,
 * or every regular, non-hidden file when none ends in .json; not
 * subdirectories), a list file (one path per line, relative to the list's
 * directory; blank lines and # comments skipped), or a single results file.
 * Each file is one run; of a --status-interval stream only the last
 * (complete) document counts; xdevice stats files load as no run.
 *
 * Runs are grouped by configuration and workload (pairing.h): the
 * configuration is the file name less ".json" and a repetition tag, the
 * workload the fio job name. Runs of one group on one side must share their
 * options (all but paths and bookkeeping, engine paths cut to the engine's
 * name, less --ignore-option keys), else the comparison is refused (exit
 * 2, one line naming both files and the first option that differs); a
 * group whose BASE and NEW options differ is listed, not compared
 * (inconclusive). Jobs that share a name within one document are summed
 * (IOPS, bandwidth) and weighted by I/O count (the mean latency); their
 * p50 and p99 are read from their json+ latency bins pooled, as fio's
 * group_reporting computes them (compare_pooled.c). Without bins a mean
 * of percentiles is no percentile: such a row is shown but never decided
 * (inconclusive, or informational where --paired does not gate it), its
 * reason naming json+ and group_reporting.
 *
 * For each workload and data direction with I/O, and for each metric (iops,
 * bw, clat_mean, clat_p50, clat_p99), NEW is compared with BASE:
 *   ratio      median(NEW) / median(BASE)
 *   p          two-sided Mann-Whitney U test (exact up to 20 runs a side)
 *   CI         (1 - alpha) interval for NEW/BASE from the order statistics
 *              of all pairwise ratios (Hodges-Lehmann; no resampling)
 *   verdict    regression   p < alpha and the whole CI worse than the threshold
 *              improvement  p < alpha and the whole CI better than the threshold
 *              same         otherwise, when the CI lies within +-threshold
 *              inconclusive otherwise: fewer than --min-runs runs, too few
 *                           for p < alpha to be possible at all (2 /
 *                           C(m+n, m) >= alpha; warned on stdout and
 *                           stderr with the runs a side needed), a wide CI,
 *                           options that differ between BASE and NEW
 * IOPS and bandwidth are better higher, latencies lower.
 *
 * --paired (scripts/regress.sh): run K of BASE pairs with run K of NEW by
 * the number in the file's repetition tag (xr_pair_round; a run without
 * one, or two of one round, is bad input), and each row is judged on the
 * per-round log ratios instead (compare_paired.c): ratio and CI are their
 * median and the sign test's interval for it (each end a one-sided bound
 * at alpha / R, R the gated rows), the base and new medians over the same
 * paired rounds, and every row names how many; regression / improvement
 * when the CI lies beyond the threshold, same when within it. Only the
 * median latency is gated; iops, bw, mean and p99 latency are informational
 * (shown, never judged, no effect on the exit status).
 * --verdicts FILE writes every row's verdict and interval; --decided FILE
 * reads such a file from an earlier look and keeps the rows it decided
 * (compare_decided.c), so a look judges only what is still undecided.
 *
 * Prints a table on stdout; --junit writes JUnit XML (one testcase per
 * workload and metric, a failure per regression, skipped when
 * inconclusive); --metrics writes OpenMetrics text.
 *
 * Returns the exit status: 0 every row decided and none a regression, 1 at
 * least one regression, 3 no regression but at least one row inconclusive
 * (named on the INCONCLUSIVE: line; never reported as "no regression"),
 * 2 bad input or usage (one line on stderr naming the file and problem).
 * argv[0] is "compare".
 */
#ifndef XR_COMPARE_H
#define XR_COMPARE_H

int xr_compare_main(int argc, char **argv);

#endif
