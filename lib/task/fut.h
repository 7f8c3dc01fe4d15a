/* Futures' internals, shared by future.c (futures, waiting) and graph.c
 * (task graphs, whose outputs are futures). Nothing outside lib/task
 * includes this. */
#ifndef WEFT_TASK_FUT_H
#define WEFT_TASK_FUT_H

#include "internal.h"

/* state word of a future: phase in the low bits, flags above.
 *   WAITING -> QUEUED      when its last dependency is done
 *   QUEUED  -> RUNNING     claimed by a worker, a waiting getter, or a
 *                          canceller (with CANCEL set)
 *   WAITING -> RUNNING     claimed by a canceller (CANCEL set)
 *   RUNNING -> DONE        complete(): status and result are final
 * Flags may be set in any phase but DONE (WAITERS may also be left set on
 * a DONE state by a registration that lost the race; it means nothing
 * there). Every test of the phase masks. */
enum {
    PH_WAITING = 0,
    PH_QUEUED = 1,
    PH_RUNNING = 2,
    PH_DONE = 3,
    PH_MASK = 3,
    ST_CANCEL = 1u << 2,   /* cancellation asked */
    ST_SLEEPERS = 1u << 3, /* a thread sleeps on the futex of state */
    ST_WAITERS = 1u << 4,  /* the waiter list may be non-empty */
    ST_NORESULT = 1u << 5, /* DONE, and someone destroys the result */
    ST_DROPPED = 1u << 6,  /* ... and has finished doing so */
};

typedef struct wnode wnode;
typedef struct edge edge;

/* One future: 128 bytes, aligned so that handles can carry a generation
 * in their top bits. Lives in a slab of its runtime's pool (future.c);
 * never returned to the system before the runtime is destroyed, which is
 * what makes a stale handle detectable instead of a use after free. */
typedef struct fut {
    weft__job job;            /* queue entry */
    _Atomic uint32_t state;
    _Atomic uint32_t gen;     /* bumped at free; handles carry 16 bits */
    /* References, three kinds in one word (FUT_*_REF): users' (a handle
     * is valid while there is one), readers' (dependants and graph runs,
     * which read the result), and the queue entry's (or a graph output's
     * completer). The result is destroyed once the future is done and
     * neither users nor readers are left; the slot once nothing is. */
    _Atomic uint64_t refs;
    _Atomic uint32_t pending; /* dependencies not yet done (+1 at setup) */
    int status, cause;        /* final once DONE (release by complete) */
    uint32_t ndeps;
    weft_runtime *rt;
    weft_fn fn;               /* NULL: completed by graph.c, not run */
    void *arg;                /* fn's; with fn NULL, a weft__poller or NULL */
    void *result;
    void (*dtor)(void *);
    const char *name;
    wnode *waiters;           /* under lock */
    edge *edges;              /* ndeps, owned until finish_deps */
    _Atomic uint32_t attempts; /* up to max_retries + 1: 65536 */
    uint16_t max_retries;
    _Atomic int16_t runner;   /* worker index running it, or -1 */
    int8_t node;
    uint8_t prio;
    uint8_t flags;
    _Atomic uint8_t lock;     /* guards waiters */
} __attribute__((aligned(128))) fut;

#define FUT_USER_REF ((uint64_t)1 << 32)
#define FUT_READER_REF ((uint64_t)2)
#define FUT_QUEUE_REF ((uint64_t)1)

/* The running attempt handed to a task function: a future's, or a graph
 * node's (run != NULL). */
struct weft_job {
    fut *f;
    struct grun *run;
    uint32_t id;
    int attempt;
    void **result;
    void (**dtor)(void *);
};

/* What an outside thread that waits for an external future calls to
 * bring its completion closer itself (lib/net: the transport's progress,
 * instead of waking its communication thread and being woken by it).
 * poll returns true when it did something; the waiter polls until the
 * future is done or poll has done nothing for a while, then calls stop
 * (if not NULL) and sleeps. The poller must stay valid while the future
 * can be waited for. */
typedef struct weft__poller {
    bool (*poll)(struct weft__poller *p);
    void (*stop)(struct weft__poller *p);
} weft__poller;

/* future.c, for graph.c */
WEFT__HIDDEN int weft__fut_check_opts(const weft_submit_opts *o);
WEFT__HIDDEN int weft__fut_external(weft_runtime *rt, const char *name,
                                    fut **out, weft_future **handle);
/* Complete external future f with this status and result (owned), and
 * drop the completer's reference. When its owner cancelled it first, f
 * is done already (-ECANCELED) and result is destroyed here: only for a
 * completer with no other reader of result (graph.c claims instead). */
WEFT__HIDDEN void weft__fut_complete_external(fut *f, int status, int cause,
                                              void *result,
                                              void (*dtor)(void *));
/* The same in two steps, for a completer that must know before it starts
 * the work whether its owner cancelled it: claim (WAITING -> RUNNING;
 * false when a canceller claimed it first: finish must not follow, and
 * the completer's reference is still to drop), then finish (only after a
 * claim that succeeded; a cancel meanwhile returns -EINPROGRESS and sets
 * the flag weft__fut_cancelled() reads). */
WEFT__HIDDEN bool weft__fut_claim_external(fut *f);
WEFT__HIDDEN void weft__fut_finish_external(fut *f, int status, int cause,
                                            void *result,
                                            void (*dtor)(void *));
/* Give external future f (not yet shared with another thread) a poller. */
WEFT__HIDDEN void weft__fut_set_poller(fut *f, weft__poller *p);
/* Give the calling thread a poller of its own (NULL: none), driven
 * instead of the future's whenever this thread waits for a future (also
 * in weft_wait): a thread whose waits must never stop bringing
 * completions closer (lib/net: a communication thread that runs a task
 * inline, whose transport no other thread drives), whatever it waits
 * for. Its poll should return true: it polls until the wait ends. */
WEFT__HIDDEN void weft__fut_thread_poller(weft__poller *p);
WEFT__HIDDEN void weft__fut_unref(fut *f, uint64_t n);
WEFT__HIDDEN int weft__call_retrying(weft_job *job, weft_fn fn, void *arg,
                                     unsigned max_retries,
                                     _Atomic uint32_t *attempts);
WEFT__HIDDEN bool weft__fut_cancelled(fut *f);

/* lib/net: the destructor of a done future's result (NULL when none, or
 * when h is not a live handle), to tell what kind of value it is. */
typedef void (*weft__dtor_fn)(void *);
WEFT__HIDDEN weft__dtor_fn weft__fut_result_dtor(const weft_future *h);

/* graph.c, for future.c */
WEFT__HIDDEN int weft__graph_job_dep(const weft_job *job, size_t i,
                                     void **value);
WEFT__HIDDEN int weft__graph_job_cancelled(const weft_job *job);
WEFT__HIDDEN size_t weft__graph_job_ndeps(const weft_job *job);
WEFT__HIDDEN weft_runtime *weft__graph_job_runtime(const weft_job *job);

#endif
