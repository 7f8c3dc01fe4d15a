/* The Universal Scalability Law (Gunther): the speedup on N workers is
 *
 *     S(N) = N / (1 + sigma (N - 1) + kappa N (N - 1))
 *
 * sigma (contention) is the share of the work that queues for something
 * shared; kappa (coherency) is the cost of keeping N workers' views in
 * agreement, which grows with the pairs of workers. With kappa > 0 the
 * speedup peaks at N* = sqrt((1 - sigma) / kappa) and falls after it.
 * Used by weft-scale; no dependency on weft. */
#ifndef WEFT_SCALE_USL_H
#define WEFT_SCALE_USL_H

typedef struct usl_fit {
    double sigma, kappa; /* 0 <= sigma <= 1, kappa >= 0 */
    /* N* = sqrt((1 - sigma) / kappa); INFINITY when kappa is 0 (or too
     * small to give a peak below 1e9 workers), or when only sigma could
     * be fitted. */
    double peak;
    double rmse;      /* root mean square error of the fitted S(N_i) */
    int points;       /* points with N > 1, the ones that carry information */
    int kappa_fitted; /* 0 when the points cannot tell kappa from sigma
                         (a single N > 1, whose speedup sigma <= 1 alone
                         explains): kappa is then 0 */
} usl_fit;

/* Fit sigma and kappa by least squares on the linear form
 * N/S - 1 = sigma (N - 1) + kappa N (N - 1), within the law's bounds
 * 0 <= sigma <= 1, kappa >= 0 (exactly: when the free solution is out of
 * bounds, the best of the bounds' one-variable fits is taken). The linear
 * form weighs the points by N/S, so large N count more, where the two
 * terms differ most. n[i] are worker counts, s[i] the speedups over one
 * worker (S(1) = 1 by definition, so points at N = 1 add nothing).
 * Returns 0 and fills *out; -EINVAL for a NULL pointer, count < 1, an
 * N < 1 or a speedup that is not a positive finite number; -EDOM when no
 * point has N > 1 (nothing to fit: *out then holds sigma = kappa = 0). */
int usl_fit_speedups(const double *n, const double *s, int count,
                     usl_fit *out);

/* The fitted speedup at n workers. */
double usl_speedup(const usl_fit *f, double n);

#endif
