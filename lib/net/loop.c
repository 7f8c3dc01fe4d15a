/* The "loop" transport: ranks of one job inside one process, for tests.
 * A group (params.peers names it) has params.size endpoints; a send
 * copies the message into the destination's inbox and wakes it; progress
 * delivers the inbox on the calling (communication) thread, and poll on
 * any thread (a waiter's): dlock keeps one delivery at a time, in order.
 * put and get copy into or out of a region the peer registered, under the
 * group lock (which its dereg takes too), and complete at once. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "net_internal.h"

enum { IT_MSG, IT_JOIN, IT_FAIL };

typedef struct item {
    struct item *next;
    int kind, src, reason;
    unsigned handler;
    size_t hdrlen;
    weft_bytes *payload;
    unsigned char hdr[WEFT_AM_MAX_HDR];
} item;

typedef struct group group;

typedef struct region {
    struct region *next;
    uint64_t key;
    unsigned char *addr;
    size_t len;
} region;

struct weft_transport {
    region *regions; /* under the group lock */
    uint64_t next_key;
    group *g;
    int rank;
    bool dead; /* under the group lock */
    bool woken;
    weft_transport_events ev;
    pthread_cond_t cond; /* inbox not empty, or woken; group lock */
    pthread_mutex_t dlock; /* held while taking and delivering the inbox */
    item *head, *tail;
};

struct group {
    struct group *next;
    char *name;
    int size, opened, members;
    pthread_mutex_t lock;
    weft_transport **ep; /* size */
};

static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;
static group *groups;

/* under g->lock */
static void post(weft_transport *t, item *it)
{
    it->next = NULL;
    if (t->tail)
        t->tail->next = it;
    else
        t->head = it;
    t->tail = it;
    pthread_cond_signal(&t->cond);
}

/* under g->lock: tell t about rank (join or failure). */
static void post_event(weft_transport *t, int kind, int rank, int reason)
{
    item *it = weft__calloc(1, sizeof *it);
    if (!it)
        return; /* out of memory: the event is lost, like a packet */
    it->kind = kind;
    it->src = rank;
    it->reason = reason;
    post(t, it);
}

/* The group `name` of `size` members in *out, made if it is new. -EINVAL
 * when it exists with another size, -ENOMEM. Under groups_lock. */
static int group_get(const char *name, int size, group **out)
{
    group *g;
    for (g = groups; g; g = g->next)
        if (!strcmp(g->name, name)) {
            *out = g;
            return g->size == size ? 0 : -EINVAL;
        }
    g = weft__calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->name = weft__strdup(name);
    g->ep = weft__calloc((size_t)size, sizeof *g->ep);
    if (!g->name || !g->ep) {
        weft__free(g->name);
        weft__free(g->ep);
        weft__free(g);
        return -ENOMEM;
    }
    g->size = size;
    pthread_mutex_init(&g->lock, NULL);
    g->next = groups;
    groups = g;
    *out = g;
    return 0;
}

static void group_unlink(group *g)
{
    for (group **p = &groups; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    pthread_mutex_destroy(&g->lock);
    weft__free(g->name);
    weft__free(g->ep);
    weft__free(g);
}

/* under g->lock, once the last member opened: everyone meets everyone. */
static void all_join(group *g)
{
    for (int i = 0; i < g->size; i++)
        for (int j = 0; j < g->size; j++)
            if (i != j && g->ep[i] && g->ep[j])
                post_event(g->ep[i], IT_JOIN, j, 0);
}

static int loop_open(weft_transport **out, const weft_transport_params *p,
                     const weft_transport_events *ev)
{
    const char *name = p->peers ? p->peers : "default";
    if (p->size < 1 || p->rank < 0 || p->rank >= p->size)
        return -EINVAL;
    weft_transport *t = weft__calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->rank = p->rank;
    t->ev = *ev;
    pthread_cond_init(&t->cond, NULL);
    pthread_mutex_init(&t->dlock, NULL);
    pthread_mutex_lock(&groups_lock);
    group *g = NULL;
    int rc = group_get(name, p->size, &g);
    if (rc)
        goto fail;
    rc = -EADDRINUSE;
    pthread_mutex_lock(&g->lock);
    if (g->ep[p->rank] || g->opened == g->size) {
        pthread_mutex_unlock(&g->lock);
        goto fail;
    }
    t->g = g;
    g->ep[p->rank] = t;
    g->members++;
    if (++g->opened == g->size)
        all_join(g);
    pthread_mutex_unlock(&g->lock);
    pthread_mutex_unlock(&groups_lock);
    *out = t;
    return 0;
fail:
    pthread_mutex_unlock(&groups_lock);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->dlock);
    weft__free(t);
    return rc;
}

static void free_items(item *it)
{
    while (it) {
        item *n = it->next;
        weft_bytes_free(it->payload);
        weft__free(it);
        it = n;
    }
}

/* under g->lock: t is gone; its live peers hear of it. */
static void cut_off(weft_transport *t, int reason)
{
    group *g = t->g;
    for (int j = 0; j < g->size; j++)
        if (j != t->rank && g->ep[j] && !g->ep[j]->dead) {
            post_event(g->ep[j], IT_FAIL, t->rank, reason);
            if (reason == -EHOSTDOWN) /* a partition: both sides see it */
                post_event(t, IT_FAIL, j, reason);
        }
}

static void loop_close(weft_transport *t)
{
    group *g = t->g;
    pthread_mutex_lock(&groups_lock);
    pthread_mutex_lock(&g->lock);
    if (!t->dead)
        cut_off(t, -ECONNRESET);
    g->ep[t->rank] = NULL;
    bool last = --g->members == 0;
    pthread_mutex_unlock(&g->lock);
    if (last)
        group_unlink(g);
    pthread_mutex_unlock(&groups_lock);
    free_items(t->head);
    while (t->regions) {
        region *r = t->regions;
        t->regions = r->next;
        weft__free(r);
    }
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->dlock);
    weft__free(t);
}

int weft__loop_kill(const char *name, int rank)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&groups_lock);
    for (group *g = groups; g; g = g->next) {
        if (strcmp(g->name, name ? name : "default"))
            continue;
        pthread_mutex_lock(&g->lock);
        weft_transport *t = rank >= 0 && rank < g->size ? g->ep[rank] : NULL;
        if (t && !t->dead) {
            cut_off(t, -EHOSTDOWN);
            t->dead = true;
            rc = 0;
        }
        pthread_mutex_unlock(&g->lock);
    }
    pthread_mutex_unlock(&groups_lock);
    return rc;
}

static int loop_rank(const weft_transport *t) { return t->rank; }
static int loop_size(const weft_transport *t) { return t->g->size; }

static item *make_msg(int src, unsigned handler, const void *hdr,
                      size_t hdrlen, const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    item *it = weft__malloc(sizeof *it);
    weft_bytes *b = len ? weft_bytes_new(len) : NULL;
    if (!it || (len && !b)) {
        weft__free(it);
        weft_bytes_free(b);
        return NULL;
    }
    it->next = NULL;
    it->kind = IT_MSG;
    it->src = src;
    it->handler = handler;
    it->hdrlen = hdrlen;
    if (hdrlen) /* (hdr may be NULL then) */
        memcpy(it->hdr, hdr, hdrlen);
    it->payload = b;
    size_t off = 0;
    for (int i = 0; i < iovcnt; off += iov[i].iov_len, i++)
        memcpy(b->data + off, iov[i].iov_base, iov[i].iov_len);
    return it;
}

static int loop_send(weft_transport *t, int dst, unsigned handler,
                     const void *hdr, size_t hdrlen, const struct iovec *iov,
                     int iovcnt, weft_send_done done, void *done_arg)
{
    group *g = t->g;
    int rc = weft__send_check(t->rank, g->size, dst, handler, hdrlen, iovcnt);
    if (rc)
        return rc;
    item *it = make_msg(t->rank, handler, hdr, hdrlen, iov, iovcnt);
    if (!it)
        return -ENOMEM;
    pthread_mutex_lock(&g->lock);
    weft_transport *d = g->ep[dst];
    if (t->dead || !d || d->dead)
        rc = -EHOSTDOWN;
    else
        post(d, it);
    pthread_mutex_unlock(&g->lock);
    if (rc) {
        free_items(it);
        return rc;
    }
    if (done)
        done(done_arg, 0);
    return 0;
}

static void deliver(weft_transport *t, item *it)
{
    if (it->kind == IT_JOIN && t->ev.peer_joined)
        t->ev.peer_joined(t->ev.ctx, it->src);
    else if (it->kind == IT_FAIL && t->ev.peer_failed)
        t->ev.peer_failed(t->ev.ctx, it->src, it->reason);
    else if (it->kind == IT_MSG) {
        weft_am m = {it->src, it->handler, it->hdr, it->hdrlen, it->payload};
        t->ev.recv(t->ev.ctx, &m);
        it->payload = m.payload; /* NULL if the receiver kept it */
    }
}

/* under t->dlock: deliver what the inbox holds; true if anything. */
static bool deliver_inbox(weft_transport *t)
{
    pthread_mutex_lock(&t->g->lock);
    item *it = t->head;
    t->head = t->tail = NULL;
    pthread_mutex_unlock(&t->g->lock);
    bool any = it != NULL;
    while (it) {
        item *n = it->next;
        it->next = NULL;
        deliver(t, it);
        free_items(it);
        it = n;
    }
    return any;
}

static int loop_progress(weft_transport *t, int64_t timeout_ns)
{
    group *g = t->g;
    pthread_mutex_lock(&g->lock);
    if (!t->head && !t->woken && timeout_ns > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ns / 1000000000;
        ts.tv_nsec += timeout_ns % 1000000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cond, &g->lock, &ts);
    }
    t->woken = false;
    pthread_mutex_unlock(&g->lock);
    pthread_mutex_lock(&t->dlock);
    deliver_inbox(t);
    pthread_mutex_unlock(&t->dlock);
    return 0;
}

static int loop_poll(weft_transport *t)
{
    if (pthread_mutex_trylock(&t->dlock))
        return -EBUSY;
    bool any = deliver_inbox(t);
    pthread_mutex_unlock(&t->dlock);
    return any;
}

static void loop_wake(weft_transport *t)
{
    pthread_mutex_lock(&t->g->lock);
    t->woken = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->g->lock);
}

/* ---- one-sided access ---- */

static int loop_reg(weft_transport *t, void *addr, size_t len, uint64_t *rkey)
{
    if (!addr || !len || !rkey)
        return -EINVAL;
    region *r = weft__malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    pthread_mutex_lock(&t->g->lock);
    *r = (region){t->regions, ++t->next_key, addr, len};
    t->regions = r;
    *rkey = r->key;
    pthread_mutex_unlock(&t->g->lock);
    return 0;
}

static int loop_dereg(weft_transport *t, uint64_t rkey)
{
    region *gone = NULL;
    pthread_mutex_lock(&t->g->lock);
    for (region **p = &t->regions; *p; p = &(*p)->next)
        if ((*p)->key == rkey) {
            gone = *p;
            *p = gone->next;
            break;
        }
    pthread_mutex_unlock(&t->g->lock);
    weft__free(gone);
    return gone ? 0 : -ENOENT;
}

/* Copy between buf and dst's region rkey at raddr (to it when put). */
static int rma(weft_transport *t, int dst, void *buf, size_t len,
               uint64_t raddr, uint64_t rkey, bool put, weft_send_done done,
               void *arg)
{
    group *g = t->g;
    int rc = weft__rma_check(t->rank, g->size, dst, buf, len);
    if (rc)
        return rc;
    rc = -EFAULT;
    pthread_mutex_lock(&g->lock);
    weft_transport *d = g->ep[dst];
    if (t->dead || !d || d->dead)
        rc = -EHOSTDOWN;
    for (region *r = rc == -EFAULT ? d->regions : NULL; r; r = r->next) {
        uintptr_t a = (uintptr_t)r->addr;
        if (r->key != rkey || raddr < a || raddr - a > r->len ||
            len > r->len - (raddr - a))
            continue;
        if (put)
            memcpy((void *)(uintptr_t)raddr, buf, len);
        else
            memcpy(buf, (const void *)(uintptr_t)raddr, len);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&g->lock);
    if (done) /* every error here is known at the call: report it there */
        done(arg, rc);
    return 0;
}

static int loop_put(weft_transport *t, int dst, const void *src, size_t len,
                    uint64_t raddr, uint64_t rkey, weft_send_done done,
                    void *arg)
{
    return rma(t, dst, (void *)src, len, raddr, rkey, true, done, arg);
}

static int loop_get(weft_transport *t, int dst, void *buf, size_t len,
                    uint64_t raddr, uint64_t rkey, weft_send_done done,
                    void *arg)
{
    return rma(t, dst, buf, len, raddr, rkey, false, done, arg);
}

const weft_transport_ops weft__loop_ops = {
    .name = "loop",
    .abi = WEFT_TRANSPORT_ABI,
    .caps = WEFT_TRANSPORT_FAILURES | WEFT_TRANSPORT_RMA,
    .open = loop_open,
    .close = loop_close,
    .rank = loop_rank,
    .size = loop_size,
    .send = loop_send,
    .progress = loop_progress,
    .wake = loop_wake,
    .poll = loop_poll,
    .put = loop_put,
    .get = loop_get,
    .reg = loop_reg,
    .dereg = loop_dereg,
};
