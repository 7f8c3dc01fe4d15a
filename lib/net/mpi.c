/* The "mpi" transport: Open MPI or MPICH, launched by mpirun/srun.
 *
 * MPI_THREAD_MULTIPLE is not needed. Other threads hand their sends to
 * the communication thread through a mutex-guarded queue; it polls MPI
 * (non-blocking sends, probes for receives), yielding while things happen
 * and sleeping in short steps when idle. With MPI_THREAD_SERIALIZED (asked
 * for at MPI_Init_thread) a thread that waits for a reply may poll too
 * (mpi_poll): every pass over MPI holds plock, so calls never overlap,
 * and the communication thread sleeps while a waiter polls (until the
 * waiter has not polled for POLLED_NS, or says with wake that it stops).
 * That takes the communication thread and two wake-ups out of a round
 * trip, and its wake-ups off the waiter's cores. With
 * less (an application that initialised MPI with FUNNELED) only the
 * communication thread calls MPI.
 *
 * A message is one MPI message (tag TAG_AM) holding the frame header of
 * wire.h, the header and, up to INLINE bytes, the payload; a bigger
 * payload follows as a second message (TAG_PAY) from the same rank, which
 * MPI's non-overtaking rule keeps in order, and is received straight into
 * its weft_bytes (no copy).
 *
 * Ranks on the same machine do not use MPI messages at all: each pair
 * has two shared-memory rings (shmring.h, set up through an MPI shared
 * window: see "ranks on the same machine" below). A message is the same
 * frame as over MPI, written into the ring; a payload over INLINE still
 * follows as TAG_PAY. This takes MPI's matching and progress engine out
 * of the round trip between ranks of a node (2.5 us through MPI, about
 * 1.0 us through the rings on 2 cores: bench/RESULTS.md).
 *
 * Latency over MPI (a remote round trip is a handful of these steps, and
 * raw MPI ping-pong is the yardstick):
 *  - a receive for TAG_AM is always posted, into one of two buffers, so a
 *    message lands while MPI progresses anything (no probe, then a second
 *    match and copy to receive it); the next receive is posted before the
 *    one that completed is delivered;
 *  - a send goes to MPI at once when its thread already holds plock (a
 *    reply made by a callback) or can take it; only when another thread
 *    is inside MPI is it queued for that thread's next pass;
 *  - a pass finds an empty queue and no sends in flight from two plain
 *    loads, without taking qlock.
 *
 * One-sided access (put, get, reg, dereg): one dynamic window over the
 * communicator, created at open and locked for every rank for its whole
 * life (MPI_Win_lock_all); reg attaches memory, put and get are MPI_Rput
 * and MPI_Rget, tested in every pass, and a put's done waits for
 * MPI_Win_flush (the bytes are at the target). The key of a region holds
 * its place and size (key_of), and put and get check the range against
 * it before MPI sees it: Open MPI's osc/rdma checks accesses against the
 * attached regions only page by page, and osc/pt2pt (taken when the
 * machine has no single-copy mechanism for it) not at all. reg takes
 * whole pages, which the key counts. Freeing the window at close is
 * collective: close waits for every rank to close.
 *
 * Failures: MPI (before MPI 5's ULFM) gives no way to survive the death
 * of a rank; mpirun normally ends the whole job when one rank dies. The
 * communicator is set to MPI_ERRORS_RETURN, an error from a send to a
 * rank fails that rank (peer_failed) and an error from a receive is
 * logged, but nothing promises the job goes on: this backend does not
 * claim WEFT_TRANSPORT_FAILURES, and idempotent re-runs after a death
 * are a tcp feature. */
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "net_internal.h"
#include "shmring.h"

#define TAG_AM 0x5746
#define TAG_PAY 0x5747
#define INLINE (16u << 10)
/* After activity the thread polls this long, then sleeps in steps of
 * SLEEP_NS. It yields between polls, so that a worker on its core still
 * gets it (3 ranks share 2 cores in the tests): 20 us of polling on
 * small machines made every round trip wait out a sleep or two (203 ->
 * 55 us on 2 cores). */
#define SPIN_NS 200000u
#define SLEEP_NS 20000
/* While it polls, it yields every SPIN_YIELD passes: a pass that finds
 * nothing costs tens of ns, a yield a system call. */
#define SPIN_YIELD 16u
/* A waiter that polled this recently is polling: the communication
 * thread leaves the core to it. */
#define POLLED_NS 200000u
/* Polls (of a waiter) or idle passes (of the communication thread)
 * between two clock reads: a read costs a third of a pass that finds
 * nothing, and a pass sooner is a message seen sooner. */
#define CLOCK_EVERY 16u

/* A put or get in flight (on t->rma, under plock). */
typedef struct rmaop {
    struct rmaop *next;
    MPI_Request req;
    int dst;
    bool put;
    weft_send_done done;
    void *arg;
} rmaop;

/* Memory attached to the window (on t->regions, under plock). */
typedef struct mregion {
    struct mregion *next;
    void *addr;
} mregion;

typedef struct txmsg {
    struct txmsg *next;
    int dst, nreq;     /* nreq: the requests MPI started */
    int err;           /* 0, or the status its done hears: not sent */
    MPI_Request req[2];
    unsigned char *buf; /* frame + header (+ inline payload): after m */
    size_t buflen;
    weft_bytes *packed; /* a big payload of several iovecs, packed */
    const void *pay;
    size_t paylen;
    weft_send_done done;
    void *arg;
} txmsg;

/* Where a communication thread naps (in the slot of its own rank's
 * shared memory when rings are used, so other processes can wake it). */
typedef struct shbell {
    _Atomic uint32_t nap;     /* bumped by every wake */
    _Atomic uint32_t napping; /* NAP_*: about to sleep or sleeps on nap */
} shbell;

/* A communication thread that naps while a waiter of its process polls
 * (NAP_POLLED) needs no wake for ring records: the waiter reads them. */
enum { NAP_NO = 0, NAP_DEEP = 1, NAP_POLLED = 2 };

/* A rank on this machine, reached through shared-memory rings (under
 * plock): tx is our ring in its memory, rx its ring in ours. Messages
 * the ring has no room for wait on ph..pt, in order. */
typedef struct shpeer {
    weft__ring_tx tx;
    weft__ring_rx rx;
    shbell *bell;
    txmsg *ph, *pt;
    bool broken; /* rx was malformed: no longer read */
    bool stalled; /* rx's front record waits for payload memory */
} shpeer;

struct weft_transport {
    MPI_Comm comm;
    int rank, size;
    bool we_init, joined;
    weft_transport_params p;
    weft_transport_events ev;
    pthread_mutex_t qlock;
    txmsg *qh, *qt;     /* from any thread */
    pthread_mutex_t plock; /* held by every pass over MPI */
    bool serialized;    /* MPI_THREAD_SERIALIZED or better: mpi_poll works */
    _Atomic uint64_t poll_at; /* when a waiter last polled */
    shbell *bell;       /* the communication thread sleeps on bell->nap: */
    shbell own_bell;    /* here, or in the shared window (bell_shared) */
    _Atomic uint32_t queued; /* messages on qh (hint: read unlocked) */
    txmsg *active;      /* Isend in flight (under plock) */
    /* under plock: the posted receive and its two buffers */
    MPI_Request rreq;
    int rcur;           /* the buffer rreq receives into */
    MPI_Win win;        /* locked for all ranks, or MPI_WIN_NULL */
    rmaop *rma;
    mregion *regions;
    unsigned char *rxb[2];
    _Atomic bool woken;
    uint64_t spin_ns;
    int rxcap;
    /* same-node ranks (shm_open_rings), under plock */
    MPI_Win shwin;      /* the rings, or MPI_WIN_NULL */
    shpeer *sh;         /* per rank; tx.r NULL for ranks not on the node */
    int *near;          /* the ranks on the node, but this one */
    int nnear, npend;   /* npend: messages waiting for ring room */
    int nstalled;       /* rings whose front record waits for memory */
    bool far;           /* some rank is not on the node: MPI receives */
    bool asym;          /* the node's ranks use membarrier: ring_publish */
};

/* The transport whose plock this thread holds, if any: a send made by a
 * callback inside a pass goes straight to MPI. */
static _Thread_local weft_transport *tl_held;

static void post_recv(weft_transport *t)
{
    MPI_Irecv(t->rxb[t->rcur], t->rxcap, MPI_BYTE, MPI_ANY_SOURCE, TAG_AM,
              t->comm, &t->rreq);
}

static void plock_take(weft_transport *t)
{
    pthread_mutex_lock(&t->plock);
    tl_held = t;
}

static bool plock_try(weft_transport *t)
{
    if (pthread_mutex_trylock(&t->plock))
        return false;
    tl_held = t;
    return true;
}

static void plock_drop(weft_transport *t)
{
    tl_held = NULL;
    pthread_mutex_unlock(&t->plock);
}

/* ---- ranks on the same machine: shared-memory rings ----
 *
 * Every rank of a node allocates, in one MPI shared window over the
 * node's ranks, a ring per other rank of the node (sender j writes the
 * j-th). All messages to such a rank go through its ring, in order; a
 * payload over INLINE still follows as an MPI message (TAG_PAY), which
 * the receiver takes when it reads the ring's frame, so order holds.
 * When every rank is on the node, a pass never asks MPI for a receive.
 * WEFT_MPI_SHM=0 (on any rank of a node) keeps that node on MPI alone;
 * WEFT_MPI_SHM_KB sets each ring's size (default 256, at least 64). */
#define SHM_KB_DEFAULT 256
#define SHM_KB_MIN 64

static size_t shm_ring_cap(void)
{
    const char *e = getenv("WEFT_MPI_SHM_KB");
    long kb = e && *e ? strtol(e, NULL, 10) : SHM_KB_DEFAULT;
    if (kb < SHM_KB_MIN)
        kb = SHM_KB_MIN;
    if (kb > 1l << 20)
        kb = 1l << 20;
    return (size_t)kb << 10;
}

static unsigned char *align64(unsigned char *p)
{
    return p + (64 - (uintptr_t)p % 64) % 64;
}

/* Is the switch name turned off (set to 0) in the environment? */
static bool env_off(const char *name)
{
    const char *e = getenv(name);
    return e && !strcmp(e, "0");
}

/* Collective over node: is v true on every rank? */
static int node_all(MPI_Comm node, int v)
{
    int all = 0;
    MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, node);
    return all;
}

/* Collective over t->comm. Leaves t->sh NULL (everything over MPI) when
 * the node has one rank, a rank declines, or MPI gives no shared window;
 * always fills t->far. */
static void shm_open_rings(weft_transport *t)
{
    MPI_Comm node;
    int nl = 1, me = 0;
    t->bell = &t->own_bell;
    t->shwin = MPI_WIN_NULL;
    t->far = true;
    if (MPI_Comm_split_type(t->comm, MPI_COMM_TYPE_SHARED, t->rank,
                            MPI_INFO_NULL, &node) != MPI_SUCCESS)
        return;
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    MPI_Comm_size(node, &nl);
    MPI_Comm_rank(node, &me);
    t->far = nl < t->size;
    unsigned long cap = shm_ring_cap(), capall = 0;
    int all = node_all(node, !env_off("WEFT_MPI_SHM") && nl > 1);
    /* asymmetric wake-ups only if every rank of the node can take part */
    t->asym = node_all(node, all && !env_off("WEFT_MPI_MEMBARRIER") &&
                                 weft__membarrier_register());
    MPI_Allreduce(&cap, &capall, 1, MPI_UNSIGNED_LONG, MPI_MAX, node);
    int *world = weft__calloc((size_t)nl, sizeof *world);
    t->sh = weft__calloc((size_t)t->size, sizeof *t->sh);
    t->near = weft__calloc((size_t)nl, sizeof *t->near);
    int ok = node_all(node, all && world && t->sh && t->near);
    size_t one = weft__ring_size(capall);
    unsigned char *mine = NULL;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* own pages */
    if (ok && MPI_Win_allocate_shared((MPI_Aint)(one * (size_t)nl + 64), 1,
                                      info,
                                      node, &mine, &t->shwin) != MPI_SUCCESS)
        t->shwin = MPI_WIN_NULL;
    MPI_Info_free(&info);
    ok = ok && t->shwin != MPI_WIN_NULL;
    /* MPI aligns a segment less than a ring needs; the offset within a
     * page is the same in every process that maps it */
    mine = align64(mine);
    ok = node_all(node, ok);
    if (ok) {
        MPI_Allgather(&t->rank, 1, MPI_INT, world, 1, MPI_INT, node);
        for (int j = 0; j < nl; j++)
            weft__ring_init((weft__ring *)(mine + one * (size_t)j), capall);
        t->bell = (shbell *)(mine + one * me); /* our own slot: no ring */
        atomic_init(&t->bell->nap, 0);
        atomic_init(&t->bell->napping, NAP_NO);
    }
    for (int j = 0; ok && j < nl; j++) {
        MPI_Aint size;
        int unit;
        unsigned char *theirs = NULL;
        if (j == me)
            continue;
        MPI_Win_shared_query(t->shwin, j, &size, &unit, &theirs);
        theirs = align64(theirs);
        shpeer *sp = &t->sh[world[j]];
        weft__ring_tx_init(&sp->tx, (weft__ring *)(theirs + one * me), capall);
        weft__ring_rx_init(&sp->rx, (weft__ring *)(mine + one * j), capall);
        sp->bell = (shbell *)(theirs + one * j);
        t->near[t->nnear++] = world[j];
    }
    MPI_Barrier(node); /* every ring is initialised before any is written */
    MPI_Comm_free(&node);
    weft__free(world);
    if (!ok) {
        if (t->shwin != MPI_WIN_NULL)
            MPI_Win_free(&t->shwin);
        weft__free(t->sh);
        weft__free(t->near);
        t->sh = NULL;
        t->near = NULL;
        t->far = t->size > 1;
    }
}

static void shm_close_rings(weft_transport *t)
{
    if (t->shwin != MPI_WIN_NULL)
        MPI_Win_free(&t->shwin); /* collective: every rank closes */
    weft__free(t->sh);
    weft__free(t->near);
}

/* Collective over t->comm: the one-sided window goes, with the memory
 * still attached to it (no put or get in flight). */
static void win_close(weft_transport *t)
{
    if (t->win == MPI_WIN_NULL)
        return;
    while (t->regions) {
        mregion *r = t->regions;
        t->regions = r->next;
        MPI_Win_detach(t->win, r->addr);
        weft__free(r);
    }
    MPI_Win_unlock_all(t->win);
    MPI_Win_free(&t->win);
}

static int mpi_open(weft_transport **out, const weft_transport_params *p,
                    const weft_transport_events *ev)
{
    int inited = 0, provided;
    MPI_Initialized(&inited);
    weft_transport *t = weft__calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    if (!inited &&
        MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) !=
            MPI_SUCCESS) {
        weft__free(t);
        return -ECONNREFUSED;
    }
    if (inited)
        MPI_Query_thread(&provided);
    t->serialized = provided >= MPI_THREAD_SERIALIZED;
    t->we_init = !inited;
    prctl(PR_SET_TIMERSLACK, 1000ul); /* this thread's sleeps are short */
    t->spin_ns = SPIN_NS;
    MPI_Comm_dup(MPI_COMM_WORLD, &t->comm);
    MPI_Comm_set_errhandler(t->comm, MPI_ERRORS_RETURN);
    t->win = MPI_WIN_NULL; /* collective: every rank opens */
    if (MPI_Win_create_dynamic(MPI_INFO_NULL, t->comm, &t->win) ==
        MPI_SUCCESS) {
        MPI_Win_set_errhandler(t->win, MPI_ERRORS_RETURN);
        if (MPI_Win_lock_all(MPI_MODE_NOCHECK, t->win) != MPI_SUCCESS)
            MPI_Win_free(&t->win);
    }
    MPI_Comm_rank(t->comm, &t->rank);
    MPI_Comm_size(t->comm, &t->size);
    shm_open_rings(t);
    t->p = *p;
    t->ev = *ev;
    t->rxcap = WEFT__FRAME_LEN + WEFT_AM_MAX_HDR + INLINE;
    t->rxb[0] = weft__malloc((size_t)t->rxcap);
    t->rxb[1] = weft__malloc((size_t)t->rxcap);
    t->rreq = MPI_REQUEST_NULL;
    pthread_mutex_init(&t->qlock, NULL);
    pthread_mutex_init(&t->plock, NULL);
    if (!t->rxb[0] || !t->rxb[1]) {
        weft__free(t->rxb[0]);
        weft__free(t->rxb[1]);
        shm_close_rings(t);
        win_close(t);
        MPI_Comm_free(&t->comm);
        weft__free(t);
        return -ENOMEM;
    }
    post_recv(t);
    *out = t;
    return 0;
}

static int mpi_rank(const weft_transport *t) { return t->rank; }
static int mpi_size(const weft_transport *t) { return t->size; }

/* Write the frame of a message, its header and its payload (pay bytes,
 * the inline kind) at b; the bytes written. */
static size_t frame_write(const weft_transport *t, unsigned char *b,
                          unsigned handler, const void *hdr, size_t hdrlen,
                          const struct iovec *iov, int iovcnt, size_t pay)
{
    weft__frame f = {WEFT__FK_AM, handler, (uint32_t)t->rank,
                     (uint32_t)hdrlen, pay};
    weft__frame_encode(b, &f);
    if (hdrlen) /* (hdr may be NULL then) */
        memcpy(b + WEFT__FRAME_LEN, hdr, hdrlen);
    size_t off = WEFT__FRAME_LEN + hdrlen;
    for (int i = 0; i < iovcnt; off += iov[i].iov_len, i++)
        memcpy(b + off, iov[i].iov_base, iov[i].iov_len);
    return off;
}

static txmsg *msg_alloc(weft_transport *t, int dst, unsigned handler,
                       const void *hdr, size_t hdrlen,
                       const struct iovec *iov, int iovcnt, size_t pay)
{
    size_t inl = pay <= INLINE ? pay : 0;
    /* one block: the message, then its bytes (not zeroed: all written) */
    txmsg *m = weft__malloc(sizeof *m + WEFT__FRAME_LEN + hdrlen + inl);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    unsigned char *b = (unsigned char *)(m + 1);
    m->dst = dst;
    m->buf = b;
    if (inl || !pay) {
        m->buflen = frame_write(t, b, handler, hdr, hdrlen, iov, iovcnt, pay);
        return m;
    }
    m->buflen = frame_write(t, b, handler, hdr, hdrlen, NULL, 0, pay);
    if (iovcnt == 1) { /* the usual big payload: sent from where it is */
        m->pay = iov[0].iov_base;
        m->paylen = pay;
        return m;
    }
    m->packed = weft_bytes_new(pay);
    if (!m->packed) {
        weft__free(m);
        return NULL;
    }
    for (int i = 0, o = 0; i < iovcnt; o += (int)iov[i].iov_len, i++)
        memcpy(m->packed->data + o, iov[i].iov_base, iov[i].iov_len);
    m->pay = m->packed->data;
    m->paylen = pay;
    return m;
}

/* A message to send later (from a pass), done(arg, status) when sent. */
static txmsg *make_msg(weft_transport *t, int dst, unsigned handler,
                       const void *hdr, size_t hdrlen,
                       const struct iovec *iov, int iovcnt, size_t pay,
                       weft_send_done done, void *arg)
{
    txmsg *m = msg_alloc(t, dst, handler, hdr, hdrlen, iov, iovcnt, pay);
    if (m) {
        m->done = done;
        m->arg = arg;
        WEFT__NET_EV(WEFT__EV_QUEUED);
    }
    return m;
}

static void msg_end(txmsg *m, int status)
{
    if (m->done)
        m->done(m->arg, status);
    weft_bytes_free(m->packed);
    weft__free(m);
}

/* Is the bell in the shared window (its futex not private)? */
static bool bell_shared(const weft_transport *t)
{
    return t->bell != &t->own_bell;
}

/* Cut a nap of the communication thread short. It sets napping (seq_cst)
 * after reading nap and before sleeping on it; this bumps nap before
 * reading napping (seq_cst): either it sees napping and wakes the
 * thread, or the thread's sleep sees nap changed. */
static void kick(weft_transport *t)
{
    atomic_fetch_add_explicit(&t->bell->nap, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&t->bell->napping, memory_order_seq_cst))
        weft__futex_wake_in(&t->bell->nap, 1, bell_shared(t));
}

/* Publish the record reserved in sp's ring, then wake the reading
 * process's communication thread if it sleeps deep. That thread stores
 * napping, then looks at its rings: Dekker's handshake. Either all
 * seq_cst (the record's position and both sides' accesses to napping),
 * or, when every rank of the node registered for membarrier (t->asym),
 * asymmetric: the position is stored with release and napping read
 * after a compiler barrier only, and the napper runs a membarrier
 * between its store and its look, which it does once per deep nap,
 * where the writer's seq_cst store cost every message ~50 ns. Either
 * way, it sees the record or this sees it napping. */
static void ring_publish(const weft_transport *t, shpeer *sp)
{
    shbell *b = sp->bell;
    uint32_t napping;
    if (t->asym) {
        weft__ring_commit(&sp->tx, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
        napping = atomic_load_explicit(&b->napping, memory_order_relaxed);
    } else {
        weft__ring_commit(&sp->tx, memory_order_seq_cst);
        napping = atomic_load_explicit(&b->napping, memory_order_seq_cst);
    }
    if (napping == NAP_DEEP) {
        atomic_fetch_add_explicit(&b->nap, 1, memory_order_relaxed);
        weft__futex_wake_in(&b->nap, 1, true);
    }
}

/* Under plock: hand m to MPI. A small message usually completes at once
 * (MPI copies it out): then it ends here, else it waits on t->active for
 * a pass, and a napping communication thread is woken to make those
 * passes (a big message needs the sender's MPI to progress). */
static void mpi_isend(weft_transport *t, txmsg *m, bool ringed)
{
    int rc = MPI_SUCCESS;
    m->nreq = 0;
    /* a request counts once MPI started it: a failed MPI_Isend leaves
     * none (MPI_Testall on it aborted the job: MPI_ERR_REQUEST) */
    if (!ringed && (rc = MPI_Isend(m->buf, (int)m->buflen, MPI_BYTE,
                                   m->dst, TAG_AM, t->comm,
                                   &m->req[m->nreq])) == MPI_SUCCESS)
        m->nreq++;
    WEFT__NET_EV(WEFT__EV_ISEND);
    if (rc == MPI_SUCCESS && m->paylen &&
        (rc = MPI_Isend(m->pay, (int)m->paylen, MPI_BYTE, m->dst, TAG_PAY,
                        t->comm, &m->req[m->nreq])) == MPI_SUCCESS)
        m->nreq++;
    if (rc != MPI_SUCCESS) {
        /* not sent: done hears so, once a part MPI did start is through
         * with the buffers */
        m->err = -EHOSTDOWN;
        weft__log("net: mpi: a send to rank %d failed", m->dst);
        if (t->ev.peer_failed)
            t->ev.peer_failed(t->ev.ctx, m->dst, -EHOSTDOWN);
    }
    int flag = 0;
    MPI_Testall(m->nreq, m->req, &flag, MPI_STATUSES_IGNORE);
    if (flag) {
        msg_end(m, m->err);
        return;
    }
    m->next = t->active;
    t->active = m;
    kick(t);
}

/* Under plock: m's frame into the ring of its rank, if there is room
 * (true); a big payload follows over MPI. */
static bool ring_put(weft_transport *t, shpeer *sp, txmsg *m)
{
    unsigned char *d = weft__ring_reserve(&sp->tx, m->buflen);
    if (!d)
        return false;
    memcpy(d, m->buf, m->buflen);
    ring_publish(t, sp);
    if (m->paylen)
        mpi_isend(t, m, true);
    else
        msg_end(m, 0);
    return true;
}

/* dst's rings when it is a rank on this machine, else NULL. */
static shpeer *ring_peer(const weft_transport *t, int dst)
{
    shpeer *sp = t->sh ? &t->sh[dst] : NULL;
    return sp && sp->tx.r ? sp : NULL;
}

/* Under plock: hand m to MPI, or to the ring of a rank on this machine,
 * or, while that ring is full or others wait, to the end of the line. */
static void isend(weft_transport *t, txmsg *m)
{
    shpeer *sp = ring_peer(t, m->dst);
    if (!sp) {
        mpi_isend(t, m, false);
        return;
    }
    if (!sp->ph && ring_put(t, sp, m))
        return;
    m->next = NULL;
    if (sp->pt)
        sp->pt->next = m;
    else
        sp->ph = m;
    sp->pt = m;
    t->npend++;
    kick(t); /* the communication thread retries while any wait */
}

/* Under plock: move waiting messages into rings with room; true if any
 * moved. */
static bool ring_flush(weft_transport *t)
{
    bool any = false;
    for (int i = 0; i < t->nnear; i++) {
        shpeer *sp = &t->sh[t->near[i]];
        while (sp->ph) {
            txmsg *m = sp->ph, *n = m->next;
            if (!ring_put(t, sp, m))
                break;
            sp->ph = n;
            if (!n)
                sp->pt = NULL;
            t->npend--;
            any = true;
        }
    }
    return any;
}

/* Start the queued sends; true if there were any. Under plock. The
 * unlocked read of queued is a hint: a message it misses is sent by
 * the flush_after of its sender or of this pass. */
static bool start_sends(weft_transport *t)
{
    if (!weft__load_relaxed(&t->queued))
        return false;
    pthread_mutex_lock(&t->qlock);
    txmsg *m = t->qh;
    t->qh = t->qt = NULL;
    weft__store_relaxed(&t->queued, 0);
    pthread_mutex_unlock(&t->qlock);
    bool any = m != NULL;
    while (m) {
        txmsg *n = m->next;
        isend(t, m);
        m = n;
    }
    return any;
}

/* After a thread lets go of plock, or queued a message because another
 * thread held it: send whatever is queued, unless a thread is in MPI
 * again (it sends them, and runs this after it lets go). A sender that
 * failed to take plock and a holder that let go both run the seq_cst
 * fence between their write (queued, the unlock) and their read (the
 * lock, queued): at least one of them sees the other's write, so no
 * queued message is left behind with nobody in MPI. */
static void flush_after(weft_transport *t)
{
    if (!t->serialized) /* only the communication thread calls MPI */
        return;
    atomic_thread_fence(memory_order_seq_cst);
    while (weft__load_relaxed(&t->queued) && plock_try(t)) {
        start_sends(t);
        plock_drop(t);
        atomic_thread_fence(memory_order_seq_cst);
    }
}

/* The most payload a message may have to be written straight into a
 * ring from the sender's stack (no txmsg, no copy in between). */
#define DIRECT_PAY 192u

/* Under plock, after what is queued went out: a small message for a
 * rank on this machine goes straight into its ring when nothing waits
 * there before it; true if it went (and done ran). Building it on the
 * stack and copying it in one go keeps the reader, which polls that
 * line, from taking the line back between the writer's stores. */
static bool ring_direct(weft_transport *t, int dst, const unsigned char *b,
                        size_t len, weft_send_done done, void *arg)
{
    shpeer *sp = ring_peer(t, dst);
    if (!sp || sp->ph)
        return false;
    unsigned char *d = weft__ring_reserve(&sp->tx, len);
    if (!d)
        return false;
    /* stamped here, once it goes this way: a message that does not is
     * built again by make_msg, which stamps it then */
    WEFT__NET_EV(WEFT__EV_QUEUED);
    memcpy(d, b, len);
    ring_publish(t, sp);
    if (done)
        done(arg, 0);
    return true;
}

/* Under plock: send a message, after what other threads queued. */
static int send_locked(weft_transport *t, int dst, unsigned handler,
                       const void *hdr, size_t hdrlen,
                       const struct iovec *iov, int iovcnt, size_t pay,
                       weft_send_done done, void *arg)
{
    start_sends(t);
    /* (a rank elsewhere: its message is built once, below) */
    if (pay <= DIRECT_PAY && ring_peer(t, dst)) {
        unsigned char b[WEFT__FRAME_LEN + WEFT_AM_MAX_HDR + DIRECT_PAY];
        size_t len = frame_write(t, b, handler, hdr, hdrlen, iov, iovcnt, pay);
        if (ring_direct(t, dst, b, len, done, arg))
            return 0;
    }
    txmsg *m = make_msg(t, dst, handler, hdr, hdrlen, iov, iovcnt, pay,
                        done, arg);
    if (!m)
        return -ENOMEM;
    isend(t, m);
    return 0;
}

static int mpi_send(weft_transport *t, int dst, unsigned handler,
                    const void *hdr, size_t hdrlen, const struct iovec *iov,
                    int iovcnt, weft_send_done done, void *arg)
{
    int rc = weft__send_check(t->rank, t->size, dst, handler, hdrlen, iovcnt);
    if (rc)
        return rc;
    size_t pay = 0;
    for (int i = 0; i < iovcnt; i++)
        pay += iov[i].iov_len;
    /* MPI counts are ints: more is refused for good, not as a shortage
     * of memory that sending again would get past */
    if (pay > (size_t)INT32_MAX)
        return -EMSGSIZE;
    if (tl_held == t) /* a callback inside our own pass */
        return send_locked(t, dst, handler, hdr, hdrlen, iov, iovcnt, pay,
                           done, arg);
    if (t->serialized && plock_try(t)) {
        rc = send_locked(t, dst, handler, hdr, hdrlen, iov, iovcnt, pay,
                         done, arg);
        plock_drop(t);
        flush_after(t);
        return rc;
    }
    txmsg *m = make_msg(t, dst, handler, hdr, hdrlen, iov, iovcnt, pay,
                        done, arg);
    if (!m)
        return -ENOMEM;
    pthread_mutex_lock(&t->qlock);
    if (t->qt)
        t->qt->next = m;
    else
        t->qh = m;
    t->qt = m;
    weft__store_relaxed(&t->queued, 1);
    pthread_mutex_unlock(&t->qlock);
    /* The thread in MPI sends it in its next pass; if it has just left,
     * flush_after (here or in its own) sends it: see flush_after. */
    flush_after(t);
    return 0;
}

/* Complete the sends MPI has finished; true if any. */
static bool test_sends(weft_transport *t)
{
    bool any = false;
    for (txmsg **p = &t->active; *p;) {
        txmsg *m = *p;
        int flag = 0;
        MPI_Testall(m->nreq, m->req, &flag, MPI_STATUSES_IGNORE);
        if (!flag) {
            p = &m->next;
            continue;
        }
        *p = m->next;
        msg_end(m, m->err);
        any = true;
    }
    return any;
}

static void dropped(weft_transport *t, int src, const char *why)
{
    weft__log("net: mpi: dropped a message from rank %d: %s", src, why);
    if (t->ev.dropped)
        t->ev.dropped(t->ev.ctx);
}

static bool deliver(weft_transport *t, int src, const unsigned char *rx,
                    int count, bool stall);

/* Receive one message if one has come; true if so. The next receive is
 * posted (into the other buffer) before this one is delivered. */
static bool recv_one(weft_transport *t)
{
    int flag = 0, count = 0;
    MPI_Status st;
    int rc = MPI_Test(&t->rreq, &flag, &st);
    if (rc == MPI_SUCCESS && !flag)
        return false;
    unsigned char *rx = t->rxb[t->rcur];
    if (t->rreq != MPI_REQUEST_NULL) { /* failed and still active */
        MPI_Cancel(&t->rreq);
        MPI_Request_free(&t->rreq);
    }
    t->rcur ^= 1;
    post_recv(t);
    if (rc != MPI_SUCCESS) { /* MPI_ERR_TRUNCATE: more than INLINE */
        dropped(t, st.MPI_SOURCE, "oversized message, or a failed receive");
        return true;
    }
    WEFT__NET_EV(WEFT__EV_RECV);
    MPI_Get_count(&st, MPI_BYTE, &count);
    deliver(t, st.MPI_SOURCE, rx, count, false);
    return true;
}

/* A payload's memory. A message received over MPI has left its sender's
 * hands: a shortage is waited out, up to PAY_WAIT_MS, because dropping it
 * loses it for good (whoever waits for its answer would wait for ever),
 * and memory often comes back as tasks finish. A ring's record stays in
 * the ring instead (wait false): ring_recv tries it again later. */
#define PAY_WAIT_MS 1000
/* How soon a ring stalled for want of memory is tried again. */
#define STALL_RETRY_NS 1000000u

static weft_bytes *payload_new(int src, uint64_t len, bool wait)
{
    weft_bytes *b = weft_bytes_new(len);
    for (int ms = 0; !b && wait && ms < PAY_WAIT_MS; ms++) {
        if (ms == 0)
            weft__log("net: mpi: no memory for a %llu-byte payload from "
                      "rank %d: waiting for some", (unsigned long long)len,
                      src);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        b = weft_bytes_new(len);
    }
    return b;
}

/* Check the frame of count bytes at rx from src, take a big payload that
 * follows it over MPI, and hand the message to the node. False when the
 * message is left where it is, for want of memory (only with stall, a
 * ring's record: nothing taken, nothing delivered); true when delivered
 * or dropped. */
static bool deliver(weft_transport *t, int src, const unsigned char *rx,
                    int count, bool stall)
{
    weft__frame f;
    int frc = count < 0 ? -EINVAL
                        : weft__frame_decode(rx, (size_t)count,
                                             t->p.max_payload, &f);
    size_t head = WEFT__FRAME_LEN + (frc ? 0 : f.hdrlen);
    size_t inl = frc ? 0 : (size_t)count - head;
    if (frc || f.kind != WEFT__FK_AM || f.src != (uint32_t)src ||
        (size_t)count < head || (inl && inl != f.paylen) ||
        (!inl && f.paylen && f.paylen <= INLINE)) {
        dropped(t, src, "malformed frame");
        return true; /* (a big payload that follows is then unmatched:
                        only a broken peer sends this) */
    }
    weft_bytes *b = f.paylen ? payload_new(src, f.paylen, !stall) : NULL;
    if (f.paylen && !b) {
        if (stall)
            return false;
        /* a payload over INLINE follows over MPI: take it (a zero-byte
         * receive, which fails MPI_ERR_TRUNCATE and consumes it), or the
         * next big message from src would be matched with this one's */
        if (!inl)
            MPI_Recv(NULL, 0, MPI_BYTE, src, TAG_PAY, t->comm,
                     MPI_STATUS_IGNORE);
        dropped(t, src, "no memory for the payload");
        return true;
    }
    if (inl)
        memcpy(b->data, rx + head, inl);
    else if (f.paylen)
        MPI_Recv(b->data, (int)f.paylen, MPI_BYTE, src, TAG_PAY, t->comm,
                 MPI_STATUS_IGNORE);
    weft_am m = {src, f.handler, rx + WEFT__FRAME_LEN, f.hdrlen, b};
    t->ev.recv(t->ev.ctx, &m);
    WEFT__NET_EV(WEFT__EV_DELIVERED);
    weft_bytes_free(m.payload);
    return true;
}

/* src's ring sp stops (on) or goes on (off) for want of memory: its
 * front record of len bytes waits in the ring, so the writer's later
 * messages queue behind it, in order, and this thread naps no longer
 * than STALL_RETRY_NS while any ring is stalled. */
static void ring_stall(weft_transport *t, shpeer *sp, int src, bool on,
                       size_t len)
{
    sp->stalled = on;
    t->nstalled += on ? 1 : -1;
    if (on)
        weft__log("net: mpi: no memory for a %zu-byte message from rank "
                  "%d: its ring waits for some", len, src);
}

/* Deliver what the rings of this machine's ranks hold; true if any. A
 * record is given back to its writer once delivered. */
static bool ring_recv(weft_transport *t)
{
    bool any = false;
    for (int i = 0; i < t->nnear; i++) {
        int src = t->near[i];
        shpeer *sp = &t->sh[src];
        const unsigned char *rec;
        size_t len;
        int rc;
        while (!sp->broken && (rc = weft__ring_peek(&sp->rx, &rec, &len))) {
            if (rc < 0) {
                sp->broken = true;
                dropped(t, src, "its ring is malformed; no longer read");
                break;
            }
            WEFT__NET_EV(WEFT__EV_RECV);
            weft__ring_prefetch_next(&sp->rx);
            bool done = deliver(t, src, rec, (int)len, true);
            if (done != !sp->stalled) /* a stall begins or ends */
                ring_stall(t, sp, src, !done, len);
            if (!done)
                break; /* it stays in front; later ones wait behind it */
            weft__ring_release(&sp->rx);
            any = true;
        }
    }
    return any;
}

static void join_all(weft_transport *t)
{
    t->joined = true;
    for (int r = 0; r < t->size; r++)
        if (r != t->rank && t->ev.peer_joined)
            t->ev.peer_joined(t->ev.ctx, r);
}

/* ---- one-sided access ---- */

static int rma_errno(int rc)
{
    return rc == MPI_ERR_RMA_RANGE ? -EFAULT : -EIO;
}

/* Complete the puts and gets MPI has finished; true if any. */
static bool test_rma(weft_transport *t)
{
    bool any = false;
    for (rmaop **p = &t->rma; *p;) {
        rmaop *op = *p;
        int flag = 0;
        int rc = MPI_Test(&op->req, &flag, MPI_STATUS_IGNORE);
        if (rc == MPI_SUCCESS && !flag) {
            p = &op->next;
            continue;
        }
        if (rc == MPI_SUCCESS && op->put) /* at the target, not only sent */
            rc = MPI_Win_flush(op->dst, t->win);
        *p = op->next;
        if (op->done)
            op->done(op->arg, rc == MPI_SUCCESS ? 0 : rma_errno(rc));
        weft__free(op);
        any = true;
    }
    return any;
}

/* Take plock unless this thread holds it (inside a callback): true if
 * taken. Only where MPI may be called from this thread. */
static bool enter(weft_transport *t)
{
    if (tl_held == t)
        return false;
    plock_take(t);
    return true;
}

static void leave(weft_transport *t, bool took)
{
    if (!took)
        return;
    plock_drop(t);
    flush_after(t);
}

/* May this thread call MPI (now or after taking plock)? */
static bool may_call(const weft_transport *t)
{
    return t->win != MPI_WIN_NULL && (t->serialized || tl_held == t);
}

/* A region's key: its first 4 KiB unit (36 bits: addresses below 2^48)
 * and its length in 4 KiB units (28 bits: up to 1 TiB). */
#define KEY_UNIT 4096u
#define KEY_ADDR_BITS 36

static uint64_t key_of(const void *addr, size_t len)
{
    return (uint64_t)(uintptr_t)addr / KEY_UNIT |
           (uint64_t)(len / KEY_UNIT) << KEY_ADDR_BITS;
}

static uint64_t key_base(uint64_t rkey)
{
    return (rkey & ((1ull << KEY_ADDR_BITS) - 1)) * KEY_UNIT;
}

static uint64_t key_len(uint64_t rkey)
{
    return (rkey >> KEY_ADDR_BITS) * KEY_UNIT;
}

/* Is [raddr, raddr + len) inside the region rkey names? */
static bool key_covers(uint64_t rkey, uint64_t raddr, size_t len)
{
    uint64_t base = key_base(rkey), size = key_len(rkey);
    return raddr >= base && raddr - base <= size &&
           len <= size - (raddr - base);
}

static int mpi_reg(weft_transport *t, void *addr, size_t len, uint64_t *rkey)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!addr || !len || !rkey || (uintptr_t)addr % page || len % page ||
        (uint64_t)(uintptr_t)addr >= 1ull << 48 ||
        len / KEY_UNIT >= 1ull << (64 - KEY_ADDR_BITS))
        return -EINVAL;
    if (!may_call(t))
        return -ENOTSUP;
    mregion *r = weft__malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    bool took = enter(t);
    int rc = MPI_Win_attach(t->win, addr, (MPI_Aint)len);
    if (rc == MPI_SUCCESS) {
        r->addr = addr;
        r->next = t->regions;
        t->regions = r;
    }
    leave(t, took);
    if (rc != MPI_SUCCESS) {
        weft__free(r);
        return -ENOMEM;
    }
    *rkey = key_of(addr, len);
    return 0;
}

static int mpi_dereg(weft_transport *t, uint64_t rkey)
{
    if (!may_call(t))
        return -ENOTSUP;
    bool took = enter(t);
    mregion *gone = NULL;
    for (mregion **p = &t->regions; *p; p = &(*p)->next)
        if ((uint64_t)(uintptr_t)(*p)->addr == key_base(rkey)) {
            gone = *p;
            *p = gone->next;
            MPI_Win_detach(t->win, gone->addr);
            break;
        }
    leave(t, took);
    weft__free(gone);
    return gone ? 0 : -ENOENT;
}

static int mpi_rma(weft_transport *t, int dst, void *buf, size_t len,
                   uint64_t raddr, uint64_t rkey, bool put,
                   weft_send_done done, void *arg)
{
    int rc = weft__rma_check(t->rank, t->size, dst, buf, len);
    if (rc)
        return rc;
    if (!may_call(t))
        return -ENOTSUP;
    if (!key_covers(rkey, raddr, len)) {
        if (done)
            done(arg, -EFAULT);
        return 0;
    }
    rmaop *op = weft__malloc(sizeof *op);
    if (!op)
        return -ENOMEM;
    *op = (rmaop){.dst = dst, .put = put, .done = done, .arg = arg};
    bool took = enter(t);
    rc = put ? MPI_Rput(buf, (int)len, MPI_BYTE, dst, (MPI_Aint)raddr,
                        (int)len, MPI_BYTE, t->win, &op->req)
             : MPI_Rget(buf, (int)len, MPI_BYTE, dst, (MPI_Aint)raddr,
                        (int)len, MPI_BYTE, t->win, &op->req);
    if (rc == MPI_SUCCESS) {
        op->next = t->rma;
        t->rma = op;
        kick(t); /* a napping communication thread polls for it */
    }
    leave(t, took);
    if (rc != MPI_SUCCESS) {
        weft__free(op);
        if (done)
            done(arg, rma_errno(rc));
    }
    return 0;
}

static int mpi_put(weft_transport *t, int dst, const void *src, size_t len,
                   uint64_t raddr, uint64_t rkey, weft_send_done done,
                   void *arg)
{
    return mpi_rma(t, dst, (void *)src, len, raddr, rkey, true, done, arg);
}

static int mpi_get(weft_transport *t, int dst, void *buf, size_t len,
                   uint64_t raddr, uint64_t rkey, weft_send_done done,
                   void *arg)
{
    return mpi_rma(t, dst, buf, len, raddr, rkey, false, done, arg);
}

enum { PASS_BUSY = 1, PASS_GOT = 2 };

/* One pass over MPI: start the queued sends, complete the finished ones,
 * receive what came. PASS_GOT if it delivered a message, PASS_BUSY if it
 * did anything else. Under plock. */
static int pass(weft_transport *t)
{
    bool busy = start_sends(t);
    if (t->npend) /* still waiting counts as busy: keep polling */
        busy |= ring_flush(t) || t->npend;
    if (t->active)
        busy |= test_sends(t);
    if (t->rma) /* in flight counts as busy: keep polling for it */
        busy |= test_rma(t) || t->rma;
    bool got = t->nnear && ring_recv(t);
    while (t->far && recv_one(t)) /* replies their callbacks make go out
                                     at once */
        got = true;
    return (busy ? PASS_BUSY : 0) | (got ? PASS_GOT : 0);
}

/* A waiter's polls since it last stamped poll_at (this thread's). */
static _Thread_local unsigned tl_polls;

static int mpi_poll(weft_transport *t)
{
    if (!t->serialized)
        return -ENOTSUP;
    /* Stamped every CLOCK_EVERY polls of a thread (a microsecond or
     * two): the communication thread only asks whether a waiter polled
     * in the last POLLED_NS. */
    if (tl_polls++ % CLOCK_EVERY == 0)
        weft__store_relaxed(&t->poll_at, weft__now_ns());
    if (!plock_try(t))
        return -EBUSY;
    bool busy = t->joined && pass(t);
    plock_drop(t);
    flush_after(t);
    return busy;
}

/* Under no lock: is a ring record waiting? Takes plock; one that is
 * held means another thread is in a pass, which counts as yes. */
static bool rings_busy(weft_transport *t)
{
    if (!plock_try(t))
        return true;
    bool any = false;
    for (int k = 0; k < t->nnear && !any; k++) {
        const shpeer *sp = &t->sh[t->near[k]];
        any = !sp->broken && !sp->stalled &&
              weft__ring_ready(&sp->rx, memory_order_seq_cst);
    }
    plock_drop(t);
    flush_after(t);
    return any;
}

/* The communication thread sleeps until deadline or a kick (nap moved
 * from the value it read before its last pass); how is NAP_DEEP or
 * NAP_POLLED. */
static void nap_until(weft_transport *t, uint32_t nap, uint64_t deadline,
                      uint32_t how)
{
    /* seq_cst, and so is rings_busy's look: see ring_publish */
    atomic_store_explicit(&t->bell->napping, how, memory_order_seq_cst);
    bool deep = how == NAP_DEEP && t->nnear;
    /* the writers' half of the barrier (ring_publish); should it fail,
     * a record that came meanwhile waits at most SLEEP_NS */
    if (deep && t->asym && weft__membarrier_global())
        deadline = weft__now_ns() + SLEEP_NS;
    /* (a record that came since the pass: no sleep) */
    if (!deep || !rings_busy(t))
        weft__futex_wait_until_in(&t->bell->nap, nap, deadline,
                                  bell_shared(t));
    weft__store_relaxed(&t->bell->napping, NAP_NO);
}

/* Until when the communication thread may nap deep, from now. */
static uint64_t deep_deadline(const weft_transport *t, uint64_t now,
                              uint64_t end)
{
    uint64_t d = t->far ? now + SLEEP_NS : end;
    if (t->nstalled && d > now + STALL_RETRY_NS)
        d = now + STALL_RETRY_NS;
    return d;
}

static int mpi_progress(weft_transport *t, int64_t timeout_ns)
{
    uint64_t start = weft__now_ns(), last = start, now = start;
    unsigned idle = 0;
    uint64_t end = timeout_ns < 0 ? UINT64_MAX
                                  : start + (uint64_t)timeout_ns;
    for (unsigned i = 1;; i++) {
        /* read before woken: a wake after this cuts the sleep below */
        uint32_t nap = weft__load_acquire(&t->bell->nap);
        plock_take(t);
        if (!t->joined)
            join_all(t);
        int did = pass(t);
        plock_drop(t);
        flush_after(t);
        if (did & PASS_GOT) /* the node may have tasks to run: see net.h */
            return 0;
        if (did || i % CLOCK_EVERY == 0)
            now = weft__now_ns();
        if (did)
            last = now;
        /* acquire pairs with the release in mpi_wake (looked at first:
         * an exchange is a locked instruction every pass) */
        if ((weft__load_relaxed(&t->woken) &&
             atomic_exchange_explicit(&t->woken, false, memory_order_acquire))
            || now >= end || (did && now - start > 1000000u))
            return 0;
        uint64_t polled = weft__load_relaxed(&t->poll_at) + POLLED_NS;
        if (polled > now) /* a waiter polls: leave it the core */
            nap_until(t, nap, polled, NAP_POLLED);
        else if (now - last < t->spin_ns) {
            if (++idle % SPIN_YIELD == 0)
                sched_yield();
            else
                weft__cpu_relax();
        }
        else /* rings ring the bell: only MPI, and a stalled ring, need
                polling */
            nap_until(t, nap, deep_deadline(t, now, end), NAP_DEEP);
    }
}

/* Any thread: end a progress call (also a waiter that stops polling). */
static void mpi_wake(weft_transport *t)
{
    weft__store_relaxed(&t->poll_at, 0);
    weft__store_release(&t->woken, true);
    kick(t);
}

static void mpi_close(weft_transport *t)
{
    uint64_t end = weft__now_ns() + 2000000000u;
    plock_take(t); /* replies made by what recv_one delivers go out */
    start_sends(t);
    while ((t->active || t->npend || weft__load_relaxed(&t->queued)) &&
           weft__now_ns() < end) {
        start_sends(t);
        ring_flush(t);
        test_sends(t);
        if (t->nnear)
            ring_recv(t);
        while (recv_one(t)) {
        }
    }
    if (t->rreq != MPI_REQUEST_NULL) {
        MPI_Cancel(&t->rreq);
        MPI_Wait(&t->rreq, MPI_STATUS_IGNORE);
    }
    pthread_mutex_lock(&t->qlock);
    txmsg *q = t->qh;
    t->qh = t->qt = NULL;
    pthread_mutex_unlock(&t->qlock);
    while (q) {
        txmsg *n = q->next;
        msg_end(q, -ECANCELED);
        q = n;
    }
    for (int i = 0; i < t->nnear; i++) /* rings that stayed full */
        for (txmsg *m = t->sh[t->near[i]].ph, *n; m; m = n) {
            n = m->next;
            msg_end(m, -ECANCELED);
        }
    while (t->active) { /* a peer that never took them: give up */
        txmsg *m = t->active;
        t->active = m->next;
        for (int i = 0; i < m->nreq; i++) {
            MPI_Cancel(&m->req[i]);
            MPI_Request_free(&m->req[i]);
        }
        msg_end(m, -ECANCELED);
    }
    while (t->rma) { /* wait for them: the window goes next */
        rmaop *op = t->rma;
        t->rma = op->next;
        int rc = MPI_Wait(&op->req, MPI_STATUS_IGNORE);
        if (op->done)
            op->done(op->arg, rc == MPI_SUCCESS ? 0 : rma_errno(rc));
        weft__free(op);
    }
    win_close(t);
    shm_close_rings(t);
    plock_drop(t);
    MPI_Comm_free(&t->comm);
    if (t->we_init)
        MPI_Finalize();
    pthread_mutex_destroy(&t->qlock);
    pthread_mutex_destroy(&t->plock);
    weft__free(t->rxb[0]);
    weft__free(t->rxb[1]);
    weft__free(t);
}

const weft_transport_ops weft__mpi_ops = {
    .name = "mpi",
    .abi = WEFT_TRANSPORT_ABI,
    .caps = WEFT_TRANSPORT_MULTIPROCESS | WEFT_TRANSPORT_RMA,
    .open = mpi_open,
    .close = mpi_close,
    .rank = mpi_rank,
    .size = mpi_size,
    .send = mpi_send,
    .progress = mpi_progress,
    .wake = mpi_wake,
    .poll = mpi_poll,
    .put = mpi_put,
    .get = mpi_get,
    .reg = mpi_reg,
    .dereg = mpi_dereg,
};
