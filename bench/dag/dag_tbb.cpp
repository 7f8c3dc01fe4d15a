// The dataflow workloads on oneTBB's flow graph, as a TBB user writes a
// static task graph: one continue_node per task, make_edge from each
// input to it, a broadcast_node that starts the tasks without inputs.
// The graph is built once per process, before the timed runs; a run is
// start.try_put() and wait_for_all() (a continue_node re-arms itself
// after it fires, so the same graph runs again). Everything happens
// inside one task_arena of -w slots under a global_control of -w
// threads, made once in setup.
#include "bench.h"
#include "bench_tbb.h"
#include "dag_work.h"

#include <memory>
#include <oneapi/tbb/flow_graph.h>
#include <vector>

namespace {

namespace flow = tbb::flow;
using node_t = flow::continue_node<flow::continue_msg>;

std::unique_ptr<flow::graph> graph;
std::unique_ptr<flow::broadcast_node<flow::continue_msg>> start;
std::vector<std::unique_ptr<node_t>> nodes;

// ntasks nodes; body(t) runs task t; deps(t, out) lists its inputs.
template <class Body, class Deps>
void build(long ntasks, Body body, Deps deps)
{
    arena->execute([&] {
        graph = std::make_unique<flow::graph>();
        start = std::make_unique<flow::broadcast_node<flow::continue_msg>>(
            *graph);
        nodes.reserve((size_t)ntasks);
        for (long t = 0; t < ntasks; t++) {
            nodes.push_back(std::make_unique<node_t>(
                *graph, [t, body](const flow::continue_msg &) { body(t); }));
            long d[4];
            int nd = deps(t, d);
            if (nd == 0)
                flow::make_edge(*start, *nodes.back());
            for (int j = 0; j < nd; j++)
                flow::make_edge(*nodes[(size_t)d[j]], *nodes.back());
        }
    });
}

void run_graph()
{
    arena->execute([] {
        start->try_put(flow::continue_msg());
        graph->wait_for_all();
    });
}

bench_check run_chol(long)
{
    run_graph();
    return chol_work_answer();
}

bench_check run_dag(long)
{
    run_graph();
    return dag_work_answer();
}

int prepare(const char *workload, long size, int)
{
    int rc = work_prepare(workload, size);
    if (rc != 0)
        return rc;
    if (is_chol(workload))
        build(cw.ntasks, [](long t) { chol_work_task(t); },
              [](long t, long *d) {
                  const chol_task *c = &cw.plan[t];
                  for (int j = 0; j < c->ndeps; j++)
                      d[j] = c->deps[j];
                  return c->ndeps;
              });
    else
        build(dw.n, [](long i) { dag_work_node(i); },
              [](long i, long *d) {
                  for (int j = 0; j < dw.nd[i]; j++)
                      d[j] = dw.deps[i][j];
                  return (int)dw.nd[i];
              });
    return 0;
}

int setup(int workers)
{
    tbb_start(workers);
    return 0;
}

void teardown(int)
{
    arena->execute([] {
        nodes.clear();
        start.reset();
        graph.reset();
    });
    tbb_stop();
}

const bench_workload workloads[] = {
    { "chol", run_chol }, { "chol-fine", run_chol }, { "dag", run_dag },
};

} // namespace

int main(int argc, char **argv)
{
    static const bench_impl impl = { "tbb", 0, setup, teardown };
    static const bench_hooks hooks = { prepare, work_reset, nullptr, nullptr };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
