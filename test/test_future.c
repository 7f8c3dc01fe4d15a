/* Futures: submit and get from inside tasks and from outside threads;
 * results and their destructors (exactly once, never after a take);
 * retain/release counting; retries counted exactly; names; bad input,
 * released handles and foreign runtimes; priorities; NUMA preference;
 * destroying a runtime with futures still queued. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "internal.h"
#include "test_future_util.h"

/* --- submit / get ------------------------------------------------------ */

static int square(weft_job *job, void *arg)
{
    long *v = malloc(sizeof *v);
    if (!v)
        return -ENOMEM;
    *v = (long)(intptr_t)arg * (long)(intptr_t)arg;
    return weft_job_set_result(job, v, free);
}

static void test_submit_get_outside(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_future *f = NULL;
    assert_int_equal(weft_submit(rt, square, (void *)7, NULL, &f), 0);
    assert_non_null(f);
    void *v = NULL;
    assert_int_equal(weft_future_get(f, -1, &v), 0);
    assert_non_null(v);
    assert_int_equal(*(long *)v, 49);
    assert_int_equal(weft_future_done(f), 1);
    assert_int_equal(weft_future_attempts(f), 1);
    assert_int_equal(weft_future_cause(f), 0);
    assert_null(weft_future_name(f));
    /* get again: same borrowed result; NULL result pointer is allowed */
    void *v2 = NULL;
    assert_int_equal(weft_future_get(f, 0, &v2), 0);
    assert_ptr_equal(v, v2);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_release(f), 0);

    /* many at once, collected in reverse order */
    enum { N = 2000 };
    weft_future **fs = calloc(N, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_submit(rt, square, (void *)(intptr_t)i, NULL,
                                     &fs[i]), 0);
    for (int i = N - 1; i >= 0; i--) {
        assert_int_equal(weft_future_get(fs[i], -1, &v), 0);
        assert_int_equal(*(long *)v, (long)i * i);
        assert_int_equal(weft_future_release(fs[i]), 0);
    }
    free(fs);
    weft_runtime_destroy(&rt);
}

/* Outside threads keep a cache of future slots per thread: it goes back
 * to its pool when the thread exits and is dropped when the thread turns
 * to another runtime, or finds its runtime destroyed (ASan sees a slot
 * used after its slab was freed). Two runtimes at once, threads that come
 * and go, and the main thread switching between runtimes and across
 * runtimes destroyed and created again. (A new pool at a freed pool's
 * address is told apart by its id; this test cannot force that address
 * reuse.) */
static void *outside_burst(void *arg)
{
    weft_runtime *rt = arg;
    for (int i = 0; i < 300; i++) {
        weft_future *f;
        if (weft_submit(rt, square, (void *)(intptr_t)i, NULL, &f) != 0)
            return (void *)1;
        void *v;
        if (weft_future_get(f, -1, &v) != 0 || *(long *)v != (long)i * i)
            return (void *)2;
        weft_future_release(f);
    }
    return NULL;
}

static void test_outside_slot_caches(void **s)
{
    (void)s;
    for (int round = 0; round < 12; round++) {
        weft_runtime *rt[2];
        rt[0] = test_runtime(2, NULL);
        rt[1] = test_runtime(1, NULL);
        assert_non_null(rt[0]);
        assert_non_null(rt[1]);
        /* the main thread alternates between the two pools */
        for (int i = 0; i < 4; i++)
            assert_null(outside_burst(rt[i % 2]));
        pthread_t t[4];
        for (int k = 0; k < 4; k++)
            assert_int_equal(pthread_create(&t[k], NULL, outside_burst,
                                            rt[k % 2]), 0);
        for (int k = 0; k < 4; k++) {
            void *r;
            pthread_join(t[k], &r);
            assert_null(r);
        }
        weft_runtime_destroy(&rt[round % 2]);
        weft_runtime_destroy(&rt[1 - round % 2]);
    }
}

/* Inside a task: submit, get (the worker helps while it waits) and check
 * what the job reports about itself. */
struct inside { weft_runtime *rt; int n; int bad; };

static int check_job(weft_job *job, void *arg)
{
    struct inside *in = arg;
    if (weft_job_runtime(job) != in->rt || weft_current_runtime() != in->rt ||
        weft_worker_index() < 0 || weft_job_attempt(job) != 0 ||
        weft_job_ndeps(job) != 0 || weft_job_cancelled(job) != 0 ||
        weft_job_dep(job, 0, NULL) != -ERANGE)
        return -EPROTO;
    return 0;
}

static int submit_inside(void *arg)
{
    struct inside *in = arg;
    weft_future **fs = calloc((size_t)in->n, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    for (int i = 0; i < in->n; i++)
        if (weft_submit(in->rt, square, (void *)(intptr_t)i, NULL, &fs[i]))
            in->bad++;
    for (int i = 0; i < in->n; i++) {
        void *v = NULL;
        if (!fs[i])
            continue;
        if (weft_future_get(fs[i], -1, &v) != 0 || !v ||
            *(long *)v != (long)i * i)
            in->bad++;
        weft_future_release(fs[i]);
    }
    free(fs);
    weft_future *f;
    if (weft_submit(in->rt, check_job, in, NULL, &f))
        return -1;
    int st = weft_future_get(f, -1, NULL);
    weft_future_release(f);
    return st;
}

/* fib through futures: each call submits its two children and gets them,
 * so waiting tasks nest; on one worker this needs waiting to run work. */
struct ffib { weft_runtime *rt; int n; };

static int fut_fib(weft_job *job, void *arg)
{
    int n = (int)(intptr_t)arg;
    if (n < 2)
        return weft_job_set_result(job, (void *)(intptr_t)n, NULL);
    weft_runtime *rt = weft_job_runtime(job);
    weft_future *a, *b;
    if (weft_submit(rt, fut_fib, (void *)(intptr_t)(n - 1), NULL, &a))
        return -ENOMEM;
    if (weft_submit(rt, fut_fib, (void *)(intptr_t)(n - 2), NULL, &b)) {
        weft_future_release(a);
        return -ENOMEM;
    }
    void *ra = NULL, *rb = NULL;
    int sa = weft_future_get(b, -1, &rb); /* the later one first */
    int sb = weft_future_get(a, -1, &ra);
    weft_future_release(a);
    weft_future_release(b);
    if (sa || sb)
        return sa ? sa : sb;
    return weft_job_set_result(job, (void *)((intptr_t)ra + (intptr_t)rb),
                               NULL);
}

static int fib_from_task(void *arg)
{
    struct ffib *c = arg;
    weft_future *f;
    if (weft_submit(c->rt, fut_fib, (void *)(intptr_t)c->n, NULL, &f))
        return -1;
    void *r = NULL;
    int st = weft_future_get(f, -1, &r);
    weft_future_release(f);
    return st ? st : (int)(intptr_t)r;
}

static void test_submit_get_inside(void **s)
{
    (void)s;
    for (int w = 1; w <= 3; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        struct inside in = { .rt = rt, .n = 500 };
        assert_int_equal(weft_run(rt, submit_inside, &in), 0);
        assert_int_equal(in.bad, 0);
        struct ffib c = { .rt = rt, .n = 16 };
        assert_int_equal(weft_run(rt, fib_from_task, &c), 987);
        /* and from outside, the same nested fib */
        weft_future *f;
        assert_int_equal(weft_submit(rt, fut_fib, (void *)(intptr_t)15,
                                     NULL, &f), 0);
        void *r = NULL;
        assert_int_equal(weft_future_get(f, -1, &r), 0);
        assert_int_equal((intptr_t)r, 610);
        weft_future_release(f);
        weft_runtime_destroy(&rt);
    }
}

/* Thieves back off from a victim whose stolen jobs are tiny (the owner
 * usually runs them faster itself). They must still take them when the
 * owner never will: a task submits many empty jobs and then busy-waits,
 * without helping, until thieves have run every one. A thief that skipped
 * such a victim for good would hang this test (and meson's timeout would
 * fail it). Run twice: the second round starts with the thieves' back-off
 * at its longest. */
struct starve {
    weft_runtime *rt;
    int n;
    _Atomic int ran;
    int timed_out;
};

static int starve_job(weft_job *job, void *arg)
{
    (void)job;
    atomic_fetch_add(&((struct starve *)arg)->ran, 1);
    return 0;
}

static int starve_root(void *arg)
{
    struct starve *st = arg;
    weft_future **fs = calloc((size_t)st->n, sizeof *fs);
    if (!fs)
        return -ENOMEM;
    atomic_store(&st->ran, 0);
    for (int i = 0; i < st->n; i++)
        if (weft_submit(st->rt, starve_job, st, NULL, &fs[i]) != 0)
            return -EIO;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&st->ran) < st->n) { /* no weft call: no helping */
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 20) {
            st->timed_out = 1;
            break;
        }
    }
    for (int i = 0; i < st->n; i++) {
        weft_future_get(fs[i], -1, NULL);
        weft_future_release(fs[i]);
    }
    free(fs);
    return 0;
}

static void test_tiny_jobs_not_starved(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct starve st = { .rt = rt, .n = 20000 / test_scale() };
    for (int round = 0; round < 2; round++) {
        assert_int_equal(weft_run(rt, starve_root, &st), 0);
        assert_int_equal(st.timed_out, 0);
        assert_int_equal(atomic_load(&st.ran), st.n);
    }
    weft_runtime_destroy(&rt);
}

/* Statuses the task returns itself, including the codes that the runtime
 * also uses: weft_future_done() tells them apart. */
static void test_task_status(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    const int codes[] = { 0, 1, 5, -EIO, -ECANCELED, -ETIMEDOUT, 12345 };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        weft_future *f;
        assert_int_equal(weft_submit(rt, ret_fn, (void *)(intptr_t)codes[i],
                                     NULL, &f), 0);
        void *r = (void *)1;
        assert_int_equal(weft_future_get(f, -1, &r), codes[i]);
        assert_null(r); /* the task set no result */
        assert_int_equal(weft_future_done(f), 1);
        assert_int_equal(weft_future_cause(f), codes[i]);
        assert_int_equal(weft_future_attempts(f), 1);
        assert_int_equal(weft_future_cancel(f), -EALREADY);
        assert_int_equal(weft_future_get(f, -1, NULL), codes[i]);
        assert_int_equal(weft_future_release(f), 0);
    }
    weft_runtime_destroy(&rt);
}

/* get with a timeout on work that cannot finish yet. */
static void test_get_timeout(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct gate g = { .rc = 3 };
    weft_future *f;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &f), 0);
    void *r = (void *)1;
    assert_int_equal(weft_future_get(f, 0, &r), -ETIMEDOUT);
    assert_int_equal(weft_future_done(f), 0);
    assert_int_equal(weft_future_cause(f), -ETIMEDOUT);
    assert_int_equal(gate_wait_entered(&g, 1), 0);
    assert_int_equal(weft_future_get(f, 0, NULL), -ETIMEDOUT);
    int64_t t0 = now_ns();
    assert_int_equal(weft_future_get(f, 20 * MS, NULL), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    assert_true(dt >= 20 * MS);
    assert_int_equal(weft_future_done(f), 0);
    gate_open(&g);
    assert_int_equal(weft_future_get(f, -1, &r), 3);
    assert_null(r);
    assert_int_equal(weft_future_done(f), 1);
    weft_future_release(f);
    weft_runtime_destroy(&rt);
}

/* --- results and destructors ------------------------------------------ */

static _Atomic long g_dtors;

static int make_val(weft_job *job, void *arg)
{
    return set_val(job, (long)(intptr_t)arg, &g_dtors);
}

/* Results nobody collects: each is destroyed exactly once, when the task
 * is done and the caller's reference is gone (in either order). */
static void test_uncollected_results(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    enum { N = 3000 };
    atomic_store(&g_dtors, 0);
    for (int i = 0; i < N; i++) {
        weft_future *f;
        assert_int_equal(weft_submit(rt, make_val, (void *)(intptr_t)i, NULL,
                                     &f), 0);
        if (i % 2) /* half released at once, half after they are done */
            assert_int_equal(weft_future_release(f), 0);
        else {
            assert_int_equal(weft_future_get(f, -1, NULL), 0);
            assert_int_equal(weft_future_release(f), 0);
        }
    }
    /* the last reference of a queued future is the runtime's */
    assert_int_equal(wait_count(&g_dtors, N, 30000), 0);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&g_dtors), N);
}

static void test_get_release_take(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_dtors, 0);

    /* get borrows: the destructor runs at the release, not before */
    weft_future *f;
    assert_int_equal(weft_submit(rt, make_val, (void *)11, NULL, &f), 0);
    void *r = NULL;
    assert_int_equal(weft_future_get(f, -1, &r), 0);
    assert_int_equal(val_of(r), 11);
    assert_int_equal(atomic_load(&g_dtors), 0);
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(atomic_load(&g_dtors), 1);

    /* take moves the result out: the release does not destroy it */
    assert_int_equal(weft_submit(rt, make_val, (void *)12, NULL, &f), 0);
    r = NULL;
    assert_int_equal(weft_future_take(f, &r), 0);
    assert_int_equal(val_of(r), 12);
    void *again = (void *)1;
    assert_int_equal(weft_future_take(f, &again), 0);
    assert_null(again); /* a second take gives NULL */
    void *got = (void *)1;
    assert_int_equal(weft_future_get(f, -1, &got), 0);
    assert_null(got); /* the future forgot it */
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(atomic_load(&g_dtors), 1);
    val_dtor(r); /* ours now */
    assert_int_equal(atomic_load(&g_dtors), 2);

    /* get without a result pointer, then release: destroyed once */
    assert_int_equal(weft_submit(rt, make_val, (void *)13, NULL, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(atomic_load(&g_dtors), 3);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&g_dtors), 3);
}

/* Setting the result twice destroys the first value at once; a failed
 * task keeps its result; a NULL destructor is never called. */
static _Atomic long twice_seen;

static int set_twice(weft_job *job, void *arg)
{
    (void)arg;
    long before = atomic_load(&g_dtors);
    int rc = set_val(job, 1, &g_dtors);
    if (rc)
        return rc;
    rc = set_val(job, 2, &g_dtors);
    if (rc)
        return rc;
    atomic_store(&twice_seen, atomic_load(&g_dtors) - before);
    return 0;
}

static int set_and_fail(weft_job *job, void *arg)
{
    (void)arg;
    int rc = set_val(job, 77, &g_dtors);
    return rc ? rc : -EIO;
}

static int set_plain(weft_job *job, void *arg)
{
    return weft_job_set_result(job, arg, NULL);
}

static void test_result_replace(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_dtors, 0);
    weft_future *f;
    assert_int_equal(weft_submit(rt, set_twice, NULL, NULL, &f), 0);
    void *r = NULL;
    assert_int_equal(weft_future_get(f, -1, &r), 0);
    assert_int_equal(val_of(r), 2);
    assert_int_equal(atomic_load(&twice_seen), 1);
    assert_int_equal(atomic_load(&g_dtors), 1);
    weft_future_release(f);
    /* (that the release itself destroys it: test_release_after_done) */
    assert_int_equal(wait_count(&g_dtors, 2, 30000), 0);
    assert_int_equal(atomic_load(&g_dtors), 2);

    assert_int_equal(weft_submit(rt, set_and_fail, NULL, NULL, &f), 0);
    r = NULL;
    assert_int_equal(weft_future_get(f, -1, &r), -EIO);
    assert_int_equal(val_of(r), 77);
    weft_future_release(f);
    assert_int_equal(wait_count(&g_dtors, 3, 30000), 0);
    assert_int_equal(atomic_load(&g_dtors), 3);

    static int plain;
    assert_int_equal(weft_submit(rt, set_plain, &plain, NULL, &f), 0);
    assert_int_equal(weft_future_get(f, -1, &r), 0);
    assert_ptr_equal(r, &plain);
    weft_future_release(f);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&g_dtors), 3);
}

/* Once get() has returned, the runtime holds no reference any more (the
 * work is neither queued nor running): the caller's release is the last,
 * so the result is destroyed by it, at once, and the handle is dead. */
static void test_release_after_done(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_dtors, 0);
    int n = 20000 / test_scale(), late = 0, alive = 0;
    for (int i = 0; i < n; i++) {
        weft_future *f;
        assert_int_equal(weft_submit(rt, make_val, (void *)(intptr_t)i, NULL,
                                     &f), 0);
        void *r = NULL;
        assert_int_equal(weft_future_get(f, -1, &r), 0);
        assert_int_equal(val_of(r), i);
        long before = atomic_load(&g_dtors);
        assert_int_equal(weft_future_release(f), 0);
        late += atomic_load(&g_dtors) == before;
        alive += weft_future_done(f) != -EINVAL;
    }
    print_message("of %d: %d results outlived the last release, %d handles "
                  "stayed valid after it\n", n, late, alive);
    /* A second release of the same handle must be -EINVAL. Were it
     * accepted, it would drop a reference the runtime still holds, and
     * the slot's next user would lose one: stop at the first. */
    int accepted = -1;
    for (int i = 0; i < n && accepted < 0; i++) {
        weft_future *f;
        assert_int_equal(weft_submit(rt, nop_fn, NULL, NULL, &f), 0);
        assert_int_equal(weft_future_get(f, -1, NULL), 0);
        assert_int_equal(weft_future_release(f), 0);
        if (weft_future_release(f) != -EINVAL)
            accepted = i;
    }
    if (accepted >= 0) {
        print_message("a second release was accepted at iteration %d\n",
                      accepted);
        sleep_ns(50 * MS); /* let the runtime drop what it held */
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(late, 0);
    assert_int_equal(alive, 0);
    assert_int_equal(accepted, -1);
    assert_int_equal(atomic_load(&g_dtors), n);
}

/* A release that leaves only the queue entry's reference must not touch
 * the future after letting go: the entry's holder may complete and free
 * it, and another future take the slot. Forced with the release hook
 * (internal.h): the caller's release of f1 (a task held at a gate) stalls
 * just after its decrement while the only worker finishes f1, frees its
 * slot, and runs t2, which takes that slot for f3 and completes it with
 * a result. The release must not destroy f3's result (before the fix it
 * did, reading the new future's state as f1's). */
static struct {
    pthread_t releaser;
    _Atomic int armed;
    struct gate g1;  /* holds f1's task */
    struct gate g3;  /* t2, with f3 done, waits here */
    weft_future *f3;
    long f3_val;
} rr;

static int gated_val(weft_job *job, void *arg)
{
    if (gate_wait_open(&rr.g1))
        return -ETIMEDOUT;
    return set_val(job, (long)(intptr_t)arg, &g_dtors);
}

static int reuse_slot(weft_job *job, void *arg)
{
    (void)arg;
    int rc = weft_submit(weft_job_runtime(job), make_val, (void *)3, NULL,
                         &rr.f3);
    void *v = NULL;
    if (rc || (rc = weft_future_get(rr.f3, -1, &v)))
        return rc;
    atomic_fetch_add(&rr.g3.entered, 1);
    if (gate_wait_open(&rr.g3))
        return -ETIMEDOUT;
    /* still ours: only our release may destroy it */
    weft_future_get(rr.f3, 0, &v);
    rr.f3_val = v ? val_of(v) : -1;
    return weft_future_release(rr.f3);
}

static void stall_release(void)
{
    if (!pthread_equal(pthread_self(), rr.releaser) ||
        !atomic_exchange(&rr.armed, 0))
        return;
    gate_open(&rr.g1);
    gate_wait_entered(&rr.g3, 1);
}

static void test_release_leaves_entry(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    memset(&rr, 0, sizeof rr);
    atomic_store(&g_dtors, 0);
    rr.releaser = pthread_self();
    weft_future *f1, *f2;
    assert_int_equal(weft_submit(rt, gated_val, (void *)1, NULL, &f1), 0);
    assert_int_equal(weft_submit(rt, reuse_slot, NULL, NULL, &f2), 0);
    atomic_store(&weft__fut_unref_hook, stall_release);
    atomic_store(&rr.armed, 1);
    assert_int_equal(weft_future_release(f1), 0);
    atomic_store(&weft__fut_unref_hook, NULL);
    assert_int_equal(atomic_load(&rr.armed), 0); /* the hook ran */
    assert_int_equal(atomic_load(&rr.g3.entered), 1);
    /* f3 took f1's slot (the worker's slot cache is LIFO): the case */
    uintptr_t mask = ((uintptr_t)1 << 48) - 1;
    assert_int_equal((uintptr_t)rr.f3 & mask, (uintptr_t)f1 & mask);
    assert_int_equal(atomic_load(&g_dtors), 1); /* f1's, not f3's */
    gate_open(&rr.g3);
    assert_int_equal(weft_future_get(f2, LONG_WAIT, NULL), 0);
    assert_int_equal(rr.f3_val, 3);
    assert_int_equal(weft_future_release(f2), 0);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&g_dtors), 2);
}

/* --- retain / release --------------------------------------------------- */

struct rr { weft_future *f; int n; int bad; };

static void *retain_release_loop(void *a)
{
    struct rr *x = a;
    for (int i = 0; i < x->n; i++) {
        if (weft_future_retain(x->f) != 0)
            x->bad++;
        void *r = NULL;
        if (weft_future_get(x->f, 0, &r) != 0 || val_of(r) != 5)
            x->bad++;
        if (weft_future_release(x->f) != 0)
            x->bad++;
    }
    return NULL;
}

static void test_retain_release(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_dtors, 0);
    weft_future *f;
    assert_int_equal(weft_submit(rt, make_val, (void *)5, NULL, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_retain(f), 0);
    assert_int_equal(weft_future_retain(f), 0); /* 3 references */

    /* 4 threads retain and release at once: no net change */
    pthread_t th[4];
    struct rr x[4];
    for (int i = 0; i < 4; i++) {
        x[i] = (struct rr){ .f = f, .n = 20000 / test_scale() };
        assert_int_equal(pthread_create(&th[i], NULL, retain_release_loop,
                                        &x[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(x[i].bad, 0);
    }
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(atomic_load(&g_dtors), 0); /* one reference left */
    void *r = NULL;
    assert_int_equal(weft_future_get(f, -1, &r), 0);
    assert_int_equal(val_of(r), 5);
    assert_int_equal(weft_future_release(f), 0); /* the last */
    assert_int_equal(wait_count(&g_dtors, 1, 30000), 0);
    assert_int_equal(atomic_load(&g_dtors), 1);
    assert_int_equal(weft_future_release(f), -EINVAL);
    assert_int_equal(weft_future_retain(f), -EINVAL);
    assert_int_equal(atomic_load(&g_dtors), 1);

    /* a queued future released early still runs; a retained reference
     * keeps it alive past the submitter's release */
    struct gate g = { .rc = 0 };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    weft_future *deps[1] = { blk };
    weft_future *h;
    assert_int_equal(weft_submit_after(rt, make_val, (void *)6, deps, 1, NULL,
                                       &h), 0);
    assert_int_equal(weft_future_retain(h), 0);
    assert_int_equal(weft_future_release(h), 0);
    assert_int_equal(weft_future_done(h), 0);
    gate_open(&g);
    assert_int_equal(weft_future_get(h, -1, &r), 0);
    assert_int_equal(val_of(r), 6);
    assert_int_equal(atomic_load(&g_dtors), 1);
    assert_int_equal(weft_future_release(h), 0);
    assert_int_equal(wait_count(&g_dtors, 2, 30000), 0);
    assert_int_equal(atomic_load(&g_dtors), 2);
    weft_future_release(blk);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&g_dtors), 2);
}

/* --- retries ---------------------------------------------------------- */

struct retry {
    int fail_first;  /* attempts 0..fail_first-1 fail */
    _Atomic int calls;
    int seen[16];    /* weft_job_attempt of each call, in call order */
    _Atomic long dtors;
};

static int flaky(weft_job *job, void *arg)
{
    struct retry *x = arg;
    int k = atomic_fetch_add(&x->calls, 1);
    int a = weft_job_attempt(job);
    if (k < 16)
        x->seen[k] = a;
    int rc = set_val(job, 100 + a, &x->dtors); /* a retry replaces it */
    if (rc)
        return rc;
    return k < x->fail_first ? -EIO - k : 0;
}

static int always_fails(weft_job *job, void *arg)
{
    (void)job;
    atomic_fetch_add((_Atomic long *)arg, 1);
    return -EIO;
}

static void test_retries(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    /* static: a destructor that ran late must not write to a dead frame */
    static struct retry xs[6][5];
    memset(xs, 0, sizeof xs);
    for (int m = 0; m <= 5; m++) {
        for (int r = 0; r <= 4; r++) {
            struct retry *xp = &xs[m][r];
            xp->fail_first = m;
            weft_submit_opts o = weft_submit_opts_default();
            o.max_retries = r;
            weft_future *f;
            assert_int_equal(weft_submit(rt, flaky, xp, &o, &f), 0);
            void *res = NULL;
            int st = weft_future_get(f, -1, &res);
            int want_calls = (m < r ? m : r) + 1;
            assert_int_equal(atomic_load(&xp->calls), want_calls);
            assert_int_equal(weft_future_attempts(f), want_calls);
            for (int i = 0; i < want_calls; i++)
                assert_int_equal(xp->seen[i], i);
            if (m <= r)
                assert_int_equal(st, 0);
            else /* the status of the last attempt */
                assert_int_equal(st, -EIO - (want_calls - 1));
            assert_int_equal(val_of(res), 100 + want_calls - 1);
            /* every replaced result was destroyed, once */
            assert_int_equal(atomic_load(&xp->dtors), want_calls - 1);
            weft_future_release(f);
            /* (that the release itself destroys it: test_release_after_done) */
            assert_int_equal(wait_count(&xp->dtors, want_calls, 30000), 0);
            assert_int_equal(atomic_load(&xp->dtors), want_calls);
        }
    }
    /* the largest retry count is accepted */
    static struct retry x;
    memset(&x, 0, sizeof x);
    x.fail_first = 3;
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = 65535;
    weft_future *f;
    assert_int_equal(weft_submit(rt, flaky, &x, &o, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_attempts(f), 4);
    weft_future_release(f);
    /* and used up: 65536 calls, all counted (a 16-bit counter wrapped to
     * 0 at the last) */
    static _Atomic long always_calls;
    atomic_store(&always_calls, 0);
    assert_int_equal(weft_submit(rt, always_fails, &always_calls, &o, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), -EIO);
    assert_int_equal(atomic_load(&always_calls), 65536);
    assert_int_equal(weft_future_attempts(f), 65536);
    weft_future_release(f);
    weft_runtime_destroy(&rt);
}

/* --- names ------------------------------------------------------------ */

static void test_names(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    static const char name[] = "my task";
    weft_submit_opts o = weft_submit_opts_default();
    assert_int_equal(o.max_retries, 0);
    assert_int_equal(o.numa_node, -1);
    assert_int_equal(o.priority, WEFT_PRIO_NORMAL);
    assert_int_equal(o.flags, 0);
    assert_null(o.name);
    o.name = name;
    weft_future *f;
    assert_int_equal(weft_submit(rt, nop_fn, NULL, &o, &f), 0);
    assert_ptr_equal(weft_future_name(f), name); /* not copied */
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_ptr_equal(weft_future_name(f), name);
    weft_future_release(f);
    weft_runtime_destroy(&rt);
}

/* --- bad input -------------------------------------------------------- */

static _Atomic long bad_ran;

static int count_run(weft_job *job, void *arg)
{
    (void)job;
    (void)arg;
    atomic_fetch_add(&bad_ran, 1);
    return 0;
}

static void expect_refused(weft_runtime *rt, const weft_submit_opts *o)
{
    weft_future *f = (weft_future *)1;
    assert_int_equal(weft_submit(rt, count_run, NULL, o, &f), -EINVAL);
    assert_null(f);
    f = (weft_future *)1;
    assert_int_equal(weft_submit_after(rt, count_run, NULL, NULL, 0, o, &f),
                     -EINVAL);
    assert_null(f);
}

static void test_bad_input(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&bad_ran, 0);
    weft_future *f = (weft_future *)1;
    assert_int_equal(weft_submit(NULL, count_run, NULL, NULL, &f), -EINVAL);
    assert_null(f);
    f = (weft_future *)1;
    assert_int_equal(weft_submit(rt, NULL, NULL, NULL, &f), -EINVAL);
    assert_null(f);
    assert_int_equal(weft_submit(rt, count_run, NULL, NULL, NULL), -EINVAL);
    f = (weft_future *)1;
    assert_int_equal(weft_submit_after(rt, NULL, NULL, NULL, 0, NULL, &f),
                     -EINVAL);
    assert_null(f);
    assert_int_equal(weft_submit_after(rt, count_run, NULL, NULL, 0, NULL,
                                       NULL), -EINVAL);

    /* options out of range */
    weft_submit_opts o = weft_submit_opts_default();
    o.max_retries = -1;
    expect_refused(rt, &o);
    o.max_retries = 65536;
    expect_refused(rt, &o);
    o = weft_submit_opts_default();
    o.priority = 7;
    expect_refused(rt, &o);
    o.priority = -1;
    expect_refused(rt, &o);
    o = weft_submit_opts_default();
    o.numa_node = -2;
    expect_refused(rt, &o);

    /* dependencies: NULL array, NULL entry, too many */
    weft_future *ok;
    assert_int_equal(weft_submit(rt, nop_fn, NULL, NULL, &ok), 0);
    f = (weft_future *)1;
    assert_int_equal(weft_submit_after(rt, count_run, NULL, NULL, 2, NULL,
                                       &f), -EINVAL);
    assert_null(f);
    weft_future *withnull[3] = { ok, NULL, ok };
    f = (weft_future *)1;
    assert_int_equal(weft_submit_after(rt, count_run, NULL, withnull, 3, NULL,
                                       &f), -EINVAL);
    assert_null(f);
    size_t many = (size_t)WEFT_MAX_DEPS + 1;
    weft_future **big = malloc(many * sizeof *big);
    assert_non_null(big);
    for (size_t i = 0; i < many; i++)
        big[i] = ok;
    f = (weft_future *)1;
    assert_int_equal(weft_submit_after(rt, count_run, NULL, big, many, NULL,
                                       &f), -EINVAL);
    assert_null(f);
    free(big);

    /* the calls on futures */
    assert_int_equal(weft_future_get(NULL, -1, NULL), -EINVAL);
    assert_int_equal(weft_future_get(NULL, 0, NULL), -EINVAL);
    void *r;
    assert_int_equal(weft_future_take(NULL, &r), -EINVAL);
    assert_int_equal(weft_future_done(NULL), -EINVAL);
    assert_int_equal(weft_future_cause(NULL), -EINVAL);
    assert_int_equal(weft_future_cancel(NULL), -EINVAL);
    assert_int_equal(weft_future_retain(NULL), -EINVAL);
    assert_int_equal(weft_future_release(NULL), -EINVAL);
    assert_null(weft_future_name(NULL));
    assert_int_equal(weft_job_set_result(NULL, NULL, NULL), -EINVAL);

    assert_int_equal(weft_future_get(ok, -1, NULL), 0);
    weft_future_release(ok);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&bad_ran), 0); /* nothing refused ran */
}

/* A handle whose last reference is gone: every call is -EINVAL, even
 * after its slot was reused by a newer future (ASan: no use after free). */
static void test_released_handle(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&bad_ran, 0);
    weft_future *f;
    assert_int_equal(weft_submit(rt, nop_fn, NULL, NULL, &f), 0);
    assert_int_equal(weft_future_get(f, -1, NULL), 0);
    assert_int_equal(weft_future_release(f), 0);
    for (int round = 0; round < 3; round++) {
        void *r = NULL;
        size_t ready[1], nready = 99;
        assert_int_equal(weft_future_get(f, -1, &r), -EINVAL);
        assert_int_equal(weft_future_get(f, 0, &r), -EINVAL);
        assert_int_equal(weft_future_take(f, &r), -EINVAL);
        assert_int_equal(weft_future_done(f), -EINVAL);
        assert_int_equal(weft_future_cause(f), -EINVAL);
        assert_int_equal(weft_future_cancel(f), -EINVAL);
        assert_int_equal(weft_future_retain(f), -EINVAL);
        assert_int_equal(weft_future_release(f), -EINVAL);
        assert_int_equal(weft_wait(&f, 1, 1, -1, ready, &nready), -EINVAL);
        weft_future *g = (weft_future *)1;
        assert_int_equal(weft_submit_after(rt, count_run, NULL, &f, 1, NULL,
                                           &g), -EINVAL);
        assert_null(g);
        /* new futures may take the freed slot: they work, f stays dead */
        weft_future *fresh[64];
        for (int i = 0; i < 64; i++)
            assert_int_equal(weft_submit(rt, nop_fn, NULL, NULL, &fresh[i]), 0);
        for (int i = 0; i < 64; i++) {
            assert_int_equal(weft_future_get(fresh[i], -1, NULL), 0);
            if (i % 2)
                assert_int_equal(weft_future_release(fresh[i]), 0);
        }
        for (int i = 0; i < 64; i += 2)
            assert_int_equal(weft_future_release(fresh[i]), 0);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&bad_ran), 0);
}

/* A dependency from another runtime is refused. */
static void test_foreign_dependency(void **s)
{
    (void)s;
    weft_runtime *a = test_runtime(1, NULL), *b = test_runtime(2, NULL);
    assert_non_null(a);
    assert_non_null(b);
    atomic_store(&bad_ran, 0);
    weft_future *fa, *fb;
    assert_int_equal(weft_submit(a, nop_fn, NULL, NULL, &fa), 0);
    assert_int_equal(weft_submit(b, nop_fn, NULL, NULL, &fb), 0);
    weft_future *deps[2] = { fb, fa };
    weft_future *g = (weft_future *)1;
    assert_int_equal(weft_submit_after(b, count_run, NULL, deps, 2, NULL, &g),
                     -EINVAL);
    assert_null(g);
    /* not done yet or done: the same answer */
    assert_int_equal(weft_future_get(fa, -1, NULL), 0);
    g = (weft_future *)1;
    assert_int_equal(weft_submit_after(b, count_run, NULL, &fa, 1, NULL, &g),
                     -EINVAL);
    assert_null(g);
    /* the same futures on their own runtime are fine */
    assert_int_equal(weft_submit_after(b, count_run, NULL, &fb, 1, NULL, &g),
                     0);
    assert_int_equal(weft_future_get(g, -1, NULL), 0);
    weft_future_release(g);
    /* and waiting on futures of two runtimes at once is fine too */
    size_t ready[2], nready = 0;
    assert_int_equal(weft_wait(deps, 2, 2, -1, ready, &nready), 0);
    assert_int_equal(nready, 2);
    weft_future_release(fa);
    weft_future_release(fb);
    weft_runtime_destroy(&a);
    weft_runtime_destroy(&b);
    assert_int_equal(atomic_load(&bad_ran), 1);
}

/* --- priority --------------------------------------------------------- */

struct order { _Atomic int next; int seq[256]; };
struct prio_arg { struct order *o; int id; };

static int record(weft_job *job, void *arg)
{
    (void)job;
    struct prio_arg *p = arg;
    p->o->seq[p->id] = atomic_fetch_add(&p->o->next, 1);
    return 0;
}

enum { NNORM = 40, NHIGH = 40 };

/* ids < NNORM are normal, the rest high; returns 0 when every high task
 * ran before every normal one */
static int check_high_first(struct order *o, int n)
{
    int max_high = -1, min_norm = 1 << 30;
    for (int i = 0; i < n; i++) {
        if (i < NNORM)
            min_norm = o->seq[i] < min_norm ? o->seq[i] : min_norm;
        else
            max_high = o->seq[i] > max_high ? o->seq[i] : max_high;
    }
    print_message("last high ran at %d, first normal at %d\n", max_high,
                  min_norm);
    return max_high < min_norm ? 0 : -1;
}

static int submit_mixed(weft_runtime *rt, struct prio_arg *args,
                        weft_future **fs, int interleave)
{
    for (int k = 0; k < NNORM + NHIGH; k++) {
        /* in order: all normal, then all high; else alternating */
        int i = interleave ? (k % 2 ? NNORM + k / 2 : k / 2) : k;
        weft_submit_opts o = weft_submit_opts_default();
        o.priority = i < NNORM ? WEFT_PRIO_NORMAL : WEFT_PRIO_HIGH;
        if (weft_submit(rt, record, &args[i], &o, &fs[i]))
            return -1;
    }
    return 0;
}

struct inside_prio { weft_runtime *rt; struct prio_arg *args; weft_future **fs; };

static int submit_mixed_inside(void *a)
{
    struct inside_prio *p = a;
    return submit_mixed(p->rt, p->args, p->fs, 1);
}

static void test_priority(void **s)
{
    (void)s;
    weft_config c = weft_config_default();
    c.workers = 1;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    for (int variant = 0; variant < 3; variant++) {
        struct order o = { 0 };
        struct prio_arg args[NNORM + NHIGH];
        weft_future *fs[NNORM + NHIGH];
        for (int i = 0; i < NNORM + NHIGH; i++)
            args[i] = (struct prio_arg){ &o, i };
        if (variant < 2) {
            /* block the only worker, queue from outside, release */
            struct gate g = { 0 };
            weft_future *blk;
            assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
            assert_int_equal(gate_wait_entered(&g, 1), 0);
            assert_int_equal(submit_mixed(rt, args, fs, variant), 0);
            gate_open(&g);
            assert_int_equal(weft_future_get(blk, -1, NULL), 0);
            weft_future_release(blk);
        } else {
            /* queued by a task on the only worker, alternating */
            struct inside_prio p = { rt, args, fs };
            assert_int_equal(weft_run(rt, submit_mixed_inside, &p), 0);
        }
        assert_int_equal(weft_wait(fs, NNORM + NHIGH, NNORM + NHIGH, -1,
                                   NULL, NULL), 0);
        for (int i = 0; i < NNORM + NHIGH; i++) {
            assert_int_equal(weft_future_get(fs[i], 0, NULL), 0);
            weft_future_release(fs[i]);
        }
        assert_int_equal(atomic_load(&o.next), NNORM + NHIGH);
        assert_int_equal(check_high_first(&o, NNORM + NHIGH), 0);
    }
    weft_runtime_destroy(&rt);
}

/* --- NUMA preference --------------------------------------------------- */

#define TOPO2 "package:2 numa:1 core:2 pu:1"

static int where(weft_job *job, void *arg)
{
    (void)job;
    *(int *)arg = weft_worker_index();
    return 0;
}

/* One experiment: `rounds` tasks per node, alternating nodes, each
 * submitted while the pool is idle (the worker that ran the previous one
 * may still be looking for work; the preferred node's workers have
 * nothing to do) and awaited before the next. Returns the share (percent)
 * that ran on the preferred node. */
static int numa_experiment(weft_runtime *rt, const int *node_of, int rounds)
{
    int hits = 0, total = 0;
    for (int r = 0; r < rounds; r++) {
        for (int node = 0; node < 2; node++) {
            weft_submit_opts o = weft_submit_opts_default();
            o.numa_node = node;
            int w = -1;
            weft_future *f;
            assert_int_equal(weft_submit(rt, where, &w, &o, &f), 0);
            assert_int_equal(weft_future_get(f, -1, NULL), 0);
            weft_future_release(f);
            assert_true(w >= 0 && w < 4);
            hits += node_of[w] == node;
            total++;
        }
    }
    return hits * 100 / total;
}

/* One runtime on the synthetic topology; spin_us as given. Returns the
 * best share over up to five experiments (stopping at the first >= 75%). */
static int numa_best_share(int spin_us)
{
    weft_config c = weft_config_default();
    c.topology = TOPO2;
    c.spin_us = spin_us;
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    assert_int_equal(weft_runtime_workers(rt), 4);
    weft_worker_stats st[4];
    assert_int_equal(weft_stats_workers(rt, st, 4), 4);
    int node_of[4], per_node[2] = { 0, 0 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(st[i].worker, i);
        assert_true(st[i].numa_node == 0 || st[i].numa_node == 1);
        node_of[i] = st[i].numa_node;
        per_node[node_of[i]]++;
    }
    assert_int_equal(per_node[0], 2);
    assert_int_equal(per_node[1], 2);

    /* A node number the topology lacks: refused, or accepted and run. */
    weft_submit_opts o = weft_submit_opts_default();
    o.numa_node = 2;
    weft_future *f = NULL;
    int rc = weft_submit(rt, nop_fn, NULL, &o, &f);
    assert_true(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        assert_int_equal(weft_future_get(f, -1, NULL), 0);
        weft_future_release(f);
    }

    int best = 0;
    for (int e = 0; e < 5 && best < 75; e++) {
        int share = numa_experiment(rt, node_of, 100 / test_scale() + 20);
        print_message("spin_us %d, experiment %d: %d%% on the preferred "
                      "node\n", spin_us, e, share);
        best = share > best ? share : best;
    }
    weft_runtime_destroy(&rt);
    return best;
}

/* A random placement would hit the node half the time: require 75% in
 * any of five experiments (4 workers share 2 cores here), with workers
 * that spin a while when idle (the default) and with workers that park
 * at once (spin_us = -1): idle either way. */
static void test_numa_preference(void **s)
{
    (void)s;
    int spinning = numa_best_share(0);
    int parking = numa_best_share(-1);
    /* Spinning workers of the other node take a job once it has waited
     * out the 100 us grace; under a sanitizer (WEFT_TEST_SCALE > 1) with
     * 4 workers on 2 cores the preferred node's workers are often not on
     * a CPU within it (CI measured 52-56% in five experiments under
     * TSan), so there the spinning case is a timing property this build
     * cannot show: its tasks still ran and were checked above. */
    if (test_scale() == 1)
        assert_true(spinning >= 75);
    assert_true(parking >= 75);
}

/* --- shutdown --------------------------------------------------------- */

/* destroy() with futures still queued: every task runs (its side effect
 * is seen), and the results of futures nobody released are freed (the
 * count here; LeakSanitizer for the memory). */
static _Atomic long side_effects;

static int slow_effect(weft_job *job, void *arg)
{
    if (arg) /* the first one holds the worker a while */
        sleep_ns(30 * MS);
    atomic_fetch_add(&side_effects, 1);
    return set_val(job, 1, &g_dtors);
}

static void test_destroy_with_queued(void **s)
{
    (void)s;
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        atomic_store(&side_effects, 0);
        atomic_store(&g_dtors, 0);
        enum { N = 400 };
        weft_future *fs[N];
        for (int i = 0; i < N; i++)
            assert_int_equal(weft_submit(rt, slow_effect,
                                         i < w ? (void *)1 : NULL, NULL,
                                         &fs[i]), 0);
        /* dataflow work queued behind them too */
        weft_future *tail;
        assert_int_equal(weft_submit_after(rt, slow_effect, NULL, fs, N,
                                           NULL, &tail), 0);
        for (int i = 0; i < N; i += 2) /* half released, half not */
            assert_int_equal(weft_future_release(fs[i]), 0);
        assert_int_equal(weft_runtime_destroy(&rt), 0);
        assert_null(rt);
        assert_int_equal(atomic_load(&side_effects), N + 1);
        assert_int_equal(atomic_load(&g_dtors), N + 1);
    }
}

/* While destroy waits, outside threads are refused (-ESHUTDOWN) but the
 * runtime's own tasks may still submit and wait. */
struct late { struct gate g; _Atomic int child_rc; weft_runtime *rt; };

static int submit_while_stopping(weft_job *job, void *arg)
{
    (void)job;
    struct late *l = arg;
    atomic_fetch_add(&l->g.entered, 1);
    if (gate_wait_open(&l->g))
        return -ETIMEDOUT;
    weft_future *f;
    int rc = weft_submit(l->rt, make_val, (void *)9, NULL, &f);
    if (rc == 0) {
        void *r = NULL;
        rc = weft_future_get(f, -1, &r);
        if (rc == 0 && val_of(r) != 9)
            rc = -EPROTO;
        weft_future_release(f);
    }
    atomic_store(&l->child_rc, rc);
    return 0;
}

static void *destroyer(void *a)
{
    weft_runtime *rt = a;
    weft_runtime_destroy(&rt);
    return NULL;
}

static void test_shutdown(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&g_dtors, 0);
    struct late l = { .rt = rt, .child_rc = 1 };
    weft_future *f;
    assert_int_equal(weft_submit(rt, submit_while_stopping, &l, NULL, &f), 0);
    assert_int_equal(gate_wait_entered(&l.g, 1), 0);
    weft_future_release(f);
    pthread_t d;
    assert_int_equal(pthread_create(&d, NULL, destroyer, rt), 0);
    while (atomic_load(&rt->stopping) == 0)
        sched_yield();
    weft_future *g = (weft_future *)1;
    assert_int_equal(weft_submit(rt, nop_fn, NULL, NULL, &g), -ESHUTDOWN);
    assert_null(g);
    gate_open(&l.g);
    pthread_join(d, NULL);
    assert_int_equal(atomic_load(&l.child_rc), 0);
    assert_int_equal(atomic_load(&g_dtors), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_get_outside),
        cmocka_unit_test(test_outside_slot_caches),
        cmocka_unit_test(test_submit_get_inside),
        cmocka_unit_test(test_tiny_jobs_not_starved),
        cmocka_unit_test(test_task_status),
        cmocka_unit_test(test_get_timeout),
        cmocka_unit_test(test_uncollected_results),
        cmocka_unit_test(test_get_release_take),
        cmocka_unit_test(test_result_replace),
        cmocka_unit_test(test_release_after_done),
        cmocka_unit_test(test_release_leaves_entry),
        cmocka_unit_test(test_retain_release),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_released_handle),
        cmocka_unit_test(test_foreign_dependency),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_numa_preference),
        cmocka_unit_test(test_destroy_with_queued),
        cmocka_unit_test(test_shutdown),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
