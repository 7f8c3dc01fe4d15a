/* Dataflow with weft_submit_after: results flow through weft_job_dep in the
 * order given; a failed or cancelled dependency fails the dependant with
 * WEFT_STATUS_DEP_FAILED(lowest failed index) without running it, and
 * weft_future_cause finds the root failure down a chain; WEFT_RUN_ANYWAY
 * runs the dependant, which reads each dependency's status itself. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

static _Atomic long dtors;
static _Atomic long ran;

/* A value task: result = arg. */
static int value(weft_job *job, void *arg)
{
    atomic_fetch_add(&ran, 1);
    return set_val(job, (long)(intptr_t)arg, &dtors);
}

/* result = dependency 0's value (the others only order it). */
static int first_dep(weft_job *job, void *arg)
{
    (void)arg;
    void *v = NULL;
    if (weft_job_dep(job, 0, &v) != 0 || !v)
        return -EPROTO;
    return set_val(job, val_of(v), &dtors);
}

/* Succeeds when dependency 0 succeeded with no result (it was taken). */
static int inspect_first(weft_job *job, void *arg)
{
    (void)arg;
    void *v = (void *)1;
    return weft_job_dep(job, 0, &v) == 0 && v == NULL ? 0 : -EPROTO;
}

/* Sum of the dependencies' values times the arg (1 if 0), checking each
 * dependency's status is 0. */
static int sum_deps(weft_job *job, void *arg)
{
    atomic_fetch_add(&ran, 1);
    long sum = 0, mul = arg ? (long)(intptr_t)arg : 1;
    for (size_t i = 0; i < weft_job_ndeps(job); i++) {
        void *v = NULL;
        if (weft_job_dep(job, i, &v) != 0)
            return -EPROTO;
        sum += val_of(v);
    }
    void *v;
    if (weft_job_dep(job, weft_job_ndeps(job), &v) != -ERANGE)
        return -EPROTO;
    return set_val(job, sum * mul, &dtors);
}

/* dep0 - dep1: checks the order of the dependencies. */
static int minus(weft_job *job, void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    void *a = NULL, *b = NULL;
    if (weft_job_ndeps(job) != 2 || weft_job_dep(job, 0, &a) ||
        weft_job_dep(job, 1, &b))
        return -EPROTO;
    return set_val(job, val_of(a) - val_of(b), &dtors);
}

static int fail_with(weft_job *job, void *arg)
{
    (void)job;
    atomic_fetch_add(&ran, 1);
    return (int)(intptr_t)arg;
}

static weft_future *submit(weft_runtime *rt, weft_fn fn, long arg)
{
    weft_future *f = NULL;
    assert_int_equal(weft_submit(rt, fn, (void *)(intptr_t)arg, NULL, &f), 0);
    return f;
}

static weft_future *after(weft_runtime *rt, weft_fn fn, long arg,
                          weft_future **deps, size_t n, unsigned flags)
{
    weft_submit_opts o = weft_submit_opts_default();
    o.flags = flags;
    weft_future *f = NULL;
    assert_int_equal(weft_submit_after(rt, fn, (void *)(intptr_t)arg, deps, n,
                                       &o, &f), 0);
    return f;
}

static long get_val(weft_future *f)
{
    void *v = NULL;
    assert_int_equal(weft_future_get(f, -1, &v), 0);
    return val_of(v);
}

/* A diamond, the order of dependencies, dependencies released at once
 * by the caller (the dependant holds its own references: ASan checks that
 * the results it reads are still alive), dependencies already done. */
static void test_diamond(void **s)
{
    (void)s;
    for (int w = 1; w <= 3; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        atomic_store(&dtors, 0);
        atomic_store(&ran, 0);
        weft_future *a = submit(rt, value, 2);
        weft_future *b = after(rt, sum_deps, 3, &a, 1, 0);   /* 6 */
        weft_future *d2[2] = { a, b };
        weft_future *c = after(rt, sum_deps, 0, d2, 2, 0);   /* 8 */
        weft_future *d3[2] = { b, c };
        weft_future *d = after(rt, minus, 0, d3, 2, 0);      /* -2 */
        weft_future *d4[2] = { c, b };
        weft_future *e = after(rt, minus, 0, d4, 2, 0);      /* 2 */
        weft_future_release(a);
        weft_future_release(b);
        weft_future_release(c);
        assert_int_equal(get_val(d), -2);
        assert_int_equal(get_val(e), 2);
        /* dependencies that are done already */
        weft_future *d5[2] = { d, e };
        weft_future *f = after(rt, minus, 0, d5, 2, 0);
        assert_int_equal(get_val(f), -4);
        weft_future_release(d);
        weft_future_release(e);
        weft_future_release(f);
        assert_int_equal(atomic_load(&ran), 6);
        /* every result freed once, once the last holder let go */
        assert_int_equal(wait_count(&dtors, 6, 30000), 0);
        weft_runtime_destroy(&rt);
        assert_int_equal(atomic_load(&dtors), 6);
    }
}

/* Fan-in from many, including the same future named twice, and
 * submit_after with no dependencies (like weft_submit). */
static void test_fan_in(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    int n = 5000 / test_scale();
    weft_future **fs = calloc((size_t)n + 1, sizeof *fs);
    assert_non_null(fs);
    long want = 0;
    for (int i = 0; i < n; i++) {
        fs[i] = submit(rt, value, i);
        want += i;
    }
    fs[n] = fs[7]; /* twice */
    want += 7;
    weft_future *sum = after(rt, sum_deps, 1, fs, (size_t)n + 1, 0);
    for (int i = 0; i < n; i++)
        weft_future_release(fs[i]);
    assert_int_equal(get_val(sum), want);
    weft_future_release(sum);
    weft_future *none = after(rt, sum_deps, 1, NULL, 0, 0);
    assert_int_equal(get_val(none), 0);
    weft_future_release(none);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), n + 2);
    free(fs);
}

/* Failures: the dependant does not run; its status names the lowest failed
 * index; the cause is the root failure, down a chain. */
static void test_dep_failure(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&ran, 0);
    weft_future *ok = submit(rt, value, 1);
    weft_future *bad1 = submit(rt, fail_with, -EIO);
    weft_future *bad2 = submit(rt, fail_with, -EPERM);
    assert_int_equal(weft_future_get(bad1, -1, NULL), -EIO);
    assert_int_equal(weft_future_get(bad2, -1, NULL), -EPERM);
    assert_int_equal(weft_future_get(ok, -1, NULL), 0);
    long before = atomic_load(&ran);

    weft_future *deps[4] = { ok, bad1, ok, bad2 };
    weft_future *x = after(rt, sum_deps, 0, deps, 4, 0);
    assert_int_equal(weft_future_get(x, -1, NULL), WEFT_STATUS_DEP_FAILED(1));
    assert_int_equal(weft_status_failed_dep(weft_future_get(x, -1, NULL)), 1);
    assert_int_equal(weft_future_cause(x), -EIO);
    assert_int_equal(weft_future_attempts(x), 0);
    assert_int_equal(weft_future_done(x), 1);
    weft_future *deps2[3] = { ok, ok, bad2 };
    weft_future *y = after(rt, sum_deps, 0, deps2, 3, 0);
    assert_int_equal(weft_future_get(y, -1, NULL), WEFT_STATUS_DEP_FAILED(2));
    assert_int_equal(weft_future_cause(y), -EPERM);

    /* down a chain: z <- y <- bad2; w depends on (ok, z) */
    weft_future *z = after(rt, sum_deps, 0, &y, 1, 0);
    weft_future *d2[2] = { ok, z };
    weft_future *w = after(rt, sum_deps, 0, d2, 2, 0);
    assert_int_equal(weft_future_get(z, -1, NULL), WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_get(w, -1, NULL), WEFT_STATUS_DEP_FAILED(1));
    assert_int_equal(weft_future_cause(z), -EPERM);
    assert_int_equal(weft_future_cause(w), -EPERM);
    assert_int_equal(atomic_load(&ran), before); /* none of them ran */

    /* a dependency failing with a status in the reserved range is still
     * a failure of that dependency */
    weft_future *odd = submit(rt, fail_with, WEFT_STATUS_DEP_FAILED(5));
    weft_future *o2 = after(rt, sum_deps, 0, &odd, 1, 0);
    assert_int_equal(weft_future_get(o2, -1, NULL), WEFT_STATUS_DEP_FAILED(0));

    /* status helpers */
    assert_int_equal(weft_status_failed_dep(0), -1);
    assert_int_equal(weft_status_failed_dep(-EIO), -1);
    assert_int_equal(weft_status_failed_dep(WEFT_STATUS_DEP_FAILED(0)), 0);
    assert_int_equal(weft_status_failed_dep(WEFT_STATUS_DEP_FAILED(12345)),
                     12345);
    assert_int_equal(weft_status_failed_dep(WEFT_STATUS_DEP_FAILED(WEFT_MAX_DEPS - 1)),
                     (long)WEFT_MAX_DEPS - 1);

    weft_future *all[] = { ok, bad1, bad2, x, y, z, w, odd, o2 };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        weft_future_release(all[i]);
    weft_runtime_destroy(&rt);
}

/* The failed dependencies finish at different times: dep 3 fails first,
 * dep 1 later. The dependant reports one of the failed indices and its
 * cause matches that one. Then both failing before the submission: the
 * lowest, strictly. */
static void test_dep_failure_timing(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 20; rep++) {
        struct gate g = { .rc = -EIO };
        weft_future *ok = submit(rt, value, 1);
        weft_future *late;
        assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &late), 0);
        weft_future *early = submit(rt, fail_with, -EPERM);
        weft_future *deps[4] = { ok, late, ok, early };
        weft_future *x = after(rt, sum_deps, 0, deps, 4, 0);
        assert_int_equal(weft_future_get(early, -1, NULL), -EPERM);
        sleep_ns(1 * MS);
        gate_open(&g);
        int st = weft_future_get(x, -1, NULL);
        if (st == WEFT_STATUS_DEP_FAILED(1))
            assert_int_equal(weft_future_cause(x), -EIO);
        else {
            assert_int_equal(st, WEFT_STATUS_DEP_FAILED(3));
            assert_int_equal(weft_future_cause(x), -EPERM);
        }
        assert_int_equal(weft_future_get(late, -1, NULL), -EIO);
        weft_future *x2 = after(rt, sum_deps, 0, deps, 4, 0);
        assert_int_equal(weft_future_get(x2, -1, NULL),
                         WEFT_STATUS_DEP_FAILED(1));
        assert_int_equal(weft_future_cause(x2), -EIO);
        weft_future *all[] = { ok, late, early, x, x2 };
        for (size_t i = 0; i < 5; i++)
            weft_future_release(all[i]);
    }
    weft_runtime_destroy(&rt);
}

/* WEFT_RUN_ANYWAY: the dependant runs and sees each status and the
 * results of those that succeeded. */
struct seen { int st[4]; long v[4]; size_t n; };

static int inspect(weft_job *job, void *arg)
{
    struct seen *x = arg;
    x->n = weft_job_ndeps(job);
    for (size_t i = 0; i < x->n && i < 4; i++) {
        void *v = NULL;
        x->st[i] = weft_job_dep(job, i, &v);
        x->v[i] = v ? val_of(v) : -1;
    }
    return 0;
}

static void test_run_anyway(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct gate g = { 0 };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    weft_future *ok = submit(rt, value, 42);
    weft_future *bad = submit(rt, fail_with, -EIO);
    weft_future *never = after(rt, value, 1, &blk, 1, 0);
    assert_int_equal(weft_future_cancel(never), 0);
    weft_future *depfail = after(rt, value, 2, &bad, 1, 0);
    weft_future *deps[4] = { ok, bad, never, depfail };
    struct seen x;
    memset(&x, 0, sizeof x);
    weft_submit_opts o = weft_submit_opts_default();
    o.flags = WEFT_RUN_ANYWAY;
    weft_future *f;
    assert_int_equal(weft_submit_after(rt, inspect, &x, deps, 4, &o, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_cause(f), 0);
    assert_int_equal(x.n, 4);
    assert_int_equal(x.st[0], 0);
    assert_int_equal(x.v[0], 42);
    assert_int_equal(x.st[1], -EIO);
    assert_int_equal(x.st[2], -ECANCELED);
    assert_int_equal(x.st[3], WEFT_STATUS_DEP_FAILED(0));
    /* the same without the flag does not run */
    memset(&x, 0, sizeof x);
    weft_future *g2;
    assert_int_equal(weft_submit_after(rt, inspect, &x, deps, 4, NULL, &g2), 0);
    assert_int_equal(weft_future_get(g2, -1, NULL), WEFT_STATUS_DEP_FAILED(1));
    assert_int_equal(x.n, 0);
    gate_open(&g);
    weft_future *all[] = { blk, ok, bad, never, depfail, f, g2 };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        weft_future_release(all[i]);
    weft_runtime_destroy(&rt);
}

/* Cancelling a dependency (not started) fails its dependants; cancelling
 * a dependant that waits for its dependencies leaves them alone. */
static void test_cancel_dependency(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&ran, 0);
    struct gate g = { 0 };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    weft_future *a = after(rt, value, 1, &blk, 1, 0);
    weft_future *b = after(rt, value, 2, &a, 1, 0);
    weft_future *c = after(rt, value, 3, &b, 1, 0);
    weft_future *other = after(rt, value, 4, &blk, 1, 0);
    weft_future *d2[2] = { other, b };
    weft_future *d = after(rt, sum_deps, 0, d2, 2, 0);
    assert_int_equal(weft_future_cancel(a), 0);
    assert_int_equal(weft_future_get(a, -1, NULL), -ECANCELED);
    assert_int_equal(weft_future_get(b, -1, NULL), WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_get(c, -1, NULL), WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_cause(c), -ECANCELED);
    assert_int_equal(weft_future_cancel(b), -EALREADY);
    /* d waits on `other` still, or has failed already through b */
    weft_future *e = after(rt, value, 5, &other, 1, 0);
    assert_int_equal(weft_future_cancel(e), 0);
    assert_int_equal(weft_future_done(other), 0);
    gate_open(&g);
    assert_int_equal(get_val(other), 4);
    assert_int_equal(weft_future_get(d, -1, NULL), WEFT_STATUS_DEP_FAILED(1));
    assert_int_equal(weft_future_cause(d), -ECANCELED);
    assert_int_equal(weft_future_get(e, -1, NULL), -ECANCELED);
    weft_future *all[] = { blk, a, b, c, other, d, e };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        weft_future_release(all[i]);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&ran), 1); /* only `other` */
}

/* cause for futures that are not failed by a dependency, or not done. */
static void test_cause(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct gate g = { .rc = -EBUSY };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    weft_future *dep = after(rt, value, 1, &blk, 1, 0);
    assert_int_equal(weft_future_cause(blk), -ETIMEDOUT);
    assert_int_equal(weft_future_cause(dep), -ETIMEDOUT);
    gate_open(&g);
    assert_int_equal(weft_future_get(dep, -1, NULL), WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_cause(blk), -EBUSY);
    assert_int_equal(weft_future_cause(dep), -EBUSY);
    weft_future *ok = submit(rt, value, 1);
    assert_int_equal(weft_future_get(ok, -1, NULL), 0);
    assert_int_equal(weft_future_cause(ok), 0);
    weft_future_release(blk);
    weft_future_release(dep);
    weft_future_release(ok);
    weft_runtime_destroy(&rt);
}

/* A retried dependency: the dependant sees only the final outcome. */
static int fail_once(weft_job *job, void *arg)
{
    if (weft_job_attempt(job) == 0)
        return -EAGAIN;
    return set_val(job, (long)(intptr_t)arg, &dtors);
}

static void test_retried_dependency(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = 1;
    weft_future *a, *b;
    assert_int_equal(weft_submit(rt, fail_once, (void *)10, &o, &a), 0);
    assert_int_equal(weft_submit(rt, fail_once, (void *)20, NULL, &b), 0);
    weft_future *d[2] = { a, a };
    weft_future *x = after(rt, sum_deps, 0, d, 2, 0);
    assert_int_equal(get_val(x), 20);
    weft_future *y = after(rt, sum_deps, 0, &b, 1, 0);
    assert_int_equal(weft_future_get(y, -1, NULL), WEFT_STATUS_DEP_FAILED(0));
    assert_int_equal(weft_future_cause(y), -EAGAIN);
    assert_int_equal(weft_future_attempts(a), 2);
    /* the dependant itself may be retried: it sees the same deps */
    weft_future *z;
    assert_int_equal(weft_submit_after(rt, fail_once, (void *)30, &a, 1, &o,
                                       &z), 0);
    assert_int_equal(get_val(z), 30);
    weft_future *all[] = { a, b, x, y, z };
    for (size_t i = 0; i < 5; i++)
        weft_future_release(all[i]);
    weft_runtime_destroy(&rt);
}

/* take moves a result out: it waits until the dependants that read it
 * are done (b reads a; b also waits on a gate another thread opens 20 ms
 * later), so the caller may free the value at once (ASan). A later
 * dependant sees NULL: the future forgot the value. */
static void test_take_with_dependants(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&dtors, 0);
    for (int rep = 0; rep < 10; rep++) {
        struct gate g = { 0 };
        weft_future *a = submit(rt, value, 5), *blk;
        assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
        weft_future *d[2] = { a, blk };
        weft_future *b = after(rt, first_dep, 0, d, 2, 0);
        weft_future *c = after(rt, first_dep, 0, d, 2, 0);
        pthread_t th;
        struct opener o = { &g, 20 * MS };
        assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
        void *v = NULL;
        assert_int_equal(weft_future_take(a, &v), 0);
        assert_int_equal(weft_future_done(b), 1);
        assert_int_equal(weft_future_done(c), 1);
        assert_int_equal(val_of(v), 5);
        val_dtor(v);
        pthread_join(th, NULL);
        assert_int_equal(get_val(b), 5);
        assert_int_equal(get_val(c), 5);
        weft_future *e = after(rt, inspect_first, 0, &a, 1, 0);
        assert_int_equal(weft_future_get(e, -1, NULL), 0);
        weft_future *all[] = { a, blk, b, c, e };
        for (size_t i = 0; i < 5; i++)
            weft_future_release(all[i]);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 30); /* a (by us), b, c */
}

/* Released by its user while a dependant still waits to read it: the
 * result lives until that dependant is done, then goes exactly once. */
static void test_release_before_dependant(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 20; rep++) {
        atomic_store(&dtors, 0);
        struct gate g = { 0 };
        weft_future *a = submit(rt, value, 7), *blk;
        assert_int_equal(weft_future_get(a, -1, NULL), 0);
        assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
        weft_future *d[2] = { a, blk };
        weft_future *b = after(rt, first_dep, 0, d, 2, 0);
        assert_int_equal(weft_future_release(a), 0);
        assert_int_equal(weft_future_done(a), -EINVAL); /* handle dead */
        sleep_ns(1 * MS);
        assert_int_equal(atomic_load(&dtors), 0); /* b still needs it */
        gate_open(&g);
        assert_int_equal(get_val(b), 7);
        assert_int_equal(wait_count(&dtors, 1, 30000), 0);
        weft_future_release(b);
        weft_future_release(blk);
        assert_int_equal(wait_count(&dtors, 2, 30000), 0);
        assert_int_equal(atomic_load(&dtors), 2);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&dtors), 2);
}

/* A dependant cancelled while it waits never reads its dependencies, so
 * it does not keep them: a is done, b waits for a and for a gate; once
 * b is cancelled, releasing a destroys a's result by the time release
 * returns, and take on c (b2's other dependency) does not wait for b2.
 * Before, both results lived until the gate opened and b's last
 * dependency was done: take waited for a gate that only this thread
 * could open. */
static void test_cancelled_dependant_lets_go(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 10; rep++) {
        atomic_store(&dtors, 0);
        struct gate g = { 0 };
        weft_future *a = submit(rt, value, 7), *c = submit(rt, value, 8), *blk;
        assert_int_equal(weft_future_get(a, -1, NULL), 0);
        assert_int_equal(weft_future_get(c, -1, NULL), 0);
        assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
        weft_future *d[2] = { a, blk }, *d2[3] = { blk, c, c };
        weft_future *b = after(rt, first_dep, 0, d, 2, 0);
        weft_future *b2 = after(rt, first_dep, 0, d2, 3, 0);
        assert_int_equal(weft_future_cancel(b), 0);
        assert_int_equal(weft_future_cancel(b2), 0);
        assert_int_equal(weft_future_release(a), 0);
        assert_int_equal(atomic_load(&dtors), 1); /* nobody reads it */
        void *v = NULL;
        assert_int_equal(weft_future_take(c, &v), 0);
        assert_int_equal(val_of(v), 8);
        val_dtor(v); /* ours */
        assert_int_equal(weft_future_done(blk), 0);
        gate_open(&g);
        assert_int_equal(weft_future_get(blk, -1, NULL), 0);
        assert_int_equal(weft_future_get(b, -1, NULL), -ECANCELED);
        assert_int_equal(weft_future_get(b2, -1, NULL), -ECANCELED);
        weft_future *all[] = { blk, b, b2, c };
        for (size_t i = 0; i < 4; i++)
            weft_future_release(all[i]);
        assert_int_equal(atomic_load(&dtors), 2);
    }
    weft_runtime_destroy(&rt);
}

/* Dataflow built from inside tasks: each level submits the next level's
 * work after the previous level (a reduction tree), then waits. */
struct tree { weft_runtime *rt; int n; long r; };

static int build_tree(void *arg)
{
    struct tree *t = arg;
    int n = t->n;
    weft_future **lvl = calloc((size_t)n, sizeof *lvl);
    if (!lvl)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        if (weft_submit(t->rt, value, (void *)(intptr_t)(i + 1), NULL,
                        &lvl[i]))
            return -ENOMEM;
    while (n > 1) {
        int m = (n + 1) / 2;
        for (int i = 0; i < m; i++) {
            size_t k = 2 * i + 1 < n ? 2 : 1;
            weft_future *f;
            if (weft_submit_after(t->rt, sum_deps, NULL, &lvl[2 * i], k, NULL,
                                  &f))
                return -ENOMEM;
            for (size_t j = 0; j < k; j++)
                weft_future_release(lvl[2 * i + j]);
            lvl[i] = f;
        }
        n = m;
    }
    void *v = NULL;
    int st = weft_future_get(lvl[0], -1, &v);
    t->r = val_of(v);
    weft_future_release(lvl[0]);
    free(lvl);
    return st;
}

static void test_tree_inside(void **s)
{
    (void)s;
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        struct tree t = { rt, 10000 / test_scale(), 0 };
        assert_int_equal(weft_run(rt, build_tree, &t), 0);
        assert_int_equal(t.r, (long)t.n * (t.n + 1) / 2);
        weft_runtime_destroy(&rt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diamond),
        cmocka_unit_test(test_fan_in),
        cmocka_unit_test(test_dep_failure),
        cmocka_unit_test(test_dep_failure_timing),
        cmocka_unit_test(test_run_anyway),
        cmocka_unit_test(test_cancel_dependency),
        cmocka_unit_test(test_cause),
        cmocka_unit_test(test_retried_dependency),
        cmocka_unit_test(test_tree_inside),
        cmocka_unit_test(test_take_with_dependants),
        cmocka_unit_test(test_release_before_dependant),
        cmocka_unit_test(test_cancelled_dependant_lets_go),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
