/* Queued jobs (futures' tasks, graph nodes): one Chase-Lev deque per
 * worker for jobs submitted by that worker, and per NUMA node one FIFO per
 * priority for jobs from outside threads, for another node, or of high
 * priority.
 *
 * The deque is the C11 Chase-Lev deque of Le, Pop, Cohen and Zappa Nardelli
 * (PPoPP 2013) with its standalone fences folded into seq_cst accesses
 * (ThreadSanitizer does not model fences): the owner's pop stores bottom
 * with an exchange, and thieves load top and bottom seq_cst. Unlike the
 * fork-join deque, jobs are heap objects that nobody syncs, so a plain
 * deque where the owner pays a barrier per pop is the right tool here.
 *
 * Job tokens: every job that will be consumed from a queue (run or
 * discarded) is counted in when it is created and out when consumed, on
 * the thread that does it (a worker's own counters, or shared ones for
 * outside threads). weft_runtime_destroy waits for in == out. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"

#define JDEQUE_CAP0 256
/* How long a job queued for a NUMA node waits for that node's workers
 * before workers of other nodes may take it. */
#define FAR_GRACE_NS 100000

static weft__jarray *jarray_new(int64_t cap)
{
    weft__jarray *a = weft__malloc(sizeof *a + (size_t)cap * sizeof a->slot[0]);
    if (a) {
        a->cap = cap;
        a->retired = NULL;
    }
    return a;
}

int weft__jobs_init(weft_runtime *rt)
{
    for (int i = 0; i < rt->nworkers; i++) {
        weft__jarray *a = jarray_new(JDEQUE_CAP0);
        if (!a)
            return -ENOMEM;
        weft__store_relaxed(&rt->workers[i]->jarr, a);
    }
    return 0;
}

void weft__jobs_fini(weft_runtime *rt)
{
    for (int i = 0; i < WEFT__EXT_MAX; i++) {
        void *e = weft__load_acquire(&rt->ext[i]);
        if (e && rt->ext_free[i])
            rt->ext_free[i](rt, e);
    }
    for (int i = 0; rt->workers && i < rt->nworkers; i++) {
        if (!rt->workers[i])
            continue;
        weft__jarray *a = weft__load_relaxed(&rt->workers[i]->jarr);
        while (a) {
            weft__jarray *next = a->retired;
            weft__free(a);
            a = next;
        }
    }
}

/* ---- the per-worker deque ---- */

/* Double the buffer, copying the live slots [t, b). The old buffer joins
 * the retired list (see weft__jarray). */
static weft__jarray *jdeque_grow(weft__worker *w, weft__jarray *a, int64_t t,
                                 int64_t b)
{
    weft__jarray *n = jarray_new(a->cap * 2);
    if (!n)
        return NULL;
    for (int64_t i = t; i < b; i++)
        weft__store_relaxed(&n->slot[i & (n->cap - 1)],
                            weft__load_relaxed(&a->slot[i & (a->cap - 1)]));
    n->retired = a;
    /* release pairs with the thieves' acquire load of jarr */
    weft__store_release(&w->jarr, n);
    return n;
}

/* Push on the calling worker's own deque; false only when the deque is
 * full and cannot grow (out of memory). */
static bool jdeque_push(weft__worker *w, weft__job *j)
{
    int64_t b = weft__load_relaxed(&w->jbot);
    weft__jarray *a = weft__load_relaxed(&w->jarr);
    /* jtop only grows, so a stale copy errs towards "full"; read the
     * line the thieves keep writing only then */
    if (b - w->jtop_seen >= a->cap) {
        int64_t t = w->jtop_seen = weft__load_acquire(&w->jtop);
        if (b - t >= a->cap && !(a = jdeque_grow(w, a, t, b)))
            return false;
    }
    weft__store_relaxed(&a->slot[b & (a->cap - 1)], j);
    /* seq_cst: releases the slot and the job to thieves (their seq_cst
     * load of jbot), and is the publisher's half of the parking
     * handshake (park.c) */
    weft__store_seqcst(&w->jbot, b + 1);
    return true;
}

/* Deferred jobs run in a row at most this many times before the next
 * one goes to the deque: two actors that message each other keep one
 * worker, but cannot keep it from the rest of its deque for ever. */
#define DEFER_CHAIN_MAX 64

/* Keep j to run next on the calling worker of rt (Tokio's LIFO slot),
 * pushing the job it held before onto the deque, where thieves see it.
 * For a job made ready by the one now running, which is about to end
 * (an actor's reply, the next hop of a chain): running it here costs no
 * wake and no cache-line transfer. False (j not taken) off a worker of
 * rt and after DEFER_CHAIN_MAX in a row: the caller pushes j itself.
 * A worker that waits inside its job (a sync, a future) takes the slot
 * first when it helps, so nothing waits on what it holds. */
bool weft__job_defer(weft_runtime *rt, weft__job *j)
{
    weft__worker *w = weft__self;
    if (!w || w->rt != rt || w->defer_chain >= DEFER_CHAIN_MAX)
        return false;
    weft__job *old = w->deferred;
    w->deferred = j;
    if (old)
        weft__job_push(rt, old, w->numa, 0);
    return true;
}

weft__job *weft__job_pop(weft__worker *w)
{
    weft__job *d = w->deferred;
    if (d) {
        w->deferred = NULL;
        w->defer_chain++;
        return d;
    }
    w->defer_chain = 0;
    int64_t b = weft__load_relaxed(&w->jbot) - 1;
    /* cheap empty test: top only grows, so a stale top errs towards
     * "not empty" and the full protocol below decides */
    if (b < weft__load_relaxed(&w->jtop))
        return NULL;
    weft__jarray *a = weft__load_relaxed(&w->jarr);
    /* the exchange orders the store of bottom before the load of top
     * (the fence of the original algorithm) */
    atomic_exchange_explicit(&w->jbot, b, memory_order_seq_cst);
    int64_t t = w->jtop_seen = weft__load_seqcst(&w->jtop);
    weft__job *j = NULL;
    if (t <= b) {
        j = weft__load_relaxed(&a->slot[b & (a->cap - 1)]);
        if (t == b) { /* last one: race the thieves for it */
            if (!weft__cas_seqcst(&w->jtop, &t, t + 1))
                j = NULL;
            weft__store_relaxed(&w->jbot, b + 1);
        }
    } else {
        weft__store_relaxed(&w->jbot, b + 1);
    }
    return j;
}

/* The newest job on the calling worker's own deque, without taking it:
 * a hint (a thief may take it first), for callers that pop only jobs of
 * a kind they recognise. */
weft__job *weft__job_peek(weft__worker *w)
{
    if (w->deferred) /* what weft__job_pop takes next */
        return w->deferred;
    int64_t b = weft__load_relaxed(&w->jbot) - 1;
    if (b < weft__load_relaxed(&w->jtop))
        return NULL;
    weft__jarray *a = weft__load_relaxed(&w->jarr);
    return weft__load_relaxed(&a->slot[b & (a->cap - 1)]);
}

/* The oldest job on w's deque (the thieves' end), without taking it: a
 * hint, like weft__job_peek. */
weft__job *weft__job_peek_top(weft__worker *w)
{
    int64_t t = weft__load_acquire(&w->jtop);
    if (t >= weft__load_relaxed(&w->jbot))
        return NULL;
    weft__jarray *a = weft__load_relaxed(&w->jarr);
    return weft__load_relaxed(&a->slot[t & (a->cap - 1)]);
}

weft__job *weft__job_steal(weft__worker *v)
{
    int64_t t = weft__load_seqcst(&v->jtop);
    int64_t b = weft__load_seqcst(&v->jbot); /* pairs with jdeque_push */
    if (t >= b)
        return NULL;
    weft__jarray *a = weft__load_acquire(&v->jarr);
    weft__job *j = weft__load_relaxed(&a->slot[t & (a->cap - 1)]);
    if (!weft__cas_seqcst(&v->jtop, &t, t + 1))
        return NULL; /* another thief or the owner took it */
    return j;
}

static bool jdeque_nonempty(weft__worker *w)
{
    return weft__load_seqcst(&w->jtop) < weft__load_seqcst(&w->jbot);
}

/* ---- node queues ---- */

static void jq_put(weft__jqueue *q, weft__job *j)
{
    weft__job *old = weft__load_relaxed(&q->top);
    do {
        j->next = old;
        /* release: j's contents (and link) before it can be taken */
    } while (!atomic_compare_exchange_weak_explicit(
        &q->top, &old, j, memory_order_release, memory_order_relaxed));
    /* seq_cst: publication for parkers (weft__jobs_visible), after the
     * push, so a poller that sees it finds the job */
    if (weft__add_seqcst(&q->len, 1) == 0 && q->stamped)
        weft__store_relaxed(&q->head_since, weft__now_ns());
}

/* Under q->lock: the private FIFO, refilled from the submitters' LIFO
 * when it ran dry. acquire pairs with jq_put's release. */
static weft__job *jq_refill(weft__jqueue *q)
{
    if (q->head)
        return q->head;
    weft__job *lifo = atomic_exchange_explicit(&q->top, NULL,
                                               memory_order_acquire);
    weft__job *fifo = NULL;
    while (lifo) {
        weft__job *next = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return q->head = fifo;
}

/* Detach up to max jobs from the head of q, as a NULL-terminated chain;
 * with grace_ns > 0 only once the head has been the head that long (the
 * grace of jobs meant for another node). */
static weft__job *jq_take(weft__jqueue *q, uint64_t grace_ns, int max)
{
    if (weft__load_relaxed(&q->len) <= 0)
        return NULL;
    if (grace_ns && weft__now_ns() - weft__load_relaxed(&q->head_since) <
                        grace_ns)
        return NULL;
    /* trylock: when another worker holds the lock, it is taking a batch
     * that lands on its deque, where we can steal; waiting in line for
     * the lock (a dozen idle workers at once on a big machine) would
     * only delay us. The caller sees no job and looks elsewhere; len > 0
     * keeps it from parking meanwhile. */
    if (pthread_mutex_trylock(&q->lock) != 0)
        return NULL;
    weft__job *first = jq_refill(q), *last = first;
    if (first) {
        int n = 1;
        for (; n < max && last->next; n++)
            last = last->next;
        q->head = last->next;
        if (q->stamped && (q->head || weft__load_relaxed(&q->top)))
            /* the next one's wait starts now: conservative, never late */
            weft__store_relaxed(&q->head_since, weft__now_ns());
        last->next = NULL;
        weft__sub_seqcst(&q->len, n);
    }
    pthread_mutex_unlock(&q->lock);
    return first;
}

/* Queue j. A worker of rt keeps normal jobs meant for its own node on its
 * own deque (the cheap path, and LIFO for locality); everything else goes
 * to the chosen node's queue. node < 0 means "here" (node 0 outside). */
void weft__job_push(weft_runtime *rt, weft__job *j, int node, int prio)
{
    weft__worker *w = weft__self;
    bool mine = w && w->rt == rt;
    if (node < 0 || node >= rt->nnodes)
        node = mine ? w->numa : 0;
    if (prio < 0 || prio >= WEFT__PRIO_LEVELS)
        prio = 0;
    if (mine && prio == 0 && node == w->numa && jdeque_push(w, j)) {
        weft__wake_for_work(rt, node);
        return;
    }
    jq_put(&rt->nodes[node].jq[prio], j);
    weft__wake_on_node(rt, node);
}

/* High-priority jobs, own node first. */
weft__job *weft__job_take_high(weft_runtime *rt, int node)
{
    for (int i = 0; i < rt->nnodes; i++) {
        weft__job *j = jq_take(&rt->nodes[(node + i) % rt->nnodes].jq[1], 0,
                               1);
        if (j)
            return j;
    }
    return NULL;
}

/* Jobs queued for our node (from outside threads, mostly). Takes a few
 * at once under one lock hold: the first to run, the others onto our own
 * deque, where thieves of this node can take them without the lock. */
#define NODE_BATCH 16

weft__job *weft__job_take_node(weft_runtime *rt, int node)
{
    weft__jqueue *q = &rt->nodes[node].jq[0];
    weft__job *first = jq_take(q, 0, NODE_BATCH);
    if (!first || !first->next)
        return first;
    for (weft__job *j = first->next, *next; j; j = next) {
        next = j->next;
        if (!jdeque_push(weft__self, j)) /* out of memory: back it goes */
            jq_put(q, j);
    }
    first->next = NULL;
    weft__wake_for_work(rt, node);
    return first;
}

/* Normal jobs queued for other nodes: taken only when nothing is nearer,
 * and only after FAR_GRACE_NS, so that the node's own workers (woken for
 * them) come first and the job's memory stays where it was asked for. */
weft__job *weft__job_take_far(weft_runtime *rt, int node)
{
    for (int i = 1; i < rt->nnodes; i++) {
        weft__job *j = jq_take(&rt->nodes[(node + i) % rt->nnodes].jq[0],
                               FAR_GRACE_NS, 1);
        if (j)
            return j;
    }
    return NULL;
}

/* The sleeper's half of the parking handshake for jobs (seq_cst loads),
 * as seen by a worker of node `node` (-1: any worker). A job queued for
 * another node that is still in its grace period is not work for this
 * worker yet: instead *wake_at gets the earliest time one becomes so
 * (0 when none), and the worker sleeps until then at the latest, rather
 * than spinning and taking the CPU from the workers that job is for. */
bool weft__jobs_visible(weft_runtime *rt, int node, uint64_t *wake_at)
{
    uint64_t now = 0, first = 0;
    for (int n = 0; n < rt->nnodes; n++) {
        if (weft__load_seqcst(&rt->nodes[n].jq[1].len) > 0)
            return true;
        weft__jqueue *q = &rt->nodes[n].jq[0];
        if (weft__load_seqcst(&q->len) == 0)
            continue;
        if (node < 0 || n == node)
            return true;
        uint64_t due = weft__load_relaxed(&q->head_since) + FAR_GRACE_NS;
        now = now ? now : weft__now_ns();
        if (due <= now)
            return true;
        first = first && first < due ? first : due;
    }
    for (int i = 0; i < rt->nworkers; i++)
        if (jdeque_nonempty(rt->workers[i]))
            return true;
    if (wake_at)
        *wake_at = first;
    return false;
}

/* ---- job tokens ---- */

static void token_add(weft_runtime *rt, bool in)
{
    weft__worker *w = weft__self;
    if (w && w->rt == rt) {
        _Atomic uint64_t *c = in ? &w->jobs_in : &w->jobs_out;
        /* single writer; release pairs with the acquire in quiesce */
        weft__store_release(c, weft__load_relaxed(c) + 1);
    } else {
        weft__add_seqcst(in ? &rt->jobs_in_ext : &rt->jobs_out_ext, 1);
    }
}

void weft__jobs_begin(weft_runtime *rt) { token_add(rt, true); }
void weft__jobs_end(weft_runtime *rt) { token_add(rt, false); }

/* Outs are summed before ins: a job's token is created (in) before
 * anything that consumes it or creates its children's tokens, so when
 * the sums meet nothing was outstanding at the moment between the two
 * passes, and with no outside submissions left nothing can start. */
static bool tokens_settled(weft_runtime *rt)
{
    uint64_t out = weft__load_seqcst(&rt->jobs_out_ext);
    for (int i = 0; i < rt->nworkers; i++)
        out += weft__load_acquire(&rt->workers[i]->jobs_out);
    uint64_t in = weft__load_seqcst(&rt->jobs_in_ext);
    for (int i = 0; i < rt->nworkers; i++)
        in += weft__load_acquire(&rt->workers[i]->jobs_in);
    return in == out;
}

void weft__jobs_quiesce(weft_runtime *rt)
{
    struct timespec nap = {0, 50000};
    while (!tokens_settled(rt))
        nanosleep(&nap, NULL);
}

/* ---- entering from outside ---- */

bool weft__forked;
pid_t weft__forked_pid;

/* fork() without exec in a program with a runtime (Python's
 * multiprocessing, a daemon, a helper that shells out): the child has
 * only the forking thread, so its copies of the parent's runtimes have
 * no workers, and their store, statistics segment and isolated worker
 * processes are the parent's. Work handed to one there waited for ever,
 * and a destroy there (an atexit handler in the child) closed and
 * unlinked the parent's store, told the parent's isolated processes to
 * exit, or hung on the publisher's condition variable. So every fork
 * marks the child (the isolated map's worker processes too, which need
 * no mark of their own), and the calls refuse such runtimes
 * (weft__foreign). The handler only
 * notes the child's pid (getpid is async-signal-safe, as what a child
 * handler calls must be) and the flag. */
static void on_fork_child(void)
{
    weft__forked_pid = getpid();
    weft__forked = true;
}

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static bool fork_watched;

int weft__watch_forks(void)
{
    int rc = 0;
    pthread_mutex_lock(&fork_lock);
    if (!fork_watched) { /* a failure is tried again by the next create */
        rc = -pthread_atfork(NULL, NULL, on_fork_child);
        fork_watched = rc == 0;
    }
    pthread_mutex_unlock(&fork_lock);
    return rc;
}

/* The runtimes the calling thread is inside a call of (between
 * weft__enter and weft__leave), with how many such calls of each: a
 * callback that such a call runs on this thread (an actor's init in
 * weft_actor_spawn, an isolated map's progress or delivery) and that
 * destroys the runtime would wait for its own caller to leave, for ever
 * (weft__holds). Calls nest only through such callbacks, so a few slots
 * do; a thread inside calls of more runtimes at once goes unchecked.
 * Owner thread only. */
#define HELD_MAX 4
static WEFT__TLS _Thread_local struct held {
    weft_runtime *rt;
    int n;
} held[HELD_MAX];

static void hold(weft_runtime *rt, int d)
{
    struct held *empty = NULL;
    for (int i = 0; i < HELD_MAX; i++) {
        if (held[i].n && held[i].rt == rt) {
            held[i].n += d;
            return;
        }
        if (!held[i].n && !empty)
            empty = &held[i];
    }
    if (d > 0 && empty) /* else: not recorded, its leave finds nothing */
        *empty = (struct held){rt, 1};
}

bool weft__holds(const weft_runtime *rt)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (held[i].n && held[i].rt == rt)
            return true;
    return false;
}

/* A thread about to add work to rt from outside its tasks: refused once
 * destroy began. Pairs with weft__leave(); destroy waits for every
 * caller in between before it checks the tokens. */
int weft__enter(weft_runtime *rt)
{
    if (weft__foreign(rt))
        return -ENOTSUP;
    weft__worker *w = weft__self;
    if (w && w->rt == rt)
        return 0; /* tasks may add work while destroy drains them */
    weft__add_seqcst(&rt->inflight, 1);
    if (weft__load_seqcst(&rt->stopping)) {
        weft__sub_release(&rt->inflight, 1);
        return -ESHUTDOWN;
    }
    hold(rt, 1);
    return 0;
}

void weft__leave(weft_runtime *rt)
{
    weft__worker *w = weft__self;
    if (!(w && w->rt == rt)) {
        hold(rt, -1);
        weft__sub_release(&rt->inflight, 1);
    }
}

/* ---- extension slots ---- */

int weft__ext_make(weft_runtime *rt, int slot,
                   int (*make)(weft_runtime *rt, void *arg, void **ext),
                   void *arg, weft__ext_free_fn free_fn,
                   weft__ext_stats_fn stats_fn, void **out)
{
    /* acquire pairs with the release store below */
    void *e = weft__load_acquire(&rt->ext[slot]);
    int rc = 0;
    if (!e) {
        pthread_mutex_lock(&rt->ext_lock);
        e = weft__load_relaxed(&rt->ext[slot]);
        if (!e && (rc = make(rt, arg, &e)) == 0) {
            rt->ext_free[slot] = free_fn;
            rt->ext_stats[slot] = stats_fn;
            weft__store_release(&rt->ext[slot], e);
        }
        pthread_mutex_unlock(&rt->ext_lock);
    }
    *out = rc ? NULL : e;
    return rc;
}

/* weft__ext_get's make, under weft__ext_make: NULL is out of memory. */
struct ext_maker {
    void *(*make)(weft_runtime *rt);
};

static int make_or_nomem(weft_runtime *rt, void *arg, void **ext)
{
    *ext = ((const struct ext_maker *)arg)->make(rt);
    return *ext ? 0 : -ENOMEM;
}

void *weft__ext_get(weft_runtime *rt, int slot,
                    void *(*make)(weft_runtime *rt),
                    weft__ext_free_fn free_fn)
{
    struct ext_maker m = {make};
    void *e;
    weft__ext_make(rt, slot, make_or_nomem, &m, free_fn, NULL, &e);
    return e;
}
