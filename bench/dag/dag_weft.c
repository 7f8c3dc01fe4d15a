/* The dataflow workloads on weft, written only against <weft.h>.
 *
 * Built twice from this file:
 *  - dag-weft-graph: the task graph is built once per process, before the
 *    timed runs, with weft_graph_add_ids() and sealed; a run is
 *    weft_graph_run() from the main thread (not a worker) and a wait on
 *    the run's `all` future.
 *  - dag-weft-dyn (BENCH_WEFT_DYNAMIC): nothing is prebuilt; a run is one
 *    root task (weft_run) that submits every node with weft_submit_after()
 *    in the generator's order, naming the futures of its inputs, as a
 *    Dask-futures or Ray user writes dataflow.
 *
 * In both, a node of the random DAG reads its inputs' values from its
 * dependencies' results (weft_job_dep(); a value is carried in the result
 * pointer itself, no allocation) and sets its own value as its result, so
 * values really flow through the futures; it also stores it in v[] for the
 * answer. A Cholesky task updates its tile in place; the graph orders the
 * updates. */
#include "bench.h"
#include "dag_work.h"

#include <weft.h>

#include "bench_weft.h"

#ifdef BENCH_WEFT_DYNAMIC
#define IMPL "weft-dyn"
#else
#define IMPL "weft-graph"
#endif

#define PROG "dag-" IMPL

static weft_runtime *rt;

static void die(const char *what, int rc)
{
    fprintf(stderr, PROG ": %s failed: %s (%d)\n", what, strerror(-rc), rc);
    exit(1);
}

/* ---- task bodies */

static int dag_fn(weft_job *job, void *arg)
{
    long i = (long)(intptr_t)arg;
    uint64_t in[DAG_MAXDEPS];
    size_t nd = weft_job_ndeps(job);
    if (nd != dw.nd[i] || nd > DAG_MAXDEPS) {
        fprintf(stderr, PROG ": node %ld has %zu dependencies, expected "
                        "%d\n", i, nd, dw.nd[i]);
        exit(1);
    }
    for (size_t j = 0; j < nd; j++) {
        void *p = NULL;
        int st = weft_job_dep(job, j, &p);
        if (st != 0) {
            fprintf(stderr, PROG ": node %ld: input %zu has status %d\n",
                    i, j, st);
            exit(1);
        }
        in[j] = (uint64_t)(uintptr_t)p;
    }
    uint64_t x = dag_node(i, in, (int)nd);
    dw.v[i] = x;
    return weft_job_set_result(job, (void *)(uintptr_t)x, NULL);
}

static int chol_fn(weft_job *job, void *arg)
{
    (void)job;
    chol_work_task((long)(intptr_t)arg);
    return 0;
}

#ifndef BENCH_WEFT_DYNAMIC

/* ---- prebuilt graph */

static weft_graph *graph;

static int build_graph(const char *workload)
{
    int rc = weft_graph_create(&graph);
    if (rc != 0)
        return rc;
    long n = is_chol(workload) ? cw.ntasks : dw.n;
    for (long t = 0; t < n; t++) {
        int deps[3], nd;
        weft_fn fn;
        if (is_chol(workload)) {
            nd = cw.plan[t].ndeps;
            memcpy(deps, cw.plan[t].deps, sizeof deps);
            fn = chol_fn;
        } else {
            nd = dw.nd[t];
            for (int j = 0; j < nd; j++)
                deps[j] = dw.deps[t][j];
            fn = dag_fn;
        }
        int id = weft_graph_add_ids(graph, NULL, fn, (void *)(intptr_t)t,
                                    deps, (size_t)nd, NULL);
        if (id < 0)
            return id;
        if (id != t) {
            fprintf(stderr, PROG ": weft_graph_add_ids gave id %d to node "
                            "%ld\n", id, t);
            return -EINVAL;
        }
    }
    return weft_graph_seal(graph);
}

static void run_graph(void)
{
    weft_future *all = NULL;
    int rc = weft_graph_run(graph, rt, NULL, 0, NULL, &all);
    if (rc != 0)
        die("weft_graph_run", rc);
    rc = weft_future_get(all, -1, NULL);
    if (rc != 0)
        die("the graph run (weft_future_get on all)", rc);
    weft_future_release(all);
}

static bench_check run_chol(long nb)
{
    (void)nb;
    run_graph();
    return chol_work_answer();
}

static bench_check run_dag(long n)
{
    (void)n;
    run_graph();
    return dag_work_answer();
}

#else

/* ---- dynamic dataflow: weft_submit_after from a root task */

/* Futures of the nodes still in flight, by node index mod RING: node i
 * reads nodes i-DAG_WINDOW .. i-1 at most, so a node's future may go once
 * RING > DAG_WINDOW nodes were submitted after it. The root waits for it
 * then (weft_future_get, which runs other work meanwhile): that bounds
 * the nodes in flight, and at the end only the last RING are left. */
#define RING 4096

static weft_future *ring[RING];

static void get_release(weft_future *f, const char *what)
{
    int rc = weft_future_get(f, -1, NULL);
    if (rc != 0)
        die(what, rc);
    weft_future_release(f);
}

static int dag_root(void *arg)
{
    long n = *(long *)arg;
    weft_runtime *me = weft_current_runtime();
    for (long i = 0; i < n; i++) {
        weft_future *deps[DAG_MAXDEPS], **slot = &ring[i % RING];
        int nd = dw.nd[i];
        for (int j = 0; j < nd; j++)
            deps[j] = ring[dw.deps[i][j] % RING];
        if (*slot != NULL)
            get_release(*slot, "weft_future_get of a finished node");
        int rc = weft_submit_after(me, dag_fn, (void *)(intptr_t)i, deps,
                                   (size_t)nd, NULL, slot);
        if (rc != 0)
            die("weft_submit_after", rc);
    }
    for (long i = n > RING ? n - RING : 0; i < n; i++) {
        get_release(ring[i % RING], "weft_future_get of a node");
        ring[i % RING] = NULL;
    }
    return 0;
}

/* A Cholesky task waits for the tasks that last wrote the tiles it reads
 * and updates: their futures are kept until the end of the run (a few
 * thousand), then all collected. */
static weft_future **cfut;

static int chol_root(void *arg)
{
    (void)arg;
    weft_runtime *me = weft_current_runtime();
    for (long t = 0; t < cw.ntasks; t++) {
        const chol_task *c = &cw.plan[t];
        weft_future *deps[3];
        for (int j = 0; j < c->ndeps; j++)
            deps[j] = cfut[c->deps[j]];
        int rc = weft_submit_after(me, chol_fn, (void *)(intptr_t)t, deps,
                                   (size_t)c->ndeps, NULL, &cfut[t]);
        if (rc != 0)
            die("weft_submit_after", rc);
    }
    for (long t = 0; t < cw.ntasks; t++)
        get_release(cfut[t], "weft_future_get of a task");
    return 0;
}

static void run_root(int (*root)(void *), void *arg)
{
    int rc = weft_run(rt, root, arg);
    if (rc != 0)
        die("weft_run", rc);
}

static bench_check run_chol(long nb)
{
    (void)nb;
    run_root(chol_root, NULL);
    return chol_work_answer();
}

static bench_check run_dag(long n)
{
    run_root(dag_root, &n);
    return dag_work_answer();
}

#endif

/* ---- set-up */

static int prepare(const char *workload, long size, int workers)
{
    int rc = work_prepare(workload, size);
    if (rc != 0)
        return rc;
    weft_config cfg = weft_config_default();
    cfg.workers = workers;
    rc = bench_weft_create(PROG, &rt, &cfg);
    if (rc != 0)
        return rc;
#ifdef BENCH_WEFT_DYNAMIC
    if (is_chol(workload)) {
        cfut = calloc((size_t)cw.ntasks, sizeof *cfut);
        if (cfut == NULL)
            return -ENOMEM;
    }
    return 0;
#else
    return build_graph(workload);
#endif
}

/* -v: what each worker did over all runs. */
static void teardown(int verbose)
{
    if (verbose)
        bench_weft_print_stats(rt);
#ifndef BENCH_WEFT_DYNAMIC
    weft_graph_destroy(&graph);
#endif
    weft_runtime_destroy(&rt);
}

static const bench_workload workloads[] = {
    { "chol", run_chol }, { "chol-fine", run_chol }, { "dag", run_dag },
};

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 0, NULL, teardown };
    static const bench_hooks hooks = { prepare, work_reset, NULL, NULL };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
