/* weft-scale's Universal Scalability Law fit (tools/scale/usl.c):
 * speedups made from known sigma and kappa at N = 1..64, exact and with
 * +-2% deterministic noise, give sigma and kappa back; the predicted peak;
 * degenerate inputs (no point past one worker, a single worker count, no
 * speedup at all, slowdown) and bad arguments. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "usl.h"

#define NPOINTS 64

/* Speedups S(N) for N = 1..64 from the law itself, each multiplied by
 * 1 + noise * u with u in [-1, 1] from a fixed-seed generator, so the
 * test sees the same data on every run. */
static void make_points(double sigma, double kappa, double noise, double *n,
                        double *s)
{
    usl_fit law = { sigma, kappa, 0, 0, 0, 1 };
    uint64_t x = 0x5CA1AB1Eu;
    for (int i = 0; i < NPOINTS; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        double u = (double)(x >> 11) * 0x1p-53 * 2 - 1;
        n[i] = i + 1;
        s[i] = usl_speedup(&law, n[i]) * (1 + noise * u);
    }
}

static usl_fit fit_of(double sigma, double kappa, double noise)
{
    double n[NPOINTS], s[NPOINTS];
    usl_fit f;
    make_points(sigma, kappa, noise, n, s);
    assert_int_equal(usl_fit_speedups(n, s, NPOINTS, &f), 0);
    assert_int_equal(f.points, NPOINTS - 1);
    assert_true(f.kappa_fitted);
    return f;
}

/* |got - want| <= abs_tol + rel_tol * want */
static void assert_near(double got, double want, double abs_tol,
                        double rel_tol)
{
    if (!(fabs(got - want) <= abs_tol + rel_tol * fabs(want)))
        fail_msg("got %.6g, want %.6g (+- %.3g + %.0f%%)", got, want,
                 abs_tol, rel_tol * 100);
}

static void test_exact(void **state)
{
    static const double cases[][2] = { { 0.05, 0.001 }, { 0.1, 0 },
                                       { 0, 0.02 }, { 0, 0 } };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        usl_fit f = fit_of(cases[i][0], cases[i][1], 0);
        assert_near(f.sigma, cases[i][0], 1e-9, 1e-6);
        assert_near(f.kappa, cases[i][1], 1e-12, 1e-6);
        assert_true(f.rmse < 1e-9);
    }
}

static void test_noisy(void **state)
{
    (void)state;
    usl_fit f = fit_of(0.05, 0.001, 0.02);
    assert_near(f.sigma, 0.05, 0.01, 0.1);
    assert_near(f.kappa, 0.001, 0.0001, 0.1);
    f = fit_of(0.1, 0, 0.02);
    assert_near(f.sigma, 0.1, 0.01, 0.1);
    assert_near(f.kappa, 0, 0.0001, 0);
    f = fit_of(0, 0.02, 0.02);
    assert_near(f.sigma, 0, 0.01, 0);
    assert_near(f.kappa, 0.02, 0.0001, 0.1);
}

static void test_peak(void **state)
{
    (void)state;
    usl_fit f = fit_of(0.05, 0.001, 0);
    assert_near(f.peak, sqrt(0.95 / 0.001), 1e-6, 1e-6);
    assert_near(usl_speedup(&f, 1), 1, 1e-12, 0);
    /* past the peak the speedup falls */
    assert_true(usl_speedup(&f, f.peak) > usl_speedup(&f, 2 * f.peak));
    f = fit_of(0.1, 0, 0);
    assert_true(isinf(f.peak)); /* kappa 0: no peak */
    assert_near(usl_speedup(&f, 1e6), 10, 0.01, 0); /* Amdahl: 1/sigma */
    f = fit_of(0, 0.02, 0);
    assert_near(f.peak, sqrt(1 / 0.02), 1e-6, 1e-6);
}

/* Only N = 1: nothing to fit, and it says so. */
static void test_one_worker(void **state)
{
    double n[] = { 1 }, s[] = { 1 };
    usl_fit f;
    (void)state;
    assert_int_equal(usl_fit_speedups(n, s, 1, &f), -EDOM);
    assert_int_equal(f.points, 0);
    assert_true(f.sigma == 0 && f.kappa == 0 && isinf(f.peak));
}

/* One worker count past 1 cannot tell kappa from sigma: sigma takes it,
 * kappa is not claimed. */
static void test_one_count(void **state)
{
    double n[] = { 1, 4 }, s[] = { 1, 3.2 };
    usl_fit f;
    (void)state;
    assert_int_equal(usl_fit_speedups(n, s, 2, &f), 0);
    assert_int_equal(f.points, 1);
    assert_false(f.kappa_fitted);
    assert_near(f.sigma, (4 / 3.2 - 1) / 3, 1e-12, 1e-9);
    assert_true(f.kappa == 0 && isinf(f.peak));
    assert_near(usl_speedup(&f, 4), 3.2, 1e-9, 0);
}

/* No speedup at all: everything serialised, sigma 1. */
static void test_flat(void **state)
{
    double n[NPOINTS], s[NPOINTS];
    usl_fit f;
    (void)state;
    for (int i = 0; i < NPOINTS; i++) {
        n[i] = i + 1;
        s[i] = 1;
    }
    assert_int_equal(usl_fit_speedups(n, s, NPOINTS, &f), 0);
    assert_near(f.sigma, 1, 1e-9, 0);
    assert_near(f.kappa, 0, 1e-12, 0);
    assert_near(usl_speedup(&f, 64), 1, 1e-9, 0);
}

/* Slower on more workers: sigma stays within its bound of 1, and the
 * rest is coherency, with the peak at one worker. */
static void test_slowdown(void **state)
{
    double n[] = { 1, 2 }, s[] = { 1, 0.8 };
    usl_fit f;
    (void)state;
    assert_int_equal(usl_fit_speedups(n, s, 2, &f), 0);
    assert_near(f.sigma, 1, 0, 0);
    assert_near(f.kappa, (2 / 0.8 - 2) / 2, 1e-12, 1e-9);
    assert_true(f.kappa_fitted);
    assert_near(f.peak, 1, 0, 0);
    assert_near(usl_speedup(&f, 2), 0.8, 1e-9, 0);
}

static void test_bad_input(void **state)
{
    double n[] = { 1, 2 }, s[] = { 1, 1.9 };
    double bad_n[] = { 0.5, 2 }, bad_s[] = { 1, -1 }, nan_s[] = { 1, NAN };
    usl_fit f;
    (void)state;
    assert_int_equal(usl_fit_speedups(NULL, s, 2, &f), -EINVAL);
    assert_int_equal(usl_fit_speedups(n, NULL, 2, &f), -EINVAL);
    assert_int_equal(usl_fit_speedups(n, s, 2, NULL), -EINVAL);
    assert_int_equal(usl_fit_speedups(n, s, 0, &f), -EINVAL);
    assert_int_equal(usl_fit_speedups(bad_n, s, 2, &f), -EINVAL);
    assert_int_equal(usl_fit_speedups(n, bad_s, 2, &f), -EINVAL);
    assert_int_equal(usl_fit_speedups(n, nan_s, 2, &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_noisy),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_one_worker),
        cmocka_unit_test(test_one_count),
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_slowdown),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
