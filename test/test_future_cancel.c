/* Cancellation: of queued work (never runs), of running work (the task
 * sees weft_job_cancelled, no retry follows), of finished work
 * (-EALREADY); and cancel racing with start and completion, thousands of
 * times, with a per-task record proving that no task ran after a cancel
 * returned 0. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

static _Atomic long ran;

static int count_fn(weft_job *job, void *arg)
{
    (void)job;
    if (arg)
        atomic_fetch_add((_Atomic long *)arg, 1);
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* Queued work that is cancelled never runs; the rest of the queue does. */
static void test_cancel_queued(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    atomic_store(&ran, 0);
    struct gate g = { 0 };
    weft_future *blk;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    assert_int_equal(gate_wait_entered(&g, 1), 0);

    enum { N = 300 };
    static _Atomic long per[N];
    weft_future *fs[N];
    for (int i = 0; i < N; i++) {
        atomic_store(&per[i], 0);
        weft_submit_opts o = weft_submit_opts_default();
        o.priority = i % 5 == 0 ? WEFT_PRIO_HIGH : WEFT_PRIO_NORMAL;
        o.max_retries = 2;
        assert_int_equal(weft_submit(rt, count_fn, &per[i], &o, &fs[i]), 0);
    }
    int cancelled = 0;
    for (int i = 0; i < N; i += 3) {
        assert_int_equal(weft_future_cancel(fs[i]), 0);
        assert_int_equal(weft_future_cancel(fs[i]), -EALREADY);
        assert_int_equal(weft_future_done(fs[i]), 1);
        void *r = (void *)1;
        assert_int_equal(weft_future_get(fs[i], 0, &r), -ECANCELED);
        assert_null(r);
        assert_int_equal(weft_future_get(fs[i], -1, NULL), -ECANCELED);
        assert_int_equal(weft_future_cause(fs[i]), -ECANCELED);
        assert_int_equal(weft_future_attempts(fs[i]), 0);
        cancelled++;
        if (i % 2) /* some released before the worker reaches them */
            assert_int_equal(weft_future_release(fs[i]), 0);
    }
    gate_open(&g);
    assert_int_equal(weft_future_get(blk, -1, NULL), 0);
    weft_future_release(blk);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            if (i % 2 == 0)
                weft_future_release(fs[i]);
            continue;
        }
        int st = weft_future_get(fs[i], LONG_WAIT, NULL);
        if (st != 0)
            fail_msg("future %d: status %d (never ran: %s)", i, st,
                     atomic_load(&per[i]) ? "no" : "yes");
        assert_int_equal(weft_future_cancel(fs[i]), -EALREADY);
        assert_int_equal(weft_future_attempts(fs[i]), 1);
        weft_future_release(fs[i]);
    }
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&ran), N - cancelled);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&per[i]), i % 3 == 0 ? 0 : 1);
}

/* A running task sees the cancellation, stops early, and is not retried
 * although it fails and has retries left. */
struct running {
    _Atomic int entered;
    _Atomic int calls;
    int saw_before; /* weft_job_cancelled at entry */
};

static int until_cancelled(weft_job *job, void *arg)
{
    struct running *x = arg;
    atomic_fetch_add(&x->calls, 1);
    x->saw_before = weft_job_cancelled(job);
    atomic_store(&x->entered, 1);
    int64_t end = now_ns() + 60000 * MS;
    while (!weft_job_cancelled(job)) {
        if (now_ns() > end)
            return -ETIMEDOUT;
        sched_yield();
    }
    if (weft_job_cancelled(job) != 1)
        return -EPROTO;
    return -EINTR;
}

static void test_cancel_running(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int rep = 0; rep < 20; rep++) {
        struct running x = { 0 };
        weft_submit_opts o = weft_submit_opts_default();
        o.max_retries = 3;
        weft_future *f;
        assert_int_equal(weft_submit(rt, until_cancelled, &x, &o, &f), 0);
        int64_t end = now_ns() + 60000 * MS;
        while (!atomic_load(&x.entered) && now_ns() < end)
            sched_yield();
        assert_int_equal(atomic_load(&x.entered), 1);
        assert_int_equal(weft_future_done(f), 0);
        assert_int_equal(weft_future_cancel(f), -EINPROGRESS);
        assert_int_equal(weft_future_get(f, -1, NULL), -EINTR);
        assert_int_equal(x.saw_before, 0);
        assert_int_equal(weft_future_attempts(f), 1); /* no retry */
        assert_int_equal(atomic_load(&x.calls), 1);
        assert_int_equal(weft_future_cause(f), -EINTR);
        assert_int_equal(weft_future_cancel(f), -EALREADY);
        weft_future_release(f);
    }
    weft_runtime_destroy(&rt);
}

/* A task may cancel another future: queued ones, from inside the pool. */
struct canceller { weft_future *victim; int rc; };

static int cancel_other(weft_job *job, void *arg)
{
    (void)job;
    struct canceller *c = arg;
    c->rc = weft_future_cancel(c->victim);
    return 0;
}

static void test_cancel_from_task(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&ran, 0);
    /* the victim waits on a gate it depends on, so it stays queued */
    struct gate g = { 0 };
    weft_future *blk, *victim, *c;
    assert_int_equal(weft_submit(rt, gate_fn, &g, NULL, &blk), 0);
    assert_int_equal(weft_submit_after(rt, count_fn, NULL, &blk, 1, NULL,
                                       &victim), 0);
    struct canceller cc = { victim, 1 };
    assert_int_equal(weft_submit(rt, cancel_other, &cc, NULL, &c), 0);
    assert_int_equal(weft_future_get(c, -1, NULL), 0);
    assert_int_equal(cc.rc, 0);
    assert_int_equal(weft_future_get(victim, -1, NULL), -ECANCELED);
    gate_open(&g);
    assert_int_equal(weft_future_get(blk, -1, NULL), 0);
    weft_future_release(blk);
    weft_future_release(victim);
    weft_future_release(c);
    weft_runtime_destroy(&rt);
    assert_int_equal(atomic_load(&ran), 0);
}

/* --- the race ------------------------------------------------------- */

struct slot {
    _Atomic int calls;       /* attempts started */
    _Atomic int saw_cancel;  /* attempt number + 1 that saw it, or 0 */
    int spin;                /* how long the task runs */
    int cancel_rc;           /* 1 = not cancelled */
    int calls_after_cancel;  /* calls read right after cancel returned */
};

static _Atomic long race_runs;

static int racer(weft_job *job, void *arg)
{
    struct slot *sl = arg;
    atomic_fetch_add(&race_runs, 1);
    atomic_fetch_add(&sl->calls, 1);
    int a = weft_job_attempt(job);
    for (int i = 0; i < sl->spin; i++) {
        if (weft_job_cancelled(job)) {
            atomic_store(&sl->saw_cancel, a + 1);
            return -EINTR;
        }
        if (i % 64 == 63)
            sched_yield();
    }
    if (weft_job_cancelled(job)) {
        atomic_store(&sl->saw_cancel, a + 1);
        return -EINTR;
    }
    return -EIO; /* retried while retries are left */
}

struct race {
    weft_runtime *rt;
    struct slot *slots;
    weft_future **fs;
    int n;
    _Atomic int published;
    uint64_t seed;
};

static void spin_random(uint64_t *seed, int max)
{
    int k = (int)(xrand(seed) % (uint64_t)max);
    for (volatile int i = 0; i < k; i++)
        ;
}

static void do_cancel(struct race *r, int i, uint64_t *seed)
{
    struct slot *sl = &r->slots[i];
    if (xrand(seed) % 8 == 0) /* some are never cancelled */
        return;
    spin_random(seed, 20000);
    sl->cancel_rc = weft_future_cancel(r->fs[i]);
    sl->calls_after_cancel = atomic_load(&sl->calls);
}

static void *cancel_thread(void *a)
{
    struct race *r = a;
    uint64_t seed = r->seed;
    for (int i = 0; i < r->n; i++) {
        while (atomic_load(&r->published) <= i)
            sched_yield();
        do_cancel(r, i, &seed);
    }
    return NULL;
}

/* Check one finished slot; returns a string naming the broken rule. */
static const char *check_slot(struct slot *sl, weft_future *f, int retries)
{
    int st = weft_future_get(f, 0, NULL);
    int calls = atomic_load(&sl->calls);
    int saw = atomic_load(&sl->saw_cancel);
    if (weft_future_done(f) != 1)
        return "not done after the wait";
    if (weft_future_attempts(f) != calls)
        return "attempts differs from calls";
    switch (sl->cancel_rc) {
    case 0:
        if (st != -ECANCELED)
            return "cancel 0 but status is not -ECANCELED";
        if (calls != 0)
            return "cancel returned 0 but the task ran";
        break;
    case -EALREADY:
        if (calls != retries + 1 || st != -EIO || saw)
            return "cancel -EALREADY but the task did not finish normally";
        break;
    case -EINPROGRESS:
        if (calls < 1)
            return "cancel -EINPROGRESS but the task never ran";
        if (calls > sl->calls_after_cancel + 1)
            return "a retry followed a cancel that returned -EINPROGRESS";
        if (saw && (saw != calls || st != -EINTR))
            return "an attempt saw the cancel but was not the last";
        if (!saw && st != -EIO)
            return "wrong status after -EINPROGRESS";
        break;
    case 1: /* not cancelled */
        if (calls != retries + 1 || st != -EIO || saw)
            return "an uncancelled task did not run its course";
        break;
    default:
        return "cancel returned an undocumented code";
    }
    if (saw && sl->cancel_rc != -EINPROGRESS)
        return "a task saw a cancel that did not return -EINPROGRESS";
    return NULL;
}

/* The task a racer depends on, in the dataflow variant: it spins a
 * little, so the racer becomes ready while the canceller acts. */
static int pre_fn(weft_job *job, void *arg)
{
    (void)job;
    for (volatile int i = 0; i < (int)(intptr_t)arg; i++)
        ;
    return 0;
}

static void race_rounds(int workers, int retries, int from_thread,
                        int *count, int with_dep)
{
    weft_runtime *rt = test_runtime(workers, NULL);
    assert_non_null(rt);
    enum { B = 64 };
    int rounds = 400 / test_scale();
    int total = rounds * B;
    struct slot *slots = calloc((size_t)total, sizeof *slots);
    weft_future **fs = calloc((size_t)total, sizeof *fs);
    assert_non_null(slots);
    assert_non_null(fs);
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)(workers * 31 + retries);
    atomic_store(&race_runs, 0);
    for (int r = 0; r < rounds; r++) {
        struct race rc = { .rt = rt, .slots = slots + r * B, .fs = fs + r * B,
                           .n = B, .seed = xrand(&seed) };
        pthread_t th;
        if (from_thread)
            assert_int_equal(pthread_create(&th, NULL, cancel_thread, &rc), 0);
        for (int i = 0; i < B; i++) {
            struct slot *sl = &rc.slots[i];
            sl->spin = (int)(xrand(&seed) % 3000);
            sl->cancel_rc = 1;
            weft_submit_opts o = weft_submit_opts_default();
            o.max_retries = retries;
            if (with_dep) { /* cancel races with becoming ready too */
                weft_future *pre;
                assert_int_equal(weft_submit(rt, pre_fn,
                                             (void *)(intptr_t)(xrand(&seed) % 4000),
                                             NULL, &pre), 0);
                assert_int_equal(weft_submit_after(rt, racer, sl, &pre, 1, &o,
                                                   &rc.fs[i]), 0);
                assert_int_equal(weft_future_release(pre), 0);
            } else {
                assert_int_equal(weft_submit(rt, racer, sl, &o, &rc.fs[i]), 0);
            }
            atomic_store(&rc.published, i + 1);
            if (!from_thread)
                do_cancel(&rc, i, &seed);
        }
        if (from_thread)
            pthread_join(th, NULL);
        /* 60 s, not forever: a future that never completes is reported */
        if (weft_wait(rc.fs, B, B, 60000 * MS, NULL, NULL) != 0)
            for (int i = 0; i < B; i++)
                if (weft_future_done(rc.fs[i]) != 1)
                    fail_msg("round %d task %d never completed (cancel %d, "
                             "calls %d)", r, i, rc.slots[i].cancel_rc,
                             atomic_load(&rc.slots[i].calls));
        for (int i = 0; i < B; i++) {
            const char *bad = check_slot(&rc.slots[i], rc.fs[i], retries);
            if (bad)
                fail_msg("round %d task %d: %s (cancel %d, calls %d, "
                         "calls at cancel %d, saw %d, status %d)", r, i, bad,
                         rc.slots[i].cancel_rc, atomic_load(&rc.slots[i].calls),
                         rc.slots[i].calls_after_cancel,
                         atomic_load(&rc.slots[i].saw_cancel),
                         weft_future_get(rc.fs[i], 0, NULL));
            int c = rc.slots[i].cancel_rc;
            count[c == 0 ? 0 : c == -EINPROGRESS ? 1 : c == -EALREADY ? 2 : 3]++;
            assert_int_equal(weft_future_release(rc.fs[i]), 0);
        }
    }
    weft_runtime_destroy(&rt);
    /* after destroy nothing can still run: recount everything */
    long calls = 0;
    for (int i = 0; i < total; i++) {
        if (slots[i].cancel_rc == 0)
            assert_int_equal(atomic_load(&slots[i].calls), 0);
        calls += atomic_load(&slots[i].calls);
    }
    assert_int_equal(atomic_load(&race_runs), calls);
    print_message("workers %d retries %d %s%s: cancel 0: %d, -EINPROGRESS: "
                  "%d, -EALREADY: %d, not cancelled: %d\n", workers, retries,
                  from_thread ? "thread" : "submitter",
                  with_dep ? " after a dependency" : "", count[0], count[1],
                  count[2], count[3]);
    free(slots);
    free(fs);
}

/* count: cancel returned 0, -EINPROGRESS, -EALREADY; not cancelled.
 * Cancels before and after the start must both have been exercised:
 * queued work is plentiful (64 at a time on 1-2 workers) and most tasks
 * finish quickly. The counts are cumulative, printed after each variant. */
static void test_cancel_race(void **s)
{
    (void)s;
    int count[4] = { 0 };
    race_rounds(2, 0, 1, count, 0);
    race_rounds(2, 0, 0, count, 0);
    race_rounds(1, 0, 1, count, 0);
    assert_true(count[0] > 0);
    assert_true(count[1] + count[2] > 0);
}

static void test_cancel_race_retries(void **s)
{
    (void)s;
    int count[4] = { 0 };
    race_rounds(2, 2, 1, count, 0);
    race_rounds(1, 2, 0, count, 0);
    assert_true(count[0] > 0);
    assert_true(count[1] + count[2] > 0);
}

/* The same with each task submitted after a dependency that is finishing
 * while the cancel comes: cancel races with the task becoming ready. */
static void test_cancel_race_dataflow(void **s)
{
    (void)s;
    int count[4] = { 0 };
    race_rounds(2, 0, 1, count, 1);
    race_rounds(1, 1, 0, count, 1);
    assert_true(count[0] > 0);
    assert_true(count[1] + count[2] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_cancel_from_task),
        cmocka_unit_test(test_cancel_race),
        cmocka_unit_test(test_cancel_race_retries),
        cmocka_unit_test(test_cancel_race_dataflow),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
