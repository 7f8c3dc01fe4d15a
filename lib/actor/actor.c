/* Actors: mailboxes, activations, restarts and stops.
 *
 * Mailbox. An intrusive MPSC queue without locks (Vyukov's, with Pony's
 * idle mark): a producer exchanges the queue's `in` end with its envelope
 * and then links the old end to it; the one consumer (the actor's running
 * activation) follows the links from `out`, and puts the stub back behind
 * the last message when it drains the queue. Messages of one producer
 * keep their order because its exchanges are ordered. A send is that one
 * exchange: the low bit of `in` (MQ_IDLE) says the mailbox was empty with
 * no activation, and the send that finds it set schedules one.
 *
 * Activation. A pool job that takes at most `batch` messages. When none
 * is left it marks the mailbox idle with a compare-and-swap that only
 * succeeds if no send came in between, and ends; after a full batch it
 * queues itself again behind the other work. So exactly one activation
 * exists while the mark is clear: the actor's state needs no lock, and
 * the mark's release (the compare-and-swap) and acquire (the scheduling
 * sender's exchange) hand the state from one activation to the next. A
 * message whose sender is between its exchange and its link is waited for
 * briefly, then the activation yields and runs again.
 *
 * Count. Bounded mailboxes, pool members and actors spawned with
 * track_backlog also keep `count`, the messages sent and not yet handled:
 * the bound is checked against it, a pool routes by it, and
 * weft_actor_backlog() reads it. Other actors skip it: it was a second
 * read-modify-write of the senders' cache line per message. Without it
 * many senders into one mailbox went from 216 to 195 ms and counting
 * from 86 to 80 ms on 2 workers (medians of 7 processes, each keeping
 * its second run, against the count in the same run).
 *
 * Lifetime. refs counts the handles, one reference while the actor is
 * alive, and one per scheduled activation; the memory goes when it drops
 * to 0. Every actor is on its runtime's registry, so destroy frees those
 * a program still references.
 *
 * Send combining (the outbox). A plain send made by a receive (not an ask
 * or a stop, not to a counted or closed actor, not to itself, not to an
 * actor of another runtime) to the same
 * target as the receive's previous send is not queued at once: the thread
 * holds it on a chain, linked in send order, and publishes the chain with
 * one exchange on the target's `in` (and one link store) when it reaches
 * OUTBOX_MAX, when the receive sends anything to another actor or anything
 * else at all (an ask, a stop: those go behind the held chain), when the
 * receive returns (before its reply completes), and before any weft call
 * that waits or runs other work on the thread (weft__before_wait, lib/core:
 * help, future gets and waits, syncs, futex sleeps, store gets), after
 * which the receive sends directly until it returns. Calls that hand work
 * to other threads (a submit, tasks made stealable) publish first too
 * (weft__before_share). One chain per thread, so a send to another target
 * publishes first: messages of a receive keep their order per target, and
 * across targets no later send overtakes an earlier one. The statistics
 * count a held send when it is made.
 *
 * A receive's first send to a target is queued at once: holding it too made
 * receives that send one message each pay a reference taken and given back
 * on the target's hot line, and ping-pong (+33%), chameneos (+25%), thread
 * ring (+18%) and big (+16%) got slower; with the first queued at once and
 * the outbox's work out of line they are back to their times before.
 *
 * Many senders into one mailbox (8 sender actors, 2M messages, 2 workers)
 * on the 2-core VM, medians of 7-9 processes each keeping its second run,
 * alternated with the build before: 192 -> 140 ms with combining alone, 188
 * -> 173 ms with 64-byte-aligned actors alone (act.h), 192 -> 73 ms with
 * both (the senders' per-message reads of flags and rt then stay in their
 * caches; 1 worker: about 55 ms). Bound: 8 gave 92 ms; 16, 32, 64 and 128
 * gave 72-78 ms, within the noise; 32 keeps a held send's delay short
 * inside a long receive. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "alloc.h"
#include "act.h"

/* How long an activation waits for a sent message to be linked before
 * it yields (its sender was preempted between exchange and link). */
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

/* Queue the chain first..last, already linked through next with last's
 * next NULL, in one exchange; true when the mailbox was idle: the caller
 * schedules it. */
static bool mq_push_chain(weft_actor *a, alink *first, alink *last)
{
    /* acq_rel: takes the previous end from the producer before us, and
     * from an activation's idle mark the state it leaves */
    uintptr_t prev = weft__xchg_acqrel(&a->in, (uintptr_t)last);
    /* release pairs with the consumer's acquire load of next: the
     * envelopes' contents and the chain's own links are visible once it
     * is linked */
    weft__store_release(&((alink *)(prev & ~MQ_IDLE))->next, first);
    return prev & MQ_IDLE;
}

/* Queue n; true when the mailbox was idle: the caller schedules it. */
static bool mq_push(weft_actor *a, alink *n)
{
    weft__store_relaxed(&n->next, NULL);
    return mq_push_chain(a, n, n);
}

/* The oldest linked message, or NULL when none is linked (empty, or a
 * producer is between its exchange and its link). Consumer only. While
 * an activation runs, `in` carries no idle mark. */
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
    if ((uintptr_t)tail != weft__load_acquire(&a->in))
        return NULL; /* a push is half done */
    mq_push(a, &a->stub); /* tail is the last: put the stub behind it */
    if ((next = weft__load_acquire(&tail->next))) {
        a->out = next;
        return tail;
    }
    return NULL;
}

typedef enum { MQ_MSG, MQ_PARKED, MQ_STALLED } mq_state;

/* The next message in *m; or, when none is linked, the mailbox marked
 * idle if it is empty (MQ_PARKED: the activation must end), else its
 * newest sender stalled between exchange and link (MQ_STALLED). */
static mq_state mq_take(weft_actor *a, amsg **m)
{
    uintptr_t stub = (uintptr_t)&a->stub;
    for (int i = 0; i < LINK_SPINS; i++) {
        if ((*m = (amsg *)mq_pop(a)))
            return MQ_MSG;
        uintptr_t last = stub;
        /* release: this activation's writes reach the sender whose
         * exchange sees the mark (and schedules the next activation) */
        if (a->out == &a->stub &&
            atomic_compare_exchange_strong_explicit(
                &a->in, &last, stub | MQ_IDLE, memory_order_release,
                memory_order_relaxed))
            return MQ_PARKED;
        weft__cpu_relax();
    }
    return MQ_STALLED;
}

/* ---- envelopes (env.c) ---- */

static void env_free(amsg *m)
{
    weft__env_free(m, sizeof *m + m->size);
}

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
static void schedule_as(weft_actor *a, bool may_defer)
{
    actor_ref(a); /* the activation's */
    weft__jobs_begin(a->rt);
    if (may_defer && running &&
        (a->node < 0 || a->node == weft__self->numa) &&
        weft__job_defer(a->rt, &a->job))
        return;
    weft__job_push(a->rt, &a->job, a->node, 0);
}

static void schedule(weft_actor *a) { schedule_as(a, true); }

/* ---- the outbox: a receive's sends, combined ---- */

/* Plain sends a receive makes, held per thread and published together
 * (see the top of this file): the messages to one target, linked in send
 * order, go into its mailbox with one exchange (OUTBOX_MAX at most)
 * instead of one each. A receive's first send to a target is queued at
 * once; only a second in a row to the same one starts a chain, so the
 * receives that send one message each (ping-pong, rings, most of Savina)
 * pay neither the held target's reference nor a later publish. Sends are
 * held only while weft__wait_hook is ob_hook: set by handle() around the
 * receive, cleared (after a publish) by the first weft call in it that
 * waits or runs other work on this thread. The target
 * stays referenced from its first held send to the end of the receive
 * (or the next target), so a stop and release elsewhere cannot free it
 * under a held chain; a chain that lands behind a stop is dropped like
 * any send that raced with it. */
#define OUTBOX_MAX 32

typedef struct outbox {
    weft_actor *to;      /* the target (referenced), or NULL */
    alink *first, *last; /* the chain held, first NULL when none */
    int n;
    /* the receive's last target of a send queued at once (compared,
     * never followed) */
    const weft_actor *prev;
} outbox;

static WEFT__TLS _Thread_local outbox ob;

/* Put the chain held into its target's mailbox; the target stays. An
 * activation it starts may wait in this worker's deferred slot unless
 * the caller is about to wait (may_defer false): then it goes where
 * other workers can take it, since what runs here meanwhile (a future
 * run in place) may hold this worker until the target has run. */
static __attribute__((noinline, cold)) void ob_publish(bool may_defer)
{
    weft_actor *a = ob.to;
    if (!ob.first)
        return;
    alink *first = ob.first;
    ob.first = NULL;
    ob.n = 0;
    if (mq_push_chain(a, first, ob.last))
        schedule_as(a, may_defer);
}

/* Publish what is held and give the target back. */
static __attribute__((noinline, cold)) void ob_flush_as(bool may_defer)
{
    weft_actor *a = ob.to;
    if (!a)
        return;
    ob_publish(may_defer);
    ob.to = NULL;
    weft__actor_unref(a);
}

/* The check inline (every receive and queued send makes it), the work
 * out of line, off the path of receives that hold nothing. */
static inline void ob_flush(void)
{
    if (WEFT_UNLIKELY(ob.to != NULL))
        ob_flush_as(true);
}

/* weft__wait_hook while a receive runs: publish; before a wait (which
 * may run other work on this thread), also send directly from then on,
 * until the receive returns. */
static void ob_hook(bool waits)
{
    ob_flush_as(!waits);
    if (waits)
        weft__wait_hook = NULL;
}

/* Hold l (linked as the newest) for a. */
static __attribute__((noinline)) void ob_add(weft_actor *a, alink *l)
{
    weft__store_relaxed(&l->next, NULL);
    if (ob.to != a) {
        ob_flush(); /* the previous target's first: causality */
        actor_ref(a);
        ob.to = a;
    }
    if (ob.first)
        weft__store_relaxed(&ob.last->next, l);
    else
        ob.first = l;
    ob.last = l;
    if (++ob.n >= OUTBOX_MAX)
        ob_publish(true);
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

/* No activation can exist (nothing was ever sent to a), so a dies here
 * rather than by a stop message, whose allocation could fail and leave
 * it alive with no handle until the runtime's destroy. */
void weft__actor_discard(weft_actor *a)
{
    die(a);
    weft__actor_unref(a); /* the caller's; die gave back the alive one */
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
    /* armed for this receive; not saved and restored: a nested
     * activation only ever runs inside a wait, which disarmed it */
    weft__wait_hook = ob_hook;
    ob.prev = NULL;
    int rc = a->cls->receive(&cx, state_of(a), m->size ? m->data : NULL,
                             m->size);
    /* before the reply: an asker that then sends to the targets finds
     * the receive's messages ahead of its own */
    ob_flush();
    weft__wait_hook = NULL;
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

/* Handle up to batch messages: true when the mailbox was found empty
 * and marked idle (the activation ends), false when it must run again.
 * A bounded mailbox gives back the room of each message as soon as it is
 * handled, so waiting senders get it at once; other counting ones
 * subtract what they took once, before the activation ends or yields. */
static bool take_batch(weft_actor *a)
{
    bool counted = weft__load_relaxed(&a->flags) & F_COUNTED;
    int64_t owed = 0;
    mq_state st = MQ_MSG;
    for (int taken = 0; taken < a->batch; taken++) {
        amsg *m;
        if ((st = mq_take(a, &m)) != MQ_MSG)
            break;
        handle(a, m);
        if (a->capacity) {
            /* seq_cst: the handshake with sleep_for_space */
            weft__sub_seqcst(&a->count, 1);
            wake_space(a);
        } else {
            owed++;
        }
    }
    if (counted && owed)
        weft__sub_release(&a->count, owed);
    if (st == MQ_STALLED)
        sched_yield(); /* let the stalled sender link its message */
    return st == MQ_PARKED;
}

static void activate(weft__job *j)
{
    weft_actor *a = (weft_actor *)((char *)j - offsetof(weft_actor, job));
    weft_actor *outer = running;
    weft_runtime *rt = a->rt;
    running = a;
    bool parked = take_batch(a);
    running = outer;
    if (!parked) {
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

/* Count one message into a counted mailbox (F_COUNTED): 0, or the
 * error to return. A bounded one waits for room (or returns -EAGAIN). */
static int reserve(weft_actor *a, unsigned flags)
{
    int64_t cap = a->capacity;
    if (!cap) { /* a pool member's or track_backlog's: no bound */
        weft__add_relaxed(&a->count, 1);
        return 0;
    }
    int64_t c = weft__load_relaxed(&a->count);
    for (;;) {
        if (c < cap) {
            if (weft__cas_acqrel(&a->count, &c, c + 1))
                return 0;
            continue;
        }
        int rc = wait_space(a, flags, cap);
        if (rc)
            return rc;
        c = weft__load_relaxed(&a->count);
    }
}

/* Queue m (counted, if a counts) and schedule a when it was idle.
 * What this thread's receive holds goes first: every send behind the
 * held ones keeps its place. */
static void enqueue(weft_actor *a, amsg *m)
{
    ob_flush();
    if (mq_push(a, &m->link))
        schedule(a);
}

static amsg *msg_new(const void *data, size_t size, uint32_t kind)
{
    amsg *m = weft__env_alloc(sizeof *m + size);
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
    uint32_t f = weft__load_acquire(&a->flags);
    if (f & F_CLOSED)
        return WEFT_ACTOR_DEAD;
    amsg *m = msg_new(data, size, MSG_USER);
    if (!m)
        return -ENOMEM;
    /* Held only for an actor of the receive's own runtime: that one
     * cannot be destroyed before the receive returns (its activation is
     * a job destroy waits for), another runtime's would free the target
     * under the held chain and lose sends that returned 0. */
    if (!reply && !(f & F_COUNTED) && weft__wait_hook == ob_hook &&
        a != running && a->rt == running->rt) { /* a plain send from a
                                                  * receive */
        if (ob.to == a || ob.prev == a) { /* a run to one target: held */
            ob_add(a, &m->link);
            count_sent(a->rt);
            return 0;
        }
        ob.prev = a; /* the first to a: queued at once, below */
    }
    m->reply = reply;
    int rc = (f & F_COUNTED) ? reserve(a, flags) : 0;
    if (rc) {
        env_free(m);
        return rc;
    }
    enqueue(a, m);
    count_sent(a->rt);
    return 0;
}

/* Deliver to a, or for a pool to an open member: a member that closed
 * between the pick and the delivery (it died, or stops) is passed over
 * for another; WEFT_ACTOR_DEAD once none is open. Each retry follows a
 * member's closing, which is for good, so there are fewer than n. */
static int deliver_any(weft_actor *a, const void *data, size_t size,
                       unsigned flags, fut *reply)
{
    if (!a->pool)
        return deliver(a, data, size, flags, reply);
    for (;;) {
        weft_actor *to = weft__pool_pick(a);
        int rc = to ? deliver(to, data, size, flags, reply)
                    : WEFT_ACTOR_DEAD;
        if (rc != WEFT_ACTOR_DEAD || !to)
            return rc;
    }
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
    rc = deliver_any(a, msg, size, flags, NULL);
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
    fut *f;
    weft_future *h;
    if ((rc = weft__fut_external(a->rt, a->cls->name, &f, &h)) == 0 &&
        (rc = deliver_any(a, msg, size, flags, f))) {
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
        o->batch > 65535 || o->numa_node < -1 || o->numa_node > 127 ||
        o->track_backlog < 0 || o->track_backlog > 1)
        return -EINVAL;
    return 0;
}

int weft__actor_check_class(const weft_actor_class *cls)
{
    if (!cls || !cls->receive || cls->state_size > ((size_t)1 << 40))
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
    weft__store_relaxed(&a->in, (uintptr_t)&a->stub | MQ_IDLE);
    a->out = &a->stub;
    weft__store_relaxed(&a->refs, 2); /* the caller's handle, alive */
    a->batch = (uint16_t)(o->batch ? o->batch : WEFT_ACTOR_BATCH);
    a->node = (int8_t)o->numa_node;
    a->max_restarts = o->max_restarts;
    a->capacity = o->capacity;
    if (a->capacity || o->track_backlog)
        weft__store_relaxed(&a->flags, F_COUNTED);
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

/* An actor's block: 64-byte aligned, its size rounded up to a multiple
 * of 64 (see act.h). mimalloc already places blocks of such sizes on
 * 64-byte boundaries (its pages start aligned), so a plain allocation
 * is tried first: its aligned allocation would take the next size class
 * (192 bytes became 256 for the smallest actor, near the idle-actor
 * budget). Other allocators fall back to aligned_alloc. */
static weft_actor *actor_alloc(size_t size)
{
    size = (size + WEFT__CACHELINE - 1) & ~(size_t)(WEFT__CACHELINE - 1);
    void *p = weft__malloc(size);
    if (p && ((uintptr_t)p & (WEFT__CACHELINE - 1))) {
        weft__free(p);
        p = weft__aligned_alloc(WEFT__CACHELINE, size);
    }
    return p;
}

/* Allocate and initialise an actor, run init, register it. */
int weft__actor_new(weft_runtime *rt, const weft_actor_class *cls, void *arg,
                    const weft_actor_opts *o, weft_actor **out)
{
    areg *r = reg_of(rt);
    weft_actor *a = r ? actor_alloc(WEFT__ACTOR_HDR + cls->state_size)
                      : NULL;
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
    if (!rt || !out || weft__actor_check_class(cls) ||
        weft__actor_check_opts(&o))
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
    if (old & F_COUNTED)
        weft__add_relaxed(&a->count, 1);
    enqueue(a, m);
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
    if (a->pool)
        return weft__pool_alive(a);
    return !(weft__load_acquire(&((weft_actor *)a)->flags) & F_CLOSED);
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
    weft_actor *m = (weft_actor *)a;
    if (!a->pool)
        return weft__load_relaxed(&m->flags) & F_COUNTED
                   ? (long)weft__load_relaxed(&m->count)
                   : -ENOTSUP;
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
