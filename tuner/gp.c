/* gp.c - Gaussian-process regression (Matern-5/2 kernel plus a white-noise
 * term) and expected improvement, for xdtune's model-based search.
 *
 * Inputs are xdtune's encoding (ordinals in [0,1], one-hot choices); outputs
 * are standardised. The noise term is what lets a noisy fio figure not be
 * taken as the truth: it is fitted, with the length scale, by maximising the
 * log marginal likelihood over a small grid (cheap: tens of points).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xdtune.h"

static double matern52(const double *a, const double *b, unsigned d, double length)
{
    double r2 = 0;
    for (unsigned i = 0; i < d; i++)
        r2 += (a[i] - b[i]) * (a[i] - b[i]);
    double r = sqrt(5.0 * r2) / length;
    return (1 + r + r * r / 3.0) * exp(-r);
}

/* In-place Cholesky of the n x n matrix A (lower triangle); -1 if not SPD. */
static int cholesky(double *A, unsigned n)
{
    for (unsigned j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (unsigned k = 0; k < j; k++)
            s -= A[j * n + k] * A[j * n + k];
        if (s <= 0)
            return -1;
        A[j * n + j] = sqrt(s);
        for (unsigned i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (unsigned k = 0; k < j; k++)
                t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / A[j * n + j];
        }
    }
    return 0;
}

/* Solve L z = b (forward) and L^T x = z (backward) in place in b. */
static void solve_lower(const double *L, unsigned n, double *b)
{
    for (unsigned i = 0; i < n; i++) {
        for (unsigned k = 0; k < i; k++)
            b[i] -= L[i * n + k] * b[k];
        b[i] /= L[i * n + i];
    }
}

static void solve_upper(const double *L, unsigned n, double *b)
{
    for (unsigned i = n; i-- > 0;) {
        for (unsigned k = i + 1; k < n; k++)
            b[i] -= L[k * n + i] * b[k];
        b[i] /= L[i * n + i];
    }
}

/* Factor K + noise I for (length, noise) and return the log marginal
 * likelihood of the standardised y (alpha and L filled); -INFINITY if singular. */
static double fit_once(const double *X, const double *y, unsigned n, unsigned d, double length,
                       double noise, double *L, double *alpha)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j <= i; j++) {
            double k = matern52(X + i * d, X + j * d, d, length);
            L[i * n + j] = L[j * n + i] = k + (i == j ? noise : 0);
        }
    if (cholesky(L, n))
        return -INFINITY;
    memcpy(alpha, y, n * sizeof(double));
    solve_lower(L, n, alpha);
    double fit = 0, logdet = 0;
    for (unsigned i = 0; i < n; i++) {
        fit += alpha[i] * alpha[i];
        logdet += log(L[i * n + i]);
    }
    solve_upper(L, n, alpha);
    return -0.5 * fit - logdet - 0.5 * n * log(2 * M_PI);
}

int xt_gp_fit(struct xt_gp *gp, const double *X, const double *y, unsigned n, unsigned d)
{
    static const double lengths[] = { 0.1, 0.2, 0.35, 0.6, 1.0, 1.8 };
    static const double noises[] = { 1e-4, 1e-2, 0.05, 0.2, 0.5 };
    memset(gp, 0, sizeof(*gp));
    gp->n = n;
    gp->d = d;
    gp->X = malloc(n * d * sizeof(double));
    gp->L = malloc(n * n * sizeof(double));
    gp->alpha = malloc(n * sizeof(double));
    double *ys = malloc(n * sizeof(double));
    if (!gp->X || !gp->L || !gp->alpha || !ys) {
        free(ys);
        xt_gp_free(gp);
        return -ENOMEM;
    }
    memcpy(gp->X, X, n * d * sizeof(double));
    double mean = 0, var = 0;
    for (unsigned i = 0; i < n; i++)
        mean += y[i] / n;
    for (unsigned i = 0; i < n; i++)
        var += (y[i] - mean) * (y[i] - mean) / n;
    gp->ymean = mean;
    gp->yscale = var > 1e-24 ? sqrt(var) : 1;
    for (unsigned i = 0; i < n; i++)
        ys[i] = (y[i] - mean) / gp->yscale;
    double best = -INFINITY;
    for (unsigned a = 0; a < sizeof(lengths) / sizeof(lengths[0]); a++)
        for (unsigned b = 0; b < sizeof(noises) / sizeof(noises[0]); b++) {
            double ll = fit_once(X, ys, n, d, lengths[a] * sqrt((double)d), noises[b], gp->L,
                                 gp->alpha);
            if (ll > best) {
                best = ll;
                gp->length = lengths[a] * sqrt((double)d);
                gp->noise = noises[b];
            }
        }
    if (best == -INFINITY) { /* only when every grid point was singular */
        gp->length = sqrt((double)d);
        gp->noise = 1.0;
    }
    fit_once(X, ys, n, d, gp->length, gp->noise, gp->L, gp->alpha);
    free(ys);
    return 0;
}

void xt_gp_predict(const struct xt_gp *gp, const double *x, double *mean, double *sd)
{
    unsigned n = gp->n;
    double k[n > 0 ? n : 1], m = 0;
    for (unsigned i = 0; i < n; i++) {
        k[i] = matern52(x, gp->X + i * gp->d, gp->d, gp->length);
        m += k[i] * gp->alpha[i];
    }
    solve_lower(gp->L, n, k);
    double v = 1.0;
    for (unsigned i = 0; i < n; i++)
        v -= k[i] * k[i];
    *mean = gp->ymean + gp->yscale * m;
    *sd = gp->yscale * sqrt(fmax(v, 1e-12));
}

double xt_gp_ei(double mean, double sd, double best, double xi)
{
    if (sd <= 0)
        return fmax(mean - best - xi, 0);
    double z = (mean - best - xi) / sd;
    double cdf = 0.5 * erfc(-z / M_SQRT2), pdf = exp(-0.5 * z * z) / sqrt(2 * M_PI);
    return (mean - best - xi) * cdf + sd * pdf;
}

void xt_gp_free(struct xt_gp *gp)
{
    free(gp->X);
    free(gp->L);
    free(gp->alpha);
    memset(gp, 0, sizeof(*gp));
}
