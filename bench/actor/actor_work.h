/* The Savina micro-benchmarks of the actor suite: names, the fixed
 * shapes, the per-message work, and the answer each implementation must
 * print (its check). Shared by the weft, CAF and serial programs (C11 and
 * C++). */
#ifndef ACTOR_WORK_H
#define ACTOR_WORK_H

#include <stdint.h>

/* workload -> what -n counts (the defaults, the issue's, are in
 * bench_default_size in bench/common/bench.h):
 *   pingpong     round trips between two actors            check n
 *   counting     n increments (values 0..n-1) to a counter  check sum
 *   threadring   n passes of a token around RING actors     check n % RING
 *   fjthrput     n messages to each of FJ_ACTORS actors    check FJ_ACTORS*n
 *   fjcreate     n actors made, each handles one message   check n
 *   big          n pings from each of BIG_ACTORS actors    check BIG_ACTORS*n
 *   chameneos    n meetings of CHAM chameneos at a mall    check 2n
 *   manysenders  n messages from SENDERS senders to one    check n */
#define RING 100
#define FJ_ACTORS 60
#define BIG_ACTORS 120
#define CHAM 100
#define SENDERS 8

/* The work of one fork-join message (Savina's is a few floating-point
 * operations): a few dependent integer steps. Returns 1 so the caller can
 * count through it. */
static inline long fj_work(long x)
{
    uint64_t v = (uint64_t)x * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 8; i++)
        v ^= v >> 17, v *= 0xff51afd7ed558ccdull;
    return (long)(v & 1) | 1;
}

/* Chameneos colours and the complement of two (Savina's rule). */
enum { BLUE, RED, YELLOW };
static inline int cham_complement(int a, int b)
{
    if (a == b)
        return a;
    return 3 - a - b;
}

/* A small per-thread generator (big: random targets). */
static inline uint32_t bench_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}

#endif
