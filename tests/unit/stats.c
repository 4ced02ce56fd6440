/* Unit test: reports/stats.c (median, Mann-Whitney U exact and normal, the
 * pairwise-ratio confidence interval) against known values.
 *
 * Where the numbers come from: the exact p-values were counted by brute
 * force in Python, enumerating every way to split the pooled values (with
 * fractions.Fraction midranks) and doubling the smaller tail; case A is also
 * the example in scipy.stats.mannwhitneyu's documentation (U = 17,
 * p = 0.1111). The normal p-values are scipy's asymptotic formula
 * (continuity and tie correction) evaluated in Python with math.erfc. The
 * interval ranks were counted with the textbook recurrence
 * f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u) and agree with printed tables
 * of critical U (two-sided 0.05: 2 for 5/5, 23 for 10/10, 127 for 20/20;
 * 0.01: 16 for 10/10, 105 for 20/20; k is the critical value + 1).
 *
 * The unit-test rule links only libxdevice, so the module is compiled in.
 */
#include <errno.h>
#include <math.h>

#include "check.h"
#include "../../reports/stats.c"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int close_to(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static void check_median(void)
{
    double odd[] = {5, 1, 4, 2, 3}, even[] = {10, 1, 7, 3}, one[] = {42};
    CHECK(xr_median(odd, N(odd)) == 3);
    CHECK(xr_median(even, N(even)) == 5);
    CHECK(xr_median(one, 1) == 42);
    CHECK(isnan(xr_median(odd, 0)));
    CHECK(odd[0] == 5 && odd[1] == 1); /* input left alone */
}

static void check_exact(const char *name, const double *x, size_t m, const double *y, size_t n,
                        double u, double p)
{
    struct xr_mwu r;
    int rc = xr_mwu_exact(x, m, y, n, &r);
    CHECK_MSG(rc == 0, "%s: rc %d", name, rc);
    CHECK_MSG(r.u == u, "%s: U %g, want %g", name, r.u, u);
    CHECK_MSG(close_to(r.p, p, 1e-12), "%s: p %.17g, want %.17g", name, r.p, p);
    CHECK_MSG(r.exact == 1, "%s: not exact", name);
}

static void check_exact_values(void)
{
    double ax[] = {19, 22, 16, 29, 24}, ay[] = {20, 11, 17, 12};
    check_exact("A (scipy docs)", ax, N(ax), ay, N(ay), 17, 14.0 / 126);
    double bx[] = {1, 2, 3, 4, 5}, by[] = {6, 7, 8, 9, 10};
    check_exact("B separated", bx, N(bx), by, N(by), 0, 2.0 / 252);
    check_exact("B reversed", by, N(by), bx, N(bx), 25, 2.0 / 252);
    double cx[] = {1, 2, 2, 3, 5}, cy[] = {2, 3, 4, 4, 6};
    check_exact("C ties", cx, N(cx), cy, N(cy), 6.5, 56.0 / 252);
    double dx[] = {10, 10, 10}, dy[] = {10, 10, 10};
    check_exact("D all equal", dx, N(dx), dy, N(dy), 4.5, 1.0);
    double ex[] = {3.1, 2.2, 4.5, 1.0, 5.5, 6.1}, ey[] = {2.0, 7.2, 8.8, 9.1, 3.3, 10.4, 11.0};
    check_exact("E", ex, N(ex), ey, N(ey), 8, 126.0 / 1716);

    /* xr_mwu picks the exact test up to 20 a side */
    struct xr_mwu r;
    CHECK(xr_mwu(ax, N(ax), ay, N(ay), &r) == 0 && r.exact == 1 && r.u == 17);
}

static void check_normal_values(void)
{
    /* F: 25 and 30 values without ties */
    double fx[25], fy[30];
    for (int i = 0; i < 25; i++)
        fx[i] = (i * 37 % 41) + 0.5;
    for (int i = 0; i < 30; i++)
        fy[i] = (i * 53 % 47) + 3.25;
    struct xr_mwu r;
    CHECK(xr_mwu(fx, 25, fy, 30, &r) == 0);
    CHECK_MSG(r.exact == 0, "25 and 30 values: want the normal approximation");
    CHECK_MSG(r.u == 331, "F: U %g", r.u);
    CHECK_MSG(close_to(r.p, 0.46216642767809674, 1e-9), "F: p %.17g", r.p);

    /* G: 24 and 24 values with many ties */
    double g1[] = {1, 2, 2, 3, 5, 5, 5, 8}, g2[] = {2, 3, 4, 4, 6, 6, 9, 9};
    double gx[24], gy[24];
    for (int i = 0; i < 24; i++) {
        gx[i] = g1[i % 8];
        gy[i] = g2[i % 8];
    }
    CHECK(xr_mwu(gx, 24, gy, 24, &r) == 0 && r.exact == 0);
    CHECK_MSG(r.u == 184.5, "G: U %g", r.u);
    CHECK_MSG(close_to(r.p, 0.03182935804164058, 1e-9), "G: p %.17g", r.p);

    /* H: case A by the normal formula */
    double ax[] = {19, 22, 16, 29, 24}, ay[] = {20, 11, 17, 12};
    CHECK(xr_mwu_normal(ax, 5, ay, 4, &r) == 0);
    CHECK_MSG(close_to(r.p, 0.11134688653314048, 1e-9), "H: p %.17g", r.p);

    double same[] = {3, 3, 3};
    CHECK(xr_mwu_normal(same, 3, same, 3, &r) == 0 && r.p == 1);
}

/* For 20 a side without ties both methods must nearly agree. */
static void check_exact_vs_normal(void)
{
    double x[20], y[20];
    for (int i = 0; i < 20; i++) {
        x[i] = 100 + (i * 7 % 20);
        y[i] = 104.5 + (i * 11 % 20);
    }
    struct xr_mwu e, a;
    CHECK(xr_mwu_exact(x, 20, y, 20, &e) == 0 && xr_mwu_normal(x, 20, y, 20, &a) == 0);
    CHECK(e.u == a.u);
    CHECK_MSG(fabs(e.p - a.p) < 0.01, "exact %.5f vs normal %.5f", e.p, a.p);
    CHECK(e.p < 0.5 && e.p > 0.001);
}

static void check_ci_rank(void)
{
    static const struct { size_t m, n; double alpha; long k; } t[] = {
        {5, 5, 0.05, 3},    {10, 10, 0.05, 24}, {20, 20, 0.05, 128}, {3, 3, 0.05, 0},
        {4, 4, 0.05, 1},    {5, 7, 0.05, 6},    {8, 6, 0.05, 9},     {5, 5, 0.01, 1},
        {10, 10, 0.01, 17}, {20, 20, 0.01, 106}, {5, 7, 0.01, 2},    {8, 6, 0.01, 5},
    };
    for (size_t i = 0; i < N(t); i++) {
        long k = xr_mwu_ci_rank(t[i].m, t[i].n, t[i].alpha);
        CHECK_MSG(k == t[i].k, "ci rank %zu/%zu at %g: %ld, want %ld", t[i].m, t[i].n,
                  t[i].alpha, k, t[i].k);
    }
    /* normal approximation above 20 a side: close to the exact 20/20 value scaled up */
    long k = xr_mwu_ci_rank(21, 21, 0.05);
    CHECK_MSG(k > 128 && k < 21 * 21 / 2, "21/21: %ld", k);
    CHECK(xr_mwu_ci_rank(0, 5, 0.05) == -EINVAL);
    CHECK(xr_mwu_ci_rank(5, 5, 0) == -EINVAL);
}

static void check_ratio_ci(void)
{
    double base[] = {100, 104, 98, 101, 97}, slow[] = {80, 83, 79, 85, 81}, lo, hi;
    CHECK(xr_ratio_ci(base, 5, slow, 5, 0.05, &lo, &hi) == 0);
    CHECK_MSG(close_to(lo, 81.0 / 104, 1e-15) && close_to(hi, 83.0 / 97, 1e-15),
              "ci [%.17g, %.17g]", lo, hi);

    double few[] = {1, 2, 3};
    CHECK(xr_ratio_ci(few, 3, few, 3, 0.05, &lo, &hi) == 0 && lo == 0 && isinf(hi));

    double zero[] = {0, 1, 2, 3, 4};
    CHECK(xr_ratio_ci(zero, 5, slow, 5, 0.05, &lo, &hi) == -EDOM && isnan(lo) && isnan(hi));
    double nan_[] = {1, NAN, 2, 3, 4};
    CHECK(xr_ratio_ci(base, 5, nan_, 5, 0.05, &lo, &hi) == -EINVAL);
}

/* The smallest p equals the exact test's p at complete separation. */
static void check_min_p(void)
{
    CHECK(close_to(xr_mwu_min_p(3, 3), 0.1, 1e-15));
    CHECK(close_to(xr_mwu_min_p(4, 4), 2.0 / 70, 1e-15));
    CHECK(close_to(xr_mwu_min_p(5, 7), 2.0 / 792, 1e-15));
    CHECK(xr_mwu_min_p(1, 1) == 1 && isnan(xr_mwu_min_p(0, 4)));
    double x[] = {1, 2, 3, 4, 5}, y[] = {6, 7, 8, 9, 10, 11, 12};
    struct xr_mwu r;
    CHECK(xr_mwu_exact(x, 5, y, 7, &r) == 0 && close_to(r.p, xr_mwu_min_p(5, 7), 1e-12));
}

static void check_normal_dist(void)
{
    CHECK(close_to(xr_norm_quantile(0.975), 1.959963984540054, 1e-9));
    CHECK(close_to(xr_norm_quantile(0.5), 0, 1e-12));
    CHECK(close_to(xr_norm_sf(1.959963984540054), 0.025, 1e-9));
    CHECK(isnan(xr_norm_quantile(1)));
}

/* Student's t quantiles: printed tables (two-sided 95%: 12.706, 4.303,
 * 3.182, 2.228 for 1, 2, 3, 10 degrees of freedom; 2.042 for 30). */
static void check_t_quantile(void)
{
    static const struct { double df, q; } t[] = {
        { 1, 12.7062 }, { 2, 4.3027 }, { 3, 3.1824 }, { 10, 2.2281 }, { 30, 2.0423 },
    };
    for (size_t i = 0; i < N(t); i++) {
        CHECK_MSG(close_to(xr_t_quantile(0.975, t[i].df), t[i].q, 2e-4), "t(0.975, %g) = %g",
                  t[i].df, xr_t_quantile(0.975, t[i].df));
        CHECK(close_to(xr_t_quantile(0.025, t[i].df), -t[i].q, 2e-4));
    }
    double mid = xr_t_quantile(0.975, 2.5);   /* Welch's df need not be whole */
    CHECK(mid < 4.3027 && mid > 3.1824);
    CHECK(xr_t_quantile(0.5, 3) == 0);
    CHECK(isnan(xr_t_quantile(1, 3)) && isnan(xr_t_quantile(0.9, 0)));
}

/* Paired log-ratio interval: values worked out in Python (math.log/exp,
 * t(0.975, 1) = 12.706204736174705). */
static void check_paired_ratio(void)
{
    struct xr_ratio_est e;
    double x[] = { 2, 4 }, y[] = { 1, 1 };
    CHECK(xr_paired_ratio_ci(x, y, 2, 0.95, &e) == 0);
    CHECK_MSG(close_to(e.ratio, 2.82842712474619, 1e-9), "ratio %g", e.ratio);
    CHECK_MSG(close_to(e.lo, 0.034599563126201216, 1e-3), "lo %g", e.lo);
    CHECK_MSG(close_to(e.hi, 231.21679227047352, 1e-3), "hi %g", e.hi);
    CHECK(xr_ratio_within_noise(&e));                /* holds 1.0: within noise */

    double a[] = { 110, 121, 99 }, b[] = { 100, 110, 90 };  /* 1.1 in every pair */
    CHECK(xr_paired_ratio_ci(a, b, 3, 0.95, &e) == 0);
    CHECK(close_to(e.ratio, 1.1, 1e-12) && close_to(e.lo, 1.1, 1e-12) && close_to(e.hi, 1.1, 1e-12));
    CHECK(!xr_ratio_within_noise(&e));

    double zero[] = { 0, 1 };
    CHECK(xr_paired_ratio_ci(zero, y, 2, 0.95, &e) == -EDOM);
    CHECK(xr_paired_ratio_ci(x, y, 1, 0.95, &e) == -EINVAL);
}

static void check_welch_ratio(void)
{
    struct xr_ratio_est e;
    double a[] = { 100, 110, 120 }, b[] = { 50, 52, 48 };
    CHECK(xr_welch_ratio_ci(a, 3, b, 3, 0.95, &e) == 0);
    /* ratio of geometric means, from Python */
    CHECK_MSG(close_to(e.ratio, 2.1950939626910317, 1e-9), "ratio %g", e.ratio);
    CHECK(e.lo < e.ratio && e.ratio < e.hi && e.lo > 1);          /* clearly apart */
    CHECK(close_to(e.ratio / e.lo, e.hi / e.ratio, 1e-9));         /* symmetric in logs */
    double c[] = { 100, 101, 99 }, d[] = { 100, 99, 101 };
    CHECK(xr_welch_ratio_ci(c, 3, d, 3, 0.95, &e) == 0 && xr_ratio_within_noise(&e));
    CHECK(xr_welch_ratio_ci(c, 1, d, 3, 0.95, &e) == -EINVAL);
}

int main(void)
{
    check_t_quantile();
    check_paired_ratio();
    check_welch_ratio();
    check_median();
    check_exact_values();
    check_normal_values();
    check_exact_vs_normal();
    check_ci_rank();
    check_ratio_ci();
    check_min_p();
    check_normal_dist();
    return check_result();
}
