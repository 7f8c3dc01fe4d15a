// The fork-join workloads on oneTBB's tbb::task_group, as a TBB user would
// write them: one task_group per parent, run() per child, wait() to join.
// No parallel_for: the loop uses the same recursive split as the others.
// The arena and the thread limit are made once in setup; each run enters
// the arena with execute().
#include "bench.h"
#include "bench_tbb.h"
#include "kernels.h"
#include "uts.h"

#include <alloca.h>
#include <memory>
#include <oneapi/tbb/task_group.h>

namespace {

long fib(int n)
{
    if (n < 2)
        return n;
    long a, b;
    tbb::task_group g;
    g.run([&] { a = fib(n - 1); });
    b = fib(n - 2);
    g.wait();
    return a + b;
}

struct nq_child {
    char board[NQ_MAX];
    long result;
};

long nqueens(int n, int row, const char *board)
{
    if (row == n)
        return 1;
    nq_child kids[NQ_MAX]; // one board and result slot per child
    int k = 0;
    tbb::task_group g;
    for (int col = 0; col < n; col++) {
        if (!nq_ok(board, row, col))
            continue;
        nq_child *c = &kids[k++];
        memcpy(c->board, board, (size_t)row);
        c->board[row] = (char)col;
        g.run([c, n, row] { c->result = nqueens(n, row + 1, c->board); });
    }
    g.wait();
    long s = 0;
    for (int i = 0; i < k; i++)
        s += kids[i].result;
    return s;
}

// Per-node result slots live on the stack (alloca), like the C versions'
// VLAs: a heap vector per node would charge TBB an allocation the others
// do not pay.
#define UTS_SLOTS(nc) static_cast<uts_count *>(alloca(sizeof(uts_count) * (nc)))
#define UTS_KIDS(nc) static_cast<uint64_t *>(alloca(sizeof(uint64_t) * (nc)))

uts_count sum_slots(const uts_count *part, int nc)
{
    uts_count count = 1;
    for (int i = 0; i < nc; i++)
        count += part[i];
    return count;
}

uts_count uts_geo(uint64_t s, int depth, int max_depth)
{
    int nc = uts_geo_children(s, depth, max_depth);
    if (nc == 0)
        return 1;
    uts_count *part = UTS_SLOTS(nc);
    uint64_t *kid = UTS_KIDS(nc);
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    tbb::task_group g;
    for (int i = 0; i < nc; i++) {
        uint64_t c = kid[i];
        g.run([=] { part[i] = uts_geo(c, depth + 1, max_depth); });
    }
    g.wait();
    return sum_slots(part, nc);
}

// The node with state s has nc children (the root b0, the others
// uts_bin_children()).
uts_count uts_bin(uint64_t s, int nc)
{
    if (nc == 0)
        return 1;
    uts_count *part = UTS_SLOTS(nc);
    uint64_t *kid = UTS_KIDS(nc);
    for (int i = 0; i < nc; i++)
        kid[i] = uts_child(s, i);
    tbb::task_group g;
    for (int i = 0; i < nc; i++) {
        uint64_t c = kid[i];
        g.run([=] { part[i] = uts_bin(c, uts_bin_children(c)); });
    }
    g.wait();
    return sum_slots(part, nc);
}

uint64_t skew(long lo, long hi, long n)
{
    if (hi - lo <= SKEW_GRAIN)
        return skew_range(lo, hi, n);
    long mid = lo + (hi - lo) / 2;
    uint64_t a, b;
    tbb::task_group g;
    g.run([&] { a = skew(lo, mid, n); });
    b = skew(mid, hi, n);
    g.wait();
    return a + b;
}

bench_check run_fib(long n)
{
    return in_arena([n] { return (bench_check)fib((int)n); });
}

bench_check run_nqueens(long n)
{
    if (n > NQ_MAX)
        return 0;
    return in_arena([n] {
        char board[NQ_MAX];
        return (bench_check)nqueens((int)n, 0, board);
    });
}

bench_check run_uts_geo(long depth)
{
    return in_arena([depth] {
        return (bench_check)uts_geo(uts_root(UTS_GEO_SEED), 0, (int)depth);
    });
}

bench_check run_uts_bin(long b0)
{
    return in_arena([b0] {
        return (bench_check)uts_bin(uts_root(UTS_BIN_SEED), (int)b0);
    });
}

bench_check run_skew(long n)
{
    return in_arena([n] { return (bench_check)skew(0, n, n); });
}

int setup(int workers)
{
    tbb_start(workers);
    return 0;
}

void teardown(int)
{
    tbb_stop();
}

const bench_workload workloads[] = {
    { "fib", run_fib },         { "nqueens", run_nqueens },
    { "uts-geo", run_uts_geo }, { "uts-bin", run_uts_bin },
    { "skew", run_skew },
};

} // namespace

int main(int argc, char **argv)
{
    static const bench_impl impl = { "tbb", 0, setup, teardown };
    return bench_main(argc, argv, &impl, workloads,
                      (int)(sizeof workloads / sizeof workloads[0]));
}
