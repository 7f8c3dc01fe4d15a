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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_park_wake_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
