/* Parking and waking under churn: workers that park at once, jobs meant
 * for one NUMA node or the other (so the other node's workers park with a
 * deadline, the grace period, and wake by themselves), wakes from an
 * outside thread. Afterwards every worker must still be wakeable.
 *
 * It catches again a bug ThreadSanitizer found once in CI: a waker chained
 * the workers it took off the idle stack through their idle_next, and a
 * taken worker whose timed park ran out could park again and rewrite that
 * link, so the waker raced with it and the rest of its chain (off the
 * stack, asleep) was never woken: a worker lost for good. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_future_util.h"

#define TOPO2 "package:2 numa:1 core:2 pu:1" /* 2 nodes x 2 workers */
#define WORKERS 4

static weft_runtime *parking_runtime(void)
{
    weft_config c = weft_config_default();
    c.topology = TOPO2;
    c.spin_us = -1; /* park as soon as there is nothing to do */
    weft_runtime *rt = NULL;
    return weft_runtime_create(&rt, &c) == 0 ? rt : NULL;
}

static int nop(weft_job *job, void *arg)
{
    (void)job, (void)arg;
    return 0;
}

/* A burst of 1..3 jobs for one node, collected before the next burst. */
static void burst(weft_runtime *rt, int node, int n)
{
    weft_future *f[3];
    weft_submit_opts o = weft_submit_opts_default();
    o.numa_node = node;
    for (int i = 0; i < n; i++)
        assert_int_equal(weft_submit(rt, nop, NULL, &o, &f[i]), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(weft_future_get(f[i], LONG_WAIT, NULL), 0);
        weft_future_release(f[i]);
    }
}

/* WORKERS jobs that each wait (without helping) until all of them run:
 * it completes only if every worker can still be woken. */
struct barrier {
    _Atomic int arrived;
    _Atomic int timed_out;
};

static int barrier_job(weft_job *job, void *arg)
{
    (void)job;
    struct barrier *b = arg;
    atomic_fetch_add(&b->arrived, 1);
    int64_t end = now_ns() + 10000 * MS;
    while (atomic_load(&b->arrived) < WORKERS) {
        if (now_ns() > end) {
            atomic_store(&b->timed_out, 1);
            return -ETIMEDOUT;
        }
        sched_yield();
    }
    return 0;
}

static void all_workers_wake(weft_runtime *rt)
{
    struct barrier b = {0};
    weft_future *f[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(weft_submit(rt, barrier_job, &b, NULL, &f[i]), 0);
    for (int i = 0; i < WORKERS; i++) {
        weft_future_get(f[i], LONG_WAIT, NULL);
        weft_future_release(f[i]);
    }
    if (atomic_load(&b.timed_out))
        fail_msg("only %d of %d workers ran at once: a worker was lost",
                 atomic_load(&b.arrived), WORKERS);
}

/* One outside thread's churn: bursts for alternating nodes until the
 * time budget ends. Two of them at once keep jobs of both nodes queued,
 * so the other node's workers park on a deadline while wakes arrive. */
struct churn {
    weft_runtime *rt;
    int first_node;
    int64_t end;
};

static void *churn_thread(void *arg)
{
    struct churn *c = arg;
    for (int r = 0; r < 20000 && now_ns() < c->end; r++) {
        burst(c->rt, (c->first_node + r) % 2, 1 + r % 3);
        if (r % 64 == 0) /* let everyone park, some on a deadline */
            sleep_ns(MS / 5);
    }
    return NULL;
}

static void test_park_wake_churn(void **s)
{
    (void)s;
    weft_runtime *rt = parking_runtime();
    assert_non_null(rt);
    /* a time budget, not a count divided by WEFT_TEST_SCALE: the race
     * this catches needs many rounds, and ThreadSanitizer is what sees
     * it */
    int64_t end = now_ns() + 2000 * MS;
    struct churn a = {rt, 0, end}, b = {rt, 1, end};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_thread, &b), 0);
    churn_thread(&a);
    pthread_join(t, NULL);
    all_workers_wake(rt);
    weft_runtime_destroy(&rt);
}

/* ---- a worker's own push must wake a parking worker ----
 *
 * A job pushed by a worker on its own deque, while the other worker is
 * on its way to sleep, must be seen by that worker's last look or wake
 * it (the handshake in lib/core/park.c). It fails when the push's
 * wake-up is missing; a push that merely lacks its full barrier leaves a
 * window of nanoseconds that this test did not hit in 1.5 s of rounds on
 * the 2-core VM, which is why pushes keep their seq_cst store.
 *
 * Each round a producer job waits a varying few microseconds (so that the
 * other worker is somewhere on its way to sleep), submits a child and
 * spins, without helping, until the child has run: only the other worker
 * can run it. A lost wake-up leaves the child queued until the producer
 * gives up (counted), and the producer then runs it itself before it
 * returns, so the test fails rather than hangs. */
struct pushround {
    _Atomic int child_ran;
    int delay_ns;
    _Atomic int lost;
};

static int push_child(weft_job *job, void *arg)
{
    (void)job;
    atomic_store_explicit(&((struct pushround *)arg)->child_ran, 1,
                          memory_order_release);
    return 0;
}

static int push_producer(weft_job *job, void *arg)
{
    (void)job;
    struct pushround *r = arg;
    int64_t until = now_ns() + r->delay_ns;
    while (now_ns() < until)
        ;
    weft_future *f;
    if (weft_submit(weft_current_runtime(), push_child, r, NULL, &f) != 0)
        return -ENOMEM;
    int64_t end = now_ns() + 1000 * MS;
    while (!atomic_load_explicit(&r->child_ran, memory_order_acquire))
        if (now_ns() > end) {
            atomic_store(&r->lost, 1);
            break;
        }
    /* after a lost wake-up: run it here, before r goes out of scope */
    int rc = weft_future_get(f, LONG_WAIT, NULL);
    weft_future_release(f);
    return rc;
}

static void test_worker_push_wakes_parker(void **s)
{
    (void)s;
    weft_config c = weft_config_default();
    c.workers = 2;
    c.spin_us = -1; /* park as soon as there is nothing to do */
    weft_runtime *rt = NULL;
    assert_int_equal(weft_runtime_create(&rt, &c), 0);
    int64_t end = now_ns() + 1500 * MS;
    int rounds = 0, lost = 0;
    for (; rounds < 200000 && now_ns() < end; rounds++) {
        struct pushround r = {.delay_ns = (rounds * 37) % 20000};
        weft_future *f;
        assert_int_equal(weft_submit(rt, push_producer, &r, NULL, &f), 0);
        assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), 0);
        weft_future_release(f);
        lost += atomic_load(&r.lost);
    }
    weft_runtime_destroy(&rt);
    if (lost)
        fail_msg("%d of %d rounds: a job pushed by a worker stayed queued "
                 "for 1 s while the other worker slept", lost, rounds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_park_wake_churn),
        cmocka_unit_test(test_worker_push_wakes_parker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
