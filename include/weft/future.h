/* weft futures: submit work now, collect its status and result later; wait
 * for the first k of many; run work when its dependencies are done
 * (dataflow); cancel work that has not started; retry work that failed.
 *
 *   static int square(weft_job *job, void *arg)
 *   {
 *       long *v = malloc(sizeof *v);
 *       if (!v) return -ENOMEM;
 *       *v = (long)(intptr_t)arg * (long)(intptr_t)arg;
 *       return weft_job_set_result(job, v, free);
 *   }
 *   weft_future *f;
 *   if (weft_submit(rt, square, (void *)7, NULL, &f) == 0) {
 *       void *v;
 *       int st = weft_future_get(f, -1, &v);   (st == 0, *(long *)v == 49)
 *       weft_future_release(f);                (frees v through free())
 *   }
 *
 * Ownership. A future is reference counted. weft_submit*() hands the
 * caller one reference; weft_future_retain() adds one; each must be given
 * back with weft_future_release(). The runtime holds its own references
 * while the work is queued or running, so releasing a future early never
 * cancels or loses the work. A future's result belongs to the future: it
 * is destroyed (by the destructor given with it) once the future is done,
 * its users released it, and no dependant still reads it, unless it was
 * taken with weft_future_take().
 *
 * Handles. A weft_future * is an opaque handle, not a pointer to memory the
 * caller may read. It carries a generation number, so a call on a future
 * whose last reference was already released returns -EINVAL instead of
 * touching reused memory (detected unless the slot was reused exactly a
 * multiple of 65536 times since). Every future of a runtime must be
 * released before weft_runtime_destroy(); destroy frees what remains,
 * running result destructors, so nothing leaks.
 *
 * Threads. Every call here may be made from any thread: a worker of the
 * future's runtime (inside a task), or a thread that is not a worker. A
 * worker that waits runs other queued work meanwhile (it never blocks the
 * pool; past 64 nested waits it only yields, to bound its stack); any
 * other thread, a worker of another runtime included, spins briefly, then
 * sleeps on a futex. A task that waits for work which can only run after
 * it returns deadlocks, as in every helping scheduler.
 *
 * Statuses. A task function returns 0 for success or an error code (a
 * negative errno value is the convention). Values from
 * WEFT_STATUS_DEP_BASE down are reserved: they mean "dependency i failed"
 * (see weft_status_failed_dep()). */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_future weft_future;

/* The running attempt of a task, handed to its function. Valid only during
 * that call and only on the thread running it. */
typedef struct weft_job weft_job;

/* A task: returns 0 on success or an error code. arg is the pointer given
 * at submission, untouched. */
typedef int (*weft_fn)(weft_job *job, void *arg);

enum weft_priority {
    WEFT_PRIO_NORMAL = 0,
    WEFT_PRIO_HIGH = 1, /* taken before any normal work that is queued */
};

enum weft_submit_flags {
    /* weft_submit_after: run even when a dependency failed or was
     * cancelled; the task reads each dependency's status itself. */
    WEFT_RUN_ANYWAY = 1u << 0,
};

/* Options of a submission. Start from weft_submit_opts_default(). */
typedef struct weft_submit_opts {
    /* Run again, up to this many more times, when the task returns
     * non-zero (and was not cancelled). 0..65535. */
    int max_retries;
    /* Preferred NUMA node (logical index, as in weft_worker_stats), or -1
     * for "where the submitter runs". Workers of that node take the task
     * first (one of them is woken for it); workers of other nodes take it
     * only when they have nothing closer and it has waited 100 us. A node
     * the machine does not have means -1. */
    int numa_node;
    /* WEFT_PRIO_NORMAL or WEFT_PRIO_HIGH. */
    int priority;
    /* enum weft_submit_flags, or-ed. */
    unsigned flags;
    /* For diagnostics; NOT copied: it must stay valid as long as the
     * future lives (a string literal is the usual choice). May be NULL. */
    const char *name;
    uint64_t reserved[6];
} weft_submit_opts;

/* The defaults: no retries, any node, normal priority, no flags. */
WEFT_API weft_submit_opts weft_submit_opts_default(void);

/* Submit fn(job, arg) to run on rt. On success *out holds one reference to
 * the new future and the task is queued. opts may be NULL (the defaults).
 * Errors (nothing is queued, *out is NULL): -EINVAL (rt, fn or out NULL,
 * an option out of range), -ENOMEM, -ESHUTDOWN (rt is being destroyed and
 * the caller is not one of its tasks). */
WEFT_API int weft_submit(weft_runtime *rt, weft_fn fn, void *arg,
                         const weft_submit_opts *opts, weft_future **out);

/* Like weft_submit(), but the task runs only once every future in
 * deps[0..ndeps) is done. If a dependency failed or was cancelled the task
 * does not run (unless WEFT_RUN_ANYWAY) and its status is
 * WEFT_STATUS_DEP_FAILED(i), i being the lowest failed index;
 * weft_future_cause() then gives the original failure. The new future
 * holds its own references to the dependencies until it is done, so the
 * caller may release them at once. The task reads its dependencies'
 * results with weft_job_dep(). Errors as weft_submit(), and -EINVAL when a
 * dependency is NULL, released, or belongs to another runtime, or ndeps >
 * WEFT_MAX_DEPS. */
WEFT_API int weft_submit_after(weft_runtime *rt, weft_fn fn, void *arg,
                               weft_future *const *deps, size_t ndeps,
                               const weft_submit_opts *opts,
                               weft_future **out);

#define WEFT_MAX_DEPS (1u << 20)
#define WEFT_STATUS_DEP_BASE (-0x10000)
/* The status of a task whose dependency number i failed. */
#define WEFT_STATUS_DEP_FAILED(i) (WEFT_STATUS_DEP_BASE - (int)(i))

/* The index of the failed dependency that a status names, or -1 when the
 * status is not a dependency failure. */
static inline long weft_status_failed_dep(int status)
{
    long d = (long)WEFT_STATUS_DEP_BASE - (long)status;
    return d >= 0 && d < (long)WEFT_MAX_DEPS ? d : -1;
}

/* Wait up to timeout_ns (< 0: forever, 0: just look) for f to be done.
 * Returns the task's status (0 = success), -ECANCELED if it was cancelled
 * before it ran, or -ETIMEDOUT if it is not done yet (a task may also
 * return these codes itself: weft_future_done() tells them apart). When
 * result is not NULL, *result receives the task's result (NULL if it set
 * none), borrowed: it stays valid while the caller holds its reference and
 * has not taken it. -EINVAL for a NULL or released future; -ENOTSUP in a
 * forked child for a future of its parent's runtime that was not done at
 * the fork (nothing will finish it there: weft/runtime.h, "fork()").
 * From inside a task, waiting runs other work; a task waiting on a future
 * that is queued but not started runs it at once, on its own stack. */
WEFT_API int weft_future_get(weft_future *f, int64_t timeout_ns,
                             void **result);

/* Like weft_future_get(f, -1, ...), but moves the result out (result must
 * not be NULL: -EINVAL): the caller
 * owns *result (and must destroy it), and the future forgets it. A second
 * take gives NULL. Since the value becomes the caller's to free, take
 * also waits until no dependant still reads it: the futures submitted
 * after f (weft_submit_after) and, for a graph output, the rest of the
 * graph's run. Not concurrently with another take or get of f. */
WEFT_API int weft_future_take(weft_future *f, void **result);

/* 1 if f is done (ran, failed, or was cancelled), 0 if not, -EINVAL. */
WEFT_API int weft_future_done(const weft_future *f);

/* The first failure behind f's status: for a task failed by a dependency,
 * the status of the task that failed first down the chain; otherwise f's
 * own status. -ETIMEDOUT when f is not done; -EINVAL. */
WEFT_API int weft_future_cause(const weft_future *f);

/* How many times f's function has been called (retries included). */
WEFT_API int weft_future_attempts(const weft_future *f);

/* The name given at submission, or NULL. */
WEFT_API const char *weft_future_name(const weft_future *f);

/* Cancel f. Returns 0 when f had not started: it never will, its status
 * is -ECANCELED, and its dependants fail. Returns -EINPROGRESS when f is
 * running: its task sees weft_job_cancelled() == 1 and may stop early
 * (what it returns is its status; no retry follows). Returns -EALREADY
 * when f is already done, -EINVAL for a NULL or released future. */
WEFT_API int weft_future_cancel(weft_future *f);

/* Add a reference to f. 0 or -EINVAL. */
WEFT_API int weft_future_retain(weft_future *f);

/* Give back one reference. When the caller's is the last, the handle
 * becomes invalid; once the future is done and no dependant needs its
 * result any more, the result is destroyed (by the time this returns,
 * when that moment is now). A queued task still runs. 0 or -EINVAL
 * (NULL, or already released). */
WEFT_API int weft_future_release(weft_future *f);

/* Wait until at least k of the n futures fs[0..n) are done, or the
 * timeout (< 0: forever, 0: just look) passes. On return, when ready is
 * not NULL it holds the indices of the futures found done, ascending, and
 * *nready (when not NULL) their number; these may be more than k.
 * Returns 0 when at least k are done, -ETIMEDOUT when fewer, -EINVAL (fs
 * NULL with n > 0, k > n, a NULL or released future), -ENOMEM, -ENOTSUP
 * (a forked child must wait, with a timeout other than 0, while one of
 * them is a future of its parent's runtime not done at the fork). Like
 * ray.wait(). A k of 0 returns 0 at once. */
WEFT_API int weft_wait(weft_future *const *fs, size_t n, size_t k,
                       int64_t timeout_ns, size_t *ready, size_t *nready);

/* --- inside a task ----------------------------------------------------- */

/* Set the job's result. dtor (may be NULL) is called on value when the
 * future is freed, when a retry replaces the result, or never if a
 * caller took it. Setting it again destroys the previous value. 0 or
 * -EINVAL. */
WEFT_API int weft_job_set_result(weft_job *job, void *value,
                                 void (*dtor)(void *value));

/* 1 if cancellation was asked for while this job runs, else 0. Poll it in
 * long tasks. */
WEFT_API int weft_job_cancelled(const weft_job *job);

/* 0 for the first call of the task's function, 1 for the first retry... */
WEFT_API int weft_job_attempt(const weft_job *job);

/* Number of dependencies of the job (0 for weft_submit). */
WEFT_API size_t weft_job_ndeps(const weft_job *job);

/* Status of dependency i (in the order given at submission), and its
 * result in *value when value is not NULL (borrowed until the job
 * returns). -ERANGE when i >= ndeps. */
WEFT_API int weft_job_dep(const weft_job *job, size_t i, void **value);

/* The runtime the job runs on. */
WEFT_API weft_runtime *weft_job_runtime(const weft_job *job);

#ifdef __cplusplus
}
#endif

#endif
