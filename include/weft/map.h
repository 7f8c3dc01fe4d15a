/* weft parallel map, for and reduce: "apply f to every item", joblib-style,
 * with no per-item cost beyond a function call.
 *
 *   static int square(size_t i, const void *in, void *out, void *ctx)
 *   {
 *       *(double *)out = *(const double *)in * *(const double *)in;
 *       return 0;
 *   }
 *   weft_map_report rep;
 *   int rc = weft_map(rt, n, xs, sizeof *xs, ys, sizeof *ys, square, NULL,
 *                     NULL, &rep);
 *
 * Scheduling. Items are split lazily: a worker runs its range batch by
 * batch, and only when nothing of its own deque is left for an idle worker
 * to steal does it hand the second half of what remains to the pool
 * (lazy binary splitting). So a thief takes half of a remaining range, not
 * a fixed chunk, and a balanced map splits about log2(items) times per
 * worker. The batch (items between two scheduling checks) is adaptive by
 * default: each worker measures the time per item a and the per-batch
 * overhead b, and picks the batch s where b/s stays under 2% of a (Parfun's
 * t(s) = a + b/s), at least about 10-40 us of items (costs no timer can
 * bracket), capped at items/(4 x workers) so the tail stays balanced,
 * re-fitted after every batch so drifting item costs are followed. Memory
 * is O(workers), whatever the item count.
 *
 * Threads. Every call here may be made from any thread. From a thread that
 * is not one of rt's workers, the call runs the map on the pool and sleeps
 * until it is done. From one of rt's workers (a nested map) the caller's
 * worker takes part. Item functions run on rt's workers, concurrently, in
 * no particular order, except in isolated mode (below).
 *
 * Errors. An item function returns 0 for success or an error code (a
 * negative errno value by convention). Under the default policy the first
 * error stops the map: items not yet started are skipped, and the call
 * returns that item's error with its index in the report. With
 * WEFT_MAP_COLLECT every item runs and every error is counted (and listed
 * in opts.errors up to its capacity). A failing item never aborts the
 * process; in isolated mode not even a crashing one does. */
#ifndef WEFT_MAP_H
#define WEFT_MAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "runtime.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An item function of weft_map(): index is the item's position, in points
 * at the item (NULL when the map has no input), out at its output slot
 * (NULL when the map has no output and no delivery callback). */
typedef int (*weft_map_fn)(size_t index, const void *in, void *out,
                           void *ctx);
/* A body of weft_for(): called once per index. */
typedef int (*weft_for_fn)(size_t index, void *ctx);
/* A body of weft_for_range(): called for the sub-range [lo, hi). The
 * fastest form for tiny items: the loop is the caller's, the compiler can
 * vectorise it, and weft adds one call per batch. */
typedef int (*weft_range_fn)(size_t lo, size_t hi, void *ctx);

/* Flags of weft_map_opts. */
enum {
    /* Run every item and count every error instead of stopping at the
     * first. */
    WEFT_MAP_COLLECT = 1u << 0,
    /* Never draw the progress bar, even when stderr is a terminal. */
    WEFT_MAP_QUIET = 1u << 1,
    /* Run items in forked worker processes (weft_map and weft_for only):
     * an item that crashes (SIGSEGV, abort) or runs past timeout_ms is
     * reported with its index and signal and does not take the caller
     * down. What an item can see there: its input and output are copied
     * through the runtime's object store (weft_runtime_store(), opened on
     * the first isolated call), ctx is copied there too when ctx_size is
     * set, and any other memory is as it was when the process running
     * the item was forked. Processes are forked as isolated calls first
     * need them (after weft_map_isolated_reset() too) and again to
     * replace one that crashed or timed out, so memory the caller changed
     * between isolated calls may look different to different items: what
     * every item must see goes through the input or ctx. Of the caller's file descriptors they
     * keep only stdin, stdout and stderr (a pipe's reader sees its EOF
     * while they live). The caller's runtimes have no workers there: a
     * weft call on one from an item returns -ENOTSUP (a runtime the item
     * makes itself works). An item that calls exit() ends its process
     * without running the caller's atexit() handlers or flushing its
     * stdio buffers (they are the caller's, copied by the fork), and is
     * reported as a death (-ECHILD, signal 0). An item may put objects
     * of its own in the store (weft_map_isolated_store()). The processes
     * are reused across calls. Reduce is not available there. Progress
     * and delivery come from the calling thread, which dispatches the
     * items; results are delivered once their window (up to 64 MiB of
     * items, or a quarter of the store) is done, in index order; a
     * callback that starts another isolated map on the same runtime gets
     * -EDEADLK. */
    WEFT_MAP_ISOLATED = 1u << 2,
};

/* One failed item: its status is what the item returned, or, in isolated
 * mode, -ECHILD when the worker process running it died (signal: the
 * signal that killed it, 0 if it exited) and -ETIMEDOUT when it ran past
 * timeout_ms, or its process was stuck that long before starting it (see
 * weft_map_opts.timeout_ms; signal: SIGKILL, which weft sent). signal is 0 otherwise,
 * and also for a death when the program ignores SIGCHLD or reaps every
 * child itself (waitpid(-1)): the kernel then keeps no status to read. */
typedef struct weft_map_error {
    size_t index;
    int status;
    int signal;
} weft_map_error;

/* A progress report: done of total items finished (failed ones included),
 * after elapsed seconds; rate in items per second and eta in seconds (-1
 * while unknown). */
typedef struct weft_map_progress {
    size_t done, total;
    double elapsed, rate, eta;
} weft_map_progress;

/* Called with each item's result as soon as its batch is done, in
 * completion order (joblib's return_as="generator_unordered"). Calls never
 * overlap: weft makes them one at a time from worker threads (in isolated
 * mode: from the calling thread, window by window). No worker waits for
 * them: batches that finish while a call runs are queued for the thread
 * making the calls (with a copy of their results when the map has no
 * output array, so a callback much slower than the items lets that queue
 * grow), and the callback may call into weft, a nested map on the same
 * runtime included. result points at the item's output (in the map's
 * output array, or, when the map has none, in a scratch buffer valid only
 * during the call). Items that failed are not delivered: they are in the
 * report (as are items whose queued copy found no memory: -ENOMEM). */
typedef void (*weft_map_deliver_fn)(size_t index, void *result, void *ctx);

typedef struct weft_map_opts {
    /* Workers that may run items at once: 0 or -1 = all of the runtime's,
     * n > 0 = at most n, -k (k > 1) = all but k - 1, as joblib's n_jobs;
     * never fewer than 1. Below -WEFT_MAX_WORKERS: -EINVAL. In isolated
     * mode: the number of worker processes. */
    int workers;
    /* Flags from the enum above; unknown bits are -EINVAL. */
    unsigned flags;
    /* Items per batch; 0 = adaptive (see above). At most 256 when results
     * are delivered. */
    size_t batch;
    /* Progress callback, called at most every progress_ms (0 = 200 ms)
     * from a worker thread (the calling thread in isolated mode), one call
     * at a time, and once more from the calling thread when the map ends. With none, a bar is drawn on stderr
     * when stderr is a terminal and the map runs longer than half a second
     * (unless WEFT_MAP_QUIET, or WEFT_PROGRESS=0 in the environment). */
    void (*progress)(const weft_map_progress *p, void *ctx);
    void *progress_ctx;
    unsigned progress_ms;
    /* Unordered delivery (weft_map only): see weft_map_deliver_fn. */
    weft_map_deliver_fn deliver;
    void *deliver_ctx;
    /* When not NULL, the map stops starting batches once *cancel is
     * nonzero and returns -ECANCELED; items already running finish. */
    const _Atomic int *cancel;
    /* Where failed items are listed, up to max_errors of them (the report
     * counts them all). NULL with max_errors 0 = not listed. */
    weft_map_error *errors;
    size_t max_errors;
    /* Isolated mode: per-item time limit in milliseconds (0 = none), how
     * many times a crashed or timed-out item is run again, and how many
     * bytes of ctx to copy to the worker processes (0 = ctx is passed as
     * the pointer it is, into the memory as of the fork).
     * The limit's exact rule: a worker process that holds items (was
     * handed a chunk of them and has not reported it back) is killed once
     * it goes timeout_ms without starting or ending an item, counted from
     * when it was handed the chunk, then from each item's start and end.
     * So an item gets timeout_ms, and so does a process that is stuck
     * before its chunk's first item or between two items; the item it was
     * running, or else the next one it holds up, fails with -ETIMEDOUT.
     * Exception: a process forked for the chunk has at least 10 s to reach
     * its first item (its start is weft's, and slow under sanitizers or
     * for a large parent). An item that ends as it is killed is still the
     * one reported: the process starts nothing once weft has decided. */
    unsigned timeout_ms;
    unsigned max_retries;
    size_t ctx_size;
    uint64_t reserved[8];
} weft_map_opts;

/* The default options: all workers, adaptive batches, stop at the first
 * error. Never fails. */
WEFT_API weft_map_opts weft_map_opts_default(void);

/* What a map did. Filled in whenever the call got past argument checks,
 * whatever it returns. */
typedef struct weft_map_report {
    size_t done;    /* items that ran and returned 0 */
    size_t failed;  /* items that failed, listed or not; for the range
                       forms, every item of a failing call */
    size_t skipped; /* items never run: stopped at an error, cancelled */
    size_t nerrors; /* entries written to opts.errors */
    /* The first failure seen (in time): its index, status and signal;
     * index is SIZE_MAX when nothing failed. For the range forms it is the
     * first index of the failing range. */
    size_t first_index;
    int first_status;
    int first_signal;
    int workers;      /* workers that ran items */
    size_t batches;   /* batches run, all workers together */
    size_t splits;    /* ranges handed to the pool */
    size_t batch_mean, batch_max; /* items per batch: mean, largest */
    double seconds;   /* wall time of the call */
    uint64_t reserved[6];
} weft_map_report;

/* out[i] = fn(in[i]) for i in [0, n): item i is at in + i * in_stride and
 * its output at out + i * out_stride. in may be NULL (fn gets NULL) and
 * out may be NULL (fn gets NULL, or a scratch slot of out_stride bytes
 * when opts->deliver is set). opts may be NULL (defaults); rep may be NULL.
 *
 * Returns 0 when every item returned 0; the first failing item's status
 * (see "Errors"; rep->failed > 0 tells it from the codes below);
 * -ECANCELED when *opts->cancel became nonzero; -ENOMEM (also when a
 * part of the map found no memory mid-way: its items are skipped, not
 * failed, and the map stops as at an error unless WEFT_MAP_COLLECT; an
 * item that failed before that still gives the return); -ESHUTDOWN when
 * rt is being destroyed; -EINVAL, with nothing run, for: rt or fn NULL,
 * unknown flags, workers < -WEFT_MAX_WORKERS, errors NULL with
 * max_errors > 0, deliver set with out_stride 0, and in isolated mode
 * in_stride 0 with in set or out_stride 0 with out set (an item is copied
 * there, and stride 0 gives no size: pass a shared input as ctx with
 * ctx_size), and ctx NULL with ctx_size set; in isolated mode, -E2BIG
 * when ctx_size is over 64 MiB or half the runtime's store, or ctx plus
 * one item's input and output (or either stride alone) over three
 * quarters of it, -ENOSPC when the store (or /dev/shm, as the runtime's
 * store is first opened) has no room for a window's inputs and outputs
 * even after eviction (the store's memory is reserved: never a SIGBUS
 * later), -EDEADLK, with nothing run, when called from the delivery or
 * progress callback of an isolated map on the same runtime (its
 * processes are that map's until it returns; another runtime's isolated
 * maps work there), and the errors of weft_runtime_store(). */
WEFT_API int weft_map(weft_runtime *rt, size_t n, const void *in,
                      size_t in_stride, void *out, size_t out_stride,
                      weft_map_fn fn, void *ctx, const weft_map_opts *opts,
                      weft_map_report *rep);

/* fn(i, ctx) for i in [begin, end). Same returns and errors as weft_map()
 * (begin > end is -EINVAL). */
WEFT_API int weft_for(weft_runtime *rt, size_t begin, size_t end,
                      weft_for_fn fn, void *ctx, const weft_map_opts *opts,
                      weft_map_report *rep);

/* fn(lo, hi, ctx) over sub-ranges that cover [begin, end) exactly once.
 * Not available in isolated mode (-ENOTSUP). */
WEFT_API int weft_for_range(weft_runtime *rt, size_t begin, size_t end,
                            weft_range_fn fn, void *ctx,
                            const weft_map_opts *opts, weft_map_report *rep);

/* A reduction: each worker keeps its own accumulator of size bytes, made
 * by init, fed by body over sub-ranges, and the accumulators are merged by
 * combine(into, from) at the end, so the hot loop shares nothing. combine
 * must be associative and commutative: the order of merging is not fixed
 * (for floating point sums the last bits may differ from run to run).
 * init, body and combine return 0 or an error code. fini, when not NULL,
 * is called once on every accumulator init succeeded on, after it was
 * merged (or not, when the map failed), to free what init allocated; it is
 * never called on *result, which the caller owns. All four run on rt's
 * workers, except init on *result, combine and fini, which run on the
 * calling thread after the items. */
typedef struct weft_reducer {
    size_t size;
    int (*init)(void *acc, void *ctx);
    int (*body)(void *acc, size_t lo, size_t hi, void *ctx);
    int (*combine)(void *into, const void *from, void *ctx);
    void (*fini)(void *acc, void *ctx);
} weft_reducer;

/* Reduce [begin, end) into *result (size bytes, made by init, then merged
 * with every worker's accumulator). A worker's failing init fails the
 * items it was about to run. On failure *result holds what was reduced
 * before the map stopped. Returns as weft_for_range(), or the first
 * failing init (of *result) or combine when the items all succeeded; size
 * 0 or a missing init, body or combine is -EINVAL. */
WEFT_API int weft_map_reduce(weft_runtime *rt, size_t begin, size_t end,
                             const weft_reducer *r, void *ctx, void *result,
                             const weft_map_opts *opts, weft_map_report *rep);

/* Inside an item of an isolated map (in its worker process): the
 * process's own handle of the runtime's object store, in *out, so an item
 * can put a result too large to copy (weft_store_put) and return its id;
 * the caller gets it with its own handle (weft_runtime_store()) once the
 * map returned. The handle is the process's: never close it; it is valid
 * while the item runs. Objects that are not pinned (WEFT_STORE_PIN) may
 * be evicted when the store needs room, as in any store. Returns 0, or
 * -ENOENT in any other process (and when the process could not open the
 * store, which then fails the items that need it too), -EINVAL for a
 * NULL out. Any thread of an isolated worker process. */
WEFT_API int weft_map_isolated_store(weft_store **out);

/* Stop the isolated-mode worker processes of rt; the next isolated map
 * forks fresh ones (which then see the caller's memory as it is now).
 * Returns 0, or -EINVAL for a NULL rt, -EBUSY while an isolated map runs,
 * -ENOTSUP in a process forked from rt's (the processes are the parent's:
 * see weft/runtime.h, "fork"). */
WEFT_API int weft_map_isolated_reset(weft_runtime *rt);

#ifdef __cplusplus
}
#endif

#endif
