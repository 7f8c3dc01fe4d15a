/* The per-item kernels of the map suite (bench/map), shared by every
 * implementation so that the programs differ only in how they schedule.
 * C11, also C++.
 *
 * Everything here is a pure function of the item's index: an item's result
 * does not depend on which worker runs it or in which order, and sums of
 * results are taken modulo 2^64, so every implementation's checksum is the
 * same bit for bit. */
#ifndef BENCH_MAPKERN_H
#define BENCH_MAPKERN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64's output function applied to x + the golden gamma: a
 * counter-based generator (the n-th number is mk_mix(seed + n)) and a
 * bijection of the 64-bit integers, so distinct inputs give distinct
 * outputs. */
static inline uint64_t mk_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* ---- busy items: a chain of `steps` dependent multiply/xor-shift steps,
 * so the compiler can neither vectorise nor shorten it. One step costs
 * about 2.3 ns on the development VM (a 6-cycle dependency); short chains
 * of neighbouring items overlap in the out-of-order core, so the step
 * counts below were measured, not computed: a serial loop over items
 * takes about the named time per item there. */

#define MK_STEPS_10NS 14u
#define MK_STEPS_100NS 70u
#define MK_STEPS_1US 450u
#define MK_STEPS_100US 42300u

static inline uint64_t mk_spin(uint64_t i, uint32_t steps)
{
    uint64_t x = i | 1;
    for (uint32_t k = 0; k < steps; k++)
        x = (x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL + 1;
    return x;
}

/* Sum of the uniform items [lo, hi): the serial loop and every range
 * body. */
static inline uint64_t mk_uniform_range(size_t lo, size_t hi, uint32_t steps)
{
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += mk_spin(i, steps);
    return s;
}

/* ---- skewed items: item i costs mk_pareto_units(i) units of about
 * 100 ns, Pareto-distributed (x_m = 1 unit, alpha = 1.5: mean about 2.5
 * units, one item in 30 000 at the cap of 1000 units = 100 us), drawn from
 * i alone with a fixed seed, so costly items are scattered at random. A
 * static split into equal ranges is unequal by the luck of the draw. */

#define MK_PARETO_SEED 0x5EEDBA5EULL
#define MK_PARETO_ALPHA 1.5
#define MK_PARETO_CAP 1000u
#define MK_PARETO_UNIT MK_STEPS_100NS

static inline uint32_t mk_pareto_units(uint64_t i)
{
    /* u in (0, 1]: never 0, so the power is finite */
    double u = (double)((mk_mix(MK_PARETO_SEED ^ i) >> 11) + 1) * 0x1p-53;
    double x = pow(u, -1.0 / MK_PARETO_ALPHA);
    return x >= MK_PARETO_CAP ? MK_PARETO_CAP : (uint32_t)x;
}

static inline uint64_t mk_pareto_item(uint64_t i)
{
    return mk_spin(i, mk_pareto_units(i) * MK_PARETO_UNIT);
}

static inline uint64_t mk_pareto_range(size_t lo, size_t hi)
{
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += mk_pareto_item(i);
    return s;
}

/* ---- Monte Carlo pi: point i is (x, y), two 31-bit coordinates taken
 * from mk_mix(MK_PI_SEED + i); it is inside the quarter circle when
 * x^2 + y^2 < 2^62. Integer arithmetic only (no rounding to differ), and
 * the point depends on i alone, so any split of the range counts the same
 * points: pi ~ 4 * hits / points. */

#define MK_PI_SEED 0x31415926ULL

static inline unsigned mk_pi_hit(uint64_t i)
{
    uint64_t h = mk_mix(MK_PI_SEED + i);
    uint64_t x = h >> 33, y = (h >> 2) & 0x7FFFFFFFu;
    return x * x + y * y < (1ULL << 62);
}

static inline uint64_t mk_pi_range(size_t lo, size_t hi)
{
    uint64_t hits = 0;
    for (size_t i = lo; i < hi; i++)
        hits += mk_pi_hit(i);
    return hits;
}

#endif
