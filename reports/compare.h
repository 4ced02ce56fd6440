/* compare.h - `xdreport compare`: did NEW get slower than BASE?
 *
 *   xdreport compare [--threshold PCT] [--alpha A] [--min-runs N]
 *                    [--junit FILE] [--metrics FILE] BASE NEW
 *
 * BASE and NEW are each a directory of fio JSON results (every regular,
 * non-hidden file in it, in name order) or a list file (one path per line,
 * relative to the list's directory; blank lines and # comments skipped), or
 * a single results file. Each file is one run; of a --status-interval stream
 * only the last (complete) document counts. A job name is a workload; jobs
 * that share a name within one document are summed (IOPS, bandwidth) and
 * weighted by I/O count (latencies; percentiles so combined are an
 * approximation, use group_reporting for exact ones).
 *
 * For each workload and data direction with I/O, and for each metric (iops,
 * bw, clat_mean, clat_p50, clat_p99), NEW is compared with BASE:
 *   ratio      median(NEW) / median(BASE)
 *   p          two-sided Mann-Whitney U test (exact up to 20 runs a side)
 *   CI         (1 - alpha) interval for NEW/BASE from the order statistics
 *              of all pairwise ratios (Hodges-Lehmann; no resampling)
 *   verdict    regression   p < alpha and the ratio worse than the threshold
 *              improvement  p < alpha and the ratio better than the threshold
 *              same         otherwise, when the CI lies within +-threshold
 *              inconclusive otherwise (fewer than --min-runs runs, wide CI)
 * IOPS and bandwidth are better higher, latencies lower.
 *
 * Prints a table on stdout; --junit writes JUnit XML (one testcase per
 * workload and metric, a failure per regression, skipped when
 * inconclusive); --metrics writes OpenMetrics text.
 *
 * Returns the exit status: 0 no regression, 1 at least one regression,
 * 2 bad input or usage (one line on stderr naming the file and problem).
 * argv[0] is "compare".
 */
#ifndef XR_COMPARE_H
#define XR_COMPARE_H

int xr_compare_main(int argc, char **argv);

#endif
