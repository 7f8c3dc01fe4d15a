/* Futures: submission, completion, dependencies, cancellation, retries,
 * waiting (one, or k of n) from workers and from outside threads.
 *
 * Life of a future (see the state word in fut.h):
 *  - references: the caller's, plus one "queue reference" held by the
 *    entry that will be taken from a queue (or, while WAITING, by the
 *    pending dependency edges). The queue reference goes with the job
 *    token (jobs.c) when the entry is consumed, run or discarded.
 *  - whoever claims a QUEUED future (the worker that pops it, or a worker
 *    waiting on it, which runs it at once on its own stack) runs it; an
 *    entry whose future was already claimed is discarded when popped.
 *  - dependencies: each is retained and has an edge in its waiter list;
 *    the last one done makes the dependant QUEUED and pushes it, so a
 *    chain of a million futures runs iteratively, never recursively.
 *    Edges and dependency references are dropped once the dependant is
 *    done and no edge can still be reached (finish_deps).
 *  - waiters: a spinlocked list per future, of dependency edges and
 *    weft_wait groups; completion detaches it and notifies each. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "fut.h"

struct wnode {
    wnode *next, *prev;
    void *owner;   /* the dependant (edge) or the group (weft_wait) */
    bool is_edge;
    bool linked;   /* still in a waiter list (group nodes only) */
};

struct edge {
    wnode n;
    fut *dep;
};

/* The budget: at most 128 bytes per pending future. */
_Static_assert(sizeof(fut) == 128, "a future must fit its 128-byte slot");

/* ---- the pool of future slots ---- */

#define SLAB_BYTES (64u << 10)
#define CACHE_MAX 512 /* slots a worker keeps before giving half back */
#define REFILL 64
#define HANDLE_BITS 48
#define HANDLE_MASK (((uintptr_t)1 << HANDLE_BITS) - 1)

typedef struct slab {
    struct slab *next;
} slab;

/* A slab's slots: the first slot's room holds the header, keeping the
 * others aligned. */
static fut *slab_first(slab *s) { return (fut *)((char *)s + sizeof(fut)); }
static fut *slab_end(slab *s) { return (fut *)((char *)s + SLAB_BYTES); }

typedef struct fcache {
    alignas(WEFT__CACHELINE) fut *free;
    uint32_t n;
} fcache;

typedef struct fpool {
    weft_runtime *rt;
    pthread_mutex_t lock; /* guards free and slabs */
    fut *free;
    slab *slabs;
    fcache *caches; /* one per worker, owner only */
    uint64_t id;    /* unique in the process: names it to outside caches */
    struct fpool *live_next; /* in live_pools, under live_lock */
} fpool;

/* Outside threads (not workers of the pool's runtime) keep a small cache
 * of one pool's slots in thread-local memory, so that a thread that
 * submits and collects many futures takes the pool's lock once per
 * OUT_REFILL of them instead of twice per future. A cache names its pool
 * by id, never dereferenced unless that pool is in live_pools (under
 * live_lock): a runtime destroyed meanwhile took the slots with its
 * slabs, and the cache is just forgotten. A thread that exits gives its
 * slots back (the key's destructor). */
#define OUT_REFILL 32
#define OUT_MAX 128

typedef struct ocache {
    uint64_t id; /* 0: empty */
    fpool *p;
    fut *free;
    uint32_t n;
} ocache;

static _Thread_local ocache t_out;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static fpool *live_pools;
static _Atomic uint64_t pool_ids;
static pthread_key_t out_key;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

static void *pool_make(weft_runtime *rt)
{
    fpool *p = weft__calloc(1, sizeof *p);
    fcache *c = weft__aligned_alloc(WEFT__CACHELINE,
                                    (size_t)rt->nworkers * sizeof *c);
    if (!p || !c) {
        weft__free(p);
        weft__aligned_free(c);
        return NULL;
    }
    memset(c, 0, (size_t)rt->nworkers * sizeof *c);
    p->rt = rt;
    p->caches = c;
    pthread_mutex_init(&p->lock, NULL);
    p->id = atomic_fetch_add_explicit(&pool_ids, 1, memory_order_relaxed) + 1;
    pthread_mutex_lock(&live_lock);
    p->live_next = live_pools;
    live_pools = p;
    pthread_mutex_unlock(&live_lock);
    return p;
}

static void live_remove(fpool *p)
{
    pthread_mutex_lock(&live_lock);
    fpool **pp = &live_pools;
    while (*pp && *pp != p)
        pp = &(*pp)->live_next;
    if (*pp)
        *pp = p->live_next;
    pthread_mutex_unlock(&live_lock);
}

static void fut_drop_result(fut *f)
{
    if (f->result && f->dtor)
        f->dtor(f->result);
    f->result = NULL;
    f->dtor = NULL;
}

/* Runtime destroy, after the workers stopped: futures the user never
 * released are freed here, their results destroyed. */
static void pool_free(weft_runtime *rt, void *ext)
{
    fpool *p = ext;
    live_remove(p); /* outside caches of it are forgotten from now on */
    for (slab *s = p->slabs, *next; s; s = next) {
        next = s->next;
        for (fut *f = slab_first(s); f < slab_end(s); f++) {
            if (weft__load_relaxed(&f->refs) == 0)
                continue;
            fut_drop_result(f);
            weft__free(f->edges);
        }
        weft__free_on_node(s, SLAB_BYTES);
    }
    pthread_mutex_destroy(&p->lock);
    weft__aligned_free(p->caches);
    weft__free(p);
    (void)rt;
}

static fpool *pool_of(weft_runtime *rt)
{
    return weft__ext_get(rt, WEFT__EXT_FUTURES, pool_make, pool_free);
}

/* A new slab's slots onto the shared free list; under p->lock. */
static int pool_grow(fpool *p, int node)
{
    slab *s = weft__alloc_on_node(p->rt, SLAB_BYTES, node);
    if (!s)
        return -ENOMEM;
    if (((uintptr_t)s + SLAB_BYTES) & ~HANDLE_MASK) { /* no room for gen */
        weft__free_on_node(s, SLAB_BYTES);
        return -ENOMEM;
    }
    s->next = p->slabs;
    p->slabs = s;
    for (fut *f = slab_first(s); f < slab_end(s); f++) {
        f->job.next = (weft__job *)p->free;
        p->free = f;
    }
    return 0;
}

/* Take up to want slots from the shared list into *list; under p->lock. */
static uint32_t pool_take(fpool *p, fut **list, uint32_t want, int node)
{
    uint32_t n = 0;
    while (n < want) {
        if (!p->free && pool_grow(p, node))
            break;
        fut *f = p->free;
        p->free = (fut *)f->job.next;
        f->job.next = (weft__job *)*list;
        *list = f;
        n++;
    }
    return n;
}

/* Moves slots from a cache's list (*n of them) back to p's shared list
 * until keep are left. */
static void pool_give(fpool *p, fut **list, uint32_t *n, uint32_t keep)
{
    pthread_mutex_lock(&p->lock);
    for (; *n > keep && *list; --*n) {
        fut *g = *list;
        *list = (fut *)g->job.next;
        g->job.next = (weft__job *)p->free;
        p->free = g;
    }
    pthread_mutex_unlock(&p->lock);
}

/* Gives this thread's outside cache back to its pool if that pool is
 * still alive, and empties it. */
static void out_flush(ocache *c)
{
    if (!c->id)
        return;
    pthread_mutex_lock(&live_lock);
    fpool *p = live_pools;
    while (p && !(p == c->p && p->id == c->id))
        p = p->live_next;
    if (p)
        pool_give(p, &c->free, &c->n, 0);
    pthread_mutex_unlock(&live_lock);
    *c = (ocache){0};
}

static void out_key_dtor(void *arg)
{
    (void)arg;
    out_flush(&t_out);
}

static void out_key_make(void)
{
    if (pthread_key_create(&out_key, out_key_dtor) != 0)
        out_key = (pthread_key_t)-1; /* no destructor: caches unused */
}

/* Whether outside cache c holds p's slots (the id guards against a
 * pool freed and another made at the same address). */
static bool out_holds(const ocache *c, const fpool *p)
{
    return c->id == p->id && c->p == p;
}

/* This thread's outside cache for p, switched over to p if it held
 * another pool's slots; NULL when the thread cannot have one. */
static ocache *out_cache(fpool *p)
{
    ocache *c = &t_out;
    if (out_holds(c, p))
        return c;
    pthread_once(&out_once, out_key_make);
    if (out_key == (pthread_key_t)-1 ||
        pthread_setspecific(out_key, c) != 0)
        return NULL;
    out_flush(c);
    c->id = p->id;
    c->p = p;
    return c;
}

static fut *fut_alloc(fpool *p)
{
    weft__worker *w = weft__self;
    fut *f = NULL;
    if (w && w->rt == p->rt) {
        fcache *c = &p->caches[w->index];
        if (!c->free) {
            pthread_mutex_lock(&p->lock);
            c->n += pool_take(p, &c->free, REFILL, w->numa);
            pthread_mutex_unlock(&p->lock);
        }
        if ((f = c->free)) {
            c->free = (fut *)f->job.next;
            c->n--;
        }
        return f;
    }
    ocache *c = out_cache(p);
    if (c && !c->free) {
        pthread_mutex_lock(&p->lock);
        c->n += pool_take(p, &c->free, OUT_REFILL, 0);
        pthread_mutex_unlock(&p->lock);
    }
    if (c && (f = c->free)) {
        c->free = (fut *)f->job.next;
        c->n--;
        return f;
    }
    pthread_mutex_lock(&p->lock);
    pool_take(p, &f, 1, 0);
    pthread_mutex_unlock(&p->lock);
    return f;
}

/* Pushes f onto a cache's list; beyond max, half of it goes back to p. */
static void cache_put(fpool *p, fut **list, uint32_t *n, uint32_t max,
                      fut *f)
{
    f->job.next = (weft__job *)*list;
    *list = f;
    if (++*n > max)
        pool_give(p, list, n, max / 2);
}

static void fut_free(fut *f)
{
    fpool *p = weft__load_relaxed(&f->rt->ext[WEFT__EXT_FUTURES]);
    weft__worker *w = weft__self;
    /* release: a stale handle's check (acquire) sees the slot retired */
    weft__store_release(&f->gen, weft__load_relaxed(&f->gen) + 1);
    if (w && w->rt == f->rt) {
        fcache *c = &p->caches[w->index];
        cache_put(p, &c->free, &c->n, CACHE_MAX, f);
        return;
    }
    ocache *c = &t_out;
    if (out_holds(c, p)) { /* no switch: frees stay cheap */
        cache_put(p, &c->free, &c->n, OUT_MAX, f);
        return;
    }
    pthread_mutex_lock(&p->lock);
    f->job.next = (weft__job *)p->free;
    p->free = f;
    pthread_mutex_unlock(&p->lock);
}

/* ---- handles and references ---- */

static weft_future *handle_of(fut *f)
{
    uintptr_t gen = weft__load_relaxed(&f->gen) & 0xffffu;
    return (weft_future *)((uintptr_t)f | gen << HANDLE_BITS);
}

/* The future behind a handle, or NULL when the handle is NULL, malformed,
 * or names a future already freed. */
static fut *fut_of(const weft_future *h)
{
    uintptr_t v = (uintptr_t)h;
    fut *f = (fut *)(v & HANDLE_MASK);
    if (!f || ((uintptr_t)f & (sizeof(fut) - 1)))
        return NULL;
    /* acquire pairs with the release in fut_free */
    if ((weft__load_acquire(&f->gen) & 0xffffu) != v >> HANDLE_BITS)
        return NULL;
    return weft__load_relaxed(&f->refs) >= FUT_USER_REF ? f : NULL;
}

static void fut_ref(fut *f) { weft__add_relaxed(&f->refs, FUT_READER_REF); }

static bool phase_done(uint32_t s) { return (s & PH_MASK) == PH_DONE; }

/* Nobody can read the result of a done future whose users and readers
 * are gone: destroy it now rather than when a stale queue entry lets go.
 * Both the last such release and complete() try; the flag makes it
 * once. The caller holds a reference, so the slot cannot be freed (and
 * taken by another future) under it. seq_cst here and in both callers:
 * each sees the other's step, or the future's last reference destroys
 * the result (weft__fut_unref). */
static void result_maybe_drop(fut *f)
{
    uint32_t s = weft__load_seqcst(&f->state);
    if (!phase_done(s) || (s & ST_DROPPED))
        return;
    if (!(s & ST_NORESULT) &&
        !(atomic_fetch_or_explicit(&f->state, ST_NORESULT,
                                   memory_order_acq_rel) & ST_NORESULT)) {
        fut_drop_result(f);
        /* release pairs with the acquire below */
        atomic_fetch_or_explicit(&f->state, ST_DROPPED, memory_order_release);
        return;
    }
    /* Another thread destroys it: wait, so that a user whose release
     * returned knows the destructor has run. The dropper, too, holds a
     * reference until it is done. */
    while (!(weft__load_acquire(&f->state) & ST_DROPPED))
        weft__cpu_relax();
}

_Atomic weft__test_hook weft__fut_unref_hook;

/* Drop n references (FUT_*_REF). */
void weft__fut_unref(fut *f, uint64_t n)
{
    uint64_t r = weft__load_relaxed(&f->refs);
    do {
        /* Ours is the last user's or reader's reference, and the queue
         * entry's is left: its holder may free the slot as soon as we let
         * go, and another future take it, so the result goes now, while
         * ours pins the slot (nobody can add a reference meanwhile: that
         * takes one). A future completed after this look is dropped by
         * complete() or, when that saw ours still held, by its last
         * reference, the entry's, which its completer lets go next. */
        if (r - n == FUT_QUEUE_REF)
            result_maybe_drop(f);
        /* seq_cst: pairs with complete(); the last owner sees every
         * other owner's writes */
    } while (!atomic_compare_exchange_weak_explicit(&f->refs, &r, r - n,
                 memory_order_seq_cst, memory_order_relaxed));
    if (r - n == FUT_QUEUE_REF) {
        weft__test_hook h = weft__load_relaxed(&weft__fut_unref_hook);
        if (WEFT_UNLIKELY(h != NULL))
            h();
        return; /* f is not ours to touch any more */
    }
    if (r != n)
        return;
    if (!(weft__load_relaxed(&f->state) & ST_NORESULT))
        fut_drop_result(f); /* never dropped: a destroy-time leftover, or
                             * a completion that saw our reference */
    fut_free(f);
}

/* ---- the waiter list ---- */

static void fut_lock(fut *f)
{
    while (atomic_exchange_explicit(&f->lock, 1, memory_order_acquire))
        while (weft__load_relaxed(&f->lock))
            weft__cpu_relax();
}

static void fut_unlock(fut *f) { weft__store_release(&f->lock, 0); }

/* Add n to f's waiters unless f is done (then false: nothing added). */
static bool attach(fut *f, wnode *n)
{
    fut_lock(f);
    /* acq_rel: a completion after this sees the flag (and takes the lock
     * we hold); one before it is seen here as DONE */
    uint32_t old = atomic_fetch_or_explicit(&f->state, ST_WAITERS,
                                            memory_order_acq_rel);
    if (phase_done(old)) {
        fut_unlock(f);
        return false;
    }
    n->prev = NULL;
    n->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = n;
    f->waiters = n;
    n->linked = true;
    fut_unlock(f);
    return true;
}

static void detach(fut *f, wnode *n)
{
    fut_lock(f);
    if (n->linked) {
        if (n->prev)
            n->prev->next = n->next;
        else
            f->waiters = n->next;
        if (n->next)
            n->next->prev = n->prev;
        n->linked = false;
    }
    fut_unlock(f);
}

typedef struct group {
    _Atomic uint32_t ndone;
    uint32_t need;
    _Atomic uint32_t seq; /* futex of an outside waiter */
} group;

static void group_hit(group *g)
{
    if (weft__add_seqcst(&g->ndone, 1) + 1 == g->need) {
        weft__add_seqcst(&g->seq, 1);
        weft__futex_wake(&g->seq, 1);
    }
}

static void dep_done(fut *f);

/* f just became DONE with ST_WAITERS seen: detach the list under the
 * lock, notify the groups there (their waiters cannot leave while we
 * hold it), and the dependants after unlocking (an edge stays valid
 * until its dependant's pending count reaches zero). */
static void notify_waiters(fut *f)
{
    edge *edges = NULL;
    fut_lock(f);
    wnode *n = f->waiters;
    f->waiters = NULL;
    while (n) {
        wnode *next = n->next;
        n->linked = false;
        if (n->is_edge) {
            n->next = (wnode *)edges;
            edges = (edge *)n;
        } else {
            group_hit(n->owner);
        }
        n = next;
    }
    fut_unlock(f);
    while (edges) {
        edge *next = (edge *)edges->n.next;
        dep_done(edges->n.owner);
        edges = next;
    }
}

/* Make f DONE with this status. The exchange releases status, cause and
 * result to every reader that acquires the state. */
static void complete(fut *f, int status, int cause)
{
    f->status = status;
    f->cause = cause;
    /* ST_CANCEL stays, so weft__fut_cancelled() answers after the end */
    /* no result to destroy: say so now, so that the releases that race
     * to destroy it (result_maybe_drop) need no atomic read-modify-write
     * each (two fewer per future of the usual empty kind) */
    uint32_t nothing = f->result && f->dtor ? 0 : ST_NORESULT | ST_DROPPED;
    uint32_t old = weft__load_relaxed(&f->state);
    while (!atomic_compare_exchange_weak_explicit(&f->state, &old,
               PH_DONE | (old & ST_CANCEL) | nothing, memory_order_seq_cst,
               memory_order_relaxed))
        ;
    if (old & ST_SLEEPERS)
        weft__futex_wake(&f->state, INT_MAX);
    if (old & ST_WAITERS)
        notify_waiters(f);
    if (weft__load_seqcst(&f->refs) < FUT_READER_REF)
        result_maybe_drop(f);
}

/* ---- running ---- */

/* Drop the dependencies of a done future; every edge has fired. An
 * edge whose dependency is NULL let it go already (let_deps_go). */
static void finish_deps(fut *f)
{
    for (uint32_t i = 0; i < f->ndeps; i++)
        if (f->edges[i].dep)
            weft__fut_unref(f->edges[i].dep, FUT_READER_REF);
    weft__free(f->edges);
    f->edges = NULL;
    f->ndeps = 0;
}

/* Consume the queue entry's token and reference. */
static void drop_entry(fut *f)
{
    weft__jobs_end(f->rt);
    weft__fut_unref(f, FUT_QUEUE_REF);
}

/* The lowest-numbered failed dependency, or -1. */
static long failed_dep(fut *f)
{
    for (uint32_t i = 0; i < f->ndeps; i++)
        if (f->edges[i].dep->status != 0)
            return (long)i;
    return -1;
}

/* Call fn until it succeeds, is cancelled, or has had max_retries
 * retries; a retry starts without the failed attempt's result. attempts
 * (may be NULL) counts the calls for weft_future_attempts. Shared by
 * futures and graph nodes. */
int weft__call_retrying(weft_job *job, weft_fn fn, void *arg,
                        unsigned max_retries, _Atomic uint32_t *attempts)
{
    for (job->attempt = 0;; job->attempt++) {
        if (attempts)
            weft__store_relaxed(attempts, (uint32_t)job->attempt + 1);
        int st = fn(job, arg);
        if (st == 0 || weft_job_cancelled(job) ||
            (unsigned)job->attempt >= max_retries)
            return st;
        weft_job_set_result(job, NULL, NULL); /* destroys the old one */
    }
}

static int call_attempts(fut *f)
{
    weft_job job = {.f = f, .result = &f->result, .dtor = &f->dtor};
    return weft__call_retrying(&job, f->fn, f->arg, f->max_retries,
                               &f->attempts);
}

/* Run f, which the caller claimed (state RUNNING), to completion. */
static void run_claimed(fut *f)
{
    weft__worker *w = weft__self;
    weft__count_job();
    weft__store_relaxed(&f->runner, (int16_t)(w ? w->index : -1));
    long d = (f->flags & WEFT_RUN_ANYWAY) ? -1 : failed_dep(f);
    if (d >= 0) {
        complete(f, WEFT_STATUS_DEP_FAILED(d), f->edges[d].dep->cause);
    } else {
        int st = call_attempts(f);
        complete(f, st, st);
    }
    finish_deps(f);
}

/* QUEUED -> RUNNING. Retries while only flags changed (a sleeper or a
 * waiter may set one at any moment): failing then would drop a queue
 * entry whose future nobody else will run. */
static bool claim(fut *f, uint32_t s)
{
    while ((s & PH_MASK) == PH_QUEUED)
        if (weft__cas_acqrel(&f->state, &s, (s & ~PH_MASK) | PH_RUNNING))
            return true;
    return false;
}

/* The queue entry of a future (weft__job.run). */
static void fut_job_run(weft__job *j)
{
    fut *f = (fut *)j;
    if (claim(f, weft__load_acquire(&f->state)))
        run_claimed(f);
    drop_entry(f);
}

static void push(fut *f)
{
    weft__job_push(f->rt, &f->job, f->node, f->prio);
}

/* f's last dependency is done: queue it, or, when it was cancelled
 * meanwhile, consume its entry here. */
static void make_ready(fut *f)
{
    uint32_t s = weft__load_acquire(&f->state);
    while ((s & PH_MASK) == PH_WAITING)
        if (weft__cas_acqrel(&f->state, &s, (s & ~PH_MASK) | PH_QUEUED)) {
            push(f);
            return;
        }
    finish_deps(f); /* a canceller claimed it */
    drop_entry(f);
}

static void dep_done(fut *f)
{
    /* acq_rel: the last decrement sees every dependency's completion */
    if (atomic_fetch_sub_explicit(&f->pending, 1, memory_order_acq_rel) == 1)
        make_ready(f);
}

/* ---- submission ---- */

weft_submit_opts weft_submit_opts_default(void)
{
    weft_submit_opts o;
    memset(&o, 0, sizeof o);
    o.numa_node = -1;
    return o;
}

int weft__fut_check_opts(const weft_submit_opts *o)
{
    if (o->max_retries < 0 || o->max_retries > UINT16_MAX ||
        o->numa_node < -1 || o->numa_node > INT8_MAX ||
        o->priority < WEFT_PRIO_NORMAL || o->priority > WEFT_PRIO_HIGH ||
        (o->flags & ~(unsigned)WEFT_RUN_ANYWAY))
        return -EINVAL;
    return 0;
}

static void fut_init(fut *f, weft_runtime *rt, weft_fn fn, void *arg,
                     const weft_submit_opts *o, uint32_t phase)
{
    f->job.run = fut_job_run;
    f->job.next = NULL;
    weft__store_relaxed(&f->state, phase);
    weft__store_relaxed(&f->refs, FUT_USER_REF + FUT_QUEUE_REF);
    weft__store_relaxed(&f->pending, 0);
    f->status = f->cause = 0;
    f->rt = rt;
    f->fn = fn;
    f->arg = arg;
    f->result = NULL;
    f->dtor = NULL;
    f->name = o->name;
    f->waiters = NULL;
    f->edges = NULL;
    f->ndeps = 0;
    weft__store_relaxed(&f->attempts, 0);
    f->max_retries = (uint16_t)o->max_retries;
    weft__store_relaxed(&f->runner, -1);
    f->node = (int8_t)o->numa_node;
    f->prio = (uint8_t)o->priority;
    f->flags = (uint8_t)o->flags;
    weft__store_relaxed(&f->lock, 0);
}

/* Common prologue: checks, entry (refused during destroy), a slot. */
static int begin(weft_runtime *rt, weft_fn fn, const weft_submit_opts **o,
                 weft_future **out, fut **fp)
{
    static const weft_submit_opts defaults = {.numa_node = -1};
    if (out)
        *out = NULL;
    if (!rt || !fn || !out)
        return -EINVAL;
    if (!*o)
        *o = &defaults;
    /* a receive's held sends go first: the future may run elsewhere at
     * once, and what it sends must not overtake them */
    weft__before_share();
    int rc = weft__fut_check_opts(*o);
    if (rc || (rc = weft__enter(rt)))
        return rc;
    fpool *p = pool_of(rt);
    if (!p || !(*fp = fut_alloc(p))) {
        weft__leave(rt);
        return -ENOMEM;
    }
    return 0;
}

int weft_submit(weft_runtime *rt, weft_fn fn, void *arg,
                const weft_submit_opts *opts, weft_future **out)
{
    fut *f;
    int rc = begin(rt, fn, &opts, out, &f);
    if (rc)
        return rc;
    fut_init(f, rt, fn, arg, opts, PH_QUEUED);
    *out = handle_of(f);
    weft__jobs_begin(rt);
    push(f);
    weft__leave(rt);
    return 0;
}

static int check_deps(weft_runtime *rt, weft_future *const *deps,
                      size_t ndeps)
{
    if ((!deps && ndeps) || ndeps > WEFT_MAX_DEPS)
        return -EINVAL;
    for (size_t i = 0; i < ndeps; i++) {
        fut *d = fut_of(deps[i]);
        if (!d || d->rt != rt)
            return -EINVAL;
    }
    return 0;
}

/* Link f after its dependencies. pending starts at ndeps + 1 so that no
 * edge firing meanwhile can queue f before every edge is in place. */
static void link_deps(fut *f, weft_future *const *deps, size_t ndeps)
{
    f->ndeps = (uint32_t)ndeps;
    weft__store_relaxed(&f->pending, (uint32_t)ndeps + 1);
    for (size_t i = 0; i < ndeps; i++) {
        edge *e = &f->edges[i];
        e->dep = fut_of(deps[i]);
        e->n.owner = f;
        e->n.is_edge = true;
        fut_ref(e->dep);
        if (!attach(e->dep, &e->n))
            dep_done(f); /* already done: cannot reach zero here */
    }
    dep_done(f);
}

int weft_submit_after(weft_runtime *rt, weft_fn fn, void *arg,
                      weft_future *const *deps, size_t ndeps,
                      const weft_submit_opts *opts, weft_future **out)
{
    if (out)
        *out = NULL;
    int rc = rt ? check_deps(rt, deps, ndeps) : -EINVAL;
    if (rc)
        return rc;
    edge *edges = NULL;
    if (ndeps && !(edges = weft__calloc(ndeps, sizeof *edges)))
        return -ENOMEM;
    fut *f;
    if ((rc = begin(rt, fn, &opts, out, &f))) {
        weft__free(edges);
        return rc;
    }
    fut_init(f, rt, fn, arg, opts, PH_WAITING);
    f->edges = edges;
    *out = handle_of(f);
    weft__jobs_begin(rt);
    link_deps(f, deps, ndeps);
    weft__leave(rt);
    return 0;
}

/* A future that no task runs: graph.c completes it. One reference for the
 * caller, one for the completer; no job token. */
int weft__fut_external(weft_runtime *rt, const char *name, fut **out,
                       weft_future **handle)
{
    fpool *p = pool_of(rt);
    fut *f = p ? fut_alloc(p) : NULL;
    if (!f)
        return -ENOMEM;
    weft_submit_opts o = weft_submit_opts_default();
    o.name = name;
    fut_init(f, rt, NULL, NULL, &o, PH_WAITING);
    *out = f;
    *handle = handle_of(f);
    return 0;
}

bool weft__fut_claim_external(fut *f)
{
    uint32_t s = weft__load_acquire(&f->state);
    while ((s & PH_MASK) == PH_WAITING)
        if (weft__cas_acqrel(&f->state, &s, (s & ~PH_MASK) | PH_RUNNING))
            return true;
    return false; /* a canceller claimed it */
}

void weft__fut_finish_external(fut *f, int status, int cause, void *result,
                               void (*dtor)(void *))
{
    f->result = result;
    f->dtor = dtor;
    complete(f, status, cause);
    weft__fut_unref(f, FUT_QUEUE_REF);
}

void weft__fut_complete_external(fut *f, int status, int cause,
                                 void *result, void (*dtor)(void *))
{
    if (weft__fut_claim_external(f)) {
        weft__fut_finish_external(f, status, cause, result, dtor);
        return;
    }
    if (result && dtor) /* cancelled by its owner: nobody will read it */
        dtor(result);
    weft__fut_unref(f, FUT_QUEUE_REF);
}

weft__dtor_fn weft__fut_result_dtor(const weft_future *h)
{
    fut *f = fut_of(h);
    /* acquire pairs with complete()'s CAS to DONE (seq_cst), which
     * follows the writes of result and dtor */
    if (!f || (weft__load_acquire(&f->state) & PH_MASK) != PH_DONE)
        return NULL;
    return f->dtor;
}

void weft__fut_set_poller(fut *f, weft__poller *p)
{
    f->arg = p;
}

/* The calling thread's own poller (weft__fut_thread_poller), or NULL. */
static _Thread_local weft__poller *t_poller;

void weft__fut_thread_poller(weft__poller *p)
{
    t_poller = p;
}

bool weft__fut_cancelled(fut *f)
{
    return weft__load_acquire(&f->state) & ST_CANCEL;
}

/* ---- waiting ---- */

#define MAX_HELP_DEPTH 64
#define SPIN_POLLS 2000
/* A waiter with a poller polls until the poller has done nothing for
 * this long. */
#define POLL_IDLE_NS 200000u

static uint64_t deadline_of(int64_t timeout_ns)
{
    return timeout_ns < 0 ? 0 : weft__now_ns() + (uint64_t)timeout_ns;
}

static bool past(uint64_t deadline)
{
    return deadline && weft__now_ns() >= deadline;
}

/* A worker waits by running other work (helping), first from the worker
 * that runs what it waits for. Past MAX_HELP_DEPTH nested waits it only
 * yields: its stack is finite. done(arg) is the condition. */
static int help_until(weft__worker *w, bool (*done)(void *), void *arg,
                      fut *awaited, uint64_t deadline)
{
    int rc = 0;
    weft__before_wait(); /* also past MAX_HELP_DEPTH, which never helps */
    w->help_depth++;
    for (unsigned fails = 0; !done(arg);) {
        if (past(deadline)) {
            rc = -ETIMEDOUT;
            break;
        }
        weft__worker *prefer = NULL;
        int r = awaited ? weft__load_relaxed(&awaited->runner) : -1;
        if (r >= 0 && r < w->rt->nworkers && r != w->index)
            prefer = w->rt->workers[r];
        if (w->help_depth <= MAX_HELP_DEPTH && weft__help(w, prefer)) {
            fails = 0;
        } else if (++fails % 64 == 0) {
            sched_yield();
        } else {
            weft__cpu_relax();
        }
    }
    w->help_depth--;
    return rc;
}

static bool fut_done(void *f)
{
    return phase_done(weft__load_acquire(&((fut *)f)->state));
}

static bool stale_entry(weft__job *j)
{
    return j->run == fut_job_run &&
           (weft__load_relaxed(&((fut *)j)->state) & PH_MASK) != PH_QUEUED;
}

/* A getter that ran a future in place left its queue entry behind. Pop
 * the entries of such futures off the bottom of our deque now, so that a
 * task that submits and collects millions of futures does not pile up
 * millions of dead entries (and the futures they keep alive) until it
 * returns. A popped entry that turns out live is simply run. */
static void drop_stale(weft__worker *w)
{
    weft__job *j;
    while ((j = weft__job_peek(w)) && stale_entry(j) &&
           (j = weft__job_pop(w)))
        j->run(j);
}

/* Drive f's poller until f is done, the deadline passes, or the poller
 * has done nothing for POLL_IDLE_NS; then tell it we stopped. The clock
 * is read every POLL_CLOCK_EVERY polls: a read costs as much as a poll
 * that finds nothing, and this loop's speed is how soon a reply that
 * came is seen. */
#define POLL_CLOCK_EVERY 16u
static void poll_while_busy(fut *f, weft__poller *p, uint64_t deadline)
{
    uint64_t last = weft__now_ns();
    bool busy = false;
    for (unsigned i = 1; !fut_done(f); i++) {
        busy |= p->poll(p);
        if (i % POLL_CLOCK_EVERY == 0) {
            uint64_t now = weft__now_ns();
            if (busy)
                last = now;
            busy = false;
            if (now - last > POLL_IDLE_NS || (deadline && now >= deadline)) {
                if (p->stop)
                    p->stop(p);
                return;
            }
        }
        if (i % 64 == 0)
            sched_yield();
        else
            weft__cpu_relax();
    }
}

/* An outside thread: poll (with its own poller, else f's, if any), spin
 * a little (short tasks answer faster than a sleep), then sleep on the
 * state word with ST_SLEEPERS set. */
static int sleep_until_done(fut *f, uint64_t deadline)
{
    weft__poller *p = t_poller ? t_poller : f->fn ? NULL : f->arg;
    if (p)
        poll_while_busy(f, p, deadline);
    for (int i = 0; i < SPIN_POLLS; i++) {
        if (fut_done(f))
            return 0;
        weft__cpu_relax();
    }
    for (;;) {
        uint32_t s = weft__load_acquire(&f->state);
        if (phase_done(s))
            return 0;
        if (past(deadline))
            return -ETIMEDOUT;
        if (!(s & ST_SLEEPERS) &&
            !weft__cas_acqrel(&f->state, &s, s | ST_SLEEPERS))
            continue;
        weft__futex_wait_until(&f->state, s | ST_SLEEPERS, deadline);
    }
}

static bool is_worker_of(weft_runtime *rt)
{
    return weft__self && weft__self->rt == rt;
}

static int wait_one(fut *f, int64_t timeout_ns)
{
    uint32_t s = weft__load_acquire(&f->state);
    if (phase_done(s))
        return 0;
    /* before a poll too: a receive polling in a loop must not hold back
     * the sends the future may wait for; and before running f in place */
    weft__before_wait();
    if (timeout_ns == 0)
        return -ETIMEDOUT;
    if (weft__foreign(f->rt)) /* a forked child: nothing will finish f */
        return -ENOTSUP;
    uint64_t deadline = deadline_of(timeout_ns);
    if (!is_worker_of(f->rt))
        return sleep_until_done(f, deadline);
    if (f->fn && claim(f, s)) { /* not started: run it here, now */
        run_claimed(f);
        drop_stale(weft__self);
        return 0;
    }
    return help_until(weft__self, fut_done, f, f, deadline);
}

static bool no_readers(void *f)
{
    uint64_t r = weft__load_acquire(&((fut *)f)->refs);
    return (r & (FUT_USER_REF - 1)) < FUT_READER_REF;
}

/* Until no dependant or graph run may still read f's result. */
static void wait_readers(fut *f)
{
    if (no_readers(f))
        return;
    weft__before_wait();
    if (is_worker_of(f->rt)) {
        help_until(weft__self, no_readers, f, NULL, 0);
        return;
    }
    struct timespec nap = {0, 20000};
    while (!no_readers(f))
        nanosleep(&nap, NULL);
}

int weft_future_get(weft_future *h, int64_t timeout_ns, void **result)
{
    fut *f = fut_of(h);
    if (!f)
        return -EINVAL;
    int rc = wait_one(f, timeout_ns);
    if (rc)
        return rc;
    if (result)
        *result = f->result;
    return f->status;
}

int weft_future_take(weft_future *h, void **result)
{
    fut *f = fut_of(h);
    if (!f || !result)
        return -EINVAL;
    int rc = wait_one(f, -1);
    if (rc)
        return rc;
    if (weft__foreign(f->rt) && !no_readers(f))
        return -ENOTSUP; /* a forked child: its readers never finish */
    wait_readers(f);
    *result = f->result;
    f->result = NULL;
    f->dtor = NULL;
    return f->status;
}

int weft_future_done(const weft_future *h)
{
    fut *f = fut_of(h);
    return f ? fut_done(f) : -EINVAL;
}

int weft_future_cause(const weft_future *h)
{
    fut *f = fut_of(h);
    if (!f)
        return -EINVAL;
    return fut_done(f) ? f->cause : -ETIMEDOUT;
}

int weft_future_attempts(const weft_future *h)
{
    fut *f = fut_of(h);
    return f ? (int)weft__load_relaxed(&f->attempts) : -EINVAL;
}

const char *weft_future_name(const weft_future *h)
{
    fut *f = fut_of(h);
    return f ? f->name : NULL;
}

int weft_future_retain(weft_future *h)
{
    fut *f = fut_of(h);
    if (!f)
        return -EINVAL;
    weft__add_relaxed(&f->refs, FUT_USER_REF);
    return 0;
}

int weft_future_release(weft_future *h)
{
    fut *f = fut_of(h);
    if (!f)
        return -EINVAL;
    weft__fut_unref(f, FUT_USER_REF);
    return 0;
}

/* ---- cancellation ---- */

/* f was cancelled while WAITING: it will never read its dependencies, so
 * their results must not wait for it (a dependency released by its user
 * is destroyed now, and a take of one does not wait for f's other
 * dependencies, which may be late or never come). Drop f's references
 * to them at once instead of in finish_deps. The edges stay: those of
 * dependencies not done are still in their waiter lists, and need no
 * reference (a dependency not done holds its own until its completion
 * has fired them). A count of pending held meanwhile keeps make_ready,
 * and so finish_deps, from running under us; once pending is 0 it runs
 * (or ran) and drops them itself. */
static void let_deps_go(fut *f)
{
    uint32_t p = weft__load_relaxed(&f->pending);
    do {
        if (p == 0)
            return;
        /* acq_rel: our clearing of the edges happens before the last
         * decrement, which finish_deps follows */
    } while (!weft__cas_acqrel(&f->pending, &p, p + 1));
    for (uint32_t i = 0; i < f->ndeps; i++) {
        fut *d = f->edges[i].dep; /* only we and finish_deps read it now */
        f->edges[i].dep = NULL;
        weft__fut_unref(d, FUT_READER_REF);
    }
    dep_done(f); /* the last one finishes f: finish_deps, drop_entry */
}

/* Claim a future that has not started (WAITING or QUEUED) for the
 * canceller, or flag a running one. */
int weft_future_cancel(weft_future *h)
{
    fut *f = fut_of(h);
    if (!f)
        return -EINVAL;
    uint32_t s = weft__load_acquire(&f->state);
    for (;;) {
        uint32_t ph = s & PH_MASK;
        if (ph == PH_DONE)
            return -EALREADY;
        if (ph == PH_RUNNING) {
            if ((s & ST_CANCEL) ||
                weft__cas_acqrel(&f->state, &s, s | ST_CANCEL))
                return -EINPROGRESS;
            continue;
        }
        uint32_t claimed = (s & ~PH_MASK) | PH_RUNNING | ST_CANCEL;
        if (weft__cas_acqrel(&f->state, &s, claimed))
            break;
    }
    complete(f, -ECANCELED, -ECANCELED);
    /* A QUEUED future had every dependency done; its queue entry is
     * discarded when popped. A WAITING one is finished by make_ready
     * once its last dependency is done; its dependencies go now. */
    if ((s & PH_MASK) == PH_QUEUED)
        finish_deps(f);
    else
        let_deps_go(f);
    return 0;
}

/* ---- weft_wait: k of n ---- */

static bool group_done(void *g)
{
    group *gr = g;
    return weft__load_acquire(&gr->ndone) >= gr->need;
}

static int group_sleep(group *g, uint64_t deadline)
{
    /* a thread with its own poller must keep polling (fut.h) */
    for (unsigned i = 1; t_poller && !group_done(g); i++) {
        t_poller->poll(t_poller);
        if (i % POLL_CLOCK_EVERY == 0 && past(deadline))
            return -ETIMEDOUT;
        if (i % 64 == 0)
            sched_yield();
        else
            weft__cpu_relax();
    }
    for (;;) {
        uint32_t seq = weft__load_seqcst(&g->seq);
        if (group_done(g))
            return 0;
        if (weft__futex_wait_until(&g->seq, seq, deadline))
            return -ETIMEDOUT;
    }
}

/* Register a node on every pending future, wait (helping when help,
 * else sleeping), unregister. */
static int wait_group(fut **fs, size_t n, size_t k, uint64_t deadline,
                      bool help)
{
    wnode stack_nodes[16];
    wnode *nodes = n <= 16 ? stack_nodes : weft__calloc(n, sizeof *nodes);
    if (!nodes)
        return -ENOMEM;
    group g = {.need = (uint32_t)k};
    for (size_t i = 0; i < n; i++) {
        nodes[i] = (wnode){.owner = &g};
        if (!attach(fs[i], &nodes[i]))
            weft__add_seqcst(&g.ndone, 1);
    }
    if (help)
        help_until(weft__self, group_done, &g, NULL, deadline);
    else
        group_sleep(&g, deadline);
    for (size_t i = 0; i < n; i++)
        detach(fs[i], &nodes[i]);
    if (nodes != stack_nodes)
        weft__free(nodes);
    return 0;
}

static size_t scan_done(fut **fs, size_t n, size_t *ready)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (fut_done(fs[i])) {
            if (ready)
                ready[c] = i;
            c++;
        }
    return c;
}

/* Whether a waiter for fs[0..n) waits as a worker, running queued work:
 * when it is a worker of the runtime of any of them, not only of the
 * first's. The work one of them needs may be in its own deque, which
 * nobody else may take (one worker, or none idle); sleeping then never
 * ends. A worker of none of their runtimes sleeps, as future.h says. */
static bool waits_as_worker(fut **fs, size_t n)
{
    weft__worker *w = weft__self;
    for (size_t i = 0; w && i < n; i++)
        if (fs[i]->rt == w->rt)
            return true;
    return false;
}

static int resolve_all(weft_future *const *hs, size_t n, fut **fs)
{
    for (size_t i = 0; i < n; i++)
        if (!(fs[i] = fut_of(hs[i])))
            return -EINVAL;
    return 0;
}

/* Whether one of fs[0..n) that is not done belongs to a runtime of the
 * parent of this forked child: nothing will finish it here. */
static bool waits_on_foreign(fut **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (weft__foreign(fs[i]->rt) && !fut_done(fs[i]))
            return true;
    return false;
}

int weft_wait(weft_future *const *hs, size_t n, size_t k,
              int64_t timeout_ns, size_t *ready, size_t *nready)
{
    if (nready)
        *nready = 0;
    if ((!hs && n) || k > n || n > UINT32_MAX)
        return -EINVAL;
    fut *stack_fs[16];
    fut **fs = n <= 16 ? stack_fs : weft__malloc(n * sizeof *fs);
    if (!fs)
        return -ENOMEM;
    int rc = resolve_all(hs, n, fs);
    size_t c = rc ? 0 : scan_done(fs, n, NULL);
    if (!rc && c < k) {
        weft__before_wait(); /* as in wait_one */
        if (timeout_ns != 0 && waits_on_foreign(fs, n))
            rc = -ENOTSUP;
        else if (timeout_ns != 0)
            rc = wait_group(fs, n, k, deadline_of(timeout_ns),
                            waits_as_worker(fs, n));
    }
    if (!rc) {
        c = scan_done(fs, n, ready);
        if (nready)
            *nready = c;
        rc = c >= k ? 0 : -ETIMEDOUT;
    }
    if (fs != stack_fs)
        weft__free(fs);
    return rc;
}

/* ---- inside a task ---- */

int weft_job_set_result(weft_job *job, void *value, void (*dtor)(void *))
{
    if (!job)
        return -EINVAL;
    if (*job->result && *job->dtor)
        (*job->dtor)(*job->result);
    *job->result = value;
    *job->dtor = dtor;
    return 0;
}

int weft_job_cancelled(const weft_job *job)
{
    if (!job)
        return -EINVAL;
    return job->run ? weft__graph_job_cancelled(job)
                    : weft__fut_cancelled(job->f);
}

int weft_job_attempt(const weft_job *job)
{
    return job ? job->attempt : -EINVAL;
}

size_t weft_job_ndeps(const weft_job *job)
{
    if (!job)
        return 0;
    return job->run ? weft__graph_job_ndeps(job) : job->f->ndeps;
}

int weft_job_dep(const weft_job *job, size_t i, void **value)
{
    if (!job)
        return -EINVAL;
    if (job->run)
        return weft__graph_job_dep(job, i, value);
    if (i >= job->f->ndeps)
        return -ERANGE;
    fut *d = job->f->edges[i].dep;
    if (value)
        *value = d->result;
    return d->status;
}

weft_runtime *weft_job_runtime(const weft_job *job)
{
    if (!job)
        return NULL;
    return job->run ? weft__graph_job_runtime(job) : job->f->rt;
}
