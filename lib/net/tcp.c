/* The "tcp" transport: one stream per pair of ranks, driven by io_uring on
 * the communication thread (accept, connect, recv and sendmsg are ring
 * operations; a read of an eventfd wakes it for sends from other threads).
 *
 * Meeting: rank i listens on its own entry of the peer list and connects
 * to every rank below it; the first frame on a stream is a HELLO naming
 * the sender's rank. A stream that breaks is reconnected by its
 * connecting side every heartbeat interval; messages not completely
 * written are sent again whole on the new stream (the receiver drops a
 * frame cut by the break), so a message written into a broken stream may
 * be lost, but none goes twice: what a stream took whole is done with,
 * even when the stream was closed before its send's completion came
 * (tx below). Heartbeats go out on idle streams; a peer silent for
 * dead_timeout_ms (or never met within join_timeout_ms) is failed for
 * good: its messages complete with -EHOSTDOWN and it is never accepted
 * again. A bad frame (wire.h) closes its stream, counted and logged. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "net_internal.h"

#define RING_DEPTH 256
#define RX_CAP (256u << 10)
#define MAX_IOV 64
#define MAX_RANKS 4096
/* An accept that failed for want of descriptors or memory is tried again
 * after this long (ns). */
#define ACCEPT_PAUSE_NS 100000000

enum {
    OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CONNECT, OP_WAKE,
    OP_ACCEPT_PAUSE, /* the pause before an accept is tried again */
    OP_MASK = 7
};

typedef struct txmsg {
    struct txmsg *next;
    int dst;
    size_t total, off; /* bytes of the whole frame, bytes written */
    int iovcnt;
    struct iovec iov[1 + WEFT__AM_MAX_IOV]; /* [0] = head (frame + hdr) */
    weft_send_done done;
    void *arg;
    unsigned char head[WEFT__FRAME_LEN + WEFT_AM_MAX_HDR];
} txmsg;

typedef struct conn {
    struct conn *next; /* all connections */
    int fd, rank;      /* rank: -1 until its HELLO (accepted side) */
    int inflight;      /* ring operations on it */
    bool closing, sending, outbound;
    unsigned char *rx;
    size_t rx_len;
    weft__frame cur;   /* the frame whose payload is being received */
    unsigned char curhdr[WEFT_AM_MAX_HDR];
    weft_bytes *pay;
    size_t pay_got;
    bool in_pay, direct; /* direct: the recv in flight fills pay */
    /* no memory for cur's payload: nothing more is read from the stream
     * (TCP holds the sender back) until tick finds the memory */
    bool pay_wait;
    int sent_iov;      /* iovecs in the sendmsg in flight */
    struct msghdr mh;
    struct iovec iov[MAX_IOV];
    uint64_t born;
} conn;

typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    conn *c;           /* the stream in use, or NULL */
    txmsg *qh, *qt;    /* not yet completely written, in order */
    /* the stream whose sendmsg of qh.. is in flight, or NULL. Only its
     * completion says how much of the queue went out: until it comes, no
     * other stream sends from the queue and qh->off stays as it is, even
     * when that stream is closed meanwhile. */
    conn *tx;
    uint64_t last_rx, last_tx, next_connect;
    bool joined, ever_joined;
    _Atomic bool failed; /* read by send on any thread */
} peer;

struct weft_transport {
    struct io_uring ring;
    int lfd, efd, rank, size;
    weft_transport_params p;
    weft_transport_events ev;
    peer *peers;
    conn *conns;
    uint64_t opened_at, efd_buf;
    pthread_t owner;
    pthread_mutex_t qlock; /* the queue of sends from any thread */
    txmsg *inh, *int_;
    bool closing;
    bool ring_up; /* io_uring_queue_init succeeded */
    struct sockaddr_storage acc_addr;
    socklen_t acc_len;
    struct __kernel_timespec acc_pause;
    bool acc_failing; /* logged: accepts fail for want of resources */
};

static struct io_uring_sqe *sqe_get(weft_transport *t)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&t->ring);
    if (!s) { /* full: push what is queued to the kernel and retry */
        io_uring_submit(&t->ring);
        s = io_uring_get_sqe(&t->ring);
    }
    return s;
}

static void set_data(struct io_uring_sqe *s, void *p, int op)
{
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)p | (uint64_t)op);
}

/* ---- peers from the list ---- */

static int parse_one(const char *s, size_t len, peer *pe)
{
    char buf[256];
    if (len == 0 || len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *colon = strrchr(buf, ':');
    if (!colon)
        return -EINVAL;
    *colon = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(buf, colon + 1, &hints, &ai))
        return -EINVAL;
    memcpy(&pe->addr, ai->ai_addr, ai->ai_addrlen);
    pe->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int parse_peers(weft_transport *t, const char *list)
{
    int n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    if (n > MAX_RANKS)
        return -EINVAL;
    t->peers = weft__calloc((size_t)n, sizeof *t->peers);
    if (!t->peers)
        return -ENOMEM;
    t->size = n;
    const char *s = list;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (parse_one(s, len, &t->peers[i]))
            return -EINVAL;
        s += len + 1;
    }
    return 0;
}

/* ---- connections ---- */

static conn *conn_new(weft_transport *t, int fd, int rank, bool outbound)
{
    conn *c = weft__calloc(1, sizeof *c);
    unsigned char *rx = weft__malloc(RX_CAP);
    if (!c || !rx) {
        weft__free(c);
        weft__free(rx);
        return NULL;
    }
    c->fd = fd;
    c->rank = rank;
    c->outbound = outbound;
    c->rx = rx;
    c->born = weft__now_ns();
    c->next = t->conns;
    t->conns = c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void arm_recv(weft_transport *t, conn *c);
static void kick_send(weft_transport *t, peer *pe);

/* Stop using c: operations in flight end with errors; it is freed when
 * the last one completes (reap). */
static void conn_close(weft_transport *t, conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    shutdown(c->fd, SHUT_RDWR);
    if (c->rank >= 0 && t->peers[c->rank].c == c) {
        peer *pe = &t->peers[c->rank];
        pe->c = NULL;
        pe->joined = false;
        /* the message cut by the break goes again, whole (once the send
         * in flight on c, if any, has said how much it wrote: on_send) */
        if (pe->qh && pe->tx != c)
            pe->qh->off = 0;
    }
}

static void conn_free(conn *c)
{
    close(c->fd);
    weft_bytes_free(c->pay);
    weft__free(c->rx);
    weft__free(c);
}

static void conn_reap(weft_transport *t, conn *c)
{
    if (!c->closing || c->inflight)
        return;
    for (conn **p = &t->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    conn_free(c);
}

static void bad_stream(weft_transport *t, conn *c, const char *why)
{
    weft__log("net: tcp: closed a stream from %s%d: %s",
              c->rank >= 0 ? "rank " : "unidentified peer #", c->rank >= 0
              ? c->rank : c->fd, why);
    if (t->ev.dropped)
        t->ev.dropped(t->ev.ctx);
    conn_close(t, c);
}

static void fail_peer(weft_transport *t, int rank, int reason)
{
    peer *pe = &t->peers[rank];
    if (weft__load_relaxed(&pe->failed))
        return;
    /* release: send() on other threads reads it to refuse new messages */
    weft__store_release(&pe->failed, true);
    if (pe->c)
        conn_close(t, pe->c);
    for (txmsg *m = pe->qh, *n; m; m = n) {
        n = m->next;
        if (m->done)
            m->done(m->arg, -EHOSTDOWN);
        weft__free(m);
    }
    pe->qh = pe->qt = NULL;
    if (!t->closing && t->ev.peer_failed)
        t->ev.peer_failed(t->ev.ctx, rank, reason);
}

/* A stream to rank is up: use it, say hello if we dialled. */
static void peer_up(weft_transport *t, int rank, conn *c)
{
    peer *pe = &t->peers[rank];
    if (pe->c && pe->c != c)
        conn_close(t, pe->c);
    pe->c = c;
    pe->joined = true;
    pe->ever_joined = true;
    pe->last_rx = weft__now_ns();
    if (pe->qh && !pe->tx)
        pe->qh->off = 0;
    if (t->ev.peer_joined)
        t->ev.peer_joined(t->ev.ctx, rank);
}

/* ---- sending ---- */

static txmsg *frame_msg(int src, int dst, unsigned kind, unsigned handler,
                        const void *hdr, size_t hdrlen,
                        const struct iovec *iov, int iovcnt)
{
    txmsg *m = weft__malloc(sizeof *m);
    if (!m)
        return NULL;
    weft__frame f = {kind, handler, (uint32_t)src, (uint32_t)hdrlen, 0};
    for (int i = 0; i < iovcnt; i++)
        f.paylen += iov[i].iov_len;
    weft__frame_encode(m->head, &f);
    if (hdrlen)
        memcpy(m->head + WEFT__FRAME_LEN, hdr, hdrlen);
    m->next = NULL;
    m->dst = dst;
    m->off = 0;
    m->iov[0] = (struct iovec){m->head, WEFT__FRAME_LEN + hdrlen};
    m->iovcnt = 1;
    m->total = WEFT__FRAME_LEN + hdrlen + f.paylen;
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            m->iov[m->iovcnt++] = iov[i];
    m->done = NULL;
    m->arg = NULL;
    return m;
}

static void peer_push(peer *pe, txmsg *m, bool front)
{
    if (front) {
        m->next = pe->qh;
        pe->qh = m;
        if (!pe->qt)
            pe->qt = m;
        return;
    }
    m->next = NULL;
    if (pe->qt)
        pe->qt->next = m;
    else
        pe->qh = m;
    pe->qt = m;
}

static void tcp_wake(weft_transport *t)
{
    uint64_t one = 1;
    ssize_t w = write(t->efd, &one, sizeof one);
    (void)w; /* a full counter still wakes */
}

static int tcp_send(weft_transport *t, int dst, unsigned handler,
                    const void *hdr, size_t hdrlen, const struct iovec *iov,
                    int iovcnt, weft_send_done done, void *arg)
{
    int rc = weft__send_check(t->rank, t->size, dst, handler, hdrlen, iovcnt);
    if (rc)
        return rc;
    /* acquire pairs with fail_peer's release */
    if (weft__load_acquire(&t->peers[dst].failed))
        return -EHOSTDOWN;
    txmsg *m = frame_msg(t->rank, dst, WEFT__FK_AM, handler, hdr, hdrlen,
                         iov, iovcnt);
    if (!m)
        return -ENOMEM;
    m->done = done;
    m->arg = arg;
    pthread_mutex_lock(&t->qlock);
    bool first = !t->inh;
    if (t->int_)
        t->int_->next = m;
    else
        t->inh = m;
    t->int_ = m;
    pthread_mutex_unlock(&t->qlock);
    if (first && !pthread_equal(pthread_self(), t->owner))
        tcp_wake(t);
    return 0;
}

/* Move the messages from other threads to their peers' queues. */
static void drain(weft_transport *t)
{
    pthread_mutex_lock(&t->qlock);
    txmsg *m = t->inh;
    t->inh = t->int_ = NULL;
    pthread_mutex_unlock(&t->qlock);
    while (m) {
        txmsg *n = m->next;
        peer *pe = &t->peers[m->dst];
        if (weft__load_relaxed(&pe->failed)) {
            if (m->done)
                m->done(m->arg, -EHOSTDOWN);
            weft__free(m);
        } else {
            peer_push(pe, m, false);
            kick_send(t, pe);
        }
        m = n;
    }
}

/* Start one sendmsg of as much of pe's queue as fits. */
static void kick_send(weft_transport *t, peer *pe)
{
    conn *c = pe->c;
    if (!c || !pe->joined || c->sending || c->closing || !pe->qh || pe->tx)
        return;
    int n = 0;
    for (txmsg *m = pe->qh; m && n < MAX_IOV; m = m->next) {
        size_t skip = m == pe->qh ? m->off : 0;
        for (int i = 0; i < m->iovcnt && n < MAX_IOV; i++) {
            struct iovec v = m->iov[i];
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            v.iov_base = (char *)v.iov_base + skip;
            v.iov_len -= skip;
            skip = 0;
            c->iov[n++] = v;
        }
    }
    struct io_uring_sqe *s = sqe_get(t);
    if (!s)
        return;
    memset(&c->mh, 0, sizeof c->mh);
    c->mh.msg_iov = c->iov;
    c->mh.msg_iovlen = (size_t)n;
    io_uring_prep_sendmsg(s, c->fd, &c->mh, MSG_NOSIGNAL);
    set_data(s, c, OP_SEND);
    c->sending = true;
    pe->tx = c;
    c->inflight++;
    pe->last_tx = weft__now_ns();
}

/* res bytes of pe's queue were written. */
static void sent(peer *pe, size_t res)
{
    while (pe->qh && res) {
        txmsg *m = pe->qh;
        size_t left = m->total - m->off;
        if (res < left) {
            m->off += res;
            return;
        }
        res -= left;
        pe->qh = m->next;
        if (!pe->qh)
            pe->qt = NULL;
        if (m->done)
            m->done(m->arg, 0);
        weft__free(m);
    }
}

static void on_send(weft_transport *t, conn *c, int res)
{
    c->sending = false;
    peer *pe = &t->peers[c->rank];
    pe->tx = NULL; /* (a sending stream is its peer's tx: kick_send) */
    if (c->closing) {
        /* The stream was closed (by this side: a bad frame, a newer
         * stream) after the kernel took these bytes. The messages they
         * complete went out and the peer may have read them: they are
         * done, not sent again on the next stream, where they would be
         * delivered twice. The one cut goes again whole. */
        if (res > 0)
            sent(pe, (size_t)res);
        if (pe->qh)
            pe->qh->off = 0;
        kick_send(t, pe); /* a newer stream may be waiting for the queue */
        return;
    }
    if (res < 0) {
        conn_close(t, c);
        return;
    }
    sent(pe, (size_t)res);
    kick_send(t, pe);
}

/* ---- receiving ---- */

static void arm_recv(weft_transport *t, conn *c)
{
    struct io_uring_sqe *s = sqe_get(t);
    if (!s) {
        conn_close(t, c);
        return;
    }
    size_t want = c->pay ? c->pay->len - c->pay_got : 0;
    c->direct = c->in_pay && want >= RX_CAP / 2;
    if (c->direct) /* a big payload: straight in, no copy */
        io_uring_prep_recv(s, c->fd, c->pay->data + c->pay_got, want, 0);
    else
        io_uring_prep_recv(s, c->fd, c->rx + c->rx_len, RX_CAP - c->rx_len,
                           0);
    set_data(s, c, OP_RECV);
    c->inflight++;
}

static void deliver(weft_transport *t, conn *c)
{
    weft_am m = {c->rank, c->cur.handler, c->curhdr, c->cur.hdrlen, c->pay};
    c->pay = NULL;
    c->in_pay = false;
    t->ev.recv(t->ev.ctx, &m);
    weft_bytes_free(m.payload);
}

/* Allocate the payload of the frame in c->cur. 0, or 1 when there is no
 * memory for it: the stream then stalls (pay_wait) instead of closing,
 * because closing would lose a message that its sender counts as sent;
 * tick tries again, and a stall that outlasts the dead timeout ends as
 * the peer's failure (its heartbeats are not read meanwhile). */
static int start_payload(conn *c)
{
    c->pay = weft_bytes_new(c->cur.paylen);
    if (!c->pay) {
        if (!c->pay_wait)
            weft__log("net: tcp: no memory for a %llu-byte payload from "
                      "rank %d: waiting for some",
                      (unsigned long long)c->cur.paylen, c->rank);
        c->pay_wait = true;
        return 1;
    }
    c->pay_wait = false;
    c->pay_got = 0;
    c->in_pay = true;
    return 0;
}

/* A frame header arrived on c (its header bytes at h). 0, -1 when the
 * stream was closed, 1 when it stalled (start_payload). */
static int on_frame(weft_transport *t, conn *c, const weft__frame *f,
                    const unsigned char *h)
{
    if (f->kind == WEFT__FK_HELLO) {
        if (c->rank >= 0 || c->outbound || f->src >= (uint32_t)t->size ||
            (int)f->src == t->rank ||
            weft__load_relaxed(&t->peers[f->src].failed)) {
            bad_stream(t, c, "unexpected hello");
            return -1;
        }
        c->rank = (int)f->src;
        peer_up(t, c->rank, c);
        kick_send(t, &t->peers[c->rank]);
        return 0;
    }
    if (c->rank < 0 || f->src != (uint32_t)c->rank) {
        bad_stream(t, c, "frame before hello, or from the wrong rank");
        return -1;
    }
    if (f->kind == WEFT__FK_BYE) {
        fail_peer(t, c->rank, -ECONNRESET);
        return -1;
    }
    if (f->kind == WEFT__FK_BEAT)
        return 0;
    c->cur = *f;
    memcpy(c->curhdr, h, f->hdrlen);
    return start_payload(c);
}

/* Consume c->rx: complete payloads and frames. 0, -1 (closed) or 1
 * (stalled for want of memory, see start_payload). */
static int parse(weft_transport *t, conn *c)
{
    size_t pos = 0;
    int rc = 0;
    while (!rc) {
        size_t avail = c->rx_len - pos;
        if (c->in_pay) {
            size_t k = c->pay->len - c->pay_got;
            k = k < avail ? k : avail;
            memcpy(c->pay->data + c->pay_got, c->rx + pos, k);
            c->pay_got += k;
            pos += k;
            if (c->pay_got < c->pay->len)
                break;
            deliver(t, c);
            continue;
        }
        weft__frame f;
        int d = weft__frame_decode(c->rx + pos, avail, t->p.max_payload, &f);
        if (d == -EAGAIN || (!d && avail < WEFT__FRAME_LEN + f.hdrlen))
            break;
        if (d) {
            bad_stream(t, c, d == -EMSGSIZE ? "oversized frame"
                             : d == -EPROTONOSUPPORT ? "other wire version"
                                                     : "malformed frame");
            return -1;
        }
        pos += WEFT__FRAME_LEN + f.hdrlen;
        rc = on_frame(t, c, &f, c->rx + pos - f.hdrlen);
    }
    memmove(c->rx, c->rx + pos, c->rx_len - pos);
    c->rx_len -= pos;
    return rc;
}

static void on_recv_done(weft_transport *t, conn *c, int res)
{
    if (c->closing)
        return;
    if (res <= 0) {
        conn_close(t, c); /* broken: the dialler reconnects */
        return;
    }
    if (c->rank >= 0)
        t->peers[c->rank].last_rx = weft__now_ns();
    if (c->direct) {
        c->pay_got += (size_t)res; /* went straight into the payload */
        if (c->pay_got == c->pay->len)
            deliver(t, c);
    } else {
        c->rx_len += (size_t)res;
        if (parse(t, c))
            return; /* closed, or stalled: no recv until resumed */
    }
    if (!c->closing)
        arm_recv(t, c);
}

/* A stalled stream: try the payload's memory again; when it comes, take
 * in what was already received and read on. */
static void resume(weft_transport *t, conn *c)
{
    if (start_payload(c) || parse(t, c))
        return;
    if (!c->closing)
        arm_recv(t, c);
}

/* ---- accepting and dialling ---- */

static void arm_accept(weft_transport *t)
{
    struct io_uring_sqe *s = sqe_get(t);
    if (!s)
        return;
    t->acc_len = sizeof t->acc_addr;
    io_uring_prep_accept(s, t->lfd, (struct sockaddr *)&t->acc_addr,
                         &t->acc_len, SOCK_CLOEXEC);
    set_data(s, NULL, OP_ACCEPT);
}

/* Wait for a write to the eventfd (tcp_wake, or a send from another
 * thread). */
static void arm_wake(weft_transport *t)
{
    struct io_uring_sqe *s = sqe_get(t);
    if (!s)
        return;
    io_uring_prep_read(s, t->efd, &t->efd_buf, sizeof t->efd_buf, 0);
    set_data(s, NULL, OP_WAKE);
}

/* Try the accept again in ACCEPT_PAUSE_NS (OP_ACCEPT_PAUSE). false when
 * the ring has no room for the timeout. */
static bool pause_accept(weft_transport *t)
{
    struct io_uring_sqe *s = sqe_get(t);
    if (!s)
        return false;
    t->acc_pause = (struct __kernel_timespec){0, ACCEPT_PAUSE_NS};
    io_uring_prep_timeout(s, &t->acc_pause, 0, 0);
    set_data(s, NULL, OP_ACCEPT_PAUSE);
    return true;
}

static void on_accept(weft_transport *t, int res)
{
    if (res >= 0) {
        t->acc_failing = false;
        conn *c = conn_new(t, res, -1, false);
        if (c)
            arm_recv(t, c);
        else
            close(res);
    }
    if (t->closing)
        return;
    /* Out of descriptors (this process's or the system's) or of memory:
     * the connection stays in the backlog, and an accept armed at once
     * fails at once again, for as long as the shortage lasts, with this
     * thread spinning on it. Pause, as servers do. */
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
        res == -ENOMEM) {
        if (!t->acc_failing)
            weft__log("net: tcp: cannot accept a connection: %s; trying "
                      "again every %d ms", strerror(-res),
                      ACCEPT_PAUSE_NS / 1000000);
        t->acc_failing = true;
        if (pause_accept(t))
            return;
    }
    arm_accept(t);
}

static void dial(weft_transport *t, int rank)
{
    peer *pe = &t->peers[rank];
    int fd = socket(pe->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    conn *c = conn_new(t, fd, rank, true);
    struct io_uring_sqe *s = c ? sqe_get(t) : NULL;
    if (!s) {
        if (c)
            conn_close(t, c);
        else
            close(fd);
        return;
    }
    io_uring_prep_connect(s, fd, (struct sockaddr *)&pe->addr, pe->addrlen);
    set_data(s, c, OP_CONNECT);
    c->inflight++;
    pe->c = c; /* pending: joined only once connected */
}

static void on_connect(weft_transport *t, conn *c, int res)
{
    peer *pe = &t->peers[c->rank];
    if (c->closing)
        return;
    if (res < 0) {
        conn_close(t, c);
        return;
    }
    txmsg *h = frame_msg(t->rank, c->rank, WEFT__FK_HELLO, 0, NULL, 0, NULL,
                         0);
    if (!h) {
        conn_close(t, c);
        return;
    }
    peer_up(t, c->rank, c);
    peer_push(pe, h, true); /* the first frame of the stream */
    arm_recv(t, c);
    kick_send(t, pe);
}

/* ---- time ---- */

static void beat(weft_transport *t, peer *pe, int rank)
{
    txmsg *m = frame_msg(t->rank, rank, WEFT__FK_BEAT, 0, NULL, 0, NULL, 0);
    if (!m)
        return;
    peer_push(pe, m, false);
    kick_send(t, pe);
}

/* Heartbeats, reconnections, deaths; returns ns until the next tick. */
static uint64_t tick(weft_transport *t)
{
    uint64_t now = weft__now_ns(), hb = (uint64_t)t->p.heartbeat_ms * 1000000u;
    uint64_t dead = (uint64_t)t->p.dead_timeout_ms * 1000000u;
    uint64_t join = (uint64_t)t->p.join_timeout_ms * 1000000u;
    for (int r = 0; r < t->size; r++) {
        peer *pe = &t->peers[r];
        if (r == t->rank || weft__load_relaxed(&pe->failed))
            continue;
        if (pe->ever_joined ? now - pe->last_rx > dead
                            : now - t->opened_at > join) {
            fail_peer(t, r, -ETIMEDOUT);
            continue;
        }
        if (pe->joined && now - pe->last_tx >= hb)
            beat(t, pe, r);
        /* (not while a closed stream's send is in flight: the hello
         * goes in front of the queue that send is still taking from) */
        if (!pe->c && !pe->tx && r < t->rank && now >= pe->next_connect) {
            pe->next_connect = now + hb;
            dial(t, r);
        }
    }
    /* streams that never said hello are dropped after the dead timeout;
     * stalled ones try again. A closed stream with no operation in
     * flight gets no completion to reap it (a stalled one, whose peer
     * was failed above, has no recv armed): it goes here. */
    for (conn *c = t->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing) {
            conn_reap(t, c);
            continue;
        }
        if (c->rank < 0 && now - c->born > dead)
            bad_stream(t, c, "no hello");
        else if (c->pay_wait)
            resume(t, c);
    }
    return hb / 2;
}

static void complete(weft_transport *t, struct io_uring_cqe *cqe)
{
    uint64_t d = io_uring_cqe_get_data64(cqe);
    int op = (int)(d & OP_MASK);
    conn *c = (conn *)(uintptr_t)(d & ~(uint64_t)OP_MASK);
    switch (op) {
    case OP_ACCEPT: on_accept(t, cqe->res); return;
    case OP_ACCEPT_PAUSE:
        if (!t->closing)
            arm_accept(t);
        return;
    case OP_WAKE:
        if (!t->closing)
            arm_wake(t);
        return;
    case OP_RECV: c->inflight--; on_recv_done(t, c, cqe->res); break;
    case OP_SEND: c->inflight--; on_send(t, c, cqe->res); break;
    case OP_CONNECT: c->inflight--; on_connect(t, c, cqe->res); break;
    default: return;
    }
    conn_reap(t, c);
}

static int tcp_progress(weft_transport *t, int64_t timeout_ns)
{
    static const uint64_t never = UINT64_MAX;
    uint64_t next = tick(t);
    drain(t);
    uint64_t wait = timeout_ns < 0 ? never : (uint64_t)timeout_ns;
    wait = wait < next ? wait : next;
    struct __kernel_timespec ts = {(long long)(wait / 1000000000u),
                                   (long long)(wait % 1000000000u)};
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1,
                                              &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
        rc != -EBUSY)
        return rc;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&t->ring, head, cqe) {
        complete(t, cqe);
        seen++;
    }
    io_uring_cq_advance(&t->ring, seen);
    drain(t);
    io_uring_submit(&t->ring);
    return 0;
}

/* ---- open and close ---- */

static int listen_on(weft_transport *t)
{
    peer *me = &t->peers[t->rank];
    t->lfd = socket(me->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->lfd < 0)
        return -errno;
    int one = 1;
    setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(t->lfd, (struct sockaddr *)&me->addr, me->addrlen) ||
        listen(t->lfd, 64)) {
        int e = errno;
        weft__log("net: tcp: cannot listen on the address of rank %d: %s",
                  t->rank, strerror(e));
        return -e;
    }
    return 0;
}

static int setup(weft_transport *t, const weft_transport_params *p)
{
    if (!p->peers || !*p->peers) {
        weft__log("net: tcp needs a peer list (WEFT_PEERS=host:port,...)");
        return -EINVAL;
    }
    int rc = parse_peers(t, p->peers);
    if (rc)
        return rc;
    if (p->rank < 0 || p->rank >= t->size)
        return -EINVAL;
    t->rank = p->rank;
    rc = io_uring_queue_init(RING_DEPTH, &t->ring, 0);
    if (rc)
        return rc;
    t->ring_up = true;
    weft__ring_opened();
    t->efd = eventfd(0, EFD_CLOEXEC);
    if (t->efd < 0)
        return -errno;
    rc = listen_on(t);
    if (rc)
        return rc;
    arm_accept(t);
    arm_wake(t);
    io_uring_submit(&t->ring);
    return 0;
}

static void teardown(weft_transport *t)
{
    if (t->lfd >= 0)
        close(t->lfd);
    if (t->efd >= 0)
        close(t->efd);
    if (t->ring_up) {
        weft__ring_closing();
        io_uring_queue_exit(&t->ring);
    }
    pthread_mutex_destroy(&t->qlock);
    weft__free(t->peers);
    weft__free(t);
}

static int tcp_open(weft_transport **out, const weft_transport_params *p,
                    const weft_transport_events *ev)
{
    weft_transport *t = weft__calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->p = *p;
    t->ev = *ev;
    t->lfd = t->efd = -1;
    t->owner = pthread_self();
    t->opened_at = weft__now_ns();
    pthread_mutex_init(&t->qlock, NULL);
    int rc = setup(t, p);
    if (rc) {
        teardown(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Say goodbye on every stream, give it a moment to go out, then let go
 * of everything. */
static void tcp_close(weft_transport *t)
{
    drain(t);
    for (int r = 0; r < t->size; r++) {
        peer *pe = &t->peers[r];
        if (r == t->rank || !pe->joined || weft__load_relaxed(&pe->failed))
            continue;
        txmsg *m = frame_msg(t->rank, r, WEFT__FK_BYE, 0, NULL, 0, NULL, 0);
        if (m) {
            peer_push(pe, m, false);
            kick_send(t, pe);
        }
    }
    uint64_t until = weft__now_ns() + 200000000u;
    for (bool busy = true; busy && weft__now_ns() < until;) {
        tcp_progress(t, 10000000);
        busy = false;
        for (int r = 0; r < t->size; r++)
            busy |= t->peers[r].qh && t->peers[r].joined;
    }
    t->closing = true;
    for (int r = 0; r < t->size; r++)
        if (r != t->rank)
            fail_peer(t, r, -ECONNRESET);
    for (conn *c = t->conns; c; c = c->next)
        conn_close(t, c);
    close(t->lfd);
    t->lfd = -1;
    uint64_t end = weft__now_ns() + 1000000000u;
    while (t->conns && weft__now_ns() < end)
        tcp_progress(t, 10000000);
    while (t->conns) { /* the kernel kept an operation: free anyway */
        conn *c = t->conns;
        t->conns = c->next;
        conn_free(c);
    }
    teardown(t);
}

static int tcp_rank(const weft_transport *t) { return t->rank; }
static int tcp_size(const weft_transport *t) { return t->size; }


const weft_transport_ops weft__tcp_ops = {
    .name = "tcp",
    .abi = WEFT_TRANSPORT_ABI,
    .caps = WEFT_TRANSPORT_FAILURES | WEFT_TRANSPORT_MULTIPROCESS,
    .open = tcp_open,
    .close = tcp_close,
    .rank = tcp_rank,
    .size = tcp_size,
    .send = tcp_send,
    .progress = tcp_progress,
    .wake = tcp_wake,
};
