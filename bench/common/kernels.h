/* The sequential pieces every implementation of a workload shares, so that
 * the versions differ only in how they fork and join. */
#ifndef BENCH_KERNELS_H
#define BENCH_KERNELS_H

#include <stdint.h>
#include <string.h>

/* ---- nqueens: Cilk-5 style. A board is the column of the queen in each
 * row placed so far; a child task gets its own copy of the board with one
 * more queen, so no state is shared between tasks. */

#define NQ_MAX 20

/* Can a queen go in (row, col) given the queens in rows 0..row-1? */
static inline int nq_ok(const char *board, int row, int col)
{
    for (int r = 0; r < row; r++) {
        int c = board[r];
        if (c == col || c - col == row - r || col - c == row - r)
            return 0;
    }
    return 1;
}

/* ---- skew: a loop whose iterations cost very different amounts.
 * Iteration i of n does skew_units(i, n) units of SKEW_STEPS dependent
 * arithmetic steps. The cost ramps from 1 unit at i = 0 to 8 units at
 * i = n - 1, and one iteration in 128 (picked by a hash, so they are
 * scattered) costs 100 times its ramp value. The ramp makes the halves of
 * every split unequal; the spikes make neighbouring ranges unequal. */

#define SKEW_STEPS 256
#define SKEW_GRAIN 1 /* iterations per leaf of the recursive split */

static inline long skew_units(long i, long n)
{
    long ramp = 1 + (8 * i) / (n > 0 ? n : 1);
    uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    return (h & 127) == 0 ? 100 * ramp : ramp;
}

/* One iteration. Each step depends on the previous one (a multiply and a
 * shift-xor), so the compiler can neither vectorise nor shorten the chain;
 * the caller sums the results, so it cannot drop them. Sums are modulo
 * 2^64, hence the same in any order. */
static inline uint64_t skew_iter(long i, long n)
{
    uint64_t x = (uint64_t)i | 1;
    long steps = skew_units(i, n) * SKEW_STEPS;
    for (long k = 0; k < steps; k++)
        x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL + 1;
    return x;
}

/* Serial sum over [lo, hi): the leaf of every parallel version. */
static inline uint64_t skew_range(long lo, long hi, long n)
{
    uint64_t s = 0;
    for (long i = lo; i < hi; i++)
        s += skew_iter(i, n);
    return s;
}

#endif
