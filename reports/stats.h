/* stats.h - the statistics behind `xdreport compare`: medians, the
 * Mann-Whitney U test and a distribution-free confidence interval for the
 * ratio of two samples. Nothing here knows about fio.
 */
#ifndef XR_STATS_H
#define XR_STATS_H

#include <stddef.h>

/* Both samples at most this large: the exact null distribution; above it,
 * the normal approximation. */
#define XR_MWU_EXACT_MAX 20

/* Median of v[0..n-1] (mean of the two middle values for even n); v is not
 * modified. NAN when n is 0 or memory runs out. */
double xr_median(const double *v, size_t n);

struct xr_mwu {
    double u;   /* U of x: pairs with x_i > y_j, plus half the pairs with x_i == y_j */
    double p;   /* two-sided p-value */
    int exact;  /* 1: exact null distribution, 0: normal approximation */
};

/* Two-sided Mann-Whitney U test of x (m values) against y (n values).
 * xr_mwu picks xr_mwu_exact when m and n are both <= XR_MWU_EXACT_MAX and
 * xr_mwu_normal otherwise.
 *
 * xr_mwu_exact: the permutation distribution of the rank sum of x, counted
 * by dynamic programming over subsets; with ties it uses midranks, so the
 * p-value is exact conditional on the ties. p = min(1, 2 * smaller tail).
 * Without ties it equals scipy.stats.mannwhitneyu(method="exact").
 *
 * xr_mwu_normal: z = (max(U, mn - U) - mn/2 - 1/2) / sigma, sigma with the
 * tie correction; p = min(1, 2 * (1 - Phi(z))), as
 * scipy.stats.mannwhitneyu(method="asymptotic", use_continuity=True).
 * When every value is equal, p = 1.
 *
 * Return 0, -EINVAL when a sample is empty or holds a NaN, -ENOMEM. */
int xr_mwu(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out);
int xr_mwu_exact(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out);
int xr_mwu_normal(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out);

/* Number of the m*n pairwise differences to cut from each end for a
 * two-sided (1 - alpha) distribution-free interval: the largest k with
 * P(U <= k - 1) <= alpha / 2 under the null (exact for m, n <= 
 * XR_MWU_EXACT_MAX, normal approximation with continuity correction above).
 * 0 when no k qualifies (too few values for that alpha); -EINVAL for m or
 * n of 0 or alpha outside (0, 1); -ENOMEM. */
long xr_mwu_ci_rank(size_t m, size_t n, double alpha);

/* Confidence interval for the ratio new/base (Hodges-Lehmann style, the
 * shift interval of log(values)): the k-th smallest and k-th largest of the
 * m*n ratios new_j / base_i, with k = xr_mwu_ci_rank(m, n, alpha). Its
 * coverage is at least 1 - alpha when the two samples differ by a factor.
 * Gives lo = 0 and hi = INFINITY when k is 0.
 *
 * Return 0; -EDOM when a base value is <= 0 or a new value < 0 (a ratio is
 * then meaningless) and lo = hi = NAN; -EINVAL for empty samples, NaNs or
 * a bad alpha; -ENOMEM. */
int xr_ratio_ci(const double *base, size_t m, const double *new_, size_t n, double alpha,
                double *lo, double *hi);

/* The smallest two-sided p-value the Mann-Whitney U test can give with m
 * and n values and no ties: 2 / C(m + n, m), at most 1 (complete
 * separation). When it is not below alpha, no data can show a difference:
 * 3 runs a side give 0.1, 4 give 0.029. NAN for m or n of 0. */
double xr_mwu_min_p(size_t m, size_t n);

/* Standard normal: upper tail 1 - Phi(z), and the quantile z with
 * Phi(z) = p for 0 < p < 1 (NAN otherwise). */
double xr_norm_sf(double z);
double xr_norm_quantile(double p);

/* --- ratios from repetitions (the bench's recommendation, verdict.c) ---
 * On the log scale, where a factor is a shift: a ratio's interval is
 * exp(mean of log ratios +- t * standard error). */

/* Student's t: the quantile q with P(T <= q) = p, for df > 0 degrees of
 * freedom (not necessarily whole: Welch's); NAN for p outside (0, 1) or
 * df <= 0. Accurate to about 1e-6 (numerical integration of the density). */
double xr_t_quantile(double p, double df);

struct xr_ratio_est {
    double ratio;   /* geometric mean ratio */
    double lo, hi;  /* the (level) interval; lo = 0, hi = INFINITY when it cannot be had */
    size_t n;       /* pairs or values used */
};

/* Paired: x[i] and y[i] ran as a pair (same repetition, back to back). The
 * interval of the ratio x/y from the n log ratios with t(n - 1). Return 0;
 * -EINVAL for n < 2, NaNs or level outside (0, 1); -EDOM when a value is
 * <= 0 (a ratio is then meaningless). */
int xr_paired_ratio_ci(const double *x, const double *y, size_t n, double level,
                       struct xr_ratio_est *out);

/* Unpaired: the ratio of the geometric means of a (na values) and b (nb),
 * with Welch's t interval on the logs. Return codes as above; both
 * samples need 2 values or more. */
int xr_welch_ratio_ci(const double *a, size_t na, const double *b, size_t nb, double level,
                      struct xr_ratio_est *out);

/* --- paired rounds (`xdreport compare --paired`) ---
 * The median of the per-round log ratios and the sign test's interval for
 * it: distribution-free (no symmetry assumed) and as robust as an interval
 * gets. On a shared VM a round now and then finds one side's CPU a third
 * slower for a second or two (someone else's load on it): a fifth of the
 * rounds of one A/A run, all but one of them against NEW by chance. Such
 * rounds move a t interval by their whole size and a Wilcoxon / Hodges-
 * Lehmann one by their Walsh averages; the sign interval's ends move by
 * one order statistic each. */

/* The number k of order statistics to cut from each end so that each end
 * of [d_(k), d_(n+1-k)] is a one-sided bound for the median at level a:
 * the largest k with P(Binomial(n, 1/2) <= k - 1) <= a. 0 when none
 * qualifies (fewer than log2(1/a) pairs); -EINVAL for n of 0 or a outside
 * (0, 0.5). */
long xr_sign_ci_rank(size_t n, double a);

/* Paired: x[i] and y[i] ran in one round. Of the n log ratios log(x/y),
 * the median as ratio (exp of it), and lo/hi the order statistics
 * xr_sign_ci_rank(n, a) cuts: each end a one-sided bound at level a,
 * together a 1 - 2a interval; lo = 0 and hi = INFINITY when k is 0.
 * Return 0; -EINVAL for n of 0, NaNs or a bad a; -EDOM when a value is
 * <= 0; -ENOMEM. */
int xr_paired_median_ratio(const double *x, const double *y, size_t n, double a,
                           struct xr_ratio_est *out);

/* 1 when the interval holds 1.0: the two sides are within noise. */
static inline int xr_ratio_within_noise(const struct xr_ratio_est *e)
{
    return e->lo <= 1.0 && 1.0 <= e->hi;
}

#endif
