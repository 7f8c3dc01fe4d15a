// The future workloads (future_common.h) on oneTBB's task_group, as a TBB
// user writes them: run() per task, wait() to collect. An empty task
// writes its status (0) into its own slot, read after the wait.
//
//   inside-*   inside one task_arena of -w slots (execute()), under a
//              global_control of -w threads, made once in setup.
//   outside,   from the main thread, outside any explicit arena, as a TBB
//   rt-*       user calls a task_group from a plain thread. Note: a thread
//              that waits in TBB runs tasks itself, so wait() may run
//              the task on the caller: no hand-off to a worker happens.
//
// Built a second time as future-tbb-enqueue (BENCH_TBB_ENQUEUE), for the
// round trips only: the task is handed to a worker with
// task_arena::enqueue() (an arena of -w worker slots, none reserved for
// the main thread), and the main thread spins on an atomic flag until
// the task has set it: a true hand-off, like weft's.
#include "bench.h"
#include "bench_tbb.h"
#include "future_common.h"

#include <atomic>
#include <memory>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#ifdef BENCH_TBB_ENQUEUE
#define IMPL "tbb-enqueue"
#else
#define IMPL "tbb"
#endif

namespace {

#ifndef BENCH_TBB_ENQUEUE

long flat(long n)
{
    int st[BATCH];
    long ok = 0;
    tbb::task_group g;
    for (long done = 0; done < n; done += BATCH) {
        int b = n - done < BATCH ? (int)(n - done) : BATCH;
        for (int i = 0; i < b; i++) {
            st[i] = -1;
            g.run([&st, i] { st[i] = 0; });
        }
        g.wait();
        for (int i = 0; i < b; i++)
            ok += st[i] == 0;
    }
    return ok;
}

long tree(long c)
{
    long left, right, a = 0, b = 0;
    tree_split(c, &left, &right);
    tbb::task_group g;
    if (left > 0)
        g.run([&a, left] { a = tree(left); });
    if (right > 0)
        g.run([&b, right] { b = tree(right); });
    g.wait();
    return 1 + a + b;
}

bench_check run_inside_flat(long n)
{
    long r = 0;
    arena->execute([&] { r = flat(n); });
    return (bench_check)r;
}

bench_check run_inside_tree(long n)
{
    long r = 0;
    if (n > 0)
        arena->execute([&] { r = tree(n); });
    return (bench_check)r;
}

bench_check run_outside(long n) { return (bench_check)flat(n); }

bench_check round_trips(long n, int parked)
{
    long ok = 0;
    tbb::task_group g;
    for (long i = 0; i < n; i++) {
        int st = -1;
        if (parked)
            rt_pause();
        double t0 = bench_now();
        g.run([&st] { st = 0; });
        g.wait();
        double t1 = bench_now();
        ok += st == 0;
        rtl.lat[i] = t1 - t0;
    }
    rtl.n = n;
    return (bench_check)ok;
}

#else

bench_check round_trips(long n, int parked)
{
    long ok = 0;
    for (long i = 0; i < n; i++) {
        std::atomic<int> st{ -1 };
        if (parked)
            rt_pause();
        double t0 = bench_now();
        arena->enqueue([&st] { st.store(0, std::memory_order_release); });
        while (st.load(std::memory_order_acquire) != 0)
            ;
        double t1 = bench_now();
        ok++;
        rtl.lat[i] = t1 - t0;
    }
    rtl.n = n;
    return (bench_check)ok;
}

#endif

bench_check run_rt_parked(long n) { return round_trips(n, 1); }
bench_check run_rt_spin(long n) { return round_trips(n, 0); }

int setup(int workers)
{
#ifdef BENCH_TBB_ENQUEUE
    // -w workers besides the main thread, which only enqueues and waits.
    limit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, (size_t)workers + 1);
    arena = std::make_unique<tbb::task_arena>(workers, 0);
    arena->initialize();
#else
    tbb_start(workers);
#endif
    return 0;
}

int prepare(const char *workload, long size, int)
{
    return is_rt(workload) ? rt_prepare(size) : 0;
}

void teardown(int)
{
    tbb_stop();
}

const bench_workload workloads[] = {
#ifndef BENCH_TBB_ENQUEUE
    { "inside-flat", run_inside_flat }, { "inside-tree", run_inside_tree },
    { "outside", run_outside },
#endif
    { "rt-parked", run_rt_parked },     { "rt-spin", run_rt_spin },
};

} // namespace

int main(int argc, char **argv)
{
    static const bench_impl impl = { IMPL, 0, setup, teardown };
    static const bench_hooks hooks = { prepare, nullptr, rt_extra, nullptr };
    return bench_main_hooks(argc, argv, &impl, workloads,
                            (int)(sizeof workloads / sizeof workloads[0]),
                            &hooks);
}
