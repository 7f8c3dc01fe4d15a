/* stats_target: a program that keeps a weft runtime busy for a while, for
 * the statistics tests (weft-top in batch and interactive mode, crash
 * cleanup of published segments).
 *
 *   stats_target [-s SECONDS] [-w WORKERS] [-n NAME] [-e destroy|exit|kill]
 *
 * It creates a runtime (publishing when WEFT_STATS is set, or under NAME
 * with -n, which sets WEFT_STATS), prints "ready pid=PID" on stdout, then
 * loops over fork-join fib, weft_for_range, weft_map and actor-message
 * rounds (one counting actor, alive for the whole run) until
 * SECONDS (default 3) have passed. -e says how it ends: destroy the
 * runtime and exit 0 (default), _exit(0) without destroying, or raise
 * SIGKILL: the last two leave the published segment behind, as a crashed
 * program would. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "work.h"

enum end_mode { END_DESTROY, END_EXIT, END_KILL };

struct options {
    double seconds;
    int workers;
    enum end_mode end;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s [-s SECONDS] [-w WORKERS] [-n NAME] "
               "[-e destroy|exit|kill]\n", prog);
}

static int bad_arg(const char *prog, const char *what, const char *value)
{
    fprintf(stderr, "%s: bad %s '%s'\n", prog, what, value);
    usage(stderr, prog);
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .seconds = 3, .workers = 2, .end = END_DESTROY };
    int c;
    char *end;
    while ((c = getopt(argc, argv, "s:w:n:e:h")) != -1) {
        switch (c) {
        case 's':
            o->seconds = strtod(optarg, &end);
            if (*end || !(o->seconds >= 0 && o->seconds <= 3600))
                return bad_arg(argv[0], "seconds", optarg);
            break;
        case 'w':
            o->workers = (int)strtol(optarg, &end, 10);
            if (*end || o->workers < 1 || o->workers > WEFT_MAX_WORKERS)
                return bad_arg(argv[0], "worker count", optarg);
            break;
        case 'n':
            setenv("WEFT_STATS", optarg, 1);
            break;
        case 'e':
            if (strcmp(optarg, "destroy") == 0)
                o->end = END_DESTROY;
            else if (strcmp(optarg, "exit") == 0)
                o->end = END_EXIT;
            else if (strcmp(optarg, "kill") == 0)
                o->end = END_KILL;
            else
                return bad_arg(argv[0], "end mode", optarg);
            break;
        case 'h':
            usage(stdout, argv[0]);
            exit(0);
        default:
            usage(stderr, argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        return bad_arg(argv[0], "argument", argv[optind]);
    return 0;
}

/* A few hundred nanoseconds of arithmetic the compiler cannot drop. */
static uint64_t spin(uint64_t x)
{
    for (int k = 0; k < 64; k++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

static int range_body(size_t lo, size_t hi, void *ctx)
{
    uint64_t acc = 0;
    for (size_t i = lo; i < hi; i++)
        acc += spin(i);
    if (acc == 42) /* keeps acc alive; practically never true */
        atomic_fetch_add((_Atomic uint64_t *)ctx, 1);
    return 0;
}

static int map_item(size_t i, const void *in, void *out, void *ctx)
{
    (void)in;
    (void)ctx;
    *(uint64_t *)out = spin(i);
    return 0;
}

/* The counting actor: adds what it is sent; an ask (empty message)
 * replies with the count. */
static int count_recv(weft_actor_ctx *cx, void *st, void *msg, size_t n)
{
    uint64_t *count = st;
    if (n == sizeof(uint64_t)) {
        *count += *(const uint64_t *)msg;
        return 0;
    }
    uint64_t *v = malloc(sizeof *v);
    if (!v)
        return -ENOMEM;
    *v = *count;
    return weft_actor_reply(cx, v, free);
}

static const weft_actor_class COUNTER = {
    .state_size = sizeof(uint64_t),
    .receive = count_recv,
    .name = "stats_target counter",
};

/* 1000 messages of 1, then an ask that must see them all (one sender:
 * its messages are handled in order). */
static int actor_round(weft_actor *a, uint64_t *expect)
{
    uint64_t one = 1;
    for (int i = 0; i < 1000; i++) {
        int rc = weft_send(a, &one, sizeof one, 0);
        if (rc)
            return rc;
    }
    *expect += 1000;
    weft_future *f;
    int rc = weft_ask(a, NULL, 0, 0, &f);
    if (rc)
        return rc;
    void *v = NULL;
    rc = weft_future_get(f, -1, &v);
    if (rc == 0 && *(uint64_t *)v != *expect)
        rc = -EIO;
    weft_future_release(f);
    return rc;
}

/* One round of every kind of work: fork-join tasks (spawns, steals),
 * a range loop and a map (map calls and items), actor messages. */
static int round_of_work(weft_runtime *rt, weft_actor *a, uint64_t *sent,
                         uint64_t *out, size_t n)
{
    static _Atomic uint64_t sink;
    struct fib_call f = { .n = 20 };
    int rc = weft_run(rt, fib_call_root, &f);
    if (rc == 0 && f.r != 6765)
        rc = -EIO;
    weft_map_opts opts = weft_map_opts_default();
    opts.flags = WEFT_MAP_QUIET;
    if (rc == 0)
        rc = weft_for_range(rt, 0, n, range_body, &sink, &opts, NULL);
    if (rc == 0)
        rc = weft_map(rt, n, NULL, 0, out, sizeof *out, map_item, NULL,
                      &opts, NULL);
    if (rc == 0)
        rc = actor_round(a, sent);
    return rc;
}

static int run(const struct options *o)
{
    weft_config c = weft_config_default();
    c.workers = o->workers;
    weft_runtime *rt;
    int rc = weft_runtime_create(&rt, &c);
    if (rc) {
        fprintf(stderr, "stats_target: weft_runtime_create: %s\n",
                strerror(-rc));
        return 1;
    }
    weft_actor *a;
    rc = weft_actor_spawn(rt, &COUNTER, NULL, NULL, &a);
    if (rc) {
        fprintf(stderr, "stats_target: weft_actor_spawn: %s\n",
                strerror(-rc));
        weft_runtime_destroy(&rt);
        return 1;
    }
    printf("ready pid=%d\n", (int)getpid());
    fflush(stdout);
    enum { N = 20000 };
    static uint64_t out[N];
    uint64_t sent = 0;
    double end = mono_s() + o->seconds;
    while (rc == 0 && mono_s() < end)
        rc = round_of_work(rt, a, &sent, out, N);
    if (rc)
        fprintf(stderr, "stats_target: work failed: %s\n", strerror(-rc));
    if (o->end == END_EXIT)
        _exit(rc ? 1 : 0);
    if (o->end == END_KILL)
        raise(SIGKILL);
    weft_actor_release(a); /* destroy stops it */
    weft_runtime_destroy(&rt);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse(argc, argv, &o);
    return rc ? rc : run(&o);
}
