/* What the future programs (future-IMPL) share: the workloads, the batch
 * size, and the round-trip latency bookkeeping. C11, also C++.
 *
 *   inside-flat  -n N: one task submits N empty tasks in batches of BATCH
 *                and collects each batch (status of every one) before the
 *                next: submit and collect cost, from inside a task, with
 *                the other workers taking what they can.
 *   inside-tree  -n N: N tasks in a balanced binary tree: a task with c
 *                tasks under it submits two children (c-1 between them)
 *                and collects their counts; leaves are empty. Every
 *                worker creates and collects: the throughput target.
 *   outside      -n N: the main thread (not a worker) submits N empty
 *                tasks in batches of BATCH and collects each batch.
 *   rt-parked    -n N round trips from the main thread: submit one empty
 *                task, wait for it; 1 ms of sleep between round trips so
 *                that the workers are parked each time (weft: spin_us -1,
 *                never spin).
 *   rt-spin      the same without the sleep, workers spinning (weft:
 *                spin_us 1000000).
 *
 * The answer is the number of tasks that ran and reported success, N.
 * A round trip's time is from just before the submit to just after the
 * wait returned; RESULT's seconds is the whole run (rt-parked: sleeps
 * included), and the line gets p50_us, p99_us, min_us and mean_us of the
 * N round trips. */
#ifndef BENCH_FUTURE_COMMON_H
#define BENCH_FUTURE_COMMON_H

#include "bench.h"

#include <errno.h>
#include <stdint.h>

#define BATCH 256
#define RT_SLEEP_NS 1000000L /* rt-parked: sleep between round trips */

static inline int is_rt(const char *workload)
{
    return strncmp(workload, "rt-", 3) == 0;
}

static inline int is_parked(const char *workload)
{
    return strcmp(workload, "rt-parked") == 0;
}

/* ---- round-trip latencies */

static struct rt_log {
    double *lat; /* seconds per round trip of the last run */
    long n;
    char extra[128];
} rtl;

static inline int rt_prepare(long n)
{
    rtl.lat = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    rtl.n = 0;
    return rtl.lat != NULL ? 0 : -ENOMEM;
}

static inline void rt_pause(void)
{
    struct timespec ts = { 0, RT_SLEEP_NS };
    nanosleep(&ts, NULL);
}

static inline int rt_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* bench_hooks.extra: percentiles of the last run's round trips. */
static inline const char *rt_extra(void)
{
    if (rtl.n == 0)
        return NULL;
    double sum = 0;
    for (long i = 0; i < rtl.n; i++)
        sum += rtl.lat[i];
    qsort(rtl.lat, (size_t)rtl.n, sizeof(double), rt_cmp);
    snprintf(rtl.extra, sizeof rtl.extra,
             "p50_us=%.3f p99_us=%.3f min_us=%.3f mean_us=%.3f",
             rtl.lat[rtl.n / 2] * 1e6, rtl.lat[(rtl.n * 99) / 100] * 1e6,
             rtl.lat[0] * 1e6, sum / (double)rtl.n * 1e6);
    rtl.n = 0;
    return rtl.extra;
}

/* n timed round trips, each trip() (its status: 0 = success), after
 * rt_pause() when parked; the count of successes. For implementations
 * whose whole round trip is one call. */
static inline bench_check rt_loop(long n, int parked, int (*trip)(void))
{
    long ok = 0;
    for (long i = 0; i < n; i++) {
        if (parked)
            rt_pause();
        double t0 = bench_now();
        int st = trip();
        double t1 = bench_now();
        ok += st == 0;
        rtl.lat[i] = t1 - t0;
    }
    rtl.n = n;
    return (bench_check)ok;
}

/* Children of a tree task with c tasks under it, itself included. */
static inline void tree_split(long c, long *left, long *right)
{
    *left = (c - 1) / 2;
    *right = c - 1 - *left;
}

#endif
