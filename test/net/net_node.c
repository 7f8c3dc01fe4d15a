/* One rank of a multi-process lib/net test, started three times by
 * run_nodes.py (tcp: WEFT_PEERS and WEFT_RANK set; mpi: under mpirun).
 * Usage: net_node SCENARIO. Exits 0 when this rank saw what it should.
 *
 *   basic     remote tasks on every rank and on any rank, object fetches
 *             between every pair, a failing task, a barrier; then object
 *             fetches between the ranks' stores (checksums, an unknown
 *             ID, an ID already here, a task placed by its object) and
 *             actors published on every rank: numbered sends from every
 *             rank arrive in order, asks get their reply, an unknown
 *             name is -ENOENT.
 *   kill      rank 0 hands out idempotent tasks (some pinned on rank 2);
 *             rank 2 SIGKILLs itself in the middle of its third task; the
 *             survivors finish every task with the right result.
 *   stop      the same, but rank 2 stops (SIGSTOP) instead of dying: its
 *             connections stay open and only the silence of its
 *             heartbeats tells the others (dead_timeout_ms); the driver
 *             kills it once they are done.
 *   mismatch  rank 1 registers one more remote function: every rank's
 *             weft_net_create must fail with -EPROTO.
 *   garbage   like basic, after rank 0 has counted at least 3 dropped
 *             streams of garbage (sent by the driver).
 *   storm     every rank sends from 4 threads at once, 16 tasks in flight
 *             each (NET_TEST_FLIGHT sets how many), to the other ranks: payloads from 0 bytes to 200 KB
 *             (inline and separate transfers), a third flagged cheap,
 *             and relays (a task that sends a task on and waits for it);
 *             every result is checked. A message lost between threads
 *             hangs it, a mixed-up one fails a check.
 *   rma       the transport alone (no node): every rank registers 1 MiB
 *             and sends its address and key to the others; each gets
 *             the next rank's region whole, puts a block into it and
 *             then tells it so (the block must be there when the message
 *             is), and a get past the region's end fails with -EFAULT.
 *             A transport without WEFT_TRANSPORT_RMA is skipped.
 *   famine    every allocation on rank 0 fails for 300 ms (or
 *             NET_FAMINE_MS) while ranks 1 and 2 keep sending it tasks
 *             with 64 KiB arguments (over mpi, payloads that follow their
 *             frames). Each answer is right or -ENOMEM, none is lost (a
 *             lost one hangs), and afterwards every task works: the
 *             streams are still in step. Needs a build with
 *             -Dalloc_faults=true; skipped elsewhere.
 *   big       (mpi) max_payload is 4 GiB; rank 0 runs a task on rank 1
 *             whose result is 2 GiB (never touched), over what MPI's int
 *             counts carry: rank 0 must hear -EMSGSIZE, not wait.
 *   isendfail (mpi, WEFT_MPI_SHM=0) the transport alone: rank 0's next
 *             MPI_Isend fails (this file wraps it, through MPI's
 *             profiling interface); the send's done must hear an error,
 *             not 0. Skipped without MPI. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#ifdef WEFT_ALLOC_FAULTS
#include "alloc.h"
#endif
#ifdef WEFT_TEST_MPI
#include <mpi.h>
#include <stdatomic.h>
#endif

#define LONG_WAIT (120ll * 1000000000ll)

static int g_rank = -1;
static int g_ran;
static int g_stop; /* scenario "stop": rank 2 stops instead of dying */

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
        raise(g_stop ? SIGSTOP : SIGKILL); /* mid-task, replies owed */
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

/* A 2 GiB result, allocated but never written: no memory is used. */
static int t_big(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    *res = weft_bytes_new((size_t)1 << 31);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_big)

static int t_extra(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}

/* The result of t_echo: a checksum of the argument and the rank. */
static uint64_t echo_sum(const void *arg, size_t len, int rank)
{
    const unsigned char *c = arg;
    uint64_t h = 1469598103934665603ull ^ (uint64_t)rank;
    for (size_t i = 0; i < len; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

static int t_echo(const void *arg, size_t len, weft_bytes **res)
{
    uint64_t h = echo_sum(arg, len, g_rank);
    *res = weft_bytes_copy(&h, sizeof h);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_echo)

static weft_node *g_node;

/* arg: {target rank, n bytes}: sends t_echo of n bytes there, waits,
 * checks, and answers the echo's checksum. */
static int t_relay(const void *arg, size_t len, weft_bytes **res)
{
    int32_t a[2];
    if (len != sizeof a || !g_node)
        return -EINVAL;
    memcpy(a, arg, sizeof a);
    unsigned char *buf = calloc(1, (size_t)a[1] + 1);
    for (int32_t i = 0; i < a[1]; i++)
        buf[i] = (unsigned char)(i * 13 + a[0]);
    weft_remote_opts o = weft_remote_opts_default();
    o.node = a[0];
    weft_future *f;
    int rc = weft_submit_remote(g_node, "t_echo", buf, (size_t)a[1], &o, &f);
    if (!rc) {
        void *r = NULL;
        rc = weft_future_get(f, LONG_WAIT, &r);
        weft_bytes *b = r;
        uint64_t want = echo_sum(buf, (size_t)a[1], a[0]);
        if (!rc && (!b || b->len != sizeof want ||
                    memcmp(b->data, &want, sizeof want)))
            rc = -EBADMSG;
        if (!rc)
            *res = weft_bytes_copy(&want, sizeof want);
        weft_future_release(f);
    }
    free(buf);
    return rc;
}
WEFT_REMOTE(t_relay)

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

/* ---- objects between stores ---- */

static uint64_t fnv64(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* Rank r's objects: 1 MiB and a little, a length of its own per rank,
 * kinds 'S', 'T', 'U' (ID byte 0) of the same bytes. */
static size_t obj_len(int r) { return (1u << 20) + (size_t)r * 4099; }

static void obj_id(weft_store_id *id, char kind, int r)
{
    memset(id, 0, sizeof *id);
    id->bytes[0] = (uint8_t)kind;
    id->bytes[1] = (uint8_t)r;
}

/* Write rank r's object of this kind into st, in place, and seal it. */
static void put_object(weft_store *st, char kind, int r)
{
    size_t len = obj_len(r);
    weft_store_id id;
    obj_id(&id, kind, r);
    void *p;
    CHECK(!weft_store_create(st, &id, len, 0, &p));
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)p)[i] = (unsigned char)(i * 29 + i / 509 + r);
    CHECK(!weft_store_seal(st, &id));
}

/* The checksum of rank r's objects, computed apart from any store. */
static uint64_t expected_sum(int r)
{
    size_t len = obj_len(r);
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(i * 29 + i / 509 + r);
    uint64_t h = fnv64(b, len);
    free(b);
    return h;
}

/* Fetch id into the local store: the future's status. */
static int fetch(weft_node *n, const weft_store_id *id, int rank)
{
    weft_future *f;
    int rc = weft_net_object_fetch(n, id->bytes, rank, &f);
    if (rc)
        return rc;
    void *res = (void *)1;
    rc = weft_future_get(f, LONG_WAIT, &res);
    CHECK(res == NULL); /* with a store, the bytes are in the store */
    weft_future_release(f);
    return rc;
}

static void stores(weft_node *n, weft_runtime *rt)
{
    int size = weft_net_size(n);
    weft_store *st;
    CHECK(!weft_runtime_store(rt, &st)); /* this process's own store */
    CHECK(!weft_net_use_store(n, NULL));
    put_object(st, 'S', g_rank);
    put_object(st, 'T', g_rank);
    weft_store_id id;
    obj_id(&id, 'S', g_rank);
    CHECK(!weft_net_object_announce(n, id.bytes));
    CHECK(!weft_net_barrier(n, LONG_WAIT)); /* announcements are out */
    for (int k = 1; k < size; k++) {
        int from = (g_rank + k) % size;
        obj_id(&id, 'S', from); /* found through the announcement */
        CHECK(fetch(n, &id, WEFT_NODE_ANY) == 0);
        obj_id(&id, 'T', from); /* never announced: by rank */
        CHECK(fetch(n, &id, from) == 0);
        for (int kind = 0; kind < 2; kind++) {
            weft_store_obj o;
            obj_id(&id, kind ? 'T' : 'S', from);
            CHECK(!weft_store_get(st, &id, 0, &o));
            CHECK(o.size == obj_len(from));
            CHECK(fnv64(o.data, o.size) == expected_sum(from));
            weft_store_release(st, &o);
        }
        /* held here now: no traffic, whichever rank is named */
        weft_net_stats a, b;
        weft_net_stats_get(n, &a);
        obj_id(&id, 'S', from);
        CHECK(fetch(n, &id, from) == 0);
        weft_net_stats_get(n, &b);
        CHECK(b.bytes_recv - a.bytes_recv < obj_len(from));
        /* nobody has this one */
        obj_id(&id, 'N', from);
        CHECK(fetch(n, &id, from) == -ENOENT);
        CHECK(!weft_store_contains(st, &id));
    }
    /* a task placed by an object runs where the object is: the next
     * rank's 'U' object, announced by it, fetched by nobody */
    int next = (g_rank + 1) % size;
    put_object(st, 'U', g_rank);
    obj_id(&id, 'U', g_rank);
    CHECK(!weft_net_object_announce(n, id.bytes));
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    weft_remote_opts o = weft_remote_opts_default();
    o.node = WEFT_NODE_OBJECT;
    weft_store_id nid;
    obj_id(&nid, 'U', next);
    o.object = nid.bytes;
    weft_future *f;
    int status;
    CHECK(!weft_submit_remote(n, "t_rank", NULL, 0, &o, &f));
    CHECK(take_int(f, &status) == next && status == 0);
    o.object = id.bytes; /* our own */
    CHECK(!weft_submit_remote(n, "t_rank", NULL, 0, &o, &f));
    CHECK(take_int(f, &status) == g_rank && status == 0);
    CHECK(!weft_net_barrier(n, LONG_WAIT));
}

/* ---- actors across nodes ---- */

/* A numbered message from a rank; seq < 0 asks what was seen from it. */
typedef struct amsg {
    int32_t from, pad;
    int64_t seq;
} amsg;

typedef struct acc {
    int64_t next[64], seen[64], disorder;
} acc;

static int acc_recv(weft_actor_ctx *cx, void *st, void *msg, size_t len)
{
    acc *a = st;
    amsg m;
    if (len != sizeof m)
        return -EINVAL;
    memcpy(&m, msg, sizeof m);
    if (m.from < 0 || m.from >= 64)
        return -EINVAL;
    if (m.seq >= 0) {
        a->disorder += m.seq != a->next[m.from];
        a->next[m.from] = m.seq + 1;
        a->seen[m.from]++;
        return 0;
    }
    int64_t r[2] = {a->seen[m.from], a->disorder};
    return weft_net_reply(cx, weft_bytes_copy(r, sizeof r));
}

static const weft_actor_class ACC = {.state_size = sizeof(acc),
                                     .receive = acc_recv};

/* ACC that dawdles now and then, behind a mailbox of 2: peers' sends
 * find it full and wait in its node for room. */
static int slow_recv(weft_actor_ctx *cx, void *st, void *msg, size_t len)
{
    amsg m;
    if (len == sizeof m) {
        memcpy(&m, msg, sizeof m);
        if (m.seq > 0 && m.seq % 100 == 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return acc_recv(cx, st, msg, len);
}

static const weft_actor_class SLOW = {.state_size = sizeof(acc),
                                      .receive = slow_recv};

static void actors_of(weft_node *n, weft_runtime *rt,
                      const weft_actor_class *cls, int capacity)
{
    enum { N = 1000 };
    int size = weft_net_size(n);
    weft_actor *a;
    weft_actor_opts ao = weft_actor_opts_default();
    ao.capacity = capacity;
    CHECK(!weft_actor_spawn(rt, cls, NULL, &ao, &a));
    CHECK(!weft_net_actor_publish(n, "acc", a));
    CHECK(!weft_net_barrier(n, LONG_WAIT)); /* published everywhere */
    for (int64_t k = 0; k < N; k++)
        for (int to = 0; to < size; to++) {
            amsg m = {.from = g_rank, .seq = k};
            CHECK(!weft_net_send(n, to, "acc", &m, sizeof m));
        }
    for (int to = 0; to < size; to++) {
        amsg m = {.from = g_rank, .seq = -1};
        weft_future *f;
        CHECK(!weft_net_ask(n, to, "acc", &m, sizeof m, &f));
        void *res = NULL;
        CHECK(weft_future_get(f, LONG_WAIT, &res) == 0);
        weft_bytes *b = res;
        int64_t r[2];
        CHECK(b && b->len == sizeof r);
        memcpy(r, b->data, sizeof r);
        CHECK(r[0] == N && r[1] == 0); /* all of them, in order */
        weft_future_release(f);
        CHECK(!weft_net_ask(n, to, "nope", NULL, 0, &f));
        CHECK(weft_future_get(f, LONG_WAIT, NULL) == -ENOENT);
        weft_future_release(f);
    }
    CHECK(!weft_net_barrier(n, LONG_WAIT)); /* nobody asks any more */
    CHECK(!weft_net_actor_unpublish(n, "acc"));
    weft_actor_release(a);
}

/* Numbered sends from every rank to every rank, then asks: all arrived,
 * in order, none dropped; into an unbounded mailbox and into a full
 * one. */
static void actors(weft_node *n, weft_runtime *rt)
{
    actors_of(n, rt, &ACC, 0);
    actors_of(n, rt, &SLOW, 2);
    weft_net_stats st;
    CHECK(!weft_net_stats_get(n, &st));
    CHECK(st.actor_dropped == 0 && st.actor_waiting == 0);
}

/* ---- many threads at once ---- */

enum { STORM_THREADS = 4, STORM_TASKS = 300, STORM_FLIGHT_MAX = 256 };

/* Tasks each thread keeps in flight: 16, or NET_TEST_FLIGHT (up to 256;
 * many fill the mpi backend's smallest rings). */
static int storm_flight(void)
{
    const char *e = getenv("NET_TEST_FLIGHT");
    int f = e ? atoi(e) : 16;
    return f < 1 ? 1 : f > STORM_FLIGHT_MAX ? STORM_FLIGHT_MAX : f;
}

typedef struct storm_op {
    weft_future *f;
    uint64_t want;
} storm_op;

static void *storm_thread(void *arg)
{
    static const size_t sizes[] = {0, 8, 1000, 20000, 200000};
    weft_node *n = g_node;
    int size = weft_net_size(n);
    unsigned seed = (unsigned)(g_rank * 131 + (int)(intptr_t)arg * 7 + 1);
    int flight = storm_flight();
    storm_op ops[STORM_FLIGHT_MAX] = {{0}};
    unsigned char *buf = malloc(200000);
    for (int i = 0; i < STORM_TASKS + flight; i++) {
        storm_op *op = &ops[i % flight];
        if (op->f) { /* the oldest in flight */
            void *r = NULL;
            CHECK(weft_future_get(op->f, LONG_WAIT, &r) == 0);
            weft_bytes *b = r;
            CHECK(b && b->len == sizeof op->want &&
                  !memcmp(b->data, &op->want, sizeof op->want));
            weft_future_release(op->f);
            op->f = NULL;
        }
        if (i >= STORM_TASKS)
            continue;
        seed = seed * 1103515245u + 12345u;
        int to = (g_rank + 1 + (int)(seed >> 16) % (size - 1)) % size;
        weft_remote_opts o = weft_remote_opts_default();
        o.node = to;
        if (i % 7 == 3) { /* a relay: to sends a task on to a third */
            int32_t a[2] = {(to + 1) % size, (int32_t)(seed >> 8) % 3000};
            for (int32_t k = 0; k < a[1]; k++)
                buf[k] = (unsigned char)(k * 13 + a[0]);
            op->want = echo_sum(buf, (size_t)a[1], a[0]);
            CHECK(!weft_submit_remote(n, "t_relay", a, sizeof a, &o,
                                      &op->f));
            continue;
        }
        size_t len = sizes[(seed >> 20) % 5];
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(k * 31 + (size_t)i);
        op->want = echo_sum(buf, len, to);
        o.flags = i % 3 == 0 ? WEFT_REMOTE_CHEAP : 0;
        CHECK(!weft_submit_remote(n, "t_echo", len ? buf : NULL, len, &o,
                                  &op->f));
    }
    free(buf);
    return NULL;
}

static void storm(weft_node *n)
{
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    pthread_t th[STORM_THREADS];
    for (intptr_t i = 0; i < STORM_THREADS; i++)
        CHECK(!pthread_create(&th[i], NULL, storm_thread, (void *)i));
    for (int i = 0; i < STORM_THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(!weft_net_barrier(n, LONG_WAIT)); /* everyone's tasks are done */
    printf("rank %d: %d tasks from %d threads checked\n", g_rank,
           STORM_THREADS * STORM_TASKS, STORM_THREADS);
}

/* ---- famine: rank 0 runs out of memory for a while ---- */

#ifdef WEFT_ALLOC_FAULTS
enum { FAMINE_LEN = 64 << 10, FAMINE_FLIGHT = 16 };

/* How long the famine lasts: 300 ms, or NET_FAMINE_MS (1 to 60000). */
static int famine_ms(void)
{
    const char *e = getenv("NET_FAMINE_MS");
    int ms = e ? atoi(e) : 300;
    return ms >= 1 && ms <= 60000 ? ms : 300;
}

static long elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/* FAMINE_FLIGHT echo tasks of FAMINE_LEN bytes to rank 0, then their
 * answers; each must be right, or -ENOMEM when tolerated. Returns how
 * many were -ENOMEM. */
static int famine_round(weft_node *n, int round, bool tolerate)
{
    static unsigned char buf[FAMINE_FLIGHT][FAMINE_LEN];
    weft_future *fs[FAMINE_FLIGHT];
    weft_remote_opts o = weft_remote_opts_default();
    o.node = 0;
    for (int i = 0; i < FAMINE_FLIGHT; i++) {
        for (int j = 0; j < FAMINE_LEN; j++)
            buf[i][j] = (unsigned char)(j * 31 + i + round * 7 + g_rank);
        CHECK(!weft_submit_remote(n, "t_echo", buf[i], FAMINE_LEN, &o,
                                  &fs[i]));
    }
    int short_of = 0;
    for (int i = 0; i < FAMINE_FLIGHT; i++) {
        void *r = NULL;
        int rc = weft_future_get(fs[i], LONG_WAIT, &r);
        uint64_t want = echo_sum(buf[i], FAMINE_LEN, 0);
        weft_bytes *b = r;
        if (rc == -ENOMEM && tolerate) {
            short_of++;
        } else {
            if (rc)
                fprintf(stderr, "rank %d: round %d task %d: %s\n", g_rank,
                        round, i, strerror(-rc));
            CHECK(rc == 0 && b && b->len == sizeof want &&
                  !memcmp(b->data, &want, sizeof want));
        }
        weft_future_release(fs[i]);
    }
    return short_of;
}

#endif

static int famine(weft_node *n)
{
#ifndef WEFT_ALLOC_FAULTS
    (void)n;
    printf("rank %d: built without -Dalloc_faults=true: skipped\n", g_rank);
    return 77;
#else
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    if (g_rank == 0) {
        weft__fault_arm(1, LONG_MAX);
        sleep_ms(famine_ms());
        long k = weft__fault_disarm();
        printf("rank 0: %ld allocations failed in %d ms\n", k, famine_ms());
        CHECK(k > 0);
    } else { /* rounds until well after the famine */
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rounds = 0, short_of = 0;
        while (elapsed_ms(&t0) < 3 * famine_ms())
            short_of += famine_round(n, rounds++, true);
        printf("rank %d: %d rounds, %d tasks short of memory\n", g_rank,
               rounds, short_of);
    }
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    if (g_rank != 0) /* all well again, and in step */
        for (int r = 0; r < 4; r++)
            CHECK(famine_round(n, 1000 + r, false) == 0);
    CHECK(!weft_net_barrier(n, LONG_WAIT));
    return 0;
#endif
}

/* ---- put and get on the transport alone ---- */

enum { RMA_LEN = 1 << 20, RMA_AT = 8192, RMA_BLOCK = 4096 };
enum { H_KEY = 1, H_PUT = 2, H_BYE = 3 };

typedef struct rma_ctx {
    int keys, puts, byes;
    uint64_t addr[64], key[64];
    int put_from;
} rma_ctx;

static void rma_recv(void *ctx, weft_am *m)
{
    rma_ctx *c = ctx;
    uint64_t h[3];
    if (m->handler == H_KEY && m->hdrlen == sizeof h) {
        memcpy(h, m->hdr, sizeof h);
        if (h[0] < 64) {
            c->addr[h[0]] = h[1];
            c->key[h[0]] = h[2];
            c->keys++;
        }
    } else if (m->handler == H_PUT && m->hdrlen == sizeof h[0]) {
        memcpy(h, m->hdr, sizeof h[0]);
        c->put_from = (int)h[0];
        c->puts++;
    } else if (m->handler == H_BYE) {
        c->byes++;
    }
}

static void rma_done(void *arg, int status)
{
    *(int *)arg = status ? status : 1;
}

static unsigned char rma_byte(int rank, size_t i)
{
    return (unsigned char)(i * 7 + (size_t)rank * 13 + i / 251);
}

/* Progress until *what reaches until (or goes negative: an error), for
 * at most a minute; the caller checks the value. */
static void rma_wait(const weft_transport_ops *ops, weft_transport *t,
                     const int *what, int until)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    while (*what < until && *what >= 0) {
        CHECK(!ops->progress(t, 1000000));
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (b.tv_sec - a.tv_sec > 60) {
            fprintf(stderr, "rank %d: waited a minute: %d of %d\n", g_rank,
                    *what, until);
            return;
        }
    }
}

static int rma_run(void)
{
    const char *name = getenv("WEFT_TRANSPORT");
    const weft_transport_ops *ops = weft_transport_find(name ? name : "mpi");
    CHECK(ops);
    if (!(ops->caps & WEFT_TRANSPORT_RMA)) {
        printf("rank %d: transport %s has no put/get: skipped\n", g_rank,
               ops->name);
        return 0;
    }
    rma_ctx c = {.put_from = -1};
    weft_net_config nc = weft_net_config_default();
    if (nc.params.rank < 0)
        nc.params.rank = g_rank;
    weft_transport_events ev = {&c, rma_recv, NULL, NULL, NULL};
    weft_transport *t;
    CHECK(!ops->open(&t, &nc.params, &ev));
    int rank = ops->rank(t), size = ops->size(t);
    CHECK(size >= 2 && size <= 64);
    /* whole pages: what every backend takes (mpi takes nothing else) */
    unsigned char *mem = aligned_alloc(65536, RMA_LEN);
    unsigned char *buf = malloc(RMA_LEN);
    for (size_t i = 0; i < RMA_LEN; i++)
        mem[i] = rma_byte(rank, i);
    uint64_t key;
    int rc = ops->reg(t, mem, RMA_LEN, &key);
    if (rc == -ENOTSUP) { /* every rank alike: the window is collective */
        printf("rank %d: this MPI gave no one-sided window: skipped\n",
               rank);
        ops->close(t);
        return 77;
    }
    CHECK(rc == 0 && !ops->dereg(t, key));
    CHECK(ops->reg(t, NULL, 16, &key) == -EINVAL);
    if (!strcmp(ops->name, "mpi"))
        CHECK(ops->reg(t, mem + 16, 4096, &key) == -EINVAL);
    CHECK(!ops->reg(t, mem, RMA_LEN, &key));
    for (int p = 0; p < size; p++) {
        uint64_t h[3] = {(uint64_t)rank, (uint64_t)(uintptr_t)mem, key};
        if (p != rank)
            CHECK(!ops->send(t, p, H_KEY, h, sizeof h, NULL, 0, NULL, NULL));
    }
    rma_wait(ops, t, &c.keys, size - 1);
    CHECK(c.keys == size - 1);
    int next = (rank + 1) % size, st = 0;
    /* the next rank's region, whole */
    CHECK(!ops->get(t, next, buf, RMA_LEN, c.addr[next], c.key[next],
                    rma_done, &st));
    rma_wait(ops, t, &st, 1);
    CHECK(st == 1);
    for (size_t i = 0; i < RMA_LEN; i++)
        CHECK(buf[i] == rma_byte(next, i));
    /* a block into it, then a message: the block is there before it */
    memset(buf, 0x40 + rank, RMA_BLOCK);
    st = 0;
    CHECK(!ops->put(t, next, buf, RMA_BLOCK, c.addr[next] + RMA_AT,
                    c.key[next], rma_done, &st));
    rma_wait(ops, t, &st, 1);
    CHECK(st == 1);
    uint64_t me = (uint64_t)rank;
    CHECK(!ops->send(t, next, H_PUT, &me, sizeof me, NULL, 0, NULL, NULL));
    rma_wait(ops, t, &c.puts, 1);
    int prev = (rank + size - 1) % size;
    CHECK(c.put_from == prev);
    for (size_t i = 0; i < RMA_LEN; i++)
        CHECK(mem[i] == (i >= RMA_AT && i < RMA_AT + RMA_BLOCK
                             ? (unsigned char)(0x40 + prev)
                             : rma_byte(rank, i)));
    /* past the end of the region; bad arguments */
    st = 0;
    CHECK(!ops->get(t, next, buf, 16, c.addr[next] + RMA_LEN, c.key[next],
                    rma_done, &st));
    rma_wait(ops, t, &st, 1);
    CHECK(st == -EFAULT);
    st = 0; /* from inside it across its end */
    CHECK(!ops->get(t, next, buf, 32, c.addr[next] + RMA_LEN - 16,
                    c.key[next], rma_done, &st));
    rma_wait(ops, t, &st, 1);
    CHECK(st == -EFAULT);
    CHECK(ops->get(t, rank, buf, 16, (uint64_t)(uintptr_t)mem, key,
                   rma_done, &st) == -EINVAL);
    CHECK(ops->put(t, next, NULL, 16, c.addr[next], c.key[next], rma_done,
                   &st) == -EINVAL);
    CHECK(ops->put(t, next, buf, 0, c.addr[next], c.key[next], rma_done,
                   &st) == -EINVAL);
    CHECK(ops->dereg(t, key ^ 0x5a5a0000) == -ENOENT);
    /* everyone is done with everyone's memory before it goes */
    for (int p = 0; p < size; p++)
        if (p != rank)
            CHECK(!ops->send(t, p, H_BYE, NULL, 0, NULL, 0, NULL, NULL));
    rma_wait(ops, t, &c.byes, size - 1);
    CHECK(c.byes == size - 1);
    CHECK(!ops->dereg(t, key));
    ops->close(t);
    free(mem);
    free(buf);
    printf("rank %d: put and get checked over %s\n", rank, ops->name);
    return 0;
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

static void big(weft_node *n)
{
    if (g_rank == 0) {
        weft_remote_opts o = weft_remote_opts_default();
        o.node = 1;
        weft_future *f;
        CHECK(!weft_submit_remote(n, "t_big", NULL, 0, &o, &f));
        /* bounded only to fail rather than hang: answered at once */
        int st = weft_future_get(f, 20ll * 1000000000ll, NULL);
        printf("rank 0: a 2 GiB result: %s\n", strerror(-st));
        CHECK(st == -EMSGSIZE);
        weft_future_release(f);
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

#ifdef WEFT_TEST_MPI
/* Scenario isendfail: the next MPI_Isend of this process fails, the
 * others go to MPI (PMPI_Isend). */
static atomic_int isend_fail;

int MPI_Isend(const void *buf, int count, MPI_Datatype type, int dst,
              int tag, MPI_Comm comm, MPI_Request *req)
{
    if (atomic_exchange(&isend_fail, 0))
        return MPI_ERR_OTHER;
    return PMPI_Isend(buf, count, type, dst, tag, comm, req);
}

static void isend_done(void *arg, int status)
{
    *(int *)arg = status;
}

static void ignore_recv(void *ctx, weft_am *m)
{
    (void)ctx;
    (void)m;
}

static int isendfail_run(void)
{
    const weft_transport_ops *ops = weft_transport_find("mpi");
    CHECK(ops);
    weft_net_config nc = weft_net_config_default();
    weft_transport_events ev = {NULL, ignore_recv, NULL, NULL, NULL};
    weft_transport *t;
    CHECK(!ops->open(&t, &nc.params, &ev));
    if (ops->rank(t) == 0) {
        int st = 1;
        static char pay[64];
        struct iovec iov = {pay, sizeof pay};
        atomic_store(&isend_fail, 1);
        CHECK(!ops->send(t, 1, 1, NULL, 0, &iov, 1, isend_done, &st));
        for (int i = 0; i < 10000 && st == 1; i++)
            CHECK(!ops->progress(t, 1000000));
        printf("rank 0: a send whose MPI_Isend failed: status %d\n", st);
        CHECK(st < 0);
    }
    ops->close(t);
    printf("rank %d: ok\n", g_rank);
    return 0;
}
#else
static int isendfail_run(void)
{
    printf("no MPI in this build: skipped\n");
    return 77;
}
#endif

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
    g_stop = !strcmp(sc, "stop");
    if (!strcmp(sc, "rma"))
        return rma_run();
    if (!strcmp(sc, "isendfail"))
        return isendfail_run();
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
    if (!strcmp(sc, "big"))
        nc.params.max_payload = 4ull << 30;
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
    g_node = n;
    int skipped = 0;
    if (!strcmp(sc, "basic")) {
        basic(n);
        stores(n, rt);
        actors(n, rt);
    }
    else if (!strcmp(sc, "kill") || !strcmp(sc, "stop"))
        kill_run(n);
    else if (!strcmp(sc, "garbage"))
        garbage(n);
    else if (!strcmp(sc, "storm"))
        storm(n);
    else if (!strcmp(sc, "famine"))
        skipped = famine(n);
    else if (!strcmp(sc, "big"))
        big(n);
    else
        CHECK(!"unknown scenario");
    g_node = NULL;
    CHECK(!weft_net_destroy(&n));
    CHECK(!weft_runtime_destroy(&rt));
    if (skipped)
        return skipped;
    printf("rank %d: ok\n", g_rank);
    return 0;
}
