/* The random DAG every dataflow implementation shares (bench/dag/).
 *
 * A deterministic generator, so that the serial twin, weft, TBB, OpenMP
 * and Dask (through the same C functions, loaded with ctypes) compute the
 * same values and print the same answer.
 *
 * Spec
 * ----
 *   mix(x)      splitmix64's finaliser of x + 0x9E3779B97F4A7C15 (as in
 *               common/uts.h), all arithmetic mod 2^64.
 *   nodes       0 .. n-1; node i may depend only on earlier nodes, so
 *               0, 1, 2, ... is a topological order.
 *   deps(i)     h = mix(i ^ DAG_SEED); k = h & 3 (0 to 3 inputs), at most
 *               i. For j = 0 .. k-1: h = mix(h + j + 1), candidate
 *               d = i - 1 - (h mod min(i, DAG_WINDOW)); a candidate equal
 *               to one already taken is dropped (so 0 to 3 distinct
 *               inputs). Inputs keep the order in which they were drawn.
 *   value(i)    x = mix(i + DAG_SEED); for each input d, in order:
 *               x = mix(x ^ value(d)); then DAG_ROUNDS dependent steps
 *               x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9 + r, r = 0, 1, ...
 *               (the work per node, a few hundred ns).
 *   answer      h = 0; for i = 0 .. n-1: h = mix(h ^ value(i)); the
 *               final h. It depends on every node's value, so a node
 *               computed from a stale input changes it.
 *
 * With a window of 256 and 1.5 inputs per node on average, a million nodes
 * have a longest path of 13 017 nodes: about 77 nodes per level, enough
 * for many more than 2 cores, yet every node becomes ready only after its
 * inputs, so the scheduler does the ordering.
 *
 * Changing any constant changes every answer (bench/README.md lists some). */
#ifndef BENCH_DAG_H
#define BENCH_DAG_H

#include <stdint.h>

#define DAG_SEED 0x2545F4914F6CDD1DULL
#define DAG_WINDOW 256
#define DAG_MAXDEPS 3
#define DAG_ROUNDS 128

static inline uint64_t dag_mix(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The inputs of node i into deps[0 .. DAG_MAXDEPS); returns how many. */
static inline int dag_deps(long i, long *deps)
{
    uint64_t h = dag_mix((uint64_t)i ^ DAG_SEED);
    int k = (int)(h & 3);
    if (k > i)
        k = (int)i;
    long w = i < DAG_WINDOW ? i : DAG_WINDOW;
    int nd = 0;
    for (int j = 0; j < k; j++) {
        h = dag_mix(h + (uint64_t)j + 1);
        long d = i - 1 - (long)(h % (uint64_t)w);
        int dup = 0;
        for (int m = 0; m < nd; m++)
            dup |= deps[m] == d;
        if (!dup)
            deps[nd++] = d;
    }
    return nd;
}

/* The value of node i from the values of its inputs, in[0 .. nin), given
 * in the order dag_deps() returned them. */
static inline uint64_t dag_node(long i, const uint64_t *in, int nin)
{
    uint64_t x = dag_mix((uint64_t)i + DAG_SEED);
    for (int j = 0; j < nin; j++)
        x = dag_mix(x ^ in[j]);
    for (uint64_t r = 0; r < DAG_ROUNDS; r++)
        x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL + r;
    return x;
}

/* The answer: a hash of every node's value, in node order. */
static inline uint64_t dag_hash(const uint64_t *v, long n)
{
    uint64_t h = 0;
    for (long i = 0; i < n; i++)
        h = dag_mix(h ^ v[i]);
    return h;
}

#endif
