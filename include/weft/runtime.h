/* weft runtime: the pool of worker threads every kind of work runs on.
 *
 * Conventions of every weft call: it returns 0 or a negative errno value;
 * on failure it changes nothing the caller owns. Handles are opaque.
 *
 * fork() without exec. The child has only the thread that forked, so a
 * runtime it inherited has no workers there, and the runtime's object
 * store, statistics segment and isolated map processes stay the parent's.
 * In the child, calls on such a runtime that would need its workers or
 * touch what it shares return -ENOTSUP at once instead of waiting for
 * ever or breaking the parent's: weft_run, weft_runtime_destroy (which
 * then changes nothing: the child's copy goes when it exits or execs),
 * submits, graph runs, maps, actor spawns, sends, asks and stops,
 * weft_runtime_store, and the waits and gets of futures that were not
 * done at the fork (one that was done can still be read). A runtime the
 * child creates itself works as usual. */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime weft_runtime;

/* How a runtime is built. Start from weft_config_default() and change
 * fields; the reserved tail keeps the struct's size stable as fields are
 * added (new fields take their zero value as "default"). */
typedef struct weft_config {
    /* Number of worker threads. 0 = one per core of the process's allowed
     * cpuset. At most WEFT_MAX_WORKERS. The environment variable
     * WEFT_WORKERS, when set, overrides this field. */
    int workers;
    /* 1 = pin each worker to one core (the default), 0 = let the OS place
     * them. Pinning is skipped, whatever this says, when the topology is
     * synthetic or when there are more workers than allowed cores. */
    int pin;
    /* NULL = the machine's real topology. Otherwise an hwloc synthetic
     * description ("package:2 numa:2 core:4 pu:1") or the path of an hwloc
     * XML file, so NUMA behaviour can be tested on a one-node machine.
     * WEFT_TOPOLOGY, when set, overrides this field. The string is copied. */
    const char *topology;
    /* Stack size of each worker thread in bytes; 0 = 8 MiB. Fork-join
     * frames live on these stacks. */
    size_t stack_size;
    /* Idle workers spin this many microseconds looking for work before
     * they park on a futex. 0 = the default (50 us); -1 = never spin. */
    int spin_us;
    /* Bytes of object data of the runtime's own object store, opened on
     * first use (weft_runtime_store() in weft/store.h, isolated maps):
     * 0 = 128 MiB, or a quarter of the free space of /dev/shm when that is
     * less; otherwise at least 64 KiB. Nothing is reserved until the
     * store opens; then that much of /dev/shm is, which the first use
     * pays for. WEFT_STORE_CAPACITY (bytes, or with a K, M or G suffix),
     * when set, overrides this field. */
    uint64_t store_capacity;
    /* How many spawned children a worker keeps waiting for thieves
     * before a generic spawn (weft_spawn) in code that a spawn or sync
     * called runs its child at once, as a plain call (<weft/task.h>,
     * "Children that run at their spawn"). 0 = the default (4); 1..64;
     * -1 = never: every child waits for its sync or a thief. WEFT_HOLD,
     * when set, overrides this field. */
    int hold;
    int reserved_int;
    uint64_t reserved[6];
} weft_config;

#define WEFT_MAX_WORKERS 1024

/* The default configuration. Never fails. */
WEFT_API weft_config weft_config_default(void);

/* Create a runtime and start its workers. On success *out owns the new
 * runtime, released with weft_runtime_destroy(); on failure *out is set to
 * NULL. cfg may be NULL for the defaults. Errors: -EINVAL (out is NULL, a
 * field is out of range, WEFT_WORKERS is not a number), -ENOENT (a topology
 * file that does not exist), -ENOMEM, -EAGAIN (threads could not be
 * started). A message saying which input was wrong goes to stderr.
 * Callable from any thread, including a worker of another runtime. */
WEFT_API int weft_runtime_create(weft_runtime **out, const weft_config *cfg);

/* Destroy the runtime in *rtp and set *rtp to NULL. Work already submitted
 * is finished first, never dropped: calls to weft_run() in flight return
 * normally, and tasks still running may submit more. Calls from other
 * threads that start while destroy runs return -ESHUTDOWN, but no call may
 * use the handle once destroy has returned, and a thread cannot tell the
 * two apart by itself: other threads must stop calling into rt before
 * destroy begins, or the program must order their calls before its
 * return (as with pthread_mutex_destroy). -ESHUTDOWN is what a call that
 * overlaps destroy gets, not a way to find out that it ran; a second
 * destroy that overlaps the first (from another thread, or from a
 * callback the first runs, such as an actor's fini) gets it too, and
 * leaves *rtp alone. Must not be called from one of this runtime's own
 * workers, nor from a callback that a call on rt runs on the calling
 * thread (an actor's init in weft_actor_spawn, a map's progress, delivery
 * or reduce callbacks there), which destroy would wait for: -EDEADLK. In
 * a process forked from rt's it returns -ENOTSUP (see "fork()" above). A
 * NULL rtp or *rtp is a no-op returning 0. */
WEFT_API int weft_runtime_destroy(weft_runtime **rtp);

/* Run fn(arg) as a task on rt and return when it is done.
 *
 * Returns fn's return value, or -EINVAL (rt or fn NULL) / -ESHUTDOWN (rt is
 * being destroyed) without running fn. Callable from any thread. From a
 * thread that is not one of rt's workers, the call injects the task and
 * sleeps (futex) until it completes; several threads may call it at once.
 * From one of rt's own workers it simply calls fn(arg). */
WEFT_API int weft_run(weft_runtime *rt, int (*fn)(void *arg), void *arg);

/* Number of worker threads of rt (> 0), or -EINVAL. */
WEFT_API int weft_runtime_workers(const weft_runtime *rt);

/* Index of the calling worker thread in its runtime (0 .. workers-1), or
 * -1 when the caller is not a weft worker. */
WEFT_API int weft_worker_index(void);

/* The runtime the calling worker belongs to, or NULL outside workers. */
WEFT_API weft_runtime *weft_current_runtime(void);

/* The version string of the library actually linked. */
WEFT_API const char *weft_version(void);

#ifdef __cplusplus
}
#endif

#endif
