/* weft across processes: one rank of a benchmark job. Started as every
 * rank of the job (mpirun -np K, or K copies with WEFT_TRANSPORT=tcp,
 * WEFT_PEERS and WEFT_RANK: bench/run_net.py does both). Rank 0 measures
 * and prints one line per run:
 *
 *   RESULT name=W impl=weft-TRANSPORT workers=K size=N seconds=S check=C
 *          rss_kb=R [us_per_op=... | gb_per_s=...]
 *
 *   rt     N round trips of an empty remote task, rank 0 -> rank 1
 *   rtc    the same with the task flagged WEFT_REMOTE_CHEAP (rank 1 runs
 *          it on its communication thread)
 *   rts    N round trips, each after 1 ms of quiet (both nodes asleep:
 *          the wake-up path); per op: the median
 *   tput   N empty remote tasks rank 0 -> rank 1, all in flight at once
 *   bw     rank 1 holds an object of N bytes; rank 0 fetches it (x4)
 *   get    the transport alone (no node): rank 1 registers N bytes,
 *          rank 0 reads them with the transport's get (x4); transports
 *          without put/get print nothing
 *   pi     Monte Carlo pi with N points in 64 chunks on any node
 *   uts    an unbalanced (binomial) tree of depth-limited subtrees, N
 *          subtrees from rank 0's frontier on any node; check = nodes
 *
 * Usage: net-weft -k WORKLOAD -n SIZE [-r RUNS] [-w WORKERS].
 * <weft.h> only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#define WAIT (600ll * 1000000000ll)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int t_empty(const void *arg, size_t len, weft_bytes **res)
{
    (void)arg;
    (void)len;
    (void)res;
    return 0;
}
WEFT_REMOTE(t_empty)

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* arg: {seed, points}; result: hits. */
static int t_pi(const void *arg, size_t len, weft_bytes **res)
{
    uint64_t a[2];
    if (len != sizeof a)
        return -EINVAL;
    memcpy(a, arg, sizeof a);
    uint64_t s = a[0], hits = 0;
    for (uint64_t i = 0; i < a[1]; i++) {
        double x = (double)(splitmix(&s) >> 11) * 0x1p-53;
        double y = (double)(splitmix(&s) >> 11) * 0x1p-53;
        hits += x * x + y * y <= 1.0;
    }
    *res = weft_bytes_copy(&hits, sizeof hits);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_pi)

/* Binomial UTS: a node has M children with probability Q, else none;
 * the root has ROOT children; a subtree is searched sequentially. */
#define UTS_M 4
#define UTS_Q 0.2499
#define UTS_DEPTH 2000
static uint64_t uts_count(uint64_t seed, int depth)
{
    uint64_t n = 1, s = seed;
    /* the root of a subtree always branches: every task has work */
    int kids = depth == 0 ? 0
               : depth == UTS_DEPTH ||
                         (double)(splitmix(&s) >> 11) * 0x1p-53 < UTS_Q
                   ? UTS_M
                   : 0;
    for (int i = 0; i < kids; i++)
        n += uts_count(seed * 31 + (uint64_t)i + 1, depth - 1);
    return n;
}

static int t_uts(const void *arg, size_t len, weft_bytes **res)
{
    uint64_t seed;
    if (len != sizeof seed)
        return -EINVAL;
    memcpy(&seed, arg, sizeof seed);
    uint64_t n = uts_count(seed, UTS_DEPTH);
    *res = weft_bytes_copy(&n, sizeof n);
    return *res ? 0 : -ENOMEM;
}
WEFT_REMOTE(t_uts)

static uint64_t take_u64(weft_future *f)
{
    void *r = NULL;
    uint64_t v = 0;
    if (weft_future_get(f, WAIT, &r) == 0 && r &&
        ((weft_bytes *)r)->len == sizeof v)
        memcpy(&v, ((weft_bytes *)r)->data, sizeof v);
    weft_future_release(f);
    return v;
}

static int submit(weft_node *n, const char *fn, const void *a, size_t l,
                  int node, weft_future **f)
{
    weft_remote_opts o = weft_remote_opts_default();
    o.node = node;
    if (!strcmp(fn, "t_empty_cheap")) {
        fn = "t_empty";
        o.flags = WEFT_REMOTE_CHEAP;
    }
    int rc = weft_submit_remote(n, fn, a, l, &o, f);
    if (rc)
        fprintf(stderr, "net-weft: submit %s: %s\n", fn, strerror(-rc));
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One run of the workload on rank 0; *check gets the answer. */
static double run(weft_node *n, const char *k, long size, uint64_t *check,
                  double *per)
{
    static const uint8_t id[WEFT_OBJECT_ID_LEN] = {0xb0, 0x0b};
    double t0 = now_s();
    *check = 0;
    if (!strcmp(k, "rt") || !strcmp(k, "rtc")) {
        const char *fn = k[2] ? "t_empty_cheap" : "t_empty";
        for (long i = 0; i < size; i++) {
            weft_future *f;
            if (submit(n, fn, NULL, 0, 1, &f))
                exit(1);
            *check += weft_future_get(f, WAIT, NULL) == 0;
            weft_future_release(f);
        }
        *per = (now_s() - t0) * 1e6 / (double)size;
    } else if (!strcmp(k, "rts")) {
        /* a round trip after 1 ms of quiet each: both nodes' threads have
         * gone to sleep, so this is the wake-up path; per: the median */
        double *lat = malloc((size_t)size * sizeof *lat);
        for (long i = 0; i < size; i++) {
            struct timespec q = {0, 1000000};
            nanosleep(&q, NULL);
            double a = now_s();
            weft_future *f;
            if (submit(n, "t_empty", NULL, 0, 1, &f))
                exit(1);
            *check += weft_future_get(f, WAIT, NULL) == 0;
            weft_future_release(f);
            lat[i] = (now_s() - a) * 1e6;
        }
        qsort(lat, (size_t)size, sizeof *lat, cmp_double);
        *per = lat[size / 2];
        free(lat);
    } else if (!strcmp(k, "tput")) {
        weft_future **fs = malloc((size_t)size * sizeof *fs);
        for (long i = 0; i < size; i++)
            if (submit(n, "t_empty", NULL, 0, 1, &fs[i]))
                exit(1);
        for (long i = 0; i < size; i++) {
            *check += weft_future_get(fs[i], WAIT, NULL) == 0;
            weft_future_release(fs[i]);
        }
        free(fs);
        *per = (double)size / (now_s() - t0);
    } else if (!strcmp(k, "bw")) {
        for (int i = 0; i < 4; i++) {
            weft_future *f;
            if (weft_net_object_fetch(n, id, 1, &f))
                exit(1);
            void *r;
            if (weft_future_get(f, WAIT, &r) == 0)
                *check += ((weft_bytes *)r)->len;
            weft_future_release(f);
        }
        *per = (double)*check / (now_s() - t0) / 1e9;
    } else if (!strcmp(k, "pi")) {
        enum { CHUNKS = 64 };
        weft_future *fs[CHUNKS];
        for (int i = 0; i < CHUNKS; i++) {
            uint64_t a[2] = {(uint64_t)i * 7919 + 1,
                             (uint64_t)size / CHUNKS};
            if (submit(n, "t_pi", a, sizeof a, WEFT_NODE_ANY, &fs[i]))
                exit(1);
        }
        for (int i = 0; i < CHUNKS; i++)
            *check += take_u64(fs[i]);
    } else if (!strcmp(k, "uts")) {
        weft_future **fs = malloc((size_t)size * sizeof *fs);
        for (long i = 0; i < size; i++) {
            uint64_t seed = (uint64_t)i * 2654435761u + 17;
            if (submit(n, "t_uts", &seed, sizeof seed, WEFT_NODE_ANY,
                       &fs[i]))
                exit(1);
        }
        for (long i = 0; i < size; i++)
            *check += take_u64(fs[i]);
        free(fs);
    }
    return now_s() - t0;
}

/* ---- -k get: the transport's one-sided get ---- */

typedef struct gctx {
    int have;
    uint64_t addr, key;
} gctx;

static void g_recv(void *ctx, weft_am *m)
{
    gctx *c = ctx;
    uint64_t h[2];
    if (m->hdrlen == sizeof h) {
        memcpy(h, m->hdr, sizeof h);
        c->addr = h[0];
        c->key = h[1];
        c->have = 1;
    } else {
        c->have = 2; /* rank 0 is done */
    }
}

static void g_done(void *arg, int status)
{
    *(int *)arg = status ? status : 1;
}

static int get_bench(long size, int runs)
{
    const char *name = getenv("WEFT_TRANSPORT");
    const weft_transport_ops *ops = weft_transport_find(name ? name : "mpi");
    if (!ops || !(ops->caps & WEFT_TRANSPORT_RMA)) {
        fprintf(stderr, "net-weft: -k get: no transport with put/get\n");
        return 0;
    }
    weft_net_config nc = weft_net_config_default();
    const char *r = getenv("WEFT_RANK");
    if (r)
        nc.params.rank = atoi(r);
    gctx c = {0};
    weft_transport_events ev = {&c, g_recv, NULL, NULL, NULL};
    weft_transport *t;
    int rc = ops->open(&t, &nc.params, &ev);
    if (rc) {
        fprintf(stderr, "net-weft: open: %s\n", strerror(-rc));
        return 1;
    }
    int rank = ops->rank(t);
    size_t cap = ((size_t)size + 65535) & ~(size_t)65535; /* whole pages */
    unsigned char *b = aligned_alloc(65536, cap);
    memset(b, 0x5a + rank, cap);
    uint64_t key;
    if (rank == 1) {
        if (ops->reg(t, b, cap, &key))
            return 1;
        uint64_t h[2] = {(uint64_t)(uintptr_t)b, key};
        ops->send(t, 0, 1, h, sizeof h, NULL, 0, NULL, NULL);
        while (c.have != 2)
            ops->progress(t, 1000000);
        ops->dereg(t, key);
    } else if (rank == 0) {
        while (!c.have)
            ops->progress(t, 1000000);
        for (int i = 0; i <= runs; i++) { /* 0: warm-up */
            double t0 = now_s();
            uint64_t check = 0;
            for (int k = 0; k < 4; k++) {
                int st = 0;
                if (ops->get(t, 1, b, (size_t)size, c.addr, c.key, g_done,
                             &st))
                    return 1;
                while (!st)
                    ops->progress(t, 1000000);
                check += st == 1 && b[size - 1] == 0x5b ? (uint64_t)size : 0;
            }
            double s = now_s() - t0;
            if (i)
                printf("RESULT name=get impl=weft-%s workers=2 size=%ld "
                       "seconds=%.6f check=%llu rss_kb=%ld gb_per_s=%.3f\n",
                       ops->name, size, s, (unsigned long long)check,
                       rss_kb(), (double)check / s / 1e9);
            fflush(stdout);
        }
        ops->send(t, 1, 2, NULL, 0, NULL, 0, NULL, NULL);
    }
    ops->close(t);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    const char *k = "rt";
    long size = 1000;
    int runs = 3, workers = 0, opt;
    while ((opt = getopt(argc, argv, "k:n:r:w:c:v")) != -1) {
        if (opt == 'k')
            k = optarg;
        else if (opt == 'n')
            size = atol(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
        else if (opt == 'w')
            workers = atoi(optarg);
    }
    if (!strcmp(k, "get"))
        return get_bench(size, runs);
    weft_config c = weft_config_default();
    c.workers = workers;
    c.pin = 0; /* several ranks share this machine: pinning would put
                  every rank's first worker on the same core */
    weft_runtime *rt;
    if (weft_runtime_create(&rt, &c))
        return 1;
    weft_net_config nc = weft_net_config_default();
    weft_node *n;
    int rc = weft_net_create(&n, rt, &nc);
    if (rc) {
        fprintf(stderr, "net-weft: weft_net_create: %s\n", strerror(-rc));
        return 1;
    }
    int rank = weft_net_rank(n), np = weft_net_size(n);
    if (np < 2 && strcmp(k, "pi") && strcmp(k, "uts")) {
        fprintf(stderr, "net-weft: -k %s needs 2 ranks\n", k);
        return 1;
    }
    if (!strcmp(k, "bw") && rank == 1) {
        uint8_t id[WEFT_OBJECT_ID_LEN] = {0xb0, 0x0b};
        unsigned char *d = malloc((size_t)size);
        memset(d, 0x5a, (size_t)size);
        weft_net_object_put(n, id, d, (size_t)size);
        free(d);
    }
    weft_net_barrier(n, WAIT);
    const char *tr = getenv("WEFT_TRANSPORT");
    for (int i = 0; i <= runs && rank == 0; i++) { /* run 0: warm-up */
        uint64_t check;
        double per = 0, s = run(n, k, size, &check, &per);
        if (i == 0)
            continue;
        printf("RESULT name=%s impl=weft-%s workers=%d size=%ld "
               "seconds=%.6f check=%llu rss_kb=%ld", k, tr ? tr : "auto",
               np, size, s, (unsigned long long)check, rss_kb());
        if (!strcmp(k, "rt") || !strcmp(k, "rtc") || !strcmp(k, "rts"))
            printf(" us_per_op=%.3f", per);
        else if (!strcmp(k, "tput"))
            printf(" ops_per_s=%.0f", per);
        else if (!strcmp(k, "bw"))
            printf(" gb_per_s=%.3f", per);
        printf("\n");
        fflush(stdout);
    }
    weft_net_barrier(n, WAIT);
    if (getenv("NET_WEFT_STATS")) {
        weft_net_stats st;
        weft_net_stats_get(n, &st);
        fprintf(stderr, "rank %d: ran %llu tasks for others (%llu stolen)\n",
                rank, (unsigned long long)st.tasks_remote,
                (unsigned long long)st.tasks_stolen);
    }
    weft_net_destroy(&n);
    weft_runtime_destroy(&rt);
    return 0;
}
