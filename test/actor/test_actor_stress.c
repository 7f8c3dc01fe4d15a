/* Actors under a storm: outside threads send, ask, and stop actors while
 * the actors forward messages to each other (some with bounded
 * mailboxes, some failing now and then and restarting, some dying). At
 * the end every ask completed with a status it may have, and the
 * runtime's books balance: every accepted message was handled or
 * dropped, and no actor is left alive once all are stopped. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_future_util.h"

enum { ACTORS = 48, THREADS = 4 };

static weft_actor *actors[ACTORS];

struct hop {
    int hops;
    int fail; /* 1: the receive fails (after forwarding) */
    uint64_t seed;
};

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int relay_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    (void)cx;
    if (n != sizeof(struct hop))
        return -EPROTO;
    ++*(long *)st;
    struct hop h = *(struct hop *)msg;
    if (h.hops > 0) {
        h.hops--;
        h.fail = next_rand(&h.seed) % 64 == 0;
        weft_actor *to = actors[next_rand(&h.seed) % ACTORS];
        /* never wait inside a receive: two full actors waiting on each
         * other would each hold a worker */
        int rc = weft_send(to, &h, sizeof h, WEFT_SEND_NOWAIT);
        if (rc && rc != -EAGAIN && rc != WEFT_ACTOR_DEAD)
            return rc;
    }
    return ((struct hop *)msg)->fail ? -EIO : 0;
}

static const weft_actor_class RELAY = {
    .state_size = sizeof(long),
    .receive = relay_recv,
};

struct storm {
    int id;
    long ops;
    long bad; /* unexpected return codes */
    weft_future **asks;
    long nasks;
};

static void one_op(struct storm *s, uint64_t *seed)
{
    weft_actor *a = actors[next_rand(seed) % ACTORS];
    struct hop h = {(int)(next_rand(seed) % 8), next_rand(seed) % 32 == 0,
                    next_rand(seed) | 1};
    unsigned op = next_rand(seed) % 100000, flags =
        next_rand(seed) % 2 ? WEFT_SEND_NOWAIT : 0;
    int rc;
    if (op < 3) { /* rarely: a stop, either kind */
        rc = weft_actor_stop(a, op % 2 ? WEFT_STOP_NOW : WEFT_STOP_GRACEFUL,
                             NULL);
        s->bad += rc != 0 && rc != -EALREADY && rc != WEFT_ACTOR_DEAD;
    } else if (op < 30000) {
        weft_future *f = NULL;
        rc = weft_ask(a, &h, sizeof h, flags, &f);
        if (rc == 0)
            s->asks[s->nasks++] = f;
        else
            s->bad += rc != -EAGAIN && rc != WEFT_ACTOR_DEAD;
    } else {
        rc = weft_send(a, &h, sizeof h, flags);
        s->bad += rc != 0 && rc != -EAGAIN && rc != WEFT_ACTOR_DEAD;
    }
}

static void *storm_thread(void *p)
{
    struct storm *s = p;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(s->id + 1);
    for (long i = 0; i < s->ops; i++)
        one_op(s, &seed);
    return NULL;
}

static void test_storm(void **st)
{
    (void)st;
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    for (int i = 0; i < ACTORS; i++) {
        weft_actor_opts o = weft_actor_opts_default();
        o.capacity = i % 3 == 0 ? 4 : 0;
        o.max_restarts = i % 4 == 0 ? 3 : -1;
        o.batch = 1 + i % 8;
        assert_int_equal(weft_actor_spawn(rt, &RELAY, NULL, &o, &actors[i]),
                         0);
    }
    long ops = 200000 / test_scale();
    struct storm s[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (struct storm){i, ops, 0, calloc((size_t)ops, sizeof(void *)),
                              0};
        assert_non_null(s[i].asks);
        assert_int_equal(pthread_create(&th[i], NULL, storm_thread, &s[i]),
                         0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    long ok = 0, failed = 0, dead = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(s[i].bad, 0);
        for (long k = 0; k < s[i].nasks; k++) {
            int rc = weft_future_get(s[i].asks[k], LONG_WAIT, NULL);
            assert_true(rc == 0 || rc == -EIO || rc == WEFT_ACTOR_DEAD);
            ok += rc == 0;
            failed += rc == -EIO;
            dead += rc == WEFT_ACTOR_DEAD;
            weft_future_release(s[i].asks[k]);
        }
        free(s[i].asks);
    }
    assert_true(ok > 0);
    /* stop everything, wait for the books to balance */
    weft_future *done[ACTORS];
    for (int i = 0; i < ACTORS; i++) {
        int rc = weft_actor_stop(actors[i], WEFT_STOP_NOW, &done[i]);
        assert_true(rc == 0 || rc == -EALREADY || rc == WEFT_ACTOR_DEAD);
        if (done[i]) {
            assert_int_equal(weft_future_get(done[i], LONG_WAIT, NULL), 0);
            weft_future_release(done[i]);
        }
    }
    weft_runtime_stats rs;
    int64_t end = now_ns() + LONG_WAIT;
    do {
        assert_int_equal(weft_stats_runtime(rt, &rs), 0);
        if (rs.actors == 0 && rs.mailbox_backlog == 0)
            break;
        sleep_ns(MS);
    } while (now_ns() < end);
    assert_int_equal(rs.actors, 0);
    assert_int_equal(rs.mailbox_backlog, 0);
    assert_true(rs.messages_handled <= rs.messages_sent);
    for (int i = 0; i < ACTORS; i++) {
        assert_int_equal(weft_actor_alive(actors[i]), 0);
        weft_actor_release(actors[i]);
    }
    print_message("asks: %ld ok, %ld failed, %ld dropped; %llu messages "
                  "sent, %llu handled, %llu restarts\n", ok, failed, dead,
                  (unsigned long long)rs.messages_sent,
                  (unsigned long long)rs.messages_handled,
                  (unsigned long long)rs.actor_restarts);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

/* --- short-lived senders --------------------------------------------------
 * Waves of outside threads each send to one sink and exit, so envelopes
 * allocated by threads that are gone are freed into the sink's cache
 * (lib/actor/env.c) and every exiting thread's cache is drained. The
 * sink's sum says no message was lost, duplicated or altered. */

struct sink_state {
    uint64_t sum;
    long n;
};

static int sum_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    struct sink_state *s = st;
    if (n == 1) { /* the query */
        uint64_t *r = malloc(2 * sizeof *r);
        if (!r)
            return -ENOMEM;
        r[0] = s->sum;
        r[1] = (uint64_t)s->n;
        return weft_actor_reply(cx, r, free);
    }
    uint64_t v[3];
    memcpy(v, msg, sizeof v);
    if (v[1] != ~v[0] || v[2] != v[0] * 3)
        return -EPROTO; /* a torn or reused envelope */
    s->sum += v[0];
    s->n++;
    return 0;
}

static const weft_actor_class SUM = {
    .state_size = sizeof(struct sink_state),
    .receive = sum_recv,
};

struct wave_arg {
    weft_actor *sink;
    uint64_t first;
    long n;
    int rc;
};

static void *wave_thread(void *p)
{
    struct wave_arg *w = p;
    for (long i = 0; i < w->n && !w->rc; i++) {
        uint64_t x = w->first + (uint64_t)i, v[3] = {x, ~x, x * 3};
        w->rc = weft_send(w->sink, v, sizeof v, 0);
    }
    return NULL;
}

static void test_short_lived_senders(void **st)
{
    (void)st;
    enum { WAVES = 20, PER_WAVE = 4 };
    weft_runtime *rt = test_runtime(2, NULL);
    assert_non_null(rt);
    weft_actor *sink = NULL;
    assert_int_equal(weft_actor_spawn(rt, &SUM, NULL, NULL, &sink), 0);
    long n = 4000 / test_scale();
    uint64_t want = 0, next = 1;
    for (int w = 0; w < WAVES; w++) {
        struct wave_arg a[PER_WAVE];
        pthread_t th[PER_WAVE];
        for (int i = 0; i < PER_WAVE; i++) {
            a[i] = (struct wave_arg){sink, next, n, 0};
            for (long k = 0; k < n; k++)
                want += next + (uint64_t)k;
            next += (uint64_t)n;
            assert_int_equal(pthread_create(&th[i], NULL, wave_thread, &a[i]),
                             0);
        }
        for (int i = 0; i < PER_WAVE; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(a[i].rc, 0);
        }
    }
    weft_future *f = NULL;
    assert_int_equal(weft_ask(sink, "q", 1, 0, &f), 0);
    void *r = NULL;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &r), 0);
    assert_int_equal(((uint64_t *)r)[1], (uint64_t)WAVES * PER_WAVE * n);
    assert_true(((uint64_t *)r)[0] == want);
    weft_future_release(f);
    assert_int_equal(weft_actor_restarts(sink), 0);
    weft_actor_release(sink);
    assert_int_equal(weft_runtime_destroy(&rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storm),
        cmocka_unit_test(test_short_lived_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
