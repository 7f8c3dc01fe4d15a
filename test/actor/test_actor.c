/* Actors: send and ask; per-sender order under 8 concurrent senders (outside
 * threads and tasks); restarts and their counts; asks on a failing actor
 * and after its death; graceful and immediate stops while messages are in
 * flight; bounded mailboxes in both modes; an actor sending to itself;
 * pools; an actor asking another and waiting inside its receive; an
 * immediate stop from the actor's own receive; statistics; destroy with
 * actors alive; bad arguments. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

/* --- a counter that checks per-sender order ------------------------------ */

enum { SENDERS = 8 };

struct seqmsg {
    int sender;
    long seq;
};

struct order_state {
    long next[SENDERS]; /* expected next seq per sender */
    long bad;           /* out-of-order messages seen */
    long total;
    int inits;
};

static _Atomic int fini_calls;

static int order_init(void *st, void *arg)
{
    (void)arg;
    ((struct order_state *)st)->inits++;
    return 0;
}

static void count_fini(void *st)
{
    (void)st;
    atomic_fetch_add(&fini_calls, 1);
}

/* A seqmsg is checked; any other message is a query answered with the
 * state's totals (total in [0], bad in [1]). */
static int order_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct order_state *s = st;
    if (n == sizeof(struct seqmsg)) {
        struct seqmsg *m = msg;
        if (m->sender < 0 || m->sender >= SENDERS ||
            m->seq != s->next[m->sender])
            s->bad++;
        else
            s->next[m->sender]++;
        s->total++;
        return 0;
    }
    long *r = malloc(2 * sizeof *r);
    if (!r)
        return -ENOMEM;
    r[0] = s->total;
    r[1] = s->bad;
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class ORDER = {
    .state_size = sizeof(struct order_state),
    .init = order_init,
    .receive = order_recv,
    .fini = count_fini,
    .name = "order",
};

/* Ask a for its (total, bad). */
static void query(weft_actor *a, long *total, long *bad)
{
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, "q", 1, 0, &f), 0);
    void *v = NULL;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &v), 0);
    assert_non_null(v);
    *total = ((long *)v)[0];
    *bad = ((long *)v)[1];
    weft_future_release(f);
}

/* The backlog is a gauge: an activation subtracts what it took when its
 * batch ends, after the replies went out. Poll it down to 0. */
static long backlog_settles(weft_actor *a)
{
    long b = 0;
    for (int i = 0; i < 60000; i++) {
        if ((b = weft_actor_backlog(a)) == 0)
            break;
        sleep_ns(MS);
    }
    return b;
}

static void test_send_ask(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, NULL, &a), 0);
    assert_non_null(a);
    assert_int_equal(weft_actor_alive(a), 1);
    for (long i = 0; i < 1000; i++) {
        struct seqmsg m = {0, i};
        assert_int_equal(weft_send(a, &m, sizeof m, 0), 0);
    }
    long total, bad;
    query(a, &total, &bad);
    assert_int_equal(total, 1000);
    assert_int_equal(bad, 0);
    atomic_store(&fini_calls, 0);
    weft_future *done = NULL;
    assert_int_equal(weft_actor_stop(a, WEFT_STOP_GRACEFUL, &done), 0);
    assert_int_equal(weft_future_get(done, LONG_WAIT, NULL), 0);
    weft_future_release(done);
    assert_int_equal(atomic_load(&fini_calls), 1);
    assert_int_equal(weft_actor_alive(a), 0);
    assert_int_equal(weft_send(a, "x", 1, 0), WEFT_ACTOR_DEAD);
    assert_int_equal(weft_actor_stop(a, WEFT_STOP_GRACEFUL, NULL),
                     WEFT_ACTOR_DEAD);
    assert_int_equal(weft_actor_release(a), 0);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- 8 concurrent senders: outside threads, then tasks ------------------- */

struct sender_arg {
    weft_actor *a;
    int id;
    long n;
    int rc;
};

static int send_seq(struct sender_arg *sa)
{
    for (long i = 0; i < sa->n; i++) {
        struct seqmsg m = {sa->id, i};
        int rc = weft_send(sa->a, &m, sizeof m, 0);
        if (rc)
            return rc;
    }
    return 0;
}

static void *sender_thread(void *p)
{
    struct sender_arg *sa = p;
    sa->rc = send_seq(sa);
    return NULL;
}

static int sender_task(weft_job *job, void *p)
{
    (void)job;
    return send_seq(p);
}

static void check_order(weft_actor *a, long n)
{
    long total, bad;
    query(a, &total, &bad);
    assert_int_equal(bad, 0);
    assert_int_equal(total, n);
}

static void test_order_8_senders(void **s)
{
    (void)s;
    long n = 20000 / test_scale();
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int round = 0; round < 2; round++) { /* 0: threads, 1: tasks */
        weft_actor *a = NULL;
        weft_actor_opts o = weft_actor_opts_default();
        o.batch = round ? 3 : 0; /* a small batch requeues often */
        assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, &o, &a), 0);
        struct sender_arg sa[SENDERS];
        pthread_t th[SENDERS];
        weft_future *fs[SENDERS];
        for (int i = 0; i < SENDERS; i++) {
            sa[i] = (struct sender_arg){a, i, n, -1};
            if (round == 0)
                assert_int_equal(pthread_create(&th[i], NULL, sender_thread,
                                                &sa[i]), 0);
            else
                assert_int_equal(weft_submit(rt, sender_task, &sa[i], NULL,
                                             &fs[i]), 0);
        }
        for (int i = 0; i < SENDERS; i++) {
            if (round == 0) {
                pthread_join(th[i], NULL);
                assert_int_equal(sa[i].rc, 0);
            } else {
                assert_int_equal(weft_future_get(fs[i], LONG_WAIT, NULL), 0);
                weft_future_release(fs[i]);
            }
        }
        check_order(a, n * SENDERS);
        assert_int_equal(weft_actor_stop(a, WEFT_STOP_NOW, NULL), 0);
        weft_actor_release(a);
    }
    weft_runtime_stats st;
    assert_int_equal(weft_stats_runtime(rt, &st), 0);
    assert_true(st.messages_sent >= (uint64_t)(2 * n * SENDERS));
    assert_true(st.messages_handled >= (uint64_t)(2 * n * SENDERS));
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- failures and restarts ----------------------------------------------- */

struct flaky_state {
    int inits_seen; /* from the shared counter at init */
    long handled;   /* since the last (re)start */
};

static _Atomic int flaky_inits;

static int flaky_init(void *st, void *arg)
{
    (void)arg;
    struct flaky_state *f = st;
    if (f->handled != 0) /* state must be zeroed on restart */
        return -EPROTO;
    f->inits_seen = atomic_fetch_add(&flaky_inits, 1) + 1;
    return 0;
}

/* "fail": returns -EIO; "count": replies with handled since the start;
 * "inits": replies with the init number of this incarnation. */
static int flaky_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct flaky_state *f = st;
    f->handled++;
    if (n == 4 && memcmp(msg, "fail", 4) == 0)
        return -EIO;
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = n == 5 && memcmp(msg, "inits", 5) == 0 ? f->inits_seen : f->handled;
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class FLAKY = {
    .state_size = sizeof(struct flaky_state),
    .init = flaky_init,
    .receive = flaky_recv,
    .fini = count_fini,
    .name = "flaky",
};

static int ask_long(weft_actor *a, const char *what, long *out)
{
    weft_future *f = NULL;
    int rc = weft_ask(a, what, strlen(what), 0, &f);
    if (rc)
        return rc;
    void *v = NULL;
    rc = weft_future_get(f, LONG_WAIT, &v);
    if (rc == 0 && v)
        *out = *(long *)v;
    weft_future_release(f);
    return rc;
}

static void test_restarts(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&flaky_inits, 0);
    atomic_store(&fini_calls, 0);
    weft_actor_opts o = weft_actor_opts_default();
    o.max_restarts = 3;
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &FLAKY, NULL, &o, &a), 0);
    long v = 0;
    assert_int_equal(ask_long(a, "x", &v), 0);
    assert_int_equal(v, 1);
    for (int i = 1; i <= 3; i++) { /* each failure restarts: state reset */
        assert_int_equal(ask_long(a, "fail", &v), -EIO);
        assert_int_equal(weft_actor_restarts(a), i);
        assert_int_equal(ask_long(a, "inits", &v), 0);
        assert_int_equal(v, i + 1);
        assert_int_equal(ask_long(a, "x", &v), 0);
        assert_int_equal(v, 2); /* "inits" and this one since restart */
    }
    assert_int_equal(atomic_load(&fini_calls), 3);
    /* the 4th failure is past max_restarts: dead, fini once more */
    assert_int_equal(ask_long(a, "fail", &v), -EIO);
    assert_int_equal(ask_long(a, "x", &v), WEFT_ACTOR_DEAD);
    assert_int_equal(weft_actor_alive(a), 0);
    assert_int_equal(weft_actor_restarts(a), 4);
    assert_int_equal(atomic_load(&fini_calls), 4);
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, "x", 1, 0, &f), WEFT_ACTOR_DEAD);
    assert_null(f);
    weft_runtime_stats st;
    assert_int_equal(weft_stats_runtime(rt, &st), 0);
    assert_int_equal(st.actor_restarts, 4);
    assert_int_equal(st.actors, 0);
    weft_actor_release(a);

    /* unlimited restarts */
    o.max_restarts = -1;
    assert_int_equal(weft_actor_spawn(rt, &FLAKY, NULL, &o, &a), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(ask_long(a, "fail", &v), -EIO);
    assert_int_equal(weft_actor_alive(a), 1);
    assert_int_equal(weft_actor_restarts(a), 50);
    weft_actor_stop(a, WEFT_STOP_NOW, NULL);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* Asks queued behind a failing message on an actor with no restarts:
 * the failing ask gets its error, the others WEFT_ACTOR_DEAD, none hangs. */
static void test_ask_failing_then_dead(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &FLAKY, NULL, NULL, &a), 0);
    enum { N = 100 };
    weft_future *fs[N];
    assert_int_equal(weft_ask(a, "fail", 4, 0, &fs[0]), 0);
    int accepted = 1;
    for (int i = 1; i < N; i++) {
        int rc = weft_ask(a, "x", 1, 0, &fs[i]);
        assert_true(rc == 0 || rc == WEFT_ACTOR_DEAD);
        if (rc == 0)
            accepted++;
        else
            break;
    }
    assert_int_equal(weft_future_get(fs[0], LONG_WAIT, NULL), -EIO);
    for (int i = 1; i < accepted; i++)
        assert_int_equal(weft_future_get(fs[i], LONG_WAIT, NULL),
                         WEFT_ACTOR_DEAD);
    for (int i = 0; i < accepted; i++)
        weft_future_release(fs[i]);
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, "x", 1, 0, &f), WEFT_ACTOR_DEAD);
    assert_int_equal(weft_send(a, "x", 1, 0), WEFT_ACTOR_DEAD);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* An init that fails at spawn is spawn's error, and fini is not called. */
static int bad_init(void *st, void *arg)
{
    (void)st;
    (void)arg;
    return -ENOTSUP;
}

static void test_spawn_init_fails(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    weft_actor_class c = FLAKY;
    c.init = bad_init;
    atomic_store(&fini_calls, 0);
    weft_actor *a = (weft_actor *)1;
    assert_int_equal(weft_actor_spawn(rt, &c, NULL, NULL, &a), -ENOTSUP);
    assert_null(a);
    assert_int_equal(atomic_load(&fini_calls), 0);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- stops with messages in flight --------------------------------------- */

struct slow_state {
    long handled;
};

static _Atomic long slow_handled;

static int slow_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx;
    (void)msg;
    (void)n;
    ((struct slow_state *)st)->handled++;
    atomic_fetch_add(&slow_handled, 1);
    for (volatile int i = 0; i < 2000; i++)
        ;
    return 0;
}

static const weft_actor_class SLOW = {
    .state_size = sizeof(struct slow_state),
    .receive = slow_recv,
    .fini = count_fini,
};

struct stopper {
    weft_actor *a;
    long sent, refused;
    _Atomic int *go;
};

static void *keep_sending(void *p)
{
    struct stopper *sp = p;
    while (atomic_load(sp->go)) {
        int rc = weft_send(sp->a, "m", 1, 0);
        if (rc == 0)
            sp->sent++;
        else if (rc == WEFT_ACTOR_DEAD)
            sp->refused++;
        if (rc == WEFT_ACTOR_DEAD && sp->refused > 100)
            break;
    }
    return NULL;
}

static void stop_in_flight(int mode)
{
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&slow_handled, 0);
    atomic_store(&fini_calls, 0);
    weft_actor *a = NULL;
    weft_actor_opts o = weft_actor_opts_default();
    o.track_backlog = 1; /* so that the count is checked at the end */
    assert_int_equal(weft_actor_spawn(rt, &SLOW, NULL, &o, &a), 0);
    /* queued asks before the stop, senders racing with it */
    enum { Q = 200 };
    weft_future *fs[Q];
    for (int i = 0; i < Q; i++)
        assert_int_equal(weft_ask(a, "q", 1, 0, &fs[i]), 0);
    _Atomic int go = 1;
    struct stopper sp[2] = {{a, 0, 0, &go}, {a, 0, 0, &go}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, keep_sending, &sp[i]),
                         0);
    sleep_ns(2 * MS);
    weft_future *done = NULL;
    assert_int_equal(weft_actor_stop(a, mode, &done), 0);
    assert_int_equal(weft_send(a, "late", 4, 0), WEFT_ACTOR_DEAD);
    assert_int_equal(weft_future_get(done, LONG_WAIT, NULL), 0);
    weft_future_release(done);
    atomic_store(&go, 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    int ok = 0, dead = 0;
    for (int i = 0; i < Q; i++) {
        int rc = weft_future_get(fs[i], LONG_WAIT, NULL);
        assert_true(rc == 0 || rc == WEFT_ACTOR_DEAD);
        ok += rc == 0;
        dead += rc == WEFT_ACTOR_DEAD;
        weft_future_release(fs[i]);
    }
    if (mode == WEFT_STOP_GRACEFUL) /* queued before the stop: handled */
        assert_int_equal(ok, Q);
    assert_int_equal(ok + dead, Q);
    assert_int_equal(atomic_load(&fini_calls), 1);
    /* every accepted message was handled or dropped: backlog drains */
    weft_runtime_stats st;
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(weft_stats_runtime(rt, &st), 0);
        if (st.mailbox_backlog == 0)
            break;
        sleep_ns(MS);
    }
    assert_int_equal(st.mailbox_backlog, 0);
    assert_int_equal(backlog_settles(a), 0);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

static void test_stop_graceful(void **s)
{
    (void)s;
    stop_in_flight(WEFT_STOP_GRACEFUL);
}

static void test_stop_now(void **s)
{
    (void)s;
    stop_in_flight(WEFT_STOP_NOW);
}

static void test_stop_twice(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &SLOW, NULL, NULL, &a), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_send(a, "m", 1, 0), 0);
    weft_future *d1 = NULL, *d2 = NULL, *d3 = NULL;
    assert_int_equal(weft_actor_stop(a, WEFT_STOP_GRACEFUL, &d1), 0);
    int rc = weft_actor_stop(a, WEFT_STOP_GRACEFUL, &d2);
    assert_true(rc == -EALREADY || rc == WEFT_ACTOR_DEAD);
    rc = weft_actor_stop(a, WEFT_STOP_NOW, &d3);
    assert_true(rc == 0 || rc == WEFT_ACTOR_DEAD);
    weft_future *ds[3] = {d1, d2, d3};
    for (int i = 0; i < 3; i++) {
        if (!ds[i])
            continue;
        assert_int_equal(weft_future_get(ds[i], LONG_WAIT, NULL), 0);
        weft_future_release(ds[i]);
    }
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- bounded mailboxes --------------------------------------------------- */

struct gate_state {
    int unused;
};

static _Atomic int mbox_open;
static _Atomic long gated;

static int gated_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx;
    (void)st;
    (void)msg;
    (void)n;
    int64_t end = now_ns() + 60000 * MS;
    while (!atomic_load(&mbox_open) && now_ns() < end)
        sched_yield();
    atomic_fetch_add(&gated, 1);
    return 0;
}

static const weft_actor_class GATED = {
    .state_size = sizeof(struct gate_state),
    .receive = gated_recv,
};

static int send_waiting_task(weft_job *job, void *p)
{
    (void)job;
    weft_actor *a = p;
    for (int i = 0; i < 20; i++) {
        int rc = weft_send(a, "w", 1, 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* The backlog: -ENOTSUP unless the actor counts (track_backlog); a
 * counting one includes the message being handled. */
static void test_backlog(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&mbox_open, 0);
    atomic_store(&gated, 0);
    weft_actor *plain = NULL, *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &GATED, NULL, NULL, &plain), 0);
    assert_int_equal(weft_actor_backlog(plain), -ENOTSUP);
    weft_actor_opts o = weft_actor_opts_default();
    o.track_backlog = 1;
    assert_int_equal(weft_actor_spawn(rt, &GATED, NULL, &o, &a), 0);
    assert_int_equal(weft_actor_backlog(a), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(weft_send(a, "b", 1, 0), 0);
    assert_int_equal(weft_actor_backlog(a), 10); /* 1 at the gate */
    atomic_store(&mbox_open, 1);
    assert_int_equal(backlog_settles(a), 0);
    assert_int_equal(atomic_load(&gated), 10);
    weft_actor_release(plain);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

static void test_bounded(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&mbox_open, 0);
    atomic_store(&gated, 0);
    weft_actor_opts o = weft_actor_opts_default();
    o.capacity = 4;
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &GATED, NULL, &o, &a), 0);
    /* the first message is taken by the activation (stuck at the gate)
     * or still queued: either way at most 4 + 1 are accepted */
    int accepted = 0, again = 0;
    for (int i = 0; i < 10; i++) {
        int rc = weft_send(a, "n", 1, WEFT_SEND_NOWAIT);
        assert_true(rc == 0 || rc == -EAGAIN);
        accepted += rc == 0;
        again += rc == -EAGAIN;
    }
    assert_true(accepted >= 4 && accepted <= 5);
    assert_true(again >= 5);
    assert_true(weft_actor_backlog(a) <= 4);
    /* waiting senders: an outside thread's and a task's block until the
     * gate opens, then all their messages get in */
    weft_future *f = NULL;
    assert_int_equal(weft_submit(rt, send_waiting_task, a, NULL, &f), 0);
    sleep_ns(5 * MS);
    assert_int_equal(weft_future_done(f), 0);
    atomic_store(&mbox_open, 1);
    for (int i = 0; i < 20; i++)
        assert_int_equal(weft_send(a, "o", 1, 0), 0);
    assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), 0);
    weft_future_release(f);
    weft_future *done = NULL;
    assert_int_equal(weft_actor_stop(a, WEFT_STOP_GRACEFUL, &done), 0);
    assert_int_equal(weft_future_get(done, LONG_WAIT, NULL), 0);
    weft_future_release(done);
    assert_int_equal(atomic_load(&gated), accepted + 40);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* A receive that sends to its own full mailbox gets -EDEADLK, not a hang;
 * with NOWAIT, -EAGAIN. */
static int selffull_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)st;
    (void)msg;
    if (n != 1)
        return 0;
    weft_actor *me = weft_actor_self(cx);
    int last = 0;
    for (int i = 0; i < 10; i++)
        if ((last = weft_send(me, "xx", 2, 0)) != 0)
            break;
    int nw = weft_send(me, "xx", 2, WEFT_SEND_NOWAIT);
    long *r = malloc(2 * sizeof *r);
    if (!r)
        return -ENOMEM;
    r[0] = last;
    r[1] = nw;
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class SELFFULL = {.receive = selffull_recv};

static void test_bounded_self(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor_opts o = weft_actor_opts_default();
    o.capacity = 3;
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &SELFFULL, NULL, &o, &a), 0);
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, "g", 1, 0, &f), 0);
    void *v = NULL;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &v), 0);
    assert_int_equal(((long *)v)[0], -EDEADLK);
    assert_int_equal(((long *)v)[1], -EAGAIN);
    weft_future_release(f);
    weft_actor_stop(a, WEFT_STOP_NOW, NULL);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- an actor sending to itself ------------------------------------------ */

struct loop_state {
    long left;
    long seen;
};

/* A long: count down by sending to oneself; "get": reply with seen. */
static int loop_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct loop_state *l = st;
    if (n == sizeof(long)) {
        long k = *(long *)msg;
        l->seen++;
        if (k > 0) {
            long next = k - 1;
            return weft_send(weft_actor_self(cx), &next, sizeof next, 0);
        }
        return 0;
    }
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = l->seen;
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class LOOP = {
    .state_size = sizeof(struct loop_state),
    .receive = loop_recv,
};

static void test_self_send(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &LOOP, NULL, NULL, &a), 0);
    long k = 100000 / test_scale();
    assert_int_equal(weft_send(a, &k, sizeof k, 0), 0);
    /* the loop runs to its end; wait through the backlog, then ask */
    long seen = 0;
    for (int i = 0; i < 100000 && seen != k + 1; i++) {
        assert_int_equal(ask_long(a, "get", &seen), 0);
        if (seen != k + 1)
            sleep_ns(MS);
    }
    assert_int_equal(seen, k + 1);
    weft_actor_stop(a, WEFT_STOP_GRACEFUL, NULL);
    weft_actor_release(a);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- pools --------------------------------------------------------------- */

static _Atomic int pool_inits;

static int pool_init(void *st, void *arg)
{
    (void)st;
    (void)arg;
    atomic_fetch_add(&pool_inits, 1);
    return 0;
}

static int pool_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)msg;
    (void)n;
    long *handled = st;
    ++*handled;
    if (weft_actor_is_ask(cx)) {
        long *r = malloc(sizeof *r);
        if (!r)
            return -ENOMEM;
        *r = (long)(uintptr_t)weft_actor_self(cx);
        return weft_actor_reply(cx, r, free);
    }
    for (volatile int i = 0; i < 500; i++)
        ;
    return 0;
}

static const weft_actor_class POOLED = {
    .state_size = sizeof(long),
    .init = pool_init,
    .receive = pool_recv,
    .fini = count_fini,
};

static void test_pool(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&pool_inits, 0);
    atomic_store(&fini_calls, 0);
    weft_actor *p = NULL;
    assert_int_equal(weft_actor_pool_spawn(rt, &POOLED, NULL, 4, NULL, &p), 0);
    assert_int_equal(atomic_load(&pool_inits), 4);
    for (int i = 0; i < 4000; i++)
        assert_int_equal(weft_send(p, "m", 1, 0), 0);
    /* asks spread over more than one member */
    long first = 0, other = 0;
    for (int i = 0; i < 200 && !other; i++) {
        long who = 0;
        assert_int_equal(ask_long(p, "a", &who), 0);
        if (!first)
            first = who;
        else if (who != first)
            other = who;
    }
    assert_true(other != 0);
    weft_future *done = NULL;
    assert_int_equal(weft_actor_stop(p, WEFT_STOP_GRACEFUL, &done), 0);
    assert_int_equal(weft_future_get(done, LONG_WAIT, NULL), 0);
    weft_future_release(done);
    assert_int_equal(atomic_load(&fini_calls), 4);
    assert_int_equal(weft_actor_alive(p), 0);
    assert_int_equal(weft_send(p, "m", 1, 0), WEFT_ACTOR_DEAD);
    assert_int_equal(backlog_settles(p), 0);
    assert_int_equal(weft_actor_pool_spawn(rt, &POOLED, NULL, 0, NULL, &p),
                     -EINVAL);
    weft_actor_release(p);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* A pool routes around its dead members: with max_restarts 0, a member
 * that fails a message dies; every later send goes to a live member
 * (before, about half were refused: the dead member's empty mailbox won
 * the picks) and the pool is alive while any member is. Once all died,
 * sends are refused and the pool is not alive. */
static _Atomic long mortal_handled;

static int mortal_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx, (void)st;
    if (n == 1 && *(const char *)msg == 'x')
        return -EIO;
    atomic_fetch_add(&mortal_handled, 1);
    return 0;
}

static const weft_actor_class MORTAL = {.name = "mortal",
                                        .receive = mortal_recv};

static void test_pool_dead_members(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&mortal_handled, 0);
    weft_actor_opts o = weft_actor_opts_default();
    o.max_restarts = 0;
    weft_actor *p = NULL;
    assert_int_equal(weft_actor_pool_spawn(rt, &MORTAL, NULL, 4, &o, &p), 0);
    for (int dead = 1; dead <= 4; dead++) {
        weft_future *f;
        /* goes to a live member, which dies before the reply completes */
        assert_int_equal(weft_ask(p, "x", 1, 0, &f), 0);
        assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), -EIO);
        weft_future_release(f);
        assert_int_equal(weft_actor_restarts(p), dead);
        if (dead == 4)
            break;
        assert_int_equal(weft_actor_alive(p), 1);
        for (int i = 0; i < 100; i++)
            assert_int_equal(weft_send(p, "m", 1, 0), 0);
    }
    assert_int_equal(weft_actor_alive(p), 0);
    assert_int_equal(weft_send(p, "m", 1, 0), WEFT_ACTOR_DEAD);
    weft_future *f = NULL;
    assert_int_equal(weft_ask(p, "m", 1, 0, &f), WEFT_ACTOR_DEAD);
    assert_null(f);
    /* stopping a dead pool: done gets nothing, as for one actor */
    assert_int_equal(weft_actor_stop(p, WEFT_STOP_GRACEFUL, &f),
                     WEFT_ACTOR_DEAD);
    assert_null(f);
    weft_actor_release(p);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    assert_int_equal(atomic_load(&mortal_handled), 300);
}

/* --- actors asking actors; stopping oneself ---------------------------- */

/* "go": ask the actor in state for "inits"-style data and wait for it
 * (weft_future_get runs other work meanwhile, the asked actor included),
 * then reply with its answer plus 1000. "die": stop oneself at once. */
static int asker_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    weft_actor *peer = *(weft_actor **)st;
    if (n == 3 && memcmp(msg, "die", 3) == 0)
        return weft_actor_stop(weft_actor_self(cx), WEFT_STOP_NOW, NULL);
    long v = 0;
    int rc = ask_long(peer, "x", &v);
    if (rc)
        return rc;
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = v + 1000;
    return weft_actor_reply(cx, r, free);
}

static int asker_init(void *st, void *arg)
{
    *(weft_actor **)st = arg;
    return 0;
}

static const weft_actor_class ASKER = {
    .state_size = sizeof(weft_actor *),
    .init = asker_init,
    .receive = asker_recv,
};

static void test_actor_asks_actor(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *b = NULL, *a = NULL;
    assert_int_equal(weft_actor_spawn(rt, &FLAKY, NULL, NULL, &b), 0);
    assert_int_equal(weft_actor_spawn(rt, &ASKER, b, NULL, &a), 0);
    for (long i = 1; i <= 20; i++) {
        long v = 0;
        assert_int_equal(ask_long(a, "go", &v), 0);
        assert_int_equal(v, 1000 + i); /* b counts its messages */
    }
    /* "die" then more: the queue behind an immediate self-stop drops */
    weft_future *f[10];
    assert_int_equal(weft_send(a, "die", 3, 0), 0);
    int accepted = 0;
    for (int i = 0; i < 10; i++) {
        int rc = weft_ask(a, "go", 2, 0, &f[i]);
        assert_true(rc == 0 || rc == WEFT_ACTOR_DEAD);
        if (rc)
            break;
        accepted++;
    }
    for (int i = 0; i < accepted; i++) {
        assert_int_equal(weft_future_get(f[i], LONG_WAIT, NULL),
                         WEFT_ACTOR_DEAD);
        weft_future_release(f[i]);
    }
    assert_int_equal(weft_actor_alive(a), 0);
    assert_int_equal(weft_actor_alive(b), 1);
    weft_actor_release(a);
    weft_actor_stop(b, WEFT_STOP_GRACEFUL, NULL);
    weft_actor_release(b);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- destroy with actors alive ------------------------------------------- */

static void test_destroy_alive(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    atomic_store(&fini_calls, 0);
    atomic_store(&slow_handled, 0);
    weft_actor *a[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_actor_spawn(rt, &SLOW, NULL, NULL, &a[i]), 0);
    for (int i = 0; i < 500; i++)
        assert_int_equal(weft_send(a[i % 5], "m", 1, 0), 0);
    weft_actor_release(a[0]); /* released and alive: still finished */
    weft_actor_stop(a[1], WEFT_STOP_NOW, NULL);
    /* a[1..4] still referenced: destroy frees them */
    assert_int_equal(weft_runtime_destroy(&rt), 0);
    assert_int_equal(atomic_load(&fini_calls), 5);
    assert_true(atomic_load(&slow_handled) >= 400); /* a[1]'s may drop */
}

/* An actor alive at destroy whose fini releases a future (an ask it made
 * and kept in its state): destroy runs fini before it frees the futures
 * (before, their slots were already unmapped: ASan use after free). */
static weft_actor *keep_peer;
static _Atomic int keep_release_rc = 1;

static int keep_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx, (void)msg, (void)n;
    weft_future **f = st;
    return *f ? 0 : weft_ask(keep_peer, "q", 1, 0, f);
}

static void keep_fini(void *st)
{
    weft_future **f = st;
    atomic_store(&keep_release_rc, *f ? weft_future_release(*f) : -1);
}

static int peer_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)st, (void)msg, (void)n;
    return weft_actor_reply(cx, NULL, NULL);
}

static const weft_actor_class KEEP = {.name = "keep",
    .state_size = sizeof(weft_future *), .receive = keep_recv,
    .fini = keep_fini};
static const weft_actor_class PEER = {.name = "peer", .receive = peer_recv};

static void test_destroy_fini_releases(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *k;
    assert_int_equal(weft_actor_spawn(rt, &PEER, NULL, NULL, &keep_peer), 0);
    assert_int_equal(weft_actor_spawn(rt, &KEEP, NULL, NULL, &k), 0);
    weft_future *f;
    assert_int_equal(weft_ask(k, "go", 2, 0, &f), 0);
    assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), 0);
    weft_future_release(f);
    atomic_store(&keep_release_rc, 1);
    assert_int_equal(weft_runtime_destroy(&rt), 0); /* both alive */
    assert_int_equal(atomic_load(&keep_release_rc), 0);
}

/* --- bad arguments ------------------------------------------------------- */

static void test_bad_args(void **s)
{
    (void)s;
    weft_runtime *rt = test_runtime(1, NULL);
    assert_non_null(rt);
    weft_actor *a = NULL;
    weft_actor_class noreceive = {.state_size = 8};
    assert_int_equal(weft_actor_spawn(NULL, &ORDER, NULL, NULL, &a), -EINVAL);
    assert_int_equal(weft_actor_spawn(rt, NULL, NULL, NULL, &a), -EINVAL);
    assert_int_equal(weft_actor_spawn(rt, &noreceive, NULL, NULL, &a),
                     -EINVAL);
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, NULL, NULL), -EINVAL);
    weft_actor_opts o = weft_actor_opts_default();
    o.max_restarts = -2;
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, &o, &a), -EINVAL);
    o = weft_actor_opts_default();
    o.capacity = -1;
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, &o, &a), -EINVAL);
    o = weft_actor_opts_default();
    o.track_backlog = 2;
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, &o, &a), -EINVAL);
    /* a state whose size wraps the allocation's: refused by both spawns
     * (the pool's overflowed a small block before) */
    weft_actor_class huge = ORDER;
    huge.state_size = SIZE_MAX - 63;
    assert_int_equal(weft_actor_spawn(rt, &huge, NULL, NULL, &a), -EINVAL);
    assert_int_equal(weft_actor_pool_spawn(rt, &huge, NULL, 2, NULL, &a),
                     -EINVAL);
    assert_int_equal(weft_actor_pool_spawn(rt, &noreceive, NULL, 2, NULL,
                                           &a), -EINVAL);
    assert_null(a);
    assert_int_equal(weft_actor_spawn(rt, &ORDER, NULL, NULL, &a), 0);
    weft_future *f = NULL;
    assert_int_equal(weft_send(NULL, "x", 1, 0), -EINVAL);
    assert_int_equal(weft_send(a, NULL, 1, 0), -EINVAL);
    assert_int_equal(weft_send(a, "x", 1, 0x80), -EINVAL);
    assert_int_equal(weft_ask(a, "x", 1, 0, NULL), -EINVAL);
    assert_int_equal(weft_ask(NULL, "x", 1, 0, &f), -EINVAL);
    assert_int_equal(weft_actor_stop(a, 7, NULL), -EINVAL);
    assert_int_equal(weft_actor_stop(NULL, 0, NULL), -EINVAL);
    assert_int_equal(weft_actor_retain(NULL), -EINVAL);
    assert_int_equal(weft_actor_release(NULL), -EINVAL);
    assert_int_equal(weft_actor_alive(NULL), -EINVAL);
    assert_int_equal(weft_actor_reply(NULL, NULL, NULL), -EINVAL);
    assert_null(weft_actor_self(NULL));
    assert_int_equal(weft_actor_retain(a), 0);
    assert_int_equal(weft_actor_release(a), 0);
    weft_actor_release(a); /* alive: destroy finishes it */
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_ask),
        cmocka_unit_test(test_order_8_senders),
        cmocka_unit_test(test_restarts),
        cmocka_unit_test(test_ask_failing_then_dead),
        cmocka_unit_test(test_spawn_init_fails),
        cmocka_unit_test(test_stop_graceful),
        cmocka_unit_test(test_stop_now),
        cmocka_unit_test(test_stop_twice),
        cmocka_unit_test(test_backlog),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_bounded_self),
        cmocka_unit_test(test_self_send),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_dead_members),
        cmocka_unit_test(test_actor_asks_actor),
        cmocka_unit_test(test_destroy_alive),
        cmocka_unit_test(test_destroy_fini_releases),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
