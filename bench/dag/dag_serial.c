/* Serial twin of the dataflow workloads: every task of the graph run on
 * the calling thread in the generator's topological order (task 0, 1, ...),
 * no runtime, no synchronisation. Speedups and the cost per node of the
 * parallel programs are quoted against it.
 *
 * After the runs it also checks that the last Cholesky is right:
 * max |A - L L^T| / N must be tiny (the parallel programs must print the
 * same hash of L as this one, so they are checked through it). */
#include "bench.h"
#include "dag_work.h"

#include <stdio.h>

static bench_check run_chol(long nb)
{
    (void)nb;
    for (long t = 0; t < cw.ntasks; t++)
        chol_work_task(t);
    return chol_work_answer();
}

static bench_check run_dag(long n)
{
    for (long i = 0; i < n; i++)
        dag_work_node(i);
    return dag_work_answer();
}

static int prepare(const char *workload, long size, int workers)
{
    (void)workers;
    return work_prepare(workload, size);
}

static int verify(const char *workload, long size)
{
    (void)size;
    if (!is_chol(workload))
        return 0;
    double r = chol_residual(cw.tiles, cw.nb, cw.b);
    if (r >= 0 && r < 1e-12)
        return 0;
    fprintf(stderr, "dag-serial: %s: max |A - L L^T| / N = %g: not a "
                    "Cholesky factor\n", workload, r);
    return 1;
}

static const bench_workload workloads[] = {
    { "chol", run_chol }, { "chol-fine", run_chol }, { "dag", run_dag },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "serial", 1, NULL, NULL };
    static const bench_hooks hooks = { prepare, work_reset, NULL, verify };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
