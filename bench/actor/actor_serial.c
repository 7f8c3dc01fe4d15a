/* The serial twins of the actor workloads (actor_work.h): the same
 * per-message work and the same answers, as direct calls on one thread
 * with no messages. T/Ts is then what the messaging costs. */
#include "bench.h"

#include "actor_work.h"

/* Each "message" is a call the compiler cannot fold away. */
static __attribute__((noinline)) long deliver(long *state, long v)
{
    *state += v;
    return *state;
}

static bench_check pingpong(long n)
{
    long ping = 0, pong = 0;
    for (long i = 0; i < n; i++) {
        deliver(&pong, 1);
        deliver(&ping, 1);
    }
    return (bench_check)ping;
}

static bench_check counting(long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++)
        deliver(&sum, i);
    return (bench_check)sum;
}

static bench_check threadring(long n)
{
    long seen[RING] = {0}, at = 0;
    for (long v = n; v > 0; v--) {
        deliver(&seen[at], 1);
        at = (at + 1) % RING;
    }
    return (bench_check)at;
}

static bench_check fjthrput(long n)
{
    long acc[FJ_ACTORS] = {0}, sum = 0;
    for (long k = 0; k < n; k++)
        for (int i = 0; i < FJ_ACTORS; i++)
            deliver(&acc[i], fj_work(k));
    for (int i = 0; i < FJ_ACTORS; i++)
        sum += acc[i];
    return (bench_check)sum;
}

static bench_check fjcreate(long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        long *st = malloc(64); /* the actor's state, made and dropped */
        if (!st)
            exit(1);
        *st = 0;
        sum += deliver(st, fj_work(i));
        free(st);
    }
    return (bench_check)sum;
}

static bench_check big(long n)
{
    long pongs[BIG_ACTORS] = {0}, pings[BIG_ACTORS] = {0}, sum = 0;
    uint64_t rng[BIG_ACTORS];
    for (int i = 0; i < BIG_ACTORS; i++)
        rng[i] = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) + 1;
    for (long k = 0; k < n; k++)
        for (int i = 0; i < BIG_ACTORS; i++) {
            deliver(&pings[bench_xorshift(&rng[i]) % BIG_ACTORS], 1);
            deliver(&pongs[i], 1);
        }
    for (int i = 0; i < BIG_ACTORS; i++)
        sum += pongs[i];
    return (bench_check)sum;
}

static bench_check chameneos(long n)
{
    int color[CHAM];
    long meetings[CHAM] = {0}, sum = 0;
    for (int i = 0; i < CHAM; i++)
        color[i] = i % 3;
    for (long k = 0; k < n; k++) { /* pairs in turn, as a FIFO mall would */
        int a = (int)((2 * k) % CHAM), b = (int)((2 * k + 1) % CHAM);
        int ca = color[a];
        color[a] = cham_complement(ca, color[b]);
        color[b] = cham_complement(color[b], ca);
        deliver(&meetings[a], 1);
        deliver(&meetings[b], 1);
    }
    for (int i = 0; i < CHAM; i++)
        sum += meetings[i];
    return (bench_check)sum;
}

static bench_check manysenders(long n)
{
    long got = 0;
    for (long i = 0; i < n; i++)
        deliver(&got, 1);
    return (bench_check)got;
}

int main(int argc, char **argv)
{
    static const bench_impl impl = {"serial", 1, NULL, NULL};
    static const bench_workload w[] = {
        {"pingpong", pingpong},     {"counting", counting},
        {"threadring", threadring}, {"fjthrput", fjthrput},
        {"fjcreate", fjcreate},     {"big", big},
        {"chameneos", chameneos},   {"manysenders", manysenders},
    };
    return bench_main(argc, argv, &impl, w, sizeof w / sizeof w[0]);
}
