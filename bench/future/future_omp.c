/* The future workloads (future_common.h) on OpenMP tasks, inside one
 * parallel region (a single thread starts the root, the team runs the
 * tasks): `omp task` per task, `omp taskwait` to collect. An empty task
 * writes its status (0) into its own slot, which the creator reads after
 * the taskwait. OpenMP has no outside thread (the thread that waits is
 * part of the team), so only the inside workloads exist here. */
#include "bench.h"
#include "future_common.h"

#include <omp.h>

static long flat(long n)
{
    int st[BATCH];
    long ok = 0;
    for (long done = 0; done < n; done += BATCH) {
        int b = n - done < BATCH ? (int)(n - done) : BATCH;
        for (int i = 0; i < b; i++) {
            st[i] = -1;
#pragma omp task firstprivate(i) shared(st)
            st[i] = 0;
        }
#pragma omp taskwait
        for (int i = 0; i < b; i++)
            ok += st[i] == 0;
    }
    return ok;
}

static long tree(long c)
{
    long left, right, a = 0, b = 0;
    tree_split(c, &left, &right);
    if (left > 0) {
#pragma omp task shared(a) firstprivate(left)
        a = tree(left);
    }
    if (right > 0) {
#pragma omp task shared(b) firstprivate(right)
        b = tree(right);
    }
#pragma omp taskwait
    return 1 + a + b;
}

static bench_check run_flat(long n)
{
    long r = 0;
#pragma omp parallel
#pragma omp single
    r = flat(n);
    return (bench_check)r;
}

static bench_check run_tree(long n)
{
    long r = 0;
    if (n < 1)
        return 0;
#pragma omp parallel
#pragma omp single
    r = tree(n);
    return (bench_check)r;
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
    { "inside-flat", run_flat }, { "inside-tree", run_tree },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "omp", 0, setup, NULL };
    return bench_main(argc, argv, &impl, workloads,
                      (int)(sizeof workloads / sizeof workloads[0]));
}
