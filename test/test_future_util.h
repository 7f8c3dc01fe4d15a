/* Helpers shared by the futures, dataflow, wait and graph tests: clocks,
 * gates that hold a task until the test opens them, results whose
 * destructor counts its calls. Public API only. */
#ifndef WEFT_TEST_FUTURE_UTIL_H
#define WEFT_TEST_FUTURE_UTIL_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <weft.h>

#include "work.h"

#define MS 1000000ll /* nanoseconds in a millisecond */
/* For waits that must end: long enough for any healthy run under a
 * sanitizer, short enough that a future that never completes fails the
 * test with a message rather than a hang (meson's timeout is 300 s). */
#define LONG_WAIT (120000 * MS)

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000ll),
                           (long)(ns % 1000000000ll) };
    nanosleep(&ts, NULL);
}

/* A gate: a task running gate_fn() says it entered, then waits (spinning
 * politely) until the test opens the gate; it gives up after 60 s so a
 * broken runtime fails the test instead of hanging it. */
struct gate {
    _Atomic int open;
    _Atomic int entered;
    int rc; /* what gate_fn returns */
};

static inline int gate_wait_open(struct gate *g)
{
    int64_t end = now_ns() + 60000 * MS;
    while (!atomic_load(&g->open)) {
        if (now_ns() > end)
            return -1;
        sched_yield();
    }
    return 0;
}

static inline int gate_fn(weft_job *job, void *arg)
{
    (void)job;
    struct gate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    if (gate_wait_open(g))
        return -ETIMEDOUT;
    return g->rc;
}

/* Wait (from a thread that is not a worker) until n tasks entered g.
 * Returns 0, or -1 after 60 s. */
static inline int gate_wait_entered(struct gate *g, int n)
{
    int64_t end = now_ns() + 60000 * MS;
    while (atomic_load(&g->entered) < n) {
        if (now_ns() > end)
            return -1;
        sched_yield();
    }
    return 0;
}

static inline void gate_open(struct gate *g) { atomic_store(&g->open, 1); }

/* A thread body that opens a gate after a delay (pthread_create). */
struct opener { struct gate *g; int64_t delay_ns; };

static inline void *open_later(void *a)
{
    struct opener *o = a;
    sleep_ns(o->delay_ns);
    gate_open(o->g);
    return NULL;
}

/* A result that counts its destructor calls: struct val's dtor adds one
 * to *dtors and frees the value. */
struct val {
    long v;
    _Atomic long *dtors;
};

static inline void val_dtor(void *p)
{
    struct val *x = p;
    atomic_fetch_add(x->dtors, 1);
    free(x);
}

static inline int set_val(weft_job *job, long v, _Atomic long *dtors)
{
    struct val *x = malloc(sizeof *x);
    if (!x)
        return -ENOMEM;
    x->v = v;
    x->dtors = dtors;
    int rc = weft_job_set_result(job, x, val_dtor);
    if (rc)
        free(x);
    return rc;
}

static inline long val_of(void *p) { return p ? ((struct val *)p)->v : -999999; }

/* Poll until *c reaches want (from any thread that is not a worker); 0 or
 * -1 after timeout_ms. */
static inline int wait_count(_Atomic long *c, long want, int timeout_ms)
{
    int64_t end = now_ns() + (int64_t)timeout_ms * MS;
    while (atomic_load(c) < want) {
        if (now_ns() > end)
            return -1;
        sleep_ns(100000);
    }
    return 0;
}

/* A task that returns the int its arg points to (as an intptr_t). */
static inline int ret_fn(weft_job *job, void *arg)
{
    (void)job;
    return (int)(intptr_t)arg;
}

/* A task that does nothing and succeeds. */
static inline int nop_fn(weft_job *job, void *arg)
{
    (void)job;
    (void)arg;
    return 0;
}

/* A small xorshift generator for test randomness (seeded per test). */
static inline uint64_t xrand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#ifdef CMOCKA_H_
/* WEFT_TEST_FILTER=pattern runs only the matching tests of a file (a
 * sanitizer stops at its first report, so one test at a time helps). */
static inline void test_filter_from_env(void)
{
    const char *only = getenv("WEFT_TEST_FILTER");
    if (only && *only)
        cmocka_set_test_filter(only);
}
#endif

#endif
