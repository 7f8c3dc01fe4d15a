/* weft statistics: what each worker did, read while the runtime runs. */
#ifndef WEFT_STATS_H
#define WEFT_STATS_H

#include <stdint.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One worker's counters since the runtime was created. The counters are
 * read without stopping the worker, so a snapshot is consistent per field,
 * not across fields. Times are nanoseconds of CLOCK_MONOTONIC. */
typedef struct weft_worker_stats {
    int32_t worker;     /* index in the runtime */
    int32_t cpu;        /* OS index of the PU it is pinned to, -1 if not */
    int32_t numa_node;  /* logical index of its NUMA node in the topology */
    int32_t reserved0;
    uint64_t spawns;        /* fork-join children spawned */
    uint64_t steals_tried;  /* steal attempts on a victim with work */
    uint64_t steals_won;    /* tasks taken from another worker's deque */
    uint64_t steals_near;   /* of those, from a worker on the same node */
    uint64_t roots;         /* tasks taken from the injection queue */
    uint64_t parks;         /* times the worker went to sleep */
    uint64_t busy_ns;       /* running tasks */
    uint64_t spin_ns;       /* looking for work, awake */
    uint64_t parked_ns;     /* asleep on the futex */
    uint64_t misuses;       /* syncs of frames that were not spawned */
    uint64_t jobs;          /* futures and graph nodes run (retries and
                               cancelled ones not counted) */
    uint64_t reserved[7];
} weft_worker_stats;

/* Copy the counters of up to n workers into out[0..n-1]. Returns the number
 * copied (min(n, workers)), or -EINVAL (rt or out NULL, n < 0). Callable
 * from any thread, while the runtime runs. */
WEFT_API int weft_stats_workers(const weft_runtime *rt, weft_worker_stats *out,
                                int n);

#ifdef __cplusplus
}
#endif

#endif
