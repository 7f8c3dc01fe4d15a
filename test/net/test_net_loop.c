/* lib/net over the in-process "loop" transport: three nodes, each with
 * its own runtime, in one process. Remote tasks on a given rank, on any
 * rank (and stolen by idle ones), failures of the function, objects put
 * on one node and fetched by the others, a node cut off while it holds
 * tasks (idempotent ones run again elsewhere, the others fail), the
 * barrier, bad arguments, and destroying with work outstanding. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <weft.h>

#include "net_internal.h"

#define NODES 3
#define MS 1000000ll
#define LONG_WAIT (120000 * MS)

static weft_runtime *rts[NODES];
static weft_node *nodes[NODES];
static char group[64];
static _Atomic int hold_rank = -1; /* t_hold blocks on this rank */
static _Atomic int released;

/* Which node runs the calling worker. */
static int my_rank(void)
{
    weft_runtime *rt = weft_current_runtime();
    for (int i = 0; i < NODES; i++)
        if (rts[i] == rt)
            return i;
    return -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int t_square(const void *arg, size_t len, weft_bytes **res)
{
    uint64_t x;
    if (len != sizeof x)
        return -EINVAL;
    memcpy(&x, arg, sizeof x);
    x *= x;
    *res = weft_bytes_copy(&x, sizeof x);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_square)

static int t_where(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    int r = my_rank();
    if (len) /* a little work, so that a queue builds up */
        sleep_ms(2);
    *res = weft_bytes_copy(&r, sizeof r);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_where)

static int t_fail(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    *res = weft_bytes_copy("x", 1); /* dropped: the task fails */
    return 42;
}
WEFT_REMOTE(t_fail)

/* Blocks while it runs on hold_rank, until released. */
static int t_hold(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    int me = my_rank();
    while (me == atomic_load(&hold_rank) && !atomic_load(&released))
        sleep_ms(1);
    *res = weft_bytes_copy(&me, sizeof me);
    return 0;
}
WEFT_REMOTE(t_hold)

static int setup(void **state)
{
    (void)state;
    snprintf(group, sizeof group, "test-%d-%ld", (int)getpid(),
             (long)time(NULL));
    weft_config c = weft_config_default();
    c.workers = 2;
    c.pin = 0;
    for (int i = 0; i < NODES; i++)
        if (weft_runtime_create(&rts[i], &c))
            return -1;
    /* weft_net_create waits for every peer: create the three at once */
    pthread_t th[NODES];
    int rcs[NODES];
    struct arg { int i; int *rc; } args[NODES];
    void *(*fn)(void *) = NULL;
    (void)fn;
    for (int i = 0; i < NODES; i++) {
        args[i] = (struct arg){i, &rcs[i]};
        extern void *create_one(void *);
        pthread_create(&th[i], NULL, create_one, &args[i]);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NODES; i++)
        if (rcs[i])
            return -1;
    return 0;
}

void *create_one(void *p)
{
    struct arg { int i; int *rc; } *a = p;
    weft_net_config c = weft_net_config_default();
    c.transport = "loop";
    c.params.peers = group;
    c.params.rank = a->i;
    c.params.size = NODES;
    c.join_timeout_ms = 20000;
    *a->rc = weft_net_create(&nodes[a->i], rts[a->i], &c);
    return NULL;
}

static int teardown(void **state)
{
    (void)state;
    /* every node first: a task of one may still look at rts[] */
    for (int i = 0; i < NODES; i++)
        if (nodes[i])
            weft_net_destroy(&nodes[i]);
    for (int i = 0; i < NODES; i++)
        weft_runtime_destroy(&rts[i]);
    return 0;
}

static uint64_t get_u64(weft_future *f, int *status)
{
    void *r = NULL;
    *status = weft_future_get(f, LONG_WAIT, &r);
    uint64_t v = UINT64_MAX;
    weft_bytes *b = r;
    if (!*status && b && b->len == sizeof v)
        memcpy(&v, b->data, sizeof v);
    weft_future_release(f);
    return v;
}

static int get_int(weft_future *f, int *status)
{
    void *r = NULL;
    *status = weft_future_get(f, LONG_WAIT, &r);
    int v = -100;
    weft_bytes *b = r;
    if (!*status && b && b->len == sizeof v)
        memcpy(&v, b->data, sizeof v);
    weft_future_release(f);
    return v;
}

static void test_ranks(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++) {
        assert_int_equal(weft_net_rank(nodes[i]), i);
        assert_int_equal(weft_net_size(nodes[i]), NODES);
        for (int j = 0; j < NODES; j++)
            assert_int_equal(weft_net_alive(nodes[i], j), 1);
        /* the runtime's statistics count the peers met (weft-top) */
        weft_runtime_stats rs;
        assert_int_equal(weft_stats_runtime(rts[i], &rs), 0);
        assert_int_equal(rs.peers, NODES - 1);
    }
}

/* From every node to every node, by rank: results and where they ran. */
static void test_targeted(void **state)
{
    (void)state;
    for (int from = 0; from < NODES; from++)
        for (int to = 0; to < NODES; to++) {
            weft_remote_opts o = weft_remote_opts_default();
            o.node = to;
            uint64_t x = 1000 + (uint64_t)(from * NODES + to);
            weft_future *f, *g;
            assert_int_equal(weft_submit_remote(nodes[from], "t_square", &x,
                                                sizeof x, &o, &f), 0);
            assert_int_equal(weft_submit_remote(nodes[from], "t_where", NULL,
                                                0, &o, &g), 0);
            int st;
            assert_true(get_u64(f, &st) == x * x);
            assert_int_equal(st, 0);
            assert_int_equal(get_int(g, &st), to);
            assert_int_equal(st, 0);
        }
}

static void test_failure_status(void **state)
{
    (void)state;
    weft_remote_opts o = weft_remote_opts_default();
    o.node = 2;
    weft_future *f;
    assert_int_equal(weft_submit_remote(nodes[0], "t_fail", "a", 1, &o, &f),
                     0);
    void *r = (void *)1;
    assert_int_equal(weft_future_get(f, LONG_WAIT, &r), 42);
    weft_future_release(f);
    /* a bad argument reaches the function and is its error */
    o.node = 1;
    assert_int_equal(weft_submit_remote(nodes[0], "t_square", "abc", 3, &o,
                                        &f), 0);
    assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), -EINVAL);
    weft_future_release(f);
}

static void test_bad_args(void **state)
{
    (void)state;
    weft_future *f;
    weft_remote_opts o = weft_remote_opts_default();
    assert_int_equal(weft_submit_remote(nodes[0], "nope", NULL, 0, &o, &f),
                     -ENOENT);
    o.node = NODES;
    assert_int_equal(weft_submit_remote(nodes[0], "t_where", NULL, 0, &o,
                                        &f), -EINVAL);
    o.node = -7;
    assert_int_equal(weft_submit_remote(nodes[0], "t_where", NULL, 0, &o,
                                        &f), -EINVAL);
    o = weft_remote_opts_default();
    o.flags = 0x80;
    assert_int_equal(weft_submit_remote(nodes[0], "t_where", NULL, 0, &o,
                                        &f), -EINVAL);
    assert_int_equal(weft_submit_remote(NULL, "t_where", NULL, 0, NULL, &f),
                     -EINVAL);
    assert_int_equal(weft_submit_remote(nodes[0], "t_where", NULL, 5, NULL,
                                        &f), -EINVAL);
    assert_int_equal(weft_remote_register("late", t_fail), -EBUSY);
    assert_int_equal(weft_remote_register("", t_fail), -EINVAL);
    assert_null(weft_transport_find("nope"));
    assert_non_null(weft_transport_find("loop"));
    assert_non_null(weft_transport_find("tcp"));
    weft_transport_ops bad = weft__loop_ops;
    bad.abi = 99;
    assert_int_equal(weft_transport_register(&bad), -EINVAL);
    assert_int_equal(weft_transport_register(&weft__loop_ops), -EEXIST);
    weft_node *n = NULL;
    weft_net_config c = weft_net_config_default();
    c.transport = "nope";
    assert_int_equal(weft_net_create(&n, rts[0], &c), -ENOENT);
    c.transport = "loop";
    c.params.size = 1;
    c.params.rank = 3;
    assert_int_equal(weft_net_create(&n, rts[0], &c), -EINVAL);
}

/* Any-node tasks from node 0 (two workers) while 1 and 2 are idle: all
 * run, and the idle nodes steal some. */
static void test_any_and_steal(void **state)
{
    (void)state;
    enum { N = 200 };
    weft_future *fs[N];
    weft_net_stats before[NODES];
    for (int i = 0; i < NODES; i++)
        weft_net_stats_get(nodes[i], &before[i]);
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_submit_remote(nodes[0], "t_where", "w", 1,
                                            NULL, &fs[i]), 0);
    int ran[NODES] = {0};
    for (int i = 0; i < N; i++) {
        int st, r = get_int(fs[i], &st);
        assert_int_equal(st, 0);
        assert_true(r >= 0 && r < NODES);
        ran[r]++;
    }
    uint64_t stolen = 0;
    for (int i = 1; i < NODES; i++) {
        weft_net_stats s;
        weft_net_stats_get(nodes[i], &s);
        stolen += s.tasks_stolen - before[i].tasks_stolen;
    }
    assert_int_equal(ran[1] + ran[2], (int)stolen);
    assert_true(stolen > 0);
}

static void test_objects(void **state)
{
    (void)state;
    uint8_t id[WEFT_OBJECT_ID_LEN] = {7, 7, 7};
    enum { LEN = 100000 };
    unsigned char *data = malloc(LEN);
    for (int i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 13);
    assert_int_equal(weft_net_object_put(nodes[1], id, data, LEN), 0);
    assert_int_equal(weft_net_object_put(nodes[1], id, data, LEN), -EEXIST);
    for (int i = 0; i < NODES; i++) {
        weft_future *f;
        int rc;
        /* the announcement travels: wait until node i knows the place */
        for (int k = 0; (rc = weft_net_object_fetch(nodes[i], id,
                                                     WEFT_NODE_ANY, &f)) ==
                        -ENOENT && k < 20000; k++)
            sleep_ms(1);
        assert_int_equal(rc, 0);
        void *r;
        assert_int_equal(weft_future_get(f, LONG_WAIT, &r), 0);
        weft_bytes *b = r;
        assert_int_equal(b->len, LEN);
        assert_memory_equal(b->data, data, LEN);
        weft_future_release(f);
        /* a task placed by the object runs where it is */
        weft_remote_opts o = weft_remote_opts_default();
        o.node = WEFT_NODE_OBJECT;
        o.object = id;
        assert_int_equal(weft_submit_remote(nodes[i], "t_where", NULL, 0,
                                            &o, &f), 0);
        int st;
        assert_int_equal(get_int(f, &st), 1);
    }
    /* unknown objects */
    uint8_t other[WEFT_OBJECT_ID_LEN] = {9};
    weft_future *f;
    assert_int_equal(weft_net_object_fetch(nodes[0], other, WEFT_NODE_ANY,
                                           &f), -ENOENT);
    assert_int_equal(weft_net_object_fetch(nodes[0], other, 2, &f), 0);
    assert_int_equal(weft_future_get(f, LONG_WAIT, NULL), -ENOENT);
    weft_future_release(f);
    free(data);
}

static void test_barrier(void **state)
{
    (void)state;
    pthread_t th[NODES];
    extern void *barrier_one(void *);
    static int rcs[NODES];
    for (long i = 1; i < NODES; i++)
        pthread_create(&th[i], NULL, barrier_one, (void *)i);
    rcs[0] = weft_net_barrier(nodes[0], LONG_WAIT);
    for (int i = 1; i < NODES; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_int_equal((int)(intptr_t)rc, 0);
    }
    assert_int_equal(rcs[0], 0);
    /* alone it cannot pass */
    assert_int_equal(weft_net_barrier(nodes[0], 20 * MS), -ETIMEDOUT);
}

void *barrier_one(void *p)
{
    return (void *)(intptr_t)weft_net_barrier(nodes[(intptr_t)p], LONG_WAIT);
}

/* Node 2 is cut off while it holds tasks from node 0: the idempotent ones
 * run again elsewhere, the others fail with -EHOSTDOWN. Runs last. */
static void test_dead_node(void **state)
{
    (void)state;
    enum { N = 6 };
    atomic_store(&hold_rank, 2);
    weft_future *fs[N];
    weft_remote_opts o = weft_remote_opts_default();
    o.node = 2;
    for (int i = 0; i < N; i++) {
        o.flags = i % 2 ? WEFT_REMOTE_IDEMPOTENT : 0;
        assert_int_equal(weft_submit_remote(nodes[0], "t_hold", NULL, 0, &o,
                                            &fs[i]), 0);
    }
    sleep_ms(20); /* let them reach node 2 (not required for the result) */
    assert_int_equal(weft__loop_kill(group, 2), 0);
    for (int i = 0; i < N; i++) {
        int st, r = get_int(fs[i], &st);
        if (i % 2) {
            assert_int_equal(st, 0);
            assert_true(r == 0 || r == 1);
        } else {
            assert_int_equal(st, -EHOSTDOWN);
        }
    }
    assert_int_equal(weft_net_alive(nodes[0], 2), 0);
    assert_int_equal(weft_submit_remote(nodes[0], "t_hold", NULL, 0, &o,
                                        &fs[0]), -EHOSTDOWN);
    weft_net_stats s;
    weft_net_stats_get(nodes[0], &s);
    assert_true(s.tasks_rerun >= 1);
    assert_int_equal(s.peers_failed, 1);
    weft_runtime_stats rs;
    assert_int_equal(weft_stats_runtime(rts[0], &rs), 0);
    assert_int_equal(rs.peers, NODES - 2);
    atomic_store(&released, 1);
    /* the survivors still work together */
    o.node = 1;
    o.flags = 0;
    uint64_t x = 5;
    assert_int_equal(weft_submit_remote(nodes[0], "t_square", &x, sizeof x,
                                        &o, &fs[0]), 0);
    int st;
    assert_true(get_u64(fs[0], &st) == 25);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_targeted),
        cmocka_unit_test(test_failure_status),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_any_and_steal),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_dead_node),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
