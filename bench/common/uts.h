/* UTS-style unbalanced trees: the generator every implementation shares.
 *
 * After Olivier et al., "UTS: An Unbalanced Tree Search Benchmark"
 * (LCPC 2006), with a 64-bit hash in place of SHA-1 so that it needs no
 * library. The tree is implicit: a node is a 64-bit state plus its depth,
 * and its children follow from the state alone, so any traversal order on
 * any number of threads visits the same tree. The answer (the `check`) is
 * the number of nodes, root included.
 *
 * Spec
 * ----
 *   mix(x)       splitmix64 (Steele, Lea, Flood 2014) of the state x:
 *                  z = x + 0x9E3779B97F4A7C15
 *                  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *                  z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *                  return z ^ (z >> 31)          (all mod 2^64)
 *   mix^R        mix applied R = UTS_ROUNDS times. R is the work per node
 *                (UTS's "granularity"): it stands in for the SHA-1 that
 *                the reference UTS computes per node.
 *   root         state mix(seed), depth 0.
 *   child i      (i = 0, 1, ...) of a node with state s:
 *                  state mix^R(s ^ ((i + 1) * 0x9E3779B97F4A7C15)),
 *                  depth = parent's depth + 1.
 *   u(s)         (s >> 11) * 2^-53, uniform in [0, 1).
 *
 *   Geometric tree (like UTS T1/T1L, "fixed" shape), size parameter D:
 *     a node at depth < D has floor(log(1 - u) / log(1 - p)) children,
 *     p = 1 / (1 + b0), i.e. geometrically distributed with mean b0, capped
 *     at UTS_MAX_CHILDREN (as the reference UTS caps); a node at depth D
 *     has none. log is C's double log() (glibc); b0 = 4.
 *   Binomial tree (like UTS T3), size parameter b0:
 *     the root has b0 children; every other node has m children when
 *     u < q, else none. q * m < 1, so the tree is finite with mean size
 *     1 + b0 / (1 - q m), but its variance is huge and its depth is in
 *     the thousands: a test of load balance, not of depth.
 *
 * Traversal
 * ---------
 *   Every implementation (serial twin, weft, TBB, OpenMP) hashes a node's
 *   children's states when it expands the node, as the reference UTS
 *   generates a node's children when it pops it, and then visits (or
 *   spawns) them with their states ready made. The order matters for
 *   speed, not for the answer: the children's hash chains are independent,
 *   so hashing them back to back lets the CPU overlap them, where hashing
 *   each child just before descending into it does not. On the 2-core VM
 *   the serial geometric tree takes 184 ms this way and 216 ms the other.
 *   A benchmark that hashed in the parent for one implementation and in
 *   the child for another would compare shapes, not runtimes. For the
 *   same reason every implementation hashes all of a node's children in
 *   one loop and only then spawns them: a spawn between two hashes
 *   (a few stores and a branch in weft, a call in TBB and OpenMP) splits
 *   the overlap. weft's binomial tree took 3 % longer on 1 and 2 workers
 *   when it spawned each child as soon as it was hashed.
 *
 * The seeds below were chosen so that the default sizes give about
 * 4 million nodes; bench/README.md lists the counts. Changing any constant
 * here changes every tree, and the answers in README.md with it. */
#ifndef BENCH_UTS_H
#define BENCH_UTS_H

#include <math.h>
#include <stdint.h>

#define UTS_GOLDEN 0x9E3779B97F4A7C15ULL
#define UTS_ROUNDS 16
#define UTS_MAX_CHILDREN 100

#define UTS_GEO_B0 4.0
#define UTS_GEO_SEED 110

#define UTS_BIN_Q 0.124875 /* q * m = 0.999, as in UTS T3 */
#define UTS_BIN_M 8
#define UTS_BIN_SEED 2

typedef unsigned long long uts_count;

static inline uint64_t uts_mix(uint64_t x)
{
    uint64_t z = x + UTS_GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t uts_root(uint64_t seed) { return uts_mix(seed); }

static inline uint64_t uts_child(uint64_t parent, int i)
{
    uint64_t s = parent ^ ((uint64_t)(i + 1) * UTS_GOLDEN);
    for (int r = 0; r < UTS_ROUNDS; r++)
        s = uts_mix(s);
    return s;
}

static inline double uts_uniform(uint64_t s)
{
    return (double)(s >> 11) * (1.0 / 9007199254740992.0); /* 2^-53 */
}

/* Every node's state is work the tree charges for, even a leaf at the
 * depth cutoff whose child count does not read it. Without this empty asm
 * that takes s as input, a compiler that inlines a task body into its
 * caller (weft_sync_fn lets it) deletes the leaves' hashing, and the
 * implementations would no longer do the same work. It costs nothing. */
static inline void uts_consume(uint64_t s)
{
#if defined(__GNUC__)
    __asm__ __volatile__("" : : "r"(s));
#else
    (void)s;
#endif
}

/* Children of a geometric-tree node at `depth`, tree cut off at max_depth. */
static inline int uts_geo_children(uint64_t s, int depth, int max_depth)
{
    uts_consume(s);
    if (depth >= max_depth)
        return 0;
    const double p = 1.0 / (1.0 + UTS_GEO_B0);
    double n = floor(log(1.0 - uts_uniform(s)) / log(1.0 - p));
    return n < UTS_MAX_CHILDREN ? (int)n : UTS_MAX_CHILDREN;
}

/* Children of a binomial-tree node that is not the root. */
static inline int uts_bin_children(uint64_t s)
{
    uts_consume(s); /* the branch below reads s anyway; kept for symmetry */
    return uts_uniform(s) < UTS_BIN_Q ? UTS_BIN_M : 0;
}

#endif
