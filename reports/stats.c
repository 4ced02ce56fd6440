/* stats.c - medians, the Mann-Whitney U test (exact and normal) and the
 * pairwise-ratio confidence interval that `xdreport compare` rests on.
 * Contracts are in stats.h.
 */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int has_nan(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            return 1;
    return 0;
}

double xr_median(const double *v, size_t n)
{
    if (n == 0)
        return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double m = (n % 2) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

double xr_norm_sf(double z)
{
    return 0.5 * erfc(z / M_SQRT2);
}

double xr_norm_quantile(double p)
{
    if (!(p > 0 && p < 1))
        return NAN;
    double lo = -40, hi = 40;
    for (int i = 0; i < 200 && hi - lo > 1e-14; i++) {
        double mid = (lo + hi) / 2;
        if (1 - xr_norm_sf(mid) < p)
            lo = mid;
        else
            hi = mid;
    }
    return (lo + hi) / 2;
}

/* One pooled value: which sample it came from, and twice its midrank (an
 * integer, so rank sums can index an array). */
struct pooled {
    double v;
    int from_x;
    long rank2;
};

static int cmp_pooled(const void *a, const void *b)
{
    return cmp_double(&((const struct pooled *)a)->v, &((const struct pooled *)b)->v);
}

/* Pool and rank x and y; *ties gets sum(t^3 - t) over tie groups. */
static struct pooled *pool_rank(const double *x, size_t m, const double *y, size_t n, double *ties)
{
    size_t N = m + n;
    struct pooled *p = malloc(N * sizeof *p);
    if (!p)
        return NULL;
    for (size_t i = 0; i < m; i++)
        p[i] = (struct pooled){x[i], 1, 0};
    for (size_t j = 0; j < n; j++)
        p[m + j] = (struct pooled){y[j], 0, 0};
    qsort(p, N, sizeof *p, cmp_pooled);
    *ties = 0;
    for (size_t a = 0; a < N;) {
        size_t b = a;
        while (b + 1 < N && p[b + 1].v == p[a].v)
            b++;
        for (size_t i = a; i <= b; i++)
            p[i].rank2 = (long)(a + 1) + (long)(b + 1); /* 2 * midrank */
        double t = (double)(b - a + 1);
        *ties += t * t * t - t;
        a = b + 1;
    }
    return p;
}

/* counts[s] = number of size-m subsets of the N items whose rank2 values sum
 * to s, for s = 0..*smax. Doubles hold these counts exactly up to 2^53,
 * far beyond C(40, 20). Returns NULL when out of memory. */
static double *subset_sum_counts(const long *rank2, size_t N, size_t m, long *smax)
{
    long S = 0;
    for (size_t i = 0; i < N; i++)
        S += rank2[i];
    size_t w = (size_t)S + 1;
    double *c = calloc((m + 1) * w, sizeof *c);
    if (!c)
        return NULL;
    c[0] = 1;
    for (size_t i = 0; i < N; i++) {
        long r = rank2[i];
        size_t kmax = i + 1 < m ? i + 1 : m;
        for (size_t k = kmax; k >= 1; k--)
            for (long s = S; s >= r; s--)
                c[k * w + (size_t)s] += c[(k - 1) * w + (size_t)(s - r)];
    }
    double *out = malloc(w * sizeof *out);
    if (out)
        memcpy(out, c + m * w, w * sizeof *out);
    free(c);
    *smax = S;
    return out;
}

static int check_samples(const double *x, size_t m, const double *y, size_t n)
{
    if (m == 0 || n == 0 || has_nan(x, m) || has_nan(y, n))
        return -EINVAL;
    return 0;
}

/* Rank the pooled samples and sum x's doubled ranks (integers, ties at
 * midranks). Returns the pool (caller frees) or NULL with *rc set. */
static struct pooled *mwu_rank_sum(const double *x, size_t m, const double *y, size_t n,
                                   double *ties, long *sx, int *rc)
{
    *rc = check_samples(x, m, y, n);
    if (*rc)
        return NULL;
    struct pooled *p = pool_rank(x, m, y, n, ties);
    if (!p) {
        *rc = -ENOMEM;
        return NULL;
    }
    *sx = 0;
    for (size_t i = 0; i < m + n; i++)
        if (p[i].from_x)
            *sx += p[i].rank2;
    return p;
}

int xr_mwu_exact(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out)
{
    double ties;
    long sx;
    int rc;
    size_t N = m + n;
    struct pooled *p = mwu_rank_sum(x, m, y, n, &ties, &sx, &rc);
    if (!p)
        return rc;
    long *rank2 = malloc(N * sizeof *rank2);
    double *counts = NULL;
    rc = -ENOMEM;
    if (!rank2)
        goto out;
    for (size_t i = 0; i < N; i++)
        rank2[i] = p[i].rank2;
    long smax;
    counts = subset_sum_counts(rank2, N, m, &smax);
    if (!counts)
        goto out;
    double total = 0, le = 0, ge = 0;
    for (long s = 0; s <= smax; s++) {
        total += counts[s];
        if (s <= sx)
            le += counts[s];
        if (s >= sx)
            ge += counts[s];
    }
    double tail = (le < ge ? le : ge) / total;
    out->u = sx / 2.0 - (double)m * (double)(m + 1) / 2;
    out->p = fmin(1.0, 2 * tail);
    out->exact = 1;
    rc = 0;
out:
    free(counts);
    free(rank2);
    free(p);
    return rc;
}

int xr_mwu_normal(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out)
{
    double ties;
    long sx;
    int rc;
    size_t N = m + n;
    struct pooled *p = mwu_rank_sum(x, m, y, n, &ties, &sx, &rc);
    if (!p)
        return rc;
    free(p);
    double mn = (double)m * (double)n, dN = (double)N;
    double u = sx / 2.0 - (double)m * (double)(m + 1) / 2;
    double var = mn / 12 * ((dN + 1) - ties / (dN * (dN - 1)));
    out->u = u;
    out->exact = 0;
    if (!(var > 0)) { /* every value equal */
        out->p = 1;
        return 0;
    }
    double z = (fmax(u, mn - u) - mn / 2 - 0.5) / sqrt(var);
    out->p = fmin(1.0, 2 * xr_norm_sf(z));
    return 0;
}

int xr_mwu(const double *x, size_t m, const double *y, size_t n, struct xr_mwu *out)
{
    if (m <= XR_MWU_EXACT_MAX && n <= XR_MWU_EXACT_MAX)
        return xr_mwu_exact(x, m, y, n, out);
    return xr_mwu_normal(x, m, y, n, out);
}

double xr_mwu_min_p(size_t m, size_t n)
{
    if (m == 0 || n == 0)
        return NAN;
    double ways = 1; /* C(m + n, m), built up exactly enough in doubles */
    for (size_t i = 1; i <= m; i++)
        ways = ways * (double)(n + i) / (double)i;
    return fmin(1.0, 2 / ways);
}

long xr_mwu_ci_rank(size_t m, size_t n, double alpha)
{
    if (m == 0 || n == 0 || !(alpha > 0 && alpha < 1))
        return -EINVAL;
    double mn = (double)m * (double)n;
    if (m > XR_MWU_EXACT_MAX || n > XR_MWU_EXACT_MAX) {
        double sigma = sqrt(mn * (double)(m + n + 1) / 12);
        double k = floor(mn / 2 - xr_norm_quantile(1 - alpha / 2) * sigma + 0.5);
        return k > 0 ? (long)k : 0;
    }
    size_t N = m + n;
    long *rank2 = malloc(N * sizeof *rank2);
    if (!rank2)
        return -ENOMEM;
    for (size_t i = 0; i < N; i++)
        rank2[i] = 2 * (long)(i + 1);
    long smax;
    double *counts = subset_sum_counts(rank2, N, m, &smax);
    free(rank2);
    if (!counts)
        return -ENOMEM;
    double total = 0;
    for (long s = 0; s <= smax; s++)
        total += counts[s];
    /* rank sum 2 * (U + m(m+1)/2): U = u sits at s = 2u + m(m+1) */
    long base = (long)(m * (m + 1)), k = 0;
    double cum = 0;
    for (long u = 0; u <= (long)mn; u++) {
        cum += counts[base + 2 * u] / total;
        if (cum > alpha / 2)
            break;
        k = u + 1;
    }
    free(counts);
    return k;
}

int xr_ratio_ci(const double *base, size_t m, const double *new_, size_t n, double alpha,
                double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (check_samples(base, m, new_, n) || !(alpha > 0 && alpha < 1))
        return -EINVAL;
    for (size_t i = 0; i < m; i++)
        if (!(base[i] > 0))
            return -EDOM;
    for (size_t j = 0; j < n; j++)
        if (new_[j] < 0)
            return -EDOM;
    long k = xr_mwu_ci_rank(m, n, alpha);
    if (k < 0)
        return (int)k;
    if (k == 0) {
        *lo = 0;
        *hi = INFINITY;
        return 0;
    }
    size_t mn = m * n;
    double *r = malloc(mn * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            r[i * n + j] = new_[j] / base[i];
    qsort(r, mn, sizeof *r, cmp_double);
    *lo = r[k - 1];
    *hi = r[mn - (size_t)k];
    free(r);
    return 0;
}

/* --- ratios from repetitions -------------------------------------------------- */

/* Density of Student's t with df degrees of freedom. */
static double t_density(double t, double df)
{
    double lognorm = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * M_PI);

    return exp(lognorm - (df + 1) / 2 * log1p(t * t / df));
}

/* P(0 <= T <= x) for x >= 0: Simpson's rule on the substitution t = x*u
 * over [0, 1], fine enough for the few-hundred-th digit the intervals use. */
static double t_half_mass(double x, double df)
{
    const int n = 2000;     /* even */
    double h = 1.0 / n, sum = t_density(0, df) + t_density(x, df);

    for (int i = 1; i < n; i++)
        sum += (i % 2 ? 4 : 2) * t_density(x * i * h, df);
    return sum * h / 3 * x;
}

double xr_t_quantile(double p, double df)
{
    if (!(p > 0 && p < 1) || !(df > 0))
        return NAN;
    if (p == 0.5)
        return 0;
    double target = fabs(p - 0.5), lo = 0, hi = 1;

    while (t_half_mass(hi, df) < target && hi < 1e12)
        hi *= 2;
    for (int i = 0; i < 100 && hi - lo > 1e-9 * hi; i++) {
        double mid = (lo + hi) / 2;

        if (t_half_mass(mid, df) < target)
            lo = mid;
        else
            hi = mid;
    }
    return p > 0.5 ? (lo + hi) / 2 : -(lo + hi) / 2;
}

static void mean_var(const double *v, size_t n, double *mean, double *var)
{
    double s = 0, ss = 0;

    for (size_t i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *var = n > 1 ? ss / (n - 1) : NAN;
}

static void set_interval(struct xr_ratio_est *out, double mean_log, double se, double df,
                         double level)
{
    double t = xr_t_quantile(0.5 + level / 2, df);

    out->ratio = exp(mean_log);
    if (isnan(t) || isnan(se)) {
        out->lo = 0;
        out->hi = INFINITY;
        return;
    }
    out->lo = exp(mean_log - t * se);
    out->hi = exp(mean_log + t * se);
}

static int logs_of(const double *v, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(v[i]))
            return -EINVAL;
        if (v[i] <= 0)
            return -EDOM;
        out[i] = log(v[i]);
    }
    return 0;
}

int xr_paired_ratio_ci(const double *x, const double *y, size_t n, double level,
                       struct xr_ratio_est *out)
{
    double *d, mean, var;
    int rc;

    if (n < 2 || !(level > 0 && level < 1) || has_nan(x, n) || has_nan(y, n))
        return -EINVAL;
    d = malloc(2 * n * sizeof *d);
    if (!d)
        return -ENOMEM;
    rc = logs_of(x, n, d);
    if (!rc)
        rc = logs_of(y, n, d + n);
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            d[i] -= d[n + i];
        mean_var(d, n, &mean, &var);
        out->n = n;
        set_interval(out, mean, sqrt(var / n), (double)(n - 1), level);
    }
    free(d);
    return rc;
}

int xr_welch_ratio_ci(const double *a, size_t na, const double *b, size_t nb, double level,
                      struct xr_ratio_est *out)
{
    double *la, *lb, ma, va, mb, vb;
    int rc;

    if (na < 2 || nb < 2 || !(level > 0 && level < 1) || has_nan(a, na) || has_nan(b, nb))
        return -EINVAL;
    la = malloc((na + nb) * sizeof *la);
    if (!la)
        return -ENOMEM;
    lb = la + na;
    rc = logs_of(a, na, la);
    if (!rc)
        rc = logs_of(b, nb, lb);
    if (!rc) {
        mean_var(la, na, &ma, &va);
        mean_var(lb, nb, &mb, &vb);
        double sa = va / na, sb = vb / nb, se = sqrt(sa + sb);
        /* Welch-Satterthwaite; two constant samples leave no spread at all */
        double df = se > 0 ? (sa + sb) * (sa + sb)
                                 / (sa * sa / (na - 1) + sb * sb / (nb - 1))
                           : (double)(na + nb - 2);
        out->n = na + nb;
        set_interval(out, ma - mb, se, df, level);
    }
    free(la);
    return rc;
}

/* --- paired rounds: the sign test's interval for the median ------------------ */

/* P(X <= j) for X ~ Binomial(n, 1/2). */
static double binom_half_cdf(size_t n, size_t j)
{
    double p = 0;
    for (size_t i = 0; i <= j && i <= n; i++)
        p += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) -
                 (double)n * M_LN2);
    return p;
}

long xr_sign_ci_rank(size_t n, double a)
{
    if (n == 0 || !(a > 0 && a < 0.5))
        return -EINVAL;
    long k = 0;
    while ((size_t)k < n / 2 && binom_half_cdf(n, (size_t)k) <= a)
        k++;
    return k;
}

int xr_paired_median_ratio(const double *x, const double *y, size_t n, double a,
                           struct xr_ratio_est *out)
{
    if (n == 0 || !(a > 0 && a < 0.5) || has_nan(x, n) || has_nan(y, n))
        return -EINVAL;
    double *d = malloc(2 * n * sizeof *d);
    if (!d)
        return -ENOMEM;
    int rc = logs_of(x, n, d);
    if (!rc)
        rc = logs_of(y, n, d + n);
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            d[i] -= d[n + i];
        qsort(d, n, sizeof *d, cmp_double);
        long k = xr_sign_ci_rank(n, a);
        out->n = n;
        out->ratio = exp(n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2);
        out->lo = k ? exp(d[k - 1]) : 0;
        out->hi = k ? exp(d[n - (size_t)k]) : INFINITY;
    }
    free(d);
    return rc;
}
