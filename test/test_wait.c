/* weft_wait, the first k of n: timeouts of 0 (just look), short (really
 * waits that long, not much longer) and infinite; the ready indices are
 * ascending and exactly the done futures; bad arguments; waiting inside a
 * task runs the awaited work instead of blocking the pool. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

enum { N = 6 };

/* Futures 1 and 4 finish at once; the others each wait on their own gate. */
struct fixture {
    weft_runtime *rt;
    struct gate g[N];
    weft_future *fs[N];
};

static int is_quick(int i) { return i == 1 || i == 4; }

static void setup_fixture(struct fixture *x)
{
    memset(x, 0, sizeof *x);
    x->rt = test_runtime(N, NULL); /* a worker for each gate */
    assert_non_null(x->rt);
    for (int i = 0; i < N; i++) {
        x->g[i].rc = i;
        if (is_quick(i))
            assert_int_equal(weft_submit(x->rt, ret_fn, (void *)(intptr_t)i,
                                         NULL, &x->fs[i]), 0);
        else
            assert_int_equal(weft_submit(x->rt, gate_fn, &x->g[i], NULL,
                                         &x->fs[i]), 0);
    }
    assert_int_equal(weft_future_get(x->fs[1], -1, NULL), 1);
    assert_int_equal(weft_future_get(x->fs[4], -1, NULL), 4);
}

static void teardown_fixture(struct fixture *x)
{
    for (int i = 0; i < N; i++)
        gate_open(&x->g[i]);
    for (int i = 0; i < N; i++) {
        assert_int_equal(weft_future_get(x->fs[i], -1, NULL), i);
        weft_future_release(x->fs[i]);
    }
    weft_runtime_destroy(&x->rt);
}

static void expect_ready(const size_t *ready, size_t nready,
                         const size_t *want, size_t nwant)
{
    assert_int_equal(nready, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(ready[i], want[i]);
}

static void test_wait_zero_timeout(void **s)
{
    (void)s;
    struct fixture x;
    setup_fixture(&x);
    size_t ready[N], nready = 99;
    const size_t quick[] = { 1, 4 };
    assert_int_equal(weft_wait(x.fs, N, 1, 0, ready, &nready), 0);
    expect_ready(ready, nready, quick, 2); /* more than k: all found */
    nready = 99;
    assert_int_equal(weft_wait(x.fs, N, 2, 0, ready, &nready), 0);
    expect_ready(ready, nready, quick, 2);
    nready = 99;
    assert_int_equal(weft_wait(x.fs, N, 3, 0, ready, &nready), -ETIMEDOUT);
    expect_ready(ready, nready, quick, 2); /* the ones found, fewer than k */
    nready = 99;
    assert_int_equal(weft_wait(x.fs, N, N, 0, ready, &nready), -ETIMEDOUT);
    expect_ready(ready, nready, quick, 2);
    /* a sub-range, and NULL outputs */
    nready = 99;
    assert_int_equal(weft_wait(x.fs + 2, 3, 1, 0, ready, &nready), 0);
    const size_t sub[] = { 2 }; /* fs[4] is index 2 of fs+2 */
    expect_ready(ready, nready, sub, 1);
    assert_int_equal(weft_wait(x.fs, N, 2, 0, NULL, NULL), 0);
    assert_int_equal(weft_wait(x.fs, N, 3, 0, NULL, NULL), -ETIMEDOUT);
    nready = 99;
    assert_int_equal(weft_wait(x.fs, N, 3, 0, NULL, &nready), -ETIMEDOUT);
    assert_int_equal(nready, 2);
    assert_int_equal(weft_wait(x.fs, N, 2, 0, ready, NULL), 0);
    assert_int_equal(ready[0], 1);
    assert_int_equal(ready[1], 4);
    /* the same future twice counts twice */
    weft_future *dup[3] = { x.fs[4], x.fs[0], x.fs[4] };
    nready = 99;
    assert_int_equal(weft_wait(dup, 3, 2, 0, ready, &nready), 0);
    const size_t twice[] = { 0, 2 };
    expect_ready(ready, nready, twice, 2);
    nready = 99;
    assert_int_equal(weft_wait(dup, 3, 3, 0, ready, &nready), -ETIMEDOUT);
    expect_ready(ready, nready, twice, 2);
    teardown_fixture(&x);
}

/* A short timeout waits at least that long: every try is checked for
 * that; the upper bound must hold in one of five tries (a loaded machine
 * may deschedule us once in a while). */
static void test_wait_short_timeout(void **s)
{
    (void)s;
    struct fixture x;
    setup_fixture(&x);
    int64_t best = INT64_MAX;
    for (int t = 0; t < 5 && best > 500 * MS; t++) {
        size_t ready[N], nready = 99;
        int64_t t0 = now_ns();
        int rc = weft_wait(x.fs, N, 3, 20 * MS, ready, &nready);
        int64_t dt = now_ns() - t0;
        assert_int_equal(rc, -ETIMEDOUT);
        assert_true(dt >= 20 * MS);
        const size_t quick[] = { 1, 4 };
        expect_ready(ready, nready, quick, 2);
        best = dt < best ? dt : best;
        print_message("20 ms wait took %.2f ms\n", (double)dt / MS);
    }
    assert_true(best <= 500 * MS);
    /* the same for a single future, with get */
    int64_t t0 = now_ns();
    assert_int_equal(weft_future_get(x.fs[0], 20 * MS, NULL), -ETIMEDOUT);
    assert_true(now_ns() - t0 >= 20 * MS);
    teardown_fixture(&x);
}

/* A timeout that ends early because enough finished. */
static void test_wait_infinite(void **s)
{
    (void)s;
    struct fixture x;
    setup_fixture(&x);
    /* gate 3 opens after 30 ms: waiting for 3 returns then, with 1, 3, 4 */
    pthread_t th;
    struct opener o = { &x.g[3], 30 * MS };
    size_t ready[N], nready = 99;
    int64_t t0 = now_ns(); /* before the opener starts its 30 ms */
    assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
    assert_int_equal(weft_wait(x.fs, N, 3, -1, ready, &nready), 0);
    assert_true(now_ns() - t0 >= 30 * MS);
    pthread_join(th, NULL);
    const size_t three[] = { 1, 3, 4 };
    expect_ready(ready, nready, three, 3);
    /* a long finite timeout that is cut short the same way */
    o = (struct opener){ &x.g[0], 10 * MS };
    assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
    t0 = now_ns();
    assert_int_equal(weft_wait(x.fs, N, 4, 60000 * MS, ready, &nready), 0);
    assert_true(now_ns() - t0 < 30000 * MS);
    pthread_join(th, NULL);
    const size_t four[] = { 0, 1, 3, 4 };
    expect_ready(ready, nready, four, 4);
    /* all of them */
    gate_open(&x.g[2]);
    gate_open(&x.g[5]);
    assert_int_equal(weft_wait(x.fs, N, N, -1, ready, &nready), 0);
    const size_t all[] = { 0, 1, 2, 3, 4, 5 };
    expect_ready(ready, nready, all, N);
    teardown_fixture(&x);
}

static void test_wait_bad(void **s)
{
    (void)s;
    struct fixture x;
    setup_fixture(&x);
    size_t ready[N + 1], nready = 99;
    /* k == 0 returns 0 at once, even with no timeout and nothing done */
    int64_t t0 = now_ns();
    assert_int_equal(weft_wait(x.fs, N, 0, -1, ready, &nready), 0);
    assert_int_equal(weft_wait(x.fs + 2, 2, 0, -1, NULL, NULL), 0);
    assert_int_equal(weft_wait(NULL, 0, 0, -1, NULL, NULL), 0);
    assert_int_equal(weft_wait(NULL, 0, 0, -1, ready, &nready), 0);
    assert_true(now_ns() - t0 < 5000 * MS);
    /* k > n */
    assert_int_equal(weft_wait(x.fs, N, N + 1, 0, ready, &nready), -EINVAL);
    assert_int_equal(weft_wait(x.fs, N, N + 1, -1, ready, &nready), -EINVAL);
    assert_int_equal(weft_wait(NULL, 0, 1, -1, ready, &nready), -EINVAL);
    /* fs NULL with n > 0 */
    assert_int_equal(weft_wait(NULL, 3, 1, 0, ready, &nready), -EINVAL);
    /* a NULL future among them */
    weft_future *with_null[3] = { x.fs[1], NULL, x.fs[4] };
    assert_int_equal(weft_wait(with_null, 3, 1, 0, ready, &nready), -EINVAL);
    assert_int_equal(weft_wait(with_null, 3, 1, -1, ready, &nready), -EINVAL);
    /* a released one */
    weft_future *dead;
    assert_int_equal(weft_submit(x.rt, nop_fn, NULL, NULL, &dead), 0);
    assert_int_equal(weft_future_get(dead, -1, NULL), 0);
    weft_future_release(dead);
    weft_future *with_dead[3] = { x.fs[1], x.fs[4], dead };
    assert_int_equal(weft_wait(with_dead, 3, 1, -1, ready, &nready), -EINVAL);
    teardown_fixture(&x);
}

/* Gates opened in random order by another thread while the main thread
 * waits for k = 1, 2, ... : each answer lists only done futures, in
 * ascending order, at least k of them. */
struct shuffle { struct gate *g; int n; uint64_t seed; };

static void *open_shuffled(void *a)
{
    struct shuffle *sh = a;
    int *perm = malloc((size_t)sh->n * sizeof *perm);
    if (!perm)
        abort();
    for (int i = 0; i < sh->n; i++)
        perm[i] = i;
    for (int i = sh->n - 1; i > 0; i--) {
        int j = (int)(xrand(&sh->seed) % (uint64_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < sh->n; i++) {
        gate_open(&sh->g[perm[i]]);
        sleep_ns((int64_t)(xrand(&sh->seed) % 300) * 1000);
    }
    free(perm);
    return NULL;
}

static int quick_gate(weft_job *job, void *arg)
{
    /* like gate_fn, without "entered": these wait queued or running */
    (void)job;
    struct gate *g = arg;
    return gate_wait_open(g) ? -ETIMEDOUT : g->rc;
}

static void test_wait_shuffled(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    enum { M = 40 };
    int reps = 20 / test_scale() + 1;
    for (int rep = 0; rep < reps; rep++) {
        struct gate g[M];
        weft_future *fs[M];
        memset(g, 0, sizeof g);
        for (int i = 0; i < M; i++) {
            g[i].rc = 100 + i;
            assert_int_equal(weft_submit(rt, quick_gate, &g[i], NULL, &fs[i]),
                             0);
        }
        struct shuffle sh = { g, M, 0x1234567ull + (uint64_t)rep };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, open_shuffled, &sh), 0);
        for (size_t k = 1; k <= M; k++) {
            size_t ready[M], nready = 0;
            assert_int_equal(weft_wait(fs, M, k, -1, ready, &nready), 0);
            assert_true(nready >= k && nready <= M);
            for (size_t i = 0; i < nready; i++) {
                assert_true(ready[i] < M);
                if (i)
                    assert_true(ready[i] > ready[i - 1]);
                assert_int_equal(weft_future_done(fs[ready[i]]), 1);
                assert_int_equal(weft_future_get(fs[ready[i]], 0, NULL),
                                 100 + (int)ready[i]);
            }
        }
        pthread_join(th, NULL);
        for (int i = 0; i < M; i++)
            weft_future_release(fs[i]);
    }
    weft_runtime_destroy(&rt);
}

/* Inside a task on a one-worker runtime, waiting for queued work must run
 * it (nothing else can): k of n with every timeout kind. */
struct inner { weft_runtime *rt; int n; int err; };

static int child(weft_job *job, void *arg)
{
    (void)job;
    return (int)(intptr_t)arg;
}

static int wait_inside(void *a)
{
    struct inner *in = a;
    weft_future **fs = calloc((size_t)in->n, sizeof *fs);
    size_t *ready = calloc((size_t)in->n, sizeof *ready);
    if (!fs || !ready)
        return -ENOMEM;
    for (int i = 0; i < in->n; i++)
        if (weft_submit(in->rt, child, (void *)(intptr_t)i, NULL, &fs[i]))
            return -ENOMEM;
    size_t nready = 0;
    /* one of them, waiting forever */
    if (weft_wait(fs, (size_t)in->n, 1, -1, ready, &nready) || nready < 1)
        in->err |= 1;
    /* half of them, with a long timeout */
    if (weft_wait(fs, (size_t)in->n, (size_t)in->n / 2, 60000 * MS, ready,
                  &nready) || nready < (size_t)in->n / 2)
        in->err |= 2;
    /* all of them */
    if (weft_wait(fs, (size_t)in->n, (size_t)in->n, -1, ready, &nready) ||
        nready != (size_t)in->n)
        in->err |= 4;
    for (int i = 0; i < in->n; i++) {
        if ((size_t)i >= nready || ready[i] != (size_t)i)
            in->err |= 8;
        if (weft_future_get(fs[i], 0, NULL) != i)
            in->err |= 16;
        weft_future_release(fs[i]);
    }
    free(fs);
    free(ready);
    return 0;
}

/* A waiting task with a short timeout on work held elsewhere: it returns
 * -ETIMEDOUT after at least that long (running other work meanwhile). */
struct timed { weft_future *held; int rc; int64_t dt; };

static int timed_wait_inside(void *a)
{
    struct timed *t = a;
    int64_t t0 = now_ns();
    t->rc = weft_wait(&t->held, 1, 1, 20 * MS, NULL, NULL);
    t->dt = now_ns() - t0;
    return 0;
}

static void test_wait_inside_task(void **s)
{
    (void)s;
    for (int w = 1; w <= 2; w++) {
        weft_runtime *rt = test_runtime(w, NULL);
        assert_non_null(rt);
        struct inner in = { rt, 2000 / test_scale(), 0 };
        assert_int_equal(weft_run(rt, wait_inside, &in), 0);
        assert_int_equal(in.err, 0);
        weft_runtime_destroy(&rt);
    }
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    struct gate g = { .rc = 0 };
    struct timed t = { 0 };
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &t.held), 0);
    assert_int_equal(gate_wait_entered(&g, 1), 0); /* running, not queued */
    assert_int_equal(weft_run(rt, timed_wait_inside, &t), 0);
    assert_int_equal(t.rc, -ETIMEDOUT);
    assert_true(t.dt >= 20 * MS);
    gate_open(&g);
    assert_int_equal(weft_wait(&t.held, 1, 1, -1, NULL, NULL), 0);
    weft_future_release(t.held);
    weft_runtime_destroy(&rt);
}

/* Many futures at once, from outside, with a cancelled and a failed one:
 * "done" includes failure and cancellation. */
static void test_wait_many(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    int n = 20000 / test_scale();
    weft_future **fs = calloc((size_t)n, sizeof *fs);
    size_t *ready = calloc((size_t)n, sizeof *ready);
    assert_non_null(fs);
    assert_non_null(ready);
    struct gate g = { 0 };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    for (int i = 0; i < n; i++) {
        if (i == n / 2) /* never starts: cancelled below */
            assert_int_equal(weft_submit_after(rt, nop_fn, NULL, &blk, 1, NULL,
                                               &fs[i]), 0);
        else
            assert_int_equal(weft_submit(rt, ret_fn,
                                         (void *)(intptr_t)(i % 7 == 3 ? -EIO : 0),
                                         NULL, &fs[i]), 0);
    }
    size_t nready = 0;
    assert_int_equal(weft_wait(fs, (size_t)n, (size_t)n, 10 * MS, ready,
                               &nready), -ETIMEDOUT); /* fs[n/2] is held */
    assert_true(nready < (size_t)n);
    assert_int_equal(weft_future_cancel(fs[n / 2]), 0);
    assert_int_equal(weft_wait(fs, (size_t)n, (size_t)n, -1, ready, &nready),
                     0);
    assert_int_equal(nready, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ready[i], i);
        int want = i == n / 2 ? -ECANCELED : i % 7 == 3 ? -EIO : 0;
        assert_int_equal(weft_future_get(fs[i], 0, NULL), want);
        weft_future_release(fs[i]);
    }
    gate_open(&g);
    weft_future_release(blk);
    free(fs);
    free(ready);
    weft_runtime_destroy(&rt);
}

/* Waiting from outside on futures while the worker claims them: every
 * future runs. (A waiter registering itself on a queued future must not
 * make the worker's claim of it fail and drop it.) Both ways of waiting:
 * weft_wait and weft_future_get. */
static void test_wait_racing_claims(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    int rounds = 4000 / test_scale();
    for (int r = 0; r < rounds; r++) {
        enum { B = 64 };
        weft_future *fs[B];
        for (int i = 0; i < B; i++)
            assert_int_equal(weft_submit(rt, ret_fn, (void *)(intptr_t)i,
                                         NULL, &fs[i]), 0);
        int rc = 0;
        if (r % 2)
            rc = weft_wait(fs, B, B, 30000 * MS, NULL, NULL);
        else
            for (int i = 0; i < B && rc >= 0; i++)
                rc = weft_future_get(fs[i], 30000 * MS, NULL) == i ? 0 : -1;
        if (rc)
            for (int i = 0; i < B; i++)
                if (weft_future_done(fs[i]) != 1)
                    fail_msg("round %d (%s): future %d never ran", r,
                             r % 2 ? "weft_wait" : "get", i);
        for (int i = 0; i < B; i++)
            weft_future_release(fs[i]);
    }
    weft_runtime_destroy(&rt);
}

/* A worker of runtime B waits for futures of two runtimes, the first of
 * another runtime A: it must still run B's queued work, which here only
 * it can run (B has one worker, the caller, and the future of B it waits
 * for is in its own deque). It used to decide by fs[0]'s runtime alone,
 * sleep on the group's futex as a stranger to A, and never run it: the
 * wait ran out (and without a timeout never returned). */
struct mixed {
    weft_runtime *b;
    weft_future *fa; /* of A, held at a gate until after the wait */
    int rc, got;
    size_t nready, ready0;
};

static int wait_mixed(void *arg)
{
    struct mixed *m = arg;
    weft_future *fb;
    if (weft_submit(m->b, ret_fn, (void *)(intptr_t)7, NULL, &fb))
        return -ENOMEM;
    weft_future *fs[2] = { m->fa, fb };
    size_t ready[2] = { 99, 99 };
    m->rc = weft_wait(fs, 2, 1, 10000 * MS, ready, &m->nready);
    m->ready0 = ready[0];
    m->got = weft_future_get(fb, -1, NULL); /* runs it here if still queued */
    weft_future_release(fb);
    return 0;
}

static void test_wait_two_runtimes(void **s)
{
    (void)s;
    weft_runtime *a = test_runtime(1, NULL), *b = test_runtime(1, NULL);
    assert_non_null(a);
    assert_non_null(b);
    struct gate g = { .rc = 3 };
    struct mixed m = { .b = b, .nready = 99 };
    assert_int_equal(weft_submit(a, gate_fn, &g, NULL, &m.fa), 0);
    assert_int_equal(weft_run(b, wait_mixed, &m), 0);
    gate_open(&g);
    assert_int_equal(m.rc, 0);
    assert_int_equal(m.nready, 1);
    assert_int_equal(m.ready0, 1);
    assert_int_equal(m.got, 7);
    assert_int_equal(weft_future_get(m.fa, -1, NULL), 3);
    weft_future_release(m.fa);
    weft_runtime_destroy(&b);
    weft_runtime_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_zero_timeout),
        cmocka_unit_test(test_wait_short_timeout),
        cmocka_unit_test(test_wait_infinite),
        cmocka_unit_test(test_wait_bad),
        cmocka_unit_test(test_wait_shuffled),
        cmocka_unit_test(test_wait_inside_task),
        cmocka_unit_test(test_wait_many),
        cmocka_unit_test(test_wait_racing_claims),
        cmocka_unit_test(test_wait_two_runtimes),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
