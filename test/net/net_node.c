/* One rank of a multi-process lib/net test, started three times by
 * run_nodes.py (tcp: WEFT_PEERS and WEFT_RANK set; mpi: under mpirun).
 * Usage: net_node SCENARIO. Exits 0 when this rank saw what it should.
 *
 *   basic     remote tasks on every rank and on any rank, object fetches
 *             between every pair, a failing task, a barrier.
 *   kill      rank 0 hands out idempotent tasks (some pinned on rank 2);
 *             rank 2 SIGKILLs itself in the middle of its third task; the
 *             survivors finish every task with the right result.
 *   mismatch  rank 1 registers one more remote function: every rank's
 *             weft_net_create must fail with -EPROTO.
 *   garbage   like basic, after rank 0 has counted at least 3 dropped
 *             streams of garbage (sent by the driver). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#define LONG_WAIT (120ll * 1000000000ll)

static int g_rank = -1;
static int g_ran;

#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s\n",        \
                    g_rank, __FILE__, __LINE__, #c);                     \
            exit(1);                                                     \
        }                                                                \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int t_rank(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    *res = weft_bytes_copy(&g_rank, sizeof g_rank);
    return 0;
}
WEFT_REMOTE(t_rank)

static int t_double(const void *arg, size_t len, weft_bytes **res)
{
    long x;
    if (len != sizeof x)
        return -EINVAL;
    memcpy(&x, arg, sizeof x);
    if (g_rank == 2 && __atomic_add_fetch(&g_ran, 1, __ATOMIC_SEQ_CST) == 3)
        raise(SIGKILL); /* dies mid-task, replies owed */
    sleep_ms(5);
    x *= 2;
    *res = weft_bytes_copy(&x, sizeof x);
    return 0;
}
WEFT_REMOTE(t_double)

static int t_fail(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 9;
}
WEFT_REMOTE(t_fail)

static int t_extra(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}

static int take_int(weft_future *f, int *st)
{
    void *r = NULL;
    *st = weft_future_get(f, LONG_WAIT, &r);
    int v = -1;
    if (!*st && r && ((weft_bytes *)r)->len == sizeof v)
        memcpy(&v, ((weft_bytes *)r)->data, sizeof v);
    weft_future_release(f);
    return v;
}

static void basic(weft_node *n)
{
    int size = weft_net_size(n), st;
    weft_remote_opts o = weft_remote_opts_default();
    for (int to = 0; to < size; to++) {
        weft_future *f;
        o.node = to;
        CHECK(!weft_submit_remote(n, "t_rank", NULL, 0, &o, &f));
        CHECK(take_int(f, &st) == to && st == 0);
        CHECK(!weft_submit_remote(n, "t_fail", NULL, 0, &o, &f));
        CHECK(weft_future_get(f, LONG_WAIT, NULL) == 9);
        weft_future_release(f);
    }
    enum { N = 64 };
    weft_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(!weft_submit_remote(n, "t_rank", "x", 1, NULL, &fs[i]));
    for (int i = 0; i < N; i++) {
        int r = take_int(fs[i], &st);
        CHECK(st == 0 && r >= 0 && r < size);
    }
    /* objects: each rank puts one; everyone fetches everyone's */
    uint8_t id[WEFT_OBJECT_ID_LEN] = {0};
    size_t len = 3u << 20;
    unsigned char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 7 + (size_t)g_rank);
    id[0] = (uint8_t)g_rank;
    CHECK(!weft_net_object_put(n, id, data, len));
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    for (int from = 0; from < size; from++) {
        weft_future *f;
        id[0] = (uint8_t)from;
        CHECK(!weft_net_object_fetch(n, id, WEFT_NODE_ANY, &f));
        void *r;
        CHECK(weft_future_get(f, LONG_WAIT, &r) == 0);
        weft_bytes *b = r;
        CHECK(b->len == len);
        for (size_t i = 0; i < len; i += 4099)
            CHECK(b->data[i] == (unsigned char)(i * 7 + (size_t)from));
        weft_future_release(f);
    }
    free(data);
    CHECK(!weft_net_barrier(n, LONG_WAIT));
}

static void kill_run(weft_node *n)
{
    /* every rank has met every other before rank 2 may die (a rank that
     * dies before it is met fails weft_net_create with -EHOSTDOWN) */
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    if (g_rank == 0) {
        enum { N = 120 };
        weft_future *fs[N];
        weft_remote_opts o = weft_remote_opts_default();
        o.flags = WEFT_REMOTE_IDEMPOTENT;
        for (long i = 0; i < N; i++) {
            o.node = i % 4 == 0 ? 2 : WEFT_NODE_ANY;
            CHECK(!weft_submit_remote(n, "t_double", &i, sizeof i, &o,
                                      &fs[i]));
        }
        for (long i = 0; i < N; i++) {
            void *r;
            CHECK(weft_future_get(fs[i], LONG_WAIT, &r) == 0);
            long v;
            memcpy(&v, ((weft_bytes *)r)->data, sizeof v);
            CHECK(v == 2 * i);
            weft_future_release(fs[i]);
        }
        weft_net_stats s;
        weft_net_stats_get(n, &s);
        printf("rank 0: all %d tasks done, %lu run again\n", N,
               (unsigned long)s.tasks_rerun);
        CHECK(s.tasks_rerun > 0 && weft_net_alive(n, 2) == 0);
    }
    CHECK(!weft_net_barrier(n, LONG_WAIT));
}

static void garbage(weft_node *n)
{
    if (g_rank == 0) {
        weft_net_stats s;
        for (int i = 0; i < 30000; i++) {
            weft_net_stats_get(n, &s);
            if (s.dropped >= 3)
                break;
            sleep_ms(1);
        }
        printf("rank 0: %lu garbage streams dropped\n",
               (unsigned long)s.dropped);
        CHECK(s.dropped >= 3);
    }
    basic(n);
}

int main(int argc, char **argv)
{
    const char *sc = argc > 1 ? argv[1] : "basic";
    const char *tr = getenv("WEFT_TRANSPORT");
    if (tr && !weft_transport_find(tr)) {
        printf("no transport '%s' in this build: skipped\n", tr);
        return 77;
    }
    const char *r = getenv("WEFT_RANK");
    if (!r)
        r = getenv("OMPI_COMM_WORLD_RANK");
    g_rank = r ? atoi(r) : -1;
    if (!strcmp(sc, "mismatch") && g_rank == 1)
        weft_remote_register("t_extra", t_extra);
    weft_config c = weft_config_default();
    c.workers = 2;
    c.pin = 0;
    weft_runtime *rt;
    CHECK(!weft_runtime_create(&rt, &c));
    weft_net_config nc = weft_net_config_default();
    nc.params.dead_timeout_ms = 1500;
    nc.join_timeout_ms = 60000;
    weft_node *n = NULL;
    int rc = weft_net_create(&n, rt, &nc);
    if (!strcmp(sc, "mismatch")) {
        printf("rank %d: weft_net_create: %s\n", g_rank, strerror(-rc));
        CHECK(rc == -EPROTO);
        weft_runtime_destroy(&rt);
        return 0;
    }
    CHECK(rc == 0);
    CHECK(weft_net_rank(n) == g_rank); /* g_rank: set before any task */
    if (!strcmp(sc, "basic"))
        basic(n);
    else if (!strcmp(sc, "kill"))
        kill_run(n);
    else if (!strcmp(sc, "garbage"))
        garbage(n);
    else
        CHECK(!"unknown scenario");
    CHECK(!weft_net_destroy(&n));
    CHECK(!weft_runtime_destroy(&rt));
    printf("rank %d: ok\n", g_rank);
    return 0;
}
