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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
