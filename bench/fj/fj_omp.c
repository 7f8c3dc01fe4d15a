/* The fork-join workloads on OpenMP tasks (`omp task` / `omp taskwait`),
 * as a gcc user would write them: one parallel region with a single
 * thread starting the root, the rest of the team stealing tasks. The
 * team is made once, by an empty region in setup; libgomp keeps its
 * threads between regions, so each run reuses them. */
#include "bench.h"
#include "kernels.h"
#include "uts.h"

#include <omp.h>

static long fib(int n)
{
    if (n < 2)
        return n;
    long a, b;
#pragma omp task shared(a) firstprivate(n)
    a = fib(n - 1);
    b = fib(n - 2);
#pragma omp taskwait
    return a + b;
}

static long nqueens(int n, int row, const char *board)
{
    if (row == n)
        return 1;
    long part[NQ_MAX]; /* one slot per child: no shared accumulator */
    int k = 0;
    for (int col = 0; col < n; col++) {
        if (!nq_ok(board, row, col))
            continue;
        char child[NQ_MAX];
        memcpy(child, board, (size_t)row);
        child[row] = (char)col;
        long *slot = &part[k++];
        /* firstprivate copies the array: the task owns its board. */
#pragma omp task firstprivate(child, slot, n, row)
        *slot = nqueens(n, row + 1, child);
    }
#pragma omp taskwait
    long s = 0;
    for (int i = 0; i < k; i++)
        s += part[i];
    return s;
}

static uts_count uts_geo(uint64_t s, int depth, int max_depth)
{
    int nc = uts_geo_children(s, depth, max_depth);
    if (nc == 0)
        return 1;
    uts_count part[nc];
    uint64_t kid[nc];
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    for (int i = 0; i < nc; i++) {
        uint64_t c = kid[i];
#pragma omp task firstprivate(i, c) shared(part)
        part[i] = uts_geo(c, depth + 1, max_depth);
    }
#pragma omp taskwait
    uts_count count = 1;
    for (int i = 0; i < nc; i++)
        count += part[i];
    return count;
}

/* Children of the node with state s, whose child count is nc (the root
 * has b0, every other node uts_bin_children()). */
static uts_count uts_bin(uint64_t s, int nc)
{
    if (nc == 0)
        return 1;
    uts_count part[nc];
    uint64_t kid[nc];
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    for (int i = 0; i < nc; i++) {
        uint64_t c = kid[i];
#pragma omp task firstprivate(i, c) shared(part)
        part[i] = uts_bin(c, uts_bin_children(c));
    }
#pragma omp taskwait
    uts_count count = 1;
    for (int i = 0; i < nc; i++)
        count += part[i];
    return count;
}

static uint64_t skew(long lo, long hi, long n)
{
    if (hi - lo <= SKEW_GRAIN)
        return skew_range(lo, hi, n);
    long mid = lo + (hi - lo) / 2;
    uint64_t a, b;
#pragma omp task shared(a)
    a = skew(lo, mid, n);
    b = skew(mid, hi, n);
#pragma omp taskwait
    return a + b;
}

/* Runs one workload as the root of a parallel region. */
#define OMP_ROOT(expr)                                                      \
    do {                                                                    \
        _Pragma("omp parallel") _Pragma("omp single") result = (expr);      \
    } while (0)

static bench_check run_fib(long n)
{
    bench_check result = 0;
    OMP_ROOT((bench_check)fib((int)n));
    return result;
}

static bench_check run_nqueens(long n)
{
    bench_check result = 0;
    char board[NQ_MAX];
    if (n > NQ_MAX)
        return 0;
    OMP_ROOT((bench_check)nqueens((int)n, 0, board));
    return result;
}

static bench_check run_uts_geo(long depth)
{
    bench_check result = 0;
    OMP_ROOT(uts_geo(uts_root(UTS_GEO_SEED), 0, (int)depth));
    return result;
}

static bench_check run_uts_bin(long b0)
{
    bench_check result = 0;
    OMP_ROOT(uts_bin(uts_root(UTS_BIN_SEED), (int)b0));
    return result;
}

static bench_check run_skew(long n)
{
    bench_check result = 0;
    OMP_ROOT(skew(0, n, n));
    return result;
}

static int setup(int workers)
{
    omp_set_dynamic(0);
    omp_set_num_threads(workers);
#pragma omp parallel
    {
        /* start the team now, not inside the first timed run */
    }
    return 0;
}

static const bench_workload workloads[] = {
    { "fib", run_fib },         { "nqueens", run_nqueens },
    { "uts-geo", run_uts_geo }, { "uts-bin", run_uts_bin },
    { "skew", run_skew },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "omp", 0, setup, NULL };
    return bench_main(argc, argv, &impl, workloads,
                      (int)(sizeof workloads / sizeof workloads[0]));
}
