/* The node: weft's runtime across machines, on top of one transport.
 *
 * Threads. One communication thread per node opens the transport, calls
 * its progress in a loop and handles every incoming message and peer
 * event; it also drives stealing. Any thread may submit remote tasks or
 * fetch objects (the transport's send is thread-safe). Tasks run on the
 * node's runtime: incoming ones as weft_submit jobs that send their reply
 * when done, local ones likewise.
 *
 * State. Everything shared lives under n->lock, which is never held
 * while calling the transport (a send may complete inline).
 *  - tab: the records of work this node owns that is out at a peer (a
 *    task sent or stolen, an object fetch), by id. A reply removes its
 *    record; the death of the peer re-queues idempotent tasks and fails
 *    the rest.
 *  - anyq: tasks for "any node" not started yet. This node runs at most
 *    one per worker at a time; the surplus is what idle peers steal.
 *  - pubs: the actors published by name, each with a reference the node
 *    holds; a message from a peer takes its own reference while it hands
 *    the message over, so an unpublish cannot free the actor under it.
 *
 * Every reply a peer owes (a task, a fetch, an ask) is a record on tab
 * until it comes: the death of that peer is the one event that fails
 * what is owed, so a record goes on tab only while the peer is not yet
 * dead (tab_add), under the lock on_failed takes.
 *
 * Short tasks run where they arrive. A task flagged WEFT_REMOTE_CHEAP, or
 * one whose function has averaged under inline_ns here (fnstat, timed on
 * every run), is not handed to a worker when the communication thread
 * receives it (a polling waiter hands it on): that thread queues it
 * on a thread-local list (tl_defer) and runs it once the transport call
 * that delivered it has returned (the backend's locks released, so the
 * task may wait for futures and its thread polls meanwhile). That saves
 * the wake-up of a worker and the hand-back of the reply. Inline runs do
 * not nest: once an inline task waits, the tasks still deferred behind
 * it and those its polling receives go to workers (spill_deferred).
 * Nested runs piled up frames on every polling thread until one of them
 * slept with tasks others waited for still on its list.
 *
 * Waiting. When the transport can be polled from any thread (ops->poll),
 * the futures of tasks, fetches and asks sent to a peer carry a poller: a
 * thread that waits for one drives the transport itself for a while
 * (future.c) instead of sleeping until the communication thread wakes
 * it, so events may also come on that thread. The poller lives in a
 * static slot (pollers[]) that outlives the node: a waiter that still
 * holds it after weft_net_destroy finds the slot empty. The
 * communication thread has a poller of its own (comm_poll), which it
 * drives whenever a task it runs inline waits, for whatever future:
 * nobody else drives its transport then.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "fut.h"
#include "net_internal.h"

#define TAB_BUCKETS 1024
#define OBJ_BUCKETS 256
#define PUB_BUCKETS 64
#define RESEND_MAX 256 /* reserve for held messages that have no record */
#define TASK_STOLEN WEFT__TASK_STOLEN
/* The default of weft_net_config.inline_us where it applies. */
#define INLINE_DEFAULT_NS 20000u
/* A function that ran this long NEVER_AFTER times is never run inline
 * again. Not once: on a busy machine a run of a microsecond takes a
 * millisecond whenever its thread loses the CPU in it. */
#define INLINE_NEVER_NS 1000000u
#define NEVER_AFTER 3u
#define FN_UNKNOWN UINT32_MAX

enum { P_NEW, P_JOINED, P_OK, P_DEAD, P_BAD /* another table */ };
enum { R_TASK, R_FETCH, R_ASK };

typedef struct rec {
    struct rec *next;  /* tab chain, or anyq */
    uint64_t id;
    int kind, dst;
    uint32_t fn, flags;
    weft_bytes *arg;
    fut *f;
    _Atomic int refs; /* the owner's, and one per send in flight */
    uint8_t obj[WEFT_OBJECT_ID_LEN];
} rec;

typedef struct obj {
    struct obj *next;
    uint8_t id[WEFT_OBJECT_ID_LEN];
    int rank;          /* where it is */
    weft_bytes *data;  /* the default table's copy (rank == own), or NULL */
} obj;

/* An actor published under a name. */
typedef struct pub {
    struct pub *next;
    weft_actor *a; /* the node's reference */
    size_t len;
    char name[]; /* len bytes and a NUL */
} pub;

/* How long a remote function's runs took here: a moving average (ns;
 * FN_UNKNOWN before its first run) and how many runs were too long to
 * run it inline (up to NEVER_AFTER). Updated racily by whichever thread
 * ran it: a lost update only delays what they say. */
typedef struct fnstat {
    _Atomic uint32_t avg_ns;
    _Atomic uint8_t longs;
} fnstat;

typedef struct npoll {
    weft__poller base;
    _Atomic(weft_node *) node; /* NULL: free */
    _Atomic int users;         /* pollers inside node_poll */
} npoll;

#define NPOLL 64
static npoll pollers[NPOLL];

/* A message a peer waits for (a reply, a barrier step) whose send failed
 * for want of memory: held and sent again by the communication thread
 * until it goes or its peer is gone. Only messages with no payload, or
 * whose payload the queue owns (a done callback), are held.
 *
 * The entry needs no allocation: a reply to a remote task or an actor
 * ask lives in that request's own record (owner, freed once the reply
 * is through), which exists however many requests fail at once; other
 * messages (a failed request's error reply, object data, a barrier step)
 * take one of RESEND_MAX entries reserved at open. */
typedef struct resend {
    struct resend *next;
    void *owner; /* weft__free'd once sent; NULL: a reserved entry */
    int dst;
    weft__msg m;
    const void *data;
    size_t len;
    weft_send_done done;
    void *arg;
} resend;

typedef struct stat_ctr {
    _Atomic uint64_t sent, recv, bsent, brecv, dropped, remote, stolen,
        rerun, failed, peers_failed, actor_msgs, actor_dropped, held, lost,
        actor_waiting;
} stat_ctr;

/* A peer's send or ask to a published actor, its bytes borrowed. */
typedef struct actmsg {
    int src;
    bool ask;
    uint64_t id; /* the ask's record at src */
    const char *name;
    uint32_t namelen;
    const void *data;
    size_t len;
} actmsg;

/* One that found its actor's bounded mailbox full. The thread that
 * receives it must not wait for room (the actor's progress may need that
 * thread's), and dropping it would lose a message its sender was told
 * was queued; so it waits here, behind the others for the same actor,
 * and goes in when there is room (hold_tick). */
typedef struct held {
    struct held *next;
    size_t size; /* what it counts against HOLD_MAX_BYTES */
    actmsg m;    /* pointing into bytes */
    char bytes[];
} held;

/* The messages waiting for one actor, oldest first. */
typedef struct holdq {
    struct holdq *next;
    weft_actor *a; /* a reference */
    held *head, *tail;
} holdq;

/* Bytes of messages that may wait for room, per node: past it a send is
 * dropped (counted) and an ask fails with -EAGAIN, as before there was
 * any waiting. */
#define HOLD_MAX_BYTES (64u << 20)
/* How soon the communication thread tries waiting messages again. */
#define HOLD_RETRY_NS 50000u

struct weft_node {
    weft_runtime *rt;
    const weft_transport_ops *ops;
    weft_transport *t;
    weft_transport_params params;
    weft__fntab fns;
    fnstat *fstat;        /* fns.n of them */
    uint32_t inline_ns;   /* 0: only WEFT_REMOTE_CHEAP tasks run inline */
    bool timed;           /* runs are timed (inline_ns set at create) */
    /* The transport's events are handled (comm thread): not before the
     * peer tables exist, and not when they could not be made, while the
     * transport is closed again (its close may still deliver events). */
    bool events_on;
    int rank, size, local_max, steal_us;
    pthread_t thread;
    _Atomic bool stop;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* joins, barrier arrivals, jobs ending */
    /* under lock */
    bool opened, mismatch, died_early, closing, t_closed;
    int open_rc, settled; /* peers verified or dead */
    _Atomic uint8_t *peer; /* P_* by rank: written under lock, read
                              without it where a stale state is harmless */
    uint64_t *arrived;    /* highest barrier epoch each rank reached */
    uint64_t epoch;
    rec *tab[TAB_BUCKETS];
    rec *aq_head, *aq_tail;
    int aq_len, local_running, jobs_live;
    uint64_t next_id;
    obj *objs[OBJ_BUCKETS];
    weft_object_hooks hooks;
    bool has_hooks;
    pub *pubs[PUB_BUCKETS];
    npoll *poller;        /* or NULL; set once the node is created */
    /* under lock (events may come on a polling thread) */
    bool steal_pending;
    uint64_t steal_at, steal_backoff_ns;
    resend *rs;           /* RESEND_MAX reserved entries */
    resend *rs_free;      /* under lock: reserved entries not in use */
    resend *rs_head, *rs_tail; /* under lock: held, oldest first */
    /* actor messages waiting for room (holdq), under hold_lock, which
     * is never taken with lock held */
    pthread_mutex_t hold_lock;
    holdq *holds;
    size_t hold_bytes;
    /* communication thread only */
    uint64_t rand;
    stat_ctr st;
};

static void count(_Atomic uint64_t *c, uint64_t v)
{
    weft__add_relaxed(c, v);
}

/* A payload of len bytes is more than a peer takes (max_payload: the
 * same on every rank of a job): sent, it would be refused there (tcp
 * closes the stream), and whoever waits for it would wait for ever, so
 * the sender fails what it answers with -EMSGSIZE instead. */
static bool too_big(const weft_node *n, size_t len)
{
    return len > n->params.max_payload;
}

/* ---- sending ---- */

/* One try of the transport; on failure done is not called. */
static int transport_send(weft_node *n, int dst, const weft__msg *m,
                          const void *data, size_t len, weft_send_done done,
                          void *arg)
{
    unsigned char hdr[WEFT_AM_MAX_HDR];
    size_t hl = weft__msg_encode(hdr, m);
    struct iovec iov = {(void *)data, len};
    int rc = n->ops->send(n->t, dst, m->handler, hdr, hl, &iov, len ? 1 : 0,
                          done, arg);
    if (!rc) {
        count(&n->st.sent, 1);
        count(&n->st.bsent, len);
    }
    return rc;
}

/* A send that failed with rc may go through later: the transport was out
 * of memory or buffers, the peer is still there. */
static bool transient(int rc)
{
    return rc == -ENOMEM || rc == -ENOBUFS || rc == -EAGAIN;
}

/* Messages someone waits for, which no timeout of ours re-sends: losing
 * one to a passing shortage of memory left an asker waiting for ever. */
static bool awaited(unsigned handler)
{
    return handler == WEFT__H_REPLY || handler == WEFT__H_ACT_REPLY ||
           handler == WEFT__H_OBJ_DATA || handler == WEFT__H_BARRIER;
}

/* Hold the failed send for resend_tick, in slot (owned by owner, which
 * the queue frees once the message is through) or, with no slot, in a
 * reserved entry. False when it cannot be held: its payload is borrowed,
 * or no slot was given and the reserve is used up. */
static bool resend_hold(weft_node *n, resend *slot, void *owner, int dst,
                        const weft__msg *m, const void *data, size_t len,
                        weft_send_done done, void *arg)
{
    resend *e = NULL;
    if (len && !done)
        goto lost;
    pthread_mutex_lock(&n->lock);
    e = slot ? slot : n->rs_free;
    if (e) {
        if (!slot)
            n->rs_free = e->next;
        *e = (resend){NULL, owner, dst, *m, data, len, done, arg};
        if (n->rs_tail)
            n->rs_tail->next = e;
        else
            n->rs_head = e;
        n->rs_tail = e;
        count(&n->st.held, 1); /* under lock, as resend_pop's decrement */
    }
    pthread_mutex_unlock(&n->lock);
    if (e)
        return true;
lost:
    count(&n->st.lost, 1);
    weft__log("net: out of memory: a message to rank %d is lost", dst);
    return false;
}

/* send_msg, with the room to hold m in if it must wait: slot, in owner's
 * memory. Returns 1 when m was held there (owner is the queue's now, to
 * free), else as send_msg. */
static int send_msg_in(weft_node *n, resend *slot, void *owner, int dst,
                       const weft__msg *m, const void *data, size_t len,
                       weft_send_done done, void *arg)
{
    int rc = transport_send(n, dst, m, data, len, done, arg);
    if (!rc)
        return 0;
    if (transient(rc) && awaited(m->handler) &&
        resend_hold(n, slot, owner, dst, m, data, len, done, arg))
        return slot ? 1 : 0;
    if (done)
        done(arg, rc);
    /* A payload under max_payload that the transport cannot carry (mpi:
     * 2 GiB or more): the peer waits for this answer, so it gets the
     * error instead, as for one over max_payload (too_big). */
    if (rc == -EMSGSIZE && len && awaited(m->handler)) {
        weft__msg e = *m;
        e.status = -EMSGSIZE;
        e.hasres = 0;
        return send_msg_in(n, slot, owner, dst, &e, NULL, 0, NULL, NULL);
    }
    return rc;
}

/* Send m to dst with payload data[0..len); done(arg, status), if given,
 * runs once the transport is through with data (at once when the send
 * fails: it takes ownership in every case). The usual completions need
 * one pointer (bytes_sent, rec_sent): no allocation per message. A
 * message a peer waits for that fails for want of memory is held and
 * sent again (resend_tick): 0 then. */
static int send_msg(weft_node *n, int dst, const weft__msg *m,
                    const void *data, size_t len, weft_send_done done,
                    void *arg)
{
    return send_msg_in(n, NULL, NULL, dst, m, data, len, done, arg);
}

/* Take the front entry off the held queue (under lock) and give back
 * its room: the reserve's entry to the reserve, a record to its owner's
 * allocator. */
static void resend_pop(weft_node *n)
{
    resend *e = n->rs_head;
    if (!(n->rs_head = e->next))
        n->rs_tail = NULL;
    weft__sub_relaxed(&n->st.held, 1);
    if (e->owner) {
        weft__free(e->owner);
        return;
    }
    e->next = n->rs_free;
    n->rs_free = e;
}

/* Communication thread: send what resend_hold kept, oldest first, until
 * one fails for want of memory again. True while some are left. Only
 * this thread takes entries off (senders add at the back), so the front
 * entry stays put while it is tried without the lock. */
static bool resend_tick(weft_node *n)
{
    for (;;) {
        pthread_mutex_lock(&n->lock);
        resend e = n->rs_head ? *n->rs_head : (resend){0};
        bool any = n->rs_head != NULL;
        pthread_mutex_unlock(&n->lock);
        if (!any)
            return false;
        int rc = transport_send(n, e.dst, &e.m, e.data, e.len, e.done, e.arg);
        if (rc && transient(rc))
            return true; /* it stays in front */
        pthread_mutex_lock(&n->lock);
        resend_pop(n);
        pthread_mutex_unlock(&n->lock);
        if (rc && e.done) /* the peer is gone */
            e.done(e.arg, rc);
    }
}

/* At destroy, once the transport is closed: what is still held fails. */
static void resend_drop(weft_node *n)
{
    while (n->rs_head) {
        resend e = *n->rs_head;
        resend_pop(n);
        if (e.done)
            e.done(e.arg, -ESHUTDOWN);
    }
}

/* A message with no payload. */
static int send_plain(weft_node *n, int dst, const weft__msg *m)
{
    return send_msg(n, dst, m, NULL, 0, NULL, NULL);
}

/* Completion: free the payload the message owned. */
static void bytes_sent(void *arg, int status)
{
    (void)status;
    weft_bytes_free(arg);
}

/* Send m with b (owned) as its payload; slot and owner as send_msg_in. */
static int send_bytes_in(weft_node *n, resend *slot, void *owner, int dst,
                         const weft__msg *m, weft_bytes *b)
{
    return send_msg_in(n, slot, owner, dst, m, b ? b->data : NULL,
                       b ? b->len : 0, b ? bytes_sent : NULL, b);
}

static int send_bytes(weft_node *n, int dst, const weft__msg *m,
                      weft_bytes *b)
{
    return send_bytes_in(n, NULL, NULL, dst, m, b);
}

/* An object's bytes lent by the store's hooks: release(ctx, token) once
 * sent. */
typedef struct lent {
    void (*release)(void *ctx, void *token);
    void *ctx, *token;
} lent;

static void lent_sent(void *arg, int status)
{
    (void)status;
    lent *l = arg;
    l->release(l->ctx, l->token);
    weft__free(l);
}

/* ---- records ---- */

/* under lock */
static void tab_put(weft_node *n, rec *r)
{
    rec **b = &n->tab[r->id % TAB_BUCKETS];
    r->next = *b;
    *b = r;
}

/* under lock: remove and return the record id that src owns, or NULL. */
static rec *tab_take(weft_node *n, uint64_t id, int src, int kind)
{
    for (rec **p = &n->tab[id % TAB_BUCKETS]; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            rec *r = *p;
            if (r->dst != src || r->kind != kind)
                return NULL; /* not from the node it was sent to */
            *p = r->next;
            r->next = NULL;
            return r;
        }
    return NULL;
}

/* A send of r->arg keeps r alive until the transport is done with it:
 * the reply may arrive before the send's completion is seen. */
static void rec_unref(rec *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        weft_bytes_free(r->arg);
        weft__free(r);
    }
}

/* Completion of a message that reads r's argument. */
static void rec_sent(void *arg, int status)
{
    (void)status;
    rec_unref(arg);
}

/* Complete r's future and free r. result (owned) goes to the future. */
static void rec_finish(rec *r, int status, weft_bytes *result)
{
    weft__fut_complete_external(r->f, status, 0, result,
                                result ? weft__bytes_dtor : NULL);
    rec_unref(r);
}

/* Put r on the table as owed by dst, under a fresh id (in *id too): 0,
 * -EHOSTDOWN (dst is dead: on_failed has run and would never fail r) or
 * -ECANCELED (the node is being destroyed). */
static int tab_add(weft_node *n, rec *r, int dst, uint64_t *id)
{
    pthread_mutex_lock(&n->lock);
    int rc = n->closing ? -ECANCELED
             : n->peer[dst] == P_DEAD ? -EHOSTDOWN : 0;
    if (!rc) {
        *id = r->id = ++n->next_id;
        r->dst = dst;
        tab_put(n, r);
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* The send of the request for record id failed with rc: take it back
 * and fail it, unless on_failed got there first. */
static void unsend(weft_node *n, uint64_t id, int dst, int kind, int rc)
{
    pthread_mutex_lock(&n->lock);
    rec *mine = tab_take(n, id, dst, kind);
    pthread_mutex_unlock(&n->lock);
    if (mine)
        rec_finish(mine, rc, NULL);
}

/* under lock */
static void aq_push(weft_node *n, rec *r, bool front)
{
    r->dst = -1;
    r->next = NULL;
    if (front) {
        r->next = n->aq_head;
        n->aq_head = r;
        if (!n->aq_tail)
            n->aq_tail = r;
    } else {
        if (n->aq_tail)
            n->aq_tail->next = r;
        else
            n->aq_head = r;
        n->aq_tail = r;
    }
    n->aq_len++;
}

/* Under lock: task r, taken back from a node that did not run it (a send
 * that failed, a refusal, a death), goes back to the front of the queue
 * to run elsewhere when it is idempotent, unless this node is being
 * destroyed (nothing would run it then: node_close waits for the jobs
 * before it empties the queue). True when it went; the caller finishes
 * it otherwise. */
static bool requeue_locked(weft_node *n, rec *r)
{
    if (!(r->flags & WEFT_REMOTE_IDEMPOTENT) || n->closing)
        return false;
    aq_push(n, r, true);
    return true;
}

/* under lock */
static rec *aq_pop(weft_node *n)
{
    rec *r = n->aq_head;
    if (r) {
        n->aq_head = r->next;
        if (!n->aq_head)
            n->aq_tail = NULL;
        r->next = NULL;
        n->aq_len--;
    }
    return r;
}

/* ---- running tasks on this node ---- */

typedef struct incoming {
    struct incoming *next; /* on tl_defer */
    weft_node *n;
    int src;          /* -1: a local task (rec set) */
    uint64_t id;
    uint32_t fn;
    weft_bytes *arg;
    rec *r;
    resend held; /* the reply, if it must wait for memory */
} incoming;

static void job_end(weft_node *n, bool local);

/* A run of fn took ns: fold it into the function's average. */
static void note_run(weft_node *n, uint32_t fn, uint64_t ns)
{
    fnstat *s = &n->fstat[fn];
    uint32_t d = ns < FN_UNKNOWN ? (uint32_t)ns : FN_UNKNOWN - 1;
    uint32_t a = weft__load_relaxed(&s->avg_ns);
    a = a == FN_UNKNOWN ? d : a - a / 8 + d / 8;
    weft__store_relaxed(&s->avg_ns, a);
    uint8_t k = weft__load_relaxed(&s->longs);
    if (ns >= INLINE_NEVER_NS && k < NEVER_AFTER)
        weft__store_relaxed(&s->longs, (uint8_t)(k + 1));
}

/* Run remote function fn on arg; its status, *res its result. *t0 is
 * when it started if runs are timed (else 0): the caller notes the run
 * once its reply is out, so that the clock is not read between the
 * function's end and its reply (a run timed with its reply's send is
 * some 100 ns long; the times decide between microseconds). */
static int call_fn(weft_node *n, uint32_t fn, weft_bytes *arg,
                   weft_bytes **res, uint64_t *t0)
{
    *res = NULL;
    /* timed only where the times decide something (run_inline) */
    *t0 = n->timed ? weft__now_ns() : 0;
    WEFT__NET_EV(WEFT__EV_FN_START);
    int st = n->fns.fns[fn](arg ? arg->data : NULL, arg ? arg->len : 0, res);
    WEFT__NET_EV(WEFT__EV_FN_END);
    if (st && *res) { /* a failed task's result is not delivered */
        weft_bytes_free(*res);
        *res = NULL;
    }
    return st;
}

static void note_since(weft_node *n, uint32_t fn, uint64_t t0)
{
    if (t0)
        note_run(n, fn, weft__now_ns() - t0);
}

static int run_job(weft_job *job, void *p)
{
    (void)job;
    incoming *in = p;
    weft_node *n = in->n;
    weft_bytes *res;
    uint64_t t0;
    if (in->src < 0) {
        rec *r = in->r;
        int st = call_fn(n, r->fn, r->arg, &res, &t0);
        note_since(n, r->fn, t0);
        rec_finish(r, st, res);
        weft__free(in);
        job_end(n, true);
        return 0;
    }
    int st = call_fn(n, in->fn, in->arg, &res, &t0);
    note_since(n, in->fn, t0);
    weft_bytes_free(in->arg);
    if (res && too_big(n, res->len)) {
        weft_bytes_free(res);
        res = NULL;
        st = -EMSGSIZE;
    }
    weft__msg m = {.handler = WEFT__H_REPLY, .id = in->id, .status = st,
                   .hasres = res != NULL};
    if (send_bytes_in(n, &in->held, in, in->src, &m, res) != 1)
        weft__free(in);
    job_end(n, false);
    return 0;
}

/* Start in on the runtime; 0 or a negative errno (in is then freed by
 * the caller). n->jobs_live was counted by the caller. */
static int start_job(weft_node *n, incoming *in)
{
    weft_future *f;
    int rc = weft_submit(n->rt, run_job, in, NULL, &f);
    if (!rc)
        weft_future_release(f);
    return rc;
}

/* Run the queued any-node task r on this node. True when it started;
 * false when out of memory, and r is the caller's to fail. */
static bool start_local(weft_node *n, rec *r)
{
    incoming *in = weft__calloc(1, sizeof *in);
    if (!in)
        return false;
    *in = (incoming){.n = n, .src = -1, .r = r};
    if (start_job(n, in) == 0)
        return true;
    weft__free(in);
    return false;
}

/* Start r on this node; local_running and jobs_live count it already.
 * False when it could not start: r failed with -ENOMEM, its job ended. */
static bool run_here(weft_node *n, rec *r)
{
    if (start_local(n, r))
        return true;
    rec_finish(r, -ENOMEM, NULL);
    job_end(n, true);
    return false;
}

/* A job of this node ended. A local one's worker goes to the next queued
 * any-node task, if any, without n->jobs_live dropping to 0 in between
 * (weft_net_destroy waits for 0 and then frees n). */
static void job_end(weft_node *n, bool local)
{
    for (;;) {
        rec *r = NULL;
        pthread_mutex_lock(&n->lock);
        if (local) {
            n->local_running--;
            if (!n->closing && n->local_running < n->local_max &&
                (r = aq_pop(n)))
                n->local_running++;
        }
        if (!r)
            n->jobs_live--;
        /* Only weft_net_destroy (closing set) waits for jobs to end: a
         * broadcast per job woke a thread waiting in the barrier for
         * every remote task. */
        if (!n->jobs_live && n->closing)
            pthread_cond_broadcast(&n->cond);
        pthread_mutex_unlock(&n->lock);
        if (!r)
            return;
        if (start_local(n, r))
            return;
        rec_finish(r, -ENOMEM, NULL);
    }
}

/* Run queued any-node tasks here while this node has a free worker. The
 * caller keeps n alive (a user thread, or the communication thread). */
static void pump(weft_node *n)
{
    for (;;) {
        pthread_mutex_lock(&n->lock);
        rec *r = NULL;
        if (!n->closing && n->local_running < n->local_max)
            r = aq_pop(n);
        if (r) {
            n->local_running++;
            n->jobs_live++;
        }
        pthread_mutex_unlock(&n->lock);
        if (!r)
            return;
        if (!run_here(n, r))
            return;
    }
}

/* Under lock: r goes on the table as owed by dst, and is kept alive for
 * the send that dispatch_send makes. False, r untouched, when dst is dead
 * already: on_failed has run and would never take r back (as tab_add). */
static bool dispatch_locked(weft_node *n, rec *r, int dst)
{
    if (n->peer[dst] == P_DEAD)
        return false;
    r->dst = dst;
    tab_put(n, r);
    weft__add_relaxed(&r->refs, 1);
    return true;
}

/* Send task r to dst (a peer; after dispatch_locked). On failure r goes
 * back to the queue if idempotent, else fails. */
static void dispatch_send(weft_node *n, rec *r, int dst, bool stolen)
{
    /* r is read before the send only: a failed send drops the send's
     * reference (rec_sent), and a peer_failed on another thread may have
     * taken r off the table and freed it by the time send returns; the
     * id finds it again if it is still ours. */
    uint64_t id = r->id;
    bool idem = r->flags & WEFT_REMOTE_IDEMPOTENT;
    weft__msg m = {.handler = WEFT__H_TASK, .fn = r->fn, .id = id,
                   .flags = r->flags | (stolen ? TASK_STOLEN : 0)};
    int rc = send_msg(n, dst, &m, r->arg ? r->arg->data : NULL,
                      r->arg ? r->arg->len : 0, rec_sent, r);
    if (!rc)
        return;
    /* Not sent: take it back, unless a peer_failed got there first. An
     * idempotent one not queued again is cancelled, as the queue is at
     * destroy. */
    pthread_mutex_lock(&n->lock);
    rec *mine = tab_take(n, id, dst, R_TASK);
    bool requeue = mine && requeue_locked(n, mine);
    if (mine && !requeue && idem)
        rc = -ECANCELED;
    pthread_mutex_unlock(&n->lock);
    if (mine && !requeue)
        rec_finish(mine, rc, NULL);
    if (requeue)
        pump(n);
}

/* Send task r (taken off the any-node queue) to dst (a peer). When dst
 * is dead already r goes back to the front of the queue: it was never
 * sent. */
static void dispatch(weft_node *n, rec *r, int dst, bool stolen)
{
    pthread_mutex_lock(&n->lock);
    bool on = dispatch_locked(n, r, dst), closing = n->closing;
    if (!on && !closing)
        aq_push(n, r, true);
    pthread_mutex_unlock(&n->lock);
    if (on)
        dispatch_send(n, r, dst, stolen);
    else if (closing) /* as in dispatch_send: nothing would run it */
        rec_finish(r, -ECANCELED, NULL);
    else
        pump(n);
}

/* ---- objects ---- */

static unsigned obj_bucket(const uint8_t *id)
{
    unsigned h = 0;
    for (int i = 0; i < WEFT_OBJECT_ID_LEN; i++)
        h = h * 31 + id[i];
    return h % OBJ_BUCKETS;
}

/* under lock */
static obj *obj_find(weft_node *n, const uint8_t *id)
{
    for (obj *o = n->objs[obj_bucket(id)]; o; o = o->next)
        if (!memcmp(o->id, id, WEFT_OBJECT_ID_LEN))
            return o;
    return NULL;
}

/* under lock: record that rank holds id (data: the default copy). */
static int obj_note(weft_node *n, const uint8_t *id, int rank,
                    weft_bytes *data)
{
    obj *o = obj_find(n, id);
    if (o && o->data)
        return -EEXIST;
    if (!o) {
        o = weft__calloc(1, sizeof *o);
        if (!o)
            return -ENOMEM;
        memcpy(o->id, id, WEFT_OBJECT_ID_LEN);
        unsigned b = obj_bucket(id);
        o->next = n->objs[b];
        n->objs[b] = o;
    }
    o->rank = rank;
    o->data = data;
    return 0;
}

/* Tell every live verified peer that id is here. */
static void announce(weft_node *n, const uint8_t *id)
{
    weft__msg m = {.handler = WEFT__H_OBJ_ANN};
    memcpy(m.obj, id, WEFT_OBJECT_ID_LEN);
    for (int p = 0; p < n->size; p++) {
        pthread_mutex_lock(&n->lock);
        bool ok = p != n->rank && n->peer[p] == P_OK;
        pthread_mutex_unlock(&n->lock);
        if (ok)
            send_plain(n, p, &m);
    }
}

/* Completion of a payload the node keeps until it is freed (a default
 * table object): nothing to give back. */
static void node_owned(void *arg, int status)
{
    (void)arg;
    (void)status;
}

/* Serve id to src: from the hooks, or the default table. On the
 * communication thread. */
static void serve_object(weft_node *n, int src, const weft__msg *get)
{
    weft__msg m = {.handler = WEFT__H_OBJ_DATA, .id = get->id};
    const void *data = NULL;
    size_t len = 0;
    void *token = NULL;
    pthread_mutex_lock(&n->lock);
    weft_object_hooks h = n->hooks;
    bool hooks = n->has_hooks;
    obj *o = hooks ? NULL : obj_find(n, get->obj);
    if (o && o->data) { /* default copies live as long as the node */
        data = o->data->data;
        len = o->data->len;
    }
    pthread_mutex_unlock(&n->lock);
    if (hooks)
        m.status = h.lookup(h.ctx, get->obj, &data, &len, &token);
    else
        m.status = data ? 0 : -ENOENT;
    if (!m.status && too_big(n, len)) {
        if (hooks)
            h.release(h.ctx, token);
        m.status = -EMSGSIZE;
    }
    if (m.status) {
        send_plain(n, src, &m);
        return;
    }
    if (!hooks) { /* (a done callback: the bytes may be held, resend) */
        send_msg(n, src, &m, data, len, node_owned, NULL);
        return;
    }
    lent *l = weft__malloc(sizeof *l);
    if (!l) {
        h.release(h.ctx, token);
        m.status = -ENOMEM;
        send_plain(n, src, &m);
        return;
    }
    *l = (lent){h.release, h.ctx, token};
    send_msg(n, src, &m, data, len, lent_sent, l);
}

/* ---- incoming messages ---- */

/* ---- running short tasks where they arrive ---- */

/* This thread's tasks to run once its transport call returns, and how
 * deep inside inline runs it is. */
static _Thread_local incoming *tl_defer_head, *tl_defer_tail;
static _Thread_local int tl_inline_depth;
/* The node whose communication thread this is. */
static _Thread_local weft_node *tl_comm;

/* Should a task of fn with these flags run on the receiving thread? Only
 * n's communication thread does: a user's thread that polls while it
 * waits may hold locks a task takes (an outside thread that waits never
 * runs other work, future.h says). */
static bool run_inline(weft_node *n, uint32_t fn, uint32_t flags)
{
    if (tl_inline_depth || tl_comm != n)
        return false;
    if (flags & WEFT_REMOTE_CHEAP)
        return true;
    if (!n->inline_ns)
        return false;
    const fnstat *s = &n->fstat[fn];
    uint32_t a = weft__load_relaxed(&s->avg_ns);
    return a < n->inline_ns && weft__load_relaxed(&s->longs) < NEVER_AFTER;
}

/* The oldest task this thread deferred, off its list, or NULL. */
static incoming *pop_deferred(void)
{
    incoming *in = tl_defer_head;
    if (in && !(tl_defer_head = in->next))
        tl_defer_tail = NULL;
    return in;
}

/* Run in on this thread, as an inline run. */
static void run_now(incoming *in)
{
    tl_inline_depth++;
    run_job(NULL, in);
    tl_inline_depth--;
}

/* Hand the tasks this thread deferred to workers (it is about to wait
 * inside an inline run). One that cannot start runs here after all. */
static void spill_deferred(void)
{
    incoming *in;
    while ((in = pop_deferred()))
        if (start_job(in->n, in))
            run_now(in);
}

static void defer(incoming *in)
{
    in->next = NULL;
    if (tl_defer_tail)
        tl_defer_tail->next = in;
    else
        tl_defer_head = in;
    tl_defer_tail = in;
}

/* Run the tasks this thread deferred, unless it is inside an inline run
 * itself (a task that waits and polls): then they go to workers. */
static void run_deferred(void)
{
    if (tl_inline_depth) {
        spill_deferred();
        return;
    }
    incoming *in;
    while ((in = pop_deferred()))
        run_now(in);
}

static void drop(weft_node *n, int src, const char *why)
{
    count(&n->st.dropped, 1);
    weft__log("net: dropped a message from rank %d: %s", src, why);
}

/* Task id from src cannot run here: it fails with st there. */
static void reply_failed(weft_node *n, int src, uint64_t id, int st)
{
    weft__msg m = {.handler = WEFT__H_REPLY, .id = id, .status = st};
    send_plain(n, src, &m);
}

/* Task id from src is refused, not run: this node is being destroyed.
 * Dropped, its sender would wait for this node to go, and the transport
 * closes only once this node's jobs have ended: with two nodes destroyed
 * at once, a job of each waiting for a task it sent the other, each
 * destroy waited for the other's for ever. The sender takes the refusal
 * as the task lost with a dead peer (on_refused). */
static void reply_refused(weft_node *n, int src, uint64_t id)
{
    weft__msg m = {.handler = WEFT__H_REPLY, .id = id,
                   .status = -ECANCELED, .hasres = WEFT__REPLY_REFUSED};
    send_plain(n, src, &m);
}

static void on_task(weft_node *n, int src, const weft__msg *m,
                    weft_am *am)
{
    if (m->fn >= n->fns.n)
        return drop(n, src, "no such remote function");
    incoming *in = weft__calloc(1, sizeof *in);
    pthread_mutex_lock(&n->lock);
    bool closing = n->closing, ok = in && !closing;
    if (ok)
        n->jobs_live++;
    if (m->flags & TASK_STOLEN) {
        n->steal_pending = false;
        n->steal_backoff_ns = 0;
    }
    pthread_mutex_unlock(&n->lock);
    if (!ok) {
        weft__free(in);
        /* the owner must hear it, or it waits for ever */
        if (closing)
            reply_refused(n, src, m->id);
        else
            reply_failed(n, src, m->id, -ENOMEM);
        return;
    }
    *in = (incoming){.n = n, .src = src, .id = m->id, .fn = m->fn,
                     .arg = am->payload};
    am->payload = NULL;
    count(&n->st.remote, 1);
    if (m->flags & TASK_STOLEN)
        count(&n->st.stolen, 1);
    if (run_inline(n, m->fn, m->flags)) { /* here: no hand-off */
        defer(in);
        return;
    }
    int rc = start_job(n, in);
    if (rc) {
        reply_failed(n, src, in->id, rc);
        weft_bytes_free(in->arg);
        weft__free(in);
        job_end(n, false);
    }
}

/* The communication thread, after its transport is closed: the tasks
 * deferred by its last calls cannot send replies any more. */
static void drop_deferred(void)
{
    incoming *in;
    while ((in = pop_deferred())) {
        weft_node *n = in->n;
        weft_bytes_free(in->arg);
        weft__free(in);
        job_end(n, false);
    }
}

/* The kind of record a reply handler answers. */
static int reply_kind(unsigned handler)
{
    return handler == WEFT__H_REPLY ? R_TASK
           : handler == WEFT__H_OBJ_DATA ? R_FETCH : R_ASK;
}

/* Task id, sent to src, was refused there, not run (src is being
 * destroyed): as when src dies with it (on_failed), an idempotent task
 * runs again elsewhere and the others fail with -EHOSTDOWN; but while
 * this node is being destroyed too, an idempotent one is cancelled, as
 * in dispatch_send (nothing would run it). It goes back to this node's
 * queue, which src, closing, steals nothing from. */
static void on_refused(weft_node *n, int src, uint64_t id)
{
    pthread_mutex_lock(&n->lock);
    rec *r = tab_take(n, id, src, R_TASK);
    bool requeue = r && requeue_locked(n, r);
    pthread_mutex_unlock(&n->lock);
    if (!r)
        return; /* cancelled, or failed with src meanwhile */
    if (requeue) {
        count(&n->st.rerun, 1);
        pump(n);
        return;
    }
    count(&n->st.failed, 1);
    rec_finish(r, (r->flags & WEFT_REMOTE_IDEMPOTENT) ? -ECANCELED
                                                   : -EHOSTDOWN,
               NULL);
}

static void on_reply(weft_node *n, int src, const weft__msg *m,
                     weft_am *am)
{
    if (m->handler == WEFT__H_REPLY && m->hasres == WEFT__REPLY_REFUSED)
        return on_refused(n, src, m->id);
    pthread_mutex_lock(&n->lock);
    rec *r = tab_take(n, m->id, src, reply_kind(m->handler));
    weft_object_hooks h = n->hooks;
    bool hooks = n->has_hooks;
    pthread_mutex_unlock(&n->lock);
    if (!r)
        return; /* late: re-run elsewhere after a timeout, or cancelled */
    weft_bytes *res = NULL;
    int status = m->status;
    if (!status && (m->handler == WEFT__H_OBJ_DATA || m->hasres)) {
        res = am->payload ? am->payload : weft_bytes_new(0);
        am->payload = NULL;
        status = res ? 0 : -ENOMEM;
    }
    if (res && m->handler == WEFT__H_OBJ_DATA && hooks && h.sink) {
        status = h.sink(h.ctx, r->obj, res->data, res->len);
        weft_bytes_free(res); /* kept by the sink, or refused */
        res = NULL;
    }
    rec_finish(r, status, res);
    WEFT__NET_EV(WEFT__EV_REPLY);
}

static void on_hello(weft_node *n, int src, const weft__msg *m,
                     weft_am *am);

#define STEAL_MAX 32

/* The node's side of the steal protocol (victim): half of the queued
 * any-node tasks (at least one, at most STEAL_MAX) go to the thief, so
 * that one round trip pays for several small tasks. */
static void on_steal(weft_node *n, int src)
{
    rec *got[STEAL_MAX];
    int k = 0;
    pthread_mutex_lock(&n->lock);
    int want = (n->aq_len + 1) / 2;
    while (!n->closing && k < want && k < STEAL_MAX)
        got[k++] = aq_pop(n);
    pthread_mutex_unlock(&n->lock);
    for (int i = 0; i < k; i++)
        dispatch(n, got[i], src, true);
    if (k)
        return;
    weft__msg m = {.handler = WEFT__H_NOWORK};
    send_plain(n, src, &m);
}

static void on_barrier(weft_node *n, int src, const weft__msg *m)
{
    pthread_mutex_lock(&n->lock);
    if (m->epoch > n->arrived[src])
        n->arrived[src] = m->epoch;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

/* ---- actors across nodes ---- */

static unsigned name_bucket(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h % PUB_BUCKETS;
}

/* under lock: where name[0..len) is, or would be linked. */
static pub **pub_slot(weft_node *n, const char *name, size_t len)
{
    pub **p = &n->pubs[name_bucket(name, len)];
    while (*p && ((*p)->len != len || memcmp((*p)->name, name, len)))
        p = &(*p)->next;
    return p;
}

/* The actor published as name[0..len), with a reference the caller gives
 * back, or NULL. */
static weft_actor *pub_get(weft_node *n, const char *name, size_t len)
{
    pthread_mutex_lock(&n->lock);
    pub *p = *pub_slot(n, name, len);
    weft_actor *a = p ? p->a : NULL;
    if (a)
        weft_actor_retain(a);
    pthread_mutex_unlock(&n->lock);
    return a;
}

/* Count a job the node must wait for at destroy: 0, or -ECANCELED when
 * it is being destroyed (no new job then). */
static int job_begin(weft_node *n)
{
    pthread_mutex_lock(&n->lock);
    int rc = n->closing ? -ECANCELED : 0;
    if (!rc)
        n->jobs_live++;
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* An ask handed to a published actor: who gets the reply. */
typedef struct askjob {
    weft_node *n;
    int src;         /* the asking rank; -1: this node, into r */
    uint64_t id;     /* the asker's record */
    rec *r;
    weft_future *fa; /* the actor's ask; its reply is sent from there */
    resend held;     /* the reply, if it must wait for memory */
} askjob;

/* Completion of a reply whose payload the actor's future holds. */
static void fut_sent(void *arg, int status)
{
    (void)status;
    weft_future_release(arg);
}

/* The status and the reply bytes (borrowed from aj->fa) of a done ask. A
 * reply made otherwise than with weft_net_reply is not bytes: reading it
 * as bytes could run past its end, so the ask fails instead. */
static int ask_result(const askjob *aj, weft_job *job, weft_bytes **b)
{
    void *val = NULL;
    int st = weft_job_dep(job, 0, &val);
    *b = NULL;
    if (st || !val)
        return st;
    if (weft__fut_result_dtor(aj->fa) != weft__bytes_dtor) {
        weft__log("net: a published actor replied to an ask from a node "
                  "without weft_net_reply: the ask fails (-EPROTO)");
        return -EPROTO;
    }
    *b = val;
    return 0;
}

/* Runs once the actor's ask is done: its reply goes to the asker. */
static int ask_done(weft_job *job, void *p)
{
    askjob *aj = p;
    weft_node *n = aj->n;
    weft_bytes *b;
    int st = ask_result(aj, job, &b);
    bool held = false; /* aj holds the reply, and is the queue's now */
    if (aj->r) { /* this node asked: a copy, the actor's future goes */
        weft_bytes *copy = b ? weft_bytes_copy(b->data, b->len) : NULL;
        rec_finish(aj->r, b && !copy ? -ENOMEM : st, copy);
        weft_future_release(aj->fa);
    } else { /* sent from the actor's reply, which lives until sent */
        if (b && too_big(n, b->len)) {
            b = NULL;
            st = -EMSGSIZE;
        }
        weft__msg m = {.handler = WEFT__H_ACT_REPLY, .id = aj->id,
                       .status = st, .hasres = b != NULL};
        held = send_msg_in(n, &aj->held, aj, aj->src, &m,
                           b ? b->data : NULL, b ? b->len : 0, fut_sent,
                           aj->fa) == 1;
    }
    if (!held)
        weft__free(aj);
    job_end(n, false);
    return 0;
}

/* Fail the ask aj describes with st, without the actor. */
static void ask_fail(weft_node *n, const askjob *aj, int st)
{
    if (aj->r) {
        rec_finish(aj->r, st, NULL);
        return;
    }
    weft__msg m = {.handler = WEFT__H_ACT_REPLY, .id = aj->id, .status = st};
    send_plain(n, aj->src, &m);
}

/* Queue ask_done after the actor's ask aj->fa (whatever its status).
 * On failure aj->fa is released. */
static int after_ask(weft_node *n, askjob *aj)
{
    weft_submit_opts o = weft_submit_opts_default();
    o.flags = WEFT_RUN_ANYWAY;
    weft_future *g;
    int rc = weft_submit_after(n->rt, ask_done, aj, &aj->fa, 1, &o, &g);
    if (rc) {
        if (rc == -EINVAL)
            weft__log("net: a published actor is not on the node's "
                      "runtime: its asks fail (-EINVAL)");
        weft_future_release(aj->fa);
        return rc;
    }
    weft_future_release(g);
    return 0;
}

/* Hand an ask to a (NULL: no such name) and see that its reply reaches
 * the asker that proto names. Returns -EAGAIN, having done nothing, when
 * a's bounded mailbox is full and flags has WEFT_SEND_NOWAIT; otherwise
 * 0: the ask is a's, or it failed and the asker is told. The caller
 * keeps its reference to a. */
static int deliver_ask(weft_node *n, const askjob *proto, weft_actor *a,
                       const void *data, size_t len, unsigned flags)
{
    int rc = a ? job_begin(n) : -ENOENT;
    if (rc) {
        ask_fail(n, proto, rc);
        return 0;
    }
    askjob *aj = weft__malloc(sizeof *aj);
    weft_future *fa = NULL;
    rc = aj ? weft_ask(a, data, len, flags, &fa) : -ENOMEM;
    bool full = rc == -EAGAIN;
    if (!rc) {
        *aj = *proto;
        aj->fa = fa;
        rc = after_ask(n, aj); /* from here on aj may be gone */
    }
    if (rc) {
        weft__free(aj);
        if (!full)
            ask_fail(n, proto, rc);
        job_end(n, false);
    }
    return full ? -EAGAIN : 0;
}

/* A peer's send that cannot be delivered: counted, and logged when the
 * count reaches a power of two (a stopped actor with thousands waiting
 * would otherwise write thousands of lines). */
static void send_lost(weft_node *n, int src, const char *name, size_t nl,
                      int rc)
{
    uint64_t k = weft__add_relaxed(&n->st.actor_dropped, 1) + 1;
    if (k & (k - 1))
        return;
    weft__log("net: a message from rank %d to actor '%.*s' was dropped: %s "
              "(%llu dropped by this node)", src, (int)nl, name,
              rc == WEFT_ACTOR_DEAD ? "the actor is stopped" : strerror(-rc),
              (unsigned long long)k);
}

/* Who gets the reply to the ask m. */
static askjob ask_proto(weft_node *n, const actmsg *m)
{
    return (askjob){.n = n, .src = m->src, .id = m->id};
}

/* Hand m to a without waiting: -EAGAIN while a's mailbox is full;
 * otherwise 0: m delivered, or dropped (counted) or its ask failed when a
 * is dead. */
static int hand_over(weft_node *n, weft_actor *a, const actmsg *m)
{
    if (m->ask) {
        askjob proto = ask_proto(n, m);
        return deliver_ask(n, &proto, a, m->data, m->len, WEFT_SEND_NOWAIT);
    }
    int rc = weft_send(a, m->data, m->len, WEFT_SEND_NOWAIT);
    if (rc == -EAGAIN)
        return rc;
    if (rc)
        send_lost(n, m->src, m->name, m->namelen, rc);
    return 0;
}

/* m cannot be delivered (rc): a send is counted, an ask fails. */
static void act_fail(weft_node *n, const actmsg *m, int rc)
{
    if (m->ask) {
        askjob proto = ask_proto(n, m);
        ask_fail(n, &proto, rc);
    } else {
        send_lost(n, m->src, m->name, m->namelen, rc);
    }
}

/* Under hold_lock: the queue of a's waiting messages, or NULL. */
static holdq *hold_find(weft_node *n, const weft_actor *a)
{
    holdq *q = n->holds;
    while (q && q->a != a)
        q = q->next;
    return q;
}

/* Under hold_lock. release: pairs with hold_or_deliver's acquire, so
 * that what a tick handed over before the level fell to 0 is in the
 * mailbox before a later message that saw 0 goes in without the lock. */
static void hold_level(weft_node *n, int64_t by)
{
    uint64_t v = weft__load_relaxed(&n->st.actor_waiting) + (uint64_t)by;
    weft__store_release(&n->st.actor_waiting, v);
}

/* Under hold_lock: a copy of m waits behind a's other waiting messages
 * (in q, or a new queue when q is NULL). 0, -EAGAIN (HOLD_MAX_BYTES
 * wait already), -ENOMEM. */
static int hold_push(weft_node *n, holdq *q, weft_actor *a, const actmsg *m)
{
    size_t size = sizeof(held) + m->namelen + m->len;
    if (n->hold_bytes + size > HOLD_MAX_BYTES)
        return -EAGAIN;
    held *h = weft__malloc(size);
    if (!h)
        return -ENOMEM;
    if (!q) {
        q = weft__malloc(sizeof *q);
        if (!q || weft_actor_retain(a)) {
            weft__free(q);
            weft__free(h);
            return -ENOMEM;
        }
        *q = (holdq){.next = n->holds, .a = a};
        n->holds = q;
    }
    h->next = NULL;
    h->size = size;
    h->m = *m;
    h->m.name = memcpy(h->bytes, m->name, m->namelen);
    h->m.data = h->bytes + m->namelen;
    if (m->len)
        memcpy(h->bytes + m->namelen, m->data, m->len);
    if (q->tail)
        q->tail->next = h;
    else
        q->head = h;
    q->tail = h;
    n->hold_bytes += size;
    hold_level(n, 1);
    return 0;
}

/* m for the actor a (a reference the caller keeps): in at once, unless
 * messages for a wait already or a's mailbox is full: then it waits too.
 * With nothing waiting anywhere it goes in without the lock: the order
 * that matters is a sender's, and the transport hands one sender's
 * messages over one after another, so a message that had to wait is
 * counted (actor_waiting, under the lock) before the next one from its
 * sender looks. */
static void hold_or_deliver(weft_node *n, weft_actor *a, const actmsg *m)
{
    if (!weft__load_acquire(&n->st.actor_waiting) &&
        hand_over(n, a, m) != -EAGAIN)
        return;
    pthread_mutex_lock(&n->hold_lock);
    holdq *q = hold_find(n, a);
    int rc = q ? -EAGAIN : hand_over(n, a, m);
    if (rc == -EAGAIN && (rc = hold_push(n, q, a, m)) != 0)
        act_fail(n, m, rc);
    pthread_mutex_unlock(&n->hold_lock);
}

/* Hand waiting messages to their actors while they have room; queues
 * that empty are freed. True when some still wait. */
static bool hold_tick(weft_node *n)
{
    holdq *done = NULL;
    pthread_mutex_lock(&n->hold_lock);
    for (holdq **pq = &n->holds; *pq;) {
        holdq *q = *pq;
        held *h;
        while ((h = q->head) && hand_over(n, q->a, &h->m) != -EAGAIN) {
            q->head = h->next;
            n->hold_bytes -= h->size;
            hold_level(n, -1);
            weft__free(h);
        }
        if (q->head) {
            pq = &q->next;
            continue;
        }
        *pq = q->next;
        q->next = done;
        done = q;
    }
    bool left = n->holds != NULL;
    pthread_mutex_unlock(&n->hold_lock);
    while (done) { /* a last reference's release may end the actor */
        holdq *q = done;
        done = q->next;
        weft_actor_release(q->a);
        weft__free(q);
    }
    return left;
}

/* At destroy: the waiting messages go no further. Sends are dropped
 * (counted); asks fail (-ECANCELED) when tell (the transport still up). */
static void hold_cancel(weft_node *n, bool tell)
{
    pthread_mutex_lock(&n->hold_lock);
    holdq *q = n->holds;
    n->holds = NULL;
    n->hold_bytes = 0;
    weft__store_release(&n->st.actor_waiting, 0);
    pthread_mutex_unlock(&n->hold_lock);
    while (q) {
        holdq *next = q->next;
        for (held *h = q->head, *hn; h; h = hn) {
            hn = h->next;
            if (tell || !h->m.ask)
                act_fail(n, &h->m, -ECANCELED);
            weft__free(h);
        }
        weft_actor_release(q->a);
        weft__free(q);
        q = next;
    }
}

/* A send or an ask from src to a published actor. Handed over with
 * WEFT_SEND_NOWAIT: this thread must never wait for an actor, whose
 * progress may need this thread's; a full mailbox makes the message wait
 * in the node instead (hold_or_deliver). */
static void on_act_msg(weft_node *n, int src, const weft__msg *m,
                       weft_am *am)
{
    const weft_bytes *b = am->payload;
    if (weft__act_check(b ? b->data : NULL, b ? b->len : 0, m->namelen))
        return drop(n, src, "malformed actor message");
    actmsg act = {.src = src, .ask = m->flags & WEFT__ACT_ASK, .id = m->id,
                  .name = (const char *)b->data, .namelen = m->namelen,
                  .data = b->data + m->namelen, .len = b->len - m->namelen};
    count(&n->st.actor_msgs, 1);
    weft_actor *a = pub_get(n, act.name, act.namelen);
    if (!a)
        return act_fail(n, &act, -ENOENT);
    hold_or_deliver(n, a, &act);
    weft_actor_release(a);
}

static void on_recv(void *ctx, weft_am *am)
{
    weft_node *n = ctx;
    if (!n->events_on)
        return;
    weft__msg m;
    int src = am->src;
    count(&n->st.recv, 1);
    count(&n->st.brecv, am->payload ? am->payload->len : 0);
    if (src < 0 || src >= n->size || src == n->rank)
        return drop(n, src, "bad source rank");
    if (weft__msg_decode(am->handler, am->hdr, am->hdrlen, &m))
        return drop(n, src, "malformed header");
    /* unlocked: a hello and what follows it come in order, through
     * plock; a death seen late is a message that came just before it */
    int ps = atomic_load_explicit(&n->peer[src], memory_order_acquire);
    if (m.handler == WEFT__H_HELLO)
        return on_hello(n, src, &m, am);
    if (ps != P_OK)
        return drop(n, src, "message before a good hello");
    switch (m.handler) {
    case WEFT__H_TASK: return on_task(n, src, &m, am);
    case WEFT__H_REPLY:
    case WEFT__H_OBJ_DATA:
    case WEFT__H_ACT_REPLY: return on_reply(n, src, &m, am);
    case WEFT__H_ACT_MSG: return on_act_msg(n, src, &m, am);
    case WEFT__H_STEAL: return on_steal(n, src);
    case WEFT__H_NOWORK:
        pthread_mutex_lock(&n->lock);
        n->steal_pending = false;
        n->steal_backoff_ns = n->steal_backoff_ns
            ? (n->steal_backoff_ns * 2 > 10000000 ? 10000000
                                                 : n->steal_backoff_ns * 2)
            : (uint64_t)n->steal_us * 1000;
        n->steal_at = weft__now_ns() + n->steal_backoff_ns;
        pthread_mutex_unlock(&n->lock);
        return;
    case WEFT__H_OBJ_ANN:
        pthread_mutex_lock(&n->lock);
        obj_note(n, m.obj, src, NULL);
        pthread_mutex_unlock(&n->lock);
        return;
    case WEFT__H_OBJ_GET: return serve_object(n, src, &m);
    case WEFT__H_BARRIER: return on_barrier(n, src, &m);
    default: return drop(n, src, "unexpected handler");
    }
}

/* ---- meeting peers ---- */

static void send_hello(weft_node *n, int dst)
{
    weft__msg m = {.handler = WEFT__H_HELLO, .size = (uint32_t)n->size,
                   .nfns = n->fns.n, .hash = n->fns.hash};
    send_msg(n, dst, &m, n->fns.names, n->fns.names_len, NULL, NULL);
}

/* Log the first function whose name differs between here and there. */
static void log_mismatch(weft_node *n, int src, const weft__msg *m,
                         const weft_bytes *b)
{
    const char *a = n->fns.names, *z = b ? (const char *)b->data : "";
    uint32_t i = 0;
    for (; i < n->fns.n && i < m->nfns; i++) {
        if (strcmp(a, z))
            break;
        a += strlen(a) + 1;
        z += strlen(z) + 1;
    }
    weft__log("net: rank %d has another remote-function table (%u "
              "functions there, %u here); first difference at #%u: here "
              "'%s', there '%s'", src, m->nfns, n->fns.n, i,
              i < n->fns.n ? a : "(none)", i < m->nfns ? z : "(none)");
}

static void on_hello(weft_node *n, int src, const weft__msg *m,
                     weft_am *am)
{
    const weft_bytes *b = am->payload;
    /* no functions, no names: an empty payload may come as NULL */
    size_t len = b ? b->len : 0;
    if (weft__names_check(b ? b->data : NULL, len, m->nfns))
        return drop(n, src, "malformed hello");
    bool same = m->size == (uint32_t)n->size && m->nfns == n->fns.n &&
                m->hash == n->fns.hash && len == n->fns.names_len &&
                (!len || !memcmp(b->data, n->fns.names, len));
    if (!same && m->size != (uint32_t)n->size)
        weft__log("net: rank %d thinks the job has %u ranks, not %d", src,
                  m->size, n->size);
    else if (!same)
        log_mismatch(n, src, m, b);
    pthread_mutex_lock(&n->lock);
    if (n->peer[src] == P_NEW || n->peer[src] == P_JOINED) {
        n->peer[src] = same ? P_OK : P_BAD;
        n->settled++;
        if (same) /* the runtime's statistics count it (weft-top) */
            weft__add_relaxed(&n->rt->peers, 1);
    }
    n->mismatch |= !same;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void on_joined(void *ctx, int rank)
{
    weft_node *n = ctx;
    if (!n->events_on || rank < 0 || rank >= n->size || rank == n->rank)
        return;
    pthread_mutex_lock(&n->lock);
    bool dead = n->peer[rank] == P_DEAD;
    if (n->peer[rank] == P_NEW)
        n->peer[rank] = P_JOINED;
    pthread_mutex_unlock(&n->lock);
    if (!dead)
        send_hello(n, rank);
}

/* under lock: take every record at rank off the table, into *out. */
static rec *take_at(weft_node *n, int rank)
{
    rec *out = NULL;
    for (int b = 0; b < TAB_BUCKETS; b++)
        for (rec **p = &n->tab[b]; *p;) {
            rec *r = *p;
            if (r->dst != rank) {
                p = &r->next;
                continue;
            }
            *p = r->next;
            r->next = out;
            out = r;
        }
    return out;
}

static void on_failed(void *ctx, int rank, int reason)
{
    weft_node *n = ctx;
    if (!n->events_on || rank < 0 || rank >= n->size || rank == n->rank)
        return;
    pthread_mutex_lock(&n->lock);
    if (n->peer[rank] == P_DEAD) {
        pthread_mutex_unlock(&n->lock);
        return;
    }
    if (n->peer[rank] != P_OK && n->peer[rank] != P_BAD)
        n->settled++;
    if (n->peer[rank] != P_OK && !n->mismatch)
        n->died_early = true;
    if (n->peer[rank] == P_OK)
        weft__add_relaxed(&n->rt->peers, -1);
    n->peer[rank] = P_DEAD;
    n->steal_pending = false;
    for (int b = 0; b < OBJ_BUCKETS; b++)
        for (obj *o = n->objs[b]; o; o = o->next)
            if (o->rank == rank)
                o->rank = -1;
    rec *lost = take_at(n, rank), *fail = NULL;
    uint64_t rerun = 0, failed = 0;
    while (lost) {
        rec *r = lost;
        lost = r->next;
        if (r->kind == R_TASK && requeue_locked(n, r)) {
            rerun++;
        } else {
            r->next = fail;
            fail = r;
            failed++;
        }
    }
    bool closing = n->closing;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    count(&n->st.peers_failed, 1);
    count(&n->st.rerun, rerun);
    count(&n->st.failed, failed);
    if (!closing || rerun || failed)
        weft__log("net: rank %d is gone (%s): %lu idempotent tasks to run "
                  "again, %lu failed", rank, strerror(-reason),
                  (unsigned long)rerun, (unsigned long)failed);
    while (fail) {
        rec *r = fail;
        fail = r->next;
        rec_finish(r, -EHOSTDOWN, NULL);
    }
    pump(n);
}

static void on_dropped(void *ctx)
{
    weft_node *n = ctx;
    count(&n->st.dropped, 1);
}

static int alloc_peers(weft_node *n, int size);

/* ---- the communication thread ---- */

/* An idle node (no queued any-node task, a free worker) asks one random
 * live peer for work; one request at a time, backing off on "no work". */
static uint64_t steal_tick(weft_node *n)
{
    uint64_t now = weft__now_ns();
    n->rand = n->rand * 6364136223846793005ull + 1442695040888963407ull;
    int from = (int)((n->rand >> 33) % (uint64_t)n->size);
    pthread_mutex_lock(&n->lock);
    bool idle = !n->closing && !n->aq_len && n->jobs_live < n->local_max;
    /* the first live peer from a random rank on: every rank of a large
     * job gets asked (a list of the first 64 never asked the others) */
    int victim = -1;
    for (int k = 0; k < n->size && victim < 0; k++) {
        int p = (from + k) % n->size;
        if (p != n->rank && n->peer[p] == P_OK)
            victim = p;
    }
    uint64_t wait = 20000000;
    bool ask = false;
    if (idle && victim >= 0) {
        if (n->steal_pending && now - n->steal_at > 100000000)
            n->steal_pending = false; /* lost (peer died, or reordering) */
        if (n->steal_pending)
            wait = 20000000;
        else if (now < n->steal_at)
            wait = n->steal_at - now;
        else {
            ask = true;
            n->steal_pending = true;
            n->steal_at = now;
            wait = (uint64_t)n->steal_us * 1000;
        }
    }
    pthread_mutex_unlock(&n->lock);
    if (!ask)
        return wait;
    weft__msg m = {.handler = WEFT__H_STEAL};
    if (send_plain(n, victim, &m)) {
        pthread_mutex_lock(&n->lock);
        n->steal_pending = false;
        pthread_mutex_unlock(&n->lock);
    }
    return wait;
}

static bool comm_poll(weft__poller *p);
/* The communication threads' poller: comm_poll finds the node in
 * tl_comm, which is set for as long as the poller is installed. */
static weft__poller comm_poller = {comm_poll, NULL};

static void *comm_main(void *arg)
{
    weft_node *n = arg;
    weft_transport_events ev = {n, on_recv, on_joined, on_failed, on_dropped};
    weft_transport *t = NULL;
    int rc = n->ops->open(&t, &n->params, &ev);
    if (!rc) { /* events come only from progress: set up for them first */
        n->rank = n->ops->rank(t);
        n->size = n->ops->size(t);
        rc = alloc_peers(n, n->size);
        if (rc)
            n->ops->close(t);
        n->events_on = !rc;
    }
    pthread_mutex_lock(&n->lock);
    n->t = t;
    n->open_rc = rc;
    n->opened = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->lock);
    if (rc)
        return NULL;
    tl_comm = n;
    /* A task run inline here that waits keeps this thread polling: no
     * inline runs (but cheap tasks) where that fails (mpi without
     * MPI_THREAD_SERIALIZED). A poll is a progress call. */
    if (n->ops->poll && n->ops->poll(t) == -ENOTSUP) {
        n->inline_ns = 0;
    } else if (n->ops->poll) { /* and its waits poll (comm_poll) */
        weft__fut_thread_poller(&comm_poller);
    }
    run_deferred();
    uint64_t wait_ns = 1000000, ticked = 0;
    while (!weft__load_acquire(&n->stop)) {
        /* acquire pairs with the release store in weft_net_destroy */
        rc = n->ops->progress(t, (int64_t)wait_ns);
        if (rc) {
            weft__log("net: transport %s failed: %s", n->ops->name,
                      strerror(-rc));
            /* Nothing comes from it any more: every peer is as good as
             * dead to this node. What they owe fails (idempotent tasks
             * run here) and new work for them is refused, instead of
             * waiting for replies that cannot arrive. */
            for (int r = 0; r < n->size; r++)
                on_failed(n, r, rc);
            break;
        }
        run_deferred();
        /* progress returns after every delivery: the bookkeeping below
         * runs at most every 20 us (the wait stays what it was) */
        uint64_t now = weft__now_ns();
        if (now - ticked < 20000)
            continue;
        ticked = now;
        wait_ns = n->steal_us < 0 || n->size < 2 ? 20000000 : steal_tick(n);
        if (resend_tick(n) && wait_ns > 1000000)
            wait_ns = 1000000; /* held messages: try again soon */
        if (weft__load_relaxed(&n->st.actor_waiting) && hold_tick(n) &&
            wait_ns > HOLD_RETRY_NS)
            wait_ns = HOLD_RETRY_NS; /* actor messages wait for room */
        weft__bytes_trim(false);
        if (wait_ns < 20000)
            wait_ns = 20000;
    }
    while (!weft__load_acquire(&n->stop)) { /* broken: wait for the end */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&n->lock); /* stop_thread wakes t under the lock */
    n->t_closed = true;
    pthread_mutex_unlock(&n->lock);
    weft__fut_thread_poller(NULL);
    n->ops->close(t);
    drop_deferred();
    tl_comm = NULL;
    return NULL;
}

/* ---- waiters that poll ---- */

static bool node_poll(weft__poller *p)
{
    npoll *s = (npoll *)p;
    /* seq_cst, with poller_put's: either put sees us, or we see NULL */
    atomic_fetch_add(&s->users, 1);
    weft_node *n = atomic_load(&s->node);
    spill_deferred(); /* (an inline task waits: see run_deferred) */
    int rc = n ? n->ops->poll(n->t) : 0;
    if (n)
        run_deferred(); /* in n's lifetime: users holds it */
    atomic_fetch_sub(&s->users, 1);
    /* The communication thread waits in a task it runs inline: nobody
     * else would drive the transport, so it never stops polling. */
    return rc > 0 || (n && tl_comm == n);
}

/* The communication thread's own poller, which it drives whenever a
 * task it runs inline waits for any future (weft__fut_thread_poller):
 * nobody else drives this transport then, so the wait must, whether the
 * future has a poller or not (an any-node task that was stolen later, a
 * node that found every slot taken, a local future whose task waits for
 * a reply) and after destroy emptied the node's slot. Never idle. */
static bool comm_poll(weft__poller *p)
{
    (void)p;
    weft_node *n = tl_comm;
    spill_deferred(); /* (an inline task waits: see run_deferred) */
    n->ops->poll(n->t);
    run_deferred();
    return true;
}

/* A waiter stops polling: the communication thread takes over now. */
static void node_poll_stop(weft__poller *p)
{
    npoll *s = (npoll *)p;
    atomic_fetch_add(&s->users, 1);
    weft_node *n = atomic_load(&s->node);
    if (n)
        n->ops->wake(n->t);
    atomic_fetch_sub(&s->users, 1);
}

/* Once: a stale waiter may read a slot's functions while the slot is
 * taken again, so they are written before any slot is handed out. */
static pthread_once_t pollers_once = PTHREAD_ONCE_INIT;

static void pollers_init(void)
{
    for (int i = 0; i < NPOLL; i++)
        pollers[i].base = (weft__poller){node_poll, node_poll_stop};
}

/* Take a free slot for n, if its transport can be polled (else, or when
 * every slot is taken, its waiters sleep as before). */
static void poller_get(weft_node *n)
{
    if (!n->ops->poll)
        return;
    pthread_once(&pollers_once, pollers_init);
    for (int i = 0; i < NPOLL; i++) {
        weft_node *none = NULL;
        if (atomic_compare_exchange_strong(&pollers[i].node, &none, n)) {
            n->poller = &pollers[i];
            return;
        }
    }
}

/* Empty n's slot; once this returns no waiter is inside n's poll. */
static void poller_put(weft_node *n)
{
    npoll *s = n->poller;
    if (!s)
        return;
    atomic_store(&s->node, NULL);
    while (atomic_load(&s->users))
        sched_yield();
    n->poller = NULL;
}

/* r (sent to a peer, not yet seen by another thread) is waited for by
 * polling. */
static void poll_for(weft_node *n, rec *r)
{
    if (n->poller)
        weft__fut_set_poller(r->f, &n->poller->base);
}

/* ---- creating and destroying ---- */

weft_net_config weft_net_config_default(void)
{
    weft_net_config c;
    memset(&c, 0, sizeof c);
    c.params.rank = -1;
    c.params.heartbeat_ms = 100;
    c.params.dead_timeout_ms = 1000;
    c.params.join_timeout_ms = 30000;
    c.params.max_payload = 1ull << 30;
    c.join_timeout_ms = 30000;
    return c;
}

static const char *default_transport(void)
{
    const char *s = getenv("WEFT_TRANSPORT");
    if (s && *s)
        return s;
#ifdef WEFT_HAVE_MPI
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") ||
        getenv("PMIX_RANK"))
        return "mpi";
#endif
    return "tcp";
}

/* The parameters after the environment's overrides; -EINVAL if bad. */
static int resolve(weft_node *n, const weft_net_config *c)
{
    n->params = c->params;
    const char *s;
    if (!n->params.peers && (s = getenv("WEFT_PEERS")) && *s)
        n->params.peers = s;
    if (n->params.rank < 0 && (s = getenv("WEFT_RANK")) && *s)
        n->params.rank = atoi(s);
    if ((s = getenv("WEFT_NET_DEAD_MS")) && *s &&
        c->params.dead_timeout_ms == 1000)
        n->params.dead_timeout_ms = atoi(s);
    n->steal_us = c->steal_interval_us ? c->steal_interval_us : 200;
    if (n->params.heartbeat_ms <= 0 || n->params.dead_timeout_ms <= 0 ||
        n->params.join_timeout_ms <= 0 || c->join_timeout_ms <= 0 ||
        n->steal_us < -1 || !n->params.max_payload)
        return -EINVAL;
    const char *name = c->transport ? c->transport : default_transport();
    n->ops = weft_transport_find(name);
    if (!n->ops) {
        weft__log("net: no transport named '%s'", name);
        return -ENOENT;
    }
    int inl = c->inline_us;
    if (!inl && (s = getenv("WEFT_NET_INLINE_US")) && *s)
        inl = atoi(s) ? atoi(s) : -1;
    if (inl < -1)
        return -EINVAL;
    if (inl > 0)
        n->inline_ns = (uint32_t)(inl < 4000000 ? inl : 4000000) * 1000u;
    else if (!inl && !(n->ops->caps & WEFT_TRANSPORT_FAILURES))
        n->inline_ns = INLINE_DEFAULT_NS;
    if (!n->ops->poll)
        n->inline_ns = 0;
    n->timed = n->inline_ns != 0; /* fixed before any thread reads it */
    return 0;
}

static void timed_wait(weft_node *n, uint64_t deadline_ns)
{
    /* under lock; the condition variable uses CLOCK_MONOTONIC */
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u),
                          (long)(deadline_ns % 1000000000u)};
    pthread_cond_timedwait(&n->cond, &n->lock, &ts);
}

/* Wait for the transport to open and every peer to be met. */
static int meet(weft_node *n, int join_ms)
{
    uint64_t deadline = weft__now_ns() + (uint64_t)join_ms * 1000000u;
    pthread_mutex_lock(&n->lock);
    while (!n->opened)
        pthread_cond_wait(&n->cond, &n->lock);
    int rc = n->open_rc;
    /* A node with another table waits too, so that every peer hears of
     * it before it goes. */
    while (!rc && n->settled < n->size - 1 && weft__now_ns() < deadline)
        timed_wait(n, deadline);
    if (!rc)
        rc = n->mismatch ? -EPROTO : n->died_early ? -EHOSTDOWN
             : n->settled < n->size - 1 ? -ETIMEDOUT : 0;
    pthread_mutex_unlock(&n->lock);
    return rc;
}

static int alloc_peers(weft_node *n, int size)
{
    n->peer = weft__calloc((size_t)size, 1);
    n->arrived = weft__calloc((size_t)size, sizeof *n->arrived);
    n->rs = weft__calloc(RESEND_MAX, sizeof *n->rs);
    for (int i = 0; n->rs && i < RESEND_MAX; i++) {
        n->rs[i].next = n->rs_free;
        n->rs_free = &n->rs[i];
    }
    return n->peer && n->arrived && n->rs ? 0 : -ENOMEM;
}

static void node_free(weft_node *n)
{
    resend_drop(n); /* before the objects their payloads may point into */
    for (int b = 0; b < PUB_BUCKETS; b++)
        while (n->pubs[b]) {
            pub *p = n->pubs[b];
            n->pubs[b] = p->next;
            weft_actor_release(p->a);
            weft__free(p);
        }
    for (int b = 0; b < OBJ_BUCKETS; b++)
        while (n->objs[b]) {
            obj *o = n->objs[b];
            n->objs[b] = o->next;
            weft_bytes_free(o->data);
            weft__free(o);
        }
    if (n->fns.fns)
        weft__fntab_put(&n->fns);
    weft__free(n->fstat);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->hold_lock);
    weft__free(n->peer);
    weft__free(n->arrived);
    weft__free(n->rs);
    weft__free(n);
}

static void stop_thread(weft_node *n)
{
    weft__store_release(&n->stop, true); /* pairs with comm_main's load */
    pthread_mutex_lock(&n->lock); /* t stays open while we hold it */
    if (n->opened && !n->open_rc && !n->t_closed)
        n->ops->wake(n->t);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
}

static int start(weft_node *n, const weft_net_config *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->hold_lock, NULL);
    int rc = resolve(n, c);
    if (!rc)
        rc = weft__fntab_get(&n->fns);
    if (rc)
        return rc;
    /* the hello carries every name: over max_payload, every peer would
     * refuse it (tcp closes the stream) and the job could never meet */
    if (too_big(n, n->fns.names_len)) {
        weft__log("net: the names of the %u registered remote functions "
                  "take %zu bytes, over max_payload (%llu): raise it",
                  n->fns.n, n->fns.names_len,
                  (unsigned long long)n->params.max_payload);
        return -EMSGSIZE;
    }
    n->fstat = weft__calloc(n->fns.n ? n->fns.n : 1, sizeof *n->fstat);
    if (!n->fstat)
        return -ENOMEM;
    for (uint32_t i = 0; i < n->fns.n; i++)
        n->fstat[i].avg_ns = FN_UNKNOWN;
    int w = weft_runtime_workers(n->rt);
    n->local_max = w > 0 ? w : 1;
    n->rand = (uint64_t)weft__now_ns() ^ (uint64_t)(uintptr_t)n;
    return 0;
}

static void node_close(weft_node *n);

int weft_net_create(weft_node **out, weft_runtime *rt,
                    const weft_net_config *cfg)
{
    if (!out || !rt || weft_runtime_workers(rt) <= 0)
        return -EINVAL;
    weft_net_config def = weft_net_config_default();
    const weft_net_config *c = cfg ? cfg : &def;
    weft_node *n = weft__calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->rt = rt;
    int rc = start(n, c);
    if (rc)
        goto fail;
    rc = -weft__thread_create(&n->thread, NULL, comm_main, n);
    if (rc)
        goto fail;
    rc = meet(n, c->join_timeout_ms);
    if (rc) {
        /* Peers that met this node may have sent it tasks already: they
         * end, and answer, before the node goes, as at destroy. */
        node_close(n);
        return rc;
    }
    poller_get(n);
    *out = n;
    return 0;
fail:
    node_free(n);
    return rc;
}

/* under lock: take the whole any-node queue. */
static rec *take_queue(weft_node *n)
{
    rec *r = n->aq_head;
    n->aq_head = n->aq_tail = NULL;
    n->aq_len = 0;
    return r;
}

static void finish_all(rec *r, int status)
{
    while (r) {
        rec *next = r->next;
        rec_finish(r, status, NULL);
        r = next;
    }
}

/* Leave and free n (its communication thread started): no new work, the
 * queued any-node tasks cancelled, the running jobs ended (they answer
 * over the transport, which stays up until then), the thread stopped,
 * and whatever is still owed cancelled. */
static void node_close(weft_node *n)
{
    poller_put(n);
    pthread_mutex_lock(&n->lock);
    n->closing = true;
    rec *q = take_queue(n);
    pthread_mutex_unlock(&n->lock);
    finish_all(q, -ECANCELED);
    pthread_mutex_lock(&n->lock);
    while (n->jobs_live) /* they send replies: the transport must be up */
        pthread_cond_wait(&n->cond, &n->lock);
    pthread_mutex_unlock(&n->lock);
    hold_cancel(n, true); /* and again below, for those come meanwhile */
    stop_thread(n);
    hold_cancel(n, false);
    for (int r = 0; n->peer && r < n->size; r++) /* no events now */
        if (n->peer[r] == P_OK)
            weft__add_relaxed(&n->rt->peers, -1);
    for (int b = 0; b < TAB_BUCKETS; b++) {
        finish_all(n->tab[b], -ECANCELED);
        n->tab[b] = NULL;
    }
    q = take_queue(n); /* re-queued by a failure during the close */
    finish_all(q, -ECANCELED);
    node_free(n);
}

int weft_net_destroy(weft_node **np)
{
    weft_node *n = np ? *np : NULL;
    if (!n)
        return -EINVAL;
    node_close(n);
    weft__bytes_trim(true);
    *np = NULL;
    return 0;
}

int weft_net_rank(const weft_node *n)
{
    return n ? n->rank : -EINVAL;
}

int weft_net_size(const weft_node *n)
{
    return n ? n->size : -EINVAL;
}

int weft_net_alive(const weft_node *cn, int rank)
{
    weft_node *n = (weft_node *)cn; /* the lock is not part of the value */
    if (!n || rank < 0 || rank >= n->size)
        return -EINVAL;
    if (rank == n->rank)
        return 1;
    pthread_mutex_lock(&n->lock);
    int alive = n->peer[rank] != P_DEAD;
    pthread_mutex_unlock(&n->lock);
    return alive;
}

int weft_net_stats_get(const weft_node *cn, weft_net_stats *o)
{
    weft_node *n = (weft_node *)cn;
    if (!n || !o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->msgs_sent = weft__load_relaxed(&n->st.sent);
    o->msgs_recv = weft__load_relaxed(&n->st.recv);
    o->bytes_sent = weft__load_relaxed(&n->st.bsent);
    o->bytes_recv = weft__load_relaxed(&n->st.brecv);
    o->dropped = weft__load_relaxed(&n->st.dropped);
    o->tasks_remote = weft__load_relaxed(&n->st.remote);
    o->tasks_stolen = weft__load_relaxed(&n->st.stolen);
    o->tasks_rerun = weft__load_relaxed(&n->st.rerun);
    o->tasks_failed = weft__load_relaxed(&n->st.failed);
    o->peers_failed = weft__load_relaxed(&n->st.peers_failed);
    o->actor_msgs = weft__load_relaxed(&n->st.actor_msgs);
    o->actor_dropped = weft__load_relaxed(&n->st.actor_dropped);
    o->msgs_held = weft__load_relaxed(&n->st.held);
    o->msgs_lost = weft__load_relaxed(&n->st.lost);
    o->actor_waiting = weft__load_relaxed(&n->st.actor_waiting);
    return 0;
}

/* under lock: every live rank reached epoch e. */
static bool barrier_done(weft_node *n, uint64_t e)
{
    for (int p = 0; p < n->size; p++)
        if (n->peer[p] != P_DEAD && n->arrived[p] < e)
            return false;
    return true;
}

int weft_net_barrier(weft_node *n, int64_t timeout_ns)
{
    if (!n)
        return -EINVAL;
    uint64_t deadline =
        timeout_ns < 0 ? 0 : weft__now_ns() + (uint64_t)timeout_ns;
    pthread_mutex_lock(&n->lock);
    weft__msg m = {.handler = WEFT__H_BARRIER, .epoch = ++n->epoch};
    n->arrived[n->rank] = m.epoch;
    pthread_mutex_unlock(&n->lock);
    for (int p = 0; p < n->size; p++)
        if (p != n->rank && weft_net_alive(n, p) == 1)
            send_plain(n, p, &m);
    int rc = 0;
    pthread_mutex_lock(&n->lock);
    while (!barrier_done(n, m.epoch) && !rc) {
        if (!deadline)
            pthread_cond_wait(&n->cond, &n->lock);
        else if (weft__now_ns() >= deadline)
            rc = -ETIMEDOUT;
        else
            timed_wait(n, deadline);
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

/* ---- remote tasks ---- */

weft_remote_opts weft_remote_opts_default(void)
{
    weft_remote_opts o;
    memset(&o, 0, sizeof o);
    o.node = WEFT_NODE_ANY;
    return o;
}

static bool holds(weft_node *n, const uint8_t *id);

/* The rank opts point at: a rank, WEFT_NODE_ANY, or a negative errno. */
static int target_of(weft_node *n, const weft_remote_opts *o)
{
    int t = o->node;
    if (t == WEFT_NODE_OBJECT) {
        if (!o->object)
            return -EINVAL;
        if (holds(n, o->object)) /* a fetched copy, or never announced */
            return n->rank;
        pthread_mutex_lock(&n->lock);
        obj *ob = obj_find(n, o->object);
        t = ob && ob->rank >= 0 ? ob->rank : -ENOENT;
        pthread_mutex_unlock(&n->lock);
        return t;
    }
    if (t == WEFT_NODE_ANY)
        return t;
    if (t < 0 || t >= n->size)
        return -EINVAL;
    return weft_net_alive(n, t) == 1 ? t : -EHOSTDOWN;
}

/* A record with its future; *handle is the user's reference. */
static int rec_new(weft_node *n, int kind, const void *arg, size_t len,
                   rec **out, weft_future **handle)
{
    rec *r = weft__calloc(1, sizeof *r);
    /* no argument, no bytes (a task's NULL arg reads as empty) */
    weft_bytes *a = kind == R_TASK && len ? weft_bytes_copy(arg, len) : NULL;
    int rc = r && (kind != R_TASK || !len || a) ? 0 : -ENOMEM;
    if (!rc)
        rc = weft__fut_external(n->rt, NULL, &r->f, handle);
    if (rc) {
        weft_bytes_free(a);
        weft__free(r);
        return rc;
    }
    r->kind = kind;
    r->arg = a;
    atomic_init(&r->refs, 1);
    *out = r;
    return 0;
}

int weft_submit_remote(weft_node *n, const char *name, const void *arg,
                       size_t len, const weft_remote_opts *opts,
                       weft_future **out)
{
    WEFT__NET_EV(WEFT__EV_SUBMIT);
    weft_remote_opts def;
    if (!opts)
        def = weft_remote_opts_default();
    const weft_remote_opts *o = opts ? opts : &def;
    if (!n || !name || !out || (!arg && len) ||
        (o->flags &
         ~(unsigned)(WEFT_REMOTE_IDEMPOTENT | WEFT_REMOTE_CHEAP)))
        return -EINVAL;
    int fn = weft__fntab_find(&n->fns, name);
    if (fn < 0)
        return -ENOENT;
    if (too_big(n, len)) /* any task may travel: a stolen one too */
        return -EMSGSIZE;
    int dst = target_of(n, o);
    if (dst < WEFT_NODE_ANY)
        return dst;
    rec *r;
    int rc = rec_new(n, R_TASK, arg, len, &r, out);
    if (rc)
        return rc;
    r->fn = (uint32_t)fn;
    r->flags = o->flags;
    pthread_mutex_lock(&n->lock);
    r->id = ++n->next_id;
    bool closing = n->closing;
    if (!closing && dst == WEFT_NODE_ANY)
        aq_push(n, r, false);
    if (!closing && dst == n->rank) { /* pinned here: not in the queue */
        n->local_running++;
        n->jobs_live++;
    }
    bool away = !closing && dst != WEFT_NODE_ANY && dst != n->rank;
    bool sent = false;
    if (away) {
        /* before it is sent: a waiter polls from the start */
        poll_for(n, r);
        sent = dispatch_locked(n, r, dst);
    }
    pthread_mutex_unlock(&n->lock);
    if (closing)
        rec_finish(r, -ECANCELED, NULL);
    else if (dst == WEFT_NODE_ANY)
        pump(n);
    else if (dst == n->rank)
        run_here(n, r);
    else if (sent)
        dispatch_send(n, r, dst, false);
    else /* died since target_of looked */
        rec_finish(r, -EHOSTDOWN, NULL);
    return 0;
}

/* ---- objects ---- */

int weft_net_set_object_hooks(weft_node *n, const weft_object_hooks *h)
{
    if (!n || (h && (!h->lookup || !h->release)))
        return -EINVAL;
    pthread_mutex_lock(&n->lock);
    n->has_hooks = h != NULL;
    if (h)
        n->hooks = *h;
    pthread_mutex_unlock(&n->lock);
    return 0;
}

int weft_net_object_put(weft_node *n, const uint8_t *id, const void *data,
                        size_t len)
{
    if (!n || !id || (!data && len))
        return -EINVAL;
    weft_bytes *b = weft_bytes_copy(data, len);
    if (!b)
        return -ENOMEM;
    pthread_mutex_lock(&n->lock);
    int rc = obj_note(n, id, n->rank, b);
    pthread_mutex_unlock(&n->lock);
    if (rc) {
        weft_bytes_free(b);
        return rc;
    }
    announce(n, id);
    return 0;
}

int weft_net_object_announce(weft_node *n, const uint8_t *id)
{
    if (!n || !id)
        return -EINVAL;
    pthread_mutex_lock(&n->lock);
    obj *o = obj_find(n, id);
    int rc = o && o->data ? 0 : obj_note(n, id, n->rank, NULL);
    pthread_mutex_unlock(&n->lock);
    if (!rc)
        announce(n, id);
    return rc;
}

/* A copy of a local object, from the hooks or the default table. */
static int local_copy(weft_node *n, const uint8_t *id, weft_bytes **out)
{
    pthread_mutex_lock(&n->lock);
    weft_object_hooks h = n->hooks;
    bool hooks = n->has_hooks;
    obj *o = hooks ? NULL : obj_find(n, id);
    *out = o && o->data ? weft_bytes_copy(o->data->data, o->data->len)
                        : NULL;
    int rc = o && o->data ? (*out ? 0 : -ENOMEM) : -ENOENT;
    pthread_mutex_unlock(&n->lock);
    if (!hooks)
        return rc;
    const void *data;
    size_t len;
    void *token;
    rc = h.lookup(h.ctx, id, &data, &len, &token);
    if (rc)
        return rc;
    /* with a sink the object is already where a fetch would put it */
    *out = h.sink ? NULL : weft_bytes_copy(data, len);
    h.release(h.ctx, token);
    return h.sink || *out ? 0 : -ENOMEM;
}

/* Whether this node holds id: in its default table, or found by the
 * hooks. */
static bool holds(weft_node *n, const uint8_t *id)
{
    pthread_mutex_lock(&n->lock);
    weft_object_hooks h = n->hooks;
    bool hooks = n->has_hooks;
    obj *o = hooks ? NULL : obj_find(n, id);
    bool here = o && o->data;
    pthread_mutex_unlock(&n->lock);
    const void *data;
    size_t len;
    void *token;
    if (!hooks || h.lookup(h.ctx, id, &data, &len, &token))
        return here;
    h.release(h.ctx, token);
    return true;
}

/* Ask dst for r's object. */
static void fetch_remote(weft_node *n, rec *r, int dst)
{
    weft__msg m = {.handler = WEFT__H_OBJ_GET};
    memcpy(m.obj, r->obj, WEFT_OBJECT_ID_LEN);
    int rc = tab_add(n, r, dst, &m.id);
    if (rc) {
        rec_finish(r, rc, NULL);
        return;
    }
    rc = send_plain(n, dst, &m);
    if (rc)
        unsend(n, m.id, dst, R_FETCH, rc);
}

int weft_net_object_fetch(weft_node *n, const uint8_t *id, int rank,
                          weft_future **out)
{
    if (!n || !id || !out || rank < WEFT_NODE_ANY || rank >= n->size)
        return -EINVAL;
    weft_remote_opts o = weft_remote_opts_default();
    o.node = rank == WEFT_NODE_ANY ? WEFT_NODE_OBJECT : rank;
    o.object = id;
    /* held here: no traffic, whichever rank was named */
    int dst = holds(n, id) ? n->rank : target_of(n, &o);
    if (dst < 0 && dst != -EHOSTDOWN)
        return dst;
    rec *r;
    int rc = rec_new(n, R_FETCH, NULL, 0, &r, out);
    if (rc)
        return rc;
    memcpy(r->obj, id, WEFT_OBJECT_ID_LEN);
    if (dst == n->rank) {
        weft_bytes *b = NULL;
        rc = local_copy(n, id, &b);
        rec_finish(r, rc, b);
    } else if (dst < 0) {
        rec_finish(r, dst, NULL); /* a dead rank: the future says so */
    } else {
        poll_for(n, r);
        fetch_remote(n, r, dst);
    }
    return 0;
}

/* ---- a weft_store behind the object hooks ---- */

static void store_id(weft_store_id *sid, const uint8_t *id)
{
    memcpy(sid->bytes, id, sizeof sid->bytes);
}

/* A reference to the sealed object, held in the token until the send of
 * its bytes is done. */
static int store_lookup(void *ctx, const uint8_t *id, const void **data,
                        size_t *len, void **token)
{
    weft_store_obj *o = weft__malloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    weft_store_id sid;
    store_id(&sid, id);
    int rc = weft_store_get(ctx, &sid, 0, o);
    if (rc) {
        weft__free(o);
        return rc;
    }
    *data = o->data;
    *len = o->size;
    *token = o;
    return 0;
}

static void store_release(void *ctx, void *token)
{
    weft_store_release(ctx, token);
    weft__free(token);
}

/* create, copy, seal. -EEXIST is success: IDs name immutable bytes, and
 * whoever holds or writes id holds the same ones. */
static int store_sink(void *ctx, const uint8_t *id, const void *data,
                      size_t len)
{
    weft_store_id sid;
    store_id(&sid, id);
    void *p;
    int rc = weft_store_create(ctx, &sid, len, 0, &p);
    if (rc)
        return rc == -EEXIST ? 0 : rc;
    if (len)
        memcpy(p, data, len);
    rc = weft_store_seal(ctx, &sid);
    if (rc)
        weft_store_abort(ctx, &sid);
    return rc;
}

int weft_net_use_store(weft_node *n, weft_store *st)
{
    if (!n)
        return -EINVAL;
    int rc = st ? 0 : weft_runtime_store(n->rt, &st);
    if (rc)
        return rc;
    weft_object_hooks h = {.ctx = st, .lookup = store_lookup,
                           .release = store_release, .sink = store_sink};
    return weft_net_set_object_hooks(n, &h);
}

/* ---- actors across nodes: the sender's side ---- */

/* The checks every call makes; *nl gets the name's length. The message
 * travels as name + data in one payload, which must fit max_payload. */
static int act_args(weft_node *n, int rank, const char *name,
                    const void *data, size_t len, size_t *nl)
{
    if (!n || !name || rank < 0 || rank >= n->size || (!data && len))
        return -EINVAL;
    *nl = strnlen(name, WEFT_NET_NAME_MAX + 1);
    if (!*nl || *nl > WEFT_NET_NAME_MAX)
        return -EINVAL;
    if (too_big(n, len) || *nl > n->params.max_payload - len)
        return -EMSGSIZE;
    return 0;
}

/* name + data, the payload of an ACT_MSG. */
static weft_bytes *act_payload(const char *name, size_t nl,
                               const void *data, size_t len)
{
    weft_bytes *b = weft_bytes_new(nl + len);
    if (b) {
        memcpy(b->data, name, nl);
        if (len)
            memcpy(b->data + nl, data, len);
    }
    return b;
}

int weft_net_actor_publish(weft_node *n, const char *name, weft_actor *a)
{
    size_t len = name ? strnlen(name, WEFT_NET_NAME_MAX + 1) : 0;
    if (!n || !a || !len || len > WEFT_NET_NAME_MAX)
        return -EINVAL;
    pub *p = weft__malloc(sizeof *p + len + 1);
    if (!p)
        return -ENOMEM;
    *p = (pub){.a = a, .len = len};
    memcpy(p->name, name, len + 1);
    int rc = weft_actor_retain(a);
    if (rc) {
        weft__free(p);
        return rc;
    }
    pthread_mutex_lock(&n->lock);
    pub **slot = pub_slot(n, name, len);
    bool taken = *slot != NULL;
    if (!taken)
        *slot = p;
    pthread_mutex_unlock(&n->lock);
    if (taken) {
        weft_actor_release(a);
        weft__free(p);
        return -EEXIST;
    }
    return 0;
}

int weft_net_actor_unpublish(weft_node *n, const char *name)
{
    size_t len = name ? strnlen(name, WEFT_NET_NAME_MAX + 1) : 0;
    if (!n || !len || len > WEFT_NET_NAME_MAX)
        return -EINVAL;
    pthread_mutex_lock(&n->lock);
    pub **slot = pub_slot(n, name, len), *p = *slot;
    if (p)
        *slot = p->next;
    pthread_mutex_unlock(&n->lock);
    if (!p)
        return -ENOENT;
    weft_actor_release(p->a);
    weft__free(p);
    return 0;
}

/* A send to an actor of this node: what weft_send says. */
static int send_here(weft_node *n, const char *name, size_t nl,
                     const void *data, size_t len)
{
    weft_actor *a = pub_get(n, name, nl);
    if (!a)
        return -ENOENT;
    int rc = weft_send(a, data, len, 0);
    weft_actor_release(a);
    return rc;
}

int weft_net_send(weft_node *n, int rank, const char *name,
                  const void *data, size_t len)
{
    size_t nl;
    int rc = act_args(n, rank, name, data, len, &nl);
    if (rc)
        return rc;
    if (rank == n->rank)
        return send_here(n, name, nl, data, len);
    if (weft_net_alive(n, rank) != 1)
        return -EHOSTDOWN;
    weft_bytes *b = act_payload(name, nl, data, len);
    if (!b)
        return -ENOMEM;
    weft__msg m = {.handler = WEFT__H_ACT_MSG, .namelen = (uint32_t)nl};
    return send_bytes(n, rank, &m, b);
}

/* Send the ask b (an ACT_MSG payload, owned) for record r to rank. */
static void ask_remote(weft_node *n, rec *r, int rank, weft_bytes *b,
                       size_t nl)
{
    weft__msg m = {.handler = WEFT__H_ACT_MSG, .namelen = (uint32_t)nl,
                   .flags = WEFT__ACT_ASK};
    int rc = tab_add(n, r, rank, &m.id);
    if (rc) {
        weft_bytes_free(b);
        rec_finish(r, rc, NULL);
        return;
    }
    rc = send_bytes(n, rank, &m, b);
    if (rc)
        unsend(n, m.id, rank, R_ASK, rc);
}

int weft_net_ask(weft_node *n, int rank, const char *name, const void *data,
                 size_t len, weft_future **out)
{
    size_t nl;
    int rc = out ? act_args(n, rank, name, data, len, &nl) : -EINVAL;
    if (rc)
        return rc;
    weft_bytes *b = NULL;
    if (rank != n->rank && !(b = act_payload(name, nl, data, len)))
        return -ENOMEM;
    rec *r;
    rc = rec_new(n, R_ASK, NULL, 0, &r, out);
    if (rc) {
        weft_bytes_free(b);
        return rc;
    }
    if (rank != n->rank) {
        poll_for(n, r);
        ask_remote(n, r, rank, b, nl);
        return 0;
    }
    askjob proto = {.n = n, .src = -1, .r = r};
    weft_actor *a = pub_get(n, name, nl);
    deliver_ask(n, &proto, a, data, len, 0); /* waits for room: never -EAGAIN */
    if (a)
        weft_actor_release(a);
    return 0;
}

int weft_net_reply(weft_actor_ctx *ctx, weft_bytes *b)
{
    if (!ctx) {
        weft_bytes_free(b);
        return -EINVAL;
    }
    return weft_actor_reply(ctx, b, b ? weft__bytes_dtor : NULL);
}
