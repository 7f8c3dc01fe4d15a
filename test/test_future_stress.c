/* Futures at scale: a chain of a million dependent tasks (built while it
 * runs, and built whole before it starts) completes without deep
 * recursion, from an outside thread and from a worker with the default
 * stack; a million-long failed chain still knows its root cause; a wide
 * fan-out; 16 outside threads submitting, getting and waiting at once,
 * every task run exactly once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

/* --- chains ------------------------------------------------------------ */

static struct {
    _Atomic long next;   /* index of the next link expected to run */
    _Atomic long bad;    /* links that ran out of order or saw a failure */
    struct gate *gate;   /* link 0 waits on it when set */
    int fail_head;       /* link 0 fails with -EIO when set */
} chain;

static int link_fn(weft_job *job, void *arg)
{
    long i = (long)(intptr_t)arg;
    if (i == 0 && chain.gate && gate_wait_open(chain.gate))
        return -ETIMEDOUT;
    if (i == 0 && chain.fail_head)
        return -EIO;
    if (atomic_fetch_add(&chain.next, 1) != i)
        atomic_fetch_add(&chain.bad, 1);
    if (weft_job_ndeps(job) != (i ? 1u : 0u))
        atomic_fetch_add(&chain.bad, 1);
    if (i) {
        void *v = NULL;
        if (weft_job_dep(job, 0, &v) != 0 || (intptr_t)v != i - 1)
            atomic_fetch_add(&chain.bad, 1);
    }
    return weft_job_set_result(job, (void *)(intptr_t)i, NULL);
}

struct chain_run {
    weft_runtime *rt;
    long n;
    int prebuilt; /* link 0 is held at a gate until the chain is built */
    int rc;       /* status of the last link */
    long last;    /* result of the last link */
};

static int build_chain(struct chain_run *c)
{
    struct gate g = { 0 };
    atomic_store(&chain.next, 0);
    atomic_store(&chain.bad, 0);
    chain.gate = c->prebuilt ? &g : NULL;
    weft_future *prev = NULL;
    for (long i = 0; i < c->n; i++) {
        weft_future *f;
        int rc = weft_submit_after(c->rt, link_fn, (void *)(intptr_t)i, &prev,
                                   prev ? 1 : 0, NULL, &f);
        if (rc) {
            gate_open(&g);
            return rc;
        }
        if (prev)
            weft_future_release(prev);
        prev = f;
    }
    gate_open(&g);
    void *v = NULL;
    c->rc = weft_future_get(prev, LONG_WAIT, &v);
    c->last = (long)(intptr_t)v;
    if (c->rc == WEFT_STATUS_DEP_FAILED(0))
        c->rc = weft_future_cause(prev) == -EIO ? 1 : -EPROTO;
    weft_future_release(prev);
    chain.gate = NULL;
    return 0;
}

static int build_chain_task(void *arg) { return build_chain(arg); }

static long chain_len(void) { return 1000000 / test_scale(); }

static void run_chain(int workers, int on_worker, int prebuilt)
{
    weft_runtime *rt = test_runtime(workers, NULL); /* default stacks */
    assert_non_null(rt);
    struct chain_run c = { rt, chain_len(), prebuilt, 99, -1 };
    int64_t t0 = now_ns();
    if (on_worker)
        assert_int_equal(weft_run(rt, build_chain_task, &c), 0);
    else
        assert_int_equal(build_chain(&c), 0);
    print_message("chain of %ld, %d workers, %s, %s: %.0f ms\n", c.n, workers,
                  on_worker ? "on a worker" : "outside",
                  prebuilt ? "built before it runs" : "runs as built",
                  (double)(now_ns() - t0) / MS);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.last, c.n - 1);
    assert_int_equal(atomic_load(&chain.next), c.n);
    assert_int_equal(atomic_load(&chain.bad), 0);
    weft_runtime_destroy(&rt);
}

static void test_chain_outside(void **s)
{
    (void)s;
    run_chain(2, 0, 0);
}

static void test_chain_on_worker(void **s)
{
    (void)s;
    run_chain(2, 1, 0);
}

static void test_chain_prebuilt_outside(void **s)
{
    (void)s;
    run_chain(2, 0, 1);
}

static void test_chain_prebuilt_on_worker(void **s)
{
    (void)s;
    run_chain(1, 1, 1); /* the one worker runs it all while it waits */
}

/* The head fails after the whole chain is built: every link fails by its
 * dependency, none runs, and the last one still names the root cause
 * although every link before it was released long ago. */
static void test_chain_failure(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    chain.fail_head = 1;
    struct chain_run c = { rt, chain_len(), 1, 99, -1 };
    assert_int_equal(build_chain(&c), 0);
    chain.fail_head = 0;
    assert_int_equal(c.rc, 1); /* DEP_FAILED(0) with cause -EIO */
    assert_int_equal(atomic_load(&chain.next), 0);
    weft_runtime_destroy(&rt);
}

/* One future, many dependants waiting on it. */
static _Atomic long fan_ran;

static int fan_fn(weft_job *job, void *arg)
{
    void *v = NULL;
    if (weft_job_dep(job, 0, &v) == 0 && v == arg)
        atomic_fetch_add(&fan_ran, 1);
    return 0;
}

static int head_fn(weft_job *job, void *arg)
{
    struct gate *g = arg;
    if (gate_wait_open(g))
        return -ETIMEDOUT;
    return weft_job_set_result(job, g, NULL);
}

static void test_fan_out(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int n = 200000 / test_scale();
    weft_future **fs = calloc((size_t)n, sizeof *fs);
    assert_non_null(fs);
    struct gate g = { 0 };
    weft_future *head;
    atomic_store(&fan_ran, 0);
    assert_int_equal(weft_submit(rt, head_fn, &g, NULL, &head), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(weft_submit_after(rt, fan_fn, &g, &head, 1, NULL,
                                           &fs[i]), 0);
    weft_future_release(head);
    gate_open(&g);
    assert_int_equal(weft_wait(fs, (size_t)n, (size_t)n, LONG_WAIT, NULL,
                               NULL), 0);
    for (int i = 0; i < n; i++)
        weft_future_release(fs[i]);
    assert_int_equal(atomic_load(&fan_ran), n);
    free(fs);
    weft_runtime_destroy(&rt);
}

/* --- many futures from one task ------------------------------------- */

/* A task on the only worker submits and collects a great many futures:
 * one at a time (each get runs the future in place), and in batches
 * collected newest first and oldest first. */
static int square(weft_job *job, void *arg)
{
    long v = (long)(intptr_t)arg;
    return weft_job_set_result(job, (void *)(intptr_t)(v * v % 1000003), NULL);
}

struct many { weft_runtime *rt; long n; long bad; };

static int submit_many(void *a)
{
    struct many *m = a;
    for (long i = 0; i < m->n; i++) {
        weft_future *f;
        void *v = NULL;
        if (weft_submit(m->rt, square, (void *)(intptr_t)i, NULL, &f))
            return -ENOMEM;
        if (weft_future_get(f, -1, &v) != 0 ||
            (intptr_t)v != (intptr_t)(i * i % 1000003))
            m->bad++;
        weft_future_release(f);
    }
    enum { K = 256 };
    weft_future *fs[K];
    for (long base = 0; base < m->n; base += K) {
        for (int i = 0; i < K; i++)
            if (weft_submit(m->rt, square, (void *)(intptr_t)(base + i), NULL,
                            &fs[i]))
                return -ENOMEM;
        for (int k = 0; k < K; k++) {
            int i = (base / K) % 2 ? k : K - 1 - k;
            void *v = NULL;
            long x = base + i;
            if (weft_future_get(fs[i], -1, &v) != 0 ||
                (intptr_t)v != (intptr_t)(x * x % 1000003))
                m->bad++;
            weft_future_release(fs[i]);
        }
    }
    return 0;
}

static void test_many_from_one_task(void **s)
{
    (void)s;
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        struct many m = { rt, 200000 / test_scale(), 0 };
        assert_int_equal(weft_run(rt, submit_many, &m), 0);
        assert_int_equal(m.bad, 0);
        weft_runtime_destroy(&rt);
    }
}

/* --- 16 outside threads ----------------------------------------------- */

#define NTH 16
#define BATCH 64

struct th {
    weft_runtime *rt;
    int id;
    int n;
    _Atomic int *count; /* this thread's slots */
    int err;
};

static int mark(weft_job *job, void *arg)
{
    _Atomic int *slot = arg;
    atomic_fetch_add(slot, 1);
    return weft_job_set_result(job, arg, NULL);
}

static void *submitter(void *a)
{
    struct th *t = a;
    weft_future *fs[BATCH];
    size_t ready[BATCH], nready;
    for (int base = 0; base < t->n; base += BATCH) {
        int m = t->n - base < BATCH ? t->n - base : BATCH;
        for (int i = 0; i < m; i++) {
            void *arg = (void *)&t->count[base + i];
            int rc;
            if (i % 4 == 3) /* a dependant of the one before */
                rc = weft_submit_after(t->rt, mark, arg, &fs[i - 1], 1, NULL,
                                       &fs[i]);
            else
                rc = weft_submit(t->rt, mark, arg, NULL, &fs[i]);
            if (rc) {
                t->err = rc;
                return NULL;
            }
        }
        switch ((base / BATCH) % 3) {
        case 0: /* wait for all, then look */
            if (weft_wait(fs, (size_t)m, (size_t)m, LONG_WAIT, ready,
                          &nready) || nready != (size_t)m)
                t->err = -EPROTO;
            break;
        case 1: /* wait for some, then get in reverse */
            if (weft_wait(fs, (size_t)m, 1, LONG_WAIT, ready, &nready) ||
                nready < 1)
                t->err = -EPROTO;
            break;
        default: { /* get each with a short timeout until done */
            int64_t end = now_ns() + LONG_WAIT;
            for (int i = 0; i < m; i++)
                while (weft_future_get(fs[i], 1 * MS, NULL) == -ETIMEDOUT)
                    if (now_ns() > end) {
                        t->err = -ETIMEDOUT;
                        return NULL;
                    }
        }
        }
        if (t->err)
            return NULL;
        for (int i = m - 1; i >= 0; i--) {
            void *v = NULL;
            if (weft_future_get(fs[i], LONG_WAIT, &v) != 0 ||
                v != (void *)&t->count[base + i]) {
                t->err = -EPROTO;
                return NULL;
            }
            if (weft_future_release(fs[i]) != 0)
                t->err = -EPROTO;
        }
    }
    return NULL;
}

static void test_sixteen_submitters(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int n = 4000 / test_scale();
    _Atomic int *count = calloc((size_t)NTH * (size_t)n, sizeof *count);
    assert_non_null(count);
    pthread_t th[NTH];
    struct th t[NTH];
    for (int i = 0; i < NTH; i++) {
        t[i] = (struct th){ rt, i, n, count + (size_t)i * (size_t)n, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, submitter, &t[i]), 0);
    }
    for (int i = 0; i < NTH; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(t[i].err, 0);
    }
    weft_runtime_destroy(&rt);
    for (long i = 0; i < (long)NTH * n; i++)
        if (atomic_load(&count[i]) != 1)
            fail_msg("task %ld ran %d times", i, atomic_load(&count[i]));
    free(count);
}

/* 16 threads wait on the same future (get or wait, each with its own
 * reference) while it is held; all see the same result. */
struct shared { weft_future *f; int how; int rc; void *v; };

static void *shared_waiter(void *a)
{
    struct shared *x = a;
    if (x->how == 0) {
        x->rc = weft_future_get(x->f, -1, &x->v);
    } else {
        size_t ready[1], nready = 0;
        x->rc = weft_wait(&x->f, 1, 1, -1, ready, &nready);
        if (x->rc == 0 && (nready != 1 || ready[0] != 0))
            x->rc = -EPROTO;
        if (x->rc == 0)
            x->rc = weft_future_get(x->f, 0, &x->v);
    }
    weft_future_release(x->f);
    return NULL;
}

static void test_sixteen_waiters(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 50 / test_scale(); rep++) {
        struct gate g = { 0 };
        weft_future *f;
        assert_int_equal(weft_submit(rt, head_fn, &g, NULL, &f), 0);
        pthread_t th[NTH];
        struct shared x[NTH];
        for (int i = 0; i < NTH; i++) {
            assert_int_equal(weft_future_retain(f), 0);
            x[i] = (struct shared){ f, i % 2, 1, NULL };
            assert_int_equal(pthread_create(&th[i], NULL, shared_waiter, &x[i]),
                             0);
        }
        if (rep % 2)
            sleep_ns(1 * MS);
        gate_open(&g);
        for (int i = 0; i < NTH; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(x[i].rc, 0);
            assert_ptr_equal(x[i].v, &g);
        }
        weft_future_release(f);
    }
    weft_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_outside),
        cmocka_unit_test(test_chain_on_worker),
        cmocka_unit_test(test_chain_prebuilt_outside),
        cmocka_unit_test(test_chain_prebuilt_on_worker),
        cmocka_unit_test(test_chain_failure),
        cmocka_unit_test(test_fan_out),
        cmocka_unit_test(test_many_from_one_task),
        cmocka_unit_test(test_sixteen_submitters),
        cmocka_unit_test(test_sixteen_waiters),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
