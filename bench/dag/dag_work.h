/* What every dataflow program (dag-IMPL) shares besides the generators:
 * the workloads' inputs, made once per process before the timed runs
 * (bench_hooks.prepare), reset before each run (before_run), and the
 * answer computed after the graph ran. C11, also C++.
 *
 *   chol       tiled Cholesky (common/chol.h), -n NB tiles of 64 x 64
 *   chol-fine  the same with tiles of 16 x 16: 64 times more tasks of
 *              1/64 the work, so that the cost per task shows
 *   dag        the random DAG (common/dag.h), -n nodes
 *
 * Only the scheduling differs between programs: the task bodies below
 * (dag_work_node, chol_run_task) are the same code everywhere. */
#ifndef BENCH_DAG_WORK_H
#define BENCH_DAG_WORK_H

#include "bench.h"
#include "chol.h"
#include "dag.h"

#include <errno.h>

/* ---- Cholesky */

static struct chol_work {
    int nb, b;
    long ntasks;
    chol_task *plan;
    double **tiles;
} cw;

static inline int chol_block_size(const char *workload)
{
    return strcmp(workload, "chol-fine") == 0 ? 16 : 64;
}

static inline int is_chol(const char *workload)
{
    return strncmp(workload, "chol", 4) == 0;
}

static inline int chol_work_prepare(const char *workload, long nb)
{
    if (nb < 1 || nb > 4096)
        return -EINVAL;
    cw.nb = (int)nb;
    cw.b = chol_block_size(workload);
    cw.ntasks = chol_ntasks(nb);
    cw.plan = chol_plan(cw.nb);
    cw.tiles = chol_alloc(cw.nb, cw.b);
    return cw.plan != NULL && cw.tiles != NULL ? 0 : -ENOMEM;
}

static inline void chol_work_reset(void) { chol_init(cw.tiles, cw.nb, cw.b); }

static inline bench_check chol_work_answer(void)
{
    return chol_hash(cw.tiles, cw.nb, cw.b);
}

/* Task t of the plan: the body of every implementation's node. */
static inline void chol_work_task(long t)
{
    chol_run_task(&cw.plan[t], cw.tiles, cw.b);
}

/* ---- the random DAG */

static struct dag_work {
    long n;
    uint64_t *v;       /* v[i]: the value of node i */
    int32_t (*deps)[DAG_MAXDEPS];
    unsigned char *nd; /* nd[i]: how many inputs node i has */
} dw;

static inline int dag_work_prepare(long n)
{
    if (n < 1)
        return -EINVAL;
    dw.n = n;
    dw.v = (uint64_t *)calloc((size_t)n, sizeof *dw.v);
    dw.deps = (int32_t(*)[DAG_MAXDEPS])malloc((size_t)n * sizeof *dw.deps);
    dw.nd = (unsigned char *)malloc((size_t)n);
    if (dw.v == NULL || dw.deps == NULL || dw.nd == NULL)
        return -ENOMEM;
    for (long i = 0; i < n; i++) {
        long d[DAG_MAXDEPS];
        int k = dag_deps(i, d);
        dw.nd[i] = (unsigned char)k;
        for (int j = 0; j < k; j++)
            dw.deps[i][j] = (int32_t)d[j];
    }
    return 0;
}

static inline void dag_work_reset(void)
{
    memset(dw.v, 0, (size_t)dw.n * sizeof *dw.v);
}

/* Node i, reading its inputs from v[] (where the implementation keeps
 * them there). */
static inline void dag_work_node(long i)
{
    uint64_t in[DAG_MAXDEPS];
    int k = dw.nd[i];
    for (int j = 0; j < k; j++)
        in[j] = dw.v[dw.deps[i][j]];
    dw.v[i] = dag_node(i, in, k);
}

static inline bench_check dag_work_answer(void)
{
    return dag_hash(dw.v, dw.n);
}

/* ---- hooks shared by the programs */

static inline int work_prepare(const char *workload, long size)
{
    return is_chol(workload) ? chol_work_prepare(workload, size)
                             : dag_work_prepare(size);
}

static inline void work_reset(const char *workload, long size)
{
    (void)size;
    if (is_chol(workload))
        chol_work_reset();
    else
        dag_work_reset();
}

static inline bench_check work_answer(const char *workload)
{
    return is_chol(workload) ? chol_work_answer() : dag_work_answer();
}

#endif
