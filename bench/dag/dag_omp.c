/* The dataflow workloads on OpenMP tasks with dependences, as a gcc user
 * writes them: inside one parallel region a single thread creates one
 * task per node, in the generator's order, naming what the node reads
 * (`depend(in: ...)`) and writes (`depend(out/inout: ...)`); libgomp
 * orders them and the team runs them. The graph is made again on every
 * run (OpenMP has no prebuilt graphs). The team is started once, by an
 * empty region in setup. */
#include "bench.h"
#include "dag_work.h"

#include <omp.h>

/* The number of dependences is part of the pragma: one form per count. */
static bench_check run_dag(long n)
{
    uint64_t *v = dw.v;
    (void)v; /* used only in depend clauses: gcc calls it unused */
#pragma omp parallel
#pragma omp single
    for (long i = 0; i < n; i++) {
        const int32_t *d = dw.deps[i];
        switch (dw.nd[i]) {
        case 0:
#pragma omp task firstprivate(i) depend(out: v[i])
            dag_work_node(i);
            break;
        case 1:
#pragma omp task firstprivate(i) depend(in: v[d[0]]) depend(out: v[i])
            dag_work_node(i);
            break;
        case 2:
#pragma omp task firstprivate(i) depend(in: v[d[0]], v[d[1]]) \
    depend(out: v[i])
            dag_work_node(i);
            break;
        default:
#pragma omp task firstprivate(i) depend(in: v[d[0]], v[d[1]], v[d[2]]) \
    depend(out: v[i])
            dag_work_node(i);
            break;
        }
    }
    /* the end of the region waits for every task */
    return dag_work_answer();
}

/* Tiles as dependence objects: a task names the first double of each
 * tile it reads (in) and of the tile it updates (inout). */
static bench_check run_chol(long nb)
{
    (void)nb;
    double *const *tl = cw.tiles;
    (void)tl; /* likewise */
#pragma omp parallel
#pragma omp single
    for (long t = 0; t < cw.ntasks; t++) {
        const chol_task *c = &cw.plan[t];
        switch (c->nin) {
        case 0:
#pragma omp task firstprivate(t) depend(inout: tl[c->out][0])
            chol_work_task(t);
            break;
        case 1:
#pragma omp task firstprivate(t) depend(in: tl[c->in[0]][0]) \
    depend(inout: tl[c->out][0])
            chol_work_task(t);
            break;
        default:
#pragma omp task firstprivate(t) \
    depend(in: tl[c->in[0]][0], tl[c->in[1]][0]) depend(inout: tl[c->out][0])
            chol_work_task(t);
            break;
        }
    }
    return chol_work_answer();
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

static int prepare(const char *workload, long size, int workers)
{
    (void)workers;
    return work_prepare(workload, size);
}

static const bench_workload workloads[] = {
    { "chol", run_chol }, { "chol-fine", run_chol }, { "dag", run_dag },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { "omp", 0, setup, NULL };
    static const bench_hooks hooks = { prepare, work_reset, NULL, NULL };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
