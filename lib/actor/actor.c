/* Actors: mailboxes, activations, restarts and stops.
 *
 * Mailbox. An intrusive MPSC queue without locks (Vyukov): a producer
 * exchanges the queue's `in` end with its envelope and then links the old
 * end to it; the one consumer (the actor's running activation) follows the
 * links from `out`. Messages of one producer keep their order because its
 * exchanges are ordered. Beside the queue, `count` holds the messages
 * reserved or queued and not yet taken: a sender first reserves (a plain
 * add, or a compare-and-swap against the bound of a bounded mailbox), then
 * queues, and the sender that moved count from 0 schedules the actor.
 *
 * Activation. A pool job that takes at most `batch` messages, then
 * subtracts what it took from count: a result of 0 ends the activation
 * (the next 0 -> 1 schedules a new one), anything else queues it again
 * behind the other work. So exactly one activation exists while count >
 * 0, and none while it is 0: the actor's state needs no lock, and count's
 * acquire-release read-modify-writes hand the state from one activation
 * to the next. A reserved message may not be linked yet (its sender is
 * between reserve and link): the activation waits briefly, then yields.
 *
 * Lifetime. refs counts the handles, one reference while the actor is
 * alive, and one per scheduled activation; the memory goes when it drops
 * to 0. Every actor is on its runtime's registry, so destroy frees those
 * a program still references. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "act.h"

/* How long an activation waits for a reserved message to be linked
 * before it yields (its sender was preempted in between). */
#define LINK_SPINS 1024
/* Bounded waits from outside threads re-check at least this often: the
 * wake-up is the fast path, the timeout only a safety net. */
#define SPACE_NAP_NS 1000000

/* ---- the registry ---- */

typedef struct areg {
    pthread_mutex_t lock;
    weft_actor *head;
} areg;

/* At destroy, after the workers stopped and every queued message was
 * handled (destroy waited for all jobs): run fini of the actors still
 * alive, then free every actor and pool. */
static void reg_free(weft_runtime *rt, void *ext)
{
    areg *r = ext;
    for (weft_actor *a = r->head; a; a = a->next)
        if (!a->pool && a->inited && a->cls->fini &&
            !(weft__load_relaxed(&a->flags) & F_DEAD))
            a->cls->fini((char *)a + WEFT__ACTOR_HDR);
    for (weft_actor *a = r->head, *next; a; a = next) {
        next = a->next;
        if (a->pool)
            weft__free(a->pool);
        weft__free(a);
    }
    pthread_mutex_destroy(&r->lock);
    weft__free(r);
    (void)rt;
}

static void *reg_make(weft_runtime *rt)
{
    areg *r = weft__calloc(1, sizeof *r);
    if (r)
        pthread_mutex_init(&r->lock, NULL);
    (void)rt;
    return r;
}

static areg *reg_of(weft_runtime *rt)
{
    return weft__ext_get(rt, WEFT__EXT_ACTORS, reg_make, reg_free);
}

static void reg_add(areg *r, weft_actor *a)
{
    pthread_mutex_lock(&r->lock);
    a->prev = NULL;
    a->next = r->head;
    if (r->head)
        r->head->prev = a;
    r->head = a;
    pthread_mutex_unlock(&r->lock);
}

static void reg_remove(areg *r, weft_actor *a)
{
    pthread_mutex_lock(&r->lock);
    if (a->prev)
        a->prev->next = a->next;
    else
        r->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    pthread_mutex_unlock(&r->lock);
}

/* ---- references ---- */

static void actor_ref(weft_actor *a) { weft__add_relaxed(&a->refs, 1); }

void weft__actor_unref(weft_actor *a)
{
    /* release: this holder's accesses happen before the free; the last
     * one's acquire (the acq_rel exchange) pairs with the others' */
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* acquire pairs with weft__ext_get's release: the registry exists */
    reg_remove(weft__load_acquire(&a->rt->ext[WEFT__EXT_ACTORS]), a);
    if (a->pool)
        weft__pool_free(a);
    weft__free(a);
}

/* ---- the mailbox ---- */

static void mq_push(weft_actor *a, alink *n)
{
    weft__store_relaxed(&n->next, NULL);
    /* acq_rel: takes the previous end from the producer before us */
    alink *prev = weft__xchg_acqrel(&a->in, n);
    /* release pairs with the consumer's acquire load of next: the
     * envelope's contents are visible once it is linked */
    weft__store_release(&prev->next, n);
}

/* The oldest linked message, or NULL when none is linked (empty, or a
 * producer is between its exchange and its link). Consumer only. */
static alink *mq_pop(weft_actor *a)
{
    alink *tail = a->out;
    alink *next = weft__load_acquire(&tail->next);
    if (tail == &a->stub) {
        if (!next)
            return NULL;
        a->out = tail = next;
        next = weft__load_acquire(&tail->next);
    }
    if (next) {
        a->out = next;
        return tail;
    }
    if (tail != weft__load_acquire(&a->in))
        return NULL; /* a push is half done */
    mq_push(a, &a->stub); /* tail is the last: put the stub behind it */
    if ((next = weft__load_acquire(&tail->next))) {
        a->out = next;
        return tail;
    }
    return NULL;
}

/* A message the caller knows was reserved: wait briefly for its link. */
static amsg *mq_take(weft_actor *a)
{
    for (int i = 0; i < LINK_SPINS; i++) {
        alink *l = mq_pop(a);
        if (l)
            return (amsg *)l;
        weft__cpu_relax();
    }
    return NULL;
}

/* ---- envelopes ---- */

/* Envelopes of small messages (the common case) have one size, and each
 * thread keeps up to ENV_CACHE of them that it freed, for its next sends:
 * a receiver that also sends (most actors) then recycles envelopes
 * without the allocator's cross-thread free, which costs an atomic
 * operation on the allocating thread's page. Sanitizer builds (no
 * mimalloc) skip the cache so that every block is checked. */
#define ENV_SMALL 64
#define ENV_CACHE 1024

#ifdef WEFT_HAVE_MIMALLOC
typedef struct env_cache {
    alink *head;
    int n;
    bool armed; /* the thread-exit drain is registered */
} env_cache;

static WEFT__TLS _Thread_local env_cache envs;
static pthread_key_t env_key;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

/* At thread exit: give the cached envelopes back. */
static void env_drain(void *unused)
{
    (void)unused;
    for (alink *l = envs.head, *next; l; l = next) {
        next = weft__load_relaxed(&l->next);
        weft__free(l);
    }
    envs.head = NULL;
    envs.n = 0;
    envs.armed = false;
}

static void env_key_make(void)
{
    if (pthread_key_create(&env_key, env_drain))
        env_key = (pthread_key_t)-1; /* no destructor: cache nothing */
}

static void *env_alloc(size_t bytes)
{
    alink *l = envs.head;
    if (bytes > ENV_SMALL || !l)
        return weft__malloc(bytes <= ENV_SMALL ? ENV_SMALL : bytes);
    envs.head = weft__load_relaxed(&l->next);
    envs.n--;
    return l;
}

static void env_free(amsg *m)
{
    if (m->size > ENV_SMALL - sizeof *m || envs.n >= ENV_CACHE) {
        weft__free(m);
        return;
    }
    if (!envs.armed) { /* first use on this thread: arm the drain */
        pthread_once(&env_once, env_key_make);
        if (env_key == (pthread_key_t)-1 ||
            pthread_setspecific(env_key, &envs)) {
            weft__free(m);
            return;
        }
        envs.armed = true;
    }
    weft__store_relaxed(&m->link.next, envs.head);
    envs.head = &m->link;
    envs.n++;
}
#else
static void *env_alloc(size_t bytes) { return weft__malloc(bytes); }
static void env_free(amsg *m) { weft__free(m); }
#endif

/* ---- counting ---- */

static void count_sent(weft_runtime *rt)
{
    weft__worker *w = weft__self;
    if (w && w->rt == rt)
        weft__stat_add(&w->actor_sent, 1);
    else
        weft__add_relaxed(&rt->actor_sent_ext, 1);
}

/* ---- scheduling ---- */

/* the actor whose activation this thread runs now (nested when a receive
 * waits and helps), or NULL */
static WEFT__TLS _Thread_local weft_actor *running;

static void activate(weft__job *j);

/* From inside an activation, the actor runs next on this worker once
 * the running activation ends (weft__job_defer): a reply or the next hop
 * of a chain then costs no wake and no steal, which is what kept
 * ping-pong and rings from scaling past a few workers. Elsewhere (an
 * outside thread, a task of unknown length) it goes on the deque. */
static void schedule(weft_actor *a)
{
    actor_ref(a); /* the activation's */
    weft__jobs_begin(a->rt);
    if (running && (a->node < 0 || a->node == weft__self->numa) &&
        weft__job_defer(a->rt, &a->job))
        return;
    weft__job_push(a->rt, &a->job, a->node, 0);
}

/* ---- stopping and dying ---- */

static void *state_of(weft_actor *a) { return (char *)a + WEFT__ACTOR_HDR; }

/* Complete a message the actor will not handle. */
static void drop(weft_actor *a, amsg *m)
{
    if (m->reply)
        weft__fut_complete_external(m->reply, WEFT_ACTOR_DEAD,
                                    WEFT_ACTOR_DEAD, NULL, NULL);
    weft__add_relaxed(&a->rt->actor_dropped, 1);
    env_free(m);
}

/* fini (when owed), then dead: later sends are refused, queued ones
 * dropped by the activations that find them. Activation only. */
static void die(weft_actor *a)
{
    if (a->inited && a->cls->fini)
        a->cls->fini(state_of(a));
    a->inited = false;
    /* release pairs with senders' acquire loads of flags (F_CLOSED) */
    atomic_fetch_or_explicit(&a->flags, F_CLOSED | F_DEAD,
                             memory_order_release);
    weft__sub_seqcst(&a->rt->actors, 1);
    weft__actor_unref(a); /* the alive reference; ours keeps a */
}

void weft__actor_finish_join(ajoin *j)
{
    if (atomic_fetch_sub_explicit(&j->left, 1, memory_order_acq_rel) != 1)
        return;
    weft__fut_complete_external(j->f, 0, 0, NULL, NULL);
    weft__free(j);
}

static void handle_stop(weft_actor *a, amsg *m)
{
    if (!(weft__load_relaxed(&a->flags) & F_DEAD))
        die(a);
    if (m->reply)
        weft__fut_complete_external(m->reply, 0, 0, NULL, NULL);
    if (m->join)
        weft__actor_finish_join(m->join);
    env_free(m);
}

/* After a failed message: fini, zeroed state, init again; or death past
 * max_restarts or when init fails. */
static void restart(weft_actor *a)
{
    uint32_t n = weft__load_relaxed(&a->restarts) + 1;
    weft__store_relaxed(&a->restarts, n);
    weft__add_relaxed(&a->rt->actor_restarts, 1);
    if (a->max_restarts >= 0 && n > (uint32_t)a->max_restarts) {
        die(a);
        return;
    }
    if (a->inited && a->cls->fini)
        a->cls->fini(state_of(a));
    memset(state_of(a), 0, a->cls->state_size);
    a->inited = !a->cls->init || a->cls->init(state_of(a), a->arg) == 0;
    if (!a->inited)
        die(a);
}

/* ---- handling ---- */

struct weft_actor_ctx {
    weft_actor *self;
    amsg *m;
    void *result;
    void (*dtor)(void *);
};

/* Handle or drop one message. */
static void handle(weft_actor *a, amsg *m)
{
    if (m->kind == MSG_STOP) {
        handle_stop(a, m);
        return;
    }
    /* acquire pairs with the stop's fetch_or (F_KILL) */
    uint32_t f = weft__load_acquire(&a->flags);
    if (f & (F_DEAD | F_KILL)) {
        if (!(f & F_DEAD))
            die(a);
        drop(a, m);
        return;
    }
    struct weft_actor_ctx cx = {.self = a, .m = m};
    int rc = a->cls->receive(&cx, state_of(a), m->size ? m->data : NULL,
                             m->size);
    /* counted before the reply goes, so an asker's later look at the
     * statistics includes its message */
    weft__stat_add(&weft__self->actor_handled, 1);
    if (rc) /* first: the asker then sees the restart (or death) done */
        restart(a);
    if (m->reply)
        weft__fut_complete_external(m->reply, rc, rc, cx.result, cx.dtor);
    env_free(m);
}

/* Wake outside threads waiting for room in a bounded mailbox. The
 * seq_cst load pairs with the waiter's seq_cst increment of
 * space_waiters (a Dekker handshake with the count update before it). */
static void wake_space(weft_actor *a)
{
    if (weft__load_seqcst(&a->space_waiters) == 0)
        return;
    weft__add_seqcst(&a->space_seq, 1);
    weft__futex_wake(&a->space_seq, INT32_MAX);
}

/* Take up to batch messages, and return how many are left in count.
 * Only messages known to be reserved are waited for, so an activation
 * never spins on an empty mailbox. An unbounded mailbox subtracts what it
 * took once, at the end; a bounded one after each message, so the room
 * a message frees is given to waiting senders at once. */
static int64_t take_batch(weft_actor *a)
{
    int64_t taken = 0, owed = 0, avail = weft__load_acquire(&a->count);
    while (taken < a->batch) {
        if (owed == avail && (avail = weft__load_acquire(&a->count)) == owed)
            break;
        amsg *m = mq_take(a);
        if (!m)
            break; /* its sender stalls between reserve and link */
        taken++;
        owed++;
        handle(a, m);
        if (a->capacity) {
            /* seq_cst: the handshake with sleep_for_space */
            avail = weft__sub_seqcst(&a->count, 1) - 1;
            owed = 0;
            wake_space(a);
            if (avail == 0)
                return 0;
        }
    }
    if (taken == 0)
        sched_yield(); /* let a stalled sender link its message */
    /* acq_rel: releases this activation's writes to the next one (the
     * acquire of the sender that moves count from 0, or our requeue) */
    return owed ? weft__sub_seqcst(&a->count, owed) - owed
                : weft__load_acquire(&a->count);
}

static void activate(weft__job *j)
{
    weft_actor *a = (weft_actor *)((char *)j - offsetof(weft_actor, job));
    weft_actor *outer = running;
    weft_runtime *rt = a->rt;
    running = a;
    int64_t left = take_batch(a);
    running = outer;
    if (left > 0) {
        weft__job_push(rt, &a->job, a->node, 0); /* keeps token and ref */
        return;
    }
    weft__actor_unref(a);
    weft__jobs_end(rt); /* last: destroy may proceed after this */
}

/* ---- sending ---- */

static bool on_worker_of(weft_runtime *rt)
{
    return weft__self && weft__self->rt == rt;
}

/* An outside thread sleeps until the activation frees room. */
static void sleep_for_space(weft_actor *a, int64_t cap)
{
    uint32_t seq = weft__load_acquire(&a->space_seq);
    weft__add_seqcst(&a->space_waiters, 1);
    if (weft__load_seqcst(&a->count) >= cap)
        weft__futex_wait_until(&a->space_seq, seq,
                               weft__now_ns() + SPACE_NAP_NS);
    weft__sub_seqcst(&a->space_waiters, 1);
}

/* Wait until a has room (or is closed). A worker runs other work
 * meanwhile; others sleep. */
static int wait_space(weft_actor *a, unsigned flags, int64_t cap)
{
    if (flags & WEFT_SEND_NOWAIT)
        return -EAGAIN;
    if (running == a)
        return -EDEADLK; /* only this activation could make room */
    if (weft__load_acquire(&a->flags) & F_CLOSED)
        return WEFT_ACTOR_DEAD;
    weft__worker *w = weft__self;
    if (!on_worker_of(a->rt)) {
        sleep_for_space(a, cap);
    } else if (w->help_depth < 64) {
        w->help_depth++;
        if (!weft__help(w, NULL))
            sched_yield();
        w->help_depth--;
    } else {
        sched_yield();
    }
    return 0;
}

/* Reserve one message in a's mailbox: 0, or the error to return. Returns
 * in *was the count before. */
static int reserve(weft_actor *a, unsigned flags, int64_t *was)
{
    int64_t cap = a->capacity;
    if (!cap) {
        /* acq_rel: acquire pairs with the activation's subtraction, so
         * the scheduling sender sees the previous activation finished */
        *was = atomic_fetch_add_explicit(&a->count, 1, memory_order_acq_rel);
        return 0;
    }
    int64_t c = weft__load_relaxed(&a->count);
    for (;;) {
        if (c < cap) {
            if (weft__cas_acqrel(&a->count, &c, c + 1)) {
                *was = c;
                return 0;
            }
            continue;
        }
        int rc = wait_space(a, flags, cap);
        if (rc)
            return rc;
        c = weft__load_relaxed(&a->count);
    }
}

/* Queue m (reserved) and schedule a when it was idle. */
static void enqueue(weft_actor *a, amsg *m, int64_t was)
{
    mq_push(a, &m->link);
    if (was == 0)
        schedule(a);
}

static amsg *msg_new(const void *data, size_t size, uint32_t kind)
{
    amsg *m = env_alloc(sizeof *m + size);
    if (!m)
        return NULL;
    m->reply = NULL;
    m->size = (uint32_t)size;
    m->kind = kind;
    m->join = NULL;
    if (size == sizeof(uint64_t) * 3) /* common small sizes: inline */
        memcpy(m->data, data, sizeof(uint64_t) * 3);
    else if (size == sizeof(uint64_t))
        memcpy(m->data, data, sizeof(uint64_t));
    else if (size)
        memcpy(m->data, data, size);
    return m;
}

/* Send or ask to one plain actor; reply (may be NULL) goes with it. */
static int deliver(weft_actor *a, const void *data, size_t size,
                   unsigned flags, fut *reply)
{
    if (weft__load_acquire(&a->flags) & F_CLOSED)
        return WEFT_ACTOR_DEAD;
    amsg *m = msg_new(data, size, MSG_USER);
    if (!m)
        return -ENOMEM;
    m->reply = reply;
    int64_t was;
    int rc = reserve(a, flags, &was);
    if (rc) {
        env_free(m);
        return rc;
    }
    enqueue(a, m, was);
    count_sent(a->rt);
    return 0;
}

static int check_send(const weft_actor *a, const void *msg, size_t size,
                      unsigned flags)
{
    if (!a || (!msg && size) || size > UINT32_MAX ||
        (flags & ~(unsigned)WEFT_SEND_NOWAIT))
        return -EINVAL;
    return 0;
}

int weft_send(weft_actor *a, const void *msg, size_t size, unsigned flags)
{
    int rc = check_send(a, msg, size, flags);
    if (rc || (rc = weft__enter(a->rt)))
        return rc;
    weft_actor *to = a->pool ? weft__pool_pick(a) : a;
    rc = deliver(to, msg, size, flags, NULL);
    weft__leave(a->rt);
    return rc;
}

int weft_ask(weft_actor *a, const void *msg, size_t size, unsigned flags,
             weft_future **out)
{
    if (out)
        *out = NULL;
    int rc = check_send(a, msg, size, flags);
    if (rc || !out)
        return rc ? rc : -EINVAL;
    if ((rc = weft__enter(a->rt)))
        return rc;
    weft_actor *to = a->pool ? weft__pool_pick(a) : a;
    fut *f;
    weft_future *h;
    if ((rc = weft__fut_external(a->rt, to->cls->name, &f, &h)) == 0 &&
        (rc = deliver(to, msg, size, flags, f))) {
        weft__fut_complete_external(f, rc, rc, NULL, NULL);
        weft_future_release(h);
    }
    if (rc == 0)
        *out = h;
    weft__leave(a->rt);
    return rc;
}

/* ---- spawning ---- */

weft_actor_opts weft_actor_opts_default(void)
{
    weft_actor_opts o;
    memset(&o, 0, sizeof o);
    o.numa_node = -1;
    return o;
}

int weft__actor_check_opts(const weft_actor_opts *o)
{
    if (o->max_restarts < -1 || o->capacity < 0 || o->batch < 0 ||
        o->batch > 65535 || o->numa_node < -1 || o->numa_node > 127)
        return -EINVAL;
    return 0;
}

static void actor_init(weft_actor *a, weft_runtime *rt,
                       const weft_actor_class *cls, void *arg,
                       const weft_actor_opts *o)
{
    memset(a, 0, WEFT__ACTOR_HDR + cls->state_size);
    a->job.run = activate;
    a->stub.next = NULL;
    weft__store_relaxed(&a->in, &a->stub);
    a->out = &a->stub;
    weft__store_relaxed(&a->refs, 2); /* the caller's handle, alive */
    a->batch = (uint16_t)(o->batch ? o->batch : WEFT_ACTOR_BATCH);
    a->node = (int8_t)o->numa_node;
    a->max_restarts = o->max_restarts;
    a->capacity = o->capacity;
    a->cls = cls;
    a->rt = rt;
    a->arg = arg;
}

/* Put a (a pool's handle) on rt's registry: 0 or -ENOMEM. */
int weft__actor_register(weft_runtime *rt, weft_actor *a)
{
    areg *r = reg_of(rt);
    if (!r)
        return -ENOMEM;
    reg_add(r, a);
    return 0;
}

/* Allocate and initialise an actor, run init, register it. */
int weft__actor_new(weft_runtime *rt, const weft_actor_class *cls, void *arg,
                    const weft_actor_opts *o, weft_actor **out)
{
    areg *r = reg_of(rt);
    size_t size = WEFT__ACTOR_HDR + cls->state_size;
    weft_actor *a = r ? weft__malloc(size) : NULL;
    if (!a)
        return -ENOMEM;
    actor_init(a, rt, cls, arg, o);
    if (cls->init) {
        int rc = cls->init(state_of(a), arg);
        if (rc) {
            weft__free(a);
            return rc;
        }
    }
    a->inited = true;
    weft__add_seqcst(&rt->actors, 1);
    reg_add(r, a);
    *out = a;
    return 0;
}

int weft_actor_spawn(weft_runtime *rt, const weft_actor_class *cls,
                     void *arg, const weft_actor_opts *opts,
                     weft_actor **out)
{
    if (out)
        *out = NULL;
    weft_actor_opts o = opts ? *opts : weft_actor_opts_default();
    if (!rt || !cls || !cls->receive || !out ||
        cls->state_size > ((size_t)1 << 40) || weft__actor_check_opts(&o))
        return -EINVAL;
    int rc = weft__enter(rt);
    if (rc)
        return rc;
    rc = weft__actor_new(rt, cls, arg, &o, out);
    weft__leave(rt);
    return rc;
}

/* ---- stopping ---- */

/* Ask one plain actor to stop; done (may be NULL) and join (may be NULL)
 * are completed once it has. 0, -EALREADY or WEFT_ACTOR_DEAD; done and
 * join are completed here on WEFT_ACTOR_DEAD. */
int weft__actor_stop_one(weft_actor *a, int mode, ajoin *join, fut *done)
{
    amsg *m = msg_new(NULL, 0, MSG_STOP);
    if (!m)
        return -ENOMEM;
    m->reply = done;
    m->join = join;
    uint32_t want = F_CLOSED | (mode == WEFT_STOP_NOW ? F_KILL : 0);
    /* release pairs with the activation's acquire of flags (F_KILL) */
    uint32_t old = atomic_fetch_or_explicit(&a->flags, want,
                                            memory_order_acq_rel);
    if (old & F_DEAD) {
        handle_stop(a, m); /* only completes: a is dead */
        return WEFT_ACTOR_DEAD;
    }
    int64_t was = atomic_fetch_add_explicit(&a->count, 1,
                                            memory_order_acq_rel);
    enqueue(a, m, was);
    return (old & want) == want ? -EALREADY : 0;
}

int weft_actor_stop(weft_actor *a, int mode, weft_future **done)
{
    if (done)
        *done = NULL;
    if (!a || (mode != WEFT_STOP_GRACEFUL && mode != WEFT_STOP_NOW))
        return -EINVAL;
    int rc = weft__enter(a->rt);
    if (rc)
        return rc;
    if (a->pool) {
        rc = weft__pool_stop(a, mode, done);
        weft__leave(a->rt);
        return rc;
    }
    fut *f = NULL;
    weft_future *h = NULL;
    if (done && (rc = weft__fut_external(a->rt, "stop", &f, &h))) {
        weft__leave(a->rt);
        return rc;
    }
    rc = weft__actor_stop_one(a, mode, NULL, f);
    if (rc == -ENOMEM && f) {
        weft__fut_complete_external(f, rc, rc, NULL, NULL);
        weft_future_release(h);
        h = NULL;
    } else if (rc == WEFT_ACTOR_DEAD && h) {
        weft_future_release(h);
        h = NULL;
    }
    if (done)
        *done = h;
    weft__leave(a->rt);
    return rc;
}

/* ---- handles ---- */

int weft_actor_retain(weft_actor *a)
{
    if (!a)
        return -EINVAL;
    actor_ref(a);
    return 0;
}

int weft_actor_release(weft_actor *a)
{
    if (!a)
        return -EINVAL;
    weft__actor_unref(a);
    return 0;
}

int weft_actor_alive(const weft_actor *a)
{
    if (!a)
        return -EINVAL;
    const weft_actor *m = a->pool ? a->pool->member[0] : a;
    return !(weft__load_acquire(&((weft_actor *)m)->flags) & F_CLOSED);
}

long weft_actor_restarts(const weft_actor *a)
{
    if (!a)
        return -EINVAL;
    if (!a->pool)
        return (long)weft__load_relaxed(&((weft_actor *)a)->restarts);
    long n = 0;
    for (int i = 0; i < a->pool->n; i++)
        n += weft_actor_restarts(a->pool->member[i]);
    return n;
}

long weft_actor_backlog(const weft_actor *a)
{
    if (!a)
        return -EINVAL;
    if (!a->pool)
        return (long)weft__load_relaxed(&((weft_actor *)a)->count);
    long n = 0;
    for (int i = 0; i < a->pool->n; i++)
        n += weft_actor_backlog(a->pool->member[i]);
    return n;
}

/* ---- inside receive ---- */

weft_actor *weft_actor_self(const weft_actor_ctx *ctx)
{
    return ctx ? ctx->self : NULL;
}

weft_runtime *weft_actor_runtime(const weft_actor_ctx *ctx)
{
    return ctx ? ctx->self->rt : NULL;
}

int weft_actor_is_ask(const weft_actor_ctx *ctx)
{
    return ctx && ctx->m->reply ? 1 : 0;
}

int weft_actor_reply(weft_actor_ctx *ctx, void *value,
                     void (*dtor)(void *value))
{
    if (!ctx)
        return -EINVAL;
    if (!ctx->m->reply) { /* a plain send: nobody will read it */
        if (value && dtor)
            dtor(value);
        return 0;
    }
    if (ctx->result && ctx->dtor)
        ctx->dtor(ctx->result);
    ctx->result = value;
    ctx->dtor = dtor;
    return 0;
}
