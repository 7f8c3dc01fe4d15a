/* Least-squares fit of the Universal Scalability Law (see usl.h). */
#include "usl.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>

/* Sums of the normal equations of y = sigma x1 + kappa x2, with
 * x1 = N - 1, x2 = N (N - 1), y = N / S - 1; yy for the residual. */
typedef struct usl_sums {
    double x11, x12, x22, x1y, x2y, yy;
} usl_sums;

/* The sum of squared residuals of (sigma, kappa), from the sums alone. */
static double sse(const usl_sums *m, double sigma, double kappa)
{
    return m->yy - 2 * sigma * m->x1y - 2 * kappa * m->x2y +
           sigma * sigma * m->x11 + 2 * sigma * kappa * m->x12 +
           kappa * kappa * m->x22;
}

/* The best kappa >= 0 for a fixed sigma, and the best sigma in [0, 1] for
 * a fixed kappa: one-variable least squares, clamped. */
static double kappa_given(const usl_sums *m, double sigma)
{
    return fmax(0, (m->x2y - sigma * m->x12) / m->x22);
}

static double sigma_given(const usl_sums *m, double kappa)
{
    return fmin(1, fmax(0, (m->x1y - kappa * m->x12) / m->x11));
}

/* Checks the points; returns how many have N > 1 (or -EINVAL), and in
 * *distinct whether at least two different N > 1 occur. */
static int check_points(const double *n, const double *s, int count,
                        int *distinct)
{
    int useful = 0;
    double first = 0;
    *distinct = 0;
    for (int i = 0; i < count; i++) {
        if (!(n[i] >= 1) || !isfinite(n[i]) || !(s[i] > 0) ||
            !isfinite(s[i]))
            return -EINVAL;
        if (n[i] == 1)
            continue;
        if (useful++ == 0)
            first = n[i];
        else if (n[i] != first)
            *distinct = 1;
    }
    return useful;
}

static usl_sums sums(const double *n, const double *s, int count)
{
    usl_sums m = { 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < count; i++) {
        double x1 = n[i] - 1, x2 = n[i] * x1, y = n[i] / s[i] - 1;
        m.x11 += x1 * x1;
        m.x12 += x1 * x2;
        m.x22 += x2 * x2;
        m.x1y += x1 * y;
        m.x2y += x2 * y;
        m.yy += y * y;
    }
    return m;
}

/* Keep (sigma, kappa) in *f when it fits better than what is there. */
static void consider(const usl_sums *m, double sigma, double kappa,
                     usl_fit *f, double *best)
{
    double e = sse(m, sigma, kappa);
    if (e < *best) {
        *best = e;
        f->sigma = sigma;
        f->kappa = kappa;
    }
}

/* Least squares with 0 <= sigma <= 1 and kappa >= 0 (the law's own
 * bounds): the free solution when it is inside them; else, the objective
 * being convex, the optimum lies on an edge of the region, where it is
 * the clamped one-variable optimum, so the best of the three edges'. With
 * a single N > 1 (two) sigma and kappa cannot be told apart: sigma alone
 * explains the point unless it needs more than 1. */
static void solve(const usl_sums *m, int two, usl_fit *f)
{
    double det = m->x11 * m->x22 - m->x12 * m->x12, best = INFINITY;
    if (two && det > 0) {
        double sigma = (m->x1y * m->x22 - m->x12 * m->x2y) / det;
        double kappa = (m->x11 * m->x2y - m->x12 * m->x1y) / det;
        if (sigma >= 0 && sigma <= 1 && kappa >= 0) {
            f->sigma = sigma;
            f->kappa = kappa;
            return;
        }
    }
    consider(m, sigma_given(m, 0), 0, f, &best);
    if (two)
        consider(m, 0, kappa_given(m, 0), f, &best);
    consider(m, 1, kappa_given(m, 1), f, &best);
}

/* A peak beyond this many workers is no peak anyone will meet. */
#define USL_PEAK_MAX 1e9

static double peak(const usl_fit *f)
{
    if (!f->kappa_fitted || f->kappa <= 0)
        return INFINITY;
    if (f->sigma >= 1)
        return 1; /* S(N) <= 1 everywhere: one worker is the best */
    double p = sqrt((1 - f->sigma) / f->kappa);
    return p > USL_PEAK_MAX ? INFINITY : p;
}

double usl_speedup(const usl_fit *f, double n)
{
    return n / (1 + f->sigma * (n - 1) + f->kappa * n * (n - 1));
}

int usl_fit_speedups(const double *n, const double *s, int count,
                     usl_fit *out)
{
    if (n == NULL || s == NULL || out == NULL || count < 1)
        return -EINVAL;
    int distinct;
    int useful = check_points(n, s, count, &distinct);
    if (useful < 0)
        return useful;
    *out = (usl_fit){ 0, 0, INFINITY, 0, useful, distinct };
    if (useful == 0)
        return -EDOM;
    usl_sums m = sums(n, s, count);
    solve(&m, distinct, out);
    out->kappa_fitted = distinct || out->kappa > 0;
    out->peak = peak(out);
    double e = 0;
    for (int i = 0; i < count; i++) {
        double r = s[i] - usl_speedup(out, n[i]);
        e += r * r;
    }
    out->rmse = sqrt(e / count);
    return 0;
}
