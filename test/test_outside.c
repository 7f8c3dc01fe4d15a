/* Threads that are not workers: 8 of them calling weft_run at once, and
 * destroying a runtime while outside callers are still in flight. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "internal.h"
#include "work.h"

#define NTHREADS 8

struct call { weft_runtime *rt; int n; long r; int rc; int reps; };

static int fib_root(void *a)
{
    struct call *c = a;
    c->r = fib(c->n);
    return 0;
}

static void *caller(void *a)
{
    struct call *c = a;
    for (int i = 0; i < c->reps; i++) {
        c->rc = weft_run(c->rt, fib_root, c);
        if (c->rc || c->r != fib_serial(c->n))
            break;
    }
    return NULL;
}

static void test_eight_callers(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    pthread_t th[NTHREADS];
    struct call c[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        c[i] = (struct call){ .rt = rt, .n = 12 + i, .reps = 200 / test_scale() };
        assert_int_equal(pthread_create(&th[i], NULL, caller, &c[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].r, fib_serial(c[i].n));
    }
    weft_runtime_destroy(&rt);
}

/* destroy() while 8 callers (more than the workers) are in flight: the
 * tasks hold at a gate until destroy has begun, so 2 run and 6 wait in the
 * injection queue; every call still finishes with the right answer. */
static _Atomic int gate;

static int gated_fib(void *a)
{
    struct call *c = a;
    while (!atomic_load(&gate))
        sched_yield();
    c->r = fib(c->n);
    return 0;
}

static void *gated_caller(void *a)
{
    struct call *c = a;
    c->rc = weft_run(c->rt, gated_fib, c);
    return NULL;
}

static void *destroyer(void *a)
{
    weft_runtime *rt = a;
    weft_runtime_destroy(&rt);
    return NULL;
}

static void test_destroy_under_load(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&gate, 0);
    pthread_t th[NTHREADS], d;
    struct call c[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        c[i] = (struct call){ .rt = rt, .n = 22 - test_scale(), .rc = 1 };
        assert_int_equal(pthread_create(&th[i], NULL, gated_caller, &c[i]), 0);
    }
    while (atomic_load(&rt->inflight) < NTHREADS)
        sched_yield();
    pthread_create(&d, NULL, destroyer, rt);
    while (atomic_load(&rt->stopping) == 0)
        sched_yield();
    atomic_store(&gate, 1);
    pthread_join(d, NULL);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].r, fib_serial(c[i].n));
    }
}

/* A call that starts while destroy waits is refused with -ESHUTDOWN. */
static int hold(void *a) { (void)a; while (!atomic_load(&gate)) sched_yield(); return 5; }
struct held { weft_runtime *rt; int rc; };
static void *hold_caller(void *a) { struct held *h = a; h->rc = weft_run(h->rt, hold, NULL); return NULL; }

static void test_refused_while_stopping(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&gate, 0);
    struct held h = { .rt = rt };
    pthread_t a, d;
    pthread_create(&a, NULL, hold_caller, &h);
    while (atomic_load(&rt->inflight) < 1)
        sched_yield();
    pthread_create(&d, NULL, destroyer, rt);
    while (atomic_load(&rt->stopping) == 0)
        sched_yield();
    assert_int_equal(weft_run(rt, hold, NULL), -ESHUTDOWN);
    atomic_store(&gate, 1);
    pthread_join(a, NULL);
    pthread_join(d, NULL);
    assert_int_equal(h.rc, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eight_callers),
        cmocka_unit_test(test_destroy_under_load),
        cmocka_unit_test(test_refused_while_stopping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
