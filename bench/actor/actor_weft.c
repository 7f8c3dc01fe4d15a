/* The Savina workloads (actor_work.h) on weft actors, written only against
 * <weft.h>: weft_actor_spawn, weft_send, weft_actor_stop. Every message is
 * one small struct copied into the mailbox; the main thread starts a run
 * with a send and sleeps on a condition variable that the actor which
 * sees the end signals. -b BATCH sets the activation batch (the sweep
 * that chose WEFT_ACTOR_BATCH). */
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

#include <weft.h>

#include "actor_work.h"
#include "bench_weft.h"

#define PROG "actor-weft"

static weft_runtime *rt;
static int batch; /* 0 = the default */

static void die(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s failed: %s (%d)\n", what, strerror(-rc), rc);
    exit(1);
}

/* ---- the end of a run: one signal from an actor to the main thread */

static pthread_mutex_t end_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t end_cv = PTHREAD_COND_INITIALIZER;
static int ended;
static bench_check end_value;

static void finish(bench_check v)
{
    pthread_mutex_lock(&end_mu);
    end_value = v;
    ended = 1;
    pthread_cond_signal(&end_cv);
    pthread_mutex_unlock(&end_mu);
}

static bench_check await_end(void)
{
    pthread_mutex_lock(&end_mu);
    while (!ended)
        pthread_cond_wait(&end_cv, &end_mu);
    ended = 0;
    pthread_mutex_unlock(&end_mu);
    return end_value;
}

/* A countdown shared by the actors of a run: the one that takes it to 0
 * ends the run. */
static _Atomic long left;
static _Atomic long total;

static void count_down(long add)
{
    atomic_fetch_add_explicit(&total, add, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&left, 1, memory_order_acq_rel) == 1)
        finish((bench_check)atomic_load(&total));
}

/* ---- messages and actors */

typedef struct msg {
    int kind;
    int color;
    long val;
    weft_actor *from;
} msg;

enum { START, PING, PONG, INC, GET, RESULT, TOKEN, WORK, MEET, MATE, STOP,
       COUNT };

static void post(weft_actor *to, int kind, long val, weft_actor *from,
                 int color)
{
    msg m = {kind, color, val, from};
    int rc = weft_send(to, &m, sizeof m, 0);
    if (rc)
        die("weft_send", rc);
}

static weft_actor *spawn(const weft_actor_class *c, void *arg)
{
    weft_actor_opts o = weft_actor_opts_default();
    o.batch = batch;
    weft_actor *a;
    int rc = weft_actor_spawn(rt, c, arg, &o, &a);
    if (rc)
        die("weft_actor_spawn", rc);
    return a;
}

static void drop(weft_actor *a)
{
    weft_actor_stop(a, WEFT_STOP_NOW, NULL);
    weft_actor_release(a);
}

/* ---- pingpong */

struct pp { weft_actor *peer; long n, got; };

static int pp_init(void *st, void *arg)
{
    ((struct pp *)st)->peer = arg;
    return 0;
}

static int ping_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)n;
    struct pp *s = st;
    msg *m = p;
    if (m->kind == START) {
        s->n = m->val;
        s->got = 0;
    } else if (++s->got == s->n) {
        finish((bench_check)s->got);
        return 0;
    }
    post(s->peer, PING, 0, weft_actor_self(cx), 0);
    return 0;
}

static int pong_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)st;
    (void)n;
    post(((msg *)p)->from, PONG, 0, NULL, 0);
    return 0;
}

static const weft_actor_class PING_C = {
    .state_size = sizeof(struct pp), .init = pp_init, .receive = ping_recv};
static const weft_actor_class PONG_C = {.receive = pong_recv};

static bench_check pingpong(long n)
{
    weft_actor *pong = spawn(&PONG_C, NULL), *ping = spawn(&PING_C, pong);
    post(ping, START, n, NULL, 0);
    bench_check c = await_end();
    drop(ping);
    drop(pong);
    return c;
}

/* ---- counting */

struct counter { long sum; };
struct producer { weft_actor *counter; };

static int counter_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)n;
    struct counter *s = st;
    msg *m = p;
    if (m->kind == INC)
        s->sum += m->val;
    else
        post(m->from, RESULT, s->sum, NULL, 0);
    return 0;
}

static int producer_init(void *st, void *arg)
{
    ((struct producer *)st)->counter = arg;
    return 0;
}

static int producer_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)n;
    struct producer *s = st;
    msg *m = p;
    if (m->kind == RESULT) {
        finish((bench_check)m->val);
        return 0;
    }
    for (long i = 0; i < m->val; i++)
        post(s->counter, INC, i, NULL, 0);
    post(s->counter, GET, 0, weft_actor_self(cx), 0);
    return 0;
}

static const weft_actor_class COUNTER_C = {
    .state_size = sizeof(struct counter), .receive = counter_recv};
static const weft_actor_class PRODUCER_C = {
    .state_size = sizeof(struct producer), .init = producer_init,
    .receive = producer_recv};

static bench_check counting(long n)
{
    weft_actor *c = spawn(&COUNTER_C, NULL), *p = spawn(&PRODUCER_C, c);
    post(p, START, n, NULL, 0);
    bench_check r = await_end();
    drop(p);
    drop(c);
    return r;
}

/* ---- threadring */

struct ring { weft_actor *next; long id; };
static weft_actor *ring_actors[RING];

static int ring_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)n;
    struct ring *s = st;
    msg *m = p;
    if (m->val == 0)
        finish((bench_check)s->id);
    else
        post(s->next, TOKEN, m->val - 1, NULL, 0);
    return 0;
}

static int ring_init(void *st, void *arg)
{
    ((struct ring *)st)->id = (long)(intptr_t)arg;
    return 0;
}

static int ring_link(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    if (n == sizeof(weft_actor *)) { /* the link message */
        ((struct ring *)st)->next = *(weft_actor **)p;
        return 0;
    }
    return ring_recv(cx, st, p, n);
}

static const weft_actor_class RING_C = {
    .state_size = sizeof(struct ring), .init = ring_init,
    .receive = ring_link};

static bench_check threadring(long n)
{
    for (long i = 0; i < RING; i++)
        ring_actors[i] = spawn(&RING_C, (void *)(intptr_t)i);
    for (long i = 0; i < RING; i++) {
        weft_actor *next = ring_actors[(i + 1) % RING];
        int rc = weft_send(ring_actors[i], &next, sizeof next, 0);
        if (rc)
            die("weft_send", rc);
    }
    post(ring_actors[0], TOKEN, n, NULL, 0);
    bench_check r = await_end();
    for (long i = 0; i < RING; i++)
        drop(ring_actors[i]);
    return r;
}

/* ---- fjthrput */

struct fj { long n, got, acc; };

static int fj_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)n;
    struct fj *s = st;
    msg *m = p;
    s->acc += fj_work(m->val);
    if (++s->got == s->n)
        count_down(s->acc);
    return 0;
}

static int fj_init(void *st, void *arg)
{
    ((struct fj *)st)->n = (long)(intptr_t)arg;
    return 0;
}

static const weft_actor_class FJ_C = {
    .state_size = sizeof(struct fj), .init = fj_init, .receive = fj_recv};

static bench_check fjthrput(long n)
{
    weft_actor *a[FJ_ACTORS];
    atomic_store(&left, FJ_ACTORS);
    atomic_store(&total, 0);
    for (int i = 0; i < FJ_ACTORS; i++)
        a[i] = spawn(&FJ_C, (void *)(intptr_t)n);
    for (long k = 0; k < n; k++)
        for (int i = 0; i < FJ_ACTORS; i++)
            post(a[i], WORK, k, NULL, 0);
    bench_check r = await_end();
    for (int i = 0; i < FJ_ACTORS; i++)
        drop(a[i]);
    return r;
}

/* ---- fjcreate: each actor handles one message and stops itself */

static int fjc_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)st;
    (void)n;
    long v = fj_work(((msg *)p)->val);
    weft_actor_stop(weft_actor_self(cx), WEFT_STOP_GRACEFUL, NULL);
    count_down(v);
    return 0;
}

static const weft_actor_class FJC_C = {.receive = fjc_recv};

static bench_check fjcreate(long n)
{
    atomic_store(&left, n);
    atomic_store(&total, 0);
    for (long i = 0; i < n; i++) {
        weft_actor *a = spawn(&FJC_C, NULL);
        post(a, WORK, i, NULL, 0);
        weft_actor_release(a);
    }
    return await_end();
}

/* ---- big */

struct big { long n, pongs; uint64_t rng; };
static weft_actor *big_actors[BIG_ACTORS];

static void big_ping(weft_actor_ctx *cx, struct big *s)
{
    weft_actor *to = big_actors[bench_xorshift(&s->rng) % BIG_ACTORS];
    post(to, PING, 0, weft_actor_self(cx), 0);
}

static int big_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)n;
    struct big *s = st;
    msg *m = p;
    switch (m->kind) {
    case START:
        s->n = m->val;
        big_ping(cx, s);
        break;
    case PING:
        post(m->from, PONG, 0, NULL, 0);
        break;
    default:
        if (++s->pongs == s->n)
            count_down(s->pongs);
        else
            big_ping(cx, s);
    }
    return 0;
}

static int big_init(void *st, void *arg)
{
    ((struct big *)st)->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(intptr_t)arg
                              + 1;
    return 0;
}

static const weft_actor_class BIG_C = {
    .state_size = sizeof(struct big), .init = big_init, .receive = big_recv};

static bench_check big(long n)
{
    atomic_store(&left, BIG_ACTORS);
    atomic_store(&total, 0);
    for (long i = 0; i < BIG_ACTORS; i++)
        big_actors[i] = spawn(&BIG_C, (void *)(intptr_t)(i + 1));
    for (long i = 0; i < BIG_ACTORS; i++)
        post(big_actors[i], START, n, NULL, 0);
    bench_check r = await_end();
    for (long i = 0; i < BIG_ACTORS; i++)
        drop(big_actors[i]);
    return r;
}

/* ---- chameneos */

struct mall { long left, sum; int stopped; weft_actor *waiting; int wcolor; };
struct cham { weft_actor *mall; int color; long meetings; };

static int mall_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)n;
    struct mall *s = st;
    msg *m = p;
    if (m->kind == START) {
        s->left = m->val;
        return 0;
    }
    if (m->kind == COUNT) { /* a chameneo stopped, with its meetings */
        s->sum += m->val;
        if (++s->stopped == CHAM)
            finish((bench_check)s->sum);
        return 0;
    }
    if (s->left == 0) {
        post(m->from, STOP, 0, NULL, 0);
    } else if (!s->waiting) {
        s->waiting = m->from;
        s->wcolor = m->color;
    } else {
        s->left--;
        post(s->waiting, MATE, 0, m->from, m->color);
        post(m->from, MATE, 0, s->waiting, s->wcolor);
        s->waiting = NULL;
    }
    if (s->left == 0 && s->waiting) {
        post(s->waiting, STOP, 0, NULL, 0);
        s->waiting = NULL;
    }
    (void)cx;
    return 0;
}

static int cham_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)n;
    struct cham *s = st;
    msg *m = p;
    if (m->kind == STOP) {
        post(s->mall, COUNT, s->meetings, NULL, 0);
        return 0;
    }
    if (m->kind == START) {
        s->color = m->color;
    } else {
        s->meetings++;
        s->color = cham_complement(s->color, m->color);
    }
    post(s->mall, MEET, 0, weft_actor_self(cx), s->color);
    return 0;
}

static int cham_init(void *st, void *arg)
{
    struct cham *s = st;
    s->mall = arg;
    return 0;
}

static const weft_actor_class MALL_C = {
    .state_size = sizeof(struct mall), .receive = mall_recv};
static const weft_actor_class CHAM_C = {
    .state_size = sizeof(struct cham), .init = cham_init,
    .receive = cham_recv};

static bench_check chameneos(long n)
{
    weft_actor *mall = spawn(&MALL_C, NULL), *c[CHAM];
    post(mall, START, n, NULL, 0);
    for (int i = 0; i < CHAM; i++)
        c[i] = spawn(&CHAM_C, mall);
    for (int i = 0; i < CHAM; i++)
        post(c[i], START, 0, NULL, i % 3); /* colour set on the first MEET */
    bench_check r = await_end();
    for (int i = 0; i < CHAM; i++)
        drop(c[i]);
    drop(mall);
    return r;
}

/* ---- manysenders: SENDERS actors flood one sink */

struct sink { long n, got; };
struct sender { weft_actor *sink; };

static int sink_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)n;
    struct sink *s = st;
    s->got += ((msg *)p)->val;
    if (s->got == s->n)
        finish((bench_check)s->got);
    return 0;
}

static int sink_init(void *st, void *arg)
{
    ((struct sink *)st)->n = (long)(intptr_t)arg;
    return 0;
}

static int sender_init(void *st, void *arg)
{
    ((struct sender *)st)->sink = arg;
    return 0;
}

static int sender_recv(weft_actor_ctx *cx, void *st, void *p, size_t n)
{
    (void)cx;
    (void)n;
    struct sender *s = st;
    for (long i = 0; i < ((msg *)p)->val; i++)
        post(s->sink, WORK, 1, NULL, 0);
    return 0;
}

static const weft_actor_class SINK_C = {
    .state_size = sizeof(struct sink), .init = sink_init,
    .receive = sink_recv};
static const weft_actor_class SENDER_C = {
    .state_size = sizeof(struct sender), .init = sender_init,
    .receive = sender_recv};

static bench_check manysenders(long n)
{
    weft_actor *sink = spawn(&SINK_C, (void *)(intptr_t)n), *s[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        s[i] = spawn(&SENDER_C, sink);
    for (int i = 0; i < SENDERS; i++)
        post(s[i], START, n / SENDERS + (i < n % SENDERS), NULL, 0);
    bench_check r = await_end();
    for (int i = 0; i < SENDERS; i++)
        drop(s[i]);
    drop(sink);
    return r;
}

/* ---- driver */

static int setup(int workers)
{
    weft_config c = weft_config_default();
    c.workers = workers;
    return bench_weft_create(PROG, &rt, &c);
}

static void teardown(int verbose)
{
    if (verbose) {
        weft_runtime_stats s;
        if (weft_stats_runtime(rt, &s) == 0)
            fprintf(stderr, PROG ": %llu messages sent, %llu handled, "
                            "%llu actors alive\n",
                    (unsigned long long)s.messages_sent,
                    (unsigned long long)s.messages_handled,
                    (unsigned long long)s.actors);
    }
    weft_runtime_destroy(&rt);
}

static int set_batch(const char *v)
{
    long b;
    if (bench_parse_long(v, 1, &b) != 0 || b > 65535)
        return -1;
    batch = (int)b;
    return 0;
}

int main(int argc, char **argv)
{
    static const bench_impl impl = {"weft", 0, setup, teardown};
    static const bench_workload w[] = {
        {"pingpong", pingpong},     {"counting", counting},
        {"threadring", threadring}, {"fjthrput", fjthrput},
        {"fjcreate", fjcreate},     {"big", big},
        {"chameneos", chameneos},   {"manysenders", manysenders},
    };
    static const bench_option opts[] = {{'b', "BATCH", set_batch}};
    return bench_main_opts(argc, argv, &impl, w, sizeof w / sizeof w[0],
                           NULL, opts, 1);
}
