/* weft_bytes and the cache of big blocks behind it (lib/net/registry.c):
 * a freed big block serves the next request of at least half its size;
 * smaller requests and small blocks do not take it; trimming empties the
 * cache; blocks made, filled, checked and freed by several threads at
 * once (some freed by a thread other than the one that made them) keep
 * their contents. And the empty payload: this program registers no
 * remote function, so its nodes' hellos carry no names, which the loop
 * transport delivers as no block at all; two nodes still meet. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft.h>

#include "net_internal.h"

#define MIB (1u << 20)

static void test_reuse(void **state)
{
    (void)state;
    weft__bytes_trim(true);
    weft_bytes *a = weft_bytes_new(4 * MIB);
    assert_non_null(a);
    memset(a->data, 1, a->len);
    weft_bytes_free(a);
    weft_bytes *b = weft_bytes_new(3 * MIB); /* at least half: a again */
    assert_ptr_equal(b, a);
    assert_int_equal(b->len, 3 * MIB);
    memset(b->data, 2, b->len);
    weft_bytes_free(b);
    weft_bytes *c = weft_bytes_new(MIB); /* less than half: not a */
    assert_non_null(c);
    assert_ptr_not_equal(c, a);
    memset(c->data, 3, c->len);
    weft_bytes *d = weft_bytes_new(4 * MIB); /* a, the whole of it */
    assert_ptr_equal(d, a);
    memset(d->data, 4, d->len);
    weft_bytes_free(c);
    weft_bytes_free(d);
    weft__bytes_trim(true);
    weft_bytes *s = weft_bytes_new(100); /* small: never cached */
    assert_non_null(s);
    assert_int_equal(s->len, 100);
    weft_bytes_free(s);
    weft_bytes_free(NULL);
    weft_bytes *z = weft_bytes_copy("abc", 3);
    assert_memory_equal(z->data, "abc", 3);
    weft_bytes_free(z);
}

/* More blocks than the cache keeps, then far more bytes: each comes back
 * intact and the cache never hands out one block twice. */
static void test_many(void **state)
{
    (void)state;
    enum { K = 12 };
    weft_bytes *b[K];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < K; i++) {
            b[i] = weft_bytes_new((size_t)(i % 4 + 1) * 6 * MIB);
            assert_non_null(b[i]);
            memset(b[i]->data, i, b[i]->len);
            for (int j = 0; j < i; j++)
                assert_ptr_not_equal(b[i], b[j]);
        }
        for (int i = 0; i < K; i++) {
            assert_int_equal(b[i]->data[b[i]->len - 1], i);
            weft_bytes_free(b[i]);
        }
    }
    /* two blocks the byte limit does not let the cache keep together */
    weft_bytes *x = weft_bytes_new(140 * MIB), *y = weft_bytes_new(140 * MIB);
    assert_true(x && y && x != y);
    x->data[0] = y->data[0] = 1;
    x->data[x->len - 1] = y->data[y->len - 1] = 2;
    weft_bytes_free(x);
    weft_bytes_free(y);
    weft_bytes *z = weft_bytes_new(140 * MIB);
    assert_ptr_equal(z, y); /* x went to make room */
    weft_bytes_free(z);
    weft__bytes_trim(false);
    weft__bytes_trim(true);
}

enum { THREADS = 4, ITERS = 400 };
static weft_bytes *_Atomic handoff[THREADS];

static void *churn(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t r = (uint64_t)me * 7919 + 1;
    for (int i = 0; i < ITERS; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = MIB + (size_t)(r >> 40) % (2 * MIB);
        weft_bytes *b = weft_bytes_new(len);
        if (!b || b->len != len)
            return (void *)1;
        unsigned char v = (unsigned char)(me * 31 + i);
        b->data[0] = v;
        b->data[len / 2] = v;
        b->data[len - 1] = v;
        if (b->data[0] != v || b->data[len / 2] != v || b->data[len - 1] != v)
            return (void *)1;
        /* every other block is freed by the next thread */
        if (i % 2)
            b = atomic_exchange(&handoff[(me + 1) % THREADS], b);
        weft_bytes_free(b);
        if (i % 50 == 0)
            weft__bytes_trim(false);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn,
                                        (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        assert_null(rc);
    }
    for (int i = 0; i < THREADS; i++)
        weft_bytes_free(atomic_exchange(&handoff[i], NULL));
    weft__bytes_trim(true);
}

typedef struct nofns {
    weft_runtime *rt;
    weft_node *node;
    int rank, rc;
    char group[64];
} nofns;

static void *start_nofns(void *p)
{
    nofns *s = p;
    weft_net_config c = weft_net_config_default();
    c.transport = "loop";
    c.params.peers = s->group;
    c.params.rank = s->rank;
    c.params.size = 2;
    c.join_timeout_ms = 20000;
    s->rc = weft_net_create(&s->node, s->rt, &c);
    return NULL;
}

static void test_no_functions(void **state)
{
    (void)state;
    weft_config c = weft_config_default();
    c.workers = 1;
    c.pin = 0;
    nofns s[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        s[i] = (nofns){.rank = i, .rc = -1};
        snprintf(s[i].group, sizeof s[i].group, "nofns-%d", (int)getpid());
        assert_int_equal(weft_runtime_create(&s[i].rt, &c), 0);
        assert_int_equal(pthread_create(&th[i], NULL, start_nofns, &s[i]),
                         0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].rc, 0);
    }
    weft_future *f;
    weft_remote_opts o = weft_remote_opts_default();
    o.node = 1;
    assert_int_equal(weft_submit_remote(s[0].node, "none", NULL, 0, &o, &f),
                     -ENOENT);
    /* and they talk: an object of rank 1 fetched by rank 0 */
    uint8_t id[WEFT_OBJECT_ID_LEN] = {'n', 'o', 'f', 'n'};
    assert_int_equal(weft_net_object_put(s[1].node, id, "abc", 3), 0);
    assert_int_equal(weft_net_object_fetch(s[0].node, id, 1, &f), 0);
    void *r = NULL;
    assert_int_equal(weft_future_get(f, -1, &r), 0);
    assert_non_null(r);
    assert_int_equal(((weft_bytes *)r)->len, 3);
    weft_future_release(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(weft_net_destroy(&s[i].node), 0);
        weft_runtime_destroy(&s[i].rt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_no_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
