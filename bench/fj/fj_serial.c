/* Serial twins: the fork-join workloads with spawn and sync removed (the
 * "serial elision"), run on the calling thread.
 *
 * Built twice. fj-serial lets gcc inline and unroll the recursion as it
 * likes: the speedups T_serial / T_P are quoted against it. fj-serial-noinline
 * (BENCH_NOINLINE) keeps one real call per recursive step, so that
 * T1 - T_serial_noinline isolates what spawn and sync cost on top of a call:
 * ns per spawn is quoted against it. */
#include "bench.h"
#include "kernels.h"
#include "uts.h"

#define NOINLINE __attribute__((noinline))
#ifdef BENCH_NOINLINE
#define REC NOINLINE
#define IMPL "serial-noinline"
#else
#define REC
#define IMPL "serial"
#endif

static REC long fib(int n)
{
    if (n < 2)
        return n;
    return fib(n - 1) + fib(n - 2);
}

static REC long nqueens(int n, int row, const char *board)
{
    if (row == n)
        return 1;
    long s = 0;
    for (int col = 0; col < n; col++) {
        if (!nq_ok(board, row, col))
            continue;
        char child[NQ_MAX]; /* the copy a child task would get */
        memcpy(child, board, (size_t)row);
        child[row] = (char)col;
        s += nqueens(n, row + 1, child);
    }
    return s;
}

/* The serial elision of fj_weft.c's UTS: a node hashes its children's
 * states when it expands (uts.h, "Traversal"), then visits them; the
 * expansion is out of line, so the leaf test inlines into the loop. That
 * shape is also the fastest serial one here (uts-geo 176 ms against 183
 * with the expansion inlined, uts-bin 136 against 140). */
static REC uts_count uts_geo(uint64_t s, int depth, int max_depth);
static REC uts_count uts_bin(uint64_t s, int nc);

static NOINLINE uts_count geo_fork(uint64_t s, int nc, int depth,
                                   int max_depth)
{
    uint64_t kid[nc];
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    uts_count count = 1;
    for (int i = 0; i < nc; i++)
        count += uts_geo(kid[i], depth + 1, max_depth);
    return count;
}

static NOINLINE uts_count bin_fork(uint64_t s, int nc)
{
    uint64_t kid[nc];
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    uts_count count = 1;
    for (int i = 0; i < nc; i++)
        count += uts_bin(kid[i], uts_bin_children(kid[i]));
    return count;
}

static REC uts_count uts_geo(uint64_t s, int depth, int max_depth)
{
    int nc = uts_geo_children(s, depth, max_depth);
    return nc == 0 ? 1 : geo_fork(s, nc, depth, max_depth);
}

/* The node with state s has nc children (the root b0, the others
 * uts_bin_children()). */
static REC uts_count uts_bin(uint64_t s, int nc)
{
    return nc == 0 ? 1 : bin_fork(s, nc);
}

static bench_check run_fib(long n) { return (bench_check)fib((int)n); }

static bench_check run_nqueens(long n)
{
    char board[NQ_MAX];
    return n > NQ_MAX ? 0 : (bench_check)nqueens((int)n, 0, board);
}

static bench_check run_uts_geo(long depth)
{
    return uts_geo(uts_root(UTS_GEO_SEED), 0, (int)depth);
}

static bench_check run_uts_bin(long b0)
{
    return uts_bin(uts_root(UTS_BIN_SEED), (int)b0);
}

/* The best serial loop, not an elision of the recursive split. */
static bench_check run_skew(long n) { return skew_range(0, n, n); }

static const bench_workload workloads[] = {
    { "fib", run_fib },         { "nqueens", run_nqueens },
    { "uts-geo", run_uts_geo }, { "uts-bin", run_uts_bin },
    { "skew", run_skew },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 1, NULL, NULL };
    return bench_main(argc, argv, &impl, workloads,
                      (int)(sizeof workloads / sizeof workloads[0]));
}
