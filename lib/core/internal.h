/* Internal structures of the pool. Nothing outside lib/ includes this. */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <hwloc.h>

#include "weft.h"
#include "atomics.h"

#define WEFT__CACHELINE 64
#define WEFT__TLS __attribute__((tls_model("initial-exec")))
#define WEFT__HIDDEN __attribute__((visibility("hidden")))

/* Value of a deque slot's steal state once its thief has finished. Other
 * values: 0 = not stolen, k + 1 = being run by worker k. */
#define WEFT__STOLEN_DONE UINTPTR_MAX

/* ts packs the thieves' end (tail, low half) and the shared/private
 * boundary (split, high half) of a deque into one word so a thief can
 * take a task and check the boundary with a single CAS. Indices are
 * slot numbers from the deque's base; tail <= split always. */
static inline uint32_t weft__ts_tail(uint64_t ts) { return (uint32_t)ts; }
static inline uint32_t weft__ts_split(uint64_t ts)
{
    return (uint32_t)(ts >> 32);
}
static inline uint64_t weft__ts_make(uint32_t tail, uint32_t split)
{
    return (uint64_t)split << 32 | tail;
}

typedef struct weft__root {
    struct weft__root *next;
    int (*fn)(void *arg);
    void *arg;
    int rc;
    /* 0 = pending, 1 = done, 2 = pending and the caller sleeps on it.
     * The worker's exchange to 1 (release) pairs with the caller's
     * acquire load. */
    _Atomic uint32_t done;
} weft__root;

/* A unit of queued work that is not a fork-join frame: a future's task, a
 * graph node. Its owner (lib/task) embeds it; run() is called once per
 * queue entry, on a worker. */
typedef struct weft__job {
    void (*run)(struct weft__job *job);
    struct weft__job *next; /* link in a node queue */
} weft__job;

/* A FIFO of jobs that are not pushed on the submitting worker's own deque
 * (outside threads, another NUMA node, high priority). Submitters push
 * onto `top`, a LIFO, with one compare-and-swap and never wait for a
 * lock; takers, one at a time (trylock), move the whole LIFO into their
 * private FIFO `head` (reversed) when that is empty, and take from it.
 * Everything in `head` is older than everything in `top`, so the order
 * is first in, first out. len lets pollers skip the lock when it is
 * empty (it may dip below 0 for a moment: a taker can see a job before
 * its submitter counted it). */
typedef struct weft__jqueue {
    _Atomic(weft__job *) top; /* newest first; submitters */
    _Atomic int len;
    /* When the job now at the head became the head (or the queue got its
     * first job): workers of other nodes wait out a grace period from
     * there before they take it. */
    _Atomic uint64_t head_since;
    /* head_since is kept: only on machines of several NUMA nodes, whose
     * grace reads it (a clock read costs 20-40 ns on a VM, on the path of
     * every submission from outside) */
    bool stamped;
    /* takers only, on their own line: submitters never touch it */
    alignas(WEFT__CACHELINE) pthread_mutex_t lock;
    weft__job *head; /* oldest first */
} weft__jqueue;

/* The buffer of a job deque (Chase-Lev): a power-of-two ring. Buffers
 * replaced by a bigger one stay allocated until the runtime is destroyed,
 * because a thief may still read a slot of the old one. */
typedef struct weft__jarray {
    int64_t cap;
    struct weft__jarray *retired;
    _Atomic(weft__job *) slot[];
} weft__jarray;

enum { WEFT__PRIO_LEVELS = 2 };

typedef struct weft__node {
    /* Parked workers of this node, most recent first: waking the last to
     * park wakes the warmest thread (caches, and on a VM a vCPU still
     * polling), and leaves the others asleep longer. */
    alignas(WEFT__CACHELINE) pthread_mutex_t idle_lock;
    struct weft__worker *idle_top;
    _Atomic int sleepers;
    _Atomic int searching; /* this node's share of rt->searching */
    weft__jqueue jq[WEFT__PRIO_LEVELS]; /* jobs meant for this node */
} weft__node;

/* Extension slots: state that a higher layer (lib/task) hangs on a runtime
 * without core knowing its type; freed by its hook at destroy, after the
 * workers stopped, in slot order, so a layer comes before what it may
 * use: the actors first (the fini of those still alive is user code,
 * which may release futures or use the store), the isolated pool's
 * processes before the store they use is closed, and the futures last
 * (any layer may hold some). A slot may also register a stats hook that
 * weft_stats_runtime() calls to fill the fields of its layer. */
enum { WEFT__EXT_ACTORS, WEFT__EXT_ISOLATED, WEFT__EXT_STORE,
       WEFT__EXT_FUTURES, WEFT__EXT_MAX };
typedef void (*weft__ext_free_fn)(weft_runtime *rt, void *ext);
typedef void (*weft__ext_stats_fn)(void *ext, weft_runtime_stats *out);

typedef struct weft__worker {
    /* Shared line: thieves read and CAS here; the owner writes it only
     * when it publishes or reclaims tasks. */
    alignas(WEFT__CACHELINE) _Atomic uint64_t ts;
    _Atomic unsigned char allstolen_pub; /* hint: nothing to steal */
    _Atomic unsigned char split_req;     /* a thief asked for more */

    /* Parking: the futex word a parked worker sleeps on (bumped by its
     * waker), and its link in its node's idle stack (under idle_lock). */
    alignas(WEFT__CACHELINE) _Atomic uint32_t park_seq;
    struct weft__worker *idle_next;
    bool idle_listed;

    /* Read-mostly after start-up. */
    alignas(WEFT__CACHELINE) weft_task **dq; /* cap slots */
    weft_task_fn *dqfn;                      /* their frames' real fns */
    _Atomic uintptr_t *state;                /* cap steal states */
    uint32_t cap;
    int index;
    int cpu;  /* OS PU index it is pinned to, or -1 */
    int numa; /* logical NUMA node index */
    weft__cursor *cur; /* the owner's thread-local cursor */
    struct weft_runtime *rt;
    uint16_t *victims;  /* other workers, nearest first */
    uint32_t *lvl_end;  /* victims[lvl_end[k-1] .. lvl_end[k]) share a level */
    /* Per victim (by index), owner-private: how many of the next visits
     * skip its job deque, log2 of the skip after the next short stolen
     * job, and whether its last live job was long (grain_after). */
    struct weft__grain { uint8_t skip, shift, worth; } *grain;
    uint32_t nlevels;
    uint32_t near_end;  /* victims before this index are on our NUMA node */
    pthread_t thread;
    hwloc_obj_t pu;

    /* Job deque (Chase-Lev, Le et al. 2013): thieves CAS jtop; the owner
     * pushes and pops at jbot. */
    alignas(WEFT__CACHELINE) _Atomic int64_t jtop;
    alignas(WEFT__CACHELINE) _Atomic int64_t jbot;
    _Atomic(weft__jarray *) jarr;
    int64_t jtop_seen; /* owner's last read of jtop: a lower bound */

    /* Owner-private. */
    alignas(WEFT__CACHELINE) uint64_t rng;
    uint32_t split; /* the split half of ts, which only the owner moves */
    bool allstolen; /* nothing private, every shared frame was stolen */
    unsigned help_depth; /* nested waits that run other work */
    bool searching; /* in the idle search (not waiting, not running) */
    /* Private generic frames kept for thieves before a spawn runs its
     * child at once (deque.c): the runtime's hold, raised when such a
     * child kept a thief waiting; above WEFT__HOLD_MAX: never. Owner. */
    int hold;
    /* A job made ready by the one running here, kept to run next on this
     * worker instead of on the deque (weft__job_defer): no wake, no
     * steal, no cache lines moving. Taken first by weft__job_pop. */
    weft__job *deferred;
    unsigned defer_chain; /* deferred jobs run in a row */

    /* Counters: single writer (the owner), read by weft_stats_workers. */
    alignas(WEFT__CACHELINE) _Atomic uint64_t steals_tried;
    _Atomic uint64_t steals_won;
    _Atomic uint64_t steals_near;
    _Atomic uint64_t roots;
    _Atomic uint64_t parks;
    _Atomic uint64_t busy_ns; /* running tasks, waits included */
    _Atomic uint64_t spin_ns; /* idle, searching */
    _Atomic uint64_t wait_ns; /* in a sync, nothing to steal */
    _Atomic uint64_t parked_ns;
    /* Start of the work, search or park now under way, or 0: a reader
     * adds the time so far, so statistics are live, not only updated when
     * each period ends. Cleared before the period's total grows. */
    _Atomic uint64_t busy_since, spin_since, parked_since;
    _Atomic uint64_t misuses;
    _Atomic uint64_t starved; /* children run at the spawn that kept a
                                 thief waiting (deque.c) */
    _Atomic uint64_t published; /* fork-join frames made stealable */
    _Atomic uint64_t jobs;
    _Atomic uint64_t map_items; /* parallel-map items finished (lib/map) */
    /* actor messages sent from / handled on this worker (lib/actor) */
    _Atomic uint64_t actor_sent, actor_handled;
    /* Job tokens created / consumed on this worker (see jobs.c): written
     * with release by the owner, read with acquire by destroy. */
    _Atomic uint64_t jobs_in, jobs_out;

    /* Readers only: the most busy time reported so far (weft_stats_workers
     * never reports less); a line of its own, the owner never touches it. */
    alignas(WEFT__CACHELINE) _Atomic uint64_t busy_shown;
} weft__worker;

struct weft_runtime {
    int nworkers;
    int pinned;
    int spin_us;
    int hold; /* weft_config.hold resolved: what each worker starts with */
    size_t stack_size;
    hwloc_topology_t topo;
    bool synthetic;
    weft__worker **workers;

    /* Injection queue for threads that are not workers: a FIFO under a
     * mutex; inject_len lets idle workers skip the lock when empty. */
    pthread_mutex_t inject_lock;
    weft__root *inject_head, *inject_tail;
    alignas(WEFT__CACHELINE) _Atomic int inject_len;

    /* Parking (see park.c for the protocol): one futex per NUMA node so
     * that work published on a node wakes a sleeper of that node. */
    alignas(WEFT__CACHELINE) _Atomic int sleepers;
    _Atomic int searching;
    int nnodes;
    struct weft__node *nodes;

    /* Job tokens of threads that are not workers. */
    alignas(WEFT__CACHELINE) _Atomic uint64_t jobs_in_ext, jobs_out_ext;

    _Atomic(void *) ext[WEFT__EXT_MAX];
    weft__ext_free_fn ext_free[WEFT__EXT_MAX];
    /* written before the slot's ext is published (release), read after
     * its acquire load */
    weft__ext_stats_fn ext_stats[WEFT__EXT_MAX];
    pthread_mutex_t ext_lock;
    /* weft_config.store_capacity (or WEFT_STORE_CAPACITY); lib/store reads
     * it when it opens the runtime's store */
    uint64_t store_capacity;

    /* Statistics of the whole runtime (publish.c, lib/map): map calls
     * done, and items of isolated maps (the pool's count per worker). */
    alignas(WEFT__CACHELINE) _Atomic uint64_t maps, map_items;
    /* lib/actor: actors alive, restarts, messages sent from outside
     * threads, and messages dropped unhandled (stop, death) */
    _Atomic uint64_t actors, actor_restarts, actor_sent_ext, actor_dropped;
    /* lib/net: peers met (registry checked) and alive, over every node of
     * this runtime */
    _Atomic int64_t peers;
    uint64_t created_ns;
    pid_t pid; /* the process that made it, whose threads its workers are */
    struct weft__publisher *publisher; /* NULL unless WEFT_STATS is set */

    alignas(WEFT__CACHELINE) _Atomic int stopping; /* destroy has begun */
    _Atomic int inflight;                          /* weft_run calls */
    _Atomic int started;                           /* workers ready */
    _Atomic int start_failed;
    _Atomic int finished; /* workers out of their idle loop, at stop */
};

/* Thread-local identity of the calling worker, NULL outside workers. */
extern WEFT__TLS _Thread_local weft__worker *weft__self;

/* Set (by lib/actor) while the calling thread runs an actor's receive that
 * may hold sends not yet published (the actor's outbox, actor.c). Every
 * weft call that can wait, or run other work on this thread, calls
 * weft__before_wait() first: the hook publishes the held sends, so that
 * what the caller waits for can depend on them, and clears itself, so
 * that the work run meanwhile (a task, a future run in place) sends
 * without holding anything back. Calls that hand work to other threads
 * (a submit, tasks made stealable) call weft__before_share(): the held
 * sends go first, so that the work's own sends cannot overtake them, and
 * the receive goes on holding its later ones. */
extern WEFT__TLS _Thread_local void (*weft__wait_hook)(bool waits);

static inline void weft__before_wait(void)
{
    void (*h)(bool) = weft__wait_hook;
    if (WEFT_UNLIKELY(h != NULL))
        h(true);
}

static inline void weft__before_share(void)
{
    void (*h)(bool) = weft__wait_hook;
    if (WEFT_UNLIKELY(h != NULL))
        h(false);
}

/* For tests (test_future.c), NULL otherwise: called by a release of a
 * future that leaves only its queue entry's reference, just after it let
 * go, where the entry's holder may free the slot and another future take
 * it (lib/task/future.c). A test stalls the release there to make that
 * happen under it. */
typedef void (*weft__test_hook)(void);
extern _Atomic weft__test_hook weft__fut_unref_hook;

/* topo.c */
WEFT__HIDDEN int weft__topo_load(weft_runtime *rt, const char *desc);
WEFT__HIDDEN int weft__topo_count_cores(weft_runtime *rt, int *ncores);
WEFT__HIDDEN int weft__topo_place(weft_runtime *rt);
WEFT__HIDDEN int weft__topo_victims(weft_runtime *rt, weft__worker *w);
WEFT__HIDDEN void weft__topo_bind(weft_runtime *rt, weft__worker *w);
WEFT__HIDDEN void *weft__alloc_on_node(weft_runtime *rt, size_t size,
                                       int node);
WEFT__HIDDEN void weft__free_on_node(void *p, size_t size);

/* park.c */
WEFT__HIDDEN void weft__futex_wait(_Atomic uint32_t *addr, uint32_t val);
WEFT__HIDDEN int weft__futex_wait_until(_Atomic uint32_t *addr, uint32_t val,
                                        uint64_t deadline_ns);
WEFT__HIDDEN void weft__futex_wake(_Atomic uint32_t *addr, int n);
/* The same on a word other processes map too (shared: not private). */
WEFT__HIDDEN int weft__futex_wait_until_in(_Atomic uint32_t *addr,
                                           uint32_t val, uint64_t deadline_ns,
                                           bool shared);
WEFT__HIDDEN void weft__futex_wake_in(_Atomic uint32_t *addr, int n,
                                      bool shared);
/* Asymmetric Dekker across processes: the fast side stores, then loads
 * with only a compiler barrier between; the slow side stores, calls
 * weft__membarrier_global, then loads. Both processes registered. */
WEFT__HIDDEN bool weft__membarrier_register(void);
WEFT__HIDDEN int weft__membarrier_global(void);
WEFT__HIDDEN void weft__wake_for_work(weft_runtime *rt, int node);
WEFT__HIDDEN void weft__wake_on_node(weft_runtime *rt, int node);
WEFT__HIDDEN void weft__wake_all(weft_runtime *rt);
WEFT__HIDDEN void weft__park(weft_runtime *rt, weft__worker *w);
WEFT__HIDDEN bool weft__work_visible(weft_runtime *rt, int node,
                                     uint64_t *wake_at);
WEFT__HIDDEN uint64_t weft__now_ns(void);

/* jobs.c */
WEFT__HIDDEN int weft__jobs_init(weft_runtime *rt);
WEFT__HIDDEN void weft__jobs_fini(weft_runtime *rt);
WEFT__HIDDEN void weft__job_push(weft_runtime *rt, weft__job *j, int node,
                                 int prio);
WEFT__HIDDEN weft__job *weft__job_pop(weft__worker *w);
WEFT__HIDDEN bool weft__job_defer(weft_runtime *rt, weft__job *j);
WEFT__HIDDEN weft__job *weft__job_steal(weft__worker *v);
WEFT__HIDDEN weft__job *weft__job_peek(weft__worker *w);
WEFT__HIDDEN weft__job *weft__job_peek_top(weft__worker *w);
WEFT__HIDDEN weft__job *weft__job_take_high(weft_runtime *rt, int node);
WEFT__HIDDEN weft__job *weft__job_take_node(weft_runtime *rt, int node);
WEFT__HIDDEN weft__job *weft__job_take_far(weft_runtime *rt, int node);
WEFT__HIDDEN bool weft__jobs_visible(weft_runtime *rt, int node,
                                     uint64_t *wake_at);
WEFT__HIDDEN void weft__jobs_begin(weft_runtime *rt);
WEFT__HIDDEN void weft__jobs_end(weft_runtime *rt);
WEFT__HIDDEN void weft__jobs_quiesce(weft_runtime *rt);
WEFT__HIDDEN void *weft__ext_get(weft_runtime *rt, int slot,
                                 void *(*make)(weft_runtime *rt),
                                 weft__ext_free_fn free_fn);
/* Like weft__ext_get, for a make that can fail with a reason: when the
 * slot is empty, make(rt, arg, &ext) runs under the extension lock and
 * its ext (returned 0) is published with free_fn and stats_fn (may be
 * NULL); its error is returned otherwise. *out gets the slot's ext, the
 * new one or the one that was there. */
WEFT__HIDDEN int weft__ext_make(weft_runtime *rt, int slot,
                                int (*make)(weft_runtime *rt, void *arg,
                                            void **ext),
                                void *arg, weft__ext_free_fn free_fn,
                                weft__ext_stats_fn stats_fn, void **out);
WEFT__HIDDEN int weft__enter(weft_runtime *rt);
WEFT__HIDDEN void weft__leave(weft_runtime *rt);
/* Whether the calling thread is between a weft__enter(rt) and its leave
 * (a callback of that call runs on it): destroy refuses, -EDEADLK. */
WEFT__HIDDEN bool weft__holds(const weft_runtime *rt);
/* Set in a forked child (any fork after the first runtime was made, an
 * isolated map's workers included, by the handler weft__watch_forks
 * registers): the runtimes it inherited have no workers there, so work
 * handed to one would wait for ever, and their shared resources are the
 * parent's. weft__enter, weft_run, destroy and the waits refuse them. */
extern WEFT__HIDDEN bool weft__forked;
/* This process's pid, set with weft__forked: getpid() is a system call
 * (1.3 us on the loaded 2-core VM), too dear for every submission of a child
 * that makes a runtime of its own. */
extern WEFT__HIDDEN pid_t weft__forked_pid;
/* Register the fork handler that sets weft__forked, once per process:
 * 0, or -ENOMEM (weft_runtime_create fails then). */
WEFT__HIDDEN int weft__watch_forks(void);
static inline bool weft__foreign(const weft_runtime *rt)
{
    return WEFT_UNLIKELY(weft__forked) && rt->pid != weft__forked_pid;
}

/* publish.c */
typedef struct weft__publisher weft__publisher;
WEFT__HIDDEN void weft__publish_start(weft_runtime *rt);
WEFT__HIDDEN void weft__publish_stop(weft_runtime *rt);

/* deque.c */
WEFT__HIDDEN bool weft__deque_starved(void);
WEFT__HIDDEN void weft__hold_reset(weft__worker *w);
WEFT__HIDDEN void weft__recount(weft__worker *w, weft_task *top);
/* The most frames a worker keeps before a spawn runs its child at once;
 * a hold above it means never (weft_config.hold -1). */
#define WEFT__HOLD_MAX 64
#define WEFT__HOLD_DEFAULT 4

/* worker.c */
WEFT__HIDDEN void *weft__worker_main(void *arg);
WEFT__HIDDEN void weft__enter_allstolen(weft__worker *w);
WEFT__HIDDEN uint32_t weft__rand(weft__worker *w);
WEFT__HIDDEN bool weft__help(weft__worker *w, weft__worker *prefer);
WEFT__HIDDEN void weft__count_job(void);

/* liburing maps a ring's memory with system calls of its own, which
 * ThreadSanitizer does not see: when a new ring lands where a closed one
 * was, the closed ring's writes (from its thread) look like a race with
 * the new ring's. So every ring's close releases, and every ring's open
 * acquires, one token: the order that munmap and mmap really give. Call
 * weft__ring_opened() after io_uring_queue_init succeeds and
 * weft__ring_closing() before io_uring_queue_exit. No-ops elsewhere. */
#ifdef WEFT__TSAN
#include <sanitizer/tsan_interface.h>
extern WEFT__HIDDEN char weft__ring_token;
static inline void weft__ring_opened(void)
{
    __tsan_acquire(&weft__ring_token);
}
static inline void weft__ring_closing(void)
{
    __tsan_release(&weft__ring_token);
}
#else
static inline void weft__ring_opened(void) {}
static inline void weft__ring_closing(void) {}
#endif

/* Log a one-line diagnostic on stderr, prefixed "weft: ". */
WEFT__HIDDEN void weft__log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
