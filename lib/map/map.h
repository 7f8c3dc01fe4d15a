/* Internal state of one parallel map (map.c) and the isolated mode's entry
 * point (isolated.c). Nothing outside lib/map includes this. */
#ifndef WEFT_MAP_INTERNAL_H
#define WEFT_MAP_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>

#include "internal.h"

typedef struct map_run map_run;

/* One worker's share of a map. Written only by that worker while the map
 * runs (done is also read by progress reporters); summed by the caller
 * once the map is over. A worker that starts part of the map while one of
 * the map's item functions is still running on its stack (the item waited
 * and the worker helped) gets a fresh slot, so accumulators and scratch
 * are never used by two unfinished calls at once. */
typedef struct map_slot {
    alignas(WEFT__CACHELINE) double a; /* ticks per item, smoothed */
    double b;         /* ticks of overhead between batches, smoothed */
    size_t next;      /* size of the next adaptive batch */
    size_t ok, failed, batches, splits, bmax;
    _Atomic size_t done; /* items finished, for progress */
    bool used, in_body, acc_ready;
    void *acc;                /* weft_map_reduce: this slot's accumulator */
    unsigned char *scratch;   /* delivery without an output array */
    struct map_slot *next_extra;
} map_slot;

/* Runs the items [lo, hi) of m for slot s: counts them in s->ok or
 * s->failed and reports failures through map_fail(). */
typedef void (*map_batch_fn)(map_run *m, map_slot *s, size_t lo, size_t hi);

struct map_run {
    weft_runtime *rt;
    weft_map_opts o;
    map_batch_fn batch;
    size_t begin, end;
    /* the call's function and items (one of the four forms) */
    weft_map_fn map_fn;
    weft_for_fn for_fn;
    weft_range_fn range_fn;
    const weft_reducer *red;
    void *ctx;
    const unsigned char *in;
    unsigned char *out;
    size_t in_stride, out_stride;

    size_t cap;   /* largest batch */
    int limit;    /* workers that may run items at once */
    bool limited; /* limit < the runtime's workers: count tokens */
    alignas(WEFT__CACHELINE) _Atomic int tokens; /* see split_take() */
    _Atomic int stop; /* MAPRUN_GOING, MAPRUN_FAILED or MAPRUN_CANCELLED */

    pthread_mutex_t lock; /* errors, extra slots, the delivery queue */
    size_t first_index;
    int first_status, first_signal;
    /* A failure of the map itself, not of an item (no memory for a slot
     * of a split): items were skipped for it, so the call must not return
     * 0. Kept only when it came before every item failure (first error
     * wins, as with items). */
    int map_status;
    size_t nerrors;
    map_slot *extra;
    /* delivery (map.c's deliver()): a thread is making the calls, and the
     * batches waiting for it, oldest first */
    bool delivering;
    struct map_dlv *dq_head, **dq_tail;

    /* progress (see progress_tick()) */
    bool progress_on, bar;
    uint64_t t_start; /* CLOCK_MONOTONIC ns */
    _Atomic uint64_t next_report;
    _Atomic int reporting;
    bool bar_drawn;
    void *iso; /* isolated mode: its call's state (isolated.c) */

    int nslots;
    map_slot *slots;
};

enum { MAPRUN_GOING, MAPRUN_FAILED, MAPRUN_CANCELLED };

WEFT__HIDDEN void weft__map_fail(map_run *m, size_t index, int status,
                                 int signal);
/* Report progress if the interval has passed; done(m) counts the items
 * finished. */
WEFT__HIDDEN void weft__map_progress(map_run *m, size_t (*done)(map_run *m));
/* The end of every map, on the pool or isolated: the report's common
 * fields (rep already holds the mode's own, zero elsewhere), the
 * runtime's count of maps, the final progress report, and the call's
 * return value (run_rc when not 0). */
WEFT__HIDDEN int weft__map_end(map_run *m, int run_rc, size_t ok,
                               size_t failed, weft_map_report *rep);

/* isolated.c: runs a validated weft_map/weft_for call in worker processes
 * and fills the report's counters. */
WEFT__HIDDEN int weft__map_isolated(map_run *m, weft_map_report *rep);
WEFT__HIDDEN void weft__isolated_free(weft_runtime *rt, void *pool);
/* isolated.c's test hooks (see there); NULL outside tests. */
WEFT__HIDDEN extern void (*weft__iso_chunk_hook)(size_t lo);
WEFT__HIDDEN extern void (*weft__iso_kill_hook)(void);

#endif
