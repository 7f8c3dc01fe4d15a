/* Sends from inside a receive are held per thread and published in chains
 * (actor.c, the outbox). These tests fail if a held send is lost, reordered
 * or held too long: per-sender order with several targets interleaved (runs
 * around the chain's bound, single switches; a message relayed through
 * another actor must not overtake the sends made before it); a receive that
 * sends to B and returns (B has them all before the asker's next message);
 * one that sends to B and then asks B and waits; one that sends to B and
 * then waits (weft_future_get, weft_wait) on a task that only B's handling
 * of those sends can complete, also with B busy on the other worker; a
 * graceful stop of B after sends from the same receive; sends to an actor
 * of another runtime, destroyed before the receive returns; exact counts
 * of messages sent. Run on 1 and 2 workers. Checked by removing each publish
 * (before an ask or stop, at the receive's end, before a wait) and by
 * reordering a chain: each makes a test here fail. Where B's activation runs
 * nested on the waiting thread, its end publishes the thread's chain too, so
 * only the busy-B test needs the wait's own publish. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

enum { TARGETS = 3, FANS = 4, ROUNDS = 6 };

/* --- a target: checks per-sender order and causality --------------------- */

enum { M_SEQ = 1, M_RELAY, M_FORWARD, M_COUNT, M_SET_PEER };

struct tmsg {
    int kind;
    int sender;    /* fan index */
    long seq;      /* M_SEQ: per (sender, target) sequence */
    long seen;     /* M_FORWARD: fan's messages to `to` sent before it */
    int to;        /* M_RELAY / M_FORWARD: the target that must have them */
};

struct target_state {
    int id;
    long next[FANS]; /* expected next seq per fan */
    long bad;        /* out of order, or a relay ahead of its cause */
    long total;      /* M_SEQ handled */
    long forwards;   /* M_FORWARD handled */
    weft_actor *peer[TARGETS]; /* for relays */
};

static int target_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct target_state *s = st;
    struct tmsg *m = msg;
    if (n == sizeof(weft_actor *) * TARGETS) {
        memcpy(s->peer, msg, sizeof s->peer);
        return 0;
    }
    if (n != sizeof *m)
        return -EINVAL;
    switch (m->kind) {
    case M_SEQ:
        if (m->sender < 0 || m->sender >= FANS ||
            m->seq != s->next[m->sender])
            s->bad++;
        else
            s->next[m->sender]++;
        s->total++;
        return 0;
    case M_RELAY: { /* pass it on to target m->to, from this actor */
        struct tmsg f = *m;
        f.kind = M_FORWARD;
        return weft_send(s->peer[m->to], &f, sizeof f, 0);
    }
    case M_FORWARD: /* every seq the fan sent here before the relay */
        if (m->seen > s->next[m->sender])
            s->bad++;
        s->forwards++;
        return 0;
    case M_COUNT: {
        long *r = malloc(3 * sizeof *r);
        if (!r)
            return -ENOMEM;
        r[0] = s->total;
        r[1] = s->bad;
        r[2] = s->forwards;
        return weft_actor_reply(cx, r, free);
    }
    default:
        return -EINVAL;
    }
}

static const weft_actor_class TARGET = {
    .state_size = sizeof(struct target_state),
    .receive = target_recv,
    .name = "target",
};

/* --- a fan: one "go" sends a pattern of runs to the targets ------------- */

struct fan_state {
    int id;
    weft_actor *t[TARGETS];
    long next[TARGETS]; /* next seq per target */
    long sent;          /* sends made (all returned 0) */
};

struct fan_arg {
    int id;
    weft_actor **t;
};

static int fan_init(void *st, void *arg)
{
    struct fan_state *s = st;
    struct fan_arg *a = arg;
    s->id = a->id;
    memcpy(s->t, a->t, sizeof s->t);
    return 0;
}

static int fan_send(struct fan_state *s, int to)
{
    struct tmsg m = {.kind = M_SEQ, .sender = s->id, .seq = s->next[to]++};
    int rc = weft_send(s->t[to], &m, sizeof m, 0);
    if (rc == 0)
        s->sent++;
    return rc;
}

/* Runs of 1, 2, 31, 32, 33, 100 and 257 messages (around and past the
 * chain's bound), to targets in turn, a relay after some runs: target
 * (to + 1) tells target `to` how many it must already have. */
static int fan_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx;
    (void)msg;
    (void)n;
    struct fan_state *s = st;
    static const int runs[] = {1, 2, 31, 32, 33, 100, 1, 257, 1, 1, 5};
    int nruns = (int)(sizeof runs / sizeof runs[0]);
    for (int r = 0; r < nruns * 2; r++) {
        int to = (r + s->id) % TARGETS;
        for (int i = 0; i < runs[r % nruns]; i++) {
            int rc = fan_send(s, to);
            if (rc)
                return rc;
        }
        if (r % 3 == 1) {
            struct tmsg m = {.kind = M_RELAY, .sender = s->id,
                             .seen = s->next[to], .to = to};
            int rc = weft_send(s->t[(to + 1) % TARGETS], &m, sizeof m, 0);
            if (rc)
                return rc;
            s->sent++;
        }
    }
    return 0;
}

static const weft_actor_class FAN = {
    .state_size = sizeof(struct fan_state),
    .init = fan_init,
    .receive = fan_recv,
    .name = "fan",
};

static uint64_t sent_now(weft_runtime *rt)
{
    weft_runtime_stats st;
    assert_int_equal(weft_stats_runtime(rt, &st), 0);
    return st.messages_sent;
}

static long asks_made; /* by count_of: each is a message sent */

static void count_of(weft_actor *a, long *total, long *bad, long *fwd)
{
    struct tmsg q = {.kind = M_COUNT};
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, &q, sizeof q, 0, &f), 0);
    asks_made++;
    void *v = NULL;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &v), 0);
    assert_non_null(v);
    *total = ((long *)v)[0];
    *bad = ((long *)v)[1];
    *fwd = ((long *)v)[2];
    weft_future_release(f);
}

/* Wait until the targets have handled `seq` sequenced messages and `fwd`
 * forwards in all, checking order all along. */
static void settle(weft_actor **t, long seq, long fwd)
{
    int64_t end = now_ns() + LONG_WAIT;
    for (;;) {
        long sum = 0, sumf = 0, total, bad, f;
        for (int i = 0; i < TARGETS; i++) {
            count_of(t[i], &total, &bad, &f);
            assert_int_equal(bad, 0);
            sum += total;
            sumf += f;
        }
        if (sum == seq && sumf == fwd)
            return;
        assert_true(sum <= seq && sumf <= fwd);
        assert_true(now_ns() < end);
        sleep_ns(MS);
    }
}

static void order_interleaved(int workers)
{
    weft_runtime *rt = test_runtime(workers, NULL);
    assert_non_null(rt);
    weft_actor *t[TARGETS], *fan[FANS];
    for (int i = 0; i < TARGETS; i++)
        assert_int_equal(weft_actor_spawn(rt, &TARGET, NULL, NULL, &t[i]), 0);
    for (int i = 0; i < TARGETS; i++)
        assert_int_equal(weft_send(t[i], t, sizeof t, 0), 0);
    struct fan_arg fa[FANS];
    for (int i = 0; i < FANS; i++) {
        fa[i] = (struct fan_arg){.id = i, .t = t};
        assert_int_equal(weft_actor_spawn(rt, &FAN, &fa[i], NULL, &fan[i]),
                         0);
    }
    uint64_t before = sent_now(rt);
    asks_made = 0;
    /* several "go"s per fan: several receives in one activation */
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < FANS; i++)
            assert_int_equal(weft_send(fan[i], "go", 2, 0), 0);
    long per_go_seq = 2 * (1 + 2 + 31 + 32 + 33 + 100 + 1 + 257 + 1 + 1 + 5);
    long per_go_relays = 0;
    for (int r = 0; r < 22; r++)
        per_go_relays += r % 3 == 1;
    long gos = FANS * ROUNDS;
    settle(t, per_go_seq * gos, per_go_relays * gos);
    /* exact: the "go"s, the fans' sends and relays, the targets'
     * forwards, the asks; nothing counted twice or missed (a direct send
     * is counted just after it is queued: poll briefly) */
    uint64_t want = (uint64_t)(gos + (per_go_seq + 2 * per_go_relays) * gos +
                               asks_made);
    uint64_t got = 0;
    for (int i = 0; i < 10000 && (got = sent_now(rt) - before) < want; i++)
        sleep_ns(MS / 10);
    assert_int_equal(got, want);
    for (int i = 0; i < FANS; i++) {
        weft_actor_stop(fan[i], WEFT_STOP_GRACEFUL, NULL);
        weft_actor_release(fan[i]);
    }
    for (int i = 0; i < TARGETS; i++) {
        weft_actor_stop(t[i], WEFT_STOP_GRACEFUL, NULL);
        weft_actor_release(t[i]);
    }
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- a receive that sends to B, then waits for B ----------------------- */

static _Atomic long counter_final; /* B's count, at its fini */
static _Atomic long counter_now;   /* B's count, as it goes */
static _Atomic int counter_napping; /* B is inside a "nap" */

struct counter_state { long n; };

static int counter_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct counter_state *s = st;
    if (n == 3 && memcmp(msg, "inc", 3) == 0) {
        atomic_store(&counter_now, ++s->n);
        return 0;
    }
    if (n == 3 && memcmp(msg, "nap", 3) == 0) { /* busy on its worker */
        atomic_store(&counter_napping, 1);
        sleep_ns(100 * MS);
        atomic_store(&counter_napping, 0);
        return 0;
    }
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = s->n;
    return weft_actor_reply(cx, r, free);
}

static void counter_fini(void *st)
{
    atomic_store(&counter_final, ((struct counter_state *)st)->n);
}

static const weft_actor_class COUNTER = {
    .state_size = sizeof(struct counter_state),
    .receive = counter_recv,
    .fini = counter_fini,
    .name = "counter",
};

/* B's count, asked and waited for (from anywhere). */
static int ask_count(weft_actor *b, long *out)
{
    weft_future *f = NULL;
    int rc = weft_ask(b, "count", 5, 0, &f);
    if (rc)
        return rc;
    void *v = NULL;
    rc = weft_future_get(f, LONG_WAIT, &v);
    if (rc == 0)
        *out = *(long *)v;
    weft_future_release(f);
    return rc;
}

/* A task: poll B until its count reaches want; -ETIMEDOUT after 20 s,
 * which is what a send held across the wait would cause. On 2 workers it
 * runs on the other worker (the receive waits until it has started) and
 * watches B's count in memory: a send from it would not do, since the
 * worker it runs on may also hold sends. On 1 worker, where a task that
 * spins would keep B from ever running, each poll is an ask, waited
 * for. */
struct poll_arg {
    weft_actor *b;
    long want;
    int workers;
    _Atomic int started;
};

static int poll_fn(weft_job *job, void *arg)
{
    (void)job;
    struct poll_arg *p = arg;
    atomic_store(&p->started, 1);
    int64_t end = now_ns() + 20000 * MS;
    for (;;) {
        long c = 0;
        if (p->workers > 1) {
            c = atomic_load(&counter_now);
        } else {
            int rc = ask_count(p->b, &c);
            if (rc)
                return rc;
        }
        if (c >= p->want)
            return 0;
        if (now_ns() > end)
            return -ETIMEDOUT;
        sched_yield();
    }
}

enum { OP_SEND, OP_ASK, OP_GET, OP_WAIT, OP_STOP, OP_GET_BUSY };

struct cmd { int op; long k; };

struct driver_state { weft_actor *b; long sent; };

static int driver_init(void *st, void *arg)
{
    ((struct driver_state *)st)->b = arg;
    return 0;
}

static int send_incs(struct driver_state *s, long k)
{
    for (long i = 0; i < k; i++) {
        int rc = weft_send(s->b, "inc", 3, 0);
        if (rc)
            return rc;
        s->sent++;
    }
    return 0;
}

/* Replies with B's count as this receive saw it (OP_ASK), or 0. */
static int driver_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct driver_state *s = st;
    struct cmd *c = msg;
    if (n != sizeof *c)
        return -EINVAL;
    long *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    *r = 0;
    int rc = 0;
    switch (c->op) {
    case OP_SEND: /* and return: the held incs go before the reply */
        rc = send_incs(s, c->k);
        break;
    case OP_ASK: /* the ask is queued behind the held incs */
        if (!(rc = send_incs(s, c->k)))
            rc = ask_count(s->b, r);
        break;
    case OP_GET:
    case OP_WAIT:
    case OP_GET_BUSY: { /* the task exists before the incs are sent */
        struct poll_arg p = {s->b, s->sent + c->k,
                             weft_runtime_workers(weft_actor_runtime(cx)),
                             0};
        weft_future *f = NULL;
        if ((rc = weft_submit(weft_actor_runtime(cx), poll_fn, &p, NULL,
                              &f)))
            break;
        /* not waiting for our own sends: for the task, run elsewhere */
        for (int64_t end = now_ns() + 20000 * MS;
             c->op != OP_GET_BUSY && p.workers > 1 &&
             !atomic_load(&p.started) && now_ns() < end;)
            sched_yield();
        rc = send_incs(s, c->k);
        if (c->op != OP_WAIT) {
            int g = weft_future_get(f, LONG_WAIT, NULL);
            rc = rc ? rc : g;
        } else {
            size_t ready = 0, nready = 0;
            int w = weft_wait(&f, 1, 1, LONG_WAIT, &ready, &nready);
            rc = rc ? rc : w ? w : weft_future_get(f, 0, NULL);
        }
        weft_future_release(f);
        *r = s->sent;
        break;
    }
    case OP_STOP:
        if (!(rc = send_incs(s, c->k)))
            rc = weft_actor_stop(s->b, WEFT_STOP_GRACEFUL, NULL);
        break;
    default:
        rc = -EINVAL;
    }
    if (rc) {
        free(r);
        return rc;
    }
    return weft_actor_reply(cx, r, free);
}

static const weft_actor_class DRIVER = {
    .state_size = sizeof(struct driver_state),
    .init = driver_init,
    .receive = driver_recv,
    .name = "driver",
};

static long drive(weft_actor *a, int op, long k)
{
    struct cmd c = {op, k};
    weft_future *f = NULL;
    assert_int_equal(weft_ask(a, &c, sizeof c, 0, &f), 0);
    void *v = NULL;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &v), 0);
    assert_non_null(v);
    long r = *(long *)v;
    weft_future_release(f);
    return r;
}

/* A runtime of `workers` with a counter B and a driver A that sends to
 * it (every test's start). */
static weft_runtime *start_both(int workers, weft_actor **a, weft_actor **b)
{
    weft_runtime *rt = test_runtime(workers, NULL);
    assert_non_null(rt);
    assert_int_equal(weft_actor_spawn(rt, &COUNTER, NULL, NULL, b), 0);
    assert_int_equal(weft_actor_spawn(rt, &DRIVER, *b, NULL, a), 0);
    return rt;
}

/* Graceful stops of a and b, their handles released, then rt destroyed
 * (every test's end). */
static void stop_both(weft_runtime **rt, weft_actor *a, weft_actor *b)
{
    weft_actor_stop(a, WEFT_STOP_GRACEFUL, NULL);
    weft_actor_release(a);
    weft_actor_stop(b, WEFT_STOP_GRACEFUL, NULL);
    weft_actor_release(b);
    assert_int_equal(weft_runtime_destroy(rt), 0);
}

/* Sends to B and returns: once the reply is in, B's mailbox has every
 * inc ahead of any later message (an ask from here). */
static void test_send_then_return(void **s)
{
    (void)s;
    for (int workers = 1; workers <= 2; workers++) {
        weft_actor *b = NULL, *a = NULL;
        weft_runtime *rt = start_both(workers, &a, &b);
        long total = 0;
        for (long k = 1; k <= 70; k++) {
            total += k;
            assert_int_equal(drive(a, OP_SEND, k), 0);
            long c = 0;
            assert_int_equal(ask_count(b, &c), 0);
            assert_int_equal(c, total);
        }
        stop_both(&rt, a, b);
    }
}

/* Sends to B then asks B and waits: the ask must find every inc ahead of
 * it (and must not deadlock, on 1 worker too). */
static void send_then_ask(int workers)
{
    weft_actor *b = NULL, *a = NULL;
    weft_runtime *rt = start_both(workers, &a, &b);
    long total = 0;
    static const long ks[] = {1, 5, 31, 32, 33, 64, 200, 1000};
    for (int i = 0; i < (int)(sizeof ks / sizeof ks[0]); i++) {
        total += ks[i];
        assert_int_equal(drive(a, OP_ASK, ks[i]), total);
    }
    stop_both(&rt, a, b);
}

/* Sends to B then waits (weft_future_get or weft_wait) on a task that
 * only completes once B has handled those sends. */
static void send_then_wait(int workers, int op)
{
    weft_actor *b = NULL, *a = NULL;
    weft_runtime *rt = start_both(workers, &a, &b);
    atomic_store(&counter_now, 0);
    long total = 0;
    static const long ks[] = {1, 7, 32, 100};
    for (int i = 0; i < (int)(sizeof ks / sizeof ks[0]); i++) {
        total += ks[i];
        assert_int_equal(drive(a, op, ks[i]), total);
    }
    long c = 0;
    assert_int_equal(ask_count(b, &c), 0);
    assert_int_equal(c, total);
    stop_both(&rt, a, b);
}

/* As send_then_wait on 2 workers, with B busy on the other worker (a
 * nap) while the receive sends: the first send does not schedule B, so
 * no activation of B runs on the waiting thread, and only the publish
 * before the wait (the hook) lets B see the held sends; the task runs in
 * place, watching B's count. */
static void test_send_then_get_busy(void **s)
{
    (void)s;
    weft_actor *b = NULL, *a = NULL;
    weft_runtime *rt = start_both(2, &a, &b);
    atomic_store(&counter_now, 0);
    long total = 0;
    static const long ks[] = {2, 9, 40};
    for (int i = 0; i < (int)(sizeof ks / sizeof ks[0]); i++) {
        assert_int_equal(weft_send(b, "nap", 3, 0), 0);
        int64_t end = now_ns() + LONG_WAIT;
        while (!atomic_load(&counter_napping) && now_ns() < end)
            sched_yield();
        total += ks[i];
        assert_int_equal(drive(a, OP_GET_BUSY, ks[i]), total);
    }
    stop_both(&rt, a, b);
}

/* Sends to B then stops B gracefully, from one receive: B handles every
 * inc before its fini. */
static void test_stop_after_sends(void **s)
{
    (void)s;
    for (int workers = 1; workers <= 2; workers++) {
        for (long k = 1; k <= 300; k += 37) {
            weft_actor *b = NULL, *a = NULL;
            weft_runtime *rt = start_both(workers, &a, &b);
            atomic_store(&counter_final, -1);
            weft_future *done = NULL;
            assert_int_equal(drive(a, OP_STOP, k), 0);
            /* B is stopping: a second stop only returns its future */
            int rc = weft_actor_stop(b, WEFT_STOP_GRACEFUL, &done);
            assert_true(rc == -EALREADY || rc == WEFT_ACTOR_DEAD);
            if (done) {
                assert_int_equal(weft_future_get(done, LONG_WAIT, NULL), 0);
                weft_future_release(done);
            }
            assert_int_equal(weft_runtime_destroy(&rt), 0);
            assert_int_equal(atomic_load(&counter_final), k);
            (void)a;
        }
    }
}

/* The parameterised tests: workers, and for send_then_wait the wait. */
typedef struct param {
    int workers, op;
} param;

static void test_order_interleaved(void **s)
{
    order_interleaved(((const param *)*s)->workers);
}

static void test_send_then_ask(void **s)
{
    send_then_ask(((const param *)*s)->workers);
}

static void test_send_then_wait(void **s)
{
    const param *p = *s;
    send_then_wait(p->workers, p->op);
}

/* A receive's sends to an actor of another runtime are not held: that
 * runtime may be destroyed before the receive returns, and its destroy
 * frees the target. X (on rt1) sends three to Y (on rt2) and, before it
 * returns, rt2 is destroyed: destroy must find all three queued and let
 * Y handle them (before, two were held: lost, then published into the
 * freed Y when the receive returned). */
static weft_actor *xrt_y;
static _Atomic int xrt_handled, xrt_sent, xrt_gone;

static int xrt_count(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx, (void)st, (void)msg, (void)n;
    atomic_fetch_add(&xrt_handled, 1);
    return 0;
}

static int xrt_send(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx, (void)st, (void)msg, (void)n;
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++)
        rc = weft_send(xrt_y, "m", 1, 0);
    atomic_store(&xrt_sent, rc ? -1 : 1);
    int64_t end = now_ns() + 60000 * MS;
    while (!atomic_load(&xrt_gone) && now_ns() < end)
        sched_yield(); /* no weft call: it would publish */
    return 0;
}

static const weft_actor_class XRT_Y = {.name = "y", .receive = xrt_count};
static const weft_actor_class XRT_X = {.name = "x", .receive = xrt_send};

static void test_other_runtime(void **s)
{
    (void)s;
    weft_runtime *rt1 = test_runtime(1, NULL), *rt2 = test_runtime(1, NULL);
    assert_non_null(rt1);
    assert_non_null(rt2);
    weft_actor *x;
    atomic_store(&xrt_handled, 0);
    atomic_store(&xrt_sent, 0);
    atomic_store(&xrt_gone, 0);
    assert_int_equal(weft_actor_spawn(rt2, &XRT_Y, NULL, NULL, &xrt_y), 0);
    assert_int_equal(weft_actor_spawn(rt1, &XRT_X, NULL, NULL, &x), 0);
    assert_int_equal(weft_send(x, "go", 2, 0), 0);
    int64_t end = now_ns() + 60000 * MS;
    while (!atomic_load(&xrt_sent) && now_ns() < end)
        sched_yield();
    assert_int_equal(atomic_load(&xrt_sent), 1);
    assert_int_equal(weft_runtime_destroy(&rt2), 0); /* frees Y */
    int handled = atomic_load(&xrt_handled);
    atomic_store(&xrt_gone, 1);
    weft_actor_stop(x, WEFT_STOP_GRACEFUL, NULL);
    weft_actor_release(x);
    assert_int_equal(weft_runtime_destroy(&rt1), 0);
    assert_int_equal(handled, 3);
}

#define PARAM_TEST(name, fn, p) {name, fn, NULL, NULL, (void *)(p)}

int main(void)
{
    static const param one = {1, 0}, two = {2, 0}, get1 = {1, OP_GET},
                       get2 = {2, OP_GET}, wait1 = {1, OP_WAIT},
                       wait2 = {2, OP_WAIT};
    const struct CMUnitTest tests[] = {
        PARAM_TEST("order_interleaved_1", test_order_interleaved, &one),
        PARAM_TEST("order_interleaved_2", test_order_interleaved, &two),
        cmocka_unit_test(test_send_then_return),
        PARAM_TEST("send_then_ask_1", test_send_then_ask, &one),
        PARAM_TEST("send_then_ask_2", test_send_then_ask, &two),
        PARAM_TEST("send_then_get_1", test_send_then_wait, &get1),
        PARAM_TEST("send_then_get_2", test_send_then_wait, &get2),
        PARAM_TEST("send_then_wait_1", test_send_then_wait, &wait1),
        PARAM_TEST("send_then_wait_2", test_send_then_wait, &wait2),
        cmocka_unit_test(test_send_then_get_busy),
        cmocka_unit_test(test_stop_after_sends),
        cmocka_unit_test(test_other_runtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
